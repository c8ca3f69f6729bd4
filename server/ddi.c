/*
 * The device API: hawkBit's Direct Device Integration (DDI), the parts
 * device clients use — polling base, deploymentBase, feedback, configData,
 * cancelAction, artifact download with ranges. JSON shapes and status codes
 * follow what existing clients depend on (200 for feedback and configData,
 * never 201/204); bodies that stray from the documents in ways real clients
 * do (raw newlines in strings, progress cnt > of, compact times) are
 * accepted. Never trusts a path's controllerId without its token.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

/* Segment indexes of /{tenant}/controller/v1/{controllerId}/... */
enum { SEG_TENANT = 0, SEG_CID = 3, SEG_RES = 4, SEG_ID = 5, SEG_SUB = 6 };

/* ---- authentication ------------------------------------------------------------- */

/*
 * The device a DDI request is about, authenticated. Answers (and returns
 * false) 404 for another tenant, 400 for a malformed controllerId, 401 for
 * a missing or unknown token, 403 for a valid token of another device.
 * A GatewayToken registers an unknown controllerId on first contact.
 */
static bool ddi_device(srv_req_t *r, srv_resp_t *w, store_device_t *dev, bool poll)
{
    srv_t *s = r->srv;
    store_t *st = s->store;
    const char *tenant = r->segs[SEG_TENANT], *cid = r->segs[SEG_CID];
    memset(dev, 0, sizeof(*dev));
    if (strcasecmp(tenant, s->cfg.tenant) != 0) {
        srv_resp_error(w, 404, "hawkbit.server.error.repo.entitiyNotFound",
                       "tenant %s does not exist", tenant);
        return false;
    }
    if (!srv_valid_controller_id(cid)) {
        srv_resp_error(w, 400, "airlock.ddi.controllerId",
                       "controllerId must be 1-127 characters of A-Z a-z 0-9 - _ . :");
        return false;
    }
    const char *auth = srv_req_header(r, "Authorization");
    const char *tok = NULL;
    bool gateway = false;
    if (auth && strncasecmp(auth, "TargetToken ", 12) == 0) {
        tok = auth + 12;
    } else if (auth && strncasecmp(auth, "GatewayToken ", 13) == 0) {
        tok = auth + 13;
        gateway = true;
    }
    while (tok && *tok == ' ') {
        tok++;
    }
    if (!tok || !*tok) {
        srv_resp_error(w, 401, "airlock.ddi.unauthorized",
                       "send Authorization: TargetToken <token> or GatewayToken <token>");
        return false;
    }
    char hash[65];
    srv_sha256_hex(tok, strlen(tok), hash);
    int rc = st->ops->device_by_controller(st, cid, dev);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
        srv_resp_error(w, 500, "airlock.server.store", "store: %s", st->errmsg);
        return false;
    }
    if (gateway) {
        char gw[80];
        srv_gateway_hash(s, gw);
        if (!gw[0] || !srv_digest_equal(hash, gw)) {
            store_device_clear(dev);
            srv_resp_error(w, 401, "airlock.ddi.unauthorized", "unknown gateway token");
            return false;
        }
        if (rc == STORE_NOT_FOUND) {
            memset(dev, 0, sizeof(*dev));
            snprintf(dev->controller_id, sizeof(dev->controller_id), "%s", cid);
            snprintf(dev->name, sizeof(dev->name), "%s", cid);
            rc = st->ops->device_create(st, dev);
            if (rc == STORE_EXISTS) { /* registered by a concurrent request */
                rc = st->ops->device_by_controller(st, cid, dev);
            }
            if (rc != STORE_OK) {
                srv_resp_error(w, 500, "airlock.server.store", "cannot register %s: %s", cid,
                               st->errmsg);
                return false;
            }
            fprintf(stderr, "airlock server: registered %s (gateway token)\n", cid);
        }
    } else if (rc == STORE_NOT_FOUND || !dev->token_hash[0] ||
               !srv_digest_equal(hash, dev->token_hash)) {
        store_device_t other;
        bool known = st->ops->device_by_token && st->ops->device_by_token(st, hash, &other) == 0;
        if (known) {
            store_device_clear(&other);
        }
        store_device_clear(dev);
        if (known) {
            srv_resp_error(w, 403, "airlock.ddi.forbidden",
                           "this token belongs to another device than %s", cid);
        } else {
            srv_resp_error(w, 401, "airlock.ddi.unauthorized",
                           "unknown target token for controller %s", cid);
        }
        return false;
    }
    srv_note_seen(s, dev->id, poll);
    return true;
}

