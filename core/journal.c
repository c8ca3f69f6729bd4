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

#define REC_BYTES 16u

static uint32_t crc32(const uint8_t *p, uint32_t n)
{
    uint32_t c = 0xffffffffu;
    for (uint32_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }
    return ~c;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/*
 * A record is 16 bytes of 7 payload bits each (type 8, a 32, b 32, CRC-32
 * 32 = 104 bits, in the first 15 bytes; the 16th is a fixed marker). The
 * spare top bit is set opposite to the erased value, so no byte of a written
 * record ever reads erased: every write unit of a record visibly changes,
 * and a torn record can never pass for an empty place. Records are padded
 * to the write size with erased bytes.
 */
#define REC_MARK 0x2au

static uint8_t top_bit(const journal_t *j)
{
    return j->area->flash->erased_val == 0xff ? 0x00u : 0x80u;
}

static void pack(uint8_t *rec, const uint8_t raw[13], uint8_t top)
{
    uint32_t acc = 0, bits = 0, in = 0;
    for (int i = 0; i < 15; i++) {
        while (bits < 7) {
            acc |= (uint32_t)(in < 13 ? raw[in] : 0u) << bits;
            in++;
            bits += 8;
        }
        rec[i] = (uint8_t)((acc & 0x7fu) | top);
        acc >>= 7;
        bits -= 7;
    }
    rec[15] = (uint8_t)(REC_MARK | top);
}

static bool unpack(const uint8_t *rec, uint8_t raw[13], uint8_t top)
{
    uint32_t acc = 0, bits = 0, out = 0;
    if (rec[15] != (uint8_t)(REC_MARK | top)) {
        return false;
    }
    for (int i = 0; i < 15; i++) {
        if ((rec[i] & 0x80u) != top) {
            return false;
        }
        acc |= (uint32_t)(rec[i] & 0x7fu) << bits;
        bits += 7;
        while (bits >= 8 && out < 13) {
            raw[out++] = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    return true;
}

static void encode(const journal_t *j, uint8_t *rec, uint32_t type, uint32_t a, uint32_t b)
{
    uint8_t raw[13];
    memset(rec, j->area->flash->erased_val, j->rec_size);
    raw[0] = (uint8_t)type;
    put32(raw + 1, a);
    put32(raw + 5, b);
    put32(raw + 9, crc32(raw, 9));
    pack(rec, raw, top_bit(j));
}

static bool erased(const journal_t *j, const uint8_t *rec)
{
    for (uint32_t i = 0; i < j->rec_size; i++) {
        if (rec[i] != j->area->flash->erased_val) {
            return false;
        }
    }
    return true;
}

/* Decode a record; false when it is torn or not a record. */
static bool decode(const journal_t *j, const uint8_t *rec, uint32_t *type, uint32_t *a,
                   uint32_t *b)
{
    uint8_t raw[13];
    if (!unpack(rec, raw, top_bit(j)) || get32(raw + 9) != crc32(raw, 9)) {
        return false;
    }
    *type = raw[0];
    *a = get32(raw + 1);
    *b = get32(raw + 5);
    return true;
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
        break;
    case JR_STEP:
        j->has_step = true;
        j->step_chunk = a;
        j->step = b;
        break;
    case JR_END:
        j->in_swap = false;
        j->has_step = false;
        j->trial = a == 2u; /* AIRLOCK_SWAP_TEST */
        j->extent = b;
        break;
    case JR_RESOLVE:
        j->trial = false;
        break;
    case JR_LEN:
        j->new_len = a;
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

int journal_open(journal_t *j, const airlock_area_t *area)
{
    uint32_t start, size;
    memset(j, 0, sizeof(*j));
    j->area = area;
    if (!area || !area->flash) {
        return AIRLOCK_ERR_LAYOUT;
    }
    j->rec_size = area->flash->write_size > REC_BYTES ? area->flash->write_size : REC_BYTES;
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
    int64_t g0 = header_gen(j, 0), g1 = header_gen(j, 1);
    if (g0 == -2 || g1 == -2) {
        return AIRLOCK_ERR_IO;
    }
    if (g0 < 0 && g1 < 0) {
        /* Blank (or never completed) journal: start one in sector 0. */
        int rc = erase_sec(j, 0);
        if (rc == 0) {
            rc = prog_rec(j, 0, 0, JR_HDR, 1, 0);
        }
        j->active = 0;
        j->gen = 1;
        j->next = j->rec_size;
        return rc;
    }
    j->active = g1 > g0 ? 1 : 0;
    j->gen = (uint32_t)(g1 > g0 ? g1 : g0);
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
    if (rc == 0 && j->trial) {
        rc = prog_rec(j, o, pos, JR_END, 2u, j->extent);
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
