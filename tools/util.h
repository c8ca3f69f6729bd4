/*
 * Shared helpers of the airlock CLI: error reporting with the subcommand's
 * name, whole-file reads, atomic file replacement, number parsing, hex.
 * Every helper that can fail prints one complete message itself and returns
 * an exit code (tools/exitcodes.h), so callers just propagate it.
 */
#ifndef AIRLOCK_TOOLS_UTIL_H
#define AIRLOCK_TOOLS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "exitcodes.h"

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Name used in messages: "sign" gives "airlock sign: error: ...". */
void cli_set_cmd(const char *name);
const char *cli_cmd(void);

/* Print "airlock CMD: error: <message>\n" to stderr and return code. */
int cli_fail(int code, const char *fmt, ...) CLI_PRINTF(2, 3);

/* The message of the last cli_fail ("" if none yet). */
const char *cli_last_error(void);

/* Print "airlock CMD: <message>\n" to stderr (progress and summaries). */
void cli_note(const char *fmt, ...) CLI_PRINTF(1, 2);

/* Unlink a half-written temporary file if SIGINT/SIGTERM/SIGHUP arrive. */
void cli_install_signal_cleanup(void);

/*
 * Read all of path into a malloc'd buffer (*data, freed by the caller;
 * non-NULL even for an empty file). what names the file's role in messages
 * ("INFILE", "key file"). Returns EXIT_OK_ or EXIT_IO.
 */
int cli_read_file(const char *path, const char *what, uint8_t **data, size_t *len);

/*
 * Replace path with data atomically: write a temporary file in the same
 * directory, fsync it, then rename it over path (or, when clobber is false,
 * link it to path so an existing file is never replaced, even by a race).
 * mode is masked with the umask. On any failure the temporary is removed and
 * path is untouched. Returns EXIT_OK_, EXIT_IO, or EXIT_USAGE (path exists
 * and clobber is false).
 */
int cli_write_atomic(const char *path, const char *what, const void *data, size_t len, mode_t mode,
                     bool clobber);

/*
 * Parse an unsigned integer the way imgtool does (Python int(s, 0)):
 * decimal without leading zeros, or 0x / 0o / 0b prefixed. false on syntax
 * error or overflow of 64 bits.
 */
bool cli_parse_uint(const char *s, uint64_t *out);

/*
 * Parse option value s (option named opt, e.g. "-S/--slot-size") into *out,
 * checking 0..max. Returns EXIT_OK_ or EXIT_USAGE with a message.
 */
int cli_parse_u32_opt(const char *opt, const char *s, uint32_t max, uint32_t *out);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). Returns out. */
char *cli_hex(const uint8_t *data, size_t len, char *out);

#endif
