/*
 * Host-side reader of layout files (docs/layout.md): text describing flash
 * devices and the bootloader/primary/secondary/scratch/status areas, parsed
 * into an airlock_layout_t that core can check and engines can run on.
 * Never touches flash and never prints: errors and warnings come back as text.
 */
#ifndef AIRLOCK_TOOLS_LAYOUT_FILE_H
#define AIRLOCK_TOOLS_LAYOUT_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/err.h"
#include "airlock/flash.h"
#include "airlock/layout.h"

#define LAYOUT_MAX_FLASH 4     /* flash devices per layout */
#define LAYOUT_MAX_RUNS 16     /* sector runs per device */
#define LAYOUT_NAME_MAX 32     /* flash name, including the NUL */
#define LAYOUT_MAX_WARN 16     /* warnings kept (further ones are dropped) */
#define LAYOUT_MSG_MAX 400     /* one diagnostic message, including the NUL */
#define LAYOUT_MAX_TEXT 65536u /* largest layout file accepted, in bytes */

/*
 * X(name, value, summary): the kinds of error a layout can have. 0 is
 * success, every error negative. The names appear in `--json` output.
 */
#define LAYOUT_ERR_LIST(X)                                                                         \
    X(OK, 0, "layout is valid")                                                                    \
    X(IO, -1, "the layout file cannot be read")                                                    \
    X(NOT_FOUND, -2, "no such file and no built-in layout of that name")                           \
    X(SYNTAX, -3, "a line does not have the expected shape")                                       \
    X(KEYWORD, -4, "unknown keyword or flash attribute")                                           \
    X(NUMBER, -5, "not a valid number, or too large")                                              \
    X(DUPLICATE, -6, "an area, flash or attribute given twice")                                    \
    X(UNKNOWN_FLASH, -7, "an area names a flash that was not declared")                            \
    X(WRITE, -8, "write= missing, not 1/2/4/8/16/32, or sectors not a multiple of it")             \
    X(ERASED, -9, "erased value is neither 0x00 nor 0xff")                                         \
    X(SECTORS, -10, "sector list missing or malformed")                                            \
    X(SIZE, -11, "flash size does not equal the sum of its sectors")                               \
    X(LIMIT, -12, "too many flashes or sector runs, name or file too long")                        \
    X(BOUNDS, -13, "an area is empty or does not fit inside its flash")                            \
    X(ALIGN, -14, "an area does not start or end on a sector boundary")                            \
    X(OVERLAP, -15, "two areas share bytes of the same flash")                                     \
    X(MISSING, -16, "no primary or no secondary area")                                             \
    X(CHECK, -17, "core's airlock_layout_check rejected the layout")

enum layout_err {
#define LAYOUT_ERR_ENUM_(name, value, summary) LAYOUT_E_##name = (value),
    LAYOUT_ERR_LIST(LAYOUT_ERR_ENUM_)
#undef LAYOUT_ERR_ENUM_
};

/*
 * X(name, value, summary): things that are valid but limit what the layout
 * can do. A layout with warnings still parses; `layout check --strict` fails.
 */
#define LAYOUT_WARN_LIST(X)                                                                        \
    X(SLOT_SIZES, 1, "primary and secondary differ in size")                                       \
    X(NO_SCRATCH, 2, "no scratch area: swap-scratch impossible")                                   \
    X(SCRATCH_SMALL, 3, "scratch smaller than the largest sector of the slots")                    \
    X(SECTORS_DIFFER, 4, "the slots' sector boundaries do not line up")                            \
    X(SECTORS_MIXED, 5, "a slot mixes sector sizes")                                               \
    X(STATUS_ONE_SECTOR, 6, "status area of a single sector")                                      \
    X(UNUSED_FLASH, 7, "a flash that no area uses")

enum layout_warn {
#define LAYOUT_WARN_ENUM_(name, value, summary) LAYOUT_W_##name = (value),
    LAYOUT_WARN_LIST(LAYOUT_WARN_ENUM_)
#undef LAYOUT_WARN_ENUM_
};

/* An error or a warning, located in the text. */
typedef struct layout_diag {
    int code;      /* enum layout_err (< 0) or enum layout_warn (> 0) */
    unsigned line; /* 1-based; 0 when it concerns the whole layout */
    unsigned col;  /* 1-based byte column of the offending token; 0 if none */
    char msg[LAYOUT_MSG_MAX];
} layout_diag_t;

/*
 * Areas beyond core's (enum airlock_area_id): the host tools know them, the
 * bootloader core does not. LAYOUT_AREA_SETTINGS is the device's settings
 * store (include/airlock/settings.h: two copies, so at least two sectors).
 */
#define LAYOUT_AREA_SETTINGS AIRLOCK_AREA_COUNT
#define LAYOUT_AREA_COUNT (AIRLOCK_AREA_COUNT + 1)

/* One flash device of a layout. */
typedef struct layout_device {
    char name[LAYOUT_NAME_MAX];
    /*
     * Geometry from the file (size, write_size, erased_val, runs -> runs[]
     * below). Until layout_file_set_ops() the functions are stubs that fail
     * every call with -1: enough for airlock_layout_check, not for I/O.
     */
    airlock_flash_t flash;
    airlock_sector_run_t runs[LAYOUT_MAX_RUNS];
    uint32_t base; /* base= : address the device is mapped at (information only) */
    unsigned line; /* line of its `flash` statement */
} layout_device_t;

