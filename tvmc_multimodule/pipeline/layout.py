"""Channels-last convolutions, safe per operator.

Relax's ConvertLayout moves every operator that has a layout-inference rule into the new
layout, and several rules break on real models (TVM 0.27): a tuple-valued Dropout (`Expected
nested to match tuple`), the `stack` behind a variadic Sum/Max (`Invalid SLayout`), a
`conv2d_transpose` left in NHWC that no legaliser takes. Only the operators listed in
FOLLOWS_LAYOUT (each checked against onnxruntime in tests/test_edge_onnx.py) follow the
convolutions' layout; every other operator is legalised first, so ConvertLayout sees a
`call_tir` it cannot change and keeps that operator in its own layout behind transposes.
"""
from __future__ import annotations

import tvm
from tvm import relax

from .control import rewrite_functions

# Channels-last is what the schedules vectorise (channel axis innermost); ONNX graphs are NCHW.
# Measured on the DS-CNN exported from torch: 0.52 ms NCHW -> 0.17 ms NHWC/HWIO at -O3.
CHANNELS_LAST = {"relax.nn.conv2d": ["NHWC", "HWIO"], "relax.nn.conv1d": ["NWC", "WIO"]}

_ELEMENTWISE = ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power",
                "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "abs", "negative", "erf",
                "floor", "ceil", "round", "square", "sin", "cos", "nn.relu", "nn.gelu",
                "nn.gelu_tanh", "nn.silu")
FOLLOWS_LAYOUT = frozenset({
    *(f"relax.{name}" for name in _ELEMENTWISE),
    "relax.nn.conv2d", "relax.nn.conv1d", "relax.nn.max_pool2d", "relax.nn.avg_pool2d",
    "relax.nn.adaptive_avg_pool2d", "relax.concat", "relax.image.resize2d",
    "relax.nn.batch_norm", "relax.nn.prelu", "relax.nn.softmax", "relax.mean", "relax.sum", "relax.max", "relax.min",
    "relax.split", "relax.strided_slice",
})


@relax.expr_functor.mutator
class _LegaliseUnlisted(relax.PyExprMutator):  # type: ignore[misc]
    """Operators outside FOLLOWS_LAYOUT that ConvertLayout would move -> their `call_tir`."""

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        op = call.op
        if (not isinstance(op, tvm.ir.Op) or op.name in FOLLOWS_LAYOUT
                or op.get_attr("FRelaxInferLayout") is None):
            return call  # without a rule, ConvertLayout already keeps it behind transposes
        if not any(self._varies(arg) for arg in call.args):
            return call  # on constants only: nothing to convert, folded later
        legalise = op.get_attr("FLegalize")
        if legalise is None:
            return call
        return legalise(self.builder_, self.builder_.normalize(call))

    def _varies(self, arg: relax.Expr) -> bool:
        """A tensor computed at run time (not a constant, nor a variable bound to one)."""
        if isinstance(arg, relax.Var):
            arg = self.lookup_binding(arg)
        return arg is None or isinstance(arg, (relax.Var, relax.Call, relax.Tuple,
                                               relax.TupleGetItem))


def convert_layout(layouts: dict[str, list[str]]) -> tvm.transform.Pass:
    """ConvertLayout(`layouts`) with the operators of FOLLOWS_LAYOUT following the
    convolutions and the others keeping their layout behind transposes."""

    @tvm.transform.module_pass(opt_level=0, name="ConvertLayoutPerOperator")
    def per_operator(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        # main and its branches' functions; a new module: the pass's input stays as it was
        hidden = rewrite_functions(mod, _LegaliseUnlisted(mod))
        if hidden.same_as(mod):
            hidden = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
        return relax.transform.ConvertLayout(layouts)(hidden)

    return per_operator
