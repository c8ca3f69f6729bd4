/*
 * The DDI client end to end: airlock_ddi_http_run (agent/ddi_http.c) against
 * the real update server (in process, HTTPS with a test CA) on a test device
 * (RAM sim flash, swap-2n, the real bootloader core): configData, an update
 * downloaded, set pending, installed by airlock_boot and reported; an
 * untrusted image reported as a failure; a cancel. Time is compressed: every
 * sleep the machine asks for returns at once.
 */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "airlock/crypto_openssl.h"
#include "airlock/ddi.h"
#include "airlock/ddi_http.h"
#include "airlock/download.h"
#include "airlock/ota.h"
#include "imgbuild.h"
#include "srvtest.h"
#include "testdev.h"

#define SLOT_SECTORS 48u
#define CID "e2e-dev-1"
#define TOKEN "token-e2e-0123456789abcdef"

static st_env_t env;
static tu_key_t key;       /* trusted by the device */
static tu_key_t other_key; /* not trusted */

/* The device: flash, its persist record "in flash", this boot's machine. */
struct device {
    td_dev_t td;
    uint8_t record[AIRLOCK_DDI_PERSIST_LEN];
    bool has_record;
    unsigned stores;
    airlock_ddi_cfg_t cfg;
    airlock_ddi_t ddi;
    airlock_ddi_http_stats_t stats;
    unsigned sleeps;
    unsigned sleep_limit;  /* stop at this many sleeps */
    bool stop_on_download; /* stop as soon as a download starts */
    bool stop_on_verified; /* stop as soon as a download is verified */
    bool no_store;         /* run without hooks.store (the caller stores) */
    bool downloading;
    bool verified;
    char log[8192];
};

static int store_record(void *ctx, const airlock_ddi_persist_t *p)
{
    struct device *dv = ctx;
    airlock_ddi_persist_encode(p, dv->record);
    dv->has_record = true;
    dv->stores++;
    return 0;
}

static int fake_sleep(void *ctx, uint32_t ms)
{
    struct device *dv = ctx;
    (void)ms;
    return ++dv->sleeps >= dv->sleep_limit;
}

static int stop_now(void *ctx)
{
    struct device *dv = ctx;
    return (dv->stop_on_download && dv->downloading) || (dv->stop_on_verified && dv->verified);
}

static void log_line(void *ctx, const char *line)
{
    struct device *dv = ctx;
    size_t n = strlen(dv->log);
    if (strstr(line, "ddi: downloading")) {
        dv->downloading = true;
    }
    if (strstr(line, "ddi: download verified")) {
        dv->verified = true;
    }
    if (getenv("AIRLOCK_TEST_VERBOSE")) {
        fprintf(stderr, "  [dev] %s\n", line);
    }
    snprintf(dv->log + n, sizeof(dv->log) - n, "%s\n", line);
}

static const airlock_ddi_http_opts_t *opts(void)
{
    static airlock_ddi_http_opts_t o;
    memset(&o, 0, sizeof(o));
    o.ca_file = env.ca_file;
    o.connect_timeout_ms = 3000;
    o.request_timeout_ms = 5000;
    o.dl_max_attempts = 2;
    o.dl_backoff_ms = 10;
    o.seed = 1;
    return &o;
}

/*
 * A boot of the device: the bootloader runs, the firmware confirms (healthy)
 * or not, then the DDI machine starts from the stored record and the boot's
 * facts. Returns the bootloader's action.
 */
static int boot(struct device *dv, bool healthy)
{
    airlock_boot_t b;
    airlock_boot_result_t res;
    assert_int_equal(airlock_boot(&b, &dv->td.cfg, &res), 0);
    if (getenv("AIRLOCK_TEST_VERBOSE")) {
        fprintf(stderr, "  [boot] %s: %s\n", airlock_boot_action_name(res.action), res.message);
    }
    if (healthy) {
        assert_int_equal(airlock_ota_confirm(&dv->td.cfg), 0);
    }
    airlock_ddi_boot_t facts;
    assert_int_equal(airlock_ddi_boot_from_ota(&dv->td.cfg, &facts), 0);
    airlock_ddi_persist_t p;
    memset(&p, 0, sizeof(p));
    if (dv->has_record) {
        assert_int_equal(airlock_ddi_persist_decode(dv->record, &p), 0);
    }
    dv->cfg = (airlock_ddi_cfg_t){
        .base_url = env.base,
        .tenant = "DEFAULT",
        .controller_id = CID,
        .auth = "TargetToken " TOKEN,
        .retry_ms = 10,
        .default_poll_ms = 1000,
    };
    assert_int_equal(airlock_ddi_init(&dv->ddi, &dv->cfg, &p, &facts), 0);
    dv->log[0] = '\0';
    return res.action;
}

