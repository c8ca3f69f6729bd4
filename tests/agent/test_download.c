/*
 * The HTTPS downloader (agent/download.c) against a real TLS server
 * (tests/common/httpsd.c) with a CA -> server chain made at test time:
 * dropped connections at many byte offsets, stalls, wrong lengths, an
 * artifact changed between and within responses, error statuses, servers
 * without ranges, bad certificates, the CA pin, bad images, and a power cut
 * at every flash operation of a download followed by its resume.
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
#include <unistd.h>

#include <cmocka.h>

#include "../common/httpsd.h"
#include "../common/imgbuild.h"
#include "../common/testdev.h"
#include "../common/testca.h"
#include "airlock/boot.h"
#include "airlock/crypto_openssl.h"
#include "airlock/download.h"
#include "airlock/ota.h"
#include "airlock/sim_flash.h"

#define SEC TD_SECTOR
#define SLOT_SECTORS 64u

static tu_key_t key;       /* trusted: the shared Ed25519 vector key */
static tu_key_t other_key; /* not trusted */

/* One CA and server for most tests. */
static tc_pem_t ca, leaf;
static char ca_file[256];
static char tmpdir[128];
static httpsd_t *srv;
static char url[128];

/* ---- a device ----------------------------------------------------------------- */

static void dev_open(td_dev_t *d, const airlock_engine_t *engine)
{
    assert_int_equal(td_open(d, engine, &airlock_crypto_openssl, &key.pub, 8, SLOT_SECTORS), 0);
}

static void dev_close(td_dev_t *d)
{
    if (airlock_sim_flash_violations(d->sim, 0) != 0) {
        fail_msg("NOR violation: %s", airlock_sim_flash_violation_str(d->sim));
    }
    td_close(d);
}

/* ---- images ------------------------------------------------------------------- */

struct img {
    uint8_t *p;
    size_t len;
};

static struct img mkimg(uint8_t major, uint8_t minor, uint32_t len, uint32_t seed,
                        uint32_t sec_cnt, const tu_key_t *k)
{
    struct img im;
    im.p = td_image(major, minor, len, seed, 1, sec_cnt, k, &im.len);
    assert_non_null(im.p);
    return im;
}

static void put_primary(td_dev_t *d, const struct img *im)
{
    assert_int_equal(td_put_primary(d, im->p, im->len), 0);
}

static void serve(httpsd_t *s, const struct img *im)
{
    assert_int_equal(httpsd_set_artifact(s, im->p, im->len), 0);
    assert_int_equal(httpsd_set_fault(s, NULL), 0);
    httpsd_reset_stats(s);
}

static void add_fault(httpsd_t *s, httpsd_fault_t f)
{
    assert_int_equal(httpsd_add_fault(s, &f), 0);
}

/* ---- the client ------------------------------------------------------------------ */

struct client {
    airlock_dl_opts_t o;
    unsigned waits;
    unsigned waited_ms[16];
    const struct img *swap_to; /* on the first wait: the server's artifact becomes this */
    uint64_t cancel_after;     /* progress: cancel once this many bytes are in */
    bool cancel_now;
    bool verbose;
    bool no_pending; /* leave the verified download unrequested */
};

static int on_wait(void *ctx, unsigned ms)
{
    struct client *c = ctx;
    if (c->waits < 16) {
        c->waited_ms[c->waits] = ms;
    }
    c->waits++;
    if (c->swap_to && c->waits == 1) {
        assert_int_equal(httpsd_set_artifact(srv, c->swap_to->p, c->swap_to->len), 0);
    }
    return 0; /* never really sleep: the tests would only get slower */
}

static void on_progress(void *ctx, const airlock_dl_progress_t *p)
{
    struct client *c = ctx;
    if (c->cancel_after && p->done >= c->cancel_after) {
        c->cancel_now = true;
    }
}

static int on_cancelled(void *ctx)
{
    return ((struct client *)ctx)->cancel_now;
}

static void on_log(void *ctx, const char *msg)
{
    if (((struct client *)ctx)->verbose) {
        print_message("  agent: %s\n", msg);
    }
}

