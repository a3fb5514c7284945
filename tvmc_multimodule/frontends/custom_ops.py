"""Custom operators (TFLite CUSTOM): the user's C implementation, or a built-in form.

A user's operator becomes one opaque TIR function whose body calls
`tvmgen_<module>_custom_<NAME>(in0, ..., out0, ...)` with typed pointers (the buffers' C types,
inputs then outputs, in the model's order); the output shapes and types are the ones the model
declares, or those the declaration (`CustomOp.outputs`: a list of (shape, dtype), or a callable
taking the inputs' (shape, dtype) list) gives. The C file travels in the archive beside the
module's own sources. Built-in operators (MediaPipe's Convolution2DTransposeBias) are TIR
functions TVM schedules and compiles like any other operator.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..model import CustomOp
from ..names import CText, c_text, check_distinct_identifiers

Spec = tuple[tuple[int, ...], str]


@dataclass(frozen=True)
class CustomCall:
    """One user operator the module calls (recorded once per operator name)."""

    name: str                      # the model's custom code
    symbol: str                    # tvmgen_<module>_custom_<NAME>
    inputs: tuple[Spec, ...]
    outputs: tuple[Spec, ...]


def counted(counts: Counter[str]) -> str:
    """'Add (x2), Mul': names sorted, with their count where above one."""
    return ", ".join(f"{name} (x{n})" if n > 1 else name for name, n in sorted(counts.items()))


def unimplemented_custom_ops(custom: Counter[str]) -> str:
    """The check-time problem for custom operators given no C implementation."""
    first = sorted(custom)[0]
    return ("custom operators: " + counted(custom) + " (give each its C implementation: "
            f"--custom-op {first}=impl.c)")


def symbol(module: str, name: str) -> str:
    """The user's C function: NAME made an identifier, verbatim otherwise (no suffix), so two
    NAMEs with one identifier are refused (`check_symbols`) rather than renamed."""
    return f"tvmgen_{module}_custom_{c_text(name, CText.IDENTIFIER)}"


def check_symbols(names: Iterable[str]) -> None:
    """The given operator names map to distinct C functions (`com.a.b` and `com.a_b` would
    both be `..._custom_com_a_b`): a UsageError otherwise."""
    check_distinct_identifiers(names, "custom operator", "tvmgen_<module>_custom_{}")


def output_specs(op: CustomOp, inputs: Sequence[Spec], declared: Sequence[Spec]) -> list[Spec]:
    """The outputs' (shape, dtype): the declaration's, else the model's."""
    given: Any = op.outputs
    if given is None:
        specs = list(declared)
    else:
        try:
            specs = list(given(list(inputs)) if callable(given) else given)
            specs = [(tuple(int(d) for d in shape), str(np.dtype(dtype))) for shape, dtype in specs]
        except Exception as exc:  # a user's callable or spec: any mistake is theirs
            raise UnsupportedError(f"custom operator {op.name}: its output declaration failed "
                                   f"({type(exc).__name__}: {exc})",
                                   hint="declare a list of (shape, dtype), one per output")
    if len(specs) != len(declared):
        raise UnsupportedError(f"custom operator {op.name} declares {len(specs)} outputs, the "
                               f"model gives it {len(declared)}")
    for shape, dtype in specs:
        if any(d <= 0 for d in shape) or np.dtype(dtype).kind not in "biuf":
            raise UnsupportedError(f"custom operator {op.name}: output {dtype}{list(shape)} "
                                   "is not a static tensor of numbers")
    return specs


def extern_function(name: str, inputs: Sequence[Spec], outputs: Sequence[Spec]) -> Any:
    """A PrimFunc (inputs..., outputs...) whose body is one call of the C function `name`."""
    from tvm import te, tirx

    ins = [te.placeholder(shape, dtype, name=f"in{i}") for i, (shape, dtype) in enumerate(inputs)]
    outs = te.extern([list(shape) for shape, _ in outputs], ins,
                     lambda i, o: tirx.call_extern("int32", name, *[b.data for b in i],
                                                   *[b.data for b in o]),
                     dtype=[dtype for _, dtype in outputs], name="custom")
    outs = outs if isinstance(outs, list) else [outs]
    return te.create_prim_func([*ins, *outs])


# ---------------------------------------------------------------- built-in operators

TFLITE_PADDING_SAME, TFLITE_PADDING_VALID = 1, 2  # TfLitePadding (not the schema's Padding)


def add_call(calls: dict, module: str, name: str, in_specs: Sequence[Spec],
             out_specs: Sequence[Spec], add_func: Any) -> tuple[Any, list]:
    """Record the call of the user's `name` in `calls` (one C signature per operator) and add
    the function calling it through `add_func(func, name)`: (its GlobalVar, output types)."""
    from tvm import relax

    sym = symbol(module, name)
    call = calls.setdefault(name, CustomCall(name, sym, tuple(in_specs), tuple(out_specs)))
    if [d for _, d in call.inputs + call.outputs] != [d for _, d in [*in_specs, *out_specs]]:
        raise UnsupportedError(f"custom operator {name} is called with different types")
    gvar = add_func(extern_function(sym, in_specs, out_specs),
                    f"call_custom_{c_text(name, CText.IDENTIFIER)}")
    return gvar, [relax.TensorType(list(shape), dtype) for shape, dtype in out_specs]


