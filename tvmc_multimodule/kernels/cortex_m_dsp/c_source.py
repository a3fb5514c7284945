"""The C of the Cortex-M DSP kernels. Each kernel is a C function specialised for one layer
(every shape and zero point a literal, so gcc unrolls and folds them), over a few shared
`static inline` primitives: dual 16-bit multiply-accumulate (SMLAD) on operands widened by
SXTB16/SXTAB16 (ACLE intrinsics), and TFLite Micro's requantisation in ~12 instructions.

On a core without the DSP extension (a host running the tests) the primitives are the same
arithmetic in portable C, so the kernels stay bit-exact everywhere."""
from __future__ import annotations

from string import Template

PRIMITIVES = r"""
/* ---- Cortex-M DSP primitives of the int8 kernels ---- */
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
static inline __attribute__((always_inline)) int32_t ${p}d_sxtb16(int32_t x) {
  return (int32_t)__sxtb16((uint32_t)x); }
/* the rotated forms are one instruction (ACLE has no rotate operand: gcc 12 adds a MOV) */
static inline __attribute__((always_inline)) int32_t ${p}d_sxtb16_ror8(int32_t x) {
  int32_t r;
  __asm ("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r; }
static inline __attribute__((always_inline)) int32_t ${p}d_sxtab16(int32_t a, int32_t x) {
  return (int32_t)__sxtab16((uint32_t)a, (uint32_t)x); }
static inline __attribute__((always_inline)) int32_t ${p}d_sxtab16_ror8(int32_t a, int32_t x) {
  int32_t r;
  __asm ("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r; }
static inline __attribute__((always_inline)) int32_t ${p}d_smlad(int32_t a, int32_t b,
                                                                 int32_t acc) {
  return __smlad(a, b, acc); }
static inline __attribute__((always_inline)) int32_t ${p}d_smlabb(int32_t a, int32_t b,
                                                                  int32_t acc) {
  return __smlabb(a, b, acc); }
static inline __attribute__((always_inline)) int32_t ${p}d_smlatt(int32_t a, int32_t b,
                                                                  int32_t acc) {
  return __smlatt(a, b, acc); }
#else
static inline int32_t ${p}d_pack16(int32_t lo, int32_t hi) {
  return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu)); }
static inline int32_t ${p}d_sxtb16(int32_t x) {
  return ${p}d_pack16((int8_t)x, (int8_t)(x >> 16)); }
static inline int32_t ${p}d_sxtb16_ror8(int32_t x) {
  return ${p}d_pack16((int8_t)(x >> 8), (int8_t)(x >> 24)); }
static inline int32_t ${p}d_sxtab16(int32_t a, int32_t x) {
  return ${p}d_pack16((int16_t)a + (int8_t)x, (a >> 16) + (int8_t)(x >> 16)); }
static inline int32_t ${p}d_sxtab16_ror8(int32_t a, int32_t x) {
  return ${p}d_pack16((int16_t)a + (int8_t)(x >> 8), (a >> 16) + (int8_t)(x >> 24)); }
static inline int32_t ${p}d_smlad(int32_t a, int32_t b, int32_t acc) {
  return acc + (int16_t)a * (int16_t)b + (a >> 16) * (b >> 16); }
static inline int32_t ${p}d_smlabb(int32_t a, int32_t b, int32_t acc) {
  return acc + (int16_t)a * (int16_t)b; }
static inline int32_t ${p}d_smlatt(int32_t a, int32_t b, int32_t acc) {
  return acc + (a >> 16) * (b >> 16); }
#endif
/* gcc's scheduling before register allocation hoists the unrolled loads and runs out of
   registers (kws pointwise: 30 instructions per 16 MACs with spills, 20 without) */
#if defined(__GNUC__) && !defined(__clang__)
#define ${p}D_LAYER __attribute__((optimize("no-schedule-insns")))  /* on prototypes */
#else
#define ${p}D_LAYER
#endif
static inline __attribute__((always_inline)) int32_t ${p}d_read4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);  /* one LDR (Cortex-M4 and up allow unaligned words) */
  return v;
}
/* TFLite Micro's MultiplyByQuantizedMultiplier + zero point + clamp. The doubling high
   multiply with gemmlowp's nudge equals (a*b + 2^30) >> 31 (floor) for every a, b but
   INT32_MIN*INT32_MIN (a multiplier is positive); the rounding right shift is half away from
   zero, (x + 2^(e-1) - (x < 0)) >> e. */
static inline __attribute__((always_inline)) int32_t ${p}d_requant(
    int32_t acc, int32_t mult, int32_t shift, int32_t zp, int32_t lo, int32_t hi) {
  if (shift > 0) acc = (int32_t)((uint32_t)acc << shift);
  int32_t x = (int32_t)(((int64_t)acc * mult + (1ll << 30)) >> 31);
  if (shift < 0) x = (x + (1 << (-shift - 1)) + (x >> 31)) >> -shift;
  x += zp;
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}
/* the same when no channel shifts left or by 0 (checked at compile time): one fewer branch;
   the int8 clamp is SSAT where the activation range is the whole int8 range */
static inline __attribute__((always_inline)) int32_t ${p}d_requant_right(
    int32_t acc, int32_t mult, int32_t right, int32_t zp, int32_t lo, int32_t hi) {
  int32_t x = (int32_t)(((int64_t)acc * mult + (1ll << 30)) >> 31);
  x = ((x + (1 << (right - 1)) + (x >> 31)) >> right) + zp;
#if defined(__ARM_FEATURE_DSP)
  if (lo == -128 && hi == 127) return __ssat(x, 8);
#endif
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}
/* the same when also |acc| < 2^30 (bounded at compile time from the weights and bias):
   (2 acc * mult + 2^31) >> 32 is one SMMULR and equals (acc * mult + 2^30) >> 31 */
static inline __attribute__((always_inline)) int32_t ${p}d_requant_small(
    int32_t acc, int32_t mult, int32_t right, int32_t zp, int32_t lo, int32_t hi) {
#if defined(__ARM_FEATURE_DSP)
  int32_t x;
  __asm ("smmulr %0, %1, %2" : "=r"(x) : "r"(acc * 2), "r"(mult));
  x = ((x + (1 << (right - 1)) + (x >> 31)) >> right) + zp;
  if (lo == -128 && hi == 127) return __ssat(x, 8);
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
#else
  return ${p}d_requant_right(acc, mult, right, zp, lo, hi);
#endif
}
/* the steps of MultiplyByQuantizedMultiplier with literal multiplier and shifts (the
   elementwise kernels): the doubling high multiply, one SMMULR where |x| < 2^30 */
static inline __attribute__((always_inline)) int32_t ${p}d_hmul(int32_t x, int32_t m) {
  return (int32_t)(((int64_t)x * m + (1ll << 30)) >> 31); }
static inline __attribute__((always_inline)) int32_t ${p}d_hmul_small(int32_t x, int32_t m) {
#if defined(__ARM_FEATURE_DSP)
  int32_t r;
  __asm ("smmulr %0, %1, %2" : "=r"(r) : "r"(x * 2), "r"(m));
  return r;
#else
  return ${p}d_hmul(x, m);
#endif
}
/* gemmlowp's RoundingDivideByPOT, e > 0: half away from zero */
static inline __attribute__((always_inline)) int32_t ${p}d_rshift(int32_t x, int32_t e) {
  return (x + (1 << (e - 1)) + (x >> 31)) >> e; }
static inline __attribute__((always_inline)) int32_t ${p}d_clamp(int32_t x, int32_t lo,
                                                                 int32_t hi) {
#if defined(__ARM_FEATURE_DSP)
  if (lo == -128 && hi == 127) return __ssat(x, 8);
#endif
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}
/* 4 int8 lanes' maximum / minimum (SSUB8 sets the lanes' GE flags, SEL picks by them) */
static inline __attribute__((always_inline)) int32_t ${p}d_max4(int32_t a, int32_t b) {
#if defined(__ARM_FEATURE_DSP)
  (void)__ssub8((int8x4_t)a, (int8x4_t)b);
  return (int32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
#else
  uint32_t r = 0u;
  for (int32_t i = 0; i < 32; i += 8) {
    int32_t u = (int8_t)(a >> i), v = (int8_t)(b >> i);
    r |= (uint32_t)(uint8_t)(u > v ? u : v) << i;
  }
  return (int32_t)r;
#endif
}
static inline __attribute__((always_inline)) int32_t ${p}d_min4(int32_t a, int32_t b) {
#if defined(__ARM_FEATURE_DSP)
  (void)__ssub8((int8x4_t)b, (int8x4_t)a);
  return (int32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
#else
  uint32_t r = 0u;
  for (int32_t i = 0; i < 32; i += 8) {
    int32_t u = (int8_t)(a >> i), v = (int8_t)(b >> i);
    r |= (uint32_t)(uint8_t)(u < v ? u : v) << i;
  }
  return (int32_t)r;
#endif
}
/* average pooling's division: half away from zero (TFLite Micro's), then clamped */
static inline __attribute__((always_inline)) int32_t ${p}d_avgdiv(int32_t sum, int32_t count,
                                                                  int32_t lo, int32_t hi) {
  int32_t v = sum > 0 ? (int32_t)((uint32_t)(sum + (count >> 1)) / (uint32_t)count)
                      : -(int32_t)((uint32_t)((count >> 1) - sum) / (uint32_t)count);
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}
/* 2 pixels x 2 output channels over `c` input channels: x0 the first pixel's channels, the
   second's `step` bytes further (both constants once inlined); w the two channels' weights
   interleaved per 4 (then the c % 4 tails, one channel's after the other's); off: minus the
   input zero point in both halfwords. Unrolled, every load has a constant offset. */
static inline __attribute__((always_inline)) void ${p}d_dot2x2(
    const int8_t* x0, int32_t step, const int8_t* w, int32_t c, int32_t off, int32_t* a) {
  int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
#pragma GCC unroll 16
  for (int32_t k = 0; k < (c >> 2); ++k) {
    int32_t v0 = ${p}d_read4(x0 + 4 * k), v1 = ${p}d_read4(x0 + step + 4 * k);
    int32_t wv = ${p}d_read4(w + 8 * k), wu = ${p}d_read4(w + 8 * k + 4);
    int32_t p0 = ${p}d_sxtab16(off, v0), q0 = ${p}d_sxtab16_ror8(off, v0);
    int32_t p1 = ${p}d_sxtab16(off, v1), q1 = ${p}d_sxtab16_ror8(off, v1);
    int32_t wp = ${p}d_sxtb16(wv), wq = ${p}d_sxtb16_ror8(wv);
    a00 = ${p}d_smlad(p0, wp, a00); a00 = ${p}d_smlad(q0, wq, a00);
    a10 = ${p}d_smlad(p1, wp, a10); a10 = ${p}d_smlad(q1, wq, a10);
    wp = ${p}d_sxtb16(wu); wq = ${p}d_sxtb16_ror8(wu);
    a01 = ${p}d_smlad(p0, wp, a01); a01 = ${p}d_smlad(q0, wq, a01);
    a11 = ${p}d_smlad(p1, wp, a11); a11 = ${p}d_smlad(q1, wq, a11);
  }
  int32_t z = (int16_t)off, t = c & 3;
  x0 += c - t;
  w += 2 * (c - t);
  for (int32_t i = 0; i < t; ++i) {
    int32_t u0 = x0[i] + z, u1 = x0[step + i] + z;
    a00 += u0 * w[i]; a10 += u1 * w[i];
    a01 += u0 * w[t + i]; a11 += u1 * w[t + i];
  }
  a[0] = a00; a[1] = a01; a[2] = a10; a[3] = a11;
}
/* one pixel x 2 output channels (a border pixel, or the last of an odd row) */
static inline __attribute__((always_inline)) void ${p}d_dot1x2(
    const int8_t* x0, const int8_t* w, int32_t c, int32_t off, int32_t* a) {
  int32_t a00 = a[0], a01 = a[1];
#pragma GCC unroll 8
  for (int32_t k = c >> 2; k > 0; --k) {
    int32_t v0 = ${p}d_read4(x0);
    x0 += 4;
    int32_t p0 = ${p}d_sxtab16(off, v0), q0 = ${p}d_sxtab16_ror8(off, v0);
    int32_t wv = ${p}d_read4(w), wu = ${p}d_read4(w + 4);
    w += 8;
    a00 = ${p}d_smlad(p0, ${p}d_sxtb16(wv), a00);
    a00 = ${p}d_smlad(q0, ${p}d_sxtb16_ror8(wv), a00);
    a01 = ${p}d_smlad(p0, ${p}d_sxtb16(wu), a01);
    a01 = ${p}d_smlad(q0, ${p}d_sxtb16_ror8(wu), a01);
  }
  int32_t z = (int16_t)off, t = c & 3;
  for (int32_t i = 0; i < t; ++i) {
    int32_t u0 = x0[i] + z;
    a00 += u0 * w[i]; a01 += u0 * w[t + i];
  }
  a[0] = a00; a[1] = a01;
}
/* ---- end of the Cortex-M DSP primitives ---- */
"""

