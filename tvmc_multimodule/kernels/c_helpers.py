"""The small C functions the integer kernels call (TIR `call_pure_extern`).

TVM's simplifier mishandles requantisation written as nested TIR (minutes per kernel, and it
once dropped the upper half of a clamp), so the fixed-point steps are C helpers, defined once
per module as `static inline` functions named `tvmgen_<module>_i8_...`: no global symbol, no libm,
no float maths, no division library call. The only 64-bit operation is the 32x32->64 multiply; on
cores without one (ARMv6-M, ARMv8-M baseline) it is built from 16-bit products instead of
calling the compiler's library.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from tvm import tirx

Scalar = Union[int, "tirx.PrimExpr"]

_SOURCE = r"""
/* ---- integer helpers of the int8 kernels (TFLite Micro reference arithmetic) ---- */
static inline int64_t {p}i8_mul64(int32_t a, int32_t b) {
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
  /* no 32x32->64 multiply instruction: 16-bit partial products, no library call */
  uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
  uint32_t ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
  uint32_t al = ua & 0xFFFFu, ah = ua >> 16, bl = ub & 0xFFFFu, bh = ub >> 16;
  uint32_t ll = al * bl, lh = al * bh, hl = ah * bl;
  uint32_t mid = (ll >> 16) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
  uint32_t lo = (mid << 16) | (ll & 0xFFFFu);
  uint32_t hi = ah * bh + (lh >> 16) + (hl >> 16) + (mid >> 16);
  uint64_t r = ((uint64_t)hi << 32) | lo;
  return (int64_t)(((a < 0) != (b < 0)) ? (uint64_t)0 - r : r);
#else
  return (int64_t)a * (int64_t)b;
#endif
}
/* gemmlowp SaturatingRoundingDoublingHighMul. gemmlowp nudges by 2^30 (ab >= 0) or
   1 - 2^30 and divides by 2^31 rounding towards zero; for ab < 0 that is
   floor((ab + 1 - 2^30 + 2^31 - 1) / 2^31), so both cases are floor((ab + 2^30) / 2^31):
   no branch on the sign (same bits, 7% fewer instructions per requantisation) */
static inline int32_t {p}i8_srdhm(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  return (int32_t)(({p}i8_mul64(a, b) + ((int64_t)1 << 30)) >> 31);
}
/* gemmlowp RoundingDivideByPOT, 0 <= e <= 31 */
static inline int32_t {p}i8_rdbp(int32_t x, int32_t e) {
  int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
  int32_t rem = x & mask, thr = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (rem > thr ? 1 : 0);
}
/* gemmlowp SaturatingRoundingMultiplyByPOT<e>, 0 < e < 31 */
static inline int32_t {p}i8_satshl(int32_t x, int32_t e) {
  int32_t thr = (int32_t)(((uint32_t)1 << (31 - e)) - 1u);
  return x > thr ? INT32_MAX : (x < -thr ? INT32_MIN : (int32_t)((uint32_t)x << e));
}
/* tflite::MultiplyByQuantizedMultiplier (double rounding) */
static inline int32_t {p}i8_mbqm(int32_t x, int32_t m, int32_t s) {
  int32_t left = s > 0 ? s : 0, right = s > 0 ? 0 : -s;
  return {p}i8_rdbp({p}i8_srdhm((int32_t)((uint32_t)x << left), m), right);
}
/* requantise an accumulator to int8: clamp(zp + MBQM(acc), lo, hi) */
static inline int32_t {p}i8_requant(int32_t acc, int32_t m, int32_t s, int32_t zp, int32_t lo,
                                  int32_t hi) {
  int32_t v = {p}i8_mbqm(acc, m, s) + zp;
  return v < lo ? lo : (v > hi ? hi : v);
}
/* onnxruntime's rounding: acc * m * 2^(s - 31) rounded once, half to even (its float
   requantisation gives the same but for float error); 32-bit shifts only, so ARMv6-M needs
   no library call */
