"""TVM's Relax ONNX importer, extended with the operators it lacks (LSTM, GRU: see
onnx_recurrent.py; ConvInteger: onnx_integer.py; custom domains: onnx_custom.py). The extension is a subclass of TVM's importer, so TVM itself is unchanged."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..names import record_raw_name, sanitize, with_raw_names
from .onnx_attributes import attribute_text
from .onnx_custom import MARK, CustomConverter
from .onnx_integer import CONVERTERS as INTEGER_CONVERTERS
from .onnx_recurrent import CONVERTERS as RECURRENT_CONVERTERS
from .relax_blocks import blocks_ended_on_error

# operators TVM's importer lacks, converted by ours
CONVERTERS = {**RECURRENT_CONVERTERS, **INTEGER_CONVERTERS}

log = logging.getLogger(__name__)

# ONNX's variadic elementwise operators as pairwise Relax operators (Mean divides at the end)
PAIRWISE = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}


def _pairwise(bb: Any, op_name: str, inputs: list) -> Any:
    """Max/Min/Sum/Mean folded pairwise with broadcasting. TVM's converter stacks its inputs
    broadcast to the output shape, so a small constant operand became a constant of the
    activation's full size (1.8x the weights of openWakeWord's embedding model)."""
    import functools

    from tvm import relax

    binary = getattr(relax.op, PAIRWISE[op_name])
    result = functools.reduce(lambda a, b: bb.normalize(binary(a, b)), inputs)
    if op_name == "Mean":
        count = relax.const(len(inputs), result.ty.dtype)
        result = bb.normalize(relax.op.divide(result, count))
    return result


# Resize attribute values TVM's Resize lowers; others failed later, in TVM's legalisation,
# as an internal error (with C++ warnings about the builders the failed pass left)
RESIZE_VALUES = {
    "mode": ("nearest", "linear", "cubic"),
    "coordinate_transformation_mode": ("half_pixel", "pytorch_half_pixel", "align_corners",
                                       "asymmetric", "tf_crop_and_resize"),
    "nearest_mode": ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"),
}


def _check_resize(attrs: dict, inputs: Any) -> None:
    node = attrs.get("tvm_custom", {}).get("name") or "Resize"
    for key, known in RESIZE_VALUES.items():
        value = attribute_text(attrs.get(key))
        if value is not None and value not in known:
            raise UnsupportedError(f"Resize node '{node}': {key} '{value}' is not supported "
                                   f"(supported: {', '.join(known)})")
    # TVM's converter ignores these (opset 18); the result would be silently wrong
    problem = _resize_ignored_attribute(attrs, inputs)
    if problem:
        raise UnsupportedError(f"Resize node '{node}': {problem} is not supported")


def _resize_ignored_attribute(attrs: dict, inputs: Any) -> str | None:
    """What of an opset-18 Resize TVM's converter would drop, or None."""
    rank = len(inputs[0].ty.shape)
    if attrs.get("axes") is not None and list(attrs["axes"]) not in (
            list(range(rank)), list(range(-rank, 0))):
        return f"axes {list(attrs['axes'])}"
    policy = attribute_text(attrs.get("keep_aspect_ratio_policy", "stretch"))
    if policy != "stretch":
        return f"keep_aspect_ratio_policy '{policy}'"
    factors = _resize_factors(inputs)
    if factors is not None and any(f != 1 for f in factors[:2]):
        return "resizing the batch or channel axis"
    downscales = factors is None or any(f < 1 for f in factors[2:])
    if attrs.get("antialias", 0) and attribute_text(attrs.get("mode", "nearest")) != "nearest" \
            and downscales:
        return "antialias=1 when downscaling"
    return None


def _resize_factors(inputs: Any) -> list[float] | None:
    """Output size / input size per axis, when the scales or sizes are constants."""
    shape = [int(d) for d in inputs[0].ty.shape]
    for index, as_factors in ((2, lambda v: list(v)), (3, lambda v: [o / i for o, i in
                                                                      zip(v, shape)])):
        values = _constant_values(inputs[index]) if len(inputs) > index else None
        if values is not None and values.size == len(shape):
            return [float(f) for f in as_factors(values)]
    return None


def _constant_values(expr: Any) -> np.ndarray | None:
    """The values of an initializer as TVM's importer passes it (GenericConst or Constant)."""
    holder = getattr(expr, "value", None) or getattr(expr, "data", None)
    return holder.numpy() if hasattr(holder, "numpy") else None


