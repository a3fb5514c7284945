"""tvmc-multimodule: several TFLite/ONNX models -> one multi-module MLF (v7) archive of plain C.

The API is imported lazily so that `tvmc --help` and error reporting do not wait for TVM.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "compile_model": "api", "export_model_library_format": "api",
    "load_model_library_format": "api", "CompiledModule": "model", "TensorInfo": "model",
    "TvmcError": "errors", "CustomOp": "model",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
