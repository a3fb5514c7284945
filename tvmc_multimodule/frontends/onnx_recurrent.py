"""ONNX LSTM, GRU and RNN -> one Relax call_tir each, to a TIR kernel that loops over time.

TVM 0.27's Relax ONNX frontend has no recurrent operators. Each LSTM/GRU node becomes one
opaque PrimFunc (per distinct shape and attributes) with the loop over time inside it: the code
size does not grow with the sequence length (unrolling each step into separate fused operators
would, by several functions per step), and the state lives in the Y_h / Y_c output buffers, so
the only scratch is one step's gate pre-activations. Weights are transposed at compile time to
[D, I, gates*H], so the inner loop updates all gates of one input element: contiguous, and
vectorisable without reassociating float sums.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UnsupportedError
from .onnx_attributes import attribute_text

RECURRENT_OPS = ("LSTM", "GRU", "RNN")


def sigmoid(v: Any) -> Any:
    from tvm.script import tirx as T

    return T.float32(1) / (T.float32(1) + T.exp(-v))


def tanh(v: Any) -> Any:
    """tanh(v) = 2 sigmoid(2v) - 1: one expf, where libm's tanhf costs expm1f and more (a third
    of an LSTM's time); the absolute error stays at float32 rounding, and exp overflowing to
    inf still gives -1."""
    from tvm.script import tirx as T

    return T.float32(2) / (T.float32(1) + T.exp(T.float32(-2) * v)) - T.float32(1)


def _activation(name: str, node: str) -> Callable[[Any], Any]:
    from tvm.script import tirx as T

    table = {
        "sigmoid": sigmoid,
        "tanh": tanh,
        "relu": lambda v: T.max(v, T.float32(0)),
    }
    key = name.lower()
    if key not in table:
        raise UnsupportedError(f"recurrent node '{node}': activation '{name}' is not supported "
                               f"(supported: Sigmoid, Tanh, Relu)")
    return table[key]


def _directions(attrs: dict, node: str) -> tuple[int, int, int]:
    """(number of directions, reverse flag of direction 0, reverse step per direction)."""
    direction = attribute_text(attrs.get("direction", "forward"))
    if direction == "forward":
        return 1, 0, 0
    if direction == "reverse":
        return 1, 1, 0
    if direction == "bidirectional":
        return 2, 0, 1
    raise UnsupportedError(f"recurrent node '{node}': unknown direction '{direction}'")


def _activations(attrs: dict, defaults: Sequence[str], directions: int,
                 node: str) -> list[Callable[[Any], Any]]:
    names = [attribute_text(a) for a in attrs.get("activations", ())] or list(defaults) * directions
    if attrs.get("activation_alpha") or attrs.get("activation_beta"):
        raise UnsupportedError(f"recurrent node '{node}': activation_alpha/activation_beta "
                               "are not supported")
    per = len(defaults)
    if len(names) != per * directions:
        raise UnsupportedError(f"recurrent node '{node}': {len(names)} activations given, "
                               f"{per * directions} expected")
    if directions == 2 and [n.lower() for n in names[:per]] != [n.lower() for n in names[per:]]:
        raise UnsupportedError(f"recurrent node '{node}': different activations per direction "
                               "are not supported")
    return [_activation(n, node) for n in names[:per]]


def _clip(attrs: dict) -> Callable[[Any], Any]:
    from tvm.script import tirx as T

    if "clip" not in attrs:
        return lambda v: v
    bound = float(attrs["clip"])
    return lambda v: T.min(T.max(v, T.float32(-bound)), T.float32(bound))


def lstm_kernel(steps: int, batch: int, inputs: int, hidden: int, directions: int,
                rev_base: int, rev_step: int, acts: Sequence[Callable[[Any], Any]],
                clip: Callable[[Any], Any],
                cell_clip: Callable[[Any], Any] | None = None, coupled: bool = False) -> Any:
    """ONNX LSTM (gates i, o, f, c; peepholes i, o, f), the state kept in yh / yc.
    `cell_clip` bounds the new cell state (TFLite's cell_clip; ONNX has none). `coupled`:
    no input gate (TFLite's CIFG): weights and bias of the gates o, f, c only ([.., 3H]), the
    input gate is 1 - f (peephole i unused)."""
    from tvm.script import tirx as T

    G = (3 if coupled else 4) * hidden  # noqa: N806 - TVMScript shapes read best in upper case

    time = time_index(steps, rev_base, rev_step)

    add_rows = _add_rows_macro()
    start = start_state_macro(hidden, cell=True)
    lstm_cell = lstm_cell_macro(hidden, acts, clip, cell_clip, coupled)

    @T.prim_func(private=True)
    def lstm(x: T.Buffer((steps, batch, inputs), "float32"),
             w: T.Buffer((directions, inputs, G), "float32"),
             r: T.Buffer((directions, hidden, G), "float32"),
             bias: T.Buffer((directions, G), "float32"),
             h0: T.Buffer((directions, batch, hidden), "float32"),
             c0: T.Buffer((directions, batch, hidden), "float32"),
             p: T.Buffer((directions, 3 * hidden), "float32"),
             y: T.Buffer((steps, directions, batch, hidden), "float32"),
             yh: T.Buffer((directions, batch, hidden), "float32"),
             yc: T.Buffer((directions, batch, hidden), "float32")):
        gates = T.alloc_buffer((G,), "float32")
        for d in range(directions):
            for b in range(batch):
                start(yh, h0, yc, c0, d, b)
                for s in range(steps):
                    for g in range(G):
                        gates[g] = bias[d, g]
                    add_rows(gates, x, time(s, d), b, w, d, inputs, G)
                    add_rows(gates, yh, d, b, r, d, hidden, G)
                    lstm_cell(gates, p, yc, yh, y, time(s, d), d, b)

    return lstm


def gru_kernel(steps: int, batch: int, inputs: int, hidden: int, directions: int,
               rev_base: int, rev_step: int, acts: Sequence[Callable[[Any], Any]],
               clip: Callable[[Any], Any], linear_before_reset: bool) -> Any:
    """ONNX GRU (gates z, r, h), the state kept in yh; `linear_before_reset` applies the
    reset gate after the recurrent product (PyTorch's form) instead of before it."""
    from tvm.script import tirx as T

    f_, g_ = acts
    G = 3 * hidden  # noqa: N806
    H2 = 2 * hidden  # noqa: N806

    time = time_index(steps, rev_base, rev_step)
    start = start_state_macro(hidden)
    add_rows = _add_rows_macro()

    @T.prim_func(private=True)
    def gru(x: T.Buffer((steps, batch, inputs), "float32"),
            w: T.Buffer((directions, inputs, G), "float32"),
            r: T.Buffer((directions, hidden, G), "float32"),
            wb: T.Buffer((directions, G), "float32"),
            rb: T.Buffer((directions, G), "float32"),
            h0: T.Buffer((directions, batch, hidden), "float32"),
            y: T.Buffer((steps, directions, batch, hidden), "float32"),
            yh: T.Buffer((directions, batch, hidden), "float32")):
        gates = T.alloc_buffer((G,), "float32")
        new_h = T.alloc_buffer((hidden,), "float32")
        for d in range(directions):
            for b in range(batch):
                start(yh, h0, d, b)
                for s in range(steps):
                    for g in range(G):
                        gates[g] = wb[d, g]
                    add_rows(gates, x, time(s, d), b, w, d, inputs, G)
                    add_rows(gates, yh, d, b, r, d, hidden, H2)  # z and r; h's row below
                    for g in range(H2):
                        gates[g] = f_(clip(gates[g] + rb[d, g]))
                    for j in range(hidden):
                        new_h[j] = rb[d, H2 + j]
                    # the reset gate after the recurrent product (PyTorch) or before it;
                    # a Python bool: the parser keeps one branch
                    if linear_before_reset:
                        for k in range(hidden):
                            for j in range(hidden):
                                new_h[j] = new_h[j] + yh[d, b, k] * r[d, k, H2 + j]
                        for j in range(hidden):
                            new_h[j] = g_(clip(gates[H2 + j] + gates[hidden + j] * new_h[j]))
                    else:
                        for k in range(hidden):
                            for j in range(hidden):
                                new_h[j] = new_h[j] + gates[hidden + k] * yh[d, b, k] * r[d, k, H2 + j]
                        for j in range(hidden):
                            new_h[j] = g_(clip(gates[H2 + j] + new_h[j]))
                    for j in range(hidden):
                        yh[d, b, j] = (T.float32(1) - gates[j]) * new_h[j] + gates[j] * yh[d, b, j]
                        y[time(s, d), d, b, j] = yh[d, b, j]

    return gru


def rnn_kernel(steps: int, batch: int, inputs: int, hidden: int, directions: int,
               rev_base: int, rev_step: int, act: Callable[[Any], Any],
               clip: Callable[[Any], Any]) -> Any:
    """ONNX RNN: H = f(X W^T + H R^T + Wb + Rb), the state kept in yh."""
    from tvm.script import tirx as T

    time = time_index(steps, rev_base, rev_step)
    start = start_state_macro(hidden)

    @T.prim_func(private=True)
    def rnn(x: T.Buffer((steps, batch, inputs), "float32"),
            w: T.Buffer((directions, inputs, hidden), "float32"),
            r: T.Buffer((directions, hidden, hidden), "float32"),
            bias: T.Buffer((directions, hidden), "float32"),
            h0: T.Buffer((directions, batch, hidden), "float32"),
            y: T.Buffer((steps, directions, batch, hidden), "float32"),
            yh: T.Buffer((directions, batch, hidden), "float32")):
        acc = T.alloc_buffer((hidden,), "float32")
        for d in range(directions):
            for b in range(batch):
                start(yh, h0, d, b)
                for s in range(steps):
                    for g in range(hidden):
                        acc[g] = bias[d, g]
                    for i in range(inputs):
                        for g in range(hidden):
                            acc[g] = acc[g] + x[time(s, d), b, i] * w[d, i, g]
                    for k in range(hidden):
                        for g in range(hidden):
                            acc[g] = acc[g] + yh[d, b, k] * r[d, k, g]
                    for j in range(hidden):
                        yh[d, b, j] = act(clip(acc[j]))
                        y[time(s, d), d, b, j] = yh[d, b, j]

    return rnn


def lstm_cell_macro(hidden: int, acts: Sequence[Callable[[Any], Any]],
                    clip: Callable[[Any], Any],
                    cell_clip: Callable[[Any], Any] | None = None,
                    coupled: bool = False) -> Any:
    """T.macro ``lstm_cell(gates, p, yc, yh, y, t, d, b)``: one step of the LSTM cell from
    its summed gates (i, o, f, c; peepholes p), the new cell and hidden state into yc / yh
    and y[t]; shared by the float and the quantised LSTM kernels. `cell_clip` bounds the new
    cell state (TFLite's cell_clip; ONNX has none). `coupled`: gates o, f, c only, the input
    gate 1 - f (TFLite's CIFG, as its kernel computes it)."""
    from tvm.script import tirx as T

    f_, g_, h_ = acts
    bound_cell = cell_clip or (lambda v: v)
    if coupled:
        return _coupled_lstm_cell_macro(hidden, acts, clip, bound_cell)

    @T.macro
    def lstm_cell(gates: Any, p: Any, yc: Any, yh: Any, y: Any, t: Any, d: Any,
                  b: Any) -> None:
        for j in range(hidden):
            # forget gate into gates[2H + j], input gate * candidate into gates[j]
            gates[2 * hidden + j] = f_(clip(gates[2 * hidden + j]
                                            + p[d, 2 * hidden + j] * yc[d, b, j]))
            gates[j] = f_(clip(gates[j] + p[d, j] * yc[d, b, j])) * g_(
                clip(gates[3 * hidden + j]))
            yc[d, b, j] = bound_cell(gates[2 * hidden + j] * yc[d, b, j] + gates[j])
            yh[d, b, j] = f_(clip(gates[hidden + j] + p[d, hidden + j] * yc[d, b, j])
                             ) * h_(yc[d, b, j])
            y[t, d, b, j] = yh[d, b, j]

    return lstm_cell


def _coupled_lstm_cell_macro(hidden: int, acts: Sequence[Callable[[Any], Any]],
                             clip: Callable[[Any], Any],
                             bound_cell: Callable[[Any], Any]) -> Any:
    """`lstm_cell` without an input gate: gates o, f, c at 0, H, 2H; input gate 1 - f."""
    from tvm.script import tirx as T

    f_, g_, h_ = acts

    @T.macro
    def lstm_cell(gates: Any, p: Any, yc: Any, yh: Any, y: Any, t: Any, d: Any,
                  b: Any) -> None:
        for j in range(hidden):
            # forget gate into gates[H + j], (1 - forget) * candidate into gates[2H + j]
            gates[hidden + j] = f_(clip(gates[hidden + j] + p[d, 2 * hidden + j] * yc[d, b, j]))
            gates[2 * hidden + j] = (T.float32(1) - gates[hidden + j]) * g_(
                clip(gates[2 * hidden + j]))
            yc[d, b, j] = bound_cell(gates[hidden + j] * yc[d, b, j] + gates[2 * hidden + j])
            yh[d, b, j] = f_(clip(gates[j] + p[d, hidden + j] * yc[d, b, j])) * h_(yc[d, b, j])
            y[t, d, b, j] = yh[d, b, j]

    return lstm_cell


def time_index(steps: int, rev_base: int, rev_step: int) -> Callable[[Any, Any], Any]:
    """``time(s, d)``: the sequence index of step s in direction d; reverse directions
    (rev_base + rev_step * d == 1) walk the sequence backwards."""
    def time(s: Any, d: Any) -> Any:
        return s + (rev_base + rev_step * d) * (steps - 1 - 2 * s)

    return time


def start_state_macro(hidden: int, cell: bool = False) -> Any:
    """T.macro ``start(yh, h0, d, b)`` (with `cell`: ``start(yh, h0, yc, c0, d, b)``): the
    kept state of direction d, batch b set to its initial value before the first step."""
    from tvm.script import tirx as T

    @T.macro
    def start(yh: Any, h0: Any, d: Any, b: Any) -> None:
        for j in range(hidden):
            yh[d, b, j] = h0[d, b, j]

    @T.macro
    def start_with_cell(yh: Any, h0: Any, yc: Any, c0: Any, d: Any, b: Any) -> None:
        for j in range(hidden):
            yh[d, b, j] = h0[d, b, j]
            yc[d, b, j] = c0[d, b, j]

    return start_with_cell if cell else start


def _add_rows_macro() -> Any:
    """T.macro ``add_rows(acc, vec, lead, b, mat, d, rows, cols)``: for g < cols,
    acc[g] += sum over k < rows of vec[lead, b, k] * mat[d, k, g] (the input and recurrent
    products of the LSTM and GRU kernels), four rows per pass so each acc[g] is loaded and
    stored a quarter as often, then the rows left over."""
    from tvm.script import tirx as T

    @T.macro
    def add_rows(acc: Any, vec: Any, lead: Any, b: Any, mat: Any, d: Any, rows: Any,
                 cols: Any) -> None:
        for k4 in range(rows // 4):
            for g in range(cols):
                acc[g] = acc[g] + (vec[lead, b, 4 * k4] * mat[d, 4 * k4, g]
                                   + vec[lead, b, 4 * k4 + 1] * mat[d, 4 * k4 + 1, g]
                                   + vec[lead, b, 4 * k4 + 2] * mat[d, 4 * k4 + 2, g]
                                   + vec[lead, b, 4 * k4 + 3] * mat[d, 4 * k4 + 3, g])
        for k in range(rows - rows % 4, rows):
            for g in range(cols):
                acc[g] = acc[g] + vec[lead, b, k] * mat[d, k, g]

    return add_rows


def _shape(expr: Any) -> list[int]:
    return [int(v) for v in expr.ty.shape.values]


def _check_sequence_lens(seq_lens: Any, steps: int, node: str) -> None:
    """`sequence_lens` is accepted only when it is a constant equal to the full length."""
    from tvm import relax

    if seq_lens is None:
        return
    if isinstance(seq_lens, relax.Constant):
        if np.all(seq_lens.data.numpy() == steps):
            return
        raise UnsupportedError(f"recurrent node '{node}': sequence_lens shorter than the "
                               f"sequence ({steps} steps) are not supported")
    raise UnsupportedError(f"recurrent node '{node}': sequence_lens computed at run time is not "
                           "supported (omit it, or make it a constant equal to the sequence "
                           "length)")


class _Recurrent:
    """Shared parts of the LSTM and GRU converters."""

    def __init__(self, bb: Any, inputs: Sequence[Any], attrs: dict, op: str):
        from tvm import relax

        self.bb, self.relax = bb, relax
        self.node = attrs.get("tvm_custom", {}).get("name") or op
        self.hidden = int(attrs.get("hidden_size", 0))
        self.layout = int(attrs.get("layout", 0))
        if self.layout not in (0, 1):
            raise UnsupportedError(f"{op} node '{self.node}': unknown layout {self.layout}")
        x = inputs[0]
        if x.ty.dtype != "float32":
            raise UnsupportedError(f"{op} node '{self.node}': only float32 is supported, "
                                   f"not {x.ty.dtype}")
        if self.layout == 1:  # [B, T, I] -> [T, B, I]
            x = bb.emit(relax.op.permute_dims(x, [1, 0, 2]))
        self.x = x
        self.steps, self.batch, self.inputs = _shape(x)
        self.directions, self.rev_base, self.rev_step = _directions(attrs, self.node)
        w_shape = _shape(inputs[1])
        if not self.hidden:
            self.hidden = _shape(inputs[2])[-1]
        if w_shape[0] != self.directions or w_shape[2] != self.inputs:
            raise UnsupportedError(f"{op} node '{self.node}': W has the shape {w_shape}, "
                                   "which does not fit X and the direction")
        _check_sequence_lens(inputs[4] if len(inputs) > 4 else None, self.steps, self.node)

    def optional(self, inputs: Sequence[Any], index: int, shape: Sequence[int]) -> Any:
        """Input `index`, or zeros of `shape` where the node omits it."""
        value = inputs[index] if len(inputs) > index else None
        if value is None:
            return self.relax.const(np.zeros(shape, np.float32))
        if self.layout == 1 and len(shape) == 3:  # initial states [B, D, H] -> [D, B, H]
            return self.bb.emit(self.relax.op.permute_dims(value, [1, 0, 2]))
        return value

    def transposed(self, weights: Any) -> Any:
        """[D, gates*H, K] -> [D, K, gates*H] (folded at compile time for constant weights):
        the kernel's inner loop then runs over contiguous gate rows, which compilers
        vectorise without reordering any sum."""
        return self.bb.emit(self.relax.op.permute_dims(weights, [0, 2, 1]))

    def bias_halves(self, inputs: Sequence[Any], gates: int) -> tuple[Any, Any]:
        width = gates * self.hidden
        bias = self.optional(inputs, 3, [self.directions, 2 * width])
        op = self.relax.op
        first = self.bb.emit(op.strided_slice(bias, axes=[1], begin=[0], end=[width]))
        second = self.bb.emit(op.strided_slice(bias, axes=[1], begin=[width], end=[2 * width]))
        return first, second

    def call(self, kernel: Any, name: str, args: list[Any], outputs: int) -> Any:
        relax = self.relax
        gvar = self.bb.add_func(kernel.with_attr("op_pattern", 8), name)  # opaque: not fused
        d, b, h, t = self.directions, self.batch, self.hidden, self.steps
        out = [relax.TensorType([t, d, b, h], "float32")]
        out += [relax.TensorType([d, b, h], "float32")] * (outputs - 1)
        result = self.bb.emit(relax.call_tir(gvar, args, out))
        items = [self.bb.emit(relax.TupleGetItem(result, i)) for i in range(outputs)]
        if self.layout == 1:  # Y [T, D, B, H] -> [B, T, D, H]; states [D, B, H] -> [B, D, H]
            items = [self.bb.emit(relax.op.permute_dims(items[0], [2, 0, 1, 3]))] + [
                self.bb.emit(relax.op.permute_dims(s, [1, 0, 2])) for s in items[1:]]
        return relax.Tuple(items)


def convert_lstm(bb: Any, inputs: Sequence[Any], attrs: dict) -> Any:
    """Relax for one ONNX LSTM node: a Tuple (Y, Y_h, Y_c)."""
    rec = _Recurrent(bb, inputs, attrs, "LSTM")
    if int(attrs.get("input_forget", 0)):
        raise UnsupportedError(f"LSTM node '{rec.node}': input_forget=1 is not supported")
    acts = _activations(attrs, ("Sigmoid", "Tanh", "Tanh"), rec.directions, rec.node)
    wb, rb = rec.bias_halves(inputs, 4)
    bias = bb.emit(rec.relax.op.add(wb, rb))
    state = [rec.directions, rec.batch, rec.hidden]
    kernel = lstm_kernel(rec.steps, rec.batch, rec.inputs, rec.hidden, rec.directions,
                         rec.rev_base, rec.rev_step, acts, _clip(attrs))
    args = [rec.x, rec.transposed(inputs[1]), rec.transposed(inputs[2]), bias,
            rec.optional(inputs, 5, state),
            rec.optional(inputs, 6, state),
            rec.optional(inputs, 7, [rec.directions, 3 * rec.hidden])]
    return rec.call(kernel, "lstm", args, 3)


def convert_gru(bb: Any, inputs: Sequence[Any], attrs: dict) -> Any:
    """Relax for one ONNX GRU node: a Tuple (Y, Y_h)."""
    rec = _Recurrent(bb, inputs, attrs, "GRU")
    acts = _activations(attrs, ("Sigmoid", "Tanh"), rec.directions, rec.node)
    wb, rb = rec.bias_halves(inputs, 3)
    state = [rec.directions, rec.batch, rec.hidden]
    kernel = gru_kernel(rec.steps, rec.batch, rec.inputs, rec.hidden, rec.directions,
                        rec.rev_base, rec.rev_step, acts, _clip(attrs),
                        bool(int(attrs.get("linear_before_reset", 0))))
    args = [rec.x, rec.transposed(inputs[1]), rec.transposed(inputs[2]), wb, rb,
            rec.optional(inputs, 5, state)]
    return rec.call(kernel, "gru", args, 2)


def convert_rnn(bb: Any, inputs: Sequence[Any], attrs: dict) -> Any:
    """Relax for one ONNX RNN node: a Tuple (Y, Y_h)."""
    rec = _Recurrent(bb, inputs, attrs, "RNN")
    (act,) = _activations(attrs, ("Tanh",), rec.directions, rec.node)
    wb, rb = rec.bias_halves(inputs, 1)
    state = [rec.directions, rec.batch, rec.hidden]
    kernel = rnn_kernel(rec.steps, rec.batch, rec.inputs, rec.hidden, rec.directions,
                        rec.rev_base, rec.rev_step, act, _clip(attrs))
    args = [rec.x, rec.transposed(inputs[1]), rec.transposed(inputs[2]),
            bb.emit(rec.relax.op.add(wb, rb)), rec.optional(inputs, 5, state)]
    return rec.call(kernel, "rnn", args, 2)


CONVERTERS: dict[str, Callable[[Any, Sequence[Any], dict], Any]] = {
    "LSTM": convert_lstm, "GRU": convert_gru, "RNN": convert_rnn}
