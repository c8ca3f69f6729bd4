/*
 * Unit tests for core/boot.c, the boot decision, with the overwrite and
 * swap-2n engines on sim flash: normal boots, refused updates (untrusted,
 * corrupt, older, rolled-back counter, non-bootable, too big), trial boots,
 * confirm and revert, configuration errors and the erase budget. Images are
 * signed with the shared Ed25519 key, so every run is identical.
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
#include <openssl/evp.h>

#include "../common/imgbuild.h"
#include "airlock/boot.h"
#include "airlock/crypto_openssl.h"
#include "airlock/sim_flash.h"

#define KIB 1024u
#define SEC (4 * KIB)

static tu_key_t key;       /* trusted: the shared Ed25519 vector key */
static tu_key_t other_key; /* not trusted: the shared P-256 vector key */

/* ---- a device -------------------------------------------------------------
 *
 * One uniform flash of 4 KiB sectors: bootloader 8 KiB, primary, secondary,
 * status area 8 KiB (unless no_status).
 */
struct dev {
    airlock_sim_flash_t *sim;
    const airlock_flash_t *fl;
    airlock_sector_run_t runs[1];
    airlock_layout_t layout;
    airlock_boot_cfg_t cfg;
    uint8_t buf[4096];
    unsigned feeds;
    airlock_boot_stats_t stats; /* of the last boot */
    airlock_journal_t journal;  /* of the last boot */
};

static void feed(void *ctx)
{
    (*(unsigned *)ctx)++;
}

static void dev_open_ex(struct dev *d, const airlock_engine_t *engine, uint32_t ws,
                        uint32_t pri_secs, uint32_t sec_secs, bool status)
{
    memset(d, 0, sizeof(*d));
    uint32_t nsec = 2 + pri_secs + sec_secs + 2;
    d->runs[0] = (airlock_sector_run_t){nsec, SEC};
    airlock_sim_flash_geometry_t geo = {0, ws, 0xff, d->runs, 1};
    assert_int_equal(airlock_sim_flash_create(&geo, &d->sim), 0);
    d->fl = airlock_sim_flash_port(d->sim);
    airlock_layout_t *l = &d->layout;
    l->area[AIRLOCK_AREA_BOOTLOADER] = (airlock_area_t){d->fl, 0, 2 * SEC};
    l->area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){d->fl, 2 * SEC, pri_secs * SEC};
    l->area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){d->fl, (2 + pri_secs) * SEC, sec_secs * SEC};
    if (status) {
        l->area[AIRLOCK_AREA_STATUS] =
            (airlock_area_t){d->fl, (2 + pri_secs + sec_secs) * SEC, 2 * SEC};
    }
    assert_int_equal(airlock_layout_check(l, NULL), 0);
    d->cfg.layout = l;
    d->cfg.engine = engine;
    d->cfg.crypto = &airlock_crypto_openssl;
    d->cfg.keys = &key.pub;
    d->cfg.nkeys = 1;
    d->cfg.max_trials = 1;
    d->cfg.watchdog_feed = feed;
    d->cfg.watchdog_ctx = &d->feeds;
    d->cfg.buf = d->buf;
    d->cfg.buf_len = sizeof(d->buf);
}

static void dev_open(struct dev *d, const airlock_engine_t *engine)
{
    dev_open_ex(d, engine, 8, 20, 20, true);
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

static const airlock_area_t *area(struct dev *d, int id)
{
    return &d->layout.area[id];
}

static const uint8_t *area_bytes(struct dev *d, int id)
{
    return airlock_sim_flash_data(d->sim) + area(d, id)->off;
}

static int boot(struct dev *d, airlock_boot_result_t *res)
{
    airlock_boot_t b;
    int rc = airlock_boot(&b, &d->cfg, res);
    d->stats = b.stats;
    d->journal = b.journal;
    no_violations(d);
    return rc;
}

/* Boot and expect a verified image in the primary. */
static void boot_ok(struct dev *d, airlock_boot_result_t *res, int action)
{
    int rc = boot(d, res);
    if (rc != 0 || res->action != action) {
        fail_msg("boot -> %d (%s), action %s, expected %s: %s", rc, airlock_errname(rc),
                 airlock_boot_action_name(res->action), airlock_boot_action_name(action),
                 res->message ? res->message : "(no message)");
    }
    assert_int_equal(res->slot, AIRLOCK_AREA_PRIMARY);
}

/* ---- images ---------------------------------------------------------------- */

struct img {
    uint8_t *p;
    size_t len;
    airlock_version_t v;
};

static struct img mkimg(uint8_t major, uint8_t minor, uint32_t len_hint, uint32_t seed,
                        int with_sec_cnt, uint32_t sec_cnt, const tu_key_t *k)
{
    tu_image_spec_t s;
    memset(&s, 0, sizeof(s));
    s.version = (airlock_version_t){major, minor, 0, 0};
    s.hdr_size = 32;
    s.seed = seed;
    s.with_sec_cnt = with_sec_cnt;
    s.sec_cnt = sec_cnt;
    s.key = k;
    uint32_t overhead = (uint32_t)tu_image_len(&s);
    assert_true(len_hint > overhead);
    s.payload_len = len_hint - overhead;
    struct img im;
    im.p = tu_image_build(&s, &im.len);
    assert_non_null(im.p);
    im.v = s.version;
    return im;
}

static struct img simple(uint8_t major, uint8_t minor, uint32_t seed)
{
    return mkimg(major, minor, 10000, seed, 0, 0, &key);
}

static void freeimg(struct img *im)
{
    free(im->p);
    im->p = NULL;
}

static void put_primary(struct dev *d, const struct img *im)
{
    assert_int_equal(airlock_sim_flash_load(d->sim, area(d, AIRLOCK_AREA_PRIMARY)->off, im->p,
                                            (uint32_t)im->len),
                     0);
}

/* Stage an update where the engine wants it and request it. */
static void stage_at(struct dev *d, const struct img *im, bool request, bool permanent)
{
    uint32_t at, max_len;
    assert_int_equal(airlock_boot_stage(&d->cfg, &at, &max_len), 0);
    assert_int_equal(airlock_sim_flash_load(d->sim, area(d, AIRLOCK_AREA_SECONDARY)->off + at,
                                            im->p, (uint32_t)im->len),
                     0);
    if (request) {
        assert_int_equal(airlock_boot_request(&d->layout, 0, permanent), 0);
    }
}

static void stage(struct dev *d, const struct img *im, bool permanent)
{
    stage_at(d, im, true, permanent);
}

/* Erase the secondary (what the agent does before writing a new update). */
static void wipe_secondary(struct dev *d)
{
    const airlock_area_t *s = area(d, AIRLOCK_AREA_SECONDARY);
    for (uint32_t off = 0; off < s->size; off += SEC) {
        assert_int_equal(d->fl->erase(d->fl->ctx, s->off + off), 0);
    }
}

static void assert_primary_holds(struct dev *d, const struct img *im)
{
    assert_memory_equal(area_bytes(d, AIRLOCK_AREA_PRIMARY), im->p, im->len);
}

static void assert_version(const airlock_boot_result_t *res, const struct img *im)
{
    assert_int_equal(res->version.major, im->v.major);
    assert_int_equal(res->version.minor, im->v.minor);
}

/*
 * Recompute the hash and the Ed25519 signature of an image built by
 * tu_image_build with `key` after its header was changed.
 */
static void resign(struct img *im)
{
    airlock_image_header_t h;
    airlock_header_decode(im->p, &h);
    size_t hashed = (size_t)h.hdr_size + h.img_size + h.protect_tlv_size;
    uint8_t *info = im->p + hashed;
    assert_int_equal(info[0] | (info[1] << 8), AIRLOCK_TLV_INFO_MAGIC);
    uint8_t *sha = info + 4;
    assert_int_equal(sha[0], AIRLOCK_TLV_SHA256);
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(im->p, hashed, sha + 4, &dl, EVP_sha256(), NULL), 1);
    uint8_t *sig = sha + 36 + 36; /* after SHA256 and KEYHASH */
    assert_int_equal(sig[0], AIRLOCK_TLV_ED25519);
    assert_int_equal(sig[2], 64);
    size_t siglen = 64;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    assert_non_null(mc);
    assert_int_equal(EVP_DigestSignInit(mc, NULL, NULL, NULL, key.pkey), 1);
    assert_int_equal(EVP_DigestSign(mc, sig + 4, &siglen, sha + 4, 32), 1);
    EVP_MD_CTX_free(mc);
}

