/*
 * The SQLite backend of the update server's store (server/store.h): one
 * connection in WAL mode, every statement prepared once at open and run with
 * bound parameters. It must never build SQL from input, and never return 0
 * from a write before SQLite has committed it (fsync'd into the WAL).
 *
 * The DML below is written to run unchanged on PostgreSQL: $n placeholders
 * (SQLite takes "$1" as a named parameter; open maps each name to its
 * index), RETURNING, ON CONFLICT, row-value comparisons, CAST where a
 * parameter's type could not be inferred. Only the DDL, the PRAGMAs and
 * "BEGIN IMMEDIATE" are SQLite's own.
 */
#define _POSIX_C_SOURCE 200809L

#include "store.h"
#include "store_memo.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000
#define MAX_PARAMS 16
#define CHUNK 128 /* rows a list op reads per lock hold */
#define STR_(x) #x
#define STR(x) STR_(x)
#define LIMIT_CHUNK " LIMIT " STR(CHUNK)

/* ---- schema ------------------------------------------------------------------ */

/*
 * Version 1. Ids that leave the server (device, action = the DDI actionId,
 * artifact, campaign, group) use AUTOINCREMENT so that an id is never handed
 * out twice, even if rows are deleted some day; the history tables do not
 * need that. States are the enum values of store.h, checked by CHECK.
 */
static const char schema_v1[] =
    "CREATE TABLE devices ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " controller_id TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " token_hash TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " attributes TEXT,"
    " created_at INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " polls INTEGER NOT NULL);"
    /* DDI looks a device up by its token to tell 403 from 401, for any
     * request that comes in: no table scan for strangers to trigger. */
    "CREATE INDEX devices_token ON devices (token_hash);"
    "CREATE TABLE groups ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE group_members ("
    " group_id INTEGER NOT NULL REFERENCES groups (id),"
    " device_id INTEGER NOT NULL REFERENCES devices (id),"
    " PRIMARY KEY (group_id, device_id));"
    "CREATE TABLE artifacts ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL UNIQUE,"
    " kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
    " version TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " sha1 TEXT NOT NULL,"
    " md5 TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE campaigns ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL UNIQUE,"
    " artifact_id INTEGER NOT NULL REFERENCES artifacts (id),"
    " group_id INTEGER REFERENCES groups (id)," /* NULL: every device */
    " waves TEXT NOT NULL,"                     /* "1,10,50,100" */
    " failure_pct INTEGER NOT NULL CHECK (failure_pct BETWEEN 0 AND 100),"
    " start_at INTEGER NOT NULL,"
    " state INTEGER NOT NULL CHECK (state BETWEEN 1 AND 5),"
    " current_wave INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " forced INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    /* One action per device and campaign. */
    "CREATE TABLE actions ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " campaign_id INTEGER NOT NULL REFERENCES campaigns (id),"
    " device_id INTEGER NOT NULL REFERENCES devices (id),"
    " wave INTEGER NOT NULL,"
    " state INTEGER NOT NULL CHECK (state BETWEEN 1 AND 8),"
    " progress_cnt INTEGER NOT NULL,"
    " progress_of INTEGER NOT NULL,"
    " details TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " UNIQUE (campaign_id, device_id));"
    "CREATE INDEX actions_device_state ON actions (device_id, state);"
    "CREATE INDEX actions_campaign_wave_state ON actions (campaign_id, wave, state);"
    "CREATE TABLE transitions ("
    " id INTEGER PRIMARY KEY,"
    " action_id INTEGER NOT NULL REFERENCES actions (id),"
    " campaign_id INTEGER NOT NULL REFERENCES campaigns (id),"
    " at INTEGER NOT NULL,"
    " from_state INTEGER NOT NULL,"
    " to_state INTEGER NOT NULL);"
    "CREATE INDEX transitions_campaign_at ON transitions (campaign_id, at);"
    "CREATE TABLE feedback ("
    " id INTEGER PRIMARY KEY,"
    " action_id INTEGER NOT NULL REFERENCES actions (id),"
    " device_id INTEGER NOT NULL REFERENCES devices (id),"
    " execution TEXT NOT NULL,"
    " finished TEXT NOT NULL,"
    " progress_cnt INTEGER NOT NULL,"
    " progress_of INTEGER NOT NULL,"
    " details TEXT,"
    " client_time TEXT NOT NULL,"
    " received_at INTEGER NOT NULL);"
    "CREATE INDEX feedback_device ON feedback (device_id);";

/*
 * Migrations: migration[v] takes a database from version v to v + 1 (index 0
 * creates version 1 from nothing). A later version appends its step here and
 * bumps SCHEMA_VERSION; open applies the missing steps in one transaction.
 */
static const char *const migration[SCHEMA_VERSION] = {schema_v1};

/* ---- statements ---------------------------------------------------------------- */

#define DEV_COLS                                                                                   \
    "d.id, d.controller_id, d.name, d.token_hash, d.version, d.attributes, d.created_at,"          \
    " d.last_seen, d.polls"
#define GRP_COLS "g.id, g.name, (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id)"
#define ART_COLS "id, name, kind, version, sha256, sha1, md5, size, created_at"
#define CAMP_COLS                                                                                  \
    "id, name, artifact_id, group_id, waves, failure_pct, start_at, state, current_wave, reason,"  \
    " forced, created_at, updated_at"
#define ACT_COLS                                                                                   \
    "a.id, a.campaign_id, a.device_id, a.wave, a.state, a.progress_cnt, a.progress_of, a.details," \
    " a.created_at, a.updated_at"
#define FB_COLS                                                                                    \
    "id, action_id, device_id, execution, finished, progress_cnt, progress_of, details,"           \
    " client_time, received_at"

/*
 * Every statement the store runs. List statements select the row's columns
 * followed by their keyset columns, take the filter arguments first and the
 * last key seen after them, and return at most CHUNK rows in key order.
 */
