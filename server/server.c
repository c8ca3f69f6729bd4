/*
 * The update server's life cycle and shared helpers (server.h): the
 * configuration file, TLS material, the route table (device API, operator
 * API, dashboard), the campaign ticker, digests and tokens. It must never
 * start without TLS unless told so explicitly (insecure_http).
 */
#define _GNU_SOURCE

#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- configuration ------------------------------------------------------------- */

void srv_config_defaults(srv_config_t *c, const char *dir)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "%s", dir);
    snprintf(c->tenant, sizeof(c->tenant), "DEFAULT");
    snprintf(c->bind, sizeof(c->bind), "0.0.0.0");
    c->port = 8443;
    snprintf(c->poll_interval, sizeof(c->poll_interval), "00:05:00");
    c->threads = 4;
    c->max_inflight = 512;
    c->max_artifact = 512ull * 1024 * 1024;
    snprintf(c->cert_file, sizeof(c->cert_file), "%s/tls/server.pem", dir);
    snprintf(c->key_file, sizeof(c->key_file), "%s/tls/server.key", dir);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) {
        *--e = '\0';
    }
    return s;
}

static bool valid_interval(const char *v)
{
    unsigned h, m, s;
    char tail;
    return strlen(v) == 8 && sscanf(v, "%2u:%2u:%2u%c", &h, &m, &s, &tail) == 3 && m < 60 &&
           s < 60;
}

/* One "key = value" line. Returns NULL or what is wrong. */
static const char *set_key(srv_config_t *c, const char *k, const char *v)
{
    char *e;
    unsigned long long n;
#define STR(name)                                                                                  \
    if (strcmp(k, #name) == 0) {                                                                   \
        if (strlen(v) >= sizeof(c->name)) {                                                        \
            return "value too long";                                                               \
        }                                                                                          \
        snprintf(c->name, sizeof(c->name), "%s", v);                                               \
        return NULL;                                                                               \
    }
    STR(tenant)
    STR(bind)
    STR(public_url)
    STR(cert_file)
    STR(key_file)
#undef STR
    if (strcmp(k, "poll_interval") == 0) {
        if (!valid_interval(v)) {
            return "expected HH:MM:SS";
        }
        snprintf(c->poll_interval, sizeof(c->poll_interval), "%s", v);
        return NULL;
    }
    if (strcmp(k, "insecure_http") == 0 || strcmp(k, "access_log") == 0) {
        bool b;
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            b = true;
        } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            b = false;
        } else {
            return "expected true or false";
        }
        *(k[0] == 'i' ? &c->insecure_http : &c->access_log) = b;
        return NULL;
    }
    errno = 0;
    n = strtoull(v, &e, 10);
    if (errno || e == v || *e) {
        if (strcmp(k, "port") == 0 || strcmp(k, "threads") == 0 ||
            strcmp(k, "max_inflight") == 0 || strcmp(k, "max_artifact_mb") == 0) {
            return "expected a number";
        }
        return "unknown key";
    }
    if (strcmp(k, "port") == 0) {
        if (n > 65535) {
            return "port must be 0..65535";
        }
        c->port = (unsigned)n;
    } else if (strcmp(k, "threads") == 0) {
        if (n < 1 || n > 256) {
            return "threads must be 1..256";
        }
        c->threads = (unsigned)n;
    } else if (strcmp(k, "max_inflight") == 0) {
        if (n < 1 || n > 1000000) {
            return "max_inflight must be 1..1000000";
        }
        c->max_inflight = (unsigned)n;
    } else if (strcmp(k, "max_artifact_mb") == 0) {
        if (n < 1 || n > 65536) {
            return "max_artifact_mb must be 1..65536";
        }
        c->max_artifact = n * 1024 * 1024;
    } else {
        return "unknown key";
    }
    return NULL;
}

