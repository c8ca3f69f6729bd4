/*
 * Image format: header decode, TLV walk, streaming hash, signature check.
 * Invariant: no byte is read from the source unless its offset and length
 * were first checked against src->size (all arithmetic in 64 bits), and a
 * TLV area is accepted only if its entries fill it exactly.
 * Freestanding: no allocation, no I/O except through src->read.
 */
#include "airlock/image.h"

#include "bytes.h"

#include <string.h>

/* Largest signature TLV accepted (RSA-3072 = 384 bytes, padded DER ECDSA). */
#define SIG_MAX 512u

/*
 * Keep the big stack users (hash state, signature buffer) in separate frames
 * so the deepest path holds only one of them: bootloader stacks are small.
 */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif
/* Stack buffer used for streaming when the caller gives none. */
#define STREAM_CHUNK 128u

static int fail(airlock_err_detail_t *det, int err, const char *field, uint32_t offset)
{
    if (det) {
        det->field = field;
        det->offset = offset;
        det->has_values = 0;
        det->tlv_type = 0;
    }
    return err;
}

static int fail_values(airlock_err_detail_t *det, int err, const char *field, uint32_t offset,
                       uint32_t expected, uint32_t found)
{
    fail(det, err, field, offset);
    if (det) {
        det->expected = expected;
        det->found = found;
        det->has_values = 1;
    }
    return err;
}

static int fail_tlv(airlock_err_detail_t *det, int err, const char *field, const airlock_tlv_t *tlv)
{
    fail(det, err, field, tlv->off - AIRLOCK_TLV_HDR_SIZE);
    if (det) {
        det->tlv_type = tlv->type;
    }
    return err;
}

/* Read [off, off+len) after checking it lies inside the source. */
static int read_at(const airlock_source_t *src, uint32_t off, void *buf, uint32_t len,
                   airlock_err_detail_t *det, const char *field)
{
    if ((uint64_t)off + len > src->size) {
        return fail_values(det, AIRLOCK_ERR_OUT_OF_BOUNDS, field, off, src->size,
                           (uint32_t)((uint64_t)off + len > UINT32_MAX ? UINT32_MAX : off + len));
    }
    if (len == 0) {
        return 0;
    }
    if (src->read(src->ctx, off, buf, len) != 0) {
        return fail(det, AIRLOCK_ERR_IO, field, off);
    }
    return 0;
}

const char *airlock_tlv_name(uint16_t type)
{
    switch (type) {
    case AIRLOCK_TLV_KEYHASH:
        return "KEYHASH";
    case AIRLOCK_TLV_PUBKEY:
        return "PUBKEY";
    case AIRLOCK_TLV_SHA256:
        return "SHA256";
    case AIRLOCK_TLV_SHA384:
        return "SHA384";
    case AIRLOCK_TLV_SHA512:
        return "SHA512";
    case AIRLOCK_TLV_RSA2048_PSS:
        return "RSA2048_PSS";
    case AIRLOCK_TLV_ECDSA_SIG:
        return "ECDSA_SIG";
    case AIRLOCK_TLV_RSA3072_PSS:
        return "RSA3072_PSS";
    case AIRLOCK_TLV_ED25519:
        return "ED25519";
    case AIRLOCK_TLV_SIG_PURE:
        return "SIG_PURE";
    case AIRLOCK_TLV_ENC_RSA2048:
        return "ENC_RSA2048";
    case AIRLOCK_TLV_ENC_KW:
        return "ENC_KW";
    case AIRLOCK_TLV_ENC_EC256:
        return "ENC_EC256";
    case AIRLOCK_TLV_ENC_X25519:
        return "ENC_X25519";
    case AIRLOCK_TLV_DEPENDENCY:
        return "DEPENDENCY";
    case AIRLOCK_TLV_SEC_CNT:
        return "SEC_CNT";
    case AIRLOCK_TLV_BOOT_RECORD:
        return "BOOT_RECORD";
    default:
        return "unknown";
    }
}

