/* Board support of a `tvmc micro` project: the core's SysTick as a 64-bit tick counter, the
 * stack painted and checked, the semihosting command line, and a fatal-error exit. */
#ifndef TVMC_MICRO_H_
#define TVMC_MICRO_H_

#include <stddef.h>
#include <stdint.h>

/* SysTick at the processor clock: CPU cycles on a real part; under QEMU -icount shift=0 the
 * virtual clock runs at one instruction per nanosecond, so ticks * 1e9 / TVMC_MICRO_CPU_HZ
 * are instructions. */
void tvmc_micro_timer_start(void);
uint64_t tvmc_micro_ticks(void);
void tvmc_micro_systick_handler(void);

/* Fill the free part of the stack (below the caller's frame) with a pattern ... */
void tvmc_micro_paint_stack(void);
/* ... and the bytes from the stack top down to the deepest word changed since. */
size_t tvmc_micro_stack_peak(void);
size_t tvmc_micro_stack_size(void);

/* The arguments QEMU was given (-semihosting-config arg=...), argv[0] first; 0 if none. */
int tvmc_micro_command_line(char** argv, int max_args);

/* Print the message and stop (exit status 1 under QEMU). */
void tvmc_micro_fail(const char* message) __attribute__((noreturn));

#endif /* TVMC_MICRO_H_ */
