/*
 * CLI helpers (see util.h). Invariant of cli_write_atomic: the destination
 * path only ever holds its old contents or the complete new contents; a
 * failed or interrupted write leaves at most nothing behind (the temporary is
 * unlinked on error and on SIGINT/SIGTERM/SIGHUP).
 */
#define _POSIX_C_SOURCE 200809L

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *cmd_name = "airlock";

/* Temporary file being written, for the signal handler (NULL when none). */
static char *volatile pending_tmp;

void cli_set_cmd(const char *name)
{
    cmd_name = name;
}

const char *cli_cmd(void)
{
    return cmd_name;
}

/* The last error cli_fail printed, for commands that also report it as JSON. */
static char last_error[1024];

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    fprintf(stderr, "airlock %s: error: %s\n", cmd_name, last_error);
    return code;
}

const char *cli_last_error(void)
{
    return last_error;
}

void cli_note(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "airlock %s: ", cmd_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_signal(int sig)
{
    char *tmp = pending_tmp;

    if (tmp != NULL) {
        unlink(tmp); /* async-signal-safe */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_install_signal_cleanup(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaction(sigs[i], &sa, NULL);
    }
}

int cli_read_file(const char *path, const char *what, uint8_t **data, size_t *len)
{
    size_t cap = 1u << 16, n = 0;
    uint8_t *buf;
    int fd;

    fd = open(path, O_RDONLY);
    if (fd < 0) {
        return cli_fail(EXIT_IO, "cannot open %s '%s': %s", what, path, strerror(errno));
    }
    buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return cli_fail(EXIT_INTERNAL, "out of memory reading %s '%s'", what, path);
    }
    for (;;) {
        ssize_t r;

        if (n == cap) {
            uint8_t *nb = (cap > SIZE_MAX / 2) ? NULL : realloc(buf, cap * 2);

            if (nb == NULL) {
                free(buf);
                close(fd);
                return cli_fail(EXIT_INTERNAL, "out of memory reading %s '%s' (%zu bytes so far)",
                                what, path, n);
            }
            buf = nb;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0) {
            int e = errno;

            if (e == EINTR) {
                continue;
            }
            free(buf);
            close(fd);
            return cli_fail(EXIT_IO, "cannot read %s '%s': %s", what, path, strerror(e));
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return EXIT_OK_;
}

/* Directory part of path ("." when it has none), malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n;
    char *d;

    if (slash == NULL) {
        return strdup(".");
    }
    n = (slash == path) ? 1u : (size_t)(slash - path);
    d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Make a rename durable; failure here is not worth failing the command. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int cli_write_atomic(const char *path, const char *what, const void *data, size_t len, mode_t mode,
                     bool clobber)
{
    const char *base = strrchr(path, '/');
    char *dir = NULL, *tmp = NULL;
    mode_t mask;
    int fd = -1, rc = EXIT_IO, e;
    size_t tlen;

    base = (base == NULL) ? path : base + 1;
    if (*base == '\0') {
        return cli_fail(EXIT_USAGE, "%s '%s' names a directory, not a file", what, path);
    }
    if (!clobber && access(path, F_OK) == 0) {
        return cli_fail(EXIT_USAGE, "%s '%s' already exists; not overwriting it (use --force)",
                        what, path);
    }
    dir = dir_of(path);
    tlen = (dir ? strlen(dir) : 0) + strlen(base) + 16;
    tmp = (dir != NULL) ? malloc(tlen) : NULL;
    if (tmp == NULL) {
        free(dir);
        return cli_fail(EXIT_INTERNAL, "out of memory writing %s '%s'", what, path);
    }
    snprintf(tmp, tlen, "%s/.%s.XXXXXX", dir, base);

    fd = mkstemp(tmp);
    if (fd < 0) {
        e = errno;
        cli_fail(EXIT_IO, "cannot create a temporary file in '%s' for %s '%s': %s", dir, what, path,
                 strerror(e));
        goto out_free;
    }
    pending_tmp = tmp;

    mask = umask(0);
    umask(mask);
    if (write_all(fd, data, len) != 0 || fchmod(fd, mode & ~mask) != 0 || fsync(fd) != 0) {
        e = errno;
        cli_fail(EXIT_IO, "cannot write %s '%s' (temporary '%s'): %s", what, path, tmp,
                 strerror(e));
        goto out_unlink;
    }
    if (close(fd) != 0) {
        fd = -1;
        e = errno;
        cli_fail(EXIT_IO, "cannot write %s '%s' (temporary '%s'): %s", what, path, tmp,
                 strerror(e));
        goto out_unlink;
    }
    fd = -1;

    if (clobber) {
        if (rename(tmp, path) != 0) {
            e = errno;
            cli_fail(EXIT_IO, "cannot rename '%s' to %s '%s': %s", tmp, what, path, strerror(e));
            goto out_unlink;
        }
    } else if (link(tmp, path) != 0) {
        e = errno;
        if (e == EEXIST) {
            rc = cli_fail(EXIT_USAGE, "%s '%s' already exists; not overwriting it (use --force)",
                          what, path);
            goto out_unlink;
        }
        /* No hard links here (some FUSE/FAT mounts): fall back to a checked rename. */
        if (access(path, F_OK) == 0 || rename(tmp, path) != 0) {
            e = errno;
            cli_fail(EXIT_IO, "cannot create %s '%s': %s", what, path, strerror(e));
            goto out_unlink;
        }
    } else {
        unlink(tmp);
    }
    pending_tmp = NULL;
    sync_dir(dir);
    rc = EXIT_OK_;
    goto out_free;

out_unlink:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    pending_tmp = NULL;
out_free:
    free(tmp);
    free(dir);
    return rc;
}

bool cli_parse_uint(const char *s, uint64_t *out)
{
    unsigned base = 10;
    uint64_t n = 0;
    bool any = false;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
        base = 8;
        s += 2;
    } else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2;
        s += 2;
    } else if (s[0] == '0' && s[1] != '\0') {
        /* Python rejects "010" (ambiguous octal); so do we, except all zeros. */
        const char *z = s;

        while (*z == '0') {
            z++;
        }
        if (*z != '\0') {
            return false;
        }
    }
    for (; *s != '\0'; s++) {
        unsigned d;

        if (*s >= '0' && *s <= '9') {
            d = (unsigned)(*s - '0');
        } else if (*s >= 'a' && *s <= 'f') {
            d = (unsigned)(*s - 'a' + 10);
        } else if (*s >= 'A' && *s <= 'F') {
            d = (unsigned)(*s - 'A' + 10);
        } else {
            return false;
        }
        if (d >= base || n > (UINT64_MAX - d) / base) {
            return false;
        }
        n = n * base + d;
        any = true;
    }
    if (!any) {
        return false;
    }
    *out = n;
    return true;
}

int cli_parse_u32_opt(const char *opt, const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v;

    if (!cli_parse_uint(s, &v)) {
        return cli_fail(EXIT_USAGE,
                        "%s: '%s' is not a non-negative integer (use decimal, or 0x/0o/0b "
                        "prefixed hex/octal/binary)",
                        opt, s);
    }
    if (v > max) {
        return cli_fail(EXIT_USAGE, "%s: %s is out of range (at most %lu = 0x%lx)", opt, s,
                        (unsigned long)max, (unsigned long)max);
    }
    *out = (uint32_t)v;
    return EXIT_OK_;
}

char *cli_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15u];
    }
    out[2 * len] = '\0';
    return out;
}