def transpose_conv_params(options: bytes) -> tuple[int, int, int]:
    """(padding, stride_w, stride_h) of MediaPipe's custom options: TfLiteTransposeConvParams
    as raw bytes (three int32 first)."""
    if len(options) < 12:
        raise ModelError(f"Convolution2DTransposeBias options are {len(options)} bytes, "
                         "not the 12 of TfLiteTransposeConvParams")
    padding, stride_w, stride_h = struct.unpack_from("<iii", options)
    if padding not in (TFLITE_PADDING_SAME, TFLITE_PADDING_VALID) or stride_w < 1 or stride_h < 1:
        raise ModelError(f"Convolution2DTransposeBias options: padding {padding}, strides "
                         f"{stride_w}x{stride_h}")
    return padding, stride_w, stride_h


def _padding(out: int, stride: int, kernel: int, padding: int) -> int:
    """TFLite's ComputePaddingHeightWidth with the transposed convolution's output as input."""
    computed = (out + stride - 1) // stride if padding == TFLITE_PADDING_SAME \
        else (out - kernel + stride) // stride
    return max(((computed - 1) * stride + kernel - out) // 2, 0)


def transpose_conv_function(in_shape: Sequence[int], w_shape: Sequence[int],
                            out_shape: Sequence[int], strides: tuple[int, int],
                            pads: tuple[int, int]) -> Any:
    """(x NHWC, w OHWI, bias) -> y: each output pixel gathers the input pixels whose kernel
    reaches it (y[oy] += x[iy] w[k] for oy = iy * stride - pad + k), then adds the bias. No
    dilated or padded copy of the input exists: the memory is the input and the output."""
    import tvm
    from tvm import te, tirx

    _, h, w, cin = (int(d) for d in in_shape)
    cout, kh, kw, _ = (int(d) for d in w_shape)
    (sh, sw), (pt, pl) = strides, pads
    x = te.placeholder(tuple(int(d) for d in in_shape), "float32", name="x")
    k = te.placeholder(tuple(int(d) for d in w_shape), "float32", name="w")
    b = te.placeholder((cout,), "float32", name="bias")
    ry, rx = te.reduce_axis((0, kh), "ry"), te.reduce_axis((0, kw), "rx")
    rc = te.reduce_axis((0, cin), "rc")

    def gather(n: Any, oy: Any, ox: Any, co: Any) -> Any:
        ty, tx = oy + pt - ry, ox + pl - rx
        iy, ix = tirx.indexdiv(ty, sh), tirx.indexdiv(tx, sw)
        reaches = tvm.tirx.all(ty >= 0, tx >= 0, tirx.indexmod(ty, sh) == 0,
                               tirx.indexmod(tx, sw) == 0, iy < h, ix < w)
        value = x[n, tirx.min(iy, h - 1), tirx.min(ix, w - 1), rc] * k[co, ry, rx, rc]
        return te.sum(tirx.if_then_else(reaches, value, tirx.const(0.0, "float32")),
                      axis=[ry, rx, rc])

    shape = tuple(int(d) for d in out_shape)
    acc = te.compute(shape, gather, name="acc")
    y = te.compute(shape, lambda n, oy, ox, co: acc[n, oy, ox, co] + b[co], name="y")
    return te.create_prim_func([x, k, b, y])


def convolution2d_transpose_bias(in_shape: Sequence[int], w_shape: Sequence[int],
                                 out_shape: Sequence[int], options: bytes) -> Any:
    """MediaPipe's Convolution2DTransposeBias (NHWC input, OHWI weights, bias [O]; padding
    and strides in its custom options) as one TIR function; output as the model declares."""
    padding, stride_w, stride_h = transpose_conv_params(options)
    kh, kw = int(w_shape[1]), int(w_shape[2])
    _, oh, ow, _ = out_shape
    if len(in_shape) != 4 or len(w_shape) != 4 or len(out_shape) != 4 \
            or w_shape[3] != in_shape[3] or out_shape[3] != w_shape[0]:
        raise UnsupportedError("Convolution2DTransposeBias with shapes "
                               f"{list(in_shape)}, {list(w_shape)} -> {list(out_shape)}")
    pads = (_padding(oh, stride_h, kh, padding), _padding(ow, stride_w, kw, padding))
    return transpose_conv_function(in_shape, w_shape, out_shape, (stride_h, stride_w), pads)


BUILTIN = frozenset({"Convolution2DTransposeBias"})
"""Custom operators compiled without a user implementation."""
