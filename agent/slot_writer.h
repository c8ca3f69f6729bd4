/*
 * Private to agent/download.c: a writer thread between the network and the
 * slot, so that TLS decryption (the download thread) and hashing plus
 * flash programming (airlock_ota_write, this thread) run at the same time.
 * Bytes are copied into a bounded ring and written in order; the first
 * airlock_ota_write error stops the writer and is handed back to the
 * producer, which then aborts the transfer. While a writer runs, only it
 * touches the ota: the producer reads the ota's position through
 * slot_writer_state and touches the ota again only after slot_writer_finish.
 */
#ifndef AIRLOCK_AGENT_SLOT_WRITER_H
#define AIRLOCK_AGENT_SLOT_WRITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "airlock/ota.h"

typedef struct slot_writer {
    /* all below under mu once the thread runs */
    pthread_mutex_t mu;
    pthread_cond_t more;  /* data queued, or closing */
    pthread_cond_t space; /* room freed, or an error */
    pthread_t th;
    airlock_ota_t *ota;
    uint8_t *ring;
    size_t head, len; /* oldest queued byte, queued bytes */
    bool closing;
    int err;               /* first airlock_ota_write error, 0 */
    uint64_t written;      /* bytes airlock_ota_write accepted */
    uint32_t pos, img_len; /* airlock_ota_pos / _image_len after the last write */
} slot_writer_t;

/*
 * Start a writer for ota (positioned where the bytes to come belong).
 * Returns 0, or AIRLOCK_ERR_NOMEM (no ring or no thread: write directly).
 */
int slot_writer_start(slot_writer_t *w, airlock_ota_t *ota);

/*
 * Queue n bytes (copied; waits while the ring is full). Returns 0, or the
 * writer's error: stop sending (the bytes were not queued).
 */
int slot_writer_put(slot_writer_t *w, const void *p, size_t n);

/* The ota's position and image length as of the last write. */
void slot_writer_state(slot_writer_t *w, uint32_t *pos, uint32_t *img_len);

/*
 * Wait until everything queued is written (or refused), stop the thread and
 * free the ring. Returns the writer's error (0 if none); *written: bytes
 * airlock_ota_write accepted. The ota is the caller's again afterwards.
 */
int slot_writer_finish(slot_writer_t *w, uint64_t *written);

#endif
