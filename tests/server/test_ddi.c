/*
 * The device API (server/ddi.c) and campaigns (server/campaign.c) through
 * real HTTPS requests against a running server: authentication (401, 403,
 * gateway registration), the polling env.base, deploymentBase, feedback (and
 * the bodies real clients send), configData, cancelAction, artifact
 * download with ranges, waves and the failure threshold, bad input, and
 * load shedding.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "srvtest.h"

static st_env_t env;
static const char *gateway = "gw-secret-token-0123456789";

static st_resp_t req(const char *method, const char *path, const char *auth, const char *body,
                     const char *h1)
{
    st_resp_t r = st_req(&env, method, path, auth, body, h1, NULL);
    if (r.curl_code) {
        fail_msg("%s %s: %s", method, path, curl_easy_strerror((CURLcode)r.curl_code));
    }
    return r;
}

static st_resp_t req2(const char *method, const char *path, const char *auth, const char *body,
                      const char *h1, const char *h2)
{
    st_resp_t r = st_req(&env, method, path, auth, body, h1, h2);
    if (r.curl_code) {
        fail_msg("%s %s: %s", method, path, curl_easy_strerror((CURLcode)r.curl_code));
    }
    return r;
}

static json_t *body_json(const st_resp_t *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, &e);
    if (!j) {
        fail_msg("not JSON (%s): %.200s", e.text, r->body ? r->body : "");
    }
    return j;
}

static void expect_status(st_resp_t *r, long status, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: HTTP %ld, expected %ld: %.300s", what, r->status, status,
                 r->body ? r->body : "");
    }
}

/* ---- fleet set-up ------------------------------------------------------------------ */

static int64_t add_device(const char *cid, const char *token)
{
    int64_t id = st_add_device(&env, cid, token, NULL);
    assert_true(id > 0);
    return id;
}

static void target(const char *token, char *out)
{
    sprintf(out, "TargetToken %s", token);
}

static int64_t add_artifact(const char *name, const char *version, const uint8_t *data,
                            size_t len)
{
    int64_t id = st_add_artifact(&env, name, version, data, len);
    assert_true(id > 0);
    return id;
}

static int64_t add_group(const char *name, const int64_t *devs, size_t n)
{
    int64_t id = st_add_group(&env, name, devs, n);
    assert_true(id > 0);
    return id;
}

static store_campaign_t campaign(const char *name, int64_t art, int64_t group,
                                 const unsigned *waves, unsigned nwaves, unsigned fail_pct)
{
    store_campaign_t c;
    int64_t id = st_add_campaign(&env, name, art, group, waves, nwaves, fail_pct);
    assert_true(id > 0);
    assert_int_equal(env.srv.store->ops->campaign_get(env.srv.store, id, &c), STORE_OK);
    return c;
}

/* The deploymentBase path the poll offers (without the env.base URL), or "" if none. */
static void poll_link(const char *cid, const char *auth, const char *rel, char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof(path), "/DEFAULT/controller/v1/%s", cid);
    st_resp_t r = req("GET", path, auth, NULL, NULL);
    expect_status(&r, 200, "poll");
    json_t *j = body_json(&r);
    const char *href = json_string_value(json_object_get(json_object_get(json_object_get(j, "_links"), rel), "href"));
    out[0] = '\0';
    if (href) {
        assert_true(strncmp(href, env.base, strlen(env.base)) == 0);
        snprintf(out, cap, "%s", href + strlen(env.base));
    }
    json_decref(j);
    st_resp_free(&r);
}

static int last_state(void *ctx, const store_action_t *act)
{
    *(int *)ctx = act->state;
    return 0;
}

/* State of the device's action in the campaign (0 if none). */
static int action_state(int64_t device, int64_t campaign_id)
{
    int state = 0;
    assert_int_equal(env.srv.store->ops->action_list(env.srv.store, campaign_id, device, last_state, &state),
                     STORE_OK);
    return state;
}