int airlock_version_cmp(const airlock_version_t *a, const airlock_version_t *b)
{
    if (a->major != b->major) {
        return a->major < b->major ? -1 : 1;
    }
    if (a->minor != b->minor) {
        return a->minor < b->minor ? -1 : 1;
    }
    if (a->revision != b->revision) {
        return a->revision < b->revision ? -1 : 1;
    }
    if (a->build != b->build) {
        return a->build < b->build ? -1 : 1;
    }
    return 0;
}

void airlock_header_decode(const uint8_t raw[32], airlock_image_header_t *hdr)
{
    hdr->magic = load32(raw + 0);
    hdr->load_addr = load32(raw + 4);
    hdr->hdr_size = load16(raw + 8);
    hdr->protect_tlv_size = load16(raw + 10);
    hdr->img_size = load32(raw + 12);
    hdr->flags = load32(raw + 16);
    hdr->version.major = raw[20];
    hdr->version.minor = raw[21];
    hdr->version.revision = load16(raw + 22);
    hdr->version.build = load32(raw + 24);
    hdr->pad = load32(raw + 28);
}

void airlock_header_encode(const airlock_image_header_t *hdr, uint8_t raw[32])
{
    store32(raw + 0, hdr->magic);
    store32(raw + 4, hdr->load_addr);
    store16(raw + 8, hdr->hdr_size);
    store16(raw + 10, hdr->protect_tlv_size);
    store32(raw + 12, hdr->img_size);
    store32(raw + 16, hdr->flags);
    raw[20] = hdr->version.major;
    raw[21] = hdr->version.minor;
    store16(raw + 22, hdr->version.revision);
    store32(raw + 24, hdr->version.build);
    store32(raw + 28, hdr->pad);
}

/*
 * Check the TLV area info header at off and that its entries tile it
 * exactly. On success *len is the area length (info header included).
 */
static int walk_area(const airlock_source_t *src, uint32_t off, uint16_t magic, bool prot,
                     uint32_t *len, uint16_t *count, airlock_err_detail_t *det)
{
    uint8_t raw[AIRLOCK_TLV_INFO_SIZE];
    const char *info_field = prot ? "protected_tlv_info" : "tlv_info";
    int rc = read_at(src, off, raw, sizeof(raw), det, info_field);
    if (rc) {
        return rc;
    }
    uint16_t found = load16(raw);
    uint16_t tot = load16(raw + 2);
    if (found != magic) {
        return fail_values(det, AIRLOCK_ERR_BAD_TLV_INFO,
                           prot ? "protected_tlv_info.magic" : "tlv_info.magic", off, magic, found);
    }
    if (tot < AIRLOCK_TLV_INFO_SIZE) {
        return fail_values(det, AIRLOCK_ERR_BAD_TLV_INFO,
                           prot ? "protected_tlv_info.total" : "tlv_info.total", off + 2,
                           AIRLOCK_TLV_INFO_SIZE, tot);
    }
    uint64_t end = (uint64_t)off + tot;
    if (end > src->size) {
        return fail_values(det, AIRLOCK_ERR_OUT_OF_BOUNDS,
                           prot ? "protected_tlv_info.total" : "tlv_info.total", off + 2,
                           (uint32_t)(src->size - off), tot);
    }
    uint32_t pos = off + AIRLOCK_TLV_INFO_SIZE;
    while (pos < end) {
        uint8_t th[AIRLOCK_TLV_HDR_SIZE];
        if ((uint64_t)pos + AIRLOCK_TLV_HDR_SIZE > end) {
            return fail_values(det, AIRLOCK_ERR_BAD_TLV, "tlv.header", pos, AIRLOCK_TLV_HDR_SIZE,
                               (uint32_t)(end - pos));
        }
        rc = read_at(src, pos, th, sizeof(th), det, "tlv.header");
        if (rc) {
            return rc;
        }
        uint16_t tlen = load16(th + 2);
        uint64_t next = (uint64_t)pos + AIRLOCK_TLV_HDR_SIZE + tlen;
        if (next > end) {
            rc = fail_values(det, AIRLOCK_ERR_BAD_TLV, "tlv.len", pos + 2,
                             (uint32_t)(end - pos - AIRLOCK_TLV_HDR_SIZE), tlen);
            if (det) {
                det->tlv_type = load16(th);
            }
            return rc;
        }
        if (*count == UINT16_MAX) {
            return fail(det, AIRLOCK_ERR_BAD_TLV, "tlv.count", pos);
        }
        (*count)++;
        pos = (uint32_t)next;
    }
    *len = tot;
    return 0;
}

