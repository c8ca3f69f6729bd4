/*
 * The download tests' HTTPS server (see httpsd.h) on libmicrohttpd.
 * Invariant: an artifact is immutable once made; responses hold a reference
 * to the one they serve, so replacing it never changes bytes mid-response
 * (except on purpose, for the splice fault). Test code only; never shipped.
 */
#define _POSIX_C_SOURCE 200809L

#include "httpsd.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#define DEFAULT_PATH "/artifact.bin"
#define NAP_MS 10 /* longest uninterruptible sleep: bounds httpsd_stop's wait */

struct artifact {
    unsigned refs; /* guarded by httpsd.mu */
    size_t len;
    char etag[24];
    uint8_t data[];
};

struct fault_slot {
    httpsd_fault_t f;
    struct artifact *change_to; /* CHANGE: our copy of f.new_data */
};

struct httpsd {
    struct MHD_Daemon *daemon;
    uint16_t port;
    char *path, *key, *cert;
    _Atomic bool stopping;

    pthread_mutex_t mu; /* guards everything below */
    struct artifact *art;
    struct fault_slot faults[HTTPSD_MAX_FAULTS];
    size_t nfaults;
    unsigned get_no; /* GETs since httpsd_set_fault */
    uint64_t rate;
    httpsd_stats_t st; /* counters; its log is unused */
    uint64_t seq;      /* requests ever seen */
    uint64_t log_from; /* first seq the log reports (after a reset) */
    httpsd_req_t ring[HTTPSD_LOG_LEN];
};

/* One artifact response in flight: what to send and what to break. */
struct resp {
    httpsd_t *s;
    struct artifact *art;
    uint64_t off;  /* first artifact byte of the body */
    uint64_t len;  /* real body bytes available from off */
    uint64_t seq;  /* its log entry */
    uint64_t rate; /* bytes per second, 0 = unlimited */
    struct timespec t0;
    struct fault_slot fault; /* kind NONE when healthy; holds a ref on change_to */
    bool fired;
};

/* ---- artifacts ---------------------------------------------------------- */

static struct artifact *art_new(const uint8_t *data, size_t len)
{
    struct artifact *a = malloc(sizeof(*a) + len + 1);
    if (!a) {
        return NULL;
    }
    a->refs = 1;
    a->len = len;
    if (len) {
        memcpy(a->data, data, len);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(a->data, len, md, &md_len, EVP_sha256(), NULL) != 1) {
        free(a);
        return NULL;
    }
    /* Strong ETag: the first 8 bytes of the content's SHA-256. */
    static const char hex[] = "0123456789abcdef";
    a->etag[0] = '"';
    for (size_t i = 0; i < 8; i++) {
        a->etag[1 + 2 * i] = hex[md[i] >> 4];
        a->etag[2 + 2 * i] = hex[md[i] & 15];
    }
    a->etag[17] = '"';
    a->etag[18] = '\0';
    return a;
}

/* Both take s->mu. */
static struct artifact *art_ref(struct artifact *a)
{
    if (a) {
        a->refs++;
    }
    return a;
}

static void art_unref(struct artifact *a)
{
    if (a && --a->refs == 0) {
        free(a);
    }
}

