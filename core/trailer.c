/*
 * Slot trailer reading (layout in include/airlock/trailer.h). Pure reads
 * through the source callback; never writes, never trusts a field it has
 * not classified as set, erased or bad.
 */
#include "airlock/trailer.h"

#include <string.h>

static const uint8_t classic_magic[AIRLOCK_TRAILER_MAGIC_SIZE] = {
    0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f,
    0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
};

static const uint8_t alt_magic_tail[AIRLOCK_TRAILER_MAGIC_SIZE - 2] = {
    0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
};

static uint32_t align_up(uint32_t v, uint32_t a)
{
    return (v + a - 1u) / a * a;
}

static bool valid_max_align(uint32_t a)
{
    return a == 8u || a == 16u || a == 32u;
}

void airlock_trailer_magic(uint32_t max_align, uint8_t out[AIRLOCK_TRAILER_MAGIC_SIZE])
{
    if (max_align == AIRLOCK_TRAILER_DEFAULT_MAX_ALIGN) {
        memcpy(out, classic_magic, sizeof(classic_magic));
        return;
    }
    out[0] = (uint8_t)max_align;
    out[1] = (uint8_t)(max_align >> 8);
    memcpy(out + 2, alt_magic_tail, sizeof(alt_magic_tail));
}

int airlock_trailer_layout(uint32_t slot_size, uint32_t max_align, airlock_trailer_layout_t *lay)
{
    if (!valid_max_align(max_align)) {
        return AIRLOCK_ERR_INVAL;
    }
    uint32_t magic_area = align_up(AIRLOCK_TRAILER_MAGIC_SIZE, max_align);
    if (slot_size < magic_area + 4u * max_align) {
        return AIRLOCK_ERR_INVAL;
    }
    lay->magic = slot_size - AIRLOCK_TRAILER_MAGIC_SIZE;
    lay->image_ok = slot_size - magic_area - max_align;
    lay->copy_done = lay->image_ok - max_align;
    lay->swap_info = lay->copy_done - max_align;
    lay->swap_size = lay->swap_info - max_align;
    return 0;
}

uint32_t airlock_trailer_size(uint32_t align, uint32_t max_align, uint32_t max_sectors,
                              bool overwrite_only)
{
    uint32_t magic_area = align_up(AIRLOCK_TRAILER_MAGIC_SIZE, max_align);
    if (overwrite_only) {
        return max_align * 2u + magic_area;
    }
    return max_sectors * 3u * align + max_align * 4u + magic_area;
}

static uint8_t flag_state(uint8_t v, uint8_t erased)
{
    if (v == erased) {
        return AIRLOCK_FIELD_UNSET;
    }
    return v == 0x01 ? AIRLOCK_FIELD_SET : AIRLOCK_FIELD_BAD;
}

static bool all_erased(const uint8_t *p, uint32_t n, uint8_t erased)
{
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] != erased) {
            return false;
        }
    }
    return true;
}

