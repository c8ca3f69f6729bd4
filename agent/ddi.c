/*
 * hawkBit DDI client as a sans-IO state machine (include/airlock/ddi.h):
 * builds each request into airlock_ddi_t, digests each answer with jsmn.
 * Freestanding: never allocates, never prints, never reads a clock, holds no
 * global state; it must build for Cortex-M (cmake/cortexm.cmake).
 */
#include "airlock/ddi.h"

#include "airlock/crc32.h"

#include <string.h>

#include "airlock/err.h"

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

_Static_assert(sizeof(jsmntok_t) == 4 * sizeof(uint32_t), "jsmn token is four words");

/* Internal states: which request next() hands out. */
enum state {
    ST_PLAN = 0,      /* pick the next step (plan()) */
    ST_CONFIG,        /* PUT configData */
    ST_FINAL,         /* POST the after-reboot report of persist.action_id */
    ST_POLL,          /* GET the controller base */
    ST_CANCEL_GET,    /* GET cancelAction */
    ST_ABORT,         /* REQ_ABORT, then ST_CANCEL_FB */
    ST_CANCEL_FB,     /* POST cancelAction feedback */
    ST_DEPLOY_GET,    /* GET deploymentBase */
    ST_FB_PROCEEDING, /* POST proceeding before the download */
    ST_DOWNLOAD,      /* hand out REQ_DOWNLOAD */
    ST_DOWNLOADING,   /* waiting for airlock_ddi_download_done */
    ST_FB_INSTALLING, /* POST proceeding "installing" */
    ST_INSTALL,       /* REQ_INSTALL (repeated until the reboot) */
    ST_FB_CLOSED,     /* POST closed success/failure (close_ok) for action_id */
    ST_WAIT,          /* REQ_SLEEP sleep_ms, then pending_after */
};

/* ---- strings without stdio ---------------------------------------------------------- */

/* A bounded string builder: appends what fits, remembers that something did not. */
typedef struct sb {
    char *buf;
    size_t cap, len;
    bool over;
} sb_t;

static sb_t sb_start(char *buf, size_t cap)
{
    sb_t s = {buf, cap, 0, false};
    buf[0] = '\0';
    return s;
}

static void sb_putc(sb_t *s, char c)
{
    if (s->len + 1 < s->cap) {
        s->buf[s->len++] = c;
        s->buf[s->len] = '\0';
    } else {
        s->over = true;
    }
}

static void sb_puts(sb_t *s, const char *t)
{
    while (t && *t) {
        sb_putc(s, *t++);
    }
}

static void sb_putn(sb_t *s, const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sb_putc(s, t[i]);
    }
}

static void sb_u64(sb_t *s, uint64_t v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    while (n) {
        sb_putc(s, tmp[--n]);
    }
}

/*
 * t as the inside of a JSON string: quotes, backslashes and controls escaped.
 * Stops (truncating t, never an escape) where fewer than reserve bytes would
 * be left, so what the caller appends after it always fits.
 */
