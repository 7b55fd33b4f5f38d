/* Startup code of the emulated board qemu-m4 (QEMU mps2-an386, Cortex-M4F): vector table,
 * reset handler (FPU on, .data copied, .bss zeroed, C++ constructors), fault handlers.
 * Interrupt handlers are weak aliases of one default that reports the fault and ends
 * QEMU; the board glue (platform_qemu_m4.c) overrides the ones it uses. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void __libc_init_array(void);
void tinyopt_qemu_fault(const char *what);   /* platform_qemu_m4.c: report, then exit */

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
/* mps2-an386 external interrupts 0 and 1: CMSDK UART0 receive and transmit. */
void UART0RX_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UART0TX_Handler(void) __attribute__((weak, alias("Default_Handler")));

__attribute__((section(".isr_vector"), used))
void (*const tinyopt_vectors[])(void) = {
    (void (*)(void))(&_estack),
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    UART0RX_Handler,
    UART0TX_Handler,
};

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  /* CP10/CP11 full access: the code is built with -mfloat-abi=hard */
  SCB_CPACR |= 0xFu << 20;
  __asm volatile("dsb\n\tisb" ::: "memory");
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  __libc_init_array();
  main();
  tinyopt_qemu_fault("main returned");
}

void HardFault_Handler(void) { tinyopt_qemu_fault("hardfault"); }

void Default_Handler(void) { tinyopt_qemu_fault("unexpected interrupt"); }

/* newlib's __libc_init_array calls _init/_fini, which bare-metal code leaves empty. */
void _init(void) {}
void _fini(void) {}
