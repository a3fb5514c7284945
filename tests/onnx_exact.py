"""An exact reference for quantised ONNX models: onnx's ReferenceEvaluator, with the
quantisation operators computed in float64 and onnxruntime's com.microsoft QOperators written
out from their definitions (dequantise, compute exactly, quantise once, half to even).

Why not onnxruntime: its u8s8 integer GEMM saturates on x86 CPUs without AVX-VNNI (thousands of
steps off on QLinearConv/MatMulInteger), so its verdict depends on the CPU. Everything here is
plain numpy: the same answer on every machine."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

MS_DOMAIN = "com.microsoft"


def _per_axis(param: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A scale or zero point broadcastable along ``axis`` of an ``ndim``-D tensor."""
    param = np.asarray(param)
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return param.reshape(shape)


def dequantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None,
               axis: int = 1) -> np.ndarray:
    """(x - zero) * scale in float64 (float32 scales are exact in float64)."""
    x = np.asarray(x)
    zero = np.zeros((), np.int64) if zero is None else _per_axis(zero, x.ndim, axis)
    scale = _per_axis(np.asarray(scale, np.float64), x.ndim, axis)
    return (x.astype(np.int64) - zero.astype(np.int64)) * scale


def quantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None,
             axis: int = 1, dtype: np.dtype | None = None) -> np.ndarray:
    """round_half_even(x / scale) + zero, saturated to the zero point's type (uint8 default)."""
    x = np.asarray(x, np.float64)
    dtype = np.dtype(dtype or (np.asarray(zero).dtype if zero is not None else np.uint8))
    zero = np.zeros((), np.int64) if zero is None else _per_axis(zero, x.ndim, axis)
    scale = _per_axis(np.asarray(scale, np.float64), x.ndim, axis)
    info = np.iinfo(dtype)
    q = np.rint(x / scale) + zero.astype(np.int64)
    return np.clip(q, info.min, info.max).astype(dtype)


class DequantizeLinear(OpRun):
    op_domain = ""

    def _run(self, x, scale, zero=None, axis=None, **_unused):
        return (dequantize(x, scale, zero, 1 if axis is None else axis),)


class QuantizeLinear(OpRun):
    op_domain = ""

    def _run(self, x, scale, zero=None, axis=None, **_unused):
        return (quantize(x, scale, zero, 1 if axis is None else axis),)


class _QLinearBinary(OpRun):
    op_domain = MS_DOMAIN

    def _run(self, a, a_s, a_z, b, b_s, b_z, c_s, c_z=None):
        value = self.combine(dequantize(a, a_s, a_z), dequantize(b, b_s, b_z))
        return (quantize(value, c_s, c_z, dtype=np.asarray(a).dtype),)


class QLinearAdd(_QLinearBinary):
    combine = staticmethod(np.add)


class QLinearMul(_QLinearBinary):
    combine = staticmethod(np.multiply)


class QGemm(OpRun):
    op_domain = MS_DOMAIN

    def _run(self, a, a_s, a_z, b, b_s, b_z, c=None, y_s=None, y_z=None,
             alpha=None, transA=None, transB=None):
        a = dequantize(a, a_s, a_z)
        # per output channel B scales run along N: axis 0 of B transposed, 1 otherwise
        b = dequantize(b, b_s, b_z, axis=0 if transB else 1)
        a, b = (a.T if transA else a), (b.T if transB else b)
        y = (1.0 if alpha is None else alpha) * (a @ b)
        if c is not None:  # int32, quantised with alpha * a_scale * b_scale
            scale = (1.0 if alpha is None else alpha) * np.float64(a_s) * np.asarray(b_s, np.float64)
            y = y + np.asarray(c, np.float64) * scale
        if y_s is None:
            return (y.astype(np.float32),)
        return (quantize(y, y_s, y_z),)


class QLinearGlobalAveragePool(OpRun):
    op_domain = MS_DOMAIN

    def _run(self, x, x_s, x_z, y_s, y_z, channels_last=None):
        axes = (1, 2) if channels_last else tuple(range(2, np.ndim(x)))
        mean = dequantize(x, x_s, x_z).mean(axis=axes, keepdims=True)
        return (quantize(mean, y_s, y_z, dtype=np.asarray(x).dtype),)


class _QLinearUnary(OpRun):
    op_domain = MS_DOMAIN

    def _run(self, x, x_s, x_z, y_s, y_z=None, **attrs):
        value = self.function(dequantize(x, x_s, x_z), **attrs)
        return (quantize(value, y_s, y_z, dtype=np.asarray(x).dtype),)


class QLinearSigmoid(_QLinearUnary):
    def function(self, x):
        return 1.0 / (1.0 + np.exp(-x))


class QLinearLeakyRelu(_QLinearUnary):
    def function(self, x, alpha=None):
        return np.where(x >= 0, x, (0.01 if alpha is None else alpha) * x)


class QLinearSoftmax(_QLinearUnary):
    def function(self, x, axis=None, opset=None):  # noqa: ARG002
        axis = -1 if axis is None else axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


