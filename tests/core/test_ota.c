/*
 * Unit tests for core/ota.c, the device update agent, on sim flash: streamed
 * downloads in random chunk sizes (1 byte included) with the overwrite and
 * swap-2n engines, each early rejection at its exact byte, end() refusing a
 * corrupt image, set_pending + airlock_boot installing it, and resume after a
 * power cut at every flash operation of a download. Random chunking is seeded
 * and the seed printed.
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

#include "../common/imgbuild.h"
#include "../common/testdev.h"
#include "airlock/boot.h"
#include "airlock/crypto_openssl.h"
#include "airlock/ota.h"
#include "airlock/sim_flash.h"

#define SEC TD_SECTOR

static tu_key_t key;       /* trusted: the shared Ed25519 vector key */
static tu_key_t other_key; /* not trusted: the shared P-256 vector key */

/* The crypto port devices get; crypto_core_crc: OpenSSL with core's own CRC-32. */
static const airlock_crypto_t *dev_crypto = &airlock_crypto_openssl;
static airlock_crypto_t crypto_core_crc;

/* ---- a device: uniform 4 KiB sectors, bootloader, slots, status area ---- */

static void dev_open_ws(td_dev_t *d, const airlock_engine_t *engine, uint32_t ws)
{
    assert_int_equal(td_open(d, engine, dev_crypto, &key.pub, ws, 20), 0);
}

static void dev_open(td_dev_t *d, const airlock_engine_t *engine)
{
    dev_open_ws(d, engine, 8);
}

static void no_violations(td_dev_t *d)
{
    if (airlock_sim_flash_violations(d->sim, 0) != 0) {
        fail_msg("NOR violation: %s", airlock_sim_flash_violation_str(d->sim));
    }
}

static void dev_close(td_dev_t *d)
{
    no_violations(d);
    td_close(d);
}

static const airlock_area_t *area(td_dev_t *d, int id)
{
    return &d->layout.area[id];
}

/* Bytes of the secondary images may occupy (below the trailer). */
static uint32_t sec_image_area(td_dev_t *d)
{
    airlock_trailer_geom_t g = {airlock_layout_max_align(&d->layout), d->fl->write_size, 128};
    return airlock_trailer_start(area(d, AIRLOCK_AREA_SECONDARY), &g);
}

/* ---- images ------------------------------------------------------------- */

struct img {
    uint8_t *p;
    size_t len;
};

static struct img mkimg(uint8_t major, uint8_t minor, uint32_t len_hint, uint32_t seed,
                        int with_sec_cnt, uint32_t sec_cnt, const tu_key_t *k)
{
    struct img im;
    im.p = td_image(major, minor, len_hint, seed, with_sec_cnt, sec_cnt, k, &im.len);
    assert_non_null(im.p);
    return im;
}

static void put_primary(td_dev_t *d, const struct img *im)
{
    assert_int_equal(td_put_primary(d, im->p, im->len), 0);
}

/* Fill the secondary with stale bytes: an agent must erase as it goes. */
static void dirty_secondary(td_dev_t *d, uint32_t seed)
{
    const airlock_area_t *s = area(d, AIRLOCK_AREA_SECONDARY);
    uint8_t *junk = malloc(s->size);
    assert_non_null(junk);
    uint32_t x = seed * 2654435761u + 7u;
    for (uint32_t i = 0; i < s->size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (uint8_t)(x & 0xfe); /* never an erased byte */
    }
    assert_int_equal(airlock_sim_flash_load(d->sim, s->off, junk, s->size), 0);
    free(junk);
}

/* Seeded chunk sizes: 1 byte often, up to ~1.5 sectors sometimes. */
static uint32_t rng_next(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(z ^ (z >> 31));
}

static uint32_t chunk_len(uint64_t *st)
{
    uint32_t r = rng_next(st);
    switch (r % 4) {
    case 0:
        return 1;
    case 1:
        return 1 + (r >> 8) % 16;
    case 2:
        return 1 + (r >> 8) % 700;
    default:
        return 1 + (r >> 8) % 6000;
    }
}

/* Write im[from, len) in random chunks; returns the first error (0 if none). */
static int feed(airlock_ota_t *ota, const struct img *im, uint32_t from, uint64_t *rng)
{
    uint32_t pos = from;
    while (pos < im->len) {
        uint32_t n = chunk_len(rng);
        if (n > im->len - pos) {
            n = (uint32_t)(im->len - pos);
        }
        int rc = airlock_ota_write(ota, im->p + pos, n);
        if (rc) {
            return rc;
        }
        pos += n;
    }
    return 0;
}

