/*
 * Unit tests for tools/exitcodes.c: every airlock_err value maps to the exit
 * code of its class (the contract scripts rely on), and values outside the
 * enum are internal errors rather than success.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "airlock/err.h"
#include "exitcodes.h"

static void test_each_error_class(void **state)
{
    static const struct {
        int err;
        int exit;
    } map[] = {
        {AIRLOCK_ERR_OK, EXIT_OK_},
        {AIRLOCK_ERR_INVAL, EXIT_USAGE},
        {AIRLOCK_ERR_IO, EXIT_IO},
        {AIRLOCK_ERR_NOMEM, EXIT_INTERNAL},
        {AIRLOCK_ERR_BAD_MAGIC, EXIT_MALFORMED},
        {AIRLOCK_ERR_BAD_HDR_SIZE, EXIT_MALFORMED},
        {AIRLOCK_ERR_OUT_OF_BOUNDS, EXIT_MALFORMED},
        {AIRLOCK_ERR_BAD_TLV_INFO, EXIT_MALFORMED},
        {AIRLOCK_ERR_BAD_TLV, EXIT_MALFORMED},
        {AIRLOCK_ERR_DUP_TLV, EXIT_MALFORMED},
        {AIRLOCK_ERR_BAD_FLAGS, EXIT_UNSUPPORTED},
        {AIRLOCK_ERR_NO_HASH, EXIT_HASH},
        {AIRLOCK_ERR_HASH_MISMATCH, EXIT_HASH},
        {AIRLOCK_ERR_NO_SIGNATURE, EXIT_SIGNATURE},
        {AIRLOCK_ERR_BAD_SIGNATURE, EXIT_SIGNATURE},
        {AIRLOCK_ERR_KEY_MISMATCH, EXIT_UNTRUSTED},
        {AIRLOCK_ERR_UNKNOWN_KEY, EXIT_UNTRUSTED},
        {AIRLOCK_ERR_UNSUPPORTED, EXIT_UNSUPPORTED},
        {AIRLOCK_ERR_CRYPTO, EXIT_INTERNAL},
        {AIRLOCK_ERR_BAD_SEC_CNT, EXIT_MALFORMED},
        {AIRLOCK_ERR_BAD_KEY, EXIT_KEY},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (airlock_exit_for_err(map[i].err) != map[i].exit) {
            fail_msg("%s -> %d, expected %d", airlock_errname(map[i].err),
                     airlock_exit_for_err(map[i].err), map[i].exit);
        }
    }
}

/* A new error added to AIRLOCK_ERR_LIST must get a deliberate class. */
static void test_list_covered(void **state)
{
    (void)state;
#define CHECK_(name, value, msg)                                                                   \
    if ((value) != 0) {                                                                            \
        assert_int_not_equal(airlock_exit_for_err(value), EXIT_OK_);                               \
    }
    AIRLOCK_ERR_LIST(CHECK_)
#undef CHECK_
}

static void test_unknown_values(void **state)
{
    (void)state;
    assert_int_equal(airlock_exit_for_err(-999), EXIT_INTERNAL);
    assert_int_equal(airlock_exit_for_err(7), EXIT_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_error_class),
        cmocka_unit_test(test_list_covered),
        cmocka_unit_test(test_unknown_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
