/*
 * OpenSSL side of the CLI's key handling (see pkey.h). The embedded public
 * key bytes must equal what imgtool embeds for KEYHASH/PUBKEY, byte for byte:
 * SubjectPublicKeyInfo with a named curve and uncompressed point for ECDSA,
 * SPKI for Ed25519, PKCS#1 RSAPublicKey for RSA.
 */
#include "pkey.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "airlock/image.h"
#include "util.h"

int cli_key_type_from_name(const char *name)
{
    int t;

    for (t = AIRLOCK_KEY_ECDSA_P256; t <= AIRLOCK_KEY_ED25519; t++) {
        if (strcmp(name, airlock_key_type_name(t)) == 0) {
            return t;
        }
    }
    return AIRLOCK_KEY_NONE;
}

/* First queued OpenSSL error as text, and clear the queue. */
static const char *ossl_reason(void)
{
    static char buf[256];
    unsigned long e = ERR_peek_last_error();

    if (e == 0) {
        return "no detail from OpenSSL";
    }
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

/* Does data[0..len) contain the NUL-free string needle? */
static bool contains(const uint8_t *data, size_t len, const char *needle)
{
    size_t n = strlen(needle), i;

    for (i = 0; i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

/* Password callback that refuses: we never prompt. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static EVP_PKEY *decode(const uint8_t *data, size_t len, int selection, const char *structure,
                        const char *keytype)
{
    const unsigned char *p = data;
    size_t left = len;
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx;

    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, NULL, structure, keytype, selection, NULL, NULL);
    if (dctx == NULL) {
        return NULL;
    }
    if (OSSL_DECODER_CTX_set_pem_password_cb(dctx, no_passphrase, NULL) != 1 ||
        OSSL_DECODER_from_data(dctx, &p, &left) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

/* Does pkey hold its private half? Checked on the key, not on the PEM label. */
static bool has_private(EVP_PKEY *pkey)
{
    BIGNUM *bn = NULL;
    size_t n = 0;
    bool priv = false;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        priv = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        priv = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
    } else {
        priv = EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0, &n) == 1 &&
               n > 0;
    }
    BN_clear_free(bn);
    ERR_clear_error();
    return priv;
}

/* Classify pkey; on failure write the reason into why. */
static int classify(EVP_PKEY *pkey, char *why, size_t why_len)
{
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        size_t glen = 0;

        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1) {
            snprintf(why, why_len,
                     "EC key without a named curve (explicit parameters are not "
                     "supported; use P-256 or P-384)");
            return AIRLOCK_KEY_NONE;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
            strcmp(group, "secp256r1") == 0) {
            return AIRLOCK_KEY_ECDSA_P256;
        }
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            return AIRLOCK_KEY_ECDSA_P384;
        }
        snprintf(why, why_len, "EC curve %s is not supported (use P-256 or P-384)", group);
        return AIRLOCK_KEY_NONE;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);

        if (bits == 2048) {
            return AIRLOCK_KEY_RSA_2048;
        }
        if (bits == 3072) {
            return AIRLOCK_KEY_RSA_3072;
        }
        snprintf(why, why_len, "RSA key of %d bits is not supported (use 2048 or 3072)", bits);
        return AIRLOCK_KEY_NONE;
    }
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        return AIRLOCK_KEY_ED25519;
    }
    snprintf(why, why_len,
             "%s keys are not supported (use ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or "
             "ed25519)",
             EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "this kind of");
    return AIRLOCK_KEY_NONE;
}

/* Fill key->der with the embedded public key bytes. */
static int embed_der(cli_key_t *key)
{
    unsigned char *der = NULL;
    int n;

    if (key->type == AIRLOCK_KEY_RSA_2048 || key->type == AIRLOCK_KEY_RSA_3072) {
        n = i2d_PublicKey(key->pkey, &der); /* PKCS#1 RSAPublicKey for RSA */
    } else {
        if (EVP_PKEY_is_a(key->pkey, "EC") &&
            (EVP_PKEY_set_utf8_string_param(key->pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                            "uncompressed") != 1 ||
             EVP_PKEY_set_utf8_string_param(key->pkey, OSSL_PKEY_PARAM_EC_ENCODING,
                                            "named_curve") != 1)) {
            return -1;
        }
        n = i2d_PUBKEY(key->pkey, &der); /* SubjectPublicKeyInfo */
    }
    if (n <= 0) {
        return -1;
    }
    key->der = malloc((size_t)n);
    if (key->der == NULL) {
        OPENSSL_free(der);
        return -1;
    }
    memcpy(key->der, der, (size_t)n);
    key->der_len = (size_t)n;
    OPENSSL_free(der);
    return 0;
}

