/*
 * The bootloader core: decide what to boot, install a requested update
 * through the chosen engine, resume an interrupted one, and never hand over
 * an image that does not verify. State lives in caller-owned structs; flash
 * is reached only through the layout's flash ports.
 */
#ifndef AIRLOCK_BOOT_H
#define AIRLOCK_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/crypto.h"
#include "airlock/err.h"
#include "airlock/image.h"
#include "airlock/layout.h"
#include "airlock/trailer.h"

struct airlock_boot;
struct airlock_boot_result;

/* Engine capabilities. */
#define AIRLOCK_ENGINE_CAN_REVERT 0x1u /* keeps the old image to go back to */

/*
 * An install engine: one .c file exporting one of these. Engines move
 * images between slots; the decision of what to do is airlock_boot's.
 * Every engine records its progress on flash before and after each
 * destructive step so that a reset at any flash operation resumes.
 */
typedef struct airlock_engine {
    const char *name;
    uint32_t caps;
    /* Can this engine run on b's layout? 0 or INVAL with det filled. */
    int (*check)(const struct airlock_boot *b, airlock_err_detail_t *det);
    /*
     * Offset in the secondary slot at which this engine expects a staged
     * update (0 for most; swap-2n wants room for one chunk in front).
     */
    uint32_t (*stage_offset)(const struct airlock_boot *b);
    /* Primary bytes the engine needs beyond the image (NULL: none). */
    uint32_t (*reserve)(const struct airlock_boot *b);
    /*
     * Engines that choose a slot instead of moving images (direct-xip,
     * ram-load) make the whole decision here; NULL for the others.
     */
    int (*select)(struct airlock_boot *b, struct airlock_boot_result *res);
    /*
     * Install the verified update staged in the secondary (new_len bytes,
     * header to last TLV, at stage_offset) as a TEST (trial) or PERM
     * (permanent) update. Returns once the primary holds it and the request
     * is consumed. Called again after a reset: it must converge from any
     * intermediate flash state (engines with a journal resume from it and
     * ignore new_len).
     */
    int (*install)(struct airlock_boot *b, uint32_t new_len, int swap_type);
    /* Put the previous image back (or resume doing so); NULL if impossible. */
    int (*revert)(struct airlock_boot *b);
} airlock_engine_t;

/* The engines. */
extern const airlock_engine_t airlock_engine_overwrite;
extern const airlock_engine_t airlock_engine_swap_2n;
extern const airlock_engine_t airlock_engine_swap_scratch;
extern const airlock_engine_t airlock_engine_swap_move;
extern const airlock_engine_t airlock_engine_direct_xip;
extern const airlock_engine_t airlock_engine_ram_load;

/* Every engine, NULL-terminated, for tools that pick one by name. */
extern const airlock_engine_t *const airlock_engines[];

/* The engine called name ("overwrite", "swap-2n", ...), or NULL. */
const airlock_engine_t *airlock_engine_find(const char *name);

/*
 * Flash operation counts of one airlock_boot call, every operation on every
 * device of the layout included (for benches and tests).
 */
typedef struct airlock_boot_stats {
    uint32_t erases;
    uint32_t progs;
    uint32_t prog_bytes;
    uint32_t reads;
    uint32_t read_bytes;
} airlock_boot_stats_t;

typedef struct airlock_boot_cfg {
    const airlock_layout_t *layout;
    const airlock_engine_t *engine;
    const airlock_crypto_t *crypto;
    /* Trusted keys. nkeys == 0 refuses every image unless allow_unsigned. */
    const airlock_pubkey_t *keys;
    size_t nkeys;
    bool allow_unsigned; /* accept hash-only images (development only) */
    /* Trial boots an unconfirmed update gets before it is reverted (>= 1). */
    uint32_t max_trials;
    /* Swap-status capacity in sectors (imgtool -M), default 128 when 0. */
    uint32_t max_sectors;
    /* Called between bounded steps of long operations; may be NULL. */
    void (*watchdog_feed)(void *ctx);
    void *watchdog_ctx;
    /*
     * Work buffer for copying and hashing: at least 64 bytes and a multiple
     * of 32; larger is faster (a sector's worth is plenty).
     */
    uint8_t *buf;
    uint32_t buf_len;
    /*
     * ram-load only: the RAM region images are loaded into. ram_base is the
     * address the image's load_addr refers to, ram its bytes here.
     */
    uint8_t *ram;
    uint32_t ram_base;
    uint32_t ram_size;
} airlock_boot_cfg_t;

/* What happened in this boot. */
enum airlock_boot_action {
    AIRLOCK_BOOT_NORMAL = 0,     /* booted the primary, nothing to do */
    AIRLOCK_BOOT_INSTALLED = 1,  /* installed the requested update, booting it */
    AIRLOCK_BOOT_TRIAL = 2,      /* booting an unconfirmed update for a trial */
    AIRLOCK_BOOT_REVERTED = 3,   /* went back to the previous image */
    AIRLOCK_BOOT_REJECTED = 4,   /* a requested update was refused; booting the old one */
    AIRLOCK_BOOT_FAILED = 5,     /* nothing verifiable to boot: do not jump */
};

