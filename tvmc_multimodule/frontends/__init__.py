"""Stage 1: a model file -> ImportedModel (Relax IRModule + the tensors it declares)."""
from __future__ import annotations

import re
import traceback

from typing import TYPE_CHECKING

from ..errors import InternalError, ModelError, TvmcError, UnsupportedError, UsageError
from ..model import ImportedModel
from .detect import FORMATS, check_readable, detect_format

if TYPE_CHECKING:
    from ..kernels import KernelLibrary


# Exceptions that mean a converter's code is wrong whatever the model (a call with an old
# signature, a name or attribute that does not exist): internal errors (exit 70). The
# frontends' own refusals (tvm.error.OpNotImplemented...) and their reactions to odd values
# of a file (assertions, ValueError, a TypeError about a value) stay "unsupported" (exit 4).
_SIGNATURE = re.compile(r"positional argument|keyword argument|takes \d+ |missing \d+ required"
                        r"|got multiple values|not callable")
_VALUE_ATTRIBUTE = re.compile(r"^'(NoneType|int|float|bytes)' object has no attribute")


def import_model(path: str, name: str, model_format: str | None = None,
                 input_shapes: dict[str, list[int]] | None = None,
                 strict_int8: bool = False, kernel_library: KernelLibrary | None = None,
                 input_values: dict | None = None,
                 custom_ops: dict | None = None) -> ImportedModel:
    """Read `path` with the frontend for its format (`strict_int8`: see import_tflite and
    import_onnx; `kernel_library`: builds the integer kernels (default portable C);
    `input_values`: ONNX inputs fixed to constants, see import_onnx)."""
    fmt = detect_format(path, model_format)
    try:
        if fmt == "tflite":
            if input_values:
                raise UsageError("input values (--input-values) apply to ONNX models only")
            from .tflite import import_tflite

            return import_tflite(path, name, input_shapes, strict_int8=strict_int8,
                                 kernel_library=kernel_library, custom_ops=custom_ops)
        from .onnx import import_onnx

        return import_onnx(path, name, input_shapes, strict_int8=strict_int8,
                           kernel_library=kernel_library, input_values=input_values,
                           custom_ops=custom_ops)
    except TvmcError as err:
        raise err.located(module=name, path=path)
    except Exception as exc:  # the TVM frontends raise anything from ValueError to TVMError
        # TFLite: our converter layer absorbs TVM's bugs, the rest are ours (ONNX: not yet)
        if fmt == "tflite" and _raised_in_flatbuffers(exc):
            raise ModelError("corrupt TFLite file (an offset or number out of range)",
                             module=name, path=path, hint="re-download or re-export the model"
                             ) from exc
        if fmt != "tflite" or not _is_programming_error(exc):
            raise _unsupported(fmt, exc, name, path) from exc
        first = (str(exc).strip().splitlines() or [""])[-1]
        raise InternalError(f"the {fmt} frontend failed with {type(exc).__name__}: "
                            f"{first[:300]}", module=name, path=path,
                            hint="this is a bug; please report it with the model") from exc


def _is_programming_error(exc: Exception) -> bool:
    """A call that does not match its function, a name that does not exist; not TVM's own
    refusals (tvm.error.OpAttributeInvalid is also an AttributeError)."""
    if any(cls.__module__.startswith("tvm") for cls in type(exc).__mro__):
        return False
    if isinstance(exc, (NameError, ImportError, RecursionError)):
        return True
    if isinstance(exc, AttributeError):
        return not _VALUE_ATTRIBUTE.search(str(exc))
    return isinstance(exc, TypeError) and bool(_SIGNATURE.search(str(exc)))


def _raised_in_flatbuffers(exc: Exception) -> bool:
    """flatbuffers' accessors raise TypeError/struct.error on offsets a corrupt file holds."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and "/flatbuffers/" in frames[-1].filename.replace("\\", "/")


def _unsupported(fmt: str, exc: Exception, name: str, path: str) -> UnsupportedError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    return UnsupportedError(f"the {fmt} frontend failed: {first[:300]}", module=name,
                            path=path, hint="the model uses a feature TVM's Relax frontend "
                            "cannot convert")


__all__ = ["import_model", "detect_format", "check_readable", "FORMATS"]
