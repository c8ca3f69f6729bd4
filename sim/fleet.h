/*
 * The fleet simulator: N lightweight simulated devices in one process, each
 * a small RAM sim flash run by the real bootloader core (airlock_boot), the
 * core streaming writer (airlock_ota_*) and the DDI state machine
 * (airlock_ddi_*), against the real update server over one libcurl multi
 * event loop, in compressed time and with faults. Host only (sim/); never
 * keeps in RAM what a real device keeps on flash (the DDI record lives in a
 * power-safe area of each device's sim flash).
 */
#ifndef AIRLOCK_SIM_FLEET_H
#define AIRLOCK_SIM_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/crypto.h"

#define AIRLOCK_FLEET_VERSION_MAX 32
#define AIRLOCK_FLEET_BUCKETS 64 /* (version, state) pairs in a report */

/* A device's state as the report counts it. */
enum airlock_fleet_state {
    AIRLOCK_FLEET_IDLE = 0,     /* running a confirmed image, no update in hand */
    AIRLOCK_FLEET_UPDATING = 1, /* an action in hand (downloading, installing, reporting) */
    AIRLOCK_FLEET_BOOTING = 2,  /* in the bootloader or its start-up / health checks */
    AIRLOCK_FLEET_OFF = 3,      /* power off or rebooting */
    AIRLOCK_FLEET_OFFLINE = 4,  /* running, its network down */
    AIRLOCK_FLEET_BRICKED = 5,  /* the bootloader found no bootable verified image */
    AIRLOCK_FLEET_NSTATES = 6,
};

/* "idle", "updating", ... */
const char *airlock_fleet_state_name(int state);

/* Why the run stopped. */
enum airlock_fleet_stop {
    AIRLOCK_FLEET_STOP_VERSION = 1,  /* --until-version reached */
    AIRLOCK_FLEET_STOP_CAMPAIGN = 2, /* --until-campaign-done: the campaign is done */
    AIRLOCK_FLEET_STOP_DURATION = 3, /* --duration elapsed */
    AIRLOCK_FLEET_STOP_SIGNAL = 4,   /* *cfg->stop became non-zero */
};

/* "version", "campaign", "duration", "signal". */
const char *airlock_fleet_stop_name(int stop);

/* What the live progress line shows, once a second. */
typedef struct airlock_fleet_live {
    double elapsed_s;
    unsigned per_state[AIRLOCK_FLEET_NSTATES];
    unsigned nversions;
    const char *versions[AIRLOCK_FLEET_BUCKETS]; /* running versions seen ... */
    unsigned per_version[AIRLOCK_FLEET_BUCKETS]; /* ... and devices on each now */
    unsigned downloads;                          /* downloads in flight */
    unsigned requests;                           /* HTTP requests in flight or queued */
    double checkins_per_s;                       /* polls answered in the last second */
    uint64_t powercuts, drops, server_errors;
    const char *campaign_state; /* --until-campaign-done: its state, "" until known */
} airlock_fleet_live_t;

