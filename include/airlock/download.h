/*
 * HTTPS download of an update straight into the secondary slot (agent/,
 * libcurl): the transport half of the device agent, for devices that run
 * Linux or another OS with libcurl. Every byte goes through airlock_ota_*,
 * so a bad image is refused as soon as its bytes show it and the transfer
 * stops there; a download succeeds only once airlock_ota_end has verified
 * the whole image (hash, signature, version, security counter).
 *
 * What it does for the caller:
 * - TLS always verified against a CA chain: the system store, or ca_file /
 *   ca_path; optionally also a pin on the SHA-256 of a CA's public key
 *   (SubjectPublicKeyInfo) that must appear above the server's leaf in the
 *   verified chain. Host name checked. Plain http only with allow_http.
 * - Resume: a HEAD learns the artifact's validator (strong ETag, else
 *   Last-Modified); the progress records in flash are named after the
 *   artifact id and that validator, so after a reset the download continues
 *   with "Range: bytes=N-" and "If-Range: <validator>". A changed artifact
 *   (new validator, or a 200 answer to the If-Range) starts over from byte 0:
 *   old and new bytes are never spliced. Without a validator it cannot tell,
 *   so it always starts over.
 * - Retries: connection failures, timeouts, stalls (below low_speed_limit
 *   bytes/s for low_speed_time_s), short bodies, 408/429/5xx are retried
 *   with exponential backoff and jitter (Retry-After honoured), continuing
 *   from the last byte received. Certificate, 4xx and image errors are not.
 * - A verification failure after a resumed or restarted download is retried
 *   once from byte 0 (the artifact may have changed under it).
 */
#ifndef AIRLOCK_DOWNLOAD_H
#define AIRLOCK_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/ota.h"

typedef struct airlock_dl_progress {
    uint64_t done;         /* image bytes written into the slot so far */
    uint64_t total;        /* artifact length, 0 while unknown */
    uint64_t received;     /* body bytes received in this call, all attempts */
    uint32_t resumed_from; /* image offset this call started writing at */
    unsigned attempt;      /* 1 for the first request of the download */
} airlock_dl_progress_t;

typedef struct airlock_dl_opts {
    const char *url;     /* https://host[:port]/path */
    const char *ca_file; /* PEM CA bundle to trust; NULL: the system store */
    const char *ca_path; /* hashed CA directory; NULL: none (or the system's) */
    /*
     * Optional pin: the SHA-256 of a CA certificate's SubjectPublicKeyInfo
     * (64 hex digits, "sha256:" prefix allowed) that must be in the verified
     * chain above the leaf. The chain is verified as without it; a leaf's key
     * never matches a pin.
     */
    const char *ca_pin;
    /*
     * The artifact's identity as the server names it (its SHA-256, say);
     * NULL: the URL. Mixed with the validator into the progress records'
     * id, so another artifact never resumes this one's bytes.
     */
    const uint8_t *artifact_id;
    size_t artifact_id_len;
    const char *const *headers; /* extra request headers, NULL-terminated; may be NULL */
    bool allow_http;            /* accept http:// (development only) */
    long connect_timeout_ms;    /* 0: 10000 */
    long low_speed_limit;       /* bytes/s; 0: 1 */
    long low_speed_time_s;      /* 0: 30 */
    unsigned max_attempts;      /* failed requests in a row before giving up; 0: 8 */
    unsigned backoff_ms;        /* first retry delay; 0: 500 */
    unsigned backoff_max_ms;    /* cap on a delay; 0: 30000 */
    uint64_t seed;              /* jitter PRNG seed; 0: from the clock */
    /* Called as bytes arrive (at most every 64 KiB or 100 ms) and at the end. */
    void (*progress)(void *ctx, const airlock_dl_progress_t *p);
    /* One line per retry, restart and resume decision; may be NULL. */
    void (*log)(void *ctx, const char *msg);
    /*
     * Wait ms milliseconds between attempts (NULL: sleep). Return non-zero to
     * cancel the download (CANCELLED; flash keeps what was written).
     */
    int (*wait)(void *ctx, unsigned ms);
    /* Polled during transfers; non-zero cancels. May be NULL. */
    int (*cancelled)(void *ctx);
    void *ctx;
} airlock_dl_opts_t;

typedef struct airlock_dl_result {
    int err;              /* what airlock_download returned */
    long http_status;     /* last HTTP status seen, 0 if none */
    int curl_code;        /* last libcurl result (CURLcode) */
    uint32_t image_len;   /* length of the downloaded image, 0 if unknown */
    uint32_t resumed_from; /* image offset the download continued from (0: fresh) */
    unsigned requests;    /* HTTP requests made, HEAD included */
    unsigned retries;     /* requests repeated after a transient failure */
    unsigned restarts;    /* times it started over from byte 0 */
    uint64_t received;    /* body bytes received */
    uint64_t written;     /* image bytes handed to airlock_ota_write */
    char validator[128];  /* the artifact's ETag or Last-Modified, "" if none */
    char msg[512];        /* what went wrong, for a human; "" on success */
} airlock_dl_result_t;

/*
 * Download opts->url into cfg's secondary slot through ota (caller-owned:
 * uninitialised, or finished with as airlock_ota_begin requires; on failure
 * it is released, on success it holds the verified download), continuing a download of the same artifact that a
 * reset or lost connection interrupted. On success (0) the image is fully
 * verified: call airlock_ota_set_pending next. Otherwise returns an image
 * error from airlock_ota_* (BAD_MAGIC, DOWNGRADE, HASH_MISMATCH, ...),
 * NETWORK, TLS, HTTP, INCOMPLETE, CANCELLED, IO (flash), INVAL (options) —
 * with result->msg saying what and where. result may be NULL.
 * Not thread-safe with respect to curl_global_init: call
 * airlock_download_global_init once at start-up.
 */
int airlock_download(airlock_ota_t *ota, const airlock_boot_cfg_t *cfg,
                     const airlock_dl_opts_t *opts, airlock_dl_result_t *result);

/* curl_global_init for the process; returns 0 or INVAL. */
int airlock_download_global_init(void);
void airlock_download_global_cleanup(void);

#endif /* AIRLOCK_DOWNLOAD_H */
