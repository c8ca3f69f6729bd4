/*
 * The fleet simulator (sim/fleet.h): one process, one libcurl multi event
 * loop, N devices. Each device is a RAM sim flash booted by airlock_boot,
 * downloading through airlock_ota_* and speaking DDI through airlock_ddi_*;
 * its DDI record lives in the settings store on its flash, so a power cut
 * leaves exactly what a real device would have. Faults are injected from a
 * seeded PRNG. Never fakes a server answer it did not get.
 */
#define _POSIX_C_SOURCE 200809L

#include "fleet.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "airlock/ddi.h"
#include "airlock/ota.h"
#include "airlock/settings.h"
#include "airlock/sim_flash.h"

#define SECTOR 4096u
#define WRITE_SIZE 8u
#define STATUS_SECTORS 2u
#define SETTINGS_SECTORS 2u
#define BODY_CAP (64u * 1024u) /* largest DDI or operator answer kept */
#define VALIDATOR_MAX 130
#define DL_MAX_FAILS 8u /* failed requests in a row before a download gives up */
#define SETTINGS_KEY "ddi"

/* ---- small helpers ------------------------------------------------------------------ */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static bool roll(uint64_t *s, double p)
{
    return p > 0 && rng_unit(s) < p;
}

struct fleet;
static bool faults_on(const struct fleet *f);

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

const char *airlock_fleet_state_name(int state)
{
    static const char *const names[] = {"idle", "updating", "booting", "off", "offline", "bricked"};
    return state >= 0 && state < AIRLOCK_FLEET_NSTATES ? names[state] : "?";
}

const char *airlock_fleet_stop_name(int stop)
{
    switch (stop) {
    case AIRLOCK_FLEET_STOP_VERSION:
        return "version";
    case AIRLOCK_FLEET_STOP_CAMPAIGN:
        return "campaign";
    case AIRLOCK_FLEET_STOP_DURATION:
        return "duration";
    case AIRLOCK_FLEET_STOP_SIGNAL:
        return "signal";
    default:
        return "?";
    }
}

/* ---- types ---------------------------------------------------------------------------- */

enum phase { PH_OFF, PH_BOOTING, PH_RUN, PH_BRICKED };

/* What a device's one timer does when it fires. */
enum timer_what {
    TW_NONE,
    TW_POWER_ON, /* power back / reset released: run the bootloader */
    TW_STARTED,  /* boot + start-up time over: the firmware runs (or crashes) */
    TW_WATCHDOG, /* a hung image: the watchdog resets it */
    TW_STORM,    /* the next reboot of a storm */
    TW_DDI,      /* the DDI sleep is over */
    TW_DL_RETRY, /* retry a download request */
    TW_OFFLINE,  /* an offline device's request fails (connection refused) */
};

enum xkind { XK_DDI, XK_PROGRESS, XK_HEAD, XK_GET, XK_CAMPAIGN, XK_AUDIT };

enum body_mode { BODY_UNDECIDED, BODY_WRITE, BODY_DISCARD, BODY_ABORT };

/* An acknowledged report, for the audit. */
struct ack {
    uint64_t action;
    uint8_t exec; /* index in execs[] */
    uint8_t fin;  /* 0 none, 1 success, 2 failure */
    bool cancel;  /* feedback on a cancelAction */
    int16_t cnt, of;
};

static const char *const execs[] = {"closed",   "proceeding", "canceled",   "scheduled",
                                    "rejected", "resumed",    "downloaded", "download"};
static const char *const fins[] = {"none", "success", "failure"};

struct fleet;
struct xfer;

struct dev {
    struct fleet *f;
    unsigned idx;
    char cid[40];
    char auth[300];
    airlock_sim_flash_t *sim;
    const airlock_flash_t *fl;
    airlock_layout_t layout;
    airlock_area_t settings_area;
    airlock_boot_cfg_t bcfg;
    airlock_ddi_cfg_t dcfg;
    airlock_ddi_t ddi;
    airlock_ota_t ota;
    uint64_t rng;
    int phase;
    /* the one timer */
    int64_t wake;
    int what;
    int heap_pos; /* -1: not in the heap */
    /* firmware */
    int version; /* index in f->versions, -1 unknown */
    bool confirmed;
    unsigned storm_left;
    int64_t offline_until;
    bool last_was_poll;
    int failed_version; /* version whose update this device reported failed, -1 none */
    /* transfers */
    struct xfer *x;  /* the DDI request or download request in flight */
    struct xfer *px; /* a progress feedback in flight */
    bool in_ddi_http;
    /* download */
    bool downloading;
    bool dl_ota_live; /* ota was begun/resumed in this power cycle */
    char dl_url[AIRLOCK_DDI_URL_MAX];
    uint8_t dl_sha[32];
    uint32_t dl_size;
    char validator[VALIDATOR_MAX];
    uint8_t dl_id[AIRLOCK_OTA_ID_SIZE];
    unsigned dl_fails;
    unsigned dl_delay_ms; /* virtual */
    bool dl_resumed;      /* this download continued earlier bytes */
    bool dl_retried_fresh;
    bool dl_slow;
    bool dl_cut_armed;
    uint64_t dl_ops0;
    /* audit */
    struct ack *acks;
    unsigned nacks, cap_acks;
    char cfg_version[AIRLOCK_FLEET_VERSION_MAX]; /* last configData version acknowledged */
    char cfg_sent[AIRLOCK_FLEET_VERSION_MAX];    /* one sent after it, answer not seen */
};

struct xfer {
    struct xfer *next, *prev; /* wait queue or free list */
    struct fleet *f;
    struct dev *d; /* NULL: operator request */
    CURL *h;
    int kind;
    bool active; /* added to the multi */
    bool queued;
    struct curl_slist *hdrs;
    char url[AIRLOCK_DDI_URL_MAX + 64];
    char method[8];
    char *req;
    size_t req_len;
    char *body;
    size_t len, cap;
    /* response headers */
    long status;
    char etag[VALIDATOR_MAX];
    char last_modified[VALIDATOR_MAX];
    bool has_range;
    uint64_t range_start;
    /* GET into the slot */
    uint64_t from;
    int mode;
    uint64_t rx;      /* body bytes of this response */
    uint64_t drop_at; /* UINT64_MAX: no drop */
    bool dropped;
    bool power_lost;
    int ota_err;
    bool restarted;
};

struct fleet {
    const airlock_fleet_cfg_t *cfg;
    int in_callback; /* inside a libcurl callback: transfers are queued, not started */
    airlock_fleet_report_t *rep;
    CURLM *multi;
    CURLSH *share;
    struct dev *devs;
    unsigned n;
    double scale;
    uint64_t rng;
    int64_t t0;
    uint8_t buf[SECTOR]; /* the bootloaders' work buffer: one device runs at a time */
    char base[256];
    const char *tenant;
    /* versions seen */
    char versions[AIRLOCK_FLEET_BUCKETS][AIRLOCK_FLEET_VERSION_MAX];
    unsigned nversions;
    int bad_version, hang_version, until_version;
    /* timers: a binary min-heap of devices by wake time */
    struct dev **heap;
    unsigned nheap;
    /* transfers */
    struct xfer *freelist;
    struct xfer *qhead, *qtail;
    unsigned active, queued, max_active;
    unsigned downloads;
    /* estimates of flash operations, for choosing where to cut */
    uint64_t dl_ops_max, swap_ops_max;
    /* check-ins per second */
    uint64_t checkins_last;
    int64_t live_last;
    double checkins_rate;
    /* campaign watch */
    char campaign_state[32];
    bool campaign_done;
    bool campaign_inflight;
    int64_t campaign_next;
    /* settling: the stop condition holds; no new faults, wait for devices to be idle */
    bool settling;
    int64_t settle_until;
    char errmsg[256];
};

static bool faults_on(const struct fleet *f)
{
    return !f->settling;
}

/* ---- versions ------------------------------------------------------------------------- */

static int version_index(struct fleet *f, const char *v)
{
    for (unsigned i = 0; i < f->nversions; i++) {
        if (strcmp(f->versions[i], v) == 0) {
            return (int)i;
        }
    }
    if (f->nversions == AIRLOCK_FLEET_BUCKETS) {
        return -1;
    }
    snprintf(f->versions[f->nversions], AIRLOCK_FLEET_VERSION_MAX, "%s", v);
    return (int)f->nversions++;
}

/* Virtual milliseconds to real nanoseconds. */
static int64_t vns(const struct fleet *f, double vms)
{
    return (int64_t)(vms * 1e6 / f->scale);
}

/* ---- timers --------------------------------------------------------------------------- */

static bool heap_less(struct fleet *f, unsigned a, unsigned b)
{
    return f->heap[a]->wake < f->heap[b]->wake;
}

static void heap_swap(struct fleet *f, unsigned a, unsigned b)
{
    struct dev *t = f->heap[a];
    f->heap[a] = f->heap[b];
    f->heap[b] = t;
    f->heap[a]->heap_pos = (int)a;
    f->heap[b]->heap_pos = (int)b;
}

