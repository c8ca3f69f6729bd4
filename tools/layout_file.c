/*
 * Layout file parser (see layout_file.h, docs/layout.md). It checks every
 * line with messages that name the line, the column and the rule, then runs
 * core's airlock_layout_check as the final word, then looks for warnings.
 * It never prints and never touches flash: the stub ports fail every call.
 */
#define _POSIX_C_SOURCE 200809L

#include "layout_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_LEN 1024 /* longest line accepted, in bytes */
#define MAX_TOKENS 16     /* tokens kept per line; more is an error anyway */
#define KIB 1024u
#define MIB (1024u * 1024u)

/* Ports of a layout just parsed: geometry is known, I/O is not (yet). */
static int stub_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    (void)ctx, (void)addr, (void)buf, (void)len;
    return -1;
}

static int stub_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    (void)ctx, (void)addr, (void)buf, (void)len;
    return -1;
}

static int stub_erase(void *ctx, uint32_t addr)
{
    (void)ctx, (void)addr;
    return -1;
}

struct token {
    const char *s; /* NUL-terminated, inside the parser's line buffer */
    unsigned col;  /* 1-based column in the original line */
};

struct parser {
    layout_file_t *lf;
    layout_diag_t *err; /* never NULL inside the parser */
    unsigned line;
};

#if defined(__GNUC__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

static int fail(struct parser *p, int code, unsigned col, const char *fmt, ...) PRINTF_LIKE(4, 5);

/* Record the (first) error at the current line and return its code. */
static int fail(struct parser *p, int code, unsigned col, const char *fmt, ...)
{
    va_list ap;

    p->err->code = code;
    p->err->line = p->line;
    p->err->col = col;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    return code;
}

static void warn(layout_file_t *lf, int code, unsigned line, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

static void warn(layout_file_t *lf, int code, unsigned line, const char *fmt, ...)
{
    layout_diag_t *w;
    va_list ap;

    if (lf->nwarn >= LAYOUT_MAX_WARN) {
        return;
    }
    w = &lf->warn[lf->nwarn++];
    w->code = code;
    w->line = line;
    w->col = 0;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
    va_end(ap);
}

char *layout_size_str(uint32_t v, char *buf)
{
    if (v >= MIB && v % MIB == 0) {
        snprintf(buf, 24, "%u MiB", (unsigned)(v / MIB));
    } else if (v >= MIB && ((uint64_t)v * 100u) % MIB == 0) {
        unsigned hundredths = (unsigned)(((uint64_t)v * 100u) / MIB);
        if (hundredths % 10 == 0) {
            snprintf(buf, 24, "%u.%u MiB", hundredths / 100, (hundredths / 10) % 10);
        } else {
            snprintf(buf, 24, "%u.%02u MiB", hundredths / 100, hundredths % 100);
        }
    } else if (v >= KIB && v % KIB == 0) {
        snprintf(buf, 24, "%u KiB", (unsigned)(v / KIB));
    } else {
        snprintf(buf, 24, "%u byte%s", (unsigned)v, v == 1 ? "" : "s");
    }
    return buf;
}

const char *layout_code_name(int code)
{
    if (code <= 0) {
        switch (code) {
#define LAYOUT_ERR_CASE_(name, value, summary)                                                     \
    case value:                                                                                    \
        return #name;
            LAYOUT_ERR_LIST(LAYOUT_ERR_CASE_)
#undef LAYOUT_ERR_CASE_
        default:
            break;
        }
    } else {
        switch (code) {
#define LAYOUT_WARN_CASE_(name, value, summary)                                                    \
    case value:                                                                                    \
        return #name;
            LAYOUT_WARN_LIST(LAYOUT_WARN_CASE_)
#undef LAYOUT_WARN_CASE_
        default:
            break;
        }
    }
    return "UNKNOWN";
}

char *layout_diag_where(const layout_file_t *lf, const layout_diag_t *d, char *buf, size_t n)
{
    const char *src = (lf && lf->source[0]) ? lf->source : "<string>";

    if (d->line != 0 && d->col != 0) {
        snprintf(buf, n, "%s:%u:%u", src, d->line, d->col);
    } else if (d->line != 0) {
        snprintf(buf, n, "%s:%u", src, d->line);
    } else {
        snprintf(buf, n, "%s", src);
    }
    return buf;
}

/* ---- numbers ---------------------------------------------------------- */

enum { NUM_OK = 0, NUM_SYNTAX = -1, NUM_RANGE = -2 };

/*
 * Decimal or 0x hex, optionally followed by K (x1024) or M (x1024*1024).
 * No octal: a leading zero is just a zero, as in ESP-IDF partition tables.
 */
static int parse_num(const char *s, uint32_t *out)
{
    uint64_t v = 0, mul = 1;
    unsigned base = 10;
    bool any = false, big = false;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    for (;; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9') {
            d = (unsigned)(*s - '0');
        } else if (base == 16 && *s >= 'a' && *s <= 'f') {
            d = (unsigned)(*s - 'a' + 10);
        } else if (base == 16 && *s >= 'A' && *s <= 'F') {
            d = (unsigned)(*s - 'A' + 10);
        } else {
            break;
        }
        any = true;
        v = v * base + d;
        if (v > UINT32_MAX) {
            big = true;
            v = UINT32_MAX; /* keep scanning for syntax errors */
        }
    }
    if (!any) {
        return NUM_SYNTAX;
    }
    if (*s == 'K' || *s == 'k') {
        mul = KIB;
        s++;
    } else if (*s == 'M' || *s == 'm') {
        mul = MIB;
        s++;
    }
    if (*s != '\0') {
        return NUM_SYNTAX;
    }
    if (big || v * mul > UINT32_MAX) {
        return NUM_RANGE;
    }
    *out = (uint32_t)(v * mul);
    return NUM_OK;
}