static void send_feedback(const char *fb_path, const char *auth, const char *execution,
                          const char *finished, long want)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"id\":\"1\",\"time\":\"20261125T120000\",\"status\":{\"execution\":\"%s\","
             "\"result\":{\"finished\":\"%s\",\"progress\":{\"cnt\":1,\"of\":1}},"
             "\"details\":[\"step\"]}}",
             execution, finished);
    st_resp_t r = req("POST", fb_path, auth, body, NULL);
    expect_status(&r, want, "feedback");
    st_resp_free(&r);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_auth(void **state)
{
    (void)state;
    char a1[80], a2[80];
    add_device("auth-a", "token-a-0123456789");
    add_device("auth-b", "token-b-0123456789");
    target("token-a-0123456789", a1);
    target("token-b-0123456789", a2);
    st_resp_t r = req("GET", "/DEFAULT/controller/v1/auth-a", NULL, NULL, NULL);
    expect_status(&r, 401, "no token");
    st_resp_free(&r);
    r = req("GET", "/DEFAULT/controller/v1/auth-a", "TargetToken nope", NULL, NULL);
    expect_status(&r, 401, "unknown token");
    st_resp_free(&r);
    r = req("GET", "/DEFAULT/controller/v1/auth-a", a2, NULL, NULL);
    expect_status(&r, 403, "another device's token");
    st_resp_free(&r);
    r = req("GET", "/DEFAULT/controller/v1/auth-a", a1, NULL, NULL);
    expect_status(&r, 200, "own token");
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(j, "config"), "polling"), "sleep")),
                        env.srv.cfg.poll_interval);
    /* no attributes yet: the server asks for configData */
    assert_non_null(json_object_get(json_object_get(j, "_links"), "configData"));
    json_decref(j);
    st_resp_free(&r);
    r = req("GET", "/OTHER/controller/v1/auth-a", a1, NULL, NULL);
    expect_status(&r, 404, "another tenant");
    st_resp_free(&r);
    r = req("GET", "/DEFAULT/controller/v1/bad%20id", a1, NULL, NULL);
    expect_status(&r, 400, "malformed controllerId");
    st_resp_free(&r);
    /* a gateway token registers a new device on first contact */
    char gw[80];
    snprintf(gw, sizeof(gw), "GatewayToken %s", gateway);
    r = req("GET", "/DEFAULT/controller/v1/newcomer-1", gw, NULL, NULL);
    expect_status(&r, 200, "gateway registration");
    st_resp_free(&r);
    store_device_t d;
    srv_flush_seen(&env.srv); /* check-ins reach the store once a second */
    assert_int_equal(env.srv.store->ops->device_by_controller(env.srv.store, "newcomer-1", &d), STORE_OK);
    assert_true(d.polls >= 1);
    assert_true(d.last_seen > 0);
    store_device_clear(&d);
    r = req("GET", "/DEFAULT/controller/v1/newcomer-2", "GatewayToken wrong", NULL, NULL);
    expect_status(&r, 401, "bad gateway token");
    st_resp_free(&r);
    assert_int_equal(env.srv.store->ops->device_by_controller(env.srv.store, "newcomer-2", &d),
                     STORE_NOT_FOUND);
}

