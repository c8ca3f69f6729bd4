/*
 * Private to the SQLite store (store_sqlite.c): a memo of the two reads every
 * device poll makes, device_by_controller and action_open_for_device, so that
 * a device polling again soon is answered without a query. It has no lock of
 * its own (the store's lock covers every call) and knows nothing of SQL: the
 * store says when rows changed, and the memo forgets. It must never answer
 * with a row older than STORE_MEMO_TTL_MS, whatever the store says.
 */
#ifndef AIRLOCK_SERVER_STORE_MEMO_H
#define AIRLOCK_SERVER_STORE_MEMO_H

#include <stdint.h>

#include "store.h"

/*
 * How long an entry may answer. Writes through the store end entries at
 * once; this bounds what another connection's writes (another process on
 * the same file) can leave unseen.
 */
#define STORE_MEMO_TTL_MS 200

typedef struct store_memo store_memo_t;

/* A new, empty memo (about 0.5 MiB), or NULL when out of memory. */
store_memo_t *store_memo_new(void);
void store_memo_free(store_memo_t *m);

/* Forget every entry (rows changed, a transaction rolled back). O(1). */
void store_memo_clear(store_memo_t *m);

/* Forget every device row, keep the open actions (a device's last_seen/polls changed). O(1). */
void store_memo_forget_devices(store_memo_t *m);

/*
 * The row of controller_id: 1 and *d filled (attributes malloc'd, as the
 * store's reads do), 0 if not memoised (or too old), -1 out of memory.
 */
int store_memo_device(store_memo_t *m, const char *controller_id, store_device_t *d);
/* Remember d, the row as read from the database just now. */
void store_memo_put_device(store_memo_t *m, const store_device_t *d);

/*
 * The open action of device_id: 1 with *rc the store's answer (STORE_OK and
 * *a filled, or STORE_NOT_FOUND), 0 if not memoised (or too old).
 */
int store_memo_open_action(store_memo_t *m, int64_t device_id, int *rc, store_action_t *a);
/* Remember the answer just read: rc STORE_OK with a, or STORE_NOT_FOUND. */
void store_memo_put_open_action(store_memo_t *m, int64_t device_id, int rc,
                                const store_action_t *a);

#endif