/* ---- helpers --------------------------------------------------------------------- */

static void controller_url(srv_req_t *r, const store_device_t *d, char *buf, size_t cap)
{
    char base[300];
    srv_base_url(r, base, sizeof(base));
    snprintf(buf, cap, "%s/%s/controller/v1/%s", base, r->srv->cfg.tenant, d->controller_id);
}

static bool parse_id(const char *s, int64_t *out)
{
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || e == s || *e || v <= 0) {
        return false;
    }
    *out = v;
    return true;
}

/* The action in the path, which must be the device's own. */
static bool own_action(srv_req_t *r, srv_resp_t *w, const store_device_t *d, store_action_t *a)
{
    store_t *st = r->srv->store;
    int64_t id;
    if (!parse_id(r->segs[SEG_ID], &id)) {
        srv_resp_error(w, 400, "airlock.ddi.actionId", "action id %s is not a number",
                       r->segs[SEG_ID]);
        return false;
    }
    int rc = st->ops->action_get(st, id, a);
    if (rc == STORE_NOT_FOUND) {
        srv_resp_error(w, 404, "hawkbit.server.error.repo.entitiyNotFound",
                       "action %" PRId64 " does not exist", id);
        return false;
    }
    if (rc != STORE_OK) {
        srv_resp_error(w, 500, "airlock.server.store", "store: %s", st->errmsg);
        return false;
    }
    if (a->device_id != d->id) {
        srv_resp_error(w, 403, "airlock.ddi.forbidden",
                       "action %" PRId64 " belongs to another device", id);
        return false;
    }
    return true;
}

/* ---- GET /{tenant}/controller/v1/{cid} ------------------------------------------ */

static void poll(srv_req_t *r, srv_resp_t *w)
{
    store_device_t d;
    store_action_t a;
    store_t *st = r->srv->store;
    char url[600], href[700];
    if (!ddi_device(r, w, &d, true)) {
        return;
    }
    controller_url(r, &d, url, sizeof(url));
    json_t *links = json_object();
    int rc = st->ops->action_open_for_device(st, d.id, &a);
    if (rc == STORE_OK && a.state == STORE_ACT_CANCELLING) {
        snprintf(href, sizeof(href), "%s/cancelAction/%" PRId64, url, a.id);
        json_object_set_new(links, "cancelAction", json_pack("{s:s}", "href", href));
    } else if (rc == STORE_OK) {
        /* c changes with the action's state, so no cache serves a stale deployment */
        snprintf(href, sizeof(href), "%s/deploymentBase/%" PRId64 "?c=%" PRId64, url, a.id,
                 (a.updated_at * 31 + a.state) % 1000000007);
        json_object_set_new(links, "deploymentBase", json_pack("{s:s}", "href", href));
    } else if (rc != STORE_NOT_FOUND) {
        json_decref(links);
        store_device_clear(&d);
        srv_resp_error(w, 500, "airlock.server.store", "store: %s", st->errmsg);
        return;
    }
    if (!d.attributes) {
        snprintf(href, sizeof(href), "%s/configData", url);
        json_object_set_new(links, "configData", json_pack("{s:s}", "href", href));
    }
    json_t *j = json_pack("{s:{s:{s:s}}}", "config", "polling", "sleep", r->srv->cfg.poll_interval);
    if (json_object_size(links)) {
        json_object_set_new(j, "_links", links);
    } else {
        json_decref(links);
    }
    store_device_clear(&d);
    srv_resp_json(w, 200, j);
}

