/*
 * Device side of hawkBit's Direct Device Integration (DDI) API, as a state
 * machine with no I/O: it says which request to make next and digests the
 * answer. No malloc, no clock, no sockets, no stdio: every byte it needs is
 * in airlock_ddi_t, so firmware can embed it as is. The caller performs the
 * requests: agent/ddi_http.c with libcurl (blocking), the fleet simulator
 * with curl multi, real firmware with its own HTTP stack.
 *
 * One cycle, as a device runs it:
 *
 *   airlock_ddi_init(&d, &cfg, &persist, &boot);
 *   for (;;) {
 *       airlock_ddi_next(&d, &req);
 *       switch (req.kind) {
 *       case AIRLOCK_DDI_REQ_HTTP:     do req.method req.url [req.body];
 *                                      airlock_ddi_response(&d, status, body, len);
 *       case AIRLOCK_DDI_REQ_SLEEP:    wait req.sleep_ms (or less);
 *       case AIRLOCK_DDI_REQ_DOWNLOAD: download req.url into the secondary
 *                                      slot and verify it (airlock_download);
 *                                      airlock_ddi_download_done(&d, err, msg);
 *       case AIRLOCK_DDI_REQ_INSTALL:  airlock_ota_set_pending; store persist; reboot
 *       case AIRLOCK_DDI_REQ_ABORT:    abandon the download in progress (cancelled)
 *       }
 *       if (airlock_ddi_persist_dirty(&d)) store airlock_ddi_persist(&d);
 *   }
 *
 * What it sends, in order:
 * - after a boot, once: PUT configData with the running version (the server
 *   takes the "version" attribute as the device's version), and whenever the
 *   poll answer carries a configData link;
 * - after a boot that followed an install (persist.phase INSTALLING), if
 *   the bootloader has acted on the request (else REQ_INSTALL again; and no
 *   verdict while the target runs unconfirmed, on trial): the final
 *   feedback for that action: closed/success if the running version is
 *   the action's and the image is confirmed, closed/failure with the revert
 *   reason if the bootloader reverted it (or the running version is not the
 *   target's). Retried until the server answers 2xx (or 410: already
 *   closed; another 4xx but 401/403/408/429: refused, the verdict stands);
 *   only then is the action forgotten (and recorded as done).
 * - GET the controller base (poll); its sleep time sets the next SLEEP;
 * - a cancelAction link: GET it, then POST its feedback closed/success;
 *   a download of that action in progress is abandoned (REQ_ABORT);
 * - a deploymentBase link: GET it; an action already finished is not done
 *   again; nothing is done while its download or update is "skip" (the
 *   next poll looks again); an artifact whose version is the running one
 *   is reported closed/success without a download if that image is
 *   confirmed; if it runs on trial and the record says the action was
 *   downloading (a power cut before INSTALLING was stored), the action is
 *   recorded as INSTALLING, no verdict: the next boot's final report
 *   decides; else feedback proceeding, DOWNLOAD, proceeding with progress
 *   (airlock_ddi_progress) while it runs, then closed/failure (download or
 *   verification error, with its message) or proceeding "installing" and
 *   INSTALL.
 * - transport failures and 5xx/408/429 are retried after a backoff SLEEP
 *   (doubling from cfg.retry_ms up to the poll interval; a poll naming a
 *   link resets it only once the link's GET succeeds); a failed GET of a
 *   deploymentBase or cancelAction link is followed by a poll (fresh
 *   links), never by the same GET; 401/403 stop with AIRLOCK_DDI_REQ_SLEEP
 *   of the poll interval and airlock_ddi_error() set.
 *
 * Threading: one airlock_ddi_t per device, used by one thread at a time.
 */
