"""The C of the CMSIS-NN calls: one function per layer, every dimension, zero point, stride,
padding and activation bound a literal (`static const` structs in .rodata), the weights, bias
and per-channel multipliers/shifts the module's constants, the scratch buffer a region of the
module's workspace. Each returns CMSIS-NN's status (0: success)."""
from __future__ import annotations

from string import Template

HEADER = """
/* ---- calls of CMSIS-NN (ARM-software/CMSIS-NN, built beside this module) ---- */
#include <stddef.h>
#include "arm_nnfunctions.h"
"""

# CMSIS-NN's quantisation structs hold non-const pointers it only reads: the module's
# constants pass through an integer so no qualifier is cast away in C's eyes (-Wcast-qual)
MUTABLE = "(int32_t*)(uintptr_t)"

CONV = Template(r"""
int32_t ${name}(const int8_t* x, const int8_t* w, const int32_t* bias, const int32_t* mult, const int32_t* shift, int8_t* y${scratch_param});
int32_t ${name}(const int8_t* x, const int8_t* w, const int32_t* bias, const int32_t* mult, const int32_t* shift, int8_t* y${scratch_param}) {
  static const ${params_type} params = ${params};
  static const cmsis_nn_dims input_dims = {${N}, ${H}, ${W}, ${C}};
  static const cmsis_nn_dims filter_dims = {${FN}, ${KH}, ${KW}, ${FC}};
  static const cmsis_nn_dims bias_dims = {1, 1, 1, ${O}};
  static const cmsis_nn_dims output_dims = {${N}, ${OH}, ${OW}, ${O}};
  const cmsis_nn_per_channel_quant_params quant = {${mutable}mult, ${mutable}shift};
  const cmsis_nn_context ctx = {${buf}, ${size}};
  return (int32_t)${function}(&ctx, &params, &quant, &input_dims, x, &filter_dims, w, &bias_dims, bias, &output_dims, y);
}
""")

FULLY_CONNECTED = Template(r"""
int32_t ${name}(const int8_t* x, const int8_t* w, const int32_t* bias${quant_params}${sums_param}, int8_t* y);
int32_t ${name}(const int8_t* x, const int8_t* w, const int32_t* bias${quant_params}${sums_param}, int8_t* y) {
  static const cmsis_nn_fc_params params = {${in_off}, 0, ${out_off}, {${lo}, ${hi}}};
  static const cmsis_nn_dims input_dims = {${B}, 1, 1, ${K}};
  static const cmsis_nn_dims filter_dims = {${K}, 1, 1, ${O}};
  static const cmsis_nn_dims bias_dims = {1, 1, 1, ${O}};
  static const cmsis_nn_dims output_dims = {${B}, 1, 1, ${O}};
  ${quant}
  const cmsis_nn_context ctx = {${buf}, ${size}};
  return (int32_t)${function}(&ctx, &params, &quant, &input_dims, x, &filter_dims, w, &bias_dims, bias, &output_dims, y);
}
""")

POOL = Template(r"""
int32_t ${name}(const int8_t* x, int8_t* y${scratch_param});
int32_t ${name}(const int8_t* x, int8_t* y${scratch_param}) {
  static const cmsis_nn_pool_params params = {{${SW}, ${SH}}, {${PW}, ${PH}}, {${lo}, ${hi}}};
  static const cmsis_nn_dims input_dims = {${N}, ${H}, ${W}, ${C}};
  static const cmsis_nn_dims filter_dims = {1, ${KH}, ${KW}, 1};
  static const cmsis_nn_dims output_dims = {${N}, ${OH}, ${OW}, ${C}};
  const cmsis_nn_context ctx = {${buf}, ${size}};
  return (int32_t)${function}(&ctx, &params, &input_dims, x, &filter_dims, &output_dims, y);
}
""")

SOFTMAX = Template(r"""
int32_t ${name}(const int8_t* x, int8_t* y);
int32_t ${name}(const int8_t* x, int8_t* y) {
  arm_softmax_s8(x, ${rows}, ${depth}, ${mult}, ${shift}, ${diff_min}, y);
  return 0;
}
""")

ADD = Template(r"""
int32_t ${name}(const int8_t* a, const int8_t* b, int8_t* y);
int32_t ${name}(const int8_t* a, const int8_t* b, int8_t* y) {
  return (int32_t)arm_elementwise_add_s8(a, b, ${off1}, ${m1}, ${s1}, ${off2}, ${m2}, ${s2}, 20, y, ${zout}, ${mo}, ${so}, ${lo}, ${hi}, ${size});
}
""")

MUL = Template(r"""
int32_t ${name}(const int8_t* a, const int8_t* b, int8_t* y);
int32_t ${name}(const int8_t* a, const int8_t* b, int8_t* y) {
  return (int32_t)arm_elementwise_mul_s8(a, b, ${off1}, ${off2}, y, ${zout}, ${mult}, ${shift}, ${lo}, ${hi}, ${size});
}
""")