int airlock_trailer_read(const airlock_source_t *slot, uint32_t max_align, uint8_t erased,
                         airlock_trailer_t *t)
{
    uint8_t m[AIRLOCK_TRAILER_MAGIC_SIZE];
    uint8_t want[AIRLOCK_TRAILER_MAGIC_SIZE];
    uint8_t b[4];
    airlock_trailer_layout_t lay;
    if (!slot || !slot->read || !t || slot->size < AIRLOCK_TRAILER_MAGIC_SIZE) {
        return AIRLOCK_ERR_INVAL;
    }
    memset(t, 0, sizeof(*t));
    if (slot->read(slot->ctx, slot->size - AIRLOCK_TRAILER_MAGIC_SIZE, m, sizeof(m)) != 0) {
        return AIRLOCK_ERR_IO;
    }
    if (max_align == 0) {
        uint32_t enc = (uint32_t)m[0] | ((uint32_t)m[1] << 8);
        max_align = AIRLOCK_TRAILER_DEFAULT_MAX_ALIGN;
        if (memcmp(m + 2, alt_magic_tail, sizeof(alt_magic_tail)) == 0 &&
            valid_max_align(enc)) {
            max_align = enc;
        }
    }
    int rc = airlock_trailer_layout(slot->size, max_align, &lay);
    if (rc) {
        return rc;
    }
    t->max_align = max_align;
    airlock_trailer_magic(max_align, want);
    if (memcmp(m, want, sizeof(m)) == 0) {
        t->magic = AIRLOCK_FIELD_SET;
    } else {
        t->magic = all_erased(m, sizeof(m), erased) ? AIRLOCK_FIELD_UNSET : AIRLOCK_FIELD_BAD;
    }
    const uint32_t offs[3] = {lay.image_ok, lay.copy_done, lay.swap_info};
    uint8_t v[3];
    for (int i = 0; i < 3; i++) {
        if (slot->read(slot->ctx, offs[i], &v[i], 1) != 0) {
            return AIRLOCK_ERR_IO;
        }
    }
    t->image_ok = flag_state(v[0], erased);
    t->copy_done = flag_state(v[1], erased);
    if (v[2] != erased) {
        t->swap_info_set = true;
        t->swap_type = (uint8_t)(v[2] & 0x0fu);
        t->image_num = (uint8_t)(v[2] >> 4);
    }
    if (slot->read(slot->ctx, lay.swap_size, b, sizeof(b)) != 0) {
        return AIRLOCK_ERR_IO;
    }
    t->swap_size_set = !all_erased(b, sizeof(b), erased);
    t->swap_size = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
                   ((uint32_t)b[3] << 24);
    return 0;
}

/* ---- writing through the flash port ------------------------------------ */

static int area_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    const airlock_area_t *a = ctx;
    if ((uint64_t)off + len > a->size) {
        return -1;
    }
    return a->flash->read(a->flash->ctx, a->off + off, buf, len);
}

void airlock_area_source(const airlock_area_t *area, airlock_source_t *src)
{
    src->read = area_read;
    /* the source API takes a mutable context; area_read never writes it */
    src->ctx = (void *)(uintptr_t)area;
    src->size = area->size;
}

static uint32_t status_size(const airlock_trailer_geom_t *g)
{
    return g->max_sectors * 3u * g->write_size;
}

/* Start of the trial-counter records (offset in the slot). */
static uint32_t trials_off(const airlock_area_t *slot, const airlock_trailer_geom_t *g)
{
    uint32_t fields = airlock_trailer_size(g->write_size, g->max_align, 0, false);
    return slot->size - fields - status_size(g) - AIRLOCK_TRIAL_MAX * g->write_size;
}

uint32_t airlock_trailer_start(const airlock_area_t *slot, const airlock_trailer_geom_t *g)
{
    return trials_off(slot, g);
}

void airlock_trailer_status(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                            uint32_t *off, uint32_t *len)
{
    *off = trials_off(slot, g) + AIRLOCK_TRIAL_MAX * g->write_size;
    *len = status_size(g);
}

static bool geom_ok(const airlock_area_t *slot, const airlock_trailer_geom_t *g)
{
    if (!slot || !slot->flash || !g || !valid_max_align(g->max_align) ||
        g->write_size == 0 || g->write_size > g->max_align ||
        g->write_size != slot->flash->write_size) {
        return false;
    }
    uint64_t need = (uint64_t)airlock_trailer_size(g->write_size, g->max_align, 0, false) +
                    (uint64_t)g->max_sectors * 3u * g->write_size +
                    (uint64_t)AIRLOCK_TRIAL_MAX * g->write_size;
    return need <= slot->size;
}

/* Program one write unit at off (relative to the slot). */
static int prog_unit(const airlock_area_t *slot, uint32_t off, const uint8_t *unit, uint32_t n)
{
    const airlock_flash_t *fl = slot->flash;
    if (fl->prog(fl->ctx, slot->off + off, unit, n) != 0) {
        return AIRLOCK_ERR_IO;
    }
    if (fl->sync && fl->sync(fl->ctx) != 0) {
        return AIRLOCK_ERR_IO;
    }
    return 0;
}