# pieces the int8 layer templates share: the prototype/definition line of a layer taking
# packed weights, bias and requantisation tables; and the requantised store of the 2 pixels
# x 2 channels a pass accumulates in a[4] (the second channel only where it exists)
_LAYER_SIGNATURE = """int32_t ${name}(const int8_t* restrict x, const int8_t* restrict wp,
    const int32_t* restrict bias, const int32_t* restrict mult,
    const int8_t* restrict shift, int8_t* restrict y)"""
_STORE_PAIR = """          int32_t m0 = mult[o], s0 = shift[o], m1 = mult[o + 1], s1 = shift[o + 1];
          y0[o] = (int8_t)${p}${requant}(a[0], m0, s0, ${zout}, ${lo}, ${hi});
          if (${odd_last}) y0[o + 1] = (int8_t)${p}${requant}(a[1], m1, s1, ${zout}, ${lo}, ${hi});
          if (two) {
            y0[${O} + o] = (int8_t)${p}${requant}(a[2], m0, s0, ${zout}, ${lo}, ${hi});
            if (${odd_last}) y0[${O} + o + 1] = (int8_t)${p}${requant}(a[3], m1, s1, ${zout}, ${lo}, ${hi});
          }
"""


def _layer_template(text: str) -> Template:
    return Template(Template(text).safe_substitute(signature=_LAYER_SIGNATURE,
                                                   store_pair=_STORE_PAIR))


