/*
 * Test-only image builder: makes signed MCUboot-format images in memory
 * (header, payload, optional SEC_CNT, SHA-256, KEYHASH, ECDSA-P256
 * signature) so tests can stage any size and version without files.
 */
#ifndef AIRLOCK_IMGBUILD_H
#define AIRLOCK_IMGBUILD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "airlock/image.h"

/* A test key (ECDSA P-256 or Ed25519) and its embedded public form. */
typedef struct tu_key {
    EVP_PKEY *pkey;
    uint8_t der[160];
    size_t der_len;
    airlock_pubkey_t pub;
} tu_key_t;

/* Generate a fresh ECDSA P-256 key. Returns 0 or -1. */
int tu_key_new(tu_key_t *k);

/*
 * Load a private key PEM (ECDSA P-256 or Ed25519). Ed25519 signatures are
 * deterministic, so images built with it are identical run after run.
 * Returns 0 or -1.
 */
int tu_key_load(tu_key_t *k, const char *path);
void tu_key_free(tu_key_t *k);

typedef struct tu_image_spec {
    airlock_version_t version;
    uint32_t payload_len;   /* bytes after the header */
    uint16_t hdr_size;      /* >= 32 */
    uint32_t seed;          /* payload pattern */
    int with_sec_cnt;
    uint32_t sec_cnt;
    const tu_key_t *key;    /* NULL: hash only */
    uint32_t load_addr;     /* non-zero: a ram-load image (flag RAM_LOAD) */
} tu_image_spec_t;

/* Build an image; returns malloc'd bytes and its length, or NULL. */
uint8_t *tu_image_build(const tu_image_spec_t *spec, size_t *len);

/* Length of the image tu_image_build would make (no signing). */
size_t tu_image_len(const tu_image_spec_t *spec);

#endif
