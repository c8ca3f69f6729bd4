/*
 * Boot decision: read both trailers, install a pending request through the
 * engine (or refuse it), and verify the primary before handing it over.
 * Invariant: res->slot is set only after the image there verified in this
 * call; every error path leaves res->slot == -1. Each step is safe to
 * interrupt: the next call re-reads flash and continues from what it finds.
 */
#include <string.h>

#include "boot_priv.h"
#include "journal.h"

/* ---- counted flash access (boot_priv.h) -------------------------------- */

const airlock_area_t *boot_area(const airlock_boot_t *b, int id)
{
    return &b->layout.area[id];
}

/* ---- the counting, watchdog-feeding port wrapper ------------------------ */

#define FEED_READ_BYTES 1024u

static int w_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    airlock_boot_port_t *p = ctx;
    p->b->stats.reads++;
    p->b->stats.read_bytes += len;
    if (len >= FEED_READ_BYTES) {
        boot_feed(p->b); /* long hashes stream through here */
    }
    return p->inner->read(p->inner->ctx, addr, buf, len);
}

static int w_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    airlock_boot_port_t *p = ctx;
    p->b->stats.progs++;
    p->b->stats.prog_bytes += len;
    boot_feed(p->b);
    return p->inner->prog(p->inner->ctx, addr, buf, len);
}

static int w_erase(void *ctx, uint32_t addr)
{
    airlock_boot_port_t *p = ctx;
    p->b->stats.erases++;
    boot_feed(p->b);
    return p->inner->erase(p->inner->ctx, addr);
}

static int w_sync(void *ctx)
{
    airlock_boot_port_t *p = ctx;
    return p->inner->sync(p->inner->ctx);
}

/* b->layout = cfg->layout with each device replaced by its wrapper. */
static void wrap_ports(airlock_boot_t *b)
{
    size_t n = 0;
    b->layout = *b->cfg->layout;
    for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
        const airlock_flash_t *fl = b->cfg->layout->area[id].flash;
        size_t k = 0;
        if (!fl) {
            continue;
        }
        while (k < n && b->ports[k].inner != fl) {
            k++;
        }
        if (k == n) {
            airlock_boot_port_t *p = &b->ports[n++];
            p->port = *fl;
            p->port.ctx = p;
            p->port.read = w_read;
            p->port.prog = w_prog;
            p->port.erase = w_erase;
            p->port.sync = fl->sync ? w_sync : NULL;
            p->inner = fl;
            p->b = b;
        }
        b->layout.area[id].flash = &b->ports[k].port;
    }
}

void boot_feed(airlock_boot_t *b)
{
    if (b->cfg->watchdog_feed) {
        b->cfg->watchdog_feed(b->cfg->watchdog_ctx);
    }
}

int boot_read(const airlock_area_t *a, uint32_t off, void *buf, uint32_t len)
{
    if ((uint64_t)off + len > a->size) {
        return AIRLOCK_ERR_OUT_OF_BOUNDS;
    }
    return a->flash->read(a->flash->ctx, a->off + off, buf, len) ? AIRLOCK_ERR_IO : 0;
}

int boot_prog(const airlock_area_t *a, uint32_t off, const void *buf, uint32_t len)
{
    const airlock_flash_t *fl = a->flash;
    if ((uint64_t)off + len > a->size) {
        return AIRLOCK_ERR_OUT_OF_BOUNDS;
    }
    if (fl->prog(fl->ctx, a->off + off, buf, len) != 0) {
        return AIRLOCK_ERR_IO;
    }
    return fl->sync && fl->sync(fl->ctx) != 0 ? AIRLOCK_ERR_IO : 0;
}

int boot_erase_range(const airlock_area_t *a, uint32_t off, uint32_t len)
{
    const airlock_flash_t *fl = a->flash;
    uint32_t pos = off;
    uint64_t end = (uint64_t)off + len;
    if (end > a->size) {
        return AIRLOCK_ERR_OUT_OF_BOUNDS;
    }
    while (pos < end) {
        uint32_t start, size;
        if (airlock_flash_sector(fl, a->off + pos, &start, &size) != 0) {
            return AIRLOCK_ERR_INVAL;
        }
        if (fl->erase(fl->ctx, start) != 0) {
            return AIRLOCK_ERR_IO;
        }
        if (fl->sync && fl->sync(fl->ctx) != 0) {
            return AIRLOCK_ERR_IO;
        }
        pos = start + size - a->off;
    }
    return 0;
}

