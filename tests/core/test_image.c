/*
 * Unit tests for core/image.c: header decode, TLV walk bounds checks, hash
 * and signature verification. Images are built in memory by the test so
 * every malformation can be placed at a known offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "airlock/crypto_openssl.h"
#include "airlock/image.h"

/* ---- in-memory source -------------------------------------------------- */

struct mem {
    uint8_t *data;
    uint32_t size;
    int fail_at; /* read covering this offset fails; -1 never */
};

static int mem_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    struct mem *m = ctx;
    if (m->fail_at >= 0 && (uint32_t)m->fail_at >= off && (uint32_t)m->fail_at < off + len) {
        return -1;
    }
    assert_true((uint64_t)off + len <= m->size); /* core must never over-read */
    memcpy(buf, m->data + off, len);
    return 0;
}

static airlock_source_t source(struct mem *m)
{
    airlock_source_t s = {mem_read, m, m->size};
    return s;
}

/* ---- image builder ----------------------------------------------------- */

struct img {
    uint8_t buf[8192];
    uint32_t len;
    uint32_t tlv_start; /* unprotected info header offset */
};

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

/* Header + payload of n bytes (pattern) + optional protected SEC_CNT. */
static void build_body(struct img *im, uint32_t n, int with_seccnt, uint32_t seccnt)
{
    airlock_image_header_t h = {0};
    memset(im, 0, sizeof(*im));
    h.magic = AIRLOCK_IMAGE_MAGIC;
    h.hdr_size = 32;
    h.img_size = n;
    h.version.major = 1;
    h.version.minor = 2;
    h.version.revision = 3;
    h.version.build = 4;
    h.protect_tlv_size = with_seccnt ? 12 : 0;
    airlock_header_encode(&h, im->buf);
    for (uint32_t i = 0; i < n; i++) {
        im->buf[32 + i] = (uint8_t)(i * 7 + 3);
    }
    im->len = 32 + n;
    if (with_seccnt) {
        uint8_t *p = im->buf + im->len;
        put16(p, AIRLOCK_TLV_PROT_INFO_MAGIC);
        put16(p + 2, 12);
        put16(p + 4, AIRLOCK_TLV_SEC_CNT);
        put16(p + 6, 4);
        put32(p + 8, seccnt);
        im->len += 12;
    }
    im->tlv_start = im->len;
    put16(im->buf + im->len, AIRLOCK_TLV_INFO_MAGIC);
    put16(im->buf + im->len + 2, 4);
    im->len += 4;
}

static void add_tlv(struct img *im, uint16_t type, const void *val, uint16_t len)
{
    uint8_t *p = im->buf + im->len;
    put16(p, type);
    put16(p + 2, len);
    memcpy(p + 4, val, len);
    im->len += 4u + len;
    put16(im->buf + im->tlv_start + 2, (uint16_t)(im->len - im->tlv_start));
}

static void sha(int alg, const uint8_t *d, size_t n, uint8_t *out)
{
    unsigned int olen = 0;
    const EVP_MD *md = alg == AIRLOCK_HASH_SHA384 ? EVP_sha384()
                       : alg == AIRLOCK_HASH_SHA512 ? EVP_sha512()
                                                    : EVP_sha256();
    assert_int_equal(EVP_Digest(d, n, out, &olen, md, NULL), 1);
}

static void add_hash(struct img *im, int alg)
{
    uint8_t d[64];
    sha(alg, im->buf, im->tlv_start, d);
    add_tlv(im, (uint16_t)alg, d, (uint16_t)airlock_hash_len(alg));
}

static int verify(struct img *im, const airlock_pubkey_t *keys, size_t nkeys,
                  airlock_verify_result_t *res, airlock_err_detail_t *det)
{
    struct mem m = {im->buf, im->len, -1};
    airlock_source_t s = source(&m);
    airlock_image_t img;
    int rc = airlock_image_parse(&s, &img, det);
    if (rc) {
        return rc;
    }
    airlock_verify_cfg_t cfg = {&airlock_crypto_openssl, keys, nkeys, NULL, 0};
    return airlock_image_verify(&s, &img, &cfg, res, det);
}

