/*
 * Slot trailer, MCUboot layout: from the slot's end, the 16-byte boot magic,
 * then image_ok, copy_done, swap_info and swap_size, each field padded to the
 * maximum write alignment. Reading only here; writing comes with the
 * bootloader core. Freestanding, no allocation.
 */
#ifndef AIRLOCK_TRAILER_H
#define AIRLOCK_TRAILER_H

#include <stdbool.h>
#include <stdint.h>

#include "airlock/err.h"
#include "airlock/image.h"

#define AIRLOCK_TRAILER_MAGIC_SIZE 16u
#define AIRLOCK_TRAILER_DEFAULT_MAX_ALIGN 8u
#define AIRLOCK_TRAILER_DEFAULT_MAX_SECTORS 128u

/* swap_info low nibble: the requested swap. */
enum airlock_swap_type {
    AIRLOCK_SWAP_NONE = 1,
    AIRLOCK_SWAP_TEST = 2,
    AIRLOCK_SWAP_PERM = 3,
    AIRLOCK_SWAP_REVERT = 4,
};

/* State of a magic or flag field. */
enum airlock_field_state {
    AIRLOCK_FIELD_UNSET = 0, /* erased */
    AIRLOCK_FIELD_SET = 1,   /* magic valid / flag == 0x01 */
    AIRLOCK_FIELD_BAD = 2,   /* neither: written with something else */
};

/*
 * The boot magic for a maximum write alignment: the classic 16 bytes for 8,
 * otherwise the alignment (u16 LE) followed by the 14-byte alternative tail.
 */
void airlock_trailer_magic(uint32_t max_align, uint8_t out[AIRLOCK_TRAILER_MAGIC_SIZE]);

/*
 * Offsets of the fields from the start of a slot of slot_size bytes.
 * max_align is 8, 16 or 32 (the value imgtool's --max-align takes).
 */
typedef struct airlock_trailer_layout {
    uint32_t magic;
    uint32_t image_ok;
    uint32_t copy_done;
    uint32_t swap_info;
    uint32_t swap_size;
} airlock_trailer_layout_t;

int airlock_trailer_layout(uint32_t slot_size, uint32_t max_align,
                           airlock_trailer_layout_t *lay);

/*
 * Bytes the trailer reserves at the end of a slot, as imgtool computes it
 * when padding: status area (max_sectors * 3 * align) + 4 fields + magic;
 * overwrite-only slots have no status area and two fields.
 */
uint32_t airlock_trailer_size(uint32_t align, uint32_t max_align, uint32_t max_sectors,
                              bool overwrite_only);

typedef struct airlock_trailer {
    uint32_t max_align;  /* the alignment the magic was read as */
    uint8_t magic;       /* enum airlock_field_state */
    uint8_t image_ok;    /* enum airlock_field_state */
    uint8_t copy_done;   /* enum airlock_field_state */
    bool swap_info_set;  /* swap_info holds something other than the erased value */
    uint8_t swap_type;   /* swap_info low nibble, 0 when erased */
    uint8_t image_num;   /* swap_info high nibble */
    bool swap_size_set;
    uint32_t swap_size;
} airlock_trailer_t;

/*
 * Read the trailer at the end of slot (slot->size is the slot size).
 * max_align 0 means: recognise it from the magic (classic magic -> 8,
 * alternative magic -> the alignment it encodes). erased is the flash's
 * erased byte value (0xff, or 0x00 on some parts).
 * Returns 0, INVAL (slot too small / bad alignment) or IO.
 */
int airlock_trailer_read(const airlock_source_t *slot, uint32_t max_align, uint8_t erased,
                         airlock_trailer_t *t);

/* ---- writing (through the flash port) --------------------------------- */

#include "airlock/layout.h"

/*
 * Trial-boot counter: up to AIRLOCK_TRIAL_MAX records, one write unit each,
 * just below the MCUboot swap-status area (which MCUboot-shaped readers
 * never look past). A trial boot programs the next erased record with every
 * bit moved from the erased value: counting needs no erase. A torn record
 * (power failed while the bootloader wrote it, so the image never ran) does
 * not count as a trial but its place is spent, as it cannot be programmed
 * again; when all places are spent the trials are over.
 */
#define AIRLOCK_TRIAL_MAX 8u

/*
 * Where the trailer of a slot lives, for a slot on a given device:
 * max_align as for airlock_trailer_layout, write_size of the slot's device,
 * max_sectors as imgtool's -M (swap status capacity).
 */
typedef struct airlock_trailer_geom {
    uint32_t max_align;
    uint32_t write_size;
    uint32_t max_sectors;
} airlock_trailer_geom_t;

/*
 * First byte of the slot that the trailer (status area and trial counter
 * included) may occupy: images must end at or below it.
 */
uint32_t airlock_trailer_start(const airlock_area_t *slot, const airlock_trailer_geom_t *g);

/*
 * The MCUboot swap-status area of a slot: off (from the slot's start) and
 * len bytes, between the trial records and the trailer fields. airlock's
 * engines keep their state elsewhere; the update agent (core/ota.c) puts its
 * download progress records here.
 */
void airlock_trailer_status(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                            uint32_t *off, uint32_t *len);

/* A source reading the area's bytes (offsets relative to the area). */
void airlock_area_source(const airlock_area_t *area, airlock_source_t *src);

/* Field selectors for airlock_trailer_write_flag. */
enum airlock_trailer_flag {
    AIRLOCK_FLAG_IMAGE_OK = 0,
    AIRLOCK_FLAG_COPY_DONE = 1,
    AIRLOCK_FLAG_SWAP_INFO = 2,
};

/*
 * Program the boot magic at the end of slot (its write unit must be erased).
 * Returns 0, AIRLOCK_ERR_IO or AIRLOCK_ERR_INVAL.
 */
int airlock_trailer_write_magic(const airlock_area_t *slot, const airlock_trailer_geom_t *g);

/*
 * Program one flag field: value in the first byte, erased value in the rest
 * of its write unit (MCUboot's encoding). The unit must be erased.
 */
int airlock_trailer_write_flag(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                               int flag, uint8_t value);

/* Number of whole trial-boot records (0..AIRLOCK_TRIAL_MAX). */
int airlock_trailer_trials(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                           uint32_t *used);

/* Write the next trial-boot record. AIRLOCK_ERR_NOMEM when no place is left. */
int airlock_trailer_add_trial(const airlock_area_t *slot, const airlock_trailer_geom_t *g);

/*
 * Read the trailer of a slot through the flash port (airlock_trailer_read on
 * the area with g->max_align and the device's erased value).
 */
int airlock_trailer_load(const airlock_area_t *slot, const airlock_trailer_geom_t *g,
                         airlock_trailer_t *t);

#endif
