"""A fully int8-quantised TFLite graph -> Relax `main` calling integer TIR kernels.

Weights stay int8 and biases int32 constants; tensors between operators are int8. An operator
without an integer kernel runs in the frontend's float form (with a warning), unless `strict`
asks for an error instead.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import tvm
from tvm import relax

from ...errors import UnsupportedError
from ...kernels import CHelpers, KernelLibrary, PortableC
from ...names import record_raw_name, sanitize, with_raw_names
from ..relax_blocks import blocks_ended_on_error
from .context import Context, NoIntegerKernel
from .converters import CONVERTERS, INTERNAL_CONVERTERS
from .fallback import FloatForm
from .graph import Graph, Operator
from .state import Variable, find_variables, handles, variable_tensors

log = logging.getLogger(__name__)


class NoIntegerForm(UnsupportedError):
    """A translated graph (no TFLite file behind it) has an operator no integer kernel takes
    and no float form was given: its caller takes another route for the whole model."""


class FloatFormLike(Protocol):
    def supports(self, name: str) -> bool: ...

    def convert(self, op: Operator, values: dict[int, relax.Expr]) -> list[relax.Expr]: ...


@dataclass(frozen=True)
class Int8Import:
    relax_module: tvm.IRModule
    c_support: str                       # C helpers the kernels call (static inline)
    float_operators: tuple[str, ...]     # operators run in float, "NAME: reason" each
    # resource variables: main's last parameters and last outputs, in this order
    variables: tuple[Variable, ...] = ()


def import_int8(graph: Graph, module_name: str, input_shapes: list[tuple[int, ...]],
                strict: bool = False,
                float_form: Optional[Callable[[Graph, relax.BlockBuilder], FloatFormLike]] = None,
                library: KernelLibrary | None = None, rounding: str = "tflite") -> Int8Import:
    """Convert `graph` (see graph.is_full_int8) for module `module_name`. `float_form` makes
    the converter of operators without an integer kernel (default: TVM's TFLite frontend
    reading the file; a graph without a file raises NoIntegerForm instead). `library`: the
    kernel library (kernels.library_for_target; default portable C, vector form).
    `rounding`: "tflite" (bit-exact with TFLite Micro) or "onnx" (each requantisation rounded
    once, half to even, as onnxruntime's float arithmetic does)."""
    if float_form is None and graph.model is not None:
        float_form = FloatForm
    helpers = CHelpers(f"tvmgen_{module_name}_", rounding)
    builder = relax.BlockBuilder()
    params = []
    for k, (index, shape) in enumerate(zip(graph.inputs, input_shapes)):
        t = graph.tensor(index)
        params.append(relax.Var(f"input{k}", relax.TensorType([int(d) for d in shape], t.dtype)))
    variables = (find_variables(graph) + variable_tensors(graph)
                 if graph.model is not None else [])
    state_params = [relax.Var(f"state{k}", relax.TensorType([int(d) for d in v.tensor.shape],
                                                              v.tensor.dtype))
                    for k, v in enumerate(variables)]
    # a READ_VARIABLE sees the latest ASSIGN_VARIABLE before it, else the value at entry
    current: dict[str, relax.Expr] = {v.key: p for v, p in zip(variables, state_params)
                                      if v.tensor_index is None}
    keys = handles(graph) if variables else {}
    ctx = Context(graph, builder, helpers, library or PortableC())
    floats: FloatFormLike | None = None
    fallbacks: list[str] = []
    raw_names: dict[str, str | None] = {}  # layer identifier -> the tensor's own name
    with blocks_ended_on_error(builder), builder.function("main", params + state_params):
        with builder.dataflow():
            ctx.values.update(zip(graph.inputs, params))
            # a variable tensor's value: the state at entry, then what its operator leaves
            ctx.values.update((v.tensor_index, p) for v, p in zip(variables, state_params)
                              if v.tensor_index is not None)
            for op in graph.operators:
                if op.name in ("VAR_HANDLE", "CALL_ONCE"):
                    continue  # handles are resolved by name; the initialisation is folded
                if op.name == "READ_VARIABLE":
                    ctx.values[op.outputs[0]] = ctx.reshape(current[keys[op.inputs[0]]],
                                                            ctx.tensor(op.outputs[0]).shape)
                    continue
                if op.name == "ASSIGN_VARIABLE":
                    key = keys[op.inputs[0]]
                    shape = next(v.tensor.shape for v in variables if v.key == key)
                    current[key] = ctx.reshape(ctx.value(op.inputs[1]), shape)
                    continue
                converter = CONVERTERS.get(op.name) or INTERNAL_CONVERTERS.get(op.name)
                reason = "no integer kernel"
                if converter is not None:
                    # an identifier: TVM derives C names of temporaries from it
                    text = graph.tensor(op.outputs[0]).name if op.outputs else ""
                    ctx.layer_name = sanitize(text) if text else ""
                    record_raw_name(raw_names, ctx.layer_name, text)
                    try:
                        result = converter(ctx, op)
                        if isinstance(result, (list, tuple)):  # SPLIT, SPLIT_V
                            ctx.values.update(zip(op.outputs, result))
                        else:
                            ctx.values[op.outputs[0]] = result
                        continue
                    except NoIntegerKernel as exc:
                        reason = str(exc)
                if strict:
                    raise UnsupportedError(
                        f"strict int8: operator {op.name} (#{op.index}) has no integer kernel "
                        f"({reason})", hint="compile without strict int8 to run it in float "
                        "(dequantize -> op -> quantize), or replace the operator")
                if float_form is None:
                    raise NoIntegerForm(f"operator {op.name} has no integer kernel ({reason})")
                floats = floats or float_form(graph, builder)
                if not floats.supports(op.name):
                    unsupported = NoIntegerForm if graph.model is None else UnsupportedError
                    raise unsupported(f"operator {op.name} is not supported ({reason})")
                outputs = floats.convert(op, ctx.values)
                ctx.values.update(zip(op.outputs, outputs))
                fallbacks.append(f"{op.name}: {reason}")
            results = [ctx.value(i) for i in graph.outputs]
            results += [current[v.key] if v.tensor_index is None else ctx.values[v.tensor_index]
                        for v in variables]
            out = builder.emit_output(results[0] if len(results) == 1 else relax.Tuple(results))
        builder.emit_func_output(out)
    if fallbacks:
        counts = Counter(f.split(":", 1)[0] for f in fallbacks)
        log.warning("module '%s': operators without an integer kernel run in float "
                    "(dequantize -> op -> quantize): %s", module_name,
                    ", ".join(f"{n} (x{c})" if c > 1 else n for n, c in sorted(counts.items())))
    c_support = "".join([helpers.source(), *ctx.c_sources.values()])
    return Int8Import(with_raw_names(builder.get(), raw_names), c_support, tuple(fallbacks),
                      tuple(variables))
