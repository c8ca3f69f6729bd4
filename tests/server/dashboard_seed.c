/*
 * A running update server with a small fleet for the dashboard's browser test
 * (test_dashboard.sh): 30 devices, a campaign finished with failures, one paused
 * by its threshold, device text carrying markup. Seeds through the store and
 * srv_campaign_create only; prints what the pages must show, serves until SIGTERM.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srvtest.h"

#define NDEV 30
#define NPILOT 12
#define HOSTILE "<script>alert(1)</script>"

static st_env_t env;
static int64_t dev_id[NDEV];

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "dashboard_seed: " __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

struct acts {
    store_action_t v[NDEV];
    size_t n;
};

static int add_act(void *ctx, const store_action_t *a)
{
    struct acts *l = ctx;
    if (l->n < NDEV) {
        l->v[l->n++] = *a;
    }
    return 0;
}

/* The campaign's actions of one wave that are offered. */
static void wave_actions(int64_t campaign, unsigned wave, struct acts *out)
{
    struct acts all = {.n = 0};
    store_t *st = env.srv.store;
    CHECK(st->ops->action_list(st, campaign, 0, add_act, &all) == STORE_OK, "action_list");
    out->n = 0;
    for (size_t i = 0; i < all.n; i++) {
        if (all.v[i].wave == wave && all.v[i].state != STORE_ACT_SKIPPED) {
            out->v[out->n++] = all.v[i];
        }
    }
}

/* A feedback message as the device API would record it, at time at. */
static void feedback(const store_action_t *a, int64_t at, const char *execution,
                     const char *finished, int cnt, int of, const char *details_json,
                     const char *details, int to_state)
{
    store_t *st = env.srv.store;
    store_feedback_t f;
    struct tm tm;
    time_t t = (time_t)at;
    memset(&f, 0, sizeof(f));
    f.action_id = a->id;
    f.device_id = a->device_id;
    snprintf(f.execution, sizeof(f.execution), "%s", execution);
    snprintf(f.finished, sizeof(f.finished), "%s", finished);
    f.progress_cnt = cnt;
    f.progress_of = of;
    f.details = (char *)details_json;
    gmtime_r(&t, &tm);
    strftime(f.time, sizeof(f.time), "%Y%m%dT%H%M%S", &tm);
    f.received_at = at;
    CHECK(st->ops->feedback_add(st, &f) == STORE_OK, "feedback_add: %s", st->errmsg);
    CHECK(st->ops->action_set_state(st, a->id, 0, to_state, cnt, of, details, at) == STORE_OK,
          "action_set_state: %s", st->errmsg);
}

/* One device's whole update: proceeding at t_run, closed at t_end. */
static void update(const store_action_t *a, int64_t t_run, int64_t t_end, bool ok,
                   const char *version, const char *fail_json, const char *fail_text)
{
    store_t *st = env.srv.store;
    feedback(a, t_run, "proceeding", "none", 1, 3, "[\"downloading\"]", "downloading",
             STORE_ACT_RUNNING);
    if (ok) {
        feedback(a, t_end, "closed", "success", 3, 3,
                 "[\"installed\",\"rebooted, image confirmed\"]",
                 "installed; rebooted, image confirmed", STORE_ACT_SUCCESS);
        CHECK(st->ops->device_set_version(st, a->device_id, version) == STORE_OK, "set_version");
    } else {
        feedback(a, t_end, "closed", "failure", 2, 3, fail_json, fail_text, STORE_ACT_FAILURE);
    }
}