int boot_copy(airlock_boot_t *b, const airlock_area_t *dst, const airlock_area_t *src, uint32_t off,
              uint32_t len)
{
    uint32_t ws = dst->flash->write_size;
    /* whole write units per chunk; the buffer is a multiple of 32 bytes */
    uint32_t chunk = b->cfg->buf_len / ws * ws;
    uint32_t done = 0;
    while (done < len) {
        uint32_t n = len - done < chunk ? len - done : chunk;
        uint32_t padded = (n + ws - 1u) / ws * ws;
        int rc = boot_read(src, off + done, b->cfg->buf, n);
        if (rc) {
            return rc;
        }
        memset(b->cfg->buf + n, dst->flash->erased_val, padded - n);
        rc = boot_prog(dst, off + done, b->cfg->buf, padded);
        if (rc) {
            return rc;
        }
        done += n;
        boot_feed(b);
    }
    return 0;
}

/* ---- engines ----------------------------------------------------------- */

const airlock_engine_t *const airlock_engines[] = {
    &airlock_engine_overwrite,
    &airlock_engine_swap_2n,
    &airlock_engine_swap_scratch,
    &airlock_engine_swap_move,
    &airlock_engine_direct_xip,
    &airlock_engine_ram_load,
    NULL,
};

const airlock_engine_t *airlock_engine_find(const char *name)
{
    for (size_t i = 0; name && airlock_engines[i]; i++) {
        const char *a = airlock_engines[i]->name, *b = name;
        while (*a && *a == *b) {
            a++;
            b++;
        }
        if (*a == *b) {
            return airlock_engines[i];
        }
    }
    return NULL;
}

/* ---- decision ---------------------------------------------------------- */

