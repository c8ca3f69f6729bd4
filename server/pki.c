/*
 * X.509 generation for the server's demo CA and for tests (see pki.h) with
 * the OpenSSL 3 API. Keys are fresh P-256 on every call; nothing is cached.
 * A demo CA for development and tests: real deployments bring their own
 * certificate. Private keys only ever reach disk with mode 0600.
 */
#define _POSIX_C_SOURCE 200809L

#include "pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* A parsed issuer: its key, its own certificate, and the chain to append. */
struct issuer {
    EVP_PKEY *key;
    X509 *cert;
    const char *chain; /* PEM appended after a child's cert, "" for a root */
};

static char *bio_to_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n < 0) {
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        return NULL;
    }
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static char *key_to_pem(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1) {
        s = bio_to_string(b);
    }
    BIO_free(b);
    return s;
}

/* cert's PEM followed by chain (may be ""). */
static char *cert_to_pem(X509 *cert, const char *chain)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_X509(b, cert) == 1 &&
        BIO_write(b, chain, (int)strlen(chain)) == (int)strlen(chain)) {
        s = bio_to_string(b);
    }
    BIO_free(b);
    return s;
}

static X509 *first_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

static void issuer_free(struct issuer *is)
{
    EVP_PKEY_free(is->key);
    X509_free(is->cert);
}

static int issuer_load(const pki_pem_t *ca, struct issuer *is)
{
    memset(is, 0, sizeof(*is));
    if (!ca || !ca->key || !ca->cert) {
        return -1;
    }
    BIO *b = BIO_new_mem_buf(ca->key, -1);
    is->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    is->cert = first_cert(ca->cert);
    if (!is->key || !is->cert) {
        issuer_free(is);
        return -1;
    }
    /* A self-signed issuer is the trust anchor: clients have it, servers
     * do not send it. Anything else travels with its children. */
    int self = X509_NAME_cmp(X509_get_subject_name(is->cert), X509_get_issuer_name(is->cert)) == 0;
    is->chain = self ? "" : ca->cert;
    return 0;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext) {
        return -1;
    }
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

static int set_serial(X509 *x)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        return -1;
    }
    r[0] &= 0x7f; /* positive */
    r[0] |= 0x01; /* and without a leading zero octet */
    BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_name(X509_NAME *n, const char *field, const char *value)
{
    const unsigned char *v = (const unsigned char *)value;
    return X509_NAME_add_entry_by_txt(n, field, MBSTRING_ASC, v, -1, -1, 0) == 1 ? 0 : -1;
}

static X509_NAME *make_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    if (!n || add_name(n, "O", "airlock") != 0 || add_name(n, "CN", cn) != 0) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

/* "a,127.0.0.1" -> "DNS:a,IP:127.0.0.1"; malloc'd, NULL on error or empty. */
static char *san_value(const char *list)
{
    size_t cap = strlen(list) * 2 + 16;
    char *out = malloc(cap);
    char *copy = strdup(list);
    if (!out || !copy) {
        free(out);
        free(copy);
        return NULL;
    }
    out[0] = '\0';
    size_t used = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') {
            tok++;
        }
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ') {
            tok[--len] = '\0';
        }
        if (!len) {
            continue;
        }
        unsigned char addr[16];
        int ip = inet_pton(AF_INET, tok, addr) == 1 || inet_pton(AF_INET6, tok, addr) == 1;
        const char *kind = ip ? "IP" : "DNS";
        int n = snprintf(out + used, cap - used, "%s%s:%s", used ? "," : "", kind, tok);
        if (n < 0 || (size_t)n >= cap - used) {
            break;
        }
        used += (size_t)n;
    }
    free(copy);
    if (!used) {
        free(out);
        return NULL;
    }
    return out;
}

/*
 * Make and sign one certificate. issuer NULL = self-signed. san NULL = CA
 * profile; otherwise the server leaf profile with that SAN list.
 */
