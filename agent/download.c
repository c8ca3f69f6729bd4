/*
 * HTTPS download into the secondary slot (include/airlock/download.h).
 *
 * One libcurl easy handle per download (connections are reused across its
 * requests). A HEAD learns the artifact's validator and length; the body
 * then streams to airlock_ota_write (on a writer thread, agent/slot_writer.c,
 * so decryption and hashing/programming overlap) from the write callback, which
 * decides on the first body byte what the response means: 206 continues,
 * 200 either repeats what we have (same validator: skip that many bytes) or
 * is another artifact (start over), anything else is an error page and is
 * never written. Each failed request is classified as transient (retry with
 * backoff), a TLS rejection, an HTTP error or an image error.
 */
#define _POSIX_C_SOURCE 200809L

#include "airlock/download.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "airlock/crypto.h"
#include "https.h"
#include "slot_writer.h"

#define VALIDATOR_MAX 128
#define PROGRESS_BYTES (64u * 1024u)
#define PROGRESS_NS 100000000ll
#define RETRY_AFTER_MAX_MS 600000u

enum body_mode { BODY_UNDECIDED, BODY_WRITE, BODY_DISCARD, BODY_ABORT };

/* What one response said, from its headers. */
struct response {
    long status;
    char etag[VALIDATOR_MAX];
    char last_modified[VALIDATOR_MAX];
    bool has_range;
    uint64_t range_start, range_total; /* Content-Range: bytes S-E/T (T 0 if "*") */
    bool has_unsat_total;
    uint64_t unsat_total; /* Content-Range: bytes * /T of a 416 */
    unsigned retry_after_s;
};

struct dl {
    CURL *h;
    const airlock_dl_opts_t *o;
    airlock_ota_t *ota;
    const airlock_boot_cfg_t *cfg;
    airlock_dl_result_t *r;
    uint64_t rng;
    /* the artifact as last seen */
    char validator[VALIDATOR_MAX];
    uint64_t total;
    uint8_t id[AIRLOCK_OTA_ID_SIZE];
    https_pin_t pin; /* the CA key pin's state (agent/https.c) */
    /* the request in flight */
    struct response resp;
    uint64_t from;
    int mode;
    uint64_t skip;
    bool progressed;
    bool force_fresh;
    bool restarted;
    int ota_err;
    int cb_err;
    bool cancel;
    bool started;     /* ota was begun or resumed by this call: only then is it ours to abort */
    slot_writer_t sw; /* while sw_on: the only user of ota (see on_body) */
    bool sw_on;
    bool sw_tried; /* this request already tried to start it */
    char what[2 * VALIDATOR_MAX + 64]; /* why the request failed (two validators fit) */
    /* progress throttling */
    uint64_t prog_bytes;
    int64_t prog_ns;
    unsigned attempt;
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- small helpers --------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void logf_(struct dl *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct dl *d, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    if (!d->o->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    d->o->log(d->o->ctx, line);
}

static int fail(struct dl *d, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct dl *d, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->r->msg, sizeof(d->r->msg), fmt, ap);
    va_end(ap);
    d->r->err = err;
    return err;
}

static bool name_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') {
        return false;
    }
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    *value = v;
    return true;
}

