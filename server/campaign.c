/*
 * Campaigns (server.h): which devices get an update when. A campaign splits
 * its target devices into cumulative waves (a seeded shuffle, so each wave
 * is a sample of the fleet, not the oldest devices), offers one wave at a
 * time, pauses itself when a wave's failures pass the threshold, and
 * finishes when every action is closed. Every evaluation is one store
 * transaction, so a crash leaves a campaign as it was before or after it.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

struct target {
    int64_t id;
    uint64_t order;
    bool skip;
};

struct targets {
    struct target *v;
    size_t n, cap;
    const char *version; /* the artifact's */
    int64_t seed;
};

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int collect(void *ctx, const store_device_t *d)
{
    struct targets *t = ctx;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct target *v = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            return 1;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n].id = d->id;
    t->v[t->n].order = mix((uint64_t)t->seed * 1000003u ^ (uint64_t)d->id);
    t->v[t->n].skip = d->version[0] && strcmp(d->version, t->version) == 0;
    t->n++;
    return 0;
}

static int by_order(const void *a, const void *b)
{
    const struct target *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order ? 1 : (x->id > y->id) - (x->id < y->id);
}

static bool waves_ok(const store_campaign_t *c)
{
    if (c->nwaves == 0 || c->nwaves > STORE_MAX_WAVES || c->waves[c->nwaves - 1] != 100) {
        return false;
    }
    for (unsigned i = 0; i < c->nwaves; i++) {
        if (c->waves[i] == 0 || c->waves[i] > 100 || (i && c->waves[i] <= c->waves[i - 1])) {
            return false;
        }
    }
    return true;
}

int srv_campaign_create(srv_t *s, store_campaign_t *c, char *msg, size_t cap)
{
    store_t *st = s->store;
    store_artifact_t art;
    store_group_t g;
    struct targets t = {0};
    int64_t now = srv_now();
    msg[0] = '\0';
    if (!waves_ok(c)) {
        snprintf(msg, cap, "waves must be 1 to %d ascending percentages ending with 100",
                 STORE_MAX_WAVES);
        return STORE_INVAL;
    }
    if (c->failure_pct > 100) {
        snprintf(msg, cap, "failure threshold must be 0..100 %%");
        return STORE_INVAL;
    }
    pthread_mutex_lock(&s->campaign_lock);
    int rc = st->ops->begin(st);
    if (rc != STORE_OK) {
        pthread_mutex_unlock(&s->campaign_lock);
        snprintf(msg, cap, "store: %s", st->errmsg);
        return rc;
    }
    rc = st->ops->artifact_get(st, c->artifact_id, &art);
    if (rc != STORE_OK) {
        snprintf(msg, cap, "artifact %" PRId64 " does not exist", c->artifact_id);
        goto out;
    }
    if (c->group_id && (rc = st->ops->group_get(st, c->group_id, &g)) != STORE_OK) {
        snprintf(msg, cap, "group %" PRId64 " does not exist", c->group_id);
        goto out;
    }
    c->state = c->start_at > now ? STORE_CAMP_SCHEDULED : STORE_CAMP_RUNNING;
    c->current_wave = 0;
    c->reason[0] = '\0';
    c->created_at = c->updated_at = now;
    rc = st->ops->campaign_create(st, c);
    if (rc != STORE_OK) {
        snprintf(msg, cap, rc == STORE_EXISTS ? "a campaign named %s exists already" : "store: %s",
                 rc == STORE_EXISTS ? c->name : st->errmsg);
        goto out;
    }
    t.version = art.version;
    t.seed = c->id;
    rc = st->ops->device_list(st, c->group_id, collect, &t);
    if (rc != STORE_OK) {
        snprintf(msg, cap, "store: %s", st->errmsg);
        goto out;
    }
    qsort(t.v, t.n, sizeof(*t.v), by_order);
    size_t need = 0;
    for (size_t i = 0; i < t.n; i++) {
        need += !t.v[i].skip;
    }
    size_t k = 0;
    for (size_t i = 0; i < t.n && rc == STORE_OK; i++) {
        store_action_t a;
        memset(&a, 0, sizeof(a));
        a.campaign_id = c->id;
        a.device_id = t.v[i].id;
        if (t.v[i].skip) {
            a.state = STORE_ACT_SKIPPED;
            snprintf(a.details, sizeof(a.details), "already on %s", art.version);
        } else {
            unsigned w = 0;
            /* wave w holds devices [ceil(p[w-1] * need / 100), ceil(p[w] * need / 100)) */
            while (w + 1 < c->nwaves && k >= (c->waves[w] * need + 99) / 100) {
                w++;
            }
            a.wave = w;
            a.state = STORE_ACT_PENDING;
            k++;
        }
        a.created_at = a.updated_at = now;
        rc = st->ops->action_create(st, &a);
    }
    if (rc != STORE_OK) {
        snprintf(msg, cap, "store: %s", st->errmsg);
        goto out;
    }
    if (c->state == STORE_CAMP_RUNNING) {
        rc = st->ops->action_offer_wave(st, c->id, 0, now);
    }
out:
    free(t.v);
    if (rc == STORE_OK) {
        rc = st->ops->commit(st);
    } else {
        st->ops->rollback(st);
    }
    pthread_mutex_unlock(&s->campaign_lock);
    if (rc == STORE_OK) {
        srv_campaign_tick(s, c->id); /* an empty campaign finishes at once */
        st->ops->campaign_get(st, c->id, c);
    }
    return rc;
}

