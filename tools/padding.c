/*
 * Trailer geometry for padded images (see padding.h). Kept apart from
 * sign.c so unit tests can pin every number to imgtool's output; sizes are
 * 64-bit because max_sectors * 3 * align can exceed 32 bits.
 */
#include "padding.h"

#include <string.h>

uint64_t cli_align_up(uint64_t n, uint32_t a)
{
    return (n + (a - 1u)) & ~(uint64_t)(a - 1u);
}

uint32_t cli_default_max_align(uint32_t align)
{
    return align > CLI_DEFAULT_MAX_ALIGN ? align : CLI_DEFAULT_MAX_ALIGN;
}

uint64_t cli_trailer_size(uint32_t align, uint32_t max_align, uint32_t max_sectors,
                          bool overwrite_only)
{
    uint64_t magic = cli_align_up(CLI_BOOT_MAGIC_SIZE, max_align);

    if (overwrite_only) {
        return (uint64_t)max_align * 2u + magic;
    }
    return (uint64_t)max_sectors * 3u * align + (uint64_t)max_align * 4u + magic;
}

void cli_boot_magic(uint32_t max_align, uint8_t out[CLI_BOOT_MAGIC_SIZE])
{
    static const uint8_t classic[CLI_BOOT_MAGIC_SIZE] = {
        0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f,
        0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80,
    };
    static const uint8_t tail[CLI_BOOT_MAGIC_SIZE - 2u] = {
        0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a,
    };

    if (max_align == CLI_DEFAULT_MAX_ALIGN) {
        memcpy(out, classic, sizeof(classic));
        return;
    }
    out[0] = (uint8_t)(max_align & 0xffu);
    out[1] = (uint8_t)((max_align >> 8) & 0xffu);
    memcpy(out + 2, tail, sizeof(tail));
}

uint32_t cli_image_ok_from_end(uint32_t max_align)
{
    return (uint32_t)cli_align_up(CLI_BOOT_MAGIC_SIZE, max_align) + max_align;
}
