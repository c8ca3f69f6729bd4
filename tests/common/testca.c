/*
 * Test-time X.509 material (see testca.h): thin wrappers over the server's
 * demo CA (server/pki.c), so there is one implementation of certificate
 * making. CAs are valid 30 days, as tests expect. Test code only: never
 * linked into the library, the agent or the CLI.
 */
#include "testca.h"

#include <stddef.h>

#include "pki.h"

#define CA_VALID_S (30L * PKI_DAY)

static pki_pem_t to_pki(const tc_pem_t *t)
{
    pki_pem_t p = {t ? t->key : NULL, t ? t->cert : NULL};
    return p;
}

static int from_pki(int rc, pki_pem_t *p, tc_pem_t *out)
{
    out->key = p->key;
    out->cert = p->cert;
    return rc;
}

int tc_make_ca(const char *cn, tc_pem_t *ca)
{
    pki_pem_t p;
    return from_pki(pki_make_ca(cn, CA_VALID_S, &p), &p, ca);
}

int tc_make_sub_ca(const tc_pem_t *parent, const char *cn, tc_pem_t *ca)
{
    pki_pem_t par = to_pki(parent), p;
    return from_pki(pki_make_sub_ca(&par, cn, CA_VALID_S, &p), &p, ca);
}

int tc_make_leaf(const tc_pem_t *ca, const char *cn, const char *san, long nb_off, long na_off,
                 tc_pem_t *leaf)
{
    pki_pem_t issuer = to_pki(ca), p;
    return from_pki(pki_make_leaf(&issuer, cn, san, nb_off, na_off, &p), &p, leaf);
}

int tc_write_file(const char *path, const char *pem)
{
    return pki_write_file(path, pem, 0644);
}

int tc_spki_sha256_hex(const char *cert_pem, char out[65])
{
    return pki_spki_sha256_hex(cert_pem, out);
}

void tc_pem_free(tc_pem_t *p)
{
    if (!p) {
        return;
    }
    pki_pem_t q = to_pki(p);
    pki_pem_free(&q);
    p->key = NULL;
    p->cert = NULL;
}