static const uint8_t id_a[AIRLOCK_OTA_ID_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t id_b[AIRLOCK_OTA_ID_SIZE] = {0xaa, 0xbb};

static void assert_slot_holds(td_dev_t *d, const struct img *im)
{
    assert_memory_equal(td_area_bytes(d, AIRLOCK_AREA_SECONDARY) + d->stage, im->p, im->len);
}

static void boot_expect(td_dev_t *d, int action)
{
    airlock_boot_t b;
    airlock_boot_result_t res;
    int rc = airlock_boot(&b, &d->cfg, &res);
    if (rc != 0 || res.action != action) {
        fail_msg("boot -> %s, action %s, expected %s: %s", airlock_errname(rc),
                 airlock_boot_action_name(res.action), airlock_boot_action_name(action),
                 res.message ? res.message : "");
    }
    no_violations(d);
}

/* ---- streaming ---------------------------------------------------------- */

static void stream_install(const airlock_engine_t *engine, uint32_t ws, uint64_t seed)
{
    td_dev_t d;
    airlock_ota_t ota;
    airlock_ota_status_t st;
    uint64_t rng = seed;
    dev_open_ws(&d, engine, ws);
    struct img old = mkimg(1, 0, 9000, 1, 1, 3, &key);
    struct img im = mkimg(1, 1, 30001, 2, 1, 3, &key);
    put_primary(&d, &old);
    dirty_secondary(&d, 5);
    airlock_sim_flash_reset_counts(d.sim);
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, (uint32_t)im.len, id_a), 0);
    assert_int_equal(feed(&ota, &im, 0, &rng), 0);
    assert_int_equal(airlock_ota_pos(&ota), im.len);
    airlock_sim_flash_counts_t c;
    airlock_sim_flash_counts(d.sim, &c);
    uint64_t reads_before = c.read_bytes;
    assert_int_equal(airlock_ota_end(&ota), 0);
    airlock_sim_flash_counts(d.sim, &c);
    /* end() read TLVs, not the payload again */
    assert_true(c.read_bytes - reads_before < 1024);
    /* each sector erased at most once in the download */
    assert_true(airlock_sim_flash_max_erases(d.sim, NULL) <= 1);
    assert_slot_holds(&d, &im);
    /* the last write unit is padded with erased bytes */
    uint32_t end = d.stage + (uint32_t)im.len;
    for (uint32_t i = end; i % ws != 0; i++) {
        assert_int_equal(td_area_bytes(&d, AIRLOCK_AREA_SECONDARY)[i], 0xff);
    }
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_false(st.pending);
    assert_int_equal(airlock_ota_set_pending(&ota, false), 0);
    assert_int_equal(airlock_ota_set_pending(&ota, false), 0); /* idempotent */
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_true(st.pending);
    assert_false(st.pending_permanent);
    assert_true(st.pending_valid);
    assert_int_equal(st.pending_version.minor, 1);
    assert_int_equal(st.running_version.minor, 0);
    airlock_ota_abort(&ota);
    no_violations(&d);
    boot_expect(&d, AIRLOCK_BOOT_INSTALLED);
    assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), im.p, im.len);
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_int_equal(st.running_version.minor, 1);
    assert_false(st.pending);
    if (engine == &airlock_engine_swap_2n) {
        assert_true(st.on_trial);
        /* no new download while the old image is the way back */
        assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, id_b), AIRLOCK_ERR_INVAL);
        assert_int_equal(airlock_ota_confirm(&d.cfg), 0);
        assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    }
    assert_false(st.on_trial);
    assert_true(st.confirmed);
    /* a next download is allowed again */
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, id_b), 0);
    airlock_ota_abort(&ota);
    free(old.p);
    free(im.p);
    dev_close(&d);
}

static void test_stream_overwrite(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed0001u;
    print_message("seed %llu\n", (unsigned long long)seed);
    stream_install(&airlock_engine_overwrite, 8, seed);
    stream_install(&airlock_engine_overwrite, 1, seed + 1);
    stream_install(&airlock_engine_overwrite, 32, seed + 2);
}

