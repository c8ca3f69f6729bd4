/*
 * Unit tests for core/layout.c: sector lookup on uniform and mixed sector
 * maps, flash description checks, and the layout check a user's board
 * definition goes through (every error names the area, with expected/found
 * values). Pure data: no flash is touched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "airlock/layout.h"

#define KIB 1024u

static int dummy_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    (void)ctx;
    (void)addr;
    (void)buf;
    (void)len;
    return -1;
}

static int dummy_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    (void)ctx;
    (void)addr;
    (void)buf;
    (void)len;
    return -1;
}

static int dummy_erase(void *ctx, uint32_t addr)
{
    (void)ctx;
    (void)addr;
    return -1;
}

/* 16 x 4 KiB. */
static const airlock_sector_run_t uniform_runs[] = {{16, 4 * KIB}};
/* STM32F4 bank: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB = 1 MiB. */
static const airlock_sector_run_t f4_runs[] = {{4, 16 * KIB}, {1, 64 * KIB}, {7, 128 * KIB}};

static airlock_flash_t mkflash(const airlock_sector_run_t *runs, uint32_t nruns, uint32_t ws)
{
    airlock_flash_t f;
    memset(&f, 0, sizeof(f));
    f.read = dummy_read;
    f.prog = dummy_prog;
    f.erase = dummy_erase;
    f.write_size = ws;
    f.erased_val = 0xff;
    f.runs = runs;
    f.nruns = nruns;
    for (uint32_t r = 0; r < nruns; r++) {
        f.size += runs[r].count * runs[r].size;
    }
    return f;
}

/* ---- airlock_flash_sector ------------------------------------------------ */

static void test_sector_uniform(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    uint32_t start = 0xdead, size = 0xbeef;
    assert_int_equal(airlock_flash_sector(&f, 0, &start, &size), 0);
    assert_int_equal(start, 0);
    assert_int_equal(size, 4 * KIB);
    assert_int_equal(airlock_flash_sector(&f, 4 * KIB - 1, &start, &size), 0);
    assert_int_equal(start, 0);
    assert_int_equal(airlock_flash_sector(&f, 4 * KIB, &start, &size), 0);
    assert_int_equal(start, 4 * KIB);
    assert_int_equal(airlock_flash_sector(&f, 37 * KIB + 5, &start, &size), 0);
    assert_int_equal(start, 36 * KIB);
    assert_int_equal(size, 4 * KIB);
    assert_int_equal(airlock_flash_sector(&f, 64 * KIB - 1, &start, &size), 0);
    assert_int_equal(start, 60 * KIB);
    /* outside the device */
    assert_int_equal(airlock_flash_sector(&f, 64 * KIB, &start, &size), -1);
    assert_int_equal(airlock_flash_sector(&f, 0xffffffffu, &start, &size), -1);
}

static void test_sector_mixed(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(f4_runs, 3, 4);
    assert_int_equal(f.size, 1024 * KIB);
    struct {
        uint32_t addr, start, size;
    } cases[] = {
        {0, 0, 16 * KIB},
        {16 * KIB - 1, 0, 16 * KIB},
        {16 * KIB, 16 * KIB, 16 * KIB},
        {63 * KIB, 48 * KIB, 16 * KIB},
        {64 * KIB, 64 * KIB, 64 * KIB},
        {127 * KIB + 1023, 64 * KIB, 64 * KIB},
        {128 * KIB, 128 * KIB, 128 * KIB},
        {300 * KIB, 256 * KIB, 128 * KIB},
        {1024 * KIB - 1, 896 * KIB, 128 * KIB},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t start = 0, size = 0;
        assert_int_equal(airlock_flash_sector(&f, cases[i].addr, &start, &size), 0);
        assert_int_equal(start, cases[i].start);
        assert_int_equal(size, cases[i].size);
    }
    uint32_t start, size;
    assert_int_equal(airlock_flash_sector(&f, 1024 * KIB, &start, &size), -1);
}

/* ---- airlock_flash_check ------------------------------------------------- */

