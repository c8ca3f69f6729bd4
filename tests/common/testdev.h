/*
 * A test device: one RAM sim flash of uniform 4 KiB sectors holding a
 * bootloader area, primary and secondary slots and a status area, with a
 * bootloader configuration over it. Shared by the agent's tests (core's
 * streaming writer, the HTTPS download); test code only.
 */
#ifndef AIRLOCK_TESTDEV_H
#define AIRLOCK_TESTDEV_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/crypto.h"
#include "airlock/sim_flash.h"

#define TD_SECTOR 4096u

typedef struct td_dev {
    airlock_sim_flash_t *sim;
    const airlock_flash_t *fl;
    airlock_sector_run_t runs[1];
    airlock_layout_t layout;
    airlock_boot_cfg_t cfg; /* one trusted key, max_trials 1 */
    uint8_t buf[1024];
    uint32_t stage, room; /* airlock_boot_stage for cfg's engine */
} td_dev_t;

/*
 * Sectors: 2 bootloader, slot_sectors primary, slot_sectors secondary, 2
 * status; write_size as given, erased 0xff. Returns 0, or -1 (the sim or
 * the engine refused the layout).
 */
int td_open(td_dev_t *d, const airlock_engine_t *engine, const airlock_crypto_t *crypto,
            const airlock_pubkey_t *key, uint32_t write_size, uint32_t slot_sectors);

/* The bytes of area id (AIRLOCK_AREA_*), in the sim's memory. */
uint8_t *td_area_bytes(td_dev_t *d, int id);

/* Put len bytes at the start of the primary, as a factory programmer would. Returns 0 or -1. */
int td_put_primary(td_dev_t *d, const uint8_t *img, size_t len);

/* Release the sim. */
void td_close(td_dev_t *d);

/*
 * A signed test image of about len bytes (header 32, payload from seed,
 * an optional SEC_CNT, signed with key): malloc'd, its length in *out_len,
 * or NULL.
 */
struct tu_key;
uint8_t *td_image(uint8_t major, uint8_t minor, uint32_t len, uint32_t seed, int with_sec_cnt,
                  uint32_t sec_cnt, const struct tu_key *key, size_t *out_len);

#endif
