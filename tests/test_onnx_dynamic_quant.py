"""Dynamically quantised ONNX models: ConvInteger (int8/uint8, zero points per tensor or per
channel, int32 out) and the built-in com.microsoft DynamicQuantizeLSTM, compiled to C (gcc
-Wall -Werror), against the exact reference of onnx_exact.py (onnx's ReferenceEvaluator,
DynamicQuantizeLSTM written from its definition; not onnxruntime, whose integer GEMM depends
on the CPU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import cbuild
from builders import onnx_dynamic_quant_models as models
from onnx_exact import run_onnx_exact
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule import load_model_library_format

pytestmark = pytest.mark.skipif(not cbuild.have("gcc"), reason="gcc")


def _ours(model: onnx.ModelProto, feeds: dict[str, np.ndarray], tmp: Path,
          constants: list | None = None) -> list[np.ndarray]:
    """Our outputs (built with gcc -Wall -Werror); `constants` receives the module's
    constant bytes."""
    onnx.save(model, tmp / "m.onnx")
    compiled = compile_model(str(tmp / "m.onnx"), module_name="dq")
    if constants is not None:
        constants.append(sum(np.asarray(p).nbytes for p in compiled.params.values()))
    export_model_library_format(compiled, str(tmp / "dq.tar"))
    module = load_model_library_format(str(tmp / "dq.tar")).modules["dq"]
    root = cbuild.extract(tmp / "dq.tar", tmp / "x")
    return cbuild.build_and_run(root, {"dq": (module.inputs, module.outputs)},
                                {"dq": list(feeds.values())})["dq"]


@pytest.mark.parametrize("options", [
    {},                                                    # uint8, one zero point
    {"dtype": "int8", "per_channel": True},                # int8, per output channel
    {"group": 2, "auto_pad": "SAME_UPPER", "stride": 1},   # grouped, auto padding
])
def test_conv_integer_exact(tmp_path: Path, options: dict) -> None:
    """DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul: the int32 accumulators equal the
    reference's (0 difference), the dequantised output to float32 rounding; ungrouped, the
    weights stay 8-bit (int16 after subtracting the zero point: twice their size)."""
    model = models.conv_integer(**options)
    x = np.random.default_rng(1).standard_normal((1, 4, 9, 9)).astype(np.float32)
    constants: list = []
    y, acc = _ours(model, {"x": x}, tmp_path, constants)
    if options.get("group", 1) == 1:  # weights, the ones of the window sums, zero points
        assert constants[0] <= 8 * 4 * 9 + 4 * 9 + 64
    want_y, want_acc = run_onnx_exact(model, {"x": x})
    assert acc.dtype == np.int32 and acc.shape == want_acc.shape
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6 * np.abs(want_y).max())


@pytest.mark.parametrize("per_column", [False, True])
def test_matmul_integer_exact_with_8_bit_weights(tmp_path: Path, per_column: bool) -> None:
    """MatMulInteger: int32 accumulators equal the reference's; B stays uint8 in the archive
    (TVM's converter folded it to int32: 4x its size)."""
    model = models.matmul_integer(per_column)
    x = np.random.default_rng(4).standard_normal((3, 40)).astype(np.float32)
    constants: list = []
    y, acc = _ours(model, {"x": x}, tmp_path, constants)
    want_y, want_acc = run_onnx_exact(model, {"x": x})
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6 * np.abs(want_y).max())
    assert constants[0] <= 40 * 24 + 24 * 4 + 64  # B's bytes, its zero points, scalars


