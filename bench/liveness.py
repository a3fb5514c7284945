"""A lower bound on activation RAM, computed from the model graph alone.

Definition (the same for TFLite and ONNX):

- The operators run one after another in the order the model file lists them.
- A non-constant tensor is *live* from the operator that produces it to the last operator that
  reads it, both included. A graph input is live from the first operator on; a graph output
  stays live until the last operator. A tensor that is produced and never read is live only
  at its producing operator.
- Constant tensors (weights, biases, shape vectors, ...) are excluded: they live in flash.
- The bound is the largest sum of the byte sizes of the tensors live at any one operator.

Any runtime that keeps each operator's inputs and outputs in separate buffers while the
operator runs needs at least this much RAM for tensors (TFLite Micro's planner is one). A
runtime may go lower only by computing in place or by aliasing (e.g. a reshape that is a
pointer cast); neither is assumed here.

Per format, "constant" means:

- TFLite: a tensor whose buffer holds data (inline, or by offset for models over 2 GB).
- ONNX: an initializer, the output of a ``Constant`` node, or the output of a node whose
  inputs are all constant (a ``DequantizeLinear`` of a weight in a QDQ model, for instance),
  since a compiler folds those. Shapes come from ONNX shape inference. In a QDQ model the
  DequantizeLinear of an activation and the QuantizeLinear after an operator (and a Relu/Clip
  before it) are folded into the operator: an integer runtime reads and writes the 8-bit
  tensors, as in a full-int8 TFLite graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Operator:
    """One operator: the names of the tensors it reads and writes (constants included)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    """What the bound needs: operators in execution order, tensor sizes, graph I/O, constants."""

    operators: tuple[Operator, ...]
    nbytes: dict[str, int]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: frozenset[str]


def live_ranges(graph: Graph) -> dict[str, tuple[int, int]]:
    """Tensor name -> (first, last) operator index during which it is live (constants excluded)."""
    last_op = max(len(graph.operators) - 1, 0)
    first: dict[str, int] = {name: 0 for name in graph.inputs if name not in graph.constants}
    last: dict[str, int] = dict(first)
    for index, op in enumerate(graph.operators):
        for name in op.outputs:
            if name and name not in graph.constants:
                first.setdefault(name, index)
                last[name] = max(last.get(name, index), index)
        for name in op.inputs:
            if name and name not in graph.constants:
                first.setdefault(name, index)  # read before any producer: treat as an input
                last[name] = max(last.get(name, index), index)
    for name in graph.outputs:
        if name in first:
            last[name] = last_op
    return {name: (first[name], last[name]) for name in first}


def peak_live_bytes(graph: Graph) -> int:
    """The bound: the largest sum of live tensor bytes at any operator (see the module doc)."""
    ranges = live_ranges(graph)
    steps = max(len(graph.operators), 1)
    per_step = [0] * steps
    for name, (start, end) in ranges.items():
        for index in range(start, end + 1):
            per_step[index] += graph.nbytes[name]
    return max(per_step, default=0)


# ---------------------------------------------------------------- TFLite


def _tflite_itemsize(tensor_type: int) -> int:
    from tflite.TensorType import TensorType

    names = {value: name for name, value in vars(TensorType).items() if name.isupper()}
    name = names[tensor_type].lower()
    special = {"bool": 1, "int4": 1, "string": 1, "resource": 0, "variant": 0,
               "complex64": 8, "complex128": 16}
    return special[name] if name in special else np.dtype(name).itemsize


