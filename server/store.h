/*
 * The update server's persistent state behind one interface: devices and
 * their tokens, groups, artifacts, campaigns, actions (one device's part in a
 * campaign), and the feedback and state-change history. SQLite (WAL, one
 * file) is the embedded default (server/store_sqlite.c); a PostgreSQL backend
 * implements the same ops. Callers never see SQL, and every statement is
 * prepared with bound parameters: no SQL is ever built from input.
 *
 * Every write op commits before it returns (or is part of an explicit
 * transaction opened with begin): once an op returned 0, a kill -9 loses
 * nothing of it. Ops are serialised per store (the backend locks), so the
 * server's threads may share one store.
 *
 * Creates set the row's id; a created_at (campaign: also updated_at;
 * feedback: received_at) of 0 is set to the current time. A string longer
 * than its row field, or a row field not NUL-terminated inside it, is INVAL.
 */
#ifndef AIRLOCK_SERVER_STORE_H
#define AIRLOCK_SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors (0 = ok). */
enum store_err {
    STORE_OK = 0,
    STORE_NOT_FOUND = -1, /* no such row (or a row a write refers to: an action's device, ...) */
    STORE_EXISTS = -2,    /* a unique name/id is taken */
    STORE_INVAL = -3,     /* bad argument (empty name, unknown state, ...) */
    STORE_IO = -4,        /* the database failed (message in store_errmsg) */
    STORE_BUSY = -5,      /* locked by another process for too long */
    STORE_CONFLICT = -6,  /* the row changed state meanwhile (e.g. action already closed) */
};

#define STORE_NAME_MAX 128   /* controller ids, names, filenames (bytes, incl. NUL) */
#define STORE_VERSION_MAX 48 /* "1.2.3+4" and friends */
#define STORE_HEX_SHA256 65
#define STORE_HEX_SHA1 41
#define STORE_HEX_MD5 33
#define STORE_MAX_WAVES 16

/* ---- rows ------------------------------------------------------------------- */

typedef struct store_device {
    int64_t id;
    char controller_id[STORE_NAME_MAX]; /* the DDI controllerId, unique */
    char name[STORE_NAME_MAX];          /* operator's label; defaults to controller_id */
    char token_hash[STORE_HEX_SHA256];  /* SHA-256 (hex) of its TargetToken, "" if none */
    char version[STORE_VERSION_MAX];    /* running version as last reported, "" unknown */
    char *attributes;                   /* configData attributes, a JSON object text (malloc'd
                                           by reads; NULL = none reported yet) */
    int64_t created_at;                 /* unix seconds */
    int64_t last_seen;                  /* last authenticated request, 0 never */
    int64_t polls;                      /* authenticated polls so far */
} store_device_t;

typedef struct store_group {
    int64_t id;
    char name[STORE_NAME_MAX];
    int64_t devices; /* member count (reads only) */
} store_group_t;

enum store_artifact_kind { STORE_ART_IMAGE = 1, STORE_ART_OPAQUE = 2 };

typedef struct store_artifact {
    int64_t id;
    char name[STORE_NAME_MAX];          /* filename offered to devices (unique) */
    int kind;                           /* enum store_artifact_kind */
    char version[STORE_VERSION_MAX];    /* image: from its header; opaque: as given */
    char sha256[STORE_HEX_SHA256];      /* of the whole file; also its file name on disk */
    char sha1[STORE_HEX_SHA1];          /* DDI clients check it */
    char md5[STORE_HEX_MD5];
    int64_t size;
    int64_t created_at;
} store_artifact_t;

enum store_campaign_state {
    STORE_CAMP_SCHEDULED = 1, /* start_at in the future */
    STORE_CAMP_RUNNING = 2,
    STORE_CAMP_PAUSED = 3,    /* by the operator or by a failure threshold (reason says) */
    STORE_CAMP_CANCELLED = 4,
    STORE_CAMP_FINISHED = 5,  /* every action closed */
};

typedef struct store_campaign {
    int64_t id;
    char name[STORE_NAME_MAX];
    int64_t artifact_id;
    int64_t group_id;                /* 0: every device */
    unsigned nwaves;                 /* 1..STORE_MAX_WAVES */
    unsigned waves[STORE_MAX_WAVES]; /* cumulative % of the target devices, ascending, last 100 */
    unsigned failure_pct;            /* pause when a wave's failures exceed this % (0..100) */
    int64_t start_at;                /* unix seconds; 0: at once */
    int state;                       /* enum store_campaign_state */
    unsigned current_wave;           /* index into waves of the wave being rolled out */
    char reason[256];                /* why paused / cancelled / finished, "" none */
    bool forced;                     /* DDI update type: forced, else attempt */
    int64_t created_at;
    int64_t updated_at;
} store_campaign_t;

