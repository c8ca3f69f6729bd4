/*
 * HTTP(S) front end of the update server over libmicrohttpd (http.h).
 * A request's body is collected (or streamed to a temp file) with a hard
 * limit, then its route's handler runs once and fills a response. Above
 * max_inflight concurrent requests new ones get 429 + Retry-After at once:
 * the server sheds load instead of queueing without bound.
 */
#define _GNU_SOURCE

#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Per-connection memory pool (request line, headers, response headers).
 * libmicrohttpd zeroes the whole pool after every request on a kept-alive
 * connection, so it costs time per request in proportion to its size: keep
 * it at the library's default. File bodies do not go through it (FILE_BLOCK).
 */
#define CONN_MEMORY ((size_t)32 * 1024)

/*
 * A file body (artifact download) is read in blocks this large into a buffer
 * of its own response, and sent from there: TLS records of the maximum size
 * (16 KiB) and one pread per four of them. libmicrohttpd's own fd response
 * reads 4 KiB at a time, each a small TLS record and a system call.
 */
#define FILE_BLOCK ((size_t)64 * 1024)

/* Bodies at most this much over a route's limit are read and dropped before the 413. */
#define DISCARD_MAX (16ull * 1024 * 1024)

struct srv_http {
    struct MHD_Daemon *d;
    const srv_route_t *routes;
    struct srv *srv;
    srv_http_opts_t o;
    char *tmp_dir;
    atomic_uint inflight;
    uint16_t port;
};

struct ctx {
    srv_http_t *h;
    const srv_route_t *route;
    srv_req_t req;
    char *path_copy;
    size_t cap;
    uint64_t limit;
    bool counted;
    bool answered; /* a response was queued early (413, 429) */
};

/* ---- request helpers ------------------------------------------------------------- */

const char *srv_req_header(const srv_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *srv_req_query(const srv_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void srv_req_peer(const srv_req_t *r, char *buf, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = '\0';
    if (!ci || !ci->client_addr) {
        return;
    }
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)cap);
    }
}

/* ---- response helpers ------------------------------------------------------------ */

void srv_resp_header(srv_resp_t *w, const char *name, const char *fmt, ...)
{
    if (w->nheaders >= sizeof(w->headers) / sizeof(w->headers[0])) {
        return;
    }
    va_list ap;
    snprintf(w->headers[w->nheaders][0], sizeof(w->headers[0][0]), "%s", name);
    va_start(ap, fmt);
    vsnprintf(w->headers[w->nheaders][1], sizeof(w->headers[0][1]), fmt, ap);
    va_end(ap);
    w->nheaders++;
}

static void set_body(srv_resp_t *w, unsigned status, const char *type, char *body, size_t len)
{
    free(w->body);
    w->status = status;
    w->content_type = type;
    w->body = body;
    w->body_len = len;
}

void srv_resp_json(srv_resp_t *w, unsigned status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        srv_resp_text(w, 500, "text/plain", "out of memory\n");
        return;
    }
    set_body(w, status, "application/json", s, strlen(s));
}

unsigned srv_resp_error(srv_resp_t *w, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    srv_resp_json(w, status, json_pack("{s:s, s:s}", "errorCode", code, "message", msg));
    return status;
}

void srv_resp_text(srv_resp_t *w, unsigned status, const char *type, const char *text)
{
    char *s = strdup(text);
    set_body(w, status, type, s, s ? strlen(s) : 0);
}

/* ---- routing --------------------------------------------------------------------- */

static unsigned split(char *path, char **segs, unsigned max)
{
    unsigned n = 0;
    char *p = path;
    for (;;) {
        while (*p == '/') {
            p++;
        }
        if (!*p) {
            return n;
        }
        if (n == max) {
            return max + 1; /* too deep for any route */
        }
        segs[n++] = p;
        char *e = strchr(p, '/');
        if (!e) {
            return n;
        }
        *e = '\0';
        p = e + 1;
    }
}

static bool matches(const srv_route_t *rt, const char *method, char *const *segs, unsigned n)
{
    if (strcmp(rt->method, "*") != 0 && strcmp(rt->method, method) != 0 &&
        !(strcmp(rt->method, "GET") == 0 && strcmp(method, "HEAD") == 0)) {
        return false;
    }
    const char *p = rt->pattern;
    unsigned i = 0;
    while (*p) {
        while (*p == '/') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (i >= n) {
            return false;
        }
        if (!(len == 2 && p[0] == '{' && p[1] == '}') &&
            (strlen(segs[i]) != len || strncmp(segs[i], p, len) != 0)) {
            return false;
        }
        i++;
        p += len;
    }
    return i == n;
}

/* ---- libmicrohttpd glue ---------------------------------------------------------- */

/* A file range being sent: the response owns fd and closes it when done. */
struct file_body {
    int fd;
    uint64_t off;
};

static ssize_t read_file_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct file_body *b = cls;
    ssize_t n;
    do {
        n = pread(b->fd, buf, max, (off_t)(b->off + pos));
    } while (n < 0 && errno == EINTR);
    /* the length was announced: a file that ended early is an error, not an end */
    return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void free_file_body(void *cls)
{
    struct file_body *b = cls;
    close(b->fd);
    free(b);
}