int srv_config_load(const char *dir, srv_config_t *cfg, char *err, size_t errcap)
{
    char path[SRV_PATH_MAX + 32], line[1024];
    srv_config_defaults(cfg, dir);
    snprintf(path, sizeof(path), "%s/server.conf", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: %s (create it with airlock server init %s)", path,
                 strerror(errno), dir);
        return -1;
    }
    unsigned ln = 0;
    while (fgets(line, sizeof(line), f)) {
        ln++;
        char *p = trim(line);
        if (!*p || *p == '#') {
            continue;
        }
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, errcap, "%s:%u: expected key = value", path, ln);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        char *k = trim(p), *v = trim(eq + 1);
        const char *why = set_key(cfg, k, v);
        if (why) {
            snprintf(err, errcap, "%s:%u: %s: %s", path, ln, k, why);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------- */

/*
 * SHA-256 fetched from the provider once. EVP_sha256() makes OpenSSL 3 look
 * the algorithm up again on every digest, under a lock all worker threads
 * share; every device request hashes its token. Kept for the process's life.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void srv_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[32];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    pthread_once(&sha256_once, fetch_sha256);
    const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
    if (EVP_Digest(data, len, d, &n, md, NULL) != 1 || n != 32) {
        memset(d, 0, sizeof(d));
    }
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

bool srv_digest_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b) || n == 0) {
        return false;
    }
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
}

int srv_token_new(char out[33])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[24];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        return -1;
    }
    for (int i = 0; i < 8; i++) {
        uint32_t v = (uint32_t)r[3 * i] << 16 | (uint32_t)r[3 * i + 1] << 8 | r[3 * i + 2];
        out[4 * i] = b64[v >> 18 & 63];
        out[4 * i + 1] = b64[v >> 12 & 63];
        out[4 * i + 2] = b64[v >> 6 & 63];
        out[4 * i + 3] = b64[v & 63];
    }
    out[32] = '\0';
    return 0;
}

void srv_base_url(const srv_req_t *r, char *buf, size_t cap)
{
    const srv_config_t *c = &r->srv->cfg;
    if (c->public_url[0]) {
        snprintf(buf, cap, "%s", c->public_url);
        size_t n = strlen(buf);
        if (n && buf[n - 1] == '/') {
            buf[n - 1] = '\0';
        }
        return;
    }
    const char *host = srv_req_header(r, "Host");
    char h[256];
    /* a Host header is the client's; keep only characters a host:port can have */
    size_t n = 0;
    for (const char *p = host ? host : ""; *p && n + 1 < sizeof(h); p++) {
        unsigned char ch = (unsigned char)*p;
        if (isalnum(ch) || ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']') {
            h[n++] = (char)ch;
        }
    }
    h[n] = '\0';
    if (!n) {
        snprintf(h, sizeof(h), "localhost:%u", (unsigned)srv_port(r->srv));
    }
    snprintf(buf, cap, "%s://%s", c->insecure_http ? "http" : "https", h);
}

bool srv_valid_controller_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= STORE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != ':') {
            return false;
        }
    }
    return true;
}

int64_t srv_now(void)
{
    return (int64_t)time(NULL);
}

/*
 * Clients in the field put raw control characters inside JSON strings (a log
 * line with a newline). Escape them so the maintained parser accepts what
 * hawkBit accepts; everything else is left to the parser.
 */
static char *escape_raw_controls(const char *in, size_t len, size_t *out_len)
{
    char *o = malloc(len * 6 + 1), *p = o; /* each byte becomes at most \u00XX */
    bool str = false, esc = false;
    if (!o) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (str) {
            if (esc) {
                esc = false;
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                str = false;
            } else if (c < 0x20) {
                p += sprintf(p, "\\u%04x", c);
                continue;
            }
        } else if (c == '"') {
            str = true;
        }
        *p++ = (char)c;
    }
    *p = '\0';
    *out_len = (size_t)(p - o);
    return o;
}

json_t *srv_parse_body(const srv_req_t *r, srv_resp_t *w, bool lenient)
{
    json_error_t e;
    if (!r->body || r->body_len == 0) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "a JSON body is required");
        return NULL;
    }
    size_t n = r->body_len;
    char *fixed = lenient ? escape_raw_controls(r->body, r->body_len, &n) : NULL;
    json_t *j = json_loadb(fixed ? fixed : r->body, n, JSON_REJECT_DUPLICATES, &e);
    free(fixed);
    if (!j) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "malformed JSON at line %d, column %d: %s", e.line, e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "the body must be a JSON object");
        return NULL;
    }
    return j;
}

