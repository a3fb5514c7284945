"""Constants broadcast to an activation's size stay small.

A frontend may spread a small constant over a full activation shape (an ONNX Expand, a PReLU
slope, a bias written out in full), and FoldConstant then stores the full array: one model's
constants grew 15x over its file. Before legalisation, every such operand of a broadcasting
operator (add, multiply...) goes back to the small array; the legalised kernel reads it through
its broadcast indexing, so it costs neither flash nor RAM.
"""
from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from ..relax_shapes import static_shape
from .control import rewrite_functions

MIN_BYTES = 4096     # smaller constants are left as they are
MIN_SHRINK = 8       # ...and so are those whose core is not this much smaller


def broadcast_core(array: np.ndarray) -> np.ndarray | None:
    """The smallest array that broadcasts to `array` (size 1 on every axis it repeats along),
    or None when that does not save MIN_SHRINK times the bytes."""
    core = array
    for axis in range(array.ndim):
        first = core.take([0], axis=axis)
        if core.shape[axis] > 1 and np.array_equal(core, np.broadcast_to(first, core.shape)):
            core = first
    return np.ascontiguousarray(core) if core.nbytes * MIN_SHRINK <= array.nbytes else None


# Relax operators that broadcast their operands numpy-style: a constant operand can be
# replaced by its core as long as the result keeps its shape
_BROADCASTING = frozenset({"relax.add", "relax.subtract", "relax.multiply", "relax.divide",
                           "relax.maximum", "relax.minimum", "relax.power"})


@relax.expr_functor.mutator
class _ShrinkOperands(relax.PyExprMutator):  # type: ignore[misc]
    """add(x, C) with C a large constant repeating along some axes -> add(x, core of C): the
    legalised kernel then reads the core through its broadcast indexing."""

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if getattr(call.op, "name", None) not in _BROADCASTING or len(call.args) != 2:
            return call
        out, shapes = static_shape(call), [static_shape(a) for a in call.args]
        if out is None or None in shapes:
            return call
        args = list(call.args)
        for k, arg in enumerate(args):
            core = self._core(arg)
            if core is not None and tuple(np.broadcast_shapes(core.shape, shapes[1 - k])) == out:
                args[k] = relax.const(core)
        if all(a.same_as(b) for a, b in zip(args, call.args)):
            return call
        return relax.Call(call.op, args, call.attrs, call.ty_args)

    def _core(self, arg: relax.Expr) -> np.ndarray | None:
        """The small array behind a large constant operand: its broadcast core, or the
        constant a `broadcast_to` (an ONNX Expand) would spread over the full shape."""
        if isinstance(arg, relax.Var):
            bound = self.lookup_binding(arg)
            if isinstance(bound, tvm.ir.GenericConst):  # a call folded before this pass
                return self._core(bound)
            if (isinstance(bound, relax.Call) and getattr(bound.op, "name", None)
                    == "relax.broadcast_to" and isinstance(bound.args[0], tvm.ir.GenericConst)):
                small = bound.args[0].value.numpy()
                full = static_shape(arg)
                if full is not None and small.size * MIN_SHRINK <= int(np.prod(full)):
                    return small
            return None
        if isinstance(arg, tvm.ir.GenericConst) and arg.value.numpy().nbytes >= MIN_BYTES:
            return broadcast_core(arg.value.numpy())
        return None


@tvm.transform.module_pass(opt_level=0, name="ShrinkBroadcastConstants")
def shrink_broadcast_constants(mod: tvm.IRModule, _ctx: tvm.transform.PassContext
                               ) -> tvm.IRModule:
    """Before legalisation: large repeating constant operands of broadcasting operators back
    to their cores (a frontend's Expand, a bias written out in full)."""
    return rewrite_functions(mod, _ShrinkOperands(mod))
