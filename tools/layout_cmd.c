/*
 * `airlock layout check|show|list`: validate a flash layout file (or a
 * built-in by name) and describe it, print a built-in's text, list the
 * built-ins. Read-only: never writes a file or touches flash.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "layout_file.h"
#include "util.h"

/* imgtool's default --max-sectors: slots with more sectors need -M. */
#define DEFAULT_MAX_SECTORS 128u

static void layout_help(FILE *f)
{
    fprintf(f, "usage: airlock layout check FILE|NAME [--json] [--strict] [-q]\n"
               "       airlock layout show NAME\n"
               "       airlock layout list [--json]\n"
               "\n"
               "Flash layouts describe flash devices (size, sectors, write size) and where\n"
               "the bootloader, primary, secondary, scratch and status areas sit on them\n"
               "(docs/layout.md). NAME is a built-in layout; a file of that name wins.\n"
               "\n"
               "  check   parse and check a layout; print its devices, areas and warnings\n"
               "  show    print the text of a built-in layout (a starting point to copy)\n"
               "  list    list the built-in layouts\n"
               "\n"
               "Run 'airlock layout ACTION --help' for an action's options.\n"
               "Exit codes: 0 ok, 2 usage, 3 cannot read the file, 12 invalid layout\n"
               "(check --strict: also 12 when there are warnings).\n");
}

static void check_help(FILE *f)
{
    fprintf(f, "usage: airlock layout check FILE|NAME [--json] [--strict] [-q]\n"
               "\n"
               "Parse a layout file (or the built-in layout NAME when no such file exists),\n"
               "run every check, and describe the result: each flash with its sector map,\n"
               "each area with its offset, size and sectors, free gaps, the sign options\n"
               "the layout needs, and warnings about engines it rules out.\n"
               "\n"
               "      --json     print one JSON object on stdout (errors included)\n"
               "      --strict   treat warnings as errors (exit 12)\n"
               "  -q, --quiet    print nothing on success (warnings still go to stderr)\n"
               "  -h, --help     this help\n"
               "\n"
               "Exit codes: 0 valid, 2 usage, 3 file cannot be read or no such built-in,\n"
               "12 invalid layout (message names file:line:column and the rule broken).\n");
}

static void show_help(FILE *f)
{
    fprintf(f, "usage: airlock layout show NAME\n"
               "\n"
               "Print the text of the built-in layout NAME exactly as compiled in (it is the\n"
               "file layouts/NAME.layout of the source tree). Copy it to start your own:\n"
               "  airlock layout show nrf52840 > board.layout\n"
               "\n"
               "  -h, --help     this help\n");
}

static void list_help(FILE *f)
{
    fprintf(f, "usage: airlock layout list [--json]\n"
               "\n"
               "List the built-in layouts, one per line with its description.\n"
               "\n"
               "      --json     print a JSON array of {name, description}\n"
               "  -h, --help     this help\n");
}

enum { OPT_JSON = 256, OPT_STRICT };

static void print_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

/* "12 x 4 KiB" or "2 x 16 KiB + 1 x 64 KiB" for n runs. */
static void runs_str(const airlock_sector_run_t *runs, unsigned n, char *buf, size_t len)
{
    char b[24];

    buf[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%u x %s", i ? " + " : "", (unsigned)runs[i].count,
                 layout_size_str(runs[i].size, b));
    }
}

static const layout_device_t *device_of(const layout_file_t *lf, const airlock_flash_t *fl)
{
    for (unsigned i = 0; i < lf->ndev; i++) {
        if (&lf->dev[i].flash == fl) {
            return &lf->dev[i];
        }
    }
    return NULL;
}

/* Area ids on device d, sorted by offset. Returns how many. */
static int areas_on(const layout_file_t *lf, const layout_device_t *d, int *ids)
{
    int n = 0;

    for (int id = 0; id < LAYOUT_AREA_COUNT; id++) {
        const airlock_area_t *a = layout_area(lf, id);
        if (a && a->flash == &d->flash) {
            int j = n++;
            while (j > 0 && layout_area(lf, ids[j - 1])->off > a->off) {
                ids[j] = ids[j - 1];
                j--;
            }
            ids[j] = id;
        }
    }
    return n;
}

static unsigned area_sector_count(const layout_file_t *lf, int id)
{
    airlock_sector_run_t runs[LAYOUT_MAX_RUNS];
    unsigned n = layout_area_sectors(lf, id, runs, LAYOUT_MAX_RUNS), total = 0;

    for (unsigned i = 0; i < n && i < LAYOUT_MAX_RUNS; i++) {
        total += runs[i].count;
    }
    return total;
}

