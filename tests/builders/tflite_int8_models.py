"""Fully int8-quantised TFLite test models for the integer kernels (no TensorFlow needed).

Every builder returns ``bytes`` that TFLite Micro runs. Weights are random per-channel int8
(``quantize_per_channel``), biases int32; output scales are chosen so that a good share of the
outputs saturate at -128 / 127 on random full-range inputs, and input zero points are non-zero
so that padding has to use them.
"""
from __future__ import annotations

import zlib
from typing import Callable

import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.Padding import Padding

from .tflite_models import TFLiteGraph, quantize_per_channel

RELU, RELU6, NONE = (ActivationFunctionType.RELU, ActivationFunctionType.RELU6,
                     ActivationFunctionType.NONE)


def _per_channel(g: TFLiteGraph, name: str, w: np.ndarray, in_scale: float, axis: int
                 ) -> tuple[int, int, np.ndarray]:
    """int8 weights (per channel along `axis`) and an int32 bias; returns the tensors and the
    weight scales."""
    q, scales = quantize_per_channel(w, axis=axis)
    channels = w.shape[axis]
    # crc32, not hash(): str hashes are salted per process, so the model would change per run
    rng = np.random.default_rng(zlib.crc32(name.encode()) % 1000)
    bias = rng.integers(-2000, 2000, size=channels).astype(np.int32)
    tw = g.add_const(f"{name}/weights", q, scale=scales, zero_point=0, axis=axis)
    tb = g.add_const(f"{name}/bias", bias, scale=in_scale * scales, zero_point=0)
    return tw, tb, scales


def _out_scale(in_scale: float, w: np.ndarray, taps: int, spread: float = 1.2) -> float:
    """Output scale such that about 10-20% of outputs saturate on full-range inputs."""
    std = np.sqrt(taps) * 74.0 * in_scale * float(np.std(w))
    return float(spread * std / 127.0)


def conv_same_stride2(seed: int = 10) -> bytes:
    """x[1,9,9,3] (zp 7) -> CONV_2D 3x3 stride 2 SAME, per channel, RELU6 -> [1,5,5,6];
    second output: CONV_2D 1x1 VALID (no activation) on the input -> [1,9,9,4]."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = 0.05, 7
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 9, 9, 3], "int8", scale=s_in, zero_point=zp_in)
    w1 = rng.standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.3
    tw1, tb1, _ = _per_channel(g, "c1", w1, s_in, 0)
    y1 = g.add_tensor("y1", [1, 5, 5, 6], "int8", scale=0.05, zero_point=-20)
    g.add_operator("CONV_2D", [x, tw1, tb1], [y1], ("Conv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 2, "StrideH": 2, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": RELU6}), version=3)
    w2 = rng.standard_normal((4, 1, 1, 3)).astype(np.float32) * 0.5
    tw2, tb2, _ = _per_channel(g, "c2", w2, s_in, 0)
    y2 = g.add_tensor("y2", [1, 9, 9, 4], "int8", scale=_out_scale(s_in, w2, 3), zero_point=3)
    g.add_operator("CONV_2D", [x, tw2, tb2], [y2], ("Conv2DOptions", {
        "Padding": Padding.VALID, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": NONE}), version=3)
    g.set_io([x], [y1, y2])
    return g.to_bytes()


def conv_dilated_depthwise(seed: int = 11) -> bytes:
    """x[1,10,8,4] (zp -9) -> CONV_2D 3x3 dilation 2 SAME -> [1,10,8,4]
    -> DEPTHWISE_CONV_2D 3x3 multiplier 2 SAME stride (2,1), RELU -> [1,5,8,8]."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = 0.04, -9
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 10, 8, 4], "int8", scale=s_in, zero_point=zp_in)
    w1 = rng.standard_normal((4, 3, 3, 4)).astype(np.float32) * 0.3
    tw1, tb1, _ = _per_channel(g, "c1", w1, s_in, 0)
    s_mid = _out_scale(s_in, w1, 36)
    mid = g.add_tensor("mid", [1, 10, 8, 4], "int8", scale=s_mid, zero_point=-4)
    g.add_operator("CONV_2D", [x, tw1, tb1], [mid], ("Conv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 1, "StrideH": 1, "DilationWFactor": 2,
        "DilationHFactor": 2, "FusedActivationFunction": NONE}), version=3)
    w2 = rng.standard_normal((1, 3, 3, 8)).astype(np.float32) * 0.4
    tw2, tb2, _ = _per_channel(g, "dw", w2, s_mid, 3)
    y = g.add_tensor("y", [1, 5, 8, 8], "int8", scale=_out_scale(s_mid, w2, 9, 0.8),
                     zero_point=-100)
    g.add_operator("DEPTHWISE_CONV_2D", [mid, tw2, tb2], [y], ("DepthwiseConv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 1, "StrideH": 2, "DepthMultiplier": 2,
        "DilationWFactor": 1, "DilationHFactor": 1, "FusedActivationFunction": RELU}),
        version=3)
    g.set_io([x], [y])
    return g.to_bytes()


