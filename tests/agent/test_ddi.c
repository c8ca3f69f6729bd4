/*
 * Unit tests of the DDI state machine (agent/ddi.c): canned server answers in,
 * the exact request sequence out (method, URL, key body fields, parsed with
 * jansson). No network, no clock: every SLEEP is asserted by its length.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "airlock/ddi.h"
#include "airlock/err.h"

#define BASE "https://srv.test:8443"
#define CTRL BASE "/DEFAULT/controller/v1/dev-1"
#define SHA "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SLEEP5 "{\"config\":{\"polling\":{\"sleep\":\"00:05:00\"}}}"
#define DEPLOY_HREF CTRL "/deploymentBase/7?c=4242"
#define POLL_DEPLOY                                                                                \
    "{\"config\":{\"polling\":{\"sleep\":\"00:05:00\"}},\"_links\":{\"deploymentBase\":{\"href\":" \
    "\"" DEPLOY_HREF "\"}}}"
#define ART_HREF CTRL "/softwaremodules/3/artifacts/fw-1.1.0.img"

/* A deploymentBase answer as server/ddi.c writes it (id 7, version v). */
static const char *deploy_json(const char *version)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"id\":\"7\",\"deployment\":{\"download\":\"forced\",\"update\":\"forced\","
             "\"chunks\":[{\"part\":\"os\",\"version\":\"%s\",\"name\":\"fw\",\"artifacts\":[{"
             "\"filename\":\"fw-1.1.0.img\",\"hashes\":{\"sha1\":\"x\",\"md5\":\"y\",\"sha256\":"
             "\"" SHA "\"},\"size\":12345,\"_links\":{\"download\":{\"href\":\"" ART_HREF "\"},"
             "\"download-http\":{\"href\":\"" ART_HREF "\"}}}]}]}}",
             version);
    return buf;
}

static airlock_ddi_cfg_t cfg_default(void)
{
    airlock_ddi_cfg_t c = {
        .base_url = BASE,
        .tenant = "DEFAULT",
        .controller_id = "dev-1",
        .auth = "TargetToken abc",
        .retry_ms = 1000,
        .default_poll_ms = 60000,
    };
    return c;
}

static airlock_ddi_boot_t boot_on(const char *version)
{
    airlock_ddi_boot_t b;
    memset(&b, 0, sizeof(b));
    snprintf(b.running_version, sizeof(b.running_version), "%s", version);
    b.confirmed = true;
    return b;
}

/* ---- request assertions ------------------------------------------------------------- */

static airlock_ddi_req_t next_req(airlock_ddi_t *d, int kind)
{
    airlock_ddi_req_t r;
    airlock_ddi_next(d, &r);
    if (r.kind != kind) {
        fail_msg("expected request kind %d, got %d (%s %s); error: %s", kind, r.kind,
                 r.method ? r.method : "-", r.url ? r.url : "-", airlock_ddi_error(d));
    }
    return r;
}

static void expect_get(airlock_ddi_t *d, const char *url)
{
    airlock_ddi_req_t r = next_req(d, AIRLOCK_DDI_REQ_HTTP);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.url, url);
    assert_null(r.body);
}

static void expect_sleep(airlock_ddi_t *d, uint32_t ms)
{
    airlock_ddi_req_t r = next_req(d, AIRLOCK_DDI_REQ_SLEEP);
    assert_int_equal(r.sleep_ms, ms);
}

/* The body as JSON (valid JSON is part of what is checked); caller decrefs. */
static json_t *expect_send(airlock_ddi_t *d, const char *method, const char *url)
{
    airlock_ddi_req_t r = next_req(d, AIRLOCK_DDI_REQ_HTTP);
    assert_string_equal(r.method, method);
    assert_string_equal(r.url, url);
    assert_non_null(r.body);
    assert_int_equal(r.body_len, strlen(r.body));
    json_error_t e;
    json_t *j = json_loads(r.body, 0, &e);
    if (!j) {
        fail_msg("body is not JSON (%s): %s", e.text, r.body);
    }
    return j;
}

static const char *jstr(json_t *j, const char *path)
{
    json_t *v = json_object_get(j, path);
    return json_is_string(v) ? json_string_value(v) : "(none)";
}

/* A deployment feedback for action: execution, finished, the first detail (or NULL). */
static void expect_feedback(airlock_ddi_t *d, const char *url, const char *id,
                            const char *execution, const char *finished, const char *detail_has)
{
    json_t *j = expect_send(d, "POST", url);
    json_t *st = json_object_get(j, "status");
    assert_string_equal(jstr(j, "id"), id);
    assert_string_equal(jstr(st, "execution"), execution);
    assert_string_equal(jstr(json_object_get(st, "result"), "finished"), finished);
    if (detail_has) {
        json_t *det = json_array_get(json_object_get(st, "details"), 0);
        assert_true(json_is_string(det));
        if (!strstr(json_string_value(det), detail_has)) {
            fail_msg("detail \"%s\" lacks \"%s\"", json_string_value(det), detail_has);
        }
    }
    json_decref(j);
}

static void expect_config(airlock_ddi_t *d, const char *url, const char *version)
{
    json_t *j = expect_send(d, "PUT", url);
    assert_string_equal(jstr(j, "mode"), "merge");
    assert_string_equal(jstr(json_object_get(j, "data"), "version"), version);
    json_decref(j);
}

static int answer(airlock_ddi_t *d, int status, const char *body)
{
    return airlock_ddi_response(d, status, body, body ? strlen(body) : 0);
}

static void ok(airlock_ddi_t *d, const char *body)
{
    int rc = answer(d, 200, body);
    if (rc) {
        fail_msg("answer refused (%d): %s", rc, airlock_ddi_error(d));
    }
}