int cli_key_load(const char *path, cli_key_t *key)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char why[160] = "";
    int rc;

    memset(key, 0, sizeof(*key));
    rc = cli_read_file(path, "key file", &data, &len);
    if (rc != EXIT_OK_) {
        return rc;
    }
    if (len == 0) {
        free(data);
        return cli_fail(EXIT_KEY, "key file '%s' is empty", path);
    }
    /* Private key first (any PKCS#8 / traditional form), then the public forms. */
    key->pkey = decode(data, len, EVP_PKEY_KEYPAIR, NULL, NULL);
    if (key->pkey == NULL) {
        key->pkey = decode(data, len, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", NULL);
    }
    if (key->pkey == NULL) {
        key->pkey = decode(data, len, EVP_PKEY_PUBLIC_KEY, "type-specific", "RSA");
    }
    ERR_clear_error();
    if (key->pkey == NULL) {
        bool encrypted = contains(data, len, "ENCRYPTED");

        free(data);
        if (encrypted) {
            return cli_fail(EXIT_KEY,
                            "key file '%s' is passphrase-protected; airlock needs an unencrypted "
                            "key (e.g. openssl pkey -in %s -out plain.pem)",
                            path, path);
        }
        return cli_fail(EXIT_KEY,
                        "key file '%s' holds no key airlock can read (expected a PEM or DER "
                        "private key, or a PUBLIC KEY)",
                        path);
    }
    free(data);
    key->type = classify(key->pkey, why, sizeof(why));
    if (key->type == AIRLOCK_KEY_NONE) {
        cli_key_free(key);
        return cli_fail(EXIT_KEY, "key file '%s': %s", path, why);
    }
    key->is_private = has_private(key->pkey);
    if (embed_der(key) != 0) {
        cli_key_free(key);
        return cli_fail(EXIT_KEY, "key file '%s': cannot encode its public key: %s", path,
                        ossl_reason());
    }
    return EXIT_OK_;
}

int cli_key_generate(int type, cli_key_t *key)
{
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *e = NULL;
    int ok = 0;

    memset(key, 0, sizeof(*key));
    switch (type) {
    case AIRLOCK_KEY_ECDSA_P256:
    case AIRLOCK_KEY_ECDSA_P384:
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_group_name(ctx, type == AIRLOCK_KEY_ECDSA_P256 ? "P-256" : "P-384") ==
                 1;
        break;
    case AIRLOCK_KEY_RSA_2048:
    case AIRLOCK_KEY_RSA_3072:
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        e = BN_new();
        ok = ctx != NULL && e != NULL && BN_set_word(e, 65537) == 1 &&
             EVP_PKEY_keygen_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, type == AIRLOCK_KEY_RSA_2048 ? 2048 : 3072) ==
                 1 &&
             EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) == 1;
        break;
    case AIRLOCK_KEY_ED25519:
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
        ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1;
        break;
    default:
        break;
    }
    ok = ok && EVP_PKEY_generate(ctx, &key->pkey) == 1;
    EVP_PKEY_CTX_free(ctx);
    BN_free(e);
    if (!ok) {
        cli_key_free(key);
        return cli_fail(EXIT_INTERNAL, "OpenSSL could not generate a %s key: %s",
                        airlock_key_type_name(type), ossl_reason());
    }
    key->type = type;
    key->is_private = true;
    if (embed_der(key) != 0) {
        cli_key_free(key);
        return cli_fail(EXIT_INTERNAL, "cannot encode the new public key: %s", ossl_reason());
    }
    return EXIT_OK_;
}

void cli_key_free(cli_key_t *key)
{
    EVP_PKEY_free(key->pkey);
    free(key->der);
    memset(key, 0, sizeof(*key));
}

int cli_key_hash_alg(int type)
{
    return airlock_key_default_hash(type);
}

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

int cli_digest(int alg, const void *data, size_t len, uint8_t *out)
{
    const EVP_MD *md = md_for(alg);
    unsigned int olen = 0;

    if (md == NULL || EVP_Digest(data, len, out, &olen, md, NULL) != 1) {
        return cli_fail(EXIT_INTERNAL, "hashing failed (algorithm 0x%x): %s", (unsigned)alg,
                        ossl_reason());
    }
    return EXIT_OK_;
}

