/*
 * The download's writer thread (slot_writer.h). A ring of RING bytes; the
 * writer takes at most CHUNK contiguous bytes at a time, writes them with
 * the lock released, then frees them. It never reorders, never writes after
 * an error, and the ring is freed only after the thread is joined.
 */
#define _POSIX_C_SOURCE 200809L

#include "slot_writer.h"

#include <stdlib.h>
#include <string.h>

#include "airlock/err.h"

/* What may be received ahead of the flash: bounds what a late refusal wastes. */
#define RING (512u * 1024u)
#define CHUNK (128u * 1024u)

static void *run(void *arg)
{
    slot_writer_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->len == 0 && !w->closing) {
            pthread_cond_wait(&w->more, &w->mu);
        }
        if (w->len == 0) {
            break; /* closing and drained */
        }
        size_t n = w->len < RING - w->head ? w->len : RING - w->head;
        n = n < CHUNK ? n : CHUNK;
        const uint8_t *p = w->ring + w->head;
        pthread_mutex_unlock(&w->mu);
        /* The producer never writes into queued bytes, so p..p+n is ours. */
        int rc = airlock_ota_write(w->ota, p, n);
        uint32_t pos = airlock_ota_pos(w->ota), img_len = airlock_ota_image_len(w->ota);
        pthread_mutex_lock(&w->mu);
        w->pos = pos;
        w->img_len = img_len;
        if (rc) {
            w->err = rc;
            w->len = 0; /* what is left is never written */
        } else {
            w->written += n;
            w->head = (w->head + n) % RING;
            w->len -= n;
        }
        pthread_cond_broadcast(&w->space);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int slot_writer_start(slot_writer_t *w, airlock_ota_t *ota)
{
    memset(w, 0, sizeof(*w));
    w->ota = ota;
    w->pos = airlock_ota_pos(ota);
    w->img_len = airlock_ota_image_len(ota);
    w->ring = malloc(RING);
    if (!w->ring) {
        return AIRLOCK_ERR_NOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->more, NULL);
    pthread_cond_init(&w->space, NULL);
    if (pthread_create(&w->th, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->space);
        pthread_cond_destroy(&w->more);
        pthread_mutex_destroy(&w->mu);
        free(w->ring);
        w->ring = NULL;
        return AIRLOCK_ERR_NOMEM;
    }
    return 0;
}

int slot_writer_put(slot_writer_t *w, const void *p, size_t n)
{
    const uint8_t *src = p;
    pthread_mutex_lock(&w->mu);
    while (n > 0 && !w->err) {
        while (w->len == RING && !w->err) {
            pthread_cond_wait(&w->space, &w->mu);
        }
        if (w->err) {
            break;
        }
        size_t tail = (w->head + w->len) % RING;
        size_t room = RING - w->len;
        size_t k = n < room ? n : room;
        k = k < RING - tail ? k : RING - tail; /* up to the ring's end; the rest next turn */
        memcpy(w->ring + tail, src, k);
        w->len += k;
        src += k;
        n -= k;
        pthread_cond_signal(&w->more);
    }
    int err = w->err;
    pthread_mutex_unlock(&w->mu);
    return err;
}

void slot_writer_state(slot_writer_t *w, uint32_t *pos, uint32_t *img_len)
{
    pthread_mutex_lock(&w->mu);
    *pos = w->pos;
    *img_len = w->img_len;
    pthread_mutex_unlock(&w->mu);
}

int slot_writer_finish(slot_writer_t *w, uint64_t *written)
{
    pthread_mutex_lock(&w->mu);
    w->closing = true;
    pthread_cond_signal(&w->more);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    int err = w->err;
    *written = w->written;
    pthread_cond_destroy(&w->space);
    pthread_cond_destroy(&w->more);
    pthread_mutex_destroy(&w->mu);
    free(w->ring);
    w->ring = NULL;
    return err;
}
