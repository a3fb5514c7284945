"""`--pass-config tir.usmp.use_workspace_io=1`: the inputs and outputs live inside the
workspace. Built with gcc by this file's own harness (the header's map functions, nothing
else), the outputs equal the default build's and the reference runtimes'; the module's RAM is
the workspace alone; every shared model needs less RAM than TFLite Micro's arena."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_int8_models
from tvmc_cli import NO_PLUGINS
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli import driver

IO = ["--pass-config", "tir.usmp.use_workspace_io=1"]
SHARED = references.SHARED_MODELS / "tflite"


def compile_archive(tmp: Path, model: Path, name: str, *argv: str) -> Path:
    out = tmp / f"{name}.tar"
    code = driver.main(["compile", str(model), "--module-name", name, "-o", str(out), *argv],
                       entry_point_loader=NO_PLUGINS)
    assert code == 0
    return out


def io_harness(name: str, module, shared: bool) -> str:
    """main.c for a module with its inputs and outputs in the workspace: the inputs are copied
    in through map_inputs, the outputs read through map_outputs."""
    up = name.upper()
    arena = "arena" if shared else f"tvmgen_{name}_workspace"
    lines = ["#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>",
             f'#include "tvmgen_{name}.h"',
             f"static _Alignas(TVMGEN_{up}_WORKSPACE_ALIGNMENT) "
             f"unsigned char arena[TVMGEN_{up}_WORKSPACE_SIZE];",
             "int main(void) {",
             f"  struct tvmgen_{name}_inputs in = tvmgen_{name}_map_inputs({arena});",
             f"  struct tvmgen_{name}_outputs out = tvmgen_{name}_map_outputs({arena});",
             "  FILE* f; (void)arena;"]
    for i, t in enumerate(module.inputs):
        size = f"TVMGEN_{up}_{t.c_name.upper()}_SIZE"
        lines += [f'  f = fopen("in{i}.bin", "rb");',
                  f"  if (!f || fread(in.{t.c_name}, 1, {size}, f) != {size}) return 2;",
                  "  fclose(f);"]
    call = f"tvmgen_{name}_run(arena)" if shared else f"tvmgen_{name}_run()"
    lines.append(f"  if ({call} != 0) return 1;")
    for i, t in enumerate(module.outputs):
        size = f"TVMGEN_{up}_{t.c_name.upper()}_SIZE"
        lines += [f'  f = fopen("out{i}.bin", "wb");',
                  f"  if (!f || fwrite(out.{t.c_name}, 1, {size}, f) != {size}) return 3;",
                  "  fclose(f);"]
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


def run_io(archive: Path, name: str, xs: list[np.ndarray], shared: bool) -> list[np.ndarray]:
    module = load_model_library_format(str(archive)).modules[name]
    root = cbuild.extract(archive, archive.parent / f"{archive.stem}_x")
    work = root / "io_harness"
    work.mkdir()
    (work / "main.c").write_text(io_harness(name, module, shared))
    cbuild.build_program(root, work / "main.c", [name], work / "app")
    for i, x in enumerate(xs):
        np.ascontiguousarray(x).tofile(work / f"in{i}.bin")
    run = subprocess.run([str(work / "app")], cwd=work, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return [np.fromfile(work / f"out{i}.bin", t.dtype).reshape(t.shape)
            for i, t in enumerate(module.outputs)]


def run_default(archive: Path, name: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    module = load_model_library_format(str(archive)).modules[name]
    root = cbuild.extract(archive, archive.parent / f"{archive.stem}_x")
    return cbuild.build_and_run(root, {name: (module.inputs, module.outputs)},
                                {name: xs})[name]


pytestmark = pytest.mark.skipif(not cbuild.have("gcc"), reason="needs gcc")


@pytest.mark.parametrize("workspace", ["static", "shared"])
def test_onnx_outputs_equal_default_build_and_onnxruntime(tmp_path, workspace):
    model = onnx_models.two_in_two_out()
    path = tmp_path / "m.onnx"
    onnx_models.save(model, path)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 8)).astype(np.float32) for _ in range(2)]
    mode = ["--workspace", workspace]
    default = run_default(compile_archive(tmp_path, path, "plain"), "plain", xs)
    io_archive = compile_archive(tmp_path, path, "io", *mode, *IO)
    got = run_io(io_archive, "io", xs, workspace == "shared")
    expected = references.run_onnxruntime(model, {"a": xs[0], "b": xs[1]})
    assert len(got) == len(default) == len(expected)
    for g, d, e in zip(got, default, expected):
        assert np.array_equal(g, d)
        cbuild.assert_close(g, e, "io build vs onnxruntime")
    meta = load_model_library_format(str(io_archive)).modules["io"]
    assert meta.c_api.workspace_io and all(t.offset is not None for t in meta.c_api.inputs)
    plan = meta.memory_layout
    assert {b.kind for b in plan.buffers} >= {"input", "output"}
    assert max(plan.live_bytes) == meta.liveness_bound_bytes


def test_int8_outputs_equal_default_build_and_tflite_micro(tmp_path):
    data = tflite_int8_models.fully_connected()
    path = tmp_path / "fc.tflite"
    path.write_bytes(data)
    x = np.random.default_rng(2).integers(-128, 128, (2, 24)).astype(np.int8)
    default = run_default(compile_archive(tmp_path, path, "plain"), "plain", [x])
    got = run_io(compile_archive(tmp_path, path, "io", *IO), "io", [x], shared=False)
    expected = references.run_tflite_micro(data, [x])
    assert np.array_equal(got[0], default[0])
    assert np.array_equal(got[0], expected[0])  # bit-exact with TFLite Micro


def _data_bss_bytes(objects: list[Path]) -> int:
    out = subprocess.run(["size", "-A", *map(str, objects)], capture_output=True, text=True,
                         check=True).stdout
    return sum(int(parts[1]) for parts in (line.split() for line in out.splitlines())
               if len(parts) >= 2 and parts[0].startswith((".data", ".bss"))
               and parts[1].isdigit())


@pytest.mark.skipif(not cbuild.have("size"), reason="needs binutils' size")
def test_module_ram_is_the_workspace_alone(tmp_path):
    """The objects' RAM (.data + .bss) is exactly the static workspace: no input, output or
    other buffer besides it; and it is smaller than workspace + io of the default build."""
    path = tmp_path / "conv.onnx"
    onnx_models.save(onnx_models.conv2d(), path)
    figures = {}
    for name, extra in (("plain", []), ("io", IO)):
        archive = compile_archive(tmp_path, path, name, *extra)
        module = load_model_library_format(str(archive)).modules[name]
        root = cbuild.extract(archive, tmp_path / f"{name}_objs")
        objects = []
        for source in cbuild.module_sources(root, name):
            obj = source.with_suffix(".o")
            subprocess.run(["gcc", *cbuild.STRICT, "-O2", "-c", "-I",
                            str(root / "codegen/host/include"), str(source), "-o", str(obj)],
                           check=True)
            objects.append(obj)
        figures[name] = (module.workspace_size_bytes, module.io_size_bytes,
                         _data_bss_bytes(objects))
    ws_io, io_bytes, ram_io = figures["io"]
    ws, io_plain, ram_plain = figures["plain"]
    assert ram_io == ws_io and ram_plain == ws  # the static arena is all the RAM
    assert io_bytes == io_plain
    assert ws_io < ws + io_plain  # the input shares memory with later tensors


def _tflite_micro_arena(model: bytes) -> int:
    """TFLite Micro's arena after one invoke ("Arena allocation total")."""
    import re

    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=16 << 20)
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
    interpreter.invoke()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        report = sink.read().decode(errors="replace")
    return int(re.search(r"Arena allocation total (\d+) bytes", report).group(1))