/* Run the driver until it stops after `sleeps` sleeps (or installs). */
static int run(struct device *dv, unsigned sleeps)
{
    airlock_ddi_http_hooks_t hooks = {
        .store = dv->no_store ? NULL : store_record,
        .sleep = fake_sleep,
        .stop = stop_now,
        .log = log_line,
        .ctx = dv,
        .stats = &dv->stats,
    };
    dv->sleeps = 0;
    dv->sleep_limit = sleeps;
    dv->downloading = dv->verified = false;
    return airlock_ddi_http_run(&dv->ddi, &dv->td.cfg, opts(), &hooks);
}

static store_device_t server_device(void)
{
    store_device_t d;
    assert_int_equal(env.srv.store->ops->device_by_controller(env.srv.store, CID, &d), STORE_OK);
    return d;
}

static int copy_action(void *ctx, const store_action_t *a)
{
    *(store_action_t *)ctx = *a;
    return 0;
}

static store_action_t server_action(int64_t campaign)
{
    store_action_t a;
    memset(&a, 0, sizeof(a));
    store_device_t d = server_device();
    assert_int_equal(
        env.srv.store->ops->action_list(env.srv.store, campaign, d.id, copy_action, &a), STORE_OK);
    store_device_clear(&d);
    return a;
}

static int64_t campaign_for(const char *name, const char *version, const uint8_t *img, size_t len)
{
    int64_t art = st_add_artifact(&env, name, version, img, len);
    assert_true(art > 0);
    store_device_t d = server_device();
    int64_t dev = d.id;
    store_device_clear(&d);
    char gname[64];
    snprintf(gname, sizeof(gname), "g-%s", name);
    int64_t g = st_add_group(&env, gname, &dev, 1);
    assert_true(g > 0);
    const unsigned w100[] = {100};
    int64_t c = st_add_campaign(&env, name, art, g, w100, 1, 100);
    assert_true(c > 0);
    return c;
}

static void expect_log(struct device *dv, const char *text)
{
    if (!strstr(dv->log, text)) {
        fail_msg("log lacks \"%s\":\n%s", text, dv->log);
    }
}

