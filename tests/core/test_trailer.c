/*
 * Unit tests for core/trailer.c: MCUboot trailer offsets and magic for every
 * max alignment, trailer writes on sim flash for every write size (read back
 * identically to what `imgtool sign --pad --confirm` writes), the trial-boot
 * counter with torn records, and geometry errors. No test may break a NOR rule.
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
#include "airlock/trailer.h"

#define KIB 1024u
#define SLOT_OFF (4 * KIB)
#define SLOT_SIZE (64 * KIB)

static const uint8_t classic_magic[16] = {0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f,
                                          0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80};
static const uint8_t alt_tail[14] = {0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d,
                                     0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a};

static const uint32_t write_sizes[] = {1, 2, 4, 8, 16, 32};
#define NWS (sizeof(write_sizes) / sizeof(write_sizes[0]))

/* ---- helpers ------------------------------------------------------------ */

/* A device: 4 KiB sectors, a 64 KiB slot at 4 KiB, 4 KiB after it. */
struct dev {
    airlock_sim_flash_t *sim;
    airlock_area_t slot;
    airlock_trailer_geom_t g;
    uint8_t ev;
};

static const airlock_sector_run_t runs[] = {{18, 4 * KIB}};

static void dev_open(struct dev *d, uint32_t ws, uint8_t ev)
{
    airlock_sim_flash_geometry_t geo = {0, ws, ev, runs, 1};
    memset(d, 0, sizeof(*d));
    assert_int_equal(airlock_sim_flash_create(&geo, &d->sim), 0);
    d->slot = (airlock_area_t){airlock_sim_flash_port(d->sim), SLOT_OFF, SLOT_SIZE};
    d->g.max_align = ws > 8 ? ws : 8;
    d->g.write_size = ws;
    d->g.max_sectors = AIRLOCK_TRAILER_DEFAULT_MAX_SECTORS;
    d->ev = ev;
}

static void dev_close(struct dev *d)
{
    if (airlock_sim_flash_violations(d->sim, 0) != 0) {
        print_message("NOR violation: %s\n", airlock_sim_flash_violation_str(d->sim));
    }
    assert_int_equal(airlock_sim_flash_violations(d->sim, 0), 0);
    airlock_sim_flash_close(d->sim);
    d->sim = NULL;
}

/* Bytes of the slot (offset from the slot's start). */
static const uint8_t *slot_bytes(struct dev *d, uint32_t off)
{
    return airlock_sim_flash_data(d->sim) + SLOT_OFF + off;
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

/* Is any write unit in the slot's [off, off + len) programmed? */
static bool any_programmed(struct dev *d, uint32_t off, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        if (airlock_sim_flash_programmed(d->sim, SLOT_OFF + off + i)) {
            return true;
        }
    }
    return false;
}

struct mem {
    const uint8_t *p;
    uint32_t size;
    int fail;
};

static int mem_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    struct mem *m = ctx;
    if (m->fail) {
        return -1;
    }
    assert_true((uint64_t)off + len <= m->size);
    memcpy(buf, m->p + off, len);
    return 0;
}

static airlock_source_t mem_source(struct mem *m, const uint8_t *p, uint32_t size)
{
    m->p = p;
    m->size = size;
    m->fail = 0;
    airlock_source_t s = {mem_read, m, size};
    return s;
}

static uint8_t *load_vector(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/vectors/imgtool/%s", AIRLOCK_SHARED_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s", path);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ---- layout, size, magic ------------------------------------------------ */

