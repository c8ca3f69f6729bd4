/*
 * The update server's store (server/store.h) on its SQLite backend, on a
 * database file in a fresh temporary directory per test: every op's normal
 * path and errors, list walks longer than one chunk, transactions and their
 * exclusion of other threads, concurrent writers, survival of kill -9, the
 * memo of poll reads never answering with a row older than the last write,
 * and a throughput figure (printed, not asserted).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "store_memo.h"

#define OK(x) assert_int_equal((x), STORE_OK)
#define ERR(x, e) assert_int_equal((x), (e))

struct fx {
    char dir[64];
    char path[128];
    store_t *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/airlock-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    OK(store_sqlite_open(f->path, &f->s));
    *state = f;
    return 0;
}

static void remove_db(const struct fx *f)
{
    char p[160];
    const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
        unlink(p);
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->s)
        f->s->ops->close(f->s);
    remove_db(f);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    f->s->ops->close(f->s);
    f->s = NULL;
    OK(store_sqlite_open(f->path, &f->s));
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t mk_device(store_t *s, const char *cid)
{
    store_device_t d = {0};
    snprintf(d.controller_id, sizeof d.controller_id, "%s", cid);
    OK(s->ops->device_create(s, &d));
    assert_true(d.id > 0);
    return d.id;
}

static int64_t mk_artifact(store_t *s, const char *name)
{
    store_artifact_t a = {.kind = STORE_ART_IMAGE, .size = 1234};
    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.version, sizeof a.version, "1.2.3");
    memset(a.sha256, 'a', 64);
    memset(a.sha1, 'b', 40);
    memset(a.md5, 'c', 32);
    OK(s->ops->artifact_create(s, &a));
    return a.id;
}

static int64_t mk_campaign(store_t *s, const char *name, int64_t artifact, int state)
{
    store_campaign_t c = {.artifact_id = artifact,
                          .nwaves = 3,
                          .waves = {10, 50, 100},
                          .failure_pct = 5,
                          .state = state};
    snprintf(c.name, sizeof c.name, "%s", name);
    OK(s->ops->campaign_create(s, &c));
    return c.id;
}

static int64_t mk_action(store_t *s, int64_t campaign, int64_t device, unsigned wave, int state)
{
    store_action_t a = {.campaign_id = campaign, .device_id = device, .wave = wave, .state = state};
    OK(s->ops->action_create(s, &a));
    assert_true(a.id > 0);
    return a.id;
}

/* ---- collectors for list callbacks ---------------------------------------------- */

struct ids {
    int64_t id[1024];
    size_t n;
    size_t stop_at; /* 0: never stop */
};

static int collect_device(void *ctx, const store_device_t *d)
{
    struct ids *c = ctx;
    assert_true(c->n < 1024);
    c->id[c->n++] = d->id;
    return c->stop_at && c->n >= c->stop_at;
}

static int collect_group(void *ctx, const store_group_t *g)
{
    struct ids *c = ctx;
    c->id[c->n++] = g->id;
    return 0;
}

static int collect_artifact(void *ctx, const store_artifact_t *a)
{
    struct ids *c = ctx;
    c->id[c->n++] = a->id;
    return 0;
}

static int collect_campaign(void *ctx, const store_campaign_t *cp)
{
    struct ids *c = ctx;
    c->id[c->n++] = cp->id;
    return 0;
}

static int collect_action(void *ctx, const store_action_t *a)
{
    struct ids *c = ctx;
    assert_true(c->n < 1024);
    c->id[c->n++] = a->id;
    return 0;
}

struct trs {
    store_transition_t t[1024];
    size_t n;
};

static int collect_transition(void *ctx, const store_transition_t *t)
{
    struct trs *c = ctx;
    assert_true(c->n < 1024);
    c->t[c->n++] = *t;
    return 0;
}

/* ---- names ------------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(store_errname(STORE_OK), "OK");
    assert_string_equal(store_errname(STORE_NOT_FOUND), "NOT_FOUND");
    assert_string_equal(store_errname(STORE_CONFLICT), "CONFLICT");
    assert_string_equal(store_errname(-99), "UNKNOWN");
    assert_string_equal(store_campaign_state_name(STORE_CAMP_SCHEDULED), "scheduled");
    assert_string_equal(store_campaign_state_name(STORE_CAMP_FINISHED), "finished");
    assert_string_equal(store_campaign_state_name(0), "unknown");
    for (int st = STORE_ACT_PENDING; st <= STORE_ACT_SKIPPED; st++)
        assert_int_equal(store_action_state_parse(store_action_state_name(st)), st);
    assert_string_equal(store_action_state_name(STORE_ACT_CANCELLING), "cancelling");
    assert_int_equal(store_action_state_parse("Running"), 0);
    assert_int_equal(store_action_state_parse(NULL), 0);
    store_device_t d = {.attributes = strdup("{}")};
    store_device_clear(&d);
    assert_null(d.attributes);
    store_device_clear(&d);
    store_device_clear(NULL);
}

/* ---- open and schema ------------------------------------------------------------ */

static void test_open_schema(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    char v[16];
    assert_string_equal(s->ops->name, "sqlite");
    OK(s->ops->setting_get(s, "schema_version", v, sizeof v));
    assert_string_equal(v, "1");
    ERR(s->ops->setting_set(s, "schema_version", "2"), STORE_INVAL);
    reopen(f); /* an existing version-1 file opens as is */
    OK(f->s->ops->setting_get(f->s, "schema_version", v, sizeof v));
    assert_string_equal(v, "1");

    store_t *x = (store_t *)1;
    ERR(store_sqlite_open(NULL, &x), STORE_INVAL);
    assert_null(x);
    ERR(store_sqlite_open(f->path, NULL), STORE_INVAL);
    char bad[192];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", f->dir);
    ERR(store_sqlite_open(bad, &x), STORE_IO);

    /* A file from a later server version is refused, not half-used. */
    f->s->ops->close(f->s);
    f->s = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE settings SET value = '2' WHERE key = 'schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ERR(store_sqlite_open(f->path, &x), STORE_IO);
    assert_null(x);
}

/* ---- devices ------------------------------------------------------------------ */

