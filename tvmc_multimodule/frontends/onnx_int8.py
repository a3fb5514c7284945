"""Statically quantised ONNX (QDQ) -> the int8 importer's graph records, so these models run
on the same integer kernels as full-int8 TFLite files (int8 weights and tensors, no FPU).

The pattern is the one onnxruntime's `quantize_static` and torch's exporters write: every
float operator reads DequantizeLinear outputs (8-bit activations, constant 8-bit weights,
int32 or float bias) and its result goes to one QuantizeLinear, possibly through Relu/Clip,
which then fuses. Each such operator becomes the TFLite operator of the same meaning
(Conv -> CONV_2D/DEPTHWISE_CONV_2D, Gemm/MatMul -> FULLY_CONNECTED, Add -> ADD...) reading the
8-bit tensors before the DequantizeLinear and writing the QuantizeLinear's output. The
requantisation is TFLite's fixed point, onnxruntime's is float: outputs may differ by 1 LSB.

- uint8 tensors become int8 with the zero point moved by -128 (the same real values);
- 4-D activations are kept NHWC, the kernels' layout; a TRANSPOSE is added only where the
  ONNX element order matters (a Reshape of a tensor with H, W > 1, a model output...);
- one-input elementwise operators (Sigmoid, Tanh, LeakyRelu, HardSwish...) become a 256-entry
  table computed by onnx's reference evaluator, so they follow ONNX's own arithmetic;
- an operator in the pattern without an integer kernel keeps its ONNX float form
  (dequantize -> operator -> quantize, through TVM's ONNX converter), with a warning.

A graph outside the pattern (float tensors between operators) raises NotQDQ: the caller then
compiles the model through TVM's ONNX frontend as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
from tvm import relax

from .tflite_int8 import Graph, Operator, Tensor
from .tflite_int8.converters import EXPLICIT, TABLE

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


class _FloatForm(Exception):
    """This operator is in the pattern but has no integer kernel: keep its float form."""


@dataclass(frozen=True)
class _Quant:
    scales: np.ndarray        # float32
    zero_points: np.ndarray   # int64, uint8 ones already moved by -128
    axis: int
    dtype: str                # the file's type: int8, uint8, int32

    @property
    def per_tensor(self) -> bool:
        return self.scales.size == 1

    def same(self, other: "_Quant") -> bool:
        return (self.per_tensor and other.per_tensor and self.scales[0] == other.scales[0]
                and self.zero_points[0] == other.zero_points[0])


@dataclass(frozen=True)
class _Value:
    """An 8-bit activation of the translated graph."""

    index: int                # its record
    nhwc: bool                # a 4-D tensor stored NHWC (the ONNX tensor is NCHW)
    quant: _Quant


@dataclass(frozen=True)
class QDQGraph:
    """A translated model: the records, and how many operators kept their float form."""

    graph: Graph
    float_operators: tuple[str, ...]


def translate_qdq(model: Any, shapes: dict[str, tuple[int, ...]]) -> QDQGraph:
    """`model` (shape-inferred, QOperators already rewritten) -> records, or NotQDQ.
    `shapes`: the static shape of every tensor the model declares or inference found."""
    return _Translator(model, shapes).run()


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


# ---------------------------------------------------------------- small readers

def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _nhwc_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(shape[a] for a in NHWC)


def _same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    effective = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + effective - size, 0)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def _spatial_padding(attrs: dict[str, Any], size: Sequence[int], kernel: Sequence[int],
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

class _Translator:
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
        self.values: dict[str, _Value] = {}          # ONNX 8-bit tensor -> its record
        self.dequantized: dict[str, str] = {}        # DequantizeLinear output -> 8-bit input
        self.constants: dict[str, tuple[np.ndarray, _Quant]] = {}  # DequantizeLinear of data
        self.input_records: dict[str, int] = {}
        self.output_records: dict[str, int] = {}
        self.absorbed: set[str] = set()  # first outputs of nodes already translated
        self.transposed: dict[tuple[int, bool], int] = {}
        self.floats: list[str] = []

    # ---- records
    def tensor(self, name: str, shape: Sequence[int], dtype: str, quant: Optional[_Quant] = None,
               data: Optional[np.ndarray] = None, axis: int = 0) -> int:
        scales = zeros = None
        if quant is not None:
            scales = quant.scales.astype(np.float32)
            zeros = quant.zero_points.astype(np.int64)
            axis = axis if quant.scales.size > 1 else 0
        self.tensors.append(Tensor(len(self.tensors), name, tuple(int(d) for d in shape), dtype,
                                   scales, zeros, axis, data))
        return len(self.tensors) - 1

    def constant(self, name: str, data: np.ndarray, quant: Optional[_Quant] = None,
                 axis: int = 0) -> int:
        data = np.ascontiguousarray(data)
        return self.tensor(name, data.shape, data.dtype.name, quant, data, axis)

    def operator(self, name: str, inputs: Sequence[int], outputs: Sequence[int],
                 raw: Any = None, **options: Any) -> None:
        self.operators.append(Operator(len(self.operators), name, tuple(inputs), tuple(outputs),
                                       raw, options))

    def int8_output(self, name: str, quant: _Quant, nhwc: bool) -> _Value:
        shape = self.shape(name)
        value = _Value(self.tensor(name, _nhwc_shape(shape) if nhwc else shape, "int8", quant),
                       nhwc, quant)
        self.values[name] = value
        return value

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.shapes:
            raise NotQDQ(f"the shape of '{name}' is unknown")
        return self.shapes[name]

    # ---- quantisation parameters
    def quant(self, node: Any, dtype: Optional[str] = None) -> _Quant:
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
        return _Quant(scales, zeros, int(_attrs(node).get("axis", 1)), dtype)

    # ---- values and layouts
    def source(self, name: str) -> _Value:
        """The 8-bit activation behind a DequantizeLinear output (or an 8-bit tensor)."""
        if name in self.dequantized:
            return self.values[self.dequantized[name]]
        if name in self.values:
            return self.values[name]
        raise NotQDQ(f"'{name}' is a float tensor that no DequantizeLinear produces")

    def layout(self, value: _Value, nhwc: bool) -> int:
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

    def onnx_order(self, value: _Value, shape: tuple[int, ...]) -> int:
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
            attrs = _attrs(node)
            return float(attrs.get("min", -np.inf)), float(attrs.get("max", np.inf))
        bounds = [-np.inf, np.inf]
        for k, name in enumerate(node.input[1:3]):
            if name:
                if name not in self.inits:
                    return np.nan, np.nan
                bounds[k] = float(self.inits[name])
        return bounds[0], bounds[1]

    # ---- driving
    def run(self) -> QDQGraph:
        for node in self.model.graph.node:
            if node.output[0] in self.absorbed:
                continue
            if node.domain not in ("", "ai.onnx"):
                raise NotQDQ(f"custom operator {node.domain}::{node.op_type}")
            handler = HANDLERS.get(node.op_type)
            if node.op_type in ELEMENTWISE:
                handler = _elementwise
            try:
                if handler is None:
                    raise _FloatForm(f"no integer kernel for {node.op_type}")
                handler(self, node)
            except _FloatForm as reason:
                self.float_form(node, str(reason))
        inputs = []
        for name in self.graph_inputs:
            if name not in self.input_records:
                raise NotQDQ(f"input '{name}' is not quantised")
            inputs.append(self.input_records[name])
        outputs = [self.output_record(name) for name in self.graph_outputs]
        graph = Graph(None, None, tuple(self.tensors), tuple(self.operators), tuple(inputs),
                      tuple(outputs))
        return QDQGraph(graph, tuple(self.floats))

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

    def graph_input(self, name: str, quant: Optional[_Quant]) -> int:
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
    def float_form(self, node: Any, reason: str) -> None:
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
        self.floats.append(f"{node.op_type}: {reason}")


# ---------------------------------------------------------------- handlers, one per operator

def _dequantize_linear(t: _Translator, node: Any) -> None:
    x, out = node.input[0], node.output[0]
    if x in t.inits:
        quant = t.quant(node, t.inits[x].dtype.name)
        t.constants[out] = (t.inits[x].astype(np.int64) - (128 if quant.dtype == "uint8" else 0),
                            quant)
        return
    if x in t.graph_inputs and x not in t.values:
        quant = t.quant(node)
        index = t.graph_input(x, quant)
        if quant.dtype == "uint8":  # the file's uint8 -> int8, same real values
            to_int8 = t.tensor(x + "_i8", t.shape(x), "int8", quant)
            t.operator(TABLE, [index], [to_int8], Values=(np.arange(256) - 128).astype(np.int8),
                       Name="from_uint8")
            index = to_int8
        t.values[x] = _Value(index, False, quant)
    value = t.source(x)
    if not value.quant.same(t.quant(node)):
        raise NotQDQ(f"DequantizeLinear '{node.name}' reads '{x}' with other parameters")
    t.dequantized[out] = x
    if out in t.graph_outputs:
        src = t.onnx_order(value, t.shape(out)) if value.nhwc else value.index
        t.output_records[out] = t.tensor(out, t.shape(out), "float32")
        t.operator("DEQUANTIZE", [src], [t.output_records[out]])


def _quantize_linear(t: _Translator, node: Any) -> None:
    x, quant = node.input[0], t.quant(node)
    if quant.dtype == "int32" or not quant.per_tensor:
        raise NotQDQ(f"QuantizeLinear '{node.name}' to {quant.dtype} per axis")
    if x in t.graph_inputs:
        index = t.graph_input(x, None)
        out = t.int8_output(node.output[0], quant, nhwc=False)
        t.operator("QUANTIZE", [index], [out.index])
        return
    src = t.source(x)
    if src.quant.same(quant):
        t.values[node.output[0]] = _Value(src.index, src.nhwc, quant)
        return
    out = t.int8_output(node.output[0], quant, src.nhwc)
    t.operator("QUANTIZE", [src.index], [out.index])


def _weights(t: _Translator, name: str, what: str) -> tuple[np.ndarray, _Quant]:
    if name not in t.constants or t.constants[name][1].dtype == "int32":
        raise _FloatForm(f"{what} are not constant 8-bit data")
    data, quant = t.constants[name]
    if np.any(quant.zero_points != 0):
        raise _FloatForm(f"{what} have a non-zero zero point")
    return data.astype(np.int8), quant


def _bias(t: _Translator, name: Optional[str], in_scale: float, w_scales: np.ndarray,
          channels: int) -> Optional[np.ndarray]:
    """int32 bias at scale input x weight (per channel), from DequantizeLinear or float."""
    if not name:
        return None
    scale = (np.float32(in_scale) * np.broadcast_to(w_scales, (channels,))).astype(np.float32)
    if name in t.constants:
        data, quant = t.constants[name]
        data = data.reshape(-1)
        if quant.dtype == "int32" and np.all(quant.zero_points == 0) and np.array_equal(
                np.broadcast_to(quant.scales, (channels,)), scale):
            return data.astype(np.int32)
        real = ((data - quant.zero_points) * quant.scales).astype(np.float32)
    elif name in t.inits:
        real = t.inits[name].astype(np.float32).reshape(-1)
    else:
        raise _FloatForm("the bias is computed at run time")
    return np.clip(np.rint(real / scale), -2**31, 2**31 - 1).astype(np.int32)


def _conv(t: _Translator, node: Any) -> None:
    attrs = _attrs(node)
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    if len(shape) != 4:
        raise _FloatForm("not a 2-D convolution")
    w, w_quant = _weights(t, node.input[1], "weights")
    q_node, activation, absorbed = t.output_quant(node)
    channels, group = w.shape[0], int(attrs.get("group", 1))
    if group == 1:
        name, weights, axis = "CONV_2D", w.transpose(0, 2, 3, 1), 0
    elif group == shape[1] and w.shape[1] == 1:
        name, weights, axis = "DEPTHWISE_CONV_2D", w.transpose(1, 2, 3, 0), 3
    else:
        raise _FloatForm("grouped convolution")
    if not x.quant.per_tensor:
        raise _FloatForm("per-axis input quantisation")
    kernel = w.shape[2:]
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    padding = _spatial_padding(attrs, shape[2:], kernel, strides, dilations)
    bias = _bias(t, node.input[2] if len(node.input) > 2 else None, x.quant.scales[0],
                 w_quant.scales, channels)
    t.absorbed.update(n.output[0] for n in absorbed)
    inputs = [t.layout(x, nhwc=True), t.constant(node.input[1], weights, w_quant, axis)]
    if bias is not None:
        inputs.append(t.constant(node.input[2], bias))
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc=True)
    t.operator(name, inputs, [out.index], raw=node, Padding=EXPLICIT, ExplicitPadding=padding,
               StrideH=strides[0], StrideW=strides[1], DilationHFactor=dilations[0],
               DilationWFactor=dilations[1], FusedActivationFunction=activation)


def _fully_connected(t: _Translator, node: Any, weights: np.ndarray, w_quant: _Quant,
                     bias_name: Optional[str]) -> None:
    """x (ONNX order) @ weights[units, depth]^T + bias, as FULLY_CONNECTED."""
    x = t.source(node.input[0])
    if not x.quant.per_tensor:
        raise _FloatForm("per-axis input quantisation")
    q_node, activation, absorbed = t.output_quant(node)
    bias = _bias(t, bias_name, x.quant.scales[0], w_quant.scales, weights.shape[0])
    t.absorbed.update(n.output[0] for n in absorbed)
    shape = t.shape(node.input[0])
    inputs = [t.onnx_order(x, shape) if x.nhwc else x.index,
              t.constant(node.input[1], np.ascontiguousarray(weights), w_quant, 0)]
    if bias is not None:
        inputs.append(t.constant(bias_name, bias))
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc=False)
    t.operator("FULLY_CONNECTED", inputs, [out.index], raw=node,
               FusedActivationFunction=activation, WeightsFormat=0)


def _gemm(t: _Translator, node: Any) -> None:
    attrs = _attrs(node)
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or (
            len(node.input) > 2 and attrs.get("beta", 1.0) != 1.0):
        raise _FloatForm("Gemm with transA, alpha or beta")
    if len(t.shape(node.input[0])) != 2:
        raise _FloatForm("Gemm of a tensor that is not 2-D")
    w, quant = _weights(t, node.input[1], "weights")
    if not attrs.get("transB", 0):
        w, quant = _transposed_matrix(w, quant)
    _fully_connected(t, node, w, quant, node.input[2] if len(node.input) > 2 else None)


def _transposed_matrix(w: np.ndarray, quant: _Quant) -> tuple[np.ndarray, _Quant]:
    """[depth, units] -> [units, depth]; per-axis scales must be along the units."""
    if not quant.per_tensor and quant.axis not in (1, -1):
        raise _FloatForm("weights quantised along the reduction axis")
    return w.T, quant


def _matmul(t: _Translator, node: Any) -> None:
    w, quant = _weights(t, node.input[1], "weights")
    if w.ndim != 2:
        raise _FloatForm("MatMul with weights that are not a matrix")
    _fully_connected(t, node, *_transposed_matrix(w, quant), None)


def _operand(t: _Translator, name: str, nhwc: bool, rank: int) -> int:
    """An Add/Mul operand in the wanted layout: activation or constant (broadcast-ready)."""
    if name in t.constants:
        data, quant = t.constants[name]
        if not quant.per_tensor or quant.dtype == "int32":
            raise _FloatForm("constant operand quantised per axis or int32")
        data = data.reshape((1,) * (rank - data.ndim) + data.shape)
        return t.constant(name, (data.transpose(NHWC) if nhwc else data).astype(np.int8), quant)
    value = t.source(name)
    if not value.quant.per_tensor:
        raise _FloatForm("per-axis operand")
    if len(t.shape(name)) != rank:
        raise _FloatForm("operands of different ranks")
    return t.layout(value, nhwc) if rank == 4 else value.index


def _binary(t: _Translator, node: Any) -> None:
    if any(n in t.inits for n in node.input):
        raise _FloatForm("a float constant operand")
    q_node, activation, absorbed = t.output_quant(node)
    rank = len(t.shape(q_node.output[0]))
    nhwc = rank == 4 and any(n in t.dequantized and t.source(n).nhwc for n in node.input)
    inputs = [_operand(t, n, nhwc, rank) for n in node.input]
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc)
    t.operator(node.op_type.upper(), inputs, [out.index], raw=node,
               FusedActivationFunction=activation)


def _pool(t: _Translator, node: Any) -> None:
    attrs = _attrs(node)
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    if len(shape) != 4 or attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise _FloatForm("pooling with ceil_mode, dilations or not 2-D")
    if node.op_type.startswith("Global"):
        kernel, strides, padding = shape[2:], (1, 1), ((0, 0), (0, 0))
    else:
        kernel = tuple(attrs["kernel_shape"])
        strides = tuple(attrs.get("strides", (1, 1)))
        padding = _spatial_padding(attrs, shape[2:], kernel, strides, (1, 1))
    if node.op_type == "AveragePool" and attrs.get("count_include_pad", 0) and any(map(any, padding)):
        raise _FloatForm("average pooling counting the padding")
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if not quant.same(x.quant):
        raise _FloatForm("pooling that changes the quantisation")
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(out_name, quant, nhwc=True)
    name = "MAX_POOL_2D" if "Max" in node.op_type else "AVERAGE_POOL_2D"
    t.operator(name, [t.layout(x, nhwc=True)], [out.index], raw=node, Padding=EXPLICIT,
               ExplicitPadding=padding, FilterHeight=kernel[0], FilterWidth=kernel[1],
               StrideH=strides[0], StrideW=strides[1], FusedActivationFunction=activation)


def _direct_or_quantised(t: _Translator, node: Any, x: _Value) -> tuple[str, _Quant, int, list]:
    """An operator reading an 8-bit tensor directly writes 8-bit with the same parameters;
    one reading a DequantizeLinear output writes what its QuantizeLinear says."""
    if node.input[0] in t.values and node.input[0] not in t.dequantized:
        return node.output[0], x.quant, 0, []
    q_node, activation, absorbed = t.output_quant(node)
    return q_node.output[0], t.quant(q_node), activation, absorbed


def _mean(t: _Translator, node: Any) -> None:
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    attrs = _attrs(node)
    if node.op_type == "GlobalAveragePool":
        axes, keep = list(range(2, len(shape))), True
    else:
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in t.inits:
            axes = t.inits[node.input[1]].tolist()
        if axes is None:
            raise _FloatForm("ReduceMean over all axes")
        keep = bool(attrs.get("keepdims", 1))
    axes = sorted(int(a) % len(shape) for a in axes)
    q_node, activation, absorbed = t.output_quant(node)
    if activation or not x.quant.per_tensor:
        raise _FloatForm("mean with an activation or per-axis input")
    nhwc = x.nhwc
    if nhwc and not keep:  # the kept axes must keep their ONNX order
        kept = [a for a in NHWC if a not in axes]
        nhwc = kept == sorted(kept)
    index = t.layout(x, nhwc) if len(shape) == 4 else x.index
    stored = [NHWC_AXIS[a] for a in axes] if nhwc else axes
    t.absorbed.update(n.output[0] for n in absorbed)
    # without keepdims the kept axes are in ONNX order (checked above)
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc=nhwc and keep)
    axes_index = t.constant(node.name + "_axes", np.array(stored, np.int32))
    t.operator("MEAN", [index, axes_index], [out.index], raw=node)


def _softmax(t: _Translator, node: Any) -> None:
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    axis = int(_attrs(node).get("axis", -1 if t.opset >= 13 else 1)) % len(shape)
    if axis != len(shape) - 1:
        raise _FloatForm("softmax over an axis that is not the last")
    q_node, activation, absorbed = t.output_quant(node)
    quant = t.quant(q_node)
    if activation or not (x.quant.per_tensor and quant.per_tensor):
        raise _FloatForm("softmax with an activation or per-axis quantisation")
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(q_node.output[0], quant, nhwc=False)
    index = t.onnx_order(x, shape) if x.nhwc else x.index
    t.operator("SOFTMAX", [index], [out.index], raw=node, Beta=1.0)


def _elementwise(t: _Translator, node: Any) -> None:
    """A one-input elementwise operator as a table over the 256 input values, computed by
    onnx's reference evaluator on DequantizeLinear -> operator -> QuantizeLinear."""
    if any(name and name not in t.inits for name in node.input[1:]):
        raise _FloatForm("an operand computed at run time")
    x = t.source(node.input[0])
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if activation:
        raise _FloatForm("followed by another activation")
    table = _reference_table(t, node, x.quant, quant)
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(out_name, quant, x.nhwc)
    t.operator(TABLE, [x.index], [out.index], raw=node, Values=table, Name=node.op_type.lower())


