/*
 * An image source (airlock_source_t) over an open file descriptor, for host
 * programs (the CLI, the server): reads with pread, so several sources may
 * share one descriptor. Not for the freestanding build.
 */
#ifndef AIRLOCK_FD_SOURCE_H
#define AIRLOCK_FD_SOURCE_H

#include <stdint.h>

#include "airlock/image.h"

/*
 * Make *src read size bytes of the file open at *fd (fd must outlive src;
 * src keeps a pointer to it). A read past the end of the file, or an I/O
 * error, fails the read (the image code reports IO).
 */
void airlock_fd_source(airlock_source_t *src, const int *fd, uint32_t size);

#endif