/* ---- normal boot and failure ------------------------------------------------ */

static void test_normal_boot(void **state)
{
    (void)state;
    for (int e = 0; e < 2; e++) {
        struct dev d;
        airlock_boot_result_t res;
        struct img im = simple(1, 2, 1);
        dev_open(&d, e ? &airlock_engine_swap_2n : &airlock_engine_overwrite);
        put_primary(&d, &im);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_int_equal(res.err, 0);
        assert_int_equal(res.image_off, 32);
        assert_version(&res, &im);
        assert_true(res.confirmed);
        assert_non_null(res.message);
        /* the same again: nothing to do, nothing written to the slots */
        airlock_sim_flash_counts_t c0, c1;
        airlock_sim_flash_counts(d.sim, &c0);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        airlock_sim_flash_counts(d.sim, &c1);
        assert_int_equal(c1.erases, c0.erases);
        assert_int_equal(c1.prog_calls, c0.prog_calls);
        assert_primary_holds(&d, &im);
        freeimg(&im);
        dev_close(&d);
    }
}

static void test_invalid_primary_fails(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    /* blank primary */
    dev_open(&d, &airlock_engine_swap_2n);
    int rc = boot(&d, &res);
    assert_int_not_equal(rc, 0);
    assert_int_equal(res.action, AIRLOCK_BOOT_FAILED);
    assert_int_equal(res.slot, -1);
    assert_int_equal(res.err, rc);
    assert_non_null(res.message);
    /* a corrupted primary */
    struct img im = simple(1, 0, 3);
    im.p[100] ^= 0x40;
    put_primary(&d, &im);
    rc = boot(&d, &res);
    assert_int_equal(rc, AIRLOCK_ERR_HASH_MISMATCH);
    assert_int_equal(res.action, AIRLOCK_BOOT_FAILED);
    assert_int_equal(res.err, AIRLOCK_ERR_HASH_MISMATCH);
    assert_int_equal(res.slot, -1);
    freeimg(&im);
    dev_close(&d);
    /* signed by a key the bootloader does not trust */
    dev_open(&d, &airlock_engine_overwrite);
    im = mkimg(1, 0, 9000, 3, 0, 0, &other_key);
    put_primary(&d, &im);
    rc = boot(&d, &res);
    assert_int_equal(rc, AIRLOCK_ERR_UNKNOWN_KEY);
    assert_int_equal(res.action, AIRLOCK_BOOT_FAILED);
    assert_int_equal(res.slot, -1);
    freeimg(&im);
    dev_close(&d);
}

/* ---- refused requests ------------------------------------------------------- */

/* Boot a refused request; check it is consumed and the primary untouched. */
static void expect_rejected(struct dev *d, const struct img *old, int err)
{
    airlock_boot_result_t res;
    size_t psize = area(d, AIRLOCK_AREA_PRIMARY)->size;
    uint8_t *before = malloc(psize);
    assert_non_null(before);
    memcpy(before, area_bytes(d, AIRLOCK_AREA_PRIMARY), psize);
    boot_ok(d, &res, AIRLOCK_BOOT_REJECTED);
    if (res.err != err) {
        fail_msg("rejected with %s, expected %s", airlock_errname(res.err), airlock_errname(err));
    }
    assert_version(&res, old);
    assert_true(res.confirmed);
    assert_non_null(res.message);
    /* the request is consumed: the next boot is a normal one */
    boot_ok(d, &res, AIRLOCK_BOOT_NORMAL);
    assert_version(&res, old);
    boot_ok(d, &res, AIRLOCK_BOOT_NORMAL);
    /* and the primary was never touched */
    assert_memory_equal(area_bytes(d, AIRLOCK_AREA_PRIMARY), before, psize);
    free(before);
}

