/*
 * The simulated bootloader's factory record (bootrom.h): magic, length,
 * CRC-32, then engine, trials, max sectors, flags and keys, little endian.
 * Written once at provisioning; a device without one cannot boot.
 */
#include "bootrom.h"

#include "airlock/crc32.h"

#include <string.h>

#define HDR 12u
#define MAX_REC 8192u

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int bootrom_write(const airlock_layout_t *layout, const bootrom_t *r)
{
    const airlock_area_t *a = &layout->area[AIRLOCK_AREA_BOOTLOADER];
    static uint8_t rec[MAX_REC];
    uint32_t n = HDR;

    if (!a->flash || r->nkeys > BOOTROM_MAX_KEYS) {
        return AIRLOCK_ERR_INVAL;
    }
    memset(rec, a->flash->erased_val, sizeof(rec));
    memcpy(rec + n, r->engine, BOOTROM_ENGINE_MAX);
    n += BOOTROM_ENGINE_MAX;
    put32(rec + n, r->max_trials);
    put32(rec + n + 4, r->max_sectors);
    rec[n + 8] = r->allow_unsigned ? 1 : 0;
    rec[n + 9] = (uint8_t)r->nkeys;
    n += 10;
    for (unsigned i = 0; i < r->nkeys; i++) {
        if (r->keys[i].der_len > BOOTROM_KEY_MAX || n + 3 + r->keys[i].der_len > MAX_REC) {
            return AIRLOCK_ERR_INVAL;
        }
        rec[n] = (uint8_t)r->keys[i].type;
        rec[n + 1] = (uint8_t)r->keys[i].der_len;
        rec[n + 2] = (uint8_t)(r->keys[i].der_len >> 8);
        memcpy(rec + n + 3, r->keys[i].der, r->keys[i].der_len);
        n += 3 + (uint32_t)r->keys[i].der_len;
    }
    put32(rec, BOOTROM_MAGIC);
    put32(rec + 4, n - HDR);
    put32(rec + 8, airlock_crc32(0, rec + HDR, n - HDR));
    uint32_t w = a->flash->write_size;
    uint32_t len = (n + w - 1) / w * w;
    if (len > a->size) {
        return AIRLOCK_ERR_INVAL;
    }
    for (uint32_t off = a->off, start, size; off < a->off + len; off = start + size) {
        if (airlock_flash_sector(a->flash, off, &start, &size) != 0 ||
            a->flash->erase(a->flash->ctx, start) != 0) {
            return AIRLOCK_ERR_IO;
        }
    }
    return a->flash->prog(a->flash->ctx, a->off, rec, len) == 0 ? 0 : AIRLOCK_ERR_IO;
}

int bootrom_read(const airlock_layout_t *layout, bootrom_t *r)
{
    const airlock_area_t *a = &layout->area[AIRLOCK_AREA_BOOTLOADER];
    static uint8_t rec[MAX_REC];

    memset(r, 0, sizeof(*r));
    if (!a->flash) {
        return AIRLOCK_ERR_INVAL;
    }
    uint32_t max = a->size < MAX_REC ? a->size : MAX_REC;
    if (a->flash->read(a->flash->ctx, a->off, rec, max) != 0) {
        return AIRLOCK_ERR_IO;
    }
    uint32_t len = get32(rec + 4);
    if (get32(rec) != BOOTROM_MAGIC || len > max - HDR || len < BOOTROM_ENGINE_MAX + 10 ||
        airlock_crc32(0, rec + HDR, len) != get32(rec + 8)) {
        return AIRLOCK_ERR_BAD_MAGIC;
    }
    const uint8_t *p = rec + HDR, *end = rec + HDR + len;
    memcpy(r->engine, p, BOOTROM_ENGINE_MAX);
    r->engine[BOOTROM_ENGINE_MAX - 1] = '\0';
    p += BOOTROM_ENGINE_MAX;
    r->max_trials = get32(p);
    r->max_sectors = get32(p + 4);
    r->allow_unsigned = p[8] != 0;
    r->nkeys = p[9];
    p += 10;
    if (r->nkeys > BOOTROM_MAX_KEYS) {
        return AIRLOCK_ERR_BAD_MAGIC;
    }
    for (unsigned i = 0; i < r->nkeys; i++) {
        if (end - p < 3) {
            return AIRLOCK_ERR_BAD_MAGIC;
        }
        size_t kl = (size_t)p[1] | (size_t)p[2] << 8;
        if (kl > BOOTROM_KEY_MAX || (size_t)(end - p) < 3 + kl) {
            return AIRLOCK_ERR_BAD_MAGIC;
        }
        r->keys[i].type = p[0];
        memcpy(r->der[i], p + 3, kl);
        r->keys[i].der = r->der[i];
        r->keys[i].der_len = kl;
        p += 3 + kl;
    }
    return 0;
}

int bootrom_cfg(const bootrom_t *r, const airlock_layout_t *layout, const airlock_crypto_t *crypto,
                uint8_t *buf, uint32_t buf_len, airlock_boot_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->engine = airlock_engine_find(r->engine);
    if (!cfg->engine) {
        return AIRLOCK_ERR_INVAL;
    }
    cfg->layout = layout;
    cfg->crypto = crypto;
    cfg->keys = r->keys;
    cfg->nkeys = r->nkeys;
    cfg->allow_unsigned = r->allow_unsigned;
    cfg->max_trials = r->max_trials ? r->max_trials : 1;
    cfg->max_sectors = r->max_sectors;
    cfg->buf = buf;
    cfg->buf_len = buf_len;
    return 0;
}