static void test_layout_offsets(void **state)
{
    (void)state;
    airlock_trailer_layout_t lay;
    const uint32_t s = 0x10000;
    /* max_align 8: MCUboot's default, fixed offsets from the end */
    assert_int_equal(airlock_trailer_layout(s, 8, &lay), 0);
    assert_int_equal(lay.magic, s - 16);
    assert_int_equal(lay.image_ok, s - 24);
    assert_int_equal(lay.copy_done, s - 32);
    assert_int_equal(lay.swap_info, s - 40);
    assert_int_equal(lay.swap_size, s - 48);
    /* 16: fields spaced by 16, magic area 16 */
    assert_int_equal(airlock_trailer_layout(s, 16, &lay), 0);
    assert_int_equal(lay.magic, s - 16);
    assert_int_equal(lay.image_ok, s - 32);
    assert_int_equal(lay.copy_done, s - 48);
    assert_int_equal(lay.swap_info, s - 64);
    assert_int_equal(lay.swap_size, s - 80);
    /* 32: magic area padded to 32, the magic still ends the slot */
    assert_int_equal(airlock_trailer_layout(s, 32, &lay), 0);
    assert_int_equal(lay.magic, s - 16);
    assert_int_equal(lay.image_ok, s - 64);
    assert_int_equal(lay.copy_done, s - 96);
    assert_int_equal(lay.swap_info, s - 128);
    assert_int_equal(lay.swap_size, s - 160);

    /* other alignments are not imgtool --max-align values */
    static const uint32_t bad[] = {0, 1, 4, 12, 24, 64, 128};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(airlock_trailer_layout(s, bad[i], &lay), AIRLOCK_ERR_INVAL);
    }
    /* the smallest slot that holds the fields */
    assert_int_equal(airlock_trailer_layout(48, 8, &lay), 0);
    assert_int_equal(lay.swap_size, 0);
    assert_int_equal(airlock_trailer_layout(47, 8, &lay), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_layout(80, 16, &lay), 0);
    assert_int_equal(airlock_trailer_layout(79, 16, &lay), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_layout(160, 32, &lay), 0);
    assert_int_equal(lay.swap_size, 0);
    assert_int_equal(airlock_trailer_layout(159, 32, &lay), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_layout(0, 8, &lay), AIRLOCK_ERR_INVAL);
}

static void test_trailer_size(void **state)
{
    (void)state;
    /* imgtool: max_sectors * 3 * align + 4 * max_align + align_up(16, max_align) */
    assert_int_equal(airlock_trailer_size(8, 8, 128, false), 128 * 3 * 8 + 32 + 16);
    assert_int_equal(airlock_trailer_size(4, 8, 128, false), 128 * 3 * 4 + 32 + 16);
    assert_int_equal(airlock_trailer_size(1, 8, 128, false), 128 * 3 + 32 + 16);
    assert_int_equal(airlock_trailer_size(8, 8, 0, false), 48);
    assert_int_equal(airlock_trailer_size(16, 16, 128, false), 128 * 3 * 16 + 64 + 16);
    assert_int_equal(airlock_trailer_size(32, 32, 128, false), 128 * 3 * 32 + 128 + 32);
    assert_int_equal(airlock_trailer_size(8, 8, 64, false), 64 * 3 * 8 + 48);
    /* overwrite-only: image_ok, copy_done and the magic */
    assert_int_equal(airlock_trailer_size(8, 8, 128, true), 2 * 8 + 16);
    assert_int_equal(airlock_trailer_size(1, 8, 128, true), 2 * 8 + 16);
    assert_int_equal(airlock_trailer_size(16, 16, 128, true), 2 * 16 + 16);
    assert_int_equal(airlock_trailer_size(32, 32, 128, true), 2 * 32 + 32);
}

static void test_magic_variants(void **state)
{
    (void)state;
    uint8_t m[AIRLOCK_TRAILER_MAGIC_SIZE];
    airlock_trailer_magic(8, m);
    assert_memory_equal(m, classic_magic, 16);
    airlock_trailer_magic(16, m);
    assert_int_equal(m[0], 0x10);
    assert_int_equal(m[1], 0x00);
    assert_memory_equal(m + 2, alt_tail, 14);
    airlock_trailer_magic(32, m);
    assert_int_equal(m[0], 0x20);
    assert_int_equal(m[1], 0x00);
    assert_memory_equal(m + 2, alt_tail, 14);
}

