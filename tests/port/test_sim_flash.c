/*
 * Unit tests for port/sim_flash.c: every NOR rule violation, counters,
 * power cuts landing on exactly the chosen operation, tears that stay
 * physically possible and reproduce from their seed, the word-at-a-time
 * rule checks against a byte-by-byte model, file backing that survives
 * close and kill (creation included), snapshots. Base seed: $AIRLOCK_SEED
 * or 0x5eed.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "airlock/err.h"
#include "airlock/layout.h"
#include "airlock/sim_flash.h"

static uint64_t base_seed = 0x5eed;

/* ---- helpers ------------------------------------------------------------ */

static const airlock_sector_run_t uniform4k[] = {{16, 4096}}; /* 64 KiB */
static const airlock_sector_run_t stm32f4[] = {{4, 16384}, {1, 65536}, {7, 131072}};

static airlock_sim_flash_t *mk(uint32_t ws, uint8_t ev, const airlock_sector_run_t *runs,
                               uint32_t nruns)
{
    airlock_sim_flash_geometry_t geo = {0, ws, ev, runs, nruns};
    airlock_sim_flash_t *sim = NULL;
    assert_int_equal(airlock_sim_flash_create(&geo, &sim), 0);
    assert_non_null(sim);
    return sim;
}

static airlock_sim_flash_t *mk4k(uint32_t ws, uint8_t ev)
{
    return mk(ws, ev, uniform4k, 1);
}

/* A test-local PRNG (independent of the sim's) for data patterns. */
static uint64_t trng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void pattern(uint8_t *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)trng(&s);
    }
}

static bool all_eq(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return true;
}

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/simflash_%ld_%s.bin", TEST_TMP_DIR, (long)getpid(), name);
    unlink(buf);
}

/* ---- geometry ------------------------------------------------------------ */

static void test_create_checks_geometry(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = NULL;
    airlock_sector_run_t odd[] = {{2, 100}};
    airlock_sim_flash_geometry_t bad_ws = {0, 3, 0xff, uniform4k, 1};
    airlock_sim_flash_geometry_t big_ws = {0, 64, 0xff, uniform4k, 1};
    airlock_sim_flash_geometry_t bad_sum = {4096, 4, 0xff, uniform4k, 1};
    airlock_sim_flash_geometry_t no_runs = {0, 4, 0xff, uniform4k, 0};
    airlock_sim_flash_geometry_t bad_sec = {0, 8, 0xff, odd, 1};
    assert_int_equal(airlock_sim_flash_create(&bad_ws, &sim), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_create(&big_ws, &sim), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_create(&bad_sum, &sim), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_create(&no_runs, &sim), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_create(&bad_sec, &sim), AIRLOCK_ERR_INVAL);
    assert_null(sim);

    airlock_sim_flash_geometry_t ok = {65536, 4, 0xff, uniform4k, 1};
    assert_int_equal(airlock_sim_flash_create(&ok, &sim), 0);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    assert_int_equal(airlock_flash_check(fl), 0);
    assert_int_equal(fl->size, 65536);
    assert_int_equal(fl->write_size, 4);
    assert_int_equal(fl->erased_val, 0xff);
    assert_non_null(fl->sync);
    assert_true(all_eq(airlock_sim_flash_data(sim), 65536, 0xff));
    assert_int_equal(airlock_sim_flash_get_seed(sim), 1);
    assert_true(airlock_sim_flash_powered(sim));
    airlock_sim_flash_close(sim);
    airlock_sim_flash_close(NULL);
}

/* The sim's sector table agrees with core's airlock_flash_sector. */
static void test_mixed_sector_map(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk(8, 0xff, stm32f4, 3);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t *d = airlock_sim_flash_data(sim);
    assert_int_equal(fl->size, 1024 * 1024);
    assert_int_equal(airlock_sim_flash_nsectors(sim), 12);
    const uint32_t want_start[12] = {0,      16384,  32768,  49152,  65536,  131072,
                                     262144, 393216, 524288, 655360, 786432, 917504};
    for (uint32_t s = 0; s < 12; s++) {
        uint32_t start, size, cstart, csize;
        assert_int_equal(airlock_sim_flash_sector(sim, s, &start, &size, NULL), 0);
        assert_int_equal(start, want_start[s]);
        assert_int_equal(size, s < 4 ? 16384 : s == 4 ? 65536 : 131072);
        assert_int_equal(airlock_flash_sector(fl, start + size - 1, &cstart, &csize), 0);
        assert_int_equal(cstart, start);
        assert_int_equal(csize, size);
    }
    assert_int_equal(airlock_sim_flash_sector(sim, 12, NULL, NULL, NULL), AIRLOCK_ERR_INVAL);

    /* Fill the whole device, then erase each sector: exactly that range goes. */
    uint8_t *zeros = calloc(fl->size, 1);
    assert_non_null(zeros);
    assert_int_equal(airlock_sim_flash_load(sim, 0, zeros, fl->size), 0);
    free(zeros);
    for (uint32_t s = 0; s < 12; s++) {
        uint32_t start, size;
        airlock_sim_flash_sector(sim, s, &start, &size, NULL);
        /* Not a sector start: a write unit in, the last byte, the middle. */
        assert_int_equal(fl->erase(fl->ctx, start + 8), AIRLOCK_SIM_FLASH_ERR_ERASE_ADDR);
        assert_int_equal(fl->erase(fl->ctx, start + size - 1), AIRLOCK_SIM_FLASH_ERR_ERASE_ADDR);
        assert_int_equal(fl->erase(fl->ctx, start + size / 2), AIRLOCK_SIM_FLASH_ERR_ERASE_ADDR);
        assert_int_equal(fl->erase(fl->ctx, start), 0);
        assert_true(all_eq(d + start, size, 0xff));
        if (s + 1 < 12) {
            assert_int_equal(d[start + size], 0x00); /* next sector untouched */
        }
        if (start > 0) {
            assert_true(all_eq(d, start, 0xff)); /* earlier ones stay erased */
        }
        assert_false(airlock_sim_flash_programmed(sim, start));
        assert_true(s + 1 == 12 || airlock_sim_flash_programmed(sim, start + size));
    }
    assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_ERASE_ADDR), 36);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 36);
    /* 64 KiB sector: erased once; max wear 1 at sector 0. */
    airlock_sim_flash_counts_t c;
    airlock_sim_flash_sector(sim, 4, NULL, NULL, &c);
    assert_int_equal(c.erases, 1);
    uint32_t at = 99;
    assert_int_equal(airlock_sim_flash_max_erases(sim, &at), 1);
    assert_int_equal(at, 0);
    airlock_sim_flash_close(sim);
}

/* ---- NOR rules ------------------------------------------------------------- */

static void test_prog_erase_reprog_cycle(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t buf[64], back[64];
    pattern(buf, sizeof buf, 1);
    assert_int_equal(fl->prog(fl->ctx, 4096, buf, 64), 0);
    /* Reads at any alignment. */
    assert_int_equal(fl->read(fl->ctx, 4097, back, 61), 0);
    assert_memory_equal(back, buf + 1, 61);
    assert_int_equal(fl->read(fl->ctx, 4093, back, 3), 0);
    assert_true(all_eq(back, 3, 0xff));
    assert_int_equal(fl->read(fl->ctx, 0, back, 0), 0);
    assert_int_equal(fl->read(fl->ctx, 65535, back, 1), 0);
    assert_true(airlock_sim_flash_programmed(sim, 4096));
    assert_true(airlock_sim_flash_programmed(sim, 4096 + 63));
    assert_false(airlock_sim_flash_programmed(sim, 4096 + 64));
    assert_false(airlock_sim_flash_programmed(sim, 70000));

    assert_int_equal(fl->erase(fl->ctx, 4096), 0);
    assert_true(all_eq(airlock_sim_flash_data(sim) + 4096, 4096, 0xff));
    assert_false(airlock_sim_flash_programmed(sim, 4096));
    pattern(buf, sizeof buf, 2);
    assert_int_equal(fl->prog(fl->ctx, 4096, buf, 64), 0);
    assert_int_equal(fl->read(fl->ctx, 4096, back, 64), 0);
    assert_memory_equal(back, buf, 64);
    /* Adjacent units are independent. */
    assert_int_equal(fl->prog(fl->ctx, 4096 + 64, buf, 4), 0);
    assert_int_equal(fl->prog(fl->ctx, 4096 - 4, buf, 4), 0);
    assert_int_equal(fl->sync(fl->ctx), 0);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 0);
    assert_false(airlock_sim_flash_last_violation(sim, NULL));
    assert_string_equal(airlock_sim_flash_violation_str(sim), "");
    airlock_sim_flash_close(sim);
}

static void expect_violation(airlock_sim_flash_t *sim, int err, int op, uint32_t addr, uint32_t at)
{
    airlock_sim_flash_violation_t v;
    assert_true(airlock_sim_flash_last_violation(sim, &v));
    assert_int_equal(v.err, err);
    assert_int_equal(v.op, op);
    assert_int_equal(v.addr, addr);
    assert_int_equal(v.at, at);
}

