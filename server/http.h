/*
 * The server's HTTP layer over libmicrohttpd: TLS on by default, a request
 * context that collects the body up to a limit (or streams it to a file),
 * a route table matched on method + path segments, and response helpers.
 * Handlers never see libmicrohttpd types; they read a srv_req_t and fill a
 * srv_resp_t. Never does business logic (server/ddi.c, server/api.c do).
 */
#ifndef AIRLOCK_SERVER_HTTP_H
#define AIRLOCK_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define SRV_MAX_SEGS 12
#define SRV_JSON_LIMIT (256u * 1024u) /* largest JSON body accepted */

struct srv;

typedef struct srv_req {
    struct srv *srv;
    const char *method; /* "GET", "HEAD", "POST", "PUT", ... */
    const char *path;   /* decoded path, no query */
    char *segs[SRV_MAX_SEGS];
    unsigned nsegs;
    /* the body: in memory (body, body_len; NUL-terminated), or, for routes
       that stream, in a temp file (body_file, body_len) */
    char *body;
    size_t body_len;
    FILE *body_file;
    char body_path[512];
    bool too_big;
    void *conn; /* struct MHD_Connection * (http.c only) */
} srv_req_t;

/* A response under construction. */
typedef struct srv_resp {
    unsigned status;
    const char *content_type;
    char *body; /* malloc'd; freed by the layer */
    size_t body_len;
    /* or a file range: fd (owned, closed by the layer), offset, length */
    int fd;
    uint64_t fd_off, fd_len;
    bool head;             /* send headers only (HEAD) */
    char headers[8][2][160]; /* extra headers: name, value */
    unsigned nheaders;
} srv_resp_t;

/* A request header's value (case-insensitive name), or NULL. */
const char *srv_req_header(const srv_req_t *r, const char *name);
/* A query argument's value, or NULL. */
const char *srv_req_query(const srv_req_t *r, const char *name);
/* The peer's address as text, for logs. */
void srv_req_peer(const srv_req_t *r, char *buf, size_t cap);

void srv_resp_header(srv_resp_t *w, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Take ownership of j (json_decref'd here) and answer status with it. */
void srv_resp_json(srv_resp_t *w, unsigned status, json_t *j);
/*
 * An error answer: {"errorCode": code, "message": msg}, the shape hawkBit
 * uses ("errorCode" e.g. "airlock.ddi.unauthorized"). Returns status.
 */
unsigned srv_resp_error(srv_resp_t *w, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void srv_resp_text(srv_resp_t *w, unsigned status, const char *type, const char *text);

/* A route: method ("*" any), pattern of segments ("api", "v1", "devices", "*"). */
typedef void (*srv_handler_fn)(srv_req_t *r, srv_resp_t *w);
typedef struct srv_route {
    const char *method;
    const char *pattern; /* "/{}/controller/v1/{}" : {} matches one segment */
    srv_handler_fn fn;
    bool stream_body; /* body goes to a temp file (artifact upload) */
    uint64_t body_limit; /* 0: SRV_JSON_LIMIT */
} srv_route_t;

typedef struct srv_http_opts {
    const char *bind;      /* address, default "0.0.0.0" */
    uint16_t port;         /* 0: ephemeral (srv_http_port tells) */
    const char *key_pem;   /* NULL with insecure: plain HTTP */
    const char *cert_pem;
    bool insecure_http;
    unsigned threads;      /* worker threads, 0: 4 */
    unsigned max_inflight; /* above it: 429 Retry-After (0: 512) */
    const char *tmp_dir;   /* for streamed bodies */
    bool access_log;
    /*
     * Called with the headers of a request for a stream_body route, before
     * any of its body is read: returns the largest body to accept, or 0
     * after filling w with the refusal (401, 413, ...), which is then sent
     * at once. NULL: the route's body_limit applies.
     */
    uint64_t (*stream_gate)(srv_req_t *r, srv_resp_t *w);
} srv_http_opts_t;

typedef struct srv_http srv_http_t;

/* Start serving routes (NULL-terminated by fn == NULL). Returns 0 or -1 (message on stderr). */
int srv_http_start(const srv_http_opts_t *o, const srv_route_t *routes, struct srv *srv,
                   srv_http_t **out);
uint16_t srv_http_port(const srv_http_t *h);
void srv_http_stop(srv_http_t *h);

#endif
