/*
 * `airlock sim device --flash DEV.img --layout L [...]`: provision a
 * simulated device (settings, bootloader keys, factory image) and/or boot
 * it until a stop condition (sim/device.c does the work). Prints one line
 * per event and, with --json, a summary object; never touches the flash
 * itself except through sim_dev_provision.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "cli_json.h"
#include "devflash.h"
#include "device.h"
#include "exitcodes.h"
#include "pkey.h"
#include "sim.h"
#include "util.h"

static void usage(FILE *f)
{
    fputs("usage: airlock sim device --flash DEV.img --layout L [provisioning] [run options]\n"
          "\n"
          "Simulate one device whose whole state is its flash file: each boot runs the real\n"
          "bootloader core on it, starts the payload of the image it chose and verified (a\n"
          "host executable, e.g. examples/firmware) as a process, watches its watchdog and\n"
          "exit code, injects power cuts, and boots again.\n"
          "\n"
          "  -f, --flash FILE          the device's flash file (created erased if missing)\n"
          "  -l, --layout FILE|NAME    flash layout with a settings area (e.g. sim-device)\n"
          "      --id NAME             log prefix (default: the controller id)\n"
          "\n"
          "Provisioning (written once; afterwards --flash and --layout alone boot the device):\n"
          "      --server URL          update server base URL (https://host:port)\n"
          "      --tenant T            DDI tenant (default DEFAULT with --server)\n"
          "      --controller-id ID    the device's controller id\n"
          "      --token TOKEN         its device token (TargetToken)\n"
          "      --gateway-token TOKEN or the fleet's gateway token (GatewayToken)\n"
          "      --ca FILE             CA certificate(s) the device trusts (PEM)\n"
          "      --image FILE          factory image into the primary slot (other slots erased)\n"
          "  -k, --key FILE            key the bootloader trusts, repeatable\n"
          "      --allow-unsigned      bootloader accepts hash-only images (development)\n"
          "      --engine E            install engine (default swap-scratch with a scratch area,\n"
          "                            else swap-move)\n"
          "      --trials N            trial boots of an unconfirmed update (default 1)\n"
          "      --provision-only      write and exit without booting\n"
          "\n"
          "Run:\n"
          "      --watchdog-ms MS      reset a firmware that does not feed it (default 3000)\n"
          "      --time-scale X        the firmware's poll sleeps divided by X (default 1)\n"
          "      --cut-random P        per boot, probability of a power cut at a random moment\n"
          "      --cut-window-ms MS    ... uniform in [0, MS) after start (default 2000)\n"
          "      --max-cuts N          at most N random cuts in the run\n"
          "      --cut-at-op K         cut power in the firmware's flash operation K (once)\n"
          "      --cut-boot-at-op K    cut power in the bootloader's flash operation K (once)\n"
          "      --seed S              seed for cuts and tears (default: from the clock)\n"
          "      --until-version V     stop when V runs confirmed and the firmware is idle\n"
          "      --until-idle          stop when the firmware is idle (nothing to do)\n"
          "      --idle-for S          ... and has stayed idle S seconds (with either goal)\n"
          "      --max-boots N         stop after N boots\n"
          "      --timeout S           stop after S seconds\n"
          "      --json                summary as JSON on stdout (events go to stderr)\n"
          "SIGINT/SIGTERM stop the device gracefully (the summary is still printed).\n"
          "  -q, --quiet               no event lines\n"
          "\n"
          "Exit codes: 0 stopped as asked, 2 usage, 3 flash file or not provisioned,\n"
          "9 the confirmed payload cannot run on this host, 12 layout, 20 bricked (nothing\n"
          "bootable), 22 --timeout/--max-boots before the --until goal. See docs/cli.md.\n",
          f);
}

enum {
    OPT_ID = 256,
    OPT_SERVER,
    OPT_TENANT,
    OPT_CID,
    OPT_TOKEN,
    OPT_GW,
    OPT_CA,
    OPT_IMAGE,
    OPT_UNSIGNED,
    OPT_ENGINE,
    OPT_TRIALS,
    OPT_PROV_ONLY,
    OPT_WD,
    OPT_SCALE,
    OPT_CUT_RANDOM,
    OPT_CUT_WINDOW,
    OPT_MAX_CUTS,
    OPT_CUT_AT,
    OPT_CUT_BOOT,
    OPT_SEED,
    OPT_UNTIL_VERSION,
    OPT_UNTIL_IDLE,
    OPT_IDLE_FOR,
    OPT_MAX_BOOTS,
    OPT_TIMEOUT,
    OPT_JSON,
};

static const struct option long_opts[] = {
    {"flash", required_argument, NULL, 'f'},
    {"layout", required_argument, NULL, 'l'},
    {"id", required_argument, NULL, OPT_ID},
    {"server", required_argument, NULL, OPT_SERVER},
    {"tenant", required_argument, NULL, OPT_TENANT},
    {"controller-id", required_argument, NULL, OPT_CID},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"gateway-token", required_argument, NULL, OPT_GW},
    {"ca", required_argument, NULL, OPT_CA},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"key", required_argument, NULL, 'k'},
    {"allow-unsigned", no_argument, NULL, OPT_UNSIGNED},
    {"engine", required_argument, NULL, OPT_ENGINE},
    {"trials", required_argument, NULL, OPT_TRIALS},
    {"provision-only", no_argument, NULL, OPT_PROV_ONLY},
    {"watchdog-ms", required_argument, NULL, OPT_WD},
    {"time-scale", required_argument, NULL, OPT_SCALE},
    {"cut-random", required_argument, NULL, OPT_CUT_RANDOM},
    {"cut-window-ms", required_argument, NULL, OPT_CUT_WINDOW},
    {"max-cuts", required_argument, NULL, OPT_MAX_CUTS},
    {"cut-at-op", required_argument, NULL, OPT_CUT_AT},
    {"cut-boot-at-op", required_argument, NULL, OPT_CUT_BOOT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"until-version", required_argument, NULL, OPT_UNTIL_VERSION},
    {"until-idle", no_argument, NULL, OPT_UNTIL_IDLE},
    {"idle-for", required_argument, NULL, OPT_IDLE_FOR},
    {"max-boots", required_argument, NULL, OPT_MAX_BOOTS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct opts {
    sim_dev_opts_t run;
    sim_dev_prov_t prov;
    cli_keyring_t ring;
    const char *token, *gw_token, *ca_path, *image_path;
    char *auth;
    uint8_t *ca, *image;
    size_t ca_len, image_len;
    bool prov_only, json, quiet, seeded;
};

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        return cli_fail(EXIT_USAGE, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
    }
    *out = v;
    return EXIT_OK_;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    if (!cli_parse_uint(s, out)) {
        return cli_fail(EXIT_USAGE, "%s: expected an unsigned number, got '%s'", opt, s);
    }
    return EXIT_OK_;
}

/* Returns EXIT_OK_, an exit code, or -1 after --help. */
static int parse(struct opts *o, int argc, char **argv)
{
    int c, rc;
    uint64_t u;
    uint32_t u32;
    o->run.cut_at_op = -1;
    o->run.cut_boot_at_op = -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:l:k:qh", long_opts, NULL)) != -1) {
        rc = EXIT_OK_;
        switch (c) {
        case 'f':
            o->run.flash = optarg;
            break;
        case 'l':
            o->run.layout = optarg;
            break;
        case OPT_ID:
            o->run.id = optarg;
            break;
        case OPT_SERVER:
            o->prov.server = optarg;
            break;
        case OPT_TENANT:
            o->prov.tenant = optarg;
            break;
        case OPT_CID:
            o->prov.controller = optarg;
            break;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_GW:
            o->gw_token = optarg;
            break;
        case OPT_CA:
            o->ca_path = optarg;
            break;
        case OPT_IMAGE:
            o->image_path = optarg;
            break;
        case 'k':
            rc = cli_keyring_add(&o->ring, optarg);
            break;
        case OPT_UNSIGNED:
            o->prov.allow_unsigned = true;
            break;
        case OPT_ENGINE:
            o->prov.engine = optarg;
            break;
        case OPT_TRIALS:
            rc = cli_parse_u32_opt("--trials", optarg, 255, &o->prov.max_trials);
            if (rc == EXIT_OK_ && o->prov.max_trials == 0) {
                rc = cli_fail(EXIT_USAGE, "--trials must be at least 1");
            }
            break;
        case OPT_PROV_ONLY:
            o->prov_only = true;
            break;
        case OPT_WD:
            rc = cli_parse_u32_opt("--watchdog-ms", optarg, 3600000, &o->run.watchdog_ms);
            if (rc == EXIT_OK_ && o->run.watchdog_ms < 10) {
                rc = cli_fail(EXIT_USAGE, "--watchdog-ms must be at least 10");
            }
            break;
        case OPT_SCALE:
            rc = parse_double("--time-scale", optarg, 1, 1e6, &o->run.time_scale);
            break;
        case OPT_CUT_RANDOM:
            rc = parse_double("--cut-random", optarg, 0, 1, &o->run.cut_random);
            break;
        case OPT_CUT_WINDOW:
            rc = cli_parse_u32_opt("--cut-window-ms", optarg, 3600000, &o->run.cut_window_ms);
            break;
        case OPT_MAX_CUTS:
            rc = cli_parse_u32_opt("--max-cuts", optarg, UINT32_MAX, &u32);
            o->run.max_random_cuts = u32;
            break;
        case OPT_CUT_AT:
        case OPT_CUT_BOOT:
            rc = parse_u64(c == OPT_CUT_AT ? "--cut-at-op" : "--cut-boot-at-op", optarg, &u);
            if (rc == EXIT_OK_ && u > INT64_MAX) {
                rc = cli_fail(EXIT_USAGE, "operation number too large");
            }
            *(c == OPT_CUT_AT ? &o->run.cut_at_op : &o->run.cut_boot_at_op) = (int64_t)u;
            break;
        case OPT_SEED:
            rc = parse_u64("--seed", optarg, &o->run.seed);
            o->seeded = true;
            break;
        case OPT_UNTIL_VERSION:
            o->run.until_version = optarg;
            break;
        case OPT_UNTIL_IDLE:
            o->run.until_idle = true;
            break;
        case OPT_IDLE_FOR:
            rc = parse_double("--idle-for", optarg, 0, 1e7, &o->run.idle_for_s);
            break;
        case OPT_MAX_BOOTS:
            rc = cli_parse_u32_opt("--max-boots", optarg, UINT32_MAX, &u32);
            o->run.max_boots = u32;
            break;
        case OPT_TIMEOUT:
            rc = parse_double("--timeout", optarg, 0.001, 1e7, &o->run.timeout_s);
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return cli_bad_option(c, argv);
        }
        if (rc != EXIT_OK_) {
            return rc;
        }
    }
    if (optind != argc) {
        return cli_fail(EXIT_USAGE, "unexpected argument '%s' (see airlock sim device --help)",
                        argv[optind]);
    }
    if (!o->run.flash || !o->run.layout) {
        return cli_fail(EXIT_USAGE, "%s is required (see airlock sim device --help)",
                        !o->run.flash ? "--flash" : "--layout");
    }
    if (o->token && o->gw_token) {
        return cli_fail(EXIT_USAGE, "give --token or --gateway-token, not both");
    }
    if (o->run.until_version && o->run.until_idle) {
        return cli_fail(EXIT_USAGE, "give --until-version or --until-idle, not both");
    }
    return EXIT_OK_;
}

