"""The foundation: several models -> `tvmc compile-multi` -> ONE MLF v7 archive -> ONE program.

Two ONNX modules (the same model under two names), a float TFLite and an int8 TFLite module,
compiled by the real CLI, built with gcc -std=c11 -Wall -Wextra -Werror into one executable,
run on random inputs and compared with onnxruntime and LiteRT.
"""
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
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli.driver import main as tvmc

MODULES = {  # module name -> (file name, builder)
    "anomaly": ("ad.onnx", onnx_models.gemm),
    "anomaly2": ("ad.onnx", onnx_models.gemm),
    "kws": ("kws.tflite", tflite_models.conv2d),
    "kws_int8": ("kws_int8.tflite", tflite_models.int8_conv_fc_softmax),
    "vision": ("net.onnx", onnx_models.two_in_two_out),
}
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


def _write_models(folder: Path) -> dict[str, bytes]:
    contents = {}
    for file_name, build in {f: b for f, b in MODULES.values()}.items():
        model = build()
        data = model if isinstance(model, bytes) else model.SerializeToString()
        (folder / file_name).write_bytes(data)
        contents[file_name] = data
    return contents


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("multi")
    contents = _write_models(folder)
    out = folder / "models.tar"
    args = ["compile-multi", *[f"{folder / f}:{n}" for n, (f, _) in MODULES.items()],
            "--target", "c", "-o", str(out)]
    assert tvmc(args) == 0
    root = cbuild.extract(out, folder / "mlf")
    loaded = load_model_library_format(str(out))
    return {"folder": folder, "tar": out, "root": root, "loaded": loaded, "contents": contents}


def _reference(file_name: str, data: bytes, module, xs: list[np.ndarray]) -> list[np.ndarray]:
    if file_name.endswith(".onnx"):
        return references.run_onnxruntime(data, {t.name: x for t, x in zip(module.inputs, xs)})
    return references.run_litert(data, xs)


def test_one_program_runs_every_module_and_matches_references(archive: dict) -> None:
    loaded = archive["loaded"]
    assert sorted(loaded.modules) == sorted(MODULES)
    rng = np.random.default_rng(7)
    modules = {name: (m.inputs, m.outputs) for name, m in loaded.modules.items()}
    inputs = {name: [references.random_array(t.shape, t.dtype, rng) for t in m.inputs]
              for name, m in loaded.modules.items()}
    outputs = cbuild.build_and_run(archive["root"], modules, inputs)
    for name, (file_name, _) in MODULES.items():
        expected = _reference(file_name, archive["contents"][file_name], loaded.modules[name],
                              inputs[name])
        for i, (a, e) in enumerate(zip(outputs[name], expected)):
            cbuild.assert_close(a, np.asarray(e), f"{name} output {i}")


