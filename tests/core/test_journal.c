/*
 * Unit tests for core/journal.c, the boot journal in the status area:
 * formatting, replay of every record type, compaction between its two
 * sectors, and a power cut at every flash operation of appends and of the
 * first format (the replayed state is always the one before or after the
 * interrupted append). Base seed: $AIRLOCK_SEED or 0x10a1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "airlock/sim_flash.h"
#include "journal.h"

#define KIB 1024u

static uint64_t base_seed = 0x10a1;

/* ---- helpers ------------------------------------------------------------ */

struct dev {
    airlock_sim_flash_t *sim;
    airlock_area_t area;
    airlock_sector_run_t runs[2];
};

/*
 * A device of nsec sectors of sec bytes; the status area is sectors
 * [1, 1 + area_secs) so the journal never sits at address 0.
 */
static void dev_open(struct dev *d, uint32_t ws, uint32_t sec, uint32_t nsec, uint32_t area_secs)
{
    memset(d, 0, sizeof(*d));
    d->runs[0] = (airlock_sector_run_t){nsec, sec};
    airlock_sim_flash_geometry_t geo = {0, ws, 0xff, d->runs, 1};
    assert_int_equal(airlock_sim_flash_create(&geo, &d->sim), 0);
    d->area = (airlock_area_t){airlock_sim_flash_port(d->sim), sec, area_secs * sec};
}

static void no_violations(struct dev *d)
{
    if (airlock_sim_flash_violations(d->sim, 0) != 0) {
        fail_msg("NOR violation: %s", airlock_sim_flash_violation_str(d->sim));
    }
}

static void dev_close(struct dev *d)
{
    no_violations(d);
    airlock_sim_flash_close(d->sim);
    d->sim = NULL;
}

/* The replayed state that matters (what the boot decision reads). */
struct jstate {
    bool in_swap;
    uint32_t swap_type, extent;
    bool has_step;
    uint32_t step_chunk, step;
    bool trial;
    bool has_sec_cnt;
    uint32_t sec_cnt;
};

static struct jstate state_of(const journal_t *j)
{
    struct jstate s;
    memset(&s, 0, sizeof(s));
    s.in_swap = j->in_swap;
    if (j->in_swap) {
        s.swap_type = j->swap_type;
        s.extent = j->extent;
        s.has_step = j->has_step;
        if (j->has_step) {
            s.step_chunk = j->step_chunk;
            s.step = j->step;
        }
    }
    s.trial = j->trial;
    if (j->trial) {
        s.extent = j->extent; /* what a revert will cover */
    }
    s.has_sec_cnt = j->has_sec_cnt;
    if (j->has_sec_cnt) {
        s.sec_cnt = j->sec_cnt;
    }
    return s;
}

static bool same(const struct jstate *a, const struct jstate *b)
{
    return a->in_swap == b->in_swap && a->swap_type == b->swap_type && a->extent == b->extent &&
           a->has_step == b->has_step && a->step_chunk == b->step_chunk && a->step == b->step &&
           a->trial == b->trial && a->has_sec_cnt == b->has_sec_cnt && a->sec_cnt == b->sec_cnt;
}

static const char *fmt_state(const struct jstate *s, char *buf, size_t n)
{
    snprintf(buf, n, "{swap %d type %u ext %u step %d %u/%u trial %d seccnt %d %u}", s->in_swap,
             s->swap_type, s->extent, s->has_step, s->step_chunk, s->step, s->trial, s->has_sec_cnt,
             s->sec_cnt);
    return buf;
}