static void test_violation_range(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t buf[8] = {0};
    assert_int_equal(fl->prog(fl->ctx, 65536, buf, 4), AIRLOCK_SIM_FLASH_ERR_RANGE);
    expect_violation(sim, AIRLOCK_SIM_FLASH_ERR_RANGE, AIRLOCK_SIM_FLASH_OP_PROG, 65536, 65536);
    assert_int_equal(fl->prog(fl->ctx, 65532, buf, 8), AIRLOCK_SIM_FLASH_ERR_RANGE);
    assert_int_equal(fl->prog(fl->ctx, 0xfffffffcu, buf, 8), AIRLOCK_SIM_FLASH_ERR_RANGE);
    assert_int_equal(fl->read(fl->ctx, 65535, buf, 2), AIRLOCK_SIM_FLASH_ERR_RANGE);
    expect_violation(sim, AIRLOCK_SIM_FLASH_ERR_RANGE, AIRLOCK_SIM_FLASH_OP_READ, 65535, 65535);
    assert_int_equal(fl->read(fl->ctx, 0xffffffffu, buf, 2), AIRLOCK_SIM_FLASH_ERR_RANGE);
    assert_int_equal(fl->erase(fl->ctx, 65536), AIRLOCK_SIM_FLASH_ERR_RANGE);
    expect_violation(sim, AIRLOCK_SIM_FLASH_ERR_RANGE, AIRLOCK_SIM_FLASH_OP_ERASE, 65536, 65536);
    assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_RANGE), 6);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 6);
    /* The prog at 65532 was refused whole: its in-range part is untouched. */
    assert_true(all_eq(airlock_sim_flash_data(sim), 65536, 0xff));
    assert_false(airlock_sim_flash_programmed(sim, 65532));
    /* Refused calls are not counted as performed. */
    airlock_sim_flash_counts_t c;
    airlock_sim_flash_counts(sim, &c);
    assert_int_equal(c.prog_calls + c.read_calls + c.erases, 0);
    /* NULL buffers are argument errors, not violations. */
    assert_int_equal(fl->prog(fl->ctx, 0, NULL, 4), AIRLOCK_ERR_INVAL);
    assert_int_equal(fl->read(fl->ctx, 0, NULL, 4), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 6);
    airlock_sim_flash_close(sim);
}

static void test_violation_align(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {2, 4, 8, 16, 32};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint32_t w = sizes[i];
        airlock_sim_flash_t *sim = mk4k(w, 0xff);
        const airlock_flash_t *fl = airlock_sim_flash_port(sim);
        uint8_t buf[64];
        memset(buf, 0x00, sizeof buf);
        uint64_t n = 0;
        for (uint32_t off = 1; off < w; off++) {
            assert_int_equal(fl->prog(fl->ctx, 256 + off, buf, w), AIRLOCK_SIM_FLASH_ERR_ALIGN);
            assert_int_equal(fl->prog(fl->ctx, 256, buf, off), AIRLOCK_SIM_FLASH_ERR_ALIGN);
            assert_int_equal(fl->prog(fl->ctx, 256, buf, w + off), AIRLOCK_SIM_FLASH_ERR_ALIGN);
            n += 3;
        }
        expect_violation(sim, AIRLOCK_SIM_FLASH_ERR_ALIGN, AIRLOCK_SIM_FLASH_OP_PROG, 256, 256);
        assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_ALIGN), n);
        assert_int_equal(airlock_sim_flash_violations(sim, 0), n);
        assert_true(all_eq(airlock_sim_flash_data(sim), 65536, 0xff));
        assert_false(airlock_sim_flash_programmed(sim, 256));
        /* Aligned is fine; reads need no alignment. */
        assert_int_equal(fl->prog(fl->ctx, 256, buf, 2 * w), 0);
        assert_int_equal(fl->read(fl->ctx, 257, buf, 3), 0);
        assert_int_equal(airlock_sim_flash_violations(sim, 0), n);
        airlock_sim_flash_close(sim);
    }
}

static void test_violation_reprog(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(8, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t *d = airlock_sim_flash_data(sim);
    uint8_t buf[32], ff[32];
    pattern(buf, sizeof buf, 3);
    memset(ff, 0xff, sizeof ff);

    /* The same bytes again: still a second prog. */
    assert_int_equal(fl->prog(fl->ctx, 64, buf, 8), 0);
    assert_int_equal(fl->prog(fl->ctx, 64, buf, 8), AIRLOCK_SIM_FLASH_ERR_REPROG);
    expect_violation(sim, AIRLOCK_SIM_FLASH_ERR_REPROG, AIRLOCK_SIM_FLASH_OP_PROG, 64, 64);

    /* Programming erased-equal bytes still programs the unit. */
    assert_int_equal(fl->prog(fl->ctx, 128, ff, 8), 0);
    assert_true(airlock_sim_flash_programmed(sim, 128));
    assert_int_equal(fl->prog(fl->ctx, 128, buf, 8), AIRLOCK_SIM_FLASH_ERR_REPROG);
    assert_true(all_eq(d + 128, 8, 0xff)); /* refused: unchanged */

    /* A multi-unit prog overlapping one programmed unit: refused whole, `at` names it. */
    assert_int_equal(fl->prog(fl->ctx, 200, buf, 8), 0);
    assert_int_equal(fl->prog(fl->ctx, 184, buf, 32), AIRLOCK_SIM_FLASH_ERR_REPROG);
    expect_violation(sim, AIRLOCK_SIM_FLASH_ERR_REPROG, AIRLOCK_SIM_FLASH_OP_PROG, 184, 200);
    assert_true(all_eq(d + 184, 16, 0xff));
    assert_true(all_eq(d + 208, 8, 0xff));
    assert_false(airlock_sim_flash_programmed(sim, 184));

    /* A prog that clears more bits over a programmed unit is still REPROG, not BIT_BACK. */
    uint8_t zero[8] = {0};
    assert_int_equal(fl->prog(fl->ctx, 64, zero, 8), AIRLOCK_SIM_FLASH_ERR_REPROG);
    assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_REPROG), 4);
    assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_BIT_BACK), 0);

    /* After an erase all of it may be programmed again. */
    assert_int_equal(fl->erase(fl->ctx, 0), 0);
    assert_int_equal(fl->prog(fl->ctx, 64, buf, 8), 0);
    assert_int_equal(fl->prog(fl->ctx, 128, buf, 8), 0);
    assert_int_equal(fl->prog(fl->ctx, 184, buf, 32), 0);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 4);
    airlock_sim_flash_close(sim);
}

static void test_violation_bit_back(void **state)
{
    (void)state;
    for (int ev = 0; ev < 2; ev++) {
        uint8_t e = ev ? 0xff : 0x00;
        airlock_sim_flash_t *sim = mk4k(4, e);
        const airlock_flash_t *fl = airlock_sim_flash_port(sim);
        uint8_t *d = airlock_sim_flash_data(sim);
        /* Bits already away from erased (written behind the rules' back), unit not
           flagged: a prog that keeps them is fine, one that needs them back is not. */
        d[16] = (uint8_t)(e ^ 0x0f);
        d[22] = (uint8_t)(e ^ 0x80);
        uint8_t keep[4] = {(uint8_t)(e ^ 0xff), e, e, e};
        assert_int_equal(fl->prog(fl->ctx, 16, keep, 4), 0);
        uint8_t back[4] = {e, e, (uint8_t)(e ^ 0x7f), e};
        assert_int_equal(fl->prog(fl->ctx, 20, back, 4), AIRLOCK_SIM_FLASH_ERR_BIT_BACK);
        expect_violation(sim, AIRLOCK_SIM_FLASH_ERR_BIT_BACK, AIRLOCK_SIM_FLASH_OP_PROG, 20, 22);
        assert_int_equal(d[22], (uint8_t)(e ^ 0x80));
        assert_false(airlock_sim_flash_programmed(sim, 20));
        assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_BIT_BACK), 1);
        assert_int_equal(airlock_sim_flash_violations(sim, 0), 1);
        airlock_sim_flash_close(sim);
    }
}

/* The five rule errors are distinct, named, and counted apart; reset clears them. */
static void test_violation_kinds_distinct(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t buf[8] = {0};
    airlock_sim_flash_data(sim)[40] = 0x00;
    assert_int_equal(fl->prog(fl->ctx, 0, buf, 4), 0);
    const uint8_t ff_then_0[4] = {0xff, 0, 0, 0};
    int got[5];
    got[0] = fl->prog(fl->ctx, 65536, buf, 4);
    got[1] = fl->prog(fl->ctx, 2, buf, 4);
    got[2] = fl->prog(fl->ctx, 0, buf, 4);
    got[3] = fl->prog(fl->ctx, 40, ff_then_0, 4);
    got[4] = fl->erase(fl->ctx, 100);
    const int want[5] = {AIRLOCK_SIM_FLASH_ERR_RANGE, AIRLOCK_SIM_FLASH_ERR_ALIGN,
                         AIRLOCK_SIM_FLASH_ERR_REPROG, AIRLOCK_SIM_FLASH_ERR_BIT_BACK,
                         AIRLOCK_SIM_FLASH_ERR_ERASE_ADDR};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(got[i], want[i]);
        assert_int_equal(airlock_sim_flash_violations(sim, want[i]), 1);
        for (int j = 0; j < i; j++) {
            assert_int_not_equal(want[i], want[j]);
            assert_string_not_equal(airlock_sim_flash_errname(want[i]),
                                    airlock_sim_flash_errname(want[j]));
        }
        assert_true(want[i] <= -100); /* outside enum airlock_err */
    }
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 5);
    assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_CUT), 0);
    assert_non_null(strstr(airlock_sim_flash_violation_str(sim), "ERASE_ADDR"));
    assert_non_null(strstr(airlock_sim_flash_violation_str(sim), "erase at 0x64"));
    assert_string_equal(airlock_sim_flash_errname(AIRLOCK_SIM_FLASH_ERR_REPROG), "REPROG");
    assert_string_equal(airlock_sim_flash_errname(AIRLOCK_ERR_INVAL), "INVAL");
    assert_string_equal(airlock_sim_flash_strerror(AIRLOCK_ERR_OK), "success");
    airlock_sim_flash_reset_counts(sim);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 0);
    assert_false(airlock_sim_flash_last_violation(sim, NULL));
    airlock_sim_flash_close(sim);
}

/* ---- write sizes and erased values ---------------------------------------- */