typedef struct airlock_fleet_cfg {
    unsigned n;                /* devices */
    const char *server;        /* "https://host:port", no trailing slash */
    const char *tenant;        /* NULL: "DEFAULT" */
    const char *ca_file;       /* PEM CA the server's chain must verify against; NULL: system */
    const char *id_prefix;     /* controller ids: prefix + zero-padded index; NULL: "sim-" */
    const char *gateway_token; /* enrol and authenticate with GatewayToken; or ... */
    const char *const *device_tokens; /* ... per device TargetToken (n of them) */
    const char *operator_token;       /* operator API (campaign stop, audit); may be NULL */
    /* The factory image flashed into every device's primary slot. */
    const uint8_t *factory;
    size_t factory_len;
    /* The bootloader's trust and engine. */
    const airlock_crypto_t *crypto;
    const airlock_pubkey_t *keys;
    size_t nkeys;
    const airlock_engine_t *engine; /* must be able to revert (swap-2n, ...) */
    uint32_t slot_size;             /* bytes per slot, a multiple of 4 KiB */
    uint32_t max_trials;            /* trial boots of an unconfirmed update; 0: 1 */
    unsigned max_conns;             /* concurrent connections (and requests); 0: 32 */
    double time_scale;              /* virtual seconds per real second; 0: 1 */
    uint64_t seed;
    /* Firmware behaviour by running version ("1.2.0"); NULL: none. */
    const char *bad_version;  /* crashes at start-up: never confirms */
    const char *hang_version; /* hangs at start-up: the watchdog resets it */
    double boot_s;            /* virtual seconds of boot + health checks; 0: 2 */
    double watchdog_s;        /* virtual seconds before a hung image is reset; 0: 10 */
    /* Fault rates (probabilities 0..1; see docs/simulator.md "fleet"). */
    double drop;       /* per download request: the connection drops at a random byte */
    double powercut;   /* per download and per install: power cut at a random flash op */
    double slow;       /* per download: the link is capped to slow_bps */
    double offline;    /* per check-in: the device goes offline for offline_s */
    double storm;      /* per check-in: a reboot storm of 2-5 reboots */
    uint32_t slow_bps; /* virtual bytes per second of a slow link; 0: 4096 */
    double offline_s;  /* longest offline spell, virtual seconds; 0: 30 */
    /* Stop conditions (any that is set). */
    const char *until_version;  /* every device confirmed on it or given up on it */
    const char *until_campaign; /* this campaign done (needs operator_token) */
    double duration_s;          /* real seconds; 0: none */
    volatile int *stop;         /* polled: non-zero stops the run */
    /* Live progress, about once a second; may be NULL. */
    void (*live)(void *ctx, const airlock_fleet_live_t *live);
    void *ctx;
} airlock_fleet_cfg_t;

typedef struct airlock_fleet_bucket {
    char version[AIRLOCK_FLEET_VERSION_MAX];
    int state; /* enum airlock_fleet_state */
    unsigned count;
} airlock_fleet_bucket_t;

typedef struct airlock_fleet_report {
    unsigned devices;
    unsigned nbuckets;
    airlock_fleet_bucket_t buckets[AIRLOCK_FLEET_BUCKETS];
    int stop; /* enum airlock_fleet_stop */
    uint64_t seed;
    double wall_s;
    /* device outcomes */
    unsigned bricked;
    char bricked_first[160]; /* "sim-00012: <bootloader message>" */
    uint64_t boots, installs, reverts, confirms, crashes, watchdog_resets;
    uint64_t verify_failures; /* downloads refused by airlock_ota_* + rejected at boot */
    uint64_t reports_failed;  /* final failure reports acknowledged (e.g. reverts) */
    uint64_t reports_success; /* final success reports acknowledged */
    unsigned nfailures;       /* the first final failure reports, in words: */
    char failures[5][256];    /* "sim-00042 -> 1.2.0: reverted from 1.2.0: ..." */
    /* downloads */
    uint64_t downloads_ok;
    uint64_t bytes_downloaded; /* artifact body bytes received */
    uint64_t bytes_min;        /* sum of artifact sizes of completed downloads */
    uint64_t resumes;          /* requests continuing with Range from byte > 0 */
    uint64_t restarts;         /* downloads started over from byte 0 */
    /* faults injected */
    uint64_t powercuts, powercuts_download, powercuts_swap, powercuts_other;
    uint64_t drops, slow_links, offline_spells, storms;
    /* the server as seen */
    uint64_t requests, checkins;
    uint64_t http_5xx, http_429, http_4xx, conn_failures;
    char conn_first[160]; /* the first connection failure, in libcurl's words */
    double checkins_per_s;
    char campaign_state[32];
    /* audit against the operator API */
    bool audited;
    uint64_t audit_reports; /* acknowledged reports checked */
    uint64_t audit_missing; /* ... not found on the server */
    uint64_t audit_errors;  /* devices whose record could not be fetched */
    char audit_first[256];  /* the first missing one, in words */
} airlock_fleet_report_t;

/*
 * Run the fleet until a stop condition, then audit (if operator_token) and
 * fill *rep. Returns 0 (rep says how the fleet did), or AIRLOCK_ERR_INVAL
 * (bad cfg: msg says which field), AIRLOCK_ERR_NOMEM, AIRLOCK_ERR_LAYOUT
 * (the factory image or engine does not fit the slots) with msg filled.
 */
int airlock_fleet_run(const airlock_fleet_cfg_t *cfg, airlock_fleet_report_t *rep, char *msg,
                      size_t msg_len);

#endif /* AIRLOCK_SIM_FLEET_H */
