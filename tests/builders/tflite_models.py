"""Tiny TFLite flatbuffers built in code with the ``tflite`` package (no TensorFlow).

``TFLiteGraph`` is a small generic builder: add tensors (optionally constant and/or
quantised) and operators (builtin code + inputs/outputs + options), then ``to_bytes()``.
The ready builders below return ``bytes``; every "good" one loads and runs in LiteRT.
Weights are drawn from ``numpy.random.default_rng(seed)``, so models are reproducible.
Float activations are NHWC; conv weights are OHWI, depthwise weights 1HWC, FC weights [out, in].
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import flatbuffers
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

Options = tuple[str, dict[str, Any]]
"""Operator options: (options table name, {field: value}), e.g.
``("Conv2DOptions", {"Padding": Padding.SAME, "StrideW": 1})``. Field names are the
``<Table>Add<Field>`` suffixes of the generated ``tflite`` functions; list values become
int32 vectors and str values become strings."""

TENSOR_TYPES: dict[str, int] = {
    "float32": TensorType.FLOAT32,
    "float16": TensorType.FLOAT16,
    "int8": TensorType.INT8,
    "uint8": TensorType.UINT8,
    "int16": TensorType.INT16,
    "int32": TensorType.INT32,
    "int64": TensorType.INT64,
    "bool": TensorType.BOOL,
    "resource": TensorType.RESOURCE,
}
BUFFER_ALIGNMENT = 16
SOFTMAX_INT8_SCALE = 1.0 / 256.0
SOFTMAX_INT8_ZERO_POINT = -128


def _table(name: str) -> Any:
    """The generated ``tflite.<name>`` module (``tflite.<name>`` itself is shadowed by the class)."""
    return importlib.import_module(f"tflite.{name}")


def _type_name(dtype: Any) -> str:
    """Canonical type name for a numpy dtype or a string such as "resource"."""
    return dtype if dtype == "resource" else np.dtype(dtype).name


@dataclass(frozen=True)
class Quantization:
    """Affine quantisation: real = scale * (q - zero_point), per tensor or along ``axis``."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0


