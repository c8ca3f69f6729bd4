/*
 * Host-side helpers shared by the tests: whole-file loading, an in-memory
 * airlock_source_t, and PEM public keys in the form images embed.
 * Test code only; never linked into the library or the CLI.
 */
#ifndef AIRLOCK_TESTUTIL_H
#define AIRLOCK_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/image.h"

/* Read a whole file; returns malloc'd bytes (caller frees) or NULL. */
uint8_t *tu_load_file(const char *path, size_t *len);

/* A source over len bytes at data (data must outlive the source). */
struct tu_mem {
    const uint8_t *data;
    uint32_t size;
};
airlock_source_t tu_mem_source(struct tu_mem *m, const uint8_t *data, size_t len);

/*
 * Load a PEM key (public or private) and return its embedded DER form
 * (SPKI; PKCS#1 RSAPublicKey for RSA) and airlock key type.
 * Returns 0 or -1. *der is malloc'd.
 */
int tu_load_pubkey(const char *path, int *type, uint8_t **der, size_t *der_len);

#endif