int cli_key_sign(const cli_key_t *key, int hash_alg, const uint8_t *digest, size_t digest_len,
                 bool pad_sig, uint8_t **sig, size_t *sig_len)
{
    const EVP_MD *md = md_for(hash_alg);
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *mctx = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, padded;
    int ok = 0;

    if (!key->is_private) {
        return cli_fail(EXIT_KEY, "the key is a public key; signing needs the private key");
    }
    if (md == NULL) {
        return cli_fail(EXIT_INTERNAL, "no digest for hash algorithm 0x%x", (unsigned)hash_alg);
    }
    if (key->type == AIRLOCK_KEY_ED25519) {
        /* PureEdDSA: the image digest is the message. */
        mctx = EVP_MD_CTX_new();
        ok = mctx != NULL &&
             EVP_DigestSignInit_ex(mctx, NULL, NULL, NULL, NULL, key->pkey, NULL) == 1 &&
             EVP_DigestSign(mctx, NULL, &len, digest, digest_len) == 1 &&
             (buf = malloc(len)) != NULL &&
             EVP_DigestSign(mctx, buf, &len, digest, digest_len) == 1;
        EVP_MD_CTX_free(mctx);
    } else {
        /* ECDSA and RSA-PSS sign the digest as a pre-hashed message. */
        bool rsa = key->type == AIRLOCK_KEY_RSA_2048 || key->type == AIRLOCK_KEY_RSA_3072;

        pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
        ok = pctx != NULL && EVP_PKEY_sign_init(pctx) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pctx, md) == 1;
        if (ok && rsa) {
            ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1;
        }
        ok = ok && EVP_PKEY_sign(pctx, NULL, &len, digest, digest_len) == 1;
        /* Room for imgtool's zero padding of ECDSA signatures. */
        padded = len < 104 ? 104 : len;
        ok = ok && (buf = malloc(padded)) != NULL &&
             EVP_PKEY_sign(pctx, buf, &len, digest, digest_len) == 1;
        EVP_PKEY_CTX_free(pctx);
        if (ok && pad_sig &&
            (key->type == AIRLOCK_KEY_ECDSA_P256 || key->type == AIRLOCK_KEY_ECDSA_P384)) {
            /* imgtool's fixed lengths: 72 for P-256, 103 for P-384 (never truncates). */
            size_t want = key->type == AIRLOCK_KEY_ECDSA_P256 ? 72u : 103u;

            if (len < want) {
                memset(buf + len, 0, want - len);
                len = want;
            }
        }
    }
    if (!ok) {
        free(buf);
        return cli_fail(EXIT_INTERNAL, "OpenSSL could not sign with the %s key: %s",
                        airlock_key_type_name(key->type), ossl_reason());
    }
    *sig = buf;
    *sig_len = len;
    return EXIT_OK_;
}

/* Run a PEM writer into memory and hand back a NUL-terminated copy. */
static int bio_to_string(BIO *bio, char **out, size_t *len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);

    if (n <= 0 || (*out = malloc((size_t)n + 1)) == NULL) {
        return -1;
    }
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    return 0;
}

int cli_key_public_pem(const cli_key_t *key, char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = bio != NULL && PEM_write_bio_PUBKEY(bio, key->pkey) == 1 &&
             bio_to_string(bio, pem, len) == 0;

    BIO_free(bio);
    if (!ok) {
        return cli_fail(EXIT_INTERNAL, "cannot encode the public key as PEM: %s", ossl_reason());
    }
    return EXIT_OK_;
}

int cli_key_private_pem(const cli_key_t *key, char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    int ok;

    if (bio == NULL) {
        bio = BIO_new(BIO_s_mem());
    }
    ok = bio != NULL &&
         PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
         bio_to_string(bio, pem, len) == 0;
    BIO_free(bio);
    if (!ok) {
        return cli_fail(EXIT_INTERNAL, "cannot encode the private key as PKCS#8 PEM: %s",
                        ossl_reason());
    }
    return EXIT_OK_;
}

int cli_keyring_add(cli_keyring_t *r, const char *path)
{
    if (r->n == CLI_MAX_KEYS) {
        return cli_fail(EXIT_USAGE, "at most %d keys may be given with -k", CLI_MAX_KEYS);
    }
    int rc = cli_key_load(path, &r->keys[r->n]);
    if (rc) {
        return rc;
    }
    r->paths[r->n] = path;
    r->pub[r->n].type = r->keys[r->n].type;
    r->pub[r->n].der = r->keys[r->n].der;
    r->pub[r->n].der_len = r->keys[r->n].der_len;
    r->n++;
    return EXIT_OK_;
}

void cli_keyring_free(cli_keyring_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        cli_key_free(&r->keys[i]);
    }
    r->n = 0;
}
