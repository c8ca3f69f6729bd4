/*
 * mbedTLS 2.28 backend of the crypto port (airlock_crypto_mbedtls) for the
 * device and host tests. Freestanding: it must never use stdio, the OS or an
 * allocator of its own; hash state lives in the caller's airlock_hash_t and
 * only mbedTLS itself allocates (through mbedtls_calloc) while verifying.
 * It must accept exactly what the OpenSSL backend accepts (der_priv.h).
 *
 * mbedTLS modules used, and nothing else (library/<name>.c):
 *   sha256, sha512            hashing (sha512 also serves SHA-384)
 *   asn1parse                 PKCS#1 RSAPublicKey parsing, SPKI framing
 *   pk, pkparse, pk_wrap, oid SubjectPublicKeyInfo parsing for ECDSA keys
 *   bignum, ecp, ecp_curves   P-256 / P-384 arithmetic
 *   ecdsa                     ECDSA verification
 *   rsa, rsa_internal         RSA key import and RSASSA-PSS (MBEDTLS_PKCS1_V21)
 *   md                        PSS's MGF1 looks its hash up through md
 *   platform_util, constant_time   used by all of the above
 *   memory_buffer_alloc, platform  optional: a static heap instead of calloc
 * (asn1write must also be built: mbedTLS's check_config.h requires it with
 * ECDSA_C, though nothing on the verify path calls it.)
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mbedtls/asn1.h"
#include "mbedtls/ecdsa.h"
#include "mbedtls/ecp.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"
#include "mbedtls/rsa.h"
#include "mbedtls/sha256.h"
#include "mbedtls/sha512.h"
#include "mbedtls/version.h"
#if defined(MBEDTLS_MEMORY_BUFFER_ALLOC_C)
#include "mbedtls/memory_buffer_alloc.h"
#endif

#include "airlock/crypto_mbedtls.h"
#include "airlock/err.h"
#include "der_priv.h"

#if MBEDTLS_VERSION_MAJOR != 2
#error "crypto/mbedtls.c is written for the mbedTLS 2.x API (2.28 LTS)"
#endif

/* The hash state, kept inside airlock_hash_t.opaque: no allocation. */
union hash_state {
    mbedtls_sha256_context sha256;
    mbedtls_sha512_context sha512;
};

_Static_assert(sizeof(union hash_state) <= sizeof(((airlock_hash_t *)0)->opaque),
               "airlock_hash_t.opaque is too small for the mbedTLS hash contexts");
_Static_assert(_Alignof(union hash_state) <= _Alignof(uint64_t),
               "airlock_hash_t.opaque is not aligned enough for the mbedTLS hash contexts");

static union hash_state *state_of(airlock_hash_t *h)
{
    return (union hash_state *)(void *)&h->opaque;
}

static int hash_init(airlock_hash_t *h, int alg)
{
    union hash_state *st = state_of(h);
    int ret;

    h->alg = alg;
    switch (alg) {
    case AIRLOCK_HASH_SHA256:
        mbedtls_sha256_init(&st->sha256);
        ret = mbedtls_sha256_starts_ret(&st->sha256, 0);
        break;
    case AIRLOCK_HASH_SHA384:
    case AIRLOCK_HASH_SHA512:
        mbedtls_sha512_init(&st->sha512);
        ret = mbedtls_sha512_starts_ret(&st->sha512, alg == AIRLOCK_HASH_SHA384);
        break;
    default:
        return AIRLOCK_ERR_UNSUPPORTED;
    }
    return ret == 0 ? 0 : AIRLOCK_ERR_CRYPTO;
}

static int hash_update(airlock_hash_t *h, const void *data, size_t len)
{
    union hash_state *st = state_of(h);
    int ret;

    if (len == 0) {
        return 0;
    }
    switch (h->alg) {
    case AIRLOCK_HASH_SHA256:
        ret = mbedtls_sha256_update_ret(&st->sha256, data, len);
        break;
    case AIRLOCK_HASH_SHA384:
    case AIRLOCK_HASH_SHA512:
        ret = mbedtls_sha512_update_ret(&st->sha512, data, len);
        break;
    default:
        return AIRLOCK_ERR_CRYPTO;
    }
    return ret == 0 ? 0 : AIRLOCK_ERR_CRYPTO;
}