static inline int32_t {p}i8_requant_even(int32_t acc, int32_t m, int32_t s, int32_t zp,
                                       int32_t lo, int32_t hi) {
  int64_t p = {p}i8_mul64(acc, m);
  int32_t top = (int32_t)(p >> 32), e = -s - 1, q, up;  /* the value is p / 2^(32 + e) */
  uint32_t low = (uint32_t)p;
  if (e < 0) {  /* scale of 1/2 or more: shift the product left first */
    top = (int32_t)(((uint32_t)top << -e) | (low >> (32 + e)));
    low <<= -e;
    e = 0;
  }
  if (e > 30) {  /* |value| < 1/2 */
    q = 0;
  } else {
    uint32_t rest = (uint32_t)top & ((1u << e) - 1u), half = e ? 1u << (e - 1) : 0u;
    q = top >> e;
    up = e ? (rest > half || (rest == half && (low != 0u || (q & 1))))
           : (low > 0x80000000u || (low == 0x80000000u && (q & 1)));
    q += up;
  }
  q += zp;
  return q < lo ? lo : (q > hi ? hi : q);
}
/* a / b (b > 0); cores without a divide instruction get a shift-subtract loop instead of
   the compiler's library call */
static inline int32_t {p}i8_udiv(uint32_t a, uint32_t b) {
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
  uint32_t q = 0u, r = 0u;
  int i;
  for (i = 31; i >= 0; --i) {
    r = (r << 1) | ((a >> i) & 1u);
    if (r >= b) { r -= b; q |= 1u << i; }
  }
  return (int32_t)q;
#else
  return (int32_t)(a / b);
#endif
}
/* average pool: divide rounding half away from zero (as TFLite Micro), then clamp */
static inline int32_t {p}i8_avgdiv(int32_t sum, int32_t count, int32_t lo, int32_t hi) {
  int32_t half = count >> 1;
  int32_t v = sum > 0 ? {p}i8_udiv((uint32_t)(sum + half), (uint32_t)count)
                      : -{p}i8_udiv((uint32_t)(half - sum), (uint32_t)count);
  return v < lo ? lo : (v > hi ? hi : v);
}
static inline int32_t {p}i8_clz(uint32_t x) {
  int32_t n = 0;
  if (x == 0u) return 32;
  if ((x & 0xFFFF0000u) == 0u) { n += 16; x <<= 16; }
  if ((x & 0xFF000000u) == 0u) { n += 8; x <<= 8; }
  if ((x & 0xF0000000u) == 0u) { n += 4; x <<= 4; }
  if ((x & 0xC0000000u) == 0u) { n += 2; x <<= 2; }
  if ((x & 0x80000000u) == 0u) { n += 1; }
  return n;
}
/* softmax: GetReciprocal(sum, 12) -> Q0.31 1/(1+x) of the normalised sum (gemmlowp Newton) */
static inline int32_t {p}i8_softmax_scale(int32_t sum) {
  int32_t hp1 = {p}i8_clz((uint32_t)sum);
  int32_t a = (int32_t)(((uint32_t)sum << hp1) - 0x80000000u);
  int32_t half = (int32_t)(((uint32_t)a + 0x80000000u) >> 1);
  int32_t x = (int32_t)(1515870810u + (uint32_t){p}i8_srdhm(half, -1010580540));
  for (int i = 0; i < 3; ++i) {
    int32_t one_minus = (int32_t)((uint32_t)(1 << 29) - (uint32_t){p}i8_srdhm(half, x));
    x = (int32_t)((uint32_t)x + (uint32_t){p}i8_satshl({p}i8_srdhm(x, one_minus), 2));
  }
  return {p}i8_satshl(x, 1);
}
/* softmax: the output exponent num_bits_over_unit + 31 - 8 */
static inline int32_t {p}i8_softmax_shift(int32_t sum) {
  return 12 - {p}i8_clz((uint32_t)sum) + 31 - 8;
}
/* softmax: the probability in units of 2^-16 (for outputs not quantised as 1/256) */
static inline int32_t {p}i8_softmax_q16(int32_t scale, int32_t e, int32_t shift) {
  return {p}i8_rdbp({p}i8_srdhm(scale, e), shift - 8);
}
static inline int32_t {p}i8_softmax_out(int32_t scale, int32_t e, int32_t shift) {
  int32_t v = {p}i8_rdbp({p}i8_srdhm(scale, e), shift) - 128;
  return v < -128 ? -128 : (v > 127 ? 127 : v);
}
/* QUANTIZE float32 -> int8 without float maths: count the thresholds <= the float's key */
static inline int32_t {p}i8_quantize(float v, int32_t* thresholds) {
  union { float f; uint32_t u; } bits;
  int32_t b, key, lo = 0, n = 255;
  bits.f = v;
  b = (int32_t)bits.u;
  key = b >= 0 ? b : -(b & 0x7FFFFFFF);
  while (n > 0) {
    int32_t half = n >> 1;
    if (thresholds[lo + half] <= key) { lo += half + 1; n -= half + 1; } else { n = half; }
  }
  return lo - 128;
}
/* ---- end of integer helpers ---- */
"""


@dataclass(frozen=True)
class CHelpers:
    """TIR calls of the helpers of one module; `source()` is their C definition."""

    prefix: str  # "tvmgen_<module>_"
    rounding: str = "tflite"  # requantisation: "tflite" (TFLite Micro's) or "onnx" (half to even)

    def source(self) -> str:
        return _SOURCE.replace("{p}", self.prefix)

    def name(self, helper: str) -> str:
        """C name of a helper: `tvmgen_<module>_i8_<helper>` (kernel names never start
        with i8_)."""
        return f"{self.prefix}i8_{helper}"

    def _call(self, name: str, *args: Scalar) -> tirx.PrimExpr:
        return tirx.call_pure_extern("int32", self.name(name), *[_i32(a) for a in args])

    def mbqm(self, x: Scalar, multiplier: Scalar, shift: Scalar) -> tirx.PrimExpr:
        return self._call("mbqm", x, multiplier, shift)

    def requant(self, acc: Scalar, multiplier: Scalar, shift: Scalar, zero_point: int,
                lo: int, hi: int) -> tirx.PrimExpr:
        helper = "requant_even" if self.rounding == "onnx" else "requant"
        return self._call(helper, acc, multiplier, shift, zero_point, lo, hi)

    def rdbp(self, x: Scalar, exponent: Scalar) -> tirx.PrimExpr:
        return self._call("rdbp", x, exponent)

    def avgdiv(self, total: Scalar, count: Scalar, lo: int, hi: int) -> tirx.PrimExpr:
        return self._call("avgdiv", total, count, lo, hi)

    def softmax_scale(self, total: Scalar) -> tirx.PrimExpr:
        return self._call("softmax_scale", total)

    def softmax_shift(self, total: Scalar) -> tirx.PrimExpr:
        return self._call("softmax_shift", total)

    def softmax_out(self, scale: Scalar, exp: Scalar, shift: Scalar) -> tirx.PrimExpr:
        return self._call("softmax_out", scale, exp, shift)

    def softmax_q16(self, scale: Scalar, exp: Scalar, shift: Scalar) -> tirx.PrimExpr:
        return self._call("softmax_q16", scale, exp, shift)

    def quantize(self, value: tirx.PrimExpr, thresholds_ptr: tirx.PrimExpr) -> tirx.PrimExpr:
        return tirx.call_pure_extern("int32", self.name("quantize"), value, thresholds_ptr)


def _i32(value: Scalar) -> tirx.PrimExpr:
    if isinstance(value, int):
        return tirx.const(value, "int32")
    return value