/* Reopen the journal from flash and check its state equals j's. */
static void reopen_same(struct dev *d, const journal_t *j)
{
    journal_t r;
    assert_int_equal(journal_open(&r, &d->area), 0);
    struct jstate a = state_of(j), b = state_of(&r);
    if (!same(&a, &b)) {
        char x[160], y[160];
        fail_msg("replayed %s, expected %s", fmt_state(&b, x, sizeof(x)),
                 fmt_state(&a, y, sizeof(y)));
    }
    assert_int_equal(r.gen, j->gen);
    assert_int_equal(r.active, j->active);
    assert_int_equal(r.next, j->next);
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

/* ---- format and geometry ------------------------------------------------- */

static void test_open_blank_formats(void **state)
{
    (void)state;
    struct dev d;
    journal_t j;
    airlock_sim_flash_counts_t c0, c1;
    dev_open(&d, 8, 4 * KIB, 8, 2);
    assert_int_equal(journal_open(&j, &d.area), 0);
    assert_int_equal(j.rec_size, 16);
    assert_int_equal(j.gen, 1);
    assert_int_equal(j.active, 0);
    assert_int_equal(j.next, j.rec_size);
    assert_false(j.in_swap);
    assert_false(j.trial);
    assert_false(j.has_sec_cnt);
    assert_false(j.has_step);
    /* a header at the start of the area, the rest erased */
    const uint8_t *p = airlock_sim_flash_data(d.sim) + d.area.off;
    assert_false(all_eq(p, 16, 0xff));
    assert_true(all_eq(p + 16, d.area.size - 16, 0xff));
    airlock_sim_flash_counts(d.sim, &c0);
    assert_int_equal(c0.erases, 1);
    assert_int_equal(c0.prog_calls, 1);
    /* opening again replays, formats nothing */
    journal_t r;
    assert_int_equal(journal_open(&r, &d.area), 0);
    assert_int_equal(r.gen, 1);
    assert_int_equal(r.next, r.rec_size);
    airlock_sim_flash_counts(d.sim, &c1);
    assert_int_equal(c1.erases, c0.erases);
    assert_int_equal(c1.prog_calls, c0.prog_calls);
    dev_close(&d);
}

/* An area holding garbage (not a journal) is formatted without a NOR violation. */
static void test_open_garbage_formats(void **state)
{
    (void)state;
    struct dev d;
    journal_t j;
    dev_open(&d, 4, 4 * KIB, 8, 2);
    uint8_t *junk = malloc(d.area.size);
    assert_non_null(junk);
    for (uint32_t i = 0; i < d.area.size; i++) {
        junk[i] = (uint8_t)(i * 7u + 3u);
    }
    assert_int_equal(airlock_sim_flash_load(d.sim, d.area.off, junk, d.area.size), 0);
    free(junk);
    assert_int_equal(journal_open(&j, &d.area), 0);
    assert_int_equal(j.gen, 1);
    assert_false(j.has_sec_cnt);
    assert_int_equal(journal_append(&j, JR_SECCNT, 3, 0), 0);
    reopen_same(&d, &j);
    dev_close(&d);
}

static void test_geometry(void **state)
{
    (void)state;
    struct dev d;
    journal_t j;
    /* one sector is not enough */
    dev_open(&d, 8, 4 * KIB, 8, 1);
    assert_int_equal(journal_open(&j, &d.area), AIRLOCK_ERR_LAYOUT);
    /* an area not starting on a sector */
    d.area.off += 16;
    d.area.size = 8 * KIB;
    assert_int_equal(journal_open(&j, &d.area), AIRLOCK_ERR_LAYOUT);
    /* no device */
    airlock_area_t none = {NULL, 0, 8 * KIB};
    assert_int_equal(journal_open(&j, &none), AIRLOCK_ERR_LAYOUT);
    assert_int_equal(journal_open(&j, NULL), AIRLOCK_ERR_LAYOUT);
    airlock_sim_flash_counts_t c;
    airlock_sim_flash_counts(d.sim, &c);
    assert_int_equal(c.erases + c.prog_calls, 0);
    dev_close(&d);
    /* sectors too small for 8 records */
    dev_open(&d, 8, 64, 8, 2);
    assert_int_equal(journal_open(&j, &d.area), AIRLOCK_ERR_LAYOUT);
    dev_close(&d);
    /* a power cut while reading: IO, not a format */
    dev_open(&d, 8, 4 * KIB, 8, 2);
    airlock_sim_flash_power_off(d.sim);
    assert_int_equal(journal_open(&j, &d.area), AIRLOCK_ERR_IO);
    airlock_sim_flash_power_on(d.sim);
    dev_close(&d);
}

/* With 32-byte writes a record is one 32-byte unit. */
static void test_rec_size_32(void **state)
{
    (void)state;
    struct dev d;
    journal_t j;
    dev_open(&d, 32, 4 * KIB, 8, 2);
    assert_int_equal(journal_open(&j, &d.area), 0);
    assert_int_equal(j.rec_size, 32);
    assert_int_equal(j.next, 32);
    assert_int_equal(journal_append(&j, JR_SECCNT, 9, 0), 0);
    assert_int_equal(journal_append(&j, JR_BEGIN, 2, 0x1234), 0);
    assert_int_equal(j.next, 96);
    const uint8_t *p = airlock_sim_flash_data(d.sim) + d.area.off;
    assert_true(airlock_sim_flash_programmed(d.sim, d.area.off + 64));
    assert_true(all_eq(p + 96, 32, 0xff));
    reopen_same(&d, &j);
    /* 16-byte writes: 16-byte records */
    dev_close(&d);
    dev_open(&d, 16, 4 * KIB, 8, 2);
    assert_int_equal(journal_open(&j, &d.area), 0);
    assert_int_equal(j.rec_size, 16);
    dev_close(&d);
    dev_open(&d, 1, 4 * KIB, 8, 2);
    assert_int_equal(journal_open(&j, &d.area), 0);
    assert_int_equal(j.rec_size, 16);
    dev_close(&d);
}

/* ---- record semantics ---------------------------------------------------- */

static void test_record_semantics(void **state)
{
    (void)state;
    static const uint32_t ws[] = {1, 8, 32};
    for (size_t w = 0; w < 3; w++) {
        struct dev d;
        journal_t j;
        dev_open(&d, ws[w], 4 * KIB, 8, 2);
        assert_int_equal(journal_open(&j, &d.area), 0);

        /* BEGIN: a swap in progress, no step yet */
        assert_int_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_TEST, 0x9000), 0);
        assert_true(j.in_swap);
        assert_int_equal(j.swap_type, AIRLOCK_SWAP_TEST);
        assert_int_equal(j.extent, 0x9000);
        assert_false(j.has_step);
        assert_false(j.trial);
        reopen_same(&d, &j);

        /* STEP: the last step done */
        assert_int_equal(journal_append(&j, JR_STEP, 0, 1), 0);
        assert_int_equal(journal_append(&j, JR_STEP, 0, 2), 0);
        assert_int_equal(journal_append(&j, JR_STEP, 1, 1), 0);
        assert_true(j.has_step);
        assert_int_equal(j.step_chunk, 1);
        assert_int_equal(j.step, 1);
        reopen_same(&d, &j);

        /* END of a TEST swap: not swapping, on trial */
        assert_int_equal(journal_append(&j, JR_END, AIRLOCK_SWAP_TEST, 0x9000), 0);
        assert_false(j.in_swap);
        assert_false(j.has_step);
        assert_true(j.trial);
        assert_int_equal(j.extent, 0x9000);
        reopen_same(&d, &j);

        /* RESOLVE ends the trial */
        assert_int_equal(journal_append(&j, JR_RESOLVE, 1, 0), 0);
        assert_false(j.trial);
        assert_false(j.in_swap);
        reopen_same(&d, &j);

        /* a PERM swap's END leaves no trial */
        assert_int_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_PERM, 0x3000), 0);
        assert_int_equal(journal_append(&j, JR_STEP, 0, 2), 0);
        assert_int_equal(journal_append(&j, JR_END, AIRLOCK_SWAP_PERM, 0x3000), 0);
        assert_false(j.trial);
        assert_false(j.in_swap);
        reopen_same(&d, &j);

        /* a REVERT started while on trial: the trial is over, the swap on */
        assert_int_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_TEST, 0x2000), 0);
        assert_int_equal(journal_append(&j, JR_END, AIRLOCK_SWAP_TEST, 0x2000), 0);
        assert_true(j.trial);
        assert_int_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_REVERT, 0x2000), 0);
        assert_false(j.trial);
        assert_true(j.in_swap);
        assert_int_equal(j.swap_type, AIRLOCK_SWAP_REVERT);
        reopen_same(&d, &j);
        assert_int_equal(journal_append(&j, JR_END, AIRLOCK_SWAP_REVERT, 0x2000), 0);
        assert_false(j.trial);
        reopen_same(&d, &j);

        /* SECCNT never decreases */
        assert_int_equal(journal_append(&j, JR_SECCNT, 7, 0), 0);
        assert_true(j.has_sec_cnt);
        assert_int_equal(j.sec_cnt, 7);
        assert_int_equal(journal_append(&j, JR_SECCNT, 5, 0), 0);
        assert_int_equal(j.sec_cnt, 7);
        reopen_same(&d, &j);
        assert_int_equal(journal_append(&j, JR_SECCNT, 0, 0), 0);
        assert_int_equal(j.sec_cnt, 7);
        assert_int_equal(journal_append(&j, JR_SECCNT, 0x01020304, 0), 0);
        assert_int_equal(j.sec_cnt, 0x01020304);
        reopen_same(&d, &j);
        /* unknown record types are kept but change nothing */
        struct jstate before = state_of(&j);
        assert_int_equal(journal_append(&j, 0x33, 1, 2), 0);
        struct jstate after = state_of(&j);
        assert_true(same(&before, &after));
        reopen_same(&d, &j);
        dev_close(&d);
    }
}

