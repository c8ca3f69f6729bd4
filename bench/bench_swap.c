/*
 * Install-engine cost: for every engine in airlock_engines[] and several image
 * sizes, run a TEST update, its revert and a PERM update on sim flash, and
 * report what the sim's own counters saw (erases, bytes programmed and read,
 * wear) with modelled flash time for an nRF52840 and an STM32F4 against the
 * physical limit. Host benchmark only; trusts no count an engine reports.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tests/common/imgbuild.h"
#include "airlock/boot.h"
#include "airlock/crypto_openssl.h"
#include "airlock/err.h"
#include "airlock/sim_flash.h"
#include "layout_file.h"

#ifndef AIRLOCK_SHARED_DIR
#define AIRLOCK_SHARED_DIR "../shared"
#endif

#define KIB 1024u
#define HDR_SIZE 32u
#define MAX_ROWS 256

/* ---- flash timing models ------------------------------------------------ */

/*
 * Time a part takes to erase one sector and to program one 32-bit word.
 * Sources (also printed under the table and written to the JSON):
 *
 * nRF52840: Product Specification (v1.x), NVMC electrical specification:
 *   tERASEPAGE 85 ms per 4 KiB page, tWRITE 41 us per 32-bit word.
 *
 * STM32F4: STM32F405/407 datasheet DS8626, table "Flash memory programming"
 *   (section 6.3.12 in Rev 12), typical values at program/erase parallelism
 *   x32 (VDD 2.7-3.6 V): tprog 16 us per word, tERASE16KB 250 ms,
 *   tERASE64KB 550 ms, tERASE128KB 1 s. At x8 (1.8-2.1 V) the same table
 *   gives 400 ms / 1.2 s / 2 s and 16 us per byte: erases about 2x, programs
 *   4x slower than modelled here.
 */
struct part_model {
    const char *name;
    const char *source;
    double word_us; /* program one 32-bit word */
    struct {
        uint32_t size;
        double ms;
    } erase[3];
};

static const struct part_model nrf52840_model = {
    "nRF52840",
    "nRF52840 Product Specification, NVMC electrical specification: tERASEPAGE 85 ms "
    "(4 KiB page), tWRITE 41 us (32-bit word)",
    41.0,
    {{4 * KIB, 85.0}, {0, 0}, {0, 0}},
};

static const struct part_model stm32f4_model = {
    "STM32F4 (x32)",
    "STMicroelectronics DS8626 (STM32F405/407 datasheet), table 'Flash memory programming', "
    "typical at x32 parallelism (2.7-3.6 V): tERASE16KB 250 ms, tERASE64KB 550 ms, "
    "tERASE128KB 1 s, tprog 16 us per 32-bit word (as commonly quoted from that table; "
    "check your part's datasheet)",
    16.0,
    {{16 * KIB, 250.0}, {64 * KIB, 550.0}, {128 * KIB, 1000.0}},
};

/* Erase time of one sector; sizes the model does not list scale linearly. */
static double erase_ms(const struct part_model *m, uint32_t size)
{
    for (int i = 0; i < 3; i++) {
        if (m->erase[i].size == size) {
            return m->erase[i].ms;
        }
    }
    return m->erase[0].ms * (double)size / (double)m->erase[0].size;
}

static double prog_ms(const struct part_model *m, uint64_t bytes)
{
    return (double)((bytes + 3u) / 4u) * m->word_us / 1000.0;
}

/* ---- devices -------------------------------------------------------------- */

/*
 * A port wrapped around the sim's: passes every call through and keeps a
 * modelled clock, so the watchdog callback can report the longest flash time
 * between two feeds. Counting is left to the sim.
 */
struct shim {
    const airlock_flash_t *inner;
    airlock_flash_t port;
    const struct part_model *model;
    double t_ms;
    double last_feed_ms;
    double max_gap_ms;
    uint32_t feeds;
};

static int shim_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    const struct shim *s = ctx;
    return s->inner->read(s->inner->ctx, addr, buf, len);
}

static int shim_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    struct shim *s = ctx;
    s->t_ms += prog_ms(s->model, len);
    return s->inner->prog(s->inner->ctx, addr, buf, len);
}

static int shim_erase(void *ctx, uint32_t addr)
{
    struct shim *s = ctx;
    uint32_t start, size;
    if (airlock_flash_sector(s->inner, addr, &start, &size) == 0) {
        s->t_ms += erase_ms(s->model, size);
    }
    return s->inner->erase(s->inner->ctx, addr);
}

static int shim_sync(void *ctx)
{
    const struct shim *s = ctx;
    return s->inner->sync ? s->inner->sync(s->inner->ctx) : 0;
}

