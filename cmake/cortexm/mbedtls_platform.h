/*
 * The platform part shared by airlock's mbedTLS 2.28 configurations for
 * Cortex-M (mbedtls_config.h, mbedtls_config_p256.h): no OS, no heap but a
 * caller-provided buffer, no stdio. Included by them only, before their
 * algorithm choices; it must never enable an algorithm.
 */
#ifndef AIRLOCK_MBEDTLS_PLATFORM_CORTEXM_H
#define AIRLOCK_MBEDTLS_PLATFORM_CORTEXM_H

/* System support: no time, no OS entropy, no file system. */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_NO_PLATFORM_ENTROPY

/* Platform: heap from a static buffer, no libc fallbacks at all. */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
/* memory_buffer_alloc.c calls mbedtls_exit() on heap corruption: trap (the
 * watchdog or fault handler resets) instead of reaching for exit(). */
#define MBEDTLS_PLATFORM_EXIT_MACRO(status) __builtin_trap()
/* Only oid.c's OID-to-text printer formats strings; make it report "buffer
 * too small" rather than reference snprintf. */
#include <stddef.h>
static inline int airlock_mbedtls_no_snprintf(char *s, size_t n, const char *fmt, ...)
{
    (void)s;
    (void)n;
    (void)fmt;
    return -1;
}
#define MBEDTLS_PLATFORM_SNPRINTF_MACRO airlock_mbedtls_no_snprintf

#endif /* AIRLOCK_MBEDTLS_PLATFORM_CORTEXM_H */
