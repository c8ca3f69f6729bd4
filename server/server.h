/*
 * The update server: configuration, the running instance and what its
 * modules share (authentication, URLs, digests). The device API (ddi.c),
 * the operator API (api.c), campaigns (campaign.c) and the dashboard
 * (dashboard.c) are handlers over this; the HTTP layer is http.c, the
 * database store.h.
 */
#ifndef AIRLOCK_SERVER_SERVER_H
#define AIRLOCK_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/image.h"
#include "http.h"
#include "store.h"

#define SRV_PATH_MAX 512

typedef struct srv_config {
    char dir[SRV_PATH_MAX];    /* the server's directory (config, db, artifacts, tls) */
    char tenant[64];           /* DDI tenant, "DEFAULT" */
    char bind[64];             /* listen address */
    unsigned port;             /* 0: ephemeral */
    char public_url[256];      /* base of links given to devices; "" = from the Host header */
    char poll_interval[16];    /* DDI config.polling.sleep, "HH:MM:SS" */
    unsigned threads;
    unsigned max_inflight;
    uint64_t max_artifact;     /* largest upload, bytes */
    bool insecure_http;        /* plain HTTP (development only) */
    bool access_log;
    char cert_file[SRV_PATH_MAX];
    char key_file[SRV_PATH_MAX];
} srv_config_t;

struct srv {
    srv_config_t cfg;
    store_t *store;
    srv_http_t *http;
    /* keys artifacts of kind image must verify against (loaded by the caller) */
    const airlock_pubkey_t *keys;
    size_t nkeys;
    pthread_t ticker;
    bool ticker_started;
    atomic_bool stop;
    pthread_mutex_t campaign_lock; /* one campaign evaluation at a time */
    char *tls_key, *tls_cert;      /* PEM, kept while serving */
    /*
     * Check-ins noted in memory and written once a second (srv_note_seen):
     * a poll must not cost a synchronous database commit. Losing up to a
     * second of "last seen" in a crash is harmless; reports are never
     * batched like this.
     */
    pthread_mutex_t seen_lock;
    /* the gateway token's hash, re-read from the store at most once a second */
    char gateway_hash[80];
    int64_t gateway_read_at;
    struct srv_seen *seen;
    size_t nseen, seen_cap;
};

typedef struct srv srv_t;

/* The defaults for a server in dir (port 8443, tenant DEFAULT, TLS from dir/tls). */
void srv_config_defaults(srv_config_t *cfg, const char *dir);

/*
 * Defaults, then DIR/server.conf ("key = value" lines; see docs/server.md).
 * Returns 0, or -1 with a message naming the file, line and key in err.
 */
int srv_config_load(const char *dir, srv_config_t *cfg, char *err, size_t errcap);

/*
 * Open the store, load TLS material, start HTTP and the campaign ticker.
 * Returns 0 or -1 (message on stderr).
 */
int srv_start(srv_t *s);
void srv_stop(srv_t *s);
uint16_t srv_port(const srv_t *s);

/* ---- shared helpers ------------------------------------------------------------- */

/* SHA-256 of data as lowercase hex. */
void srv_sha256_hex(const void *data, size_t len, char out[65]);
/* Constant-time equality of two NUL-terminated hex digests (false if lengths differ). */
bool srv_digest_equal(const char *a, const char *b);
/* A new random token (base64url of 24 random bytes, 32 chars). Returns 0 or -1. */
int srv_token_new(char out[33]);
/* "https://host:port" the client reached us at (public_url if set). */
void srv_base_url(const srv_req_t *r, char *buf, size_t cap);
/*
 * The gateway token's SHA-256 (hex) into out (80 bytes), "" when none is set.
 * Cached for a second: enrolment polls do not each read the settings table.
 */
void srv_gateway_hash(srv_t *s, char *out);

/* Note an authenticated request by device id (poll: a check-in). */
void srv_note_seen(srv_t *s, int64_t device_id, bool poll);
/* Write the noted check-ins to the store (the ticker does, once a second). */
void srv_flush_seen(srv_t *s);

/* A DDI controllerId: 1..127 characters of A-Z a-z 0-9 - _ . : */
bool srv_valid_controller_id(const char *s);

/* Unix time now. */
int64_t srv_now(void);
/* Parse a JSON body; on error answer 400 naming line/column and return NULL. */
json_t *srv_parse_body(const srv_req_t *r, srv_resp_t *w, bool lenient);
/*
 * Operator authentication: "Authorization: Bearer <token>" matching the
 * operator token's hash. Returns true, or answers 401 and returns false.
 */
bool srv_auth_operator(const srv_req_t *r, srv_resp_t *w);

/* Route tables of the modules (terminated by fn == NULL). */
extern const srv_route_t srv_ddi_routes[];
extern const srv_route_t srv_api_routes[];
extern const srv_route_t srv_dashboard_routes[];

/* ---- campaigns (campaign.c) ---------------------------------------------------- */

/*
 * Create a campaign for artifact over group (0: every device): assigns each
 * target device to a wave (a seeded shuffle, so a wave is a sample of the
 * fleet), skips devices already on the artifact's version, and starts it
 * (offering wave 0) unless start_at is in the future. Returns 0 or a
 * store_err with msg.
 */
int srv_campaign_create(srv_t *s, store_campaign_t *c, char *msg, size_t cap);
/*
 * Re-evaluate one campaign (0: every active one): start a scheduled one,
 * pause a wave whose failures passed the threshold, move to the next wave
 * when the current one is done, finish when all are closed.
 */
int srv_campaign_tick(srv_t *s, int64_t campaign_id);
int srv_campaign_pause(srv_t *s, int64_t id, const char *reason);
int srv_campaign_resume(srv_t *s, int64_t id);
int srv_campaign_cancel(srv_t *s, int64_t id, const char *reason);

#endif