/* airlock_trailer_read on a raw buffer: magic states and auto-detection. */
static void test_read_raw(void **state)
{
    (void)state;
    static uint8_t slot[4096];
    struct mem m;
    airlock_source_t src = mem_source(&m, slot, sizeof(slot));
    airlock_trailer_t t;

    memset(slot, 0xff, sizeof(slot));
    assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_UNSET);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);
    assert_int_equal(t.copy_done, AIRLOCK_FIELD_UNSET);
    assert_int_equal(t.swap_type, 0);
    assert_false(t.swap_size_set);
    assert_int_equal(t.max_align, 8);

    /* alternative magic for 32, fields at their 32-spaced offsets */
    airlock_trailer_magic(32, slot + 4096 - 16);
    slot[4096 - 64] = 0x01;  /* image_ok */
    slot[4096 - 96] = 0x07;  /* copy_done: neither erased nor 1 */
    slot[4096 - 128] = 0x23; /* swap_info: image 2, PERM */
    slot[4096 - 160] = 0x00;
    slot[4096 - 159] = 0x10;
    slot[4096 - 158] = 0x00;
    slot[4096 - 157] = 0x00;
    assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &t), 0);
    assert_int_equal(t.max_align, 32);
    assert_int_equal(t.magic, AIRLOCK_FIELD_SET);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_SET);
    assert_int_equal(t.copy_done, AIRLOCK_FIELD_BAD);
    assert_int_equal(t.swap_type, AIRLOCK_SWAP_PERM);
    assert_int_equal(t.image_num, 2);
    assert_true(t.swap_size_set);
    assert_int_equal(t.swap_size, 0x1000);
    /* read as max_align 8, the same bytes are not a good magic */
    assert_int_equal(airlock_trailer_read(&src, 8, 0xff, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_BAD);
    /* read as 16, neither (the magic encodes 32) */
    assert_int_equal(airlock_trailer_read(&src, 16, 0xff, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_BAD);

    /* a corrupted alternative tail is bad, not unset */
    memset(slot, 0xff, sizeof(slot));
    airlock_trailer_magic(16, slot + 4096 - 16);
    assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &t), 0);
    assert_int_equal(t.max_align, 16);
    assert_int_equal(t.magic, AIRLOCK_FIELD_SET);
    slot[4096 - 1] ^= 0x01;
    assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_BAD);

    /* erased value 0x00 parts */
    memset(slot, 0x00, sizeof(slot));
    memcpy(slot + 4096 - 16, classic_magic, 16);
    assert_int_equal(airlock_trailer_read(&src, 0, 0x00, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_SET);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);
    assert_int_equal(t.copy_done, AIRLOCK_FIELD_UNSET);
    assert_false(t.swap_size_set);
    slot[4096 - 24] = 0xff;
    assert_int_equal(airlock_trailer_read(&src, 0, 0x00, &t), 0);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_BAD);

    /* errors */
    src.size = 15;
    assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &t), AIRLOCK_ERR_INVAL);
    src.size = 40; /* holds a magic but not the fields */
    assert_int_equal(airlock_trailer_read(&src, 8, 0xff, &t), AIRLOCK_ERR_INVAL);
    src.size = sizeof(slot);
    assert_int_equal(airlock_trailer_read(&src, 12, 0xff, &t), AIRLOCK_ERR_INVAL);
    m.fail = 1;
    assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &t), AIRLOCK_ERR_IO);
    assert_int_equal(airlock_trailer_read(NULL, 0, 0xff, &t), AIRLOCK_ERR_INVAL);
}

/* ---- writing on sim flash ------------------------------------------------ */