/* parse_num with an error naming what the number is (e.g. "primary: offset"). */
static int number(struct parser *p, const char *what, const char *s, unsigned col, uint32_t *out)
{
    int r = parse_num(s, out);

    if (r == NUM_SYNTAX) {
        return fail(p, LAYOUT_E_NUMBER, col,
                    "%s: expected a number (decimal or 0x hex, optional K or M suffix), "
                    "found '%s'",
                    what, s);
    }
    if (r == NUM_RANGE) {
        return fail(p, LAYOUT_E_NUMBER, col, "%s: '%s' is too large (at most 0xffffffff)", what, s);
    }
    return 0;
}

/* ---- flash lines ------------------------------------------------------ */

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1u)) == 0;
}

static bool valid_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) {
        return false;
    }
    for (s++; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-')) {
            return false;
        }
    }
    return true;
}

/*
 * "COUNTxSIZE": decimal digits, then x. "0x..." is a hex size, not count 0.
 */
static bool is_counted(const char *s)
{
    const char *d = s;
    while (*d >= '0' && *d <= '9') {
        d++;
    }
    return d != s && (*d == 'x' || *d == 'X') && !(s[0] == '0' && d == s + 1);
}

/*
 * sectors=VALUE into dev->runs. VALUE is "COUNTxSIZE[,COUNTxSIZE...]", or a
 * single bare SIZE meaning uniform sectors filling size= (which must then be
 * given: *bare_size receives it and the caller derives the count).
 */
static int parse_sectors(struct parser *p, layout_device_t *dev, const struct token *t,
                         const char *val, uint32_t *bare_size)
{
    char item[64];
    const char *s = val;
    unsigned n = 0;

    *bare_size = 0;
    if (*val == '\0') {
        return fail(p, LAYOUT_E_SECTORS, t->col,
                    "flash '%s': sectors= needs a value, e.g. sectors=256x4K or "
                    "sectors=4x16K,1x64K,7x128K",
                    dev->name);
    }
    if (strchr(val, ',') == NULL && !is_counted(val)) {
        /* A bare size: uniform sectors, as many as size= holds. */
        unsigned col = t->col + (unsigned)(val - t->s);
        if (number(p, "sectors", val, col, bare_size) != 0) {
            return p->err->code;
        }
        if (*bare_size == 0) {
            return fail(p, LAYOUT_E_SECTORS, col, "flash '%s': sector size must not be 0",
                        dev->name);
        }
        return 0;
    }
    for (;;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        unsigned col = t->col + (unsigned)(s - t->s);
        char *x, *cnt_end;
        unsigned long count;
        uint32_t size;

        if (len == 0) {
            return fail(p, LAYOUT_E_SECTORS, col,
                        "flash '%s': empty entry in sectors= (expected COUNTxSIZE, e.g. 4x16K)",
                        dev->name);
        }
        if (len >= sizeof(item)) {
            return fail(p, LAYOUT_E_SECTORS, col, "flash '%s': sector entry too long", dev->name);
        }
        memcpy(item, s, len);
        item[len] = '\0';
        /* COUNT is decimal; the first x after it separates (0x in SIZE is fine). */
        x = item;
        while (*x >= '0' && *x <= '9') {
            x++;
        }
        if (!is_counted(item)) {
            return fail(p, LAYOUT_E_SECTORS, col,
                        "flash '%s': expected COUNTxSIZE (e.g. 4x16K) in sectors=, found '%s'",
                        dev->name, item);
        }
        *x = '\0';
        errno = 0;
        count = strtoul(item, &cnt_end, 10);
        if (errno != 0 || count == 0 || count > UINT32_MAX) {
            return fail(p, LAYOUT_E_SECTORS, col,
                        "flash '%s': sector count '%s' must be 1 or more (and fit 32 bits)",
                        dev->name, item);
        }
        if (number(p, "sectors", x + 1, col + (unsigned)(x + 1 - item), &size) != 0) {
            return p->err->code;
        }
        if (size == 0) {
            return fail(p, LAYOUT_E_SECTORS, col + (unsigned)(x + 1 - item),
                        "flash '%s': sector size must not be 0", dev->name);
        }
        if (n > 0 && dev->runs[n - 1].size == size) {
            /* 2x4K,3x4K is 5x4K: keep runs distinct like core's maps. */
            if ((uint64_t)dev->runs[n - 1].count + count > UINT32_MAX) {
                return fail(p, LAYOUT_E_LIMIT, col, "flash '%s': too many sectors", dev->name);
            }
            dev->runs[n - 1].count += (uint32_t)count;
        } else {
            if (n == LAYOUT_MAX_RUNS) {
                return fail(p, LAYOUT_E_LIMIT, col,
                            "flash '%s': more than %d runs of sectors in sectors=", dev->name,
                            LAYOUT_MAX_RUNS);
            }
            dev->runs[n].count = (uint32_t)count;
            dev->runs[n].size = size;
            n++;
        }
        if (!end) {
            break;
        }
        s = end + 1;
    }
    dev->flash.nruns = n;
    return 0;
}

enum { ATTR_SIZE, ATTR_SECTORS, ATTR_WRITE, ATTR_ERASED, ATTR_BASE, ATTR_COUNT };
static const char *const attr_names[ATTR_COUNT] = {"size", "sectors", "write", "erased", "base"};

