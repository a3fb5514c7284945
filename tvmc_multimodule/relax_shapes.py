"""Static shapes of Relax expressions, read once for the frontends and the pipeline (a
package-level module, so frontends need not import pipeline)."""
from __future__ import annotations

from typing import Any


def static_dims(shape: Any) -> tuple[int, ...] | None:
    """The dimensions of a Relax shape (a ShapeExpr or a struct-info shape) when all are
    known integers, else None."""
    values = getattr(shape, "values", None)
    if values is None or not all(isinstance(getattr(v, "value", None), int) for v in values):
        return None
    return tuple(int(v.value) for v in values)


def static_shape(expr: Any) -> tuple[int, ...] | None:
    """The static shape of a Relax expression's tensor type, or None if any dimension is
    symbolic or the type has no shape."""
    return static_dims(getattr(getattr(expr, "ty", None), "shape", None))
