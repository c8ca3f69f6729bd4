/*
 * The sim flash: a host-side NOR flash (RAM or file backed) behind the flash
 * port, enforcing the NOR rules of flash.h on every call and able to cut
 * power during any chosen operation, tearing it reproducibly from a seed.
 * Every power-cut test runs on it. Host only (malloc, POSIX); never linked
 * into device code. Not thread safe: one sim, one thread.
 */
#ifndef AIRLOCK_SIM_FLASH_H
#define AIRLOCK_SIM_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/flash.h"

/*
 * Errors the sim's port functions return, X(name, value, message). They sit
 * outside enum airlock_err (core reports any of them as AIRLOCK_ERR_IO) so a
 * test can tell a rule violation from a power cut. The first five are NOR
 * rule violations: each is counted and recorded (see "NOR rules") and a
 * violating call changes nothing in flash.
 */
#define AIRLOCK_SIM_FLASH_ERR_LIST(X)                                                              \
    X(RANGE, -101, "access outside the device")                                                    \
    X(ALIGN, -102, "prog address or length not a multiple of write_size")                          \
    X(REPROG, -103, "write unit programmed twice without an erase")                                \
    X(BIT_BACK, -104, "prog would move a bit back to the erased value")                            \
    X(ERASE_ADDR, -105, "erase address is not the start of a sector")                              \
    X(CUT, -110, "power was cut during this operation")                                            \
    X(POWER_OFF, -111, "power is off")

enum airlock_sim_flash_err {
#define AIRLOCK_SIM_FLASH_ERR_ENUM_(name, value, msg) AIRLOCK_SIM_FLASH_ERR_##name = (value),
    AIRLOCK_SIM_FLASH_ERR_LIST(AIRLOCK_SIM_FLASH_ERR_ENUM_)
#undef AIRLOCK_SIM_FLASH_ERR_ENUM_
};

/* Symbolic name ("REPROG") of a sim error; airlock_errname() for others. */
const char *airlock_sim_flash_errname(int err);

/* Message for a sim error; airlock_strerror() for others. Never NULL. */
const char *airlock_sim_flash_strerror(int err);

/* Operation kinds, as bits (see airlock_sim_flash_count_ops). */
enum airlock_sim_flash_op {
    AIRLOCK_SIM_FLASH_OP_READ = 1,
    AIRLOCK_SIM_FLASH_OP_PROG = 2,
    AIRLOCK_SIM_FLASH_OP_ERASE = 4,
    AIRLOCK_SIM_FLASH_OP_SYNC = 8,
};

/* Opaque. One simulated flash device. */
typedef struct airlock_sim_flash airlock_sim_flash_t;

/*
 * Geometry, as in airlock_flash_t. size 0 means "the sum of the runs".
 * The sim copies runs; the caller's array need not outlive the call.
 */
typedef struct airlock_sim_flash_geometry {
    uint32_t size;
    uint32_t write_size; /* 1, 2, 4, 8, 16 or 32 */
    uint8_t erased_val;
    const airlock_sector_run_t *runs;
    uint32_t nruns;
} airlock_sim_flash_geometry_t;

/* ---- life cycle ----------------------------------------------------------
 *
 * A new sim is powered, has seed 1, counts prog and erase operations, has no
 * cut pending, zero counters and tear policy AIRLOCK_SIM_FLASH_TEAR_ANY.
 */

/*
 * Create a RAM-backed sim, every byte erased_val and no unit programmed.
 * Returns 0 and *out, AIRLOCK_ERR_INVAL if geo fails airlock_flash_check
 * (write_size a power of two in 1..32, runs summing to size, sectors
 * multiples of write_size), AIRLOCK_ERR_NOMEM if memory runs out.
 */
int airlock_sim_flash_create(const airlock_sim_flash_geometry_t *geo, airlock_sim_flash_t **out);

/*
 * File-backed sim: the file is the flash, byte for byte (mapped shared; progs
 * and erases write it with pwrite), so every prog and erase reaches the file
 * when the call returns and a killed process leaves the flash exactly as it
 * was at that instant. Opens path if it exists (it must be exactly size
 * bytes), else creates it filled with erased_val: written and synced under a
 * temporary name in the same directory ("<path>.new-<pid>-<n>") and then
 * linked to path, so path never names a file that is not yet fully erased;
 * a kill while creating leaves no file at path (perhaps a stray temporary).
 * Which units count as programmed is not stored in the file: on open, a
 * unit is "programmed" when its bytes are not all erased_val (so a unit
 * programmed with erased_val bytes before a reopen may be programmed again
 * after it without a violation).
 * Returns 0 and *out, AIRLOCK_ERR_INVAL (bad geometry, or an existing file
 * of another size), AIRLOCK_ERR_IO (open, create, sync or mmap failed; errno
 * says why), AIRLOCK_ERR_NOMEM.
 */
