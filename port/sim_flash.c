/*
 * The sim flash: NOR flash in RAM or in a shared-mapped file, checking every
 * port call against the NOR rules and tearing the chosen operation when power
 * is cut. Host only. It must never print, never guess (all randomness from
 * its own seeded PRNG) and never let a refused call change flash.
 */
#define _GNU_SOURCE /* sync_file_range, where there is one */

#include "airlock/sim_flash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlock/err.h"
#include "airlock/layout.h"

#define NVIOL 5 /* RANGE .. ERASE_ADDR, indexed by -101 - err */
#define DESC_LEN 192
#define BLANK_LEN (64u * 1024u)
#define SYNC_STEP (8u * 1024u * 1024u) /* a multiple of BLANK_LEN */

struct airlock_sim_flash {
    airlock_flash_t port;
    airlock_sector_run_t *runs;

    uint8_t *data;     /* size bytes: malloc'd, or the mapped file */
    uint8_t *prog_map; /* one bit per write unit: programmed since erase */
    /*
     * File-backed: one flag per sector whose prog_map bits are not derived
     * from the file yet (NULL: none). Opening a file derives nothing; a
     * sector's bits are derived from its bytes the first time an operation
     * needs them, and an erase makes them known without reading. So a
     * download into a large erased slot never reads what it overwrites.
     */
    uint8_t *lazy;
    uint32_t nunits;
    uint32_t ws_shift; /* log2(write_size) */
    int fd;            /* -1 when RAM-backed */
    uint8_t *blank;    /* file-backed: BLANK_LEN bytes of erased_val, for pwrite */

    uint32_t nsec;
    uint64_t *sec_start; /* nsec + 1 entries; sec_start[nsec] == size */
    airlock_sim_flash_counts_t total;
    airlock_sim_flash_counts_t *per_sec;

    uint64_t viol[NVIOL];
    airlock_sim_flash_violation_t last_viol;

    bool powered;
    bool cut_pending;
    uint64_t cut_in;  /* numbered calls to let pass before the cut */
    unsigned counted; /* AIRLOCK_SIM_FLASH_OP_* mask */
    int tear_policy;
    uint64_t ops;
    uint64_t seed;
    uint64_t rng;
    airlock_sim_flash_cut_t cut;

    char desc[DESC_LEN]; /* scratch for the _str functions */
};

struct airlock_sim_flash_snapshot {
    uint32_t size;
    uint32_t write_size;
    uint8_t *data;
    uint8_t *prog_map;
};

/* ---- errors and names ----------------------------------------------------- */

const char *airlock_sim_flash_errname(int err)
{
    switch (err) {
#define NAME_(name, value, msg)                                                                    \
    case (value):                                                                                  \
        return #name;
        AIRLOCK_SIM_FLASH_ERR_LIST(NAME_)
#undef NAME_
    default:
        return airlock_errname(err);
    }
}

const char *airlock_sim_flash_strerror(int err)
{
    switch (err) {
#define MSG_(name, value, msg)                                                                     \
    case (value):                                                                                  \
        return (msg);
        AIRLOCK_SIM_FLASH_ERR_LIST(MSG_)
#undef MSG_
    default:
        return airlock_strerror(err);
    }
}

const char *airlock_sim_flash_tear_name(int tear)
{
    static const char *const names[] = {"any",    "partial", "nothing", "done",
                                        "prefix", "units",   "drift",   "noise"};
    if (tear < 0 || tear > AIRLOCK_SIM_FLASH_TEAR_NOISE) {
        return "?";
    }
    return names[tear];
}

static const char *op_name(int op)
{
    switch (op) {
    case AIRLOCK_SIM_FLASH_OP_READ:
        return "read";
    case AIRLOCK_SIM_FLASH_OP_PROG:
        return "prog";
    case AIRLOCK_SIM_FLASH_OP_ERASE:
        return "erase";
    default:
        return "sync";
    }
}

/* ---- PRNG: splitmix64 ----------------------------------------------------- */

static uint64_t rnd(airlock_sim_flash_t *sim)
{
    uint64_t z = (sim->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. The modulo bias is below 2^-32 for our n. */
static uint64_t rnd_below(airlock_sim_flash_t *sim, uint64_t n)
{
    return rnd(sim) % n;
}

static void rnd_fill(airlock_sim_flash_t *sim, uint8_t *p, size_t n)
{
    while (n > 0) {
        uint64_t r = rnd(sim);
        for (int i = 0; i < 8 && n > 0; i++, n--) {
            *p++ = (uint8_t)(r >> (8 * i));
        }
    }
}

/* ---- byte runs, word at a time ------------------------------------------ */

static uint64_t rep8(uint8_t v)
{
    return 0x0101010101010101u * v;
}

/* Are the n bytes at p all v? (8 bytes a step; memcpy loads, any alignment) */
static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
    const uint64_t pat = rep8(v);
    uint64_t diff = 0;
    for (; n >= 64; p += 64, n -= 64) {
        uint64_t w[8];
        memcpy(w, p, sizeof w);
        for (int i = 0; i < 8; i++) {
            diff |= w[i] ^ pat;
        }
        if (diff) {
            return false;
        }
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        diff |= w ^ pat;
    }
    for (; n > 0; p++, n--) {
        diff |= (uint8_t)(*p ^ v);
    }
    return diff == 0;
}

/*
 * Index of the first of n bytes where want would move a bit of old back
 * toward erased e, or n if none. In "distance from erased" form (x ^ e) a
 * prog may only set bits: old & ~want must be 0.
 */
static uint32_t first_bit_back(const uint8_t *old, const uint8_t *want, uint32_t n, uint8_t e)
{
    const uint64_t pat = rep8(e);
    uint32_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t o, w;
        memcpy(&o, old + i, 8);
        memcpy(&w, want + i, 8);
        if ((o ^ pat) & ~(w ^ pat)) {
            break; /* the byte loop finds it within these 8 */
        }
    }
    for (; i < n; i++) {
        if ((old[i] ^ e) & ~(want[i] ^ e) & 0xff) {
            return i;
        }
    }
    return n;
}

