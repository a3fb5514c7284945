"""TFLite models with the patterns real edge models carry (issue 10): float16 weights behind
DEQUANTIZE, sparse weights behind DENSIFY, PRELU with a per-channel alpha, EXPAND_DIMS, an
input whose shape_signature has -1, and dynamic-range (hybrid) int8 weights on float
activations. Every model runs in LiteRT; each builder returns ``bytes``."""
from __future__ import annotations

from typing import Callable

import numpy as np
from tflite.Padding import Padding

from .tflite_models import Sparsity, TFLiteGraph, _fused, _weights, quantize_per_channel

NONE = {"FusedActivationFunction": _fused("NONE")}


def _conv_opts(padding: int = Padding.SAME, activation: str = "NONE") -> dict:
    return {"Padding": padding, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
            "DilationHFactor": 1, "FusedActivationFunction": _fused(activation)}


def _fp16_const(g: TFLiteGraph, name: str, value: np.ndarray) -> int:
    """A float16 constant and its DEQUANTIZE to float32 (what MediaPipe's converter writes)."""
    half = g.add_const(name + "_fp16", value.astype(np.float16))
    full = g.add_tensor(name, value.shape)
    g.add_operator("DEQUANTIZE", [half], [full])
    return full


def fp16_conv_prelu(seed: int = 10) -> bytes:
    """x[1,16,16,8] -> CONV_2D 3x3x16 (fp16 weights and bias) -> PRELU alpha [1,1,16] (fp16)
    -> DEPTHWISE 3x3 (fp16) -> y[1,16,16,16]."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 16, 16, 8])
    w = _fp16_const(g, "conv/w", _weights(rng, [16, 3, 3, 8]))
    b = _fp16_const(g, "conv/b", _weights(rng, [16], 0.1))
    c = g.add_tensor("conv", [1, 16, 16, 16])
    g.add_operator("CONV_2D", [x, w, b], [c], ("Conv2DOptions", _conv_opts()))
    alpha = _fp16_const(g, "prelu/alpha", rng.uniform(0.05, 0.3, [1, 1, 16]).astype(np.float32))
    p = g.add_tensor("prelu", [1, 16, 16, 16])
    g.add_operator("PRELU", [c, alpha], [p])
    dw = _fp16_const(g, "dw/w", _weights(rng, [1, 3, 3, 16]))
    db = _fp16_const(g, "dw/b", _weights(rng, [16], 0.1))
    y = g.add_tensor("y", [1, 16, 16, 16])
    opts = dict(_conv_opts(), DepthMultiplier=1)
    g.add_operator("DEPTHWISE_CONV_2D", [p, dw, db], [y], ("DepthwiseConv2DOptions", opts))
    g.set_io([x], [y])
    return g.to_bytes()


def prelu(seed: int = 11) -> bytes:
    """x[1,32,32,16] -> PRELU alpha [1,1,16] (float32) -> y: the alpha stays 64 bytes."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 32, 32, 16])
    alpha = g.add_const("alpha", rng.uniform(0.05, 0.3, [1, 1, 16]).astype(np.float32))
    y = g.add_tensor("y", [1, 32, 32, 16])
    g.add_operator("PRELU", [x, alpha], [y])
    g.set_io([x], [y])
    return g.to_bytes()