/* A torn record (half-written) is skipped on replay and never reprogrammed. */
static void test_torn_record_skipped(void **state)
{
    (void)state;
    struct dev d;
    journal_t j;
    dev_open(&d, 8, 4 * KIB, 8, 2);
    assert_int_equal(journal_open(&j, &d.area), 0);
    assert_int_equal(journal_append(&j, JR_SECCNT, 4, 0), 0);
    uint32_t torn_at = j.next;
    /* a record with one bit missing: its CRC fails */
    uint8_t rec[16];
    memset(rec, 0, sizeof(rec));
    rec[0] = JR_SECCNT;
    rec[1] = (uint8_t)~JR_SECCNT;
    rec[4] = 99;
    assert_int_equal(airlock_sim_flash_load(d.sim, d.area.off + torn_at, rec, 16), 0);
    journal_t r;
    assert_int_equal(journal_open(&r, &d.area), 0);
    assert_int_equal(r.sec_cnt, 4);
    assert_int_equal(r.next, torn_at + 16); /* its place is spent */
    assert_int_equal(journal_append(&r, JR_SECCNT, 6, 0), 0);
    reopen_same(&d, &r);
    dev_close(&d);
}

/*
 * A torn append must never leave a record that reads fully erased while
 * some of its write units count as programmed: nothing read from flash
 * could tell it from a free place, and the next append would program those
 * units again (REPROG on parts that forbid it). Records encode every byte
 * away from the erased value, so this searches many tears (UNITS, the kind
 * that once produced it with write sizes 1 and 2) and checks that none reads
 * erased, and that the next append after each works cleanly.
 */