static int parse_flash(struct parser *p, const struct token *tok, unsigned ntok)
{
    layout_file_t *lf = p->lf;
    const struct token *seen[ATTR_COUNT] = {NULL};
    layout_device_t *dev;
    uint32_t size = 0, write = 0, erased = 0xff, base = 0, bare = 0;
    uint64_t total = 0;
    int idx;

    if (ntok < 2) {
        return fail(p, LAYOUT_E_SYNTAX, tok[0].col + 5,
                    "expected a flash name after 'flash', e.g. "
                    "'flash internal size=1M sectors=256x4K write=4'");
    }
    if (strchr(tok[1].s, '=') != NULL) {
        return fail(p, LAYOUT_E_SYNTAX, tok[1].col,
                    "expected a flash name after 'flash', found '%s'", tok[1].s);
    }
    if (!valid_name(tok[1].s)) {
        return fail(p, LAYOUT_E_SYNTAX, tok[1].col,
                    "flash name '%s' is not valid (a letter, then letters, digits, _ or -)",
                    tok[1].s);
    }
    if (strlen(tok[1].s) >= LAYOUT_NAME_MAX) {
        return fail(p, LAYOUT_E_LIMIT, tok[1].col, "flash name '%s' is longer than %d characters",
                    tok[1].s, LAYOUT_NAME_MAX - 1);
    }
    idx = layout_file_find_flash(lf, tok[1].s);
    if (idx >= 0) {
        return fail(p, LAYOUT_E_DUPLICATE, tok[1].col,
                    "flash '%s' declared again (first on line %u)", tok[1].s, lf->dev[idx].line);
    }
    if (lf->ndev == LAYOUT_MAX_FLASH) {
        return fail(p, LAYOUT_E_LIMIT, tok[1].col, "flash '%s': a layout has at most %d flashes",
                    tok[1].s, LAYOUT_MAX_FLASH);
    }
    dev = &lf->dev[lf->ndev];
    memset(dev, 0, sizeof(*dev));
    strcpy(dev->name, tok[1].s);
    dev->line = p->line;

    for (unsigned i = 2; i < ntok; i++) {
        const char *eq = strchr(tok[i].s, '=');
        size_t klen;
        int a;

        if (eq == NULL) {
            return fail(p, LAYOUT_E_SYNTAX, tok[i].col,
                        "flash '%s': expected KEY=VALUE (size=, sectors=, write=, erased=, base=), "
                        "found '%s'",
                        dev->name, tok[i].s);
        }
        klen = (size_t)(eq - tok[i].s);
        for (a = 0; a < ATTR_COUNT; a++) {
            if (strlen(attr_names[a]) == klen && strncmp(tok[i].s, attr_names[a], klen) == 0) {
                break;
            }
        }
        if (a == ATTR_COUNT) {
            return fail(p, LAYOUT_E_KEYWORD, tok[i].col,
                        "flash '%s': unknown attribute '%.*s' (expected size=, sectors=, write=, "
                        "erased= or base=)",
                        dev->name, (int)klen, tok[i].s);
        }
        if (seen[a] != NULL) {
            return fail(p, LAYOUT_E_DUPLICATE, tok[i].col,
                        "flash '%s': %s= given twice (first at column %u)", dev->name,
                        attr_names[a], seen[a]->col);
        }
        seen[a] = &tok[i];
        if (a == ATTR_SECTORS) {
            if (parse_sectors(p, dev, &tok[i], eq + 1, &bare) != 0) {
                return p->err->code;
            }
            continue;
        }
        {
            char what[64];
            uint32_t *dst = a == ATTR_SIZE     ? &size
                            : a == ATTR_WRITE  ? &write
                            : a == ATTR_ERASED ? &erased
                                               : &base;
            snprintf(what, sizeof(what), "flash '%s': %s=", dev->name, attr_names[a]);
            if (number(p, what, eq + 1, tok[i].col + (unsigned)klen + 1, dst) != 0) {
                return p->err->code;
            }
        }
    }

    if (seen[ATTR_WRITE] == NULL) {
        return fail(p, LAYOUT_E_WRITE, tok[1].col,
                    "flash '%s' has no write= (its program granularity in bytes, e.g. write=4)",
                    dev->name);
    }
    if (!is_pow2(write) || write > 32) {
        return fail(p, LAYOUT_E_WRITE, seen[ATTR_WRITE]->col,
                    "flash '%s': write=%u is not a valid write size (1, 2, 4, 8, 16 or 32)",
                    dev->name, (unsigned)write);
    }
    if (erased != 0x00 && erased != 0xff) {
        return fail(p, LAYOUT_E_ERASED, seen[ATTR_ERASED]->col,
                    "flash '%s': erased=0x%x; NOR flash erases to 0xff (or 0x00 on a few parts)",
                    dev->name, (unsigned)erased);
    }
    if (seen[ATTR_SECTORS] == NULL) {
        return fail(p, LAYOUT_E_SECTORS, tok[1].col,
                    "flash '%s' has no sectors= (e.g. sectors=256x4K or "
                    "sectors=4x16K,1x64K,7x128K)",
                    dev->name);
    }
    if (bare != 0) {
        char b1[24], b2[24];
        if (seen[ATTR_SIZE] == NULL) {
            return fail(p, LAYOUT_E_SECTORS, seen[ATTR_SECTORS]->col,
                        "flash '%s': sectors=%s without a count needs size= (or write "
                        "sectors=COUNTx%s)",
                        dev->name, seen[ATTR_SECTORS]->s + 8, seen[ATTR_SECTORS]->s + 8);
        }
        if (size == 0 || size % bare != 0) {
            return fail(p, LAYOUT_E_SIZE, seen[ATTR_SIZE]->col,
                        "flash '%s': size=0x%x (%s) is not a whole number of %s sectors", dev->name,
                        (unsigned)size, layout_size_str(size, b1), layout_size_str(bare, b2));
        }
        dev->runs[0].count = size / bare;
        dev->runs[0].size = bare;
        dev->flash.nruns = 1;
    }
    for (uint32_t r = 0; r < dev->flash.nruns; r++) {
        char b[24];
        total += (uint64_t)dev->runs[r].count * dev->runs[r].size;
        if (dev->runs[r].size % write != 0) {
            return fail(p, LAYOUT_E_WRITE, seen[ATTR_SECTORS]->col,
                        "flash '%s': sector size 0x%x (%s) is not a multiple of write=%u",
                        dev->name, (unsigned)dev->runs[r].size,
                        layout_size_str(dev->runs[r].size, b), (unsigned)write);
        }
    }
    if (total > UINT32_MAX) {
        return fail(p, LAYOUT_E_LIMIT, seen[ATTR_SECTORS]->col,
                    "flash '%s': sectors add up to more than 4 GiB - 1", dev->name);
    }
    if (seen[ATTR_SIZE] != NULL && size != total) {
        char b1[24], b2[24];
        return fail(p, LAYOUT_E_SIZE, seen[ATTR_SIZE]->col,
                    "flash '%s': size=0x%x (%s) but its sectors add up to 0x%x (%s)", dev->name,
                    (unsigned)size, layout_size_str(size, b1), (unsigned)total,
                    layout_size_str((uint32_t)total, b2));
    }

    dev->base = base;
    dev->flash.ctx = NULL;
    dev->flash.read = stub_read;
    dev->flash.prog = stub_prog;
    dev->flash.erase = stub_erase;
    dev->flash.sync = NULL;
    dev->flash.size = (uint32_t)total;
    dev->flash.write_size = write;
    dev->flash.erased_val = (uint8_t)erased;
    dev->flash.runs = dev->runs;
    lf->ndev++;
    return 0;
}