#define STATEMENTS(X)                                                                              \
    X(TX_BEGIN, "BEGIN IMMEDIATE")                                                                 \
    X(DATA_VERSION, "PRAGMA data_version")                                                         \
    X(TX_COMMIT, "COMMIT")                                                                         \
    X(TX_ROLLBACK, "ROLLBACK")                                                                     \
    X(SP_BEGIN, "SAVEPOINT op")                                                                    \
    X(SP_RELEASE, "RELEASE SAVEPOINT op")                                                          \
    X(SP_ROLLBACK, "ROLLBACK TO SAVEPOINT op")                                                     \
    X(SET_GET, "SELECT value FROM settings WHERE key = $1")                                        \
    X(SET_PUT, "INSERT INTO settings (key, value) VALUES ($1, $2)"                                 \
               " ON CONFLICT (key) DO UPDATE SET value = excluded.value")                          \
    X(DEV_INSERT, "INSERT INTO devices (controller_id, name, token_hash, version, attributes,"     \
                  " created_at, last_seen, polls) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"         \
                  " RETURNING id")                                                                 \
    X(DEV_GET, "SELECT " DEV_COLS " FROM devices d WHERE d.id = $1")                               \
    X(DEV_BY_CTRL, "SELECT " DEV_COLS " FROM devices d WHERE d.controller_id = $1")                \
    X(DEV_BY_TOKEN,                                                                                \
      "SELECT " DEV_COLS " FROM devices d WHERE d.token_hash = $1 ORDER BY d.id LIMIT 1")          \
    X(DEV_SET_TOKEN, "UPDATE devices SET token_hash = $2 WHERE id = $1")                           \
    X(DEV_SEEN, "UPDATE devices SET last_seen = $2, polls = polls + $3 WHERE id = $1")             \
    X(DEV_SET_ATTR,                                                                                \
      "UPDATE devices SET attributes = $2, version = COALESCE($3, version) WHERE id = $1")         \
    X(DEV_SET_VERSION, "UPDATE devices SET version = $2 WHERE id = $1")                            \
    X(DEV_LIST,                                                                                    \
      "SELECT " DEV_COLS ", d.id FROM devices d WHERE d.id > $1 ORDER BY d.id" LIMIT_CHUNK)        \
    X(DEV_LIST_GROUP,                                                                              \
      "SELECT " DEV_COLS ", d.id FROM group_members m"                                             \
      " JOIN devices d ON d.id = m.device_id"                                                      \
      " WHERE m.group_id = $1 AND m.device_id > $2 ORDER BY m.device_id" LIMIT_CHUNK)              \
    X(DEV_COUNT, "SELECT COUNT(*) FROM devices")                                                   \
    X(GRP_INSERT, "INSERT INTO groups (name) VALUES ($1) RETURNING id")                            \
    X(GRP_GET, "SELECT " GRP_COLS " FROM groups g WHERE g.id = $1")                                \
    X(GRP_BY_NAME, "SELECT " GRP_COLS " FROM groups g WHERE g.name = $1")                          \
    X(GRP_ADD, "INSERT INTO group_members (group_id, device_id) VALUES ($1, $2)"                   \
               " ON CONFLICT (group_id, device_id) DO NOTHING")                                    \
    X(GRP_LIST,                                                                                    \
      "SELECT " GRP_COLS ", g.id FROM groups g WHERE g.id > $1 ORDER BY g.id" LIMIT_CHUNK)         \
    X(ART_INSERT, "INSERT INTO artifacts (name, kind, version, sha256, sha1, md5, size,"           \
                  " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")             \
    X(ART_GET, "SELECT " ART_COLS " FROM artifacts WHERE id = $1")                                 \
    X(ART_BY_NAME, "SELECT " ART_COLS " FROM artifacts WHERE name = $1")                           \
    X(ART_LIST, "SELECT " ART_COLS ", id FROM artifacts WHERE id > $1 ORDER BY id" LIMIT_CHUNK)    \
    X(CAMP_INSERT, "INSERT INTO campaigns (name, artifact_id, group_id, waves, failure_pct,"       \
                   " start_at, state, current_wave, reason, forced, created_at, updated_at)"       \
                   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id")     \
    X(CAMP_GET, "SELECT " CAMP_COLS " FROM campaigns WHERE id = $1")                               \
    X(CAMP_BY_NAME, "SELECT " CAMP_COLS " FROM campaigns WHERE name = $1")                         \
    X(CAMP_UPDATE, "UPDATE campaigns SET state = $2, current_wave = $3, reason = $4,"              \
                   " updated_at = $5 WHERE id = $1")                                               \
    X(CAMP_LIST, "SELECT " CAMP_COLS ", id FROM campaigns WHERE ($1 = 0 OR state = $1)"            \
                 " AND id > $2 ORDER BY id" LIMIT_CHUNK)                                           \
    X(ACT_INSERT, "INSERT INTO actions (campaign_id, device_id, wave, state, progress_cnt,"        \
                  " progress_of, details, created_at, updated_at)"                                 \
                  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")                     \
    X(ACT_GET, "SELECT " ACT_COLS " FROM actions a WHERE a.id = $1")                               \
    X(ACT_OPEN, "SELECT " ACT_COLS " FROM actions a JOIN campaigns c ON c.id = a.campaign_id"      \
                " WHERE a.device_id = $1 AND (a.state = $4"                                        \
                " OR (a.state IN ($2, $3) AND c.state IN ($5, $6)))"                               \
                " ORDER BY a.id LIMIT 1")                                                          \
    X(ACT_STATE, "SELECT state, campaign_id FROM actions WHERE id = $1")                           \
    X(ACT_UPDATE, "UPDATE actions SET state = $2, progress_cnt = $3, progress_of = $4,"            \
                  " details = COALESCE($5, details), updated_at = $6 WHERE id = $1")               \
    X(ACT_LIST_CAMP,                                                                               \
      "SELECT " ACT_COLS ", a.device_id FROM actions a"                                            \
      " WHERE a.campaign_id = $1 AND a.device_id > $2 ORDER BY a.device_id" LIMIT_CHUNK)           \
    X(ACT_LIST_CAMP_DEV, "SELECT " ACT_COLS ", a.id FROM actions a"                                \
                         " WHERE a.campaign_id = $1 AND a.device_id = $2 AND a.id > $3"            \
                         " ORDER BY a.id" LIMIT_CHUNK)                                             \
    X(ACT_LIST_DEV, "SELECT " ACT_COLS ", a.id FROM actions a"                                     \
                    " WHERE a.device_id = $1 AND a.id > $2 ORDER BY a.id" LIMIT_CHUNK)             \
    X(ACT_COUNTS, "SELECT state, COUNT(*) FROM actions WHERE campaign_id = $1 GROUP BY state")     \
    X(ACT_COUNTS_WAVE, "SELECT state, COUNT(*) FROM actions WHERE campaign_id = $1"                \
                       " AND wave = $2 GROUP BY state")                                            \
    X(ACT_OFFER_TR, "INSERT INTO transitions (action_id, campaign_id, at, from_state, to_state)"   \
                    " SELECT id, campaign_id, CAST($3 AS BIGINT), CAST($4 AS INTEGER),"            \
                    " CAST($5 AS INTEGER) FROM actions"                                            \
                    " WHERE campaign_id = $1 AND wave <= $2 AND state = $4")                       \
    X(ACT_OFFER, "UPDATE actions SET state = $5, updated_at = $3"                                  \
                 " WHERE campaign_id = $1 AND wave <= $2 AND state = $4")                          \
    X(TR_INSERT, "INSERT INTO transitions (action_id, campaign_id, at, from_state, to_state)"      \
                 " VALUES ($1, $2, $3, $4, $5)")                                                   \
    X(TR_LIST, "SELECT at, action_id, from_state, to_state, at, id FROM transitions"               \
               " WHERE campaign_id = $1 AND (at, id) > ($2, $3) ORDER BY at, id" LIMIT_CHUNK)      \
    X(FB_INSERT, "INSERT INTO feedback (action_id, device_id, execution, finished, progress_cnt,"  \
                 " progress_of, details, client_time, received_at)"                                \
                 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")                      \
    X(FB_LIST, "SELECT " FB_COLS ", id FROM feedback WHERE device_id = $1 AND id > $2"             \
               " ORDER BY id" LIMIT_CHUNK)                                                         \
    X(FB_LIST_ACT, "SELECT " FB_COLS ", id FROM feedback WHERE device_id = $1"                     \
                   " AND action_id = $2 AND id > $3 ORDER BY id" LIMIT_CHUNK)

enum stmt_id {
#define X(id, sql) S_##id,
    STATEMENTS(X)
#undef X
        S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
#define X(id, sql) [S_##id] = sql,
    STATEMENTS(X)
#undef X
};

static const char *const stmt_name[S_COUNT] = {
#define X(id, sql) [S_##id] = #id,
    STATEMENTS(X)
#undef X
};

/* ---- the store --------------------------------------------------------------- */

typedef struct stmt {
    sqlite3_stmt *st;
    int nparam;
    int slot[MAX_PARAMS + 1]; /* $n -> SQLite's index of that parameter */
    int err;                  /* first bind failure since use() */
} stmt_t;

/*
 * The lock is a recursive mutex: begin keeps it until commit/rollback, and an
 * op that the same thread calls in between locks it once more. Only the
 * holder ever reads or writes tx, so no thread looks at another's state
 * without the lock (an owner-thread check outside the lock would race).
 * The connection is opened without SQLite's own mutex: this lock is the only
 * way to it.
 *
 * The memo (store_memo.h) answers a device's repeated polls without a query.
 * It is exact for this connection, because it lives under the same lock as
 * every write: leave() forgets it all whenever a statement changed rows
 * (sqlite3_total_changes64 moved), device_seen forgets the device rows only
 * (last_seen/polls are in no open action), and a rollback, a failed commit or
 * a transaction SQLite ended forget it all. A transaction's own reads may be
 * memoised with its uncommitted rows: no other thread runs an op before its
 * commit or rollback, and a rollback forgets them. Another connection's
 * commits (another process on the same file) move PRAGMA data_version, which
 * memoised reads check first (see_others, at most once a millisecond): then
 * the memo forgets all.
 */
typedef struct sq {
    store_t base; /* first: a store_t * of this backend is an sq_t * */
    sqlite3 *db;
    pthread_mutex_t mu;
    bool tx;        /* an explicit transaction is open (by the lock's holder) */
    bool tx_broken; /* SQLite ended it on an error: only rollback is left */
    store_memo_t *memo;
    int64_t changes; /* sqlite3_total_changes64 when the memo last caught up */
    int64_t data_version; /* PRAGMA data_version when the memo last caught up */
    int64_t others_checked_us; /* CLOCK_MONOTONIC of that check (see_others) */
    stmt_t st[S_COUNT];
} sq_t;

static sq_t *sq(store_t *s)
{
    return (sq_t *)s;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void set_msg(sq_t *q, const char *msg)
{
    snprintf(q->base.errmsg, sizeof q->base.errmsg, "%s", msg);
}

static int nomem(sq_t *q)
{
    set_msg(q, "out of memory");
    return STORE_IO;
}

/* A SQLite result code (extended codes are on) as a store error. */
static int db_err(sq_t *q, int rc)
{
    set_msg(q, sqlite3_errmsg(q->db)); /* "UNIQUE constraint failed: devices.controller_id" */
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return STORE_EXISTS;
    case SQLITE_CONSTRAINT_FOREIGNKEY: /* the row referred to does not exist */
        return STORE_NOT_FOUND;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: /* CHECK, NOT NULL: arguments the checks above let through */
        return STORE_INVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    default:
        return STORE_IO;
    }
}

/* ---- statements: bind, step, reset --------------------------------------------- */

static stmt_t *use(sq_t *q, enum stmt_id id)
{
    stmt_t *s = &q->st[id];
    s->err = SQLITE_OK;
    return s;
}

static int slot_of(stmt_t *s, int n)
{
    if (s->err != SQLITE_OK)
        return 0;
    if (n < 1 || n > s->nparam) {
        s->err = SQLITE_RANGE;
        return 0;
    }
    return s->slot[n];
}

static void bind_i64(stmt_t *s, int n, int64_t v)
{
    int i = slot_of(s, n);
    if (i)
        s->err = sqlite3_bind_int64(s->st, i, v);
}

/* The text must outlive the statement's use (SQLITE_STATIC); NULL binds NULL. */
static void bind_text(stmt_t *s, int n, const char *v)
{
    int i = slot_of(s, n);
    if (i)
        s->err =
            v ? sqlite3_bind_text(s->st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s->st, i);
}

/* One step: STORE_OK with *row telling whether a row is there, or an error. */
static int step(sq_t *q, stmt_t *s, bool *row)
{
    *row = false;
    if (s->err != SQLITE_OK) {
        snprintf(q->base.errmsg, sizeof q->base.errmsg, "bind: %s", sqlite3_errstr(s->err));
        return STORE_IO;
    }
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW) {
        *row = true;
        return STORE_OK;
    }
    return rc == SQLITE_DONE ? STORE_OK : db_err(q, rc);
}