def _objects(root: Path, compiler: str, flags: list[str]) -> dict[str, list[Path]]:
    objects: dict[str, list[Path]] = {}
    out_dir = root / f"obj_{compiler}"
    out_dir.mkdir(exist_ok=True)
    for name in MODULES:
        for source in cbuild.module_sources(root, name):
            obj = out_dir / (source.stem + ".o")
            cmd = [compiler, *cbuild.STRICT, "-O2", *flags, "-c", str(source),
                   "-I", str(root / "codegen" / "host" / "include"), "-o", str(obj)]
            result = subprocess.run(cmd, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr[:3000]
            objects.setdefault(name, []).append(obj)
    return objects


def _defined_globals(obj: Path, nm: str = "nm") -> list[str]:
    out = subprocess.run([nm, "-g", "--defined-only", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def test_every_global_symbol_is_prefixed_with_its_module(archive: dict) -> None:
    for name, objs in _objects(archive["root"], "gcc", []).items():
        symbols = [s for obj in objs for s in _defined_globals(obj)]
        assert f"tvmgen_{name}_run" in symbols
        stray = [s for s in symbols if not s.startswith(f"tvmgen_{name}_")]
        assert not stray, f"{name}: {stray}"


def test_cortex_m4_objects_build_with_werror(archive: dict) -> None:
    cbuild.need_tools("arm-none-eabi-gcc")
    objects = _objects(archive["root"], "arm-none-eabi-gcc", ARM_FLAGS)
    for name, objs in objects.items():
        symbols = [s for obj in objs for s in _defined_globals(obj, "arm-none-eabi-nm")]
        assert all(s.startswith(f"tvmgen_{name}_") for s in symbols), symbols


def _symbol_sizes(obj: Path) -> dict[str, int]:
    out = subprocess.run(["nm", "-S", str(obj)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def test_metadata_is_version_7_with_sizes_that_match_the_objects(archive: dict) -> None:
    meta = json.loads((archive["root"] / "metadata.json").read_text())
    assert meta["version"] == 7
    objects = _objects(archive["root"], "gcc", [])
    for name in MODULES:
        entry = meta["modules"][name]
        for key in ("model_name", "export_datetime", "target", "executors", "style",
                    "external_dependencies", "memory"):
            assert key in entry, key
        assert entry["executors"] == ["aot"] and entry["target"][0].startswith("c")
        main = entry["memory"]["functions"]["main"][0]
        sizes = {}
        for obj in objects[name]:
            sizes.update(_symbol_sizes(obj))
        # the static arena in <name>_lib2.c is exactly the declared workspace
        assert sizes.get(f"tvmgen_{name}_workspace", 0) == main["workspace_size_bytes"]
        # the constants, named for their layers (`tvmgen_<name>_conv2d_3_weights`)
        runner = (archive["root"] / "codegen/host/src" / f"{name}_lib1.c").read_text()
        constants = set(re.findall(r"^static const union \{[^}]*\} (\w+) ", runner, re.M))
        assert constants and constants <= set(sizes)
        consts = sum(sizes[k] for k in constants)
        # constants are stored as whole 32-bit words: at most 3 bytes of padding each
        n_consts = len(constants)
        assert main["constants_size_bytes"] <= consts <= main["constants_size_bytes"] + 3 * n_consts
        header = (archive["root"] / "codegen/host/include" / f"tvmgen_{name}.h").read_text()
        macro_sizes = [int(v) for v in re.findall(rf"#define TVMGEN_{name.upper()}_\w+_SIZE (\d+)", header)
                       ][1:]  # the first one is the workspace
        assert sum(macro_sizes) == main["io_size_bytes"]
        for tensor in list(main["inputs"].values()) + list(main["outputs"].values()):
            assert tensor["size"] == int(np.prod(tensor["shape"])) * np.dtype(tensor["dtype"]).itemsize


def test_int8_tensors_carry_quantisation(archive: dict) -> None:
    module = archive["loaded"].modules["kws_int8"]
    assert module.inputs[0].dtype == "int8" and module.inputs[0].quant is not None
    assert module.outputs[0].quant.zero_point == (-128,)
    header = (archive["root"] / "codegen/host/include/tvmgen_kws_int8.h").read_text()
    assert "ZERO_POINT -128" in header


def test_archive_templates_build_with_make(archive: dict) -> None:
    result = subprocess.run(["make", "-C", str(archive["root"] / "templates" / "host")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_parallel_compile_is_byte_identical(archive: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = archive["folder"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    models = [f"{folder / f}:{n}" for n, (f, _) in MODULES.items()]
    outputs = {}
    for jobs in ("1", "2"):
        out = folder / f"j{jobs}.tar"
        assert tvmc(["compile-multi", *models, "-j", jobs, "-o", str(out)]) == 0
        outputs[jobs] = out.read_bytes()
    assert outputs["1"] == outputs["2"]


def test_parallel_compile_reports_the_failing_module(archive: dict, capsys: pytest.CaptureFixture) -> None:
    folder = archive["folder"]
    bad = folder / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf")
    out = folder / "never.tar"
    code = tvmc(["compile-multi", f"{folder / 'ad.onnx'}:ok", f"{bad}:broken", "-j", "2",
                 "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "broken" in err and "broken.onnx" in err and "Traceback" not in err
    assert not out.exists()