static void heap_up(struct fleet *f, unsigned i)
{
    while (i > 0 && heap_less(f, i, (i - 1) / 2)) {
        heap_swap(f, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct fleet *f, unsigned i)
{
    for (;;) {
        unsigned l = 2 * i + 1, r = l + 1, m = i;
        if (l < f->nheap && heap_less(f, l, m)) {
            m = l;
        }
        if (r < f->nheap && heap_less(f, r, m)) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(f, i, m);
        i = m;
    }
}

static void timer_cancel(struct dev *d)
{
    struct fleet *f = d->f;
    if (d->heap_pos < 0) {
        return;
    }
    unsigned i = (unsigned)d->heap_pos;
    d->heap_pos = -1;
    d->what = TW_NONE;
    f->nheap--;
    if (i == f->nheap) {
        return;
    }
    f->heap[i] = f->heap[f->nheap];
    f->heap[i]->heap_pos = (int)i;
    heap_up(f, i);
    heap_down(f, (unsigned)f->heap[i]->heap_pos);
}

/* Fire `what` after real nanoseconds delay (replaces any pending timer). */
static void timer_set(struct dev *d, int what, int64_t delay)
{
    struct fleet *f = d->f;
    timer_cancel(d);
    d->wake = now_ns() + (delay > 0 ? delay : 0);
    d->what = what;
    d->heap_pos = (int)f->nheap;
    f->heap[f->nheap++] = d;
    heap_up(f, f->nheap - 1);
}

/* ---- transfers ------------------------------------------------------------------------ */

static struct xfer *xfer_get(struct fleet *f, struct dev *d, int kind)
{
    struct xfer *x = f->freelist;
    if (x) {
        f->freelist = x->next;
    } else {
        x = calloc(1, sizeof(*x));
        if (!x) {
            return NULL;
        }
        x->f = f;
    }
    CURL *h = x->h;
    char *body = x->body;
    size_t cap = x->cap;
    memset(x, 0, sizeof(*x));
    x->f = f;
    x->h = h;
    x->body = body;
    x->cap = cap;
    x->d = d;
    x->kind = kind;
    x->drop_at = UINT64_MAX;
    return x;
}

static void xfer_put(struct fleet *f, struct xfer *x)
{
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    free(x->req);
    x->req = NULL;
    if (x->cap > BODY_CAP / 4) {
        free(x->body); /* keep only small buffers around */
        x->body = NULL;
        x->cap = 0;
    }
    x->next = f->freelist;
    f->freelist = x;
}

static void queue_remove(struct fleet *f, struct xfer *x)
{
    if (x->prev) {
        x->prev->next = x->next;
    } else {
        f->qhead = x->next;
    }
    if (x->next) {
        x->next->prev = x->prev;
    } else {
        f->qtail = x->prev;
    }
    x->next = x->prev = NULL;
    x->queued = false;
    f->queued--;
}

/* Forget a transfer: out of the multi or the queue, back to the pool. */
static void xfer_cancel(struct fleet *f, struct xfer *x)
{
    if (!x) {
        return;
    }
    if (x->active) {
        curl_multi_remove_handle(f->multi, x->h);
        x->active = false;
        f->active--;
    } else if (x->queued) {
        queue_remove(f, x);
    }
    xfer_put(f, x);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud);
static size_t on_body(char *p, size_t size, size_t n, void *ud);

/* 0, or -1 when libcurl refused the handle (it is then not active). */
static int start_active(struct fleet *f, struct xfer *x)
{
    if (curl_multi_add_handle(f->multi, x->h) != CURLM_OK) {
        return -1;
    }
    x->active = true;
    f->active++;
    f->rep->requests++;
    return 0;
}

/* Configure x's easy handle for its request and start it (or queue it). */
static int xfer_submit(struct fleet *f, struct xfer *x, const char *auth_header, bool head,
                       const char *range, long max_recv)
{
    if (!x->h) {
        x->h = curl_easy_init();
        if (!x->h) {
            return AIRLOCK_ERR_NOMEM;
        }
    } else {
        curl_easy_reset(x->h);
    }
    CURL *h = x->h;
    const airlock_fleet_cfg_t *c = f->cfg;
    curl_easy_setopt(h, CURLOPT_URL, x->url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    curl_easy_setopt(h, CURLOPT_SHARE, f->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    }
    struct curl_slist *hs = NULL;
    hs = curl_slist_append(hs, auth_header);
    hs = curl_slist_append(hs, "Accept: application/json");
    if (x->req) {
        hs = curl_slist_append(hs, "Content-Type: application/json");
        hs = curl_slist_append(hs, "Expect:");
    }
    if (range && x->etag[0]) {
        char ifr[VALIDATOR_MAX + 16];
        snprintf(ifr, sizeof(ifr), "If-Range: %s", x->etag);
        hs = curl_slist_append(hs, ifr);
    }
    if (!hs) {
        return AIRLOCK_ERR_NOMEM;
    }
    x->hdrs = hs;
    x->etag[0] = '\0';
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    if (head) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(x->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->req ? x->req : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)x->req_len);
    }
    if (range) {
        curl_easy_setopt(h, CURLOPT_RANGE, range);
    }
    if (max_recv > 0) {
        curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)max_recv);
    }
    /* Inside a libcurl callback no handle may be added: queue it, the loop's
     * pump_queue starts it. */
    if (f->in_callback == 0 && f->active < f->max_active && start_active(f, x) == 0) {
        /* started */
    } else {
        x->queued = true;
        x->prev = f->qtail;
        x->next = NULL;
        if (f->qtail) {
            f->qtail->next = x;
        } else {
            f->qhead = x;
        }
        f->qtail = x;
        f->queued++;
    }
    return 0;
}

static void pump_queue(struct fleet *f)
{
    while (f->qhead && f->active < f->max_active) {
        struct xfer *x = f->qhead;
        queue_remove(f, x);
        if (start_active(f, x) != 0) {
            /* refused (out of memory): back at the head, tried again next turn */
            x->queued = true;
            x->prev = NULL;
            x->next = f->qhead;
            if (f->qhead) {
                f->qhead->prev = x;
            } else {
                f->qtail = x;
            }
            f->qhead = x;
            f->queued++;
            break;
        }
    }
}

static bool header_is(const char *line, size_t len, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') {
        return false;
    }
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    *value = v;
    return true;
}

static void copy_value(char *out, size_t cap, const char *v)
{
    size_t n = strcspn(v, "\r\n");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    if (n >= cap) {
        n = 0;
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    char line[512];
    const char *v;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->etag[0] = x->last_modified[0] = '\0';
        x->has_range = false;
        const char *s = memchr(p, ' ', len);
        x->status = s ? strtol(s + 1, NULL, 10) : 0;
        return len;
    }
    if (len >= sizeof(line)) {
        return len;
    }
    memcpy(line, p, len);
    line[len] = '\0';
    if (header_is(line, len, "etag", &v)) {
        copy_value(x->etag, sizeof(x->etag), v);
    } else if (header_is(line, len, "last-modified", &v)) {
        copy_value(x->last_modified, sizeof(x->last_modified), v);
    } else if (header_is(line, len, "content-range", &v)) {
        unsigned long long a;
        if (strncasecmp(v, "bytes ", 6) == 0 && isdigit((unsigned char)v[6]) &&
            sscanf(v + 6, "%llu-", &a) == 1) {
            x->has_range = true;
            x->range_start = a;
        }
    }
    return len;
}

/* ---- the settings record (the DDI state that survives a reboot) ------------------------ */

static int persist_load(struct dev *d, airlock_ddi_persist_t *p)
{
    airlock_settings_t s;
    uint8_t rec[AIRLOCK_DDI_PERSIST_LEN];
    size_t len = 0;
    memset(p, 0, sizeof(*p));
    int rc = airlock_settings_open(&s, &d->settings_area);
    if (rc == 0) {
        rc = airlock_settings_get(&s, SETTINGS_KEY, rec, sizeof(rec), &len);
        if (rc == 1 && len == sizeof(rec)) {
            airlock_ddi_persist_decode(rec, p); /* corrupt: a new device */
        }
        rc = rc < 0 ? rc : 0;
    }
    return rc;
}

static int persist_store(struct dev *d)
{
    airlock_settings_t s;
    uint8_t rec[AIRLOCK_DDI_PERSIST_LEN];
    airlock_ddi_persist_encode(airlock_ddi_persist(&d->ddi), rec);
    int rc = airlock_settings_open(&s, &d->settings_area);
    return rc ? rc : airlock_settings_set(&s, SETTINGS_KEY, rec, sizeof(rec));
}

/* ---- device life ---------------------------------------------------------------------- */

static void advance(struct dev *d);
static void boot(struct dev *d);

static bool powered(const struct dev *d)
{
    return airlock_sim_flash_powered(d->sim);
}

/* Stop everything the device is doing (its RAM is gone); flash stays as it is. */
static void halt(struct dev *d)
{
    struct fleet *f = d->f;
    timer_cancel(d);
    xfer_cancel(f, d->x);
    xfer_cancel(f, d->px);
    d->x = d->px = NULL;
    d->in_ddi_http = false;
    if (d->downloading) {
        f->downloads--;
        d->downloading = false;
    }
    if (d->dl_ota_live) {
        airlock_ota_abort(&d->ota);
        d->dl_ota_live = false;
    }
    d->dl_cut_armed = false;
    airlock_sim_flash_cut_cancel(d->sim);
}

/* Reset the device (a reboot, a watchdog, a crash): the bootloader runs after delay. */
static void reboot(struct dev *d, int64_t delay)
{
    halt(d);
    d->phase = PH_OFF;
    timer_set(d, TW_POWER_ON, delay);
}

/* Power was cut (a sim flash cut fired): back after 1-4 virtual seconds. */
static void power_lost(struct dev *d, int where)
{
    struct fleet *f = d->f;
    airlock_fleet_report_t *r = f->rep;
    r->powercuts++;
    if (where == 1) {
        r->powercuts_download++;
    } else if (where == 2) {
        r->powercuts_swap++;
    } else {
        r->powercuts_other++;
    }
    reboot(d, vns(f, 1000.0 + 3000.0 * rng_unit(&d->rng)));
}

