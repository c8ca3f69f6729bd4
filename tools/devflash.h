/*
 * A simulated device's flash on disk: a layout plus one file per flash
 * device, each the device's bytes exactly (port/sim_flash.c, file-backed).
 * The first flash of the layout lives at PATH, any further one at
 * PATH.NAME (NAME from its `flash` line). Missing files are created erased,
 * so a new PATH is a factory-fresh device. Every prog and erase of any of
 * the device's flashes is numbered, so a power cut can be placed at the
 * device's K-th flash operation. Shared by the commands that act on a
 * device's flash (`airlock fetch`, the device simulator, the demo firmware).
 */
#ifndef AIRLOCK_TOOLS_DEVFLASH_H
#define AIRLOCK_TOOLS_DEVFLASH_H

#include <stdbool.h>
#include <stdint.h>

#include "airlock/sim_flash.h"
#include "layout_file.h"

#define DEVFLASH_NO_CUT UINT64_MAX

struct devflash;

/* The port each layout device is given: counts, cuts, forwards to the sim. */
typedef struct devflash_wrap {
    struct devflash *d;
    unsigned idx;
    const airlock_flash_t *inner; /* the sim's port */
} devflash_wrap_t;

typedef struct devflash {
    layout_file_t lf; /* lf.layout's areas point at the devices, whose ports are wrap[] */
    airlock_sim_flash_t *sims[LAYOUT_MAX_FLASH];
    unsigned nsims;
    devflash_wrap_t wrap[LAYOUT_MAX_FLASH];
    uint64_t ops;    /* prog and erase calls of every flash since open or power on */
    uint64_t cut_at; /* the operation number to cut power in, DEVFLASH_NO_CUT: none */
    bool cut;        /* a cut happened: every flash is off (open the files again to reboot) */
    /* Called once right after the torn operation returned (may be NULL). */
    void (*on_cut)(void *ctx);
    void *on_cut_ctx;
} devflash_t;

/*
 * Open layout (a file or a built-in name) and the flash file(s) at path.
 * Returns a heap devflash_t in *out and EXIT_OK_, or prints why and returns
 * EXIT_LAYOUT (bad layout), EXIT_IO (file cannot be created or opened, or
 * has another size than the layout's flash) or EXIT_INTERNAL.
 */
int devflash_open(const char *layout, const char *path, devflash_t **out);

/*
 * Cut power during the device's operation number ops + k (k = 0: the next
 * prog or erase of any of its flashes): that call is torn as the sim flash
 * tears (seeded by seed), every flash is off afterwards, on_cut is called.
 * DEVFLASH_NO_CUT as k cancels.
 */
void devflash_cut_at(devflash_t *d, uint64_t k, uint64_t seed);

/* Unmap the files and free d (NULL is a no-op). */
void devflash_close(devflash_t *d);

#endif