@dataclass(frozen=True)
class Sparsity:
    """TFLite SparsityParameters: ``levels`` in traversal order, each ``("DENSE", size)`` or
    ``("CSR", segments, indices)`` (int32 vectors)."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    levels: tuple[tuple[Any, ...], ...]


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    type_name: str
    buffer: int
    quant: Quantization | None
    sparsity: Sparsity | None = None
    shape_signature: tuple[int, ...] | None = None
    variable: bool = False


@dataclass
class _Operator:
    opcode: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Options | None
    custom_options: bytes | None
    intermediates: tuple[int, ...] = ()


@dataclass
class _Subgraph:
    name: str
    tensors: list[_Tensor] = field(default_factory=list)
    operators: list[_Operator] = field(default_factory=list)
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()


class TFLiteGraph:
    """Builder of a TFLite model: subgraph 0 is the main graph, more can be added."""

    def __init__(self, description: str = "tvmc-multimodule test model") -> None:
        self.description = description
        self._buffers: list[bytes] = [b""]  # buffer 0 must be the empty sentinel
        self._opcodes: list[tuple[int, str | None, int]] = []
        self._subgraphs: list[_Subgraph] = [_Subgraph("main")]

    def add_subgraph(self, name: str) -> int:
        """Add an empty subgraph (e.g. a WHILE body); returns its index."""
        self._subgraphs.append(_Subgraph(name))
        return len(self._subgraphs) - 1

    def add_tensor(
        self,
        name: str,
        shape: Sequence[int],
        dtype: Any = "float32",
        data: np.ndarray | None = None,
        *,
        scale: float | Sequence[float] | None = None,
        zero_point: int | Sequence[int] = 0,
        axis: int = 0,
        subgraph: int = 0,
        sparsity: Sparsity | None = None,
        shape_signature: Sequence[int] | None = None,
        variable: bool = False,
    ) -> int:
        """Add a tensor (constant if ``data`` is given, quantised if ``scale`` is); returns its index.
        With ``sparsity``, ``data`` is the flat array of stored values."""
        type_name = _type_name(dtype)
        buffer = 0
        if data is not None:
            array = np.array(data, dtype=type_name, order="C")  # (ascontiguousarray: 0-d -> 1-d)
            if sparsity is None and array.shape != tuple(shape):
                raise ValueError(f"{name}: data shape {array.shape} != {tuple(shape)}")
            self._buffers.append(array.tobytes())
            buffer = len(self._buffers) - 1
        quant = None
        if scale is not None:
            scales = tuple(float(s) for s in np.atleast_1d(scale))
            zero_points = tuple(int(z) for z in np.atleast_1d(zero_point))
            if len(zero_points) == 1 and len(scales) > 1:
                zero_points *= len(scales)
            quant = Quantization(scales, zero_points, axis)
        tensors = self._subgraphs[subgraph].tensors
        signature = None if shape_signature is None else tuple(int(d) for d in shape_signature)
        tensors.append(_Tensor(name, tuple(int(d) for d in shape), type_name, buffer, quant,
                               sparsity, signature, variable))
        return len(tensors) - 1

    def add_const(self, name: str, data: np.ndarray, **quant: Any) -> int:
        """Add a constant tensor whose shape and dtype come from ``data``."""
        data = np.asarray(data)
        return self.add_tensor(name, data.shape, data.dtype, data, **quant)

    def add_operator(
        self,
        op: str | int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: Options | None = None,
        *,
        version: int = 1,
        custom_code: str | None = None,
        custom_options: bytes | None = None,
        subgraph: int = 0,
        intermediates: Sequence[int] = (),
    ) -> None:
        """Append an operator; ``op`` is a BuiltinOperator name/value (CUSTOM needs ``custom_code``).
        ``intermediates``: tensors the converter records for quantised LSTMs."""
        code = getattr(BuiltinOperator, op) if isinstance(op, str) else int(op)
        key = (code, custom_code, version)
        if key not in self._opcodes:
            self._opcodes.append(key)
        operator = _Operator(self._opcodes.index(key), tuple(inputs), tuple(outputs), options,
                             custom_options, tuple(intermediates))
        self._subgraphs[subgraph].operators.append(operator)

    def set_io(self, inputs: Sequence[int], outputs: Sequence[int], subgraph: int = 0) -> None:
        """Declare a subgraph's input and output tensors, in order."""
        sg = self._subgraphs[subgraph]
        sg.inputs, sg.outputs = tuple(inputs), tuple(outputs)

    def to_bytes(self) -> bytes:
        """Serialise to a .tflite flatbuffer (schema version 3, identifier TFL3)."""
        b = flatbuffers.Builder(4096)
        buffers = [_write_buffer(b, data) for data in self._buffers]
        subgraphs = [_write_subgraph(b, sg) for sg in self._subgraphs]
        opcodes = [_write_opcode(b, *key) for key in self._opcodes]
        description = b.CreateString(self.description)
        m = _table("Model")
        opcodes_vec = _offsets(b, m.ModelStartOperatorCodesVector, opcodes)
        subgraphs_vec = _offsets(b, m.ModelStartSubgraphsVector, subgraphs)
        buffers_vec = _offsets(b, m.ModelStartBuffersVector, buffers)
        m.ModelStart(b)
        m.ModelAddVersion(b, 3)
        m.ModelAddOperatorCodes(b, opcodes_vec)
        m.ModelAddSubgraphs(b, subgraphs_vec)
        m.ModelAddDescription(b, description)
        m.ModelAddBuffers(b, buffers_vec)
        b.Finish(m.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# ---------------------------------------------------------------- serialisation helpers


def _offsets(b: flatbuffers.Builder, start_vector: Callable, offsets: Sequence[int]) -> int:
    """A vector of table offsets."""
    start_vector(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _ints(b: flatbuffers.Builder, values: Sequence[int], dtype: Any = np.int32) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=dtype).reshape(-1))


def _write_buffer(b: flatbuffers.Builder, data: bytes) -> int:
    buf = _table("Buffer")
    data_vec = None
    if data:
        b.Prep(BUFFER_ALIGNMENT, len(data))  # align the payload start for the runtimes
        data_vec = b.CreateNumpyVector(np.frombuffer(data, dtype=np.uint8))
    buf.BufferStart(b)
    if data_vec is not None:
        buf.BufferAddData(b, data_vec)
    return buf.BufferEnd(b)


def _write_quantization(b: flatbuffers.Builder, q: Quantization) -> int:
    qp = _table("QuantizationParameters")
    scale = b.CreateNumpyVector(np.asarray(q.scale, dtype=np.float32))
    zero_point = _ints(b, q.zero_point, np.int64)
    qp.QuantizationParametersStart(b)
    qp.QuantizationParametersAddScale(b, scale)
    qp.QuantizationParametersAddZeroPoint(b, zero_point)
    qp.QuantizationParametersAddQuantizedDimension(b, q.axis)
    return qp.QuantizationParametersEnd(b)