def _reference_table(t: _Translator, node: Any, qin: _Quant, qout: _Quant) -> np.ndarray:
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    if not (qin.per_tensor and qout.per_tensor):
        raise _FloatForm("per-axis quantisation")
    ins = np.arange(-128, 128, dtype=np.int8)
    consts = [numpy_helper.from_array(np.float32(qin.scales[0]), "si"),
              numpy_helper.from_array(np.int8(qin.zero_points[0]), "zi"),
              numpy_helper.from_array(np.float32(qout.scales[0]), "so"),
              numpy_helper.from_array(np.int8(qout.zero_points[0]), "zo")]
    consts += [numpy_helper.from_array(t.inits[n], n) for n in node.input[1:] if n]
    op = helper.make_node(node.op_type, ["f", *node.input[1:]], ["g"], **_attrs(node))
    nodes = [helper.make_node("DequantizeLinear", ["x", "si", "zi"], ["f"]), op,
             helper.make_node("QuantizeLinear", ["g", "so", "zo"], ["y"])]
    graph = helper.make_graph(nodes, "table", [helper.make_tensor_value_info(
        "x", TensorProto.INT8, [256])], [helper.make_tensor_value_info("y", TensorProto.INT8, [256])],
        consts)
    # the reference evaluator runs DequantizeLinear from opset 19; elementwise operators
    # have kept their meaning across versions
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(t.opset, 21))])
    try:
        (table,) = ReferenceEvaluator(model).run(None, {"x": ins})
    except Exception as exc:  # noqa: BLE001 - an operator the evaluator does not run
        raise _FloatForm(f"no table for {node.op_type}: {exc}") from None
    return np.asarray(table, np.int8)


