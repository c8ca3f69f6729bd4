/*
 * Private to the SQLite store (store_sqlite.c): a memo of the two reads every
 * device poll makes, device_by_controller and action_open_for_device, so that
 * a device polling again soon is answered without a query. It has no lock of
 * its own (the store's lock covers every call) and knows nothing of SQL: the
 * store says when rows changed (its own writes, and through PRAGMA
 * data_version another connection's), and the memo forgets.
 */
#ifndef AIRLOCK_SERVER_STORE_MEMO_H
#define AIRLOCK_SERVER_STORE_MEMO_H

#include <stdint.h>

#include "store.h"

typedef struct store_memo store_memo_t;

/* A new, empty memo (about 23 MiB: room for a fleet of 10,000 devices and more), or NULL when out of memory. */
store_memo_t *store_memo_new(void);
void store_memo_free(store_memo_t *m);

/* Forget every entry (rows changed, a transaction rolled back). O(1). */
void store_memo_clear(store_memo_t *m);

/* Forget every device row, keep the open actions. O(1). */
void store_memo_forget_devices(store_memo_t *m);

/*
 * The check-in the store just wrote (last_seen = now, polls += polls), applied
 * to device id's memoised row if there is one, so check-ins keep the memo.
 */
void store_memo_seen(store_memo_t *m, int64_t id, int64_t now, unsigned polls);

/*
 * The row of controller_id: 1 and *d filled (attributes malloc'd, as the
 * store's reads do), 0 if not memoised, -1 out of memory.
 */
int store_memo_device(store_memo_t *m, const char *controller_id, store_device_t *d);
/* Remember d, the row as read from the database just now. */
void store_memo_put_device(store_memo_t *m, const store_device_t *d);

/*
 * The open action of device_id: 1 with *rc the store's answer (STORE_OK and
 * *a filled, or STORE_NOT_FOUND), 0 if not memoised.
 */
int store_memo_open_action(store_memo_t *m, int64_t device_id, int *rc, store_action_t *a);
/* Remember the answer just read: rc STORE_OK with a, or STORE_NOT_FOUND. */
void store_memo_put_open_action(store_memo_t *m, int64_t device_id, int rc,
                                const store_action_t *a);

#endif
