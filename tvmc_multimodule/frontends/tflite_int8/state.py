"""TFLite resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE) as the
persistent state of a module.

Each variable becomes an extra input and an extra output of `main` (its value before and
after the run); the runner keeps both in one state buffer. CALL_ONCE's initialisation
subgraph must be constant (VAR_HANDLE + ASSIGN_VARIABLE of constants, which is what the
TFLite converter writes): it folds to each variable's initial value. A variable no
initialisation assigns starts at zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from .graph import Graph, Operator, Tensor, _DTYPES, _op_names


@dataclass(frozen=True)
class Variable:
    """One resource variable: its value's type and quantisation and its initial value."""

    key: str                      # container/shared name: what identifies it across subgraphs
    tensor: Tensor                # a tensor of the main graph holding its value
    initial: np.ndarray = field(compare=False)

    @property
    def name(self) -> str:
        """What the state is called: the shared name, or the variable tensor's name."""
        return self.tensor.name if self.key.startswith(TENSOR_KEY) else self.key

    @property
    def tensor_index(self) -> int | None:
        """The variable tensor this state is (None for a resource variable)."""
        return self.tensor.index if self.key.startswith(TENSOR_KEY) else None


TENSOR_KEY = "tensor:"  # key prefix of a variable tensor's state


def _key(op: Operator, model: Any, subgraph: int) -> str:
    options = op.options("VarHandleOptions")
    container = (options.Container() or b"").decode(errors="replace")
    shared = (options.SharedName() or b"").decode(errors="replace")
    if not shared:  # an anonymous handle is only itself
        return f"#{subgraph}:{op.outputs[0]}"
    return f"{container}/{shared}" if container else shared


def handles(graph: Graph) -> dict[int, str]:
    """Handle tensor index -> variable key, for the main graph."""
    return {op.outputs[0]: _key(op, graph.model, 0) for op in graph.operators
            if op.name == "VAR_HANDLE" and op.outputs}


def _init_values(graph: Graph) -> dict[str, np.ndarray]:
    """The constant values CALL_ONCE's initialisation subgraphs assign, by variable key."""
    model = graph.model
    names = _op_names()
    values: dict[str, np.ndarray] = {}
    for op in graph.operators:
        if op.name != "CALL_ONCE":
            continue
        index = int(op.options("CallOnceOptions").InitSubgraphIndex())
        if not 0 < index < model.SubgraphsLength():
            raise UnsupportedError(f"CALL_ONCE names subgraph {index}, which does not exist")
        sub = model.Subgraphs(index)
        keys: dict[int, str] = {}
        for o in range(sub.OperatorsLength()):
            raw = sub.Operators(o)
            code = model.OperatorCodes(raw.OpcodeIndex())
            name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
            ins = [int(i) for i in raw.InputsAsNumpy()] if raw.InputsLength() else []
            outs = [int(i) for i in raw.OutputsAsNumpy()] if raw.OutputsLength() else []
            sub_op = Operator(o, name, tuple(ins), tuple(outs), raw)
            if name == "VAR_HANDLE":
                keys[outs[0]] = _key(sub_op, model, index)
            elif name == "ASSIGN_VARIABLE" and ins[0] in keys:
                value = _constant(model, sub, ins[1])
                if value is None:
                    raise UnsupportedError(
                        f"CALL_ONCE initialisation (subgraph {index}) assigns a computed value",
                        hint="only constant initial values are supported")
                values[keys[ins[0]]] = value
            else:
                raise UnsupportedError(f"CALL_ONCE initialisation (subgraph {index}) runs "
                                       f"{name}: only constant initial values are supported")
    return values


def _constant(model: Any, sub: Any, index: int) -> np.ndarray | None:
    from ..tflite_sparse import dense_constant

    t = sub.Tensors(index)
    dtype = _DTYPES.get(t.Type())
    buffer = model.Buffers(t.Buffer())
    if dtype is None or buffer is None or not buffer.DataLength():
        return None
    return dense_constant(t, buffer.DataAsNumpy().tobytes(), dtype).copy()


def variable_tensors(graph: Graph) -> list[Variable]:
    """The main graph's *variable tensors* an operator reads (UNIDIRECTIONAL_SEQUENCE_LSTM's
    output and cell state): LiteRT and TFLite Micro keep them across invokes. Initial value:
    the tensor's data, else what TFLite Micro resets it to (an int8 tensor's zero point, else
    zero)."""
    if graph.model is None:
        return []
    read = {i for op in graph.operators for i in op.inputs if i >= 0}
    found = []
    for t in graph.tensors:
        if t.index not in read or not graph.subgraph.Tensors(t.index).IsVariable():
            continue
        if t.data is not None:
            initial = np.asarray(t.data, t.dtype).reshape(t.shape)
        else:
            zero = t.zero_point if t.dtype == "int8" and t.quantized else 0
            initial = np.full(t.shape, zero, t.dtype)
        found.append(Variable(f"{TENSOR_KEY}{t.index}", t, initial))
    return found


def find_variables(graph: Graph) -> list[Variable]:
    """Every variable the main graph reads or assigns, in order of first use; each value
    tensor must agree on shape and type."""
    keys = handles(graph)
    seen: dict[str, Tensor] = {}
    for op in graph.operators:
        if op.name == "READ_VARIABLE":
            value = op.outputs[0]
        elif op.name == "ASSIGN_VARIABLE":
            value = op.inputs[1]
        else:
            continue
        if op.inputs[0] not in keys:
            raise UnsupportedError(f"{op.name} (#{op.index}) uses a handle no VAR_HANDLE made")
        key, tensor = keys[op.inputs[0]], graph.tensor(value)
        known = seen.setdefault(key, tensor)
        if (known.dtype, int(np.prod(known.shape))) != (tensor.dtype, int(np.prod(tensor.shape))):
            raise UnsupportedError(f"variable '{key}' is read and assigned with different "
                                   f"types: {known.dtype}{list(known.shape)} vs "
                                   f"{tensor.dtype}{list(tensor.shape)}")
    if not seen:
        return []
    initial = _init_values(graph)
    variables = []
    for key, tensor in seen.items():
        value = initial.get(key)
        if value is None:
            value = np.zeros(tensor.shape, tensor.dtype)
        elif value.size != int(np.prod(tensor.shape)) or str(value.dtype) != tensor.dtype:
            raise UnsupportedError(f"variable '{key}' is initialised with "
                                   f"{value.dtype}{list(value.shape)} but used as "
                                   f"{tensor.dtype}{list(tensor.shape)}")
        variables.append(Variable(key, tensor, value.reshape(tensor.shape)))
    return variables
