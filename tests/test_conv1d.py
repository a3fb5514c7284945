"""Float 1-D convolutions (ONNX Conv over N x C x W): strides, dilations, asymmetric and SAME
padding, groups (depthwise too), with and without bias, compiled at -O3 into one archive,
built with gcc -Werror and compared with onnxruntime (1e-5 relative); and checks that the
channels-last schedule is what runs (NWC/WIO, output channels innermost, register tile)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
from tvm import s_tir
from onnx import TensorProto, helper

import cbuild
import references
from tvmc_multimodule import compile_model, export_model_library_format, pipeline
from tvmc_multimodule.frontends import import_model

# name -> (C in, C out, width, kernel, Conv attributes, bias, ReLU after)
CASES = {
    "plain": (8, 16, 20, 3, {}, True, False),
    "stride2_pad": (12, 32, 35, 5, {"strides": [2], "pads": [2, 2]}, True, True),
    "dilated": (6, 24, 30, 3, {"dilations": [2], "pads": [2, 2]}, True, False),
    "asymmetric_pad": (5, 20, 17, 4, {"pads": [1, 2]}, False, False),
    "same_upper": (7, 16, 19, 4, {"auto_pad": "SAME_UPPER", "strides": [2]}, True, False),
    "grouped": (16, 32, 24, 3, {"group": 4, "pads": [1, 1]}, True, True),
    "depthwise": (32, 32, 24, 5, {"group": 32, "pads": [2, 2]}, True, False),
    "stft_like": (1, 258, 640, 256, {"strides": [128]}, False, True),
    "pointwise_batch2": (24, 48, 10, 1, {}, True, False),
}
BATCH = {"pointwise_batch2": 2}
SCHEDULES = ("vector", "scalar")  # hosts; Cortex-M (channel blocks of 8, unrolled)


def conv1d_model(name: str) -> onnx.ModelProto:
    cin, cout, width, kernel, attrs, bias, relu = CASES[name]
    rng = np.random.default_rng(len(name))
    groups = attrs.get("group", 1)
    w = rng.standard_normal((cout, cin // groups, kernel)).astype(np.float32) * 0.3
    inits = [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())]
    conv_in = ["x", "w"]
    if bias:
        b = rng.standard_normal(cout).astype(np.float32)
        inits.append(helper.make_tensor("b", TensorProto.FLOAT, b.shape, b))
        conv_in.append("b")
    nodes = [helper.make_node("Conv", conv_in, ["c" if relu else "y"], **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    n = BATCH.get(name, 1)
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, cin, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def conv1d_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("conv1d")
    rng = np.random.default_rng(7)
    modules, inputs, expected = [], {}, {}
    for name, schedule in [(n, s) for n in CASES for s in SCHEDULES]:
        model = conv1d_model(name)
        path = root / f"{name}.onnx"
        onnx.save(model, path)
        key = f"{name}_{schedule}"
        module = compile_model(str(path), module_name=key, opt_level=3, schedule=schedule)
        x = references.random_array(module.inputs[0].shape, np.float32, rng)
        modules.append(module)
        inputs[key] = [x]
        expected[key] = references.run_onnxruntime(model, {"x": x})
    archive = export_model_library_format(modules, str(root / "conv1d.tar"))
    extracted = cbuild.extract(archive, root / "mlf")
    outputs = cbuild.build_and_run(extracted, {m.name: (m.inputs, m.outputs) for m in modules},
                                   inputs)
    return {"outputs": outputs, "expected": expected, "root": extracted}


@pytest.mark.parametrize("name", [f"{n}_{s}" for n in sorted(CASES) for s in SCHEDULES])
def test_conv1d_matches_onnxruntime(conv1d_run: dict, name: str) -> None:
    actual, expected = conv1d_run["outputs"][name][0], np.asarray(conv1d_run["expected"][name][0])
    cbuild.assert_close(actual.reshape(expected.shape), expected, name, rtol=1e-5)


def _scheduled(path: Path, name: str) -> tvm.IRModule:
    imported = import_model(str(path), name)
    relaxed = pipeline.lower_relax(imported.relax_module, 3)
    return pipeline.schedule_operators(relaxed, pipeline.ScheduleOptions())


def _loops(func: object, block: str = "conv1d_nwc_update") -> list[tuple[str, int]]:
    """(loop variable, extent) of the loops around `block`, outermost first."""
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    return [(str(sch.get(lp).loop_var), int(sch.get(lp).extent))
            for lp in sch.get_loops(sch.get_sblock(block))]


def test_conv1d_runs_channels_last_with_a_register_tile(tmp_path: Path) -> None:
    """The scheduled TIR of a 1-D convolution: NWC data, WIO weights, and the reduction
    (kernel taps, input channels) outside a block of 2 output pixels x 32 output channels,
    channels innermost (the loop gcc vectorises). Unscheduled NCW code has the width
    innermost and no such tile."""
    path = tmp_path / "stride2_pad.onnx"
    onnx.save(conv1d_model("stride2_pad"), path)
    mod = _scheduled(path, "stride2_pad")
    convs = [(g.name_hint, f) for g, f in mod.functions.items() if "conv1d" in g.name_hint]
    assert len(convs) == 1, [g.name_hint for g in mod.functions]
    script = convs[0][1].script()
    assert 'T.sblock("conv1d_nwc_update")' in script
    loops = _loops(convs[0][1])
    names = [n for n, _ in loops]
    # ... for ry, rc: for yy_1 < 2: for ff < 32: acc[yy_1][ff] += x[..][rc] * w[ry][rc][ff]
    assert loops[-2:] == [("yy_1", 2), ("ff", 32)], loops
    assert names.index("ry") < names.index("yy_1") and names.index("rc") < names.index("yy_1")


def test_conv1d_without_a_fitting_tile_keeps_a_small_accumulator(tmp_path: Path) -> None:
    """258 output channels (silero-VAD's STFT) and an epilogue: no tile of 16/32 fits, the
    channels are split by 43, so the accumulator is 43 floats, not one pixel's 258 (1 KiB of
    scratch)."""
    path = tmp_path / "stft_like.onnx"
    onnx.save(conv1d_model("stft_like"), path)
    mod = _scheduled(path, "stft_like")
    func = next(f for g, f in mod.functions.items() if "conv1d" in g.name_hint)
    assert ("ff_1", 43) in _loops(func)


def test_conv_transpose1d_stores_one_copy_of_its_input(tmp_path: Path) -> None:
    """ConvTranspose1d (stride 2, pads 1): matches onnxruntime, and of TOPI's three stored
    copies (input dilated, then padded; kernel flipped) only the padded one is left: the
    operator's scratch is 16 channels x 103 floats."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((16, 8, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2], pads=[1, 1])], "ct",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 50])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, tmp_path / "ct.onnx")
    module = compile_model(str(tmp_path / "ct.onnx"), module_name="ct", opt_level=3)
    scratch = [b.size for b in module.memory_layout.buffers if b.kind == "scratch"]
    assert scratch == [16 * 103 * 4]
    x = references.random_array((1, 16, 50), np.float32, rng)
    archive = export_model_library_format([module], str(tmp_path / "ct.tar"))
    extracted = cbuild.extract(archive, tmp_path / "mlf")
    out = cbuild.build_and_run(extracted, {"ct": (module.inputs, module.outputs)},
                               {"ct": [x]})["ct"][0]
    expected = np.asarray(references.run_onnxruntime(model, {"x": x})[0])
    cbuild.assert_close(out.reshape(expected.shape), expected, "conv transpose", rtol=1e-5)