static void test_write_sizes_and_erased_vals(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 2, 4, 8, 16, 32};
    static const uint8_t evs[] = {0xff, 0x00};
    for (size_t i = 0; i < 6; i++) {
        for (size_t k = 0; k < 2; k++) {
            uint32_t w = sizes[i];
            uint8_t e = evs[k];
            airlock_sim_flash_t *sim = mk4k(w, e);
            const airlock_flash_t *fl = airlock_sim_flash_port(sim);
            uint8_t *d = airlock_sim_flash_data(sim);
            uint8_t buf[4096], back[4096];
            assert_true(all_eq(d, 65536, e));
            pattern(buf, sizeof buf, w * 2 + k);
            /* Every unit of sector 1 programmed one at a time. */
            for (uint32_t off = 0; off < 4096; off += w) {
                assert_int_equal(fl->prog(fl->ctx, 4096 + off, buf + off, w), 0);
            }
            assert_int_equal(fl->read(fl->ctx, 4096, back, 4096), 0);
            assert_memory_equal(back, buf, 4096);
            for (uint32_t off = 0; off < 4096; off += w) {
                assert_int_equal(fl->prog(fl->ctx, 4096 + off, buf + off, w),
                                 AIRLOCK_SIM_FLASH_ERR_REPROG);
            }
            if (w > 1) {
                assert_int_equal(fl->prog(fl->ctx, 8192 + w / 2, buf, w),
                                 AIRLOCK_SIM_FLASH_ERR_ALIGN);
            }
            assert_int_equal(fl->erase(fl->ctx, 4096), 0);
            assert_true(all_eq(d + 4096, 4096, e));
            assert_int_equal(fl->prog(fl->ctx, 4096, buf, 4096), 0);
            assert_memory_equal(d + 4096, buf, 4096);
            assert_int_equal(airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_REPROG),
                             4096 / w);
            assert_int_equal(airlock_sim_flash_violations(sim, 0), 4096 / w + (w > 1));
            airlock_sim_flash_close(sim);
        }
    }
}

/* ---- counters --------------------------------------------------------------- */

static void test_counters_exact(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk(8, 0xff, stm32f4, 3);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    static uint8_t buf[65536];
    airlock_sim_flash_counts_t c;
    pattern(buf, sizeof buf, 9);

    /* A prog and a read spanning sectors 0 and 1 (16 KiB boundary). */
    assert_int_equal(fl->prog(fl->ctx, 16384 - 64, buf, 128), 0);
    assert_int_equal(fl->read(fl->ctx, 16384 - 10, buf, 30), 0);
    assert_int_equal(fl->read(fl->ctx, 5, buf, 0), 0);
    assert_int_equal(fl->erase(fl->ctx, 65536), 0);
    assert_int_equal(fl->erase(fl->ctx, 65536), 0);
    assert_int_equal(fl->erase(fl->ctx, 65536), 0);
    assert_int_equal(fl->erase(fl->ctx, 0), 0);
    assert_int_equal(fl->prog(fl->ctx, 65536, buf, 65536), 0);
    assert_int_equal(fl->sync(fl->ctx), 0);
    /* Refused calls do not count. */
    assert_int_equal(fl->prog(fl->ctx, 3, buf, 8), AIRLOCK_SIM_FLASH_ERR_ALIGN);
    assert_int_equal(fl->erase(fl->ctx, 3), AIRLOCK_SIM_FLASH_ERR_ERASE_ADDR);

    airlock_sim_flash_counts(sim, &c);
    assert_int_equal(c.prog_calls, 2);
    assert_int_equal(c.prog_bytes, 128 + 65536);
    assert_int_equal(c.read_calls, 2);
    assert_int_equal(c.read_bytes, 30);
    assert_int_equal(c.erases, 4);
    assert_int_equal(c.syncs, 1);

    airlock_sim_flash_sector(sim, 0, NULL, NULL, &c);
    assert_int_equal(c.prog_calls, 1);
    assert_int_equal(c.prog_bytes, 64);
    assert_int_equal(c.read_calls, 2); /* the spanning read and the empty one */
    assert_int_equal(c.read_bytes, 10);
    assert_int_equal(c.erases, 1);
    airlock_sim_flash_sector(sim, 1, NULL, NULL, &c);
    assert_int_equal(c.prog_calls, 1);
    assert_int_equal(c.prog_bytes, 64);
    assert_int_equal(c.read_calls, 1);
    assert_int_equal(c.read_bytes, 20);
    assert_int_equal(c.erases, 0);
    airlock_sim_flash_sector(sim, 4, NULL, NULL, &c);
    assert_int_equal(c.prog_calls, 1);
    assert_int_equal(c.prog_bytes, 65536);
    assert_int_equal(c.erases, 3);
    assert_int_equal(c.syncs, 0);
    uint32_t at;
    assert_int_equal(airlock_sim_flash_max_erases(sim, &at), 3);
    assert_int_equal(at, 4);
    assert_int_equal(airlock_sim_flash_ops(sim), 8); /* 2 + 4 + 2 refused, numbered anyway */

    airlock_sim_flash_reset_counts(sim);
    airlock_sim_flash_counts(sim, &c);
    assert_int_equal(c.prog_calls + c.prog_bytes + c.read_calls + c.read_bytes + c.erases + c.syncs,
                     0);
    assert_int_equal(airlock_sim_flash_max_erases(sim, NULL), 0);
    assert_int_equal(airlock_sim_flash_ops(sim), 0);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 0);
    /* Contents survive a reset. */
    assert_memory_equal(airlock_sim_flash_data(sim) + 65536, buf, 16);
    airlock_sim_flash_close(sim);
}

/* ---- power cuts ---------------------------------------------------------------- */

/* The scenario the cut tests run: 6 numbered ops, reads and a sync in between. */
static int scenario(const airlock_flash_t *fl, int *failed_at)
{
    uint8_t buf[64], rd[64];
    int rc;
    pattern(buf, sizeof buf, 77);
    *failed_at = -1;
#define STEP(i, call)                                                                              \
    if ((rc = (call)) != 0) {                                                                      \
        *failed_at = (i);                                                                          \
        return rc;                                                                                 \
    }
    STEP(0, fl->erase(fl->ctx, 4096));
    STEP(1, fl->read(fl->ctx, 4096, rd, 64));
    STEP(2, fl->prog(fl->ctx, 4096, buf, 64));
    STEP(3, fl->prog(fl->ctx, 4096 + 64, buf, 32));
    STEP(4, fl->sync(fl->ctx));
    STEP(5, fl->read(fl->ctx, 4096, rd, 64));
    STEP(6, fl->erase(fl->ctx, 8192));
    STEP(7, fl->prog(fl->ctx, 8192, buf, 64));
    STEP(8, fl->prog(fl->ctx, 0, buf, 16));
#undef STEP
    return 0;
}

/* Scenario step index of numbered op k (prog/erase only). */
static const int numbered_step[6] = {0, 2, 3, 6, 7, 8};

static void expect_all_fail(const airlock_flash_t *fl, uint8_t *d, size_t size)
{
    uint8_t *before = malloc(size);
    uint8_t buf[16] = {0}, rd[16];
    assert_non_null(before);
    memcpy(before, d, size);
    memset(rd, 0xa5, sizeof rd);
    assert_int_equal(fl->read(fl->ctx, 0, rd, 16), AIRLOCK_SIM_FLASH_ERR_POWER_OFF);
    assert_true(all_eq(rd, 16, 0xa5));
    assert_int_equal(fl->prog(fl->ctx, 32768, buf, 16), AIRLOCK_SIM_FLASH_ERR_POWER_OFF);
    assert_int_equal(fl->erase(fl->ctx, 32768), AIRLOCK_SIM_FLASH_ERR_POWER_OFF);
    assert_int_equal(fl->sync(fl->ctx), AIRLOCK_SIM_FLASH_ERR_POWER_OFF);
    /* Power is off: no rule checks either. */
    assert_int_equal(fl->erase(fl->ctx, 3), AIRLOCK_SIM_FLASH_ERR_POWER_OFF);
    assert_memory_equal(before, d, size);
    free(before);
}

static void test_cut_at_each_op(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    airlock_sim_flash_snapshot_t *start;
    int failed;
    assert_int_equal(airlock_sim_flash_save(sim, &start), 0);

    /* Learn the number of ops uncut. */
    assert_int_equal(scenario(fl, &failed), 0);
    uint64_t n = airlock_sim_flash_ops(sim);
    assert_int_equal(n, 6);

    for (uint64_t k = 0; k < n; k++) {
        airlock_sim_flash_cut_t cut;
        assert_int_equal(airlock_sim_flash_restore(sim, start), 0);
        airlock_sim_flash_reset_counts(sim);
        airlock_sim_flash_seed(sim, base_seed + k);
        airlock_sim_flash_cut_at(sim, k);
        assert_int_equal(scenario(fl, &failed), AIRLOCK_SIM_FLASH_ERR_CUT);
        assert_int_equal(failed, numbered_step[k]);
        assert_false(airlock_sim_flash_powered(sim));
        assert_true(airlock_sim_flash_last_cut(sim, &cut));
        assert_int_equal(cut.index, k);
        assert_int_equal(cut.err, AIRLOCK_SIM_FLASH_ERR_CUT);
        assert_int_equal(cut.op,
                         k == 0 || k == 3 ? AIRLOCK_SIM_FLASH_OP_ERASE : AIRLOCK_SIM_FLASH_OP_PROG);
        assert_int_equal(airlock_sim_flash_ops(sim), k + 1);
        assert_true(strlen(airlock_sim_flash_cut_str(sim)) > 0);
        expect_all_fail(fl, airlock_sim_flash_data(sim), 65536);
        assert_int_equal(airlock_sim_flash_ops(sim), k + 1); /* failed calls are not numbered */
        assert_int_equal(airlock_sim_flash_violations(sim, 0), 0);

        airlock_sim_flash_power_on(sim);
        assert_true(airlock_sim_flash_powered(sim));
        assert_int_equal(airlock_sim_flash_ops(sim), 0);
        uint8_t rd[4];
        assert_int_equal(fl->read(fl->ctx, 0, rd, 4), 0);
        assert_int_equal(fl->erase(fl->ctx, 32768), 0); /* no second cut pending */
    }
    airlock_sim_flash_snapshot_free(start);
    airlock_sim_flash_close(sim);
}

