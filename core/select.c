/*
 * Slot-selecting engines: direct-xip (run the chosen slot in place) and
 * ram-load (copy the chosen image into RAM and verify it there, so flash
 * cannot change under the check). Nothing is moved between slots; each slot's
 * own trailer says what it is:
 *   image_ok set             a confirmed image;
 *   magic set, image_ok not  an update on trial (one record per trial boot);
 *   swap_info written        rejected (failed its trials): never again;
 *   erased trailer           the factory image, in the primary.
 * The newest valid image whose trailer says confirmed or on trial boots (the
 * primary on a tie); a blank primary only when there is no such image, and
 * anything else that verifies (a downloaded but never requested update, a
 * torn request) only as a last resort, so no update boots for good without
 * its request and trial. The only
 * writes are a trial record and a rejection mark, each one program of one
 * erased unit: a reset at any point leaves every slot's state readable, and
 * a torn mark counts as written.
 */
#include <string.h>

#include "boot_priv.h"
#include "journal.h"

struct cand {
    int id;
    bool eligible;
    bool trial;
    int tier; /* preference, 1 best (see look()) */
    struct slot_check sc;
    airlock_trailer_t t;
};

/* Is the image's load range inside the configured RAM region? */
static bool fits_ram(const airlock_boot_cfg_t *cfg, const airlock_image_t *img)
{
    uint32_t a = img->hdr.load_addr;
    return cfg->ram && (img->hdr.flags & AIRLOCK_IMAGE_F_RAM_LOAD) && a >= cfg->ram_base &&
           (uint64_t)(a - cfg->ram_base) + img->end <= cfg->ram_size;
}

static int look(airlock_boot_t *b, struct cand *c, int id, bool ram, uint32_t floor, bool has_floor)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    int rc = boot_check_slot(b, id, 0, &c->sc);
    if (rc == AIRLOCK_ERR_IO) {
        return rc;
    }
    int trc = airlock_trailer_load(boot_area(b, id), &b->geom[id], &c->t);
    if (trc) {
        return trc;
    }
    /*
     * 1: the trailer says confirmed or on trial. 2: a blank primary (the
     * factory image). 3: anything else that verifies (a blank secondary, a
     * torn request): only when nothing better is left.
     */
    bool blank = c->t.magic == AIRLOCK_FIELD_UNSET && c->t.image_ok == AIRLOCK_FIELD_UNSET;
    c->tier = c->t.image_ok != AIRLOCK_FIELD_UNSET || c->t.magic == AIRLOCK_FIELD_SET ? 1
              : blank && id == AIRLOCK_AREA_PRIMARY                                   ? 2
                                                                                      : 3;
    c->eligible = rc == 0 && !c->t.swap_info_set &&
                  (!has_floor || (c->sc.vr.has_sec_cnt && c->sc.vr.sec_cnt >= floor)) &&
                  (!ram || fits_ram(b->cfg, &c->sc.img));
    c->trial = c->t.magic == AIRLOCK_FIELD_SET && c->t.image_ok == AIRLOCK_FIELD_UNSET;
    return 0;
}

static int ram_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    const uint8_t *ram = ctx;
    memcpy(buf, ram + off, len);
    return 0;
}

/* Copy the chosen image into RAM and verify the copy, not the flash. */
static int load_into_ram(airlock_boot_t *b, const struct cand *c, airlock_boot_result_t *res)
{
    const airlock_boot_cfg_t *cfg = b->cfg;
    const airlock_image_t *img = &c->sc.img;
    uint8_t *dst = cfg->ram + (img->hdr.load_addr - cfg->ram_base);
    int rc = boot_read(boot_area(b, c->id), 0, dst, img->end);
    if (rc) {
        return rc;
    }
    airlock_source_t src = {ram_read, dst, img->end};
    airlock_image_t copy;
    airlock_verify_result_t vr;
    airlock_verify_cfg_t vc = {cfg->crypto, cfg->keys, cfg->nkeys, cfg->buf, cfg->buf_len};
    rc = airlock_image_parse(&src, &copy, &res->detail);
    if (rc == 0) {
        rc = airlock_image_verify(&src, &copy, &vc, &vr, &res->detail);
    }
    if (rc == 0 && (!vr.hash_ok || (cfg->nkeys > 0 && vr.key_index < 0))) {
        rc = AIRLOCK_ERR_CRYPTO;
    }
    if (rc) {
        memset(dst, 0, img->end); /* never leave an unverified image in RAM */
        return rc;
    }
    res->ram_addr = img->hdr.load_addr;
    res->ram_len = img->end;
    return 0;
}