/* ---- area lines ------------------------------------------------------- */

const char *layout_area_name(int id)
{
    return id == LAYOUT_AREA_SETTINGS ? "settings" : airlock_area_name(id);
}

const airlock_area_t *layout_area(const layout_file_t *lf, int id)
{
    if (id == LAYOUT_AREA_SETTINGS) {
        return &lf->settings;
    }
    return id >= 0 && id < AIRLOCK_AREA_COUNT ? &lf->layout.area[id] : NULL;
}

static int area_id(const char *s)
{
    for (int id = 0; id < LAYOUT_AREA_COUNT; id++) {
        if (strcmp(s, layout_area_name(id)) == 0) {
            return id;
        }
    }
    return -1;
}

/* The device whose flash is fl, or NULL. */
static const layout_device_t *dev_of(const layout_file_t *lf, const airlock_flash_t *fl)
{
    for (unsigned i = 0; i < lf->ndev; i++) {
        if (&lf->dev[i].flash == fl) {
            return &lf->dev[i];
        }
    }
    return NULL;
}

static int parse_area(struct parser *p, int id, const struct token *tok, unsigned ntok)
{
    layout_file_t *lf = p->lf;
    const char *name = layout_area_name(id);
    const layout_device_t *dev;
    const airlock_flash_t *fl;
    uint32_t off, size, start, ssize, end;
    char what[48], b1[24], b2[24];
    int idx;

    if (lf->area_line[id] != 0) {
        return fail(p, LAYOUT_E_DUPLICATE, tok[0].col, "%s defined again (first on line %u)", name,
                    lf->area_line[id]);
    }
    if (ntok < 4) {
        static const char *const want[] = {"", "FLASH OFFSET SIZE", "OFFSET SIZE", "SIZE"};
        const struct token *last = &tok[ntok - 1];
        return fail(p, LAYOUT_E_SYNTAX, last->col + (unsigned)strlen(last->s),
                    "%s: expected %s after '%s', found the end of the line (an area line is "
                    "'NAME FLASH OFFSET SIZE')",
                    name, want[ntok], last->s);
    }
    if (ntok > 4) {
        return fail(p, LAYOUT_E_SYNTAX, tok[4].col,
                    "%s: unexpected '%s' after the size (an area line is 'NAME FLASH OFFSET "
                    "SIZE'; comments start with #)",
                    name, tok[4].s);
    }
    idx = layout_file_find_flash(lf, tok[1].s);
    if (idx < 0) {
        if (lf->ndev == 0) {
            return fail(p, LAYOUT_E_UNKNOWN_FLASH, tok[1].col,
                        "%s: unknown flash '%s' (no flash declared yet: a 'flash' line must come "
                        "before the areas on it)",
                        name, tok[1].s);
        }
        {
            char known[LAYOUT_MAX_FLASH * (LAYOUT_NAME_MAX + 2)] = "";
            for (unsigned i = 0; i < lf->ndev; i++) {
                strcat(known, i ? ", " : "");
                strcat(known, lf->dev[i].name);
            }
            return fail(p, LAYOUT_E_UNKNOWN_FLASH, tok[1].col,
                        "%s: unknown flash '%s' (declared so far: %s)", name, tok[1].s, known);
        }
    }
    dev = &lf->dev[idx];
    fl = &dev->flash;
    snprintf(what, sizeof(what), "%s: offset", name);
    if (number(p, what, tok[2].s, tok[2].col, &off) != 0) {
        return p->err->code;
    }
    snprintf(what, sizeof(what), "%s: size", name);
    if (number(p, what, tok[3].s, tok[3].col, &size) != 0) {
        return p->err->code;
    }

    if (size == 0) {
        return fail(p, LAYOUT_E_BOUNDS, tok[3].col, "%s: size is 0", name);
    }
    if (off >= fl->size) {
        return fail(p, LAYOUT_E_BOUNDS, tok[2].col,
                    "%s: offset 0x%x is past the end of flash '%s' (size 0x%x, %s)", name,
                    (unsigned)off, dev->name, (unsigned)fl->size, layout_size_str(fl->size, b1));
    }
    if ((uint64_t)off + size > fl->size) {
        return fail(p, LAYOUT_E_BOUNDS, tok[3].col,
                    "%s: size 0x%x (%s) from offset 0x%x ends at 0x%llx, past the end of flash "
                    "'%s' (0x%x); at most 0x%x (%s) fits there",
                    name, (unsigned)size, layout_size_str(size, b1), (unsigned)off,
                    (unsigned long long)off + size, dev->name, (unsigned)fl->size,
                    (unsigned)(fl->size - off), layout_size_str(fl->size - off, b2));
    }
    if (airlock_flash_sector(fl, off, &start, &ssize) == 0 && start != off) {
        return fail(p, LAYOUT_E_ALIGN, tok[2].col,
                    "%s: offset 0x%x is not on a sector boundary of flash '%s' (sectors there "
                    "start at 0x%x and 0x%x)",
                    name, (unsigned)off, dev->name, (unsigned)start, (unsigned)(start + ssize));
    }
    end = off + size;
    if (end < fl->size && airlock_flash_sector(fl, end, &start, &ssize) == 0 && start != end) {
        char fix[64];
        if (start > off) {
            snprintf(fix, sizeof(fix), "size 0x%x or 0x%x", (unsigned)(start - off),
                     (unsigned)(start + ssize - off));
        } else {
            snprintf(fix, sizeof(fix), "size 0x%x", (unsigned)(start + ssize - off));
        }
        return fail(p, LAYOUT_E_ALIGN, tok[3].col,
                    "%s: size 0x%x makes it end at 0x%x, inside a sector of flash '%s' (sectors "
                    "there start at 0x%x and 0x%x: %s would end on a boundary)",
                    name, (unsigned)size, (unsigned)end, dev->name, (unsigned)start,
                    (unsigned)(start + ssize), fix);
    }
    for (int other = 0; other < LAYOUT_AREA_COUNT; other++) {
        const airlock_area_t *b = layout_area(lf, other);
        if (b->flash == fl && off < b->off + b->size && b->off < end) {
            return fail(p, LAYOUT_E_OVERLAP, tok[2].col,
                        "%s (0x%x..0x%x) overlaps %s (0x%x..0x%x, line %u) on flash '%s'", name,
                        (unsigned)off, (unsigned)end, layout_area_name(other), (unsigned)b->off,
                        (unsigned)(b->off + b->size), lf->area_line[other], dev->name);
        }
    }
    {
        airlock_area_t *dst = id == LAYOUT_AREA_SETTINGS ? &lf->settings : &lf->layout.area[id];
        dst->flash = fl;
        dst->off = off;
        dst->size = size;
    }
    lf->area_line[id] = p->line;
    return 0;
}