def sparse_encode(dense: np.ndarray, block: int = 1) -> tuple[np.ndarray, Sparsity]:
    """TFLite's encoding with every dimension dense but the last, which is CSR (in blocks of
    `block` elements when block > 1, the block a trailing dense level): (values, Sparsity)."""
    rows = dense.reshape(-1, dense.shape[-1] // block, block)
    kept = np.abs(rows).max(axis=2) != 0
    segments = np.concatenate([[0], np.cumsum(kept.sum(axis=1))]).astype(np.int32)
    indices = np.nonzero(kept)[1].astype(np.int32)
    values = rows[kept].reshape(-1)
    rank = dense.ndim
    levels = [("DENSE", d) for d in dense.shape[:-1]]
    levels.append(("CSR", segments, indices))
    if block > 1:
        levels.append(("DENSE", block))
        return values, Sparsity(tuple(range(rank + 1)), (rank - 1,), tuple(levels))
    return values, Sparsity(tuple(range(rank)), (), tuple(levels))


def _pruned(rng: np.random.Generator, shape: list[int], block: int, keep: float) -> np.ndarray:
    w = _weights(rng, shape)
    mask = rng.uniform(size=shape[:-1] + [shape[-1] // block]) < keep
    return (w.reshape(shape[:-1] + [-1, block]) * mask[..., None]).reshape(shape)


def sparse_fc_conv(seed: int = 12) -> bytes:
    """x[1,4,4,32] -> CONV_2D 1x1x8 with CSR sparse float16 weights [8,1,1,32] (DENSIFY then
    DEQUANTIZE) -> RESHAPE [1,128] -> FULLY_CONNECTED 16 with block-sparse (1x4) float32
    weights (DENSIFY) -> y[1,16]."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 4, 32])
    w1 = _pruned(rng, [8, 1, 1, 32], 1, 0.3).astype(np.float16)
    values, sp = sparse_encode(w1)
    t_sparse = g.add_tensor("conv/w_sparse", w1.shape, "float16", values, sparsity=sp)
    t_half = g.add_tensor("conv/w_fp16", w1.shape, "float16")
    g.add_operator("DENSIFY", [t_sparse], [t_half])
    t_w1 = g.add_tensor("conv/w", w1.shape)
    g.add_operator("DEQUANTIZE", [t_half], [t_w1])
    t_b1 = g.add_const("conv/b", _weights(rng, [8], 0.1))
    c = g.add_tensor("conv", [1, 4, 4, 8])
    g.add_operator("CONV_2D", [x, t_w1, t_b1], [c], ("Conv2DOptions", _conv_opts(activation="RELU")))
    shape = g.add_const("shape", np.array([1, 128], np.int32))
    r = g.add_tensor("flat", [1, 128])
    g.add_operator("RESHAPE", [c, shape], [r], ("ReshapeOptions", {"NewShape": [1, 128]}))
    w2 = _pruned(rng, [16, 128], 4, 0.25)
    values, sp = sparse_encode(w2, block=4)
    t_sparse2 = g.add_tensor("fc/w_sparse", w2.shape, "float32", values, sparsity=sp)
    t_w2 = g.add_tensor("fc/w", w2.shape)
    g.add_operator("DENSIFY", [t_sparse2], [t_w2])
    t_b2 = g.add_const("fc/b", _weights(rng, [16], 0.1))
    y = g.add_tensor("y", [1, 16])
    g.add_operator("FULLY_CONNECTED", [r, t_w2, t_b2], [y], ("FullyConnectedOptions", NONE))
    g.set_io([x], [y])
    return g.to_bytes()


def expand_dims_signature(seed: int = 13) -> bytes:
    """x[1,8] (shape_signature [-1,8]) -> FULLY_CONNECTED 12 -> EXPAND_DIMS axis -1 -> [1,12,1]
    -> y."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8], shape_signature=[-1, 8])
    w = g.add_const("fc/w", _weights(rng, [12, 8]))
    b = g.add_const("fc/b", _weights(rng, [12], 0.1))
    f = g.add_tensor("fc", [1, 12], shape_signature=[-1, 12])
    g.add_operator("FULLY_CONNECTED", [x, w, b], [f], ("FullyConnectedOptions", NONE))
    axis = g.add_const("axis", np.array([-1], np.int32))
    y = g.add_tensor("y", [1, 12, 1], shape_signature=[-1, 12, 1])
    g.add_operator("EXPAND_DIMS", [f, axis], [y])
    g.set_io([x], [y])
    return g.to_bytes()


def blaze_block(seed: int = 19) -> bytes:
    """A BlazeFace block (MediaPipe's face and palm detectors): x[1,16,16,24] -> PAD ->
    DEPTHWISE 5x5 stride 2 -> CONV_2D 1x1 to 28 channels; residual MAX_POOL 2x2 -> PAD of the
    channels 24 -> 28; ADD; RELU -> y[1,8,8,28]. A channel PAD fused after a pooling must
    write its padded channels too."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 16, 16, 24])
    p = g.add_tensor("x_pad", [1, 19, 19, 24])
    g.add_operator("PAD", [x, g.add_const("pads", np.array([[0, 0], [1, 2], [1, 2], [0, 0]],
                                                             np.int32))], [p])
    dw = g.add_tensor("dw", [1, 8, 8, 24])
    dw_opts = dict(_conv_opts(Padding.VALID), DepthMultiplier=1, StrideW=2, StrideH=2)
    g.add_operator("DEPTHWISE_CONV_2D", [p, g.add_const("dw/w", _weights(rng, [1, 5, 5, 24])),
                                         g.add_const("dw/b", _weights(rng, [24], 0.1))], [dw],
                   ("DepthwiseConv2DOptions", dw_opts))
    cv = g.add_tensor("conv", [1, 8, 8, 28])
    g.add_operator("CONV_2D", [dw, g.add_const("conv/w", _weights(rng, [28, 1, 1, 24])),
                               g.add_const("conv/b", _weights(rng, [28], 0.1))], [cv],
                   ("Conv2DOptions", _conv_opts()))
    mp = g.add_tensor("pool", [1, 8, 8, 24])
    g.add_operator("MAX_POOL_2D", [x], [mp], ("Pool2DOptions", {
        "Padding": Padding.VALID, "StrideW": 2, "StrideH": 2, "FilterWidth": 2,
        "FilterHeight": 2, "FusedActivationFunction": _fused("NONE")}))
    rp = g.add_tensor("pool_pad", [1, 8, 8, 28])
    g.add_operator("PAD", [mp, g.add_const("channel_pads", np.array(
        [[0, 0], [0, 0], [0, 0], [0, 4]], np.int32))], [rp])
    a = g.add_tensor("sum", [1, 8, 8, 28])
    g.add_operator("ADD", [cv, rp], [a], ("AddOptions", NONE))
    y = g.add_tensor("y", [1, 8, 8, 28])
    g.add_operator("RELU", [a], [y])
    g.set_io([x], [y])
    return g.to_bytes()


def single_output_conv(seed: int = 20) -> bytes:
    """x[1,3,3,32] -> CONV_2D 3x3 VALID to one channel -> y[1,1,1,1] (face_landmark's face
    flag head): one accumulator, no schedule rule applies."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 3, 3, 32])
    y = g.add_tensor("y", [1, 1, 1, 1])
    g.add_operator("CONV_2D", [x, g.add_const("w", _weights(rng, [1, 3, 3, 32])),
                               g.add_const("b", _weights(rng, [1], 0.1))], [y],
                   ("Conv2DOptions", _conv_opts(Padding.VALID)))
    g.set_io([x], [y])
    return g.to_bytes()


def computed_reshape_shared_weights(seed: int = 21) -> bytes:
    """x[1,6,6,8] -> CONV_2D 3x3 (w) -> RELU -> CONV_2D 3x3 (the same w) -> [1,6,6,8];
    reshaped to [batch, -1] as TF writes it: SHAPE -> STRIDED_SLICE (shrink) -> PACK with
    288 -> RESHAPE -> y[1,288]. The target shape is computed in the graph; the shared weight
    must be stored once (basic-pitch reads one CQT kernel in 9 convolutions)."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 6, 6, 8])
    w = g.add_const("shared/w", _weights(rng, [8, 3, 3, 8]))
    b = g.add_const("shared/b", _weights(rng, [8], 0.1))
    c1 = g.add_tensor("conv1", [1, 6, 6, 8])
    g.add_operator("CONV_2D", [x, w, b], [c1], ("Conv2DOptions", _conv_opts(activation="RELU")))
    c2 = g.add_tensor("conv2", [1, 6, 6, 8])
    g.add_operator("CONV_2D", [c1, w, b], [c2], ("Conv2DOptions", _conv_opts()))
    shape = g.add_tensor("shape", [4], "int32")
    g.add_operator("SHAPE", [c2], [shape], ("ShapeOptions", {"OutType": 2}))
    batch = g.add_tensor("batch", [], "int32")
    g.add_operator("STRIDED_SLICE", [shape, g.add_const("begin", np.array([0], np.int32)),
                                     g.add_const("end", np.array([1], np.int32)),
                                     g.add_const("strides", np.array([1], np.int32))],
                   [batch], ("StridedSliceOptions", {"ShrinkAxisMask": 1}))
    target = g.add_tensor("target", [2], "int32")
    g.add_operator("PACK", [batch, g.add_const("rest", np.array(288, np.int32))], [target],
                   ("PackOptions", {"ValuesCount": 2, "Axis": 0}))
    y = g.add_tensor("y", [1, 288])
    g.add_operator("RESHAPE", [c2, target], [y])
    g.set_io([x], [y])
    return g.to_bytes()


def reshape_to_scalar(seed: int = 22) -> bytes:
    """x[1,8] -> FULLY_CONNECTED 1 -> LOGISTIC [1,1] -> RESHAPE to a scalar -> MUL with x ->
    y[1,8]. The target shape of the RESHAPE is a constant of shape [0]: no elements, so its
    buffer holds no bytes (as onnx-tf writes the Squeeze before an IF in openWakeWord's
    hey_jarvis .tflite); it is a constant all the same, not a tensor nothing writes."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8])
    fc = g.add_tensor("fc", [1, 1])
    g.add_operator("FULLY_CONNECTED", [x, g.add_const("w", _weights(rng, [1, 8])),
                                       g.add_const("b", _weights(rng, [1], 0.1))], [fc],
                   ("FullyConnectedOptions", NONE))
    p = g.add_tensor("p", [1, 1])
    g.add_operator("LOGISTIC", [fc], [p])
    scalar = g.add_tensor("scalar", [])
    g.add_operator("RESHAPE", [p, g.add_const("to_scalar", np.zeros([0], np.int32))], [scalar])
    y = g.add_tensor("y", [1, 8])
    g.add_operator("MUL", [x, scalar], [y], ("MulOptions", NONE))
    g.set_io([x], [y])
    return g.to_bytes()


def log_mel_clip(seed: int = 23) -> bytes:
    """x[1,5,32] -> BATCH_MATMUL with a constant [32,32] (rank 3 against rank 2: TVM
    broadcasts the constant) -> MINIMUM with +inf -> MAXIMUM with 1e-10 -> LOG -> MUL 10 ->
    y[1,5,32]: the tail of openWakeWord's melspectrogram .tflite (TF's clip_by_value(x,
    1e-10, inf) before 10*log10). The infinity constant reaches the generated C."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 5, 32])
    mm = g.add_tensor("mel", [1, 5, 32])
    g.add_operator("BATCH_MATMUL", [x, g.add_const("filters", _weights(rng, [32, 32]))], [mm],
                   ("BatchMatMulOptions", {"AdjX": False, "AdjY": False}))
    low = g.add_tensor("low", [1, 5, 32])
    g.add_operator("MINIMUM", [mm, g.add_const("inf", np.array(np.inf, np.float32))], [low])
    high = g.add_tensor("high", [1, 5, 32])
    g.add_operator("MAXIMUM", [low, g.add_const("floor", np.array(1e-10, np.float32))], [high])
    logs = g.add_tensor("log", [1, 5, 32])
    g.add_operator("LOG", [high], [logs])
    y = g.add_tensor("y", [1, 5, 32])
    g.add_operator("MUL", [logs, g.add_const("ten", np.array(10.0, np.float32))], [y],
                   ("MulOptions", NONE))
    g.set_io([x], [y])
    return g.to_bytes()


def _hybrid_const(g: TFLiteGraph, name: str, w: np.ndarray, axis: int,
                  per_channel: bool = True) -> int:
    if per_channel:
        q, scale = quantize_per_channel(w, axis=axis)
        return g.add_const(name, q, scale=scale, zero_point=0, axis=axis)
    scale = float(np.abs(w).max() / 127.0)
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return g.add_const(name, q, scale=scale, zero_point=0)


def hybrid_conv_dw_fc(seed: int = 14, batch: int = 1, conv_per_channel: bool = True,
                      multiplier: int = 1, fc_per_channel: bool = False,
                      fc_asymmetric: bool = False) -> bytes:
    """Dynamic-range quantisation as the TFLite converter writes it: float activations,
    int8 weights, float biases. x[B,8,8,4] -> CONV_2D 3x3x8 RELU (per-channel weights, or
    per-tensor: LiteRT then quantises the input symmetrically) -> DEPTHWISE 3x3 (multiplier
    M, stride 2, VALID) -> RESHAPE [B,72M] -> FULLY_CONNECTED 10 (per-tensor weights by
    default; optional asymmetric_quantize_inputs) -> y[B,10]."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [batch, 8, 8, 4])
    w1 = _hybrid_const(g, "conv/w", _weights(rng, [8, 3, 3, 4]), 0, conv_per_channel)
    b1 = g.add_const("conv/b", _weights(rng, [8], 0.1))
    c = g.add_tensor("conv", [batch, 8, 8, 8])
    g.add_operator("CONV_2D", [x, w1, b1], [c], ("Conv2DOptions", _conv_opts(activation="RELU")),
                   version=2)
    channels = 8 * multiplier
    w2 = _hybrid_const(g, "dw/w", _weights(rng, [1, 3, 3, channels]), 3)
    b2 = g.add_const("dw/b", _weights(rng, [channels], 0.1))
    d = g.add_tensor("dw", [batch, 3, 3, channels])
    dw_opts = dict(_conv_opts(Padding.VALID), DepthMultiplier=multiplier, StrideW=2, StrideH=2)
    g.add_operator("DEPTHWISE_CONV_2D", [c, w2, b2], [d], ("DepthwiseConv2DOptions", dw_opts),
                   version=4)
    depth = 9 * channels
    shape = g.add_const("shape", np.array([batch, depth], np.int32))
    r = g.add_tensor("flat", [batch, depth])
    g.add_operator("RESHAPE", [d, shape], [r], ("ReshapeOptions", {"NewShape": [batch, depth]}))
    t_w3 = _hybrid_const(g, "fc/w", _weights(rng, [10, depth], 0.05), 0, fc_per_channel)
    b3 = g.add_const("fc/b", _weights(rng, [10], 0.1))
    y = g.add_tensor("y", [batch, 10])
    fc_opts = dict(NONE, AsymmetricQuantizeInputs=fc_asymmetric)
    g.add_operator("FULLY_CONNECTED", [r, t_w3, b3], [y], ("FullyConnectedOptions", fc_opts),
                   version=3)
    g.set_io([x], [y])
    return g.to_bytes()


def hybrid_variants() -> dict[str, Callable[[], bytes]]:
    """The hybrid kernels' other paths: symmetric per-tensor convolution, depth multiplier,
    per-channel and asymmetric FULLY_CONNECTED, batch 2."""
    return {
        "hybrid_per_tensor_conv": lambda: hybrid_conv_dw_fc(15, conv_per_channel=False),
        "hybrid_multiplier2_b2": lambda: hybrid_conv_dw_fc(16, batch=2, multiplier=2),
        "hybrid_fc_per_channel": lambda: hybrid_conv_dw_fc(17, fc_per_channel=True),
        "hybrid_fc_asymmetric": lambda: hybrid_conv_dw_fc(18, batch=2, fc_asymmetric=True),
    }


def edge_models() -> dict[str, Callable[[], bytes]]:
    return {
        "fp16_conv_prelu": fp16_conv_prelu,
        "prelu": prelu,
        "sparse_fc_conv": sparse_fc_conv,
        "expand_dims_signature": expand_dims_signature,
        "blaze_block": blaze_block,
        "single_output_conv": single_output_conv,
        "computed_reshape_shared_weights": computed_reshape_shared_weights,
        "reshape_to_scalar": reshape_to_scalar,
        "log_mel_clip": log_mel_clip,
        "hybrid_conv_dw_fc": hybrid_conv_dw_fc,
        **hybrid_variants(),
    }
