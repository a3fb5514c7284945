"""Reference runtimes (onnxruntime, LiteRT, TFLite Micro) and random test inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

Spec = tuple[Sequence[int], Any]
"""An input spec: (shape, dtype)."""

DEFAULT_TFLM_ARENA = 1 << 20

# ../shared/models beside the checkout (or beside the folder of worktrees); absent in a fresh clone
SHARED_MODELS = next((p / "shared" / "models" for p in Path(__file__).resolve().parents[2:4]
                      if (p / "shared" / "models").is_dir()),
                     Path(__file__).resolve().parents[2] / "shared" / "models")


def shared_input(model: str, tensor: Any) -> np.ndarray:
    """The saved real-valued input of shared TFLite model `model` (kws_dscnn, ...) in the shape of
    `tensor` (a TensorInfo), quantised with its scale and zero point when the tensor is int8."""
    x = np.load(SHARED_MODELS / "tflite" / f"{model}_input.npy").astype(np.float32)
    x = x.reshape(tensor.shape)
    if tensor.dtype == "int8":
        q = tensor.quant
        x = np.clip(np.round(x / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
    return x


def run_onnxruntime(
    model: Union[bytes, str, os.PathLike, Any], inputs: Mapping[str, np.ndarray]
) -> list[np.ndarray]:
    """Run an ONNX model (bytes, path or ``onnx.ModelProto``) on the CPU with one thread.

    Returns the outputs in the graph's output order."""
    import onnxruntime as ort

    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, os.PathLike):
        model = os.fspath(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return [np.asarray(out) for out in session.run(None, dict(inputs))]


def run_litert(model: bytes, inputs: Sequence[np.ndarray], reference_kernels: bool = False) -> list[np.ndarray]:
    """Run a .tflite model in LiteRT (one thread, no XNNPACK delegate).

    ``inputs`` and the result follow the main subgraph's input/output order.
    ``reference_kernels`` selects TFLite's reference kernels (what TFLite Micro ports)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (OpResolverType.BUILTIN_REF if reference_kernels
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter = Interpreter(model_content=bytes(model), num_threads=1, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    if len(details) != len(inputs):
        raise ValueError(f"model has {len(details)} inputs, got {len(inputs)}")
    for detail, value in zip(details, inputs):
        # np.array, not ascontiguousarray: a scalar input stays 0-d
        interpreter.set_tensor(detail["index"], np.array(value, dtype=detail["dtype"], order="C"))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def _num_outputs(model: bytes) -> int:
    """Number of outputs of the main subgraph, read from the flatbuffer."""
    from tflite.Model import Model

    return Model.GetRootAs(model, 0).Subgraphs(0).OutputsLength()


def run_tflite_micro(
    model: bytes, inputs: Sequence[np.ndarray], arena_size: int = DEFAULT_TFLM_ARENA
) -> list[np.ndarray]:
    """Run a .tflite model in TFLite Micro; inputs/outputs in the main subgraph's order."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(model), arena_size=arena_size)
    # TFLM may reuse the input buffers for intermediates: set every input right before invoke.
    for index, value in enumerate(inputs):
        interpreter.set_input(np.ascontiguousarray(value), index)
    interpreter.invoke()
    return [np.array(interpreter.get_output(i)) for i in range(_num_outputs(model))]


def random_array(shape: Sequence[int], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    """Floats uniform in [-1, 1); 8/16-bit integers over their full range."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, size=tuple(shape)).astype(dtype)
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=tuple(shape)).astype(dtype)
    raise TypeError(f"no random generator for dtype {dtype}")


def random_inputs(
    specs: Mapping[str, Spec] | Sequence[Spec], seed: int = 0
) -> dict[str, np.ndarray] | list[np.ndarray]:
    """Random inputs for ``specs`` (shape, dtype): a dict for a mapping of names, else a list."""
    rng = np.random.default_rng(seed)
    if isinstance(specs, Mapping):
        return {name: random_array(shape, dtype, rng) for name, (shape, dtype) in specs.items()}
    return [random_array(shape, dtype, rng) for shape, dtype in specs]


def onnx_input_specs(model: Any) -> dict[str, Spec]:
    """Input name -> (shape, numpy dtype) of an ``onnx.ModelProto`` (symbolic dims as their name)."""
    from onnx import helper

    initializers = {init.name for init in model.graph.initializer}
    specs: dict[str, Spec] = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor_type.shape.dim)
        specs[value.name] = (shape, helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    return specs


def tflite_input_specs(model: bytes) -> list[Spec]:
    """(shape, numpy dtype) of each main-subgraph input of a .tflite model, in order."""
    from tflite.Model import Model
    from tflite.TensorType import TensorType

    names = {value: name for name, value in vars(TensorType).items() if name.isupper()}
    subgraph = Model.GetRootAs(model, 0).Subgraphs(0)
    specs: list[Spec] = []
    for i in range(subgraph.InputsLength()):
        tensor = subgraph.Tensors(subgraph.Inputs(i))
        shape = tuple(tensor.Shape(j) for j in range(tensor.ShapeLength()))
        specs.append((shape, np.dtype(names[tensor.Type()].lower())))
    return specs
