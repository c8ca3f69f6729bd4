/*
 * Cortex-M3 startup shared by the bootloader and applications: the vector
 * table (16 system + 48 external), Reset_Handler (copy .data, zero .bss,
 * call main), exception dispatch to the board, reset and chain-load.
 * Never touches the NOINIT region: it carries state across resets.
 */
#include <stdint.h>

#include "cortexm.h"

#define CM_NUM_IRQS 48u

/* Linker script symbols (port/cortex-m/sections.ld). */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

__attribute__((noreturn)) void Reset_Handler(void);
void Default_Handler(void);
void Irq_Handler(void);

void Reset_Handler(void)
{
    cm_board_early();
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    (void)main();
    cm_board_fault(1); /* main returned: treat like a fault */
}

static uint32_t active_vector(void)
{
    return CM_SCB_ICSR & 0x1ffu;
}

void Default_Handler(void)
{
    cm_board_fault(active_vector());
}

void Irq_Handler(void)
{
    cm_board_irq(active_vector() - 16u);
}

typedef void (*cm_vector_t)(void);

__attribute__((section(".vectors"), used)) const cm_vector_t cm_vectors[16 + CM_NUM_IRQS] = {
    [0] = (cm_vector_t)(uintptr_t)&_estack,
    [1] = Reset_Handler,
    [2] = Default_Handler,  /* NMI */
    [3] = Default_Handler,  /* HardFault */
    [4] = Default_Handler,  /* MemManage */
    [5] = Default_Handler,  /* BusFault */
    [6] = Default_Handler,  /* UsageFault */
    [11] = Default_Handler, /* SVCall */
    [12] = Default_Handler, /* DebugMon */
    [14] = Default_Handler, /* PendSV */
    [15] = Default_Handler, /* SysTick */
#define IRQ8(n)                                                                                    \
    [16 + (n)] = Irq_Handler, [17 + (n)] = Irq_Handler, [18 + (n)] = Irq_Handler,                  \
          [19 + (n)] = Irq_Handler, [20 + (n)] = Irq_Handler, [21 + (n)] = Irq_Handler,            \
          [22 + (n)] = Irq_Handler, [23 + (n)] = Irq_Handler
    IRQ8(0),
    IRQ8(8),
    IRQ8(16),
    IRQ8(24),
    IRQ8(32),
    IRQ8(40),
#undef IRQ8
};

void cm_system_reset(void)
{
    __asm volatile("dsb" ::: "memory");
    CM_SCB_AIRCR = (0x05FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}

void cm_jump(uint32_t vt_addr)
{
    const volatile uint32_t *vt = (const volatile uint32_t *)(uintptr_t)vt_addr;
    uint32_t sp = vt[0];
    uint32_t pc = vt[1];

    cm_irq_disable();
    CM_SYST_CSR = 0;
    CM_SCB_ICSR = 1u << 25; /* PENDSTCLR */
    for (uint32_t i = 0; i < (CM_NUM_IRQS + 31u) / 32u; i++) {
        CM_NVIC_ICER(i) = 0xffffffffu;
        CM_NVIC_ICPR(i) = 0xffffffffu;
    }
    CM_SCB_VTOR = vt_addr;
    __asm volatile("dsb\n isb" ::: "memory");
    cm_irq_enable();
    __asm volatile("msr msp, %0\n"
                   "bx  %1\n"
                   :
                   : "r"(sp), "r"(pc)
                   : "memory");
    __builtin_unreachable();
}
