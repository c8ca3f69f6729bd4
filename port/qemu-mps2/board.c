/*
 * mps2-an385 board glue (board.h): UART0, semihosting, TIMER0, the control
 * block the harness writes, the no-init shared block and the flash port with
 * its power cut. Board state is here, never in core; it must never write the
 * control block (the harness owns it).
 */
#include "board.h"

#include <stdarg.h>
#include <string.h>

#include "cortexm.h"

#define UART0_DATA CM_REG(0x40004000u)
#define UART0_STATE CM_REG(0x40004004u)
#define UART0_CTRL CM_REG(0x40004008u)
#define UART0_BAUDDIV CM_REG(0x40004010u)
#define TIMER0_CTRL CM_REG(0x40000000u)
#define TIMER0_VALUE CM_REG(0x40000004u)
#define TIMER0_RELOAD CM_REG(0x40000008u)
#define TIMER1_CTRL CM_REG(0x40001000u)
#define TIMER1_VALUE CM_REG(0x40001004u)
#define TIMER1_RELOAD CM_REG(0x40001008u)
#define TIMER1_IRQ 9u

static cm_flash_t flash;
static uint32_t prog_map[(BOARD_FLASH_SIZE / BOARD_WRITE_SIZE + 31u) / 32u];
static airlock_layout_t layout;
static board_ctl_t ctl;
__attribute__((section(".noinit"))) static board_shared_t shared;

/* ---- semihosting ------------------------------------------------------------ */

static int semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

void board_exit(int code)
{
    const uint32_t args[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    for (;;) {
        (void)semihost(0x20u /* SYS_EXIT_EXTENDED */, args);
    }
}

int board_file_open(const char *path)
{
    const uint32_t args[3] = {(uint32_t)(uintptr_t)path, 1u /* "rb" */, (uint32_t)strlen(path)};
    return semihost(0x01u /* SYS_OPEN */, args);
}

int board_file_read(int fd, void *buf, uint32_t len)
{
    const uint32_t args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, len};
    int left = semihost(0x06u /* SYS_READ: returns bytes NOT read */, args);
    return left < 0 || (uint32_t)left > len ? -1 : (int)(len - (uint32_t)left);
}

int board_file_len(int fd)
{
    const uint32_t args[1] = {(uint32_t)fd};
    return semihost(0x0cu /* SYS_FLEN */, args);
}

void board_file_close(int fd)
{
    const uint32_t args[1] = {(uint32_t)fd};
    (void)semihost(0x02u /* SYS_CLOSE */, args);
}

/* ---- console ------------------------------------------------------------------- */

static void putc_(char c)
{
    /* TX full: wait, but not forever (a console nobody reads must not hang the boot). */
    for (uint32_t spin = 0; (UART0_STATE & 1u) && spin < 100000u; spin++) {
    }
    UART0_DATA = (uint8_t)c;
}

static void put_num(uint32_t v, unsigned base, int width, char pad, bool neg)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    if (neg) {
        tmp[n++] = '-';
    }
    for (; width > n; width--) {
        putc_(pad);
    }
    while (n > 0) {
        putc_(tmp[--n]);
    }
}

void board_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            if (*p == '\n') {
                putc_('\r');
            }
            putc_(*p);
            continue;
        }
        p++;
        char pad = ' ';
        int width = 0;
        if (*p == '0') {
            pad = '0';
            p++;
        }
        while (*p >= '0' && *p <= '9') {
            width = width * 10 + (*p++ - '0');
        }
        switch (*p) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++) {
                putc_(*s);
            }
            break;
        }
        case 'c':
            putc_((char)va_arg(ap, int));
            break;
        case 'd': {
            int v = va_arg(ap, int);
            put_num(v < 0 ? 0u - (uint32_t)v : (uint32_t)v, 10, width, pad, v < 0);
            break;
        }
        case 'u':
            put_num(va_arg(ap, unsigned), 10, width, pad, false);
            break;
        case 'x':
            put_num(va_arg(ap, unsigned), 16, width, pad, false);
            break;
        case '%':
            putc_('%');
            break;
        default:
            putc_('?');
            break;
        }
    }
    va_end(ap);
}

/* ---- clock, faults ----------------------------------------------------------- */

