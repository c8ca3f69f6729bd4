/*
 * The HTTPS test server (httpsd.c) and certificate maker (testca.c) checked
 * with a real client (libcurl over OpenSSL): ranges, ETags, every injected
 * fault down to the byte, and certificate failures. If these pass, a download
 * test that uses the fixture tests the downloader, not the fixture.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "httpsd.h"
#include "testca.h"

#define DAY (24L * 60 * 60)
/* Three full blocks and a tail: faults land on and around block edges. */
#define ART_LEN (3 * HTTPSD_BLOCK + 1234)

struct fx {
    tc_pem_t ca, leaf;
    uint8_t a[ART_LEN], b[ART_LEN]; /* the artifact and its replacement */
    httpsd_t *s;
};

/* ---- a small client ----------------------------------------------------- */

struct req {
    const char *method;   /* NULL = GET */
    const char *path;     /* NULL = /artifact.bin */
    const char *range;    /* whole Range header value, NULL = none */
    const char *if_range; /* If-Range value, NULL = none */
    const char *ca_pem;   /* trust anchor, NULL = the fixture's CA */
    const char *pin;      /* CURLOPT_PINNEDPUBLICKEY, NULL = none */
    long timeout_ms;      /* 0 = 5000 */
};

struct xfer {
    CURLcode rc;
    long status;
    uint8_t *body;
    size_t len, cap;
    curl_off_t content_length;
    long connects; /* new connections this transfer opened */
    char etag[64], content_range[96], accept_ranges[32], retry_after[16];
    double secs;
};

static size_t on_body(char *p, size_t size, size_t n, void *cls)
{
    struct xfer *x = cls;
    size_t add = size * n;
    if (x->len + add > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + add) {
            cap *= 2;
        }
        uint8_t *nb = realloc(x->body, cap);
        if (!nb) {
            return 0;
        }
        x->body = nb;
        x->cap = cap;
    }
    memcpy(x->body + x->len, p, add);
    x->len += add;
    return add;
}

static void keep_header(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return;
    }
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    snprintf(dst, cap, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *p, size_t size, size_t n, void *cls)
{
    struct xfer *x = cls;
    size_t len = size * n;
    keep_header(p, len, "ETag", x->etag, sizeof(x->etag));
    keep_header(p, len, "Content-Range", x->content_range, sizeof(x->content_range));
    keep_header(p, len, "Accept-Ranges", x->accept_ranges, sizeof(x->accept_ranges));
    keep_header(p, len, "Retry-After", x->retry_after, sizeof(x->retry_after));
    return len;
}

/* One request on handle h (a reused handle may reuse its connection). */
static void fetch_on(CURL *h, const struct fx *fx, uint16_t port, const struct req *q,
                     struct xfer *x)
{
    memset(x, 0, sizeof(*x));
    curl_easy_reset(h);
    char url[128], resolve[64], range[128], if_range[128];
    snprintf(url, sizeof(url), "https://localhost:%u%s", (unsigned)port,
             q->path ? q->path : "/artifact.bin");
    snprintf(resolve, sizeof(resolve), "localhost:%u:127.0.0.1", (unsigned)port);
    struct curl_slist *res = curl_slist_append(NULL, resolve);
    struct curl_slist *hdrs = NULL;
    if (q->range) {
        snprintf(range, sizeof(range), "Range: %s", q->range);
        hdrs = curl_slist_append(hdrs, range);
    }
    if (q->if_range) {
        snprintf(if_range, sizeof(if_range), "If-Range: %s", q->if_range);
        hdrs = curl_slist_append(hdrs, if_range);
    }
    const char *ca = q->ca_pem ? q->ca_pem : fx->ca.cert;
    struct curl_blob blob = {(void *)ca, strlen(ca), CURL_BLOB_COPY};

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CAINFO, NULL); /* trust only the blob */
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, q->timeout_ms ? q->timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    if (q->pin) {
        curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, q->pin);
    }
    if (q->method && strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (q->method) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    x->rc = curl_easy_perform(h);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    x->secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &x->content_length);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &x->connects);
    curl_slist_free_all(res);
    curl_slist_free_all(hdrs);
}