/* ---- programmed-unit map -------------------------------------------------- */

static bool unit_prog(const airlock_sim_flash_t *sim, uint32_t u)
{
    return ((unsigned)sim->prog_map[u >> 3] >> (u & 7u)) & 1u;
}

static void unit_set(airlock_sim_flash_t *sim, uint32_t u, bool on)
{
    uint8_t bit = (uint8_t)(1u << (u & 7u));
    if (on) {
        sim->prog_map[u >> 3] |= bit;
    } else {
        sim->prog_map[u >> 3] &= (uint8_t)~bit;
    }
}

/* Mark units [u, u + n) programmed (on) or not: whole map bytes at once. */
static void units_set(airlock_sim_flash_t *sim, uint32_t u, uint32_t n, bool on)
{
    for (; n > 0 && (u & 7u); u++, n--) {
        unit_set(sim, u, on);
    }
    if (n >= 8) {
        memset(sim->prog_map + (u >> 3), on ? 0xff : 0x00, n >> 3);
        u += n & ~7u;
        n &= 7u;
    }
    for (; n > 0; u++, n--) {
        unit_set(sim, u, on);
    }
}

/* The first programmed unit of [u, u + n), or u + n if none. */
static uint32_t first_prog(const airlock_sim_flash_t *sim, uint32_t u, uint32_t n)
{
    uint32_t end = u + n;
    for (; u < end && (u & 7u); u++) {
        if (unit_prog(sim, u)) {
            return u;
        }
    }
    while (end - u >= 8 && sim->prog_map[u >> 3] == 0) {
        u += 8; /* eight units not programmed */
    }
    for (; u < end; u++) {
        if (unit_prog(sim, u)) {
            return u;
        }
    }
    return end;
}

static uint32_t ws(const airlock_sim_flash_t *sim)
{
    return sim->port.write_size;
}

static bool unit_erased(const airlock_sim_flash_t *sim, uint32_t u)
{
    return all_bytes(sim->data + ((size_t)u << sim->ws_shift), ws(sim), sim->port.erased_val);
}

/*
 * Units [first, first + n): programmed iff not all erased_val. Runs of 64
 * erased units (aligned in the map) are recognised a block at a time, so
 * opening a mostly erased file is a read at memory speed.
 */
static void derive_map(const airlock_sim_flash_t *sim, uint8_t *map, uint32_t first, uint32_t n)
{
    uint32_t u = first, end = first + n;
    size_t block = (size_t)64 << sim->ws_shift;
    while (u < end) {
        if ((u & 63u) == 0 && end - u >= 64 &&
            all_bytes(sim->data + ((size_t)u << sim->ws_shift), block, sim->port.erased_val)) {
            memset(map + (u >> 3), 0, 8);
            u += 64;
            continue;
        }
        uint8_t bit = (uint8_t)(1u << (u & 7u));
        if (unit_erased(sim, u)) {
            map[u >> 3] &= (uint8_t)~bit;
        } else {
            map[u >> 3] |= bit;
        }
        u++;
    }
}

static void derive_prog(airlock_sim_flash_t *sim, uint32_t first, uint32_t n)
{
    derive_map(sim, sim->prog_map, first, n);
}

/* ---- writing the contents ---------------------------------------------------- */

/* pwrite all len bytes at off; 0, or -1 and errno. */
static int write_all(int fd, uint32_t off, const uint8_t *src, uint32_t len)
{
    while (len > 0) {
        ssize_t k = pwrite(fd, src, len, (off_t)off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            errno = k == 0 ? EIO : errno;
            return -1;
        }
        off += (uint32_t)k;
        src += k;
        len -= (uint32_t)k;
    }
    return 0;
}

/*
 * Copy len bytes to addr. A file-backed sim writes the file with pwrite, not
 * through its mapping: the mapping shares the page cache, so it sees the
 * bytes at once, and a first store through a shared mapping costs a write
 * fault per page, several times the copy. Returns 0 or AIRLOCK_ERR_IO.
 */
static int store(airlock_sim_flash_t *sim, uint32_t addr, const uint8_t *src, uint32_t len)
{
    if (sim->fd < 0) {
        memcpy(sim->data + addr, src, len);
        return 0;
    }
    return write_all(sim->fd, addr, src, len) ? AIRLOCK_ERR_IO : 0;
}

/* Set len bytes at addr to erased_val; bytes already erased are not written. */
static int store_erased(airlock_sim_flash_t *sim, uint32_t addr, uint32_t len)
{
    if (all_bytes(sim->data + addr, len, sim->port.erased_val)) {
        return 0;
    }
    if (sim->fd < 0) {
        memset(sim->data + addr, sim->port.erased_val, len);
        return 0;
    }
    while (len > 0) {
        uint32_t k = len < BLANK_LEN ? len : BLANK_LEN;
        int err = store(sim, addr, sim->blank, k);
        if (err) {
            return err;
        }
        addr += k;
        len -= k;
    }
    return 0;
}

/* ---- sectors and counters ------------------------------------------------- */

