/*
 * The device update agent (ESP-IDF esp_ota_* shaped): stream an update into
 * the secondary slot while the old firmware runs, refuse a bad image as soon
 * as its bytes show it, survive power cuts by resuming, then request it.
 * Never writes the primary slot or its trailer (except airlock_ota_confirm's
 * image_ok). Freestanding, no allocation: all state is in airlock_ota_t.
 */
#ifndef AIRLOCK_OTA_H
#define AIRLOCK_OTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/crypto.h"
#include "airlock/err.h"
#include "airlock/image.h"
#include "airlock/layout.h"

#define AIRLOCK_OTA_ID_SIZE 32u

/*
 * Caller-owned download state (internal fields: read airlock_ota_pos() and
 * friends, never write them). 728 bytes on a 64-bit host, 720 on
 * Cortex-M3; core/ota.c asserts it stays under 1 KiB. Besides it the agent
 * uses cfg->buf (resume's re-read, set_pending's erased check) and stack:
 * airlock_ota_end is the deepest, about 1.4 KiB on Cortex-M3 plus the
 * crypto backend's verify (scripts/cross-check.sh prints the figure).
 */
typedef struct airlock_ota_tlv_parser {
    uint32_t start; /* image offset of the area's info header */
    uint32_t end;   /* image offset after the area, 0 until its info arrived */
    uint32_t tlv;   /* offset of the current TLV's header */
    uint16_t type;
    uint16_t len;
    uint8_t hdr[4];
} airlock_ota_tlv_parser_t;

typedef struct airlock_ota {
    const airlock_boot_cfg_t *cfg;
    airlock_area_t slot; /* the secondary */
    airlock_trailer_geom_t geom;
    int state;          /* internal phase */
    int err;            /* sticky error once failed */
    uint32_t stage_off; /* image start in the slot (airlock_boot_stage) */
    uint32_t room;      /* longest image the engine accepts */
    uint32_t size_hint; /* begin's size_or_0 */
    uint32_t tail;      /* first slot offset of the sectors holding the trailer */
    uint32_t rec_off, rec_size, rec_cap, rec_next, rec_every, rec_last;
    uint32_t erased_end; /* slot offsets below it were erased this session */
    uint32_t prog_off;   /* slot offset of the next write unit to program */
    uint32_t pos;        /* image bytes accepted */
    uint32_t wlen;       /* bytes pending in wbuf (< write_size) */
    uint32_t crc;        /* CRC-32 state of the programmed image bytes */
    uint32_t tlv_off;    /* end of the hashed region, 0 until the header */
    uint32_t end;        /* image length, 0 until the TLV info arrived */
    bool resumed;
    bool hashing;
    bool run_valid; /* the primary holds a parseable image */
    bool run_has_sec_cnt;
    bool has_sec_cnt;
    bool seen_keyhash;
    uint32_t run_sec_cnt;
    uint32_t sec_cnt;
    int hash_alg;
    airlock_version_t run_version;
    airlock_image_header_t hdr;
    airlock_ota_tlv_parser_t prot, unprot;
    airlock_hash_t hash;
    uint8_t raw_hdr[32];
    uint8_t val[AIRLOCK_HASH_MAX_LEN]; /* a TLV value being collected */
    uint8_t wbuf[32];
    uint8_t digest[AIRLOCK_HASH_MAX_LEN];
    uint8_t id[AIRLOCK_OTA_ID_SIZE];
    airlock_err_detail_t det; /* why the download failed */
} airlock_ota_t;

/*
 * Start a fresh download into the secondary slot, where cfg's engine wants
 * it (airlock_boot_stage). cfg (layout, engine, crypto, keys, buf, as for
 * airlock_boot) must outlive ota. size_or_0 is the artifact's length if
 * known (checked against the room now and against the image's own length
 * when its TLV info arrives). id is the caller's name for this artifact
 * (e.g. its SHA-256 from the server; NULL means all zero) kept with the
 * progress records so airlock_ota_resume can tell it from another.
 * Refuses (INVAL, det field "primary.image_ok") while the running image is
 * on trial: its predecessor sits in the secondary until it is confirmed.
 * ota must be new, or finished with (airlock_ota_end / _abort, or failed):
 * a download still hashing must be aborted first or its hash state leaks.
 * cfg->watchdog_feed, if set, is called before each erase and each chunk
 * resume re-reads.
 * Erases the sectors holding the secondary's trailer (this cancels any
 * pending request), then writes the progress header. Image sectors are
 * erased later, one by one, as the writes reach them.
 * Returns 0, INVAL, TOO_BIG (size_or_0 over the room), LAYOUT or IO.
 */
int airlock_ota_begin(airlock_ota_t *ota, const airlock_boot_cfg_t *cfg, uint32_t size_or_0,
                      const uint8_t *id);

