/*
 * swap-2n: a revertible swap that erases each image sector of each slot
 * once (2n erases for n sectors, plus O(1) for trailers and the journal).
 *
 * The update is staged in the secondary D bytes in (D = the largest chunk,
 * a chunk being the smallest run of sectors that starts and ends on a
 * boundary of both slots, so mixed sector maps work). For chunk k = [c, e):
 *   step 1: erase S[c, e), copy old P[c, e) into it;
 *   step 2: erase P[c, e), copy new S[D + c, D + e) into it.
 * S[c, e) held new bytes below c + D - (e - c) <= c: already in the primary.
 * S[D + c, D + e) is only erased by a later step 1 (at chunk offsets >= e).
 * So each step's input is intact until the step is journalled done, and a
 * reset repeats at most the step it interrupted. After the swap the old
 * image sits at S[0, E): revert copies it back (one erase per chunk).
 * A permanent update skips step 1: nothing needs to be kept.
 */
#include "boot_priv.h"
#include "journal.h"

/* First sector boundary of area a after off (relative to the area). */
static uint32_t next_boundary(const airlock_area_t *a, uint32_t off)
{
    uint32_t start, size;
    if (off >= a->size || airlock_flash_sector(a->flash, a->off + off, &start, &size) != 0) {
        return a->size;
    }
    uint32_t end = start + size - a->off;
    return end < a->size ? end : a->size;
}

uint32_t boot_chunk_end(const airlock_boot_t *b, uint32_t off)
{
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    uint32_t lim = p->size < s->size ? p->size : s->size;
    uint32_t cp = next_boundary(p, off), cs = next_boundary(s, off);
    while (cp != cs && cp < lim && cs < lim) {
        if (cp < cs) {
            cp = next_boundary(p, cp);
        } else {
            cs = next_boundary(s, cs);
        }
    }
    return cp == cs && cp < lim ? cp : lim;
}

static uint32_t stage_offset(const airlock_boot_t *b)
{
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    uint32_t limit = airlock_trailer_start(p, &b->geom[AIRLOCK_AREA_PRIMARY]);
    uint32_t biggest = 0;
    for (uint32_t c = 0; c < limit;) {
        uint32_t e = boot_chunk_end(b, c);
        if (e - c > biggest) {
            biggest = e - c;
        }
        c = e;
    }
    /* D itself on a chunk boundary, so the staged image starts a sector */
    uint32_t d = 0;
    while (d < biggest) {
        d = boot_chunk_end(b, d);
    }
    return d;
}

static int check(const airlock_boot_t *b, airlock_err_detail_t *det)
{
    const airlock_area_t *st = boot_area(b, AIRLOCK_AREA_STATUS);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    if (!st->flash) {
        if (det) {
            det->field = "status area (swap-2n keeps its journal there)";
            det->offset = 0;
            det->has_values = 0;
        }
        return AIRLOCK_ERR_LAYOUT;
    }
    if (stage_offset(b) >= airlock_trailer_start(s, &b->geom[AIRLOCK_AREA_SECONDARY])) {
        if (det) {
            det->field = "secondary too small for swap-2n's staging offset";
            det->offset = stage_offset(b);
            det->has_values = 0;
        }
        return AIRLOCK_ERR_LAYOUT;
    }
    return 0;
}

/* Copy [from, from + len) of src to [to, ...) of dst (dst erased there). */
static int copy_at(airlock_boot_t *b, const airlock_area_t *dst, uint32_t to,
                   const airlock_area_t *src, uint32_t from, uint32_t len)
{
    uint32_t ws = dst->flash->write_size;
    uint32_t chunk = b->cfg->buf_len / ws * ws;
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < chunk ? len - done : chunk;
        uint32_t padded = (n + ws - 1u) / ws * ws;
        int rc = boot_read(b, src, from + done, b->cfg->buf, n);
        if (rc) {
            return rc;
        }
        for (uint32_t i = n; i < padded; i++) {
            b->cfg->buf[i] = dst->flash->erased_val;
        }
        rc = boot_prog(b, dst, to + done, b->cfg->buf, padded);
        if (rc) {
            return rc;
        }
        done += n;
        boot_feed(b);
    }
    return 0;
}

