/*
 * A simulated device's flash on disk: a layout plus one file per flash
 * device, each the device's bytes exactly (port/sim_flash.c, file-backed).
 * The first flash of the layout lives at PATH, any further one at
 * PATH.NAME (NAME from its `flash` line). Missing files are created erased,
 * so a new PATH is a factory-fresh device. Shared by the commands that act
 * on a device's flash (`airlock fetch`, the device simulator).
 */
#ifndef AIRLOCK_TOOLS_DEVFLASH_H
#define AIRLOCK_TOOLS_DEVFLASH_H

#include "airlock/sim_flash.h"
#include "layout_file.h"

typedef struct devflash {
    layout_file_t lf; /* lf.layout's areas point at the files' ports */
    airlock_sim_flash_t *sims[LAYOUT_MAX_FLASH];
    unsigned nsims;
} devflash_t;

/*
 * Open layout (a file or a built-in name) and the flash file(s) at path.
 * Returns a heap devflash_t in *out and EXIT_OK_, or prints why and returns
 * EXIT_LAYOUT (bad layout), EXIT_IO (file cannot be created or opened, or
 * has another size than the layout's flash) or EXIT_INTERNAL.
 */
int devflash_open(const char *layout, const char *path, devflash_t **out);

/* Unmap the files and free d (NULL is a no-op). */
void devflash_close(devflash_t *d);

#endif