static void test_stream_swap2n(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed0002u;
    print_message("seed %llu\n", (unsigned long long)seed);
    stream_install(&airlock_engine_swap_2n, 8, seed);
    stream_install(&airlock_engine_swap_2n, 4, seed + 1);
}

static void test_one_byte_writes(void **state)
{
    (void)state;
    td_dev_t d;
    airlock_ota_t ota;
    dev_open(&d, &airlock_engine_swap_2n);
    struct img im = mkimg(1, 1, 9001, 4, 0, 0, &key);
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, NULL), 0);
    for (size_t i = 0; i < im.len; i++) {
        assert_int_equal(airlock_ota_write(&ota, im.p + i, 1), 0);
    }
    assert_int_equal(airlock_ota_end(&ota), 0);
    assert_slot_holds(&d, &im);
    /* a byte past the end is refused */
    airlock_ota_t o2;
    assert_int_equal(airlock_ota_begin(&o2, &d.cfg, 0, NULL), 0);
    assert_int_equal(airlock_ota_write(&o2, im.p, im.len), 0);
    uint8_t extra = 0;
    assert_int_equal(airlock_ota_write(&o2, &extra, 1), AIRLOCK_ERR_OUT_OF_BOUNDS);
    airlock_ota_abort(&o2);
    free(im.p);
    dev_close(&d);
}

/* ---- early rejection ------------------------------------------------------ */

static void put16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32le(uint8_t *p, uint32_t v)
{
    put16le(p, (uint16_t)v);
    put16le(p + 2, (uint16_t)(v >> 16));
}

/*
 * Feed im byte by byte: the write of byte number at (1-based) must be the
 * first to fail, with err; the primary must be untouched.
 */
static void expect_reject_at(td_dev_t *d, const struct img *im, int err, uint32_t at,
                             const char *what)
{
    airlock_ota_t ota;
    const airlock_area_t *p = area(d, AIRLOCK_AREA_PRIMARY);
    uint8_t *before = malloc(p->size);
    assert_non_null(before);
    memcpy(before, td_area_bytes(d, AIRLOCK_AREA_PRIMARY), p->size);
    assert_int_equal(airlock_ota_begin(&ota, &d->cfg, 0, id_a), 0);
    uint32_t n = 0;
    int rc = 0;
    while (n < im->len && rc == 0) {
        rc = airlock_ota_write(&ota, im->p + n, 1);
        n++;
    }
    if (rc != err || n != at) {
        fail_msg("%s: first failing write at byte %u with %s, expected byte %u with %s", what, n,
                 airlock_errname(rc), at, airlock_errname(err));
    }
    assert_non_null(airlock_ota_detail(&ota)->field);
    /* dead from now on */
    assert_int_equal(airlock_ota_write(&ota, im->p, 1), err);
    assert_int_equal(airlock_ota_end(&ota), err);
    assert_int_equal(airlock_ota_set_pending(&ota, false), AIRLOCK_ERR_INVAL);
    airlock_ota_abort(&ota);
    assert_memory_equal(td_area_bytes(d, AIRLOCK_AREA_PRIMARY), before, p->size);
    no_violations(d);
    free(before);
}