/* A device on version, persist p (NULL: new), through its configData. */
static void start(airlock_ddi_t *d, const airlock_ddi_persist_t *p, const airlock_ddi_boot_t *b)
{
    airlock_ddi_cfg_t c = cfg_default();
    static airlock_ddi_cfg_t keep;
    keep = c;
    assert_int_equal(airlock_ddi_init(d, &keep, p, b), 0);
    expect_config(d, CTRL "/configData", b->running_version);
    ok(d, "");
}

/* From a fresh device on 1.0.0 to the REQ_DOWNLOAD of action 7 (version 1.1.0). */
static airlock_ddi_req_t to_download(airlock_ddi_t *d)
{
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(d, NULL, &b);
    airlock_ddi_persist_dirty(d);
    expect_get(d, CTRL);
    ok(d, POLL_DEPLOY);
    expect_get(d, DEPLOY_HREF);
    ok(d, deploy_json("1.1.0"));
    assert_true(airlock_ddi_persist_dirty(d));
    assert_int_equal(airlock_ddi_persist(d)->phase, AIRLOCK_DDI_PHASE_DOWNLOADING);
    assert_int_equal(airlock_ddi_persist(d)->action_id, 7);
    expect_feedback(d, CTRL "/deploymentBase/7/feedback", "7", "proceeding", "none", NULL);
    ok(d, "");
    return next_req(d, AIRLOCK_DDI_REQ_DOWNLOAD);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_new_device(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    airlock_ddi_cfg_t c = cfg_default();
    assert_int_equal(airlock_ddi_init(&d, &c, NULL, &b), 0);
    assert_int_equal(airlock_ddi_poll_ms(&d), 60000);
    expect_config(&d, CTRL "/configData", "1.0.0");
    ok(&d, "");
    assert_true(airlock_ddi_persist_dirty(&d));
    assert_false(airlock_ddi_persist_dirty(&d)); /* reading clears it */
    assert_string_equal(airlock_ddi_persist(&d)->reported_version, "1.0.0");
    expect_get(&d, CTRL);
    ok(&d, SLEEP5);
    assert_int_equal(airlock_ddi_poll_ms(&d), 300000);
    expect_sleep(&d, 300000);
    expect_get(&d, CTRL);
    /* the server asks for configData (its link): sent before anything else */
    ok(&d, "{\"config\":{\"polling\":{\"sleep\":\"00:00:10\"}},\"_links\":{\"configData\":{"
           "\"href\":\"" CTRL "/configData\"}}}");
    expect_config(&d, CTRL "/configData", "1.0.0");
    ok(&d, "");
    assert_false(airlock_ddi_persist_dirty(&d)); /* same version as stored */
    expect_sleep(&d, 10000);
    expect_get(&d, CTRL);
}

static void test_full_update(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_req_t r = to_download(&d);
    assert_string_equal(r.url, ART_HREF);
    assert_int_equal(r.size, 12345);
    assert_int_equal(r.action_id, 7);
    assert_string_equal(r.version, "1.1.0");
    assert_string_equal(r.filename, "fw-1.1.0.img");
    assert_int_equal(r.sha256[0], 0x00);
    assert_int_equal(r.sha256[1], 0x11);
    assert_int_equal(r.sha256[31], 0xff);

    /* progress in 10 % steps, as the download runs; REQ_DOWNLOAD's strings stay */
    airlock_ddi_req_t p;
    assert_false(airlock_ddi_progress(&d, 1000, 12345, &p));
    assert_true(airlock_ddi_progress(&d, 6200, 12345, &p));
    assert_string_equal(p.method, "POST");
    assert_string_equal(p.url, CTRL "/deploymentBase/7/feedback");
    json_t *j = json_loads(p.body, 0, NULL);
    json_t *prog =
        json_object_get(json_object_get(json_object_get(j, "status"), "result"), "progress");
    assert_int_equal(json_integer_value(json_object_get(prog, "cnt")), 50);
    assert_int_equal(json_integer_value(json_object_get(prog, "of")), 100);
    assert_string_equal(jstr(json_object_get(j, "status"), "execution"), "proceeding");
    json_decref(j);
    assert_false(airlock_ddi_progress(&d, 6300, 12345, &p));
    assert_true(airlock_ddi_progress(&d, 12345, 12345, &p));
    assert_non_null(strstr(p.body, "\"cnt\":100"));
    assert_false(airlock_ddi_progress(&d, 12345, 12345, &p));
    assert_string_equal(r.url, ART_HREF);
    assert_string_equal(r.filename, "fw-1.1.0.img");

    airlock_ddi_download_done(&d, 0, NULL);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "proceeding", "none", "installing");
    ok(&d, "");
    r = next_req(&d, AIRLOCK_DDI_REQ_INSTALL);
    assert_int_equal(r.action_id, 7);
    assert_string_equal(r.url, ART_HREF); /* to download it again after a stop */
    assert_string_equal(r.filename, "fw-1.1.0.img");
    assert_true(airlock_ddi_persist_dirty(&d));
    assert_int_equal(airlock_ddi_persist(&d)->phase, AIRLOCK_DDI_PHASE_INSTALLING);
    assert_string_equal(airlock_ddi_persist(&d)->version, "1.1.0");
    assert_int_equal(airlock_ddi_persist(&d)->size, 12345);
    /* until the reboot, it keeps asking */
    next_req(&d, AIRLOCK_DDI_REQ_INSTALL);
}

