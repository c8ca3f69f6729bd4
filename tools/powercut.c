/*
 * Power-cut proof runner (see powercut.h). Everything it asserts is
 * observable from flash and from the bootloader's result: it never trusts
 * the code under test to report its own success.
 */
#define _POSIX_C_SOURCE 200809L

#include "powercut.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pc_shim {
    airlock_flash_t port;
    const airlock_flash_t *inner;
    airlock_sim_flash_t *sim;
    pc_scenario_t *sc;
};

static void power_all(pc_scenario_t *sc, bool on)
{
    for (size_t i = 0; i < sc->nsims; i++) {
        if (on) {
            airlock_sim_flash_power_on(sc->sims[i]);
        } else if (airlock_sim_flash_powered(sc->sims[i])) {
            airlock_sim_flash_power_off(sc->sims[i]);
        }
    }
    sc->power_off = !on;
}

/* Number a prog/erase; arm the device's cut when this is the chosen one. */
static void before_op(struct pc_shim *s)
{
    pc_scenario_t *sc = s->sc;
    if (sc->next_cut < sc->ncuts && sc->op == sc->cuts[sc->next_cut]) {
        airlock_sim_flash_cut_at(s->sim, 0);
        sc->next_cut++;
    }
    sc->op++;
}

/*
 * Did this cut leave a whole trial record in the primary? Then the trial
 * was spent without the image running, and a revert is a correct outcome.
 */
static void count_lost_trial(pc_scenario_t *sc, struct pc_shim *s)
{
    airlock_sim_flash_cut_t cut;
    if (!airlock_sim_flash_last_cut(s->sim, &cut) || cut.op != AIRLOCK_SIM_FLASH_OP_PROG) {
        return;
    }
    /* the trial records of either slot (slot-selecting engines try either) */
    for (int id = AIRLOCK_AREA_PRIMARY; id <= AIRLOCK_AREA_SECONDARY; id++) {
        const airlock_area_t *a = &sc->layout.area[id];
        if (a->flash != &s->port) {
            continue;
        }
        airlock_trailer_geom_t g = {airlock_layout_max_align(&sc->layout),
                                    a->flash->write_size, 128};
        uint32_t base = a->off + airlock_trailer_start(a, &g);
        uint32_t w = a->flash->write_size;
        if (cut.addr < base || cut.addr >= base + AIRLOCK_TRIAL_MAX * w) {
            continue;
        }
        const uint8_t *rec = airlock_sim_flash_data(s->sim) + cut.addr;
        for (uint32_t i = 0; i < w; i++) {
            if ((uint8_t)(rec[i] ^ a->flash->erased_val) != 0xffu) {
                return;
            }
        }
        sc->lost_trials++;
    }
}

static void after_op(struct pc_shim *s)
{
    pc_scenario_t *sc = s->sc;
    if (!airlock_sim_flash_powered(s->sim) && !sc->power_off) {
        count_lost_trial(sc, s);
        size_t n = strlen(sc->cut_log);
        snprintf(sc->cut_log + n, sizeof(sc->cut_log) - n, "%s[cut: %s]", n ? " " : "",
                 airlock_sim_flash_cut_str(s->sim));
        power_all(sc, false);
    }
}

static int shim_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    struct pc_shim *s = ctx;
    return s->inner->read(s->inner->ctx, addr, buf, len);
}

static int shim_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    struct pc_shim *s = ctx;
    if (s->sc->power_off) {
        return -1;
    }
    before_op(s);
    int rc = s->inner->prog(s->inner->ctx, addr, buf, len);
    after_op(s);
    return rc;
}

static int shim_erase(void *ctx, uint32_t addr)
{
    struct pc_shim *s = ctx;
    if (s->sc->power_off) {
        return -1;
    }
    before_op(s);
    int rc = s->inner->erase(s->inner->ctx, addr);
    after_op(s);
    return rc;
}

static int shim_sync(void *ctx)
{
    struct pc_shim *s = ctx;
    return s->inner->sync ? s->inner->sync(s->inner->ctx) : 0;
}

int pc_init(pc_scenario_t *sc)
{
    if (sc->nsims == 0 || sc->nsims > PC_MAX_DEVICES) {
        return -1;
    }
    sc->shims = calloc(sc->nsims, sizeof(*sc->shims));
    if (!sc->shims) {
        return -1;
    }
    for (size_t i = 0; i < sc->nsims; i++) {
        struct pc_shim *s = &sc->shims[i];
        s->inner = airlock_sim_flash_port(sc->sims[i]);
        s->sim = sc->sims[i];
        s->sc = sc;
        s->port = *s->inner;
        s->port.ctx = s;
        s->port.read = shim_read;
        s->port.prog = shim_prog;
        s->port.erase = shim_erase;
        s->port.sync = s->inner->sync ? shim_sync : NULL;
    }
    for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
        airlock_area_t *a = &sc->layout.area[id];
        if (!a->flash) {
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < sc->nsims; i++) {
            if (a->flash == sc->shims[i].inner) {
                a->flash = &sc->shims[i].port;
                found = true;
            }
        }
        if (!found) {
            return -1;
        }
    }
    return 0;
}

