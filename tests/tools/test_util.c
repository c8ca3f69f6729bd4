/*
 * Unit tests for tools/util.c: imgtool-compatible integer parsing, hex, whole
 * file reads, and the atomic-write contract (old contents or new contents,
 * never a partial file; no temporary left behind; no-clobber really refuses).
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

#include "util.h"

static void test_parse_uint(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"0", 0},
        {"00", 0},
        {"32", 32},
        {"0x20", 32},
        {"0X20", 32},
        {"0xFfFf", 65535},
        {"0o17", 15},
        {"0O17", 15},
        {"0b101", 5},
        {"0B1", 1},
        {"4294967296", 4294967296ull},
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "",
        "x",
        "0x",
        "0b",
        "0o",
        "010",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1k",
        "0x1g",
        "0b2",
        "0o8",
        "18446744073709551616",
        "0x10000000000000000",
        "1_000",
    };
    uint64_t v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = 12345;
        if (!cli_parse_uint(good[i].s, &v) || v != good[i].v) {
            fail_msg("'%s' parsed wrong", good[i].s);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cli_parse_uint(bad[i], &v)) {
            fail_msg("'%s' accepted", bad[i]);
        }
    }
}

static void test_parse_u32_opt(void **state)
{
    uint32_t v = 7;

    (void)state;
    assert_int_equal(cli_parse_u32_opt("-S", "0xffffffff", UINT32_MAX, &v), EXIT_OK_);
    assert_int_equal(v, UINT32_MAX);
    assert_int_equal(cli_parse_u32_opt("-S", "0x100000000", UINT32_MAX, &v), EXIT_USAGE);
    assert_int_equal(cli_parse_u32_opt("-H", "65536", 0xffff, &v), EXIT_USAGE);
    assert_int_equal(cli_parse_u32_opt("-H", "junk", 0xffff, &v), EXIT_USAGE);
    assert_int_equal(v, UINT32_MAX); /* untouched on failure */
}

static void test_hex(void **state)
{
    const uint8_t b[] = {0x00, 0x7f, 0x80, 0xff, 0x0a};
    char out[2 * sizeof(b) + 1];

    (void)state;
    assert_string_equal(cli_hex(b, sizeof(b), out), "007f80ff0a");
    assert_string_equal(cli_hex(b, 0, out), "");
}

/* Test directory, created per test. */
static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/airlock-test-util.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    (void)state;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            if (unlink(p) != 0) {
                rmdir(p);
            }
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return rmdir(dir);
}

static int entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static void expect_contents(const char *path, const char *want)
{
    uint8_t *data = NULL;
    size_t len = 0;

    assert_int_equal(cli_read_file(path, "test file", &data, &len), EXIT_OK_);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    free(data);
}

static void test_atomic_write(void **state)
{
    char path[128];
    struct stat st;
    mode_t old;

    (void)state;
    snprintf(path, sizeof(path), "%s/out.bin", dir);
    old = umask(022);
    assert_int_equal(cli_write_atomic(path, "OUTFILE", "first", 5, 0666, true), EXIT_OK_);
    expect_contents(path, "first");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644); /* 0666 under umask 022 */

    assert_int_equal(cli_write_atomic(path, "OUTFILE", "second", 6, 0666, true), EXIT_OK_);
    expect_contents(path, "second");

    /* No clobber: refused, old contents kept. */
    assert_int_equal(cli_write_atomic(path, "key file", "third", 5, 0600, false), EXIT_USAGE);
    expect_contents(path, "second");
    assert_int_equal(entries(), 1); /* no temporary left */

    /* No clobber on a new path works and keeps the mode. */
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    assert_int_equal(cli_write_atomic(path, "key file", "secret", 6, 0600, false), EXIT_OK_);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(entries(), 2);
    umask(old);
}

static void test_atomic_write_failures(void **state)
{
    char path[128];

    (void)state;
    /* Directory missing: nothing created anywhere. */
    snprintf(path, sizeof(path), "%s/missing/out.bin", dir);
    assert_int_equal(cli_write_atomic(path, "OUTFILE", "x", 1, 0666, true), EXIT_IO);
    assert_int_equal(entries(), 0);

    /* Target is a directory: the rename fails, the temporary is removed. */
    snprintf(path, sizeof(path), "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(cli_write_atomic(path, "OUTFILE", "x", 1, 0666, true), EXIT_IO);
    assert_int_equal(entries(), 1);

    /* A path naming a directory (trailing slash) is refused up front. */
    snprintf(path, sizeof(path), "%s/", dir);
    assert_int_equal(cli_write_atomic(path, "OUTFILE", "x", 1, 0666, true), EXIT_USAGE);
    assert_int_equal(entries(), 1);
}

static void test_read_file(void **state)
{
    char path[128];
    uint8_t *data = NULL;
    size_t len = 99;
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "%s/nope", dir);
    assert_int_equal(cli_read_file(path, "INFILE", &data, &len), EXIT_IO);

    snprintf(path, sizeof(path), "%s/empty", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(cli_read_file(path, "INFILE", &data, &len), EXIT_OK_);
    assert_non_null(data);
    assert_int_equal(len, 0);
    free(data);

    /* Bigger than the first read buffer (64 KiB): the growth path. */
    snprintf(path, sizeof(path), "%s/big", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 200000; i++) {
        fputc(i & 0xff, f);
    }
    fclose(f);
    assert_int_equal(cli_read_file(path, "INFILE", &data, &len), EXIT_OK_);
    assert_int_equal(len, 200000);
    assert_int_equal(data[199999], 199999 & 0xff);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_parse_u32_opt),
        cmocka_unit_test(test_hex),
        cmocka_unit_test_setup_teardown(test_atomic_write, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write_failures, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_read_file, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