static void check_flag_unit(struct dev *d, uint32_t off, uint8_t value)
{
    uint32_t ws = d->g.write_size;
    const uint8_t *p = slot_bytes(d, off);
    assert_int_equal(p[0], value);
    assert_true(all_eq(p + 1, ws - 1, d->ev));
    assert_true(airlock_sim_flash_programmed(d->sim, SLOT_OFF + off));
    /* the rest of the field's max_align padding is untouched */
    if (ws < d->g.max_align) {
        assert_true(all_eq(p + ws, d->g.max_align - ws, d->ev));
        assert_false(any_programmed(d, off + ws, d->g.max_align - ws));
    }
}

static void test_write_every_write_size(void **state)
{
    (void)state;
    /* every write size, with its own max_align and with the larger ones */
    for (size_t w = 0; w < NWS * 3; w++) {
        static const uint32_t aligns[3] = {0, 16, 32};
        struct dev d;
        airlock_trailer_t t;
        airlock_trailer_layout_t lay;
        if (aligns[w / NWS] && aligns[w / NWS] <= write_sizes[w % NWS]) {
            continue;
        }
        dev_open(&d, write_sizes[w % NWS], 0xff);
        if (aligns[w / NWS]) {
            d.g.max_align = aligns[w / NWS];
        }
        uint32_t ws = d.g.write_size, ma = d.g.max_align;
        assert_int_equal(airlock_trailer_layout(SLOT_SIZE, ma, &lay), 0);

        assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &t), 0);
        assert_int_equal(t.magic, AIRLOCK_FIELD_UNSET);
        assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);

        assert_int_equal(airlock_trailer_write_magic(&d.slot, &d.g), 0);
        uint8_t want[16];
        airlock_trailer_magic(ma, want);
        assert_memory_equal(slot_bytes(&d, SLOT_SIZE - 16), want, 16);
        assert_true(airlock_sim_flash_programmed(d.sim, SLOT_OFF + SLOT_SIZE - 16));
        if (ws == 32) {
            /* one 32-byte unit: 16 erased bytes, then the magic */
            assert_true(all_eq(slot_bytes(&d, SLOT_SIZE - 32), 16, 0xff));
            assert_true(airlock_sim_flash_programmed(d.sim, SLOT_OFF + SLOT_SIZE - 32));
        } else {
            /* nothing before the magic is touched */
            assert_false(any_programmed(&d, lay.image_ok, SLOT_SIZE - 16 - lay.image_ok));
        }
        assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &t), 0);
        assert_int_equal(t.magic, AIRLOCK_FIELD_SET);
        assert_int_equal(t.max_align, ma);
        assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);
        assert_int_equal(t.copy_done, AIRLOCK_FIELD_UNSET);
        assert_int_equal(t.swap_type, 0);

        assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, AIRLOCK_FLAG_IMAGE_OK, 0x01), 0);
        check_flag_unit(&d, lay.image_ok, 0x01);
        assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, AIRLOCK_FLAG_COPY_DONE, 0x01),
                         0);
        check_flag_unit(&d, lay.copy_done, 0x01);
        assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, AIRLOCK_FLAG_SWAP_INFO, 0x12),
                         0);
        check_flag_unit(&d, lay.swap_info, 0x12);
        /* swap_size and everything below stay erased */
        assert_true(all_eq(slot_bytes(&d, 0), lay.swap_info, 0xff));
        assert_false(any_programmed(&d, 0, lay.swap_info));

        assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &t), 0);
        assert_int_equal(t.magic, AIRLOCK_FIELD_SET);
        assert_int_equal(t.image_ok, AIRLOCK_FIELD_SET);
        assert_int_equal(t.copy_done, AIRLOCK_FIELD_SET);
        assert_int_equal(t.swap_type, AIRLOCK_SWAP_TEST);
        assert_int_equal(t.image_num, 1);
        assert_false(t.swap_size_set);

        /* a reader that only has the bytes recognises the alignment itself */
        struct mem m;
        airlock_source_t src = mem_source(&m, slot_bytes(&d, 0), SLOT_SIZE);
        airlock_trailer_t t2;
        assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &t2), 0);
        assert_memory_equal(&t, &t2, sizeof(t));
        dev_close(&d);
    }
}

