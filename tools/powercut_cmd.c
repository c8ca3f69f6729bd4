/*
 * `airlock powercut`: run the power-cut proof (tools/powercut.c) with the
 * user's own layout, engine and signed images, on sim flashes built from
 * the layout's geometry. Everything happens in RAM: it never writes a file
 * and never touches a real flash part.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "airlock/crypto_openssl.h"
#include "airlock/image.h"
#include "airlock/sim_flash.h"
#include "cli.h"
#include "exitcodes.h"
#include "layout_file.h"
#include "pkey.h"
#include "powercut.h"
#include "util.h"

#define MAX_KEYS 16
#define DEFAULT_MAX_CUTS 3u
#define DEFAULT_SEED 1u

/* The three update lives the proof can run. */
enum scenario { SC_PERM, SC_CONFIRM, SC_NO_CONFIRM, SC_COUNT };

static const char *const scenario_name[SC_COUNT] = {"permanent", "test+confirm",
                                                    "test, no confirm"};
static const char *const scenario_key[SC_COUNT] = {"permanent", "confirm", "no-confirm"};
static const char *const scenario_opt[SC_COUNT] = {"--permanent", "--confirm", "--no-confirm"};

struct opts {
    const char *layout;
    const char *engine_name;
    const char *old_path;
    const char *new_path;
    const char *key_paths[MAX_KEYS];
    size_t nkeys;
    bool allow_unsigned;
    bool want[SC_COUNT]; /* all false: run every scenario */
    uint32_t trials;
    uint64_t random;
    uint32_t max_cuts;
    uint64_t seed;
    bool json;
};

/* One image given on the command line, parsed and verified. */
struct image {
    const char *path;
    uint8_t *data;
    size_t file_len;
    airlock_image_t img;
    airlock_verify_result_t vr;
};

/* One row of the table: a scenario, every cut or random cuts. */
struct row {
    enum scenario sc;
    bool random;
    bool uncut_failed; /* the update fails with no cut at all: no cut runs made */
    pc_report_t rep;   /* tried/passed count cut runs only */
};

static bool json_mode;

/* Report an error: stderr always, and a JSON object on stdout with --json. */
static int fail(int code, const char *fmt, ...) CLI_PRINTF(2, 3);
static int fail(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (json_mode) {
        json_t *o =
            json_pack("{s:b, s:{s:i, s:s}}", "ok", 0, "error", "exit", code, "message", msg);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s) {
            puts(s);
            free(s);
        }
        json_decref(o);
    }
    return cli_fail(code, "%s", msg);
}

static void engine_list(char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; airlock_engines[i] && len < n; i++) {
        len +=
            (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", airlock_engines[i]->name);
    }
}

static void usage(FILE *f)
{
    char engines[256];
    engine_list(engines, sizeof(engines));
    fprintf(f,
            "usage: airlock powercut --layout FILE|NAME --engine E --old OLD.bin --new NEW.bin\n"
            "                        (--key PUB.pem... | --allow-unsigned)\n"
            "                        [--permanent] [--confirm] [--no-confirm] [--trials N]\n"
            "                        [--random N] [--max-cuts M] [--seed S] [--json]\n"
            "\n"
            "Prove on simulated flash that a power cut at any flash operation of an update\n"
            "cannot brick a device with this layout and engine: OLD.bin is the image in the\n"
            "primary slot, NEW.bin the update. The whole update (request, install, trial\n"
            "boot, confirmation or revert) runs once without a cut, then once per flash\n"
            "operation with power cut (and the operation torn) there. After every cut the\n"
            "device must boot a verified image that is byte for byte OLD or NEW, end in the\n"
            "expected state, and never break a NOR flash rule. See docs/power-safety.md.\n"
            "\n"
            "  -l, --layout L      layout file, or a built-in name (airlock layout list)\n"
            "  -e, --engine E      install engine ('list' lists them): %s\n"
            "      --old FILE      signed image the device runs before the update\n"
            "      --new FILE      signed update image (newer version)\n"
            "  -k, --key FILE      public (or private) key the bootloader trusts, repeatable\n"
            "      --allow-unsigned  no key: the bootloader accepts hash-only images\n"
            "      --permanent     prove a permanent update (a PERM request)\n"
            "      --confirm       prove a trial update that the new image confirms\n"
            "      --no-confirm    prove a trial update never confirmed (it must revert)\n"
            "                      (none of the three: all of them)\n"
            "      --trials N      trial boots an unconfirmed update gets (1..%u, default 1)\n"
            "      --random N      also N runs with 1..M cuts at random operations, cuts\n"
            "                      landing in recovery too (default 0)\n"
            "      --max-cuts M    most cuts in one random run (1..%u, default %u)\n"
            "      --seed S        seed of the tears and random cuts (default %u)\n"
            "      --json          print a JSON report on stdout\n"
            "  -h, --help          this help\n"
            "\n"
            "Exit codes: 0 every cut passed, 2 usage or unknown engine, 3 unreadable file,\n"
            "4 key, 5-9 an image does not verify (as verify), 10 image too big for the\n"
            "layout and engine, 12 invalid layout or engine not usable on it,\n"
            "13 a power cut broke the device (see docs/cli.md).\n",
            engines, (unsigned)AIRLOCK_TRIAL_MAX, (unsigned)PC_MAX_CUTS, DEFAULT_MAX_CUTS,
            DEFAULT_SEED);
}