/* What `airlock sign` needs to produce images for this layout. */
struct sign_params {
    uint32_t slot_size; /* -S: the smaller slot */
    uint32_t align;     /* --align: largest write size of the slots' devices */
    uint32_t max_align; /* --max-align */
    unsigned sectors;   /* sectors of the larger slot: -M when above 128 */
};

static void sign_params(const layout_file_t *lf, struct sign_params *sp)
{
    const airlock_area_t *p = &lf->layout.area[AIRLOCK_AREA_PRIMARY];
    const airlock_area_t *s = &lf->layout.area[AIRLOCK_AREA_SECONDARY];
    unsigned np = area_sector_count(lf, AIRLOCK_AREA_PRIMARY);
    unsigned ns = area_sector_count(lf, AIRLOCK_AREA_SECONDARY);

    sp->slot_size = p->size < s->size ? p->size : s->size;
    sp->align =
        p->flash->write_size > s->flash->write_size ? p->flash->write_size : s->flash->write_size;
    sp->max_align = airlock_layout_max_align(&lf->layout);
    sp->sectors = np > ns ? np : ns;
}

static void print_text(const layout_file_t *lf)
{
    struct sign_params sp;
    bool based = false;
    char b1[24], b2[24], runs[256], where[300];
    int ids[LAYOUT_AREA_COUNT];
    unsigned nareas = 0;

    for (int id = 0; id < LAYOUT_AREA_COUNT; id++) {
        const airlock_area_t *a = layout_area(lf, id);
        nareas += a && a->flash != NULL;
    }
    printf("%s: valid layout, %u flash%s, %u areas\n", lf->source, lf->ndev,
           lf->ndev == 1 ? "" : "es", nareas);
    for (unsigned i = 0; i < lf->ndev; i++) {
        const layout_device_t *d = &lf->dev[i];
        runs_str(d->runs, d->flash.nruns, runs, sizeof(runs));
        printf("\nflash %s: %s (0x%x), write %u, erased 0x%02x", d->name,
               layout_size_str(d->flash.size, b1), (unsigned)d->flash.size,
               (unsigned)d->flash.write_size, (unsigned)d->flash.erased_val);
        if (d->base != 0) {
            printf(", mapped at 0x%08x", (unsigned)d->base);
            based = true;
        }
        printf("\n  sectors: %s\n", runs);
    }

    printf("\n%-11s %-10s %-10s %-10s %-22s %s\n", "area", "flash", "offset", "end", "size",
           based ? "sectors (address)" : "sectors");
    for (unsigned i = 0; i < lf->ndev; i++) {
        const layout_device_t *d = &lf->dev[i];
        int n = areas_on(lf, d, ids);
        uint32_t pos = 0;

        for (int k = 0; k <= n; k++) {
            const airlock_area_t *a = k < n ? layout_area(lf, ids[k]) : NULL;
            uint32_t start = a ? a->off : d->flash.size;
            char sz[40];

            if (start > pos) {
                snprintf(sz, sizeof(sz), "0x%06x (%s)", (unsigned)(start - pos),
                         layout_size_str(start - pos, b1));
                printf("%-11s %-10s 0x%06x   0x%06x   %s\n", "(free)", d->name, (unsigned)pos,
                       (unsigned)start, sz);
            }
            if (a == NULL) {
                break;
            }
            {
                airlock_sector_run_t r[LAYOUT_MAX_RUNS];
                unsigned nr = layout_area_sectors(lf, ids[k], r, LAYOUT_MAX_RUNS);
                runs_str(r, nr > LAYOUT_MAX_RUNS ? LAYOUT_MAX_RUNS : nr, runs, sizeof(runs));
            }
            snprintf(sz, sizeof(sz), "0x%06x (%s)", (unsigned)a->size,
                     layout_size_str(a->size, b2));
            printf("%-11s %-10s 0x%06x   0x%06x   %-22s %s", layout_area_name(ids[k]), d->name,
                   (unsigned)a->off, (unsigned)(a->off + a->size), sz, runs);
            if (based) {
                printf(" (0x%08x)", (unsigned)(d->base + a->off));
            }
            printf("\n");
            pos = a->off + a->size;
        }
    }

    sign_params(lf, &sp);
    printf("\nsign images with: -S 0x%x --align %u", (unsigned)sp.slot_size, (unsigned)sp.align);
    if (sp.max_align > 8 && sp.max_align != sp.align) {
        printf(" --max-align %u", (unsigned)sp.max_align);
    }
    if (sp.sectors > DEFAULT_MAX_SECTORS) {
        printf(" -M %u", sp.sectors);
    }
    printf("\n");
    if (sp.sectors > DEFAULT_MAX_SECTORS) {
        printf("  (slots have %u sectors, more than the default 128: the bootloader must be built\n"
               "   for at least %u, and -M must match it)\n",
               sp.sectors, sp.sectors);
    }
    if (lf->nwarn == 0) {
        printf("\nno warnings\n");
    } else {
        printf("\n%u warning%s:\n", lf->nwarn, lf->nwarn == 1 ? "" : "s");
        for (unsigned i = 0; i < lf->nwarn; i++) {
            printf("  %s: warning: %s [%s]\n",
                   layout_diag_where(lf, &lf->warn[i], where, sizeof(where)), lf->warn[i].msg,
                   layout_code_name(lf->warn[i].code));
        }
    }
}

