/*
 * Blocking libcurl driver of the DDI state machine (include/airlock/ddi_http.h):
 * one easy handle for DDI requests, one for best-effort progress feedback,
 * airlock_download for artifacts. Holds no state between calls besides what
 * is in airlock_ddi_t; never reboots, never confirms, never skips TLS checks.
 */
#define _POSIX_C_SOURCE 200809L

#include "airlock/ddi_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "airlock/download.h"
#include "airlock/ota.h"
#include "https.h"

#define BODY_CAP (32u * 1024u) /* DDI answers are small; more is not one we parse */

struct run {
    airlock_ddi_t *d;
    const airlock_boot_cfg_t *cfg;
    const airlock_ddi_http_opts_t *o;
    const airlock_ddi_http_hooks_t *hk;
    airlock_ddi_http_stats_t local;
    airlock_ddi_http_stats_t *st;
    CURL *h;  /* DDI requests */
    CURL *hp; /* progress feedback */
    https_pin_t pin, pinp;
    char auth[600];
    char errbuf[CURL_ERROR_SIZE];
    char body[BODY_CAP];
    size_t len;
    bool over;
    bool stopped;
};

static void logf_(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct run *r, const char *fmt, ...)
{
    char line[800];
    va_list ap;
    if (!r->hk->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    r->hk->log(r->hk->ctx, line);
}

static bool want_stop(struct run *r)
{
    if (!r->stopped && r->hk->stop && r->hk->stop(r->hk->ctx)) {
        r->stopped = true;
    }
    return r->stopped;
}

/* Wait ms through the hook, or sleep in slices watching stop. true: stop. */
static bool wait_ms(struct run *r, uint32_t ms)
{
    if (r->hk->sleep) {
        if (r->hk->sleep(r->hk->ctx, ms)) {
            r->stopped = true;
        }
        return r->stopped;
    }
    while (ms && !want_stop(r)) {
        uint32_t slice = ms < 200u ? ms : 200u;
        struct timespec ts = {0, (long)slice * 1000000l};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        ms -= slice;
    }
    return want_stop(r);
}

/* ---- DDI requests ------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct run *r = ud;
    size_t len = size * n, room = sizeof(r->body) - 1 - r->len;
    if (len > room) {
        r->over = true;
        return 0; /* stop reading: an answer this long is not a DDI one */
    }
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static int on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return want_stop(ud) ? 1 : 0;
}

/*
 * One request on h; the HTTP status, or 0 when there was no answer
 * (connection, TLS, timeout: why is logged). The body lands in r->body
 * (h == r->h) or is dropped.
 */
static int perform(struct run *r, CURL *h, https_pin_t *pin, const airlock_ddi_req_t *q,
                   long timeout_ms)
{
    struct curl_slist *hdrs = NULL, *t;
    char msg[512];
    bool keep = h == r->h;
    const https_tls_t tls = {
        .ca_file = r->o->ca_file,
        .ca_path = r->o->ca_path,
        .ca_pin = r->o->ca_pin,
        .allow_http = r->o->allow_http,
        .connect_timeout_ms = r->o->connect_timeout_ms,
    };
    r->len = 0;
    r->body[0] = '\0';
    r->over = false;
    r->errbuf[0] = '\0';
    r->st->requests++;
    if (https_setup(h, q->url, &tls, pin, r->errbuf, msg, sizeof(msg)) != 0) {
        logf_(r, "ddi: %s %s: %s", q->method, q->url, msg);
        r->st->failures++;
        if (keep) {
            r->st->last_status = 0;
        }
        return 0;
    }
    static const char *const fixed[] = {"Accept: application/json",
                                        "Content-Type: application/json", NULL};
    for (int i = 0; fixed[i]; i++) {
        if (i == 1 && !q->body) {
            break;
        }
        if ((t = curl_slist_append(hdrs, fixed[i])) != NULL) {
            hdrs = t;
        }
    }
    if (r->auth[0] && (t = curl_slist_append(hdrs, r->auth)) != NULL) {
        hdrs = t;
    }
    CURLcode c = CURLE_OK;
    c |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    c |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    c |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep ? on_body : discard);
    c |= curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    c |= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    c |= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
    c |= curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
    if (q->body) {
        c |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)q->body_len);
        c |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
        c |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
                              strcmp(q->method, "POST") ? q->method : NULL);
    } else {
        c |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        c |=
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(q->method, "GET") ? q->method : NULL);
    }
    int status = 0;
    if (c == CURLE_OK) {
        c = curl_easy_perform(h);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (c == CURLE_OK || (c == CURLE_WRITE_ERROR && r->over)) {
        long s = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &s);
        status = (int)s;
    }
    if (keep) {
        r->st->last_status = status;
    }
    if (!status) {
        r->st->failures++;
        logf_(r, "ddi: %s %s: no answer: %s", q->method, q->url,
              pin->failed    ? "no CA in the server's chain has the pinned key"
              : r->errbuf[0] ? r->errbuf
                             : curl_easy_strerror(c));
    } else {
        logf_(r, "ddi: %s %s -> %d", q->method, q->url, status);
    }
    return status;
}