/* Back to unused; drops the bindings so no pointer into a caller's memory stays. */
static void finish(stmt_t *s)
{
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
}

/* Run a statement to its end, ignoring rows; *changes (optional): rows written. */
static int run_stmt(sq_t *q, stmt_t *s, int64_t *changes)
{
    bool row;
    int rc;
    do
        rc = step(q, s, &row);
    while (rc == STORE_OK && row);
    if (rc == STORE_OK && changes)
        *changes = sqlite3_changes64(q->db);
    finish(s);
    return rc;
}

static int run(sq_t *q, enum stmt_id id)
{
    return run_stmt(q, use(q, id), NULL);
}

/* An UPDATE of one row by id: NOT_FOUND if no row has that id. */
static int update_one(sq_t *q, stmt_t *s)
{
    int64_t n = 0;
    int rc = run_stmt(q, s, &n);
    return rc == STORE_OK && n == 0 ? STORE_NOT_FOUND : rc;
}

/* An INSERT ... RETURNING id. */
static int insert_id(sq_t *q, stmt_t *s, int64_t *id)
{
    bool row;
    int rc = step(q, s, &row);
    if (rc == STORE_OK && row) {
        *id = sqlite3_column_int64(s->st, 0);
        rc = step(q, s, &row);
    } else if (rc == STORE_OK) {
        set_msg(q, "insert returned no id");
        rc = STORE_IO;
    }
    finish(s);
    return rc;
}

/* ---- locking and transactions ------------------------------------------------- */

static int enter(sq_t *q)
{
    pthread_mutex_lock(&q->mu);
    if (q->tx && q->tx_broken) {
        set_msg(q, "transaction already rolled back by an error: call rollback");
        pthread_mutex_unlock(&q->mu);
        return STORE_IO;
    }
    return STORE_OK;
}