/* After any call that touched flash: if power is gone, the device is off. */
static bool check_power(struct dev *d, int where)
{
    if (powered(d)) {
        return true;
    }
    power_lost(d, where);
    return false;
}

static void brick(struct dev *d, const char *why)
{
    struct fleet *f = d->f;
    halt(d);
    d->phase = PH_BRICKED;
    if (!f->rep->bricked) {
        snprintf(f->rep->bricked_first, sizeof(f->rep->bricked_first), "%.39s: %.110s", d->cid,
                 why);
    }
    f->rep->bricked++;
}

/* The bootloader: power on, install / revert / choose, verify, hand over. */
static void boot(struct dev *d)
{
    struct fleet *f = d->f;
    airlock_boot_t b;
    airlock_boot_result_t res;
    airlock_ota_status_t st;
    bool swap_cut = false;
    airlock_sim_flash_power_on(d->sim);
    /* an install waiting? then maybe cut power somewhere in the swap */
    if (airlock_ota_state(&d->bcfg, &st) == 0 && st.pending && faults_on(f) &&
        roll(&d->rng, f->cfg->powercut)) {
        uint64_t hi = f->swap_ops_max ? f->swap_ops_max : 64;
        airlock_sim_flash_cut_random(d->sim, 0, hi);
        swap_cut = true;
    }
    uint64_t ops0 = airlock_sim_flash_ops(d->sim);
    int rc = airlock_boot(&b, &d->bcfg, &res);
    if (!powered(d)) {
        power_lost(d, 2);
        return;
    }
    if (swap_cut) {
        airlock_sim_flash_cut_cancel(d->sim);
    }
    if (rc != 0 || res.action == AIRLOCK_BOOT_FAILED) {
        char why[160];
        snprintf(why, sizeof(why), "%s (%s)", res.message ? res.message : "boot failed",
                 airlock_errname(rc ? rc : res.err));
        brick(d, why);
        return;
    }
    f->rep->boots++;
    if (res.action == AIRLOCK_BOOT_INSTALLED || res.action == AIRLOCK_BOOT_TRIAL) {
        if (res.action == AIRLOCK_BOOT_INSTALLED) {
            f->rep->installs++;
            uint64_t ops = airlock_sim_flash_ops(d->sim) - ops0;
            if (!swap_cut && ops > f->swap_ops_max) {
                f->swap_ops_max = ops;
            }
        }
    } else if (res.action == AIRLOCK_BOOT_REVERTED) {
        f->rep->reverts++;
    } else if (res.action == AIRLOCK_BOOT_REJECTED) {
        f->rep->verify_failures++;
    }
    char v[AIRLOCK_FLEET_VERSION_MAX];
    airlock_ddi_version_str(&res.version, v, sizeof(v));
    d->version = version_index(f, v);
    d->confirmed = res.confirmed;
    d->phase = PH_BOOTING;
    double boot_ms = (f->cfg->boot_s > 0 ? f->cfg->boot_s : 2.0) * 1000.0;
    timer_set(d, TW_STARTED, vns(f, boot_ms * (0.75 + 0.5 * rng_unit(&d->rng))));
}

/* Boot and health checks are over: the firmware runs (or does not). */
static void started(struct dev *d)
{
    struct fleet *f = d->f;
    if (!d->confirmed && d->version >= 0 && d->version == f->bad_version) {
        f->rep->crashes++;
        reboot(d, vns(f, 200.0)); /* crashes during start-up: reset */
        return;
    }
    if (!d->confirmed && d->version >= 0 && d->version == f->hang_version) {
        double wd = (f->cfg->watchdog_s > 0 ? f->cfg->watchdog_s : 10.0) * 1000.0;
        timer_set(d, TW_WATCHDOG, vns(f, wd));
        return;
    }
    if (d->storm_left > 0) {
        /* a reboot storm: the device resets again before it gets anywhere */
        d->storm_left--;
        timer_set(d, TW_STORM, vns(f, 300.0 + 1200.0 * rng_unit(&d->rng)));
        return;
    }
    if (!d->confirmed) {
        int rc = airlock_ota_confirm(&d->bcfg); /* the health checks passed */
        if (!check_power(d, 3)) {
            return;
        }
        if (rc == 0) {
            d->confirmed = true;
            f->rep->confirms++;
        }
    }
    airlock_ddi_boot_t bi;
    airlock_ddi_persist_t p;
    if (airlock_ddi_boot_from_ota(&d->bcfg, &bi) != 0) {
        /* cannot read its own flash: report what the bootloader said */
        memset(&bi, 0, sizeof(bi));
        snprintf(bi.running_version, sizeof(bi.running_version), "%s",
                 d->version >= 0 ? f->versions[d->version] : "0.0.0");
        bi.confirmed = d->confirmed;
    }
    if (persist_load(d, &p) != 0) {
        memset(&p, 0, sizeof(p));
    }
    if (airlock_ddi_init(&d->ddi, &d->dcfg, &p, &bi) != 0) {
        brick(d, airlock_ddi_error(&d->ddi));
        return;
    }
    d->phase = PH_RUN;
    d->last_was_poll = false;
    advance(d);
}

/* ---- audit records ---------------------------------------------------------------------- */