int airlock_trailer_write_magic(const airlock_area_t *slot, const airlock_trailer_geom_t *g)
{
    uint8_t unit[32];
    if (!geom_ok(slot, g)) {
        return AIRLOCK_ERR_INVAL;
    }
    /* The magic ends the slot; with 32-byte writes its unit starts 16 earlier. */
    uint32_t n = g->write_size < AIRLOCK_TRAILER_MAGIC_SIZE ? AIRLOCK_TRAILER_MAGIC_SIZE
                                                             : g->write_size;
    memset(unit, slot->flash->erased_val, sizeof(unit));
    airlock_trailer_magic(g->max_align, unit + n - AIRLOCK_TRAILER_MAGIC_SIZE);
    return prog_unit(slot, slot->size - n, unit, n);
}

int airlock_trailer_write_flag(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                               int flag, uint8_t value)
{
    uint8_t unit[32];
    airlock_trailer_layout_t lay;
    if (!geom_ok(slot, g) || airlock_trailer_layout(slot->size, g->max_align, &lay) != 0) {
        return AIRLOCK_ERR_INVAL;
    }
    uint32_t off;
    switch (flag) {
    case AIRLOCK_FLAG_IMAGE_OK:
        off = lay.image_ok;
        break;
    case AIRLOCK_FLAG_COPY_DONE:
        off = lay.copy_done;
        break;
    case AIRLOCK_FLAG_SWAP_INFO:
        off = lay.swap_info;
        break;
    default:
        return AIRLOCK_ERR_INVAL;
    }
    memset(unit, slot->flash->erased_val, sizeof(unit));
    unit[0] = value;
    return prog_unit(slot, off, unit, g->write_size);
}

static int count_trials(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                        uint32_t *used, uint32_t *next)
{
    uint8_t unit[32];
    if (!geom_ok(slot, g)) {
        return AIRLOCK_ERR_INVAL;
    }
    uint32_t base = trials_off(slot, g);
    uint8_t full = (uint8_t)~slot->flash->erased_val;
    *used = 0;
    if (next) {
        *next = 0;
    }
    for (uint32_t i = 0; i < AIRLOCK_TRIAL_MAX; i++) {
        if (slot->flash->read(slot->flash->ctx, slot->off + base + i * g->write_size, unit,
                              g->write_size) != 0) {
            return AIRLOCK_ERR_IO;
        }
        if (all_erased(unit, g->write_size, slot->flash->erased_val)) {
            continue;
        }
        /*
         * Only a whole record is a trial: a torn one means the power failed
         * before the image could run. Either way its place is spent (it is
         * never programmed twice).
         */
        if (all_erased(unit, g->write_size, full)) {
            (*used)++;
        }
        if (next) {
            *next = i + 1;
        }
    }
    return 0;
}

int airlock_trailer_trials(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                           uint32_t *used)
{
    return count_trials(slot, g, used, NULL);
}

int airlock_trailer_add_trial(const airlock_area_t *slot, const airlock_trailer_geom_t *g)
{
    uint8_t unit[32];
    uint32_t used, next;
    int rc = count_trials(slot, g, &used, &next);
    if (rc) {
        return rc;
    }
    if (next >= AIRLOCK_TRIAL_MAX) {
        return AIRLOCK_ERR_NOMEM;
    }
    /* records after the last written one are erased: program the next */
    memset(unit, (uint8_t)~slot->flash->erased_val, sizeof(unit));
    return prog_unit(slot, trials_off(slot, g) + next * g->write_size, unit, g->write_size);
}

int airlock_trailer_load(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                         airlock_trailer_t *t)
{
    airlock_source_t src;
    if (!geom_ok(slot, g)) {
        return AIRLOCK_ERR_INVAL;
    }
    airlock_area_source(slot, &src);
    return airlock_trailer_read(&src, g->max_align, slot->flash->erased_val, t);
}
