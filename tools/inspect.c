/*
 * `airlock verify` and `airlock dump`: check and show an image with the
 * same core code a bootloader runs. The image is streamed from the file
 * with pread (never loaded whole), so any size works. Read-only: these
 * commands never write to the image or anything else.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "airlock/crypto_mbedtls.h"
#include "airlock/crypto_openssl.h"
#include "airlock/fd_source.h"
#include "airlock/image.h"
#include "airlock/trailer.h"
#include "cli.h"
#include "exitcodes.h"
#include "pkey.h"
#include "util.h"


struct file_src {
    int fd;
    const char *path;
};

static int open_image(const char *path, struct file_src *f, airlock_source_t *src)
{
    struct stat st;
    f->path = path;
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0) {
        return cli_fail(EXIT_IO, "cannot open image %s: %s", path, strerror(errno));
    }
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f->fd);
        return cli_fail(EXIT_IO, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > UINT32_MAX) {
        close(f->fd);
        return cli_fail(EXIT_TOO_BIG, "%s is %lld bytes; images are limited to 4 GiB", path,
                        (long long)st.st_size);
    }
    airlock_fd_source(src, &f->fd, (uint32_t)st.st_size);
    return EXIT_OK_;
}

static const airlock_crypto_t *backend_by_name(const char *name)
{
    if (strcmp(name, "openssl") == 0) {
        return &airlock_crypto_openssl;
    }
    if (strcmp(name, "mbedtls") == 0) {
        return &airlock_crypto_mbedtls;
    }
    return NULL;
}

static void version_str(const airlock_version_t *v, char *out, size_t n)
{
    snprintf(out, n, "%u.%u.%u+%u", v->major, v->minor, v->revision, (unsigned)v->build);
}

static const char *hash_name(int alg)
{
    return alg ? airlock_tlv_name((uint16_t)alg) : "none";
}

/* Read len (<= 64) bytes of the image as hex, or "" if unreadable. */
static char *hex_at(const airlock_source_t *src, uint32_t off, uint32_t len, char *out)
{
    uint8_t buf[64];
    out[0] = '\0';
    if (len > sizeof(buf) || (uint64_t)off + len > src->size ||
        src->read(src->ctx, off, buf, len) != 0) {
        return out;
    }
    return cli_hex(buf, len, out);
}

/*
 * One sentence saying what is wrong: the library's message, then the field,
 * offset and expected/found values, then advice specific to the error.
 */