#ifndef AIRLOCK_DDI_H
#define AIRLOCK_DDI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIRLOCK_DDI_URL_MAX 320    /* longest URL it builds or accepts, NUL included */
#define AIRLOCK_DDI_BODY_MAX 768   /* longest request body it builds, NUL included */
#define AIRLOCK_DDI_VERSION_MAX 32 /* longest version string, NUL included */
#define AIRLOCK_DDI_NAME_MAX 96    /* longest artifact file name, NUL included */
#define AIRLOCK_DDI_MSG_MAX 160    /* longest message (error or revert reason) */
#define AIRLOCK_DDI_TOKENS 160     /* JSON tokens a response may have */

/* What the caller is to do next (airlock_ddi_req_t.kind). */
enum airlock_ddi_req_kind {
    AIRLOCK_DDI_REQ_HTTP = 1,     /* perform the request, then airlock_ddi_response */
    AIRLOCK_DDI_REQ_SLEEP = 2,    /* nothing to do for sleep_ms */
    AIRLOCK_DDI_REQ_DOWNLOAD = 3, /* download + verify, then airlock_ddi_download_done */
    AIRLOCK_DDI_REQ_INSTALL = 4,  /* set pending, store persist, reboot */
    AIRLOCK_DDI_REQ_ABORT = 5,    /* abandon the download in progress; then next */
};

/* persist.phase */
enum airlock_ddi_phase {
    AIRLOCK_DDI_PHASE_NONE = 0,        /* no action in hand */
    AIRLOCK_DDI_PHASE_DOWNLOADING = 1, /* action accepted, download under way */
    AIRLOCK_DDI_PHASE_INSTALLING = 2,  /* image pending, reboot requested: report after boot */
};

/*
 * What survives a reboot. Plain fixed-size data: the caller stores it
 * (airlock_ddi_persist_encode gives a CRC-protected little-endian record)
 * whenever airlock_ddi_persist_dirty() is true, and hands it back to
 * airlock_ddi_init after the next boot. All zero = a new device.
 */
typedef struct airlock_ddi_persist {
    uint64_t action_id;                             /* action in hand, 0: none */
    uint8_t phase;                                  /* enum airlock_ddi_phase */
    char version[AIRLOCK_DDI_VERSION_MAX];          /* the action's target version */
    uint8_t sha256[32];                             /* the action's artifact */
    uint32_t size;                                  /* its length */
    uint64_t last_done;                             /* last action reported closed; never redone */
    char reported_version[AIRLOCK_DDI_VERSION_MAX]; /* last version sent in configData */
} airlock_ddi_persist_t;

#define AIRLOCK_DDI_PERSIST_LEN 128 /* bytes of the encoded record */

/* Encode p into out (AIRLOCK_DDI_PERSIST_LEN bytes: magic, fields, CRC-32). */
void airlock_ddi_persist_encode(const airlock_ddi_persist_t *p, uint8_t *out);

/*
 * Decode AIRLOCK_DDI_PERSIST_LEN bytes. Returns 0, or AIRLOCK_ERR_INVAL
 * (bad magic, CRC or field: *p is zeroed, i.e. a new device).
 */
int airlock_ddi_persist_decode(const uint8_t *in, airlock_ddi_persist_t *p);

/* Facts about this boot, from airlock_ota_state (airlock_ddi_boot_from_ota below). */
typedef struct airlock_ddi_boot {
    char running_version[AIRLOCK_DDI_VERSION_MAX];  /* "1.1.0" (build number omitted if 0) */
    bool confirmed;                                 /* the running image is confirmed */
    bool reverted;                                  /* the bootloader reverted an update */
    char reverted_version[AIRLOCK_DDI_VERSION_MAX]; /* which, if reverted */
    char reason[AIRLOCK_DDI_MSG_MAX];               /* why, for the failure report */
    /*
     * An update is still requested for the next boot (airlock_ota_state's
     * pending): after an install the bootloader has not acted on it yet, so
     * the machine asks for REQ_INSTALL (reboot) again instead of a verdict.
     */
    bool pending;
} airlock_ddi_boot_t;

