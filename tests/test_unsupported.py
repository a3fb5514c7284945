"""Models with features we do not support yet fail with a typed error naming the feature."""
from __future__ import annotations

from pathlib import Path

import pytest

from builders import onnx_models, tflite_models
from tvmc_multimodule import compile_model
from tvmc_multimodule.errors import ModelError, UnsupportedError

# builder key -> (error type, words the one-line message must contain)
ONNX_EXPECTED = {
    "det": (UnsupportedError, ["Det"]),
    "if_node": (UnsupportedError, ["control flow", "If"]),
    "custom_op": (UnsupportedError, ["custom", "com.example.MyOp"]),
    "missing_initializer": (ModelError, ["w_missing"]),
    "dynamic_length": (ModelError, ["'x'", "dynamic", "dim 1 ('len')", "--input-shapes"]),
}
TFLITE_EXPECTED = {
    "custom_op": (UnsupportedError, ["custom", "MyCustom"]),
    "while_loop": (UnsupportedError, ["control flow", "WHILE"]),
    "dynamic_range": (UnsupportedError, ["dynamic-range", "BATCH_MATMUL"]),
    "truncated": (ModelError, ["truncated"]),
}


def _check(path: Path, error: type, words: list[str]) -> None:
    with pytest.raises(error) as caught:
        compile_model(str(path), module_name="bad")
    line = caught.value.one_line()
    assert "\n" not in line
    assert str(path) in line and "bad" in line, line
    for word in words:
        assert word in line, f"{word!r} missing from: {line}"


@pytest.mark.parametrize("key", sorted(ONNX_EXPECTED))
def test_onnx_feature_is_named(tmp_path: Path, key: str) -> None:
    path = tmp_path / f"{key}.onnx"
    onnx_models.save(onnx_models.bad_models()[key](), path)
    _check(path, *ONNX_EXPECTED[key])


@pytest.mark.parametrize("key", sorted(TFLITE_EXPECTED))
def test_tflite_feature_is_named(tmp_path: Path, key: str) -> None:
    path = tmp_path / f"{key}.tflite"
    path.write_bytes(tflite_models.bad_models()[key]())
    _check(path, *TFLITE_EXPECTED[key])


def test_dynamic_input_compiles_with_input_shapes(tmp_path: Path) -> None:
    path = tmp_path / "dyn.onnx"
    onnx_models.save(onnx_models.dynamic_batch(), path)
    module = compile_model(str(path), module_name="dyn", input_shapes={"x": [2, 8]})
    assert module.inputs[0].shape == (2, 8)
    assert module.outputs[0].shape == (2, 8)


def test_several_unsupported_operators_are_all_listed(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Det", ["x"], ["y1"]),
             helper.make_node("Bernoulli", ["x"], ["y2"]),
             helper.make_node("Relu", ["x"], ["y3"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 2])
                     for n in ("x", "w", "r")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y1", "y2", "y3")])
    path = tmp_path / "rnn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(UnsupportedError) as caught:
        compile_model(str(path), module_name="rnn")
    assert "Bernoulli" in str(caught.value) and "Det" in str(caught.value)
