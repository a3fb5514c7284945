"""Persistent state of TFLite graphs imported through TVM's Relax frontend (float graphs):
resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE, CALL_ONCE folded to
initial values, as the int8 importer does) and the *variable tensors* an operator carries
across invokes (UNIDIRECTIONAL_SEQUENCE_LSTM's output and cell state: LiteRT and TFLite Micro
keep them between invokes and reset them with the interpreter).

Each state is an extra last parameter of `main` (its value at entry) and an extra last
result (its value at exit), the contract `pipeline/state.py` and the runner implement.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedError
from ..model import QuantParams, StateInfo
from ..relax_shapes import static_shape


@dataclass(frozen=True)
class StateSlot:
    """One persistent value: a resource variable (key = its shared name) or a variable
    tensor (key = `tensor:<index>`)."""

    key: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    initial: np.ndarray = field(compare=False)
    quant: QuantParams | None = None

    def info(self) -> StateInfo:
        return StateInfo(self.name, self.shape, self.dtype, self.quant, self.initial)


def tensor_key(index: int) -> str:
    from .tflite_int8.state import TENSOR_KEY

    return f"{TENSOR_KEY}{index}"


def find_state(model: Any) -> list[StateSlot]:
    """The resource variables, then the variable tensors operators read, of the main graph."""
    from .tflite import _quant
    from .tflite_int8 import read_graph
    from .tflite_int8.state import find_variables, variable_tensors

    graph = read_graph(model)
    slots = []
    for v in find_variables(graph) + variable_tensors(graph):
        t = v.tensor
        quant = _quant(graph.subgraph.Tensors(t.index))
        slots.append(StateSlot(v.key, v.name, tuple(int(d) for d in t.shape), t.dtype,
                               v.initial, quant))
    return slots


class StateValues:
    """While converting: each state's current value (its parameter at entry, the latest
    assignment after that)."""

    def __init__(self, slots: list[StateSlot], bb: Any, handles: dict[int, str]) -> None:
        from tvm import relax

        self.bb = bb
        self.handles = handles  # VAR_HANDLE output tensor -> variable key
        self.slots = {s.key: s for s in slots}
        self.params = [relax.Var(f"state{k}", relax.TensorType(list(s.shape), s.dtype))
                       for k, s in enumerate(slots)]
        self.current: dict[str, Any] = {s.key: p for s, p in zip(slots, self.params)}

    def has(self, key: str) -> bool:
        return key in self.slots

    def read(self, key: str, shape: list[int] | tuple[int, ...]) -> Any:
        from tvm import relax

        value = self.current[key]
        if list(shape) == list(self.slots[key].shape):
            return value
        return relax.op.reshape(value, [int(d) for d in shape])

    def write(self, key: str, value: Any) -> None:
        from tvm import relax

        shape = list(self.slots[key].shape)
        value = self.bb.normalize(value)
        if static_shape(value) != tuple(shape):
            value = relax.op.reshape(value, shape)
        self.current[key] = value if isinstance(value, relax.Var) else self.bb.emit(value)

    def results(self) -> list[Any]:
        return [self.current[key] for key in self.slots]


def from_tflite_with_state(model: Any, shape_dict: dict[str, list[int]],
                           dtype_dict: dict[str, str], op_converter: Callable[..., Any],
                           slots: list[StateSlot]) -> Any:
    """TVM's `from_tflite` with the states as `main`'s last parameters and results;
    `op_converter(model, subgraph, exp_tab, bb, state=StateValues)` is our Converter."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.tflite.tflite_frontend import ExprTable, get_tensor_name

    subgraph = model.Subgraphs(0)
    bb = relax.BlockBuilder()
    from .tflite_int8 import read_graph
    from .tflite_int8.state import handles

    state = StateValues(slots, bb, handles(read_graph(model)))
    with bb.function("main"):
        params = []
        with bb.dataflow():
            exp_tab = ExprTable()
            for index in subgraph.InputsAsNumpy():
                name = get_tensor_name(subgraph, int(index))
                var = relax.Var(name, relax.TensorType(list(shape_dict[name]),
                                                       dtype_dict[name]))
                exp_tab.set_expr(name, var)
                params.append(var)
            converter = op_converter(model, subgraph, exp_tab, bb, state=state)
            converter.check_unsupported_ops()
            converter.convert_op_to_relax()
            outputs = [converter.get_tensor_expr(t)
                       for t in converter.get_tensors(subgraph.OutputsAsNumpy())]
            outputs += state.results()
            out = bb.emit_output(outputs[0] if len(outputs) == 1 else relax.Tuple(outputs))
        bb.emit_func_output(out, params + state.params)
    module = bb.get()
    values = [v for _, v in exp_tab.params.values()] if exp_tab.params else []
    module["main"] = module["main"].with_attrs({
        "num_input": len(params) + len(state.params),
        "params": [tvm.runtime.tensor(a) for a in values]})
    return module