static void test_devices(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;

    store_device_t d = {0};
    snprintf(d.controller_id, sizeof d.controller_id, "dev-1");
    snprintf(d.token_hash, sizeof d.token_hash, "%064d", 7);
    OK(o->device_create(s, &d));
    assert_true(d.id > 0);
    assert_string_equal(d.name, "dev-1"); /* defaults to the controller id */
    assert_true(d.created_at > 0);
    ERR(o->device_create(s, &d), STORE_EXISTS);

    store_device_t e = {.created_at = 1000};
    snprintf(e.controller_id, sizeof e.controller_id, "dev-2");
    snprintf(e.name, sizeof e.name, "kitchen");
    OK(o->device_create(s, &e));
    assert_true(e.id > d.id);

    /* names: empty, at the limit, over it */
    store_device_t bad = {0};
    ERR(o->device_create(s, &bad), STORE_INVAL);
    memset(bad.controller_id, 'x', STORE_NAME_MAX - 1);
    OK(o->device_create(s, &bad));
    memset(bad.controller_id, 'y', STORE_NAME_MAX); /* no NUL inside the field */
    ERR(o->device_create(s, &bad), STORE_INVAL);
    char longname[STORE_NAME_MAX + 8];
    memset(longname, 'z', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    store_device_t g;
    ERR(o->device_by_controller(s, longname, &g), STORE_INVAL);
    ERR(o->device_by_controller(s, "", &g), STORE_INVAL);
    ERR(o->device_by_controller(s, "nobody", &g), STORE_NOT_FOUND);
    assert_null(g.attributes);
    ERR(o->device_get(s, 999999, &g), STORE_NOT_FOUND);

    OK(o->device_get(s, e.id, &g));
    assert_string_equal(g.controller_id, "dev-2");
    assert_string_equal(g.name, "kitchen");
    assert_string_equal(g.token_hash, "");
    assert_string_equal(g.version, "");
    assert_null(g.attributes);
    assert_int_equal(g.created_at, 1000);
    assert_int_equal(g.last_seen, 0);
    assert_int_equal(g.polls, 0);
    store_device_clear(&g);

    OK(o->device_by_controller(s, "dev-1", &g));
    assert_int_equal(g.id, d.id);
    assert_string_equal(g.token_hash, d.token_hash);
    store_device_clear(&g);

    /* token */
    OK(o->device_set_token(s, e.id, "abcdef"));
    char toolong[80];
    memset(toolong, 'f', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    ERR(o->device_set_token(s, e.id, toolong), STORE_INVAL);
    ERR(o->device_set_token(s, 999999, "ab"), STORE_NOT_FOUND);
    OK(o->device_get(s, e.id, &g));
    assert_string_equal(g.token_hash, "abcdef");
    store_device_clear(&g);
    OK(o->device_by_token(s, "abcdef", &g));
    assert_int_equal(g.id, e.id);
    store_device_clear(&g);
    OK(o->device_by_token(s, d.token_hash, &g));
    assert_int_equal(g.id, d.id);
    store_device_clear(&g);
    ERR(o->device_by_token(s, "abcdee", &g), STORE_NOT_FOUND);
    ERR(o->device_by_token(s, "", &g), STORE_INVAL); /* "no token" finds nobody */
    ERR(o->device_by_token(s, toolong, &g), STORE_INVAL);
    OK(o->device_set_token(s, e.id, NULL)); /* NULL clears */
    ERR(o->device_by_token(s, "abcdef", &g), STORE_NOT_FOUND);
    OK(o->device_get(s, e.id, &g));
    assert_string_equal(g.token_hash, "");
    store_device_clear(&g);

    /* seen: polls count only polls */
    OK(o->device_seen(s, d.id, 5000, true));
    OK(o->device_seen(s, d.id, 5001, true));
    OK(o->device_seen(s, d.id, 5002, false));
    ERR(o->device_seen(s, 999999, 5003, true), STORE_NOT_FOUND);
    OK(o->device_get(s, d.id, &g));
    assert_int_equal(g.last_seen, 5002);
    assert_int_equal(g.polls, 2);
    store_device_clear(&g);

    /* attributes round trip (UTF-8, quotes), version only when given */
    const char *json = "{\"hw\":\"rev-\xc3\xa9\",\"note\":\"it's \\\"quoted\\\"; DROP TABLE x\"}";
    OK(o->device_set_attributes(s, d.id, json, "2.0.0"));
    OK(o->device_get(s, d.id, &g));
    assert_non_null(g.attributes);
    assert_string_equal(g.attributes, json);
    assert_string_equal(g.version, "2.0.0");
    store_device_clear(&g);
    OK(o->device_set_attributes(s, d.id, "{\"a\":1}", NULL));
    OK(o->device_get(s, d.id, &g));
    assert_string_equal(g.attributes, "{\"a\":1}");
    assert_string_equal(g.version, "2.0.0");
    store_device_clear(&g);
    char longver[STORE_VERSION_MAX + 1];
    memset(longver, '1', STORE_VERSION_MAX);
    longver[STORE_VERSION_MAX] = '\0';
    ERR(o->device_set_attributes(s, d.id, "{}", longver), STORE_INVAL);
    ERR(o->device_set_attributes(s, 999999, "{}", NULL), STORE_NOT_FOUND);

    OK(o->device_set_version(s, d.id, "2.1.0"));
    ERR(o->device_set_version(s, d.id, longver), STORE_INVAL);
    ERR(o->device_set_version(s, 999999, "1"), STORE_NOT_FOUND);
    OK(o->device_by_controller(s, "dev-1", &g));
    assert_string_equal(g.version, "2.1.0");
    assert_string_equal(g.attributes, "{\"a\":1}");
    store_device_clear(&g);

    int64_t n = -1;
    OK(o->device_count(s, &n));
    assert_int_equal(n, 3);
}

/* ---- groups and device lists ----------------------------------------------------- */

static void test_groups(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;

    int64_t dev[5];
    for (int i = 0; i < 5; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "g-dev-%d", i);
        dev[i] = mk_device(s, cid);
    }
    store_group_t g = {0};
    snprintf(g.name, sizeof g.name, "lab");
    OK(o->group_create(s, &g));
    assert_true(g.id > 0);
    ERR(o->group_create(s, &g), STORE_EXISTS);
    store_group_t h = {0};
    ERR(o->group_create(s, &h), STORE_INVAL);
    memset(h.name, 'n', sizeof h.name);
    ERR(o->group_create(s, &h), STORE_INVAL);
    snprintf(h.name, sizeof h.name, "field");
    OK(o->group_create(s, &h));

    OK(o->group_add(s, g.id, dev[3]));
    OK(o->group_add(s, g.id, dev[1]));
    OK(o->group_add(s, g.id, dev[1])); /* idempotent */
    OK(o->group_add(s, h.id, dev[1]));
    ERR(o->group_add(s, g.id, 999999), STORE_NOT_FOUND);
    ERR(o->group_add(s, 999999, dev[0]), STORE_NOT_FOUND);

    store_group_t r;
    OK(o->group_by_name(s, "lab", &r));
    assert_int_equal(r.id, g.id);
    assert_int_equal(r.devices, 2);
    OK(o->group_get(s, h.id, &r));
    assert_string_equal(r.name, "field");
    assert_int_equal(r.devices, 1);
    ERR(o->group_get(s, 999999, &r), STORE_NOT_FOUND);
    ERR(o->group_by_name(s, "nope", &r), STORE_NOT_FOUND);
    ERR(o->group_by_name(s, "", &r), STORE_INVAL);

    struct ids c = {0};
    OK(o->group_list(s, collect_group, &c));
    assert_int_equal(c.n, 2);
    assert_int_equal(c.id[0], g.id);
    assert_int_equal(c.id[1], h.id);

    memset(&c, 0, sizeof c);
    OK(o->device_list(s, g.id, collect_device, &c)); /* members only, by id */
    assert_int_equal(c.n, 2);
    assert_int_equal(c.id[0], dev[1]);
    assert_int_equal(c.id[1], dev[3]);

    memset(&c, 0, sizeof c);
    OK(o->device_list(s, 0, collect_device, &c));
    assert_int_equal(c.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(c.id[i], dev[i]);

    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    OK(o->device_list(s, 0, collect_device, &c));
    assert_int_equal(c.n, 2);

    memset(&c, 0, sizeof c);
    OK(o->device_list(s, 999999, collect_device, &c));
    assert_int_equal(c.n, 0);
    ERR(o->device_list(s, -1, collect_device, &c), STORE_INVAL);
    ERR(o->device_list(s, 0, NULL, &c), STORE_INVAL);
}

/*
 * A list longer than one chunk: every row once, in order, with a callback
 * that writes to the rows being walked (and reads another list meanwhile).
 */
struct walker {
    store_t *s;
    int64_t last;
    size_t n;
    int attr_ok;
};

static int touch_device(void *ctx, const store_device_t *d)
{
    struct walker *w = ctx;
    assert_true(d->id > w->last);
    w->last = d->id;
    w->n++;
    if (d->attributes && strcmp(d->attributes, "{\"n\":1}") == 0)
        w->attr_ok++;
    OK(w->s->ops->device_set_attributes(w->s, d->id, "{\"touched\":true}", "9"));
    struct ids inner = {.stop_at = 1};
    OK(w->s->ops->device_list(w->s, 0, collect_device, &inner));
    return 0;
}

static void test_long_lists(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    enum { N = 300 };
    OK(o->begin(s));
    for (int i = 0; i < N; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "l-%03d", i);
        int64_t id = mk_device(s, cid);
        OK(o->device_set_attributes(s, id, "{\"n\":1}", NULL));
    }
    OK(o->commit(s));

    struct walker w = {.s = s};
    OK(o->device_list(s, 0, touch_device, &w));
    assert_int_equal(w.n, N);
    assert_int_equal(w.attr_ok, N);

    store_device_t d;
    OK(o->device_by_controller(s, "l-299", &d));
    assert_string_equal(d.attributes, "{\"touched\":true}");
    assert_string_equal(d.version, "9");
    store_device_clear(&d);

    /* The same walk inside a transaction (the lock stays with this thread). */
    w = (struct walker){.s = s};
    OK(o->begin(s));
    OK(o->device_list(s, 0, touch_device, &w));
    OK(o->commit(s));
    assert_int_equal(w.n, N);
}

/* ---- artifacts ---------------------------------------------------------------- */

static void test_artifacts(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;

    int64_t a1 = mk_artifact(s, "fw-1.2.3.bin");
    int64_t a2 = mk_artifact(s, "fw-1.2.4.bin");
    assert_true(a2 > a1);
    store_artifact_t a;
    OK(o->artifact_by_name(s, "fw-1.2.4.bin", &a));
    assert_int_equal(a.id, a2);
    assert_int_equal(a.kind, STORE_ART_IMAGE);
    assert_string_equal(a.version, "1.2.3");
    assert_int_equal(strlen(a.sha256), 64);
    assert_int_equal(strlen(a.sha1), 40);
    assert_int_equal(strlen(a.md5), 32);
    assert_int_equal(a.size, 1234);
    assert_true(a.created_at > 0);
    OK(o->artifact_get(s, a1, &a));
    assert_string_equal(a.name, "fw-1.2.3.bin");
    ERR(o->artifact_get(s, 999999, &a), STORE_NOT_FOUND);
    ERR(o->artifact_by_name(s, "nope.bin", &a), STORE_NOT_FOUND);

    store_artifact_t b = {.kind = STORE_ART_OPAQUE};
    snprintf(b.name, sizeof b.name, "fw-1.2.3.bin");
    memset(b.sha256, '0', 64);
    ERR(o->artifact_create(s, &b), STORE_EXISTS);
    snprintf(b.name, sizeof b.name, "other.tar");
    memcpy(b.sha256, "../../etc/passwd", 16); /* it names a file: hex only */
    ERR(o->artifact_create(s, &b), STORE_INVAL);
    memset(b.sha256, '0', 64);
    b.sha256[63] = '\0';
    ERR(o->artifact_create(s, &b), STORE_INVAL);
    memset(b.sha256, '0', 64);
    b.kind = 3;
    ERR(o->artifact_create(s, &b), STORE_INVAL);
    b.kind = STORE_ART_OPAQUE;
    OK(o->artifact_create(s, &b));

    struct ids c = {0};
    OK(o->artifact_list(s, collect_artifact, &c));
    assert_int_equal(c.n, 3);
    assert_int_equal(c.id[0], a1);
    assert_int_equal(c.id[2], b.id);
}

/* ---- campaigns ---------------------------------------------------------------- */

static void test_campaigns(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t art = mk_artifact(s, "fw.bin");
    store_group_t g = {0};
    snprintf(g.name, sizeof g.name, "canary");
    OK(o->group_create(s, &g));

    store_campaign_t c = {.artifact_id = art,
                          .group_id = g.id,
                          .nwaves = 4,
                          .waves = {1, 10, 50, 100},
                          .failure_pct = 20,
                          .start_at = 1700000000,
                          .state = STORE_CAMP_SCHEDULED,
                          .forced = true,
                          .created_at = 1600000000};
    snprintf(c.name, sizeof c.name, "spring");
    OK(o->campaign_create(s, &c));
    assert_int_equal(c.updated_at, 1600000000);
    ERR(o->campaign_create(s, &c), STORE_EXISTS);

    store_campaign_t r;
    OK(o->campaign_get(s, c.id, &r));
    assert_string_equal(r.name, "spring");
    assert_int_equal(r.artifact_id, art);
    assert_int_equal(r.group_id, g.id);
    assert_int_equal(r.nwaves, 4);
    assert_memory_equal(r.waves, c.waves, sizeof r.waves);
    assert_int_equal(r.failure_pct, 20);
    assert_int_equal(r.start_at, 1700000000);
    assert_int_equal(r.state, STORE_CAMP_SCHEDULED);
    assert_int_equal(r.current_wave, 0);
    assert_string_equal(r.reason, "");
    assert_true(r.forced);
    assert_int_equal(r.created_at, 1600000000);
    ERR(o->campaign_get(s, 999999, &r), STORE_NOT_FOUND);
    ERR(o->campaign_by_name(s, "autumn", &r), STORE_NOT_FOUND);

    /* the waves and other bad arguments */
    store_campaign_t b = c;
    snprintf(b.name, sizeof b.name, "bad");
    b.nwaves = 0;
    ERR(o->campaign_create(s, &b), STORE_INVAL);
    b.nwaves = STORE_MAX_WAVES + 1;
    ERR(o->campaign_create(s, &b), STORE_INVAL);
    b.nwaves = 3;
    ERR(o->campaign_create(s, &b), STORE_INVAL); /* 1, 10, 50: last not 100 */
    b.nwaves = 4;
    b.waves[2] = 5; /* not rising */
    ERR(o->campaign_create(s, &b), STORE_INVAL);
    b.waves[2] = 50;
    b.failure_pct = 101;
    ERR(o->campaign_create(s, &b), STORE_INVAL);
    b.failure_pct = 0;
    b.state = 9;
    ERR(o->campaign_create(s, &b), STORE_INVAL);
    b.state = STORE_CAMP_RUNNING;
    b.current_wave = 4;
    ERR(o->campaign_create(s, &b), STORE_INVAL);
    b.current_wave = 0;
    b.artifact_id = 999999;
    ERR(o->campaign_create(s, &b), STORE_NOT_FOUND);
    b.artifact_id = art;
    b.group_id = 999999;
    ERR(o->campaign_create(s, &b), STORE_NOT_FOUND);

    /* sixteen waves, every device */
    b.group_id = 0;
    b.nwaves = STORE_MAX_WAVES;
    for (unsigned i = 0; i < STORE_MAX_WAVES; i++)
        b.waves[i] = i == STORE_MAX_WAVES - 1 ? 100 : i * 5 + 1;
    b.created_at = b.updated_at = 0;
    OK(o->campaign_create(s, &b));
    OK(o->campaign_by_name(s, "bad", &r));
    assert_int_equal(r.group_id, 0);
    assert_int_equal(r.nwaves, STORE_MAX_WAVES);
    assert_memory_equal(r.waves, b.waves, sizeof r.waves);
    assert_true(r.created_at > 0 && r.updated_at == r.created_at);

    /* update: state, current_wave, reason, updated_at, nothing else */
    r = c;
    r.state = STORE_CAMP_PAUSED;
    r.current_wave = 2;
    snprintf(r.reason, sizeof r.reason, "wave 2: 3 of 10 failed");
    r.updated_at = 1700000500;
    r.failure_pct = 99;
    OK(o->campaign_update(s, &r));
    store_campaign_t u;
    OK(o->campaign_get(s, c.id, &u));
    assert_int_equal(u.state, STORE_CAMP_PAUSED);
    assert_int_equal(u.current_wave, 2);
    assert_string_equal(u.reason, "wave 2: 3 of 10 failed");
    assert_int_equal(u.updated_at, 1700000500);
    assert_int_equal(u.failure_pct, 20);
    r.id = 999999;
    ERR(o->campaign_update(s, &r), STORE_NOT_FOUND);
    r.id = c.id;
    r.state = 0;
    ERR(o->campaign_update(s, &r), STORE_INVAL);
    r.state = STORE_CAMP_RUNNING;
    r.current_wave = 4; /* it has 4 waves: 0..3 */
    ERR(o->campaign_update(s, &r), STORE_INVAL);
    OK(o->campaign_get(s, c.id, &u));
    assert_int_equal(u.current_wave, 2);

    struct ids ids = {0};
    OK(o->campaign_list(s, 0, collect_campaign, &ids));
    assert_int_equal(ids.n, 2);
    memset(&ids, 0, sizeof ids);
    OK(o->campaign_list(s, STORE_CAMP_PAUSED, collect_campaign, &ids));
    assert_int_equal(ids.n, 1);
    assert_int_equal(ids.id[0], c.id);
    memset(&ids, 0, sizeof ids);
    OK(o->campaign_list(s, STORE_CAMP_FINISHED, collect_campaign, &ids));
    assert_int_equal(ids.n, 0);
    ERR(o->campaign_list(s, 42, collect_campaign, &ids), STORE_INVAL);
}

/* ---- actions ------------------------------------------------------------------ */

static void test_action_lifecycle(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t dev = mk_device(s, "a-dev");
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "c1", art, STORE_CAMP_RUNNING);

    store_action_t a = {
        .campaign_id = camp, .device_id = dev, .state = STORE_ACT_OFFERED, .created_at = 100};
    OK(o->action_create(s, &a));
    store_action_t dup = a;
    ERR(o->action_create(s, &dup), STORE_EXISTS);
    dup.device_id = 999999;
    ERR(o->action_create(s, &dup), STORE_NOT_FOUND);
    dup.device_id = dev;
    dup.campaign_id = 999999;
    ERR(o->action_create(s, &dup), STORE_NOT_FOUND);
    dup.campaign_id = camp;
    dup.state = 0;
    ERR(o->action_create(s, &dup), STORE_INVAL);
    dup.state = 9;
    ERR(o->action_create(s, &dup), STORE_INVAL);

    store_action_t g;
    OK(o->action_get(s, a.id, &g));
    assert_int_equal(g.campaign_id, camp);
    assert_int_equal(g.device_id, dev);
    assert_int_equal(g.state, STORE_ACT_OFFERED);
    assert_int_equal(g.created_at, 100);
    assert_int_equal(g.updated_at, 100);
    ERR(o->action_get(s, 999999, &g), STORE_NOT_FOUND);

    OK(o->action_set_state(s, a.id, STORE_ACT_OFFERED, STORE_ACT_RUNNING, 1, 3, "downloading",
                           200));
    OK(o->action_set_state(s, a.id, STORE_ACT_RUNNING, STORE_ACT_RUNNING, 2, 3, "verifying", 210));
    ERR(o->action_set_state(s, a.id, STORE_ACT_OFFERED, STORE_ACT_SUCCESS, 3, 3, "x", 220),
        STORE_CONFLICT);
    assert_true(strstr(s->errmsg, "running") != NULL);
    OK(o->action_get(s, a.id, &g)); /* the conflict changed nothing */
    assert_int_equal(g.state, STORE_ACT_RUNNING);
    assert_int_equal(g.progress_cnt, 2);
    assert_int_equal(g.progress_of, 3);
    assert_string_equal(g.details, "verifying");
    assert_int_equal(g.updated_at, 210);
    ERR(o->action_set_state(s, 999999, 0, STORE_ACT_SUCCESS, 0, 0, NULL, 1), STORE_NOT_FOUND);
    ERR(o->action_set_state(s, a.id, 0, 0, 0, 0, NULL, 1), STORE_INVAL);
    ERR(o->action_set_state(s, a.id, 12, STORE_ACT_SUCCESS, 0, 0, NULL, 1), STORE_INVAL);

    /* Details: NULL keeps them; too long is cut at a character boundary. */
    OK(o->action_set_state(s, a.id, 0, STORE_ACT_SUCCESS, 3, 3, NULL, 230));
    OK(o->action_get(s, a.id, &g));
    assert_string_equal(g.details, "verifying");
    char big[1200];
    big[0] = 'x';
    for (size_t i = 1; i + 2 < sizeof big; i += 2)
        memcpy(big + i, "\xc3\xa9", 2); /* 'é' at odd offsets: byte 511 would split one */
    big[sizeof big - 1] = '\0';
    OK(o->action_set_state(s, a.id, 0, STORE_ACT_SUCCESS, 3, 3, big, 240));
    OK(o->action_get(s, a.id, &g));
    assert_int_equal(strlen(g.details), 511);
    assert_memory_equal(g.details, big, 511);
    OK(o->action_set_state(s, a.id, 0, STORE_ACT_SUCCESS, 3, 3, big + 1, 250));
    OK(o->action_get(s, a.id, &g));
    assert_int_equal(strlen(g.details), 510); /* 511 would end inside a character */
    assert_memory_equal(g.details, big + 1, 510);

    /* The history: creation, then each change of state, in order; the
     * progress-only update and the failed calls left no trace. */
    struct trs t = {0};
    OK(o->transition_list(s, camp, collect_transition, &t));
    assert_int_equal(t.n, 3);
    const int want[3][3] = {{100, 0, STORE_ACT_OFFERED},
                            {200, STORE_ACT_OFFERED, STORE_ACT_RUNNING},
                            {230, STORE_ACT_RUNNING, STORE_ACT_SUCCESS}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(t.t[i].action_id, a.id);
        assert_int_equal(t.t[i].at, want[i][0]);
        assert_int_equal(t.t[i].from_state, want[i][1]);
        assert_int_equal(t.t[i].to_state, want[i][2]);
    }

    /* action_list: by campaign, by campaign and device, by device */
    int64_t dev2 = mk_device(s, "a-dev2");
    int64_t camp2 = mk_campaign(s, "c2", art, STORE_CAMP_RUNNING);
    int64_t a2 = mk_action(s, camp, dev2, 1, STORE_ACT_PENDING);
    int64_t a3 = mk_action(s, camp2, dev, 0, STORE_ACT_PENDING);
    struct ids c = {0};
    OK(o->action_list(s, camp, 0, collect_action, &c));
    assert_int_equal(c.n, 2);
    assert_int_equal(c.id[0], a.id);
    assert_int_equal(c.id[1], a2);
    memset(&c, 0, sizeof c);
    OK(o->action_list(s, camp, dev2, collect_action, &c));
    assert_int_equal(c.n, 1);
    assert_int_equal(c.id[0], a2);
    memset(&c, 0, sizeof c);
    OK(o->action_list(s, 0, dev, collect_action, &c));
    assert_int_equal(c.n, 2);
    assert_int_equal(c.id[0], a.id);
    assert_int_equal(c.id[1], a3);
    ERR(o->action_list(s, 0, 0, collect_action, &c), STORE_INVAL);
}

