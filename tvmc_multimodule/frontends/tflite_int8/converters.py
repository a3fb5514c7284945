"""One converter per TFLite operator with an integer kernel: reads the operator's options and
quantisation from the flatbuffer and emits call_tir (or a Relax data-movement op on int8).
A converter raises NoIntegerKernel for a configuration it does not cover; the importer then
runs that operator through the frontend's float form."""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np
from tvm import relax

from ...errors import UnsupportedError
from ...kernels import AddParams, Conv2DSpec, FullyConnectedSpec, PoolSpec, lstm_spec
from ...kernels import fixedpoint as fx
from .context import Context, NoIntegerKernel
from .graph import Operator, Tensor

SAME, VALID = 0, 1
EXPLICIT = -1  # not a TFLite value: padding given per side (operators translated from ONNX)
FUSED_SUPPORTED = (0, 1, 2, 3)  # NONE, RELU, RELU_N1_TO_1, RELU6

Converter = Callable[[Context, Operator], relax.Expr]


# ---------------------------------------------------------------- checks and small helpers

def _int8(t: Tensor, what: str, per_tensor: bool = True) -> Tensor:
    if t.dtype != "int8" or not t.quantized:
        raise NoIntegerKernel(f"{what} is {t.dtype}, not quantised int8")
    if per_tensor and t.scales.size != 1:  # type: ignore[union-attr]
        raise NoIntegerKernel(f"{what} is quantised per channel")
    return t


def _io(ctx: Context, op: Operator) -> tuple[Tensor, Tensor]:
    return (_int8(ctx.tensor(op.inputs[0]), f"{op.name} input"),
            _int8(ctx.tensor(op.outputs[0]), f"{op.name} output"))


def _activation(options: object) -> int:
    act = int(options.FusedActivationFunction())  # type: ignore[attr-defined]
    if act not in FUSED_SUPPORTED:
        raise NoIntegerKernel(f"fused activation {act}")
    return act


def _same_quant(a: Tensor, b: Tensor) -> bool:
    return a.scale == b.scale and a.zero_point == b.zero_point