# y = requant(bias + sum (x - zp_in) * w): pixels in pairs along a row, output channels in
# pairs; out-of-image taps are skipped (they would add (zp_in - zp_in) * w = 0).
CONV = _layer_template(r"""
${signature} ${p}D_LAYER;
${signature} {
  const int32_t off = ${off};
  for (int32_t b = 0; b < ${N}; ++b) {
    const int8_t* xb = x + b * ${H} * ${W} * ${C};
    for (int32_t oy = 0; oy < ${OH}; ++oy) {
      for (int32_t ox = 0; ox < ${OW}; ox += 2) {
        int32_t two = ox + 1 < ${OW};
        int8_t* y0 = y + ((b * ${OH} + oy) * ${OW} + ox) * ${O};
        const int8_t* w = wp;
        for (int32_t o = 0; o < ${O}; o += 2) {
          int32_t a[4] = {bias[o], bias[o + 1], bias[o], bias[o + 1]};
          for (int32_t ky = 0; ky < ${KH}; ++ky) {
            int32_t iy = oy * ${SH} - ${PT} + ky * ${DH};
            if (${row_outside}) { w += ${KW} * 2 * ${C}; continue; }
            const int8_t* row = xb + iy * ${W} * ${C};
            for (int32_t kx = 0; kx < ${KW}; ++kx, w += 2 * ${C}) {
              int32_t ix0 = ox * ${SW} - ${PL} + kx * ${DW}, ix1 = ix0 + ${SW};
              int32_t in0 = ${in0}, in1 = two && (${in1});
              if (in0 && in1) {
                ${p}d_dot2x2(row + ix0 * ${C}, ${SW} * ${C}, w, ${C}, off, a);
              } else if (in0) {
                ${p}d_dot1x2(row + ix0 * ${C}, w, ${C}, off, a);
              } else if (in1) {
                ${p}d_dot1x2(row + ix1 * ${C}, w, ${C}, off, a + 2);
              }
            }
          }
${store_pair}        }
      }
    }
  }
  return 0;
}
""")