static void test_flash_check(void **state)
{
    (void)state;
    airlock_flash_t ok = mkflash(f4_runs, 3, 8);
    assert_int_equal(airlock_flash_check(&ok), 0);
    static const uint32_t good_ws[] = {1, 2, 4, 8, 16, 32};
    for (size_t i = 0; i < 6; i++) {
        airlock_flash_t f = mkflash(uniform_runs, 1, good_ws[i]);
        assert_int_equal(airlock_flash_check(&f), 0);
    }

    assert_int_equal(airlock_flash_check(NULL), AIRLOCK_ERR_INVAL);
    airlock_flash_t f;
    f = ok, f.read = NULL;
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    f = ok, f.prog = NULL;
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    f = ok, f.erase = NULL;
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    /* sync is optional */
    f = ok, f.sync = NULL;
    assert_int_equal(airlock_flash_check(&f), 0);
    f = ok, f.runs = NULL;
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    f = ok, f.nruns = 0;
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    /* write size: a power of two in 1..32 */
    static const uint32_t bad_ws[] = {0, 3, 6, 12, 64, 128};
    for (size_t i = 0; i < 6; i++) {
        f = ok, f.write_size = bad_ws[i];
        assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    }
    /* runs must sum to size */
    f = ok, f.size = ok.size - 16 * KIB;
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    f = ok, f.size = ok.size + 4 * KIB;
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    /* empty runs, zero-size sectors, sectors not a multiple of write_size */
    static const airlock_sector_run_t zero_count[] = {{4, 4 * KIB}, {0, 4 * KIB}};
    f = mkflash(zero_count, 2, 8);
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    static const airlock_sector_run_t zero_size[] = {{4, 4 * KIB}, {3, 0}};
    f = mkflash(zero_size, 2, 8);
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    static const airlock_sector_run_t odd_size[] = {{4, 4100}};
    f = mkflash(odd_size, 1, 8);
    assert_int_equal(airlock_flash_check(&f), AIRLOCK_ERR_INVAL);
    f = mkflash(odd_size, 1, 4);
    assert_int_equal(airlock_flash_check(&f), 0); /* 4100 is a multiple of 4 */
}

/* ---- airlock_layout_check ------------------------------------------------ */

/*
 * A good layout on one uniform 64 KiB flash: bootloader 8K, primary 24K,
 * secondary 24K, status 8K.
 */
static void good_layout(airlock_layout_t *l, const airlock_flash_t *f)
{
    memset(l, 0, sizeof(*l));
    l->area[AIRLOCK_AREA_BOOTLOADER] = (airlock_area_t){f, 0, 8 * KIB};
    l->area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){f, 8 * KIB, 24 * KIB};
    l->area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){f, 32 * KIB, 24 * KIB};
    l->area[AIRLOCK_AREA_STATUS] = (airlock_area_t){f, 56 * KIB, 8 * KIB};
}

static void clear_det(airlock_err_detail_t *det)
{
    memset(det, 0, sizeof(*det));
    det->field = NULL;
}

static void test_layout_good(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    airlock_layout_t l;
    airlock_err_detail_t det;
    good_layout(&l, &f);
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), 0);
    assert_int_equal(airlock_layout_check(&l, NULL), 0);
    /* optional areas may be absent */
    l.area[AIRLOCK_AREA_BOOTLOADER].flash = NULL;
    l.area[AIRLOCK_AREA_STATUS].flash = NULL;
    assert_int_equal(airlock_layout_check(&l, &det), 0);
    /* an area may end exactly at the end of the device */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_STATUS].size = 8 * KIB;
    assert_int_equal(l.area[AIRLOCK_AREA_STATUS].off + 8 * KIB, f.size);
    assert_int_equal(airlock_layout_check(&l, &det), 0);
    assert_int_equal(airlock_layout_check(NULL, &det), AIRLOCK_ERR_INVAL);
}

static void test_layout_missing_slots(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    airlock_layout_t l;
    airlock_err_detail_t det;

    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_PRIMARY].flash = NULL;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_non_null(det.field);
    assert_string_equal(det.field, "primary.flash");

    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_SECONDARY].flash = NULL;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_non_null(det.field);
    assert_string_equal(det.field, "secondary.flash");
    /* no detail pointer: still an error */
    assert_int_equal(airlock_layout_check(&l, NULL), AIRLOCK_ERR_INVAL);
}

static void test_layout_bad_device(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    airlock_flash_t bad = f;
    bad.write_size = 3;
    airlock_layout_t l;
    airlock_err_detail_t det;
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_SECONDARY].flash = &bad;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "secondary.flash");
    /* an empty area */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_STATUS].size = 0;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "status.size");
}

