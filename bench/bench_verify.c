/*
 * Verification throughput: parse + hash + one signature of signed images
 * (64 KiB, 1 MiB, 16 MiB), streamed from a file through a pread source, for
 * each crypto backend, against `openssl dgst` and in-process EVP hashing of
 * the same file. Host benchmark only; never asserts speed, only correctness.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/version.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "../tests/common/testutil.h"
#include "airlock/crypto_mbedtls.h"
#include "airlock/crypto_openssl.h"
#include "airlock/err.h"
#include "airlock/image.h"

extern char **environ;

#define HDR_SIZE 32u
#define STREAM_BUF (64u * 1024u)
#define MB 1e6 /* throughput in decimal megabytes per second */

static uint8_t stream_buf[STREAM_BUF];

struct options {
    const char *dir;  /* work dir (created if NULL) */
    const char *json; /* results file, or NULL */
    const char *cli;  /* airlock CLI for keygen/sign, or NULL */
    double min_time;  /* seconds per measured cell */
    uint64_t seed;
};

struct keyinfo {
    int type;
    const char *name; /* CLI key type name */
    char pem[4096];
    uint8_t *der; /* embedded public key (KEYHASH input) */
    size_t der_len;
    EVP_PKEY *pkey; /* in-process signer, NULL when the CLI signed */
};

struct bcase {
    int key_type;
    uint32_t payload;
};

static const struct bcase cases[] = {
    {AIRLOCK_KEY_ECDSA_P256, 64u * 1024u},
    {AIRLOCK_KEY_ECDSA_P256, 1024u * 1024u},
    {AIRLOCK_KEY_ECDSA_P256, 16u * 1024u * 1024u},
    {AIRLOCK_KEY_ECDSA_P384, 1024u * 1024u},
    {AIRLOCK_KEY_RSA_3072, 1024u * 1024u},
    {AIRLOCK_KEY_ED25519, 1024u * 1024u},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static const airlock_crypto_t *const backends[] = {&airlock_crypto_openssl,
                                                   &airlock_crypto_mbedtls};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/* Results of one case. */
struct result {
    char file[4096];
    uint64_t file_bytes;
    int hash_alg;
    const char *signer;
    double verify_s[NBACKENDS]; /* median; < 0: backend cannot verify */
    int verify_rc[NBACKENDS];
    unsigned verify_reps[NBACKENDS];
    double dgst_s;
    unsigned dgst_reps;
    double evp_s;
    unsigned evp_reps;
};

static _Noreturn void fatal(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_verify: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One thing being timed, and its samples (seconds per call). */
struct method {
    int (*fn)(void *);
    void *ctx;
    double *t;
    size_t n, cap;
    int rc; /* first error: the method is dropped */
};

/* Time one call of m and keep the sample. */
static void sample(struct method *m)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        double *nt = realloc(m->t, m->cap * sizeof(*nt));
        if (!nt) {
            fatal("%s", "out of memory");
        }
        m->t = nt;
    }
    double t0 = now();
    m->rc = m->fn(m->ctx);
    m->t[m->n++] = now() - t0;
}

/*
 * Time every method for at least min_time each (and 3 calls), in SLICES
 * interleaved rounds so that a change in machine load hits all of them
 * alike. Each method is called once first, untimed, to warm the page cache
 * and fail early. Returns the median into med[i] (< 0 if the method failed).
 */
#define SLICES 5
static void measure(struct method *m, size_t nm, double min_time, double *med,
                    unsigned *reps)
{
    for (size_t i = 0; i < nm; i++) {
        m[i].rc = m[i].fn(m[i].ctx);
    }
    for (int s = 0; s < SLICES; s++) {
        for (size_t i = 0; i < nm; i++) {
            double t0 = now();
            while (m[i].rc == 0 &&
                   (now() - t0 < min_time / SLICES || (s == SLICES - 1 && m[i].n < 3))) {
                sample(&m[i]);
            }
        }
    }
    for (size_t i = 0; i < nm; i++) {
        med[i] = -1.0;
        reps[i] = 0;
        if (m[i].rc == 0) {
            qsort(m[i].t, m[i].n, sizeof(double), cmp_double);
            size_t n = m[i].n;
            med[i] = n % 2 ? m[i].t[n / 2] : (m[i].t[n / 2 - 1] + m[i].t[n / 2]) / 2.0;
            reps[i] = (unsigned)n;
        }
        free(m[i].t);
        m[i].t = NULL;
        m[i].n = m[i].cap = 0;
    }
}