static void test_open_for_device(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t dev = mk_device(s, "o-dev");
    int64_t other = mk_device(s, "o-other");
    int64_t art = mk_artifact(s, "fw.bin");
    store_action_t a;

    ERR(o->action_open_for_device(s, dev, &a), STORE_NOT_FOUND);

    /* Offers the device must not see: in cancelled, finished and scheduled
     * campaigns (none of them cancelling), a closed action, an action not
     * offered yet, another device's offer. */
    int64_t cc = mk_campaign(s, "cancelled", art, STORE_CAMP_CANCELLED);
    mk_action(s, cc, dev, 0, STORE_ACT_OFFERED);
    int64_t cf = mk_campaign(s, "finished", art, STORE_CAMP_FINISHED);
    mk_action(s, cf, dev, 0, STORE_ACT_RUNNING);
    int64_t cs = mk_campaign(s, "scheduled", art, STORE_CAMP_SCHEDULED);
    mk_action(s, cs, dev, 0, STORE_ACT_OFFERED);
    int64_t cr = mk_campaign(s, "running-closed", art, STORE_CAMP_RUNNING);
    mk_action(s, cr, dev, 0, STORE_ACT_SUCCESS);
    int64_t cp = mk_campaign(s, "running-pending", art, STORE_CAMP_RUNNING);
    int64_t pend = mk_action(s, cp, dev, 1, STORE_ACT_PENDING);
    mk_action(s, cp, other, 0, STORE_ACT_OFFERED);
    ERR(o->action_open_for_device(s, dev, &a), STORE_NOT_FOUND);

    /* A paused campaign still lets a device that has its offer finish. */
    int64_t cpa = mk_campaign(s, "paused", art, STORE_CAMP_PAUSED);
    int64_t paused = mk_action(s, cpa, dev, 0, STORE_ACT_CANCELLING);
    OK(o->action_open_for_device(s, dev, &a));
    assert_int_equal(a.id, paused);
    assert_int_equal(a.state, STORE_ACT_CANCELLING);

    /* Oldest first: the pending one, once offered, is older. */
    OK(o->action_set_state(s, pend, STORE_ACT_PENDING, STORE_ACT_OFFERED, 0, 0, NULL, 10));
    OK(o->action_open_for_device(s, dev, &a));
    assert_int_equal(a.id, pend);
    OK(o->action_set_state(s, pend, 0, STORE_ACT_FAILURE, 0, 0, "no space", 11));
    OK(o->action_open_for_device(s, dev, &a));
    assert_int_equal(a.id, paused);

    /* A cancel in progress reaches the device even though its campaign is
     * already cancelled; once confirmed, nothing is open. */
    store_campaign_t c;
    OK(o->campaign_get(s, cpa, &c));
    c.state = STORE_CAMP_CANCELLED;
    OK(o->campaign_update(s, &c));
    OK(o->action_open_for_device(s, dev, &a));
    assert_int_equal(a.id, paused);
    OK(o->action_set_state(s, paused, STORE_ACT_CANCELLING, STORE_ACT_CANCELLED, 0, 0, NULL, 12));
    ERR(o->action_open_for_device(s, dev, &a), STORE_NOT_FOUND);
}