@pytest.mark.shared_models
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models not present")
@pytest.mark.parametrize("model", sorted(p.name for p in SHARED.glob("*.tflite"))
                         if SHARED.is_dir() else [])
def test_shared_model_ram_below_tflite_micro_arena(model):
    from tvmc_multimodule import api

    path = SHARED / model
    compiled = api.compile_model(str(path), "m", workspace_io=True)
    arena = _tflite_micro_arena(path.read_bytes())
    assert compiled.workspace_bytes < arena, (model, compiled.workspace_bytes, arena)
    # each input and output lies inside (an input that dies before the output is written may
    # share its bytes: ad_autoencoder's 2,560 B in and out fit in 3,072 B)
    assert compiled.c_api.workspace_io
    for tensor in (*compiled.c_api.inputs, *compiled.c_api.outputs):
        assert 0 <= tensor.offset and tensor.offset + tensor.nbytes <= compiled.workspace_bytes


@pytest.mark.skipif(not cbuild.have("make"), reason="needs make")
@pytest.mark.parametrize("workspace", ["static", "shared"])
def test_archive_example_program_runs(tmp_path, workspace):
    """The archive's own example main.c (templates/host) drives io-in-workspace modules."""
    onnx_models.save(onnx_models.two_in_two_out(), tmp_path / "a.onnx")
    (tmp_path / "fc.tflite").write_bytes(tflite_int8_models.fully_connected())
    out = tmp_path / "m.tar"
    assert driver.main(["compile-multi", f"{tmp_path / 'a.onnx'}:a", f"{tmp_path / 'fc.tflite'}:fc",
                        "-j", "1", "--workspace", workspace, "-o", str(out), *IO],
                       entry_point_loader=NO_PLUGINS) == 0
    root = cbuild.extract(out, tmp_path / "x")
    build = subprocess.run(["make", "-C", str(root / "templates" / "host")], capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    program = next(p for p in (root / "templates" / "host").rglob("tvmgen_example") if p.is_file())
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "2 of 2 modules ran" in run.stdout, run.stdout + run.stderr
