"""TFLite models with custom operators: one the user implements in C (two outputs of different
types) and MediaPipe's Convolution2DTransposeBias (built in), with NumPy references."""
from __future__ import annotations

import struct

import numpy as np

from .tflite_models import TFLiteGraph

SAME, VALID = 1, 2  # TfLitePadding, as MediaPipe's custom options store it


def scale_shift() -> bytes:
    """x[1,4,4,3] f32 -> RELU -> CUSTOM "ScaleShift"(r, w[3]) -> y = r * w + 1 [1,4,4,3] f32
    and k = argmax over channels [1,4,4] int32; y -> RELU -> out."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 4, 3])
    r = g.add_tensor("r", [1, 4, 4, 3])
    w = g.add_const("w", np.array([0.5, -2.0, 3.0], np.float32))
    y = g.add_tensor("y", [1, 4, 4, 3])
    k = g.add_tensor("k", [1, 4, 4], "int32")
    out = g.add_tensor("out", [1, 4, 4, 3])
    g.add_operator("RELU", [x], [r])
    g.add_operator("CUSTOM", [r, w], [y, k], custom_code="ScaleShift", custom_options=b"")
    g.add_operator("RELU", [y], [out])
    g.set_io([x], [out, k])
    return g.to_bytes()


SCALE_SHIFT_C = """\
#include <stdint.h>
#include "tvmgen_{module}.h"

int32_t tvmgen_{module}_custom_ScaleShift(const float* in0, const float* in1, float* out0,
                                          int32_t* out1) {{
  int p, c;
  for (p = 0; p < 16; ++p) {{
    int best = 0;
    for (c = 0; c < 3; ++c) {{
      out0[p * 3 + c] = in0[p * 3 + c] * in1[c] + 1.0f;
      if (out0[p * 3 + c] > out0[p * 3 + best]) best = c;
    }}
    out1[p] = best;
  }}
  return 0;
}}
"""


def scale_shift_reference(x: np.ndarray) -> list[np.ndarray]:
    r = np.maximum(x, 0)
    y = r * np.array([0.5, -2.0, 3.0], np.float32) + 1
    return [np.maximum(y, 0), np.argmax(y, axis=-1).astype(np.int32)]


def transpose_conv_bias(padding: int = SAME, kernel: int = 4, stride: int = 2,
                        seed: int = 7) -> tuple[bytes, np.ndarray, np.ndarray]:
    """x[1,5,6,4] -> CUSTOM Convolution2DTransposeBias(w[3,k,k,4] OHWI, b[3]) -> y; returns
    the model, the weights and the bias."""
    rng = np.random.default_rng(seed)
    h, w_, cin, cout = 5, 6, 4, 3
    oh, ow = ((h * stride, w_ * stride) if padding == SAME
              else ((h - 1) * stride + kernel, (w_ - 1) * stride + kernel))
    weights = rng.standard_normal((cout, kernel, kernel, cin)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, h, w_, cin])
    tw = g.add_const("weights", weights)
    tb = g.add_const("bias", bias)
    y = g.add_tensor("y", [1, oh, ow, cout])
    options = struct.pack("<iii", padding, stride, stride)
    g.add_operator("CUSTOM", [x, tw, tb], [y], custom_code="Convolution2DTransposeBias",
                   custom_options=options)
    g.set_io([x], [y])
    return g.to_bytes(), weights, bias


def transpose_conv_bias_reference(x: np.ndarray, weights: np.ndarray, bias: np.ndarray,
                                  out_hw: tuple[int, int], padding: int,
                                  stride: int) -> np.ndarray:
    """Scatter form, written from the definition: each input pixel adds its weighted kernel
    at (i * stride - pad); pad from the output size as TFLite computes it."""
    _, h, w, _ = x.shape
    cout, kh, kw, _ = weights.shape
    oh, ow = out_hw

    def pad(out: int, k: int) -> int:
        computed = -(-out // stride) if padding == SAME else (out - k + stride) // stride
        return max(((computed - 1) * stride + k - out) // 2, 0)

    pt, pl = pad(oh, kh), pad(ow, kw)
    y = np.zeros((1, oh, ow, cout), np.float64)
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    oy, ox = i * stride - pt + a, j * stride - pl + b
                    if 0 <= oy < oh and 0 <= ox < ow:
                        y[0, oy, ox] += weights[:, a, b, :] @ x[0, i, j].astype(np.float64)
    return (y + bias).astype(np.float32)