int airlock_image_parse(const airlock_source_t *src, airlock_image_t *img,
                        airlock_err_detail_t *det)
{
    uint8_t raw[AIRLOCK_IMAGE_HEADER_SIZE];
    if (!src || !src->read || !img) {
        return fail(det, AIRLOCK_ERR_INVAL, "argument", 0);
    }
    memset(img, 0, sizeof(*img));
    int rc = read_at(src, 0, raw, sizeof(raw), det, "header");
    if (rc) {
        return rc;
    }
    airlock_header_decode(raw, &img->hdr);
    const airlock_image_header_t *h = &img->hdr;
    if (h->magic != AIRLOCK_IMAGE_MAGIC) {
        return fail_values(det, AIRLOCK_ERR_BAD_MAGIC, "header.magic", 0, AIRLOCK_IMAGE_MAGIC,
                           h->magic);
    }
    if (h->hdr_size < AIRLOCK_IMAGE_HEADER_SIZE) {
        return fail_values(det, AIRLOCK_ERR_BAD_HDR_SIZE, "header.hdr_size", 8,
                           AIRLOCK_IMAGE_HEADER_SIZE, h->hdr_size);
    }
    if (h->hdr_size > src->size) {
        return fail_values(det, AIRLOCK_ERR_OUT_OF_BOUNDS, "header.hdr_size", 8, src->size,
                           h->hdr_size);
    }
    uint64_t pos = (uint64_t)h->hdr_size + h->img_size;
    if (pos > src->size) {
        return fail_values(det, AIRLOCK_ERR_OUT_OF_BOUNDS, "header.img_size", 12,
                           src->size - h->hdr_size, h->img_size);
    }
    img->prot_off = (uint32_t)pos;
    if (h->protect_tlv_size != 0) {
        rc = walk_area(src, img->prot_off, AIRLOCK_TLV_PROT_INFO_MAGIC, true, &img->prot_len,
                       &img->tlv_count, det);
        if (rc) {
            return rc;
        }
        if (img->prot_len != h->protect_tlv_size) {
            return fail_values(det, AIRLOCK_ERR_BAD_TLV_INFO, "protected_tlv_info.total",
                               img->prot_off + 2, h->protect_tlv_size, img->prot_len);
        }
    }
    img->tlv_off = img->prot_off + img->prot_len;
    rc = walk_area(src, img->tlv_off, AIRLOCK_TLV_INFO_MAGIC, false, &img->tlv_len, &img->tlv_count,
                   det);
    if (rc) {
        if (h->protect_tlv_size == 0 && rc == AIRLOCK_ERR_BAD_TLV_INFO && det && det->has_values &&
            det->found == AIRLOCK_TLV_PROT_INFO_MAGIC) {
            /* A protected area the header does not declare. */
            det->field = "header.protect_tlv_size";
        }
        return rc;
    }
    img->end = img->tlv_off + img->tlv_len;
    return 0;
}

void airlock_tlv_iter_init(airlock_tlv_iter_t *it, const airlock_image_t *img)
{
    it->img = img;
    if (img->prot_len) {
        it->area = 0;
        it->pos = img->prot_off + AIRLOCK_TLV_INFO_SIZE;
        it->area_end = img->prot_off + img->prot_len;
    } else {
        it->area = 1;
        it->pos = img->tlv_off + AIRLOCK_TLV_INFO_SIZE;
        it->area_end = img->tlv_off + img->tlv_len;
    }
}