/* Index of the sector containing addr (addr < size). */
static uint32_t sector_of(const airlock_sim_flash_t *sim, uint32_t addr)
{
    uint32_t lo = 0, hi = sim->nsec; /* sec_start[lo] <= addr < sec_start[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sim->sec_start[mid] <= addr) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Sector s's prog_map bits, derived into map from its bytes. */
static void derive_sector(const airlock_sim_flash_t *sim, uint8_t *map, uint32_t s)
{
    uint32_t start = (uint32_t)sim->sec_start[s];
    uint32_t size = (uint32_t)(sim->sec_start[s + 1] - start);
    derive_map(sim, map, start >> sim->ws_shift, size >> sim->ws_shift);
}

/* Before prog_map is read or changed in [addr, addr + len): derive what is still lazy. */
static void derive_lazy(airlock_sim_flash_t *sim, uint32_t addr, uint32_t len)
{
    if (!sim->lazy || addr >= sim->port.size || len == 0) {
        return;
    }
    uint32_t last = len - 1u >= sim->port.size - addr ? sim->port.size - 1u : addr + len - 1u;
    for (uint32_t s = sector_of(sim, addr), e = sector_of(sim, last); s <= e; s++) {
        if (sim->lazy[s]) {
            derive_sector(sim, sim->prog_map, s);
            sim->lazy[s] = 0;
        }
    }
}

/* Count a performed read or prog of len bytes at addr, split over sectors. */
static void count_access(airlock_sim_flash_t *sim, int op, uint32_t addr, uint32_t len)
{
    bool rd = op == AIRLOCK_SIM_FLASH_OP_READ;
    if (rd) {
        sim->total.read_calls++;
        sim->total.read_bytes += len;
    } else {
        sim->total.prog_calls++;
        sim->total.prog_bytes += len;
    }
    if (len == 0) {
        /* Still a call on the sector it addresses (if any). */
        if (addr < sim->port.size) {
            airlock_sim_flash_counts_t *c = &sim->per_sec[sector_of(sim, addr)];
            if (rd) {
                c->read_calls++;
            } else {
                c->prog_calls++;
            }
        }
        return;
    }
    uint64_t pos = addr, end = (uint64_t)addr + len;
    for (uint32_t s = sector_of(sim, addr); pos < end; s++) {
        uint64_t chunk = (end < sim->sec_start[s + 1] ? end : sim->sec_start[s + 1]) - pos;
        airlock_sim_flash_counts_t *c = &sim->per_sec[s];
        if (rd) {
            c->read_calls++;
            c->read_bytes += chunk;
        } else {
            c->prog_calls++;
            c->prog_bytes += chunk;
        }
        pos += chunk;
    }
}

/* ---- violations ------------------------------------------------------------ */

static int violation(airlock_sim_flash_t *sim, int err, int op, uint32_t addr, uint32_t len,
                     uint32_t at)
{
    sim->viol[-101 - err]++;
    sim->last_viol.err = err;
    sim->last_viol.op = op;
    sim->last_viol.addr = addr;
    sim->last_viol.len = len;
    sim->last_viol.at = at;
    return err;
}

static int check_prog(airlock_sim_flash_t *sim, uint32_t addr, const uint8_t *buf, uint32_t len)
{
    const int op = AIRLOCK_SIM_FLASH_OP_PROG;
    if ((uint64_t)addr + len > sim->port.size) {
        return violation(sim, AIRLOCK_SIM_FLASH_ERR_RANGE, op, addr, len, addr);
    }
    if ((addr | len) & (ws(sim) - 1u)) {
        return violation(sim, AIRLOCK_SIM_FLASH_ERR_ALIGN, op, addr, len, addr);
    }
    uint32_t first = addr >> sim->ws_shift, n = len >> sim->ws_shift;
    uint32_t u = first_prog(sim, first, n);
    if (u < first + n) {
        return violation(sim, AIRLOCK_SIM_FLASH_ERR_REPROG, op, addr, len, u << sim->ws_shift);
    }
    uint32_t i = first_bit_back(sim->data + addr, buf, len, sim->port.erased_val);
    if (i < len) {
        return violation(sim, AIRLOCK_SIM_FLASH_ERR_BIT_BACK, op, addr, len, addr + i);
    }
    return 0;
}

uint64_t airlock_sim_flash_violations(const airlock_sim_flash_t *sim, int err)
{
    if (err == 0) {
        uint64_t n = 0;
        for (int i = 0; i < NVIOL; i++) {
            n += sim->viol[i];
        }
        return n;
    }
    if (err > -101 || err < -101 - (NVIOL - 1)) {
        return 0;
    }
    return sim->viol[-101 - err];
}

bool airlock_sim_flash_last_violation(const airlock_sim_flash_t *sim,
                                      airlock_sim_flash_violation_t *out)
{
    if (out) {
        *out = sim->last_viol;
    }
    return sim->last_viol.err != 0;
}

const char *airlock_sim_flash_violation_str(const airlock_sim_flash_t *sim)
{
    airlock_sim_flash_t *s = (airlock_sim_flash_t *)sim; /* desc is scratch */
    const airlock_sim_flash_violation_t *v = &sim->last_viol;
    if (v->err == 0) {
        return "";
    }
    snprintf(s->desc, sizeof s->desc, "%s at 0x%lx len %lu: %s at 0x%lx (%s)", op_name(v->op),
             (unsigned long)v->addr, (unsigned long)v->len, airlock_sim_flash_errname(v->err),
             (unsigned long)v->at, airlock_sim_flash_strerror(v->err));
    return s->desc;
}

/* ---- power and cuts -------------------------------------------------------- */

/*
 * Number a call of kind op (if op is counted) and say whether it is the one
 * power dies in.
 */
static bool tick(airlock_sim_flash_t *sim, int op)
{
    if (!(sim->counted & (unsigned)op)) {
        return false;
    }
    uint64_t idx = sim->ops++;
    if (!sim->cut_pending) {
        return false;
    }
    if (sim->cut_in > 0) {
        sim->cut_in--;
        return false;
    }
    sim->cut_pending = false;
    sim->powered = false;
    memset(&sim->cut, 0, sizeof sim->cut);
    sim->cut.happened = true;
    sim->cut.op = op;
    sim->cut.index = idx;
    sim->cut.half = -1;
    sim->cut.tear = AIRLOCK_SIM_FLASH_TEAR_NOTHING;
    return true;
}

/* Choose how this prog (is_erase false) or erase is torn. */
static int pick_tear(airlock_sim_flash_t *sim, bool is_erase)
{
    static const int any_prog[8] = {2, 3, 4, 4, 4, 5, 5, 6};
    static const int any_erase[8] = {2, 3, 4, 4, 5, 6, 6, 7};
    static const int part_prog[6] = {4, 4, 4, 5, 5, 6};
    static const int part_erase[4] = {4, 5, 6, 7};
    int t;
    switch (sim->tear_policy) {
    case AIRLOCK_SIM_FLASH_TEAR_ANY:
        t = is_erase ? any_erase[rnd_below(sim, 8)] : any_prog[rnd_below(sim, 8)];
        break;
    case AIRLOCK_SIM_FLASH_TEAR_PARTIAL:
        t = is_erase ? part_erase[rnd_below(sim, 4)] : part_prog[rnd_below(sim, 6)];
        break;
    default:
        t = sim->tear_policy;
        break;
    }
    if (!is_erase && t == AIRLOCK_SIM_FLASH_TEAR_NOISE) {
        t = AIRLOCK_SIM_FLASH_TEAR_DRIFT;
    }
    return t;
}

/* Write prog unit i (of the call at addr) fully, or half: a random part of its bits. */
static void write_unit(airlock_sim_flash_t *sim, uint32_t addr, const uint8_t *buf, uint32_t i,
                       bool half)
{
    uint32_t w = ws(sim), off = i * w;
    uint8_t e = sim->port.erased_val;
    uint8_t *p = sim->data + addr + off;
    uint8_t mask[32];
    if (half) {
        rnd_fill(sim, mask, w);
    }
    bool touched = false;
    for (uint32_t b = 0; b < w; b++) {
        /* Distance from erased: old | (want & mask); check_prog made old a subset of want. */
        uint8_t old = (uint8_t)(p[b] ^ e), want = (uint8_t)(buf[off + b] ^ e);
        uint8_t now = half ? (uint8_t)(old | (want & mask[b])) : want;
        touched |= now != old;
        p[b] = (uint8_t)(now ^ e);
    }
    /*
     * A completed write programs the unit. A half write in which no bit
     * moved is indistinguishable from no write at all: no algorithm can act
     * on it, so it does not count (nor would it on a part without ECC).
     */
    unit_set(sim, (addr >> sim->ws_shift) + i, half ? touched : true);
}

static void tear_prog(airlock_sim_flash_t *sim, uint32_t addr, const uint8_t *buf, uint32_t len)
{
    uint32_t n = len >> sim->ws_shift, done = 0;
    int32_t half = -1;
    int t = pick_tear(sim, false);
    switch (t) {
    case AIRLOCK_SIM_FLASH_TEAR_DONE:
        for (uint32_t i = 0; i < n; i++) {
            write_unit(sim, addr, buf, i, false);
        }
        done = n;
        break;
    case AIRLOCK_SIM_FLASH_TEAR_PREFIX:
        if (n == 0) {
            break;
        }
        done = (uint32_t)rnd_below(sim, n);
        for (uint32_t i = 0; i < done; i++) {
            write_unit(sim, addr, buf, i, false);
        }
        if (rnd(sim) & 1u) {
            half = (int32_t)done;
            write_unit(sim, addr, buf, done, true);
        }
        break;
    case AIRLOCK_SIM_FLASH_TEAR_UNITS: {
        if (n == 0) {
            break;
        }
        /* One candidate for the half unit; every other unit tosses a coin. */
        uint32_t cand = (uint32_t)rnd_below(sim, n);
        bool do_half = rnd(sim) & 1u;
        for (uint32_t i = 0; i < n; i++) {
            if (i == cand && do_half) {
                half = (int32_t)i;
                write_unit(sim, addr, buf, i, true);
            } else if (rnd(sim) & 1u) {
                write_unit(sim, addr, buf, i, false);
                done++;
            }
        }
        break;
    }
    case AIRLOCK_SIM_FLASH_TEAR_DRIFT:
        for (uint32_t i = 0; i < n; i++) {
            write_unit(sim, addr, buf, i, true);
        }
        break;
    default: /* NOTHING */
        break;
    }
    sim->cut.tear = t;
    sim->cut.units = n;
    sim->cut.done = done;
    sim->cut.half = half;
}

/* Erase unit u completely. */
static void erase_unit(airlock_sim_flash_t *sim, uint32_t u)
{
    memset(sim->data + ((size_t)u << sim->ws_shift), sim->port.erased_val, ws(sim));
    unit_set(sim, u, false);
}

static void tear_erase(airlock_sim_flash_t *sim, uint32_t start, uint32_t size)
{
    uint32_t first = start >> sim->ws_shift, n = size >> sim->ws_shift, done = 0;
    uint8_t e = sim->port.erased_val;
    int t = pick_tear(sim, true);
    switch (t) {
    case AIRLOCK_SIM_FLASH_TEAR_DONE:
        done = n;
        break;
    case AIRLOCK_SIM_FLASH_TEAR_PREFIX:
        done = (uint32_t)rnd_below(sim, n);
        break;
    default:
        break;
    }
    if (t == AIRLOCK_SIM_FLASH_TEAR_DONE || t == AIRLOCK_SIM_FLASH_TEAR_PREFIX) {
        for (uint32_t i = 0; i < done; i++) {
            erase_unit(sim, first + i);
        }
    } else if (t == AIRLOCK_SIM_FLASH_TEAR_UNITS) {
        for (uint32_t i = 0; i < n; i++) {
            if (rnd(sim) & 1u) {
                erase_unit(sim, first + i);
                done++;
            }
        }
    } else if (t == AIRLOCK_SIM_FLASH_TEAR_DRIFT || t == AIRLOCK_SIM_FLASH_TEAR_NOISE) {
        /*
         * Disturbed units are in no known state: programmed unless unchanged,
         * except that one which now reads fully erased counts as erased (what
         * reads erased is all any algorithm can go by).
         */
        uint32_t w = ws(sim);
        uint8_t r[32];
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *p = sim->data + ((size_t)(first + i) << sim->ws_shift);
            bool changed = false, blank = true;
            rnd_fill(sim, r, w);
            for (uint32_t b = 0; b < w; b++) {
                uint8_t now = t == AIRLOCK_SIM_FLASH_TEAR_NOISE
                                  ? r[b]
                                  : (uint8_t)((((p[b] ^ e) & r[b])) ^ e); /* bits only drop */
                changed |= now != p[b];
                blank &= now == e;
                p[b] = now;
            }
            if (blank) {
                unit_set(sim, first + i, false);
            } else if (changed) {
                unit_set(sim, first + i, true);
            }
        }
    }
    sim->cut.tear = t;
    sim->cut.units = n;
    sim->cut.done = done;
}

