/*
 * CRC-32 as IEEE 802.3 and zlib define it (reflected, polynomial 0xedb88320,
 * initial and final xor 0xffffffff): the check value of "123456789" is
 * 0xcbf43926. Used for what flash records carry (boot journal, download
 * progress, settings); never for security: images are checked by hash and
 * signature.
 */
#ifndef AIRLOCK_CRC32_H
#define AIRLOCK_CRC32_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue crc over n bytes at data: start with crc = 0, pass each result
 * back in for the next piece. Table-driven (1 KiB of constants), a byte at a
 * time.
 */
uint32_t airlock_crc32(uint32_t crc, const void *data, size_t n);

#endif /* AIRLOCK_CRC32_H */
