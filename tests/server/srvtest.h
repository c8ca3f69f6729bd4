/*
 * Test helpers for the update server: start a real server (TLS with a CA
 * made at test time) in a temp directory, make HTTPS requests to it, and
 * seed devices, artifacts, groups and campaigns through the store. Shared
 * by the server's tests and the dashboard's seeding program; never shipped.
 */
#ifndef AIRLOCK_TESTS_SRVTEST_H
#define AIRLOCK_TESTS_SRVTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

typedef struct st_env {
    srv_t srv;
    char dir[128];      /* the server's temp directory */
    char ca_file[256];  /* the CA devices trust */
    char base[128];     /* "https://localhost:PORT" */
} st_env_t;

/*
 * Make a temp directory with TLS material (CA -> localhost leaf), fill in
 * env->srv.cfg (127.0.0.1, ephemeral port, poll_interval), start the
 * server. insecure: plain HTTP. Returns 0 or -1 (message on stderr).
 */
int st_start(st_env_t *env, const char *poll_interval, bool insecure);
/* Stop the server; remove the directory when remove is true. */
void st_stop(st_env_t *env, bool remove);

typedef struct st_resp {
    long status;       /* 0 when the request failed (curl_code says why) */
    int curl_code;
    char *body;        /* NUL-terminated, malloc'd */
    size_t len;
    char content_range[128];
    char etag[128];
    char retry_after[32];
} st_resp_t;

/*
 * One request to env's server. auth: a whole Authorization value or NULL;
 * body: sent as is (Content-Type: application/json) or NULL; h1, h2: extra
 * header lines or NULL.
 */
st_resp_t st_req(const st_env_t *env, const char *method, const char *path, const char *auth,
                 const char *body, const char *h1, const char *h2);
/* The same with a binary body of len bytes and its content type (an upload). */
st_resp_t st_req_bin(const st_env_t *env, const char *method, const char *path,
                     const char *auth, const void *body, size_t len, const char *content_type);
void st_resp_free(st_resp_t *r);

/* Seeding through the store; each returns the new row's id, or -1. */
int64_t st_add_device(st_env_t *env, const char *cid, const char *token, const char *version);
int64_t st_add_artifact(st_env_t *env, const char *name, const char *version, const void *data,
                        size_t len);
int64_t st_add_group(st_env_t *env, const char *name, const int64_t *devs, size_t n);
/* A campaign via srv_campaign_create; returns its id or -1 (message on stderr). */
int64_t st_add_campaign(st_env_t *env, const char *name, int64_t artifact, int64_t group,
                        const unsigned *waves, unsigned nwaves, unsigned failure_pct);

#endif