enum {
    OPT_OLD = 1000,
    OPT_NEW,
    OPT_ALLOW_UNSIGNED,
    OPT_PERMANENT,
    OPT_CONFIRM,
    OPT_NO_CONFIRM,
    OPT_TRIALS,
    OPT_RANDOM,
    OPT_MAX_CUTS,
    OPT_SEED,
    OPT_JSON,
};

static const struct option longopts[] = {
    {"layout", required_argument, NULL, 'l'},
    {"engine", required_argument, NULL, 'e'},
    {"old", required_argument, NULL, OPT_OLD},
    {"new", required_argument, NULL, OPT_NEW},
    {"key", required_argument, NULL, 'k'},
    {"allow-unsigned", no_argument, NULL, OPT_ALLOW_UNSIGNED},
    {"permanent", no_argument, NULL, OPT_PERMANENT},
    {"confirm", no_argument, NULL, OPT_CONFIRM},
    {"no-confirm", no_argument, NULL, OPT_NO_CONFIRM},
    {"trials", required_argument, NULL, OPT_TRIALS},
    {"random", required_argument, NULL, OPT_RANDOM},
    {"max-cuts", required_argument, NULL, OPT_MAX_CUTS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_u64_opt(const char *opt, const char *s, uint64_t *out)
{
    if (!cli_parse_uint(s, out)) {
        return cli_fail(EXIT_USAGE, "%s must be a non-negative integer, not '%s'", opt, s);
    }
    return EXIT_OK_;
}

/* Returns EXIT_OK_, an exit code, or -1 after --help / --engine list. */
static int parse(int argc, char **argv, struct opts *o)
{
    int c, rc;
    memset(o, 0, sizeof(*o));
    o->trials = 1;
    o->max_cuts = DEFAULT_MAX_CUTS;
    o->seed = DEFAULT_SEED;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":l:e:k:h", longopts, NULL)) != -1) {
        rc = EXIT_OK_;
        switch (c) {
        case 'l':
            o->layout = optarg;
            break;
        case 'e':
            o->engine_name = optarg;
            break;
        case OPT_OLD:
            o->old_path = optarg;
            break;
        case OPT_NEW:
            o->new_path = optarg;
            break;
        case 'k':
            if (o->nkeys == MAX_KEYS) {
                return cli_fail(EXIT_USAGE, "at most %d keys may be given with --key", MAX_KEYS);
            }
            o->key_paths[o->nkeys++] = optarg;
            break;
        case OPT_ALLOW_UNSIGNED:
            o->allow_unsigned = true;
            break;
        case OPT_PERMANENT:
            o->want[SC_PERM] = true;
            break;
        case OPT_CONFIRM:
            o->want[SC_CONFIRM] = true;
            break;
        case OPT_NO_CONFIRM:
            o->want[SC_NO_CONFIRM] = true;
            break;
        case OPT_TRIALS:
            rc = cli_parse_u32_opt("--trials", optarg, AIRLOCK_TRIAL_MAX, &o->trials);
            if (rc == EXIT_OK_ && o->trials == 0) {
                rc = cli_fail(EXIT_USAGE, "--trials must be 1..%u", (unsigned)AIRLOCK_TRIAL_MAX);
            }
            break;
        case OPT_RANDOM:
            rc = parse_u64_opt("--random", optarg, &o->random);
            break;
        case OPT_MAX_CUTS:
            rc = cli_parse_u32_opt("--max-cuts", optarg, PC_MAX_CUTS, &o->max_cuts);
            if (rc == EXIT_OK_ && o->max_cuts == 0) {
                rc = cli_fail(EXIT_USAGE, "--max-cuts must be 1..%u", (unsigned)PC_MAX_CUTS);
            }
            break;
        case OPT_SEED:
            rc = parse_u64_opt("--seed", optarg, &o->seed);
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
        if (rc) {
            return rc;
        }
    }
    if (optind < argc) {
        return cli_fail(EXIT_USAGE, "unexpected argument '%s' (see 'airlock powercut --help')",
                        argv[optind]);
    }
    if (o->engine_name && strcmp(o->engine_name, "list") == 0) {
        for (size_t i = 0; airlock_engines[i]; i++) {
            printf("%s%s\n", airlock_engines[i]->name,
                   airlock_engines[i]->caps & AIRLOCK_ENGINE_CAN_REVERT ? "" : " (cannot revert)");
        }
        return -1;
    }
    const char *missing = !o->layout        ? "--layout"
                          : !o->engine_name ? "--engine"
                          : !o->old_path    ? "--old"
                          : !o->new_path    ? "--new"
                                            : NULL;
    if (missing) {
        usage(stderr);
        return cli_fail(EXIT_USAGE, "%s is required", missing);
    }
    if (o->nkeys == 0 && !o->allow_unsigned) {
        return cli_fail(EXIT_USAGE, "give the bootloader's trusted key with --key PUB.pem, or "
                                    "--allow-unsigned for hash-only images");
    }
    if (o->nkeys > 0 && o->allow_unsigned) {
        return cli_fail(EXIT_USAGE, "--allow-unsigned and --key exclude each other: a bootloader "
                                    "with trusted keys refuses unsigned images");
    }
    if (!o->want[SC_PERM] && !o->want[SC_CONFIRM] && !o->want[SC_NO_CONFIRM]) {
        for (int i = 0; i < SC_COUNT; i++) {
            o->want[i] = true;
        }
    }
    return EXIT_OK_;
}