/* ---- lines ------------------------------------------------------------ */

/* Unknown first word: say what was expected, with a hint for near misses. */
static int unknown_keyword(struct parser *p, const struct token *t)
{
    static const struct {
        const char *alias, *name;
    } aliases[] = {
        {"slot0", "primary"},      {"slot1", "secondary"}, {"boot", "bootloader"},
        {"mcuboot", "bootloader"}, {"image-0", "primary"}, {"image-1", "secondary"},
    };
    const char *hint = NULL;

    for (int id = 0; id < LAYOUT_AREA_COUNT; id++) {
        if (strcasecmp(t->s, layout_area_name(id)) == 0) {
            hint = layout_area_name(id);
        }
    }
    if (strcasecmp(t->s, "flash") == 0) {
        hint = "flash";
    }
    for (size_t i = 0; !hint && i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcasecmp(t->s, aliases[i].alias) == 0) {
            hint = aliases[i].name;
        }
    }
    if (hint) {
        return fail(p, LAYOUT_E_KEYWORD, t->col,
                    "unknown keyword '%s' (did you mean '%s'? expected 'flash' or an area: "
                    "bootloader, primary, secondary, scratch, status, settings)",
                    t->s, hint);
    }
    return fail(p, LAYOUT_E_KEYWORD, t->col,
                "unknown keyword '%s' (expected 'flash' or an area: bootloader, primary, "
                "secondary, scratch, status, settings)",
                t->s);
}

static int parse_line(struct parser *p, const char *text, size_t len)
{
    char buf[LINE_MAX_LEN + 1];
    struct token tok[MAX_TOKENS];
    unsigned ntok = 0;
    size_t i = 0;
    int id;

    if (len > 0 && text[len - 1] == '\r') {
        len--;
    }
    if (len > LINE_MAX_LEN) {
        return fail(p, LAYOUT_E_LIMIT, LINE_MAX_LEN + 1, "line longer than %d bytes", LINE_MAX_LEN);
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        return fail(p, LAYOUT_E_SYNTAX, (unsigned)strlen(buf) + 1,
                    "NUL byte in the text (not a layout file?)");
    }
    for (;;) {
        while (i < len && (buf[i] == ' ' || buf[i] == '\t')) {
            i++;
        }
        if (i >= len || buf[i] == '#') {
            break;
        }
        if (ntok == MAX_TOKENS) {
            return fail(p, LAYOUT_E_SYNTAX, (unsigned)i + 1, "too many words on one line");
        }
        tok[ntok].s = &buf[i];
        tok[ntok].col = (unsigned)i + 1;
        ntok++;
        while (i < len && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '#') {
            i++;
        }
        if (i < len && buf[i] == '#') {
            buf[i] = '\0';
            break;
        }
        if (i < len) {
            buf[i++] = '\0';
        }
    }
    if (ntok == 0) {
        return 0;
    }
    if (strcmp(tok[0].s, "flash") == 0) {
        return parse_flash(p, tok, ntok);
    }
    id = area_id(tok[0].s);
    if (id >= 0) {
        return parse_area(p, id, tok, ntok);
    }
    return unknown_keyword(p, &tok[0]);
}

/* ---- after parsing ---------------------------------------------------- */

unsigned layout_area_sectors(const layout_file_t *lf, int id, airlock_sector_run_t *runs,
                             unsigned max)
{
    const airlock_area_t *a;
    unsigned n = 0;
    uint32_t pos, start, size, last = 0;

    a = layout_area(lf, id);
    if (a == NULL || a->flash == NULL) {
        return 0;
    }
    for (pos = a->off; pos < a->off + a->size; pos = start + size) {
        if (airlock_flash_sector(a->flash, pos, &start, &size) != 0) {
            break;
        }
        if (n > 0 && size == last) {
            if (n <= max) {
                runs[n - 1].count++;
            }
            continue;
        }
        if (n < max) {
            runs[n].count = 1;
            runs[n].size = size;
        }
        n++;
        last = size;
    }
    return n;
}

