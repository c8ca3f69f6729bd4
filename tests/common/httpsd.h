/*
 * A small HTTPS server for download tests: serves one in-memory artifact on
 * 127.0.0.1 (ephemeral port) with strong ETags and single byte ranges, and
 * misbehaves on request (drop, stall, wrong length, artifact change, error
 * status, no range support) so the device agent's downloader can be driven
 * through every failure it must survive. Test code only; never shipped.
 *
 * Threads: libmicrohttpd runs one thread per connection; every function here
 * may be called from the test's thread while the server runs.
 * The process should ignore SIGPIPE (a peer may vanish mid-body).
 */
#ifndef AIRLOCK_HTTPSD_H
#define AIRLOCK_HTTPSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes the body callback hands to libmicrohttpd per call (at most). */
#define HTTPSD_BLOCK 16384
/* Faults that can be set at once (httpsd_add_fault). */
#define HTTPSD_MAX_FAULTS 8
/* Requests kept in the statistics log (the most recent ones). */
#define HTTPSD_LOG_LEN 64

typedef struct httpsd httpsd_t;

typedef struct httpsd_opts {
    const char *key_pem;  /* server private key, PEM (required) */
    const char *cert_pem; /* server certificate + chain, PEM (required) */
    const char *path;     /* URL path of the artifact; NULL = "/artifact.bin" */
    bool verbose;         /* libmicrohttpd's error log on stderr */
} httpsd_opts_t;

typedef enum httpsd_fault_kind {
    HTTPSD_FAULT_NONE = 0,
    /* Send exactly `after` body bytes, then close the connection (TLS
     * close_notify, then TCP close) without completing the body. */
    HTTPSD_FAULT_DROP,
    /* After `after` body bytes, send nothing for stall_ms milliseconds
     * (cut short when the server stops), then continue, or close as DROP
     * does if stall_drop. */
    HTTPSD_FAULT_STALL,
    /* Announce Content-Length = real + delta. delta > 0: send the real bytes,
     * then close. delta < 0: only the announced (shorter) count is sent and
     * the response ends cleanly, so the client sees a short but "complete"
     * body. */
    HTTPSD_FAULT_BAD_LENGTH,
    /* After `after` body bytes, install new_data as the artifact (new ETag
     * for every later request). The current response goes on with the old
     * bytes (a consistent snapshot), or, if splice, with the new artifact's
     * bytes from the same offset (a broken server); a spliced body shorter
     * than announced ends with a close. */
    HTTPSD_FAULT_CHANGE,
    /* Answer with `status` and a short text body instead of the artifact;
     * a Retry-After: retry_after header is added when retry_after > 0. */
    HTTPSD_FAULT_STATUS,
    /* Ignore Range/If-Range: 200 with the full body, no Accept-Ranges. */
    HTTPSD_FAULT_IGNORE_RANGE,
} httpsd_fault_kind_t;

/*
 * One fault and the GET requests it applies to. GETs are numbered 1, 2, ...
 * from the last httpsd_set_fault call (HEAD and requests for other paths do
 * not count); the fault applies to GETs first .. first + count - 1, or to
 * every GET from first on when count is 0. first 0 is taken as 1.
 * "The first GET drops after K bytes, later ones are fine" is
 * { .kind = HTTPSD_FAULT_DROP, .first = 1, .count = 1, .after = K }.
 * `after` counts body bytes of that response (of the range, for a 206); a
 * fault whose `after` is not below the body length never fires.
 */
typedef struct httpsd_fault {
    httpsd_fault_kind_t kind;
    unsigned first;
    unsigned count;
    uint64_t after;          /* DROP, STALL, CHANGE */
    unsigned stall_ms;       /* STALL */
    bool stall_drop;         /* STALL: close instead of resuming */
    long delta;              /* BAD_LENGTH */
    const uint8_t *new_data; /* CHANGE: copied by httpsd_set/add_fault */
    size_t new_len;
    bool splice;          /* CHANGE */
    unsigned status;      /* STATUS, e.g. 503 */
    unsigned retry_after; /* STATUS: seconds, 0 = no header */
} httpsd_fault_t;

/* One request as the server saw and answered it. */
typedef struct httpsd_req {
    uint64_t seq;   /* 1, 2, ... per request; httpsd_reset_stats keeps counting */
    char method[8]; /* "GET", "HEAD", or the first 7 bytes of another */
    bool has_range; /* a Range header was present ... */
    char range[80]; /* ... with this value (truncated, NUL-terminated) */
    bool has_if_range;
    char if_range[80];
    unsigned status;           /* status code sent */
    uint64_t length;           /* Content-Length announced */
    uint64_t sent;             /* artifact body bytes handed to the connection */
    httpsd_fault_kind_t fault; /* fault applied, HTTPSD_FAULT_NONE if none */
} httpsd_req_t;

typedef struct httpsd_stats {
    unsigned requests;   /* all requests */
    unsigned gets;       /* GET for the artifact path */
    unsigned heads;      /* HEAD for the artifact path */
    uint64_t body_bytes; /* artifact body bytes handed out, all responses */
    unsigned nlog;       /* entries in log, oldest first (<= HTTPSD_LOG_LEN) */
    httpsd_req_t log[HTTPSD_LOG_LEN];
} httpsd_stats_t;

/*
 * Start serving on 127.0.0.1, port chosen by the kernel. The artifact starts
 * empty (set it before the client asks). Returns 0 and *out, or -1 (bad key
 * or certificate, no socket, no memory).
 */
int httpsd_start(const httpsd_opts_t *o, httpsd_t **out);

/* The port the server listens on. */
uint16_t httpsd_port(const httpsd_t *s);

/*
 * Replace the artifact with a copy of data[0..len). Responses already under
 * way keep the bytes they started with. Returns 0 or -1 (no memory; the old
 * artifact stays).
 */
int httpsd_set_artifact(httpsd_t *s, const uint8_t *data, size_t len);

/* The current artifact's ETag, quoted ("\"<16 hex>\"") into out. */
void httpsd_etag(httpsd_t *s, char out[24]);

/*
 * Replace all faults by f (NULL = no faults) and restart GET numbering.
 * Returns 0 or -1 (no memory for new_data).
 */
int httpsd_set_fault(httpsd_t *s, const httpsd_fault_t *f);

/*
 * Add one more fault without restarting GET numbering; when several match a
 * GET the earliest added wins. Returns 0, or -1 when HTTPSD_MAX_FAULTS are
 * set or memory runs out.
 */
int httpsd_add_fault(httpsd_t *s, const httpsd_fault_t *f);

/* Throttle every response body to about bytes_per_sec (0 = unlimited). */
void httpsd_set_rate(httpsd_t *s, uint64_t bytes_per_sec);

/* Copy the statistics (a consistent snapshot). */
void httpsd_stats(httpsd_t *s, httpsd_stats_t *out);

/* Zero the statistics and the request log. */
void httpsd_reset_stats(httpsd_t *s);

/*
 * Stop: cut stalls and throttling short, close every connection, join the
 * server's threads and free everything. NULL is a no-op.
 */
void httpsd_stop(httpsd_t *s);

#endif
