/* Bare-metal start of a `tvmc micro` project, the same for every Cortex-M board: vector
 * table, .data copied and .bss cleared, FPU enabled, then main() through newlib's semihosting
 * (rdimon) and exit() with its return code. Faults print one line and stop the emulator. */
#include <stdint.h>

#include "tvmc_micro.h"

extern uint32_t _data_load, _data_start, _data_end, _bss_start, _bss_end, _stack_top;
extern int main(void);
extern void initialise_monitor_handles(void);
extern void exit(int);

void reset_handler(void) {
  uint32_t* src = &_data_load;
  uint32_t* dst;
  for (dst = &_data_start; dst < &_data_end;) *dst++ = *src++;
  for (dst = &_bss_start; dst < &_bss_end;) *dst++ = 0;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  *(volatile uint32_t*)0xE000ED88 |= (0xFu << 20); /* CPACR: CP10/CP11 full access */
  __asm volatile("dsb\n\tisb");
#endif
  initialise_monitor_handles();
  exit(main());
}

static void fault_handler(void) {
  tvmc_micro_fail("fault (HardFault, MemManage, BusFault or UsageFault): a bad memory access, "
                  "or the stack overflowed");
}

static void unexpected_handler(void) { tvmc_micro_fail("unexpected exception"); }

__attribute__((section(".vectors"), used)) static const void* const vectors[16] = {
  &_stack_top, (const void*)reset_handler, (const void*)unexpected_handler,
  (const void*)fault_handler, (const void*)fault_handler, (const void*)fault_handler,
  (const void*)fault_handler, (const void*)fault_handler, 0, 0, 0,
  (const void*)unexpected_handler, (const void*)unexpected_handler, 0,
  (const void*)unexpected_handler, (const void*)tvmc_micro_systick_handler,
};

/* newlib's crt0 is not linked (-nostartfiles); it would provide these */
void _init(void) {}
void _fini(void) {}
