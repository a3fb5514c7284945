"""Build extracted MLF archives with a real C compiler and run them: the tests' own harness.

The harness main.c is written here from each module's TensorInfo lists, independently of the
product's templates; it reads every input from `<module>_in<i>.bin` and writes every output to
`<module>_out<i>.bin`, running the modules in the order given (repeatable).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

STRICT = ["-std=c11", "-Wall", "-Wextra", "-Werror"]


def extract(archive: str | Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _module_block(name: str, inputs: Sequence, outputs: Sequence) -> list[str]:
    lines = [f"  {{ struct tvmgen_{name}_inputs in; struct tvmgen_{name}_outputs out;"]
    for i, t in enumerate(inputs):
        lines.append(f'    in.{t.c_name} = load("{name}_in{i}.bin", '
                     f"TVMGEN_{name.upper()}_{t.c_name.upper()}_SIZE);")
    for t in outputs:
        lines.append(f"    out.{t.c_name} = calloc(1, TVMGEN_{name.upper()}_{t.c_name.upper()}_SIZE);")
    lines.append(f'    if (tvmgen_{name}_run(&in, &out) != 0) {{ fprintf(stderr, "{name} failed\\n"); return 1; }}')
    for i, t in enumerate(outputs):
        lines.append(f'    save("{name}_out{i}.bin", out.{t.c_name}, '
                     f"TVMGEN_{name.upper()}_{t.c_name.upper()}_SIZE);")
    lines += [f"    free(in.{t.c_name});" for t in inputs]
    lines += [f"    free(out.{t.c_name});" for t in outputs]
    lines.append("  }")
    return lines


def harness_source(modules: dict[str, tuple[Sequence, Sequence]]) -> str:
    """main.c running every module once, in order; `modules` maps name -> (inputs, outputs)."""
    lines = ["#include <stdio.h>", "#include <stdlib.h>"]
    lines += [f'#include "tvmgen_{name}.h"' for name in modules]
    lines += [
        "static void* load(const char* path, size_t n) {",
        "  void* p = malloc(n ? n : 1); FILE* f = fopen(path, \"rb\");",
        "  if (!f || fread(p, 1, n, f) != n) { fprintf(stderr, \"cannot read %s\\n\", path); exit(2); }",
        "  fclose(f); return p; }",
        "static void save(const char* path, const void* p, size_t n) {",
        "  FILE* f = fopen(path, \"wb\"); if (!f || fwrite(p, 1, n, f) != n) exit(3); fclose(f); }",
        "int main(void) {",
    ]
    for name, (inputs, outputs) in modules.items():
        lines += _module_block(name, inputs, outputs)
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


def module_sources(root: Path, name: str) -> list[Path]:
    return sorted((root / "codegen" / "host" / "src").glob(f"{name}_lib*.c"))


def build_program(root: Path, main: Path, modules: Sequence[str], output: Path,
                  flags: Sequence[str] = ("-O2",), compiler: str = "gcc") -> Path:
    """Compile `main` and the C of `modules` (of the archive extracted at `root`) into ONE
    executable `output` with the strict warnings as errors; a failed build fails the test."""
    sources = [str(p) for name in modules for p in module_sources(root, name)]
    cmd = [compiler, *STRICT, *flags, "-I", str(root / "codegen" / "host" / "include"),
           str(main), *sources, "-lm", "-o", str(output)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"C build failed:\n{result.stderr[:4000]}"
    return output


def build_and_run(root: Path, modules: dict[str, tuple[Sequence, Sequence]],
                  inputs: dict[str, Sequence[np.ndarray]], extra_flags: Sequence[str] = (),
                  compiler: str = "gcc") -> dict[str, list[np.ndarray]]:
    """Compile every module plus the harness into ONE executable, run it, read the outputs."""
    work = root / "harness"
    work.mkdir(exist_ok=True)
    (work / "main.c").write_text(harness_source(modules))
    build_program(root, work / "main.c", list(modules), work / "app", ["-O2", *extra_flags],
                  compiler)
    return run_again(root, modules, inputs)


def run_again(root: Path, modules: dict[str, tuple[Sequence, Sequence]],
              inputs: dict[str, Sequence[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Run the program `build_and_run` built, on new inputs; its outputs."""
    work = root / "harness"
    for name, arrays in inputs.items():
        for i, array in enumerate(arrays):
            np.ascontiguousarray(array).tofile(work / f"{name}_in{i}.bin")
    run = subprocess.run([str(work / "app")], cwd=work, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"harness failed ({run.returncode}): {run.stderr[:2000]}"
    return {name: [np.fromfile(work / f"{name}_out{i}.bin", dtype=t.dtype).reshape(t.shape)
                   for i, t in enumerate(outputs)]
            for name, (_, outputs) in modules.items()}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def need_tools(*tools: str) -> None:
    """Skip the test when a tool is missing, fail it on CI (.ci/run installs them all)."""
    missing = [t for t in tools if not have(t)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {missing} (.ci/run installs them)")
        pytest.skip(f"{missing} not installed")


def compile_test_models(root: Path, builders: dict, names: Sequence[str], target: str,
                        **options: object) -> tuple[list, dict, str]:
    """Each named builder's model written under `root` and compiled for `target` (module name =
    model name), all into one archive: (modules, model bytes by name, archive path)."""
    from tvmc_multimodule import compile_model, export_model_library_format

    modules, data = [], {}
    for name in names:
        data[name] = builders[name]()
        path = root / f"{name}.tflite"
        path.write_bytes(data[name])
        modules.append(compile_model(str(path), module_name=name, target=target, **options))
    return modules, data, export_model_library_format(modules, str(root / "m.tar"))


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str, rtol: float = 1e-4) -> None:
    """float32: 1e-4 relative (to the output's scale); integers: within 1 LSB."""
    assert actual.shape == tuple(expected.shape), f"{what}: shape {actual.shape} != {expected.shape}"
    if np.issubdtype(expected.dtype, np.integer):
        diff = np.abs(actual.astype(np.int64) - expected.astype(np.int64)).max(initial=0)
        assert diff <= 1, f"{what}: {diff} LSB off"
        return
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    err = float(np.abs(actual.astype(np.float64) - expected).max(initial=0))
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol} x {scale:.3g}"