const char *airlock_boot_action_name(int action)
{
    switch (action) {
    case AIRLOCK_BOOT_NORMAL:
        return "normal";
    case AIRLOCK_BOOT_INSTALLED:
        return "installed";
    case AIRLOCK_BOOT_TRIAL:
        return "trial";
    case AIRLOCK_BOOT_REVERTED:
        return "reverted";
    case AIRLOCK_BOOT_REJECTED:
        return "rejected";
    case AIRLOCK_BOOT_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}

airlock_journal_t *boot_journal(airlock_boot_t *b)
{
    return &b->journal;
}

/*
 * Is the image at offset `at` of slot id bootable: parses, ends before the
 * trailer, has bootable flags, verifies?
 */
int boot_check_slot(airlock_boot_t *b, int id, uint32_t at, struct slot_check *sc)
{
    const airlock_boot_cfg_t *cfg = b->cfg;
    const airlock_area_t *base = boot_area(b, id);
    airlock_area_t a = {base->flash, base->off + at, base->size - at};
    airlock_source_t src;
    memset(sc, 0, sizeof(*sc));
    airlock_area_source(&a, &src);
    int rc = airlock_image_parse(&src, &sc->img, &sc->det);
    if (rc) {
        return rc;
    }
    if ((uint64_t)at + sc->img.end > airlock_trailer_start(base, &b->geom[id])) {
        sc->det.field = "image end";
        sc->det.offset = sc->img.end;
        return AIRLOCK_ERR_TOO_BIG;
    }
    if (sc->img.hdr.flags & (AIRLOCK_IMAGE_F_NON_BOOTABLE | AIRLOCK_IMAGE_F_ENCRYPTED_AES128 |
                             AIRLOCK_IMAGE_F_ENCRYPTED_AES256 | AIRLOCK_IMAGE_F_COMPRESSED_LZMA1 |
                             AIRLOCK_IMAGE_F_COMPRESSED_LZMA2)) {
        sc->det.field = "header.flags";
        sc->det.offset = 16;
        return AIRLOCK_ERR_NOT_BOOTABLE;
    }
    airlock_verify_cfg_t vc = {cfg->crypto, cfg->keys, cfg->nkeys, cfg->buf, cfg->buf_len};
    rc = airlock_image_verify(&src, &sc->img, &vc, &sc->vr, &sc->det);
    if (rc) {
        return rc;
    }
    /* A second, independent look at the outcome (glitch hardening). */
    if (!sc->vr.hash_ok || (cfg->nkeys > 0 && sc->vr.key_index < 0)) {
        return AIRLOCK_ERR_CRYPTO;
    }
    return 0;
}

void boot_set_result(airlock_boot_result_t *res, int action, int err, const char *msg)
{
    res->action = action;
    res->err = err;
    res->message = msg;
}

/* Consume the secondary's request: its copy_done, if still erased. */
static int consume_request(airlock_boot_t *b)
{
    const airlock_area_t *sec = boot_area(b, AIRLOCK_AREA_SECONDARY);
    airlock_trailer_t st;
    int rc = airlock_trailer_load(sec, &b->geom[AIRLOCK_AREA_SECONDARY], &st);
    if (rc || st.magic != AIRLOCK_FIELD_SET || st.copy_done != AIRLOCK_FIELD_UNSET) {
        return rc;
    }
    return airlock_trailer_write_flag(sec, &b->geom[AIRLOCK_AREA_SECONDARY], AIRLOCK_FLAG_COPY_DONE,
                                      0x01);
}

static int boot_primary(airlock_boot_t *b, airlock_boot_result_t *res, bool confirmed);

/*
 * Refuse an update: consume the request so it is not retried forever, then
 * boot the image already in place.
 */
static int reject(airlock_boot_t *b, airlock_boot_result_t *res, int err,
                  const airlock_err_detail_t *det, const char *msg)
{
    boot_set_result(res, AIRLOCK_BOOT_REJECTED, err, msg);
    res->detail = *det;
    int rc = consume_request(b);
    return rc ? rc : boot_primary(b, res, true);
}

/*
 * Verify the primary and fill the result for handing it over. A confirmed
 * image's security counter becomes the device's floor.
 */
static int boot_primary(airlock_boot_t *b, airlock_boot_result_t *res, bool confirmed)
{
    struct slot_check sc;
    int rc = boot_check_slot(b, AIRLOCK_AREA_PRIMARY, 0, &sc);
    if (rc) {
        if (rc != AIRLOCK_ERR_IO) {
            boot_set_result(res, AIRLOCK_BOOT_FAILED, rc,
                            "primary image does not verify: not booting");
            res->detail = sc.det;
        }
        res->slot = -1;
        return rc;
    }
    if (confirmed && b->has_journal && sc.vr.has_sec_cnt) {
        journal_t *j = boot_journal(b);
        if (!j->has_sec_cnt || sc.vr.sec_cnt > j->sec_cnt) {
            rc = journal_append(j, JR_SECCNT, sc.vr.sec_cnt, 0);
            if (rc) {
                return rc;
            }
        }
    }
    res->slot = AIRLOCK_AREA_PRIMARY;
    res->image_off = sc.img.hdr.hdr_size;
    res->version = sc.img.hdr.version;
    res->confirmed = confirmed;
    return 0;
}

/* Are the len bytes at off of area a all erased? */
static int region_erased(airlock_boot_t *b, const airlock_area_t *a, uint32_t off, uint32_t len,
                         bool *yes)
{
    *yes = true;
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < b->cfg->buf_len ? len - done : b->cfg->buf_len;
        int rc = boot_read(a, off + done, b->cfg->buf, n);
        if (rc) {
            return rc;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (b->cfg->buf[i] != a->flash->erased_val) {
                *yes = false;
                return 0;
            }
        }
        done += n;
    }
    return 0;
}

int boot_erase_if_used(airlock_boot_t *b, const airlock_area_t *a, uint32_t from,
                       uint32_t skip_below)
{
    for (uint32_t off = from; off < a->size;) {
        uint32_t start, size;
        if (airlock_flash_sector(a->flash, a->off + off, &start, &size) != 0) {
            return AIRLOCK_ERR_INVAL;
        }
        uint32_t s = start - a->off, e = s + size;
        if (s >= skip_below) {
            bool clean;
            uint32_t lo = s > from ? s : from;
            int rc = region_erased(b, a, lo, e - lo, &clean);
            if (rc == 0 && !clean) {
                rc = boot_erase_range(a, s, size);
            }
            if (rc) {
                return rc;
            }
        }
        off = e;
    }
    return 0;
}

