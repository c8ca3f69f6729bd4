/*
 * The demo firmware: a host program the device simulator starts as the
 * payload of the image the bootloader chose (docs/simulator.md). On boot it
 * says what it runs, checks its health (the check-in with the server is one
 * check), confirms a trial image only once they pass, then runs the DDI
 * agent: polls, downloads an update into the secondary, sets it pending and
 * asks for a reboot; after the next boot the agent reports the outcome.
 * Built in variants from this one source (FW_VARIANT): good, crash (aborts
 * during start-up), hang (stops feeding the watchdog), noconn (its check-in
 * never reaches the server). It never writes the primary slot except to
 * confirm, and all its state is on the device's flash.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "airlock/crypto_openssl.h"
#include "airlock/ddi.h"
#include "airlock/ota.h"
#include "airlock/settings.h"
#include "bootrom.h"
#include "devflash.h"
#include "devproto.h"
#include "firmware.h"
#include "util.h"

#ifndef FW_VARIANT
#define FW_VARIANT FW_GOOD
#endif

fw_t fw;

static const char *const variant_names[] = {"good", "crash", "hang", "noconn"};

/* ---- output, watchdog, time ---------------------------------------------------- */

void fw_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

void fw_event(const char *fmt, ...)
{
    va_list ap;
    fputs(DEV_EVENT_PREFIX, stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

void fw_feed(void)
{
    if (fw.wd_fd >= 0 && !fw.hung) {
        ssize_t n = write(fw.wd_fd, "w", 1);
        (void)n;
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

bool fw_sleep_ms(uint32_t ms)
{
    double end = now_s() + ms / 1000.0;
    while (!fw.stop) {
        double left = end - now_s();
        if (left <= 0) {
            return true;
        }
        fw_feed();
        struct timespec ts = {0, (long)((left < 0.1 ? left : 0.1) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return false;
}

uint32_t fw_scaled(uint32_t ms)
{
    double v = ms / fw.time_scale;
    return v < 1 ? 1u : (uint32_t)v;
}

static void feed_hook(void *ctx)
{
    (void)ctx;
    fw_feed();
}

static void on_term(int sig)
{
    (void)sig;
    fw.stop = 1;
}

static void on_cut(void *ctx)
{
    (void)ctx;
    fw_event("powercut op=%llu", (unsigned long long)fw.cut_at);
    fflush(stdout);
    _exit(DEV_EXIT_POWERCUT);
}

/* ---- start-up ------------------------------------------------------------------- */

static int env_u64(const char *name, uint64_t *out)
{
    const char *s = getenv(name);
    char *end;
    if (!s || !*s) {
        return 0;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) {
        fw_say("firmware: %s=%s is not a number", name, s);
        exit(DEV_EXIT_CONFIG);
    }
    *out = v;
    return 1;
}

static char *setting_str(const char *key, bool required)
{
    size_t len = 0;
    int rc = airlock_settings_get(&fw.st, key, NULL, 0, &len);
    if (rc != 1) {
        if (required) {
            fw_say("firmware: setting '%s' missing: device not provisioned "
                   "(airlock sim device --server ...)",
                   key);
            exit(DEV_EXIT_CONFIG);
        }
        return NULL;
    }
    char *s = malloc(len + 1);
    if (!s || airlock_settings_get(&fw.st, key, s, len, &len) != 1) {
        fw_say("firmware: cannot read setting '%s'", key);
        exit(DEV_EXIT_CONFIG);
    }
    s[len] = '\0';
    return s;
}

static void start(void)
{
    const char *flash = getenv(DEV_ENV_FLASH);
    const char *layout = getenv(DEV_ENV_LAYOUT);
    uint64_t v;

    setvbuf(stdout, NULL, _IOLBF, 0);
    fw.variant = FW_VARIANT;
    fw.variant_name = variant_names[fw.variant];
    fw.wd_fd = -1;
    fw.time_scale = 1.0;
    fw.cut_at = DEVFLASH_NO_CUT;
    if (env_u64(DEV_ENV_WATCHDOG_FD, &v)) {
        fw.wd_fd = (int)v;
    }
    if (env_u64(DEV_ENV_BOOT, &v)) {
        fw.boot = (unsigned)v;
    }
    const char *ts = getenv(DEV_ENV_TIME_SCALE);
    if (ts && *ts) {
        fw.time_scale = strtod(ts, NULL);
        if (!(fw.time_scale >= 1.0)) {
            fw.time_scale = 1.0;
        }
    }
    if (!flash || !layout) {
        fw_say("firmware: %s and %s must be set (run me with airlock sim device)", DEV_ENV_FLASH,
               DEV_ENV_LAYOUT);
        exit(DEV_EXIT_CONFIG);
    }
    cli_set_cmd("firmware");
    if (devflash_open(layout, flash, &fw.dev) != EXIT_OK_) {
        exit(DEV_EXIT_CONFIG);
    }
    uint64_t seed = 1;
    env_u64(DEV_ENV_SEED, &seed);
    if (env_u64(DEV_ENV_CUT_AT, &v)) {
        fw.cut_at = v;
        fw.dev->on_cut = on_cut;
        devflash_cut_at(fw.dev, v, seed);
    }
    int rc = bootrom_read(&fw.dev->lf.layout, &fw.rom);
    if (rc == 0) {
        rc = bootrom_cfg(&fw.rom, &fw.dev->lf.layout, &airlock_crypto_openssl, fw.work,
                         sizeof(fw.work), &fw.cfg);
    }
    if (rc) {
        fw_say("firmware: no bootloader configuration on the flash: %s", airlock_strerror(rc));
        exit(DEV_EXIT_CONFIG);
    }
    fw.cfg.watchdog_feed = feed_hook;
    if (!fw.dev->lf.settings.flash) {
        fw_say("firmware: layout %s has no settings area", fw.dev->lf.source);
        exit(DEV_EXIT_CONFIG);
    }
    if ((rc = airlock_settings_open(&fw.st, &fw.dev->lf.settings)) != 0) {
        fw_say("firmware: settings unreadable: %s", airlock_strerror(rc));
        exit(DEV_EXIT_CONFIG);
    }
    fw.server = setting_str(DEV_KEY_SERVER, true);
    fw.tenant = setting_str(DEV_KEY_TENANT, true);
    fw.controller = setting_str(DEV_KEY_CONTROLLER, true);
    fw.auth = setting_str(DEV_KEY_AUTH, true);
    fw.ca_pem = setting_str(DEV_KEY_CA, false);
    if (fw.ca_pem) {
        /* libcurl reads a CA file: give it one in memory */
        int fd = memfd_create("airlock-ca", 0);
        size_t n = strlen(fw.ca_pem);
        if (fd < 0 || write(fd, fw.ca_pem, n) != (ssize_t)n) {
            fw_say("firmware: cannot stage the CA: %s", strerror(errno));
            exit(DEV_EXIT_CONFIG);
        }
        snprintf(fw.ca_file, sizeof(fw.ca_file), "/proc/self/fd/%d", fd);
    }
    /*
     * noconn: the firmware that "loses connectivity" talks to a port where
     * nothing listens (port 1 of the server's host), so its check-in fails
     * while the flash, the watchdog and everything else work.
     */
    snprintf(fw.url, sizeof(fw.url), "%s", fw.server);
    if (fw.variant == FW_NOCONN) {
        char *host = strstr(fw.url, "://");
        host = host ? host + 3 : fw.url;
        char *end = host + strcspn(host, "/");
        char *colon = memchr(host, ':', (size_t)(end - host));
        if (host[0] == '[') { /* [v6]:port */
            char *rb = strchr(host, ']');
            colon = rb ? (rb[1] == ':' ? rb + 1 : NULL) : NULL;
            end = rb ? rb + 1 + strcspn(rb + 1, "/") : end;
        }
        char tail[sizeof(fw.url)];
        snprintf(tail, sizeof(tail), "%s", end);
        snprintf(colon ? colon : end, sizeof(fw.url) - (size_t)((colon ? colon : end) - fw.url),
                 ":1%s", tail);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- health ---------------------------------------------------------------------- */

static int xfer_cb(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ctx, (void)a, (void)b, (void)c, (void)d;
    fw_feed();
    return fw.stop ? 1 : 0;
}

/*
 * The check-in health check: GET the device's DDI base resource. Passes on
 * 200: the network, TLS with the provisioned CA, and the device's
 * credentials all work. Returns the HTTP status, 0 when nothing answered.
 */
static long checkin(char *err, size_t errlen)
{
    char url[1024], auth[1100];
    long status = 0;
    snprintf(url, sizeof(url), "%s/%s/controller/v1/%s", fw.url, fw.tenant, fw.controller);
    snprintf(auth, sizeof(auth), "Authorization: %s", fw.auth);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Accept: application/hal+json");
    FILE *sink = fopen("/dev/null", "w");
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_cb);
    if (fw.ca_file[0]) {
        curl_easy_setopt(c, CURLOPT_CAINFO, fw.ca_file);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        snprintf(err, errlen, "HTTP %ld", status);
    } else {
        snprintf(err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
    }
    if (sink) {
        fclose(sink);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* The health checks: flash and settings (read at start), then the check-in. */
static bool healthy(void)
{
    char why[CURL_ERROR_SIZE + 32];
    for (int attempt = 1; attempt <= 3 && !fw.stop; attempt++) {
        long st = checkin(why, sizeof(why));
        if (st == 200) {
            fw_say("health: check-in with %s ok", fw.server);
            return true;
        }
        fw_say("health: check-in attempt %d failed: %s", attempt, why);
        if (st == 401 || st == 403 || attempt == 3) {
            break;
        }
        fw_sleep_ms(fw_scaled(2000));
    }
    snprintf(fw.health_msg, sizeof(fw.health_msg), "check-in failed: %s", why);
    return false;
}

static int run(void)
{
    start();
    airlock_ota_status_t st;
    int rc = airlock_ota_state(&fw.cfg, &st);
    if (rc) {
        fw_say("firmware: cannot read the slots' state: %s", airlock_strerror(rc));
        return DEV_EXIT_CONFIG;
    }
    fw.status = st;
    airlock_ddi_version_str(&st.running_version, fw.version, sizeof(fw.version));
    const char *state = st.on_trial ? "pending-test" : st.confirmed ? "confirmed" : "unconfirmed";
    char rev[64] = "", rv[32] = "?";
    if (st.reverted) {
        if (st.reverted_valid) {
            airlock_ddi_version_str(&st.reverted_version, rv, sizeof(rv));
        }
        snprintf(rev, sizeof(rev), ", reverted from %s", rv);
    }
    fw_say("firmware %s (%s) on %s, boot %u: %s%s", fw.version, fw.variant_name, fw.controller,
           fw.boot, state, rev);
    fw_event("start version=%s state=%s variant=%s%s%s", fw.version, state, fw.variant_name,
             st.reverted ? " reverted_from=" : "", st.reverted ? rv : "");
    fw_feed();

    if (fw.variant == FW_CRASH) {
        fw_say("firmware: start-up failed (crash variant): abort()");
        abort();
    }
    if (fw.variant == FW_HANG) {
        fw_say("firmware: start-up hangs (hang variant): the watchdog is no longer fed");
        fw.hung = true;
        for (;;) {
            pause();
        }
    }

    bool ok = healthy();
    if (fw.stop) {
        return DEV_EXIT_HALT;
    }
    if (st.on_trial || !st.confirmed) {
        if (!ok) {
            fw_say("firmware: health checks failed (%s): %s stays unconfirmed; rebooting",
                   fw.health_msg, fw.version);
            fw_event("unhealthy version=%s", fw.version);
            return DEV_EXIT_REBOOT;
        }
        rc = airlock_ota_confirm(&fw.cfg);
        if (rc) {
            fw_say("firmware: confirm failed: %s", airlock_strerror(rc));
            return DEV_EXIT_REBOOT;
        }
        fw.status.confirmed = true;
        fw.status.on_trial = false;
        fw_say("firmware: health checks passed: %s confirmed", fw.version);
        fw_event("confirmed version=%s", fw.version);
    } else if (!ok) {
        fw_say("firmware: %s; running on, the agent keeps trying", fw.health_msg);
    }
    return fw_agent();
}

int main(void)
{
    int code = run();
    /*
     * A reboot runs no destructors: leave at once (this also keeps a
     * sanitizer build's leak report, about buffers a reset frees anyway,
     * from turning the reboot code into a crash).
     */
    fflush(stdout);
    _exit(code);
}