static void describe(int rc, const airlock_err_detail_t *det, const airlock_source_t *src,
                     const airlock_verify_result_t *res, const cli_keyring_t *ring, char *out,
                     size_t n)
{
    size_t len = 0;
    char hex[2 * AIRLOCK_HASH_MAX_LEN + 1];
    char hex2[2 * AIRLOCK_HASH_MAX_LEN + 1];
    len += (size_t)snprintf(out + len, n - len, "%s", airlock_strerror(rc));
    if (det->field && len < n) {
        len += (size_t)snprintf(out + len, n - len, ": %s at offset %u (0x%x)", det->field,
                                (unsigned)det->offset, (unsigned)det->offset);
    }
    if (det->tlv_type && len < n) {
        len += (size_t)snprintf(out + len, n - len, ", TLV 0x%02x %s", det->tlv_type,
                                airlock_tlv_name(det->tlv_type));
    }
    if (det->has_values && len < n) {
        len += (size_t)snprintf(out + len, n - len,
                                rc == AIRLOCK_ERR_OUT_OF_BOUNDS
                                    ? ": limit %u (0x%x), needs %u (0x%x)"
                                    : ": expected %u (0x%x), found %u (0x%x)",
                                (unsigned)det->expected, (unsigned)det->expected,
                                (unsigned)det->found, (unsigned)det->found);
    }
    if (len >= n) {
        return;
    }
    switch (rc) {
    case AIRLOCK_ERR_HASH_MISMATCH:
        snprintf(out + len, n - len, "; image says %s, contents hash to %s",
                 hex_at(src, det->offset + AIRLOCK_TLV_HDR_SIZE, (uint32_t)res->digest_len, hex2),
                 cli_hex(res->digest, res->digest_len, hex));
        break;
    case AIRLOCK_ERR_UNKNOWN_KEY: {
        len += (size_t)snprintf(out + len, n - len, "; image KEYHASH %s, trusted:",
                                hex_at(src, res->keyhash_off, res->keyhash_len, hex));
        for (size_t i = 0; i < ring->n && len < n; i++) {
            uint8_t kh[AIRLOCK_HASH_MAX_LEN];
            int alg = res->hash_alg ? res->hash_alg : cli_key_hash_alg(ring->pub[i].type);
            if (cli_digest(alg, ring->pub[i].der, ring->pub[i].der_len, kh) == EXIT_OK_) {
                len += (size_t)snprintf(out + len, n - len, " %s (%s, hash %s)", ring->paths[i],
                                        airlock_key_type_name(ring->pub[i].type),
                                        cli_hex(kh, airlock_hash_len(alg), hex));
            }
        }
        break;
    }
    case AIRLOCK_ERR_KEY_MISMATCH:
        len += (size_t)snprintf(out + len, n - len, "; image is hashed with %s, trusted key%s:",
                                hash_name(res->hash_alg), ring->n > 1 ? "s" : "");
        for (size_t i = 0; i < ring->n && len < n; i++) {
            len += (size_t)snprintf(out + len, n - len, " %s is %s (signs with %s)",
                                    ring->paths[i], airlock_key_type_name(ring->pub[i].type),
                                    hash_name(airlock_key_default_hash(ring->pub[i].type)));
        }
        break;
    case AIRLOCK_ERR_UNSUPPORTED:
        snprintf(out + len, n - len, "; try --backend openssl");
        break;
    default:
        break;
    }
}

static json_t *error_json(int rc, const airlock_err_detail_t *det, const char *msg)
{
    json_t *e = json_pack("{s:s, s:i, s:i, s:s}", "code", airlock_errname(rc), "errno", rc,
                          "exit", airlock_exit_for_err(rc), "message", msg);
    if (det->field) {
        json_object_set_new(e, "field", json_string(det->field));
        json_object_set_new(e, "offset", json_integer(det->offset));
    }
    if (det->tlv_type) {
        json_object_set_new(e, "tlv_type", json_integer(det->tlv_type));
    }
    if (det->has_values) {
        json_object_set_new(e, "expected", json_integer(det->expected));
        json_object_set_new(e, "found", json_integer(det->found));
    }
    return e;
}

static json_t *header_json(const airlock_image_header_t *h)
{
    char ver[48], magic[16], flags[16];
    version_str(&h->version, ver, sizeof(ver));
    snprintf(magic, sizeof(magic), "0x%08x", (unsigned)h->magic);
    snprintf(flags, sizeof(flags), "0x%x", (unsigned)h->flags);
    return json_pack("{s:s, s:I, s:i, s:i, s:I, s:s, s:s, s:I}", "magic", magic, "load_addr",
                     (json_int_t)h->load_addr, "hdr_size", h->hdr_size, "protect_tlv_size",
                     h->protect_tlv_size, "img_size", (json_int_t)h->img_size, "flags", flags,
                     "version", ver, "pad", (json_int_t)h->pad);
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
}

/* Options shared by verify and dump. */
struct inspect_opts {
    cli_keyring_t ring;
    const airlock_crypto_t *crypto;
    const char *backend;
    int json;
    uint32_t max_align;
    uint8_t erased;
    const char *path;
};

enum { OPT_JSON = 1000, OPT_BACKEND, OPT_MAX_ALIGN, OPT_ERASED };