/* ---- images ------------------------------------------------------------ */

struct mem_src {
    const uint8_t *data;
    size_t len;
};

static int mem_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    const struct mem_src *m = ctx;
    if ((uint64_t)off + len > m->len) {
        return -1;
    }
    memcpy(buf, m->data + off, len);
    return 0;
}

static void version_str(const airlock_version_t *v, char *out, size_t n)
{
    snprintf(out, n, "%u.%u.%u+%u", v->major, v->minor, v->revision, (unsigned)v->build);
}

/* What is wrong with an image, in one sentence (the library's detail). */
static void describe(int rc, const airlock_err_detail_t *det, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "%s", airlock_strerror(rc));
    if (det->field && len < n) {
        len += (size_t)snprintf(out + len, n - len, ": %s at offset %u (0x%x)", det->field,
                                (unsigned)det->offset, (unsigned)det->offset);
    }
    if (det->has_values && len < n) {
        len += (size_t)snprintf(out + len, n - len, ": expected %u (0x%x), found %u (0x%x)",
                                (unsigned)det->expected, (unsigned)det->expected,
                                (unsigned)det->found, (unsigned)det->found);
    }
    if (len < n && (rc == AIRLOCK_ERR_UNKNOWN_KEY || rc == AIRLOCK_ERR_KEY_MISMATCH)) {
        snprintf(out + len, n - len,
                 "; a bootloader trusting only the --key keys would refuse it: sign it with "
                 "one of them, or add its signer's public key with --key");
    } else if (len < n && rc == AIRLOCK_ERR_NO_SIGNATURE) {
        snprintf(out + len, n - len,
                 "; sign it with the key, or use --allow-unsigned without "
                 "--key");
    }
}

/* Read, parse and verify one image the way the bootloader will. */
static int load_image(struct image *im, const char *what, const char *path,
                      const airlock_pubkey_t *keys, size_t nkeys)
{
    static uint8_t buf[1 << 14];
    airlock_err_detail_t det;
    char msg[768];
    memset(im, 0, sizeof(*im));
    im->path = path;
    im->vr.key_index = -1;
    char role[16];
    snprintf(role, sizeof(role), "%s image", what);
    int rc = cli_read_file(path, role, &im->data, &im->file_len);
    if (rc) {
        if (json_mode) {
            return fail(rc, "cannot read %s image %s", what, path);
        }
        return rc;
    }
    if (im->file_len > UINT32_MAX) {
        return fail(EXIT_TOO_BIG, "%s image %s is %zu bytes; images are limited to 4 GiB", what,
                    path, im->file_len);
    }
    struct mem_src m = {im->data, im->file_len};
    airlock_source_t src = {mem_read, &m, (uint32_t)im->file_len};
    memset(&det, 0, sizeof(det));
    rc = airlock_image_parse(&src, &im->img, &det);
    if (rc == 0) {
        airlock_verify_cfg_t cfg = {&airlock_crypto_openssl, keys, nkeys, buf, sizeof(buf)};
        rc = airlock_image_verify(&src, &im->img, &cfg, &im->vr, &det);
    }
    if (rc) {
        describe(rc, &det, msg, sizeof(msg));
        return fail(airlock_exit_for_err(rc), "%s image %s does not verify%s: %s", what, path,
                    nkeys ? " with the given --key" : "", msg);
    }
    return EXIT_OK_;
}