int boot_finish_swap(airlock_boot_t *b, uint32_t type, uint32_t swapped_end)
{
    const airlock_area_t *pri = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_trailer_geom_t *g = &b->geom[AIRLOCK_AREA_PRIMARY];
    journal_t *j = boot_journal(b);
    uint32_t tstart = airlock_trailer_start(pri, g);
    int rc = 0;
    /* 1. The primary's trailer sectors the swap did not erase: erase if used. */
    rc = boot_erase_if_used(b, pri, tstart, swapped_end);
    if (rc) {
        return rc;
    }
    /*
     * 2. A trial: MCUboot's marks for applications. The trial boots are
     * counted only when one is handed over (trial()), so a reset before
     * then costs the update none of its trials.
     */
    if (type == AIRLOCK_SWAP_TEST) {
        airlock_trailer_t t;
        rc = airlock_trailer_load(pri, g, &t);
        if (rc == 0 && t.magic == AIRLOCK_FIELD_UNSET) {
            rc = airlock_trailer_write_magic(pri, g);
        }
        if (rc == 0 && t.copy_done == AIRLOCK_FIELD_UNSET) {
            rc = airlock_trailer_write_flag(pri, g, AIRLOCK_FLAG_COPY_DONE, 0x01);
        }
        if (rc) {
            return rc;
        }
    }
    /* 3. The request is served; 4. the journal says so. */
    rc = consume_request(b);
    if (rc) {
        return rc;
    }
    return journal_append(j, JR_END, type, j->extent);
}

static int config(airlock_boot_t *b, const airlock_boot_cfg_t *cfg, airlock_err_detail_t *det)
{
    if (!cfg || !cfg->layout || !cfg->engine || !cfg->crypto || !cfg->buf || cfg->buf_len < 64 ||
        cfg->buf_len % 32 != 0 || cfg->max_trials == 0 || cfg->max_trials > AIRLOCK_TRIAL_MAX ||
        (cfg->nkeys == 0 && !cfg->allow_unsigned) || (cfg->nkeys > 0 && !cfg->keys)) {
        return AIRLOCK_ERR_INVAL;
    }
    int rc = airlock_layout_check(cfg->layout, det);
    if (rc) {
        return rc;
    }
    memset(b, 0, sizeof(*b));
    b->cfg = cfg;
    wrap_ports(b);
    uint32_t max_align = airlock_layout_max_align(cfg->layout);
    for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
        const airlock_area_t *a = &cfg->layout->area[id];
        b->geom[id].max_align = max_align;
        b->geom[id].write_size = a->flash ? a->flash->write_size : 1;
        b->geom[id].max_sectors = cfg->max_sectors ? cfg->max_sectors : 128;
    }
    b->has_journal = cfg->layout->area[AIRLOCK_AREA_STATUS].flash != NULL;
    return cfg->engine->check(b, det) ? AIRLOCK_ERR_LAYOUT : 0;
}

static bool can_revert(const airlock_boot_t *b)
{
    return (b->cfg->engine->caps & AIRLOCK_ENGINE_CAN_REVERT) && b->cfg->engine->revert &&
           b->has_journal;
}

/* Finish whatever an earlier boot left half done (swap or revert). */
static int resume(airlock_boot_t *b, airlock_boot_result_t *res)
{
    journal_t *j = boot_journal(b);
    const airlock_engine_t *e = b->cfg->engine;
    if (j->swap_type == AIRLOCK_SWAP_REVERT) {
        if (!e->revert) {
            return AIRLOCK_ERR_LAYOUT;
        }
        boot_set_result(res, AIRLOCK_BOOT_REVERTED, 0, "finished an interrupted revert");
        return e->revert(b);
    }
    boot_set_result(res, AIRLOCK_BOOT_INSTALLED, 0, "finished an interrupted install");
    return e->install(b, 0, (int)j->swap_type);
}

/*
 * Before a revert: journal which update it removes (the device agent reports
 * it as reverted-from; the swap itself overwrites that image). A primary
 * that no longer parses is journalled as nothing.
 */
static int note_reverted(airlock_boot_t *b)
{
    journal_t *j = boot_journal(b);
    airlock_source_t src;
    airlock_image_t img;
    if (j->in_swap) {
        return 0; /* resuming an interrupted revert: noted before it began */
    }
    airlock_area_source(boot_area(b, AIRLOCK_AREA_PRIMARY), &src);
    int rc = airlock_image_parse(&src, &img, NULL);
    if (rc) {
        return rc == AIRLOCK_ERR_IO ? rc : 0;
    }
    const airlock_version_t *v = &img.hdr.version;
    return journal_append(j, JR_REVERTED,
                          (uint32_t)v->major << 24 | (uint32_t)v->minor << 16 | v->revision,
                          v->build);
}

