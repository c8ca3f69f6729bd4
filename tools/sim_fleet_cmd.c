/*
 * `airlock sim fleet -n N --server URL ...`: the fleet simulator's command
 * line (sim/fleet.c does the work): options, keys and the factory image in,
 * live progress on stderr, the end report as text or --json on stdout, and
 * exit codes for a bricked device or a lost report. Never talks to the
 * server itself.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "airlock/crypto_openssl.h"
#include "exitcodes.h"
#include "fleet.h"
#include "pkey.h"
#include "sim.h"
#include "util.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fputs(
        "usage: airlock sim fleet -n N --server URL --factory IMAGE -k KEY.pem [options]\n"
        "\n"
        "N simulated devices in one process against an airlock (hawkBit DDI) server: each runs\n"
        "the real bootloader core on a small RAM flash, downloads with the core's streaming\n"
        "writer and speaks DDI with the agent's state machine; faults are injected at random.\n"
        "\n"
        "devices:\n"
        "  -n, --devices N            number of devices (required)\n"
        "  --server URL               https://host:port of the server (required)\n"
        "  --tenant T                 DDI tenant (default DEFAULT)\n"
        "  --ca FILE                  CA (PEM) the server's certificate must chain to\n"
        "  --gateway-token T | --gateway-token-file F   enrol with the fleet's gateway token\n"
        "  --device-tokens FILE       or: one TargetToken per line, device i takes line i\n"
        "  --id-prefix P              controller ids P00000, P00001, ... (default sim-)\n"
        "  --factory IMAGE            signed image flashed into every primary slot (required)\n"
        "  -k, --key PUB.pem          key the bootloader trusts (repeatable; required)\n"
        "  --engine E                 install engine, one that can revert (default swap-2n)\n"
        "  --slot-size BYTES          slot size, a multiple of 4096 (default 65536)\n"
        "  --trials N                 trial boots before an unconfirmed update is reverted (1)\n"
        "firmware behaviour (by running version):\n"
        "  --bad-version V            crashes during start-up: never confirms, gets reverted\n"
        "  --hang-version V           hangs at start-up: the watchdog resets it\n"
        "  --boot-time S              virtual seconds of boot + health checks (default 2)\n"
        "  --watchdog S               virtual seconds before a hung image is reset (default 10)\n"
        "time and network:\n"
        "  --time-scale X             X virtual seconds per real second (default 1): divides the\n"
        "                             server's poll sleep, retries and boot times\n"
        "  --max-conns N              concurrent connections = requests in flight (default 32)\n"
        "faults (probabilities 0..1), seeded by --seed S (default: from the clock; printed):\n"
        "  --drop P                   per download request: connection dropped at a random byte\n"
        "  --powercut P               per download and per install: power cut at a random\n"
        "                             flash operation (the device reboots from its flash)\n"
        "  --slow P                   per download: link capped to --slow-rate B/s (virtual; "
        "4096)\n"
        "  --offline P                per check-in: offline for up to --offline-time S (30)\n"
        "  --storm P                  per check-in: a reboot storm (2-5 reboots in a row)\n"
        "stop (any of):\n"
        "  --until-version V          every device confirmed on V, or its update to V given up\n"
        "  --until-campaign-done NAME the campaign finished, was cancelled, or is paused with no\n"
        "                             action still open (needs the operator token)\n"
        "  --duration S               after S real seconds\n"
        "report:\n"
        "  --token T | --token-file F operator token: audit every acknowledged report on the\n"
        "                             server (and watch the campaign)\n"
        "  --json                     the end report as JSON on stdout\n"
        "  -q, --quiet                no live progress\n"
        "\n"
        "Exit: 0; 20 a device is bricked; 21 an acknowledged report is missing on the server\n"
        "(or could not be checked); 2 usage; 3 I/O; 4 key; 12 layout (see docs/cli.md).\n",
        f);
}

enum {
    O_SERVER = 256,
    O_TENANT,
    O_CA,
    O_GW,
    O_GW_FILE,
    O_DEV_TOKENS,
    O_PREFIX,
    O_FACTORY,
    O_ENGINE,
    O_SLOT,
    O_TRIALS,
    O_BAD,
    O_HANG,
    O_BOOT,
    O_WDOG,
    O_SCALE,
    O_CONNS,
    O_SEED,
    O_DROP,
    O_CUT,
    O_SLOW,
    O_SLOW_RATE,
    O_OFFLINE,
    O_OFFLINE_TIME,
    O_STORM,
    O_UNTIL_VERSION,
    O_UNTIL_CAMPAIGN,
    O_DURATION,
    O_TOKEN,
    O_TOKEN_FILE,
    O_JSON,
};

static const struct option long_opts[] = {
    {"devices", required_argument, NULL, 'n'},
    {"server", required_argument, NULL, O_SERVER},
    {"tenant", required_argument, NULL, O_TENANT},
    {"ca", required_argument, NULL, O_CA},
    {"gateway-token", required_argument, NULL, O_GW},
    {"gateway-token-file", required_argument, NULL, O_GW_FILE},
    {"device-tokens", required_argument, NULL, O_DEV_TOKENS},
    {"id-prefix", required_argument, NULL, O_PREFIX},
    {"factory", required_argument, NULL, O_FACTORY},
    {"key", required_argument, NULL, 'k'},
    {"engine", required_argument, NULL, O_ENGINE},
    {"slot-size", required_argument, NULL, O_SLOT},
    {"trials", required_argument, NULL, O_TRIALS},
    {"bad-version", required_argument, NULL, O_BAD},
    {"hang-version", required_argument, NULL, O_HANG},
    {"boot-time", required_argument, NULL, O_BOOT},
    {"watchdog", required_argument, NULL, O_WDOG},
    {"time-scale", required_argument, NULL, O_SCALE},
    {"max-conns", required_argument, NULL, O_CONNS},
    {"seed", required_argument, NULL, O_SEED},
    {"drop", required_argument, NULL, O_DROP},
    {"powercut", required_argument, NULL, O_CUT},
    {"slow", required_argument, NULL, O_SLOW},
    {"slow-rate", required_argument, NULL, O_SLOW_RATE},
    {"offline", required_argument, NULL, O_OFFLINE},
    {"offline-time", required_argument, NULL, O_OFFLINE_TIME},
    {"storm", required_argument, NULL, O_STORM},
    {"until-version", required_argument, NULL, O_UNTIL_VERSION},
    {"until-campaign-done", required_argument, NULL, O_UNTIL_CAMPAIGN},
    {"duration", required_argument, NULL, O_DURATION},
    {"token", required_argument, NULL, O_TOKEN},
    {"token-file", required_argument, NULL, O_TOKEN_FILE},
    {"json", no_argument, NULL, O_JSON},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < lo || v > hi) {
        return cli_fail(EXIT_USAGE, "%s: expected a number in %g..%g, got \"%s\"", opt, lo, hi, s);
    }
    *out = v;
    return EXIT_OK_;
}

/* A token file: its first line, blanks cut. *out is malloc'd. */
static int read_token(const char *path, const char *what, char **out)
{
    uint8_t *data;
    size_t len;
    int rc = cli_read_file(path, what, &data, &len);
    if (rc != EXIT_OK_) {
        return rc;
    }
    char *s = realloc(data, len + 1);
    if (!s) {
        free(data);
        return cli_fail(EXIT_INTERNAL, "out of memory");
    }
    s[len] = '\0';
    s[strcspn(s, "\r\n")] = '\0';
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
    if (!n) {
        free(s);
        return cli_fail(EXIT_USAGE, "%s %s is empty", what, path);
    }
    *out = s;
    return EXIT_OK_;
}