static void test_config_data(void **state)
{
    (void)state;
    char a[80], link[256];
    add_device("cfg-1", "token-cfg-0123456789");
    target("token-cfg-0123456789", a);
    /* the shape a real client sends, with Expect: 100-continue */
    const char *body = "{ \"id\": \"\", \"time\": \"20261125T192408\", \"status\": { \"result\": { "
                       "\"finished\": \"success\" }, \"execution\": \"closed\", \"details\": [ "
                       "\"\" ] }, \"data\": { \"client\": \"swupdate\", \"version\": \"1.4.0\" } }";
    st_resp_t r = req("PUT", "/DEFAULT/controller/v1/cfg-1/configData", a, body,
                        "Expect: 100-continue");
    expect_status(&r, 200, "configData");
    st_resp_free(&r);
    store_device_t d;
    assert_int_equal(env.srv.store->ops->device_by_controller(env.srv.store, "cfg-1", &d), STORE_OK);
    assert_string_equal(d.version, "1.4.0");
    assert_non_null(strstr(d.attributes, "\"client\":\"swupdate\""));
    store_device_clear(&d);
    poll_link("cfg-1", a, "configData", link, sizeof(link));
    assert_string_equal(link, ""); /* attributes known: no more asking */
    /* merge keeps, remove drops */
    r = req("PUT", "/DEFAULT/controller/v1/cfg-1/configData", a,
            "{\"data\":{\"hw\":\"rev2\"},\"mode\":\"merge\"}", NULL);
    expect_status(&r, 200, "merge");
    st_resp_free(&r);
    r = req("PUT", "/DEFAULT/controller/v1/cfg-1/configData", a,
            "{\"data\":{\"client\":\"\"},\"mode\":\"remove\"}", NULL);
    expect_status(&r, 200, "remove");
    st_resp_free(&r);
    assert_int_equal(env.srv.store->ops->device_by_controller(env.srv.store, "cfg-1", &d), STORE_OK);
    assert_non_null(strstr(d.attributes, "\"hw\":\"rev2\""));
    assert_null(strstr(d.attributes, "client"));
    store_device_clear(&d);
    /* SQL in a value is data: stored verbatim, the database unharmed */
    r = req("PUT", "/DEFAULT/controller/v1/cfg-1/configData", a,
            "{\"data\":{\"note\":\"x'); DROP TABLE devices; --\"},\"mode\":\"merge\"}", NULL);
    expect_status(&r, 200, "SQL in a value");
    st_resp_free(&r);
    assert_int_equal(env.srv.store->ops->device_by_controller(env.srv.store, "cfg-1", &d), STORE_OK);
    assert_non_null(strstr(d.attributes, "x'); DROP TABLE devices; --"));
    store_device_clear(&d);
    int64_t ndev = 0;
    assert_int_equal(env.srv.store->ops->device_count(env.srv.store, &ndev), STORE_OK);
    assert_true(ndev >= 1);
    r = req("PUT", "/DEFAULT/controller/v1/cfg-1/configData", a, "{\"data\": 5}", NULL);
    expect_status(&r, 400, "data not an object");
    assert_non_null(strstr(r.body, "data"));
    st_resp_free(&r);
    r = req("PUT", "/DEFAULT/controller/v1/cfg-1/configData", a, "{\"data\": {\"a\": 1},", NULL);
    expect_status(&r, 400, "malformed JSON");
    assert_non_null(strstr(r.body, "line 1"));
    st_resp_free(&r);
}