void pc_free(pc_scenario_t *sc)
{
    free(sc->shims);
    sc->shims = NULL;
}

static airlock_sim_flash_t *sim_of(pc_scenario_t *sc, const airlock_area_t *a)
{
    for (size_t i = 0; i < sc->nsims; i++) {
        if (a->flash == &sc->shims[i].port) {
            return sc->sims[i];
        }
    }
    return NULL;
}

static bool fail(pc_run_t *out, const pc_scenario_t *sc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out->why, sizeof(out->why), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(out->why) && sc->cut_log[0]) {
        snprintf(out->why + n, sizeof(out->why) - (size_t)n, " after %s", sc->cut_log);
    }
    out->ok = false;
    return false;
}

static uint8_t ram[PC_RAM_SIZE]; /* the RAM region ram-load images land in */

/* Is data (len bytes available) byte for byte the old (0) or new (1) image? */
static int which_image(const pc_scenario_t *sc, const uint8_t *data, size_t len)
{
    if (sc->old_len <= len && memcmp(data, sc->old_img, sc->old_len) == 0) {
        return 0;
    }
    if (sc->new_len <= len && memcmp(data, sc->new_img, sc->new_len) == 0) {
        return 1;
    }
    return -1;
}

/*
 * What the bootloader hands over, byte for byte: the primary (engines that
 * move images), the chosen slot (direct-xip) or the RAM copy (ram-load).
 */
static int booted_image(pc_scenario_t *sc, const airlock_boot_result_t *res)
{
    if (res->ram_len) {
        if (res->ram_addr < PC_RAM_BASE || res->ram_addr - PC_RAM_BASE > sizeof(ram)) {
            return -1;
        }
        size_t off = res->ram_addr - PC_RAM_BASE;
        return which_image(sc, ram + off, sizeof(ram) - off);
    }
    const airlock_area_t *a = &sc->layout.area[res->slot];
    return which_image(sc, airlock_sim_flash_data(sim_of(sc, a)) + a->off, a->size);
}

static uint8_t work_buf[4096];

static void make_cfg(pc_scenario_t *sc, airlock_boot_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->layout = &sc->layout;
    cfg->engine = sc->engine;
    cfg->crypto = sc->crypto;
    cfg->keys = sc->keys;
    cfg->nkeys = sc->nkeys;
    cfg->allow_unsigned = sc->nkeys == 0;
    cfg->max_trials = sc->max_trials ? sc->max_trials : 1;
    cfg->buf = work_buf;
    cfg->buf_len = sizeof(work_buf);
    cfg->ram = ram;
    cfg->ram_base = PC_RAM_BASE;
    cfg->ram_size = sizeof(ram);
}

int pc_stage_limits(pc_scenario_t *sc, uint32_t *offset, uint32_t *max_len)
{
    airlock_boot_cfg_t cfg;
    make_cfg(sc, &cfg);
    return airlock_boot_stage(&cfg, offset, max_len);
}

static int stage(pc_scenario_t *sc, uint64_t seed)
{
    uint32_t at, max_len;
    const airlock_area_t *pri = &sc->layout.area[AIRLOCK_AREA_PRIMARY];
    const airlock_area_t *sec = &sc->layout.area[AIRLOCK_AREA_SECONDARY];
    for (size_t i = 0; i < sc->nsims; i++) {
        airlock_sim_flash_power_on(sc->sims[i]);
        airlock_sim_flash_cut_cancel(sc->sims[i]);
        airlock_sim_flash_wipe(sc->sims[i]);
        airlock_sim_flash_reset_counts(sc->sims[i]);
        airlock_sim_flash_seed(sc->sims[i], seed * 31u + i);
    }
    sc->power_off = false;
    sc->lost_trials = 0;
    sc->op = 0;
    sc->next_cut = 0;
    sc->cut_log[0] = '\0';
    if (pc_stage_limits(sc, &at, &max_len) != 0 || sc->old_len > max_len ||
        sc->new_len > max_len) {
        return -1;
    }
    if (airlock_sim_flash_load(sim_of(sc, pri), pri->off, sc->old_img, (uint32_t)sc->old_len) ||
        airlock_sim_flash_load(sim_of(sc, sec), sec->off + at, sc->new_img,
                               (uint32_t)sc->new_len)) {
        return -1;
    }
    return 0;
}

