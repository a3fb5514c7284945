"""int8 UNIDIRECTIONAL_SEQUENCE_LSTM as TFLite Micro's integer kernel computes it (8-bit
activations and weights, 16-bit cell state, `lstm_eval.h`): per step and gate, two fully
connected layers (input and recurrent) requantised to Q3.12 int16 and added with saturation,
the int16 sigmoid/tanh of its `sigmoid_table_uint16` interpolation, the cell update by int16
multiplications, the hidden state requantised to int8. Bit-exact with it.

One C function per layer (its multipliers and sizes written in), called from TIR by
`call_extern`; it copies the state in, runs every batch row and time step, and leaves the
final h and c in its state outputs. The intermediate tensors' quantisation the converter
writes is not read: TFLite Micro's kernel fixes the gates' scales at 2^-12 (in) and 2^-15
(out) and so do we.
"""
from __future__ import annotations

import hashlib
import math
from string import Template

import numpy as np
from tvm import te, tirx

from .. import fixedpoint as fx
from ..c_helpers import CHelpers
from ..library import Kernel
from ..records import LstmSpec
from .nn import finish_func

GATES = "ifco"  # packed order of the weights and biases: input, forget, cell, output
GATE_IN_SCALE = 2.0 ** -12   # Q3.12: the gates' fully connected outputs
GATE_OUT_SCALE = 2.0 ** -15  # Q0.15: the gates' sigmoid/tanh outputs
MACS_ATTR = "tvmc.macs"

# tflite::sigmoid_table_uint16: sigmoid(i / 24) in 0.16 (TFLite's common.h)
SIGMOID_TABLE = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
)

_PRIMITIVES = Template(r"""
/* ---- int8 LSTM (TFLite Micro's integer LSTM: int16 gates and cell state) ---- */
static const uint16_t ${p}lstm_sigmoid_table[256] = {
${table}
};
static inline int16_t ${p}lstm_sat16(int32_t v) {
  return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
}
/* reference_integer_ops::Logistic (int16, input multiplier 3: Q3.12 in, Q0.15 out) */
static inline int16_t ${p}lstm_sigmoid(int16_t x) {
  int32_t v = (int32_t)x * 3;
  uint32_t a = (uint32_t)(v < 0 ? -v : v), uh = a >> 9, r;
  if (uh >= 255u) {
    r = 0x7FFFu << 10;
  } else {
    uint32_t ua = ${p}lstm_sigmoid_table[uh], ub = ${p}lstm_sigmoid_table[uh + 1];
    r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
  }
  r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
  return (int16_t)(r >> 10);
}
/* reference_integer_ops::Tanh (int16): input scaled by m / 2^s */
static inline int16_t ${p}lstm_tanh(int16_t x, int32_t m, int32_t s) {
  int32_t round = s > 0 ? 1 << (s - 1) : 0;
  int32_t v = ((int32_t)x * m + round) >> s, r;
  uint32_t a = (uint32_t)(v < 0 ? -v : v), uh = a >> 8;
  if (uh >= 255u) {
    r = 0xFFFF << 8;
  } else {
    uint32_t ua = ${p}lstm_sigmoid_table[uh], ub = ${p}lstm_sigmoid_table[uh + 1];
    r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
  }
  r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
  return (int16_t)(r >> 8);
}
/* one gate's fully connected layer: int8 x int8 -> int16 (Q3.12), saturated; the input
   zero point is folded into `bias` at compile time (the same integer sum) */
static inline void ${p}lstm_fc(const int8_t* x, const int8_t* w, const int32_t* bias,
                               int32_t units, int32_t depth, int32_t m, int32_t s,
                               int16_t* out) {
  int32_t o, d;
  for (o = 0; o < units; ++o) {
    int32_t acc = bias[o];
    const int8_t* row = w + o * depth;
    for (d = 0; d < depth; ++d) acc += (int32_t)row[d] * (int32_t)x[d];
    out[o] = ${p}lstm_sat16(${p}i8_mbqm(acc, m, s));
  }
}
""")

