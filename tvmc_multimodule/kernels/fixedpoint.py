"""Host-side integer maths of TFLite Micro's int8 reference kernels, in Python.

Everything here runs at compile time: multipliers and shifts (QuantizeMultiplier on doubles of
the float32 scales), activation ranges, and the tables of the operators whose result depends on
one int8 value only (LOGISTIC, TANH, standalone RELU/RELU6, int8 requantise, the softmax exp).
The scalar fixed-point functions mirror gemmlowp's `fixedpoint.h` on int32 raw values.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT8_MIN, INT8_MAX = -128, 127


# ---------------------------------------------------------------- rounding, multipliers

def f32(value: float) -> float:
    """The float32 value TFLite Micro holds (`TfLiteQuantizationParams::scale` is a float)."""
    return float(np.float32(value))


def round_half_away(value: float) -> int:
    """std::round / TfLiteRound: halves away from zero."""
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier: (Q0.31 multiplier, shift); shifts below -31 flush to 0."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = round_half_away(q * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def frexp_multiplier(real: float) -> tuple[int, int]:
    """The LOGISTIC/TANH variant: frexp + round, without QuantizeMultiplier's fix-ups."""
    q, shift = math.frexp(real)
    return round_half_away(q * (1 << 31)), shift


def input_radius(integer_bits: int, left_shift: int, total_bits: int = 31) -> int:
    """tflite::CalculateInputRadius."""
    rescaled = (1.0 * ((1 << integer_bits) - 1) * (1 << (total_bits - integer_bits))
                / (1 << left_shift))
    return int(math.floor(rescaled))


