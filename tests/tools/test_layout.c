/*
 * Unit tests for tools/layout_file.c: every error kind is reported at the
 * right line and column with the words a user needs; the built-ins are the
 * files in layouts/ and check clean; numbers, sector lists, several flashes,
 * warnings, ports and the translation of core's layout check.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout_file.h"

#ifndef LAYOUT_DIR
#error "LAYOUT_DIR (the source tree's layouts/) must be defined"
#endif

/* The layout struct is a few KiB; one per test, on the heap. */
static int setup(void **state)
{
    *state = calloc(1, sizeof(layout_file_t));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static int parse(layout_file_t *lf, const char *text, layout_diag_t *err)
{
    return layout_file_parse(lf, "t.layout", text, strlen(text), err);
}

/* Parse text that must be valid; fails the test with the message if not. */
static void parse_ok(layout_file_t *lf, const char *text)
{
    layout_diag_t err;
    int rc = parse(lf, text, &err);
    if (rc != 0) {
        fail_msg("unexpected %s at %u:%u: %s", layout_code_name(rc), err.line, err.col, err.msg);
    }
}

static bool has_warning(const layout_file_t *lf, int code, unsigned *line)
{
    for (unsigned i = 0; i < lf->nwarn; i++) {
        if (lf->warn[i].code == code) {
            if (line) {
                *line = lf->warn[i].line;
            }
            return true;
        }
    }
    return false;
}

/* Message of the first warning with code, "" if none. */
static const char *warn_msg(const layout_file_t *lf, int code)
{
    for (unsigned i = 0; i < lf->nwarn; i++) {
        if (lf->warn[i].code == code) {
            return lf->warn[i].msg;
        }
    }
    return "";
}

#define FLASH1 "flash internal size=1M sectors=256x4K write=4\n"
#define SLOTS "primary internal 0xC000 472K\nsecondary internal 0x82000 472K\n"
#define SCRATCH "scratch internal 0xF8000 4K\n"

/* ---- the built-ins ---------------------------------------------------- */

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL) {
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

/* One source of truth: each built-in is byte for byte its file, and every file is built in. */
static void test_builtins_are_the_files(void **state)
{
    DIR *d = opendir(LAYOUT_DIR);
    struct dirent *e;
    unsigned files = 0, builtins = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char name[256], path[1024];
        const struct layout_builtin *b;
        char *text;

        if (n < 8 || strcmp(e->d_name + n - 7, ".layout") != 0) {
            continue;
        }
        files++;
        snprintf(name, sizeof(name), "%.*s", (int)(n - 7), e->d_name);
        b = layout_builtin_find(name);
        if (b == NULL) {
            fail_msg("layouts/%s is not built in", e->d_name);
        }
        snprintf(path, sizeof(path), "%s/%s", LAYOUT_DIR, e->d_name);
        text = read_whole(path);
        assert_non_null(text);
        assert_string_equal(b->text, text);
        free(text);
    }
    closedir(d);
    for (const struct layout_builtin *b = layout_builtins; b->name; b++) {
        builtins++;
        if (b[1].name != NULL) {
            assert_true(strcmp(b->name, b[1].name) < 0); /* sorted */
        }
    }
    assert_int_equal(files, builtins);
    assert_true(builtins >= 3);
}

static void test_builtins_check_clean(void **state)
{
    layout_file_t *lf = *state;
    layout_diag_t err;
    char desc[200];

    for (const struct layout_builtin *b = layout_builtins; b->name; b++) {
        int rc = layout_file_parse(lf, b->name, b->text, strlen(b->text), &err);
        if (rc != 0) {
            fail_msg("%s: %s at %u:%u: %s", b->name, layout_code_name(rc), err.line, err.col,
                     err.msg);
        }
        if (lf->nwarn != 0) {
            fail_msg("%s: warning %s: %s", b->name, layout_code_name(lf->warn[0].code),
                     lf->warn[0].msg);
        }
        assert_int_equal(airlock_layout_check(&lf->layout, NULL), 0);
        assert_true(strlen(layout_builtin_summary(b, desc, sizeof(desc))) > 10);
    }
}

static void test_builtin_nrf52840(void **state)
{
    layout_file_t *lf = *state;
    const airlock_area_t *a = lf->layout.area;

    assert_int_equal(layout_file_open(lf, "nrf52840", NULL), 0);
    assert_string_equal(lf->source, "builtin:nrf52840");
    assert_int_equal(lf->ndev, 1);
    assert_int_equal(lf->dev[0].flash.size, 0x100000);
    assert_int_equal(lf->dev[0].flash.write_size, 4);
    assert_int_equal(lf->dev[0].flash.erased_val, 0xff);
    assert_int_equal(lf->dev[0].flash.nruns, 1);
    assert_int_equal(lf->dev[0].runs[0].count, 256);
    assert_int_equal(lf->dev[0].runs[0].size, 4096);
    assert_int_equal(a[AIRLOCK_AREA_BOOTLOADER].off, 0);
    assert_int_equal(a[AIRLOCK_AREA_BOOTLOADER].size, 48 * 1024);
    assert_int_equal(a[AIRLOCK_AREA_PRIMARY].off, 0xC000);
    assert_int_equal(a[AIRLOCK_AREA_PRIMARY].size, 472 * 1024);
    assert_int_equal(a[AIRLOCK_AREA_SECONDARY].off, 0x82000);
    assert_int_equal(a[AIRLOCK_AREA_SCRATCH].off, 0xF8000);
    assert_int_equal(a[AIRLOCK_AREA_SCRATCH].size, 4096);
    assert_int_equal(a[AIRLOCK_AREA_STATUS].size, 8192);
    for (int id = 0; id < AIRLOCK_AREA_COUNT; id++) {
        assert_ptr_equal(a[id].flash, &lf->dev[0].flash);
    }
}