/* One token per line; the array and its strings live in one malloc'd buffer (*buf). */
static int read_device_tokens(const char *path, unsigned n, char **buf, const char ***out)
{
    uint8_t *data;
    size_t len;
    int rc = cli_read_file(path, "device tokens", &data, &len);
    if (rc != EXIT_OK_) {
        return rc;
    }
    char *s = realloc(data, len + 1);
    const char **v = calloc(n, sizeof(*v));
    if (!s || !v) {
        free(s ? s : (char *)data);
        free(v);
        return cli_fail(EXIT_INTERNAL, "out of memory");
    }
    s[len] = '\0';
    unsigned k = 0;
    for (char *save = NULL, *t = strtok_r(s, "\r\n", &save); t && k < n;
         t = strtok_r(NULL, "\r\n", &save)) {
        if (*t) {
            v[k++] = t;
        }
    }
    if (k < n) {
        free(s);
        free(v);
        return cli_fail(EXIT_USAGE, "--device-tokens %s: %u token(s) for %u devices", path, k, n);
    }
    *buf = s;
    *out = v;
    return EXIT_OK_;
}

/* ---- live progress --------------------------------------------------------------- */

struct live_ctx {
    bool tty;
    bool quiet;
    bool drawn;
};

static void on_live(void *ctx, const airlock_fleet_live_t *lv)
{
    struct live_ctx *c = ctx;
    char line[600];
    size_t n = 0;
    if (c->quiet) {
        return;
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "%6.0fs ", lv->elapsed_s);
    for (unsigned i = 0; i < lv->nversions && n < sizeof(line) - 64; i++) {
        if (lv->per_version[i]) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, " %s:%u", lv->versions[i],
                                  lv->per_version[i]);
        }
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, " |");
    for (int s = 0; s < AIRLOCK_FLEET_NSTATES && n < sizeof(line) - 64; s++) {
        if (lv->per_state[s]) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %u", airlock_fleet_state_name(s),
                                  lv->per_state[s]);
        }
    }
    if (n < sizeof(line) - 160) {
        n += (size_t)snprintf(line + n, sizeof(line) - n,
                              " | dl %u  req %u  %.0f check-ins/s  cuts %" PRIu64 "  drops %" PRIu64
                              "  srv-err %" PRIu64,
                              lv->downloads, lv->requests, lv->checkins_per_s, lv->powercuts,
                              lv->drops, lv->server_errors);
    }
    if (lv->campaign_state && lv->campaign_state[0] && n < sizeof(line) - 40) {
        snprintf(line + n, sizeof(line) - n, "  campaign %s", lv->campaign_state);
    }
    if (c->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        c->drawn = true;
    } else {
        fprintf(stderr, "airlock sim fleet: %s\n", line);
    }
}

