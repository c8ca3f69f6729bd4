/*
 * mbedTLS 2.28 backend of the crypto port, for the device (bootloader, agent)
 * and host tests. Hashing never allocates; key parsing allocates only through
 * mbedTLS's own calloc, which on the device is a static buffer (set_heap).
 */
#ifndef AIRLOCK_CRYPTO_MBEDTLS_H
#define AIRLOCK_CRYPTO_MBEDTLS_H

#include <stddef.h>

#include "airlock/crypto.h"

/*
 * The backend, ready to use: pass &airlock_crypto_mbedtls wherever an
 * airlock_crypto_t is wanted. ctx is NULL; the backend keeps no state.
 *
 * Algorithms: SHA-256/384/512 (state kept inside airlock_hash_t, no
 * allocation); ECDSA P-256 and P-384; RSA-2048 and RSA-3072 PSS with SHA-256
 * only (MGF1-SHA-256, salt 32 bytes). Ed25519 is NOT supported: mbedTLS 2.28
 * has no Ed25519, so verify returns AIRLOCK_ERR_UNSUPPORTED for
 * AIRLOCK_KEY_ED25519 whatever the other arguments are.
 *
 * Return codes and the order of checks are those documented for
 * airlock_crypto_openssl (include/airlock/crypto_openssl.h), so the two
 * backends accept and reject exactly the same keys and signatures, except:
 * Ed25519 (above), and EC public keys in compressed point form, which OpenSSL
 * accepts and mbedTLS 2.28 rejects with AIRLOCK_ERR_BAD_KEY (imgtool and
 * `airlock getpub` always write uncompressed points).
 * verify returns AIRLOCK_ERR_CRYPTO when mbedTLS runs out of heap: on the
 * device that means the set_heap buffer is too small, not that the key or
 * signature is bad.
 *
 * Needs these mbedTLS modules (MBEDTLS_*_C): SHA256, SHA512, BIGNUM, ECP with
 * MBEDTLS_ECP_DP_SECP256R1_ENABLED / SECP384R1_ENABLED, ECDSA, ASN1_PARSE,
 * RSA with MBEDTLS_PKCS1_V21, PK, PK_PARSE, OID, MD; optionally PLATFORM and
 * MEMORY_BUFFER_ALLOC (with MBEDTLS_PLATFORM_MEMORY) for a heap without malloc.
 */
extern const airlock_crypto_t airlock_crypto_mbedtls;

/*
 * Give mbedTLS a caller-owned buffer as its heap (mbedtls_memory_buffer_alloc
 * _init), for builds without malloc. Only verify allocates (key parsing and
 * bignum arithmetic); hashing never does. The buffer must stay valid as long
 * as mbedTLS is used. This is mbedTLS's process-wide allocator, so call it
 * once at start-up, before any verify.
 * Size: with cmake/cortexm/mbedtls_config.h, the whole test suite passes
 * with 8 KiB (RSA-3072 needs 7.5-8 KiB; ECDSA P-384 5-7 KiB, P-256 less),
 * measured on a 64-bit host whose block headers are larger than
 * Cortex-M's; 10 KiB leaves margin. Too small shows as AIRLOCK_ERR_CRYPTO.
 * Returns 0; AIRLOCK_ERR_INVAL if buf is NULL or len is 0;
 * AIRLOCK_ERR_UNSUPPORTED if mbedTLS was built without
 * MBEDTLS_MEMORY_BUFFER_ALLOC_C (then mbedTLS uses the C library's calloc
 * and there is nothing to set).
 */
int airlock_crypto_mbedtls_set_heap(void *buf, size_t len);

#endif /* AIRLOCK_CRYPTO_MBEDTLS_H */