void airlock_sim_flash_seed(airlock_sim_flash_t *sim, uint64_t seed)
{
    sim->seed = seed;
    sim->rng = seed;
}

uint64_t airlock_sim_flash_get_seed(const airlock_sim_flash_t *sim)
{
    return sim->seed;
}

void airlock_sim_flash_count_ops(airlock_sim_flash_t *sim, unsigned ops)
{
    unsigned all = AIRLOCK_SIM_FLASH_OP_READ | AIRLOCK_SIM_FLASH_OP_PROG |
                   AIRLOCK_SIM_FLASH_OP_ERASE | AIRLOCK_SIM_FLASH_OP_SYNC;
    ops &= all;
    sim->counted = ops ? ops : (AIRLOCK_SIM_FLASH_OP_PROG | AIRLOCK_SIM_FLASH_OP_ERASE);
}

int airlock_sim_flash_set_tear(airlock_sim_flash_t *sim, int policy)
{
    if (policy < AIRLOCK_SIM_FLASH_TEAR_ANY || policy > AIRLOCK_SIM_FLASH_TEAR_NOISE) {
        return AIRLOCK_ERR_INVAL;
    }
    sim->tear_policy = policy;
    return 0;
}

void airlock_sim_flash_cut_at(airlock_sim_flash_t *sim, uint64_t k)
{
    sim->cut_pending = true;
    sim->cut_in = k;
}

