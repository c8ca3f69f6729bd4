/*
 * The operator's web dashboard (server.h): server-rendered HTML with inline
 * CSS and inline SVG (fleet overview, one campaign with its rollout chart,
 * one device with its history) behind a login with the operator token. No
 * script, no external resource. It only reads the store, and it must never
 * emit a byte that came from a device or an operator without HTML-escaping it.
 */
#define _GNU_SOURCE

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "server.h"

#define COOKIE_NAME "airlock_session"
#define SESSION_MAX 64          /* live sessions; the oldest is dropped beyond */
#define SESSION_TTL (12 * 3600) /* seconds a login lasts */
#define FORM_LIMIT 4096         /* login / logout bodies */
#define ACTIONS_SHOWN 500       /* rows of a campaign's device table */
#define FEEDBACK_SHOWN 500      /* newest feedback messages shown per device */
#define DEVICES_SHOWN 100       /* most recently seen devices on the overview */
#define SEEN_WINDOW 3600        /* "seen in the last hour" */

/* ---- HTML building ------------------------------------------------------------- */

/* A growing page. Out of memory is remembered and answered 500 at the end. */
struct html {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put_n(struct html *h, const char *s, size_t n)
{
    if (h->oom || n == 0) {
        return;
    }
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 16384;
        while (cap < h->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(h->p, cap);
        if (!p) {
            h->oom = true;
            return;
        }
        h->p = p;
        h->cap = cap;
    }
    memcpy(h->p + h->len, s, n);
    h->len += n;
    h->p[h->len] = '\0';
}

/* Markup we wrote ourselves. Never pass data through put or putf's %s. */
static void put(struct html *h, const char *s)
{
    put_n(h, s, strlen(s));
}

static void putf(struct html *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct html *h, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        h->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        put_n(h, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        h->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put_n(h, big, (size_t)n);
    free(big);
}

/*
 * Data: escaped for element text and for double- or single-quoted attribute
 * values alike. Control characters other than tab and newline become U+FFFD.
 */
static void esc(struct html *h, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            rep = (unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' ? "\xEF\xBF\xBD" : NULL;
            break;
        }
        if (rep) {
            put_n(h, run, (size_t)(s - run));
            put(h, rep);
            run = s + 1;
        }
    }
    put_n(h, run, (size_t)(s - run));
}

/* Data as one URL path segment (percent-encoded; the result needs no HTML escaping). */
static void put_seg(struct html *h, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            put_n(h, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put_n(h, e, 3);
        }
    }
}

/* A link to a device or campaign page: <a href="/dashboard/kind/seg">text</a>. */
static void put_link(struct html *h, const char *kind, const char *name)
{
    putf(h, "<a href=\"/dashboard/%s/", kind);
    put_seg(h, name);
    put(h, "\">");
    esc(h, name);
    put(h, "</a>");
}

static void put_time(struct html *h, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char buf[40];
    if (t <= 0 || !gmtime_r(&tt, &tm)) {
        put(h, "<span class=\"muted\">never</span>");
        return;
    }
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    putf(h, "<time datetime=\"%" PRId64 "\">%s UTC</time>", t, buf);
}

/* " (5 min ago)" / " (in 2 h)" */
static void put_ago(struct html *h, int64_t t, int64_t now)
{
    int64_t d = now - t;
    bool future = d < 0;
    if (t <= 0) {
        return;
    }
    if (future) {
        d = -d;
    }
    const char *unit = "s";
    if (d >= 2 * 86400) {
        d /= 86400;
        unit = " days";
    } else if (d >= 2 * 3600) {
        d /= 3600;
        unit = " h";
    } else if (d >= 120) {
        d /= 60;
        unit = " min";
    }
    putf(h, " <span class=\"muted\">(%s%" PRId64 "%s%s)</span>", future ? "in " : "", d, unit,
         future ? "" : " ago");
}

/* ---- pages and answers ------------------------------------------------------------ */

static const char css[] =
    ":root{--ok:#16a34a;--fail:#dc2626;--run:#f59e0b;--offer:#3b82f6;--pend:#94a3b8;"
    "--cancel:#64748b;--ink:#1e293b;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,sans-serif;color:var(--ink);background:var(--bg)}"
    "header{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#0f172a}"
    "header a{color:#fff;text-decoration:none}"
    ".brand{font-weight:700;font-size:18px;letter-spacing:.5px}"
    "header nav{margin-left:auto;display:flex;gap:16px;align-items:center}"
    "header form{margin:0}"
    "header button{background:none;color:#cbd5e1;border:1px solid #475569;border-radius:4px;"
    "padding:4px 10px;cursor:pointer}"
    "main{max-width:1200px;margin:0 auto;padding:16px 24px 40px}"
    "h1{font-size:22px;margin:6px 0 12px}h2{font-size:16px;margin:26px 0 8px}"
    "a{color:#1d4ed8}"
    ".crumbs{margin:0;color:var(--muted)}"
    ".cards{display:flex;gap:14px;flex-wrap:wrap;margin:8px 0}"
    ".card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;"
    "min-width:150px}"
    ".card .n{font-size:26px;font-weight:700}.card .l{color:var(--muted)}"
    ".split{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}"
    "table{border-collapse:collapse;background:#fff;border:1px solid var(--line)}"
    "table.wide{width:100%}"
    "th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;"
    "vertical-align:top}"
    "th{background:#f1f5f9;font-weight:600}"
    "table.kv th{width:180px}"
    ".num{text-align:right;font-variant-numeric:tabular-nums}"
    ".badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;"
    "font-weight:600;background:#e2e8f0;color:#334155}"
    ".st-success,.st-finished{background:#dcfce7;color:#166534}"
    ".st-failure{background:#fee2e2;color:#991b1b}"
    ".st-paused,.st-cancelling{background:#fef3c7;color:#92400e}"
    ".st-running{background:#ffedd5;color:#9a3412}"
    ".st-offered,.st-scheduled{background:#dbeafe;color:#1e40af}"
    ".muted{color:var(--muted)}"
    ".details{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;"
    "word-break:break-word;max-width:420px}"
    ".bar{display:flex;height:22px;border-radius:4px;overflow:hidden;background:#f1f5f9;"
    "width:420px}"
    ".seg{flex-basis:0;min-width:22px;color:#fff;font-size:12px;font-weight:600;"
    "text-align:center;line-height:22px;overflow:hidden}"
    ".seg-success{background:var(--ok)}.seg-failure{background:var(--fail)}"
    ".seg-open{background:var(--run)}.seg-pending{background:var(--pend)}"
    ".seg-cancelled{background:var(--cancel)}"
    "svg{background:#fff;border:1px solid var(--line);border-radius:6px}"
    "svg text{font:11px system-ui,sans-serif;fill:#334155}"
    ".login{max-width:380px;margin:70px auto;background:#fff;border:1px solid var(--line);"
    "border-radius:8px;padding:20px 24px}"
    ".login input{width:100%;padding:7px;margin:6px 0 12px;font:inherit}"
    ".login button{padding:7px 18px;font:inherit;cursor:pointer}"
    ".error{color:var(--fail);font-weight:600}";