/* The count from cut_at survives power-on; reads and syncs are numbered only on request. */
static void test_cut_counting(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t buf[8] = {0}, rd[8];
    airlock_sim_flash_cut_t cut;

    /* cut_at counts from the call, not from 0. */
    assert_int_equal(fl->erase(fl->ctx, 0), 0);
    assert_int_equal(fl->erase(fl->ctx, 4096), 0);
    airlock_sim_flash_cut_at(sim, 1);
    assert_int_equal(fl->read(fl->ctx, 0, rd, 8), 0);
    assert_int_equal(fl->sync(fl->ctx), 0);
    assert_int_equal(fl->prog(fl->ctx, 0, buf, 4), 0);
    assert_int_equal(fl->prog(fl->ctx, 4, buf, 4), AIRLOCK_SIM_FLASH_ERR_CUT);
    airlock_sim_flash_last_cut(sim, &cut);
    assert_int_equal(cut.index, 3);

    /* Reads numbered: the cut lands on a read, which fails with random bytes. */
    airlock_sim_flash_power_on(sim);
    airlock_sim_flash_count_ops(sim, AIRLOCK_SIM_FLASH_OP_READ | AIRLOCK_SIM_FLASH_OP_PROG |
                                         AIRLOCK_SIM_FLASH_OP_ERASE);
    airlock_sim_flash_cut_at(sim, 1);
    assert_int_equal(fl->prog(fl->ctx, 8, buf, 4), 0);
    static uint8_t big[4096];
    memset(big, 0xff, sizeof big); /* what the erased sector holds */
    assert_int_equal(fl->read(fl->ctx, 4096, big, 4096), AIRLOCK_SIM_FLASH_ERR_CUT);
    assert_false(all_eq(big, sizeof big, 0xff)); /* the sector is erased; the buffer is noise */
    airlock_sim_flash_last_cut(sim, &cut);
    assert_int_equal(cut.op, AIRLOCK_SIM_FLASH_OP_READ);
    assert_int_equal(cut.index, 1);
    assert_non_null(strstr(airlock_sim_flash_cut_str(sim), "read at 0x1000 len 4096: failed"));
    expect_all_fail(fl, airlock_sim_flash_data(sim), 65536);

    /* Syncs numbered and cut. */
    airlock_sim_flash_power_on(sim);
    airlock_sim_flash_count_ops(sim, AIRLOCK_SIM_FLASH_OP_SYNC);
    airlock_sim_flash_cut_at(sim, 0);
    assert_int_equal(fl->prog(fl->ctx, 12, buf, 4), 0);
    assert_int_equal(fl->sync(fl->ctx), AIRLOCK_SIM_FLASH_ERR_CUT);
    airlock_sim_flash_last_cut(sim, &cut);
    assert_int_equal(cut.op, AIRLOCK_SIM_FLASH_OP_SYNC);
    assert_false(airlock_sim_flash_powered(sim));

    /* Default restored with 0; a pending cut survives power_on and reset_counts. */
    airlock_sim_flash_power_on(sim);
    airlock_sim_flash_count_ops(sim, 0);
    airlock_sim_flash_cut_at(sim, 2);
    assert_int_equal(fl->prog(fl->ctx, 16, buf, 4), 0);
    airlock_sim_flash_power_on(sim);
    airlock_sim_flash_reset_counts(sim);
    assert_int_equal(fl->prog(fl->ctx, 20, buf, 4), 0);
    assert_int_equal(fl->prog(fl->ctx, 24, buf, 4), AIRLOCK_SIM_FLASH_ERR_CUT);
    airlock_sim_flash_last_cut(sim, &cut);
    assert_int_equal(cut.index, 1);

    /* Cancel. */
    airlock_sim_flash_power_on(sim);
    airlock_sim_flash_cut_at(sim, 0);
    airlock_sim_flash_cut_cancel(sim);
    assert_int_equal(fl->prog(fl->ctx, 28, buf, 4), 0);

    /* Power off now: nothing torn, all fails. */
    airlock_sim_flash_power_off(sim);
    expect_all_fail(fl, airlock_sim_flash_data(sim), 65536);
    airlock_sim_flash_power_on(sim);
    assert_int_equal(fl->prog(fl->ctx, 32, buf, 4), 0);
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 0);
    airlock_sim_flash_close(sim);
}

/* A cut landing on a call that breaks a rule: the violation is returned, power goes. */
static void test_cut_on_violation(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t buf[4] = {0};
    airlock_sim_flash_cut_t cut;
    assert_int_equal(fl->prog(fl->ctx, 0, buf, 4), 0);
    airlock_sim_flash_cut_at(sim, 0);
    assert_int_equal(fl->prog(fl->ctx, 0, buf, 4), AIRLOCK_SIM_FLASH_ERR_REPROG);
    assert_false(airlock_sim_flash_powered(sim));
    airlock_sim_flash_last_cut(sim, &cut);
    assert_int_equal(cut.err, AIRLOCK_SIM_FLASH_ERR_REPROG);
    assert_int_equal(cut.tear, AIRLOCK_SIM_FLASH_TEAR_NOTHING);
    assert_non_null(strstr(airlock_sim_flash_cut_str(sim), "refused (REPROG)"));
    assert_int_equal(airlock_sim_flash_violations(sim, 0), 1);
    airlock_sim_flash_close(sim);
}

static void test_cut_random(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    uint64_t seen[10] = {0}, first[50];
    airlock_sim_flash_seed(sim, base_seed);
    for (int i = 0; i < 50; i++) {
        uint64_t k = airlock_sim_flash_cut_random(sim, 10, 20);
        assert_true(k >= 10 && k < 20);
        seen[k - 10]++;
        first[i] = k;
    }
    int distinct = 0;
    for (int i = 0; i < 10; i++) {
        distinct += seen[i] > 0;
    }
    assert_true(distinct >= 5);
    assert_int_equal(airlock_sim_flash_cut_random(sim, 7, 7), 7);
    airlock_sim_flash_seed(sim, base_seed);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(airlock_sim_flash_cut_random(sim, 10, 20), first[i]);
    }
    /* The last cut_random is pending: the 15th-ish op is cut. */
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint64_t k = first[49], i = 0;
    while (fl->erase(fl->ctx, 0) == 0) {
        i++;
    }
    assert_int_equal(i, k);
    airlock_sim_flash_close(sim);
}

/* ---- tears -------------------------------------------------------------------------- */

/*
 * Check a torn prog of len bytes at addr from old[] toward want[]: every byte
 * between old and want bitwise, units written / half / untouched as the cut
 * record says, and the programmed map matching.
 */
static void check_torn_prog(airlock_sim_flash_t *sim, uint32_t addr, const uint8_t *old,
                            const uint8_t *want, uint32_t len)
{
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    const uint8_t *d = airlock_sim_flash_data(sim) + addr;
    uint8_t e = fl->erased_val;
    uint32_t w = fl->write_size, n = len / w, full = 0, untouched = 0, partial = 0;
    airlock_sim_flash_cut_t cut;
    assert_true(airlock_sim_flash_last_cut(sim, &cut));
    assert_int_equal(cut.op, AIRLOCK_SIM_FLASH_OP_PROG);
    assert_int_equal(cut.units, n);
    for (uint32_t i = 0; i < len; i++) {
        uint8_t o = (uint8_t)(old[i] ^ e), now = (uint8_t)(d[i] ^ e), t = (uint8_t)(want[i] ^ e);
        /* old ⊆ now ⊆ want, in distance-from-erased form. */
        assert_int_equal(o & (uint8_t)~now, 0);
        assert_int_equal(now & (uint8_t)~t, 0);
    }
    for (uint32_t u = 0; u < n; u++) {
        bool is_full = memcmp(d + u * w, want + u * w, w) == 0;
        bool is_old = memcmp(d + u * w, old + u * w, w) == 0;
        bool flagged = airlock_sim_flash_programmed(sim, addr + u * w);
        if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_NOTHING) {
            assert_true(is_old);
            assert_false(flagged);
        } else if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_DONE) {
            assert_true(is_full);
            assert_true(flagged);
        } else if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_DRIFT) {
            /* every unit touched; one where no bit moved reads as untouched */
            assert_true(flagged == !is_old);
        } else if ((int32_t)u == cut.half) {
            assert_true(flagged == !is_old);
            partial++;
        } else if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_PREFIX) {
            assert_true(u < cut.done ? is_full : is_old);
            assert_true(flagged == (u < cut.done));
        } else { /* UNITS: written and programmed, or untouched */
            assert_true(flagged ? is_full : is_old);
        }
        full += is_full && flagged && (int32_t)u != cut.half;
        untouched += !flagged && (int32_t)u != cut.half;
    }
    if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_PREFIX || cut.tear == AIRLOCK_SIM_FLASH_TEAR_UNITS) {
        assert_int_equal(full, cut.done);
        assert_true(cut.done < n || cut.tear == AIRLOCK_SIM_FLASH_TEAR_UNITS);
        assert_int_equal(partial, cut.half >= 0 ? 1 : 0);
        assert_int_equal(untouched, n - cut.done - partial);
    }
    /* A torn unit counts as programmed: programming it again is a violation. */
    for (uint32_t u = 0; u < n; u++) {
        if (airlock_sim_flash_programmed(sim, addr + u * w)) {
            airlock_sim_flash_power_on(sim);
            assert_int_equal(fl->prog(fl->ctx, addr + u * w, want + u * w, w),
                             AIRLOCK_SIM_FLASH_ERR_REPROG);
            break;
        }
    }
}