static void test_builtin_stm32f4(void **state)
{
    layout_file_t *lf = *state;
    airlock_sector_run_t runs[4];

    assert_int_equal(layout_file_open(lf, "stm32f4", NULL), 0);
    assert_int_equal(lf->dev[0].flash.nruns, 3);
    assert_int_equal(lf->dev[0].runs[0].count, 4);
    assert_int_equal(lf->dev[0].runs[0].size, 16 * 1024);
    assert_int_equal(lf->dev[0].runs[1].size, 64 * 1024);
    assert_int_equal(lf->dev[0].runs[2].count, 7);
    assert_int_equal(lf->dev[0].runs[2].size, 128 * 1024);
    assert_int_equal(lf->dev[0].flash.write_size, 1);
    assert_int_equal(lf->dev[0].base, 0x08000000);
    /* Slots and scratch on whole 128 KiB sectors; bootloader and status on 16 KiB ones. */
    assert_int_equal(layout_area_sectors(lf, AIRLOCK_AREA_PRIMARY, runs, 4), 1);
    assert_int_equal(runs[0].count, 3);
    assert_int_equal(runs[0].size, 128 * 1024);
    assert_int_equal(layout_area_sectors(lf, AIRLOCK_AREA_SCRATCH, runs, 4), 1);
    assert_int_equal(runs[0].size, 128 * 1024);
    assert_int_equal(layout_area_sectors(lf, AIRLOCK_AREA_STATUS, runs, 4), 1);
    assert_int_equal(runs[0].count, 2);
    assert_int_equal(runs[0].size, 16 * 1024);
}

static void test_builtin_esp32(void **state)
{
    layout_file_t *lf = *state;
    airlock_sector_run_t run;

    assert_int_equal(layout_file_open(lf, "esp32", NULL), 0);
    assert_int_equal(lf->dev[0].flash.size, 4 * 1024 * 1024);
    assert_int_equal(lf->dev[0].flash.write_size, 4);
    assert_int_equal(lf->layout.area[AIRLOCK_AREA_PRIMARY].size, 0x140000);
    assert_int_equal(lf->layout.area[AIRLOCK_AREA_SECONDARY].size, 0x140000);
    assert_int_equal(layout_area_sectors(lf, AIRLOCK_AREA_SECONDARY, &run, 1), 1);
    assert_int_equal(run.count, 320);
}

static void test_builtin_two_flashes(void **state)
{
    layout_file_t *lf = *state;
    int q;

    assert_int_equal(layout_file_open(lf, "nrf52840-qspi", NULL), 0);
    assert_int_equal(lf->ndev, 2);
    q = layout_file_find_flash(lf, "qspi");
    assert_int_equal(q, 1);
    assert_ptr_equal(lf->layout.area[AIRLOCK_AREA_SECONDARY].flash, &lf->dev[q].flash);
    assert_ptr_equal(lf->layout.area[AIRLOCK_AREA_PRIMARY].flash, &lf->dev[0].flash);
    assert_int_equal(lf->layout.area[AIRLOCK_AREA_PRIMARY].size,
                     lf->layout.area[AIRLOCK_AREA_SECONDARY].size);
}

/* ---- numbers and syntax ----------------------------------------------- */

static void test_numbers(void **state)
{
    static const struct {
        const char *s;
        uint32_t v;
    } good[] = {
        {"4096", 4096},     {"0x1000", 0x1000},     {"0X1000", 0x1000},
        {"4K", 4096},       {"4k", 4096},           {"1M", 1048576},
        {"1m", 1048576},    {"0x10K", 16384},       {"0004096", 4096},
        {"0xfFfF", 0xffff}, {"4095M", 4095u << 20}, {"4194303K", 4194303u * 1024u},
    };
    static const char *const bad[] = {"12Q",  "0x",    "K",          "4KK",
                                      "-4",   "+4",    "4 K",        "0x1G",
                                      "1.5M", "4096M", "4294967296", "99999999999999999999"};
    layout_file_t *lf = *state;
    layout_diag_t err;
    char text[512];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        /* Through base=, which takes any 32-bit value. */
        snprintf(text, sizeof(text),
                 "flash internal size=1M sectors=256x4K write=4 base=%s\n" SLOTS, good[i].s);
        parse_ok(lf, text);
        if (lf->dev[0].base != good[i].v) {
            fail_msg("'%s' parsed as 0x%x, expected 0x%x", good[i].s, lf->dev[0].base, good[i].v);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), FLASH1 "\nprimary internal %s 4K\n", bad[i]);
        if (parse(lf, text, &err) != LAYOUT_E_NUMBER) {
            /* "4 K" splits into two words: the K is an extra word. */
            if (strchr(bad[i], ' ') != NULL && err.code == LAYOUT_E_SYNTAX) {
                continue;
            }
            fail_msg("'%s': expected NUMBER, got %s: %s", bad[i], layout_code_name(err.code),
                     err.msg);
        }
        assert_int_equal(err.line, 3);
        assert_int_equal(err.col, 18);
        assert_non_null(strstr(err.msg, "primary: offset"));
        assert_non_null(strstr(err.msg, bad[i]));
    }
}

