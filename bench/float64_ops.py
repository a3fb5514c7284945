"""A few TFLite float operators in float64 NumPy, as LiteRT's reference kernels define them:
the yardstick `tflite_taps.py --float64` measures each runtime's per-layer rounding with."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

# ActivationFunctionType: NONE, RELU, RELU_N1_TO_1, RELU6
_ACTIVATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    0: lambda y: y, 1: lambda y: np.maximum(y, 0.0), 2: lambda y: np.clip(y, -1.0, 1.0),
    3: lambda y: np.clip(y, 0.0, 6.0)}
SAME = 0


def _activate(y: np.ndarray, options: Any) -> np.ndarray:
    return _ACTIVATIONS[options.fusedActivationFunction](y)


def _padded(x: np.ndarray, kernel: Sequence[int], options: Any, dilation: Sequence[int]) -> np.ndarray:
    """x NHWC padded as TFLite's SAME does (the extra row/column after), or as is for VALID."""
    if options.padding != SAME:
        return x
    pads = [(0, 0)]
    for size, k, stride, d in zip(x.shape[1:3], kernel, (options.strideH, options.strideW), dilation):
        out = -(-size // stride)
        total = max((out - 1) * stride + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)])


def _windows(x: np.ndarray, kernel: Sequence[int], options: Any, dilation: Sequence[int]):
    """(i, j, x[:, window rows, window cols, :]) for every kernel tap (strided, dilated)."""
    x = _padded(x, kernel, options, dilation)
    sh, sw = options.strideH, options.strideW
    oh = (x.shape[1] - (kernel[0] - 1) * dilation[0] - 1) // sh + 1
    ow = (x.shape[2] - (kernel[1] - 1) * dilation[1] - 1) // sw + 1
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            r, c = i * dilation[0], j * dilation[1]
            yield i, j, x[:, r:r + (oh - 1) * sh + 1:sh, c:c + (ow - 1) * sw + 1:sw, :]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, options: Any) -> np.ndarray:
    dilation = (options.dilationHFactor, options.dilationWFactor)
    y = sum(win @ w[:, i, j, :].T for i, j, win in _windows(x, w.shape[1:3], options, dilation))
    return _activate(y + (0.0 if b is None else b), options)


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, options: Any) -> np.ndarray:
    dilation = (options.dilationHFactor, options.dilationWFactor)
    multiplier = w.shape[3] // x.shape[3]
    x = np.repeat(x, multiplier, axis=3)
    y = sum(win * w[0, i, j, :] for i, j, win in _windows(x, w.shape[1:3], options, dilation))
    return _activate(y + (0.0 if b is None else b), options)


def _axis(size_in: int, size_out: int, options: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper source index and weight of the upper one, as TFLite's resize computes."""
    if options.alignCorners and size_out > 1:
        scale = (size_in - 1) / (size_out - 1)
    else:
        scale = size_in / size_out
    o = np.arange(size_out, dtype=np.float64)
    v = (o + 0.5) * scale - 0.5 if options.halfPixelCenters else o * scale
    low = np.floor(v)
    lower = np.maximum(low, 0).astype(int)
    upper = np.minimum(np.ceil(v), size_in - 1).astype(int)
    return lower, upper, v - low


def resize_bilinear(x: np.ndarray, size: np.ndarray, options: Any) -> np.ndarray:
    (y0, y1, fy), (x0, x1, fx) = (_axis(n, int(s), options) for n, s in zip(x.shape[1:3], size))
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bottom = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bottom * fy


def evaluate(kind: str, options: Any, inputs: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """The operator's output in float64, or None for an operator not modelled here."""
    if kind == "CONV_2D":
        return conv2d(inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None, options)
    if kind == "DEPTHWISE_CONV_2D":
        return depthwise_conv2d(inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None, options)
    if kind in ("ADD", "MUL"):
        y = inputs[0] + inputs[1] if kind == "ADD" else inputs[0] * inputs[1]
        return _activate(y, options)
    if kind == "RESIZE_BILINEAR":
        return resize_bilinear(inputs[0], inputs[1], options)
    if kind == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-inputs[0]))
    return None
