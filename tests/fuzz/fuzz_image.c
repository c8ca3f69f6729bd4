/*
 * libFuzzer target for everything core does with untrusted image bytes:
 * header + TLV parse, TLV iteration, hash-only and keyed verification through
 * both crypto backends (which must agree), and the slot trailer reader.
 * Never tolerates a read outside the source: the read callback aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/testutil.h"
#include "airlock/crypto_mbedtls.h"
#include "airlock/crypto_openssl.h"
#include "airlock/image.h"
#include "airlock/trailer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input layout. Every input is run twice:
 *   1. as an image: a source over exactly the input bytes;
 *   2. as a slot: byte 0 is a selector, bytes 1.. are the start of a slot
 *      whose size the selector picks (always larger than what is left), the
 *      rest of the slot reading as erased 0xff, as flash does after an
 *      install. The padding is virtual, so a 16 MiB slot costs nothing.
 * scripts/fuzz.sh seeds both forms (plain vectors, and vectors prefixed with
 * a selector byte).
 */

#define NKEYS_MAX 8
static const char *const key_files[] = {
    "key-ecdsa-p256.pub.pem", "key-ecdsa-p384.pub.pem", "key-rsa-2048.pub.pem",
    "key-rsa-3072.pub.pem",   "key-ed25519.pub.pem",
};
static airlock_pubkey_t keys[NKEYS_MAX];
static size_t nkeys;

/* Streaming buffer for verify: small and odd-sized to exercise chunking. */
static uint8_t stream_buf[1000];

struct slot_view {
    const uint8_t *data; /* real bytes */
    uint32_t len;        /* how many real bytes */
    uint32_t size;       /* slot size; [len, size) reads as fill */
    uint8_t fill;
};

static void die(const char *what, uint32_t off, uint32_t len, uint32_t size)
{
    fprintf(stderr, "fuzz_image: %s (off %u len %u size %u)\n", what, off, len, size);
    abort();
}

/* The one way core reaches the bytes: any read past the source is a bug. */
static int view_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    const struct slot_view *v = ctx;
    if ((uint64_t)off + len > v->size) {
        die("core read outside [0, size)", off, len, v->size);
    }
    uint8_t *out = buf;
    uint32_t real = 0;
    if (off < v->len) {
        real = v->len - off < len ? v->len - off : len;
        memcpy(out, v->data + off, real);
    }
    memset(out + real, v->fill, len - real);
    return 0;
}

static const char *vectors_dir(void)
{
    const char *env = getenv("AIRLOCK_VECTORS");
    if (env && *env) {
        return env;
    }
#ifdef AIRLOCK_SHARED_DIR
    return AIRLOCK_SHARED_DIR "/vectors/imgtool";
#else
    return NULL;
#endif
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = vectors_dir();
    if (!dir) {
        fprintf(stderr, "fuzz_image: set AIRLOCK_VECTORS to the imgtool vectors folder\n");
        exit(2);
    }
    for (size_t i = 0; i < sizeof(key_files) / sizeof(key_files[0]); i++) {
        char path[4096];
        uint8_t *der = NULL;
        size_t der_len = 0;
        int type = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, key_files[i]);
        if (tu_load_pubkey(path, &type, &der, &der_len) != 0 || type == AIRLOCK_KEY_NONE) {
            fprintf(stderr, "fuzz_image: cannot load trusted key %s\n", path);
            exit(2);
        }
        keys[nkeys].type = type;
        keys[nkeys].der = der; /* kept for the life of the process */
        keys[nkeys].der_len = der_len;
        nkeys++;
    }
    return 0;
}

/* Everything parse promised must hold, and iteration must agree with it. */
static void check_layout(const airlock_source_t *src, const airlock_image_t *img)
{
    const airlock_image_header_t *h = &img->hdr;
    if (img->end > src->size || img->tlv_off + img->tlv_len != img->end ||
        img->prot_off + img->prot_len != img->tlv_off ||
        (uint64_t)h->hdr_size + h->img_size != img->prot_off ||
        img->prot_len != h->protect_tlv_size || img->tlv_len < AIRLOCK_TLV_INFO_SIZE) {
        die("parse accepted an inconsistent layout", img->end, img->tlv_len, src->size);
    }
    airlock_tlv_iter_t it;
    airlock_tlv_t tlv;
    airlock_err_detail_t det;
    unsigned n = 0;
    int rc;
    airlock_tlv_iter_init(&it, img);
    while ((rc = airlock_tlv_next(&it, src, &tlv, &det)) == 1) {
        uint32_t lo = tlv.prot ? img->prot_off : img->tlv_off;
        uint32_t hi = tlv.prot ? img->tlv_off : img->end;
        if (tlv.off < lo + AIRLOCK_TLV_INFO_SIZE + AIRLOCK_TLV_HDR_SIZE ||
            (uint64_t)tlv.off + tlv.len > hi) {
            die("TLV outside its area", tlv.off, tlv.len, src->size);
        }
        (void)airlock_tlv_name(tlv.type);
        if (++n > img->tlv_count) {
            die("iterator yields more TLVs than parse counted", tlv.off, n, img->tlv_count);
        }
    }
    if (rc != 0 || n != img->tlv_count) {
        die("iterator disagrees with parse on a static image", (uint32_t)-rc, n,
            img->tlv_count);
    }
}