static void test_comments_blank_lines_crlf_tabs(void **state)
{
    layout_file_t *lf = *state;

    parse_ok(lf, "# a layout\r\n"
                 "\r\n"
                 "   # indented comment\n"
                 "flash\tinternal size=1M\tsectors=256x4K write=4 # trailing comment\r\n"
                 "\t\n"
                 "primary internal 0xC000 472K#no space before the comment\n"
                 "secondary  internal  0x82000  472K"); /* no final newline */
    assert_int_equal(lf->area_line[AIRLOCK_AREA_PRIMARY], 6);
    assert_int_equal(lf->area_line[AIRLOCK_AREA_SECONDARY], 7);
    assert_int_equal(lf->layout.area[AIRLOCK_AREA_SECONDARY].size, 472 * 1024);
}

static void test_sector_lists(void **state)
{
    layout_file_t *lf = *state;

    /* A bare sector size fills size=. */
    parse_ok(lf, "flash f size=1M sectors=4K write=4\n"
                 "primary f 0 512K\nsecondary f 512K 512K\n");
    assert_int_equal(lf->dev[0].flash.nruns, 1);
    assert_int_equal(lf->dev[0].runs[0].count, 256);
    /* ... also in hex (0x is not "count 0"). */
    parse_ok(lf, "flash f size=1M sectors=0x1000 write=4\n"
                 "primary f 0 512K\nsecondary f 512K 512K\n");
    assert_int_equal(lf->dev[0].runs[0].count, 256);
    /* size= may be left out; it is the sum of the runs. */
    parse_ok(lf, "flash f sectors=4x16K,1x64K,7x128K write=1\n"
                 "primary f 0x20000 384K\nsecondary f 0x80000 384K\n");
    assert_int_equal(lf->dev[0].flash.size, 1024 * 1024);
    assert_int_equal(lf->dev[0].flash.nruns, 3);
    /* Neighbouring runs of one size merge, as core's maps expect. */
    parse_ok(lf, "flash f sectors=2x4K,3x4K,1x0x2000 write=4\n"
                 "primary f 0 8K\nsecondary f 8K 8K\n");
    assert_int_equal(lf->dev[0].flash.nruns, 2);
    assert_int_equal(lf->dev[0].runs[0].count, 5);
    assert_int_equal(lf->dev[0].runs[1].size, 0x2000);
}

/* ---- every error: code, line, column, key words ----------------------- */

struct bad_case {
    const char *text;
    int code;
    unsigned line, col;
    const char *words[4];
};