static struct MHD_Response *file_response(int fd, uint64_t off, uint64_t len)
{
    struct file_body *b = malloc(sizeof(*b));
    if (!b) {
        close(fd);
        return NULL;
    }
    b->fd = fd;
    b->off = off;
    size_t block = len < FILE_BLOCK ? (size_t)len : FILE_BLOCK;
    struct MHD_Response *r = MHD_create_response_from_callback(len, block ? block : 1,
                                                               read_file_body, b, free_file_body);
    if (!r) {
        free_file_body(b);
    }
    return r;
}

/* Queue w on c. Over plain HTTP a file goes out with sendfile (libmicrohttpd's fd response). */
static enum MHD_Result queue(struct MHD_Connection *c, srv_resp_t *w, bool tls)
{
    struct MHD_Response *r;
    if (w->fd >= 0 && !tls) {
        r = MHD_create_response_from_fd_at_offset64(w->fd_len, w->fd, w->fd_off);
        if (!r) {
            close(w->fd);
        }
        w->fd = -1;
    } else if (w->fd >= 0) {
        r = file_response(w->fd, w->fd_off, w->fd_len);
        w->fd = -1;
    } else {
        r = MHD_create_response_from_buffer(w->body_len, w->body ? w->body : (void *)"",
                                            w->body ? MHD_RESPMEM_MUST_FREE
                                                    : MHD_RESPMEM_PERSISTENT);
        w->body = NULL;
    }
    if (!r) {
        return MHD_NO;
    }
    if (w->content_type) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, w->content_type);
    }
    for (unsigned i = 0; i < w->nheaders; i++) {
        MHD_add_response_header(r, w->headers[i][0], w->headers[i][1]);
    }
    enum MHD_Result ok = MHD_queue_response(c, w->status ? w->status : 500, r);
    MHD_destroy_response(r);
    return ok;
}

static void resp_init(srv_resp_t *w)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
}

static enum MHD_Result answer_now(struct ctx *x, struct MHD_Connection *c, unsigned status,
                                  const char *code, const char *msg, unsigned retry_after)
{
    srv_resp_t w;
    resp_init(&w);
    srv_resp_error(&w, status, code, "%s", msg);
    if (retry_after) {
        srv_resp_header(&w, "Retry-After", "%u", retry_after);
    }
    x->answered = true;
    return queue(c, &w, !x->h->o.insecure_http);
}

static int open_body_file(struct ctx *x)
{
    snprintf(x->req.body_path, sizeof(x->req.body_path), "%s/upload-XXXXXX", x->h->tmp_dir);
    int fd = mkstemp(x->req.body_path);
    if (fd < 0) {
        x->req.body_path[0] = '\0';
        return -1;
    }
    x->req.body_file = fdopen(fd, "w+b");
    if (!x->req.body_file) {
        close(fd);
        unlink(x->req.body_path);
        x->req.body_path[0] = '\0';
        return -1;
    }
    return 0;
}

static int append(struct ctx *x, const char *data, size_t n)
{
    if (x->req.too_big || x->req.body_len + n > x->limit) {
        x->req.too_big = true;
        return 0;
    }
    if (x->route && x->route->stream_body) {
        if (!x->req.body_file && open_body_file(x) != 0) {
            return -1;
        }
        if (fwrite(data, 1, n, x->req.body_file) != n) {
            return -1;
        }
        x->req.body_len += n;
        return 0;
    }
    if (x->req.body_len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 1024;
        while (cap < x->req.body_len + n + 1) {
            cap *= 2;
        }
        char *b = realloc(x->req.body, cap);
        if (!b) {
            return -1;
        }
        x->req.body = b;
        x->cap = cap;
    }
    memcpy(x->req.body + x->req.body_len, data, n);
    x->req.body_len += n;
    x->req.body[x->req.body_len] = '\0';
    return 0;
}