static json_t *diag_json(const layout_diag_t *d)
{
    json_t *o = json_pack("{s:s, s:i, s:i, s:s}", "code", layout_code_name(d->code), "line",
                          (int)d->line, "column", (int)d->col, "message", d->msg);
    return o;
}

static json_t *layout_json(const layout_file_t *lf)
{
    struct sign_params sp;
    json_t *o = json_object(), *devs = json_array(), *areas = json_array(), *warns = json_array();

    for (unsigned i = 0; i < lf->ndev; i++) {
        const layout_device_t *d = &lf->dev[i];
        json_t *runs = json_array();
        for (uint32_t r = 0; r < d->flash.nruns; r++) {
            json_array_append_new(runs,
                                  json_pack("{s:I, s:I}", "count", (json_int_t)d->runs[r].count,
                                            "size", (json_int_t)d->runs[r].size));
        }
        json_array_append_new(devs, json_pack("{s:s, s:I, s:i, s:i, s:I, s:o, s:i}", "name",
                                              d->name, "size", (json_int_t)d->flash.size, "write",
                                              (int)d->flash.write_size, "erased",
                                              (int)d->flash.erased_val, "base", (json_int_t)d->base,
                                              "sectors", runs, "line", (int)d->line));
    }
    for (int id = 0; id < LAYOUT_AREA_COUNT; id++) {
        const airlock_area_t *a = layout_area(lf, id);
        airlock_sector_run_t r[LAYOUT_MAX_RUNS];
        unsigned nr;

        if (a == NULL || a->flash == NULL) {
            continue;
        }
        json_t *runs = json_array();
        nr = layout_area_sectors(lf, id, r, LAYOUT_MAX_RUNS);
        for (unsigned k = 0; k < nr && k < LAYOUT_MAX_RUNS; k++) {
            json_array_append_new(runs, json_pack("{s:I, s:I}", "count", (json_int_t)r[k].count,
                                                  "size", (json_int_t)r[k].size));
        }
        json_array_append_new(
            areas,
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:i}", "name", layout_area_name(id), "flash",
                      device_of(lf, a->flash)->name, "offset", (json_int_t)a->off, "size",
                      (json_int_t)a->size, "sector_count", (json_int_t)area_sector_count(lf, id),
                      "sectors", runs, "line", (int)lf->area_line[id]));
    }
    for (unsigned i = 0; i < lf->nwarn; i++) {
        json_array_append_new(warns, diag_json(&lf->warn[i]));
    }
    sign_params(lf, &sp);
    json_object_set_new(o, "flash", devs);
    json_object_set_new(o, "areas", areas);
    json_object_set_new(
        o, "sign",
        json_pack("{s:I, s:i, s:i, s:i}", "slot_size", (json_int_t)sp.slot_size, "align",
                  (int)sp.align, "max_align", (int)sp.max_align, "max_sectors",
                  (int)(sp.sectors > DEFAULT_MAX_SECTORS ? sp.sectors : DEFAULT_MAX_SECTORS)));
    json_object_set_new(o, "warnings", warns);
    return o;
}

/* Exit code for a layout_file error. */
static int exit_for(int rc)
{
    return (rc == LAYOUT_E_IO || rc == LAYOUT_E_NOT_FOUND) ? EXIT_IO : EXIT_LAYOUT;
}