def dsp_shapes(seed: int = 14) -> bytes:
    """The Cortex-M DSP kernels' edge cases (odd channel counts, tails of 1-3 channels after
    blocks of 4, odd row widths, padding with a non-zero input zero point, per-channel
    weights): x[1,7,9,5] (zp -37) -> CONV_2D 3x3 SAME, RELU -> [1,7,9,7]
    -> DEPTHWISE_CONV_2D 3x3 SAME stride 2 -> [1,4,5,7] -> CONV_2D 1x1 -> [1,4,5,3]
    -> FULLY_CONNECTED 5, RELU6 (batch 4) -> [4,5]."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = 0.05, -37
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 7, 9, 5], "int8", scale=s_in, zero_point=zp_in)
    w1 = rng.standard_normal((7, 3, 3, 5)).astype(np.float32) * 0.3
    tw1, tb1, _ = _per_channel(g, "d1", w1, s_in, 0)
    s1 = _out_scale(s_in, w1, 45)
    h1 = g.add_tensor("h1", [1, 7, 9, 7], "int8", scale=s1, zero_point=-128)
    g.add_operator("CONV_2D", [x, tw1, tb1], [h1], ("Conv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": RELU}), version=3)
    w2 = rng.standard_normal((1, 3, 3, 7)).astype(np.float32) * 0.4
    tw2, tb2, _ = _per_channel(g, "d2", w2, s1, 3)
    s2 = _out_scale(s1, w2, 9, 0.8)
    h2 = g.add_tensor("h2", [1, 4, 5, 7], "int8", scale=s2, zero_point=13)
    g.add_operator("DEPTHWISE_CONV_2D", [h1, tw2, tb2], [h2], ("DepthwiseConv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 2, "StrideH": 2, "DepthMultiplier": 1,
        "DilationWFactor": 1, "DilationHFactor": 1, "FusedActivationFunction": NONE}),
        version=3)
    w3 = rng.standard_normal((3, 1, 1, 7)).astype(np.float32) * 0.5
    tw3, tb3, _ = _per_channel(g, "d3", w3, s2, 0)
    s3 = _out_scale(s2, w3, 7)
    h3 = g.add_tensor("h3", [1, 4, 5, 3], "int8", scale=s3, zero_point=-5)
    g.add_operator("CONV_2D", [h2, tw3, tb3], [h3], ("Conv2DOptions", {
        "Padding": Padding.VALID, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": NONE}), version=3)
    w4 = rng.standard_normal((5, 15)).astype(np.float32) * 0.3
    q4, s_w4 = quantize_per_channel(w4, axis=0)
    tw4 = g.add_const("d4/weights", q4, scale=s_w4, zero_point=0, axis=0)
    tb4 = g.add_const("d4/bias", rng.integers(-3000, 3000, 5).astype(np.int32),
                      scale=s3 * s_w4, zero_point=0)
    y = g.add_tensor("y", [4, 5], "int8", scale=_out_scale(s3, w4, 15, 0.3), zero_point=-60)
    g.add_operator("FULLY_CONNECTED", [h3, tw4, tb4], [y],
                   ("FullyConnectedOptions", {"FusedActivationFunction": RELU6}), version=4)
    g.set_io([x], [y])
    return g.to_bytes()


def dsp_wide_window(seed: int = 15) -> bytes:
    """A window too large to copy to the stack (3x3x121 > 1 KB): x[1,4,5,121] (zp 21)
    -> CONV_2D 3x3 SAME stride (1, 2) -> [1,4,3,3]; ADD(x, x2[1,4,5,121]), RELU."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = 0.05, 21
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 5, 121], "int8", scale=s_in, zero_point=zp_in)
    w = rng.standard_normal((3, 3, 3, 121)).astype(np.float32) * 0.2
    tw, tb, _ = _per_channel(g, "wide", w, s_in, 0)
    y = g.add_tensor("y", [1, 4, 3, 3], "int8", scale=_out_scale(s_in, w, 1089), zero_point=9)
    g.add_operator("CONV_2D", [x, tw, tb], [y], ("Conv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 2, "StrideH": 1, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": NONE}), version=3)
    # a large ADD (the DSP library's table form), RELU, saturating
    x2 = g.add_tensor("x2", [1, 4, 5, 121], "int8", scale=0.02, zero_point=-90)
    total = g.add_tensor("sum", [1, 4, 5, 121], "int8", scale=0.045, zero_point=-120)
    g.add_operator("ADD", [x, x2], [total], ("AddOptions", {"FusedActivationFunction": RELU}))
    g.set_io([x, x2], [y, total])
    return g.to_bytes()


