/*
 * Unit tests for the settings area of layout files (tools/layout_file.c):
 * parsed beside core's areas, checked for overlap and for two sector-aligned
 * halves (the settings store keeps two copies), listed by the area helpers,
 * and present in the built-in sim-device layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "layout_file.h"

#define HEAD                                                                                       \
    "flash f size=64K sectors=16x4K write=4\n"                                                     \
    "primary f 0 16K\n"                                                                            \
    "secondary f 16K 16K\n"

static int parse(layout_file_t *lf, const char *text, layout_diag_t *err)
{
    return layout_file_parse(lf, "t.layout", text, strlen(text), err);
}

static void test_settings_parsed(void **state)
{
    (void)state;
    layout_file_t *lf = calloc(1, sizeof(*lf));
    layout_diag_t err;
    assert_int_equal(parse(lf, HEAD "settings f 32K 8K\n", &err), 0);
    assert_non_null(lf->settings.flash);
    assert_ptr_equal(lf->settings.flash, &lf->dev[0].flash);
    assert_int_equal(lf->settings.off, 32 * 1024);
    assert_int_equal(lf->settings.size, 8 * 1024);
    assert_int_equal(lf->area_line[LAYOUT_AREA_SETTINGS], 4);
    assert_ptr_equal(layout_area(lf, LAYOUT_AREA_SETTINGS), &lf->settings);
    assert_string_equal(layout_area_name(LAYOUT_AREA_SETTINGS), "settings");
    airlock_sector_run_t run;
    assert_int_equal(layout_area_sectors(lf, LAYOUT_AREA_SETTINGS, &run, 1), 1);
    assert_int_equal(run.count, 2);
    assert_int_equal(run.size, 4096);
    /* core's layout does not know it */
    for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
        assert_true(lf->layout.area[id].flash == NULL || lf->layout.area[id].off != 32 * 1024);
    }
    /* absent is fine */
    assert_int_equal(parse(lf, HEAD, &err), 0);
    assert_null(lf->settings.flash);
    free(lf);
}

static void test_settings_errors(void **state)
{
    (void)state;
    layout_file_t *lf = calloc(1, sizeof(*lf));
    layout_diag_t err;
    /* one sector cannot hold two copies */
    assert_int_equal(parse(lf, HEAD "settings f 32K 4K\n", &err), LAYOUT_E_ALIGN);
    assert_int_equal(err.line, 4);
    assert_non_null(strstr(err.msg, "two copies"));
    /* three sectors: the midpoint is inside a sector */
    assert_int_equal(parse(lf, HEAD "settings f 32K 12K\n", &err), LAYOUT_E_ALIGN);
    /* overlaps are reported both ways */
    assert_int_equal(parse(lf, HEAD "settings f 8K 8K\n", &err), LAYOUT_E_OVERLAP);
    assert_non_null(strstr(err.msg, "primary"));
    assert_int_equal(parse(lf,
                           "flash f size=64K sectors=16x4K write=4\n"
                           "settings f 0 8K\n"
                           "primary f 4K 16K\n"
                           "secondary f 32K 16K\n",
                           &err),
                     LAYOUT_E_OVERLAP);
    assert_non_null(strstr(err.msg, "settings"));
    assert_int_equal(parse(lf, HEAD "settings f 32K 8K\nsettings f 48K 8K\n", &err),
                     LAYOUT_E_DUPLICATE);
    /* a near miss names it */
    assert_int_equal(parse(lf, HEAD "Settings f 32K 8K\n", &err), LAYOUT_E_KEYWORD);
    assert_non_null(strstr(err.msg, "did you mean 'settings'"));
    free(lf);
}

static void test_sim_device_builtin(void **state)
{
    (void)state;
    layout_file_t *lf = calloc(1, sizeof(*lf));
    layout_diag_t err;
    assert_int_equal(layout_file_open(lf, "sim-device", &err), 0);
    assert_int_equal(lf->nwarn, 0);
    assert_non_null(lf->settings.flash);
    assert_int_equal(lf->settings.size, 64 * 1024);
    assert_non_null(lf->layout.area[AIRLOCK_AREA_BOOTLOADER].flash);
    assert_non_null(lf->layout.area[AIRLOCK_AREA_SCRATCH].flash);
    assert_non_null(lf->layout.area[AIRLOCK_AREA_STATUS].flash);
    /* slots of at most 128 sectors: images need no -M */
    airlock_sector_run_t run;
    assert_int_equal(layout_area_sectors(lf, AIRLOCK_AREA_PRIMARY, &run, 1), 1);
    assert_true(run.count <= 128);
    assert_true(lf->layout.area[AIRLOCK_AREA_PRIMARY].size >= 4u * 1024 * 1024);
    free(lf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_parsed),
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_sim_device_builtin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
