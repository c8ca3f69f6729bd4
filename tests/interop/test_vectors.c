/*
 * Interop with MCUboot's imgtool: every image in shared/vectors/imgtool is
 * parsed and verified exactly as its manifest entry says, through both the
 * OpenSSL and the mbedTLS backend. The manifest is the source of truth; no
 * expectation here is written per file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "../common/testutil.h"
#include "airlock/crypto_mbedtls.h"
#include "airlock/crypto_openssl.h"
#include "airlock/image.h"

static const char *vec_dir;
static json_t *manifest;

struct backend {
    const char *name;
    const airlock_crypto_t *crypto;
    int has_ed25519;
};

static char *vec_path(const char *file)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", vec_dir, file);
    return buf;
}

static uint32_t json_u32(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v)) {
        return (uint32_t)json_integer_value(v);
    }
    assert_true(json_is_string(v));
    return (uint32_t)strtoul(json_string_value(v), NULL, 0);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "Image digest: <hex>" -> bytes; returns length or 0. */
static size_t manifest_digest(json_t *v, uint8_t *out)
{
    const char *s = json_string_value(json_object_get(v, "imgtool_verify"));
    const char *p = s ? strstr(s, "Image digest: ") : NULL;
    if (!p) {
        return 0;
    }
    p += strlen("Image digest: ");
    size_t n = 0;
    while (hexval(p[0]) >= 0 && hexval(p[1]) >= 0 && n < AIRLOCK_HASH_MAX_LEN) {
        out[n++] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
        p += 2;
    }
    return n;
}

/*
 * The failure classes imgtool's messages correspond to. Messages we do not
 * know only require a failure.
 */
static int failure_matches(const char *msg, int rc)
{
    if (!msg) {
        return rc != 0;
    }
    if (strstr(msg, "invalid hash")) {
        return rc == AIRLOCK_ERR_HASH_MISMATCH;
    }
    if (strstr(msg, "No signature found")) {
        return rc == AIRLOCK_ERR_BAD_SIGNATURE || rc == AIRLOCK_ERR_UNKNOWN_KEY ||
               rc == AIRLOCK_ERR_NO_SIGNATURE;
    }
    if (strstr(msg, "Key type does not match")) {
        return rc == AIRLOCK_ERR_KEY_MISMATCH;
    }
    if (strstr(msg, "struct.error") || strstr(msg, "INVALID_TLV_INFO_MAGIC") ||
        strstr(msg, "INVALID_MAGIC")) {
        return rc == AIRLOCK_ERR_OUT_OF_BOUNDS || rc == AIRLOCK_ERR_BAD_TLV_INFO ||
               rc == AIRLOCK_ERR_BAD_TLV || rc == AIRLOCK_ERR_BAD_MAGIC ||
               rc == AIRLOCK_ERR_BAD_HDR_SIZE;
    }
    return rc != 0;
}

static void check_header(json_t *v, const airlock_image_t *img, size_t file_len)
{
    const airlock_image_header_t *h = &img->hdr;
    char ver[64];
    assert_int_equal(h->magic, json_u32(v, "magic"));
    assert_int_equal(h->load_addr, json_u32(v, "load_addr"));
    assert_int_equal(h->hdr_size, json_u32(v, "hdr_size"));
    assert_int_equal(h->protect_tlv_size, json_u32(v, "protect_tlv_size"));
    assert_int_equal(h->img_size, json_u32(v, "img_size"));
    assert_int_equal(h->flags, json_u32(v, "flags"));
    snprintf(ver, sizeof(ver), "%u.%u.%u+%u", h->version.major, h->version.minor,
             h->version.revision, (unsigned)h->version.build);
    assert_string_equal(ver, json_string_value(json_object_get(v, "version")));
    if (json_object_get(v, "file_size")) {
        assert_int_equal(file_len, json_u32(v, "file_size"));
    }
}

static void check_tlvs(json_t *v, const airlock_source_t *src, const airlock_image_t *img)
{
    json_t *list = json_object_get(v, "tlvs");
    airlock_tlv_iter_t it;
    airlock_tlv_t t;
    size_t i = 0;
    airlock_tlv_iter_init(&it, img);
    while (airlock_tlv_next(&it, src, &t, NULL) == 1) {
        json_t *e = json_array_get(list, i);
        assert_non_null(e);
        const char *area = json_string_value(json_object_get(e, "area"));
        assert_string_equal(area, t.prot ? "protected" : "unprotected");
        assert_int_equal(t.type, json_u32(e, "type"));
        assert_int_equal(t.len, json_u32(e, "len"));
        i++;
    }
    assert_int_equal(i, json_array_size(list));
}

/* The payload file's bytes must be the image body (imgtool never edits it). */
static void check_payload(json_t *v, const uint8_t *data, const airlock_image_t *img)
{
    const char *payload = json_string_value(json_object_get(v, "payload"));
    const char *cmd = json_string_value(json_object_get(v, "imgtool_command"));
    size_t plen;
    if (!payload || !cmd) {
        return;
    }
    uint8_t *p = tu_load_file(vec_path(payload), &plen);
    assert_non_null(p);
    uint32_t hs = img->hdr.hdr_size;
    if (strstr(cmd, "--pad-header")) {
        assert_int_equal(plen, img->hdr.img_size);
        assert_memory_equal(data + hs, p, plen);
    } else {
        assert_int_equal(plen, (size_t)hs + img->hdr.img_size);
        assert_memory_equal(data + hs, p + hs, img->hdr.img_size);
    }
    free(p);
}

