/*
 * Version string parsing for the CLI, matching imgtool's regular expression
 * ^([1-9]\d*|0)(\.([1-9]\d*|0)(\.([1-9]\d*|0)(\+([1-9]\d*|0))?)?)?$ exactly,
 * then checking each part against its header field width (imgtool leaves
 * that to struct.pack; we say which part is out of range).
 */
#include "version.h"

#include <stdint.h>
#include <stdio.h>

/*
 * Read one decimal number at *p ("0" or [1-9][0-9]*). Saturates at
 * UINT64_MAX so overlong input is reported as out of range, not wrapped.
 * Returns 0 and advances *p, or -1 if no valid number starts there.
 */
static int read_number(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t n = 0;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    if (*s == '0' && s[1] >= '0' && s[1] <= '9') {
        return -1; /* leading zero */
    }
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        n = (n > (UINT64_MAX - d) / 10) ? UINT64_MAX : n * 10 + d;
        s++;
    }
    *p = s;
    *out = n;
    return 0;
}

int cli_version_parse(const char *text, airlock_version_t *v, char *why, size_t why_len)
{
    static const char *const names[4] = {"major", "minor", "revision", "build"};
    static const uint64_t max[4] = {255u, 255u, 65535u, 4294967295u};
    /* Separator that must precede part i (part 0 has none). */
    static const char sep[4] = {0, '.', '.', '+'};
    uint64_t part[4] = {0, 0, 0, 0};
    const char *p = text;
    int i;

    for (i = 0; i < 4; i++) {
        if (i > 0) {
            if (*p == '\0') {
                break; /* later parts are optional */
            }
            if (*p != sep[i]) {
                goto syntax;
            }
            p++;
        }
        if (read_number(&p, &part[i]) != 0) {
            goto syntax;
        }
    }
    if (*p != '\0') {
        goto syntax;
    }
    for (i = 0; i < 4; i++) {
        if (part[i] > max[i]) {
            snprintf(why, why_len, "%s number is out of range (0..%llu)", names[i],
                     (unsigned long long)max[i]);
            return -1;
        }
    }
    v->major = (uint8_t)part[0];
    v->minor = (uint8_t)part[1];
    v->revision = (uint16_t)part[2];
    v->build = (uint32_t)part[3];
    return 0;

syntax:
    snprintf(why, why_len,
             "not a version: expected MAJOR[.MINOR[.REVISION[+BUILD]]], decimal numbers "
             "without leading zeros (e.g. 1.2.3+45)");
    return -1;
}

char *cli_version_format(const airlock_version_t *v, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u+%lu", (unsigned)v->major, (unsigned)v->minor,
             (unsigned)v->revision, (unsigned long)v->build);
    return buf;
}