static void sb_json(sb_t *s, const char *t, size_t reserve)
{
    static const char hex[] = "0123456789abcdef";
    for (; t && *t; t++) {
        unsigned char c = (unsigned char)*t;
        char u[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            u[n++] = '\\';
            u[n++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            u[n++] = '\\';
            u[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(u, "\\u00", 4);
            n = 4;
            u[n++] = hex[c >> 4];
            u[n++] = hex[c & 15u];
        } else {
            u[n++] = (char)c;
        }
        if (s->len + n + reserve + 1 > s->cap) {
            s->over = true;
            return;
        }
        sb_putn(s, u, n);
    }
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    sb_t s = sb_start(dst, cap);
    sb_puts(&s, src);
}

/* ---- errors ----------------------------------------------------------------------- */

static const char *req_name(int st)
{
    switch (st) {
    case ST_CONFIG:
        return "configData";
    case ST_FINAL:
    case ST_FB_PROCEEDING:
    case ST_FB_INSTALLING:
    case ST_FB_CLOSED:
        return "deploymentBase feedback";
    case ST_POLL:
        return "poll";
    case ST_CANCEL_GET:
        return "cancelAction";
    case ST_CANCEL_FB:
        return "cancelAction feedback";
    case ST_DEPLOY_GET:
        return "deploymentBase";
    default:
        return "ddi";
    }
}

/* error = "<request>: <a><b><c>" */
static void set_error(airlock_ddi_t *d, const char *a, const char *b, const char *c)
{
    sb_t s = sb_start(d->error, sizeof(d->error));
    sb_puts(&s, req_name(d->state));
    sb_puts(&s, ": ");
    sb_puts(&s, a);
    sb_puts(&s, b);
    sb_puts(&s, c);
}

static void set_error_status(airlock_ddi_t *d, int status, const char *what)
{
    sb_t s = sb_start(d->error, sizeof(d->error));
    sb_puts(&s, req_name(d->state));
    if (status) {
        sb_puts(&s, ": HTTP ");
        sb_u64(&s, (uint64_t)status);
    } else {
        sb_puts(&s, ": no answer");
    }
    sb_puts(&s, what);
}

/* ---- persist record ----------------------------------------------------------------- */

/*
 * Layout (little endian): magic "DDI1" u32 @0, action_id u64 @4, phase u8 @12,
 * version[32] @13, sha256[32] @45, size u32 @77, last_done u64 @81,
 * reported_version[32] @89, zero @121..123, CRC-32 of bytes 0..123 @124.
 */
#define PERSIST_MAGIC 0x31494444u
#define P_ACTION 4
#define P_PHASE 12
#define P_VERSION 13
#define P_SHA 45
#define P_SIZE 77
#define P_DONE 81
#define P_REPORTED 89
#define P_CRC 124

_Static_assert(P_REPORTED + AIRLOCK_DDI_VERSION_MAX <= P_CRC, "persist record fits");
_Static_assert(P_CRC + 4 == AIRLOCK_DDI_PERSIST_LEN, "persist record length");

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

void airlock_ddi_persist_encode(const airlock_ddi_persist_t *p, uint8_t *out)
{
    memset(out, 0, AIRLOCK_DDI_PERSIST_LEN);
    put_le(out, PERSIST_MAGIC, 4);
    put_le(out + P_ACTION, p->action_id, 8);
    out[P_PHASE] = p->phase;
    memcpy(out + P_VERSION, p->version, AIRLOCK_DDI_VERSION_MAX);
    out[P_VERSION + AIRLOCK_DDI_VERSION_MAX - 1] = 0;
    memcpy(out + P_SHA, p->sha256, 32);
    put_le(out + P_SIZE, p->size, 4);
    put_le(out + P_DONE, p->last_done, 8);
    memcpy(out + P_REPORTED, p->reported_version, AIRLOCK_DDI_VERSION_MAX);
    out[P_REPORTED + AIRLOCK_DDI_VERSION_MAX - 1] = 0;
    put_le(out + P_CRC, airlock_crc32(0, out, P_CRC), 4);
}

int airlock_ddi_persist_decode(const uint8_t *in, airlock_ddi_persist_t *p)
{
    memset(p, 0, sizeof(*p));
    if (get_le(in, 4) != PERSIST_MAGIC || get_le(in + P_CRC, 4) != airlock_crc32(0, in, P_CRC) ||
        in[P_PHASE] > AIRLOCK_DDI_PHASE_INSTALLING ||
        in[P_VERSION + AIRLOCK_DDI_VERSION_MAX - 1] != 0 ||
        in[P_REPORTED + AIRLOCK_DDI_VERSION_MAX - 1] != 0) {
        return AIRLOCK_ERR_INVAL;
    }
    p->action_id = get_le(in + P_ACTION, 8);
    p->phase = in[P_PHASE];
    memcpy(p->version, in + P_VERSION, AIRLOCK_DDI_VERSION_MAX);
    memcpy(p->sha256, in + P_SHA, 32);
    p->size = (uint32_t)get_le(in + P_SIZE, 4);
    p->last_done = get_le(in + P_DONE, 8);
    memcpy(p->reported_version, in + P_REPORTED, AIRLOCK_DDI_VERSION_MAX);
    return 0;
}

/* ---- JSON reading ----------------------------------------------------------------- */

/* One parsed response: the body (borrowed for the call) and its tokens. */
typedef struct js {
    const char *s;
    const jsmntok_t *t;
    int n;
} js_t;

/* Index of the token after t[i] and everything inside it. */
static int js_skip(const js_t *j, int i)
{
    int end = j->t[i].end, k = i + 1;
    while (k < j->n && j->t[k].start < end) {
        k++;
    }
    return k;
}

static bool js_eq(const js_t *j, int i, const char *lit)
{
    size_t n = strlen(lit);
    return (j->t[i].type == JSMN_STRING) && (size_t)(j->t[i].end - j->t[i].start) == n &&
           memcmp(j->s + j->t[i].start, lit, n) == 0;
}

/* The value of key in the object t[i]; -1 if i is no object or lacks key. */
static int js_get(const js_t *j, int i, const char *key)
{
    if (i < 0 || i >= j->n || j->t[i].type != JSMN_OBJECT) {
        return -1;
    }
    int k = i + 1;
    for (int m = 0; m < j->t[i].size && k + 1 < j->n; m++) {
        if (js_eq(j, k, key)) {
            return k + 1;
        }
        k = js_skip(j, k + 1);
    }
    return -1;
}

/* Element idx of the array t[i]; -1 if none. */
static int js_at(const js_t *j, int i, int idx)
{
    if (i < 0 || i >= j->n || j->t[i].type != JSMN_ARRAY || idx >= j->t[i].size) {
        return -1;
    }
    int k = i + 1;
    for (int m = 0; m < idx; m++) {
        k = js_skip(j, k);
    }
    return k;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool hex4(const char *p, const char *end, uint32_t *out)
{
    uint32_t v = 0;
    if (end - p < 4) {
        return false;
    }
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) {
            return false;
        }
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return true;
}

static void sb_utf8(sb_t *s, uint32_t cp)
{
    if (cp < 0x80) {
        sb_putc(s, (char)cp);
    } else if (cp < 0x800) {
        sb_putc(s, (char)(0xc0 | (cp >> 6)));
        sb_putc(s, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        sb_putc(s, (char)(0xe0 | (cp >> 12)));
        sb_putc(s, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sb_putc(s, (char)(0x80 | (cp & 0x3f)));
    } else {
        sb_putc(s, (char)(0xf0 | (cp >> 18)));
        sb_putc(s, (char)(0x80 | ((cp >> 12) & 0x3f)));
        sb_putc(s, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sb_putc(s, (char)(0x80 | (cp & 0x3f)));
    }
}

enum { STR_OK = 0, STR_MISSING, STR_TYPE, STR_LONG, STR_ESCAPE };

/*
 * The string t[i], unescaped, into out (cap bytes with the NUL). A NUL
 * escape (\u0000) is refused: these strings are used as C strings.
 */
static int js_str(const js_t *j, int i, char *out, size_t cap)
{
    out[0] = '\0';
    if (i < 0) {
        return STR_MISSING;
    }
    if (j->t[i].type != JSMN_STRING) {
        return STR_TYPE;
    }
    const char *p = j->s + j->t[i].start, *end = j->s + j->t[i].end;
    sb_t s = sb_start(out, cap);
    while (p < end && !s.over) {
        char c = *p++;
        if (c != '\\') {
            sb_putc(&s, c);
            continue;
        }
        if (p >= end) {
            return STR_ESCAPE;
        }
        c = *p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            sb_putc(&s, c);
            break;
        case 'b':
            sb_putc(&s, '\b');
            break;
        case 'f':
            sb_putc(&s, '\f');
            break;
        case 'n':
            sb_putc(&s, '\n');
            break;
        case 'r':
            sb_putc(&s, '\r');
            break;
        case 't':
            sb_putc(&s, '\t');
            break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(p, end, &cp)) {
                return STR_ESCAPE;
            }
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00) { /* a high surrogate needs its low half */
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &lo) ||
                    lo < 0xdc00 || lo >= 0xe000) {
                    return STR_ESCAPE;
                }
                p += 6;
                cp = 0x10000u + ((cp - 0xd800u) << 10) + (lo - 0xdc00u);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return STR_ESCAPE;
            }
            if (cp == 0) {
                return STR_ESCAPE;
            }
            sb_utf8(&s, cp);
            break;
        }
        default:
            return STR_ESCAPE;
        }
    }
    return s.over ? STR_LONG : STR_OK;
}

