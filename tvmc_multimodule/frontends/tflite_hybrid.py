"""Dynamic-range ("hybrid") TFLite operators computed as LiteRT's hybrid kernels do: the int8
weights stay int8 constants; the float input is quantised on the fly per batch (symmetric,
or asymmetric with a zero point where LiteRT does so), multiplied in integers (int32
accumulators) and rescaled to float with the input's and the weights' scales, then the float
bias and the fused activation.

LiteRT's rules (tensorflow/lite/kernels/{conv,depthwise_conv,fully_connected}.cc):
- CONV_2D: per batch over H*W*C; symmetric (`SymmetricQuantizeFloats`: scale max|x| / 127,
  q = round(x * 127 / max|x|) in [-127, 127]) when the filter has one scale (or all its
  per-channel scales are equal) and no groups; else asymmetric (`AsymmetricQuantizeFloats`:
  int8 range [-128, 127] over [min(x, 0), max(x, 0)] computed in double, a nudged zero point)
  with per-channel filter scales.
- DEPTHWISE_CONV_2D: per batch, asymmetric, per-channel filter scales.
- FULLY_CONNECTED: per row (batch) of [rows, input_size]; symmetric unless the operator's
  `asymmetric_quantize_inputs` is set; the filter's scale (per row of the filter when
  several).
Imported lazily (TVM).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax

_op = relax.op


def _f32(value: float) -> relax.Expr:
    return relax.const(value, "float32")


def quantise_symmetric(x: relax.Expr, axes: list[int]) -> tuple[relax.Expr, relax.Expr]:
    """(q as int16 in [-127, 127], scale) with scale = max|x| / 127 over `axes` (kept); an
    all-zero slice gets q = 0, scale 1, as in LiteRT."""
    # max(|min|, |max|) as LiteRT (the C target has no fabs lowering)
    r = _op.maximum(_op.max(x, axis=axes, keepdims=True),
                    _op.negative(_op.min(x, axis=axes, keepdims=True)))
    safe = _op.where(_op.equal(r, _f32(0.0)), _f32(127.0), r)
    inv = _op.divide(_f32(127.0), safe)
    scale = _op.divide(safe, _f32(127.0))
    q = _op.clip(_op.round(_op.multiply(x, inv)), -127, 127)
    return _op.astype(q, "int16"), scale


def quantise_asymmetric(x: relax.Expr, axes: list[int]) -> tuple[relax.Expr, relax.Expr]:
    """(q - zero_point as int16, scale): int8 over [min(x,0), max(x,0)], scale and zero point
    computed in double as LiteRT's AsymmetricQuantizeFloats, the values in float."""
    f64 = "float64"
    rmin = _op.astype(_op.minimum(_op.min(x, axis=axes, keepdims=True), _f32(0.0)), f64)
    rmax = _op.astype(_op.maximum(_op.max(x, axis=axes, keepdims=True), _f32(0.0)), f64)
    flat = _op.equal(rmin, rmax)
    span = _op.where(flat, relax.const(255.0, f64), _op.subtract(rmax, rmin))
    scale = _op.divide(span, relax.const(255.0, f64))
    lo, hi = _op.divide(rmin, scale), _op.divide(rmax, scale)
    from_min = _op.subtract(relax.const(-128.0, f64), lo)
    from_max = _op.subtract(relax.const(127.0, f64), hi)
    # |qmin| + |rmin / scale| and |qmax| + |rmax / scale|, with rmin <= 0 <= rmax
    err_min = _op.subtract(relax.const(128.0, f64), lo)
    err_max = _op.add(relax.const(127.0, f64), hi)
    zp = _op.where(_op.less(err_min, err_max), from_min, from_max)
    zp = _op.where(flat, relax.const(0.0, f64), _op.clip(_op.round(zp), -128, 127))
    scale32 = _op.astype(scale, "float32")
    inv = _op.divide(_f32(1.0), scale32)
    zp32 = _op.astype(zp, "float32")
    q = _op.clip(_op.round(_op.add(zp32, _op.multiply(x, inv))), -128, 127)
    centred = _op.subtract(_op.astype(q, "int16"), _op.astype(zp, "int16"))
    return centred, scale32


def _rescale(acc: relax.Expr, input_scale: relax.Expr, weight_scale: np.ndarray,
             bias: relax.Expr | None) -> relax.Expr:
    """float(acc) * (input scale * weight scale) + bias."""
    scale = _op.multiply(input_scale, relax.const(weight_scale.astype(np.float32)))
    out = _op.multiply(_op.astype(acc, "float32"), scale)
    return out if bias is None else _op.add(out, bias)


def weight_scales(tensor: Any) -> np.ndarray:
    q = tensor.Quantization()
    return np.asarray(q.ScaleAsNumpy(), np.float32).reshape(-1)


def weight_zero_points(tensor: Any) -> np.ndarray:
    q = tensor.Quantization()
    return (np.asarray(q.ZeroPointAsNumpy(), np.int64).reshape(-1) if q.ZeroPointLength()
            else np.zeros(1, np.int64))


def conv2d(x: relax.Expr, weight_hwio: np.ndarray, scales: np.ndarray, bias: relax.Expr | None,
           params: dict, per_channel: bool) -> relax.Expr:
    """Hybrid convolution (NHWC input, int8 HWIO/HWOI weights); `scales` one per output
    channel, or one."""
    if per_channel:
        q, s = quantise_asymmetric(x, [1, 2, 3])
    else:
        q, s = quantise_symmetric(x, [1, 2, 3])
    acc = _op.nn.conv2d(q, relax.const(weight_hwio, "int8"), out_dtype="int32", **params)
    return _rescale(acc, s, scales if per_channel else scales[:1], bias)


def fully_connected(x: relax.Expr, weight: np.ndarray, scales: np.ndarray,
                    bias: relax.Expr | None, asymmetric: bool) -> relax.Expr:
    """Hybrid FULLY_CONNECTED: x [rows, input_size], int8 weight [units, input_size]."""
    q, s = (quantise_asymmetric if asymmetric else quantise_symmetric)(x, [1])
    acc = _op.matmul(q, relax.const(np.ascontiguousarray(weight.T), "int8"), out_dtype="int32")
    per_unit = scales.reshape(1, -1) if scales.size > 1 else scales[:1]
    return _rescale(acc, s, per_unit, bias)