static void test_progress_step(void **state)
{
    (void)state;
    airlock_ddi_t d;
    to_download(&d);
    d.cfg.progress_step = 4096; /* (test only: as if configured so) */
    airlock_ddi_req_t p;
    assert_false(airlock_ddi_progress(&d, 4095, 0, &p)); /* total 0: the artifact's size */
    assert_true(airlock_ddi_progress(&d, 4096, 0, &p));
    assert_non_null(strstr(p.body, "\"cnt\":33"));
    assert_false(airlock_ddi_progress(&d, 8000, 0, &p));
    assert_true(airlock_ddi_progress(&d, 8192, 0, &p));
}

static airlock_ddi_persist_t installing_7(void)
{
    airlock_ddi_persist_t p;
    memset(&p, 0, sizeof(p));
    p.action_id = 7;
    p.phase = AIRLOCK_DDI_PHASE_INSTALLING;
    snprintf(p.version, sizeof(p.version), "1.1.0");
    p.size = 12345;
    p.last_done = 3;
    return p;
}

static void test_after_reboot_success(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.1.0");
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "success", NULL);
    ok(&d, "");
    assert_true(airlock_ddi_persist_dirty(&d));
    const airlock_ddi_persist_t *q = airlock_ddi_persist(&d);
    assert_int_equal(q->action_id, 0);
    assert_int_equal(q->phase, AIRLOCK_DDI_PHASE_NONE);
    assert_int_equal(q->last_done, 7);
    expect_get(&d, CTRL);
    /* a server that still offers action 7: it is not done again */
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.2.0"));
    expect_sleep(&d, 300000);
    expect_get(&d, CTRL);
}

static void test_after_revert_failure(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.0.0");
    b.reverted = true;
    snprintf(b.reverted_version, sizeof(b.reverted_version), "1.1.0");
    snprintf(b.reason, sizeof(b.reason), "not confirmed within 3 trial boots");
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "failure",
                    "not confirmed within 3 trial boots");
    /* the report is retried until the server has it */
    assert_int_equal(answer(&d, 503, "busy"), AIRLOCK_ERR_HTTP);
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 7);
    expect_sleep(&d, 1000);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "failure",
                    "reverted from 1.1.0");
    /* 410: closed on the server already (our first report got there): done */
    assert_int_equal(answer(&d, 410, "{}"), 0);
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    expect_get(&d, CTRL);
}

static void test_wrong_version_after_install(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.0.0"); /* no revert recorded, yet the old version */
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "failure",
                    "running version 1.0.0 after the install, not the target 1.1.0");
    ok(&d, "");
    expect_get(&d, CTRL);
}

static void test_on_trial_waits_for_verdict(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.1.0");
    b.confirmed = false; /* on trial: no verdict this boot */
    start(&d, &p, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    expect_sleep(&d, 300000); /* neither redone nor reported */
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 7);
    assert_int_equal(airlock_ddi_persist(&d)->phase, AIRLOCK_DDI_PHASE_INSTALLING);
}

static void test_install_not_acted_on(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.0.0");
    b.pending = true; /* the bootloader left the request for the next boot */
    airlock_ddi_cfg_t c = cfg_default();
    assert_int_equal(airlock_ddi_init(&d, &c, &p, &b), 0);
    airlock_ddi_req_t r = next_req(&d, AIRLOCK_DDI_REQ_INSTALL); /* no verdict: reboot again */
    assert_int_equal(r.action_id, 7);
    assert_null(r.url); /* not downloaded this boot */
    assert_string_equal(r.version, "1.1.0");
    assert_int_equal(r.size, 12345);
    assert_false(airlock_ddi_persist_dirty(&d));
    /* the next boot runs the target: success */
    b = boot_on("1.1.0");
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "success", NULL);
}

static void test_cancel_during_download(void **state)
{
    (void)state;
    airlock_ddi_t d;
    to_download(&d);
    /* the download broke off; the next poll says the action is being cancelled */
    airlock_ddi_download_done(&d, AIRLOCK_ERR_NETWORK, "connection reset");
    assert_non_null(strstr(airlock_ddi_error(&d), "connection reset"));
    assert_int_equal(airlock_ddi_persist(&d)->phase, AIRLOCK_DDI_PHASE_DOWNLOADING);
    expect_sleep(&d, 1000);
    expect_get(&d, CTRL);
    ok(&d, "{\"config\":{\"polling\":{\"sleep\":\"00:05:00\"}},\"_links\":{\"cancelAction\":{"
           "\"href\":\"" CTRL "/cancelAction/7\"}}}");
    expect_get(&d, CTRL "/cancelAction/7");
    ok(&d, "{\"id\":\"7\",\"cancelAction\":{\"stopId\":\"7\"}}");
    airlock_ddi_req_t r = next_req(&d, AIRLOCK_DDI_REQ_ABORT);
    assert_int_equal(r.action_id, 7);
    expect_feedback(&d, CTRL "/cancelAction/7/feedback", "7", "closed", "success", NULL);
    ok(&d, "");
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    assert_int_equal(airlock_ddi_persist(&d)->phase, AIRLOCK_DDI_PHASE_NONE);
    expect_sleep(&d, 300000);
}