static void test_deployment_and_download(void **state)
{
    (void)state;
    char a[80], other[80], link[256], path[300];
    int64_t dev = add_device("dl-1", "token-dl-0123456789");
    add_device("dl-2", "token-dl2-0123456789");
    target("token-dl-0123456789", a);
    target("token-dl2-0123456789", other);
    uint8_t data[50000];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7 + 3);
    }
    int64_t art = add_artifact("fw-2.0.bin", "2.0.0", data, sizeof(data));
    int64_t g = add_group("dl", &dev, 1);
    const unsigned w100[] = {100};
    store_campaign_t c = campaign("dl", art, g, w100, 1, 50);
    assert_int_equal(c.state, STORE_CAMP_RUNNING);
    poll_link("dl-1", a, "deploymentBase", link, sizeof(link));
    assert_true(strstr(link, "/DEFAULT/controller/v1/dl-1/deploymentBase/") == link);
    assert_non_null(strstr(link, "?c="));
    /* another device may not read it */
    st_resp_t r = req("GET", link, other, NULL, NULL);
    expect_status(&r, 403, "other device's token on this path");
    st_resp_free(&r);
    r = req("GET", link, a, NULL, NULL);
    expect_status(&r, 200, "deploymentBase");
    json_t *j = body_json(&r);
    assert_true(json_is_string(json_object_get(j, "id")));
    json_t *dep = json_object_get(j, "deployment");
    assert_string_equal(json_string_value(json_object_get(dep, "update")), "forced");
    json_t *chunk = json_array_get(json_object_get(dep, "chunks"), 0);
    assert_string_equal(json_string_value(json_object_get(chunk, "version")), "2.0.0");
    assert_non_null(json_object_get(chunk, "part"));
    assert_non_null(json_object_get(chunk, "name"));
    json_t *art_j = json_array_get(json_object_get(chunk, "artifacts"), 0);
    assert_string_equal(json_string_value(json_object_get(art_j, "filename")), "fw-2.0.bin");
    assert_int_equal(json_integer_value(json_object_get(art_j, "size")), sizeof(data));
    char sha[65];
    srv_sha256_hex(data, sizeof(data), sha);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(art_j, "hashes"), "sha256")), sha);
    assert_non_null(json_object_get(json_object_get(art_j, "hashes"), "sha1"));
    const char *dl = json_string_value(
        json_object_get(json_object_get(json_object_get(art_j, "_links"), "download"), "href"));
    assert_non_null(dl);
    snprintf(path, sizeof(path), "%s", dl + strlen(env.base));
    json_decref(j);
    st_resp_free(&r);

    /* the artifact: whole, HEAD, ranges, If-Range */
    r = req("GET", path, a, NULL, NULL);
    expect_status(&r, 200, "artifact");
    assert_int_equal(r.len, sizeof(data));
    assert_memory_equal(r.body, data, sizeof(data));
    char etag[128];
    snprintf(etag, sizeof(etag), "%s", r.etag);
    assert_true(strlen(etag) > 10);
    st_resp_free(&r);
    r = req("HEAD", path, a, NULL, NULL);
    expect_status(&r, 200, "HEAD artifact");
    assert_int_equal(r.len, 0);
    st_resp_free(&r);
    r = req("GET", path, a, NULL, "Range: bytes=1000-");
    expect_status(&r, 206, "range");
    assert_int_equal(r.len, sizeof(data) - 1000);
    assert_memory_equal(r.body, data + 1000, r.len);
    assert_string_equal(r.content_range, "bytes 1000-49999/50000");
    st_resp_free(&r);
    r = req("GET", path, a, NULL, "Range: bytes=-10");
    expect_status(&r, 206, "suffix range");
    assert_memory_equal(r.body, data + sizeof(data) - 10, 10);
    st_resp_free(&r);
    char ifr[200];
    snprintf(ifr, sizeof(ifr), "If-Range: %s", etag);
    r = req("GET", path, a, NULL, "Range: bytes=60000-");
    expect_status(&r, 416, "unsatisfiable");
    assert_string_equal(r.content_range, "bytes */50000");
    st_resp_free(&r);
    /* If-Range with another ETag: the whole artifact; with its own: the range */
    r = req2("GET", path, a, NULL, "Range: bytes=100-", "If-Range: \"not-the-etag\"");
    expect_status(&r, 200, "If-Range mismatch");
    assert_int_equal(r.len, sizeof(data));
    st_resp_free(&r);
    r = req2("GET", path, a, NULL, "Range: bytes=100-", ifr);
    expect_status(&r, 206, "If-Range match");
    assert_int_equal(r.len, sizeof(data) - 100);
    st_resp_free(&r);
    /* a device without this deployment may not download it */
    char other_path[300];
    snprintf(other_path, sizeof(other_path), "/DEFAULT/controller/v1/dl-2/softwaremodules/%lld/artifacts/fw-2.0.bin",
             (long long)art);
    r = req("GET", other_path, other, NULL, NULL);
    expect_status(&r, 403, "artifact without a deployment");
    st_resp_free(&r);

    /* feedback: proceeding, then closed success (twice: idempotent), then a contradiction */
    char fb[300];
    snprintf(fb, sizeof(fb), "%.*s/feedback", (int)(strchr(link, '?') - link), link);
    send_feedback(fb, a, "proceeding", "none", 200);
    assert_int_equal(action_state(dev, c.id), STORE_ACT_RUNNING);
    send_feedback(fb, a, "closed", "success", 200);
    assert_int_equal(action_state(dev, c.id), STORE_ACT_SUCCESS);
    send_feedback(fb, a, "closed", "success", 200);
    send_feedback(fb, a, "closed", "failure", 410);
    assert_int_equal(action_state(dev, c.id), STORE_ACT_SUCCESS);
    store_device_t d;
    assert_int_equal(env.srv.store->ops->device_by_controller(env.srv.store, "dl-1", &d), STORE_OK);
    assert_string_equal(d.version, "2.0.0");
    store_device_clear(&d);
    store_campaign_t cc;
    assert_int_equal(env.srv.store->ops->campaign_get(env.srv.store, c.id, &cc), STORE_OK);
    assert_int_equal(cc.state, STORE_CAMP_FINISHED);
    poll_link("dl-1", a, "deploymentBase", link, sizeof(link));
    assert_string_equal(link, "");
}