/* The page's start; title is data (escaped here). */
static void page_start(struct html *h, const char *title, bool nav)
{
    put(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    esc(h, title);
    put(h, " - airlock</title><style>");
    put(h, css);
    put(h, "</style></head><body><header><a class=\"brand\" href=\"/dashboard\">airlock</a>");
    if (nav) {
        put(h, "<nav><a href=\"/dashboard\">Fleet</a>"
               "<form method=\"post\" action=\"/dashboard/logout\">"
               "<button id=\"logout\" type=\"submit\">Log out</button></form></nav>");
    }
    put(h, "</header><main>\n");
}

static void page_end(struct html *h)
{
    put(h, "</main></body></html>\n");
}

/*
 * Headers of every dashboard answer. The policy allows no script and no
 * fetch at all: were an escape ever missed, injected markup still could not
 * run or load anything.
 */
static void secure_headers(srv_resp_t *w)
{
    srv_resp_header(w, "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                    "frame-ancestors 'none'; base-uri 'none'");
    srv_resp_header(w, "X-Content-Type-Options", "nosniff");
    srv_resp_header(w, "Cache-Control", "no-store");
    srv_resp_header(w, "Referrer-Policy", "no-referrer");
}

/* Answer with the page (h's buffer moves to w). */
static void send_page(srv_resp_t *w, unsigned status, struct html *h)
{
    if (h->oom || !h->p) {
        free(h->p);
        srv_resp_text(w, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    free(w->body);
    w->status = status;
    w->content_type = "text/html; charset=utf-8";
    w->body = h->p;
    w->body_len = h->len;
    h->p = NULL;
    secure_headers(w);
}

static void redirect(srv_resp_t *w, const char *to)
{
    srv_resp_text(w, 303, "text/plain; charset=utf-8", "see other\n");
    srv_resp_header(w, "Location", "%s", to);
    secure_headers(w);
}

/* A short page for errors: message is our text, what (may be NULL) is data. */
static void error_page(srv_resp_t *w, unsigned status, const char *message, const char *what)
{
    struct html h = {0};
    page_start(&h, "Error", true);
    putf(&h, "<h1>%s</h1><p id=\"error\">", message);
    if (what) {
        esc(&h, what);
    }
    put(&h, "</p><p><a href=\"/dashboard\">Back to the fleet</a></p>");
    page_end(&h);
    send_page(w, status, &h);
}

static void store_error(srv_resp_t *w, const store_t *st, int rc)
{
    char msg[400];
    snprintf(msg, sizeof(msg), "%s: %s", store_errname(rc), st->errmsg);
    error_page(w, rc == STORE_BUSY ? 503 : 500, "The store failed", msg);
    if (rc == STORE_BUSY) {
        srv_resp_header(w, "Retry-After", "2");
    }
}

/* ---- sessions ----------------------------------------------------------------------- */

/*
 * Logged-in browsers, in memory: a static table in this file, the one piece
 * of server state kept outside the store. Acceptable for the dashboard: a
 * restart only asks operators to log in again. It also means a session is
 * good on the process that made it only (several servers on one database
 * each want their own login). The table keeps SHA-256 of each session id,
 * never the id itself, and the operator token's hash at login, so changing
 * the operator token ends every session.
 */
struct session {
    const struct srv *srv;
    char id_hash[65];
    char token_hash[65];
    int64_t expires;
};

static struct session sessions[SESSION_MAX];
static pthread_mutex_t sessions_lock = PTHREAD_MUTEX_INITIALIZER;

/* The cookie's value from the Cookie header, or false. */
static bool session_cookie(const srv_req_t *r, char *out, size_t cap)
{
    const char *c = srv_req_header(r, "Cookie");
    size_t name_len = strlen(COOKIE_NAME);
    while (c && *c) {
        while (*c == ' ' || *c == ';') {
            c++;
        }
        const char *end = strchr(c, ';');
        size_t len = end ? (size_t)(end - c) : strlen(c);
        if (len > name_len && strncmp(c, COOKIE_NAME "=", name_len + 1) == 0) {
            size_t vlen = len - name_len - 1;
            if (vlen == 0 || vlen >= cap) {
                return false;
            }
            memcpy(out, c + name_len + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        c = end;
    }
    return false;
}

static bool operator_hash(store_t *st, char out[80])
{
    out[0] = '\0';
    return st->ops->setting_get(st, "operator_token_sha256", out, 80) == STORE_OK &&
           strlen(out) == 64;
}

static bool session_valid(const srv_req_t *r)
{
    char id[64], id_hash[65], token_hash[80];
    bool ok = false;
    if (!session_cookie(r, id, sizeof(id)) || !operator_hash(r->srv->store, token_hash)) {
        return false;
    }
    srv_sha256_hex(id, strlen(id), id_hash);
    int64_t now = srv_now();
    pthread_mutex_lock(&sessions_lock);
    for (size_t i = 0; i < SESSION_MAX; i++) {
        struct session *s = &sessions[i];
        if (s->srv == r->srv && s->expires > now && srv_digest_equal(s->id_hash, id_hash) &&
            srv_digest_equal(s->token_hash, token_hash)) {
            ok = true;
        }
    }
    pthread_mutex_unlock(&sessions_lock);
    return ok;
}

/* A new session for a browser that proved the operator token. Returns 0 or -1. */
static int session_new(const srv_req_t *r, const char *token_hash, char id[33])
{
    char id_hash[65];
    if (srv_token_new(id) != 0) {
        return -1;
    }
    srv_sha256_hex(id, strlen(id), id_hash);
    int64_t now = srv_now();
    pthread_mutex_lock(&sessions_lock);
    size_t slot = 0;
    for (size_t i = 0; i < SESSION_MAX; i++) {
        if (sessions[i].expires <= now) {
            slot = i;
            break;
        }
        if (sessions[i].expires < sessions[slot].expires) {
            slot = i; /* full: the session closest to expiry goes */
        }
    }
    sessions[slot].srv = r->srv;
    memcpy(sessions[slot].id_hash, id_hash, sizeof(id_hash));
    snprintf(sessions[slot].token_hash, sizeof(sessions[slot].token_hash), "%s", token_hash);
    sessions[slot].expires = now + SESSION_TTL;
    pthread_mutex_unlock(&sessions_lock);
    return 0;
}

static void session_end(const srv_req_t *r)
{
    char id[64], id_hash[65];
    if (!session_cookie(r, id, sizeof(id))) {
        return;
    }
    srv_sha256_hex(id, strlen(id), id_hash);
    pthread_mutex_lock(&sessions_lock);
    for (size_t i = 0; i < SESSION_MAX; i++) {
        if (sessions[i].srv == r->srv && srv_digest_equal(sessions[i].id_hash, id_hash)) {
            memset(&sessions[i], 0, sizeof(sessions[i]));
        }
    }
    pthread_mutex_unlock(&sessions_lock);
}

/* True when logged in; otherwise answers 303 to the login page. */
static bool require_session(const srv_req_t *r, srv_resp_t *w)
{
    if (session_valid(r)) {
        return true;
    }
    redirect(w, "/dashboard/login");
    return false;
}

/* ---- login ---------------------------------------------------------------------------- */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* URL-decode src[0..n) into out. Returns false if it does not fit or is malformed. */
static bool form_decode(const char *src, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)src[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)src[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return false;
            }
            c = hi << 4 | lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) {
            return false;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* The value of field name in an application/x-www-form-urlencoded body. */
static bool form_field(const char *body, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            return form_decode(p + nlen + 1, (size_t)(stop - p - (ptrdiff_t)nlen - 1), out, cap);
        }
        p = stop + 1;
    }
    return false;
}

static void login_form(srv_resp_t *w, unsigned status, const char *error)
{
    struct html h = {0};
    page_start(&h, "Log in", false);
    put(&h, "<div class=\"login\"><h1>Operator login</h1>");
    if (error) {
        putf(&h, "<p class=\"error\" id=\"login-error\">%s</p>", error);
    }
    put(&h, "<form method=\"post\" action=\"/dashboard/login\">"
            "<label for=\"token\">Operator token</label>"
            "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\""
            " required autofocus>"
            "<button type=\"submit\" id=\"login\">Log in</button></form>"
            "<p class=\"muted\">The token <code>airlock server init</code> printed.</p></div>");
    page_end(&h);
    send_page(w, status, &h);
}

static void get_login(srv_req_t *r, srv_resp_t *w)
{
    if (session_valid(r)) {
        redirect(w, "/dashboard");
        return;
    }
    login_form(w, 200, NULL);
}

/*
 * A form another site made the browser send. SameSite=Strict already keeps
 * the session cookie off such requests; this refuses them outright.
 */
static bool cross_site(const srv_req_t *r, srv_resp_t *w)
{
    const char *site = srv_req_header(r, "Sec-Fetch-Site");
    if (site && strcmp(site, "cross-site") == 0) {
        error_page(w, 403, "Refused", "a form from another site");
        return true;
    }
    return false;
}

/* Checks the token as srv_auth_operator does: its SHA-256 against the stored hash. */
static void post_login(srv_req_t *r, srv_resp_t *w)
{
    char token[256], hash[65], want[80], id[33];
    if (cross_site(r, w)) {
        return;
    }
    if (!r->body || !form_field(r->body, r->body_len, "token", token, sizeof(token)) || !token[0]) {
        login_form(w, 400, "Enter the operator token.");
        return;
    }
    srv_sha256_hex(token, strlen(token), hash);
    explicit_bzero(token, sizeof(token));
    if (!operator_hash(r->srv->store, want) || !srv_digest_equal(hash, want)) {
        login_form(w, 401, "That is not the operator token.");
        return;
    }
    if (session_new(r, want, id) != 0) {
        error_page(w, 500, "Cannot make a session", "no randomness");
        return;
    }
    redirect(w, "/dashboard");
    srv_resp_header(w, "Set-Cookie",
                    COOKIE_NAME "=%s; HttpOnly; Secure; SameSite=Strict; Path=/dashboard", id);
    explicit_bzero(id, sizeof(id));
}

static void post_logout(srv_req_t *r, srv_resp_t *w)
{
    if (cross_site(r, w)) {
        return;
    }
    session_end(r);
    redirect(w, "/dashboard/login");
    srv_resp_header(w, "Set-Cookie",
                    COOKIE_NAME "=; Max-Age=0; HttpOnly; Secure; SameSite=Strict; Path=/dashboard");
}

/* ---- collecting rows ------------------------------------------------------------------ */

/* A growing array of fixed-size rows. */
struct rows {
    void *v;
    size_t n, cap, size;
    bool oom;
};

static void *rows_add(struct rows *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        void *v = realloc(l->v, cap * l->size);
        if (!v) {
            l->oom = true;
            return NULL;
        }
        l->v = v;
        l->cap = cap;
    }
    return (char *)l->v + l->size * l->n++;
}

static int add_campaign(void *ctx, const store_campaign_t *c)
{
    store_campaign_t *o = rows_add(ctx);
    if (!o) {
        return 1;
    }
    *o = *c;
    return 0;
}

static int add_action(void *ctx, const store_action_t *a)
{
    store_action_t *o = rows_add(ctx);
    if (!o) {
        return 1;
    }
    *o = *a;
    return 0;
}

static int add_transition(void *ctx, const store_transition_t *t)
{
    store_transition_t *o = rows_add(ctx);
    if (!o) {
        return 1;
    }
    *o = *t;
    return 0;
}

static int64_t open_of(const store_counts_t *n)
{
    return n->n[STORE_ACT_OFFERED] + n->n[STORE_ACT_RUNNING] + n->n[STORE_ACT_CANCELLING];
}

static void put_state(struct html *h, const char *name)
{
    putf(h, "<span class=\"badge st-%s\">%s</span>", name, name);
}

/* ---- fleet overview -------------------------------------------------------------------- */

struct version_count {
    char version[STORE_VERSION_MAX];
    int64_t n;
};

struct recent {
    int64_t id, last_seen, polls;
    char controller_id[STORE_NAME_MAX];
    char name[STORE_NAME_MAX];
    char version[STORE_VERSION_MAX];
};

struct fleet {
    struct rows versions; /* struct version_count */
    struct recent recent[DEVICES_SHOWN];
    size_t nrecent;
    int64_t devices, seen_recently, since;
    bool oom;
};

static int fleet_device(void *ctx, const store_device_t *d)
{
    struct fleet *f = ctx;
    struct version_count *vc = f->versions.v;
    size_t i;
    f->devices++;
    if (d->last_seen >= f->since) {
        f->seen_recently++;
    }
    for (i = 0; i < f->versions.n && strcmp(vc[i].version, d->version) != 0; i++) {
    }
    if (i == f->versions.n) {
        vc = rows_add(&f->versions);
        if (!vc) {
            f->oom = true;
            return 1;
        }
        memset(vc, 0, sizeof(*vc));
        snprintf(vc->version, sizeof(vc->version), "%s", d->version);
        vc->n = 1;
    } else {
        vc[i].n++;
    }
    /* the DEVICES_SHOWN most recently seen, newest first (insertion into a short list) */
    size_t at = f->nrecent;
    while (at > 0 && f->recent[at - 1].last_seen < d->last_seen) {
        at--;
    }
    if (at < DEVICES_SHOWN) {
        size_t last = f->nrecent < DEVICES_SHOWN ? f->nrecent : DEVICES_SHOWN - 1;
        memmove(&f->recent[at + 1], &f->recent[at], (last - at) * sizeof(f->recent[0]));
        struct recent *r = &f->recent[at];
        r->id = d->id;
        r->last_seen = d->last_seen;
        r->polls = d->polls;
        snprintf(r->controller_id, sizeof(r->controller_id), "%s", d->controller_id);
        snprintf(r->name, sizeof(r->name), "%s", d->name);
        snprintf(r->version, sizeof(r->version), "%s", d->version);
        if (f->nrecent < DEVICES_SHOWN) {
            f->nrecent++;
        }
    }
    return 0;
}

static int by_count(const void *a, const void *b)
{
    const struct version_count *x = a, *y = b;
    return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->version, y->version);
}

/* Devices per running version as horizontal bars. */
static void version_chart(struct html *h, const struct version_count *vc, size_t n)
{
    const unsigned width = 460, left = 12, bar_w = 360, row = 40;
    int64_t max = 1;
    for (size_t i = 0; i < n; i++) {
        max = vc[i].n > max ? vc[i].n : max;
    }
    unsigned height = (unsigned)(n ? n : 1) * row + 12;
    putf(h,
         "<svg id=\"version-chart\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
         "role=\"img\" aria-label=\"devices per running version\">",
         width, height, width, height);
    for (size_t i = 0; i < n; i++) {
        unsigned y = 8 + (unsigned)i * row;
        double w = (double)bar_w * (double)vc[i].n / (double)max;
        putf(h, "<text x=\"%u\" y=\"%u\">", left, y + 11);
        esc(h, vc[i].version[0] ? vc[i].version : "(not reported)");
        putf(h,
             "</text><rect class=\"version-bar\" x=\"%u\" y=\"%u\" width=\"%.1f\" height=\"16\" "
             "rx=\"3\" "
             "fill=\"#3b82f6\" data-version=\"",
             left, y + 15, w < 2 ? 2.0 : w);
        esc(h, vc[i].version);
        putf(h, "\" data-count=\"%" PRId64 "\"/><text x=\"%.1f\" y=\"%u\">%" PRId64 "</text>",
             vc[i].n, left + (w < 2 ? 2.0 : w) + 6, y + 27, vc[i].n);
    }
    put(h, "</svg>");
}

static void get_overview(srv_req_t *r, srv_resp_t *w)
{
    if (!require_session(r, w)) {
        return;
    }
    store_t *st = r->srv->store;
    int64_t now = srv_now();
    struct fleet *f = calloc(1, sizeof(*f));
    struct rows camps = {.size = sizeof(store_campaign_t)};
    struct html h = {0};
    int rc;
    if (!f) {
        srv_resp_text(w, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    f->versions.size = sizeof(struct version_count);
    f->since = now - SEEN_WINDOW;
    /* one pass over the fleet (the counts, the versions and the recent devices) */
    rc = st->ops->device_list(st, 0, fleet_device, f);
    if (rc == STORE_OK && (f->oom || f->versions.oom)) {
        rc = STORE_IO;
    }
    if (rc == STORE_OK) {
        rc = st->ops->campaign_list(st, 0, add_campaign, &camps);
    }
    if (rc != STORE_OK) {
        store_error(w, st, rc);
        goto out;
    }
    struct version_count *vc = f->versions.v;
    qsort(vc, f->versions.n, sizeof(*vc), by_count);
    store_campaign_t *cv = camps.v;
    int64_t active = 0;
    for (size_t i = 0; i < camps.n; i++) {
        active += cv[i].state == STORE_CAMP_RUNNING || cv[i].state == STORE_CAMP_SCHEDULED ||
                  cv[i].state == STORE_CAMP_PAUSED;
    }

    page_start(&h, "Fleet", true);
    put(&h, "<h1>Fleet</h1><div class=\"cards\">");
    putf(&h,
         "<div class=\"card\"><div class=\"n\"><span id=\"device-count\">%" PRId64
         "</span></div><div class=\"l\">devices</div></div>"
         "<div class=\"card\"><div class=\"n\"><span id=\"seen-last-hour\">%" PRId64
         "</span></div><div class=\"l\">seen in the last hour</div></div>"
         "<div class=\"card\"><div class=\"n\"><span id=\"version-count\">%zu</span></div>"
         "<div class=\"l\">versions running</div></div>"
         "<div class=\"card\"><div class=\"n\"><span id=\"campaigns-active\">%" PRId64
         "</span></div><div class=\"l\">campaigns not finished</div></div></div>",
         f->devices, f->seen_recently, f->versions.n, active);

    put(&h, "<h2>Running versions</h2><div class=\"split\"><table id=\"versions\"><thead><tr>"
            "<th>Version</th><th class=\"num\">Devices</th><th class=\"num\">Share</th></tr>"
            "</thead><tbody>");
    for (size_t i = 0; i < f->versions.n; i++) {
        put(&h, "<tr class=\"version\" data-version=\"");
        esc(&h, vc[i].version);
        put(&h, "\"><td class=\"version\">");
        esc(&h, vc[i].version[0] ? vc[i].version : "(not reported)");
        putf(&h, "</td><td class=\"num count\">%" PRId64 "</td><td class=\"num\">%.1f%%</td></tr>",
             vc[i].n, f->devices ? 100.0 * (double)vc[i].n / (double)f->devices : 0.0);
    }
    put(&h, "</tbody></table>");
    version_chart(&h, vc, f->versions.n);
    put(&h, "</div>");

    put(&h, "<h2>Campaigns</h2>");
    if (camps.n == 0) {
        put(&h, "<p class=\"muted\" id=\"no-campaigns\">No campaigns yet.</p>");
    } else {
        put(&h, "<table id=\"campaigns\" class=\"wide\"><thead><tr><th>Campaign</th>"
                "<th>Artifact</th><th>State</th><th>Wave</th><th class=\"num\">Success</th>"
                "<th class=\"num\">Failure</th><th class=\"num\">Open</th><th>Reason</th></tr>"
                "</thead><tbody>");
    }
    for (size_t i = camps.n; i-- > 0;) { /* newest first */
        const store_campaign_t *c = &cv[i];
        store_artifact_t art;
        store_counts_t n;
        if (st->ops->artifact_get(st, c->artifact_id, &art) != STORE_OK) {
            memset(&art, 0, sizeof(art));
        }
        if (st->ops->action_counts(st, c->id, -1, &n) != STORE_OK) {
            memset(&n, 0, sizeof(n));
        }
        const char *state = store_campaign_state_name(c->state);
        put(&h, "<tr class=\"campaign\" data-campaign=\"");
        esc(&h, c->name);
        putf(&h, "\" data-state=\"%s\"><td class=\"name\">", state);
        put_link(&h, "campaigns", c->name);
        put(&h, "</td><td class=\"artifact\">");
        esc(&h, art.name);
        put(&h, " <span class=\"muted\">");
        esc(&h, art.version);
        put(&h, "</span></td><td class=\"state\">");
        put_state(&h, state);
        putf(&h,
             "</td><td class=\"wave\">%u / %u</td><td class=\"num success\">%" PRId64
             "</td><td class=\"num failure\">%" PRId64 "</td><td class=\"num open\">%" PRId64
             "</td><td class=\"reason\">",
             c->current_wave + 1, c->nwaves, n.n[STORE_ACT_SUCCESS], n.n[STORE_ACT_FAILURE],
             open_of(&n));
        esc(&h, c->reason);
        put(&h, "</td></tr>");
    }
    if (camps.n) {
        put(&h, "</tbody></table>");
    }

    putf(&h,
         "<h2>Devices</h2><p class=\"muted\">The %zu most recently seen of %" PRId64 ".</p>"
         "<table id=\"devices\" class=\"wide\"><thead><tr><th>Device</th><th>Name</th>"
         "<th>Version</th><th>Last seen</th><th class=\"num\">Polls</th></tr></thead><tbody>",
         f->nrecent, f->devices);
    for (size_t i = 0; i < f->nrecent; i++) {
        const struct recent *d = &f->recent[i];
        put(&h, "<tr class=\"device\" data-device=\"");
        esc(&h, d->controller_id);
        put(&h, "\"><td>");
        put_link(&h, "devices", d->controller_id);
        put(&h, "</td><td class=\"name\">");
        esc(&h, d->name);
        put(&h, "</td><td class=\"version\">");
        esc(&h, d->version);
        put(&h, "</td><td>");
        put_time(&h, d->last_seen);
        put_ago(&h, d->last_seen, now);
        putf(&h, "</td><td class=\"num\">%" PRId64 "</td></tr>", d->polls);
    }
    put(&h, "</tbody></table>");
    page_end(&h);
    send_page(w, 200, &h);
out:
    free(h.p);
    free(f->versions.v);
    free(f);
    free(camps.v);
}

/* ---- campaign: the rollout chart ------------------------------------------------------- */

enum { SER_OFFERED, SER_RUNNING, SER_SUCCESS, SER_FAILURE, SER_N };

static const struct {
    const char *name;
    const char *color;
} series[SER_N] = {
    {"offered", "#3b82f6"},
    {"running", "#f59e0b"},
    {"success", "#16a34a"},
    {"failure", "#dc2626"},
};

/* Counts after every distinct transition time. */
struct sample {
    int64_t t;
    int64_t v[SER_N];
};

struct points {
    double *xy;
    size_t n, cap;
    bool oom;
};

/*
 * Append a point; runs of points on one pixel column collapse to their first
 * and last, so a chart of a big fleet stays a few points per pixel.
 */
static void point(struct points *p, double x, double y)
{
    if (p->n >= 2 && p->xy[2 * (p->n - 1)] - x < 0.5 && x - p->xy[2 * (p->n - 1)] < 0.5 &&
        p->xy[2 * (p->n - 2)] - x < 0.5 && x - p->xy[2 * (p->n - 2)] < 0.5) {
        p->xy[2 * (p->n - 1) + 1] = y;
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        double *xy = realloc(p->xy, cap * 2 * sizeof(double));
        if (!xy) {
            p->oom = true;
            return;
        }
        p->xy = xy;
        p->cap = cap;
    }
    p->xy[2 * p->n] = x;
    p->xy[2 * p->n + 1] = y;
    p->n++;
}

static int by_time(const void *a, const void *b)
{
    const store_transition_t *x = a, *y = b;
    return (x->at > y->at) - (x->at < y->at);
}

/* A "nice" step (1, 2, 5 x 10^k) giving at most max_ticks ticks over span. */
static int64_t nice_step(int64_t span, int64_t max_ticks)
{
    int64_t step = 1;
    for (;;) {
        for (int m = 0; m < 3; m++) {
            int64_t s = step * (m == 0 ? 1 : m == 1 ? 2 : 5);
            if (span / s <= max_ticks) {
                return s;
            }
        }
        step *= 10;
    }
}

static int64_t time_step(int64_t span)
{
    static const int64_t steps[] = {1,     2,     5,      10,     15,      30,     60,    120,
                                    300,   600,   900,    1800,   3600,    7200,   10800, 21600,
                                    43200, 86400, 172800, 604800, 1209600, 2592000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (span / steps[i] <= 6) {
            return steps[i];
        }
    }
    return (span / 6 / 2592000 + 1) * 2592000;
}

/*
 * Devices per state over time: replay the campaign's transitions in time
 * order keeping a count per state (each transition moves one device from its
 * old state to its new one), sample after each distinct time, and draw one
 * step line per state. Transitions with one time commute, so their order
 * within that second does not matter.
 */
static void rollout_chart(struct html *h, const store_campaign_t *c, store_transition_t *tv,
                          size_t tn, int64_t now)
{
    enum { W = 780, H = 330, ML = 52, MR = 20, MT = 36, MB = 44 };
    const double pw = W - ML - MR, ph = H - MT - MB;
    int64_t cnt[9] = {0};
    struct sample *sv = calloc(tn ? tn : 1, sizeof(*sv));
    struct points pts[SER_N];
    size_t sn = 0;
    memset(pts, 0, sizeof(pts));
    if (!sv) {
        h->oom = true;
        return;
    }
    qsort(tv, tn, sizeof(*tv), by_time);
    for (size_t i = 0; i < tn; i++) {
        if (tv[i].from_state > 0 && tv[i].from_state < 9 && cnt[tv[i].from_state] > 0) {
            cnt[tv[i].from_state]--;
        }
        if (tv[i].to_state > 0 && tv[i].to_state < 9) {
            cnt[tv[i].to_state]++;
        }
        if (i + 1 < tn && tv[i + 1].at == tv[i].at) {
            continue;
        }
        sv[sn].t = tv[i].at;
        sv[sn].v[SER_OFFERED] = cnt[STORE_ACT_OFFERED];
        sv[sn].v[SER_RUNNING] = cnt[STORE_ACT_RUNNING] + cnt[STORE_ACT_CANCELLING];
        sv[sn].v[SER_SUCCESS] = cnt[STORE_ACT_SUCCESS];
        sv[sn].v[SER_FAILURE] = cnt[STORE_ACT_FAILURE];
        sn++;
    }
    /* the time axis: first transition to the last (or to now while the campaign lives) */
    int64_t t0 = sn ? sv[0].t : now, t1 = sn ? sv[sn - 1].t : now, ymax = 1;
    bool live = c->state == STORE_CAMP_RUNNING || c->state == STORE_CAMP_PAUSED ||
                c->state == STORE_CAMP_SCHEDULED;
    if (live && now > t1) {
        t1 = now;
    }
    if (t1 - t0 < 60) {
        t1 = t0 + 60;
    }
    for (size_t i = 0; i < sn; i++) {
        for (int s = 0; s < SER_N; s++) {
            ymax = sv[i].v[s] > ymax ? sv[i].v[s] : ymax;
        }
    }
    int64_t ystep = nice_step(ymax, 5);
    int64_t ytop = (ymax + ystep - 1) / ystep * ystep;
#define X(t) (ML + pw * (double)((t)-t0) / (double)(t1 - t0))
#define Y(v) (MT + ph - ph * (double)(v) / (double)ytop)

    putf(h,
         "<svg id=\"rollout-chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
         "role=\"img\" aria-labelledby=\"rollout-title\" data-t0=\"%" PRId64 "\" data-t1=\"%" PRId64
         "\" data-ymax=\"%" PRId64 "\" data-samples=\"%zu\">"
         "<title id=\"rollout-title\">Devices per state over time</title>"
         "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"#fcfdfe\" "
         "stroke=\"#e2e8f0\"/>",
         W, H, W, H, t0, t1, ytop, sn, ML, MT, pw, ph);
    /* y axis: grid and counts */
    put(h, "<g class=\"y-axis\">");
    for (int64_t v = 0; v <= ytop; v += ystep) {
        putf(h,
             "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
             "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%" PRId64 "</text>",
             ML, ML + pw, Y(v), Y(v), v ? "#eef2f7" : "#94a3b8", ML - 6, Y(v) + 4, v);
    }
    putf(h,
         "<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">"
         "devices</text></g>",
         MT + ph / 2, MT + ph / 2);
    /* x axis: time labels in UTC */
    int64_t step = time_step(t1 - t0);
    const char *fmt = step < 60 ? "%H:%M:%S" : step < 86400 ? "%H:%M" : "%m-%d";
    put(h, "<g class=\"x-axis\">");
    for (int64_t t = (t0 + step - 1) / step * step; t <= t1; t += step) {
        char label[32];
        struct tm tm;
        time_t tt = (time_t)t;
        gmtime_r(&tt, &tm);
        strftime(label, sizeof(label), fmt, &tm);
        putf(h,
             "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#94a3b8\"/>"
             "<text class=\"tick time\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
             "data-t=\"%" PRId64 "\">%s</text>",
             X(t), X(t), MT + ph, MT + ph + 5, X(t), MT + ph + 18, t, label);
    }
    {
        char day[32];
        struct tm tm;
        time_t tt = (time_t)t0;
        gmtime_r(&tt, &tm);
        strftime(day, sizeof(day), "%Y-%m-%d", &tm);
        putf(h, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">time (UTC, from %s)</text></g>",
             ML + pw / 2, H - 8, day);
    }
    /* the series, as step lines */
    for (int s = 0; s < SER_N; s++) {
        int64_t prev = 0;
        point(&pts[s], X(t0), Y(0));
        for (size_t i = 0; i < sn; i++) {
            if (sv[i].v[s] != prev) {
                point(&pts[s], X(sv[i].t), Y(prev));
                point(&pts[s], X(sv[i].t), Y(sv[i].v[s]));
                prev = sv[i].v[s];
            }
        }
        point(&pts[s], X(t1), Y(prev));
        if (pts[s].oom) {
            h->oom = true;
        }
        putf(h,
             "<polyline id=\"series-%s\" class=\"series series-%s\" data-state=\"%s\" "
             "data-final=\"%" PRId64 "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" "
             "stroke-linejoin=\"round\" points=\"",
             series[s].name, series[s].name, series[s].name, prev, series[s].color,
             s >= SER_SUCCESS ? "2.5" : "2");
        for (size_t i = 0; i < pts[s].n; i++) {
            putf(h, "%s%.1f,%.1f", i ? " " : "", pts[s].xy[2 * i], pts[s].xy[2 * i + 1]);
        }
        put(h, "\"/>");
        free(pts[s].xy);
    }
    /* legend, above the plot */
    put(h, "<g id=\"rollout-legend\" class=\"legend\">");
    for (int s = 0; s < SER_N; s++) {
        int64_t last = sn ? sv[sn - 1].v[s] : 0;
        double x = ML + 8 + s * 150.0;
        putf(h,
             "<rect x=\"%.1f\" y=\"12\" width=\"14\" height=\"10\" rx=\"2\" fill=\"%s\"/>"
             "<text class=\"legend-%s\" x=\"%.1f\" y=\"21\">%s (%" PRId64 ")</text>",
             x, series[s].color, series[s].name, x + 19, series[s].name, last);
    }
    put(h, "</g>");
    if (!sn) {
        putf(h,
             "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"muted\">"
             "no activity yet</text>",
             ML + pw / 2, MT + ph / 2);
    }
    put(h, "</svg>");
#undef X
#undef Y
    free(sv);
}

/* ---- campaign page ---------------------------------------------------------------------- */

/* Order of the device table: what needs the operator first. */
static int state_rank(int state)
{
    static const int order[] = {STORE_ACT_FAILURE,   STORE_ACT_RUNNING, STORE_ACT_CANCELLING,
                                STORE_ACT_OFFERED,   STORE_ACT_SUCCESS, STORE_ACT_PENDING,
                                STORE_ACT_CANCELLED, STORE_ACT_SKIPPED};
    for (int i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++) {
        if (order[i] == state) {
            return i;
        }
    }
    return 99;
}

static int by_rank(const void *a, const void *b)
{
    const store_action_t *x = a, *y = b;
    int rx = state_rank(x->state), ry = state_rank(y->state);
    if (rx != ry) {
        return rx - ry;
    }
    if (x->wave != y->wave) {
        return x->wave < y->wave ? -1 : 1;
    }
    return (x->id > y->id) - (x->id < y->id);
}

static void wave_row(struct html *h, const store_campaign_t *c, unsigned w, const store_counts_t *n)
{
    static const struct {
        const char *cls;
        const char *label;
    } segs[] = {{"success", "success"},
                {"failure", "failure"},
                {"open", "open"},
                {"pending", "pending"},
                {"cancelled", "cancelled"}};
    int64_t v[5] = {n->n[STORE_ACT_SUCCESS], n->n[STORE_ACT_FAILURE], open_of(n),
                    n->n[STORE_ACT_PENDING], n->n[STORE_ACT_CANCELLED]};
    int64_t total = v[0] + v[1] + v[2] + v[3] + v[4];
    const char *status = w < c->current_wave    ? "done"
                         : w == c->current_wave ? "current"
                                                : "waiting";
    if (c->state == STORE_CAMP_FINISHED) {
        status = "done";
    } else if (c->state == STORE_CAMP_CANCELLED && w > c->current_wave) {
        status = "not started";
    }
    putf(h,
         "<tr class=\"wave\" data-wave=\"%u\" data-status=\"%s\" data-total=\"%" PRId64 "\">"
         "<td>Wave %u <span class=\"muted\">%s</span></td><td class=\"num\">%u%%</td><td>",
         w + 1, status, total, w + 1, status, c->waves[w]);
    if (total == 0) {
        put(h, "<div class=\"bar\"></div>");
    } else {
        put(h, "<div class=\"bar\">");
        for (int i = 0; i < 5; i++) {
            if (v[i]) {
                putf(h,
                     "<span class=\"seg seg-%s\" style=\"flex-grow:%" PRId64
                     "\" title=\"%s: %" PRId64 "\">%" PRId64 "</span>",
                     segs[i].cls, v[i], segs[i].label, v[i], v[i]);
            }
        }
        put(h, "</div>");
    }
    putf(h,
         "</td><td class=\"num success\">%" PRId64 "</td><td class=\"num failure\">%" PRId64
         "</td><td class=\"num open\">%" PRId64 "</td><td class=\"num pending\">%" PRId64
         "</td></tr>",
         v[0], v[1], v[2], v[3]);
}

static void get_campaign(srv_req_t *r, srv_resp_t *w)
{
    if (!require_session(r, w)) {
        return;
    }
    store_t *st = r->srv->store;
    store_campaign_t c;
    store_artifact_t art;
    store_group_t g;
    store_counts_t all;
    struct rows acts = {.size = sizeof(store_action_t)};
    struct rows trans = {.size = sizeof(store_transition_t)};
    struct html h = {0};
    int64_t now = srv_now();
    int rc = st->ops->campaign_by_name(st, r->segs[2], &c);
    if (rc == STORE_NOT_FOUND) {
        error_page(w, 404, "No such campaign", r->segs[2]);
        return;
    }
    if (rc == STORE_OK) {
        rc = st->ops->action_counts(st, c.id, -1, &all);
    }
    if (rc == STORE_OK) {
        rc = st->ops->transition_list(st, c.id, add_transition, &trans);
    }
    if (rc == STORE_OK) {
        rc = st->ops->action_list(st, c.id, 0, add_action, &acts);
    }
    if (rc == STORE_OK && (acts.oom || trans.oom)) {
        rc = STORE_IO;
    }
    if (rc != STORE_OK) {
        store_error(w, st, rc);
        goto out;
    }
    if (st->ops->artifact_get(st, c.artifact_id, &art) != STORE_OK) {
        memset(&art, 0, sizeof(art));
    }
    const char *state = store_campaign_state_name(c.state);

    page_start(&h, c.name, true);
    put(&h, "<p class=\"crumbs\"><a href=\"/dashboard\">Fleet</a> / campaign</p>"
            "<h1>Campaign <span id=\"campaign-name\">");
    esc(&h, c.name);
    putf(&h,
         "</span> <span id=\"campaign-state\" class=\"badge st-%s\" data-state=\"%s\">%s"
         "</span></h1><p id=\"campaign-reason\">",
         state, state, state);
    esc(&h, c.reason);
    put(&h, "</p><div class=\"cards\">");
    {
        static const struct {
            const char *id, *label;
        } cards[] = {{"count-targets", "devices targeted"}, {"count-success", "updated"},
                     {"count-failure", "failed"},           {"count-open", "in progress"},
                     {"count-pending", "waiting"},          {"count-skipped", "already on it"}};
        int64_t v[] = {all.total,     all.n[STORE_ACT_SUCCESS], all.n[STORE_ACT_FAILURE],
                       open_of(&all), all.n[STORE_ACT_PENDING], all.n[STORE_ACT_SKIPPED]};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
            putf(&h,
                 "<div class=\"card\"><div class=\"n\"><span id=\"%s\">%" PRId64
                 "</span></div><div class=\"l\">%s</div></div>",
                 cards[i].id, v[i], cards[i].label);
        }
    }
    put(&h, "</div><h2>Rollout</h2>");
    rollout_chart(&h, &c, trans.v, trans.n, now);

    put(&h, "<h2>Waves</h2><table id=\"waves\"><thead><tr><th>Wave</th><th class=\"num\">Target"
            "</th><th>Progress</th><th class=\"num\">Success</th><th class=\"num\">Failure</th>"
            "<th class=\"num\">Open</th><th class=\"num\">Pending</th></tr></thead><tbody>");
    for (unsigned i = 0; i < c.nwaves; i++) {
        store_counts_t n;
        if (st->ops->action_counts(st, c.id, (int)i, &n) != STORE_OK) {
            memset(&n, 0, sizeof(n));
        }
        n.n[STORE_ACT_SKIPPED] = 0; /* devices already on the version are in no wave */
        wave_row(&h, &c, i, &n);
    }
    put(&h, "</tbody></table>");

    put(&h, "<h2>Campaign</h2><table class=\"kv\" "
            "id=\"campaign-info\"><tbody><tr><th>Artifact</th><td>");
    esc(&h, art.name);
    put(&h, " <span class=\"muted\">version</span> <span id=\"campaign-version\">");
    esc(&h, art.version);
    putf(&h, "</span> <span class=\"muted\">(%" PRId64 " bytes, sha256 %.16s&hellip;)</span>",
         art.size, art.sha256);
    put(&h, "</td></tr><tr><th>Devices</th><td>");
    if (c.group_id && st->ops->group_get(st, c.group_id, &g) == STORE_OK) {
        put(&h, "group ");
        esc(&h, g.name);
    } else {
        put(&h, "every device");
    }
    put(&h, "</td></tr><tr><th>Waves</th><td>");
    for (unsigned i = 0; i < c.nwaves; i++) {
        putf(&h, "%s%u%%", i ? " &middot; " : "", c.waves[i]);
    }
    putf(&h,
         " <span class=\"muted\">(cumulative)</span></td></tr><tr><th>Failure threshold</th>"
         "<td>%u%% of a wave</td></tr><tr><th>Update type</th><td>%s</td></tr>"
         "<tr><th>Start</th><td>",
         c.failure_pct, c.forced ? "forced" : "attempt");
    if (c.start_at) {
        put_time(&h, c.start_at);
    } else {
        put(&h, "at once");
    }
    put(&h, "</td></tr><tr><th>Created</th><td>");
    put_time(&h, c.created_at);
    put(&h, "</td></tr><tr><th>Last change</th><td>");
    put_time(&h, c.updated_at);
    put_ago(&h, c.updated_at, now);
    put(&h, "</td></tr></tbody></table>");

    store_action_t *av = acts.v;
    qsort(av, acts.n, sizeof(*av), by_rank);
    size_t shown = acts.n < ACTIONS_SHOWN ? acts.n : ACTIONS_SHOWN;
    put(&h, "<h2>Devices</h2>");
    if (shown < acts.n) {
        putf(&h, "<p class=\"muted\">%zu of %zu devices, failures first.</p>", shown, acts.n);
    }
    put(&h, "<table id=\"actions\" class=\"wide\"><thead><tr><th>Device</th>"
            "<th class=\"num\">Wave</th><th>State</th><th class=\"num\">Progress</th>"
            "<th>Last details</th><th>Changed</th></tr></thead><tbody>");
    for (size_t i = 0; i < shown; i++) {
        const store_action_t *a = &av[i];
        store_device_t d;
        const char *as = store_action_state_name(a->state);
        if (st->ops->device_get(st, a->device_id, &d) != STORE_OK) {
            memset(&d, 0, sizeof(d));
            snprintf(d.controller_id, sizeof(d.controller_id), "#%" PRId64, a->device_id);
        }
        put(&h, "<tr class=\"action\" data-device=\"");
        esc(&h, d.controller_id);
        putf(&h, "\" data-state=\"%s\" data-action=\"%" PRId64 "\"><td>", as, a->id);
        put_link(&h, "devices", d.controller_id);
        if (d.name[0] && strcmp(d.name, d.controller_id) != 0) {
            put(&h, " <span class=\"muted\">");
            esc(&h, d.name);
            put(&h, "</span>");
        }
        store_device_clear(&d);
        if (a->state == STORE_ACT_SKIPPED) {
            put(&h, "</td><td class=\"num\">-</td><td class=\"state\">");
        } else {
            putf(&h, "</td><td class=\"num\">%u</td><td class=\"state\">", a->wave + 1);
        }
        put_state(&h, as);
        put(&h, "</td><td class=\"num\">");
        if (a->progress_of > 0) {
            putf(&h, "%d/%d", a->progress_cnt, a->progress_of);
        }
        put(&h, "</td><td class=\"details\">");
        esc(&h, a->details);
        put(&h, "</td><td>");
        put_time(&h, a->updated_at);
        put(&h, "</td></tr>");
    }
    put(&h, "</tbody></table>");
    page_end(&h);
    send_page(w, 200, &h);
out:
    free(h.p);
    free(acts.v);
    free(trans.v);
}

/* ---- device page ------------------------------------------------------------------------- */

struct feedback_rows {
    store_feedback_t *v; /* details strdup'd */
    size_t n, cap;
    bool oom;
};

/* Keeps the newest FEEDBACK_SHOWN (the store lists oldest first). */
static int add_feedback(void *ctx, const store_feedback_t *f)
{
    struct feedback_rows *l = ctx;
    char *details = strdup(f->details ? f->details : "");
    if (!details) {
        l->oom = true;
        return 1;
    }
    if (l->n == FEEDBACK_SHOWN) {
        free(l->v[0].details);
        memmove(&l->v[0], &l->v[1], (l->n - 1) * sizeof(l->v[0]));
        l->n--;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        store_feedback_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            free(details);
            l->oom = true;
            return 1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = *f;
    l->v[l->n].details = details;
    l->n++;
    return 0;
}

/* Feedback details (a JSON array of strings as the device sent it): one line each. */
static void put_details_json(struct html *h, const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!json_is_array(j)) {
        esc(h, text);
        json_decref(j);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v)
    {
        put(h, "<div class=\"msg\">");
        if (json_is_string(v)) {
            esc(h, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            esc(h, s ? s : "");
            free(s);
        }
        put(h, "</div>");
    }
    json_decref(j);
}

static void put_attributes(struct html *h, const char *text)
{
    json_error_t e;
    json_t *j = text ? json_loads(text, 0, &e) : NULL;
    if (!text) {
        put(h, "<p class=\"muted\" id=\"no-attributes\">None reported yet.</p>");
        return;
    }
    if (!json_is_object(j)) {
        put(h, "<p class=\"details\" id=\"attributes-raw\">");
        esc(h, text);
        put(h, "</p>");
        json_decref(j);
        return;
    }
    const char *k;
    json_t *v;
    put(h, "<table class=\"kv\" id=\"attributes\"><tbody>");
    json_object_foreach(j, k, v)
    {
        put(h, "<tr><th>");
        esc(h, k);
        put(h, "</th><td class=\"details\">");
        if (json_is_string(v)) {
            esc(h, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            esc(h, s ? s : "");
            free(s);
        }
        put(h, "</td></tr>");
    }
    put(h, "</tbody></table>");
    json_decref(j);
}

static void get_device(srv_req_t *r, srv_resp_t *w)
{
    if (!require_session(r, w)) {
        return;
    }
    store_t *st = r->srv->store;
    store_device_t d;
    struct rows acts = {.size = sizeof(store_action_t)};
    struct feedback_rows fb = {0};
    struct html h = {0};
    int64_t now = srv_now();
    int rc = st->ops->device_by_controller(st, r->segs[2], &d);
    if (rc == STORE_NOT_FOUND) {
        error_page(w, 404, "No such device", r->segs[2]);
        return;
    }
    if (rc != STORE_OK) {
        store_error(w, st, rc);
        return;
    }
    rc = st->ops->action_list(st, 0, d.id, add_action, &acts);
    if (rc == STORE_OK) {
        rc = st->ops->feedback_list(st, d.id, 0, add_feedback, &fb);
    }
    if (rc == STORE_OK && (acts.oom || fb.oom)) {
        rc = STORE_IO;
    }
    if (rc != STORE_OK) {
        store_error(w, st, rc);
        goto out;
    }

    page_start(&h, d.controller_id, true);
    put(&h, "<p class=\"crumbs\"><a href=\"/dashboard\">Fleet</a> / device</p>"
            "<h1>Device <span id=\"device-id\">");
    esc(&h, d.controller_id);
    put(&h, "</span></h1><table class=\"kv\" id=\"device-info\"><tbody><tr><th>Name</th>"
            "<td id=\"device-name\">");
    esc(&h, d.name);
    put(&h, "</td></tr><tr><th>Version</th><td id=\"device-version\">");
    esc(&h, d.version);
    put(&h, "</td></tr><tr><th>Last seen</th><td id=\"device-last-seen\">");
    put_time(&h, d.last_seen);
    put_ago(&h, d.last_seen, now);
    putf(&h,
         "</td></tr><tr><th>Polls</th><td id=\"device-polls\">%" PRId64 "</td></tr>"
         "<tr><th>Registered</th><td>",
         d.polls);
    put_time(&h, d.created_at);
    putf(&h, "</td></tr><tr><th>Device token</th><td>%s</td></tr></tbody></table>",
         d.token_hash[0] ? "set" : "<span class=\"muted\">none (gateway token only)</span>");
    put(&h, "<h2>Attributes</h2>");
    put_attributes(&h, d.attributes);

    put(&h, "<h2>Updates</h2>");
    if (acts.n == 0) {
        put(&h, "<p class=\"muted\" id=\"no-updates\">No campaign has included this device.</p>");
    } else {
        put(&h, "<table id=\"history\" class=\"wide\"><thead><tr><th>Campaign</th>"
                "<th>Version</th><th class=\"num\">Wave</th><th>State</th>"
                "<th class=\"num\">Progress</th><th>Last details</th><th>Offered</th>"
                "<th>Changed</th></tr></thead><tbody>");
    }
    store_action_t *av = acts.v;
    for (size_t i = acts.n; i-- > 0;) { /* newest first */
        const store_action_t *a = &av[i];
        store_campaign_t c;
        store_artifact_t art;
        const char *as = store_action_state_name(a->state);
        memset(&art, 0, sizeof(art));
        if (st->ops->campaign_get(st, a->campaign_id, &c) != STORE_OK) {
            memset(&c, 0, sizeof(c));
            snprintf(c.name, sizeof(c.name), "#%" PRId64, a->campaign_id);
        } else if (st->ops->artifact_get(st, c.artifact_id, &art) != STORE_OK) {
            memset(&art, 0, sizeof(art));
        }
        put(&h, "<tr class=\"action\" data-campaign=\"");
        esc(&h, c.name);
        putf(&h, "\" data-state=\"%s\" data-action=\"%" PRId64 "\"><td class=\"campaign\">", as,
             a->id);
        put_link(&h, "campaigns", c.name);
        put(&h, "</td><td>");
        esc(&h, art.version);
        putf(&h, "</td><td class=\"num\">%u</td><td class=\"state\">", a->wave + 1);
        put_state(&h, as);
        put(&h, "</td><td class=\"num\">");
        if (a->progress_of > 0) {
            putf(&h, "%d/%d", a->progress_cnt, a->progress_of);
        }
        put(&h, "</td><td class=\"details\">");
        esc(&h, a->details);
        put(&h, "</td><td>");
        put_time(&h, a->created_at);
        put(&h, "</td><td>");
        put_time(&h, a->updated_at);
        put(&h, "</td></tr>");
    }
    if (acts.n) {
        put(&h, "</tbody></table>");
    }

    put(&h, "<h2>Feedback</h2>");
    if (fb.n == 0) {
        put(&h, "<p class=\"muted\" id=\"no-feedback\">No feedback received.</p>");
    } else {
        put(&h, "<table id=\"feedback\" class=\"wide\"><thead><tr><th>Received</th>"
                "<th class=\"num\">Action</th><th>Execution</th><th>Finished</th>"
                "<th class=\"num\">Progress</th><th>Details</th><th>Device time</th></tr>"
                "</thead><tbody>");
    }
    for (size_t i = fb.n; i-- > 0;) { /* newest first */
        const store_feedback_t *f = &fb.v[i];
        putf(&h, "<tr class=\"feedback\" data-action=\"%" PRId64 "\"><td>", f->action_id);
        put_time(&h, f->received_at);
        putf(&h, "</td><td class=\"num\">%" PRId64 "</td><td class=\"execution\">", f->action_id);
        esc(&h, f->execution);
        put(&h, "</td><td class=\"finished\">");
        esc(&h, f->finished);
        put(&h, "</td><td class=\"num\">");
        if (f->progress_of > 0) {
            putf(&h, "%d/%d", f->progress_cnt, f->progress_of);
        }
        put(&h, "</td><td class=\"details\">");
        put_details_json(&h, f->details);
        put(&h, "</td><td class=\"time\">");
        esc(&h, f->time);
        put(&h, "</td></tr>");
    }
    if (fb.n) {
        put(&h, "</tbody></table>");
    }
    page_end(&h);
    send_page(w, 200, &h);
out:
    free(h.p);
    store_device_clear(&d);
    free(acts.v);
    for (size_t i = 0; i < fb.n; i++) {
        free(fb.v[i].details);
    }
    free(fb.v);
}

/* ---- routes ------------------------------------------------------------------------------- */

const srv_route_t srv_dashboard_routes[] = {
    {"GET", "/dashboard", get_overview, false, 0},
    {"GET", "/dashboard/login", get_login, false, 0},
    {"POST", "/dashboard/login", post_login, false, FORM_LIMIT},
    {"POST", "/dashboard/logout", post_logout, false, FORM_LIMIT},
    {"GET", "/dashboard/campaigns/{}", get_campaign, false, 0},
    {"GET", "/dashboard/devices/{}", get_device, false, 0},
    {NULL, NULL, NULL, false, 0},
};