static const struct bad_case bad_cases[] = {
    /* Unknown keywords and attributes. */
    {"falsh internal size=1M\n", LAYOUT_E_KEYWORD, 1, 1, {"unknown keyword", "'falsh'", "flash"}},
    {FLASH1 "Primary internal 0 4K\n", LAYOUT_E_KEYWORD, 2, 1, {"did you mean 'primary'"}},
    {FLASH1 "slot1 internal 0 4K\n",
     LAYOUT_E_KEYWORD,
     2,
     1,
     {"'slot1'", "did you mean 'secondary'"}},
    {"flash internal size=1M sectors=256x4K write=4 wirte=4\n",
     LAYOUT_E_KEYWORD,
     1,
     47,
     {"unknown attribute 'wirte'", "write="}},
    /* Shapes of lines. */
    {"flash\n", LAYOUT_E_SYNTAX, 1, 6, {"expected a flash name"}},
    {"flash size=1M sectors=256x4K write=4\n", LAYOUT_E_SYNTAX, 1, 7, {"flash name", "'size=1M'"}},
    {"flash 9lives sectors=1x4K write=4\n", LAYOUT_E_SYNTAX, 1, 7, {"'9lives'", "not valid"}},
    {"flash internal size=1M sectors=256x4K write=4 erased\n",
     LAYOUT_E_SYNTAX,
     1,
     47,
     {"KEY=VALUE", "'erased'"}},
    {FLASH1 "primary internal 0xC000\n", LAYOUT_E_SYNTAX, 2, 24, {"primary", "expected SIZE"}},
    {FLASH1 "primary\n", LAYOUT_E_SYNTAX, 2, 8, {"expected FLASH OFFSET SIZE"}},
    {FLASH1 "primary internal 0 4K 8K\n", LAYOUT_E_SYNTAX, 2, 23, {"unexpected '8K'"}},
    /* Numbers. */
    {FLASH1 "primary internal 0xC000 47ZK\n", LAYOUT_E_NUMBER, 2, 25, {"primary: size", "'47ZK'"}},
    {"flash internal size=1X sectors=256x4K write=4\n", LAYOUT_E_NUMBER, 1, 21, {"size=", "'1X'"}},
    {FLASH1 "primary internal 0 8192M\n", LAYOUT_E_NUMBER, 2, 20, {"too large"}},
    /* Duplicates. */
    {FLASH1 SLOTS "primary internal 0xF8000 4K\n",
     LAYOUT_E_DUPLICATE,
     4,
     1,
     {"primary defined again", "line 2"}},
    {FLASH1 "flash internal sectors=1x4K write=4\n",
     LAYOUT_E_DUPLICATE,
     2,
     7,
     {"flash 'internal' declared again", "line 1"}},
    {"flash internal size=1M sectors=256x4K write=4 write=4\n",
     LAYOUT_E_DUPLICATE,
     1,
     47,
     {"write= given twice"}},
    /* Unknown flash. */
    {FLASH1 "primary qspi 0 4K\n",
     LAYOUT_E_UNKNOWN_FLASH,
     2,
     9,
     {"unknown flash 'qspi'", "internal"}},
    {"primary internal 0 4K\n", LAYOUT_E_UNKNOWN_FLASH, 1, 9, {"no flash declared yet"}},
    /* Write size and erased value. */
    {"flash f size=1M sectors=256x4K write=3\n", LAYOUT_E_WRITE, 1, 32, {"write=3", "1, 2, 4"}},
    {"flash f size=1M sectors=256x4K write=64\n", LAYOUT_E_WRITE, 1, 32, {"write=64"}},
    {"flash f size=1M sectors=256x4K write=0\n", LAYOUT_E_WRITE, 1, 32, {"write=0"}},
    {"flash f size=1M sectors=256x4K\n", LAYOUT_E_WRITE, 1, 7, {"no write="}},
    {"flash f sectors=4x6 write=4\n",
     LAYOUT_E_WRITE,
     1,
     9,
     {"sector size 0x6", "multiple of write=4"}},
    {"flash f sectors=1x4K write=4 erased=0x7f\n", LAYOUT_E_ERASED, 1, 30, {"erased=0x7f", "0xff"}},
    /* Sector lists and sizes. */
    {"flash f size=1M write=4\n", LAYOUT_E_SECTORS, 1, 7, {"no sectors="}},
    {"flash f sectors= write=4\n", LAYOUT_E_SECTORS, 1, 9, {"needs a value"}},
    {"flash f sectors=4x16K,,7x128K write=4\n", LAYOUT_E_SECTORS, 1, 23, {"empty entry"}},
    {"flash f sectors=4x16K,64K write=4\n", LAYOUT_E_SECTORS, 1, 23, {"COUNTxSIZE", "'64K'"}},
    {"flash f sectors=0x4K write=4 size=0\n", LAYOUT_E_SIZE, 1, 30, {"size=0x0", "whole number"}},
    {"flash f sectors=0x4K write=4\n", LAYOUT_E_SECTORS, 1, 9, {"needs size="}},
    {"flash f sectors=0x16K write=4\n", LAYOUT_E_SECTORS, 1, 9, {"needs size="}},
    {"flash f sectors=4x0 write=4\n", LAYOUT_E_SECTORS, 1, 19, {"must not be 0"}},
    {"flash f size=1M sectors=255x4K write=4\n",
     LAYOUT_E_SIZE,
     1,
     9,
     {"size=0x100000 (1 MiB)", "add up to 0xff000 (1020 KiB)"}},
    {"flash f size=1001K sectors=4K write=4\n", LAYOUT_E_SIZE, 1, 9, {"whole number of 4 KiB"}},
    /* Limits. */
    {"flash a sectors=1x4K write=1\nflash b sectors=1x4K write=1\nflash c sectors=1x4K "
     "write=1\nflash d sectors=1x4K write=1\nflash e sectors=1x4K write=1\n",
     LAYOUT_E_LIMIT,
     5,
     7,
     {"at most 4 flashes"}},
    {"flash f sectors=1x1,1x2,1x4,1x8,1x16,1x32,1x64,1x128,1x256,1x512,1x1K,1x2K,1x4K,1x8K,1x16K,"
     "1x32K,1x64K write=1\n",
     LAYOUT_E_LIMIT,
     1,
     98,
     {"more than 16 runs"}},
    {"flash abcdefghijabcdefghijabcdefghijabc sectors=1x4K write=1\n",
     LAYOUT_E_LIMIT,
     1,
     7,
     {"longer than 31"}},
    {"flash f sectors=4294967295x2 write=1\n", LAYOUT_E_LIMIT, 1, 9, {"more than 4 GiB"}},
    /* Areas against their flash. */
    {FLASH1 "primary internal 0xC000 0\n", LAYOUT_E_BOUNDS, 2, 25, {"primary: size is 0"}},
    {FLASH1 "primary internal 0x100000 4K\n",
     LAYOUT_E_BOUNDS,
     2,
     18,
     {"offset 0x100000", "past the end", "'internal'"}},
    {FLASH1 "secondary internal 0xF0000 472K\n",
     LAYOUT_E_BOUNDS,
     2,
     28,
     {"secondary", "ends at 0x166000", "at most 0x10000 (64 KiB)"}},
    {FLASH1 "primary internal 0xC000 472K\nsecondary internal 0x82100 472K\n",
     LAYOUT_E_ALIGN,
     3,
     20,
     {"secondary: offset 0x82100 is not on a sector boundary of flash 'internal'",
      "start at 0x82000 and 0x83000"}},
    {FLASH1 "primary internal 0xC000 472K\nsecondary internal 0x82000 0x75800\n",
     LAYOUT_E_ALIGN,
     3,
     28,
     {"secondary: size 0x75800", "end at 0xf7800", "size 0x75000 or 0x76000"}},
    {"flash f sectors=4x16K,1x64K,7x128K write=1\nprimary f 0x20000 0x50000\n",
     LAYOUT_E_ALIGN,
     2,
     19,
     {"end at 0x70000", "0x60000 and 0x80000"}},
    {FLASH1 "primary internal 0xC000 472K\nsecondary internal 0x80000 472K\n",
     LAYOUT_E_OVERLAP,
     3,
     20,
     {"secondary (0x80000..0xf6000) overlaps primary (0xc000..0x82000, line 2)", "'internal'"}},
    {FLASH1 "scratch internal 0xF8000 4K\n" SLOTS "status internal 0xF8000 8K\n",
     LAYOUT_E_OVERLAP,
     5,
     17,
     {"status", "overlaps scratch", "line 2"}},
    /* Required areas. */
    {FLASH1 "primary internal 0xC000 472K\n",
     LAYOUT_E_MISSING,
     0,
     0,
     {"no secondary area", "primary and secondary"}},
    {FLASH1 "secondary internal 0xC000 472K\n", LAYOUT_E_MISSING, 0, 0, {"no primary area"}},
    {"# only comments\n\n", LAYOUT_E_MISSING, 0, 0, {"empty layout"}},
    {"", LAYOUT_E_MISSING, 0, 0, {"empty layout"}},
};