/* ---- report ------------------------------------------------------------------------ */

static json_t *report_json(const airlock_fleet_report_t *r, const airlock_fleet_cfg_t *cfg)
{
    json_t *by = json_array();
    for (unsigned i = 0; i < r->nbuckets; i++) {
        json_array_append_new(by, json_pack("{s:s, s:s, s:i}", "version", r->buckets[i].version,
                                            "state", airlock_fleet_state_name(r->buckets[i].state),
                                            "devices", (int)r->buckets[i].count));
    }
    json_t *j = json_object();
    json_object_set_new(j, "devices", json_integer(r->devices));
    json_object_set_new(j, "seed", json_integer((json_int_t)r->seed));
    json_object_set_new(j, "stopped_by", json_string(airlock_fleet_stop_name(r->stop)));
    json_object_set_new(j, "wall_s", json_real(r->wall_s));
    json_object_set_new(j, "time_scale", json_real(cfg->time_scale > 0 ? cfg->time_scale : 1));
    json_object_set_new(j, "by_version_state", by);
    json_object_set_new(j, "bricked", json_integer(r->bricked));
    if (r->bricked) {
        json_object_set_new(j, "bricked_first", json_string(r->bricked_first));
    }
#define U(name) json_object_set_new(j, #name, json_integer((json_int_t)r->name))
    U(boots);
    U(installs);
    U(reverts);
    U(confirms);
    U(crashes);
    U(watchdog_resets);
    U(verify_failures);
    U(reports_success);
    U(reports_failed);
    U(downloads_ok);
    U(bytes_downloaded);
    U(bytes_min);
    U(resumes);
    U(restarts);
    U(powercuts);
    U(powercuts_download);
    U(powercuts_swap);
    U(powercuts_other);
    U(drops);
    U(slow_links);
    U(offline_spells);
    U(storms);
    U(requests);
    U(checkins);
    U(http_5xx);
    U(http_429);
    U(http_4xx);
    U(conn_failures);
#undef U
    json_object_set_new(j, "checkins_per_s", json_real(r->checkins_per_s));
    if (r->conn_first[0]) {
        json_object_set_new(j, "conn_first", json_string(r->conn_first));
    }
    json_t *fl = json_array();
    for (unsigned i = 0; i < r->nfailures; i++) {
        json_array_append_new(fl, json_string(r->failures[i]));
    }
    json_object_set_new(j, "failures_first", fl);
    if (r->campaign_state[0]) {
        json_object_set_new(j, "campaign_state", json_string(r->campaign_state));
    }
    json_t *a = json_object();
    json_object_set_new(a, "done", json_boolean(r->audited));
    json_object_set_new(a, "reports", json_integer((json_int_t)r->audit_reports));
    json_object_set_new(a, "missing", json_integer((json_int_t)r->audit_missing));
    json_object_set_new(a, "errors", json_integer((json_int_t)r->audit_errors));
    if (r->audit_first[0]) {
        json_object_set_new(a, "first", json_string(r->audit_first));
    }
    json_object_set_new(j, "audit", a);
    return j;
}