def _write_index_vector(b: flatbuffers.Builder, values: Sequence[int]) -> int:
    iv = _table("Int32Vector")
    vec = _ints(b, values)
    iv.Int32VectorStart(b)
    iv.Int32VectorAddValues(b, vec)
    return iv.Int32VectorEnd(b)


def _write_sparsity(b: flatbuffers.Builder, sp: Sparsity) -> int:
    from tflite.DimensionType import DimensionType
    from tflite.SparseIndexVector import SparseIndexVector

    dm = _table("DimensionMetadata")
    metas = []
    for level in sp.levels:
        if level[0] == "DENSE":
            dm.DimensionMetadataStart(b)
            dm.DimensionMetadataAddFormat(b, DimensionType.DENSE)
            dm.DimensionMetadataAddDenseSize(b, int(level[1]))
        else:
            segments = _write_index_vector(b, level[1])
            indices = _write_index_vector(b, level[2])
            dm.DimensionMetadataStart(b)
            dm.DimensionMetadataAddFormat(b, DimensionType.SPARSE_CSR)
            dm.DimensionMetadataAddArraySegmentsType(b, SparseIndexVector.Int32Vector)
            dm.DimensionMetadataAddArraySegments(b, segments)
            dm.DimensionMetadataAddArrayIndicesType(b, SparseIndexVector.Int32Vector)
            dm.DimensionMetadataAddArrayIndices(b, indices)
        metas.append(dm.DimensionMetadataEnd(b))
    spm = _table("SparsityParameters")
    order = _ints(b, sp.traversal_order)
    block_map = _ints(b, sp.block_map) if sp.block_map else None
    metas_vec = _offsets(b, spm.SparsityParametersStartDimMetadataVector, metas)
    spm.SparsityParametersStart(b)
    spm.SparsityParametersAddTraversalOrder(b, order)
    if block_map is not None:
        spm.SparsityParametersAddBlockMap(b, block_map)
    spm.SparsityParametersAddDimMetadata(b, metas_vec)
    return spm.SparsityParametersEnd(b)


def _write_tensor(b: flatbuffers.Builder, t: _Tensor) -> int:
    tm = _table("Tensor")
    name = b.CreateString(t.name)
    shape = _ints(b, t.shape)
    quant = _write_quantization(b, t.quant) if t.quant is not None else None
    sparsity = _write_sparsity(b, t.sparsity) if t.sparsity is not None else None
    signature = _ints(b, t.shape_signature) if t.shape_signature is not None else None
    tm.TensorStart(b)
    tm.TensorAddShape(b, shape)
    if sparsity is not None:
        tm.TensorAddSparsity(b, sparsity)
    if signature is not None:
        tm.TensorAddShapeSignature(b, signature)
    tm.TensorAddType(b, TENSOR_TYPES[t.type_name])
    if t.variable:
        tm.TensorAddIsVariable(b, True)
    tm.TensorAddBuffer(b, t.buffer)
    tm.TensorAddName(b, name)
    if quant is not None:
        tm.TensorAddQuantization(b, quant)
    return tm.TensorEnd(b)


def _write_options(b: flatbuffers.Builder, options: Options) -> tuple[int, int]:
    """Serialise an options table; returns (offset, BuiltinOptions union type)."""
    name, fields = options
    mod = _table(name)
    values: dict[str, Any] = {}
    for key, value in fields.items():  # nested objects must precede the table
        if isinstance(value, str):
            values[key] = b.CreateString(value)
        elif isinstance(value, (list, tuple, np.ndarray)):
            values[key] = _ints(b, value)
        else:
            values[key] = value
    getattr(mod, f"{name}Start")(b)
    for key, value in values.items():
        getattr(mod, f"{name}Add{key}")(b, value)
    return getattr(mod, f"{name}End")(b), getattr(BuiltinOptions, name)