/* A non-negative integer: a number primitive, or (lenient) a string of digits. */
static bool js_u64(const js_t *j, int i, uint64_t *out)
{
    if (i < 0 || (j->t[i].type != JSMN_PRIMITIVE && j->t[i].type != JSMN_STRING)) {
        return false;
    }
    const char *p = j->s + j->t[i].start, *end = j->s + j->t[i].end;
    uint64_t v = 0;
    if (p == end) {
        return false;
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9u) / 10u) {
            return false;
        }
        v = v * 10u + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

/* Parse body into d's token array; false (error set) if it is not JSON. */
static bool js_parse(airlock_ddi_t *d, const char *body, size_t len, js_t *j)
{
    jsmn_parser p;
    jsmn_init(&p);
    j->s = body;
    j->t = (const jsmntok_t *)(void *)d->tokens_;
    int n = body ? jsmn_parse(&p, body, len, (jsmntok_t *)(void *)d->tokens_, AIRLOCK_DDI_TOKENS)
                 : JSMN_ERROR_PART;
    if (n == JSMN_ERROR_NOMEM) {
        char num[8];
        sb_t t = sb_start(num, sizeof(num));
        sb_u64(&t, AIRLOCK_DDI_TOKENS);
        set_error(d, "answer has more than ", num, " JSON tokens");
        return false;
    }
    if (n <= 0 || j->t[0].type != JSMN_OBJECT) {
        set_error(d, "answer is not a JSON object", "", "");
        return false;
    }
    j->n = n;
    return true;
}

/* Error naming a field: "<req>: <field> <problem>". */
static int field_error(airlock_ddi_t *d, const char *field, int why)
{
    const char *p = why == STR_MISSING ? " missing"
                    : why == STR_TYPE  ? " has the wrong type"
                    : why == STR_LONG  ? " is too long"
                                       : " is not valid";
    set_error(d, field, p, "");
    return AIRLOCK_ERR_HTTP;
}

/* A link's href into out (URL_MAX); 0, or AIRLOCK_ERR_HTTP with the error set (field_error). */
static int read_href(airlock_ddi_t *d, const js_t *j, int links, const char *name, char *out,
                     bool *present, const char *field)
{
    int l = js_get(j, links, name);
    *present = false;
    out[0] = '\0';
    if (l < 0) {
        return 0;
    }
    int rc = js_str(j, js_get(j, l, "href"), out, AIRLOCK_DDI_URL_MAX);
    if (rc != STR_OK) {
        out[0] = '\0';
        return field_error(d, field, rc);
    }
    *present = true;
    return 0;
}

/* ---- URLs and bodies --------------------------------------------------------------- */

/* base/tenant/controller/v1/cid into s. */
static void controller_url(const airlock_ddi_t *d, sb_t *s)
{
    sb_puts(s, d->cfg.base_url);
    sb_putc(s, '/');
    sb_puts(s, d->cfg.tenant);
    sb_puts(s, "/controller/v1/");
    sb_puts(s, d->cfg.controller_id);
}

/*
 * The feedback URL of cancel link href (its query dropped) into buf
 * (URL_MAX); false if it does not fit (buf then holds no usable URL).
 */
static bool cancel_feedback_url(const char *href, char *buf)
{
    sb_t u = sb_start(buf, AIRLOCK_DDI_URL_MAX);
    const char *q = strchr(href, '?');
    sb_putn(&u, href, q ? (size_t)(q - href) : strlen(href));
    sb_puts(&u, "/feedback");
    if (u.over) {
        buf[0] = '\0';
    }
    return !u.over;
}

static void feedback_url(airlock_ddi_t *d, char *buf, uint64_t action)
{
    sb_t s = sb_start(buf, AIRLOCK_DDI_URL_MAX);
    controller_url(d, &s);
    sb_puts(&s, "/deploymentBase/");
    sb_u64(&s, action);
    sb_puts(&s, "/feedback");
}

/*
 * A feedback body. execution, finished: DDI words; cnt/of: progress (of 0:
 * none); detail: one message (may be NULL), escaped.
 */
static void feedback_body(char *buf, uint64_t action, const char *execution, const char *finished,
                          uint64_t cnt, uint64_t of, const char *detail)
{
    sb_t s = sb_start(buf, AIRLOCK_DDI_BODY_MAX);
    sb_puts(&s, "{\"id\":\"");
    sb_u64(&s, action);
    sb_puts(&s, "\",\"status\":{\"execution\":\"");
    sb_puts(&s, execution);
    sb_puts(&s, "\",\"result\":{\"finished\":\"");
    sb_puts(&s, finished);
    sb_putc(&s, '"');
    if (of) {
        sb_puts(&s, ",\"progress\":{\"cnt\":");
        sb_u64(&s, cnt);
        sb_puts(&s, ",\"of\":");
        sb_u64(&s, of);
        sb_putc(&s, '}');
    }
    sb_puts(&s, "},\"details\":[");
    if (detail) {
        sb_putc(&s, '"');
        sb_json(&s, detail, 5); /* room for "]}} */
        sb_putc(&s, '"');
    }
    sb_puts(&s, "]}}");
}

