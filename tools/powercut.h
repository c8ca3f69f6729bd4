/*
 * The power-cut proof: run a device's whole update life (request, boot,
 * install, confirm or not, boot again) on sim flash, cutting power at every
 * flash operation in turn or at random, and check after each cut that the
 * device still boots a verified image that is the old or the new one, and
 * ends in the expected state. Host only; used by tests/powercut and by
 * `airlock powercut`.
 */
#ifndef AIRLOCK_TOOLS_POWERCUT_H
#define AIRLOCK_TOOLS_POWERCUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/sim_flash.h"

#define PC_MAX_DEVICES 4

/*
 * The RAM region the harness gives ram-load: images for it must carry
 * RAM_LOAD with a load range inside [PC_RAM_BASE, PC_RAM_BASE + PC_RAM_SIZE).
 */
#define PC_RAM_BASE 0x20000000u
#define PC_RAM_SIZE (512u * 1024u)

/* One update scenario on a layout whose devices are sim flashes. */
typedef struct pc_scenario {
    airlock_layout_t layout; /* areas point at the devices' ports (set by pc_init) */
    airlock_sim_flash_t *sims[PC_MAX_DEVICES];
    size_t nsims;
    const airlock_engine_t *engine;
    const airlock_crypto_t *crypto;
    const airlock_pubkey_t *keys;
    size_t nkeys;
    uint32_t max_trials;
    const uint8_t *old_img; /* factory image in the primary */
    size_t old_len;
    const uint8_t *new_img; /* update staged in the secondary */
    size_t new_len;
    bool permanent; /* request a PERM update instead of a TEST */
    bool confirm;   /* the new image confirms itself after it boots */
    /*
     * Optional: called by pc_prove_single and pc_prove_random after each
     * run with the runs done and the runs the proof will make in all (for a
     * progress display). NULL for none.
     */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;

    /* Run state, owned by pc_run. */
    struct pc_shim *shims;
    uint64_t op;          /* prog/erase calls so far in this run, all devices */
    const uint64_t *cuts; /* cut indices of this run, ascending */
    size_t ncuts;
    size_t next_cut;
    bool power_off;
    uint32_t lost_trials; /* cuts that left a whole trial record behind */
    char cut_log[256]; /* descriptions of the cuts so far */
} pc_scenario_t;

/*
 * Wrap each device's port with a shim that numbers prog and erase calls
 * across all devices, so one cut index covers a multi-device layout.
 * scenario->layout's areas must point at airlock_sim_flash_port(sims[i]);
 * pc_init rewrites them to the shims. Returns 0 or -1.
 */
int pc_init(pc_scenario_t *sc);
void pc_free(pc_scenario_t *sc);

/*
 * Where the scenario's engine wants the update staged in the secondary and
 * the longest image both slots take. Returns 0 or the configuration error.
 */
int pc_stage_limits(pc_scenario_t *sc, uint32_t *offset, uint32_t *max_len);

/* Outcome of one run. */
typedef struct pc_run {
    bool ok;
    uint64_t ops;        /* flash operations the run performed */
    uint32_t cuts;       /* cuts that happened */
    uint32_t boots;      /* bootloader runs */
    int final_version;   /* 0 old, 1 new, -1 unknown */
    char why[512];       /* first failure, with the cut descriptions */
} pc_run_t;

/*
 * Stage the factory state (old image in the primary, new one in the
 * secondary), then live the scenario: request the update, boot, let the
 * image run (it confirms itself if sc->confirm), and boot again until the
 * device settles. Engines that select a slot (direct-xip, ram-load) are
 * checked on the image they hand over: the chosen slot, or the RAM copy
 * (ram-load images must be linked for RAM at 0x20000000, 512 KiB). cut_at lists operation indices, ascending, counted from
 * the start of the run across recoveries, at which power is cut; ncuts may
 * be 0. seed seeds the tears. After every boot the primary must hold,
 * byte for byte, the old or the new image; at the end the expected one
 * (the new one when the update is permanent, confirmed, or the engine
 * cannot revert; else the old one; either when a cut hit the request or
 * the image's own confirmation), with no flash rule broken.
 * Returns 0 (out->ok tells the verdict) or -1 on a harness error.
 */
int pc_run(pc_scenario_t *sc, const uint64_t *cut_at, size_t ncuts, uint64_t seed,
           pc_run_t *out);

#define PC_MAX_CUTS 16 /* cuts one run of pc_prove_random may make at most */

/* Totals of a proof. */
typedef struct pc_report {
    uint64_t uncut_ops;   /* operations of the uncut run */
    uint64_t tried;
    uint64_t passed;
    uint64_t failed;
    uint64_t first_failed_seed;
    uint64_t first_failed_cut;
    char first_failure[512];
    /* The first failed run's cut indices, ascending (ncuts 0: the uncut run). */
    uint64_t first_failed_cuts[PC_MAX_CUTS];
    uint32_t first_failed_ncuts;
    char first_failed_why[512]; /* its pc_run_t.why alone, without the cut list */
} pc_report_t;

/* Cut once at every operation index of the uncut run. */
int pc_prove_single(pc_scenario_t *sc, uint64_t seed, pc_report_t *rep);

/*
 * n random runs, each with 1..max_cuts (<= PC_MAX_CUTS) cuts at random
 * indices (some land in recovery), seeded from seed + run number: run i
 * depends only on seed + i and max_cuts, so pc_prove_random(sc, 1,
 * max_cuts, seed + i, ...) repeats it alone.
 */
int pc_prove_random(pc_scenario_t *sc, uint64_t n, uint32_t max_cuts, uint64_t seed,
                    pc_report_t *rep);

#endif
