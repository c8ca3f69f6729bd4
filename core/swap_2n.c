/*
 * swap-2n: a revertible swap that erases each image sector of each slot
 * once (2n erases for n sectors, plus O(1) for trailers and the journal).
 *
 * The update is staged in the secondary D bytes in (D >= the largest chunk,
 * on a chunk boundary). For chunk k = [c, e):
 *   step 1: erase S[c, e), copy old P[c, e) into it;
 *   step 2: erase P[c, e), copy new S[D + c, D + e) into it.
 * Step 1 destroys S[c, e), which held new bytes below e - D <= c: already in
 * the primary. S[D + c, D + e) is erased only by a later step 1 (at chunk
 * offsets >= D + c >= e). So each step's input is intact until the step is
 * journalled done, and a reset repeats at most the step it interrupted.
 * Afterwards the old image sits at S[0, E), where the common revert finds
 * it. A permanent update skips step 1: nothing needs keeping.
 */
#include "journal.h"
#include "swap_priv.h"

static uint32_t stage_offset(const airlock_boot_t *b)
{
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    uint32_t biggest =
        swap_largest_chunk(b, airlock_trailer_start(p, &b->geom[AIRLOCK_AREA_PRIMARY]));
    /* D itself on a chunk boundary, so the staged image starts a sector */
    uint32_t d = 0;
    while (d < biggest) {
        d = boot_chunk_end(b, d);
    }
    return d;
}

static int check(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    const char *why = NULL;
    if (!boot_area(b, AIRLOCK_AREA_STATUS)->flash) {
        why = "status area (swap-2n keeps its journal there)";
    } else if (stage_offset(b) >= airlock_trailer_start(s, &b->geom[AIRLOCK_AREA_SECONDARY])) {
        why = "secondary too small for swap-2n's staging offset";
    }
    return swap_refuse(det, why);
}

static int install(airlock_boot_t *b, uint32_t new_len, int type)
{
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    uint32_t d = stage_offset(b);
    int rc = swap_begin(b, new_len, type, d, 0);
    if (rc) {
        return rc;
    }
    bool keep_old = swap_type(b) != AIRLOCK_SWAP_PERM;
    uint32_t extent = swap_extent(b), k = 0, c = 0;
    while (c < extent) {
        uint32_t e = boot_chunk_end(b, c);
        uint32_t n = (e < extent ? e : extent) - c;
        rc = keep_old ? swap_step(b, k, 1, s, c, e - c, p, c, n) : 0;
        rc = rc ? rc : swap_step(b, k, 2, p, c, e - c, s, d + c, swap_new_bytes(b, c, e));
        if (rc) {
            return rc;
        }
        k++;
        c = e;
    }
    return boot_finish_swap(b, swap_type(b), c);
}

const airlock_engine_t airlock_engine_swap_2n = {
    .name = "swap-2n",
    .caps = AIRLOCK_ENGINE_CAN_REVERT,
    .check = check,
    .stage_offset = stage_offset,
    .reserve = NULL,
    .install = install,
    .select = NULL,
    .revert = swap_revert,
};
