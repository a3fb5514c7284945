"""Integer TIR kernels with a reduction: convolutions, fully connected, pools, mean, softmax.

Each builder returns a PrimFunc (tensor parameters first, output last) marked opaque, so Relax
fusion leaves it alone. The requantise epilogue is computed right after each output's
reduction (a scalar accumulator, no int32 temporary the size of the output). Semantics follow
TFLite Micro's reference_integer_ops kernels; see fixedpoint.py for the host-side numbers.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tvm
from tvm import te, tirx

from ..c_helpers import CHelpers
from ..records import Conv2DSpec, PoolSpec

I32 = "int32"
OPAQUE = 8  # relax OpPatternKind::kOpaque
KERNEL_ATTR = "tvmc.int8_kernel"  # marks the PrimFuncs built here (schedules may skip them)
CHANNEL_BLOCK = 8  # scalar cores: output channels accumulated together in registers
MAX_STACK_BYTES = 1023  # larger temporaries would become workspace (tir_passes.MAX_STACK_ALLOCA)
PAIR_CHANNELS = 16  # convolutions with this many output channels compute two pixels at once


def c32(value: int) -> tirx.PrimExpr:
    return tirx.const(int(value), I32)


def finish(tensors: Sequence[te.Tensor], fused: Sequence[tuple[str, str, int]] = (),
           channel_inner: bool = False, channel_chunk: int = 0, pixels: int = 1,
           patch: str | None = None, unroll_chunk: bool = False) -> tirx.PrimFunc:
    """PrimFunc of `tensors`; for each (reduction block, epilogue block, spatial loops) the
    epilogue moves under the reduction's last spatial loop and the init is hoisted.
    `channel_inner` (NHWC convolutions): the output channels go inside the reduction loops,
    so the inner loop is `acc[o] += x * w[..., o]`, one contiguous loop gcc vectorises
    (int8 x int8 -> int32 with SSE2); `channel_chunk` channels per pass (a divisor of the
    channels), `pixels` output pixels of a row per pass (inside the channel loop, unrolled);
    `patch`: a block computed before each pass; `unroll_chunk`: the chunk's channel loop is
    unrolled (register blocking for scalar cores)."""
    func = te.create_prim_func(list(tensors))
    if fused:
        from tvm import s_tir

        sch = s_tir.Schedule(tvm.IRModule({"main": func}))
        for reduction, epilogue, spatial in fused:
            block = sch.get_sblock(reduction)
            loops = sch.get_loops(block)
            if not (channel_inner and spatial > 1 and len(loops) > spatial):
                sch.reverse_compute_at(sch.get_sblock(epilogue), loops[spatial - 1])
                loops = sch.get_loops(block)
                if len(loops) > spatial:
                    sch.decompose_reduction(block, loops[spatial])
                continue
            outer, channel, reduce = loops[:spatial - 1], loops[spatial - 1], loops[spatial:]
            extent = int(sch.get(channel).extent)
            chunk = channel_chunk or extent
            inner_pixels = []
            if pixels > 1:
                xo, xi = sch.split(outer[-1], [None, pixels])
                outer, inner_pixels = [*outer[:-1], xo], [xi]
            if chunk < extent:
                anchor, inner = sch.split(channel, [None, chunk])
                sch.reorder(*outer, anchor, *reduce, inner, *inner_pixels)
                if unroll_chunk:
                    inner_pixels.append(inner)
            else:
                anchor = outer[-1]
                sch.reorder(*outer, *reduce, channel, *inner_pixels)
            sch.reverse_compute_at(sch.get_sblock(epilogue), anchor)
            if patch is not None:
                sch.compute_at(sch.get_sblock(patch), anchor)
            sch.decompose_reduction(block, reduce[0])
            for loop in inner_pixels:
                sch.unroll(loop)
        func = sch.mod["main"]
    return finish_func(func)


def finish_func(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Mark a kernel opaque (Relax fusion leaves it alone) and as ours."""
    return func.with_attr("op_pattern", OPAQUE).with_attr(KERNEL_ATTR, True)


