/*
 * libFuzzer target for the device's DDI client (agent/ddi.c): everything a
 * server (or whoever answers in its name) can send it, in any order, and a
 * stored persist record that may be garbage. Asserts what the caller relies
 * on: every request it hands out is NUL-terminated within its documented
 * bounds, and the machine never stops asking for something.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/ddi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input layout:
 *   [0]        flags: bit 0 the persist record below is used; bit 1 the boot
 *              was a revert; bit 2 the running image is confirmed; bit 3 pending
 *   [1 .. 128] a persist record as stored on flash (decoded, maybe refused)
 *   then, per answer the machine asks for: status selector (1 byte), length
 *   (2 bytes, little endian, clipped to what is left), body; a DOWNLOAD takes
 *   one byte as its outcome (0: verified, else an error code).
 */

static const int statuses[] = {0, 200, 201, 204, 206, 301, 400, 401, 403, 404, 408,
                               409, 410, 429, 500, 502, 503};

static void check_req(const airlock_ddi_req_t *r)
{
    if (r->kind < AIRLOCK_DDI_REQ_HTTP || r->kind > AIRLOCK_DDI_REQ_ABORT) {
        abort();
    }
    if (r->kind == AIRLOCK_DDI_REQ_HTTP || r->kind == AIRLOCK_DDI_REQ_DOWNLOAD) {
        if (!r->url || strnlen(r->url, AIRLOCK_DDI_URL_MAX) >= AIRLOCK_DDI_URL_MAX) {
            abort();
        }
    }
    if (r->kind == AIRLOCK_DDI_REQ_HTTP) {
        if (!r->method || (strcmp(r->method, "GET") && strcmp(r->method, "PUT") &&
                           strcmp(r->method, "POST"))) {
            abort();
        }
        if (r->body && (r->body_len >= AIRLOCK_DDI_BODY_MAX || strlen(r->body) != r->body_len)) {
            abort();
        }
    }
    if (r->kind == AIRLOCK_DDI_REQ_DOWNLOAD &&
        (!r->version || strnlen(r->version, AIRLOCK_DDI_VERSION_MAX) >= AIRLOCK_DDI_VERSION_MAX)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static airlock_ddi_t d; /* about 6 KiB: not on the fuzzer's stack */
    airlock_ddi_persist_t persist;
    airlock_ddi_boot_t boot;
    memset(&persist, 0, sizeof(persist));
    memset(&boot, 0, sizeof(boot));
    if (size < 1 + AIRLOCK_DDI_PERSIST_LEN) {
        return 0;
    }
    uint8_t flags = data[0];
    if ((flags & 1) && airlock_ddi_persist_decode(data + 1, &persist) != 0) {
        memset(&persist, 0, sizeof(persist));
    }
    /* A record that decodes must encode back to the same fields. */
    if (flags & 1) {
        uint8_t again[AIRLOCK_DDI_PERSIST_LEN];
        airlock_ddi_persist_t back;
        airlock_ddi_persist_encode(&persist, again);
        if (airlock_ddi_persist_decode(again, &back) != 0 ||
            memcmp(&back.action_id, &persist.action_id, sizeof(back.action_id)) != 0 ||
            back.phase != persist.phase) {
            abort();
        }
    }
    strcpy(boot.running_version, "1.1.0");
    boot.confirmed = flags & 4;
    boot.reverted = flags & 2;
    boot.pending = flags & 8;
    if (boot.reverted) {
        strcpy(boot.reverted_version, "1.2.0");
        strcpy(boot.reason, "trial boots used up");
    }
    airlock_ddi_cfg_t cfg = {
        .base_url = "https://updates.example:8443",
        .tenant = "DEFAULT",
        .controller_id = "dev-1",
        .auth = "TargetToken abc",
        .retry_ms = 100,
        .default_poll_ms = 1000,
    };
    if (airlock_ddi_init(&d, &cfg, &persist, &boot) != 0) {
        abort(); /* a valid cfg is never refused, whatever the record said */
    }
    const uint8_t *p = data + 1 + AIRLOCK_DDI_PERSIST_LEN;
    size_t left = size - 1 - AIRLOCK_DDI_PERSIST_LEN;
    for (int step = 0; step < 64; step++) {
        airlock_ddi_req_t req;
        memset(&req, 0, sizeof(req));
        airlock_ddi_next(&d, &req);
        check_req(&req);
        (void)airlock_ddi_persist_dirty(&d);
        if (strnlen(airlock_ddi_error(&d), AIRLOCK_DDI_MSG_MAX) >= AIRLOCK_DDI_MSG_MAX) {
            abort();
        }
        switch (req.kind) {
        case AIRLOCK_DDI_REQ_HTTP: {
            if (left < 3) {
                return 0;
            }
            int status = statuses[p[0] % (sizeof(statuses) / sizeof(statuses[0]))];
            size_t n = (size_t)p[1] | (size_t)p[2] << 8;
            p += 3;
            left -= 3;
            n = n < left ? n : left;
            /* the body as a network buffer: exactly n bytes, no terminator */
            char *body = malloc(n ? n : 1);
            if (!body) {
                return 0;
            }
            memcpy(body, p, n);
            (void)airlock_ddi_response(&d, status, body, n);
            free(body);
            p += n;
            left -= n;
            break;
        }
        case AIRLOCK_DDI_REQ_DOWNLOAD: {
            if (left < 1) {
                return 0;
            }
            airlock_ddi_req_t prog;
            if (airlock_ddi_progress(&d, req.size / 2, req.size, &prog)) {
                check_req(&prog);
            }
            int err = p[0] ? -(int)(p[0] % 48) - 1 : 0;
            airlock_ddi_download_done(&d, err, err ? "refused \"quoted\" \\ message\n" : NULL);
            p++;
            left--;
            break;
        }
        case AIRLOCK_DDI_REQ_INSTALL:
            return 0;
        default: /* SLEEP, ABORT: nothing to hand back */
            if (left == 0) {
                return 0;
            }
            break;
        }
    }
    return 0;
}
