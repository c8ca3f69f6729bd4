/*
 * MCUboot-compatible image format: header, TLV areas, streaming hash and
 * signature verification through the crypto port.
 * Never trusts a length: every offset is checked against the source size
 * before it is read. Freestanding, no allocation; reads go through a callback
 * so images larger than RAM are verified in place.
 */
#ifndef AIRLOCK_IMAGE_H
#define AIRLOCK_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/crypto.h"
#include "airlock/err.h"

#define AIRLOCK_IMAGE_MAGIC 0x96f3b83dU
#define AIRLOCK_IMAGE_HEADER_SIZE 32u
#define AIRLOCK_TLV_INFO_MAGIC 0x6907u
#define AIRLOCK_TLV_PROT_INFO_MAGIC 0x6908u
#define AIRLOCK_TLV_INFO_SIZE 4u
#define AIRLOCK_TLV_HDR_SIZE 4u

/* Header flags (header.flags). */
#define AIRLOCK_IMAGE_F_PIC 0x00000001u
#define AIRLOCK_IMAGE_F_ENCRYPTED_AES128 0x00000004u
#define AIRLOCK_IMAGE_F_ENCRYPTED_AES256 0x00000008u
#define AIRLOCK_IMAGE_F_NON_BOOTABLE 0x00000010u
#define AIRLOCK_IMAGE_F_RAM_LOAD 0x00000020u
#define AIRLOCK_IMAGE_F_ROM_FIXED 0x00000100u
#define AIRLOCK_IMAGE_F_COMPRESSED_LZMA1 0x00000200u
#define AIRLOCK_IMAGE_F_COMPRESSED_LZMA2 0x00000400u

/* TLV types. */
enum airlock_tlv_type {
    AIRLOCK_TLV_KEYHASH = 0x01,
    AIRLOCK_TLV_PUBKEY = 0x02,
    AIRLOCK_TLV_SHA256 = 0x10,
    AIRLOCK_TLV_SHA384 = 0x11,
    AIRLOCK_TLV_SHA512 = 0x12,
    AIRLOCK_TLV_RSA2048_PSS = 0x20,
    AIRLOCK_TLV_ECDSA_SIG = 0x22,
    AIRLOCK_TLV_RSA3072_PSS = 0x23,
    AIRLOCK_TLV_ED25519 = 0x24,
    AIRLOCK_TLV_SIG_PURE = 0x25,
    AIRLOCK_TLV_ENC_RSA2048 = 0x30,
    AIRLOCK_TLV_ENC_KW = 0x31,
    AIRLOCK_TLV_ENC_EC256 = 0x32,
    AIRLOCK_TLV_ENC_X25519 = 0x33,
    AIRLOCK_TLV_DEPENDENCY = 0x40,
    AIRLOCK_TLV_SEC_CNT = 0x50,
    AIRLOCK_TLV_BOOT_RECORD = 0x60,
};

/* Human name of a TLV type ("SHA256", "KEYHASH"...), "unknown" otherwise. */
const char *airlock_tlv_name(uint16_t type);

/* Semantic version as stored in the header. */
typedef struct airlock_version {
    uint8_t major;
    uint8_t minor;
    uint16_t revision;
    uint32_t build;
} airlock_version_t;

/*
 * Compare versions by major, minor, revision, then build number.
 * Returns <0, 0, >0 like memcmp.
 */
int airlock_version_cmp(const airlock_version_t *a, const airlock_version_t *b);

/* The 32-byte image header, decoded (never a cast of raw bytes). */
typedef struct airlock_image_header {
    uint32_t magic;
    uint32_t load_addr;
    uint16_t hdr_size;
    uint16_t protect_tlv_size;
    uint32_t img_size;
    uint32_t flags;
    airlock_version_t version;
    uint32_t pad;
} airlock_image_header_t;

/* Decode / encode 32 header bytes (little endian). */
void airlock_header_decode(const uint8_t raw[32], airlock_image_header_t *hdr);
void airlock_header_encode(const airlock_image_header_t *hdr, uint8_t raw[32]);

/*
 * Where image bytes come from: a read callback over [0, size).
 * read() copies len bytes at off into buf and returns 0, or a negative value
 * on failure (reported as AIRLOCK_ERR_IO). Core only calls it with
 * off + len <= size.
 */
typedef struct airlock_source {
    int (*read)(void *ctx, uint32_t off, void *buf, uint32_t len);
    void *ctx;
    uint32_t size; /* bytes available: the slot size, or the file size */
} airlock_source_t;

/* Layout of a parsed image. All offsets are from the start of the image. */
typedef struct airlock_image {
    airlock_image_header_t hdr;
    uint32_t prot_off; /* protected TLV info header; == tlv_off if none */
    uint32_t prot_len; /* protected area bytes incl. info (0 if none) */
    uint32_t tlv_off;  /* unprotected TLV info header */
    uint32_t tlv_len;  /* unprotected area bytes incl. info header */
    uint32_t end;      /* first byte after the image (tlv_off + tlv_len) */
    uint16_t tlv_count; /* TLV entries in both areas */
} airlock_image_t;