static int parse(struct img *im, uint32_t size, airlock_image_t *img, airlock_err_detail_t *det)
{
    struct mem m = {im->buf, size, -1};
    airlock_source_t s = source(&m);
    return airlock_image_parse(&s, img, det);
}

/* ---- keys -------------------------------------------------------------- */

struct key {
    EVP_PKEY *pkey;
    uint8_t der[1024];
    size_t der_len;
    airlock_pubkey_t pub;
};

static void make_key(struct key *k, int type)
{
    EVP_PKEY_CTX *c = NULL;
    memset(k, 0, sizeof(*k));
    switch (type) {
    case AIRLOCK_KEY_ECDSA_P256:
        k->pkey = EVP_EC_gen("P-256");
        break;
    case AIRLOCK_KEY_ECDSA_P384:
        k->pkey = EVP_EC_gen("P-384");
        break;
    case AIRLOCK_KEY_RSA_2048:
        k->pkey = EVP_RSA_gen(2048);
        break;
    case AIRLOCK_KEY_ED25519:
        c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        assert_non_null(c);
        assert_int_equal(EVP_PKEY_keygen_init(c), 1);
        assert_int_equal(EVP_PKEY_keygen(c, &k->pkey), 1);
        EVP_PKEY_CTX_free(c);
        break;
    default:
        fail();
    }
    assert_non_null(k->pkey);
    uint8_t *p = k->der;
    int n = type == AIRLOCK_KEY_RSA_2048 ? i2d_PublicKey(k->pkey, &p) : i2d_PUBKEY(k->pkey, &p);
    assert_true(n > 0 && (size_t)n <= sizeof(k->der));
    k->der_len = (size_t)n;
    k->pub.type = type;
    k->pub.der = k->der;
    k->pub.der_len = k->der_len;
}

static void free_key(struct key *k)
{
    EVP_PKEY_free(k->pkey);
}

/* Sign the image body the way imgtool does for this key type. */
static void add_signature(struct img *im, struct key *k, int alg, int keyhash)
{
    uint8_t digest[64];
    uint8_t sig[1024];
    size_t siglen = sizeof(sig);
    size_t dlen = airlock_hash_len(alg);
    sha(alg, im->buf, im->tlv_start, digest);
    if (keyhash) {
        uint8_t kh[64];
        sha(alg, k->der, k->der_len, kh);
        add_tlv(im, AIRLOCK_TLV_KEYHASH, kh, (uint16_t)dlen);
    }
    if (k->pub.type == AIRLOCK_KEY_ED25519) {
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(mc, NULL, NULL, NULL, k->pkey), 1);
        assert_int_equal(EVP_DigestSign(mc, sig, &siglen, digest, dlen), 1);
        EVP_MD_CTX_free(mc);
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pkey, NULL);
        assert_int_equal(EVP_PKEY_sign_init(c), 1);
        const EVP_MD *md = alg == AIRLOCK_HASH_SHA384 ? EVP_sha384() : EVP_sha256();
        assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, md), 1);
        if (k->pub.type == AIRLOCK_KEY_RSA_2048) {
            assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(c, 32), 1);
            assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()), 1);
        }
        assert_int_equal(EVP_PKEY_sign(c, sig, &siglen, digest, dlen), 1);
        EVP_PKEY_CTX_free(c);
    }
    add_tlv(im, airlock_key_sig_tlv(k->pub.type), sig, (uint16_t)siglen);
}

/* ---- header and structure ---------------------------------------------- */

