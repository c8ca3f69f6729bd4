/*
 * X.509 material for `airlock server init` and for tests: a demo CA (root
 * or intermediate) and TLS server certificates, all P-256, as PEM strings,
 * made with the OpenSSL 3 API. A demo CA for development and tests; real
 * deployments bring their own certificate (server.conf cert_file/key_file).
 * Never reads or trusts anything from the network.
 */
#ifndef AIRLOCK_SERVER_PKI_H
#define AIRLOCK_SERVER_PKI_H

#include <sys/types.h>

#define PKI_DAY (24L * 60 * 60)

/*
 * A key and certificate as malloc'd, NUL-terminated PEM strings.
 * key: the private key (PKCS#8 "PRIVATE KEY").
 * cert: the entity's certificate followed by the certificates of its issuing
 *   chain up to, but not including, the self-signed root. For a root that is
 *   just itself; for a leaf under an intermediate it is leaf + intermediate,
 *   i.e. exactly what a TLS server must send.
 */
typedef struct pki_pem {
    char *key;
    char *cert;
} pki_pem_t;

/*
 * A self-signed root CA named cn: basicConstraints CA:TRUE (critical),
 * keyUsage keyCertSign, cRLSign (critical), valid from now - 1 day to
 * now + valid_s seconds. Returns 0, or -1 with *ca left empty.
 */
int pki_make_ca(const char *cn, long valid_s, pki_pem_t *ca);

/*
 * An intermediate CA named cn signed by parent (a root or another
 * intermediate); same extensions as pki_make_ca. Its cert string carries
 * parent's chain after it. Returns 0 or -1.
 */
int pki_make_sub_ca(const pki_pem_t *parent, const char *cn, long valid_s, pki_pem_t *ca);

/*
 * A TLS server leaf named cn, signed by ca. san is a comma list of DNS names
 * and IP addresses ("localhost,127.0.0.1"); entries that parse as IPv4/IPv6
 * become IP entries. Validity is [now + nb_off, now + na_off] in seconds, so
 * an expired leaf is nb_off = -2 days, na_off = -1 day. extendedKeyUsage
 * serverAuth, basicConstraints CA:FALSE. Returns 0 or -1.
 */
int pki_make_leaf(const pki_pem_t *ca, const char *cn, const char *san, long nb_off, long na_off,
                  pki_pem_t *leaf);

/*
 * SHA-256 of the DER SubjectPublicKeyInfo of the first certificate in
 * cert_pem, as 64 lowercase hex digits plus NUL in out. This is the form of
 * the agent's CA key pin. Returns 0 or -1.
 */
int pki_spki_sha256_hex(const char *cert_pem, char out[65]);

/*
 * Write text to path atomically (a temporary in the same directory, synced,
 * renamed over path) with exactly mode (not masked by the umask): 0600 for
 * private keys and tokens, 0644 for certificates. Returns 0 or -1 (errno set;
 * path untouched).
 */
int pki_write_file(const char *path, const char *text, mode_t mode);

/* Private key (0600) and certificate (0644) of pem to the two paths. Returns 0 or -1. */
int pki_write_pair(const pki_pem_t *pem, const char *key_path, const char *cert_path);

/* Free both strings and empty *p; safe on an empty or already freed pki_pem_t. */
void pki_pem_free(pki_pem_t *p);

#endif
