/*
 * Test helpers for the update server (srvtest.h). Test code only.
 */
#define _GNU_SOURCE

#include "srvtest.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/testca.h"

int st_start(st_env_t *env, const char *poll_interval, bool insecure)
{
    tc_pem_t ca = {0}, leaf = {0};
    char p[300];
    memset(&env->srv, 0, sizeof(env->srv));
    snprintf(env->dir, sizeof(env->dir), "/tmp/airlock-srv-XXXXXX");
    if (!mkdtemp(env->dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(p, sizeof(p), "%s/tls", env->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/artifacts", env->dir);
    mkdir(p, 0700);
    srv_config_defaults(&env->srv.cfg, env->dir);
    snprintf(env->ca_file, sizeof(env->ca_file), "%s/tls/ca.pem", env->dir);
    if (tc_make_ca("airlock test CA", &ca) != 0 ||
        tc_make_leaf(&ca, "localhost", "localhost,127.0.0.1", -3600, 86400, &leaf) != 0 ||
        tc_write_file(env->ca_file, ca.cert) != 0 ||
        tc_write_file(env->srv.cfg.cert_file, leaf.cert) != 0 ||
        tc_write_file(env->srv.cfg.key_file, leaf.key) != 0) {
        fprintf(stderr, "srvtest: cannot make TLS material in %s\n", env->dir);
        tc_pem_free(&ca);
        tc_pem_free(&leaf);
        return -1;
    }
    tc_pem_free(&ca);
    tc_pem_free(&leaf);
    env->srv.cfg.port = 0;
    env->srv.cfg.insecure_http = insecure;
    snprintf(env->srv.cfg.bind, sizeof(env->srv.cfg.bind), "127.0.0.1");
    if (poll_interval) {
        snprintf(env->srv.cfg.poll_interval, sizeof(env->srv.cfg.poll_interval), "%s",
                 poll_interval);
    }
    if (srv_start(&env->srv) != 0) {
        return -1;
    }
    snprintf(env->base, sizeof(env->base), "%s://localhost:%u", insecure ? "http" : "https",
             (unsigned)srv_port(&env->srv));
    return 0;
}

void st_stop(st_env_t *env, bool remove)
{
    srv_stop(&env->srv);
    if (remove) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "srvtest: could not remove %s\n", env->dir);
        }
    }
}

/* ---- requests ---------------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    st_resp_t *r = ud;
    char *b = realloc(r->body, r->len + sz * n + 1);
    if (!b) {
        return 0;
    }
    memcpy(b + r->len, p, sz * n);
    r->len += sz * n;
    b[r->len] = '\0';
    r->body = b;
    return sz * n;
}

static void hdr_copy(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0) {
        return;
    }
    const char *v = line + n;
    while (*v == ' ') {
        v++;
    }
    size_t m = len - (size_t)(v - line);
    while (m && (v[m - 1] == '\r' || v[m - 1] == '\n')) {
        m--;
    }
    if (m >= cap) {
        m = cap - 1;
    }
    memcpy(out, v, m);
    out[m] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    st_resp_t *r = ud;
    hdr_copy(p, sz * n, "Content-Range:", r->content_range, sizeof(r->content_range));
    hdr_copy(p, sz * n, "ETag:", r->etag, sizeof(r->etag));
    hdr_copy(p, sz * n, "Retry-After:", r->retry_after, sizeof(r->retry_after));
    return sz * n;
}

/* One request; body_len SIZE_MAX: body is a string sent as JSON (or none). */
static st_resp_t request(const st_env_t *env, const char *method, const char *path,
                         const char *auth, const void *body, size_t body_len,
                         const char *content_type, const char *h1, const char *h2)
{
    st_resp_t r;
    char url[600], ah[300], ct[128];
    memset(&r, 0, sizeof(r));
    CURL *h = curl_easy_init();
    if (!h) {
        r.curl_code = CURLE_OUT_OF_MEMORY;
        return r;
    }
    snprintf(url, sizeof(url), "%s%s", env->base, path);
    struct curl_slist *hl = NULL;
    if (auth) {
        snprintf(ah, sizeof(ah), "Authorization: %s", auth);
        hl = curl_slist_append(hl, ah);
    }
    if (body) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hl = curl_slist_append(hl, ct);
    }
    if (h1) {
        hl = curl_slist_append(hl, h1);
    }
    if (h2) {
        hl = curl_slist_append(hl, h2);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, env->ca_file);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        if (body_len != SIZE_MAX) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    r.curl_code = (int)curl_easy_perform(h);
    if (r.curl_code == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return r;
}

