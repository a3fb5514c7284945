"""The test-model builders produce what they promise, checked with the reference runtimes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from builders import onnx_models, tflite_models
from tflite.BuiltinOperator import BuiltinOperator
from tflite.Model import Model
from tflite.TensorType import TensorType

import references

ONNX_GOOD = onnx_models.good_models()
TFLITE_GOOD = tflite_models.good_models()


def _onnx_output_shapes(model: onnx.ModelProto) -> list[tuple[int, ...]]:
    return [tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in model.graph.output]


def _tflite_outputs(buf: bytes) -> list[tuple[tuple[int, ...], str]]:
    """Declared (shape, TensorType name) of each main-subgraph output."""
    type_names = {v: k.lower() for k, v in vars(TensorType).items() if k.isupper()}
    sg = Model.GetRootAs(buf, 0).Subgraphs(0)
    result = []
    for i in range(sg.OutputsLength()):
        t = sg.Tensors(sg.Outputs(i))
        result.append((tuple(t.Shape(j) for j in range(t.ShapeLength())), type_names[t.Type()]))
    return result


# ---------------------------------------------------------------- ONNX


@pytest.mark.parametrize("name", sorted(ONNX_GOOD))
def test_onnx_good_model_checks_and_runs(name: str) -> None:
    model = ONNX_GOOD[name]()
    onnx.checker.check_model(model, full_check=True)
    inputs = references.random_inputs(references.onnx_input_specs(model), seed=1)
    outputs = references.run_onnxruntime(model.SerializeToString(), inputs)
    assert [o.shape for o in outputs] == _onnx_output_shapes(model)
    assert all(o.dtype == np.float32 and np.isfinite(o).all() for o in outputs)


def test_onnx_semantics_of_multi_io_and_square() -> None:
    a, b = references.random_inputs([((1, 8), np.float32)] * 2, seed=2)
    prod, total = references.run_onnxruntime(onnx_models.two_in_two_out(), {"a": a, "b": b})
    assert prod.shape == (1, 4)
    np.testing.assert_allclose(total, a + b, rtol=1e-6)
    (x,) = references.random_inputs([((1, 16), np.float32)], seed=3)
    np.testing.assert_allclose(references.run_onnxruntime(onnx_models.square(), {"x": x})[0], x * x, rtol=1e-6)


def test_onnx_save_roundtrip(tmp_path) -> None:
    path = tmp_path / "weird.onnx"
    onnx_models.save(onnx_models.weird_names(), path)
    (x,) = references.random_inputs([((1, 8), np.float32)], seed=4)
    assert references.run_onnxruntime(path, {"gpu_0/data_0": x})[0].shape == (1, 4)


def test_onnx_bad_models_are_bad_for_the_intended_reason() -> None:
    for name in ("det", "if_node", "dynamic_length"):  # valid ONNX, just unsupported
        model = onnx_models.bad_models()[name]()
        onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in onnx_models.if_node().graph.node}
    assert "If" in ops
    assert references.onnx_input_specs(onnx_models.dynamic_batch())["x"][0] == ("batch", 8)
    assert references.onnx_input_specs(onnx_models.dynamic_length())["x"][0] == (1, "len")
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(onnx_models.missing_initializer())
    custom = onnx_models.custom_op()
    onnx.checker.check_model(custom)
    with pytest.raises(Exception, match="MyOp"):
        references.run_onnxruntime(custom, {"x": np.zeros((1, 4), np.float32)})


# ---------------------------------------------------------------- TFLite


@pytest.mark.parametrize("name", sorted(TFLITE_GOOD))
def test_tflite_good_model_runs_in_litert(name: str) -> None:
    buf = TFLITE_GOOD[name]()
    inputs = references.random_inputs(references.tflite_input_specs(buf), seed=1)
    outputs = references.run_litert(buf, inputs)
    assert [(o.shape, o.dtype.name) for o in outputs] == _tflite_outputs(buf)
    assert all(np.isfinite(o).all() for o in outputs)


def test_tflite_output_order_follows_subgraph() -> None:
    buf = tflite_models.two_in_two_out()
    a, b = references.random_inputs(references.tflite_input_specs(buf), seed=2)
    prod, total = references.run_litert(buf, [a, b])
    assert prod.shape == (1, 4)
    np.testing.assert_allclose(total, a + b, rtol=1e-6)


def test_tflite_int8_model_matches_between_litert_and_tflite_micro() -> None:
    buf = tflite_models.int8_conv_fc_softmax()
    specs = references.tflite_input_specs(buf)
    assert specs == [((1, 8, 8, 3), np.dtype(np.int8))]
    for seed in range(5):
        inputs = references.random_inputs(specs, seed=seed)
        litert = references.run_litert(buf, inputs)
        micro = references.run_tflite_micro(buf, inputs)
        assert micro[0].dtype == np.int8 and micro[0].shape == (1, 10)
        np.testing.assert_array_equal(litert[0], micro[0])
    probabilities = (litert[0].astype(np.float32) + 128) / 256
    assert abs(probabilities.sum() - 1.0) < 0.05


def test_tflite_opcodes_set_both_builtin_code_fields() -> None:
    model = Model.GetRootAs(tflite_models.stateful(), 0)
    codes = [(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    assert (BuiltinOperator.VAR_HANDLE, BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES) in codes
    assert (BuiltinOperator.ADD, BuiltinOperator.ADD) in codes
    assert model.Buffers(0).DataLength() == 0


def test_tflite_bad_models_are_bad_for_the_intended_reason() -> None:
    bad = tflite_models.bad_models()
    x4 = [np.ones((1, 4), np.float32)]
    # valid models that LiteRT runs, but that a static builtin-only compiler must reject
    assert references.run_litert(bad["while_loop"](), [np.zeros(1, np.float32)])[0][0] >= 10.0
    assert references.run_litert(bad["dynamic_range"](), [np.ones((1, 4, 16), np.float32)])[0].shape == (1, 4, 8)
    assert Model.GetRootAs(bad["while_loop"](), 0).SubgraphsLength() == 3
    with pytest.raises(RuntimeError, match="MyCustom"):
        references.run_litert(bad["custom_op"](), x4)
    with pytest.raises(ValueError):
        references.run_litert(bad["truncated"](), x4)
