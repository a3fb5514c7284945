"""Small recurrent and control-flow ONNX models built with onnx.helper (float32): LSTM and GRU
in every direction with and without initial states, If on a constant condition, Loop with a
static trip count, and a voice-activity-detector-like graph (If on a sample-rate input, each
branch an LSTM with its state passed in and out)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
F32 = TensorProto.FLOAT


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _weights(rng: np.random.Generator, name: str, shape: tuple[int, ...],
             scale: float = 0.4) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def recurrent(op: str, direction: str, initial: bool, steps: int = 6, batch: int = 2,
              inputs: int = 5, hidden: int = 4, linear_before_reset: int = 0,
              layout: int = 0, peepholes: bool = False, seed: int = 0) -> onnx.ModelProto:
    """One LSTM or GRU node; with `initial`, the initial states are model inputs."""
    rng = np.random.default_rng(seed)
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    dirs = 2 if direction == "bidirectional" else 1
    inits = [_weights(rng, "W", (dirs, gates * hidden, inputs)),
             _weights(rng, "R", (dirs, gates * hidden, hidden)),
             _weights(rng, "B", (dirs, 2 * gates * hidden))]
    node_inputs = ["X", "W", "R", "B", "", "", "", ""]
    x_shape = [steps, batch, inputs] if layout == 0 else [batch, steps, inputs]
    state = [dirs, batch, hidden] if layout == 0 else [batch, dirs, hidden]
    graph_inputs = [helper.make_tensor_value_info("X", F32, x_shape)]
    if initial:
        node_inputs[5] = "h0"
        graph_inputs.append(helper.make_tensor_value_info("h0", F32, state))
        if op == "LSTM":
            node_inputs[6] = "c0"
            graph_inputs.append(helper.make_tensor_value_info("c0", F32, state))
    if peepholes:
        inits.append(_weights(rng, "P", (dirs, 3 * hidden)))
        node_inputs[7] = "P"
    outputs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    attrs = {"hidden_size": hidden, "direction": direction, "layout": layout}
    if op == "GRU":
        attrs["linear_before_reset"] = linear_before_reset
    node = helper.make_node(op, node_inputs[:8 if op == "LSTM" else 6], outputs,
                            name=f"{op.lower()}0", **attrs)
    y_shape = [steps, dirs, batch, hidden] if layout == 0 else [batch, steps, dirs, hidden]
    graph = helper.make_graph(
        [node], f"{op}_{direction}", graph_inputs,
        [helper.make_tensor_value_info("Y", F32, y_shape)]
        + [helper.make_tensor_value_info(n, F32, state) for n in outputs[1:]], inits)
    return _model(graph)


def _lstm_nodes(rng: np.random.Generator, prefix: str, x: str, h: str, c: str, inputs: int,
                hidden: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """One forward LSTM reading x[T,1,inputs] and the state (h, c), writing
    {prefix}_y / {prefix}_h / {prefix}_c."""
    inits = [_weights(rng, f"{prefix}_W", (1, 4 * hidden, inputs)),
             _weights(rng, f"{prefix}_R", (1, 4 * hidden, hidden)),
             _weights(rng, f"{prefix}_B", (1, 8 * hidden))]
    node = helper.make_node("LSTM", [x, f"{prefix}_W", f"{prefix}_R", f"{prefix}_B", "", h, c],
                            [f"{prefix}_y", f"{prefix}_h", f"{prefix}_c"], hidden_size=hidden,
                            name=f"{prefix}_lstm")
    return [node], inits


def _vad_branch(rng: np.random.Generator, prefix: str, features: int, steps: int,
                hidden: int) -> onnx.GraphProto:
    """x[steps*features] -> frames [steps,1,features] -> a linear encoder with ReLU -> LSTM
    whose state comes from the outer `state`[2,1,H] (h = state[0], c = state[1], scalar
    Gather indices as Constant nodes, as exported from PyTorch) -> sigmoid head averaged over
    time: (prob[1,1], state_out[2,1,H])."""
    enc = 2 * hidden
    p = prefix
    inits = [numpy_helper.from_array(np.array([steps, 1, features], np.int64), f"{p}_shape"),
             _weights(rng, f"{p}_enc", (features, enc)),
             _weights(rng, f"{p}_head", (hidden, 1)),
             numpy_helper.from_array(np.array([1, steps], np.int64), f"{p}_out_shape"),
             numpy_helper.from_array(np.array([0], np.int64), f"{p}_axes0")]
    scalar = {i: helper.make_tensor(f"{p}_i{i}", TensorProto.INT64, [], [i]) for i in (0, 1)}
    nodes = [helper.make_node("Constant", [], [f"{p}_idx{i}"], value=scalar[i]) for i in (0, 1)]
    nodes += [helper.make_node("Gather", ["state", f"{p}_idx0"], [f"{p}_h2"]),
              helper.make_node("Gather", ["state", f"{p}_idx1"], [f"{p}_c2"]),
              helper.make_node("Unsqueeze", [f"{p}_h2", f"{p}_axes0"], [f"{p}_h0"]),
              helper.make_node("Unsqueeze", [f"{p}_c2", f"{p}_axes0"], [f"{p}_c0"]),
              helper.make_node("Reshape", ["x", f"{p}_shape"], [f"{p}_frames"]),
              helper.make_node("MatMul", [f"{p}_frames", f"{p}_enc"], [f"{p}_mm"]),
              helper.make_node("Relu", [f"{p}_mm"], [f"{p}_feat"])]
    lstm, lstm_inits = _lstm_nodes(rng, p, f"{p}_feat", f"{p}_h0", f"{p}_c0", enc, hidden)
    nodes += lstm
    nodes += [helper.make_node("Squeeze", [f"{p}_y", f"{p}_axes"], [f"{p}_seq"]),
              helper.make_node("MatMul", [f"{p}_seq", f"{p}_head"], [f"{p}_logit"]),
              helper.make_node("Sigmoid", [f"{p}_logit"], [f"{p}_p"]),
              helper.make_node("Reshape", [f"{p}_p", f"{p}_out_shape"], [f"{p}_ps"]),
              helper.make_node("ReduceMean", [f"{p}_ps"], [f"{p}_prob"], axes=[1]),
              helper.make_node("Concat", [f"{p}_h", f"{p}_c"], [f"{p}_state"], axis=0)]
    inits += lstm_inits + [numpy_helper.from_array(np.array([1], np.int64), f"{p}_axes")]
    return helper.make_graph(
        nodes, prefix, [],
        [helper.make_tensor_value_info(f"{p}_prob", F32, [1, 1]),
         helper.make_tensor_value_info(f"{p}_state", F32, [2, 1, hidden])], inits)


def vad(samples: int = 64, hidden: int = 8, sr_constant: int | None = None,
        seed: int = 3) -> onnx.ModelProto:
    """Voice-activity-detector-like (silero-VAD v5's shape): inputs x[1,samples], sr (int64
    scalar), state[2,1,H]; If(sr == 16000) selects a 16 kHz branch (frames of 16 samples) or
    an 8 kHz one (frames of 8), each an encoder + LSTM on the state passed in; outputs (prob,
    state_out). With `sr_constant`, sr is an initializer, not an input."""
    rng = np.random.default_rng(seed)
    then_graph = _vad_branch(rng, "sr16k", 16, samples // 16, hidden)
    else_graph = _vad_branch(rng, "sr8k", 8, samples // 8, hidden)
    state = [2, 1, hidden]
    inputs = [helper.make_tensor_value_info("x", F32, [1, samples])]
    inits = [numpy_helper.from_array(np.array(16000, np.int64), "sr16000")]
    if sr_constant is None:
        inputs.append(helper.make_tensor_value_info("sr", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(sr_constant, np.int64), "sr"))
    inputs.append(helper.make_tensor_value_info("state", F32, state))
    nodes = [helper.make_node("Equal", ["sr", "sr16000"], ["is16k"]),
             helper.make_node("If", ["is16k"], ["prob", "state_out"], name="sample_rate_if",
                              then_branch=then_graph, else_branch=else_graph)]
    outputs = [helper.make_tensor_value_info("prob", F32, [1, 1]),
               helper.make_tensor_value_info("state_out", F32, state)]
    return _model(helper.make_graph(nodes, "vad", inputs, outputs, inits))


def if_constant(flag: bool = True, seed: int = 4) -> onnx.ModelProto:
    """x[2,6] -> If(a constant computed from initializers: ReduceSum(k) > 0) -> then: MatMul
    + Tanh, else: MatMul + Neg -> y[2,4]."""
    rng = np.random.default_rng(seed)
    k = np.array([1.0 if flag else -1.0, 0.5], np.float32)
    then_graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["then_mm"]),
         helper.make_node("Tanh", ["then_mm"], ["then_y"])], "then", [],
        [helper.make_tensor_value_info("then_y", F32, [2, 4])])
    else_graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["else_mm"]),
         helper.make_node("Neg", ["else_mm"], ["else_y"])], "else", [],
        [helper.make_tensor_value_info("else_y", F32, [2, 4])])
    nodes = [helper.make_node("ReduceSum", ["k"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], name="const_if", then_branch=then_graph,
                              else_branch=else_graph)]
    inits = [numpy_helper.from_array(k, "k"), numpy_helper.from_array(np.float32(0), "zero"),
             _weights(rng, "w", (6, 4))]
    return _model(helper.make_graph(nodes, "if_constant",
                                    [helper.make_tensor_value_info("x", F32, [2, 6])],
                                    [helper.make_tensor_value_info("y", F32, [2, 4])], inits))


def loop_static(trips: int = 3, stop_after: int | None = None, trip_input: bool = False,
                seed: int = 5) -> onnx.ModelProto:
    """x[1,4] -> Loop(trip count 3): acc = tanh(acc @ W + x * i) (the iteration number used),
    scan output acc * 2 -> (acc_final[1,4], stacked[3,1,4]). `stop_after`: the body's
    condition becomes i + 1 < stop_after (a while loop that ends early, statically);
    `trip_input`: the trip count is a model input (no static form)."""
    rng = np.random.default_rng(seed)
    if stop_after is None:
        cond = [helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    else:
        cond = [helper.make_node("Add", ["i", "one"], ["next_i"]),
                helper.make_node("Less", ["next_i", "stop"], ["cond_out"])]
    body = helper.make_graph(
        cond + [helper.make_node("Cast", ["i"], ["i_f"], to=F32),
         helper.make_node("Mul", ["x", "i_f"], ["xi"]),
         helper.make_node("MatMul", ["acc_in", "w"], ["mm"]),
         helper.make_node("Add", ["mm", "xi"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["acc_out"]),
         helper.make_node("Mul", ["acc_out", "two"], ["scan"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", F32, [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F32, [1, 4]),
         helper.make_tensor_value_info("scan", F32, [1, 4])],
        [numpy_helper.from_array(np.float32(2), "two"),
         numpy_helper.from_array(np.array(1, np.int64), "one"),
         numpy_helper.from_array(np.array(stop_after or 0, np.int64), "stop")])
    start = ["trips", "cond0" if stop_after else "", "x"]
    nodes = [helper.make_node("Loop", start, ["acc", "stacked"], name="static_loop", body=body)]
    inits = [_weights(rng, "w", (4, 4)), numpy_helper.from_array(np.array(True), "cond0")]
    inputs = [helper.make_tensor_value_info("x", F32, [1, 4])]
    if trip_input:
        inputs.append(helper.make_tensor_value_info("trips", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(trips, np.int64), "trips"))
    runs = min(trips, stop_after or trips)
    return _model(helper.make_graph(
        nodes, "loop_static", inputs,
        [helper.make_tensor_value_info("acc", F32, [1, 4]),
         helper.make_tensor_value_info("stacked", F32, [runs, 1, 4])], inits))


def if_on_shape(seed: int = 6) -> onnx.ModelProto:
    """silero-VAD's exporter pattern: an If (on a constant) returns x[2,6] either unsqueezed
    to rank 3 or as it is; a second If branches on the rank of that result (Size(Shape(.)) ==
    3), known only once the first If is resolved -> y[2,4]."""
    rng = np.random.default_rng(seed)
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes0")
    first = helper.make_node(
        "If", ["flag"], ["maybe3d"], name="rank_if",
        then_branch=helper.make_graph([helper.make_node("Unsqueeze", ["x", "axes0"], ["u"])],
                                      "unsqueeze", [], [helper.make_tensor_value_info(
                                          "u", F32, [1, 2, 6])]),
        else_branch=helper.make_graph([helper.make_node("Identity", ["x"], ["same"])],
                                      "same", [], [helper.make_tensor_value_info(
                                          "same", F32, [2, 6])]))
    second = helper.make_node(
        "If", ["is3d"], ["flat"], name="squeeze_if",
        then_branch=helper.make_graph([helper.make_node("Squeeze", ["maybe3d", "axes0"], ["sq"])],
                                      "squeeze", [], [helper.make_tensor_value_info(
                                          "sq", F32, [2, 6])]),
        else_branch=helper.make_graph([helper.make_node("Identity", ["maybe3d"], ["id"])],
                                      "keep", [], [helper.make_tensor_value_info(
                                          "id", F32, [2, 6])]))
    nodes = [first,
             helper.make_node("Shape", ["maybe3d"], ["shape"]),
             helper.make_node("Size", ["shape"], ["rank"]),
             helper.make_node("Equal", ["rank", "three"], ["is3d"]),
             second,
             helper.make_node("MatMul", ["flat", "w"], ["y"])]
    inits = [axes, numpy_helper.from_array(np.array(True), "flag"),
             numpy_helper.from_array(np.array(3, np.int64), "three"), _weights(rng, "w", (6, 4))]
    return _model(helper.make_graph(nodes, "if_on_shape",
                                    [helper.make_tensor_value_info("x", F32, [2, 6])],
                                    [helper.make_tensor_value_info("y", F32, [2, 4])], inits))


CONTROL_MODELS: dict[str, Callable[[], onnx.ModelProto]] = {
    "if_on_shape": if_on_shape,
    "if_constant_then": lambda: if_constant(True),
    "if_constant_else": lambda: if_constant(False),
    "loop_static": loop_static,
    "loop_ends_early": lambda: loop_static(trips=6, stop_after=4),
    "vad_sr_initializer": lambda: vad(sr_constant=8000),
}


def lstm_with(**attributes: object) -> onnx.ModelProto:
    """A forward LSTM with extra node attributes (e.g. input_forget=1, an unsupported
    activation): an exit-4 error our converter raises inside TVM's importer."""
    model = recurrent("LSTM", "forward", False)
    node = model.graph.node[0]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attributes.items())
    return model
