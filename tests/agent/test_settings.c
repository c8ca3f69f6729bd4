/*
 * Tests of the device settings store (agent/settings.c) on the sim flash:
 * values survive reopening, batches are atomic, a full store refuses
 * without writing, and a power cut at every flash operation of a write
 * (every tear kind, several write sizes, seeded) leaves either every old
 * value or every new one, never a mix, with no NOR rule broken after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "airlock/settings.h"
#include "airlock/sim_flash.h"

#define SECTOR 4096u
#define SEED 20261126u

struct dev {
    airlock_sim_flash_t *sim;
    airlock_area_t area;
    airlock_settings_t st;
};

/* 8 sectors of 4 KiB; the settings area is sectors 2..5 (two copies of 8 KiB). */
static void dev_open(struct dev *d, uint32_t write_size)
{
    airlock_sector_run_t run = {8, SECTOR};
    airlock_sim_flash_geometry_t geo = {0, write_size, 0xff, &run, 1};
    memset(d, 0, sizeof(*d));
    assert_int_equal(airlock_sim_flash_create(&geo, &d->sim), 0);
    d->area.flash = airlock_sim_flash_port(d->sim);
    d->area.off = 2 * SECTOR;
    d->area.size = 4 * SECTOR;
    assert_int_equal(airlock_settings_open(&d->st, &d->area), 0);
}

