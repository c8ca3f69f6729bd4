/*
 * Flash records (see record.h). The top bit of every byte is set opposite to
 * the erased value (clear when erased is 0xff, set when it is 0x00), so a
 * written record has no byte that reads erased: every write unit of it
 * visibly changes, and a torn one fails its marker, top bits or CRC.
 */
#include "record.h"
#include "airlock/crc32.h"
#include "bytes.h"

#include <string.h>

#define MARK 0x2au
#define RAW 13u /* type + a + b + crc */

static uint8_t top_bit(uint8_t erased)
{
    return erased == 0xff ? 0x00u : 0x80u;
}

void record_encode(uint8_t *rec, uint32_t size, uint8_t erased, uint32_t type, uint32_t a,
                   uint32_t b)
{
    uint8_t raw[RAW];
    uint32_t acc = 0, bits = 0, in = 0;
    uint8_t top = top_bit(erased);
    memset(rec, erased, size);
    raw[0] = (uint8_t)type;
    store32(raw + 1, a);
    store32(raw + 5, b);
    store32(raw + 9, airlock_crc32(0, raw, 9));
    for (uint32_t i = 0; i < RECORD_BYTES - 1u; i++) {
        while (bits < 7) {
            acc |= (uint32_t)(in < RAW ? raw[in] : 0u) << bits;
            in++;
            bits += 8;
        }
        rec[i] = (uint8_t)((acc & 0x7fu) | top);
        acc >>= 7;
        bits -= 7;
    }
    rec[RECORD_BYTES - 1u] = (uint8_t)(MARK | top);
}

bool record_decode(const uint8_t *rec, uint8_t erased, uint32_t *type, uint32_t *a, uint32_t *b)
{
    uint8_t raw[RAW];
    uint32_t acc = 0, bits = 0, out = 0;
    uint8_t top = top_bit(erased);
    if (rec[RECORD_BYTES - 1u] != (uint8_t)(MARK | top)) {
        return false;
    }
    for (uint32_t i = 0; i < RECORD_BYTES - 1u; i++) {
        if ((rec[i] & 0x80u) != top) {
            return false;
        }
        acc |= (uint32_t)(rec[i] & 0x7fu) << bits;
        bits += 7;
        while (bits >= 8 && out < RAW) {
            raw[out++] = (uint8_t)acc;
            acc >>= 8;
            bits -= 8;
        }
    }
    if (load32(raw + 9) != airlock_crc32(0, raw, 9)) {
        return false;
    }
    *type = raw[0];
    *a = load32(raw + 1);
    *b = load32(raw + 5);
    return true;
}

bool record_erased(const uint8_t *rec, uint32_t size, uint8_t erased)
{
    for (uint32_t i = 0; i < size; i++) {
        if (rec[i] != erased) {
            return false;
        }
    }
    return true;
}