uint64_t airlock_sim_flash_cut_random(airlock_sim_flash_t *sim, uint64_t lo, uint64_t hi)
{
    uint64_t k = hi > lo ? lo + rnd_below(sim, hi - lo) : lo;
    airlock_sim_flash_cut_at(sim, k);
    return k;
}

void airlock_sim_flash_cut_cancel(airlock_sim_flash_t *sim)
{
    sim->cut_pending = false;
}

void airlock_sim_flash_power_off(airlock_sim_flash_t *sim)
{
    sim->powered = false;
}

void airlock_sim_flash_power_on(airlock_sim_flash_t *sim)
{
    sim->powered = true;
    sim->ops = 0;
}

bool airlock_sim_flash_powered(const airlock_sim_flash_t *sim)
{
    return sim->powered;
}

uint64_t airlock_sim_flash_ops(const airlock_sim_flash_t *sim)
{
    return sim->ops;
}

bool airlock_sim_flash_last_cut(const airlock_sim_flash_t *sim, airlock_sim_flash_cut_t *out)
{
    *out = sim->cut;
    return out->happened;
}

const char *airlock_sim_flash_cut_str(const airlock_sim_flash_t *sim)
{
    airlock_sim_flash_t *s = (airlock_sim_flash_t *)sim; /* desc is scratch */
    const airlock_sim_flash_cut_t *c = &sim->cut;
    char *d = s->desc;
    size_t cap = sizeof s->desc;
    int n;
    if (!c->happened) {
        return "";
    }
    n = snprintf(d, cap, "op %llu %s at 0x%lx len %lu: ", (unsigned long long)c->index,
                 op_name(c->op), (unsigned long)c->addr, (unsigned long)c->len);
    if (n < 0 || (size_t)n >= cap) {
        return d;
    }
    d += n;
    cap -= (size_t)n;
    if (c->err != AIRLOCK_SIM_FLASH_ERR_CUT) {
        snprintf(d, cap, "refused (%s), nothing torn", airlock_sim_flash_errname(c->err));
    } else if (c->op == AIRLOCK_SIM_FLASH_OP_READ || c->op == AIRLOCK_SIM_FLASH_OP_SYNC) {
        snprintf(d, cap, "failed");
    } else if (c->tear == AIRLOCK_SIM_FLASH_TEAR_DRIFT || c->tear == AIRLOCK_SIM_FLASH_TEAR_NOISE) {
        snprintf(d, cap, "%s, all %lu units %s", airlock_sim_flash_tear_name(c->tear),
                 (unsigned long)c->units,
                 c->op == AIRLOCK_SIM_FLASH_OP_PROG ? "half-programmed" : "disturbed");
    } else {
        char half[40] = "";
        if (c->half >= 0) {
            snprintf(half, sizeof half, ", unit %ld half", (long)c->half);
        }
        snprintf(d, cap, "%s, %lu of %lu units %s%s", airlock_sim_flash_tear_name(c->tear),
                 (unsigned long)c->done, (unsigned long)c->units,
                 c->op == AIRLOCK_SIM_FLASH_OP_PROG ? "written" : "erased", half);
    }
    return s->desc;
}

/* ---- the port --------------------------------------------------------------- */

static int sim_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    airlock_sim_flash_t *sim = ctx;
    if (!sim->powered) {
        return AIRLOCK_SIM_FLASH_ERR_POWER_OFF;
    }
    if (!buf && len > 0) {
        return AIRLOCK_ERR_INVAL;
    }
    int err = 0;
    if ((uint64_t)addr + len > sim->port.size) {
        err =
            violation(sim, AIRLOCK_SIM_FLASH_ERR_RANGE, AIRLOCK_SIM_FLASH_OP_READ, addr, len, addr);
    }
    if (tick(sim, AIRLOCK_SIM_FLASH_OP_READ)) {
        sim->cut.addr = addr;
        sim->cut.len = len;
        sim->cut.err = err ? err : AIRLOCK_SIM_FLASH_ERR_CUT;
        if (err) {
            return err;
        }
        rnd_fill(sim, buf, len);
        return AIRLOCK_SIM_FLASH_ERR_CUT;
    }
    if (err) {
        return err;
    }
    if (len > 0) {
        memcpy(buf, sim->data + addr, len);
    }
    count_access(sim, AIRLOCK_SIM_FLASH_OP_READ, addr, len);
    return 0;
}

