"""ONNX operators of a non-standard domain (`com.example.MyOp`): the user's C implementation
(`--custom-op com.example.MyOp=impl.c`, or `MyOp=impl.c`), or a built-in form
(com.microsoft.DynamicQuantizeLSTM).

Such a node reaches TVM's importer under a marked operator type (`tvmc.custom:<K>`, K its
index in the table of marked nodes: its name and outputs), which our importer (onnx_relax.py) converts as one call of the user's
function, the same opaque TIR function the TFLite path builds (custom_ops.extern_function).
Output shapes and types: the user's declaration, else the model's (value_info, graph outputs).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ..errors import UnsupportedError
from ..model import CustomOp
from . import custom_ops

MARK = "tvmc.custom:"
STANDARD_DOMAINS = ("", "ai.onnx")


def _builtins() -> dict[str, Callable[..., Any]]:
    from .onnx_quant_lstm import convert_dynamic_quantize_lstm

    return {"com.microsoft.DynamicQuantizeLSTM": convert_dynamic_quantize_lstm}


BUILTIN = frozenset({"com.microsoft.DynamicQuantizeLSTM"})
"""Custom-domain operators compiled without a user implementation."""


def qualified(node: Any) -> str:
    return f"{node.domain}.{node.op_type}"


def custom_name(node: Any, given: Mapping[str, Any]) -> str | None:
    """The name a custom-domain node is compiled under: `DOMAIN.OP` or `OP` as the user gave
    it (the qualified name first), or a built-in's qualified name; None: unknown."""
    full = qualified(node)
    if full in given:
        return full
    if node.op_type in given:
        return node.op_type
    return full if full in BUILTIN else None


def unknown_custom_ops(nodes: Sequence[Any], given: Mapping[str, Any]) -> list[str]:
    """The qualified names of the custom-domain nodes neither given nor built in."""
    return [qualified(n) for n in nodes
            if n.domain not in STANDARD_DOMAINS and custom_name(n, given) is None]


MarkedNode = tuple[str, tuple[str, ...]]  # (the name it is compiled under, its outputs)


def mark_custom_nodes(model: Any, given: Mapping[str, Any]) -> tuple[Any, list[MarkedNode]]:
    """A copy of `model` whose known custom-domain nodes of the main graph have the operator
    type `tvmc.custom:<K>`, and the table of them."""
    import onnx

    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    table: list[MarkedNode] = []
    for node in marked.graph.node:
        if node.domain not in STANDARD_DOMAINS:
            name = custom_name(node, given)
            if name is not None:
                node.op_type = f"{MARK}{len(table)}"
                table.append((name, tuple(node.output)))
    return marked, table


def declared_specs(model: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """(shape, dtype) of every tensor the model declares with a static shape."""
    import numpy as np
    from onnx import helper

    specs = {}
    for value in [*model.graph.value_info, *model.graph.output]:
        tensor = value.type.tensor_type
        dims = tensor.shape.dim
        if (value.type.WhichOneof("value") == "tensor_type" and tensor.elem_type
                and tensor.HasField("shape") and all(d.dim_value > 0 for d in dims)):
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
            specs[value.name] = (tuple(int(d.dim_value) for d in dims), dtype)
    return specs


class CustomConverter:
    """Converts the marked nodes of one module; records the user functions it calls."""

    def __init__(self, module: str, given: Mapping[str, CustomOp],
                 declared: Mapping[str, tuple[tuple[int, ...], str]],
                 table: Sequence[MarkedNode]) -> None:
        self.module = module
        self.table = list(table)
        self.given = dict(given)
        self.declared = dict(declared)
        self.calls: dict[str, custom_ops.CustomCall] = {}

    def convert(self, bb: Any, op_type: str, inputs: Sequence[Any], attrs: dict) -> Any:
        name, outputs = self.table[int(op_type[len(MARK):])]
        if name not in self.given:
            return _builtins()[name](bb, inputs, attrs)
        return self._user_call(bb, name, inputs, outputs)

    def _user_call(self, bb: Any, name: str, inputs: Sequence[Any],
                   outputs: Sequence[str]) -> Any:
        from tvm import relax

        args = [x for x in inputs if x is not None]
        for x in args:
            if not isinstance(getattr(x, "ty", None), relax.TensorType):
                raise UnsupportedError(f"custom operator {name}: an input is not a tensor")
        in_specs = [(tuple(int(d) for d in x.ty.shape.values), str(x.ty.dtype)) for x in args]
        op = self.given[name]
        declared = [self.declared.get(out) for out in outputs]
        if op.outputs is None and None in declared:
            missing = outputs[declared.index(None)]
            raise UnsupportedError(
                f"custom operator {name}: the model does not declare the shape of its output "
                f"'{missing}'", hint=f"declare the outputs: --custom-op {name}=impl.c:"
                "float32[1,16] (one DTYPE[dims] per output, ';' between them)")
        placeholder = ((), "float32")
        out_specs = custom_ops.output_specs(op, in_specs, [d or placeholder for d in declared])
        gvar, types = custom_ops.add_call(self.calls, self.module, name, in_specs, out_specs,
                                          bb.add_func)
        if len(types) == 1:
            return relax.call_tir(gvar, args, types[0])
        result = bb.emit(relax.call_tir(gvar, args, types))
        return relax.Tuple([bb.emit(relax.TupleGetItem(result, i)) for i in range(len(types))])
