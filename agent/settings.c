/*
 * The device settings store (include/airlock/settings.h): two copies in the
 * settings area, the newer valid one current, every write a whole new copy
 * in the other half committed by its last write unit. Freestanding (no
 * malloc, no stdio); never writes the current copy.
 */
#include "airlock/settings.h"

#include "airlock/crc32.h"

#include <string.h>

#define HDR_LEN 16u
#define CHUNK 64u /* staging buffer: a multiple of every write size (<= 32) */

static uint32_t roundup(uint32_t v, uint32_t a)
{
    return (v + a - 1u) / a * a;
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
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t copy_base(const airlock_settings_t *s, int c)
{
    return s->area.off + (uint32_t)c * s->copy_size;
}

static int rd(const airlock_settings_t *s, uint32_t addr, void *buf, uint32_t len)
{
    const airlock_flash_t *f = s->area.flash;
    return f->read(f->ctx, addr, buf, len) == 0 ? 0 : AIRLOCK_ERR_IO;
}

static int prog(const airlock_settings_t *s, uint32_t addr, const void *buf, uint32_t len)
{
    const airlock_flash_t *f = s->area.flash;
    return f->prog(f->ctx, addr, buf, len) == 0 ? 0 : AIRLOCK_ERR_IO;
}

static uint32_t capacity(const airlock_settings_t *s)
{
    return s->copy_size - s->body_off;
}

/*
 * Is copy c valid? Returns 1 (and *seq, *len), 0 (not valid) or IO.
 * Valid means: magic, commit word, body length in bounds, CRC. The commit
 * word is the last unit a write programs, so a valid copy was complete.
 */
static int check_copy(const airlock_settings_t *s, int c, uint32_t *seq, uint32_t *len)
{
    uint8_t hdr[HDR_LEN], buf[CHUNK];
    uint32_t base = copy_base(s, c);
    uint32_t w = s->area.flash->write_size;
    int rc;

    if ((rc = rd(s, base, hdr, HDR_LEN)) != 0) {
        return rc;
    }
    if (get32(hdr) != AIRLOCK_SETTINGS_MAGIC || get32(hdr + 8) > capacity(s)) {
        return 0;
    }
    if ((rc = rd(s, base + roundup(HDR_LEN, w), buf, 4)) != 0) {
        return rc;
    }
    if (get32(buf) != AIRLOCK_SETTINGS_COMMIT) {
        return 0;
    }
    uint32_t n = get32(hdr + 8);
    uint32_t crc = airlock_crc32(0, hdr + 4, 8);
    for (uint32_t at = 0; at < n;) {
        uint32_t k = n - at < CHUNK ? n - at : CHUNK;
        if ((rc = rd(s, base + s->body_off + at, buf, k)) != 0) {
            return rc;
        }
        crc = airlock_crc32(crc, buf, k);
        at += k;
    }
    if (crc != get32(hdr + 12)) {
        return 0;
    }
    *seq = get32(hdr + 4);
    *len = n;
    return 1;
}

int airlock_settings_open(airlock_settings_t *s, const airlock_area_t *area)
{
    uint32_t start, size, w;
    uint32_t seq[2] = {0, 0}, len[2] = {0, 0};
    int ok[2];

    memset(s, 0, sizeof(*s));
    s->active = -1;
    if (!area || !area->flash || area->size < 2u || area->size % 2u != 0) {
        return AIRLOCK_ERR_INVAL;
    }
    w = area->flash->write_size;
    if (w == 0 || w > 32u || (w & (w - 1u)) != 0) {
        return AIRLOCK_ERR_INVAL;
    }
    s->area = *area;
    s->copy_size = area->size / 2u;
    /* Each half must be erasable alone, and never erase past the area: the
     * start and the midpoint start a sector, the last byte's sector ends
     * with the area (mixed sector sizes could say otherwise). */
    uint32_t end = area->off + area->size;
    if (end < area->off || end > area->flash->size ||
        airlock_flash_sector(area->flash, area->off + s->copy_size, &start, &size) != 0 ||
        start != area->off + s->copy_size ||
        airlock_flash_sector(area->flash, area->off, &start, &size) != 0 || start != area->off ||
        airlock_flash_sector(area->flash, end - 1u, &start, &size) != 0 || start + size != end) {
        return AIRLOCK_ERR_INVAL;
    }
    s->body_off = roundup(HDR_LEN, w) + roundup(4u, w);
    if (s->body_off >= s->copy_size) {
        return AIRLOCK_ERR_INVAL;
    }
    for (int c = 0; c < 2; c++) {
        ok[c] = check_copy(s, c, &seq[c], &len[c]);
        if (ok[c] < 0) {
            return ok[c];
        }
    }
    if (ok[0] && ok[1]) {
        /* serial arithmetic: a wrapped counter still orders two neighbours */
        s->active = (int32_t)(seq[1] - seq[0]) > 0 ? 1 : 0;
    } else if (ok[0] || ok[1]) {
        s->active = ok[0] ? 0 : 1;
    }
    if (s->active >= 0) {
        s->seq = seq[s->active];
        s->body_len = len[s->active];
    }
    return 0;
}

/* An entry of the current copy: where it is and how long its parts are. */
struct entry {
    uint32_t at; /* body offset of its 3-byte header */
    uint32_t klen, vlen;
    char key[AIRLOCK_SETTINGS_KEY_MAX + 1];
};

/* Read the entry at body offset pos. Returns 1, 0 (end) or IO. */
static int read_entry(const airlock_settings_t *s, uint32_t pos, struct entry *e)
{
    uint8_t h[3];
    int rc;

    if (s->active < 0 || pos + 3u > s->body_len) {
        return 0;
    }
    uint32_t base = copy_base(s, s->active) + s->body_off;
    if ((rc = rd(s, base + pos, h, 3)) != 0) {
        return rc;
    }
    e->at = pos;
    e->klen = h[0];
    e->vlen = (uint32_t)h[1] | (uint32_t)h[2] << 8;
    /* A CRC-checked body is well formed; still never read past it. */
    if (e->klen == 0 || e->klen > AIRLOCK_SETTINGS_KEY_MAX ||
        pos + 3u + e->klen + e->vlen > s->body_len) {
        return 0;
    }
    if ((rc = rd(s, base + pos + 3u, e->key, e->klen)) != 0) {
        return rc;
    }
    e->key[e->klen] = '\0';
    return 1;
}

static size_t key_len(const char *key)
{
    size_t n = 0;
    if (!key) {
        return 0;
    }
    while (n <= AIRLOCK_SETTINGS_KEY_MAX && key[n]) {
        n++;
    }
    return n > AIRLOCK_SETTINGS_KEY_MAX ? 0 : n;
}

int airlock_settings_get(airlock_settings_t *s, const char *key, void *buf, size_t cap, size_t *len)
{
    struct entry e;
    uint32_t pos = 0;
    int rc;

    if (len) {
        *len = 0;
    }
    if (key_len(key) == 0 || (!buf && cap)) {
        return AIRLOCK_ERR_INVAL;
    }
    while ((rc = read_entry(s, pos, &e)) == 1) {
        if (strcmp(e.key, key) == 0) {
            uint32_t n = cap < e.vlen ? (uint32_t)cap : e.vlen;
            if (n && (rc = rd(s, copy_base(s, s->active) + s->body_off + e.at + 3u + e.klen, buf,
                              n)) != 0) {
                return rc;
            }
            if (len) {
                *len = e.vlen;
            }
            return 1;
        }
        pos = e.at + 3u + e.klen + e.vlen;
    }
    return rc;
}

int airlock_settings_get_str(airlock_settings_t *s, const char *key, char *buf, size_t cap)
{
    size_t n = 0;
    if (!buf || cap == 0) {
        return AIRLOCK_ERR_INVAL;
    }
    int rc = airlock_settings_get(s, key, buf, cap - 1u, &n);
    if (rc == 1 && n >= cap) {
        rc = AIRLOCK_ERR_NOMEM;
    }
    buf[rc == 1 ? n : 0] = '\0';
    return rc;
}

int airlock_settings_next(airlock_settings_t *s, uint32_t *pos, char *key, size_t *len)
{
    struct entry e;
    int rc = read_entry(s, *pos, &e);
    if (rc == 1) {
        memcpy(key, e.key, e.klen + 1u);
        *len = e.vlen;
        *pos = e.at + 3u + e.klen + e.vlen;
    }
    return rc;
}

uint32_t airlock_settings_used(const airlock_settings_t *s)
{
    return s->active >= 0 ? s->body_len : 0;
}

uint32_t airlock_settings_capacity(const airlock_settings_t *s)
{
    return capacity(s);
}

/* ---- writing a copy ----------------------------------------------------- */

/* Streams bytes into the new copy's body in CHUNK-sized programs. */
struct writer {
    const airlock_settings_t *s;
    uint32_t addr; /* flash address of buf[0] */
    uint32_t fill;
    uint32_t crc;
    uint8_t buf[CHUNK];
};

static int w_flush(struct writer *w, bool last)
{
    uint32_t n = w->fill;
    if (last) {
        /* pad the tail to whole write units with erased bytes */
        uint32_t padded = roundup(n, w->s->area.flash->write_size);
        memset(w->buf + n, w->s->area.flash->erased_val, padded - n);
        n = padded;
    }
    if (n == 0) {
        return 0;
    }
    int rc = prog(w->s, w->addr, w->buf, n);
    w->addr += n;
    w->fill = 0;
    return rc;
}

static int w_put(struct writer *w, const void *data, uint32_t n)
{
    const uint8_t *p = data;
    w->crc = airlock_crc32(w->crc, p, n);
    while (n) {
        uint32_t k = CHUNK - w->fill < n ? CHUNK - w->fill : n;
        memcpy(w->buf + w->fill, p, k);
        w->fill += k;
        p += k;
        n -= k;
        if (w->fill == CHUNK) {
            int rc = w_flush(w, false);
            if (rc) {
                return rc;
            }
        }
    }
    return 0;
}

static int w_entry_hdr(struct writer *w, const char *key, uint32_t klen, uint32_t vlen)
{
    uint8_t h[3] = {(uint8_t)klen, (uint8_t)vlen, (uint8_t)(vlen >> 8)};
    int rc = w_put(w, h, 3);
    return rc ? rc : w_put(w, key, klen);
}

/* Does the batch name key? Its index, or -1. */
static int in_batch(const airlock_setting_t *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kv[i].key, key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int airlock_settings_set_many(airlock_settings_t *s, const airlock_setting_t *kv, size_t n)
{
    struct entry e;
    uint32_t pos = 0, total = 0;
    int rc;

    if (!s->area.flash || (n && !kv)) {
        return AIRLOCK_ERR_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (key_len(kv[i].key) == 0 || kv[i].len > AIRLOCK_SETTINGS_VAL_MAX ||
            (!kv[i].val && kv[i].len) || in_batch(kv, i, kv[i].key) >= 0) {
            return AIRLOCK_ERR_INVAL;
        }
        if (kv[i].val) {
            total += 3u + (uint32_t)key_len(kv[i].key) + (uint32_t)kv[i].len;
        }
    }
    /* pass 1: the new body's length (entries kept + entries set) */
    while ((rc = read_entry(s, pos, &e)) == 1) {
        if (in_batch(kv, n, e.key) < 0) {
            total += 3u + e.klen + e.vlen;
        }
        pos = e.at + 3u + e.klen + e.vlen;
    }
    if (rc < 0) {
        return rc;
    }
    if (total > capacity(s)) {
        return AIRLOCK_ERR_NOMEM;
    }

    /*
     * Write the other copy. The current one is never touched, so until the
     * commit unit below is whole a reset finds the old value; the erased or
     * half-written target fails its magic, commit or CRC check.
     */
    const airlock_flash_t *f = s->area.flash;
    int target = s->active < 0 ? 0 : 1 - s->active;
    uint32_t base = copy_base(s, target);
    uint32_t seq = s->active < 0 ? 1u : s->seq + 1u;
    for (uint32_t a = base, start, size; a < base + s->copy_size; a = start + size) {
        if (airlock_flash_sector(f, a, &start, &size) != 0) {
            return AIRLOCK_ERR_INVAL;
        }
        if (f->erase(f->ctx, start) != 0) {
            return AIRLOCK_ERR_IO;
        }
    }
    struct writer w = {.s = s, .addr = base + s->body_off, .fill = 0, .crc = 0};
    uint8_t sv[8];
    put32(sv, seq);
    put32(sv + 4, total);
    w.crc = airlock_crc32(0, sv, 8);
    pos = 0;
    while ((rc = read_entry(s, pos, &e)) == 1) {
        if (in_batch(kv, n, e.key) < 0) {
            uint8_t tmp[CHUNK];
            uint32_t from = copy_base(s, s->active) + s->body_off + e.at + 3u + e.klen;
            if ((rc = w_entry_hdr(&w, e.key, e.klen, e.vlen)) != 0) {
                return rc;
            }
            for (uint32_t done = 0; done < e.vlen;) {
                uint32_t k = e.vlen - done < CHUNK ? e.vlen - done : CHUNK;
                if ((rc = rd(s, from + done, tmp, k)) != 0 || (rc = w_put(&w, tmp, k)) != 0) {
                    return rc;
                }
                done += k;
            }
        }
        pos = e.at + 3u + e.klen + e.vlen;
    }
    if (rc < 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (!kv[i].val) {
            continue;
        }
        uint32_t klen = (uint32_t)key_len(kv[i].key);
        if ((rc = w_entry_hdr(&w, kv[i].key, klen, (uint32_t)kv[i].len)) != 0 ||
            (rc = w_put(&w, kv[i].val, (uint32_t)kv[i].len)) != 0) {
            return rc;
        }
    }
    if ((rc = w_flush(&w, true)) != 0) {
        return rc;
    }
    /* header, then the commit unit: the copy becomes valid with its last write */
    uint8_t unit[32];
    uint32_t hl = roundup(HDR_LEN, f->write_size);
    memset(unit, f->erased_val, sizeof(unit));
    put32(unit, AIRLOCK_SETTINGS_MAGIC);
    put32(unit + 4, seq);
    put32(unit + 8, total);
    put32(unit + 12, w.crc);
    if ((rc = prog(s, base, unit, hl)) != 0) {
        return rc;
    }
    memset(unit, f->erased_val, sizeof(unit));
    put32(unit, AIRLOCK_SETTINGS_COMMIT);
    if ((rc = prog(s, base + hl, unit, roundup(4u, f->write_size))) != 0) {
        return rc;
    }
    if (f->sync && f->sync(f->ctx) != 0) {
        return AIRLOCK_ERR_IO;
    }
    s->active = target;
    s->seq = seq;
    s->body_len = total;
    return 0;
}

int airlock_settings_set(airlock_settings_t *s, const char *key, const void *val, size_t len)
{
    airlock_setting_t kv = {key, val, len};
    return airlock_settings_set_many(s, &kv, 1);
}