typedef struct airlock_ddi_cfg {
    const char *base_url;      /* "https://host:port" (no trailing slash) */
    const char *tenant;        /* "DEFAULT" */
    const char *controller_id; /* the device's id; [A-Za-z0-9._:-], at most 64 */
    /* Authorization header value: "TargetToken X" or "GatewayToken X". */
    const char *auth;
    uint32_t retry_ms;        /* first backoff after a failed request; 0: 1000 */
    uint32_t default_poll_ms; /* until the server names one; 0: 60000 */
    uint32_t max_poll_ms;     /* cap on the server's sleep; 0: none */
    /* Send progress feedback at most every this many bytes; 0: 10 % steps. */
    uint32_t progress_step;
} airlock_ddi_cfg_t;

typedef struct airlock_ddi_req {
    int kind;           /* enum airlock_ddi_req_kind */
    const char *method; /* REQ_HTTP: "GET", "PUT" or "POST" */
    /* REQ_HTTP and REQ_DOWNLOAD: absolute; REQ_INSTALL: the artifact's, NULL if not this boot */
    const char *url;
    const char *body; /* REQ_HTTP PUT/POST: JSON, NUL-terminated; else NULL */
    size_t body_len;
    uint32_t sleep_ms; /* REQ_SLEEP */
    /* REQ_DOWNLOAD: what the server says the artifact is (REQ_INSTALL: size, sha256, version). */
    uint32_t size;
    uint8_t sha256[32];
    const char *version;  /* the target version */
    const char *filename; /* the artifact's name (REQ_INSTALL: NULL with url) */
    uint64_t action_id;   /* REQ_DOWNLOAD, REQ_INSTALL, REQ_ABORT */
} airlock_ddi_req_t;

/*
 * The state machine. Caller-allocated; all fields private. About 6 KiB
 * (URL, body and response-token buffers included); see docs/device-api.md.
 */
typedef struct airlock_ddi {
    /* private */
    airlock_ddi_cfg_t cfg;
    airlock_ddi_persist_t persist;
    airlock_ddi_boot_t boot;
    int state;
    int pending_after; /* state to go to after a sleep */
    bool dirty;
    bool config_due;  /* configData to send */
    bool final_due;   /* after-reboot report to send */
    bool poll_due;    /* poll before anything else */
    bool install_due; /* the install did not happen: ask for the reboot again */
    bool cancel_due;  /* the last poll named a cancelAction */
    bool deploy_due;  /* the last poll named a deploymentBase */
    bool cancel_reject;
    bool close_ok; /* the closed feedback to send is a success */
    uint32_t poll_ms;
    uint32_t sleep_ms;
    uint32_t backoff_ms;
    uint32_t last_progress;
    uint64_t cancel_id;
    uint64_t deploy_id; /* action named by deploy_url, 0 if unknown */
    uint64_t action_id; /* the action the current request is about */
    uint32_t art_size;
    uint8_t art_sha256[32];
    char art_version[AIRLOCK_DDI_VERSION_MAX];
    char art_name[AIRLOCK_DDI_NAME_MAX];
    char deploy_url[AIRLOCK_DDI_URL_MAX];
    char cancel_url[AIRLOCK_DDI_URL_MAX];
    char config_url[AIRLOCK_DDI_URL_MAX];
    char download_url[AIRLOCK_DDI_URL_MAX];
    char url[AIRLOCK_DDI_URL_MAX];
    char body[AIRLOCK_DDI_BODY_MAX];
    char msg[AIRLOCK_DDI_MSG_MAX];
    char error[AIRLOCK_DDI_MSG_MAX];
    uint32_t tokens_[AIRLOCK_DDI_TOKENS * 4]; /* jsmn tokens, parsed in place */
} airlock_ddi_t;

/*
 * Start the machine for this boot. persist is what was stored before the
 * reboot (all zero for a new device), boot what airlock_ota_state said.
 * Returns 0, or AIRLOCK_ERR_INVAL (a NULL or too-long field of cfg; names
 * which in airlock_ddi_error). cfg's strings must outlive d.
 */