/* Copy a header value (up to CR/LF, trailing blanks cut) into out. */
static void copy_value(char *out, size_t cap, const char *v, const char *end)
{
    size_t n = 0;
    while (v + n < end && v[n] != '\r' && v[n] != '\n') {
        n++;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    if (n >= cap) {
        n = 0; /* a validator this long is not one we can echo back: ignore it */
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

static bool parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s)) {
        return false;
    }
    while (isdigit((unsigned char)*s)) {
        if (v > (UINT64_MAX - 9u) / 10u) {
            return false;
        }
        v = v * 10u + (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

/* "bytes S-E/T", "bytes S-E/ *" or "bytes * /T" (without the spaces). */
static void parse_content_range(struct response *rs, const char *v)
{
    uint64_t a, b, t = 0;
    if (strncasecmp(v, "bytes ", 6) != 0) {
        return;
    }
    v += 6;
    if (*v == '*') {
        v++;
        if (*v == '/' && (v++, parse_u64(&v, &t))) {
            rs->has_unsat_total = true;
            rs->unsat_total = t;
        }
        return;
    }
    if (!parse_u64(&v, &a) || *v++ != '-' || !parse_u64(&v, &b) || *v++ != '/' || b < a) {
        return;
    }
    if (*v != '*' && !parse_u64(&v, &t)) {
        return;
    }
    rs->has_range = true;
    rs->range_start = a;
    rs->range_total = t;
}

/* The validator a response offers for If-Range: a strong ETag, else its date. */
static const char *response_validator(const struct response *rs)
{
    if (rs->etag[0] && strncmp(rs->etag, "W/", 2) != 0) {
        return rs->etag;
    }
    return rs->last_modified;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct dl *d = ud;
    size_t len = size * n;
    const char *end = p + len, *v;
    struct response *rs = &d->resp;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response (after a redirect or an interim 1xx): forget the last */
        memset(rs, 0, sizeof(*rs));
        const char *s = memchr(p, ' ', len);
        uint64_t code;
        if (s && (s++, parse_u64(&s, &code)) && code < 1000) {
            rs->status = (long)code;
        }
        return len;
    }
    char line[512];
    if (len >= sizeof(line)) {
        return len; /* no header we read is that long */
    }
    memcpy(line, p, len);
    line[len] = '\0';
    end = line + len;
    if (name_is(line, len, "etag", &v)) {
        copy_value(rs->etag, sizeof(rs->etag), v, end);
    } else if (name_is(line, len, "last-modified", &v)) {
        copy_value(rs->last_modified, sizeof(rs->last_modified), v, end);
    } else if (name_is(line, len, "content-range", &v)) {
        parse_content_range(rs, v);
    } else if (name_is(line, len, "retry-after", &v)) {
        uint64_t s;
        if (parse_u64(&v, &s)) {
            rs->retry_after_s = s > 86400u ? 86400u : (unsigned)s;
        }
    }
    return len;
}

/* ---- identity ------------------------------------------------------------------ */

/* id = SHA-256("airlock-download\0" artifact-id-or-URL "\0" validator). */
static int make_id(struct dl *d)
{
    static const char tag[] = "airlock-download";
    const airlock_crypto_t *c = d->cfg->crypto;
    airlock_hash_t hs;
    const void *name = d->o->artifact_id ? (const void *)d->o->artifact_id : d->o->url;
    size_t name_len = d->o->artifact_id ? d->o->artifact_id_len : strlen(d->o->url);
    if (c->hash_init(&hs, AIRLOCK_HASH_SHA256) != 0) {
        return fail(d, AIRLOCK_ERR_CRYPTO, "cannot hash the artifact id");
    }
    int rc = c->hash_update(&hs, tag, sizeof(tag));
    rc |= c->hash_update(&hs, name, name_len);
    rc |= c->hash_update(&hs, "", 1);
    rc |= c->hash_update(&hs, d->validator, strlen(d->validator));
    rc |= c->hash_finish(&hs, d->id);
    return rc ? fail(d, AIRLOCK_ERR_CRYPTO, "cannot hash the artifact id") : 0;
}

static void adopt_validator(struct dl *d, const struct response *rs)
{
    snprintf(d->validator, sizeof(d->validator), "%s", response_validator(rs));
    snprintf(d->r->validator, sizeof(d->r->validator), "%s", d->validator);
}

/* ---- progress ------------------------------------------------------------------ */

static void progress(struct dl *d, bool force)
{
    if (!d->o->progress) {
        return;
    }
    int64_t t = now_ns();
    uint32_t pos32, len;
    if (d->sw_on) {
        slot_writer_state(&d->sw, &pos32, &len);
    } else {
        pos32 = airlock_ota_pos(d->ota);
        len = airlock_ota_image_len(d->ota);
    }
    uint64_t pos = pos32;
    if (!force && pos - d->prog_bytes < PROGRESS_BYTES && t - d->prog_ns < PROGRESS_NS) {
        return;
    }
    d->prog_bytes = pos;
    d->prog_ns = t;
    airlock_dl_progress_t p = {
        .done = pos,
        .total = len ? len : d->total,
        .received = d->r->received,
        .resumed_from = d->r->resumed_from,
        .attempt = d->attempt,
    };
    d->o->progress(d->o->ctx, &p);
}

/* ---- the body ------------------------------------------------------------------ */

/*
 * Release what this call started in ota (never an ota it did not begin or
 * resume: the caller's may be uninitialised).
 */
static void drop(struct dl *d)
{
    if (d->started) {
        airlock_ota_abort(d->ota);
        d->started = false;
    }
}

/* Start the slot over for the artifact this response carries. */
static int restart_in_body(struct dl *d, const char *why)
{
    adopt_validator(d, &d->resp);
    int rc = make_id(d);
    if (rc) {
        return rc;
    }
    logf_(d, "%s: starting over from byte 0", why);
    drop(d);
    d->started = true;
    rc = airlock_ota_begin(d->ota, d->cfg, 0, d->id);
    if (rc) {
        return fail(d, rc, "cannot restart the download in the slot: %s", airlock_strerror(rc));
    }
    d->r->restarts++;
    d->restarted = true;
    return 0;
}

/* First body byte of a response: what do its bytes mean? */
static void decide(struct dl *d)
{
    const struct response *rs = &d->resp;
    const char *rv = response_validator(rs);
    d->mode = BODY_ABORT;
    if (rs->status == 206) {
        if (!rs->has_range || rs->range_start != d->from) {
            snprintf(d->what, sizeof(d->what),
                     "206 answer to \"Range: bytes=%" PRIu64 "-\" has no matching Content-Range",
                     d->from);
            d->force_fresh = true;
            return;
        }
        if (d->validator[0] && rv[0] && strcmp(rv, d->validator) != 0) {
            snprintf(d->what, sizeof(d->what), "206 answer names another artifact (%s, not %s)", rv,
                     d->validator);
            d->force_fresh = true;
            return;
        }
        d->mode = BODY_WRITE;
        return;
    }
    if (rs->status == 200) {
        if (d->from > 0 && d->validator[0] && strcmp(rv, d->validator) == 0) {
            /* the same artifact, whole (a server without ranges): skip what we have */
            logf_(d, "server sent the whole artifact again: skipping %" PRIu64 " bytes", d->from);
            d->skip = d->from;
            d->mode = BODY_WRITE;
            return;
        }
        if (d->from > 0 || strcmp(rv, d->validator) != 0) {
            int rc = restart_in_body(d, d->from > 0 ? "artifact changed on the server"
                                                    : "artifact changed since it was looked up");
            if (rc) {
                d->cb_err = rc;
                return;
            }
        }
        d->mode = BODY_WRITE;
        return;
    }
    d->mode = BODY_DISCARD; /* an error page: never image bytes */
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct dl *d = ud;
    size_t len = size * n;
    d->r->received += len;
    if (d->mode == BODY_UNDECIDED) {
        decide(d);
    }
    if (d->mode == BODY_DISCARD) {
        return len;
    }
    if (d->mode != BODY_WRITE) {
        return 0; /* CURLE_WRITE_ERROR */
    }
    size_t off = 0;
    if (d->skip) {
        off = d->skip < len ? (size_t)d->skip : len;
        d->skip -= off;
    }
    /*
     * The header is written here, so an image the header already condemns is
     * refused at once; once it is accepted (the image length is known) the
     * rest goes through the writer thread, overlapping TLS with hashing and
     * programming. Without a thread the callback goes on writing itself.
     */
    if (off < len && !d->sw_on && !d->sw_tried && airlock_ota_image_len(d->ota) != 0) {
        d->sw_tried = true;
        d->sw_on = slot_writer_start(&d->sw, d->ota) == 0;
    }
    if (off < len) {
        int rc = d->sw_on ? slot_writer_put(&d->sw, p + off, len - off)
                          : airlock_ota_write(d->ota, p + off, len - off);
        if (rc) {
            d->ota_err = rc;
            return 0;
        }
        if (!d->sw_on) {
            d->r->written += len - off;
            d->progressed = true;
        }
    }
    progress(d, false);
    if (d->o->cancelled && d->o->cancelled(d->o->ctx)) {
        d->cancel = true;
        return 0;
    }
    return len;
}

static int on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct dl *d = ud;
    (void)dt, (void)dn, (void)ut, (void)un;
    if (d->o->cancelled && d->o->cancelled(d->o->ctx)) {
        d->cancel = true;
        return 1;
    }
    return 0;
}

/* ---- requests ------------------------------------------------------------------ */

static int setup_handle(struct dl *d)
{
    const airlock_dl_opts_t *o = d->o;
    CURL *h = d->h;
    const https_tls_t tls = {
        .ca_file = o->ca_file,
        .ca_path = o->ca_path,
        .ca_pin = o->ca_pin,
        .allow_http = o->allow_http,
        .connect_timeout_ms = o->connect_timeout_ms,
    };
    char msg[sizeof(d->r->msg)];
    int rc = https_setup(h, o->url, &tls, &d->pin, d->errbuf, msg, sizeof(msg));
    if (rc) {
        return fail(d, rc, "%s", msg);
    }
    CURLcode c = CURLE_OK;
    c |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
                          o->low_speed_limit > 0 ? o->low_speed_limit : 1L);
    c |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                          o->low_speed_time_s > 0 ? o->low_speed_time_s : 30L);
    c |= curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024L);
    c |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    c |= curl_easy_setopt(h, CURLOPT_HEADERDATA, d);
    c |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    c |= curl_easy_setopt(h, CURLOPT_WRITEDATA, d);
    if (o->cancelled) {
        c |= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        c |= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
        c |= curl_easy_setopt(h, CURLOPT_XFERINFODATA, d);
    }
    if (c != CURLE_OK) {
        return fail(d, AIRLOCK_ERR_INVAL, "libcurl refused an option (built without HTTPS?)");
    }
    return 0;
}