static const struct option inspect_long[] = {
    {"key", required_argument, NULL, 'k'},
    {"json", no_argument, NULL, OPT_JSON},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"max-align", required_argument, NULL, OPT_MAX_ALIGN},
    {"erased-val", required_argument, NULL, OPT_ERASED},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_inspect(int argc, char **argv, struct inspect_opts *o, void (*usage)(FILE *))
{
    int c;
    memset(o, 0, sizeof(*o));
    o->backend = "openssl";
    o->erased = 0xff;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:h", inspect_long, NULL)) != -1) {
        int rc = EXIT_OK_;
        switch (c) {
        case 'k':
            rc = cli_keyring_add(&o->ring, optarg);
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_BACKEND:
            o->backend = optarg;
            break;
        case OPT_MAX_ALIGN:
            rc = cli_parse_u32_opt("--max-align", optarg, 32, &o->max_align);
            if (rc == EXIT_OK_ && o->max_align != 8 && o->max_align != 16 && o->max_align != 32) {
                rc = cli_fail(EXIT_USAGE, "--max-align must be 8, 16 or 32, not %s", optarg);
            }
            break;
        case OPT_ERASED:
            if (strcmp(optarg, "0") == 0) {
                o->erased = 0x00;
            } else if (strcmp(optarg, "0xff") == 0) {
                o->erased = 0xff;
            } else {
                rc = cli_fail(EXIT_USAGE, "--erased-val must be 0 or 0xff, not %s", optarg);
            }
            break;
        case 'h':
            usage(stdout);
            cli_keyring_free(&o->ring);
            return -1;
        default:
            usage(stderr);
            rc = EXIT_USAGE;
            break;
        }
        if (rc) {
            cli_keyring_free(&o->ring);
            return rc;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        cli_keyring_free(&o->ring);
        return cli_fail(EXIT_USAGE, "expected exactly one IMAGE argument");
    }
    o->path = argv[optind];
    o->crypto = backend_by_name(o->backend);
    if (!o->crypto) {
        cli_keyring_free(&o->ring);
        return cli_fail(EXIT_USAGE, "--backend must be openssl or mbedtls, not %s", o->backend);
    }
    return EXIT_OK_;
}

/* Parse and verify; fills everything the reports need. */
struct outcome {
    int parse_rc;
    int verify_rc;
    airlock_image_t img;
    airlock_verify_result_t res;
    airlock_err_detail_t det;
    char msg[2048];
};

static void inspect(const airlock_source_t *src, const struct inspect_opts *o,
                    struct outcome *out)
{
    static uint8_t buf[1 << 16];
    memset(out, 0, sizeof(*out));
    out->res.key_index = -1;
    out->parse_rc = airlock_image_parse(src, &out->img, &out->det);
    if (out->parse_rc == 0) {
        airlock_verify_cfg_t cfg = {o->crypto, o->ring.pub, o->ring.n, buf, sizeof(buf)};
        out->verify_rc = airlock_image_verify(src, &out->img, &cfg, &out->res, &out->det);
    }
    int rc = out->parse_rc ? out->parse_rc : out->verify_rc;
    if (rc) {
        describe(rc, &out->det, src, &out->res, &o->ring, out->msg, sizeof(out->msg));
    }
}

/*
 * Options, open the image, parse and verify it: the common start of verify
 * and dump. Returns 0, an exit code, or -1 after --help.
 */
static int start_inspect(int argc, char **argv, void (*usage)(FILE *), struct inspect_opts *o,
                         struct file_src *f, airlock_source_t *src, struct outcome *out)
{
    int rc = parse_inspect(argc, argv, o, usage);
    if (rc) {
        return rc;
    }
    rc = open_image(o->path, f, src);
    if (rc) {
        cli_keyring_free(&o->ring);
        return rc;
    }
    inspect(src, o, out);
    return 0;
}