int airlock_tlv_next(airlock_tlv_iter_t *it, const airlock_source_t *src, airlock_tlv_t *tlv,
                     airlock_err_detail_t *det)
{
    while (it->area < 2 && it->pos >= it->area_end) {
        it->area++;
        if (it->area == 1) {
            it->pos = it->img->tlv_off + AIRLOCK_TLV_INFO_SIZE;
            it->area_end = it->img->tlv_off + it->img->tlv_len;
        }
    }
    if (it->area >= 2) {
        return 0;
    }
    uint8_t th[AIRLOCK_TLV_HDR_SIZE];
    /* parse() proved the layout; re-check anyway: flash may have changed. */
    if ((uint64_t)it->pos + AIRLOCK_TLV_HDR_SIZE > it->area_end) {
        return fail(det, AIRLOCK_ERR_BAD_TLV, "tlv.header", it->pos);
    }
    int rc = read_at(src, it->pos, th, sizeof(th), det, "tlv.header");
    if (rc) {
        return rc;
    }
    tlv->type = load16(th);
    tlv->len = load16(th + 2);
    tlv->off = it->pos + AIRLOCK_TLV_HDR_SIZE;
    tlv->prot = it->area == 0;
    if ((uint64_t)tlv->off + tlv->len > it->area_end) {
        return fail_tlv(det, AIRLOCK_ERR_BAD_TLV, "tlv.len", tlv);
    }
    it->pos = tlv->off + tlv->len;
    return 1;
}

int airlock_key_default_hash(int key_type)
{
    switch (key_type) {
    case AIRLOCK_KEY_ECDSA_P384:
        return AIRLOCK_HASH_SHA384;
    case AIRLOCK_KEY_ECDSA_P256:
    case AIRLOCK_KEY_RSA_2048:
    case AIRLOCK_KEY_RSA_3072:
    case AIRLOCK_KEY_ED25519:
        return AIRLOCK_HASH_SHA256;
    default:
        return 0;
    }
}

bool airlock_key_allows_hash(int key_type, int hash_alg)
{
    switch (key_type) {
    case AIRLOCK_KEY_ED25519:
        /* Ed25519 signs the digest itself; imgtool allows SHA-256 or -512. */
        return hash_alg == AIRLOCK_HASH_SHA256 || hash_alg == AIRLOCK_HASH_SHA512;
    default:
        return hash_alg != 0 && hash_alg == airlock_key_default_hash(key_type);
    }
}

uint16_t airlock_key_sig_tlv(int key_type)
{
    switch (key_type) {
    case AIRLOCK_KEY_ECDSA_P256:
    case AIRLOCK_KEY_ECDSA_P384:
        return AIRLOCK_TLV_ECDSA_SIG;
    case AIRLOCK_KEY_RSA_2048:
        return AIRLOCK_TLV_RSA2048_PSS;
    case AIRLOCK_KEY_RSA_3072:
        return AIRLOCK_TLV_RSA3072_PSS;
    case AIRLOCK_KEY_ED25519:
        return AIRLOCK_TLV_ED25519;
    default:
        return 0;
    }
}

static bool is_hash_tlv(uint16_t type)
{
    return type == AIRLOCK_TLV_SHA256 || type == AIRLOCK_TLV_SHA384 || type == AIRLOCK_TLV_SHA512;
}

static bool is_sig_tlv(uint16_t type)
{
    return type == AIRLOCK_TLV_RSA2048_PSS || type == AIRLOCK_TLV_ECDSA_SIG ||
           type == AIRLOCK_TLV_RSA3072_PSS || type == AIRLOCK_TLV_ED25519;
}

int airlock_hash_region(const airlock_crypto_t *crypto, int alg, const airlock_source_t *src,
                        uint32_t off, uint32_t len, uint8_t *buf, size_t buf_len, uint8_t *out)
{
    uint8_t chunk[STREAM_CHUNK];
    airlock_hash_t h;
    if (!crypto || !src || !out) {
        return AIRLOCK_ERR_INVAL;
    }
    if ((uint64_t)off + len > src->size) {
        return AIRLOCK_ERR_OUT_OF_BOUNDS;
    }
    if (!buf || buf_len == 0) {
        buf = chunk;
        buf_len = sizeof(chunk);
    }
    if (buf_len > UINT32_MAX) {
        buf_len = UINT32_MAX;
    }
    int rc = crypto->hash_init(&h, alg);
    if (rc) {
        return rc;
    }
    while (len > 0) {
        uint32_t n = len < buf_len ? len : (uint32_t)buf_len;
        if (src->read(src->ctx, off, buf, n) != 0) {
            crypto->hash_finish(&h, NULL);
            return AIRLOCK_ERR_IO;
        }
        rc = crypto->hash_update(&h, buf, n);
        if (rc) {
            crypto->hash_finish(&h, NULL);
            return rc;
        }
        off += n;
        len -= n;
    }
    return crypto->hash_finish(&h, out);
}