/* Same on a part whose erased value is 0x00. */
static void test_write_erased_zero(void **state)
{
    (void)state;
    struct dev d;
    airlock_trailer_t t;
    airlock_trailer_layout_t lay;
    dev_open(&d, 4, 0x00);
    assert_int_equal(airlock_trailer_layout(SLOT_SIZE, 8, &lay), 0);
    assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_UNSET);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);
    assert_int_equal(airlock_trailer_write_magic(&d.slot, &d.g), 0);
    assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, AIRLOCK_FLAG_COPY_DONE, 0x01), 0);
    check_flag_unit(&d, lay.copy_done, 0x01);
    assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_SET);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);
    assert_int_equal(t.copy_done, AIRLOCK_FIELD_SET);
    /* trial records move every bit from 0x00 */
    uint32_t used = 99;
    assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), 0);
    assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
    assert_int_equal(used, 1);
    assert_true(all_eq(slot_bytes(&d, airlock_trailer_start(&d.slot, &d.g)), 4, 0xff));
    dev_close(&d);
}

/*
 * What the bootloader writes for a PERM request is byte for byte what
 * `imgtool sign --pad --confirm` (max-align 8) puts at the end of the slot.
 */
static void test_matches_imgtool_pad_confirm(void **state)
{
    (void)state;
    size_t vlen;
    uint8_t *vec = load_vector("hash-only-pad-confirm.signed.bin", &vlen);
    assert_int_equal(vlen, SLOT_SIZE);
    for (size_t w = 0; w < NWS && write_sizes[w] <= 8; w++) {
        struct dev d;
        dev_open(&d, write_sizes[w], 0xff);
        assert_int_equal(d.g.max_align, 8);
        assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, AIRLOCK_FLAG_IMAGE_OK, 0x01), 0);
        assert_int_equal(airlock_trailer_write_magic(&d.slot, &d.g), 0);
        assert_memory_equal(slot_bytes(&d, SLOT_SIZE - 64), vec + vlen - 64, 64);
        /* the whole trailer imgtool reserved, too */
        uint32_t tsz = airlock_trailer_size(write_sizes[w], 8, 128, false);
        assert_memory_equal(slot_bytes(&d, SLOT_SIZE - tsz), vec + vlen - tsz, tsz);
        /* and both are read the same */
        struct mem m;
        airlock_source_t src = mem_source(&m, vec, (uint32_t)vlen);
        airlock_trailer_t tv, tf;
        assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &tv), 0);
        assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &tf), 0);
        assert_memory_equal(&tv, &tf, sizeof(tv));
        assert_int_equal(tv.magic, AIRLOCK_FIELD_SET);
        assert_int_equal(tv.image_ok, AIRLOCK_FIELD_SET);
        assert_int_equal(tv.copy_done, AIRLOCK_FIELD_UNSET);
        assert_int_equal(tv.swap_type, 0);
        dev_close(&d);
    }
    free(vec);

    /* --pad --test: only the magic */
    vec = load_vector("ed25519-pad-test.signed.bin", &vlen);
    assert_int_equal(vlen, SLOT_SIZE);
    struct dev d;
    dev_open(&d, 8, 0xff);
    assert_int_equal(airlock_trailer_write_magic(&d.slot, &d.g), 0);
    assert_memory_equal(slot_bytes(&d, SLOT_SIZE - 64), vec + vlen - 64, 64);
    struct mem m;
    airlock_source_t src = mem_source(&m, vec, (uint32_t)vlen);
    airlock_trailer_t tv;
    assert_int_equal(airlock_trailer_read(&src, 0, 0xff, &tv), 0);
    assert_int_equal(tv.magic, AIRLOCK_FIELD_SET);
    assert_int_equal(tv.image_ok, AIRLOCK_FIELD_UNSET);
    dev_close(&d);
    free(vec);
}