/* Largest sector an area covers (0 when absent). */
static uint32_t max_sector(const layout_file_t *lf, int id)
{
    airlock_sector_run_t runs[64];
    unsigned n = layout_area_sectors(lf, id, runs, 64);
    uint32_t m = 0;

    if (n > 64) {
        n = 64;
    }
    for (unsigned i = 0; i < n; i++) {
        m = runs[i].size > m ? runs[i].size : m;
    }
    return m;
}

static void find_warnings(layout_file_t *lf)
{
    const airlock_area_t *pri = &lf->layout.area[AIRLOCK_AREA_PRIMARY];
    const airlock_area_t *sec = &lf->layout.area[AIRLOCK_AREA_SECONDARY];
    const airlock_area_t *scr = &lf->layout.area[AIRLOCK_AREA_SCRATCH];
    const airlock_area_t *sta = &lf->layout.area[AIRLOCK_AREA_STATUS];
    unsigned sec_line = lf->area_line[AIRLOCK_AREA_SECONDARY];
    char b1[24], b2[24], b3[24];

    if (pri->size != sec->size) {
        uint32_t last_start = 0, last_size = 0;
        airlock_flash_sector(pri->flash, pri->off + pri->size - 1, &last_start, &last_size);
        if (pri->size > sec->size && pri->size - sec->size == last_size) {
            warn(lf, LAYOUT_W_SLOT_SIZES, sec_line,
                 "primary (%s) is secondary (%s) plus one sector: the shape swap-move uses; "
                 "other engines need equal slots, and images must fit secondary",
                 layout_size_str(pri->size, b1), layout_size_str(sec->size, b2));
        } else {
            warn(lf, LAYOUT_W_SLOT_SIZES, sec_line,
                 "primary (%s) and secondary (%s) differ in size: images must fit the smaller, "
                 "and swap engines need equal slots",
                 layout_size_str(pri->size, b1), layout_size_str(sec->size, b2));
        }
    }

    /* Walk both slots from their starts; swap units must line up sector by sector. */
    {
        uint32_t rel = 0, lim = pri->size < sec->size ? pri->size : sec->size;
        while (rel < lim) {
            uint32_t ps, pz, ss, sz;
            if (airlock_flash_sector(pri->flash, pri->off + rel, &ps, &pz) != 0 ||
                airlock_flash_sector(sec->flash, sec->off + rel, &ss, &sz) != 0) {
                break;
            }
            if (ps != pri->off + rel || ss != sec->off + rel || pz != sz) {
                char at[40];
                if (rel == 0) {
                    snprintf(at, sizeof(at), "at the start of the slots");
                } else {
                    snprintf(at, sizeof(at), "0x%x into the slots", (unsigned)rel);
                }
                warn(lf, LAYOUT_W_SECTORS_DIFFER, sec_line,
                     "the slots' sectors do not line up: %s, primary has a %s sector on '%s' "
                     "and secondary a %s sector on '%s'; swap-scratch and swap-move need "
                     "matching sectors, overwrite, swap-2n, direct-xip and ram-load cope",
                     at, layout_size_str(pz, b1), dev_of(lf, pri->flash)->name,
                     layout_size_str(sz, b2), dev_of(lf, sec->flash)->name);
                break;
            }
            rel += pz;
        }
    }

    for (int id = AIRLOCK_AREA_PRIMARY; id <= AIRLOCK_AREA_SECONDARY; id++) {
        airlock_sector_run_t runs[LAYOUT_MAX_RUNS];
        unsigned n = layout_area_sectors(lf, id, runs, LAYOUT_MAX_RUNS);
        if (n > 1) {
            char sizes[160] = "";
            n = n > LAYOUT_MAX_RUNS ? LAYOUT_MAX_RUNS : n;
            for (unsigned i = 0; i < n; i++) {
                snprintf(sizes + strlen(sizes), sizeof(sizes) - strlen(sizes), "%s%u x %s",
                         i ? " + " : "", (unsigned)runs[i].count,
                         layout_size_str(runs[i].size, b1));
            }
            warn(lf, LAYOUT_W_SECTORS_MIXED, lf->area_line[id],
                 "%s mixes sector sizes (%s): swap-move needs uniform sectors", //
                 airlock_area_name(id), sizes);
        }
    }

    if (scr->flash == NULL) {
        warn(lf, LAYOUT_W_NO_SCRATCH, 0,
             "no scratch area: the swap-scratch engine cannot be used (overwrite, swap-move, "
             "swap-2n, direct-xip and ram-load can)");
    } else {
        uint32_t mp = max_sector(lf, AIRLOCK_AREA_PRIMARY);
        uint32_t ms = max_sector(lf, AIRLOCK_AREA_SECONDARY);
        uint32_t m = mp > ms ? mp : ms;
        if (scr->size < m) {
            warn(lf, LAYOUT_W_SCRATCH_SMALL, lf->area_line[AIRLOCK_AREA_SCRATCH],
                 "scratch (%s) is smaller than the largest sector of the slots (%s in %s): "
                 "swap-scratch cannot move that sector through it",
                 layout_size_str(scr->size, b1), layout_size_str(m, b2),
                 mp >= ms ? "primary" : "secondary");
        }
    }

    if (sta->flash != NULL) {
        airlock_sector_run_t run;
        if (layout_area_sectors(lf, AIRLOCK_AREA_STATUS, &run, 1) == 1 && run.count == 1) {
            warn(lf, LAYOUT_W_STATUS_ONE_SECTOR, lf->area_line[AIRLOCK_AREA_STATUS],
                 "status is a single %s sector: it cannot keep two copies, so updating the "
                 "security counter would be an erase-then-write a power cut can break; give it "
                 "two sectors",
                 layout_size_str(run.size, b3));
        }
    }

    for (unsigned i = 0; i < lf->ndev; i++) {
        bool used = false;
        for (int id = 0; id < LAYOUT_AREA_COUNT; id++) {
            used = used || layout_area(lf, id)->flash == &lf->dev[i].flash;
        }
        if (!used) {
            warn(lf, LAYOUT_W_UNUSED_FLASH, lf->dev[i].line,
                 "flash '%s' is declared but no area uses it", lf->dev[i].name);
        }
    }

    /* In file order: whole-layout warnings (line 0) first, then by line (stable). */
    for (unsigned i = 1; i < lf->nwarn; i++) {
        layout_diag_t w = lf->warn[i];
        unsigned j = i;
        while (j > 0 && lf->warn[j - 1].line > w.line) {
            lf->warn[j] = lf->warn[j - 1];
            j--;
        }
        lf->warn[j] = w;
    }
}

