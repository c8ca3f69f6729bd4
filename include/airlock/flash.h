/*
 * The flash port: the only way core touches flash. One struct of function
 * pointers plus geometry, filled by the platform (port/sim_flash, a real
 * MCU's NOR driver) and passed in by the caller. Core never assumes more
 * than what is declared here: NOR rules, sector erase, aligned programming.
 */
#ifndef AIRLOCK_FLASH_H
#define AIRLOCK_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A run of `count` equal sectors of `size` bytes. */
typedef struct airlock_sector_run {
    uint32_t count;
    uint32_t size;
} airlock_sector_run_t;

/*
 * One flash device. Addresses are offsets from the start of the device.
 * Sectors are described as consecutive runs from address 0, e.g. an
 * STM32F4 bank: {4, 16K}, {1, 64K}, {7, 128K}.
 *
 * NOR rules every port must honour (the sim flash enforces them):
 * - erase() sets one whole sector to erased_val;
 * - prog() can only move bits away from the erased value, and a location
 *   may be programmed once between erases;
 * - prog() offsets and lengths are multiples of write_size.
 *
 * Every function returns 0 or a negative value (reported by core as
 * AIRLOCK_ERR_IO). A port may fail any call at any time (power loss); core's
 * power-safety rests on these rules only.
 */
typedef struct airlock_flash {
    void *ctx;
    /* Read len bytes at addr. Any alignment. */
    int (*read)(void *ctx, uint32_t addr, void *buf, uint32_t len);
    /* Program len bytes at addr; addr and len are multiples of write_size. */
    int (*prog)(void *ctx, uint32_t addr, const void *buf, uint32_t len);
    /* Erase the one sector that starts at addr (size from the sector map). */
    int (*erase)(void *ctx, uint32_t addr);
    /* Make earlier prog/erase durable; NULL when every call already is. */
    int (*sync)(void *ctx);

    uint32_t size;       /* device size in bytes (sum of the sector runs) */
    uint32_t write_size; /* program granularity: 1, 2, 4, 8, 16 or 32 */
    uint8_t erased_val;  /* 0xff for most NOR parts */
    const airlock_sector_run_t *runs;
    uint32_t nruns;
} airlock_flash_t;

/*
 * Sector containing addr: its start and size. Returns 0, or -1 when addr is
 * outside the device or the sector map is inconsistent.
 */
int airlock_flash_sector(const airlock_flash_t *fl, uint32_t addr, uint32_t *start,
                         uint32_t *size);

/*
 * Check a flash description: functions present, write_size a power of two
 * in 1..32, runs non-empty and summing to size, every sector a multiple of
 * write_size. Returns 0 or AIRLOCK_ERR_INVAL.
 */
int airlock_flash_check(const airlock_flash_t *fl);

#endif /* AIRLOCK_FLASH_H */