def _two_fully_connected(rng: np.random.Generator, names: tuple[str, str], x_shape: list[int],
                         x_quant: tuple[float, int], units: tuple[int, int],
                         first_per_channel: bool, y_quant: tuple[float, int]) -> bytes:
    """x -> FULLY_CONNECTED units[0] with bias, RELU (zp -128) -> FULLY_CONNECTED units[1]
    per channel, no bias -> y. `y_quant`: (spread of the output scale, zero point)."""
    (s_in, zp_in), (batch, inputs) = x_quant, x_shape
    g = TFLiteGraph()
    x = g.add_tensor("x", x_shape, "int8", scale=s_in, zero_point=zp_in)
    w1 = rng.standard_normal((units[0], inputs)).astype(np.float32) * 0.3
    if first_per_channel:
        q1, s_w1 = quantize_per_channel(w1, axis=0)
        tw1 = g.add_const(f"{names[0]}/weights", q1, scale=s_w1, zero_point=0, axis=0)
    else:
        s_w1 = float(np.abs(w1).max() / 127)
        q1 = np.clip(np.round(w1 / s_w1), -127, 127).astype(np.int8)
        tw1 = g.add_const(f"{names[0]}/weights", q1, scale=s_w1, zero_point=0)
    tb1 = g.add_const(f"{names[0]}/bias", rng.integers(-3000, 3000, units[0]).astype(np.int32),
                      scale=s_in * s_w1, zero_point=0)
    s_h = _out_scale(s_in, w1, inputs)
    h = g.add_tensor("h", [batch, units[0]], "int8", scale=s_h, zero_point=-128)
    g.add_operator("FULLY_CONNECTED", [x, tw1, tb1], [h],
                   ("FullyConnectedOptions", {"FusedActivationFunction": RELU}), version=4)
    w2 = rng.standard_normal((units[1], units[0])).astype(np.float32) * 0.3
    q2, s_w2 = quantize_per_channel(w2, axis=0)
    tw2 = g.add_const(f"{names[1]}/weights", q2, scale=s_w2, zero_point=0, axis=0)
    spread, zp_out = y_quant
    y = g.add_tensor("y", [batch, units[1]], "int8",
                     scale=_out_scale(s_h, w2, units[0], spread), zero_point=zp_out)
    g.add_operator("FULLY_CONNECTED", [h, tw2, -1], [y],
                   ("FullyConnectedOptions", {"FusedActivationFunction": NONE}), version=4)
    g.set_io([x], [y])
    return g.to_bytes()


def dsp_gemv(seed: int = 16) -> bytes:
    """Batch-1 fully connected layers (the DSP library's 4-unit form): x[1,37] (zp -3)
    -> FULLY_CONNECTED 7 per channel, RELU -> [1,7] -> FULLY_CONNECTED 6 -> [1,6]."""
    return _two_fully_connected(np.random.default_rng(seed), ("g1", "g2"), [1, 37], (0.04, -3),
                                (7, 6), True, (0.5, 17))


def fully_connected(seed: int = 12) -> bytes:
    """x[2,24] (zp 11) -> FULLY_CONNECTED 16 per-tensor weights, RELU -> [2,16]
    -> FULLY_CONNECTED 10 per-channel, no bias -> [2,10]."""
    return _two_fully_connected(np.random.default_rng(seed), ("fc1", "fc2"), [2, 24],
                                (0.03, 11), (16, 10), False, (0.6, 5))


def add_mul() -> bytes:
    """a[1,4,4,3] (s .05, zp 3), b[1,1,1,3] (s .11, zp -7) -> ADD (broadcast, RELU) and
    MUL (broadcast) and ADD a + a2 (same shape, other scales) -> three outputs."""
    g = TFLiteGraph()
    a = g.add_tensor("a", [1, 4, 4, 3], "int8", scale=0.05, zero_point=3)
    b = g.add_tensor("b", [1, 1, 1, 3], "int8", scale=0.11, zero_point=-7)
    a2 = g.add_tensor("a2", [1, 4, 4, 3], "int8", scale=0.013, zero_point=-60)
    s = g.add_tensor("sum", [1, 4, 4, 3], "int8", scale=0.06, zero_point=-10)
    p = g.add_tensor("prod", [1, 4, 4, 3], "int8", scale=0.25, zero_point=2)
    s2 = g.add_tensor("sum2", [1, 4, 4, 3], "int8", scale=0.03, zero_point=1)
    g.add_operator("ADD", [a, b], [s], ("AddOptions", {"FusedActivationFunction": RELU}))
    g.add_operator("MUL", [a, b], [p], ("MulOptions", {"FusedActivationFunction": NONE}))
    g.add_operator("ADD", [a, a2], [s2], ("AddOptions", {"FusedActivationFunction": NONE}))
    g.set_io([a, b, a2], [s, p, s2])
    return g.to_bytes()


