/*
 * The device update agent (include/airlock/ota.h): streams an image into the
 * secondary slot with lazy erases, checks every header and TLV field as it
 * arrives, hashes while streaming, and keeps append-only progress records in
 * the secondary's swap-status area so a power cut costs at most one sector;
 * never writes the primary slot, never allocates, no OS headers.
 *
 * Power-safety argument (the secondary, from the agent's side):
 * - begin erases the trailer sectors ("tail"), then writes four ID records.
 *   A cut before the last ID record is whole leaves no valid ID: resume
 *   starts over (erasing the tail again).
 * - Image sectors outside the tail are erased when the write position
 *   enters them, once per session. A PROG record (bytes D, CRC of [0, D)) is
 *   appended only after every byte below D was programmed and synced, and D
 *   is a sector end (or the image end). So after a cut, [0, D) is intact and
 *   the sector at D is re-erased when the resumed session enters it: no unit
 *   is ever programmed twice.
 * - Tail sectors are never erased while their records matter; resume
 *   continues into the tail only if its image part above D still reads
 *   erased, otherwise it starts over.
 * - A torn tail erase may leave older records of the same id: resume only
 *   trusts them if the CRC of the prefix they describe still matches.
 * - Records use 7-bit bytes with the top bit opposite the erased value (as
 *   the boot journal does): a torn record never reads erased, so it is
 *   skipped and its place is never programmed twice.
 */
#include "airlock/ota.h"

#include <string.h>

#include "airlock/trailer.h"
#include "bytes.h"
#include "journal.h"
#include "record.h"
#include "airlock/crc32.h"

_Static_assert(sizeof(airlock_ota_t) <= 1024, "airlock_ota_t grew past its documented size");

enum phase {
    PH_IDLE = 0,
    PH_WRITING = 1,
    PH_COMPLETE = 2, /* every byte written and durable */
    PH_VERIFIED = 3,
    PH_FAILED = 4,
};

enum rec_type {
    R_ID0 = 1,  /* R_ID0..R_ID0+3: a, b = 8 bytes of the id each */
    R_PROG = 8, /* a: image bytes durably written, b: CRC-32 of them */
};

#define ID_RECS 4u
#define SIG_MAX 512u

/* Keep the big stack users (hash states, the signature) in separate frames. */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

#define BAD_FLAGS_MASK                                                                             \
    (AIRLOCK_IMAGE_F_NON_BOOTABLE | AIRLOCK_IMAGE_F_ENCRYPTED_AES128 |                             \
     AIRLOCK_IMAGE_F_ENCRYPTED_AES256 | AIRLOCK_IMAGE_F_COMPRESSED_LZMA1 |                         \
     AIRLOCK_IMAGE_F_COMPRESSED_LZMA2)

/* ---- little helpers ------------------------------------------------------ */

static int set_det(airlock_ota_t *ota, int err, const char *field, uint32_t off)
{
    memset(&ota->det, 0, sizeof(ota->det));
    ota->det.field = field;
    ota->det.offset = off;
    return err;
}

static int set_det_values(airlock_ota_t *ota, int err, const char *field, uint32_t off,
                          uint32_t expected, uint32_t found)
{
    set_det(ota, err, field, off);
    ota->det.expected = expected;
    ota->det.found = found;
    ota->det.has_values = 1;
    return err;
}

static void release_hash(airlock_ota_t *ota)
{
    if (ota->hashing) {
        ota->cfg->crypto->hash_finish(&ota->hash, NULL);
        ota->hashing = false;
    }
}

/* The download is dead: keep the error for every later call. */
static int fail(airlock_ota_t *ota, int err)
{
    release_hash(ota);
    ota->state = PH_FAILED;
    ota->err = err;
    return err;
}

/* ---- flash, relative to the secondary slot -------------------------------- */

static int sl_read(const airlock_ota_t *ota, uint32_t off, void *buf, uint32_t len)
{
    const airlock_flash_t *fl = ota->slot.flash;
    return fl->read(fl->ctx, ota->slot.off + off, buf, len) ? AIRLOCK_ERR_IO : 0;
}

static int sl_prog(const airlock_ota_t *ota, uint32_t off, const void *buf, uint32_t len)
{
    const airlock_flash_t *fl = ota->slot.flash;
    if (fl->prog(fl->ctx, ota->slot.off + off, buf, len) != 0) {
        return AIRLOCK_ERR_IO;
    }
    return fl->sync && fl->sync(fl->ctx) != 0 ? AIRLOCK_ERR_IO : 0;
}

/* Sector of the slot holding off: its start and end (slot offsets). */
static int sl_sector(const airlock_ota_t *ota, uint32_t off, uint32_t *s, uint32_t *e)
{
    uint32_t start, size;
    if (airlock_flash_sector(ota->slot.flash, ota->slot.off + off, &start, &size) != 0) {
        return AIRLOCK_ERR_INVAL;
    }
    *s = start - ota->slot.off;
    *e = *s + size;
    return 0;
}

/* Between bounded steps of long operations (erases, re-reads). */
static void feed_watchdog(const airlock_ota_t *ota)
{
    if (ota->cfg->watchdog_feed) {
        ota->cfg->watchdog_feed(ota->cfg->watchdog_ctx);
    }
}

static int sl_erase_sector(const airlock_ota_t *ota, uint32_t s)
{
    feed_watchdog(ota);
    const airlock_flash_t *fl = ota->slot.flash;
    if (fl->erase(fl->ctx, ota->slot.off + s) != 0) {
        return AIRLOCK_ERR_IO;
    }
    return fl->sync && fl->sync(fl->ctx) != 0 ? AIRLOCK_ERR_IO : 0;
}

/* Are [off, off + len) of the slot all erased? (reads through cfg->buf) */
static int sl_erased(const airlock_ota_t *ota, uint32_t off, uint32_t len, bool *yes)
{
    uint8_t *buf = ota->cfg->buf;
    *yes = true;
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < ota->cfg->buf_len ? len - done : ota->cfg->buf_len;
        int rc = sl_read(ota, off + done, buf, n);
        if (rc) {
            return rc;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (buf[i] != ota->slot.flash->erased_val) {
                *yes = false;
                return 0;
            }
        }
        done += n;
    }
    return 0;
}

/* ---- progress records ------------------------------------------------------ */

static void rec_encode(const airlock_ota_t *ota, uint8_t *rec, uint32_t type, uint32_t a,
                       uint32_t b)
{
    record_encode(rec, ota->rec_size, ota->slot.flash->erased_val, type, a, b);
}