/* ---- planning ------------------------------------------------------------------------ */

static void mark_dirty(airlock_ddi_t *d)
{
    d->dirty = true;
}

/* Forget the action in hand (it is done, gone or cancelled). */
static void drop_action(airlock_ddi_t *d, bool done)
{
    airlock_ddi_persist_t *p = &d->persist;
    if (done && d->action_id) {
        p->last_done = d->action_id;
    }
    if (p->action_id == d->action_id) {
        p->action_id = 0;
        p->phase = AIRLOCK_DDI_PHASE_NONE;
        memset(p->version, 0, sizeof(p->version));
        memset(p->sha256, 0, sizeof(p->sha256));
        p->size = 0;
    }
    d->action_id = 0;
    mark_dirty(d);
}

static void wait_then(airlock_ddi_t *d, uint32_t ms, int after)
{
    d->sleep_ms = ms;
    d->pending_after = after;
    d->state = ST_WAIT;
}

/* The next step once a request's business is done. */
static void plan(airlock_ddi_t *d)
{
    if (d->install_due) {
        d->state = ST_INSTALL;
    } else if (d->config_due) {
        d->state = ST_CONFIG;
    } else if (d->final_due) {
        d->state = ST_FINAL;
    } else if (d->poll_due) {
        d->state = ST_POLL;
    } else if (d->cancel_due) {
        d->state = ST_CANCEL_GET;
    } else if (d->deploy_due) {
        d->state = ST_DEPLOY_GET;
    } else {
        d->poll_due = true;
        wait_then(d, d->poll_ms, ST_PLAN);
    }
}

/*
 * A failed request: backoff retry (transient) or the poll interval (refused).
 * The same request again, except a GET of a poll's link (deploymentBase,
 * cancelAction): the link may be stale by then, so a poll fetches fresh ones.
 */
static void retry_later(airlock_ddi_t *d, bool transient)
{
    uint32_t ms = transient ? d->backoff_ms : d->poll_ms;
    int after = d->state;
    if (transient) {
        uint32_t next = d->backoff_ms > d->poll_ms / 2u ? d->poll_ms : d->backoff_ms * 2u;
        d->backoff_ms = next > d->backoff_ms ? next : d->backoff_ms;
    }
    if (after == ST_DEPLOY_GET || after == ST_CANCEL_GET) {
        d->poll_due = true;
        d->deploy_due = d->cancel_due = false;
        after = ST_PLAN;
    }
    wait_then(d, ms, after);
}

/* ---- init -------------------------------------------------------------------------- */

static bool id_chars(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok || n >= max) {
            return false;
        }
    }
    return n > 0;
}

int airlock_ddi_init(airlock_ddi_t *d, const airlock_ddi_cfg_t *cfg,
                     const airlock_ddi_persist_t *persist, const airlock_ddi_boot_t *boot)
{
    memset(d, 0, sizeof(*d));
    d->state = ST_WAIT;
    d->pending_after = ST_WAIT;
    d->sleep_ms = 60000u;
    const char *bad = NULL;
    if (!cfg) {
        bad = "cfg";
    } else if (!cfg->base_url || !cfg->base_url[0]) {
        bad = "cfg.base_url";
    } else if (!cfg->tenant || !id_chars(cfg->tenant, 64)) {
        bad = "cfg.tenant";
    } else if (!cfg->controller_id || !id_chars(cfg->controller_id, 64)) {
        bad = "cfg.controller_id";
    } else if (!cfg->auth || strlen(cfg->auth) >= 512) {
        bad = "cfg.auth";
    } else if (!boot) {
        bad = "boot";
    }
    if (!bad) {
        /* the longest URL it builds: .../deploymentBase/<u64>/feedback */
        d->cfg = *cfg;
        sb_t s = sb_start(d->url, sizeof(d->url));
        controller_url(d, &s);
        sb_puts(&s, "/deploymentBase/18446744073709551615/feedback");
        if (s.over) {
            bad = "cfg.base_url (too long for a URL)";
        }
    }
    if (bad) {
        sb_t s = sb_start(d->error, sizeof(d->error));
        sb_puts(&s, "init: ");
        sb_puts(&s, bad);
        sb_puts(&s, " missing or invalid");
        return AIRLOCK_ERR_INVAL;
    }
    if (persist) {
        d->persist = *persist;
        d->persist.version[AIRLOCK_DDI_VERSION_MAX - 1] = '\0';
        d->persist.reported_version[AIRLOCK_DDI_VERSION_MAX - 1] = '\0';
        if (d->persist.phase > AIRLOCK_DDI_PHASE_INSTALLING || !d->persist.action_id) {
            d->persist.phase = AIRLOCK_DDI_PHASE_NONE;
        }
    }
    d->boot = *boot;
    d->boot.running_version[AIRLOCK_DDI_VERSION_MAX - 1] = '\0';
    d->boot.reverted_version[AIRLOCK_DDI_VERSION_MAX - 1] = '\0';
    d->boot.reason[AIRLOCK_DDI_MSG_MAX - 1] = '\0';
    if (!d->cfg.retry_ms) {
        d->cfg.retry_ms = 1000u;
    }
    if (!d->cfg.default_poll_ms) {
        d->cfg.default_poll_ms = 60000u;
    }
    d->poll_ms = d->cfg.default_poll_ms;
    if (d->cfg.max_poll_ms && d->poll_ms > d->cfg.max_poll_ms) {
        d->poll_ms = d->cfg.max_poll_ms;
    }
    d->backoff_ms = d->cfg.retry_ms;
    d->config_due = true;
    d->poll_due = true;
    d->action_id = d->persist.action_id;
    if (d->persist.phase == AIRLOCK_DDI_PHASE_INSTALLING) {
        /*
         * Still on trial (the target runs but is not confirmed yet): no
         * verdict this boot; the next boot reports it. Everything else is
         * decided now.
         */
        bool target = strcmp(d->boot.running_version, d->persist.version) == 0;
        d->install_due = !target && !d->boot.reverted && d->boot.pending;
        d->final_due = !d->install_due && !(target && !d->boot.confirmed && !d->boot.reverted);
    }
    d->state = ST_PLAN;
    return 0;
}