/*
 * After a reset (or a lost connection): continue the download named id.
 * Reads the progress records; if they name id, re-reads and re-checks the
 * durably written prefix (CRC against the record, header and TLV checks,
 * hash) and continues after it; otherwise (other id, no records, prefix
 * changed) starts over exactly as airlock_ota_begin does. *offset receives
 * the image offset to send from next (0 when it started over; the image
 * length when the download was complete: call airlock_ota_end).
 * A resumed download leaves the slot byte-identical to an uninterrupted one.
 * Returns 0 or what airlock_ota_begin returns, or an early-rejection error
 * found in the prefix.
 */
int airlock_ota_resume(airlock_ota_t *ota, const airlock_boot_cfg_t *cfg, const uint8_t *id,
                       uint32_t *offset);

/*
 * Append n bytes of the image (any n, 1 included). Checks each field as soon
 * as its last byte arrives and fails on the first bad one, before writing
 * it, with a specific error (det in airlock_ota_detail):
 *   BAD_MAGIC (byte 4), BAD_HDR_SIZE (byte 10: header size < 32),
 *   TOO_BIG (byte 16: header + payload + protected TLVs over the room; or
 *     the TLV info: whole image over the room),
 *   NOT_BOOTABLE (byte 20: non-bootable, encrypted or compressed flags),
 *   DOWNGRADE (byte 28: version older than the running image),
 *   BAD_TLV_INFO / BAD_TLV (malformed TLV areas),
 *   SEC_CNT_ROLLBACK (end of the protected TLVs: security counter below
 *     the device's floor, the higher of the running image's and the one
 *     the boot journal recorded; or missing when there is a floor),
 *   UNKNOWN_KEY (end of the first KEYHASH value: no trusted key has it),
 *   OUT_OF_BOUNDS (bytes past the image's end, or a size_or_0 mismatch).
 * Bytes are programmed in write units as they come; a trailing partial unit
 * waits in ota until more bytes or the image's end. After an error the
 * download is dead: every later call returns the same error.
 * Returns 0, one of the above, INVAL (wrong phase) or IO.
 */
int airlock_ota_write(airlock_ota_t *ota, const void *buf, size_t n);

/*
 * All bytes written: verify the image in the slot. The hash is the one
 * computed while streaming (compared with the hash TLV, then the signature
 * checked with it); a resumed download is instead verified by re-reading
 * the slot (airlock_image_verify). Version and security counter were checked
 * while streaming. Returns 0 or the verification error (HASH_MISMATCH,
 * BAD_SIGNATURE, UNKNOWN_KEY, NO_SIGNATURE, ...), INVAL if the image is
 * incomplete (det field "image end").
 */
int airlock_ota_end(airlock_ota_t *ota);

/*
 * After a successful airlock_ota_end: ask the bootloader to install the
 * update at the next boot, as a trial (permanent false: the new image must
 * call airlock_ota_confirm or it is reverted) or for good. Makes sure the
 * trailer fields are erased first (erasing the trailer sectors when they
 * hold no image bytes), then wraps airlock_boot_request.
 * Returns 0, INVAL (no verified download) or IO.
 */
int airlock_ota_set_pending(airlock_ota_t *ota, bool permanent);

/*
 * Drop the download: release the hash state. Flash is left as it is (a later
 * airlock_ota_resume with the same id may still continue it). Safe to call
 * in any phase, and more than once.
 */
void airlock_ota_abort(airlock_ota_t *ota);

/* Mark the running image good (airlock_boot_confirm). Idempotent. */
int airlock_ota_confirm(const airlock_boot_cfg_t *cfg);

/* What the device is running and what is pending. */
typedef struct airlock_ota_status {
    bool running_valid; /* the primary holds a parseable image */
    airlock_version_t running_version;
    bool confirmed;         /* running image permanent (not on trial) */
    bool on_trial;          /* running an unconfirmed update */
    bool pending;           /* the secondary holds a request for the next boot */
    bool pending_permanent; /* ... requested permanent */
    bool pending_valid;     /* ... and its image parses (version below) */
    airlock_version_t pending_version;
    /*
     * The last update was taken back by the bootloader (not confirmed within
     * its trial boots); cleared by the next install. reverted_valid: its
     * version (reverted_version) is known.
     */
    bool reverted;
    bool reverted_valid;
    airlock_version_t reverted_version;
    /* The lowest security counter an update may carry (journal, running image). */
    bool has_sec_cnt;
    uint32_t sec_cnt;
} airlock_ota_status_t;

/*
 * Read both trailers, the primary's header and the boot journal (never
 * writing). Returns 0, INVAL, LAYOUT or IO.
 */
int airlock_ota_state(const airlock_boot_cfg_t *cfg, airlock_ota_status_t *st);

/* Image bytes accepted so far. */
uint32_t airlock_ota_pos(const airlock_ota_t *ota);

/* The image's whole length (header, payload, TLVs): 0 until its TLV info arrived. */
uint32_t airlock_ota_image_len(const airlock_ota_t *ota);

/* What the last failure was about (field, offset, values). Never NULL. */
const airlock_err_detail_t *airlock_ota_detail(const airlock_ota_t *ota);

#endif /* AIRLOCK_OTA_H */