static void test_update_cycle(void **state)
{
    (void)state;
    struct device *dv = calloc(1, sizeof(*dv));
    assert_non_null(dv);
    assert_int_equal(td_open(&dv->td, &airlock_engine_swap_2n, &airlock_crypto_openssl, &key.pub, 8,
                             SLOT_SECTORS),
                     0);
    size_t len;
    uint8_t *v1 = td_image(1, 0, 40000, 1, 0, 0, &key, &len);
    assert_non_null(v1);
    assert_int_equal(td_put_primary(&dv->td, v1, len), 0);
    free(v1);
    assert_true(st_add_device(&env, CID, TOKEN, NULL) > 0);

    /* 1. first boot: configData makes the device's version known to the server */
    boot(dv, true);
    assert_int_equal(run(dv, 1), AIRLOCK_DDI_HTTP_STOPPED);
    expect_log(dv, "ddi: PUT");
    store_device_t sd = server_device();
    assert_string_equal(sd.version, "1.0.0");
    assert_non_null(sd.attributes);
    store_device_clear(&sd);
    assert_true(dv->has_record);
    assert_int_equal(dv->stats.failures, 0);
    assert_int_equal(dv->stats.last_status, 200);

    /* 2. a campaign to 1.1.0: downloaded, verified, set pending */
    uint8_t *v11 = td_image(1, 1, 60000, 2, 0, 0, &key, &len);
    int64_t c1 = campaign_for("fw-1.1.0.img", "1.1.0", v11, len);
    free(v11);
    /* stopped once verified, then run without a store hook: the request names the artifact */
    dv->stop_on_verified = true;
    assert_int_equal(run(dv, 3), AIRLOCK_DDI_HTTP_STOPPED);
    dv->stop_on_verified = false;
    assert_int_equal(dv->stats.downloads, 1);
    assert_int_equal(dv->stats.last_download_err, 0);
    assert_true(dv->stats.received >= len);
    dv->no_store = true;
    int rc;
    while ((rc = run(dv, 3)) == AIRLOCK_DDI_HTTP_PERSIST) {
        store_record(dv, airlock_ddi_persist(&dv->ddi));
    }
    dv->no_store = false;
    assert_int_equal(rc, AIRLOCK_DDI_HTTP_INSTALL);
    assert_int_equal(dv->stats.downloads, 2); /* found whole in the slot, verified again */
    assert_int_equal(dv->stats.last_download_err, 0);
    assert_true(airlock_ddi_persist_dirty(&dv->ddi)); /* the caller stores the install */
    store_record(dv, airlock_ddi_persist(&dv->ddi));
    expect_log(dv, "installed as a trial");
    airlock_ddi_persist_t p;
    assert_int_equal(airlock_ddi_persist_decode(dv->record, &p), 0);
    assert_int_equal(p.phase, AIRLOCK_DDI_PHASE_INSTALLING);
    assert_string_equal(p.version, "1.1.0");
    store_action_t a = server_action(c1);
    assert_int_equal(a.state, STORE_ACT_RUNNING);
    assert_true(a.progress_cnt > 0 || strstr(a.details, "installing"));

    /* 3. reboot: the bootloader installs it, the firmware confirms, success is reported */
    assert_int_equal(boot(dv, true), AIRLOCK_BOOT_INSTALLED);
    assert_int_equal(run(dv, 1), AIRLOCK_DDI_HTTP_STOPPED);
    a = server_action(c1);
    if (a.state != STORE_ACT_SUCCESS) {
        fail_msg("action state %d, details %s; log:\n%s", a.state, a.details, dv->log);
    }
    sd = server_device();
    assert_string_equal(sd.version, "1.1.0");
    store_device_clear(&sd);
    assert_int_equal(airlock_ddi_persist_decode(dv->record, &p), 0);
    assert_int_equal(p.phase, AIRLOCK_DDI_PHASE_NONE);
    assert_int_equal(p.last_done, a.id);

    /* 4. an image signed by an untrusted key: refused, reported with the reason */
    uint8_t *bad = td_image(1, 2, 30000, 3, 0, 0, &other_key, &len);
    int64_t c2 = campaign_for("fw-1.2.0.img", "1.2.0", bad, len);
    free(bad);
    assert_int_equal(run(dv, 2), AIRLOCK_DDI_HTTP_STOPPED);
    assert_int_equal(dv->stats.last_download_err, AIRLOCK_ERR_UNKNOWN_KEY);
    a = server_action(c2);
    if (a.state != STORE_ACT_FAILURE || !strstr(a.details, "UNKNOWN_KEY")) {
        fail_msg("action state %d, details %s; log:\n%s", a.state, a.details, dv->log);
    }
    sd = server_device();
    assert_string_equal(sd.version, "1.1.0");
    store_device_clear(&sd);

    /* 5. a cancel: the download is interrupted, the operator cancels, the device agrees */
    uint8_t *v13 = td_image(1, 3, 60000, 4, 0, 0, &key, &len);
    int64_t c3 = campaign_for("fw-1.3.0.img", "1.3.0", v13, len);
    free(v13);
    dv->stop_on_download = true;
    assert_int_equal(run(dv, 5), AIRLOCK_DDI_HTTP_STOPPED);
    dv->stop_on_download = false;
    assert_int_equal(dv->stats.last_download_err, AIRLOCK_ERR_CANCELLED);
    assert_int_equal(airlock_ddi_persist_decode(dv->record, &p), 0);
    assert_int_equal(p.phase, AIRLOCK_DDI_PHASE_DOWNLOADING);
    assert_int_equal(srv_campaign_cancel(&env.srv, c3, "operator"), STORE_OK);
    assert_int_equal(run(dv, 2), AIRLOCK_DDI_HTTP_STOPPED);
    expect_log(dv, "cancelled: download abandoned");
    a = server_action(c3);
    if (a.state != STORE_ACT_CANCELLED) {
        fail_msg("action state %d, details %s; log:\n%s", a.state, a.details, dv->log);
    }
    assert_int_equal(airlock_ddi_persist_decode(dv->record, &p), 0);
    assert_int_equal(p.phase, AIRLOCK_DDI_PHASE_NONE);
    assert_int_equal(p.action_id, 0);

    /* 6. nothing more to do: polls only, and no failure among them */
    unsigned fails = dv->stats.failures;
    assert_int_equal(run(dv, 2), AIRLOCK_DDI_HTTP_STOPPED);
    assert_int_equal(dv->stats.failures, fails);

    /*
     * 7. an update that never gets confirmed: no verdict while on trial, then
     * the bootloader reverts it and the failure names the revert
     */
    uint8_t *v14 = td_image(1, 4, 50000, 5, 0, 0, &key, &len);
    int64_t c4 = campaign_for("fw-1.4.0.img", "1.4.0", v14, len);
    free(v14);
    assert_int_equal(run(dv, 3), AIRLOCK_DDI_HTTP_INSTALL);
    int act = boot(dv, false); /* it crashes before confirming */
    if (act == AIRLOCK_BOOT_NORMAL) {
        /*
         * The bootloader resolved the confirmed trial of 1.1.0 this boot and
         * left the request for the next one: the machine asks for the reboot
         * again instead of reporting a failure.
         */
        assert_int_equal(run(dv, 1), AIRLOCK_DDI_HTTP_INSTALL);
        expect_log(dv, "1.4.0 is still pending: reboot");
        assert_int_equal(server_action(c4).state, STORE_ACT_RUNNING);
        act = boot(dv, false);
    }
    assert_int_equal(act, AIRLOCK_BOOT_INSTALLED);
    assert_int_equal(run(dv, 1), AIRLOCK_DDI_HTTP_STOPPED);
    assert_int_equal(server_action(c4).state, STORE_ACT_RUNNING);
    assert_int_equal(boot(dv, false), AIRLOCK_BOOT_REVERTED);
    assert_int_equal(run(dv, 1), AIRLOCK_DDI_HTTP_STOPPED);
    a = server_action(c4);
    if (a.state != STORE_ACT_FAILURE || !strstr(a.details, "reverted from 1.4.0") ||
        !strstr(a.details, "running 1.1.0")) {
        fail_msg("action state %d, details %s; log:\n%s", a.state, a.details, dv->log);
    }
    sd = server_device();
    assert_string_equal(sd.version, "1.1.0");
    store_device_clear(&sd);
    td_close(&dv->td);
    free(dv);
}

