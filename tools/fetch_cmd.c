/*
 * `airlock fetch URL --flash DEV.img --layout L`: download an update over
 * HTTPS into the secondary slot of a simulated device's flash file
 * (agent/download.c on tools/devflash.c), exactly as the device agent
 * would: early rejection, resume after a kill (the progress records are in
 * the flash file), verification before anything is requested.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "airlock/crypto_mbedtls.h"
#include "airlock/crypto_openssl.h"
#include "airlock/download.h"
#include "airlock/ota.h"
#include "cli.h"
#include "cli_json.h"
#include "devflash.h"
#include "exitcodes.h"
#include "pkey.h"
#include "util.h"

enum { REQ_NONE, REQ_TRIAL, REQ_PERMANENT };

struct fetch_opts {
    const char *url;
    const char *flash;
    const char *layout;
    const char *engine;
    const char *ca_file;
    const char *ca_path;
    const char *ca_pin;
    const char *backend;
    uint8_t artifact_id[64];
    size_t artifact_id_len;
    cli_keyring_t ring;
    bool allow_unsigned;
    bool allow_http;
    bool json;
    bool quiet;
    int request;
    uint32_t attempts;
    uint32_t connect_timeout_s;
    uint32_t stall_timeout_s;
};

/* ---- progress bar ------------------------------------------------------------- */

