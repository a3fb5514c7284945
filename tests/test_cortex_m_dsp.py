"""The Cortex-M DSP kernel library (kernels/cortex_m_dsp) on an emulated Cortex-M4 (QEMU
mps2-an386, through a `tvmc micro` project): every DSP kernel (convolution, pointwise,
depthwise with channel multipliers 1 and 2, fully connected, ADD and MUL with broadcasting,
average and max pooling)
bit-exact with TFLite Micro on test-built models with odd channel counts, channel tails,
padding with non-zero input zero points, per-channel weights and saturated outputs; the int8
objects call no soft-float or division helper."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import tflite_int8_models
from shared_int8_qemu import SHARED, assert_shared_int8_bit_exact_on_qemu
from tvmc_multimodule import compile_model
from tvmc_multimodule.micro import create_project, load_board
from tvmc_multimodule.micro.emulator import run_module
from tvmc_multimodule.micro.firmware import build

TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")
MODELS = ("dsp_shapes", "dsp_wide_window", "dsp_gemv", "conv_same_stride2", "fully_connected",
          "conv_dilated_depthwise", "dsp_elementwise", "add_mul", "dsp_requant_edges", "pools")
INPUT_SETS = 4

pytestmark = pytest.mark.arm


@pytest.fixture(scope="module")
def dsp_firmware(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cbuild.need_tools(*TOOLS)
    root = tmp_path_factory.mktemp("dsp")
    modules, data, archive = cbuild.compile_test_models(
        root, tflite_int8_models.integer_models(), MODELS, "c -mcpu=cortex-m4", strict_int8=True)
    project = create_project(str(root / "fw"), archive, load_board("mps2_an386"))
    project, elf = build(str(root / "fw"))
    return {"root": root, "project": project, "elf": elf, "modules": modules, "data": data}


def test_library_is_chosen_for_dsp_cores(dsp_firmware: dict) -> None:
    """The DSP kernels are really in the firmware (and not for a core without DSP)."""
    from tvmc_multimodule.kernels import CortexMDsp, PortableC, library_for_target

    for module in dsp_firmware["modules"]:
        assert "_dsp_" in module.sources[f"{module.name}_lib0.c"]
    elementwise = next(m for m in dsp_firmware["modules"] if m.name == "dsp_elementwise")
    source = elementwise.sources["dsp_elementwise_lib0.c"]
    assert source.count("_dsp_add_") >= 6 and source.count("_dsp_mul_") >= 4  # 3 + 2 kernels
    pools = next(m for m in dsp_firmware["modules"] if m.name == "pools").sources["pools_lib0.c"]
    assert pools.count("_dsp_avgpool_") >= 2 and pools.count("_dsp_maxpool_") >= 4
    edges = next(m for m in dsp_firmware["modules"] if m.name == "dsp_requant_edges")
    layers = edges.sources["dsp_requant_edges_lib0.c"].split("end of the Cortex-M DSP")[1]
    for form in ("d_requant_small(", "d_requant_right(", "d_requant("):  # every form is used
        assert form in layers, form
    assert "_dsp_dw_" in dsp_firmware["modules"][0].sources["dsp_shapes_lib0.c"]
    multiplier = next(m for m in dsp_firmware["modules"] if m.name == "conv_dilated_depthwise")
    assert "_dsp_dw_" in multiplier.sources["conv_dilated_depthwise_lib0.c"]  # multiplier 2
    for core in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"):
        assert isinstance(library_for_target(core, "scalar"), CortexMDsp)
    for core in ("cortex-m0", "cortex-m3", "cortex-m33+nodsp", None):
        library = library_for_target(core, "scalar")
        assert type(library) is PortableC and library.form == "scalar"


@pytest.mark.parametrize("name", MODELS)
def test_dsp_kernels_bit_exact_on_qemu(dsp_firmware: dict, name: str) -> None:
    module = next(m for m in dsp_firmware["modules"] if m.name == name)
    rng = np.random.default_rng(7)
    for k in range(INPUT_SETS):
        inputs = [rng.integers(-128, 128, size=t.shape).astype(np.int8) for t in module.inputs]
        if k == 0:  # extreme inputs: outputs saturate
            inputs = [np.full(t.shape, 127 if i % 2 == 0 else -128, np.int8)
                      for i, t in enumerate(module.inputs)]
        got, run = run_module(dsp_firmware["project"], dsp_firmware["elf"], name, inputs,
                              str(dsp_firmware["root"] / f"io_{name}_{k}"))
        assert run.invokes and run.invokes[0].status == 0
        expected = references.run_tflite_micro(dsp_firmware["data"][name], inputs)
        for tensor, want in zip(module.outputs, expected):
            have = got[tensor.name].reshape(-1).astype(np.int32)
            diff = np.abs(have - np.asarray(want).reshape(-1).astype(np.int32)).max()
            assert diff == 0, f"{name} {tensor.name} set {k}: {diff} LSB off"


def test_dsp_objects_call_no_soft_float_or_division(dsp_firmware: dict) -> None:
    objects = list(Path(dsp_firmware["root"] / "fw").rglob("*_lib0.o"))
    assert len(objects) == len(MODELS)
    for obj in objects:
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True,
                                   text=True, check=True).stdout.split()
        helpers = [u for u in undefined if re.match(r"__aeabi_|__(div|mod|udiv|umod)|__.*sf", u)]
        assert not helpers, (obj.name, helpers)


@pytest.mark.shared_models
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models not present")
def test_shared_int8_models_bit_exact_on_qemu(tmp_path: Path) -> None:
    """The MLPerf-Tiny int8 models on the DSP kernels, on QEMU, against TFLite Micro: the
    given input and a random one."""
    cbuild.need_tools(*TOOLS)
    assert_shared_int8_bit_exact_on_qemu(tmp_path, "c -mcpu=cortex-m4")


def test_dsp_sources_pass_the_strict_c_checks(dsp_firmware: dict) -> None:
    """The kernels' C keeps the generated C's rules (one declaration each, prototypes, no
    const cast away; see test_readable_c.py), for the host and for the M4."""
    include = dsp_firmware["root"] / "fw" / "model" / "codegen" / "host" / "include"
    flags = ["-std=c11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wcast-qual",
             "-Wmissing-prototypes", "-Wredundant-decls", "-I", str(include)]
    sources = list((dsp_firmware["root"] / "fw" / "model" / "codegen" / "host" / "src")
                   .glob("*_lib0.c"))
    assert len(sources) == len(MODELS)
    for compiler in (["gcc"], ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"]):
        for source in sources:
            run = subprocess.run([*compiler, *flags, str(source)], capture_output=True, text=True)
            assert run.returncode == 0, run.stderr[:2000]


# MACs per layer, counted by hand from the builders' shapes: output pixels x output channels x
# kernel h x kernel w x input channels / groups; FC: batch x depth x units; elementwise: 0.
HAND_COUNTED_MACS = {
    "dsp_shapes": {"h1": 7 * 9 * 7 * 3 * 3 * 5,   # 3x3 SAME conv 5 -> 7 channels
                   "h2": 4 * 5 * 7 * 3 * 3,       # 3x3 stride-2 depthwise, 7 channels
                   "h3": 4 * 5 * 3 * 7,           # 1x1 conv 7 -> 3
                   "y": 4 * 15 * 5},              # FC batch 4, depth 15, 5 units
    "conv_same_stride2": {"y1": 5 * 5 * 6 * 3 * 3 * 3, "y2": 9 * 9 * 4 * 3},
    "fully_connected": {"h": 2 * 24 * 16, "y": 2 * 16 * 10},
    "conv_dilated_depthwise": {"mid": 10 * 8 * 4 * 3 * 3 * 4, "y": 5 * 8 * 8 * 3 * 3},
    "add_mul": {"sum": 0, "prod": 0, "sum2": 0},
}


def test_dsp_layers_report_their_macs(dsp_firmware: dict) -> None:
    """TIR cannot count inside the C kernels: they declare their MACs, equal to the count by
    hand from the models' shapes."""
    counted = {m.name: {layer.name: layer.macs for layer in m.layers}
               for m in dsp_firmware["modules"] if m.name in HAND_COUNTED_MACS}
    assert counted == HAND_COUNTED_MACS


def test_requantisation_shifts_are_int8_tables(tmp_path: Path) -> None:
    """Per-channel shifts are stored as int8 (not int32) by both libraries: a model's
    constants are its weights, biases, int32 multipliers and one byte per channel more."""
    path = tmp_path / "m.tflite"
    path.write_bytes(tflite_int8_models.integer_models()["dsp_shapes"]())
    for target in ("c", "c -mcpu=cortex-m4"):
        module = compile_model(str(path), module_name="m", strict_int8=True, target=target)
        int32_tables = [a for a in module.params.values()
                        if str(a.dtype) == "int32" and a.size and np.abs(a).max() <= 31]
        assert not int32_tables, (target, [a.shape for a in int32_tables])
        assert any(str(a.dtype) == "int8" and a.ndim == 1 and 0 < np.abs(a).max() <= 31
                   for a in module.params.values()), target