static void test_resume_same_action(void **state)
{
    (void)state;
    airlock_ddi_t d;
    to_download(&d);
    airlock_ddi_download_done(&d, AIRLOCK_ERR_CANCELLED, NULL); /* e.g. power cut */
    /* after a reboot: the same action again continues without a second "proceeding" */
    airlock_ddi_persist_t p = *airlock_ddi_persist(&d);
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(&d, &p, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    airlock_ddi_req_t r = next_req(&d, AIRLOCK_DDI_REQ_DOWNLOAD);
    assert_int_equal(r.action_id, 7);
}

static void test_cancel_while_installing_rejected(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.1.0");
    b.confirmed = false;
    start(&d, &p, &b);
    expect_get(&d, CTRL);
    ok(&d, "{\"_links\":{\"cancelAction\":{\"href\":\"" CTRL "/cancelAction/7\"}}}");
    expect_get(&d, CTRL "/cancelAction/7");
    ok(&d, "{\"id\":\"7\",\"cancelAction\":{\"stopId\":\"7\"}}");
    expect_feedback(&d, CTRL "/cancelAction/7/feedback", "7", "rejected", "failure", "too late");
    ok(&d, "");
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 7); /* still to be reported */
}

static void test_already_running(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.1.0");
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "success",
                    "already running");
    ok(&d, "");
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    expect_sleep(&d, 300000);
}

static void test_download_failure_reported(void **state)
{
    (void)state;
    airlock_ddi_t d;
    to_download(&d);
    airlock_ddi_download_done(&d, AIRLOCK_ERR_BAD_SIGNATURE,
                              "image rejected: no signature verifies with a trusted key");
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "failure",
                    "no signature verifies");
    ok(&d, "");
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    expect_sleep(&d, 300000);
}

static void test_retries_and_backoff(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    airlock_ddi_cfg_t c = cfg_default();
    c.default_poll_ms = 5000;
    assert_int_equal(airlock_ddi_init(&d, &c, NULL, &b), 0);
    expect_config(&d, CTRL "/configData", "1.0.0");
    ok(&d, "");
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 0, NULL), AIRLOCK_ERR_NETWORK);
    expect_sleep(&d, 1000);
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 500, "oops"), AIRLOCK_ERR_HTTP);
    expect_sleep(&d, 2000);
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 429, NULL), AIRLOCK_ERR_HTTP);
    expect_sleep(&d, 4000);
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 502, NULL), AIRLOCK_ERR_HTTP);
    expect_sleep(&d, 5000); /* capped at the poll interval */
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 0, NULL), AIRLOCK_ERR_NETWORK);
    expect_sleep(&d, 5000);
    expect_get(&d, CTRL);
    ok(&d, "{\"config\":{\"polling\":{\"sleep\":\"00:00:30\"}}}");
    expect_sleep(&d, 30000);
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 0, NULL), AIRLOCK_ERR_NETWORK);
    expect_sleep(&d, 1000); /* a success resets the backoff */
    expect_get(&d, CTRL);
}

static void test_stop_on_401(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    airlock_ddi_cfg_t c = cfg_default();
    assert_int_equal(airlock_ddi_init(&d, &c, NULL, &b), 0);
    expect_config(&d, CTRL "/configData", "1.0.0");
    assert_int_equal(answer(&d, 401, "{\"message\":\"unknown target token\"}"), AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "configData: HTTP 401"));
    /* no quick retries: a poll interval, then the same request */
    expect_sleep(&d, 60000);
    expect_config(&d, CTRL "/configData", "1.0.0");
    ok(&d, "");
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 403, NULL), AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "poll: HTTP 403"));
    expect_sleep(&d, 60000);
    expect_get(&d, CTRL);
}

static void test_malformed(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 200, "<html>proxy error</html>"), AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "poll: answer is not a JSON object"));
    expect_sleep(&d, 60000);
    expect_get(&d, CTRL);
    /* truncated JSON */
    assert_int_equal(answer(&d, 200, "{\"config\":{\"polling\""), AIRLOCK_ERR_HTTP);
    expect_sleep(&d, 60000);
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 200, "{\"config\":{\"polling\":{\"sleep\":\"5 minutes\"}}}"),
                     AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "config.polling.sleep"));
    expect_sleep(&d, 60000);
    expect_get(&d, CTRL);
    assert_int_equal(answer(&d, 200, "{\"_links\":{\"deploymentBase\":{\"href\":7}}}"),
                     AIRLOCK_ERR_HTTP);
    assert_string_equal(airlock_ddi_error(&d),
                        "poll: _links.deploymentBase.href has the wrong type");
    expect_sleep(&d, 60000);
    expect_get(&d, CTRL);

    /* deploymentBase: each field it needs, missing or wrong, is named */
    static const struct {
        const char *from, *to, *field;
    } cases[] = {
        {"\"sha256\":\"" SHA "\"", "\"sha256\":\"abc\"", "artifacts[0].hashes.sha256 is not valid"},
        {"\"sha256\":\"" SHA "\"", "\"sha1\":\"x\"", "artifacts[0].hashes.sha256 missing"},
        {"\"size\":12345", "\"size\":-1", "artifacts[0].size is not valid"},
        {"\"size\":12345", "\"length\":12345", "artifacts[0].size missing"},
        {"\"id\":\"7\"", "\"ident\":\"7\"", "deploymentBase: id missing"},
        {"\"version\":\"1.1.0\"", "\"version\":110", "chunks[].version has the wrong type"},
        {"\"filename\":\"fw-1.1.0.img\"", "\"file\":\"x\"", "artifacts[0].filename missing"},
        {"\"artifacts\":[{", "\"artifacts\":[],\"x\":[{", "artifacts[0] missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[2048];
        const char *src = deploy_json("1.1.0");
        const char *at = strstr(src, cases[i].from);
        assert_non_null(at);
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - src), src, cases[i].to,
                 at + strlen(cases[i].from));
        ok(&d, POLL_DEPLOY);
        expect_get(&d, DEPLOY_HREF);
        assert_int_equal(answer(&d, 200, buf), AIRLOCK_ERR_HTTP);
        if (!strstr(airlock_ddi_error(&d), cases[i].field)) {
            fail_msg("case %zu: error \"%s\" does not name \"%s\"", i, airlock_ddi_error(&d),
                     cases[i].field);
        }
        assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
        expect_sleep(&d, 300000);
        expect_get(&d, CTRL);
    }
    /* lenient: unknown fields and any order are fine */
    ok(&d, "{\"_links\":{\"extra\":{\"href\":\"x\"},\"deploymentBase\":{\"href\":\"" DEPLOY_HREF
           "\"}},\"future\":[1,{\"a\":null}],\"config\":{\"polling\":{\"sleep\":\"00:01:00\","
           "\"other\":true}}}");
    expect_get(&d, DEPLOY_HREF);
    ok(&d, "{\"deployment\":{\"chunks\":[{\"artifacts\":[{\"_links\":{\"download-http\":{"
           "\"href\":\"http://h/a\"}},\"size\":\"5\",\"hashes\":{\"sha256\":\"" SHA "\"},"
           "\"filename\":\"a\"}],\"version\":\"2.0.0\",\"new\":{}}],\"update\":\"attempt\"},"
           "\"id\":99,\"actionHistory\":{\"status\":\"x\",\"messages\":[\"y\"]}}");
    expect_feedback(&d, CTRL "/deploymentBase/99/feedback", "99", "proceeding", "none", NULL);
    ok(&d, "");
    airlock_ddi_req_t r = next_req(&d, AIRLOCK_DDI_REQ_DOWNLOAD);
    assert_string_equal(r.url, "http://h/a");
    assert_int_equal(r.size, 5);
}