# a convolution over a window copied (2 pixels at a time) to the stack, out-of-image taps
# filled with the input zero point: one contiguous dot of KH*KW*C per pixel and channel pair
CONV_WINDOW = _layer_template(r"""
${signature} ${p}D_LAYER;
${signature} {
  const int32_t off = ${off};
  int8_t col[2][${K}] __attribute__((aligned(4)));
  for (int32_t b = 0; b < ${N}; ++b) {
    const int8_t* xb = x + b * ${H} * ${W} * ${C};
    for (int32_t oy = 0; oy < ${OH}; ++oy) {
      for (int32_t ox = 0; ox < ${OW}; ox += 2) {
        int32_t two = ox + 1 < ${OW};
        for (int32_t p = 0; p < 1 + two; ++p) {
          int8_t* dst = col[p];
          for (int32_t ky = 0; ky < ${KH}; ++ky) {
            int32_t iy = oy * ${SH} - ${PT} + ky * ${DH};
            for (int32_t kx = 0; kx < ${KW}; ++kx, dst += ${C}) {
              int32_t ix = (ox + p) * ${SW} - ${PL} + kx * ${DW};
              if (iy < 0 || iy >= ${H} || ix < 0 || ix >= ${W}) {
                for (int32_t i = 0; i < ${C}; ++i) dst[i] = ${zin};
              } else {
                const int8_t* src = xb + (iy * ${W} + ix) * ${C};
                for (int32_t i = 0; i < ${C}; ++i) dst[i] = src[i];
              }
            }
          }
        }
        int8_t* y0 = y + ((b * ${OH} + oy) * ${OW} + ox) * ${O};
        const int8_t* w = wp;
        for (int32_t o = 0; o < ${O}; o += 2, w += 2 * ${K}) {
          int32_t a[4] = {bias[o], bias[o + 1], bias[o], bias[o + 1]};
          if (two) {
            ${p}d_dot2x2(col[0], ${K}, w, ${K}, off, a);
          } else {
            ${p}d_dot1x2(col[0], w, ${K}, off, a);
          }
${store_pair}        }
      }
    }
  }
  return 0;
}
""")