/* ---- GET .../deploymentBase/{actionId} ------------------------------------------ */

static json_t *artifact_json(srv_req_t *r, const char *ctrl_url, const store_artifact_t *art)
{
    char href[900];
    snprintf(href, sizeof(href), "%s/softwaremodules/%" PRId64 "/artifacts/%s", ctrl_url, art->id,
             art->name);
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:I, s:{s:{s:s}, s:{s:s}}}", "filename", art->name,
                     "hashes", "sha1", art->sha1, "md5", art->md5, "sha256", art->sha256, "size",
                     (json_int_t)art->size, "_links", "download", "href", href, "download-http",
                     "href", href);
    (void)r;
}

static void deployment_base(srv_req_t *r, srv_resp_t *w)
{
    store_device_t d;
    store_action_t a;
    store_campaign_t c;
    store_artifact_t art;
    store_t *st = r->srv->store;
    char url[600], idtxt[32];
    if (!ddi_device(r, w, &d, false)) {
        return;
    }
    if (!own_action(r, w, &d, &a)) {
        store_device_clear(&d);
        return;
    }
    if (st->ops->campaign_get(st, a.campaign_id, &c) != STORE_OK ||
        st->ops->artifact_get(st, c.artifact_id, &art) != STORE_OK) {
        store_device_clear(&d);
        srv_resp_error(w, 500, "airlock.server.store", "action %" PRId64 ": %s", a.id,
                       st->errmsg);
        return;
    }
    controller_url(r, &d, url, sizeof(url));
    snprintf(idtxt, sizeof(idtxt), "%" PRId64, a.id);
    const char *type = c.forced ? "forced" : "attempt";
    json_t *chunk = json_pack("{s:s, s:s, s:s, s:[o]}", "part", "os", "version", art.version,
                              "name", art.name, "artifacts", artifact_json(r, url, &art));
    json_t *j = json_pack("{s:s, s:{s:s, s:s, s:[o]}}", "id", idtxt, "deployment", "download", type,
                          "update", type, "chunks", chunk);
    if (a.details[0]) {
        json_object_set_new(j, "actionHistory",
                            json_pack("{s:s, s:[s]}", "status", store_action_state_name(a.state),
                                      "messages", a.details));
    }
    store_device_clear(&d);
    srv_resp_json(w, 200, j);
}

/* ---- feedback -------------------------------------------------------------------- */

struct feedback {
    const char *execution;
    const char *finished;
    int cnt, of;
    char details[512];
    json_t *details_json; /* borrowed */
    const char *time;
};

/* Parse the DDI feedback body; answers 400 naming the field on error. */
static bool parse_feedback(srv_req_t *r, srv_resp_t *w, json_t *j, struct feedback *f)
{
    memset(f, 0, sizeof(*f));
    json_t *status = json_object_get(j, "status");
    json_t *exec = json_object_get(status, "execution");
    json_t *result = json_object_get(status, "result");
    json_t *fin = json_object_get(result, "finished");
    json_t *prog = json_object_get(result, "progress");
    (void)r;
    if (!json_is_object(status) || !json_is_string(exec)) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "feedback needs status.execution (a string)");
        return false;
    }
    f->execution = json_string_value(exec);
    static const char *const execs[] = {"closed",  "proceeding", "canceled",   "scheduled",
                                        "rejected", "resumed",   "downloaded", "download"};
    bool known = false;
    for (size_t i = 0; i < sizeof(execs) / sizeof(execs[0]); i++) {
        known |= strcmp(f->execution, execs[i]) == 0;
    }
    if (!known) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "status.execution \"%.40s\" is none of closed, proceeding, canceled, "
                       "scheduled, rejected, resumed, downloaded, download",
                       f->execution);
        return false;
    }
    f->finished = json_is_string(fin) ? json_string_value(fin) : "none";
    if (strcmp(f->finished, "success") != 0 && strcmp(f->finished, "failure") != 0 &&
        strcmp(f->finished, "none") != 0) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "status.result.finished \"%.40s\" is none of success, failure, none",
                       f->finished);
        return false;
    }
    if (fin && !json_is_string(fin)) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "status.result.finished must be a string");
        return false;
    }
    /* progress as clients send it: cnt may exceed of, both may be 0 */
    json_t *cnt = json_object_get(prog, "cnt"), *of = json_object_get(prog, "of");
    f->cnt = json_is_integer(cnt) ? (int)json_integer_value(cnt) : 0;
    f->of = json_is_integer(of) ? (int)json_integer_value(of) : 0;
    json_t *det = json_object_get(status, "details");
    if (det && !json_is_array(det)) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "status.details must be an array of strings");
        return false;
    }
    f->details_json = det;
    size_t i, len = 0;
    json_t *v;
    json_array_foreach(det, i, v)
    {
        const char *t = json_is_string(v) ? json_string_value(v) : "";
        int n = snprintf(f->details + len, sizeof(f->details) - len, "%s%s", len ? "; " : "", t);
        if (n < 0 || (size_t)n >= sizeof(f->details) - len) {
            len = sizeof(f->details) - 1;
            break;
        }
        len += (size_t)n;
    }
    json_t *t = json_object_get(j, "time");
    f->time = json_is_string(t) ? json_string_value(t) : "";
    return true;
}