/* One request on a fresh handle, hence a fresh connection. */
static void fetch(const struct fx *fx, uint16_t port, const struct req *q, struct xfer *x)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    fetch_on(h, fx, port, q, x);
    curl_easy_cleanup(h);
}

static void xfer_free(struct xfer *x)
{
    free(x->body);
    x->body = NULL;
}

/* GET through the fixture's server with an optional Range / If-Range. */
static void get(struct fx *fx, const char *range, const char *if_range, struct xfer *x)
{
    struct req q = {.range = range, .if_range = if_range};
    fetch(fx, httpsd_port(fx->s), &q, x);
}

/* A transfer the server cut short: both are what a truncated TLS stream gives. */
static void assert_cut(const struct xfer *x)
{
    if (x->rc != CURLE_PARTIAL_FILE && x->rc != CURLE_RECV_ERROR) {
        fail_msg("expected a cut transfer, got curl %d (%s)", x->rc, curl_easy_strerror(x->rc));
    }
}

static httpsd_req_t last_req(httpsd_t *s)
{
    httpsd_stats_t *st = malloc(sizeof(*st));
    assert_non_null(st);
    httpsd_stats(s, st);
    assert_true(st->nlog > 0);
    httpsd_req_t r = st->log[st->nlog - 1];
    free(st);
    return r;
}

/* ---- fixture ------------------------------------------------------------ */

static int group_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (!fx || tc_make_ca("airlock test root", &fx->ca) != 0 ||
        tc_make_leaf(&fx->ca, "localhost", "localhost,127.0.0.1", -3600L, DAY, &fx->leaf) != 0) {
        return -1;
    }
    /* Fixed generator: the same bytes every run; a and b differ everywhere. */
    uint32_t v = 0x2545f491u;
    for (size_t i = 0; i < ART_LEN; i++) {
        v = v * 1664525u + 1013904223u;
        fx->a[i] = (uint8_t)(v >> 24);
        fx->b[i] = (uint8_t)(fx->a[i] ^ 0x5a);
    }
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    struct fx *fx = *state;
    tc_pem_free(&fx->ca);
    tc_pem_free(&fx->leaf);
    free(fx);
    return 0;
}

static int start_with(struct fx *fx, const tc_pem_t *leaf)
{
    httpsd_opts_t o = {.key_pem = leaf->key, .cert_pem = leaf->cert};
    if (httpsd_start(&o, &fx->s) != 0) {
        return -1;
    }
    return httpsd_set_artifact(fx->s, fx->a, ART_LEN);
}

static int setup(void **state)
{
    struct fx *fx = *state;
    return start_with(fx, &fx->leaf);
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    httpsd_stop(fx->s);
    fx->s = NULL;
    return 0;
}

/* ---- plain serving ------------------------------------------------------ */

static void test_full_get_and_head(void **state)
{
    struct fx *fx = *state;
    struct xfer x;
    char etag[24];
    httpsd_etag(fx->s, etag);
    assert_int_equal(strlen(etag), 18);

    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.len, ART_LEN);
    assert_memory_equal(x.body, fx->a, ART_LEN);
    assert_string_equal(x.etag, etag);
    assert_string_equal(x.accept_ranges, "bytes");
    assert_string_equal(x.content_range, "");
    xfer_free(&x);

    struct req head = {.method = "HEAD"};
    fetch(fx, httpsd_port(fx->s), &head, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.content_length, ART_LEN);
    assert_int_equal(x.len, 0);
    assert_string_equal(x.etag, etag);
    xfer_free(&x);

    head.range = "bytes=100-199";
    fetch(fx, httpsd_port(fx->s), &head, &x);
    assert_int_equal(x.status, 206);
    assert_int_equal(x.content_length, 100);
    assert_int_equal(x.len, 0);
    xfer_free(&x);

    httpsd_stats_t *st = malloc(sizeof(*st));
    assert_non_null(st);
    httpsd_stats(fx->s, st);
    assert_int_equal(st->gets, 1);
    assert_int_equal(st->heads, 2);
    assert_int_equal(st->body_bytes, ART_LEN);
    assert_int_equal(st->nlog, 3);
    assert_string_equal(st->log[0].method, "GET");
    assert_false(st->log[0].has_range);
    assert_int_equal(st->log[0].sent, ART_LEN);
    assert_string_equal(st->log[1].method, "HEAD");
    assert_int_equal(st->log[1].sent, 0);
    assert_true(st->log[2].has_range);
    assert_string_equal(st->log[2].range, "bytes=100-199");
    assert_int_equal(st->log[2].status, 206);
    free(st);
}