static int index_of(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Remember an acknowledged report for the audit; false if it was already known. */
static bool add_ack(struct dev *d, const struct ack *a)
{
    for (unsigned i = 0; i < d->nacks; i++) {
        const struct ack *b = &d->acks[i];
        if (b->action == a->action && b->exec == a->exec && b->fin == a->fin &&
            b->cancel == a->cancel && b->cnt == a->cnt && b->of == a->of) {
            return false;
        }
    }
    if (d->nacks == d->cap_acks) {
        unsigned cap = d->cap_acks ? d->cap_acks * 2 : 8;
        struct ack *v = realloc(d->acks, cap * sizeof(*v));
        if (!v) {
            return true; /* not kept for the audit, but new */
        }
        d->acks = v;
        d->cap_acks = cap;
    }
    d->acks[d->nacks++] = *a;
    return true;
}

/* The number after "/seg/" in url, 0 if none. */
static uint64_t url_id(const char *url, const char *seg)
{
    const char *p = strstr(url, seg);
    return p ? strtoull(p + strlen(seg), NULL, 10) : 0;
}

/* A report (feedback or configData) the server acknowledged with 200: remember it. */
static void acknowledged(struct dev *d, const struct xfer *x)
{
    struct fleet *f = d->f;
    json_t *j = x->req ? json_loadb(x->req, x->req_len, 0, NULL) : NULL;
    if (!j) {
        return;
    }
    if (strstr(x->url, "/configData")) {
        const char *v = json_string_value(json_object_get(json_object_get(j, "data"), "version"));
        if (v) {
            snprintf(d->cfg_version, sizeof(d->cfg_version), "%s", v);
            d->cfg_sent[0] = '\0';
        }
    } else if (strstr(x->url, "/feedback")) {
        struct ack a;
        memset(&a, 0, sizeof(a));
        a.cancel = strstr(x->url, "/cancelAction/") != NULL;
        a.action = url_id(x->url, a.cancel ? "/cancelAction/" : "/deploymentBase/");
        json_t *st = json_object_get(j, "status");
        json_t *res = json_object_get(st, "result");
        const char *e = json_string_value(json_object_get(st, "execution"));
        const char *fin = json_string_value(json_object_get(res, "finished"));
        json_t *prog = json_object_get(res, "progress");
        int ei = e ? index_of(execs, sizeof(execs) / sizeof(execs[0]), e) : -1;
        int fi = index_of(fins, 3, fin ? fin : "none");
        if (ei >= 0 && fi >= 0) {
            a.exec = (uint8_t)ei;
            a.fin = (uint8_t)fi;
            a.cnt = (int16_t)json_integer_value(json_object_get(prog, "cnt"));
            a.of = (int16_t)json_integer_value(json_object_get(prog, "of"));
            /* a repeated final report (its first answer was lost) counts once */
            if (add_ack(d, &a) && ei == 0 && !a.cancel) {
                if (fi == 2) {
                    /* the update to this version is given up (reverted, refused) */
                    f->rep->reports_failed++;
                    const char *v = airlock_ddi_persist(&d->ddi)->version;
                    d->failed_version = v[0] ? version_index(f, v) : -1;
                    airlock_fleet_report_t *r = f->rep;
                    if (r->nfailures < sizeof(r->failures) / sizeof(r->failures[0])) {
                        const char *why =
                            json_string_value(json_array_get(json_object_get(st, "details"), 0));
                        snprintf(r->failures[r->nfailures++], sizeof(r->failures[0]),
                                 "%.39s -> %.31s: %.170s", d->cid, v[0] ? v : "?",
                                 why ? why : "(no details)");
                    }
                } else {
                    f->rep->reports_success++;
                }
            }
        }
    }
    json_decref(j);
}

/* ---- DDI requests --------------------------------------------------------------------- */

static void http_done(struct dev *d, struct xfer *x, long status, CURLcode cc);

/* A configData about to go out: the server may apply it even if its answer is lost. */
static void note_config_sent(struct dev *d, const struct xfer *x)
{
    json_t *j = json_loadb(x->req, x->req_len, 0, NULL);
    const char *v = json_string_value(json_object_get(json_object_get(j, "data"), "version"));
    if (v && strcmp(v, d->cfg_version) != 0) {
        snprintf(d->cfg_sent, sizeof(d->cfg_sent), "%s", v);
    }
    json_decref(j);
}

static int submit_request(struct dev *d, struct xfer *x, const airlock_ddi_req_t *rq)
{
    snprintf(x->url, sizeof(x->url), "%s", rq->url);
    snprintf(x->method, sizeof(x->method), "%s", rq->method);
    if (rq->body) {
        x->req = malloc(rq->body_len + 1);
        if (!x->req) {
            return AIRLOCK_ERR_NOMEM;
        }
        memcpy(x->req, rq->body, rq->body_len);
        x->req[rq->body_len] = '\0';
        x->req_len = rq->body_len;
        if (strstr(x->url, "/configData")) {
            note_config_sent(d, x);
        }
    }
    return xfer_submit(d->f, x, d->auth, false, NULL, 0);
}

/* Start a DDI HTTP request (or fail it at once if the device is offline). */
static void ddi_http(struct dev *d, const airlock_ddi_req_t *rq)
{
    struct fleet *f = d->f;
    d->last_was_poll = strcmp(rq->method, "GET") == 0 && !strstr(rq->url, "/deploymentBase/") &&
                       !strstr(rq->url, "/cancelAction/");
    d->in_ddi_http = true;
    if (now_ns() < d->offline_until) {
        timer_set(d, TW_OFFLINE, vns(f, 50.0));
        return;
    }
    struct xfer *x = xfer_get(f, d, XK_DDI);
    if (!x || submit_request(d, x, rq) != 0) {
        if (x) {
            xfer_put(f, x);
        }
        timer_set(d, TW_OFFLINE, vns(f, 1000.0)); /* out of memory: behave as offline */
        return;
    }
    d->x = x;
}

static void send_progress(struct dev *d, const airlock_ddi_req_t *rq)
{
    struct fleet *f = d->f;
    if (d->px || now_ns() < d->offline_until) {
        return; /* one at a time; progress is optional */
    }
    struct xfer *x = xfer_get(f, d, XK_PROGRESS);
    if (!x) {
        return;
    }
    if (submit_request(d, x, rq) != 0) {
        xfer_put(f, x);
        return;
    }
    d->px = x;
}

/* ---- download over the multi ---------------------------------------------------------- */

static void dl_get(struct dev *d);
static void dl_head(struct dev *d);

/* id = SHA-256("airlock-download\0" sha256 "\0" validator), as agent/download.c names it. */
static int make_id(struct dev *d)
{
    static const char tag[] = "airlock-download";
    const airlock_crypto_t *c = d->bcfg.crypto;
    airlock_hash_t hs;
    if (c->hash_init(&hs, AIRLOCK_HASH_SHA256) != 0) {
        return AIRLOCK_ERR_CRYPTO;
    }
    int rc = c->hash_update(&hs, tag, sizeof(tag));
    rc |= c->hash_update(&hs, d->dl_sha, sizeof(d->dl_sha));
    rc |= c->hash_update(&hs, "", 1);
    rc |= c->hash_update(&hs, d->validator, strlen(d->validator));
    rc |= c->hash_finish(&hs, d->dl_id);
    return rc ? AIRLOCK_ERR_CRYPTO : 0;
}

static bool verification_error(int rc)
{
    return rc == AIRLOCK_ERR_HASH_MISMATCH || rc == AIRLOCK_ERR_BAD_SIGNATURE ||
           rc == AIRLOCK_ERR_NO_SIGNATURE || rc == AIRLOCK_ERR_NO_HASH ||
           rc == AIRLOCK_ERR_UNKNOWN_KEY || rc == AIRLOCK_ERR_KEY_MISMATCH;
}

/* The download is over: tell the DDI machine, go on. */
static void dl_finish(struct dev *d, int err, const char *msg)
{
    struct fleet *f = d->f;
    if (d->downloading) {
        f->downloads--;
        d->downloading = false;
    }
    if (d->dl_cut_armed) {
        airlock_sim_flash_cut_cancel(d->sim);
        d->dl_cut_armed = false;
    }
    if (err) {
        if (d->dl_ota_live) {
            airlock_ota_abort(&d->ota);
            d->dl_ota_live = false;
        }
        if (err != AIRLOCK_ERR_NETWORK && err != AIRLOCK_ERR_CANCELLED && err != AIRLOCK_ERR_HTTP) {
            f->rep->verify_failures++;
        }
    } else {
        f->rep->downloads_ok++;
        f->rep->bytes_min += d->dl_size;
    }
    xfer_cancel(f, d->px);
    d->px = NULL;
    airlock_ddi_download_done(&d->ddi, err, msg);
    advance(d);
}

/* A request failed in a way worth retrying: back off (virtual time) or give up. */
static void dl_retry(struct dev *d, bool progressed, const char *why)
{
    struct fleet *f = d->f;
    if (progressed) {
        d->dl_fails = 0;
        d->dl_delay_ms = 500;
    }
    if (++d->dl_fails >= DL_MAX_FAILS) {
        char msg[200];
        snprintf(msg, sizeof(msg), "giving up after %u failed requests in a row: %s", d->dl_fails,
                 why);
        dl_finish(d, AIRLOCK_ERR_NETWORK, msg);
        return;
    }
    unsigned ms = d->dl_delay_ms / 2u + (unsigned)rng_below(&d->rng, d->dl_delay_ms / 2u + 1u);
    d->dl_delay_ms = d->dl_delay_ms > 15000u ? 30000u : d->dl_delay_ms * 2u;
    timer_set(d, TW_DL_RETRY, vns(f, ms));
}

/* The whole image is in the slot: verify it. */
static void dl_complete(struct dev *d)
{
    int rc = airlock_ota_end(&d->ota);
    if (!check_power(d, 1)) {
        return;
    }
    if (rc && verification_error(rc) && !d->dl_retried_fresh && d->dl_resumed) {
        /* bytes of two artifacts? download it once more, whole */
        d->dl_retried_fresh = true;
        d->dl_resumed = false;
        d->f->rep->restarts++;
        airlock_ota_abort(&d->ota);
        rc = airlock_ota_begin(&d->ota, &d->bcfg, d->dl_size, d->dl_id);
        if (!check_power(d, 1)) {
            return;
        }
        if (rc == 0) {
            dl_get(d);
            return;
        }
    }
    if (rc == 0) {
        d->dl_ota_live = true; /* verified: kept for set_pending */
        dl_finish(d, 0, NULL);
        return;
    }
    char msg[200];
    const airlock_err_detail_t *det = airlock_ota_detail(&d->ota);
    snprintf(msg, sizeof(msg), "image rejected: %s [%s]%s%s", airlock_strerror(rc),
             airlock_errname(rc), det->field ? ", field " : "", det->field ? det->field : "");
    dl_finish(d, rc, msg);
}

static void dl_start(struct dev *d, const airlock_ddi_req_t *rq)
{
    struct fleet *f = d->f;
    snprintf(d->dl_url, sizeof(d->dl_url), "%s", rq->url);
    memcpy(d->dl_sha, rq->sha256, 32);
    d->dl_size = rq->size;
    d->dl_fails = 0;
    d->dl_delay_ms = 500;
    d->dl_resumed = false;
    d->dl_retried_fresh = false;
    d->downloading = true;
    f->downloads++;
    d->dl_slow = faults_on(f) && roll(&d->rng, f->cfg->slow);
    if (d->dl_slow) {
        f->rep->slow_links++;
    }
    d->dl_ops0 = airlock_sim_flash_ops(d->sim);
    d->dl_cut_armed = faults_on(f) && roll(&d->rng, f->cfg->powercut);
    if (d->dl_cut_armed) {
        uint64_t hi = f->dl_ops_max ? f->dl_ops_max : 32;
        airlock_sim_flash_cut_random(d->sim, 0, hi);
    }
    dl_head(d);
}

static void dl_head(struct dev *d)
{
    struct fleet *f = d->f;
    if (now_ns() < d->offline_until) {
        dl_retry(d, false, "offline");
        return;
    }
    struct xfer *x = xfer_get(f, d, XK_HEAD);
    if (!x) {
        dl_retry(d, false, "out of memory");
        return;
    }
    snprintf(x->url, sizeof(x->url), "%s", d->dl_url);
    snprintf(x->method, sizeof(x->method), "HEAD");
    if (xfer_submit(f, x, d->auth, true, NULL, 0) != 0) {
        xfer_put(f, x);
        dl_retry(d, false, "out of memory");
        return;
    }
    d->x = x;
}

static void dl_get(struct dev *d)
{
    struct fleet *f = d->f;
    if (now_ns() < d->offline_until) {
        dl_retry(d, false, "offline");
        return;
    }
    struct xfer *x = xfer_get(f, d, XK_GET);
    if (!x) {
        dl_retry(d, false, "out of memory");
        return;
    }
    uint64_t from = airlock_ota_pos(&d->ota);
    char range[32];
    snprintf(x->url, sizeof(x->url), "%s", d->dl_url);
    snprintf(x->method, sizeof(x->method), "GET");
    x->from = from;
    if (from > 0) {
        snprintf(range, sizeof(range), "%" PRIu64 "-", from);
        snprintf(x->etag, sizeof(x->etag), "%s", d->validator); /* If-Range */
        f->rep->resumes++;
        d->dl_resumed = true;
    }
    if (faults_on(f) && roll(&d->rng, f->cfg->drop) && d->dl_size > from) {
        x->drop_at = rng_below(&d->rng, d->dl_size - from);
    }
    long cap = 0;
    if (d->dl_slow) {
        double bps = (f->cfg->slow_bps ? f->cfg->slow_bps : 4096u) * f->scale;
        cap = bps < 1 ? 1 : (long)bps;
    }
    if (xfer_submit(f, x, d->auth, false, from > 0 ? range : NULL, cap) != 0) {
        xfer_put(f, x);
        dl_retry(d, false, "out of memory");
        return;
    }
    d->x = x;
}

static const char *response_validator(const struct xfer *x)
{
    if (x->etag[0] && strncmp(x->etag, "W/", 2) != 0) {
        return x->etag;
    }
    return x->last_modified;
}

static void head_done(struct dev *d, struct xfer *x, CURLcode cc)
{
    long s = x->status;
    if (cc != CURLE_OK || s == 0 || s == 429 || s == 408 || s >= 500) {
        dl_retry(d, false, cc != CURLE_OK ? curl_easy_strerror(cc) : "server busy");
        return;
    }
    if (s < 200 || s > 299) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s: HTTP %ld", "artifact look-up", s);
        dl_finish(d, AIRLOCK_ERR_HTTP, msg);
        return;
    }
    snprintf(d->validator, sizeof(d->validator), "%s", response_validator(x));
    int rc = make_id(d);
    uint32_t off = 0;
    if (rc == 0) {
        if (d->dl_ota_live) {
            airlock_ota_abort(&d->ota);
        }
        d->dl_ota_live = true;
        /* continue what an earlier power cycle wrote, if it is this artifact */
        rc = d->validator[0] ? airlock_ota_resume(&d->ota, &d->bcfg, d->dl_id, &off)
                             : airlock_ota_begin(&d->ota, &d->bcfg, d->dl_size, d->dl_id);
        if (!check_power(d, 1)) {
            return;
        }
    }
    if (rc) {
        char msg[160];
        snprintf(msg, sizeof(msg), "cannot start the download in the slot: %s",
                 airlock_strerror(rc));
        dl_finish(d, rc, msg);
        return;
    }
    if (off) {
        d->dl_resumed = true;
    }
    uint32_t len = airlock_ota_image_len(&d->ota);
    if (len && off == len) {
        dl_complete(d);
        return;
    }
    dl_get(d);
}

