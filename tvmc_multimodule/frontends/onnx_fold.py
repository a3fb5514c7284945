"""Shape arithmetic folded before the Relax frontend sees the graph.

tf2onnx, paddle2onnx and YOLO-style exports compute Reshape targets, Resize sizes and Split
lengths at run time: `Concat(Cast(Slice(Cast(Shape(x)))))`. TVM's frontend needs them as
constants. With the input shapes fixed, ONNX shape inference knows every such shape, so a
Shape/Size of a statically shaped tensor becomes a constant, and so does every small node
whose inputs are all constants (Gather, Slice, Concat, Cast, Unsqueeze, Squeeze,
ConstantOfShape, Range, Expand, integer arithmetic...), evaluated by onnx's reference
implementation. Rounds of inference and folding repeat until nothing changes (a folded
Reshape target gives the next Shape a static input).

Left alone: large results (weights stay as the file has them; TVM folds those), quantisation
nodes (the integer importer reads them), control flow and random operators.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .onnx_custom import STANDARD_DOMAINS as _STANDARD_DOMAINS

log = logging.getLogger(__name__)

# a folded result above this many elements is not folded: shape arithmetic is tiny, and a
# large constant is better computed by TVM (or guarded against broadcasting, constant_guard)
MAX_FOLDED_ELEMENTS = 4096
MAX_ROUNDS = 16
_NEVER_FOLDED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "If", "Loop",
                 "Scan", "RandomNormal", "RandomNormalLike", "RandomUniform",
                 "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"}


def _static_dims(value: Any) -> list[int] | None:
    if value.type.WhichOneof("value") != "tensor_type":
        return None
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims = []
    for d in tensor.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(int(d.dim_value))
    return dims


def _known_shapes(model: Any) -> dict[str, list[int]]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is only a help; the frontend decides
        inferred = model
    graph = inferred.graph
    shapes = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = _static_dims(value)
        if dims is not None:
            shapes[value.name] = dims
    return shapes


def _shape_of(node: Any, dims: list[int]) -> np.ndarray:
    """Shape (with opset-15 start/end) or Size of a tensor of static `dims`."""
    if node.op_type == "Size":
        return np.asarray(int(np.prod(dims, dtype=np.int64)), np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.asarray(dims[slice(start, end)], np.int64)


def _evaluate(node: Any, values: list[np.ndarray | None], opsets: Any) -> list[np.ndarray]:
    """One node run by onnx's reference implementation on constant inputs."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if v is not None else "" for i, v in enumerate(values)]
    single = onnx.NodeProto()
    single.CopyFrom(node)
    del single.input[:]
    single.input.extend(names)
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
              for n, v in zip(names, values) if v is not None]
    outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = helper.make_graph([single], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=list(opsets))
    feeds = {n: v for n, v in zip(names, values) if v is not None}
    return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]


class _Folder:
    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.initializers = {t.name: t for t in model.graph.initializer}
        self.numpy_helper = numpy_helper
        self.cache: dict[str, np.ndarray] = {}
        self.outputs = {v.name for v in model.graph.output}

    def constant(self, name: str) -> np.ndarray | None:
        """The value of a small constant tensor, or None."""
        if name in self.cache:
            return self.cache[name]
        tensor = self.initializers.get(name)
        if tensor is None or int(np.prod(tensor.dims, dtype=np.int64)) > MAX_FOLDED_ELEMENTS:
            return None
        self.cache[name] = self.numpy_helper.to_array(tensor)
        return self.cache[name]

    def fold_round(self, shapes: dict[str, list[int]]) -> int:
        """Replace every foldable node by initializers; the number folded."""
        kept, folded = [], 0
        for node in self.model.graph.node:
            results = self._fold(node, shapes)
            if results is None:
                kept.append(node)
                continue
            folded += 1
            for name, array in zip(node.output, results):
                if name:
                    # np.asarray keeps a scalar 0-d (np.ascontiguousarray makes it [1]: silero-VAD's
                    # Gather(state, 0) then gained a dimension)
                    tensor = self.numpy_helper.from_array(np.asarray(array, order="C"), name)
                    self.model.graph.initializer.append(tensor)
                    self.initializers[name] = tensor
                    self.cache[name] = array
        if folded:
            del self.model.graph.node[:]
            self.model.graph.node.extend(kept)
        return folded

    def _fold(self, node: Any, shapes: dict[str, list[int]]) -> list[np.ndarray] | None:
        if (node.domain not in _STANDARD_DOMAINS or node.op_type in _NEVER_FOLDED
                or any(o in self.outputs for o in node.output)
                or any(a.type in (5, 10) for a in node.attribute)):  # GRAPH(S) attributes
            return None
        if node.op_type in ("Shape", "Size"):
            dims = shapes.get(node.input[0])
            return None if dims is None else [_shape_of(node, dims)]
        values = [self.constant(name) if name else None for name in node.input]
        if any(v is None for v, name in zip(values, node.input) if name):
            return None
        expected = [shapes.get(o) for o in node.output]
        if any(d is not None and int(np.prod(d, dtype=np.int64)) > MAX_FOLDED_ELEMENTS
               for d in expected):
            return None
        try:
            results = _evaluate(node, values, self.model.opset_import)
        except Exception as exc:  # noqa: BLE001 - not folded; the frontend will say why
            log.debug("not folded: %s %s: %s", node.op_type, node.name, exc)
            return None
        if len(results) != len([o for o in node.output if o]) or any(
                r.size > MAX_FOLDED_ELEMENTS or r.dtype == object for r in results):
            return None
        return results


def _drop_inference_dropout(model: Any) -> None:
    """Dropout in inference is the identity: its tuple (output, mask) trips TVM's passes."""
    from onnx import helper

    used = {name for node in model.graph.node for name in node.input}
    used |= {v.name for v in model.graph.output}
    for i, node in enumerate(model.graph.node):
        if (node.op_type == "Dropout" and node.domain in _STANDARD_DOMAINS
                and len(node.input) < 3  # no training_mode input
                and not (len(node.output) > 1 and node.output[1] in used)):
            model.graph.node[i].CopyFrom(helper.make_node(
                "Identity", [node.input[0]], [node.output[0]], name=node.name))


def fold_shape_arithmetic(model: Any) -> Any:
    """`model` (its input shapes fixed) with its shape arithmetic folded, changed in place;
    returned with the shapes ONNX inference then finds."""
    import onnx

    folded_model = model
    _drop_inference_dropout(folded_model)
    folder = _Folder(folded_model)
    total = 0
    for _ in range(MAX_ROUNDS):
        count = folder.fold_round(_known_shapes(folded_model))
        total += count
        if not count:
            break
    if total:
        log.debug("folded %d nodes of shape arithmetic", total)
    try:
        return onnx.shape_inference.infer_shapes(folded_model)
    except Exception:  # noqa: BLE001 - inference is only a help; the frontend decides
        return folded_model