/* ---- trial counter ------------------------------------------------------- */

static uint32_t fields_start(const struct dev *d)
{
    return SLOT_SIZE - airlock_trailer_size(d->g.write_size, d->g.max_align, 0, false);
}

static uint32_t status_start(const struct dev *d)
{
    return fields_start(d) - d->g.max_sectors * 3u * d->g.write_size;
}

static void test_trials_whole_records(void **state)
{
    (void)state;
    for (size_t w = 0; w < NWS; w++) {
        struct dev d;
        uint32_t used = 99;
        dev_open(&d, write_sizes[w], 0xff);
        uint32_t ws = d.g.write_size;
        uint32_t start = airlock_trailer_start(&d.slot, &d.g);
        /* just below the MCUboot status area */
        assert_int_equal(start + AIRLOCK_TRIAL_MAX * ws, status_start(&d));
        assert_int_equal(start, SLOT_SIZE - airlock_trailer_size(ws, d.g.max_align, 128, false) -
                                    AIRLOCK_TRIAL_MAX * ws);

        assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
        assert_int_equal(used, 0);
        for (uint32_t i = 1; i <= AIRLOCK_TRIAL_MAX; i++) {
            assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), 0);
            assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
            assert_int_equal(used, i);
            /* record i-1 is whole (every bit moved), the next one erased */
            assert_true(all_eq(slot_bytes(&d, start + (i - 1) * ws), ws, 0x00));
            if (i < AIRLOCK_TRIAL_MAX) {
                assert_true(all_eq(slot_bytes(&d, start + i * ws), ws, 0xff));
            }
        }
        assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), AIRLOCK_ERR_NOMEM);
        assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
        assert_int_equal(used, AIRLOCK_TRIAL_MAX);
        /* nothing below the records, nothing in the status area or fields */
        assert_false(any_programmed(&d, 0, start));
        assert_false(any_programmed(&d, start + AIRLOCK_TRIAL_MAX * ws,
                                    SLOT_SIZE - start - AIRLOCK_TRIAL_MAX * ws));
        /* MCUboot-shaped readers see an untouched trailer */
        airlock_trailer_t t;
        assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &t), 0);
        assert_int_equal(t.magic, AIRLOCK_FIELD_UNSET);
        assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);
        assert_int_equal(t.copy_done, AIRLOCK_FIELD_UNSET);
        assert_int_equal(t.swap_type, 0);
        assert_false(t.swap_size_set);
        dev_close(&d);
    }
}

/*
 * A trial record torn by a power cut: not a trial (the image never ran), but
 * its place is spent and never programmed again.
 */