static void verify_usage(FILE *f)
{
    fprintf(f,
            "usage: airlock verify [-k KEY.pem]... [--json] [--backend openssl|mbedtls] IMAGE\n"
            "\n"
            "Check IMAGE's structure and hash; with -k also that a signature verifies with\n"
            "one of the given public (or private) keys. Several -k give a trusted key ring:\n"
            "the image's KEYHASH picks the key. Without -k only the hash is checked.\n"
            "\n"
            "  -k, --key FILE     trusted key (PEM or DER), repeatable\n"
            "      --json         print the result as JSON on stdout\n"
            "      --backend B    crypto backend: openssl (default) or mbedtls\n"
            "  -h, --help         this help\n"
            "\n"
            "Exit codes: 0 ok, 3 I/O, 4 key, 5 malformed image, 6 hash, 7 signature,\n"
            "8 untrusted key, 9 unsupported algorithm (see docs/cli.md).\n");
}

int cmd_verify(int argc, char **argv)
{
    struct inspect_opts o;
    struct file_src f;
    airlock_source_t src;
    struct outcome out;
    int rc = start_inspect(argc, argv, verify_usage, &o, &f, &src, &out);
    if (rc) {
        return rc < 0 ? EXIT_OK_ : rc;
    }
    int err = out.parse_rc ? out.parse_rc : out.verify_rc;
    if (o.json) {
        json_t *j = json_pack("{s:s, s:b, s:s}", "file", o.path, "ok", err == 0, "backend",
                              o.crypto->name);
        if (out.parse_rc == 0) {
            char hex[2 * AIRLOCK_HASH_MAX_LEN + 1];
            json_object_set_new(j, "header", header_json(&out.img.hdr));
            json_object_set_new(
                j, "hash",
                json_pack("{s:s, s:s, s:b}", "type", hash_name(out.res.hash_alg), "digest",
                          out.res.digest_len ? cli_hex(out.res.digest, out.res.digest_len, hex)
                                             : "",
                          "ok", out.res.hash_ok));
            if (out.res.has_sec_cnt) {
                json_object_set_new(j, "security_counter", json_integer(out.res.sec_cnt));
            }
            if (out.res.key_index >= 0) {
                size_t k = (size_t)out.res.key_index;
                json_object_set_new(j, "signature",
                                    json_pack("{s:s, s:s, s:s}", "type",
                                              airlock_tlv_name(out.res.sig_type), "key",
                                              o.ring.paths[k], "key_type",
                                              airlock_key_type_name(o.ring.pub[k].type)));
            }
        }
        if (err) {
            json_object_set_new(j, "error", error_json(err, &out.det, out.msg));
        }
        print_json(j);
        json_decref(j);
    } else if (err == 0) {
        char ver[48];
        version_str(&out.img.hdr.version, ver, sizeof(ver));
        if (out.res.key_index >= 0) {
            size_t k = (size_t)out.res.key_index;
            printf("%s: OK (version %s, %s hash, %s signature by %s [%s])\n", o.path, ver,
                   hash_name(out.res.hash_alg), airlock_tlv_name(out.res.sig_type),
                   o.ring.paths[k], airlock_key_type_name(o.ring.pub[k].type));
        } else {
            printf("%s: OK (version %s, %s hash; signature not checked: no -k)\n", o.path, ver,
                   hash_name(out.res.hash_alg));
        }
    }
    if (err && !o.json) {
        cli_fail(airlock_exit_for_err(err), "%s: %s", o.path, out.msg);
    }
    close(f.fd);
    cli_keyring_free(&o.ring);
    return airlock_exit_for_err(err);
}