/* One torn prog on a fresh sim: returns a hash of the result; fills desc. */
static uint64_t torn_prog_once(uint32_t w, uint8_t e, uint64_t seed, int policy, char *desc,
                               size_t desc_len, int *tear)
{
    airlock_sim_flash_t *sim = mk4k(w, e);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t old[256], want[256];
    airlock_sim_flash_cut_t cut;
    /* Old content: some bits already away from erased (staged unflagged through data()),
       want: a superset of them, so the prog is legal. */
    pattern(old, sizeof old, seed ^ 0xabc);
    pattern(want, sizeof want, seed ^ 0xdef);
    for (size_t i = 0; i < sizeof old; i++) {
        uint8_t o = (uint8_t)((old[i] ^ e) & (uint8_t)(old[i] >> 1) & 0x11); /* sparse */
        old[i] = (uint8_t)(o ^ e);
        want[i] = (uint8_t)(((want[i] ^ e) | o) ^ e);
    }
    memcpy(airlock_sim_flash_data(sim) + 512, old, sizeof old);
    airlock_sim_flash_seed(sim, seed);
    assert_int_equal(airlock_sim_flash_set_tear(sim, policy), 0);
    airlock_sim_flash_cut_at(sim, 0);
    assert_int_equal(fl->prog(fl->ctx, 512, want, sizeof want), AIRLOCK_SIM_FLASH_ERR_CUT);
    check_torn_prog(sim, 512, old, want, sizeof want);
    airlock_sim_flash_last_cut(sim, &cut);
    *tear = cut.tear;
    snprintf(desc, desc_len, "%s", airlock_sim_flash_cut_str(sim));
    /* Hash the torn range's contents and map. */
    uint64_t h = 1469598103934665603u;
    const uint8_t *d = airlock_sim_flash_data(sim);
    for (uint32_t i = 512; i < 768; i++) {
        h = (h ^ d[i]) * 1099511628211u;
        h = (h ^ airlock_sim_flash_programmed(sim, i)) * 1099511628211u;
    }
    /* The tear left the rest of the device alone. */
    assert_true(all_eq(d, 512, e));
    assert_true(all_eq(d + 768, 65536 - 768, e));
    airlock_sim_flash_close(sim);
    return h;
}

static void test_torn_prog(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 2, 4, 8, 16, 32};
    for (size_t i = 0; i < 6; i++) {
        for (int ev = 0; ev < 2; ev++) {
            uint8_t e = ev ? 0xff : 0x00;
            int seen[8] = {0};
            uint64_t hashes[40];
            for (int s = 0; s < 40; s++) {
                char d1[200], d2[200];
                int t1, t2;
                uint64_t seed = base_seed * 1000 + (uint64_t)s;
                uint64_t h1 = torn_prog_once(sizes[i], e, seed, AIRLOCK_SIM_FLASH_TEAR_ANY, d1,
                                             sizeof d1, &t1);
                uint64_t h2 = torn_prog_once(sizes[i], e, seed, AIRLOCK_SIM_FLASH_TEAR_ANY, d2,
                                             sizeof d2, &t2);
                assert_int_equal(h1, h2); /* same seed, same tear, byte for byte */
                assert_string_equal(d1, d2);
                assert_int_equal(t1, t2);
                seen[t1]++;
                hashes[s] = h1;
            }
            /* Different seeds give different tears. */
            int distinct = 0;
            for (int a = 0; a < 40; a++) {
                int dup = 0;
                for (int b = 0; b < a; b++) {
                    dup |= hashes[a] == hashes[b];
                }
                distinct += !dup;
            }
            assert_true(distinct >= 20);
            assert_true(seen[AIRLOCK_SIM_FLASH_TEAR_PREFIX] > 0);
            assert_true(seen[AIRLOCK_SIM_FLASH_TEAR_UNITS] > 0);
            assert_int_equal(seen[AIRLOCK_SIM_FLASH_TEAR_NOISE], 0);
        }
    }
}

/* Every tear kind can be forced and satisfies its definition. */
static void test_torn_prog_forced(void **state)
{
    (void)state;
    static const int kinds[] = {AIRLOCK_SIM_FLASH_TEAR_NOTHING, AIRLOCK_SIM_FLASH_TEAR_DONE,
                                AIRLOCK_SIM_FLASH_TEAR_PREFIX,  AIRLOCK_SIM_FLASH_TEAR_UNITS,
                                AIRLOCK_SIM_FLASH_TEAR_DRIFT,   AIRLOCK_SIM_FLASH_TEAR_NOISE,
                                AIRLOCK_SIM_FLASH_TEAR_PARTIAL};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int half_seen = 0;
        for (int s = 0; s < 16; s++) {
            char desc[200];
            int tear;
            torn_prog_once(8, 0xff, base_seed + (uint64_t)s, kinds[k], desc, sizeof desc, &tear);
            if (kinds[k] == AIRLOCK_SIM_FLASH_TEAR_NOISE) {
                assert_int_equal(tear, AIRLOCK_SIM_FLASH_TEAR_DRIFT);
            } else if (kinds[k] == AIRLOCK_SIM_FLASH_TEAR_PARTIAL) {
                assert_true(tear >= AIRLOCK_SIM_FLASH_TEAR_PREFIX &&
                            tear <= AIRLOCK_SIM_FLASH_TEAR_DRIFT);
            } else {
                assert_int_equal(tear, kinds[k]);
            }
            assert_non_null(strstr(desc, "op 0 prog at 0x200 len 256: "));
            assert_non_null(strstr(desc, airlock_sim_flash_tear_name(tear)));
            half_seen += strstr(desc, "half") != NULL;
        }
        if (kinds[k] == AIRLOCK_SIM_FLASH_TEAR_PREFIX || kinds[k] == AIRLOCK_SIM_FLASH_TEAR_UNITS) {
            assert_true(half_seen > 0 && half_seen < 16);
        }
    }
    airlock_sim_flash_t *sim = mk4k(4, 0xff);
    assert_int_equal(airlock_sim_flash_set_tear(sim, 8), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_set_tear(sim, -1), AIRLOCK_ERR_INVAL);
    airlock_sim_flash_close(sim);
}

/*
 * One torn erase of sector 1 (4 KiB) holding a pattern in its first half and
 * erased bytes in its second. Checks the kind's definition; returns the kind.
 */
static int torn_erase_once(uint32_t w, uint8_t e, uint64_t seed, int policy)
{
    airlock_sim_flash_t *sim = mk4k(w, e);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t *d = airlock_sim_flash_data(sim);
    static uint8_t old[4096];
    airlock_sim_flash_cut_t cut;
    memset(old, e, sizeof old);
    pattern(old, 2048, seed);
    assert_int_equal(fl->prog(fl->ctx, 4096, old, 2048), 0);
    assert_int_equal(fl->prog(fl->ctx, 0, old, 64), 0);
    assert_int_equal(fl->prog(fl->ctx, 8192, old, 64), 0);
    airlock_sim_flash_seed(sim, seed);
    assert_int_equal(airlock_sim_flash_set_tear(sim, policy), 0);
    airlock_sim_flash_cut_at(sim, 0);
    assert_int_equal(fl->erase(fl->ctx, 4096), AIRLOCK_SIM_FLASH_ERR_CUT);
    assert_true(airlock_sim_flash_last_cut(sim, &cut));
    assert_int_equal(cut.op, AIRLOCK_SIM_FLASH_OP_ERASE);
    assert_int_equal(cut.addr, 4096);
    assert_int_equal(cut.len, 4096);
    assert_int_equal(cut.units, 4096 / w);
    /* Neighbours untouched. */
    assert_memory_equal(d, old, 64);
    assert_memory_equal(d + 8192, old, 64);
    uint32_t n = 4096 / w, erased_units = 0;
    for (uint32_t u = 0; u < n; u++) {
        const uint8_t *p = d + 4096 + u * w, *o = old + u * w;
        bool is_erased = all_eq(p, w, e), is_old = memcmp(p, o, w) == 0;
        bool was_prog = u * w < 2048;
        bool flagged = airlock_sim_flash_programmed(sim, 4096 + u * w);
        switch (cut.tear) {
        case AIRLOCK_SIM_FLASH_TEAR_NOTHING:
            assert_true(is_old);
            assert_true(flagged == was_prog);
            break;
        case AIRLOCK_SIM_FLASH_TEAR_DONE:
            assert_true(is_erased);
            assert_false(flagged);
            break;
        case AIRLOCK_SIM_FLASH_TEAR_PREFIX:
            if (u < cut.done) {
                assert_true(is_erased);
                assert_false(flagged);
            } else {
                assert_true(is_old);
                assert_true(flagged == was_prog);
            }
            break;
        case AIRLOCK_SIM_FLASH_TEAR_UNITS:
            assert_true(is_erased || is_old);
            if (flagged) {
                assert_true(is_old && was_prog);
            }
            erased_units += !flagged && was_prog;
            break;
        case AIRLOCK_SIM_FLASH_TEAR_DRIFT:
            for (uint32_t b = 0; b < w; b++) {
                /* Bits only move toward erased. */
                assert_int_equal((uint8_t)(p[b] ^ e) & (uint8_t) ~(o[b] ^ e), 0);
            }
            /* programmed unless it now reads fully erased */
            assert_true(flagged == (!is_erased && (was_prog || !is_old)));
            break;
        case AIRLOCK_SIM_FLASH_TEAR_NOISE:
            assert_true(flagged == (!is_erased && (was_prog || !is_old)));
            break;
        default:
            fail();
        }
    }
    if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_PREFIX) {
        assert_true(cut.done < n);
    }
    if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_UNITS) {
        assert_true(erased_units <= cut.done);
    }
    if (cut.tear == AIRLOCK_SIM_FLASH_TEAR_NOISE) {
        assert_false(all_eq(d + 6144, 2048, e)); /* the erased half got noise */
    }
    /* Whatever the tear, a full erase makes the sector programmable again. */
    airlock_sim_flash_power_on(sim);
    if (cut.tear != AIRLOCK_SIM_FLASH_TEAR_DONE && cut.tear != AIRLOCK_SIM_FLASH_TEAR_UNITS) {
        /* Some unit of the first half still counts as programmed. */
        uint32_t u = cut.tear == AIRLOCK_SIM_FLASH_TEAR_PREFIX ? cut.done : 0;
        /* (unless the tear left it reading fully erased: then it is erased) */
        if (u * w < 2048 && !all_eq(d + 4096 + u * w, w, e)) {
            assert_int_equal(fl->prog(fl->ctx, 4096 + u * w, old + u * w, w),
                             AIRLOCK_SIM_FLASH_ERR_REPROG);
        }
    }
    assert_int_equal(fl->erase(fl->ctx, 4096), 0);
    assert_int_equal(fl->prog(fl->ctx, 4096, old, 4096), 0);
    assert_memory_equal(d + 4096, old, 4096);
    airlock_sim_flash_close(sim);
    return cut.tear;
}

