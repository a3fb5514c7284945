"""com.microsoft DynamicQuantizeLSTM (onnxruntime's dynamically quantised LSTM), built in.

From its definition (onnxruntime's ContribOperators): an ONNX LSTM whose weights W [D, I, 4H]
and R [D, H, 4H] (already transposed: gates along the last axis, order i, o, f, c) are int8
or uint8 with a scale and a zero point per direction or per direction and gate column. X is
quantised dynamically to uint8 once for the whole sequence (DynamicQuantizeLinear: the range
widened to hold 0, scale (max - min) / 255, zero point rounded), the hidden state again at
every step; each product accumulates (q - zero) * (w - w_zero) in int32 and is dequantised
with the two scales; the rest is the float LSTM (onnx_recurrent.py's gates, activations,
clip, peepholes). The weights stay 8-bit in the archive and in the kernel.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UnsupportedError
from .onnx_integer import convert_dynamic_quantize_linear
from .onnx_recurrent import (_activations, _check_sequence_lens, _clip, _directions, _shape,
                             lstm_cell_macro, start_state_macro, time_index)


def quantised_lstm_kernel(steps: int, batch: int, inputs: int, hidden: int, directions: int,
                          rev_base: int, rev_step: int, wtype: str,
                          acts: Sequence[Callable[[Any], Any]],
                          clip: Callable[[Any], Any]) -> Any:
    """(xq uint8, x scale [1], x zero [1], w, w zero [D, 4H], w scale [D, 4H], r, r zero,
    r scale, bias [D, 4H], h0, c0, p) -> (y, yh, yc); the state kept in yh / yc."""
    from tvm.script import tirx as T

    G = 4 * hidden  # noqa: N806 - TVMScript shapes read best in upper case

    time = time_index(steps, rev_base, rev_step)
    start = start_state_macro(hidden, cell=True)

    lstm_cell = lstm_cell_macro(hidden, acts, clip)

    @T.prim_func(private=True)
    def qlstm(xq: T.Buffer((steps, batch, inputs), "uint8"),
              xs: T.Buffer((1,), "float32"),
              xz: T.Buffer((1,), "int32"),
              w: T.Buffer((directions, inputs, G), wtype),
              wz: T.Buffer((directions, G), "int32"),
              ws: T.Buffer((directions, G), "float32"),
              r: T.Buffer((directions, hidden, G), wtype),
              rz: T.Buffer((directions, G), "int32"),
              rs: T.Buffer((directions, G), "float32"),
              bias: T.Buffer((directions, G), "float32"),
              h0: T.Buffer((directions, batch, hidden), "float32"),
              c0: T.Buffer((directions, batch, hidden), "float32"),
              p: T.Buffer((directions, 3 * hidden), "float32"),
              y: T.Buffer((steps, directions, batch, hidden), "float32"),
              yh: T.Buffer((directions, batch, hidden), "float32"),
              yc: T.Buffer((directions, batch, hidden), "float32")):
        gates = T.alloc_buffer((G,), "float32")
        acc = T.alloc_buffer((G,), "int32")
        hq = T.alloc_buffer((hidden,), "int32")
        # the hidden state's quantisation: [0] min, [1] max, [2] scale, [3] zero point
        hp = T.alloc_buffer((4,), "float32")
        for d in range(directions):
            for b in range(batch):
                start(yh, h0, yc, c0, d, b)
                for s in range(steps):
                    for g in range(G):
                        acc[g] = 0
                    for i in range(inputs):
                        for g in range(G):
                            acc[g] = acc[g] + (T.Cast("int32", xq[time(s, d), b, i]) - xz[0]) * (
                                T.Cast("int32", w[d, i, g]) - wz[d, g])
                    for g in range(G):
                        gates[g] = T.Cast("float32", acc[g]) * (xs[0] * ws[d, g]) + bias[d, g]
                    # H(t-1) quantised to uint8 as DynamicQuantizeLinear does (range with 0)
                    hp[0] = T.float32(0)
                    hp[1] = T.float32(0)
                    for j in range(hidden):
                        hp[0] = T.min(hp[0], yh[d, b, j])
                        hp[1] = T.max(hp[1], yh[d, b, j])
                    hp[2] = T.if_then_else(hp[1] > hp[0], (hp[1] - hp[0]) / T.float32(255),
                                           T.float32(1))
                    hp[3] = T.nearbyint(T.min(T.max(T.float32(0) - hp[0] / hp[2], T.float32(0)),
                                          T.float32(255)))
                    for k in range(hidden):
                        hq[k] = T.Cast("int32", T.min(T.max(
                            T.nearbyint(yh[d, b, k] / hp[2]) + hp[3], T.float32(0)),
                            T.float32(255))) - T.Cast("int32", hp[3])
                    for g in range(G):
                        acc[g] = 0
                    for k in range(hidden):
                        for g in range(G):
                            acc[g] = acc[g] + hq[k] * (T.Cast("int32", r[d, k, g]) - rz[d, g])
                    for g in range(G):
                        gates[g] = gates[g] + T.Cast("float32", acc[g]) * (hp[2] * rs[d, g])
                    lstm_cell(gates, p, yc, yh, y, time(s, d), d, b)  # as the float LSTM

    return qlstm


def _per_column(bb: Any, value: Any, directions: int, columns: int, dtype: str,
                what: str, node: str) -> Any:
    """A scale or zero point given per direction [D] or per direction and column [D, 4H],
    as [D, 4H] of `dtype`."""
    from tvm import relax

    shape = _shape(value)
    if shape not in ([directions], [directions, columns]):
        raise UnsupportedError(f"DynamicQuantizeLSTM node '{node}': {what} has the shape "
                               f"{shape}, not [{directions}] or [{directions}, {columns}]")
    value = relax.op.astype(value, dtype)
    if len(shape) == 1:
        value = relax.op.broadcast_to(relax.op.reshape(value, [directions, 1]),
                                      [directions, columns])
    return bb.emit(value)


def convert_dynamic_quantize_lstm(bb: Any, inputs: Sequence[Any], attrs: dict) -> Any:
    """Relax for one DynamicQuantizeLSTM node: a Tuple (Y, Y_h, Y_c)."""
    from tvm import relax

    node = attrs.get("tvm_custom", {}).get("name") or "DynamicQuantizeLSTM"
    inputs = list(inputs) + [None] * (12 - len(inputs))
    x, w, r = inputs[0], inputs[1], inputs[2]
    if x.ty.dtype != "float32" or w.ty.dtype not in ("int8", "uint8") or r.ty.dtype != w.ty.dtype:
        raise UnsupportedError(f"DynamicQuantizeLSTM node '{node}': X {x.ty.dtype}, W "
                               f"{w.ty.dtype}, R {r.ty.dtype} (float32 X, int8 or uint8 W and R)")
    if int(attrs.get("input_forget", 0)):
        raise UnsupportedError(f"DynamicQuantizeLSTM node '{node}': input_forget=1 is not "
                               "supported")
    steps, batch, size = _shape(x)
    directions, rev_base, rev_step = _directions(attrs, node)
    hidden = int(attrs.get("hidden_size", 0)) or _shape(r)[1]
    columns = 4 * hidden
    if _shape(w) != [directions, size, columns] or _shape(r) != [directions, hidden, columns]:
        raise UnsupportedError(f"DynamicQuantizeLSTM node '{node}': W {_shape(w)} and R "
                               f"{_shape(r)} do not fit X {_shape(x)} and hidden_size {hidden}")
    _check_sequence_lens(inputs[4], steps, node)
    acts = _activations(attrs, ("Sigmoid", "Tanh", "Tanh"), directions, node)

    def optional(index: int, shape: list[int]) -> Any:
        value = inputs[index]
        return relax.const(np.zeros(shape, np.float32)) if value is None else value

    bias = optional(3, [directions, 2 * columns])
    bias = bb.emit(relax.op.add(
        relax.op.strided_slice(bias, axes=[1], begin=[0], end=[columns]),
        relax.op.strided_slice(bias, axes=[1], begin=[columns], end=[2 * columns])))
    # X quantised once for the whole sequence, as the model's DynamicQuantizeLinear nodes
    xq, x_scale, x_zero = convert_dynamic_quantize_linear(bb, [x], {}).fields
    scale = [_per_column(bb, inputs[i], directions, columns, "float32", name, node)
             for i, name in ((8, "W_scale"), (10, "R_scale"))]
    zero = [_per_column(bb, inputs[i], directions, columns, "int32", name, node)
            for i, name in ((9, "W_zero_point"), (11, "R_zero_point"))]
    state = [directions, batch, hidden]
    args = [bb.emit(xq), bb.emit(relax.op.reshape(x_scale, [1])),
            bb.emit(relax.op.reshape(relax.op.astype(x_zero, "int32"), [1])),
            w, zero[0], scale[0], r, zero[1], scale[1], bias,
            optional(5, state), optional(6, state), optional(7, [directions, 3 * hidden])]
    kernel = quantised_lstm_kernel(steps, batch, size, hidden, directions, rev_base, rev_step,
                                   w.ty.dtype, acts, _clip(attrs))
    gvar = bb.add_func(kernel.with_attr("op_pattern", 8), "dynamic_quantize_lstm")  # opaque
    out = [relax.TensorType([steps, directions, batch, hidden], "float32")]
    out += [relax.TensorType(state, "float32")] * 2
    result = bb.emit(relax.call_tir(gvar, args, out))
    return relax.Tuple([bb.emit(relax.TupleGetItem(result, i)) for i in range(3)])
