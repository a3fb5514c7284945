"""The translation's state: the records made so far (tflite_int8.Tensor / Operator), the
8-bit value behind every ONNX tensor name, layouts (NHWC inside, ONNX order where it
matters) and the quantisation parameters read from QuantizeLinear/DequantizeLinear nodes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..onnx_attributes import node_attrs
from ..tflite_int8 import Graph, Operator, Tensor
from ..tflite_int8.converters import TABLE

NHWC = (0, 2, 3, 1)        # NCHW axes in NHWC order
NHWC_AXIS = (0, 3, 1, 2)   # where NCHW axis k sits in NHWC
FUSED = {"Relu": 1, "Relu6": 3}
ELEMENTWISE = frozenset({
    "Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Celu", "Softplus", "Softsign", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Erf",
    "Gelu", "Mish", "ThresholdedRelu", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign"})
RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
PASS_THROUGH = frozenset({"Identity", "Dropout"})


class NotQDQ(Exception):
    """The graph is not (entirely) in the static-quantisation pattern."""


class KeepFloat(Exception):
    """This operator is in the pattern but has no integer kernel: keep its float form."""


@dataclass(frozen=True)
class Quant:
    scales: np.ndarray        # float32
    zero_points: np.ndarray   # int64, uint8 ones already moved by -128
    axis: int
    dtype: str                # the file's type: int8, uint8, int32

    @property
    def per_tensor(self) -> bool:
        return self.scales.size == 1

    def same(self, other: "Quant") -> bool:
        return (self.per_tensor and other.per_tensor and self.scales[0] == other.scales[0]
                and self.zero_points[0] == other.zero_points[0])


@dataclass(frozen=True)
class Value:
    """An 8-bit activation of the translated graph."""

    index: int                # its record
    nhwc: bool                # a 4-D tensor stored NHWC (the ONNX tensor is NCHW)
    quant: Quant


def nhwc_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(shape[a] for a in NHWC)


def _same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    effective = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + effective - size, 0)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def spatial_padding(attrs: dict[str, Any], size: Sequence[int], kernel: Sequence[int],
                     strides: Sequence[int], dilations: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """((top, bottom), (left, right)) from `pads` or `auto_pad`."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return tuple(_same_pads(n, k, s, d, auto == "SAME_LOWER")
                     for n, k, s, d in zip(size, kernel, strides, dilations))
    pads = list(attrs.get("pads", [0, 0, 0, 0])) if auto in ("NOTSET", "") else [0, 0, 0, 0]
    return (pads[0], pads[2]), (pads[1], pads[3])


# ---------------------------------------------------------------- the translator