/*
 * An update on trial: confirmed by the image (*confirmed: the trial is over
 * and journalled so, nothing booted yet: the caller goes on, a new request
 * may already be waiting), another trial, or revert.
 */
static int trial(airlock_boot_t *b, airlock_boot_result_t *res, bool *confirmed)
{
    journal_t *j = boot_journal(b);
    const airlock_area_t *pri = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_trailer_geom_t *g = &b->geom[AIRLOCK_AREA_PRIMARY];
    airlock_trailer_t t;
    uint32_t used;
    *confirmed = false;
    int rc = airlock_trailer_load(pri, g, &t);
    if (rc) {
        return rc;
    }
    /* A torn confirmation still means the image asked to stay. A reset
     * after the record leaves a confirmed image and no trial: the next boot
     * goes straight to the requests, as this one does. */
    if (t.image_ok != AIRLOCK_FIELD_UNSET) {
        rc = journal_append(j, JR_RESOLVE, 1, 0);
        if (rc == 0) {
            *confirmed = true;
        }
        return rc;
    }
    rc = airlock_trailer_trials(pri, g, &used);
    if (rc) {
        return rc;
    }
    if (used < b->cfg->max_trials) {
        rc = airlock_trailer_add_trial(pri, g);
        if (rc == 0) {
            boot_set_result(res, AIRLOCK_BOOT_TRIAL, 0,
                            "booting the unconfirmed update for another trial");
            return boot_primary(b, res, false);
        }
        if (rc != AIRLOCK_ERR_NOMEM) {
            return rc;
        }
        /* every record place spent by torn writes: the trials are over */
    }
    rc = note_reverted(b);
    if (rc == 0) {
        rc = b->cfg->engine->revert(b);
    }
    if (rc) {
        return rc;
    }
    boot_set_result(res, AIRLOCK_BOOT_REVERTED, 0,
                    "update was not confirmed in its trial boots: reverted to the previous image");
    return boot_primary(b, res, true);
}

/* The boot that completes a TEST install hands the update its first trial. */
static int first_trial(airlock_boot_t *b, airlock_boot_result_t *res)
{
    bool confirmed;
    int rc = trial(b, res, &confirmed);
    /* Not expected: a TEST install leaves image_ok unset and the image has
     * not run yet. Kept so that a set flag is never taken for a trial. */
    if (rc == 0 && confirmed) {
        boot_set_result(res, AIRLOCK_BOOT_NORMAL, 0, "update confirmed by the image; booting it");
        return boot_primary(b, res, true);
    }
    if (rc == 0 && res->action == AIRLOCK_BOOT_TRIAL) {
        boot_set_result(res, AIRLOCK_BOOT_INSTALLED, 0,
                        "installed the requested update; booting it for a trial");
    }
    return rc;
}