static bool rec_decode(const airlock_ota_t *ota, const uint8_t *rec, uint32_t *type, uint32_t *a,
                       uint32_t *b)
{
    return record_decode(rec, ota->slot.flash->erased_val, type, a, b);
}

/* Program the next record place (spent even if the write fails). */
static int rec_append(airlock_ota_t *ota, uint32_t type, uint32_t a, uint32_t b)
{
    uint8_t rec[32];
    if (ota->rec_next >= ota->rec_cap) {
        return 0; /* full: later progress is just not resumable */
    }
    rec_encode(ota, rec, type, a, b);
    uint32_t at = ota->rec_off + ota->rec_next * ota->rec_size;
    ota->rec_next++;
    return sl_prog(ota, at, rec, ota->rec_size);
}

/* ---- streaming checks -------------------------------------------------------- */

static int hash_bytes(airlock_ota_t *ota, const uint8_t *p, uint32_t n)
{
    return ota->cfg->crypto->hash_update(&ota->hash, p, n) ? AIRLOCK_ERR_CRYPTO : 0;
}

/* The progress records' CRC over n more image bytes: the port's if it has one. */
static void crc_bytes(airlock_ota_t *ota, const uint8_t *p, uint32_t n)
{
    const airlock_crypto_t *c = ota->cfg->crypto;
    ota->crc = c->crc32 ? c->crc32(ota->crc, p, n) : airlock_crc32(ota->crc, p, n);
}

static int sec_cnt_check(airlock_ota_t *ota)
{
    if (ota->run_has_sec_cnt && (!ota->has_sec_cnt || ota->sec_cnt < ota->run_sec_cnt)) {
        return set_det_values(ota, AIRLOCK_ERR_SEC_CNT_ROLLBACK, "SEC_CNT",
                              ota->hdr.hdr_size + ota->hdr.img_size, ota->run_sec_cnt,
                              ota->sec_cnt);
    }
    return 0;
}

/* Header field checks, each when its last byte (count) has arrived. */
static int header_byte(airlock_ota_t *ota, uint32_t count)
{
    const uint8_t *h = ota->raw_hdr;
    switch (count) {
    case 4:
        if (load32(h) != AIRLOCK_IMAGE_MAGIC) {
            return set_det_values(ota, AIRLOCK_ERR_BAD_MAGIC, "header.magic", 0,
                                  AIRLOCK_IMAGE_MAGIC, load32(h));
        }
        return 0;
    case 10:
        if (load16(h + 8) < AIRLOCK_IMAGE_HEADER_SIZE) {
            return set_det_values(ota, AIRLOCK_ERR_BAD_HDR_SIZE, "header.hdr_size", 8,
                                  AIRLOCK_IMAGE_HEADER_SIZE, load16(h + 8));
        }
        return 0;
    case 16: {
        uint64_t total = (uint64_t)load16(h + 8) + load16(h + 10) + load32(h + 12);
        if (total > ota->room) {
            return set_det_values(ota, AIRLOCK_ERR_TOO_BIG, "header.img_size", 12, ota->room,
                                  total > UINT32_MAX ? UINT32_MAX : (uint32_t)total);
        }
        return 0;
    }
    case 20:
        if (load32(h + 16) & BAD_FLAGS_MASK) {
            return set_det_values(ota, AIRLOCK_ERR_NOT_BOOTABLE, "header.flags", 16, 0,
                                  load32(h + 16) & BAD_FLAGS_MASK);
        }
        return 0;
    case 28: {
        airlock_version_t v = {h[20], h[21], load16(h + 22), load32(h + 24)};
        if (ota->run_valid && airlock_version_cmp(&v, &ota->run_version) < 0) {
            set_det(ota, AIRLOCK_ERR_DOWNGRADE, "header.version", 20);
            ota->det.has_values = 1;
            ota->det.expected = ((uint32_t)ota->run_version.major << 24) |
                                ((uint32_t)ota->run_version.minor << 16) |
                                ota->run_version.revision;
            ota->det.found = ((uint32_t)v.major << 24) | ((uint32_t)v.minor << 16) | v.revision;
            return AIRLOCK_ERR_DOWNGRADE;
        }
        return 0;
    }
    case 32: {
        airlock_header_decode(h, &ota->hdr);
        uint32_t prot = ota->hdr.hdr_size + ota->hdr.img_size;
        ota->tlv_off = prot + ota->hdr.protect_tlv_size;
        memset(&ota->prot, 0, sizeof(ota->prot));
        memset(&ota->unprot, 0, sizeof(ota->unprot));
        ota->prot.start = prot;
        ota->unprot.start = ota->tlv_off;
        int rc = hash_bytes(ota, h, 32);
        if (rc == 0 && ota->hdr.protect_tlv_size == 0) {
            rc = sec_cnt_check(ota); /* the header shows there is no counter */
        }
        return rc;
    }
    default:
        return 0;
    }
}

static NOINLINE int keyhash_check(airlock_ota_t *ota, uint32_t off, uint16_t len)
{
    const airlock_boot_cfg_t *cfg = ota->cfg;
    int alg = len == 32   ? AIRLOCK_HASH_SHA256
              : len == 48 ? AIRLOCK_HASH_SHA384
              : len == 64 ? AIRLOCK_HASH_SHA512
                          : 0;
    uint8_t have[AIRLOCK_HASH_MAX_LEN];
    if (cfg->nkeys == 0) {
        return 0;
    }
    if (alg == 0) {
        set_det(ota, AIRLOCK_ERR_BAD_TLV, "KEYHASH.len", off);
        ota->det.tlv_type = AIRLOCK_TLV_KEYHASH;
        return AIRLOCK_ERR_BAD_TLV;
    }
    for (size_t k = 0; k < cfg->nkeys; k++) {
        airlock_hash_t h;
        int rc = cfg->crypto->hash_init(&h, alg);
        if (rc) {
            return rc;
        }
        rc = cfg->crypto->hash_update(&h, cfg->keys[k].der, cfg->keys[k].der_len);
        int rc2 = cfg->crypto->hash_finish(&h, rc ? NULL : have);
        if (rc || rc2) {
            return AIRLOCK_ERR_CRYPTO;
        }
        if (ct_equal(have, ota->val, len)) {
            return 0;
        }
    }
    set_det(ota, AIRLOCK_ERR_UNKNOWN_KEY, "KEYHASH", off);
    ota->det.tlv_type = AIRLOCK_TLV_KEYHASH;
    return AIRLOCK_ERR_UNKNOWN_KEY;
}

