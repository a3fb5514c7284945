"""Cortex-M DSP kernels, for cores with the DSP extension (Cortex-M4, M7, M33, M55):
convolutions, depthwise convolutions and fully connected layers as C functions specialised per
layer (c_source.py), called from TIR by `call_extern`; every other operator is portable C's
scalar form.

- 2 int8 MACs per SMLAD, operands widened by SXTB16; the input zero point is subtracted while
  widening (SXTAB16), so taps outside the image are skipped instead of read;
- weights packed at compile time in the order the inner loop reads them: output channels in
  pairs, the pair's weights interleaved per 4 input channels (depthwise: widened to int16
  pairs, in the halfword order SXTB16 produces);
- 2 pixels x 2 output channels in registers per pass (each weight word serves 2 pixels);
- requantisation as TFLite Micro's, in ~10 instructions (SMMULR where the accumulators'
  bound allows it, a rounding shift, SSAT);
- no scratch: nothing beyond the liveness-bound workspace.
"""
from __future__ import annotations

from string import Template
from typing import Sequence

import numpy as np
from tvm import tirx

from ..c_helpers import CHelpers
from ..library import Kernel, extern_kernel, layer_name
from ..portable import PortableC, shift_table
from .. import fixedpoint as fx
from ..records import AddParams, Conv2DSpec, FullyConnectedSpec, PoolSpec
from . import elementwise as ew
from .c_source import (AVG_BODY, BINARY, CONV, CONV_WINDOW, DEPTHWISE, GEMV, MAX_BODY, POOL,
                       PRIMITIVES)

MAX_POOL_SUM_TAPS = 255  # average pooling sums in 16-bit lanes: 255 x -128 still fits
TABLE_ADD_MIN_SIZE = 512  # ADDs at least this large read 2 x 256 int32 tables (2 KB)
WINDOW_STACK_BYTES = 2048  # convolutions copy 2 pixels' windows to the stack up to this size
INPLACE_ATTR = "tvmc.inplace"  # read by pipeline/inplace.py: [[input, output], ...] pairs
DSP_CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85")


