"""The main subgraph of a TFLite flatbuffer as plain typed records: tensors with their exact
float32 scales, zero points, per-channel axis and constant data; operators with their name."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
           7: "int16", 9: "int8", 10: "float64"}


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: Optional[np.ndarray]       # float32, one per channel (or one)
    zero_points: Optional[np.ndarray]  # int64
    axis: int                          # quantised dimension (per-channel)
    data: Optional[np.ndarray]         # constant value, else None

    @property
    def quantized(self) -> bool:
        return self.scales is not None and self.scales.size > 0

    @property
    def scale(self) -> float:
        assert self.scales is not None
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        if self.zero_points is None or not self.zero_points.size:
            return 0
        return int(self.zero_points[0])

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class Operator:
    index: int
    name: str                      # BuiltinOperator name, e.g. "CONV_2D"
    inputs: tuple[int, ...]        # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    raw: Any                       # the tflite.Operator (for options and the frontend)
    recorded: Optional[Mapping[str, Any]] = None  # options of an operator not read from a file

    def options(self, table: str) -> Any:
        """The operator's builtin options as the generated `tflite.<table>` object (or, for
        an operator translated from another format, its recorded values read the same way)."""
        if self.recorded is not None:
            return RecordedOptions(self.recorded)
        cls = getattr(importlib.import_module(f"tflite.{table}"), table)
        opts = cls()
        raw = self.raw.BuiltinOptions()
        if raw is not None:
            opts.Init(raw.Bytes, raw.Pos)
        else:  # absent table: every field reads its schema default
            import flatbuffers

            builder = flatbuffers.Builder(64)
            module = importlib.import_module(f"tflite.{table}")
            getattr(module, f"{table}Start")(builder)
            builder.Finish(getattr(module, f"{table}End")(builder))
            buf = builder.Output()
            opts.Init(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
        return opts


class RecordedOptions:
    """Option values read like a flatbuffer table: `options.StrideH()`."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._values[name]
        except KeyError:
            raise AttributeError(name) from None
        return lambda: value


@dataclass(frozen=True)
class Graph:
    model: Any                     # the tflite.Model; None for a graph translated from ONNX
    subgraph: Any
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]


def _ints(vector: Any) -> list[int]:
    """A flatbuffers int vector as a list (its accessor returns 0 when the vector is absent)."""
    return [int(i) for i in vector] if isinstance(vector, np.ndarray) else []


def _tensor(model: Any, graph: Any, index: int) -> Tensor:
    t = graph.Tensors(index)
    shape = tuple(_ints(t.ShapeAsNumpy()))
    dtype = _DTYPES.get(t.Type(), f"type{t.Type()}")
    q = t.Quantization()
    scales = zero_points = None
    axis = 0
    if q is not None and q.ScaleLength():
        scales = q.ScaleAsNumpy().astype(np.float32)
        zero_points = (q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength()
                       else np.zeros(scales.size, np.int64))
        axis = int(q.QuantizedDimension())
    data = None
    buffer = model.Buffers(t.Buffer())
    if buffer is not None and buffer.DataLength() and dtype in ("int8", "int32", "float32",
                                                                 "int64", "int16", "uint8"):
        from ..tflite_sparse import dense_constant

        data = dense_constant(t, buffer.DataAsNumpy().tobytes(), dtype).copy()
    raw_name = t.Name()
    name = raw_name.decode(errors="replace") if raw_name is not None else f"tvmgen_tensor_{index}"
    return Tensor(index, name, shape, dtype, scales, zero_points,
                  axis, data)


def _op_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def read_graph(model: Any) -> Graph:
    """The main subgraph of a loaded `tflite.Model`."""
    graph = model.Subgraphs(0)
    names = _op_names()
    tensors = tuple(_tensor(model, graph, i) for i in range(graph.TensorsLength()))
    operators = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        operators.append(Operator(i, names.get(builtin, f"BUILTIN_{builtin}"),
                                  tuple(_ints(op.InputsAsNumpy())),
                                  tuple(_ints(op.OutputsAsNumpy())), op))
    tensors, operators = _fold_shape_arithmetic(list(tensors), operators)
    return Graph(model, graph, tuple(tensors), tuple(operators),
                 tuple(_ints(graph.InputsAsNumpy())),
                 tuple(_ints(graph.OutputsAsNumpy())))