/* Where a journalled operation stands: the next (chunk, step) to run. */
static void resume_point(const journal_t *j, uint32_t first_step, uint32_t *chunk,
                         uint32_t *step)
{
    *chunk = 0;
    *step = first_step;
    if (j->has_step) {
        *chunk = j->step_chunk;
        *step = j->step + 1u;
        if (*step > 2u) {
            (*chunk)++;
            *step = first_step;
        }
    }
}

static int install(airlock_boot_t *b, uint32_t new_len, int swap_type)
{
    journal_t *j = boot_journal(b);
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    uint32_t d = stage_offset(b);
    int rc;
    if (!j->in_swap) {
        uint32_t extent = new_len > b->old_end ? new_len : b->old_end;
        if ((uint64_t)d + extent > s->size ||
            extent > airlock_trailer_start(p, &b->geom[AIRLOCK_AREA_PRIMARY]) ||
            extent > airlock_trailer_start(s, &b->geom[AIRLOCK_AREA_SECONDARY])) {
            return AIRLOCK_ERR_TOO_BIG;
        }
        rc = journal_append(j, JR_BEGIN, (uint32_t)swap_type, extent);
        if (rc) {
            return rc;
        }
    }
    uint32_t type = j->swap_type, extent = j->extent;
    uint32_t first = type == AIRLOCK_SWAP_PERM ? 2u : 1u;
    uint32_t k0, step;
    resume_point(j, first, &k0, &step);
    uint32_t k = 0, c = 0;
    while (c < extent) {
        uint32_t e = boot_chunk_end(b, c);
        uint32_t n = (e < extent ? e : extent) - c;
        if (k >= k0) {
            if (step == 1u) {
                rc = boot_erase_range(b, s, c, e - c);
                if (rc == 0) {
                    rc = copy_at(b, s, c, p, c, n);
                }
                if (rc == 0) {
                    rc = journal_append(j, JR_STEP, k, 1);
                }
                if (rc) {
                    return rc;
                }
            }
            rc = boot_erase_range(b, p, c, e - c);
            if (rc == 0) {
                rc = copy_at(b, p, c, s, d + c, n);
            }
            if (rc == 0) {
                rc = journal_append(j, JR_STEP, k, 2);
            }
            if (rc) {
                return rc;
            }
            step = first;
        }
        k++;
        c = e;
    }
    return boot_finish_swap(b, type, c);
}

static int revert(airlock_boot_t *b)
{
    journal_t *j = boot_journal(b);
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    int rc;
    if (!j->in_swap) {
        rc = journal_append(j, JR_BEGIN, AIRLOCK_SWAP_REVERT, j->extent);
        if (rc) {
            return rc;
        }
    }
    uint32_t extent = j->extent;
    uint32_t k0, step;
    resume_point(j, 2u, &k0, &step);
    uint32_t k = 0, c = 0;
    while (c < extent) {
        uint32_t e = boot_chunk_end(b, c);
        uint32_t n = (e < extent ? e : extent) - c;
        if (k >= k0) {
            rc = boot_erase_range(b, p, c, e - c);
            if (rc == 0) {
                rc = copy_at(b, p, c, s, c, n);
            }
            if (rc == 0) {
                rc = journal_append(j, JR_STEP, k, 2);
            }
            if (rc) {
                return rc;
            }
        }
        k++;
        c = e;
    }
    return boot_finish_swap(b, AIRLOCK_SWAP_REVERT, c);
}

const airlock_engine_t airlock_engine_swap_2n = {
    .name = "swap-2n",
    .caps = AIRLOCK_ENGINE_CAN_REVERT,
    .check = check,
    .stage_offset = stage_offset,
    .install = install,
    .revert = revert,
};
