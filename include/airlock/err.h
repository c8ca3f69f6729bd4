/*
 * airlock error codes: one enum for the whole library, generated with its
 * messages from one list so the two can never drift.
 * Freestanding: no I/O here; human detail travels in airlock_err_detail_t.
 */
#ifndef AIRLOCK_ERR_H
#define AIRLOCK_ERR_H

#include <stdint.h>

/*
 * X(name, value, message). 0 is success, every error is negative.
 * Values are stable: they are part of the ABI and of the CLI's exit codes.
 */
#define AIRLOCK_ERR_LIST(X)                                                    \
    X(OK, 0, "success")                                                        \
    X(INVAL, -1, "invalid argument")                                           \
    X(IO, -2, "read from the image source failed")                             \
    X(NOMEM, -3, "buffer too small")                                           \
    X(BAD_MAGIC, -10, "image header magic is not 0x96f3b83d")                  \
    X(BAD_HDR_SIZE, -11, "image header size is invalid")                       \
    X(OUT_OF_BOUNDS, -12, "a length or offset points outside the slot")        \
    X(BAD_TLV_INFO, -13, "TLV area info header is missing or wrong")           \
    X(BAD_TLV, -14, "malformed TLV entry")                                     \
    X(DUP_TLV, -15, "a TLV that must be unique appears twice")                 \
    X(BAD_FLAGS, -16, "image flags are not supported")                         \
    X(NO_HASH, -20, "image has no hash TLV")                                   \
    X(HASH_MISMATCH, -21, "image hash does not match its contents")            \
    X(NO_SIGNATURE, -22, "image carries no signature")                         \
    X(BAD_SIGNATURE, -23, "no signature verifies with a trusted key")          \
    X(KEY_MISMATCH, -24, "trusted key type does not match the image")          \
    X(UNKNOWN_KEY, -25, "image was signed by a key that is not trusted")       \
    X(UNSUPPORTED, -26, "algorithm not supported by this crypto backend")      \
    X(CRYPTO, -27, "crypto backend failure")                                   \
    X(BAD_SEC_CNT, -28, "security counter TLV is malformed")                   \
    X(BAD_KEY, -29, "public key cannot be parsed")                            \
    X(DOWNGRADE, -30, "update is older than the running image")               \
    X(SEC_CNT_ROLLBACK, -31, "update's security counter is below the device's") \
    X(NOT_BOOTABLE, -32, "image is marked non-bootable or encrypted")         \
    X(TOO_BIG, -33, "image runs into the slot trailer")                       \
    X(LAYOUT, -34, "flash layout unusable for this engine")                   \
    X(NETWORK, -40, "download failed and so did every retry")                 \
    X(TLS, -41, "server certificate rejected (chain, name, dates or pin)")    \
    X(HTTP, -42, "server answered with an error status")                      \
    X(INCOMPLETE, -43, "artifact ends before the image it holds does")        \
    X(CANCELLED, -44, "cancelled by the caller")

enum airlock_err {
#define AIRLOCK_ERR_ENUM_(name, value, msg) AIRLOCK_ERR_##name = (value),
    AIRLOCK_ERR_LIST(AIRLOCK_ERR_ENUM_)
#undef AIRLOCK_ERR_ENUM_
};

/* Short human-readable message for an airlock_err value; never NULL. */
const char *airlock_strerror(int err);

/* Symbolic name ("BAD_MAGIC") for an airlock_err value; never NULL. */
const char *airlock_errname(int err);

/*
 * What exactly was wrong, filled in by functions that take one (may be NULL).
 * field: static string naming the field ("header.magic", "tlv.len", ...).
 * offset: byte offset in the image/slot where the bad data sits.
 * expected/found: numeric values where meaningful (has_values != 0).
 * tlv_type: the TLV involved, 0 if none.
 */
typedef struct airlock_err_detail {
    const char *field;
    uint32_t offset;
    uint32_t expected;
    uint32_t found;
    uint16_t tlv_type;
    uint8_t has_values;
} airlock_err_detail_t;

#endif /* AIRLOCK_ERR_H */