/* A TLV value has fully arrived (its bytes, up to sizeof(val), in ota->val). */
static int tlv_value(airlock_ota_t *ota, bool prot, uint16_t type, uint16_t len, uint32_t off)
{
    if (prot && type == AIRLOCK_TLV_SEC_CNT) {
        if (len != 4) {
            return set_det_values(ota, AIRLOCK_ERR_BAD_SEC_CNT, "SEC_CNT.len", off, 4, len);
        }
        if (ota->has_sec_cnt) {
            return set_det(ota, AIRLOCK_ERR_DUP_TLV, "SEC_CNT", off);
        }
        ota->has_sec_cnt = true;
        ota->sec_cnt = load32(ota->val);
    } else if (!prot && type == AIRLOCK_TLV_KEYHASH && !ota->seen_keyhash) {
        ota->seen_keyhash = true;
        return keyhash_check(ota, off, len);
    }
    return 0;
}

/* The next TLV header starts at p->tlv: it must fit the area whole. */
static int tlv_next(airlock_ota_t *ota, airlock_ota_tlv_parser_t *p)
{
    if (p->tlv < p->end && p->end - p->tlv < AIRLOCK_TLV_HDR_SIZE) {
        return set_det(ota, AIRLOCK_ERR_BAD_TLV, "tlv header", p->tlv);
    }
    return 0;
}

/* One byte b at image offset q of a TLV area. */
static int tlv_byte(airlock_ota_t *ota, airlock_ota_tlv_parser_t *p, bool prot, uint32_t q,
                    uint8_t b)
{
    uint32_t rel = q - p->start;
    int rc = 0;
    if (rel < AIRLOCK_TLV_INFO_SIZE) {
        p->hdr[rel] = b;
        if (rel < AIRLOCK_TLV_INFO_SIZE - 1u) {
            return 0;
        }
        uint16_t magic = load16(p->hdr), len = load16(p->hdr + 2);
        if (magic != (prot ? AIRLOCK_TLV_PROT_INFO_MAGIC : AIRLOCK_TLV_INFO_MAGIC)) {
            return set_det_values(
                ota, AIRLOCK_ERR_BAD_TLV_INFO, prot ? "protected tlv_info.magic" : "tlv_info.magic",
                p->start, prot ? AIRLOCK_TLV_PROT_INFO_MAGIC : AIRLOCK_TLV_INFO_MAGIC, magic);
        }
        if (prot ? len != ota->hdr.protect_tlv_size : len < AIRLOCK_TLV_INFO_SIZE) {
            return set_det_values(ota, AIRLOCK_ERR_BAD_TLV_INFO,
                                  prot ? "protected tlv_info.len" : "tlv_info.len", p->start + 2,
                                  ota->hdr.protect_tlv_size, len);
        }
        p->end = p->start + len;
        p->tlv = p->start + AIRLOCK_TLV_INFO_SIZE;
        if (!prot) {
            ota->end = p->end;
            if (ota->end > ota->room) {
                return set_det_values(ota, AIRLOCK_ERR_TOO_BIG, "tlv_info.len", p->start + 2,
                                      ota->room, ota->end);
            }
            if (ota->size_hint && ota->end != ota->size_hint) {
                return set_det_values(ota, AIRLOCK_ERR_OUT_OF_BOUNDS, "image size", p->start + 2,
                                      ota->size_hint, ota->end);
            }
        }
        rc = tlv_next(ota, p);
    } else if (q < p->tlv + AIRLOCK_TLV_HDR_SIZE) {
        p->hdr[q - p->tlv] = b;
        if (q == p->tlv + AIRLOCK_TLV_HDR_SIZE - 1u) {
            p->type = load16(p->hdr);
            p->len = load16(p->hdr + 2);
            if ((uint64_t)p->tlv + AIRLOCK_TLV_HDR_SIZE + p->len > p->end) {
                set_det_values(ota, AIRLOCK_ERR_BAD_TLV, "tlv.len", p->tlv,
                               p->end - p->tlv - AIRLOCK_TLV_HDR_SIZE, p->len);
                ota->det.tlv_type = p->type;
                return AIRLOCK_ERR_BAD_TLV;
            }
            if (p->len == 0) {
                rc = tlv_value(ota, prot, p->type, 0, p->tlv + AIRLOCK_TLV_HDR_SIZE);
                p->tlv += AIRLOCK_TLV_HDR_SIZE;
                rc = rc ? rc : tlv_next(ota, p);
            }
        }
    } else {
        uint32_t vi = q - p->tlv - AIRLOCK_TLV_HDR_SIZE;
        if (vi < sizeof(ota->val)) {
            ota->val[vi] = b;
        }
        if (vi + 1u == p->len) {
            rc = tlv_value(ota, prot, p->type, p->len, p->tlv + AIRLOCK_TLV_HDR_SIZE);
            p->tlv += AIRLOCK_TLV_HDR_SIZE + p->len;
            rc = rc ? rc : tlv_next(ota, p);
        }
    }
    if (rc == 0 && prot && q + 1u == p->end) {
        rc = sec_cnt_check(ota); /* the protected area is complete */
    }
    return rc;
}

/*
 * Take n image bytes at ota->pos through the checks and the hash. Stops at
 * the first bad field: ota->pos then counts the bytes before the one that
 * failed the check plus that byte.
 */
static int absorb(airlock_ota_t *ota, const uint8_t *p, size_t n)
{
    while (n > 0) {
        uint32_t pos = ota->pos;
        int rc;
        if (ota->end && pos >= ota->end) {
            return set_det_values(ota, AIRLOCK_ERR_OUT_OF_BOUNDS, "image end", pos, ota->end,
                                  pos + 1u);
        }
        if (pos < AIRLOCK_IMAGE_HEADER_SIZE) {
            ota->raw_hdr[pos] = *p;
            ota->pos++;
            rc = header_byte(ota, pos + 1u);
            p++;
            n--;
        } else if (pos < ota->tlv_off) {
            /* Payload and protected TLVs: hashed as one run; only TLV bytes are parsed. */
            uint32_t m = ota->tlv_off - pos;
            if (n < m) {
                m = (uint32_t)n;
            }
            rc = hash_bytes(ota, p, m);
            uint32_t i = ota->prot.start > pos ? ota->prot.start - pos : 0;
            for (; rc == 0 && i < m; i++) {
                rc = tlv_byte(ota, &ota->prot, true, pos + i, p[i]);
            }
            ota->pos += m;
            p += m;
            n -= m;
        } else {
            rc = tlv_byte(ota, &ota->unprot, false, pos, *p);
            ota->pos++;
            p++;
            n--;
        }
        if (rc) {
            return rc;
        }
    }
    return 0;
}

