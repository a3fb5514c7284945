"""Compile one model with our compiler and time it: `tvmc compile` (a subprocess, so the figure
includes starting Python) and the in-process `tvmc_multimodule.compile_model`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import ModelSpec


@dataclass(frozen=True)
class CompiledArchive:
    """An extracted archive of one module and its `memory.functions.main[0]` metadata."""

    root: Path
    name: str
    main: dict[str, Any]

    @property
    def include_dir(self) -> Path:
        return self.root / "codegen" / "host" / "include"

    @property
    def sources(self) -> list[Path]:
        return sorted((self.root / "codegen" / "host" / "src").glob(f"{self.name}_lib*.c"))


def tvmc_command() -> list[str]:
    """The `tvmc` console script, or `python -m tvmc_multimodule` when it is not on PATH."""
    script = shutil.which("tvmc")
    return [script] if script else [sys.executable, "-m", "tvmc_multimodule"]


def time_cli_compile(spec: ModelSpec, archive: Path, schedule: str = "auto") -> float:
    """Wall seconds of `tvmc compile MODEL --module-name NAME --schedule S -o ARCHIVE`."""
    cmd = [*tvmc_command(), "compile", str(spec.path), "--module-name", spec.name,
           "--schedule", schedule, "-o", str(archive)]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"tvmc compile failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    return seconds


def warm_up_imports() -> None:
    """Import TVM and both frontends so the in-process timing excludes one-time imports."""
    import tvm  # noqa: F401
    import tvm.relax.frontend.onnx  # noqa: F401
    import tvm.relax.frontend.tflite  # noqa: F401
    import tvmc_multimodule  # noqa: F401


def time_api_compile(spec: ModelSpec, schedule: str = "auto") -> float:
    """Wall seconds of `tvmc_multimodule.compile_model` in this process (imports done before)."""
    from tvmc_multimodule import compile_model

    warm_up_imports()
    start = time.perf_counter()
    compile_model(str(spec.path), module_name=spec.name,
                  schedule=None if schedule == "auto" else schedule)
    return time.perf_counter() - start


def extract(archive: Path, dest: Path, name: str) -> CompiledArchive:
    """Extract `archive` into `dest` and read the module's main metadata entry."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    metadata = json.loads((dest / "metadata.json").read_text())
    main = metadata["modules"][name]["memory"]["functions"]["main"][0]
    return CompiledArchive(dest, name, main)