_LAYER = Template(r"""
int32_t NAME(const int8_t* x, const int8_t* h_in, const int16_t* c_in, const int8_t* w,
    const int8_t* r, const int32_t* bias, const int32_t* r_bias, int8_t* y, int8_t* h,
    int16_t* c);
int32_t NAME(const int8_t* x, const int8_t* h_in, const int16_t* c_in, const int8_t* w,
    const int8_t* r, const int32_t* bias, const int32_t* r_bias, int8_t* y, int8_t* h,
    int16_t* c) {
  /* ${B} batch x ${T} steps x ${I} inputs -> ${H} units (${layout}) */
  static const int32_t fc_m[8] = {${fc_m}}, fc_s[8] = {${fc_s}};
  int16_t gates[4][${H}], tmp[${H}];
  int32_t b, t, g, k;
  for (k = 0; k < ${B} * ${H}; ++k) { h[k] = h_in[k]; c[k] = c_in[k]; }
  for (b = 0; b < ${B}; ++b) {
    int8_t* hb = h + b * ${H};
    int16_t* cb = c + b * ${H};
    for (t = 0; t < ${T}; ++t) {
      const int8_t* xt = x + ${x_index} * ${I};
      for (g = 0; g < 4; ++g) {  /* i, f, c, o: from the previous h */
        ${p}lstm_fc(xt, w + g * ${H} * ${I}, bias + g * ${H}, ${H}, ${I}, fc_m[g], fc_s[g],
                    gates[g]);
        ${p}lstm_fc(hb, r + g * ${H} * ${H}, r_bias + g * ${H}, ${H}, ${H}, fc_m[4 + g],
                    fc_s[4 + g], tmp);
        for (k = 0; k < ${H}; ++k) {
          int16_t v = ${p}lstm_sat16((int32_t)gates[g][k] + tmp[k]);
          gates[g][k] = g == 2 ? ${cell_activation} : ${p}lstm_sigmoid(v);
        }
      }
      for (k = 0; k < ${H}; ++k) {
        int32_t fc = ${p}i8_mbqm((int32_t)gates[1][k] * cb[k], ${fc_mul});
        int32_t ig = ${p}i8_mbqm((int32_t)gates[0][k] * gates[2][k], ${ig_mul});
        int32_t cell = (int32_t)${p}lstm_sat16(fc) + ${p}lstm_sat16(ig);
        int32_t out;
        cell = ${p}lstm_sat16(cell);${clip}
        cb[k] = (int16_t)cell;
        out = ${p}i8_mbqm((int32_t)${p}lstm_tanh((int16_t)cell, ${tanh_m}, ${tanh_s})
                          * gates[3][k], ${out_mul}) + ${h_zp};
        hb[k] = (int8_t)(out < -128 ? -128 : (out > 127 ? 127 : out));
      }
      for (k = 0; k < ${H}; ++k) y[${y_index} * ${H} + k] = hb[k];
    }
  }
  return 0;
}
""")


def lstm_spec(batch: int, steps: int, inputs: int, hidden: int, time_major: bool,
              input_scale: float, input_zp: int, weight_scales: tuple[float, ...],
              hidden_scale: float, hidden_zp: int, cell_scale: float, cell_clip: float,
              cell_tanh: bool = True) -> LstmSpec:
    """TFLite Micro's Prepare (`lstm_eval_common.cc`): `weight_scales` the 8 weight tensors'
    scales, input then recurrent, each in i f c o order; float32 scales as it reads them,
    products and quotients in double."""
    f = fx.f32
    fc = []
    for k, scale in enumerate(weight_scales):
        source = input_scale if k < 4 else hidden_scale
        fc.append(fx.quantize_multiplier(f(source) * f(scale) / f(GATE_IN_SCALE)))

    def mul(a: float, b: float, out: float) -> tuple[int, int]:
        return fx.quantize_multiplier(f(a) * f(b) / f(out))

    # tflite::CheckedLog2 in float32 (TFLite Micro uses the rounded power even when the
    # scale is not one)
    log2 = np.float32(np.log(np.float32(f(cell_scale)))) * np.float32(
        np.float32(1.0) / np.log(np.float32(2.0)))
    power = fx.round_half_away(float(np.float32(log2)))
    clip = 0
    if cell_clip > 0:
        clip = int(min(max(f(cell_clip) / f(cell_scale), -32768.0), 32767.0))
    return LstmSpec(batch, steps, inputs, hidden, time_major, input_zp, hidden_zp, tuple(fc),
                    mul(GATE_OUT_SCALE, cell_scale, cell_scale),
                    mul(GATE_OUT_SCALE, GATE_OUT_SCALE, cell_scale),
                    mul(GATE_OUT_SCALE, GATE_OUT_SCALE, hidden_scale), power, clip, cell_tanh)