static int leave(sq_t *q, int rc)
{
    /* Some errors (disk full, I/O) make SQLite roll the whole transaction
     * back. Ops after that would each commit on their own, which would break
     * the all-or-nothing promise of begin: refuse them instead. */
    if (q->tx && sqlite3_get_autocommit(q->db))
        q->tx_broken = true;
    int64_t changes = sqlite3_total_changes64(q->db);
    if (changes != q->changes || q->tx_broken || rc == STORE_IO || rc == STORE_BUSY) {
        q->changes = changes;
        store_memo_clear(q->memo);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

/*
 * An op of several statements is atomic: its own BEGIN IMMEDIATE ... COMMIT
 * outside an explicit transaction (IMMEDIATE takes the write lock first, so
 * it cannot fail half-way on another process's lock), a savepoint inside one
 * (so a failing op leaves the caller's transaction as it was).
 */
static int atomic_begin(sq_t *q)
{
    return run(q, q->tx ? S_SP_BEGIN : S_TX_BEGIN);
}

static int atomic_end(sq_t *q, int rc)
{
    if (rc == STORE_OK) {
        rc = run(q, q->tx ? S_SP_RELEASE : S_TX_COMMIT);
        if (rc == STORE_OK)
            return STORE_OK;
    }
    char msg[sizeof q->base.errmsg]; /* keep the first error's message */
    memcpy(msg, q->base.errmsg, sizeof msg);
    if (q->tx) {
        run(q, S_SP_ROLLBACK);
        run(q, S_SP_RELEASE);
    } else if (!sqlite3_get_autocommit(q->db)) {
        run(q, S_TX_ROLLBACK);
    }
    memcpy(q->base.errmsg, msg, sizeof msg);
    return rc;
}

static int sq_begin(store_t *s)
{
    sq_t *q = sq(s);
    int rc = enter(q);
    if (rc)
        return rc;
    if (q->tx) { /* no nesting */
        set_msg(q, "transaction already open");
        return leave(q, STORE_INVAL);
    }
    rc = run(q, S_TX_BEGIN);
    if (rc)
        return leave(q, rc);
    q->tx = true;
    q->tx_broken = false;
    return STORE_OK; /* keeps the lock until commit or rollback */
}

/* End the explicit transaction: drop the op's lock and the one begin took. */
static void end_tx(sq_t *q)
{
    q->tx = false;
    q->tx_broken = false;
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_unlock(&q->mu);
}

static int sq_commit(store_t *s)
{
    sq_t *q = sq(s);
    pthread_mutex_lock(&q->mu);
    if (!q->tx) {
        set_msg(q, "no transaction open");
        pthread_mutex_unlock(&q->mu);
        return STORE_INVAL;
    }
    int rc;
    if (q->tx_broken) {
        set_msg(q, "transaction was rolled back by an earlier error");
        rc = STORE_IO;
    } else {
        rc = run(q, S_TX_COMMIT);
        if (rc && !sqlite3_get_autocommit(q->db)) { /* e.g. BUSY: still open, undo it */
            char msg[sizeof q->base.errmsg];
            memcpy(msg, q->base.errmsg, sizeof msg);
            run(q, S_TX_ROLLBACK);
            memcpy(q->base.errmsg, msg, sizeof msg);
        }
    }
    if (rc)
        store_memo_clear(q->memo); /* rolled back: what it memoised never happened */
    end_tx(q);
    return rc;
}

static void sq_rollback(store_t *s)
{
    sq_t *q = sq(s);
    pthread_mutex_lock(&q->mu);
    if (!q->tx) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    if (!sqlite3_get_autocommit(q->db))
        run(q, S_TX_ROLLBACK);
    store_memo_clear(q->memo);
    end_tx(q);
}

/* ---- argument checks and copies ------------------------------------------------ */

/* A fixed-size row field holds a NUL-terminated string. */
static bool field_ok(const char *f, size_t cap)
{
    return strnlen(f, cap) < cap;
}

static bool text_ok(const char *s, size_t cap)
{
    return s && strnlen(s, cap) < cap;
}

static bool name_ok(const char *s)
{
    return text_ok(s, STORE_NAME_MAX) && s[0] != '\0';
}

static bool hex_ok(const char *s, size_t len)
{
    if (strnlen(s, len + 1) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static bool action_state_ok(int st)
{
    return st >= STORE_ACT_PENDING && st <= STORE_ACT_SKIPPED;
}

static bool campaign_state_ok(int st)
{
    return st >= STORE_CAMP_SCHEDULED && st <= STORE_CAMP_FINISHED;
}

/* Copy at most cap - 1 bytes, never splitting a UTF-8 sequence. */
static void copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80) /* src[n] continues a char */
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int64_t or_now(int64_t t)
{
    return t ? t : now_s();
}

/* ---- reading rows ------------------------------------------------------------ */

static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

/* A malloc'd copy of a text column, NULL for SQL NULL. */
static int col_dup(sq_t *q, sqlite3_stmt *st, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return STORE_OK;
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = t ? malloc(n + 1) : NULL;
    if (!p)
        return nomem(q);
    memcpy(p, t, n);
    p[n] = '\0';
    *out = p;
    return STORE_OK;
}

static int col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int(st, i);
}

static int64_t col_i64(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int64(st, i);
}

static int read_device(sq_t *q, sqlite3_stmt *st, void *row)
{
    store_device_t *d = row;
    memset(d, 0, sizeof *d);
    d->id = col_i64(st, 0);
    col_copy(st, 1, d->controller_id, sizeof d->controller_id);
    col_copy(st, 2, d->name, sizeof d->name);
    col_copy(st, 3, d->token_hash, sizeof d->token_hash);
    col_copy(st, 4, d->version, sizeof d->version);
    d->created_at = col_i64(st, 6);
    d->last_seen = col_i64(st, 7);
    d->polls = col_i64(st, 8);
    return col_dup(q, st, 5, &d->attributes); /* last: nothing to free if it fails */
}

static void clear_device(void *row)
{
    store_device_clear(row);
}

static int read_group(sq_t *q, sqlite3_stmt *st, void *row)
{
    (void)q;
    store_group_t *g = row;
    memset(g, 0, sizeof *g);
    g->id = col_i64(st, 0);
    col_copy(st, 1, g->name, sizeof g->name);
    g->devices = col_i64(st, 2);
    return STORE_OK;
}

static int read_artifact(sq_t *q, sqlite3_stmt *st, void *row)
{
    (void)q;
    store_artifact_t *a = row;
    memset(a, 0, sizeof *a);
    a->id = col_i64(st, 0);
    col_copy(st, 1, a->name, sizeof a->name);
    a->kind = col_int(st, 2);
    col_copy(st, 3, a->version, sizeof a->version);
    col_copy(st, 4, a->sha256, sizeof a->sha256);
    col_copy(st, 5, a->sha1, sizeof a->sha1);
    col_copy(st, 6, a->md5, sizeof a->md5);
    a->size = col_i64(st, 7);
    a->created_at = col_i64(st, 8);
    return STORE_OK;
}

/* Waves: 1..STORE_MAX_WAVES percentages, each 1..100, rising, the last 100. */
static bool waves_ok(const unsigned *w, unsigned n)
{
    if (n < 1 || n > STORE_MAX_WAVES)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (w[i] < 1 || w[i] > 100 || (i > 0 && w[i] <= w[i - 1]))
            return false;
    return w[n - 1] == 100;
}

/* "1,10,50,100": at most STORE_MAX_WAVES * 4 bytes. */
static void format_waves(const unsigned *w, unsigned n, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ",%u" : "%u", w[i]);
}

static bool parse_waves(const char *t, unsigned *w, unsigned *n)
{
    *n = 0;
    for (;;) {
        unsigned v = 0;
        int digits = 0;
        while (*t >= '0' && *t <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(*t++ - '0');
            digits++;
        }
        if (!digits || *n == STORE_MAX_WAVES)
            return false;
        w[(*n)++] = v;
        if (*t == '\0')
            return waves_ok(w, *n);
        if (*t++ != ',')
            return false;
    }
}

static int read_campaign(sq_t *q, sqlite3_stmt *st, void *row)
{
    store_campaign_t *c = row;
    char waves[STORE_MAX_WAVES * 4 + 1];
    memset(c, 0, sizeof *c);
    c->id = col_i64(st, 0);
    col_copy(st, 1, c->name, sizeof c->name);
    c->artifact_id = col_i64(st, 2);
    c->group_id = col_i64(st, 3); /* NULL reads as 0: every device */
    col_copy(st, 4, waves, sizeof waves);
    c->failure_pct = (unsigned)col_int(st, 5);
    c->start_at = col_i64(st, 6);
    c->state = col_int(st, 7);
    c->current_wave = (unsigned)col_int(st, 8);
    col_copy(st, 9, c->reason, sizeof c->reason);
    c->forced = col_int(st, 10) != 0;
    c->created_at = col_i64(st, 11);
    c->updated_at = col_i64(st, 12);
    if (!parse_waves(waves, c->waves, &c->nwaves)) {
        snprintf(q->base.errmsg, sizeof q->base.errmsg, "campaign %lld: bad waves \"%s\"",
                 (long long)c->id, waves);
        return STORE_IO;
    }
    return STORE_OK;
}

static int read_action(sq_t *q, sqlite3_stmt *st, void *row)
{
    (void)q;
    store_action_t *a = row;
    memset(a, 0, sizeof *a);
    a->id = col_i64(st, 0);
    a->campaign_id = col_i64(st, 1);
    a->device_id = col_i64(st, 2);
    a->wave = (unsigned)col_int(st, 3);
    a->state = col_int(st, 4);
    a->progress_cnt = col_int(st, 5);
    a->progress_of = col_int(st, 6);
    col_copy(st, 7, a->details, sizeof a->details);
    a->created_at = col_i64(st, 8);
    a->updated_at = col_i64(st, 9);
    return STORE_OK;
}

static int read_feedback(sq_t *q, sqlite3_stmt *st, void *row)
{
    store_feedback_t *f = row;
    memset(f, 0, sizeof *f);
    f->id = col_i64(st, 0);
    f->action_id = col_i64(st, 1);
    f->device_id = col_i64(st, 2);
    col_copy(st, 3, f->execution, sizeof f->execution);
    col_copy(st, 4, f->finished, sizeof f->finished);
    f->progress_cnt = col_int(st, 5);
    f->progress_of = col_int(st, 6);
    col_copy(st, 8, f->time, sizeof f->time);
    f->received_at = col_i64(st, 9);
    return col_dup(q, st, 7, &f->details);
}

static void clear_feedback(void *row)
{
    store_feedback_t *f = row;
    free(f->details);
    f->details = NULL;
}

static int read_transition(sq_t *q, sqlite3_stmt *st, void *row)
{
    (void)q;
    store_transition_t *t = row;
    memset(t, 0, sizeof *t);
    t->at = col_i64(st, 0);
    t->action_id = col_i64(st, 1);
    t->from_state = col_int(st, 2);
    t->to_state = col_int(st, 3);
    return STORE_OK;
}

typedef int (*read_fn)(sq_t *q, sqlite3_stmt *st, void *row);

/* A get: the one row the statement (already bound) finds, or NOT_FOUND. */
static int get_row(sq_t *q, stmt_t *s, read_fn read, void *row)
{
    bool found;
    int rc = step(q, s, &found);
    if (rc == STORE_OK)
        rc = found ? read(q, s->st, row) : STORE_NOT_FOUND;
    finish(s);
    return rc;
}

static int get_by_id(sq_t *q, enum stmt_id id, int64_t key, read_fn read, void *row)
{
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *s = use(q, id);
    bind_i64(s, 1, key);
    return leave(q, get_row(q, s, read, row));
}

static int get_by_name(sq_t *q, enum stmt_id id, const char *name, read_fn read, void *row)
{
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *s = use(q, id);
    bind_text(s, 1, name);
    return leave(q, get_row(q, s, read, row));
}

/*
 * A list walks its rows CHUNK at a time in key order, resuming after the
 * last key it saw. The lock is held only while a chunk is read, and the
 * callbacks run on copies with no statement open: a callback may call any op
 * (change the rows being walked, too: each row still comes at most once),
 * other threads are not held up by a slow callback, and no long-lived read
 * keeps the WAL from being checkpointed. Inside begin..commit the lock stays
 * with the caller's thread throughout, as begin promises.
 */
struct walk {
    enum stmt_id stmt;
    int narg;
    int64_t arg[2]; /* filter arguments: $1..$narg */
    int nkey;
    int64_t key[2]; /* the keyset (last columns of each row): $narg+1.. */
    size_t size;
    read_fn read;
    void (*clear)(void *row);
    int (*emit)(const struct walk *w, const void *row);
    union {
        store_device_cb dev;
        store_group_cb grp;
        store_artifact_cb art;
        store_campaign_cb camp;
        store_action_cb act;
        store_feedback_cb fb;
        store_transition_cb tr;
    } cb;
    void *ctx;
};

/* Read the next chunk into rows; *n rows were read (and need clearing). */
static int walk_chunk(sq_t *q, struct walk *w, unsigned char *rows, size_t *n)
{
    *n = 0;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *s = use(q, w->stmt);
    int p = 1;
    for (int i = 0; i < w->narg; i++)
        bind_i64(s, p++, w->arg[i]);
    for (int i = 0; i < w->nkey; i++)
        bind_i64(s, p++, w->key[i]);
    bool row;
    while (*n < CHUNK && (rc = step(q, s, &row)) == STORE_OK && row) {
        rc = w->read(q, s->st, rows + *n * w->size);
        if (rc)
            break;
        int ncol = sqlite3_column_count(s->st);
        for (int i = 0; i < w->nkey; i++)
            w->key[i] = col_i64(s->st, ncol - w->nkey + i);
        (*n)++;
    }
    finish(s);
    return leave(q, rc);
}

static int walk(sq_t *q, struct walk *w)
{
    unsigned char *rows = malloc(CHUNK * w->size);
    if (!rows) {
        pthread_mutex_lock(&q->mu);
        int rc = nomem(q);
        pthread_mutex_unlock(&q->mu);
        return rc;
    }
    int rc;
    bool stop = false;
    do {
        size_t n;
        rc = walk_chunk(q, w, rows, &n);
        for (size_t i = 0; i < n; i++) {
            void *row = rows + i * w->size;
            if (rc == STORE_OK && !stop)
                stop = w->emit(w, row) != 0;
            if (w->clear)
                w->clear(row);
        }
        if (n < CHUNK)
            stop = true;
    } while (rc == STORE_OK && !stop);
    free(rows);
    return rc;
}

static int emit_device(const struct walk *w, const void *row)
{
    return w->cb.dev(w->ctx, row);
}

static int emit_group(const struct walk *w, const void *row)
{
    return w->cb.grp(w->ctx, row);
}

static int emit_artifact(const struct walk *w, const void *row)
{
    return w->cb.art(w->ctx, row);
}

static int emit_campaign(const struct walk *w, const void *row)
{
    return w->cb.camp(w->ctx, row);
}

static int emit_action(const struct walk *w, const void *row)
{
    return w->cb.act(w->ctx, row);
}

static int emit_feedback(const struct walk *w, const void *row)
{
    return w->cb.fb(w->ctx, row);
}

static int emit_transition(const struct walk *w, const void *row)
{
    return w->cb.tr(w->ctx, row);
}

/* ---- devices ------------------------------------------------------------------ */

static int sq_device_create(store_t *s, store_device_t *d)
{
    sq_t *q = sq(s);
    if (!d || !field_ok(d->controller_id, sizeof d->controller_id) || !d->controller_id[0] ||
        !field_ok(d->name, sizeof d->name) || !field_ok(d->token_hash, sizeof d->token_hash) ||
        !field_ok(d->version, sizeof d->version) || d->polls < 0)
        return STORE_INVAL;
    if (!d->name[0])
        memcpy(d->name, d->controller_id, sizeof d->name);
    d->created_at = or_now(d->created_at);
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_DEV_INSERT);
    bind_text(st, 1, d->controller_id);
    bind_text(st, 2, d->name);
    bind_text(st, 3, d->token_hash);
    bind_text(st, 4, d->version);
    bind_text(st, 5, d->attributes);
    bind_i64(st, 6, d->created_at);
    bind_i64(st, 7, d->last_seen);
    bind_i64(st, 8, d->polls);
    return leave(q, insert_id(q, st, &d->id));
}

