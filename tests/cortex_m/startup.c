/* Bare-metal start for the test programs: copy .data, clear .bss, enable the FPU, run main
 * and leave through semihosting (newlib's rdimon) with its return code. */
#include <stdint.h>

extern uint32_t _data_load, _data_start, _data_end, _bss_start, _bss_end, _stack_top;
extern int main(void);
extern void initialise_monitor_handles(void);
extern void exit(int);

void reset_handler(void) {
  uint32_t* src = &_data_load;
  uint32_t* dst;
  for (dst = &_data_start; dst < &_data_end;) *dst++ = *src++;
  for (dst = &_bss_start; dst < &_bss_end;) *dst++ = 0;
  *(volatile uint32_t*)0xE000ED88 |= (0xFu << 20); /* CPACR: CP10/CP11 full access */
  __asm volatile("dsb\n\tisb");
  initialise_monitor_handles();
  exit(main());
}

static void hang(void) { for (;;) {} }

__attribute__((section(".vectors"), used)) static const void* const vectors[16] = {
  &_stack_top, (const void*)reset_handler, (const void*)hang, (const void*)hang,
  (const void*)hang, (const void*)hang, (const void*)hang,
};

/* newlib's crt0 is not linked (-nostartfiles); it would provide these */
void _init(void) {}
void _fini(void) {}
