/*
 * `airlock sign`: imgtool-compatible image signing (imgtool 2.4.0 option
 * names and byte layout; hash-only images are byte-identical to imgtool's).
 * Invariants: OUTFILE is written only after the finished image has been
 * parsed and verified by core with the signing key's public half, and only
 * by atomic rename, so a failed sign never leaves a partial or bad file and
 * never touches an existing OUTFILE.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "airlock/crypto_openssl.h"
#include "airlock/image.h"
#include "airlock/trailer.h"
#include "cli.h"
#include "pkey.h"
#include "util.h"
#include "version.h"

/* --max-sectors bound: keeps the trailer size arithmetic inside 32 bits. */
#define MAX_SECTORS_LIMIT 0x100000u

struct sign_opts {
    const char *key_path;
    const char *infile;
    const char *outfile;
    uint32_t hdr_size;
    bool have_hdr_size;
    bool pad_header;
    uint32_t align;
    uint32_t max_align; /* 0: max(8, align) */
    airlock_version_t version;
    bool have_version;
    uint32_t slot_size;
    bool have_slot_size;
    bool pad, test, confirm;
    bool have_sec_cnt, sec_cnt_auto;
    uint32_t sec_cnt;
    uint32_t load_addr;
    uint32_t rom_fixed;
    uint32_t max_sectors;
    bool overwrite_only;
    bool full_pubkey;
    uint8_t erased;
    bool pad_sig;
    bool non_bootable;
    bool quiet, json;
};

/* What was built, for the summary and --json. */
struct sign_result {
    uint8_t *file; /* the whole output file */
    size_t file_len;
    uint32_t image_len; /* header + payload + TLV areas, before padding */
    airlock_image_header_t hdr;
    uint32_t prot_len, unprot_len;
    uint32_t trailer_size;
    uint32_t max_align;
    int hash_alg;
    uint8_t digest[AIRLOCK_HASH_MAX_LEN];
    size_t digest_len;
    uint8_t keyhash[AIRLOCK_HASH_MAX_LEN];
    size_t keyhash_len;
    uint16_t sig_tlv;
    size_t sig_len;
    struct {
        uint16_t type;
        uint16_t len;
        bool prot;
    } tlvs[4];
    size_t ntlvs;
};

static void sign_help(FILE *f)
{
    fprintf(f, "usage: airlock sign -H SIZE -v VERSION -S SLOT_SIZE [options] INFILE OUTFILE\n"
               "\n"
               "Make an MCUboot-format image from the raw binary INFILE. Options and output\n"
               "match imgtool 2.4.0 'sign'; without -k the image carries only its hash.\n"
               "Numbers take decimal or 0x/0o/0b prefixes.\n"
               "\n"
               "Required:\n"
               "  -H, --header-size SIZE      image header size (>= 32, e.g. 0x200)\n"
               "  -v, --version M[.m[.r[+b]]] image version (major, minor <= 255,\n"
               "                              revision <= 65535, build < 2^32)\n"
               "  -S, --slot-size SIZE        slot size; image + trailer must fit in it\n"
               "\n"
               "Signing:\n"
               "  -k, --key FILE              private key (ecdsa-p256/p384, rsa-2048/3072,\n"
               "                              ed25519); SHA-384 image hash for ecdsa-p384\n"
               "      --public-key-format hash|full\n"
               "                              KEYHASH TLV (default) or the whole PUBKEY\n"
               "      --pad-sig               zero-pad ECDSA signatures to 72 (P-256) or\n"
               "                              103 (P-384) bytes, for MCUboot < 1.5\n"
               "  -s, --security-counter N|auto\n"
               "                              add a protected SEC_CNT TLV; auto is\n"
               "                              (major << 24) + (minor << 16) + revision\n"
               "\n"
               "Header:\n"
               "      --pad-header            prepend SIZE erased bytes (else INFILE must start\n"
               "                              with SIZE zero bytes)\n"
               "  -L, --load-addr ADDR        RAM load address (sets flag RAM_LOAD)\n"
               "  -F, --rom-fixed ADDR        fixed ROM address (sets flag ROM_FIXED)\n"
               "      --non-bootable          set flag NON_BOOTABLE\n"
               "  -e, --endian little         only little endian is supported\n"
               "\n"
               "Padding and trailer:\n"
               "      --pad                   pad to SLOT_SIZE and write the boot magic\n"
               "      --test                  --pad; request a test swap (image_ok erased)\n"
               "      --confirm               --pad; request a permanent swap (image_ok set)\n"
               "      --align 1|2|4|8|16|32   flash write alignment (default 1)\n"
               "      --max-align 8|16|32     largest write alignment of the slots\n"
               "                              (default max(8, align))\n"
               "  -M, --max-sectors N         sectors the swap status covers (default 128)\n"
               "      --overwrite-only        trailer for overwrite-only upgrades\n"
               "  -R, --erased-val 0|0xff     erased flash byte value (default 0xff)\n"
               "\n"
               "Output:\n"
               "  -q, --quiet                 no summary line on stderr\n"
               "      --json                  print a JSON description of the image on stdout\n"
               "  -h, --help                  this help\n");
}