/*
 * Read and check the header and walk both TLV areas, checking every length
 * against src->size and that each area's entries fill it exactly.
 * On error *det (if non-NULL) names the field and offset.
 * Returns 0, AIRLOCK_ERR_IO, BAD_MAGIC, BAD_HDR_SIZE, OUT_OF_BOUNDS,
 * BAD_TLV_INFO or BAD_TLV.
 */
int airlock_image_parse(const airlock_source_t *src, airlock_image_t *img,
                        airlock_err_detail_t *det);

/* One TLV entry. */
typedef struct airlock_tlv {
    uint16_t type;
    uint16_t len;
    uint32_t off; /* offset of the value (after the 4-byte TLV header) */
    bool prot;    /* in the protected area */
} airlock_tlv_t;

/* Iterator over both TLV areas, protected first. */
typedef struct airlock_tlv_iter {
    const airlock_image_t *img;
    uint32_t pos;
    uint32_t area_end;
    uint8_t area; /* 0 protected, 1 unprotected, 2 done */
} airlock_tlv_iter_t;

/* Start iterating the TLVs of a parsed image. */
void airlock_tlv_iter_init(airlock_tlv_iter_t *it, const airlock_image_t *img);

/*
 * Next TLV into *tlv. Returns 1 when one was produced, 0 at the end, or a
 * negative error (the image changed under us since parse: IO, BAD_TLV).
 */
int airlock_tlv_next(airlock_tlv_iter_t *it, const airlock_source_t *src,
                     airlock_tlv_t *tlv, airlock_err_detail_t *det);

/* A trusted public key (see airlock_key_type for the byte format). */
typedef struct airlock_pubkey {
    int type;
    const uint8_t *der;
    size_t der_len;
} airlock_pubkey_t;

/* What verification needs. */
typedef struct airlock_verify_cfg {
    const airlock_crypto_t *crypto;
    /* Trusted keys; nkeys == 0 checks the hash only. */
    const airlock_pubkey_t *keys;
    size_t nkeys;
    /*
     * Optional scratch buffer for streaming reads (bigger is faster); when
     * NULL a small stack buffer is used.
     */
    uint8_t *buf;
    size_t buf_len;
} airlock_verify_cfg_t;

/* What verification found (valid fields even on some failures). */
typedef struct airlock_verify_result {
    int hash_alg; /* AIRLOCK_HASH_*, 0 if no hash TLV */
    uint8_t digest[AIRLOCK_HASH_MAX_LEN]; /* computed digest */
    size_t digest_len;
    bool hash_ok;
    int key_index;      /* index into cfg->keys of the signing key, or -1 */
    uint16_t sig_type;  /* signature TLV that verified, 0 if none */
    bool has_sec_cnt;
    uint32_t sec_cnt;
    uint32_t keyhash_off; /* offset of the first KEYHASH value, 0 if none */
    uint16_t keyhash_len;
} airlock_verify_result_t;

/*
 * Hash the image (header + payload + protected TLVs) through src, compare it
 * with the hash TLV and, when cfg->nkeys > 0, check that a signature TLV
 * verifies with a trusted key. A KEYHASH (or PUBKEY) TLV selects the key for
 * the signature that follows it; a signature with no key TLV before it is
 * tried against every trusted key of a matching type.
 * img must come from airlock_image_parse on the same source.
 * Returns 0 or NO_HASH, HASH_MISMATCH, BAD_TLV, DUP_TLV, BAD_SEC_CNT,
 * NO_SIGNATURE, KEY_MISMATCH, UNKNOWN_KEY, BAD_SIGNATURE, UNSUPPORTED, IO,
 * CRYPTO. *res is filled as far as verification got.
 */
int airlock_image_verify(const airlock_source_t *src, const airlock_image_t *img,
                         const airlock_verify_cfg_t *cfg,
                         airlock_verify_result_t *res, airlock_err_detail_t *det);

/*
 * Stream-hash [off, off + len) of src with alg. Uses buf (or a small stack
 * buffer when buf is NULL). out receives airlock_hash_len(alg) bytes.
 */
int airlock_hash_region(const airlock_crypto_t *crypto, int alg,
                        const airlock_source_t *src, uint32_t off, uint32_t len,
                        uint8_t *buf, size_t buf_len, uint8_t *out);

/*
 * Hash type a key type signs with by default (imgtool's choice) and whether
 * a key type may sign with hash alg. Signature TLV type made by a key type.
 */
int airlock_key_default_hash(int key_type);
bool airlock_key_allows_hash(int key_type, int hash_alg);
uint16_t airlock_key_sig_tlv(int key_type);

#endif /* AIRLOCK_IMAGE_H */