int airlock_sim_flash_open(const char *path, const airlock_sim_flash_geometry_t *geo,
                           airlock_sim_flash_t **out);

/* Release the sim (unmapping and closing its file, if any). NULL is a no-op. */
void airlock_sim_flash_close(airlock_sim_flash_t *sim);

/*
 * The flash port over this sim, for core: read/prog/erase/sync call into the
 * sim and return 0 or an AIRLOCK_SIM_FLASH_ERR_* value (AIRLOCK_ERR_INVAL for
 * a NULL buffer with a non-zero length; AIRLOCK_ERR_IO if a file-backed sim
 * cannot write its file, when the call is not counted and the bytes it
 * covers are undefined). Valid until close.
 */
const airlock_flash_t *airlock_sim_flash_port(airlock_sim_flash_t *sim);

/* ---- NOR rules and violations ---------------------------------------------
 *
 * Checked on every call while power is on, in this order:
 *   read:  RANGE (any alignment is fine inside the device);
 *   prog:  RANGE, ALIGN (addr and len multiples of write_size), REPROG (a
 *          write unit already programmed since its last erase -- any second
 *          prog of a unit, even with bytes equal to erased_val, even if the
 *          first prog was torn), BIT_BACK (a bit would have to move back
 *          toward erased_val: with erased_val 0xff a 0 -> 1, with 0x00 a
 *          1 -> 0; only reachable after writing through _data());
 *   erase: RANGE, ERASE_ADDR (addr is not the first byte of a sector).
 * Length 0 reads and progs are valid (and still count as operations).
 * Each violation returns its error, changes nothing, adds one to its
 * per-error count and becomes the "last violation". While power is off no
 * rule is checked: every call fails with POWER_OFF.
 */

/* What the last violation was. */
typedef struct airlock_sim_flash_violation {
    int err;       /* AIRLOCK_SIM_FLASH_ERR_RANGE .. ERASE_ADDR; 0 = none yet */
    int op;        /* AIRLOCK_SIM_FLASH_OP_* of the call */
    uint32_t addr; /* the call's address */
    uint32_t len;  /* the call's length (sector size for erase, 0 if unknown) */
    uint32_t at;   /* first offending address: the unit for REPROG, the byte
                      for BIT_BACK, the call's address otherwise */
} airlock_sim_flash_violation_t;

/*
 * Number of violations with error err since create/reset, or of all kinds
 * when err is 0. A correct run asserts airlock_sim_flash_violations(sim, 0)
 * == 0.
 */
uint64_t airlock_sim_flash_violations(const airlock_sim_flash_t *sim, int err);

/*
 * Copy the last violation into *out (may be NULL). Returns true if there was
 * one since create/reset.
 */
bool airlock_sim_flash_last_violation(const airlock_sim_flash_t *sim,
                                      airlock_sim_flash_violation_t *out);

/*
 * The last violation in words, for test messages: "prog at 0x1000 len 8:
 * REPROG at 0x1000 (write unit programmed twice without an erase)". "" if
 * none. Valid until the next call into the sim.
 */
const char *airlock_sim_flash_violation_str(const airlock_sim_flash_t *sim);

/* ---- counters --------------------------------------------------------------
 *
 * Counters cover operations the flash performed: successful calls plus the
 * torn prog or erase (it wore the cells even if it did nothing useful). Calls
 * refused (violation, power off) and torn reads/syncs are not counted. A call
 * spanning several sectors counts once in the totals and once in each sector
 * it touches, with the bytes split between them.
 */
typedef struct airlock_sim_flash_counts {
    uint64_t read_calls;
    uint64_t read_bytes;
    uint64_t prog_calls;
    uint64_t prog_bytes;
    uint64_t erases;
    uint64_t syncs; /* totals only; 0 per sector */
} airlock_sim_flash_counts_t;

/* Totals since create/reset. */
void airlock_sim_flash_counts(const airlock_sim_flash_t *sim, airlock_sim_flash_counts_t *out);

/* Number of sectors (sum of the runs' counts); sectors are indexed from 0. */
uint32_t airlock_sim_flash_nsectors(const airlock_sim_flash_t *sim);

/*
 * Sector index's start address and size, and its counters since
 * create/reset (each pointer may be NULL). Returns 0, or AIRLOCK_ERR_INVAL
 * if index >= nsectors.
 */
int airlock_sim_flash_sector(const airlock_sim_flash_t *sim, uint32_t index, uint32_t *start,
                             uint32_t *size, airlock_sim_flash_counts_t *counts);

/*
 * Wear: the largest erase count of any sector since create/reset, and in
 * *index (may be NULL) the lowest-numbered sector having it.
 */
uint64_t airlock_sim_flash_max_erases(const airlock_sim_flash_t *sim, uint32_t *index);