/* ---- the device ---------------------------------------------------------- */

struct device {
    layout_file_t lf;
    pc_scenario_t sc; /* its sims[] are ours to close */
};

_Static_assert(LAYOUT_MAX_FLASH <= PC_MAX_DEVICES, "one sim per layout flash device");

/*
 * One sim per flash device an area uses, with the layout's geometry up to
 * the end of its last area: the bootloader reaches flash only through the
 * areas, so the rest (most of an 8 MiB QSPI part) would only cost a wipe
 * per run. Then a copy of the layout whose areas point at the sims' ports.
 */
static int build_device(struct device *d)
{
    layout_file_t *lf = &d->lf;
    d->sc.layout = lf->layout;
    for (unsigned i = 0; i < lf->ndev; i++) {
        uint32_t end = 0;
        for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
            const airlock_area_t *a = &lf->layout.area[id];
            if (a->flash == &lf->dev[i].flash && a->off + a->size > end) {
                end = a->off + a->size;
            }
        }
        if (end == 0) {
            continue;
        }
        airlock_sector_run_t runs[LAYOUT_MAX_RUNS];
        uint32_t nruns = 0, size = 0;
        for (uint32_t r = 0; r < lf->dev[i].flash.nruns && size < end; r++) {
            runs[nruns] = lf->dev[i].runs[r];
            uint32_t left = (end - size + runs[nruns].size - 1) / runs[nruns].size;
            if (runs[nruns].count > left) {
                runs[nruns].count = left;
            }
            size += runs[nruns].count * runs[nruns].size;
            nruns++;
        }
        airlock_sim_flash_geometry_t geo = {size, lf->dev[i].flash.write_size,
                                            lf->dev[i].flash.erased_val, runs, nruns};
        airlock_sim_flash_t *sim;
        int rc = airlock_sim_flash_create(&geo, &sim);
        if (rc) {
            return fail(rc == AIRLOCK_ERR_NOMEM ? EXIT_INTERNAL : EXIT_LAYOUT,
                        "cannot simulate flash %s of %s: %s", lf->dev[i].name, lf->source,
                        airlock_strerror(rc));
        }
        d->sc.sims[d->sc.nsims++] = sim;
        for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
            if (lf->layout.area[id].flash == &lf->dev[i].flash) {
                d->sc.layout.area[id].flash = airlock_sim_flash_port(sim);
            }
        }
    }
    airlock_err_detail_t det;
    memset(&det, 0, sizeof(det));
    if (airlock_layout_check(&d->sc.layout, &det) != 0) {
        layout_diag_t diag;
        layout_explain_check(lf, &det, &diag);
        return fail(EXIT_LAYOUT, "%s: %s", lf->source, diag.msg);
    }
    if (pc_init(&d->sc) != 0) {
        return fail(EXIT_INTERNAL, "cannot set up the power-cut harness");
    }
    return EXIT_OK_;
}

static void free_device(struct device *d)
{
    pc_free(&d->sc);
    for (size_t i = 0; i < d->sc.nsims; i++) {
        airlock_sim_flash_close(d->sc.sims[i]);
    }
}

/*
 * Why the engine cannot run on the layout: airlock_boot checks the
 * configuration (engine->check included) before touching flash.
 */
static int engine_unusable(struct device *d, int stage_rc)
{
    static uint8_t work[256];
    airlock_boot_cfg_t cfg;
    airlock_boot_t b;
    airlock_boot_result_t res;
    memset(&cfg, 0, sizeof(cfg));
    cfg.layout = &d->sc.layout;
    cfg.engine = d->sc.engine;
    cfg.crypto = d->sc.crypto;
    cfg.keys = d->sc.keys;
    cfg.nkeys = d->sc.nkeys;
    cfg.allow_unsigned = d->sc.nkeys == 0;
    cfg.max_trials = d->sc.max_trials;
    cfg.buf = work;
    cfg.buf_len = sizeof(work);
    cfg.ram = work; /* ram-load's check wants a RAM region; it is not used */
    cfg.ram_base = PC_RAM_BASE;
    cfg.ram_size = sizeof(work);
    int rc = airlock_boot(&b, &cfg, &res);
    const char *field = res.detail.field ? res.detail.field : airlock_strerror(rc ? rc : stage_rc);
    return fail(EXIT_LAYOUT, "engine %s cannot run on layout %s: %s", d->sc.engine->name,
                d->lf.source, field);
}