def _resize_as_v11(inputs: list, attrs: dict, opset: int) -> tuple[list, dict]:
    """Resize's inputs as TVM's converter (written for opset 11+) reads them: Resize-10 is
    (X, scales) with asymmetric coordinates, nearest rounding down (onnxruntime's reading;
    PaddleOCR v2 det exports); an empty scales constant next to sizes means "no scales"
    (opset 11 had no empty input names: PyTorch RetinaFace-style FPN exports)."""
    import tvm

    if opset < 11 and len(inputs) == 2:
        inputs = [inputs[0], None, inputs[1]]
        attrs = {**attrs, "coordinate_transformation_mode": b"asymmetric",
                 "nearest_mode": b"floor"}
    if (len(inputs) > 3 and inputs[3] is not None and isinstance(inputs[2], tvm.ir.GenericConst)
            and inputs[2].value.numpy().size == 0):
        inputs[2] = None
    return inputs, attrs


def _importer_class() -> type:
    from tvm.relax.frontend.onnx import onnx_frontend

    class Importer(onnx_frontend.ONNXGraphImporter):
        """TVM's importer; LSTM and GRU nodes go to our converters."""

        custom: CustomConverter | None = None

        def _check_for_unsupported_ops(self, graph: Any) -> None:
            kept = [n for n in graph.node  # (a Loop left here runs as a C loop: _loop)
                    if n.op_type not in CONVERTERS and not n.op_type.startswith(MARK)
                    and n.op_type != "Loop"]
            trimmed = type(graph)()
            trimmed.node.extend(kept)
            super()._check_for_unsupported_ops(trimmed)

        raw_names: dict = {}

        def _parse_value_proto(self, value_proto: Any) -> Any:
            # an unnamed node is known by its first output (the layer comments' name)
            name = super()._parse_value_proto(value_proto)
            outputs = getattr(value_proto, "output", None)
            return name or (outputs[0] if outputs else name)

        def _convert_operator(self, op_name: str, inputs: Any, attrs: dict,
                              opset: int) -> Any:
            if op_name == "Resize":
                inputs, attrs = _resize_as_v11(list(inputs), attrs, opset)
                _check_resize(attrs, inputs)
            if op_name == "Loop":  # one onnx_control.py kept: it loops at run time
                return self._loop(list(inputs), attrs["body"])
            if op_name in CONVERTERS:
                return self.bb.normalize(CONVERTERS[op_name](self.bb, inputs, attrs))
            if op_name.startswith(MARK) and self.custom is not None:
                return self.bb.normalize(self.custom.convert(self.bb, op_name, inputs, attrs))
            if op_name in ("Abs", "Cast") and _is_float_tensor(inputs[0]):
                if op_name == "Abs":  # max(x, -x): the C target has no fabs lowering
                    return self.bb.normalize(relax_op().maximum(inputs[0],
                                                                relax_op().negative(inputs[0])))
                to = str(np.dtype(_onnx_dtype(attrs["to"])))
                if np.dtype(to).kind in "iu":
                    return self.bb.normalize(_float_to_integer(self.bb, inputs[0], to))
            if op_name in PAIRWISE and len(inputs) > 1 and not _all_constant(inputs):
                return self._named(_pairwise(self.bb, op_name, list(inputs)),
                                   attrs.get("tvm_custom", {}).get("name"))
            return self._named(super()._convert_operator(op_name, inputs, attrs, opset),
                               attrs.get("tvm_custom", {}).get("name"))

        def _named(self, expr: Any, node_name: Any) -> Any:
            """A tensor-valued call bound to a variable named after the ONNX node (the C
            runner's layer comments read it)."""
            from tvm import relax

            if (not node_name or not isinstance(node_name, str)
                    or not isinstance(expr, relax.Call)
                    or not isinstance(getattr(expr, "ty", None), relax.TensorType)):
                return expr
            # an identifier: TVM derives C names of temporaries from it (`<name>_red`)
            identifier = sanitize(node_name)
            record_raw_name(self.raw_names, identifier, node_name)
            return self.bb.emit(expr, name_hint=identifier)

        def _loop(self, inputs: list, body: Any) -> Any:
            """A Loop as TVM's TFLite importer makes a WHILE, which build_program turns into
            a C loop: a tail-recursive function F(i, [M,] [cond,] values..., outer...) that
            runs the body and calls itself while i < M and cond, else returns the values."""
            from tvm import relax

            trips, cond, values = inputs[0], inputs[1], inputs[2:]
            body_fn, outer = self._loop_body(body, values)
            i = relax.Var("i", relax.TensorType([], "int64"))
            m = relax.Var("trips", trips.ty) if trips is not None else None
            c = relax.Var("cond", cond.ty) if cond is not None else None
            carried = [relax.Var(f"value{k}", v.ty) for k, v in enumerate(values)]
            kept = [relax.Var(str(v.name), v.ty) for v in outer]
            params = [i, *([m] if m is not None else []), *([c] if c is not None else []),
                      *carried, *kept]
            name = f"onnx_loop_{len(self.bb.get().functions)}"
            result = carried[0] if len(carried) == 1 else relax.Tuple(carried)
            loop = self.bb.add_func(relax.Function(params, result, result.ty, is_pure=True),
                                    name)
            builder = relax.BlockBuilder()
            function = builder.function(name, params=params, private=True, pure=True)
            with blocks_ended_on_error(builder), function:
                go = c if c is not None else relax.const(True)
                if m is not None:
                    go = builder.emit(relax.op.logical_and(relax.op.less(i, m), go))
                after = relax.Call(body_fn, [i, c if c is not None else relax.const(True),
                                             *carried, *kept])
                fields = [relax.TupleGetItem(after, k) for k in range(1 + len(carried))]
                again = relax.Call(loop, [relax.op.add(i, relax.const(1, "int64")),
                                          *([m] if m is not None else []),
                                          *([fields[0]] if c is not None else []),
                                          *fields[1:], *kept])
                builder.emit_func_output(relax.If(go, again, result))
            self.bb.update_func(loop, builder.get()[name])
            args = [relax.const(0, "int64"), *([trips] if trips is not None else []),
                    *([cond] if cond is not None else []), *values, *outer]
            return self.bb.normalize(relax.Call(loop, args))

        def _loop_body(self, body: Any, values: list) -> tuple:
            """The body graph as a private function of (i, cond, values..., the outer values
            it reads) returning (cond, values...); the outer values."""
            from tvm import relax

            if len(body.output) != 1 + len(values):
                raise UnsupportedError("control flow: a Loop's body gives scan outputs with a "
                                       "trip count known only at run time")
            types = [relax.TensorType([], "int64"), relax.TensorType([], "bool"),
                     *(v.ty for v in values)]
            params = [relax.Var(sanitize(v.name), t) for v, t in zip(body.input, types)]
            saved = dict(self._nodes)
            try:
                self._nodes.update({v.name: p for v, p in zip(body.input, params)})
                seq = self._convert_subgraph(self.bb, body)
            finally:
                self._nodes = saved
            outer = [v for v in relax.analysis.free_vars(seq) if v not in params]
            func = relax.utils.copy_with_new_vars(
                relax.Function(params + outer, seq, seq.body.ty, is_pure=True))
            return self.bb.add_func(func, "onnx_loop_body"), outer

        def _convert_subgraph(self, bb: Any, graph: Any) -> Any:
            """An If branch as a block of its own. TVM's importer emits a branch's nodes
            into the enclosing block (both branches then run, only their last expressions
            are selected); bound in the branch's own block, only the chosen branch runs."""
            from tvm import relax

            bb._begin_binding_block()
            try:
                result = super()._convert_subgraph(bb, graph)
                if not isinstance(result, relax.Var):
                    result = bb.emit(result)
            finally:
                block = bb._end_block()
            return relax.SeqExpr([block], result)

    return Importer