static void test_trials_torn_record_by_cut(void **state)
{
    (void)state;
    static const int policies[] = {AIRLOCK_SIM_FLASH_TEAR_DRIFT, AIRLOCK_SIM_FLASH_TEAR_PREFIX,
                                   AIRLOCK_SIM_FLASH_TEAR_UNITS, AIRLOCK_SIM_FLASH_TEAR_ANY};
    for (size_t w = 0; w < NWS; w++) {
        for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
            uint32_t ws = write_sizes[w];
            bool seen_torn = false;
            for (uint64_t seed = 1; seed < 200 && !seen_torn; seed++) {
                struct dev d;
                uint32_t used;
                dev_open(&d, ws, 0xff);
                uint32_t start = airlock_trailer_start(&d.slot, &d.g);
                assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), 0);
                airlock_sim_flash_seed(d.sim, seed * 131 + ws);
                assert_int_equal(airlock_sim_flash_set_tear(d.sim, policies[p]), 0);
                airlock_sim_flash_cut_at(d.sim, 0);
                assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), AIRLOCK_ERR_IO);
                airlock_sim_flash_power_on(d.sim);
                const uint8_t *rec = slot_bytes(&d, start + ws);
                bool blank = all_eq(rec, ws, 0xff), whole = all_eq(rec, ws, 0x00);
                assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
                /* a record counts iff it is whole */
                assert_int_equal(used, whole ? 2u : 1u);
                /* the next trial goes to the next place that can take it */
                assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), 0);
                assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
                assert_int_equal(used, whole ? 3u : 2u);
                if (!blank && !whole) {
                    seen_torn = true;
                    /* the torn place was skipped, not programmed again */
                    assert_true(all_eq(slot_bytes(&d, start + 2 * ws), ws, 0x00));
                    /* 8 places, 1 spent by the tear: 7 trials at most */
                    uint32_t n = 2;
                    while (airlock_trailer_add_trial(&d.slot, &d.g) == 0) {
                        n++;
                    }
                    assert_int_equal(n, AIRLOCK_TRIAL_MAX - 1);
                    assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), AIRLOCK_ERR_NOMEM);
                    assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
                    assert_int_equal(used, AIRLOCK_TRIAL_MAX - 1);
                }
                dev_close(&d);
            }
            if (!seen_torn) {
                fail_msg("ws %u policy %s: no torn record in 200 seeds", ws,
                         airlock_sim_flash_tear_name(policies[p]));
            }
        }
    }
}

/* Torn records staged directly: all places spent means the trials are over. */
static void test_trials_all_places_spent(void **state)
{
    (void)state;
    for (size_t w = 0; w < NWS; w++) {
        struct dev d;
        uint32_t used;
        uint8_t torn[32];
        dev_open(&d, write_sizes[w], 0xff);
        uint32_t ws = d.g.write_size;
        uint32_t start = airlock_trailer_start(&d.slot, &d.g);
        memset(torn, 0x00, sizeof(torn));
        torn[ws - 1] = 0x7f; /* one bit short of whole */
        /* 3 whole trials, then 5 torn places */
        for (int i = 0; i < 3; i++) {
            assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), 0);
        }
        for (uint32_t i = 3; i < AIRLOCK_TRIAL_MAX; i++) {
            assert_int_equal(airlock_sim_flash_load(d.sim, SLOT_OFF + start + i * ws, torn, ws), 0);
        }
        assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
        assert_int_equal(used, 3);
        assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), AIRLOCK_ERR_NOMEM);
        dev_close(&d);

        /* every place torn: no trial was counted and none can be */
        dev_open(&d, write_sizes[w], 0xff);
        for (uint32_t i = 0; i < AIRLOCK_TRIAL_MAX; i++) {
            assert_int_equal(airlock_sim_flash_load(d.sim, SLOT_OFF + start + i * ws, torn, ws), 0);
        }
        assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
        assert_int_equal(used, 0);
        assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), AIRLOCK_ERR_NOMEM);
        dev_close(&d);

        /* a torn record in the middle: the one after it still counts */
        dev_open(&d, write_sizes[w], 0xff);
        assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), 0);
        assert_int_equal(airlock_sim_flash_load(d.sim, SLOT_OFF + start + ws, torn, ws), 0);
        assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), 0);
        assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), 0);
        assert_int_equal(used, 2);
        assert_true(all_eq(slot_bytes(&d, start + 2 * ws), ws, 0x00));
        dev_close(&d);
    }
}

/* ---- geometry errors ----------------------------------------------------- */

static void expect_all_inval(const airlock_area_t *slot, const airlock_trailer_geom_t *g)
{
    airlock_trailer_t t;
    uint32_t used;
    assert_int_equal(airlock_trailer_write_magic(slot, g), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_write_flag(slot, g, AIRLOCK_FLAG_IMAGE_OK, 1),
                     AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_trials(slot, g, &used), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_add_trial(slot, g), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_load(slot, g, &t), AIRLOCK_ERR_INVAL);
}