def _tanh_input(power: int) -> tuple[int, int]:
    """lstm_internal::Tanh's (multiplier, right shift) for a cell scale of 2^power."""
    left = 15 + power - 3
    return (3, -left) if left < 0 else (3 << left, 0)


def _table_c() -> str:
    return "\n".join("  " + ", ".join(str(v) for v in SIGMOID_TABLE[k:k + 16]) + ","
                     for k in range(0, 256, 16))


def lstm(spec: LstmSpec, weights: np.ndarray, recurrent: np.ndarray, bias: np.ndarray,
         helpers: CHelpers) -> Kernel:
    """(x int8, h int8 [B,H], c int16 [B,H], w int8 [4,H,I], r int8 [4,H,H], bias int32
    [4,H], recurrent bias int32 [4,H] (the zero points folded in)) -> (y int8, h int8 [B,H],
    c int16 [B,H]); gates packed i f c o."""
    p = helpers.prefix
    b, t, i, h = spec.batch, spec.steps, spec.inputs, spec.hidden
    tanh_m, tanh_s = _tanh_input(spec.cell_scale_power)
    clip = ""
    if spec.cell_clip:
        q = spec.cell_clip
        clip = f"\n        cell = cell > {q} ? {q} : (cell < -{q} ? -{q} : cell);"
    index = f"(t * {b} + b)" if spec.time_major else f"(b * {t} + t)"
    body = _LAYER.substitute(
        p=p, B=b, T=t, I=i, H=h, layout="time major" if spec.time_major else "batch major",
        fc_m=", ".join(str(m) for m, _ in spec.fc), fc_s=", ".join(str(s) for _, s in spec.fc),
        x_index=index, y_index=index, h_zp=spec.hidden_zero_point,
        cell_activation=(f"{p}lstm_tanh(v, 3, 0)" if spec.cell_tanh else f"{p}lstm_sigmoid(v)"),
        fc_mul="%d, %d" % spec.forget_cell, ig_mul="%d, %d" % spec.input_cell,
        out_mul="%d, %d" % spec.output_hidden, tanh_m=tanh_m, tanh_s=tanh_s, clip=clip)
    name = f"{p}lstm_i8_{hashlib.sha1(body.encode()).hexdigest()[:10]}"
    x_shape = (t, b, i) if spec.time_major else (b, t, i)
    y_shape = (t, b, h) if spec.time_major else (b, t, h)
    # sum(w * (x - zp)) + bias = sum(w * x) + (bias - zp * sum(w)): exact in int32
    folded = bias.astype(np.int64) - spec.input_zero_point * weights.astype(np.int64).sum(2)
    r_folded = -spec.hidden_zero_point * recurrent.astype(np.int64).sum(2)
    consts = (np.ascontiguousarray(weights, np.int8), np.ascontiguousarray(recurrent, np.int8),
              folded.astype(np.int32), r_folded.astype(np.int32))
    ins = [te.placeholder(x_shape, "int8", name="x"), te.placeholder((b, h), "int8", name="h"),
           te.placeholder((b, h), "int16", name="c"),
           *[te.placeholder(a.shape, str(a.dtype), name=n)
             for a, n in zip(consts, ("w", "r", "bias", "r_bias"))]]
    outs = te.extern([y_shape, (b, h), (b, h)], ins, lambda i_, o_: tirx.call_extern(
        "int32", name, *[a.data for a in i_], *[a.data for a in o_]),
        dtype=["int8", "int8", "int16"], name="lstm")
    func = finish_func(te.create_prim_func([*ins, *outs]))
    primitives = _PRIMITIVES.substitute(p=p, table=_table_c())
    return Kernel(func.with_attr(MACS_ATTR, b * t * 4 * h * (i + h)), consts,
                  (("lstm_primitives", primitives), (name, body.replace("NAME", name))))