/* All public keys in the vector folder: a key ring for rotation checks. */
struct ring {
    airlock_pubkey_t keys[16];
    uint8_t *der[16];
    size_t n;
};

static void load_ring(struct ring *r)
{
    static const char *names[] = {"key-ecdsa-p256.pub.pem", "key-ecdsa-p384.pub.pem",
                                  "key-rsa-2048.pub.pem", "key-rsa-3072.pub.pem",
                                  "key-ed25519.pub.pem"};
    r->n = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len;
        int type;
        if (tu_load_pubkey(vec_path(names[i]), &type, &r->der[r->n], &len) == 0) {
            r->keys[r->n].type = type;
            r->keys[r->n].der = r->der[r->n];
            r->keys[r->n].der_len = len;
            r->n++;
        }
    }
}

static void run_vectors(const struct backend *be)
{
    json_t *vectors = json_object_get(manifest, "vectors");
    size_t idx;
    json_t *v;
    struct ring ring;
    int checked = 0;
    load_ring(&ring);
    assert_true(ring.n >= 1);

    json_array_foreach(vectors, idx, v)
    {
        const char *file = json_string_value(json_object_get(v, "file"));
        const char *expect = json_string_value(json_object_get(v, "expect"));
        const char *vkey = json_string_value(json_object_get(v, "verify_key"));
        const char *msg = json_string_value(json_object_get(v, "imgtool_verify"));
        size_t len;
        uint8_t *data = tu_load_file(vec_path(file), &len);
        print_message("[%s] %s (key %s): expect %s\n", be->name, file, vkey ? vkey : "none",
                      expect);
        assert_non_null(data);
        assert_non_null(expect);

        struct tu_mem m;
        airlock_source_t src = tu_mem_source(&m, data, len);
        airlock_image_t img;
        airlock_err_detail_t det = {0};
        airlock_verify_result_t res;
        int rc = airlock_image_parse(&src, &img, &det);
        if (rc == 0 && json_object_get(v, "magic")) {
            check_header(v, &img, len);
            check_tlvs(v, &src, &img);
            check_payload(v, data, &img);
        }

        airlock_pubkey_t key = {0};
        uint8_t *der = NULL;
        size_t nkeys = 0;
        if (vkey) {
            size_t dlen;
            assert_int_equal(tu_load_pubkey(vec_path(vkey), &key.type, &der, &dlen), 0);
            key.der = der;
            key.der_len = dlen;
            nkeys = 1;
        }
        uint8_t buf[4096];
        airlock_verify_cfg_t cfg = {be->crypto, &key, nkeys, buf, sizeof(buf)};
        if (rc == 0) {
            rc = airlock_image_verify(&src, &img, &cfg, &res, &det);
        }
        print_message("    -> %s (%s at offset %u)\n", airlock_errname(rc),
                      det.field ? det.field : "-", (unsigned)det.offset);

        if (strcmp(expect, "ok") == 0) {
            if (!be->has_ed25519 && key.type == AIRLOCK_KEY_ED25519) {
                /* the backend must say so, after the hash has been checked */
                assert_int_equal(rc, AIRLOCK_ERR_UNSUPPORTED);
                assert_true(res.hash_ok);
            } else {
                assert_int_equal(rc, 0);
                if (nkeys) {
                    assert_int_equal(res.key_index, 0);
                    /* the same image against every key we have: KEYHASH picks it */
                    airlock_verify_cfg_t rcfg = {be->crypto, ring.keys, ring.n, buf,
                                                 sizeof(buf)};
                    assert_int_equal(airlock_image_verify(&src, &img, &rcfg, &res, &det), 0);
                    assert_int_equal(ring.keys[res.key_index].type, key.type);
                    assert_int_equal(ring.keys[res.key_index].der_len, key.der_len);
                    assert_memory_equal(ring.keys[res.key_index].der, key.der, key.der_len);
                }
            }
            uint8_t want[AIRLOCK_HASH_MAX_LEN];
            size_t wlen = manifest_digest(v, want);
            if (wlen) {
                assert_int_equal(res.digest_len, wlen);
                assert_memory_equal(res.digest, want, wlen);
            }
        } else {
            if (!failure_matches(msg, rc)) {
                print_message("    unexpected failure class %s for imgtool's \"%s\"\n",
                              airlock_errname(rc), msg);
                fail();
            }
        }
        checked++;
        free(der);
        free(data);
    }
    for (size_t i = 0; i < ring.n; i++) {
        free(ring.der[i]);
    }
    assert_true(checked >= 1);
}

static void test_vectors_openssl(void **state)
{
    (void)state;
    struct backend be = {"openssl", &airlock_crypto_openssl, 1};
    run_vectors(&be);
}

static void test_vectors_mbedtls(void **state)
{
    (void)state;
    struct backend be = {"mbedtls", &airlock_crypto_mbedtls, 0};
    run_vectors(&be);
}

int main(int argc, char **argv)
{
    json_error_t err;
    vec_dir = argc > 1 ? argv[1] : AIRLOCK_SHARED_DIR "/vectors/imgtool";
    manifest = json_load_file(vec_path("manifest.json"), 0, &err);
    if (!manifest) {
        fprintf(stderr, "cannot load %s: %s (line %d)\n", vec_path("manifest.json"), err.text,
                err.line);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_openssl),
        cmocka_unit_test(test_vectors_mbedtls),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(manifest);
    return rc;
}