/* ---- files, processes ---- */

static int file_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    int fd = *(const int *)ctx;
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        off += (uint32_t)n;
        len -= (uint32_t)n;
    }
    return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fatal("cannot write %s", path);
    }
}

/* Run argv with stdout/stderr to log (or /dev/null); returns exit status. */
static int run(char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const char *out = log ? log : "/dev/null";
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- measured operations ---- */

struct verify_ctx {
    const char *path;
    const airlock_crypto_t *crypto;
    const airlock_pubkey_t *key;
};

/* What a device does at boot: parse, hash everything, check one signature. */
static int do_verify(void *p)
{
    const struct verify_ctx *v = p;
    int fd = open(v->path, O_RDONLY);
    if (fd < 0) {
        return AIRLOCK_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size > UINT32_MAX) {
        close(fd);
        return AIRLOCK_ERR_IO;
    }
    airlock_source_t src = {file_read, &fd, (uint32_t)sb.st_size};
    airlock_image_t img;
    airlock_verify_result_t res;
    airlock_verify_cfg_t cfg = {v->crypto, v->key, 1, stream_buf, sizeof(stream_buf)};
    int rc = airlock_image_parse(&src, &img, NULL);
    if (rc == 0) {
        rc = airlock_image_verify(&src, &img, &cfg, &res, NULL);
    }
    close(fd);
    return rc;
}

struct ref_ctx {
    const char *path;
    int hash_alg;
};

static const char *dgst_flag(int alg)
{
    return alg == AIRLOCK_HASH_SHA384 ? "-sha384" : alg == AIRLOCK_HASH_SHA512 ? "-sha512"
                                                                                : "-sha256";
}

static int do_dgst(void *p)
{
    const struct ref_ctx *r = p;
    char *argv[] = {"openssl", "dgst", (char *)dgst_flag(r->hash_alg), (char *)r->path, NULL};
    return run(argv, NULL) == 0 ? 0 : AIRLOCK_ERR_IO;
}

/* In-process reference: the same file, the same 64 KiB preads, EVP only. */
static int do_evp(void *p)
{
    const struct ref_ctx *r = p;
    const EVP_MD *md = r->hash_alg == AIRLOCK_HASH_SHA384 ? EVP_sha384() : EVP_sha256();
    int fd = open(r->path, O_RDONLY);
    if (fd < 0) {
        return AIRLOCK_ERR_IO;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 ? 0 : AIRLOCK_ERR_CRYPTO;
    for (off_t off = 0; rc == 0;) {
        ssize_t n = pread(fd, stream_buf, sizeof(stream_buf), off);
        if (n < 0) {
            rc = AIRLOCK_ERR_IO;
        } else if (n == 0) {
            break;
        } else if (EVP_DigestUpdate(ctx, stream_buf, (size_t)n) != 1) {
            rc = AIRLOCK_ERR_CRYPTO;
        }
        off += n;
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    if (rc == 0 && EVP_DigestFinal_ex(ctx, out, NULL) != 1) {
        rc = AIRLOCK_ERR_CRYPTO;
    }
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}

static int do_nothing_dgst(void *p)
{
    (void)p;
    char *argv[] = {"openssl", "dgst", "-sha256", "/dev/null", NULL};
    return run(argv, NULL) == 0 ? 0 : AIRLOCK_ERR_IO;
}

/* ---- making images ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: fast, seeded, reproducible payloads. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            uint64_t r = rng();
            size_t k = n - i < 8 ? n - i : 8;
            memcpy(p + i, &r, k);
        }
    }
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static const char *key_cli_name(int type)
{
    return airlock_key_type_name(type);
}

static EVP_PKEY *gen_key(int type)
{
    switch (type) {
    case AIRLOCK_KEY_ECDSA_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case AIRLOCK_KEY_ECDSA_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case AIRLOCK_KEY_RSA_2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case AIRLOCK_KEY_RSA_3072:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    case AIRLOCK_KEY_ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    default:
        return NULL;
    }
}

/* A key through the CLI when it works, else in-process; both end as a PEM. */
static void make_key(const struct options *o, struct keyinfo *k, const char *dir, int type)
{
    k->type = type;
    k->name = key_cli_name(type);
    snprintf(k->pem, sizeof(k->pem), "%s/key-%s.pem", dir, k->name);
    k->pkey = NULL;
    bool ok = false;
    if (o->cli) {
        char log[4200];
        snprintf(log, sizeof(log), "%s/cli.log", dir);
        char *argv[] = {(char *)o->cli, "keygen", "-t", (char *)k->name, "-k", k->pem, "-q",
                        NULL};
        ok = run(argv, log) == 0;
        if (!ok) {
            fprintf(stderr, "bench_verify: 'airlock keygen -t %s' failed (see %s); "
                            "signing in-process\n", k->name, log);
        }
    }
    if (!ok) {
        k->pkey = gen_key(type);
        FILE *f = fopen(k->pem, "w");
        if (!k->pkey || !f || PEM_write_PrivateKey(f, k->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
            fatal("cannot make key %s", k->pem);
        }
        fclose(f);
    }
    int got = 0;
    if (tu_load_pubkey(k->pem, &got, &k->der, &k->der_len) != 0 || got != type) {
        fatal("cannot load key %s", k->pem);
    }
}

static void hash_bytes(int alg, const uint8_t *p, size_t n, uint8_t *out)
{
    const EVP_MD *md = alg == AIRLOCK_HASH_SHA384 ? EVP_sha384() : EVP_sha256();
    if (EVP_Digest(p, n, out, NULL, md, NULL) != 1) {
        fatal("%s", "EVP_Digest failed");
    }
}

/* Sign digest as imgtool does for each key type; returns the length. */
static size_t sign_digest(const struct keyinfo *k, int alg, const uint8_t *dg, size_t dlen,
                          uint8_t *sig, size_t cap)
{
    size_t len = cap;
    bool ok;
    if (k->type == AIRLOCK_KEY_ED25519) {
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        ok = mc && EVP_DigestSignInit(mc, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(mc, sig, &len, dg, dlen) == 1;
        EVP_MD_CTX_free(mc);
    } else {
        const EVP_MD *md = alg == AIRLOCK_HASH_SHA384 ? EVP_sha384() : EVP_sha256();
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k->pkey, NULL);
        ok = pc && EVP_PKEY_sign_init(pc) == 1 && EVP_PKEY_CTX_set_signature_md(pc, md) == 1;
        if (ok && (k->type == AIRLOCK_KEY_RSA_2048 || k->type == AIRLOCK_KEY_RSA_3072)) {
            ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 32) == 1 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) == 1;
        }
        ok = ok && EVP_PKEY_sign(pc, sig, &len, dg, dlen) == 1;
        EVP_PKEY_CTX_free(pc);
    }
    if (!ok) {
        fatal("signing with %s failed", k->name);
    }
    return len;
}

/*
 * The image imgtool would make: 32-byte header, payload, then the
 * unprotected TLVs hash, KEYHASH, signature.
 */
static void sign_in_process(const struct keyinfo *k, const uint8_t *payload, uint32_t plen,
                            const char *out)
{
    int alg = airlock_key_default_hash(k->type);
    size_t hlen = airlock_hash_len(alg);
    size_t body = HDR_SIZE + (size_t)plen;
    uint8_t *img = malloc(body + 1024);
    if (!img) {
        fatal("%s", "out of memory");
    }
    airlock_image_header_t h;
    memset(&h, 0, sizeof(h));
    h.magic = AIRLOCK_IMAGE_MAGIC;
    h.hdr_size = HDR_SIZE;
    h.img_size = plen;
    h.version.major = 1;
    airlock_header_encode(&h, img);
    memcpy(img + HDR_SIZE, payload, plen);

    uint8_t digest[AIRLOCK_HASH_MAX_LEN], keyhash[AIRLOCK_HASH_MAX_LEN], sig[512];
    hash_bytes(alg, img, body, digest);
    hash_bytes(alg, k->der, k->der_len, keyhash);
    size_t slen = sign_digest(k, alg, digest, hlen, sig, sizeof(sig));

    uint8_t *t = img + body;
    size_t pos = AIRLOCK_TLV_INFO_SIZE;
    put16(t + pos, (uint32_t)alg);
    put16(t + pos + 2, (uint32_t)hlen);
    memcpy(t + pos + 4, digest, hlen);
    pos += 4 + hlen;
    put16(t + pos, AIRLOCK_TLV_KEYHASH);
    put16(t + pos + 2, (uint32_t)hlen);
    memcpy(t + pos + 4, keyhash, hlen);
    pos += 4 + hlen;
    put16(t + pos, airlock_key_sig_tlv(k->type));
    put16(t + pos + 2, (uint32_t)slen);
    memcpy(t + pos + 4, sig, slen);
    pos += 4 + slen;
    put16(t, AIRLOCK_TLV_INFO_MAGIC);
    put16(t + 2, (uint32_t)pos);
    write_file(out, img, body + pos);
    free(img);
}

static const char *make_image(const struct options *o, struct keyinfo *k,
                              const char *dir, uint32_t plen, const char *out)
{
    uint8_t *payload = malloc(plen);
    if (!payload) {
        fatal("%s", "out of memory");
    }
    fill_random(payload, plen);
    const char *signer = "in-process OpenSSL";
    if (!k->pkey) {
        char ppath[4200], slot[32], log[4200];
        snprintf(ppath, sizeof(ppath), "%s/payload-%u.bin", dir, plen);
        snprintf(log, sizeof(log), "%s/cli.log", dir);
        snprintf(slot, sizeof(slot), "%u", (plen + HDR_SIZE + 0x10000u + 0xfffu) & ~0xfffu);
        write_file(ppath, payload, plen);
        char *argv[] = {(char *)o->cli, "sign", "-H", "0x20", "--pad-header", "-v", "1.0.0",
                        "-S", slot, "-k", (char *)k->pem, "-q", ppath, (char *)out, NULL};
        int rc = run(argv, log);
        unlink(ppath);
        if (rc == 0) {
            signer = "airlock sign";
        } else {
            fprintf(stderr, "bench_verify: 'airlock sign' exited %d (see %s); signing "
                            "in-process\n", rc, log);
            FILE *f = fopen(k->pem, "r");
            k->pkey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
            if (f) {
                fclose(f);
            }
            if (!k->pkey) {
                fatal("cannot read %s", k->pem);
            }
            signer = "in-process OpenSSL (airlock sign failed)";
        }
    }
    if (k->pkey) {
        sign_in_process(k, payload, plen, out);
    }
    free(payload);
    return signer;
}

/* ---- report ---- */

static const char *size_name(uint32_t n, char *buf, size_t cap)
{
    if (n % (1024u * 1024u) == 0) {
        snprintf(buf, cap, "%u MiB", n / (1024u * 1024u));
    } else {
        snprintf(buf, cap, "%u KiB", n / 1024u);
    }
    return buf;
}

static double mbps(uint64_t bytes, double s)
{
    return s > 0 ? (double)bytes / MB / s : 0.0;
}

static void print_table(const struct result *r, double startup)
{
    printf("\n%-8s %-10s %-8s %-7s %10s %10s %9s %9s\n", "payload", "key", "hash", "backend",
           "ms/verify", "MB/s", "x dgst", "x EVP");
    for (size_t c = 0; c < NCASES; c++) {
        char sz[32];
        size_name(cases[c].payload, sz, sizeof(sz));
        const char *hash = r[c].hash_alg == AIRLOCK_HASH_SHA384 ? "SHA-384" : "SHA-256";
        for (size_t b = 0; b < NBACKENDS; b++) {
            const char *kn = airlock_key_type_name(cases[c].key_type);
            if (r[c].verify_s[b] < 0) {
                printf("%-8s %-10s %-8s %-7s %10s %10s %9s %9s   (%s)\n", sz, kn, hash,
                       backends[b]->name, "-", "-", "-", "-", airlock_errname(r[c].verify_rc[b]));
                continue;
            }
            double v = mbps(r[c].file_bytes, r[c].verify_s[b]);
            printf("%-8s %-10s %-8s %-7s %10.3f %10.1f %9.2f %9.2f\n", sz, kn, hash,
                   backends[b]->name, r[c].verify_s[b] * 1e3, v,
                   v / mbps(r[c].file_bytes, r[c].dgst_s), v / mbps(r[c].file_bytes, r[c].evp_s));
        }
        printf("%-8s %-10s %-8s %-7s %10.3f %10.1f %9s %9s\n", sz, "(ref)", hash, "dgst",
               r[c].dgst_s * 1e3, mbps(r[c].file_bytes, r[c].dgst_s), "1.00", "");
        printf("%-8s %-10s %-8s %-7s %10.3f %10.1f %9s %9s\n", sz, "(ref)", hash, "EVP",
               r[c].evp_s * 1e3, mbps(r[c].file_bytes, r[c].evp_s), "", "1.00");
    }
    printf("\nMB = 10^6 bytes of image file; medians; x dgst / x EVP = verify MB/s over the\n"
           "reference's MB/s (>1: faster). 'openssl dgst' is a subprocess: its times include\n"
           "process start-up (%.2f ms for dgst of /dev/null). EVP = in-process OpenSSL hash\n"
           "of the same file with the same 64 KiB preads. Files are in the page cache.\n",
           startup * 1e3);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', f);
        }
        fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *p = strchr(line, ':');
            if (p) {
                snprintf(buf, cap, "%s", p + 2);
                buf[strcspn(buf, "\n")] = 0;
            }
            break;
        }
    }
    if (f) {
        fclose(f);
    }
}