def _write_operator(b: flatbuffers.Builder, op: _Operator) -> int:
    om = _table("Operator")
    inputs, outputs = _ints(b, op.inputs), _ints(b, op.outputs)
    intermediates = _ints(b, op.intermediates) if op.intermediates else None
    opts = _write_options(b, op.options) if op.options is not None else None
    custom = b.CreateNumpyVector(np.frombuffer(op.custom_options, np.uint8)) if op.custom_options else None
    om.OperatorStart(b)
    om.OperatorAddOpcodeIndex(b, op.opcode)
    om.OperatorAddInputs(b, inputs)
    om.OperatorAddOutputs(b, outputs)
    if opts is not None:
        om.OperatorAddBuiltinOptionsType(b, opts[1])
        om.OperatorAddBuiltinOptions(b, opts[0])
    if custom is not None:
        om.OperatorAddCustomOptions(b, custom)
    if intermediates is not None:
        om.OperatorAddIntermediates(b, intermediates)
    return om.OperatorEnd(b)


def _write_subgraph(b: flatbuffers.Builder, sg: _Subgraph) -> int:
    sm = _table("SubGraph")
    tensors = _offsets(b, sm.SubGraphStartTensorsVector, [_write_tensor(b, t) for t in sg.tensors])
    operators = _offsets(b, sm.SubGraphStartOperatorsVector, [_write_operator(b, o) for o in sg.operators])
    inputs, outputs = _ints(b, sg.inputs), _ints(b, sg.outputs)
    name = b.CreateString(sg.name)
    sm.SubGraphStart(b)
    sm.SubGraphAddTensors(b, tensors)
    sm.SubGraphAddInputs(b, inputs)
    sm.SubGraphAddOutputs(b, outputs)
    sm.SubGraphAddOperators(b, operators)
    sm.SubGraphAddName(b, name)
    return sm.SubGraphEnd(b)


def _write_opcode(b: flatbuffers.Builder, code: int, custom_code: str | None, version: int) -> int:
    oc = _table("OperatorCode")
    custom = b.CreateString(custom_code) if custom_code is not None else None
    oc.OperatorCodeStart(b)
    # LiteRT reads max(builtin_code, deprecated_builtin_code): both must be set.
    oc.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES))
    oc.OperatorCodeAddBuiltinCode(b, code)
    oc.OperatorCodeAddVersion(b, version)
    if custom is not None:
        oc.OperatorCodeAddCustomCode(b, custom)
    return oc.OperatorCodeEnd(b)


# ---------------------------------------------------------------- numeric helpers


def _weights(rng: np.random.Generator, shape: Sequence[int], std: float = 0.3) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(np.float32)