static void access_log(struct ctx *x, const srv_resp_t *w)
{
    char peer[64];
    srv_req_peer(&x->req, peer, sizeof(peer));
    fprintf(stderr, "airlock server: %s %s %s -> %u\n", peer, x->req.method, x->req.path,
            w->status);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    srv_http_t *h = cls;
    struct ctx *x = *con_cls;
    (void)version;
    if (!x) {
        x = calloc(1, sizeof(*x));
        if (!x) {
            return MHD_NO;
        }
        *con_cls = x;
        x->h = h;
        x->req.srv = h->srv;
        x->req.conn = c;
        x->req.method = method;
        x->req.path = url;
        x->path_copy = strdup(url);
        if (!x->path_copy) {
            return MHD_NO;
        }
        x->req.nsegs = split(x->path_copy, x->req.segs, SRV_MAX_SEGS);
        for (const srv_route_t *rt = h->routes; rt->fn; rt++) {
            if (x->req.nsegs <= SRV_MAX_SEGS && matches(rt, method, x->req.segs, x->req.nsegs)) {
                x->route = rt;
                break;
            }
        }
        x->limit = x->route && x->route->body_limit ? x->route->body_limit : SRV_JSON_LIMIT;
        if (x->route && x->route->stream_body && h->o.stream_gate) {
            /* an upload: who is asking and how much they may send, before storing any of it */
            srv_resp_t w;
            resp_init(&w);
            uint64_t lim = h->o.stream_gate(&x->req, &w);
            if (lim == 0) {
                atomic_fetch_add(&h->inflight, 1u);
                x->counted = true;
                x->answered = true;
                enum MHD_Result ok = queue(c, &w, !h->o.insecure_http);
                free(w.body);
                return ok;
            }
            if (lim < x->limit) {
                x->limit = lim;
            }
        }
        unsigned n = atomic_fetch_add(&h->inflight, 1u) + 1u;
        x->counted = true;
        if (n > h->o.max_inflight) {
            return answer_now(x, c, 429, "airlock.server.busy",
                              "too many requests in flight: retry later", 5);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced > x->limit + DISCARD_MAX) {
            return answer_now(x, c, 413, "airlock.request.tooLarge",
                              "request body larger than this endpoint accepts", 0);
        }
        /*
         * Slightly too large: read and drop the body, then answer 413. Answering
         * before the client finished sending would reset its connection, and
         * it would see a send error instead of the reason.
         */
        x->req.too_big = announced > x->limit;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!x->answered && append(x, upload_data, *upload_data_size) != 0) {
            x->answered = true;
            *upload_data_size = 0;
            return answer_now(x, c, 500, "airlock.server.storage",
                              "cannot buffer the request body", 0);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (x->answered) {
        return MHD_YES;
    }
    srv_resp_t w;
    resp_init(&w);
    if (x->req.too_big) {
        srv_resp_error(&w, 413, "airlock.request.tooLarge",
                       "request body larger than %" PRIu64 " bytes", x->limit);
    } else if (!x->route) {
        srv_resp_error(&w, 404, "airlock.request.notFound", "no such resource: %s %s", method,
                       url);
    } else {
        if (x->req.body_file) {
            fflush(x->req.body_file);
            rewind(x->req.body_file);
        }
        w.head = strcmp(method, "HEAD") == 0;
        x->route->fn(&x->req, &w);
    }
    if (h->o.access_log) {
        access_log(x, &w);
    }
    x->answered = true;
    enum MHD_Result ok = queue(c, &w, !h->o.insecure_http);
    free(w.body);
    if (w.fd >= 0) {
        close(w.fd);
    }
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_http_t *h = cls;
    struct ctx *x = *con_cls;
    (void)c, (void)toe;
    if (!x) {
        return;
    }
    if (x->counted) {
        atomic_fetch_sub(&h->inflight, 1u);
    }
    if (x->req.body_file) {
        fclose(x->req.body_file);
    }
    if (x->req.body_path[0]) {
        unlink(x->req.body_path);
    }
    free(x->req.body);
    free(x->path_copy);
    free(x);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "airlock server: http: ");
    vfprintf(stderr, fmt, ap);
}

int srv_http_start(const srv_http_opts_t *o, const srv_route_t *routes, struct srv *srv,
                   srv_http_t **out)
{
    srv_http_t *h = calloc(1, sizeof(*h));
    if (!h) {
        return -1;
    }
    h->o = *o;
    h->routes = routes;
    h->srv = srv;
    h->tmp_dir = strdup(o->tmp_dir ? o->tmp_dir : "/tmp");
    if (!h->o.max_inflight) {
        h->o.max_inflight = 512;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(o->port);
    if (inet_pton(AF_INET, o->bind ? o->bind : "0.0.0.0", &sa.sin_addr) != 1) {
        fprintf(stderr, "airlock server: bad bind address %s\n", o->bind);
        free(h->tmp_dir);
        free(h);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    if (!o->insecure_http) {
        flags |= MHD_USE_TLS;
    }
    unsigned threads = o->threads ? o->threads : 4;
    if (o->insecure_http) {
        h->d = MHD_start_daemon(flags, o->port, NULL, NULL, on_request, h,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_THREAD_POOL_SIZE, threads,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                                MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_LIMIT,
                                20000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY,
                                MHD_OPTION_END);
    } else {
        h->d = MHD_start_daemon(flags, o->port, NULL, NULL, on_request, h,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_HTTPS_MEM_KEY, o->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
                                o->cert_pem, MHD_OPTION_THREAD_POOL_SIZE, threads,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                                MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_CONNECTION_LIMIT,
                                20000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY,
                                MHD_OPTION_END);
    }
    if (!h->d) {
        fprintf(stderr, "airlock server: cannot listen on %s:%u (%s)\n",
                o->bind ? o->bind : "0.0.0.0", (unsigned)o->port, strerror(errno));
        free(h->tmp_dir);
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : o->port;
    *out = h;
    return 0;
}

uint16_t srv_http_port(const srv_http_t *h)
{
    return h->port;
}

void srv_http_stop(srv_http_t *h)
{
    if (!h) {
        return;
    }
    MHD_stop_daemon(h->d);
    free(h->tmp_dir);
    free(h);
}