/*
 * A parsed layout. It owns everything it points to: layout.area[i].flash
 * points at dev[j].flash, and dev[j].flash.runs at dev[j].runs. So it is
 * self-referential: keep it where it was parsed (caller-allocated, any
 * storage), never copy it by value. Read the fields directly; devices are
 * dev[0 .. ndev-1] in file order.
 */
typedef struct layout_file {
    char source[256]; /* file name, or "builtin:NAME"; used in messages */
    layout_device_t dev[LAYOUT_MAX_FLASH];
    unsigned ndev;
    airlock_layout_t layout;               /* absent areas have flash == NULL */
    airlock_area_t settings;               /* the settings area; flash == NULL if absent */
    unsigned area_line[LAYOUT_AREA_COUNT]; /* line of each area, 0 if absent */
    layout_diag_t warn[LAYOUT_MAX_WARN];   /* warnings in the order found */
    unsigned nwarn;
} layout_file_t;

/*
 * Parse len bytes of layout text (no NUL needed) into *lf, which it fully
 * initialises. source names the text in messages ("boards/x.layout"); may
 * be NULL ("<string>"). Runs the friendly checks of docs/layout.md, then
 * airlock_layout_check, then collects warnings into lf->warn.
 * Returns LAYOUT_E_OK (0) or a negative enum layout_err with *err (may be
 * NULL) saying where and what; on error *lf holds no usable layout.
 */
int layout_file_parse(layout_file_t *lf, const char *source, const char *text, size_t len,
                      layout_diag_t *err);

/*
 * Read the file at path (at most LAYOUT_MAX_TEXT bytes) and parse it as
 * layout_file_parse does, with source = path. Returns 0, LAYOUT_E_IO (cannot
 * open or read; err->msg has the system's reason) or a parse error.
 */
int layout_file_load(layout_file_t *lf, const char *path, layout_diag_t *err);

/*
 * What every `--layout FILE|NAME` option calls: load the file if one exists
 * at file_or_name; when there is none and file_or_name is the name of a
 * built-in layout ("nrf52840"), parse that (source "builtin:NAME").
 * Returns like layout_file_load, or LAYOUT_E_NOT_FOUND when neither exists.
 */
int layout_file_open(layout_file_t *lf, const char *file_or_name, layout_diag_t *err);

/*
 * Index in lf->dev of the flash called name, or -1 when there is none.
 */
int layout_file_find_flash(const layout_file_t *lf, const char *name);

/* Name of area id (0 .. LAYOUT_AREA_COUNT-1): core's names, then "settings". */
const char *layout_area_name(int id);

/*
 * Area id of lf (core's areas from lf->layout, LAYOUT_AREA_SETTINGS from
 * lf->settings), or NULL when id is out of range. Absent: flash == NULL.
 */
const airlock_area_t *layout_area(const layout_file_t *lf, int id);

/*
 * Give device idx a real port (the sim's flash, a file-backed flash): copy
 * port's ctx, read, prog, erase and sync into lf->dev[idx].flash. The
 * geometry stays the file's; a port whose size or write_size is non-zero
 * must agree with it. Areas keep pointing at the device, so the layout is
 * ready for I/O once every device used has its port.
 * Returns 0, or -1 (idx out of range, read/prog/erase NULL, geometry differs).
 */
int layout_file_set_ops(layout_file_t *lf, unsigned idx, const airlock_flash_t *port);

/*
 * The sectors area id (any of LAYOUT_AREA_COUNT) covers, as runs of equal sectors in address order
 * (consecutive runs differ in size). Fills at most max entries of runs and
 * returns how many there are in all (0 when the area is absent).
 */
unsigned layout_area_sectors(const layout_file_t *lf, int id, airlock_sector_run_t *runs,
                             unsigned max);

/*
 * Turn a failed airlock_layout_check (its detail *det) on lf->layout into a
 * message naming the area, its line, the offsets and what was expected.
 * Used by layout_file_parse; exposed for callers that check again after
 * replacing ports. Fills *out with code LAYOUT_E_CHECK.
 */
void layout_explain_check(const layout_file_t *lf, const airlock_err_detail_t *det,
                          layout_diag_t *out);

/*
 * "SOURCE:LINE:COL", "SOURCE:LINE" or "SOURCE" for d, into buf (n bytes).
 * Returns buf.
 */
char *layout_diag_where(const layout_file_t *lf, const layout_diag_t *d, char *buf, size_t n);

/* "OVERLAP", "NO_SCRATCH", ...: symbolic name of an error or warning code. */
const char *layout_code_name(int code);

/*
 * Human size into buf (at least 24 bytes): "1 MiB", "472 KiB", "1.25 MiB",
 * "100 bytes" — exact (KiB/MiB only when it divides, with up to 2 decimals).
 * Returns buf.
 */
char *layout_size_str(uint32_t v, char *buf);

/* A layout compiled into the tool, from layouts/NAME.layout. */
struct layout_builtin {
    const char *name; /* file name without .layout */
    const char *text; /* the file's text, NUL-terminated */
};

/*
 * The built-in layouts, sorted by name, ended by an entry with name NULL.
 * Generated at build time from the layouts/NAME.layout files (layouts/embed.cmake), so the
 * files in the source tree are the one source of truth.
 */
extern const struct layout_builtin layout_builtins[];

/* The built-in layout called name, or NULL. */
const struct layout_builtin *layout_builtin_find(const char *name);

/*
 * A built-in's one-line description (its first comment line, without the
 * "# "), copied into buf (n bytes). Returns buf ("" when it has none).
 */
char *layout_builtin_summary(const struct layout_builtin *b, char *buf, size_t n);

#endif
