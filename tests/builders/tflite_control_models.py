"""Float TFLite test models with control flow: IF (then/else subgraphs) and WHILE (cond/body
subgraphs), built with the tflite package's flatbuffer builders (tflite_models.TFLiteGraph).
Each runs on LiteRT, the independent reference."""
from __future__ import annotations

import numpy as np

from .tflite_models import TFLiteGraph, _fused

NONE = {"FusedActivationFunction": _fused("NONE")}
WIDTH = 8


def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.standard_normal(shape) * 0.4).astype(np.float32)


def _dense(g: TFLiteGraph, rng: np.random.Generator, x: int, units: int, inputs: int,
           name: str, sg: int, activation: str = "NONE") -> int:
    w = g.add_tensor(f"{name}_w", [units, inputs], "float32", _weights(rng, (units, inputs)),
                     subgraph=sg)
    b = g.add_tensor(f"{name}_b", [units], "float32", _weights(rng, (units,)), subgraph=sg)
    y = g.add_tensor(name, [1, units], subgraph=sg)
    g.add_operator("FULLY_CONNECTED", [x, w, b], [y],
                   ("FullyConnectedOptions", {"FusedActivationFunction": _fused(activation)}),
                   subgraph=sg)
    return y


def if_model(condition: bool | None = None, seed: int = 31, hidden: int = 64,
             computed: bool = False) -> bytes:
    """x[1,8] f32, flag bool[] -> IF(flag): then = a wide MLP (8 -> `hidden` relu -> 8),
    else = tanh(x * 0.5 + x); y[1,8]. With `condition`, the flag is a constant, not an
    input; `computed`: a constant computed in the graph (LESS of two constants)."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    then_sg, else_sg = g.add_subgraph("then"), g.add_subgraph("else")
    x = g.add_tensor("x", [1, WIDTH])
    if condition is None:
        flag = g.add_tensor("flag", [], "bool")
    elif computed:
        lo = g.add_tensor("lo", [], "int32", np.array(0 if condition else 1, np.int32))
        hi = g.add_tensor("hi", [], "int32", np.array(1, np.int32))
        flag = g.add_tensor("flag", [], "bool")
        g.add_operator("LESS", [lo, hi], [flag])
    else:
        flag = g.add_tensor("flag", [], "bool", np.array(condition, np.bool_))
    y = g.add_tensor("y", [1, WIDTH])
    g.add_operator("IF", [flag, x], [y],
                   ("IfOptions", {"ThenSubgraphIndex": then_sg, "ElseSubgraphIndex": else_sg}))
    g.set_io([x] if condition is not None else [x, flag], [y])

    tx = g.add_tensor("x", [1, WIDTH], subgraph=then_sg)
    h = _dense(g, rng, tx, hidden, WIDTH, "wide", then_sg, "RELU")
    ty = _dense(g, rng, h, WIDTH, hidden, "narrow", then_sg)
    g.set_io([tx], [ty], subgraph=then_sg)

    ex = g.add_tensor("x", [1, WIDTH], subgraph=else_sg)
    half = g.add_tensor("half", [1], "float32", np.array([0.5], np.float32), subgraph=else_sg)
    scaled = g.add_tensor("scaled", [1, WIDTH], subgraph=else_sg)
    g.add_operator("MUL", [ex, half], [scaled], ("MulOptions", NONE), subgraph=else_sg)
    summed = g.add_tensor("summed", [1, WIDTH], subgraph=else_sg)
    g.add_operator("ADD", [scaled, ex], [summed], ("AddOptions", NONE), subgraph=else_sg)
    ey = g.add_tensor("ey", [1, WIDTH], subgraph=else_sg)
    g.add_operator("TANH", [summed], [ey], subgraph=else_sg)
    g.set_io([ex], [ey], subgraph=else_sg)
    return g.to_bytes()


def while_model(trips: int | None = 5, seed: int = 32) -> bytes:
    """A recurrence run `trips` times: loop state (i int32[], h[1,8], x[1,8]); cond: i < n;
    body: i + 1, h = tanh(FC(h) + x), x unchanged. Output h. `trips` None: n is an int32[]
    input (the trip count known at run time), else a constant of the cond subgraph."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    cond, body = g.add_subgraph("cond"), g.add_subgraph("body")
    x = g.add_tensor("x", [1, WIDTH])
    h0 = g.add_tensor("h0", [1, WIDTH], "float32", np.zeros((1, WIDTH), np.float32))
    i0 = g.add_tensor("i0", [], "int32", np.array(0, np.int32))
    state = [i0, h0, x]
    if trips is None:
        n = g.add_tensor("n", [], "int32")
        state.append(n)
    outs = [g.add_tensor(name, shape, dtype) for name, shape, dtype in
            [("i_out", [], "int32"), ("h", [1, WIDTH], "float32"),
             ("x_out", [1, WIDTH], "float32"), ("n_out", [], "int32")][:len(state)]]
    g.add_operator("WHILE", state, outs,
                   ("WhileOptions", {"CondSubgraphIndex": cond, "BodySubgraphIndex": body}))
    g.set_io([x] + ([state[3]] if trips is None else []), [outs[1]])

    def loop_vars(sg: int) -> list[int]:
        spec = [("i", [], "int32"), ("h", [1, WIDTH], "float32"), ("x", [1, WIDTH], "float32"),
                ("n", [], "int32")][:len(state)]
        return [g.add_tensor(name, shape, dtype, subgraph=sg) for name, shape, dtype in spec]

    cv = loop_vars(cond)
    limit = cv[3] if trips is None else g.add_tensor("limit", [], "int32",
                                                     np.array(trips, np.int32), subgraph=cond)
    keep = g.add_tensor("keep_going", [], "bool", subgraph=cond)
    g.add_operator("LESS", [cv[0], limit], [keep], subgraph=cond)
    g.set_io(cv, [keep], subgraph=cond)

    bv = loop_vars(body)
    one = g.add_tensor("one", [], "int32", np.array(1, np.int32), subgraph=body)
    i_next = g.add_tensor("i_next", [], "int32", subgraph=body)
    g.add_operator("ADD", [bv[0], one], [i_next], ("AddOptions", NONE), subgraph=body)
    fc = _dense(g, rng, bv[1], WIDTH, WIDTH, "recurrent", body)
    pre = g.add_tensor("pre", [1, WIDTH], subgraph=body)
    g.add_operator("ADD", [fc, bv[2]], [pre], ("AddOptions", NONE), subgraph=body)
    h_next = g.add_tensor("h_next", [1, WIDTH], subgraph=body)
    g.add_operator("TANH", [pre], [h_next], subgraph=body)
    g.set_io(bv, [i_next, h_next, bv[2]] + bv[3:], subgraph=body)
    return g.to_bytes()


