"""`--target "cmsis-nn, c"`: int8 operators as calls of ARM's CMSIS-NN (kernels/cmsis_nn),
bit-exact (0 LSB) with TFLite Micro on test-built models, built on the host (CMSIS-NN's
portable C paths) and on QEMU's Cortex-M4 (its DSP paths); the scratch sizes we compute at
compile time equal CMSIS-NN's own `*_get_buffer_size` answers for every core family.

CMSIS-NN itself is not part of this repository: the tests use the checkout at
`../shared/vendor/CMSIS-NN` (relative to the repository root) and skip when it is absent.
It is built once per session, only the sources an int8 model can call.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import tflite_int8_models
from shared_int8_qemu import SHARED, assert_shared_int8_bit_exact_on_qemu
from tvmc_multimodule import compile_model
from tvmc_multimodule.kernels import CmsisNN, CortexMDsp, PortableC, library_for_target
from tvmc_multimodule.kernels.cmsis_nn import buffers
from tvmc_multimodule.micro.cmsis_nn import int8_sources

VENDOR = Path(__file__).resolve().parents[2] / "shared" / "vendor"
CMSIS_NN = VENDOR / "CMSIS-NN"
MODELS = ("conv_same_stride2", "conv_dilated_depthwise", "dsp_shapes", "dsp_gemv",
          "fully_connected", "pools", "softmax", "add_mul", "cmsis_nn_paths")
INPUT_SETS = 4
# The CMSIS-NN functions each test model's layers should call (from the builders' docstrings)
EXPECTED_CALLS = {
    "conv_same_stride2": {"arm_convolve_wrapper_s8"},
    "conv_dilated_depthwise": {"arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8"},
    "dsp_shapes": {"arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8",
                   "arm_fully_connected_per_channel_s8"},
    "dsp_gemv": {"arm_fully_connected_per_channel_s8"},
    "pools": {"arm_avgpool_s8", "arm_max_pool_s8"},
    "softmax": {"arm_softmax_s8"},
    # per-tensor weights, then per-channel ones
    "fully_connected": {"arm_fully_connected_s8", "arm_fully_connected_per_channel_s8"},
    "cmsis_nn_paths": {"arm_convolve_wrapper_s8", "arm_elementwise_add_s8",
                       "arm_depthwise_conv_wrapper_s8", "arm_elementwise_mul_s8"},
    # broadcasting ADD/MUL: our kernels (CMSIS-NN's take equal shapes only); a + a2: CMSIS-NN
    "add_mul": {"arm_elementwise_add_s8"},
}


def _builders() -> dict:
    return {**tflite_int8_models.integer_models(),
            "cmsis_nn_paths": tflite_int8_models.cmsis_nn_paths}


def _need_cmsis_nn() -> Path:
    """Skip the test without a CMSIS-NN checkout, fail it on CI (CI has ../shared/vendor)."""
    if not (CMSIS_NN / "Include" / "arm_nnfunctions.h").is_file():
        message = (f"CMSIS-NN not found at {CMSIS_NN} (ARM-software/CMSIS-NN: see "
                   "../shared/vendor/README.md)")
        if os.environ.get("CI"):
            pytest.fail(f"CI must have it: {message}")
        pytest.skip(message)
    return CMSIS_NN


def _compile_all(compiler: list[str], sources: list[Path], out: Path) -> Path:
    """A static library of `sources` (built two at a time: the machine is shared)."""
    out.mkdir(parents=True, exist_ok=True)

    def one(src: Path) -> Path:
        obj = out / (src.stem + ".o")
        run = subprocess.run([*compiler, "-c", str(src), "-o", str(obj)], capture_output=True,
                             text=True)
        assert run.returncode == 0, f"CMSIS-NN build failed: {run.stderr[:2000]}"
        return obj

    with ThreadPoolExecutor(2) as pool:
        objects = list(pool.map(one, sources))
    library = out / "libcmsis-nn.a"
    subprocess.run(["ar", "rcs", str(library), *map(str, objects)], check=True)
    return library


@pytest.fixture(scope="session")
def host_cmsis_nn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CMSIS-NN built once for the host (its portable C paths), as a static library."""
    root = _need_cmsis_nn()
    cbuild.need_tools("gcc", "ar")
    return _compile_all(["gcc", "-O2", "-I", str(root / "Include")], int8_sources(root),
                        tmp_path_factory.mktemp("cmsis-nn-host"))