def conv2d(spec: Conv2DSpec, helpers: CHelpers, variant: str = "vector") -> tirx.PrimFunc:
    """(x int8 NHWC, w int8, bias int32[O], mult int32[O], shift int8[O]) -> int8 NHWC;
    w is HWIO ([KH, KW, C, O]) for a convolution, [1, KH, KW, C * multiplier] depthwise.
    The accumulator is sum(x * w) + bias with the input zero point folded into the bias
    (fold_zero_point): out-of-image taps read the zero point, as TFLite Micro skips them.
    `variant` "scalar" (cores without SIMD): register blocking instead of the vector form."""
    n, h, w_in, c = spec.input_shape
    _, kh, kw, _ = spec.weight_shape
    out_c = spec.weight_shape[3] if spec.depthwise else spec.weight_shape[0]
    weight_shape = spec.weight_shape if spec.depthwise else (kh, kw, c, out_c)
    oh, ow = spec.output_hw
    (sh, sw), (dh, dw), (pt, pl) = spec.stride, spec.dilation, spec.pad_top_left
    x = te.placeholder((n, h, w_in, c), "int8", name="x")
    w = te.placeholder(weight_shape, "int8", name="w")
    bias = te.placeholder((out_c,), I32, name="bias")
    mult = te.placeholder((out_c,), I32, name="mult")
    shift = te.placeholder((out_c,), "int8", name="shift")
    rh = te.reduce_axis((0, kh), "rh")
    rw = te.reduce_axis((0, kw), "rw")
    needs_bounds = (pt or pl or (oh - 1) * sh + (kh - 1) * dh >= h
                    or (ow - 1) * sw + (kw - 1) * dw >= w_in)
    multiplier = out_c // c if spec.depthwise else 1
    # Measured on the host (gcc -O3, callgrind instructions per run and bench latency):
    # - every convolution, depthwise too, accumulates all its output channels (in chunks of
    #   under MAX_STACK_BYTES) in the inner loop, which gcc vectorises; the former unrolled
    #   8-channel blocks were not (with the patch below, ic_resnet8 109 -> 38 M instructions)
    #   and a depthwise one reduced 9 taps per channel (kws depthwise 11.2 -> 6.6 M);
    # - a padded full convolution reads `patch`, a bounds-checked copy of one pixel's window
    #   on the stack, not a check per multiply (both changes: ic_resnet8 72.7 -> 38 M);
    # - with 16 output channels two pixels share each weight vector (ic_resnet8 38.9 -> 33.2
    #   M; with 8, 32 or 64 channels it costs 10-25% more).
    # Everything stays on the stack, so the workspace does not grow.
    scalar = variant == "scalar"
    chunk = max(d for d in range(1, min(out_c, MAX_STACK_BYTES // 4) + 1) if out_c % d == 0)
    use_patch = (not scalar and needs_bounds and not spec.depthwise and kh * kw > 1
                 and kh * kw * c <= MAX_STACK_BYTES)
    pixels = 2 if (chunk == PAIR_CHANNELS and ow % 2 == 0
                   and (not use_patch or 2 * kh * kw * c <= MAX_STACK_BYTES)) else 1

    def read(b: object, y: object, xx: object, i: object, j: object,
             ch: object) -> tirx.PrimExpr:
        iy, ix = y * sh - pt + i * dh, xx * sw - pl + j * dw
        value = x[b, iy, ix, ch // multiplier]
        if not needs_bounds:
            return value
        inside = tvm.tirx.all(iy >= 0, iy < h, ix >= 0, ix < w_in)
        return tirx.if_then_else(inside, value, tirx.const(spec.input_zero_point, "int8"))

    patch = te.compute((n, oh, ow, kh, kw, c), read, name="patch") if use_patch else None

    def tap(b: object, y: object, xx: object, ch: object) -> tirx.PrimExpr:
        if patch is not None:
            return patch[b, y, xx, rh, rw, ch].astype(I32)
        return read(b, y, xx, rh, rw, ch).astype(I32)

    if spec.depthwise:
        acc = te.compute((n, oh, ow, out_c), lambda b, y, xx, o: te.sum(
            tap(b, y, xx, o) * w[0, rh, rw, o].astype(I32), axis=[rh, rw]), name="acc")
    else:
        rc = te.reduce_axis((0, c), "rc")
        acc = te.compute((n, oh, ow, out_c), lambda b, y, xx, o: te.sum(
            tap(b, y, xx, rc) * w[rh, rw, rc, o].astype(I32), axis=[rh, rw, rc]), name="acc")
    out = te.compute((n, oh, ow, out_c), lambda b, y, xx, o: helpers.requant(
        acc[b, y, xx, o] + bias[o], mult[o], shift[o].astype(I32), spec.output_zero_point,
        spec.act_min, spec.act_max).astype("int8"), name="out")
    tensors, fused = [x, w, bias, mult, shift, out], [("acc", "out", 4)]
    if scalar:
        # no SIMD to feed (Cortex-M0/M4/M7): every convolution, depthwise and 1x1 too, keeps
        # CHANNEL_BLOCK outputs in registers across its reduction (unrolled); nothing on the
        # stack. Instructions per inference on Cortex-M4 (bench/cortex_m.py): kws 22.2 M with
        # 1x1 and depthwise unblocked -> 11.6 M; a window copy as on hosts: +-2%
        blocked = out_c > CHANNEL_BLOCK and out_c % CHANNEL_BLOCK == 0
        return finish(tensors, fused, channel_inner=True,
                      channel_chunk=CHANNEL_BLOCK if blocked else 0, unroll_chunk=True)
    return finish(tensors, fused, channel_inner=True, channel_chunk=chunk, pixels=pixels,
                  patch="patch" if use_patch else None)


def fold_zero_point(bias: np.ndarray, weights: np.ndarray, input_zero_point: int,
                    channel_axis: int) -> np.ndarray:
    """bias - zp * sum(w) per output channel: sum((x - zp) * w) + bias == sum(x * w) + that,
    exactly, in int32 (TFLite's own accumulation assumes no overflow either)."""
    axes = tuple(a for a in range(weights.ndim) if a != channel_axis)
    sums = weights.astype(np.int64).sum(axis=axes).reshape(-1)
    return (bias.astype(np.int64) - input_zero_point * sums).astype(np.int32)


def fully_connected(batch: int, depth: int, units: int, output_zero_point: int, act_min: int,
                    act_max: int, helpers: CHelpers, variant: str = "vector") -> tirx.PrimFunc:
    """(x int8[N, I], w int8[O, I], bias int32[O], mult, shift) -> int8[N, O]; the bias has
    the input zero point folded in (fold_zero_point). `variant` "scalar": CHANNEL_BLOCK units
    accumulate in registers, each input value loaded once for all of them (Cortex-M4
    instructions per inference, ad_autoencoder: 1.39 -> 0.72 M)."""
    x = te.placeholder((batch, depth), "int8", name="x")
    w = te.placeholder((units, depth), "int8", name="w")
    bias = te.placeholder((units,), I32, name="bias")
    mult = te.placeholder((units,), I32, name="mult")
    shift = te.placeholder((units,), "int8", name="shift")
    k = te.reduce_axis((0, depth), "k")
    acc = te.compute((batch, units), lambda b, o: te.sum(
        x[b, k].astype(I32) * w[o, k].astype(I32), axis=k), name="acc")
    out = te.compute((batch, units), lambda b, o: helpers.requant(
        acc[b, o] + bias[o], mult[o], shift[o].astype(I32), output_zero_point, act_min,
        act_max).astype("int8"), name="out")
    tensors, fused = [x, w, bias, mult, shift, out], [("acc", "out", 2)]
    if variant == "scalar" and units > CHANNEL_BLOCK and units % CHANNEL_BLOCK == 0:
        return finish(tensors, fused, channel_inner=True, channel_chunk=CHANNEL_BLOCK,
                      unroll_chunk=True)
    return finish(tensors, fused)


def _pool_taps(spec: PoolSpec, x: te.Tensor, rh: object, rw: object, y: object, xx: object,
               b: object, ch: object, fill: int) -> tirx.PrimExpr:
    n, h, w_in, c = spec.input_shape
    (sh, sw), (pt, pl) = spec.stride, spec.pad_top_left
    iy, ix = y * sh - pt + rh, xx * sw - pl + rw
    value = x[b, iy, ix, ch].astype(I32)
    oh, ow = spec.output_hw
    if not (pt or pl or (oh - 1) * sh + spec.kernel[0] > h
            or (ow - 1) * sw + spec.kernel[1] > w_in):
        return value
    return tirx.if_then_else(tvm.tirx.all(iy >= 0, iy < h, ix >= 0, ix < w_in), value, c32(fill))


def average_pool(spec: PoolSpec, helpers: CHelpers) -> tirx.PrimFunc:
    """reference_integer_ops::AveragePool: sum of the taps inside the image, divided by their
    count rounding half away from zero, clamped."""
    n, h, w_in, c = spec.input_shape
    (kh, kw), (sh, sw), (pt, pl) = spec.kernel, spec.stride, spec.pad_top_left
    oh, ow = spec.output_hw
    x = te.placeholder(spec.input_shape, "int8", name="x")
    rh = te.reduce_axis((0, kh), "rh")
    rw = te.reduce_axis((0, kw), "rw")
    acc = te.compute((n, oh, ow, c), lambda b, y, xx, ch: te.sum(
        _pool_taps(spec, x, rh, rw, y, xx, b, ch, 0), axis=[rh, rw]), name="acc")

    def count(origin: tirx.PrimExpr, size: int, k: int) -> tirx.PrimExpr:
        return tirx.min(c32(k), c32(size) - origin) - tirx.max(c32(0), -origin)

    out = te.compute((n, oh, ow, c), lambda b, y, xx, ch: helpers.avgdiv(
        acc[b, y, xx, ch],
        count(y * sh - pt, h, kh) * count(xx * sw - pl, w_in, kw),
        spec.act_min, spec.act_max).astype("int8"), name="out")
    return finish([x, out], [("acc", "out", 4)])


def max_pool(spec: PoolSpec) -> tirx.PrimFunc:
    """reference_integer_ops::MaxPool: max of the taps inside the image, clamped."""
    n, _, _, c = spec.input_shape
    oh, ow = spec.output_hw
    x = te.placeholder(spec.input_shape, "int8", name="x")
    rh = te.reduce_axis((0, spec.kernel[0]), "rh")
    rw = te.reduce_axis((0, spec.kernel[1]), "rw")
    acc = te.compute((n, oh, ow, c), lambda b, y, xx, ch: te.max(
        _pool_taps(spec, x, rh, rw, y, xx, b, ch, -128), axis=[rh, rw]), name="acc")
    out = te.compute((n, oh, ow, c), lambda *i: tirx.max(
        tirx.min(acc(*i), c32(spec.act_max)), c32(spec.act_min)).astype("int8"), name="out")
    return finish([x, out], [("acc", "out", 4)])


def mean(input_shape: Sequence[int], axes: Sequence[int], input_zero_point: int,
         output_zero_point: int, multiplier: int, shift: int,
         helpers: CHelpers) -> tirx.PrimFunc:
    """QuantizedMeanOrSum (mean): int32 sum over `axes`, minus zp x count, requantised with
    the 1/count-folded multiplier. The output keeps the reduced axes as size 1."""
    shape = tuple(int(d) for d in input_shape)
    axes = sorted(set(int(a) % len(shape) for a in axes))
    count = 1
    for a in axes:
        count *= shape[a]
    x = te.placeholder(shape, "int8", name="x")
    reduce_axes = {a: te.reduce_axis((0, shape[a]), f"r{a}") for a in axes}
    out_shape = tuple(1 if a in reduce_axes else d for a, d in enumerate(shape))

    def total(*index: object) -> tirx.PrimExpr:
        src = [reduce_axes[a] if a in reduce_axes else index[a] for a in range(len(shape))]
        return te.sum(x[tuple(src)].astype(I32), axis=list(reduce_axes.values()))

    acc = te.compute(out_shape, total, name="acc")
    out = te.compute(out_shape, lambda *i: helpers.requant(
        acc(*i) - c32(input_zero_point * count), multiplier, shift, output_zero_point,
        -128, 127).astype("int8"), name="out")
    return finish([x, out], [("acc", "out", len(out_shape))])


def softmax(rows: int, depth: int, helpers: CHelpers,
            requantise: tuple[int, int, int] | None = None) -> tirx.PrimFunc:
    """reference_ops::Softmax int8 -> int8 (zero point -128, scale 1/256) with the exp of every
    possible difference precomputed: (x int8[rows, depth], exp_table int32[256]) -> int8.
    `requantise` (multiplier, shift, zero point): another output quantisation, reached from
    the probability in units of 2^-16 (ONNX models quantise softmax outputs as they like)."""
    x = te.placeholder((rows, depth), "int8", name="x")
    table = te.placeholder((256,), I32, name="exp_table")
    c = te.reduce_axis((0, depth), "c")
    row_max = te.compute((rows,), lambda r: te.max(x[r, c].astype(I32), axis=c), name="row_max")
    c2 = te.reduce_axis((0, depth), "c2")
    total = te.compute((rows,), lambda r: te.sum(helpers.rdbp(
        table[x[r, c2].astype(I32) - row_max[r] + c32(255)], 12), axis=c2), name="total")
    scale = te.compute((rows,), lambda r: helpers.softmax_scale(total[r]), name="scale")
    shift = te.compute((rows,), lambda r: helpers.softmax_shift(total[r]), name="shift")
    def body(r: object, k: object) -> tirx.PrimExpr:
        exp = table[x[r, k].astype(I32) - row_max[r] + c32(255)]
        if requantise is None:
            return helpers.softmax_out(scale[r], exp, shift[r]).astype("int8")
        multiplier, out_shift, zero_point = requantise
        return helpers.requant(helpers.softmax_q16(scale[r], exp, shift[r]), multiplier,
                               out_shift, zero_point, -128, 127).astype("int8")

    out = te.compute((rows, depth), body, name="out")
    return finish([x, table, out])