static int do_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    layout_file_t lf;
    layout_diag_t err;
    bool json = false, strict = false, quiet = false;
    char where[300];
    int c, rc, code;

    while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case OPT_STRICT:
            strict = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            check_help(stdout);
            return EXIT_OK_;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (optind >= argc) {
        return cli_fail(EXIT_USAGE, "check: missing FILE or built-in NAME (see 'airlock layout "
                                    "list')");
    }
    if (optind + 1 < argc) {
        return cli_fail(EXIT_USAGE, "check: unexpected argument '%s' (one layout at a time)",
                        argv[optind + 1]);
    }

    rc = layout_file_open(&lf, argv[optind], &err);
    code = rc != 0 ? exit_for(rc) : (strict && lf.nwarn > 0) ? EXIT_LAYOUT : EXIT_OK_;
    layout_diag_where(&lf, &err, where, sizeof(where));
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "source", json_string(lf.source));
        json_object_set_new(o, "ok", json_boolean(code == EXIT_OK_));
        if (rc == 0) {
            json_t *body = layout_json(&lf);
            json_object_update(o, body);
            json_decref(body);
        } else {
            json_t *e = diag_json(&err);
            json_object_set_new(e, "exit", json_integer(code));
            json_object_set_new(o, "error", e);
        }
        print_json(o);
        json_decref(o);
        return code;
    }
    if (rc != 0) {
        return cli_fail(code, "%s: %s", where, err.msg);
    }
    if (!quiet) {
        print_text(&lf);
    } else {
        for (unsigned i = 0; i < lf.nwarn; i++) {
            fprintf(stderr, "airlock layout: warning: %s: %s\n",
                    layout_diag_where(&lf, &lf.warn[i], where, sizeof(where)), lf.warn[i].msg);
        }
    }
    if (code != EXIT_OK_) {
        return cli_fail(code, "%s: %u warning%s and --strict", lf.source, lf.nwarn,
                        lf.nwarn == 1 ? "" : "s");
    }
    return EXIT_OK_;
}

static int do_show(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct layout_builtin *b;
    int c;

    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            show_help(stdout);
            return EXIT_OK_;
        }
        return cli_bad_option(c, argv);
    }
    if (optind >= argc) {
        return cli_fail(EXIT_USAGE, "show: missing NAME (see 'airlock layout list')");
    }
    if (optind + 1 < argc) {
        return cli_fail(EXIT_USAGE, "show: unexpected argument '%s'", argv[optind + 1]);
    }
    b = layout_builtin_find(argv[optind]);
    if (b == NULL) {
        return cli_fail(EXIT_USAGE, "show: no built-in layout '%s' (see 'airlock layout list')",
                        argv[optind]);
    }
    fputs(b->text, stdout);
    return fflush(stdout) == 0 ? EXIT_OK_ : cli_fail(EXIT_IO, "show: cannot write to stdout");
}

static int do_list(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    json_t *arr;
    char desc[200];
    int c;

    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            list_help(stdout);
            return EXIT_OK_;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (optind < argc) {
        return cli_fail(EXIT_USAGE, "list: unexpected argument '%s'", argv[optind]);
    }
    arr = json ? json_array() : NULL;
    for (const struct layout_builtin *b = layout_builtins; b->name; b++) {
        layout_builtin_summary(b, desc, sizeof(desc));
        if (json) {
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s}", "name", b->name, "description", desc));
        } else {
            printf("%-15s %s\n", b->name, desc);
        }
    }
    if (json) {
        print_json(arr);
        json_decref(arr);
    }
    return EXIT_OK_;
}

int cmd_layout(int argc, char **argv)
{
    const char *action;

    if (argc < 2) {
        layout_help(stderr);
        return EXIT_USAGE;
    }
    action = argv[1];
    if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0 || strcmp(action, "help") == 0) {
        layout_help(stdout);
        return EXIT_OK_;
    }
    /* The action's options start after its name: argv[1] becomes its argv[0]. */
    if (strcmp(action, "check") == 0) {
        return do_check(argc - 1, argv + 1);
    }
    if (strcmp(action, "show") == 0) {
        return do_show(argc - 1, argv + 1);
    }
    if (strcmp(action, "list") == 0) {
        return do_list(argc - 1, argv + 1);
    }
    return cli_fail(EXIT_USAGE,
                    "unknown action '%s' (expected check, show or list; see "
                    "'airlock layout --help')",
                    action);
}
