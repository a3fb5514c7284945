"""The TFLite patterns of real edge models (issue 10): float16 weights, sparse weights (DENSIFY),
PRELU with a per-channel alpha, EXPAND_DIMS, a -1 in shape_signature, dynamic-range (hybrid)
int8 weights, a BlazeFace block (a channel PAD after a pooling), a one-element convolution
(gcc -Werror must not see an accumulator it thinks uninitialised), a RESHAPE whose target is
computed from SHAPE, a weight two convolutions share. Each test-built model is compiled, all are linked into ONE program with gcc
-Werror, run, and compared with LiteRT (and TFLite Micro where it runs the model)."""
from __future__ import annotations

import numpy as np
import pytest

import cbuild
import references
from builders import tflite_edge_models, tflite_models
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule.errors import InternalError, ModelError

MODELS = tflite_edge_models.edge_models()
# TFLite Micro has no float16 DEQUANTIZE, no DENSIFY and no hybrid kernels
TFLM_RUNS = {"prelu", "expand_dims_signature", "blaze_block", "single_output_conv",
             "computed_reshape_shared_weights", "reshape_to_scalar", "log_mel_clip"}


def _weights_f32_bytes(model: bytes) -> int:
    """Bytes of the model's constant data (with its quantisation scales), float16 counted as
    float32 and sparse tensors densified (the issue's yardstick for fp16 files)."""
    from tflite.Model import Model

    m = Model.GetRootAs(model, 0)
    graph = m.Subgraphs(0)
    total = 0
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        if not m.Buffers(tensor.Buffer()).DataLength():
            continue
        count = int(np.prod([tensor.Shape(i) for i in range(tensor.ShapeLength())]))
        itemsize = np.dtype({1: np.float32, 0: np.float32, 2: np.int32, 4: np.int64,
                             9: np.int8, 3: np.uint8}[tensor.Type()]).itemsize
        total += count * itemsize
        if tensor.Quantization() is not None:
            total += 4 * tensor.Quantization().ScaleLength()
    return total


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("edge")
    rng = np.random.default_rng(10)
    compiled, inputs, expected, micro, files = [], {}, {}, {}, {}
    for name, build in MODELS.items():
        model = build()
        files[name] = model
        path = root / f"{name}.tflite"
        path.write_bytes(model)
        module = compile_model(str(path), module_name=name)
        xs = [references.random_array(t.shape, t.dtype, rng) for t in module.inputs]
        expected[name] = references.run_litert(model, xs)
        if name in TFLM_RUNS:
            micro[name] = references.run_tflite_micro(model, xs)
        compiled.append(module)
        inputs[name] = xs
    archive = export_model_library_format(compiled, str(root / "edge.tar"))
    extracted = cbuild.extract(archive, root / "mlf")
    outputs = cbuild.build_and_run(extracted, {m.name: (m.inputs, m.outputs) for m in compiled},
                                   inputs)
    return {"outputs": outputs, "expected": expected, "micro": micro, "files": files,
            "modules": {m.name: m for m in compiled}}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_litert(edge_run: dict, name: str) -> None:
    for i, (a, e) in enumerate(zip(edge_run["outputs"][name], edge_run["expected"][name])):
        cbuild.assert_close(a, np.asarray(e), f"{name} output {i}", rtol=1e-5)


@pytest.mark.parametrize("name", sorted(TFLM_RUNS))
def test_matches_tflite_micro(edge_run: dict, name: str) -> None:
    for i, (a, e) in enumerate(zip(edge_run["outputs"][name], edge_run["micro"][name])):
        cbuild.assert_close(a, np.asarray(e), f"{name} output {i}", rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_constants_stay_within_the_weights(edge_run: dict, name: str) -> None:
    """No constant spread over an activation (PRELU's alpha), float16 counted as float32."""
    module = edge_run["modules"][name]
    weights = _weights_f32_bytes(edge_run["files"][name])
    assert module.constants_bytes <= 1.05 * weights + 64, (module.constants_bytes, weights)


def test_prelu_alpha_is_not_broadcast(edge_run: dict) -> None:
    assert edge_run["modules"]["prelu"].constants_bytes == 64  # alpha [1,1,16] float32


def test_dynamic_batch_signature_needs_no_input_shapes(edge_run: dict) -> None:
    assert edge_run["modules"]["expand_dims_signature"].inputs[0].shape == (1, 8)


def test_corrupt_sparse_indices_are_a_model_error(tmp_path) -> None:
    g = tflite_models.TFLiteGraph()
    x = g.add_tensor("x", [1, 8])
    values, sp = tflite_edge_models.sparse_encode(np.eye(4, 8, dtype=np.float32))
    bad = tflite_models.Sparsity(sp.traversal_order, sp.block_map,
                                 (sp.levels[0], ("CSR", sp.levels[1][1], sp.levels[1][2] + 40)))
    w = g.add_tensor("w_sparse", [4, 8], "float32", values, sparsity=bad)
    wd = g.add_tensor("w", [4, 8])
    g.add_operator("DENSIFY", [w], [wd])
    y = g.add_tensor("y", [1, 4])
    g.add_operator("FULLY_CONNECTED", [x, wd], [y], ("FullyConnectedOptions",
                                                      tflite_edge_models.NONE))
    g.set_io([x], [y])
    path = tmp_path / "bad_sparse.tflite"
    path.write_bytes(g.to_bytes())
    with pytest.raises(ModelError, match="sparse index"):
        compile_model(str(path), module_name="bad")


def test_converter_bug_is_an_internal_error(tmp_path, monkeypatch) -> None:
    """A converter raising TypeError (as TVM 0.27's EXPAND_DIMS did) is a bug: exit 70."""
    from tvmc_multimodule.frontends import tflite_converter

    def broken(self, op):
        raise TypeError("expand_dims() takes 2 positional arguments but 3 were given")

    monkeypatch.setattr(tflite_converter.Converter, "convert_expand_dims", broken)
    path = tmp_path / "m.tflite"
    path.write_bytes(tflite_edge_models.expand_dims_signature())
    with pytest.raises(InternalError, match="TypeError") as info:
        compile_model(str(path), module_name="m")
    assert info.value.exit_code == 70


def test_densify_equals_litert_densify() -> None:
    """Our compile-time DENSIFY, bit for bit what LiteRT's DENSIFY kernel writes (CSR float16
    [8,1,1,32] and 1x4-block float32 [16,128])."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.Model import Model

    from tvmc_multimodule.frontends.tflite_converter import constant_value

    data = tflite_edge_models.sparse_fc_conv()
    model = Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    interpreter = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           np.ones((1, 4, 4, 32), np.float32))
    interpreter.invoke()
    compared = 0
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        if model.OperatorCodes(op.OpcodeIndex()).BuiltinCode() == BuiltinOperator.DENSIFY:
            ours = constant_value(model, graph.Tensors(op.Inputs(0)))
            theirs = interpreter.get_tensor(op.Outputs(0))
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
            compared += 1
    assert compared == 2
