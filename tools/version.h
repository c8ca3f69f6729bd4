/*
 * Version strings for `airlock sign -v`: imgtool's MAJOR[.MINOR[.REVISION[+BUILD]]]
 * grammar (decimal, no leading zeros) with the header's field ranges checked.
 * Pure functions: no I/O, no allocation, usable from unit tests.
 */
#ifndef AIRLOCK_TOOLS_VERSION_H
#define AIRLOCK_TOOLS_VERSION_H

#include <stddef.h>

#include "airlock/image.h"

/*
 * Parse text into *v (missing parts are 0). Returns 0, or -1 with a sentence
 * saying what is wrong in why[why_len] (never more than why_len - 1 chars).
 * Ranges: major, minor 0..255; revision 0..65535; build 0..4294967295.
 */
int cli_version_parse(const char *text, airlock_version_t *v, char *why, size_t why_len);

/* Format v as "M.m.r+b" into buf; returns buf. 24 bytes always suffice. */
char *cli_version_format(const airlock_version_t *v, char *buf, size_t len);

#endif