bool srv_auth_operator(const srv_req_t *r, srv_resp_t *w)
{
    store_t *st = r->srv->store;
    const char *auth = srv_req_header(r, "Authorization");
    char want[80] = "", hash[65];
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
        srv_resp_error(w, 401, "airlock.api.unauthorized",
                       "send Authorization: Bearer <operator token>");
        return false;
    }
    srv_sha256_hex(auth + 7, strlen(auth + 7), hash);
    if (st->ops->setting_get(st, "operator_token_sha256", want, sizeof(want)) != STORE_OK ||
        !srv_digest_equal(hash, want)) {
        srv_resp_error(w, 401, "airlock.api.unauthorized", "unknown operator token");
        return false;
    }
    return true;
}

/* ---- check-ins --------------------------------------------------------------------- */

struct srv_seen {
    int64_t id; /* 0: empty slot */
    int64_t last;
    uint32_t polls;
};

static size_t seen_slot(const struct srv_seen *v, size_t cap, int64_t id)
{
    size_t i = (size_t)((uint64_t)id * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
    while (v[i].id && v[i].id != id) {
        i = (i + 1) & (cap - 1);
    }
    return i;
}

void srv_note_seen(srv_t *s, int64_t device_id, bool poll)
{
    pthread_mutex_lock(&s->seen_lock);
    if ((s->nseen + 1) * 2 > s->seen_cap) {
        size_t cap = s->seen_cap ? s->seen_cap * 2 : 1024;
        struct srv_seen *v = calloc(cap, sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&s->seen_lock);
            return; /* only a statistic is lost */
        }
        for (size_t i = 0; i < s->seen_cap; i++) {
            if (s->seen[i].id) {
                v[seen_slot(v, cap, s->seen[i].id)] = s->seen[i];
            }
        }
        free(s->seen);
        s->seen = v;
        s->seen_cap = cap;
    }
    struct srv_seen *e = &s->seen[seen_slot(s->seen, s->seen_cap, device_id)];
    if (!e->id) {
        e->id = device_id;
        s->nseen++;
    }
    e->last = srv_now();
    e->polls += poll;
    pthread_mutex_unlock(&s->seen_lock);
}

void srv_gateway_hash(srv_t *s, char *out)
{
    int64_t now = srv_now();
    pthread_mutex_lock(&s->seen_lock);
    if (s->gateway_read_at != now) {
        char v[80] = "";
        if (s->store->ops->setting_get(s->store, "gateway_token_sha256", v, sizeof(v)) !=
            STORE_OK) {
            v[0] = '\0';
        }
        memcpy(s->gateway_hash, v, sizeof(v));
        s->gateway_read_at = now;
    }
    memcpy(out, s->gateway_hash, sizeof(s->gateway_hash));
    pthread_mutex_unlock(&s->seen_lock);
}

void srv_flush_seen(srv_t *s)
{
    pthread_mutex_lock(&s->seen_lock);
    struct srv_seen *v = s->seen;
    size_t cap = s->seen_cap;
    s->seen = NULL;
    s->seen_cap = 0;
    s->nseen = 0;
    pthread_mutex_unlock(&s->seen_lock);
    if (!v) {
        return;
    }
    store_t *st = s->store;
    if (st->ops->begin(st) == STORE_OK) {
        int rc = STORE_OK;
        for (size_t i = 0; i < cap && (rc == STORE_OK || rc == STORE_NOT_FOUND); i++) {
            if (v[i].id) {
                rc = st->ops->device_seen(st, v[i].id, v[i].last, v[i].polls);
            }
        }
        if (rc == STORE_OK || rc == STORE_NOT_FOUND) {
            st->ops->commit(st);
        } else {
            st->ops->rollback(st);
        }
    }
    free(v);
}

/* ---- life cycle ------------------------------------------------------------------ */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf) {
        buf[len] = '\0';
    }
    return buf;
}