static int make_cert(const struct issuer *issuer, const char *cn, const char *san, long nb_off,
                     long na_off, pki_pem_t *out)
{
    memset(out, 0, sizeof(*out));
    int rc = -1;
    char *san_str = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = make_name(cn);
    if (!key || !x || !name) {
        goto done;
    }
    if (X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x) != 0 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), nb_off) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), na_off) || X509_set_pubkey(x, key) != 1) {
        goto done;
    }

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer->cert : x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0) {
        goto done;
    }
    /* A root has no issuer key to point at; everything else names it. */
    if (issuer && add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0) {
        goto done;
    }
    if (!san) {
        if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
            add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0) {
            goto done;
        }
    } else {
        san_str = san_value(san);
        if (!san_str || add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
            add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
            add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") != 0 ||
            add_ext(x, &ctx, NID_subject_alt_name, san_str) != 0) {
            goto done;
        }
    }
    if (X509_sign(x, issuer ? issuer->key : key, EVP_sha256()) <= 0) {
        goto done;
    }
    out->key = key_to_pem(key);
    out->cert = cert_to_pem(x, issuer ? issuer->chain : "");
    if (out->key && out->cert) {
        rc = 0;
    } else {
        pki_pem_free(out);
    }
done:
    free(san_str);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int pki_make_ca(const char *cn, long valid_s, pki_pem_t *ca)
{
    return make_cert(NULL, cn, NULL, -PKI_DAY, valid_s, ca);
}

int pki_make_sub_ca(const pki_pem_t *parent, const char *cn, long valid_s, pki_pem_t *ca)
{
    struct issuer is;
    if (issuer_load(parent, &is) != 0) {
        memset(ca, 0, sizeof(*ca));
        return -1;
    }
    int rc = make_cert(&is, cn, NULL, -PKI_DAY, valid_s, ca);
    issuer_free(&is);
    return rc;
}

int pki_make_leaf(const pki_pem_t *ca, const char *cn, const char *san, long nb_off, long na_off,
                  pki_pem_t *leaf)
{
    struct issuer is;
    if (!san || issuer_load(ca, &is) != 0) {
        memset(leaf, 0, sizeof(*leaf));
        return -1;
    }
    int rc = make_cert(&is, cn, san, nb_off, na_off, leaf);
    issuer_free(&is);
    return rc;
}

int pki_spki_sha256_hex(const char *cert_pem, char out[65])
{
    X509 *x = first_cert(cert_pem);
    if (!x) {
        return -1;
    }
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    unsigned char md[32];
    unsigned int md_len = 0;
    int ok = len > 0 && EVP_Digest(der, (size_t)len, md, &md_len, EVP_sha256(), NULL) == 1 &&
             md_len == sizeof(md);
    OPENSSL_free(der);
    X509_free(x);
    if (!ok) {
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

void pki_pem_free(pki_pem_t *p)
{
    if (!p) {
        return;
    }
    free(p->key);
    free(p->cert);
    p->key = NULL;
    p->cert = NULL;
}

int pki_write_file(const char *path, const char *text, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* mkstemp creates it 0600: a key is never readable by others, not even briefly */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        return -1;
    }
    size_t n = strlen(text), done = 0;
    int err = 0;
    while (!err && done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w == 0 || errno != EINTR) {
            err = w == 0 ? EIO : errno;
        }
    }
    if (!err && (fchmod(fd, mode) != 0 || fsync(fd) != 0)) {
        err = errno;
    }
    if (close(fd) != 0 && !err) {
        err = errno;
    }
    /* a reader sees the old file or the whole new one, never a part */
    if (!err && rename(tmp, path) != 0) {
        err = errno;
    }
    if (err) {
        unlink(tmp);
        errno = err;
        return -1;
    }
    return 0;
}

int pki_write_pair(const pki_pem_t *pem, const char *key_path, const char *cert_path)
{
    if (!pem->key || !pem->cert) {
        errno = EINVAL;
        return -1;
    }
    if (pki_write_file(key_path, pem->key, 0600) != 0) {
        return -1;
    }
    return pki_write_file(cert_path, pem->cert, 0644);
}
