"""TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (float) on the same TIR kernel as ONNX LSTM.

TVM 0.27's converter handles only the coupled input-forget form (no input gate, CIFG), unrolls
the time steps into separate operators and never updates the state; the usual Keras/TF export
has an input gate. Here the four gates' weights (three in the CIFG form, whose input gate is
1 - the forget gate) are stacked in the kernel's i, o, f, c order, transposed, and one call
runs the whole sequence. The state tensors (TFLite variable tensors) are module state
(`tflite_float_state`): the kernel starts from their value and leaves its final h and c in
them, so a streaming LSTM continues across invokes as in LiteRT and TFLite Micro.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from .onnx_recurrent import lstm_kernel, sigmoid, tanh

log = logging.getLogger(__name__)

# TFLite input index of each gate's input weights, recurrent weights, bias; kernel order i o f c
_GATES = {"i": (1, 5, 12), "o": (4, 8, 15), "f": (2, 6, 13), "c": (3, 7, 14)}
_PEEPHOLES = (9, 11, 10)  # cell_to_input, cell_to_output, cell_to_forget: kernel order i o f
_UNSUPPORTED_INPUTS = {16: "projection", 17: "projection", 20: "layer normalisation",
                       21: "layer normalisation", 22: "layer normalisation",
                       23: "layer normalisation"}
TANH = 4  # tflite.ActivationFunctionType.TANH


def has_input_gate(tensors: list[Any]) -> bool:
    return tensors[1].tensor_idx != -1


def _state_key(conv: Any, tensor: Any) -> str | None:
    from .tflite_float_state import tensor_key

    key = tensor_key(tensor.tensor_idx)
    state = getattr(conv, "state", None)
    return key if state is not None and state.has(key) else None


def _initial_state(conv: Any, tensor: Any, shape: list[int]) -> Any:
    """A state tensor's value at this step: the module state it is, else its buffer's data,
    or zeros (a variable without data, as TF exports it)."""
    from tvm import relax

    key = _state_key(conv, tensor)
    if key is not None:
        return conv.bb.emit(conv.state.read(key, shape))
    buffer = conv.model.Buffers(tensor.tensor.Buffer())
    if buffer is not None and buffer.DataLength():
        return conv.bb.emit(relax.op.reshape(conv.get_tensor_expr(tensor), shape))
    return relax.const(np.zeros(shape, np.float32))


def _peepholes(conv: Any, tensors: list[Any], hidden: int) -> Any:
    """[1, 3H]: the peephole weights in the kernel's order i, o, f, zeros where absent (all
    of them, or the input gate's in the CIFG form)."""
    from tvm import relax

    if all(tensors[i].tensor_idx == -1 for i in _PEEPHOLES):
        return relax.const(np.zeros((1, 3 * hidden), np.float32))
    zeros = relax.const(np.zeros((hidden,), np.float32))
    parts = [zeros if tensors[i].tensor_idx == -1 else conv.get_tensor_expr(tensors[i])
             for i in _PEEPHOLES]
    return conv.bb.emit(relax.op.expand_dims(relax.op.concat(parts, axis=0), [0]))


