"""ONNX ConvInteger (dynamically quantised models: DynamicQuantizeLinear -> ConvInteger ->
Cast -> Mul by the scales), which TVM 0.27's Relax ONNX frontend lacks, and MatMulInteger
with its 8-bit weights kept 8-bit (TVM's converter folds them to int32 constants: 4x).

y = conv(x - x_zero_point, w - w_zero_point) in int32, the spec's definition. x - x_zero_point
fits int16 (uint8 - uint8 or int8 - int8 spans -255..255) and is padded with zeros, which is
padding x with its zero point as the definition does. The weights stay in their 8-bit type:
their zero point comes off as zw * (the sums of x' over each window), a one-channel
convolution with ones (grouped convolutions subtract it from int16 weights instead).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import UnsupportedError

_LAYOUTS = {3: ("conv1d", "NCW", "OIW"), 4: ("conv2d", "NCHW", "OIHW"),
            5: ("conv3d", "NCDHW", "OIDHW")}


def _centred(bb: Any, value: Any, zero: Any, channel_axis_of: int | None) -> Any:
    """int16(value) - int16(zero); a per-channel zero point ([M]) broadcast along axis 0
    of an `channel_axis_of`-D weight."""
    from tvm import relax

    wide = relax.op.astype(value, "int16")
    if zero is None:
        return bb.normalize(wide)
    zero = bb.normalize(relax.op.astype(zero, "int16"))
    if channel_axis_of is not None and len(zero.ty.shape) == 1:
        zero = relax.op.reshape(zero, [-1] + [1] * (channel_axis_of - 1))
    return bb.normalize(relax.op.subtract(wide, zero))


def convert_conv_integer(bb: Any, inputs: Sequence[Any], attrs: dict) -> Any:
    """Relax for one ConvInteger node: int32 [N, M, ...]."""
    from tvm import relax
    from tvm.relax.frontend.onnx.onnx_frontend import autopad

    node = attrs.get("tvm_custom", {}).get("name") or "ConvInteger"
    x, w = inputs[0], inputs[1]
    ndim = len(x.ty.shape)
    if ndim not in _LAYOUTS or x.ty.dtype not in ("int8", "uint8"):
        raise UnsupportedError(f"ConvInteger node '{node}': {ndim}-D {x.ty.dtype} input")
    x_zero = inputs[2] if len(inputs) > 2 else None
    w_zero = inputs[3] if len(inputs) > 3 else None
    if x_zero is not None and any(int(d) != 1 for d in x_zero.ty.shape.values):
        raise UnsupportedError(f"ConvInteger node '{node}': a per-row input zero point")
    data = _centred(bb, x, x_zero, None)
    spatial = ndim - 2
    kernel = attrs.get("kernel_shape") or [int(d) for d in w.ty.shape.values[2:]]
    strides = attrs.get("strides", [1] * spatial)
    dilations = attrs.get("dilations", [1] * spatial)
    pads = attrs.get("pads", [0] * 2 * spatial)
    groups = int(attrs.get("group", 1))
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        data = autopad(bb, data, strides, kernel, dilations, mode=auto_pad, deconv=False)
        pads = [0] * 2 * spatial
    elif auto_pad == "VALID":
        pads = [0] * 2 * spatial
    elif auto_pad != "NOTSET":
        raise UnsupportedError(f"ConvInteger node '{node}': auto_pad '{auto_pad}'")
    op_name, data_layout, kernel_layout = _LAYOUTS[ndim]

    def conv(weight: Any, conv_groups: int) -> Any:
        return bb.normalize(getattr(relax.op.nn, op_name)(
            data, weight, strides=strides, padding=pads, dilation=dilations,
            groups=conv_groups, data_layout=data_layout, kernel_layout=kernel_layout,
            out_dtype="int32"))

    if groups != 1:  # the weight's zero point subtracted: int16 weights
        return conv(_centred(bb, w, w_zero, ndim), groups)
    # the weights stay 8-bit: conv(x', w - zw) = conv(x', w) - zw * (the window sums of x'),
    # the sums a one-channel convolution with ones
    result = conv(w, 1)
    if w_zero is None:
        return result
    channels = int(w.ty.shape.values[1])
    ones = relax.const(np.ones([1, channels, *kernel], "int8"))
    zero = bb.normalize(relax.op.astype(w_zero, "int32"))
    zero = bb.normalize(relax.op.reshape(zero, [1, -1] + [1] * spatial))
    correction = bb.normalize(relax.op.multiply(conv(ones, 1), zero))
    return relax.op.subtract(result, correction)


def _zero_vector(bb: Any, zero: Any, allowed: tuple[int, ...]) -> Any:
    """A zero point as a 1-D int32 tensor of one value or one per column; None: not of an
    allowed size."""
    from tvm import relax

    if zero is None:
        return relax.const(np.zeros(1, "int32"))
    size = int(np.prod([int(d) for d in zero.ty.shape.values]))
    if size not in allowed:
        return None
    return bb.normalize(relax.op.reshape(relax.op.astype(zero, "int32"), [size]))


def convert_matmul_integer(bb: Any, inputs: Sequence[Any], attrs: dict) -> Any:
    """Relax for one MatMulInteger node: int32 [..., M, N] = sum_k (a - a_zero)(b - b_zero),
    one TE computation reading B in its own 8-bit type (a 2-D B with a zero point per tensor
    or per column, A's per tensor); other forms go to TVM's converter."""
    from tvm import relax, te
    from tvm.relax.frontend.onnx.onnx_frontend import MatMulInteger

    a, b = inputs[0], inputs[1]
    columns = int(b.ty.shape.values[-1]) if len(b.ty.shape) == 2 else 0
    a_zero = _zero_vector(bb, inputs[2] if len(inputs) > 2 else None, (1,))
    b_zero = _zero_vector(bb, inputs[3] if len(inputs) > 3 else None, (1, columns))
    if not columns or len(a.ty.shape) < 2 or a_zero is None or b_zero is None:
        return MatMulInteger._impl_v10(bb, list(inputs), attrs, None)

    def matmul(x: Any, w_t: Any, xz: Any, wz: Any) -> Any:
        k = te.reduce_axis((0, w_t.shape[1]), "k")
        per_column = int(wz.shape[0]) > 1

        def value(*index: Any) -> Any:
            *rows, j = index
            wz_j = wz[j] if per_column else wz[0]
            return te.sum((x[(*rows, k)].astype("int32") - xz[0])
                          * (w_t[j, k].astype("int32") - wz_j), axis=k)

        return te.compute([*x.shape[:-1], w_t.shape[0]], value, name="matmul_integer")

    # B transposed (folded at compile time for constant weights): the sum over k then reads
    # both operands contiguously, where B's columns are a row length apart
    b_t = bb.normalize(relax.op.permute_dims(b, [1, 0]))
    return bb.emit_te(matmul, a, b_t, a_zero, b_zero, primfunc_name_hint="matmul_integer")


def convert_dynamic_quantize_linear(bb: Any, inputs: Sequence[Any], attrs: dict) -> Any:
    """DynamicQuantizeLinear as TVM's converter builds it, except the scale of an input whose
    range (widened to hold 0) is empty, an all-zero one: 1, as onnxruntime (and the reference
    DynamicQuantizeLSTM's H(t-1)) gives it, where (max - min) / 255 = 0 made the zero point
    0 / 0 and every output NaN or garbage. y and the zero point are 0 then, as both onnxruntime
    and onnx's reference evaluator give (the latter's scale is 1/255)."""
    from tvm import relax

    x = inputs[0]
    dtype = x.ty.dtype
    zero, qmax = relax.const(0, dtype), relax.const(255, dtype)
    x_max = bb.normalize(relax.op.maximum(zero, relax.op.max(x)))
    x_min = bb.normalize(relax.op.minimum(zero, relax.op.min(x)))
    spread = bb.normalize(relax.op.divide(relax.op.subtract(x_max, x_min), qmax))
    # spread + (spread == 0): 1 for an empty range, and no new constant in the archive
    scale = bb.normalize(relax.op.add(spread, relax.op.astype(relax.op.equal(spread, zero),
                                                              dtype)))
    zp_float = relax.op.subtract(zero, relax.op.divide(x_min, scale))
    zero_point = bb.normalize(relax.op.astype(relax.op.round(relax.op.clip(zp_float, 0, 255)),
                                              "uint8"))
    y = bb.normalize(relax.op.quantize(x, scale, zero_point, axis=0, out_dtype="uint8"))
    return relax.Tuple([y, scale, zero_point])


CONVERTERS = {"ConvInteger": convert_conv_integer, "MatMulInteger": convert_matmul_integer,
              "DynamicQuantizeLinear": convert_dynamic_quantize_linear}