static void test_torn_erase(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 4, 8, 32};
    for (size_t i = 0; i < 4; i++) {
        for (int ev = 0; ev < 2; ev++) {
            int seen[8] = {0};
            for (int s = 0; s < 128; s++) {
                int t = torn_erase_once(sizes[i], ev ? 0xff : 0x00, base_seed + (uint64_t)s,
                                        AIRLOCK_SIM_FLASH_TEAR_ANY);
                seen[t]++;
            }
            for (int t = AIRLOCK_SIM_FLASH_TEAR_NOTHING; t <= AIRLOCK_SIM_FLASH_TEAR_NOISE; t++) {
                if (!seen[t]) {
                    print_message(
                        "ws %u erased 0x%02x: tear %s never seen in 128 seeds from %llu\n",
                        (unsigned)sizes[i], ev ? 0xff : 0, airlock_sim_flash_tear_name(t),
                        (unsigned long long)base_seed);
                }
                assert_true(seen[t] > 0);
            }
        }
    }
    /* Forced kinds. */
    for (int t = AIRLOCK_SIM_FLASH_TEAR_NOTHING; t <= AIRLOCK_SIM_FLASH_TEAR_NOISE; t++) {
        for (int s = 0; s < 4; s++) {
            assert_int_equal(torn_erase_once(8, 0xff, base_seed + (uint64_t)s, t), t);
        }
    }
}

/* Same seed, same torn erase bytes; different seeds, different ones. */
static void test_torn_erase_reproducible(void **state)
{
    (void)state;
    static uint8_t out[6][4096];
    for (int t = AIRLOCK_SIM_FLASH_TEAR_PREFIX; t <= AIRLOCK_SIM_FLASH_TEAR_NOISE; t++) {
        /* Runs 0 and 1 share a seed; 2..5 each have their own. */
        for (int r = 0; r < 6; r++) {
            uint64_t seed = r < 2 ? base_seed : base_seed + (uint64_t)r;
            airlock_sim_flash_t *sim = mk4k(4, 0xff);
            const airlock_flash_t *fl = airlock_sim_flash_port(sim);
            uint8_t pat[4096];
            pattern(pat, sizeof pat, 5);
            assert_int_equal(fl->prog(fl->ctx, 0, pat, 4096), 0);
            airlock_sim_flash_seed(sim, seed);
            airlock_sim_flash_set_tear(sim, t);
            airlock_sim_flash_cut_at(sim, 0);
            assert_int_equal(fl->erase(fl->ctx, 0), AIRLOCK_SIM_FLASH_ERR_CUT);
            memcpy(out[r], airlock_sim_flash_data(sim), 4096);
            airlock_sim_flash_close(sim);
        }
        assert_memory_equal(out[0], out[1], 4096);
        int differ = 0;
        for (int r = 2; r < 6; r++) {
            differ += memcmp(out[0], out[r], 4096) != 0;
        }
        assert_true(differ >= 3);
    }
}

/* ---- the fast paths against a byte-by-byte model ------------------------------- */

/*
 * A byte-at-a-time model of the NOR rules: what a prog must return and
 * where its violation is. The sim checks and marks whole words and map bytes
 * at once; this model does neither.
 */
struct model {
    uint8_t data[65536];
    bool prog[65536]; /* per write unit */
    uint32_t ws;
    uint8_t ev;
};

static int model_prog(struct model *m, uint32_t addr, const uint8_t *buf, uint32_t len,
                      uint32_t *at)
{
    for (uint32_t u = addr / m->ws; u < (addr + len) / m->ws; u++) {
        if (m->prog[u]) {
            *at = u * m->ws;
            return AIRLOCK_SIM_FLASH_ERR_REPROG;
        }
    }
    for (uint32_t i = 0; i < len; i++) {
        uint8_t old = (uint8_t)(m->data[addr + i] ^ m->ev), want = (uint8_t)(buf[i] ^ m->ev);
        if (old & ~want & 0xff) {
            *at = addr + i;
            return AIRLOCK_SIM_FLASH_ERR_BIT_BACK;
        }
    }
    memcpy(m->data + addr, buf, len);
    for (uint32_t u = addr / m->ws; u < (addr + len) / m->ws; u++) {
        m->prog[u] = true;
    }
    return 0;
}

static void model_compare(airlock_sim_flash_t *sim, const struct model *m, uint32_t from,
                          uint32_t to, uint64_t seed, int step)
{
    if (memcmp(airlock_sim_flash_data(sim) + from, m->data + from, to - from) != 0) {
        fail_msg("contents differ from the model (seed %llu, step %d)", (unsigned long long)seed,
                 step);
    }
    for (uint32_t a = from / m->ws * m->ws; a < to; a += m->ws) {
        if (airlock_sim_flash_programmed(sim, a) != m->prog[a / m->ws]) {
            fail_msg("unit at 0x%x: programmed %d, model %d (seed %llu, step %d)", a,
                     airlock_sim_flash_programmed(sim, a), m->prog[a / m->ws],
                     (unsigned long long)seed, step);
        }
    }
}

/* Random progs (valid, overlapping programmed units, moving bits back), erases and loads. */
static void test_rules_match_model(void **state)
{
    (void)state;
    static struct model m;
    static uint8_t buf[4096];
    static const uint32_t sizes[] = {1, 2, 4, 8, 16, 32};
    uint64_t reprog = 0, bit_back = 0;
    for (int k = 0; k < 12; k++) {
        uint32_t w = sizes[k % 6];
        uint8_t ev = k < 6 ? 0xff : 0x00;
        uint64_t seed = base_seed + 100u + (uint64_t)k, rng = seed;
        airlock_sim_flash_t *sim = mk4k(w, ev);
        const airlock_flash_t *fl = airlock_sim_flash_port(sim);
        memset(&m, 0, sizeof m);
        memset(m.data, ev, sizeof m.data);
        m.ws = w;
        m.ev = ev;
        for (int step = 0; step < 1500; step++) {
            uint32_t kind = (uint32_t)(trng(&rng) % 16);
            uint32_t units = (uint32_t)(trng(&rng) % (sizeof buf / w + 1));
            uint32_t len = units * w;
            uint32_t addr = (uint32_t)(trng(&rng) % ((sizeof m.data - len) / w + 1)) * w;
            if (kind < 8) {
                /* new bits: usually a superset of the old ones (valid), else random */
                for (uint32_t i = 0; i < len; i++) {
                    uint8_t r = (uint8_t)trng(&rng);
                    uint8_t old = (uint8_t)(m.data[addr + i] ^ ev);
                    buf[i] = trng(&rng) % 64 ? (uint8_t)((old | r) ^ ev) : (uint8_t)(r ^ ev);
                }
            } else if (kind < 10) {
                /*
                 * Into a fresh sector with a byte changed behind the rules'
                 * back: a prog keeping all bits but one of that byte.
                 */
                uint32_t sec = (uint32_t)(trng(&rng) % 16) * 4096;
                assert_int_equal(fl->erase(fl->ctx, sec), 0);
                memset(m.data + sec, ev, 4096);
                memset(m.prog + sec / w, 0, 4096 / w);
                len = (1u + (uint32_t)(trng(&rng) % (4096 / w))) * w;
                addr = sec + (uint32_t)(trng(&rng) % ((4096 - len) / w + 1)) * w;
                uint32_t j = addr + (uint32_t)(trng(&rng) % len);
                uint8_t bit = (uint8_t)(1u << (trng(&rng) % 8));
                airlock_sim_flash_data(sim)[j] = (uint8_t)(ev ^ bit);
                m.data[j] = (uint8_t)(ev ^ bit);
                for (uint32_t i = 0; i < len; i++) {
                    uint8_t old = (uint8_t)(m.data[addr + i] ^ ev);
                    buf[i] = (uint8_t)((old | (uint8_t)trng(&rng)) ^ ev);
                }
                if (trng(&rng) % 4) {
                    buf[j - addr] = (uint8_t)((buf[j - addr] ^ ev) & ~bit) ^ ev;
                }
            }
            if (kind < 10) {
                uint32_t want_at = 0;
                int want = model_prog(&m, addr, buf, len, &want_at);
                int got = fl->prog(fl->ctx, addr, buf, len);
                if (got != want) {
                    fail_msg("prog 0x%x+%u: %d, model %d (seed %llu, step %d)", addr, len, got,
                             want, (unsigned long long)seed, step);
                }
                if (want) {
                    airlock_sim_flash_violation_t v;
                    assert_true(airlock_sim_flash_last_violation(sim, &v));
                    assert_int_equal(v.at, want_at);
                }
            } else if (kind < 13) {
                uint32_t sec = (uint32_t)(trng(&rng) % 16) * 4096;
                assert_int_equal(fl->erase(fl->ctx, sec), 0);
                memset(m.data + sec, ev, 4096);
                memset(m.prog + sec / w, 0, 4096 / w);
            } else if (kind < 15) {
                /* staged bytes: every touched unit programmed iff not all erased */
                for (uint32_t i = 0; i < len; i++) {
                    buf[i] = trng(&rng) % 4 ? ev : (uint8_t)trng(&rng);
                }
                assert_int_equal(airlock_sim_flash_load(sim, addr, buf, len), 0);
                memcpy(m.data + addr, buf, len);
                for (uint32_t u = addr / w; len > 0 && u <= (addr + len - 1) / w; u++) {
                    m.prog[u] = !all_eq(m.data + u * w, w, ev);
                }
            } else {
                /* a byte changed behind the rules' back (units keep their state) */
                uint32_t at = (uint32_t)(trng(&rng) % sizeof m.data);
                uint8_t v = (uint8_t)trng(&rng);
                airlock_sim_flash_data(sim)[at] = v;
                m.data[at] = v;
            }
            if (step % 250 == 0) {
                model_compare(sim, &m, 0, sizeof m.data, seed, step);
            } else if (len > 0) {
                model_compare(sim, &m, addr, addr + len, seed, step);
            }
        }
        model_compare(sim, &m, 0, sizeof m.data, seed, 1500);
        reprog += airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_REPROG);
        bit_back += airlock_sim_flash_violations(sim, AIRLOCK_SIM_FLASH_ERR_BIT_BACK);
        airlock_sim_flash_close(sim);
    }
    /* both kinds must have been exercised, at many places */
    print_message("model: %llu REPROG, %llu BIT_BACK checked\n", (unsigned long long)reprog,
                  (unsigned long long)bit_back);
    assert_true(reprog > 100 && bit_back > 100);
}