/* ---- next ---------------------------------------------------------------------------- */

static void http(airlock_ddi_req_t *req, const char *method, const char *url, const char *body)
{
    req->kind = AIRLOCK_DDI_REQ_HTTP;
    req->method = method;
    req->url = url;
    req->body = body;
    req->body_len = body ? strlen(body) : 0;
}

/* The after-reboot verdict on persist.action_id: success, and the failure text if not. */
static bool final_verdict(airlock_ddi_t *d)
{
    const airlock_ddi_boot_t *b = &d->boot;
    bool target = strcmp(b->running_version, d->persist.version) == 0;
    if (target && b->confirmed && !b->reverted) {
        return true;
    }
    sb_t s = sb_start(d->msg, sizeof(d->msg));
    if (b->reverted) {
        sb_puts(&s, "reverted");
        if (b->reverted_version[0]) {
            sb_puts(&s, " from ");
            sb_puts(&s, b->reverted_version);
        }
        if (b->reason[0]) {
            sb_puts(&s, ": ");
            sb_puts(&s, b->reason);
        }
        sb_puts(&s, "; running ");
        sb_puts(&s, b->running_version);
    } else {
        sb_puts(&s, "running version ");
        sb_puts(&s, b->running_version);
        sb_puts(&s, " after the install, not the target ");
        sb_puts(&s, d->persist.version);
        if (b->reason[0]) {
            sb_puts(&s, ": ");
            sb_puts(&s, b->reason);
        }
    }
    return false;
}

void airlock_ddi_next(airlock_ddi_t *d, airlock_ddi_req_t *req)
{
    memset(req, 0, sizeof(*req));
    req->action_id = d->action_id;
    if (d->state == ST_PLAN) {
        plan(d);
    }
    switch (d->state) {
    case ST_CONFIG: {
        sb_t u = sb_start(d->url, sizeof(d->url));
        if (d->config_url[0]) {
            sb_puts(&u, d->config_url);
        } else {
            controller_url(d, &u);
            sb_puts(&u, "/configData");
        }
        sb_t s = sb_start(d->body, sizeof(d->body));
        sb_puts(&s, "{\"mode\":\"merge\",\"data\":{\"version\":\"");
        sb_json(&s, d->boot.running_version, 3);
        sb_puts(&s, "\"}}");
        http(req, "PUT", d->url, d->body);
        return;
    }
    case ST_FINAL: {
        bool ok = final_verdict(d);
        feedback_url(d, d->url, d->persist.action_id);
        feedback_body(d->body, d->persist.action_id, "closed", ok ? "success" : "failure", 0, 0,
                      ok ? "installed and confirmed" : d->msg);
        http(req, "POST", d->url, d->body);
        return;
    }
    case ST_POLL: {
        sb_t u = sb_start(d->url, sizeof(d->url));
        controller_url(d, &u);
        http(req, "GET", d->url, NULL);
        return;
    }
    case ST_CANCEL_GET:
        http(req, "GET", d->cancel_url, NULL);
        return;
    case ST_ABORT:
        req->kind = AIRLOCK_DDI_REQ_ABORT;
        req->action_id = d->persist.action_id;
        d->state = ST_CANCEL_FB;
        return;
    case ST_CANCEL_FB: {
        /* .../cancelAction/<id>/feedback (it fits: on_poll checked) */
        (void)cancel_feedback_url(d->cancel_url, d->url);
        feedback_body(d->body, d->cancel_id, d->cancel_reject ? "rejected" : "closed",
                      d->cancel_reject ? "failure" : "success", 0, 0,
                      d->cancel_reject ? "too late to cancel: the update is installing"
                                       : "cancelled");
        http(req, "POST", d->url, d->body);
        return;
    }
    case ST_DEPLOY_GET:
        http(req, "GET", d->deploy_url, NULL);
        return;
    case ST_FB_PROCEEDING:
        feedback_url(d, d->url, d->action_id);
        feedback_body(d->body, d->action_id, "proceeding", "none", 0, 0, "downloading");
        http(req, "POST", d->url, d->body);
        return;
    case ST_DOWNLOAD:
    case ST_DOWNLOADING:
        req->kind = AIRLOCK_DDI_REQ_DOWNLOAD;
        req->url = d->download_url;
        req->size = d->art_size;
        memcpy(req->sha256, d->art_sha256, 32);
        req->version = d->art_version;
        req->filename = d->art_name;
        d->last_progress = 0;
        d->state = ST_DOWNLOADING;
        return;
    case ST_FB_INSTALLING:
        feedback_url(d, d->url, d->action_id);
        feedback_body(d->body, d->action_id, "proceeding", "none", 0, 0, "installing");
        http(req, "POST", d->url, d->body);
        return;
    case ST_INSTALL:
        if (d->persist.phase != AIRLOCK_DDI_PHASE_INSTALLING) {
            d->persist.phase = AIRLOCK_DDI_PHASE_INSTALLING;
            mark_dirty(d);
        }
        req->kind = AIRLOCK_DDI_REQ_INSTALL;
        /* known if downloaded this boot: to download it again after a stop */
        req->url = d->download_url[0] ? d->download_url : NULL;
        req->filename = d->download_url[0] ? d->art_name : NULL;
        req->version = d->persist.version;
        req->size = d->persist.size;
        memcpy(req->sha256, d->persist.sha256, 32);
        return;
    case ST_FB_CLOSED:
        feedback_url(d, d->url, d->action_id);
        feedback_body(d->body, d->action_id, "closed", d->close_ok ? "success" : "failure", 0, 0,
                      d->msg);
        http(req, "POST", d->url, d->body);
        return;
    case ST_WAIT:
    default:
        req->kind = AIRLOCK_DDI_REQ_SLEEP;
        req->sleep_ms = d->sleep_ms;
        d->state = d->pending_after; /* ST_WAIT only after a failed init: sleep on */
        return;
    }
}