def dsp_requant_edges(seed: int = 17) -> bytes:
    """The DSP kernels' other requantisation forms: a bias of about 2^30 in one channel (the
    accumulators' bound rules out the one-SMMULR form) in a CONV_2D 3x3, a DEPTHWISE_CONV_2D
    (dilated 1x2, SAME) and a FULLY_CONNECTED; and a CONV_2D 1x1 whose multiplier exceeds 1
    (a left shift):
    x[1,5,6,6] (zp 11) -> [1,5,6,5], [1,5,6,6], [1,5,6,4]; FC over x as [30,6] -> [30,3]."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = 0.05, 11
    big = (1 << 30) - (1 << 19)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 5, 6, 6], "int8", scale=s_in, zero_point=zp_in)

    def big_bias(name: str, w: np.ndarray, axis: int) -> tuple[int, int, np.ndarray]:
        q, scales = quantize_per_channel(w, axis=axis)
        bias = rng.integers(-2000, 2000, size=w.shape[axis]).astype(np.int32)
        bias[0] = big
        tw = g.add_const(f"{name}/weights", q, scale=scales, zero_point=0, axis=axis)
        tb = g.add_const(f"{name}/bias", bias, scale=s_in * scales, zero_point=0)
        return tw, tb, scales

    w1 = rng.standard_normal((5, 3, 3, 6)).astype(np.float32) * 0.3
    tw1, tb1, _ = big_bias("e1", w1, 0)
    y1 = g.add_tensor("y1", [1, 5, 6, 5], "int8", scale=_out_scale(s_in, w1, 54), zero_point=-9)
    g.add_operator("CONV_2D", [x, tw1, tb1], [y1], ("Conv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": NONE}), version=3)
    w2 = rng.standard_normal((1, 3, 3, 6)).astype(np.float32) * 0.4
    tw2, tb2, _ = big_bias("e2", w2, 3)
    y2 = g.add_tensor("y2", [1, 5, 6, 6], "int8", scale=_out_scale(s_in, w2, 9), zero_point=5)
    g.add_operator("DEPTHWISE_CONV_2D", [x, tw2, tb2], [y2], ("DepthwiseConv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 1, "StrideH": 1, "DepthMultiplier": 1,
        "DilationWFactor": 2, "DilationHFactor": 1, "FusedActivationFunction": NONE}),
        version=3)
    q3 = rng.integers(-1, 2, size=(4, 1, 1, 6)).astype(np.int8)
    s_w3 = np.full(4, 0.01, np.float32)
    tw3 = g.add_const("e3/weights", q3, scale=s_w3, zero_point=0, axis=0)
    tb3 = g.add_const("e3/bias", rng.integers(-20, 20, 4).astype(np.int32),
                      scale=s_in * s_w3, zero_point=0)
    y3 = g.add_tensor("y3", [1, 5, 6, 4], "int8", scale=s_in * 0.01 / 1.5, zero_point=2)
    g.add_operator("CONV_2D", [x, tw3, tb3], [y3], ("Conv2DOptions", {
        "Padding": Padding.VALID, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": NONE}), version=3)
    w4 = rng.standard_normal((3, 6)).astype(np.float32) * 0.3
    tw4, tb4, _ = big_bias("e4", w4, 0)
    y4 = g.add_tensor("y4", [30, 3], "int8", scale=_out_scale(s_in, w4, 6), zero_point=-1)
    g.add_operator("FULLY_CONNECTED", [x, tw4, tb4], [y4],
                   ("FullyConnectedOptions", {"FusedActivationFunction": NONE}), version=4)
    g.set_io([x], [y1, y2, y3, y4])
    return g.to_bytes()


def dsp_elementwise() -> bytes:
    """The DSP library's ADD and MUL: a[1,8,9,9] + b (same shape, 256-entry tables, RELU);
    a + c[1,1,9,1] (broadcast, tables); a * d[9] (broadcast, a multiplier > 1: left shift,
    saturating); c * e[1,8,1,9] (both operands broadcast); e + f[1,1,1,9] (72 outputs:
    computed without tables, RELU6)."""
    g = TFLiteGraph()
    a = g.add_tensor("a", [1, 8, 9, 9], "int8", scale=0.05, zero_point=3)
    b = g.add_tensor("b", [1, 8, 9, 9], "int8", scale=0.013, zero_point=-60)
    c = g.add_tensor("c", [1, 1, 9, 1], "int8", scale=0.11, zero_point=-7)
    d = g.add_tensor("d", [9], "int8", scale=0.2, zero_point=5)
    e = g.add_tensor("e", [1, 8, 1, 9], "int8", scale=0.03, zero_point=-128)
    f = g.add_tensor("f", [1, 1, 1, 9], "int8", scale=0.09, zero_point=100)
    outs = [g.add_tensor("ab", [1, 8, 9, 9], "int8", scale=0.06, zero_point=-10),
            g.add_tensor("ac", [1, 8, 9, 9], "int8", scale=0.08, zero_point=4),
            g.add_tensor("ad", [1, 8, 9, 9], "int8", scale=0.004, zero_point=-3),
            g.add_tensor("ce", [1, 8, 9, 9], "int8", scale=0.02, zero_point=1),
            g.add_tensor("ef", [1, 8, 1, 9], "int8", scale=0.05, zero_point=-20)]
    g.add_operator("ADD", [a, b], [outs[0]], ("AddOptions", {"FusedActivationFunction": RELU}))
    g.add_operator("ADD", [a, c], [outs[1]], ("AddOptions", {"FusedActivationFunction": NONE}))
    g.add_operator("MUL", [a, d], [outs[2]], ("MulOptions", {"FusedActivationFunction": NONE}))
    g.add_operator("MUL", [c, e], [outs[3]], ("MulOptions", {"FusedActivationFunction": RELU}))
    g.add_operator("ADD", [e, f], [outs[4]], ("AddOptions", {"FusedActivationFunction": RELU6}))
    g.set_io([a, b, c, d, e, f], outs)
    return g.to_bytes()


def pools() -> bytes:
    """x[1,9,7,5] (zp -5) -> AVERAGE_POOL_2D 3x3 stride 2 SAME (padded), RELU -> [1,5,4,5];
    MAX_POOL_2D 2x2 stride 2 VALID -> [1,4,3,5]; MAX_POOL_2D 3x3 stride 1 SAME -> [1,9,7,5]."""
    g = TFLiteGraph()
    q = {"scale": 0.07, "zero_point": -5}
    x = g.add_tensor("x", [1, 9, 7, 5], "int8", **q)
    y1 = g.add_tensor("avg", [1, 5, 4, 5], "int8", **q)
    y2 = g.add_tensor("max", [1, 4, 3, 5], "int8", **q)
    y3 = g.add_tensor("max_same", [1, 9, 7, 5], "int8", **q)

    def opts(k: int, s: int, pad: int, act: int) -> tuple:
        return ("Pool2DOptions", {"Padding": pad, "StrideW": s, "StrideH": s, "FilterWidth": k,
                                  "FilterHeight": k, "FusedActivationFunction": act})

    g.add_operator("AVERAGE_POOL_2D", [x], [y1], opts(3, 2, Padding.SAME, RELU))
    g.add_operator("MAX_POOL_2D", [x], [y2], opts(2, 2, Padding.VALID, NONE))
    g.add_operator("MAX_POOL_2D", [x], [y3], opts(3, 1, Padding.SAME, NONE))
    g.set_io([x], [y1, y2, y3])
    return g.to_bytes()


def mean() -> bytes:
    """x[1,6,5,8] (s .02, zp 9) -> MEAN axes (1,2) keep_dims (output scale .01) -> [1,1,1,8];
    MEAN axis 3 without keep_dims (output scale .003) -> [1,6,5]."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 6, 5, 8], "int8", scale=0.02, zero_point=9)
    a1 = g.add_const("axes1", np.array([1, 2], np.int32))
    a2 = g.add_const("axes2", np.array([-1], np.int32))
    y1 = g.add_tensor("m12", [1, 1, 1, 8], "int8", scale=0.01, zero_point=-3)
    y2 = g.add_tensor("m3", [1, 6, 5], "int8", scale=0.003, zero_point=4)
    g.add_operator("MEAN", [x, a1], [y1], ("ReducerOptions", {"KeepDims": True}))
    g.add_operator("MEAN", [x, a2], [y2], ("ReducerOptions", {"KeepDims": False}))
    g.set_io([x], [y1, y2])
    return g.to_bytes()


