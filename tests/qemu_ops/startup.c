/* Bare-metal start of the per-operator aot checks on the emulated cores (tests/aot_qemu.py):
 * vector table, .data/.bss set-up, FPU on where there is one, and output through Arm
 * semihosting (QEMU -semihosting), so one small ELF runs on every QEMU Cortex-M machine. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void Reset_Handler(void);
void Fault_Handler(void);

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t to_vectors[16] = {
    (vector_t)(&_estack),
    Reset_Handler,
    Fault_Handler,
    Fault_Handler,
    Fault_Handler,
    Fault_Handler,
    Fault_Handler,
    0,
    0,
    0,
    0,
    Fault_Handler,
    Fault_Handler,
    0,
    Fault_Handler,
    Fault_Handler,
};

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void to_puts(const char *s) { semihost(0x04, s); } /* SYS_WRITE0 */

void to_exit(int code) {
  /* SYS_EXIT: ADP_Stopped_ApplicationExit (0x20026), or RunTimeErrorUnknown (0x20023) */
  semihost(0x18, (const void *)(uintptr_t)(code == 0 ? 0x20026 : 0x20023));
  for (;;) {
  }
}

void Fault_Handler(void) {
  to_puts("fault\n");
  to_exit(1);
}

void Reset_Handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
#if defined(__ARM_FP)
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CP10/CP11 full access */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  while (dst < &_edata) {
    *dst++ = *src++;
  }
  for (dst = &_sbss; dst < &_ebss;) {
    *dst++ = 0;
  }
  to_exit(main());
}