static void add_devices(int64_t now)
{
    store_t *st = env.srv.store;
    for (int i = 0; i < NDEV; i++) {
        store_device_t d;
        char token[192], attrs[256];
        memset(&d, 0, sizeof(d));
        snprintf(d.controller_id, sizeof(d.controller_id), "dev-%02d", i + 1);
        if (i == 6) {
            snprintf(d.name, sizeof(d.name), "Pump <b>7</b> & \"north\"");
        } else {
            snprintf(d.name, sizeof(d.name), "%s", d.controller_id);
        }
        snprintf(d.version, sizeof(d.version), "%s", i < 24 ? "1.0.0" : "1.1.0");
        snprintf(token, sizeof(token), "token-%s-0123456789", d.controller_id);
        srv_sha256_hex(token, strlen(token), d.token_hash);
        CHECK(st->ops->device_create(st, &d) == STORE_OK, "device_create: %s", st->errmsg);
        dev_id[i] = d.id;
        if (i == 4) {
            snprintf(attrs, sizeof(attrs),
                     "{\"hw\":\"rev-c\",\"site\":\"<img src=x onerror=alert(4)>\",\"slot\":2}");
        } else {
            snprintf(attrs, sizeof(attrs), "{\"hw\":\"rev-%c\",\"site\":\"plant-%d\"}",
                     "abc"[i % 3], 1 + i % 4);
        }
        CHECK(st->ops->device_set_attributes(st, d.id, attrs, NULL) == STORE_OK, "attributes");
        /* 20 devices polled within the last hour, 10 last seen hours ago */
        int64_t last = i < 20 ? now - 60 - i * 80 : now - 2 * 3600 - i * 60;
        int polls = 5 + i % 7;
        for (int k = polls - 1; k >= 0; k--) {
            CHECK(st->ops->device_seen(st, d.id, last - k * 300, true) == STORE_OK, "seen");
        }
    }
}

struct tally {
    char version[8][STORE_VERSION_MAX];
    int64_t n[8];
    size_t nv;
    int64_t devices, recent, since;
};

static int tally_device(void *ctx, const store_device_t *d)
{
    struct tally *t = ctx;
    size_t i;
    t->devices++;
    t->recent += d->last_seen >= t->since;
    for (i = 0; i < t->nv && strcmp(t->version[i], d->version) != 0; i++) {
    }
    if (i == t->nv && t->nv < 8) {
        snprintf(t->version[t->nv++], STORE_VERSION_MAX, "%s", d->version);
    }
    if (i < 8) {
        t->n[i]++;
    }
    return 0;
}

static void print_campaign(int64_t id)
{
    store_t *st = env.srv.store;
    store_campaign_t c;
    store_counts_t n;
    CHECK(st->ops->campaign_get(st, id, &c) == STORE_OK, "campaign_get");
    CHECK(st->ops->action_counts(st, id, -1, &n) == STORE_OK, "action_counts");
    printf("campaign %s %s %" PRId64 " %" PRId64 " %" PRId64 "\n", c.name,
           store_campaign_state_name(c.state), n.n[STORE_ACT_SUCCESS], n.n[STORE_ACT_FAILURE],
           n.n[STORE_ACT_OFFERED] + n.n[STORE_ACT_RUNNING] + n.n[STORE_ACT_CANCELLING]);
}