/* ---- responses ------------------------------------------------------------------------ */

/* "HH:MM:SS" (hours may have more digits) to ms; false if not that. */
static bool parse_sleep(const char *s, uint32_t *ms)
{
    uint64_t part[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 6) {
            part[k] = part[k] * 10u + (uint64_t)(*s++ - '0');
            digits++;
        }
        if (!digits || (k > 0 && (digits != 2 || part[k] > 59))) {
            return false;
        }
        if (*s != (k < 2 ? ':' : '\0')) {
            return false;
        }
        if (k < 2) {
            s++;
        }
    }
    uint64_t v = ((part[0] * 60u + part[1]) * 60u + part[2]) * 1000u;
    *ms = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return true;
}

/* The action id in a link ("<...>/deploymentBase/<id>[?...]"); 0 if none. */
static uint64_t href_id(const char *href, const char *seg)
{
    const char *p = strstr(href, seg);
    uint64_t v = 0;
    if (!p) {
        return 0;
    }
    for (p += strlen(seg); *p >= '0' && *p <= '9' && v < UINT64_MAX / 10u - 9u; p++) {
        v = v * 10u + (uint64_t)(*p - '0');
    }
    return v;
}

static int on_poll(airlock_ddi_t *d, const js_t *j)
{
    char tmp[16];
    int cfg = js_get(j, js_get(j, js_get(j, 0, "config"), "polling"), "sleep");
    if (cfg >= 0) {
        uint32_t ms;
        int rc = js_str(j, cfg, tmp, sizeof(tmp));
        if (rc != STR_OK || !parse_sleep(tmp, &ms)) {
            return field_error(d, "config.polling.sleep (HH:MM:SS)", rc ? rc : STR_ESCAPE);
        }
        if (d->cfg.max_poll_ms && ms > d->cfg.max_poll_ms) {
            ms = d->cfg.max_poll_ms;
        }
        d->poll_ms = ms ? ms : 1u;
    }
    int links = js_get(j, 0, "_links");
    bool dep, can, conf;
    int rc =
        read_href(d, j, links, "cancelAction", d->cancel_url, &can, "_links.cancelAction.href");
    if (!rc && can && !cancel_feedback_url(d->cancel_url, d->body)) {
        /* its feedback URL would be cut: refused here, never sent truncated (body: scratch) */
        d->cancel_url[0] = '\0';
        rc = field_error(d, "_links.cancelAction.href (with /feedback)", STR_LONG);
    }
    if (!rc) {
        rc = read_href(d, j, links, "deploymentBase", d->deploy_url, &dep,
                       "_links.deploymentBase.href");
    }
    if (!rc) {
        rc = read_href(d, j, links, "configData", d->config_url, &conf, "_links.configData.href");
    }
    if (rc) {
        return rc;
    }
    d->deploy_id = dep ? href_id(d->deploy_url, "/deploymentBase/") : 0;
    d->poll_due = false;
    d->cancel_due = can;
    d->deploy_due = dep && !can;
    d->config_due = d->config_due || conf;
    return 0;
}

static bool parse_sha(const char *hex, uint8_t out[32])
{
    if (strlen(hex) != 64) {
        return false;
    }
    for (int i = 0; i < 32; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) {
            return false;
        }
        out[i] = (uint8_t)(a << 4 | b);
    }
    return true;
}