static void watchdog_feed(void *ctx)
{
    struct shim *s = ctx;
    double gap = s->t_ms - s->last_feed_ms;
    if (gap > s->max_gap_ms) {
        s->max_gap_ms = gap;
    }
    s->last_feed_ms = s->t_ms;
    s->feeds++;
}

static void shim_restart(struct shim *s)
{
    s->t_ms = s->last_feed_ms = s->max_gap_ms = 0;
    s->feeds = 0;
}

struct size_case {
    uint32_t image_len; /* header to last TLV */
    const char *label;
};

struct device {
    const char *name;
    const char *about;
    const char *text; /* layout file text */
    const struct part_model *model;
    uint32_t max_sectors; /* imgtool -M */
    struct size_case sizes[4];
    size_t nsizes;
    layout_file_t lf;
    airlock_sim_flash_t *sim;
    struct shim shim;
};

/*
 * Uniform 4 KiB sectors, nRF52840-like (write 4), grown so a 256-sector
 * (1 MiB) image fits: slots of 260 sectors leave room for the trailer and
 * for engines that need a spare sector (swap-2n's staging chunk, swap-move's
 * move sector). Images need -M 260.
 */
static const char uniform_text[] =
    "# uniform: 535 x 4 KiB pages, write 4 (nRF52840-like pages, more of them)\n"
    "flash internal size=2140K sectors=535x4K write=4 erased=0xff\n"
    "bootloader internal 0x000000 48K\n"
    "primary    internal 0x00C000 1040K   # 260 sectors\n"
    "secondary  internal 0x110000 1040K   # 260 sectors\n"
    "status     internal 0x214000 8K\n"
    "scratch    internal 0x216000 4K\n";

/*
 * STM32F42x/43x-like: 2 MiB, two banks of 4x16K, 1x64K, 7x128K, write 1.
 * The built-in stm32f4 layout (1 MiB, 384 KiB slots) cannot hold a 512 KiB
 * image, so this one keeps its shape (bootloader and status on 16 KiB
 * sectors, slots on 128 KiB sectors, one 128 KiB scratch sector) on the
 * 2 MiB part: six-sector slots, primary in bank 1, secondary in bank 2.
 */
static const char stm32f4_text[] =
    "# STM32F42x-like: 2 MiB, 2 banks of 4x16K,1x64K,7x128K, byte writes\n"
    "flash internal size=2M sectors=4x16K,1x64K,7x128K,4x16K,1x64K,7x128K write=1 erased=0xff "
    "base=0x08000000\n"
    "bootloader internal 0x000000 32K     # sectors 0-1\n"
    "status     internal 0x008000 32K     # sectors 2-3\n"
    "primary    internal 0x020000 768K    # sectors 5-10\n"
    "scratch    internal 0x0E0000 128K    # sector 11\n"
    "secondary  internal 0x120000 768K    # sectors 17-22\n";

static struct device devices[] = {
    {
        .name = "uniform-4K",
        .about = "535 x 4 KiB, write 4, slots 260 sectors, status 2, scratch 1",
        .text = uniform_text,
        .model = &nrf52840_model,
        .max_sectors = 260,
        .sizes = {{1 * 4 * KIB, "1x4K"},
                  {16 * 4 * KIB, "16x4K"},
                  {64 * 4 * KIB, "64x4K"},
                  {256 * 4 * KIB, "256x4K"}},
        .nsizes = 4,
    },
    {
        .name = "stm32f4-2M",
        .about = "STM32F42x-like 2 MiB (4x16K,1x64K,7x128K per bank), write 1, slots 6 x 128 KiB",
        .text = stm32f4_text,
        .model = &stm32f4_model,
        .max_sectors = 0,
        .sizes = {{512 * KIB, "4x128K"}},
        .nsizes = 1,
    },
};
#define NDEVICES (sizeof(devices) / sizeof(devices[0]))

