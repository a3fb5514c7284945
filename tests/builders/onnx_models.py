"""Tiny float32 ONNX models built with ``onnx.helper`` (NCHW, seeded numpy weights).

Every builder returns an ``onnx.ModelProto`` (opset 17, IR version 8 unless stated);
every "good" one passes ``onnx.checker.check_model`` and runs in onnxruntime.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # opset 17 needs IR >= 8; onnxruntime 1.32 reads up to IR 11
CUSTOM_DOMAIN = "com.example"

Dims = Sequence[int | str]


def save(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` (.onnx)."""
    onnx.save(model, os.fspath(path))


def _value(name: str, shape: Dims, elem_type: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, list(shape))


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _weights(rng: np.random.Generator, shape: Sequence[int], std: float = 0.3) -> np.ndarray:
    return (rng.standard_normal(shape) * std).astype(np.float32)


def _model(
    name: str,
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    extra_opsets: Sequence[onnx.OperatorSetIdProto] = (),
) -> onnx.ModelProto:
    """Assemble a model with the default opset (plus ``extra_opsets``) and IR version."""
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", OPSET), *extra_opsets]
    return helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION, producer_name="tvmc-tests")


# ---------------------------------------------------------------- good models


def conv2d(bias: bool = True, relu: bool = True, seed: int = 0) -> onnx.ModelProto:
    """x[1,3,8,8] -> Conv 3x3x4 pads 1 (+bias) (+Relu) -> y[1,4,8,8]."""
    rng = np.random.default_rng(seed)
    inits = [_const("conv.weight", _weights(rng, [4, 3, 3, 3]))]
    if bias:
        inits.append(_const("conv.bias", _weights(rng, [4], 0.1)))
    conv_out = "conv_out" if relu else "y"
    conv_inputs = ["x", *(init.name for init in inits)]
    nodes = [helper.make_node("Conv", conv_inputs, [conv_out], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    if relu:
        nodes.append(helper.make_node("Relu", [conv_out], ["y"]))
    return _model("conv2d", nodes, [_value("x", [1, 3, 8, 8])], [_value("y", [1, 4, 8, 8])], inits)


def depthwise_conv2d(seed: int = 1) -> onnx.ModelProto:
    """x[1,4,8,8] -> Conv group=4, 3x3, pads 1, +bias -> y[1,4,8,8]."""
    rng = np.random.default_rng(seed)
    inits = [_const("dw.weight", _weights(rng, [4, 1, 3, 3])), _const("dw.bias", _weights(rng, [4], 0.1))]
    node = helper.make_node("Conv", ["x", "dw.weight", "dw.bias"], ["y"],
                            group=4, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return _model("depthwise_conv2d", [node], [_value("x", [1, 4, 8, 8])], [_value("y", [1, 4, 8, 8])], inits)


def gemm(seed: int = 2) -> onnx.ModelProto:
    """x[1,16] -> Gemm(W[8,16], transB=1, C[8]) -> y[1,8]."""
    rng = np.random.default_rng(seed)
    inits = [_const("fc.weight", _weights(rng, [8, 16])), _const("fc.bias", _weights(rng, [8], 0.1))]
    node = helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], transB=1)
    return _model("gemm", [node], [_value("x", [1, 16])], [_value("y", [1, 8])], inits)


def matmul(seed: int = 3) -> onnx.ModelProto:
    """x[2,16] -> MatMul(W[16,8]) -> Add(b[8]) -> y[2,8]."""
    rng = np.random.default_rng(seed)
    inits = [_const("W", _weights(rng, [16, 8])), _const("b", _weights(rng, [8], 0.1))]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])]
    return _model("matmul", nodes, [_value("x", [2, 16])], [_value("y", [2, 8])], inits)


def max_pool() -> onnx.ModelProto:
    """x[1,3,8,8] -> MaxPool 2x2 stride 2 -> y[1,3,4,4]."""
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    return _model("max_pool", [node], [_value("x", [1, 3, 8, 8])], [_value("y", [1, 3, 4, 4])])


