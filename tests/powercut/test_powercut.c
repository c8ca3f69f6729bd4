/*
 * The power-cut proof in the test suite: for every engine x write size
 * {1, 8} x image size {one sector, odd, largest that fits} x layout
 * {uniform, mixed sectors} x update kind, cut power at every flash operation
 * of a whole update, then run seeded random multi-cut sequences. Prints the
 * cut points tried per configuration; any failure prints its seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/imgbuild.h"
#include "airlock/crypto_openssl.h"
#include "powercut.h"

#define KIB 1024u

static tu_key_t key;
static uint64_t base_seed = 20261125;
static uint64_t total_tried;

/*
 * A test device. uniform: one flash of 40 x 4 KiB sectors holding every
 * area. mixed: an internal flash of mixed sectors (4x4K, 1x16K, 3x32K, like
 * an STM32F4 bank in small) with the primary on 4K/4K/16K/32K sectors, and
 * an external flash of 8 KiB sectors holding the secondary and a scratch.
 */
struct device {
    airlock_sim_flash_t *sim[2];
    pc_scenario_t sc;
    const char *name;
};

static void make_device(struct device *d, int mixed, uint32_t write_size)
{
    static const airlock_sector_run_t uniform_runs[] = {{40, 4 * KIB}};
    static const airlock_sector_run_t mixed_runs[] = {{4, 4 * KIB}, {1, 16 * KIB}, {3, 32 * KIB}};
    static const airlock_sector_run_t ext_runs[] = {{16, 8 * KIB}};
    airlock_sim_flash_geometry_t geo = {0, write_size, 0xff, mixed ? mixed_runs : uniform_runs,
                                        mixed ? 3u : 1u};
    memset(d, 0, sizeof(*d));
    assert_int_equal(airlock_sim_flash_create(&geo, &d->sim[0]), 0);
    const airlock_flash_t *fl = airlock_sim_flash_port(d->sim[0]);
    airlock_layout_t *l = &d->sc.layout;
    d->sc.sims[0] = d->sim[0];
    d->sc.nsims = 1;
    l->area[AIRLOCK_AREA_BOOTLOADER] = (airlock_area_t){fl, 0, 8 * KIB};
    if (mixed) {
        airlock_sim_flash_geometry_t ext = {0, write_size, 0xff, ext_runs, 1};
        assert_int_equal(airlock_sim_flash_create(&ext, &d->sim[1]), 0);
        d->sc.sims[1] = d->sim[1];
        d->sc.nsims = 2;
        d->name = "mixed";
        l->area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){fl, 8 * KIB, 56 * KIB};
        l->area[AIRLOCK_AREA_STATUS] = (airlock_area_t){fl, 64 * KIB, 64 * KIB};
        l->area[AIRLOCK_AREA_SECONDARY] =
            (airlock_area_t){airlock_sim_flash_port(d->sim[1]), 0, 96 * KIB};
        l->area[AIRLOCK_AREA_SCRATCH] =
            (airlock_area_t){airlock_sim_flash_port(d->sim[1]), 96 * KIB, 32 * KIB};
    } else {
        d->name = "uniform";
        l->area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){fl, 8 * KIB, 64 * KIB};
        l->area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){fl, 72 * KIB, 64 * KIB};
        l->area[AIRLOCK_AREA_STATUS] = (airlock_area_t){fl, 136 * KIB, 8 * KIB};
        l->area[AIRLOCK_AREA_SCRATCH] = (airlock_area_t){fl, 144 * KIB, 4 * KIB};
    }
    d->sc.crypto = &airlock_crypto_openssl;
    d->sc.keys = &key.pub;
    d->sc.nkeys = 1;
    assert_int_equal(airlock_layout_check(l, NULL), 0);
    assert_int_equal(pc_init(&d->sc), 0);
}

static void free_device(struct device *d)
{
    pc_free(&d->sc);
    airlock_sim_flash_close(d->sim[0]);
    airlock_sim_flash_close(d->sim[1]);
}

/* Largest image both slots take with this engine and layout; 0: refused. */
static uint32_t room(struct device *d)
{
    uint32_t at, max_len;
    int rc = pc_stage_limits(&d->sc, &at, &max_len);
    if (rc == AIRLOCK_ERR_LAYOUT) {
        return 0;
    }
    assert_int_equal(rc, 0);
    return max_len;
}

struct images {
    uint8_t *old_img, *new_img;
    size_t old_len, new_len;
};