def _data_movement(t: _Translator, node: Any) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity: on the ONNX element order
    (a Transpose of an NHWC tensor folds the layout into its permutation)."""
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if activation or not quant.same(x.quant):
        raise _FloatForm("data movement that changes the quantisation")
    t.absorbed.update(n.output[0] for n in absorbed)
    if node.op_type in PASS_THROUGH:
        t.values[out_name] = _Value(x.index, x.nhwc, quant)
        return
    out = t.int8_output(out_name, quant, nhwc=False)
    if node.op_type == "Transpose":
        perm = list(_attrs(node).get("perm", range(len(shape)))[::1])
        if x.nhwc:
            perm = [NHWC_AXIS[p] for p in perm]
        perm_index = t.constant(node.name + "_perm", np.array(perm, np.int32))
        t.operator("TRANSPOSE", [x.index, perm_index], [out.index], raw=node)
        return
    index = t.onnx_order(x, shape) if x.nhwc else x.index
    t.operator("RESHAPE", [index], [out.index], raw=node)


def _concat(t: _Translator, node: Any) -> None:
    values = [t.source(n) for n in node.input]
    rank = len(t.shape(node.input[0]))
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, values[0])
    if activation or not all(v.quant.same(quant) for v in values):
        raise _FloatForm("concatenation of differently quantised tensors")
    nhwc = rank == 4 and all(v.nhwc for v in values)
    axis = int(_attrs(node)["axis"]) % rank
    t.absorbed.update(n.output[0] for n in absorbed)
    inputs = [t.layout(v, nhwc) if rank == 4 else v.index for v in values]
    out = t.int8_output(out_name, quant, nhwc)
    t.operator("CONCATENATION", inputs, [out.index], raw=node,
               Axis=NHWC_AXIS[axis] if nhwc else axis, FusedActivationFunction=0)


def _pad(t: _Translator, node: Any) -> None:
    attrs = _attrs(node)
    mode = attrs.get("mode", b"constant")
    x = t.source(node.input[0])
    rank = len(t.shape(node.input[0]))
    pads = attrs.get("pads") if t.opset < 11 else (
        t.inits[node.input[1]].tolist() if node.input[1] in t.inits else None)
    if mode not in (b"constant", "constant") or pads is None or len(node.input) > 3:
        raise _FloatForm("Pad that is not constant with constant pads")
    if len(node.input) > 2 and node.input[2]:
        value = node.input[2]
        zero = (t.constants[value][0].reshape(-1)[0] if value in t.constants
                else t.inits.get(value, np.ones(1)).reshape(-1)[0])
        if value in t.constants and zero != t.constants[value][1].zero_points[0] or (
                value not in t.constants and zero != 0):
            raise _FloatForm("Pad with a value other than zero")
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if activation or not quant.same(x.quant):
        raise _FloatForm("Pad that changes the quantisation")
    pairs = np.array([[pads[a], pads[a + rank]] for a in range(rank)], np.int32)
    nhwc = x.nhwc
    if nhwc:
        pairs = pairs[list(NHWC)]
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(out_name, quant, nhwc)
    t.operator("PAD", [x.index, t.constant(node.name + "_pads", pairs)], [out.index], raw=node)


HANDLERS: dict[str, Callable[[_Translator, Any], None]] = {
    "DequantizeLinear": _dequantize_linear,
    "QuantizeLinear": _quantize_linear,
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary,
    "Mul": _binary,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalMaxPool": _pool,
    "GlobalAveragePool": _mean,
    "ReduceMean": _mean,
    "Softmax": _softmax,
    "Concat": _concat,
    "Pad": _pad,
    "Transpose": _data_movement,
    **{op: _data_movement for op in RESHAPES | PASS_THROUGH},
}


# ---------------------------------------------------------------- the float form

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