@pytest.mark.parametrize("options", [
    {},                                                              # int8, per direction
    {"direction": "bidirectional", "dtype": "uint8", "per_channel": True},
    {"direction": "reverse", "per_channel": True, "initial_states": True},
])
def test_dynamic_quantize_lstm_exact(tmp_path: Path, options: dict) -> None:
    """Y, Y_h, Y_c within 1e-6 of the definition computed in float64 (the quantised products
    are exact integers on both sides; what is left is float32 rounding)."""
    model = models.dynamic_quantize_lstm(**options)
    rng = np.random.default_rng(2)
    feeds = {"x": rng.standard_normal((6, 1, 10)).astype(np.float32)}
    if options.get("initial_states"):
        feeds["h0"] = (rng.standard_normal((1, 1, 8)) * 0.5).astype(np.float32)
        feeds["c0"] = (rng.standard_normal((1, 1, 8)) * 0.5).astype(np.float32)
    ours = _ours(model, feeds, tmp_path)
    want = run_onnx_exact(model, feeds)
    for got, expected in zip(ours, want):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_abs_and_cast_to_integer_compile(tmp_path: Path) -> None:
    """Float Abs and Cast float -> int32 (the quantised bias of common_old.onnx: Div -> Floor
    -> Cast): TVM's converters call fabs (Abs, and the isfinite guard of Cast), which TVM
    0.27's C target cannot lower; ours do without it."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Abs", ["x"], ["a"]),
             helper.make_node("Floor", ["x"], ["f"]),
             helper.make_node("Cast", ["f"], ["i"], to=TensorProto.INT32)]
    graph = helper.make_graph(nodes, "abs_cast",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 5]),
                               helper.make_tensor_value_info("i", TensorProto.INT32, [2, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = (np.random.default_rng(3).standard_normal((2, 5)) * 50).astype(np.float32)
    a, i = _ours(model, {"x": x}, tmp_path)
    np.testing.assert_array_equal(a, np.abs(x))
    np.testing.assert_array_equal(i, np.floor(x).astype(np.int32))


def test_dynamic_quantize_linear_of_an_all_zero_or_constant_input(tmp_path: Path) -> None:
    """An all-zero input has no range: scale 1 (onnxruntime's), y and zero point 0, no NaN
    (the range's (max - min) / 255 = 0 made the zero point 0 / 0); constant, one-signed and
    random inputs as the definition gives them. Exact against onnx_exact and onnxruntime."""
    import onnxruntime

    model = models.dynamic_quantize_linear()
    feeds = [np.zeros((2, 8), np.float32), np.full((2, 8), 3.0, np.float32),
             np.full((2, 8), -2.0, np.float32),
             np.random.default_rng(5).standard_normal((2, 8)).astype(np.float32),
             np.abs(np.random.default_rng(6).standard_normal((2, 8))).astype(np.float32)]
    ort = onnxruntime.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    onnx.save(model, tmp_path / "m.onnx")
    export_model_library_format(compile_model(str(tmp_path / "m.onnx"), module_name="dq"),
                                str(tmp_path / "dq.tar"))
    module = load_model_library_format(str(tmp_path / "dq.tar")).modules["dq"]
    root = cbuild.extract(tmp_path / "dq.tar", tmp_path / "x")
    spec = {"dq": (module.inputs, module.outputs)}
    for k, x in enumerate(feeds):
        run = cbuild.build_and_run if k == 0 else cbuild.run_again
        ours = run(root, spec, {"dq": [x]})["dq"]
        for reference in (run_onnx_exact(model, {"x": x}), ort.run(None, {"x": x})):
            for got, want in zip(ours, reference):
                np.testing.assert_array_equal(got.reshape(np.shape(want)), want, err_msg=str(x))
    assert float(ours[1].reshape(())) != 1.0  # (the last feed has a range)


def test_dynamic_quantize_lstm_of_an_all_zero_input(tmp_path: Path) -> None:
    """X all zero (silence): Y, Y_h, Y_c finite and within 1e-6 of the definition (only the
    bias and H drive the gates). Before X's quantisation got scale 1 its q was 255 (0 / 0),
    multiplied away by the zero scale: right by accident, this keeps it right."""
    model = models.dynamic_quantize_lstm(initial_states=True)
    rng = np.random.default_rng(7)
    feeds = {"x": np.zeros((6, 1, 10), np.float32),
             "h0": (rng.standard_normal((1, 1, 8)) * 0.5).astype(np.float32),
             "c0": (rng.standard_normal((1, 1, 8)) * 0.5).astype(np.float32)}
    ours = _ours(model, feeds, tmp_path)
    want = run_onnx_exact(model, feeds)
    for got, expected in zip(ours, want):
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