/* First body byte of a GET: what do its bytes mean? (agent/download.c's rules) */
static void decide(struct xfer *x)
{
    struct dev *d = x->d;
    const char *rv = response_validator(x);
    x->mode = BODY_ABORT;
    if (x->status == 206) {
        if (!x->has_range || x->range_start != x->from ||
            (d->validator[0] && rv[0] && strcmp(rv, d->validator) != 0)) {
            return;
        }
        x->mode = BODY_WRITE;
        return;
    }
    if (x->status == 200) {
        if (x->from > 0 || strcmp(rv, d->validator) != 0) {
            /* another artifact (or a server that ignored the range): start over, never splice */
            snprintf(d->validator, sizeof(d->validator), "%s", rv);
            if (make_id(d) != 0) {
                return;
            }
            airlock_ota_abort(&d->ota);
            int rc = airlock_ota_begin(&d->ota, &d->bcfg, d->dl_size, d->dl_id);
            if (!powered(d)) {
                x->power_lost = true;
                return;
            }
            if (rc) {
                x->ota_err = rc;
                return;
            }
            d->f->rep->restarts++;
            d->dl_resumed = false;
            x->restarted = true;
        }
        x->mode = BODY_WRITE;
        return;
    }
    x->mode = BODY_DISCARD;
}

static size_t body(struct xfer *x, char *p, size_t len);

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    struct fleet *f = x->kind == XK_GET ? x->d->f : NULL;
    if (f) {
        f->in_callback++;
    }
    size_t r = body(x, p, size * n);
    if (f) {
        f->in_callback--;
    }
    return r;
}

static size_t body(struct xfer *x, char *p, size_t len)
{
    if (x->kind != XK_GET) {
        if (x->len + len > BODY_CAP) {
            return 0;
        }
        if (x->len + len + 1 > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < x->len + len + 1) {
                cap *= 2;
            }
            char *b = realloc(x->body, cap);
            if (!b) {
                return 0;
            }
            x->body = b;
            x->cap = cap;
        }
        memcpy(x->body + x->len, p, len);
        x->len += len;
        x->body[x->len] = '\0';
        return len;
    }
    struct dev *d = x->d;
    if (x->mode == BODY_UNDECIDED) {
        decide(x);
    }
    if (x->mode == BODY_DISCARD) {
        return len;
    }
    if (x->mode != BODY_WRITE) {
        return 0;
    }
    size_t take = len;
    if (x->drop_at != UINT64_MAX && x->rx + len > x->drop_at) {
        take = (size_t)(x->drop_at - x->rx);
        x->dropped = true;
    }
    x->rx += take;
    d->f->rep->bytes_downloaded += take;
    if (take) {
        int rc = airlock_ota_write(&d->ota, p, take);
        if (rc) {
            if (!powered(d)) {
                x->power_lost = true;
            } else {
                x->ota_err = rc;
            }
            return 0;
        }
    }
    if (x->dropped) {
        return 0; /* the connection drops here */
    }
    airlock_ddi_req_t rq;
    if (airlock_ddi_progress(&d->ddi, airlock_ota_pos(&d->ota), d->dl_size, &rq)) {
        send_progress(d, &rq);
    }
    return len;
}

static void get_done(struct dev *d, struct xfer *x, CURLcode cc)
{
    struct fleet *f = d->f;
    bool progressed = x->rx > 0;
    if (x->power_lost || !powered(d)) {
        power_lost(d, 1);
        return;
    }
    if (x->ota_err) {
        char msg[200];
        const airlock_err_detail_t *det = airlock_ota_detail(&d->ota);
        snprintf(msg, sizeof(msg), "image rejected at byte %" PRIu32 ": %s [%s]%s%s", det->offset,
                 airlock_strerror(x->ota_err), airlock_errname(x->ota_err),
                 det->field ? ", field " : "", det->field ? det->field : "");
        dl_finish(d, x->ota_err, msg);
        return;
    }
    if (x->dropped) {
        f->rep->drops++;
        dl_retry(d, true, "connection dropped");
        return;
    }
    uint32_t len = airlock_ota_image_len(&d->ota);
    if (cc == CURLE_OK && (x->status == 200 || x->status == 206) && len &&
        airlock_ota_pos(&d->ota) == len) {
        dl_complete(d);
        return;
    }
    if (x->status == 416 || (x->mode == BODY_ABORT && cc == CURLE_WRITE_ERROR)) {
        /* the server does not continue this download: start over from byte 0 */
        airlock_ota_abort(&d->ota);
        int rc = airlock_ota_begin(&d->ota, &d->bcfg, d->dl_size, d->dl_id);
        if (!check_power(d, 1)) {
            return;
        }
        if (rc) {
            dl_finish(d, rc, "cannot restart the download in the slot");
            return;
        }
        f->rep->restarts++;
        d->dl_resumed = false;
        dl_retry(d, false, "range not honoured");
        return;
    }
    if (cc == CURLE_OK && x->status >= 400 && x->status < 500 && x->status != 408 &&
        x->status != 429) {
        char msg[96];
        snprintf(msg, sizeof(msg), "artifact download: HTTP %ld", x->status);
        dl_finish(d, AIRLOCK_ERR_HTTP, msg);
        return;
    }
    dl_retry(d, progressed, cc != CURLE_OK ? curl_easy_strerror(cc) : "short or failed response");
}

/* ---- the DDI driver -------------------------------------------------------------------- */

static void save_persist(struct dev *d)
{
    if (airlock_ddi_persist_dirty(&d->ddi)) {
        persist_store(d);
    }
}

static void install(struct dev *d)
{
    struct fleet *f = d->f;
    if (!d->dl_ota_live) {
        /*
         * No download in hand: the update was requested before the last
         * boot and the bootloader has not acted on it yet (the DDI machine
         * saw it pending): reboot for it.
         */
        save_persist(d);
        if (check_power(d, 3)) {
            reboot(d, vns(f, 300.0));
        }
        return;
    }
    int rc = airlock_ota_set_pending(&d->ota, false);
    if (!check_power(d, 3)) {
        return;
    }
    airlock_ota_abort(&d->ota);
    d->dl_ota_live = false;
    if (rc) {
        /* nothing verified to install (a reboot lost it): the next poll starts over */
        reboot(d, vns(f, 500.0));
        return;
    }
    if (d->dl_ops0) {
        uint64_t ops = airlock_sim_flash_ops(d->sim) - d->dl_ops0;
        if (ops > f->dl_ops_max) {
            f->dl_ops_max = ops;
        }
    }
    save_persist(d);
    if (!check_power(d, 3)) {
        return;
    }
    reboot(d, vns(f, 300.0));
}

/* Roll the per-check-in faults after a poll; true if the device went away. */
static bool checkin_faults(struct dev *d, uint32_t sleep_ms)
{
    struct fleet *f = d->f;
    if (!faults_on(f)) {
        return false;
    }
    if (roll(&d->rng, f->cfg->storm)) {
        f->rep->storms++;
        d->storm_left = 1 + (unsigned)rng_below(&d->rng, 4); /* 2-5 reboots in all */
        timer_set(d, TW_STORM, vns(f, (double)sleep_ms * rng_unit(&d->rng)));
        d->phase = PH_RUN;
        return true;
    }
    if (roll(&d->rng, f->cfg->offline)) {
        f->rep->offline_spells++;
        double max = (f->cfg->offline_s > 0 ? f->cfg->offline_s : 30.0) * 1000.0;
        d->offline_until = now_ns() + vns(f, max * (0.2 + 0.8 * rng_unit(&d->rng)));
    }
    return false;
}