static _Noreturn void fatal(const char *what, const char *detail)
{
    fprintf(stderr, "bench_swap: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void device_open(struct device *d)
{
    layout_diag_t err;
    if (layout_file_parse(&d->lf, d->name, d->text, strlen(d->text), &err) != 0) {
        fatal("layout does not parse", err.msg);
    }
    const airlock_flash_t *g = &d->lf.dev[0].flash;
    airlock_sim_flash_geometry_t geo = {g->size, g->write_size, g->erased_val, g->runs, g->nruns};
    if (d->lf.ndev != 1 || airlock_sim_flash_create(&geo, &d->sim) != 0) {
        fatal("cannot create the sim flash for", d->name);
    }
    d->shim.inner = airlock_sim_flash_port(d->sim);
    d->shim.port = *d->shim.inner;
    d->shim.port.ctx = &d->shim;
    d->shim.port.read = shim_read;
    d->shim.port.prog = shim_prog;
    d->shim.port.erase = shim_erase;
    d->shim.port.sync = shim_sync;
    d->shim.model = d->model;
    if (layout_file_set_ops(&d->lf, 0, &d->shim.port) != 0) {
        fatal("cannot attach the sim to", d->name);
    }
}

static const airlock_area_t *area(const struct device *d, int id)
{
    return &d->lf.layout.area[id];
}

/* ---- images --------------------------------------------------------------- */

static tu_key_t key;

/*
 * RAM for the ram-load engine: images are built to load at RAM_BASE and the
 * engine copies them into ram[] (a host buffer standing for the device's RAM).
 */
#define RAM_BASE 0x20000000u
#define RAM_SIZE (2u * 1024u * KIB)
static uint8_t *ram;

/* Engines that run images from RAM want images linked for it. */
static bool wants_ram_image(const airlock_engine_t *e)
{
    return strcmp(e->name, "ram-load") == 0;
}

/* A signed image of exactly len bytes (Ed25519: deterministic). */
static uint8_t *make_image(uint32_t len, uint8_t minor, uint32_t seed, uint32_t load_addr)
{
    tu_image_spec_t s = {
        .version = {1, minor, 0, 0},
        .payload_len = 0,
        .hdr_size = HDR_SIZE,
        .seed = seed,
        .with_sec_cnt = 1,
        .sec_cnt = minor + 1u,
        .key = &key,
        .load_addr = load_addr,
    };
    size_t got;
    uint32_t overhead = (uint32_t)tu_image_len(&s);
    if (len <= overhead + 16) {
        fatal("image size too small", NULL);
    }
    s.payload_len = len - overhead;
    uint8_t *im = tu_image_build(&s, &got);
    if (im && got != len) { /* the builder reports the longest signature */
        free(im);
        s.payload_len += len - (uint32_t)got;
        im = tu_image_build(&s, &got);
    }
    if (!im || got != len) {
        fatal("cannot build an image", NULL);
    }
    return im;
}

/* ---- one measured boot ------------------------------------------------------ */

enum phase_id { PH_TEST, PH_REVERT, PH_PERM, PH_COUNT };
static const char *const phase_name[PH_COUNT] = {"test", "revert", "perm"};

#define AREA_OTHER AIRLOCK_AREA_COUNT

struct row {
    const char *device;
    const char *engine;
    const char *size_label;
    uint32_t image_len;
    uint32_t image_sectors; /* primary sectors the image spans */
    int phase;
    const char *status; /* "ok", "n/a", "skipped", "FAILED" */
    char note[160];
    /* the sim's counts */
    airlock_sim_flash_counts_t c;
    uint64_t area_erases[AIRLOCK_AREA_COUNT + 1];
    uint64_t max_erases;
    int max_erases_area;
    /* the engine's own counts, for comparison only */
    airlock_boot_stats_t claimed;
    /* model */
    const char *model;
    double model_s;
    int limit_copies; /* 2: revertible swap, 1: the primary rewritten once */
    uint32_t limit_erases;
    uint64_t limit_prog;
    double limit_s;
    double wd_gap_s;
    uint32_t feeds;
    int action;
};

static struct row rows[MAX_ROWS];
static size_t nrows;
static int failures;

static struct row *new_row(const struct device *d, const airlock_engine_t *e,
                           const struct size_case *sz, int phase)
{
    if (nrows == MAX_ROWS) {
        fatal("too many rows", NULL);
    }
    struct row *r = &rows[nrows++];
    memset(r, 0, sizeof(*r));
    r->device = d->name;
    r->engine = e->name;
    r->size_label = sz ? sz->label : "-";
    r->image_len = sz ? sz->image_len : 0;
    r->phase = phase;
    r->status = "ok";
    r->model = d->model->name;
    return r;
}

static int area_of(const struct device *d, uint32_t addr)
{
    for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
        const airlock_area_t *a = area(d, id);
        if (a->flash && addr >= a->off && addr - a->off < a->size) {
            return id;
        }
    }
    return AREA_OTHER;
}

/* Physical limit: n erases and len bytes per copy of the image into a slot. */
static void set_limit(const struct device *d, struct row *r, int copies)
{
    const airlock_area_t *p = area(d, AIRLOCK_AREA_PRIMARY);
    double ms = 0;
    uint32_t n = 0;
    for (uint32_t off = 0; off < r->image_len;) {
        uint32_t start, size;
        if (airlock_flash_sector(p->flash, p->off + off, &start, &size) != 0) {
            fatal("bad sector map", d->name);
        }
        ms += erase_ms(d->model, size);
        n++;
        off = start + size - p->off;
    }
    r->image_sectors = n;
    r->limit_copies = copies;
    r->limit_erases = n * (uint32_t)copies;
    r->limit_prog = (uint64_t)r->image_len * (uint64_t)copies;
    r->limit_s = (double)copies * (ms + prog_ms(d->model, r->image_len)) / 1000.0;
}

/* Fill r from the sim's counters since the last reset. */
static void collect(struct device *d, struct row *r, const airlock_boot_t *b)
{
    airlock_sim_flash_counts(d->sim, &r->c);
    double ms = prog_ms(d->model, r->c.prog_bytes);
    uint32_t n = airlock_sim_flash_nsectors(d->sim);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t start, size;
        airlock_sim_flash_counts_t sc;
        airlock_sim_flash_sector(d->sim, i, &start, &size, &sc);
        if (sc.erases) {
            r->area_erases[area_of(d, start)] += sc.erases;
            ms += (double)sc.erases * erase_ms(d->model, size);
        }
    }
    uint32_t worst = 0, wstart = 0;
    r->max_erases = airlock_sim_flash_max_erases(d->sim, &worst);
    airlock_sim_flash_sector(d->sim, worst, &wstart, NULL, NULL);
    r->max_erases_area = r->max_erases ? area_of(d, wstart) : -1;
    r->model_s = ms / 1000.0;
    r->claimed = b->stats;
    watchdog_feed(&d->shim); /* the tail after the last feed counts too */
    r->wd_gap_s = d->shim.max_gap_ms / 1000.0;
    r->feeds = d->shim.feeds - 1u;
}