def _pad_to(array: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros((length,) + array.shape[1:], array.dtype)
    out[:len(array)] = array
    return out


def _extern_kernel(name: str, inputs: list[tuple[tuple[int, ...], str]],
                   out_shape: tuple[int, ...], macs: int = 0) -> tirx.PrimFunc:
    return extern_kernel(name, inputs, out_shape, macs)


def _name(helpers: CHelpers, kind: str, text: str) -> str:
    return layer_name(helpers.prefix, f"dsp_{kind}", text)


def _shifts(shift: np.ndarray, acc_bound: int) -> tuple[str, np.ndarray]:
    """(requant helper, its shift constants): right shifts only when no channel shifts left
    or by 0 (the common case), else TFLite's signed shift; the right-shift form with one
    SMMULR when no accumulator can reach 2^30 (`acc_bound`: the largest |accumulator|)."""
    shift = shift.astype(np.int32)
    if shift.size and (shift < 0).all():
        helper = "d_requant_small" if acc_bound < 1 << 30 else "d_requant_right"
        return helper, shift_table(-shift)
    return "d_requant", shift_table(shift)


def _acc_bound(weights: np.ndarray, bias: np.ndarray, channel_axis: int = 0) -> int:
    """The largest |bias + sum((x - zp) * w)| any output channel can reach (|x - zp| <= 255)."""
    w = np.moveaxis(np.abs(weights.astype(np.int64)), channel_axis, 0).reshape(
        weights.shape[channel_axis], -1)
    return int((np.abs(bias.astype(np.int64)) + 255 * w.sum(axis=1)).max(initial=0))


def _off(zero_point: int) -> str:
    half = (-zero_point) & 0xFFFF
    return f"(int32_t){half * 0x10001:#x}u"


class CortexMDsp(PortableC):
    """DSP kernels where they pay; portable C (scalar form) for the rest."""

    name = "cortex-m-dsp"

    def __init__(self) -> None:
        super().__init__("scalar")

    def primitives(self, helpers: CHelpers) -> tuple[str, str]:
        return ("dsp_primitives", PRIMITIVES.replace("${p}", helpers.prefix))

    def conv2d(self, spec: Conv2DSpec, weights: np.ndarray, bias: np.ndarray,
               mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        n, h, w_in, c = spec.input_shape
        _, kh, kw, _ = spec.weight_shape
        if spec.depthwise:
            return self._depthwise(spec, weights, bias, mult, shift, helpers)
        oh, ow = spec.output_hw
        (sh, sw), (dh, dw), (pt, pl) = spec.stride, spec.dilation, spec.pad_top_left
        if (kh, kw, sh, sw, pt, pl) == (1, 1, 1, 1, 0, 0) and (oh, ow) == (h, w_in):
            h, w_in, oh, ow = 1, h * w_in, 1, oh * ow  # a pointwise convolution: one long row
        return self._conv(helpers, "conv", n, h, w_in, c, oh, ow, kh, kw, (sh, sw), (dh, dw),
                          (pt, pl), spec.input_zero_point, spec.output_zero_point,
                          spec.act_min, spec.act_max, weights, bias, mult, shift,
                          spec.input_shape, tuple(spec.input_shape[:1]) + spec.output_hw)

    def fully_connected(self, spec: FullyConnectedSpec, weights: np.ndarray, bias: np.ndarray,
                        mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        if spec.batch == 1:
            return self._gemv(spec, weights, bias, mult, shift, helpers)
        # a 1x1 convolution over a 1 x batch image of `depth` channels
        return self._conv(helpers, "fc", 1, 1, spec.batch, spec.depth, 1, spec.batch, 1, 1,
                          (1, 1), (1, 1), (0, 0), spec.input_zero_point,
                          spec.output_zero_point, spec.act_min, spec.act_max,
                          weights.reshape(spec.units, 1, 1, spec.depth), bias, mult, shift,
                          (spec.batch, spec.depth), (spec.batch,))

    def _gemv(self, spec: FullyConnectedSpec, weights: np.ndarray, bias: np.ndarray,
              mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        requant, shifts = _shifts(shift, _acc_bound(weights, bias))
        quads = 4 * ((spec.units + 3) // 4)
        body = GEMV.substitute(name="NAME", O=spec.units, C=spec.depth, T=spec.depth % 4,
                               off=_off(spec.input_zero_point), zin=spec.input_zero_point,
                               zout=spec.output_zero_point, lo=spec.act_min, hi=spec.act_max,
                               requant=requant, p=helpers.prefix)
        name = _name(helpers, "fc", body)
        packed = _pack_groups(_pad_to(weights.reshape(spec.units, 1, 1, spec.depth), quads), 4)
        consts = (packed, _pad_to(bias.astype(np.int32), quads),
                  _pad_to(mult.astype(np.int32), quads), _pad_to(shifts, quads))
        func = _extern_kernel(name, [((1, spec.depth), "int8"),
                                     *[(a.shape, str(a.dtype)) for a in consts]],
                              (1, spec.units), spec.units * spec.depth)
        return Kernel(func, consts, (self.primitives(helpers),
                                     (name, body.replace("NAME", name))))

    def add_kernel(self, a_shape: Sequence[int], b_shape: Sequence[int],
                   out_shape: Sequence[int], params: AddParams, helpers: CHelpers) -> Kernel:
        """Any shapes; from TABLE_ADD_MIN_SIZE outputs on each input's rescaled value comes
        from a 256-entry table (2 KB of constants) instead of a multiply and a shift."""
        tables = int(np.prod(out_shape)) >= TABLE_ADD_MIN_SIZE
        value = ew.add_value(params.zero_points, params.input_multipliers,
                             params.output_multiplier, params.act_min, params.act_max,
                             tables, helpers.prefix)
        consts: tuple[np.ndarray, ...] = ()
        if tables:
            values = np.arange(256).astype(np.uint8).view(np.int8).astype(np.int64)
            consts = tuple(np.array([fx.mbqm(int(v - zp) << 20, m, s) for v in values],
                                    np.int32)
                           for zp, (m, s) in zip(params.zero_points[:2],
                                                 params.input_multipliers))
        return self._binary(helpers, "add", a_shape, b_shape, out_shape, value, consts)

    def mul_kernel(self, a_shape: Sequence[int], b_shape: Sequence[int],
                   out_shape: Sequence[int], zero_points: tuple[int, int, int],
                   multiplier: tuple[int, int], act_min: int, act_max: int,
                   helpers: CHelpers) -> Kernel:
        value = ew.mul_value(zero_points, multiplier, act_min, act_max, helpers.prefix)
        return self._binary(helpers, "mul", a_shape, b_shape, out_shape, value, ())

    def _binary(self, helpers: CHelpers, kind: str, a_shape: Sequence[int],
                b_shape: Sequence[int], out_shape: Sequence[int], value: str,
                consts: tuple[np.ndarray, ...]) -> Kernel:
        tables = ("\n    const int32_t* restrict ta, const int32_t* restrict tb,"
                  if consts else "")
        loops = ew.loops_c(ew.broadcast_loops(out_shape, a_shape, b_shape), value)
        body = BINARY.substitute(name="NAME", tables=tables, loops=loops, p=helpers.prefix)
        name = _name(helpers, kind, body)
        func = _extern_kernel(name, [(tuple(a_shape), "int8"), (tuple(b_shape), "int8"),
                                     *[(c.shape, "int32") for c in consts]], tuple(out_shape))
        # an operand of the output's shape may share its buffer (see BINARY)
        same = [i for i, shape in enumerate((a_shape, b_shape))
                if tuple(shape) == tuple(out_shape)]
        if same:
            func = func.with_attr(INPLACE_ATTR, [[i, 2 + len(consts)] for i in same])
        return Kernel(func, consts, (self.primitives(helpers),
                                     (name, body.replace("NAME", name))))

    # ---- pooling: 4 channels per word
    def average_pool_kernel(self, spec: PoolSpec, helpers: CHelpers) -> Kernel:
        if spec.kernel[0] * spec.kernel[1] > MAX_POOL_SUM_TAPS:
            return super().average_pool_kernel(spec, helpers)
        return self._pool(spec, helpers, "avgpool", AVG_BODY, {})

    def max_pool_kernel(self, spec: PoolSpec, helpers: CHelpers) -> Kernel:
        def lanes(v: int) -> str:
            return f"(int32_t){(v & 0xFF) * 0x01010101:#x}u"
        return self._pool(spec, helpers, "maxpool", MAX_BODY,
                          {"lo4": lanes(spec.act_min), "hi4": lanes(spec.act_max)})

    def _pool(self, spec: PoolSpec, helpers: CHelpers, kind: str, body_text: str,
              extra: dict[str, str]) -> Kernel:
        n, h, w_in, c = spec.input_shape
        (kh, kw), (sh, sw), (pt, pl) = spec.kernel, spec.stride, spec.pad_top_left
        oh, ow = spec.output_hw
        params = dict(N=n, H=h, W=w_in, C=c, C4=c - c % 4, OH=oh, OW=ow, KH=kh, KW=kw, SH=sh,
                      SW=sw, PT=pt, PL=pl, lo=spec.act_min, hi=spec.act_max,
                      p=helpers.prefix, **extra)
        body = POOL.substitute(params, name="NAME",
                               body=Template(body_text).substitute(params))
        name = _name(helpers, kind, body)
        func = _extern_kernel(name, [(tuple(spec.input_shape), "int8")], (n, oh, ow, c))
        return Kernel(func, (), (self.primitives(helpers), (name, body.replace("NAME", name))))

    # ---- convolution (and fully connected)
    def _conv(self, helpers: CHelpers, kind: str, n: int, h: int, w_in: int, c: int, oh: int,
              ow: int, kh: int, kw: int, stride: tuple[int, int], dilation: tuple[int, int],
              pad: tuple[int, int], zin: int, zout: int, lo: int, hi: int,
              weights: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
              in_shape: tuple[int, ...], out_lead: tuple[int, ...]) -> Kernel:
        out_c = weights.shape[0]
        (sh, sw), (dh, dw), (pt, pl) = stride, dilation, pad
        rows_clipped = pt > 0 or (oh - 1) * sh - pt + (kh - 1) * dh >= h
        cols_clipped = pl > 0 or (ow - 1) * sw - pl + (kw - 1) * dw >= w_in
        params = dict(N=n, H=h, W=w_in, C=c, OH=oh, OW=ow, O=out_c, KH=kh, KW=kw, SH=sh, SW=sw,
                      DH=dh, DW=dw, PT=pt, PL=pl, off=_off(zin), zout=zout, lo=lo, hi=hi,
                      row_outside=f"iy < 0 || iy >= {h}" if rows_clipped else "0",
                      in0=f"ix0 >= 0 && ix0 < {w_in}" if cols_clipped else "1",
                      in1=f"ix1 >= 0 && ix1 < {w_in}" if cols_clipped else "1",
                      odd_last="1" if out_c % 2 == 0 else f"o + 1 < {out_c}", p=helpers.prefix)
        requant, shifts = _shifts(shift, _acc_bound(weights, bias))
        params["requant"] = requant
        pairs = (out_c + 1) // 2
        window = kh * kw * c
        if (kh, kw, sh, sw, pt, pl) != (1, 1, 1, 1, 0, 0) and 2 * window <= WINDOW_STACK_BYTES:
            params.update(K=window, zin=zin)
            body = CONV_WINDOW.substitute(params, name="NAME")
            weights = weights.reshape(out_c, 1, 1, window)
        else:
            body = CONV.substitute(params, name="NAME")
        name = _name(helpers, kind, body)
        packed = _pack_pairs(_pad_to(weights, 2 * pairs))
        consts = (packed, _pad_to(bias.astype(np.int32), 2 * pairs),
                  _pad_to(mult.astype(np.int32), 2 * pairs), _pad_to(shifts, 2 * pairs))
        out_shape = tuple(out_lead) + (out_c,)
        func = _extern_kernel(name, [(tuple(in_shape), "int8"), *[(a.shape, str(a.dtype))
                                                                  for a in consts]], out_shape,
                              int(np.prod(out_shape)) * kh * kw * c)
        return Kernel(func, consts, (self.primitives(helpers),
                                     (name, body.replace("NAME", name))))

    # ---- depthwise convolution (any channel multiplier)
    def _depthwise(self, spec: Conv2DSpec, weights: np.ndarray, bias: np.ndarray,
                   mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        n, h, w_in, c = spec.input_shape
        _, kh, kw, out_c = spec.weight_shape
        m = out_c // c
        oh, ow = spec.output_hw
        (sh, sw), (dh, dw), (pt, pl) = spec.stride, spec.dilation, spec.pad_top_left
        clipped = (pt or pl or (oh - 1) * sh - pt + (kh - 1) * dh >= h
                   or (ow - 1) * sw - pl + (kw - 1) * dw >= w_in)
        interior = (f"iy0 >= 0 && iy0 + {(kh - 1) * dh} < {h} && ix0 >= 0 && "
                    f"ix0 + {(kw - 1) * dw} < {w_in}") if clipped else "1"
        c4 = c - c % 4
        # output channel ic * m + j -> packed per j: [j, ic]
        per_m = weights.reshape(kh * kw, c, m).transpose(2, 0, 1)  # [j, tap, ic]
        words = [_pack_depthwise(per_m[j], c4) for j in range(m)]
        params = dict(N=n, H=h, W=w_in, C=c, C4=c4, M=m, MW=len(words[0]), OH=oh, OW=ow,
                      KH=kh, KW=kw, SH=sh, SW=sw, DH=dh, DW=dw, PT=pt, PL=pl,
                      off=_off(spec.input_zero_point), zin=spec.input_zero_point,
                      zout=spec.output_zero_point, lo=spec.act_min, hi=spec.act_max,
                      interior=interior, p=helpers.prefix)
        params["requant"], shifts = _shifts(
            shift, _acc_bound(weights.reshape(-1, out_c), bias, channel_axis=1))

        def per_j(table: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(table.reshape(c, m).T.reshape(-1))

        body = DEPTHWISE.substitute(params, name="NAME")
        name = _name(helpers, "dw", body)
        consts = (np.concatenate(words), per_j(bias.astype(np.int32)),
                  per_j(mult.astype(np.int32)), per_j(shifts))
        func = _extern_kernel(name, [(tuple(spec.input_shape), "int8"),
                                     *[(a.shape, str(a.dtype)) for a in consts]],
                              (n, oh, ow, out_c), n * oh * ow * out_c * kh * kw)
        return Kernel(func, consts, (self.primitives(helpers),
                                     (name, body.replace("NAME", name))))


def _pack_depthwise(taps: np.ndarray, c4: int) -> np.ndarray:
    """[tap, channel] int8 weights -> int32 words: per block of 4 channels and tap the int16
    pairs (c0, c2), (c1, c3) (SXTB16's halves), then the c % 4 tail channels' int16 taps,
    padded to a whole word."""
    taps = taps.astype(np.int16)
    blocks = taps[:, :c4].reshape(len(taps), c4 // 4, 4).transpose(1, 0, 2)  # [blk, tap, 4]
    halves = blocks[:, :, [0, 2, 1, 3]]
    tail = taps[:, c4:].T  # [channel, tap]
    packed16 = np.concatenate([halves.reshape(-1), tail.reshape(-1)])
    if packed16.size % 2:
        packed16 = np.append(packed16, np.int16(0))
    return packed16.view(np.int32) if packed16.size else np.zeros(1, np.int32)


def _pack_pairs(weights: np.ndarray) -> np.ndarray:
    return _pack_groups(weights, 2)


def _pack_groups(weights: np.ndarray, g: int) -> np.ndarray:
    """[O (a multiple of g), KH, KW, C] -> per group of g output channels and tap: the g
    channels' 4-byte groups interleaved, then the C % 4 tails (one channel's after another's)."""
    out_c, kh, kw, c = weights.shape
    c4 = c - c % 4
    w = weights.reshape(out_c // g, g, kh * kw, c).transpose(0, 2, 1, 3)  # [group, tap, g, C]
    body = w[..., :c4].reshape(out_c // g, kh * kw, g, c4 // 4, 4).transpose(0, 1, 3, 2, 4)
    body = body.reshape(out_c // g, kh * kw, g * c4)
    tail = w[..., c4:].reshape(out_c // g, kh * kw, g * (c - c4))
    return np.ascontiguousarray(np.concatenate([body, tail], axis=2).reshape(-1))