def tflite_graph(model: bytes) -> Graph:
    """The main subgraph of a .tflite flatbuffer as a ``Graph``."""
    from tflite.Model import Model

    root = Model.GetRootAs(model, 0)
    subgraph = root.Subgraphs(0)
    names = [str(i) for i in range(subgraph.TensorsLength())]
    nbytes: dict[str, int] = {}
    constants = set()
    for i in range(subgraph.TensorsLength()):
        tensor = subgraph.Tensors(i)
        shape = [tensor.Shape(j) for j in range(tensor.ShapeLength())]
        nbytes[names[i]] = int(np.prod(shape, dtype=np.int64)) * _tflite_itemsize(tensor.Type())
        buffer = root.Buffers(tensor.Buffer()) if tensor.Buffer() < root.BuffersLength() else None
        if buffer is not None and (buffer.DataLength() > 0 or buffer.Offset() > 1):
            constants.add(names[i])
    operators = []
    for k in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(k)
        ins = tuple(names[t] for t in op.InputsAsNumpy() if t >= 0) if op.InputsLength() else ()
        outs = tuple(names[t] for t in op.OutputsAsNumpy() if t >= 0) if op.OutputsLength() else ()
        operators.append(Operator(ins, outs))
    return Graph(tuple(operators), nbytes,
                 tuple(names[subgraph.Inputs(i)] for i in range(subgraph.InputsLength())),
                 tuple(names[subgraph.Outputs(i)] for i in range(subgraph.OutputsLength())),
                 frozenset(constants))


# ---------------------------------------------------------------- ONNX


def _value_bytes(value: Any) -> int | None:
    """Bytes of an ONNX ValueInfo with a fully static shape, else None."""
    from onnx import helper

    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
    if any(d < 0 for d in dims):
        return None
    itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).itemsize
    return int(np.prod(dims, dtype=np.int64)) * itemsize


def _onnx_constants(model: Any) -> set[str]:
    """Initializers, Constant outputs and outputs of nodes whose inputs are all constant."""
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    for node in graph.node:
        ins = [name for name in node.input if name]
        if node.op_type == "Constant" or (ins and all(name in constants for name in ins)):
            constants.update(name for name in node.output if name)
    return constants


def onnx_graph(model: Any) -> Graph:
    """An ``onnx.ModelProto`` (shapes inferred here) as a ``Graph``; needs static shapes."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    constants = _onnx_constants(inferred)
    nbytes: dict[str, int] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        size = _value_bytes(value)
        if size is not None:
            nbytes[value.name] = size
    operators = _fold_qdq(list(graph.node), constants, {v.name for v in graph.output})
    used = {name for op in operators for name in (*op.inputs, *op.outputs) if name}
    missing = sorted(name for name in used - constants if name not in nbytes)
    if missing:
        raise ValueError(f"no static shape for {len(missing)} tensor(s), e.g. {missing[:3]}")
    return Graph(operators, nbytes,
                 tuple(v.name for v in graph.input if v.name not in constants),
                 tuple(v.name for v in graph.output), frozenset(constants))


_ACTIVATIONS = ("Relu", "Clip")


def _fold_qdq(nodes: list[Any], constants: set[str], outputs: set[str]) -> tuple[Operator, ...]:
    """Operators with DequantizeLinear (of activations) and the QuantizeLinear closing each
    operator folded away: the float tensors between them become the 8-bit ones."""
    readers: dict[str, int] = {}
    producer: dict[str, Any] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
        for name in node.output:
            producer[name] = node
    alias: dict[str, str] = {}
    folded: set[int] = set()

    def foldable(name: str) -> bool:
        return name not in constants and name not in outputs and readers.get(name) == 1 \
            and name in producer and producer[name].op_type not in ("QuantizeLinear",
                                                                      "DequantizeLinear")

    for k, node in enumerate(nodes):
        x = node.input[0] if node.input else ""
        if node.op_type == "DequantizeLinear" and x not in constants and node.output[0] not in outputs:
            alias[node.output[0]] = x
            folded.add(k)
        elif node.op_type == "QuantizeLinear" and foldable(x):
            alias[x] = node.output[0]
            folded.add(k)
            act = producer[x]
            if act.op_type in _ACTIVATIONS and act.input and foldable(act.input[0]):
                alias[act.input[0]] = node.output[0]

    def name(n: str) -> str:
        while n in alias:
            n = alias[n]
        return n

    return tuple(Operator(tuple(name(i) for i in n.input), tuple(name(o) for o in n.output))
                 for k, n in enumerate(nodes) if k not in folded)


def model_bound(path: str, data: bytes | None = None) -> int:
    """The bound for a .tflite or .onnx file (chosen by extension)."""
    if str(path).endswith(".onnx"):
        import onnx

        return peak_live_bytes(onnx_graph(onnx.load(path)))
    if data is None:
        with open(path, "rb") as handle:
            data = handle.read()
    return peak_live_bytes(tflite_graph(data))

