"""Tiny quantised ONNX models built by hand with ``onnx.helper`` (NCHW, seeded numpy weights,
scales computed with numpy; no onnxruntime.quantization).

Two forms, as onnxruntime's static quantisation writes them:

- QDQ: QuantizeLinear/DequantizeLinear around float operators (`qdq_models()`);
- QOperator: QLinearConv, QLinearMatMul, com.microsoft::QGemm/QLinearAdd/... on integer
  tensors (`qoperator_models()`).

Every builder returns an ``onnx.ModelProto`` (opset 13, IR 8, plus com.microsoft 1 for the
contrib operators) that passes ``onnx.checker.check_model`` and runs in onnxruntime.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13  # per-axis QuantizeLinear/DequantizeLinear
IR_VERSION = 8
MS_DOMAIN = "com.microsoft"

_RANGES = {np.int8: (-128, 127), np.uint8: (0, 255)}
_ELEM = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8, np.float32: TensorProto.FLOAT,
         np.int32: TensorProto.INT32}


# ---------------------------------------------------------------- quantisation helpers


def qparams(lo: float, hi: float, dtype: type) -> tuple[np.float32, np.ndarray]:
    """Asymmetric (scale, zero point) covering [lo, hi] (0 always included) in ``dtype``."""
    qmin, qmax = _RANGES[dtype]
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / (qmax - qmin))
    zero = np.clip(np.rint(qmin - lo / scale), qmin, qmax).astype(dtype)
    return scale, np.asarray(zero, dtype)


def quantize(x: np.ndarray, scale: np.ndarray, zero: np.ndarray, dtype: type,
             axis: int | None = None) -> np.ndarray:
    """Round-half-even(x / scale) + zero, saturated (ONNX QuantizeLinear), per ``axis``."""
    scale, zero = np.asarray(scale, np.float32), np.asarray(zero)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    qmin, qmax = _RANGES[dtype] if dtype in _RANGES else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    return np.clip(np.rint(x / scale) + zero.astype(np.int64), qmin, qmax).astype(dtype)


def symmetric_weights(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 weights, scale (per tensor, or per ``axis``) and zero points (all 0)."""
    if axis is None:
        scale = np.float32(np.abs(w).max() / 127.0)
        return quantize(w, scale, np.int8(0), np.int8), scale, np.int8(0)
    other = tuple(i for i in range(w.ndim) if i != axis)
    scale = (np.abs(w).max(axis=other) / 127.0).astype(np.float32)
    zero = np.zeros(scale.shape, np.int8)
    return quantize(w, scale, zero, np.int8, axis), scale, zero


def int32_bias(b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Bias quantised with scale = input scale x weight scale (per channel), zero point 0."""
    return np.rint(b / np.asarray(scale, np.float32)).astype(np.int32)


# ---------------------------------------------------------------- graph helpers


class _Graph:
    """Collects nodes and initializers; ``q``/``dq`` add QuantizeLinear/DequantizeLinear."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray | np.generic) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, domain: str = "", **attrs) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output + "_node",
                                           domain=domain or None, **attrs))
        return output

    def q(self, x: str, scale, zero, out: str) -> str:
        return self.node("QuantizeLinear", [x, self.const(out + "_s", scale),
                                            self.const(out + "_z", zero)], out)

    def dq(self, x: str, scale, zero, out: str, axis: int | None = None) -> str:
        attrs = {} if axis is None else {"axis": axis}
        return self.node("DequantizeLinear", [x, self.const(out + "_s", scale),
                                              self.const(out + "_z", zero)], out, **attrs)

    def qdq(self, x: str, scale, zero, name: str) -> str:
        """x -> QuantizeLinear -> DequantizeLinear (an activation's fake quantisation)."""
        return self.dq(self.q(x, scale, zero, name + "_q"), scale, zero, name + "_dq")

    def model(self, name: str, inputs: Sequence[tuple[str, Sequence[int], type]],
              outputs: Sequence[tuple[str, Sequence[int], type]]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(n, _ELEM[t], list(s)) for n, s, t in inputs],
            [helper.make_tensor_value_info(n, _ELEM[t], list(s)) for n, s, t in outputs],
            self.inits)
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)]
        model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION,
                                  producer_name="tvmc-tests")
        onnx.checker.check_model(model)
        return model