static int sim_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    airlock_sim_flash_t *sim = ctx;
    if (!sim->powered) {
        return AIRLOCK_SIM_FLASH_ERR_POWER_OFF;
    }
    if (!buf && len > 0) {
        return AIRLOCK_ERR_INVAL;
    }
    derive_lazy(sim, addr, len);
    int err = check_prog(sim, addr, buf, len);
    if (tick(sim, AIRLOCK_SIM_FLASH_OP_PROG)) {
        sim->cut.addr = addr;
        sim->cut.len = len;
        sim->cut.err = err ? err : AIRLOCK_SIM_FLASH_ERR_CUT;
        if (err) {
            return err;
        }
        tear_prog(sim, addr, buf, len);
        count_access(sim, AIRLOCK_SIM_FLASH_OP_PROG, addr, len);
        return AIRLOCK_SIM_FLASH_ERR_CUT;
    }
    if (err) {
        return err;
    }
    /* check_prog proved every bit only moves away from erased: a plain copy is the AND. */
    if (len > 0 && store(sim, addr, buf, len) != 0) {
        return AIRLOCK_ERR_IO;
    }
    units_set(sim, addr >> sim->ws_shift, len >> sim->ws_shift, true);
    count_access(sim, AIRLOCK_SIM_FLASH_OP_PROG, addr, len);
    return 0;
}

static int sim_erase(void *ctx, uint32_t addr)
{
    airlock_sim_flash_t *sim = ctx;
    const int op = AIRLOCK_SIM_FLASH_OP_ERASE;
    uint32_t s = 0, start = 0, size = 0;
    int err = 0;
    if (!sim->powered) {
        return AIRLOCK_SIM_FLASH_ERR_POWER_OFF;
    }
    if (addr >= sim->port.size) {
        err = violation(sim, AIRLOCK_SIM_FLASH_ERR_RANGE, op, addr, 0, addr);
    } else {
        s = sector_of(sim, addr);
        start = (uint32_t)sim->sec_start[s];
        size = (uint32_t)(sim->sec_start[s + 1] - start);
        if (start != addr) {
            err = violation(sim, AIRLOCK_SIM_FLASH_ERR_ERASE_ADDR, op, addr, size, addr);
        }
    }
    if (tick(sim, op)) {
        sim->cut.addr = addr;
        sim->cut.len = size;
        sim->cut.err = err ? err : AIRLOCK_SIM_FLASH_ERR_CUT;
        if (err) {
            return err;
        }
        derive_lazy(sim, start, size);
        tear_erase(sim, start, size);
        sim->total.erases++;
        sim->per_sec[s].erases++;
        return AIRLOCK_SIM_FLASH_ERR_CUT;
    }
    if (err) {
        return err;
    }
    if (store_erased(sim, start, size) != 0) {
        return AIRLOCK_ERR_IO;
    }
    units_set(sim, start >> sim->ws_shift, size >> sim->ws_shift, false);
    if (sim->lazy) {
        sim->lazy[s] = 0; /* erased: known without reading */
    }
    sim->total.erases++;
    sim->per_sec[s].erases++;
    return 0;
}

/* Every prog and erase is already durable (RAM, or the shared mapping); a sync can still be cut. */
static int sim_sync(void *ctx)
{
    airlock_sim_flash_t *sim = ctx;
    if (!sim->powered) {
        return AIRLOCK_SIM_FLASH_ERR_POWER_OFF;
    }
    if (tick(sim, AIRLOCK_SIM_FLASH_OP_SYNC)) {
        sim->cut.err = AIRLOCK_SIM_FLASH_ERR_CUT;
        return AIRLOCK_SIM_FLASH_ERR_CUT;
    }
    sim->total.syncs++;
    return 0;
}

const airlock_flash_t *airlock_sim_flash_port(airlock_sim_flash_t *sim)
{
    return &sim->port;
}

/* ---- life cycle ------------------------------------------------------------- */