/* Ask the DDI machine what to do until the device waits for something. */
static void advance(struct dev *d)
{
    struct fleet *f = d->f;
    for (;;) {
        airlock_ddi_req_t rq;
        airlock_ddi_next(&d->ddi, &rq);
        /*
         * The record goes to flash before the request is acted on, except
         * for an install: set_pending first, then the record (phase
         * INSTALLING), then the reboot. A cut between the two leaves a
         * record saying DOWNLOADING with the update installed: the DDI
         * machine then finds the target running and, once it is confirmed,
         * reports success; the other order would report a failure for an
         * install never asked for.
         */
        if (rq.kind != AIRLOCK_DDI_REQ_INSTALL) {
            save_persist(d);
            if (!check_power(d, 3)) {
                return;
            }
        }
        switch (rq.kind) {
        case AIRLOCK_DDI_REQ_HTTP:
            ddi_http(d, &rq);
            return;
        case AIRLOCK_DDI_REQ_SLEEP:
            if (d->last_was_poll) {
                d->last_was_poll = false;
                if (checkin_faults(d, rq.sleep_ms)) {
                    return;
                }
            }
            timer_set(d, TW_DDI, vns(f, rq.sleep_ms));
            return;
        case AIRLOCK_DDI_REQ_DOWNLOAD:
            dl_start(d, &rq);
            return;
        case AIRLOCK_DDI_REQ_INSTALL:
            install(d);
            return;
        case AIRLOCK_DDI_REQ_ABORT:
            if (d->dl_ota_live) {
                airlock_ota_abort(&d->ota);
                d->dl_ota_live = false;
            }
            continue;
        default:
            timer_set(d, TW_DDI, vns(f, 1000.0));
            return;
        }
    }
}

static void http_done(struct dev *d, struct xfer *x, long status, CURLcode cc)
{
    struct fleet *f = d->f;
    d->in_ddi_http = false;
    if (cc == CURLE_OK && status == 200 && strcmp(x->method, "GET") != 0) {
        acknowledged(d, x);
    }
    if (cc == CURLE_OK && status == 200 && d->last_was_poll) {
        f->rep->checkins++;
    }
    airlock_ddi_response(&d->ddi, cc == CURLE_OK ? (int)status : 0, x->body ? x->body : "", x->len);
    advance(d);
}

/* A finished transfer of the multi. */
static void on_done(struct fleet *f, struct xfer *x, CURLcode cc)
{
    struct dev *d = x->d;
    long status = x->status;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    x->status = status;
    airlock_fleet_report_t *r = f->rep;
    bool ours = x->dropped || x->power_lost || x->ota_err || x->mode == BODY_ABORT;
    if (cc != CURLE_OK && !ours) {
        if (!r->conn_failures++) {
            snprintf(r->conn_first, sizeof(r->conn_first), "%.60s %.40s: %.50s", x->method,
                     x->kind == XK_GET || x->kind == XK_HEAD ? "artifact" : "DDI",
                     curl_easy_strerror(cc));
        }
    } else if (status >= 500) {
        r->http_5xx++;
    } else if (status == 429) {
        r->http_429++;
    } else if (status >= 400) {
        r->http_4xx++;
    }
    if (x->kind == XK_PROGRESS) {
        if (cc == CURLE_OK && status == 200) {
            acknowledged(d, x);
        }
        d->px = NULL;
        xfer_put(f, x);
        return;
    }
    d->x = NULL;
    switch (x->kind) {
    case XK_DDI:
        http_done(d, x, status, cc);
        break;
    case XK_HEAD:
        head_done(d, x, cc);
        break;
    case XK_GET:
        get_done(d, x, cc);
        break;
    default:
        break;
    }
    xfer_put(f, x);
}

static void on_timer(struct dev *d)
{
    struct fleet *f = d->f;
    int what = d->what;
    d->what = TW_NONE;
    switch (what) {
    case TW_POWER_ON:
        boot(d);
        break;
    case TW_STARTED:
        started(d);
        break;
    case TW_WATCHDOG:
        f->rep->watchdog_resets++;
        reboot(d, vns(f, 200.0));
        break;
    case TW_STORM:
        reboot(d, vns(f, 200.0 + 600.0 * rng_unit(&d->rng)));
        break;
    case TW_DDI:
        advance(d);
        break;
    case TW_DL_RETRY:
        if (d->dl_ota_live && d->validator[0]) {
            dl_get(d);
        } else {
            dl_head(d);
        }
        break;
    case TW_OFFLINE:
        d->in_ddi_http = false;
        airlock_ddi_response(&d->ddi, 0, "", 0);
        advance(d);
        break;
    default:
        break;
    }
}

/* ---- set-up ------------------------------------------------------------------------- */

