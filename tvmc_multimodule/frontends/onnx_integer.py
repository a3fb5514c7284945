"""ONNX ConvInteger (dynamically quantised models: DynamicQuantizeLinear -> ConvInteger ->
Cast -> Mul by the scales), which TVM 0.27's Relax ONNX frontend lacks.

y = conv(x - x_zero_point, w - w_zero_point) in int32, the spec's definition. The differences
fit int16 (uint8 - uint8 or int8 - int8 spans -255..255), so the convolution reads int16
operands (half the memory of int32 copies) and accumulates in int32; padding with zeros after
the subtraction is padding x with its zero point, as the definition does.
"""
from __future__ import annotations

from typing import Any, Sequence

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
    weight = _centred(bb, w, w_zero, ndim)
    spatial = ndim - 2
    kernel = attrs.get("kernel_shape") or [int(d) for d in w.ty.shape.values[2:]]
    strides = attrs.get("strides", [1] * spatial)
    dilations = attrs.get("dilations", [1] * spatial)
    pads = attrs.get("pads", [0] * 2 * spatial)
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
    return getattr(relax.op.nn, op_name)(
        data, weight, strides=strides, padding=pads, dilation=dilations,
        groups=int(attrs.get("group", 1)), data_layout=data_layout,
        kernel_layout=kernel_layout, out_dtype="int32")


CONVERTERS = {"ConvInteger": convert_conv_integer}