/* ---- programming ------------------------------------------------------------ */

/*
 * Program len bytes (whole write units) at ota->prog_off, erasing each
 * sector as the position enters it and recording progress at sector ends.
 */
static int program(airlock_ota_t *ota, const uint8_t *data, uint32_t len)
{
    while (len > 0) {
        int rc;
        if (ota->prog_off >= ota->erased_end) {
            uint32_t s, e;
            rc = sl_sector(ota, ota->prog_off, &s, &e);
            if (rc) {
                return rc;
            }
            if (s >= ota->tail) {
                ota->erased_end = ota->slot.size; /* erased by begin, checked by resume */
            } else {
                rc = sl_erase_sector(ota, s);
                if (rc) {
                    return rc;
                }
                ota->erased_end = e;
            }
        }
        uint32_t n = ota->erased_end - ota->prog_off;
        if (n > len) {
            n = len;
        }
        rc = sl_prog(ota, ota->prog_off, data, n);
        if (rc) {
            return rc;
        }
        /* the CRC covers image bytes only, not the last unit's padding */
        uint32_t real_end = ota->stage_off + ota->pos;
        uint32_t real = real_end > ota->prog_off ? real_end - ota->prog_off : 0;
        crc_bytes(ota, data, real < n ? real : n);
        ota->prog_off += n;
        data += n;
        len -= n;
        uint32_t done = ota->prog_off - ota->stage_off;
        if (ota->prog_off == ota->erased_end && ota->prog_off < ota->tail &&
            done - ota->rec_last >= ota->rec_every && ota->rec_next + 1u < ota->rec_cap) {
            /* every byte below done is programmed and synced */
            rc = rec_append(ota, R_PROG, done, ota->crc);
            if (rc) {
                return rc;
            }
            ota->rec_last = done;
        }
    }
    return 0;
}

/* The last byte arrived: program the padded last unit and record the end. */
static int finish_image(airlock_ota_t *ota)
{
    int rc = 0;
    if (ota->wlen) {
        uint32_t ws = ota->slot.flash->write_size;
        memset(ota->wbuf + ota->wlen, ota->slot.flash->erased_val, ws - ota->wlen);
        rc = program(ota, ota->wbuf, ws);
        ota->wlen = 0;
    }
    if (rc == 0) {
        rc = rec_append(ota, R_PROG, ota->end, ota->crc);
    }
    if (rc == 0) {
        ota->state = PH_COMPLETE;
    }
    return rc;
}

int airlock_ota_write(airlock_ota_t *ota, const void *buf, size_t n)
{
    if (!ota) {
        return AIRLOCK_ERR_INVAL;
    }
    if (ota->state == PH_FAILED) {
        return ota->err;
    }
    if ((ota->state == PH_COMPLETE || ota->state == PH_VERIFIED) && n > 0) {
        return fail(ota, set_det_values(ota, AIRLOCK_ERR_OUT_OF_BOUNDS, "image end", ota->pos,
                                        ota->end, ota->pos + 1u));
    }
    if (ota->state != PH_WRITING || (!buf && n > 0)) {
        return set_det(ota, AIRLOCK_ERR_INVAL, "ota phase", ota->pos);
    }
    const uint8_t *p = buf;
    uint32_t ws = ota->slot.flash->write_size;
    int rc = absorb(ota, p, n);
    if (rc) {
        return fail(ota, rc);
    }
    if (ota->wlen) {
        uint32_t k = ws - ota->wlen;
        if (k > n) {
            k = (uint32_t)n;
        }
        memcpy(ota->wbuf + ota->wlen, p, k);
        ota->wlen += k;
        p += k;
        n -= k;
        if (ota->wlen == ws) {
            ota->wlen = 0;
            rc = program(ota, ota->wbuf, ws);
        }
    }
    if (rc == 0 && n >= ws) {
        /* n is at most the image length here: absorb bounded it */
        uint32_t direct = (uint32_t)n / ws * ws;
        rc = program(ota, p, direct);
        p += direct;
        n -= direct;
    }
    if (rc == 0 && n > 0) {
        memcpy(ota->wbuf, p, n);
        ota->wlen = (uint32_t)n;
    }
    if (rc == 0 && ota->end && ota->pos == ota->end) {
        rc = finish_image(ota);
    }
    return rc ? fail(ota, rc) : 0;
}

/* ---- begin / resume ------------------------------------------------------------ */

static void geom_for(const airlock_boot_cfg_t *cfg, int id, airlock_trailer_geom_t *g)
{
    g->max_align = airlock_layout_max_align(cfg->layout);
    g->write_size = cfg->layout->area[id].flash->write_size;
    g->max_sectors = cfg->max_sectors ? cfg->max_sectors : AIRLOCK_TRAILER_DEFAULT_MAX_SECTORS;
}

/* The boot journal's state (zeroed when the layout has no status area), never writing. */
static int peek_journal(const airlock_boot_cfg_t *cfg, journal_t *j)
{
    const airlock_area_t *st = &cfg->layout->area[AIRLOCK_AREA_STATUS];
    memset(j, 0, sizeof(*j));
    return st->flash ? journal_peek(j, st) : 0;
}

/*
 * What runs: the primary's version if it parses (*valid), and the security
 * counter floor, the higher of the journal's and the running image's.
 */