static void test_reject_untrusted_key(void **state)
{
    (void)state;
    for (int e = 0; e < 2; e++) {
        struct dev d;
        struct img old = simple(1, 0, 1);
        struct img upd = mkimg(2, 0, 10000, 2, 0, 0, &other_key);
        dev_open(&d, e ? &airlock_engine_swap_2n : &airlock_engine_overwrite);
        put_primary(&d, &old);
        stage(&d, &upd, e == 0);
        expect_rejected(&d, &old, AIRLOCK_ERR_UNKNOWN_KEY);
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
    }
}

static void test_reject_corrupt_payload(void **state)
{
    (void)state;
    for (int e = 0; e < 2; e++) {
        struct dev d;
        struct img old = simple(1, 0, 1);
        struct img upd = simple(2, 0, 2);
        upd.p[5000] ^= 0x01;
        dev_open(&d, e ? &airlock_engine_swap_2n : &airlock_engine_overwrite);
        put_primary(&d, &old);
        stage(&d, &upd, false);
        expect_rejected(&d, &old, AIRLOCK_ERR_HASH_MISMATCH);
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
    }
}

static void test_reject_downgrade(void **state)
{
    (void)state;
    for (int e = 0; e < 2; e++) {
        struct dev d;
        airlock_boot_result_t res;
        struct img old = simple(2, 1, 1);
        struct img upd = simple(2, 0, 2);
        dev_open(&d, e ? &airlock_engine_swap_2n : &airlock_engine_overwrite);
        put_primary(&d, &old);
        stage(&d, &upd, true);
        boot_ok(&d, &res, AIRLOCK_BOOT_REJECTED);
        assert_int_equal(res.err, AIRLOCK_ERR_DOWNGRADE);
        assert_non_null(res.detail.field);
        assert_string_equal(res.detail.field, "header.version");
        assert_version(&res, &old);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_primary_holds(&d, &old);
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
    }
}

static void test_reject_not_bootable(void **state)
{
    (void)state;
    static const uint32_t flags[] = {AIRLOCK_IMAGE_F_NON_BOOTABLE, AIRLOCK_IMAGE_F_ENCRYPTED_AES128,
                                     AIRLOCK_IMAGE_F_ENCRYPTED_AES256};
    for (size_t f = 0; f < 3; f++) {
        struct dev d;
        struct img old = simple(1, 0, 1);
        struct img upd = simple(2, 0, 2);
        airlock_image_header_t h;
        airlock_header_decode(upd.p, &h);
        h.flags |= flags[f];
        airlock_header_encode(&h, upd.p);
        resign(&upd); /* properly signed: refused for its flags alone */
        dev_open(&d, &airlock_engine_swap_2n);
        put_primary(&d, &old);
        stage(&d, &upd, false);
        expect_rejected(&d, &old, AIRLOCK_ERR_NOT_BOOTABLE);
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
    }
}

/* An image running into the secondary's trailer is refused (TOO_BIG). */
static void test_reject_too_big_for_trailer(void **state)
{
    (void)state;
    for (int e = 0; e < 2; e++) {
        struct dev d;
        airlock_boot_result_t res;
        dev_open(&d, e ? &airlock_engine_swap_2n : &airlock_engine_overwrite);
        uint32_t at, max_len;
        assert_int_equal(airlock_boot_stage(&d.cfg, &at, &max_len), 0);
        struct img old = simple(1, 0, 1);
        /* ends 100 bytes into the trailer (trial records), well below the magic */
        struct img upd = mkimg(2, 0, max_len + 100, 2, 0, 0, &key);
        assert_true(upd.len > max_len);
        put_primary(&d, &old);
        stage(&d, &upd, true);
        boot_ok(&d, &res, AIRLOCK_BOOT_REJECTED);
        assert_int_equal(res.err, AIRLOCK_ERR_TOO_BIG);
        assert_version(&res, &old);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_primary_holds(&d, &old);
        /* an image up to the limit is fine */
        freeimg(&upd);
        wipe_secondary(&d);
        upd = mkimg(2, 0, max_len, 2, 0, 0, &key);
        assert_true(upd.len <= max_len);
        stage(&d, &upd, true);
        boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
        assert_primary_holds(&d, &upd);
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
    }
}

/*
 * A secondary larger than the primary: an update that fits the secondary
 * but not the primary must be refused (TOO_BIG) and the old image booted --
 * not fail the boot, which would repeat at every reset.
 */
static void test_reject_too_big_for_primary(void **state)
{
    (void)state;
    char why[2][320];
    int failed = 0;
    for (int e = 0; e < 2; e++) {
        struct dev d;
        airlock_boot_result_t res, res2;
        dev_open_ex(&d, e ? &airlock_engine_swap_2n : &airlock_engine_overwrite, 8, 16, 24, true);
        airlock_trailer_geom_t g = {airlock_layout_max_align(&d.layout), 8, 128};
        uint32_t pstart = airlock_trailer_start(area(&d, AIRLOCK_AREA_PRIMARY), &g);
        struct img old = simple(1, 0, 1);
        struct img upd = mkimg(2, 0, pstart + 2 * SEC, 2, 0, 0, &key);
        put_primary(&d, &old);
        stage(&d, &upd, e == 0);
        int rc = boot(&d, &res);
        int rc2 = boot(&d, &res2);
        if (rc != 0 || res.action != AIRLOCK_BOOT_REJECTED || res.err != AIRLOCK_ERR_TOO_BIG ||
            res.slot != AIRLOCK_AREA_PRIMARY) {
            snprintf(why[failed++], sizeof(why[0]),
                     "%s: update of %zu bytes, primary room %u: boot -> %d (%s), action %s, err "
                     "%s, slot %d; the next boot -> %s, slot %d",
                     d.cfg.engine->name, upd.len, pstart, rc, airlock_errname(rc),
                     airlock_boot_action_name(res.action), airlock_errname(res.err), res.slot,
                     airlock_errname(rc2), res2.slot);
        } else {
            assert_int_equal(rc2, 0);
            assert_int_equal(res2.action, AIRLOCK_BOOT_NORMAL);
            assert_primary_holds(&d, &old);
        }
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
    }
    for (int i = 0; i < failed; i++) {
        print_message("  %s\n", why[i]);
    }
    if (failed) {
        fail_msg("expected REJECTED TOO_BIG, booting the old image");
    }
}