/* A pending request in the secondary: check it, then install it. */
static int serve_request(airlock_boot_t *b, airlock_boot_result_t *res, int type)
{
    const airlock_engine_t *e = b->cfg->engine;
    uint32_t at = e->stage_offset ? e->stage_offset(b) : 0;
    struct slot_check upd, cur;
    int rc = boot_check_slot(b, AIRLOCK_AREA_SECONDARY, at, &upd);
    if (rc == AIRLOCK_ERR_IO) {
        return rc;
    }
    if (rc) {
        return reject(b, res, rc, &upd.det, "requested update does not verify: refused");
    }
    int cur_rc = boot_check_slot(b, AIRLOCK_AREA_PRIMARY, 0, &cur);
    if (cur_rc == AIRLOCK_ERR_IO) {
        return cur_rc;
    }
    /* Compare with the running image only if there is a valid one. */
    if (cur_rc == 0 && airlock_version_cmp(&upd.img.hdr.version, &cur.img.hdr.version) < 0) {
        upd.det.field = "header.version";
        upd.det.offset = at + 20;
        return reject(b, res, AIRLOCK_ERR_DOWNGRADE, &upd.det,
                      "requested update is older than the running image: refused");
    }
    uint32_t floor = 0;
    bool has_floor = false;
    if (b->has_journal && boot_journal(b)->has_sec_cnt) {
        floor = boot_journal(b)->sec_cnt;
        has_floor = true;
    }
    if (cur_rc == 0 && cur.vr.has_sec_cnt && (!has_floor || cur.vr.sec_cnt > floor)) {
        floor = cur.vr.sec_cnt;
        has_floor = true;
    }
    if (has_floor && (!upd.vr.has_sec_cnt || upd.vr.sec_cnt < floor)) {
        upd.det.field = "SEC_CNT";
        upd.det.offset = at;
        upd.det.has_values = 1;
        upd.det.expected = floor;
        upd.det.found = upd.vr.sec_cnt;
        return reject(b, res, AIRLOCK_ERR_SEC_CNT_ROLLBACK, &upd.det,
                      "requested update's security counter is below the device's: refused");
    }
    /* The update must fit the primary as well (before any flash changes). */
    uint32_t reserve = e->reserve ? e->reserve(b) : 0;
    uint32_t room =
        airlock_trailer_start(boot_area(b, AIRLOCK_AREA_PRIMARY), &b->geom[AIRLOCK_AREA_PRIMARY]);
    room = room > reserve ? room - reserve : 0;
    if (upd.img.end > room) {
        upd.det.field = "image end (primary slot)";
        upd.det.offset = at;
        upd.det.has_values = 1;
        upd.det.expected = room;
        upd.det.found = upd.img.end;
        return reject(b, res, AIRLOCK_ERR_TOO_BIG, &upd.det,
                      "requested update does not fit the primary slot: refused");
    }
    b->old_end = cur_rc == 0 ? cur.img.end : 0;
    /* Nothing to go back to (engine cannot keep it, or no valid old image). */
    if (!can_revert(b) || cur_rc != 0) {
        type = AIRLOCK_SWAP_PERM;
    }
    rc = e->install(b, upd.img.end, type);
    if (rc && rc != AIRLOCK_ERR_IO && !(b->has_journal && boot_journal(b)->in_swap)) {
        /* Refused before touching flash (e.g. it cannot hold both images). */
        upd.det.field = "install";
        upd.det.offset = at;
        upd.det.has_values = 0;
        return reject(b, res, rc, &upd.det, "the engine cannot install this update: refused");
    }
    if (rc) {
        return rc;
    }
    if (!b->has_journal || !(e->caps & AIRLOCK_ENGINE_CAN_REVERT)) {
        /* Engines without a journal: verify first, then consume. */
        rc = boot_primary(b, res, true);
        if (rc) {
            return rc; /* copied but does not verify: flash failing; keep the request */
        }
        rc = consume_request(b);
        if (rc) {
            res->slot = -1;
            return rc;
        }
    } else if (type == AIRLOCK_SWAP_TEST) {
        return first_trial(b, res);
    } else {
        rc = boot_primary(b, res, true);
        if (rc) {
            return rc;
        }
    }
    boot_set_result(res, AIRLOCK_BOOT_INSTALLED, 0, "installed the requested update permanently");
    return 0;
}

int airlock_boot_stage(const airlock_boot_cfg_t *cfg, uint32_t *offset, uint32_t *max_len)
{
    airlock_boot_t b;
    int rc = config(&b, cfg, NULL);
    if (rc) {
        return rc;
    }
    const airlock_engine_t *e = cfg->engine;
    uint32_t at = e->stage_offset ? e->stage_offset(&b) : 0;
    uint32_t ps =
        airlock_trailer_start(boot_area(&b, AIRLOCK_AREA_PRIMARY), &b.geom[AIRLOCK_AREA_PRIMARY]);
    uint32_t ss = airlock_trailer_start(boot_area(&b, AIRLOCK_AREA_SECONDARY),
                                        &b.geom[AIRLOCK_AREA_SECONDARY]);
    ss = ss > at ? ss - at : 0;
    uint32_t reserve = e->reserve ? e->reserve(&b) : 0;
    ps = ps > reserve ? ps - reserve : 0;
    *offset = at;
    *max_len = ps < ss ? ps : ss;
    return 0;
}

