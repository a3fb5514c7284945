"""ONNX control flow made static before import: If on a condition that folds to a constant is
replaced by the nodes of the branch it selects, Loop with a constant trip count is unrolled.

A condition folds when everything it depends on is constant: initializers, Constant nodes,
shapes of tensors with static shapes, and model inputs the user fixed (`input_values`, the CLI's
`--input-values sr=16000`: the input then leaves the module's signature). An If whose condition
depends on a real run-time input stays an If: the importer makes it a Relax `If` whose branches
are blocks of their own, and the C runner branches (`if (cond) {...} else {...}`), so only the
chosen branch runs and the memory plan reuses one branch's memory for the other; branches whose
outputs differ in shape are an error naming the node.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

import numpy as np

from ..errors import UnsupportedError, UsageError

log = logging.getLogger(__name__)

CONTROL_OPS = ("If", "Loop")
MAX_CONE_NODES = 200           # a condition depending on more nodes is not worth folding
MAX_SHAPE_NODES = 5000         # nodes run (on zeros) to learn one tensor's shape
MAX_UNROLL = 4096              # iterations of one Loop; more is surely not a microcontroller model


def has_control_flow(model: Any) -> bool:
    return any(n.op_type in CONTROL_OPS for n in model.graph.node)


def fix_input_values(model: Any, values: dict[str, np.ndarray]) -> Any:
    """A copy of `model` where each named input is a constant initializer of the given value
    (cast to the input's element type, its declared shape kept)."""
    import onnx
    from onnx import helper, numpy_helper

    if not values:
        return model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    inputs = {v.name: v for v in fixed.graph.input}
    inits = {t.name for t in fixed.graph.initializer}
    unknown = [n for n in values if n not in inputs or n in inits]
    if unknown:
        raise UsageError("--input-values names no input of the model: " + ", ".join(unknown),
                         hint="model inputs: " + ", ".join(sorted(set(inputs) - inits)))
    for name, value in values.items():
        info = inputs[name]
        dtype = helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else -1
                for d in info.type.tensor_type.shape.dim]
        array = np.asarray(value)
        if array.dtype.kind == "f" and np.dtype(dtype).kind in "iub" and not np.all(
                array == np.round(array)):
            raise UsageError(f"--input-values {name}: {value} is not an integer, the input is "
                             f"{np.dtype(dtype).name}")
        shape = [d if d > 0 else 1 for d in dims]
        if array.size not in (1, int(np.prod(shape, dtype=np.int64))):
            raise UsageError(f"--input-values {name}: {array.size} values given, the input "
                             f"has the shape {shape}")
        array = np.broadcast_to(array.astype(dtype).reshape(-1), (int(np.prod(shape)),))
        fixed.graph.initializer.append(numpy_helper.from_array(array.reshape(shape), name))
        fixed.graph.input.remove(info)
    return fixed


def resolve_control_flow(model: Any) -> Any:
    """A copy of `model` without If and Loop at the top level (nested ones included, as they
    surface), or UnsupportedError naming the node that cannot be made static."""
    import onnx

    if not has_control_flow(model):
        return model
    result = onnx.ModelProto()
    result.CopyFrom(model)
    opset = next((o.version for o in result.opset_import if o.domain in ("", "ai.onnx")), 1)
    kept: set[int] = set()  # run-time Ifs, branching in C (nodes before the current one)
    for _ in range(10_000):
        # shapes inferred through an If are a merge of both branches: infer afresh each time,
        # so everything before the first remaining If / Loop has its true static shape
        del result.graph.value_info[:]
        index = next((i for i, n in enumerate(result.graph.node)
                      if n.op_type in CONTROL_OPS and i not in kept), None)
        if index is None:
            _drop_dead_nodes(result.graph)
            return result
        result = _inferred(result)
        graph = result.graph
        node = onnx.NodeProto()
        node.CopyFrom(graph.node[index])
        replacement = _replacement(node, _Folder(graph, opset), opset, index)
        if replacement is None:  # branches or loops at run time
            if node.op_type == "If":  # both branches must give the same shapes
                _check_same_shapes(result, node, index, opset)
            kept.add(index)
            continue
        nodes = list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes[:index] + replacement + nodes[index + 1:])
    raise UnsupportedError("control flow nested too deeply to resolve")