static void client_init(struct client *c, const char *u)
{
    memset(c, 0, sizeof(*c));
    c->o.url = u;
    c->o.ca_file = ca_file;
    c->o.connect_timeout_ms = 5000;
    c->o.low_speed_limit = 1;
    c->o.low_speed_time_s = 5;
    c->o.max_attempts = 4;
    c->o.backoff_ms = 10;
    c->o.backoff_max_ms = 80;
    c->o.seed = 42;
    c->o.wait = on_wait;
    c->o.progress = on_progress;
    c->o.cancelled = on_cancelled;
    c->o.log = on_log;
    c->o.ctx = c;
    c->verbose = getenv("AIRLOCK_TEST_VERBOSE") != NULL;
}

static int download(td_dev_t *d, struct client *c, airlock_dl_result_t *r)
{
    airlock_ota_t ota; /* uninitialised on purpose: airlock_download must not need it zeroed */
    int rc = airlock_download(&ota, &d->cfg, &c->o, r);
    if (rc == 0 && !c->no_pending) {
        assert_int_equal(airlock_ota_set_pending(&ota, false), 0);
    }
    if (rc == 0) {
        airlock_ota_abort(&ota); /* done with the verified download */
    }
    return rc;
}

static void expect_ok(td_dev_t *d, struct client *c, airlock_dl_result_t *r,
                      const struct img *im)
{
    int rc = download(d, c, r);
    if (rc != 0) {
        fail_msg("download failed: %s: %s", airlock_errname(rc), r->msg);
    }
    assert_int_equal(r->image_len, im->len);
    assert_memory_equal(td_area_bytes(d, AIRLOCK_AREA_SECONDARY) + d->stage, im->p, im->len);
}

static void log_entry(httpsd_t *s, unsigned i, httpsd_req_t *out)
{
    httpsd_stats_t st;
    httpsd_stats(s, &st);
    assert_true(i < st.nlog);
    *out = st.log[i];
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_plain_download(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    dev_open(&d, &airlock_engine_swap_2n);
    struct img v10 = mkimg(1, 0, 30000, 1, 1, &key);
    struct img v11 = mkimg(1, 1, 150001, 2, 1, &key);
    put_primary(&d, &v10);
    serve(srv, &v11);
    client_init(&c, url);
    expect_ok(&d, &c, &r, &v11);
    assert_int_equal(r.requests, 2); /* HEAD + GET */
    assert_int_equal(r.retries, 0);
    assert_int_equal(r.resumed_from, 0);
    assert_int_equal(r.received, v11.len);
    assert_int_equal(r.http_status, 200);
    char etag[24];
    httpsd_etag(srv, etag);
    assert_string_equal(r.validator, etag);
    httpsd_req_t e;
    log_entry(srv, 0, &e);
    assert_string_equal(e.method, "HEAD");
    log_entry(srv, 1, &e);
    assert_string_equal(e.method, "GET");
    assert_false(e.has_range);
    /* the same download again: resumes at the end, nothing re-sent */
    httpsd_reset_stats(srv);
    expect_ok(&d, &c, &r, &v11);
    assert_int_equal(r.resumed_from, v11.len);
    assert_int_equal(r.received, 0);
    httpsd_stats_t st;
    httpsd_stats(srv, &st);
    assert_int_equal(st.gets, 0);
    /* and the bootloader installs it */
    airlock_boot_t b;
    airlock_boot_result_t res;
    assert_int_equal(airlock_boot(&b, &d.cfg, &res), 0);
    assert_int_equal(res.action, AIRLOCK_BOOT_INSTALLED);
    assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), v11.p, v11.len);
    free(v10.p);
    free(v11.p);
    dev_close(&d);
}

