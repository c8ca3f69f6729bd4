/*
 * The boot journal: an append-only log of fixed-size records in the status
 * area (its first two sectors, used in turn), holding swap progress, trial
 * resolution and the security counter. Appending never erases; when a
 * sector fills, its state is summarised into the other one, whose header is
 * written last so it only becomes current once complete.
 * Private to core: engines and the boot decision use it.
 */
#ifndef AIRLOCK_JOURNAL_H
#define AIRLOCK_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "airlock/boot.h"
#include "airlock/layout.h"

enum journal_type {
    JR_HDR = 1,     /* a: generation */
    JR_BEGIN = 2,   /* a: swap type (TEST/PERM/REVERT), b: extent in bytes */
    JR_STEP = 3,    /* a: chunk, b: step within the chunk */
    JR_END = 4,     /* a: swap type that completed, b: its extent */
    JR_RESOLVE = 5, /* a: 1 confirmed; ends a trial */
    JR_SECCNT = 6,  /* a: security counter value */
    JR_LEN = 7,     /* a: length of the update a following BEGIN installs */
    JR_REVERTED = 8, /* the update a following revert removes: a: major<<24 | minor<<16 |
                        revision, b: build */
};

/* The journal's state lives in airlock_boot_t (include/airlock/boot.h). */
typedef airlock_journal_t journal_t;

/*
 * Open the journal on area (at least two sectors): pick the sector with the
 * newest valid header and replay it; on a blank or unreadable area, format
 * it. Returns 0, AIRLOCK_ERR_IO or AIRLOCK_ERR_LAYOUT (area too small).
 */
int journal_open(journal_t *j, const airlock_area_t *area);

/*
 * Read the journal on area without writing anything (a blank area reads as
 * the empty state): for callers that only look, such as the device agent.
 * Returns 0, AIRLOCK_ERR_IO or AIRLOCK_ERR_LAYOUT.
 */
int journal_peek(journal_t *j, const airlock_area_t *area);

/* Append one record (compacting into the other sector when full). */
int journal_append(journal_t *j, uint32_t type, uint32_t a, uint32_t b);

#endif
