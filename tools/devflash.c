/*
 * A simulated device's flash files (devflash.h): opens them as file-backed
 * sim flashes and puts a counting port in front of each, so one operation
 * number runs over all of the device's flashes. Never prints except through
 * cli_fail on open.
 */
#define _POSIX_C_SOURCE 200809L

#include "devflash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static int w_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    devflash_wrap_t *w = ctx;
    return w->inner->read(w->inner->ctx, addr, buf, len);
}

/* Number the call; in the chosen one, let the sim tear it and power all off. */
static void before_op(devflash_wrap_t *w)
{
    devflash_t *d = w->d;
    if (!d->cut && d->ops == d->cut_at) {
        airlock_sim_flash_cut_at(d->sims[w->idx], 0);
    }
    d->ops++;
}

static int after_op(devflash_wrap_t *w, int rc)
{
    devflash_t *d = w->d;
    /* The cut operation may also break a flash rule: the sim then reports
     * that error, not ERR_CUT, but its power is off all the same. */
    if (!d->cut && !airlock_sim_flash_powered(d->sims[w->idx])) {
        d->cut = true;
        d->cut_at = DEVFLASH_NO_CUT;
        for (unsigned i = 0; i < d->nsims; i++) {
            airlock_sim_flash_power_off(d->sims[i]);
        }
        if (d->on_cut) {
            d->on_cut(d->on_cut_ctx);
        }
    }
    return rc;
}

static int w_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    devflash_wrap_t *w = ctx;
    before_op(w);
    return after_op(w, w->inner->prog(w->inner->ctx, addr, buf, len));
}

static int w_erase(void *ctx, uint32_t addr)
{
    devflash_wrap_t *w = ctx;
    before_op(w);
    return after_op(w, w->inner->erase(w->inner->ctx, addr));
}

static int w_sync(void *ctx)
{
    devflash_wrap_t *w = ctx;
    return w->inner->sync ? w->inner->sync(w->inner->ctx) : 0;
}

void devflash_cut_at(devflash_t *d, uint64_t k, uint64_t seed)
{
    d->cut_at = k == DEVFLASH_NO_CUT ? DEVFLASH_NO_CUT : d->ops + k;
    for (unsigned i = 0; i < d->nsims; i++) {
        airlock_sim_flash_seed(d->sims[i], seed);
    }
}

static int open_device(devflash_t *d, unsigned i, const char *path)
{
    const layout_device_t *dev = &d->lf.dev[i];
    char name[4096];
    struct stat st;
    if (i == 0) {
        snprintf(name, sizeof(name), "%s", path);
    } else if ((size_t)snprintf(name, sizeof(name), "%s.%s", path, dev->name) >= sizeof(name)) {
        return cli_fail(EXIT_USAGE, "flash file name too long: %s.%s", path, dev->name);
    }
    airlock_sim_flash_geometry_t geo = {dev->flash.size, dev->flash.write_size,
                                        dev->flash.erased_val, dev->runs, dev->flash.nruns};
    if (stat(name, &st) == 0 && (uint64_t)st.st_size != dev->flash.size) {
        return cli_fail(EXIT_IO,
                        "%s: %lld bytes, but flash %s of layout %s is %u bytes: a flash file "
                        "made for another layout?",
                        name, (long long)st.st_size, dev->name, d->lf.source,
                        (unsigned)dev->flash.size);
    }
    int rc = airlock_sim_flash_open(name, &geo, &d->sims[i]);
    if (rc == AIRLOCK_ERR_IO) {
        return cli_fail(EXIT_IO, "%s: %s", name, strerror(errno));
    }
    if (rc) {
        return cli_fail(rc == AIRLOCK_ERR_NOMEM ? EXIT_INTERNAL : EXIT_LAYOUT,
                        "%s: cannot use as flash %s of %s: %s", name, dev->name, d->lf.source,
                        airlock_strerror(rc));
    }
    d->nsims = i + 1;
    d->wrap[i].d = d;
    d->wrap[i].idx = i;
    d->wrap[i].inner = airlock_sim_flash_port(d->sims[i]);
    airlock_flash_t port = *d->wrap[i].inner;
    port.ctx = &d->wrap[i];
    port.read = w_read;
    port.prog = w_prog;
    port.erase = w_erase;
    port.sync = w_sync;
    if (layout_file_set_ops(&d->lf, i, &port) != 0) {
        return cli_fail(EXIT_INTERNAL, "%s: flash port does not match the layout", name);
    }
    return EXIT_OK_;
}

int devflash_open(const char *layout, const char *path, devflash_t **out)
{
    layout_diag_t diag;
    devflash_t *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (!d) {
        return cli_fail(EXIT_INTERNAL, "out of memory");
    }
    d->cut_at = DEVFLASH_NO_CUT;
    int rc = layout_file_open(&d->lf, layout, &diag);
    if (rc) {
        char where[300];
        layout_diag_where(&d->lf, &diag, where, sizeof(where));
        free(d);
        return cli_fail(rc == LAYOUT_E_IO || rc == LAYOUT_E_NOT_FOUND ? EXIT_IO : EXIT_LAYOUT,
                        "%s: %s", where, diag.msg);
    }
    for (unsigned i = 0; i < d->lf.ndev; i++) {
        if ((rc = open_device(d, i, path)) != EXIT_OK_) {
            devflash_close(d);
            return rc;
        }
    }
    *out = d;
    return EXIT_OK_;
}

void devflash_close(devflash_t *d)
{
    if (!d) {
        return;
    }
    for (unsigned i = 0; i < d->nsims; i++) {
        airlock_sim_flash_close(d->sims[i]);
    }
    free(d);
}