/* ---- progress -------------------------------------------------------------- */

struct progress {
    const char *what;
    double last;
    bool shown;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    double t = now_s();
    if (done < total && t - p->last < 0.1) {
        return;
    }
    p->last = t;
    p->shown = true;
    fprintf(stderr, "\r%-34s %llu/%llu runs", p->what, (unsigned long long)done,
            (unsigned long long)total);
    fflush(stderr);
}

static void end_progress(struct progress *p)
{
    if (p->shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        p->shown = false;
    }
}

/* ---- the proof ------------------------------------------------------------ */

static void row_name(const struct row *r, uint32_t max_cuts, char *out, size_t n)
{
    if (r->random) {
        snprintf(out, n, "%s, 1-%u random cuts", scenario_name[r->sc], (unsigned)max_cuts);
    } else {
        snprintf(out, n, "%s, every cut", scenario_name[r->sc]);
    }
}

static void set_scenario(pc_scenario_t *sc, enum scenario s)
{
    sc->permanent = s == SC_PERM;
    sc->confirm = s == SC_CONFIRM;
}

/*
 * Run one scenario: the uncut update first (it must work before cuts mean
 * anything), then every cut, then the random runs. Fills 1 or 2 rows.
 * Returns the rows filled, or -1 on a harness error.
 */
static int prove(struct device *d, const struct opts *o, enum scenario s, struct row *rows,
                 struct progress *prog)
{
    pc_run_t run;
    char name[96];
    set_scenario(&d->sc, s);
    memset(rows, 0, 2 * sizeof(*rows));
    rows[0].sc = s;
    rows[1].sc = s;
    rows[1].random = true;
    if (pc_run(&d->sc, NULL, 0, o->seed, &run) != 0) {
        return -1;
    }
    if (!run.ok) {
        rows[0].uncut_failed = true;
        rows[0].rep.tried = 1;
        rows[0].rep.failed = 1;
        rows[0].rep.first_failed_seed = o->seed;
        snprintf(rows[0].rep.first_failed_why, sizeof(rows[0].rep.first_failed_why), "%s", run.why);
        return 1;
    }
    row_name(&rows[0], o->max_cuts, name, sizeof(name));
    prog->what = name;
    if (pc_prove_single(&d->sc, o->seed, &rows[0].rep) != 0) {
        return -1;
    }
    /* pc_prove_single counts the uncut run too; it passed above. */
    rows[0].rep.tried--;
    rows[0].rep.passed--;
    end_progress(prog);
    if (o->random == 0) {
        return 1;
    }
    row_name(&rows[1], o->max_cuts, name, sizeof(name));
    if (pc_prove_random(&d->sc, o->random, o->max_cuts, o->seed, &rows[1].rep) != 0) {
        return -1;
    }
    end_progress(prog);
    return 2;
}

static void cuts_str(const pc_report_t *rep, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < rep->first_failed_ncuts && len < n; i++) {
        len += (size_t)snprintf(out + len, n - len, "%s%llu", i ? "," : "",
                                (unsigned long long)rep->first_failed_cuts[i]);
    }
}

/* The command line that repeats a failed row (alone, for a random run). */
static void repeat_cmd(const struct opts *o, const struct row *r, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n,
                                  "airlock powercut --layout %s --engine %s --old %s "
                                  "--new %s",
                                  o->layout, o->engine_name, o->old_path, o->new_path);
    for (size_t i = 0; i < o->nkeys && len < n; i++) {
        len += (size_t)snprintf(out + len, n - len, " --key %s", o->key_paths[i]);
    }
    if (o->allow_unsigned && len < n) {
        len += (size_t)snprintf(out + len, n - len, " --allow-unsigned");
    }
    if (o->trials != 1 && len < n) {
        len += (size_t)snprintf(out + len, n - len, " --trials %u", (unsigned)o->trials);
    }
    if (len < n) {
        len += (size_t)snprintf(out + len, n - len, " %s", scenario_opt[r->sc]);
    }
    if (len >= n) {
        return;
    }
    if (r->random) {
        snprintf(out + len, n - len, " --random 1 --max-cuts %u --seed %llu", (unsigned)o->max_cuts,
                 (unsigned long long)r->rep.first_failed_seed);
    } else {
        snprintf(out + len, n - len, " --seed %llu", (unsigned long long)o->seed);
    }
}