/* Connections stay open between requests, except after a cut. */
static void test_keep_alive(void **state)
{
    struct fx *fx = *state;
    httpsd_fault_t f = {.kind = HTTPSD_FAULT_DROP, .first = 2, .count = 1, .after = 100};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    struct req q = {0};
    struct xfer x;
    fetch_on(h, fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.connects, 1);
    xfer_free(&x);
    q.range = "bytes=10-";
    fetch_on(h, fx, httpsd_port(fx->s), &q, &x);
    assert_cut(&x);
    assert_int_equal(x.connects, 0); /* reused */
    assert_int_equal(x.len, 100);
    xfer_free(&x);
    fetch_on(h, fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.connects, 1); /* the cut one was closed */
    assert_int_equal(x.len, ART_LEN - 10);
    xfer_free(&x);
    fetch_on(h, fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.connects, 0);
    xfer_free(&x);
    curl_easy_cleanup(h);
}

static void test_other_path_and_method(void **state)
{
    struct fx *fx = *state;
    struct xfer x;
    struct req q = {.path = "/other.bin"};
    fetch(fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 404);
    xfer_free(&x);

    q = (struct req){.method = "DELETE"};
    fetch(fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.status, 405);
    xfer_free(&x);

    httpsd_stats_t *st = malloc(sizeof(*st));
    assert_non_null(st);
    httpsd_stats(fx->s, st);
    assert_int_equal(st->requests, 2);
    assert_int_equal(st->gets, 0);
    assert_int_equal(st->body_bytes, 0);
    free(st);
}

static void test_set_artifact_changes_etag(void **state)
{
    struct fx *fx = *state;
    char e1[24], e2[24], e3[24];
    httpsd_etag(fx->s, e1);
    assert_int_equal(httpsd_set_artifact(fx->s, fx->b, ART_LEN), 0);
    httpsd_etag(fx->s, e2);
    assert_string_not_equal(e1, e2);
    assert_int_equal(httpsd_set_artifact(fx->s, fx->a, ART_LEN), 0);
    httpsd_etag(fx->s, e3);
    assert_string_equal(e1, e3); /* derived from the content, nothing else */

    struct xfer x;
    assert_int_equal(httpsd_set_artifact(fx->s, NULL, 0), 0);
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.len, 0);
    assert_int_equal(x.content_length, 0);
    xfer_free(&x);
    get(fx, "bytes=0-", NULL, &x);
    assert_int_equal(x.status, 416);
    assert_string_equal(x.content_range, "bytes */0");
    xfer_free(&x);
}

/* ---- ranges ------------------------------------------------------------- */

static void expect_206(struct fx *fx, const char *range, size_t a, size_t b)
{
    struct xfer x;
    char want[96];
    get(fx, range, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 206);
    snprintf(want, sizeof(want), "bytes %zu-%zu/%u", a, b, (unsigned)ART_LEN);
    assert_string_equal(x.content_range, want);
    assert_int_equal(x.content_length, b - a + 1);
    assert_int_equal(x.len, b - a + 1);
    assert_memory_equal(x.body, fx->a + a, b - a + 1);
    xfer_free(&x);
    httpsd_req_t r = last_req(fx->s);
    assert_string_equal(r.range, range);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.sent, b - a + 1);
}

static void expect_full(struct fx *fx, const char *range, const char *if_range)
{
    struct xfer x;
    get(fx, range, if_range, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 200);
    assert_string_equal(x.content_range, "");
    assert_int_equal(x.len, ART_LEN);
    assert_memory_equal(x.body, fx->a, ART_LEN);
    xfer_free(&x);
}

