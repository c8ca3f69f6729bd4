/*
 * Flash layout: where the bootloader, the primary and secondary slots and
 * the optional scratch and status areas sit, each on some flash device.
 * Slots may be on different devices with different sector sizes. Pure data
 * plus checks; the text format that describes it is parsed on the host.
 */
#ifndef AIRLOCK_LAYOUT_H
#define AIRLOCK_LAYOUT_H

#include <stdint.h>

#include "airlock/err.h"
#include "airlock/flash.h"

enum airlock_area_id {
    AIRLOCK_AREA_BOOTLOADER = 0,
    AIRLOCK_AREA_PRIMARY = 1,
    AIRLOCK_AREA_SECONDARY = 2,
    AIRLOCK_AREA_SCRATCH = 3, /* optional: swap-scratch */
    AIRLOCK_AREA_STATUS = 4,  /* optional: security counter and boot records */
    AIRLOCK_AREA_COUNT = 5,
};

/* "primary", "secondary", ...; "unknown" otherwise. */
const char *airlock_area_name(int id);

/* A contiguous, sector-aligned region of one flash device. */
typedef struct airlock_area {
    const airlock_flash_t *flash; /* NULL: the area is absent */
    uint32_t off;                 /* from the start of the device */
    uint32_t size;
} airlock_area_t;

typedef struct airlock_layout {
    airlock_area_t area[AIRLOCK_AREA_COUNT];
} airlock_layout_t;

/*
 * Check a layout: primary and secondary present; every present area inside
 * its device, starting and ending on sector boundaries, not overlapping any
 * other area on the same device; devices valid (airlock_flash_check). On
 * error *det names the area (det->field, e.g. "secondary.offset") and the
 * offending offset, with expected/found where meaningful.
 * Returns 0 or AIRLOCK_ERR_INVAL.
 */
int airlock_layout_check(const airlock_layout_t *lay, airlock_err_detail_t *det);

/*
 * Largest write size of the two slots' devices, at least 8: the trailer's
 * max_align (imgtool's --max-align) for this layout.
 */
uint32_t airlock_layout_max_align(const airlock_layout_t *lay);

#endif /* AIRLOCK_LAYOUT_H */