static int choose(airlock_boot_t *b, airlock_boot_result_t *res, bool ram)
{
    struct cand c[2];
    uint32_t floor = 0;
    bool has_floor = b->has_journal && b->journal.has_sec_cnt;
    if (has_floor) {
        floor = b->journal.sec_cnt;
    }
    for (int i = 0; i < 2; i++) {
        int rc = look(b, &c[i], i == 0 ? AIRLOCK_AREA_PRIMARY : AIRLOCK_AREA_SECONDARY, ram, floor,
                      has_floor);
        if (rc) {
            return rc;
        }
    }
    bool rejected = false;
    for (int round = 0; round < 4; round++) {
        struct cand *best = NULL;
        for (int i = 0; i < 2; i++) {
            if (c[i].eligible &&
                (!best || c[i].tier < best->tier ||
                 (c[i].tier == best->tier &&
                  airlock_version_cmp(&c[i].sc.img.hdr.version, &best->sc.img.hdr.version) > 0))) {
                best = &c[i];
            }
        }
        if (!best) {
            break;
        }
        const airlock_area_t *a = boot_area(b, best->id);
        const airlock_trailer_geom_t *g = &b->geom[best->id];
        int rc;
        if (best->trial) {
            uint32_t used;
            rc = airlock_trailer_trials(a, g, &used);
            if (rc == 0 && used < b->cfg->max_trials) {
                rc = airlock_trailer_add_trial(a, g);
                if (rc == 0) {
                    boot_set_result(res, used == 0 ? AIRLOCK_BOOT_INSTALLED : AIRLOCK_BOOT_TRIAL, 0,
                                    used == 0 ? "booting the requested update for its first trial"
                                              : "booting the unconfirmed update for another trial");
                    goto hand_over;
                }
            }
            if (rc && rc != AIRLOCK_ERR_NOMEM) {
                return rc;
            }
            /* Out of trials: mark the slot rejected and take the next best. */
            rc = airlock_trailer_write_flag(a, g, AIRLOCK_FLAG_SWAP_INFO, AIRLOCK_SWAP_REVERT);
            if (rc) {
                return rc;
            }
            best->eligible = false;
            rejected = true;
            continue;
        }
        boot_set_result(res, rejected ? AIRLOCK_BOOT_REVERTED : AIRLOCK_BOOT_NORMAL, 0,
                        rejected ? "update was not confirmed in its trial boots: booting the "
                                   "previous image"
                                 : "booting the newest confirmed image");
        /* A permanent request's first boot: note it (copy_done) and say so. */
        if (best->t.magic == AIRLOCK_FIELD_SET && best->t.image_ok == AIRLOCK_FIELD_SET &&
            best->t.copy_done == AIRLOCK_FIELD_UNSET) {
            rc = airlock_trailer_write_flag(a, g, AIRLOCK_FLAG_COPY_DONE, 0x01);
            if (rc) {
                return rc;
            }
            if (!rejected) {
                boot_set_result(res, AIRLOCK_BOOT_INSTALLED, 0,
                                "booting the update requested for good");
            }
        }
        if (b->has_journal && best->sc.vr.has_sec_cnt &&
            (!has_floor || best->sc.vr.sec_cnt > floor)) {
            rc = journal_append(&b->journal, JR_SECCNT, best->sc.vr.sec_cnt, 0);
            if (rc) {
                return rc;
            }
        }
    hand_over:
        if (ram) {
            rc = load_into_ram(b, best, res);
            if (rc == AIRLOCK_ERR_IO) {
                return rc;
            }
            if (rc) {
                best->eligible = false; /* the RAM copy did not verify */
                continue;
            }
        }
        res->slot = best->id;
        res->image_off = best->sc.img.hdr.hdr_size;
        res->version = best->sc.img.hdr.version;
        res->confirmed = !best->trial;
        return 0;
    }
    boot_set_result(res, AIRLOCK_BOOT_FAILED, AIRLOCK_ERR_NO_SIGNATURE,
                    "no slot holds a valid, eligible image: not booting");
    res->slot = -1;
    return AIRLOCK_ERR_NO_SIGNATURE;
}

static int select_xip(airlock_boot_t *b, airlock_boot_result_t *res)
{
    return choose(b, res, false);
}

static int select_ram(airlock_boot_t *b, airlock_boot_result_t *res)
{
    return choose(b, res, true);
}

static int check_ram(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    if (b->cfg->ram && b->cfg->ram_size) {
        return 0;
    }
    if (det) {
        det->field = "ram region (ram-load needs cfg.ram and cfg.ram_size)";
        det->offset = 0;
        det->has_values = 0;
    }
    return AIRLOCK_ERR_LAYOUT;
}

static int check_xip(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    (void)b;
    (void)det;
    return 0;
}

const airlock_engine_t airlock_engine_direct_xip = {
    .name = "direct-xip",
    .caps = AIRLOCK_ENGINE_CAN_REVERT,
    .check = check_xip,
    .stage_offset = NULL,
    .reserve = NULL,
    .select = select_xip,
    .install = NULL,
    .revert = NULL,
};

const airlock_engine_t airlock_engine_ram_load = {
    .name = "ram-load",
    .caps = AIRLOCK_ENGINE_CAN_REVERT,
    .check = check_ram,
    .stage_offset = NULL,
    .reserve = NULL,
    .select = select_ram,
    .install = NULL,
    .revert = NULL,
};