static void make_cfg(struct device *d, const airlock_engine_t *e, airlock_boot_cfg_t *cfg)
{
    static uint8_t work[4096];
    memset(cfg, 0, sizeof(*cfg));
    cfg->layout = &d->lf.layout;
    cfg->engine = e;
    cfg->crypto = &airlock_crypto_openssl;
    cfg->keys = &key.pub;
    cfg->nkeys = 1;
    cfg->max_trials = 1;
    cfg->max_sectors = d->max_sectors;
    cfg->watchdog_feed = watchdog_feed;
    cfg->watchdog_ctx = &d->shim;
    cfg->buf = work;
    cfg->buf_len = sizeof(work);
    cfg->ram = ram;
    cfg->ram_base = RAM_BASE;
    cfg->ram_size = RAM_SIZE;
}

static bool same_version(const airlock_version_t *a, const airlock_version_t *b)
{
    return a->major == b->major && a->minor == b->minor && a->revision == b->revision &&
           a->build == b->build;
}

/* Does what the bootloader hands over (a slot, or RAM for ram-load) hold exactly img? */
static bool hands_over(struct device *d, const airlock_boot_result_t *res, const uint8_t *img,
                       uint32_t len)
{
    if (res->ram_len > 0) {
        return res->ram_addr >= RAM_BASE && res->ram_len == len &&
               (uint64_t)(res->ram_addr - RAM_BASE) + len <= RAM_SIZE &&
               memcmp(ram + (res->ram_addr - RAM_BASE), img, len) == 0;
    }
    if (res->slot < 0 || res->slot >= AIRLOCK_AREA_COUNT || res->image_off < HDR_SIZE) {
        return false;
    }
    const airlock_area_t *a = area(d, res->slot);
    uint32_t at = res->image_off - HDR_SIZE;
    if ((uint64_t)at + len > a->size) {
        return false;
    }
    return memcmp(airlock_sim_flash_data(d->sim) + a->off + at, img, len) == 0;
}

/*
 * Factory state: blank flash, old image in the primary, one normal boot (it
 * formats the journal, as the device's first boot did long ago).
 */
static int factory(struct device *d, const airlock_boot_cfg_t *cfg, const uint8_t *old_img,
                   uint32_t len, airlock_boot_result_t *res)
{
    airlock_boot_t b;
    airlock_sim_flash_wipe(d->sim);
    airlock_sim_flash_reset_counts(d->sim);
    const airlock_area_t *p = area(d, AIRLOCK_AREA_PRIMARY);
    if (airlock_sim_flash_load(d->sim, p->off, old_img, len) != 0) {
        fatal("cannot stage the old image", NULL);
    }
    return airlock_boot(&b, cfg, res);
}