/*
 * swap-2n keeps the old image in the secondary, below the staged update.
 * A valid old image too long for that (a factory image built for the whole
 * primary) must not make every later update request fail the boot.
 */
static void test_swap2n_large_old_image(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    dev_open_ex(&d, &airlock_engine_swap_2n, 8, 16, 16, true);
    airlock_trailer_geom_t g = {8, 8, 128};
    uint32_t pstart = airlock_trailer_start(area(&d, AIRLOCK_AREA_PRIMARY), &g);
    struct img old = mkimg(1, 0, pstart - 16, 1, 0, 0, &key); /* fits the primary */
    assert_true(old.len <= pstart);
    struct img upd = simple(2, 0, 2);
    put_primary(&d, &old);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    stage(&d, &upd, false);
    int rc = boot(&d, &res);
    if (rc != 0 || res.slot != AIRLOCK_AREA_PRIMARY) {
        char why[320];
        snprintf(why, sizeof(why),
                 "old image of %zu bytes (primary room %u): boot -> %d (%s), action %s, err %s, "
                 "slot %d; expected a bootable primary (update installed or refused)",
                 old.len, pstart, rc, airlock_errname(rc), airlock_boot_action_name(res.action),
                 airlock_errname(res.err), res.slot);
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
        fail_msg("%s", why);
    }
    assert_true(res.action == AIRLOCK_BOOT_REJECTED || res.action == AIRLOCK_BOOT_INSTALLED);
    if (res.action == AIRLOCK_BOOT_REJECTED) {
        assert_int_equal(res.err, AIRLOCK_ERR_TOO_BIG);
    }
    /* and the device settles */
    rc = boot(&d, &res);
    assert_int_equal(rc, 0);
    assert_int_equal(res.slot, AIRLOCK_AREA_PRIMARY);
    freeimg(&old);
    freeimg(&upd);
    dev_close(&d);
}

/* ---- security counter --------------------------------------------------------- */

static void test_sec_cnt_rollback(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    dev_open(&d, &airlock_engine_swap_2n);
    struct img v1 = mkimg(1, 0, 10000, 1, 1, 1, &key);
    struct img v2 = mkimg(2, 0, 12000, 2, 1, 5, &key);
    put_primary(&d, &v1);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_true(d.journal.has_sec_cnt);
    assert_int_equal(d.journal.sec_cnt, 1);

    /* install and confirm SEC_CNT 5: the journal keeps it */
    stage(&d, &v2, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_false(res.confirmed);
    assert_int_equal(d.journal.sec_cnt, 1); /* not before it is confirmed */
    assert_int_equal(airlock_boot_confirm(&d.layout, 0), 0);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_true(res.confirmed);
    assert_version(&res, &v2);
    assert_true(d.journal.has_sec_cnt);
    assert_int_equal(d.journal.sec_cnt, 5);

    /* a newer version with SEC_CNT 4 is refused */
    struct img v3 = mkimg(3, 0, 11000, 3, 1, 4, &key);
    wipe_secondary(&d);
    stage(&d, &v3, true);
    boot_ok(&d, &res, AIRLOCK_BOOT_REJECTED);
    assert_int_equal(res.err, AIRLOCK_ERR_SEC_CNT_ROLLBACK);
    assert_true(res.detail.has_values);
    assert_int_equal(res.detail.expected, 5);
    assert_int_equal(res.detail.found, 4);
    assert_version(&res, &v2);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);

    /* ... and so is one without any counter */
    struct img v3n = mkimg(3, 0, 11000, 4, 0, 0, &key);
    wipe_secondary(&d);
    stage(&d, &v3n, true);
    boot_ok(&d, &res, AIRLOCK_BOOT_REJECTED);
    assert_int_equal(res.err, AIRLOCK_ERR_SEC_CNT_ROLLBACK);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);

    /*
     * The floor lives in the status area, not in the running image: with the
     * primary replaced by an image carrying SEC_CNT 1 (a debugger reflash),
     * SEC_CNT 4 is still refused.
     */
    const airlock_area_t *p = area(&d, AIRLOCK_AREA_PRIMARY);
    for (uint32_t off = 0; off < p->size; off += SEC) {
        assert_int_equal(d.fl->erase(d.fl->ctx, p->off + off), 0);
    }
    struct img v25 = mkimg(2, 5, 10000, 5, 1, 1, &key);
    put_primary(&d, &v25);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_int_equal(d.journal.sec_cnt, 5);
    wipe_secondary(&d);
    stage(&d, &v3, true);
    boot_ok(&d, &res, AIRLOCK_BOOT_REJECTED);
    assert_int_equal(res.err, AIRLOCK_ERR_SEC_CNT_ROLLBACK);
    assert_int_equal(res.detail.expected, 5);
    assert_version(&res, &v25);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);

    /* an unconfirmed trial does not raise the floor */
    struct img v4 = mkimg(4, 0, 10000, 6, 1, 9, &key);
    wipe_secondary(&d);
    stage(&d, &v4, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_version(&res, &v4);
    boot_ok(&d, &res, AIRLOCK_BOOT_REVERTED);
    assert_version(&res, &v25);
    assert_int_equal(d.journal.sec_cnt, 5);
    /* equal to the floor is allowed */
    struct img v5 = mkimg(5, 0, 10000, 7, 1, 5, &key);
    wipe_secondary(&d);
    stage(&d, &v5, true);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_version(&res, &v5);
    assert_true(res.confirmed);
    assert_primary_holds(&d, &v5);

    freeimg(&v1);
    freeimg(&v2);
    freeimg(&v3);
    freeimg(&v3n);
    freeimg(&v25);
    freeimg(&v4);
    freeimg(&v5);
    dev_close(&d);
}

