/*
 * OpenSSL 3 backend of the crypto port (airlock_crypto_openssl) for host
 * tools, the server and tests. EVP API only (no deprecated RSA_/EC_ calls);
 * its CRC-32 is zlib's.
 * It must never accept a key or signature the mbedTLS backend rejects (the
 * shared DER rules are in der_priv.h), and verify must never leave entries
 * on OpenSSL's error queue.
 */
#include "airlock/crypto_openssl.h"

#include <limits.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "airlock/err.h"
#include "der_priv.h"

#define ED25519_SIG_LEN 64

static const EVP_MD *md_for(int alg)
{
    switch (alg) {
    case AIRLOCK_HASH_SHA256:
        return EVP_sha256();
    case AIRLOCK_HASH_SHA384:
        return EVP_sha384();
    case AIRLOCK_HASH_SHA512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

static int hash_init(airlock_hash_t *h, int alg)
{
    const EVP_MD *md = md_for(alg);
    EVP_MD_CTX *ctx;

    h->opaque.ptr[0] = NULL;
    h->alg = alg;
    if (md == NULL) {
        return AIRLOCK_ERR_UNSUPPORTED;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return AIRLOCK_ERR_CRYPTO;
    }
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return AIRLOCK_ERR_CRYPTO;
    }
    h->opaque.ptr[0] = ctx;
    return 0;
}

static int hash_update(airlock_hash_t *h, const void *data, size_t len)
{
    EVP_MD_CTX *ctx = h->opaque.ptr[0];

    if (ctx == NULL) {
        return AIRLOCK_ERR_CRYPTO;
    }
    if (len == 0) {
        return 0;
    }
    return EVP_DigestUpdate(ctx, data, len) == 1 ? 0 : AIRLOCK_ERR_CRYPTO;
}

static int hash_finish(airlock_hash_t *h, uint8_t *out)
{
    EVP_MD_CTX *ctx = h->opaque.ptr[0];
    int ret = 0;

    if (ctx == NULL) {
        return AIRLOCK_ERR_CRYPTO;
    }
    /* EVP_DigestFinal_ex writes exactly the digest size of the context. */
    if (out != NULL && EVP_DigestFinal_ex(ctx, out, NULL) != 1) {
        ret = AIRLOCK_ERR_CRYPTO;
    }
    EVP_MD_CTX_free(ctx);
    h->opaque.ptr[0] = NULL;
    return ret;
}

static int is_rsa(int key_type)
{
    return key_type == AIRLOCK_KEY_RSA_2048 || key_type == AIRLOCK_KEY_RSA_3072;
}

static int is_ecdsa(int key_type)
{
    return key_type == AIRLOCK_KEY_ECDSA_P256 || key_type == AIRLOCK_KEY_ECDSA_P384;
}

/* RSA key sanity that mbedtls_rsa_check_pubkey enforces on the device. */
static int check_rsa_numbers(const EVP_PKEY *pkey)
{
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    int ret = AIRLOCK_ERR_BAD_KEY;

    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        goto out;
    }
    if (!BN_is_negative(n) && !BN_is_negative(e) && BN_is_odd(n) && BN_is_odd(e) && !BN_is_one(e) &&
        BN_cmp(e, n) < 0) {
        ret = 0;
    }
out:
    BN_free(n);
    BN_free(e);
    return ret;
}

/* Is pkey really a key_type key (algorithm, curve, modulus size)? */
static int check_key_kind(const EVP_PKEY *pkey, int key_type)
{
    char group[64];
    size_t group_len = 0;
    int nid;

    switch (key_type) {
    case AIRLOCK_KEY_ECDSA_P256:
    case AIRLOCK_KEY_ECDSA_P384:
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
            EVP_PKEY_get_group_name(pkey, group, sizeof(group), &group_len) != 1) {
            return AIRLOCK_ERR_BAD_KEY;
        }
        nid = OBJ_txt2nid(group);
        if (nid != (key_type == AIRLOCK_KEY_ECDSA_P256 ? NID_X9_62_prime256v1 : NID_secp384r1)) {
            return AIRLOCK_ERR_BAD_KEY;
        }
        return 0;
    case AIRLOCK_KEY_RSA_2048:
    case AIRLOCK_KEY_RSA_3072:
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA ||
            EVP_PKEY_get_bits(pkey) != (key_type == AIRLOCK_KEY_RSA_2048 ? 2048 : 3072)) {
            return AIRLOCK_ERR_BAD_KEY;
        }
        return check_rsa_numbers(pkey);
    case AIRLOCK_KEY_ED25519:
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 ? 0 : AIRLOCK_ERR_BAD_KEY;
    default:
        return AIRLOCK_ERR_BAD_KEY;
    }
}

/*
 * Decode key bytes in imgtool's form: PKCS#1 RSAPublicKey for RSA,
 * SubjectPublicKeyInfo otherwise. The DER must fill key_len exactly.
 */