def _float_to_integer(bb: Any, x: Any, to: str) -> Any:
    """Cast float -> integer: NaN gives 0, the rest saturates to the type's range (out of
    range the ONNX spec leaves it undefined). TVM's converter guards with isfinite (a fabs
    TVM 0.27's C target cannot lower) and wraps modulo through int64."""
    from tvm import relax

    src = str(x.ty.dtype)
    info = np.iinfo(to)
    high = np.array(info.max, src)
    if int(high) > info.max:  # 2**31 - 1 rounds up to 2**31 in float32
        high = np.nextafter(high, np.array(0, src))
    finite = relax.op.where(relax.op.isnan(x), relax.const(0.0, src), x)
    return relax.op.astype(relax.op.clip(finite, float(info.min), float(high)), to)


def relax_op() -> Any:
    from tvm import relax

    return relax.op


def _is_float_tensor(x: Any) -> bool:
    import tvm
    from tvm import relax

    ty = getattr(x, "ty", None)
    return (isinstance(x, relax.Expr) and not isinstance(x, tvm.ir.GenericConst)
            and isinstance(ty, relax.TensorType) and str(ty.dtype).startswith("float"))


def _onnx_dtype(code: int) -> Any:
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(int(code))


def _all_constant(inputs: Any) -> bool:
    import tvm

    return all(isinstance(x, tvm.ir.GenericConst) for x in inputs)


def supported_ops() -> set[str]:
    """Operator types the extended importer converts."""
    from tvm.relax.frontend.onnx import onnx_frontend

    return set(onnx_frontend._get_convert_map()) | set(CONVERTERS)


def from_onnx(model: Any, shape_dict: dict[str, list[int]],
              dtype_dict: dict[str, str], custom: CustomConverter | None = None) -> Any:
    """tvm.relax.frontend.onnx.from_onnx (parameters folded as constants) with our converters;
    `custom` converts the nodes onnx_custom.mark_custom_nodes marked."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - TVM's from_onnx only warns too
        # one line of ours, not a raw Python warning (tvmc's own checks ran before)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("onnx.checker: %s", first[:300])
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    importer = _importer_class()(shape_dict, dtype_dict, keep_params_in_input=False)
    importer.raw_names = {}
    importer.custom = custom
    with blocks_ended_on_error(importer.bb):
        return with_raw_names(importer.from_onnx(model.graph, opset), importer.raw_names)