struct bar {
    bool tty;
    bool quiet;
    int last_decile;
    struct timespec t0;
    bool drawn;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int is_cancelled(void *ctx)
{
    (void)ctx;
    return stop_signal != 0;
}

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_progress(void *ctx, const airlock_dl_progress_t *p)
{
    struct bar *b = ctx;
    if (b->quiet) {
        return;
    }
    double secs = since(&b->t0);
    double rate = secs > 0 ? (double)(p->done - p->resumed_from) / secs : 0;
    if (p->total == 0) {
        if (b->tty) {
            fprintf(stderr, "\r  %10llu bytes  %7.2f MiB/s", (unsigned long long)p->done,
                    rate / 1048576.0);
            b->drawn = true;
        }
        return;
    }
    unsigned pct = (unsigned)(p->done * 100u / p->total);
    if (b->tty) {
        char cells[31];
        unsigned fill = pct * 30u / 100u;
        for (unsigned i = 0; i < 30u; i++) {
            cells[i] = i < fill ? '#' : '.';
        }
        cells[30] = '\0';
        fprintf(stderr, "\r  [%s] %3u%%  %llu/%llu bytes  %7.2f MiB/s", cells, pct,
                (unsigned long long)p->done, (unsigned long long)p->total, rate / 1048576.0);
        b->drawn = true;
    } else if ((int)(pct / 10u) > b->last_decile) {
        b->last_decile = (int)(pct / 10u);
        fprintf(stderr, "airlock fetch: %3u%%  %llu/%llu bytes\n", pct,
                (unsigned long long)p->done, (unsigned long long)p->total);
    }
}

static void on_log(void *ctx, const char *msg)
{
    struct bar *b = ctx;
    if (b->quiet) {
        return;
    }
    if (b->drawn) {
        fputc('\n', stderr);
        b->drawn = false;
    }
    fprintf(stderr, "airlock fetch: %s\n", msg);
}

/* ---- options ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: airlock fetch URL --flash DEV.img --layout FILE|NAME [-k KEY]...\n"
            "                     [--engine E] [--ca FILE] [--ca-path DIR] [--ca-pin HEX]\n"
            "                     [--artifact-id HEX] [--pending | --permanent] [--json]\n"
            "\n"
            "Download an update over HTTPS into the secondary slot of a simulated device\n"
            "(the flash file DEV.img, created erased if missing; a layout's second flash\n"
            "lives in DEV.img.NAME). Bad images are refused as soon as their bytes show it;\n"
            "the download resumes where it stopped if it is interrupted (kill it and run\n"
            "the same command again); the image is verified before anything is requested.\n"
            "\n"
            "  -f, --flash FILE         the device's flash file\n"
            "  -l, --layout FILE|NAME   flash layout (a file, or a built-in: airlock layout list)\n"
            "  -e, --engine E           install engine the bootloader uses (default swap-scratch\n"
            "                           when the layout has a scratch area, else swap-move)\n"
            "  -k, --key FILE           trusted public key, repeatable\n"
            "      --allow-unsigned     accept hash-only images (development only)\n"
            "      --ca FILE            CA certificates (PEM) to trust; default: the system's\n"
            "      --ca-path DIR        directory of hashed CA certificates\n"
            "      --ca-pin HEX         SHA-256 of a CA's public key (SPKI) that must be in the\n"
            "                           server's chain above its certificate\n"
            "      --artifact-id HEX    the artifact's id from the server (e.g. its SHA-256)\n"
            "      --pending            request the update as a trial after verifying it\n"
            "      --permanent          request it for good after verifying it\n"
            "      --attempts N         failed requests in a row before giving up (default 8)\n"
            "      --connect-timeout S  seconds to connect (default 10)\n"
            "      --stall-timeout S    give up on a response silent for S seconds (default 30)\n"
            "      --insecure-http      accept http:// URLs (development only)\n"
            "      --backend B          crypto backend for verification: openssl or mbedtls\n"
            "  -q, --quiet              no progress output\n"
            "      --json               print the result as JSON on stdout\n"
            "\n"
            "Exit codes: 0 downloaded and verified, 2 usage, 3 flash file, 5 malformed image\n"
            "or artifact shorter than its image, 6 hash, 7 signature, 8 untrusted key,\n"
            "downgrade or security counter, 9 unsupported, 10 too big, 12 layout/engine,\n"
            "14 network (after retries), 15 TLS certificate, 16 HTTP error status,\n"
            "17 interrupted (run again to resume). See docs/cli.md.\n");
}

enum {
    OPT_ALLOW_UNSIGNED = 256,
    OPT_CA,
    OPT_CA_PATH,
    OPT_CA_PIN,
    OPT_ID,
    OPT_PENDING,
    OPT_PERMANENT,
    OPT_ATTEMPTS,
    OPT_CONNECT,
    OPT_STALL,
    OPT_HTTP,
    OPT_BACKEND,
    OPT_JSON,
};

static const struct option long_opts[] = {
    {"flash", required_argument, NULL, 'f'},
    {"layout", required_argument, NULL, 'l'},
    {"engine", required_argument, NULL, 'e'},
    {"key", required_argument, NULL, 'k'},
    {"allow-unsigned", no_argument, NULL, OPT_ALLOW_UNSIGNED},
    {"ca", required_argument, NULL, OPT_CA},
    {"ca-path", required_argument, NULL, OPT_CA_PATH},
    {"ca-pin", required_argument, NULL, OPT_CA_PIN},
    {"artifact-id", required_argument, NULL, OPT_ID},
    {"pending", no_argument, NULL, OPT_PENDING},
    {"permanent", no_argument, NULL, OPT_PERMANENT},
    {"attempts", required_argument, NULL, OPT_ATTEMPTS},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT},
    {"stall-timeout", required_argument, NULL, OPT_STALL},
    {"insecure-http", no_argument, NULL, OPT_HTTP},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"quiet", no_argument, NULL, 'q'},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_hex_id(struct fetch_opts *o, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 != 0 || n / 2 > sizeof(o->artifact_id)) {
        return cli_fail(EXIT_USAGE, "--artifact-id: expected an even number of hex digits, at "
                                    "most %zu",
                        sizeof(o->artifact_id) * 2);
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1])) {
            return cli_fail(EXIT_USAGE, "--artifact-id: character %zu is not a hex digit", 2 * i);
        }
        o->artifact_id[i] = (uint8_t)v;
    }
    o->artifact_id_len = n / 2;
    return EXIT_OK_;
}

/* Returns EXIT_OK_, an exit code, or -1 after --help. */
static int parse(struct fetch_opts *o, int argc, char **argv)
{
    int c, rc;
    memset(o, 0, sizeof(*o));
    o->backend = "openssl";
    o->attempts = 8;
    o->connect_timeout_s = 10;
    o->stall_timeout_s = 30;
    while ((c = getopt_long(argc, argv, "f:l:e:k:qh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->flash = optarg;
            break;
        case 'l':
            o->layout = optarg;
            break;
        case 'e':
            o->engine = optarg;
            break;
        case 'k':
            if ((rc = cli_keyring_add(&o->ring, optarg)) != EXIT_OK_) {
                return rc;
            }
            break;
        case OPT_ALLOW_UNSIGNED:
            o->allow_unsigned = true;
            break;
        case OPT_CA:
            o->ca_file = optarg;
            break;
        case OPT_CA_PATH:
            o->ca_path = optarg;
            break;
        case OPT_CA_PIN:
            o->ca_pin = optarg;
            break;
        case OPT_ID:
            if ((rc = parse_hex_id(o, optarg)) != EXIT_OK_) {
                return rc;
            }
            break;
        case OPT_PENDING:
        case OPT_PERMANENT:
            if (o->request != REQ_NONE) {
                return cli_fail(EXIT_USAGE, "give --pending or --permanent, not both");
            }
            o->request = c == OPT_PENDING ? REQ_TRIAL : REQ_PERMANENT;
            break;
        case OPT_ATTEMPTS:
            if ((rc = cli_parse_u32_opt("--attempts", optarg, 1000, &o->attempts)) != EXIT_OK_) {
                return rc;
            }
            break;
        case OPT_CONNECT:
            if ((rc = cli_parse_u32_opt("--connect-timeout", optarg, 3600,
                                        &o->connect_timeout_s)) != EXIT_OK_) {
                return rc;
            }
            break;
        case OPT_STALL:
            if ((rc = cli_parse_u32_opt("--stall-timeout", optarg, 3600, &o->stall_timeout_s)) !=
                EXIT_OK_) {
                return rc;
            }
            break;
        case OPT_HTTP:
            o->allow_http = true;
            break;
        case OPT_BACKEND:
            o->backend = optarg;
            break;
        case 'q':
            o->quiet = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return cli_fail(EXIT_USAGE, optind >= argc ? "missing URL (see airlock fetch --help)"
                                                   : "only one URL may be given");
    }
    o->url = argv[optind];
    if (!o->flash || !o->layout) {
        return cli_fail(EXIT_USAGE, "%s is required (see airlock fetch --help)",
                        !o->flash ? "--flash" : "--layout");
    }
    if (o->ring.n == 0 && !o->allow_unsigned) {
        return cli_fail(EXIT_USAGE, "give the trusted key(s) with -k (or --allow-unsigned for "
                                    "development images)");
    }
    if (o->attempts == 0 || o->connect_timeout_s == 0 || o->stall_timeout_s == 0) {
        return cli_fail(EXIT_USAGE, "--attempts, --connect-timeout and --stall-timeout must be "
                                    "at least 1");
    }
    return EXIT_OK_;
}

/* ---- the command ------------------------------------------------------------- */

static const airlock_engine_t *pick_engine(const struct fetch_opts *o, const devflash_t *dev)
{
    if (o->engine) {
        return airlock_engine_find(o->engine);
    }
    return airlock_engine_find(dev->lf.layout.area[AIRLOCK_AREA_SCRATCH].flash ? "swap-scratch"
                                                                                : "swap-move");
}

static void version_str(const airlock_version_t *v, char *buf, size_t n)
{
    snprintf(buf, n, "%u.%u.%u+%lu", v->major, v->minor, v->revision, (unsigned long)v->build);
}

static bool json_printed;

static void print_json(const struct fetch_opts *o, const airlock_dl_result_t *r, int rc,
                       const airlock_ota_status_t *st)
{
    json_printed = true;
    char ver[48] = "";
    if (st && st->pending_valid) {
        version_str(&st->pending_version, ver, sizeof(ver));
    }
    json_t *j = json_pack("{s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:i, "
                          "s:I, s:s, s:s}",
                          "url", o->url, "flash", o->flash, "ok", rc == 0, "error",
                          rc ? airlock_errname(rc) : "", "message", r->msg, "image_len",
                          (json_int_t)r->image_len, "resumed_from", (json_int_t)r->resumed_from,
                          "received", (json_int_t)r->received, "written", (json_int_t)r->written,
                          "http_status", (json_int_t)r->http_status, "requests", r->requests,
                          "retries", r->retries, "restarts", r->restarts, "curl_code",
                          (json_int_t)r->curl_code, "validator", r->validator, "request",
                          o->request == REQ_TRIAL       ? "trial"
                          : o->request == REQ_PERMANENT ? "permanent"
                                                        : "none");
    if (j && ver[0]) {
        json_object_set_new(j, "pending_version", json_string(ver));
    }
    cli_json_print(j);
}

static int run(struct fetch_opts *o)
{
    devflash_t *dev = NULL;
    int rc = devflash_open(o->layout, o->flash, &dev);
    if (rc != EXIT_OK_) {
        return rc;
    }
    const airlock_engine_t *engine = pick_engine(o, dev);
    const airlock_crypto_t *crypto = strcmp(o->backend, "openssl") == 0   ? &airlock_crypto_openssl
                                     : strcmp(o->backend, "mbedtls") == 0 ? &airlock_crypto_mbedtls
                                                                          : NULL;
    if (!engine || !crypto) {
        devflash_close(dev);
        return !engine ? cli_fail(EXIT_USAGE, "unknown engine %s (airlock powercut --engine list)",
                                  o->engine)
                       : cli_fail(EXIT_USAGE, "--backend must be openssl or mbedtls, not %s",
                                  o->backend);
    }
    static uint8_t work[4096];
    airlock_boot_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.layout = &dev->lf.layout;
    cfg.engine = engine;
    cfg.crypto = crypto;
    cfg.keys = o->ring.pub;
    cfg.nkeys = o->ring.n;
    cfg.allow_unsigned = o->allow_unsigned;
    cfg.max_trials = 1;
    cfg.buf = work;
    cfg.buf_len = sizeof(work);
    uint32_t at, room;
    if ((rc = airlock_boot_stage(&cfg, &at, &room)) != 0) {
        devflash_close(dev);
        return cli_fail(EXIT_LAYOUT, "engine %s cannot run on layout %s: %s", engine->name,
                        dev->lf.source, airlock_strerror(rc));
    }

    struct bar bar = {.tty = isatty(2) != 0, .quiet = o->quiet, .last_decile = -1};
    clock_gettime(CLOCK_MONOTONIC, &bar.t0);
    airlock_dl_opts_t dl = {
        .url = o->url,
        .ca_file = o->ca_file,
        .ca_path = o->ca_path,
        .ca_pin = o->ca_pin,
        .artifact_id = o->artifact_id_len ? o->artifact_id : NULL,
        .artifact_id_len = o->artifact_id_len,
        .allow_http = o->allow_http,
        .connect_timeout_ms = (long)o->connect_timeout_s * 1000L,
        .low_speed_limit = 1,
        .low_speed_time_s = (long)o->stall_timeout_s,
        .max_attempts = o->attempts,
        .progress = on_progress,
        .log = on_log,
        .cancelled = is_cancelled,
        .ctx = &bar,
    };
    if (o->allow_http && !o->quiet) {
        fprintf(stderr, "airlock fetch: WARNING: --insecure-http: the download is not "
                        "authenticated in transit (the image signature still is checked)\n");
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    static airlock_ota_t ota;
    airlock_dl_result_t res;
    airlock_download_global_init();
    rc = airlock_download(&ota, &cfg, &dl, &res);
    if (bar.drawn) {
        fputc('\n', stderr);
    }
    airlock_ota_status_t st;
    bool have_st = false;
    if (rc == 0 && o->request != REQ_NONE) {
        rc = airlock_ota_set_pending(&ota, o->request == REQ_PERMANENT);
        if (rc) {
            snprintf(res.msg, sizeof(res.msg), "cannot request the update: %s",
                     airlock_strerror(rc));
        }
    }
    if (rc == 0) {
        have_st = airlock_ota_state(&cfg, &st) == 0;
    }
    airlock_ota_abort(&ota);
    if (o->json) {
        print_json(o, &res, rc, have_st ? &st : NULL);
    }
    int code = airlock_exit_for_err(rc);
    if (rc) {
        cli_fail(code, "%s", res.msg[0] ? res.msg : airlock_strerror(rc));
        if (rc == AIRLOCK_ERR_CANCELLED || rc == AIRLOCK_ERR_NETWORK) {
            cli_note("what was written is kept: run the same command again to resume");
        }
    } else if (!o->quiet) {
        char resumed[48] = "";
        if (res.resumed_from) {
            snprintf(resumed, sizeof(resumed), ", resumed at byte %u", (unsigned)res.resumed_from);
        }
        cli_note("%s: %u-byte image verified in the secondary slot of %s (%u request%s, %u "
                 "retr%s, %u restart%s%s)%s",
                 o->url, (unsigned)res.image_len, o->flash, res.requests,
                 res.requests == 1 ? "" : "s", res.retries, res.retries == 1 ? "y" : "ies",
                 res.restarts, res.restarts == 1 ? "" : "s", resumed,
                 o->request == REQ_TRIAL       ? "; requested as a trial"
                 : o->request == REQ_PERMANENT ? "; requested permanently"
                                               : "");
    }
    airlock_download_global_cleanup();
    devflash_close(dev);
    return code;
}

int cmd_fetch(int argc, char **argv)
{
    struct fetch_opts o;
    int rc = parse(&o, argc, argv);
    if (rc == EXIT_OK_) {
        rc = run(&o);
    }
    if (o.json && rc > 0 && !json_printed) {
        cli_json_refusal(rc); /* refused before any download (flash file, layout, engine) */
    }
    cli_keyring_free(&o.ring);
    return rc < 0 ? EXIT_OK_ : rc;
}