static bool closed_state(int s)
{
    return s == STORE_ACT_SUCCESS || s == STORE_ACT_FAILURE || s == STORE_ACT_CANCELLED ||
           s == STORE_ACT_SKIPPED;
}

/* New action state for a deployment feedback; 0 = keep. */
static int deployment_next(int cur, const struct feedback *f)
{
    if (strcmp(f->execution, "closed") == 0) {
        return strcmp(f->finished, "failure") == 0 ? STORE_ACT_FAILURE : STORE_ACT_SUCCESS;
    }
    if (strcmp(f->execution, "canceled") == 0) {
        return cur == STORE_ACT_CANCELLING ? STORE_ACT_CANCELLED : 0;
    }
    /* proceeding, scheduled, resumed, downloaded, download, rejected: still open */
    return cur == STORE_ACT_OFFERED ? STORE_ACT_RUNNING : 0;
}

/* New action state for a cancel feedback; 0 = keep. */
static int cancel_next(int cur, const struct feedback *f)
{
    if (cur != STORE_ACT_CANCELLING) {
        return 0;
    }
    if (strcmp(f->execution, "closed") == 0 || strcmp(f->execution, "canceled") == 0) {
        return strcmp(f->finished, "failure") == 0 ? STORE_ACT_RUNNING : STORE_ACT_CANCELLED;
    }
    if (strcmp(f->execution, "rejected") == 0) {
        return STORE_ACT_RUNNING; /* the device refused to cancel: the update goes on */
    }
    return 0;
}