static int read_primary(const airlock_boot_cfg_t *cfg, const journal_t *j, bool *valid,
                        airlock_version_t *version, bool *has, uint32_t *floor)
{
    airlock_source_t src;
    airlock_image_t img;
    airlock_tlv_iter_t it;
    airlock_tlv_t tlv;
    *valid = false;
    *has = j->has_sec_cnt;
    *floor = j->sec_cnt;
    airlock_area_source(&cfg->layout->area[AIRLOCK_AREA_PRIMARY], &src);
    int rc = airlock_image_parse(&src, &img, NULL);
    if (rc) {
        return rc == AIRLOCK_ERR_IO ? rc : 0; /* nothing valid runs: nothing to compare with */
    }
    *valid = true;
    *version = img.hdr.version;
    airlock_tlv_iter_init(&it, &img);
    while ((rc = airlock_tlv_next(&it, &src, &tlv, NULL)) == 1) {
        uint8_t raw[4];
        if (tlv.prot && tlv.type == AIRLOCK_TLV_SEC_CNT && tlv.len == 4) {
            if (src.read(src.ctx, tlv.off, raw, 4) != 0) {
                return AIRLOCK_ERR_IO;
            }
            if (!*has || load32(raw) > *floor) {
                *floor = load32(raw);
            }
            *has = true;
            break;
        }
    }
    return rc == AIRLOCK_ERR_IO ? rc : 0;
}

/* Version of the image in the primary, if it parses, and the counter floor. */
static int read_running(airlock_ota_t *ota)
{
    journal_t j;
    int rc = peek_journal(ota->cfg, &j);
    if (rc) {
        return rc;
    }
    return read_primary(ota->cfg, &j, &ota->run_valid, &ota->run_version, &ota->run_has_sec_cnt,
                        &ota->run_sec_cnt);
}

/* Everything begin and resume share: geometry, room, the running image. */
static int setup(airlock_ota_t *ota, const airlock_boot_cfg_t *cfg, const uint8_t *id)
{
    airlock_trailer_geom_t pg;
    airlock_trailer_t pt;
    uint32_t status_len, s, e;
    if (!ota || !cfg || !cfg->layout || !cfg->crypto || !cfg->buf || cfg->buf_len < 64) {
        return AIRLOCK_ERR_INVAL;
    }
    memset(ota, 0, sizeof(*ota));
    ota->cfg = cfg;
    int rc = airlock_boot_stage(cfg, &ota->stage_off, &ota->room);
    if (rc) {
        return rc;
    }
    ota->slot = cfg->layout->area[AIRLOCK_AREA_SECONDARY];
    geom_for(cfg, AIRLOCK_AREA_SECONDARY, &ota->geom);
    if (id) {
        memcpy(ota->id, id, AIRLOCK_OTA_ID_SIZE);
    }
    /* the running image on trial: its predecessor is what the secondary keeps */
    geom_for(cfg, AIRLOCK_AREA_PRIMARY, &pg);
    rc = airlock_trailer_load(&cfg->layout->area[AIRLOCK_AREA_PRIMARY], &pg, &pt);
    if (rc) {
        return rc;
    }
    if (pt.magic == AIRLOCK_FIELD_SET && pt.image_ok == AIRLOCK_FIELD_UNSET) {
        return set_det(ota, AIRLOCK_ERR_INVAL, "primary.image_ok", 0);
    }
    rc = sl_sector(ota, airlock_trailer_start(&ota->slot, &ota->geom), &s, &e);
    if (rc) {
        return rc;
    }
    ota->tail = s;
    airlock_trailer_status(&ota->slot, &ota->geom, &ota->rec_off, &status_len);
    ota->rec_size = ota->geom.write_size > RECORD_BYTES ? ota->geom.write_size : RECORD_BYTES;
    ota->rec_cap = status_len / ota->rec_size;
    if (ota->rec_cap < ID_RECS + 2u) {
        return set_det(ota, AIRLOCK_ERR_LAYOUT, "secondary status area", ota->rec_off);
    }
    /*
     * Spread the progress records over the sectors below the tail so they
     * never run out: with one place per sector (the usual case) every
     * completed sector is recorded.
     */
    uint32_t slots = ota->rec_cap - ID_RECS - 1u;
    uint32_t span = ota->tail > ota->stage_off ? ota->tail - ota->stage_off : 0;
    ota->rec_every = span / slots > 0 ? span / slots : 1u;
    ota->hash_alg = cfg->nkeys ? airlock_key_default_hash(cfg->keys[0].type) : 0;
    if (ota->hash_alg == 0) {
        ota->hash_alg = AIRLOCK_HASH_SHA256;
    }
    return read_running(ota);
}

/* Start hashing and writing at image offset 0 (records already set up). */
static int start_stream(airlock_ota_t *ota)
{
    int rc = ota->cfg->crypto->hash_init(&ota->hash, ota->hash_alg);
    if (rc) {
        return rc;
    }
    ota->hashing = true;
    ota->pos = 0;
    ota->crc = 0;
    ota->wlen = 0;
    ota->end = 0;
    ota->tlv_off = 0;
    ota->has_sec_cnt = false;
    ota->seen_keyhash = false;
    ota->sec_cnt = 0;
    ota->resumed = false;
    memset(&ota->prot, 0, sizeof(ota->prot));
    memset(&ota->unprot, 0, sizeof(ota->unprot));
    ota->prog_off = ota->stage_off;
    ota->erased_end = ota->stage_off; /* nothing erased yet this session */
    ota->state = PH_WRITING;
    return 0;
}

/* A fresh download: erase the tail, write the ID records. */
static int start_fresh(airlock_ota_t *ota)
{
    for (uint32_t off = ota->tail; off < ota->slot.size;) {
        uint32_t s, e;
        int rc = sl_sector(ota, off, &s, &e);
        rc = rc ? rc : sl_erase_sector(ota, s);
        if (rc) {
            return rc;
        }
        off = e;
    }
    ota->rec_next = 0;
    for (uint32_t i = 0; i < ID_RECS; i++) {
        int rc =
            rec_append(ota, R_ID0 + i, load32(ota->id + 8u * i), load32(ota->id + 8u * i + 4u));
        if (rc) {
            return rc;
        }
    }
    ota->rec_last = 0;
    return start_stream(ota);
}

int airlock_ota_begin(airlock_ota_t *ota, const airlock_boot_cfg_t *cfg, uint32_t size_or_0,
                      const uint8_t *id)
{
    int rc = setup(ota, cfg, id);
    if (rc == 0 && size_or_0 > ota->room) {
        rc = set_det_values(ota, AIRLOCK_ERR_TOO_BIG, "size", 0, ota->room, size_or_0);
    }
    if (rc) {
        return ota ? fail(ota, rc) : rc;
    }
    ota->size_hint = size_or_0;
    rc = start_fresh(ota);
    return rc ? fail(ota, rc) : 0;
}

/*
 * Read the records: do they name our id, and how far is durable?
 * durable and crc are 0 when no PROG record is valid.
 */