enum store_action_state {
    STORE_ACT_PENDING = 1,    /* in a wave not started yet: not offered */
    STORE_ACT_OFFERED = 2,    /* offered to the device, no feedback yet */
    STORE_ACT_RUNNING = 3,    /* feedback "proceeding"/"downloaded"/... received */
    STORE_ACT_CANCELLING = 4, /* cancel requested, offered as cancelAction */
    STORE_ACT_SUCCESS = 5,    /* closed, success */
    STORE_ACT_FAILURE = 6,    /* closed, failure (or rejected) */
    STORE_ACT_CANCELLED = 7,  /* cancel confirmed, or campaign cancelled before it started */
    STORE_ACT_SKIPPED = 8,    /* device already on the target */
};

typedef struct store_action {
    int64_t id; /* the DDI actionId */
    int64_t campaign_id;
    int64_t device_id;
    unsigned wave;
    int state; /* enum store_action_state */
    int progress_cnt;
    int progress_of;
    char details[512]; /* last feedback's details, joined with "; " (truncated) */
    int64_t created_at;
    int64_t updated_at;
} store_action_t;

/* One feedback message as received (kept for the device history). */
typedef struct store_feedback {
    int64_t id;
    int64_t action_id;
    int64_t device_id;
    char execution[24]; /* closed, proceeding, canceled, scheduled, rejected, resumed, downloaded, download */
    char finished[16];  /* success, failure, none */
    int progress_cnt, progress_of;
    char *details;      /* JSON array text as received (malloc'd by reads) */
    char time[32];      /* the client's own time field, verbatim */
    int64_t received_at;
} store_feedback_t;

/* Per-state counts of one campaign (whole, or one wave). Index: enum store_action_state. */
typedef struct store_counts {
    int64_t n[9];
    int64_t total;
} store_counts_t;

/* One point of a campaign's history: a device's action changed state. */
typedef struct store_transition {
    int64_t at;
    int64_t action_id;
    int from_state; /* 0 for the action's creation */
    int to_state;
} store_transition_t;

/*
 * Row callbacks for list ops; return non-zero to stop early. The row is valid
 * during the call. Rows come in key order, each at most once; outside
 * begin..commit the store is not locked while a callback runs, so a callback
 * may call other ops of the store (and change the rows being listed).
 */
typedef int (*store_device_cb)(void *ctx, const store_device_t *d);
typedef int (*store_group_cb)(void *ctx, const store_group_t *g);
typedef int (*store_artifact_cb)(void *ctx, const store_artifact_t *a);
typedef int (*store_campaign_cb)(void *ctx, const store_campaign_t *c);
typedef int (*store_action_cb)(void *ctx, const store_action_t *a);
typedef int (*store_feedback_cb)(void *ctx, const store_feedback_t *f);
typedef int (*store_transition_cb)(void *ctx, const store_transition_t *t);

/* ---- the interface ------------------------------------------------------------ */

typedef struct store store_t;