/* Feedback bodies as real clients send them, and bad ones. */
static void test_feedback_bodies(void **state)
{
    (void)state;
    char a[80], link[256], fb[300];
    int64_t dev = add_device("fb-1", "token-fb-0123456789");
    target("token-fb-0123456789", a);
    const uint8_t data[] = "an opaque artifact";
    int64_t art = add_artifact("thing.swu", "1.0.0", data, sizeof(data));
    int64_t g = add_group("fb", &dev, 1);
    const unsigned w100[] = {100};
    store_campaign_t c = campaign("fb", art, g, w100, 1, 50);
    poll_link("fb-1", a, "deploymentBase", link, sizeof(link));
    snprintf(fb, sizeof(fb), "%.*s/feedback", (int)(strchr(link, '?') - link), link);
    /* a raw newline inside a string, cnt > of, a compact time, a numeric id */
    const char *raw = "{ \"id\": 42, \"time\": \"20261125T192412\", \"status\": { \"result\": { "
                      "\"progress\": { \"cnt\": 1, \"of\": 0 }, \"finished\": \"none\" }, "
                      "\"execution\": \"proceeding\", \"details\": [ \"line one\nline two\" ] } }";
    st_resp_t r = req("POST", fb, a, raw, NULL);
    expect_status(&r, 200, "raw newline in details");
    st_resp_free(&r);
    assert_int_equal(action_state(dev, c.id), STORE_ACT_RUNNING);
    r = req("POST", fb, a, "{\"status\":{\"result\":{\"finished\":\"none\"}}}", NULL);
    expect_status(&r, 400, "no execution");
    assert_non_null(strstr(r.body, "execution"));
    st_resp_free(&r);
    r = req("POST", fb, a, "{\"status\":{\"execution\":\"exploded\"}}", NULL);
    expect_status(&r, 400, "unknown execution");
    assert_non_null(strstr(r.body, "exploded"));
    st_resp_free(&r);
    r = req("POST", fb, a, "{\"status\":{\"execution\":\"closed\",\"result\":{\"finished\":\"maybe\"}}}",
            NULL);
    expect_status(&r, 400, "unknown finished");
    st_resp_free(&r);
    r = req("POST", fb, a, "[1,2]", NULL);
    expect_status(&r, 400, "not an object");
    st_resp_free(&r);
    r = req("POST", fb, a, "{\"status\": ", NULL);
    expect_status(&r, 400, "truncated JSON");
    assert_non_null(strstr(r.body, "column"));
    st_resp_free(&r);
    /* a huge body */
    size_t big = SRV_JSON_LIMIT + 10;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    r = req("POST", fb, a, huge, NULL);
    expect_status(&r, 413, "body over the limit");
    st_resp_free(&r);
    free(huge);
    /* a closed/failure with raw characters in its details (unescaped error text) */
    const char *fail_body = "{ \"id\": 42, \"time\": \"20261125T192412\", \"status\": { \"result\": "
                            "{ \"progress\": { \"cnt\": 0, \"of\": 1 }, \"finished\": \"failure\" "
                            "}, \"execution\": \"closed\", \"details\": [ \"ERROR : HASH\tmismatch\r\n"
                            "\", \"No suitable .swu image found\" ] } }";
    r = req("POST", fb, a, fail_body, NULL);
    expect_status(&r, 200, "closed failure");
    st_resp_free(&r);
    assert_int_equal(action_state(dev, c.id), STORE_ACT_FAILURE);
    /* a feedback path for an action that is not the device's */
    char other_fb[300];
    snprintf(other_fb, sizeof(other_fb), "/DEFAULT/controller/v1/fb-1/deploymentBase/999999/feedback");
    r = req("POST", other_fb, a, "{\"status\":{\"execution\":\"proceeding\"}}", NULL);
    expect_status(&r, 404, "no such action");
    st_resp_free(&r);
}