static json_t *image_json(const struct image *im)
{
    char ver[48];
    version_str(&im->img.hdr.version, ver, sizeof(ver));
    return json_pack("{s:s, s:s, s:I, s:I}", "file", im->path, "version", ver, "bytes",
                     (json_int_t)im->img.end, "file_bytes", (json_int_t)im->file_len);
}

static json_t *rows_json(const struct opts *o, const struct row *rows, size_t nrows)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        const pc_report_t *rep = &r->rep;
        char cmd[1024];
        json_t *e =
            json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I}", "scenario", scenario_key[r->sc],
                      "cuts", r->random ? "random" : "every", "max_cuts",
                      r->random ? (int)o->max_cuts : 1, "uncut_ops", (json_int_t)rep->uncut_ops,
                      "runs", (json_int_t)rep->tried, "passed", (json_int_t)rep->passed, "failed",
                      (json_int_t)rep->failed, "seed", (json_int_t)o->seed);
        if (r->uncut_failed) {
            json_object_set_new(e, "uncut_failed", json_true());
        }
        if (rep->failed) {
            json_t *cuts = json_array();
            for (uint32_t k = 0; k < rep->first_failed_ncuts; k++) {
                json_array_append_new(cuts, json_integer((json_int_t)rep->first_failed_cuts[k]));
            }
            repeat_cmd(o, r, cmd, sizeof(cmd));
            json_object_set_new(e, "first_failure",
                                json_pack("{s:I, s:o, s:s, s:s}", "seed",
                                          (json_int_t)rep->first_failed_seed, "cuts", cuts, "why",
                                          rep->first_failed_why, "repeat", cmd));
        }
        json_array_append_new(arr, e);
    }
    return arr;
}

static void print_table(const struct opts *o, const struct device *d, const struct image *old,
                        const struct image *new_, uint32_t stage_at, uint32_t max_len,
                        const struct row *rows, size_t nrows)
{
    char v1[48], v2[48], b1[24], b2[24], name[96];
    version_str(&old->img.hdr.version, v1, sizeof(v1));
    version_str(&new_->img.hdr.version, v2, sizeof(v2));
    printf("layout  %s, engine %s%s, %u trial boot%s, seed %llu\n", d->lf.source,
           d->sc.engine->name,
           d->sc.engine->caps & AIRLOCK_ENGINE_CAN_REVERT ? "" : " (cannot revert)",
           (unsigned)o->trials, o->trials == 1 ? "" : "s", (unsigned long long)o->seed);
    printf("old     %s: version %s, %s\n", old->path, v1,
           layout_size_str((uint32_t)old->img.end, b1));
    printf("new     %s: version %s, %s, staged at secondary + %u (room for %s)\n", new_->path, v2,
           layout_size_str((uint32_t)new_->img.end, b1), (unsigned)stage_at,
           layout_size_str(max_len, b2));
    printf("\n%-36s %9s %9s %9s %7s %6s\n", "scenario", "uncut ops", "cut runs", "passed", "failed",
           "seed");
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        row_name(r, o->max_cuts, name, sizeof(name));
        if (r->uncut_failed) {
            printf("%-36s %9s %9s %9s %7s %6llu\n", name, "FAILS", "-", "-", "-",
                   (unsigned long long)o->seed);
            continue;
        }
        printf("%-36s %9llu %9llu %9llu %7llu %6llu\n", name, (unsigned long long)r->rep.uncut_ops,
               (unsigned long long)r->rep.tried, (unsigned long long)r->rep.passed,
               (unsigned long long)r->rep.failed, (unsigned long long)o->seed);
    }
}

static void print_failures(const struct opts *o, const struct row *rows, size_t nrows)
{
    char name[96], cuts[256], cmd[1024];
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (!r->rep.failed) {
            continue;
        }
        row_name(r, o->max_cuts, name, sizeof(name));
        if (r->uncut_failed) {
            printf("\nFAILED %s: the update does not work even without a power cut: %s\n",
                   scenario_name[r->sc], r->rep.first_failed_why);
            continue;
        }
        cuts_str(&r->rep, cuts, sizeof(cuts));
        repeat_cmd(o, r, cmd, sizeof(cmd));
        printf("\nFAILED %s: %llu of %llu cut runs broke the device\n"
               "  first: seed %llu, cut at operation%s %s\n"
               "  what happened: %s\n"
               "  repeat: %s\n",
               name, (unsigned long long)r->rep.failed, (unsigned long long)r->rep.tried,
               (unsigned long long)r->rep.first_failed_seed,
               r->rep.first_failed_ncuts == 1 ? "" : "s", cuts, r->rep.first_failed_why, cmd);
    }
}