static void test_too_many_tokens(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    char big[4096] = "{\"x\":[";
    for (int i = 0; i < 400; i++) {
        strcat(big, i ? ",1" : "1");
    }
    strcat(big, "]}");
    assert_int_equal(answer(&d, 200, big), AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "JSON tokens"));
}

static void test_too_long_url(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    char href[AIRLOCK_DDI_URL_MAX + 8], buf[1024];
    memset(href, 'a', sizeof(href) - 1);
    href[sizeof(href) - 1] = '\0';
    snprintf(buf, sizeof(buf), "{\"_links\":{\"deploymentBase\":{\"href\":\"%s\"}}}", href);
    assert_int_equal(answer(&d, 200, buf), AIRLOCK_ERR_HTTP);
    assert_string_equal(airlock_ddi_error(&d), "poll: _links.deploymentBase.href is too long");
    expect_sleep(&d, 60000);
    expect_get(&d, CTRL);
    /* exactly the longest that fits is taken */
    href[AIRLOCK_DDI_URL_MAX - 1] = '\0';
    snprintf(buf, sizeof(buf), "{\"_links\":{\"deploymentBase\":{\"href\":\"%s\"}}}", href);
    ok(&d, buf);
    expect_get(&d, href);

    /* a base URL too long for the URLs it must build is refused at init */
    char base[AIRLOCK_DDI_URL_MAX];
    memset(base, 'b', sizeof(base) - 1);
    base[sizeof(base) - 1] = '\0';
    memcpy(base, "https://", 8);
    airlock_ddi_cfg_t c = cfg_default();
    c.base_url = base;
    assert_int_equal(airlock_ddi_init(&d, &c, NULL, &b), AIRLOCK_ERR_INVAL);
    assert_non_null(strstr(airlock_ddi_error(&d), "cfg.base_url"));
    c = cfg_default();
    c.controller_id = "bad id/";
    assert_int_equal(airlock_ddi_init(&d, &c, NULL, &b), AIRLOCK_ERR_INVAL);
    assert_non_null(strstr(airlock_ddi_error(&d), "cfg.controller_id"));
}

static uint32_t sleep_of(const char *s, uint32_t max_poll, int *rc)
{
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    airlock_ddi_cfg_t c = cfg_default();
    c.max_poll_ms = max_poll;
    char buf[256];
    assert_int_equal(airlock_ddi_init(&d, &c, NULL, &b), 0);
    expect_config(&d, CTRL "/configData", "1.0.0");
    ok(&d, "");
    expect_get(&d, CTRL);
    snprintf(buf, sizeof(buf), "{\"config\":{\"polling\":{\"sleep\":\"%s\"}}}", s);
    *rc = answer(&d, 200, buf);
    return airlock_ddi_poll_ms(&d);
}

static void test_sleep_parsing(void **state)
{
    (void)state;
    int rc;
    assert_int_equal(sleep_of("00:00:30", 0, &rc), 30000);
    assert_int_equal(rc, 0);
    assert_int_equal(sleep_of("01:02:03", 0, &rc), 3723000);
    assert_int_equal(sleep_of("12:00:00", 0, &rc), 43200000);
    assert_int_equal(sleep_of("100:00:00", 0, &rc), 360000000);
    assert_int_equal(sleep_of("12:00:00", 120000, &rc), 120000); /* capped */
    assert_int_equal(sleep_of("00:00:00", 0, &rc), 1);           /* never a busy loop */
    static const char *const bad[] = {"00:60:00", "00:00:60", "00:5:00", "5",       "00:00:00x",
                                      "-1:00:00", "",         "00:00",   "aa:bb:cc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sleep_of(bad[i], 0, &rc), 60000); /* unchanged */
        assert_int_equal(rc, AIRLOCK_ERR_HTTP);
    }
}