static int load_provisioning(struct opts *o)
{
    int rc;
    if (o->token || o->gw_token) {
        const char *kind = o->token ? "TargetToken" : "GatewayToken";
        const char *tok = o->token ? o->token : o->gw_token;
        size_t n = strlen(kind) + strlen(tok) + 2;
        o->auth = malloc(n);
        if (!o->auth) {
            return cli_fail(EXIT_INTERNAL, "out of memory");
        }
        snprintf(o->auth, n, "%s %s", kind, tok);
        o->prov.auth = o->auth;
    }
    if (o->prov.server && !o->prov.tenant) {
        o->prov.tenant = "DEFAULT";
    }
    if (o->ca_path) {
        if ((rc = cli_read_file(o->ca_path, "CA file", &o->ca, &o->ca_len)) != EXIT_OK_) {
            return rc;
        }
        char *pem = realloc(o->ca, o->ca_len + 1);
        if (!pem) {
            return cli_fail(EXIT_INTERNAL, "out of memory");
        }
        pem[o->ca_len] = '\0';
        o->ca = (uint8_t *)pem;
        if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
            return cli_fail(EXIT_USAGE, "%s: no PEM certificate in it", o->ca_path);
        }
        o->prov.ca_pem = pem;
    }
    if (o->image_path) {
        if ((rc = cli_read_file(o->image_path, "image", &o->image, &o->image_len)) != EXIT_OK_) {
            return rc;
        }
        o->prov.image = o->image;
        o->prov.image_len = o->image_len;
    }
    o->prov.keys = o->ring.pub;
    o->prov.nkeys = o->ring.n;
    return EXIT_OK_;
}

