/*
 * The journalled chunk machinery shared by the swap engines: chunk
 * geometry, copying, resuming from the journal, and the revert (copy the
 * old image, kept at the start of the secondary, back over the primary).
 * A chunk is the smallest run of sectors starting and ending on a boundary
 * of both slots, so slots with different sector maps still swap.
 * Every step is journalled only after it completed, so a reset repeats at
 * most the step it interrupted; each engine argues why its steps' inputs
 * are intact until they are journalled done.
 */
#include "swap_priv.h"

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

uint32_t swap_largest_chunk(const airlock_boot_t *b, uint32_t limit)
{
    uint32_t biggest = 0;
    for (uint32_t c = 0; c < limit;) {
        uint32_t e = boot_chunk_end(b, c);
        if (e - c > biggest) {
            biggest = e - c;
        }
        c = e;
    }
    return biggest;
}

int swap_copy(airlock_boot_t *b, const airlock_area_t *dst, uint32_t to, const airlock_area_t *src,
              uint32_t from, uint32_t len)
{
    uint32_t ws = dst->flash->write_size;
    uint32_t chunk = b->cfg->buf_len / ws * ws;
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < chunk ? len - done : chunk;
        uint32_t padded = (n + ws - 1u) / ws * ws;
        int rc = boot_read(src, from + done, b->cfg->buf, n);
        if (rc) {
            return rc;
        }
        for (uint32_t i = n; i < padded; i++) {
            b->cfg->buf[i] = dst->flash->erased_val;
        }
        rc = boot_prog(dst, to + done, b->cfg->buf, padded);
        if (rc) {
            return rc;
        }
        done += n;
        boot_feed(b);
    }
    return 0;
}

int swap_begin(airlock_boot_t *b, uint32_t new_len, int swap_type, uint32_t stage, uint32_t reserve)
{
    journal_t *j = boot_journal(b);
    const airlock_area_t *p = boot_area(b, AIRLOCK_AREA_PRIMARY);
    const airlock_area_t *s = boot_area(b, AIRLOCK_AREA_SECONDARY);
    if (j->in_swap) {
        return 0; /* resuming: the journal has the extent */
    }
    uint32_t extent = new_len > b->old_end ? new_len : b->old_end;
    uint32_t plim = airlock_trailer_start(p, &b->geom[AIRLOCK_AREA_PRIMARY]);
    if ((uint64_t)stage + new_len > s->size || (uint64_t)extent + reserve > plim ||
        extent > airlock_trailer_start(s, &b->geom[AIRLOCK_AREA_SECONDARY])) {
        return AIRLOCK_ERR_TOO_BIG;
    }
    /* The length first: a BEGIN is only ever replayed with its length. */
    int rc = journal_append(j, JR_LEN, new_len, 0);
    return rc ? rc : journal_append(j, JR_BEGIN, (uint32_t)swap_type, extent);
}

uint32_t swap_new_bytes(const airlock_boot_t *b, uint32_t c, uint32_t e)
{
    uint32_t len = b->journal.new_len;
    uint32_t end = e < len ? e : len;
    return end > c ? end - c : 0;
}

/* Order of the journal's (chunk, step) pairs: is (k, s) already done? */
bool swap_done(const airlock_boot_t *b, uint32_t k, uint32_t s)
{
    const journal_t *j = &b->journal;
    if (!j->has_step) {
        return false;
    }
    return k < j->step_chunk || (k == j->step_chunk && s <= j->step);
}

int swap_step_done(airlock_boot_t *b, uint32_t k, uint32_t s)
{
    return journal_append(boot_journal(b), JR_STEP, k, s);
}

uint32_t swap_extent(const airlock_boot_t *b)
{
    return (&b->journal)->extent;
}

uint32_t swap_type(const airlock_boot_t *b)
{
    return (&b->journal)->swap_type;
}

int swap_step(airlock_boot_t *b, uint32_t k, uint32_t step, const airlock_area_t *dst, uint32_t to,
              uint32_t span, const airlock_area_t *src, uint32_t from, uint32_t len)
{
    if (swap_done(b, k, step)) {
        return 0;
    }
    int rc = boot_erase_range(dst, to, span);
    rc = rc ? rc : swap_copy(b, dst, to, src, from, len);
    return rc ? rc : swap_step_done(b, k, step);
}

int swap_refuse(airlock_err_detail_t *det, const char *why)
{
    if (why && det) {
        det->field = why;
        det->offset = 0;
        det->has_values = 0;
    }
    return why ? AIRLOCK_ERR_LAYOUT : 0;
}

/*
 * Revert: the old image is at S[0, E) (every swap engine leaves it there).
 * Per chunk: erase P, copy S back. S is only read, so a reset anywhere
 * repeats at most one chunk.
 */
int swap_revert(airlock_boot_t *b)
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
    uint32_t extent = j->extent, k = 0, c = 0;
    while (c < extent) {
        uint32_t e = boot_chunk_end(b, c);
        uint32_t n = (e < extent ? e : extent) - c;
        rc = swap_step(b, k, 1, p, c, e - c, s, c, n);
        if (rc) {
            return rc;
        }
        k++;
        c = e;
    }
    return boot_finish_swap(b, AIRLOCK_SWAP_REVERT, c);
}