static void test_early_rejections(void **state)
{
    (void)state;
    td_dev_t d;
    dev_open(&d, &airlock_engine_swap_2n);
    struct img old = mkimg(2, 0, 9000, 1, 1, 5, &key);
    put_primary(&d, &old);
    struct img im = mkimg(2, 1, 12000, 2, 1, 5, &key);
    airlock_image_header_t h;
    airlock_header_decode(im.p, &h);
    uint32_t prot_end = h.hdr_size + h.img_size + h.protect_tlv_size;

    struct img m = {malloc(im.len), im.len};
    assert_non_null(m.p);
#define MUTATE(stmt)                                                                               \
    do {                                                                                           \
        memcpy(m.p, im.p, im.len);                                                                 \
        stmt;                                                                                      \
    } while (0)
    MUTATE(m.p[0] ^= 1);
    expect_reject_at(&d, &m, AIRLOCK_ERR_BAD_MAGIC, 4, "magic");
    MUTATE(put16le(m.p + 8, 16));
    expect_reject_at(&d, &m, AIRLOCK_ERR_BAD_HDR_SIZE, 10, "hdr_size");
    MUTATE(put32le(m.p + 12, d.room));
    expect_reject_at(&d, &m, AIRLOCK_ERR_TOO_BIG, 16, "img_size");
    MUTATE(put32le(m.p + 16, AIRLOCK_IMAGE_F_NON_BOOTABLE));
    expect_reject_at(&d, &m, AIRLOCK_ERR_NOT_BOOTABLE, 20, "non-bootable");
    MUTATE(put32le(m.p + 16, AIRLOCK_IMAGE_F_ENCRYPTED_AES128));
    expect_reject_at(&d, &m, AIRLOCK_ERR_NOT_BOOTABLE, 20, "encrypted");
    MUTATE(put32le(m.p + 16, AIRLOCK_IMAGE_F_COMPRESSED_LZMA2));
    expect_reject_at(&d, &m, AIRLOCK_ERR_NOT_BOOTABLE, 20, "compressed");
    MUTATE(m.p[20] = 1);
    expect_reject_at(&d, &m, AIRLOCK_ERR_DOWNGRADE, 28, "downgrade");
    MUTATE(put32le(m.p + prot_end - 4, 4));
    expect_reject_at(&d, &m, AIRLOCK_ERR_SEC_CNT_ROLLBACK, prot_end, "sec_cnt");
    MUTATE(put16le(m.p + prot_end, 0x1234));
    expect_reject_at(&d, &m, AIRLOCK_ERR_BAD_TLV_INFO, prot_end + 4, "tlv info");
    /* the unprotected TLV area would run past the room: at its info header */
    MUTATE(put16le(m.p + prot_end + 2, 0xfff0));
    assert_true(prot_end + 0xfff0u > d.room);
    expect_reject_at(&d, &m, AIRLOCK_ERR_TOO_BIG, prot_end + 4, "tlv info len");
#undef MUTATE
    /* no protected TLVs while the running image has a counter: at byte 32 */
    struct img nocnt = mkimg(2, 1, 12000, 2, 0, 0, &key);
    expect_reject_at(&d, &nocnt, AIRLOCK_ERR_SEC_CNT_ROLLBACK, 32, "no sec_cnt");
    /* signed by a key not trusted: when its KEYHASH value is complete */
    struct img other = mkimg(2, 1, 12000, 2, 1, 5, &other_key);
    expect_reject_at(&d, &other, AIRLOCK_ERR_UNKNOWN_KEY, prot_end + 4 + 36 + 36, "keyhash");
    /* a size hint over the room: at begin */
    airlock_ota_t ota;
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, d.room + 1, id_a), AIRLOCK_ERR_TOO_BIG);
    free(m.p);
    free(nocnt.p);
    free(other.p);
    free(old.p);
    free(im.p);
    dev_close(&d);
}

/* ---- end() ------------------------------------------------------------------ */

static void expect_end_fails(const struct img *im, int err)
{
    td_dev_t d;
    airlock_ota_t ota;
    uint64_t rng = 42;
    dev_open(&d, &airlock_engine_overwrite);
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, (uint32_t)im->len, id_a), 0);
    assert_int_equal(feed(&ota, im, 0, &rng), 0);
    assert_int_equal(airlock_ota_end(&ota), err);
    assert_int_equal(airlock_ota_set_pending(&ota, false), AIRLOCK_ERR_INVAL);
    airlock_ota_abort(&ota);
    airlock_ota_status_t st;
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_false(st.pending);
    dev_close(&d);
}

static void test_end_rejects(void **state)
{
    (void)state;
    struct img im = mkimg(1, 0, 10000, 3, 0, 0, &key);
    im.p[100] ^= 0x10; /* payload */
    expect_end_fails(&im, AIRLOCK_ERR_HASH_MISMATCH);
    im.p[100] ^= 0x10;
    im.p[im.len - 1] ^= 0x01; /* signature */
    expect_end_fails(&im, AIRLOCK_ERR_BAD_SIGNATURE);
    im.p[im.len - 1] ^= 0x01;
    /* end before the last byte */
    td_dev_t d;
    airlock_ota_t ota;
    dev_open(&d, &airlock_engine_overwrite);
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, id_a), 0);
    assert_int_equal(airlock_ota_write(&ota, im.p, im.len - 1), 0);
    assert_int_equal(airlock_ota_end(&ota), AIRLOCK_ERR_INVAL);
    airlock_ota_abort(&ota);
    dev_close(&d);
    free(im.p);
}

/* ---- resume ------------------------------------------------------------------ */