def softmax(in_scale: float = 0.0625, beta: float = 1.0) -> bytes:
    """x[6,10] (zp -3) -> SOFTMAX -> int8 (1/256, -128); second output with beta 0.37 and the
    input viewed as [1,2,3,10] -> RESHAPE -> SOFTMAX."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [6, 10], "int8", scale=in_scale, zero_point=-3)
    y = g.add_tensor("y", [6, 10], "int8", scale=1.0 / 256, zero_point=-128)
    g.add_operator("SOFTMAX", [x], [y], ("SoftmaxOptions", {"Beta": beta}))
    shape = g.add_const("shape", np.array([1, 2, 3, 10], np.int32))
    x4 = g.add_tensor("x4", [1, 2, 3, 10], "int8", scale=in_scale, zero_point=-3)
    g.add_operator("RESHAPE", [x, shape], [x4], ("ReshapeOptions", {"NewShape": [1, 2, 3, 10]}))
    y2 = g.add_tensor("y2", [1, 2, 3, 10], "int8", scale=1.0 / 256, zero_point=-128)
    g.add_operator("SOFTMAX", [x4], [y2], ("SoftmaxOptions", {"Beta": 0.37}))
    g.set_io([x], [y, y2])
    return g.to_bytes()


def activations() -> bytes:
    """x[1,256] (s .045, zp 6) -> LOGISTIC (1/256, -128), TANH (1/128, 0),
    RELU (other scale .03, zp -20), RELU6 (same quantisation, 6 saturates);
    x2[1,256] (s .1, zp -30) -> RELU6 (quantised 6 = 30): five outputs."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 256], "int8", scale=0.045, zero_point=6)
    x2 = g.add_tensor("x2", [1, 256], "int8", scale=0.1, zero_point=-30)
    outs = []
    for op, src, scale, zp in (("LOGISTIC", x, 1 / 256, -128), ("TANH", x, 1 / 128, 0),
                               ("RELU", x, 0.03, -20), ("RELU6", x, 0.045, 6),
                               ("RELU6", x2, 0.1, -30)):
        y = g.add_tensor(f"{op.lower()}_{len(outs)}", [1, 256], "int8", scale=scale,
                         zero_point=zp)
        g.add_operator(op, [src], [y])
        outs.append(y)
    g.set_io([x, x2], outs)
    return g.to_bytes()


