/*
 * Board glue for QEMU's mps2-an385 (Cortex-M3): the flash layout on the
 * file-backed 16 MiB at 0x21000000, the CMSDK UART0 console, semihosting
 * (exit with a status, host file reads), TIMER0 as a tick counter, and the
 * harness's control block. Test board only: it must never be mistaken for
 * a production port (its "power cut" is a semihosting exit).
 */
#ifndef AIRLOCK_QEMU_MPS2_BOARD_H
#define AIRLOCK_QEMU_MPS2_BOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "airlock/layout.h"
#include "cm_flash.h"

/* The flash device: the first MiB of the file-backed region, 4 KiB sectors, word writes. */
#define BOARD_FLASH_BASE 0x21000000u
#define BOARD_FLASH_SIZE 0x100000u
#define BOARD_SECTOR_SIZE 0x1000u
#define BOARD_WRITE_SIZE 4u

/* Areas (offsets in the device). Keep tests/qemu and the app's linker script in step. */
#define BOARD_STATUS_OFF 0x000000u
#define BOARD_STATUS_SIZE 0x2000u
#define BOARD_PRIMARY_OFF 0x010000u
#define BOARD_PRIMARY_SIZE 0x50000u
#define BOARD_SECONDARY_OFF 0x060000u
#define BOARD_SECONDARY_SIZE 0x51000u /* one 4 KiB chunk more: swap-2n's staging offset */
#define BOARD_HDR_SIZE 0x200u         /* images are signed with -H 0x200 */

/* The harness's control block, outside the device, in the file's last sector. */
#define BOARD_CTL_ADDR 0x21fff000u
#define BOARD_CTL_MAGIC 0x54435141u /* "AQCT" */

enum board_cmd {
    BOARD_CMD_NONE = 0,   /* boot and run */
    BOARD_CMD_STREAM = 1, /* the application streams ctl.path into the secondary */
};

enum board_flag {
    BOARD_FLAG_STOP_PENDING = 1u << 0, /* after set_pending: exit instead of reset */
    BOARD_FLAG_PERMANENT = 1u << 1,    /* request a permanent install */
    BOARD_FLAG_QUIET = 1u << 2,        /* bootloader: no UART output before the jump */
};

/* Written by the harness into the flash file; read-only for the guest. */
typedef struct board_ctl {
    uint32_t magic;
    uint32_t cut_at;    /* tear the n-th prog/erase of this power-on (1-based), 0: never */
    uint32_t cut_tear;  /* enum cm_flash_tear */
    uint32_t cmd;       /* enum board_cmd */
    uint32_t flags;     /* enum board_flag */
    uint32_t max_boots; /* resets per power-on before giving up (0: 16) */
    uint32_t chunk;     /* stream: bytes per airlock_ota_write (0: 256) */
    /*
     * Instruction-count power cut: TIMER1 ticks (25 MHz of QEMU's virtual
     * clock: 40 instructions each under -icount shift=0) after the first
     * bootloader start of the power-on, then its interrupt cuts power, whatever
     * the CPU is doing (interrupts are never masked before the jump). 0: none.
     */
    uint32_t cut_ticks;
    char path[96]; /* stream: host file (semihosting, relative to QEMU's cwd) */
} board_ctl_t;

/* State that survives resets within one power-on (no-init RAM, zero at power-on). */
#define BOARD_SHARED_MAGIC 0x48534c41u /* "ALSH" */
typedef struct board_shared {
    uint32_t magic;
    uint32_t ops;   /* flash prog + erase calls this power-on */
    uint32_t boots; /* bootloader starts this power-on */
    /* What the bootloader handed over (for the application to report). */
    int32_t action;
    uint32_t boot_ticks; /* TIMER0 ticks inside airlock_boot */
    uint32_t jump_ticks; /* TIMER0 ticks from reset to the jump */
    uint32_t erases, progs, prog_bytes, reads, read_bytes;
    uint32_t streamed; /* the application streamed ctl.path already */
    /* TIMER0 ticks at the first and the latest flash prog/erase of this boot. */
    uint32_t first_op_ticks, last_op_ticks;
} board_shared_t;

/* Semihosting exit statuses (QEMU's own exit status). */
enum board_exit {
    BOARD_EXIT_OK = 0,
    BOARD_EXIT_APP_FAIL = 1,
    BOARD_EXIT_BOOT_FAILED = 2,
    BOARD_EXIT_FLASH_RULE = 3,
    BOARD_EXIT_FAULT = 4,
    BOARD_EXIT_TOO_MANY_BOOTS = 5,
    BOARD_EXIT_CUT = 42, /* the harness's power cut */
};

/*
 * Set up console, control block, shared state and the flash port (with the
 * harness's power cut armed). The shared state is reset at power-on (RAM
 * reads zero); is_bootloader counts a boot.
 */
void board_init(bool is_bootloader);

/* The layout over the flash port. */
const airlock_layout_t *board_layout(void);
const board_ctl_t *board_ctl(void);
board_shared_t *board_shared(void);
cm_flash_t *board_flash(void);

/* Console: printf subset (%s %c %d %u %x, width and 0 flag for numbers). */
void board_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* TIMER0 ticks (25 MHz) since the bootloader started it at reset. */
uint32_t board_ticks(void);

/* End QEMU with status code (semihosting SYS_EXIT_EXTENDED). */
__attribute__((noreturn)) void board_exit(int code);

/*
 * Host file access over semihosting: open for reading (returns a handle
 * >= 0 or -1), read (bytes read, 0 at end, -1 on error), close, length.
 */
int board_file_open(const char *path);
int board_file_read(int fd, void *buf, uint32_t len);
int board_file_len(int fd);
void board_file_close(int fd);

#endif /* AIRLOCK_QEMU_MPS2_BOARD_H */
