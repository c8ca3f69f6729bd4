/*
 * mbedTLS 2.28 configuration for airlock on Cortex-M (selected with
 * MBEDTLS_CONFIG_FILE). Verify-only: SHA-256/384/512, ECDSA P-256/P-384,
 * RSA-PSS 2048/3072, public key parsing. It must never pull in stdio, the C
 * heap, files, sockets, clocks or an entropy source: memory comes from a
 * caller-provided buffer (mbedtls_memory_buffer_alloc_init).
 */
#ifndef AIRLOCK_MBEDTLS_CONFIG_CORTEXM_H
#define AIRLOCK_MBEDTLS_CONFIG_CORTEXM_H

#include "mbedtls_platform.h" /* no OS, static heap, no stdio */

/* Hashes. SHA-384 comes with SHA512_C. */
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_SHA512_C
#define MBEDTLS_SHA512_SMALLER
#define MBEDTLS_MD_C

/* Big numbers, elliptic curves, ECDSA (verify needs no RNG). */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_NO_INTERNAL_RNG /* verify only: no private-key blinding needed */
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C /* required by ECDSA_C in check_config.h */

/* RSA: PSS (PKCS#1 v2.1) only. */
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_OID_C

/* Public key abstraction and DER parsing (no PEM, no files). */
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C

/* Sizes: RSA-3072 needs 384-byte MPIs; small ECP windows save RAM. */
#define MBEDTLS_MPI_MAX_SIZE 384
#define MBEDTLS_MPI_WINDOW_SIZE 2
#define MBEDTLS_ECP_MAX_BITS 384
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0

#include "mbedtls/check_config.h"

#endif /* AIRLOCK_MBEDTLS_CONFIG_CORTEXM_H */