/* One request: HEAD (from ignored) or GET from byte `from`. Returns the CURLcode. */
static CURLcode perform(struct dl *d, bool head, uint64_t from)
{
    struct curl_slist *hdrs = NULL, *t;
    char range[32], ifr[VALIDATOR_MAX + 16];
    memset(&d->resp, 0, sizeof(d->resp));
    d->from = from;
    d->mode = BODY_UNDECIDED;
    d->skip = 0;
    d->progressed = false;
    d->ota_err = 0;
    d->cb_err = 0;
    d->what[0] = '\0';
    d->errbuf[0] = '\0';
    d->pin.failed = false;
    for (const char *const *h = d->o->headers; h && *h; h++) {
        if (!(t = curl_slist_append(hdrs, *h))) {
            curl_slist_free_all(hdrs);
            return CURLE_OUT_OF_MEMORY;
        }
        hdrs = t;
    }
    if (!head && from > 0) {
        snprintf(ifr, sizeof(ifr), "If-Range: %s", d->validator);
        if (!(t = curl_slist_append(hdrs, ifr))) {
            curl_slist_free_all(hdrs);
            return CURLE_OUT_OF_MEMORY;
        }
        hdrs = t;
        snprintf(range, sizeof(range), "%" PRIu64 "-", from);
    }
    curl_easy_setopt(d->h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(d->h, CURLOPT_RANGE, !head && from > 0 ? range : NULL);
    if (head) {
        curl_easy_setopt(d->h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(d->h, CURLOPT_HTTPGET, 1L);
    }
    d->attempt++;
    d->r->requests++;
    d->sw_tried = false;
    CURLcode c = curl_easy_perform(d->h);
    if (d->sw_on) {
        uint64_t written = 0;
        int err = slot_writer_finish(&d->sw, &written);
        d->sw_on = false;
        d->r->written += written;
        d->progressed |= written > 0;
        if (err && !d->ota_err) {
            d->ota_err = err; /* refused after the last byte was queued */
        }
    }
    curl_easy_setopt(d->h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    long status = 0;
    curl_easy_getinfo(d->h, CURLINFO_RESPONSE_CODE, &status);
    if (status) {
        d->resp.status = status;
    }
    d->r->http_status = d->resp.status;
    d->r->curl_code = (int)c;
    return c;
}

enum verdict { V_DONE, V_RETRY, V_FAIL };

static bool transient_status(long s)
{
    return s == 408 || s == 425 || s == 429 || (s >= 500 && s <= 599);
}

/* A libcurl failure: retry, or fail with TLS / INVAL / NETWORK. */
static enum verdict curl_verdict(struct dl *d, CURLcode c, int *err)
{
    const char *detail = d->errbuf[0] ? d->errbuf : curl_easy_strerror(c);
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
        snprintf(d->what, sizeof(d->what), "%s", detail);
        return V_RETRY;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        *err = d->pin.failed
                   ? fail(d, AIRLOCK_ERR_TLS,
                          "%s: no CA certificate in the server's verified chain has the pinned "
                          "key",
                          d->o->url)
                   : fail(d, AIRLOCK_ERR_TLS, "%s: server certificate rejected: %s", d->o->url,
                          detail);
        return V_FAIL;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        *err = fail(d, AIRLOCK_ERR_INVAL, "%s: %s", d->o->url, detail);
        return V_FAIL;
    default:
        *err = fail(d, AIRLOCK_ERR_NETWORK, "%s: %s (libcurl %d)", d->o->url, detail, (int)c);
        return V_FAIL;
    }
}

/* Sleep before retry number `fails`; returns CANCELLED or 0. */
static int backoff(struct dl *d, unsigned *delay)
{
    const airlock_dl_opts_t *o = d->o;
    unsigned cap = o->backoff_max_ms ? o->backoff_max_ms : 30000u;
    unsigned base = *delay;
    /* equal jitter: half fixed, half random */
    unsigned ms = base / 2u + (unsigned)(rng_next(&d->rng) % (base / 2u + 1u));
    if (d->resp.retry_after_s) {
        uint64_t ra = (uint64_t)d->resp.retry_after_s * 1000u;
        if (ra > RETRY_AFTER_MAX_MS) {
            ra = RETRY_AFTER_MAX_MS;
        }
        if (ra > ms) {
            ms = (unsigned)ra;
        }
    }
    *delay = base > cap / 2u ? cap : base * 2u;
    logf_(d, "retrying in %u ms", ms);
    if (o->wait) {
        return o->wait(o->ctx, ms) ? fail(d, AIRLOCK_ERR_CANCELLED, "cancelled") : 0;
    }
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000l};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        if (o->cancelled && o->cancelled(o->ctx)) {
            return fail(d, AIRLOCK_ERR_CANCELLED, "cancelled");
        }
    }
    return 0;
}