static void test_offer_wave_counts(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "waves", art, STORE_CAMP_RUNNING);
    int64_t other = mk_campaign(s, "other", art, STORE_CAMP_RUNNING);
    /* 1 device in wave 0, 4 in wave 1, 5 in wave 2; one more in another campaign */
    static const unsigned wave_of[10] = {0, 1, 1, 1, 1, 2, 2, 2, 2, 2};
    int64_t act[10];
    OK(o->begin(s));
    for (int i = 0; i < 10; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "w-%d", i);
        int64_t d = mk_device(s, cid);
        act[i] = mk_action(s, camp, d, wave_of[i], STORE_ACT_PENDING);
        if (i == 0)
            mk_action(s, other, d, 0, STORE_ACT_PENDING);
    }
    OK(o->commit(s));

    store_counts_t n;
    OK(o->action_counts(s, camp, -1, &n));
    assert_int_equal(n.total, 10);
    assert_int_equal(n.n[STORE_ACT_PENDING], 10);

    OK(o->action_offer_wave(s, camp, 0, 500));
    OK(o->action_counts(s, camp, 0, &n));
    assert_int_equal(n.total, 1);
    assert_int_equal(n.n[STORE_ACT_OFFERED], 1);
    OK(o->action_counts(s, camp, 1, &n));
    assert_int_equal(n.total, 4);
    assert_int_equal(n.n[STORE_ACT_PENDING], 4);
    OK(o->action_counts(s, other, -1, &n)); /* another campaign's untouched */
    assert_int_equal(n.n[STORE_ACT_PENDING], 1);

    /* Some of wave 0 moves on; offering wave 1 leaves it alone. */
    OK(o->action_set_state(s, act[0], STORE_ACT_OFFERED, STORE_ACT_SUCCESS, 0, 0, NULL, 510));
    OK(o->action_offer_wave(s, camp, 1, 600));
    OK(o->action_counts(s, camp, -1, &n));
    assert_int_equal(n.total, 10);
    assert_int_equal(n.n[STORE_ACT_SUCCESS], 1);
    assert_int_equal(n.n[STORE_ACT_OFFERED], 4);
    assert_int_equal(n.n[STORE_ACT_PENDING], 5);
    int64_t sum = 0;
    for (int i = 0; i < 9; i++)
        sum += n.n[i];
    assert_int_equal(sum, n.total);
    OK(o->action_counts(s, camp, 2, &n));
    assert_int_equal(n.n[STORE_ACT_PENDING], 5);
    OK(o->action_offer_wave(s, camp, 1, 700)); /* again: nothing left to offer */

    store_action_t a;
    OK(o->action_get(s, act[3], &a));
    assert_int_equal(a.state, STORE_ACT_OFFERED);
    assert_int_equal(a.updated_at, 600);

    struct trs t = {0};
    OK(o->transition_list(s, camp, collect_transition, &t));
    assert_int_equal(t.n, 10 + 1 + 1 + 4); /* creations, offer 0, success, offer 1 */
    size_t offered = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (i > 0)
            assert_true(t.t[i].at >= t.t[i - 1].at);
        if (t.t[i].to_state == STORE_ACT_OFFERED) {
            assert_int_equal(t.t[i].from_state, STORE_ACT_PENDING);
            offered++;
        }
    }
    assert_int_equal(offered, 5);

    OK(o->action_counts(s, 999999, -1, &n));
    assert_int_equal(n.total, 0);
}

