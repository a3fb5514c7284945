"""Stage 1: a model file -> ImportedModel (Relax IRModule + the tensors it declares)."""
from __future__ import annotations

from ..errors import TvmcError, UnsupportedError, UsageError
from ..model import ImportedModel
from .detect import FORMATS, check_readable, detect_format


def import_model(path: str, name: str, model_format: str | None = None,
                 input_shapes: dict[str, list[int]] | None = None,
                 strict_int8: bool = False, int8_variant: str = "vector",
                 input_values: dict | None = None) -> ImportedModel:
    """Read `path` with the frontend for its format (`strict_int8`: see import_tflite and
    import_onnx; `int8_variant`: the integer kernels' loop form, "vector" or "scalar";
    `input_values`: ONNX inputs fixed to constants, see import_onnx)."""
    fmt = detect_format(path, model_format)
    try:
        if fmt == "tflite":
            if input_values:
                raise UsageError("input values (--input-values) apply to ONNX models only")
            from .tflite import import_tflite

            return import_tflite(path, name, input_shapes, strict_int8=strict_int8,
                                 int8_variant=int8_variant)
        from .onnx import import_onnx

        return import_onnx(path, name, input_shapes, strict_int8=strict_int8,
                           int8_variant=int8_variant, input_values=input_values)
    except TvmcError as err:
        raise err.located(module=name, path=path)
    except Exception as exc:  # the TVM frontends raise anything from ValueError to TVMError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise UnsupportedError(f"the {fmt} frontend failed: {first[:300]}", module=name,
                               path=path, hint="the model uses a feature TVM's Relax frontend "
                               "cannot convert") from exc


__all__ = ["import_model", "detect_format", "check_readable", "FORMATS"]