/* Put the update where the engine wants it and ask for it. */
static int request(struct device *d, const airlock_boot_cfg_t *cfg, const uint8_t *new_img,
                   uint32_t len, bool permanent, char *why, size_t cap)
{
    uint32_t at, max_len;
    int rc = airlock_boot_stage(cfg, &at, &max_len);
    if (rc) {
        snprintf(why, cap, "airlock_boot_stage: %s", airlock_errname(rc));
        return rc;
    }
    if (len > max_len) {
        snprintf(why, cap, "image does not fit: this engine takes at most %u bytes here",
                 (unsigned)max_len);
        return AIRLOCK_ERR_TOO_BIG;
    }
    const airlock_area_t *s = area(d, AIRLOCK_AREA_SECONDARY);
    if (airlock_sim_flash_load(d->sim, s->off + at, new_img, len) != 0) {
        fatal("cannot stage the new image", NULL);
    }
    rc = airlock_boot_request(&d->lf.layout, cfg->max_sectors, permanent);
    if (rc) {
        snprintf(why, cap, "airlock_boot_request: %s", airlock_errname(rc));
    }
    return rc;
}

/* One measured boot: counters from zero, then check what it handed over. */
static void measured_boot(struct device *d, const airlock_boot_cfg_t *cfg, struct row *r,
                          int want_action, const uint8_t *want_img, uint8_t want_minor)
{
    airlock_boot_t b;
    airlock_boot_result_t res;
    airlock_sim_flash_reset_counts(d->sim);
    shim_restart(&d->shim);
    int rc = airlock_boot(&b, cfg, &res);
    collect(d, r, &b);
    r->action = res.action;
    airlock_version_t want = {1, want_minor, 0, 0};
    const char *viol = airlock_sim_flash_violation_str(d->sim);
    /* What must hold is the image handed over; the action name is reported. */
    if (rc != 0 || !same_version(&res.version, &want) ||
        !hands_over(d, &res, want_img, r->image_len) || viol[0]) {
        r->status = "FAILED";
        snprintf(r->note, sizeof(r->note), "%s (%s), booted %u.%u, expected %s of %u.%u%s%s",
                 airlock_boot_action_name(res.action), airlock_errname(rc), res.version.major,
                 res.version.minor, airlock_boot_action_name(want_action), 1u, want_minor,
                 viol[0] ? "; " : "", viol);
        failures++;
    } else if (res.action != want_action) {
        snprintf(r->note, sizeof(r->note), "action '%s' (expected '%s')",
                 airlock_boot_action_name(res.action), airlock_boot_action_name(want_action));
    }
}

static void run_case(struct device *d, const airlock_engine_t *e, const struct size_case *sz)
{
    airlock_boot_cfg_t cfg;
    airlock_boot_result_t res;
    char why[160];
    uint32_t load = wants_ram_image(e) ? RAM_BASE : 0;
    uint8_t *old_img = make_image(sz->image_len, 0, 1, load);
    uint8_t *new_img = make_image(sz->image_len, 1, 2, load);
    make_cfg(d, e, &cfg);

    /*
     * TEST, then a boot without confirmation: the revert. An engine that
     * keeps no old image installs a TEST for good: its limit is one copy.
     */
    bool reverts = (e->caps & AIRLOCK_ENGINE_CAN_REVERT) != 0;
    struct row *t = new_row(d, e, sz, PH_TEST);
    set_limit(d, t, reverts ? 2 : 1);
    int rc = factory(d, &cfg, old_img, sz->image_len, &res);
    if (rc == 0) {
        rc = request(d, &cfg, new_img, sz->image_len, false, why, sizeof(why));
    } else {
        snprintf(why, sizeof(why), "factory boot: %s (%s)", airlock_errname(rc), res.message);
    }
    if (rc) {
        t->status = rc == AIRLOCK_ERR_TOO_BIG ? "skipped" : "FAILED";
        failures += rc != AIRLOCK_ERR_TOO_BIG;
        snprintf(t->note, sizeof(t->note), "%s", why);
        free(old_img);
        free(new_img);
        return;
    }
    measured_boot(d, &cfg, t, AIRLOCK_BOOT_INSTALLED, new_img, 1);
    if (!reverts && !t->note[0]) {
        snprintf(t->note, sizeof(t->note), "no revert: installs for good, 1-copy limit");
    }

    struct row *v = new_row(d, e, sz, PH_REVERT);
    set_limit(d, v, 1);
    if (!reverts) {
        v->status = "n/a";
        snprintf(v->note, sizeof(v->note), "keeps no old image: a TEST update installs for good");
    } else if (strcmp(t->status, "ok") != 0) {
        v->status = "skipped";
        snprintf(v->note, sizeof(v->note), "the TEST install failed");
    } else {
        measured_boot(d, &cfg, v, AIRLOCK_BOOT_REVERTED, old_img, 0);
    }

    /* PERM from a fresh factory state. */
    struct row *p = new_row(d, e, sz, PH_PERM);
    set_limit(d, p, 1);
    rc = factory(d, &cfg, old_img, sz->image_len, &res);
    if (rc == 0) {
        rc = request(d, &cfg, new_img, sz->image_len, true, why, sizeof(why));
    }
    if (rc) {
        p->status = "FAILED";
        snprintf(p->note, sizeof(p->note), "%s", why);
        failures++;
    } else {
        measured_boot(d, &cfg, p, AIRLOCK_BOOT_INSTALLED, new_img, 1);
    }
    free(old_img);
    free(new_img);
}