static void write_json(const char *path, const struct options *o, const struct result *r,
                       double startup)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fatal("cannot write %s", path);
    }
    char cpu[256], date[64];
    cpu_model(cpu, sizeof(cpu));
    time_t t = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    fprintf(f, "{\n  \"benchmark\": \"verify\",\n  \"date\": \"%s\",\n  \"cpu\": ", date);
    json_str(f, cpu);
    fprintf(f, ",\n  \"cpus\": %ld,\n  \"openssl\": ", sysconf(_SC_NPROCESSORS_ONLN));
    json_str(f, OpenSSL_version(OPENSSL_VERSION));
    fprintf(f, ",\n  \"mbedtls\": \"%s\",\n", MBEDTLS_VERSION_STRING);
    fprintf(f, "  \"seed\": %llu,\n  \"min_time_s\": %g,\n  \"stream_buffer\": %u,\n",
            (unsigned long long)o->seed, o->min_time, STREAM_BUF);
    fprintf(f, "  \"openssl_dgst_startup_s\": %.6f,\n", startup);
    fprintf(f, "  \"units\": \"MB = 1e6 bytes of image file; times are medians in seconds\",\n");
    fprintf(f, "  \"rows\": [\n");
    bool first = true;
    for (size_t c = 0; c < NCASES; c++) {
        const char *hash = r[c].hash_alg == AIRLOCK_HASH_SHA384 ? "sha384" : "sha256";
        for (size_t b = 0; b < NBACKENDS + 2; b++) {
            double s;
            unsigned reps;
            const char *name;
            if (b < NBACKENDS) {
                s = r[c].verify_s[b];
                reps = r[c].verify_reps[b];
                name = backends[b]->name;
            } else if (b == NBACKENDS) {
                s = r[c].dgst_s;
                reps = r[c].dgst_reps;
                name = "openssl-dgst-process";
            } else {
                s = r[c].evp_s;
                reps = r[c].evp_reps;
                name = "openssl-evp-inprocess";
            }
            fprintf(f, "%s    {\"payload_bytes\": %u, \"file_bytes\": %llu, \"key\": \"%s\", "
                       "\"hash\": \"%s\", \"what\": \"%s\", \"signer\": \"%s\", ",
                    first ? "" : ",\n", cases[c].payload, (unsigned long long)r[c].file_bytes,
                    airlock_key_type_name(cases[c].key_type), hash, name, r[c].signer);
            first = false;
            if (s < 0) {
                fprintf(f, "\"error\": \"%s\"}", airlock_errname(r[c].verify_rc[b]));
                continue;
            }
            fprintf(f, "\"median_s\": %.9f, \"reps\": %u, \"mb_per_s\": %.2f", s, reps,
                    mbps(r[c].file_bytes, s));
            if (b < NBACKENDS) {
                double v = mbps(r[c].file_bytes, s);
                fprintf(f, ", \"ratio_openssl_dgst\": %.4f, \"ratio_evp\": %.4f",
                        v / mbps(r[c].file_bytes, r[c].dgst_s),
                        v / mbps(r[c].file_bytes, r[c].evp_s));
            }
            fputc('}', f);
        }
    }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0) {
        fatal("cannot write %s", path);
    }
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_verify [--cli AIRLOCK] [--json FILE] [--dir DIR] [--min-time S]\n"
            "                    [--seed N]\n"
            "  --cli AIRLOCK   make keys and images with 'airlock keygen' / 'airlock sign'\n"
            "                  (default: OpenSSL in-process, the same format)\n"
            "  --json FILE     also write the results as JSON\n"
            "  --dir DIR       work dir for keys and images (default: a new temp dir,\n"
            "                  removed at the end)\n"
            "  --min-time S    seconds measured per cell, in 5 interleaved slices\n"
            "                  (default 0.5)\n"
            "  --seed N        payload PRNG seed (default: from the clock; printed)\n");
}