static void test_errors(void **state)
{
    layout_file_t *lf = *state;
    layout_diag_t err;
    char where[300];

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        int rc = parse(lf, c->text, &err);

        if (rc != c->code || err.code != c->code || err.line != c->line || err.col != c->col) {
            fail_msg("case %zu: got %s at %u:%u (%s), expected %s at %u:%u", i,
                     layout_code_name(rc), err.line, err.col, err.msg, layout_code_name(c->code),
                     c->line, c->col);
        }
        for (int w = 0; w < 4 && c->words[w]; w++) {
            if (strstr(err.msg, c->words[w]) == NULL) {
                fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, c->words[w]);
            }
        }
        layout_diag_where(lf, &err, where, sizeof(where));
        if (c->line != 0) {
            char want[64];
            snprintf(want, sizeof(want), "t.layout:%u:%u", c->line, c->col);
            assert_string_equal(where, want);
        } else {
            assert_string_equal(where, "t.layout");
        }
        /* The same text without an error detail gives the same verdict. */
        assert_int_equal(parse(lf, c->text, NULL), c->code);
    }
}

static void test_error_limits(void **state)
{
    layout_file_t *lf = *state;
    layout_diag_t err;
    char *big = malloc(LAYOUT_MAX_TEXT + 2);
    char line[1200];

    assert_non_null(big);
    memset(big, '#', LAYOUT_MAX_TEXT + 1);
    assert_int_equal(layout_file_parse(lf, "big", big, LAYOUT_MAX_TEXT + 1, &err), LAYOUT_E_LIMIT);
    free(big);

    memset(line, ' ', sizeof(line));
    memcpy(line, FLASH1, strlen(FLASH1));
    line[sizeof(line) - 1] = '\0';
    assert_int_equal(parse(lf, line, &err), LAYOUT_E_LIMIT);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.msg, "line longer"));

    assert_int_equal(
        layout_file_parse(lf, "nul", FLASH1 "prim\0ary", sizeof(FLASH1 "prim\0ary") - 1, &err),
        LAYOUT_E_SYNTAX);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 5);
    assert_non_null(strstr(err.msg, "NUL"));
}

/* ---- warnings --------------------------------------------------------- */

static void test_no_warnings_when_clean(void **state)
{
    layout_file_t *lf = *state;

    parse_ok(lf, FLASH1 SLOTS SCRATCH "status internal 0xF9000 8K\n");
    assert_int_equal(lf->nwarn, 0);
}