def _out_size(size: int, kernel: int, stride: int, dilation: int, options: object,
              axis: int) -> tuple[int, int]:
    """(output size, padding before) of spatial `axis` (0: height, 1: width), as
    ComputePaddingHeightWidth for SAME/VALID; EXPLICIT reads `ExplicitPadding()`, one
    (before, after) pair per axis."""
    effective = (kernel - 1) * dilation + 1
    padding = options.Padding()  # type: ignore[attr-defined]
    if padding == EXPLICIT:
        before, after = options.ExplicitPadding()[axis]  # type: ignore[attr-defined]
        return (size + before + after - effective) // stride + 1, before
    if padding == SAME:
        out = (size + stride - 1) // stride
    elif padding == VALID:
        out = (size + stride - effective) // stride
    else:
        raise NoIntegerKernel(f"padding {padding}")
    return out, max(((out - 1) * stride + effective - size) // 2, 0)


def _weights(ctx: Context, op: Operator) -> Tensor:
    w = ctx.tensor(op.inputs[1])
    if w.data is None or w.dtype != "int8" or not w.quantized:
        raise NoIntegerKernel("weights are not constant int8")
    if np.any(w.zero_points != 0):  # type: ignore[arg-type]
        raise NoIntegerKernel("weights with a non-zero zero point")
    return w


def _bias(ctx: Context, op: Operator, channels: int) -> np.ndarray:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(channels, np.int32)
    b = ctx.tensor(op.inputs[2])
    if b.data is None or b.dtype != "int32":
        raise NoIntegerKernel("bias is not a constant int32")
    return b.data.reshape(-1).astype(np.int32)


def _expect_shape(op: Operator, computed: tuple[int, ...], declared: tuple[int, ...]) -> None:
    if tuple(computed) != tuple(declared):
        raise NoIntegerKernel(f"{op.name} output {list(computed)} != declared {list(declared)}")


# ---------------------------------------------------------------- convolutions, FC

def _conv(ctx: Context, op: Operator, depthwise: bool) -> relax.Expr:
    ti, to = _io(ctx, op)
    w = _weights(ctx, op)
    options = op.options("DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
    act = _activation(options)
    if len(ti.shape) != 4 or len(w.shape) != 4:
        raise NoIntegerKernel("not a 4-D convolution")
    n, h, width, c = ti.shape
    _, kh, kw, _ = w.shape
    channels = w.shape[3] if depthwise else w.shape[0]
    if depthwise and channels % c:
        raise NoIntegerKernel("depthwise channels are not a multiple of the input channels")
    if not depthwise and w.shape[3] != c:
        raise NoIntegerKernel("grouped convolution")
    stride = (options.StrideH(), options.StrideW())
    dilation = (options.DilationHFactor(), options.DilationWFactor())
    oh, pt = _out_size(h, kh, stride[0], dilation[0], options, 0)
    ow, pl = _out_size(width, kw, stride[1], dilation[1], options, 1)
    _expect_shape(op, (n, oh, ow, channels), to.shape)
    mult, shift = fx.per_channel_multipliers(ti.scale, w.scales, to.scale, channels)
    lo, hi = fx.activation_range(act, to.scale, to.zero_point)
    spec = Conv2DSpec(ti.shape, w.shape, (oh, ow), stride, dilation, (pt, pl),
                      ti.zero_point, to.zero_point, lo, hi, depthwise)
    kernel = ctx.library.conv2d(spec, w.data, _bias(ctx, op, channels), mult, shift,
                                ctx.helpers)
    return ctx.call_kernel(kernel, "dwconv2d" if depthwise else "conv2d",
                           [ctx.value(op.inputs[0])], to.shape)


def convert_conv2d(ctx: Context, op: Operator) -> relax.Expr:
    return _conv(ctx, op, depthwise=False)


def convert_depthwise_conv2d(ctx: Context, op: Operator) -> relax.Expr:
    return _conv(ctx, op, depthwise=True)


def convert_fully_connected(ctx: Context, op: Operator) -> relax.Expr:
    ti, to = _io(ctx, op)
    w = _weights(ctx, op)
    options = op.options("FullyConnectedOptions")
    act = _activation(options)
    if options.WeightsFormat() != 0 or len(w.shape) != 2:
        raise NoIntegerKernel("shuffled or non-2-D weights")
    units, depth = w.shape
    size = int(np.prod(ti.shape))
    if size % depth:
        raise NoIntegerKernel("input size is not a multiple of the weights' depth")
    batch = size // depth
    if int(np.prod(to.shape)) != batch * units:
        raise NoIntegerKernel("unexpected output size")
    mult, shift = fx.per_channel_multipliers(ti.scale, w.scales, to.scale, units)
    lo, hi = fx.activation_range(act, to.scale, to.zero_point)
    spec = FullyConnectedSpec(batch, depth, units, ti.zero_point, to.zero_point, lo, hi)
    kernel = ctx.library.fully_connected(spec, w.data, _bias(ctx, op, units), mult, shift,
                                         ctx.helpers)
    x = ctx.reshape(ctx.value(op.inputs[0]), (batch, depth))
    y = ctx.call_kernel(kernel, "fully_connected", [x], (batch, units))
    return ctx.reshape(y, to.shape)


# ---------------------------------------------------------------- elementwise

def _binary_shapes(ctx: Context, op: Operator) -> tuple[Tensor, Tensor, Tensor]:
    a = _int8(ctx.tensor(op.inputs[0]), f"{op.name} input 1")
    b = _int8(ctx.tensor(op.inputs[1]), f"{op.name} input 2")
    out = _int8(ctx.tensor(op.outputs[0]), f"{op.name} output")
    if tuple(np.broadcast_shapes(a.shape, b.shape)) != tuple(out.shape):
        raise NoIntegerKernel("output shape is not the broadcast of the inputs")
    return a, b, out


def convert_add(ctx: Context, op: Operator) -> relax.Expr:
    a, b, out = _binary_shapes(ctx, op)
    act = _activation(op.options("AddOptions"))
    lo, hi = fx.activation_range(act, out.scale, out.zero_point)
    zero_points = (a.zero_point, b.zero_point, out.zero_point)
    if ctx.helpers.rounding == "onnx":
        scales, exponent = fx.add_ratios(a.scale, b.scale, out.scale)
        func = ctx.library.add_scaled(a.shape, b.shape, out.shape, zero_points, scales,
                                      exponent, lo, hi, ctx.helpers)
        return ctx.call(func, "add", [ctx.value(op.inputs[0]), ctx.value(op.inputs[1])],
                        out.shape)
    m1, m2, mo = fx.add_params(a.scale, b.scale, out.scale)
    params = AddParams(zero_points, (m1, m2), mo, lo, hi)
    kernel = ctx.library.add_kernel(a.shape, b.shape, out.shape, params, ctx.helpers)
    return ctx.call_kernel(kernel, "add", [ctx.value(op.inputs[0]), ctx.value(op.inputs[1])],
                           out.shape)


def convert_mul(ctx: Context, op: Operator) -> relax.Expr:
    a, b, out = _binary_shapes(ctx, op)
    act = _activation(op.options("MulOptions"))
    multiplier = fx.quantize_multiplier(fx.f32(a.scale) * fx.f32(b.scale) / fx.f32(out.scale))
    lo, hi = fx.activation_range(act, out.scale, out.zero_point)
    kernel = ctx.library.mul_kernel(a.shape, b.shape, out.shape,
                                    (a.zero_point, b.zero_point, out.zero_point), multiplier,
                                    lo, hi, ctx.helpers)
    return ctx.call_kernel(kernel, "mul", [ctx.value(op.inputs[0]), ctx.value(op.inputs[1])],
                           out.shape)


def _lookup(ctx: Context, op: Operator, table: np.ndarray, name: str) -> relax.Expr:
    to = ctx.tensor(op.outputs[0])
    func = ctx.library.table_lookup(to.shape, str(table.dtype),
                                    ctx.tensor(op.inputs[0]).dtype)
    return ctx.call(func, name, [ctx.value(op.inputs[0]), ctx.const(table)], to.shape,
                    str(table.dtype))


def convert_table(ctx: Context, op: Operator) -> relax.Expr:
    """An operator of another format as a 256-entry table given by its translator."""
    table = np.asarray(op.options("Table").Values())
    if table.shape != (256,) or ctx.tensor(op.inputs[0]).dtype not in ("int8", "uint8"):
        raise NoIntegerKernel("a lookup table needs one 8-bit input and 256 entries")
    return _lookup(ctx, op, table, op.options("Table").Name())


def convert_logistic(ctx: Context, op: Operator) -> relax.Expr:
    ti, to = _io(ctx, op)
    if to.zero_point != -128:
        raise NoIntegerKernel("LOGISTIC output zero point is not -128")
    return _lookup(ctx, op, fx.logistic_table(ti.scale, ti.zero_point), "logistic")


def convert_tanh(ctx: Context, op: Operator) -> relax.Expr:
    ti, _ = _io(ctx, op)
    return _lookup(ctx, op, fx.tanh_table(ti.scale, ti.zero_point), "tanh")


def convert_relu(ctx: Context, op: Operator) -> relax.Expr:
    ti, to = _io(ctx, op)
    return _lookup(ctx, op, fx.relu_table(ti.scale, ti.zero_point, to.scale, to.zero_point),
                   "relu")


def convert_relu6(ctx: Context, op: Operator) -> relax.Expr:
    ti, _ = _io(ctx, op)
    return _lookup(ctx, op, fx.relu6_table(ti.scale, ti.zero_point), "relu6")


def convert_quantize(ctx: Context, op: Operator) -> relax.Expr:
    ti = ctx.tensor(op.inputs[0])
    to = ctx.tensor(op.outputs[0])
    if to.dtype == "uint8" and to.quantized and ti.dtype == "int8":  # a uint8 model output
        _int8(ti, "QUANTIZE input")
        table = fx.requantize_table(ti.scale, ti.zero_point, to.scale, to.zero_point, "uint8")
        return _lookup(ctx, op, table, "requantize_unsigned")
    to = _int8(to, "QUANTIZE output")
    if ti.dtype == "float32":
        thresholds = fx.quantize_thresholds(to.scale, to.zero_point)
        func = ctx.library.quantize_float(to.shape, ctx.helpers)
        return ctx.call(func, "quantize", [ctx.value(op.inputs[0]), ctx.const(thresholds)],
                        to.shape)
    _int8(ti, "QUANTIZE input")
    table = fx.requantize_table(ti.scale, ti.zero_point, to.scale, to.zero_point)
    return _lookup(ctx, op, table, "requantize")


def convert_dequantize(ctx: Context, op: Operator) -> relax.Expr:
    ti = _int8(ctx.tensor(op.inputs[0]), "DEQUANTIZE input")
    if ctx.tensor(op.outputs[0]).dtype != "float32":
        raise NoIntegerKernel("DEQUANTIZE to a type other than float32")
    return _lookup(ctx, op, fx.dequantize_table(ti.scale, ti.zero_point), "dequantize")


# ---------------------------------------------------------------- pools, mean, softmax

def _pool(ctx: Context, op: Operator) -> tuple[PoolSpec, Tensor, Tensor]:
    ti, to = _io(ctx, op)
    if not _same_quant(ti, to):
        raise NoIntegerKernel("pooling that changes the quantisation")
    options = op.options("Pool2DOptions")
    act = _activation(options)
    n, h, w, c = ti.shape
    kernel = (options.FilterHeight(), options.FilterWidth())
    stride = (options.StrideH(), options.StrideW())
    oh, pt = _out_size(h, kernel[0], stride[0], 1, options, 0)
    ow, pl = _out_size(w, kernel[1], stride[1], 1, options, 1)
    _expect_shape(op, (n, oh, ow, c), to.shape)
    lo, hi = fx.activation_range(act, to.scale, to.zero_point)
    return PoolSpec(ti.shape, kernel, stride, (pt, pl), (oh, ow), lo, hi), ti, to


def convert_average_pool2d(ctx: Context, op: Operator) -> relax.Expr:
    spec, _, to = _pool(ctx, op)
    return ctx.call_kernel(ctx.library.average_pool_kernel(spec, ctx.helpers), "avg_pool2d",
                           [ctx.value(op.inputs[0])], to.shape)


def convert_max_pool2d(ctx: Context, op: Operator) -> relax.Expr:
    spec, _, to = _pool(ctx, op)
    return ctx.call_kernel(ctx.library.max_pool_kernel(spec, ctx.helpers), "max_pool2d",
                           [ctx.value(op.inputs[0])], to.shape)


def convert_mean(ctx: Context, op: Operator) -> relax.Expr:
    ti, to = _io(ctx, op)
    axes = [int(a) % len(ti.shape) for a in ctx.constant_data(op, 1, "axes").reshape(-1)]
    count = int(np.prod([ti.shape[a] for a in set(axes)]))
    kept = tuple(1 if a in axes else d for a, d in enumerate(ti.shape))
    if int(np.prod(kept)) != int(np.prod(to.shape)):
        raise NoIntegerKernel("unexpected MEAN output size")
    if ctx.helpers.rounding == "onnx":  # the sum times in / (out x count), rounded once
        multiplier, shift = fx.quantize_multiplier(
            fx.f32(ti.scale) / (fx.f32(to.scale) * count))
    else:
        multiplier, shift = fx.mean_multiplier(ti.scale, to.scale, count)
    func = ctx.library.mean(ti.shape, axes, ti.zero_point, to.zero_point, multiplier, shift,
                            ctx.helpers)
    y = ctx.call(func, "mean", [ctx.value(op.inputs[0])], kept)
    return ctx.reshape(y, to.shape)


def convert_softmax(ctx: Context, op: Operator) -> relax.Expr:
    """TFLite's int8 softmax (output 1/256, -128: bit-exact); any other output quantisation
    (ONNX) is reached by requantising the probability in units of 2^-16."""
    ti, to = _io(ctx, op)
    requantise = None
    if to.zero_point != -128 or to.scale != 1.0 / 256:
        multiplier, shift = fx.quantize_multiplier(1.0 / (65536.0 * fx.f32(to.scale)))
        requantise = (multiplier, shift, to.zero_point)
    depth = ti.shape[-1]
    rows = int(np.prod(ti.shape)) // depth
    kernel = ctx.library.softmax_kernel(rows, depth, ti.scale,
                                        op.options("SoftmaxOptions").Beta(), ctx.helpers,
                                        requantise)
    x = ctx.reshape(ctx.value(op.inputs[0]), (rows, depth))
    y = ctx.call_kernel(kernel, "softmax", [x], (rows, depth))
    return ctx.reshape(y, to.shape)


# ---------------------------------------------------------------- data movement

def convert_reshape(ctx: Context, op: Operator) -> relax.Expr:
    to = ctx.tensor(op.outputs[0])
    return ctx.reshape(ctx.value(op.inputs[0]), to.shape)


def convert_transpose(ctx: Context, op: Operator) -> relax.Expr:
    perm = [int(p) for p in ctx.constant_data(op, 1, "permutation").reshape(-1)]
    return ctx.emit(relax.op.permute_dims(ctx.value(op.inputs[0]), perm))


def convert_concatenation(ctx: Context, op: Operator) -> relax.Expr:
    to = _int8(ctx.tensor(op.outputs[0]), "CONCATENATION output")
    options = op.options("ConcatenationOptions")
    if options.FusedActivationFunction() != 0:
        raise NoIntegerKernel("CONCATENATION with a fused activation")
    for index in op.inputs:
        if not _same_quant(_int8(ctx.tensor(index), "CONCATENATION input"), to):
            raise NoIntegerKernel("CONCATENATION inputs with different quantisation")
    axis = int(options.Axis()) % len(to.shape)
    return ctx.emit(relax.op.concat([ctx.value(i) for i in op.inputs], axis=axis))


def convert_pad(ctx: Context, op: Operator) -> relax.Expr:
    ti, to = _io(ctx, op)
    paddings = ctx.constant_data(op, 1, "paddings").reshape(-1, 2).astype(np.int64)
    if paddings.shape[0] != len(ti.shape) or np.any(paddings < 0):
        raise NoIntegerKernel("PAD paddings do not match the input rank")
    value = to.zero_point
    if len(op.inputs) > 2 and op.inputs[2] >= 0:  # PADV2
        value = int(ctx.constant_data(op, 2, "constant value").reshape(-1)[0])
    out_shape = tuple(int(d + b + a) for d, (b, a) in zip(ti.shape, paddings))
    _expect_shape(op, out_shape, to.shape)
    func = ctx.library.pad(ti.shape, [int(b) for b, _ in paddings], out_shape, value)
    return ctx.call(func, "pad", [ctx.value(op.inputs[0])], to.shape)


def convert_strided_slice(ctx: Context, op: Operator) -> relax.Expr:
    ti = ctx.tensor(op.inputs[0])
    to = ctx.tensor(op.outputs[0])
    if ti.dtype != "int8":
        raise NoIntegerKernel("STRIDED_SLICE of a non-int8 tensor")
    options = op.options("StridedSliceOptions")
    if options.EllipsisMask() or options.NewAxisMask():
        raise NoIntegerKernel("STRIDED_SLICE with an ellipsis or new axis mask")
    offset = bool(options.Offset()) if hasattr(options, "Offset") else False
    begin = ctx.constant_data(op, 1, "begin").reshape(-1)
    end = ctx.constant_data(op, 2, "end").reshape(-1)
    strides = ctx.constant_data(op, 3, "strides").reshape(-1)
    starts, steps, counts = [], [], []
    for axis, dim in enumerate(ti.shape):
        if axis >= len(begin):
            starts.append(0)
            steps.append(1)
            counts.append(dim)
            continue
        b, e, s = int(begin[axis]), int(end[axis]), int(strides[axis])
        if offset:
            e = b + e
        shrink = bool(options.ShrinkAxisMask() >> axis & 1)
        if shrink:
            b = b + dim if b < 0 else b
            rng = range(b, b + 1)
        else:
            start = None if options.BeginMask() >> axis & 1 else b
            stop = None if options.EndMask() >> axis & 1 else e
            rng = range(*slice(start, stop, s).indices(dim))
        if len(rng) == 0 or not 0 <= rng.start < dim:
            raise NoIntegerKernel("empty or out-of-range STRIDED_SLICE")
        starts.append(rng.start)
        steps.append(rng.step)
        counts.append(len(rng))
    if int(np.prod(counts)) != int(np.prod(to.shape)):
        raise NoIntegerKernel("unexpected STRIDED_SLICE output size")
    func = ctx.library.strided_slice(ti.shape, starts, steps, counts)
    y = ctx.call(func, "strided_slice", [ctx.value(op.inputs[0])], counts)
    return ctx.reshape(y, to.shape)


def _split(ctx: Context, op: Operator, sizes: list[int], axis: int,
           source: int) -> list[relax.Expr]:
    """Pieces of `sizes` along `axis`, each a strided-slice kernel (no copy of the rest)."""
    ti = _int8(ctx.tensor(op.inputs[source]), f"{op.name} input")
    axis %= len(ti.shape)
    if -1 in sizes:  # one size may be inferred
        known = sum(s for s in sizes if s != -1)
        sizes = [ti.shape[axis] - known if s == -1 else s for s in sizes]
    if sum(sizes) != ti.shape[axis] or any(s <= 0 for s in sizes) \
            or len(sizes) != len(op.outputs):
        raise NoIntegerKernel(f"{op.name} sizes {sizes} do not split axis {axis}")
    pieces, start = [], 0
    for size, index in zip(sizes, op.outputs):
        to = _int8(ctx.tensor(index), f"{op.name} output")
        if not _same_quant(ti, to):
            raise NoIntegerKernel(f"{op.name} that changes the quantisation")
        starts = [start if a == axis else 0 for a in range(len(ti.shape))]
        counts = [size if a == axis else d for a, d in enumerate(ti.shape)]
        _expect_shape(op, tuple(counts), to.shape)
        func = ctx.library.strided_slice(ti.shape, starts, [1] * len(ti.shape), counts)
        pieces.append(ctx.call(func, "split", [ctx.value(op.inputs[source])], counts))
        start += size
    return pieces


def convert_split_v(ctx: Context, op: Operator) -> list[relax.Expr]:
    sizes = [int(v) for v in ctx.constant_data(op, 1, "size_splits").reshape(-1)]
    axis = int(ctx.constant_data(op, 2, "axis").reshape(-1)[0])
    return _split(ctx, op, sizes, axis, 0)


def convert_split(ctx: Context, op: Operator) -> list[relax.Expr]:
    axis = int(ctx.constant_data(op, 0, "axis").reshape(-1)[0])
    ti = ctx.tensor(op.inputs[1])
    parts = len(op.outputs)
    if ti.shape[axis % len(ti.shape)] % parts:
        raise NoIntegerKernel("SPLIT into unequal parts")
    return _split(ctx, op, [ti.shape[axis % len(ti.shape)] // parts] * parts, axis, 1)


# ---------------------------------------------------------------- recurrent

# UNIDIRECTIONAL_SEQUENCE_LSTM inputs: weights (input, recurrent) and biases per gate i f c o
_LSTM_W = (1, 2, 3, 4)
_LSTM_R = (5, 6, 7, 8)
_LSTM_B = (12, 13, 14, 15)
_LSTM_ABSENT = {9: "peepholes", 10: "peepholes", 11: "peepholes", 16: "projection",
                17: "projection", 20: "layer normalisation", 21: "layer normalisation",
                22: "layer normalisation", 23: "layer normalisation"}
TANH = 4  # ActivationFunctionType.TANH


def convert_unidirectional_sequence_lstm(ctx: Context, op: Operator) -> relax.Expr:
    """TFLite Micro's integer LSTM (8-bit activations and weights, int16 cell state): the
    whole sequence in one kernel; the output and cell state tensors (variables) take the
    final h and c, so the next invoke continues from them."""
    node = f"int8 UNIDIRECTIONAL_SEQUENCE_LSTM '{ctx.tensor(op.outputs[0]).name}'"

    def refuse(what: str) -> UnsupportedError:
        return UnsupportedError(f"{node}: {what} (TFLite Micro's integer LSTM form only)")

    inputs = list(op.inputs) + [-1] * (24 - len(op.inputs))
    present = sorted({why for k, why in _LSTM_ABSENT.items() if inputs[k] >= 0})
    if present:
        raise refuse(" and ".join(present) + " are not supported")
    if any(inputs[k] < 0 for k in _LSTM_W + _LSTM_R + (18, 19)):
        raise refuse("the coupled input-forget form (no input gate) is not supported")
    x, h, c = (ctx.tensor(inputs[k]) for k in (0, 18, 19))
    y = ctx.tensor(op.outputs[0])
    if (x.dtype, h.dtype, c.dtype, y.dtype) != ("int8", "int8", "int16", "int8"):
        raise refuse(f"activations {x.dtype}, state {h.dtype}/{c.dtype} are not supported "
                     "(int8 activations, int16 cell state)")
    weights = [ctx.tensor(inputs[k]) for k in _LSTM_W + _LSTM_R]
    for w in weights:
        if (w.dtype != "int8" or w.data is None or w.scales is None or w.scales.size != 1
                or w.zero_point != 0):
            raise refuse(f"weights '{w.name}' are not constant per-tensor symmetric int8")
    options = op.options("UnidirectionalSequenceLSTMOptions")
    if int(options.FusedActivationFunction()) != TANH:
        raise refuse("only the TANH cell activation is supported")
    time_major = bool(options.TimeMajor())
    steps, batch = (x.shape[0], x.shape[1]) if time_major else (x.shape[1], x.shape[0])
    hidden = weights[0].shape[0]
    depth = x.shape[2]
    if int(np.prod(h.shape)) != batch * hidden or int(np.prod(c.shape)) != batch * hidden:
        raise refuse("state size is not batch x units")
    biases = []
    for k in _LSTM_B:
        if inputs[k] < 0:
            biases.append(np.zeros(hidden, np.int32))
            continue
        b = ctx.tensor(inputs[k])
        if b.dtype != "int32" or b.data is None:
            raise refuse(f"bias '{b.name}' is not a constant int32")
        biases.append(b.data.astype(np.int32).reshape(hidden))
    spec = lstm_spec(batch, steps, depth, hidden, time_major, x.scale, x.zero_point,
                     tuple(float(w.scales[0]) for w in weights), h.scale, h.zero_point,
                     c.scale, float(options.CellClip()))
    w_in = np.stack([w.data.reshape(hidden, depth) for w in weights[:4]])
    w_rec = np.stack([w.data.reshape(hidden, hidden) for w in weights[4:]])
    kernel = ctx.library.lstm(spec, w_in, w_rec, np.stack(biases), ctx.helpers)
    out, h_new, c_new = ctx.call_kernel_outputs(
        kernel, "lstm", [ctx.value(inputs[0]), ctx.reshape(ctx.value(inputs[18]), (batch, hidden)),
                         ctx.reshape(ctx.value(inputs[19]), (batch, hidden))],
        [(y.shape, "int8"), ((batch, hidden), "int8"), ((batch, hidden), "int16")])
    ctx.values[inputs[18]] = ctx.reshape(h_new, h.shape)
    ctx.values[inputs[19]] = ctx.reshape(c_new, c.shape)
    return out


CONVERTERS: Mapping[str, Converter] = MappingProxyType({
    "UNIDIRECTIONAL_SEQUENCE_LSTM": convert_unidirectional_sequence_lstm,
    "SPLIT": convert_split,
    "SPLIT_V": convert_split_v,
    "CONV_2D": convert_conv2d,
    "DEPTHWISE_CONV_2D": convert_depthwise_conv2d,
    "FULLY_CONNECTED": convert_fully_connected,
    "ADD": convert_add,
    "MUL": convert_mul,
    "AVERAGE_POOL_2D": convert_average_pool2d,
    "MAX_POOL_2D": convert_max_pool2d,
    "MEAN": convert_mean,
    "SOFTMAX": convert_softmax,
    "LOGISTIC": convert_logistic,
    "TANH": convert_tanh,
    "RELU": convert_relu,
    "RELU6": convert_relu6,
    "RESHAPE": convert_reshape,
    "SQUEEZE": convert_reshape,
    "CONCATENATION": convert_concatenation,
    "PAD": convert_pad,
    "PADV2": convert_pad,
    "QUANTIZE": convert_quantize,
    "DEQUANTIZE": convert_dequantize,
    "STRIDED_SLICE": convert_strided_slice,
    "TRANSPOSE": convert_transpose,
})
"""The TFLite operators with an integer kernel."""

TABLE = "TVMC_TABLE"
INTERNAL_CONVERTERS: Mapping[str, Converter] = MappingProxyType({TABLE: convert_table})
"""Operators only translators emit (a TFLite file cannot name them)."""
