/*
 * Boot journal (see journal.h). Power-safety argument, per operation:
 * - append: one record, one program. A cut leaves it erased (the operation
 *   did not happen), complete, or torn: a torn record fails its CRC and is
 *   skipped, and the next append goes after it (never reprogrammed).
 * - compaction: erase the other sector, write the summary, write its header
 *   last. Until that header is complete the old sector (valid header, older
 *   generation wins only if the new one is invalid) stays current, and the
 *   old sector is never touched, so a cut anywhere loses nothing.
 * - format: only when neither sector has a valid header (a blank part).
 */
#include "journal.h"

#include <string.h>

#include "airlock/err.h"
#include "record.h"

/* Records: see core/record.h (no byte of a written record reads erased). */

static void encode(const journal_t *j, uint8_t *rec, uint32_t type, uint32_t a, uint32_t b)
{
    record_encode(rec, j->rec_size, j->area->flash->erased_val, type, a, b);
}

static bool erased(const journal_t *j, const uint8_t *rec)
{
    return record_erased(rec, j->rec_size, j->area->flash->erased_val);
}

/* Decode a record; false when it is torn or not a record. */
static bool decode(const journal_t *j, const uint8_t *rec, uint32_t *type, uint32_t *a,
                   uint32_t *b)
{
    return record_decode(rec, j->area->flash->erased_val, type, a, b);
}

static int read_rec(const journal_t *j, int sec, uint32_t off, uint8_t *rec)
{
    const airlock_flash_t *fl = j->area->flash;
    return fl->read(fl->ctx, j->area->off + j->sec_off[sec] + off, rec, j->rec_size)
               ? AIRLOCK_ERR_IO
               : 0;
}

static int prog_rec(journal_t *j, int sec, uint32_t off, uint32_t type, uint32_t a, uint32_t b)
{
    uint8_t rec[32];
    const airlock_flash_t *fl = j->area->flash;
    encode(j, rec, type, a, b);
    if (fl->prog(fl->ctx, j->area->off + j->sec_off[sec] + off, rec, j->rec_size) != 0) {
        return AIRLOCK_ERR_IO;
    }
    return fl->sync && fl->sync(fl->ctx) ? AIRLOCK_ERR_IO : 0;
}

static int erase_sec(journal_t *j, int sec)
{
    const airlock_flash_t *fl = j->area->flash;
    if (fl->erase(fl->ctx, j->area->off + j->sec_off[sec]) != 0) {
        return AIRLOCK_ERR_IO;
    }
    return fl->sync && fl->sync(fl->ctx) ? AIRLOCK_ERR_IO : 0;
}

static void apply(journal_t *j, uint32_t type, uint32_t a, uint32_t b)
{
    switch (type) {
    case JR_BEGIN:
        j->in_swap = true;
        j->swap_type = a;
        j->extent = b;
        j->has_step = false;
        j->trial = false;
        j->reverted = false;
        if (a != 4u) { /* a new install: what an earlier revert removed is history */
            j->has_rev_version = false;
        }
        break;
    case JR_STEP:
        j->has_step = true;
        j->step_chunk = a;
        j->step = b;
        break;
    case JR_END:
        j->in_swap = false;
        j->has_step = false;
        j->trial = a == 2u;    /* AIRLOCK_SWAP_TEST */
        j->reverted = a == 4u; /* AIRLOCK_SWAP_REVERT */
        j->extent = b;
        break;
    case JR_RESOLVE:
        j->trial = false;
        break;
    case JR_LEN:
        j->new_len = a;
        break;
    case JR_REVERTED:
        j->has_rev_version = true;
        j->rev_version.major = (uint8_t)(a >> 24);
        j->rev_version.minor = (uint8_t)(a >> 16);
        j->rev_version.revision = (uint16_t)a;
        j->rev_version.build = b;
        break;
    case JR_SECCNT:
        if (!j->has_sec_cnt || a > j->sec_cnt) {
            j->sec_cnt = a;
        }
        j->has_sec_cnt = true;
        break;
    default:
        break;
    }
}

/* Header generation of a sector, or -1 when it has no valid header. */
static int64_t header_gen(journal_t *j, int sec)
{
    uint8_t rec[32];
    uint32_t type, a, b;
    if (read_rec(j, sec, 0, rec) != 0) {
        return -2;
    }
    if (!decode(j, rec, &type, &a, &b) || type != JR_HDR) {
        return -1;
    }
    return a;
}

static int replay(journal_t *j)
{
    uint8_t rec[32];
    uint32_t pos = j->rec_size;
    while (pos + j->rec_size <= j->sec_size[j->active]) {
        int rc = read_rec(j, j->active, pos, rec);
        if (rc) {
            return rc;
        }
        if (erased(j, rec)) {
            break;
        }
        uint32_t type, a, b;
        if (decode(j, rec, &type, &a, &b)) {
            apply(j, type, a, b);
        }
        pos += j->rec_size; /* a torn record is skipped, never rewritten */
    }
    j->next = pos;
    return 0;
}

