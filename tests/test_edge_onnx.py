"""Patterns of real edge ONNX exports that once failed (issue 10): the channels-last layout
conversion on Dropout, variadic Sum/Max/Mean, ConvTranspose and 3-D heads; shape arithmetic
computed at run time (tf2onnx, paddle2onnx, YOLO-style heads); a symbolic batch dim. Each is
compiled at -O3 and -O0, all built into ONE program with gcc -Werror, run, and compared with
onnxruntime."""
from __future__ import annotations

import logging
import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import cbuild
import references
from builders import onnx_edge_models as edge
from builders import onnx_models
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule.errors import UnsupportedError

CASES = {
    "conv_dropout": edge.conv_dropout,
    "conv_sum": lambda: edge.conv_variadic("Sum"),
    "conv_max": lambda: edge.conv_variadic("Max"),
    "conv_mean": lambda: edge.conv_variadic("Mean"),
    "conv_min": lambda: edge.conv_variadic("Min"),
    "conv_conv_transpose": edge.conv_conv_transpose,
    "conv_sequence_head": edge.conv_sequence_head,
    "conv_layout_followers": edge.conv_layout_followers,
    "conv_split_concat": edge.conv_split_concat,
    "computed_reshape": edge.computed_reshape,
    "yolo_style_head": edge.yolo_style_head,
    "resize_opset10": edge.resize_opset10,
    "resize_empty_scales": edge.resize_empty_scales,
    "fused_conv_contrib": edge.fused_conv_contrib,
    "fused_conv_contrib_opset10": lambda: edge.fused_conv_contrib(opset=10),
    "dynamic_batch": onnx_models.dynamic_batch,
    # antialias only changes downscaling: an upscale with it is plain linear resizing
    "resize_antialias_upscale": lambda: edge.resize_opset18([1, 1, 2, 2], antialias=1),
    "resize_all_axes": lambda: edge.resize_opset18([1, 1, 0.5, 0.5], axes=[0, 1, 2, 3]),
}
OPT_LEVELS = (3, 0)


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("edge_onnx")
    rng = np.random.default_rng(10)
    modules, inputs, expected, warnings = [], {}, {}, {}
    for key, build in CASES.items():
        model = build()
        path = root / f"{key}.onnx"
        onnx.save(model, path)
        for level in OPT_LEVELS:
            name = f"{key}_o{level}"
            records: list[logging.LogRecord] = []
            handler = logging.Handler()
            handler.emit = records.append  # type: ignore[method-assign]
            logging.getLogger("tvmc_multimodule").addHandler(handler)
            try:
                module = compile_model(str(path), module_name=name, opt_level=level)
            finally:
                logging.getLogger("tvmc_multimodule").removeHandler(handler)
            warnings[name] = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
            xs = [references.random_array(t.shape, t.dtype, rng) for t in module.inputs]
            expected[name] = references.run_onnxruntime(
                model, {t.name: x for t, x in zip(module.inputs, xs)})
            modules.append(module)
            inputs[name] = xs
    archive = export_model_library_format(modules, str(root / "edge.tar"))
    outputs = cbuild.build_and_run(cbuild.extract(archive, root / "mlf"),
                                   {m.name: (m.inputs, m.outputs) for m in modules}, inputs)
    return {"outputs": outputs, "expected": expected, "warnings": warnings,
            "modules": {m.name: m for m in modules}}


@pytest.mark.parametrize("name", [f"{k}_o{level}" for k in CASES for level in OPT_LEVELS])
def test_matches_onnxruntime(edge_run: dict, name: str) -> None:
    actual, expected = edge_run["outputs"][name], edge_run["expected"][name]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        cbuild.assert_close(a, np.asarray(e), f"{name} output {i}")


@pytest.mark.parametrize("op", ["sum", "max", "min", "mean"])
def test_variadic_operators_keep_small_constants(edge_run: dict, op: str) -> None:
    """Max/Min/Sum/Mean with a [1,4,1,8] constant operand of a [1,4,8,8] activation: the
    constant keeps its own size (TVM's stacking converter broadcast it to the output's)."""
    model = CASES[f"conv_{op}"]()
    weights = sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
    for level in OPT_LEVELS:
        module = edge_run["modules"][f"conv_{op}_o{level}"]
        assert module.constants_bytes <= 1.05 * weights, (op, level, module.constants_bytes)


def test_layout_conversion_is_safe_per_operator(edge_run: dict) -> None:
    """No model falls back to converting nothing: the operators that cannot follow the
    channels-last layout keep theirs, the convolutions still convert."""
    for name, messages in edge_run["warnings"].items():
        assert not any("layout" in m for m in messages), (name, messages)


def test_unconvertible_operators_keep_their_layout_behind_transposes() -> None:
    from tvm.relax.frontend.onnx import from_onnx

    from tvmc_multimodule.pipeline.layout import CHANNELS_LAST, convert_layout

    imported = from_onnx(edge.conv_variadic("Max"), keep_params_in_input=False)
    converted = convert_layout(CHANNELS_LAST)(imported)["main"].script(show_meta=False)
    assert 'data_layout="NHWC"' in converted  # the convolution converts...
    assert "R.stack" not in converted and "call_tir" in converted  # ...stack does not
    assert "R.stack" in imported["main"].script(show_meta=False)  # input left unchanged