/* ---- direct access, snapshots ------------------------------------------------- */

static void test_load_and_wipe(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(8, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    uint8_t img[100], buf[8] = {0};
    pattern(img, sizeof img, 4);
    memset(img + 16, 0xff, 16); /* two erased units inside the image */
    airlock_sim_flash_power_off(sim);
    assert_int_equal(airlock_sim_flash_load(sim, 1000, img, sizeof img), 0); /* no power needed */
    airlock_sim_flash_power_on(sim);
    assert_memory_equal(airlock_sim_flash_data(sim) + 1000, img, sizeof img);
    /* Units 1000..1007: programmed; 1016..1031 all-erased: not programmed. */
    assert_true(airlock_sim_flash_programmed(sim, 1000));
    assert_false(airlock_sim_flash_programmed(sim, 1016));
    assert_false(airlock_sim_flash_programmed(sim, 1024));
    assert_true(airlock_sim_flash_programmed(sim, 1096)); /* partial last unit */
    assert_int_equal(fl->prog(fl->ctx, 1016, buf, 8), 0);
    assert_int_equal(fl->prog(fl->ctx, 1000, buf, 8), AIRLOCK_SIM_FLASH_ERR_REPROG);
    airlock_sim_flash_counts_t c;
    airlock_sim_flash_counts(sim, &c);
    assert_int_equal(c.prog_calls, 1); /* load is not counted */
    assert_int_equal(airlock_sim_flash_load(sim, 65530, img, 7), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_load(sim, 0, NULL, 7), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_load(sim, 65536, img, 0), 0);

    airlock_sim_flash_wipe(sim);
    assert_true(all_eq(airlock_sim_flash_data(sim), 65536, 0xff));
    assert_false(airlock_sim_flash_programmed(sim, 1000));
    assert_int_equal(fl->prog(fl->ctx, 1000, buf, 8), 0);
    airlock_sim_flash_close(sim);
}

static void test_snapshot_restore(void **state)
{
    (void)state;
    airlock_sim_flash_t *sim = mk4k(4, 0xff), *other = mk4k(8, 0xff);
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    airlock_sim_flash_snapshot_t *snap;
    uint8_t buf[64], ref[65536];
    pattern(buf, sizeof buf, 6);
    assert_int_equal(fl->prog(fl->ctx, 100, buf, 64), 0);
    assert_int_equal(airlock_sim_flash_save(sim, &snap), 0);
    memcpy(ref, airlock_sim_flash_data(sim), sizeof ref);

    assert_int_equal(fl->erase(fl->ctx, 0), 0);
    assert_int_equal(fl->prog(fl->ctx, 200, buf, 64), 0);
    airlock_sim_flash_cut_at(sim, 0);
    assert_int_equal(fl->erase(fl->ctx, 4096), AIRLOCK_SIM_FLASH_ERR_CUT);

    assert_int_equal(airlock_sim_flash_restore(sim, snap), 0); /* works with power off */
    assert_false(airlock_sim_flash_powered(sim));
    airlock_sim_flash_power_on(sim);
    assert_memory_equal(airlock_sim_flash_data(sim), ref, sizeof ref);
    assert_true(airlock_sim_flash_programmed(sim, 100));
    assert_false(airlock_sim_flash_programmed(sim, 200));
    assert_int_equal(fl->prog(fl->ctx, 100, buf, 4), AIRLOCK_SIM_FLASH_ERR_REPROG);
    assert_int_equal(fl->prog(fl->ctx, 200, buf, 4), 0);
    assert_int_equal(airlock_sim_flash_restore(other, snap), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_sim_flash_restore(other, NULL), AIRLOCK_ERR_INVAL);
    airlock_sim_flash_snapshot_free(snap);
    airlock_sim_flash_snapshot_free(NULL);
    airlock_sim_flash_close(other);
    airlock_sim_flash_close(sim);
}

/* ---- file backing ---------------------------------------------------------------- */

static void test_file_backed(void **state)
{
    (void)state;
    char path[512];
    airlock_sim_flash_geometry_t geo = {0, 4, 0xff, stm32f4, 3};
    airlock_sim_flash_t *sim;
    uint8_t buf[256], ref[1024];
    tmp_path(path, sizeof path, "persist");

    assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
    assert_true(all_eq(airlock_sim_flash_data(sim), 1024 * 1024, 0xff));
    const airlock_flash_t *fl = airlock_sim_flash_port(sim);
    pattern(buf, sizeof buf, 8);
    assert_int_equal(fl->prog(fl->ctx, 16384, buf, 256), 0);
    assert_int_equal(fl->prog(fl->ctx, 16384 + 256, (uint8_t[4]){0xff, 0xff, 0xff, 0xff}, 4), 0);
    /* Visible in the file at once, before close. */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 16384, SEEK_SET), 0);
    assert_int_equal(fread(ref, 1, 256, f), 256);
    fclose(f);
    assert_memory_equal(ref, buf, 256);
    airlock_sim_flash_close(sim);

    /* Reopen: contents back; non-erased units count as programmed. */
    assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
    fl = airlock_sim_flash_port(sim);
    assert_memory_equal(airlock_sim_flash_data(sim) + 16384, buf, 256);
    assert_int_equal(fl->prog(fl->ctx, 16384, buf, 4), AIRLOCK_SIM_FLASH_ERR_REPROG);
    assert_int_equal(fl->prog(fl->ctx, 16384 + 256, buf, 4), 0); /* documented leniency */

    /* A torn erase persists exactly as torn. */
    airlock_sim_flash_seed(sim, base_seed);
    airlock_sim_flash_set_tear(sim, AIRLOCK_SIM_FLASH_TEAR_PARTIAL);
    airlock_sim_flash_cut_at(sim, 0);
    assert_int_equal(fl->erase(fl->ctx, 16384), AIRLOCK_SIM_FLASH_ERR_CUT);
    memcpy(ref, airlock_sim_flash_data(sim) + 16384, sizeof ref);
    airlock_sim_flash_close(sim);
    assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
    assert_memory_equal(airlock_sim_flash_data(sim) + 16384, ref, sizeof ref);
    /* Restore writes through too. */
    airlock_sim_flash_snapshot_t *snap;
    assert_int_equal(airlock_sim_flash_save(sim, &snap), 0);
    airlock_sim_flash_wipe(sim);
    assert_int_equal(airlock_sim_flash_restore(sim, snap), 0);
    airlock_sim_flash_snapshot_free(snap);
    airlock_sim_flash_close(sim);
    assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
    assert_memory_equal(airlock_sim_flash_data(sim) + 16384, ref, sizeof ref);
    airlock_sim_flash_close(sim);

    /* Wrong size or bad path. */
    airlock_sim_flash_geometry_t small = {0, 4, 0xff, uniform4k, 1};
    sim = NULL;
    assert_int_equal(airlock_sim_flash_open(path, &small, &sim), AIRLOCK_ERR_INVAL);
    assert_null(sim);
    assert_int_equal(airlock_sim_flash_open(TEST_TMP_DIR "/no/such/dir/x.bin", &small, &sim),
                     AIRLOCK_ERR_IO);
    assert_int_equal(unlink(path), 0);

    /* erased_val 0x00 file is created zero-filled. */
    airlock_sim_flash_geometry_t zero = {0, 1, 0x00, uniform4k, 1};
    assert_int_equal(airlock_sim_flash_open(path, &zero, &sim), 0);
    assert_true(all_eq(airlock_sim_flash_data(sim), 65536, 0x00));
    airlock_sim_flash_close(sim);
    unlink(path);
}