static void expect_416(struct fx *fx, const char *range)
{
    struct xfer x;
    char want[48];
    get(fx, range, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 416);
    snprintf(want, sizeof(want), "bytes */%u", (unsigned)ART_LEN);
    assert_string_equal(x.content_range, want);
    assert_int_equal(x.len, 0);
    xfer_free(&x);
}

static void test_ranges(void **state)
{
    struct fx *fx = *state;
    char r[64];
    expect_206(fx, "bytes=100-", 100, ART_LEN - 1);
    expect_206(fx, "bytes=10-19", 10, 19);
    expect_206(fx, "bytes=0-", 0, ART_LEN - 1);
    expect_206(fx, "bytes=-5", ART_LEN - 5, ART_LEN - 1);
    expect_206(fx, "bytes=-999999", 0, ART_LEN - 1);
    expect_206(fx, "bytes=7-7", 7, 7);
    expect_206(fx, "bytes=100-99999999", 100, ART_LEN - 1);
    snprintf(r, sizeof(r), "bytes=%u-", (unsigned)ART_LEN - 1);
    expect_206(fx, r, ART_LEN - 1, ART_LEN - 1);
}

static void test_unsatisfiable_and_malformed(void **state)
{
    struct fx *fx = *state;
    char r[64];
    snprintf(r, sizeof(r), "bytes=%u-", (unsigned)ART_LEN);
    expect_416(fx, r);
    snprintf(r, sizeof(r), "bytes=%u-%u", (unsigned)ART_LEN + 10, (unsigned)ART_LEN + 20);
    expect_416(fx, r);
    expect_416(fx, "bytes=-0");
    /* Not a single well-formed byte range: ignored, whole artifact. */
    expect_full(fx, "bytes=abc", NULL);
    expect_full(fx, "bytes=5-2", NULL);
    expect_full(fx, "items=0-1", NULL);
    expect_full(fx, "bytes=0-1,4-5", NULL);
    expect_full(fx, "bytes=", NULL);
    expect_full(fx, "bytes=1-2x", NULL);
}

static void test_if_range(void **state)
{
    struct fx *fx = *state;
    char etag[24], weak[32];
    httpsd_etag(fx->s, etag);
    snprintf(weak, sizeof(weak), "W/%s", etag);

    struct xfer x;
    get(fx, "bytes=100-", etag, &x);
    assert_int_equal(x.status, 206);
    assert_int_equal(x.len, ART_LEN - 100);
    assert_memory_equal(x.body, fx->a + 100, ART_LEN - 100);
    xfer_free(&x);
    httpsd_req_t r = last_req(fx->s);
    assert_true(r.has_if_range);
    assert_string_equal(r.if_range, etag);

    expect_full(fx, "bytes=100-", "\"0000000000000000\"");
    expect_full(fx, "bytes=100-", weak); /* If-Range compares strongly */
    expect_full(fx, NULL, etag);         /* If-Range alone means nothing */
}

/* ---- faults ------------------------------------------------------------- */

static void test_drop_exact_bytes(void **state)
{
    struct fx *fx = *state;
    const uint64_t ks[] = {
        0, 1, HTTPSD_BLOCK - 1, HTTPSD_BLOCK, HTTPSD_BLOCK + 1, 2 * HTTPSD_BLOCK, ART_LEN - 1};
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        httpsd_fault_t f = {.kind = HTTPSD_FAULT_DROP, .first = 1, .count = 1, .after = ks[i]};
        assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
        struct xfer x;
        get(fx, NULL, NULL, &x);
        assert_cut(&x);
        assert_int_equal(x.status, 200);
        assert_int_equal(x.content_length, ART_LEN);
        if (x.len != ks[i]) {
            fail_msg("drop after %llu: got %zu bytes", (unsigned long long)ks[i], x.len);
        }
        if (ks[i]) {
            assert_memory_equal(x.body, fx->a, ks[i]);
        }
        xfer_free(&x);
        httpsd_req_t r = last_req(fx->s);
        assert_int_equal(r.fault, HTTPSD_FAULT_DROP);
        assert_int_equal(r.sent, ks[i]);

        /* Only the first GET was broken. */
        expect_full(fx, NULL, NULL);
        assert_int_equal(last_req(fx->s).fault, HTTPSD_FAULT_NONE);
    }
}