/* Old v1.0.0 and new v1.1.0 with total length close to len. */
static void make_images(struct images *im, uint32_t len, const airlock_engine_t *engine)
{
    tu_image_spec_t s = {{1, 0, 0, 0}, 0, 32, 1, 1, 1, &key,
                         engine == &airlock_engine_ram_load ? 0x20000000u : 0};
    uint32_t overhead = (uint32_t)tu_image_len(&s);
    assert_true(len > overhead + 16);
    s.payload_len = len - overhead;
    im->old_img = tu_image_build(&s, &im->old_len);
    s.version.minor = 1;
    s.seed = 2;
    s.sec_cnt = 2;
    im->new_img = tu_image_build(&s, &im->new_len);
    assert_non_null(im->old_img);
    assert_non_null(im->new_img);
}

static void free_images(struct images *im)
{
    free(im->old_img);
    free(im->new_img);
}

static void report(const char *what, const pc_report_t *rep)
{
    print_message("  %-58s %5llu ops, %6llu cut runs, %6llu passed, %llu failed\n", what,
                  (unsigned long long)rep->uncut_ops, (unsigned long long)rep->tried,
                  (unsigned long long)rep->passed, (unsigned long long)rep->failed);
    total_tried += rep->tried;
    if (rep->failed) {
        print_message("  FIRST FAILURE (seed %llu, cut at op %llu): %s\n",
                      (unsigned long long)rep->first_failed_seed,
                      (unsigned long long)rep->first_failed_cut, rep->first_failure);
    }
}

/* Every cut point of every configuration of one engine. */
static void prove_engine(const airlock_engine_t *engine)
{
    static const uint32_t write_sizes[] = {1, 8};
    for (int mixed = 0; mixed <= 1; mixed++) {
        for (size_t w = 0; w < 2; w++) {
            struct device d;
            make_device(&d, mixed, write_sizes[w]);
            d.sc.engine = engine;
            if (room(&d) == 0) {
                print_message("  %-58s skipped: the engine refuses this layout\n", engine->name);
                free_device(&d);
                continue;
            }
            uint32_t sizes[3] = {4 * KIB - 64, 10007 + 512 * (uint32_t)mixed, room(&d)};
            for (int si = 0; si < 3; si++) {
                struct images im;
                make_images(&im, sizes[si] - 80, engine);
                d.sc.engine = engine;
                d.sc.old_img = im.old_img;
                d.sc.old_len = im.old_len;
                d.sc.new_img = im.new_img;
                d.sc.new_len = im.new_len;
                for (int kind = 0; kind < 3; kind++) {
                    char what[128];
                    pc_report_t rep;
                    d.sc.permanent = kind == 0;
                    d.sc.confirm = kind == 1;
                    snprintf(what, sizeof(what), "%s %s w%u %zu B %s", engine->name, d.name,
                             write_sizes[w], im.new_len,
                             kind == 0 ? "perm" : kind == 1 ? "test+confirm" : "test, no confirm");
                    assert_int_equal(pc_prove_single(&d.sc, base_seed, &rep), 0);
                    report(what, &rep);
                    assert_int_equal(rep.failed, 0);
                    assert_true(rep.uncut_ops > 0);
                }
                free_images(&im);
            }
            free_device(&d);
        }
    }
}

static void test_overwrite_every_cut(void **state)
{
    (void)state;
    prove_engine(&airlock_engine_overwrite);
}

static void test_swap_2n_every_cut(void **state)
{
    (void)state;
    prove_engine(&airlock_engine_swap_2n);
}

/* The harness must catch a broken engine: one that forgets to erase. */
static int broken_install(airlock_boot_t *b, uint32_t image_len, int swap_type)
{
    (void)b;
    (void)image_len;
    (void)swap_type;
    return 0; /* claims success, copies nothing */
}

static int ok_check(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    (void)b;
    (void)det;
    return 0;
}

static void test_harness_catches_broken_engine(void **state)
{
    (void)state;
    static const airlock_engine_t broken = {
        .name = "broken",
        .check = ok_check,
        .install = broken_install,
    };
    struct device d;
    struct images im;
    pc_run_t run;
    make_device(&d, 0, 8);
    make_images(&im, 9000, &airlock_engine_overwrite);
    d.sc.engine = &broken;
    d.sc.old_img = im.old_img;
    d.sc.old_len = im.old_len;
    d.sc.new_img = im.new_img;
    d.sc.new_len = im.new_len;
    d.sc.permanent = true;
    assert_int_equal(pc_run(&d.sc, NULL, 0, 1, &run), 0);
    assert_false(run.ok);
    print_message("  broken engine caught: %s\n", run.why);
    free_images(&im);
    free_device(&d);
}