/* Failures of wave w acknowledged by a resume (they no longer count against it). */
static int64_t acked(store_t *st, int64_t id, unsigned w)
{
    char key[64], val[32] = "";
    snprintf(key, sizeof(key), "campaign.%" PRId64 ".wave.%u.acked", id, w);
    if (st->ops->setting_get(st, key, val, sizeof(val)) != STORE_OK) {
        return 0;
    }
    return strtoll(val, NULL, 10);
}

static int64_t open_count(const store_counts_t *n)
{
    return n->n[STORE_ACT_PENDING] + n->n[STORE_ACT_OFFERED] + n->n[STORE_ACT_RUNNING] +
           n->n[STORE_ACT_CANCELLING];
}

/* One campaign, inside a transaction. *changed when c was modified. */
static int evaluate(srv_t *s, store_campaign_t *c, int64_t now, bool *changed)
{
    store_t *st = s->store;
    store_counts_t n;
    int rc = STORE_OK;
    *changed = false;
    if (c->state == STORE_CAMP_SCHEDULED && c->start_at <= now) {
        c->state = STORE_CAMP_RUNNING;
        *changed = true;
        rc = st->ops->action_offer_wave(st, c->id, c->current_wave, now);
    }
    while (rc == STORE_OK && c->state == STORE_CAMP_RUNNING) {
        unsigned w = c->current_wave;
        rc = st->ops->action_counts(st, c->id, (int)w, &n);
        if (rc != STORE_OK) {
            break;
        }
        int64_t size = n.total - n.n[STORE_ACT_SKIPPED];
        int64_t failed = n.n[STORE_ACT_FAILURE];
        int64_t counted = failed - acked(st, c->id, w);
        if (size > 0 && counted > 0 && counted * 100 > (int64_t)c->failure_pct * size) {
            c->state = STORE_CAMP_PAUSED;
            snprintf(c->reason, sizeof(c->reason),
                     "wave %u of %u: %" PRId64 " of %" PRId64 " devices failed (%" PRId64
                     "%% > threshold %u%%)",
                     w + 1, c->nwaves, failed, size, failed * 100 / size, c->failure_pct);
            *changed = true;
            break;
        }
        if (open_count(&n) > 0) {
            break;
        }
        if (w + 1 < c->nwaves) {
            c->current_wave = w + 1;
            *changed = true;
            rc = st->ops->action_offer_wave(st, c->id, c->current_wave, now);
            continue;
        }
        store_counts_t all;
        rc = st->ops->action_counts(st, c->id, -1, &all);
        if (rc == STORE_OK) {
            c->state = STORE_CAMP_FINISHED;
            snprintf(c->reason, sizeof(c->reason),
                     "%" PRId64 " device(s): %" PRId64 " updated, %" PRId64 " failed, %" PRId64
                     " cancelled, %" PRId64 " already on the version",
                     all.total, all.n[STORE_ACT_SUCCESS], all.n[STORE_ACT_FAILURE],
                     all.n[STORE_ACT_CANCELLED], all.n[STORE_ACT_SKIPPED]);
            *changed = true;
        }
    }
    if (rc == STORE_OK && *changed) {
        c->updated_at = now;
        rc = st->ops->campaign_update(st, c);
    }
    return rc;
}

static int tick_one(srv_t *s, int64_t id)
{
    store_t *st = s->store;
    store_campaign_t c;
    bool changed;
    int rc = st->ops->begin(st);
    if (rc != STORE_OK) {
        return rc;
    }
    rc = st->ops->campaign_get(st, id, &c);
    if (rc == STORE_OK) {
        rc = evaluate(s, &c, srv_now(), &changed);
    }
    if (rc == STORE_OK) {
        rc = st->ops->commit(st);
        if (rc == STORE_OK && changed && c.state != STORE_CAMP_RUNNING) {
            fprintf(stderr, "airlock server: campaign %s %s%s%s\n", c.name,
                    store_campaign_state_name(c.state), c.reason[0] ? ": " : "", c.reason);
        }
    } else {
        st->ops->rollback(st);
    }
    return rc;
}

struct idlist {
    int64_t v[256];
    size_t n;
};

static int collect_active(void *ctx, const store_campaign_t *c)
{
    struct idlist *l = ctx;
    if ((c->state == STORE_CAMP_RUNNING || c->state == STORE_CAMP_SCHEDULED) &&
        l->n < sizeof(l->v) / sizeof(l->v[0])) {
        l->v[l->n++] = c->id;
    }
    return 0;
}

