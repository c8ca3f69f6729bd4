/*
 * The SQLite store's memo of device rows and open actions (store_memo.h):
 * two direct-mapped tables, an entry valid while its generation is the
 * table's. Forgetting is a generation bump, so a write never walks the
 * tables; a check-in updates its device's entry in place (found through a
 * third table, by row id). It must never hand out a pointer into itself:
 * every answer is a copy.
 */
#define _POSIX_C_SOURCE 200809L

#include "store_memo.h"

#include <stdlib.h>
#include <string.h>

/* Powers of two. A fleet of 10,000 devices polling in turn must find its rows
 * still there: about 23 MiB in all (store_memo_new). */
#define DEV_SLOTS 32768
#define ACT_SLOTS 16384
#define ID_SLOTS 65536 /* 4 bytes each */
#define WAYS                                                                                       \
    4 /* device and id slots come in buckets of 4: a key may sit in any of its bucket's            \
       */
#define ATTR_MAX 4096 /* a row with longer attributes is not memoised */

struct dev_entry {
    uint64_t gen;       /* 0: empty */
    store_device_t row; /* row.attributes owned by the entry */
};

struct act_entry {
    uint64_t gen;
    int64_t device_id;
    int rc; /* STORE_OK (a valid) or STORE_NOT_FOUND */
    store_action_t a;
};

struct store_memo {
    uint64_t dev_gen, act_gen; /* start at 1: a zeroed entry is empty */
    struct dev_entry dev[DEV_SLOTS];
    struct act_entry act[ACT_SLOTS];
    uint32_t by_id[ID_SLOTS]; /* row id -> dev slot + 1 (0: none); checked against row.id */
    unsigned hand;            /* which way put_device evicts when a bucket is full */
};

static size_t dev_slot(const char *controller_id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)controller_id; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h & (DEV_SLOTS - 1);
}

/* Fibonacci hashing: the top bits of the product, which depend on every bit of id. */
static size_t id_hash(int64_t id, size_t slots)
{
    unsigned bits = 0;
    while (((size_t)1 << bits) < slots) {
        bits++;
    }
    return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ull) >> (64 - bits));
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

/* The WAYS slots controller_id may sit in: a bucket of consecutive slots. */
static struct dev_entry *dev_find(store_memo_t *m, const char *controller_id, size_t *slot)
{
    size_t h = dev_slot(controller_id) & ~(size_t)(WAYS - 1);
    for (size_t i = h; i < h + WAYS; i++) {
        struct dev_entry *e = &m->dev[i];
        if (e->gen == m->dev_gen && strcmp(e->row.controller_id, controller_id) == 0) {
            *slot = i;
            return e;
        }
    }
    return NULL;
}

int store_memo_device(store_memo_t *m, const char *controller_id, store_device_t *d)
{
    size_t slot;
    const struct dev_entry *e = dev_find(m, controller_id, &slot);
    if (!e) {
        return 0;
    }
    *d = e->row;
    if (e->row.attributes && !(d->attributes = strdup(e->row.attributes))) {
        return -1;
    }
    return 1;
}

/* A by_id cell points at a live entry of that id. */
static bool id_live(const store_memo_t *m, uint32_t cell, int64_t id)
{
    return cell && m->dev[cell - 1].gen == m->dev_gen && m->dev[cell - 1].row.id == id;
}

/* Drop the entry in slot from the memo (its by_id cell too). */
static void dev_drop(store_memo_t *m, size_t slot)
{
    struct dev_entry *e = &m->dev[slot];
    if (e->gen != m->dev_gen) {
        return;
    }
    uint32_t *b = &m->by_id[id_hash(e->row.id, ID_SLOTS) & ~(size_t)(WAYS - 1)];
    for (size_t w = 0; w < WAYS; w++) {
        if (b[w] == slot + 1) {
            b[w] = 0;
        }
    }
    e->gen = 0;
}

/*
 * Invariant: every live entry has a by_id cell pointing at it in its id's
 * bucket, so a check-in (store_memo_seen) always reaches its device's entry.
 * When neither bucket has room, an entry is dropped (round robin) first.
 */
void store_memo_put_device(store_memo_t *m, const store_device_t *d)
{
    size_t slot;
    if (dev_find(m, d->controller_id, &slot)) {
        dev_drop(m, slot);
    } else {
        size_t h = dev_slot(d->controller_id) & ~(size_t)(WAYS - 1);
        slot = h + (m->hand++ & (WAYS - 1));
        for (size_t i = h; i < h + WAYS; i++) {
            if (m->dev[i].gen != m->dev_gen) {
                slot = i;
                break;
            }
        }
        dev_drop(m, slot);
    }
    uint32_t *b = &m->by_id[id_hash(d->id, ID_SLOTS) & ~(size_t)(WAYS - 1)];
    size_t cell = WAYS;
    for (size_t w = 0; w < WAYS && cell == WAYS; w++) {
        if (!b[w] || m->dev[b[w] - 1].gen != m->dev_gen) {
            cell = w;
        }
    }
    if (cell == WAYS) {
        cell = m->hand++ & (WAYS - 1);
        dev_drop(m, b[cell] - 1); /* its check-ins could no longer find it */
    }
    struct dev_entry *e = &m->dev[slot];
    free(e->row.attributes);
    e->row = *d;
    e->row.attributes = NULL;
    if (d->attributes) {
        if (strlen(d->attributes) > ATTR_MAX || !(e->row.attributes = strdup(d->attributes))) {
            return; /* stays empty */
        }
    }
    e->gen = m->dev_gen;
    b[cell] = (uint32_t)slot + 1;
}

void store_memo_seen(store_memo_t *m, int64_t id, int64_t now, unsigned polls)
{
    const uint32_t *b = &m->by_id[id_hash(id, ID_SLOTS) & ~(size_t)(WAYS - 1)];
    for (size_t w = 0; w < WAYS; w++) {
        if (id_live(m, b[w], id)) {
            struct dev_entry *e = &m->dev[b[w] - 1];
            e->row.last_seen = now; /* the statement's own arithmetic (store_sqlite.c DEV_SEEN) */
            e->row.polls += polls;
            return;
        }
    }
}

/* device_id's entry in its bucket, or NULL. */
static struct act_entry *act_find(store_memo_t *m, int64_t device_id)
{
    struct act_entry *b = &m->act[id_hash(device_id, ACT_SLOTS) & ~(size_t)(WAYS - 1)];
    for (size_t w = 0; w < WAYS; w++) {
        if (b[w].gen == m->act_gen && b[w].device_id == device_id) {
            return &b[w];
        }
    }
    return NULL;
}

int store_memo_open_action(store_memo_t *m, int64_t device_id, int *rc, store_action_t *a)
{
    const struct act_entry *e = act_find(m, device_id);
    if (!e) {
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
    struct act_entry *e = act_find(m, device_id);
    if (!e) {
        struct act_entry *b = &m->act[id_hash(device_id, ACT_SLOTS) & ~(size_t)(WAYS - 1)];
        e = &b[m->hand++ & (WAYS - 1)];
        for (size_t w = 0; w < WAYS; w++) {
            if (b[w].gen != m->act_gen) {
                e = &b[w];
                break;
            }
        }
    }
    e->gen = m->act_gen;
    e->device_id = device_id;
    e->rc = rc;
    if (rc == STORE_OK) {
        e->a = *a;
    } else {
        memset(&e->a, 0, sizeof e->a);
    }
}