static void test_warnings(void **state)
{
    layout_file_t *lf = *state;
    unsigned line = 99;

    /* Different sizes: line of the secondary. */
    parse_ok(lf, FLASH1 "primary internal 0xC000 472K\nsecondary internal 0x82000 464K\n" SCRATCH);
    assert_true(has_warning(lf, LAYOUT_W_SLOT_SIZES, &line));
    assert_int_equal(line, 3);
    assert_int_equal(lf->nwarn, 1);
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SLOT_SIZES), "472 KiB"));
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SLOT_SIZES), "464 KiB"));
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SLOT_SIZES), "differ in size"));
    /* Primary one sector larger: the swap-move shape, said so. */
    parse_ok(lf, FLASH1 "primary internal 0xC000 472K\nsecondary internal 0x82000 468K\n" SCRATCH);
    assert_true(has_warning(lf, LAYOUT_W_SLOT_SIZES, NULL));
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SLOT_SIZES), "plus one sector"));
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SLOT_SIZES), "swap-move"));

    /* No scratch: whole-layout warning naming the engine it rules out. */
    parse_ok(lf, FLASH1 SLOTS);
    assert_true(has_warning(lf, LAYOUT_W_NO_SCRATCH, &line));
    assert_int_equal(line, 0);
    assert_int_equal(lf->nwarn, 1);
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_NO_SCRATCH), "swap-scratch"));

    /* Scratch smaller than the slots' largest sector. */
    parse_ok(lf, "flash f sectors=4x16K,1x64K,7x128K write=1\n"
                 "scratch f 0 16K\nprimary f 0x20000 384K\nsecondary f 0x80000 384K\n");
    assert_true(has_warning(lf, LAYOUT_W_SCRATCH_SMALL, &line));
    assert_int_equal(line, 2);
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SCRATCH_SMALL), "16 KiB"));
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SCRATCH_SMALL), "128 KiB"));

    /* Mixed sectors in a slot, and slots whose sectors do not line up. */
    parse_ok(lf, "flash f sectors=1x64K,3x128K,1x64K,3x128K,1x128K write=1\n"
                 "primary f 0 448K\nsecondary f 448K 448K\nscratch f 896K 128K\n");
    assert_true(has_warning(lf, LAYOUT_W_SECTORS_MIXED, &line));
    assert_int_equal(line, 2);
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SECTORS_MIXED), "1 x 64 KiB + 3 x 128 KiB"));
    assert_false(has_warning(lf, LAYOUT_W_SECTORS_DIFFER, NULL)); /* same pattern in both */
    assert_int_equal(lf->nwarn, 2);                               /* both slots mixed */
    parse_ok(lf, "flash f sectors=1x64K,6x128K,1x64K,1x128K write=1\n"
                 "primary f 0 448K\nsecondary f 448K 448K\nscratch f 896K 128K\n");
    assert_true(has_warning(lf, LAYOUT_W_SECTORS_DIFFER, &line));
    assert_int_equal(line, 3);
    assert_non_null(strstr(warn_msg(lf, LAYOUT_W_SECTORS_DIFFER), "at the start of the slots"));
    assert_false(has_warning(lf, LAYOUT_W_SLOT_SIZES, NULL));

    /* Slots on two devices with different sector sizes. */
    parse_ok(lf, FLASH1 "flash ext sectors=1024x64K write=1\n" SCRATCH
                        "primary internal 0 512K\nsecondary ext 0 512K\n");
    assert_true(has_warning(lf, LAYOUT_W_SECTORS_DIFFER, &line));
    assert_int_equal(line, 5);
    assert_true(has_warning(lf, LAYOUT_W_SCRATCH_SMALL, NULL)); /* 4K < 64K */
    assert_false(has_warning(lf, LAYOUT_W_SECTORS_MIXED, NULL));
    for (unsigned i = 0; i < lf->nwarn; i++) {
        if (lf->warn[i].code == LAYOUT_W_SECTORS_DIFFER) {
            assert_non_null(strstr(lf->warn[i].msg, "'ext'"));
            assert_non_null(strstr(lf->warn[i].msg, "swap-2n"));
        }
    }

    /* Status of one sector; a flash nobody uses. */
    parse_ok(lf, FLASH1 "flash spare sectors=16x4K write=1\n" SLOTS SCRATCH
                        "status internal 0xF9000 4K\n");
    assert_true(has_warning(lf, LAYOUT_W_STATUS_ONE_SECTOR, &line));
    assert_int_equal(line, 6);
    assert_true(has_warning(lf, LAYOUT_W_UNUSED_FLASH, &line));
    assert_int_equal(line, 2);
    assert_int_equal(lf->nwarn, 2);
    assert_int_equal(lf->warn[0].code, LAYOUT_W_UNUSED_FLASH); /* sorted by line */
    assert_string_equal(layout_code_name(LAYOUT_W_UNUSED_FLASH), "UNUSED_FLASH");
}

/* ---- several devices, ports, core's check ----------------------------- */

static int fake_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
    memset(buf, *(int *)ctx, len);
    (void)addr;
    return 0;
}

static int fake_prog(void *ctx, uint32_t addr, const void *buf, uint32_t len)
{
    (void)ctx, (void)addr, (void)buf, (void)len;
    return 0;
}