/* The connection dies after K body bytes; the retry continues at K with If-Range. */
static void test_drop_at_every_k(void **state)
{
    (void)state;
    struct img v10 = mkimg(1, 0, 20000, 1, 1, &key);
    struct img im = mkimg(1, 1, 70001, 3, 1, &key);
    char etag[24];
    serve(srv, &im);
    httpsd_etag(srv, etag);
    uint64_t ks[64];
    unsigned nk = 0;
    const uint64_t fixed[] = {0, 1, 4, 10, 16, 20, 28, 31, 32, 33, 4095, 4096, 4097, 16383, 16384,
                              16385, 32768, 65536, im.len - 1};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        ks[nk++] = fixed[i];
    }
    for (uint64_t k = 977; k < im.len && nk < 64; k += 2741) {
        ks[nk++] = k;
    }
    for (unsigned i = 0; i < nk; i++) {
        td_dev_t d;
        struct client c;
        airlock_dl_result_t r;
        uint64_t k = ks[i];
        dev_open(&d, &airlock_engine_overwrite);
        put_primary(&d, &v10);
        serve(srv, &im);
        add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_DROP, .first = 1, .count = 1,
                                        .after = k});
        client_init(&c, url);
        expect_ok(&d, &c, &r, &im);
        if (r.retries != 1) {
            fail_msg("drop at %llu: %u retries, expected 1", (unsigned long long)k, r.retries);
        }
        httpsd_stats_t st;
        httpsd_stats(srv, &st);
        assert_int_equal(st.gets, 2);
        assert_int_equal(st.log[1].sent, k);
        const httpsd_req_t *again = &st.log[2];
        if (k == 0) {
            assert_false(again->has_range);
        } else {
            char want[40];
            snprintf(want, sizeof(want), "bytes=%llu-", (unsigned long long)k);
            assert_true(again->has_range);
            assert_string_equal(again->range, want);
            assert_true(again->has_if_range);
            assert_string_equal(again->if_range, etag);
            assert_int_equal(again->status, 206);
            assert_int_equal(again->sent, im.len - k);
        }
        assert_int_equal(r.received, im.len);
        assert_int_equal(c.waits, 1);
        assert_true(c.waited_ms[0] >= 5 && c.waited_ms[0] <= 10); /* backoff 10 ms, jittered */
        dev_close(&d);
    }
    print_message("dropped at %u offsets, every download completed\n", nk);
    free(v10.p);
    free(im.p);
}

/* Every request fails: exponential backoff with jitter, then NETWORK. */
static void test_gives_up_with_backoff(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    struct img im = mkimg(1, 1, 40000, 3, 1, &key);
    dev_open(&d, &airlock_engine_overwrite);
    serve(srv, &im);
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_DROP, .first = 1, .count = 0,
                                    .after = 0});
    client_init(&c, url);
    c.o.max_attempts = 6;
    c.o.backoff_ms = 100;
    c.o.backoff_max_ms = 400;
    assert_int_equal(download(&d, &c, &r), AIRLOCK_ERR_NETWORK);
    assert_non_null(strstr(r.msg, "giving up after 6"));
    assert_int_equal(c.waits, 5);
    /* delays: [50,100], [100,200], [200,400], [200,400], [200,400] */
    const unsigned lo[] = {50, 100, 200, 200, 200}, hi[] = {100, 200, 400, 400, 400};
    bool all_same = true;
    for (unsigned i = 0; i < 5; i++) {
        if (c.waited_ms[i] < lo[i] || c.waited_ms[i] > hi[i]) {
            fail_msg("wait %u: %u ms, expected %u..%u", i, c.waited_ms[i], lo[i], hi[i]);
        }
        all_same &= i < 2 || c.waited_ms[i] == c.waited_ms[2];
    }
    assert_false(all_same); /* jitter */
    free(im.p);
    dev_close(&d);
}

/* A response that stops sending is timed out and continued. */
static void test_stall(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    struct img im = mkimg(1, 1, 90000, 4, 1, &key);
    dev_open(&d, &airlock_engine_overwrite);
    serve(srv, &im);
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_STALL, .first = 1, .count = 1,
                                    .after = 40000, .stall_ms = 4000});
    client_init(&c, url);
    c.o.low_speed_time_s = 1;
    expect_ok(&d, &c, &r, &im);
    assert_int_equal(r.retries, 1);
    httpsd_stats_t st;
    httpsd_stats(srv, &st);
    assert_int_equal(st.gets, 2);
    assert_true(st.log[2].has_range);
    assert_string_equal(st.log[2].range, "bytes=40000-");
    free(im.p);
    dev_close(&d);
}

/* Content-Length too long (then a close) or too short (a clean short body). */
static void test_wrong_content_length(void **state)
{
    (void)state;
    struct img im = mkimg(1, 1, 50000, 5, 1, &key);
    const long deltas[] = {+1, +1000, -1, -30000};
    for (size_t i = 0; i < 4; i++) {
        td_dev_t d;
        struct client c;
        airlock_dl_result_t r;
        dev_open(&d, &airlock_engine_overwrite);
        serve(srv, &im);
        add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_BAD_LENGTH, .first = 1, .count = 1,
                                        .delta = deltas[i]});
        client_init(&c, url);
        expect_ok(&d, &c, &r, &im);
        assert_int_equal(r.retries, 1);
        httpsd_stats_t st;
        httpsd_stats(srv, &st);
        if (deltas[i] < 0) {
            char want[40];
            snprintf(want, sizeof(want), "bytes=%ld-", (long)im.len + deltas[i]);
            assert_string_equal(st.log[2].range, want);
        }
        dev_close(&d);
    }
    free(im.p);
}