def data_movement() -> bytes:
    """x[1,4,6,3] (s .1, zp 4): PAD (H 1+2, W 0+1, zero point) -> [1,7,7,3];
    TRANSPOSE (0,2,1,3) -> [1,6,4,3]; STRIDED_SLICE [:, 3:0:-1, ::2, 1] shrink axis 3
    -> [1,3,3]; SQUEEZE of a [1,4,6,1] slice -> [4,6]; CONCATENATION of x with itself on axis 3
    -> [1,4,6,6]; PADV2 with value -100 -> [1,4,8,3]."""
    g = TFLiteGraph()
    q = {"scale": 0.1, "zero_point": 4}
    x = g.add_tensor("x", [1, 4, 6, 3], "int8", **q)
    pads = g.add_const("pads", np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32))
    y_pad = g.add_tensor("pad", [1, 7, 7, 3], "int8", **q)
    g.add_operator("PAD", [x, pads], [y_pad], ("PadOptions", {}))
    perm = g.add_const("perm", np.array([0, 2, 1, 3], np.int32))
    y_tr = g.add_tensor("transpose", [1, 6, 4, 3], "int8", **q)
    g.add_operator("TRANSPOSE", [x, perm], [y_tr], ("TransposeOptions", {}))
    begin = g.add_const("begin", np.array([0, 3, 0, 1], np.int32))
    end = g.add_const("end", np.array([1, 0, 6, 2], np.int32))
    strides = g.add_const("strides", np.array([1, -1, 2, 1], np.int32))
    y_ss = g.add_tensor("slice", [1, 3, 3], "int8", **q)
    g.add_operator("STRIDED_SLICE", [x, begin, end, strides], [y_ss], ("StridedSliceOptions", {
        "BeginMask": 1, "EndMask": 1, "ShrinkAxisMask": 8}))
    b2 = g.add_const("begin2", np.array([0, 0, 0, 2], np.int32))
    e2 = g.add_const("end2", np.array([1, 4, 6, 3], np.int32))
    s2 = g.add_const("strides2", np.array([1, 1, 1, 1], np.int32))
    mid = g.add_tensor("slice4", [1, 4, 6, 1], "int8", **q)
    g.add_operator("STRIDED_SLICE", [x, b2, e2, s2], [mid], ("StridedSliceOptions", {}))
    y_sq = g.add_tensor("squeeze", [4, 6], "int8", **q)
    g.add_operator("SQUEEZE", [mid], [y_sq], ("SqueezeOptions", {"SqueezeDims": [0, 3]}))
    y_cat = g.add_tensor("concat", [1, 4, 6, 6], "int8", **q)
    g.add_operator("CONCATENATION", [x, x], [y_cat],
                   ("ConcatenationOptions", {"Axis": 3, "FusedActivationFunction": NONE}))
    pads2 = g.add_const("pads2", np.array([[0, 0], [0, 0], [1, 1], [0, 0]], np.int32))
    value = g.add_const("value", np.array([-100], np.int8), **q)
    y_pad2 = g.add_tensor("pad2", [1, 4, 8, 3], "int8", **q)
    g.add_operator("PADV2", [x, pads2, value], [y_pad2], ("PadV2Options", {}))
    g.set_io([x], [y_pad, y_tr, y_ss, y_sq, y_cat, y_pad2])
    return g.to_bytes()