static void test_persist_round_trip(void **state)
{
    (void)state;
    airlock_ddi_persist_t p, q;
    memset(&p, 0, sizeof(p));
    p.action_id = 0x0102030405060708ull;
    p.phase = AIRLOCK_DDI_PHASE_INSTALLING;
    snprintf(p.version, sizeof(p.version), "1.2.3+4");
    for (int i = 0; i < 32; i++) {
        p.sha256[i] = (uint8_t)(i * 7 + 1);
    }
    p.size = 0xdeadbeef;
    p.last_done = 99;
    snprintf(p.reported_version, sizeof(p.reported_version), "1.2.2");
    uint8_t rec[AIRLOCK_DDI_PERSIST_LEN];
    airlock_ddi_persist_encode(&p, rec);
    assert_int_equal(airlock_ddi_persist_decode(rec, &q), 0);
    assert_memory_equal(&p, &q, sizeof(p));
    /* little endian on the wire, whatever the host */
    assert_int_equal(rec[4], 0x08);
    assert_int_equal(rec[11], 0x01);
    /* any flipped bit is refused, and the result is a new device */
    for (size_t i = 0; i < sizeof(rec); i++) {
        uint8_t bad[AIRLOCK_DDI_PERSIST_LEN];
        memcpy(bad, rec, sizeof(bad));
        bad[i] ^= (uint8_t)(1u << (i % 8));
        memset(&q, 0x55, sizeof(q));
        assert_int_equal(airlock_ddi_persist_decode(bad, &q), AIRLOCK_ERR_INVAL);
        airlock_ddi_persist_t zero;
        memset(&zero, 0, sizeof(zero));
        assert_memory_equal(&q, &zero, sizeof(q));
    }
    uint8_t erased[AIRLOCK_DDI_PERSIST_LEN];
    memset(erased, 0xff, sizeof(erased));
    assert_int_equal(airlock_ddi_persist_decode(erased, &q), AIRLOCK_ERR_INVAL);
    memset(erased, 0, sizeof(erased));
    assert_int_equal(airlock_ddi_persist_decode(erased, &q), AIRLOCK_ERR_INVAL);
}

static void test_escaping(void **state)
{
    (void)state;
    airlock_ddi_t d;
    to_download(&d);
    const char *msg = "image \"fw\" at C:\\tmp\n\tbad\x01";
    airlock_ddi_download_done(&d, AIRLOCK_ERR_HASH_MISMATCH, msg);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "failure", msg);
    /* a message that cannot fit escaped is cut, and the body stays valid JSON */
    answer(&d, 500, NULL);
    expect_sleep(&d, 1000);
    char quotes[AIRLOCK_DDI_MSG_MAX];
    memset(quotes, '\x02', sizeof(quotes) - 1);
    quotes[sizeof(quotes) - 1] = '\0';
    snprintf(d.msg, sizeof(d.msg), "%s", quotes); /* (test only: the worst message) */
    json_t *j = expect_send(&d, "POST", CTRL "/deploymentBase/7/feedback");
    json_decref(j);

    /* what it reads is unescaped */
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    char buf[2048];
    const char *src = deploy_json("1.1.0");
    const char *at = strstr(src, "\"filename\":\"fw-1.1.0.img\"");
    snprintf(buf, sizeof(buf), "%.*s\"filename\":\"f\\u00e9\\\"\\/\\ud83d\\ude00.img\"%s",
             (int)(at - src), src, at + strlen("\"filename\":\"fw-1.1.0.img\""));
    ok(&d, buf);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "proceeding", "none", NULL);
    ok(&d, "");
    airlock_ddi_req_t r = next_req(&d, AIRLOCK_DDI_REQ_DOWNLOAD);
    assert_string_equal(r.filename, "f\xc3\xa9\"/\xf0\x9f\x98\x80.img");
    /* a \u0000 or a lone surrogate is refused */
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    snprintf(buf, sizeof(buf), "%.*s\"filename\":\"a\\u0000b\"%s", (int)(at - src), src,
             at + strlen("\"filename\":\"fw-1.1.0.img\""));
    assert_int_equal(answer(&d, 200, buf), AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "filename is not valid"));
}

static void test_gone_action(void **state)
{
    (void)state;
    airlock_ddi_t d;
    to_download(&d);
    airlock_ddi_download_done(&d, AIRLOCK_ERR_NETWORK, NULL);
    expect_sleep(&d, 1000);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    assert_int_equal(answer(&d, 404, "{}"), AIRLOCK_ERR_HTTP);
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    assert_int_equal(airlock_ddi_persist(&d)->phase, AIRLOCK_DDI_PHASE_NONE);
    expect_sleep(&d, 300000);
    expect_get(&d, CTRL);

    /* a feedback the server refuses (400) is not retried forever */
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "proceeding", "none", NULL);
    assert_int_equal(answer(&d, 400, "{\"message\":\"bad\"}"), AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "HTTP 400 (refused)"));
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    expect_sleep(&d, 300000);
    expect_get(&d, CTRL);

    /* the after-reboot report of an action the server no longer has */
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.1.0");
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "success", NULL);
    assert_int_equal(answer(&d, 404, "{}"), AIRLOCK_ERR_HTTP);
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    /* the verdict stands: never redone if it were offered again */
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    expect_get(&d, CTRL);
}

static void test_misuse(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    airlock_ddi_cfg_t c = cfg_default();
    c.auth = NULL;
    assert_int_equal(airlock_ddi_init(&d, &c, NULL, &b), AIRLOCK_ERR_INVAL);
    assert_non_null(strstr(airlock_ddi_error(&d), "cfg.auth"));
    expect_sleep(&d, 60000); /* a machine whose init failed only ever sleeps */
    expect_sleep(&d, 60000);
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    ok(&d, SLEEP5);
    /* an answer with no request outstanding, a download_done out of turn: ignored */
    assert_int_equal(answer(&d, 200, "{}"), AIRLOCK_ERR_INVAL);
    airlock_ddi_download_done(&d, 0, NULL);
    airlock_ddi_req_t p;
    assert_false(airlock_ddi_progress(&d, 1, 2, &p));
    expect_sleep(&d, 300000);
}