/* Checks the bootloader makes before installing, done up front with clear words. */
static int check_pair(const struct image *old, const struct image *new_)
{
    char v1[48], v2[48];
    if (old->img.end == new_->img.end && memcmp(old->data, new_->data, old->img.end) == 0) {
        return fail(EXIT_USAGE, "--old and --new are the same image: there is no update to "
                                "prove");
    }
    if (airlock_version_cmp(&new_->img.hdr.version, &old->img.hdr.version) < 0) {
        version_str(&old->img.hdr.version, v1, sizeof(v1));
        version_str(&new_->img.hdr.version, v2, sizeof(v2));
        return fail(EXIT_UNTRUSTED,
                    "new image %s (version %s) is older than the old image %s "
                    "(version %s): the bootloader refuses downgrades",
                    new_->path, v2, old->path, v1);
    }
    if (old->vr.has_sec_cnt && (!new_->vr.has_sec_cnt || new_->vr.sec_cnt < old->vr.sec_cnt)) {
        return fail(EXIT_UNTRUSTED,
                    "new image %s has security counter %s%u, below the old "
                    "image's %u: the bootloader refuses it",
                    new_->path, new_->vr.has_sec_cnt ? "" : "none, ", (unsigned)new_->vr.sec_cnt,
                    (unsigned)old->vr.sec_cnt);
    }
    return EXIT_OK_;
}

/*
 * ram-load boots only images linked for RAM (RAM_LOAD with a load address)
 * whose whole load range lies in the RAM region, here the harness's.
 */
static int check_ram_images(const struct image *old, const struct image *new_)
{
    for (int i = 0; i < 2; i++) {
        const struct image *im = i ? new_ : old;
        const airlock_image_header_t *h = &im->img.hdr;
        if (!(h->flags & AIRLOCK_IMAGE_F_RAM_LOAD) || h->load_addr < PC_RAM_BASE ||
            (uint64_t)(h->load_addr - PC_RAM_BASE) + im->img.end > PC_RAM_SIZE) {
            return fail(EXIT_USAGE,
                        "%s image %s is not linked for RAM (flags 0x%x, load address 0x%08x): "
                        "ram-load boots images whose RAM_LOAD range lies in RAM, simulated at "
                        "0x%08x-0x%08x; sign them with -L 0x%08x",
                        i ? "new" : "old", im->path, (unsigned)h->flags, (unsigned)h->load_addr,
                        PC_RAM_BASE, PC_RAM_BASE + PC_RAM_SIZE, PC_RAM_BASE);
        }
    }
    return EXIT_OK_;
}

static int run_proof(const struct opts *o, struct device *d, struct image *old, struct image *new_)
{
    uint32_t stage_at, max_len;
    int rc = pc_stage_limits(&d->sc, &stage_at, &max_len);
    if (rc) {
        return engine_unusable(d, rc);
    }
    for (int i = 0; i < 2; i++) {
        const struct image *im = i ? new_ : old;
        if (im->img.end > max_len) {
            char extra[96] = "";
            if (stage_at) {
                snprintf(extra, sizeof(extra),
                         ", and the %u bytes %s keeps free in front of "
                         "the staged update",
                         (unsigned)stage_at, d->sc.engine->name);
            }
            return fail(EXIT_TOO_BIG,
                        "%s image %s is %u bytes (%.1f KiB); with engine %s, layout %s takes "
                        "images of at most %u bytes (%.1f KiB: the smaller slot less its "
                        "trailer%s)",
                        i ? "new" : "old", im->path, (unsigned)im->img.end,
                        (double)im->img.end / 1024.0, d->sc.engine->name, d->lf.source,
                        (unsigned)max_len, (double)max_len / 1024.0, extra);
        }
    }
    if (d->sc.engine == &airlock_engine_ram_load && (rc = check_ram_images(old, new_)) != 0) {
        return rc;
    }
    d->sc.old_img = old->data;
    d->sc.old_len = old->img.end; /* padding or a trailer past the image is not loaded */
    d->sc.new_img = new_->data;
    d->sc.new_len = new_->img.end;

    struct progress prog = {"", 0, false};
    if (!o->json && isatty(STDERR_FILENO)) {
        d->sc.progress = show_progress;
        d->sc.progress_ctx = &prog;
    }
    struct row rows[2 * SC_COUNT];
    size_t nrows = 0;
    for (int s = 0; s < SC_COUNT; s++) {
        if (!o->want[s]) {
            continue;
        }
        int n = prove(d, o, (enum scenario)s, &rows[nrows], &prog);
        if (n < 0) {
            end_progress(&prog);
            return fail(EXIT_INTERNAL, "the power-cut harness failed to stage the images");
        }
        nrows += (size_t)n;
    }
    uint64_t tried = 0, failed = 0;
    for (size_t i = 0; i < nrows; i++) {
        tried += rows[i].rep.tried;
        failed += rows[i].rep.failed;
    }
    int code = failed ? EXIT_POWERCUT : EXIT_OK_;
    if (o->json) {
        json_t *j = json_pack(
            "{s:b, s:i, s:s, s:s, s:b, s:i, s:I, s:i, s:o, s:o, s:I, s:I, s:I, s:I}", "ok",
            failed == 0, "exit", code, "layout", d->lf.source, "engine", d->sc.engine->name,
            "can_revert", (d->sc.engine->caps & AIRLOCK_ENGINE_CAN_REVERT) != 0, "trials",
            (int)o->trials, "seed", (json_int_t)o->seed, "max_cuts", (int)o->max_cuts, "old",
            image_json(old), "new", image_json(new_), "stage_offset", (json_int_t)stage_at,
            "max_image", (json_int_t)max_len, "runs", (json_int_t)tried, "failed",
            (json_int_t)failed);
        json_object_set_new(j, "scenarios", rows_json(o, rows, nrows));
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s) {
            puts(s);
            free(s);
        }
        json_decref(j);
        return code;
    }
    print_table(o, d, old, new_, stage_at, max_len, rows, nrows);
    print_failures(o, rows, nrows);
    if (failed) {
        printf("\n");
        return cli_fail(EXIT_POWERCUT, "%llu of %llu runs broke the device",
                        (unsigned long long)failed, (unsigned long long)tried);
    }
    printf("\nall %llu cut runs passed: after every cut the device booted a verified image, byte "
           "for byte the old or the new one, settled as expected, and broke no flash rule\n",
           (unsigned long long)tried);
    return EXIT_OK_;
}