/* "normal", "installed", ... */
const char *airlock_boot_action_name(int action);

typedef struct airlock_boot_result {
    int action;           /* enum airlock_boot_action */
    int err;              /* why, for REJECTED/FAILED (enum airlock_err), else 0 */
    const char *message;  /* one human sentence, static storage */
    int slot;             /* area to boot (AIRLOCK_AREA_PRIMARY) or -1 */
    uint32_t image_off;   /* entry: slot offset + hdr_size, valid when slot >= 0 */
    uint32_t ram_addr;    /* ram-load: where the image now sits in RAM (its load_addr) */
    uint32_t ram_len;     /* ram-load: bytes loaded (header to last TLV) */
    airlock_version_t version; /* of the image booted */
    bool confirmed;       /* the booted image is permanent (not on trial) */
    airlock_err_detail_t detail; /* for REJECTED/FAILED: field and offset */
} airlock_boot_result_t;

/*
 * The boot journal's state (core/journal.c): the swap in progress, trial
 * resolution, the security counter. Internal: read it, never write it.
 */
typedef struct airlock_journal {
    const airlock_area_t *area;
    uint32_t rec_size;   /* 16, or the write size when larger */
    uint32_t sec_off[2]; /* the two sectors, offsets within the area */
    uint32_t sec_size[2];
    int active;          /* sector holding the current log */
    uint32_t gen;
    uint32_t next;       /* offset (within the active sector) of the next record */
    /* replayed state */
    bool in_swap;
    uint32_t swap_type;
    uint32_t extent;
    uint32_t new_len;
    bool has_step;
    uint32_t step_chunk;
    uint32_t step;
    bool trial;          /* a TEST swap completed and is not resolved yet */
    bool reverted;       /* the last completed swap was a revert */
    bool has_rev_version;
    airlock_version_t rev_version; /* the image that revert removed */
    bool has_sec_cnt;
    uint32_t sec_cnt;
} airlock_journal_t;

/*
 * Internal: each flash device of the layout seen through a wrapper that
 * counts every operation (stats) and feeds the watchdog.
 */
typedef struct airlock_boot_port {
    airlock_flash_t port;
    const airlock_flash_t *inner;
    struct airlock_boot *b;
} airlock_boot_port_t;

/*
 * Caller-owned bootloader state (its size is all the RAM the core needs
 * besides cfg->buf and the stack).
 */
typedef struct airlock_boot {
    const airlock_boot_cfg_t *cfg;
    airlock_trailer_geom_t geom[AIRLOCK_AREA_COUNT];
    airlock_boot_stats_t stats;
    bool has_journal;           /* the layout has a status area */
    uint32_t old_end;           /* end of the primary's image before an install, 0 if none */
    airlock_journal_t journal;  /* the boot journal (valid when has_journal) */
    airlock_layout_t layout;    /* cfg->layout, its ports wrapped (ports[]) */
    airlock_boot_port_t ports[AIRLOCK_AREA_COUNT];
} airlock_boot_t;

/*
 * Run the bootloader once: resume or perform a requested install, count or
 * end a trial, verify the image to boot. Returns 0 when res->slot holds a
 * verified image to jump to, or the error (also in res->err) when nothing
 * can be booted (res->action == AIRLOCK_BOOT_FAILED). A flash I/O error
 * (a power cut in the simulator) returns AIRLOCK_ERR_IO: reset and call again.
 */
int airlock_boot(airlock_boot_t *b, const airlock_boot_cfg_t *cfg, airlock_boot_result_t *res);

/*
 * Where the engine of cfg expects an update in the secondary slot (bytes
 * from its start), and how long that update may be at most. Writers of the
 * secondary (the update agent, the simulator) stage images there.
 * Returns 0 or the configuration error.
 */
int airlock_boot_stage(const airlock_boot_cfg_t *cfg, uint32_t *offset, uint32_t *max_len);

/*
 * Application side. Request that the image in the secondary slot be
 * installed at the next boot: as a trial (permanent == false: it must call
 * airlock_boot_confirm after its health checks or it is reverted), or for
 * good. The secondary's trailer must be erased (a freshly written slot).
 */
int airlock_boot_request(const airlock_layout_t *layout, uint32_t max_sectors, bool permanent);

/*
 * The same for an update written into slot (AIRLOCK_AREA_PRIMARY or
 * _SECONDARY): with direct-xip and ram-load an update goes into whichever
 * slot does not hold the running image.
 */
int airlock_boot_request_slot(const airlock_layout_t *layout, uint32_t max_sectors,
                              bool permanent, int slot);

/*
 * Application side: mark the running (primary) image good so it is kept.
 * Idempotent: does nothing if it is already confirmed.
 */
int airlock_boot_confirm(const airlock_layout_t *layout, uint32_t max_sectors);

/*
 * The same for the image in slot (AIRLOCK_AREA_PRIMARY or _SECONDARY): with
 * direct-xip and ram-load the running image may be either (res.slot).
 */
int airlock_boot_confirm_slot(const airlock_layout_t *layout, uint32_t max_sectors, int slot);

#endif /* AIRLOCK_BOOT_H */
