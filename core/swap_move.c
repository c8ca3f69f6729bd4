/*
 * swap-move: a revertible swap without scratch or staging room, for a
 * primary one chunk larger than the images (chunks must all be the same
 * size). With m chunks covering the extent:
 *   phase A, k = m-1 down to 0: erase P[k+1], copy P[k] into it (the old
 *     image moves up one chunk; P[k+1]'s content was moved just before);
 *   phase B, k = 0 up to m-1:
 *     step 1: erase P[k], copy new S[k] into it (P[k] held old k-1, already
 *       saved in S[k-1], or for k = 0 old 0, already in P[1]);
 *     step 2: erase S[k], copy old k from P[k+1] into it (P[k+1] is only
 *       overwritten by the next chunk's step 1).
 * Journal steps are numbered in execution order (phase A as chunks 0..m-1,
 * phase B as chunks m..2m-1), so a reset repeats at most the interrupted
 * step. About 3m erases. The old image ends at S[0, E) for the common revert;
 * a permanent update only runs phase B's step 1.
 */
#include "journal.h"
#include "swap_priv.h"

/* The chunk size if every chunk below limit has it, else 0. */
static uint32_t uniform_chunk(const airlock_boot_t *b, uint32_t limit)
{
    uint32_t size = 0;
    for (uint32_t c = 0; c < limit;) {
        uint32_t e = boot_chunk_end(b, c);
        if (size == 0) {
            size = e - c;
        } else if (e - c != size && e < limit) {
            return 0;
        }
        c = e;
    }
    return size;
}

static uint32_t plimit(const airlock_boot_t *b)
{
    return airlock_trailer_start(boot_area(b, AIRLOCK_AREA_PRIMARY),
                                 &b->geom[AIRLOCK_AREA_PRIMARY]);
}

static uint32_t reserve(const airlock_boot_t *b)
{
    return uniform_chunk(b, plimit(b));
}

static int check(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    const char *why = NULL;
    if (!boot_area(b, AIRLOCK_AREA_STATUS)->flash) {
        why = "status area (swap-move keeps its journal there)";
    } else if (uniform_chunk(b, plimit(b)) == 0) {
        why = "slots with sector boundaries that do not repeat evenly (swap-move shifts by one)";
    }
    return swap_refuse(det, why);
}

static int install(airlock_boot_t *b, uint32_t new_len, int type)
{
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    uint32_t cs = uniform_chunk(b, plimit(b));
    int rc = swap_begin(b, new_len, type, 0, cs);
    if (rc) {
        return rc;
    }
    bool keep_old = swap_type(b) != AIRLOCK_SWAP_PERM;
    uint32_t extent = swap_extent(b);
    uint32_t m = (extent + cs - 1u) / cs;
    /* phase A: shift the old image up one chunk, top chunk first */
    for (uint32_t i = 0; keep_old && i < m; i++) {
        uint32_t k = m - 1u - i, c = k * cs;
        uint32_t n = (c + cs < extent ? c + cs : extent) - c;
        rc = swap_step(b, i, 1, p, c + cs, cs, p, c, n);
        if (rc) {
            return rc;
        }
    }
    /* phase B: new chunk k into the primary, old chunk k into the secondary */
    for (uint32_t k = 0; k < m; k++) {
        uint32_t c = k * cs;
        uint32_t n = (c + cs < extent ? c + cs : extent) - c;
        rc = swap_step(b, m + k, 1, p, c, cs, s, c, swap_new_bytes(b, c, c + cs));
        rc = rc || !keep_old ? rc : swap_step(b, m + k, 2, s, c, cs, p, c + cs, n);
        if (rc) {
            return rc;
        }
    }
    /* the primary's spare chunk held old data up to m*cs + cs */
    return boot_finish_swap(b, swap_type(b), keep_old ? (m + 1u) * cs : m * cs);
}

const airlock_engine_t airlock_engine_swap_move = {
    .name = "swap-move",
    .caps = AIRLOCK_ENGINE_CAN_REVERT,
    .check = check,
    .stage_offset = NULL,
    .reserve = reserve,
    .install = install,
    .select = NULL,
    .revert = swap_revert,
};
