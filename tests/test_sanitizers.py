"""The generated C under AddressSanitizer and UndefinedBehaviorSanitizer.

One multi-module archive (ONNX and TFLite, float and int8) built with
``gcc -fsanitize=address,undefined -fno-sanitize-recover=all -g -O1`` into one program by the
tests' harness (tests/cbuild.py), run on several sets of random inputs: it must exit 0 with no
sanitizer report. The harness allocates every input and output with exactly the size the
module header advertises (``malloc(TVMGEN_<MOD>_<TENSOR>_SIZE)``), so a module that reads or
writes one byte past its tensors is caught. A control run with one advertised size made
smaller shows that such an overread is indeed reported.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_models
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli.driver import main as tvmc

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1",
            "-fno-omit-frame-pointer"]
MODULES = {  # module name -> (file name, builder)
    "conv": ("conv.onnx", onnx_models.conv2d),
    "two": ("two.onnx", onnx_models.two_in_two_out),
    "weird": ("weird.onnx", onnx_models.weird_names),
    "pool": ("pool.onnx", onnx_models.max_pool),
    "dw": ("dw.tflite", tflite_models.depthwise_conv2d),
    "soft": ("soft.tflite", tflite_models.softmax),
    "q8": ("q8.tflite", tflite_models.int8_conv_fc_softmax),
}
REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer")

pytestmark = pytest.mark.skipif(not cbuild.have("gcc"), reason="needs gcc")


def _sanitizers_work(folder: Path) -> bool:
    """gcc here links -fsanitize=address,undefined (libasan and libubsan are installed)."""
    source = folder / "probe.c"
    source.write_text("int main(void) { return 0; }\n")
    done = subprocess.run(["gcc", *SANITIZE, str(source), "-o", str(folder / "probe")],
                          capture_output=True, text=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> dict:
    """The archive, extracted, and the harness built with the sanitizers by cbuild."""
    folder = tmp_path_factory.mktemp("sanitizers")
    if not _sanitizers_work(folder):
        if os.environ.get("CI"):
            pytest.fail("CI must be able to link gcc -fsanitize=address,undefined")
        pytest.skip("gcc cannot link -fsanitize=address,undefined here")
    for file_name, build in {f: b for f, b in MODULES.values()}.items():
        model = build()
        (folder / file_name).write_bytes(model if isinstance(model, bytes)
                                         else model.SerializeToString())
    archive = folder / "models.tar"
    assert tvmc(["compile-multi", *(f"{folder / f}:{n}" for n, (f, _) in MODULES.items()),
                 "-j", "1", "-o", str(archive)], entry_point_loader=lambda: []) == 0
    root = cbuild.extract(archive, folder / "mlf")
    loaded = load_model_library_format(str(archive))
    modules = {name: (m.inputs, m.outputs) for name, m in loaded.modules.items()}
    return {"root": root, "loaded": loaded, "modules": modules, "folder": folder}


def _random_inputs(loaded, seed: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {name: [references.random_array(t.shape, t.dtype, rng) for t in m.inputs]
            for name, m in loaded.modules.items()}


def _sanitizer_env(log_dir: Path) -> dict[str, str]:
    """Reports go to files too, so a report is seen even when a run's stderr is not."""
    log_dir.mkdir(exist_ok=True)
    return {"ASAN_OPTIONS": f"detect_leaks=1:halt_on_error=1:log_path={log_dir}/asan",
            "UBSAN_OPTIONS": f"print_stacktrace=1:halt_on_error=1:log_path={log_dir}/ubsan"}


def _reports(log_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(log_dir.iterdir()))


def test_every_module_runs_clean_under_asan_and_ubsan(program, monkeypatch):
    loaded, root = program["loaded"], program["root"]
    assert sorted(loaded.modules) == sorted(MODULES)
    logs = program["folder"] / "logs"
    for key, value in _sanitizer_env(logs).items():
        monkeypatch.setenv(key, value)
    # cbuild compiles the modules and the harness into one program and runs it once
    outputs = cbuild.build_and_run(root, program["modules"], _random_inputs(loaded, 0),
                                   extra_flags=SANITIZE)
    assert _reports(logs) == ""
    for name, module in loaded.modules.items():
        for tensor, array in zip(module.outputs, outputs[name]):
            assert array.shape == tuple(tensor.shape)
            if array.dtype.kind == "f":
                assert np.isfinite(array).all(), f"{name}: {tensor.name} is not finite"
    # more random inputs through the same program
    work, app = root / "harness", root / "harness" / "app"
    for seed in (1, 2, 3):
        for name, arrays in _random_inputs(loaded, seed).items():
            for i, array in enumerate(arrays):
                np.ascontiguousarray(array).tofile(work / f"{name}_in{i}.bin")
        run = subprocess.run([str(app)], cwd=work, capture_output=True, text=True, timeout=120,
                             env={**os.environ, **_sanitizer_env(logs)})
        assert run.returncode == 0, f"seed {seed}: exit {run.returncode}\n{run.stderr[-3000:]}"
        assert not REPORT.search(run.stderr), run.stderr[-3000:]
        assert _reports(logs) == "", _reports(logs)[-3000:]


def test_an_overread_past_the_advertised_size_is_caught(program):
    """The guard itself: with one input's advertised size 4 bytes short, the harness
    allocates 4 bytes too few and ASan must report the module's read of them."""
    root, loaded = program["root"], program["loaded"]
    name = "conv"
    tensor = loaded.modules[name].inputs[0]
    macro = f"TVMGEN_{name.upper()}_{tensor.c_name.upper()}_SIZE"
    include = program["folder"] / "short-include"
    shutil.copytree(root / "codegen" / "host" / "include", include, dirs_exist_ok=True)
    header = include / f"tvmgen_{name}.h"
    text, count = re.subn(rf"(#define {macro} )(\d+)",
                          lambda m: f"{m.group(1)}{int(m.group(2)) - 4}", header.read_text())
    assert count == 1, f"{macro} not found in {header}"
    header.write_text(text)
    work = program["folder"] / "short"
    work.mkdir(exist_ok=True)
    (work / "main.c").write_text(cbuild.harness_source({name: program["modules"][name]}))
    build = subprocess.run(["gcc", *cbuild.STRICT, *SANITIZE, "-I", str(include),
                            str(work / "main.c"), *map(str, cbuild.module_sources(root, name)),
                            "-lm", "-o", str(work / "app")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    for i, array in enumerate(_random_inputs(loaded, 0)[name]):
        np.ascontiguousarray(array).tofile(work / f"{name}_in{i}.bin")
    run = subprocess.run([str(work / "app")], cwd=work, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert "heap-buffer-overflow" in run.stderr and "READ" in run.stderr, run.stderr[-3000:]
