"""Constant operators computed with numpy before legalisation.

Relax's FoldConstant compiles and runs one TIR function per constant call: on an OCR
classifier (566 ONNX nodes) with its batch norms, clips and transposed weights, that took
54 of 58 s of the whole compilation. The operators below give bit-identical results in numpy
(data movement and IEEE-exact float arithmetic), so they are computed here and FoldConstant
is left with the rest. An elementwise result larger than its largest operand is not folded;
`broadcast_to` is (FoldConstant would store the same array), and constant_guard.py shrinks
it back to its core where the consumer broadcasts.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tvm
from tvm import relax

from ..relax_shapes import static_dims, static_shape
from .control import rewrite_functions


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values]


def _permute(call: relax.Call, x: np.ndarray) -> np.ndarray:
    axes = call.attrs.axes
    return np.transpose(x, None if axes is None else _ints(axes))


def _reshape(call: relax.Call, x: np.ndarray) -> np.ndarray | None:
    shape = static_dims(call.args[1])
    return None if shape is None else x.reshape(shape)


def _expand_dims(call: relax.Call, x: np.ndarray) -> np.ndarray:
    return np.expand_dims(x, tuple(_ints(call.attrs.axis)))


def _squeeze(call: relax.Call, x: np.ndarray) -> np.ndarray:
    axis = call.attrs.axis
    return np.squeeze(x) if axis is None else np.squeeze(x, tuple(_ints(axis)))


def _broadcast_to(call: relax.Call, x: np.ndarray) -> np.ndarray | None:
    # FoldConstant would store the full array too; constant_guard.py shrinks such constants
    # back where the consumer broadcasts (add, multiply...)
    shape = static_dims(call.args[1])
    return None if shape is None else np.broadcast_to(x, shape)


# data movement: any dtype
_MOVES: dict[str, Callable[[relax.Call, np.ndarray], np.ndarray | None]] = {
    "relax.permute_dims": _permute, "relax.reshape": _reshape,
    "relax.expand_dims": _expand_dims, "relax.squeeze": _squeeze,
    "relax.broadcast_to": _broadcast_to,
}
_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relax.sqrt": np.sqrt, "relax.negative": np.negative, "relax.isnan": np.isnan,
}
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "relax.add": np.add, "relax.subtract": np.subtract, "relax.multiply": np.multiply,
    "relax.divide": np.divide, "relax.minimum": np.minimum, "relax.maximum": np.maximum,
}
_FLOATS = ("float32", "float64")


def _evaluate(call: relax.Call, _constant: Callable[[relax.Expr], np.ndarray | None]
              ) -> np.ndarray | None:
    name = getattr(call.op, "name", None)
    if name in _MOVES:
        x = _constant(call.args[0])
        return None if x is None else _MOVES[name](call, x)
    if name == "relax.where" and len(call.args) == 3:
        cond, a, b = (_constant(arg) for arg in call.args)
        if cond is None or a is None or b is None or a.dtype != b.dtype:
            return None
        if int(np.prod(np.broadcast_shapes(cond.shape, a.shape, b.shape))) > max(
                cond.size, a.size, b.size):
            return None
        return np.where(cond, a, b)
    if name in _UNARY:
        x = _constant(call.args[0])
        return None if x is None or x.dtype.name not in _FLOATS else _UNARY[name](x)
    if name in _BINARY and len(call.args) == 2:
        a, b = _constant(call.args[0]), _constant(call.args[1])
        if a is None or b is None or a.dtype != b.dtype or a.dtype.name not in _FLOATS:
            return None
        if int(np.prod(np.broadcast_shapes(a.shape, b.shape))) > max(a.size, b.size):
            return None  # no constant grows by broadcasting
        return _BINARY[name](a, b)
    return None


@relax.expr_functor.mutator
class _FoldWithNumpy(relax.PyExprMutator):  # type: ignore[misc]
    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if not isinstance(call.op, tvm.ir.Op):
            return call
        try:
            value = _evaluate(call, self._constant)
        except (ValueError, TypeError):  # shapes numpy refuses: leave it to FoldConstant
            return call
        if value is None:
            return call
        value = np.array(value, order="C")  # (ascontiguousarray makes a 0-d array 1-d)
        typed = self.builder_.normalize(call)
        if (value.shape != static_shape(typed)
                or str(value.dtype) != str(getattr(typed.ty, "dtype", ""))):
            return call  # numpy and Relax disagree on the result: Relax decides
        return relax.const(value, str(value.dtype))

    def _constant(self, expr: relax.Expr) -> np.ndarray | None:
        """The value of a constant operand, or of a variable bound to one (a folded call)."""
        if isinstance(expr, relax.Var):
            expr = self.lookup_binding(expr)
        if isinstance(expr, tvm.ir.GenericConst):
            return expr.value.numpy()
        return None


@tvm.transform.module_pass(opt_level=0, name="FoldConstantsWithNumpy")
def fold_constants_with_numpy(mod: tvm.IRModule, _ctx: tvm.transform.PassContext
                              ) -> tvm.IRModule:
    """Constant permute_dims/reshape/elementwise calls -> their values (before LegalizeOps),
    in `main` and the functions of its If branches and loops."""
    return rewrite_functions(mod, _FoldWithNumpy(mod))
