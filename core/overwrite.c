/*
 * Overwrite-only engine: erase the primary, copy the secondary's image over
 * it, verify, then mark the request consumed. No revert: the old image is
 * gone once the first primary sector is erased, so a TEST request installs
 * permanently (as MCUboot's overwrite-only mode does).
 *
 * Power safety: the secondary is only read until the very last step, so
 * until the request is marked consumed a reset finds the request pending and
 * a verifiable secondary, and starts the copy again from scratch (erasing a
 * half-written primary again is harmless). The consumed mark is written only
 * after the primary verified; a torn mark either still reads erased (the
 * install runs once more) or reads non-erased (consumed). Either way the
 * primary holds the verified new image.
 */
#include "boot_priv.h"

static int check(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    (void)b;
    (void)det;
    return 0; /* any two slots will do: sizes are checked per image */
}

static int install(airlock_boot_t *b, uint32_t image_len, int swap_type)
{
    const airlock_area_t *pri = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *sec = boot_area(b, AIRLOCK_AREA_SECONDARY);
    uint32_t tstart = airlock_trailer_start(pri, &b->geom[AIRLOCK_AREA_PRIMARY]);
    (void)swap_type;
    if (image_len > tstart) {
        return AIRLOCK_ERR_TOO_BIG;
    }
    /* The image's sectors, then the old trailer: a fresh primary. */
    int rc = boot_erase_range(pri, 0, image_len);
    if (rc == 0) {
        rc = boot_erase_if_used(b, pri, tstart, image_len);
    }
    if (rc == 0) {
        rc = boot_copy(b, pri, sec, 0, image_len);
    }
    return rc;
}

const airlock_engine_t airlock_engine_overwrite = {
    .name = "overwrite",
    .caps = 0,
    .check = check,
    .stage_offset = NULL,
    .reserve = NULL,
    .install = install,
    .select = NULL,
    .revert = NULL,
};