static void test_header_roundtrip(void **state)
{
    (void)state;
    airlock_image_header_t a = {AIRLOCK_IMAGE_MAGIC, 0x20001000, 0x200, 12, 70001, 0x20,
                                {4, 5, 0x1234, 0xdeadbeef}, 0};
    airlock_image_header_t b;
    uint8_t raw[32];
    airlock_header_encode(&a, raw);
    /* little endian on the wire, field by field */
    assert_int_equal(raw[0], 0x3d);
    assert_int_equal(raw[3], 0x96);
    assert_int_equal(raw[8], 0x00);
    assert_int_equal(raw[9], 0x02);
    assert_int_equal(raw[22], 0x34);
    assert_int_equal(raw[23], 0x12);
    airlock_header_decode(raw, &b);
    assert_memory_equal(&a.version, &b.version, sizeof(a.version));
    assert_int_equal(b.load_addr, 0x20001000);
    assert_int_equal(b.hdr_size, 0x200);
    assert_int_equal(b.img_size, 70001);
    assert_int_equal(b.flags, 0x20);
}

static void test_version_cmp(void **state)
{
    (void)state;
    airlock_version_t v1 = {1, 2, 3, 4}, v2 = {1, 2, 3, 5}, v3 = {1, 3, 0, 0}, v4 = {2, 0, 0, 0};
    assert_true(airlock_version_cmp(&v1, &v2) < 0);
    assert_true(airlock_version_cmp(&v2, &v3) < 0);
    assert_true(airlock_version_cmp(&v3, &v4) < 0);
    assert_true(airlock_version_cmp(&v4, &v1) > 0);
    assert_int_equal(airlock_version_cmp(&v1, &v1), 0);
    airlock_version_t r1 = {1, 0, 300, 0}, r2 = {1, 0, 20, 0};
    assert_true(airlock_version_cmp(&r1, &r2) > 0); /* revision is numeric, u16 */
}

static void test_strerror_complete(void **state)
{
    (void)state;
    static const int codes[] = {
#define CODE_(name, value, msg) value,
        AIRLOCK_ERR_LIST(CODE_)
#undef CODE_
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_string_not_equal(airlock_strerror(codes[i]), "unknown error");
        assert_string_not_equal(airlock_errname(codes[i]), "UNKNOWN");
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(codes[i], codes[j]);
        }
    }
    assert_string_equal(airlock_errname(AIRLOCK_ERR_HASH_MISMATCH), "HASH_MISMATCH");
    assert_string_equal(airlock_strerror(-999), "unknown error");
}

static void test_parse_ok(void **state)
{
    (void)state;
    struct img im;
    airlock_image_t img;
    build_body(&im, 100, 1, 7);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    assert_int_equal(parse(&im, im.len, &img, NULL), 0);
    assert_int_equal(img.hdr.img_size, 100);
    assert_int_equal(img.prot_off, 132);
    assert_int_equal(img.prot_len, 12);
    assert_int_equal(img.tlv_off, 144);
    assert_int_equal(img.tlv_len, 40);
    assert_int_equal(img.end, im.len);
    assert_int_equal(img.tlv_count, 2);

    /* the iterator yields protected first, with value offsets */
    struct mem m = {im.buf, im.len, -1};
    airlock_source_t s = source(&m);
    airlock_tlv_iter_t it;
    airlock_tlv_t t;
    airlock_tlv_iter_init(&it, &img);
    assert_int_equal(airlock_tlv_next(&it, &s, &t, NULL), 1);
    assert_int_equal(t.type, AIRLOCK_TLV_SEC_CNT);
    assert_true(t.prot);
    assert_int_equal(t.off, 132 + 8);
    assert_int_equal(airlock_tlv_next(&it, &s, &t, NULL), 1);
    assert_int_equal(t.type, AIRLOCK_TLV_SHA256);
    assert_false(t.prot);
    assert_int_equal(t.len, 32);
    assert_int_equal(airlock_tlv_next(&it, &s, &t, NULL), 0);
}