def quantize_per_channel(w: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation along ``axis`` (range [-127, 127], zero point 0)."""
    reduce_axes = tuple(i for i in range(w.ndim) if i != axis)
    scale = np.maximum(np.abs(w).max(axis=reduce_axes), 1e-8) / 127.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def asymmetric_qparams(lo: float, hi: float) -> tuple[float, int]:
    """int8 (scale, zero_point) covering [lo, hi] (widened to contain 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    zero_point = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return scale, zero_point


def _conv2d_nhwc_valid(x: np.ndarray, w_ohwi: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Float NHWC convolution, stride 1, VALID padding (numpy reference for calibration)."""
    windows = sliding_window_view(x, w_ohwi.shape[1:3], axis=(1, 2))  # N, OH, OW, C, KH, KW
    return np.einsum("nhwcij,oijc->nhwo", windows, w_ohwi) + bias


def _fused(activation: str) -> int:
    return getattr(ActivationFunctionType, activation)


# ---------------------------------------------------------------- float32 models


def conv2d(padding: str = "SAME", relu: bool = True, stride: int = 1, seed: int = 0) -> bytes:
    """x[1,8,8,3] f32 -> CONV_2D 3x3x4 (+bias, optional fused RELU) -> y[1,OH,OW,4] f32.

    OH = ceil(8/stride) for SAME, ceil(6/stride) for VALID."""
    rng = np.random.default_rng(seed)
    out = -(-8 // stride) if padding == "SAME" else -(-6 // stride)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8, 8, 3])
    w = g.add_const("conv/weights", _weights(rng, [4, 3, 3, 3]))
    b = g.add_const("conv/bias", _weights(rng, [4], 0.1))
    y = g.add_tensor("y", [1, out, out, 4])
    opts = {"Padding": getattr(Padding, padding), "StrideW": stride, "StrideH": stride,
            "DilationWFactor": 1, "DilationHFactor": 1,
            "FusedActivationFunction": _fused("RELU" if relu else "NONE")}
    g.add_operator("CONV_2D", [x, w, b], [y], ("Conv2DOptions", opts))
    g.set_io([x], [y])
    return g.to_bytes()


def depthwise_conv2d(seed: int = 1) -> bytes:
    """x[1,8,8,4] f32 -> DEPTHWISE_CONV_2D 3x3 (multiplier 1, SAME, +bias, RELU6) -> y[1,8,8,4] f32."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8, 8, 4])
    w = g.add_const("dw/weights", _weights(rng, [1, 3, 3, 4]))
    b = g.add_const("dw/bias", _weights(rng, [4], 0.1))
    y = g.add_tensor("y", [1, 8, 8, 4])
    opts = {"Padding": Padding.SAME, "StrideW": 1, "StrideH": 1, "DepthMultiplier": 1,
            "DilationWFactor": 1, "DilationHFactor": 1, "FusedActivationFunction": _fused("RELU6")}
    g.add_operator("DEPTHWISE_CONV_2D", [x, w, b], [y], ("DepthwiseConv2DOptions", opts))
    g.set_io([x], [y])
    return g.to_bytes()


def fully_connected(seed: int = 2) -> bytes:
    """x[1,16] f32 -> FULLY_CONNECTED 8 (+bias, RELU) -> y[1,8] f32."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 16])
    w = g.add_const("fc/weights", _weights(rng, [8, 16]))
    b = g.add_const("fc/bias", _weights(rng, [8], 0.1))
    y = g.add_tensor("y", [1, 8])
    g.add_operator("FULLY_CONNECTED", [x, w, b], [y],
                   ("FullyConnectedOptions", {"FusedActivationFunction": _fused("RELU")}))
    g.set_io([x], [y])
    return g.to_bytes()


def pool2d(kind: str = "MAX") -> bytes:
    """x[1,8,8,3] f32 -> MAX_POOL_2D or AVERAGE_POOL_2D 2x2 stride 2 VALID -> y[1,4,4,3] f32."""
    op = {"MAX": "MAX_POOL_2D", "AVG": "AVERAGE_POOL_2D"}[kind]
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8, 8, 3])
    y = g.add_tensor("y", [1, 4, 4, 3])
    opts = {"Padding": Padding.VALID, "StrideW": 2, "StrideH": 2, "FilterWidth": 2, "FilterHeight": 2,
            "FusedActivationFunction": _fused("NONE")}
    g.add_operator(op, [x], [y], ("Pool2DOptions", opts))
    g.set_io([x], [y])
    return g.to_bytes()


def binary(op: str = "ADD", seed: int = 3) -> bytes:
    """x[1,4,4,3] f32 (ADD|MUL) constant c[3] (broadcast) -> y[1,4,4,3] f32."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 4, 3])
    c = g.add_const("c", _weights(rng, [3], 1.0))
    y = g.add_tensor("y", [1, 4, 4, 3])
    opts_name = {"ADD": "AddOptions", "MUL": "MulOptions"}[op]
    g.add_operator(op, [x, c], [y], (opts_name, {"FusedActivationFunction": _fused("NONE")}))
    g.set_io([x], [y])
    return g.to_bytes()


def activation(op: str = "RELU") -> bytes:
    """x[1,4,4,3] f32 -> RELU | RELU6 | LOGISTIC | TANH -> y[1,4,4,3] f32."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 4, 3])
    y = g.add_tensor("y", [1, 4, 4, 3])
    g.add_operator(op, [x], [y])
    g.set_io([x], [y])
    return g.to_bytes()


def softmax() -> bytes:
    """x[1,10] f32 -> SOFTMAX (beta 1) -> y[1,10] f32."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 10])
    y = g.add_tensor("y", [1, 10])
    g.add_operator("SOFTMAX", [x], [y], ("SoftmaxOptions", {"Beta": 1.0}))
    g.set_io([x], [y])
    return g.to_bytes()


def reshape() -> bytes:
    """x[1,4,4,3] f32 -> RESHAPE (shape tensor [1,48]) -> y[1,48] f32."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 4, 3])
    shape = g.add_const("shape", np.array([1, 48], np.int32))
    y = g.add_tensor("y", [1, 48])
    g.add_operator("RESHAPE", [x, shape], [y], ("ReshapeOptions", {"NewShape": [1, 48]}))
    g.set_io([x], [y])
    return g.to_bytes()


def concatenation() -> bytes:
    """a[1,4,4,3] f32, b[1,4,4,5] f32 -> CONCATENATION axis 3 -> y[1,4,4,8] f32."""
    g = TFLiteGraph()
    a = g.add_tensor("a", [1, 4, 4, 3])
    b = g.add_tensor("b", [1, 4, 4, 5])
    y = g.add_tensor("y", [1, 4, 4, 8])
    g.add_operator("CONCATENATION", [a, b], [y],
                   ("ConcatenationOptions", {"Axis": 3, "FusedActivationFunction": _fused("NONE")}))
    g.set_io([a, b], [y])
    return g.to_bytes()


def pad() -> bytes:
    """x[1,4,4,3] f32 -> PAD zeros (H 1+1, W 2+2) -> y[1,6,8,3] f32."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 4, 3])
    paddings = g.add_const("paddings", np.array([[0, 0], [1, 1], [2, 2], [0, 0]], np.int32))
    y = g.add_tensor("y", [1, 6, 8, 3])
    g.add_operator("PAD", [x, paddings], [y], ("PadOptions", {}))
    g.set_io([x], [y])
    return g.to_bytes()


def mean() -> bytes:
    """x[1,4,4,3] f32 -> MEAN over axes (1,2), keep_dims -> y[1,1,1,3] f32."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 4, 3])
    axes = g.add_const("axes", np.array([1, 2], np.int32))
    y = g.add_tensor("y", [1, 1, 1, 3])
    g.add_operator("MEAN", [x, axes], [y], ("ReducerOptions", {"KeepDims": True}))
    g.set_io([x], [y])
    return g.to_bytes()


def two_in_two_out(seed: int = 4) -> bytes:
    """a[1,8], b[1,8] f32 -> outputs (in this order) prod = FC(a*b)[1,4] and sum = a+b [1,8] f32.

    The output order differs from the tensor creation order on purpose."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    a = g.add_tensor("a", [1, 8])
    b = g.add_tensor("b", [1, 8])
    total = g.add_tensor("sum", [1, 8])
    product = g.add_tensor("mul", [1, 8])
    w = g.add_const("fc/weights", _weights(rng, [4, 8]))
    bias = g.add_const("fc/bias", _weights(rng, [4], 0.1))
    prod = g.add_tensor("prod", [1, 4])
    none = {"FusedActivationFunction": _fused("NONE")}
    g.add_operator("ADD", [a, b], [total], ("AddOptions", none))
    g.add_operator("MUL", [a, b], [product], ("MulOptions", none))
    g.add_operator("FULLY_CONNECTED", [product, w, bias], [prod], ("FullyConnectedOptions", none))
    g.set_io([a, b], [prod, total])
    return g.to_bytes()


# ---------------------------------------------------------------- int8 model


def int8_conv_fc_softmax(seed: int = 5) -> bytes:
    """Full-int8, QUANTIZE-free: x[1,8,8,3] int8 (scale 1/128, zp 0)
    -> CONV_2D 3x3x8 VALID + RELU (per-channel int8 weights, int32 bias) -> [1,6,6,8]
    -> RESHAPE [1,288] -> FULLY_CONNECTED 10 -> SOFTMAX -> y[1,10] int8 (scale 1/256, zp -128).

    Activation ranges are calibrated on random inputs with a float numpy reference."""
    rng = np.random.default_rng(seed)
    w1, b1 = _weights(rng, [8, 3, 3, 3]), _weights(rng, [8], 0.1)
    w2, b2 = _weights(rng, [10, 288], 0.1), _weights(rng, [10], 0.1)
    s_x = 1.0 / 128.0
    xs = rng.integers(-128, 128, size=(32, 8, 8, 3)).astype(np.float32) * s_x
    conv = np.maximum(_conv2d_nhwc_valid(xs, w1, b1), 0.0)
    fc = conv.reshape(len(xs), -1) @ w2.T + b2
    s_c, zp_c = asymmetric_qparams(0.0, conv.max())
    s_f, zp_f = asymmetric_qparams(fc.min(), fc.max())
    w1_q, s_w1 = quantize_per_channel(w1, axis=0)
    w2_q, s_w2 = quantize_per_channel(w2, axis=0)
    s_b1 = s_x * s_w1
    s_b2 = s_c * s_w2
    b1_q = np.round(b1 / s_b1).astype(np.int32)
    b2_q = np.round(b2 / s_b2).astype(np.int32)

    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8, 8, 3], "int8", scale=s_x, zero_point=0)
    t_w1 = g.add_const("conv/weights", w1_q, scale=s_w1, zero_point=0, axis=0)
    t_b1 = g.add_const("conv/bias", b1_q, scale=s_b1, zero_point=0, axis=0)
    t_c = g.add_tensor("conv/out", [1, 6, 6, 8], "int8", scale=s_c, zero_point=zp_c)
    shape = g.add_const("shape", np.array([1, 288], np.int32))
    t_r = g.add_tensor("flatten", [1, 288], "int8", scale=s_c, zero_point=zp_c)
    t_w2 = g.add_const("fc/weights", w2_q, scale=s_w2, zero_point=0, axis=0)
    t_b2 = g.add_const("fc/bias", b2_q, scale=s_b2, zero_point=0, axis=0)
    t_f = g.add_tensor("fc/out", [1, 10], "int8", scale=s_f, zero_point=zp_f)
    y = g.add_tensor("y", [1, 10], "int8", scale=SOFTMAX_INT8_SCALE, zero_point=SOFTMAX_INT8_ZERO_POINT)
    conv_opts = {"Padding": Padding.VALID, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
                 "DilationHFactor": 1, "FusedActivationFunction": _fused("RELU")}
    g.add_operator("CONV_2D", [x, t_w1, t_b1], [t_c], ("Conv2DOptions", conv_opts), version=3)
    g.add_operator("RESHAPE", [t_c, shape], [t_r], ("ReshapeOptions", {"NewShape": [1, 288]}))
    g.add_operator("FULLY_CONNECTED", [t_r, t_w2, t_b2], [t_f],
                   ("FullyConnectedOptions", {"FusedActivationFunction": _fused("NONE")}), version=4)
    g.add_operator("SOFTMAX", [t_f], [y], ("SoftmaxOptions", {"Beta": 1.0}), version=2)
    g.set_io([x], [y])
    return g.to_bytes()


# ---------------------------------------------------------------- bad models (error tests)


def custom_op() -> bytes:
    """x[1,4] f32 -> RELU -> CUSTOM "MyCustom" -> y[1,4]. LiteRT cannot resolve the op."""
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4])
    t = g.add_tensor("relu", [1, 4])
    y = g.add_tensor("y", [1, 4])
    g.add_operator("RELU", [x], [t])
    g.add_operator("CUSTOM", [t], [y], custom_code="MyCustom", custom_options=b"\x00")
    g.set_io([x], [y])
    return g.to_bytes()