def _w(rng: np.random.Generator, shape: Sequence[int], std: float = 0.3) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(np.float32)


# ---------------------------------------------------------------- QDQ models


def qdq_conv_relu(seed: int = 0) -> onnx.ModelProto:
    """x f32[1,3,8,8] -> QDQ(uint8, [-1,1]) -> Conv 3x3x4 pads 1 (int8 weights per tensor,
    int32 bias) -> Relu -> QDQ(uint8) -> y f32[1,4,8,8]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.uint8)
    wq, sw, zw = symmetric_weights(_w(rng, [4, 3, 3, 3]), None)
    x = g.qdq("x", sx, zx, "x")
    w = g.dq(g.const("w", wq), sw, zw, "w_dq")
    b = g.dq(g.const("b", int32_bias(_w(rng, [4]), sx * sw)), sx * sw, np.int32(0), "b_dq")
    y = g.node("Relu", [g.node("Conv", [x, w, b], "conv", pads=[1, 1, 1, 1])], "relu")
    sy, zy = qparams(0.0, 3.0, np.uint8)
    g.dq(g.q(y, sy, zy, "y_q"), sy, zy, "y")
    return g.model("qdq_conv_relu", [("x", [1, 3, 8, 8], np.float32)], [("y", [1, 4, 8, 8], np.float32)])


def qdq_depthwise(seed: int = 1) -> onnx.ModelProto:
    """x f32[1,4,9,9] -> QDQ(int8) -> depthwise Conv 3x3 stride 2 pads 1 (int8 weights per
    channel, axis 0; per-channel int32 bias) -> QDQ(int8) -> y f32[1,4,5,5]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    wq, sw, zw = symmetric_weights(_w(rng, [4, 1, 3, 3]) * np.float32([[[[0.2]]], [[[1]]], [[[3]]], [[[1]]]]), 0)
    x = g.qdq("x", sx, zx, "x")
    w = g.dq(g.const("w", wq), sw, zw, "w_dq", axis=0)
    b = g.dq(g.const("b", int32_bias(_w(rng, [4]), sx * sw)), sx * sw, np.zeros(4, np.int32), "b_dq", axis=0)
    y = g.node("Conv", [x, w, b], "conv", group=4, pads=[1, 1, 1, 1], strides=[2, 2])
    sy, zy = qparams(-2.0, 2.0, np.int8)
    g.dq(g.q(y, sy, zy, "y_q"), sy, zy, "y")
    return g.model("qdq_depthwise", [("x", [1, 4, 9, 9], np.float32)], [("y", [1, 4, 5, 5], np.float32)])


def qdq_gemm(seed: int = 2) -> onnx.ModelProto:
    """x f32[1,16] -> QDQ(uint8) -> Gemm transB (int8 W[8,16] per output row, axis 0; bias)
    -> QDQ(uint8) -> y f32[1,8]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.uint8)
    wq, sw, zw = symmetric_weights(_w(rng, [8, 16]), 0)
    x = g.qdq("x", sx, zx, "x")
    w = g.dq(g.const("w", wq), sw, zw, "w_dq", axis=0)
    b = g.dq(g.const("b", int32_bias(_w(rng, [8]), sx * sw)), sx * sw, np.zeros(8, np.int32), "b_dq", axis=0)
    y = g.node("Gemm", [x, w, b], "gemm", transB=1)
    sy, zy = qparams(-3.0, 3.0, np.uint8)
    g.dq(g.q(y, sy, zy, "y_q"), sy, zy, "y")
    return g.model("qdq_gemm", [("x", [1, 16], np.float32)], [("y", [1, 8], np.float32)])


def qdq_matmul(seed: int = 3) -> onnx.ModelProto:
    """x f32[1,4,16] -> QDQ(int8) -> MatMul (int8 W[16,8] per column, axis 1) -> QDQ(int8)
    -> y f32[1,4,8]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    wq, sw, zw = symmetric_weights(_w(rng, [16, 8]), 1)
    x = g.qdq("x", sx, zx, "x")
    w = g.dq(g.const("w", wq), sw, zw, "w_dq", axis=1)
    y = g.node("MatMul", [x, w], "matmul")
    sy, zy = qparams(-3.0, 2.5, np.int8)
    g.dq(g.q(y, sy, zy, "y_q"), sy, zy, "y")
    return g.model("qdq_matmul", [("x", [1, 4, 16], np.float32)], [("y", [1, 4, 8], np.float32)])


