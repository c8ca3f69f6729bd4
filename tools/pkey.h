/*
 * Signing keys for the CLI over OpenSSL: load a PEM (private or public),
 * classify it as an airlock key type, produce the public key bytes imgtool
 * embeds and hashes, generate keys, and sign image digests.
 * Functions returning int print their own error and return an exit code.
 */
#ifndef AIRLOCK_TOOLS_PKEY_H
#define AIRLOCK_TOOLS_PKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "airlock/crypto.h"
#include "airlock/image.h"

typedef struct cli_key {
    EVP_PKEY *pkey;
    int type;        /* enum airlock_key_type, never AIRLOCK_KEY_NONE once loaded */
    bool is_private; /* the file held the private half */
    /*
     * Embedded public key bytes: DER SubjectPublicKeyInfo for ECDSA and
     * Ed25519, DER PKCS#1 RSAPublicKey for RSA (what imgtool embeds/hashes).
     */
    uint8_t *der;
    size_t der_len;
} cli_key_t;

/*
 * Key type from its CLI name ("ecdsa-p256", ... as airlock_key_type_name
 * spells them); AIRLOCK_KEY_NONE if unknown.
 */
int cli_key_type_from_name(const char *name);

/*
 * Load path (PEM or DER; private key, SubjectPublicKeyInfo or PKCS#1 RSA
 * public key). Encrypted keys are refused. Returns EXIT_OK_, EXIT_IO (cannot
 * read) or EXIT_KEY (cannot parse, unsupported algorithm/curve/size).
 */
int cli_key_load(const char *path, cli_key_t *key);

/* Generate a new key of type into *key (private). Returns EXIT_OK_ or EXIT_INTERNAL. */
int cli_key_generate(int type, cli_key_t *key);

/* Release everything a cli_key_t holds; safe on a zeroed struct. */
void cli_key_free(cli_key_t *key);

#define CLI_MAX_KEYS 16

/* Trusted keys given with -k, in the order given (zero it before use). */
typedef struct cli_keyring {
    cli_key_t keys[CLI_MAX_KEYS];
    const char *paths[CLI_MAX_KEYS];
    airlock_pubkey_t pub[CLI_MAX_KEYS]; /* what airlock_boot_cfg_t / verify take */
    size_t n;
} cli_keyring_t;

/* Load path (PEM or DER, public or private) into r. Returns EXIT_OK_ or an exit code. */
int cli_keyring_add(cli_keyring_t *r, const char *path);

/* Release every key of r. */
void cli_keyring_free(cli_keyring_t *r);

/* Hash algorithm for images signed by this key type (SHA-384 for P-384). */
int cli_key_hash_alg(int type);

/*
 * Hash len bytes with alg (AIRLOCK_HASH_*) into out (airlock_hash_len(alg)
 * bytes). Returns EXIT_OK_ or EXIT_INTERNAL.
 */
int cli_digest(int alg, const void *data, size_t len, uint8_t *out);

/*
 * Sign an image digest (computed with hash_alg) as the image format wants:
 * ECDSA: DER signature over the digest as pre-hash; RSA: PSS, MGF1-SHA256,
 * salt 32; Ed25519: pure Ed25519 over the digest bytes as the message.
 * pad_sig zero-pads ECDSA signatures to imgtool's fixed length (72 for P-256,
 * 103 for P-384). *sig is malloc'd. Returns EXIT_OK_, EXIT_KEY (public-only
 * key) or EXIT_INTERNAL.
 */
int cli_key_sign(const cli_key_t *key, int hash_alg, const uint8_t *digest, size_t digest_len,
                 bool pad_sig, uint8_t **sig, size_t *sig_len);

/*
 * PEM of the public key (SubjectPublicKeyInfo), malloc'd and NUL-terminated.
 * Returns EXIT_OK_ or EXIT_INTERNAL.
 */
int cli_key_public_pem(const cli_key_t *key, char **pem, size_t *len);

/* PKCS#8 PEM of the private key, unencrypted, malloc'd. EXIT_OK_ or EXIT_INTERNAL. */
int cli_key_private_pem(const cli_key_t *key, char **pem, size_t *len);

#endif