/* ---- trials, confirm, revert (swap-2n) --------------------------------------- */

static void test_swap2n_test_not_confirmed_reverts(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img old = simple(1, 0, 1);
    struct img upd = mkimg(1, 1, 14000, 2, 0, 0, &key);
    dev_open(&d, &airlock_engine_swap_2n);
    put_primary(&d, &old);
    stage(&d, &upd, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_false(res.confirmed);
    assert_version(&res, &upd);
    assert_primary_holds(&d, &upd);
    /* MCUboot's marks for the application: magic and copy_done, no image_ok */
    airlock_trailer_t t;
    airlock_trailer_geom_t g = {8, 8, 128};
    assert_int_equal(airlock_trailer_load(area(&d, AIRLOCK_AREA_PRIMARY), &g, &t), 0);
    assert_int_equal(t.magic, AIRLOCK_FIELD_SET);
    assert_int_equal(t.copy_done, AIRLOCK_FIELD_SET);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);

    boot_ok(&d, &res, AIRLOCK_BOOT_REVERTED);
    assert_version(&res, &old);
    assert_true(res.confirmed);
    assert_primary_holds(&d, &old);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_version(&res, &old);
    assert_true(res.confirmed);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_primary_holds(&d, &old);
    freeimg(&old);
    freeimg(&upd);
    dev_close(&d);
}