static void test_layout_misaligned(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    airlock_layout_t l;
    airlock_err_detail_t det;

    /* offset inside a sector: expected the sector's start, found the offset */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_PRIMARY].off = 8 * KIB + 512;
    l.area[AIRLOCK_AREA_PRIMARY].size = 20 * KIB;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "primary.offset");
    assert_int_equal(det.offset, 8 * KIB + 512);
    assert_true(det.has_values);
    assert_int_equal(det.expected, 8 * KIB);
    assert_int_equal(det.found, 8 * KIB + 512);

    /* size not ending on a sector boundary */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_SECONDARY].size = 24 * KIB - 256;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "secondary.size");
    assert_true(det.has_values);
    assert_int_equal(det.found, 24 * KIB - 256);
    assert_int_equal(det.expected, 20 * KIB); /* the size that ends on the boundary below */
    assert_int_equal(det.offset, 56 * KIB - 256);

    /* mixed sectors: a slot starting inside the 64 KiB sector */
    airlock_flash_t mf = mkflash(f4_runs, 3, 8);
    memset(&l, 0, sizeof(l));
    l.area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){&mf, 0, 64 * KIB};
    l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&mf, 96 * KIB, 160 * KIB};
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "secondary.offset");
    assert_int_equal(det.expected, 64 * KIB);
    assert_int_equal(det.found, 96 * KIB);
    /* ... and one ending inside a 128 KiB sector */
    l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&mf, 128 * KIB, 192 * KIB};
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "secondary.size");
    assert_int_equal(det.expected, 128 * KIB);
    assert_int_equal(det.found, 192 * KIB);
    /* fixed: the mixed layout is fine */
    l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&mf, 64 * KIB, 64 * KIB + 256 * KIB};
    assert_int_equal(airlock_layout_check(&l, &det), 0);
}

static void test_layout_overlap(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    airlock_layout_t l;
    airlock_err_detail_t det;

    /* secondary starts inside the primary */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_SECONDARY].off = 28 * KIB;
    l.area[AIRLOCK_AREA_SECONDARY].size = 24 * KIB;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_non_null(det.field);
    assert_non_null(strstr(det.field, "overlap"));
    assert_non_null(strstr(det.field, "secondary"));
    assert_int_equal(det.offset, 28 * KIB);

    /* status area covering the bootloader */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_STATUS] = (airlock_area_t){&f, 4 * KIB, 4 * KIB};
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_non_null(strstr(det.field, "overlap"));

    /* scratch containing the whole secondary */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_STATUS].flash = NULL;
    l.area[AIRLOCK_AREA_SCRATCH] = (airlock_area_t){&f, 32 * KIB, 32 * KIB};
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_non_null(strstr(det.field, "scratch"));

    /* touching is not overlapping */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_PRIMARY].size = 24 * KIB;
    l.area[AIRLOCK_AREA_SECONDARY].off = 32 * KIB;
    assert_int_equal(airlock_layout_check(&l, &det), 0);
}

static void test_layout_outside_device(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    airlock_layout_t l;
    airlock_err_detail_t det;

    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_STATUS].size = 12 * KIB; /* runs 4 KiB past the end */
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "status.size");
    assert_true(det.has_values);
    assert_int_equal(det.expected, 8 * KIB); /* what is left of the device */
    assert_int_equal(det.found, 12 * KIB);

    /* size so large that offset + size wraps 32 bits */
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_SECONDARY].size = 0xffffffffu - 16 * KIB;
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "secondary.size");
}

/*
 * An area starting beyond the end of its device: an error, and its detail
 * must not carry a wrapped-around "expected" size (room left is 0).
 */
static void test_layout_offset_beyond_device(void **state)
{
    (void)state;
    airlock_flash_t f = mkflash(uniform_runs, 1, 8);
    airlock_layout_t l;
    airlock_err_detail_t det;
    good_layout(&l, &f);
    l.area[AIRLOCK_AREA_STATUS] = (airlock_area_t){&f, 128 * KIB, 4 * KIB};
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_non_null(det.field);
    assert_non_null(strstr(det.field, "status"));
    assert_int_equal(det.offset, 128 * KIB);
    if (det.has_values) {
        assert_true(det.expected <= f.size);
    }
}