/* Retry bookkeeping shared by the HEAD and GET loops. */
static int next_attempt(struct dl *d, unsigned *fails, unsigned *delay, bool progressed)
{
    unsigned max = d->o->max_attempts ? d->o->max_attempts : 8u;
    if (progressed) {
        *fails = 0;
        *delay = d->o->backoff_ms ? d->o->backoff_ms : 500u;
    }
    if (++*fails >= max) {
        return fail(d, AIRLOCK_ERR_NETWORK, "%s: giving up after %u failed requests in a row: %s",
                    d->o->url, *fails, d->what);
    }
    logf_(d, "request failed (%s)", d->what);
    d->r->retries++;
    return backoff(d, delay);
}

/* HEAD: the artifact's validator and length. */
static int look_up(struct dl *d)
{
    unsigned fails = 0, delay = d->o->backoff_ms ? d->o->backoff_ms : 500u;
    for (;;) {
        int err = 0;
        CURLcode c = perform(d, true, 0);
        if (d->cancel) {
            return fail(d, AIRLOCK_ERR_CANCELLED, "cancelled");
        }
        if (c == CURLE_OK) {
            long s = d->resp.status;
            if (s >= 200 && s <= 299) {
                curl_off_t len = -1;
                curl_easy_getinfo(d->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
                d->total = len > 0 ? (uint64_t)len : 0;
                adopt_validator(d, &d->resp);
                if (!d->validator[0]) {
                    logf_(d, "server gives no ETag or Last-Modified: cannot resume safely");
                }
                return 0;
            }
            if (s == 405 || s == 501) {
                logf_(d, "server refuses HEAD (%ld): downloading without a validator", s);
                d->validator[0] = '\0';
                return 0;
            }
            if (!transient_status(s)) {
                return fail(d, AIRLOCK_ERR_HTTP, "%s: HTTP %ld", d->o->url, s);
            }
            snprintf(d->what, sizeof(d->what), "HTTP %ld", s);
        } else if (curl_verdict(d, c, &err) == V_FAIL) {
            return err;
        }
        int rc = next_attempt(d, &fails, &delay, false);
        if (rc) {
            return rc;
        }
    }
}

static int fresh(struct dl *d, uint64_t size_hint)
{
    drop(d);
    d->started = true;
    int rc = airlock_ota_begin(d->ota, d->cfg,
                               size_hint <= UINT32_MAX ? (uint32_t)size_hint : UINT32_MAX, d->id);
    if (rc) {
        const airlock_err_detail_t *det = airlock_ota_detail(d->ota);
        return fail(d, rc, "cannot start the download in the slot: %s%s%s", airlock_strerror(rc),
                    det->field ? ": " : "", det->field ? det->field : "");
    }
    return 0;
}

static int image_error(struct dl *d, int rc)
{
    const airlock_err_detail_t *det = airlock_ota_detail(d->ota);
    char vals[64] = "";
    if (det->has_values) {
        snprintf(vals, sizeof(vals), " (expected %" PRIu32 ", found %" PRIu32 ")", det->expected,
                 det->found);
    }
    return fail(d, rc, "image rejected at byte %" PRIu32 ": %s [%s]%s%s%s", det->offset,
                airlock_strerror(rc), airlock_errname(rc), det->field ? ", field " : "",
                det->field ? det->field : "", vals);
}

/* GET until the image is complete in the slot. */
static int transfer(struct dl *d)
{
    unsigned fails = 0, delay = d->o->backoff_ms ? d->o->backoff_ms : 500u;
    for (;;) {
        int rc, err = 0;
        uint64_t from = airlock_ota_pos(d->ota);
        uint32_t len = airlock_ota_image_len(d->ota);
        if (len && from == len) {
            return 0;
        }
        if (from > 0 && (d->force_fresh || !d->validator[0])) {
            logf_(d, "%s: starting over from byte 0",
                  d->force_fresh ? "server answer does not continue the download"
                                 : "no validator to resume with");
            if ((rc = fresh(d, 0)) != 0) {
                return rc;
            }
            d->r->restarts++;
            d->restarted = true;
            from = 0;
        }
        d->force_fresh = false;
        CURLcode c = perform(d, false, from);
        progress(d, true);
        if (d->cancel) {
            return fail(d, AIRLOCK_ERR_CANCELLED, "cancelled at byte %" PRIu32,
                        airlock_ota_pos(d->ota));
        }
        if (d->ota_err) {
            return image_error(d, d->ota_err);
        }
        if (d->cb_err) {
            return d->cb_err;
        }
        long s = d->resp.status;
        if (c == CURLE_OK || (c == CURLE_WRITE_ERROR && d->mode == BODY_ABORT)) {
            if (s == 200 || s == 206) {
                len = airlock_ota_image_len(d->ota);
                if (c == CURLE_OK && len && airlock_ota_pos(d->ota) == len) {
                    return 0;
                }
                if (c == CURLE_OK && !d->what[0]) {
                    snprintf(d->what, sizeof(d->what),
                             "response ended at image byte %" PRIu32 " of %" PRIu32,
                             airlock_ota_pos(d->ota), len);
                }
            } else if (s == 416) {
                const struct response *rs = &d->resp;
                if (from > 0 && rs->has_unsat_total && rs->unsat_total <= from) {
                    return fail(d, AIRLOCK_ERR_INCOMPLETE,
                                "%s: artifact is %" PRIu64 " bytes, the image in it needs %" PRIu32,
                                d->o->url, rs->unsat_total, len);
                }
                d->force_fresh = true;
                snprintf(d->what, sizeof(d->what), "HTTP 416 for bytes=%" PRIu64 "-", from);
            } else if (transient_status(s)) {
                snprintf(d->what, sizeof(d->what), "HTTP %ld", s);
            } else {
                return fail(d, AIRLOCK_ERR_HTTP, "%s: HTTP %ld", d->o->url, s);
            }
        } else if (curl_verdict(d, c, &err) == V_FAIL) {
            return err;
        }
        if ((rc = next_attempt(d, &fails, &delay, d->progressed)) != 0) {
            return rc;
        }
    }
}

static bool verification_error(int rc)
{
    return rc == AIRLOCK_ERR_HASH_MISMATCH || rc == AIRLOCK_ERR_BAD_SIGNATURE ||
           rc == AIRLOCK_ERR_NO_SIGNATURE || rc == AIRLOCK_ERR_NO_HASH ||
           rc == AIRLOCK_ERR_UNKNOWN_KEY || rc == AIRLOCK_ERR_KEY_MISMATCH;
}

/* Resume (or start) in the slot, transfer, verify; looked_up: the HEAD was just made. */
static int attempt_download(struct dl *d, bool allow_resume, bool looked_up)
{
    int rc = looked_up ? 0 : look_up(d);
    if (rc == 0) {
        rc = make_id(d);
    }
    if (rc) {
        return rc;
    }
    uint32_t off = 0;
    if (allow_resume && d->validator[0]) {
        drop(d);
        d->started = true;
        rc = airlock_ota_resume(d->ota, d->cfg, d->id, &off);
        if (rc) {
            return airlock_ota_detail(d->ota)->field
                       ? image_error(d, rc)
                       : fail(d, rc, "cannot resume in the slot: %s", airlock_strerror(rc));
        }
        if (off) {
            logf_(d, "resuming at byte %" PRIu32 " (validator %s)", off, d->validator);
        }
    } else if ((rc = fresh(d, d->total)) != 0) {
        return rc;
    }
    d->r->resumed_from = off;
    if ((rc = transfer(d)) != 0) {
        return rc;
    }
    d->r->image_len = airlock_ota_image_len(d->ota);
    rc = airlock_ota_end(d->ota);
    progress(d, true);
    return rc ? image_error(d, rc) : 0;
}

int airlock_download(airlock_ota_t *ota, const airlock_boot_cfg_t *cfg,
                     const airlock_dl_opts_t *opts, airlock_dl_result_t *result)
{
    airlock_dl_result_t local;
    struct dl d;
    airlock_dl_result_t *r = result ? result : &local;
    memset(r, 0, sizeof(*r));
    memset(&d, 0, sizeof(d));
    d.o = opts;
    d.ota = ota;
    d.cfg = cfg;
    d.r = r;
    if (!ota || !cfg || !cfg->crypto || !opts || !opts->url) {
        return fail(&d, AIRLOCK_ERR_INVAL, "download: missing ota, cfg or URL");
    }
    d.rng = opts->seed ? opts->seed : (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    d.h = curl_easy_init();
    if (!d.h) {
        return fail(&d, AIRLOCK_ERR_NOMEM, "libcurl: cannot create a handle");
    }
    int rc = setup_handle(&d);
    if (rc == 0) {
        rc = attempt_download(&d, true, false);
        if (verification_error(rc)) {
            /*
             * The bytes may come from two versions of the artifact (a resumed
             * download, or a server that changed it mid-response): if so,
             * download it once more, whole.
             */
            char before[VALIDATOR_MAX];
            char why[sizeof(r->msg)];
            snprintf(before, sizeof(before), "%s", d.validator);
            snprintf(why, sizeof(why), "%s", r->msg);
            bool again = r->resumed_from > 0 || r->restarts > 0 || r->retries > 0;
            bool looked_up = false;
            if (!again && look_up(&d) == 0) {
                looked_up = true;
                again = strcmp(before, d.validator) != 0;
            }
            if (again) {
                logf_(&d, "%s: downloading the artifact again from byte 0", why);
                r->msg[0] = '\0';
                r->restarts++;
                rc = attempt_download(&d, false, looked_up);
            } else {
                rc = fail(&d, rc, "%s", why);
            }
        }
    }
    if (rc) {
        drop(&d); /* a verified download stays ready for set_pending */
        r->err = rc;
        if (!r->msg[0]) {
            snprintf(r->msg, sizeof(r->msg), "%s", airlock_strerror(rc));
        }
    } else {
        r->err = 0;
        r->msg[0] = '\0';
    }
    curl_easy_cleanup(d.h);
    return rc;
}

int airlock_download_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : AIRLOCK_ERR_INVAL;
}

void airlock_download_global_cleanup(void)
{
    curl_global_cleanup();
}
