/*
 * Host unit test of the Cortex-M NOR flash port (port/cortex-m/cm_flash.c)
 * over a RAM buffer: the NOR rules it must enforce like the sim flash (same
 * error numbers, refused calls change nothing) and its power-cut tears.
 * Never touches a file; power_off escapes with longjmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cm_flash.h"

#define SIZE (64u * 1024u)
#define SECTOR 4096u
#define WS 4u

static uint8_t mem[SIZE];
static uint32_t map[SIZE / WS / 32u];
static cm_flash_t fl;
static jmp_buf cut_jmp;
static uint32_t ops;

static void power_off(void *ctx)
{
    (void)ctx;
    longjmp(cut_jmp, 1);
}

static int setup(void **state)
{
    (void)state;
    memset(mem, 0xff, sizeof mem);
    ops = 0;
    assert_int_equal(cm_flash_init(&fl, mem, SIZE, SECTOR, WS, map, sizeof map), 0);
    return 0;
}

static void test_geometry(void **state)
{
    (void)state;
    assert_int_equal(fl.port.size, SIZE);
    assert_int_equal(fl.port.write_size, WS);
    assert_int_equal(fl.port.erased_val, 0xff);
    assert_int_equal(fl.port.nruns, 1);
    assert_int_equal(fl.port.runs[0].count, SIZE / SECTOR);
    assert_int_equal(airlock_flash_check(&fl.port), 0);
    /* a bitmap too small, a size that is not whole sectors */
    cm_flash_t g;
    assert_int_not_equal(cm_flash_init(&g, mem, SIZE, SECTOR, WS, map, sizeof map / 2), 0);
    assert_int_not_equal(cm_flash_init(&g, mem, SIZE - 1, SECTOR, WS, map, sizeof map), 0);
    assert_int_not_equal(cm_flash_init(&g, mem, SIZE, SECTOR, 3, map, sizeof map), 0);
}

static void test_rules(void **state)
{
    (void)state;
    const uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t before[16], rd[8];
    void *c = fl.port.ctx;

    memcpy(before, mem + 0x100, sizeof before);
    assert_int_equal(fl.port.prog(c, 0x102, data, 4), CM_FLASH_ERR_ALIGN);
    assert_int_equal(fl.port.prog(c, 0x100, data, 6), CM_FLASH_ERR_ALIGN);
    assert_int_equal(fl.port.prog(c, SIZE - 4, data, 8), CM_FLASH_ERR_RANGE);
    assert_memory_equal(mem + 0x100, before, sizeof before);

    assert_int_equal(fl.port.prog(c, 0x100, data, 8), 0);
    assert_int_equal(fl.port.read(c, 0x100, rd, 8), 0);
    assert_memory_equal(rd, data, 8);
    /* programmed once since the erase: refused, even with the same bytes or all-0xff */
    assert_int_equal(fl.port.prog(c, 0x104, data, 4), CM_FLASH_ERR_REPROG);
    const uint8_t ff[4] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(fl.port.prog(c, 0x200, ff, 4), 0);
    assert_int_equal(fl.port.prog(c, 0x200, data, 4), CM_FLASH_ERR_REPROG);
    assert_memory_equal(mem + 0x200, ff, 4);
    /* a unit that does not read erased counts as programmed (e.g. from a previous power-on) */
    mem[0x301] = 0x7f;
    assert_int_equal(fl.port.prog(c, 0x300, data, 4), CM_FLASH_ERR_REPROG);
    assert_int_equal(mem[0x300], 0xff);

    assert_int_equal(fl.port.erase(c, 0x80), CM_FLASH_ERR_ERASE_ADDR);
    assert_int_equal(fl.port.erase(c, SIZE), CM_FLASH_ERR_RANGE);
    assert_int_equal(fl.port.read(c, SIZE - 4, rd, 8), CM_FLASH_ERR_RANGE);
    assert_int_equal(fl.violations, 9);
    assert_int_equal(fl.last_err, CM_FLASH_ERR_RANGE);

    assert_int_equal(fl.port.erase(c, 0), 0);
    for (uint32_t i = 0; i < SECTOR; i++) {
        assert_int_equal(mem[i], 0xff);
    }
    assert_int_equal(fl.port.prog(c, 0x100, data, 8), 0); /* programmable again */
    assert_int_equal(mem[SECTOR], 0xff);                  /* the next sector untouched */
}

static void arm_cut(uint32_t k, int tear)
{
    fl.ops = &ops;
    fl.cut_at = k;
    fl.cut_tear = tear;
    fl.power_off = power_off;
}

static void test_cut_prog(void **state)
{
    (void)state;
    uint8_t data[16];
    memset(data, 0x11, sizeof data);
    static const int tears[] = {CM_FLASH_TEAR_NOTHING, CM_FLASH_TEAR_HALF, CM_FLASH_TEAR_DONE};
    static const uint32_t done[] = {0, 8, 16};
    for (int t = 0; t < 3; t++) {
        setup(NULL);
        arm_cut(2, tears[t]);
        if (setjmp(cut_jmp) == 0) {
            assert_int_equal(fl.port.prog(fl.port.ctx, 0x0, data, 16), 0);  /* op 1 */
            assert_int_equal(fl.port.prog(fl.port.ctx, 0x40, data, 16), 0); /* op 2: cut */
            fail_msg("power_off was not called");
        }
        assert_int_equal(ops, 2);
        assert_int_equal(mem[0], 0x11);
        for (uint32_t i = 0; i < 16; i++) {
            assert_int_equal(mem[0x40 + i], i < done[t] ? 0x11 : 0xff);
        }
    }
}

static void test_cut_erase(void **state)
{
    (void)state;
    memset(mem + SECTOR, 0x00, SECTOR);
    arm_cut(1, CM_FLASH_TEAR_HALF);
    if (setjmp(cut_jmp) == 0) {
        (void)fl.port.erase(fl.port.ctx, SECTOR);
        fail_msg("power_off was not called");
    }
    assert_int_equal(mem[SECTOR], 0xff);
    assert_int_equal(mem[SECTOR + SECTOR / 2 - 1], 0xff);
    assert_int_equal(mem[SECTOR + SECTOR / 2], 0x00);
    assert_int_equal(mem[2 * SECTOR - 1], 0x00);
    /* refused calls are not counted: a cut lands on the k-th call that runs */
    setup(NULL);
    arm_cut(1, CM_FLASH_TEAR_DONE);
    if (setjmp(cut_jmp) == 0) {
        assert_int_equal(fl.port.erase(fl.port.ctx, 1), CM_FLASH_ERR_ERASE_ADDR);
        assert_int_equal(ops, 0);
        (void)fl.port.erase(fl.port.ctx, 0);
        fail_msg("power_off was not called");
    }
    assert_int_equal(ops, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_geometry, setup),
        cmocka_unit_test_setup(test_rules, setup),
        cmocka_unit_test_setup(test_cut_prog, setup),
        cmocka_unit_test_setup(test_cut_erase, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