def _drop_dead_nodes(graph: Any) -> None:
    """Remove nodes none of whose outputs is used: the conditions of the resolved Ifs (shape
    arithmetic the frontend might not even convert)."""
    used = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in used for o in node.output):
            kept.append(node)
            used.update(node.input)
            used.update(_outer_names(node))
    del graph.node[:]
    graph.node.extend(reversed(kept))


def _outer_names(node: Any) -> set[str]:
    """Names a node's subgraphs read from the enclosing scope (a superset: every input name)."""
    names: set[str] = set()
    for a in node.attribute:
        for g in ([a.g] if a.type == 5 else list(a.graphs)):
            for n in g.node:
                names.update(n.input)
                names |= _outer_names(n)
            names.update(o.name for o in g.output)
    return names


def _replacement(node: Any, folder: "_Folder", opset: int, index: int) -> list[Any] | None:
    """The nodes replacing a control-flow node, None for an If kept to branch at run time or
    a Loop kept to loop at run time."""
    if node.op_type == "If":
        return _inline_if(node, folder)
    return _unroll_loop(node, folder, opset, index)


def _inferred(model: Any) -> Any:
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference only helps folding
        return model


def _attr_graph(node: Any, name: str) -> Any:
    return next(a.g for a in node.attribute if a.name == name)


def _node_label(node: Any) -> str:
    return f"{node.op_type} node '{node.name or node.output[0]}'"


