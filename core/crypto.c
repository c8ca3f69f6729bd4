/*
 * Algorithm facts shared by every crypto backend: digest lengths and key
 * type names. Pure functions, no state; never calls into a backend.
 */
#include "airlock/crypto.h"

size_t airlock_hash_len(int alg)
{
    switch (alg) {
    case AIRLOCK_HASH_SHA256:
        return 32;
    case AIRLOCK_HASH_SHA384:
        return 48;
    case AIRLOCK_HASH_SHA512:
        return 64;
    default:
        return 0;
    }
}

const char *airlock_key_type_name(int type)
{
    switch (type) {
    case AIRLOCK_KEY_ECDSA_P256:
        return "ecdsa-p256";
    case AIRLOCK_KEY_ECDSA_P384:
        return "ecdsa-p384";
    case AIRLOCK_KEY_RSA_2048:
        return "rsa-2048";
    case AIRLOCK_KEY_RSA_3072:
        return "rsa-3072";
    case AIRLOCK_KEY_ED25519:
        return "ed25519";
    default:
        return "none";
    }
}