static int sq_device_get(store_t *s, int64_t id, store_device_t *d)
{
    if (!d)
        return STORE_INVAL;
    memset(d, 0, sizeof *d);
    return get_by_id(sq(s), S_DEV_GET, id, read_device, d);
}

/*
 * Before the memo answers: if another connection committed since we last
 * looked (PRAGMA data_version moved; it never moves for this connection's own
 * commits), forget the memo. Inside this connection's transaction nothing
 * another commits is visible anyway. Any failure forgets too.
 */
static void see_others(sq_t *q)
{
    /* At most once a millisecond: the statement starts and ends a read
     * transaction (file locks), and a fleet polls thousands of times a second. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    if (q->tx || now_us - q->others_checked_us < 1000)
        return;
    q->others_checked_us = now_us;
    stmt_t *st = use(q, S_DATA_VERSION);
    bool row;
    int64_t v = -1;
    if (step(q, st, &row) == STORE_OK && row)
        v = sqlite3_column_int64(st->st, 0);
    finish(st);
    if (v < 0 || v != q->data_version) {
        q->data_version = v;
        store_memo_clear(q->memo);
    }
}

static int sq_device_by_controller(store_t *s, const char *controller_id, store_device_t *d)
{
    sq_t *q = sq(s);
    if (!d)
        return STORE_INVAL;
    memset(d, 0, sizeof *d);
    if (!name_ok(controller_id))
        return STORE_INVAL;
    int rc = enter(q);
    if (rc)
        return rc;
    see_others(q);
    int hit = store_memo_device(q->memo, controller_id, d);
    if (hit)
        return leave(q, hit > 0 ? STORE_OK : nomem(q));
    stmt_t *st = use(q, S_DEV_BY_CTRL);
    bind_text(st, 1, controller_id);
    rc = get_row(q, st, read_device, d);
    if (rc == STORE_OK)
        store_memo_put_device(q->memo, d);
    return leave(q, rc);
}

static int sq_device_by_token(store_t *s, const char *token_hash, store_device_t *d)
{
    if (!d)
        return STORE_INVAL;
    memset(d, 0, sizeof *d);
    /* "" is "no token", shared by many devices: never a way to find one. */
    if (!text_ok(token_hash, STORE_HEX_SHA256) || !token_hash[0])
        return STORE_INVAL;
    return get_by_name(sq(s), S_DEV_BY_TOKEN, token_hash, read_device, d);
}

static int sq_device_set_token(store_t *s, int64_t id, const char *token_hash)
{
    sq_t *q = sq(s);
    if (!token_hash)
        token_hash = "";
    if (!text_ok(token_hash, STORE_HEX_SHA256))
        return STORE_INVAL;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_DEV_SET_TOKEN);
    bind_i64(st, 1, id);
    bind_text(st, 2, token_hash);
    return leave(q, update_one(q, st));
}

static int sq_device_seen(store_t *s, int64_t id, int64_t now, unsigned polls)
{
    sq_t *q = sq(s);
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_DEV_SEEN);
    bind_i64(st, 1, id);
    bind_i64(st, 2, now);
    bind_i64(st, 3, polls);
    rc = update_one(q, st);
    /* Every device polls, and this runs for each once a second: it changes
     * this one row's last_seen and polls only, which the memo applies to its
     * copy, so nothing else need be forgotten. */
    q->changes = sqlite3_total_changes64(q->db);
    if (rc == STORE_OK)
        store_memo_seen(q->memo, id, now, polls);
    else
        store_memo_forget_devices(q->memo);
    return leave(q, rc);
}

static int sq_device_set_attributes(store_t *s, int64_t id, const char *json, const char *version)
{
    sq_t *q = sq(s);
    if (version && !text_ok(version, STORE_VERSION_MAX))
        return STORE_INVAL;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_DEV_SET_ATTR);
    bind_i64(st, 1, id);
    bind_text(st, 2, json);
    bind_text(st, 3, version);
    return leave(q, update_one(q, st));
}

static int sq_device_set_version(store_t *s, int64_t id, const char *version)
{
    sq_t *q = sq(s);
    if (!text_ok(version, STORE_VERSION_MAX))
        return STORE_INVAL;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_DEV_SET_VERSION);
    bind_i64(st, 1, id);
    bind_text(st, 2, version);
    return leave(q, update_one(q, st));
}

static int sq_device_list(store_t *s, int64_t group_id, store_device_cb cb, void *ctx)
{
    if (!cb || group_id < 0)
        return STORE_INVAL;
    struct walk w = {.stmt = group_id ? S_DEV_LIST_GROUP : S_DEV_LIST,
                     .narg = group_id ? 1 : 0,
                     .arg = {group_id},
                     .nkey = 1,
                     .size = sizeof(store_device_t),
                     .read = read_device,
                     .clear = clear_device,
                     .emit = emit_device,
                     .cb.dev = cb,
                     .ctx = ctx};
    return walk(sq(s), &w);
}

static int sq_device_count(store_t *s, int64_t *n)
{
    sq_t *q = sq(s);
    if (!n)
        return STORE_INVAL;
    *n = 0;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_DEV_COUNT);
    bool row;
    rc = step(q, st, &row);
    if (rc == STORE_OK && row)
        *n = col_i64(st->st, 0);
    finish(st);
    return leave(q, rc);
}

/* ---- groups ------------------------------------------------------------------- */

static int sq_group_create(store_t *s, store_group_t *g)
{
    sq_t *q = sq(s);
    if (!g || !field_ok(g->name, sizeof g->name) || !g->name[0])
        return STORE_INVAL;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_GRP_INSERT);
    bind_text(st, 1, g->name);
    rc = insert_id(q, st, &g->id);
    if (rc == STORE_OK)
        g->devices = 0;
    return leave(q, rc);
}

static int sq_group_by_name(store_t *s, const char *name, store_group_t *g)
{
    if (!g)
        return STORE_INVAL;
    memset(g, 0, sizeof *g);
    if (!name_ok(name))
        return STORE_INVAL;
    return get_by_name(sq(s), S_GRP_BY_NAME, name, read_group, g);
}

static int sq_group_get(store_t *s, int64_t id, store_group_t *g)
{
    if (!g)
        return STORE_INVAL;
    memset(g, 0, sizeof *g);
    return get_by_id(sq(s), S_GRP_GET, id, read_group, g);
}

static int sq_group_add(store_t *s, int64_t group_id, int64_t device_id)
{
    sq_t *q = sq(s);
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_GRP_ADD);
    bind_i64(st, 1, group_id);
    bind_i64(st, 2, device_id);
    return leave(q, run_stmt(q, st, NULL)); /* a missing group or device: NOT_FOUND (FK) */
}