/* Transitions over several chunks, many with the same time: each once, in order. */
static void test_long_transition_list(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "big", art, STORE_CAMP_RUNNING);
    enum { N = 300 };
    OK(o->begin(s));
    for (int i = 0; i < N; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "t-%d", i);
        store_action_t a = {.campaign_id = camp,
                            .device_id = mk_device(s, cid),
                            .state = STORE_ACT_PENDING,
                            .created_at = 1000 + i / 100};
        OK(o->action_create(s, &a));
    }
    OK(o->commit(s));
    OK(o->action_offer_wave(s, camp, 0, 2000));
    struct trs *t = calloc(1, sizeof *t);
    assert_non_null(t);
    OK(o->transition_list(s, camp, collect_transition, t));
    assert_int_equal(t->n, 2 * N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(t->t[i].to_state, STORE_ACT_PENDING);
        assert_int_equal(t->t[i].at, 1000 + (int64_t)i / 100);
        assert_int_equal(t->t[N + i].to_state, STORE_ACT_OFFERED);
        assert_int_equal(t->t[N + i].at, 2000);
    }
    for (size_t i = 0; i < N; i++) /* each action offered exactly once */
        for (size_t j = i + 1; j < N; j++)
            assert_true(t->t[N + i].action_id != t->t[N + j].action_id);
    free(t);

    struct ids *c = calloc(1, sizeof *c);
    OK(o->action_list(s, camp, 0, collect_action, c));
    assert_int_equal(c->n, N);
    free(c);
}