static void test_drop_in_range_and_later_gets(void **state)
{
    struct fx *fx = *state;
    /* GET 2 drops inside a 206 body; GETs 1 and 3 are fine. */
    httpsd_fault_t f = {
        .kind = HTTPSD_FAULT_DROP, .first = 2, .count = 1, .after = HTTPSD_BLOCK + 1};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    expect_full(fx, NULL, NULL);
    struct xfer x;
    get(fx, "bytes=1000-", NULL, &x);
    assert_cut(&x);
    assert_int_equal(x.status, 206);
    assert_int_equal(x.len, HTTPSD_BLOCK + 1);
    assert_memory_equal(x.body, fx->a + 1000, HTTPSD_BLOCK + 1);
    xfer_free(&x);
    expect_206(fx, "bytes=1000-", 1000, ART_LEN - 1);

    /* count 0: every GET from `first` on. */
    f = (httpsd_fault_t){.kind = HTTPSD_FAULT_DROP, .first = 1, .count = 0, .after = 10};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    for (int i = 0; i < 3; i++) {
        get(fx, NULL, NULL, &x);
        assert_cut(&x);
        assert_int_equal(x.len, 10);
        xfer_free(&x);
    }
    /* Two faults at once: GET 1 drops, GET 2 says 503. */
    f = (httpsd_fault_t){.kind = HTTPSD_FAULT_DROP, .first = 1, .count = 1, .after = 3};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    f = (httpsd_fault_t){.kind = HTTPSD_FAULT_STATUS, .first = 2, .count = 1, .status = 503};
    assert_int_equal(httpsd_add_fault(fx->s, &f), 0);
    get(fx, NULL, NULL, &x);
    assert_cut(&x);
    assert_int_equal(x.len, 3);
    xfer_free(&x);
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.status, 503);
    xfer_free(&x);
    expect_full(fx, NULL, NULL);
    assert_int_equal(httpsd_set_fault(fx->s, NULL), 0);
    expect_full(fx, NULL, NULL);
}

static void test_bad_length(void **state)
{
    struct fx *fx = *state;
    struct xfer x;
    httpsd_fault_t f = {.kind = HTTPSD_FAULT_BAD_LENGTH, .first = 1, .count = 1, .delta = 100};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    get(fx, NULL, NULL, &x);
    assert_cut(&x);
    assert_int_equal(x.content_length, ART_LEN + 100);
    assert_int_equal(x.len, ART_LEN);
    assert_memory_equal(x.body, fx->a, ART_LEN);
    xfer_free(&x);
    assert_int_equal(last_req(fx->s).length, ART_LEN + 100);

    /* Shorter than real: a clean, "complete", short body. */
    f.delta = -100;
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.content_length, ART_LEN - 100);
    assert_int_equal(x.len, ART_LEN - 100);
    assert_memory_equal(x.body, fx->a, ART_LEN - 100);
    xfer_free(&x);

    /* On a range: the announced length of the 206 is off too. */
    f.delta = 7;
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    get(fx, "bytes=0-99", NULL, &x);
    assert_cut(&x);
    assert_int_equal(x.content_length, 107);
    assert_int_equal(x.len, 100);
    xfer_free(&x);
}