# fully connected, batch 1: 4 output units per pass share each widened input word
GEMV = _layer_template(r"""
${signature} ${p}D_LAYER;
${signature} {
  const int32_t off = ${off};
  const int8_t* w = wp;
  for (int32_t o = 0; o < ${O}; o += 4) {
    int32_t a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
    const int8_t* xp = x;
#pragma GCC unroll 4
    for (int32_t k = 0; k < (${C} >> 2); ++k) {  /* unrolled: constant load offsets */
      int32_t v = ${p}d_read4(xp + 4 * k);
      int32_t p = ${p}d_sxtab16(off, v), q = ${p}d_sxtab16_ror8(off, v);
      int32_t wv = ${p}d_read4(w + 16 * k);
      a0 = ${p}d_smlad(p, ${p}d_sxtb16(wv), a0); a0 = ${p}d_smlad(q, ${p}d_sxtb16_ror8(wv), a0);
      wv = ${p}d_read4(w + 16 * k + 4);
      a1 = ${p}d_smlad(p, ${p}d_sxtb16(wv), a1); a1 = ${p}d_smlad(q, ${p}d_sxtb16_ror8(wv), a1);
      wv = ${p}d_read4(w + 16 * k + 8);
      a2 = ${p}d_smlad(p, ${p}d_sxtb16(wv), a2); a2 = ${p}d_smlad(q, ${p}d_sxtb16_ror8(wv), a2);
      wv = ${p}d_read4(w + 16 * k + 12);
      a3 = ${p}d_smlad(p, ${p}d_sxtb16(wv), a3); a3 = ${p}d_smlad(q, ${p}d_sxtb16_ror8(wv), a3);
    }
    xp += ${C} - ${T};
    w += 4 * (${C} - ${T});
    for (int32_t i = 0; i < ${T}; ++i) {
      int32_t u = xp[i] - ${zin};
      a0 += u * w[i]; a1 += u * w[${T} + i]; a2 += u * w[2 * ${T} + i]; a3 += u * w[3 * ${T} + i];
    }
    w += 4 * ${T};
    y[o] = (int8_t)${p}${requant}(a0, mult[o], shift[o], ${zout}, ${lo}, ${hi});
    if (o + 1 < ${O}) y[o + 1] = (int8_t)${p}${requant}(a1, mult[o + 1], shift[o + 1], ${zout}, ${lo}, ${hi});
    if (o + 2 < ${O}) y[o + 2] = (int8_t)${p}${requant}(a2, mult[o + 2], shift[o + 2], ${zout}, ${lo}, ${hi});
    if (o + 3 < ${O}) y[o + 3] = (int8_t)${p}${requant}(a3, mult[o + 3], shift[o + 3], ${zout}, ${lo}, ${hi});
  }
  return 0;
}
""")