/* Every truncation of a valid image is rejected with a bounds error. */
static void test_parse_every_truncation(void **state)
{
    (void)state;
    struct img im;
    airlock_image_t img;
    airlock_err_detail_t det;
    build_body(&im, 50, 1, 1);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    for (uint32_t n = 0; n < im.len; n++) {
        memset(&det, 0, sizeof(det));
        int rc = parse(&im, n, &img, &det);
        assert_true(rc == AIRLOCK_ERR_OUT_OF_BOUNDS);
        assert_non_null(det.field);
    }
    assert_int_equal(parse(&im, 10, &img, &det), AIRLOCK_ERR_OUT_OF_BOUNDS);
    assert_string_equal(det.field, "header");
    /* cut inside the unprotected info header */
    assert_int_equal(parse(&im, 32 + 50 + 12 + 3, &img, &det), AIRLOCK_ERR_OUT_OF_BOUNDS);
    assert_string_equal(det.field, "tlv_info");
    assert_int_equal(det.offset, 94);
    /* cut inside the hash TLV: the info total points past the end */
    assert_int_equal(parse(&im, im.len - 1, &img, &det), AIRLOCK_ERR_OUT_OF_BOUNDS);
    assert_string_equal(det.field, "tlv_info.total");
    assert_int_equal(det.offset, 96);
}

static void test_parse_bad_header(void **state)
{
    (void)state;
    struct img im;
    airlock_image_t img;
    airlock_err_detail_t det;

    build_body(&im, 64, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    im.buf[0] ^= 1;
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_BAD_MAGIC);
    assert_string_equal(det.field, "header.magic");
    assert_int_equal(det.expected, AIRLOCK_IMAGE_MAGIC);
    assert_int_equal(det.found, AIRLOCK_IMAGE_MAGIC ^ 1);

    build_body(&im, 64, 0, 0);
    put16(im.buf + 8, 31);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_BAD_HDR_SIZE);
    assert_int_equal(det.offset, 8);
    assert_int_equal(det.found, 31);

    build_body(&im, 64, 0, 0);
    put16(im.buf + 8, 0xfff0);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_OUT_OF_BOUNDS);
    assert_string_equal(det.field, "header.hdr_size");

    /* img_size near 4 GiB must not wrap around */
    build_body(&im, 64, 0, 0);
    put32(im.buf + 12, 0xffffffe0u);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_OUT_OF_BOUNDS);
    assert_string_equal(det.field, "header.img_size");
    assert_int_equal(det.offset, 12);
    assert_int_equal(det.found, 0xffffffe0u);
}

static void test_parse_bad_tlv_areas(void **state)
{
    (void)state;
    struct img im;
    airlock_image_t img;
    airlock_err_detail_t det;

    /* wrong unprotected info magic */
    build_body(&im, 20, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    put16(im.buf + im.tlv_start, 0x1234);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_BAD_TLV_INFO);
    assert_string_equal(det.field, "tlv_info.magic");
    assert_int_equal(det.offset, im.tlv_start);
    assert_int_equal(det.found, 0x1234);

    /* info total smaller than the info header */
    build_body(&im, 20, 0, 0);
    put16(im.buf + im.tlv_start + 2, 3);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_BAD_TLV_INFO);
    assert_string_equal(det.field, "tlv_info.total");

    /* TLV length runs past its area */
    build_body(&im, 20, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    put16(im.buf + im.tlv_start + 4 + 2, 33);
    assert_int_equal(parse(&im, im.len + 100, &img, &det), AIRLOCK_ERR_BAD_TLV);
    assert_string_equal(det.field, "tlv.len");
    assert_int_equal(det.offset, im.tlv_start + 6);
    assert_int_equal(det.expected, 32);
    assert_int_equal(det.found, 33);
    assert_int_equal(det.tlv_type, AIRLOCK_TLV_SHA256);

    /* area total leaves 2 stray bytes: a TLV header cannot fit */
    build_body(&im, 20, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    put16(im.buf + im.tlv_start + 2, (uint16_t)(im.len - im.tlv_start + 2));
    assert_int_equal(parse(&im, im.len + 2, &img, &det), AIRLOCK_ERR_BAD_TLV);
    assert_string_equal(det.field, "tlv.header");

    /* protect_tlv_size disagrees with the protected info total */
    build_body(&im, 20, 1, 5);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    put16(im.buf + 10, 16);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_BAD_TLV_INFO);
    assert_string_equal(det.field, "protected_tlv_info.total");
    assert_int_equal(det.expected, 16);
    assert_int_equal(det.found, 12);

    /* protected area present but not declared in the header */
    build_body(&im, 20, 1, 5);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    put16(im.buf + 10, 0);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_BAD_TLV_INFO);
    assert_string_equal(det.field, "header.protect_tlv_size");

    /* declared protected area has the wrong magic */
    build_body(&im, 20, 1, 5);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    put16(im.buf + 52, AIRLOCK_TLV_INFO_MAGIC);
    assert_int_equal(parse(&im, im.len, &img, &det), AIRLOCK_ERR_BAD_TLV_INFO);
    assert_string_equal(det.field, "protected_tlv_info.magic");
    assert_int_equal(det.offset, 52);
}

