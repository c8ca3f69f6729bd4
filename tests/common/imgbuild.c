/*
 * Test-only image builder (see imgbuild.h). Uses OpenSSL directly; the
 * layout it writes is the one docs/image-format.md describes.
 */
#include "imgbuild.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define SIG_TLV_MAX (4 + 72)

int tu_key_new(tu_key_t *k)
{
    memset(k, 0, sizeof(*k));
    k->pkey = EVP_EC_gen("P-256");
    if (!k->pkey) {
        return -1;
    }
    uint8_t *p = k->der;
    int n = i2d_PUBKEY(k->pkey, &p);
    if (n <= 0 || (size_t)n > sizeof(k->der)) {
        EVP_PKEY_free(k->pkey);
        return -1;
    }
    k->der_len = (size_t)n;
    k->pub.type = AIRLOCK_KEY_ECDSA_P256;
    k->pub.der = k->der;
    k->pub.der_len = k->der_len;
    return 0;
}

int tu_key_load(tu_key_t *k, const char *path)
{
    memset(k, 0, sizeof(*k));
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    k->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k->pkey) {
        return -1;
    }
    if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
        k->pub.type = AIRLOCK_KEY_ED25519;
    } else if (EVP_PKEY_is_a(k->pkey, "EC") && EVP_PKEY_get_bits(k->pkey) == 256) {
        k->pub.type = AIRLOCK_KEY_ECDSA_P256;
    } else {
        tu_key_free(k);
        return -1;
    }
    uint8_t *p = k->der;
    int n = i2d_PUBKEY(k->pkey, &p);
    if (n <= 0 || (size_t)n > sizeof(k->der)) {
        tu_key_free(k);
        return -1;
    }
    k->der_len = (size_t)n;
    k->pub.der = k->der;
    k->pub.der_len = k->der_len;
    return 0;
}

void tu_key_free(tu_key_t *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)v);
    put16(p + 2, (uint16_t)(v >> 16));
}

static size_t body_len(const tu_image_spec_t *s)
{
    return (size_t)s->hdr_size + s->payload_len + (s->with_sec_cnt ? 12u : 0u);
}

size_t tu_image_len(const tu_image_spec_t *s)
{
    /* ECDSA DER length varies: report the maximum */
    return body_len(s) + 4 + 36 + (s->key ? 36 + SIG_TLV_MAX : 0);
}

uint8_t *tu_image_build(const tu_image_spec_t *s, size_t *len)
{
    size_t cap = tu_image_len(s);
    uint8_t *im = calloc(1, cap);
    if (!im || s->hdr_size < AIRLOCK_IMAGE_HEADER_SIZE) {
        free(im);
        return NULL;
    }
    airlock_image_header_t h = {0};
    h.magic = AIRLOCK_IMAGE_MAGIC;
    h.hdr_size = s->hdr_size;
    h.img_size = s->payload_len;
    h.protect_tlv_size = s->with_sec_cnt ? 12 : 0;
    h.version = s->version;
    h.load_addr = s->load_addr;
    h.flags = s->load_addr ? AIRLOCK_IMAGE_F_RAM_LOAD : 0;
    airlock_header_encode(&h, im);
    uint32_t x = s->seed * 2654435761u + 1u;
    for (uint32_t i = 0; i < s->payload_len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        im[s->hdr_size + i] = (uint8_t)x;
    }
    size_t pos = (size_t)s->hdr_size + s->payload_len;
    if (s->with_sec_cnt) {
        put16(im + pos, AIRLOCK_TLV_PROT_INFO_MAGIC);
        put16(im + pos + 2, 12);
        put16(im + pos + 4, AIRLOCK_TLV_SEC_CNT);
        put16(im + pos + 6, 4);
        put32(im + pos + 8, s->sec_cnt);
        pos += 12;
    }
    size_t hashed = pos;
    size_t info = pos;
    pos += 4;
    uint8_t digest[32];
    unsigned int dl = 0;
    if (EVP_Digest(im, hashed, digest, &dl, EVP_sha256(), NULL) != 1) {
        free(im);
        return NULL;
    }
    put16(im + pos, AIRLOCK_TLV_SHA256);
    put16(im + pos + 2, 32);
    memcpy(im + pos + 4, digest, 32);
    pos += 36;
    if (s->key) {
        uint8_t kh[32];
        EVP_Digest(s->key->der, s->key->der_len, kh, &dl, EVP_sha256(), NULL);
        put16(im + pos, AIRLOCK_TLV_KEYHASH);
        put16(im + pos + 2, 32);
        memcpy(im + pos + 4, kh, 32);
        pos += 36;
        uint8_t sig[80];
        size_t siglen = sizeof(sig);
        int ok;
        if (s->key->pub.type == AIRLOCK_KEY_ED25519) {
            /* pure Ed25519 over the digest bytes, as imgtool signs */
            EVP_MD_CTX *mc = EVP_MD_CTX_new();
            ok = mc && EVP_DigestSignInit(mc, NULL, NULL, NULL, s->key->pkey) == 1 &&
                 EVP_DigestSign(mc, sig, &siglen, digest, 32) == 1;
            EVP_MD_CTX_free(mc);
        } else {
            EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(s->key->pkey, NULL);
            ok = c && EVP_PKEY_sign_init(c) == 1 &&
                 EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
                 EVP_PKEY_sign(c, sig, &siglen, digest, 32) == 1;
            EVP_PKEY_CTX_free(c);
        }
        if (!ok) {
            free(im);
            return NULL;
        }
        put16(im + pos, airlock_key_sig_tlv(s->key->pub.type));
        put16(im + pos + 2, (uint16_t)siglen);
        memcpy(im + pos + 4, sig, siglen);
        pos += 4 + siglen;
    }
    put16(im + info, AIRLOCK_TLV_INFO_MAGIC);
    put16(im + info + 2, (uint16_t)(pos - info));
    *len = pos;
    return im;
}