static int fake_erase(void *ctx, uint32_t addr)
{
    (void)ctx, (void)addr;
    return 0;
}

static void test_multi_device_and_ports(void **state)
{
    layout_file_t *lf = *state;
    airlock_flash_t port = {0};
    int fill = 0x5a, q;
    uint8_t buf[4];

    parse_ok(lf, "flash internal size=1M sectors=256x4K write=4\n"
                 "flash qspi size=8M sectors=2048x4K write=1 erased=0xff base=0x12000000\n"
                 "bootloader internal 0 48K\n"
                 "primary internal 0xC000 944K\n"
                 "secondary qspi 0 944K\n"
                 "scratch internal 0xF8000 4K\n"
                 "status qspi 0x7FE000 8K\n");
    assert_int_equal(lf->ndev, 2);
    q = layout_file_find_flash(lf, "qspi");
    assert_int_equal(q, 1);
    assert_int_equal(layout_file_find_flash(lf, "internal"), 0);
    assert_int_equal(layout_file_find_flash(lf, "nope"), -1);
    assert_int_equal(lf->dev[q].base, 0x12000000);
    assert_int_equal(lf->dev[q].flash.size, 8 * 1024 * 1024);
    assert_int_equal(lf->dev[q].line, 2);
    assert_ptr_equal(lf->layout.area[AIRLOCK_AREA_SECONDARY].flash, &lf->dev[q].flash);
    assert_ptr_equal(lf->layout.area[AIRLOCK_AREA_STATUS].flash, &lf->dev[q].flash);
    assert_int_equal(lf->nwarn, 0);
    assert_int_equal(airlock_layout_max_align(&lf->layout), 8);

    /* Stub ports: valid for the check, failing for I/O. */
    assert_int_equal(lf->dev[q].flash.read(NULL, 0, buf, 4), -1);
    assert_int_equal(lf->dev[q].flash.erase(NULL, 0), -1);

    /* A real port keeps the geometry and the areas' pointers. */
    port.ctx = &fill;
    port.read = fake_read;
    port.prog = fake_prog;
    port.erase = fake_erase;
    assert_int_equal(layout_file_set_ops(lf, (unsigned)q, &port), 0);
    assert_int_equal(lf->layout.area[AIRLOCK_AREA_SECONDARY].flash->read(
                         lf->layout.area[AIRLOCK_AREA_SECONDARY].flash->ctx, 0, buf, 4),
                     0);
    assert_int_equal(buf[0], 0x5a);
    assert_int_equal(lf->dev[q].flash.size, 8 * 1024 * 1024);
    assert_int_equal(airlock_layout_check(&lf->layout, NULL), 0);
    /* Device 0 still has stubs. */
    assert_int_equal(lf->dev[0].flash.read(NULL, 0, buf, 4), -1);

    /* Refused: bad index, missing functions, other geometry. */
    assert_int_equal(layout_file_set_ops(lf, 2, &port), -1);
    port.size = 4096;
    assert_int_equal(layout_file_set_ops(lf, 0, &port), -1);
    port.size = 0;
    port.write_size = 8;
    assert_int_equal(layout_file_set_ops(lf, 0, &port), -1);
    port.write_size = 4;
    assert_int_equal(layout_file_set_ops(lf, 0, &port), 0);
    port.erase = NULL;
    assert_int_equal(layout_file_set_ops(lf, 0, &port), -1);
}

/* Core's check, when something slips past the parser, is explained by area and line. */
static void test_explain_core_check(void **state)
{
    layout_file_t *lf = *state;
    airlock_err_detail_t det;
    layout_diag_t d;

    parse_ok(lf, FLASH1 SLOTS SCRATCH);

    lf->layout.area[AIRLOCK_AREA_SECONDARY].off = 0x82100;
    assert_int_not_equal(airlock_layout_check(&lf->layout, &det), 0);
    layout_explain_check(lf, &det, &d);
    assert_int_equal(d.code, LAYOUT_E_CHECK);
    assert_int_equal(d.line, 3);
    assert_non_null(strstr(d.msg, "secondary: offset 0x82100"));
    assert_non_null(strstr(d.msg, "0x82000"));
    assert_non_null(strstr(d.msg, "'internal'"));

    lf->layout.area[AIRLOCK_AREA_SECONDARY].off = 0x82000;
    lf->layout.area[AIRLOCK_AREA_SECONDARY].size = 0x75800;
    assert_int_not_equal(airlock_layout_check(&lf->layout, &det), 0);
    layout_explain_check(lf, &det, &d);
    assert_non_null(strstr(d.msg, "secondary: ends at 0xf7800"));

    lf->layout.area[AIRLOCK_AREA_SECONDARY].size = 0x100000;
    assert_int_not_equal(airlock_layout_check(&lf->layout, &det), 0);
    layout_explain_check(lf, &det, &d);
    assert_non_null(strstr(d.msg, "past the end"));

    lf->layout.area[AIRLOCK_AREA_SECONDARY].size = 0x76000;
    lf->layout.area[AIRLOCK_AREA_SCRATCH].off = 0xF7000;
    assert_int_not_equal(airlock_layout_check(&lf->layout, &det), 0);
    layout_explain_check(lf, &det, &d);
    assert_int_equal(d.line, 4);
    assert_non_null(strstr(d.msg, "scratch"));
    assert_non_null(strstr(d.msg, "overlaps secondary"));

    lf->layout.area[AIRLOCK_AREA_SCRATCH].off = 0xF8000;
    lf->layout.area[AIRLOCK_AREA_PRIMARY].flash = NULL;
    assert_int_not_equal(airlock_layout_check(&lf->layout, &det), 0);
    layout_explain_check(lf, &det, &d);
    assert_non_null(strstr(d.msg, "no primary area"));

    lf->layout.area[AIRLOCK_AREA_PRIMARY].flash = &lf->dev[0].flash;
    lf->dev[0].flash.write_size = 3;
    assert_int_not_equal(airlock_layout_check(&lf->layout, &det), 0);
    layout_explain_check(lf, &det, &d);
    assert_non_null(strstr(d.msg, "flash 'internal' rejected"));
}

