/*
 * The SQLite store's memo of device rows and open actions (store_memo.h):
 * two direct-mapped tables, an entry valid while its generation is the
 * table's and it is younger than STORE_MEMO_TTL_MS. Forgetting is a
 * generation bump, so a write never walks the tables. It must never hand out
 * a pointer into itself: every answer is a copy.
 */
#define _POSIX_C_SOURCE 200809L

#include "store_memo.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEV_SLOTS 512 /* powers of two */
#define ACT_SLOTS 512
#define ATTR_MAX 4096 /* a row with longer attributes is not memoised */

struct dev_entry {
    uint64_t gen; /* 0: empty */
    int64_t at_ms;
    store_device_t row; /* row.attributes owned by the entry */
};

struct act_entry {
    uint64_t gen;
    int64_t at_ms;
    int64_t device_id;
    int rc; /* STORE_OK (a valid) or STORE_NOT_FOUND */
    store_action_t a;
};

struct store_memo {
    uint64_t dev_gen, act_gen; /* start at 1: a zeroed entry is empty */
    struct dev_entry dev[DEV_SLOTS];
    struct act_entry act[ACT_SLOTS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool fresh(uint64_t gen, uint64_t want, int64_t at_ms)
{
    return gen == want && now_ms() - at_ms < STORE_MEMO_TTL_MS;
}

static size_t dev_slot(const char *controller_id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)controller_id; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h & (DEV_SLOTS - 1);
}

static size_t act_slot(int64_t device_id)
{
    return (size_t)((uint64_t)device_id * 0x9e3779b97f4a7c15ull >> 32) & (ACT_SLOTS - 1);
}

store_memo_t *store_memo_new(void)
{
    store_memo_t *m = calloc(1, sizeof *m);
    if (m) {
        m->dev_gen = m->act_gen = 1;
    }
    return m;
}

void store_memo_free(store_memo_t *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; i < DEV_SLOTS; i++) {
        free(m->dev[i].row.attributes);
    }
    free(m);
}

void store_memo_clear(store_memo_t *m)
{
    m->dev_gen++;
    m->act_gen++;
}

void store_memo_forget_devices(store_memo_t *m)
{
    m->dev_gen++;
}

int store_memo_device(store_memo_t *m, const char *controller_id, store_device_t *d)
{
    const struct dev_entry *e = &m->dev[dev_slot(controller_id)];
    if (!fresh(e->gen, m->dev_gen, e->at_ms) || strcmp(e->row.controller_id, controller_id) != 0) {
        return 0;
    }
    *d = e->row;
    if (e->row.attributes && !(d->attributes = strdup(e->row.attributes))) {
        return -1;
    }
    return 1;
}

void store_memo_put_device(store_memo_t *m, const store_device_t *d)
{
    struct dev_entry *e = &m->dev[dev_slot(d->controller_id)];
    free(e->row.attributes);
    e->gen = 0;
    e->row = *d;
    e->row.attributes = NULL;
    if (d->attributes) {
        if (strlen(d->attributes) > ATTR_MAX || !(e->row.attributes = strdup(d->attributes))) {
            return; /* stays empty */
        }
    }
    e->gen = m->dev_gen;
    e->at_ms = now_ms();
}

int store_memo_open_action(store_memo_t *m, int64_t device_id, int *rc, store_action_t *a)
{
    const struct act_entry *e = &m->act[act_slot(device_id)];
    if (!fresh(e->gen, m->act_gen, e->at_ms) || e->device_id != device_id) {
        return 0;
    }
    *rc = e->rc;
    if (e->rc == STORE_OK) {
        *a = e->a;
    }
    return 1;
}

void store_memo_put_open_action(store_memo_t *m, int64_t device_id, int rc, const store_action_t *a)
{
    struct act_entry *e = &m->act[act_slot(device_id)];
    e->gen = m->act_gen;
    e->at_ms = now_ms();
    e->device_id = device_id;
    e->rc = rc;
    if (rc == STORE_OK) {
        e->a = *a;
    } else {
        memset(&e->a, 0, sizeof e->a);
    }
}