static void test_geometry_errors(void **state)
{
    (void)state;
    struct dev d;
    airlock_sim_flash_counts_t c;
    dev_open(&d, 8, 0xff);
    airlock_trailer_geom_t g = d.g;

    /* write size other than the device's */
    g.write_size = 4;
    expect_all_inval(&d.slot, &g);
    g.write_size = 16;
    g.max_align = 16;
    expect_all_inval(&d.slot, &g);
    /* max_align not 8/16/32, or below the write size */
    g = d.g;
    g.max_align = 4;
    expect_all_inval(&d.slot, &g);
    g.max_align = 64;
    expect_all_inval(&d.slot, &g);
    g.max_align = 0;
    expect_all_inval(&d.slot, &g);
    /* slot too small for fields + status area + trial records */
    g = d.g;
    airlock_area_t small = d.slot;
    small.size = 4 * KIB;
    g.max_sectors = 170; /* 170 * 24 + 48 + 64 = 4192 > 4096 */
    expect_all_inval(&small, &g);
    g.max_sectors = 165; /* 165 * 24 + 48 + 64 = 4072: fits */
    uint32_t used;
    assert_int_equal(airlock_trailer_trials(&small, &g, &used), 0);
    /* no device */
    airlock_area_t none = d.slot;
    none.flash = NULL;
    expect_all_inval(&none, &d.g);
    assert_int_equal(airlock_trailer_write_magic(NULL, &d.g), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_write_magic(&d.slot, NULL), AIRLOCK_ERR_INVAL);
    /* no such flag */
    assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, 3, 1), AIRLOCK_ERR_INVAL);
    assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, -1, 1), AIRLOCK_ERR_INVAL);

    /* none of it touched flash */
    airlock_sim_flash_counts(d.sim, &c);
    assert_int_equal(c.prog_calls, 0);
    assert_int_equal(c.erases, 0);
    dev_close(&d);

    /* 32-byte writes need max_align 32 and room for a 12 KiB status area */
    dev_open(&d, 32, 0xff);
    small = d.slot;
    small.size = 12 * KIB;
    expect_all_inval(&small, &d.g);
    g = d.g;
    g.max_align = 16;
    expect_all_inval(&d.slot, &g);
    dev_close(&d);
}

/* A power cut while reading the trailer is an I/O error, not a verdict. */
static void test_io_errors(void **state)
{
    (void)state;
    struct dev d;
    airlock_trailer_t t;
    uint32_t used;
    dev_open(&d, 8, 0xff);
    airlock_sim_flash_power_off(d.sim);
    assert_int_equal(airlock_trailer_load(&d.slot, &d.g, &t), AIRLOCK_ERR_IO);
    assert_int_equal(airlock_trailer_trials(&d.slot, &d.g, &used), AIRLOCK_ERR_IO);
    assert_int_equal(airlock_trailer_add_trial(&d.slot, &d.g), AIRLOCK_ERR_IO);
    assert_int_equal(airlock_trailer_write_magic(&d.slot, &d.g), AIRLOCK_ERR_IO);
    assert_int_equal(airlock_trailer_write_flag(&d.slot, &d.g, AIRLOCK_FLAG_COPY_DONE, 1),
                     AIRLOCK_ERR_IO);
    airlock_sim_flash_power_on(d.sim);
    dev_close(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_offsets),
        cmocka_unit_test(test_trailer_size),
        cmocka_unit_test(test_magic_variants),
        cmocka_unit_test(test_read_raw),
        cmocka_unit_test(test_write_every_write_size),
        cmocka_unit_test(test_write_erased_zero),
        cmocka_unit_test(test_matches_imgtool_pad_confirm),
        cmocka_unit_test(test_trials_whole_records),
        cmocka_unit_test(test_trials_torn_record_by_cut),
        cmocka_unit_test(test_trials_all_places_spent),
        cmocka_unit_test(test_geometry_errors),
        cmocka_unit_test(test_io_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
