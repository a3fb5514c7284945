"""ONNX If on run-time conditions, built with onnx.helper (float32): Ifs nested in a branch,
and branches that return an outer value unchanged."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT


def _branch(name: str, nodes: list, output: str, inits: tuple = ()) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(output, F32, [2, 4])],
                             list(inits))


def nested_if(seed: int = 41) -> onnx.ModelProto:
    """x[2,4], a[], b[] -> If(a > 0): then If(b > 0) (then relu(x @ W) * 2, else
    Identity(x)), else Identity(x) (branches that compute nothing: the input itself) ->
    y[2,4]."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((4, 4)) * 0.5).astype(np.float32), "w")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    inner_then = _branch("inner_then", [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="inner_matmul"),
        helper.make_node("Relu", ["xw"], ["r"], name="inner_relu"),
        helper.make_node("Mul", ["r", "two"], ["doubled"], name="inner_double")],
        "doubled", (w, two))
    inner_else = _branch("inner_else", [helper.make_node("Identity", ["x"], ["x_inner"])],
                         "x_inner")
    outer_then = _branch("outer_then", [
        helper.make_node("Greater", ["b", "zero"], ["b_pos"], name="b_positive"),
        helper.make_node("If", ["b_pos"], ["inner"], name="inner_if", then_branch=inner_then,
                         else_branch=inner_else)], "inner")
    outer_else = _branch("outer_else", [helper.make_node("Identity", ["x"], ["x_outer"])],
                         "x_outer")
    graph = helper.make_graph(
        [helper.make_node("Greater", ["a", "zero"], ["a_pos"], name="a_positive"),
         helper.make_node("If", ["a_pos"], ["y"], name="outer_if", then_branch=outer_then,
                          else_branch=outer_else)],
        "nested_if",
        [helper.make_tensor_value_info("x", F32, [2, 4]),
         helper.make_tensor_value_info("a", F32, []), helper.make_tensor_value_info("b", F32, [])],
        [helper.make_tensor_value_info("y", F32, [2, 4])],
        [numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def conv_if(seed: int = 42) -> onnx.ModelProto:
    """x[1,3,8,8], flag bool[] -> If(flag): then relu(conv3x3(x)), else sigmoid(conv1x1(x))
    -> y[1,4,8,8]: convolutions inside run-time branches (channels-last there too)."""
    rng = np.random.default_rng(seed)

    def conv(name: str, k: int, activation: str) -> onnx.GraphProto:
        w = numpy_helper.from_array((rng.standard_normal((4, 3, k, k)) * 0.3)
                                    .astype(np.float32), f"{name}_w")
        b = numpy_helper.from_array((rng.standard_normal(4) * 0.1).astype(np.float32),
                                    f"{name}_b")
        nodes = [helper.make_node("Conv", ["x", f"{name}_w", f"{name}_b"], [f"{name}_c"],
                                  name=f"{name}_conv", pads=[k // 2] * 4),
                 helper.make_node(activation, [f"{name}_c"], [f"{name}_y"],
                                  name=f"{name}_act")]
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(
            f"{name}_y", F32, [1, 4, 8, 8])], [w, b])

    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["y"], name="conv_if",
                          then_branch=conv("wide", 3, "Relu"),
                          else_branch=conv("point", 1, "Sigmoid"))],
        "conv_if",
        [helper.make_tensor_value_info("x", F32, [1, 3, 8, 8]),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", F32, [1, 4, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def loop_run_time(until: bool = False, seed: int = 43) -> onnx.ModelProto:
    """x[1,4] -> Loop: acc = tanh(acc @ W + x * i) from zeros -> acc[1,4], no scan output.
    The trip count is the int64 input `trips`; `until`: no trip count input, the loop runs
    while sum(|acc|) < 1.5 (at most 50 iterations): a condition the body computes."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((4, 4)) * 0.5).astype(np.float32), "w")
    nodes = [helper.make_node("Cast", ["i"], ["i_f"], to=F32),
             helper.make_node("Mul", ["x", "i_f"], ["xi"]),
             helper.make_node("MatMul", ["acc_in", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "xi"], ["pre"]),
             helper.make_node("Tanh", ["pre"], ["acc_out"])]
    inits = [w, numpy_helper.from_array(np.zeros((1, 4), np.float32), "acc0")]
    if until:
        nodes += [helper.make_node("Abs", ["acc_out"], ["mag"]),
                  helper.make_node("ReduceSum", ["mag"], ["total"], keepdims=0),
                  helper.make_node("Less", ["total", "limit"], ["cond_out"])]
        inits += [numpy_helper.from_array(np.array(True), "cond0"),
                  numpy_helper.from_array(np.array(50, np.int64), "trips")]
        body_inits = [numpy_helper.from_array(np.array(1.5, np.float32), "limit")]
    else:
        nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
        body_inits = []
    body = helper.make_graph(
        nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", F32, [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F32, [1, 4])], body_inits)
    inputs = [helper.make_tensor_value_info("x", F32, [1, 4])]
    if not until:
        inputs.append(helper.make_tensor_value_info("trips", TensorProto.INT64, []))
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond0" if until else "", "acc0"], ["acc"],
                          name="run_time_loop", body=body)],
        "loop_run_time", inputs, [helper.make_tensor_value_info("acc", F32, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
