/*
 * Slot padding that `airlock sign --pad` appends, computed exactly as imgtool
 * 2.4.0 does (trailer size, boot magic, image_ok position) so padded images
 * are byte-identical to imgtool's. Pure functions, no I/O.
 */
#ifndef AIRLOCK_TOOLS_PADDING_H
#define AIRLOCK_TOOLS_PADDING_H

#include <stdbool.h>
#include <stdint.h>

#define CLI_BOOT_MAGIC_SIZE 16u
#define CLI_DEFAULT_MAX_ALIGN 8u
#define CLI_DEFAULT_MAX_SECTORS 128u

/* Round n up to a power-of-two alignment a. */
uint64_t cli_align_up(uint64_t n, uint32_t a);

/* max_align when --max-align is not given: max(8, align). */
uint32_t cli_default_max_align(uint32_t align);

/*
 * Bytes reserved at the end of the slot for the trailer:
 * overwrite-only: max_align * 2 + align_up(16, max_align);
 * otherwise: max_sectors * 3 * align (swap status) + max_align * 4
 * (image_ok, copy_done, swap_info, swap_size) + align_up(16, max_align).
 */
uint64_t cli_trailer_size(uint32_t align, uint32_t max_align, uint32_t max_sectors,
                          bool overwrite_only);

/*
 * The 16 magic bytes at the very end of a padded slot: the classic MCUboot
 * magic when max_align is 8, else max_align (u16 LE) followed by the 14-byte
 * tail of the large-alignment magic.
 */
void cli_boot_magic(uint32_t max_align, uint8_t out[CLI_BOOT_MAGIC_SIZE]);

/* Distance from the end of the slot to the image_ok byte. */
uint32_t cli_image_ok_from_end(uint32_t max_align);

#endif