/* Resume after a reset and finish; returns the offset resume gave. */
static uint32_t resume_and_finish(td_dev_t *d, const struct img *im, const uint8_t *id,
                                  uint64_t *rng)
{
    airlock_ota_t ota;
    uint32_t off = 12345;
    int rc = airlock_ota_resume(&ota, &d->cfg, id, &off);
    if (rc) {
        fail_msg("resume -> %s (%s)", airlock_errname(rc),
                 airlock_ota_detail(&ota)->field ? airlock_ota_detail(&ota)->field : "");
    }
    assert_true(off <= im->len);
    assert_int_equal(airlock_ota_pos(&ota), off);
    rc = feed(&ota, im, off, rng);
    if (rc == 0) {
        rc = airlock_ota_end(&ota);
    }
    if (rc) {
        fail_msg("after resume at %u: %s (%s)", off, airlock_errname(rc),
                 airlock_ota_detail(&ota)->field ? airlock_ota_detail(&ota)->field : "");
    }
    assert_int_equal(airlock_ota_set_pending(&ota, true), 0);
    airlock_ota_abort(&ota);
    return off;
}

/* len 0: an image that fills the room, into the trailer's sector */
static void powercut_every_op(const airlock_engine_t *engine, uint32_t ws, uint32_t len,
                              uint64_t seed)
{
    td_dev_t d;
    airlock_ota_t ota;
    airlock_sim_flash_snapshot_t *snap;
    dev_open_ws(&d, engine, ws);
    struct img old = mkimg(1, 0, 9000, 1, 0, 0, &key);
    struct img im = mkimg(1, 1, len ? len : d.room - 60, 9, 0, 0, &key);
    assert_true(im.len <= d.room);
    put_primary(&d, &old);
    dirty_secondary(&d, 3);
    assert_int_equal(airlock_sim_flash_save(d.sim, &snap), 0);
    uint32_t cmp_len = sec_image_area(&d);

    /* the reference: one uninterrupted download */
    uint64_t rng = seed;
    airlock_sim_flash_reset_counts(d.sim);
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, id_a), 0);
    assert_int_equal(feed(&ota, &im, 0, &rng), 0);
    assert_int_equal(airlock_ota_end(&ota), 0);
    uint64_t nops = airlock_sim_flash_ops(d.sim);
    airlock_ota_abort(&ota);
    uint8_t *ref = malloc(cmp_len);
    assert_non_null(ref);
    memcpy(ref, td_area_bytes(&d, AIRLOCK_AREA_SECONDARY), cmp_len);
    assert_slot_holds(&d, &im);
    assert_true(nops > 10);

    unsigned resumed_mid = 0;
    for (uint64_t k = 0; k < nops; k++) {
        assert_int_equal(airlock_sim_flash_restore(d.sim, snap), 0);
        airlock_sim_flash_power_on(d.sim);
        airlock_sim_flash_reset_counts(d.sim);
        airlock_sim_flash_seed(d.sim, seed + k);
        airlock_sim_flash_cut_at(d.sim, k);
        rng = seed; /* the reference's chunks: the same operations */
        int rc = airlock_ota_begin(&ota, &d.cfg, 0, id_a);
        if (rc == 0) {
            rc = feed(&ota, &im, 0, &rng);
        }
        if (rc == 0) {
            rc = airlock_ota_end(&ota);
        }
        airlock_ota_abort(&ota);
        if (rc != AIRLOCK_ERR_IO) {
            fail_msg("cut at op %llu: download returned %s, expected IO", (unsigned long long)k,
                     airlock_errname(rc));
        }
        airlock_sim_flash_cut_cancel(d.sim);
        airlock_sim_flash_power_on(d.sim);
        /* a second cut, during the resumed download, for odd k */
        if (k % 2) {
            uint64_t k2 = airlock_sim_flash_cut_random(d.sim, 0, 24);
            uint32_t o2;
            rc = airlock_ota_resume(&ota, &d.cfg, id_a, &o2);
            if (rc == 0) {
                rc = feed(&ota, &im, o2, &rng);
            }
            if (rc == 0) {
                rc = airlock_ota_end(&ota);
            }
            airlock_ota_abort(&ota);
            if (rc != 0 && rc != AIRLOCK_ERR_IO) {
                fail_msg("cut at op %llu then %llu: %s", (unsigned long long)k,
                         (unsigned long long)k2, airlock_errname(rc));
            }
            airlock_sim_flash_cut_cancel(d.sim);
            airlock_sim_flash_power_on(d.sim);
        }
        uint32_t off = resume_and_finish(&d, &im, id_a, &rng);
        resumed_mid += off > 0 && (off < im.len || k % 2);
        if (memcmp(td_area_bytes(&d, AIRLOCK_AREA_SECONDARY), ref, cmp_len) != 0) {
            fail_msg("cut at op %llu (%s), resumed at %u: slot differs from the reference",
                     (unsigned long long)k, airlock_sim_flash_cut_str(d.sim), off);
        }
        if (airlock_sim_flash_violations(d.sim, 0) != 0) {
            fail_msg("cut at op %llu (%s): NOR violation %s", (unsigned long long)k,
                     airlock_sim_flash_cut_str(d.sim), airlock_sim_flash_violation_str(d.sim));
        }
        /* the bootloader installs what the resumed download left */
        boot_expect(&d, AIRLOCK_BOOT_INSTALLED);
        assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), im.p, im.len);
    }
    print_message("%s: %llu cut points, %u resumed mid-image\n", engine->name,
                  (unsigned long long)nops, resumed_mid);
    /* cuts after the first sector resume from the middle rather than start over */
    assert_true(resumed_mid >= nops / 3);
    free(ref);
    airlock_sim_flash_snapshot_free(snap);
    free(old.p);
    free(im.p);
    dev_close(&d);
}