static void dump_usage(FILE *f)
{
    fprintf(f,
            "usage: airlock dump [--json] [-k KEY.pem]... [--max-align 8|16|32]\n"
            "                    [--erased-val 0|0xff] [--backend openssl|mbedtls] IMAGE\n"
            "\n"
            "Show IMAGE's header fields, every TLV, whether the hash matches, which key\n"
            "signed it (its KEYHASH; with -k, whether the signature verifies) and, when the\n"
            "image is padded to a slot, the trailer state.\n"
            "\n"
            "  -k, --key FILE       trusted key to check the signature with, repeatable\n"
            "      --json           machine-readable output\n"
            "      --max-align N    trailer alignment (default: recognised from the magic)\n"
            "      --erased-val V   erased flash value for the trailer (default 0xff)\n"
            "      --backend B      crypto backend: openssl (default) or mbedtls\n"
            "  -h, --help           this help\n");
}

static const char *field_state(uint8_t s)
{
    return s == AIRLOCK_FIELD_SET ? "set" : s == AIRLOCK_FIELD_UNSET ? "unset" : "bad";
}

static const char *swap_name(uint8_t t)
{
    switch (t) {
    case 0:
        return "erased";
    case AIRLOCK_SWAP_NONE:
        return "NONE";
    case AIRLOCK_SWAP_TEST:
        return "TEST";
    case AIRLOCK_SWAP_PERM:
        return "PERM";
    case AIRLOCK_SWAP_REVERT:
        return "REVERT";
    default:
        return "unknown";
    }
}

/* What a bootloader would make of this trailer if it sat in the secondary slot. */
static const char *trailer_request(const airlock_trailer_t *t)
{
    if (t->magic != AIRLOCK_FIELD_SET) {
        return "none (no valid magic)";
    }
    if (t->image_ok == AIRLOCK_FIELD_SET) {
        return "PERM (install permanently)";
    }
    if (t->image_ok == AIRLOCK_FIELD_UNSET) {
        return "TEST (install for a trial boot, revert unless confirmed)";
    }
    return "invalid (image_ok holds neither 0x01 nor the erased value)";
}

static json_t *tlvs_json(const airlock_source_t *src, const airlock_image_t *img)
{
    json_t *arr = json_array();
    airlock_tlv_iter_t it;
    airlock_tlv_t t;
    airlock_tlv_iter_init(&it, img);
    while (airlock_tlv_next(&it, src, &t, NULL) == 1) {
        char hex[2 * 64 + 1];
        json_t *e = json_pack("{s:s, s:i, s:s, s:i, s:I}", "area",
                              t.prot ? "protected" : "unprotected", "type", t.type, "name",
                              airlock_tlv_name(t.type), "len", t.len, "offset",
                              (json_int_t)t.off - AIRLOCK_TLV_HDR_SIZE);
        if (t.len <= 64) {
            json_object_set_new(e, "value", json_string(hex_at(src, t.off, t.len, hex)));
        }
        json_array_append_new(arr, e);
    }
    return arr;
}