static int sq_group_list(store_t *s, store_group_cb cb, void *ctx)
{
    if (!cb)
        return STORE_INVAL;
    struct walk w = {.stmt = S_GRP_LIST,
                     .nkey = 1,
                     .size = sizeof(store_group_t),
                     .read = read_group,
                     .emit = emit_group,
                     .cb.grp = cb,
                     .ctx = ctx};
    return walk(sq(s), &w);
}

/* ---- artifacts ---------------------------------------------------------------- */

static int sq_artifact_create(store_t *s, store_artifact_t *a)
{
    sq_t *q = sq(s);
    /* sha256 also names the file on disk: nothing but 64 hex digits gets in. */
    if (!a || !field_ok(a->name, sizeof a->name) || !a->name[0] ||
        (a->kind != STORE_ART_IMAGE && a->kind != STORE_ART_OPAQUE) ||
        !field_ok(a->version, sizeof a->version) || !hex_ok(a->sha256, STORE_HEX_SHA256 - 1) ||
        !field_ok(a->sha1, sizeof a->sha1) || !field_ok(a->md5, sizeof a->md5) || a->size < 0)
        return STORE_INVAL;
    a->created_at = or_now(a->created_at);
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_ART_INSERT);
    bind_text(st, 1, a->name);
    bind_i64(st, 2, a->kind);
    bind_text(st, 3, a->version);
    bind_text(st, 4, a->sha256);
    bind_text(st, 5, a->sha1);
    bind_text(st, 6, a->md5);
    bind_i64(st, 7, a->size);
    bind_i64(st, 8, a->created_at);
    return leave(q, insert_id(q, st, &a->id));
}

static int sq_artifact_get(store_t *s, int64_t id, store_artifact_t *a)
{
    if (!a)
        return STORE_INVAL;
    memset(a, 0, sizeof *a);
    return get_by_id(sq(s), S_ART_GET, id, read_artifact, a);
}

static int sq_artifact_by_name(store_t *s, const char *name, store_artifact_t *a)
{
    if (!a)
        return STORE_INVAL;
    memset(a, 0, sizeof *a);
    if (!name_ok(name))
        return STORE_INVAL;
    return get_by_name(sq(s), S_ART_BY_NAME, name, read_artifact, a);
}

static int sq_artifact_list(store_t *s, store_artifact_cb cb, void *ctx)
{
    if (!cb)
        return STORE_INVAL;
    struct walk w = {.stmt = S_ART_LIST,
                     .nkey = 1,
                     .size = sizeof(store_artifact_t),
                     .read = read_artifact,
                     .emit = emit_artifact,
                     .cb.art = cb,
                     .ctx = ctx};
    return walk(sq(s), &w);
}

/* ---- campaigns ---------------------------------------------------------------- */

static int sq_campaign_create(store_t *s, store_campaign_t *c)
{
    sq_t *q = sq(s);
    if (!c || !field_ok(c->name, sizeof c->name) || !c->name[0] || c->group_id < 0 ||
        !waves_ok(c->waves, c->nwaves) || c->failure_pct > 100 || !campaign_state_ok(c->state) ||
        c->current_wave >= c->nwaves || !field_ok(c->reason, sizeof c->reason))
        return STORE_INVAL;
    char waves[STORE_MAX_WAVES * 4 + 1];
    format_waves(c->waves, c->nwaves, waves, sizeof waves);
    c->created_at = or_now(c->created_at);
    if (!c->updated_at)
        c->updated_at = c->created_at;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_CAMP_INSERT);
    bind_text(st, 1, c->name);
    bind_i64(st, 2, c->artifact_id);
    if (c->group_id)
        bind_i64(st, 3, c->group_id);
    else
        bind_text(st, 3, NULL);
    bind_text(st, 4, waves);
    bind_i64(st, 5, c->failure_pct);
    bind_i64(st, 6, c->start_at);
    bind_i64(st, 7, c->state);
    bind_i64(st, 8, c->current_wave);
    bind_text(st, 9, c->reason);
    bind_i64(st, 10, c->forced ? 1 : 0);
    bind_i64(st, 11, c->created_at);
    bind_i64(st, 12, c->updated_at);
    return leave(q, insert_id(q, st, &c->id));
}

static int sq_campaign_get(store_t *s, int64_t id, store_campaign_t *c)
{
    if (!c)
        return STORE_INVAL;
    memset(c, 0, sizeof *c);
    return get_by_id(sq(s), S_CAMP_GET, id, read_campaign, c);
}

static int sq_campaign_by_name(store_t *s, const char *name, store_campaign_t *c)
{
    if (!c)
        return STORE_INVAL;
    memset(c, 0, sizeof *c);
    if (!name_ok(name))
        return STORE_INVAL;
    return get_by_name(sq(s), S_CAMP_BY_NAME, name, read_campaign, c);
}

static int sq_campaign_update(store_t *s, const store_campaign_t *c)
{
    sq_t *q = sq(s);
    if (!c || !campaign_state_ok(c->state) || c->current_wave >= STORE_MAX_WAVES ||
        !field_ok(c->reason, sizeof c->reason))
        return STORE_INVAL;
    int rc = enter(q);
    if (rc)
        return rc;
    rc = atomic_begin(q);
    if (rc)
        return leave(q, rc);
    /* current_wave must index the campaign's own waves */
    store_campaign_t cur;
    stmt_t *st = use(q, S_CAMP_GET);
    bind_i64(st, 1, c->id);
    rc = get_row(q, st, read_campaign, &cur);
    if (rc == STORE_OK && c->current_wave >= cur.nwaves)
        rc = STORE_INVAL;
    if (rc == STORE_OK) {
        st = use(q, S_CAMP_UPDATE);
        bind_i64(st, 1, c->id);
        bind_i64(st, 2, c->state);
        bind_i64(st, 3, c->current_wave);
        bind_text(st, 4, c->reason);
        bind_i64(st, 5, or_now(c->updated_at));
        rc = update_one(q, st);
    }
    return leave(q, atomic_end(q, rc));
}

static int sq_campaign_list(store_t *s, int state, store_campaign_cb cb, void *ctx)
{
    if (!cb || (state != 0 && !campaign_state_ok(state)))
        return STORE_INVAL;
    struct walk w = {.stmt = S_CAMP_LIST,
                     .narg = 1,
                     .arg = {state},
                     .nkey = 1,
                     .size = sizeof(store_campaign_t),
                     .read = read_campaign,
                     .emit = emit_campaign,
                     .cb.camp = cb,
                     .ctx = ctx};
    return walk(sq(s), &w);
}

/* ---- actions ------------------------------------------------------------------ */

static int add_transition(sq_t *q, int64_t action, int64_t campaign, int64_t at, int from, int to)
{
    stmt_t *st = use(q, S_TR_INSERT);
    bind_i64(st, 1, action);
    bind_i64(st, 2, campaign);
    bind_i64(st, 3, at);
    bind_i64(st, 4, from);
    bind_i64(st, 5, to);
    return run_stmt(q, st, NULL);
}

static int sq_action_create(store_t *s, store_action_t *a)
{
    sq_t *q = sq(s);
    if (!a || a->wave >= STORE_MAX_WAVES || !action_state_ok(a->state) ||
        !field_ok(a->details, sizeof a->details))
        return STORE_INVAL;
    a->created_at = or_now(a->created_at);
    if (!a->updated_at)
        a->updated_at = a->created_at;
    int rc = enter(q);
    if (rc)
        return rc;
    rc = atomic_begin(q);
    if (rc)
        return leave(q, rc);
    stmt_t *st = use(q, S_ACT_INSERT);
    bind_i64(st, 1, a->campaign_id);
    bind_i64(st, 2, a->device_id);
    bind_i64(st, 3, a->wave);
    bind_i64(st, 4, a->state);
    bind_i64(st, 5, a->progress_cnt);
    bind_i64(st, 6, a->progress_of);
    bind_text(st, 7, a->details);
    bind_i64(st, 8, a->created_at);
    bind_i64(st, 9, a->updated_at);
    int64_t id = 0;
    rc = insert_id(q, st, &id);
    if (rc == STORE_OK)
        rc = add_transition(q, id, a->campaign_id, a->created_at, 0, a->state);
    rc = atomic_end(q, rc);
    if (rc == STORE_OK)
        a->id = id;
    return leave(q, rc);
}

static int sq_action_get(store_t *s, int64_t id, store_action_t *a)
{
    if (!a)
        return STORE_INVAL;
    memset(a, 0, sizeof *a);
    return get_by_id(sq(s), S_ACT_GET, id, read_action, a);
}