/* An engine that refuses the layout gets one "skipped" row saying why. */
static bool engine_fits(struct device *d, const airlock_engine_t *e)
{
    airlock_boot_cfg_t cfg;
    uint32_t at, max_len;
    make_cfg(d, e, &cfg);
    int rc = airlock_boot_stage(&cfg, &at, &max_len);
    if (rc == 0) {
        return true;
    }
    airlock_boot_t b;
    airlock_boot_result_t res;
    airlock_sim_flash_wipe(d->sim);
    airlock_boot(&b, &cfg, &res); /* only for res.detail */
    struct row *r = new_row(d, e, NULL, PH_TEST);
    r->status = "skipped";
    snprintf(r->note, sizeof(r->note), "engine refuses this layout: %s%s%s", airlock_errname(rc),
             res.detail.field ? ", " : "", res.detail.field ? res.detail.field : "");
    return false;
}

/* ---- output ----------------------------------------------------------------- */

static const char *area_short(int id)
{
    static const char *const names[] = {"boot", "P", "S", "scr", "st", "other"};
    return id >= 0 && id <= AREA_OTHER ? names[id] : "-";
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0.0;
}

static void print_table(void)
{
    printf("\n%-10s %-12s %-6s %-6s %6s %-18s %5s %9s %5s %9s %-8s %8s %8s %5s %7s\n", "layout",
           "engine", "image", "phase", "erases", "P+S+scr+st+other", "x lim", "prog KiB", "x img",
           "read KiB", "max/sec", "model s", "limit s", "x lim", "wd gap");
    const char *last = "";
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (strcmp(last, r->device) != 0 && i > 0) {
            printf("\n");
        }
        last = r->device;
        if (strcmp(r->status, "ok") != 0 && r->c.erases == 0 && r->c.prog_bytes == 0) {
            printf("%-10s %-12s %-6s %-6s   %s: %s\n", r->device, r->engine, r->size_label,
                   phase_name[r->phase], r->status, r->note);
            continue;
        }
        char split[40], wear[16];
        snprintf(split, sizeof(split), "%llu+%llu+%llu+%llu+%llu",
                 (unsigned long long)r->area_erases[AIRLOCK_AREA_PRIMARY],
                 (unsigned long long)r->area_erases[AIRLOCK_AREA_SECONDARY],
                 (unsigned long long)r->area_erases[AIRLOCK_AREA_SCRATCH],
                 (unsigned long long)r->area_erases[AIRLOCK_AREA_STATUS],
                 (unsigned long long)(r->area_erases[AIRLOCK_AREA_BOOTLOADER] +
                                      r->area_erases[AREA_OTHER]));
        snprintf(wear, sizeof(wear), "%llu %s", (unsigned long long)r->max_erases,
                 area_short(r->max_erases_area));
        printf("%-10s %-12s %-6s %-6s %6llu %-18s %5.2f %9.1f %5.2f %9.1f %-8s %8.2f %8.2f %5.2f "
               "%6.2fs%s%s\n",
               r->device, r->engine, r->size_label, phase_name[r->phase],
               (unsigned long long)r->c.erases, split, ratio((double)r->c.erases, r->limit_erases),
               (double)r->c.prog_bytes / KIB, ratio((double)r->c.prog_bytes, r->image_len),
               (double)r->c.read_bytes / KIB, wear, r->model_s, r->limit_s,
               ratio(r->model_s, r->limit_s), r->wd_gap_s, r->note[0] ? "  " : "", r->note);
    }
}