static void print_tlvs(const airlock_source_t *src, const airlock_image_t *img)
{
    airlock_tlv_iter_t it;
    airlock_tlv_t t;
    int i = 0;
    if (img->prot_len) {
        printf("protected TLVs: offset %u, %u bytes\n", (unsigned)img->prot_off,
               (unsigned)img->prot_len);
    } else {
        printf("protected TLVs: none\n");
    }
    bool unprot_shown = false;
    airlock_tlv_iter_init(&it, img);
    while (airlock_tlv_next(&it, src, &t, NULL) == 1) {
        char hex[2 * 64 + 1];
        if (!t.prot && !unprot_shown) {
            printf("TLVs: offset %u, %u bytes\n", (unsigned)img->tlv_off,
                   (unsigned)img->tlv_len);
            unprot_shown = true;
        }
        printf("  [%d] 0x%02x %-12s len %4u  at %u", i++, t.type, airlock_tlv_name(t.type),
               t.len, (unsigned)(t.off - AIRLOCK_TLV_HDR_SIZE));
        if (t.type == AIRLOCK_TLV_SEC_CNT && t.len == 4) {
            uint8_t v[4];
            if (src->read(src->ctx, t.off, v, 4) == 0) {
                uint32_t sc = (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 |
                              (uint32_t)v[3] << 24;
                printf("  value %u (0x%08x)", (unsigned)sc, (unsigned)sc);
            }
        } else if (t.len <= 64) {
            printf("  %s", hex_at(src, t.off, t.len, hex));
        }
        printf("\n");
    }
}

int cmd_dump(int argc, char **argv)
{
    struct inspect_opts o;
    struct file_src f;
    airlock_source_t src;
    struct outcome out;
    airlock_trailer_t tr;
    int rc = start_inspect(argc, argv, dump_usage, &o, &f, &src, &out);
    if (rc) {
        return rc < 0 ? EXIT_OK_ : rc;
    }
    int err = out.parse_rc ? out.parse_rc : out.verify_rc;
    /* Bytes past the image: a padded slot, whose trailer we can show. */
    bool padded = out.parse_rc == 0 && src.size > out.img.end;
    int trc = padded ? airlock_trailer_read(&src, o.max_align, o.erased, &tr) : -1;
    char hex[2 * AIRLOCK_HASH_MAX_LEN + 1];
    char ver[48];

    if (o.json) {
        json_t *j = json_pack("{s:s, s:I, s:b, s:s}", "file", o.path, "file_size",
                              (json_int_t)src.size, "ok", err == 0, "backend", o.crypto->name);
        if (src.size >= AIRLOCK_IMAGE_HEADER_SIZE) {
            /* the header as stored, even when it does not parse */
            uint8_t raw[AIRLOCK_IMAGE_HEADER_SIZE];
            airlock_image_header_t h;
            if (src.read(src.ctx, 0, raw, sizeof(raw)) == 0) {
                airlock_header_decode(raw, &h);
                json_object_set_new(j, "header", header_json(&h));
            }
        }
        if (out.parse_rc == 0) {
            json_object_set_new(j, "image_size", json_integer(out.img.end));
            json_object_set_new(j, "tlvs", tlvs_json(&src, &out.img));
            json_object_set_new(
                j, "hash",
                json_pack("{s:s, s:s, s:b}", "type", hash_name(out.res.hash_alg), "digest",
                          out.res.digest_len ? cli_hex(out.res.digest, out.res.digest_len, hex)
                                             : "",
                          "ok", out.res.hash_ok));
            if (out.res.has_sec_cnt) {
                json_object_set_new(j, "security_counter", json_integer(out.res.sec_cnt));
            }
            if (out.res.keyhash_off) {
                json_object_set_new(
                    j, "keyhash",
                    json_string(hex_at(&src, out.res.keyhash_off, out.res.keyhash_len, hex)));
            }
            json_t *sig = json_pack("{s:b}", "checked", o.ring.n > 0);
            if (out.res.key_index >= 0) {
                size_t k = (size_t)out.res.key_index;
                json_object_set_new(sig, "type", json_string(airlock_tlv_name(out.res.sig_type)));
                json_object_set_new(sig, "key", json_string(o.ring.paths[k]));
                json_object_set_new(sig, "key_type",
                                    json_string(airlock_key_type_name(o.ring.pub[k].type)));
            }
            json_object_set_new(j, "signature", sig);
        }
        if (trc == 0) {
            json_object_set_new(
                j, "trailer",
                json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:i, s:s}", "slot_size",
                          (json_int_t)src.size, "max_align", (json_int_t)tr.max_align, "magic",
                          tr.magic == AIRLOCK_FIELD_SET     ? "good"
                          : tr.magic == AIRLOCK_FIELD_UNSET ? "unset"
                                                            : "bad",
                          "image_ok", field_state(tr.image_ok), "copy_done",
                          field_state(tr.copy_done), "swap_type", swap_name(tr.swap_type),
                          "image_num", tr.image_num, "request", trailer_request(&tr)));
        }
        if (err) {
            json_object_set_new(j, "error", error_json(err, &out.det, out.msg));
        }
        print_json(j);
        json_decref(j);
    } else {
        printf("image: %s (%u bytes)\n", o.path, (unsigned)src.size);
        if (src.size >= AIRLOCK_IMAGE_HEADER_SIZE) {
            uint8_t raw[AIRLOCK_IMAGE_HEADER_SIZE];
            airlock_image_header_t h;
            if (src.read(src.ctx, 0, raw, sizeof(raw)) == 0) {
                airlock_header_decode(raw, &h);
                version_str(&h.version, ver, sizeof(ver));
                printf("header:\n");
                printf("  magic             0x%08x%s\n", (unsigned)h.magic,
                       h.magic == AIRLOCK_IMAGE_MAGIC ? "" : "  (WRONG)");
                printf("  load_addr         0x%08x\n", (unsigned)h.load_addr);
                printf("  hdr_size          %u (0x%x)\n", h.hdr_size, h.hdr_size);
                printf("  protect_tlv_size  %u\n", h.protect_tlv_size);
                printf("  img_size          %u (0x%x)\n", (unsigned)h.img_size,
                       (unsigned)h.img_size);
                printf("  flags             0x%08x%s%s%s%s%s\n", (unsigned)h.flags,
                       h.flags & AIRLOCK_IMAGE_F_PIC ? " PIC" : "",
                       h.flags & AIRLOCK_IMAGE_F_NON_BOOTABLE ? " NON_BOOTABLE" : "",
                       h.flags & AIRLOCK_IMAGE_F_RAM_LOAD ? " RAM_LOAD" : "",
                       h.flags & AIRLOCK_IMAGE_F_ROM_FIXED ? " ROM_FIXED" : "",
                       h.flags & (AIRLOCK_IMAGE_F_ENCRYPTED_AES128 |
                                  AIRLOCK_IMAGE_F_ENCRYPTED_AES256)
                           ? " ENCRYPTED"
                           : "");
                printf("  version           %s\n", ver);
            }
        }
        if (out.parse_rc == 0) {
            print_tlvs(&src, &out.img);
            printf("hash: %s %s\n", hash_name(out.res.hash_alg),
                   out.res.hash_ok ? "ok" : (out.res.hash_alg ? "MISMATCH" : "not checked"));
            if (out.res.digest_len) {
                printf("  digest %s\n", cli_hex(out.res.digest, out.res.digest_len, hex));
            }
            if (out.res.keyhash_off) {
                printf("signed by: key with hash %s\n",
                       hex_at(&src, out.res.keyhash_off, out.res.keyhash_len, hex));
            }
            if (out.res.key_index >= 0) {
                size_t k = (size_t)out.res.key_index;
                printf("signature: %s verifies with %s (%s)\n", airlock_tlv_name(out.res.sig_type),
                       o.ring.paths[k], airlock_key_type_name(o.ring.pub[k].type));
            } else if (o.ring.n == 0) {
                printf("signature: not checked (give -k KEY to check it)\n");
            }
        }
        if (trc == 0) {
            printf("trailer: slot of %u bytes, max-align %u\n", (unsigned)src.size,
                   (unsigned)tr.max_align);
            printf("  magic %s, image_ok %s, copy_done %s, swap_type %s\n",
                   tr.magic == AIRLOCK_FIELD_SET     ? "good"
                   : tr.magic == AIRLOCK_FIELD_UNSET ? "unset"
                                                     : "bad",
                   field_state(tr.image_ok), field_state(tr.copy_done), swap_name(tr.swap_type));
            printf("  request: %s\n", trailer_request(&tr));
        } else if (out.parse_rc == 0) {
            printf("trailer: none (file ends with the image)\n");
        }
        if (err) {
            cli_fail(airlock_exit_for_err(err), "%s: %s", o.path, out.msg);
        }
    }
    close(f.fd);
    cli_keyring_free(&o.ring);
    return airlock_exit_for_err(err);
}
