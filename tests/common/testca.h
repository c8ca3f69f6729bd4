/*
 * Test-only X.509 material made at test time: a CA (root or intermediate)
 * and TLS server leaves with chosen names and validity, all P-256, as PEM
 * strings. Lets HTTPS tests exercise good, expired, wrong-host and
 * untrusted certificates without files in the tree. Never for production.
 */
#ifndef AIRLOCK_TESTCA_H
#define AIRLOCK_TESTCA_H

/*
 * A key and certificate as malloc'd, NUL-terminated PEM strings.
 * key: the private key (PKCS#8 "PRIVATE KEY").
 * cert: the entity's certificate followed by the certificates of its issuing
 *   chain up to, but not including, the self-signed root. For a root that is
 *   just itself; for a leaf under an intermediate it is leaf + intermediate,
 *   i.e. exactly what a TLS server must send.
 */
typedef struct tc_pem {
    char *key;
    char *cert;
} tc_pem_t;

/*
 * A self-signed root CA named cn: basicConstraints CA:TRUE (critical),
 * keyUsage keyCertSign, cRLSign (critical), valid from now-1d to now+30d.
 * Returns 0, or -1 with *ca left empty.
 */
int tc_make_ca(const char *cn, tc_pem_t *ca);

/*
 * An intermediate CA named cn signed by parent (a root or another
 * intermediate); same extensions and validity as tc_make_ca. Its cert string
 * carries parent's chain after it. Returns 0 or -1.
 */
int tc_make_sub_ca(const tc_pem_t *parent, const char *cn, tc_pem_t *ca);

/*
 * A TLS server leaf named cn, signed by ca. san is a comma list of DNS names
 * and IP addresses ("localhost,127.0.0.1"); entries that parse as IPv4/IPv6
 * become IP entries. Validity is [now + nb_off, now + na_off] in seconds, so
 * an expired leaf is nb_off = -2 days, na_off = -1 day. extendedKeyUsage
 * serverAuth, basicConstraints CA:FALSE. Returns 0 or -1.
 */
int tc_make_leaf(const tc_pem_t *ca, const char *cn, const char *san, long nb_off, long na_off,
                 tc_pem_t *leaf);

/* Write pem to path (created or truncated, mode 0644). Returns 0 or -1. */
int tc_write_file(const char *path, const char *pem);

/*
 * SHA-256 of the DER SubjectPublicKeyInfo of the first certificate in
 * cert_pem, as 64 lowercase hex digits plus NUL in out. This is the form of
 * the agent's CA key pin. Returns 0 or -1.
 */
int tc_spki_sha256_hex(const char *cert_pem, char out[65]);

/* Free both strings and empty *p; safe on an empty or already freed tc_pem_t. */
void tc_pem_free(tc_pem_t *p);

#endif