/* A deploymentBase answer like deploy_json with one substring replaced. */
static const char *deploy_with(const char *version, const char *from, const char *to)
{
    static char buf[2048];
    const char *src = deploy_json(version);
    const char *at = strstr(src, from);
    assert_non_null(at);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
    return buf;
}

static void test_deploy_get_failure_polls_again(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    /* a failed GET of the link: back to polling (fresh links), never the stale link again */
    assert_int_equal(answer(&d, 503, "busy"), AIRLOCK_ERR_HTTP);
    expect_sleep(&d, 1000);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    assert_int_equal(answer(&d, 0, NULL), AIRLOCK_ERR_NETWORK);
    expect_sleep(&d, 2000); /* the poll in between does not reset the backoff */
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    assert_int_equal(answer(&d, 429, NULL), AIRLOCK_ERR_HTTP);
    expect_sleep(&d, 4000);
    expect_get(&d, CTRL);
    /* the same for a cancelAction link */
    ok(&d, "{\"config\":{\"polling\":{\"sleep\":\"00:05:00\"}},\"_links\":{\"cancelAction\":{"
           "\"href\":\"" CTRL "/cancelAction/7\"}}}");
    expect_get(&d, CTRL "/cancelAction/7");
    assert_int_equal(answer(&d, 502, NULL), AIRLOCK_ERR_HTTP);
    expect_sleep(&d, 8000);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "proceeding", "none", NULL);
    ok(&d, "");
    next_req(&d, AIRLOCK_DDI_REQ_DOWNLOAD);
}

static void test_update_skip(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    start(&d, NULL, &b);
    airlock_ddi_persist_dirty(&d);
    expect_get(&d, CTRL);
    /* maintenance window closed: neither downloaded nor installed now */
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_with("1.1.0", "\"update\":\"forced\"", "\"update\":\"skip\""));
    assert_false(airlock_ddi_persist_dirty(&d));
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    expect_sleep(&d, 300000);
    expect_get(&d, CTRL);
    /* the window opens: the next poll's offer is done */
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_with("1.1.0", "\"update\":\"forced\"", "\"update\":\"attempt\""));
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "proceeding", "none", NULL);
}

/* Action 7 accepted, its download under way (as if the record of INSTALLING was lost). */
static airlock_ddi_persist_t downloading_7(void)
{
    airlock_ddi_persist_t p = installing_7();
    p.phase = AIRLOCK_DDI_PHASE_DOWNLOADING;
    p.size = 12345;
    for (int i = 0; i < 32; i++) {
        p.sha256[i] = (uint8_t)(0x11 * (i % 16));
    }
    return p;
}

/* No record at all (it did not survive) and the offered version runs on trial: no verdict yet. */
static void test_no_record_target_on_trial(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.1.0");
    b.confirmed = false;
    start(&d, NULL, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    assert_true(airlock_ddi_persist_dirty(&d));
    airlock_ddi_persist_t p = *airlock_ddi_persist(&d);
    assert_int_equal(p.action_id, 7);
    assert_int_equal(p.phase, AIRLOCK_DDI_PHASE_INSTALLING);
    assert_string_equal(p.version, "1.1.0");
    expect_sleep(&d, 300000);
    /* confirmed at the next boot: success */
    b.confirmed = true;
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "success", NULL);
}

static void test_lost_installing_record_on_trial(void **state)
{
    (void)state;
    airlock_ddi_t d;
    /* a power cut between set-pending and storing INSTALLING; the trial boots */
    airlock_ddi_persist_t p = downloading_7();
    airlock_ddi_boot_t b = boot_on("1.1.0");
    b.confirmed = false;
    start(&d, &p, &b);
    airlock_ddi_persist_dirty(&d);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    /* no verdict on a trial: recorded as installing, reported at the next boot */
    assert_true(airlock_ddi_persist_dirty(&d));
    p = *airlock_ddi_persist(&d);
    assert_int_equal(p.action_id, 7);
    assert_int_equal(p.phase, AIRLOCK_DDI_PHASE_INSTALLING);
    assert_int_equal(p.last_done, 3);
    expect_sleep(&d, 300000);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    expect_sleep(&d, 300000);
    /* the next boot decides: confirmed, success ... */
    b.confirmed = true;
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "success", NULL);
    ok(&d, "");
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    /* ... reverted, failure */
    b = boot_on("1.0.0");
    b.reverted = true;
    snprintf(b.reverted_version, sizeof(b.reverted_version), "1.1.0");
    start(&d, &p, &b);
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "failure",
                    "reverted from 1.1.0");
}

static void test_lost_installing_record_confirmed(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_persist_t p = downloading_7();
    airlock_ddi_boot_t b = boot_on("1.1.0"); /* confirmed (or installed for good) */
    start(&d, &p, &b);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "success",
                    "already running");
    ok(&d, "");
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    expect_sleep(&d, 300000);
}