/* Allocate everything but the contents; validate the geometry. */
static int sim_new(const airlock_sim_flash_geometry_t *geo, airlock_sim_flash_t **out)
{
    airlock_sim_flash_t *sim;
    uint64_t sum = 0, nsec = 0;
    if (!geo || !out || !geo->runs || geo->nruns == 0) {
        return AIRLOCK_ERR_INVAL;
    }
    for (uint32_t r = 0; r < geo->nruns; r++) {
        sum += (uint64_t)geo->runs[r].count * geo->runs[r].size;
        nsec += geo->runs[r].count;
    }
    if (sum > UINT32_MAX || nsec > UINT32_MAX) {
        return AIRLOCK_ERR_INVAL;
    }
    sim = calloc(1, sizeof *sim);
    if (!sim) {
        return AIRLOCK_ERR_NOMEM;
    }
    sim->fd = -1;
    sim->port.ctx = sim;
    sim->port.read = sim_read;
    sim->port.prog = sim_prog;
    sim->port.erase = sim_erase;
    sim->port.sync = sim_sync;
    sim->port.size = geo->size ? geo->size : (uint32_t)sum;
    sim->port.write_size = geo->write_size;
    sim->port.erased_val = geo->erased_val;
    sim->port.nruns = geo->nruns;
    sim->runs = malloc(geo->nruns * sizeof *sim->runs);
    if (!sim->runs) {
        free(sim);
        return AIRLOCK_ERR_NOMEM;
    }
    memcpy(sim->runs, geo->runs, geo->nruns * sizeof *sim->runs);
    sim->port.runs = sim->runs;
    if (airlock_flash_check(&sim->port) != 0) {
        airlock_sim_flash_close(sim);
        return AIRLOCK_ERR_INVAL;
    }
    while ((1u << sim->ws_shift) < geo->write_size) {
        sim->ws_shift++;
    }
    sim->nsec = (uint32_t)nsec;
    sim->nunits = sim->port.size >> sim->ws_shift;
    sim->sec_start = malloc((nsec + 1) * sizeof *sim->sec_start);
    sim->per_sec = calloc(nsec, sizeof *sim->per_sec);
    sim->prog_map = calloc((sim->nunits + 7u) / 8u, 1);
    if (!sim->sec_start || !sim->per_sec || !sim->prog_map) {
        airlock_sim_flash_close(sim);
        return AIRLOCK_ERR_NOMEM;
    }
    uint64_t pos = 0;
    uint32_t i = 0;
    for (uint32_t r = 0; r < geo->nruns; r++) {
        for (uint32_t c = 0; c < geo->runs[r].count; c++) {
            sim->sec_start[i++] = pos;
            pos += geo->runs[r].size;
        }
    }
    sim->sec_start[i] = pos;
    sim->powered = true;
    sim->counted = AIRLOCK_SIM_FLASH_OP_PROG | AIRLOCK_SIM_FLASH_OP_ERASE;
    sim->tear_policy = AIRLOCK_SIM_FLASH_TEAR_ANY;
    airlock_sim_flash_seed(sim, 1);
    *out = sim;
    return 0;
}

int airlock_sim_flash_create(const airlock_sim_flash_geometry_t *geo, airlock_sim_flash_t **out)
{
    airlock_sim_flash_t *sim;
    int err = sim_new(geo, &sim);
    if (err) {
        return err;
    }
    sim->data = malloc(sim->port.size);
    if (!sim->data) {
        airlock_sim_flash_close(sim);
        return AIRLOCK_ERR_NOMEM;
    }
    memset(sim->data, sim->port.erased_val, sim->port.size);
    *out = sim;
    return 0;
}

/*
 * Create path as a new flash file, every byte erased_val, and return it open
 * (-1 and errno on failure; EEXIST if path appeared meanwhile). The file is
 * filled and synced under a temporary name in the same directory and only
 * then linked into place, so path never names a file that is not yet all
 * erased: a process killed while creating (or a host crash) leaves no file
 * at path, at worst a stray "<path>.new-<pid>-<n>", never one of zeros that
 * a later open would take for a flash programmed throughout. link, unlike
 * rename, never replaces a file another process created in the meantime.
 */
