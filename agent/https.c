/*
 * The libcurl set-up shared by the agent's requests (agent/https.h): TLS
 * always verified against a CA chain, host name checked, https only unless
 * allowed, and the optional pin on a CA key above the leaf (OpenSSL's
 * verify callback). Never turns verification off, never trusts a leaf pin.
 */
#define _POSIX_C_SOURCE 200809L

#include "https.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "airlock/err.h"

/* ---- the optional CA key pin ---------------------------------------------------- */

static bool spki_sha256(X509 *x, uint8_t out[32])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
    unsigned int olen = 0;
    bool ok =
        len > 0 && EVP_Digest(der, (size_t)len, out, &olen, EVP_sha256(), NULL) == 1 && olen == 32;
    OPENSSL_free(der);
    return ok;
}

/* Verify the chain as OpenSSL would, then require the pinned key above the leaf. */
static int verify_with_pin(X509_STORE_CTX *x, void *arg)
{
    https_pin_t *p = arg;
    int ok = X509_verify_cert(x);
    if (ok != 1) {
        return ok;
    }
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(x);
    for (int i = 1; chain && i < sk_X509_num(chain); i++) {
        uint8_t h[32];
        if (spki_sha256(sk_X509_value(chain, i), h) && memcmp(h, p->pin, 32) == 0) {
            return 1;
        }
    }
    p->failed = true;
    X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *arg)
{
    (void)h;
    SSL_CTX_set_cert_verify_callback((SSL_CTX *)ssl_ctx, verify_with_pin, arg);
    return CURLE_OK;
}

static int parse_pin(https_pin_t *p, const char *s, char *msg, size_t cap)
{
    if (strncasecmp(s, "sha256:", 7) == 0) {
        s += 7;
    } else if (strncasecmp(s, "sha256//", 8) == 0) {
        snprintf(msg, cap, "CA pin: give the SPKI SHA-256 as 64 hex digits");
        return AIRLOCK_ERR_INVAL;
    }
    if (strlen(s) != 64) {
        snprintf(msg, cap,
                 "CA pin: expected 64 hex digits (SHA-256 of the CA's public key), got %zu "
                 "characters",
                 strlen(s));
        return AIRLOCK_ERR_INVAL;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
            sscanf(s + 2 * i, "%2x", &v) != 1) {
            snprintf(msg, cap, "CA pin: character %d is not a hex digit", 2 * i);
            return AIRLOCK_ERR_INVAL;
        }
        p->pin[i] = (uint8_t)v;
    }
    p->has_pin = true;
    return 0;
}

/* ---- the handle ------------------------------------------------------------------ */

int https_setup(CURL *h, const char *url, const https_tls_t *tls, https_pin_t *pin, char *errbuf,
                char *msg, size_t cap)
{
    const char *protos = tls->allow_http ? "http,https" : "https";
    memset(pin, 0, sizeof(*pin));
    msg[0] = '\0';
    if (strncasecmp(url, "https://", 8) != 0 &&
        !(tls->allow_http && strncasecmp(url, "http://", 7) == 0)) {
        snprintf(msg, cap, "URL %s: only https:// is accepted (http:// needs allow_http)", url);
        return AIRLOCK_ERR_INVAL;
    }
    CURLcode c = CURLE_OK;
    c |= curl_easy_setopt(h, CURLOPT_URL, url);
    c |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protos);
    c |= curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protos);
    c |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    c |= curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    c |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    c |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    c |= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    c |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                          tls->connect_timeout_ms > 0 ? tls->connect_timeout_ms : 10000L);
    c |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    c |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    c |= curl_easy_setopt(h, CURLOPT_USERAGENT, "airlock-agent");
    if (tls->ca_file) {
        c |= curl_easy_setopt(h, CURLOPT_CAINFO, tls->ca_file);
    }
    if (tls->ca_path) {
        c |= curl_easy_setopt(h, CURLOPT_CAPATH, tls->ca_path);
    }
    if (c != CURLE_OK) {
        snprintf(msg, cap, "libcurl refused an option (built without HTTPS?)");
        return AIRLOCK_ERR_INVAL;
    }
    if (tls->ca_pin) {
        int rc = parse_pin(pin, tls->ca_pin, msg, cap);
        if (rc) {
            return rc;
        }
        const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
        if (!vi->ssl_version || strncmp(vi->ssl_version, "OpenSSL", 7) != 0 ||
            curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) != CURLE_OK ||
            curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, pin) != CURLE_OK) {
            snprintf(msg, cap, "a CA pin needs libcurl built with OpenSSL (have %s)",
                     vi->ssl_version ? vi->ssl_version : "none");
            return AIRLOCK_ERR_INVAL;
        }
    }
    return 0;
}