int airlock_boot(airlock_boot_t *b, const airlock_boot_cfg_t *cfg, airlock_boot_result_t *res)
{
    airlock_trailer_t st;
    bool confirmed = false;
    memset(res, 0, sizeof(*res));
    res->slot = -1;
    int rc = config(b, cfg, &res->detail);
    if (rc) {
        boot_set_result(res, AIRLOCK_BOOT_FAILED, rc,
                        "bootloader configuration or layout is invalid");
        return rc;
    }
    if (b->has_journal) {
        rc = journal_open(boot_journal(b), boot_area(b, AIRLOCK_AREA_STATUS));
        if (rc) {
            if (rc != AIRLOCK_ERR_IO) {
                boot_set_result(res, AIRLOCK_BOOT_FAILED, rc,
                                "status area cannot hold the journal");
            }
            return rc;
        }
    }
    if (cfg->engine->select) {
        return cfg->engine->select(b, res);
    }
    if (b->has_journal) {
        journal_t *j = boot_journal(b);
        /*
         * 1. An interrupted swap or revert comes first. The boot that
         * finishes a TEST install runs the update's first trial.
         */
        if (j->in_swap) {
            rc = resume(b, res);
            if (rc || !j->trial) {
                return rc ? rc : boot_primary(b, res, true);
            }
            return first_trial(b, res);
        }
        /* 2. An update on trial. Once it confirmed itself, a request it
         * made before this reset (the next update) is served below now,
         * not one boot later. */
        if (j->trial && can_revert(b)) {
            rc = trial(b, res, &confirmed);
            if (rc || !confirmed) {
                return rc;
            }
        }
    }
    /* 3. A request: valid magic, not yet consumed. A torn image_ok is a TEST. */
    const airlock_area_t *sec = boot_area(b, AIRLOCK_AREA_SECONDARY);
    rc = airlock_trailer_load(sec, &b->geom[AIRLOCK_AREA_SECONDARY], &st);
    if (rc) {
        return rc;
    }
    if (st.magic == AIRLOCK_FIELD_SET && st.copy_done == AIRLOCK_FIELD_UNSET) {
        return serve_request(
            b, res, st.image_ok == AIRLOCK_FIELD_SET ? AIRLOCK_SWAP_PERM : AIRLOCK_SWAP_TEST);
    }
    boot_set_result(res, AIRLOCK_BOOT_NORMAL, 0,
                    confirmed ? "update confirmed by the image; booting it"
                              : "booting the primary image");
    return boot_primary(b, res, true);
}

/* ---- application side -------------------------------------------------- */

static void app_geom(const airlock_layout_t *layout, int id, uint32_t max_sectors,
                     airlock_trailer_geom_t *g)
{
    g->max_align = airlock_layout_max_align(layout);
    g->write_size = layout->area[id].flash->write_size;
    g->max_sectors = max_sectors ? max_sectors : 128;
}

int airlock_boot_request(const airlock_layout_t *layout, uint32_t max_sectors, bool permanent)
{
    return airlock_boot_request_slot(layout, max_sectors, permanent, AIRLOCK_AREA_SECONDARY);
}

int airlock_boot_request_slot(const airlock_layout_t *layout, uint32_t max_sectors, bool permanent,
                              int slot)
{
    airlock_trailer_geom_t g;
    if (!layout || airlock_layout_check(layout, NULL) != 0 ||
        (slot != AIRLOCK_AREA_PRIMARY && slot != AIRLOCK_AREA_SECONDARY)) {
        return AIRLOCK_ERR_INVAL;
    }
    const airlock_area_t *sec = &layout->area[slot];
    app_geom(layout, slot, max_sectors, &g);
    /* image_ok first: the magic is what makes the request visible. */
    if (permanent) {
        int rc = airlock_trailer_write_flag(sec, &g, AIRLOCK_FLAG_IMAGE_OK, 0x01);
        if (rc) {
            return rc;
        }
    }
    return airlock_trailer_write_magic(sec, &g);
}

int airlock_boot_confirm(const airlock_layout_t *layout, uint32_t max_sectors)
{
    return airlock_boot_confirm_slot(layout, max_sectors, AIRLOCK_AREA_PRIMARY);
}

int airlock_boot_confirm_slot(const airlock_layout_t *layout, uint32_t max_sectors, int slot)
{
    airlock_trailer_geom_t g;
    airlock_trailer_t t;
    if (!layout || airlock_layout_check(layout, NULL) != 0 ||
        (slot != AIRLOCK_AREA_PRIMARY && slot != AIRLOCK_AREA_SECONDARY)) {
        return AIRLOCK_ERR_INVAL;
    }
    const airlock_area_t *pri = &layout->area[slot];
    app_geom(layout, slot, max_sectors, &g);
    int rc = airlock_trailer_load(pri, &g, &t);
    if (rc) {
        return rc;
    }
    /* Only an erased image_ok may be programmed; anything else is final. */
    if (t.image_ok != AIRLOCK_FIELD_UNSET) {
        return 0;
    }
    return airlock_trailer_write_flag(pri, &g, AIRLOCK_FLAG_IMAGE_OK, 0x01);
}
