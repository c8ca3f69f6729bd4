/*
 * `airlock keygen` and `airlock getpub`: make signing keys and export the
 * public half in the forms a bootloader build needs. keygen never replaces
 * an existing key file without --force, and writes keys mode 0600.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "airlock/crypto.h"
#include "cli.h"
#include "pkey.h"
#include "util.h"

static void keygen_help(FILE *f)
{
    fprintf(f, "usage: airlock keygen -t TYPE -k KEY.pem [--force] [--json] [-q]\n"
               "\n"
               "Generate a signing key and write it as unencrypted PKCS#8 PEM (mode 0600).\n"
               "\n"
               "  -t, --type TYPE   ecdsa-p256 | ecdsa-p384 | rsa-2048 | rsa-3072 | ed25519\n"
               "  -k, --key FILE    where to write the private key\n"
               "  -f, --force       replace FILE if it exists (default: refuse)\n"
               "      --json        print {file, type, public_key_len, keyhash_alg, keyhash}\n"
               "  -q, --quiet       print nothing on success\n"
               "  -h, --help        this help\n"
               "\n"
               "Keep the key secret; give the bootloader its public half with 'airlock getpub'.\n");
}

/* Hash algorithm name as the image TLV calls it. */
static const char *hash_name(int alg)
{
    return alg == AIRLOCK_HASH_SHA384 ? "sha384" : alg == AIRLOCK_HASH_SHA512 ? "sha512" : "sha256";
}