# integer operators TF's `reshape(x, [batch, ...])` computes its target with
SHAPE_ARITHMETIC = frozenset({"SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION"})


def _fold_shape_arithmetic(tensors: list[Tensor],
                           operators: list[Operator]) -> tuple[list[Tensor], list[Operator]]:
    """Integer shape arithmetic on static shapes, done now: its results become constants and
    its operators leave the graph. TF writes `reshape(x, [-1, 5, 128, 1])` in an int8 model
    as SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE (MLTK's anomaly-detection autoencoder); the
    int32 tensors between them are no data of the model, only a RESHAPE's target."""
    kept = []
    for op in operators:
        value = _shape_value(tensors, op) if op.name in SHAPE_ARITHMETIC else None
        if value is None:
            kept.append(op)
            continue
        out = tensors[op.outputs[0]]
        tensors[out.index] = Tensor(out.index, out.name, out.shape, out.dtype, out.scales,
                                    out.zero_points, out.axis, value)
    return tensors, kept


def _shape_value(tensors: list[Tensor], op: Operator) -> Optional[np.ndarray]:
    """The value of a SHAPE of a static shape, or of STRIDED_SLICE / PACK / CONCATENATION of
    integer constants (1-D, without the masks that add or drop axes); None otherwise."""
    if len(op.outputs) != 1 or tensors[op.outputs[0]].dtype not in ("int32", "int64"):
        return None
    out = tensors[op.outputs[0]]
    if op.name == "SHAPE":
        # the shape the file declares: the integer kernels are only built for those shapes
        # (frontends/tflite.py: other --input-shapes take the float frontend's route)
        value = np.asarray(tensors[op.inputs[0]].shape, out.dtype)
        return value if value.shape == tuple(out.shape) else None
    values = [tensors[i].data if i >= 0 else None for i in op.inputs]
    if any(v is None or v.dtype.kind not in "iu" for v in values):
        return None
    if op.name == "PACK":
        if op.options("PackOptions").Axis() != 0:
            return None
        result = np.stack(values)
    elif op.name == "CONCATENATION":
        options = op.options("ConcatenationOptions")
        if options.FusedActivationFunction() != 0 or any(v.ndim != 1 for v in values):
            return None
        result = np.concatenate(values)
    else:  # STRIDED_SLICE
        options = op.options("StridedSliceOptions")
        if (options.EllipsisMask() or options.NewAxisMask() or len(values) != 4
                or values[0].ndim != 1 or any(v.size != 1 for v in values[1:])):
            return None
        begin, end, stride = (int(v.reshape(-1)[0]) for v in values[1:])
        start = None if options.BeginMask() & 1 else begin
        stop = None if options.EndMask() & 1 else end
        result = values[0][start:stop:stride]
        if options.ShrinkAxisMask() & 1:
            if result.size != 1:
                return None
            result = result.reshape(())
    result = np.asarray(result, out.dtype)
    return result if result.shape == tuple(out.shape) else None


LSTM_CELL_STATE = 19  # UNIDIRECTIONAL_SEQUENCE_LSTM's input holding the cell state

# resource variables (see state.py): their handles are not data
STATE_OPERATORS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"})


def is_full_int8(graph: Graph) -> bool:
    """True when every tensor between operators is int8: weights int8, biases int32,
    float32 only at the model's edges (the input of a QUANTIZE, the output of a DEQUANTIZE),
    uint8 only as the output of a QUANTIZE; resource-variable handles are not data."""
    if not graph.operators:
        return False
    for op in graph.operators:
        if op.name in ("VAR_HANDLE", "CALL_ONCE"):
            continue
        for position, index in enumerate(op.inputs):
            if op.name in STATE_OPERATORS and position == 0:
                continue  # the handle
            if index < 0:
                continue
            t = graph.tensor(index)
            if t.is_constant:
                continue
            if t.dtype == "int8" and t.quantized:
                continue
            if op.name == "QUANTIZE" and position == 0 and t.dtype == "float32":
                continue
            if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM" and position == LSTM_CELL_STATE:
                continue  # its int16 cell state (the 8x8->16 integer LSTM)
            return False
        for index in op.outputs:
            t = graph.tensor(index)
            if t.dtype == "int8" and t.quantized:
                continue
            if op.name == "DEQUANTIZE" and t.dtype == "float32":
                continue
            if op.name == "QUANTIZE" and t.dtype == "uint8" and t.quantized:
                continue
            return False
    return True
