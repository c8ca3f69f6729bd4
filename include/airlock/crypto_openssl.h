/*
 * OpenSSL 3 backend of the crypto port, for host tools, the server and tests.
 * Never for the device: it allocates (each hash state is a heap EVP_MD_CTX).
 */
#ifndef AIRLOCK_CRYPTO_OPENSSL_H
#define AIRLOCK_CRYPTO_OPENSSL_H

#include "airlock/crypto.h"

/*
 * The backend, ready to use: pass &airlock_crypto_openssl wherever an
 * airlock_crypto_t is wanted. Needs no set-up and has no state of its own
 * (ctx is NULL); safe to use from several threads at once.
 *
 * Algorithms: SHA-256/384/512; ECDSA P-256 and P-384 (any of the three
 * hashes); RSA-2048 and RSA-3072 PSS with SHA-256 only (MGF1-SHA-256, salt
 * 32 bytes, as imgtool signs); Ed25519 (pure, over the digest bytes).
 *
 * Behaviour beyond crypto.h, identical in the mbedTLS backend:
 * - hash_init: AIRLOCK_ERR_UNSUPPORTED for an unknown alg (h still needs no
 *   hash_finish then); AIRLOCK_ERR_CRYPTO if OpenSSL cannot allocate.
 * - verify: checks in this order and returns the first failure:
 *   1. unknown key_type or hash_alg, or RSA with a hash other than SHA-256:
 *      AIRLOCK_ERR_UNSUPPORTED;
 *   2. digest NULL or digest_len != airlock_hash_len(hash_alg):
 *      AIRLOCK_ERR_INVAL;
 *   3. key bytes not exactly one DER structure of the right form, or a key
 *      of another algorithm, curve or modulus size (exactly 2048 / 3072
 *      bits), or an RSA key with an even modulus or an exponent that is even,
 *      1, or not below the modulus: AIRLOCK_ERR_BAD_KEY;
 *   4. anything wrong with the signature - wrong length (RSA: the modulus
 *      size; Ed25519: 64), ECDSA DER that is not strict or is followed by a
 *      non-zero byte, or a mathematically invalid signature:
 *      AIRLOCK_ERR_BAD_SIGNATURE.
 *   AIRLOCK_ERR_CRYPTO if OpenSSL fails to allocate. verify leaves OpenSSL's
 *   error queue as it found it.
 */
extern const airlock_crypto_t airlock_crypto_openssl;

#endif /* AIRLOCK_CRYPTO_OPENSSL_H */