static NOINLINE int hash_mem(const airlock_crypto_t *crypto, int alg, const uint8_t *data,
                             size_t len, uint8_t *out)
{
    airlock_hash_t h;
    int rc = crypto->hash_init(&h, alg);
    if (rc) {
        return rc;
    }
    rc = crypto->hash_update(&h, data, len);
    int rc2 = crypto->hash_finish(&h, rc ? NULL : out);
    return rc ? rc : rc2;
}

/* Does the TLV value at tlv equal the len bytes at key, streaming the read? */
static int tlv_equals(const airlock_source_t *src, const airlock_tlv_t *tlv, const uint8_t *key,
                      size_t len, bool *equal, airlock_err_detail_t *det)
{
    uint8_t chunk[64];
    uint8_t diff = 0;
    *equal = false;
    if (tlv->len != len) {
        return 0;
    }
    for (uint32_t done = 0; done < tlv->len;) {
        uint32_t n = (uint32_t)(tlv->len - done);
        if (n > sizeof(chunk)) {
            n = sizeof(chunk);
        }
        int rc = read_at(src, tlv->off + done, chunk, n, det, "tlv.value");
        if (rc) {
            return rc;
        }
        for (uint32_t i = 0; i < n; i++) {
            diff = (uint8_t)(diff | (chunk[i] ^ key[done + i]));
        }
        done += n;
    }
    *equal = diff == 0;
    return 0;
}

/* Key selection state while walking the unprotected TLVs. */
#define KEY_ANY (-2)     /* no KEYHASH/PUBKEY seen: try every trusted key */
#define KEY_UNKNOWN (-1) /* the image names a key we do not trust */

/* Which trusted key does a KEYHASH or PUBKEY TLV name? */
static int select_key(const airlock_source_t *src, const airlock_verify_cfg_t *cfg, int alg,
                      const airlock_tlv_t *tlv, int *sel, airlock_err_detail_t *det)
{
    size_t hlen = airlock_hash_len(alg);
    uint8_t want[AIRLOCK_HASH_MAX_LEN];
    uint8_t have[AIRLOCK_HASH_MAX_LEN];
    *sel = KEY_UNKNOWN;
    if (tlv->type == AIRLOCK_TLV_KEYHASH) {
        if (tlv->len != hlen) {
            fail_tlv(det, AIRLOCK_ERR_BAD_TLV, "KEYHASH.len", tlv);
            if (det) {
                det->expected = (uint32_t)hlen;
                det->found = tlv->len;
                det->has_values = 1;
            }
            return AIRLOCK_ERR_BAD_TLV;
        }
        int rc = read_at(src, tlv->off, want, tlv->len, det, "KEYHASH.value");
        if (rc) {
            return rc;
        }
        for (size_t k = 0; k < cfg->nkeys; k++) {
            rc = hash_mem(cfg->crypto, alg, cfg->keys[k].der, cfg->keys[k].der_len, have);
            if (rc) {
                return rc;
            }
            if (ct_equal(want, have, hlen)) {
                *sel = (int)k;
                return 0;
            }
        }
        return 0;
    }
    for (size_t k = 0; k < cfg->nkeys; k++) {
        bool eq;
        int rc = tlv_equals(src, tlv, cfg->keys[k].der, cfg->keys[k].der_len, &eq, det);
        if (rc) {
            return rc;
        }
        if (eq) {
            *sel = (int)k;
            return 0;
        }
    }
    return 0;
}