/* Waves, the failure threshold, pause, resume. */
static void test_waves_and_threshold(void **state)
{
    (void)state;
    enum { N = 10 };
    int64_t dev[N];
    char cid[N][32], auth[N][80], tok[64];
    for (int i = 0; i < N; i++) {
        snprintf(cid[i], sizeof(cid[i]), "wave-%02d", i);
        snprintf(tok, sizeof(tok), "token-wave-%02d-0123456789", i);
        dev[i] = add_device(cid[i], tok);
        target(tok, auth[i]);
    }
    const uint8_t data[] = "wave artifact";
    int64_t art = add_artifact("wave.bin", "3.0.0", data, sizeof(data));
    int64_t g = add_group("waves", dev, N);
    const unsigned waves[] = {10, 50, 100};
    store_campaign_t c = campaign("waves", art, g, waves, 3, 20);
    /* wave 1: 1 device of 10 offered */
    int offered[N], noffered = 0;
    char link[256], fb[300];
    for (int i = 0; i < N; i++) {
        poll_link(cid[i], auth[i], "deploymentBase", link, sizeof(link));
        offered[i] = link[0] != 0;
        noffered += offered[i];
    }
    assert_int_equal(noffered, 1);
    /* it succeeds: wave 2 (devices 2..5 of 10) is offered */
    for (int i = 0; i < N; i++) {
        if (offered[i]) {
            poll_link(cid[i], auth[i], "deploymentBase", link, sizeof(link));
            snprintf(fb, sizeof(fb), "%.*s/feedback", (int)(strchr(link, '?') - link), link);
            send_feedback(fb, auth[i], "closed", "success", 200);
        }
    }
    int wave2[N], n2 = 0;
    for (int i = 0; i < N; i++) {
        poll_link(cid[i], auth[i], "deploymentBase", link, sizeof(link));
        wave2[i] = link[0] != 0;
        n2 += wave2[i];
    }
    assert_int_equal(n2, 4);
    /* one of 4 fails: 25 % > 20 %: paused, with the reason */
    int first = -1;
    for (int i = 0; i < N && first < 0; i++) {
        if (wave2[i]) {
            first = i;
        }
    }
    poll_link(cid[first], auth[first], "deploymentBase", link, sizeof(link));
    snprintf(fb, sizeof(fb), "%.*s/feedback", (int)(strchr(link, '?') - link), link);
    send_feedback(fb, auth[first], "closed", "failure", 200);
    store_campaign_t cc;
    assert_int_equal(env.srv.store->ops->campaign_get(env.srv.store, c.id, &cc), STORE_OK);
    assert_int_equal(cc.state, STORE_CAMP_PAUSED);
    print_message("paused: %s\n", cc.reason);
    assert_non_null(strstr(cc.reason, "wave 2 of 3"));
    assert_non_null(strstr(cc.reason, "1 of 4"));
    /* the rest of wave 2 may still finish; wave 3 is not offered while paused */
    for (int i = 0; i < N; i++) {
        if (wave2[i] && i != first) {
            poll_link(cid[i], auth[i], "deploymentBase", link, sizeof(link));
            assert_true(link[0] != 0);
            snprintf(fb, sizeof(fb), "%.*s/feedback", (int)(strchr(link, '?') - link), link);
            send_feedback(fb, auth[i], "closed", "success", 200);
        }
    }
    for (int i = 0; i < N; i++) {
        if (!offered[i] && !wave2[i]) {
            poll_link(cid[i], auth[i], "deploymentBase", link, sizeof(link));
            assert_string_equal(link, "");
        }
    }
    assert_int_equal(srv_campaign_pause(&env.srv, c.id, "again"), STORE_CONFLICT);
    /* resume: the failure is acknowledged; wave 3 goes out */
    assert_int_equal(srv_campaign_resume(&env.srv, c.id), STORE_OK);
    int n3 = 0;
    for (int i = 0; i < N; i++) {
        poll_link(cid[i], auth[i], "deploymentBase", link, sizeof(link));
        if (link[0]) {
            n3++;
            snprintf(fb, sizeof(fb), "%.*s/feedback", (int)(strchr(link, '?') - link), link);
            send_feedback(fb, auth[i], "closed", "success", 200);
        }
    }
    assert_int_equal(n3, 5);
    assert_int_equal(env.srv.store->ops->campaign_get(env.srv.store, c.id, &cc), STORE_OK);
    assert_int_equal(cc.state, STORE_CAMP_FINISHED);
    print_message("finished: %s\n", cc.reason);
    /* a new campaign to the same version skips everyone already on it */
    store_campaign_t again = campaign("waves-again", art, g, waves + 2, 1, 20);
    store_counts_t n;
    assert_int_equal(env.srv.store->ops->action_counts(env.srv.store, again.id, -1, &n), STORE_OK);
    assert_int_equal(n.n[STORE_ACT_SKIPPED], 9);
    assert_int_equal(n.n[STORE_ACT_OFFERED], 1);
}