static void test_no_invisible_torn_record(void **state)
{
    (void)state;
    static const uint32_t ws[] = {1, 2};
    for (size_t w = 0; w < 2; w++) {
        struct dev d;
        journal_t j;
        dev_open(&d, ws[w], 256, 4, 2);
        assert_int_equal(journal_open(&j, &d.area), 0);
        assert_int_equal(journal_append(&j, JR_SECCNT, 2, 0), 0);
        uint32_t at = d.area.off + j.next;
        airlock_sim_flash_snapshot_t *snap;
        assert_int_equal(airlock_sim_flash_save(d.sim, &snap), 0);
        for (uint64_t seed = base_seed; seed < base_seed + 30000; seed++) {
            assert_int_equal(airlock_sim_flash_restore(d.sim, snap), 0);
            airlock_sim_flash_reset_counts(d.sim);
            airlock_sim_flash_seed(d.sim, seed);
            assert_int_equal(
                airlock_sim_flash_set_tear(d.sim, seed % 2 ? AIRLOCK_SIM_FLASH_TEAR_UNITS
                                                           : AIRLOCK_SIM_FLASH_TEAR_PARTIAL),
                0);
            assert_int_equal(journal_open(&j, &d.area), 0);
            airlock_sim_flash_cut_at(d.sim, 0);
            assert_int_not_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_TEST, 0x1ffff), 0);
            airlock_sim_flash_power_on(d.sim);
            const uint8_t *p = airlock_sim_flash_data(d.sim) + at;
            bool programmed = false;
            for (uint32_t i = 0; i < 16; i++) {
                programmed |= airlock_sim_flash_programmed(d.sim, at + i);
            }
            if (all_eq(p, 16, 0xff) && programmed) {
                fail_msg("ws %u seed %llu: a torn record reads erased but is programmed (%s)",
                         ws[w], (unsigned long long)seed, airlock_sim_flash_cut_str(d.sim));
            }
            journal_t r;
            assert_int_equal(journal_open(&r, &d.area), 0);
            assert_int_equal(r.sec_cnt, 2);
            if (journal_append(&r, JR_BEGIN, AIRLOCK_SWAP_TEST, 0x1ffff) != 0 ||
                airlock_sim_flash_violations(d.sim, 0) != 0) {
                fail_msg("ws %u seed %llu: the append after a torn one failed: %s", ws[w],
                         (unsigned long long)seed, airlock_sim_flash_violation_str(d.sim));
            }
            journal_t again;
            assert_int_equal(journal_open(&again, &d.area), 0);
            assert_true(again.in_swap);
            assert_int_equal(again.extent, 0x1ffff);
        }
        airlock_sim_flash_snapshot_free(snap);
        airlock_sim_flash_close(d.sim);
    }
}