def average_pool() -> onnx.ModelProto:
    """x[1,3,8,8] -> AveragePool 3x3 stride 2 pads 1 (count_include_pad=0) -> y[1,3,4,4]."""
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    return _model("average_pool", [node], [_value("x", [1, 3, 8, 8])], [_value("y", [1, 3, 4, 4])])


def global_average_pool() -> onnx.ModelProto:
    """x[1,3,8,8] -> GlobalAveragePool -> y[1,3,1,1]."""
    node = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    return _model("global_average_pool", [node], [_value("x", [1, 3, 8, 8])], [_value("y", [1, 3, 1, 1])])


def binary(op: str = "Add", const_rhs: bool = True, seed: int = 4) -> onnx.ModelProto:
    """x[1,3,4,4] (Add|Mul) broadcast rhs -> y[1,3,4,4].

    rhs is the initializer c[3,1,1] if ``const_rhs``, else a second input b[1,1,4,4]."""
    rng = np.random.default_rng(seed)
    inputs = [_value("x", [1, 3, 4, 4])]
    inits = []
    if const_rhs:
        inits.append(_const("c", _weights(rng, [3, 1, 1], 1.0)))
    else:
        inputs.append(_value("b", [1, 1, 4, 4]))
    rhs = "c" if const_rhs else "b"
    node = helper.make_node(op, ["x", rhs], ["y"])
    return _model(f"{op.lower()}_broadcast", [node], inputs, [_value("y", [1, 3, 4, 4])], inits)


def activation(op: str = "Relu") -> onnx.ModelProto:
    """x[1,3,4,4] -> Relu | Relu6 (Clip 0..6) | Sigmoid | Tanh -> y[1,3,4,4]."""
    inits = []
    if op == "Relu6":
        inits = [_const("clip_min", np.array(0.0, np.float32)), _const("clip_max", np.array(6.0, np.float32))]
        node = helper.make_node("Clip", ["x", "clip_min", "clip_max"], ["y"])
    else:
        node = helper.make_node(op, ["x"], ["y"])
    return _model(op.lower(), [node], [_value("x", [1, 3, 4, 4])], [_value("y", [1, 3, 4, 4])], inits)


def softmax() -> onnx.ModelProto:
    """x[1,10] -> Softmax(axis=-1) -> y[1,10]."""
    node = helper.make_node("Softmax", ["x"], ["y"], axis=-1)
    return _model("softmax", [node], [_value("x", [1, 10])], [_value("y", [1, 10])])


def reshape() -> onnx.ModelProto:
    """x[1,3,4,4] -> Reshape(shape initializer [1,48]) -> y[1,48]."""
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    inits = [_const("shape", np.array([1, 48], np.int64))]
    return _model("reshape", [node], [_value("x", [1, 3, 4, 4])], [_value("y", [1, 48])], inits)


def flatten() -> onnx.ModelProto:
    """x[1,3,4,4] -> Flatten(axis=1) -> y[1,48]."""
    node = helper.make_node("Flatten", ["x"], ["y"], axis=1)
    return _model("flatten", [node], [_value("x", [1, 3, 4, 4])], [_value("y", [1, 48])])


def concat() -> onnx.ModelProto:
    """a[1,3,4,4], b[1,5,4,4] -> Concat(axis=1) -> y[1,8,4,4]."""
    node = helper.make_node("Concat", ["a", "b"], ["y"], axis=1)
    inputs = [_value("a", [1, 3, 4, 4]), _value("b", [1, 5, 4, 4])]
    return _model("concat", [node], inputs, [_value("y", [1, 8, 4, 4])])