/*
 * Zero all counters (totals, per sector, violations and the last violation)
 * and the operation counter. Contents, power, a pending cut and the PRNG are
 * untouched.
 */
void airlock_sim_flash_reset_counts(airlock_sim_flash_t *sim);

/* ---- power cuts -------------------------------------------------------------
 *
 * Operations are numbered from 0 since the last power-on (or create, or
 * reset_counts). By default only prog and erase calls are numbered; reads
 * and syncs can be included with airlock_sim_flash_count_ops. A numbered
 * call gets its number when it arrives with power on, whether or not it then
 * violates a rule (a NULL-buffer call refused with AIRLOCK_ERR_INVAL gets none).
 *
 * When power is cut during operation K, that call is torn (below) and
 * returns CUT; from then on every call (read, prog, erase, sync) returns
 * POWER_OFF and changes nothing, until airlock_sim_flash_power_on. A cut
 * landing on a call that violates a rule returns the violation and turns
 * power off without touching flash.
 *
 * How a prog of n write units is torn:
 *   NOTHING  the cells were never touched;
 *   DONE     all of it was written; power failed before the call returned;
 *   PREFIX   units 0..k-1 written, 0 <= k < n (flash programs in order),
 *            and with probability 1/2 unit k half-programmed;
 *   UNITS    a random subset of units written, and with probability 1/2 one
 *            other unit half-programmed;
 *   DRIFT    every unit half-programmed (NOISE means DRIFT for a prog).
 * Half-programmed: each bit that the prog moves away from erased_val moved
 * or not at random; the result lies bitwise between old and new. Every unit
 * written, and every half unit in which at least one bit moved, counts as
 * programmed: programming it again before an erase is a REPROG violation,
 * as on real parts. A half unit in which no bit moved reads exactly as if
 * the prog never reached it, and is treated so (an algorithm can only act
 * on what it reads).
 *
 * How an erase of a sector is torn (in write units):
 *   NOTHING  unchanged;  DONE  fully erased;
 *   PREFIX   units 0..k-1 erased, 0 <= k < n, rest old content;
 *   UNITS    a random subset of units erased, rest old content;
 *   DRIFT    every bit moved toward erased_val or not, at random;
 *   NOISE    every byte random.
 * Units the erase completed are erased (not programmed); untouched units keep
 * their state; a unit DRIFT or NOISE changed counts as programmed unless it
 * now reads fully erased, so programming a visibly half-erased unit before a
 * full erase is a REPROG violation -- a recovery that trusts a half-erased
 * sector is caught.
 *
 * A torn read fills buf with random bytes; a torn sync does nothing. All
 * randomness comes from the sim's seeded PRNG (splitmix64): the same seed
 * and the same calls give the same tears, byte for byte.
 */

/* Tear kinds, also the tear policy. */
enum airlock_sim_flash_tear {
    AIRLOCK_SIM_FLASH_TEAR_ANY = 0,     /* policy: pick one of the kinds below */
    AIRLOCK_SIM_FLASH_TEAR_PARTIAL = 1, /* policy: pick PREFIX, UNITS, DRIFT (or NOISE) */
    AIRLOCK_SIM_FLASH_TEAR_NOTHING = 2,
    AIRLOCK_SIM_FLASH_TEAR_DONE = 3,
    AIRLOCK_SIM_FLASH_TEAR_PREFIX = 4,
    AIRLOCK_SIM_FLASH_TEAR_UNITS = 5,
    AIRLOCK_SIM_FLASH_TEAR_DRIFT = 6,
    AIRLOCK_SIM_FLASH_TEAR_NOISE = 7,
};

/* "prefix", "units", ... for a tear kind or policy; "?" otherwise. */
const char *airlock_sim_flash_tear_name(int tear);

/*
 * Seed the PRNG (and restart its sequence). Reseed before each run of a
 * harness (e.g. base seed + cut index) so any one run reproduces alone.
 */
void airlock_sim_flash_seed(airlock_sim_flash_t *sim, uint64_t seed);

/* The seed last given (1 if never seeded), for test messages. */
uint64_t airlock_sim_flash_get_seed(const airlock_sim_flash_t *sim);

/*
 * Which operations are numbered and can be cut: a mask of
 * AIRLOCK_SIM_FLASH_OP_*; 0 means the default, PROG | ERASE.
 */
void airlock_sim_flash_count_ops(airlock_sim_flash_t *sim, unsigned ops);

/*
 * How tears are chosen: AIRLOCK_SIM_FLASH_TEAR_ANY (default: NOTHING 1/8,
 * DONE 1/8, the partial kinds the rest), TEAR_PARTIAL, or one kind to force
 * it. Returns 0 or AIRLOCK_ERR_INVAL.
 */
int airlock_sim_flash_set_tear(airlock_sim_flash_t *sim, int policy);