/* ---- compaction ---------------------------------------------------------- */

static void test_compaction(void **state)
{
    (void)state;
    static const uint32_t ws[] = {1, 8, 32};
    for (size_t w = 0; w < 3; w++) {
        struct dev d;
        journal_t j;
        dev_open(&d, ws[w], 4 * KIB, 8, 3);
        assert_int_equal(journal_open(&j, &d.area), 0);
        uint32_t per_sector = 4 * KIB / j.rec_size - 1; /* records after the header */
        assert_int_equal(journal_append(&j, JR_SECCNT, 12, 0), 0);
        assert_int_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_TEST, 0x7000), 0);
        uint32_t appended = 2, k = 0;
        /* fill sector 0 with steps, and go one past */
        while (j.gen == 1) {
            assert_int_equal(journal_append(&j, JR_STEP, k / 2, k % 2 + 1), 0);
            k++;
            appended++;
        }
        assert_int_equal(appended, per_sector + 1);
        assert_int_equal(j.gen, 2);
        assert_int_equal(j.active, 1);
        /* the summary holds SECCNT, LEN, BEGIN, STEP; then the record that did not fit */
        assert_int_equal(j.next, (1 + 4 + 1) * j.rec_size);
        assert_int_equal(j.sec_cnt, 12);
        assert_true(j.in_swap);
        reopen_same(&d, &j);
        /* the third sector of the area is never used */
        const uint8_t *p = airlock_sim_flash_data(d.sim) + d.area.off;
        assert_true(all_eq(p + 8 * KIB, 4 * KIB, 0xff));

        /* end the swap as a trial, then fill sector 1: back to sector 0 */
        assert_int_equal(journal_append(&j, JR_END, AIRLOCK_SWAP_TEST, 0x7000), 0);
        while (j.gen == 2) {
            assert_int_equal(journal_append(&j, JR_SECCNT, 3, 0), 0); /* below: no change */
        }
        assert_int_equal(j.gen, 3);
        assert_int_equal(j.active, 0);
        assert_true(j.trial);
        assert_false(j.in_swap);
        assert_int_equal(j.extent, 0x7000);
        assert_int_equal(j.sec_cnt, 12);
        reopen_same(&d, &j);

        /* resolve the trial, fill again: an empty summary but the counter */
        assert_int_equal(journal_append(&j, JR_RESOLVE, 1, 0), 0);
        while (j.gen == 3) {
            assert_int_equal(journal_append(&j, JR_RESOLVE, 1, 0), 0);
        }
        assert_int_equal(j.active, 1);
        assert_false(j.trial);
        assert_int_equal(j.sec_cnt, 12);
        assert_int_equal(j.next, (1 + 1 + 1) * j.rec_size);
        reopen_same(&d, &j);
        assert_true(all_eq(p + 8 * KIB, 4 * KIB, 0xff));
        /* one erase per compaction, plus the format; nothing else */
        assert_int_equal(j.gen, 4);
        airlock_sim_flash_counts_t c;
        airlock_sim_flash_counts(d.sim, &c);
        assert_int_equal(c.erases, 1 + 3);
        dev_close(&d);
    }
}