void cm_board_early(void)
{
    /* Only the bootloader's reset restarts the count; the app keeps it running. */
    if (!(TIMER0_CTRL & 1u)) {
        TIMER0_RELOAD = 0xffffffffu;
        TIMER0_VALUE = 0xffffffffu;
        TIMER0_CTRL = 1u;
        /*
         * First start of a power-on (the no-init block is still zero: .data
         * and .bss do not exist yet, but these two are read straight from
         * RAM and flash): arm the harness's instruction-count cut.
         */
        const volatile board_ctl_t *c = (const volatile board_ctl_t *)(uintptr_t)BOARD_CTL_ADDR;
        if (shared.magic != BOARD_SHARED_MAGIC && c->magic == BOARD_CTL_MAGIC &&
            c->cut_ticks != 0) {
            TIMER1_RELOAD = c->cut_ticks;
            TIMER1_VALUE = c->cut_ticks;
            TIMER1_CTRL = 1u | (1u << 3); /* enable, interrupt enable */
            CM_NVIC_ISER(0) = 1u << TIMER1_IRQ;
        }
    }
}

uint32_t board_ticks(void)
{
    return 0xffffffffu - TIMER0_VALUE;
}

void cm_board_fault(uint32_t vector)
{
    board_printf("board: fault, exception %u\n", (unsigned)vector);
    board_exit(BOARD_EXIT_FAULT);
}

void cm_board_irq(uint32_t irq)
{
    if (irq == TIMER1_IRQ) {
        board_printf("board: POWER CUT at tick %u (instruction count), flash operation %u\n",
                     (unsigned)ctl.cut_ticks, (unsigned)shared.ops);
        board_exit(BOARD_EXIT_CUT);
    }
    board_printf("board: unexpected interrupt %u\n", (unsigned)irq);
    board_exit(BOARD_EXIT_FAULT);
}

/* ---- flash, layout, control -------------------------------------------------- */

static void power_off(void *ctx)
{
    (void)ctx;
    board_printf("board: POWER CUT at flash operation %u (%s)\n", (unsigned)shared.ops,
                 flash.cut_tear == CM_FLASH_TEAR_HALF   ? "half done"
                 : flash.cut_tear == CM_FLASH_TEAR_DONE ? "done"
                                                        : "not started");
    board_exit(BOARD_EXIT_CUT);
}

static void trace_op(void *ctx)
{
    (void)ctx;
    shared.last_op_ticks = board_ticks();
    if (shared.first_op_ticks == 0) {
        shared.first_op_ticks = shared.last_op_ticks;
    }
}

void board_init(bool is_bootloader)
{
    UART0_BAUDDIV = 16u;
    UART0_CTRL = 1u; /* TX enable */

    const board_ctl_t *c = (const board_ctl_t *)(uintptr_t)BOARD_CTL_ADDR;
    if (c->magic == BOARD_CTL_MAGIC) {
        memcpy(&ctl, c, sizeof ctl);
        ctl.path[sizeof ctl.path - 1] = '\0';
    } else {
        memset(&ctl, 0, sizeof ctl);
    }
    if (ctl.max_boots == 0) {
        ctl.max_boots = 16;
    }
    if (shared.magic != BOARD_SHARED_MAGIC) { /* power-on: RAM reads zero */
        memset(&shared, 0, sizeof shared);
        shared.magic = BOARD_SHARED_MAGIC;
    }
    if (is_bootloader) {
        shared.boots++;
        shared.first_op_ticks = 0;
        shared.last_op_ticks = 0;
    }

    (void)cm_flash_init(&flash, (uint8_t *)(uintptr_t)BOARD_FLASH_BASE, BOARD_FLASH_SIZE,
                        BOARD_SECTOR_SIZE, BOARD_WRITE_SIZE, prog_map, sizeof prog_map);
    flash.ops = &shared.ops;
    flash.cut_at = ctl.cut_at;
    flash.cut_tear = (int)ctl.cut_tear;
    flash.power_off = power_off;
    flash.trace = trace_op;

    memset(&layout, 0, sizeof layout);
    layout.area[AIRLOCK_AREA_STATUS] =
        (airlock_area_t){&flash.port, BOARD_STATUS_OFF, BOARD_STATUS_SIZE};
    layout.area[AIRLOCK_AREA_PRIMARY] =
        (airlock_area_t){&flash.port, BOARD_PRIMARY_OFF, BOARD_PRIMARY_SIZE};
    layout.area[AIRLOCK_AREA_SECONDARY] =
        (airlock_area_t){&flash.port, BOARD_SECONDARY_OFF, BOARD_SECONDARY_SIZE};
}

const airlock_layout_t *board_layout(void)
{
    return &layout;
}

const board_ctl_t *board_ctl(void)
{
    return &ctl;
}

board_shared_t *board_shared(void)
{
    return &shared;
}

cm_flash_t *board_flash(void)
{
    return &flash;
}