static int fail(struct fleet *f, char *msg, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(struct fleet *f, char *msg, size_t cap, int rc, const char *fmt, ...)
{
    va_list ap;
    (void)f;
    if (msg && cap) {
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int dev_init(struct fleet *f, struct dev *d, unsigned i, char *msg, size_t cap)
{
    const airlock_fleet_cfg_t *c = f->cfg;
    uint32_t slot = c->slot_size / SECTOR;
    airlock_sector_run_t run = {2 * slot + STATUS_SECTORS + SETTINGS_SECTORS, SECTOR};
    airlock_sim_flash_geometry_t geo = {0, WRITE_SIZE, 0xff, &run, 1};
    d->f = f;
    d->idx = i;
    d->heap_pos = -1;
    d->version = -1;
    d->failed_version = -1;
    d->rng = c->seed ^ (0x51ed27u + (uint64_t)i * 0x9e3779b97f4a7c15ull);
    rng_next(&d->rng);
    int digits = 1;
    for (unsigned m = f->n - 1; m >= 10; m /= 10) {
        digits++;
    }
    if (digits < 5) {
        digits = 5;
    }
    char num[16];
    snprintf(num, sizeof(num), "%010u", i);
    snprintf(d->cid, sizeof(d->cid), "%.24s%s", c->id_prefix ? c->id_prefix : "sim-",
             num + 10 - (digits > 10 ? 10 : digits));
    if (c->device_tokens) {
        snprintf(d->auth, sizeof(d->auth), "Authorization: TargetToken %s", c->device_tokens[i]);
    } else {
        snprintf(d->auth, sizeof(d->auth), "Authorization: GatewayToken %s", c->gateway_token);
    }
    if (airlock_sim_flash_create(&geo, &d->sim) != 0) {
        return fail(f, msg, cap, AIRLOCK_ERR_NOMEM, "device %u: no memory for its sim flash", i);
    }
    airlock_sim_flash_seed(d->sim, c->seed * 1000003u + i);
    d->fl = airlock_sim_flash_port(d->sim);
    airlock_layout_t *l = &d->layout;
    l->area[AIRLOCK_AREA_PRIMARY] = (airlock_area_t){d->fl, 0, slot * SECTOR};
    l->area[AIRLOCK_AREA_SECONDARY] = (airlock_area_t){d->fl, slot * SECTOR, slot * SECTOR};
    l->area[AIRLOCK_AREA_STATUS] =
        (airlock_area_t){d->fl, 2 * slot * SECTOR, STATUS_SECTORS * SECTOR};
    d->settings_area =
        (airlock_area_t){d->fl, (2 * slot + STATUS_SECTORS) * SECTOR, SETTINGS_SECTORS * SECTOR};
    airlock_boot_cfg_t *b = &d->bcfg;
    b->layout = l;
    b->engine = c->engine;
    b->crypto = c->crypto;
    b->keys = c->keys;
    b->nkeys = c->nkeys;
    b->max_trials = c->max_trials ? c->max_trials : 1;
    b->buf = f->buf;
    b->buf_len = sizeof(f->buf);
    if (airlock_sim_flash_load(d->sim, 0, c->factory, (uint32_t)c->factory_len) != 0) {
        return fail(f, msg, cap, AIRLOCK_ERR_LAYOUT, "the factory image does not fit the slot");
    }
    d->dcfg.base_url = f->base;
    d->dcfg.tenant = f->tenant;
    d->dcfg.controller_id = d->cid;
    d->dcfg.auth = strchr(d->auth, ':') + 2;
    d->dcfg.retry_ms = 1000;
    d->dcfg.default_poll_ms = 1000;
    d->dcfg.progress_step = (uint32_t)(c->factory_len / 3u + 1u);
    return 0;
}

static int check_cfg(struct fleet *f, const airlock_fleet_cfg_t *c, char *msg, size_t cap)
{
    if (!c->n) {
        return fail(f, msg, cap, AIRLOCK_ERR_INVAL, "n: at least one device");
    }
    if (!c->server || strlen(c->server) >= sizeof(f->base) - 1) {
        return fail(f, msg, cap, AIRLOCK_ERR_INVAL, "server: missing or too long");
    }
    if (!c->gateway_token && !c->device_tokens) {
        return fail(f, msg, cap, AIRLOCK_ERR_INVAL, "a gateway token or device tokens");
    }
    if (!c->factory || !c->factory_len || !c->crypto || !c->engine) {
        return fail(f, msg, cap, AIRLOCK_ERR_INVAL, "factory image, crypto and engine");
    }
    if (!c->slot_size || c->slot_size % SECTOR || c->factory_len > c->slot_size) {
        return fail(f, msg, cap, AIRLOCK_ERR_LAYOUT,
                    "slot size %" PRIu32 ": a multiple of 4 KiB holding the factory image (%zu)",
                    c->slot_size, c->factory_len);
    }
    if (!(c->engine->caps & AIRLOCK_ENGINE_CAN_REVERT)) {
        return fail(f, msg, cap, AIRLOCK_ERR_LAYOUT, "engine %s cannot revert", c->engine->name);
    }
    if (c->until_campaign && !c->operator_token) {
        return fail(f, msg, cap, AIRLOCK_ERR_INVAL, "until_campaign needs the operator token");
    }
    return 0;
}

/* ---- live progress and stop conditions ---------------------------------------------- */

static int dev_state(const struct dev *d, int64_t now)
{
    switch (d->phase) {
    case PH_BRICKED:
        return AIRLOCK_FLEET_BRICKED;
    case PH_OFF:
        return AIRLOCK_FLEET_OFF;
    case PH_BOOTING:
        return AIRLOCK_FLEET_BOOTING;
    default:
        break;
    }
    if (d->storm_left > 0 || d->what == TW_STORM) {
        return AIRLOCK_FLEET_OFF;
    }
    if (now < d->offline_until) {
        return AIRLOCK_FLEET_OFFLINE;
    }
    const airlock_ddi_persist_t *p = airlock_ddi_persist(&d->ddi);
    return p->phase != AIRLOCK_DDI_PHASE_NONE || d->downloading ? AIRLOCK_FLEET_UPDATING
                                                                : AIRLOCK_FLEET_IDLE;
}

static void live(struct fleet *f, int64_t now)
{
    airlock_fleet_live_t lv;
    memset(&lv, 0, sizeof(lv));
    lv.elapsed_s = (double)(now - f->t0) / 1e9;
    for (unsigned i = 0; i < f->n; i++) {
        const struct dev *d = &f->devs[i];
        lv.per_state[dev_state(d, now)]++;
        if (d->version >= 0) {
            lv.per_version[d->version]++;
        }
    }
    lv.nversions = f->nversions;
    for (unsigned i = 0; i < f->nversions; i++) {
        lv.versions[i] = f->versions[i];
    }
    lv.downloads = f->downloads;
    lv.requests = f->active + f->queued;
    lv.checkins_per_s = f->checkins_rate;
    lv.powercuts = f->rep->powercuts;
    lv.drops = f->rep->drops;
    lv.server_errors = f->rep->http_5xx + f->rep->http_429 + f->rep->conn_failures;
    lv.campaign_state = f->campaign_state;
    if (f->cfg->live) {
        f->cfg->live(f->cfg->ctx, &lv);
    }
}

static bool version_reached(struct fleet *f)
{
    if (f->until_version < 0) {
        return false;
    }
    for (unsigned i = 0; i < f->n; i++) {
        const struct dev *d = &f->devs[i];
        if (d->phase == PH_BRICKED || d->failed_version == f->until_version) {
            continue;
        }
        if (d->phase != PH_RUN || d->version != f->until_version || !d->confirmed ||
            airlock_ddi_persist(&d->ddi)->phase != AIRLOCK_DDI_PHASE_NONE || d->downloading) {
            return false;
        }
    }
    return true;
}

/* Every device idle (or bricked: it stays so). */
static bool all_idle(struct fleet *f, int64_t now)
{
    for (unsigned i = 0; i < f->n; i++) {
        int st = dev_state(&f->devs[i], now);
        if (st != AIRLOCK_FLEET_IDLE && st != AIRLOCK_FLEET_BRICKED) {
            return false;
        }
    }
    return true;
}

static int op_request(struct fleet *f, struct xfer *x, const char *path)
{
    char auth[320];
    int k = snprintf(x->url, sizeof(x->url), "%s%s", f->base, path);
    if (k < 0 || (size_t)k >= sizeof(x->url)) {
        return AIRLOCK_ERR_INVAL;
    }
    snprintf(x->method, sizeof(x->method), "GET");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", f->cfg->operator_token);
    return xfer_submit(f, x, auth, false, NULL, 0);
}

static void campaign_poll(struct fleet *f)
{
    struct xfer *x = xfer_get(f, NULL, XK_CAMPAIGN);
    char path[200];
    char *esc = curl_easy_escape(NULL, f->cfg->until_campaign, 0);
    snprintf(path, sizeof(path), "/api/v1/campaigns/%s", esc ? esc : "");
    curl_free(esc);
    if (!x || op_request(f, x, path) != 0) {
        if (x) {
            xfer_put(f, x);
        }
        return;
    }
    f->campaign_inflight = true;
}

/* A campaign status: done = finished or cancelled, or paused with nothing still open. */
static void campaign_answer(struct fleet *f, struct xfer *x, CURLcode cc)
{
    f->campaign_inflight = false;
    if (cc != CURLE_OK || x->status != 200 || !x->body) {
        return;
    }
    json_t *j = json_loadb(x->body, x->len, 0, NULL);
    const char *st = json_string_value(json_object_get(j, "state"));
    if (st) {
        snprintf(f->campaign_state, sizeof(f->campaign_state), "%s", st);
        json_t *n = json_object_get(j, "counts");
        json_int_t open = json_integer_value(json_object_get(n, "offered")) +
                          json_integer_value(json_object_get(n, "running")) +
                          json_integer_value(json_object_get(n, "cancelling"));
        f->campaign_done = strcmp(st, "finished") == 0 || strcmp(st, "cancelled") == 0 ||
                           (strcmp(st, "paused") == 0 && open == 0);
    }
    json_decref(j);
}

/* ---- the audit ---------------------------------------------------------------------- */

static const char *jstr(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

/*
 * The next finished transfer (taken out of the multi handle, no longer
 * active) with its result in *cc; NULL when none is left. Its HTTP status is
 * the caller's to read.
 */
static struct xfer *next_done(struct fleet *f, CURLcode *cc)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left))) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        char *priv = NULL;
        *cc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct xfer *x = (struct xfer *)(void *)priv;
        curl_multi_remove_handle(f->multi, x->h);
        x->active = false;
        f->active--;
        return x;
    }
    return NULL;
}

static void audit_device(struct fleet *f, struct dev *d, const struct xfer *x, CURLcode cc)
{
    airlock_fleet_report_t *r = f->rep;
    json_t *j =
        cc == CURLE_OK && x->status == 200 && x->body ? json_loadb(x->body, x->len, 0, NULL) : NULL;
    if (!j) {
        r->audit_errors++;
        if (!r->audit_first[0]) {
            snprintf(r->audit_first, sizeof(r->audit_first), "%s: operator API answered %ld (%s)",
                     d->cid, x->status, curl_easy_strerror(cc));
        }
        return;
    }
    json_t *fb = json_object_get(j, "feedback");
    json_t *acts = json_object_get(j, "actions");
    bool truncated =
        json_integer_value(json_object_get(j, "feedback_total")) > (json_int_t)json_array_size(fb);
    for (unsigned k = 0; k < d->nacks; k++) {
        const struct ack *a = &d->acks[k];
        r->audit_reports++;
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(fb, i, e)
        {
            if ((uint64_t)json_integer_value(json_object_get(e, "action_id")) == a->action &&
                strcmp(jstr(json_object_get(e, "execution")), execs[a->exec]) == 0 &&
                strcmp(jstr(json_object_get(e, "finished")), fins[a->fin]) == 0 &&
                json_integer_value(json_object_get(json_object_get(e, "progress"), "cnt")) ==
                    a->cnt &&
                json_integer_value(json_object_get(json_object_get(e, "progress"), "of")) ==
                    a->of) {
                found = true;
                break;
            }
        }
        /* the action's state on the server */
        const char *state = "";
        json_array_foreach(acts, i, e)
        {
            if ((uint64_t)json_integer_value(json_object_get(e, "id")) == a->action) {
                state = jstr(json_object_get(e, "state"));
            }
        }
        bool final = a->exec == 0 && !a->cancel;
        if (final) {
            /* a closed report: the action must be closed the same way (and, unless the
             * server cut its feedback list short, the report itself be listed) */
            const char *want = a->fin == 2 ? "failure" : "success";
            found = (found || truncated) && strcmp(state, want) == 0;
        } else if (!found) {
            /* progress on an action the server had closed already is ignored (200) */
            found = truncated || strcmp(state, "success") == 0 || strcmp(state, "failure") == 0 ||
                    strcmp(state, "cancelled") == 0 || strcmp(state, "skipped") == 0;
        }
        if (!found) {
            r->audit_missing++;
            if (!r->audit_first[0]) {
                snprintf(r->audit_first, sizeof(r->audit_first),
                         "%s: action %" PRIu64 " %s/%s %d/%d acknowledged but not on the server "
                         "(action state \"%s\")",
                         d->cid, a->action, execs[a->exec], fins[a->fin], a->cnt, a->of, state);
            }
        }
    }
    if (d->cfg_version[0]) {
        r->audit_reports++;
        const char *v =
            json_string_value(json_object_get(json_object_get(j, "attributes"), "version"));
        if (!v || (strcmp(v, d->cfg_version) != 0 && strcmp(v, d->cfg_sent) != 0)) {
            r->audit_missing++;
            if (!r->audit_first[0]) {
                snprintf(r->audit_first, sizeof(r->audit_first),
                         "%s: configData version %s acknowledged, the server has %s", d->cid,
                         d->cfg_version, v ? v : "none");
            }
        }
    }
    json_decref(j);
}