static void test_layout_two_devices(void **state)
{
    (void)state;
    /* internal flash with the primary, external QSPI with the secondary */
    airlock_flash_t in = mkflash(f4_runs, 3, 8);
    static const airlock_sector_run_t ext_runs[] = {{64, 4 * KIB}};
    airlock_flash_t ext = mkflash(ext_runs, 1, 1);
    airlock_layout_t l;
    airlock_err_detail_t det;
    memset(&l, 0, sizeof(l));
    l.area[AIRLOCK_AREA_BOOTLOADER] = (airlock_area_t){&in, 0, 64 * KIB};
    l.area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){&in, 128 * KIB, 256 * KIB};
    /* numerically overlapping the primary (and the bootloader), other device */
    l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&ext, 0, 256 * KIB};
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), 0);
    /* ... but checked against its own device's size and sectors */
    l.area[AIRLOCK_AREA_SECONDARY].size = 260 * KIB;
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "secondary.size");
    l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&ext, 2 * KIB, 128 * KIB};
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_string_equal(det.field, "secondary.offset");
    /* a status area on the external device overlapping the secondary is an error */
    l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&ext, 0, 128 * KIB};
    l.area[AIRLOCK_AREA_STATUS] = (airlock_area_t){&ext, 124 * KIB, 8 * KIB};
    clear_det(&det);
    assert_int_equal(airlock_layout_check(&l, &det), AIRLOCK_ERR_INVAL);
    assert_non_null(strstr(det.field, "status"));
    l.area[AIRLOCK_AREA_STATUS] = (airlock_area_t){&ext, 128 * KIB, 8 * KIB};
    assert_int_equal(airlock_layout_check(&l, &det), 0);
}

/* ---- airlock_layout_max_align -------------------------------------------- */

static void test_layout_max_align(void **state)
{
    (void)state;
    static const uint32_t ws[] = {1, 2, 4, 8, 16, 32};
    for (size_t p = 0; p < 6; p++) {
        for (size_t s = 0; s < 6; s++) {
            airlock_flash_t fp = mkflash(uniform_runs, 1, ws[p]);
            airlock_flash_t fs = mkflash(uniform_runs, 1, ws[s]);
            airlock_layout_t l;
            memset(&l, 0, sizeof(l));
            l.area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){&fp, 0, 32 * KIB};
            l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&fs, 0, 32 * KIB};
            uint32_t want = ws[p] > ws[s] ? ws[p] : ws[s];
            if (want < 8) {
                want = 8;
            }
            assert_int_equal(airlock_layout_max_align(&l), want);
        }
    }
    /* only the slots count: a 32-byte status device does not change it */
    airlock_flash_t f1 = mkflash(uniform_runs, 1, 4);
    airlock_flash_t f32 = mkflash(uniform_runs, 1, 32);
    airlock_layout_t l;
    memset(&l, 0, sizeof(l));
    l.area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){&f1, 0, 16 * KIB};
    l.area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){&f1, 16 * KIB, 16 * KIB};
    l.area[AIRLOCK_AREA_STATUS] = (airlock_area_t){&f32, 0, 8 * KIB};
    assert_int_equal(airlock_layout_max_align(&l), 8);
}

static void test_area_names(void **state)
{
    (void)state;
    assert_string_equal(airlock_area_name(AIRLOCK_AREA_BOOTLOADER), "bootloader");
    assert_string_equal(airlock_area_name(AIRLOCK_AREA_PRIMARY), "primary");
    assert_string_equal(airlock_area_name(AIRLOCK_AREA_SECONDARY), "secondary");
    assert_string_equal(airlock_area_name(AIRLOCK_AREA_SCRATCH), "scratch");
    assert_string_equal(airlock_area_name(AIRLOCK_AREA_STATUS), "status");
    assert_string_equal(airlock_area_name(AIRLOCK_AREA_COUNT), "unknown");
    assert_string_equal(airlock_area_name(-1), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sector_uniform),
        cmocka_unit_test(test_sector_mixed),
        cmocka_unit_test(test_flash_check),
        cmocka_unit_test(test_layout_good),
        cmocka_unit_test(test_layout_missing_slots),
        cmocka_unit_test(test_layout_bad_device),
        cmocka_unit_test(test_layout_misaligned),
        cmocka_unit_test(test_layout_overlap),
        cmocka_unit_test(test_layout_outside_device),
        cmocka_unit_test(test_layout_offset_beyond_device),
        cmocka_unit_test(test_layout_two_devices),
        cmocka_unit_test(test_layout_max_align),
        cmocka_unit_test(test_area_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