int airlock_ddi_init(airlock_ddi_t *d, const airlock_ddi_cfg_t *cfg,
                     const airlock_ddi_persist_t *persist, const airlock_ddi_boot_t *boot);

/*
 * What to do next, in *req (its strings point into d and stay valid until
 * the next call on d). Never fails; after an error it asks for a SLEEP.
 */
void airlock_ddi_next(airlock_ddi_t *d, airlock_ddi_req_t *req);

/*
 * The answer to the last REQ_HTTP: HTTP status (0: no answer — connection
 * failed, timed out, TLS error) and body (need not be NUL-terminated; it is
 * not kept). Returns 0 if the answer was understood (a 410 to a closing
 * feedback included: the action is closed already), else AIRLOCK_ERR_HTTP
 * (unexpected status, or a 200 whose body is not the JSON DDI specifies:
 * airlock_ddi_error then names the field), AIRLOCK_ERR_NETWORK (status 0),
 * or AIRLOCK_ERR_INVAL (no request was outstanding); in every case the
 * machine has already planned its retry. A 404 (gone) or another 4xx but
 * 401/403/408/429 to a request about an action makes it forget that action
 * (the server offers it again at a poll if it still wants it done); to a
 * closing feedback (final report, closed, cancel feedback) the device's
 * verdict stands: the action is recorded as done (persist.last_done) and
 * never done again (a rejected cancel keeps the installing action).
 * A cancelAction link whose feedback URL would exceed AIRLOCK_DDI_URL_MAX
 * makes the poll answer an error naming the field (never a cut URL).
 */
int airlock_ddi_response(airlock_ddi_t *d, int status, const char *body, size_t len);

/*
 * The outcome of the last REQ_DOWNLOAD: 0 (downloaded and verified), or the
 * airlock error with a human message (may be NULL), reported to the server
 * as the action's failure. CANCELLED and NETWORK after the download's own
 * retries leave the action in hand: it is tried again at the next poll.
 */
void airlock_ddi_download_done(airlock_ddi_t *d, int err, const char *msg);

/*
 * While a REQ_DOWNLOAD runs: done of total bytes are in the slot. Returns
 * true and fills *req with a progress feedback (REQ_HTTP, proceeding,
 * progress cnt/of in percent) when one is due per cfg.progress_step; the
 * caller may send it or not, and must not pass its answer to
 * airlock_ddi_response. Uses its own buffer: the REQ_DOWNLOAD's strings
 * stay valid.
 */
bool airlock_ddi_progress(airlock_ddi_t *d, uint64_t done, uint64_t total, airlock_ddi_req_t *req);

/* The state to store; valid after any call. */
const airlock_ddi_persist_t *airlock_ddi_persist(const airlock_ddi_t *d);

/* True once since the persist record last changed (reading clears it). */
bool airlock_ddi_persist_dirty(airlock_ddi_t *d);

/* The last error in words ("" if none): which request, which field. */
const char *airlock_ddi_error(const airlock_ddi_t *d);

/*
 * The server's poll interval as last seen (ms), the default until then.
 */
uint32_t airlock_ddi_poll_ms(const airlock_ddi_t *d);

/* ---- agent/ddi_boot.c: the boot facts from core (links airlock_core) ---- */

struct airlock_boot_cfg;
struct airlock_version;

/*
 * Fill *boot from airlock_ota_state(cfg): the running version as
 * airlock_ddi_version_str writes it, confirmed, and after a revert the
 * reverted version and a reason for the failure report. Never writes
 * flash; freestanding. Returns 0 or what airlock_ota_state returns (*boot
 * is then all zero).
 */
int airlock_ddi_boot_from_ota(const struct airlock_boot_cfg *cfg, airlock_ddi_boot_t *boot);

/*
 * "1.2.3" (build number 0 omitted) or "1.2.3+4", as the server names
 * artifact versions; cut to cap bytes with the NUL.
 */
void airlock_ddi_version_str(const struct airlock_version *v, char *buf, size_t cap);

#endif /* AIRLOCK_DDI_H */