def convert_sequence_lstm(conv: Any, op: Any, name: str) -> Any:
    """Relax for one float UNIDIRECTIONAL_SEQUENCE_LSTM, with an input gate or without (CIFG)
    (`conv`: TVM's TFLite OperatorConverter, `name`: the output tensor's name, for
    messages)."""
    from tflite.UnidirectionalSequenceLSTMOptions import UnidirectionalSequenceLSTMOptions
    from tvm import relax

    tensors = conv.get_input_tensors(op)
    node = f"UNIDIRECTIONAL_SEQUENCE_LSTM '{name}'"
    present = sorted({why for i, why in _UNSUPPORTED_INPUTS.items()
                      if len(tensors) > i and tensors[i].tensor_idx != -1})
    options = UnidirectionalSequenceLSTMOptions()
    raw = op.BuiltinOptions()
    options.Init(raw.Bytes, raw.Pos)
    if present:
        raise UnsupportedError(f"{node}: {' and '.join(present)} are not supported")
    cell_clip = None
    if options.CellClip() > 0:  # proj_clip only acts on a projection, which is refused above
        from tvm.script import tirx as T

        bound = float(options.CellClip())
        cell_clip = lambda v: T.min(T.max(v, T.float32(-bound)), T.float32(bound))  # noqa: E731
    if options.FusedActivationFunction() != TANH:
        raise UnsupportedError(f"{node}: only the TANH cell activation is supported")
    op_ = relax.op
    bb = conv.bb
    x = conv.get_tensor_expr(tensors[0])
    shape = [int(d) for d in conv.get_tensor_shape(tensors[0])]
    time_major = bool(options.TimeMajor())
    if not time_major:  # [B, T, I] -> [T, B, I]
        x = bb.emit(op_.permute_dims(x, [1, 0, 2]))
        shape = [shape[1], shape[0], shape[2]]
    steps, batch, inputs = shape
    hidden = int(conv.get_tensor_shape(tensors[2])[0])

    coupled = not has_input_gate(tensors)  # CIFG: the input gate is 1 - the forget gate
    gates = "ofc" if coupled else "iofc"

    def stacked(column: int) -> Any:
        parts = [conv.get_tensor_expr(tensors[_GATES[g][column]]) for g in gates]
        return bb.emit(op_.concat(parts, axis=0))

    w = bb.emit(op_.expand_dims(op_.permute_dims(stacked(0), [1, 0]), [0]))  # [1, I, 4H|3H]
    r = bb.emit(op_.expand_dims(op_.permute_dims(stacked(1), [1, 0]), [0]))  # [1, H, 4H|3H]
    bias = bb.emit(op_.expand_dims(stacked(2), [0]))                          # [1, 4H|3H]
    peep = _peepholes(conv, tensors, hidden)
    h0, c0 = (_initial_state(conv, tensors[i], [1, batch, hidden]) for i in (18, 19))
    kernel = lstm_kernel(steps, batch, inputs, hidden, 1, 0, 0, (sigmoid, tanh, tanh),
                         lambda v: v, cell_clip, coupled)
    gvar = conv.add_function(kernel.with_attr("op_pattern", 8), "lstm")
    outs = [relax.TensorType([steps, 1, batch, hidden], "float32")] + [
        relax.TensorType([1, batch, hidden], "float32")] * 2
    result = bb.emit(relax.call_tir(gvar, [x, w, r, bias, h0, c0, peep], outs))
    y = bb.emit(op_.reshape(bb.emit(relax.TupleGetItem(result, 0)), [steps, batch, hidden]))
    if not time_major:
        y = bb.emit(op_.permute_dims(y, [1, 0, 2]))
    carried = 0
    for index, position in ((18, 1), (19, 2)):  # output state <- final h, cell <- final c
        key = _state_key(conv, tensors[index])
        if key is not None:
            conv.state.write(key, bb.emit(relax.TupleGetItem(result, position)))
            carried += 1
    if carried < 2:
        log.warning("%s: its state starts from its initial value at every run (LiteRT and "
                    "TFLite Micro carry it across invokes)", node)
    return y


def convert_svdf(conv: Any, op: Any, name: str) -> Any:
    """Relax for one float SVDF, as TFLite's reference kernel computes it: the state
    [B, F * M] (F = units * rank filters, M memory steps, a variable tensor: module state)
    shifted one step left, the newest step x . W_feature per filter; the output
    sum over the rank of (state . W_time per filter), plus the bias [units], activated."""
    from tflite.SVDFOptions import SVDFOptions
    from tvm import relax

    node = f"SVDF '{name}'"
    tensors = conv.get_input_tensors(op)
    options = SVDFOptions()
    raw = op.BuiltinOptions()
    options.Init(raw.Bytes, raw.Pos)
    rank = int(options.Rank())
    batch, _ = (int(d) for d in conv.get_tensor_shape(tensors[0]))
    filters, memory = (int(d) for d in conv.get_tensor_shape(tensors[2]))
    if rank < 1 or filters % rank:
        raise UnsupportedError(f"{node}: {filters} filters are not a multiple of rank {rank}")
    units = filters // rank
    key = _state_key(conv, tensors[4])
    if key is None:
        raise UnsupportedError(f"{node}: its state input is not a variable tensor")
    op_ = relax.op
    bb = conv.bb
    x = conv.get_tensor_expr(tensors[0])
    newest = bb.emit(op_.matmul(x, op_.permute_dims(conv.get_tensor_expr(tensors[1]))))
    newest = op_.reshape(newest, [batch, filters, 1])
    old = conv.state.read(key, [batch, filters, memory])
    state = newest if memory == 1 else op_.concat(
        [op_.strided_slice(old, axes=[2], begin=[1], end=[memory]), newest], axis=2)
    state = bb.emit(state)
    time_weights = op_.reshape(conv.get_tensor_expr(tensors[2]), [1, filters, memory])
    per_filter = op_.sum(op_.multiply(state, time_weights), axis=[2])      # [B, F]
    out = op_.sum(op_.reshape(per_filter, [batch, units, rank]), axis=[2])  # [B, U]
    if tensors[3].tensor_idx != -1:
        out = op_.add(out, conv.get_tensor_expr(tensors[3]))
    out = conv.convert_fused_activation_function(bb.emit(out), options.FusedActivationFunction())
    conv.state.write(key, op_.reshape(state, [batch, filters * memory]))
    return out