@pytest.mark.parametrize("model, problem", [
    (lambda: edge.resize_opset18([1, 1, 0.5, 0.5], antialias=1), "antialias=1 when downscaling"),
    (lambda: edge.resize_opset18([2, 2], axes=[2, 3]), "axes [2, 3]"),
    (lambda: edge.resize_opset18([1, 1, 2, 2], keep_aspect_ratio_policy="not_larger"),
     "keep_aspect_ratio_policy 'not_larger'"),
    (lambda: edge.resize_opset18([1, 2, 1, 1]), "resizing the batch or channel axis"),
], ids=["antialias", "axes", "aspect", "channels"])
def test_resize_attributes_tvm_would_drop_are_refused(tmp_path, model, problem) -> None:
    """TVM's Resize converter ignores antialias, axes and keep_aspect_ratio_policy and
    resizes the spatial axes only: such a model would compile to wrong numbers."""
    path = tmp_path / "resize.onnx"
    onnx.save(model(), path)
    with pytest.raises(UnsupportedError, match=f"Resize node 'y': {re.escape(problem)} is not"):
        compile_model(str(path), module_name="r")


def test_shape_arithmetic_is_folded_before_import() -> None:
    from tvmc_multimodule.frontends.onnx_fold import fold_shape_arithmetic

    for build in (edge.computed_reshape, edge.yolo_style_head):
        folded = fold_shape_arithmetic(build())
        ops = {n.op_type for n in folded.graph.node}
        assert not ops & {"Shape", "Size", "Gather", "Cast", "ConstantOfShape", "Range",
                          "Concat", "Unsqueeze"}, ops
        assert "Conv" in ops and "Reshape" in ops


def test_symbolic_batch_defaults_to_one_with_a_warning(edge_run: dict) -> None:
    module = edge_run["modules"]["dynamic_batch_o3"]
    assert module.inputs[0].shape == (1, 8) and module.outputs[0].shape == (1, 8)
    (message,) = edge_run["warnings"]["dynamic_batch_o3"]
    assert "'x'" in message and "'batch'" in message and "set to 1" in message
    assert "\n" not in message


def test_code_size_leaves_constant_data_out(edge_run: dict, tmp_path) -> None:
    """The code-size step compiles the constants zero-initialised: the same .text as the
    real sources (measured here with gcc and size on the full files), without the data."""
    import shutil
    import subprocess

    from tvmc_multimodule.cli import report
    from tvmc_multimodule.codegen import without_constant_data

    if not (shutil.which("gcc") and shutil.which("size")):
        pytest.skip("needs gcc and size")
    module = edge_run["modules"]["conv_layout_followers_o3"]
    runner = module.sources[f"{module.name}_lib1.c"]
    stripped = without_constant_data(runner)
    assert stripped.count("= {{0}};") == runner.count("static const union") > 0
    assert len(runner) - len(stripped) >= 2 * module.constants_bytes
    (tmp_path / f"tvmgen_{module.name}.h").write_text(module.header)
    objects = []
    for file_name, text in module.sources.items():
        source = tmp_path / file_name
        source.write_text(text)
        objects.append(str(source.with_suffix(".o")))
        subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Werror", "-c", "-I", str(tmp_path),
                        str(source), "-o", objects[-1]], check=True)
    sizes = subprocess.run(["size", "-A", *objects], capture_output=True, text=True,
                           check=True).stdout
    text = sum(int(line.split()[1]) for line in sizes.splitlines()
               if line.startswith(".text"))
    assert report.code_size(module) == text > 0


def test_constant_calls_are_folded_before_legalisation() -> None:
    """Weight transposes, batch-norm arithmetic and Clip bounds are computed with numpy
    (FoldConstant would compile one TIR function for each): no call on constants is left."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from tvmc_multimodule.pipeline.layout import CHANNELS_LAST, convert_layout
    from tvmc_multimodule.pipeline.numpy_fold import fold_constants_with_numpy

    model = edge.conv_layout_followers()
    model.graph.node.append(onnx.helper.make_node("Clip", ["y", "lo", "hi"], ["y6"]))
    model.graph.initializer.extend([onnx.numpy_helper.from_array(np.float32(v), n)
                                    for n, v in (("lo", 0.0), ("hi", 6.0))])
    model.graph.output[0].name = "y6"
    imported = from_onnx(model, keep_params_in_input=False)
    with tvm.target.Target("c"):
        folded = tvm.transform.Sequential([
            relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings(),
            fold_constants_with_numpy, convert_layout(CHANNELS_LAST),
            fold_constants_with_numpy])(imported)
    constant_calls = []
    bound = {}
    for block in folded["main"].body.blocks:
        for binding in block.bindings:
            value = binding.value
            bound[binding.var] = value
            if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and all(
                    isinstance(bound.get(a, a), tvm.ir.GenericConst) for a in value.args
                    if not isinstance(a, relax.ShapeExpr)):
                constant_calls.append(value.op.name)
    assert constant_calls == []
    assert "R.permute_dims(metadata" not in folded["main"].script(show_meta=False)