static bool has_tlv(const airlock_source_t *src, const airlock_image_t *img, uint16_t type)
{
    airlock_tlv_iter_t it;
    airlock_tlv_t tlv;
    airlock_tlv_iter_init(&it, img);
    while (airlock_tlv_next(&it, src, &tlv, NULL) == 1) {
        if (tlv.type == type) {
            return true;
        }
    }
    return false;
}

static int verify_with(const airlock_source_t *src, const airlock_image_t *img,
                       const airlock_crypto_t *crypto, size_t nk, airlock_verify_result_t *res)
{
    airlock_verify_cfg_t cfg = {crypto, nk ? keys : NULL, nk, stream_buf, sizeof(stream_buf)};
    airlock_err_detail_t det;
    memset(&det, 0, sizeof(det));
    int rc = airlock_image_verify(src, img, &cfg, res, &det);
    if (rc > 0) {
        die("verify returned a positive value", (uint32_t)rc, 0, src->size);
    }
    if (rc == 0 && (!res->hash_ok || (nk && (res->key_index < 0 || (size_t)res->key_index >= nk)))) {
        die("verify passed without a hash or key", 0, 0, src->size);
    }
    return rc;
}

/*
 * Both backends promise the same answers (crypto_mbedtls.h); the one
 * documented exception that fuzzed images can reach is Ed25519.
 */
static void verify_both(const airlock_source_t *src, const airlock_image_t *img, size_t nk)
{
    airlock_verify_result_t a, b;
    int ra = verify_with(src, img, &airlock_crypto_openssl, nk, &a);
    int rb = verify_with(src, img, &airlock_crypto_mbedtls, nk, &b);
    if (nk && has_tlv(src, img, AIRLOCK_TLV_ED25519)) {
        return;
    }
    if (ra != rb) {
        fprintf(stderr, "fuzz_image: backends disagree (keys %zu): openssl %s, mbedtls %s\n", nk,
                airlock_errname(ra), airlock_errname(rb));
        abort();
    }
    if (a.hash_ok != b.hash_ok || a.digest_len != b.digest_len ||
        memcmp(a.digest, b.digest, a.digest_len) != 0 || a.key_index != b.key_index) {
        die("backends computed different results", 0, 0, src->size);
    }
}

static void run_image(const airlock_source_t *src)
{
    airlock_image_t img;
    airlock_err_detail_t det;
    memset(&det, 0, sizeof(det));
    int rc = airlock_image_parse(src, &img, &det);
    if (rc != 0) {
        if (rc > 0 || det.field == NULL) {
            die("parse failed without naming a field", (uint32_t)rc, 0, src->size);
        }
        return;
    }
    check_layout(src, &img);
    verify_both(src, &img, 0);
    verify_both(src, &img, nkeys);
}

static void run_trailer(const airlock_source_t *src, uint8_t erased)
{
    static const uint32_t aligns[] = {0, 8, 16, 32};
    for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
        airlock_trailer_t t;
        int rc = airlock_trailer_read(src, aligns[i], erased, &t);
        if (rc == 0 && (t.max_align != 8 && t.max_align != 16 && t.max_align != 32)) {
            die("trailer read with an invalid alignment", t.max_align, 0, src->size);
        }
        if (rc != 0 && rc != AIRLOCK_ERR_INVAL) {
            die("trailer read failed other than INVAL", (uint32_t)-rc, 0, src->size);
        }
    }
}

/* Slot size for the selector: always larger than the real bytes. */
static uint32_t slot_size(uint8_t sel, uint32_t len)
{
    static const uint32_t unit[4] = {1, 16, 512, 4096};
    return len + ((uint32_t)(sel >> 2) + 1u) * unit[sel & 3u];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > UINT32_MAX / 2) {
        return -1;
    }
    /* Image mode: exactly the input. */
    struct slot_view raw = {data, (uint32_t)size, (uint32_t)size, 0xff};
    airlock_source_t src = {view_read, &raw, raw.size};
    run_image(&src);
    run_trailer(&src, 0xff);
    run_trailer(&src, 0x00);

    /* Slot mode: selector byte, then the slot's first bytes, then erased. */
    if (size >= 1) {
        struct slot_view slot = {data + 1, (uint32_t)size - 1, 0, 0xff};
        slot.size = slot_size(data[0], slot.len);
        airlock_source_t ssrc = {view_read, &slot, slot.size};
        run_image(&ssrc);
        run_trailer(&ssrc, 0xff);
    }
    return 0;
}
