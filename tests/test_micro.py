"""`tvmc micro` on QEMU boards: several modules (int8 and float) in one archive through
create-project -> build -> `run --device micro`, on the Cortex-M4F (mps2_an386) and the
Cortex-M7 (mps2_an500). Outputs equal the host build of the same archive and agree with TFLite
Micro (int8, exactly), LiteRT and onnxruntime (float); the footprint agrees with
arm-none-eabi-size of the ELF and with the archive's metadata; the stack peak stays below the
project's stack. Skipped when the ARM toolchain or QEMU is missing (CI installs both)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_models
from tvmc_cli import tvmc
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli.driver import main as tvmc_main

TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "make")
SHARED = references.SHARED_MODELS / "tflite"
CORES = {"mps2_an386": "cortex-m4", "mps2_an500": "cortex-m7"}

pytestmark = pytest.mark.arm


def _models(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (model file, reference runtime)"""
    files = {
        "vision": (folder / "conv.onnx", onnx_models.conv2d().SerializeToString(), "onnxruntime"),
        "pair": (folder / "pair.tflite", tflite_models.two_in_two_out(), "litert"),
        "kws8": (folder / "kws8.tflite", tflite_models.int8_conv_fc_softmax(), "tflite_micro"),
    }
    for path, data, _ in files.values():
        path.write_bytes(data)
    return {name: (path, runtime) for name, (path, _, runtime) in files.items()}


def _reference(path: Path, runtime: str, module, xs: list[np.ndarray]) -> list[np.ndarray]:
    data = path.read_bytes()
    if runtime == "tflite_micro":
        return references.run_tflite_micro(data, xs)
    if runtime == "litert":
        return references.run_litert(data, xs)
    return references.run_onnxruntime(data, {t.name: x for t, x in zip(module.inputs, xs)})