typedef struct store_ops {
    const char *name; /* "sqlite", "postgresql" */
    void (*close)(store_t *s); /* rolls back a transaction still open */

    /*
     * Explicit transaction (nesting not allowed): every op between begin and
     * commit is one atomic unit, and no other thread's op runs in between.
     * rollback undoes it. Ops outside a transaction are each their own.
     * If commit fails, the transaction is rolled back (and ended) all the same.
     */
    int (*begin)(store_t *s);
    int (*commit)(store_t *s);
    void (*rollback)(store_t *s);

    /* devices */
    int (*device_create)(store_t *s, store_device_t *d); /* sets d->id, created_at */
    int (*device_get)(store_t *s, int64_t id, store_device_t *d);
    int (*device_by_controller)(store_t *s, const char *controller_id, store_device_t *d);
    int (*device_set_token)(store_t *s, int64_t id, const char *token_hash);
    /* The device whose token_hash this is (to tell 403 from 401); NOT_FOUND if none. */
    int (*device_by_token)(store_t *s, const char *token_hash, store_device_t *d);
    /* Last seen at now, and polls more check-ins (0: a request that was not a poll). */
    int (*device_seen)(store_t *s, int64_t id, int64_t now, unsigned polls);
    /* Replace the attributes (JSON object text) and, if version is non-NULL, the version. */
    int (*device_set_attributes)(store_t *s, int64_t id, const char *json, const char *version);
    int (*device_set_version)(store_t *s, int64_t id, const char *version);
    int (*device_list)(store_t *s, int64_t group_id /* 0 all */, store_device_cb cb, void *ctx);
    int (*device_count)(store_t *s, int64_t *n);

    /* groups */
    int (*group_create)(store_t *s, store_group_t *g);
    int (*group_by_name)(store_t *s, const char *name, store_group_t *g);
    int (*group_get)(store_t *s, int64_t id, store_group_t *g);
    int (*group_add)(store_t *s, int64_t group_id, int64_t device_id); /* idempotent */
    int (*group_list)(store_t *s, store_group_cb cb, void *ctx);

    /* artifacts (the file itself lives beside the database, named by sha256) */
    int (*artifact_create)(store_t *s, store_artifact_t *a); /* INVAL unless sha256 is 64 hex */
    int (*artifact_get)(store_t *s, int64_t id, store_artifact_t *a);
    int (*artifact_by_name)(store_t *s, const char *name, store_artifact_t *a);
    int (*artifact_list)(store_t *s, store_artifact_cb cb, void *ctx);

    /* campaigns */
    int (*campaign_create)(store_t *s, store_campaign_t *c);
    int (*campaign_get)(store_t *s, int64_t id, store_campaign_t *c);
    int (*campaign_by_name)(store_t *s, const char *name, store_campaign_t *c);
    /* state, current_wave, reason, updated_at */
    int (*campaign_update)(store_t *s, const store_campaign_t *c);
    int (*campaign_list)(store_t *s, int state /* 0 all */, store_campaign_cb cb, void *ctx);

    /* actions */
    /* Records a transition 0 -> state. One action per (campaign, device): EXISTS. */
    int (*action_create)(store_t *s, store_action_t *a);
    int (*action_get)(store_t *s, int64_t id, store_action_t *a);
    /*
     * The device's open action, oldest first; NOT_FOUND if none. Open:
     * OFFERED or RUNNING in a running or paused campaign, or CANCELLING in
     * any campaign (a cancelled campaign's started actions still need their
     * cancelAction).
     */
    int (*action_open_for_device)(store_t *s, int64_t device_id, store_action_t *a);
    /*
     * Move an action to a new state (recording a transition with time now
     * if the state changes) and set its progress and details (truncated to
     * the field, at a UTF-8 boundary; NULL keeps the old ones). If
     * expect_state is non-zero and the action is not in it, returns CONFLICT
     * and changes nothing.
     */
    int (*action_set_state)(store_t *s, int64_t id, int expect_state, int state, int cnt, int of,
                            const char *details, int64_t now);
    /* campaign_id 0: the device's actions in every campaign (not both 0). Order: by
     * device id when campaign_id is given, else by action id. */
    int (*action_list)(store_t *s, int64_t campaign_id, int64_t device_id /* 0 any */,
                       store_action_cb cb, void *ctx);
    /* Counts per state for the campaign; wave < 0: all waves. */
    int (*action_counts)(store_t *s, int64_t campaign_id, int wave, store_counts_t *out);
    /* Move every PENDING action of the campaign in waves <= wave to OFFERED. */
    int (*action_offer_wave)(store_t *s, int64_t campaign_id, unsigned wave, int64_t now);
    int (*transition_list)(store_t *s, int64_t campaign_id, store_transition_cb cb, void *ctx);

    /* feedback history */
    int (*feedback_add)(store_t *s, store_feedback_t *f); /* sets id */
    int (*feedback_list)(store_t *s, int64_t device_id, int64_t action_id /* 0 any */,
                         store_feedback_cb cb, void *ctx);

    /* settings: small key/value pairs (operator token hash, gateway token hash, ...);
     * get: INVAL if the value does not fit in cap; "schema_version" is the store's own
     * (set: INVAL). */
    int (*setting_get)(store_t *s, const char *key, char *val, size_t cap);
    int (*setting_set)(store_t *s, const char *key, const char *val);
} store_ops_t;

struct store {
    const store_ops_t *ops;
    char errmsg[256]; /* the backend's last error, for logs */
};

/*
 * Open (creating if needed) a SQLite store at path, in WAL mode. Returns 0 or an error.
 * device_by_controller and action_open_for_device may answer from memory: always as of
 * the last write through this store, and at most 1 ms behind a commit another connection
 * made to the file (PRAGMA data_version, checked at most once a millisecond).
 */
int store_sqlite_open(const char *path, store_t **out);

/* "NOT_FOUND", ...; and names of states ("running", "offered", ...). */
const char *store_errname(int err);
const char *store_campaign_state_name(int state);
const char *store_action_state_name(int state);
int store_action_state_parse(const char *name); /* 0 if unknown */

/* Free what a read op malloc'd inside a row. */
void store_device_clear(store_device_t *d);

#endif