int main(int argc, char **argv)
{
    struct options o = {NULL, NULL, NULL, 0.5, 0};
    bool have_seed = false;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        } else if (v && strcmp(a, "--cli") == 0) {
            o.cli = v;
        } else if (v && strcmp(a, "--json") == 0) {
            o.json = v;
        } else if (v && strcmp(a, "--dir") == 0) {
            o.dir = v;
        } else if (v && strcmp(a, "--min-time") == 0) {
            o.min_time = strtod(v, NULL);
        } else if (v && strcmp(a, "--seed") == 0) {
            o.seed = strtoull(v, NULL, 0);
            have_seed = true;
        } else {
            usage();
            return 2;
        }
    }
    if (!have_seed) {
        o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    rng_state = o.seed ? o.seed : 1;

    char tmpl[] = "/tmp/airlock-bench.XXXXXX";
    bool own_dir = o.dir == NULL;
    const char *dir = own_dir ? mkdtemp(tmpl) : o.dir;
    if (!dir) {
        fatal("%s", "cannot create a temp dir");
    }
    printf("bench_verify: seed %llu, dir %s, signer %s, %.2f s per cell\n",
           (unsigned long long)o.seed, dir, o.cli ? o.cli : "in-process OpenSSL", o.min_time);
    fflush(stdout);

    struct keyinfo keys[AIRLOCK_KEY_ED25519 + 1];
    memset(keys, 0, sizeof(keys));
    struct result *r = calloc(NCASES, sizeof(*r));
    if (!r) {
        fatal("%s", "out of memory");
    }
    for (size_t c = 0; c < NCASES; c++) {
        int kt = cases[c].key_type;
        if (!keys[kt].der) {
            make_key(&o, &keys[kt], dir, kt);
        }
        snprintf(r[c].file, sizeof(r[c].file), "%s/image-%s-%u.bin", dir,
                 airlock_key_type_name(kt), cases[c].payload);
        r[c].signer = make_image(&o, &keys[kt], dir, cases[c].payload, r[c].file);
        r[c].hash_alg = airlock_key_default_hash(kt);
        struct stat sb;
        if (stat(r[c].file, &sb) != 0) {
            fatal("no image %s", r[c].file);
        }
        r[c].file_bytes = (uint64_t)sb.st_size;

        /* The image must verify before its speed means anything. */
        airlock_pubkey_t pk = {kt, keys[kt].der, keys[kt].der_len};
        struct verify_ctx vc = {r[c].file, &airlock_crypto_openssl, &pk};
        int rc = do_verify(&vc);
        if (rc != 0) {
            fprintf(stderr, "bench_verify: %s does not verify: %s\n", r[c].file,
                    airlock_errname(rc));
            return 1;
        }
        struct verify_ctx vcs[NBACKENDS];
        struct ref_ctx rr = {r[c].file, r[c].hash_alg};
        struct method m[NBACKENDS + 2];
        double med[NBACKENDS + 2];
        unsigned reps[NBACKENDS + 2];
        memset(m, 0, sizeof(m));
        for (size_t b = 0; b < NBACKENDS; b++) {
            vcs[b] = vc;
            vcs[b].crypto = backends[b];
            m[b].fn = do_verify;
            m[b].ctx = &vcs[b];
        }
        m[NBACKENDS].fn = do_dgst;
        m[NBACKENDS].ctx = &rr;
        m[NBACKENDS + 1].fn = do_evp;
        m[NBACKENDS + 1].ctx = &rr;
        measure(m, NBACKENDS + 2, o.min_time, med, reps);
        for (size_t b = 0; b < NBACKENDS; b++) {
            r[c].verify_s[b] = med[b];
            r[c].verify_reps[b] = reps[b];
            r[c].verify_rc[b] = m[b].rc;
            if (m[b].rc != 0 && m[b].rc != AIRLOCK_ERR_UNSUPPORTED) {
                fprintf(stderr, "bench_verify: %s with %s: %s\n", r[c].file, backends[b]->name,
                        airlock_errname(m[b].rc));
                return 1;
            }
        }
        if (med[NBACKENDS] < 0) {
            fatal("%s", "'openssl dgst' failed (is the openssl CLI installed?)");
        }
        if (med[NBACKENDS + 1] < 0) {
            fatal("%s", "in-process EVP hashing failed");
        }
        r[c].dgst_s = med[NBACKENDS];
        r[c].dgst_reps = reps[NBACKENDS];
        r[c].evp_s = med[NBACKENDS + 1];
        r[c].evp_reps = reps[NBACKENDS + 1];
        printf("  %-10s %9u bytes: done (%s)\n", airlock_key_type_name(kt), cases[c].payload,
               r[c].signer);
        fflush(stdout);
    }
    struct method sm = {do_nothing_dgst, NULL, NULL, 0, 0, 0};
    double startup;
    unsigned sreps;
    measure(&sm, 1, o.min_time, &startup, &sreps);

    print_table(r, startup);
    if (o.json) {
        write_json(o.json, &o, r, startup);
        printf("results: %s\n", o.json);
    }

    for (size_t c = 0; c < NCASES; c++) {
        if (own_dir) {
            unlink(r[c].file);
        }
    }
    for (int kt = 0; kt <= AIRLOCK_KEY_ED25519; kt++) {
        free(keys[kt].der);
        EVP_PKEY_free(keys[kt].pkey);
        if (own_dir && keys[kt].der) {
            unlink(keys[kt].pem);
        }
    }
    if (own_dir) {
        char log[4200];
        snprintf(log, sizeof(log), "%s/cli.log", dir);
        unlink(log);
        rmdir(dir);
    }
    free(r);
    return 0;
}
