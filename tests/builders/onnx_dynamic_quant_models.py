"""Dynamically quantised ONNX models (what onnxruntime's quantize_dynamic writes):
DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul by the scales, and com.microsoft
DynamicQuantizeLSTM. References: tests/onnx_exact.py (not onnxruntime: its integer GEMM
depends on the CPU)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"


def _model(name: str, nodes: list, inputs: list, outputs: list, inits: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(MS, 1)],
                             ir_version=8, producer_name="tvmc-tests")


def _quantised(rng: np.random.Generator, shape: list[int], dtype: str,
               per_channel: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, scale, zero point): int8 with zero point 0, or uint8 around 128 (+-3)."""
    w = rng.integers(-127, 128, shape) if dtype == "int8" else rng.integers(0, 256, shape)
    count = shape[0] if per_channel else 1
    zero = np.zeros(count, dtype) if dtype == "int8" else rng.integers(125, 132, count)
    scale = rng.uniform(0.002, 0.01, count).astype(np.float32)
    if not per_channel:
        zero, scale = zero.reshape(()), scale.reshape(())
    return w.astype(dtype), scale, np.asarray(zero, dtype)


def conv_integer(dtype: str = "uint8", per_channel: bool = False, group: int = 1,
                 auto_pad: str = "NOTSET", stride: int = 2) -> onnx.ModelProto:
    """x[1,4,9,9] float -> DynamicQuantizeLinear -> ConvInteger 3x3 (8 channels) -> Cast ->
    Mul(x scale * w scale) -> y; also the int32 ConvInteger result as output `acc`."""
    rng = np.random.default_rng(11)
    w, w_scale, w_zero = _quantised(rng, [8, 4 // group, 3, 3], dtype, per_channel)
    pads = {} if auto_pad != "NOTSET" else {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["acc"], group=group,
                         strides=[stride, stride], kernel_shape=[3, 3], auto_pad=auto_pad,
                         **pads),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["xs", "ws"], ["scale"]),
        helper.make_node("Mul", ["accf", "scale_b"], ["y"]),
    ]
    if per_channel:  # the scales along the output channels
        nodes[3:] = [helper.make_node("Mul", ["xs", "ws"], ["scale"]),
                     helper.make_node("Reshape", ["scale", "cshape"], ["scale_b"]),
                     helper.make_node("Mul", ["accf", "scale_b"], ["y"])]
        extra = [numpy_helper.from_array(np.array([1, 8, 1, 1], np.int64), "cshape")]
    else:
        nodes[3:] = [helper.make_node("Mul", ["xs", "ws"], ["scale_b"]),
                     helper.make_node("Mul", ["accf", "scale_b"], ["y"])]
        extra = []
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w_zero, "wz"),
             numpy_helper.from_array(w_scale, "ws"), *extra]
    return _model("conv_integer", nodes,
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                   helper.make_tensor_value_info("acc", TensorProto.INT32, None)], inits)


def dynamic_quantize_lstm(direction: str = "forward", dtype: str = "int8",
                          per_channel: bool = False, initial_states: bool = False,
                          steps: int = 6, size: int = 10, hidden: int = 8) -> onnx.ModelProto:
    """x[T,1,I] -> com.microsoft DynamicQuantizeLSTM (W [D,I,4H], R [D,H,4H] 8-bit, bias)
    -> (Y, Y_h, Y_c); `initial_states`: h0 and c0 are model inputs."""
    rng = np.random.default_rng(12)
    d = 2 if direction == "bidirectional" else 1
    columns = 4 * hidden

    def weights(rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w = rng.integers(-127, 128, [d, rows, columns]) if dtype == "int8" else \
            rng.integers(0, 256, [d, rows, columns])
        shape = [d, columns] if per_channel else [d]
        zero = np.zeros(shape) if dtype == "int8" else rng.integers(120, 136, shape)
        scale = rng.uniform(0.002, 0.006, shape).astype(np.float32)
        return w.astype(dtype), scale, zero.astype(dtype)

    w, ws, wz = weights(size)
    r, rs, rz = weights(hidden)
    bias = rng.uniform(-0.3, 0.3, [d, 2 * columns]).astype(np.float32)
    states = ["h0", "c0"] if initial_states else ["", ""]
    node = helper.make_node("DynamicQuantizeLSTM",
                            ["x", "w", "r", "b", "", *states, "", "ws", "wz", "rs", "rz"],
                            ["y", "yh", "yc"], domain=MS, direction=direction,
                            hidden_size=hidden)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w, "w"), (r, "r"), (bias, "b"), (ws, "ws"), (wz, "wz"), (rs, "rs"), (rz, "rz"))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, 1, size])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [d, 1, hidden])
               for n in states if n]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [steps, d, 1, hidden]),
               helper.make_tensor_value_info("yh", TensorProto.FLOAT, [d, 1, hidden]),
               helper.make_tensor_value_info("yc", TensorProto.FLOAT, [d, 1, hidden])]
    return _model("dynamic_quantize_lstm", [node], inputs, outputs, inits)


def matmul_integer(per_column: bool = False, rows: int = 3, depth: int = 40,
                   columns: int = 24) -> onnx.ModelProto:
    """x[rows, depth] float -> DynamicQuantizeLinear -> MatMulInteger(xq, B uint8 [depth,
    columns], xz, bz) -> acc int32 -> Cast -> Mul(x scale * b scale) -> y."""
    rng = np.random.default_rng(13)
    b = rng.integers(0, 256, [depth, columns]).astype(np.uint8)
    zero = rng.integers(110, 140, [columns] if per_column else []).astype(np.uint8)
    scale = np.float32(0.004)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "b", "xz", "bz"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["xs", "bs"], ["scale"]),
             helper.make_node("Mul", ["accf", "scale"], ["y"])]
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(zero, "bz"),
             numpy_helper.from_array(np.array(scale), "bs")]
    return _model("matmul_integer", nodes,
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, depth])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                   helper.make_tensor_value_info("acc", TensorProto.INT32, None)], inits)


def dynamic_quantize_linear(shape: tuple[int, ...] = (2, 8)) -> onnx.ModelProto:
    """x -> DynamicQuantizeLinear -> (y uint8, scale float [], zero point uint8 [])."""
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "scale", "zero"])
    graph = helper.make_graph(
        [node], "dql", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, list(shape)),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("zero", TensorProto.UINT8, [])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
