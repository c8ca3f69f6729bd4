/*
 * The demo firmware's update agent: the DDI state machine (airlock/ddi.h)
 * driven over HTTPS by airlock_ddi_http_run, its persist record kept in the
 * settings store, its sleeps compressed by the time scale and feeding the
 * watchdog. Tells the simulator when it is idle (nothing in hand, the last
 * request answered) and what it downloaded. Never confirms (firmware.c
 * does, after the health checks) and never reboots by itself: it returns
 * DEV_EXIT_REBOOT once an update is pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/ddi.h"
#include "airlock/ddi_http.h"
#include "airlock/download.h"
#include "devproto.h"
#include "firmware.h"

static airlock_ddi_t ddi;
static airlock_ddi_http_stats_t stats;
static bool idle_said;         /* "idle" already reported since the last activity */
static uint64_t said_received; /* stats already reported to the simulator */
static unsigned said_resumes;
static uint64_t dl_ops_from; /* the flash operation number when the last download began */

static int store(void *ctx, const airlock_ddi_persist_t *p)
{
    (void)ctx;
    uint8_t rec[AIRLOCK_DDI_PERSIST_LEN];
    airlock_ddi_persist_encode(p, rec);
    int rc = airlock_settings_set(&fw.st, DEV_KEY_DDI, rec, sizeof(rec));
    if (rc) {
        fw_say("agent: cannot store the DDI record: %s", airlock_strerror(rc));
    }
    return rc;
}

static void report_downloads(void)
{
    if (stats.received != said_received || stats.resumes != said_resumes) {
        /* ops_from/ops_to: which of this boot's flash operations the download
         * spanned, so a test can aim a power cut into one */
        fw_event("download bytes=%llu resumes=%u ops_from=%llu ops_to=%llu",
                 (unsigned long long)(stats.received - said_received),
                 stats.resumes - said_resumes, (unsigned long long)dl_ops_from,
                 (unsigned long long)fw.dev->ops);
        said_received = stats.received;
        said_resumes = stats.resumes;
    }
}

static int sleep_hook(void *ctx, uint32_t ms)
{
    (void)ctx;
    report_downloads();
    const airlock_ddi_persist_t *p = airlock_ddi_persist(&ddi);
    bool last_ok = stats.last_status >= 200 && stats.last_status <= 299;
    bool idle = p->phase == AIRLOCK_DDI_PHASE_NONE && last_ok && ms >= airlock_ddi_poll_ms(&ddi);
    if (idle && !idle_said) {
        fw_event("idle version=%s", fw.version);
        idle_said = true;
    }
    return fw_sleep_ms(fw_scaled(ms)) ? 0 : 1;
}

static int stop_hook(void *ctx)
{
    (void)ctx;
    fw_feed();
    return fw.stop ? 1 : 0;
}

static void log_hook(void *ctx, const char *line)
{
    (void)ctx;
    /* A finished download is reported at once: a power cut before the next
     * sleep (while setting it pending, say) must not hide its bytes. */
    report_downloads();
    if (strncmp(line, "ddi: downloading action ", 24) == 0) {
        dl_ops_from = fw.dev->ops;
    }
    const char *arrow = strstr(line, " -> ");
    if (arrow) {
        int status = atoi(arrow + 4);
        /*
         * Answered polls, feedback and configData are routine: the log keeps
         * what changes (deployments, cancels, downloads, failures).
         */
        if (status >= 200 && status <= 299 &&
            ((strncmp(line, "ddi: GET ", 9) == 0 && !strstr(line, "/deploymentBase/") &&
              !strstr(line, "/cancelAction/")) ||
             strncmp(line, "ddi: POST ", 10) == 0 || strncmp(line, "ddi: PUT ", 9) == 0)) {
            return;
        }
    }
    idle_said = false; /* what is worth a line is activity: say "idle" again afterwards */
    fw_say("agent: %s", line);
}

int fw_agent(void)
{
    airlock_ddi_persist_t persist;
    airlock_ddi_boot_t boot;
    uint8_t rec[AIRLOCK_DDI_PERSIST_LEN];
    size_t len = 0;

    memset(&persist, 0, sizeof(persist));
    if (airlock_settings_get(&fw.st, DEV_KEY_DDI, rec, sizeof(rec), &len) == 1 &&
        len == sizeof(rec) && airlock_ddi_persist_decode(rec, &persist) != 0) {
        fw_say("agent: stored DDI record unreadable: starting afresh");
        memset(&persist, 0, sizeof(persist));
    }
    int rc = airlock_ddi_boot_from_ota(&fw.cfg, &boot);
    if (rc) {
        fw_say("agent: cannot read the boot facts: %s", airlock_strerror(rc));
        return DEV_EXIT_REBOOT;
    }
    airlock_ddi_cfg_t cfg = {
        .base_url = fw.url,
        .tenant = fw.tenant,
        .controller_id = fw.controller,
        .auth = fw.auth,
        .retry_ms = 1000,
        .default_poll_ms = 60000,
    };
    if ((rc = airlock_ddi_init(&ddi, &cfg, &persist, &boot)) != 0) {
        fw_say("agent: bad DDI configuration: %s", airlock_ddi_error(&ddi));
        return DEV_EXIT_CONFIG;
    }
    if (persist.phase != AIRLOCK_DDI_PHASE_NONE) {
        fw_say("agent: action %llu (%s) in hand: %s", (unsigned long long)persist.action_id,
               persist.version,
               persist.phase == AIRLOCK_DDI_PHASE_INSTALLING ? "reporting its outcome"
                                                             : "continuing its download");
    }
    airlock_download_global_init();
    airlock_ddi_http_opts_t opts = {
        .ca_file = fw.ca_file[0] ? fw.ca_file : NULL,
        .connect_timeout_ms = 2000,
        .request_timeout_ms = 15000,
        .progress_timeout_ms = 2000,
        .low_speed_time_s = 10,
        .dl_backoff_ms = 200,
        .dl_backoff_max_ms = 2000,
    };
    airlock_ddi_http_hooks_t hooks = {
        .store = store,
        .sleep = sleep_hook,
        .stop = stop_hook,
        .log = log_hook,
        .stats = &stats,
    };
    for (;;) {
        rc = airlock_ddi_http_run(&ddi, &fw.cfg, &opts, &hooks);
        report_downloads();
        if (rc == AIRLOCK_DDI_HTTP_INSTALL) {
            const airlock_ddi_persist_t *p = airlock_ddi_persist(&ddi);
            fw_say("agent: %s is pending: rebooting to install it", p->version);
            fw_event("install version=%s action=%llu", p->version,
                     (unsigned long long)p->action_id);
            return DEV_EXIT_REBOOT;
        }
        if (rc == AIRLOCK_DDI_HTTP_STOPPED) {
            return DEV_EXIT_HALT;
        }
        if (rc < 0) {
            fw_say("agent: %s: rebooting", airlock_strerror(rc));
            return DEV_EXIT_REBOOT;
        }
    }
}
