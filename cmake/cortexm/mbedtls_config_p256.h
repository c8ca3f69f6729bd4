/*
 * mbedTLS 2.28 configuration for a P-256-only bootloader on Cortex-M
 * (port/cortex-m/crypto_p256.c; cmake/cortexm/qemu-mps2.cmake). Verify-only:
 * SHA-256 and ECDSA P-256; no PK layer, RSA, SHA-512 or P-384. It must never pull in stdio, the C
 * heap, files, sockets, clocks or an entropy source: memory comes from a
 * caller-provided buffer (mbedtls_memory_buffer_alloc_init).
 */
#ifndef AIRLOCK_MBEDTLS_CONFIG_P256_H
#define AIRLOCK_MBEDTLS_CONFIG_P256_H

#include "mbedtls_platform.h" /* no OS, static heap, no stdio */

/* Hash. */
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER

/* Big numbers, elliptic curves, ECDSA (verify needs no RNG). */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_NO_INTERNAL_RNG /* verify only: no private-key blinding needed */
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C /* required by ECDSA_C in check_config.h */

/* Sizes: P-256 only; small ECP windows save RAM. */
#define MBEDTLS_MPI_MAX_SIZE 64
#define MBEDTLS_MPI_WINDOW_SIZE 2
#define MBEDTLS_ECP_MAX_BITS 256
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0

#include "mbedtls/check_config.h"

#endif /* AIRLOCK_MBEDTLS_CONFIG_P256_H */
