/*
 * Unit tests for core/record.c: record_crc32 against the standard CRC-32
 * check values and a bit-at-a-time reference (whole buffers and split at
 * random points, as zlib's crc32(crc, buf, len) continues), and records
 * encoded bit for bit as before. Seed: $AIRLOCK_SEED or 0x3c2c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "record.h"
#include "airlock/crc32.h"

static uint64_t base_seed = 0x3c2c;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The definition: reflected polynomial 0xEDB88320, one bit at a time. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0xedb88320u : c >> 1;
        }
    }
    return ~c;
}

static uint32_t crc_str(const char *s)
{
    return airlock_crc32(0, (const uint8_t *)s, (uint32_t)strlen(s));
}

static void test_check_values(void **state)
{
    (void)state;
    uint8_t buf[32];
    assert_int_equal(crc_str("123456789"), 0xcbf43926u);
    assert_int_equal(airlock_crc32(0, NULL, 0), 0);
    assert_int_equal(airlock_crc32(0, (const uint8_t *)"", 0), 0);
    assert_int_equal(crc_str("a"), 0xe8b7be43u);
    assert_int_equal(crc_str("The quick brown fox jumps over the lazy dog"), 0x414fa339u);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(airlock_crc32(0, buf, sizeof(buf)), 0x190a55adu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(airlock_crc32(0, buf, sizeof(buf)), 0xff6cab0bu);
    /* n = 0 continues without changing anything */
    assert_int_equal(airlock_crc32(0xcbf43926u, buf, 0), 0xcbf43926u);
}

/* Every byte value, then random buffers split at random points. */
static void test_matches_reference(void **state)
{
    (void)state;
    enum { LEN = 4096 };
    static uint8_t buf[LEN];
    uint64_t rng = base_seed;
    for (uint32_t v = 0; v < 256; v++) {
        uint8_t b = (uint8_t)v;
        assert_int_equal(airlock_crc32(0, &b, 1), crc_bitwise(0, &b, 1));
        assert_int_equal(airlock_crc32(0x12345678u, &b, 1), crc_bitwise(0x12345678u, &b, 1));
    }
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(rng_next(&rng) % (LEN + 1));
        for (size_t i = 0; i < n; i++) {
            buf[i] = (uint8_t)rng_next(&rng);
        }
        uint32_t want = crc_bitwise(0, buf, n);
        assert_int_equal(airlock_crc32(0, buf, (uint32_t)n), want);
        /* the same bytes fed in 1..8 pieces of random lengths */
        uint32_t c = 0;
        size_t done = 0;
        int pieces = 1 + (int)(rng_next(&rng) % 8);
        for (int k = 0; k < pieces && done < n; k++) {
            size_t m = k == pieces - 1 ? n - done : (size_t)(rng_next(&rng) % (n - done + 1));
            c = airlock_crc32(c, buf + done, (uint32_t)m);
            done += m;
        }
        c = airlock_crc32(c, buf + done, (uint32_t)(n - done));
        if (c != want) {
            fail_msg("split CRC %08x, whole %08x (round %d, seed %llu)", c, want, round,
                     (unsigned long long)base_seed);
        }
    }
}

/* Records as the 4-bit-table CRC encoded them: flash written before still decodes. */
static void test_record_bits_unchanged(void **state)
{
    (void)state;
    static const uint8_t want_ff[RECORD_BYTES] = {0x08, 0x70, 0x59, 0x22, 0x23, 0x42, 0x49, 0x1c,
                                                  0x74, 0x17, 0x6f, 0x01, 0x77, 0x25, 0x0d, 0x2a};
    static const uint8_t want_00[RECORD_BYTES] = {0x81, 0xde, 0xfb, 0xed, 0xea, 0xbb, 0x80, 0x80,
                                                  0x80, 0x80, 0xc0, 0xbd, 0xba, 0x86, 0xbc, 0xaa};
    uint8_t rec[32];
    uint32_t type, a, b;
    record_encode(rec, 32, 0xff, 8, 0x12345678u, 0xcbf43926u);
    assert_memory_equal(rec, want_ff, RECORD_BYTES);
    assert_true(record_erased(rec + RECORD_BYTES, 32 - RECORD_BYTES, 0xff));
    assert_true(record_decode(rec, 0xff, &type, &a, &b));
    assert_int_equal(type, 8);
    assert_int_equal(a, 0x12345678u);
    assert_int_equal(b, 0xcbf43926u);
    record_encode(rec, RECORD_BYTES, 0x00, 1, 0xdeadbeefu, 1);
    assert_memory_equal(rec, want_00, RECORD_BYTES);
    assert_true(record_decode(rec, 0x00, &type, &a, &b));
    assert_int_equal(a, 0xdeadbeefu);
    /* one payload bit flipped: the CRC catches it */
    rec[3] ^= 0x01;
    assert_false(record_decode(rec, 0x00, &type, &a, &b));
}

static int setup(void **state)
{
    (void)state;
    const char *s = getenv("AIRLOCK_SEED");
    if (s) {
        base_seed = strtoull(s, NULL, 0);
    }
    print_message("record tests, seed %llu (AIRLOCK_SEED to repeat)\n",
                  (unsigned long long)base_seed);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_record_bits_unchanged),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