static int on_deployment(airlock_ddi_t *d, const js_t *j)
{
    char tmp[72];
    uint64_t id, size;
    int rc;
    d->deploy_due = false;
    if (!js_u64(j, js_get(j, 0, "id"), &id) || id == 0) {
        return field_error(d, "id", js_get(j, 0, "id") < 0 ? STR_MISSING : STR_ESCAPE);
    }
    int dep = js_get(j, 0, "deployment");
    if (dep < 0 || j->t[dep].type != JSMN_OBJECT) {
        return field_error(d, "deployment", dep < 0 ? STR_MISSING : STR_TYPE);
    }
    /* the first chunk that carries an artifact */
    int chunks = js_get(j, dep, "chunks"), chunk = -1, art = -1;
    if (chunks < 0 || j->t[chunks].type != JSMN_ARRAY) {
        return field_error(d, "deployment.chunks", chunks < 0 ? STR_MISSING : STR_TYPE);
    }
    for (int k = 0; k < j->t[chunks].size && art < 0; k++) {
        chunk = js_at(j, chunks, k);
        art = js_at(j, js_get(j, chunk, "artifacts"), 0);
    }
    if (art < 0) {
        return field_error(d, "deployment.chunks[].artifacts[0]", STR_MISSING);
    }
    if ((rc = js_str(j, js_get(j, chunk, "version"), d->art_version, sizeof(d->art_version)))) {
        return field_error(d, "deployment.chunks[].version", rc);
    }
    if ((rc = js_str(j, js_get(j, art, "filename"), d->art_name, sizeof(d->art_name)))) {
        return field_error(d, "artifacts[0].filename", rc);
    }
    rc = js_str(j, js_get(j, js_get(j, art, "hashes"), "sha256"), tmp, sizeof(tmp));
    if (rc || !parse_sha(tmp, d->art_sha256)) {
        return field_error(d, "artifacts[0].hashes.sha256", rc ? rc : STR_ESCAPE);
    }
    if (!js_u64(j, js_get(j, art, "size"), &size) || size > UINT32_MAX) {
        return field_error(d, "artifacts[0].size",
                           js_get(j, art, "size") < 0 ? STR_MISSING : STR_ESCAPE);
    }
    d->art_size = (uint32_t)size;
    int links = js_get(j, art, "_links");
    int href = js_get(j, js_get(j, links, "download"), "href");
    if (href < 0) {
        href = js_get(j, js_get(j, links, "download-http"), "href");
    }
    if ((rc = js_str(j, href, d->download_url, sizeof(d->download_url)))) {
        return field_error(d, "artifacts[0]._links.download.href", rc);
    }
    airlock_ddi_persist_t *p = &d->persist;
    bool running = strcmp(d->art_version, d->boot.running_version) == 0;
    if (id == p->last_done || (id == p->action_id && p->phase == AIRLOCK_DDI_PHASE_INSTALLING)) {
        /* reported already, or installed and waiting for the next boot's verdict */
        d->action_id = p->action_id;
        return 0;
    }
    if (running && !d->boot.confirmed) {
        /*
         * The target already runs, on trial: installed, but the record of it
         * was lost (a power cut between set-pending and storing INSTALLING,
         * or a record that did not survive). No verdict now: recorded as
         * installing, the next boot reports success or the revert.
         */
        p->action_id = id;
        p->phase = AIRLOCK_DDI_PHASE_INSTALLING;
        copy_str(p->version, sizeof(p->version), d->art_version);
        memcpy(p->sha256, d->art_sha256, sizeof(p->sha256));
        p->size = d->art_size;
        mark_dirty(d);
        d->action_id = id;
        return 0;
    }
    /*
     * download or update "skip" (e.g. outside a maintenance window): nothing
     * now; look again at the next poll
     */
    char mode[16];
    for (int k = 0; k < 2; k++) {
        if (js_str(j, js_get(j, dep, k ? "update" : "download"), mode, sizeof(mode)) == STR_OK &&
            strcmp(mode, "skip") == 0) {
            d->action_id = d->persist.action_id;
            return 0;
        }
    }
    d->action_id = id;
    if (running) {
        copy_str(d->msg, sizeof(d->msg), "version already running");
        d->close_ok = true;
        d->state = ST_FB_CLOSED;
        return 0;
    }
    bool resume = id == p->action_id && p->phase == AIRLOCK_DDI_PHASE_DOWNLOADING &&
                  memcmp(p->sha256, d->art_sha256, 32) == 0;
    if (!resume) {
        p->action_id = id;
        p->phase = AIRLOCK_DDI_PHASE_DOWNLOADING;
        copy_str(p->version, sizeof(p->version), d->art_version);
        memcpy(p->sha256, d->art_sha256, 32);
        p->size = d->art_size;
        mark_dirty(d);
    }
    d->state = resume ? ST_DOWNLOAD : ST_FB_PROCEEDING;
    return 0;
}

static int on_cancel(airlock_ddi_t *d, const js_t *j)
{
    uint64_t stop, id;
    int ca = js_get(j, 0, "cancelAction");
    if (!js_u64(j, js_get(j, ca, "stopId"), &stop)) {
        return field_error(d, "cancelAction.stopId",
                           js_get(j, ca, "stopId") < 0 ? STR_MISSING : STR_ESCAPE);
    }
    if (!js_u64(j, js_get(j, 0, "id"), &id)) {
        id = stop;
    }
    d->cancel_due = false;
    d->cancel_id = id;
    d->action_id = stop;
    airlock_ddi_persist_t *p = &d->persist;
    bool ours = p->action_id == stop;
    d->cancel_reject = ours && p->phase == AIRLOCK_DDI_PHASE_INSTALLING;
    d->state = ours && p->phase == AIRLOCK_DDI_PHASE_DOWNLOADING ? ST_ABORT : ST_CANCEL_FB;
    return 0;
}

/* The request's business is done: where next. */
static void done_ok(airlock_ddi_t *d)
{
    d->backoff_ms = d->cfg.retry_ms;
    switch (d->state) {
    case ST_CONFIG:
        d->config_due = false;
        d->config_url[0] = '\0';
        if (strcmp(d->persist.reported_version, d->boot.running_version) != 0) {
            copy_str(d->persist.reported_version, sizeof(d->persist.reported_version),
                     d->boot.running_version);
            mark_dirty(d);
        }
        d->state = ST_PLAN;
        break;
    case ST_FINAL:
        d->final_due = false;
        d->action_id = d->persist.action_id;
        drop_action(d, true);
        d->state = ST_PLAN;
        break;
    case ST_CANCEL_FB:
        if (!d->cancel_reject) {
            drop_action(d, true);
        }
        d->action_id = d->persist.action_id;
        d->state = ST_PLAN;
        break;
    case ST_FB_PROCEEDING:
        d->state = ST_DOWNLOAD;
        break;
    case ST_FB_INSTALLING:
        d->state = ST_INSTALL;
        break;
    case ST_FB_CLOSED:
        drop_action(d, true);
        d->state = ST_PLAN;
        break;
    default:
        break;
    }
}

