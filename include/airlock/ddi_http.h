/*
 * Blocking driver of the DDI state machine (airlock/ddi.h) for hosts with
 * libcurl: performs its requests over HTTPS (same TLS rules as
 * airlock_download: CA chain always verified, optional CA key pin, http://
 * only with allow_http), downloads through airlock_download into the
 * secondary slot with best-effort progress feedback, and sets the update
 * pending. Never reboots and never confirms: those are the firmware's.
 *
 * A firmware's main loop:
 *
 *   airlock_ddi_boot_from_ota(&boot_cfg, &boot);   // after its health checks
 *   airlock_ddi_init(&ddi, &ddi_cfg, &persist, &boot);
 *   for (;;) {
 *       int rc = airlock_ddi_http_run(&ddi, &boot_cfg, &opts, &hooks);
 *       if (rc == AIRLOCK_DDI_HTTP_INSTALL) reboot();   // pending + persist stored
 *       if (rc == AIRLOCK_DDI_HTTP_STOPPED) break;      // hooks.stop / hooks.sleep said so
 *       if (rc < 0) { log(airlock_strerror(rc)); reboot or retry later; }
 *   }
 *
 * A simulator compresses time through hooks.sleep (return at once, advance
 * its own clock) and ends a device with hooks.stop.
 */
#ifndef AIRLOCK_DDI_HTTP_H
#define AIRLOCK_DDI_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/ddi.h"

/* What airlock_ddi_http_run returns besides a negative airlock error. */
enum airlock_ddi_http_outcome {
    AIRLOCK_DDI_HTTP_INSTALL = 1, /* update set pending, persist stored: reboot now */
    AIRLOCK_DDI_HTTP_STOPPED = 2, /* hooks.stop or hooks.sleep asked to stop */
    AIRLOCK_DDI_HTTP_PERSIST = 3, /* no hooks.store: store airlock_ddi_persist(d), call again */
};

typedef struct airlock_ddi_http_opts {
    const char *ca_file;      /* PEM CA bundle; NULL: the system store */
    const char *ca_path;      /* hashed CA directory; NULL: none */
    const char *ca_pin;       /* SHA-256 of a CA's SubjectPublicKeyInfo (see download.h) */
    bool allow_http;          /* accept http:// URLs (development only) */
    bool permanent;           /* install for good; default false: a trial the firmware confirms */
    long connect_timeout_ms;  /* 0: 10000 */
    long request_timeout_ms;  /* one DDI request, whole; 0: 30000 */
    long progress_timeout_ms; /* one progress feedback (best effort); 0: 5000 */
    /* Downloads, as in airlock_dl_opts_t (0: its defaults). */
    long low_speed_limit;
    long low_speed_time_s;
    unsigned dl_max_attempts;
    unsigned dl_backoff_ms;
    unsigned dl_backoff_max_ms;
    uint64_t seed; /* download jitter; 0: from the clock */
} airlock_ddi_http_opts_t;

/* Counters, added to (never reset) by airlock_ddi_http_run, and the last outcomes. */
typedef struct airlock_ddi_http_stats {
    unsigned requests;     /* DDI requests made, progress feedback included */
    unsigned failures;     /* of those: no answer, an error status or not understood */
    unsigned downloads;    /* airlock_download calls */
    unsigned resumes;      /* ... that continued bytes already in the slot */
    uint64_t received;     /* artifact bytes received */
    int last_download_err; /* what the last airlock_download returned */
    int last_status;       /* HTTP status of the last DDI request (progress feedback
                              aside), 0 when it got no answer */
} airlock_ddi_http_stats_t;

typedef struct airlock_ddi_http_hooks {
    /*
     * Store the persist record durably (e.g. airlock_ddi_persist_encode to
     * flash); called whenever it changed, before the step that depends on
     * it. Return 0, or non-zero: airlock_ddi_http_run returns
     * AIRLOCK_ERR_IO. NULL: run returns AIRLOCK_DDI_HTTP_PERSIST instead.
     */
    int (*store)(void *ctx, const airlock_ddi_persist_t *p);
    /* Wait ms (poll interval, backoff). Non-zero: stop. NULL: sleep, watching stop. */
    int (*sleep)(void *ctx, uint32_t ms);
    /* Polled between steps and during transfers; non-zero: stop. May be NULL. */
    int (*stop)(void *ctx);
    /* One line per request and decision; may be NULL. */
    void (*log)(void *ctx, const char *line);
    void *ctx;
    airlock_ddi_http_stats_t *stats; /* may be NULL */
} airlock_ddi_http_hooks_t;

/*
 * Run d (initialised by airlock_ddi_init; its cfg.auth is sent as the
 * Authorization header of every request, downloads included) until there
 * is something for the caller to do:
 * - AIRLOCK_DDI_HTTP_INSTALL: the verified download in cfg's secondary slot
 *   is set pending (opts->permanent), then the persist record, now naming
 *   the action as installing, is stored (without hooks->store,
 *   airlock_ddi_persist_dirty(d) is true: store it yourself): reboot. A
 *   power cut between the two leaves the record saying "downloading"; after
 *   the reboot the server's offer of the same action finds its version
 *   running: on trial, it is recorded as installing and the next boot
 *   reports; confirmed, it reports success. After the reboot,
 *   airlock_ddi_init with that record and the new boot's facts sends the
 *   final report.
 * - AIRLOCK_DDI_HTTP_STOPPED: hooks asked to stop; call again to go on.
 * - AIRLOCK_DDI_HTTP_PERSIST: (only without hooks->store) persist changed.
 * - negative: AIRLOCK_ERR_INVAL (options, or libcurl cannot start),
 *   AIRLOCK_ERR_IO (hooks->store failed, or setting the update pending
 *   failed: the record is not stored; reboot), or the error of a download
 *   that had to be repeated to install after a stop.
 * Network and server errors are never returned: the machine retries them.
 * Needs airlock_download_global_init once per process. cfg as for
 * airlock_download (layout, engine, crypto, keys, buf).
 */
int airlock_ddi_http_run(airlock_ddi_t *d, const airlock_boot_cfg_t *cfg,
                         const airlock_ddi_http_opts_t *opts,
                         const airlock_ddi_http_hooks_t *hooks);

#endif /* AIRLOCK_DDI_HTTP_H */