static bool engine_reverts(const pc_scenario_t *sc)
{
    return (sc->engine->caps & AIRLOCK_ENGINE_CAN_REVERT) != 0;
}

int pc_run(pc_scenario_t *sc, const uint64_t *cut_at, size_t ncuts, uint64_t seed,
           pc_run_t *out)
{
    airlock_boot_cfg_t cfg;
    airlock_boot_t b;
    airlock_boot_result_t res;
    memset(out, 0, sizeof(*out));
    out->ok = true;
    out->final_version = -1;
    if (!sc->shims || stage(sc, seed) != 0) {
        return -1;
    }
    make_cfg(sc, &cfg);
    sc->cuts = cut_at;
    sc->ncuts = ncuts;

    /* The application asks for the update. A cut here may leave no request. */
    bool request_cut = false;
    if (airlock_boot_request(&sc->layout, 0, sc->permanent) != 0) {
        if (!sc->power_off) {
            fail(out, sc, "airlock_boot_request failed without a power cut");
            return 0;
        }
        request_cut = true;
        power_all(sc, true);
    }

    /* Boot until the device settles: a normal boot with nothing left to do. */
    int settled = 0;
    uint32_t confirm_cuts = 0;
    /* The last boot that did more than boot the primary, for failure messages. */
    const char *last_msg = NULL;
    int last_action = AIRLOCK_BOOT_NORMAL, last_err = 0;
    uint32_t last_boot = 0;
    while (settled < 2) {
        if (++out->boots > 40) {
            fail(out, sc, "device did not settle after 40 boots");
            return 0;
        }
        memset(ram, 0, sizeof(ram)); /* a reset: nothing survives in RAM */
        int rc = airlock_boot(&b, &cfg, &res);
        if (sc->power_off) {
            out->cuts++;
            power_all(sc, true);
            settled = 0;
            continue;
        }
        bool selects = sc->engine->select != NULL;
        if (rc != 0 || (res.slot != AIRLOCK_AREA_PRIMARY &&
                        !(selects && res.slot == AIRLOCK_AREA_SECONDARY))) {
            const char *viol = "";
            for (size_t i = 0; i < sc->nsims && !viol[0]; i++) {
                viol = airlock_sim_flash_violation_str(sc->sims[i]);
            }
            fail(out, sc, "UNBOOTABLE on boot %u: %s (%s: %s at offset %u)%s%s", out->boots,
                 res.message ? res.message : "flash operation failed", airlock_errname(rc),
                 res.detail.field ? res.detail.field : "-", (unsigned)res.detail.offset,
                 viol[0] ? "; flash rule broken: " : "", viol);
            return 0;
        }
        int holds = booted_image(sc, &res);
        if (holds < 0) {
            fail(out, sc, "boot %u hands over an image that is neither the old nor the new one",
                 out->boots);
            return 0;
        }
        out->final_version = holds;
        if (res.action != AIRLOCK_BOOT_NORMAL) {
            last_msg = res.message;
            last_action = res.action;
            last_err = res.err;
            last_boot = out->boots;
        }
        /* The image runs; the new one confirms itself when it is on trial. */
        if (holds == 1 && sc->confirm && !res.confirmed) {
            if (airlock_boot_confirm_slot(&sc->layout, 0, res.slot) != 0) {
                if (!sc->power_off) {
                    fail(out, sc, "airlock_boot_confirm failed without a power cut");
                    return 0;
                }
                /* The confirmation may be lost: a revert is then correct. */
                confirm_cuts++;
                out->cuts++;
                power_all(sc, true);
                settled = 0;
                continue;
            }
            settled = 0;
            continue;
        }
        settled = res.action == AIRLOCK_BOOT_NORMAL ? settled + 1 : 0;
    }

    bool want_new = sc->permanent || sc->confirm || !engine_reverts(sc);
    /*
     * A trial boot interrupted after its record was written, or during the
     * image's confirmation, is a spent trial: when none are left, the revert
     * is right.
     */
    uint32_t max_trials = sc->max_trials ? sc->max_trials : 1;
    bool old_ok = request_cut ||
                  (!sc->permanent && sc->lost_trials + confirm_cuts >= max_trials);
    if (!(old_ok && out->final_version == 0) && out->final_version != (want_new ? 1 : 0)) {
        if (last_msg) {
            fail(out, sc, "settled on the %s image, expected the %s one (boot %u %s: %s%s%s)",
                 out->final_version ? "new" : "old", want_new ? "new" : "old", last_boot,
                 airlock_boot_action_name(last_action), last_msg, last_err ? ", " : "",
                 last_err ? airlock_errname(last_err) : "");
        } else {
            fail(out, sc, "settled on the %s image, expected the %s one",
                 out->final_version ? "new" : "old", want_new ? "new" : "old");
        }
        return 0;
    }
    for (size_t i = 0; i < sc->nsims; i++) {
        if (airlock_sim_flash_violations(sc->sims[i], 0) != 0) {
            fail(out, sc, "flash rule broken: %s", airlock_sim_flash_violation_str(sc->sims[i]));
            return 0;
        }
    }
    out->ops = sc->op;
    return 0;
}