/* The artifact changes between two requests: If-Range gets the whole new one. */
static void test_artifact_changed_between_requests(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    struct img v10 = mkimg(1, 0, 20000, 1, 1, &key);
    struct img a = mkimg(1, 1, 80000, 6, 1, &key);
    struct img b = mkimg(1, 2, 60000, 7, 1, &key);
    dev_open(&d, &airlock_engine_swap_2n);
    put_primary(&d, &v10);
    serve(srv, &a);
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_DROP, .first = 1, .count = 1,
                                    .after = 50000});
    client_init(&c, url);
    c.swap_to = &b;
    expect_ok(&d, &c, &r, &b);
    assert_int_equal(r.restarts, 1);
    httpsd_stats_t st;
    httpsd_stats(srv, &st);
    /* HEAD, GET (dropped), GET bytes=50000- with the old ETag -> 200 whole */
    assert_int_equal(st.gets, 2);
    assert_true(st.log[2].has_if_range);
    assert_int_equal(st.log[2].status, 200);
    char etag[24];
    httpsd_etag(srv, etag);
    assert_string_equal(r.validator, etag);
    free(v10.p);
    free(a.p);
    free(b.p);
    dev_close(&d);
}

/* A broken server splices the new artifact into a response: hash, then again whole. */
static void test_artifact_spliced_mid_response(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    struct img a = mkimg(1, 1, 80000, 6, 1, &key);
    struct img b = mkimg(1, 1, 80000, 8, 1, &key); /* same length and version, other bytes */
    dev_open(&d, &airlock_engine_overwrite);
    serve(srv, &a);
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_CHANGE, .first = 1, .count = 1,
                                    .after = 40000, .new_data = b.p, .new_len = b.len,
                                    .splice = true});
    client_init(&c, url);
    expect_ok(&d, &c, &r, &b);
    assert_int_equal(r.restarts, 1);
    httpsd_stats_t st;
    httpsd_stats(srv, &st);
    assert_int_equal(st.heads, 2); /* the first look-up, and the one that saw the change */
    assert_int_equal(st.gets, 2);
    free(a.p);
    free(b.p);
    dev_close(&d);
}

/* 503 with Retry-After is waited out; 404 is final. */
static void test_error_status(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    struct img im = mkimg(1, 1, 30000, 9, 1, &key);
    dev_open(&d, &airlock_engine_overwrite);
    serve(srv, &im);
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_STATUS, .first = 1, .count = 2,
                                    .status = 503, .retry_after = 3});
    client_init(&c, url);
    expect_ok(&d, &c, &r, &im);
    assert_int_equal(r.retries, 2);
    assert_int_equal(c.waits, 2);
    assert_true(c.waited_ms[0] >= 3000 && c.waited_ms[1] >= 3000);
    dev_close(&d);

    dev_open(&d, &airlock_engine_overwrite);
    serve(srv, &im);
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_STATUS, .first = 1, .count = 0,
                                    .status = 404});
    client_init(&c, url);
    assert_int_equal(download(&d, &c, &r), AIRLOCK_ERR_HTTP);
    assert_int_equal(r.http_status, 404);
    assert_int_equal(r.retries, 0);
    assert_non_null(strstr(r.msg, "404"));
    assert_int_equal(r.written, 0); /* an error page is never written to the slot */
    dev_close(&d);

    /* a path the server does not have: the HEAD says 404 */
    char bad[160];
    snprintf(bad, sizeof(bad), "https://localhost:%u/nope.bin", (unsigned)httpsd_port(srv));
    dev_open(&d, &airlock_engine_overwrite);
    client_init(&c, bad);
    assert_int_equal(download(&d, &c, &r), AIRLOCK_ERR_HTTP);
    assert_int_equal(r.requests, 1);
    /* refused before anything began: the caller's ota is not touched, whatever it holds */
    airlock_ota_t junk;
    memset(&junk, 0x30, sizeof(junk));
    assert_int_equal(airlock_download(&junk, &d.cfg, &c.o, &r), AIRLOCK_ERR_HTTP);
    const uint8_t *jb = (const uint8_t *)&junk;
    for (size_t i = 0; i < sizeof(junk); i++) {
        assert_int_equal(jb[i], 0x30);
    }
    dev_close(&d);
    free(im.p);
}

