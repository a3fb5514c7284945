"""Which models to benchmark, and the input each one is fed.

Default: the MLPerf-Tiny-style models of ``<repo>/../shared/models`` (``tflite/*.tflite`` and
``onnx/*.onnx``); when that folder is absent (or with ``--quick``), two tiny models built here
with the test suite's builders (``tests/builders``): a full-int8 TFLite model and a float32
ONNX model.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"
LARGE_MODEL_BYTES = 2_000_000  # the 3.9 MB mobilenet_v2 is over this; skipped unless --all
MODEL_SUFFIXES = (".tflite", ".onnx")
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while modules".split())


@dataclass(frozen=True)
class ModelSpec:
    """A model file to benchmark and the module name it is compiled under."""

    path: Path
    name: str

    @property
    def model_format(self) -> str:
        return "onnx" if self.path.suffix == ".onnx" else "tflite"


def module_name(path: Path) -> str:
    """A valid, non-reserved C identifier made from the file's stem."""
    name = re.sub(r"\W", "_", path.stem)
    if not name or name[0].isdigit() or name in C_KEYWORDS:
        name = f"m_{name}"
    return name


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in MODEL_SUFFIXES and p.is_file())


def find_models(paths: Sequence[Path], include_large: bool) -> tuple[list[ModelSpec], list[str]]:
    """Model files in ``paths`` (folders are searched recursively) and notes on skipped ones."""
    files: list[Path] = []
    for path in paths:
        files += _files_in(path) if path.is_dir() else [path]
    specs, notes = [], []
    for path in files:
        if not include_large and path.stat().st_size > LARGE_MODEL_BYTES:
            notes.append(f"skipped {path.name} ({path.stat().st_size / 1e6:.1f} MB; --all to include)")
            continue
        specs.append(ModelSpec(path, module_name(path)))
    return specs, notes


def build_tiny_models(folder: Path) -> list[ModelSpec]:
    """Write the two self-built models into ``folder``: tiny_int8.tflite and tiny_conv.onnx."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.append(tests)
    from builders import onnx_models, tflite_models

    folder.mkdir(parents=True, exist_ok=True)
    tflite_path = folder / "tiny_int8.tflite"
    tflite_path.write_bytes(tflite_models.int8_conv_fc_softmax())
    onnx_path = folder / "tiny_conv.onnx"
    onnx_models.save(onnx_models.conv2d(), onnx_path)
    return [ModelSpec(tflite_path, "tiny_int8"), ModelSpec(onnx_path, "tiny_conv")]


# ---------------------------------------------------------------- inputs


def saved_input(path: Path) -> np.ndarray | None:
    """The ``<prefix>_input.npy`` saved beside a shared model, if any (longest matching prefix)."""
    best: Path | None = None
    for candidate in path.parent.glob("*_input.npy"):
        prefix = candidate.name[: -len("_input.npy")]
        if path.stem.startswith(prefix) and (best is None or len(candidate.name) > len(best.name)):
            best = candidate
    return None if best is None else np.load(best)


def _random(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    if dtype.kind == "f":
        return rng.uniform(-1.0, 1.0, size=tuple(shape)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=tuple(shape)).astype(dtype)


def _quantize(x: np.ndarray, tensor: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(tensor["dtype"])
    quant = tensor.get("quantization")
    if quant is None:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    q = np.round(x / quant["scale"][0]) + quant["zero_point"][0]
    return np.clip(q, info.min, info.max).astype(dtype)


def model_inputs(spec: ModelSpec, inputs: dict[str, dict[str, Any]], seed: int = 0) -> list[np.ndarray]:
    """One array per input (metadata.json tensor entries, model order): the saved .npy when it
    fits the single input (quantised for integer inputs), else seeded random data."""
    rng = np.random.default_rng(seed)
    saved = saved_input(spec.path) if len(inputs) == 1 else None
    arrays = []
    for tensor in inputs.values():
        shape, dtype = tuple(tensor["shape"]), np.dtype(tensor["dtype"])
        if saved is not None and saved.size == int(np.prod(shape)):
            x = saved.astype(np.float32).reshape(shape)
            arrays.append(x.astype(dtype) if dtype.kind == "f" else _quantize(x, tensor))
        else:
            arrays.append(_random(shape, dtype, rng))
    return arrays
