/*
 * Example firmware for the mps2-an385 board, run from the primary slot by
 * the airlock bootloader: prints its version and how it was booted, runs a
 * health check, confirms itself (the APP_NO_CONFIRM variant never does and
 * resets instead), and streams a new image from a host file into the
 * secondary with airlock_ota_*. It never writes flash except through them.
 */
#include <stdint.h>
#include <string.h>

#include "airlock/crypto_mbedtls.h"
#include "airlock/ota.h"
#include "board.h"
#include "cortexm.h"

extern const unsigned char airlock_pub_key[];
extern const unsigned int airlock_pub_key_len;
extern const int airlock_pub_key_type;

static uint8_t work_buf[4096] __attribute__((aligned(8)));
static uint8_t crypto_heap[10 * 1024] __attribute__((aligned(8)));
static uint8_t chunk_buf[4096];
static airlock_ota_t ota;

/* Health check inputs: startup must have copied .data and zeroed .bss. */
static volatile uint32_t data_word = 0xa5c3e1f0u;
static volatile uint32_t bss_word;

static void print_version(const char *what, const airlock_version_t *v)
{
    board_printf("%s%u.%u.%u+%u", what, (unsigned)v->major, (unsigned)v->minor,
                 (unsigned)v->revision, (unsigned)v->build);
}

static bool health_check(void)
{
    uint32_t vtor = CM_SCB_VTOR;
    return data_word == 0xa5c3e1f0u && bss_word == 0 &&
           vtor == BOARD_FLASH_BASE + BOARD_PRIMARY_OFF + BOARD_HDR_SIZE;
}

static void refuse(const char *step, int rc)
{
    const airlock_err_detail_t *d = airlock_ota_detail(&ota);
    board_printf("app: update refused at %s: %s (%s; field %s at offset %u)\n", step,
                 airlock_errname(rc), airlock_strerror(rc), d->field ? d->field : "-",
                 (unsigned)d->offset);
    airlock_ota_abort(&ota);
}

/* Stream the host file ctl.path into the secondary; 0 when it is pending. */
static int stream_update(const airlock_boot_cfg_t *cfg, const board_ctl_t *ctl)
{
    int fd = board_file_open(ctl->path);
    if (fd < 0) {
        board_printf("app: cannot open %s on the host\n", ctl->path);
        return -1;
    }
    int len = board_file_len(fd);
    uint32_t chunk = ctl->chunk ? ctl->chunk : 256u;
    if (chunk > sizeof chunk_buf) {
        chunk = sizeof chunk_buf;
    }
    board_printf("app: streaming %s (%d bytes, %u-byte writes)\n", ctl->path, len, (unsigned)chunk);
    int rc = airlock_ota_begin(&ota, cfg, len > 0 ? (uint32_t)len : 0u, NULL);
    if (rc) {
        board_file_close(fd);
        refuse("begin", rc);
        return rc;
    }
    for (;;) {
        int n = board_file_read(fd, chunk_buf, chunk);
        if (n <= 0) {
            break;
        }
        rc = airlock_ota_write(&ota, chunk_buf, (size_t)n);
        if (rc) {
            board_file_close(fd);
            refuse("write", rc);
            return rc;
        }
    }
    board_file_close(fd);
    rc = airlock_ota_end(&ota);
    if (rc) {
        refuse("end", rc);
        return rc;
    }
    bool perm = (ctl->flags & BOARD_FLAG_PERMANENT) != 0;
    rc = airlock_ota_set_pending(&ota, perm);
    if (rc) {
        refuse("set_pending", rc);
        return rc;
    }
    print_version("app: update ", &ota.hdr.version);
    board_printf(" verified and pending (%s)\n", perm ? "permanent" : "test");
    return 0;
}

/* A flash rule broken this power-on ends the run with its own exit status. */
static void check_flash_rules(void)
{
    cm_flash_t *fl = board_flash();
    if (fl->violations != 0) {
        board_printf("app: FLASH RULE broken: error %d at 0x%x\n", fl->last_err,
                     (unsigned)fl->last_addr);
        board_exit(BOARD_EXIT_FLASH_RULE);
    }
}

int main(void)
{
    board_init(false);
    board_shared_t *sh = board_shared();
    const board_ctl_t *ctl = board_ctl();
    (void)airlock_crypto_mbedtls_set_heap(crypto_heap, sizeof crypto_heap);

    const airlock_pubkey_t keys[] = {
        {airlock_pub_key_type, airlock_pub_key, airlock_pub_key_len},
    };
    const airlock_boot_cfg_t cfg = {
        .layout = board_layout(),
        .engine = &airlock_engine_swap_2n,
        .crypto = &airlock_crypto_mbedtls,
        .keys = keys,
        .nkeys = 1,
        .max_trials = 2,
        .buf = work_buf,
        .buf_len = sizeof work_buf,
    };

    airlock_ota_status_t st;
    int rc = airlock_ota_state(&cfg, &st);
    if (rc) {
        board_printf("app: cannot read the device state: %s\n", airlock_errname(rc));
        board_exit(BOARD_EXIT_APP_FAIL);
    }
    print_version("app: running version ", &st.running_version);
    board_printf(" (%s) boot=%s confirmed=%u trial=%u reverted=%u\n", APP_VARIANT,
                 airlock_boot_action_name(sh->action), st.confirmed ? 1u : 0u,
                 st.on_trial ? 1u : 0u, st.reverted ? 1u : 0u);
    board_printf("app: reset-to-jump ticks=%u airlock_boot ticks=%u flash ops this power-on=%u\n",
                 (unsigned)sh->jump_ticks, (unsigned)sh->boot_ticks, (unsigned)sh->ops);
    board_printf("app: last boot erases=%u progs=%u prog_bytes=%u reads=%u read_bytes=%u\n",
                 (unsigned)sh->erases, (unsigned)sh->progs, (unsigned)sh->prog_bytes,
                 (unsigned)sh->reads, (unsigned)sh->read_bytes);

    if (!health_check()) {
        board_printf("app: health check FAILED\n");
        board_exit(BOARD_EXIT_APP_FAIL);
    }
    board_printf("app: health check ok\n");

#ifdef APP_NO_CONFIRM
    if (!st.confirmed) {
        board_printf("app: NOT confirming (no-confirm variant): resetting\n");
        cm_system_reset();
    }
#else
    if (!st.confirmed) {
        rc = airlock_ota_confirm(&cfg);
        if (rc) {
            board_printf("app: confirm failed: %s\n", airlock_errname(rc));
            board_exit(BOARD_EXIT_APP_FAIL);
        }
        board_printf("app: confirmed\n");
    }
#endif

    if (ctl->cmd == BOARD_CMD_STREAM && !sh->streamed) {
        sh->streamed = 1;
        if (stream_update(&cfg, ctl) == 0) {
            check_flash_rules(); /* before the exit or the reset hides a broken rule */
            if (ctl->flags & BOARD_FLAG_STOP_PENDING) {
                board_printf("app: stopping with the update pending (flash ops %u)\n",
                             (unsigned)sh->ops);
                board_exit(BOARD_EXIT_OK);
            }
            board_printf("app: resetting to install\n");
            cm_system_reset();
        }
    }
    check_flash_rules();
    board_printf("app: done (flash ops this power-on %u)\n", (unsigned)sh->ops);
    board_exit(BOARD_EXIT_OK);
}
