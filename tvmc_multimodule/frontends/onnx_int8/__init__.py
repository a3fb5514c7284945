"""Statically quantised ONNX (QDQ) -> the int8 importer's graph records, so these models run
on the same integer kernels as full-int8 TFLite files (int8 weights and tensors, no FPU).

The pattern is the one onnxruntime's `quantize_static` and torch's exporters write: every
float operator reads DequantizeLinear outputs (8-bit activations, constant 8-bit weights,
int32 or float bias) and its result goes to one QuantizeLinear, possibly through Relu/Clip,
which then fuses. Each such operator becomes the TFLite operator of the same meaning
(Conv -> CONV_2D/DEPTHWISE_CONV_2D, Gemm/MatMul -> FULLY_CONNECTED, Add -> ADD...) reading the
8-bit tensors before the DequantizeLinear and writing the QuantizeLinear's output. The
kernels round as onnxruntime's float arithmetic does (each requantisation once, half to even;
Add and mean from the exact scale ratios), in integers: measured bit-exact with onnxruntime
at every layer of a CNN its own quantiser wrote, at most one step off at the output.

- uint8 tensors become int8 with the zero point moved by -128 (the same real values);
- 4-D activations are kept NHWC, the kernels' layout; a TRANSPOSE is added only where the
  ONNX element order matters (a Reshape of a tensor with H, W > 1, a model output...);
- one-input elementwise operators (Sigmoid, Tanh, LeakyRelu, HardSwish...) become a 256-entry
  table computed by onnx's reference evaluator, so they follow ONNX's own arithmetic;
- an operator in the pattern without an integer kernel keeps its ONNX float form
  (dequantize -> operator -> quantize, through TVM's ONNX converter), with a warning.

A graph outside the pattern (float tensors between operators) raises NotQDQ: the caller then
compiles the model through TVM's ONNX frontend as before.

- translator.py: the state of one translation (records, layouts, quantisation parameters)
- operators.py: one handler per ONNX operator
- float_form.py: the float form of operators without an integer kernel
"""
from __future__ import annotations

from typing import Any

from ..tflite_int8 import Graph
from .float_form import OnnxFloatForm
from .operators import HANDLERS
from .translator import NotQDQ, Translator


def translate_qdq(model: Any, shapes: dict[str, tuple[int, ...]]) -> Graph:
    """`model` (shape-inferred, QOperators already rewritten) -> records, or NotQDQ.
    `shapes`: the static shape of every tensor the model declares or inference found."""
    return Translator(model, shapes).run(HANDLERS)


def has_quantize_nodes(model: Any) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def static_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape known to the (shape-inferred) model, static dimensions only."""
    shapes = {}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


__all__ = ["NotQDQ", "OnnxFloatForm", "has_quantize_nodes", "static_shapes", "translate_qdq"]
