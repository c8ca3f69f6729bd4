/*
 * A test device on the sim flash (testdev.h). Test code only.
 */
#include "testdev.h"

#include <string.h>

#include "imgbuild.h"

int td_open(td_dev_t *d, const airlock_engine_t *engine, const airlock_crypto_t *crypto,
            const airlock_pubkey_t *key, uint32_t write_size, uint32_t slot_sectors)
{
    const uint32_t s = TD_SECTOR, n = slot_sectors;
    memset(d, 0, sizeof(*d));
    d->runs[0] = (airlock_sector_run_t){2 + 2 * n + 2, s};
    airlock_sim_flash_geometry_t geo = {0, write_size, 0xff, d->runs, 1};
    if (airlock_sim_flash_create(&geo, &d->sim) != 0) {
        return -1;
    }
    d->fl = airlock_sim_flash_port(d->sim);
    airlock_layout_t *l = &d->layout;
    l->area[AIRLOCK_AREA_BOOTLOADER] = (airlock_area_t){d->fl, 0, 2 * s};
    l->area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){d->fl, 2 * s, n * s};
    l->area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){d->fl, (2 + n) * s, n * s};
    l->area[AIRLOCK_AREA_STATUS] = (airlock_area_t){d->fl, (2 + 2 * n) * s, 2 * s};
    d->cfg.layout = l;
    d->cfg.engine = engine;
    d->cfg.crypto = crypto;
    d->cfg.keys = key;
    d->cfg.nkeys = 1;
    d->cfg.max_trials = 1;
    d->cfg.buf = d->buf;
    d->cfg.buf_len = sizeof(d->buf);
    if (airlock_boot_stage(&d->cfg, &d->stage, &d->room) != 0) {
        airlock_sim_flash_close(d->sim);
        d->sim = NULL;
        return -1;
    }
    return 0;
}

uint8_t *td_area_bytes(td_dev_t *d, int id)
{
    return airlock_sim_flash_data(d->sim) + d->layout.area[id].off;
}

int td_put_primary(td_dev_t *d, const uint8_t *img, size_t len)
{
    return airlock_sim_flash_load(d->sim, d->layout.area[AIRLOCK_AREA_PRIMARY].off, img,
                                  (uint32_t)len) == 0
               ? 0
               : -1;
}

void td_close(td_dev_t *d)
{
    airlock_sim_flash_close(d->sim);
    d->sim = NULL;
}

uint8_t *td_image(uint8_t major, uint8_t minor, uint32_t len, uint32_t seed, int with_sec_cnt,
                  uint32_t sec_cnt, const struct tu_key *key, size_t *out_len)
{
    tu_image_spec_t s;
    memset(&s, 0, sizeof(s));
    s.version = (airlock_version_t){major, minor, 0, 0};
    s.hdr_size = 32;
    s.seed = seed;
    s.with_sec_cnt = with_sec_cnt;
    s.sec_cnt = sec_cnt;
    s.key = key;
    s.payload_len = len - (uint32_t)tu_image_len(&s);
    return tu_image_build(&s, out_len);
}