static void report_text(const airlock_fleet_report_t *r)
{
    printf("fleet: %u devices, %.1f s, stopped by %s, seed %" PRIu64 "\n", r->devices, r->wall_s,
           airlock_fleet_stop_name(r->stop), r->seed);
    printf("  %-16s %-10s %8s\n", "version", "state", "devices");
    for (unsigned i = 0; i < r->nbuckets; i++) {
        printf("  %-16s %-10s %8u\n", r->buckets[i].version,
               airlock_fleet_state_name(r->buckets[i].state), r->buckets[i].count);
    }
    printf("  bricked: %u%s%s\n", r->bricked, r->bricked ? " - first: " : "",
           r->bricked ? r->bricked_first : "");
    printf("  boots %" PRIu64 ", installs %" PRIu64 ", confirmed %" PRIu64 ", reverted %" PRIu64
           ", crashes %" PRIu64 ", watchdog resets %" PRIu64 "\n",
           r->boots, r->installs, r->confirms, r->reverts, r->crashes, r->watchdog_resets);
    printf("  reports acknowledged: %" PRIu64 " success, %" PRIu64 " failure\n", r->reports_success,
           r->reports_failed);
    for (unsigned i = 0; i < r->nfailures; i++) {
        printf("    failure: %s\n", r->failures[i]);
    }
    printf("  verification failures: %" PRIu64 "\n", r->verify_failures);
    double ratio = r->bytes_min ? (double)r->bytes_downloaded / (double)r->bytes_min : 0;
    printf("  downloads: %" PRIu64 " complete, %" PRIu64 " bytes received, minimum %" PRIu64
           " (x%.3f), %" PRIu64 " resumes, %" PRIu64 " restarts\n",
           r->downloads_ok, r->bytes_downloaded, r->bytes_min, ratio, r->resumes, r->restarts);
    printf("  faults: %" PRIu64 " power cuts (%" PRIu64 " download, %" PRIu64 " swap, %" PRIu64
           " other), %" PRIu64 " drops, %" PRIu64 " slow links, %" PRIu64
           " offline spells, %" PRIu64 " reboot storms\n",
           r->powercuts, r->powercuts_download, r->powercuts_swap, r->powercuts_other, r->drops,
           r->slow_links, r->offline_spells, r->storms);
    printf("  server: %" PRIu64 " requests, %" PRIu64 " check-ins (%.0f/s), %" PRIu64
           " 5xx, %" PRIu64 " 429, %" PRIu64 " other 4xx, %" PRIu64 " connection failures\n",
           r->requests, r->checkins, r->checkins_per_s, r->http_5xx, r->http_429, r->http_4xx,
           r->conn_failures);
    if (r->conn_first[0]) {
        printf("    first connection failure: %s\n", r->conn_first);
    }
    if (r->campaign_state[0]) {
        printf("  campaign: %s\n", r->campaign_state);
    }
    if (r->audited) {
        printf("  audit: %" PRIu64 " acknowledged reports checked, %" PRIu64 " missing, %" PRIu64
               " devices not checkable%s%s\n",
               r->audit_reports, r->audit_missing, r->audit_errors,
               r->audit_first[0] ? " - first: " : "", r->audit_first);
    } else {
        printf("  audit: not done (no operator token)\n");
    }
}

/* ---- main ------------------------------------------------------------------------- */

