/*
 * Host-side test helpers (see testutil.h). Uses stdio and OpenSSL freely:
 * this is test code, never part of core.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

uint8_t *tu_load_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static int mem_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    struct tu_mem *m = ctx;
    if ((uint64_t)off + len > m->size) {
        return -1;
    }
    memcpy(buf, m->data + off, len);
    return 0;
}

airlock_source_t tu_mem_source(struct tu_mem *m, const uint8_t *data, size_t len)
{
    m->data = data;
    m->size = (uint32_t)len;
    airlock_source_t s = {mem_read, m, (uint32_t)len};
    return s;
}

int tu_load_pubkey(const char *path, int *type, uint8_t **der, size_t *der_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    EVP_PKEY *pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (!pk) {
        rewind(f);
        pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    }
    fclose(f);
    if (!pk) {
        return -1;
    }
    int rc = -1;
    int bits = EVP_PKEY_get_bits(pk);
    *type = AIRLOCK_KEY_NONE;
    if (EVP_PKEY_is_a(pk, "EC")) {
        *type = bits == 256 ? AIRLOCK_KEY_ECDSA_P256 : bits == 384 ? AIRLOCK_KEY_ECDSA_P384 : 0;
    } else if (EVP_PKEY_is_a(pk, "RSA")) {
        *type = bits == 2048 ? AIRLOCK_KEY_RSA_2048 : bits == 3072 ? AIRLOCK_KEY_RSA_3072 : 0;
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        *type = AIRLOCK_KEY_ED25519;
    }
    unsigned char *out = NULL;
    int n = -1;
    if (*type == AIRLOCK_KEY_RSA_2048 || *type == AIRLOCK_KEY_RSA_3072) {
        n = i2d_PublicKey(pk, &out);
    } else if (*type != AIRLOCK_KEY_NONE) {
        n = i2d_PUBKEY(pk, &out);
    }
    if (n > 0) {
        *der = malloc((size_t)n);
        if (*der) {
            memcpy(*der, out, (size_t)n);
            *der_len = (size_t)n;
            rc = 0;
        }
    }
    OPENSSL_free(out);
    EVP_PKEY_free(pk);
    return rc;
}
