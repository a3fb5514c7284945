"""ONNX models with operators of a custom domain (`com.example`), for the user's C
implementation, with NumPy references (the C text is the TFLite test's ScaleShift)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .tflite_custom_models import SCALE_SHIFT_C, scale_shift_reference

# the TFLite test's C, its function named after the operator's name as given ({op})
C_TEXT = SCALE_SHIFT_C.replace("_custom_ScaleShift", "_custom_{op}")

DOMAIN = "com.example"
SHAPES = {"y": [1, 16, 3], "k": [1, 16]}


def scale_shift(declared: bool) -> onnx.ModelProto:
    """x[1,16,3] -> Relu -> com.example.ScaleShift(r, w[3]) -> y = r * w + 1 [1,16,3] float
    and k = argmax over the last axis [1,16] int32; y -> Relu -> out. `declared`: the model
    gives y's and k's shapes (value_info), as exporters that run shape inference do."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("ScaleShift", ["r", "w"], ["y", "k"], domain=DOMAIN),
             helper.make_node("Relu", ["y"], ["out"])]
    w = numpy_helper.from_array(np.array([0.5, -2.0, 3.0], np.float32), "w")
    graph = helper.make_graph(
        nodes, "onnx_scale_shift", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                  [1, 16, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, SHAPES["y"]),
         helper.make_tensor_value_info("k", TensorProto.INT32, SHAPES["k"])], [w])
    if declared:
        graph.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                              SHAPES["y"]))
    else:  # an exporter that leaves the custom node's outputs unshaped
        del graph.output[1].type.tensor_type.shape.dim[:]
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(DOMAIN, 1)],
                             ir_version=8, producer_name="tvmc-tests")


def reference(x: np.ndarray) -> list[np.ndarray]:
    """[out, k] for x[1,16,3]."""
    return scale_shift_reference(x)
