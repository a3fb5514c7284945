"""tvmc-multimodule: several TFLite/ONNX models -> one multi-module MLF (v7) archive of plain C."""
from .api import compile_model, export_model_library_format, load_model_library_format
from .errors import TvmcError
from .model import CompiledModule, TensorInfo

__version__ = "0.1.0"

__all__ = ["compile_model", "export_model_library_format", "load_model_library_format",
           "CompiledModule", "TensorInfo", "TvmcError", "__version__"]