static void test_read_error(void **state)
{
    (void)state;
    struct img im;
    airlock_image_t img;
    airlock_err_detail_t det;
    airlock_verify_result_t res;
    build_body(&im, 300, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);

    struct mem m = {im.buf, im.len, 2};
    airlock_source_t s = source(&m);
    assert_int_equal(airlock_image_parse(&s, &img, &det), AIRLOCK_ERR_IO);

    /* parse fine, then the payload read fails while hashing */
    m.fail_at = -1;
    assert_int_equal(airlock_image_parse(&s, &img, &det), 0);
    m.fail_at = 200;
    airlock_verify_cfg_t cfg = {&airlock_crypto_openssl, NULL, 0, NULL, 0};
    assert_int_equal(airlock_image_verify(&s, &img, &cfg, &res, &det), AIRLOCK_ERR_IO);
    assert_false(res.hash_ok);
}

/* ---- hash verification ------------------------------------------------- */

static void test_hash_only(void **state)
{
    (void)state;
    static const int algs[] = {AIRLOCK_HASH_SHA256, AIRLOCK_HASH_SHA384, AIRLOCK_HASH_SHA512};
    for (size_t i = 0; i < 3; i++) {
        struct img im;
        airlock_verify_result_t res;
        airlock_err_detail_t det;
        uint8_t d[64];
        build_body(&im, 1000, 1, 0x01020003);
        add_hash(&im, algs[i]);
        assert_int_equal(verify(&im, NULL, 0, &res, &det), 0);
        assert_true(res.hash_ok);
        assert_int_equal(res.hash_alg, algs[i]);
        sha(algs[i], im.buf, im.tlv_start, d);
        assert_memory_equal(res.digest, d, airlock_hash_len(algs[i]));
        assert_true(res.has_sec_cnt);
        assert_int_equal(res.sec_cnt, 0x01020003);
        assert_int_equal(res.key_index, -1);
    }
}

/* Flipping any single byte hashed (header, payload, protected TLVs) fails. */
static void test_hash_covers_everything(void **state)
{
    (void)state;
    struct img im;
    airlock_verify_result_t res;
    airlock_err_detail_t det;
    build_body(&im, 40, 1, 9);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    for (uint32_t off = 0; off < im.tlv_start; off++) {
        struct img bad = im;
        bad.buf[off] ^= 0x10;
        int rc = verify(&bad, NULL, 0, &res, &det);
        assert_true(rc != 0);
        if (rc == AIRLOCK_ERR_HASH_MISMATCH) {
            assert_string_equal(det.field, "hash");
            assert_int_equal(det.tlv_type, AIRLOCK_TLV_SHA256);
            assert_int_equal(det.offset, im.tlv_start + 4);
        }
    }
    /* payload bytes specifically give HASH_MISMATCH */
    struct img bad = im;
    bad.buf[50] ^= 1;
    assert_int_equal(verify(&bad, NULL, 0, &res, &det), AIRLOCK_ERR_HASH_MISMATCH);
    /* and so does the protected SEC_CNT value */
    bad = im;
    bad.buf[im.tlv_start - 1] ^= 1;
    assert_int_equal(verify(&bad, NULL, 0, &res, &det), AIRLOCK_ERR_HASH_MISMATCH);
}