static int hash_finish(airlock_hash_t *h, uint8_t *out)
{
    union hash_state *st = state_of(h);
    uint8_t full[64]; /* SHA-384 is finished as a truncated SHA-512 */
    int ret = 0;

    switch (h->alg) {
    case AIRLOCK_HASH_SHA256:
        if (out != NULL) {
            ret = mbedtls_sha256_finish_ret(&st->sha256, full);
        }
        mbedtls_sha256_free(&st->sha256);
        break;
    case AIRLOCK_HASH_SHA384:
    case AIRLOCK_HASH_SHA512:
        if (out != NULL) {
            ret = mbedtls_sha512_finish_ret(&st->sha512, full);
        }
        mbedtls_sha512_free(&st->sha512);
        break;
    default:
        return AIRLOCK_ERR_CRYPTO;
    }
    if (out != NULL && ret == 0) {
        memcpy(out, full, airlock_hash_len(h->alg));
    }
    h->alg = 0;
    return ret == 0 ? 0 : AIRLOCK_ERR_CRYPTO;
}

/*
 * Map an mbedTLS error to `otherwise`, except running out of heap, which is
 * AIRLOCK_ERR_CRYPTO: a too-small heap must not look like a bad key or a
 * forged image. mbedTLS codes are -(high-level | low-level) with the
 * low-level module code in bits 0-6.
 */
static int map_err(int ret, int otherwise)
{
    int high = (-ret) & 0xff80;
    int low = (-ret) & 0x007f;

    if (high == -MBEDTLS_ERR_PK_ALLOC_FAILED || high == -MBEDTLS_ERR_ECP_ALLOC_FAILED ||
        high == -MBEDTLS_ERR_MD_ALLOC_FAILED || low == -MBEDTLS_ERR_MPI_ALLOC_FAILED ||
        low == -MBEDTLS_ERR_ASN1_ALLOC_FAILED) {
        return AIRLOCK_ERR_CRYPTO;
    }
    return otherwise;
}

/*
 * Parse a DER SubjectPublicKeyInfo that fills key_len exactly (mbedTLS
 * alone ignores bytes after the outer SEQUENCE).
 */