static void print_notes(void)
{
    printf("\nCounts are the sim flash's own (airlock_sim_flash_counts), for the one airlock_boot "
           "call\nthat does the work; the agent's download into the secondary and the "
           "request/confirm marks\nare not included. image: sectors x sector size (the image, "
           "header to last TLV, fills them\nexactly). phase: test = TEST install, revert = the "
           "next boot without confirmation, perm =\nPERM install from a fresh state. P+S+scr+st+"
           "other: erases per area. max/sec: most erases\nany one sector took, and its area. "
           "x img: bytes programmed / image bytes.\n");
    printf(
        "x lim: against the physical limit of the phase. test (revertible): 2 erases per image "
        "sector\nand 2 x the image programmed (the old image must be written somewhere, the new "
        "one into\nthe primary). revert and perm: 1 erase per sector and 1 x the image (only "
        "the primary must\nbe rewritten). An engine without revert installs a TEST for good: "
        "its limit is one copy.\nEngines that select a slot (direct-xip, ram-load) move nothing: "
        "their x lim is 0. Time =\nerases x sector erase time + bytes/4 x word program time; "
        "reads and hashing are not\nmodelled. wd gap: longest modelled flash time between two "
        "watchdog feeds (and from the start\nof the boot to the first, and from the last to its "
        "end).\n");
    printf("\nModels:\n  uniform-4K: %s\n  stm32f4-2M: %s\n", nrf52840_model.source,
           stm32f4_model.source);
    printf("\nMCUboot reference, for comparison (figures supplied with this benchmark's brief, not "
           "measured\nhere): a 256-sector upgrade on 4 KiB sectors takes swap-scratch 771 erases, "
           "swap-move 770,\nswap-offset 514, overwrite-only 266; swap-scratch and swap-move "
           "program about 3x the image,\nswap-offset about 2x.\n");
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', f);
        }
        fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void write_json(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fatal("cannot write", path);
    }
    char date[64];
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "{\n  \"benchmark\": \"swap\",\n  \"date\": \"%s\",\n", date);
    fprintf(f, "  \"units\": \"counts from the sim flash for the one airlock_boot call that does "
               "the work; times are modelled seconds\",\n");
    fprintf(f, "  \"layouts\": [\n");
    for (size_t i = 0; i < NDEVICES; i++) {
        fprintf(f, "    {\"name\": \"%s\", \"about\": ", devices[i].name);
        json_str(f, devices[i].about);
        fprintf(f, ", \"model\": \"%s\", \"model_source\": ", devices[i].model->name);
        json_str(f, devices[i].model->source);
        fprintf(f, ", \"max_sectors\": %u, \"layout_text\": ", (unsigned)devices[i].max_sectors);
        json_str(f, devices[i].text);
        fprintf(f, "}%s\n", i + 1 < NDEVICES ? "," : "");
    }
    fprintf(f, "  ],\n  \"limits\": \"test: 2 erases per image sector, 2 x image bytes; revert "
               "and perm: 1 erase per sector, 1 x image bytes\",\n");
    fprintf(f, "  \"mcuboot_reference\": {\"note\": \"figures supplied with the benchmark brief, "
               "not measured here\", \"sectors\": 256, \"sector_size\": 4096, "
               "\"erases\": {\"swap-scratch\": 771, \"swap-move\": 770, \"swap-offset\": 514, "
               "\"overwrite-only\": 266}, \"prog_x_image\": {\"swap-scratch\": 3, "
               "\"swap-move\": 3, \"swap-offset\": 2}},\n");
    fprintf(f, "  \"rows\": [\n");
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        fprintf(f,
                "    {\"layout\": \"%s\", \"engine\": \"%s\", \"image\": \"%s\", "
                "\"image_bytes\": %u, \"image_sectors\": %u, \"phase\": \"%s\", "
                "\"status\": \"%s\", \"note\": ",
                r->device, r->engine, r->size_label, (unsigned)r->image_len,
                (unsigned)r->image_sectors, phase_name[r->phase], r->status);
        json_str(f, r->note);
        if (strcmp(r->status, "ok") != 0 && r->c.erases == 0 && r->c.prog_bytes == 0) {
            fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
            continue;
        }
        fprintf(f, ", \"action\": \"%s\", \"erases\": %llu, \"erases_by_area\": {",
                airlock_boot_action_name(r->action), (unsigned long long)r->c.erases);
        for (int id = 0; id <= AREA_OTHER; id++) {
            fprintf(f, "%s\"%s\": %llu", id ? ", " : "",
                    id == AREA_OTHER ? "other" : airlock_area_name(id),
                    (unsigned long long)r->area_erases[id]);
        }
        fprintf(f,
                "}, \"prog_bytes\": %llu, \"prog_calls\": %llu, \"read_bytes\": %llu, "
                "\"read_calls\": %llu, \"max_erases_one_sector\": %llu, "
                "\"max_erases_area\": \"%s\", ",
                (unsigned long long)r->c.prog_bytes, (unsigned long long)r->c.prog_calls,
                (unsigned long long)r->c.read_bytes, (unsigned long long)r->c.read_calls,
                (unsigned long long)r->max_erases,
                r->max_erases_area < 0             ? "-"
                : r->max_erases_area == AREA_OTHER ? "other"
                                                   : airlock_area_name(r->max_erases_area));
        fprintf(f,
                "\"limit_copies\": %d, \"limit_erases\": %u, \"limit_prog_bytes\": %llu, "
                "\"ratio_erases\": %.4f, "
                "\"ratio_prog\": %.4f, \"model\": \"%s\", \"model_s\": %.4f, "
                "\"limit_s\": %.4f, \"ratio_time\": %.4f, \"watchdog_max_gap_s\": %.4f, "
                "\"watchdog_feeds\": %u, ",
                r->limit_copies, (unsigned)r->limit_erases, (unsigned long long)r->limit_prog,
                ratio((double)r->c.erases, r->limit_erases),
                ratio((double)r->c.prog_bytes, (double)r->limit_prog), r->model, r->model_s,
                r->limit_s, ratio(r->model_s, r->limit_s), r->wd_gap_s, (unsigned)r->feeds);
        fprintf(f,
                "\"engine_reported\": {\"erases\": %u, \"prog_bytes\": %u, "
                "\"read_bytes\": %u}}%s\n",
                (unsigned)r->claimed.erases, (unsigned)r->claimed.prog_bytes,
                (unsigned)r->claimed.read_bytes, i + 1 < nrows ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        fatal("cannot write", path);
    }
}