/* The two journal sectors may differ in size (a mixed sector map). */
static void test_compaction_mixed_sectors(void **state)
{
    (void)state;
    static const airlock_sector_run_t mixed[] = {{2, 256}, {2, 1024}};
    airlock_sim_flash_geometry_t geo = {0, 8, 0xff, mixed, 2};
    struct dev d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(airlock_sim_flash_create(&geo, &d.sim), 0);
    d.area = (airlock_area_t){airlock_sim_flash_port(d.sim), 256, 256 + 1024};
    journal_t j;
    assert_int_equal(journal_open(&j, &d.area), 0);
    assert_int_equal(j.sec_size[0], 256);
    assert_int_equal(j.sec_size[1], 1024);
    assert_int_equal(journal_append(&j, JR_SECCNT, 77, 0), 0);
    uint32_t k = 0;
    for (uint32_t gen = 1; gen <= 4; gen++) {
        assert_int_equal(j.gen, gen);
        while (j.gen == gen) {
            assert_int_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_PERM, 0x4000 + k), 0);
            assert_int_equal(journal_append(&j, JR_STEP, k, 2), 0);
            k++;
        }
        /* the small and the big sector in turn */
        assert_int_equal(j.active, (int)(gen % 2));
        assert_int_equal(j.sec_cnt, 77);
        reopen_same(&d, &j);
    }
    dev_close(&d);
}

/* ---- power cuts ---------------------------------------------------------- */

/* The append sequence of the power-cut test: ~3 sectors' worth of records. */
struct op {
    uint32_t type, a, b;
};

static size_t make_sequence(struct op *ops, size_t cap)
{
    size_t n = 0;
#define PUSH(t, x, y)                                                                              \
    do {                                                                                           \
        assert_true(n < cap);                                                                      \
        ops[n++] = (struct op){(t), (x), (y)};                                                     \
    } while (0)
    PUSH(JR_SECCNT, 1, 0);
    PUSH(JR_BEGIN, AIRLOCK_SWAP_TEST, 0x5000);
    for (uint32_t k = 0; k < 5; k++) {
        PUSH(JR_STEP, k, 1);
        PUSH(JR_STEP, k, 2);
    }
    PUSH(JR_END, AIRLOCK_SWAP_TEST, 0x5000);
    PUSH(JR_RESOLVE, 1, 0);
    PUSH(JR_SECCNT, 2, 0);
    PUSH(JR_BEGIN, AIRLOCK_SWAP_TEST, 0x3000);
    for (uint32_t k = 0; k < 3; k++) {
        PUSH(JR_STEP, k, 1);
        PUSH(JR_STEP, k, 2);
    }
    PUSH(JR_END, AIRLOCK_SWAP_TEST, 0x3000);
    PUSH(JR_BEGIN, AIRLOCK_SWAP_REVERT, 0x3000);
    for (uint32_t k = 0; k < 3; k++) {
        PUSH(JR_STEP, k, 2);
    }
    PUSH(JR_END, AIRLOCK_SWAP_REVERT, 0x3000);
    PUSH(JR_SECCNT, 0xff00ff, 0);
    PUSH(JR_BEGIN, AIRLOCK_SWAP_PERM, 0xff00);
    for (uint32_t k = 0; k < 4; k++) {
        PUSH(JR_STEP, k, 2);
    }
    PUSH(JR_END, AIRLOCK_SWAP_PERM, 0xff00);
    PUSH(JR_SECCNT, 0xffffff, 0);
    PUSH(JR_BEGIN, AIRLOCK_SWAP_TEST, 0x1000);
    PUSH(JR_STEP, 0, 1);
#undef PUSH
    return n;
}

static const int tear_policies[] = {
    AIRLOCK_SIM_FLASH_TEAR_NOTHING, AIRLOCK_SIM_FLASH_TEAR_DONE,  AIRLOCK_SIM_FLASH_TEAR_PREFIX,
    AIRLOCK_SIM_FLASH_TEAR_UNITS,   AIRLOCK_SIM_FLASH_TEAR_DRIFT, AIRLOCK_SIM_FLASH_TEAR_NOISE,
    AIRLOCK_SIM_FLASH_TEAR_ANY,
};
#define NPOL (sizeof(tear_policies) / sizeof(tear_policies[0]))

/*
 * Cut power at every flash operation of a sequence of appends (starting from
 * a formatted journal, two compactions included), once per tear kind. After
 * each cut: open succeeds, the state is the one before or after the
 * interrupted append, and the journal keeps working.
 */