static int sq_action_open_for_device(store_t *s, int64_t device_id, store_action_t *a)
{
    sq_t *q = sq(s);
    if (!a)
        return STORE_INVAL;
    memset(a, 0, sizeof *a);
    int rc = enter(q);
    if (rc)
        return rc;
    see_others(q);
    if (store_memo_open_action(q->memo, device_id, &rc, a))
        return leave(q, rc);
    /* A paused campaign offers nothing new (no wave is started while it is
     * paused), but a device that already has its offer may still finish:
     * pausing must not strand an update half-way. A CANCELLING action is
     * open whatever its campaign's state: cancelling a campaign marks it
     * cancelled at once, and its started actions CANCELLING, and the device
     * must still be told (cancelAction) and confirm. */
    stmt_t *st = use(q, S_ACT_OPEN);
    bind_i64(st, 1, device_id);
    bind_i64(st, 2, STORE_ACT_OFFERED);
    bind_i64(st, 3, STORE_ACT_RUNNING);
    bind_i64(st, 4, STORE_ACT_CANCELLING);
    bind_i64(st, 5, STORE_CAMP_RUNNING);
    bind_i64(st, 6, STORE_CAMP_PAUSED);
    rc = get_row(q, st, read_action, a);
    if (rc == STORE_OK || rc == STORE_NOT_FOUND)
        store_memo_put_open_action(q->memo, device_id, rc, a);
    return leave(q, rc);
}

static int sq_action_set_state(store_t *s, int64_t id, int expect_state, int state, int cnt, int of,
                               const char *details, int64_t now)
{
    sq_t *q = sq(s);
    if (!action_state_ok(state) || (expect_state != 0 && !action_state_ok(expect_state)))
        return STORE_INVAL;
    char det[sizeof((store_action_t *)0)->details]; /* the header promises truncation */
    if (details)
        copy_trunc(det, sizeof det, details);
    int rc = enter(q);
    if (rc)
        return rc;
    rc = atomic_begin(q);
    if (rc)
        return leave(q, rc);
    stmt_t *st = use(q, S_ACT_STATE);
    bind_i64(st, 1, id);
    bool row;
    int from = 0;
    int64_t campaign = 0;
    rc = step(q, st, &row);
    if (rc == STORE_OK && !row)
        rc = STORE_NOT_FOUND;
    if (rc == STORE_OK) {
        from = col_int(st->st, 0);
        campaign = col_i64(st->st, 1);
    }
    finish(st);
    if (rc == STORE_OK && expect_state != 0 && from != expect_state) {
        snprintf(q->base.errmsg, sizeof q->base.errmsg, "action %lld is %s, not %s", (long long)id,
                 store_action_state_name(from), store_action_state_name(expect_state));
        rc = STORE_CONFLICT;
    }
    if (rc == STORE_OK) {
        st = use(q, S_ACT_UPDATE);
        bind_i64(st, 1, id);
        bind_i64(st, 2, state);
        bind_i64(st, 3, cnt);
        bind_i64(st, 4, of);
        bind_text(st, 5, details ? det : NULL);
        bind_i64(st, 6, now);
        rc = update_one(q, st);
    }
    if (rc == STORE_OK && from != state) /* progress alone is no transition */
        rc = add_transition(q, id, campaign, now, from, state);
    return leave(q, atomic_end(q, rc));
}

static int sq_action_list(store_t *s, int64_t campaign_id, int64_t device_id, store_action_cb cb,
                          void *ctx)
{
    if (!cb || campaign_id < 0 || device_id < 0 || (!campaign_id && !device_id))
        return STORE_INVAL;
    struct walk w = {.nkey = 1,
                     .size = sizeof(store_action_t),
                     .read = read_action,
                     .emit = emit_action,
                     .cb.act = cb,
                     .ctx = ctx};
    if (campaign_id && device_id) {
        w.stmt = S_ACT_LIST_CAMP_DEV;
        w.narg = 2;
        w.arg[0] = campaign_id;
        w.arg[1] = device_id;
    } else if (campaign_id) { /* by device id: (campaign, device) is unique and indexed */
        w.stmt = S_ACT_LIST_CAMP;
        w.narg = 1;
        w.arg[0] = campaign_id;
    } else {
        w.stmt = S_ACT_LIST_DEV;
        w.narg = 1;
        w.arg[0] = device_id;
    }
    return walk(sq(s), &w);
}

static int sq_action_counts(store_t *s, int64_t campaign_id, int wave, store_counts_t *out)
{
    sq_t *q = sq(s);
    if (!out)
        return STORE_INVAL;
    memset(out, 0, sizeof *out);
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, wave < 0 ? S_ACT_COUNTS : S_ACT_COUNTS_WAVE);
    bind_i64(st, 1, campaign_id);
    if (wave >= 0)
        bind_i64(st, 2, wave);
    bool row;
    while ((rc = step(q, st, &row)) == STORE_OK && row) {
        int state = col_int(st->st, 0);
        int64_t n = col_i64(st->st, 1);
        if (action_state_ok(state)) /* CHECK keeps out anything else */
            out->n[state] = n;
        out->total += n;
    }
    finish(st);
    return leave(q, rc);
}

static int sq_action_offer_wave(store_t *s, int64_t campaign_id, unsigned wave, int64_t now)
{
    sq_t *q = sq(s);
    int rc = enter(q);
    if (rc)
        return rc;
    rc = atomic_begin(q);
    if (rc)
        return leave(q, rc);
    /* The transitions first, while the actions still say PENDING; both
     * statements see the same rows, as the transaction holds the write lock. */
    for (int i = 0; i < 2 && rc == STORE_OK; i++) {
        stmt_t *st = use(q, i == 0 ? S_ACT_OFFER_TR : S_ACT_OFFER);
        bind_i64(st, 1, campaign_id);
        bind_i64(st, 2, wave);
        bind_i64(st, 3, now);
        bind_i64(st, 4, STORE_ACT_PENDING);
        bind_i64(st, 5, STORE_ACT_OFFERED);
        rc = run_stmt(q, st, NULL);
    }
    return leave(q, atomic_end(q, rc));
}

static int sq_transition_list(store_t *s, int64_t campaign_id, store_transition_cb cb, void *ctx)
{
    if (!cb)
        return STORE_INVAL;
    struct walk w = {.stmt = S_TR_LIST,
                     .narg = 1,
                     .arg = {campaign_id},
                     .nkey = 2,
                     .key = {INT64_MIN, 0},
                     .size = sizeof(store_transition_t),
                     .read = read_transition,
                     .emit = emit_transition,
                     .cb.tr = cb,
                     .ctx = ctx};
    return walk(sq(s), &w);
}

/* ---- feedback ----------------------------------------------------------------- */

static int sq_feedback_add(store_t *s, store_feedback_t *f)
{
    sq_t *q = sq(s);
    if (!f || !field_ok(f->execution, sizeof f->execution) ||
        !field_ok(f->finished, sizeof f->finished) || !field_ok(f->time, sizeof f->time))
        return STORE_INVAL;
    f->received_at = or_now(f->received_at);
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_FB_INSERT);
    bind_i64(st, 1, f->action_id);
    bind_i64(st, 2, f->device_id);
    bind_text(st, 3, f->execution);
    bind_text(st, 4, f->finished);
    bind_i64(st, 5, f->progress_cnt);
    bind_i64(st, 6, f->progress_of);
    bind_text(st, 7, f->details);
    bind_text(st, 8, f->time);
    bind_i64(st, 9, f->received_at);
    return leave(q, insert_id(q, st, &f->id));
}

static int sq_feedback_list(store_t *s, int64_t device_id, int64_t action_id, store_feedback_cb cb,
                            void *ctx)
{
    if (!cb || action_id < 0)
        return STORE_INVAL;
    struct walk w = {.stmt = action_id ? S_FB_LIST_ACT : S_FB_LIST,
                     .narg = action_id ? 2 : 1,
                     .arg = {device_id, action_id},
                     .nkey = 1,
                     .size = sizeof(store_feedback_t),
                     .read = read_feedback,
                     .clear = clear_feedback,
                     .emit = emit_feedback,
                     .cb.fb = cb,
                     .ctx = ctx};
    return walk(sq(s), &w);
}

/* ---- settings ----------------------------------------------------------------- */

static const char schema_key[] = "schema_version";

static int sq_setting_get(store_t *s, const char *key, char *val, size_t cap)
{
    sq_t *q = sq(s);
    if (!name_ok(key) || !val || cap == 0)
        return STORE_INVAL;
    val[0] = '\0';
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_SET_GET);
    bind_text(st, 1, key);
    bool row;
    rc = step(q, st, &row);
    if (rc == STORE_OK && !row)
        rc = STORE_NOT_FOUND;
    if (rc == STORE_OK) {
        const unsigned char *t = sqlite3_column_text(st->st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st->st, 0);
        if (!t) {
            rc = nomem(q);
        } else if (n >= cap) {
            set_msg(q, "setting longer than the buffer");
            rc = STORE_INVAL;
        } else {
            memcpy(val, t, n + 1);
        }
    }
    finish(st);
    return leave(q, rc);
}

