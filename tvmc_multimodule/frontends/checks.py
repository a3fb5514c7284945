"""Checks both frontends share: static shapes, and sane shapes after TVM's import.

A corrupt file often parses: a flipped bit turns a stride into -2**31 or a dimension into
2**31 - 1. TVM's frontends accept such values and the failure then shows deep in the passes
(an internal error), or not at all (a loop over 2**40 elements). `check_imported` looks at
every tensor of the imported Relax module once, before any pass runs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelError, TvmcError, UsageError, raise_all

# No tensor of a microcontroller model comes near this; past it TVM's 32-bit index arithmetic
# overflows. A declared shape beyond it means a corrupt file.
MAX_TENSOR_BYTES = 2**31 - 1


def raise_shape_problems(path: str, dynamic: list[str], unknown: list[str],
                         inputs: list[str]) -> None:
    """Dynamic inputs are the model's problem (3); --input-shapes naming an input the model
    does not have is the command line's (2); both together are reported at once."""
    errors: list[TvmcError] = []
    if unknown:
        errors.append(UsageError(
            "; ".join(f"--input-shapes names '{n}', which is not an input" for n in unknown),
            path=path, hint=f"the model's inputs are: {', '.join(inputs) or '(none)'}"))
    if dynamic:
        errors.append(ModelError("; ".join(dynamic), path=path,
                                 hint="give static shapes with --input-shapes NAME:[d0,d1,...]"))
    raise_all(errors)


def tensor_bytes(shape: Any, dtype: str) -> int:
    """Bytes of a tensor (Python integers: no overflow); item size 1 for unknown dtypes."""
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        itemsize = 1
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * itemsize


def shape_problem(shape: Any, dtype: str) -> str | None:
    """Why a static shape cannot be right, or None."""
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        return "a negative dimension"
    if any(d == 0 for d in dims):
        return "a zero dimension"
    size = tensor_bytes(dims, dtype)
    if size > MAX_TENSOR_BYTES:
        return f"{size} bytes, more than the {MAX_TENSOR_BYTES} a tensor may have"
    return None


def _static_dims(ty: Any) -> list[int] | None:
    values = getattr(getattr(ty, "shape", None), "values", None)
    if values is None:
        return None
    dims = []
    for value in values:
        if not hasattr(value, "value"):  # symbolic: the pipeline reports it
            return None
        dims.append(int(value.value))
    return dims


def _tensor_types(ty: Any) -> list[Any]:
    if hasattr(ty, "fields"):
        return [t for field in ty.fields for t in _tensor_types(field)]
    return [ty] if hasattr(ty, "dtype") and hasattr(ty, "shape") else []


def _name(var: Any) -> str:
    return str(getattr(var, "name_hint", None) or getattr(var, "name", None) or "?")


def check_imported(mod: Any, path: str, frontend: str) -> None:
    """ModelError when the Relax module built from the file cannot be right: a tensor with
    an impossible static shape (negative or zero dimension, more than MAX_TENSOR_BYTES: the
    file's shapes or operator parameters are out of range), or a module that TVM's
    `relax.analysis.well_formed` refuses (a call whose argument types disagree with the
    callee: the file's tensor shapes contradict its operators). `frontend` names the
    function that built `mod`."""
    _check_shapes(mod, path, frontend)
    _check_well_formed(mod, path, frontend)


def _check_well_formed(mod: Any, path: str, frontend: str) -> None:
    from tvm import relax

    try:
        # TVM 0.27 raises on the first violation (older versions returned False)
        well_formed = relax.analysis.well_formed(mod) is not False
        why = "" if well_formed else ": it is not well formed"
    except Exception as exc:  # noqa: BLE001 - a ValueError or a TVM error
        well_formed = False
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = f": {lines[-1][:300]}" if lines else ""
    if not well_formed:
        raise ModelError(f"tvm.relax.analysis.well_formed refuses what {frontend} built "
                         f"from the file{why}", path=path,
                         hint="the file's tensors and operators contradict each other: it is "
                              "probably corrupt; re-export the model")


def _check_shapes(mod: Any, path: str, frontend: str) -> None:
    for function in mod.functions.values():
        if not hasattr(function, "params") or not hasattr(getattr(function, "body", None),
                                                          "blocks"):
            continue  # PrimFuncs and externs: no Relax tensors to look at
        named = [(_name(p), "input", p.ty) for p in function.params]
        for block in function.body.blocks:
            for binding in block.bindings:
                op = getattr(getattr(binding.value, "op", None), "name", None)
                named.append((_name(binding.var), op or "a binding", binding.var.ty))
        for name, producer, ty in named:  # the first is the cause, the rest follow from it
            for tensor in _tensor_types(ty):
                dims = _static_dims(tensor)
                why = None if dims is None else shape_problem(dims, str(tensor.dtype))
                if why:
                    raise ModelError(
                        f"impossible tensor shape after {frontend}: {producer} gives '{name}' "
                        f"the shape [{','.join(map(str, dims))}] ({why})", path=path,
                        hint="the file's shapes or operator parameters are out of range: it "
                             "is probably corrupt; re-export the model")