static void cut_every_append_op(uint32_t ws)
{
    struct op seq[80];
    size_t n = make_sequence(seq, 80);
    struct jstate *expect = calloc(n + 1, sizeof(*expect));
    assert_non_null(expect);
    struct dev d;
    journal_t j;
    /* small sectors: 16 records each, so the sequence compacts at least twice */
    dev_open(&d, ws, 256, 8, 2);
    assert_int_equal(journal_open(&j, &d.area), 0);
    airlock_sim_flash_snapshot_t *snap;
    assert_int_equal(airlock_sim_flash_save(d.sim, &snap), 0);
    /* the uncut run: states after each append, and the operation count */
    airlock_sim_flash_reset_counts(d.sim);
    expect[0] = state_of(&j);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(journal_append(&j, seq[i].type, seq[i].a, seq[i].b), 0);
        expect[i + 1] = state_of(&j);
    }
    assert_true(j.gen >= 3); /* two compactions at least */
    uint64_t total_ops = airlock_sim_flash_ops(d.sim);
    uint64_t runs = 0;

    for (uint64_t k = 0; k < total_ops; k++) {
        for (size_t p = 0; p < NPOL; p++) {
            char a[160], b[160], c[160];
            uint64_t seed = base_seed + k * 16 + p;
            assert_int_equal(airlock_sim_flash_restore(d.sim, snap), 0);
            airlock_sim_flash_reset_counts(d.sim);
            airlock_sim_flash_seed(d.sim, seed);
            assert_int_equal(airlock_sim_flash_set_tear(d.sim, tear_policies[p]), 0);
            assert_int_equal(journal_open(&j, &d.area), 0);
            airlock_sim_flash_cut_at(d.sim, k);
            size_t cut_in = n;
            for (size_t i = 0; i < n; i++) {
                if (journal_append(&j, seq[i].type, seq[i].a, seq[i].b) != 0) {
                    cut_in = i;
                    break;
                }
            }
            assert_true(cut_in < n); /* every op index lands in some append */
            airlock_sim_flash_power_on(d.sim);
            journal_t r;
            int rc = journal_open(&r, &d.area);
            if (rc != 0) {
                fail_msg("ws %u cut %llu (%s, seed %llu): open -> %d", ws, (unsigned long long)k,
                         airlock_sim_flash_cut_str(d.sim), (unsigned long long)seed, rc);
            }
            struct jstate got = state_of(&r);
            if (!same(&got, &expect[cut_in]) && !same(&got, &expect[cut_in + 1])) {
                fail_msg("ws %u cut %llu in append %zu (%s, seed %llu): state %s, expected %s or "
                         "%s",
                         ws, (unsigned long long)k, cut_in, airlock_sim_flash_cut_str(d.sim),
                         (unsigned long long)seed, fmt_state(&got, a, sizeof(a)),
                         fmt_state(&expect[cut_in], b, sizeof(b)),
                         fmt_state(&expect[cut_in + 1], c, sizeof(c)));
            }
            /* the counter is never lost, and never goes back */
            if (expect[cut_in].has_sec_cnt) {
                assert_true(got.has_sec_cnt);
                assert_true(got.sec_cnt >= expect[cut_in].sec_cnt);
            }
            /* redo the interrupted append and the rest: same end state */
            for (size_t i = cut_in; i < n; i++) {
                rc = journal_append(&r, seq[i].type, seq[i].a, seq[i].b);
                if (rc != 0) {
                    fail_msg("ws %u cut %llu (%s, seed %llu): append %zu after recovery -> %d (%s)",
                             ws, (unsigned long long)k, airlock_sim_flash_cut_str(d.sim),
                             (unsigned long long)seed, i, rc,
                             airlock_sim_flash_violation_str(d.sim));
                }
            }
            struct jstate end = state_of(&r);
            assert_true(same(&end, &expect[n]));
            journal_t again;
            assert_int_equal(journal_open(&again, &d.area), 0);
            end = state_of(&again);
            assert_true(same(&end, &expect[n]));
            if (airlock_sim_flash_violations(d.sim, 0) != 0) {
                fail_msg("ws %u cut %llu (%s, seed %llu): NOR violation %s", ws,
                         (unsigned long long)k, airlock_sim_flash_cut_str(d.sim),
                         (unsigned long long)seed, airlock_sim_flash_violation_str(d.sim));
            }
            runs++;
        }
    }
    print_message("  journal w%u: %llu ops, %llu cut runs passed\n", ws,
                  (unsigned long long)total_ops, (unsigned long long)runs);
    airlock_sim_flash_snapshot_free(snap);
    free(expect);
    dev_close(&d);
}

static void test_powercut_appends_w1(void **state)
{
    (void)state;
    cut_every_append_op(1);
}

static void test_powercut_appends_w8(void **state)
{
    (void)state;
    cut_every_append_op(8);
}