class _Folder:
    """Constant values of a graph's tensors, computed on demand by onnx's reference evaluator."""

    def __init__(self, graph: Any, opset: int):
        from onnx import numpy_helper

        self.graph, self.opset = graph, opset
        self.input_types = {v.name: (v.name, v.type.tensor_type.elem_type) for v in graph.input}
        self.values: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.producer = {out: n for n in graph.node for out in n.output}
        self.position = {id(n): i for i, n in enumerate(graph.node)}
        self.static_shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                              for v in [*graph.input, *graph.value_info]
                              if v.type.HasField("tensor_type")
                              and v.type.tensor_type.HasField("shape")
                              and all(d.HasField("dim_value") and d.dim_value > 0
                                      for d in v.type.tensor_type.shape.dim)}

    def extra(self, values: dict[str, np.ndarray], nodes: Iterable[Any]) -> None:
        """Tensors and nodes added while rewriting (unrolled iterations)."""
        self.values.update(values)
        for n in nodes:
            self.position[id(n)] = len(self.position)
            for out in n.output:
                self.producer[out] = n

    def value(self, name: str) -> np.ndarray | None:
        """The constant value of `name`, or None when it depends on a real input."""
        if name in self.values:
            return self.values[name]
        result = self._fold(name, zero_inputs=False)
        if result is not None:
            self.values[name] = result
        return result

    def shape(self, name: str) -> list[int] | None:
        """The static shape of `name`: from shape inference, or by running the nodes it
        depends on with zero-filled inputs (all input shapes are static here)."""
        if name not in self.static_shapes:
            result = self._fold(name, zero_inputs=True)
            if result is None:
                return None
            self.static_shapes[name] = list(np.shape(result))
        return self.static_shapes[name]

    def _fold(self, name: str, zero_inputs: bool) -> np.ndarray | None:
        found = self._cone(name, zero_inputs)
        if found is None:
            return None
        nodes, feeds = found
        try:
            return self._evaluate(nodes, name, feeds)
        except Exception:  # noqa: BLE001 - what the evaluator cannot fold stays dynamic
            return None

    def _cone(self, name: str, zero_inputs: bool) -> tuple[list[Any], list[str]] | None:
        """The nodes `name` depends on, in order, and the graph inputs among their inputs (to
        be fed zeros), or None: a real input (`zero_inputs` False) or a subgraph is in the way."""
        order: list[Any] = []
        feeds: list[str] = []
        seen: set[str] = set()
        stack = [name]
        limit = MAX_SHAPE_NODES if zero_inputs else MAX_CONE_NODES
        while stack:
            current = stack.pop()
            if current in seen or current in self.values or current == "":
                continue
            seen.add(current)
            node = self.producer.get(current)
            if node is None:
                if not zero_inputs or current not in self.input_types:
                    return None
                feeds.append(current)
                continue
            if any(a.type in (5, 10) for a in node.attribute) or len(order) >= limit:
                return None  # GRAPH / GRAPHS attributes: unresolved control flow
            if node.op_type in ("Shape", "Size") and not zero_inputs:
                dims = self.shape(node.input[0])
                if dims is None:
                    return None
                self.values[current] = _shape_value(node, dims)
                continue
            order.append(node)
            stack.extend(node.input)
        nodes = sorted({id(n): n for n in order}.values(), key=lambda n: self.position[id(n)])
        return nodes, feeds

    def _evaluate(self, nodes: list[Any], name: str, feeds: list[str]) -> np.ndarray:
        from onnx import helper, numpy_helper
        from onnx.reference import ReferenceEvaluator

        produced = {o for n in nodes for o in n.output}
        needed = {i for n in nodes for i in n.input if i and i not in produced} - set(feeds)
        inits = [numpy_helper.from_array(np.asarray(self.values[i]), i) for i in sorted(needed)]
        inputs = [helper.make_tensor_value_info(f, self.input_types[f][1], self.static_shapes[f])
                  for f in feeds]
        graph = helper.make_graph(list(nodes), "cone", inputs,
                                  [helper.make_empty_tensor_value_info(name)], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        zeros = {f: np.zeros(self.static_shapes[f], helper.tensor_dtype_to_np_dtype(
            self.input_types[f][1])) for f in feeds}
        return np.asarray(ReferenceEvaluator(model).run(None, zeros)[0])


def _shape_value(node: Any, dims: list[int]) -> np.ndarray:
    if node.op_type == "Size":
        return np.asarray(int(np.prod(dims, dtype=np.int64)), np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.asarray(dims[start:end] if "end" in attrs else dims[start:], np.int64)


def _inline_if(node: Any, folder: _Folder) -> list[Any] | None:
    """The selected branch's nodes, its outputs renamed to the If's by Identity nodes; None
    when the condition is only known at run time."""
    from onnx import helper

    cond = folder.value(node.input[0])
    if cond is None:
        log.info("%s branches on the run-time value '%s': the runner branches",
                 _node_label(node), node.input[0])
        return None
    if np.asarray(cond).size != 1:
        raise UnsupportedError(f"control flow: {_node_label(node)} has a condition of "
                               f"{np.asarray(cond).size} elements")
    branch = _attr_graph(node, "then_branch" if bool(np.asarray(cond).reshape(-1)[0])
                         else "else_branch")
    nodes = [helper.make_node("Constant", [], [t.name], value=t) for t in branch.initializer]
    nodes += list(branch.node)
    for inner, outer in zip(branch.output, node.output):
        if outer:
            nodes.append(helper.make_node("Identity", [inner.name], [outer],
                                          name=f"{node.name}_{outer}_out"))
    return nodes


SELECT_PREFIX = "tvmc_select_"


def _run_time_error(node: Any, why: str = "") -> UnsupportedError:
    return UnsupportedError(
        f"control flow: {_node_label(node)} branches on '{node.input[0]}', which is computed "
        f"at run time{why}",
        hint="fix the model inputs the condition depends on with --input-values NAME=VALUE "
             "(e.g. a sample rate)")


def _select_if(node: Any) -> list[Any]:
    """An If on a run-time condition as both branches and each output selected by
    Where(cond, then, else): the form in which the branches' output shapes are inferred
    (`_check_same_shapes`). Names the else branch shares with the then branch are renamed."""
    from onnx import helper, numpy_helper

    then_b, else_b = _attr_graph(node, "then_branch"), _attr_graph(node, "else_branch")
    clash = _produced_names(then_b) & _produced_names(else_b)
    tag = f"__else_{node.name or node.output[0]}"
    else_b = _renamed(else_b, {n: n + tag for n in clash})
    scalar_shape, cond = f"{SELECT_PREFIX}{node.input[0]}_shape", f"{SELECT_PREFIX}{node.input[0]}"
    nodes = [helper.make_node("Constant", [], [scalar_shape], value=numpy_helper.from_array(
                 np.zeros(0, np.int64), scalar_shape)),
             helper.make_node("Reshape", [node.input[0], scalar_shape], [cond])]  # [1] -> []
    for branch in (then_b, else_b):
        nodes += [helper.make_node("Constant", [], [t.name], value=t) for t in branch.initializer]
        nodes += list(branch.node)
    for then_out, else_out, outer in zip(then_b.output, else_b.output, node.output):
        if outer:
            nodes.append(helper.make_node("Where", [cond, then_out.name, else_out.name],
                                          [outer], name=f"{SELECT_PREFIX}{outer}"))
    return nodes


def _check_same_shapes(model: Any, node: Any, index: int, opset: int) -> None:
    """Both branches of a run-time If must give each output the same static shape (the
    runner's buffers are static): checked on the selected form of a copy of the graph."""
    import onnx

    replacement = _select_if(node)
    trial = onnx.ModelProto()
    trial.CopyFrom(model)
    nodes = list(trial.graph.node)
    del trial.graph.node[:]
    trial.graph.node.extend(nodes[:index] + replacement + nodes[index + 1:])
    folder = _Folder(_inferred(trial).graph, opset)
    for where in (n for n in replacement if n.name.startswith(SELECT_PREFIX)):
        then_shape, else_shape = folder.shape(where.input[1]), folder.shape(where.input[2])
        if then_shape is None or then_shape != else_shape:
            raise _run_time_error(node, f", and its branches give '{where.output[0]}' different "
                                        f"shapes ({then_shape} and {else_shape})")


def _produced_names(graph: Any) -> set[str]:
    """Every name a graph (and its nested subgraphs) defines: inputs, initializers, outputs
    of nodes."""
    names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    for n in graph.node:
        names.update(o for o in n.output if o)
        for a in n.attribute:
            for g in ([a.g] if a.type == 5 else list(a.graphs)):
                names |= _produced_names(g)
    return names


def _renamed(graph: Any, mapping: dict[str, str]) -> Any:
    """A copy of `graph` with every name in `mapping` replaced, nested subgraphs included."""
    import onnx

    copy = onnx.GraphProto()
    copy.CopyFrom(graph)
    _rename_in_place(copy, mapping)
    return copy


def _rename_in_place(graph: Any, mapping: dict[str, str]) -> None:
    for v in [*graph.input, *graph.output, *graph.value_info]:
        v.name = mapping.get(v.name, v.name)
    for t in graph.initializer:
        t.name = mapping.get(t.name, t.name)
    for n in graph.node:
        n.input[:] = [mapping.get(i, i) for i in n.input]
        n.output[:] = [mapping.get(o, o) for o in n.output]
        if n.name:
            n.name = mapping.get(n.name, n.name)
        for a in n.attribute:
            for g in ([a.g] if a.type == 5 else list(a.graphs)):
                _rename_in_place(g, mapping)


def _unroll_loop(node: Any, folder: _Folder, opset: int, position: int) -> list[Any] | None:
    """Loop with a constant trip count: each iteration's body copied with its own names, the
    loop-carried values chained, scan outputs stacked along a new first axis. None (a C
    loop) for a loop without scan outputs whose trip count or condition is known only at
    run time, or that runs more than MAX_UNROLL iterations."""
    from onnx import helper, numpy_helper

    label = _node_label(node)
    trip = folder.value(node.input[0]) if node.input and node.input[0] else None
    body = _attr_graph(node, "body")
    # without scan outputs a loop that does not unroll statically runs as a C loop
    at_run_time = len(body.output) == len(node.input) - 1
    if trip is None and at_run_time:
        return None
    if trip is None:
        raise UnsupportedError(f"control flow: {label} has no constant trip count; only "
                               "loops with a static trip count are compiled",
                               hint="fix the inputs the trip count depends on with "
                                    "--input-values NAME=VALUE")
    trips = int(np.asarray(trip).reshape(-1)[0])
    if trips > MAX_UNROLL and at_run_time:
        return None
    if trips > MAX_UNROLL:
        raise UnsupportedError(f"control flow: {label} runs {trips} iterations (at most "
                               f"{MAX_UNROLL} are unrolled)")
    carried = len(node.input) - 2
    scans = len(body.output) - 1 - carried
    cond_name = node.input[1] if len(node.input) > 1 else ""
    cond = True if not cond_name else folder.value(cond_name)
    if cond is None and at_run_time:
        return None
    if cond is None:
        raise UnsupportedError(f"control flow: {label} starts on a condition computed at run "
                               "time; only loops with a static trip count are compiled")
    tag = f"{node.name or 'loop'}_{position}"
    values = list(node.input[2:])
    scan_parts: list[list[str]] = [[] for _ in range(scans)]
    produced = _produced_names(body)
    nodes: list[Any] = []
    cond_now = bool(np.asarray(cond).reshape(-1)[0])
    done = 0
    while done < trips and cond_now:
        suffix = f"__{tag}_it{done}"
        mapping = {name: name + suffix for name in produced}
        iteration = _renamed(body, mapping)
        it_dtype = helper.tensor_dtype_to_np_dtype(body.input[0].type.tensor_type.elem_type) \
            if body.input[0].type.tensor_type.elem_type else np.int64
        consts = {iteration.input[0].name: np.asarray(done, it_dtype),
                  iteration.input[1].name: np.asarray(cond_now)}
        new_nodes = [helper.make_node("Constant", [], [n], value=numpy_helper.from_array(v, n))
                     for n, v in consts.items()]
        new_nodes += [helper.make_node("Identity", [outer], [inner.name])
                      for inner, outer in zip(iteration.input[2:], values)]
        new_nodes += [helper.make_node("Constant", [], [t.name], value=t)
                      for t in iteration.initializer]
        new_nodes += list(iteration.node)
        folder.extra(consts, new_nodes)
        nodes += new_nodes
        values = [v.name for v in iteration.output[1:1 + carried]]
        for k in range(scans):
            scan_parts[k].append(iteration.output[1 + carried + k].name)
        next_cond = folder.value(iteration.output[0].name)
        if next_cond is None and at_run_time:
            return None
        if next_cond is None:
            raise UnsupportedError(f"control flow: {label} computes its loop condition at run "
                                   "time; only loops with a static trip count are compiled")
        cond_now = bool(np.asarray(next_cond).reshape(-1)[0])
        done += 1
    for outer, value in zip(node.output[:carried], values):
        if outer:
            nodes.append(helper.make_node("Identity", [value], [outer]))
    for k, outer in enumerate(node.output[carried:carried + scans]):
        if not outer:
            continue
        if not scan_parts[k]:
            raise UnsupportedError(f"control flow: {label} runs no iteration, so its scan "
                                   f"output '{outer}' is empty")
        nodes += _stack(scan_parts[k], outer, opset)
    return nodes


def _stack(names: list[str], output: str, opset: int) -> list[Any]:
    """np.stack(names) as Unsqueeze + Concat nodes."""
    from onnx import helper, numpy_helper

    nodes, parts = [], []
    axes_name = f"{output}__axes0"
    if opset >= 13:
        nodes.append(helper.make_node("Constant", [], [axes_name],
                                      value=numpy_helper.from_array(np.array([0], np.int64),
                                                                    axes_name)))
    for i, name in enumerate(names):
        part = f"{output}__part{i}"
        if opset >= 13:
            nodes.append(helper.make_node("Unsqueeze", [name, axes_name], [part]))
        else:
            nodes.append(helper.make_node("Unsqueeze", [name], [part], axes=[0]))
        parts.append(part)
    nodes.append(helper.make_node("Concat", parts, [output], axis=0))
    return nodes