static void test_powercut_overwrite(void **state)
{
    (void)state;
    uint64_t seed = 0xc0ffee01u;
    print_message("seed %llu\n", (unsigned long long)seed);
    powercut_every_op(&airlock_engine_overwrite, 8, 14003, seed);
    powercut_every_op(&airlock_engine_overwrite, 1, 9501, seed + 1);
}

/* An image reaching into the sector that holds the progress records. */
static void test_powercut_full_slot(void **state)
{
    (void)state;
    uint64_t seed = 0xc0ffee03u;
    print_message("seed %llu\n", (unsigned long long)seed);
    powercut_every_op(&airlock_engine_overwrite, 8, 0, seed);
    powercut_every_op(&airlock_engine_swap_2n, 32, 0, seed + 1);
}

static void test_powercut_swap2n(void **state)
{
    (void)state;
    uint64_t seed = 0xc0ffee02u;
    print_message("seed %llu\n", (unsigned long long)seed);
    powercut_every_op(&airlock_engine_swap_2n, 8, 14003, seed);
    powercut_every_op(&airlock_engine_swap_2n, 4, 20000, seed + 1);
}

/*
 * The progress records' CRC is the same whichever CRC-32 computes it: a
 * download begun with the port's and resumed with core's (or the other way
 * round) trusts its durable prefix and finishes.
 */
static void test_resume_across_crc(void **state)
{
    (void)state;
    const airlock_crypto_t *pairs[2][2] = {{&airlock_crypto_openssl, &crypto_core_crc},
                                           {&crypto_core_crc, &airlock_crypto_openssl}};
    assert_non_null(airlock_crypto_openssl.crc32);
    for (int k = 0; k < 2; k++) {
        td_dev_t d;
        airlock_ota_t ota;
        uint64_t rng = 70u + (uint64_t)k;
        uint32_t off;
        dev_open(&d, &airlock_engine_overwrite);
        struct img a = mkimg(1, 1, 30000, 13, 0, 0, &key);
        d.cfg.crypto = pairs[k][0];
        assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, id_a), 0);
        assert_int_equal(airlock_ota_write(&ota, a.p, 25000), 0);
        airlock_ota_abort(&ota);
        d.cfg.crypto = pairs[k][1];
        assert_int_equal(airlock_ota_resume(&ota, &d.cfg, id_a, &off), 0);
        assert_int_equal(off, 24576); /* the last whole sector: the prefix was trusted */
        assert_int_equal(feed(&ota, &a, off, &rng), 0);
        assert_int_equal(airlock_ota_end(&ota), 0);
        airlock_ota_abort(&ota);
        assert_slot_holds(&d, &a);
        free(a.p);
        dev_close(&d);
    }
}

/* Power cuts with core's table CRC-32 (a device's): the same guarantees. */
static void test_powercut_core_crc(void **state)
{
    (void)state;
    uint64_t seed = 0xc0ffee04u;
    print_message("seed %llu\n", (unsigned long long)seed);
    dev_crypto = &crypto_core_crc;
    powercut_every_op(&airlock_engine_overwrite, 4, 12007, seed);
    dev_crypto = &airlock_crypto_openssl;
}