static void test_hash_tlv_rules(void **state)
{
    (void)state;
    struct img im;
    airlock_verify_result_t res;
    airlock_err_detail_t det;
    uint8_t junk[40] = {1, 2, 3};

    build_body(&im, 40, 0, 0);
    assert_int_equal(verify(&im, NULL, 0, &res, &det), AIRLOCK_ERR_NO_HASH);

    build_body(&im, 40, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    assert_int_equal(verify(&im, NULL, 0, &res, &det), AIRLOCK_ERR_DUP_TLV);

    build_body(&im, 40, 0, 0);
    add_tlv(&im, AIRLOCK_TLV_SHA256, junk, 31);
    assert_int_equal(verify(&im, NULL, 0, &res, &det), AIRLOCK_ERR_BAD_TLV);
    assert_string_equal(det.field, "hash.len");
    assert_int_equal(det.expected, 32);
    assert_int_equal(det.found, 31);

    /* unknown unprotected TLVs are skipped */
    build_body(&im, 40, 0, 0);
    add_tlv(&im, 0x7f, junk, 40);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_tlv(&im, 0x99, junk, 0);
    assert_int_equal(verify(&im, NULL, 0, &res, &det), 0);
}

static void test_sec_cnt_rules(void **state)
{
    (void)state;
    struct img im;
    airlock_verify_result_t res;
    airlock_err_detail_t det;
    uint8_t v[4] = {1, 0, 0, 0};

    /* a SEC_CNT outside the protected area is not authenticated: refuse */
    build_body(&im, 40, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_tlv(&im, AIRLOCK_TLV_SEC_CNT, v, 4);
    assert_int_equal(verify(&im, NULL, 0, &res, &det), AIRLOCK_ERR_BAD_SEC_CNT);

    /* wrong length inside the protected area */
    build_body(&im, 40, 1, 5);
    put16(im.buf + 32 + 40 + 6, 3);
    put16(im.buf + 32 + 40 + 2, 11);
    put16(im.buf + 10, 11);
    /* rebuild the unprotected area one byte earlier */
    im.tlv_start = 32 + 40 + 11;
    im.len = im.tlv_start;
    put16(im.buf + im.len, AIRLOCK_TLV_INFO_MAGIC);
    put16(im.buf + im.len + 2, 4);
    im.len += 4;
    add_hash(&im, AIRLOCK_HASH_SHA256);
    assert_int_equal(verify(&im, NULL, 0, &res, &det), AIRLOCK_ERR_BAD_SEC_CNT);
    assert_int_equal(det.expected, 4);
    assert_int_equal(det.found, 3);
}

/* ---- signatures -------------------------------------------------------- */

static void test_signed_ok_each_type(void **state)
{
    (void)state;
    static const int types[] = {AIRLOCK_KEY_ECDSA_P256, AIRLOCK_KEY_ECDSA_P384,
                                AIRLOCK_KEY_RSA_2048, AIRLOCK_KEY_ED25519};
    for (size_t i = 0; i < 4; i++) {
        struct key k;
        struct img im;
        airlock_verify_result_t res;
        airlock_err_detail_t det;
        int alg = airlock_key_default_hash(types[i]);
        make_key(&k, types[i]);
        build_body(&im, 500, 1, 3);
        add_hash(&im, alg);
        add_signature(&im, &k, alg, 1);
        assert_int_equal(verify(&im, &k.pub, 1, &res, &det), 0);
        assert_int_equal(res.key_index, 0);
        assert_int_equal(res.sig_type, airlock_key_sig_tlv(types[i]));
        assert_int_not_equal(res.keyhash_off, 0);

        /* a flipped signature byte fails */
        struct img bad = im;
        bad.buf[bad.len - 5] ^= 0x01;
        assert_int_equal(verify(&bad, &k.pub, 1, &res, &det), AIRLOCK_ERR_BAD_SIGNATURE);
        /* hash-only check of a signed image still passes */
        assert_int_equal(verify(&im, NULL, 0, &res, &det), 0);
        free_key(&k);
    }
}

static void test_key_selection(void **state)
{
    (void)state;
    struct key a, b, c;
    struct img im;
    airlock_verify_result_t res;
    airlock_err_detail_t det;
    make_key(&a, AIRLOCK_KEY_ECDSA_P256);
    make_key(&b, AIRLOCK_KEY_ECDSA_P256);
    make_key(&c, AIRLOCK_KEY_ECDSA_P384);

    build_body(&im, 200, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_signature(&im, &b, AIRLOCK_HASH_SHA256, 1);

    /* rotation: several trusted keys, KEYHASH picks b */
    airlock_pubkey_t ring[3] = {c.pub, a.pub, b.pub};
    assert_int_equal(verify(&im, ring, 3, &res, &det), 0);
    assert_int_equal(res.key_index, 2);

    /* signed by b, only a trusted: unknown key, pointing at KEYHASH */
    assert_int_equal(verify(&im, &a.pub, 1, &res, &det), AIRLOCK_ERR_UNKNOWN_KEY);
    assert_int_equal(det.tlv_type, AIRLOCK_TLV_KEYHASH);
    assert_int_equal(det.offset, im.tlv_start + 4 + 36 + 4);
    assert_true(res.hash_ok);

    /* only a P-384 key trusted: the image's SHA-256 cannot match it */
    assert_int_equal(verify(&im, &c.pub, 1, &res, &det), AIRLOCK_ERR_KEY_MISMATCH);

    /* no KEYHASH: every trusted key of the right type is tried */
    build_body(&im, 200, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_signature(&im, &b, AIRLOCK_HASH_SHA256, 0);
    assert_int_equal(verify(&im, ring, 3, &res, &det), 0);
    assert_int_equal(res.key_index, 2);
    assert_int_equal(verify(&im, &a.pub, 1, &res, &det), AIRLOCK_ERR_BAD_SIGNATURE);

    /* PUBKEY TLV selects by full key bytes */
    build_body(&im, 200, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_tlv(&im, AIRLOCK_TLV_PUBKEY, b.der, (uint16_t)b.der_len);
    add_signature(&im, &b, AIRLOCK_HASH_SHA256, 0);
    assert_int_equal(verify(&im, ring, 3, &res, &det), 0);
    assert_int_equal(res.key_index, 2);
    assert_int_equal(verify(&im, &a.pub, 1, &res, &det), AIRLOCK_ERR_UNKNOWN_KEY);

    /* keys given but image only hashed */
    build_body(&im, 200, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    assert_int_equal(verify(&im, &a.pub, 1, &res, &det), AIRLOCK_ERR_NO_SIGNATURE);

    /* two signatures: the second (by a trusted key) is enough */
    build_body(&im, 200, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_signature(&im, &a, AIRLOCK_HASH_SHA256, 1);
    add_signature(&im, &b, AIRLOCK_HASH_SHA256, 1);
    assert_int_equal(verify(&im, &b.pub, 1, &res, &det), 0);

    /* KEYHASH of wrong length */
    build_body(&im, 200, 0, 0);
    add_hash(&im, AIRLOCK_HASH_SHA256);
    add_tlv(&im, AIRLOCK_TLV_KEYHASH, a.der, 20);
    add_signature(&im, &a, AIRLOCK_HASH_SHA256, 0);
    assert_int_equal(verify(&im, &a.pub, 1, &res, &det), AIRLOCK_ERR_BAD_TLV);
    assert_string_equal(det.field, "KEYHASH.len");

    free_key(&a);
    free_key(&b);
    free_key(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_strerror_complete),
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_every_truncation),
        cmocka_unit_test(test_parse_bad_header),
        cmocka_unit_test(test_parse_bad_tlv_areas),
        cmocka_unit_test(test_read_error),
        cmocka_unit_test(test_hash_only),
        cmocka_unit_test(test_hash_covers_everything),
        cmocka_unit_test(test_hash_tlv_rules),
        cmocka_unit_test(test_sec_cnt_rules),
        cmocka_unit_test(test_signed_ok_each_type),
        cmocka_unit_test(test_key_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