/* A wrong token: the machine stops retrying quickly and says why. */
static void test_refused_token(void **state)
{
    (void)state;
    struct device *dv = calloc(1, sizeof(*dv));
    assert_non_null(dv);
    assert_int_equal(td_open(&dv->td, &airlock_engine_swap_2n, &airlock_crypto_openssl, &key.pub, 8,
                             SLOT_SECTORS),
                     0);
    size_t len;
    uint8_t *v1 = td_image(1, 0, 20000, 1, 0, 0, &key, &len);
    assert_int_equal(td_put_primary(&dv->td, v1, len), 0);
    free(v1);
    boot(dv, true);
    dv->cfg.auth = "TargetToken wrong-token";
    assert_int_equal(airlock_ddi_init(&dv->ddi, &dv->cfg, NULL,
                                      &(airlock_ddi_boot_t){.running_version = "1.0.0"}),
                     0);
    assert_int_equal(run(dv, 2), AIRLOCK_DDI_HTTP_STOPPED);
    assert_non_null(strstr(airlock_ddi_error(&dv->ddi), "HTTP 401"));
    expect_log(dv, "-> 401");
    assert_int_equal(dv->stats.last_status, 401);
    td_close(&dv->td);
    free(dv);
}

static int setup(void **state)
{
    (void)state;
    if (tu_key_load(&key, AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ed25519.pem") != 0 ||
        tu_key_new(&other_key) != 0 || airlock_download_global_init() != 0) {
        return -1;
    }
    return st_start(&env, "00:00:01", false);
}

static int teardown(void **state)
{
    (void)state;
    st_stop(&env, true);
    tu_key_free(&key);
    tu_key_free(&other_key);
    airlock_download_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_cycle),
        cmocka_unit_test(test_refused_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
