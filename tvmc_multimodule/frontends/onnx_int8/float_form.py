"""Operators without an integer kernel inside an integer model, in float."""
from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax

from ..tflite_int8 import Graph, Operator


class OnnxFloatForm:
    """Operators without an integer kernel, in float through TVM's ONNX converters:
    dequantize the 8-bit inputs, convert the node (and a fused Relu/Clip), quantize."""

    def __init__(self, graph: Graph, builder: relax.BlockBuilder):
        from tvm.relax.frontend.onnx import onnx_frontend

        self._graph = graph
        self._builder = builder
        self._converters = onnx_frontend._get_convert_map()

    def supports(self, name: str) -> bool:
        return name in self._converters

    def convert(self, op: Operator, values: dict[int, relax.Expr]) -> list[relax.Expr]:
        options = op.options("")
        inputs = [None if i < 0 else self._float(i, values) for i in op.inputs]
        result = self._node(op.raw, inputs, options.Opset())
        for node, consts in options.Activations():
            result = self._node(node, [result, *(None if c is None else relax.const(c)
                                                 for c in consts)], options.Opset())
        out = self._graph.tensor(op.outputs[0])
        return [self._builder.emit(relax.op.quantize(
            result, relax.const(np.float32(out.scale)), relax.const(np.int8(out.zero_point)),
            out_dtype="int8"))]

    def _float(self, index: int, values: dict[int, relax.Expr]) -> relax.Expr:
        t = self._graph.tensor(index)
        value = values[index] if index in values else relax.const(t.data)
        if not t.quantized:
            return value
        scales, zeros = t.scales, t.zero_points
        per_axis = scales.size > 1
        return self._builder.emit(relax.op.dequantize(
            value, relax.const(scales if per_axis else np.float32(scales[0])),
            relax.const((zeros if per_axis else zeros[:1].reshape(())).astype(t.dtype)),
            axis=t.axis if per_axis else -1))

    def _node(self, node: Any, inputs: list, opset: int) -> relax.Expr:
        attrs = {}
        for a in node.attribute:
            from onnx import helper

            value = helper.get_attribute_value(a)
            attrs[a.name] = tuple(value) if isinstance(value, list) else value
        attrs["tvm_custom"] = {"name": node.name, "num_outputs": len(node.output)}
        impl = self._converters[node.op_type].get_converter(opset)
        return self._builder.normalize(impl(self._builder, inputs, attrs, [{}, {}]))