static void test_change_snapshot(void **state)
{
    struct fx *fx = *state;
    char ea[24], eb[24];
    httpsd_etag(fx->s, ea);
    httpsd_fault_t f = {.kind = HTTPSD_FAULT_CHANGE,
                        .first = 1,
                        .count = 1,
                        .after = HTTPSD_BLOCK + 7,
                        .new_data = fx->b,
                        .new_len = ART_LEN};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);

    struct xfer x;
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.len, ART_LEN);
    assert_memory_equal(x.body, fx->a, ART_LEN); /* the old snapshot throughout */
    assert_string_equal(x.etag, ea);
    xfer_free(&x);

    httpsd_etag(fx->s, eb);
    assert_string_not_equal(ea, eb);
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.status, 200);
    assert_string_equal(x.etag, eb);
    assert_memory_equal(x.body, fx->b, ART_LEN);
    xfer_free(&x);

    /* Resuming with the old ETag: the server says "start over". */
    get(fx, "bytes=100-", ea, &x);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.len, ART_LEN);
    assert_memory_equal(x.body, fx->b, ART_LEN);
    xfer_free(&x);
    get(fx, "bytes=100-", eb, &x);
    assert_int_equal(x.status, 206);
    assert_memory_equal(x.body, fx->b + 100, ART_LEN - 100);
    xfer_free(&x);
}

static void test_change_splice(void **state)
{
    struct fx *fx = *state;
    const size_t k = HTTPSD_BLOCK + 7;
    httpsd_fault_t f = {.kind = HTTPSD_FAULT_CHANGE,
                        .first = 1,
                        .count = 1,
                        .after = k,
                        .new_data = fx->b,
                        .new_len = ART_LEN,
                        .splice = true};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    struct xfer x;
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.len, ART_LEN);
    assert_memory_equal(x.body, fx->a, k);
    assert_memory_equal(x.body + k, fx->b + k, ART_LEN - k);
    xfer_free(&x);

    /* Spliced onto a shorter artifact: the body ends early with a cut. */
    assert_int_equal(httpsd_set_artifact(fx->s, fx->a, ART_LEN), 0);
    f.new_len = k + 10;
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    get(fx, NULL, NULL, &x);
    assert_cut(&x);
    assert_int_equal(x.len, k + 10);
    assert_memory_equal(x.body + k, fx->b + k, 10);
    xfer_free(&x);
}

static void test_status(void **state)
{
    struct fx *fx = *state;
    httpsd_fault_t f = {
        .kind = HTTPSD_FAULT_STATUS, .first = 1, .count = 1, .status = 503, .retry_after = 7};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    struct xfer x;
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_int_equal(x.status, 503);
    assert_string_equal(x.retry_after, "7");
    assert_true(x.len > 0 && x.len < 100);
    xfer_free(&x);
    httpsd_req_t r = last_req(fx->s);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.fault, HTTPSD_FAULT_STATUS);
    expect_full(fx, NULL, NULL);

    f = (httpsd_fault_t){.kind = HTTPSD_FAULT_STATUS, .first = 1, .count = 1, .status = 404};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    get(fx, "bytes=0-", NULL, &x);
    assert_int_equal(x.status, 404);
    assert_string_equal(x.retry_after, "");
    xfer_free(&x);
}

static void test_ignore_range(void **state)
{
    struct fx *fx = *state;
    httpsd_fault_t f = {.kind = HTTPSD_FAULT_IGNORE_RANGE, .first = 1, .count = 0};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    for (int i = 0; i < 2; i++) {
        struct xfer x;
        get(fx, "bytes=100-", NULL, &x);
        assert_int_equal(x.rc, CURLE_OK);
        assert_int_equal(x.status, 200);
        assert_string_equal(x.accept_ranges, "");
        assert_int_equal(x.len, ART_LEN);
        assert_memory_equal(x.body, fx->a, ART_LEN);
        xfer_free(&x);
    }
}