static void test_swap2n_three_trials(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img old = simple(1, 0, 1);
    struct img upd = simple(1, 1, 2);
    dev_open(&d, &airlock_engine_swap_2n);
    d.cfg.max_trials = 3;
    put_primary(&d, &old);
    stage(&d, &upd, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_false(res.confirmed);
    boot_ok(&d, &res, AIRLOCK_BOOT_TRIAL);
    assert_false(res.confirmed);
    assert_version(&res, &upd);
    boot_ok(&d, &res, AIRLOCK_BOOT_TRIAL);
    assert_false(res.confirmed);
    boot_ok(&d, &res, AIRLOCK_BOOT_REVERTED);
    assert_version(&res, &old);
    assert_primary_holds(&d, &old);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    freeimg(&old);
    freeimg(&upd);
    dev_close(&d);
}

static void test_swap2n_confirmed_stays(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img old = simple(1, 0, 1);
    struct img upd = simple(1, 1, 2);
    dev_open(&d, &airlock_engine_swap_2n);
    d.cfg.max_trials = 2;
    put_primary(&d, &old);
    stage(&d, &upd, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_false(res.confirmed);
    assert_int_equal(airlock_boot_confirm(&d.layout, 0), 0);
    assert_int_equal(airlock_boot_confirm(&d.layout, 0), 0); /* idempotent */
    no_violations(&d);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_true(res.confirmed);
    assert_version(&res, &upd);
    for (int i = 0; i < 3; i++) {
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_true(res.confirmed);
        assert_version(&res, &upd);
    }
    assert_primary_holds(&d, &upd);
    freeimg(&old);
    freeimg(&upd);
    dev_close(&d);
}

static void test_swap2n_perm(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img old = simple(1, 0, 1);
    struct img upd = simple(1, 1, 2);
    dev_open(&d, &airlock_engine_swap_2n);
    put_primary(&d, &old);
    stage(&d, &upd, true);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_true(res.confirmed);
    assert_version(&res, &upd);
    assert_primary_holds(&d, &upd);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_true(res.confirmed);
    assert_version(&res, &upd);
    freeimg(&old);
    freeimg(&upd);
    dev_close(&d);
}

/*
 * Two updates in a row: the first confirmed, the second not. The second must
 * go back to the first (no stale image_ok or trial record from the first
 * update's trailer may confirm or shorten the second's trial).
 */
static void test_swap2n_two_updates(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img v1 = simple(1, 0, 1);
    struct img v2 = mkimg(1, 1, 20000, 2, 0, 0, &key);
    struct img v3 = mkimg(1, 2, 15000, 3, 0, 0, &key);
    dev_open(&d, &airlock_engine_swap_2n);
    d.cfg.max_trials = 2;
    put_primary(&d, &v1);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    stage(&d, &v2, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    boot_ok(&d, &res, AIRLOCK_BOOT_TRIAL);
    assert_int_equal(airlock_boot_confirm(&d.layout, 0), 0);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_version(&res, &v2);
    assert_true(res.confirmed);

    wipe_secondary(&d);
    stage(&d, &v3, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_version(&res, &v3);
    assert_false(res.confirmed);
    airlock_trailer_t t;
    airlock_trailer_geom_t g = {8, 8, 128};
    assert_int_equal(airlock_trailer_load(area(&d, AIRLOCK_AREA_PRIMARY), &g, &t), 0);
    assert_int_equal(t.image_ok, AIRLOCK_FIELD_UNSET);
    uint32_t used = 0;
    assert_int_equal(airlock_trailer_trials(area(&d, AIRLOCK_AREA_PRIMARY), &g, &used), 0);
    assert_int_equal(used, 1);
    boot_ok(&d, &res, AIRLOCK_BOOT_TRIAL);
    assert_version(&res, &v3);
    boot_ok(&d, &res, AIRLOCK_BOOT_REVERTED);
    assert_version(&res, &v2);
    assert_primary_holds(&d, &v2);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_version(&res, &v2);
    freeimg(&v1);
    freeimg(&v2);
    freeimg(&v3);
    dev_close(&d);
}

/*
 * An update on trial confirms itself and, before any reset, downloads and
 * requests the next one (a device that polls right after its health checks).
 * The next boot both ends the trial and installs the new request: it must not
 * take an extra reboot to notice it.
 */
static void test_swap2n_confirm_then_request(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img v1 = simple(1, 0, 1);
    struct img v2 = mkimg(1, 1, 20000, 2, 0, 0, &key);
    struct img v3 = mkimg(1, 2, 15000, 3, 0, 0, &key);
    dev_open(&d, &airlock_engine_swap_2n);
    d.cfg.max_trials = 2;
    put_primary(&d, &v1);
    stage(&d, &v2, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_version(&res, &v2);
    assert_int_equal(airlock_boot_confirm(&d.layout, 0), 0);
    wipe_secondary(&d);
    stage(&d, &v3, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_version(&res, &v3);
    assert_false(res.confirmed);
    /* v3 is on its own trial, with v2 (confirmed) to go back to */
    boot_ok(&d, &res, AIRLOCK_BOOT_TRIAL);
    boot_ok(&d, &res, AIRLOCK_BOOT_REVERTED);
    assert_version(&res, &v2);
    assert_primary_holds(&d, &v2);
    /* and with nothing new requested, a confirmed trial just boots */
    wipe_secondary(&d);
    stage(&d, &v3, false);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_int_equal(airlock_boot_confirm(&d.layout, 0), 0);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    assert_version(&res, &v3);
    assert_true(res.confirmed);
    assert_non_null(strstr(res.message, "confirmed by the image"));
    freeimg(&v1);
    freeimg(&v2);
    freeimg(&v3);
    dev_close(&d);
}

/*
 * A blank primary (first install) given a TEST update that is never
 * confirmed: there is nothing to go back to, so the device must keep
 * booting a verified image rather than revert to an empty slot.
 */
static void test_swap2n_test_on_blank_primary(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img upd = simple(1, 0, 2);
    dev_open(&d, &airlock_engine_swap_2n);
    stage(&d, &upd, false);
    int rc = boot(&d, &res);
    assert_int_equal(rc, 0);
    assert_int_equal(res.action, AIRLOCK_BOOT_INSTALLED);
    char why[256] = "";
    for (int i = 0; i < 3 && !why[0]; i++) {
        rc = boot(&d, &res);
        if (rc != 0 || res.slot != AIRLOCK_AREA_PRIMARY) {
            snprintf(why, sizeof(why), "boot %d after the install -> %s, action %s: %s", i + 2,
                     airlock_errname(rc), airlock_boot_action_name(res.action),
                     res.message ? res.message : "");
        }
    }
    freeimg(&upd);
    dev_close(&d);
    if (why[0]) {
        fail_msg("%s", why);
    }
}

/* The whole life of an update on every write size (trailer spacing 8 to 32). */
static void test_swap2n_write_sizes(void **state)
{
    (void)state;
    static const uint32_t ws[] = {1, 2, 4, 16, 32};
    for (size_t w = 0; w < sizeof(ws) / sizeof(ws[0]); w++) {
        struct dev d;
        airlock_boot_result_t res;
        struct img v1 = simple(1, 0, 1);
        struct img v2 = mkimg(1, 1, 17000, 2, 1, 2, &key);
        struct img v3 = mkimg(1, 2, 9000, 3, 1, 3, &key);
        dev_open_ex(&d, &airlock_engine_swap_2n, ws[w], 20, 20, true);
        put_primary(&d, &v1);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        /* a trial that is not confirmed */
        stage(&d, &v2, false);
        boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
        assert_version(&res, &v2);
        boot_ok(&d, &res, AIRLOCK_BOOT_REVERTED);
        assert_primary_holds(&d, &v1);
        /* one that is */
        wipe_secondary(&d);
        stage(&d, &v2, false);
        boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
        assert_int_equal(airlock_boot_confirm(&d.layout, 0), 0);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_true(res.confirmed);
        assert_version(&res, &v2);
        assert_int_equal(d.journal.sec_cnt, 2);
        /* and a permanent one */
        wipe_secondary(&d);
        stage(&d, &v3, true);
        boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
        assert_true(res.confirmed);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_version(&res, &v3);
        assert_primary_holds(&d, &v3);
        assert_int_equal(d.journal.sec_cnt, 3);
        freeimg(&v1);
        freeimg(&v2);
        freeimg(&v3);
        dev_close(&d);
    }
}

/* A power cut in the middle of a swap: the next boot finishes it. */
static void test_swap2n_resume(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img old = mkimg(1, 0, 30000, 1, 0, 0, &key);
    struct img upd = mkimg(1, 1, 28000, 2, 0, 0, &key);
    dev_open(&d, &airlock_engine_swap_2n);
    put_primary(&d, &old);
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    stage(&d, &upd, false);
    airlock_sim_flash_cut_at(d.sim, 12);
    assert_int_equal(boot(&d, &res), AIRLOCK_ERR_IO);
    assert_int_equal(res.slot, -1);
    airlock_sim_flash_power_on(d.sim);
    boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_version(&res, &upd);
    assert_false(res.confirmed);
    assert_primary_holds(&d, &upd);
    boot_ok(&d, &res, AIRLOCK_BOOT_REVERTED);
    assert_primary_holds(&d, &old);
    freeimg(&old);
    freeimg(&upd);
    dev_close(&d);
}

/* ---- overwrite ---------------------------------------------------------------- */

static void test_overwrite_test_is_permanent(void **state)
{
    (void)state;
    struct dev d;
    airlock_boot_result_t res;
    struct img old = simple(1, 0, 1);
    struct img upd = simple(1, 1, 2);
    for (int status = 0; status <= 1; status++) {
        dev_open_ex(&d, &airlock_engine_overwrite, 8, 20, 20, status);
        put_primary(&d, &old);
        stage(&d, &upd, false); /* a TEST request */
        boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
        assert_true(res.confirmed);
        assert_non_null(res.message);
        assert_non_null(strstr(res.message, "permanent"));
        assert_version(&res, &upd);
        assert_primary_holds(&d, &upd);
        /* no trial, no revert */
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_true(res.confirmed);
        assert_version(&res, &upd);
        boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
        assert_primary_holds(&d, &upd);
        dev_close(&d);
    }
    freeimg(&old);
    freeimg(&upd);
}

/* ---- staging, watchdog, request bytes ----------------------------------------- */

static void test_stage(void **state)
{
    (void)state;
    struct dev d;
    uint32_t at = 99, max_len = 0;
    airlock_trailer_geom_t g = {8, 8, 128};
    dev_open(&d, &airlock_engine_overwrite);
    uint32_t tstart = airlock_trailer_start(area(&d, AIRLOCK_AREA_PRIMARY), &g);
    assert_int_equal(airlock_boot_stage(&d.cfg, &at, &max_len), 0);
    assert_int_equal(at, 0);
    assert_int_equal(max_len, tstart);
    dev_close(&d);
    /* swap-2n on 4 KiB sectors: one chunk, i.e. one sector, in front */
    dev_open(&d, &airlock_engine_swap_2n);
    assert_int_equal(airlock_boot_stage(&d.cfg, &at, &max_len), 0);
    assert_int_equal(at, SEC);
    assert_int_equal(max_len, tstart - SEC);
    dev_close(&d);
    /* a configuration error is reported */
    dev_open_ex(&d, &airlock_engine_swap_2n, 8, 20, 20, false);
    assert_int_equal(airlock_boot_stage(&d.cfg, &at, &max_len), AIRLOCK_ERR_LAYOUT);
    dev_close(&d);
}

static void test_watchdog_fed(void **state)
{
    (void)state;
    for (int e = 0; e < 2; e++) {
        struct dev d;
        airlock_boot_result_t res;
        struct img old = mkimg(1, 0, 30000, 1, 0, 0, &key);
        struct img upd = mkimg(1, 1, 30000, 2, 0, 0, &key);
        dev_open(&d, e ? &airlock_engine_swap_2n : &airlock_engine_overwrite);
        put_primary(&d, &old);
        stage(&d, &upd, true);
        d.feeds = 0;
        boot_ok(&d, &res, AIRLOCK_BOOT_INSTALLED);
        /* at least once per sector erased */
        assert_true(d.feeds >= 8);
        freeimg(&old);
        freeimg(&upd);
        dev_close(&d);
    }
}

/* airlock_boot_request writes what `imgtool sign --pad [--confirm]` writes. */
static void test_request_matches_imgtool(void **state)
{
    (void)state;
    static const char *const names[2] = {"ed25519-pad-test.signed.bin",
                                         "hash-only-pad-confirm.signed.bin"};
    for (int perm = 0; perm <= 1; perm++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/vectors/imgtool/%s", AIRLOCK_SHARED_DIR, names[perm]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        uint8_t tail[64];
        assert_int_equal(fseek(f, -64, SEEK_END), 0);
        assert_int_equal(fread(tail, 1, 64, f), 64);
        fclose(f);
        struct dev d;
        dev_open(&d, &airlock_engine_swap_2n);
        assert_int_equal(airlock_boot_request(&d.layout, 0, perm), 0);
        const airlock_area_t *s = area(&d, AIRLOCK_AREA_SECONDARY);
        assert_memory_equal(area_bytes(&d, AIRLOCK_AREA_SECONDARY) + s->size - 64, tail, 64);
        dev_close(&d);
    }
}

/* ---- configuration errors ------------------------------------------------------ */

static void expect_config_error(struct dev *d, int err, const char *what)
{
    airlock_boot_result_t res;
    airlock_sim_flash_counts_t c0, c1;
    airlock_sim_flash_counts(d->sim, &c0);
    int rc = boot(d, &res);
    if (rc != err) {
        fail_msg("config error (%s): boot -> %s, expected %s", what, airlock_errname(rc),
                 airlock_errname(err));
    }
    assert_int_equal(res.action, AIRLOCK_BOOT_FAILED);
    assert_int_equal(res.err, err);
    assert_int_equal(res.slot, -1);
    /* nothing written */
    airlock_sim_flash_counts(d->sim, &c1);
    assert_int_equal(c1.erases, c0.erases);
    assert_int_equal(c1.prog_calls, c0.prog_calls);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct dev d;
    struct img old = simple(1, 0, 1);
    dev_open(&d, &airlock_engine_swap_2n);
    put_primary(&d, &old);
    airlock_boot_cfg_t good = d.cfg;

    d.cfg.nkeys = 0; /* no keys, unsigned not allowed */
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "no keys, unsigned not allowed");
    d.cfg = good;
    d.cfg.keys = NULL; /* nkeys 1 but no array */
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "keys NULL");
    d.cfg = good;
    d.cfg.buf_len = 4080; /* not a multiple of 32 */
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "buf_len 4080");
    d.cfg.buf_len = 32; /* below 64 */
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "buf_len 32");
    d.cfg = good;
    d.cfg.buf = NULL;
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "buf NULL");
    d.cfg = good;
    d.cfg.max_trials = 0;
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "max_trials 0");
    d.cfg.max_trials = AIRLOCK_TRIAL_MAX + 1;
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "max_trials > AIRLOCK_TRIAL_MAX");
    d.cfg = good;
    d.cfg.crypto = NULL;
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "crypto NULL");
    d.cfg = good;
    d.cfg.engine = NULL;
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "engine NULL");
    d.cfg = good;
    d.cfg.layout = NULL;
    expect_config_error(&d, AIRLOCK_ERR_INVAL, "layout NULL");
    /* an invalid layout: the detail names the area */
    airlock_layout_t bad = d.layout;
    bad.area[AIRLOCK_AREA_SECONDARY].off += 512;
    d.cfg = good;
    d.cfg.layout = &bad;
    airlock_boot_result_t res;
    assert_int_equal(boot(&d, &res), AIRLOCK_ERR_INVAL);
    assert_int_equal(res.action, AIRLOCK_BOOT_FAILED);
    assert_non_null(res.detail.field);
    assert_string_equal(res.detail.field, "secondary.offset");

    /* the bounds themselves are fine */
    d.cfg = good;
    d.cfg.max_trials = AIRLOCK_TRIAL_MAX;
    d.cfg.buf_len = 64;
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    /* hash-only images need allow_unsigned */
    d.cfg = good;
    d.cfg.nkeys = 0;
    d.cfg.keys = NULL;
    d.cfg.allow_unsigned = true;
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    dev_close(&d);

    /* swap-2n without a status area */
    dev_open_ex(&d, &airlock_engine_swap_2n, 8, 20, 20, false);
    put_primary(&d, &old);
    expect_config_error(&d, AIRLOCK_ERR_LAYOUT, "swap-2n without status area");
    assert_non_null(strstr(airlock_strerror(AIRLOCK_ERR_LAYOUT), "layout"));
    /* overwrite is fine without one */
    d.cfg.engine = &airlock_engine_overwrite;
    boot_ok(&d, &res, AIRLOCK_BOOT_NORMAL);
    dev_close(&d);
    freeimg(&old);
}