static int load_key(int key_type, const uint8_t *key, size_t key_len, EVP_PKEY **out)
{
    const unsigned char *p = key;
    EVP_PKEY *pkey;

    *out = NULL;
    if (key == NULL || key_len == 0 || key_len > LONG_MAX) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    if (is_rsa(key_type)) {
        pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)key_len);
    } else {
        pkey = d2i_PUBKEY(NULL, &p, (long)key_len);
    }
    if (pkey == NULL) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    *out = pkey;
    if (p != key + key_len) {
        return AIRLOCK_ERR_BAD_KEY;
    }
    return check_key_kind(pkey, key_type);
}

static int verify_ecdsa(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *digest, size_t digest_len,
                        const uint8_t *sig, size_t sig_len)
{
    size_t der_len = ecdsa_sig_der_len(sig, sig_len);
    EVP_PKEY_CTX *pctx;
    int ret;

    if (der_len == 0) {
        return AIRLOCK_ERR_BAD_SIGNATURE;
    }
    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (pctx == NULL) {
        return AIRLOCK_ERR_CRYPTO;
    }
    if (EVP_PKEY_verify_init(pctx) != 1 || EVP_PKEY_CTX_set_signature_md(pctx, md) != 1) {
        ret = AIRLOCK_ERR_CRYPTO;
    } else if (EVP_PKEY_verify(pctx, sig, der_len, digest, digest_len) == 1) {
        ret = 0;
    } else {
        ret = AIRLOCK_ERR_BAD_SIGNATURE;
    }
    EVP_PKEY_CTX_free(pctx);
    return ret;
}

/* RSASSA-PSS, MGF1 with the same hash, salt length = hash length. */
static int verify_rsa_pss(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *digest,
                          size_t digest_len, const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *pctx;
    int ret;

    /* Exactly the modulus size, as on the device (OpenSSL alone would
     * accept a signature shorter by its leading zero bytes). */
    if (sig == NULL || EVP_PKEY_get_size(pkey) <= 0 || sig_len != (size_t)EVP_PKEY_get_size(pkey)) {
        return AIRLOCK_ERR_BAD_SIGNATURE;
    }
    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (pctx == NULL) {
        return AIRLOCK_ERR_CRYPTO;
    }
    if (EVP_PKEY_verify_init(pctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(pctx, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (int)digest_len) != 1) {
        ret = AIRLOCK_ERR_CRYPTO;
    } else if (EVP_PKEY_verify(pctx, sig, sig_len, digest, digest_len) == 1) {
        ret = 0;
    } else {
        ret = AIRLOCK_ERR_BAD_SIGNATURE;
    }
    EVP_PKEY_CTX_free(pctx);
    return ret;
}

/* Pure Ed25519: the digest bytes are the message. */
static int verify_ed25519(EVP_PKEY *pkey, const uint8_t *digest, size_t digest_len,
                          const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *mctx;
    int ret;

    if (sig == NULL || sig_len != ED25519_SIG_LEN) {
        return AIRLOCK_ERR_BAD_SIGNATURE;
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        return AIRLOCK_ERR_CRYPTO;
    }
    if (EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pkey) != 1) {
        ret = AIRLOCK_ERR_CRYPTO;
    } else if (EVP_DigestVerify(mctx, sig, sig_len, digest, digest_len) == 1) {
        ret = 0;
    } else {
        ret = AIRLOCK_ERR_BAD_SIGNATURE;
    }
    EVP_MD_CTX_free(mctx);
    return ret;
}

static int verify(void *ctx, int key_type, const uint8_t *key, size_t key_len, int hash_alg,
                  const uint8_t *digest, size_t digest_len, const uint8_t *sig, size_t sig_len)
{
    const EVP_MD *md = md_for(hash_alg);
    EVP_PKEY *pkey = NULL;
    int ret;

    (void)ctx;
    if (md == NULL ||
        !(is_ecdsa(key_type) || is_rsa(key_type) || key_type == AIRLOCK_KEY_ED25519) ||
        (is_rsa(key_type) && hash_alg != AIRLOCK_HASH_SHA256)) {
        return AIRLOCK_ERR_UNSUPPORTED;
    }
    if (digest == NULL || digest_len != (size_t)EVP_MD_get_size(md)) {
        return AIRLOCK_ERR_INVAL;
    }

    /* Failed decodes and verifies queue errors; the caller did not ask. */
    ERR_set_mark();
    ret = load_key(key_type, key, key_len, &pkey);
    if (ret == 0) {
        if (is_ecdsa(key_type)) {
            ret = verify_ecdsa(pkey, md, digest, digest_len, sig, sig_len);
        } else if (is_rsa(key_type)) {
            ret = verify_rsa_pss(pkey, md, digest, digest_len, sig, sig_len);
        } else {
            ret = verify_ed25519(pkey, digest, digest_len, sig, sig_len);
        }
    }
    EVP_PKEY_free(pkey);
    ERR_pop_to_mark();
    return ret;
}

/* zlib's CRC-32: several bytes a step from larger tables, for the update agent. */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
    /* zlib answers 0 for a NULL buffer, not crc */
    return len > 0 ? (uint32_t)crc32_z(crc, data, len) : crc;
}

const airlock_crypto_t airlock_crypto_openssl = {
    .name = "openssl",
    .ctx = NULL,
    .hash_init = hash_init,
    .hash_update = hash_update,
    .hash_finish = hash_finish,
    .verify = verify,
    .crc32 = crc32_update,
};