static void feedback(srv_req_t *r, srv_resp_t *w, bool cancel)
{
    store_device_t d;
    store_action_t a;
    struct feedback f;
    store_t *st = r->srv->store;
    if (!ddi_device(r, w, &d, false)) {
        return;
    }
    json_t *j = srv_parse_body(r, w, true);
    if (!j) {
        store_device_clear(&d);
        return;
    }
    if (!parse_feedback(r, w, j, &f) || !own_action(r, w, &d, &a)) {
        json_decref(j);
        store_device_clear(&d);
        return;
    }
    int64_t now = srv_now();
    int rc = st->ops->begin(st);
    bool in_tx = rc == STORE_OK;
    if (rc == STORE_OK) {
        rc = st->ops->action_get(st, a.id, &a); /* the state as of this transaction */
    }
    int next = 0;
    bool gone = false, ignore = false;
    if (rc == STORE_OK && closed_state(a.state)) {
        /*
         * Closed already. The same final report again (a retry whose answer
         * was lost) is fine and changes nothing; late progress is ignored; a
         * final report contradicting the recorded one is refused.
         */
        int as_if = cancel ? cancel_next(STORE_ACT_CANCELLING, &f)
                           : deployment_next(STORE_ACT_RUNNING, &f);
        ignore = as_if == a.state || !closed_state(as_if);
        gone = !ignore;
    } else if (rc == STORE_OK) {
        next = cancel ? cancel_next(a.state, &f) : deployment_next(a.state, &f);
    }
    if (rc == STORE_OK && !gone && !ignore) {
        char *dj = f.details_json ? json_dumps(f.details_json, JSON_COMPACT) : NULL;
        store_feedback_t fb;
        memset(&fb, 0, sizeof(fb));
        fb.action_id = a.id;
        fb.device_id = d.id;
        snprintf(fb.execution, sizeof(fb.execution), "%s", f.execution);
        snprintf(fb.finished, sizeof(fb.finished), "%s", f.finished);
        fb.progress_cnt = f.cnt;
        fb.progress_of = f.of;
        fb.details = dj ? dj : (char *)"[]";
        snprintf(fb.time, sizeof(fb.time), "%s", f.time);
        fb.received_at = now;
        rc = st->ops->feedback_add(st, &fb);
        free(dj);
        if (rc == STORE_OK) {
            rc = st->ops->action_set_state(st, a.id, a.state, next ? next : a.state, f.cnt, f.of,
                                           f.details, now);
        }
    }
    store_campaign_t c;
    store_artifact_t art;
    if (rc == STORE_OK && next == STORE_ACT_SUCCESS &&
        st->ops->campaign_get(st, a.campaign_id, &c) == STORE_OK &&
        st->ops->artifact_get(st, c.artifact_id, &art) == STORE_OK) {
        rc = st->ops->device_set_version(st, d.id, art.version);
    }
    if (rc == STORE_OK) {
        rc = st->ops->commit(st);
    } else if (in_tx) {
        st->ops->rollback(st);
    }
    json_decref(j);
    if (rc != STORE_OK) {
        store_device_clear(&d);
        srv_resp_error(w, rc == STORE_BUSY ? 503 : 500, "airlock.server.store",
                       "feedback not stored: %s", st->errmsg);
        if (rc == STORE_BUSY) {
            srv_resp_header(w, "Retry-After", "2");
        }
        return;
    }
    if (gone) {
        srv_resp_error(w, 410, "hawkbit.server.error.action.closed",
                       "action %" PRId64 " is already closed (%s)", a.id,
                       store_action_state_name(a.state));
    } else {
        srv_resp_text(w, 200, NULL, "");
    }
    if (next && closed_state(next)) {
        srv_campaign_tick(r->srv, a.campaign_id);
    }
    store_device_clear(&d);
}

static void deployment_feedback(srv_req_t *r, srv_resp_t *w)
{
    feedback(r, w, false);
}

static void cancel_feedback(srv_req_t *r, srv_resp_t *w)
{
    feedback(r, w, true);
}

/* ---- cancelAction ----------------------------------------------------------------- */

static void cancel_action(srv_req_t *r, srv_resp_t *w)
{
    store_device_t d;
    store_action_t a;
    char idtxt[32];
    if (!ddi_device(r, w, &d, false)) {
        return;
    }
    if (own_action(r, w, &d, &a)) {
        if (a.state != STORE_ACT_CANCELLING) {
            srv_resp_error(w, 404, "hawkbit.server.error.repo.entitiyNotFound",
                           "no cancellation of action %" PRId64 " is pending", a.id);
        } else {
            snprintf(idtxt, sizeof(idtxt), "%" PRId64, a.id);
            srv_resp_json(w, 200,
                          json_pack("{s:s, s:{s:s}}", "id", idtxt, "cancelAction", "stopId", idtxt));
        }
    }
    store_device_clear(&d);
}

/* ---- configData ------------------------------------------------------------------ */

static const char *const version_keys[] = {"version",          "airlock.version", "sw_version",
                                           "firmware_version", "fw_version",      NULL};