static void test_resume_ids(void **state)
{
    (void)state;
    td_dev_t d;
    airlock_ota_t ota;
    uint64_t rng = 7;
    uint32_t off;
    dev_open(&d, &airlock_engine_swap_2n);
    struct img a = mkimg(1, 1, 20000, 11, 0, 0, &key);
    struct img b = mkimg(1, 2, 17000, 12, 0, 0, &key);
    /* half of A, then the power goes */
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, id_a), 0);
    assert_int_equal(airlock_ota_write(&ota, a.p, 10000), 0);
    airlock_ota_abort(&ota);
    /* resuming A continues after the last whole sector */
    assert_int_equal(airlock_ota_resume(&ota, &d.cfg, id_a, &off), 0);
    assert_int_equal(off, 8192);
    airlock_ota_abort(&ota);
    /* another id starts over, and B lands cleanly over A's sectors */
    assert_int_equal(airlock_ota_resume(&ota, &d.cfg, id_b, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(feed(&ota, &b, 0, &rng), 0);
    assert_int_equal(airlock_ota_end(&ota), 0);
    airlock_ota_abort(&ota);
    assert_slot_holds(&d, &b);
    /* the finished download resumed again: nothing left to send, verifies */
    assert_int_equal(airlock_ota_resume(&ota, &d.cfg, id_b, &off), 0);
    assert_int_equal(off, b.len);
    assert_int_equal(airlock_ota_end(&ota), 0);
    airlock_ota_abort(&ota);
    /* the same image started again from scratch: harmless */
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, (uint32_t)b.len, id_b), 0);
    assert_int_equal(feed(&ota, &b, 0, &rng), 0);
    assert_int_equal(airlock_ota_end(&ota), 0);
    assert_int_equal(airlock_ota_set_pending(&ota, true), 0);
    airlock_ota_abort(&ota);
    assert_slot_holds(&d, &b);
    boot_expect(&d, AIRLOCK_BOOT_INSTALLED);
    assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), b.p, b.len);
    /*
     * After the install the secondary's trailer is used (request consumed):
     * requesting the same download again erases the trailer sector first.
     */
    assert_int_equal(airlock_ota_resume(&ota, &d.cfg, id_b, &off), 0);
    assert_int_equal(off, b.len);
    assert_int_equal(airlock_ota_end(&ota), 0);
    assert_int_equal(airlock_ota_set_pending(&ota, true), 0);
    airlock_ota_abort(&ota);
    airlock_ota_status_t st;
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_true(st.pending);
    assert_true(st.pending_permanent);
    no_violations(&d);
    boot_expect(&d, AIRLOCK_BOOT_INSTALLED);
    assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), b.p, b.len);
    free(a.p);
    free(b.p);
    dev_close(&d);
}

/* Download im, request it (trial) and boot: the bootloader installs it. */
static void install_trial(td_dev_t *d, const struct img *im, const uint8_t *id)
{
    airlock_ota_t ota;
    uint64_t rng = 77;
    assert_int_equal(airlock_ota_begin(&ota, &d->cfg, (uint32_t)im->len, id), 0);
    assert_int_equal(feed(&ota, im, 0, &rng), 0);
    assert_int_equal(airlock_ota_end(&ota), 0);
    assert_int_equal(airlock_ota_set_pending(&ota, false), 0);
    airlock_ota_abort(&ota);
    boot_expect(d, AIRLOCK_BOOT_INSTALLED);
}

