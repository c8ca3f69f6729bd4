/*
 * airlock_ddi_boot_from_ota: what this boot means for the DDI client (running
 * version, confirmed, reverted and why), read from core's airlock_ota_state.
 * Freestanding like agent/ddi.c (no malloc, no stdio); never writes flash.
 */
#include <string.h>

#include "airlock/ddi.h"
#include "airlock/ota.h"

static void put(char *buf, size_t cap, size_t *len, const char *s)
{
    while (*s && *len + 1 < cap) {
        buf[(*len)++] = *s++;
    }
    buf[*len] = '\0';
}

static void put_u32(char *buf, size_t cap, size_t *len, uint32_t v)
{
    char tmp[11];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    char rev[11];
    for (size_t i = 0; i < n; i++) {
        rev[i] = tmp[n - 1 - i];
    }
    rev[n] = '\0';
    put(buf, cap, len, rev);
}

void airlock_ddi_version_str(const airlock_version_t *v, char *buf, size_t cap)
{
    size_t len = 0;
    if (!cap) {
        return;
    }
    buf[0] = '\0';
    put_u32(buf, cap, &len, v->major);
    put(buf, cap, &len, ".");
    put_u32(buf, cap, &len, v->minor);
    put(buf, cap, &len, ".");
    put_u32(buf, cap, &len, v->revision);
    if (v->build) {
        put(buf, cap, &len, "+");
        put_u32(buf, cap, &len, v->build);
    }
}

int airlock_ddi_boot_from_ota(const airlock_boot_cfg_t *cfg, airlock_ddi_boot_t *boot)
{
    airlock_ota_status_t st;
    memset(boot, 0, sizeof(*boot));
    int rc = airlock_ota_state(cfg, &st);
    if (rc) {
        return rc;
    }
    if (st.running_valid) {
        airlock_ddi_version_str(&st.running_version, boot->running_version,
                                sizeof(boot->running_version));
    }
    boot->confirmed = st.running_valid && st.confirmed;
    boot->reverted = st.reverted;
    boot->pending = st.pending;
    if (st.reverted) {
        size_t len = 0;
        char *r = boot->reason;
        size_t cap = sizeof(boot->reason);
        if (st.reverted_valid) {
            airlock_ddi_version_str(&st.reverted_version, boot->reverted_version,
                                    sizeof(boot->reverted_version));
        }
        put(r, cap, &len, "the bootloader reverted ");
        put(r, cap, &len, st.reverted_valid ? boot->reverted_version : "the update");
        put(r, cap, &len,
            ": not confirmed within its trial boots (crashed, hung or failed its "
            "health checks)");
    }
    return 0;
}