int cmd_powercut(int argc, char **argv)
{
    struct opts o;
    char engines[256];
    int rc = parse(argc, argv, &o);
    if (rc) {
        return rc < 0 ? EXIT_OK_ : rc;
    }
    json_mode = o.json;
    const airlock_engine_t *engine = airlock_engine_find(o.engine_name);
    if (!engine) {
        engine_list(engines, sizeof(engines));
        return fail(EXIT_USAGE, "unknown engine '%s'; engines: %s", o.engine_name, engines);
    }

    struct device *d = calloc(1, sizeof(*d));
    cli_key_t keys[MAX_KEYS];
    airlock_pubkey_t pub[MAX_KEYS];
    struct image old, new_;
    size_t nloaded = 0;
    memset(&old, 0, sizeof(old));
    memset(&new_, 0, sizeof(new_));
    memset(keys, 0, sizeof(keys));
    if (!d) {
        return fail(EXIT_INTERNAL, "out of memory");
    }
    layout_diag_t err;
    rc = layout_file_open(&d->lf, o.layout, &err);
    if (rc) {
        char where[320];
        layout_diag_where(&d->lf, &err, where, sizeof(where));
        rc = fail(rc == LAYOUT_E_IO || rc == LAYOUT_E_NOT_FOUND ? EXIT_IO : EXIT_LAYOUT, "%s: %s",
                  where, err.msg);
        free(d);
        return rc;
    }
    for (; nloaded < o.nkeys; nloaded++) {
        rc = cli_key_load(o.key_paths[nloaded], &keys[nloaded]);
        if (rc) {
            if (json_mode) {
                fail(rc, "cannot load key %s", o.key_paths[nloaded]);
            }
            goto out;
        }
        pub[nloaded].type = keys[nloaded].type;
        pub[nloaded].der = keys[nloaded].der;
        pub[nloaded].der_len = keys[nloaded].der_len;
    }
    rc = load_image(&old, "old", o.old_path, pub, o.nkeys);
    rc = rc ? rc : load_image(&new_, "new", o.new_path, pub, o.nkeys);
    rc = rc ? rc : check_pair(&old, &new_);
    rc = rc ? rc : build_device(d);
    if (rc == EXIT_OK_) {
        d->sc.engine = engine;
        d->sc.crypto = &airlock_crypto_openssl;
        d->sc.keys = o.nkeys ? pub : NULL;
        d->sc.nkeys = o.nkeys;
        d->sc.max_trials = o.trials;
        rc = run_proof(&o, d, &old, &new_);
    }
out:
    free_device(d);
    free(d);
    free(old.data);
    free(new_.data);
    for (size_t i = 0; i < nloaded; i++) {
        cli_key_free(&keys[i]);
    }
    return rc;
}