st_resp_t st_req(const st_env_t *env, const char *method, const char *path, const char *auth,
                 const char *body, const char *h1, const char *h2)
{
    return request(env, method, path, auth, body, SIZE_MAX, "application/json", h1, h2);
}

st_resp_t st_req_bin(const st_env_t *env, const char *method, const char *path,
                     const char *auth, const void *body, size_t len, const char *content_type)
{
    return request(env, method, path, auth, body, len, content_type, NULL, NULL);
}

void st_resp_free(st_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- seeding ----------------------------------------------------------------------- */

int64_t st_add_device(st_env_t *env, const char *cid, const char *token, const char *version)
{
    store_t *st = env->srv.store;
    store_device_t d;
    memset(&d, 0, sizeof(d));
    snprintf(d.controller_id, sizeof(d.controller_id), "%s", cid);
    snprintf(d.name, sizeof(d.name), "%s", cid);
    if (token) {
        srv_sha256_hex(token, strlen(token), d.token_hash);
    }
    if (version) {
        snprintf(d.version, sizeof(d.version), "%s", version);
    }
    return st->ops->device_create(st, &d) == STORE_OK ? d.id : -1;
}

int64_t st_add_artifact(st_env_t *env, const char *name, const char *version, const void *data,
                        size_t len)
{
    store_t *st = env->srv.store;
    store_artifact_t a;
    char path[600];
    memset(&a, 0, sizeof(a));
    snprintf(a.name, sizeof(a.name), "%s", name);
    snprintf(a.version, sizeof(a.version), "%s", version);
    a.kind = STORE_ART_OPAQUE;
    srv_sha256_hex(data, len, a.sha256);
    memset(a.sha1, '0', 40);
    memset(a.md5, '0', 32);
    a.size = (int64_t)len;
    snprintf(path, sizeof(path), "%s/artifacts/%s", env->dir, a.sha256);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        if (f) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    return st->ops->artifact_create(st, &a) == STORE_OK ? a.id : -1;
}

int64_t st_add_group(st_env_t *env, const char *name, const int64_t *devs, size_t n)
{
    store_t *st = env->srv.store;
    store_group_t g;
    memset(&g, 0, sizeof(g));
    snprintf(g.name, sizeof(g.name), "%s", name);
    if (st->ops->group_create(st, &g) != STORE_OK) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (st->ops->group_add(st, g.id, devs[i]) != STORE_OK) {
            return -1;
        }
    }
    return g.id;
}

int64_t st_add_campaign(st_env_t *env, const char *name, int64_t artifact, int64_t group,
                        const unsigned *waves, unsigned nwaves, unsigned failure_pct)
{
    store_campaign_t c;
    char msg[256];
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", name);
    c.artifact_id = artifact;
    c.group_id = group;
    c.nwaves = nwaves;
    memcpy(c.waves, waves, nwaves * sizeof(unsigned));
    c.failure_pct = failure_pct;
    c.forced = true;
    if (srv_campaign_create(&env->srv, &c, msg, sizeof(msg)) != STORE_OK) {
        fprintf(stderr, "srvtest: campaign %s: %s\n", name, msg);
        return -1;
    }
    return c.id;
}