int airlock_ddi_response(airlock_ddi_t *d, int status, const char *body, size_t len)
{
    int st = d->state;
    bool action_req = st == ST_FINAL || st == ST_CANCEL_GET || st == ST_CANCEL_FB ||
                      st == ST_DEPLOY_GET || st == ST_FB_PROCEEDING || st == ST_FB_INSTALLING ||
                      st == ST_FB_CLOSED;
    bool closing = st == ST_FINAL || st == ST_FB_CLOSED || st == ST_CANCEL_FB;
    if (st != ST_CONFIG && st != ST_FINAL && st != ST_POLL && !action_req) {
        return AIRLOCK_ERR_INVAL; /* no request outstanding */
    }
    if (status == 0) {
        set_error_status(d, 0, " (connection failed); retrying");
        retry_later(d, true);
        return AIRLOCK_ERR_NETWORK;
    }
    if (status == 429 || status == 408 || (status >= 500 && status <= 599)) {
        set_error_status(d, status, "; retrying");
        retry_later(d, true);
        return AIRLOCK_ERR_HTTP;
    }
    if (status == 401 || status == 403) {
        set_error_status(d, status, " (token refused); waiting a poll interval");
        d->backoff_ms = d->cfg.retry_ms;
        retry_later(d, false);
        return AIRLOCK_ERR_HTTP;
    }
    if (status == 410 && closing) {
        /* the server has the action closed already: our report is moot */
        done_ok(d);
        return 0;
    }
    if (status >= 400 && status <= 499 && closing) {
        /*
         * A closing feedback the server will never take (404, another 4xx):
         * the device's verdict stands as if it had been taken (last_done), so
         * an action offered again is not done again.
         */
        set_error_status(d, status,
                         status == 404 ? " (action gone); action closed"
                                       : " (refused); action closed");
        done_ok(d);
        return AIRLOCK_ERR_HTTP;
    }
    if (status >= 400 && status <= 499 && action_req) {
        /*
         * The action is gone from the server (404, 410), or the server will
         * never take this request about it (another 4xx): forget the action
         * rather than retry it forever; a server that still wants it offers
         * it again at the next poll.
         */
        set_error_status(d, status,
                         status == 404 || status == 410 ? " (action gone); action forgotten"
                                                        : " (refused); action forgotten");
        if (st == ST_CANCEL_GET) {
            d->cancel_due = false;
        } else if (st != ST_DEPLOY_GET || (d->deploy_id && d->deploy_id == d->persist.action_id)) {
            d->action_id = st == ST_DEPLOY_GET ? d->deploy_id : d->action_id;
            drop_action(d, false);
        }
        d->deploy_due = false;
        d->state = ST_PLAN;
        return AIRLOCK_ERR_HTTP;
    }
    if (status < 200 || status > 299) {
        set_error_status(d, status, "");
        if (st == ST_CONFIG) {
            d->config_due = false; /* the server does not take it: not this boot */
            d->state = ST_PLAN;
        } else {
            retry_later(d, false);
        }
        return AIRLOCK_ERR_HTTP;
    }
    int rc = 0;
    if (st == ST_POLL || st == ST_DEPLOY_GET || st == ST_CANCEL_GET) {
        js_t j;
        if (!js_parse(d, body, len, &j)) {
            rc = AIRLOCK_ERR_HTTP;
        } else if (st == ST_POLL) {
            rc = on_poll(d, &j);
        } else if (st == ST_DEPLOY_GET) {
            rc = on_deployment(d, &j);
        } else {
            rc = on_cancel(d, &j);
        }
        if (rc) {
            /* the server's answer makes no sense: try again in a poll interval */
            d->poll_due = true;
            d->cancel_due = d->deploy_due = false;
            wait_then(d, d->poll_ms, ST_PLAN);
            return rc;
        }
        if (st != ST_POLL || !(d->deploy_due || d->cancel_due)) {
            /* a poll naming a link succeeds only with the link's GET (backoff kept) */
            d->backoff_ms = d->cfg.retry_ms;
        }
        if (d->state == st) {
            d->state = ST_PLAN;
        }
        return 0;
    }
    done_ok(d);
    return 0;
}

void airlock_ddi_download_done(airlock_ddi_t *d, int err, const char *msg)
{
    if (d->state != ST_DOWNLOADING) {
        return;
    }
    if (err == 0) {
        d->state = ST_FB_INSTALLING;
        return;
    }
    if (err == AIRLOCK_ERR_CANCELLED || err == AIRLOCK_ERR_NETWORK) {
        /* keep the action: the next poll offers it again and the download resumes */
        sb_t s = sb_start(d->error, sizeof(d->error));
        sb_puts(&s, "download: ");
        sb_puts(&s, msg && msg[0] ? msg : err == AIRLOCK_ERR_CANCELLED ? "cancelled" : "failed");
        d->poll_due = true;
        d->state = ST_PLAN;
        retry_later(d, true);
        return;
    }
    sb_t s = sb_start(d->msg, sizeof(d->msg));
    sb_puts(&s, msg && msg[0] ? msg : "download failed");
    if (err < 0 && !(msg && msg[0])) {
        sb_puts(&s, " (error ");
        sb_putc(&s, '-');
        sb_u64(&s, (uint64_t)(-(int64_t)err));
        sb_putc(&s, ')');
    }
    d->close_ok = false;
    d->state = ST_FB_CLOSED;
}

bool airlock_ddi_progress(airlock_ddi_t *d, uint64_t done, uint64_t total, airlock_ddi_req_t *req)
{
    if (d->state != ST_DOWNLOADING) {
        return false;
    }
    if (!total) {
        total = d->art_size;
    }
    if (!total) {
        return false;
    }
    if (done > total) {
        done = total;
    }
    uint64_t step = d->cfg.progress_step ? d->cfg.progress_step : total / 10u;
    if (step == 0) {
        step = 1;
    }
    if (done < (uint64_t)d->last_progress + step && !(done == total && d->last_progress < total)) {
        return false;
    }
    if (done == d->last_progress) {
        return false;
    }
    d->last_progress = (uint32_t)done;
    memset(req, 0, sizeof(*req));
    feedback_url(d, d->url, d->action_id);
    feedback_body(d->body, d->action_id, "proceeding", "none", done * 100u / total, 100u,
                  "downloading");
    http(req, "POST", d->url, d->body);
    req->action_id = d->action_id;
    return true;
}

const airlock_ddi_persist_t *airlock_ddi_persist(const airlock_ddi_t *d)
{
    return &d->persist;
}

bool airlock_ddi_persist_dirty(airlock_ddi_t *d)
{
    bool v = d->dirty;
    d->dirty = false;
    return v;
}

const char *airlock_ddi_error(const airlock_ddi_t *d)
{
    return d->error;
}

uint32_t airlock_ddi_poll_ms(const airlock_ddi_t *d)
{
    return d->poll_ms;
}
