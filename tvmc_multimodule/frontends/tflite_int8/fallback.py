"""Operators without an integer kernel go through TVM's Relax TFLite frontend, one at a time:
its converter reads the operator from the flatbuffer and emits the float form
(dequantize -> float op -> quantize) on the int8 values converted so far."""
from __future__ import annotations

from typing import Any

from tvm import relax

from .context import NoIntegerKernel
from .graph import Graph, Operator


class FloatForm:
    """The frontend's converter for single operators, sharing our Relax builder."""

    def __init__(self, graph: Graph, builder: relax.BlockBuilder):
        from tvm.relax.frontend.tflite.tflite_frontend import ExprTable, OperatorConverter

        self._graph = graph
        self._builder = builder
        self._table = ExprTable()
        self._converter: Any = OperatorConverter(graph.model, graph.subgraph, self._table,
                                                 builder)

    def supports(self, name: str) -> bool:
        return name in self._converter.convert_map

    def convert(self, op: Operator, values: dict[int, relax.Expr]) -> list[relax.Expr]:
        """The Relax values of `op`'s outputs."""
        for index in op.inputs:
            if index in values:
                self._table.set_expr(self._graph.tensor(index).name, values[index],
                                     force_override=True)
        result = self._converter.convert_map[op.name](op=op.raw)
        if result is None:
            raise NoIntegerKernel(f"the frontend produced nothing for {op.name}")
        result = self._builder.normalize(result)
        if len(op.outputs) == 1:
            return [self._builder.emit(result)]
        return [self._builder.emit(relax.TupleGetItem(result, i)) for i in range(len(op.outputs))]
