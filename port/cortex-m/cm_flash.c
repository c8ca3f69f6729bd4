/*
 * NOR flash port over a memory-mapped region (cm_flash.h). Checks every
 * prog and erase against the NOR rules before touching a byte, so a refused
 * call leaves flash unchanged; a unit counts as programmed if it was
 * programmed in this power-on or does not read as erased (what the host sim
 * flash derives from a flash file). Must never assume the caller is right.
 */
#include "cm_flash.h"

#include <string.h>

#include "airlock/err.h"

#define ERASED 0xffu

static int violation(cm_flash_t *f, int err, uint32_t addr)
{
    f->violations++;
    f->last_err = err;
    f->last_addr = addr;
    return err;
}

static int cm_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    cm_flash_t *f = ctx;
    if (addr > f->port.size || len > f->port.size - addr) {
        return violation(f, CM_FLASH_ERR_RANGE, addr);
    }
    memcpy(buf, f->base + addr, len);
    return 0;
}

static bool unit_programmed(const cm_flash_t *f, uint32_t u)
{
    if ((f->map[u >> 5] >> (u & 31u)) & 1u) {
        return true;
    }
    const uint8_t *p = f->base + (u << f->ws_shift);
    for (uint32_t i = 0; i < f->port.write_size; i++) {
        if (p[i] != ERASED) {
            return true;
        }
    }
    return false;
}

/* Counts the call; true when power goes during it (the caller tears it). */
static bool cut_now(cm_flash_t *f)
{
    if (f->ops == NULL) {
        return false;
    }
    *f->ops += 1u;
    if (f->trace != NULL) {
        f->trace(f->power_ctx);
    }
    return f->cut_at != 0 && *f->ops == f->cut_at && f->power_off != NULL;
}

static void program_units(cm_flash_t *f, uint32_t addr, const uint8_t *src, uint32_t len)
{
    memcpy(f->base + addr, src, len);
    for (uint32_t u = addr >> f->ws_shift, n = len >> f->ws_shift; n > 0; u++, n--) {
        f->map[u >> 5] |= 1u << (u & 31u);
    }
}

static int cm_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    cm_flash_t *f = ctx;
    if (addr > f->port.size || len > f->port.size - addr) {
        return violation(f, CM_FLASH_ERR_RANGE, addr);
    }
    if ((addr | len) & (f->port.write_size - 1u)) {
        return violation(f, CM_FLASH_ERR_ALIGN, addr);
    }
    for (uint32_t a = addr; a < addr + len; a += f->port.write_size) {
        if (unit_programmed(f, a >> f->ws_shift)) {
            return violation(f, CM_FLASH_ERR_REPROG, a);
        }
    }
    if (cut_now(f)) {
        /* A torn program: the first half of the units made it, or none, or all. */
        uint32_t n = f->cut_tear == CM_FLASH_TEAR_DONE ? len
                     : f->cut_tear == CM_FLASH_TEAR_HALF
                         ? ((len >> f->ws_shift) / 2u) << f->ws_shift
                         : 0;
        program_units(f, addr, buf, n);
        f->power_off(f->power_ctx);
    }
    program_units(f, addr, buf, len);
    return 0;
}

static int cm_erase(void *ctx, uint32_t addr)
{
    cm_flash_t *f = ctx;
    uint32_t ss = f->run.size;
    if (addr >= f->port.size) {
        return violation(f, CM_FLASH_ERR_RANGE, addr);
    }
    if (addr % ss != 0) {
        return violation(f, CM_FLASH_ERR_ERASE_ADDR, addr);
    }
    uint32_t units = ss >> f->ws_shift, first = addr >> f->ws_shift;
    if (cut_now(f)) {
        /* A torn erase: the sector's first half reads erased, the rest is as it was. */
        uint32_t n = f->cut_tear == CM_FLASH_TEAR_DONE   ? ss
                     : f->cut_tear == CM_FLASH_TEAR_HALF ? ss / 2u
                                                         : 0;
        memset(f->base + addr, ERASED, n);
        f->power_off(f->power_ctx);
    }
    memset(f->base + addr, ERASED, ss);
    for (uint32_t u = first; u < first + units; u++) {
        f->map[u >> 5] &= ~(1u << (u & 31u));
    }
    return 0;
}

int cm_flash_init(cm_flash_t *f, uint8_t *base, uint32_t size, uint32_t sector_size,
                  uint32_t write_size, uint32_t *map, uint32_t map_bytes)
{
    memset(f, 0, sizeof *f);
    uint32_t shift = 0;
    while (shift < 6 && (1u << shift) != write_size) {
        shift++;
    }
    if (sector_size == 0 || size % sector_size != 0 || map == NULL ||
        (uint64_t)map_bytes * 8u < (((uint64_t)size >> shift) + 31u) / 32u * 32u) {
        return AIRLOCK_ERR_INVAL;
    }
    f->run.count = size / sector_size;
    f->run.size = sector_size;
    f->base = base;
    f->map = map;
    f->ws_shift = shift;
    f->port = (airlock_flash_t){
        .ctx = f,
        .read = cm_read,
        .prog = cm_prog,
        .erase = cm_erase,
        .sync = NULL,
        .size = size,
        .write_size = write_size,
        .erased_val = ERASED,
        .runs = &f->run,
        .nruns = 1,
    };
    memset(map, 0, ((size >> shift) + 31u) / 32u * 4u);
    return airlock_flash_check(&f->port) == 0 ? 0 : AIRLOCK_ERR_INVAL;
}