/* ---- downloads ------------------------------------------------------------------------ */

static void dl_progress(void *ctx, const airlock_dl_progress_t *p)
{
    struct run *r = ctx;
    airlock_ddi_req_t q;
    if (r->stopped || !airlock_ddi_progress(r->d, p->done, p->total, &q)) {
        return;
    }
    long to = r->o->progress_timeout_ms > 0 ? r->o->progress_timeout_ms : 5000L;
    int s = perform(r, r->hp, &r->pinp, &q, to);
    if (s && (s < 200 || s > 299)) {
        r->st->failures++; /* best effort: the download goes on */
    }
}

static void dl_log(void *ctx, const char *msg)
{
    logf_(ctx, "download: %s", msg);
}

static int dl_wait(void *ctx, unsigned ms)
{
    return wait_ms(ctx, ms) ? 1 : 0;
}

static int dl_cancelled(void *ctx)
{
    return want_stop(ctx) ? 1 : 0;
}

static int download(struct run *r, const airlock_ddi_req_t *q, airlock_ota_t *ota,
                    airlock_dl_result_t *res)
{
    const char *headers[2] = {r->auth[0] ? r->auth : NULL, NULL};
    airlock_dl_opts_t o = {
        .url = q->url,
        .ca_file = r->o->ca_file,
        .ca_path = r->o->ca_path,
        .ca_pin = r->o->ca_pin,
        .artifact_id = q->sha256,
        .artifact_id_len = sizeof(q->sha256),
        .headers = headers,
        .allow_http = r->o->allow_http,
        .connect_timeout_ms = r->o->connect_timeout_ms,
        .low_speed_limit = r->o->low_speed_limit,
        .low_speed_time_s = r->o->low_speed_time_s,
        .max_attempts = r->o->dl_max_attempts,
        .backoff_ms = r->o->dl_backoff_ms,
        .backoff_max_ms = r->o->dl_backoff_max_ms,
        .seed = r->o->seed,
        .progress = dl_progress,
        .log = dl_log,
        .wait = dl_wait,
        .cancelled = dl_cancelled,
        .ctx = r,
    };
    logf_(r, "ddi: downloading action %llu: %s (%s, %u bytes)", (unsigned long long)q->action_id,
          q->filename, q->version, (unsigned)q->size);
    int rc = airlock_download(ota, r->cfg, &o, res);
    r->st->downloads++;
    r->st->received += res->received;
    r->st->resumes += res->resumed_from > 0;
    r->st->last_download_err = rc;
    if (rc == 0 && q->size && res->image_len > q->size) {
        /* the server's size and hash name the artifact; a longer image is not it */
        snprintf(res->msg, sizeof(res->msg), "image is %u bytes, the artifact only %u",
                 (unsigned)res->image_len, (unsigned)q->size);
        airlock_ota_abort(ota);
        rc = AIRLOCK_ERR_INCOMPLETE;
    }
    logf_(r, "ddi: download %s%s%s", rc ? airlock_errname(rc) : "verified", rc ? ": " : "",
          rc ? res->msg : "");
    return rc;
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Store persist if it changed; 0, or the outcome to return. */
static int store_if_dirty(struct run *r)
{
    if (!airlock_ddi_persist_dirty(r->d)) {
        return 0;
    }
    if (!r->hk->store) {
        return AIRLOCK_DDI_HTTP_PERSIST;
    }
    if (r->hk->store(r->hk->ctx, airlock_ddi_persist(r->d)) != 0) {
        logf_(r, "ddi: storing the persist record failed");
        return AIRLOCK_ERR_IO;
    }
    return 0;
}

/*
 * The install is requested: store the record (INSTALLING) and return INSTALL.
 * Without hooks->store the record is left dirty for the caller to store
 * (airlock_ddi_persist_dirty reads true): it is the install, so it must reboot.
 */
static int install_stored(struct run *r)
{
    int rc = r->hk->store ? store_if_dirty(r) : 0;
    return rc < 0 ? rc : AIRLOCK_DDI_HTTP_INSTALL;
}

static int loop(struct run *r)
{
    airlock_ota_t ota;
    bool verified = false; /* ota holds the verified download of this call */
    memset(&ota, 0, sizeof(ota));
    for (;;) {
        int rc = store_if_dirty(r);
        if (rc) {
            return rc;
        }
        if (want_stop(r)) {
            return AIRLOCK_DDI_HTTP_STOPPED;
        }
        airlock_ddi_req_t q;
        airlock_ddi_next(r->d, &q);
        switch (q.kind) {
        case AIRLOCK_DDI_REQ_HTTP: {
            long to = r->o->request_timeout_ms > 0 ? r->o->request_timeout_ms : 30000L;
            int s = perform(r, r->h, &r->pin, &q, to);
            if (airlock_ddi_response(r->d, s, r->body, r->len) != 0) {
                if (s) {
                    r->st->failures++;
                }
                logf_(r, "ddi: %s", airlock_ddi_error(r->d));
            }
            break;
        }
        case AIRLOCK_DDI_REQ_SLEEP:
            if (wait_ms(r, q.sleep_ms)) {
                return AIRLOCK_DDI_HTTP_STOPPED;
            }
            break;
        case AIRLOCK_DDI_REQ_DOWNLOAD: {
            airlock_dl_result_t res;
            if (verified) {
                airlock_ota_abort(&ota);
            }
            rc = download(r, &q, &ota, &res);
            verified = rc == 0;
            airlock_ddi_download_done(r->d, rc, res.msg);
            break;
        }
        case AIRLOCK_DDI_REQ_INSTALL: {
            airlock_ota_status_t os;
            char pv[AIRLOCK_DDI_VERSION_MAX] = "";
            if (!verified && airlock_ota_state(r->cfg, &os) == 0 && os.pending &&
                os.pending_valid) {
                airlock_ddi_version_str(&os.pending_version, pv, sizeof(pv));
            }
            if (!verified && q.version && pv[0] && strcmp(pv, q.version) == 0) {
                /* requested already (the bootloader has not acted on it yet): just reboot */
                logf_(r, "ddi: action %llu: %s is still pending: reboot",
                      (unsigned long long)q.action_id, pv);
                return install_stored(r);
            }
            if (!verified) {
                /* stopped since the download: resuming it finds it whole and verifies it */
                airlock_dl_result_t res;
                if (!q.url || !q.url[0]) {
                    logf_(r, "ddi: action %llu: nothing to install",
                          (unsigned long long)q.action_id);
                    return AIRLOCK_ERR_INVAL;
                }
                rc = download(r, &q, &ota, &res);
                if (rc) {
                    return rc;
                }
                verified = true;
            }
            rc = airlock_ota_set_pending(&ota, r->o->permanent);
            if (rc) {
                logf_(r, "ddi: setting the update pending failed: %s", airlock_strerror(rc));
                return AIRLOCK_ERR_IO;
            }
            logf_(r, "ddi: action %llu installed as %s: reboot", (unsigned long long)q.action_id,
                  r->o->permanent ? "permanent" : "a trial");
            return install_stored(r);
        }
        case AIRLOCK_DDI_REQ_ABORT:
            logf_(r, "ddi: action %llu cancelled: download abandoned",
                  (unsigned long long)q.action_id);
            if (verified) {
                airlock_ota_abort(&ota);
                verified = false;
            }
            break;
        default:
            return AIRLOCK_ERR_INVAL;
        }
    }
}

int airlock_ddi_http_run(airlock_ddi_t *d, const airlock_boot_cfg_t *cfg,
                         const airlock_ddi_http_opts_t *opts, const airlock_ddi_http_hooks_t *hooks)
{
    static const airlock_ddi_http_hooks_t none = {0};
    static const airlock_ddi_http_opts_t defaults = {0};
    struct run *r;
    if (!d || !cfg) {
        return AIRLOCK_ERR_INVAL;
    }
    r = calloc(1, sizeof(*r)); /* the body buffer is too big for some thread stacks */
    if (!r) {
        return AIRLOCK_ERR_NOMEM;
    }
    r->d = d;
    r->cfg = cfg;
    r->o = opts ? opts : &defaults;
    r->hk = hooks ? hooks : &none;
    r->st = r->hk->stats ? r->hk->stats : &r->local;
    if (d->cfg.auth && d->cfg.auth[0]) {
        snprintf(r->auth, sizeof(r->auth), "Authorization: %s", d->cfg.auth);
    }
    r->h = curl_easy_init();
    r->hp = curl_easy_init();
    int rc = r->h && r->hp ? loop(r) : AIRLOCK_ERR_INVAL;
    if (r->h) {
        curl_easy_cleanup(r->h);
    }
    if (r->hp) {
        curl_easy_cleanup(r->hp);
    }
    free(r);
    return rc;
}