static void test_powercut_appends_w4(void **state)
{
    (void)state;
    cut_every_append_op(4);
}

static void test_powercut_appends_w32(void **state)
{
    (void)state;
    cut_every_append_op(32);
}

/* Cut power at every operation of the first format (on blank and on junk). */
static void test_powercut_format(void **state)
{
    (void)state;
    static const uint32_t ws[] = {1, 8, 32};
    uint64_t runs = 0;
    for (size_t w = 0; w < 3; w++) {
        for (int junk = 0; junk <= 1; junk++) {
            struct dev d;
            journal_t j;
            dev_open(&d, ws[w], 4 * KIB, 8, 2);
            if (junk) {
                uint8_t *buf = malloc(d.area.size);
                assert_non_null(buf);
                for (uint32_t i = 0; i < d.area.size; i++) {
                    buf[i] = (uint8_t)(i ^ (i >> 8));
                }
                assert_int_equal(airlock_sim_flash_load(d.sim, d.area.off, buf, d.area.size), 0);
                free(buf);
            }
            airlock_sim_flash_snapshot_t *snap;
            assert_int_equal(airlock_sim_flash_save(d.sim, &snap), 0);
            airlock_sim_flash_reset_counts(d.sim);
            assert_int_equal(journal_open(&j, &d.area), 0);
            uint64_t total = airlock_sim_flash_ops(d.sim);
            assert_int_equal(total, 2); /* erase + header */
            for (uint64_t k = 0; k < total; k++) {
                for (size_t p = 0; p < NPOL; p++) {
                    for (uint64_t rep = 0; rep < 8; rep++) {
                        uint64_t seed = base_seed + k * 1000 + p * 10 + rep;
                        assert_int_equal(airlock_sim_flash_restore(d.sim, snap), 0);
                        airlock_sim_flash_reset_counts(d.sim);
                        airlock_sim_flash_seed(d.sim, seed);
                        assert_int_equal(airlock_sim_flash_set_tear(d.sim, tear_policies[p]), 0);
                        airlock_sim_flash_cut_at(d.sim, k);
                        assert_int_not_equal(journal_open(&j, &d.area), 0);
                        airlock_sim_flash_power_on(d.sim);
                        int rc = journal_open(&j, &d.area);
                        if (rc != 0) {
                            fail_msg("format cut %llu (%s, seed %llu): open -> %d",
                                     (unsigned long long)k, airlock_sim_flash_cut_str(d.sim),
                                     (unsigned long long)seed, rc);
                        }
                        assert_false(j.in_swap);
                        assert_false(j.trial);
                        assert_false(j.has_sec_cnt);
                        assert_int_equal(journal_append(&j, JR_SECCNT, 5, 0), 0);
                        assert_int_equal(journal_append(&j, JR_BEGIN, AIRLOCK_SWAP_PERM, 4096), 0);
                        reopen_same(&d, &j);
                        if (airlock_sim_flash_violations(d.sim, 0) != 0) {
                            fail_msg("format cut %llu (%s, seed %llu): NOR violation %s",
                                     (unsigned long long)k, airlock_sim_flash_cut_str(d.sim),
                                     (unsigned long long)seed,
                                     airlock_sim_flash_violation_str(d.sim));
                        }
                        runs++;
                    }
                }
            }
            airlock_sim_flash_snapshot_free(snap);
            dev_close(&d);
        }
    }
    print_message("  journal format: %llu cut runs passed\n", (unsigned long long)runs);
}

static int setup(void **state)
{
    (void)state;
    const char *s = getenv("AIRLOCK_SEED");
    if (s) {
        base_seed = strtoull(s, NULL, 0);
    }
    print_message("journal tests, seed %llu (AIRLOCK_SEED to repeat)\n",
                  (unsigned long long)base_seed);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_blank_formats),
        cmocka_unit_test(test_open_garbage_formats),
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_rec_size_32),
        cmocka_unit_test(test_record_semantics),
        cmocka_unit_test(test_torn_record_skipped),
        cmocka_unit_test(test_no_invisible_torn_record),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_compaction_mixed_sectors),
        cmocka_unit_test(test_powercut_format),
        cmocka_unit_test(test_powercut_appends_w1),
        cmocka_unit_test(test_powercut_appends_w8),
        cmocka_unit_test(test_powercut_appends_w4),
        cmocka_unit_test(test_powercut_appends_w32),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
