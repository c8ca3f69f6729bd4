/*
 * Cortex-M3/M4 core helpers for a bootloader and its application: the few
 * System Control Block, NVIC and SysTick registers they touch, the reset
 * request and the chain-load into an image by its vector table. No board
 * knowledge here; never touches a peripheral outside the core's private bus.
 */
#ifndef AIRLOCK_CORTEXM_H
#define AIRLOCK_CORTEXM_H

#include <stdint.h>

#define CM_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define CM_SCB_ICSR CM_REG(0xE000ED04u)
#define CM_SCB_VTOR CM_REG(0xE000ED08u)
#define CM_SCB_AIRCR CM_REG(0xE000ED0Cu)
#define CM_SYST_CSR CM_REG(0xE000E010u)
#define CM_NVIC_ICER(i) CM_REG(0xE000E180u + 4u * (i))
#define CM_NVIC_ICPR(i) CM_REG(0xE000E280u + 4u * (i))
#define CM_NVIC_ISER(i) CM_REG(0xE000E100u + 4u * (i))

/*
 * Functions the board provides (no weak symbols: a board that forgets one
 * fails to link).
 * cm_board_early: called by Reset_Handler first thing, before .data and
 * .bss exist (so it must touch neither): start a clock, a cycle counter.
 * cm_board_fault: a fault or an unexpected exception (vector number); must
 * not return.
 * cm_board_irq: an external interrupt (IRQ number, vector - 16).
 */
void cm_board_early(void);
__attribute__((noreturn)) void cm_board_fault(uint32_t vector);
void cm_board_irq(uint32_t irq);

/* The application entry (startup.c calls it after .data/.bss are set up). */
int main(void);

static inline void cm_irq_disable(void)
{
    __asm volatile("cpsid i" ::: "memory");
}

static inline void cm_irq_enable(void)
{
    __asm volatile("cpsie i" ::: "memory");
}

/* Request a system reset (AIRCR.SYSRESETREQ) and wait for it. */
__attribute__((noreturn)) void cm_system_reset(void);

/*
 * Hand over to the image whose vector table is at vt_addr (aligned as VTOR
 * requires): stop SysTick, disable and clear every NVIC interrupt, set
 * VTOR, load MSP and branch to the reset handler, with interrupts enabled
 * as after a reset. Never returns; nothing of the caller's stack is used
 * after MSP changes.
 */
__attribute__((noreturn)) void cm_jump(uint32_t vt_addr);

#endif /* AIRLOCK_CORTEXM_H */
