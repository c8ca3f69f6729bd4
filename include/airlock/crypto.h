/*
 * The crypto port: the only way core reaches hashing and signature checks.
 * A backend (crypto/mbedtls.c, crypto/openssl.c) fills one airlock_crypto_t.
 * Core never allocates: hash state lives in caller-owned airlock_hash_t.
 */
#ifndef AIRLOCK_CRYPTO_H
#define AIRLOCK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* Hash algorithms, numbered as their image TLV types. */
enum airlock_hash_alg {
    AIRLOCK_HASH_SHA256 = 0x10,
    AIRLOCK_HASH_SHA384 = 0x11,
    AIRLOCK_HASH_SHA512 = 0x12,
};

#define AIRLOCK_HASH_MAX_LEN 64

/* Digest length in bytes of a hash algorithm, 0 if unknown. */
size_t airlock_hash_len(int alg);

/*
 * Public key types. The key bytes are the form imgtool embeds and hashes
 * for KEYHASH: DER SubjectPublicKeyInfo for ECDSA and Ed25519, DER PKCS#1
 * RSAPublicKey for RSA.
 */
enum airlock_key_type {
    AIRLOCK_KEY_NONE = 0,
    AIRLOCK_KEY_ECDSA_P256 = 1,
    AIRLOCK_KEY_ECDSA_P384 = 2,
    AIRLOCK_KEY_RSA_2048 = 3,
    AIRLOCK_KEY_RSA_3072 = 4,
    AIRLOCK_KEY_ED25519 = 5,
};

/* "ecdsa-p256", ... as used by the CLI; "none" for unknown. */
const char *airlock_key_type_name(int type);

/*
 * Opaque hash state storage owned by the caller. Large enough for every
 * backend (checked with a static assertion in each backend).
 */
typedef struct airlock_hash {
    union {
        uint64_t u64[32];
        void *ptr[2];
    } opaque;
    int alg;
} airlock_hash_t;

typedef struct airlock_crypto {
    /* Backend name for reports ("mbedtls", "openssl"). */
    const char *name;
    /* Backend context passed back to verify (may be NULL). */
    void *ctx;

    /*
     * Start hashing with alg into h. Returns 0, AIRLOCK_ERR_UNSUPPORTED or
     * AIRLOCK_ERR_CRYPTO. After a successful init the caller must call
     * hash_finish exactly once (with out == NULL to discard).
     */
    int (*hash_init)(airlock_hash_t *h, int alg);
    /* Feed len bytes. Returns 0 or AIRLOCK_ERR_CRYPTO. */
    int (*hash_update)(airlock_hash_t *h, const void *data, size_t len);
    /*
     * Write the digest (airlock_hash_len(alg) bytes) to out unless out is
     * NULL, and release the state. Returns 0 or AIRLOCK_ERR_CRYPTO.
     */
    int (*hash_finish)(airlock_hash_t *h, uint8_t *out);

    /*
     * Check signature sig over an image digest with public key key (format
     * per airlock_key_type). For ECDSA and RSA-PSS (MGF1, salt length = hash
     * length) the digest is the pre-hashed message; for Ed25519 the digest
     * bytes are the message itself. ECDSA signatures are DER and may carry
     * trailing zero padding, which is ignored.
     * Returns 0 if valid, AIRLOCK_ERR_BAD_SIGNATURE if not,
     * AIRLOCK_ERR_BAD_KEY if the key cannot be parsed or is not of key_type,
     * AIRLOCK_ERR_UNSUPPORTED if the backend lacks the algorithm,
     * AIRLOCK_ERR_INVAL if digest is NULL or digest_len is not
     * airlock_hash_len(hash_alg), AIRLOCK_ERR_CRYPTO if the backend itself
     * fails (out of memory).
     */
    int (*verify)(void *ctx, int key_type, const uint8_t *key, size_t key_len,
                  int hash_alg, const uint8_t *digest, size_t digest_len,
                  const uint8_t *sig, size_t sig_len);

    /*
     * Optional (NULL: core's own, a byte at a time from a 1 KiB table).
     * CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320, as zlib's
     * crc32()) of len bytes, continuing from crc (0 to start); must give
     * exactly those values. The update agent runs it over every image byte
     * for its progress records, so a host or a part with a CRC unit can
     * make downloads faster here; a bootloader needs none.
     */
    uint32_t (*crc32)(uint32_t crc, const void *data, size_t len);
} airlock_crypto_t;

#endif /* AIRLOCK_CRYPTO_H */