def while_growing() -> bytes:
    """A WHILE whose body doubles its value (h[1,8] -> CONCATENATION(h, h) [1,16]): the
    shape changes every iteration (LiteRT resizes; a static C runner cannot)."""
    g = TFLiteGraph()
    cond, body = g.add_subgraph("cond"), g.add_subgraph("body")
    x = g.add_tensor("x", [1, WIDTH])
    y = g.add_tensor("y", [1, WIDTH])
    g.add_operator("WHILE", [x], [y],
                   ("WhileOptions", {"CondSubgraphIndex": cond, "BodySubgraphIndex": body}))
    g.set_io([x], [y])
    cv = g.add_tensor("h", [1, WIDTH], subgraph=cond)
    keep = g.add_tensor("keep_going", [], "bool", np.array(False), subgraph=cond)
    g.set_io([cv], [keep], subgraph=cond)
    bv = g.add_tensor("h", [1, WIDTH], subgraph=body)
    doubled = g.add_tensor("doubled", [1, 2 * WIDTH], subgraph=body)
    g.add_operator("CONCATENATION", [bv, bv], [doubled],
                   ("ConcatenationOptions", {"Axis": 1, **NONE}), subgraph=body)
    g.set_io([bv], [doubled], subgraph=body)
    return g.to_bytes()