def _elf_sections(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return {p[0]: int(p[1]) for p in (line.split() for line in out.splitlines())
            if len(p) >= 2 and p[0].startswith(".") and p[1].isdigit()}


@pytest.fixture(scope="module", params=sorted(CORES))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One archive of three modules compiled for the board's core, its project built."""
    cbuild.need_tools(*TOOLS)
    board = request.param
    folder = tmp_path_factory.mktemp(board)
    models = _models(folder)
    archive = folder / "models.tar"
    assert tvmc_main(["compile-multi", *[f"{p}:{n}" for n, (p, _) in models.items()],
                      "--target", f"c -mcpu={CORES[board]}", "-o", str(archive)]) == 0
    project = folder / "fw"
    assert tvmc_main(["micro", "create-project", str(project), str(archive),
                      "--board", board]) == 0
    assert tvmc_main(["micro", "build", str(project)]) == 0
    return {"board": board, "folder": folder, "models": models, "archive": archive,
            "project": project, "loaded": load_model_library_format(str(archive))}


def test_outputs_equal_host_build_and_references(built: dict, capsys) -> None:
    rng = np.random.default_rng(3)
    folder, loaded = built["folder"], built["loaded"]
    for name, (path, runtime) in built["models"].items():
        module = loaded.modules[name]
        xs = [references.random_array(t.shape, t.dtype, rng) for t in module.inputs]
        inputs = folder / f"{name}_in.npz"
        np.savez(inputs, **{t.name: x for t, x in zip(module.inputs, xs)})
        on_board, on_host = folder / f"{name}_board.npz", folder / f"{name}_host.npz"
        code, _, err = tvmc(capsys, "run", "--device", "micro", built["project"], "--module",
                            name, "--inputs", inputs, "-o", on_board)
        assert code == 0, err
        code, _, err = tvmc(capsys, "run", built["archive"], "--module", name, "--inputs",
                            inputs, "-o", on_host)
        assert code == 0, err
        board, host = np.load(on_board), np.load(on_host)
        expected = _reference(path, runtime, module, xs)
        for i, t in enumerate(module.outputs):
            got = board[t.name]
            assert got.dtype == np.dtype(t.dtype) and got.shape == tuple(t.shape)
            if got.dtype.kind == "f":  # same C; gcc may contract a*b+c into an FMA on ARM
                np.testing.assert_allclose(got, host[t.name], rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(got, host[t.name])
            if runtime == "tflite_micro":
                np.testing.assert_array_equal(got, expected[i], f"{name} vs TFLite Micro")
            else:
                cbuild.assert_close(got, np.asarray(expected[i]), f"{name} vs {runtime}")


def test_footprint_agrees_with_elf_and_metadata(built: dict) -> None:
    project, loaded = built["project"], built["loaded"]
    footprint = json.loads((project / "footprint.json").read_text())
    sections = _elf_sections(project / footprint["elf"])
    firmware = footprint["firmware"]
    flash = sum(sections.get(s, 0) for s in (".vectors", ".text", ".rodata", ".ARM.exidx", ".data"))
    assert firmware["flash"] == flash
    assert firmware["ram"] == sections[".data"] + sections[".bss"] + firmware["stack_size"]
    modules = footprint["modules"]
    assert set(modules) == set(loaded.modules)
    assert sum(m["code"] for m in modules.values()) < sections[".text"]
    assert sum(m["constants"] for m in modules.values()) <= sections[".rodata"]
    assert sum(m["ram"] for m in modules.values()) <= sections[".data"] + sections[".bss"]
    for name, module in loaded.modules.items():
        entry = modules[name]
        assert entry["workspace"] == module.workspace_size_bytes, name
        assert entry["io"] == sum(max(t.nbytes, 1) for t in [*module.inputs, *module.outputs])
        constants = module.constants_size_bytes
        assert constants <= entry["constants"] < constants + 1024  # + string literals, tables
        assert entry["code"] > 0 and entry["flash"] == entry["code"] + entry["constants"]
        parts = ("workspace", "io", "state", "other_ram")
        assert entry["ram"] == sum(entry[k] for k in parts)


def test_profile_counts_instructions_per_operator_and_stack(built: dict, capsys) -> None:
    code, out, err = tvmc(capsys, "run", "--device", "micro", built["project"], "--module",
                          "kws8", "--fill-mode", "random", "--profile", "--invokes", "2")
    assert code == 0, err
    assert "QEMU counts instructions, not cycles" in out
    invokes = [[int(v.replace(",", "")) for v in line.split()]
               for line in out.splitlines() if re.fullmatch(r"\s+\d\s+[\d,]+\s+[\d,]+", line)]
    assert [i[0] for i in invokes] == [1, 2]
    total = invokes[-1][1]
    assert abs(invokes[0][1] - total) <= 80  # deterministic, to a tick or two
    stack_size = int(re.search(r"stack size ([\d,]+) B", out).group(1).replace(",", ""))
    assert 0 < invokes[-1][2] < stack_size
    operators = re.findall(r"^\s+\d+\s+(tvmgen_kws8_\w+)\s+([\d,]+)\s+[\d.]+%$", out, re.M)
    ops = [op.function_name for op in built["loaded"].modules["kws8"].operator_functions]
    assert {name for name, _ in operators} <= set(ops) and operators
    summed = sum(int(v.replace(",", "")) for _, v in operators)
    assert 0.9 * total <= summed <= total + 40 * len(operators)


def test_flash_runs_every_module(built: dict, capsys) -> None:
    code, out, err = tvmc(capsys, "micro", "flash", built["project"])
    assert code == 0, err
    assert "3 of 3 modules ran" in out and "instructions, not cycles" in out
    for name in built["models"]:
        assert re.search(rf"^{name}: [\d,]+ instructions, stack peak", out, re.M), out


def test_cmake_build_gives_the_same_firmware(built: dict, capsys) -> None:
    if built["board"] != "mps2_an386":
        pytest.skip("one core is enough")
    if not cbuild.have("cmake"):
        pytest.skip("cmake not installed")
    made = json.loads((built["project"] / "footprint.json").read_text())
    try:
        code, _, err = tvmc(capsys, "micro", "build", built["project"], "--cmake")
        assert code == 0, err
        cmade = json.loads((built["project"] / "footprint.json").read_text())
    finally:
        (built["project"] / "footprint.json").write_text(json.dumps(made))
    assert cmade["elf"] == "build-cmake/firmware.elf"
    for name, entry in made["modules"].items():
        assert cmade["modules"][name] == entry, name


@pytest.mark.parametrize("board,core", [("mps2_an505", "cortex-m33"), ("mps3_an547", "cortex-m55")])
def test_int8_module_on_the_other_cores(tmp_path: Path, capsys, board: str, core: str) -> None:
    """The Cortex-M33 and M55 boards (secure state, their own memory maps and clocks)."""
    cbuild.need_tools(*TOOLS)
    model = tmp_path / "kws8.tflite"
    model.write_bytes(tflite_models.int8_conv_fc_softmax())
    archive = tmp_path / "m.tar"
    assert tvmc_main(["compile", str(model), "--module-name", "kws8", "--target",
                      f"c -mcpu={core}", "-o", str(archive)]) == 0
    project = tmp_path / "fw"
    assert tvmc_main(["micro", "create-project", str(project), str(archive), "--board",
                      board]) == 0
    module = load_model_library_format(str(archive)).modules["kws8"]
    x = references.random_array(module.inputs[0].shape, "int8", np.random.default_rng(5))
    np.savez(tmp_path / "in.npz", **{module.inputs[0].name: x})
    code, out, err = tvmc(capsys, "run", "--device", "micro", project, "--inputs",
                          tmp_path / "in.npz", "-o", tmp_path / "out.npz")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "out.npz")[module.outputs[0].name],
                                  references.run_tflite_micro(model.read_bytes(), [x])[0])


