/*
 * Internals shared by the boot decision (core/boot.c) and the install
 * engines (core/overwrite.c, ...): counted flash access to layout areas and
 * the watchdog. Not part of the public API.
 */
#ifndef AIRLOCK_BOOT_PRIV_H
#define AIRLOCK_BOOT_PRIV_H

#include "airlock/boot.h"

/* The area with this id in b's layout. */
const airlock_area_t *boot_area(const airlock_boot_t *b, int id);

/* Read / program (and sync) / erase within an area, counted in b->stats. */
int boot_read(airlock_boot_t *b, const airlock_area_t *a, uint32_t off, void *buf, uint32_t len);
int boot_prog(airlock_boot_t *b, const airlock_area_t *a, uint32_t off, const void *buf,
              uint32_t len);

/*
 * Erase every sector of area a that intersects [off, off + len), each once,
 * feeding the watchdog between sectors.
 */
int boot_erase_range(airlock_boot_t *b, const airlock_area_t *a, uint32_t off, uint32_t len);

/*
 * Copy [off, off + len) of src into dst at the same offset. The target range
 * must be erased. A last partial write unit is padded with the erased value.
 */
int boot_copy(airlock_boot_t *b, const airlock_area_t *dst, const airlock_area_t *src,
              uint32_t off, uint32_t len);

void boot_feed(airlock_boot_t *b);

#endif