/* ---- time --------------------------------------------------------------- */

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Sleep ms milliseconds in short naps; false if the server began stopping. */
static bool nap(httpsd_t *s, unsigned ms)
{
    while (ms && !atomic_load(&s->stopping)) {
        unsigned step = ms < NAP_MS ? ms : NAP_MS;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !atomic_load(&s->stopping);
}

/* ---- request log -------------------------------------------------------- */

/* The log entry for seq, or NULL if it has left the ring. Takes s->mu. */
static httpsd_req_t *log_entry(httpsd_t *s, uint64_t seq)
{
    if (seq == 0 || seq < s->log_from || seq > s->seq || s->seq - seq >= HTTPSD_LOG_LEN) {
        return NULL;
    }
    return &s->ring[(seq - 1) % HTTPSD_LOG_LEN];
}

static void copy_header(char *dst, size_t cap, bool *has, const char *v)
{
    *has = v != NULL;
    dst[0] = '\0';
    if (v) {
        snprintf(dst, cap, "%s", v);
    }
}

/* ---- the body callback: where faults happen ----------------------------- */

static ssize_t body_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct resp *r = cls;
    httpsd_t *s = r->s;
    const httpsd_fault_t *f = &r->fault.f;

    if (atomic_load(&s->stopping)) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    /* libmicrohttpd asks for the next block only once the previous one was
     * sent, so every byte before pos has already gone to the TLS layer. */
    if (!r->fired && pos >= f->after) {
        switch (f->kind) {
        case HTTPSD_FAULT_DROP:
            r->fired = true;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        case HTTPSD_FAULT_STALL:
            r->fired = true;
            if (!nap(s, f->stall_ms) || f->stall_drop) {
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            break;
        case HTTPSD_FAULT_CHANGE:
            r->fired = true;
            pthread_mutex_lock(&s->mu);
            art_unref(s->art);
            s->art = art_ref(r->fault.change_to);
            if (f->splice) {
                art_unref(r->art);
                r->art = art_ref(r->fault.change_to);
            }
            pthread_mutex_unlock(&s->mu);
            break;
        default:
            break;
        }
    }

    /* Real bytes left at pos: fewer than announced for BAD_LENGTH +delta
     * or a splice onto a shorter artifact; then end with an error. */
    uint64_t end = r->off + r->len;
    if (end > r->art->len) {
        end = r->art->len;
    }
    if (r->off + pos >= end) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    uint64_t n = end - (r->off + pos);
    if (n > max) {
        n = max;
    }
    /* Stop exactly at a pending fault's offset. */
    bool offset_fault = f->kind == HTTPSD_FAULT_DROP || f->kind == HTTPSD_FAULT_STALL ||
                        f->kind == HTTPSD_FAULT_CHANGE;
    if (offset_fault && !r->fired && f->after - pos < n) {
        n = f->after - pos;
    }
    if (r->rate) {
        uint64_t chunk = r->rate / 20 ? r->rate / 20 : 1; /* ~50 ms of data */
        if (n > chunk) {
            n = chunk;
        }
        double due = (double)pos / (double)r->rate - since(&r->t0);
        if (due > 0 && !nap(s, (unsigned)(due * 1000.0) + 1)) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    memcpy(buf, r->art->data + r->off + pos, (size_t)n);

    pthread_mutex_lock(&s->mu);
    s->st.body_bytes += n;
    httpsd_req_t *e = log_entry(s, r->seq);
    if (e) {
        e->sent += n;
    }
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)n;
}

static void body_free(void *cls)
{
    struct resp *r = cls;
    pthread_mutex_lock(&r->s->mu);
    art_unref(r->art);
    art_unref(r->fault.change_to);
    pthread_mutex_unlock(&r->s->mu);
    free(r);
}

/* ---- request handling --------------------------------------------------- */

enum range_kind { RANGE_IGNORE, RANGE_OK, RANGE_UNSATISFIABLE };

/* Digits to uint64, saturating; *p advanced. False if no digit. */
static bool parse_u64(const char **p, uint64_t *v)
{
    const char *q = *p;
    uint64_t x = 0;
    if (*q < '0' || *q > '9') {
        return false;
    }
    for (; *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *p = q;
    *v = x;
    return true;
}

/*
 * One "bytes=A-", "bytes=A-B" or "bytes=-N" range against total bytes.
 * Anything else (other units, several ranges, B < A, junk) is ignored, as
 * RFC 9110 lets a server do; the client then gets the whole artifact.
 */
static enum range_kind parse_range(const char *h, uint64_t total, uint64_t *a, uint64_t *b)
{
    if (strncasecmp(h, "bytes=", 6) != 0) {
        return RANGE_IGNORE;
    }
    const char *p = h + 6;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    uint64_t x = 0, y = 0;
    bool suffix = *p == '-';
    if (suffix) {
        p++;
        if (!parse_u64(&p, &y)) {
            return RANGE_IGNORE;
        }
    } else {
        if (!parse_u64(&p, &x) || *p++ != '-') {
            return RANGE_IGNORE;
        }
        if (!parse_u64(&p, &y)) {
            y = UINT64_MAX;
        } else if (y < x) {
            return RANGE_IGNORE;
        }
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p != '\0') {
        return RANGE_IGNORE;
    }
    if (suffix) {
        if (y == 0 || total == 0) {
            return RANGE_UNSATISFIABLE;
        }
        *a = y >= total ? 0 : total - y;
        *b = total - 1;
        return RANGE_OK;
    }
    if (x >= total) {
        return RANGE_UNSATISFIABLE;
    }
    *a = x;
    *b = y >= total ? total - 1 : y;
    return RANGE_OK;
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, const char *text,
                                  unsigned retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    if (retry_after) {
        char v[16];
        snprintf(v, sizeof(v), "%u", retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The fault for the GET numbered n, copied with its own reference. Takes s->mu. */
static void pick_fault(httpsd_t *s, unsigned n, struct fault_slot *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < s->nfaults; i++) {
        const httpsd_fault_t *f = &s->faults[i].f;
        unsigned first = f->first ? f->first : 1;
        if (n >= first && (f->count == 0 || n - first < f->count)) {
            *out = s->faults[i];
            art_ref(out->change_to);
            return;
        }
    }
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    httpsd_t *s = cls;
    (void)version;
    (void)upload_data;
    /* Answer on the second call, not the first: libmicrohttpd 0.9.75
     * closes the connection after a response queued from the first call
     * (headers only), and a real server keeps connections alive. Any
     * request body is read and dropped in between. */
    if (*con_cls == NULL) {
        *con_cls = s;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }

    bool is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool ours = strcmp(url, s->path) == 0;
    const char *range_h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range_h =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);

    struct resp *r = calloc(1, sizeof(*r));
    if (!r) {
        return MHD_NO;
    }
    r->s = s;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);

    /* Under the lock: count, log, snapshot the artifact, pick the fault. */
    pthread_mutex_lock(&s->mu);
    s->st.requests++;
    r->seq = ++s->seq;
    httpsd_req_t *e = &s->ring[(r->seq - 1) % HTTPSD_LOG_LEN];
    memset(e, 0, sizeof(*e));
    e->seq = r->seq;
    snprintf(e->method, sizeof(e->method), "%s", method);
    copy_header(e->range, sizeof(e->range), &e->has_range, range_h);
    copy_header(e->if_range, sizeof(e->if_range), &e->has_if_range, if_range_h);
    if (ours && is_get) {
        s->st.gets++;
        pick_fault(s, ++s->get_no, &r->fault);
    } else if (ours && is_head) {
        s->st.heads++;
    }
    r->art = art_ref(s->art);
    r->rate = s->rate;
    e->fault = r->fault.f.kind;
    pthread_mutex_unlock(&s->mu);

    const struct artifact *art = r->art;
    const httpsd_fault_t *f = &r->fault.f;
    unsigned status;
    const char *text = NULL;
    unsigned retry_after = 0;
    uint64_t a = 0, b = 0;
    enum range_kind rk = RANGE_IGNORE;
    bool ranges = f->kind != HTTPSD_FAULT_IGNORE_RANGE;

    if (!ours) {
        status = MHD_HTTP_NOT_FOUND;
        text = "not found\n";
    } else if (!is_get && !is_head) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        text = "method not allowed\n";
    } else if (f->kind == HTTPSD_FAULT_STATUS) {
        status = f->status;
        text = "injected status\n";
        retry_after = f->retry_after;
    } else {
        if (ranges && range_h &&
            (!if_range_h || strcmp(if_range_h, art->etag) == 0)) { /* strong match only */
            rk = parse_range(range_h, art->len, &a, &b);
        }
        status = rk == RANGE_OK              ? MHD_HTTP_PARTIAL_CONTENT
                 : rk == RANGE_UNSATISFIABLE ? MHD_HTTP_RANGE_NOT_SATISFIABLE
                                             : MHD_HTTP_OK;
    }

    enum MHD_Result ret;
    if (text || rk == RANGE_UNSATISFIABLE) {
        pthread_mutex_lock(&s->mu);
        e = log_entry(s, r->seq);
        if (e) {
            e->status = status;
            e->length = text ? strlen(text) : 0;
        }
        pthread_mutex_unlock(&s->mu);
        if (text) {
            ret = queue_text(c, status, text, retry_after);
        } else {
            char cr[48];
            snprintf(cr, sizeof(cr), "bytes */%zu", art->len);
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
            ret = MHD_NO;
            if (resp) {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, art->etag);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
                ret = MHD_queue_response(c, status, resp);
                MHD_destroy_response(resp);
            }
        }
        body_free(r);
        return ret;
    }

    if (rk == RANGE_OK) {
        r->off = a;
        r->len = b - a + 1;
    } else {
        r->off = 0;
        r->len = art->len;
    }
    uint64_t announced = r->len;
    if (f->kind == HTTPSD_FAULT_BAD_LENGTH) {
        if (f->delta < 0 && (uint64_t)(-f->delta) > announced) {
            announced = 0;
        } else {
            announced += (uint64_t)f->delta; /* wraps correctly for delta < 0 */
        }
    }
    pthread_mutex_lock(&s->mu);
    e = log_entry(s, r->seq);
    if (e) {
        e->status = status;
        e->length = announced;
    }
    pthread_mutex_unlock(&s->mu);

    /* The body is pulled block by block through body_cb, which owns r from
     * here on (libmicrohttpd calls body_free when the response dies). */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(announced, HTTPSD_BLOCK, body_cb, r, body_free);
    if (!resp) {
        body_free(r);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, art->etag);
    if (ranges) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    }
    if (rk == RANGE_OK) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%zu", a, b, art->len);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- public API --------------------------------------------------------- */