def qdq_add(seed: int = 4) -> onnx.ModelProto:
    """a, b f32[1,4,6,6] -> QDQ(uint8, different scales) -> Add -> QDQ(uint8) -> y."""
    g = _Graph()
    sa, za = qparams(-1.0, 1.0, np.uint8)
    sb, zb = qparams(-0.5, 1.5, np.uint8)
    y = g.node("Add", [g.qdq("a", sa, za, "a"), g.qdq("b", sb, zb, "b")], "add")
    sy, zy = qparams(-1.5, 2.5, np.uint8)
    g.dq(g.q(y, sy, zy, "y_q"), sy, zy, "y")
    shape = [1, 4, 6, 6]
    return g.model("qdq_add", [("a", shape, np.float32), ("b", shape, np.float32)],
                   [("y", shape, np.float32)])


def qdq_int8_io(seed: int = 5) -> onnx.ModelProto:
    """x int8[1,2,6,6] -> DequantizeLinear (zero point -3) -> Conv 3x3x4 pads 1 (per-channel
    int8 weights and bias) -> Relu -> QuantizeLinear(int8) -> y int8[1,4,6,6]: integer in and out."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = np.float32(0.02), np.int8(-3)
    wq, sw, zw = symmetric_weights(_w(rng, [4, 2, 3, 3]), 0)
    x = g.dq("x", sx, zx, "x_dq")
    w = g.dq(g.const("w", wq), sw, zw, "w_dq", axis=0)
    b = g.dq(g.const("b", int32_bias(_w(rng, [4]), sx * sw)), sx * sw, np.zeros(4, np.int32), "b_dq", axis=0)
    y = g.node("Relu", [g.node("Conv", [x, w, b], "conv", pads=[1, 1, 1, 1])], "relu")
    sy, zy = qparams(0.0, 4.0, np.int8)
    g.q(y, sy, zy, "y")
    return g.model("qdq_int8_io", [("x", [1, 2, 6, 6], np.int8)], [("y", [1, 4, 6, 6], np.int8)])


def _conv(g: _Graph, rng: np.random.Generator, x: str, sx, cin: int, cout: int, name: str,
          kernel: int = 3, group: int = 1, **attrs) -> str:
    """Conv with per-channel int8 weights (axis 0) and an int32 bias, on DequantizeLinear x."""
    wq, sw, zw = symmetric_weights(_w(rng, [cout, cin // group, kernel, kernel]), 0)
    w = g.dq(g.const(name + "_w", wq), sw, zw, name + "_w_dq", axis=0)
    b = g.dq(g.const(name + "_b", int32_bias(_w(rng, [cout], 0.1), sx * sw)), sx * sw,
             np.zeros(cout, np.int32), name + "_b_dq", axis=0)
    return g.node("Conv", [x, w, b], name, group=group, kernel_shape=[kernel, kernel], **attrs)


def qdq_cnn(seed: int = 6) -> onnx.ModelProto:
    """A small CNN in the static-quantisation pattern, over the integer kernels' layout work:
    x f32[1,3,10,10] -> Conv 3x3 stride 2 pads 1 (not TFLite's SAME) + Clip(0, 6) -> depthwise
    3x3 + Relu -> MaxPool 2x2 -> AveragePool 3x3 pads 1 -> GlobalAveragePool -> Flatten -> Gemm
    -> Softmax (output 1/256, -128) -> y f32[1,5]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    x = g.qdq("x", sx, zx, "x")
    s1, z1 = qparams(0.0, 6.0, np.int8)
    c1 = _conv(g, rng, x, sx, 3, 8, "c1", strides=[2, 2], pads=[1, 1, 1, 1])
    clip = g.node("Clip", [c1, g.const("lo", np.float32(0)), g.const("hi", np.float32(6))], "clip")
    a1 = g.qdq(clip, s1, z1, "a1")
    s2, z2 = qparams(0.0, 4.0, np.int8)
    a2 = g.qdq(g.node("Relu", [_conv(g, rng, a1, s1, 8, 8, "c2", group=8, pads=[1, 1, 1, 1])],
                      "relu2"), s2, z2, "a2")
    a3 = g.qdq(g.node("MaxPool", [a2], "pool", kernel_shape=[2, 2], strides=[2, 2]), s2, z2, "a3")
    a4 = g.qdq(g.node("AveragePool", [a3], "avg", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
               s2, z2, "a4")
    s5, z5 = qparams(0.0, 2.0, np.int8)
    a5 = g.qdq(g.node("GlobalAveragePool", [a4], "gap"), s5, z5, "a5")
    a6 = g.qdq(g.node("Flatten", [a5], "flat"), s5, z5, "a6")
    wq, sw, zw = symmetric_weights(_w(rng, [5, 8]), 0)
    w = g.dq(g.const("fc_w", wq), sw, zw, "fc_w_dq", axis=0)
    logits = g.node("Gemm", [a6, w, g.const("fc_b", _w(rng, [5], 0.1))], "fc", transB=1)
    s7, z7 = qparams(-2.0, 2.0, np.int8)
    a7 = g.qdq(logits, s7, z7, "a7")
    g.dq(g.q(g.node("Softmax", [a7], "softmax", axis=-1), np.float32(1 / 256), np.int8(-128),
             "y_q"), np.float32(1 / 256), np.int8(-128), "y")
    return g.model("qdq_cnn", [("x", [1, 3, 10, 10], np.float32)], [("y", [1, 5], np.float32)])


def qdq_elementwise(seed: int = 7) -> onnx.ModelProto:
    """Tables and broadcasts on an NHWC tensor: x f32[1,2,6,6] -> Conv 1x1 -> Sigmoid -> Mul by
    a constant [1,4,1,1] -> Tanh -> LeakyRelu -> Add b f32[1,4,6,6] -> y f32[1,4,6,6]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    s1, z1 = qparams(-2.0, 2.0, np.int8)
    a1 = g.qdq(_conv(g, rng, g.qdq("x", sx, zx, "x"), sx, 2, 4, "c1", kernel=1), s1, z1, "a1")
    s2, z2 = np.float32(1 / 256), np.int8(-128)
    a2 = g.qdq(g.node("Sigmoid", [a1], "sig"), s2, z2, "a2")
    mq = np.array([40, -90, 127, 3], np.int8).reshape(1, 4, 1, 1)
    m = g.dq(g.const("m", mq), np.float32(0.02), np.int8(0), "m_dq")
    s3, z3 = qparams(-1.0, 1.0, np.int8)
    a3 = g.qdq(g.node("Mul", [a2, m], "mul"), s3, z3, "a3")
    a4 = g.qdq(g.node("Tanh", [a3], "tanh"), s3, z3, "a4")
    a5 = g.qdq(g.node("LeakyRelu", [a4], "leaky", alpha=0.2), s3, z3, "a5")
    sb, zb = qparams(-1.0, 1.0, np.int8)
    sy, zy = qparams(-2.0, 2.0, np.int8)
    g.dq(g.q(g.node("Add", [a5, g.qdq("b", sb, zb, "b")], "add"), sy, zy, "y_q"), sy, zy, "y")
    shape = [1, 4, 6, 6]
    return g.model("qdq_elementwise", [("x", [1, 2, 6, 6], np.float32), ("b", shape, np.float32)],
                   [("y", shape, np.float32)])


def qdq_layout(seed: int = 8) -> onnx.ModelProto:
    """ONNX element order after NHWC kernels: x f32[1,3,6,6] -> two Conv 3x3 -> Concat(axis 1)
    -> Pad [0,0,1,2]+[0,0,0,1] -> Transpose(0,2,3,1) -> Reshape [1,-1] -> int8 y[1,7*9*8]
    (no DequantizeLinear: an integer output)."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    x = g.qdq("x", sx, zx, "x")
    s1, z1 = qparams(-3.0, 3.0, np.int8)
    a = g.qdq(_conv(g, rng, x, sx, 3, 4, "ca", pads=[1, 1, 1, 1]), s1, z1, "a")
    b = g.qdq(_conv(g, rng, x, sx, 3, 4, "cb", pads=[1, 1, 1, 1]), s1, z1, "b")
    cat = g.qdq(g.node("Concat", [a, b], "cat", axis=1), s1, z1, "cat")
    pads = g.const("pads", np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64))
    pad = g.qdq(g.node("Pad", [cat, pads], "pad"), s1, z1, "padded")
    tr = g.qdq(g.node("Transpose", [pad], "tr", perm=[0, 2, 3, 1]), s1, z1, "tr")
    flat = g.node("Reshape", [tr, g.const("shape", np.array([1, -1], np.int64))], "flat")
    g.q(flat, s1, z1, "y")
    return g.model("qdq_layout", [("x", [1, 3, 6, 6], np.float32)], [("y", [1, 7 * 9 * 8], np.int8)])


def qdq_float_form(seed: int = 9) -> onnx.ModelProto:
    """An operator without an integer kernel inside the pattern: x f32[1,2,5,5] -> Conv 3x3
    -> ReduceMax(3) (runs in float, with a warning) -> ReduceMean(2) -> Softmax quantised with
    scale 1/255 (ONNX's usual, not TFLite's 1/256) -> y f32[1,6]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    s1, z1 = qparams(-2.0, 2.0, np.int8)
    a = g.qdq(_conv(g, rng, g.qdq("x", sx, zx, "x"), sx, 2, 6, "c", pads=[1, 1, 1, 1]), s1, z1, "a")
    top = g.qdq(g.node("ReduceMax", [a], "max", axes=[3], keepdims=0), s1, z1, "top")
    m = g.qdq(g.node("ReduceMean", [top], "mean", axes=[2], keepdims=0), s1, z1, "m")
    s, z = np.float32(1 / 255), np.int8(-128)
    g.dq(g.q(g.node("Softmax", [m], "softmax", axis=-1), s, z, "y_q"), s, z, "y")
    return g.model("qdq_float_form", [("x", [1, 2, 5, 5], np.float32)], [("y", [1, 6], np.float32)])


def qdq_outside_pattern(seed: int = 10) -> onnx.ModelProto:
    """Not the static-quantisation pattern (a float Relu output reaches the model output
    unquantised): the whole model takes the float form, with a warning."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    g.node("Relu", [_conv(g, rng, g.qdq("x", sx, zx, "x"), sx, 2, 3, "c", pads=[1, 1, 1, 1])], "y")
    return g.model("qdq_outside_pattern", [("x", [1, 2, 4, 4], np.float32)],
                   [("y", [1, 3, 4, 4], np.float32)])


# ---------------------------------------------------------------- QOperator models


def qop_conv(seed: int = 10) -> onnx.ModelProto:
    """x uint8[1,3,8,8] -> QLinearConv 3x3x6 pads 1 stride 1 (int8 weights per output channel,
    int32 bias) -> y uint8[1,6,8,8]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.uint8)
    wq, sw, zw = symmetric_weights(_w(rng, [6, 3, 3, 3]), 0)
    sy, zy = qparams(-2.0, 3.0, np.uint8)
    g.node("QLinearConv", ["x", g.const("x_s", sx), g.const("x_z", zx), g.const("w", wq),
                           g.const("w_s", sw), g.const("w_z", zw), g.const("y_s", sy),
                           g.const("y_z", zy), g.const("b", int32_bias(_w(rng, [6]), sx * sw))],
           "y", pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    return g.model("qop_conv", [("x", [1, 3, 8, 8], np.uint8)], [("y", [1, 6, 8, 8], np.uint8)])


def qop_depthwise_float_io(seed: int = 11) -> onnx.ModelProto:
    """x f32[1,4,8,8] -> QuantizeLinear(int8) -> QLinearConv depthwise 3x3 stride 2 (int8
    per-channel weights, no bias) -> DequantizeLinear -> y f32[1,4,4,4]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.int8)
    wq, sw, zw = symmetric_weights(_w(rng, [4, 1, 3, 3]), 0)
    sy, zy = qparams(-1.5, 1.5, np.int8)
    x = g.q("x", sx, zx, "xq")
    g.node("QLinearConv", [x, g.const("x_s", sx), g.const("x_z", zx), g.const("w", wq),
                           g.const("w_s", sw), g.const("w_z", zw), g.const("yq_s", sy),
                           g.const("yq_z", zy)],
           "yq", pads=[1, 1, 1, 1], strides=[2, 2], group=4)
    g.dq("yq", sy, zy, "y")
    return g.model("qop_depthwise_float_io", [("x", [1, 4, 8, 8], np.float32)],
                   [("y", [1, 4, 4, 4], np.float32)])


