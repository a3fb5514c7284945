"""`tvmc micro build`: the firmware built with make (or cmake), and its footprint.

Footprint per module, from `arm-none-eabi-size -A` and `nm -S` on the built objects:
flash = code (.text) + constants (.rodata); RAM = workspace (the module's static arena) +
inputs/outputs (main.c's buffers) + state + other .data/.bss of the module's objects. The
firmware's own figures come from `arm-none-eabi-size -A` of the ELF; its RAM adds the stack
the linker script reserves.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field

from ..errors import BuildError, OutputError
from ..processes import child_options
from .project import Project, load_project

FOOTPRINT_FILE = "footprint.json"
BUILD_TIMEOUT_S = 1800
TOOL_PREFIX = "arm-none-eabi-"
_FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".data")
_RAM_SECTIONS = (".data", ".bss")


@dataclass
class ModuleFootprint:
    code: int = 0
    constants: int = 0
    workspace: int = 0
    io: int = 0
    state: int = 0
    other_ram: int = 0

    @property
    def flash(self) -> int:
        return self.code + self.constants

    @property
    def ram(self) -> int:
        return self.workspace + self.io + self.state + self.other_ram


@dataclass
class Footprint:
    board: str
    elf: str
    modules: dict[str, ModuleFootprint] = field(default_factory=dict)
    sections: dict[str, int] = field(default_factory=dict)   # of the ELF
    stack_size: int = 0
    shared_workspace: int = 0

    @property
    def flash(self) -> int:
        return sum(self.sections.get(s, 0) for s in _FLASH_SECTIONS)

    @property
    def ram(self) -> int:
        return sum(self.sections.get(s, 0) for s in _RAM_SECTIONS) + self.stack_size

    def to_json(self) -> dict:
        modules = {name: {**asdict(m), "flash": m.flash, "ram": m.ram}
                   for name, m in self.modules.items()}
        total = {key: sum(m[key] for m in modules.values())
                 for key in ("code", "constants", "flash", "workspace", "io", "state",
                             "other_ram", "ram")}
        total["workspace"] += self.shared_workspace
        total["ram"] += self.shared_workspace
        return {"board": self.board, "elf": self.elf, "modules": modules,
                "modules_total": total, "shared_workspace": self.shared_workspace,
                "firmware": {"sections": self.sections, "flash": self.flash,
                             "ram": self.ram, "stack_size": self.stack_size}}


def build(directory: str, *, cmake: bool = False, profile: bool = False,
          jobs: int = 2) -> tuple[Project, str]:
    """Build the firmware; (project, path of the ELF)."""
    project = load_project(directory)
    compiler = TOOL_PREFIX + "gcc"
    if shutil.which(compiler) is None:
        raise BuildError(f"{compiler} not found",
                         hint="apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    if cmake:
        build_dir = "build-cmake/profile" if profile else "build-cmake"
        commands = [["cmake", "-S", ".", "-B", build_dir,
                     "-DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake",
                     f"-DTVMC_MICRO_PROFILE={'ON' if profile else 'OFF'}"],
                    ["cmake", "--build", build_dir, "-j", str(jobs)]]
        elf = os.path.join(build_dir, "firmware.elf")
    else:
        commands = [["make", "-j", str(jobs), *(["PROFILE=1"] if profile else [])]]
        elf = os.path.join("build/profile" if profile else "build", "firmware.elf")
    for command in commands:
        if shutil.which(command[0]) is None:
            raise BuildError(f"{command[0]} not found", hint=f"install {command[0]}")
        _run(command, directory)
    return project, os.path.join(directory, elf)


def _run(command: list[str], cwd: str) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S, check=False, **child_options())
    except subprocess.TimeoutExpired:
        raise BuildError(f"'{' '.join(command)}' took more than {BUILD_TIMEOUT_S} s") from None
    if done.returncode != 0:
        output = done.stderr + done.stdout
        lines = [line for line in output.splitlines() if "error" in line.lower()] or \
            output.strip().splitlines()[-1:] or ["(no output)"]
        raise BuildError(f"'{' '.join(command[:2])}' failed: {lines[0].strip()}", path=cwd,
                         hint="run the command in the project directory to see everything")
    return done.stdout


# ----------------------------------------------------------------------------- footprint

def section_sizes(path: str) -> dict[str, int]:
    """`size -A`: section name -> bytes (sections of one kind summed: .text.foo -> .text)."""
    out = _run([TOOL_PREFIX + "size", "-A", path], os.getcwd())
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            kind = _section_kind(parts[0])
            sizes[kind] = sizes.get(kind, 0) + int(parts[1])
    return sizes


def _section_kind(name: str) -> str:
    for kind in (".text", ".rodata", ".data", ".bss", ".vectors", ".ARM.exidx", ".ARM.extab"):
        if name == kind or name.startswith(kind + "."):
            return kind
    return name


def symbol_sizes(path: str) -> dict[str, int]:
    """`nm -S`: symbol -> size, for the symbols that have one."""
    out = _run([TOOL_PREFIX + "nm", "-S", path], os.getcwd())
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def find_object(build_dir: str, source: str) -> str:
    """The object built from `source` (make: stem.o, cmake: file.c.obj)."""
    stem = os.path.splitext(os.path.basename(source))[0]
    for folder, _, files in os.walk(build_dir):
        for name in files:
            if name in (f"{stem}.o", f"{stem}.c.o", f"{stem}.c.obj"):
                return os.path.join(folder, name)
    raise OutputError(f"no object file for {source}", path=build_dir,
                      hint="build the project first")


def footprint(directory: str, project: Project, elf: str) -> Footprint:
    build_dir = os.path.dirname(elf)
    result = Footprint(board=project.board, elf=os.path.relpath(elf, directory),
                       sections=section_sizes(elf), stack_size=project.stack_size)
    main_symbols = symbol_sizes(find_object(build_dir, "main.c"))
    result.shared_workspace = main_symbols.get("shared_workspace", 0)
    for module in project.modules:
        entry = ModuleFootprint()
        for source in module.sources:
            obj = find_object(build_dir, source)
            sections = section_sizes(obj)
            entry.code += sections.get(".text", 0)
            entry.constants += sections.get(".rodata", 0)
            ram = sections.get(".data", 0) + sections.get(".bss", 0)
            symbols = symbol_sizes(obj)
            workspace = symbols.get(f"tvmgen_{module.name}_workspace", 0)
            # the state buffer and its flag (its initial values, *_state_init_*, are flash)
            state = sum(symbols.get(f"tvmgen_{module.name}_{name}", 0)
                        for name in ("state", "state_ready"))
            entry.workspace += workspace
            entry.state += state
            entry.other_ram += ram - workspace - state
        entry.io = sum(size for name, size in main_symbols.items()
                       if re.fullmatch(rf"{re.escape(module.name)}_(in|out)\d+", name))
        result.modules[module.name] = entry
    return result


def write_footprint(directory: str, result: Footprint) -> str:
    path = os.path.join(directory, FOOTPRINT_FILE)
    with open(path, "w") as fh:
        json.dump(result.to_json(), fh, indent=2)
        fh.write("\n")
    return path


def footprint_table(result: Footprint) -> str:
    headers = ["module", "code B", "constants B", "flash B", "workspace B", "io B", "state B",
               "other RAM B", "RAM B"]
    rows = [[name, m.code, m.constants, m.flash, m.workspace, m.io, m.state, m.other_ram, m.ram]
            for name, m in result.modules.items()]
    total = result.to_json()["modules_total"]
    if result.shared_workspace:
        rows.append(["(shared workspace)", "", "", "", result.shared_workspace, "", "", "",
                     result.shared_workspace])
    rows.append(["all modules", total["code"], total["constants"], total["flash"],
                 total["workspace"], total["io"], total["state"], total["other_ram"],
                 total["ram"]])
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths))) for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    s = result.sections
    lines.append(
        f"firmware {result.elf}: flash {result.flash} B (.text {s.get('.text', 0)}, .rodata "
        f"{s.get('.rodata', 0)}, .data {s.get('.data', 0)}, vectors/exidx "
        f"{s.get('.vectors', 0) + s.get('.ARM.exidx', 0) + s.get('.ARM.extab', 0)}); RAM "
        f"{result.ram} B (.data {s.get('.data', 0)}, .bss {s.get('.bss', 0)}, stack "
        f"{result.stack_size})")
    return "\n".join(lines)