static void dev_close(struct dev *d)
{
    assert_int_equal(airlock_sim_flash_violations(d->sim, 0), 0);
    airlock_sim_flash_close(d->sim);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* key must hold exactly val (len bytes). */
static void expect(struct dev *d, const char *key, const void *val, size_t len)
{
    static uint8_t buf[16384];
    size_t n = 0;
    assert_int_equal(airlock_settings_get(&d->st, key, buf, sizeof(buf), &n), 1);
    assert_int_equal(n, len);
    assert_memory_equal(buf, val, len);
}

static void expect_absent(struct dev *d, const char *key)
{
    size_t n = 99;
    assert_int_equal(airlock_settings_get(&d->st, key, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
}

static void test_blank_is_empty(void **state)
{
    (void)state;
    struct dev d;
    char s[8];
    dev_open(&d, 4);
    expect_absent(&d, "server");
    assert_int_equal(airlock_settings_get_str(&d.st, "server", s, sizeof(s)), 0);
    assert_string_equal(s, "");
    assert_int_equal(airlock_settings_used(&d.st), 0);
    assert_true(airlock_settings_capacity(&d.st) > 8000);
    dev_close(&d);
}

static void test_set_get_reopen(void **state)
{
    (void)state;
    struct dev d;
    uint8_t ca[4000];
    char s[64];
    fill(ca, sizeof(ca), 7);
    dev_open(&d, 4);
    assert_int_equal(airlock_settings_set(&d.st, "server", "https://x:1", 11), 0);
    assert_int_equal(airlock_settings_set(&d.st, "ca", ca, sizeof(ca)), 0);
    assert_int_equal(airlock_settings_set(&d.st, "server", "https://y:2", 11), 0);
    assert_int_equal(airlock_settings_set(&d.st, "empty", "", 0), 0);
    expect(&d, "server", "https://y:2", 11);
    expect(&d, "ca", ca, sizeof(ca));
    expect(&d, "empty", "", 0);
    /* reopening finds the same values */
    assert_int_equal(airlock_settings_open(&d.st, &d.area), 0);
    expect(&d, "server", "https://y:2", 11);
    expect(&d, "ca", ca, sizeof(ca));
    assert_int_equal(airlock_settings_get_str(&d.st, "server", s, sizeof(s)), 1);
    assert_string_equal(s, "https://y:2");
    assert_int_equal(airlock_settings_get_str(&d.st, "server", s, 11), AIRLOCK_ERR_NOMEM);
    /* truncated get reports the full length */
    size_t n;
    assert_int_equal(airlock_settings_get(&d.st, "ca", s, 10, &n), 1);
    assert_int_equal(n, sizeof(ca));
    assert_memory_equal(s, ca, 10);
    /* delete */
    assert_int_equal(airlock_settings_set(&d.st, "server", NULL, 0), 0);
    expect_absent(&d, "server");
    expect(&d, "ca", ca, sizeof(ca));
    /* iteration lists what is there, once each */
    uint32_t pos = 0;
    char key[AIRLOCK_SETTINGS_KEY_MAX + 1];
    unsigned count = 0;
    while (airlock_settings_next(&d.st, &pos, key, &n) == 1) {
        count++;
        assert_true(strcmp(key, "ca") == 0 || strcmp(key, "empty") == 0);
    }
    assert_int_equal(count, 2);
    dev_close(&d);
}

static void test_refusals(void **state)
{
    (void)state;
    struct dev d;
    static uint8_t big[9000];
    dev_open(&d, 8);
    assert_int_equal(airlock_settings_set(&d.st, "a", "1", 1), 0);
    assert_int_equal(airlock_settings_set(&d.st, "", "x", 1), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_settings_set(&d.st, "0123456789abcdef0123456789abcdef", "x", 1),
                     AIRLOCK_ERR_INVAL);
    airlock_setting_t dup[2] = {{"k", "1", 1}, {"k", "2", 1}};
    assert_int_equal(airlock_settings_set_many(&d.st, dup, 2), AIRLOCK_ERR_INVAL);
    /* too big for a copy: refused before any flash operation, old value kept */
    airlock_sim_flash_counts_t before, after;
    airlock_sim_flash_counts(d.sim, &before);
    assert_int_equal(airlock_settings_set(&d.st, "big", big, sizeof(big)), AIRLOCK_ERR_NOMEM);
    airlock_sim_flash_counts(d.sim, &after);
    assert_int_equal(after.erases + after.prog_calls, before.erases + before.prog_calls);
    expect(&d, "a", "1", 1);
    /* a half that does not start on a sector boundary */
    airlock_area_t odd = d.area;
    odd.size = 3 * SECTOR;
    airlock_settings_t st;
    assert_int_equal(airlock_settings_open(&st, &odd), AIRLOCK_ERR_INVAL);
    dev_close(&d);
}

/*
 * Mixed sectors (16K, 16K, 64K): an area [0, 64K) starts and splits on
 * sector boundaries, but its end falls inside the 64K sector, which a write
 * would erase whole, past the area. Refused; a byte beyond stays.
 */
static void test_area_must_end_on_a_sector(void **state)
{
    (void)state;
    airlock_sector_run_t runs[2] = {{2, 16384}, {1, 65536}};
    airlock_sim_flash_geometry_t geo = {0, 4, 0xff, runs, 2};
    airlock_sim_flash_t *sim;
    assert_int_equal(airlock_sim_flash_create(&geo, &sim), 0);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    assert_int_equal(fl->prog(fl->ctx, 65536, "\x42\x42\x42\x42", 4), 0);
    airlock_area_t a = {fl, 0, 65536};
    airlock_settings_t st;
    assert_int_equal(airlock_settings_open(&st, &a), AIRLOCK_ERR_INVAL);
    a.size = 32768; /* the two 16K sectors: fine */
    assert_int_equal(airlock_settings_open(&st, &a), 0);
    assert_int_equal(airlock_settings_set(&st, "k", "v", 1), 0);
    assert_int_equal(airlock_settings_set(&st, "k", "w", 1), 0);
    assert_int_equal(airlock_sim_flash_data(sim)[65536], 0x42);
    a.off = 98304; /* past the flash's end */
    assert_int_equal(airlock_settings_open(&st, &a), AIRLOCK_ERR_INVAL);
    airlock_sim_flash_close(sim);
}

static void test_batch_is_one_write(void **state)
{
    (void)state;
    struct dev d;
    dev_open(&d, 4);
    airlock_setting_t kv[3] = {{"a", "1", 1}, {"b", "22", 2}, {"c", "333", 3}};
    airlock_sim_flash_counts_t c0, c1;
    airlock_sim_flash_counts(d.sim, &c0);
    assert_int_equal(airlock_settings_set_many(&d.st, kv, 3), 0);
    airlock_sim_flash_counts(d.sim, &c1);
    assert_int_equal(c1.erases - c0.erases, 2); /* one copy: two sectors */
    expect(&d, "a", "1", 1);
    expect(&d, "b", "22", 2);
    expect(&d, "c", "333", 3);
    dev_close(&d);
}

/*
 * The state before: server, token, ca (3.5 KiB), persist (128 bytes),
 * gone. The write: server and persist change, gone is deleted, fresh is
 * added, in one batch.
 */
struct values {
    char server[40];
    uint8_t ca[3500];
    uint8_t persist[128];
};

static void old_values(struct values *v)
{
    snprintf(v->server, sizeof(v->server), "https://old.example:8443");
    fill(v->ca, sizeof(v->ca), 1);
    fill(v->persist, sizeof(v->persist), 2);
}

static void new_values(struct values *v)
{
    snprintf(v->server, sizeof(v->server), "https://new.example:9443/x");
    fill(v->ca, sizeof(v->ca), 1);
    fill(v->persist, sizeof(v->persist), 3);
}

static int write_old(struct dev *d)
{
    struct values v;
    old_values(&v);
    airlock_setting_t kv[5] = {
        {"server", v.server, strlen(v.server)},
        {"token", "TargetToken abc", 15},
        {"ca", v.ca, sizeof(v.ca)},
        {"ddi.persist", v.persist, sizeof(v.persist)},
        {"gone", "soon", 4},
    };
    return airlock_settings_set_many(&d->st, kv, 5);
}

static int write_new(struct dev *d)
{
    struct values v;
    new_values(&v);
    airlock_setting_t kv[4] = {
        {"server", v.server, strlen(v.server)},
        {"ddi.persist", v.persist, sizeof(v.persist)},
        {"gone", NULL, 0},
        {"fresh", "yes", 3},
    };
    return airlock_settings_set_many(&d->st, kv, 4);
}

/* 1: every old value, 2: every new value; fails the test on a mix. */
static int which(struct dev *d)
{
    struct values o, n;
    old_values(&o);
    new_values(&n);
    static uint8_t buf[8192];
    size_t len;
    expect(d, "token", "TargetToken abc", 15);
    expect(d, "ca", o.ca, sizeof(o.ca));
    assert_int_equal(airlock_settings_get(&d->st, "server", buf, sizeof(buf), &len), 1);
    if (len == strlen(o.server) && memcmp(buf, o.server, len) == 0) {
        expect(d, "ddi.persist", o.persist, sizeof(o.persist));
        expect(d, "gone", "soon", 4);
        expect_absent(d, "fresh");
        return 1;
    }
    assert_int_equal(len, strlen(n.server));
    assert_memory_equal(buf, n.server, len);
    expect(d, "ddi.persist", n.persist, sizeof(n.persist));
    expect_absent(d, "gone");
    expect(d, "fresh", "yes", 3);
    return 2;
}

/*
 * Cut power at every flash operation of one write. writes_before == 0: the
 * write is the first (old values into an empty store: afterwards empty or
 * all old); else it is write_new over the old values (all old or all new).
 */
static void cut_every_op(uint32_t write_size, int tear, uint64_t seed, int writes_before)
{
    struct dev d;
    int (*cut_write)(struct dev *) = writes_before ? write_new : write_old;
    dev_open(&d, write_size);
    airlock_sim_flash_set_tear(d.sim, tear);
    for (int i = 0; i < writes_before; i++) {
        assert_int_equal(write_old(&d), 0);
    }
    airlock_sim_flash_snapshot_t *snap;
    assert_int_equal(airlock_sim_flash_save(d.sim, &snap), 0);
    airlock_sim_flash_reset_counts(d.sim);
    assert_int_equal(cut_write(&d), 0);
    uint64_t nops = airlock_sim_flash_ops(d.sim);
    assert_true(nops > 10);
    unsigned seen[3] = {0, 0, 0};
    for (uint64_t k = 0; k < nops; k++) {
        assert_int_equal(airlock_sim_flash_restore(d.sim, snap), 0);
        airlock_sim_flash_reset_counts(d.sim);
        airlock_sim_flash_seed(d.sim, seed + k);
        assert_int_equal(airlock_settings_open(&d.st, &d.area), 0);
        airlock_sim_flash_cut_at(d.sim, k);
        int rc = cut_write(&d);
        if (rc != AIRLOCK_ERR_IO) {
            fail_msg("write %d, cut at op %llu (seed %llu): got %d", writes_before + 1,
                     (unsigned long long)k, (unsigned long long)(seed + k), rc);
        }
        airlock_sim_flash_power_on(d.sim);
        assert_int_equal(airlock_settings_open(&d.st, &d.area), 0);
        int got;
        if (writes_before == 0) {
            /* empty (0) or every old value (1) */
            got = airlock_settings_used(&d.st) == 0 ? 0 : which(&d);
            assert_int_not_equal(got, 2);
        } else {
            got = which(&d);
        }
        seen[got]++;
        /* the store goes on working: the next writes land, no NOR rule broken */
        if (got == 0) {
            assert_int_equal(write_old(&d), 0);
        }
        assert_int_equal(write_new(&d), 0);
        assert_int_equal(airlock_settings_open(&d.st, &d.area), 0);
        assert_int_equal(which(&d), 2);
        if (airlock_sim_flash_violations(d.sim, 0) != 0) {
            fail_msg("cut at op %llu (seed %llu): %s", (unsigned long long)k,
                     (unsigned long long)(seed + k), airlock_sim_flash_violation_str(d.sim));
        }
    }
    /* a cut at the first operation keeps what was there; a late one may show the write */
    assert_true(seen[writes_before ? 1 : 0] > 0);
    if (tear == AIRLOCK_SIM_FLASH_TEAR_DONE) {
        assert_true(seen[writes_before ? 2 : 1] > 0); /* the last op done: the write counts */
    }
    airlock_sim_flash_snapshot_free(snap);
    dev_close(&d);
}

static void test_power_cut_every_op(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 4, 8, 16, 32};
    static const int tears[] = {AIRLOCK_SIM_FLASH_TEAR_ANY, AIRLOCK_SIM_FLASH_TEAR_PARTIAL,
                                AIRLOCK_SIM_FLASH_TEAR_NOTHING, AIRLOCK_SIM_FLASH_TEAR_DONE};
    printf("# seed %u (each run reseeds with seed + cut index)\n", SEED);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t t = 0; t < sizeof(tears) / sizeof(tears[0]); t++) {
            for (int before = 0; before <= 2; before++) {
                cut_every_op(sizes[i], tears[t], SEED + 1000u * i + 100u * t, before);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blank_is_empty),     cmocka_unit_test(test_set_get_reopen),
        cmocka_unit_test(test_refusals),           cmocka_unit_test(test_area_must_end_on_a_sector),
        cmocka_unit_test(test_batch_is_one_write), cmocka_unit_test(test_power_cut_every_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