static int read_records(airlock_ota_t *ota, bool *ours, uint32_t *durable, uint32_t *crc)
{
    uint8_t rec[32];
    *ours = true;
    *durable = 0;
    *crc = 0;
    ota->rec_next = 0;
    for (uint32_t i = 0; i < ota->rec_cap; i++) {
        uint32_t type, a, b;
        int rc = sl_read(ota, ota->rec_off + i * ota->rec_size, rec, ota->rec_size);
        if (rc) {
            return rc;
        }
        bool blank = true;
        for (uint32_t k = 0; k < ota->rec_size; k++) {
            blank = blank && rec[k] == ota->slot.flash->erased_val;
        }
        if (blank) {
            break; /* records are appended in order: the rest is unused */
        }
        ota->rec_next = i + 1u;
        bool ok = rec_decode(ota, rec, &type, &a, &b);
        if (i < ID_RECS) {
            if (!ok || type != R_ID0 + i || a != load32(ota->id + 8u * i) ||
                b != load32(ota->id + 8u * i + 4u)) {
                *ours = false;
                return 0;
            }
        } else if (ok && type == R_PROG && a >= *durable) {
            *durable = a;
            *crc = b;
        }
    }
    if (ota->rec_next < ID_RECS) {
        *ours = false;
    }
    return 0;
}

int airlock_ota_resume(airlock_ota_t *ota, const airlock_boot_cfg_t *cfg, const uint8_t *id,
                       uint32_t *offset)
{
    bool ours, clean = true;
    uint32_t durable, crc;
    if (!offset) {
        return AIRLOCK_ERR_INVAL;
    }
    *offset = 0;
    int rc = setup(ota, cfg, id);
    rc = rc ? rc : read_records(ota, &ours, &durable, &crc);
    if (rc) {
        return ota ? fail(ota, rc) : rc;
    }
    if (ours && durable > ota->room) {
        ours = false;
    }
    /* The tail's image part above the durable point must still be erased. */
    uint32_t ws = ota->slot.flash->write_size;
    uint32_t from = (durable + ota->stage_off + ws - 1u) / ws * ws;
    if (from < ota->tail) {
        from = ota->tail;
    }
    uint32_t tstart = airlock_trailer_start(&ota->slot, &ota->geom);
    if (ours && from < tstart) {
        rc = sl_erased(ota, from, tstart - from, &clean);
        if (rc) {
            return fail(ota, rc);
        }
    }
    if (!ours || !clean) {
        rc = start_fresh(ota);
        return rc ? fail(ota, rc) : 0;
    }
    rc = start_stream(ota);
    if (rc) {
        return fail(ota, rc);
    }
    /* Re-read and re-check the durable prefix: checks, hash and CRC. */
    for (uint32_t done = 0; done < durable;) {
        uint32_t n = durable - done < ota->cfg->buf_len ? durable - done : ota->cfg->buf_len;
        feed_watchdog(ota);
        rc = sl_read(ota, ota->stage_off + done, ota->cfg->buf, n);
        rc = rc ? rc : absorb(ota, ota->cfg->buf, n);
        if (rc) {
            return fail(ota, rc);
        }
        crc_bytes(ota, ota->cfg->buf, n);
        done += n;
    }
    if (ota->crc != crc) {
        /* the slot changed since (another writer, an install): start over */
        release_hash(ota);
        rc = start_fresh(ota);
        return rc ? fail(ota, rc) : 0;
    }
    ota->resumed = true;
    ota->rec_last = durable;
    ota->prog_off = ota->stage_off + durable;
    ota->erased_end = ota->prog_off; /* the sector at durable is entered afresh */
    if (ota->end && ota->pos == ota->end) {
        ota->state = PH_COMPLETE;
    }
    *offset = durable;
    return 0;
}

/* ---- end: verification ------------------------------------------------------------ */

static bool is_sig_tlv(uint16_t t)
{
    return t == AIRLOCK_TLV_RSA2048_PSS || t == AIRLOCK_TLV_ECDSA_SIG ||
           t == AIRLOCK_TLV_RSA3072_PSS || t == AIRLOCK_TLV_ED25519;
}

/* Which trusted key does a KEYHASH / PUBKEY value name? -1: none. */
static NOINLINE int key_named(airlock_ota_t *ota, const airlock_source_t *src,
                              const airlock_tlv_t *t, int *sel)
{
    const airlock_boot_cfg_t *cfg = ota->cfg;
    uint8_t v[AIRLOCK_HASH_MAX_LEN];
    uint8_t have[AIRLOCK_HASH_MAX_LEN];
    size_t hl = airlock_hash_len(ota->hash_alg);
    *sel = -1;
    if (t->type == AIRLOCK_TLV_KEYHASH) {
        if (t->len != hl) {
            return set_det(ota, AIRLOCK_ERR_BAD_TLV, "KEYHASH.len", t->off);
        }
        if (src->read(src->ctx, t->off, v, t->len) != 0) {
            return AIRLOCK_ERR_IO;
        }
    }
    for (size_t k = 0; k < cfg->nkeys; k++) {
        const airlock_pubkey_t *key = &cfg->keys[k];
        if (t->type == AIRLOCK_TLV_KEYHASH) {
            airlock_hash_t h;
            int rc = cfg->crypto->hash_init(&h, ota->hash_alg);
            if (rc) {
                return rc;
            }
            rc = cfg->crypto->hash_update(&h, key->der, key->der_len);
            if (cfg->crypto->hash_finish(&h, rc ? NULL : have) || rc) {
                return AIRLOCK_ERR_CRYPTO;
            }
            if (ct_equal(have, v, hl)) {
                *sel = (int)k;
                return 0;
            }
        } else if (t->len == key->der_len) {
            uint8_t d = 0;
            for (uint32_t i = 0; i < t->len; i += sizeof(v)) {
                uint32_t n = t->len - i < sizeof(v) ? t->len - i : (uint32_t)sizeof(v);
                if (src->read(src->ctx, t->off + i, v, n) != 0) {
                    return AIRLOCK_ERR_IO;
                }
                for (uint32_t j = 0; j < n; j++) {
                    d = (uint8_t)(d | (v[j] ^ key->der[i + j]));
                }
            }
            if (d == 0) {
                *sel = (int)k;
                return 0;
            }
        }
    }
    return 0;
}

/*
 * Verify with the streamed digest: the hash TLV, then a signature by a
 * trusted key (the rules of airlock_image_verify). Returns 1 when the image
 * uses another hash than the one streamed (the caller re-reads instead).
 */
