/*
 * Shared machinery of the journalled swap engines (core/swap.c): chunks,
 * copying, journalled steps and the common revert. Private to core.
 */
#ifndef AIRLOCK_SWAP_PRIV_H
#define AIRLOCK_SWAP_PRIV_H

#include <stdbool.h>

#include "boot_priv.h"

/* Largest chunk that starts below limit. */
uint32_t swap_largest_chunk(const airlock_boot_t *b, uint32_t limit);

/* Copy len bytes from src at from to dst at to (dst erased there). */
int swap_copy(airlock_boot_t *b, const airlock_area_t *dst, uint32_t to,
              const airlock_area_t *src, uint32_t from, uint32_t len);

/*
 * Journal the start of a swap unless one is being resumed: its extent is
 * the larger of the new image (new_len, staged at `stage` in the secondary)
 * and the old one (b->old_end). reserve: primary bytes the engine needs
 * beyond the extent (swap-move's spare chunk). Returns 0, TOO_BIG or IO.
 */
int swap_begin(airlock_boot_t *b, uint32_t new_len, int swap_type, uint32_t stage,
               uint32_t reserve);

/*
 * Steps are numbered per chunk; the journal holds the last one done.
 * swap_done: is (chunk k, step s) done, in the order chunk-major, steps
 * ascending? swap_step_done: journal it.
 */
bool swap_done(const airlock_boot_t *b, uint32_t k, uint32_t s);
int swap_step_done(airlock_boot_t *b, uint32_t k, uint32_t s);

/* Bytes of the update within [c, e) (0 past its end): what to copy. */
uint32_t swap_new_bytes(const airlock_boot_t *b, uint32_t c, uint32_t e);

/* The journalled swap's extent and type. */
uint32_t swap_extent(const airlock_boot_t *b);
uint32_t swap_type(const airlock_boot_t *b);

/*
 * One journalled step (chunk k, step `step`), unless already done: erase
 * dst's sectors over [to, to + span), copy len bytes from src at from to
 * dst at to, journal it.
 */
int swap_step(airlock_boot_t *b, uint32_t k, uint32_t step, const airlock_area_t *dst,
              uint32_t to, uint32_t span, const airlock_area_t *src, uint32_t from,
              uint32_t len);

/* An engine's check(): 0 when why is NULL, else LAYOUT with det naming why. */
int swap_refuse(airlock_err_detail_t *det, const char *why);

/* The common revert: copy the old image back from S[0, E). */
int swap_revert(airlock_boot_t *b);

#endif