/* ---- feedback and settings ------------------------------------------------------- */

struct fbs {
    int64_t id[8];
    char details[8][64];
    bool null_details[8];
    size_t n;
};

static int collect_feedback(void *ctx, const store_feedback_t *f)
{
    struct fbs *c = ctx;
    assert_true(c->n < 8);
    c->id[c->n] = f->id;
    c->null_details[c->n] = f->details == NULL;
    snprintf(c->details[c->n], sizeof c->details[0], "%s", f->details ? f->details : "");
    c->n++;
    return 0;
}

static void test_feedback(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t dev = mk_device(s, "f-dev");
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t c1 = mk_campaign(s, "c1", art, STORE_CAMP_RUNNING);
    int64_t c2 = mk_campaign(s, "c2", art, STORE_CAMP_RUNNING);
    int64_t a1 = mk_action(s, c1, dev, 0, STORE_ACT_OFFERED);
    int64_t a2 = mk_action(s, c2, dev, 0, STORE_ACT_OFFERED);

    store_feedback_t fb = {.action_id = a1,
                           .device_id = dev,
                           .progress_cnt = 1,
                           .progress_of = 2,
                           .details = "[\"downloading\"]"};
    snprintf(fb.execution, sizeof fb.execution, "proceeding");
    snprintf(fb.finished, sizeof fb.finished, "none");
    snprintf(fb.time, sizeof fb.time, "20240101T120000");
    OK(o->feedback_add(s, &fb));
    int64_t first = fb.id;
    assert_true(fb.received_at > 0);
    fb.action_id = a2;
    fb.details = NULL;
    OK(o->feedback_add(s, &fb));
    fb.action_id = a1;
    fb.details = "[\"done\"]";
    snprintf(fb.execution, sizeof fb.execution, "closed");
    snprintf(fb.finished, sizeof fb.finished, "success");
    OK(o->feedback_add(s, &fb));

    fb.action_id = 999999;
    ERR(o->feedback_add(s, &fb), STORE_NOT_FOUND);
    fb.action_id = a1;
    memset(fb.execution, 'e', sizeof fb.execution);
    ERR(o->feedback_add(s, &fb), STORE_INVAL);

    struct fbs c = {0};
    OK(o->feedback_list(s, dev, 0, collect_feedback, &c));
    assert_int_equal(c.n, 3);
    assert_int_equal(c.id[0], first);
    assert_string_equal(c.details[0], "[\"downloading\"]");
    assert_true(c.null_details[1]);
    assert_string_equal(c.details[2], "[\"done\"]");
    memset(&c, 0, sizeof c);
    OK(o->feedback_list(s, dev, a1, collect_feedback, &c));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.details[1], "[\"done\"]");
    memset(&c, 0, sizeof c);
    OK(o->feedback_list(s, 999999, 0, collect_feedback, &c));
    assert_int_equal(c.n, 0);
}

static void test_settings(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    char v[65];
    ERR(o->setting_get(s, "operator_token", v, sizeof v), STORE_NOT_FOUND);
    OK(o->setting_set(s, "operator_token", "aa11"));
    OK(o->setting_get(s, "operator_token", v, sizeof v));
    assert_string_equal(v, "aa11");
    OK(o->setting_set(s, "operator_token", "bb22")); /* replaces */
    OK(o->setting_get(s, "operator_token", v, sizeof v));
    assert_string_equal(v, "bb22");
    ERR(o->setting_get(s, "operator_token", v, 4), STORE_INVAL); /* "bb22" needs 5 */
    OK(o->setting_get(s, "operator_token", v, 5));
    ERR(o->setting_set(s, "", "x"), STORE_INVAL);
    ERR(o->setting_set(s, "k", NULL), STORE_INVAL);
    ERR(o->setting_get(s, "k", NULL, 0), STORE_INVAL);
    OK(o->setting_set(s, "empty", ""));
    OK(o->setting_get(s, "empty", v, 1));
    assert_string_equal(v, "");
}

/* ---- transactions ----------------------------------------------------------------- */

struct blocked {
    store_t *s;
    atomic_int done;
    int64_t count;
    int rc;
};

static void *count_devices(void *arg)
{
    struct blocked *b = arg;
    b->rc = b->s->ops->device_count(b->s, &b->count);
    atomic_store(&b->done, 1);
    return NULL;
}

static void test_transactions(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "c", art, STORE_CAMP_RUNNING);

    /* rollback really undoes, multi-statement ops included */
    OK(o->begin(s));
    ERR(o->begin(s), STORE_INVAL); /* no nesting */
    int64_t dev = mk_device(s, "tx-1");
    mk_action(s, camp, dev, 0, STORE_ACT_OFFERED);
    OK(o->setting_set(s, "k", "v"));
    o->rollback(s);
    store_device_t d;
    ERR(o->device_get(s, dev, &d), STORE_NOT_FOUND);
    struct trs t = {0};
    OK(o->transition_list(s, camp, collect_transition, &t));
    assert_int_equal(t.n, 0);
    char v[8];
    ERR(o->setting_get(s, "k", v, sizeof v), STORE_NOT_FOUND);
    ERR(o->commit(s), STORE_INVAL); /* nothing open */
    o->rollback(s);                 /* harmless */

    /* a failing op inside a transaction undoes only itself */
    OK(o->begin(s));
    dev = mk_device(s, "tx-2");
    store_action_t bad = {.campaign_id = camp, .device_id = 999999, .state = STORE_ACT_OFFERED};
    ERR(o->action_create(s, &bad), STORE_NOT_FOUND);
    mk_action(s, camp, dev, 0, STORE_ACT_OFFERED);
    ERR(o->device_create(s, &(store_device_t){.controller_id = "tx-2"}), STORE_EXISTS);
    OK(o->commit(s));

    /* commit persists across close and reopen */
    reopen(f);
    s = f->s;
    o = s->ops;
    OK(o->device_by_controller(s, "tx-2", &d));
    assert_int_equal(d.id, dev);
    store_device_clear(&d);
    memset(&t, 0, sizeof t);
    OK(o->transition_list(s, camp, collect_transition, &t));
    assert_int_equal(t.n, 1);

    /* another thread's op waits for the commit */
    OK(o->begin(s));
    struct blocked b = {.s = s};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, count_devices, &b), 0);
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(atomic_load(&b.done), 0);
    mk_device(s, "tx-3");
    nanosleep(&pause, NULL);
    assert_int_equal(atomic_load(&b.done), 0);
    OK(o->commit(s));
    assert_int_equal(pthread_join(th, NULL), 0);
    OK(b.rc);
    assert_int_equal(b.count, 2); /* it ran after the commit, and saw it */

    /* closing with a transaction open rolls it back */
    OK(o->begin(s));
    mk_device(s, "tx-4");
    reopen(f);
    ERR(f->s->ops->device_by_controller(f->s, "tx-4", &d), STORE_NOT_FOUND);
}