def pad() -> onnx.ModelProto:
    """x[1,3,4,4] -> Pad constant 0 (H 1+1, W 2+2) -> y[1,3,6,8]."""
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant")
    inits = [_const("pads", np.array([0, 0, 1, 2, 0, 0, 1, 2], np.int64))]
    return _model("pad", [node], [_value("x", [1, 3, 4, 4])], [_value("y", [1, 3, 6, 8])], inits)


def reduce_mean() -> onnx.ModelProto:
    """x[1,3,4,4] -> ReduceMean(axes=[2,3], keepdims=1) -> y[1,3,1,1]."""
    node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1)
    return _model("reduce_mean", [node], [_value("x", [1, 3, 4, 4])], [_value("y", [1, 3, 1, 1])])


def two_in_two_out(seed: int = 5) -> onnx.ModelProto:
    """a[1,8], b[1,8] -> outputs (in this order) prod = Gemm(a*b)[1,4] and sum = a+b [1,8]."""
    rng = np.random.default_rng(seed)
    inits = [_const("fc.weight", _weights(rng, [4, 8])), _const("fc.bias", _weights(rng, [4], 0.1))]
    nodes = [
        helper.make_node("Add", ["a", "b"], ["sum"]),
        helper.make_node("Mul", ["a", "b"], ["mul"]),
        helper.make_node("Gemm", ["mul", "fc.weight", "fc.bias"], ["prod"], transB=1),
    ]
    inputs = [_value("a", [1, 8]), _value("b", [1, 8])]
    outputs = [_value("prod", [1, 4]), _value("sum", [1, 8])]
    return _model("two_in_two_out", nodes, inputs, outputs, inits)


def weird_names(seed: int = 6) -> onnx.ModelProto:
    """Tensor names that are not C identifiers: gpu_0/data_0[1,8] -> Gemm(fc/W:0, fc.b) -> 1st-relu
    -> Relu -> out:0[1,4]."""
    rng = np.random.default_rng(seed)
    inits = [_const("fc/W:0", _weights(rng, [4, 8])), _const("fc.b", _weights(rng, [4], 0.1))]
    nodes = [
        helper.make_node("Gemm", ["gpu_0/data_0", "fc/W:0", "fc.b"], ["1st-relu in"], transB=1, name="fc/gemm:0"),
        helper.make_node("Relu", ["1st-relu in"], ["out:0"], name="relu 1"),
    ]
    return _model("weird names!", nodes, [_value("gpu_0/data_0", [1, 8])], [_value("out:0", [1, 4])], inits)


def square() -> onnx.ModelProto:
    """x[1,16] -> Mul(x, x) (same tensor twice) -> y[1,16]."""
    node = helper.make_node("Mul", ["x", "x"], ["y"])
    return _model("square", [node], [_value("x", [1, 16])], [_value("y", [1, 16])])


# ---------------------------------------------------------------- bad models (error tests)


def det() -> onnx.ModelProto:
    """x[3,3] -> Det -> y[] (a matrix determinant). Valid ONNX, an operator TVM lacks."""
    node = helper.make_node("Det", ["x"], ["y"])
    return _model("det", [node], [_value("x", [3, 3])], [_value("y", [])], [])


def if_node() -> onnx.ModelProto:
    """x[1,4] -> If(ReduceSum(x) > 0) then Relu(x) [1,4] else ReduceSum(x) [1,1] -> y. Valid
    ONNX, control flow on a run-time value whose branches differ in shape (no static form)."""
    then_graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["then_y"])], "then", [], [_value("then_y", [1, 4])])
    else_graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["else_y"], keepdims=1)], "else", [],
        [_value("else_y", [1, 1])])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph),
    ]
    inits = [_const("zero", np.array(0.0, np.float32))]
    return _model("if_node", nodes, [_value("x", [1, 4])], [_value("y", [1, 4])], inits)


