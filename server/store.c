/*
 * The backend-independent part of the store (server/store.h): names of
 * errors and states, and freeing what reads malloc'd. Knows no database.
 * Each switch runs over the enum with no default, so -Wall (-Wswitch) fails
 * the build when a value is added to store.h without a name here.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

const char *store_errname(int err)
{
    switch ((enum store_err)err) {
    case STORE_OK:
        return "OK";
    case STORE_NOT_FOUND:
        return "NOT_FOUND";
    case STORE_EXISTS:
        return "EXISTS";
    case STORE_INVAL:
        return "INVAL";
    case STORE_IO:
        return "IO";
    case STORE_BUSY:
        return "BUSY";
    case STORE_CONFLICT:
        return "CONFLICT";
    }
    return "UNKNOWN";
}

const char *store_campaign_state_name(int state)
{
    switch ((enum store_campaign_state)state) {
    case STORE_CAMP_SCHEDULED:
        return "scheduled";
    case STORE_CAMP_RUNNING:
        return "running";
    case STORE_CAMP_PAUSED:
        return "paused";
    case STORE_CAMP_CANCELLED:
        return "cancelled";
    case STORE_CAMP_FINISHED:
        return "finished";
    }
    return "unknown";
}

const char *store_action_state_name(int state)
{
    switch ((enum store_action_state)state) {
    case STORE_ACT_PENDING:
        return "pending";
    case STORE_ACT_OFFERED:
        return "offered";
    case STORE_ACT_RUNNING:
        return "running";
    case STORE_ACT_CANCELLING:
        return "cancelling";
    case STORE_ACT_SUCCESS:
        return "success";
    case STORE_ACT_FAILURE:
        return "failure";
    case STORE_ACT_CANCELLED:
        return "cancelled";
    case STORE_ACT_SKIPPED:
        return "skipped";
    }
    return "unknown";
}

int store_action_state_parse(const char *name)
{
    if (!name)
        return 0;
    for (int st = STORE_ACT_PENDING; st <= STORE_ACT_SKIPPED; st++)
        if (strcmp(name, store_action_state_name(st)) == 0)
            return st;
    return 0;
}

void store_device_clear(store_device_t *d)
{
    if (!d)
        return;
    free(d->attributes);
    d->attributes = NULL;
}