def if_custom() -> bytes:
    """x[1,4,4,3], flag bool[] -> IF(flag): then the user's CUSTOM "ScaleShift"(x, w) ->
    (y = x * w + 1, k = argmax over channels), else (RELU(x), CAST(REDUCE_MAX(x, 3)) to
    int32): a custom operator inside a branch subgraph."""
    g = TFLiteGraph()
    then_sg, else_sg = g.add_subgraph("then"), g.add_subgraph("else")
    x = g.add_tensor("x", [1, 4, 4, 3])
    flag = g.add_tensor("flag", [], "bool")
    y = g.add_tensor("y", [1, 4, 4, 3])
    k = g.add_tensor("k", [1, 4, 4], "int32")
    g.add_operator("IF", [flag, x], [y, k],
                   ("IfOptions", {"ThenSubgraphIndex": then_sg, "ElseSubgraphIndex": else_sg}))
    g.set_io([x, flag], [y, k])
    tx = g.add_tensor("x", [1, 4, 4, 3], subgraph=then_sg)
    w = g.add_tensor("w", [3], "float32", np.array([0.5, -2.0, 3.0], np.float32),
                     subgraph=then_sg)
    ty = g.add_tensor("y", [1, 4, 4, 3], subgraph=then_sg)
    tk = g.add_tensor("k", [1, 4, 4], "int32", subgraph=then_sg)
    g.add_operator("CUSTOM", [tx, w], [ty, tk], custom_code="ScaleShift", custom_options=b"",
                   subgraph=then_sg)
    g.set_io([tx], [ty, tk], subgraph=then_sg)
    ex = g.add_tensor("x", [1, 4, 4, 3], subgraph=else_sg)
    ey = g.add_tensor("relu", [1, 4, 4, 3], subgraph=else_sg)
    axis = g.add_tensor("axis", [1], "int32", np.array([3], np.int32), subgraph=else_sg)
    top = g.add_tensor("top", [1, 4, 4], subgraph=else_sg)
    ek = g.add_tensor("top_int", [1, 4, 4], "int32", subgraph=else_sg)
    g.add_operator("RELU", [ex], [ey], subgraph=else_sg)
    g.add_operator("REDUCE_MAX", [ex, axis], [top], ("ReducerOptions", {"KeepDims": False}),
                   subgraph=else_sg)
    g.add_operator("CAST", [top], [ek], subgraph=else_sg)
    g.set_io([ex], [ey, ek], subgraph=else_sg)
    return g.to_bytes()


def if_int8() -> bytes:
    """x int8[1,8], flag bool[] -> IF(flag): then = relu(x), else = x; y int8[1,8]. TVM's
    frontend refuses a quantised IF (an exit-4 error)."""
    g = TFLiteGraph()
    then_sg, else_sg = g.add_subgraph("then"), g.add_subgraph("else")
    x = g.add_tensor("x", [1, WIDTH], "int8", scale=0.1, zero_point=0)
    flag = g.add_tensor("flag", [], "bool")
    y = g.add_tensor("y", [1, WIDTH], "int8", scale=0.1, zero_point=0)
    g.add_operator("IF", [flag, x], [y],
                   ("IfOptions", {"ThenSubgraphIndex": then_sg, "ElseSubgraphIndex": else_sg}))
    g.set_io([x, flag], [y])
    for sg, op in ((then_sg, "RELU"), (else_sg, None)):
        bx = g.add_tensor("x", [1, WIDTH], "int8", scale=0.1, zero_point=0, subgraph=sg)
        if op is None:
            g.set_io([bx], [bx], subgraph=sg)
            continue
        by = g.add_tensor("y", [1, WIDTH], "int8", scale=0.1, zero_point=0, subgraph=sg)
        g.add_operator(op, [bx], [by], subgraph=sg)
        g.set_io([bx], [by], subgraph=sg)
    return g.to_bytes()