def while_loop() -> bytes:
    """x[1] f32 -> WHILE (cond subgraph: v < 10; body subgraph: v + 1) -> y[1] f32. Three subgraphs."""
    g = TFLiteGraph()
    cond, body = g.add_subgraph("cond"), g.add_subgraph("body")
    x = g.add_tensor("x", [1])
    y = g.add_tensor("y", [1])
    g.add_operator("WHILE", [x], [y], ("WhileOptions", {"CondSubgraphIndex": cond, "BodySubgraphIndex": body}))
    g.set_io([x], [y])

    v = g.add_tensor("v", [1], subgraph=cond)
    limit = g.add_tensor("limit", [1], "float32", np.array([10.0], np.float32), subgraph=cond)
    keep_going = g.add_tensor("keep_going", [1], "bool", subgraph=cond)
    g.add_operator("LESS", [v, limit], [keep_going], subgraph=cond)
    g.set_io([v], [keep_going], subgraph=cond)

    v = g.add_tensor("v", [1], subgraph=body)
    one = g.add_tensor("one", [1], "float32", np.array([1.0], np.float32), subgraph=body)
    nxt = g.add_tensor("next", [1], subgraph=body)
    g.add_operator("ADD", [v, one], [nxt], ("AddOptions", {"FusedActivationFunction": _fused("NONE")}),
                   subgraph=body)
    g.set_io([v], [nxt], subgraph=body)
    return g.to_bytes()