void layout_explain_check(const layout_file_t *lf, const airlock_err_detail_t *det,
                          layout_diag_t *out)
{
    const char *field = det && det->field ? det->field : "layout";
    size_t nlen = strcspn(field, ". ");
    const char *rest = field + nlen;
    const airlock_area_t *a = NULL;
    const layout_device_t *dev = NULL;
    const char *name = "layout";
    int id = -1;

    for (int i = 0; i < AIRLOCK_AREA_COUNT; i++) {
        const char *an = airlock_area_name(i);
        if (strlen(an) == nlen && strncmp(field, an, nlen) == 0) {
            id = i;
        }
    }
    memset(out, 0, sizeof(*out));
    out->code = LAYOUT_E_CHECK;
    if (id >= 0) {
        a = &lf->layout.area[id];
        dev = a->flash ? dev_of(lf, a->flash) : NULL;
        name = airlock_area_name(id);
        out->line = lf->area_line[id];
    }
#define SAY(...) snprintf(out->msg, sizeof(out->msg), __VA_ARGS__)
    if (a == NULL) {
        SAY("airlock_layout_check rejected the layout (%s at offset 0x%x)", field,
            det ? (unsigned)det->offset : 0u);
    } else if (strcmp(rest, ".flash") == 0 && a->flash == NULL) {
        SAY("no %s area (a layout needs primary and secondary)", name);
    } else if (strcmp(rest, ".flash") == 0) {
        SAY("%s: flash '%s' rejected by airlock_flash_check (read/prog/erase missing, write size "
            "not a power of two up to 32, or sectors not summing to its size)",
            name, dev ? dev->name : "?");
    } else if (strcmp(rest, ".offset") == 0) {
        SAY("%s: offset 0x%x is not on a sector boundary of flash '%s' (the sector there starts "
            "at 0x%x)",
            name, (unsigned)det->offset, dev ? dev->name : "?", (unsigned)det->expected);
    } else if (strcmp(rest, ".size") == 0 && !det->has_values) {
        SAY("%s: size is 0", name);
    } else if (strcmp(rest, ".size") == 0 && det->offset == a->off) {
        SAY("%s: size 0x%x runs past the end of flash '%s'; at most 0x%x fits from offset 0x%x",
            name, (unsigned)det->found, dev ? dev->name : "?", (unsigned)det->expected,
            (unsigned)a->off);
    } else if (strcmp(rest, ".size") == 0) {
        SAY("%s: ends at 0x%x, inside a sector of flash '%s' (size 0x%x would end on the "
            "boundary before it; found 0x%x)",
            name, (unsigned)det->offset, dev ? dev->name : "?", (unsigned)det->expected,
            (unsigned)det->found);
    } else if (strncmp(rest, " overlaps", 9) == 0) {
        const char *other = "another area";
        for (int i = 0; i < AIRLOCK_AREA_COUNT; i++) {
            const airlock_area_t *b = &lf->layout.area[i];
            if (i != id && b->flash == a->flash && b->off == det->expected) {
                other = airlock_area_name(i);
            }
        }
        SAY("%s (0x%x..0x%x) overlaps %s on flash '%s'", name, (unsigned)a->off,
            (unsigned)(a->off + a->size), other, dev ? dev->name : "?");
    } else {
        SAY("airlock_layout_check rejected %s (offset 0x%x)", field, (unsigned)det->offset);
    }
#undef SAY
}