def float_edges(seed: int = 13) -> bytes:
    """x[1,6,6,2] float32 -> QUANTIZE (s .02, zp -1) -> CONV_2D 3x3 SAME -> QUANTIZE int8->int8
    (requantise to s .05 zp 10) -> DEQUANTIZE -> y float32; second output the int8 conv."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 6, 6, 2], "float32")
    xq = g.add_tensor("xq", [1, 6, 6, 2], "int8", scale=0.02, zero_point=-1)
    g.add_operator("QUANTIZE", [x], [xq])
    w = rng.standard_normal((3, 3, 3, 2)).astype(np.float32) * 0.3
    tw, tb, _ = _per_channel(g, "c", w, 0.02, 0)
    c = g.add_tensor("conv", [1, 6, 6, 3], "int8", scale=_out_scale(0.02, w, 18), zero_point=2)
    g.add_operator("CONV_2D", [xq, tw, tb], [c], ("Conv2DOptions", {
        "Padding": Padding.SAME, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
        "DilationHFactor": 1, "FusedActivationFunction": NONE}), version=3)
    r = g.add_tensor("requant", [1, 6, 6, 3], "int8", scale=0.05, zero_point=10)
    g.add_operator("QUANTIZE", [c], [r])
    y = g.add_tensor("y", [1, 6, 6, 3], "float32")
    g.add_operator("DEQUANTIZE", [r], [y])
    g.set_io([x], [y, c])
    return g.to_bytes()


def computed_reshape(seed: int = 18) -> bytes:
    """An autoencoder as TF writes MLTK's anomaly detector: x[1,5,16,1] float32 -> QUANTIZE
    -> RESHAPE [1,80] -> FULLY_CONNECTED 16 RELU -> FULLY_CONNECTED 80 -> RESHAPE to
    [batch, 5, 16, 1], its target computed in the graph: SHAPE -> STRIDED_SLICE (batch, shrunk)
    -> PACK with 5, 16, 1 -> DEQUANTIZE -> y float32. The int32 shape arithmetic is folded at
    compile time, so the graph stays on the integer kernels."""
    rng = np.random.default_rng(seed)
    s_in, zp_in = 0.02, -3
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 5, 16, 1], "float32")
    xq = g.add_tensor("xq", [1, 5, 16, 1], "int8", scale=s_in, zero_point=zp_in)
    g.add_operator("QUANTIZE", [x], [xq])
    flat = g.add_tensor("flat", [1, 80], "int8", scale=s_in, zero_point=zp_in)
    g.add_operator("RESHAPE", [xq, g.add_const("flat_shape", np.array([-1, 80], np.int32))],
                   [flat])
    w1 = rng.standard_normal((16, 80)).astype(np.float32) * 0.2
    tw1, tb1, _ = _per_channel(g, "enc", w1, s_in, 0)
    s_h = _out_scale(s_in, w1, 80)
    h = g.add_tensor("h", [1, 16], "int8", scale=s_h, zero_point=-128)
    g.add_operator("FULLY_CONNECTED", [flat, tw1, tb1], [h],
                   ("FullyConnectedOptions", {"FusedActivationFunction": RELU}), version=4)
    w2 = rng.standard_normal((80, 16)).astype(np.float32) * 0.3
    tw2, tb2, _ = _per_channel(g, "dec", w2, s_h, 0)
    d = g.add_tensor("dec", [1, 80], "int8", scale=_out_scale(s_h, w2, 16), zero_point=4)
    g.add_operator("FULLY_CONNECTED", [h, tw2, tb2], [d],
                   ("FullyConnectedOptions", {"FusedActivationFunction": NONE}), version=4)
    shape = g.add_tensor("dec_shape", [2], "int32")
    g.add_operator("SHAPE", [d], [shape], ("ShapeOptions", {"OutType": 2}))
    batch = g.add_tensor("batch", [], "int32")
    g.add_operator("STRIDED_SLICE", [shape, g.add_const("begin", np.array([0], np.int32)),
                                     g.add_const("end", np.array([1], np.int32)),
                                     g.add_const("strides", np.array([1], np.int32))],
                   [batch], ("StridedSliceOptions", {"ShrinkAxisMask": 1}))
    target = g.add_tensor("target", [4], "int32")
    g.add_operator("PACK", [batch, *(g.add_const(f"dim{k}", np.array(v, np.int32))
                                     for k, v in enumerate((5, 16, 1)))], [target],
                   ("PackOptions", {"ValuesCount": 4, "Axis": 0}))
    r = g.add_tensor("restored", [1, 5, 16, 1], "int8", scale=_out_scale(s_h, w2, 16),
                     zero_point=4)
    g.add_operator("RESHAPE", [d, target], [r])
    y = g.add_tensor("y", [1, 5, 16, 1], "float32")
    g.add_operator("DEQUANTIZE", [r], [y])
    g.set_io([x], [y])
    return g.to_bytes()


def with_float_operator() -> bytes:
    """x[1,4,4,3] int8 -> ADD (integer) -> LEAKY_RELU (no integer kernel: float form)
    -> MAX_POOL_2D 2x2 -> y int8."""
    g = TFLiteGraph()
    q = {"scale": 0.05, "zero_point": -2}
    x = g.add_tensor("x", [1, 4, 4, 3], "int8", **q)
    s = g.add_tensor("s", [1, 4, 4, 3], "int8", scale=0.08, zero_point=1)
    g.add_operator("ADD", [x, x], [s], ("AddOptions", {"FusedActivationFunction": NONE}))
    lr = g.add_tensor("lr", [1, 4, 4, 3], "int8", scale=0.06, zero_point=-30)
    g.add_operator("LEAKY_RELU", [s], [lr], ("LeakyReluOptions", {"Alpha": 0.2}))
    y = g.add_tensor("y", [1, 2, 2, 3], "int8", scale=0.06, zero_point=-30)
    g.add_operator("MAX_POOL_2D", [lr], [y], ("Pool2DOptions", {
        "Padding": Padding.VALID, "StrideW": 2, "StrideH": 2, "FilterWidth": 2,
        "FilterHeight": 2, "FusedActivationFunction": NONE}))
    g.set_io([x], [y])
    return g.to_bytes()


def splits() -> bytes:
    """x[1,5,6,4] (s .08, zp -2): SPLIT_V sizes [2,-1,1] on axis 2 -> [1,5,2,4], [1,5,3,4],
    [1,5,1,4]; SPLIT in 2 on axis -1 -> two [1,5,6,2]; then an int8 -> uint8 QUANTIZE of
    the first piece (other scale) -> [1,5,2,4] uint8."""
    g = TFLiteGraph()
    q = {"scale": 0.08, "zero_point": -2}
    x = g.add_tensor("x", [1, 5, 6, 4], "int8", **q)
    sizes = g.add_const("sizes", np.array([2, -1, 1], np.int32))
    axis = g.add_const("axis", np.array([2], np.int32))
    pieces = [g.add_tensor(f"v{k}", [1, 5, w, 4], "int8", **q) for k, w in enumerate((2, 3, 1))]
    g.add_operator("SPLIT_V", [x, sizes, axis], pieces, ("SplitVOptions", {"NumSplits": 3}))
    axis2 = g.add_const("axis2", np.array([-1], np.int32))
    halves = [g.add_tensor(f"h{k}", [1, 5, 6, 2], "int8", **q) for k in range(2)]
    g.add_operator("SPLIT", [axis2, x], halves, ("SplitOptions", {"NumSplits": 2}))
    u = g.add_tensor("u", [1, 5, 2, 4], "uint8", scale=0.05, zero_point=120)
    g.add_operator("QUANTIZE", [pieces[0]], [u])
    g.set_io([x], [*pieces, *halves, u])
    return g.to_bytes()


def cmsis_nn_paths(seed: int = 17) -> bytes:
    """The code paths of CMSIS-NN's wrappers that the other models miss: x[1,6,8,6] (zp 17)
    -> CONV_2D 1x1 (CMSIS-NN's 1x1 fast form), RELU -> [1,6,8,8] -> DEPTHWISE_CONV_2D 5x5 SAME
    (the DSP form with a scratch buffer) -> [1,6,8,8] -> DEPTHWISE_CONV_2D 3x3 VALID,
    multiplier 2 -> [1,4,6,16] -> MUL (same shape, itself), ADD (same shape, RELU6) -> out1;
    r[1,1,20,4] (zp -11) -> CONV_2D 1x3 (the 1xN form) -> [1,1,18,6] -> out2."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    s_in = 0.04
    x = g.add_tensor("x", [1, 6, 8, 6], "int8", scale=s_in, zero_point=17)
    w1 = rng.standard_normal((8, 1, 1, 6)).astype(np.float32) * 0.4
    tw1, tb1, _ = _per_channel(g, "p1", w1, s_in, 0)
    s1 = _out_scale(s_in, w1, 6)
    h1 = g.add_tensor("h1", [1, 6, 8, 8], "int8", scale=s1, zero_point=-128)
    conv = {"StrideW": 1, "StrideH": 1, "DilationWFactor": 1, "DilationHFactor": 1}
    g.add_operator("CONV_2D", [x, tw1, tb1], [h1], ("Conv2DOptions", {
        "Padding": Padding.VALID, "FusedActivationFunction": RELU, **conv}), version=3)
    w2 = rng.standard_normal((1, 5, 5, 8)).astype(np.float32) * 0.3
    tw2, tb2, _ = _per_channel(g, "p2", w2, s1, 3)
    s2 = _out_scale(s1, w2, 25, 0.8)
    h2 = g.add_tensor("h2", [1, 6, 8, 8], "int8", scale=s2, zero_point=9)
    g.add_operator("DEPTHWISE_CONV_2D", [h1, tw2, tb2], [h2], ("DepthwiseConv2DOptions", {
        "Padding": Padding.SAME, "DepthMultiplier": 1, "FusedActivationFunction": NONE,
        **conv}), version=3)
    w3 = rng.standard_normal((1, 3, 3, 16)).astype(np.float32) * 0.3
    tw3, tb3, _ = _per_channel(g, "p3", w3, s2, 3)
    s3 = _out_scale(s2, w3, 9, 0.8)
    h3 = g.add_tensor("h3", [1, 4, 6, 16], "int8", scale=s3, zero_point=-4)
    g.add_operator("DEPTHWISE_CONV_2D", [h2, tw3, tb3], [h3], ("DepthwiseConv2DOptions", {
        "Padding": Padding.VALID, "DepthMultiplier": 2, "FusedActivationFunction": NONE,
        **conv}), version=3)
    sq = g.add_tensor("sq", [1, 4, 6, 16], "int8", scale=s3 * s3 * 40, zero_point=-100)
    g.add_operator("MUL", [h3, h3], [sq], ("MulOptions", {"FusedActivationFunction": NONE}))
    out1 = g.add_tensor("out1", [1, 4, 6, 16], "int8", scale=s3 * 0.9, zero_point=-20)
    g.add_operator("ADD", [h3, sq], [out1], ("AddOptions", {"FusedActivationFunction": RELU6}))
    r = g.add_tensor("r", [1, 1, 20, 4], "int8", scale=0.05, zero_point=-11)
    w4 = rng.standard_normal((6, 1, 3, 4)).astype(np.float32) * 0.4
    tw4, tb4, _ = _per_channel(g, "p4", w4, 0.05, 0)
    out2 = g.add_tensor("out2", [1, 1, 18, 6], "int8", scale=_out_scale(0.05, w4, 12),
                        zero_point=3)
    g.add_operator("CONV_2D", [r, tw4, tb4], [out2], ("Conv2DOptions", {
        "Padding": Padding.VALID, "FusedActivationFunction": NONE, **conv}), version=3)
    g.set_io([x, r], [out1, out2])
    return g.to_bytes()


def integer_models() -> dict[str, Callable[[], bytes]]:
    """Name -> builder of every model whose operators all have integer kernels."""
    return {
        "conv_same_stride2": conv_same_stride2,
        "conv_dilated_depthwise": conv_dilated_depthwise,
        "dsp_shapes": dsp_shapes,
        "dsp_wide_window": dsp_wide_window,
        "dsp_gemv": dsp_gemv,
        "fully_connected": fully_connected,
        "add_mul": add_mul,
        "dsp_elementwise": dsp_elementwise,
        "dsp_requant_edges": dsp_requant_edges,
        "pools": pools,
        "mean": mean,
        "softmax": softmax,
        "activations": activations,
        "data_movement": data_movement,
        "float_edges": float_edges,
        "splits": splits,
        "computed_reshape": computed_reshape,
    }