static void test_cancel(void **state)
{
    (void)state;
    char a[80], link[256], fb[300];
    int64_t dev = add_device("cancel-1", "token-cancel-0123456789");
    target("token-cancel-0123456789", a);
    const uint8_t data[] = "cancel me";
    int64_t art = add_artifact("cancel.bin", "4.0.0", data, sizeof(data));
    int64_t g = add_group("cancel", &dev, 1);
    const unsigned w100[] = {100};
    store_campaign_t c = campaign("cancel", art, g, w100, 1, 50);
    poll_link("cancel-1", a, "deploymentBase", link, sizeof(link));
    snprintf(fb, sizeof(fb), "%.*s/feedback", (int)(strchr(link, '?') - link), link);
    send_feedback(fb, a, "proceeding", "none", 200);
    assert_int_equal(srv_campaign_cancel(&env.srv, c.id, NULL), STORE_OK);
    poll_link("cancel-1", a, "cancelAction", link, sizeof(link));
    assert_true(link[0] != 0);
    st_resp_t r = req("GET", link, a, NULL, NULL);
    expect_status(&r, 200, "cancelAction");
    json_t *j = body_json(&r);
    assert_non_null(json_object_get(json_object_get(j, "cancelAction"), "stopId"));
    json_decref(j);
    st_resp_free(&r);
    snprintf(fb, sizeof(fb), "%s/feedback", link);
    send_feedback(fb, a, "closed", "success", 200);
    assert_int_equal(action_state(dev, c.id), STORE_ACT_CANCELLED);
    poll_link("cancel-1", a, "cancelAction", link, sizeof(link));
    assert_string_equal(link, "");
}