static void *ticker(void *arg)
{
    srv_t *s = arg;
    while (!atomic_load(&s->stop)) {
        srv_flush_seen(s);
        srv_campaign_tick(s, 0);
        for (int i = 0; i < 10 && !atomic_load(&s->stop); i++) {
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/*
 * Uploads (stream_body routes) are checked on their headers, before a byte
 * of the body is stored: only the operator may send one, and no larger than
 * max_artifact_mb.
 */
static uint64_t upload_gate(srv_req_t *r, srv_resp_t *w)
{
    const srv_config_t *c = &r->srv->cfg;
    if (!srv_auth_operator(r, w)) {
        return 0;
    }
    const char *cl = srv_req_header(r, "Content-Length");
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (n > c->max_artifact) {
        srv_resp_error(w, 413, "airlock.request.tooLarge",
                       "artifact of %llu bytes is larger than this server accepts (%" PRIu64
                       " bytes; max_artifact_mb in server.conf)",
                       n, c->max_artifact);
        return 0;
    }
    return c->max_artifact;
}

/* Every module's routes in one table, built once. */
static srv_route_t routes[64];

static void build_routes(void)
{
    const srv_route_t *tables[] = {srv_api_routes, srv_dashboard_routes, srv_ddi_routes};
    size_t n = 0;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (const srv_route_t *r = tables[t]; r->fn && n + 1 < sizeof(routes) / sizeof(routes[0]);
             r++) {
            routes[n++] = *r;
        }
    }
    routes[n].fn = NULL;
}

int srv_start(srv_t *s)
{
    char path[SRV_PATH_MAX + 32];
    char *key = NULL, *cert = NULL;
    atomic_store(&s->stop, false);
    pthread_mutex_init(&s->campaign_lock, NULL);
    pthread_mutex_init(&s->seen_lock, NULL);
    s->seen = NULL;
    s->nseen = s->seen_cap = 0;
    s->gateway_read_at = 0;
    snprintf(path, sizeof(path), "%s/airlock.db", s->cfg.dir);
    int rc = store_sqlite_open(path, &s->store);
    if (rc != STORE_OK) {
        fprintf(stderr, "airlock server: cannot open the database %s: %s\n", path,
                store_errname(rc));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/artifacts/tmp", s->cfg.dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "airlock server: cannot create %s: %s\n", path, strerror(errno));
        s->store->ops->close(s->store);
        return -1;
    }
    if (!s->cfg.insecure_http) {
        key = read_text(s->cfg.key_file);
        cert = read_text(s->cfg.cert_file);
        if (!key || !cert) {
            fprintf(stderr, "airlock server: cannot read the TLS %s %s: %s\n",
                    key ? "certificate" : "key", key ? s->cfg.cert_file : s->cfg.key_file,
                    strerror(errno));
            free(key);
            free(cert);
            s->store->ops->close(s->store);
            return -1;
        }
    }
    build_routes();
    srv_http_opts_t ho = {
        .bind = s->cfg.bind,
        .port = (uint16_t)s->cfg.port,
        .key_pem = key,
        .cert_pem = cert,
        .insecure_http = s->cfg.insecure_http,
        .threads = s->cfg.threads,
        .max_inflight = s->cfg.max_inflight,
        .tmp_dir = path,
        .access_log = s->cfg.access_log,
        .stream_gate = upload_gate,
    };
    rc = srv_http_start(&ho, routes, s, &s->http);
    /* libmicrohttpd copies neither: keep them until stop */
    if (rc != 0) {
        free(key);
        free(cert);
        s->store->ops->close(s->store);
        return -1;
    }
    s->tls_key = key;
    s->tls_cert = cert;
    if (pthread_create(&s->ticker, NULL, ticker, s) == 0) {
        s->ticker_started = true;
    }
    return 0;
}

void srv_stop(srv_t *s)
{
    atomic_store(&s->stop, true);
    if (s->ticker_started) {
        pthread_join(s->ticker, NULL);
        s->ticker_started = false;
    }
    srv_http_stop(s->http);
    s->http = NULL;
    if (s->store) {
        srv_flush_seen(s);
        s->store->ops->close(s->store);
        s->store = NULL;
    }
    free(s->tls_key);
    free(s->tls_cert);
    s->tls_key = s->tls_cert = NULL;
    pthread_mutex_destroy(&s->campaign_lock);
    pthread_mutex_destroy(&s->seen_lock);
}

uint16_t srv_port(const srv_t *s)
{
    return s->http ? srv_http_port(s->http) : 0;
}