/* A server without range support: the resend of the same artifact is skipped over. */
static void test_server_ignores_ranges(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    struct img im = mkimg(1, 1, 70000, 10, 1, &key);
    dev_open(&d, &airlock_engine_overwrite);
    serve(srv, &im);
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_DROP, .first = 1, .count = 1,
                                    .after = 33333});
    add_fault(srv, (httpsd_fault_t){.kind = HTTPSD_FAULT_IGNORE_RANGE, .first = 2, .count = 0});
    client_init(&c, url);
    expect_ok(&d, &c, &r, &im);
    assert_int_equal(r.restarts, 0);
    assert_int_equal(r.received, 33333 + im.len);
    assert_int_equal(r.written, im.len); /* nothing written twice */
    free(im.p);
    dev_close(&d);
}

/* Bad images: refused with their own error; the primary untouched. */
static void expect_refused(const struct img *im, const struct img *running, int err,
                           uint64_t max_received, const char *what)
{
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    dev_open(&d, &airlock_engine_swap_2n);
    put_primary(&d, running);
    const airlock_area_t *p = &d.layout.area[AIRLOCK_AREA_PRIMARY];
    uint8_t *before = malloc(p->size);
    assert_non_null(before);
    memcpy(before, td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), p->size);
    serve(srv, im);
    client_init(&c, url);
    int rc = download(&d, &c, &r);
    if (rc != err) {
        fail_msg("%s: download returned %s (%s), expected %s", what, airlock_errname(rc), r.msg,
                 airlock_errname(err));
    }
    if (r.received > max_received) {
        fail_msg("%s: %llu bytes received before the refusal, expected at most %llu", what,
                 (unsigned long long)r.received, (unsigned long long)max_received);
    }
    assert_true(strlen(r.msg) > 10);
    assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), before, p->size);
    airlock_ota_status_t st;
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_false(st.pending);
    free(before);
    dev_close(&d);
}

static void test_bad_images(void **state)
{
    (void)state;
    struct img v12 = mkimg(1, 2, 20000, 1, 5, &key);
    struct img good = mkimg(1, 3, 200000, 11, 5, &key);
    const uint64_t early = 64 * 1024; /* refused within the first few TLS records */
    struct img m = {malloc(good.len), good.len};
    assert_non_null(m.p);
    uint32_t hdr = 32, img_size = (uint32_t)good.len - 32; /* refined below */
    (void)img_size;
    /* the image's layout: payload, protected TLVs (SEC_CNT), unprotected TLVs */
    uint32_t psize = good.p[12] | good.p[13] << 8 | good.p[14] << 16 | (uint32_t)good.p[15] << 24;
    uint32_t prot_at = hdr + psize;

    memcpy(m.p, good.p, good.len);
    m.p[hdr + 1000] ^= 0x01;
    expect_refused(&m, &v12, AIRLOCK_ERR_HASH_MISMATCH, 2 * good.len, "flipped payload byte");

    memcpy(m.p, good.p, good.len);
    m.p[prot_at + 4 + 4 + 3] ^= 0x40; /* SEC_CNT value's top byte: a higher counter */
    expect_refused(&m, &v12, AIRLOCK_ERR_HASH_MISMATCH, 2 * good.len, "flipped protected TLV");

    memcpy(m.p, good.p, good.len);
    m.p[good.len - 5] ^= 0x01; /* inside the signature */
    expect_refused(&m, &v12, AIRLOCK_ERR_BAD_SIGNATURE, 2 * good.len, "flipped signature");

    struct img trunc = {good.p, good.len - 100};
    expect_refused(&trunc, &v12, AIRLOCK_ERR_INCOMPLETE, 2 * good.len, "truncated");

    struct img big = mkimg(1, 3, SLOT_SECTORS * SEC, 12, 5, &key);
    expect_refused(&big, &v12, AIRLOCK_ERR_TOO_BIG, early, "larger than the slot");

    struct img old = mkimg(1, 1, 200000, 13, 5, &key);
    expect_refused(&old, &v12, AIRLOCK_ERR_DOWNGRADE, early, "downgrade");

    struct img lowcnt = mkimg(1, 3, 200000, 14, 4, &key);
    expect_refused(&lowcnt, &v12, AIRLOCK_ERR_SEC_CNT_ROLLBACK, 2 * good.len, "security counter");

    struct img wrongkey = mkimg(1, 3, 200000, 15, 5, &other_key);
    expect_refused(&wrongkey, &v12, AIRLOCK_ERR_UNKNOWN_KEY, 2 * good.len, "wrong key");

    memcpy(m.p, good.p, good.len);
    m.p[0] ^= 0xff;
    expect_refused(&m, &v12, AIRLOCK_ERR_BAD_MAGIC, early, "bad magic");

    free(m.p);
    free(big.p);
    free(old.p);
    free(lowcnt.p);
    free(wrongkey.p);
    free(v12.p);
    free(good.p);
}

