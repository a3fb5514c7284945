"""Boards and cores of `tvmc micro`: one JSON record per board in `boards/`, one row per core.

A board record gives the core, the memory map (flash and RAM, origin and size), the QEMU
machine that emulates it (none for `generic`) and the clock of its SysTick, which turns timer
ticks into instructions under QEMU's ``-icount shift=0``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources

from ..errors import UsageError

GENERIC = "generic"

# -mfpu of each core's FPU (None: no FPU, soft float). The M7 of mps2-an500 has the
# double-precision FPU; a part with the single-precision one takes "+nofp.dp" in -mcpu.
CORE_FPU: dict[str, str | None] = {
    "cortex-m0": None, "cortex-m0plus": None, "cortex-m1": None, "cortex-m3": None,
    "cortex-m23": None,
    "cortex-m4": "fpv4-sp-d16", "cortex-m7": "fpv5-d16", "cortex-m33": "fpv5-sp-d16",
    "cortex-m35p": "fpv5-sp-d16", "cortex-m55": "auto", "cortex-m85": "auto",
}

_SIZE = re.compile(r"^(0x[0-9a-fA-F]+|\d+)([KM]?)$")


@dataclass(frozen=True)
class Region:
    origin: int
    size: int

    def text(self) -> str:
        return f"0x{self.origin:08x}:{self.size}"


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str | None            # None: the archive's -mcpu (generic)
    qemu_machine: str | None   # None: no emulator, flash with the user's own tool
    cpu_clock_hz: int | None
    flash: Region | None
    ram: Region | None


def board_names() -> list[str]:
    folder = resources.files(__package__) / "boards"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_board(name: str) -> Board:
    if name not in board_names():
        raise UsageError(f"unknown board '{name}'", hint=f"boards: {', '.join(board_names())}")
    record = json.loads((resources.files(__package__) / "boards" / f"{name}.json").read_text())
    return Board(name=name, description=record["description"], cpu=record["cpu"],
                 qemu_machine=record["qemu_machine"], cpu_clock_hz=record["cpu_clock_hz"],
                 flash=_region(record["flash"]), ram=_region(record["ram"]))


def _region(entry: dict | None) -> Region | None:
    return None if entry is None else Region(parse_size(entry["origin"]), parse_size(entry["size"]))


def parse_size(text: str) -> int:
    """`0x20000000`, `65536`, `512K`, `4M` -> bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(f"'{text}' is not an address or size (e.g. 0x20000000, 65536, 512K, 4M)")
    number = int(match.group(1), 0)
    return number * {"": 1, "K": 1024, "M": 1024 * 1024}[match.group(2)]


def parse_region(text: str, option: str) -> Region:
    """`ORIGIN:SIZE` of --flash / --ram."""
    origin, sep, size = text.partition(":")
    if not sep:
        raise UsageError(f"{option} {text}: expected ORIGIN:SIZE, e.g. 0x08000000:1M")
    region = Region(parse_size(origin), parse_size(size))
    if region.size <= 0 or region.origin + region.size > 2 ** 32:
        raise UsageError(f"{option} {text}: the region must be non-empty and inside 4 GB")
    return region


def base_cpu(mcpu: str) -> str:
    """`cortex-m4+nofp` -> `cortex-m4`."""
    return mcpu.split("+", 1)[0].strip().lower()


def cpu_flags(mcpu: str) -> list[str]:
    """-mcpu, -mthumb, -mfpu and -mfloat-abi for a core (with its +nofp-style modifiers)."""
    core = base_cpu(mcpu)
    if core not in CORE_FPU:
        raise UsageError(f"-mcpu={mcpu} is not a Cortex-M core this tool knows",
                         hint=f"cores: {', '.join(sorted(CORE_FPU))}")
    fpu = CORE_FPU[core]
    modifiers = mcpu.lower().split("+")[1:]
    if fpu is None or "nofp" in modifiers:
        return [f"-mcpu={mcpu}", "-mthumb", "-mfloat-abi=soft"]
    if "nofp.dp" in modifiers and fpu == "fpv5-d16":
        fpu = "fpv5-sp-d16"
    return [f"-mcpu={mcpu}", "-mthumb", f"-mfpu={fpu}", "-mfloat-abi=hard"]
