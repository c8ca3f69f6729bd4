/*
 * A bootloader-sized crypto port: SHA-256 and ECDSA P-256 verification only,
 * on mbedTLS 2.28 built with cmake/cortexm/mbedtls_config_p256.h (no PK
 * layer, RSA, SHA-512 or P-384). For bootloaders whose compiled-in keys are
 * all P-256; applications use crypto/mbedtls.c. Never allocates except
 * through mbedTLS's buffer heap (airlock_crypto_mbedtls_set_heap's rules).
 */
#ifndef AIRLOCK_CRYPTO_P256_H
#define AIRLOCK_CRYPTO_P256_H

#include <stddef.h>

#include "airlock/crypto.h"

/*
 * The port. hash_init accepts AIRLOCK_HASH_SHA256 only (others:
 * AIRLOCK_ERR_UNSUPPORTED). verify accepts AIRLOCK_KEY_ECDSA_P256 with a
 * SHA-256 digest; every other key type returns AIRLOCK_ERR_UNSUPPORTED. For
 * P-256 it accepts and rejects exactly what crypto/mbedtls.c does, with the
 * same codes, except that the key must be the 91-byte DER
 * SubjectPublicKeyInfo with named curve prime256v1 and an uncompressed point
 * (what `airlock getpub` and imgtool write): any other encoding is
 * AIRLOCK_ERR_BAD_KEY.
 */
extern const airlock_crypto_t airlock_crypto_p256;

/*
 * Give mbedTLS its heap (mbedtls_memory_buffer_alloc_init): call once before
 * any verify. P-256 verification needs about 2 KiB; 4 KiB leaves margin.
 * Returns 0, or AIRLOCK_ERR_INVAL if buf is NULL or len is 0.
 */
int airlock_crypto_p256_set_heap(void *buf, size_t len);

#endif /* AIRLOCK_CRYPTO_P256_H */