def test_archive_core_must_match_the_board(tmp_path: Path, capsys) -> None:
    model = tmp_path / "kws8.tflite"
    model.write_bytes(tflite_models.int8_conv_fc_softmax())
    archive = tmp_path / "m4.tar"
    assert tvmc_main(["compile", str(model), "--module-name", "kws8", "--target",
                      "c -mcpu=cortex-m4", "-o", str(archive)]) == 0
    code, _, err = tvmc(capsys, "micro", "create-project", tmp_path / "fw", archive, "--board",
                        "mps2_an500")
    assert code == 2
    assert "-mcpu=cortex-m4" in err and "mps2_an500" in err and "cortex-m7" in err
    assert not (tmp_path / "fw").exists()
    code, _, err = tvmc(capsys, "micro", "create-project", tmp_path / "fw", archive, "--board",
                        "generic", "--flash", "0x08000000:1M")
    assert code == 2 and "--ram" in err


def test_generic_board_builds_for_the_given_memory_map(tmp_path: Path, capsys) -> None:
    cbuild.need_tools(*TOOLS)
    model = tmp_path / "kws8.tflite"
    model.write_bytes(tflite_models.int8_conv_fc_softmax())
    archive = tmp_path / "m33.tar"
    assert tvmc_main(["compile", str(model), "--module-name", "kws8", "--target",
                      "c -mcpu=cortex-m33", "-o", str(archive)]) == 0
    project = tmp_path / "fw"
    code, out, err = tvmc(capsys, "micro", "create-project", project, archive, "--board",
                          "generic", "--flash", "0x08000000:512K", "--ram", "0x20000000:64K")
    assert code == 0, err
    code, out, err = tvmc(capsys, "micro", "build", project)
    assert code == 0, err
    symbols = subprocess.run(["arm-none-eabi-nm", str(project / "build/firmware.elf")],
                             capture_output=True, text=True, check=True).stdout
    addresses = {line.split()[-1]: int(line.split()[0], 16) for line in symbols.splitlines()
                 if len(line.split()) == 3}
    assert 0x08000000 <= addresses["reset_handler"] < 0x08080000
    assert addresses["_stack_top"] == 0x20010000
    code, out, err = tvmc(capsys, "micro", "flash", project)
    assert code == 0 and "openocd" in out and "build/firmware.elf" in out


# ----------------------------------------------------------------------------- shared models

@pytest.mark.shared_models
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models not present")
def test_shared_models_on_cortex_m4(tmp_path: Path, capsys) -> None:
    """kws and ad, int8 and float32, in one archive on mps2_an386: outputs equal the host
    build's, int8 exactly TFLite Micro's, float32 within 1e-4 of LiteRT's."""
    cbuild.need_tools(*TOOLS)
    names = [f"{m}_{k}" for m in ("kws_dscnn", "ad_autoencoder") for k in ("int8", "float32")]
    archive = tmp_path / "shared.tar"
    assert tvmc_main(["compile-multi", *[f"{SHARED / n}.tflite:{n}" for n in names], "--target",
                      "c -mcpu=cortex-m4", "-o", str(archive)]) == 0
    project = tmp_path / "fw"
    assert tvmc_main(["micro", "create-project", str(project), str(archive), "--board",
                      "mps2_an386"]) == 0
    loaded = load_model_library_format(str(archive))
    for name in names:
        module = loaded.modules[name]
        x = references.shared_input(name.rsplit("_", 1)[0], module.inputs[0])
        inputs = tmp_path / f"{name}.npz"
        np.savez(inputs, **{module.inputs[0].name: x})
        profile = ["--profile"] if name == "kws_dscnn_int8" else []
        code, out, err = tvmc(capsys, "run", "--device", "micro", project, "--module", name,
                              "--inputs", inputs, "-o", tmp_path / "board.npz", *profile)
        assert code == 0, err
        if profile:
            peak = re.search(r"stack size [\d,]+ B; peak ([\d,]+) B", out).group(1)
            assert 0 < int(peak.replace(",", "")) < 16 * 1024
        code, _, err = tvmc(capsys, "run", archive, "--module", name, "--inputs", inputs,
                            "-o", tmp_path / "host.npz")
        assert code == 0, err
        board, host = np.load(tmp_path / "board.npz"), np.load(tmp_path / "host.npz")
        out_name = module.outputs[0].name
        model = (SHARED / f"{name}.tflite").read_bytes()
        if name.endswith("int8"):
            np.testing.assert_array_equal(board[out_name], host[out_name])
            np.testing.assert_array_equal(board[out_name],
                                          references.run_tflite_micro(model, [x])[0], name)
        else:
            np.testing.assert_allclose(board[out_name], host[out_name], rtol=1e-5, atol=1e-5)
            cbuild.assert_close(board[out_name], references.run_litert(model, [x])[0], name)