static void record(pc_report_t *rep, const pc_run_t *run, uint64_t seed, const uint64_t *cuts,
                   size_t ncuts)
{
    rep->tried++;
    if (run->ok) {
        rep->passed++;
        return;
    }
    if (rep->failed++ == 0) {
        char list[128] = "";
        rep->first_failed_ncuts = (uint32_t)(ncuts < PC_MAX_CUTS ? ncuts : PC_MAX_CUTS);
        memcpy(rep->first_failed_cuts, cuts, rep->first_failed_ncuts * sizeof(cuts[0]));
        snprintf(rep->first_failed_why, sizeof(rep->first_failed_why), "%s", run->why);
        size_t n = 0;
        for (size_t i = 0; i < ncuts && n < sizeof(list); i++) {
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%llu", i ? "," : "",
                                  (unsigned long long)cuts[i]);
        }
        rep->first_failed_seed = seed;
        rep->first_failed_cut = ncuts ? cuts[0] : UINT64_MAX;
        int k = snprintf(rep->first_failure, sizeof(rep->first_failure), "cuts at ops [%s]: ",
                         list);
        if (k > 0 && (size_t)k < sizeof(rep->first_failure)) {
            size_t room = sizeof(rep->first_failure) - (size_t)k;
            memcpy(rep->first_failure + k, run->why, strnlen(run->why, room - 1));
            rep->first_failure[(size_t)k + strnlen(run->why, room - 1)] = '\0';
        }
    }
}

int pc_prove_single(pc_scenario_t *sc, uint64_t seed, pc_report_t *rep)
{
    pc_run_t run;
    memset(rep, 0, sizeof(*rep));
    if (pc_run(sc, NULL, 0, seed, &run) != 0) {
        return -1;
    }
    record(rep, &run, seed, NULL, 0);
    rep->uncut_ops = run.ops;
    if (sc->progress) {
        sc->progress(sc->progress_ctx, 1, rep->uncut_ops + 1);
    }
    for (uint64_t k = 0; k < rep->uncut_ops; k++) {
        if (pc_run(sc, &k, 1, seed + k, &run) != 0) {
            return -1;
        }
        record(rep, &run, seed + k, &k, 1);
        if (sc->progress) {
            sc->progress(sc->progress_ctx, k + 2, rep->uncut_ops + 1);
        }
    }
    return 0;
}

/* splitmix64: the harness's own PRNG, independent of the sims'. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int pc_prove_random(pc_scenario_t *sc, uint64_t n, uint32_t max_cuts, uint64_t seed,
                    pc_report_t *rep)
{
    pc_run_t run;
    uint64_t cuts[PC_MAX_CUTS];
    memset(rep, 0, sizeof(*rep));
    if (max_cuts == 0 || max_cuts > PC_MAX_CUTS || pc_run(sc, NULL, 0, seed, &run) != 0) {
        return -1;
    }
    rep->uncut_ops = run.ops;
    uint64_t span = run.ops + run.ops / 2 + 1; /* leave room for recovery work */
    for (uint64_t i = 0; i < n; i++) {
        uint64_t s = seed + i;
        uint64_t st = s;
        size_t nc = 1 + (size_t)(mix(&st) % max_cuts);
        for (size_t c = 0; c < nc; c++) {
            cuts[c] = mix(&st) % span;
        }
        qsort(cuts, nc, sizeof(cuts[0]), cmp_u64);
        /* two cuts at one index would both hit the same operation */
        for (size_t c = 1; c < nc; c++) {
            if (cuts[c] <= cuts[c - 1]) {
                cuts[c] = cuts[c - 1] + 1;
            }
        }
        if (pc_run(sc, cuts, nc, s, &run) != 0) {
            return -1;
        }
        record(rep, &run, s, cuts, nc);
        if (sc->progress) {
            sc->progress(sc->progress_ctx, i + 1, n);
        }
    }
    return 0;
}
