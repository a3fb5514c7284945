"""Schedules keep the workspace at the liveness bound: a fused operator stores no
intermediate of a whole tensor (TVM's lowering would put each in the workspace's scratch).
Each model is compiled at -O3, built with gcc and compared with onnxruntime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import cbuild
import references
from tvmc_multimodule import compile_model, export_model_library_format


def _check(model: onnx.ModelProto, name: str, x: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    module = compile_model(str(path), module_name=name, opt_level=3)
    assert not [b for b in module.memory_layout.buffers if b.kind == "scratch"]
    assert module.workspace_bytes == module.liveness_bound_bytes
    archive = export_model_library_format([module], str(tmp_path / f"{name}.tar"))
    extracted = cbuild.extract(archive, tmp_path / "mlf")
    out = cbuild.build_and_run(extracted, {name: (module.inputs, module.outputs)},
                               {name: [x]})[name][0]
    expected = np.asarray(references.run_onnxruntime(model, {"x": x})[0])
    cbuild.assert_close(out.reshape(expected.shape), expected, name, rtol=1e-5)


def _chain() -> onnx.ModelProto:
    """Pad (reflect) -> Slice -> Transpose -> Mul -> Sqrt: one fused operator, no reduction."""
    n = helper.make_node
    c = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [len(v)], v)  # noqa: E731
    nodes = [n("Pad", ["x", "pads"], ["p"], mode="reflect"),
             n("Slice", ["p", "starts", "ends", "axes"], ["s"]),
             n("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
             n("Mul", ["t", "t"], ["m"]),
             n("Sqrt", ["m"], ["y"])]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 300])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [c("pads", [0, 0, 0, 0, 0, 20]), c("starts", [0]), c("ends", [4]), c("axes", [1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_fused_chain_without_reduction_stores_no_intermediate(tmp_path: Path) -> None:
    """TVM materialises each step of a fused injective chain (here 8x320 floats of padded
    input, then the slice, the transpose...): inlined, none is stored (silero-VAD's STFT
    magnitude: 6,192 B of scratch before)."""
    x = np.abs(references.random_array((1, 8, 300), np.float32, np.random.default_rng(3)))
    _check(_chain(), "chain", x, tmp_path)


def _silu_conv() -> onnx.ModelProto:
    """Conv -> Sigmoid -> Mul(conv, sigmoid): YOLOv8's SiLU, an epilogue read twice."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    n = helper.make_node
    graph = helper.make_graph(
        [n("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
         n("Sigmoid", ["c"], ["s"]), n("Mul", ["c", "s"], ["y"])],
        "silu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_silu_epilogue_is_computed_per_pixel(tmp_path: Path) -> None:
    """The SiLU after a convolution reads the biased result twice; made one epilogue under
    the convolution's pixel loop, the 16x16x16 convolution output is never stored whole
    (nudenet at -O3: 6.1 MB of workspace -> 2.87 MB, its liveness bound)."""
    x = references.random_array((1, 3, 32, 32), np.float32, np.random.default_rng(4))
    _check(_silu_conv(), "silu", x, tmp_path)