# int8 elementwise ADD / MUL with numpy broadcasting: the output's dimensions collapsed
# into at most a few loops with literal strides per operand (0 where it broadcasts);
# ${tables}: ADD's two 256-entry int32 tables, or nothing; ${value}: the int8 output of
# va, vb (the operands' int8 values as int32). Each output element is written after its
# operands are read and never read again, so y may be an operand of the output's shape (a
# state updated in place, a residual's buffer reused): no restrict on a, b, y
BINARY = Template(r"""
int32_t ${name}(const int8_t* a, const int8_t* b,${tables} int8_t* y) ${p}D_LAYER;
int32_t ${name}(const int8_t* a, const int8_t* b,${tables} int8_t* y) {
  int8_t* yo = y;
${loops}
  return 0;
}
""")

# depthwise: 4 input channels per pass (SMLABB/SMLATT on the SXTB16 halves), weights
# pre-widened to int16 pairs in the order the halves come: (c0, c2), (c1, c3). A channel
# multiplier M > 1 repeats the pass for each m (outputs c * M + m); weights (MW words per m),
# bias and requantisation tables packed per m: index m * C + c.
DEPTHWISE = Template(r"""
int32_t ${name}(const int8_t* restrict x, const int32_t* restrict wp,
    const int32_t* restrict bias, const int32_t* restrict mult,
    const int8_t* restrict shift, int8_t* restrict y) ${p}D_LAYER;
int32_t ${name}(const int8_t* restrict x, const int32_t* restrict wp,
    const int32_t* restrict bias, const int32_t* restrict mult,
    const int8_t* restrict shift, int8_t* restrict y) {
  const int32_t off = ${off};
  for (int32_t b = 0; b < ${N}; ++b) {
    const int8_t* xb = x + b * ${H} * ${W} * ${C};
    for (int32_t oy = 0; oy < ${OH}; ++oy) {
      int32_t iy0 = oy * ${SH} - ${PT};
      for (int32_t ox = 0; ox < ${OW}; ++ox) {
        int32_t ix0 = ox * ${SW} - ${PL};
        int8_t* yo = y + ((b * ${OH} + oy) * ${OW} + ox) * ${C} * ${M};
        int32_t inside = ${interior};
        /* the taps inside the image: ky in [ky0, ky1), kx in [kx0, kx1) */
        int32_t ky0 = iy0 < 0 ? (${DH} - 1 - iy0) / ${DH} : 0;
        int32_t ky1 = (${H} - iy0 + ${DH} - 1) / ${DH};
        int32_t kx0 = ix0 < 0 ? (${DW} - 1 - ix0) / ${DW} : 0;
        int32_t kx1 = (${W} - ix0 + ${DW} - 1) / ${DW};
        ky1 = ky1 > ${KH} ? ${KH} : ky1;
        kx1 = kx1 > ${KW} ? ${KW} : kx1;
        for (int32_t m = 0; m < ${M}; ++m) {
        const int32_t* w = wp + m * ${MW};
        const int32_t* bm = bias + m * ${C};
        const int32_t* mm = mult + m * ${C};
        const int8_t* sm = shift + m * ${C};
        for (int32_t c = 0; c < ${C4}; c += 4, w += ${KH} * ${KW} * 2) {
          int32_t a0 = bm[c], a1 = bm[c + 1], a2 = bm[c + 2], a3 = bm[c + 3];
          const int8_t* xc = xb + c;
          if (inside) {
#pragma GCC unroll 9
            for (int32_t t = 0; t < ${KH} * ${KW}; ++t) {
              int32_t ky = t / ${KW}, kx = t % ${KW};
              int32_t v = ${p}d_read4(xc + ((iy0 + ky * ${DH}) * ${W} + ix0 + kx * ${DW}) * ${C});
              int32_t p = ${p}d_sxtab16(off, v), q = ${p}d_sxtab16_ror8(off, v);
              int32_t wa = w[2 * t], wb = w[2 * t + 1];
              a0 = ${p}d_smlabb(p, wa, a0); a2 = ${p}d_smlatt(p, wa, a2);
              a1 = ${p}d_smlabb(q, wb, a1); a3 = ${p}d_smlatt(q, wb, a3);
            }
          } else {  /* only the taps inside the image: their ranges, no test per tap */
            for (int32_t ky = ky0; ky < ky1; ++ky) {
              const int8_t* xr = xc + (iy0 + ky * ${DH}) * ${W} * ${C};
              for (int32_t kx = kx0; kx < kx1; ++kx) {
                int32_t t = ky * ${KW} + kx;
                int32_t v = ${p}d_read4(xr + (ix0 + kx * ${DW}) * ${C});
                int32_t p = ${p}d_sxtab16(off, v), q = ${p}d_sxtab16_ror8(off, v);
                int32_t wa = w[2 * t], wb = w[2 * t + 1];
                a0 = ${p}d_smlabb(p, wa, a0); a2 = ${p}d_smlatt(p, wa, a2);
                a1 = ${p}d_smlabb(q, wb, a1); a3 = ${p}d_smlatt(q, wb, a3);
              }
            }
          }
          yo[c * ${M} + m] = (int8_t)${p}${requant}(a0, mm[c], sm[c], ${zout}, ${lo}, ${hi});
          yo[(c + 1) * ${M} + m] = (int8_t)${p}${requant}(a1, mm[c + 1], sm[c + 1], ${zout}, ${lo}, ${hi});
          yo[(c + 2) * ${M} + m] = (int8_t)${p}${requant}(a2, mm[c + 2], sm[c + 2], ${zout}, ${lo}, ${hi});
          yo[(c + 3) * ${M} + m] = (int8_t)${p}${requant}(a3, mm[c + 3], sm[c + 3], ${zout}, ${lo}, ${hi});
        }
        const int16_t* wt = (const int16_t*)w;  /* the c % 4 tail: int16 weights per tap */
        for (int32_t c = ${C4}; c < ${C}; ++c, wt += ${KH} * ${KW}) {
          int32_t a = bm[c];
          for (int32_t t = 0; t < ${KH} * ${KW}; ++t) {
            int32_t ky = t / ${KW}, kx = t % ${KW};
            int32_t iy = iy0 + ky * ${DH}, ix = ix0 + kx * ${DW};
            if (iy < 0 || iy >= ${H} || ix < 0 || ix >= ${W}) continue;
            a += (xb[(iy * ${W} + ix) * ${C} + c] - ${zin}) * wt[t];
          }
          yo[c * ${M} + m] = (int8_t)${p}${requant}(a, mm[c], sm[c], ${zout}, ${lo}, ${hi});
        }
        }
      }
    }
  }
  return 0;
}
""")