/* ---- erase budget --------------------------------------------------------------- */

/* One install boot of an image spanning n sectors; returns the sim's erases. */
static uint64_t install_erases(struct dev *d, uint32_t n, bool permanent, bool fresh_journal,
                               uint32_t *stats_erases, uint64_t *sim_progs, uint32_t *stats_progs)
{
    airlock_boot_result_t res;
    struct img old = mkimg(1, 0, n * SEC - 300, 1, 0, 0, &key);
    struct img upd = mkimg(1, 1, n * SEC - 200, 2, 0, 0, &key);
    assert_true(old.len > (n - 1) * SEC && old.len <= n * SEC);
    assert_true(upd.len > (n - 1) * SEC && upd.len <= n * SEC);
    put_primary(d, &old);
    if (!fresh_journal) {
        boot_ok(d, &res, AIRLOCK_BOOT_NORMAL);
    }
    stage(d, &upd, permanent);
    airlock_sim_flash_reset_counts(d->sim);
    boot_ok(d, &res, AIRLOCK_BOOT_INSTALLED);
    assert_primary_holds(d, &upd);
    airlock_sim_flash_counts_t c;
    airlock_sim_flash_counts(d->sim, &c);
    *stats_erases = d->stats.erases;
    *stats_progs = d->stats.progs;
    *sim_progs = c.prog_calls;
    freeimg(&old);
    freeimg(&upd);
    return c.erases;
}

