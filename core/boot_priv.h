/*
 * Internals shared by the boot decision (core/boot.c) and the install
 * engines (core/overwrite.c, ...): counted flash access to layout areas and
 * the watchdog. Not part of the public API.
 */
#ifndef AIRLOCK_BOOT_PRIV_H
#define AIRLOCK_BOOT_PRIV_H

#include "airlock/boot.h"

/* The area with this id in b's layout. */
const airlock_area_t *boot_area(const airlock_boot_t *b, int id);

/*
 * Read / program (and sync) / erase within an area. b's port wrappers count
 * every operation in b->stats and feed the watchdog.
 */
int boot_read(const airlock_area_t *a, uint32_t off, void *buf, uint32_t len);
int boot_prog(const airlock_area_t *a, uint32_t off, const void *buf, uint32_t len);

/*
 * Erase every sector of area a that intersects [off, off + len), each once.
 */
int boot_erase_range(const airlock_area_t *a, uint32_t off, uint32_t len);

/*
 * Copy [off, off + len) of src into dst at the same offset. The target range
 * must be erased. A last partial write unit is padded with the erased value.
 */
int boot_copy(airlock_boot_t *b, const airlock_area_t *dst, const airlock_area_t *src, uint32_t off,
              uint32_t len);

void boot_feed(airlock_boot_t *b);

/* What checking a slot's image found. */
struct slot_check {
    airlock_image_t img;
    airlock_verify_result_t vr;
    airlock_err_detail_t det;
};

/*
 * Is the image at offset `at` of slot id bootable: parses, ends before the
 * trailer, has bootable flags, verifies with the configured keys?
 */
int boot_check_slot(airlock_boot_t *b, int id, uint32_t at, struct slot_check *sc);

void boot_set_result(airlock_boot_result_t *res, int action, int err, const char *msg);

/* The boot journal (valid when b->has_journal). */
airlock_journal_t *boot_journal(airlock_boot_t *b);

/*
 * End of the chunk starting at off: the next offset where both slots have a
 * sector boundary (or the smaller slot's end).
 */
uint32_t boot_chunk_end(const airlock_boot_t *b, uint32_t off);

/*
 * Erase the sectors of area a from offset `from` to its end (the trailer
 * region, typically) that start at or above skip_below and hold anything
 * but erased bytes in [from, end). Idempotent.
 */
int boot_erase_if_used(airlock_boot_t *b, const airlock_area_t *a, uint32_t from,
                       uint32_t skip_below);

/*
 * Common end of a journalled swap of the given type (TEST, PERM, REVERT)
 * whose chunks covered [0, swapped_end): give the primary a clean trailer
 * (MCUboot's magic and copy_done for a TEST, and its first trial record),
 * consume the secondary's request, and journal the end. Idempotent.
 */
int boot_finish_swap(airlock_boot_t *b, uint32_t type, uint32_t swapped_end);

#endif