def qop_matmul(seed: int = 12) -> onnx.ModelProto:
    """a uint8[3,16] x b int8[16,8] (constant, per tensor) -> QLinearMatMul -> y uint8[3,8]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sa, za = qparams(-1.0, 1.0, np.uint8)
    wq, sw, zw = symmetric_weights(_w(rng, [16, 8]), None)
    sy, zy = qparams(-3.0, 3.0, np.uint8)
    g.node("QLinearMatMul", ["a", g.const("a_s", sa), g.const("a_z", za), g.const("b", wq),
                             g.const("b_s", sw), g.const("b_z", zw), g.const("y_s", sy),
                             g.const("y_z", zy)], "y")
    return g.model("qop_matmul", [("a", [3, 16], np.uint8)], [("y", [3, 8], np.uint8)])


def qop_gemm(seed: int = 13, alpha: float = 1.0) -> onnx.ModelProto:
    """a uint8[2,16] -> com.microsoft::QGemm transB (int8 B[8,16] per output row, int32 C
    quantised with alpha * a_scale * b_scale) -> y uint8[2,8]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    sa, za = qparams(-1.0, 1.0, np.uint8)
    wq, sw, zw = symmetric_weights(_w(rng, [8, 16]), 0)
    sy, zy = qparams(-3.0, 3.0, np.uint8)
    g.node("QGemm", ["a", g.const("a_s", sa), g.const("a_z", za), g.const("b", wq),
                     g.const("b_s", sw), g.const("b_z", zw),
                     g.const("c", int32_bias(_w(rng, [8]), np.float32(alpha) * sa * sw)),
                     g.const("y_s", sy), g.const("y_z", zy)], "y", domain=MS_DOMAIN, transB=1,
           **({"alpha": alpha} if alpha != 1.0 else {}))
    return g.model("qop_gemm", [("a", [2, 16], np.uint8)], [("y", [2, 8], np.uint8)])