/* ---- files and names -------------------------------------------------- */

static void test_open_file_or_builtin(void **state)
{
    layout_file_t *lf = *state;
    layout_diag_t err;
    char dir[] = "/tmp/airlock-layout-test.XXXXXX", old[1024], where[300];
    FILE *f;

    assert_non_null(getcwd(old, sizeof(old)));
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);

    /* No file of that name: the built-in. */
    assert_int_equal(layout_file_open(lf, "stm32f4", &err), 0);
    assert_string_equal(lf->source, "builtin:stm32f4");

    /* A file of that name wins, and its errors name the file. */
    f = fopen("stm32f4", "w");
    assert_non_null(f);
    fputs(FLASH1 "\nprimary internal 0xC000 472K\n", f);
    fclose(f);
    assert_int_equal(layout_file_open(lf, "stm32f4", &err), LAYOUT_E_MISSING);
    assert_string_equal(lf->source, "stm32f4");
    assert_string_equal(layout_diag_where(lf, &err, where, sizeof(where)), "stm32f4");

    /* layout_file_load never falls back to a built-in. */
    assert_int_equal(layout_file_load(lf, "nrf52840", &err), LAYOUT_E_IO);
    assert_non_null(strstr(err.msg, "No such file"));

    /* Neither a file nor a built-in. */
    assert_int_equal(layout_file_open(lf, "nrf99", &err), LAYOUT_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "built-ins: esp32, nrf52840"));
    assert_string_equal(layout_diag_where(lf, &err, where, sizeof(where)), "nrf99");

    /* A directory is an I/O error, not a missing file. */
    assert_int_equal(mkdir("esp32", 0700), 0);
    assert_int_equal(layout_file_open(lf, "esp32", &err), LAYOUT_E_IO);

    /* Good file. */
    f = fopen("good.layout", "w");
    assert_non_null(f);
    fputs(FLASH1 SLOTS SCRATCH, f);
    fclose(f);
    assert_int_equal(layout_file_load(lf, "good.layout", &err), 0);
    assert_string_equal(lf->source, "good.layout");

    unlink("stm32f4");
    unlink("good.layout");
    rmdir("esp32");
    assert_int_equal(chdir(old), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_helpers(void **state)
{
    char b[24];
    airlock_sector_run_t runs[2];
    layout_file_t *lf = *state;

    assert_string_equal(layout_size_str(1048576, b), "1 MiB");
    assert_string_equal(layout_size_str(0x140000, b), "1.25 MiB");
    assert_string_equal(layout_size_str(0x180000, b), "1.5 MiB");
    assert_string_equal(layout_size_str(472 * 1024, b), "472 KiB");
    assert_string_equal(layout_size_str(1100 * 1024 + 0, b), "1100 KiB");
    assert_string_equal(layout_size_str(100, b), "100 bytes");
    assert_string_equal(layout_size_str(1, b), "1 byte");
    assert_string_equal(layout_code_name(LAYOUT_E_OVERLAP), "OVERLAP");
    assert_string_equal(layout_code_name(LAYOUT_E_OK), "OK");
    assert_string_equal(layout_code_name(-999), "UNKNOWN");

    /* Sectors an area covers, truncated to max but counted in full. */
    parse_ok(lf, "flash f sectors=4x16K,1x64K,7x128K write=1\n"
                 "primary f 0x8000 0x78000\nsecondary f 0x80000 0x60000\n");
    assert_int_equal(layout_area_sectors(lf, AIRLOCK_AREA_PRIMARY, runs, 1), 3);
    assert_int_equal(runs[0].count, 2);
    assert_int_equal(runs[0].size, 16 * 1024);
    assert_int_equal(layout_area_sectors(lf, AIRLOCK_AREA_SCRATCH, runs, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins_are_the_files),
        cmocka_unit_test_setup_teardown(test_builtins_check_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_nrf52840, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_stm32f4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_esp32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_two_flashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_comments_blank_lines_crlf_tabs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sector_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_warnings_when_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warnings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_device_and_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explain_core_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_file_or_builtin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_helpers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
