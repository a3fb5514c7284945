/* Forced into the module sources of a profiling build (-include): the runner's
 * TVMGEN_OPERATOR_CALL hook reads the timer around each operator call. */
#ifndef TVMC_MICRO_PROFILE_H_
#define TVMC_MICRO_PROFILE_H_

#include <stdint.h>

void tvmc_micro_operator_begin(void);
int32_t tvmc_micro_operator_end(int index, const char* function, int32_t status);

/* the comma operator reads the timer before the call; the call is an argument of _end, so
 * it completes before _end reads the timer again */
#define TVMGEN_OPERATOR_CALL(index, function, arguments) \
  (tvmc_micro_operator_begin(), tvmc_micro_operator_end(index, #function, function arguments))

#endif /* TVMC_MICRO_PROFILE_H_ */