/* A TLS server with this leaf; the client trusts ca_file (and maybe a pin). */
static int tls_download(const tc_pem_t *server_leaf, const char *pin, airlock_dl_result_t *r)
{
    httpsd_t *s;
    httpsd_opts_t so = {.key_pem = server_leaf->key, .cert_pem = server_leaf->cert};
    assert_int_equal(httpsd_start(&so, &s), 0);
    struct img im = mkimg(1, 1, 20000, 16, 1, &key);
    assert_int_equal(httpsd_set_artifact(s, im.p, im.len), 0);
    char u[128];
    snprintf(u, sizeof(u), "https://localhost:%u/artifact.bin", (unsigned)httpsd_port(s));
    td_dev_t d;
    struct client c;
    dev_open(&d, &airlock_engine_overwrite);
    client_init(&c, u);
    c.o.ca_pin = pin;
    int rc = download(&d, &c, r);
    httpsd_stats_t st;
    httpsd_stats(s, &st);
    if (rc) {
        if (st.requests != 0) {
            fail_msg("%s: the server got %u requests: %s", airlock_errname(rc), st.requests,
                     r->msg);
        }
        if (r->retries != 0) {
            fail_msg("%s retried %u times: %s", airlock_errname(rc), r->retries, r->msg);
        }
    }
    httpsd_stop(s);
    free(im.p);
    dev_close(&d);
    return rc;
}

static void test_certificates(void **state)
{
    (void)state;
    airlock_dl_result_t r;
    tc_pem_t bad, other_ca, stranger, sub, chained;
    /* wrong host name */
    assert_int_equal(tc_make_leaf(&ca, "wrong.example", "wrong.example", -3600, 86400, &bad), 0);
    assert_int_equal(tls_download(&bad, NULL, &r), AIRLOCK_ERR_TLS);
    print_message("wrong host: %s\n", r.msg);
    tc_pem_free(&bad);
    /* expired */
    assert_int_equal(tc_make_leaf(&ca, "localhost", "localhost,127.0.0.1", -2 * 86400, -86400,
                                  &bad),
                     0);
    assert_int_equal(tls_download(&bad, NULL, &r), AIRLOCK_ERR_TLS);
    print_message("expired: %s\n", r.msg);
    tc_pem_free(&bad);
    /* not yet valid */
    assert_int_equal(tc_make_leaf(&ca, "localhost", "localhost,127.0.0.1", 86400, 2 * 86400,
                                  &bad),
                     0);
    assert_int_equal(tls_download(&bad, NULL, &r), AIRLOCK_ERR_TLS);
    tc_pem_free(&bad);
    /* signed by a CA the client does not trust */
    assert_int_equal(tc_make_ca("Stranger CA", &other_ca), 0);
    assert_int_equal(tc_make_leaf(&other_ca, "localhost", "localhost,127.0.0.1", -3600, 86400,
                                  &stranger),
                     0);
    assert_int_equal(tls_download(&stranger, NULL, &r), AIRLOCK_ERR_TLS);
    print_message("untrusted CA: %s\n", r.msg);

    /* pins: the CA's key passes, the leaf's key and another CA's key do not */
    char ca_pin[65], leaf_pin[65], other_pin[65];
    assert_int_equal(tc_spki_sha256_hex(ca.cert, ca_pin), 0);
    assert_int_equal(tc_spki_sha256_hex(leaf.cert, leaf_pin), 0);
    assert_int_equal(tc_spki_sha256_hex(other_ca.cert, other_pin), 0);
    assert_int_equal(tls_download(&leaf, ca_pin, &r), 0);
    char prefixed[80];
    snprintf(prefixed, sizeof(prefixed), "sha256:%s", ca_pin);
    assert_int_equal(tls_download(&leaf, prefixed, &r), 0);
    assert_int_equal(tls_download(&leaf, leaf_pin, &r), AIRLOCK_ERR_TLS);
    assert_non_null(strstr(r.msg, "pinned"));
    assert_int_equal(tls_download(&leaf, other_pin, &r), AIRLOCK_ERR_TLS);
    assert_int_equal(tls_download(&leaf, "12ab", &r), AIRLOCK_ERR_INVAL);

    /* root -> intermediate -> leaf: trusted through the root; either CA may be pinned */
    assert_int_equal(tc_make_sub_ca(&ca, "Test Intermediate", &sub), 0);
    assert_int_equal(tc_make_leaf(&sub, "localhost", "localhost,127.0.0.1", -3600, 86400,
                                  &chained),
                     0);
    char sub_pin[65];
    assert_int_equal(tc_spki_sha256_hex(sub.cert, sub_pin), 0);
    assert_int_equal(tls_download(&chained, NULL, &r), 0);
    assert_int_equal(tls_download(&chained, sub_pin, &r), 0);
    assert_int_equal(tls_download(&chained, ca_pin, &r), 0);
    assert_int_equal(tls_download(&chained, other_pin, &r), AIRLOCK_ERR_TLS);

    tc_pem_free(&other_ca);
    tc_pem_free(&stranger);
    tc_pem_free(&sub);
    tc_pem_free(&chained);
}