/*
 * Where the core's own counts (airlock_boot_t.stats) disagree with the
 * sim's: a note for readers of those stats, not a failure.
 */
static void print_claims(void)
{
    size_t n = 0, differ_prog = 0, differ_erase = 0;
    uint64_t worst_prog = 0, worst_erase = 0;
    for (size_t i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (strcmp(r->status, "ok") != 0) {
            continue;
        }
        n++;
        uint64_t de = r->c.erases - r->claimed.erases;
        uint64_t dp = r->c.prog_bytes - r->claimed.prog_bytes;
        differ_erase += r->c.erases != r->claimed.erases;
        differ_prog += r->c.prog_bytes != r->claimed.prog_bytes;
        worst_erase = r->c.erases > r->claimed.erases && de > worst_erase ? de : worst_erase;
        worst_prog = r->c.prog_bytes > r->claimed.prog_bytes && dp > worst_prog ? dp : worst_prog;
    }
    if (differ_prog || differ_erase) {
        printf("\nairlock_boot_t.stats vs the sim: erases differ in %zu of %zu rows (sim up to "
               "%llu more),\nbytes programmed in %zu (sim up to %llu more): the core's count "
               "leaves out trailer and\njournal writes and the journal's own erases.\n",
               differ_erase, n, (unsigned long long)worst_erase, differ_prog,
               (unsigned long long)worst_prog);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_swap [--json FILE] [--engine NAME]\n"
                    "  --json FILE     also write the results as JSON\n"
                    "  --engine NAME   only this engine (default: every one in airlock_engines[])\n"
                    "  --key PEM       Ed25519 or P-256 signing key (default: the shared imgtool\n"
                    "                  vectors' key-ed25519.pem)\n");
}

int main(int argc, char **argv)
{
    const char *json = NULL, *only = NULL;
    const char *keypath = AIRLOCK_SHARED_DIR "/vectors/imgtool/key-ed25519.pem";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        } else if (v && strcmp(argv[i], "--json") == 0) {
            json = v;
            i++;
        } else if (v && strcmp(argv[i], "--engine") == 0) {
            only = v;
            i++;
        } else if (v && strcmp(argv[i], "--key") == 0) {
            keypath = v;
            i++;
        } else {
            usage();
            return 2;
        }
    }
    ram = calloc(1, RAM_SIZE);
    if (!ram) {
        fatal("out of memory", NULL);
    }
    if (tu_key_load(&key, keypath) != 0) {
        fatal("cannot load the signing key", keypath);
    }
    if (only && !airlock_engine_find(only)) {
        fatal("no such engine", only);
    }
    clock_t t0 = clock();
    for (size_t di = 0; di < NDEVICES; di++) {
        struct device *d = &devices[di];
        device_open(d);
        for (size_t ei = 0; airlock_engines[ei]; ei++) {
            const airlock_engine_t *e = airlock_engines[ei];
            if ((only && strcmp(only, e->name) != 0) || !engine_fits(d, e)) {
                continue;
            }
            for (size_t si = 0; si < d->nsizes; si++) {
                run_case(d, e, &d->sizes[si]);
            }
        }
        printf("bench_swap: %s done\n", d->name);
        fflush(stdout);
    }
    print_table();
    print_claims();
    print_notes();
    if (json) {
        write_json(json);
        printf("\nresults: %s\n", json);
    }
    printf("bench_swap: %zu rows, %d failed, %.1f s CPU\n", nrows, failures,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    for (size_t di = 0; di < NDEVICES; di++) {
        airlock_sim_flash_close(devices[di].sim);
    }
    tu_key_free(&key);
    free(ram);
    return failures ? 1 : 0;
}