def custom_op() -> onnx.ModelProto:
    """x[1,4] -> Relu -> com.example::MyOp -> y[1,4]. onnxruntime cannot run it."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("MyOp", ["r"], ["y"], domain=CUSTOM_DOMAIN),
    ]
    opsets = [helper.make_opsetid(CUSTOM_DOMAIN, 1)]
    return _model("custom_op", nodes, [_value("x", [1, 4])], [_value("y", [1, 4])], extra_opsets=opsets)


def top_k() -> onnx.ModelProto:
    """x[1,8] -> TopK(k=2) -> y[1,2], i[1,2]. TVM imports it but has no C lowering for it
    (relax.topk is left after legalisation): unsupported."""
    node = helper.make_node("TopK", ["x", "k"], ["y", "i"])
    return _model("top_k", [node], [_value("x", [1, 8])],
                  [_value("y", [1, 2]), _value("i", [1, 2], TensorProto.INT64)],
                  [_const("k", np.array([2], np.int64))])

def resize_half_pixel_symmetric() -> onnx.ModelProto:
    """x[1,1,4,4] -> Resize(linear, half_pixel_symmetric, scales 2) -> y[1,1,8,8]: valid
    ONNX (opset 19) that TVM's Resize does not lower: unsupported."""
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                            coordinate_transformation_mode="half_pixel_symmetric")
    graph = helper.make_graph([node], "resize", [_value("x", [1, 1, 4, 4])],
                              [_value("y", [1, 1, 8, 8])],
                              [_const("scales", np.array([1, 1, 2, 2], np.float32))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9,
                             producer_name="tvmc-tests")

def missing_initializer() -> onnx.ModelProto:
    """x[1,4] -> Add(x, "w_missing") -> y[1,4]; "w_missing" is never defined (checker rejects it)."""
    node = helper.make_node("Add", ["x", "w_missing"], ["y"])
    return _model("missing_initializer", [node], [_value("x", [1, 4])], [_value("y", [1, 4])])


def dynamic_batch() -> onnx.ModelProto:
    """x["batch",8] -> Relu -> y["batch",8]. Valid ONNX with a symbolic (dim_param) dimension."""
    node = helper.make_node("Relu", ["x"], ["y"])
    return _model("dynamic_batch", [node], [_value("x", ["batch", 8])], [_value("y", ["batch", 8])])


def dynamic_length() -> onnx.ModelProto:
    """x[1,"len"] -> Relu -> y[1,"len"]: a symbolic dimension that is not the batch."""
    node = helper.make_node("Relu", ["x"], ["y"])
    return _model("dynamic_length", [node], [_value("x", [1, "len"])], [_value("y", [1, "len"])])


# ---------------------------------------------------------------- catalogues


def good_models() -> dict[str, Callable[[], onnx.ModelProto]]:
    """Name -> builder of every model that is valid, static and made of supported ops."""
    return {
        "conv2d_bias_relu": conv2d,
        "conv2d_nobias": lambda: conv2d(bias=False, relu=False),
        "depthwise_conv2d": depthwise_conv2d,
        "gemm": gemm,
        "matmul": matmul,
        "max_pool": max_pool,
        "average_pool": average_pool,
        "global_average_pool": global_average_pool,
        "add_broadcast": lambda: binary("Add"),
        "mul_broadcast_2in": lambda: binary("Mul", const_rhs=False),
        "relu": lambda: activation("Relu"),
        "relu6": lambda: activation("Relu6"),
        "sigmoid": lambda: activation("Sigmoid"),
        "tanh": lambda: activation("Tanh"),
        "softmax": softmax,
        "reshape": reshape,
        "flatten": flatten,
        "concat": concat,
        "pad": pad,
        "reduce_mean": reduce_mean,
        "two_in_two_out": two_in_two_out,
        "weird_names": weird_names,
        "square": square,
    }


def bad_models() -> dict[str, Callable[[], onnx.ModelProto]]:
    """Name -> builder of every model a static, plain-C compiler must reject."""
    return {
        "det": det,
        "if_node": if_node,
        "custom_op": custom_op,
        "missing_initializer": missing_initializer,
        "dynamic_length": dynamic_length,
    }
