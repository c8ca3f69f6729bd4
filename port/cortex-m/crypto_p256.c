/*
 * SHA-256 + ECDSA P-256 crypto port over mbedTLS primitives (crypto_p256.h):
 * the bootloader's verify without mbedTLS's PK layer. Same DER rules as
 * crypto/mbedtls.c (crypto/der_priv.h). No cryptography of its own: every
 * hash and curve operation is mbedTLS's; it must never accept another curve.
 */
#include "crypto_p256.h"

#include <string.h>

#include "airlock/err.h"
#include "der_priv.h"
#include "mbedtls/bignum.h"
#include "mbedtls/ecdsa.h"
#include "mbedtls/memory_buffer_alloc.h"
#include "mbedtls/sha256.h"

_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(((airlock_hash_t *)0)->opaque),
               "airlock_hash_t.opaque is too small for mbedtls_sha256_context");

/* SubjectPublicKeyInfo up to the point: id-ecPublicKey, prime256v1, BIT STRING of 66. */
static const uint8_t spki_prefix[26] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
#define SPKI_LEN (sizeof spki_prefix + 65u)

static mbedtls_sha256_context *sha(airlock_hash_t *h)
{
    return (mbedtls_sha256_context *)(void *)&h->opaque;
}

static int hash_init(airlock_hash_t *h, int alg)
{
    if (alg != AIRLOCK_HASH_SHA256) {
        return AIRLOCK_ERR_UNSUPPORTED;
    }
    h->alg = alg;
    mbedtls_sha256_init(sha(h));
    return mbedtls_sha256_starts_ret(sha(h), 0) == 0 ? 0 : AIRLOCK_ERR_CRYPTO;
}

static int hash_update(airlock_hash_t *h, const void *data, size_t len)
{
    if (h->alg != AIRLOCK_HASH_SHA256) {
        return AIRLOCK_ERR_CRYPTO;
    }
    if (len == 0) {
        return 0;
    }
    return mbedtls_sha256_update_ret(sha(h), data, len) == 0 ? 0 : AIRLOCK_ERR_CRYPTO;
}

static int hash_finish(airlock_hash_t *h, uint8_t *out)
{
    int ret = 0;
    if (h->alg != AIRLOCK_HASH_SHA256) {
        return AIRLOCK_ERR_CRYPTO;
    }
    if (out != NULL) {
        ret = mbedtls_sha256_finish_ret(sha(h), out);
    }
    mbedtls_sha256_free(sha(h));
    h->alg = 0;
    return ret == 0 ? 0 : AIRLOCK_ERR_CRYPTO;
}

/* Out of heap is CRYPTO (a too-small heap must not look like a forged image). */
static int map_err(int ret, int otherwise)
{
    int low = (-ret) & 0x007f;
    int high = (-ret) & 0xff80;
    if (low == -MBEDTLS_ERR_MPI_ALLOC_FAILED || high == -MBEDTLS_ERR_ECP_ALLOC_FAILED) {
        return AIRLOCK_ERR_CRYPTO;
    }
    return otherwise;
}

static int verify(void *ctx, int key_type, const uint8_t *key, size_t key_len, int hash_alg,
                  const uint8_t *digest, size_t digest_len, const uint8_t *sig, size_t sig_len)
{
    (void)ctx;
    if (key_type != AIRLOCK_KEY_ECDSA_P256 || hash_alg != AIRLOCK_HASH_SHA256) {
        return AIRLOCK_ERR_UNSUPPORTED;
    }
    if (digest == NULL || digest_len != airlock_hash_len(hash_alg)) {
        return AIRLOCK_ERR_INVAL;
    }
    if (key == NULL || key_len != SPKI_LEN || memcmp(key, spki_prefix, sizeof spki_prefix) != 0) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    mbedtls_ecdsa_context ec;
    mbedtls_ecdsa_init(&ec);
    int ret = mbedtls_ecp_group_load(&ec.grp, MBEDTLS_ECP_DP_SECP256R1);
    if (ret != 0) {
        ret = map_err(ret, AIRLOCK_ERR_CRYPTO);
        goto out;
    }
    ret = mbedtls_ecp_point_read_binary(&ec.grp, &ec.Q, key + sizeof spki_prefix, 65);
    if (ret == 0) {
        ret = mbedtls_ecp_check_pubkey(&ec.grp, &ec.Q);
    }
    if (ret != 0) {
        ret = map_err(ret, AIRLOCK_ERR_BAD_KEY);
        goto out;
    }
    size_t der_len = ecdsa_sig_der_len(sig, sig_len);
    if (der_len == 0) {
        ret = AIRLOCK_ERR_BAD_SIGNATURE;
        goto out;
    }
    ret = mbedtls_ecdsa_read_signature(&ec, digest, digest_len, sig, der_len);
    ret = ret == 0 ? 0 : map_err(ret, AIRLOCK_ERR_BAD_SIGNATURE);
out:
    mbedtls_ecdsa_free(&ec);
    return ret;
}

const airlock_crypto_t airlock_crypto_p256 = {
    .name = "mbedtls-p256",
    .ctx = NULL,
    .hash_init = hash_init,
    .hash_update = hash_update,
    .hash_finish = hash_finish,
    .verify = verify,
    .crc32 = NULL,
};

int airlock_crypto_p256_set_heap(void *buf, size_t len)
{
    if (buf == NULL || len == 0) {
        return AIRLOCK_ERR_INVAL;
    }
    mbedtls_memory_buffer_alloc_init(buf, len);
    return 0;
}