static void test_stall(void **state)
{
    struct fx *fx = *state;
    struct xfer x;
    httpsd_fault_t f = {
        .kind = HTTPSD_FAULT_STALL, .first = 1, .count = 1, .after = 1000, .stall_ms = 300};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_memory_equal(x.body, fx->a, ART_LEN);
    assert_true(x.secs >= 0.29);
    xfer_free(&x);

    f.stall_ms = 100;
    f.stall_drop = true;
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    get(fx, NULL, NULL, &x);
    assert_cut(&x);
    assert_int_equal(x.len, 1000);
    assert_true(x.secs >= 0.09);
    xfer_free(&x);

    /* A client that gives up; then stopping must not wait out the stall. */
    f = (httpsd_fault_t){
        .kind = HTTPSD_FAULT_STALL, .first = 1, .count = 1, .after = 5, .stall_ms = 20000};
    assert_int_equal(httpsd_set_fault(fx->s, &f), 0);
    struct req q = {.timeout_ms = 300};
    fetch(fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.rc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(x.len, 5);
    xfer_free(&x);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    httpsd_stop(fx->s);
    fx->s = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (secs > 2.0) {
        fail_msg("httpsd_stop took %.2f s during a stall", secs);
    }
}

static void test_rate(void **state)
{
    struct fx *fx = *state;
    httpsd_set_rate(fx->s, 100000); /* ~0.5 s for the artifact */
    struct xfer x;
    get(fx, NULL, NULL, &x);
    assert_int_equal(x.rc, CURLE_OK);
    assert_memory_equal(x.body, fx->a, ART_LEN);
    if (x.secs < 0.4 || x.secs > 3.0) {
        fail_msg("rate 100000 B/s: %zu bytes took %.2f s", x.len, x.secs);
    }
    xfer_free(&x);
    httpsd_set_rate(fx->s, 0);
    get(fx, NULL, NULL, &x);
    assert_true(x.secs < 0.4);
    xfer_free(&x);
}

static void test_stats_log(void **state)
{
    struct fx *fx = *state;
    struct xfer x;
    get(fx, "bytes=5-9", NULL, &x);
    xfer_free(&x);
    for (int i = 0; i < 69; i++) {
        struct req q = {.method = "HEAD"};
        fetch(fx, httpsd_port(fx->s), &q, &x);
        assert_int_equal(x.status, 200);
        xfer_free(&x);
    }
    httpsd_stats_t *st = malloc(sizeof(*st));
    assert_non_null(st);
    httpsd_stats(fx->s, st);
    assert_int_equal(st->requests, 70);
    assert_int_equal(st->gets, 1);
    assert_int_equal(st->heads, 69);
    assert_int_equal(st->body_bytes, 5);
    assert_int_equal(st->nlog, HTTPSD_LOG_LEN);
    assert_int_equal(st->log[0].seq, 70 - HTTPSD_LOG_LEN + 1);
    assert_int_equal(st->log[HTTPSD_LOG_LEN - 1].seq, 70);

    httpsd_reset_stats(fx->s);
    httpsd_stats(fx->s, st);
    assert_int_equal(st->requests, 0);
    assert_int_equal(st->nlog, 0);
    get(fx, NULL, NULL, &x);
    xfer_free(&x);
    httpsd_stats(fx->s, st);
    assert_int_equal(st->nlog, 1);
    assert_int_equal(st->log[0].seq, 71);
    assert_int_equal(st->log[0].sent, ART_LEN);
    free(st);
}

/* ---- certificates ------------------------------------------------------- */

/* Serve leaf and fetch once trusting ca_pem; returns curl's code. */
static CURLcode try_leaf(struct fx *fx, const tc_pem_t *leaf, const char *ca_pem)
{
    httpsd_stop(fx->s);
    fx->s = NULL;
    assert_int_equal(start_with(fx, leaf), 0);
    struct req q = {.ca_pem = ca_pem};
    struct xfer x;
    fetch(fx, httpsd_port(fx->s), &q, &x);
    if (x.rc == CURLE_OK) {
        assert_int_equal(x.len, ART_LEN);
        assert_memory_equal(x.body, fx->a, ART_LEN);
    }
    xfer_free(&x);
    return x.rc;
}

static void test_cert_wrong_host(void **state)
{
    struct fx *fx = *state;
    tc_pem_t leaf;
    assert_int_equal(tc_make_leaf(&fx->ca, "wrong.example", "wrong.example", -3600L, DAY, &leaf),
                     0);
    assert_int_equal(try_leaf(fx, &leaf, NULL), CURLE_PEER_FAILED_VERIFICATION);
    httpsd_stats_t *st = malloc(sizeof(*st));
    assert_non_null(st);
    httpsd_stats(fx->s, st);
    assert_int_equal(st->requests, 0);
    free(st);
    tc_pem_free(&leaf);
}

static void test_cert_expired(void **state)
{
    struct fx *fx = *state;
    tc_pem_t leaf;
    assert_int_equal(tc_make_leaf(&fx->ca, "localhost", "localhost", -2 * DAY, -DAY, &leaf), 0);
    assert_int_equal(try_leaf(fx, &leaf, NULL), CURLE_PEER_FAILED_VERIFICATION);
    tc_pem_free(&leaf);
    /* Not yet valid fails the same way. */
    assert_int_equal(tc_make_leaf(&fx->ca, "localhost", "localhost", DAY, 2 * DAY, &leaf), 0);
    assert_int_equal(try_leaf(fx, &leaf, NULL), CURLE_PEER_FAILED_VERIFICATION);
    tc_pem_free(&leaf);
}

static void test_cert_untrusted_ca(void **state)
{
    struct fx *fx = *state;
    tc_pem_t other, leaf;
    assert_int_equal(tc_make_ca("someone else", &other), 0);
    assert_int_equal(tc_make_leaf(&other, "localhost", "localhost", -3600L, DAY, &leaf), 0);
    assert_int_equal(try_leaf(fx, &leaf, NULL), CURLE_PEER_FAILED_VERIFICATION);
    /* The same leaf is fine for a client that trusts its CA. */
    assert_int_equal(try_leaf(fx, &leaf, other.cert), CURLE_OK);
    tc_pem_free(&leaf);
    tc_pem_free(&other);
}

static void test_cert_intermediate_chain(void **state)
{
    struct fx *fx = *state;
    tc_pem_t inter, leaf;
    assert_int_equal(tc_make_sub_ca(&fx->ca, "airlock test intermediate", &inter), 0);
    assert_int_equal(tc_make_leaf(&inter, "localhost", "localhost,127.0.0.1", -3600L, DAY, &leaf),
                     0);
    /* leaf + intermediate, the root left to the client. */
    const char *second = strstr(leaf.cert + 1, "-----BEGIN CERTIFICATE-----");
    assert_non_null(second);
    assert_null(strstr(second + 1, "-----BEGIN CERTIFICATE-----"));
    assert_string_equal(second, inter.cert);
    assert_int_equal(try_leaf(fx, &leaf, NULL), CURLE_OK);

    /* Without the intermediate on the wire the chain cannot be built. */
    tc_pem_t bare = {.key = leaf.key, .cert = strndup(leaf.cert, (size_t)(second - leaf.cert))};
    assert_non_null(bare.cert);
    assert_int_equal(try_leaf(fx, &bare, NULL), CURLE_PEER_FAILED_VERIFICATION);
    free(bare.cert);
    tc_pem_free(&leaf);
    tc_pem_free(&inter);
}

static void hex_to_pin(const char *hex, char *pin, size_t cap)
{
    unsigned char raw[32];
    for (size_t i = 0; i < 32; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        raw[i] = (unsigned char)v;
    }
    unsigned char b64[64];
    EVP_EncodeBlock(b64, raw, sizeof(raw));
    snprintf(pin, cap, "sha256//%s", (const char *)b64);
}

/* The SPKI hash agrees with curl's own public-key pinning. */
static void test_spki_pin(void **state)
{
    struct fx *fx = *state;
    char hex[65], pin[96];
    assert_int_equal(tc_spki_sha256_hex(fx->leaf.cert, hex), 0);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 64);
    hex_to_pin(hex, pin, sizeof(pin));
    struct req q = {.pin = pin};
    struct xfer x;
    fetch(fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.rc, CURLE_OK);
    xfer_free(&x);

    assert_int_equal(tc_spki_sha256_hex(fx->ca.cert, hex), 0);
    hex_to_pin(hex, pin, sizeof(pin));
    fetch(fx, httpsd_port(fx->s), &q, &x);
    assert_int_equal(x.rc, CURLE_SSL_PINNEDPUBKEYNOTMATCH);
    xfer_free(&x);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_get_and_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_path_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_artifact_changes_etag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsatisfiable_and_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_if_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_in_range_and_later_gets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_splice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_wrong_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_untrusted_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_intermediate_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spki_pin, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
