/*
 * The airlock bootloader for mps2-an385: runs core's airlock_boot (swap-2n,
 * ECDSA P-256 via mbedTLS, the key compiled in), prints its decision on the
 * UART and chain-loads the primary image by its vector table. It never jumps
 * to an image that did not verify in this boot.
 */
#include <stdint.h>

#include "airlock/boot.h"
#include "board.h"
#include "cortexm.h"

/* The trusted key (examples/qemu-app/keys/test_p256_pub.c: a TEST key). */
extern const unsigned char airlock_pub_key[];
extern const unsigned int airlock_pub_key_len;
extern const int airlock_pub_key_type;

/* Trial boots an unconfirmed update gets before it is reverted. */
#define MAX_TRIALS 2u

static airlock_boot_t boot;
static uint8_t work_buf[4096] __attribute__((aligned(8)));
#ifdef AIRLOCK_BOOT_FULL_CRYPTO
/* crypto/mbedtls.c: every key type mbedTLS 2.28 has (the size comparison build). */
#include "airlock/crypto_mbedtls.h"
#define BOOT_CRYPTO airlock_crypto_mbedtls
#define boot_crypto_set_heap airlock_crypto_mbedtls_set_heap
static uint8_t crypto_heap[10 * 1024] __attribute__((aligned(8)));
#else
/* SHA-256 + ECDSA P-256 only: the bootloader the tests run. */
#include "crypto_p256.h"
#define BOOT_CRYPTO airlock_crypto_p256
#define boot_crypto_set_heap airlock_crypto_p256_set_heap
static uint8_t crypto_heap[4 * 1024] __attribute__((aligned(8)));
#endif

static void print_version(const airlock_version_t *v)
{
    board_printf("%u.%u.%u+%u", (unsigned)v->major, (unsigned)v->minor, (unsigned)v->revision,
                 (unsigned)v->build);
}

int main(void)
{
    board_init(true);
    const board_ctl_t *ctl = board_ctl();
    board_shared_t *sh = board_shared();
    bool quiet = (ctl->flags & BOARD_FLAG_QUIET) != 0;

    if (!quiet) {
        board_printf("airlock-boot: start (boot %u of this power-on, flash ops so far %u)\n",
                     (unsigned)sh->boots, (unsigned)sh->ops);
    }
    if (sh->boots > ctl->max_boots) {
        board_printf("airlock-boot: %u boots in one power-on: giving up\n", (unsigned)sh->boots);
        board_exit(BOARD_EXIT_TOO_MANY_BOOTS);
    }
    (void)boot_crypto_set_heap(crypto_heap, sizeof crypto_heap);

    const airlock_pubkey_t keys[] = {
        {airlock_pub_key_type, airlock_pub_key, airlock_pub_key_len},
    };
    const airlock_boot_cfg_t cfg = {
        .layout = board_layout(),
        .engine = &airlock_engine_swap_2n,
        .crypto = &BOOT_CRYPTO,
        .keys = keys,
        .nkeys = 1,
        .max_trials = MAX_TRIALS,
        .buf = work_buf,
        .buf_len = sizeof work_buf,
    };
    airlock_boot_result_t res;
    uint32_t t0 = board_ticks();
    int rc = airlock_boot(&boot, &cfg, &res);
    uint32_t t1 = board_ticks();

    sh->action = res.action;
    sh->boot_ticks = t1 - t0;
    sh->erases = boot.stats.erases;
    sh->progs = boot.stats.progs;
    sh->prog_bytes = boot.stats.prog_bytes;
    sh->reads = boot.stats.reads;
    sh->read_bytes = boot.stats.read_bytes;

    cm_flash_t *fl = board_flash();
    if (fl->violations != 0) {
        board_printf("airlock-boot: FLASH RULE broken: error %d at 0x%x (%u violations)\n",
                     fl->last_err, (unsigned)fl->last_addr, (unsigned)fl->violations);
        board_exit(BOARD_EXIT_FLASH_RULE);
    }
    if (!quiet || rc != 0) {
        board_printf("airlock-boot: action=%s rc=%d (%s) version=",
                     airlock_boot_action_name(res.action), rc, airlock_errname(rc));
        print_version(&res.version);
        board_printf(" confirmed=%u: %s\n", res.confirmed ? 1u : 0u,
                     res.message ? res.message : "");
        if (res.err != 0) {
            board_printf("airlock-boot: why: %s (field %s at offset %u)\n",
                         airlock_errname(res.err), res.detail.field ? res.detail.field : "-",
                         (unsigned)res.detail.offset);
        }
        board_printf("airlock-boot: erases=%u progs=%u prog_bytes=%u reads=%u read_bytes=%u "
                     "boot_ticks=%u flash_ticks=%u..%u\n",
                     (unsigned)sh->erases, (unsigned)sh->progs, (unsigned)sh->prog_bytes,
                     (unsigned)sh->reads, (unsigned)sh->read_bytes, (unsigned)sh->boot_ticks,
                     (unsigned)sh->first_op_ticks, (unsigned)sh->last_op_ticks);
    }
    if (rc == AIRLOCK_ERR_IO) {
        board_printf("airlock-boot: flash I/O error: resetting to resume\n");
        cm_system_reset();
    }
    if (rc != 0 || res.slot != AIRLOCK_AREA_PRIMARY) {
        board_printf("airlock-boot: NOTHING TO BOOT: %s (field %s at %u)\n", airlock_strerror(rc),
                     res.detail.field ? res.detail.field : "-", (unsigned)res.detail.offset);
        board_exit(BOARD_EXIT_BOOT_FAILED);
    }
    /* Checked twice (a glitched branch above must not reach the jump). The
     * second check reads copies the compiler must load again: without
     * volatile it folds this test into the one above. The vector table must
     * sit where VTOR can point: aligned to the table's size rounded up to a
     * power of two (16 + 32 vectors here: 256 bytes). An image signed with a
     * header size that breaks this is refused, not jumped into. */
    volatile int rc2 = rc;
    volatile int slot2 = res.slot;
    uint32_t vt = BOARD_FLASH_BASE + BOARD_PRIMARY_OFF + res.image_off;
    if ((vt & 0xffu) != 0) {
        board_printf("airlock-boot: NOTHING TO BOOT: vector table at 0x%x is not 256-byte aligned "
                     "(sign with a header size that is a multiple of 256)\n",
                     (unsigned)vt);
        board_exit(BOARD_EXIT_BOOT_FAILED);
    }
    if (rc2 == 0 && slot2 == AIRLOCK_AREA_PRIMARY && res.action != AIRLOCK_BOOT_FAILED) {
        sh->jump_ticks = board_ticks();
        if (!quiet) {
            board_printf("airlock-boot: jump to 0x%x\n", (unsigned)vt);
        }
        cm_jump(vt);
    }
    board_exit(BOARD_EXIT_BOOT_FAILED);
}
