"""The generated C reads like the model (issue 15, item 3).

Each runner call carries a comment naming the model's layer (op, the TFLite tensor or ONNX
node/tensor name, shapes, MACs); constants are named for their layer and role
(`conv2d_0_weights`, `_bias`, `_multiplier`, `_shift`), are `static const` and reach the
operators as `const` pointers without a cast; each operator has one prototype with its
definition's parameter names. Proved by gcc itself: every source is parsed with
-Wcast-qual (no const cast away), -Wmissing-prototypes and -Wredundant-decls as errors.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import cbuild
from builders import onnx_models, tflite_int8_models
from tvmc_multimodule.api import compile_model
from tvmc_multimodule.names import CText, c_text

pytestmark = pytest.mark.skipif(not cbuild.have("gcc"), reason="needs gcc")

STRICT = ["-std=c11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wcast-qual",
          "-Wmissing-prototypes", "-Wredundant-decls"]
_CONSTANT = re.compile(r"static const union \{[^}]*\} (tvmgen_m_\w+) TVMGEN_ALIGNED")


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("readable")
    (folder / "conv.tflite").write_bytes(tflite_int8_models.conv_same_stride2())
    onnx_models.save(onnx_models.conv2d(), folder / "conv.onnx")
    result = {}
    for kind in ("tflite", "onnx"):
        module = compile_model(str(folder / f"conv.{kind}"), "m")
        out = folder / kind
        out.mkdir()
        for name, text in module.sources.items():
            (out / name).write_text(text)
        (out / "tvmgen_m.h").write_text(module.header)
        result[kind] = (module, out)
    return result


def _runner(modules: dict, kind: str) -> str:
    return modules[kind][0].sources["m_lib1.c"]


def test_tflite_layer_comments_and_constant_names(modules):
    runner = _runner(modules, "tflite")
    # both convolutions, named after the TFLite tensors they write, with shapes and MACs
    assert re.search(r"/\* layer 0: conv2d 'y1' 1x9x9x3 -> 1x5x5x6 int8, 4,050 MACs \*/", runner)
    assert re.search(r"/\* layer 1: conv2d 'y2' 1x9x9x3 -> 1x9x9x4 int8, 972 MACs \*/", runner)
    names = _CONSTANT.findall(runner)
    for role in ("weights", "bias", "multiplier", "shift"):
        assert f"tvmgen_m_conv2d_0_{role}" in names and f"tvmgen_m_conv2d_1_{role}" in names
    assert "const_0" not in runner
    # the archive's parameters/<module>.params uses the same names
    assert {f"tvmgen_m_{k}" for k in modules["tflite"][0].params} == set(names)
    # constants go to the operators as they are: no cast, into const parameters
    call = next(line for line in runner.splitlines() if "TVMGEN_OPERATOR_CALL(0," in line)
    assert ", tvmgen_m_conv2d_0_weights.data," in call
    assert re.search(r"int32_t tvmgen_m_conv2d\(int8_t\* x_data, const int8_t\* w_data, "
                     r"const int32_t\* bias_data", runner)


def test_onnx_layer_comments_and_constant_names(modules):
    runner = _runner(modules, "onnx")
    # Conv + bias + Relu fused into one call (channels-last) named after the unnamed Conv
    # node's output (the Relu's is the model output, which the layout transpose writes)
    assert re.search(r"/\* layer 1: conv2d_add_relu 'conv_out' 1x8x8x3 -> 1x8x8x4 float32, "
                     r"6,912 MACs \*/", runner), runner[-1500:]
    assert re.search(r"/\* layer 2: transpose 'y' 1x8x8x4 -> 1x4x8x8 float32 \*/", runner)
    names = _CONSTANT.findall(runner)
    assert "tvmgen_m_conv2d_add_relu_0_weights" in names
    assert "tvmgen_m_conv2d_add_relu_0_bias" in names
    assert "(void*)tvmgen_m_" not in runner


def test_fused_float_onnx_layers_keep_their_node_names(tmp_path):
    import onnx

    model = onnx_models.conv2d()
    for i, node in enumerate(model.graph.node):
        node.name = f"block{i}/{node.op_type}*/"  # hostile: must stay inside its comment
    onnx.save(model, tmp_path / "named.onnx")
    runner = compile_model(str(tmp_path / "named.onnx"), "m").sources["m_lib1.c"]
    # the node's own text (Relax carries an identifier: TVM names C temporaries after it)
    escaped = c_text("block0/Conv*/", CText.COMMENT)
    assert f"conv2d_add_relu '{escaped}' 1x8x8x3" in runner, runner[-800:]
    assert "block0/Conv*/" not in runner


def test_fused_float_tflite_layers_keep_their_tensor_names(tmp_path):
    import numpy as np

    from builders.tflite_models import Padding, TFLiteGraph

    rng = np.random.default_rng(3)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8, 8, 3])
    hidden = g.add_tensor("model/block_1/relu;conv*/", [1, 8, 8, 4])
    y = g.add_tensor("y", [1, 8, 8, 4])
    opts = {"Padding": Padding.SAME, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1,
            "DilationHFactor": 1, "FusedActivationFunction": 1}  # RELU
    for i, (src, dst) in enumerate([(x, hidden), (hidden, y)]):
        w = g.add_const(f"w{i}", (rng.standard_normal((4, 3, 3, 3 if i == 0 else 4)) * 0.3)
                        .astype(np.float32))
        b = g.add_const(f"b{i}", np.zeros(4, np.float32))
        g.add_operator("CONV_2D", [src, w, b], [dst], ("Conv2DOptions", opts))
    g.set_io([x], [y])
    (tmp_path / "two.tflite").write_bytes(g.to_bytes())
    runner = compile_model(str(tmp_path / "two.tflite"), "m").sources["m_lib1.c"]
    # the tensor's own text (through c_text), as the int8 and ONNX paths show it
    escaped = c_text("model/block_1/relu;conv*/", CText.COMMENT)
    assert re.search(rf"/\* layer 0: conv2d_add_relu '{re.escape(escaped)}' 1x8x8x3 -> "
                     r"1x8x8x4 float32, 6,912 MACs \*/", runner), runner[-900:]
    assert re.search(r"/\* layer 1: conv2d_add_relu 'y' 1x8x8x4 -> 1x8x8x4 float32, "
                     r"9,216 MACs \*/", runner)


def test_layer_names_never_reach_c_identifiers_raw(tmp_path):
    """TVM names an operator's temporaries after its input (`<name>_red` of a mean): a node
    name with `/` and `;` must arrive there as an identifier, and the C must still build."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["a/b;c*/ d"], name="block/relu;x*/"),
             helper.make_node("ReduceMean", ["a/b;c*/ d"], ["y"], name="pool/mean",
                              axes=[2, 3], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4, 6, 6])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "mean.onnx")
    module = compile_model(str(tmp_path / "mean.onnx"), "m")
    for name, text in module.sources.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "tvmgen_m.h").write_text(module.header)
    for name in module.sources:
        done = subprocess.run(["gcc", *STRICT, "-I", str(tmp_path), str(tmp_path / name)],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{name}: {done.stderr[:1500]}"


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_sources_pass_strict_prototype_and_const_checks(modules, kind):
    module, folder = modules[kind]
    sources = sorted(folder.glob("*.c"))
    assert len(sources) == len(module.sources) >= 2  # the operators and the runner
    for source in sources:
        done = subprocess.run(["gcc", *STRICT, "-I", str(folder), str(source)],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{source.name}: {done.stderr[:1500]}"


@pytest.mark.parametrize("kind", ["tflite", "onnx"])
def test_one_prototype_per_operator_with_the_definitions_names(modules, kind):
    module, _ = modules[kind]
    operators, runner = module.sources["m_lib0.c"], module.sources["m_lib1.c"]
    for info in module.operators:
        definition = re.search(rf"^int32_t {info.function_name}\(([^)]*)\) \{{", operators, re.M)
        assert definition, info.function_name
        declared = re.findall(rf"^int32_t {info.function_name}\(([^)]*)\);", runner, re.M)
        assert len(declared) == 1, info.function_name
        names = [p.split("*")[-1].replace("restrict", "").strip()
                 for p in definition.group(1).split(",")]
        assert [p.split("*")[-1].strip() for p in declared[0].split(",")] == names


def test_one_extern_c_block_and_no_redundant_declarations(modules):
    for kind in ("tflite", "onnx"):
        operators = modules[kind][0].sources["m_lib0.c"]
        assert operators.count('extern "C"') == 1, kind
    assert "int32_t tvmgen_m_i8_requant(int32_t," not in modules["tflite"][0].sources["m_lib0.c"]


def test_float_operators_carry_no_tvm_internal_names(modules):
    module, _ = modules["onnx"]
    text = module.sources["m_lib0.c"] + module.sources["m_lib1.c"]
    for internal in (r"\bfused_", r"\blv\d*_data\b", r"\bparam_\d+_data\b",
                     r"\bcompute\w*_data\b", r"\bT_\w+_data\b"):
        assert not re.search(internal, text), internal
    assert re.search(r"^int32_t tvmgen_m_conv2d_add_relu\(float\* x_data, const float\* "
                     r"weights_data, const float\* bias_data, float\* out_data\);", text, re.M)


def test_layer_comment_names_pass_through_c_text():
    from tvmc_multimodule.codegen.runner import layer_comment
    from tvmc_multimodule.model import LayerInfo

    hostile = "a*/ int INJECTED = 1; /*\\\n??/"
    layer = LayerInfo(step=2, function_name="f", op="conv2d", input_shapes=((1, 4),),
                      output_shape=(1, 4), dtype="int8", macs=16, weight_bytes=4,
                      activation_bytes=8, name=hostile)
    comment = layer_comment(layer)
    assert comment == f"  /* layer 2: conv2d '{c_text(hostile, CText.COMMENT)}' 1x4 -> 1x4 int8, 16 MACs */"
    assert comment.count("*/") == 1 and "\n" not in comment and "??" not in comment