static NOINLINE int verify_streamed(airlock_ota_t *ota, const airlock_source_t *src,
                                    const airlock_image_t *img, int *key_index)
{
    const airlock_boot_cfg_t *cfg = ota->cfg;
    airlock_tlv_iter_t it;
    airlock_tlv_t t;
    uint8_t v[SIG_MAX];
    size_t hl = airlock_hash_len(ota->hash_alg);
    bool have_hash = false, tried = false, unknown = false;
    int rc, sel = -2;
    unsigned nsig = 0;
    *key_index = -1;
    airlock_tlv_iter_init(&it, img);
    while ((rc = airlock_tlv_next(&it, src, &t, &ota->det)) == 1) {
        if (t.prot || t.type < AIRLOCK_TLV_SHA256 || t.type > AIRLOCK_TLV_SHA512) {
            continue;
        }
        if (have_hash) {
            return set_det(ota, AIRLOCK_ERR_DUP_TLV, "hash TLV", t.off);
        }
        have_hash = true;
        if (t.type != ota->hash_alg) {
            return 1;
        }
        if (t.len != hl) {
            return set_det_values(ota, AIRLOCK_ERR_BAD_TLV, "hash.len", t.off, (uint32_t)hl, t.len);
        }
        if (src->read(src->ctx, t.off, v, t.len) != 0) {
            return AIRLOCK_ERR_IO;
        }
        if (!ct_equal(v, ota->digest, hl)) {
            set_det(ota, AIRLOCK_ERR_HASH_MISMATCH, "hash", t.off);
            ota->det.tlv_type = t.type;
            return AIRLOCK_ERR_HASH_MISMATCH;
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (!have_hash) {
        return set_det(ota, AIRLOCK_ERR_NO_HASH, "hash TLV", img->tlv_off);
    }
    if (cfg->nkeys == 0) {
        return 0;
    }
    airlock_tlv_iter_init(&it, img);
    while ((rc = airlock_tlv_next(&it, src, &t, &ota->det)) == 1) {
        if (t.prot) {
            continue;
        }
        if (t.type == AIRLOCK_TLV_KEYHASH || t.type == AIRLOCK_TLV_PUBKEY) {
            rc = key_named(ota, src, &t, &sel);
            if (rc) {
                return rc;
            }
            unknown = unknown || sel < 0;
            continue;
        }
        if (!is_sig_tlv(t.type)) {
            continue;
        }
        nsig++;
        if (t.len > SIG_MAX) {
            return set_det(ota, AIRLOCK_ERR_BAD_TLV, "signature.len", t.off);
        }
        if (sel == -1) {
            continue;
        }
        if (src->read(src->ctx, t.off, v, t.len) != 0) {
            return AIRLOCK_ERR_IO;
        }
        size_t first = sel < 0 ? 0 : (size_t)sel;
        size_t last = sel < 0 ? cfg->nkeys : (size_t)sel + 1u;
        for (size_t k = first; k < last; k++) {
            const airlock_pubkey_t *key = &cfg->keys[k];
            if (airlock_key_sig_tlv(key->type) != t.type ||
                !airlock_key_allows_hash(key->type, ota->hash_alg)) {
                continue;
            }
            tried = true;
            if (cfg->crypto->verify(cfg->crypto->ctx, key->type, key->der, key->der_len,
                                    ota->hash_alg, ota->digest, hl, v, t.len) == 0) {
                *key_index = (int)k;
                return 0;
            }
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (nsig == 0) {
        return set_det(ota, AIRLOCK_ERR_NO_SIGNATURE, "signature TLV", img->tlv_off);
    }
    if (!tried && unknown) {
        return set_det(ota, AIRLOCK_ERR_UNKNOWN_KEY, "KEYHASH", img->tlv_off);
    }
    if (!tried) {
        return set_det(ota, AIRLOCK_ERR_KEY_MISMATCH, "signature type", img->tlv_off);
    }
    return set_det(ota, AIRLOCK_ERR_BAD_SIGNATURE, "signature", img->tlv_off);
}

int airlock_ota_end(airlock_ota_t *ota)
{
    airlock_area_t a;
    airlock_source_t src;
    airlock_image_t img;
    int key_index = -1, rc;
    if (!ota) {
        return AIRLOCK_ERR_INVAL;
    }
    if (ota->state == PH_FAILED) {
        return ota->err;
    }
    if (ota->state == PH_VERIFIED) {
        return 0;
    }
    if (ota->state != PH_COMPLETE) {
        return set_det(ota, AIRLOCK_ERR_INVAL, "image end", ota->pos);
    }
    rc = ota->cfg->crypto->hash_finish(&ota->hash, ota->digest);
    ota->hashing = false;
    if (rc) {
        return fail(ota, AIRLOCK_ERR_CRYPTO);
    }
    a.flash = ota->slot.flash;
    a.off = ota->slot.off + ota->stage_off;
    a.size = ota->slot.size - ota->stage_off;
    airlock_area_source(&a, &src);
    rc = airlock_image_parse(&src, &img, &ota->det);
    if (rc) {
        return fail(ota, rc);
    }
    /* what flash holds must be what was streamed and checked */
    if (img.end != ota->end || img.tlv_off != ota->tlv_off || img.hdr.flags != ota->hdr.flags ||
        airlock_version_cmp(&img.hdr.version, &ota->hdr.version) != 0) {
        return fail(ota, set_det(ota, AIRLOCK_ERR_HASH_MISMATCH, "slot contents", 0));
    }
    rc = ota->resumed ? 1 : verify_streamed(ota, &src, &img, &key_index);
    if (rc == 1) {
        /* resumed (or another hash): verify what the slot holds, re-reading it */
        const airlock_boot_cfg_t *cfg = ota->cfg;
        airlock_verify_cfg_t vc = {cfg->crypto, cfg->keys, cfg->nkeys, cfg->buf, cfg->buf_len};
        airlock_verify_result_t vr;
        rc = airlock_image_verify(&src, &img, &vc, &vr, &ota->det);
        if (rc == 0 && !vr.hash_ok) {
            rc = AIRLOCK_ERR_CRYPTO;
        }
        key_index = vr.key_index;
    }
    if (rc) {
        return fail(ota, rc);
    }
    /* a second, independent look at the outcome (glitch hardening) */
    if (ota->cfg->nkeys > 0 && key_index < 0) {
        return fail(ota, AIRLOCK_ERR_CRYPTO);
    }
    ota->state = PH_VERIFIED;
    return 0;
}

/* ---- requesting, confirming, state ----------------------------------------------- */

int airlock_ota_set_pending(airlock_ota_t *ota, bool permanent)
{
    airlock_trailer_layout_t lay;
    airlock_trailer_t t;
    bool clean;
    if (!ota || ota->state != PH_VERIFIED ||
        airlock_trailer_layout(ota->slot.size, ota->geom.max_align, &lay) != 0) {
        return AIRLOCK_ERR_INVAL;
    }
    int rc = airlock_trailer_load(&ota->slot, &ota->geom, &t);
    if (rc) {
        return rc;
    }
    if (t.magic == AIRLOCK_FIELD_SET && t.copy_done == AIRLOCK_FIELD_UNSET) {
        return 0; /* already requested */
    }
    if (permanent && t.image_ok == AIRLOCK_FIELD_SET && t.magic == AIRLOCK_FIELD_UNSET &&
        t.copy_done == AIRLOCK_FIELD_UNSET && !t.swap_info_set && !t.swap_size_set) {
        /* an earlier call stopped between image_ok and the magic */
        return airlock_trailer_write_magic(&ota->slot, &ota->geom);
    }
    rc = sl_erased(ota, lay.swap_size, ota->slot.size - lay.swap_size, &clean);
    if (rc) {
        return rc;
    }
    if (!clean) {
        uint32_t s, e;
        uint32_t ws = ota->slot.flash->write_size;
        uint32_t img_end = (ota->stage_off + ota->end + ws - 1u) / ws * ws;
        rc = sl_sector(ota, lay.swap_size, &s, &e);
        if (rc) {
            return rc;
        }
        if (s < img_end) {
            return set_det(ota, AIRLOCK_ERR_INVAL,
                           "secondary trailer (shares a sector with the image)", lay.swap_size);
        }
        for (uint32_t off = s; off < ota->slot.size; off = e) {
            rc = sl_sector(ota, off, &s, &e);
            rc = rc ? rc : sl_erase_sector(ota, s);
            if (rc) {
                return rc;
            }
        }
    }
    return airlock_boot_request(ota->cfg->layout, ota->cfg->max_sectors, permanent);
}

void airlock_ota_abort(airlock_ota_t *ota)
{
    if (!ota || !ota->cfg) {
        return;
    }
    release_hash(ota);
    ota->state = PH_IDLE;
}

int airlock_ota_confirm(const airlock_boot_cfg_t *cfg)
{
    if (!cfg || !cfg->layout) {
        return AIRLOCK_ERR_INVAL;
    }
    return airlock_boot_confirm(cfg->layout, cfg->max_sectors);
}

/* Parse the image at offset at of area a; *ok and *v when it parses. */
static int peek_version(const airlock_area_t *a, uint32_t at, bool *ok, airlock_version_t *v)
{
    airlock_area_t sub = {a->flash, a->off + at, a->size - at};
    airlock_source_t src;
    airlock_image_t img;
    airlock_area_source(&sub, &src);
    int rc = airlock_image_parse(&src, &img, NULL);
    *ok = rc == 0;
    if (rc == 0) {
        *v = img.hdr.version;
    }
    return rc == AIRLOCK_ERR_IO ? rc : 0;
}

int airlock_ota_state(const airlock_boot_cfg_t *cfg, airlock_ota_status_t *st)
{
    airlock_trailer_geom_t g;
    airlock_trailer_t t;
    uint32_t at, room;
    if (!cfg || !cfg->layout || !st) {
        return AIRLOCK_ERR_INVAL;
    }
    memset(st, 0, sizeof(*st));
    int rc = airlock_boot_stage(cfg, &at, &room);
    if (rc) {
        return rc;
    }
    const airlock_area_t *pri = &cfg->layout->area[AIRLOCK_AREA_PRIMARY];
    const airlock_area_t *sec = &cfg->layout->area[AIRLOCK_AREA_SECONDARY];
    geom_for(cfg, AIRLOCK_AREA_PRIMARY, &g);
    rc = airlock_trailer_load(pri, &g, &t);
    if (rc) {
        return rc;
    }
    st->on_trial = t.magic == AIRLOCK_FIELD_SET && t.image_ok == AIRLOCK_FIELD_UNSET;
    st->confirmed = !st->on_trial;
    /* direct-xip / ram-load: the bootloader marks a slot it gave up on */
    bool pri_rejected = t.magic == AIRLOCK_FIELD_SET && t.swap_type == AIRLOCK_SWAP_REVERT;
    journal_t j;
    rc = peek_journal(cfg, &j);
    if (rc == 0) {
        rc = read_primary(cfg, &j, &st->running_valid, &st->running_version, &st->has_sec_cnt,
                          &st->sec_cnt);
    }
    if (rc) {
        return rc;
    }
    geom_for(cfg, AIRLOCK_AREA_SECONDARY, &g);
    rc = airlock_trailer_load(sec, &g, &t);
    if (rc) {
        return rc;
    }
    st->pending = t.magic == AIRLOCK_FIELD_SET && t.copy_done == AIRLOCK_FIELD_UNSET &&
                  t.swap_type != AIRLOCK_SWAP_REVERT;
    st->pending_permanent = st->pending && t.image_ok == AIRLOCK_FIELD_SET;
    if (st->pending) {
        rc = peek_version(sec, at, &st->pending_valid, &st->pending_version);
        if (rc) {
            return rc;
        }
    }
    st->reverted = j.reverted;
    st->reverted_valid = j.reverted && j.has_rev_version;
    st->reverted_version = j.rev_version;
    if (!st->reverted && t.magic == AIRLOCK_FIELD_SET && t.swap_type == AIRLOCK_SWAP_REVERT) {
        st->reverted = true;
        rc = peek_version(sec, at, &st->reverted_valid, &st->reverted_version);
    } else if (!st->reverted && pri_rejected) {
        st->reverted = true;
        rc = peek_version(pri, 0, &st->reverted_valid, &st->reverted_version);
    }
    return rc;
}

uint32_t airlock_ota_pos(const airlock_ota_t *ota)
{
    return ota ? ota->pos : 0;
}

uint32_t airlock_ota_image_len(const airlock_ota_t *ota)
{
    return ota ? ota->end : 0;
}

const airlock_err_detail_t *airlock_ota_detail(const airlock_ota_t *ota)
{
    return &ota->det;
}