int main(void)
{
    sigset_t set;
    int sig;
    char token[33], hash[65];
    static const uint8_t blob11[] = "firmware 1.1.0 payload", blob12[] = "firmware 1.2.0 payload";
    signal(SIGPIPE, SIG_IGN);
    /* the server's threads inherit the mask, so only sigwait below sees these */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    CHECK(st_start(&env, "00:01:00", false) == 0, "cannot start the server");
    store_t *s = env.srv.store;
    int64_t now = srv_now();

    CHECK(srv_token_new(token) == 0, "token");
    srv_sha256_hex(token, strlen(token), hash);
    CHECK(s->ops->setting_set(s, "operator_token_sha256", hash) == STORE_OK, "setting");
    add_devices(now);
    int64_t a11 = st_add_artifact(&env, "fw-1.1.0.bin", "1.1.0", blob11, sizeof(blob11));
    int64_t a12 = st_add_artifact(&env, "fw-1.2.0.bin", "1.2.0", blob12, sizeof(blob12));
    CHECK(a11 > 0 && a12 > 0, "artifacts");
    int64_t pilot = st_add_group(&env, "pilot", dev_id, NPILOT);
    CHECK(pilot > 0, "group");

    /*
     * The feedback times lie after the campaign's creation (now), spread over
     * minutes, so the rollout chart has a time axis to draw. The campaign
     * lock keeps the ticker from moving a campaign on while it is seeded.
     */
    static const unsigned waves[] = {25, 100};
    int64_t spring = st_add_campaign(&env, "spring-rollout", a11, 0, waves, 2, 25);
    CHECK(spring > 0, "campaign spring-rollout");
    struct acts w;
    pthread_mutex_lock(&env.srv.campaign_lock);
    wave_actions(spring, 0, &w);
    CHECK(w.n == 6, "spring-rollout wave 1 has %zu devices", w.n);
    for (size_t k = 0; k < w.n; k++) {
        update(&w.v[k], now + 60 + (int64_t)k * 20, now + 240 + (int64_t)k * 30, k != 2, "1.1.0",
               "[\"download complete\",\"install failed: flash write error at 0x08020000\"]",
               "download complete; install failed: flash write error at 0x08020000");
    }
    CHECK(s->ops->action_offer_wave(s, spring, 1, now + 600) == STORE_OK, "offer wave 2");
    wave_actions(spring, 1, &w);
    CHECK(w.n == 18, "spring-rollout wave 2 has %zu devices", w.n);
    for (size_t k = 0; k < w.n; k++) {
        update(&w.v[k], now + 660 + (int64_t)k * 15, now + 900 + (int64_t)k * 25, k != 4 && k != 11,
               "1.1.0", "[\"image rejected: signature check failed\"]",
               "image rejected: signature check failed");
    }
    pthread_mutex_unlock(&env.srv.campaign_lock);
    srv_campaign_tick(&env.srv, spring);

    int64_t summer = st_add_campaign(&env, "summer-hotfix", a12, pilot, waves, 2, 20);
    CHECK(summer > 0, "campaign summer-hotfix");
    pthread_mutex_lock(&env.srv.campaign_lock);
    wave_actions(summer, 0, &w);
    CHECK(w.n == 3, "summer-hotfix wave 1 has %zu devices", w.n);
    update(&w.v[0], now + 120, now + 300, true, "1.2.0", NULL, NULL);
    update(&w.v[1], now + 150, now + 330, false, "1.2.0",
           "[\"verifying image\",\"" HOSTILE "\",\"rolled back\"]",
           "verifying image; " HOSTILE "; rolled back");
    feedback(&w.v[2], now + 180, "proceeding", "none", 2, 5, "[\"downloading: 40%\"]",
             "downloading: 40%", STORE_ACT_RUNNING);
    store_device_t hostile;
    CHECK(s->ops->device_get(s, w.v[1].device_id, &hostile) == STORE_OK, "device_get");
    store_device_clear(&hostile);
    pthread_mutex_unlock(&env.srv.campaign_lock);
    srv_campaign_tick(&env.srv, summer);

    struct tally t = {.nv = 0, .since = srv_now() - 3600};
    CHECK(s->ops->device_list(s, 0, tally_device, &t) == STORE_OK, "device_list");
    printf("port %u\ntoken %s\ndir %s\ndevices %" PRId64 "\nseen_last_hour %" PRId64 "\n",
           (unsigned)srv_port(&env.srv), token, env.dir, t.devices, t.recent);
    for (size_t i = 0; i < t.nv; i++) {
        printf("version %s %" PRId64 "\n", t.version[i], t.n[i]);
    }
    print_campaign(spring);
    print_campaign(summer);
    printf("hostile %s\nnamed dev-07\nready\n", hostile.controller_id);
    fflush(stdout);

    sigwait(&set, &sig);
    st_stop(&env, true);
    return 0;
}