static void config_data(srv_req_t *r, srv_resp_t *w)
{
    store_device_t d;
    store_t *st = r->srv->store;
    if (!ddi_device(r, w, &d, false)) {
        return;
    }
    json_t *j = srv_parse_body(r, w, true);
    if (!j) {
        store_device_clear(&d);
        return;
    }
    json_t *data = json_object_get(j, "data");
    const char *mode = json_string_value(json_object_get(j, "mode"));
    if (!json_is_object(data)) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "configData needs \"data\": an object of attribute names to values");
    } else if (mode && strcmp(mode, "merge") != 0 && strcmp(mode, "replace") != 0 &&
               strcmp(mode, "remove") != 0) {
        srv_resp_error(w, 400, "hawkbit.server.error.rest.body.notReadable",
                       "mode \"%.40s\" is none of merge, replace, remove", mode);
    } else {
        json_t *attrs = NULL;
        if (!mode || strcmp(mode, "replace") != 0) {
            attrs = d.attributes ? json_loads(d.attributes, 0, NULL) : NULL;
        }
        if (!json_is_object(attrs)) {
            json_decref(attrs);
            attrs = json_object();
        }
        const char *k;
        json_t *v;
        json_object_foreach(data, k, v)
        {
            if (mode && strcmp(mode, "remove") == 0) {
                json_object_del(attrs, k);
            } else if (json_is_string(v)) {
                json_object_set(attrs, k, v);
            } else {
                char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                json_object_set_new(attrs, k, json_string(txt ? txt : ""));
                free(txt);
            }
        }
        const char *version = NULL;
        for (int i = 0; version_keys[i] && !version; i++) {
            version = json_string_value(json_object_get(attrs, version_keys[i]));
        }
        char *txt = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
        int rc = txt && strlen(txt) < 16384
                     ? st->ops->device_set_attributes(st, d.id, txt, version)
                     : STORE_INVAL;
        free(txt);
        json_decref(attrs);
        if (rc == STORE_OK) {
            srv_resp_text(w, 200, NULL, "");
        } else if (rc == STORE_INVAL) {
            srv_resp_error(w, 400, "airlock.ddi.configData",
                           "attributes too large (16 KiB at most) or a version over %d bytes",
                           STORE_VERSION_MAX - 1);
        } else {
            srv_resp_error(w, 500, "airlock.server.store", "store: %s", st->errmsg);
        }
    }
    json_decref(j);
    store_device_clear(&d);
}

/* ---- artifacts ------------------------------------------------------------------- */

/* Parse "bytes=A-B" / "bytes=A-" / "bytes=-N" against size; false: ignore the header. */
static bool parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b, bool *unsat)
{
    *unsat = false;
    if (!h || strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ',')) {
        return false;
    }
    const char *p = h + 6;
    char *e;
    if (*p == '-') {
        unsigned long long n = strtoull(p + 1, &e, 10);
        if (e == p + 1 || *e) {
            return false;
        }
        if (n == 0) {
            *unsat = true;
            return true;
        }
        *a = n >= size ? 0 : size - n;
        *b = size - 1;
        return true;
    }
    if (!isdigit((unsigned char)*p)) {
        return false;
    }
    unsigned long long x = strtoull(p, &e, 10), y;
    if (*e != '-') {
        return false;
    }
    p = e + 1;
    if (*p) {
        y = strtoull(p, &e, 10);
        if (e == p || *e || y < x) {
            return false;
        }
    } else {
        y = size ? size - 1 : 0;
    }
    if (x >= size) {
        *unsat = true;
        return true;
    }
    *a = x;
    *b = y >= size ? size - 1 : y;
    return true;
}

