/*
 * Library error -> CLI exit code. The switch names every enum airlock_err
 * value (no default case), so -Wswitch flags a new error until it is mapped.
 */
#include "exitcodes.h"

#include "airlock/err.h"

int airlock_exit_for_err(int err)
{
    switch ((enum airlock_err)err) {
    case AIRLOCK_ERR_OK:
        return EXIT_OK_;
    case AIRLOCK_ERR_INVAL:
        return EXIT_USAGE;
    case AIRLOCK_ERR_IO:
        return EXIT_IO;
    case AIRLOCK_ERR_NOMEM:
        return EXIT_INTERNAL;
    case AIRLOCK_ERR_BAD_MAGIC:
    case AIRLOCK_ERR_BAD_HDR_SIZE:
    case AIRLOCK_ERR_OUT_OF_BOUNDS:
    case AIRLOCK_ERR_BAD_TLV_INFO:
    case AIRLOCK_ERR_BAD_TLV:
    case AIRLOCK_ERR_DUP_TLV:
    case AIRLOCK_ERR_BAD_SEC_CNT:
        return EXIT_MALFORMED;
    case AIRLOCK_ERR_BAD_FLAGS:
    case AIRLOCK_ERR_UNSUPPORTED:
        return EXIT_UNSUPPORTED;
    case AIRLOCK_ERR_NO_HASH:
    case AIRLOCK_ERR_HASH_MISMATCH:
        return EXIT_HASH;
    case AIRLOCK_ERR_NO_SIGNATURE:
    case AIRLOCK_ERR_BAD_SIGNATURE:
        return EXIT_SIGNATURE;
    case AIRLOCK_ERR_KEY_MISMATCH:
    case AIRLOCK_ERR_UNKNOWN_KEY:
        return EXIT_UNTRUSTED;
    case AIRLOCK_ERR_BAD_KEY:
        return EXIT_KEY;
    case AIRLOCK_ERR_DOWNGRADE:
    case AIRLOCK_ERR_SEC_CNT_ROLLBACK:
        return EXIT_UNTRUSTED;
    case AIRLOCK_ERR_NOT_BOOTABLE:
        return EXIT_UNSUPPORTED;
    case AIRLOCK_ERR_TOO_BIG:
        return EXIT_TOO_BIG;
    case AIRLOCK_ERR_LAYOUT:
        return EXIT_LAYOUT;
    case AIRLOCK_ERR_CRYPTO:
        return EXIT_INTERNAL;
    case AIRLOCK_ERR_NETWORK:
        return EXIT_NETWORK;
    case AIRLOCK_ERR_TLS:
        return EXIT_TLS;
    case AIRLOCK_ERR_HTTP:
        return EXIT_HTTP;
    case AIRLOCK_ERR_INCOMPLETE:
        return EXIT_MALFORMED;
    case AIRLOCK_ERR_CANCELLED:
        return EXIT_CANCELLED;
    }
    /* Not an airlock_err value at all: a bug somewhere, not the user's fault. */
    return EXIT_INTERNAL;
}