int sim_fleet_main(int argc, char **argv)
{
    airlock_fleet_cfg_t cfg;
    cli_keyring_t ring;
    memset(&cfg, 0, sizeof(cfg));
    memset(&ring, 0, sizeof(ring));
    cli_set_cmd("sim fleet");
    const char *factory = NULL, *engine = "swap-2n", *gw_file = NULL, *tok_file = NULL;
    const char *dev_tokens = NULL;
    char *gw = NULL, *op = NULL, *tokbuf = NULL;
    const char **toks = NULL;
    uint8_t *image = NULL;
    bool json = false, quiet = false, have_seed = false;
    uint64_t u;
    uint32_t u32;
    int rc = EXIT_OK_, c;
    cfg.slot_size = 65536;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:k:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            rc = cli_parse_u32_opt("-n", optarg, 1000000, &u32);
            cfg.n = u32;
            break;
        case O_SERVER:
            cfg.server = optarg;
            break;
        case O_TENANT:
            cfg.tenant = optarg;
            break;
        case O_CA:
            cfg.ca_file = optarg;
            break;
        case O_GW:
            free(gw);
            gw = strdup(optarg);
            break;
        case O_GW_FILE:
            gw_file = optarg;
            break;
        case O_DEV_TOKENS:
            dev_tokens = optarg;
            break;
        case O_PREFIX:
            cfg.id_prefix = optarg;
            break;
        case O_FACTORY:
            factory = optarg;
            break;
        case 'k':
            rc = cli_keyring_add(&ring, optarg);
            break;
        case O_ENGINE:
            engine = optarg;
            break;
        case O_SLOT:
            rc = cli_parse_u32_opt("--slot-size", optarg, 64u << 20, &cfg.slot_size);
            break;
        case O_TRIALS:
            rc = cli_parse_u32_opt("--trials", optarg, 64, &cfg.max_trials);
            break;
        case O_BAD:
            cfg.bad_version = optarg;
            break;
        case O_HANG:
            cfg.hang_version = optarg;
            break;
        case O_BOOT:
            rc = parse_double("--boot-time", optarg, 0, 3600, &cfg.boot_s);
            break;
        case O_WDOG:
            rc = parse_double("--watchdog", optarg, 0, 3600, &cfg.watchdog_s);
            break;
        case O_SCALE:
            rc = parse_double("--time-scale", optarg, 0.001, 10000, &cfg.time_scale);
            break;
        case O_CONNS:
            rc = cli_parse_u32_opt("--max-conns", optarg, 4096, &u32);
            cfg.max_conns = u32;
            break;
        case O_SEED:
            if (!cli_parse_uint(optarg, &u)) {
                rc = cli_fail(EXIT_USAGE, "--seed: expected an unsigned integer");
            }
            cfg.seed = u;
            have_seed = true;
            break;
        case O_DROP:
            rc = parse_double("--drop", optarg, 0, 1, &cfg.drop);
            break;
        case O_CUT:
            rc = parse_double("--powercut", optarg, 0, 1, &cfg.powercut);
            break;
        case O_SLOW:
            rc = parse_double("--slow", optarg, 0, 1, &cfg.slow);
            break;
        case O_SLOW_RATE:
            rc = cli_parse_u32_opt("--slow-rate", optarg, UINT32_MAX, &cfg.slow_bps);
            break;
        case O_OFFLINE:
            rc = parse_double("--offline", optarg, 0, 1, &cfg.offline);
            break;
        case O_OFFLINE_TIME:
            rc = parse_double("--offline-time", optarg, 0, 86400, &cfg.offline_s);
            break;
        case O_STORM:
            rc = parse_double("--storm", optarg, 0, 1, &cfg.storm);
            break;
        case O_UNTIL_VERSION:
            cfg.until_version = optarg;
            break;
        case O_UNTIL_CAMPAIGN:
            cfg.until_campaign = optarg;
            break;
        case O_DURATION:
            rc = parse_double("--duration", optarg, 0, 1e7, &cfg.duration_s);
            break;
        case O_TOKEN:
            free(op);
            op = strdup(optarg);
            break;
        case O_TOKEN_FILE:
            tok_file = optarg;
            break;
        case O_JSON:
            json = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            cli_keyring_free(&ring);
            return EXIT_OK_;
        default:
            rc = EXIT_USAGE;
            usage(stderr);
            break;
        }
        if (rc != EXIT_OK_) {
            goto out;
        }
    }
    if (optind < argc) {
        rc = cli_fail(EXIT_USAGE, "unexpected argument \"%s\" (see airlock sim fleet --help)",
                      argv[optind]);
        goto out;
    }
    if (!cfg.n || !cfg.server || !factory || !ring.n) {
        rc = cli_fail(EXIT_USAGE, "%s is required (see airlock sim fleet --help)",
                      !cfg.n        ? "-n"
                      : !cfg.server ? "--server"
                      : !factory    ? "--factory"
                                    : "-k");
        goto out;
    }
    if (gw_file && (rc = read_token(gw_file, "gateway token", &gw)) != EXIT_OK_) {
        goto out;
    }
    if (tok_file && (rc = read_token(tok_file, "operator token", &op)) != EXIT_OK_) {
        goto out;
    }
    if (dev_tokens && (rc = read_device_tokens(dev_tokens, cfg.n, &tokbuf, &toks)) != EXIT_OK_) {
        goto out;
    }
    if (!gw && !toks) {
        rc = cli_fail(EXIT_USAGE, "give --gateway-token(-file) or --device-tokens");
        goto out;
    }
    if (cfg.until_campaign && !op) {
        rc = cli_fail(EXIT_USAGE, "--until-campaign-done needs the operator token (--token-file)");
        goto out;
    }
    if (!cfg.until_version && !cfg.until_campaign && cfg.duration_s <= 0) {
        rc = cli_fail(EXIT_USAGE,
                      "give a stop: --until-version, --until-campaign-done or --duration");
        goto out;
    }
    cfg.engine = airlock_engine_find(engine);
    if (!cfg.engine) {
        rc = cli_fail(EXIT_USAGE, "--engine: no engine \"%s\"", engine);
        goto out;
    }
    size_t image_len;
    if ((rc = cli_read_file(factory, "factory image", &image, &image_len)) != EXIT_OK_) {
        goto out;
    }
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        cfg.seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
        cfg.seed %= 1000000000u;
    }
    fprintf(stderr, "airlock sim fleet: %u devices, seed %" PRIu64 "\n", cfg.n, cfg.seed);
    cfg.factory = image;
    cfg.factory_len = image_len;
    cfg.crypto = &airlock_crypto_openssl;
    cfg.keys = ring.pub;
    cfg.nkeys = ring.n;
    cfg.gateway_token = toks ? NULL : gw;
    cfg.device_tokens = toks;
    cfg.operator_token = op;
    cfg.stop = &stop_flag;
    struct live_ctx lc = {isatty(STDERR_FILENO) == 1, quiet, false};
    cfg.live = on_live;
    cfg.ctx = &lc;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = cli_fail(EXIT_INTERNAL, "libcurl initialisation failed");
        goto out;
    }
    airlock_fleet_report_t *rep = calloc(1, sizeof(*rep));
    char msg[256] = "";
    int err = rep ? airlock_fleet_run(&cfg, rep, msg, sizeof(msg)) : AIRLOCK_ERR_NOMEM;
    curl_global_cleanup();
    if (lc.drawn) {
        fputc('\n', stderr);
    }
    if (err) {
        rc = cli_fail(err == AIRLOCK_ERR_LAYOUT  ? EXIT_LAYOUT
                      : err == AIRLOCK_ERR_INVAL ? EXIT_USAGE
                                                 : EXIT_INTERNAL,
                      "%s", msg[0] ? msg : airlock_strerror(err));
        free(rep);
        goto out;
    }
    if (json) {
        json_t *j = report_json(rep, &cfg);
        json_dumpf(j, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(j);
    } else {
        report_text(rep);
    }
    if (rep->bricked) {
        rc = cli_fail(EXIT_FLEET_BRICKED, "%u device(s) bricked: %s", rep->bricked,
                      rep->bricked_first);
    } else if (rep->audit_missing || rep->audit_errors) {
        rc = cli_fail(EXIT_FLEET_LOST_REPORT,
                      "%" PRIu64 " acknowledged report(s) missing on the server, %" PRIu64
                      " device(s) not checkable: %s",
                      rep->audit_missing, rep->audit_errors, rep->audit_first);
    }
    free(rep);
out:
    free(image);
    free(gw);
    free(op);
    free(tokbuf);
    free(toks);
    cli_keyring_free(&ring);
    return rc;
}
