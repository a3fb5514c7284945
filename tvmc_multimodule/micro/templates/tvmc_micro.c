/* Board support of a `tvmc micro` project (see tvmc_micro.h). */
#include "tvmc_micro.h"

#include <string.h>

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu
#define STACK_PAINT 0x5AC3A55Au

#define SYS_WRITE0 0x04
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023

extern uint32_t _stack_bottom, _stack_top;

static volatile uint32_t systick_wraps;

static int semihost(int operation, void* argument) {
  register int r0 __asm__("r0") = operation;
  register void* r1 __asm__("r1") = argument;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void tvmc_micro_systick_handler(void) { ++systick_wraps; }

void tvmc_micro_timer_start(void) {
  SYST_CSR = 0;
  systick_wraps = 0;
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
  while (SYST_CVR == 0) {} /* the first tick loads the reload value */
  systick_wraps = 0;
}

uint64_t tvmc_micro_ticks(void) {
  uint32_t wraps, value;
  do { /* a wrap between the two reads would pair a new count with an old wrap count */
    wraps = systick_wraps;
    value = SYST_CVR;
  } while (wraps != systick_wraps);
  return ((uint64_t)wraps << 24) + (SYST_RELOAD - value);
}

__attribute__((noinline)) void tvmc_micro_paint_stack(void) {
  volatile uint32_t* word = &_stack_bottom;
  volatile uint32_t* limit = (volatile uint32_t*)__builtin_frame_address(0) - 32;
  while (word < limit) *word++ = STACK_PAINT;
}

size_t tvmc_micro_stack_peak(void) {
  const uint32_t* word = &_stack_bottom;
  while (word < &_stack_top && *word == STACK_PAINT) ++word;
  return (size_t)((const uint8_t*)&_stack_top - (const uint8_t*)word);
}

size_t tvmc_micro_stack_size(void) {
  return (size_t)((const uint8_t*)&_stack_top - (const uint8_t*)&_stack_bottom);
}

int tvmc_micro_command_line(char** argv, int max_args) {
  static char line[512];
  struct { char* buffer; int length; } block = { line, (int)sizeof(line) - 1 };
  int argc = 0;
  char* p = line;
  if (semihost(SYS_GET_CMDLINE, &block) != 0) return 0;
  line[block.length] = '\0';
  while (*p && argc < max_args) {
    while (*p == ' ') *p++ = '\0';
    if (!*p) break;
    argv[argc++] = p;
    while (*p && *p != ' ') ++p;
  }
  return argc;
}

void tvmc_micro_fail(const char* message) {
  semihost(SYS_WRITE0, (void*)"error: ");
  semihost(SYS_WRITE0, (void*)message);
  semihost(SYS_WRITE0, (void*)"\n");
  for (;;) semihost(SYS_EXIT, (void*)ADP_STOPPED_RUN_TIME_ERROR);
}
