/*
 * NOR flash port for memory-mapped flash on a Cortex-M part: reads by
 * memcpy, and prog/erase checked against the same NOR rules as the host sim
 * flash, with the same error numbers. Optional power-cut injection tears the
 * chosen operation and calls the board's power-off. It never allocates, and
 * never lets a refused call change flash.
 */
#ifndef AIRLOCK_CM_FLASH_H
#define AIRLOCK_CM_FLASH_H

#include <stdint.h>

#include "airlock/flash.h"

/* Rule violations: the values of port/sim_flash's AIRLOCK_SIM_FLASH_ERR_*. */
enum cm_flash_err {
    CM_FLASH_ERR_RANGE = -101,      /* access outside the device */
    CM_FLASH_ERR_ALIGN = -102,      /* prog offset or length not a multiple of write_size */
    CM_FLASH_ERR_REPROG = -103,     /* a write unit programmed twice without an erase */
    CM_FLASH_ERR_ERASE_ADDR = -105, /* erase address not the start of a sector */
};

/*
 * What a power cut did to the operation it hit (cm_flash_t.cut_tear). Tears
 * are whole write units (or the first half of a sector's bytes): coarser
 * than the host sim flash (port/sim_flash.c), which also leaves half-
 * programmed units and noise and is the reference for tears; cuts by
 * instruction count (tests/qemu) tear at any byte.
 */
enum cm_flash_tear {
    CM_FLASH_TEAR_NOTHING = 0, /* the operation did not start */
    CM_FLASH_TEAR_HALF = 1,    /* the first half (of the units / of the sector) done */
    CM_FLASH_TEAR_DONE = 2,    /* it completed, power went just after */
};

typedef struct cm_flash {
    airlock_flash_t port; /* pass &port to the layout; port.ctx points here */
    airlock_sector_run_t run;
    uint8_t *base;     /* first byte of the device in the address map */
    uint32_t *map;     /* one bit per write unit: programmed in this power-on */
    uint32_t ws_shift; /* log2(write_size) */
    /*
     * Power-cut injection. *ops (may live in no-init RAM, so the count runs
     * across resets of one power-on) counts prog and erase calls; the call
     * that makes it equal cut_at is torn as cut_tear says and then
     * power_off(power_ctx) is called, which must not return. cut_at 0: never.
     */
    uint32_t *ops;
    uint32_t cut_at;
    int cut_tear;
    void (*power_off)(void *power_ctx);
    void *power_ctx;
    /* Called (with power_ctx) at each counted operation, before it runs; may be NULL. */
    void (*trace)(void *power_ctx);
    /* Rule violations seen (count, last error and address), for the board to report. */
    uint32_t violations;
    int last_err;
    uint32_t last_addr;
} cm_flash_t;

/*
 * Describe a device of size bytes at base made of equal sectors of
 * sector_size, programmed in units of write_size (a power of two, 1..32),
 * erased to 0xff. map must hold size / write_size bits (rounded up to whole
 * words) and is cleared here: call once per boot. No power-cut injection
 * until the caller sets ops/cut_at/power_off.
 * Returns 0, or AIRLOCK_ERR_INVAL for a geometry airlock_flash_check refuses.
 */
int cm_flash_init(cm_flash_t *f, uint8_t *base, uint32_t size, uint32_t sector_size,
                  uint32_t write_size, uint32_t *map, uint32_t map_bytes);

#endif /* AIRLOCK_CM_FLASH_H */
