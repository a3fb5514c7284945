"""Portable C: integer TIR kernels any C compiler builds, bit-exact with TFLite Micro's
reference kernels. Two loop forms: "vector" (hosts and SIMD cores: long contiguous channel
loops gcc vectorises) and "scalar" (cores without SIMD: channel blocks held in registers)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import fixedpoint as fx
from ..c_helpers import CHelpers
from ..library import Kernel
from ..records import AddParams, Conv2DSpec, FullyConnectedSpec, LstmSpec, PoolSpec
from . import elementwise, lstm as lstm_kernel, nn

FORMS = ("vector", "scalar")


def shift_table(shift: np.ndarray) -> np.ndarray:
    """Per-channel requantisation shifts as int8 (TFLite's lie in [-31, 30]): a quarter of
    the int32 table, so a model's constants stay within its .tflite file."""
    shift = np.asarray(shift)
    if shift.size and (shift.min() < -128 or shift.max() > 127):
        raise ValueError(f"requantisation shift out of int8 range: {shift.min()}..{shift.max()}")
    return np.ascontiguousarray(shift.astype(np.int8))


class PortableC:
    """The complete library; `form` is "vector" or "scalar"."""

    name = "portable"

    def __init__(self, form: str = "vector"):
        if form not in FORMS:
            raise ValueError(f"unknown loop form {form!r}")
        self.form = form

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.form!r})"

    # ---- operators with weights: the library packs them
    def conv2d(self, spec: Conv2DSpec, weights: np.ndarray, bias: np.ndarray,
               mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        """`weights` in TFLite's layout (OHWI; depthwise [1, KH, KW, C * multiplier])."""
        func = nn.conv2d(spec, helpers, self.form)
        packed = (weights if spec.depthwise
                  else np.ascontiguousarray(weights.transpose(1, 2, 3, 0)))  # -> HWIO
        folded = nn.fold_zero_point(bias, packed, spec.input_zero_point, 3)
        return Kernel(func, (packed, folded, mult, shift_table(shift)))

    def fully_connected(self, spec: FullyConnectedSpec, weights: np.ndarray, bias: np.ndarray,
                        mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        """`weights` [units, depth]."""
        func = nn.fully_connected(spec.batch, spec.depth, spec.units, spec.output_zero_point,
                                  spec.act_min, spec.act_max, helpers, self.form)
        folded = nn.fold_zero_point(bias, weights, spec.input_zero_point, 0)
        return Kernel(func, (weights, folded, mult, shift_table(shift)))

    def add_kernel(self, a_shape: Sequence[int], b_shape: Sequence[int],
                   out_shape: Sequence[int], params: AddParams, helpers: CHelpers) -> Kernel:
        """TFLite Micro's int8 ADD (with broadcasting)."""
        return Kernel(elementwise.add(a_shape, b_shape, out_shape, params, helpers), ())

    def lstm(self, spec: LstmSpec, weights: np.ndarray, recurrent: np.ndarray,
             bias: np.ndarray, helpers: CHelpers) -> Kernel:
        """TFLite Micro's int8 LSTM (int16 cell state); weights [4, H, I], recurrent
        [4, H, H], bias int32 [4, H], gates in i f c o order. Three outputs: y, h, c."""
        return lstm_kernel.lstm(spec, weights, recurrent, bias, helpers)

    # ---- operators a library may hand to C of its own (with the C in `Kernel.c_sources`)
    def average_pool_kernel(self, spec: PoolSpec, helpers: CHelpers) -> Kernel:
        return Kernel(self.average_pool(spec, helpers), ())

    def max_pool_kernel(self, spec: PoolSpec, helpers: CHelpers) -> Kernel:
        return Kernel(self.max_pool(spec), ())

    def softmax_kernel(self, rows: int, depth: int, in_scale: float, beta: float,
                       helpers: CHelpers, requantise: tuple[int, int, int] | None) -> Kernel:
        """TFLite's int8 softmax over rows of `depth`; the exp table is the constant."""
        return Kernel(self.softmax(rows, depth, helpers, requantise),
                      (fx.softmax_exp_table(in_scale, beta),))

    def mul_kernel(self, a_shape: Sequence[int], b_shape: Sequence[int],
                   out_shape: Sequence[int], zero_points: tuple[int, int, int],
                   multiplier: tuple[int, int], lo: int, hi: int, helpers: CHelpers) -> Kernel:
        return Kernel(self.mul(a_shape, b_shape, out_shape, zero_points, multiplier, lo, hi,
                               helpers), ())

    # ---- the rest: no weights to pack
    average_pool = staticmethod(nn.average_pool)
    max_pool = staticmethod(nn.max_pool)
    mean = staticmethod(nn.mean)
    softmax = staticmethod(nn.softmax)
    add = staticmethod(elementwise.add)
    add_scaled = staticmethod(elementwise.add_scaled)
    mul = staticmethod(elementwise.mul)
    table_lookup = staticmethod(elementwise.table_lookup)
    quantize_float = staticmethod(elementwise.quantize_float)
    pad = staticmethod(elementwise.pad)
    strided_slice = staticmethod(elementwise.strided_slice)