static int create_file(airlock_sim_flash_t *sim, const char *path)
{
    size_t cap = strlen(path) + 40;
    char *tmp = malloc(cap);
    int fd = -1, err = 0;
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (unsigned n = 0; fd < 0 && n < 100; n++) {
        snprintf(tmp, cap, "%s.new-%ld-%u", path, (long)getpid(), n);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0644);
        if (fd < 0 && errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    if (sim->port.erased_val == 0x00) {
        err = ftruncate(fd, (off_t)sim->port.size) != 0; /* holes read as zeros */
    } else {
        for (uint32_t at = 0; !err && at < sim->port.size; at += BLANK_LEN) {
            uint32_t k = sim->port.size - at < BLANK_LEN ? sim->port.size - at : BLANK_LEN;
            err = write_all(fd, at, sim->blank, k) != 0;
#if defined(SYNC_FILE_RANGE_WRITE)
            /* start writing back each 8 MiB now, so the fsync below waits for little */
            if (!err && (at + k) % SYNC_STEP == 0) {
                (void)sync_file_range(fd, at + k - SYNC_STEP, SYNC_STEP, SYNC_FILE_RANGE_WRITE);
            }
#endif
        }
    }
    err = err || fsync(fd) != 0;
    if (!err && link(tmp, path) != 0) {
        /* No hard links on this file system: rename (which may replace a racing creator's file). */
        err = !(errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS) || rename(tmp, path) != 0;
    }
    int saved = errno;
    unlink(tmp); /* after link: the file lives on under path */
    free(tmp);
    if (err) {
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int airlock_sim_flash_open(const char *path, const airlock_sim_flash_geometry_t *geo,
                           airlock_sim_flash_t **out)
{
    airlock_sim_flash_t *sim;
    struct stat st;
    int err;
    if (!path) {
        return AIRLOCK_ERR_INVAL;
    }
    err = sim_new(geo, &sim);
    if (err) {
        return err;
    }
    sim->blank = malloc(BLANK_LEN);
    if (!sim->blank) {
        airlock_sim_flash_close(sim);
        return AIRLOCK_ERR_NOMEM;
    }
    memset(sim->blank, sim->port.erased_val, BLANK_LEN);
    bool created = false;
    sim->fd = open(path, O_RDWR);
    if (sim->fd < 0 && errno == ENOENT) {
        sim->fd = create_file(sim, path);
        created = sim->fd >= 0;
        if (sim->fd < 0 && errno == EEXIST) {
            sim->fd = open(path, O_RDWR); /* another process created it first */
        }
    }
    if (sim->fd < 0 || fstat(sim->fd, &st) != 0) {
        goto io_fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != sim->port.size) {
        airlock_sim_flash_close(sim);
        return AIRLOCK_ERR_INVAL;
    }
    void *map = mmap(NULL, sim->port.size, PROT_READ | PROT_WRITE, MAP_SHARED, sim->fd, 0);
    if (map == MAP_FAILED) {
        goto io_fail;
    }
    sim->data = map;
    if (!created) {
        sim->lazy = malloc(sim->nsec);
        if (!sim->lazy) {
            airlock_sim_flash_close(sim);
            return AIRLOCK_ERR_NOMEM;
        }
        memset(sim->lazy, 1, sim->nsec);
    }
    *out = sim;
    return 0;

io_fail:
    err = errno;
    airlock_sim_flash_close(sim);
    errno = err;
    return AIRLOCK_ERR_IO;
}

void airlock_sim_flash_close(airlock_sim_flash_t *sim)
{
    if (!sim) {
        return;
    }
    if (sim->fd >= 0) {
        if (sim->data) {
            munmap(sim->data, sim->port.size);
        }
        close(sim->fd);
    } else {
        free(sim->data);
    }
    free(sim->blank);
    free(sim->runs);
    free(sim->sec_start);
    free(sim->per_sec);
    free(sim->prog_map);
    free(sim->lazy);
    free(sim);
}

/* ---- counters (public) ------------------------------------------------------- */

void airlock_sim_flash_counts(const airlock_sim_flash_t *sim, airlock_sim_flash_counts_t *out)
{
    *out = sim->total;
}

uint32_t airlock_sim_flash_nsectors(const airlock_sim_flash_t *sim)
{
    return sim->nsec;
}

int airlock_sim_flash_sector(const airlock_sim_flash_t *sim, uint32_t index, uint32_t *start,
                             uint32_t *size, airlock_sim_flash_counts_t *counts)
{
    if (index >= sim->nsec) {
        return AIRLOCK_ERR_INVAL;
    }
    if (start) {
        *start = (uint32_t)sim->sec_start[index];
    }
    if (size) {
        *size = (uint32_t)(sim->sec_start[index + 1] - sim->sec_start[index]);
    }
    if (counts) {
        *counts = sim->per_sec[index];
    }
    return 0;
}

uint64_t airlock_sim_flash_max_erases(const airlock_sim_flash_t *sim, uint32_t *index)
{
    uint64_t max = 0;
    uint32_t at = 0;
    for (uint32_t s = 0; s < sim->nsec; s++) {
        if (sim->per_sec[s].erases > max) {
            max = sim->per_sec[s].erases;
            at = s;
        }
    }
    if (index) {
        *index = at;
    }
    return max;
}

void airlock_sim_flash_reset_counts(airlock_sim_flash_t *sim)
{
    memset(&sim->total, 0, sizeof sim->total);
    memset(sim->per_sec, 0, sim->nsec * sizeof *sim->per_sec);
    memset(sim->viol, 0, sizeof sim->viol);
    memset(&sim->last_viol, 0, sizeof sim->last_viol);
    sim->ops = 0;
}

/* ---- direct access ------------------------------------------------------------ */

uint8_t *airlock_sim_flash_data(airlock_sim_flash_t *sim)
{
    return sim->data;
}

int airlock_sim_flash_load(airlock_sim_flash_t *sim, uint32_t addr, const void *data, uint32_t len)
{
    if ((uint64_t)addr + len > sim->port.size || (!data && len > 0)) {
        return AIRLOCK_ERR_INVAL;
    }
    if (len == 0) {
        return 0;
    }
    memcpy(sim->data + addr, data, len);
    uint32_t first = addr >> sim->ws_shift, last = (addr + len - 1u) >> sim->ws_shift;
    derive_prog(sim, first, last - first + 1u);
    return 0;
}

void airlock_sim_flash_wipe(airlock_sim_flash_t *sim)
{
    memset(sim->data, sim->port.erased_val, sim->port.size);
    memset(sim->prog_map, 0, (sim->nunits + 7u) / 8u);
    if (sim->lazy) {
        memset(sim->lazy, 0, sim->nsec);
    }
}

bool airlock_sim_flash_programmed(const airlock_sim_flash_t *sim, uint32_t addr)
{
    if (addr >= sim->port.size) {
        return false;
    }
    uint32_t u = addr >> sim->ws_shift;
    if (sim->lazy && sim->lazy[sector_of(sim, addr)]) {
        return !unit_erased(sim, u); /* what deriving it would say */
    }
    return unit_prog(sim, u);
}

/* ---- snapshots ----------------------------------------------------------------- */

int airlock_sim_flash_save(const airlock_sim_flash_t *sim, airlock_sim_flash_snapshot_t **out)
{
    size_t map_len = (sim->nunits + 7u) / 8u;
    airlock_sim_flash_snapshot_t *snap = calloc(1, sizeof *snap);
    if (!snap) {
        return AIRLOCK_ERR_NOMEM;
    }
    snap->size = sim->port.size;
    snap->write_size = sim->port.write_size;
    snap->data = malloc(sim->port.size);
    snap->prog_map = malloc(map_len);
    if (!snap->data || !snap->prog_map) {
        airlock_sim_flash_snapshot_free(snap);
        return AIRLOCK_ERR_NOMEM;
    }
    memcpy(snap->data, sim->data, sim->port.size);
    memcpy(snap->prog_map, sim->prog_map, map_len);
    for (uint32_t s = 0; sim->lazy && s < sim->nsec; s++) {
        if (sim->lazy[s]) {
            derive_sector(sim, snap->prog_map, s); /* a snapshot's map is complete */
        }
    }
    *out = snap;
    return 0;
}

int airlock_sim_flash_restore(airlock_sim_flash_t *sim, const airlock_sim_flash_snapshot_t *snap)
{
    if (!snap || snap->size != sim->port.size || snap->write_size != sim->port.write_size) {
        return AIRLOCK_ERR_INVAL;
    }
    memcpy(sim->data, snap->data, sim->port.size);
    memcpy(sim->prog_map, snap->prog_map, (sim->nunits + 7u) / 8u);
    if (sim->lazy) {
        memset(sim->lazy, 0, sim->nsec);
    }
    return 0;
}

void airlock_sim_flash_snapshot_free(airlock_sim_flash_snapshot_t *snap)
{
    if (!snap) {
        return;
    }
    free(snap->data);
    free(snap->prog_map);
    free(snap);
}