static void artifact_download(srv_req_t *r, srv_resp_t *w)
{
    store_device_t d;
    store_artifact_t art;
    store_action_t a;
    store_campaign_t c;
    store_t *st = r->srv->store;
    int64_t id;
    if (!ddi_device(r, w, &d, false)) {
        return;
    }
    const char *fname = r->nsegs > 7 ? r->segs[7] : "";
    size_t fl = strlen(fname);
    bool md5sum = fl > 7 && strcmp(fname + fl - 7, ".MD5SUM") == 0;
    if (!parse_id(r->segs[SEG_ID], &id) || st->ops->artifact_get(st, id, &art) != STORE_OK ||
        strncmp(art.name, fname, md5sum ? fl - 7 : fl) != 0 ||
        strlen(art.name) != (md5sum ? fl - 7 : fl)) {
        store_device_clear(&d);
        srv_resp_error(w, 404, "hawkbit.server.error.repo.entitiyNotFound",
                       "no artifact %s in software module %s", fname, r->segs[SEG_ID]);
        return;
    }
    /* only a device with a deployment of this artifact may fetch it */
    if (st->ops->action_open_for_device(st, d.id, &a) != STORE_OK ||
        st->ops->campaign_get(st, a.campaign_id, &c) != STORE_OK || c.artifact_id != art.id) {
        store_device_clear(&d);
        srv_resp_error(w, 403, "airlock.ddi.forbidden",
                       "artifact %s is not part of a deployment assigned to this device",
                       art.name);
        return;
    }
    store_device_clear(&d);
    if (md5sum) {
        char line[300];
        snprintf(line, sizeof(line), "%s  %s\n", art.md5, art.name);
        srv_resp_text(w, 200, "text/plain", line);
        return;
    }
    char path[SRV_PATH_MAX + 100];
    snprintf(path, sizeof(path), "%s/artifacts/%s", r->srv->cfg.dir, art.sha256);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != (uint64_t)art.size) {
        if (fd >= 0) {
            close(fd);
        }
        srv_resp_error(w, 500, "airlock.server.artifact", "artifact %s: file missing or changed",
                       art.name);
        return;
    }
    uint64_t size = (uint64_t)art.size, a0 = 0, b0 = size ? size - 1 : 0;
    char etag[80];
    snprintf(etag, sizeof(etag), "\"%s\"", art.sha256);
    const char *range = srv_req_header(r, "Range");
    const char *ifr = srv_req_header(r, "If-Range");
    bool unsat = false;
    bool ranged = range && (!ifr || strcmp(ifr, etag) == 0) &&
                  parse_range(range, size, &a0, &b0, &unsat);
    srv_resp_header(w, "ETag", "%s", etag);
    srv_resp_header(w, "Accept-Ranges", "bytes");
    srv_resp_header(w, "Content-Disposition", "attachment; filename=\"%s\"", art.name);
    if (ranged && unsat) {
        close(fd);
        srv_resp_header(w, "Content-Range", "bytes */%" PRIu64, size);
        srv_resp_text(w, 416, "text/plain", "range not satisfiable\n");
        return;
    }
    w->status = ranged ? 206 : 200;
    w->content_type = "application/octet-stream";
    w->fd = fd;
    w->fd_off = ranged ? a0 : 0;
    w->fd_len = ranged ? b0 - a0 + 1 : size;
    if (ranged) {
        srv_resp_header(w, "Content-Range", "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a0, b0, size);
    }
}

/* ---- routes ------------------------------------------------------------------------ */

const srv_route_t srv_ddi_routes[] = {
    {"GET", "/{}/controller/v1/{}", poll, false, 0},
    {"GET", "/{}/controller/v1/{}/deploymentBase/{}", deployment_base, false, 0},
    {"POST", "/{}/controller/v1/{}/deploymentBase/{}/feedback", deployment_feedback, false, 0},
    {"GET", "/{}/controller/v1/{}/cancelAction/{}", cancel_action, false, 0},
    {"POST", "/{}/controller/v1/{}/cancelAction/{}/feedback", cancel_feedback, false, 0},
    {"PUT", "/{}/controller/v1/{}/configData", config_data, false, 0},
    {"GET", "/{}/controller/v1/{}/softwaremodules/{}/artifacts/{}", artifact_download, false, 0},
    {NULL, NULL, NULL, false, 0},
};