/* Geometry of the two journal sectors; then which one is current. */
static int locate(journal_t *j, const airlock_area_t *area, int64_t *g0, int64_t *g1)
{
    uint32_t start, size;
    memset(j, 0, sizeof(*j));
    j->area = area;
    if (!area || !area->flash) {
        return AIRLOCK_ERR_LAYOUT;
    }
    j->rec_size = area->flash->write_size > RECORD_BYTES ? area->flash->write_size : RECORD_BYTES;
    uint32_t off = 0;
    for (int s = 0; s < 2; s++) {
        if (airlock_flash_sector(area->flash, area->off + off, &start, &size) != 0 ||
            start != area->off + off || off + size > area->size || size < 8u * j->rec_size) {
            return AIRLOCK_ERR_LAYOUT;
        }
        j->sec_off[s] = off;
        j->sec_size[s] = size;
        off += size;
    }
    *g0 = header_gen(j, 0);
    *g1 = header_gen(j, 1);
    if (*g0 == -2 || *g1 == -2) {
        return AIRLOCK_ERR_IO;
    }
    j->active = *g1 > *g0 ? 1 : 0;
    j->gen = (uint32_t)(*g1 > *g0 ? *g1 : *g0);
    return 0;
}

int journal_open(journal_t *j, const airlock_area_t *area)
{
    int64_t g0, g1;
    int rc = locate(j, area, &g0, &g1);
    if (rc) {
        return rc;
    }
    if (g0 < 0 && g1 < 0) {
        /* Blank (or never completed) journal: start one in sector 0. */
        rc = erase_sec(j, 0);
        if (rc == 0) {
            rc = prog_rec(j, 0, 0, JR_HDR, 1, 0);
        }
        j->active = 0;
        j->gen = 1;
        j->next = j->rec_size;
        return rc;
    }
    return replay(j);
}

int journal_peek(journal_t *j, const airlock_area_t *area)
{
    int64_t g0, g1;
    int rc = locate(j, area, &g0, &g1);
    if (rc || (g0 < 0 && g1 < 0)) {
        return rc; /* a blank journal holds nothing: the zeroed state */
    }
    return replay(j);
}

/* Summarise the state into the other sector and make it current. */
static int compact(journal_t *j)
{
    int o = 1 - j->active;
    uint32_t pos = j->rec_size;
    int rc = erase_sec(j, o);
    if (rc == 0 && j->has_sec_cnt) {
        rc = prog_rec(j, o, pos, JR_SECCNT, j->sec_cnt, 0);
        pos += j->rec_size;
    }
    if (rc == 0 && j->has_rev_version) {
        const airlock_version_t *v = &j->rev_version;
        rc = prog_rec(j, o, pos, JR_REVERTED,
                      (uint32_t)v->major << 24 | (uint32_t)v->minor << 16 | v->revision,
                      v->build);
        pos += j->rec_size;
    }
    if (rc == 0 && j->in_swap) {
        rc = prog_rec(j, o, pos, JR_LEN, j->new_len, 0);
        pos += j->rec_size;
    }
    if (rc == 0 && j->in_swap) {
        rc = prog_rec(j, o, pos, JR_BEGIN, j->swap_type, j->extent);
        pos += j->rec_size;
        if (rc == 0 && j->has_step) {
            rc = prog_rec(j, o, pos, JR_STEP, j->step_chunk, j->step);
            pos += j->rec_size;
        }
    }
    if (rc == 0 && !j->in_swap && (j->trial || j->reverted)) {
        rc = prog_rec(j, o, pos, JR_END, j->trial ? 2u : 4u, j->extent);
        pos += j->rec_size;
    }
    /* The header last: the sector counts only once its summary is whole. */
    if (rc == 0) {
        rc = prog_rec(j, o, 0, JR_HDR, j->gen + 1u, 0);
    }
    if (rc) {
        return rc;
    }
    j->active = o;
    j->gen++;
    j->next = pos;
    return 0;
}

int journal_append(journal_t *j, uint32_t type, uint32_t a, uint32_t b)
{
    if (j->next + j->rec_size > j->sec_size[j->active]) {
        int rc = compact(j);
        if (rc) {
            return rc;
        }
    }
    int rc = prog_rec(j, j->active, j->next, type, a, b);
    /* Even a failed (torn) program consumes the position. */
    j->next += j->rec_size;
    if (rc) {
        return rc;
    }
    apply(j, type, a, b);
    return 0;
}