# average / max pooling, 4 channels per word: AVERAGE sums the in-image taps in 16-bit lanes
# (SXTAB16: channels 0 and 2, then 1 and 3 rotated; at most 255 taps, so no lane overflows),
# divides each sum by the in-image tap count rounding half away from zero (TFLite Micro's);
# MAX keeps 4 lanes' maxima with SSUB8 + SEL, then clamps them the same way
POOL = Template(r"""
int32_t ${name}(const int8_t* restrict x, int8_t* restrict y) ${p}D_LAYER;
int32_t ${name}(const int8_t* restrict x, int8_t* restrict y) {
  for (int32_t b = 0; b < ${N}; ++b) {
    const int8_t* xb = x + b * ${H} * ${W} * ${C};
    for (int32_t oy = 0; oy < ${OH}; ++oy) {
      int32_t y0 = oy * ${SH} - ${PT}, y1 = y0 + ${KH};
      y0 = y0 < 0 ? 0 : y0;
      y1 = y1 > ${H} ? ${H} : y1;
      for (int32_t ox = 0; ox < ${OW}; ++ox) {
        int32_t x0 = ox * ${SW} - ${PL}, x1 = x0 + ${KW};
        x0 = x0 < 0 ? 0 : x0;
        x1 = x1 > ${W} ? ${W} : x1;
        int8_t* yo = y + ((b * ${OH} + oy) * ${OW} + ox) * ${C};
${body}
      }
    }
  }
  return 0;
}
""")

