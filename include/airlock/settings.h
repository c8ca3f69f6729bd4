/*
 * The device settings store: a small power-safe key/value store in the
 * layout's `settings` area (identity, server, credentials, CA, agent state).
 * Two copies, each half of the area; a write builds a whole new copy in the
 * older half and commits it with one final write unit, so a power cut at any
 * flash operation leaves the previous value or the new one, never a mix.
 * Freestanding: no malloc, no stdio; all state in airlock_settings_t.
 *
 * On flash, each copy (little endian, fields padded to the write size W):
 *
 *   +0                 magic u32 "ALST", seq u32, body_len u32, crc u32
 *                      (CRC-32 of seq, body_len and the body)
 *   +roundup(16, W)    commit u32 0x5aa5c33c: programmed last
 *   +that + roundup(4, W)   body: entries, each key_len u8 (1..31),
 *                      val_len u16, key bytes, value bytes
 *
 * A copy counts when its magic, commit and CRC are right; the valid copy
 * with the higher sequence number (serial arithmetic) is the current one.
 * A write: erase the other copy's sectors, program the body, the header,
 * then the commit unit. Until the commit unit is whole the new copy is not
 * valid and the old one (never touched) stays current; once it is, the new
 * copy has the higher sequence number.
 */
#ifndef AIRLOCK_SETTINGS_H
#define AIRLOCK_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/err.h"
#include "airlock/layout.h"

#define AIRLOCK_SETTINGS_KEY_MAX 31u       /* longest key, in bytes (no NUL on flash) */
#define AIRLOCK_SETTINGS_VAL_MAX 65535u    /* longest value */
#define AIRLOCK_SETTINGS_MAGIC 0x54534c41u /* "ALST" little endian */
#define AIRLOCK_SETTINGS_COMMIT 0x5aa5c33cu

/* Caller-owned store state (40 bytes on a 64-bit host, 32 on Cortex-M). Fields are private. */
typedef struct airlock_settings {
    airlock_area_t area;
    uint32_t copy_size; /* bytes of each copy: half the area */
    uint32_t body_off;  /* offset of the body inside a copy */
    int active;         /* copy holding the current value, -1: none (empty store) */
    uint32_t seq;       /* its sequence number */
    uint32_t body_len;  /* its body length */
} airlock_settings_t;

/* One key to set (val != NULL) or delete (val == NULL) in a batch. */
typedef struct airlock_setting {
    const char *key; /* NUL-terminated, 1..AIRLOCK_SETTINGS_KEY_MAX bytes */
    const void *val;
    size_t len;
} airlock_setting_t;

/*
 * Open the store in area (the layout file's settings area, see docs/layout.md:
 * at least two sectors, starting, ending and split in half on sector
 * boundaries, so a write never erases outside it). Reads both copies and picks the
 * current one; a blank or never-written area is an empty store (not an
 * error). area must stay valid while s is used (it is copied, its flash is
 * not). Returns 0, AIRLOCK_ERR_INVAL (area absent, outside its flash, not
 * ending on a sector boundary or not splittable into two sector-aligned
 * halves, write size over 32) or AIRLOCK_ERR_IO.
 */
int airlock_settings_open(airlock_settings_t *s, const airlock_area_t *area);

/*
 * Look key up. Copies at most cap bytes of its value into buf (may be NULL
 * when cap is 0) and its full length into *len (may be NULL).
 * Returns 1 (found; the value was truncated if *len > cap), 0 (absent),
 * AIRLOCK_ERR_INVAL (bad key) or AIRLOCK_ERR_IO.
 */
int airlock_settings_get(airlock_settings_t *s, const char *key, void *buf, size_t cap,
                         size_t *len);

/*
 * Get a string value: copies it NUL-terminated into buf (cap bytes).
 * Returns 1, 0 (absent: buf is ""), AIRLOCK_ERR_NOMEM (value of cap bytes or
 * more: buf is ""), AIRLOCK_ERR_INVAL or AIRLOCK_ERR_IO.
 */
int airlock_settings_get_str(airlock_settings_t *s, const char *key, char *buf, size_t cap);

/*
 * Set (or delete) n keys in one atomic write: afterwards either all of them
 * have their new values or, if power failed, none has. Keys not named keep
 * their values. Costs the erase of one copy's sectors plus its programming.
 * Returns 0, AIRLOCK_ERR_INVAL (bad key, value over the maximum, a key
 * twice), AIRLOCK_ERR_NOMEM (the result would not fit in a copy: nothing is
 * written) or AIRLOCK_ERR_IO (flash failed: the store holds the old or the
 * new values; airlock_settings_open again to know which).
 */
int airlock_settings_set_many(airlock_settings_t *s, const airlock_setting_t *kv, size_t n);

/* airlock_settings_set_many with one key. */
int airlock_settings_set(airlock_settings_t *s, const char *key, const void *val, size_t len);

/*
 * Iterate over the keys: *pos starts at 0. Copies the next key NUL-terminated
 * into key (AIRLOCK_SETTINGS_KEY_MAX + 1 bytes) and its value length into
 * *len. Returns 1, 0 at the end, or AIRLOCK_ERR_IO.
 */
int airlock_settings_next(airlock_settings_t *s, uint32_t *pos, char *key, size_t *len);

/* Bytes of the body of the current copy, and the most a copy can hold. */
uint32_t airlock_settings_used(const airlock_settings_t *s);
uint32_t airlock_settings_capacity(const airlock_settings_t *s);

#endif /* AIRLOCK_SETTINGS_H */