class Translator:
    """One model's translation (see the package doc)."""

    def __init__(self, model: Any, shapes: dict[str, tuple[int, ...]]):
        from onnx import numpy_helper

        graph = model.graph
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.shapes = shapes
        self.graph_inputs = {v.name: v for v in graph.input if v.name not in self.inits}
        self.graph_outputs = [v.name for v in graph.output]
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.tensors: list[Tensor] = []
        self.operators: list[Operator] = []
        self.values: dict[str, Value] = {}          # ONNX 8-bit tensor -> its record
        self.dequantized: dict[str, str] = {}        # DequantizeLinear output -> 8-bit input
        self.constants: dict[str, tuple[np.ndarray, Quant]] = {}  # DequantizeLinear of data
        self.input_records: dict[str, int] = {}
        self.output_records: dict[str, int] = {}
        self.absorbed: set[str] = set()  # first outputs of nodes already translated
        self.transposed: dict[tuple[int, bool], int] = {}

    # ---- records
    def tensor(self, name: str, shape: Sequence[int], dtype: str, quant: Optional[Quant] = None,
               data: Optional[np.ndarray] = None, axis: int = 0) -> int:
        scales = zeros = None
        if quant is not None:
            scales = quant.scales.astype(np.float32)
            zeros = quant.zero_points.astype(np.int64)
            axis = axis if quant.scales.size > 1 else 0
        self.tensors.append(Tensor(len(self.tensors), name, tuple(int(d) for d in shape), dtype,
                                   scales, zeros, axis, data))
        return len(self.tensors) - 1

    def constant(self, name: str, data: np.ndarray, quant: Optional[Quant] = None,
                 axis: int = 0) -> int:
        data = np.ascontiguousarray(data)
        return self.tensor(name, data.shape, data.dtype.name, quant, data, axis)

    def operator(self, name: str, inputs: Sequence[int], outputs: Sequence[int],
                 raw: Any = None, **options: Any) -> None:
        self.operators.append(Operator(len(self.operators), name, tuple(inputs), tuple(outputs),
                                       raw, options))

    def int8_output(self, name: str, quant: Quant, nhwc: bool) -> Value:
        shape = self.shape(name)
        value = Value(self.tensor(name, nhwc_shape(shape) if nhwc else shape, "int8", quant),
                       nhwc, quant)
        self.values[name] = value
        return value

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise NotQDQ(f"the shape of '{name}' is unknown")
        return self.shapes[name]

    # ---- quantisation parameters
    def quant(self, node: Any, dtype: Optional[str] = None) -> Quant:
        """The (scale, zero point, axis) of a QuantizeLinear/DequantizeLinear node."""
        if node.input[1] not in self.inits:
            raise NotQDQ(f"{node.op_type} '{node.name}' has a scale computed at run time")
        scales = self.inits[node.input[1]].astype(np.float32).reshape(-1)
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.inits:
                raise NotQDQ(f"{node.op_type} '{node.name}' has a computed zero point")
            zero = self.inits[node.input[2]]
            dtype = zero.dtype.name
        else:
            zero = np.zeros(1, np.uint8 if node.op_type == "QuantizeLinear" else dtype or "uint8")
            dtype = dtype or zero.dtype.name
        if dtype not in ("int8", "uint8", "int32"):
            raise NotQDQ(f"{node.op_type} '{node.name}' is {dtype}")
        zeros = zero.astype(np.int64).reshape(-1) - (128 if dtype == "uint8" else 0)
        if zeros.size == 1 and scales.size > 1:
            zeros = np.repeat(zeros, scales.size)
        return Quant(scales, zeros, int(node_attrs(node).get("axis", 1)), dtype)

    # ---- values and layouts
    def source(self, name: str) -> Value:
        """The 8-bit activation behind a DequantizeLinear output (or an 8-bit tensor)."""
        if name in self.dequantized:
            return self.values[self.dequantized[name]]
        if name in self.values:
            return self.values[name]
        raise NotQDQ(f"'{name}' is a float tensor that no DequantizeLinear produces")

    def layout(self, value: Value, nhwc: bool) -> int:
        """The record of `value` in the wanted layout (a TRANSPOSE, made once)."""
        if value.nhwc == nhwc:
            return value.index
        key = (value.index, nhwc)
        if key not in self.transposed:
            src = self.tensors[value.index]
            perm = NHWC if nhwc else NHWC_AXIS
            shape = tuple(src.shape[a] for a in perm)
            out = self.tensor(f"{src.name}_{'nhwc' if nhwc else 'nchw'}", shape, src.dtype,
                              value.quant)
            perm_index = self.constant(f"{src.name}_perm", np.array(perm, np.int32))
            self.operator("TRANSPOSE", [value.index, perm_index], [out])
            self.transposed[key] = out
        return self.transposed[key]

    def onnx_order(self, value: Value, shape: tuple[int, ...]) -> int:
        """The record in ONNX element order: NHWC with H = W = 1 already is (no copy)."""
        if value.nhwc and shape[2] * shape[3] == 1:
            out = self.tensor(self.tensors[value.index].name + "_nchw", shape, "int8", value.quant)
            self.operator("RESHAPE", [value.index], [out])
            return out
        return self.layout(value, nhwc=False)

    def output_quant(self, node: Any) -> tuple[Any, int, list[Any]]:
        """(the QuantizeLinear of `node`'s result, fused activation, the absorbed nodes)."""
        name, activation, absorbed = node.output[0], 0, []
        users = self.consumers.get(name, [])
        if len(users) == 1 and name not in self.graph_outputs:
            fused = self.fused_activation(users[0])
            if fused is not None:
                activation, name = fused, users[0].output[0]
                absorbed.append(users[0])
                users = self.consumers.get(name, [])
        if name in self.graph_outputs or len(users) != 1 or users[0].op_type != "QuantizeLinear":
            raise NotQDQ(f"the float result of {node.op_type} '{node.name}' is not quantised")
        return users[0], activation, [*absorbed, users[0]]

    def fused_activation(self, node: Any) -> Optional[int]:
        if node.op_type == "Relu":
            return FUSED["Relu"]
        if node.op_type != "Clip":
            return None
        low, high = self.clip_bounds(node)
        if low == 0 and high == 6:
            return FUSED["Relu6"]
        return FUSED["Relu"] if low == 0 and high == np.inf else None

    def clip_bounds(self, node: Any) -> tuple[float, float]:
        if self.opset < 11:
            attrs = node_attrs(node)
            return float(attrs.get("min", -np.inf)), float(attrs.get("max", np.inf))
        bounds = [-np.inf, np.inf]
        for k, name in enumerate(node.input[1:3]):
            if name:
                if name not in self.inits:
                    return np.nan, np.nan
                bounds[k] = float(self.inits[name])
        return bounds[0], bounds[1]

    # ---- driving
    def run(self, handlers: dict[str, Callable[["Translator", Any], None]]) -> Graph:
        """Translate every node with its handler (`handlers`, by op type), or keep its float
        form; then the model's inputs and outputs in the file's order."""
        for node in self.model.graph.node:
            if node.output[0] in self.absorbed:
                continue
            if node.domain not in ("", "ai.onnx"):
                raise NotQDQ(f"custom operator {node.domain}::{node.op_type}")
            try:
                if node.op_type not in handlers:
                    raise KeepFloat(f"no integer kernel for {node.op_type}")
                handlers[node.op_type](self, node)
            except KeepFloat:
                self.float_form(node)
        inputs = []
        for name in self.graph_inputs:
            if name not in self.input_records:
                raise NotQDQ(f"input '{name}' is not quantised")
            inputs.append(self.input_records[name])
        outputs = [self.output_record(name) for name in self.graph_outputs]
        return Graph(None, None, tuple(self.tensors), tuple(self.operators), tuple(inputs),
                     tuple(outputs))

    def output_record(self, name: str) -> int:
        if name in self.output_records:
            return self.output_records[name]
        if name not in self.values:
            raise NotQDQ(f"output '{name}' is neither dequantised nor 8-bit")
        value = self.values[name]
        index = self.onnx_order(value, self.shape(name)) if value.nhwc else value.index
        if value.quant.dtype == "uint8":  # back to the file's type: q + 128
            out = self.tensor(name + "_u8", self.shape(name), "uint8")
            self.operator(TABLE, [index], [out], Values=np.arange(256).astype(np.uint8),
                          Name="to_uint8")
            return out
        return index

    def graph_input(self, name: str, quant: Optional[Quant]) -> int:
        """The record of a model input: float32, or 8-bit described by `quant`."""
        value = self.graph_inputs[name]
        from onnx import helper

        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)).name
        if name in self.input_records:
            raise NotQDQ(f"input '{name}' is quantised twice")
        index = self.tensor(name, self.shape(name), dtype, quant if dtype != "float32" else None)
        self.input_records[name] = index
        return index

    # ---- the generic float form
    def float_form(self, node: Any) -> None:
        """DequantizeLinear inputs -> the ONNX operator in float -> QuantizeLinear."""
        q_node, _, absorbed = self.output_quant(node)
        inputs = []
        for name in node.input:
            if not name:
                inputs.append(-1)
            elif name in self.constants:
                data, quant = self.constants[name]
                inputs.append(self.constant(name, data.astype(np.int32 if quant.dtype == "int32"
                                                              else np.int8), quant, quant.axis))
            elif name in self.inits:
                inputs.append(self.constant(name, self.inits[name]))
            else:
                value = self.source(name)
                inputs.append(self.onnx_order(value, self.shape(name)) if value.nhwc
                              else value.index)
        activations = tuple((n, tuple(self.inits.get(i) for i in n.input[1:]))
                            for n in absorbed if n.op_type != "QuantizeLinear")
        self.absorbed.update(n.output[0] for n in absorbed)
        out = self.int8_output(q_node.output[0], self.quant(q_node), nhwc=False)
        self.operator(node.op_type, inputs, [out.index], raw=node, Activations=activations,
                      Opset=self.opset)


