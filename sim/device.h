/*
 * The device simulator: one device whose whole state is its flash file(s).
 * Each boot runs the real bootloader core (airlock_boot) on the file-backed
 * sim flash, then starts the payload of the image it chose and verified as
 * a process (memfd + fexecve), watches its watchdog, its exit code and its
 * event lines, injects power cuts, and boots again. Host only (fork, exec);
 * never writes the flash while the firmware runs.
 */
#ifndef AIRLOCK_SIM_DEVICE_H
#define AIRLOCK_SIM_DEVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/image.h"
#include "devflash.h"

/* What provisioning writes; NULL / 0 fields are left as they are on the flash. */
typedef struct sim_dev_prov {
    /* settings area */
    const char *server;     /* "https://host:port" */
    const char *tenant;     /* "DEFAULT" */
    const char *controller; /* controller id */
    const char *auth;       /* "TargetToken X" or "GatewayToken X" */
    const char *ca_pem;     /* CA certificate(s) the device trusts */
    /* bootloader area (written when keys, engine or trials are given, or with an image) */
    const char *engine;  /* NULL: swap-scratch if the layout has scratch, else swap-move */
    uint32_t max_trials; /* 0: 1 */
    bool allow_unsigned;
    const airlock_pubkey_t *keys;
    size_t nkeys;
    /* factory image into the primary slot (the other slots are erased) */
    const uint8_t *image;
    size_t image_len;
} sim_dev_prov_t;

/*
 * Provision the device on d (opened with devflash_open): write the
 * bootloader record and the factory image when given, and the settings
 * given (one atomic settings write). On failure err says why.
 * Returns 0 or -1.
 */
int sim_dev_provision(devflash_t *d, const sim_dev_prov_t *p, char *err, size_t errlen);

typedef struct sim_dev_opts {
    const char *flash;        /* flash file */
    const char *layout;       /* layout file or built-in name */
    const char *id;           /* prefix of log lines; NULL: the controller id from settings */
    uint32_t watchdog_ms;     /* 0: 3000 */
    double time_scale;        /* passed to the firmware; 0: 1 */
    double cut_random;        /* probability per boot of a kill at a random moment */
    uint32_t cut_window_ms;   /* the random moment is uniform in [0, window); 0: 2000 */
    unsigned max_random_cuts; /* at most this many random cuts in the run; 0: no limit */
    int64_t cut_at_op;        /* firmware flash op to cut (first boot reaching it); -1: none */
    int64_t cut_boot_at_op;   /* bootloader flash op to cut (first boot reaching it); -1 */
    uint64_t seed;
    const char *until_version; /* stop when this version runs confirmed and is idle */
    bool until_idle;           /* stop when the firmware is idle (nothing in hand) */
    double idle_for_s;         /* ... and has stayed idle this long (both goals) */
    /* Set (by a signal handler) to stop: the firmware gets SIGTERM. May be NULL. */
    volatile sig_atomic_t *interrupt;
    uint32_t max_boots; /* 0: no limit */
    double timeout_s;   /* 0: no limit */
    /* One line per event, without newline, already prefixed with the id. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} sim_dev_opts_t;

/* How a run ended (sim_dev_result_t.stop). */
enum sim_dev_stop {
    SIM_DEV_GOAL = 0,       /* --until-version / --until-idle reached */
    SIM_DEV_LIMIT = 1,      /* --max-boots / --timeout reached without a goal to meet */
    SIM_DEV_UNFINISHED = 2, /* --max-boots / --timeout reached before the goal */
    SIM_DEV_HALTED = 3,     /* the firmware halted on its own */
    SIM_DEV_UNBOOTABLE = 4, /* the bootloader found nothing bootable (bricked) */
    SIM_DEV_NOT_EXEC = 5,   /* the confirmed image's payload cannot run on this host */
    SIM_DEV_ERROR = 6,      /* setup failed (flash file, layout, not provisioned) */
};

/* "goal", "limit", ... */
const char *sim_dev_stop_name(int stop);

typedef struct sim_dev_result {
    int stop;          /* enum sim_dev_stop */
    char message[256]; /* why it stopped, for humans */
    char id[80];
    char version[32]; /* running (primary) version at the end, "" if none */
    char state[24];   /* confirmed, pending-test, unconfirmed, none */
    bool reverted;    /* the last update was reverted (per the boot journal) */
    char reverted_from[32];
    unsigned boots;      /* bootloader runs */
    unsigned reverts;    /* boots that reverted an update */
    unsigned installs;   /* boots that installed an update */
    unsigned power_cuts; /* cuts survived: bootloader, firmware flash op, random kill */
    unsigned crashes;    /* firmware exits by signal or unknown code */
    unsigned watchdog_resets;
    unsigned health_failures; /* trial boots whose health checks failed */
    uint64_t bytes_downloaded;
    unsigned resumes; /* downloads that continued from a previous one */
    char last_decision[200];
} sim_dev_result_t;

/*
 * Run the device until a stop condition. Fills *r; returns r->stop.
 */
int sim_dev_run(const sim_dev_opts_t *o, sim_dev_result_t *r);

#endif