/*
 * Another process holds the write lock past the busy timeout: BUSY, nothing
 * half-done, and the store works once the lock is gone. (Takes 5 s.)
 */
static void test_busy(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t dev = mk_device(s, "busy");
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "c", art, STORE_CAMP_RUNNING);
    int64_t act = mk_action(s, camp, dev, 0, STORE_ACT_OFFERED);

    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    double t0 = now_sec();
    ERR(o->action_set_state(s, act, 0, STORE_ACT_RUNNING, 1, 2, NULL, 50), STORE_BUSY);
    assert_true(now_sec() - t0 > 4.0); /* it waited for the lock first */
    assert_true(s->errmsg[0] != '\0');
    store_action_t a;
    OK(o->action_get(s, act, &a)); /* readers are not blocked by a writer (WAL) */
    assert_int_equal(a.state, STORE_ACT_OFFERED);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);

    OK(o->action_set_state(s, act, 0, STORE_ACT_RUNNING, 1, 2, NULL, 60));
    struct trs t = {0};
    OK(o->transition_list(s, camp, collect_transition, &t));
    assert_int_equal(t.n, 2);
}

/* ---- the memo of poll reads ---------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void expect_token(store_t *s, const char *cid, const char *want)
{
    store_device_t d;
    OK(s->ops->device_by_controller(s, cid, &d));
    assert_string_equal(d.token_hash, want);
    store_device_clear(&d);
}

/*
 * device_by_controller and action_open_for_device, read again and again as a
 * polling device does, see every write through the store at once (a
 * rolled-back one never), and another connection's committed write within a
 * millisecond.
 */
