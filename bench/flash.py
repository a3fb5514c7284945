"""Code and constant sizes of a module's objects: each `<mod>_lib*.c` compiled with `-c`, then
the sections counted with `size -A` (.text*, .rodata*, .data*, .bss* summed over the objects).
The constants are in .rodata; the static workspace of `tvmgen_<mod>_run` is in .bss."""
from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ARM_CC = "arm-none-eabi-gcc"
ARM_SIZE = "arm-none-eabi-size"
ARM_FLAGS = "-Os -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
SECTION_KINDS = ("text", "rodata", "data", "bss")


@dataclass(frozen=True)
class Toolchain:
    """A C compiler, its `size` and the flags used for flash figures."""

    label: str
    compiler: str
    size: str
    cflags: str

    def available(self) -> bool:
        return shutil.which(self.compiler) is not None and shutil.which(self.size) is not None


def host_toolchain(cflags: str) -> Toolchain:
    return Toolchain("host", "gcc", "size", cflags)


def arm_toolchain() -> Toolchain:
    return Toolchain("arm", ARM_CC, ARM_SIZE, ARM_FLAGS)


def section_sizes(size_tool: str, obj: Path) -> dict[str, int]:
    """Bytes per kind (text, rodata, data, bss) of one object, from `size -A`."""
    result = subprocess.run([size_tool, "-A", str(obj)], capture_output=True, text=True, check=True)
    totals = dict.fromkeys(SECTION_KINDS, 0)
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[0].startswith(".") or not fields[1].isdigit():
            continue
        kind = fields[0][1:].split(".")[0]
        if kind in totals:
            totals[kind] += int(fields[1])
    return totals


def object_sizes(toolchain: Toolchain, sources: Sequence[Path], include_dir: Path,
                 work: Path) -> dict[str, int]:
    """Compile each source with `-c` and sum the section sizes over the objects."""
    work.mkdir(parents=True, exist_ok=True)
    totals = dict.fromkeys(SECTION_KINDS, 0)
    for source in sources:
        obj = work / f"{source.stem}.o"
        cmd = [toolchain.compiler, "-std=c11", *shlex.split(toolchain.cflags), "-I", str(include_dir),
               "-c", str(source), "-o", str(obj)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{toolchain.compiler} -c {source.name} failed: "
                               f"{result.stderr.strip()[-800:]}")
        for kind, value in section_sizes(toolchain.size, obj).items():
            totals[kind] += value
    return totals