static void test_refused_closing_feedback_stands(void **state)
{
    (void)state;
    airlock_ddi_t d;
    to_download(&d);
    airlock_ddi_download_done(&d, AIRLOCK_ERR_BAD_SIGNATURE, "image rejected");
    expect_feedback(&d, CTRL "/deploymentBase/7/feedback", "7", "closed", "failure",
                    "image rejected");
    assert_int_equal(answer(&d, 400, "{\"message\":\"bad\"}"), AIRLOCK_ERR_HTTP);
    assert_non_null(strstr(airlock_ddi_error(&d), "HTTP 400"));
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    /* the server offers the same action again: not downloaded again */
    for (int i = 0; i < 2; i++) {
        expect_sleep(&d, 300000);
        expect_get(&d, CTRL);
        ok(&d, POLL_DEPLOY);
        expect_get(&d, DEPLOY_HREF);
        ok(&d, deploy_json("1.1.0"));
    }
    expect_sleep(&d, 300000);

    /* a refused cancel feedback: the cancel stands too */
    to_download(&d);
    airlock_ddi_download_done(&d, AIRLOCK_ERR_NETWORK, NULL);
    expect_sleep(&d, 1000);
    expect_get(&d, CTRL);
    ok(&d, "{\"_links\":{\"cancelAction\":{\"href\":\"" CTRL "/cancelAction/7\"}}}");
    expect_get(&d, CTRL "/cancelAction/7");
    ok(&d, "{\"id\":\"7\",\"cancelAction\":{\"stopId\":\"7\"}}");
    next_req(&d, AIRLOCK_DDI_REQ_ABORT);
    expect_feedback(&d, CTRL "/cancelAction/7/feedback", "7", "closed", "success", NULL);
    assert_int_equal(answer(&d, 422, NULL), AIRLOCK_ERR_HTTP);
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 0);
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 7);
    expect_sleep(&d, 300000);
    expect_get(&d, CTRL);
    ok(&d, POLL_DEPLOY);
    expect_get(&d, DEPLOY_HREF);
    ok(&d, deploy_json("1.1.0"));
    expect_sleep(&d, 300000);

    /* a refused rejection of a cancel keeps the installing action to report */
    airlock_ddi_persist_t p = installing_7();
    airlock_ddi_boot_t b = boot_on("1.1.0");
    b.confirmed = false;
    start(&d, &p, &b);
    expect_get(&d, CTRL);
    ok(&d, "{\"_links\":{\"cancelAction\":{\"href\":\"" CTRL "/cancelAction/7\"}}}");
    expect_get(&d, CTRL "/cancelAction/7");
    ok(&d, "{\"id\":\"7\",\"cancelAction\":{\"stopId\":\"7\"}}");
    expect_feedback(&d, CTRL "/cancelAction/7/feedback", "7", "rejected", "failure", "too late");
    assert_int_equal(answer(&d, 400, NULL), AIRLOCK_ERR_HTTP);
    assert_int_equal(airlock_ddi_persist(&d)->action_id, 7);
    assert_int_equal(airlock_ddi_persist(&d)->phase, AIRLOCK_DDI_PHASE_INSTALLING);
    assert_int_equal(airlock_ddi_persist(&d)->last_done, 3);
}

static void test_cancel_feedback_url_too_long(void **state)
{
    (void)state;
    airlock_ddi_t d;
    airlock_ddi_boot_t b = boot_on("1.0.0");
    char href[400], fb[420], poll[600];
    for (size_t len = 310; len <= 311; len++) {
        start(&d, NULL, &b);
        expect_get(&d, CTRL);
        /* CTRL/xxx...x/cancelAction/7, len characters */
        size_t pad = len - strlen(CTRL "/") - strlen("/cancelAction/7");
        snprintf(href, sizeof(href), "%s/%0*d/cancelAction/7", CTRL, (int)pad, 0);
        assert_int_equal(strlen(href), len);
        snprintf(poll, sizeof(poll), "{\"_links\":{\"cancelAction\":{\"href\":\"%s\"}}}", href);
        if (len == 310) {
            /* 310 + "/feedback" is 319 characters: the longest URL that fits */
            ok(&d, poll);
            expect_get(&d, href);
            ok(&d, "{\"id\":\"7\",\"cancelAction\":{\"stopId\":\"7\"}}");
            snprintf(fb, sizeof(fb), "%s/feedback", href);
            expect_feedback(&d, fb, "7", "closed", "success", NULL);
            ok(&d, "");
        } else {
            /* one more: refused and named, never a truncated URL */
            assert_int_equal(answer(&d, 200, poll), AIRLOCK_ERR_HTTP);
            assert_non_null(strstr(airlock_ddi_error(&d), "_links.cancelAction.href"));
            assert_non_null(strstr(airlock_ddi_error(&d), "too long"));
            expect_sleep(&d, 60000);
            expect_get(&d, CTRL);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_device),
        cmocka_unit_test(test_full_update),
        cmocka_unit_test(test_progress_step),
        cmocka_unit_test(test_after_reboot_success),
        cmocka_unit_test(test_after_revert_failure),
        cmocka_unit_test(test_wrong_version_after_install),
        cmocka_unit_test(test_on_trial_waits_for_verdict),
        cmocka_unit_test(test_install_not_acted_on),
        cmocka_unit_test(test_cancel_during_download),
        cmocka_unit_test(test_resume_same_action),
        cmocka_unit_test(test_cancel_while_installing_rejected),
        cmocka_unit_test(test_already_running),
        cmocka_unit_test(test_download_failure_reported),
        cmocka_unit_test(test_retries_and_backoff),
        cmocka_unit_test(test_stop_on_401),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_too_many_tokens),
        cmocka_unit_test(test_too_long_url),
        cmocka_unit_test(test_sleep_parsing),
        cmocka_unit_test(test_persist_round_trip),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_gone_action),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_deploy_get_failure_polls_again),
        cmocka_unit_test(test_update_skip),
        cmocka_unit_test(test_lost_installing_record_on_trial),
        cmocka_unit_test(test_no_record_target_on_trial),
        cmocka_unit_test(test_lost_installing_record_confirmed),
        cmocka_unit_test(test_refused_closing_feedback_stands),
        cmocka_unit_test(test_cancel_feedback_url_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