# ----------------------------------------------------------------------------- host

@pytest.fixture(scope="module")
def host_build(host_cmsis_nn: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every test model compiled with --target "cmsis-nn, c" into one archive and ONE
    program, with the generated C under -Wall -Wextra -Werror."""
    root = tmp_path_factory.mktemp("cmsis-host")
    modules, data, archive = cbuild.compile_test_models(root, _builders(), MODELS, "cmsis-nn, c",
                                                        strict_int8=True)
    extracted = cbuild.extract(archive, root / "x")
    work = extracted / "harness"
    work.mkdir()
    table = {m.name: (m.inputs, m.outputs) for m in modules}
    (work / "main.c").write_text(cbuild.harness_source(table))
    sources = [str(p) for m in modules for p in cbuild.module_sources(extracted, m.name)]
    run = subprocess.run(["gcc", *cbuild.STRICT, "-O2", "-I",
                          str(extracted / "codegen" / "host" / "include"), "-I",
                          str(CMSIS_NN / "Include"), str(work / "main.c"), *sources,
                          str(host_cmsis_nn), "-lm", "-o", str(work / "app")],
                         capture_output=True, text=True)
    assert run.returncode == 0, f"C build failed:\n{run.stderr[:4000]}"
    return {"root": extracted, "modules": modules, "data": data, "table": table,
            "archive": archive}


def _inputs(module: object, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    if k == 0:  # extreme inputs: outputs saturate
        return [np.full(t.shape, 127 if i % 2 == 0 else -128, np.int8)
                for i, t in enumerate(module.inputs)]  # type: ignore[attr-defined]
    return [rng.integers(-128, 128, size=t.shape).astype(np.int8)
            for t in module.inputs]  # type: ignore[attr-defined]


def test_host_bit_exact_with_tflite_micro(host_build: dict) -> None:
    rng = np.random.default_rng(5)
    for k in range(INPUT_SETS):
        inputs = {m.name: _inputs(m, k, rng) for m in host_build["modules"]}
        outputs = cbuild.run_again(host_build["root"], host_build["table"], inputs)
        for m in host_build["modules"]:
            expected = references.run_tflite_micro(host_build["data"][m.name], inputs[m.name])
            assert len(outputs[m.name]) == len(expected)
            for i, (ours, ref) in enumerate(zip(outputs[m.name], expected)):
                diff = np.abs(ours.astype(np.int64) - ref.reshape(ours.shape)).max()
                assert diff == 0, f"{m.name} output {i}, input set {k}: {diff} LSB off"


def _calls(module: object) -> set[str]:
    text = "".join(module.sources.values())  # type: ignore[attr-defined]
    return set(re.findall(r"\b(arm_\w+_s8)\(", text))


def test_cmsis_nn_is_called_and_the_rest_falls_back(host_build: dict) -> None:
    calls = {m.name: _calls(m) for m in host_build["modules"]}
    assert calls == EXPECTED_CALLS


def test_metadata_lists_cmsis_nn(host_build: dict) -> None:
    metadata = json.loads((host_build["root"] / "metadata.json").read_text())
    assert set(metadata["modules"]) == set(EXPECTED_CALLS)
    for name, module in metadata["modules"].items():
        (dependency,) = module["external_dependencies"]
        assert dependency["short_name"] == "CMSIS-NN"
        assert set(dependency["functions"]) == EXPECTED_CALLS[name], name
        assert module["target"] == ["cmsis-nn, c"]


def test_sources_pass_the_strict_c_checks(host_build: dict) -> None:
    """The calls' C keeps the generated C's rules (one declaration each, prototypes, no const
    cast away), for the host and for the M4; and the layers declare their MACs (TIR cannot
    count inside the C), equal to the count by hand."""
    include = host_build["root"] / "codegen" / "host" / "include"
    flags = ["-std=c11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wcast-qual",
             "-Wmissing-prototypes", "-Wredundant-decls", "-I", str(include), "-I",
             str(CMSIS_NN / "Include")]
    sources = sorted((host_build["root"] / "codegen" / "host" / "src").glob("*_lib0.c"))
    assert len(sources) == len(MODELS)
    compilers = [["gcc"]] + ([["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"]]
                             if cbuild.have("arm-none-eabi-gcc") else [])
    for compiler in compilers:
        for source in sources:
            run = subprocess.run([*compiler, *flags, str(source)], capture_output=True, text=True)
            assert run.returncode == 0, run.stderr[:2000]
    module = next(m for m in host_build["modules"] if m.name == "cmsis_nn_paths")
    # By hand from the builder's shapes: output pixels x output channels x kernel h x kernel w
    # x input channels / groups; MUL and ADD multiply-accumulate nothing.
    assert {layer.name: layer.macs for layer in module.layers} == {
        "h1": 6 * 8 * 8 * 1 * 1 * 6,      # 1x1 conv 6 -> 8
        "h2": 6 * 8 * 8 * 5 * 5,          # 5x5 depthwise, 8 channels
        "h3": 4 * 6 * 16 * 3 * 3,         # 3x3 depthwise, multiplier 2 -> 16 channels
        "sq": 0, "out1": 0,
        "out2": 1 * 18 * 6 * 1 * 3 * 4,   # 1x3 conv 4 -> 6
    }


def test_scratch_buffers_are_in_the_workspace_plan() -> None:
    """On a DSP core the 5x5 depthwise and the 1x1 convolutions need CMSIS-NN scratch:
    each is an operator workspace of the plan, as large as CMSIS-NN asks (16-aligned)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(tflite_int8_models.cmsis_nn_paths())
        module = compile_model(str(path), module_name="m", strict_int8=True,
                               target="cmsis-nn, c -mcpu=cortex-m4")
    scratch = {op.function_name: op.workspace_bytes for op in module.operators}
    # x[1,6,8,6] 1x1 fast (2*6 int16), 5x5 depthwise over 8 channels (8*25 int16),
    # the 1x3 over r[1,1,20,4] (2 * 12 int16)
    assert scratch == {"tvmgen_m_conv2d": 32, "tvmgen_m_dwconv2d": 400,
                       "tvmgen_m_conv2d_1": 48, "tvmgen_m_dwconv2d_1": 0, "tvmgen_m_mul": 0,
                       "tvmgen_m_add": 0}
    assert module.workspace_bytes >= max(scratch.values())
    assert "int8_t* scratch" in module.sources["m_lib0.c"]


def test_library_choice() -> None:
    library = library_for_target("cortex-m4", "scalar", cmsis_nn=True)
    assert isinstance(library, CmsisNN) and isinstance(library.fallback, CortexMDsp)
    assert library.arch == "dsp"
    library = library_for_target(None, "vector", cmsis_nn=True)
    assert type(library.fallback) is PortableC and library.arch == "none"
    for core, arch in (("cortex-m0", "none"), ("cortex-m3", "none"), ("cortex-m7", "dsp"),
                       ("cortex-m33+nodsp", "none"), ("cortex-m55", "mve"),
                       ("cortex-m55+nomve", "dsp"), ("cortex-m85", "mve")):
        assert buffers.arch_for_cpu(core) == arch


def test_onnx_rounding_keeps_our_kernels() -> None:
    """ONNX-QDQ models round once (onnxruntime); CMSIS-NN rounds as TFLite Micro: ours."""
    from tvmc_multimodule.kernels import CHelpers, Conv2DSpec

    spec = Conv2DSpec((1, 4, 4, 3), (2, 1, 1, 3), (4, 4), (1, 1), (1, 1), (0, 0), 0, 0,
                      -128, 127)
    args = (spec, np.ones((2, 1, 1, 3), np.int8), np.zeros(2, np.int32),
            np.full(2, 1 << 30, np.int32), np.zeros(2, np.int32))
    library = library_for_target(None, "vector", cmsis_nn=True)
    assert not library.conv2d(*args, CHelpers("tvmgen_m_", "onnx")).c_sources
    assert library.conv2d(*args, CHelpers("tvmgen_m_", "tflite")).c_sources


# ----------------------------------------------------------------------------- buffer sizes

_CONV_CASES = [  # input NHWC, kernel, stride, pad (top, left), dilation
    ((1, 6, 8, 6), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 6, 8, 6), (1, 1), (2, 2), (0, 0), (1, 1)),
    ((1, 9, 9, 3), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((1, 10, 8, 4), (3, 3), (1, 1), (2, 2), (2, 2)),
    ((1, 1, 20, 4), (1, 3), (1, 1), (0, 0), (1, 1)),
    ((1, 1, 20, 4), (1, 5), (1, 2), (0, 2), (1, 1)),
    ((1, 1, 21, 3), (1, 3), (1, 1), (0, 1), (1, 1)),
    ((1, 49, 10, 1), (10, 4), (2, 2), (4, 1), (1, 1)),
    ((2, 7, 9, 5), (3, 3), (1, 1), (1, 1), (1, 1)),
]
_DW_CASES = [  # input, kernel, multiplier, stride, pad, dilation
    ((1, 6, 8, 8), (5, 5), 1, (1, 1), (2, 2), (1, 1)),
    ((1, 6, 8, 8), (3, 3), 1, (1, 1), (1, 1), (1, 1)),
    ((1, 6, 8, 8), (3, 3), 1, (2, 2), (0, 0), (1, 1)),
    ((1, 6, 8, 8), (3, 3), 2, (1, 1), (0, 0), (1, 1)),
    ((1, 10, 8, 4), (3, 3), 1, (1, 1), (2, 2), (2, 2)),
    ((1, 12, 12, 1), (3, 3), 8, (1, 1), (1, 1), (1, 1)),
    ((1, 12, 12, 1), (3, 3), 16, (1, 1), (1, 1), (1, 1)),
    ((2, 6, 6, 4), (3, 3), 1, (1, 1), (1, 1), (1, 1)),
]


def _out(size: int, k: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def test_buffer_sizes_equal_cmsis_nn_answers(host_cmsis_nn: Path, tmp_path: Path) -> None:
    """buffers.py against CMSIS-NN's own functions (`_dsp`, `_mve`, and the host build's
    generic answer = no DSP) for each case; armclang's 1x1 buffer (gcc: none) on DSP."""
    lines = ['#include <stdio.h>', '#include "arm_nnfunctions.h"', "int main(void) {",
             "  cmsis_nn_conv_params c; cmsis_nn_dw_conv_params d; cmsis_nn_dims i, f, o;"]
    expected = []
    for (n, h, w, ch), (kh, kw), (sh, sw), (pt, pl), (dh, dw) in _CONV_CASES:
        oh, ow = _out(h, kh, sh, pt, dh), _out(w, kw, sw, pl, dw)
        lines += [f"  c = (cmsis_nn_conv_params){{0, 0, {{{sw}, {sh}}}, {{{pl}, {pt}}}, "
                  f"{{{dw}, {dh}}}, {{-128, 127}}}};",
                  f"  i = (cmsis_nn_dims){{{n}, {h}, {w}, {ch}}}; "
                  f"f = (cmsis_nn_dims){{8, {kh}, {kw}, {ch}}}; "
                  f"o = (cmsis_nn_dims){{{n}, {oh}, {ow}, 8}};",
                  '  printf("%d %d %d\\n", (int)arm_convolve_wrapper_s8_get_buffer_size(&c, &i, &f, &o), '
                  "(int)arm_convolve_wrapper_s8_get_buffer_size_dsp(&c, &i, &f, &o), "
                  "(int)arm_convolve_wrapper_s8_get_buffer_size_mve(&c, &i, &f, &o));"]
        args = ((n, h, w, ch), (kh, kw), (oh, ow), (sh, sw), (pt, pl), (dh, dw))
        gcc_dsp = buffers.convolve_wrapper_s8(*args, "dsp")
        if (kh, kw, pt, pl, dh, dw, sh, sw) == (1, 1, 0, 0, 1, 1, 1, 1):
            assert gcc_dsp == 4 * ch  # armclang's answer; gcc's CMSIS-NN asks for none
            gcc_dsp = 0
        expected.append((buffers.convolve_wrapper_s8(*args, "none"), gcc_dsp,
                         buffers.convolve_wrapper_s8(*args, "mve")))
    for (n, h, w, ch), (kh, kw), mult, (sh, sw), (pt, pl), (dh, dw) in _DW_CASES:
        oh, ow, oc = _out(h, kh, sh, pt, dh), _out(w, kw, sw, pl, dw), ch * mult
        lines += [f"  d = (cmsis_nn_dw_conv_params){{0, 0, {mult}, {{{sw}, {sh}}}, "
                  f"{{{pl}, {pt}}}, {{{dw}, {dh}}}, {{-128, 127}}}};",
                  f"  i = (cmsis_nn_dims){{{n}, {h}, {w}, {ch}}}; "
                  f"f = (cmsis_nn_dims){{1, {kh}, {kw}, {oc}}}; "
                  f"o = (cmsis_nn_dims){{{n}, {oh}, {ow}, {oc}}};",
                  '  printf("%d %d %d\\n", (int)arm_depthwise_conv_wrapper_s8_get_buffer_size(&d, &i, &f, &o), '
                  "(int)arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(&d, &i, &f, &o), "
                  "(int)arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(&d, &i, &f, &o));"]
        args = ((n, h, w, ch), (kh, kw), oc, (oh, ow), (sh, sw), (pt, pl), (dh, dw))
        expected.append(tuple(buffers.depthwise_conv_wrapper_s8(*args, a)
                              for a in ("none", "dsp", "mve")))
    for units in (1, 10, 33):
        lines += [f"  f = (cmsis_nn_dims){{64, 1, 1, {units}}};",
                  '  printf("%d %d %d\\n", (int)arm_fully_connected_s8_get_buffer_size(&f), '
                  "(int)arm_fully_connected_s8_get_buffer_size_dsp(&f), "
                  "(int)arm_fully_connected_s8_get_buffer_size_mve(&f));"]
        expected.append(tuple(buffers.fully_connected_s8(64, units, a)
                              for a in ("none", "dsp", "mve")))
    for channels in (1, 5, 64):
        lines += ['  printf("%d %d %d\\n", (int)arm_avgpool_s8_get_buffer_size(4, '
                  f'{channels}), (int)arm_avgpool_s8_get_buffer_size_dsp(4, {channels}), '
                  f"(int)arm_avgpool_s8_get_buffer_size_mve(4, {channels}));"]
        expected.append(tuple(buffers.avgpool_s8(channels, a) for a in ("none", "dsp", "mve")))
    lines += ["  return 0;", "}"]
    (tmp_path / "sizes.c").write_text("\n".join(lines) + "\n")
    run = subprocess.run(["gcc", "-O1", "-I", str(CMSIS_NN / "Include"),
                          str(tmp_path / "sizes.c"), str(host_cmsis_nn), "-o",
                          str(tmp_path / "sizes")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[:3000]
    answers = subprocess.run([str(tmp_path / "sizes")], capture_output=True, text=True,
                             check=True).stdout.split("\n")
    for k, want in enumerate(expected):
        assert tuple(int(v) for v in answers[k].split()) == want, f"case {k}"


# ----------------------------------------------------------------------------- Cortex-M4

@pytest.fixture(scope="module")
def m4_firmware(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The test models compiled with --target "cmsis-nn, c -mcpu=cortex-m4", one firmware
    for QEMU's mps2-an386 building CMSIS-NN (its DSP paths) from ../shared/vendor."""
    from tvmc_multimodule.micro import create_project, load_board
    from tvmc_multimodule.micro.firmware import build

    root_nn = _need_cmsis_nn()
    cbuild.need_tools("arm-none-eabi-gcc", "qemu-system-arm")
    root = tmp_path_factory.mktemp("cmsis-m4")
    modules, data, archive = cbuild.compile_test_models(
        root, _builders(), MODELS, "cmsis-nn, c -mcpu=cortex-m4", strict_int8=True)
    create_project(str(root / "fw"), archive, load_board("mps2_an386"),
                   cmsis_nn_path=str(root_nn))
    project, elf = build(str(root / "fw"))
    return {"root": root, "project": project, "elf": elf, "modules": modules, "data": data,
            "archive": archive}


@pytest.mark.arm
@pytest.mark.parametrize("name", MODELS)
def test_m4_bit_exact_with_tflite_micro(m4_firmware: dict, name: str) -> None:
    from tvmc_multimodule.micro.emulator import run_module

    module = next(m for m in m4_firmware["modules"] if m.name == name)
    rng = np.random.default_rng(11)
    for k in range(3):
        inputs = _inputs(module, k, rng)
        got, run = run_module(m4_firmware["project"], m4_firmware["elf"], name, inputs,
                              str(m4_firmware["root"] / f"io_{name}_{k}"))
        assert run.invokes and run.invokes[0].status == 0
        expected = references.run_tflite_micro(m4_firmware["data"][name], inputs)
        assert len(module.outputs) == len(expected)
        for tensor, want in zip(module.outputs, expected):
            have = got[tensor.name].reshape(-1).astype(np.int32)
            diff = np.abs(have - np.asarray(want).reshape(-1).astype(np.int32)).max()
            assert diff == 0, f"{name} {tensor.name} set {k}: {diff} LSB off"


@pytest.mark.arm
def test_m4_firmware_links_cmsis_nn_dsp_code(m4_firmware: dict) -> None:
    """CMSIS-NN's DSP paths are what runs (the 1x1 fast form exists only with DSP), built
    from the given checkout, not copied into the project."""
    fw = m4_firmware["root"] / "fw"
    symbols = subprocess.run(["arm-none-eabi-nm", str(m4_firmware["elf"])], capture_output=True,
                             text=True, check=True).stdout
    for function in ("arm_convolve_wrapper_s8", "arm_depthwise_conv_s8_opt",
                     "arm_convolve_1x1_s8_fast", "arm_softmax_s8", "arm_avgpool_s8"):
        assert re.search(rf"\b{function}\b", symbols), function
    assert not list(fw.rglob("arm_nnfunctions.h"))
    link_map = (fw / "build" / "firmware.map").read_text()  # in the build, not at /
    assert re.search(r"libcmsis-nn\.a\(arm_convolve_s8\.o\)", link_map)
    assert str(CMSIS_NN.resolve()) in (fw / "Makefile").read_text()
    objects = list(fw.rglob("*_lib0.o"))  # our int8 objects: no soft-float or division helper
    assert len(objects) == len(MODELS)
    for obj in objects:
        undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True,
                                   text=True, check=True).stdout.split()
        assert not [u for u in undefined if re.match(r"__aeabi_|__(div|mod|udiv|umod)", u)]


def test_project_without_cmsis_nn_path_is_a_usage_error(host_build: dict,
                                                        tmp_path: Path) -> None:
    from tvmc_multimodule.cli.driver import main

    code = main(["micro", "create-project", str(tmp_path / "fw"), host_build["archive"],
                 "--board", "mps2_an386"])
    assert code == 2 and not (tmp_path / "fw").exists()
    code = main(["micro", "create-project", str(tmp_path / "fw"), host_build["archive"],
                 "--board", "mps2_an386", "--cmsis-nn-path", str(tmp_path)])
    assert code == 2 and not (tmp_path / "fw").exists()


@pytest.mark.arm
def test_m55_helium_paths_bit_exact(tmp_path: Path) -> None:
    """Cortex-M55 (QEMU mps3-an547, MVE): CMSIS-NN's Helium paths with their own scratch
    sizes, and the fully connected layers' kernel sums we compute at compile time (TFLite
    Micro computes them at start-up), 0 LSB against TFLite Micro."""
    from tvmc_multimodule.micro import create_project, load_board
    from tvmc_multimodule.micro.emulator import run_module
    from tvmc_multimodule.micro.firmware import build

    root_nn = _need_cmsis_nn()
    cbuild.need_tools("arm-none-eabi-gcc", "qemu-system-arm")
    names = ("cmsis_nn_paths", "fully_connected", "dsp_shapes")
    modules, data, archive = cbuild.compile_test_models(
        tmp_path, _builders(), names, "cmsis-nn, c -mcpu=cortex-m55", strict_int8=True)
    assert "const int32_t* sums" in modules[1].sources["fully_connected_lib0.c"]
    create_project(str(tmp_path / "fw"), archive, load_board("mps3_an547"),
                   cmsis_nn_path=str(root_nn))
    project, elf = build(str(tmp_path / "fw"))
    rng = np.random.default_rng(13)
    for module in modules:
        for k in range(2):
            inputs = _inputs(module, k, rng)
            got, _ = run_module(project, elf, module.name, inputs, str(tmp_path / f"io{k}"))
            expected = references.run_tflite_micro(data[module.name], inputs)
            assert len(module.outputs) == len(expected)
            for tensor, want in zip(module.outputs, expected):
                have = got[tensor.name].reshape(-1).astype(np.int32)
                assert np.array_equal(have, np.asarray(want).reshape(-1).astype(np.int32)), \
                    f"{module.name} {tensor.name} set {k}"


def test_tvmc_compile_with_cmsis_nn_options(tmp_path: Path) -> None:
    """microTVM's command line: --target "cmsis-nn, c" --target-cmsis-nn-mcpu=cortex-m4."""
    from tvmc_multimodule.cli.driver import main

    model = tmp_path / "m.tflite"
    model.write_bytes(tflite_int8_models.pools())
    out = tmp_path / "m.tar"
    assert main(["compile", str(model), "--target", "cmsis-nn, c",
                 "--target-cmsis-nn-mcpu=cortex-m4", "-o", str(out)]) == 0
    with tarfile.open(out) as tar:
        name = next(n for n in tar.getnames() if n.endswith("metadata.json"))
        metadata = json.load(tar.extractfile(name))  # type: ignore[arg-type]
    (module,) = metadata["modules"].values()
    assert module["target"] == ["cmsis-nn, c -mcpu=cortex-m4"]
    assert module["external_dependencies"][0]["functions"] == ["arm_avgpool_s8",
                                                               "arm_max_pool_s8"]
    # the avgpool scratch (DSP: 5 channels x int32) is an operator workspace of the plan
    workspaces = {op["function_name"]: op["workspace"][0]["workspace_size_bytes"]
                  for op in module["memory"]["functions"]["operator_functions"]}
    assert workspaces["tvmgen_default_avg_pool2d"] == 32
    # tvmc run on the host builds the module with CMSIS-NN from the path given, else exit 2
    assert main(["run", str(out), "--fill-mode", "ones"]) == 2
    if (CMSIS_NN / "Include" / "arm_nnfunctions.h").is_file() and cbuild.have("gcc"):
        result = tmp_path / "out.npz"
        assert main(["run", str(out), "--fill-mode", "ones", "--cmsis-nn-path", str(CMSIS_NN),
                     "-o", str(result)]) == 0
        expected = references.run_tflite_micro(model.read_bytes(),
                                               [np.ones((1, 9, 7, 5), np.int8)])
        assert len(expected) == 3
        with np.load(result) as got:
            for name, want in zip(("avg", "max", "max_same"), expected):
                assert np.array_equal(got[name].reshape(-1), want.reshape(-1)), name


@pytest.mark.arm
@pytest.mark.shared_models
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models not present")
def test_shared_int8_models_bit_exact_on_qemu(tmp_path: Path) -> None:
    """The MLPerf-Tiny int8 models through CMSIS-NN on QEMU's M4 against TFLite Micro: the
    given input and a random one."""
    root_nn = _need_cmsis_nn()
    cbuild.need_tools("arm-none-eabi-gcc", "qemu-system-arm")
    modules = assert_shared_int8_bit_exact_on_qemu(tmp_path, "cmsis-nn, c -mcpu=cortex-m4",
                                                   cmsis_nn_path=str(root_nn))
    assert all(module.external_dependencies for module in modules)