static int sq_setting_set(store_t *s, const char *key, const char *val)
{
    sq_t *q = sq(s);
    if (!name_ok(key) || !val || strcmp(key, schema_key) == 0) /* the store's own */
        return STORE_INVAL;
    int rc = enter(q);
    if (rc)
        return rc;
    stmt_t *st = use(q, S_SET_PUT);
    bind_text(st, 1, key);
    bind_text(st, 2, val);
    return leave(q, run_stmt(q, st, NULL));
}

/* ---- open and close ----------------------------------------------------------- */

static void release_db(sq_t *q)
{
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(q->st[i].st); /* NULL is a no-op */
    sqlite3_close_v2(q->db);
    q->db = NULL;
}

static void sq_close(store_t *s)
{
    if (!s)
        return;
    sq_t *q = sq(s);
    pthread_mutex_lock(&q->mu);
    if (q->tx) { /* closed inside begin..commit: undo, and drop begin's hold too */
        if (!sqlite3_get_autocommit(q->db))
            run(q, S_TX_ROLLBACK);
        q->tx = false;
        pthread_mutex_unlock(&q->mu);
    }
    release_db(q);
    store_memo_free(q->memo);
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* Prepare one statement and map its $n parameters to SQLite's indexes. */
static int prepare(sq_t *q, enum stmt_id id)
{
    stmt_t *s = &q->st[id];
    int rc = sqlite3_prepare_v3(q->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(q->base.errmsg, sizeof q->base.errmsg, "%s: %s", stmt_name[id],
                 sqlite3_errmsg(q->db));
        return STORE_IO;
    }
    s->nparam = sqlite3_bind_parameter_count(s->st);
    bool ok = s->nparam <= MAX_PARAMS;
    for (int i = 1; ok && i <= s->nparam; i++) {
        const char *name = sqlite3_bind_parameter_name(s->st, i);
        char *end;
        long n = name && name[0] == '$' ? strtol(name + 1, &end, 10) : 0;
        ok = n >= 1 && n <= s->nparam && *end == '\0' && s->slot[n] == 0;
        if (ok)
            s->slot[n] = i;
    }
    if (!ok) {
        snprintf(q->base.errmsg, sizeof q->base.errmsg, "%s: parameters must be $1..$n, at most %d",
                 stmt_name[id], MAX_PARAMS);
        return STORE_IO;
    }
    return STORE_OK;
}

/* A PRAGMA that answers with one value, which must be one of want/alt. */
static int pragma_check(sq_t *q, const char *sql, const char *want, const char *alt)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_err(q, rc);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = db_err(q, rc == SQLITE_DONE ? SQLITE_ERROR : rc);
        sqlite3_finalize(st);
        return rc;
    }
    const char *got = (const char *)sqlite3_column_text(st, 0);
    got = got ? got : "";
    if (strcmp(got, want) != 0 && (!alt || strcmp(got, alt) != 0)) {
        snprintf(q->base.errmsg, sizeof q->base.errmsg, "%s gave \"%s\", not \"%s\"", sql, got,
                 want);
        rc = STORE_IO;
    } else {
        rc = STORE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int exec_sql(sq_t *q, const char *sql)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? STORE_OK : db_err(q, rc);
}

static int configure(sq_t *q)
{
    /* WAL: readers never wait for the writer, and a commit is one append.
     * ("memory" is what an in-memory database answers: it has no file.) */
    int rc = pragma_check(q, "PRAGMA journal_mode=WAL", "wal", "memory");
    /* FULL, not NORMAL: in WAL mode NORMAL syncs the WAL only at checkpoints,
     * so a committed transaction survives kill -9 (the OS has the pages) but
     * may roll back after a power loss. A device's report that the server
     * acknowledged must not be forgotten, so every commit fsyncs the WAL. */
    if (rc == STORE_OK)
        rc = exec_sql(q, "PRAGMA synchronous=FULL");
    if (rc == STORE_OK)
        rc = exec_sql(q, "PRAGMA foreign_keys=ON");
    if (rc == STORE_OK) /* a SQLite built without foreign keys ignores the PRAGMA */
        rc = pragma_check(q, "PRAGMA foreign_keys", "1", NULL);
    return rc;
}

/* The schema: create version 1 in an empty file, or check the version. */
static int schema(sq_t *q)
{
    int rc = exec_sql(q, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    rc = exec_sql(q, "CREATE TABLE IF NOT EXISTS settings ("
                     " key TEXT PRIMARY KEY,"
                     " value TEXT NOT NULL)");
    long version = 0;
    if (rc == STORE_OK)
        rc = prepare(q, S_SET_GET);
    if (rc == STORE_OK) {
        char val[32];
        stmt_t *st = use(q, S_SET_GET);
        bind_text(st, 1, schema_key);
        bool row;
        rc = step(q, st, &row);
        if (rc == STORE_OK && row) {
            col_copy(st->st, 0, val, sizeof val);
            char *end;
            version = strtol(val, &end, 10);
            if (*end != '\0' || version < 1)
                version = -1;
        }
        finish(st);
    }
    if (rc == STORE_OK && (version < 0 || version > SCHEMA_VERSION)) {
        snprintf(q->base.errmsg, sizeof q->base.errmsg,
                 "database schema version %ld is not one this server knows (1..%d)", version,
                 SCHEMA_VERSION);
        rc = STORE_IO;
    }
    for (long v = version; rc == STORE_OK && v < SCHEMA_VERSION; v++)
        rc = exec_sql(q, migration[v]);
    if (rc == STORE_OK && version < SCHEMA_VERSION) {
        char val[16];
        snprintf(val, sizeof val, "%d", SCHEMA_VERSION);
        rc = prepare(q, S_SET_PUT);
        if (rc == STORE_OK) {
            stmt_t *st = use(q, S_SET_PUT);
            bind_text(st, 1, schema_key);
            bind_text(st, 2, val);
            rc = run_stmt(q, st, NULL);
        }
    }
    if (rc == STORE_OK)
        return exec_sql(q, "COMMIT");
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static const store_ops_t sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .device_create = sq_device_create,
    .device_get = sq_device_get,
    .device_by_controller = sq_device_by_controller,
    .device_set_token = sq_device_set_token,
    .device_by_token = sq_device_by_token,
    .device_seen = sq_device_seen,
    .device_set_attributes = sq_device_set_attributes,
    .device_set_version = sq_device_set_version,
    .device_list = sq_device_list,
    .device_count = sq_device_count,
    .group_create = sq_group_create,
    .group_by_name = sq_group_by_name,
    .group_get = sq_group_get,
    .group_add = sq_group_add,
    .group_list = sq_group_list,
    .artifact_create = sq_artifact_create,
    .artifact_get = sq_artifact_get,
    .artifact_by_name = sq_artifact_by_name,
    .artifact_list = sq_artifact_list,
    .campaign_create = sq_campaign_create,
    .campaign_get = sq_campaign_get,
    .campaign_by_name = sq_campaign_by_name,
    .campaign_update = sq_campaign_update,
    .campaign_list = sq_campaign_list,
    .action_create = sq_action_create,
    .action_get = sq_action_get,
    .action_open_for_device = sq_action_open_for_device,
    .action_set_state = sq_action_set_state,
    .action_list = sq_action_list,
    .action_counts = sq_action_counts,
    .action_offer_wave = sq_action_offer_wave,
    .transition_list = sq_transition_list,
    .feedback_add = sq_feedback_add,
    .feedback_list = sq_feedback_list,
    .setting_get = sq_setting_get,
    .setting_set = sq_setting_set,
};

int store_sqlite_open(const char *path, store_t **out)
{
    if (!out)
        return STORE_INVAL;
    *out = NULL;
    if (!path || !path[0])
        return STORE_INVAL;
    sq_t *q = calloc(1, sizeof *q);
    if (!q)
        return STORE_IO;
    q->base.ops = &sqlite_ops;
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0) {
        free(q);
        return STORE_IO;
    }
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init(&q->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        free(q);
        return STORE_IO;
    }
    rc = sqlite3_open_v2(path, &q->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = q->db ? db_err(q, rc) : STORE_IO;
    } else {
        sqlite3_extended_result_codes(q->db, 1);
        sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
        rc = configure(q);
        if (rc == STORE_OK)
            rc = schema(q);
        for (int i = 0; rc == STORE_OK && i < S_COUNT; i++)
            if (!q->st[i].st)
                rc = prepare(q, (enum stmt_id)i);
    }
    if (rc == STORE_OK && !(q->memo = store_memo_new()))
        rc = nomem(q);
    if (rc != STORE_OK) {
        release_db(q);
        store_memo_free(q->memo);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return rc == STORE_BUSY ? STORE_BUSY : STORE_IO;
    }
    q->changes = sqlite3_total_changes64(q->db);
    *out = &q->base;
    return STORE_OK;
}
