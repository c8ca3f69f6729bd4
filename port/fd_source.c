/*
 * An image source over a file descriptor (include/airlock/fd_source.h).
 * Host only: pread, retried on EINTR and short reads.
 */
#define _POSIX_C_SOURCE 200809L

#include "airlock/fd_source.h"

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

static int fd_read(void *ctx, uint32_t off, void *buf, uint32_t len)
{
    const int *fd = ctx;
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(*fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        off += (uint32_t)n;
        len -= (uint32_t)n;
    }
    return 0;
}

void airlock_fd_source(airlock_source_t *src, const int *fd, uint32_t size)
{
    src->read = fd_read;
    src->ctx = (void *)(uintptr_t)fd;
    src->size = size;
}