class QLinearConcat(OpRun):
    op_domain = MS_DOMAIN

    def _run(self, y_s, y_z, *triples, axis=None):
        parts = [dequantize(triples[i], triples[i + 1], triples[i + 2])
                 for i in range(0, len(triples), 3)]
        return (quantize(np.concatenate(parts, axis=axis), y_s, y_z,
                         dtype=np.asarray(triples[0]).dtype),)


def dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, float, int]:
    """DynamicQuantizeLinear's definition: (uint8 q, scale, zero point); the range widened to
    hold 0, scale (max - min) / 255 as float32 (the output's type), halves to even. An
    all-zero x (no range) gets scale 1: every value is its zero point then."""
    x = np.asarray(x, np.float32)
    low, high = min(float(x.min(initial=0)), 0.0), max(float(x.max(initial=0)), 0.0)
    scale = float(np.float32((np.float32(high) - np.float32(low)) / np.float32(255))) \
        if high > low else 1.0
    zero = int(np.clip(np.rint(-np.float64(low) / scale), 0, 255))
    q = np.clip(np.rint(x.astype(np.float64) / scale) + zero, 0, 255).astype(np.uint8)
    return q, scale, zero


class DynamicQuantizeLSTM(OpRun):
    """com.microsoft DynamicQuantizeLSTM from its definition: X quantised once, H(t-1) at every
    step (dynamic_quantize), exact integer products dequantised with the scales per direction
    or per gate column, the LSTM (gates i, o, f, c; no peepholes, clip, default activations)
    in float64."""

    op_domain = MS_DOMAIN

    def _run(self, x, w, r, b=None, seq=None, h0=None, c0=None, p=None, w_scale=None,
             w_zero=None, r_scale=None, r_zero=None, direction=None, hidden_size=None,
             **_unused):
        directions = 2 if direction in (b"bidirectional", "bidirectional") else 1
        reverse = direction in (b"reverse", "reverse")
        steps, batch, _ = x.shape
        hidden = int(hidden_size)
        columns = 4 * hidden
        xq, xs, xz = dynamic_quantize(x)

        def columnwise(v: np.ndarray, d: int) -> np.ndarray:  # [D] or [D, 4H] -> [4H]
            v = np.asarray(v)
            return np.full(columns, v[d]) if v.ndim == 1 else v[d]

        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        y = np.zeros((steps, directions, batch, hidden))
        yh = np.zeros((directions, batch, hidden))
        yc = np.zeros((directions, batch, hidden))
        for d in range(directions):
            w_int = w[d].astype(np.int64) - columnwise(w_zero, d).astype(np.int64)
            r_int = r[d].astype(np.int64) - columnwise(r_zero, d).astype(np.int64)
            ws = columnwise(w_scale, d).astype(np.float64)
            rs = columnwise(r_scale, d).astype(np.float64)
            bias = np.zeros(columns) if b is None else \
                b[d, :columns].astype(np.float64) + b[d, columns:]
            order = range(steps - 1, -1, -1) if reverse or d == 1 else range(steps)
            for n in range(batch):
                h = np.zeros(hidden) if h0 is None else h0[d, n].astype(np.float64)
                c = np.zeros(hidden) if c0 is None else c0[d, n].astype(np.float64)
                for t in order:
                    gates = ((xq[t, n].astype(np.int64) - xz) @ w_int) * (xs * ws) + bias
                    hq, hs, hz = dynamic_quantize(h.astype(np.float32))
                    gates = gates + ((hq.astype(np.int64) - hz) @ r_int) * (hs * rs)
                    i, o, f, g = np.split(gates, 4)
                    c = sig(f) * c + sig(i) * np.tanh(g)
                    h = sig(o) * np.tanh(c)
                    y[t, d, n] = h
                yh[d, n], yc[d, n] = h, c
        return tuple(v.astype(np.float32) for v in (y, yh, yc))


class DynamicQuantizeLinear(OpRun):
    """onnx's reference, except an input whose range (widened to hold 0) is empty, all zero:
    scale 1 as onnxruntime gives it (onnx's reference gives 1/255, its comment quoting
    onnxruntime's 1.0f); y and the zero point are 0 in all three."""

    def _run(self, x):
        from onnx.reference.ops.op_dynamic_quantize_linear import DynamicQuantizeLinear as Ref

        y, scale, zero = Ref._run(self, x)
        if not np.any(np.asarray(x)):
            scale = np.array(np.float32(1))
        return y, scale, zero


EXACT_OPS = [DequantizeLinear, QuantizeLinear, QLinearAdd, QLinearMul, QGemm,
             QLinearGlobalAveragePool, QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax,
             QLinearConcat, DynamicQuantizeLinear, DynamicQuantizeLSTM]


def run_onnx_exact(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs in the graph's order; float outputs as float32, integers in their own type."""
    evaluator = ReferenceEvaluator(model, new_ops=EXACT_OPS)
    outputs = evaluator.run(None, {k: np.asarray(v) for k, v in inputs.items()})
    return [o.astype(np.float32) if o.dtype == np.float64 else o for o in outputs]