static bool provisioning_given(const struct opts *o)
{
    const sim_dev_prov_t *p = &o->prov;
    return p->server || p->tenant || p->controller || p->auth || p->ca_pem || p->image ||
           p->nkeys || p->engine || p->max_trials || p->allow_unsigned;
}

static void log_line(void *ctx, const char *line)
{
    FILE *f = ctx;
    fprintf(f, "%s\n", line);
    fflush(f);
}

static bool json_printed;

static void print_json(const struct opts *o, const sim_dev_result_t *r, int code)
{
    json_printed = true;
    json_t *j = json_pack(
        "{s:s, s:b, s:i, s:s, s:s, s:s, s:s, s:b, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, "
        "s:i, s:s, s:I}",
        "device", r->id, "ok", code == EXIT_OK_, "exit", code, "stop", sim_dev_stop_name(r->stop),
        "message", r->message, "version", r->version, "state", r->state, "reverted", r->reverted,
        "reverted_from", r->reverted_from, "boots", (int)r->boots, "reverts", (int)r->reverts,
        "installs", (int)r->installs, "power_cuts", (int)r->power_cuts, "crashes", (int)r->crashes,
        "watchdog_resets", (int)r->watchdog_resets, "health_failures", (int)r->health_failures,
        "bytes_downloaded", (json_int_t)r->bytes_downloaded, "resumes", (int)r->resumes,
        "last_decision", r->last_decision, "seed", (json_int_t)o->run.seed);
    cli_json_print(j);
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int exit_for_stop(int stop)
{
    switch (stop) {
    case SIM_DEV_GOAL:
    case SIM_DEV_LIMIT:
    case SIM_DEV_HALTED:
        return EXIT_OK_;
    case SIM_DEV_UNFINISHED:
        return EXIT_SIM_UNFINISHED;
    case SIM_DEV_UNBOOTABLE:
        return EXIT_FLEET_BRICKED;
    case SIM_DEV_NOT_EXEC:
        return EXIT_UNSUPPORTED;
    default:
        return EXIT_IO;
    }
}

static int run(struct opts *o)
{
    int rc = load_provisioning(o);
    if (rc != EXIT_OK_) {
        return rc;
    }
    /* the flash file and layout first: their errors get their own exit codes */
    devflash_t *d = NULL;
    if ((rc = devflash_open(o->run.layout, o->run.flash, &d)) != EXIT_OK_) {
        return rc;
    }
    if (!d->lf.settings.flash) {
        devflash_close(d);
        return cli_fail(EXIT_LAYOUT,
                        "layout %s has no settings area: a simulated device keeps "
                        "its identity there (see docs/layout.md; try sim-device)",
                        o->run.layout);
    }
    if (provisioning_given(o)) {
        char err[300];
        if (sim_dev_provision(d, &o->prov, err, sizeof(err)) != 0) {
            devflash_close(d);
            return cli_fail(EXIT_IO, "%s: %s", o->run.flash, err);
        }
        if (!o->quiet) {
            cli_note("%s: provisioned", o->run.flash);
        }
    }
    devflash_close(d);
    if (o->prov_only) {
        return EXIT_OK_;
    }
    if (!o->seeded) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        o->run.seed = (uint64_t)t.tv_sec * 1000003u + (uint64_t)t.tv_nsec;
    }
    o->run.log = o->quiet ? NULL : log_line;
    o->run.log_ctx = o->json ? stderr : stdout;
    if (!o->quiet &&
        (o->run.cut_random > 0 || o->run.cut_at_op >= 0 || o->run.cut_boot_at_op >= 0)) {
        fprintf(o->run.log_ctx, "airlock sim device: seed %llu\n", (unsigned long long)o->run.seed);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o->run.interrupt = &interrupted;
    static sim_dev_result_t r;
    int stop = sim_dev_run(&o->run, &r);
    int code = exit_for_stop(stop);
    if (o->json) {
        print_json(o, &r, code);
    }
    if (code != EXIT_OK_) {
        cli_fail(code, "%s: %s", r.id, r.message);
    }
    return code;
}

int sim_device_main(int argc, char **argv)
{
    static struct opts o;
    memset(&o, 0, sizeof(o));
    cli_set_cmd("sim device");
    json_printed = false;
    int rc = parse(&o, argc, argv);
    if (rc == EXIT_OK_) {
        rc = run(&o);
    }
    if (o.json && rc > 0 && !json_printed) {
        cli_json_refusal(rc); /* refused before any boot (usage, flash file, layout, provisioning) */
    }
    cli_keyring_free(&o.ring);
    free(o.auth);
    free(o.ca);
    free(o.image);
    return rc < 0 ? EXIT_OK_ : rc;
}
