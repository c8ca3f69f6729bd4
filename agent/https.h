/*
 * Private to agent/: the libcurl set-up every agent request shares (TLS
 * verified against a CA chain, optional CA key pin, https only unless
 * allow_http, redirects, connect timeout). Used by download.c and
 * ddi_http.c; never a public header, never relaxes verification.
 */
#ifndef AIRLOCK_AGENT_HTTPS_H
#define AIRLOCK_AGENT_HTTPS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct https_tls {
    const char *ca_file;     /* PEM CA bundle; NULL: the system store */
    const char *ca_path;     /* hashed CA directory; NULL: none */
    const char *ca_pin;      /* SHA-256 of a CA's SubjectPublicKeyInfo (64 hex, "sha256:" ok) */
    bool allow_http;         /* accept http:// */
    long connect_timeout_ms; /* 0: 10000 */
} https_tls_t;

/* The pin check's state; must live as long as the handle it was set up on. */
typedef struct https_pin {
    bool has_pin;
    bool failed; /* the last handshake failed on the pin (not the chain) */
    uint8_t pin[32];
} https_pin_t;

/*
 * Set url and the shared options on h: protocols (https, plus http with
 * allow_http), up to 5 redirects on the same protocols, peer and host
 * verification, TLS 1.2+, CA file/path, the pin, connect timeout, TCP
 * keep-alive, no signals, errbuf (CURL_ERROR_SIZE) and user agent.
 * Returns 0, or AIRLOCK_ERR_INVAL with a sentence in msg (cap bytes).
 */
int https_setup(CURL *h, const char *url, const https_tls_t *tls, https_pin_t *pin, char *errbuf,
                char *msg, size_t cap);

#endif