/* KEYHASH of key: its embedded DER hashed with the key type's image hash. */
static int key_hash(const cli_key_t *key, uint8_t *out, size_t *len, int *alg)
{
    *alg = cli_key_hash_alg(key->type);
    *len = airlock_hash_len(*alg);
    return cli_digest(*alg, key->der, key->der_len, out);
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"type", required_argument, NULL, 't'},
        {"key", required_argument, NULL, 'k'},
        {"force", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'J'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *type_name = NULL, *path = NULL;
    bool force = false, json = false, quiet = false;
    cli_key_t key;
    char *pem = NULL;
    size_t pem_len = 0, hlen;
    uint8_t hash[AIRLOCK_HASH_MAX_LEN];
    char hex[2 * AIRLOCK_HASH_MAX_LEN + 1];
    int c, type, rc, alg;

    while ((c = getopt_long(argc, argv, ":t:k:fqh", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            type_name = optarg;
            break;
        case 'k':
            path = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'J':
            json = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            keygen_help(stdout);
            return EXIT_OK_;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (optind < argc) {
        return cli_fail(EXIT_USAGE, "unexpected argument '%s' (the key file goes after -k)",
                        argv[optind]);
    }
    if (type_name == NULL) {
        return cli_fail(EXIT_USAGE, "missing -t/--type (ecdsa-p256, ecdsa-p384, rsa-2048, "
                                    "rsa-3072 or ed25519)");
    }
    type = cli_key_type_from_name(type_name);
    if (type == AIRLOCK_KEY_NONE) {
        return cli_fail(EXIT_USAGE,
                        "-t/--type: unknown key type '%s' (use ecdsa-p256, ecdsa-p384, rsa-2048, "
                        "rsa-3072 or ed25519)",
                        type_name);
    }
    if (path == NULL) {
        return cli_fail(EXIT_USAGE, "missing -k/--key (the file to write the private key to)");
    }
    /* Cheap early refusal; cli_write_atomic re-checks atomically at the end. */
    if (!force && access(path, F_OK) == 0) {
        return cli_fail(EXIT_USAGE,
                        "key file '%s' already exists; not overwriting it (use --force)", path);
    }

    rc = cli_key_generate(type, &key);
    if (rc != EXIT_OK_) {
        return rc;
    }
    rc = cli_key_private_pem(&key, &pem, &pem_len);
    if (rc == EXIT_OK_) {
        rc = cli_write_atomic(path, "key file", pem, pem_len, 0600, force);
        OPENSSL_cleanse(pem, pem_len);
        free(pem);
    }
    if (rc == EXIT_OK_) {
        rc = key_hash(&key, hash, &hlen, &alg);
    }
    if (rc == EXIT_OK_) {
        cli_hex(hash, hlen, hex);
        if (json) {
            json_t *o =
                json_pack("{s:s, s:s, s:I, s:s, s:s}", "file", path, "type",
                          airlock_key_type_name(type), "public_key_len", (json_int_t)key.der_len,
                          "keyhash_alg", hash_name(alg), "keyhash", hex);

            if (o == NULL || json_dumpf(o, stdout, JSON_INDENT(2)) != 0) {
                rc = cli_fail(EXIT_INTERNAL, "cannot produce JSON output");
            } else {
                fputc('\n', stdout);
            }
            json_decref(o);
        } else if (!quiet) {
            cli_note("wrote %s private key to '%s' (keyhash %s); public half: airlock getpub -k %s",
                     airlock_key_type_name(type), path, hex, path);
        }
    }
    cli_key_free(&key);
    return rc;
}

static void getpub_help(FILE *f)
{
    fprintf(
        f, "usage: airlock getpub -k KEY.pem [--lang c|pem|raw|hex] [--hash] [--name ID] [-o OUT]\n"
           "\n"
           "Print the public key a bootloader trusts, from a private or public key file.\n"
           "The key bytes are what imgtool embeds: DER SubjectPublicKeyInfo for ECDSA and\n"
           "Ed25519, DER PKCS#1 RSAPublicKey for RSA.\n"
           "\n"
           "  -k, --key FILE      private or public key (PEM or DER)\n"
           "  -l, --lang LANG     c: a C array to compile into the bootloader (default)\n"
           "                      pem: the SubjectPublicKeyInfo PEM\n"
           "                      raw: the key bytes, binary\n"
           "                      hex: the key bytes as one hex line\n"
           "  -e, --encoding ENC  imgtool spelling: lang-c, pem, raw\n"
           "      --hash          print the KEYHASH instead: the key bytes hashed with the\n"
           "                      key's image hash (SHA-384 for ecdsa-p384, else SHA-256);\n"
           "                      hex unless --lang c or raw is given\n"
           "      --name ID       C identifier of the array (default airlock_pub_key;\n"
           "                      with --hash ID_hash)\n"
           "  -o, --output FILE   write there instead of stdout\n"
           "  -h, --help          this help\n");
}

enum lang { LANG_DEFAULT, LANG_C, LANG_PEM, LANG_RAW, LANG_HEX };

static bool c_identifier(const char *s)
{
    size_t i;

    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_')) {
        return false;
    }
    for (i = 1; s[i] != '\0'; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_')) {
            return false;
        }
    }
    return true;
}

static const char *key_type_enum(int type)
{
    switch (type) {
    case AIRLOCK_KEY_ECDSA_P256:
        return "AIRLOCK_KEY_ECDSA_P256";
    case AIRLOCK_KEY_ECDSA_P384:
        return "AIRLOCK_KEY_ECDSA_P384";
    case AIRLOCK_KEY_RSA_2048:
        return "AIRLOCK_KEY_RSA_2048";
    case AIRLOCK_KEY_RSA_3072:
        return "AIRLOCK_KEY_RSA_3072";
    case AIRLOCK_KEY_ED25519:
        return "AIRLOCK_KEY_ED25519";
    default:
        return "AIRLOCK_KEY_NONE";
    }
}

static void emit_c_array(FILE *f, const char *id, const uint8_t *b, size_t n)
{
    size_t i;

    fprintf(f, "const unsigned char %s[] = {", id);
    for (i = 0; i < n; i++) {
        fprintf(f, "%s0x%02x,", (i % 12 == 0) ? "\n    " : " ", b[i]);
    }
    fprintf(f, "\n};\nconst unsigned int %s_len = %zu;\n", id, n);
}

static int parse_lang(const char *s, enum lang *out)
{
    if (strcmp(s, "c") == 0 || strcmp(s, "lang-c") == 0) {
        *out = LANG_C;
    } else if (strcmp(s, "pem") == 0) {
        *out = LANG_PEM;
    } else if (strcmp(s, "raw") == 0) {
        *out = LANG_RAW;
    } else if (strcmp(s, "hex") == 0) {
        *out = LANG_HEX;
    } else {
        return cli_fail(EXIT_USAGE,
                        "--lang/--encoding: unknown output '%s' (use c, pem, raw or hex)", s);
    }
    return EXIT_OK_;
}

int cmd_getpub(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},      {"lang", required_argument, NULL, 'l'},
        {"encoding", required_argument, NULL, 'e'}, {"hash", no_argument, NULL, 'H'},
        {"name", required_argument, NULL, 'N'},     {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *out_path = NULL, *name = "airlock_pub_key";
    enum lang lang = LANG_DEFAULT;
    bool hash = false;
    cli_key_t key;
    char *text = NULL;
    size_t text_len = 0;
    FILE *f;
    int c, rc;

    while ((c = getopt_long(argc, argv, ":k:l:e:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            path = optarg;
            break;
        case 'l':
        case 'e':
            rc = parse_lang(optarg, &lang);
            if (rc != EXIT_OK_) {
                return rc;
            }
            break;
        case 'H':
            hash = true;
            break;
        case 'N':
            name = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'h':
            getpub_help(stdout);
            return EXIT_OK_;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (optind < argc) {
        return cli_fail(EXIT_USAGE, "unexpected argument '%s' (the key file goes after -k)",
                        argv[optind]);
    }
    if (path == NULL) {
        return cli_fail(EXIT_USAGE, "missing -k/--key (a private or public key file)");
    }
    if (!c_identifier(name)) {
        return cli_fail(EXIT_USAGE, "--name: '%s' is not a C identifier", name);
    }
    if (hash && lang == LANG_PEM) {
        return cli_fail(EXIT_USAGE, "--hash cannot be printed as PEM (use --lang hex, c or raw)");
    }
    if (lang == LANG_DEFAULT) {
        lang = hash ? LANG_HEX : LANG_C;
    }

    rc = cli_key_load(path, &key);
    if (rc != EXIT_OK_) {
        return rc;
    }
    f = open_memstream(&text, &text_len);
    if (f == NULL) {
        cli_key_free(&key);
        return cli_fail(EXIT_INTERNAL, "out of memory");
    }
    if (hash) {
        uint8_t h[AIRLOCK_HASH_MAX_LEN];
        char hex[2 * AIRLOCK_HASH_MAX_LEN + 1];
        size_t hlen;
        int alg;

        rc = key_hash(&key, h, &hlen, &alg);
        if (rc == EXIT_OK_ && lang == LANG_C) {
            char id[300];

            snprintf(id, sizeof(id), "%s_hash", name);
            fprintf(f,
                    "/* %s hash of the %s public key (KEYHASH), generated by airlock getpub "
                    "--hash */\n",
                    alg == AIRLOCK_HASH_SHA384 ? "SHA-384" : "SHA-256",
                    airlock_key_type_name(key.type));
            emit_c_array(f, id, h, hlen);
        } else if (rc == EXIT_OK_ && lang == LANG_RAW) {
            fwrite(h, 1, hlen, f);
        } else if (rc == EXIT_OK_) {
            fprintf(f, "%s\n", cli_hex(h, hlen, hex));
        }
    } else if (lang == LANG_C) {
        fprintf(f, "/* %s public key, generated by airlock getpub */\n",
                airlock_key_type_name(key.type));
        emit_c_array(f, name, key.der, key.der_len);
        fprintf(f, "const int %s_type = %d; /* %s */\n", name, key.type, key_type_enum(key.type));
    } else if (lang == LANG_RAW) {
        fwrite(key.der, 1, key.der_len, f);
    } else if (lang == LANG_HEX) {
        size_t i;

        for (i = 0; i < key.der_len; i++) {
            fprintf(f, "%02x", key.der[i]);
        }
        fputc('\n', f);
    } else {
        char *pem = NULL;
        size_t pem_len = 0;

        rc = cli_key_public_pem(&key, &pem, &pem_len);
        if (rc == EXIT_OK_) {
            fwrite(pem, 1, pem_len, f);
            free(pem);
        }
    }
    cli_key_free(&key);
    if (fclose(f) != 0 && rc == EXIT_OK_) {
        rc = cli_fail(EXIT_INTERNAL, "out of memory");
    }
    if (rc == EXIT_OK_) {
        if (out_path != NULL) {
            rc = cli_write_atomic(out_path, "output file", text, text_len, 0644, true);
        } else if (fwrite(text, 1, text_len, stdout) != text_len || fflush(stdout) != 0) {
            rc = cli_fail(EXIT_IO, "cannot write to standard output");
        }
    }
    free(text);
    return rc;
}