AVG_BODY = r"""        int32_t count = (y1 - y0) * (x1 - x0);
        for (int32_t c = 0; c < ${C4}; c += 4) {
          int32_t even = 0, odd = 0;
          for (int32_t iy = y0; iy < y1; ++iy) {
            const int8_t* row = xb + iy * ${W} * ${C} + c;
            for (int32_t ix = x0; ix < x1; ++ix) {
              int32_t v = ${p}d_read4(row + ix * ${C});
              even = ${p}d_sxtab16(even, v);
              odd = ${p}d_sxtab16_ror8(odd, v);
            }
          }
          yo[c] = (int8_t)${p}d_avgdiv((int16_t)even, count, ${lo}, ${hi});
          yo[c + 1] = (int8_t)${p}d_avgdiv((int16_t)odd, count, ${lo}, ${hi});
          yo[c + 2] = (int8_t)${p}d_avgdiv(even >> 16, count, ${lo}, ${hi});
          yo[c + 3] = (int8_t)${p}d_avgdiv(odd >> 16, count, ${lo}, ${hi});
        }
        for (int32_t c = ${C4}; c < ${C}; ++c) {
          int32_t sum = 0;
          for (int32_t iy = y0; iy < y1; ++iy)
            for (int32_t ix = x0; ix < x1; ++ix) sum += xb[(iy * ${W} + ix) * ${C} + c];
          yo[c] = (int8_t)${p}d_avgdiv(sum, count, ${lo}, ${hi});
        }"""

MAX_BODY = r"""        for (int32_t c = 0; c < ${C4}; c += 4) {
          int32_t m = (int32_t)0x80808080u;
          for (int32_t iy = y0; iy < y1; ++iy) {
            const int8_t* row = xb + iy * ${W} * ${C} + c;
            for (int32_t ix = x0; ix < x1; ++ix) m = ${p}d_max4(m, ${p}d_read4(row + ix * ${C}));
          }
          m = ${p}d_max4(m, ${lo4});
          m = ${p}d_min4(m, ${hi4});
          __builtin_memcpy(yo + c, &m, 4);
        }
        for (int32_t c = ${C4}; c < ${C}; ++c) {
          int32_t m = -128;
          for (int32_t iy = y0; iy < y1; ++iy)
            for (int32_t ix = x0; ix < x1; ++ix) {
              int32_t v = xb[(iy * ${W} + ix) * ${C} + c];
              m = v > m ? v : m;
            }
          m = m < ${lo} ? ${lo} : m;
          yo[c] = (int8_t)(m > ${hi} ? ${hi} : m);
        }"""