static int parse_spki(mbedtls_pk_context *pk, const uint8_t *key, size_t key_len)
{
    unsigned char *p = (unsigned char *)key;
    size_t len;
    int ret;

    if (key == NULL || key_len == 0) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    if (mbedtls_asn1_get_tag(&p, key + key_len, &len,
                             MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
        len != (size_t)(key + key_len - p)) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    ret = mbedtls_pk_parse_public_key(pk, key, key_len);
    return ret == 0 ? 0 : map_err(ret, AIRLOCK_ERR_BAD_KEY);
}

static int verify_ecdsa(int key_type, const uint8_t *key, size_t key_len, const uint8_t *digest,
                        size_t digest_len, const uint8_t *sig, size_t sig_len)
{
    mbedtls_ecp_group_id want =
        key_type == AIRLOCK_KEY_ECDSA_P256 ? MBEDTLS_ECP_DP_SECP256R1 : MBEDTLS_ECP_DP_SECP384R1;
    mbedtls_pk_context pk;
    size_t der_len;
    int ret;

    mbedtls_pk_init(&pk);
    ret = parse_spki(&pk, key, key_len);
    if (ret != 0) {
        goto out;
    }
    if (mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY || mbedtls_pk_ec(pk)->grp.id != want) {
        ret = AIRLOCK_ERR_BAD_KEY;
        goto out;
    }
    der_len = ecdsa_sig_der_len(sig, sig_len);
    if (der_len == 0) {
        ret = AIRLOCK_ERR_BAD_SIGNATURE;
        goto out;
    }
    ret = mbedtls_ecdsa_read_signature(mbedtls_pk_ec(pk), digest, digest_len, sig, der_len);
    ret = ret == 0 ? 0 : map_err(ret, AIRLOCK_ERR_BAD_SIGNATURE);
out:
    mbedtls_pk_free(&pk);
    return ret;
}

/* Read one strict, non-negative DER INTEGER; *v / *v_len get its magnitude. */
static int read_uint(unsigned char **p, const unsigned char *end, const uint8_t **v, size_t *v_len)
{
    size_t len;

    if (mbedtls_asn1_get_tag(p, end, &len, MBEDTLS_ASN1_INTEGER) != 0 || !der_uint_ok(*p, len)) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    *v = *p;
    *v_len = len;
    *p += len;
    if (**v == 0x00) { /* sign byte, or the value zero */
        (*v)++;
        (*v_len)--;
    }
    return *v_len == 0 ? AIRLOCK_ERR_BAD_KEY : 0;
}

/* PKCS#1 RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
static int parse_rsa_pubkey(const uint8_t *key, size_t key_len, const uint8_t **n, size_t *n_len,
                            const uint8_t **e, size_t *e_len)
{
    unsigned char *p = (unsigned char *)key;
    const unsigned char *end = key + key_len;
    size_t len;

    if (key == NULL || key_len == 0) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
            0 ||
        len != (size_t)(end - p)) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    if (read_uint(&p, end, n, n_len) != 0 || read_uint(&p, end, e, e_len) != 0 || p != end) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    return 0;
}

/* Bit length of a big-endian magnitude whose first byte is non-zero. */
static size_t bit_length(const uint8_t *v, size_t len)
{
    size_t bits = (len - 1) * 8;
    uint8_t top = v[0];

    while (top != 0) {
        bits++;
        top >>= 1;
    }
    return bits;
}

/* RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32. */
static int verify_rsa_pss(int key_type, const uint8_t *key, size_t key_len, const uint8_t *digest,
                          size_t digest_len, const uint8_t *sig, size_t sig_len)
{
    size_t want_bits = key_type == AIRLOCK_KEY_RSA_2048 ? 2048 : 3072;
    mbedtls_rsa_context rsa;
    const uint8_t *n;
    const uint8_t *e;
    size_t n_len;
    size_t e_len;
    int ret;

    ret = parse_rsa_pubkey(key, key_len, &n, &n_len, &e, &e_len);
    if (ret != 0) {
        return ret;
    }
    if (bit_length(n, n_len) != want_bits) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
    ret = mbedtls_rsa_import_raw(&rsa, n, n_len, NULL, 0, NULL, 0, NULL, 0, e, e_len);
    if (ret == 0) {
        ret = mbedtls_rsa_complete(&rsa);
    }
    if (ret == 0) {
        ret = mbedtls_rsa_check_pubkey(&rsa);
    }
    if (ret != 0) {
        ret = map_err(ret, AIRLOCK_ERR_BAD_KEY);
        goto out;
    }
    /* pss_verify_ext reads exactly the modulus size from sig. */
    if (sig == NULL || sig_len != mbedtls_rsa_get_len(&rsa)) {
        ret = AIRLOCK_ERR_BAD_SIGNATURE;
        goto out;
    }
    ret = mbedtls_rsa_rsassa_pss_verify_ext(&rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256,
                                            (unsigned int)digest_len, digest, MBEDTLS_MD_SHA256,
                                            (int)digest_len, sig);
    ret = ret == 0 ? 0 : map_err(ret, AIRLOCK_ERR_BAD_SIGNATURE);
out:
    mbedtls_rsa_free(&rsa);
    return ret;
}

static int verify(void *ctx, int key_type, const uint8_t *key, size_t key_len, int hash_alg,
                  const uint8_t *digest, size_t digest_len, const uint8_t *sig, size_t sig_len)
{
    size_t want_len = airlock_hash_len(hash_alg);

    (void)ctx;
    switch (key_type) {
    case AIRLOCK_KEY_ECDSA_P256:
    case AIRLOCK_KEY_ECDSA_P384:
    case AIRLOCK_KEY_RSA_2048:
    case AIRLOCK_KEY_RSA_3072:
        break;
    default: /* including AIRLOCK_KEY_ED25519: mbedTLS 2.28 has none */
        return AIRLOCK_ERR_UNSUPPORTED;
    }
    if (want_len == 0 || ((key_type == AIRLOCK_KEY_RSA_2048 || key_type == AIRLOCK_KEY_RSA_3072) &&
                          hash_alg != AIRLOCK_HASH_SHA256)) {
        return AIRLOCK_ERR_UNSUPPORTED;
    }
    if (digest == NULL || digest_len != want_len) {
        return AIRLOCK_ERR_INVAL;
    }
    if (key_type == AIRLOCK_KEY_ECDSA_P256 || key_type == AIRLOCK_KEY_ECDSA_P384) {
        return verify_ecdsa(key_type, key, key_len, digest, digest_len, sig, sig_len);
    }
    return verify_rsa_pss(key_type, key, key_len, digest, digest_len, sig, sig_len);
}

int airlock_crypto_mbedtls_set_heap(void *buf, size_t len)
{
    if (buf == NULL || len == 0) {
        return AIRLOCK_ERR_INVAL;
    }
#if defined(MBEDTLS_MEMORY_BUFFER_ALLOC_C)
    mbedtls_memory_buffer_alloc_init(buf, len);
    return 0;
#else
    return AIRLOCK_ERR_UNSUPPORTED;
#endif
}

const airlock_crypto_t airlock_crypto_mbedtls = {
    .name = "mbedtls",
    .ctx = NULL,
    .hash_init = hash_init,
    .hash_update = hash_update,
    .hash_finish = hash_finish,
    .verify = verify,
};