def qop_gemm_alpha() -> onnx.ModelProto:
    """QGemm with alpha = 0.5 (folded into b_scale by the rewrite)."""
    return qop_gemm(seed=15, alpha=0.5)


def _qop_binary(op: str, name: str, dtype: type) -> onnx.ModelProto:
    g = _Graph()
    sa, za = qparams(-1.0, 1.0, dtype)
    sb, zb = qparams(-0.5, 2.0, dtype)
    sy, zy = qparams(-1.5, 2.5, dtype)
    g.node(op, ["a", g.const("a_s", sa), g.const("a_z", za), "b", g.const("b_s", sb),
                g.const("b_z", zb), g.const("y_s", sy), g.const("y_z", zy)], "y", domain=MS_DOMAIN)
    return g.model(name, [("a", [1, 4, 5, 5], dtype), ("b", [1, 4, 1, 1], dtype)],
                   [("y", [1, 4, 5, 5], dtype)])


def qop_add() -> onnx.ModelProto:
    """a int8[1,4,5,5] + b int8[1,4,1,1] (broadcast) -> com.microsoft::QLinearAdd -> y int8."""
    return _qop_binary("QLinearAdd", "qop_add", np.int8)


def qop_mul() -> onnx.ModelProto:
    """a uint8[1,4,5,5] * b uint8[1,4,1,1] (broadcast) -> com.microsoft::QLinearMul -> y uint8."""
    return _qop_binary("QLinearMul", "qop_mul", np.uint8)