static void test_swap2n_erase_budget(void **state)
{
    (void)state;
    const uint32_t n = 16;
    struct dev d;
    uint32_t se, sp;
    uint64_t pr;
    /* TEST: each image sector erased once per slot, plus O(1) */
    dev_open(&d, &airlock_engine_swap_2n);
    uint64_t e = install_erases(&d, n, false, false, &se, &pr, &sp);
    print_message("  swap-2n TEST, %u sectors: %llu erases (stats say %u)\n", n,
                  (unsigned long long)e, se);
    assert_true(e >= 2 * n);
    assert_true(e <= 2 * n + 2);
    assert_true(se >= 2 * n);
    assert_true(se <= 2 * n + 2);
    /* no sector of the device erased twice */
    assert_true(airlock_sim_flash_max_erases(d.sim, NULL) <= 1);
    dev_close(&d);
    /* PERM: nothing to keep, the secondary is only read */
    dev_open(&d, &airlock_engine_swap_2n);
    e = install_erases(&d, n, true, false, &se, &pr, &sp);
    print_message("  swap-2n PERM, %u sectors: %llu erases (stats say %u)\n", n,
                  (unsigned long long)e, se);
    assert_true(e >= n);
    assert_true(e <= n + 2);
    assert_true(se >= n);
    assert_true(se <= n + 2);
    dev_close(&d);
}

/*
 * airlock_boot_t.stats: "flash operation counts of one airlock_boot call".
 * They must agree with what the flash performed, including the journal's
 * own erases and programs and the trailer writes.
 */
static void test_stats_match_flash(void **state)
{
    (void)state;
    const uint32_t n = 16;
    struct dev d;
    uint32_t se, sp;
    uint64_t pr;
    /* first boot ever: the journal is formatted in the same call */
    dev_open(&d, &airlock_engine_swap_2n);
    uint64_t e = install_erases(&d, n, false, true, &se, &pr, &sp);
    dev_close(&d);
    assert_true(e <= 2 * n + 2);
    if (se != e || sp != pr) {
        fail_msg("airlock_boot_t.stats: %u erases, %u progs; the flash performed %llu erases, "
                 "%llu progs",
                 se, sp, (unsigned long long)e, (unsigned long long)pr);
    }
}

static int setup(void **state)
{
    (void)state;
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
        cmocka_unit_test(test_normal_boot),
        cmocka_unit_test(test_invalid_primary_fails),
        cmocka_unit_test(test_reject_untrusted_key),
        cmocka_unit_test(test_reject_corrupt_payload),
        cmocka_unit_test(test_reject_downgrade),
        cmocka_unit_test(test_reject_not_bootable),
        cmocka_unit_test(test_reject_too_big_for_trailer),
        cmocka_unit_test(test_reject_too_big_for_primary),
        cmocka_unit_test(test_swap2n_large_old_image),
        cmocka_unit_test(test_sec_cnt_rollback),
        cmocka_unit_test(test_swap2n_test_not_confirmed_reverts),
        cmocka_unit_test(test_swap2n_three_trials),
        cmocka_unit_test(test_swap2n_confirmed_stays),
        cmocka_unit_test(test_swap2n_perm),
        cmocka_unit_test(test_swap2n_two_updates),
        cmocka_unit_test(test_swap2n_confirm_then_request),
        cmocka_unit_test(test_swap2n_test_on_blank_primary),
        cmocka_unit_test(test_swap2n_write_sizes),
        cmocka_unit_test(test_swap2n_resume),
        cmocka_unit_test(test_overwrite_test_is_permanent),
        cmocka_unit_test(test_stage),
        cmocka_unit_test(test_watchdog_fed),
        cmocka_unit_test(test_request_matches_imgtool),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_swap2n_erase_budget),
        cmocka_unit_test(test_stats_match_flash),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