def activation_range(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8; activation: the TFLite enum
    (0 NONE, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6)."""
    def quantize(v: float) -> int:
        return zero_point + round_half_away(float(np.float32(v) / np.float32(scale)))

    if activation == 0:
        return INT8_MIN, INT8_MAX
    if activation == 1:
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == 3:
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == 2:
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    raise ValueError(f"fused activation {activation}")


# ---------------------------------------------------------------- gemmlowp scalar fixed point

def wrap32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31
    return q if v >= 0 else -q


def rdbp(x: int, exponent: int) -> int:
    """RoundingDivideByPOT."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent>."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbp(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def mbqm(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (double rounding, TFLite Micro's default)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbp(srdhm(wrap32(x * (1 << left)), multiplier), right)


def rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    s += 1 if s >= 0 else -1
    return int(s / 2) if s >= 0 else -((-s) // 2)


def _one(integer_bits: int) -> int:
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def _exp_on_interval(a: int) -> int:
    """exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31 in and out)."""
    constant_term, one_third = 1895147668, 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp::exp_on_negative_values(FixedPoint<int32, integer_bits>) -> raw Q0.31."""
    fractional = 31 - integer_bits
    quarter = 1 << (fractional - 2)
    a_mod_quarter_minus_quarter = wrap32((a & (quarter - 1)) - quarter)
    result = _exp_on_interval(sat_mul_pot(a_mod_quarter_minus_quarter, integer_bits))
    remainder = wrap32(a_mod_quarter_minus_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent and remainder & (1 << (fractional + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    return INT32_MAX if a == 0 else result


def _newton_reciprocal(half_denominator: int) -> int:
    """The three Newton-Raphson steps shared by 1/(1+x) and (1-x)/(1+x), in Q2.29."""
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    one_f2 = _one(2)
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        one_minus = wrap32(one_f2 - hdx)
        x = wrap32(x + sat_mul_pot(srdhm(x, one_minus), 2))
    return x


def one_over_one_plus_x(a: int) -> int:
    x = _newton_reciprocal(rounding_half_sum(a, INT32_MAX))
    return sat_mul_pot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(F2 x)) == Q1 -> Q0


def one_minus_x_over_one_plus_x(a: int) -> int:
    x = _newton_reciprocal(rounding_half_sum(a, INT32_MAX))
    return sat_mul_pot(wrap32(x - _one(2)), 2)


def logistic(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic -> raw Q0.31."""
    if a == 0:
        return 1 << 30
    positive = one_over_one_plus_x(exp_on_negative_values(wrap32(-abs(a)), integer_bits))
    return positive if a > 0 else wrap32(INT32_MAX - positive)


def tanh(a: int, integer_bits: int) -> int:
    """gemmlowp::tanh -> raw Q0.31."""
    if a == 0:
        return 0
    n = a if a < 0 else wrap32(-a)
    # ExactMulByPot<1> keeps the raw value and adds one integer bit
    t = one_minus_x_over_one_plus_x(exp_on_negative_values(n, integer_bits + 1))
    return wrap32(-t) if a < 0 else t


# ---------------------------------------------------------------- int8 -> int8 tables

def int8_table(fn: Callable[[int], int]) -> np.ndarray:
    """fn over every int8 value, as an int8 table indexed by value + 128."""
    return np.array([fn(v) for v in range(INT8_MIN, INT8_MAX + 1)], np.int8)


def _clamp8(v: int) -> int:
    return min(max(v, INT8_MIN), INT8_MAX)


def _saturating_table(in_scale: float, in_zp: int, fn: Callable[[int, int], int],
                      out_bits: int, out_offset: int) -> np.ndarray:
    """TFLite Micro's integer LOGISTIC/TANH: inputs beyond the radius saturate, the rest go
    through the Q4 fixed-point `fn`, rounded to `out_bits` fractional bits."""
    multiplier, left_shift = frexp_multiplier(f32(in_scale) * (1 << (31 - 4)))
    radius = input_radius(4, left_shift, 31)

    def one(v: int) -> int:
        x = v - in_zp
        if x <= -radius:
            return INT8_MIN
        if x >= radius:
            return INT8_MAX
        q0 = fn(mbqm(x, multiplier, left_shift), 4)
        return _clamp8(rdbp(q0, 31 - out_bits) + out_offset)
    return int8_table(one)


def logistic_table(in_scale: float, in_zp: int) -> np.ndarray:
    """reference_integer_ops::Logistic (output zero point -128, scale 1/256)."""
    return _saturating_table(in_scale, in_zp, logistic, 8, -128)


def tanh_table(in_scale: float, in_zp: int) -> np.ndarray:
    """reference_integer_ops::Tanh (output zero point 0, scale 1/128)."""
    return _saturating_table(in_scale, in_zp, tanh, 7, 0)


def requantize_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int,
                     out_dtype: str = "int8") -> np.ndarray:
    """QUANTIZE int8 -> int8 or uint8 (reference_ops::Requantize): clamp(out_zp +
    MBQM(in - in_zp)) to the output type, with M(double(in_scale) / double(out_scale))."""
    multiplier, shift = quantize_multiplier(f32(in_scale) / f32(out_scale))
    if out_dtype == "uint8":
        return np.array([min(max(out_zp + mbqm(v - in_zp, multiplier, shift), 0), 255)
                         for v in range(INT8_MIN, INT8_MAX + 1)], np.uint8)
    return int8_table(lambda v: _clamp8(out_zp + mbqm(v - in_zp, multiplier, shift)))


def relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """Standalone RELU (ReluQuantized): the multiplier of the float32 quotient of the scales,
    lower bound max(-128, out_zp)."""
    multiplier, shift = quantize_multiplier(float(np.float32(in_scale) / np.float32(out_scale)))
    lo = max(INT8_MIN, out_zp)
    return int8_table(lambda v: min(max(out_zp + mbqm(v - in_zp, multiplier, shift), lo),
                                    INT8_MAX))


def relu6_table(in_scale: float, in_zp: int) -> np.ndarray:
    """Standalone RELU6 (Relu6Quantized): clamp to [in_zp, quantized 6] in the input's scale."""
    six = _clamp8(round_half_away(float(np.float32(6.0) / np.float32(in_scale))) + in_zp)
    return int8_table(lambda v: six if v > six else (in_zp if v < in_zp else v))


def dequantize_table(scale: float, zero_point: int) -> np.ndarray:
    """DEQUANTIZE int8 -> float32: float(double(scale) * (v - zp)), every int8 value."""
    values = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.float64)
    return (np.float64(np.float32(scale)) * (values - zero_point)).astype(np.float32)


# ---------------------------------------------------------------- float32 -> int8 thresholds

def _key_to_float(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, np.int64)
    bits = np.where(keys >= 0, keys, (-keys) | (1 << 31)).astype(np.uint32)
    return bits.view(np.float32)


def quantize_thresholds(scale: float, zero_point: int) -> np.ndarray:
    """QUANTIZE float32 -> int8 without float maths: threshold[k] is the key of the smallest
    float x whose AffineQuantize (round(x / scale) + zp, clamped) is >= k - 127 (k = 0..254),
    so the result is -128 + the number of thresholds <= key(x)."""
    scale32 = np.float32(scale)

    def quantized(keys: np.ndarray) -> np.ndarray:
        x = _key_to_float(keys)
        with np.errstate(over="ignore", invalid="ignore"):
            r = (x / scale32).astype(np.float64)
        r = np.clip(r, -1e10, 1e10)
        rounded = np.where(r >= 0, np.floor(r + 0.5), -np.floor(-r + 0.5))
        return np.clip(rounded + zero_point, INT8_MIN, INT8_MAX).astype(np.int64)

    targets = np.arange(INT8_MIN + 1, INT8_MAX + 1, dtype=np.int64)
    lo = np.full(targets.shape, -0x7F800000, np.int64)  # key of -inf
    hi = np.full(targets.shape, 0x7F800000, np.int64)   # key of +inf
    while np.any(lo < hi):  # smallest key with quantized(key) >= target
        mid = (lo + hi) // 2
        ok = quantized(mid) >= targets
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    return lo.astype(np.int32)


# ---------------------------------------------------------------- softmax

SOFTMAX_DIFF_INTEGER_BITS = 5


def softmax_params(in_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLite Micro's int8 SOFTMAX parameters (PreprocessSoftmaxScaling, CalculateInputRadius):
    (input multiplier, input left shift, diff_min)."""
    real = min(f32(beta) * f32(in_scale) * (1 << (31 - SOFTMAX_DIFF_INTEGER_BITS)),
               (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    return multiplier, left_shift, -input_radius(SOFTMAX_DIFF_INTEGER_BITS, left_shift, 31)


def softmax_exp_table(in_scale: float, beta: float) -> np.ndarray:
    """exp (raw Q0.31) of every int8 difference d = x - max(row) in [-255, 0] as TFLite Micro
    computes it (PreprocessSoftmaxScaling, MultiplyByQuantizedMultiplierGreaterThanOne,
    exp_on_negative_values); 0 below diff_min. Indexed by d + 255."""
    multiplier, left_shift, diff_min = softmax_params(in_scale, beta)
    table = np.zeros(256, np.int32)
    for d in range(-255, 1):
        if d >= diff_min:
            scaled = srdhm(wrap32(d * (1 << left_shift)), multiplier)
            table[d + 255] = exp_on_negative_values(scaled, SOFTMAX_DIFF_INTEGER_BITS)
    return table


# ---------------------------------------------------------------- operator parameters

def per_channel_multipliers(in_scale: float, weight_scales: np.ndarray, out_scale: float,
                            channels: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: M(double(in) * double(w[c]) / double(out))."""
    scales = [f32(s) for s in np.atleast_1d(weight_scales)]
    if len(scales) == 1:
        scales *= channels
    pairs = [quantize_multiplier(f32(in_scale) * s / f32(out_scale)) for s in scales]
    return (np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32))


def add_params(s1: float, s2: float, s_out: float) -> tuple[tuple[int, int], tuple[int, int],
                                                              tuple[int, int]]:
    """reference_integer_ops::Add multipliers (left shift 20)."""
    twice_max = 2 * max(f32(s1), f32(s2))
    return (quantize_multiplier(f32(s1) / twice_max), quantize_multiplier(f32(s2) / twice_max),
            quantize_multiplier(twice_max / ((1 << 20) * f32(s_out))))


def add_ratios(s1: float, s2: float, s_out: float) -> tuple[tuple[int, int], int]:
    """((A, B), K) with A / 2^K = s1 / s_out and B / 2^K = s2 / s_out, as precise as int32
    allows for (a - za) * A + (b - zb) * B (|a - za|, |b - zb| <= 255)."""
    largest = max(f32(s1), f32(s2)) / f32(s_out)
    exponent = 0
    while largest * 2.0 ** (exponent + 1) < (1 << 22) and exponent < 60:
        exponent += 1
    return ((round_half_away(f32(s1) / f32(s_out) * 2.0 ** exponent),
             round_half_away(f32(s2) / f32(s_out) * 2.0 ** exponent)), exponent)


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """QuantizedMeanOrSum: M(in / out) with 1/count folded in (shift clamped as TFLM does)."""
    multiplier, shift = quantize_multiplier(f32(in_scale) / f32(out_scale))
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    value = (multiplier << extra) // count  # int64 division of non-negative values
    return int(value), shift - extra