static void test_memo(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    char t1[65], t2[65], t3[65];
    snprintf(t1, sizeof t1, "%064d", 1);
    snprintf(t2, sizeof t2, "%064d", 2);
    snprintf(t3, sizeof t3, "%064d", 3);
    store_device_t d = {0};
    snprintf(d.controller_id, sizeof d.controller_id, "memo-1");
    memcpy(d.token_hash, t1, sizeof t1);
    OK(o->device_create(s, &d));
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "c", art, STORE_CAMP_RUNNING);
    store_action_t a;
    store_device_t g;

    /* token and attributes: the next read has them */
    expect_token(s, "memo-1", t1);
    expect_token(s, "memo-1", t1);
    OK(o->device_set_token(s, d.id, t2));
    expect_token(s, "memo-1", t2);
    OK(o->device_by_controller(s, "memo-1", &g));
    assert_null(g.attributes);
    OK(o->device_set_attributes(s, d.id, "{\"a\":\"1\"}", "2.0"));
    OK(o->device_by_controller(s, "memo-1", &g));
    assert_string_equal(g.attributes, "{\"a\":\"1\"}");
    assert_string_equal(g.version, "2.0");
    store_device_clear(&g); /* the caller's copy: the memo keeps its own */
    OK(o->device_by_controller(s, "memo-1", &g));
    assert_string_equal(g.attributes, "{\"a\":\"1\"}");
    store_device_clear(&g);

    /* a check-in shows in the row */
    OK(o->device_seen(s, d.id, 5000, 3));
    OK(o->device_by_controller(s, "memo-1", &g));
    assert_int_equal(g.last_seen, 5000);
    assert_int_equal(g.polls, 3);
    store_device_clear(&g);
    /* ... applied to the memoised row as the database applies it (polls add up) */
    OK(o->device_seen(s, d.id, 5002, 2));
    for (int i = 0; i < 2; i++) {
        OK(o->device_by_controller(s, "memo-1", &g));
        assert_int_equal(g.last_seen, 5002);
        assert_int_equal(g.polls, 5);
        assert_string_equal(g.attributes, "{\"a\":\"1\"}");
        store_device_clear(&g);
    }

    /* the open action follows offers, state changes and the campaign's state */
    ERR(o->action_open_for_device(s, d.id, &a), STORE_NOT_FOUND);
    ERR(o->action_open_for_device(s, d.id, &a), STORE_NOT_FOUND);
    int64_t act = mk_action(s, camp, d.id, 0, STORE_ACT_PENDING);
    ERR(o->action_open_for_device(s, d.id, &a), STORE_NOT_FOUND);
    OK(o->action_offer_wave(s, camp, 0, 100));
    OK(o->action_open_for_device(s, d.id, &a));
    assert_int_equal(a.id, act);
    assert_int_equal(a.state, STORE_ACT_OFFERED);
    OK(o->device_seen(s, d.id, 5001, 1)); /* keeps the open action: still right */
    OK(o->action_open_for_device(s, d.id, &a));
    assert_int_equal(a.state, STORE_ACT_OFFERED);
    OK(o->action_set_state(s, act, 0, STORE_ACT_RUNNING, 1, 2, "half", 101));
    OK(o->action_open_for_device(s, d.id, &a));
    assert_int_equal(a.state, STORE_ACT_RUNNING);
    assert_string_equal(a.details, "half");
    store_campaign_t c;
    OK(o->campaign_get(s, camp, &c));
    c.state = STORE_CAMP_CANCELLED;
    OK(o->campaign_update(s, &c));
    ERR(o->action_open_for_device(s, d.id, &a), STORE_NOT_FOUND);
    c.state = STORE_CAMP_RUNNING;
    OK(o->campaign_update(s, &c));
    OK(o->action_open_for_device(s, d.id, &a));

    /* inside a transaction the writer reads its own rows; a rollback takes them back */
    OK(o->begin(s));
    OK(o->device_set_token(s, d.id, t3));
    expect_token(s, "memo-1", t3);
    OK(o->action_set_state(s, act, 0, STORE_ACT_SUCCESS, 2, 2, NULL, 102));
    ERR(o->action_open_for_device(s, d.id, &a), STORE_NOT_FOUND);
    o->rollback(s);
    expect_token(s, "memo-1", t2);
    OK(o->action_open_for_device(s, d.id, &a));
    assert_int_equal(a.state, STORE_ACT_RUNNING);
    OK(o->begin(s));
    OK(o->device_set_token(s, d.id, t3));
    expect_token(s, "memo-1", t3);
    OK(o->commit(s));
    expect_token(s, "memo-1", t3);

    /* another connection (another process) writes: seen 1 ms later */
    sqlite3 *other;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(other, 5000), SQLITE_OK);
    expect_token(s, "memo-1", t3);
    assert_int_equal(sqlite3_exec(other,
                                  "UPDATE devices SET token_hash = '0000000000000000000000000000"
                                  "000000000000000000000000000000000001' WHERE controller_id = "
                                  "'memo-1'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(other);
    sleep_ms(2);
    expect_token(s, "memo-1", t1);
}

/*
 * The memo alone: a fleet of 10,000 devices stays in it, and overfilled (more
 * devices than it has room for, so slots and id slots collide) whatever it
 * still answers after a round of check-ins carries that check-in, never the
 * row as it was before.
 */
static int memo_round(int n)
{
    store_memo_t *m = store_memo_new();
    assert_non_null(m);
    store_device_t d = {0};
    for (int64_t id = 1; id <= n; id++) {
        d.id = id * 7; /* not consecutive */
        snprintf(d.controller_id, sizeof d.controller_id, "dev-%lld", (long long)id);
        d.polls = id;
        store_memo_put_device(m, &d);
    }
    for (int64_t id = 1; id <= n; id++) {
        store_memo_seen(m, id * 7, 1000 + id, 2);
    }
    int hits = 0;
    for (int64_t id = 1; id <= n; id++) {
        store_device_t g;
        snprintf(d.controller_id, sizeof d.controller_id, "dev-%lld", (long long)id);
        int r = store_memo_device(m, d.controller_id, &g);
        assert_true(r == 0 || r == 1);
        if (r == 1) {
            hits++;
            assert_int_equal(g.id, id * 7);
            assert_int_equal(g.last_seen, 1000 + id);
            assert_int_equal(g.polls, id + 2);
            store_device_clear(&g);
        }
    }
    store_memo_free(m);
    printf("  memo: %d of %d devices still answered after their check-ins\n", hits, n);
    return hits;
}

static void test_memo_overfull(void **state)
{
    (void)state;
    assert_true(memo_round(10000) >= 9000); /* a 10,000-device fleet stays memoised */
    memo_round(40000);                      /* overfull: only right answers */
}

/* ---- threads ---------------------------------------------------------------------- */

#define HAMMER_N 400

struct hammer {
    store_t *s;
    int64_t dev;
    int64_t action;
    int errors;
};

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    const store_ops_t *o = h->s->ops;
    for (int i = 0; i < HAMMER_N; i++) {
        if (o->device_seen(h->s, h->dev, 1000 + i, true) != STORE_OK)
            h->errors++;
        int st = i % 2 ? STORE_ACT_RUNNING : STORE_ACT_OFFERED;
        if (o->action_set_state(h->s, h->action, 0, st, i, HAMMER_N, "tick", 1000 + i) != 0)
            h->errors++;
        if (i % 8 == 0) { /* read-modify-write: only correct if begin excludes the other */
            char v[32] = "0";
            int rc = o->begin(h->s);
            if (rc == STORE_OK) {
                rc = o->setting_get(h->s, "counter", v, sizeof v);
                if (rc == STORE_NOT_FOUND)
                    rc = STORE_OK;
                snprintf(v, sizeof v, "%ld", strtol(v, NULL, 10) + 1);
                if (rc == STORE_OK)
                    rc = o->setting_set(h->s, "counter", v);
                if (rc == STORE_OK)
                    rc = o->commit(h->s);
                else
                    o->rollback(h->s);
            }
            if (rc != STORE_OK)
                h->errors++;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int64_t dev = mk_device(s, "shared");
    int64_t dev2 = mk_device(s, "second");
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "c", art, STORE_CAMP_RUNNING);
    struct hammer h[2] = {{s, dev, mk_action(s, camp, dev, 0, STORE_ACT_OFFERED), 0},
                          {s, dev, mk_action(s, camp, dev2, 0, STORE_ACT_OFFERED), 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(h[0].errors, 0);
    assert_int_equal(h[1].errors, 0);

    store_device_t d;
    OK(o->device_get(s, dev, &d));
    assert_int_equal(d.polls, 2 * HAMMER_N);
    store_device_clear(&d);
    char v[32];
    OK(o->setting_get(s, "counter", v, sizeof v));
    assert_int_equal(strtol(v, NULL, 10), 2 * ((HAMMER_N + 7) / 8));
    /* every set_state changed the state: creation + HAMMER_N transitions each */
    struct trs *t = calloc(1, sizeof *t);
    assert_non_null(t);
    OK(o->transition_list(s, camp, collect_transition, t));
    assert_int_equal(t->n, 2 + 2 * (HAMMER_N - 1));
    free(t);
}

/* ---- durability --------------------------------------------------------------------- */

/*
 * A child writes and reports each write the store acknowledged through a
 * pipe; it is killed with SIGKILL mid-stream. Every acknowledged write must
 * be in the file afterwards. (This covers process death; the power-loss half
 * of the promise rests on synchronous=FULL.)
 */
static void test_kill9(void **state)
{
    struct fx *f = *state;
    f->s->ops->close(f->s);
    f->s = NULL;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        store_t *s;
        if (store_sqlite_open(f->path, &s) != STORE_OK)
            _exit(2);
        for (int64_t i = 1;; i++) {
            char v[32], cid[32];
            snprintf(v, sizeof v, "%lld", (long long)i);
            snprintf(cid, sizeof cid, "k9-%lld", (long long)i);
            store_device_t d = {0};
            memcpy(d.controller_id, cid, sizeof cid);
            if (s->ops->setting_set(s, "acked", v) != STORE_OK ||
                s->ops->device_create(s, &d) != STORE_OK)
                _exit(3);
            if (write(p[1], &i, sizeof i) != (ssize_t)sizeof i)
                _exit(4);
        }
    }
    close(p[1]);
    int64_t last = 0, got;
    while (last < 40 && read(p[0], &got, sizeof got) == (ssize_t)sizeof got)
        last = got;
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    while (read(p[0], &got, sizeof got) == (ssize_t)sizeof got) /* what it said before dying */
        last = got;
    close(p[0]);

    OK(store_sqlite_open(f->path, &f->s));
    char v[32];
    OK(f->s->ops->setting_get(f->s, "acked", v, sizeof v));
    assert_true(strtoll(v, NULL, 10) >= last);
    char cid[32];
    snprintf(cid, sizeof cid, "k9-%lld", (long long)last);
    store_device_t d;
    OK(f->s->ops->device_by_controller(f->s, cid, &d));
    store_device_clear(&d);
    int64_t n;
    OK(f->s->ops->device_count(f->s, &n));
    assert_true(n >= last);
    print_message("  kill -9 after %lld acknowledged writes: all there\n", (long long)last);
}

/* ---- throughput ----------------------------------------------------------------------- */

static void test_throughput(void **state)
{
    struct fx *f = *state;
    store_t *s = f->s;
    const store_ops_t *o = s->ops;
    int n = 10000;
    const char *env = getenv("AIRLOCK_STORE_BENCH_N");
    if (env && atoi(env) > 0)
        n = atoi(env);
    int64_t dev = mk_device(s, "bench");
    int64_t art = mk_artifact(s, "fw.bin");
    int64_t camp = mk_campaign(s, "c", art, STORE_CAMP_RUNNING);
    int64_t act = mk_action(s, camp, dev, 0, STORE_ACT_OFFERED);

    double t0 = now_sec();
    for (int i = 0; i < n; i++)
        OK(o->device_seen(s, dev, i, true));
    double t1 = now_sec();
    store_action_t a;
    for (int i = 0; i < n; i++)
        OK(o->action_get(s, act, &a));
    double t2 = now_sec();
    for (int i = 0; i < n; i++)
        OK(o->action_open_for_device(s, dev, &a));
    double t3 = now_sec();
    OK(o->begin(s));
    for (int i = 0; i < n; i++)
        OK(o->device_seen(s, dev, i, true));
    OK(o->commit(s));
    double t4 = now_sec();
    print_message("  %d device_seen (each committed, fsync'd): %.0f ops/s\n", n, n / (t1 - t0));
    print_message("  %d action_get: %.0f ops/s\n", n, n / (t2 - t1));
    print_message("  %d action_open_for_device (one device again: memoised): %.0f ops/s\n", n,
                  n / (t3 - t2));
    print_message("  %d device_seen in one transaction: %.0f ops/s\n", n, n / (t4 - t3));
    print_message("  device_seen + action_get pairs: %.0f pairs/s\n", n / (t2 - t0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_open_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_artifacts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_campaigns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_for_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offer_wave_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_transition_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feedback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memo, setup, teardown),
        cmocka_unit_test(test_memo_overfull),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