/* Seeded random multi-cut sequences, cuts landing in recovery too. */
static void random_multicut(const airlock_engine_t *engine, uint64_t runs)
{
    struct device d;
    struct images im;
    pc_report_t rep;
    uint64_t per = runs / 4 + 1, done = 0;
    for (int cfg = 0; cfg < 4; cfg++) {
        /* engines that refuse the mixed layout run these on the uniform one */
        make_device(&d, cfg & 1, cfg & 2 ? 8 : 1);
        d.sc.engine = engine;
        if (room(&d) == 0) {
            free_device(&d);
            make_device(&d, 0, cfg & 2 ? 8 : 1);
            d.sc.engine = engine;
        }
        make_images(&im, room(&d) - 80 - (uint32_t)cfg * 1000, engine);
        d.sc.old_img = im.old_img;
        d.sc.old_len = im.old_len;
        d.sc.new_img = im.new_img;
        d.sc.new_len = im.new_len;
        /* 0: trial not confirmed; 1, 2: confirmed, 1 or 3 trials; 3: permanent */
        d.sc.permanent = cfg == 3;
        d.sc.confirm = cfg == 1 || cfg == 2;
        d.sc.max_trials = cfg == 2 ? 3 : 1;
        char what[96];
        snprintf(what, sizeof(what), "%s random 1-4 cuts %s w%d %s", engine->name, d.name,
                 cfg & 2 ? 8 : 1,
                 cfg == 3   ? "perm"
                 : cfg == 2 ? "test+confirm, 3 trials"
                 : cfg == 1 ? "test+confirm"
                            : "test, no confirm");
        assert_int_equal(pc_prove_random(&d.sc, per, 4, base_seed * 7 + (uint64_t)cfg, &rep), 0);
        report(what, &rep);
        done += rep.tried;
        assert_int_equal(rep.failed, 0);
        free_images(&im);
        free_device(&d);
    }
    assert_true(done >= runs);
}

/*
 * Random multi-cut runs per engine: 10,000 in all by default, shared
 * between the engines (AIRLOCK_POWERCUT_RUNS sets the total).
 */
static uint64_t random_runs(void)
{
    const char *env = getenv("AIRLOCK_POWERCUT_RUNS");
    uint64_t total = env ? strtoull(env, NULL, 10) : 10000;
    uint64_t engines = 0;
    while (airlock_engines[engines]) {
        engines++;
    }
    return (total + engines - 1) / engines;
}

static void test_overwrite_random_multicut(void **state)
{
    (void)state;
    random_multicut(&airlock_engine_overwrite, random_runs());
}

static void test_swap_2n_random_multicut(void **state)
{
    (void)state;
    random_multicut(&airlock_engine_swap_2n, random_runs());
}

static void test_swap_scratch_every_cut(void **state)
{
    (void)state;
    prove_engine(&airlock_engine_swap_scratch);
}

static void test_swap_move_every_cut(void **state)
{
    (void)state;
    prove_engine(&airlock_engine_swap_move);
}

static void test_swap_scratch_random_multicut(void **state)
{
    (void)state;
    random_multicut(&airlock_engine_swap_scratch, random_runs());
}

static void test_swap_move_random_multicut(void **state)
{
    (void)state;
    random_multicut(&airlock_engine_swap_move, random_runs());
}

static void test_direct_xip_every_cut(void **state)
{
    (void)state;
    prove_engine(&airlock_engine_direct_xip);
}

static void test_direct_xip_random_multicut(void **state)
{
    (void)state;
    random_multicut(&airlock_engine_direct_xip, random_runs());
}

static void test_ram_load_every_cut(void **state)
{
    (void)state;
    prove_engine(&airlock_engine_ram_load);
}

static void test_ram_load_random_multicut(void **state)
{
    (void)state;
    random_multicut(&airlock_engine_ram_load, random_runs());
}

static int setup(void **state)
{
    (void)state;
    const char *s = getenv("AIRLOCK_POWERCUT_SEED");
    if (s) {
        base_seed = strtoull(s, NULL, 10);
    }
    print_message("power-cut proof, seed %llu (AIRLOCK_POWERCUT_SEED to repeat)\n",
                  (unsigned long long)base_seed);
    /* Ed25519 signs deterministically: every image, so every run, repeats. */
    return tu_key_load(&key, AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ed25519.pem");
}

static int teardown(void **state)
{
    (void)state;
    print_message("power-cut proof: %llu cut runs in total\n", (unsigned long long)total_tried);
    tu_key_free(&key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_harness_catches_broken_engine),
        cmocka_unit_test(test_overwrite_every_cut),
        cmocka_unit_test(test_overwrite_random_multicut),
        cmocka_unit_test(test_swap_2n_every_cut),
        cmocka_unit_test(test_swap_2n_random_multicut),
        cmocka_unit_test(test_swap_scratch_every_cut),
        cmocka_unit_test(test_swap_scratch_random_multicut),
        cmocka_unit_test(test_swap_move_every_cut),
        cmocka_unit_test(test_swap_move_random_multicut),
        cmocka_unit_test(test_direct_xip_every_cut),
        cmocka_unit_test(test_direct_xip_random_multicut),
        cmocka_unit_test(test_ram_load_every_cut),
        cmocka_unit_test(test_ram_load_random_multicut),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