int srv_campaign_tick(srv_t *s, int64_t campaign_id)
{
    int rc = STORE_OK;
    pthread_mutex_lock(&s->campaign_lock);
    if (campaign_id) {
        rc = tick_one(s, campaign_id);
    } else {
        struct idlist l = {.n = 0};
        rc = s->store->ops->campaign_list(s->store, 0, collect_active, &l);
        for (size_t i = 0; rc == STORE_OK && i < l.n; i++) {
            rc = tick_one(s, l.v[i]);
        }
    }
    pthread_mutex_unlock(&s->campaign_lock);
    return rc;
}

/* Change a campaign's state under the lock, in one transaction. */
static int transition(srv_t *s, int64_t id, int from_mask, int to, const char *reason)
{
    store_t *st = s->store;
    store_campaign_t c;
    pthread_mutex_lock(&s->campaign_lock);
    int rc = st->ops->begin(st);
    if (rc != STORE_OK) {
        pthread_mutex_unlock(&s->campaign_lock);
        return rc;
    }
    rc = st->ops->campaign_get(st, id, &c);
    if (rc == STORE_OK && !(from_mask & (1 << c.state))) {
        rc = STORE_CONFLICT;
    }
    if (rc == STORE_OK) {
        int64_t now = srv_now();
        if (to == STORE_CAMP_RUNNING) {
            /* resume: the failures so far are acknowledged by the operator */
            store_counts_t n;
            rc = st->ops->action_counts(st, id, (int)c.current_wave, &n);
            char key[64], val[32];
            snprintf(key, sizeof(key), "campaign.%" PRId64 ".wave.%u.acked", id, c.current_wave);
            snprintf(val, sizeof(val), "%" PRId64, n.n[STORE_ACT_FAILURE]);
            if (rc == STORE_OK) {
                rc = st->ops->setting_set(st, key, val);
            }
            if (c.start_at > now) {
                to = STORE_CAMP_SCHEDULED;
            }
        }
        c.state = to;
        snprintf(c.reason, sizeof(c.reason), "%s", reason ? reason : "");
        c.updated_at = now;
        if (rc == STORE_OK) {
            rc = st->ops->campaign_update(st, &c);
        }
    }
    if (rc == STORE_OK) {
        rc = st->ops->commit(st);
    } else {
        st->ops->rollback(st);
    }
    pthread_mutex_unlock(&s->campaign_lock);
    return rc;
}

int srv_campaign_pause(srv_t *s, int64_t id, const char *reason)
{
    return transition(s, id, 1 << STORE_CAMP_RUNNING | 1 << STORE_CAMP_SCHEDULED,
                      STORE_CAMP_PAUSED, reason && *reason ? reason : "paused by the operator");
}

int srv_campaign_resume(srv_t *s, int64_t id)
{
    int rc = transition(s, id, 1 << STORE_CAMP_PAUSED, STORE_CAMP_RUNNING, "");
    if (rc == STORE_OK) {
        srv_campaign_tick(s, id);
    }
    return rc;
}

struct actlist {
    int64_t *id;
    int *state;
    size_t n, cap;
};

static int collect_action(void *ctx, const store_action_t *a)
{
    struct actlist *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        int64_t *id = realloc(l->id, cap * sizeof(*id));
        int *state = id ? realloc(l->state, cap * sizeof(*state)) : NULL;
        if (id) {
            l->id = id;
        }
        if (!id || !state) {
            return 1;
        }
        l->state = state;
        l->cap = cap;
    }
    l->id[l->n] = a->id;
    l->state[l->n] = a->state;
    l->n++;
    return 0;
}

int srv_campaign_cancel(srv_t *s, int64_t id, const char *reason)
{
    store_t *st = s->store;
    int rc = transition(s, id,
                        1 << STORE_CAMP_RUNNING | 1 << STORE_CAMP_SCHEDULED |
                            1 << STORE_CAMP_PAUSED,
                        STORE_CAMP_CANCELLED,
                        reason && *reason ? reason : "cancelled by the operator");
    if (rc != STORE_OK) {
        return rc;
    }
    /* actions not started are dropped; started ones are asked to cancel */
    struct actlist l = {0};
    pthread_mutex_lock(&s->campaign_lock);
    rc = st->ops->begin(st);
    if (rc == STORE_OK) {
        rc = st->ops->action_list(st, id, 0, collect_action, &l);
    }
    int64_t now = srv_now();
    for (size_t i = 0; rc == STORE_OK && i < l.n; i++) {
        int to = l.state[i] == STORE_ACT_PENDING   ? STORE_ACT_CANCELLED
                 : l.state[i] == STORE_ACT_OFFERED ? STORE_ACT_CANCELLING
                 : l.state[i] == STORE_ACT_RUNNING ? STORE_ACT_CANCELLING
                                                   : 0;
        if (to) {
            rc = st->ops->action_set_state(st, l.id[i], l.state[i], to, 0, 0,
                                           "campaign cancelled", now);
        }
    }
    if (rc == STORE_OK) {
        rc = st->ops->commit(st);
    } else {
        st->ops->rollback(st);
    }
    pthread_mutex_unlock(&s->campaign_lock);
    free(l.id);
    free(l.state);
    return rc;
}