/* An upload is refused on its headers: nothing of its body is stored first. */
static void test_upload_gate(void **state)
{
    (void)state;
    size_t n = 3u * 1024 * 1024;
    char *body = malloc(n + 1);
    assert_non_null(body);
    memset(body, 'x', n);
    body[n] = '\0';
    st_resp_t r = req("POST", "/api/v1/artifacts?name=gate.bin&kind=opaque&version=1", NULL, body,
                      NULL);
    expect_status(&r, 401, "upload without a token");
    st_resp_free(&r);
    r = req("POST", "/api/v1/artifacts?name=gate.bin&kind=opaque&version=1",
            "TargetToken token-a-0123456789", body, NULL);
    expect_status(&r, 401, "upload with a device token");
    st_resp_free(&r);
    /* the operator, over the configured limit */
    char tok[40], h[65];
    assert_int_equal(srv_token_new(tok), 0);
    srv_sha256_hex(tok, strlen(tok), h);
    assert_int_equal(env.srv.store->ops->setting_set(env.srv.store, "operator_token_sha256", h),
                     STORE_OK);
    char bearer[64];
    snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
    uint64_t old = env.srv.cfg.max_artifact;
    env.srv.cfg.max_artifact = 1024 * 1024;
    r = req("POST", "/api/v1/artifacts?name=gate.bin&kind=opaque&version=1", bearer, body, NULL);
    expect_status(&r, 413, "upload over max_artifact");
    assert_non_null(strstr(r.body, "max_artifact_mb"));
    st_resp_free(&r);
    env.srv.cfg.max_artifact = old;
    /* nothing was left in the upload area */
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s/artifacts/tmp')\"", env.dir);
    assert_int_equal(system(cmd), 0);
    free(body);
}

/* Above max_inflight requests in flight, new ones are told to come back later. */
static void test_load_shedding(void **state)
{
    (void)state;
    st_env_t e2;
    memset(&e2, 0, sizeof(e2));
    /* a second server, plain HTTP so a raw socket can hold a request open */
    assert_int_equal(st_start(&e2, NULL, true), 0);
    srv_stop(&e2.srv);
    e2.srv.cfg.max_inflight = 1;
    assert_int_equal(srv_start(&e2.srv), 0);
    snprintf(e2.base, sizeof(e2.base), "http://127.0.0.1:%u", (unsigned)srv_port(&e2.srv));
    /* a request whose body never finishes holds the one slot */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(srv_port(&e2.srv))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    const char *partial = "PUT /DEFAULT/controller/v1/x/configData HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: 100\r\n\r\n{";
    assert_true(write(fd, partial, strlen(partial)) > 0);
    usleep(200000);
    st_resp_t r = st_req(&e2, "GET", "/DEFAULT/controller/v1/x", NULL, NULL, NULL, NULL);
    assert_int_equal(r.curl_code, 0);
    assert_int_equal(r.status, 429);
    assert_true(atoi(r.retry_after) > 0);
    st_resp_free(&r);
    close(fd);
    usleep(100000);
    /* the slot is free again */
    r = st_req(&e2, "GET", "/DEFAULT/controller/v1/x", NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 401);
    st_resp_free(&r);
    st_stop(&e2, true);
}

/* ---- fixture ------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (st_start(&env, "00:00:07", false) != 0) {
        return -1;
    }
    char h[65];
    srv_sha256_hex(gateway, strlen(gateway), h);
    return env.srv.store->ops->setting_set(env.srv.store, "gateway_token_sha256", h) == STORE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_stop(&env, true);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_config_data),
        cmocka_unit_test(test_deployment_and_download),
        cmocka_unit_test(test_feedback_bodies),
        cmocka_unit_test(test_waves_and_threshold),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_upload_gate),
        cmocka_unit_test(test_load_shedding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