/* Collect the hash TLV and security counter; reject what must be unique. */
static NOINLINE int scan_tlvs(const airlock_source_t *src, const airlock_image_t *img,
                              airlock_tlv_t *hash_tlv, airlock_verify_result_t *res,
                              airlock_err_detail_t *det)
{
    airlock_tlv_iter_t it;
    airlock_tlv_t tlv;
    int rc;
    bool have_hash = false;
    airlock_tlv_iter_init(&it, img);
    while ((rc = airlock_tlv_next(&it, src, &tlv, det)) == 1) {
        if (is_hash_tlv(tlv.type)) {
            if (tlv.prot) {
                return fail_tlv(det, AIRLOCK_ERR_BAD_TLV, "hash TLV in protected area", &tlv);
            }
            if (have_hash) {
                return fail_tlv(det, AIRLOCK_ERR_DUP_TLV, "hash TLV", &tlv);
            }
            size_t want = airlock_hash_len(tlv.type);
            if (tlv.len != want) {
                fail_tlv(det, AIRLOCK_ERR_BAD_TLV, "hash.len", &tlv);
                if (det) {
                    det->expected = (uint32_t)want;
                    det->found = tlv.len;
                    det->has_values = 1;
                }
                return AIRLOCK_ERR_BAD_TLV;
            }
            *hash_tlv = tlv;
            have_hash = true;
        } else if (tlv.type == AIRLOCK_TLV_SEC_CNT) {
            uint8_t raw[4];
            if (!tlv.prot) {
                return fail_tlv(det, AIRLOCK_ERR_BAD_SEC_CNT, "SEC_CNT outside protected area",
                                &tlv);
            }
            if (res->has_sec_cnt) {
                return fail_tlv(det, AIRLOCK_ERR_DUP_TLV, "SEC_CNT", &tlv);
            }
            if (tlv.len != sizeof(raw)) {
                fail_tlv(det, AIRLOCK_ERR_BAD_SEC_CNT, "SEC_CNT.len", &tlv);
                if (det) {
                    det->expected = sizeof(raw);
                    det->found = tlv.len;
                    det->has_values = 1;
                }
                return AIRLOCK_ERR_BAD_SEC_CNT;
            }
            rc = read_at(src, tlv.off, raw, sizeof(raw), det, "SEC_CNT.value");
            if (rc) {
                return rc;
            }
            res->has_sec_cnt = true;
            res->sec_cnt = load32(raw);
        } else if (tlv.type == AIRLOCK_TLV_KEYHASH && res->keyhash_off == 0) {
            res->keyhash_off = tlv.off;
            res->keyhash_len = tlv.len;
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (!have_hash) {
        return fail(det, AIRLOCK_ERR_NO_HASH, "hash TLV", img->tlv_off);
    }
    return 0;
}

/* Outcome of trying the signatures, from most to least specific. */
struct sig_walk {
    unsigned nsig;
    bool tried;       /* a signature met a key of its type */
    bool unknown_key; /* a KEYHASH/PUBKEY named no trusted key */
    int worst;        /* UNSUPPORTED or BAD_KEY seen from the backend */
};

static NOINLINE int check_signatures(const airlock_source_t *src, const airlock_image_t *img,
                                     const airlock_verify_cfg_t *cfg, airlock_verify_result_t *res,
                                     airlock_err_detail_t *det)
{
    uint8_t sig[SIG_MAX];
    struct sig_walk w = {0, false, false, 0};
    airlock_tlv_iter_t it;
    airlock_tlv_t tlv;
    int sel = KEY_ANY;
    int rc;
    uint32_t last_sig_off = img->tlv_off;

    airlock_tlv_iter_init(&it, img);
    while ((rc = airlock_tlv_next(&it, src, &tlv, det)) == 1) {
        if (tlv.prot) {
            continue;
        }
        if (tlv.type == AIRLOCK_TLV_KEYHASH || tlv.type == AIRLOCK_TLV_PUBKEY) {
            rc = select_key(src, cfg, res->hash_alg, &tlv, &sel, det);
            if (rc) {
                return rc;
            }
            if (sel == KEY_UNKNOWN) {
                w.unknown_key = true;
            }
            continue;
        }
        if (!is_sig_tlv(tlv.type)) {
            continue; /* unknown unprotected TLVs are skipped */
        }
        w.nsig++;
        last_sig_off = tlv.off - AIRLOCK_TLV_HDR_SIZE;
        if (tlv.len > SIG_MAX) {
            return fail_tlv(det, AIRLOCK_ERR_BAD_TLV, "signature.len", &tlv);
        }
        if (sel == KEY_UNKNOWN) {
            continue;
        }
        rc = read_at(src, tlv.off, sig, tlv.len, det, "signature.value");
        if (rc) {
            return rc;
        }
        size_t first = sel == KEY_ANY ? 0 : (size_t)sel;
        size_t last = sel == KEY_ANY ? cfg->nkeys : (size_t)sel + 1;
        for (size_t k = first; k < last; k++) {
            const airlock_pubkey_t *key = &cfg->keys[k];
            if (airlock_key_sig_tlv(key->type) != tlv.type ||
                !airlock_key_allows_hash(key->type, res->hash_alg)) {
                continue;
            }
            w.tried = true;
            rc = cfg->crypto->verify(cfg->crypto->ctx, key->type, key->der, key->der_len,
                                     res->hash_alg, res->digest, res->digest_len, sig, tlv.len);
            if (rc == 0) {
                res->key_index = (int)k;
                res->sig_type = tlv.type;
                return 0;
            }
            if (rc == AIRLOCK_ERR_UNSUPPORTED || rc == AIRLOCK_ERR_BAD_KEY ||
                rc == AIRLOCK_ERR_CRYPTO) {
                w.worst = rc;
            }
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (w.nsig == 0) {
        return fail(det, AIRLOCK_ERR_NO_SIGNATURE, "signature TLV", img->tlv_off);
    }
    if (w.worst) {
        return fail(det, w.worst, "signature", last_sig_off);
    }
    if (!w.tried && w.unknown_key) {
        rc = fail(det, AIRLOCK_ERR_UNKNOWN_KEY, "KEYHASH", res->keyhash_off);
        if (det) {
            det->tlv_type = AIRLOCK_TLV_KEYHASH;
        }
        return rc;
    }
    if (!w.tried) {
        return fail(det, AIRLOCK_ERR_KEY_MISMATCH, "signature type", last_sig_off);
    }
    return fail(det, AIRLOCK_ERR_BAD_SIGNATURE, "signature", last_sig_off);
}

int airlock_image_verify(const airlock_source_t *src, const airlock_image_t *img,
                         const airlock_verify_cfg_t *cfg, airlock_verify_result_t *res,
                         airlock_err_detail_t *det)
{
    airlock_tlv_t hash_tlv = {0, 0, 0, false};
    uint8_t want[AIRLOCK_HASH_MAX_LEN];
    if (!src || !src->read || !img || !cfg || !cfg->crypto || !res || (cfg->nkeys && !cfg->keys)) {
        return fail(det, AIRLOCK_ERR_INVAL, "argument", 0);
    }
    memset(res, 0, sizeof(*res));
    res->key_index = -1;

    int rc = scan_tlvs(src, img, &hash_tlv, res, det);
    if (rc) {
        return rc;
    }
    res->hash_alg = hash_tlv.type;
    res->digest_len = airlock_hash_len(res->hash_alg);

    /*
     * With keys, refuse up front when no trusted key can sign with this
     * image's hash: the image was made for a different key type.
     */
    if (cfg->nkeys) {
        bool usable = false;
        for (size_t k = 0; k < cfg->nkeys; k++) {
            usable = usable || airlock_key_allows_hash(cfg->keys[k].type, res->hash_alg);
        }
        if (!usable) {
            return fail_tlv(det, AIRLOCK_ERR_KEY_MISMATCH, "hash type", &hash_tlv);
        }
    }

    rc = airlock_hash_region(cfg->crypto, res->hash_alg, src, 0, img->tlv_off, cfg->buf,
                             cfg->buf_len, res->digest);
    if (rc) {
        return fail(det, rc, "hash", 0);
    }
    rc = read_at(src, hash_tlv.off, want, hash_tlv.len, det, "hash.value");
    if (rc) {
        return rc;
    }
    if (!ct_equal(want, res->digest, res->digest_len)) {
        return fail_tlv(det, AIRLOCK_ERR_HASH_MISMATCH, "hash", &hash_tlv);
    }
    res->hash_ok = true;
    if (cfg->nkeys == 0) {
        return 0;
    }
    return check_signatures(src, img, cfg, res, det);
}