def test_io_in_the_workspace_has_no_harness_buffers(tmp_path: Path, capsys) -> None:
    """With tir.usmp.use_workspace_io the project's main.c reads and writes the tensors where
    the module keeps them (the header's offsets in its workspace) instead of staging buffers
    of its own: the module's RAM is its workspace alone, and repeated invokes, each of which
    may overwrite the inputs, still give TFLite Micro's / LiteRT's outputs (main.c reads the
    inputs again before every run)."""
    cbuild.need_tools(*TOOLS)
    models = _models(tmp_path)
    del models["vision"]
    archive = tmp_path / "io.tar"
    assert tvmc_main(["compile-multi", *[f"{p}:{n}" for n, (p, _) in models.items()],
                      "--target", "c -mcpu=cortex-m4", "--pass-config",
                      "tir.usmp.use_workspace_io=1", "-o", str(archive)]) == 0
    project = tmp_path / "fw"
    assert tvmc_main(["micro", "create-project", str(project), str(archive),
                      "--board", "mps2_an386"]) == 0
    main_c = (project / "src" / "main.c").read_text()
    assert not re.search(r"uint8_t \w+_(in|out)\d+\[", main_c), "a staging buffer is left"
    assert "memcpy(inputs." not in main_c and "memcpy(kws8_out" not in main_c
    assert tvmc_main(["micro", "build", str(project)]) == 0
    loaded = load_model_library_format(str(archive))
    footprint = json.loads((project / "footprint.json").read_text())["modules"]
    for name, module in loaded.modules.items():
        assert footprint[name]["io"] == 0, name
        assert footprint[name]["ram"] == module.workspace_size_bytes, name
    rng = np.random.default_rng(5)
    for name, (path, runtime) in models.items():
        module = loaded.modules[name]
        xs = [references.random_array(t.shape, t.dtype, rng) for t in module.inputs]
        np.savez(tmp_path / "in.npz", **{t.name: x for t, x in zip(module.inputs, xs)})
        code, _, err = tvmc(capsys, "run", "--device", "micro", project, "--module", name,
                            "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz",
                            "--invokes", 3)
        assert code == 0, err
        got = np.load(tmp_path / "out.npz")
        for t, want in zip(module.outputs, _reference(path, runtime, module, xs)):
            if runtime == "tflite_micro":
                np.testing.assert_array_equal(got[t.name], want, f"{name} vs TFLite Micro")
            else:
                cbuild.assert_close(got[t.name], np.asarray(want), f"{name} vs {runtime}")


def test_two_byte_output_builds(tmp_path: Path) -> None:
    """main.c prints an output of 2 int8 values (vww's): gcc 12 must not see the buffer
    through an inlined printer and fail -Warray-bounds on its wider types' branches."""
    from builders.tflite_models import TFLiteGraph

    cbuild.need_tools("arm-none-eabi-gcc", "make")
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4], "int8", scale=0.1, zero_point=3)
    w = g.add_const("w", np.array([[1, -2, 3, 4], [5, 6, -7, 8]], np.int8), scale=0.01,
                    zero_point=0)
    y = g.add_tensor("y", [1, 2], "int8", scale=0.05, zero_point=-4)
    g.add_operator("FULLY_CONNECTED", [x, w, -1], [y], ("FullyConnectedOptions", {}),
                   version=4)
    g.set_io([x], [y])
    model = tmp_path / "two.tflite"
    model.write_bytes(g.to_bytes())
    archive = tmp_path / "m.tar"
    assert tvmc_main(["compile", str(model), "--target", "c -mcpu=cortex-m4", "-o",
                      str(archive)]) == 0
    assert tvmc_main(["micro", "create-project", str(tmp_path / "fw"), str(archive),
                      "--board", "mps2_an386"]) == 0
    assert tvmc_main(["micro", "build", str(tmp_path / "fw")]) == 0