/* A killed process leaves the flash file as the last completed call left it. */
static void test_file_survives_kill(void **state)
{
    (void)state;
    char path[512];
    airlock_sim_flash_geometry_t geo = {0, 8, 0xff, uniform4k, 1};
    uint8_t buf[512];
    tmp_path(path, sizeof path, "kill");
    pattern(buf, sizeof buf, 10);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        airlock_sim_flash_t *sim;
        if (airlock_sim_flash_open(path, &geo, &sim) != 0) {
            _exit(1);
        }
        const airlock_flash_t *fl = airlock_sim_flash_port(sim);
        airlock_sim_flash_data(sim)[8192] = 0x00; /* direct write, then erase it away */
        if (fl->prog(fl->ctx, 4096, buf, 512) != 0 || fl->erase(fl->ctx, 8192) != 0) {
            _exit(2);
        }
        airlock_sim_flash_seed(sim, 42);
        airlock_sim_flash_set_tear(sim, AIRLOCK_SIM_FLASH_TEAR_PREFIX);
        airlock_sim_flash_cut_at(sim, 0);
        (void)fl->prog(fl->ctx, 12288, buf, 512);
        raise(SIGKILL); /* no close, no msync */
        _exit(3);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* Replay the same torn prog in RAM to know what the child left. */
    airlock_sim_flash_t *ram = mk4k(8, 0xff);
    const airlock_flash_t *rfl = airlock_sim_flash_port(ram);
    airlock_sim_flash_seed(ram, 42);
    airlock_sim_flash_set_tear(ram, AIRLOCK_SIM_FLASH_TEAR_PREFIX);
    airlock_sim_flash_cut_at(ram, 0);
    assert_int_equal(rfl->prog(rfl->ctx, 12288, buf, 512), AIRLOCK_SIM_FLASH_ERR_CUT);

    airlock_sim_flash_t *sim;
    assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
    const uint8_t *d = airlock_sim_flash_data(sim);
    assert_memory_equal(d + 4096, buf, 512);
    assert_true(all_eq(d + 8192, 4096, 0xff));
    assert_memory_equal(d + 12288, airlock_sim_flash_data(ram) + 12288, 512);
    airlock_sim_flash_close(ram);
    airlock_sim_flash_close(sim);
    unlink(path);
}

/*
 * A process killed while it creates a flash file leaves either no file or a
 * whole, fully erased one at the path: never a full-size file of zeros that
 * a later open would read as programmed everywhere. Kills land at seeded
 * random times across the creation.
 */
static void test_file_create_killed(void **state)
{
    (void)state;
    enum { MIB = 32 };
    static const airlock_sector_run_t big[] = {{MIB * 16, 65536}};
    airlock_sim_flash_geometry_t geo = {0, 4, 0xff, big, 1};
    char path[512], dir[512], prefix[600];
    uint64_t rng = base_seed + 7;
    int absent = 0, whole = 0;
    tmp_path(path, sizeof path, "create_kill");
    snprintf(dir, sizeof dir, "%s", TEST_TMP_DIR);
    const char *base = strrchr(path, '/') + 1;
    snprintf(prefix, sizeof prefix, "%s.new-", base);
    for (int round = 0; round < 16; round++) {
        long delay_us = round == 0 ? 0 : (long)(trng(&rng) % 60000);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            airlock_sim_flash_t *sim;
            _exit(airlock_sim_flash_open(path, &geo, &sim) == 0 ? 0 : 1);
        }
        struct timespec ts = {0, delay_us * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        FILE *f = fopen(path, "rb");
        if (!f) {
            absent++;
        } else {
            static uint8_t chunk[65536];
            size_t total = 0, n;
            while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
                if (!all_eq(chunk, n, 0xff)) {
                    fail_msg("round %d (kill after %ld us): the file at the path is not erased "
                             "at 0x%zx",
                             round, delay_us, total);
                }
                total += n;
            }
            fclose(f);
            assert_int_equal(total, (size_t)MIB << 20);
            whole++;
            assert_int_equal(unlink(path), 0);
        }
        /* the killed child's temporary file, if any: remove it */
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
                char tmp[1200];
                snprintf(tmp, sizeof tmp, "%s/%s", dir, e->d_name);
                assert_int_equal(unlink(tmp), 0);
            }
        }
        closedir(d);
    }
    print_message("create killed: %d rounds left no file, %d a whole erased one\n", absent, whole);
    /* a completed creation leaves no temporary file behind */
    airlock_sim_flash_t *sim;
    assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
    airlock_sim_flash_close(sim);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        assert_true(strncmp(e->d_name, prefix, strlen(prefix)) != 0);
    }
    closedir(d);
    unlink(path);
}

/*
 * Opening a file rebuilds which units are programmed from its bytes alone
 * (lazily, a sector at a time: programmed(), prog, erase and snapshots must
 * all see the same map as if it were derived at once).
 */
static void test_file_reopen_derives_units(void **state)
{
    (void)state;
    char path[512];
    static const uint32_t sizes[] = {1, 4, 32};
    for (int k = 0; k < 6; k++) {
        uint32_t w = sizes[k % 3];
        uint8_t ev = k < 3 ? 0xff : 0x00;
        airlock_sim_flash_geometry_t geo = {0, w, ev, uniform4k, 1};
        airlock_sim_flash_t *sim;
        uint64_t rng = base_seed + 200u + (uint64_t)k;
        tmp_path(path, sizeof path, "derive");
        assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
        uint8_t *d = airlock_sim_flash_data(sim);
        /* sparse changes: lone bytes, the first and last byte, one whole sector */
        for (int i = 0; i < 40; i++) {
            d[trng(&rng) % 65536] = (uint8_t)(ev ^ (1u << (trng(&rng) % 8)));
        }
        d[0] = (uint8_t)~ev;
        d[65535] = (uint8_t)~ev;
        memset(d + 8192, (uint8_t)~ev, 4096);
        airlock_sim_flash_close(sim);
        assert_int_equal(airlock_sim_flash_open(path, &geo, &sim), 0);
        d = airlock_sim_flash_data(sim);
        for (uint32_t a = 0; a < 65536; a += w) {
            if (airlock_sim_flash_programmed(sim, a) == all_eq(d + a, w, ev)) {
                fail_msg("write %u erased 0x%02x: unit at 0x%x programmed %d", w, ev, a,
                         airlock_sim_flash_programmed(sim, a));
            }
        }
        /* A snapshot taken before any operation carries the whole map ... */
        airlock_sim_flash_snapshot_t *snap;
        assert_int_equal(airlock_sim_flash_save(sim, &snap), 0);
        /* ... and the operations obey it: the same bytes again on a programmed unit
         * is a second prog, an erased unit of the same sector takes a write, an
         * erased sector takes writes anywhere. */
        const airlock_flash_t *fl = airlock_sim_flash_port(sim);
        uint8_t same[32], one[32];
        memcpy(same, d, w);
        memset(one, (uint8_t)~ev, sizeof one);
        assert_int_equal(fl->prog(fl->ctx, 0, same, w), AIRLOCK_SIM_FLASH_ERR_REPROG);
        uint32_t free_unit = 8192 - w; /* sector 1 (4 KiB..8 KiB): find an erased unit in it */
        while (free_unit >= 4096 && !all_eq(d + free_unit, w, ev)) {
            free_unit -= w;
        }
        assert_true(free_unit >= 4096);
        assert_int_equal(fl->prog(fl->ctx, free_unit, one, w), 0);
        assert_int_equal(fl->prog(fl->ctx, free_unit, one, w), AIRLOCK_SIM_FLASH_ERR_REPROG);
        assert_int_equal(fl->prog(fl->ctx, 8192, one, w), AIRLOCK_SIM_FLASH_ERR_REPROG);
        assert_int_equal(fl->erase(fl->ctx, 8192), 0);
        assert_false(airlock_sim_flash_programmed(sim, 8192));
        assert_int_equal(fl->prog(fl->ctx, 8192, one, w), 0);
        assert_true(airlock_sim_flash_programmed(sim, 8192));
        airlock_sim_flash_close(sim);
        /* the snapshot, restored into a RAM flash, knows the same units */
        airlock_sim_flash_t *ram;
        assert_int_equal(airlock_sim_flash_create(&geo, &ram), 0);
        assert_int_equal(airlock_sim_flash_restore(ram, snap), 0);
        d = airlock_sim_flash_data(ram);
        for (uint32_t a = 0; a < 65536; a += w) {
            if (airlock_sim_flash_programmed(ram, a) == all_eq(d + a, w, ev)) {
                fail_msg("snapshot: write %u erased 0x%02x: unit at 0x%x programmed %d", w, ev,
                         a, airlock_sim_flash_programmed(ram, a));
            }
        }
        airlock_sim_flash_snapshot_free(snap);
        airlock_sim_flash_close(ram);
        unlink(path);
    }
}

int main(void)
{
    const char *env = getenv("AIRLOCK_SEED");
    if (env && *env) {
        base_seed = strtoull(env, NULL, 0);
    }
    print_message("sim flash tests: base seed %llu (set AIRLOCK_SEED to change)\n",
                  (unsigned long long)base_seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_checks_geometry),
        cmocka_unit_test(test_mixed_sector_map),
        cmocka_unit_test(test_prog_erase_reprog_cycle),
        cmocka_unit_test(test_violation_range),
        cmocka_unit_test(test_violation_align),
        cmocka_unit_test(test_violation_reprog),
        cmocka_unit_test(test_violation_bit_back),
        cmocka_unit_test(test_violation_kinds_distinct),
        cmocka_unit_test(test_write_sizes_and_erased_vals),
        cmocka_unit_test(test_counters_exact),
        cmocka_unit_test(test_cut_at_each_op),
        cmocka_unit_test(test_cut_counting),
        cmocka_unit_test(test_cut_on_violation),
        cmocka_unit_test(test_cut_random),
        cmocka_unit_test(test_torn_prog),
        cmocka_unit_test(test_torn_prog_forced),
        cmocka_unit_test(test_torn_erase),
        cmocka_unit_test(test_torn_erase_reproducible),
        cmocka_unit_test(test_rules_match_model),
        cmocka_unit_test(test_load_and_wipe),
        cmocka_unit_test(test_snapshot_restore),
        cmocka_unit_test(test_file_backed),
        cmocka_unit_test(test_file_survives_kill),
        cmocka_unit_test(test_file_create_killed),
        cmocka_unit_test(test_file_reopen_derives_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
