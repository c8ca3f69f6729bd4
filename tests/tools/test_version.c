/*
 * Unit tests for tools/version.c: imgtool's version grammar accepted and
 * rejected exactly, header field ranges enforced at their edges, and the
 * reason text naming the part that is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "version.h"

static void expect_ok(const char *text, unsigned major, unsigned minor, unsigned rev,
                      unsigned long build)
{
    airlock_version_t v;
    char why[160] = "";

    memset(&v, 0xaa, sizeof(v));
    if (cli_version_parse(text, &v, why, sizeof(why)) != 0) {
        fail_msg("'%s' rejected: %s", text, why);
    }
    assert_int_equal(v.major, major);
    assert_int_equal(v.minor, minor);
    assert_int_equal(v.revision, rev);
    assert_int_equal(v.build, build);
}

static void expect_bad(const char *text, const char *reason_part)
{
    airlock_version_t v;
    char why[160] = "";

    if (cli_version_parse(text, &v, why, sizeof(why)) == 0) {
        fail_msg("'%s' accepted", text);
    }
    if (strstr(why, reason_part) == NULL) {
        fail_msg("'%s': reason '%s' does not mention '%s'", text, why, reason_part);
    }
}

static void test_later_parts_optional(void **state)
{
    (void)state;
    expect_ok("1", 1, 0, 0, 0);
    expect_ok("1.2", 1, 2, 0, 0);
    expect_ok("1.2.3", 1, 2, 3, 0);
    expect_ok("1.2.3+45", 1, 2, 3, 45);
    expect_ok("0", 0, 0, 0, 0);
    expect_ok("0.0.0+0", 0, 0, 0, 0);
    expect_ok("10.20.300+4000", 10, 20, 300, 4000);
}

static void test_range_edges(void **state)
{
    (void)state;
    expect_ok("255.255.65535+4294967295", 255, 255, 65535, 4294967295ul);
    expect_bad("256", "major");
    expect_bad("1.256", "minor");
    expect_bad("1.2.65536", "revision");
    expect_bad("1.2.3+4294967296", "build");
    /* Overlong numbers saturate instead of wrapping into range. */
    expect_bad("18446744073709551617", "major");
    expect_bad("1.2.3+99999999999999999999999999", "build");
}

static void test_grammar_rejects(void **state)
{
    static const char *const bad[] = {
        "",   "x",    "1.",      "1..2",     ".1",     "1.2.3.4", "1.2+3",     "1+3",
        "01", "1.02", "1.2.03",  "1.2.3+04", "1.2.3+", "+1",      "-1",        "1.-2",
        " 1", "1 ",   "1.2.3\n", "v1.2.3",   "1,2",    "0x10",    "1.2.3+4+5",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_bad(bad[i], "not a version");
    }
}

static void test_reason_truncated_safely(void **state)
{
    airlock_version_t v;
    char why[8];

    (void)state;
    memset(why, 'z', sizeof(why));
    assert_int_not_equal(cli_version_parse("x", &v, why, sizeof(why)), 0);
    assert_int_equal(why[sizeof(why) - 1], '\0');
}

static void test_format(void **state)
{
    airlock_version_t v = {1, 2, 3, 45};
    airlock_version_t max = {255, 255, 65535, 4294967295ul};
    char buf[32];

    (void)state;
    assert_string_equal(cli_version_format(&v, buf, sizeof(buf)), "1.2.3+45");
    assert_string_equal(cli_version_format(&max, buf, sizeof(buf)), "255.255.65535+4294967295");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_later_parts_optional),
        cmocka_unit_test(test_range_edges),
        cmocka_unit_test(test_grammar_rejects),
        cmocka_unit_test(test_reason_truncated_safely),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
