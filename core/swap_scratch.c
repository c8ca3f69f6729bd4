/*
 * swap-scratch: the classic revertible swap through a scratch area, for
 * layouts that cannot spare swap-2n's staging room. For chunk k = [c, e):
 *   step 1: erase scratch, copy old P[c, e) into it;
 *   step 2: erase P[c, e), copy new S[c, e) into it;
 *   step 3: erase S[c, e), copy old from scratch into it.
 * Inputs stay intact until their step is journalled done: P[c, e) until
 * step 2, S[c, e) until step 3, the scratch copy until the next chunk's
 * step 1. About 3n erases, the scratch sectors n each. The old image ends
 * at S[0, E) for the common revert; a permanent update only runs step 2.
 */
#include "journal.h"
#include "swap_priv.h"

static int check(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *sc = boot_area(b, AIRLOCK_AREA_SCRATCH);
    const char *why = NULL;
    if (!boot_area(b, AIRLOCK_AREA_STATUS)->flash) {
        why = "status area (swap-scratch keeps its journal there)";
    } else if (!sc->flash) {
        why = "scratch area (swap-scratch needs one)";
    } else if (sc->size <
               swap_largest_chunk(b, airlock_trailer_start(p, &b->geom[AIRLOCK_AREA_PRIMARY]))) {
        why = "scratch area smaller than the largest chunk of the slots";
    }
    return swap_refuse(det, why);
}

static int install(airlock_boot_t *b, uint32_t new_len, int type)
{
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    const airlock_area_t *sc = boot_area(b, AIRLOCK_AREA_SCRATCH);
    int rc = swap_begin(b, new_len, type, 0, 0);
    if (rc) {
        return rc;
    }
    bool keep_old = swap_type(b) != AIRLOCK_SWAP_PERM;
    uint32_t extent = swap_extent(b), k = 0, c = 0;
    while (c < extent) {
        uint32_t e = boot_chunk_end(b, c);
        uint32_t n = (e < extent ? e : extent) - c;
        rc = keep_old ? swap_step(b, k, 1, sc, 0, e - c, p, c, n) : 0;
        rc = rc ? rc : swap_step(b, k, 2, p, c, e - c, s, c, swap_new_bytes(b, c, e));
        rc = rc || !keep_old ? rc : swap_step(b, k, 3, s, c, e - c, sc, 0, n);
        if (rc) {
            return rc;
        }
        k++;
        c = e;
    }
    return boot_finish_swap(b, swap_type(b), c);
}

const airlock_engine_t airlock_engine_swap_scratch = {
    .name = "swap-scratch",
    .caps = AIRLOCK_ENGINE_CAN_REVERT,
    .check = check,
    .stage_offset = NULL,
    .reserve = NULL,
    .install = install,
    .select = NULL,
    .revert = swap_revert,
};