int httpsd_start(const httpsd_opts_t *o, httpsd_t **out)
{
    *out = NULL;
    if (!o || !o->key_pem || !o->cert_pem) {
        return -1;
    }
    httpsd_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return -1;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return -1;
    }
    atomic_init(&s->stopping, false);
    s->path = strdup(o->path ? o->path : DEFAULT_PATH);
    s->key = strdup(o->key_pem);
    s->cert = strdup(o->cert_pem);
    s->art = art_new(NULL, 0);
    s->log_from = 1;
    if (!s->path || !s->key || !s->cert || !s->art) {
        httpsd_stop(s);
        return -1;
    }

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    unsigned flags = MHD_USE_TLS | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
    if (o->verbose) {
        flags |= MHD_USE_ERROR_LOG;
    }
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&sa, MHD_OPTION_HTTPS_MEM_KEY, s->key,
                                 MHD_OPTION_HTTPS_MEM_CERT, s->cert, MHD_OPTION_END);
    if (!s->daemon) {
        httpsd_stop(s);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!di || di->port == 0) {
        httpsd_stop(s);
        return -1;
    }
    s->port = di->port;
    *out = s;
    return 0;
}

uint16_t httpsd_port(const httpsd_t *s)
{
    return s->port;
}

int httpsd_set_artifact(httpsd_t *s, const uint8_t *data, size_t len)
{
    struct artifact *a = art_new(data, len);
    if (!a) {
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    art_unref(s->art);
    s->art = a;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void httpsd_etag(httpsd_t *s, char out[24])
{
    pthread_mutex_lock(&s->mu);
    memcpy(out, s->art->etag, sizeof(s->art->etag));
    pthread_mutex_unlock(&s->mu);
}

static void clear_faults(httpsd_t *s)
{
    for (size_t i = 0; i < s->nfaults; i++) {
        art_unref(s->faults[i].change_to);
    }
    memset(s->faults, 0, sizeof(s->faults));
    s->nfaults = 0;
}

int httpsd_add_fault(httpsd_t *s, const httpsd_fault_t *f)
{
    struct artifact *change_to = NULL;
    if (f->kind == HTTPSD_FAULT_CHANGE) {
        change_to = art_new(f->new_data, f->new_len);
        if (!change_to) {
            return -1;
        }
    }
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    if (s->nfaults < HTTPSD_MAX_FAULTS) {
        struct fault_slot *slot = &s->faults[s->nfaults++];
        slot->f = *f;
        slot->f.new_data = NULL; /* the caller's buffer may go away */
        slot->change_to = change_to;
        change_to = NULL;
        rc = 0;
    }
    art_unref(change_to);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int httpsd_set_fault(httpsd_t *s, const httpsd_fault_t *f)
{
    pthread_mutex_lock(&s->mu);
    clear_faults(s);
    s->get_no = 0;
    pthread_mutex_unlock(&s->mu);
    return f ? httpsd_add_fault(s, f) : 0;
}

void httpsd_set_rate(httpsd_t *s, uint64_t bytes_per_sec)
{
    pthread_mutex_lock(&s->mu);
    s->rate = bytes_per_sec;
    pthread_mutex_unlock(&s->mu);
}

void httpsd_stats(httpsd_t *s, httpsd_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->nlog = 0;
    uint64_t first = s->log_from;
    if (s->seq >= HTTPSD_LOG_LEN && s->seq - HTTPSD_LOG_LEN + 1 > first) {
        first = s->seq - HTTPSD_LOG_LEN + 1;
    }
    for (uint64_t q = first; q <= s->seq; q++) {
        out->log[out->nlog++] = s->ring[(q - 1) % HTTPSD_LOG_LEN];
    }
    pthread_mutex_unlock(&s->mu);
}

void httpsd_reset_stats(httpsd_t *s)
{
    pthread_mutex_lock(&s->mu);
    memset(&s->st, 0, sizeof(s->st));
    s->log_from = s->seq + 1;
    pthread_mutex_unlock(&s->mu);
}

void httpsd_stop(httpsd_t *s)
{
    if (!s) {
        return;
    }
    /* Stalls and throttles see this within NAP_MS and end their response;
     * then libmicrohttpd can close the connections and join the threads. */
    atomic_store(&s->stopping, true);
    if (s->daemon) {
        MHD_stop_daemon(s->daemon);
    }
    clear_faults(s);
    art_unref(s->art);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s->key);
    free(s->cert);
    free(s);
}
