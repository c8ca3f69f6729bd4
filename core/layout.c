/*
 * Flash geometry and layout checks. Pure functions over caller data; they
 * never touch flash. Every check names the area and offset that is wrong.
 */
#include "airlock/layout.h"

int airlock_flash_sector(const airlock_flash_t *fl, uint32_t addr, uint32_t *start,
                         uint32_t *size)
{
    uint64_t base = 0;
    for (uint32_t r = 0; r < fl->nruns; r++) {
        uint64_t len = (uint64_t)fl->runs[r].count * fl->runs[r].size;
        if (fl->runs[r].size != 0 && addr < base + len) {
            uint64_t idx = (addr - base) / fl->runs[r].size;
            *start = (uint32_t)(base + idx * fl->runs[r].size);
            *size = fl->runs[r].size;
            return 0;
        }
        base += len;
    }
    return -1;
}

static int is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1u)) == 0;
}

int airlock_flash_check(const airlock_flash_t *fl)
{
    uint64_t total = 0;
    if (!fl || !fl->read || !fl->prog || !fl->erase || !fl->runs || fl->nruns == 0) {
        return AIRLOCK_ERR_INVAL;
    }
    if (!is_pow2(fl->write_size) || fl->write_size > 32u) {
        return AIRLOCK_ERR_INVAL;
    }
    for (uint32_t r = 0; r < fl->nruns; r++) {
        if (fl->runs[r].count == 0 || fl->runs[r].size == 0 ||
            fl->runs[r].size % fl->write_size != 0) {
            return AIRLOCK_ERR_INVAL;
        }
        total += (uint64_t)fl->runs[r].count * fl->runs[r].size;
    }
    return total == fl->size ? 0 : AIRLOCK_ERR_INVAL;
}

const char *airlock_area_name(int id)
{
    switch (id) {
    case AIRLOCK_AREA_BOOTLOADER:
        return "bootloader";
    case AIRLOCK_AREA_PRIMARY:
        return "primary";
    case AIRLOCK_AREA_SECONDARY:
        return "secondary";
    case AIRLOCK_AREA_SCRATCH:
        return "scratch";
    case AIRLOCK_AREA_STATUS:
        return "status";
    default:
        return "unknown";
    }
}

static int bad(airlock_err_detail_t *det, const char *field, uint32_t off, int has,
               uint32_t expected, uint32_t found)
{
    if (det) {
        det->field = field;
        det->offset = off;
        det->tlv_type = 0;
        det->has_values = (uint8_t)has;
        det->expected = expected;
        det->found = found;
    }
    return AIRLOCK_ERR_INVAL;
}

/* Field names per area, static so they can travel in the error detail. */
static const char *const field_flash[AIRLOCK_AREA_COUNT] = {
    "bootloader.flash", "primary.flash", "secondary.flash", "scratch.flash", "status.flash"};
static const char *const field_off[AIRLOCK_AREA_COUNT] = {
    "bootloader.offset", "primary.offset", "secondary.offset", "scratch.offset",
    "status.offset"};
static const char *const field_size[AIRLOCK_AREA_COUNT] = {
    "bootloader.size", "primary.size", "secondary.size", "scratch.size", "status.size"};
static const char *const field_overlap[AIRLOCK_AREA_COUNT] = {
    "bootloader overlaps another area", "primary overlaps another area",
    "secondary overlaps another area", "scratch overlaps another area",
    "status overlaps another area"};

int airlock_layout_check(const airlock_layout_t *lay, airlock_err_detail_t *det)
{
    if (!lay) {
        return bad(det, "layout", 0, 0, 0, 0);
    }
    for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
        const airlock_area_t *a = &lay->area[id];
        uint32_t start = 0, size = 0;
        if (!a->flash) {
            if (id == AIRLOCK_AREA_PRIMARY || id == AIRLOCK_AREA_SECONDARY) {
                return bad(det, field_flash[id], 0, 0, 0, 0);
            }
            continue;
        }
        if (airlock_flash_check(a->flash) != 0) {
            return bad(det, field_flash[id], a->off, 0, 0, 0);
        }
        if (a->size == 0) {
            return bad(det, field_size[id], a->off, 0, 0, 0);
        }
        if (a->off >= a->flash->size) {
            return bad(det, field_off[id], a->off, 1, a->flash->size, a->off);
        }
        if ((uint64_t)a->off + a->size > a->flash->size) {
            return bad(det, field_size[id], a->off, 1, a->flash->size - a->off, a->size);
        }
        if (airlock_flash_sector(a->flash, a->off, &start, &size) != 0 || start != a->off) {
            return bad(det, field_off[id], a->off, 1, start, a->off);
        }
        uint32_t end = a->off + a->size;
        if (end < a->flash->size &&
            (airlock_flash_sector(a->flash, end, &start, &size) != 0 || start != end)) {
            return bad(det, field_size[id], end, 1, start - a->off, a->size);
        }
        for (int other = 0; other < id; other++) {
            const airlock_area_t *b = &lay->area[other];
            if (b->flash == a->flash && a->off < b->off + b->size && b->off < a->off + a->size) {
                return bad(det, field_overlap[id], a->off, 1, b->off, a->off);
            }
        }
    }
    return 0;
}

uint32_t airlock_layout_max_align(const airlock_layout_t *lay)
{
    uint32_t m = 8;
    for (int id = AIRLOCK_AREA_PRIMARY; id <= AIRLOCK_AREA_SECONDARY; id++) {
        const airlock_flash_t *fl = lay->area[id].flash;
        if (fl && fl->write_size > m) {
            m = fl->write_size;
        }
    }
    return m;
}
