"""Integer TIR kernels without a reduction: binary arithmetic, table lookups, QUANTIZE from
float32, PAD and STRIDED_SLICE. Every builder returns an opaque PrimFunc (output last)."""
from __future__ import annotations

import re
from typing import Sequence

import tvm
import tvm.script
from tvm import te, tirx

from ..c_helpers import CHelpers
from ..records import AddParams
from .nn import I32, c32, finish, finish_func


def _broadcast_index(shape: Sequence[int], out_index: Sequence[object]) -> tuple:
    """numpy broadcasting: align right, size-1 dimensions read index 0."""
    lead = len(out_index) - len(shape)
    return tuple(c32(0) if d == 1 else out_index[lead + i] for i, d in enumerate(shape))


def add(a_shape: Sequence[int], b_shape: Sequence[int], out_shape: Sequence[int],
        params: AddParams, helpers: CHelpers) -> tirx.PrimFunc:
    """reference_integer_ops::Add (and BroadcastAdd4DSlow): each input shifted left by 20,
    rescaled, summed and requantised."""
    a = te.placeholder(tuple(a_shape), "int8", name="a")
    b = te.placeholder(tuple(b_shape), "int8", name="b")
    (za, zb, zo) = params.zero_points
    (ma, sa), (mb, sb) = params.input_multipliers
    mo, so = params.output_multiplier

    def body(*i: object) -> tirx.PrimExpr:
        va = helpers.mbqm((a[_broadcast_index(a_shape, i)].astype(I32) - c32(za)) * c32(1 << 20),
                          ma, sa)
        vb = helpers.mbqm((b[_broadcast_index(b_shape, i)].astype(I32) - c32(zb)) * c32(1 << 20),
                          mb, sb)
        return helpers.requant(va + vb, mo, so, zo, params.act_min, params.act_max).astype("int8")

    out = te.compute(tuple(out_shape), body, name="out")
    return finish([a, b, out])


def add_scaled(a_shape: Sequence[int], b_shape: Sequence[int], out_shape: Sequence[int],
               zero_points: tuple[int, int, int], scales: tuple[int, int], exponent: int,
               act_min: int, act_max: int, helpers: CHelpers) -> tirx.PrimFunc:
    """onnxruntime's Add: ((a - za) * A + (b - zb) * B) / 2^exponent rounded once (A, B: the
    scale ratios a/out and b/out in fixed point), the sum fitting int32."""
    a = te.placeholder(tuple(a_shape), "int8", name="a")
    b = te.placeholder(tuple(b_shape), "int8", name="b")
    za, zb, zo = zero_points

    def body(*i: object) -> tirx.PrimExpr:
        va = (a[_broadcast_index(a_shape, i)].astype(I32) - c32(za)) * c32(scales[0])
        vb = (b[_broadcast_index(b_shape, i)].astype(I32) - c32(zb)) * c32(scales[1])
        # x * 2^30 * 2^(1 - exponent - 31) = x / 2^exponent
        return helpers.requant(va + vb, 1 << 30, 1 - exponent, zo, act_min,
                               act_max).astype("int8")

    out = te.compute(tuple(out_shape), body, name="out")
    return finish([a, b, out])


def mul(a_shape: Sequence[int], b_shape: Sequence[int], out_shape: Sequence[int],
        zero_points: tuple[int, int, int], multiplier: tuple[int, int], act_min: int,
        act_max: int, helpers: CHelpers) -> tirx.PrimFunc:
    """reference_integer_ops::Mul: (a - za) * (b - zb) requantised."""
    a = te.placeholder(tuple(a_shape), "int8", name="a")
    b = te.placeholder(tuple(b_shape), "int8", name="b")
    za, zb, zo = zero_points

    def body(*i: object) -> tirx.PrimExpr:
        va = a[_broadcast_index(a_shape, i)].astype(I32) - c32(za)
        vb = b[_broadcast_index(b_shape, i)].astype(I32) - c32(zb)
        return helpers.requant(va * vb, multiplier[0], multiplier[1], zo, act_min,
                               act_max).astype("int8")

    out = te.compute(tuple(out_shape), body, name="out")
    return finish([a, b, out])


def table_lookup(shape: Sequence[int], out_dtype: str, in_dtype: str = "int8") -> tirx.PrimFunc:
    """(x int8, table[256] of out_dtype) -> table[x + 128]: any int8 -> int8 function of one
    value (LOGISTIC, TANH, RELU, requantise) and DEQUANTIZE to float32 (no float maths).
    A uint8 `x` indexes the table directly."""
    x = te.placeholder(tuple(shape), in_dtype, name="x")
    table = te.placeholder((256,), out_dtype, name="table")
    offset = c32(128 if in_dtype == "int8" else 0)
    out = te.compute(tuple(shape), lambda *i: table[x(*i).astype(I32) + offset], name="out")
    return finish([x, table, out])


def quantize_float(shape: Sequence[int], helpers: CHelpers) -> tirx.PrimFunc:
    """QUANTIZE float32 -> int8 by a binary search over 255 precomputed thresholds:
    (x float32, thresholds int32[255]) -> int8."""
    x = te.placeholder(tuple(shape), "float32", name="x")
    thresholds = te.placeholder((255,), I32, name="thresholds")
    # TE cannot take an address: pass thresholds[0], then make it &thresholds[0] in the TIR
    out = te.compute(tuple(shape), lambda *i: helpers.quantize(
        x(*i), thresholds[0]).astype("int8"), name="out")
    text = te.create_prim_func([x, thresholds, out]).script()
    text, count = re.subn(r", thresholds\[0\]\)\)", ", T.address_of(thresholds[0])))", text)
    assert count == 1, "unexpected TIR for the QUANTIZE kernel"
    return finish_func(tvm.script.from_source(text))


def pad(shape: Sequence[int], before: Sequence[int], out_shape: Sequence[int],
        value: int) -> tirx.PrimFunc:
    """PAD / PADV2 with a constant int8 value (the output zero point unless given)."""
    x = te.placeholder(tuple(shape), "int8", name="x")

    def body(*i: object) -> tirx.PrimExpr:
        src = [idx - c32(b) for idx, b in zip(i, before)]
        conds = [tirx.all(s >= 0, s < d) for s, d, b, o, n in
                 zip(src, shape, before, out_shape, shape) if b or o != n]
        if not conds:
            return x[tuple(src)]
        return tirx.if_then_else(tirx.all(*conds), x[tuple(src)], tirx.const(value, "int8"))

    out = te.compute(tuple(out_shape), body, name="out")
    return finish([x, out])


def strided_slice(shape: Sequence[int], begin: Sequence[int], strides: Sequence[int],
                  out_shape: Sequence[int], dtype: str = "int8") -> tirx.PrimFunc:
    """y[i] = x[begin + i * stride] per axis (begin/stride already resolved from the masks)."""
    x = te.placeholder(tuple(shape), dtype, name="x")
    out = te.compute(tuple(out_shape), lambda *i: x[tuple(
        c32(b) + idx * c32(s) for idx, b, s in zip(i, begin, strides))], name="out")
    return finish([x, out])