enum {
    OPT_PAD_HEADER = 256,
    OPT_ALIGN,
    OPT_MAX_ALIGN,
    OPT_PAD,
    OPT_TEST,
    OPT_CONFIRM,
    OPT_OVERWRITE_ONLY,
    OPT_PUBKEY_FORMAT,
    OPT_PAD_SIG,
    OPT_NON_BOOTABLE,
    OPT_JSON,
    OPT_IMGTOOL_ONLY, /* imgtool options airlock does not implement */
};

static const struct option sign_longopts[] = {
    {"key", required_argument, NULL, 'k'},
    {"header-size", required_argument, NULL, 'H'},
    {"pad-header", no_argument, NULL, OPT_PAD_HEADER},
    {"align", required_argument, NULL, OPT_ALIGN},
    {"max-align", required_argument, NULL, OPT_MAX_ALIGN},
    {"version", required_argument, NULL, 'v'},
    {"slot-size", required_argument, NULL, 'S'},
    {"pad", no_argument, NULL, OPT_PAD},
    {"test", no_argument, NULL, OPT_TEST},
    {"confirm", no_argument, NULL, OPT_CONFIRM},
    {"security-counter", required_argument, NULL, 's'},
    {"load-addr", required_argument, NULL, 'L'},
    {"rom-fixed", required_argument, NULL, 'F'},
    {"max-sectors", required_argument, NULL, 'M'},
    {"overwrite-only", no_argument, NULL, OPT_OVERWRITE_ONLY},
    {"public-key-format", required_argument, NULL, OPT_PUBKEY_FORMAT},
    {"endian", required_argument, NULL, 'e'},
    {"erased-val", required_argument, NULL, 'R'},
    {"pad-sig", no_argument, NULL, OPT_PAD_SIG},
    {"non-bootable", no_argument, NULL, OPT_NON_BOOTABLE},
    {"quiet", no_argument, NULL, 'q'},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    /* imgtool sign options that are recognised only to be refused clearly. */
    {"encrypt", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"encrypt-keylen", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"clear", no_argument, NULL, OPT_IMGTOOL_ONLY},
    {"save-enctlv", no_argument, NULL, OPT_IMGTOOL_ONLY},
    {"dependencies", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"boot-record", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"custom-tlv", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"custom-tlv-file", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"hex-addr", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"compression", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"fix-sig", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"fix-sig-pubkey", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"sig-out", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"pure", no_argument, NULL, OPT_IMGTOOL_ONLY},
    {"sha", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"hmac-sha", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"vector-to-sign", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"vid", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {"cid", required_argument, NULL, OPT_IMGTOOL_ONLY},
    {NULL, 0, NULL, 0},
};

/* Index of val in the NULL-terminated choices, or -1 after printing an error. */
static int choice(const char *opt, const char *val, const char *const *choices)
{
    char list[128] = "";
    size_t i;

    for (i = 0; choices[i] != NULL; i++) {
        if (strcmp(val, choices[i]) == 0) {
            return (int)i;
        }
    }
    for (i = 0; choices[i] != NULL; i++) {
        strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
    }
    cli_fail(EXIT_USAGE, "%s: '%s' is not one of %s", opt, val, list);
    return -1;
}

static bool has_hex_ext(const char *path)
{
    size_t n = strlen(path);

    return n >= 4 && strcasecmp(path + n - 4, ".hex") == 0;
}

static int parse_sign_opts(int argc, char **argv, struct sign_opts *o)
{
    static const char *const aligns[] = {"1", "2", "4", "8", "16", "32", NULL};
    static const char *const max_aligns[] = {"8", "16", "32", NULL};
    static const char *const key_formats[] = {"hash", "full", NULL};
    static const char *const endians[] = {"little", "big", NULL};
    static const char *const erased_vals[] = {"0", "0xff", NULL};
    char why[160];
    int c, i, rc, li;

    memset(o, 0, sizeof(*o));
    o->align = 1;
    o->max_sectors = AIRLOCK_TRAILER_DEFAULT_MAX_SECTORS;
    o->erased = 0xff;

    while ((li = -1, c = getopt_long(argc, argv, ":k:H:v:S:s:L:F:M:e:R:qhE:d:x:c", sign_longopts,
                                     &li)) != -1) {
        rc = EXIT_OK_;
        switch (c) {
        case 'k':
            o->key_path = optarg;
            break;
        case 'H':
            rc = cli_parse_u32_opt("-H/--header-size", optarg, 0xffffu, &o->hdr_size);
            if (rc == EXIT_OK_ && o->hdr_size < AIRLOCK_IMAGE_HEADER_SIZE) {
                rc = cli_fail(EXIT_USAGE, "-H/--header-size: %s is too small (minimum %u)", optarg,
                              AIRLOCK_IMAGE_HEADER_SIZE);
            }
            o->have_hdr_size = true;
            break;
        case OPT_PAD_HEADER:
            o->pad_header = true;
            break;
        case OPT_ALIGN:
            i = choice("--align", optarg, aligns);
            rc = i < 0 ? EXIT_USAGE : EXIT_OK_;
            o->align = i < 0 ? 1u : (uint32_t)atoi(optarg);
            break;
        case OPT_MAX_ALIGN:
            i = choice("--max-align", optarg, max_aligns);
            rc = i < 0 ? EXIT_USAGE : EXIT_OK_;
            o->max_align = i < 0 ? 0u : (uint32_t)atoi(optarg);
            break;
        case 'v':
            if (cli_version_parse(optarg, &o->version, why, sizeof(why)) != 0) {
                rc = cli_fail(EXIT_USAGE, "-v/--version '%s': %s", optarg, why);
            }
            o->have_version = true;
            break;
        case 'S':
            rc = cli_parse_u32_opt("-S/--slot-size", optarg, UINT32_MAX, &o->slot_size);
            o->have_slot_size = true;
            break;
        case OPT_PAD:
            o->pad = true;
            break;
        case OPT_TEST:
            o->test = true;
            break;
        case OPT_CONFIRM:
            o->confirm = true;
            break;
        case 's':
            o->have_sec_cnt = true;
            o->sec_cnt_auto = strcasecmp(optarg, "auto") == 0;
            if (!o->sec_cnt_auto) {
                rc = cli_parse_u32_opt("-s/--security-counter", optarg, UINT32_MAX, &o->sec_cnt);
            }
            break;
        case 'L':
            rc = cli_parse_u32_opt("-L/--load-addr", optarg, UINT32_MAX, &o->load_addr);
            break;
        case 'F':
            rc = cli_parse_u32_opt("-F/--rom-fixed", optarg, UINT32_MAX, &o->rom_fixed);
            break;
        case 'M':
            rc = cli_parse_u32_opt("-M/--max-sectors", optarg, MAX_SECTORS_LIMIT, &o->max_sectors);
            break;
        case OPT_OVERWRITE_ONLY:
            o->overwrite_only = true;
            break;
        case OPT_PUBKEY_FORMAT:
            i = choice("--public-key-format", optarg, key_formats);
            rc = i < 0 ? EXIT_USAGE : EXIT_OK_;
            o->full_pubkey = i == 1;
            break;
        case 'e':
            i = choice("-e/--endian", optarg, endians);
            if (i == 1) {
                rc = cli_fail(EXIT_UNSUPPORTED,
                              "-e/--endian big: big-endian images are not supported (MCUboot "
                              "images are little endian)");
            } else if (i < 0) {
                rc = EXIT_USAGE;
            }
            break;
        case 'R':
            i = choice("-R/--erased-val", optarg, erased_vals);
            rc = i < 0 ? EXIT_USAGE : EXIT_OK_;
            o->erased = i == 0 ? 0x00 : 0xff;
            break;
        case OPT_PAD_SIG:
            o->pad_sig = true;
            break;
        case OPT_NON_BOOTABLE:
            o->non_bootable = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'h':
            sign_help(stdout);
            return -1;
        case OPT_IMGTOOL_ONLY:
            rc =
                cli_fail(EXIT_UNSUPPORTED, "imgtool option '--%s' is not supported by airlock sign",
                         sign_longopts[li].name);
            break;
        case 'E':
        case 'd':
        case 'x':
        case 'c':
            rc = cli_fail(EXIT_UNSUPPORTED, "imgtool option '-%c' is not supported by airlock sign",
                          c);
            break;
        default:
            rc = cli_bad_option(c, argv);
            break;
        }
        if (rc != EXIT_OK_) {
            return rc;
        }
    }

    if (argc - optind != 2) {
        return cli_fail(EXIT_USAGE,
                        "expected INFILE and OUTFILE, got %d argument%s (see 'airlock "
                        "sign --help')",
                        argc - optind, argc - optind == 1 ? "" : "s");
    }
    o->infile = argv[optind];
    o->outfile = argv[optind + 1];
    if (!o->have_hdr_size) {
        return cli_fail(EXIT_USAGE, "missing required option -H/--header-size (e.g. -H 0x200)");
    }
    if (!o->have_version) {
        return cli_fail(EXIT_USAGE, "missing required option -v/--version (e.g. -v 1.2.3+4)");
    }
    if (!o->have_slot_size) {
        return cli_fail(EXIT_USAGE, "missing required option -S/--slot-size (e.g. -S 0x40000)");
    }
    if (o->load_addr != 0 && o->rom_fixed != 0) {
        return cli_fail(EXIT_USAGE, "-L/--load-addr and -F/--rom-fixed cannot be used together");
    }
    if (o->test || o->confirm) {
        o->pad = true; /* a trailer request needs the trailer */
    }
    if (o->pad && o->slot_size == 0) {
        return cli_fail(EXIT_USAGE, "--pad/--test/--confirm need a non-zero -S/--slot-size");
    }
    if (o->max_align == 0) {
        o->max_align = o->align > AIRLOCK_TRAILER_DEFAULT_MAX_ALIGN
                           ? o->align
                           : AIRLOCK_TRAILER_DEFAULT_MAX_ALIGN;
    }
    if (has_hex_ext(o->infile) || has_hex_ext(o->outfile)) {
        return cli_fail(EXIT_UNSUPPORTED,
                        "Intel HEX files are not supported ('%s'); use raw binaries (e.g. "
                        "objcopy -O binary)",
                        has_hex_ext(o->infile) ? o->infile : o->outfile);
    }
    if (o->have_sec_cnt && o->sec_cnt_auto) {
        o->sec_cnt = ((uint32_t)o->version.major << 24) + ((uint32_t)o->version.minor << 16) +
                     o->version.revision;
    }
    return EXIT_OK_;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Append one TLV at area[*pos] and remember it for the report. */
static void add_tlv(struct sign_result *r, uint8_t *area, size_t *pos, uint16_t type,
                    const uint8_t *val, size_t len, bool prot)
{
    put16(area + *pos, type);
    put16(area + *pos + 2, (uint16_t)len);
    memcpy(area + *pos + AIRLOCK_TLV_HDR_SIZE, val, len);
    *pos += AIRLOCK_TLV_HDR_SIZE + len;
    r->tlvs[r->ntlvs].type = type;
    r->tlvs[r->ntlvs].len = (uint16_t)len;
    r->tlvs[r->ntlvs].prot = prot;
    r->ntlvs++;
}

/*
 * Build the image exactly as imgtool does: [pad-]header, payload, protected
 * TLVs (hashed), unprotected TLVs (hash, key, signature), then the optional
 * slot padding with the trailer. data/len is INFILE.
 */
static int build(const struct sign_opts *o, const cli_key_t *key, const uint8_t *data, size_t len,
                 struct sign_result *r)
{
    uint8_t prot[AIRLOCK_TLV_INFO_SIZE + AIRLOCK_TLV_HDR_SIZE + 4];
    uint8_t hdr_raw[AIRLOCK_IMAGE_HEADER_SIZE];
    uint8_t *body = NULL, *unprot = NULL, *sig = NULL;
    size_t body_len, payload_len, pos, unprot_cap, i;
    uint64_t total;
    int rc;

    /* Header area: erased bytes we add, or zeros INFILE must already have. */
    if (o->pad_header) {
        payload_len = (size_t)o->hdr_size + len;
    } else {
        if (len < o->hdr_size) {
            return cli_fail(EXIT_USAGE,
                            "INFILE '%s' is %zu bytes, shorter than -H/--header-size %u; use "
                            "--pad-header to prepend the header",
                            o->infile, len, o->hdr_size);
        }
        for (i = 0; i < o->hdr_size; i++) {
            if (data[i] != 0) {
                return cli_fail(EXIT_USAGE,
                                "header padding was not requested and INFILE '%s' does not start "
                                "with %u zero bytes (first non-zero byte 0x%02x at offset %zu); "
                                "use --pad-header",
                                o->infile, o->hdr_size, data[i], i);
            }
        }
        payload_len = len;
    }
    if (payload_len - o->hdr_size > UINT32_MAX - 0x20000u) {
        return cli_fail(EXIT_TOO_BIG, "INFILE '%s' is too large for an image (%zu bytes)",
                        o->infile, len);
    }

    /* Protected area: just SEC_CNT when asked for. */
    r->prot_len = 0;
    if (o->have_sec_cnt) {
        uint8_t cnt[4];

        pos = AIRLOCK_TLV_INFO_SIZE;
        put32(cnt, o->sec_cnt);
        add_tlv(r, prot, &pos, AIRLOCK_TLV_SEC_CNT, cnt, sizeof(cnt), true);
        put16(prot, AIRLOCK_TLV_PROT_INFO_MAGIC);
        put16(prot + 2, (uint16_t)pos);
        r->prot_len = (uint32_t)pos;
    }

    r->hdr.magic = AIRLOCK_IMAGE_MAGIC;
    r->hdr.load_addr = o->rom_fixed != 0 ? o->rom_fixed : o->load_addr;
    r->hdr.hdr_size = (uint16_t)o->hdr_size;
    r->hdr.protect_tlv_size = (uint16_t)r->prot_len;
    r->hdr.img_size = (uint32_t)(payload_len - o->hdr_size);
    r->hdr.flags = (o->load_addr != 0 ? AIRLOCK_IMAGE_F_RAM_LOAD : 0u) |
                   (o->rom_fixed != 0 ? AIRLOCK_IMAGE_F_ROM_FIXED : 0u) |
                   (o->non_bootable ? AIRLOCK_IMAGE_F_NON_BOOTABLE : 0u);
    r->hdr.version = o->version;
    r->hdr.pad = 0;
    airlock_header_encode(&r->hdr, hdr_raw);

    /* The hashed region: header area + payload + protected TLVs. */
    body_len = payload_len + r->prot_len;
    body = malloc(body_len);
    if (body == NULL) {
        return cli_fail(EXIT_INTERNAL, "out of memory (%zu bytes)", body_len);
    }
    if (o->pad_header) {
        memset(body, o->erased, o->hdr_size);
        memcpy(body + o->hdr_size, data, len);
    } else {
        memcpy(body, data, len);
    }
    memcpy(body, hdr_raw, sizeof(hdr_raw));
    memcpy(body + payload_len, prot, r->prot_len);

    r->hash_alg = key->pkey != NULL ? cli_key_hash_alg(key->type) : AIRLOCK_HASH_SHA256;
    r->digest_len = airlock_hash_len(r->hash_alg);
    rc = cli_digest(r->hash_alg, body, body_len, r->digest);

    /* Unprotected area: hash, then KEYHASH or PUBKEY, then the signature. */
    r->sig_len = 0;
    if (rc == EXIT_OK_ && key->pkey != NULL) {
        rc =
            cli_key_sign(key, r->hash_alg, r->digest, r->digest_len, o->pad_sig, &sig, &r->sig_len);
        r->sig_tlv = airlock_key_sig_tlv(key->type);
    }
    unprot_cap = AIRLOCK_TLV_INFO_SIZE + 3 * AIRLOCK_TLV_HDR_SIZE + AIRLOCK_HASH_MAX_LEN +
                 (key->pkey != NULL ? key->der_len + r->sig_len + AIRLOCK_HASH_MAX_LEN : 0);
    if (rc == EXIT_OK_ && (unprot = malloc(unprot_cap)) == NULL) {
        rc = cli_fail(EXIT_INTERNAL, "out of memory");
    }
    if (rc == EXIT_OK_) {
        pos = AIRLOCK_TLV_INFO_SIZE;
        add_tlv(r, unprot, &pos, (uint16_t)r->hash_alg, r->digest, r->digest_len, false);
        if (key->pkey != NULL) {
            if (o->full_pubkey) {
                add_tlv(r, unprot, &pos, AIRLOCK_TLV_PUBKEY, key->der, key->der_len, false);
            } else {
                r->keyhash_len = airlock_hash_len(r->hash_alg);
                rc = cli_digest(r->hash_alg, key->der, key->der_len, r->keyhash);
                add_tlv(r, unprot, &pos, AIRLOCK_TLV_KEYHASH, r->keyhash, r->keyhash_len, false);
            }
            add_tlv(r, unprot, &pos, r->sig_tlv, sig, r->sig_len, false);
        }
        put16(unprot, AIRLOCK_TLV_INFO_MAGIC);
        put16(unprot + 2, (uint16_t)pos); /* < 0x10000: at most ~1 KiB of TLVs */
        r->unprot_len = (uint32_t)pos;
    }
    free(sig);
    if (rc != EXIT_OK_) {
        free(body);
        free(unprot);
        return rc;
    }

    /* imgtool checks the fit whenever a slot size is given, padded or not. */
    total = (uint64_t)body_len + r->unprot_len;
    r->image_len = (uint32_t)total;
    r->max_align = o->max_align;
    r->trailer_size =
        airlock_trailer_size(o->align, o->max_align, o->max_sectors, o->overwrite_only);
    if (o->slot_size > 0 && total + r->trailer_size > o->slot_size) {
        rc = cli_fail(EXIT_TOO_BIG,
                      "image (0x%llx = %llu bytes: header + payload + TLVs) + trailer (0x%x = %u "
                      "bytes) exceeds -S/--slot-size 0x%x = %u bytes by %llu bytes",
                      (unsigned long long)total, (unsigned long long)total, r->trailer_size,
                      r->trailer_size, o->slot_size, o->slot_size,
                      (unsigned long long)(total + r->trailer_size - o->slot_size));
        free(body);
        free(unprot);
        return rc;
    }

    r->file_len = o->pad ? o->slot_size : (size_t)total;
    r->file = malloc(r->file_len);
    if (r->file == NULL) {
        free(body);
        free(unprot);
        return cli_fail(EXIT_INTERNAL, "out of memory (%zu bytes)", r->file_len);
    }
    memcpy(r->file, body, body_len);
    memcpy(r->file + body_len, unprot, r->unprot_len);
    free(body);
    free(unprot);
    if (o->pad) {
        airlock_trailer_layout_t lay;

        memset(r->file + total, o->erased, r->file_len - total);
        airlock_trailer_magic(o->max_align, r->file + r->file_len - AIRLOCK_TRAILER_MAGIC_SIZE);
        if (o->confirm && !o->overwrite_only &&
            airlock_trailer_layout(o->slot_size, o->max_align, &lay) == 0) {
            r->file[lay.image_ok] = 0x01;
        }
    }
    return EXIT_OK_;
}

static int mem_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    memcpy(buf, (const uint8_t *)ctx + off, len);
    return 0;
}

/*
 * Parse and verify the finished file with core, as a device would: the
 * image must never leave this tool unless airlock itself accepts it.
 */
static int self_check(const cli_key_t *key, const struct sign_result *r)
{
    airlock_source_t src = {mem_read, r->file, (uint32_t)r->file_len};
    airlock_pubkey_t pub = {key->type, key->der, key->der_len};
    airlock_verify_cfg_t cfg = {&airlock_crypto_openssl, key->pkey ? &pub : NULL,
                                key->pkey ? 1u : 0u, NULL, 0};
    airlock_verify_result_t res;
    airlock_err_detail_t det;
    airlock_image_t img;
    int err;

    memset(&det, 0, sizeof(det));
    err = airlock_image_parse(&src, &img, &det);
    if (err == 0) {
        err = airlock_image_verify(&src, &img, &cfg, &res, &det);
    }
    if (err != 0) {
        return cli_fail(EXIT_INTERNAL,
                        "internal error: the image just built does not verify (%s: %s, field %s "
                        "at offset 0x%x); nothing was written",
                        airlock_errname(err), airlock_strerror(err), det.field ? det.field : "-",
                        det.offset);
    }
    return EXIT_OK_;
}

static const char *hash_name(int alg)
{
    return alg == AIRLOCK_HASH_SHA384 ? "sha384" : alg == AIRLOCK_HASH_SHA512 ? "sha512" : "sha256";
}

static int report_json(const struct sign_opts *o, const cli_key_t *key, const struct sign_result *r)
{
    char vbuf[32], digest[2 * AIRLOCK_HASH_MAX_LEN + 1], keyhash[2 * AIRLOCK_HASH_MAX_LEN + 1];
    json_t *obj, *tlvs;
    size_t i;
    int rc = EXIT_OK_;

    tlvs = json_array();
    for (i = 0; tlvs != NULL && i < r->ntlvs; i++) {
        json_array_append_new(tlvs, json_pack("{s:i, s:s, s:i, s:b}", "type", r->tlvs[i].type,
                                              "name", airlock_tlv_name(r->tlvs[i].type), "len",
                                              r->tlvs[i].len, "protected", r->tlvs[i].prot));
    }
    obj = json_pack(
        "{s:s, s:s, s:s, s:i, s:I, s:i, s:I, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, "
        "s:o, s:I, s:I, s:b, s:I, s:I, s:b}",
        "file", o->outfile, "infile", o->infile, "version",
        cli_version_format(&r->hdr.version, vbuf, sizeof(vbuf)), "hdr_size", (int)r->hdr.hdr_size,
        "img_size", (json_int_t)r->hdr.img_size, "protect_tlv_size", (int)r->hdr.protect_tlv_size,
        "load_addr", (json_int_t)r->hdr.load_addr, "flags", (json_int_t)r->hdr.flags, "hash_alg",
        hash_name(r->hash_alg), "hash", cli_hex(r->digest, r->digest_len, digest), "key_type",
        key->pkey ? json_string(airlock_key_type_name(key->type)) : json_null(), "keyhash",
        r->keyhash_len ? json_string(cli_hex(r->keyhash, r->keyhash_len, keyhash)) : json_null(),
        "public_key_format",
        key->pkey ? json_string(o->full_pubkey ? "full" : "hash") : json_null(), "signature_tlv",
        key->pkey ? json_string(airlock_tlv_name(r->sig_tlv)) : json_null(), "security_counter",
        o->have_sec_cnt ? json_integer((json_int_t)o->sec_cnt) : json_null(), "tlvs",
        tlvs ? tlvs : json_null(), "image_size", (json_int_t)r->image_len, "file_size",
        (json_int_t)r->file_len, "padded", o->pad, "slot_size", (json_int_t)o->slot_size,
        "trailer_size", (json_int_t)r->trailer_size, "image_ok",
        o->pad && o->confirm && !o->overwrite_only);
    if (obj == NULL || json_dumpf(obj, stdout, JSON_INDENT(2)) != 0) {
        rc = cli_fail(EXIT_INTERNAL, "cannot produce JSON output");
    } else {
        fputc('\n', stdout);
        fflush(stdout);
    }
    json_decref(obj);
    return rc;
}

static void report_line(const struct sign_opts *o, const cli_key_t *key,
                        const struct sign_result *r)
{
    char vbuf[32], digest[2 * AIRLOCK_HASH_MAX_LEN + 1], signer[160] = "hash only", pad[96] = "";

    cli_hex(r->digest, r->digest_len, digest);
    if (key->pkey != NULL) {
        char kh[2 * AIRLOCK_HASH_MAX_LEN + 1];

        snprintf(signer, sizeof(signer), "signed %s (%s %s)", airlock_key_type_name(key->type),
                 o->full_pubkey ? "PUBKEY" : "keyhash",
                 o->full_pubkey ? "embedded" : cli_hex(r->keyhash, 8, kh));
    }
    if (o->pad) {
        snprintf(pad, sizeof(pad), ", padded to slot 0x%x%s", o->slot_size,
                 o->confirm ? " (confirmed)"
                 : o->test  ? " (test)"
                            : "");
    }
    cli_note("wrote '%s': version %s, %u-byte payload, %s %s, %s%s; %zu bytes", o->outfile,
             cli_version_format(&r->hdr.version, vbuf, sizeof(vbuf)), r->hdr.img_size,
             hash_name(r->hash_alg), digest, signer, pad, r->file_len);
}

int cmd_sign(int argc, char **argv)
{
    struct sign_opts o;
    struct sign_result r;
    cli_key_t key;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    rc = parse_sign_opts(argc, argv, &o);
    if (rc != EXIT_OK_) {
        return rc < 0 ? EXIT_OK_ : rc; /* -1: --help was printed */
    }
    memset(&key, 0, sizeof(key));
    memset(&r, 0, sizeof(r));

    rc = cli_read_file(o.infile, "INFILE", &data, &len);
    if (rc == EXIT_OK_ && o.key_path != NULL) {
        rc = cli_key_load(o.key_path, &key);
        if (rc == EXIT_OK_ && !key.is_private) {
            rc = cli_fail(EXIT_KEY,
                          "-k/--key '%s' is a public %s key; signing needs the private key",
                          o.key_path, airlock_key_type_name(key.type));
        }
    }
    if (rc == EXIT_OK_) {
        rc = build(&o, &key, data, len, &r);
    }
    if (rc == EXIT_OK_) {
        rc = self_check(&key, &r);
    }
    if (rc == EXIT_OK_) {
        rc = cli_write_atomic(o.outfile, "OUTFILE", r.file, r.file_len, 0666, true);
    }
    if (rc == EXIT_OK_) {
        if (o.json) {
            rc = report_json(&o, &key, &r);
        } else if (!o.quiet) {
            report_line(&o, &key, &r);
        }
    }
    free(data);
    free(r.file);
    cli_key_free(&key);
    return rc;
}