static void test_options(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    char u[128];
    dev_open(&d, &airlock_engine_overwrite);
    snprintf(u, sizeof(u), "http://localhost:%u/artifact.bin", (unsigned)httpsd_port(srv));
    client_init(&c, u);
    assert_int_equal(download(&d, &c, &r), AIRLOCK_ERR_INVAL);
    assert_non_null(strstr(r.msg, "https"));
    client_init(&c, "ftp://localhost/x");
    assert_int_equal(download(&d, &c, &r), AIRLOCK_ERR_INVAL);
    /* nobody listens: connection refused, retried, then NETWORK */
    client_init(&c, "https://127.0.0.1:1/artifact.bin");
    assert_int_equal(download(&d, &c, &r), AIRLOCK_ERR_NETWORK);
    assert_int_equal(r.requests, 4);
    dev_close(&d);
}

/* Cancelled mid-way; a later call resumes from what reached the flash. */
static void test_cancel_then_resume(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    struct img im = mkimg(1, 1, 200000, 17, 1, &key);
    dev_open(&d, &airlock_engine_overwrite);
    serve(srv, &im);
    httpsd_set_rate(srv, 4000000); /* a few chunks per progress callback */
    client_init(&c, url);
    c.cancel_after = 100000;
    assert_int_equal(download(&d, &c, &r), AIRLOCK_ERR_CANCELLED);
    httpsd_set_rate(srv, 0);
    uint64_t got = r.written;
    assert_true(got >= 100000 && got < im.len);
    client_init(&c, url);
    expect_ok(&d, &c, &r, &im);
    assert_true(r.resumed_from > 0);
    assert_true(r.resumed_from <= got);
    assert_int_equal(r.received, im.len - r.resumed_from);
    free(im.p);
    dev_close(&d);
}