def qop_global_average_pool() -> onnx.ModelProto:
    """x uint8[1,4,5,5] -> com.microsoft::QLinearGlobalAveragePool -> y uint8[1,4,1,1]."""
    g = _Graph()
    sx, zx = qparams(-1.0, 1.0, np.uint8)
    sy, zy = qparams(-0.5, 0.7, np.uint8)
    g.node("QLinearGlobalAveragePool", ["x", g.const("x_s", sx), g.const("x_z", zx),
                                        g.const("y_s", sy), g.const("y_z", zy)], "y",
           domain=MS_DOMAIN, channels_last=0)
    return g.model("qop_gap", [("x", [1, 4, 5, 5], np.uint8)], [("y", [1, 4, 1, 1], np.uint8)])


def qop_matmul_integer(seed: int = 14) -> onnx.ModelProto:
    """a uint8[2,16] (zero point 3) x b int8[16,4] (constant) -> MatMulInteger -> y int32[2,4]."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    b = rng.integers(-128, 128, size=(16, 4)).astype(np.int8)
    g.node("MatMulInteger", ["a", g.const("b", b), g.const("a_z", np.uint8(3))], "y")
    return g.model("qop_matmul_integer", [("a", [2, 16], np.uint8)], [("y", [2, 4], np.int32)])


def qop_unsupported() -> onnx.ModelProto:
    """com.microsoft::QLinearReduceMean: a QOperator the rewrite does not know (stays custom)."""
    g = _Graph()
    g.node("QLinearReduceMean", ["x", g.const("x_s", np.float32(0.1)), g.const("x_z", np.uint8(128)),
                                 g.const("y_s", np.float32(0.1)), g.const("y_z", np.uint8(128))],
           "y", domain=MS_DOMAIN, axes=[1], keepdims=1)
    return g.model("qop_unsupported", [("x", [1, 4], np.uint8)], [("y", [1, 1], np.uint8)])


def qop_unary_concat_softmax() -> onnx.ModelProto:
    """com.microsoft::QLinearSigmoid, QLinearLeakyRelu, QLinearConcat (inputs at different
    scales) and QLinearSoftmax on int8: x int8[1,6] -> y int8[1,12]."""
    g = _Graph()
    sx, zx = qparams(-2.0, 2.0, np.int8)
    sa, za = np.float32(1 / 256), np.int8(-128)
    sb, zb = qparams(-0.5, 2.0, np.int8)
    sc, zc = qparams(-1.0, 2.0, np.int8)
    sy, zy = np.float32(1 / 256), np.int8(-128)
    xs, xz = g.const("x_s", sx), g.const("x_z", zx)
    g.node("QLinearSigmoid", ["x", xs, xz, g.const("a_s", sa), g.const("a_z", za)], "a",
           domain=MS_DOMAIN)
    g.node("QLinearLeakyRelu", ["x", xs, xz, g.const("b_s", sb), g.const("b_z", zb)], "b",
           domain=MS_DOMAIN, alpha=0.1)
    g.node("QLinearConcat", [g.const("c_s", sc), g.const("c_z", zc), "a", "a_s", "a_z",
                             "b", "b_s", "b_z"], "c", domain=MS_DOMAIN, axis=1)
    g.node("QLinearSoftmax", ["c", "c_s", "c_z", g.const("y_s", sy), g.const("y_z", zy)], "y",
           domain=MS_DOMAIN, axis=-1, opset=13)
    return g.model("qop_unary_concat_softmax", [("x", [1, 6], np.int8)], [("y", [1, 12], np.int8)])


def float_cnn_for_quantisation(seed: int = 20) -> onnx.ModelProto:
    """A float32 CNN for onnxruntime's own static quantiser (the tests quantise it in every
    format): x f32[1,3,16,16] -> Conv stride 2 + Relu -> depthwise + Clip(0, 6) -> 1x1 Conv
    -> residual Add -> MaxPool -> two Conv branches -> Concat -> x * Sigmoid(x) -> GAP ->
    Flatten -> Gemm -> Softmax -> y f32[1,10]."""
    rng = np.random.default_rng(seed)
    g = _Graph()

    def w(name: str, shape: Sequence[int], std: float = 0.3) -> str:
        return g.const(name, _w(rng, shape, std))

    g.node("Relu", [g.node("Conv", ["x", w("w1", [8, 3, 3, 3]), w("b1", [8], 0.1)], "c1",
                           pads=[1, 1, 1, 1], strides=[2, 2])], "r1")
    c2 = g.node("Conv", ["r1", w("w2", [8, 1, 3, 3]), w("b2", [8], 0.1)], "c2", pads=[1, 1, 1, 1],
                group=8)
    g.node("Clip", [c2, g.const("lo", np.float32(0)), g.const("hi", np.float32(6))], "r2")
    g.node("Add", [g.node("Conv", ["r2", w("w3", [8, 8, 1, 1]), w("b3", [8], 0.1)], "c3"), "r1"],
           "a3")
    g.node("MaxPool", ["a3"], "p3", kernel_shape=[2, 2], strides=[2, 2])
    left = g.node("Conv", ["p3", w("w4", [4, 8, 1, 1]), w("b4", [4], 0.1)], "c4a")
    right = g.node("Conv", ["p3", w("w5", [4, 8, 3, 3]), w("b5", [4], 0.1)], "c4b", pads=[1, 1, 1, 1])
    cat = g.node("Concat", [left, right], "cat", axis=1)
    swish = g.node("Mul", [cat, g.node("Sigmoid", [cat], "sg")], "sw")
    flat = g.node("Flatten", [g.node("GlobalAveragePool", [swish], "gap")], "fl")
    logits = g.node("Gemm", [flat, w("wf", [10, 8]), w("bf", [10], 0.1)], "logits", transB=1)
    g.node("Softmax", [logits], "y", axis=-1)
    return g.model("float_cnn", [("x", [1, 3, 16, 16], np.float32)], [("y", [1, 10], np.float32)])


def qdq_models() -> dict[str, Callable[[], onnx.ModelProto]]:
    return {"qdq_conv_relu": qdq_conv_relu, "qdq_depthwise": qdq_depthwise, "qdq_gemm": qdq_gemm,
            "qdq_matmul": qdq_matmul, "qdq_add": qdq_add, "qdq_int8_io": qdq_int8_io,
            "qdq_cnn": qdq_cnn, "qdq_elementwise": qdq_elementwise, "qdq_layout": qdq_layout,
            "qdq_float_form": qdq_float_form, "qdq_outside_pattern": qdq_outside_pattern}


def qoperator_models() -> dict[str, Callable[[], onnx.ModelProto]]:
    return {"qop_conv": qop_conv, "qop_depthwise_float_io": qop_depthwise_float_io,
            "qop_matmul": qop_matmul, "qop_gemm": qop_gemm, "qop_gemm_alpha": qop_gemm_alpha,
            "qop_add": qop_add,
            "qop_mul": qop_mul, "qop_gap": qop_global_average_pool,
            "qop_unary_concat_softmax": qop_unary_concat_softmax,
            "qop_matmul_integer": qop_matmul_integer}