int layout_file_parse(layout_file_t *lf, const char *source, const char *text, size_t len,
                      layout_diag_t *err)
{
    layout_diag_t local;
    struct parser p;
    airlock_err_detail_t det;
    size_t pos = 0;

    memset(lf, 0, sizeof(*lf));
    snprintf(lf->source, sizeof(lf->source), "%s", source ? source : "<string>");
    p.lf = lf;
    p.err = err ? err : &local;
    p.line = 0;
    memset(p.err, 0, sizeof(*p.err));

    if (len > LAYOUT_MAX_TEXT) {
        return fail(&p, LAYOUT_E_LIMIT, 0, "layout text is larger than %u bytes", LAYOUT_MAX_TEXT);
    }
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        int rc;

        p.line++;
        rc = parse_line(&p, text + pos, end - pos);
        if (rc != 0) {
            return rc;
        }
        pos = end + 1;
    }

    p.line = 0;
    if (lf->ndev == 0 && lf->area_line[AIRLOCK_AREA_PRIMARY] == 0 &&
        lf->area_line[AIRLOCK_AREA_SECONDARY] == 0) {
        return fail(&p, LAYOUT_E_MISSING, 0,
                    "empty layout: no 'flash' line and no areas (see docs/layout.md)");
    }
    for (int id = AIRLOCK_AREA_PRIMARY; id <= AIRLOCK_AREA_SECONDARY; id++) {
        if (lf->layout.area[id].flash == NULL) {
            return fail(&p, LAYOUT_E_MISSING, 0,
                        "no %s area (a layout needs primary and secondary; add a line "
                        "'%s FLASH OFFSET SIZE')",
                        airlock_area_name(id), airlock_area_name(id));
        }
    }

    if (lf->settings.flash != NULL) {
        /* The settings store keeps two copies, each erasable alone. */
        const airlock_area_t *st = &lf->settings;
        uint32_t mid = st->off + st->size / 2u, start, ssize;
        if (st->size % 2u != 0 || airlock_flash_sector(st->flash, mid, &start, &ssize) != 0 ||
            start != mid || mid == st->off) {
            p.line = lf->area_line[LAYOUT_AREA_SETTINGS];
            return fail(&p, LAYOUT_E_ALIGN, 0,
                        "settings: the store keeps two copies, each of whole sectors: its "
                        "midpoint 0x%x must be a sector boundary (give it two, four, ... equal "
                        "sectors)",
                        (unsigned)mid);
        }
    }

    /* Core has the last word: what it rejects, no engine will run on. */
    memset(&det, 0, sizeof(det));
    if (airlock_layout_check(&lf->layout, &det) != 0) {
        layout_explain_check(lf, &det, p.err);
        return LAYOUT_E_CHECK;
    }
    find_warnings(lf);
    return 0;
}

/* ---- files and built-ins ---------------------------------------------- */

/* Read path; returns 0, or the errno of the failure (*too_big set if so). */
static int read_text(const char *path, char **text, size_t *len, bool *too_big)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    int e;

    *too_big = false;
    if (f == NULL) {
        return errno ? errno : EIO;
    }
    buf = malloc(LAYOUT_MAX_TEXT + 1);
    if (buf == NULL) {
        fclose(f);
        return ENOMEM;
    }
    errno = 0;
    n = fread(buf, 1, LAYOUT_MAX_TEXT + 1, f);
    e = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (e != 0) {
        free(buf);
        return e;
    }
    if (n > LAYOUT_MAX_TEXT) {
        *too_big = true;
        free(buf);
        return EFBIG;
    }
    *text = buf;
    *len = n;
    return 0;
}

static int load(layout_file_t *lf, const char *path, layout_diag_t *err, bool fallback)
{
    layout_diag_t local;
    char *text = NULL;
    size_t len = 0;
    bool too_big;
    int e, rc;

    if (err == NULL) {
        err = &local;
    }
    e = read_text(path, &text, &len, &too_big);
    if (e == ENOENT && fallback) {
        const struct layout_builtin *b = layout_builtin_find(path);
        if (b != NULL) {
            char src[LAYOUT_NAME_MAX + 64];
            snprintf(src, sizeof(src), "builtin:%s", b->name);
            return layout_file_parse(lf, src, b->text, strlen(b->text), err);
        }
    }
    if (e != 0) {
        memset(lf, 0, sizeof(*lf));
        snprintf(lf->source, sizeof(lf->source), "%s", path);
        memset(err, 0, sizeof(*err));
        if (too_big) {
            err->code = LAYOUT_E_LIMIT;
            snprintf(err->msg, sizeof(err->msg), "file is larger than %u bytes (not a layout?)",
                     LAYOUT_MAX_TEXT);
        } else if (e == ENOENT && fallback) {
            char names[256] = "";
            for (const struct layout_builtin *b = layout_builtins; b->name; b++) {
                if (strlen(names) + strlen(b->name) + 3 < sizeof(names)) {
                    strcat(names, b == layout_builtins ? "" : ", ");
                    strcat(names, b->name);
                }
            }
            err->code = LAYOUT_E_NOT_FOUND;
            snprintf(err->msg, sizeof(err->msg),
                     "no such file, and no built-in layout of that name (built-ins: %s)", names);
        } else {
            err->code = LAYOUT_E_IO;
            snprintf(err->msg, sizeof(err->msg), "cannot read layout file: %s", strerror(e));
        }
        return err->code;
    }
    rc = layout_file_parse(lf, path, text, len, err);
    free(text);
    return rc;
}

int layout_file_load(layout_file_t *lf, const char *path, layout_diag_t *err)
{
    return load(lf, path, err, false);
}

int layout_file_open(layout_file_t *lf, const char *file_or_name, layout_diag_t *err)
{
    return load(lf, file_or_name, err, true);
}

int layout_file_find_flash(const layout_file_t *lf, const char *name)
{
    for (unsigned i = 0; i < lf->ndev; i++) {
        if (strcmp(lf->dev[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int layout_file_set_ops(layout_file_t *lf, unsigned idx, const airlock_flash_t *port)
{
    airlock_flash_t *fl;

    if (idx >= lf->ndev || port == NULL || !port->read || !port->prog || !port->erase) {
        return -1;
    }
    fl = &lf->dev[idx].flash;
    if ((port->size != 0 && port->size != fl->size) ||
        (port->write_size != 0 && port->write_size != fl->write_size)) {
        return -1;
    }
    fl->ctx = port->ctx;
    fl->read = port->read;
    fl->prog = port->prog;
    fl->erase = port->erase;
    fl->sync = port->sync;
    return 0;
}

const struct layout_builtin *layout_builtin_find(const char *name)
{
    for (const struct layout_builtin *b = layout_builtins; b->name; b++) {
        if (strcmp(b->name, name) == 0) {
            return b;
        }
    }
    return NULL;
}

char *layout_builtin_summary(const struct layout_builtin *b, char *buf, size_t n)
{
    const char *s = b->text;
    size_t len;

    buf[0] = '\0';
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s != '#' || n == 0) {
        return buf;
    }
    s++;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    len = strcspn(s, "\r\n");
    if (len >= n) {
        len = n - 1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}