/* Power cut at every flash operation of a download, then the download again. */
static void test_powercut_every_op(void **state)
{
    (void)state;
    td_dev_t d;
    struct client c;
    airlock_dl_result_t r;
    airlock_sim_flash_snapshot_t *snap;
    struct img v10 = mkimg(1, 0, 20000, 1, 1, &key);
    struct img im = mkimg(1, 1, 23001, 18, 1, &key);
    dev_open(&d, &airlock_engine_swap_2n);
    put_primary(&d, &v10);
    serve(srv, &im);
    assert_int_equal(airlock_sim_flash_save(d.sim, &snap), 0);
    client_init(&c, url);
    c.no_pending = true; /* count the download's operations only */
    airlock_sim_flash_reset_counts(d.sim);
    expect_ok(&d, &c, &r, &im);
    uint64_t nops = airlock_sim_flash_ops(d.sim);
    uint32_t cmp = (uint32_t)im.len;
    uint8_t *ref = malloc(cmp);
    assert_non_null(ref);
    memcpy(ref, td_area_bytes(&d, AIRLOCK_AREA_SECONDARY) + d.stage, cmp);
    unsigned resumed = 0;
    for (uint64_t k = 0; k < nops; k++) {
        assert_int_equal(airlock_sim_flash_restore(d.sim, snap), 0);
        airlock_sim_flash_power_on(d.sim);
        airlock_sim_flash_reset_counts(d.sim);
        airlock_sim_flash_seed(d.sim, 1000 + k);
        airlock_sim_flash_cut_at(d.sim, k);
        client_init(&c, url);
        c.no_pending = true;
        int rc = download(&d, &c, &r);
        if (rc != AIRLOCK_ERR_IO) {
            fail_msg("cut at op %llu: %s (%s), expected IO", (unsigned long long)k,
                     airlock_errname(rc), r.msg);
        }
        assert_int_equal(r.retries, 0); /* flash errors are not retried */
        airlock_sim_flash_cut_cancel(d.sim);
        airlock_sim_flash_power_on(d.sim);
        client_init(&c, url);
        rc = download(&d, &c, &r);
        if (rc != 0) {
            fail_msg("cut at op %llu (%s): resumed download failed: %s: %s",
                     (unsigned long long)k, airlock_sim_flash_cut_str(d.sim), airlock_errname(rc),
                     r.msg);
        }
        resumed += r.resumed_from > 0;
        if (memcmp(td_area_bytes(&d, AIRLOCK_AREA_SECONDARY) + d.stage, ref, cmp) != 0) {
            fail_msg("cut at op %llu: slot differs from the uninterrupted download",
                     (unsigned long long)k);
        }
        if (airlock_sim_flash_violations(d.sim, 0) != 0) {
            fail_msg("cut at op %llu: NOR violation %s", (unsigned long long)k,
                     airlock_sim_flash_violation_str(d.sim));
        }
        airlock_boot_t b;
        airlock_boot_result_t res;
        assert_int_equal(airlock_boot(&b, &d.cfg, &res), 0);
        assert_int_equal(res.action, AIRLOCK_BOOT_INSTALLED);
        assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), im.p, im.len);
    }
    print_message("%llu cut points, %u resumed from the middle\n", (unsigned long long)nops,
                  resumed);
    assert_true(nops > 10);
    assert_true(resumed > 0);
    free(ref);
    airlock_sim_flash_snapshot_free(snap);
    free(v10.p);
    free(im.p);
    dev_close(&d);
}

/* ---- fixture ----------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (tu_key_load(&key, AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ed25519.pem") != 0 ||
        tu_key_new(&other_key) != 0) {
        return -1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/airlock-dl-XXXXXX");
    if (!mkdtemp(tmpdir) || tc_make_ca("airlock Test CA", &ca) != 0 ||
        tc_make_leaf(&ca, "localhost", "localhost,127.0.0.1", -3600, 86400, &leaf) != 0) {
        return -1;
    }
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", tmpdir);
    if (tc_write_file(ca_file, ca.cert) != 0) {
        return -1;
    }
    httpsd_opts_t so = {.key_pem = leaf.key, .cert_pem = leaf.cert};
    if (httpsd_start(&so, &srv) != 0) {
        return -1;
    }
    snprintf(url, sizeof(url), "https://localhost:%u/artifact.bin", (unsigned)httpsd_port(srv));
    return airlock_download_global_init();
}

static int teardown(void **state)
{
    (void)state;
    httpsd_stop(srv);
    airlock_download_global_cleanup();
    unlink(ca_file);
    rmdir(tmpdir);
    tc_pem_free(&ca);
    tc_pem_free(&leaf);
    tu_key_free(&key);
    tu_key_free(&other_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_download),
        cmocka_unit_test(test_drop_at_every_k),
        cmocka_unit_test(test_gives_up_with_backoff),
        cmocka_unit_test(test_stall),
        cmocka_unit_test(test_wrong_content_length),
        cmocka_unit_test(test_artifact_changed_between_requests),
        cmocka_unit_test(test_artifact_spliced_mid_response),
        cmocka_unit_test(test_error_status),
        cmocka_unit_test(test_server_ignores_ranges),
        cmocka_unit_test(test_bad_images),
        cmocka_unit_test(test_certificates),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_cancel_then_resume),
        cmocka_unit_test(test_powercut_every_op),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
