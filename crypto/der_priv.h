/*
 * DER rules shared by the crypto backends, so that every backend accepts
 * exactly the same ECDSA signatures and RSA key integers (an image the host
 * tool accepts must be one the device accepts). Private to crypto/.
 * Freestanding; never reads outside [buf, buf + len).
 */
#ifndef AIRLOCK_CRYPTO_DER_PRIV_H
#define AIRLOCK_CRYPTO_DER_PRIV_H

#include <stddef.h>
#include <stdint.h>

/*
 * Is [v, v + len) the content of a strict DER INTEGER that is positive or
 * zero: at least one byte, sign bit clear, and no redundant leading zero.
 */
static inline int der_uint_ok(const uint8_t *v, size_t len)
{
    if (len == 0 || (v[0] & 0x80) != 0) {
        return 0;
    }
    return !(len > 1 && v[0] == 0x00 && (v[1] & 0x80) == 0);
}

/*
 * Read a strict DER length at buf[*pos] (short form, or 0x81/0x82 long form
 * only when the short/shorter form cannot hold it) and check that that many
 * bytes follow before end. Advances *pos past the length bytes.
 * Returns 0 on success, -1 otherwise.
 */
static inline int read_der_len(const uint8_t *buf, size_t *pos, size_t end, size_t *len)
{
    size_t p = *pos;
    size_t n;

    if (p >= end) {
        return -1;
    }
    if (buf[p] < 0x80) {
        n = buf[p];
        p += 1;
    } else if (buf[p] == 0x81 && end - p >= 2 && buf[p + 1] >= 0x80) {
        n = buf[p + 1];
        p += 2;
    } else if (buf[p] == 0x82 && end - p >= 3 && buf[p + 1] != 0) {
        n = ((size_t)buf[p + 1] << 8) | buf[p + 2];
        p += 3;
    } else {
        return -1; /* indefinite, non-minimal, or longer than 64 KiB */
    }
    if (n > end - p) {
        return -1;
    }
    *pos = p;
    *len = n;
    return 0;
}

/*
 * Length of the DER ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s }) at
 * the start of sig, or 0 if it is not strict DER or if any byte after it is
 * not zero. imgtool pads ECDSA signatures with zeros to a fixed TLV size
 * (--pad-sig); only zero bytes may follow, so nothing unsigned can hide
 * there. r and s must be minimal, positive INTEGERs (OpenSSL insists on
 * that; mbedTLS alone would not).
 */
static inline size_t ecdsa_sig_der_len(const uint8_t *sig, size_t sig_len)
{
    size_t pos = 1;
    size_t len;
    size_t end;
    size_t i;

    if (sig == NULL || sig_len < 2 || sig[0] != 0x30) {
        return 0;
    }
    if (read_der_len(sig, &pos, sig_len, &len) != 0) {
        return 0;
    }
    end = pos + len;
    for (i = end; i < sig_len; i++) {
        if (sig[i] != 0) {
            return 0;
        }
    }
    for (i = 0; i < 2; i++) {
        if (pos >= end || sig[pos] != 0x02) {
            return 0;
        }
        pos++;
        if (read_der_len(sig, &pos, end, &len) != 0 || !der_uint_ok(sig + pos, len)) {
            return 0;
        }
        pos += len;
    }
    return pos == end ? end : 0;
}

#endif /* AIRLOCK_CRYPTO_DER_PRIV_H */
