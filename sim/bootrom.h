/*
 * The simulated device's bootloader configuration, kept in the layout's
 * bootloader area as a factory-programmed record: the install engine, the
 * trial boots an update gets, and the trusted public keys (what a real
 * bootloader has compiled in). The device simulator boots with it and the
 * demo firmware verifies downloads with it. Host only; never written after
 * provisioning.
 */
#ifndef AIRLOCK_SIM_BOOTROM_H
#define AIRLOCK_SIM_BOOTROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/layout.h"

#define BOOTROM_MAGIC 0x52424c41u /* "ALBR" */
#define BOOTROM_MAX_KEYS 8
#define BOOTROM_KEY_MAX 600 /* DER bytes per key: RSA-3072 PKCS#1 is 398 */
#define BOOTROM_ENGINE_MAX 32

typedef struct bootrom {
    char engine[BOOTROM_ENGINE_MAX]; /* "swap-scratch", ... */
    uint32_t max_trials;             /* >= 1 */
    uint32_t max_sectors;            /* 0: core's default */
    bool allow_unsigned;
    unsigned nkeys;
    airlock_pubkey_t keys[BOOTROM_MAX_KEYS]; /* der points into der[] */
    uint8_t der[BOOTROM_MAX_KEYS][BOOTROM_KEY_MAX];
} bootrom_t;

/*
 * Erase the bootloader area of layout and program r into it (as a factory
 * programmer would, through the area's flash port). Returns 0,
 * AIRLOCK_ERR_INVAL (no bootloader area, record too big) or AIRLOCK_ERR_IO.
 */
int bootrom_write(const airlock_layout_t *layout, const bootrom_t *r);

/*
 * Read the record back into *r (its keys point into r). Returns 0,
 * AIRLOCK_ERR_INVAL (no bootloader area), AIRLOCK_ERR_BAD_MAGIC (no valid
 * record: a device never provisioned) or AIRLOCK_ERR_IO.
 */
int bootrom_read(const airlock_layout_t *layout, bootrom_t *r);

/*
 * Fill cfg for airlock_boot / airlock_ota_* from r: layout, engine (NULL
 * returned as AIRLOCK_ERR_INVAL if r names none known), crypto, keys,
 * trials, work buffer. r and buf must outlive cfg.
 */
int bootrom_cfg(const bootrom_t *r, const airlock_layout_t *layout, const airlock_crypto_t *crypto,
                uint8_t *buf, uint32_t buf_len, airlock_boot_cfg_t *cfg);

#endif
