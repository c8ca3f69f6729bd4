/*
 * airlock_strerror / airlock_errname, generated from AIRLOCK_ERR_LIST so the
 * messages cannot drift from the enum. No I/O, no state.
 */
#include "airlock/err.h"

const char *airlock_strerror(int err)
{
    switch (err) {
#define AIRLOCK_ERR_MSG_(name, value, msg)                                     \
    case (value):                                                              \
        return (msg);
        AIRLOCK_ERR_LIST(AIRLOCK_ERR_MSG_)
#undef AIRLOCK_ERR_MSG_
    default:
        return "unknown error";
    }
}

const char *airlock_errname(int err)
{
    switch (err) {
#define AIRLOCK_ERR_NAME_(name, value, msg)                                    \
    case (value):                                                              \
        return #name;
        AIRLOCK_ERR_LIST(AIRLOCK_ERR_NAME_)
#undef AIRLOCK_ERR_NAME_
    default:
        return "UNKNOWN";
    }
}