def stateful() -> bytes:
    """x[1,4] f32 -> y[1,4] = running sum of x over invokes (resource variable "acc").

    Main: CALL_ONCE(init) ; VAR_HANDLE ; READ_VARIABLE ; ADD ; ASSIGN_VARIABLE.
    Subgraph 1 (init): VAR_HANDLE ; ASSIGN_VARIABLE(zeros)."""
    g = TFLiteGraph()
    init = g.add_subgraph("init")
    handle_opts = ("VarHandleOptions", {"SharedName": "acc"})

    h = g.add_tensor("acc_handle", [], "resource", subgraph=init)
    zeros = g.add_tensor("zeros", [1, 4], "float32", np.zeros((1, 4), np.float32), subgraph=init)
    g.add_operator("VAR_HANDLE", [], [h], handle_opts, subgraph=init)
    g.add_operator("ASSIGN_VARIABLE", [h, zeros], [], subgraph=init)
    g.set_io([], [], subgraph=init)

    x = g.add_tensor("x", [1, 4])
    h = g.add_tensor("acc_handle", [], "resource")
    prev = g.add_tensor("acc", [1, 4])
    y = g.add_tensor("y", [1, 4])
    g.add_operator("CALL_ONCE", [], [], ("CallOnceOptions", {"InitSubgraphIndex": init}))
    g.add_operator("VAR_HANDLE", [], [h], handle_opts)
    g.add_operator("READ_VARIABLE", [h], [prev])
    g.add_operator("ADD", [prev, x], [y], ("AddOptions", {"FusedActivationFunction": _fused("NONE")}))
    g.add_operator("ASSIGN_VARIABLE", [h, y], [])
    g.set_io([x], [y])
    return g.to_bytes()