static void run_audit(struct fleet *f)
{
    unsigned next = 0, inflight = 0;
    f->rep->audited = true;
    while (next < f->n || inflight) {
        while (next < f->n && inflight < f->max_active) {
            struct dev *d = &f->devs[next++];
            if (!d->nacks && !d->cfg_version[0]) {
                continue;
            }
            struct xfer *x = xfer_get(f, d, XK_AUDIT);
            char path[128];
            snprintf(path, sizeof(path), "/api/v1/devices/%s", d->cid);
            if (!x || op_request(f, x, path) != 0) {
                f->rep->audit_errors++;
                if (x) {
                    xfer_put(f, x);
                }
                continue;
            }
            inflight++;
        }
        int running;
        curl_multi_perform(f->multi, &running);
        CURLcode cc;
        struct xfer *x;
        while ((x = next_done(f, &cc)) != NULL) {
            curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
            if (x->kind == XK_AUDIT) {
                audit_device(f, x->d, x, cc);
                inflight--;
            }
            xfer_put(f, x);
        }
        pump_queue(f);
        curl_multi_poll(f->multi, NULL, 0, 100, NULL);
    }
}

/* ---- the loop ------------------------------------------------------------------------- */

static void loop(struct fleet *f)
{
    const airlock_fleet_cfg_t *c = f->cfg;
    airlock_fleet_report_t *r = f->rep;
    f->live_last = f->t0;
    f->campaign_next = f->t0;
    uint64_t checkins_prev = 0;
    for (;;) {
        int64_t now = now_ns();
        /* timers due */
        unsigned fired = 0;
        while (f->nheap && f->heap[0]->wake <= now && fired < 4096) {
            struct dev *d = f->heap[0];
            int what = d->what;
            timer_cancel(d);
            d->what = what;
            on_timer(d);
            fired++;
        }
        /* transfers */
        int running;
        curl_multi_perform(f->multi, &running);
        CURLcode cc;
        struct xfer *x;
        while ((x = next_done(f, &cc)) != NULL) {
            if (x->kind == XK_CAMPAIGN) {
                curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
                campaign_answer(f, x, cc);
                xfer_put(f, x);
                continue;
            }
            on_done(f, x, cc);
        }
        pump_queue(f);
        now = now_ns();
        /* once a second: live line, campaign watch */
        if (now - f->live_last >= 1000000000ll) {
            double dt = (double)(now - f->live_last) / 1e9;
            f->checkins_rate = (double)(r->checkins - checkins_prev) / dt;
            checkins_prev = r->checkins;
            f->live_last = now;
            live(f, now);
        }
        if (c->until_campaign && !f->campaign_inflight && now >= f->campaign_next) {
            f->campaign_next = now + 1000000000ll;
            campaign_poll(f);
        }
        /* stop? */
        if (c->stop && *c->stop) {
            r->stop = AIRLOCK_FLEET_STOP_SIGNAL;
            break;
        }
        if (c->duration_s > 0 && (double)(now - f->t0) / 1e9 >= c->duration_s) {
            r->stop = AIRLOCK_FLEET_STOP_DURATION;
            break;
        }
        if (!f->settling && (f->campaign_done || (c->until_version && version_reached(f)))) {
            /*
             * The goal is reached: inject no more faults and give devices
             * still rebooting or reporting a bounded time to come to rest,
             * so the report shows where the fleet ends, not a transient.
             */
            r->stop = f->campaign_done ? AIRLOCK_FLEET_STOP_CAMPAIGN : AIRLOCK_FLEET_STOP_VERSION;
            f->settling = true;
            double off_ms = (c->offline_s > 0 ? c->offline_s : 30.0) * 1000.0;
            int64_t limit = vns(f, 2.0 * off_ms + 20000.0);
            f->settle_until = now + (limit < 5000000000ll ? 5000000000ll : limit);
        }
        if (f->settling && (now >= f->settle_until || all_idle(f, now))) {
            break;
        }
        /* sleep until the next timer or socket activity */
        int timeout = 100;
        if (f->nheap) {
            int64_t w = (f->heap[0]->wake - now_ns()) / 1000000;
            timeout = w < 0 ? 0 : w < timeout ? (int)w : timeout;
        }
        if (fired >= 4096) {
            timeout = 0;
        }
        curl_multi_poll(f->multi, NULL, 0, timeout, NULL);
    }
}

static void report(struct fleet *f)
{
    airlock_fleet_report_t *r = f->rep;
    int64_t now = now_ns();
    r->devices = f->n;
    r->nbuckets = 0;
    for (unsigned i = 0; i < f->n; i++) {
        const struct dev *d = &f->devs[i];
        int st = dev_state(d, now);
        const char *v = d->version >= 0 ? f->versions[d->version] : "?";
        unsigned k;
        for (k = 0; k < r->nbuckets; k++) {
            if (r->buckets[k].state == st && strcmp(r->buckets[k].version, v) == 0) {
                break;
            }
        }
        if (k == r->nbuckets) {
            if (k == AIRLOCK_FLEET_BUCKETS) {
                continue;
            }
            snprintf(r->buckets[k].version, sizeof(r->buckets[k].version), "%s", v);
            r->buckets[k].state = st;
            r->buckets[k].count = 0;
            r->nbuckets++;
        }
        r->buckets[k].count++;
    }
    snprintf(r->campaign_state, sizeof(r->campaign_state), "%s", f->campaign_state);
}

static void cleanup(struct fleet *f)
{
    for (unsigned i = 0; f->devs && i < f->n; i++) {
        struct dev *d = &f->devs[i];
        if (d->sim) {
            halt(d);
        }
        airlock_sim_flash_close(d->sim);
        free(d->acks);
    }
    while (f->qhead) {
        struct xfer *x = f->qhead;
        queue_remove(f, x);
        xfer_put(f, x);
    }
    while (f->freelist) {
        struct xfer *x = f->freelist;
        f->freelist = x->next;
        if (x->h) {
            curl_easy_cleanup(x->h);
        }
        free(x->body);
        free(x);
    }
    free(f->devs);
    free(f->heap);
    if (f->multi) {
        curl_multi_cleanup(f->multi);
    }
    if (f->share) {
        curl_share_cleanup(f->share);
    }
}

int airlock_fleet_run(const airlock_fleet_cfg_t *cfg, airlock_fleet_report_t *rep, char *msg,
                      size_t msg_len)
{
    struct fleet *f = calloc(1, sizeof(*f));
    if (!f) {
        return AIRLOCK_ERR_NOMEM;
    }
    memset(rep, 0, sizeof(*rep));
    f->cfg = cfg;
    f->rep = rep;
    int rc = check_cfg(f, cfg, msg, msg_len);
    if (rc) {
        free(f);
        return rc;
    }
    f->n = cfg->n;
    f->scale = cfg->time_scale > 0 ? cfg->time_scale : 1.0;
    f->tenant = cfg->tenant ? cfg->tenant : "DEFAULT";
    snprintf(f->base, sizeof(f->base), "%s", cfg->server);
    size_t bl = strlen(f->base);
    while (bl > 0 && f->base[bl - 1] == '/') {
        f->base[--bl] = '\0';
    }
    f->max_active = cfg->max_conns ? cfg->max_conns : 32;
    f->rng = cfg->seed;
    rep->seed = cfg->seed;
    f->bad_version = cfg->bad_version ? version_index(f, cfg->bad_version) : -1;
    f->hang_version = cfg->hang_version ? version_index(f, cfg->hang_version) : -1;
    f->until_version = cfg->until_version ? version_index(f, cfg->until_version) : -1;
    f->devs = calloc(f->n, sizeof(*f->devs));
    f->heap = calloc(f->n, sizeof(*f->heap));
    f->multi = curl_multi_init();
    f->share = curl_share_init();
    if (!f->devs || !f->heap || !f->multi || !f->share) {
        cleanup(f);
        free(f);
        return fail(NULL, msg, msg_len, AIRLOCK_ERR_NOMEM, "out of memory");
    }
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)f->max_active);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)f->max_active);
    curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    for (unsigned i = 0; i < f->n; i++) {
        rc = dev_init(f, &f->devs[i], i, msg, msg_len);
        if (rc) {
            f->n = i + 1;
            cleanup(f);
            free(f);
            return rc;
        }
    }
    {
        /* the engine must take this layout */
        uint32_t off, room;
        rc = airlock_boot_stage(&f->devs[0].bcfg, &off, &room);
        if (rc || room < cfg->factory_len) {
            cleanup(f);
            free(f);
            return fail(NULL, msg, msg_len, AIRLOCK_ERR_LAYOUT,
                        "engine %s on %" PRIu32 "-byte slots: %s", cfg->engine->name,
                        cfg->slot_size, rc ? airlock_strerror(rc) : "no room for the image");
        }
    }
    f->t0 = now_ns();
    /* devices power up over the first second or so (or n / 2000 s for big fleets) */
    double spread_ms = f->n > 2000 ? (double)f->n / 2.0 : 1000.0;
    for (unsigned i = 0; i < f->n; i++) {
        struct dev *d = &f->devs[i];
        d->phase = PH_OFF;
        timer_set(d, TW_POWER_ON, (int64_t)(spread_ms * 1e6 * rng_unit(&d->rng)));
    }
    loop(f);
    rep->wall_s = (double)(now_ns() - f->t0) / 1e9;
    rep->checkins_per_s = rep->wall_s > 0 ? (double)rep->checkins / rep->wall_s : 0;
    report(f);
    /* stop every device, then check what the server acknowledged */
    for (unsigned i = 0; i < f->n; i++) {
        halt(&f->devs[i]);
    }
    while (f->qhead) {
        struct xfer *x = f->qhead;
        queue_remove(f, x);
        xfer_put(f, x);
    }
    if (cfg->operator_token) {
        run_audit(f);
    }
    cleanup(f);
    free(f);
    return 0;
}