/* An unconfirmed update is reverted; the state names what was reverted. */
static void test_state_reverted(void **state)
{
    (void)state;
    td_dev_t d;
    airlock_ota_status_t st;
    dev_open(&d, &airlock_engine_swap_2n);
    struct img v10 = mkimg(1, 0, 9000, 1, 1, 3, &key);
    struct img v11 = mkimg(1, 1, 12000, 2, 1, 3, &key);
    struct img v12 = mkimg(1, 2, 15000, 3, 1, 3, &key);
    put_primary(&d, &v10);
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_false(st.reverted);
    assert_true(st.has_sec_cnt);
    assert_int_equal(st.sec_cnt, 3);
    install_trial(&d, &v11, id_a);
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_true(st.on_trial);
    assert_false(st.reverted);
    /* max_trials 1: the next boot without a confirmation reverts */
    boot_expect(&d, AIRLOCK_BOOT_REVERTED);
    assert_memory_equal(td_area_bytes(&d, AIRLOCK_AREA_PRIMARY), v10.p, v10.len);
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_true(st.confirmed);
    assert_false(st.pending);
    assert_int_equal(st.running_version.minor, 0);
    assert_true(st.reverted);
    assert_true(st.reverted_valid);
    assert_int_equal(st.reverted_version.major, 1);
    assert_int_equal(st.reverted_version.minor, 1);
    /* still said after more boots */
    boot_expect(&d, AIRLOCK_BOOT_NORMAL);
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_true(st.reverted);
    assert_int_equal(st.reverted_version.minor, 1);
    /* the next install clears it */
    install_trial(&d, &v12, id_b);
    assert_int_equal(airlock_ota_confirm(&d.cfg), 0);
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_false(st.reverted);
    assert_false(st.reverted_valid);
    assert_int_equal(st.running_version.minor, 2);
    free(v10.p);
    free(v11.p);
    free(v12.p);
    dev_close(&d);
}

/*
 * The security counter floor comes from the boot journal too: an image put
 * back in the primary by other means does not lower it.
 */
static void test_sec_cnt_journal_floor(void **state)
{
    (void)state;
    td_dev_t d;
    airlock_ota_t ota;
    airlock_ota_status_t st;
    dev_open(&d, &airlock_engine_swap_2n);
    struct img v10 = mkimg(1, 0, 9000, 1, 1, 3, &key);
    struct img v11 = mkimg(1, 1, 12000, 2, 1, 7, &key);
    struct img v12 = mkimg(1, 2, 12000, 3, 1, 5, &key);
    put_primary(&d, &v10);
    install_trial(&d, &v11, id_a);
    assert_int_equal(airlock_ota_confirm(&d.cfg), 0);
    boot_expect(&d, AIRLOCK_BOOT_NORMAL); /* a confirmed boot journals counter 7 */
    /* a factory programmer puts v1.0 (counter 3) back */
    const airlock_area_t *p = area(&d, AIRLOCK_AREA_PRIMARY);
    uint8_t *blank = malloc(p->size);
    assert_non_null(blank);
    memset(blank, 0xff, p->size);
    assert_int_equal(airlock_sim_flash_load(d.sim, p->off, blank, p->size), 0);
    free(blank);
    put_primary(&d, &v10);
    assert_int_equal(airlock_ota_state(&d.cfg, &st), 0);
    assert_int_equal(st.running_version.minor, 0);
    assert_true(st.has_sec_cnt);
    assert_int_equal(st.sec_cnt, 7);
    /* v1.2 is newer than v1.0 but its counter 5 is below the floor 7 */
    assert_int_equal(airlock_ota_begin(&ota, &d.cfg, 0, id_b), 0);
    uint64_t rng = 5;
    assert_int_equal(feed(&ota, &v12, 0, &rng), AIRLOCK_ERR_SEC_CNT_ROLLBACK);
    assert_int_equal(airlock_ota_detail(&ota)->expected, 7);
    assert_int_equal(airlock_ota_detail(&ota)->found, 5);
    airlock_ota_abort(&ota);
    free(v10.p);
    free(v11.p);
    free(v12.p);
    dev_close(&d);
}

static int setup(void **state)
{
    (void)state;
    crypto_core_crc = airlock_crypto_openssl;
    crypto_core_crc.crc32 = NULL;
    if (tu_key_load(&key, AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ed25519.pem") != 0) {
        return -1;
    }
    return tu_key_load(&other_key, AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ecdsa-p256.pem");
}

static int teardown(void **state)
{
    (void)state;
    tu_key_free(&key);
    tu_key_free(&other_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_overwrite),      cmocka_unit_test(test_stream_swap2n),
        cmocka_unit_test(test_one_byte_writes),       cmocka_unit_test(test_early_rejections),
        cmocka_unit_test(test_end_rejects),           cmocka_unit_test(test_resume_ids),
        cmocka_unit_test(test_powercut_overwrite),    cmocka_unit_test(test_powercut_swap2n),
        cmocka_unit_test(test_powercut_full_slot),    cmocka_unit_test(test_state_reverted),
        cmocka_unit_test(test_sec_cnt_journal_floor), cmocka_unit_test(test_resume_across_crc),
        cmocka_unit_test(test_powercut_core_crc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
