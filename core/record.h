/*
 * The fixed-size flash record shared by the boot journal and the update
 * agent's progress log: 16 bytes of 7 payload bits each (type 8, a 32,
 * b 32, CRC-32 32 bits, then a marker), every byte kept away from the erased
 * value so a torn record never reads as an empty place. Private to core.
 */
#ifndef AIRLOCK_RECORD_H
#define AIRLOCK_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#define RECORD_BYTES 16u


/*
 * Encode into rec (size bytes, >= RECORD_BYTES; the rest erased-padded) for
 * a flash whose erased byte is `erased`.
 */
void record_encode(uint8_t *rec, uint32_t size, uint8_t erased, uint32_t type, uint32_t a,
                   uint32_t b);

/* Decode; false when rec is torn, erased or not a record. */
bool record_decode(const uint8_t *rec, uint8_t erased, uint32_t *type, uint32_t *a, uint32_t *b);

/* Are all size bytes of rec the erased value? */
bool record_erased(const uint8_t *rec, uint32_t size, uint8_t erased);

#endif