def dynamic_range_fc(seed: int = 6) -> bytes:
    """Dynamic-range (hybrid): x[1,16] f32 -> FULLY_CONNECTED with int8 weights [8,16]
    (per-tensor scale) and f32 bias -> y[1,8] f32."""
    rng = np.random.default_rng(seed)
    w = _weights(rng, [8, 16])
    scale = float(np.abs(w).max() / 127.0)
    w_q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 16])
    t_w = g.add_const("fc/weights", w_q, scale=scale, zero_point=0)
    t_b = g.add_const("fc/bias", _weights(rng, [8], 0.1))
    y = g.add_tensor("y", [1, 8])
    g.add_operator("FULLY_CONNECTED", [x, t_w, t_b], [y],
                   ("FullyConnectedOptions", {"FusedActivationFunction": _fused("NONE")}), version=3)
    g.set_io([x], [y])
    return g.to_bytes()


def dynamic_range_batch_matmul(seed: int = 6) -> bytes:
    """Dynamic-range (hybrid) BATCH_MATMUL, which we do not compile: x[1,4,16] f32 times
    int8 constant [16,8] (per-tensor scale) -> y[1,4,8] f32."""
    rng = np.random.default_rng(seed)
    w = _weights(rng, [16, 8])
    scale = float(np.abs(w).max() / 127.0)
    w_q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4, 16])
    t_w = g.add_const("w", w_q, scale=scale, zero_point=0)
    y = g.add_tensor("y", [1, 4, 8])
    g.add_operator("BATCH_MATMUL", [x, t_w], [y], ("BatchMatMulOptions", {}), version=4)
    g.set_io([x], [y])
    return g.to_bytes()


def truncated() -> bytes:
    """The float ``conv2d()`` model cut in half (unparseable)."""
    data = conv2d()
    return data[: len(data) // 2]


# ---------------------------------------------------------------- catalogues


def good_models() -> dict[str, Callable[[], bytes]]:
    """Name -> builder of every model that LiteRT runs (float32 ones plus ``int8``)."""
    return {
        "conv2d_same_relu": lambda: conv2d("SAME", relu=True),
        "conv2d_valid": lambda: conv2d("VALID", relu=False),
        "conv2d_same_stride2": lambda: conv2d("SAME", relu=True, stride=2),
        "depthwise_conv2d": depthwise_conv2d,
        "fully_connected": fully_connected,
        "max_pool2d": lambda: pool2d("MAX"),
        "avg_pool2d": lambda: pool2d("AVG"),
        "add": lambda: binary("ADD"),
        "mul": lambda: binary("MUL"),
        "relu": lambda: activation("RELU"),
        "relu6": lambda: activation("RELU6"),
        "logistic": lambda: activation("LOGISTIC"),
        "tanh": lambda: activation("TANH"),
        "softmax": softmax,
        "reshape": reshape,
        "concatenation": concatenation,
        "pad": pad,
        "mean": mean,
        "two_in_two_out": two_in_two_out,
        "int8": int8_conv_fc_softmax,
    }


def bad_models() -> dict[str, Callable[[], bytes]]:
    """Name -> builder of every model a compiler for static, builtin-only graphs must reject."""
    return {
        "custom_op": custom_op,
        "while_loop": while_loop,
        "dynamic_range": dynamic_range_batch_matmul,
        "truncated": truncated,
    }