/*
 * Cut power during the k-th numbered operation from now (k = 0: the next
 * one). Replaces any pending cut. The count survives power_on and
 * reset_counts: it counts calls, not the operation numbers.
 */
void airlock_sim_flash_cut_at(airlock_sim_flash_t *sim, uint64_t k);

/*
 * Pick k uniformly in [lo, hi) with the sim's PRNG (k = lo when hi <= lo),
 * cut_at(k) and return k.
 */
uint64_t airlock_sim_flash_cut_random(airlock_sim_flash_t *sim, uint64_t lo, uint64_t hi);

/* Forget a pending cut. */
void airlock_sim_flash_cut_cancel(airlock_sim_flash_t *sim);

/* Cut power now, between operations: nothing is torn. */
void airlock_sim_flash_power_off(airlock_sim_flash_t *sim);

/*
 * Restore power and restart operation numbering at 0 (a pending cut still
 * counts down). Contents stay as the cut left them.
 */
void airlock_sim_flash_power_on(airlock_sim_flash_t *sim);

/* Whether power is on. */
bool airlock_sim_flash_powered(const airlock_sim_flash_t *sim);

/* Operations numbered since power-on/create/reset_counts. */
uint64_t airlock_sim_flash_ops(const airlock_sim_flash_t *sim);

/* The last cut: what was torn and how. */
typedef struct airlock_sim_flash_cut {
    bool happened;  /* false until the first cut */
    int op;         /* AIRLOCK_SIM_FLASH_OP_* of the torn call */
    uint64_t index; /* its operation number */
    uint32_t addr;
    uint32_t len;   /* sector size for an erase */
    int tear;       /* AIRLOCK_SIM_FLASH_TEAR_NOTHING .. NOISE */
    uint32_t units; /* write units in the call */
    uint32_t done;  /* units fully written / erased */
    int32_t half;   /* index of the half-programmed unit, -1 if none (DRIFT: -1) */
    int err;        /* what the call returned: CUT, or a violation */
} airlock_sim_flash_cut_t;

/* Copy the last cut into *out (not NULL). Returns out->happened. */
bool airlock_sim_flash_last_cut(const airlock_sim_flash_t *sim, airlock_sim_flash_cut_t *out);

/*
 * The last cut in words, for test messages: "op 17 prog at 0x1234 len 64:
 * prefix, 3 of 8 units written, unit 3 half". "" if none. Valid until the
 * next call into the sim.
 */
const char *airlock_sim_flash_cut_str(const airlock_sim_flash_t *sim);

/* ---- direct access (test bench, bypasses power, rules and counters) ------- */

/*
 * The contents, size bytes. Writing through it changes bytes but not which
 * units count as programmed (use airlock_sim_flash_load to stage data).
 * For a file-backed sim this is the mapped file.
 */
uint8_t *airlock_sim_flash_data(airlock_sim_flash_t *sim);

/*
 * Write len bytes at addr like a factory programmer: no rule, no counter, no
 * power needed. Every write unit touched afterwards counts as programmed iff
 * its bytes are not all erased_val (so stage a whole flash image and core
 * may still program the erased parts). Returns 0 or AIRLOCK_ERR_INVAL (out
 * of the device, or data NULL with len > 0).
 */
int airlock_sim_flash_load(airlock_sim_flash_t *sim, uint32_t addr, const void *data, uint32_t len);

/* Erase the whole device at once (blank part): no counter, no power needed. */
void airlock_sim_flash_wipe(airlock_sim_flash_t *sim);

/*
 * Whether the write unit containing addr counts as programmed since its last
 * erase (false for addr outside the device).
 */
bool airlock_sim_flash_programmed(const airlock_sim_flash_t *sim, uint32_t addr);

/* ---- snapshots --------------------------------------------------------------
 *
 * A snapshot holds the contents and the programmed-unit map: the physical
 * state. Not counters, power, pending cut or PRNG. A harness saves the state
 * before a scenario and restores it before each cut index.
 */
typedef struct airlock_sim_flash_snapshot airlock_sim_flash_snapshot_t;

/* Save the state. Returns 0 and *out (free it), or AIRLOCK_ERR_NOMEM. */
int airlock_sim_flash_save(const airlock_sim_flash_t *sim, airlock_sim_flash_snapshot_t **out);

/*
 * Put a saved state back (written through to the file if file-backed); power
 * state, counters and pending cut are untouched. Returns 0, or
 * AIRLOCK_ERR_INVAL if the snapshot is from a sim of another size or
 * write_size.
 */
int airlock_sim_flash_restore(airlock_sim_flash_t *sim, const airlock_sim_flash_snapshot_t *snap);

/* Free a snapshot. NULL is a no-op. */
void airlock_sim_flash_snapshot_free(airlock_sim_flash_snapshot_t *snap);

#endif /* AIRLOCK_SIM_FLASH_H */
