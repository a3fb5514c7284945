"""`tvmc micro create-project`: a standalone Cortex-M firmware project from an MLF archive.

Layout of DIR (everything needed to build without this tool):

    model/          the archive's C (codegen/host) and metadata.json
    board/          startup.c, link.ld, tvmc_micro.[ch] (SysTick, stack paint, semihosting)
    src/main.c      runs every module and reports (see `main_source`)
    Makefile        make [PROFILE=1]         -> build/firmware.elf (build/profile/...)
    CMakeLists.txt  + cmake/arm-none-eabi.cmake (toolchain file)
    tvmc_micro.json the project record `build`, `flash` and `run --device micro` read
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from ..errors import OutputError, TvmcError, UsageError, raise_all
from ..mlf import LoadedModule, extract_archive, load_model_library_format
from ..model import TensorInfo
from ..names import check_module_name
from .boards import GENERIC, Board, Region, base_cpu, cpu_flags
from .cmsis_nn import EXTERNAL_LIBRARY, check_root, int8_sources

PROJECT_RECORD = "tvmc_micro.json"
MODEL_DIR = "model"
DEFAULT_STACK_SIZE = 16 * 1024
MIN_STACK_SIZE = 2048
MAX_ARGS = 64
PRINT_VALUES = 8
_MCPU = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# element types main.c prints as values; anything else is printed as bytes
_PRINTABLE = {"int8": ("int8_t", "%d", "int"), "uint8": ("uint8_t", "%u", "unsigned"),
              "int16": ("int16_t", "%d", "int"), "uint16": ("uint16_t", "%u", "unsigned"),
              "int32": ("int32_t", "%ld", "long"), "uint32": ("uint32_t", "%lu", "unsigned long"),
              "float32": ("float", "%g", "double"), "float64": ("double", "%g", "double")}


@dataclass
class ProjectModule:
    name: str
    sources: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    workspace_size_bytes: int
    constants_size_bytes: int
    shared_workspace: bool
    has_state: bool
    workspace_io: bool = False   # inputs and outputs inside the workspace (tir.usmp)


@dataclass
class Project:
    """What tvmc_micro.json records: the board as it was resolved, and the modules."""
    board: str
    description: str
    mcpu: str
    cpu_flags: list[str]
    qemu_machine: str | None
    cpu_clock_hz: int | None
    flash: str
    ram: str
    stack_size: int
    modules: list[ProjectModule] = field(default_factory=list)
    # CMSIS-NN (modules compiled with --target "cmsis-nn, c"): its root (built from there,
    # never copied) and the sources built, relative to it
    cmsis_nn: str | None = None
    cmsis_nn_sources: list[str] = field(default_factory=list)

    def module(self, name: str) -> ProjectModule:
        for module in self.modules:
            if module.name == name:
                return module
        raise UsageError(f"no module '{name}' in the project",
                         hint=f"modules: {', '.join(m.name for m in self.modules)}")


def load_project(directory: str) -> Project:
    path = os.path.join(directory, PROJECT_RECORD)
    if not os.path.isfile(path):
        raise UsageError("not a tvmc micro project (no tvmc_micro.json)", path=directory,
                         hint="create one with 'tvmc micro create-project DIR ARCHIVE --board ...'")
    try:
        record = json.loads(open(path).read())
        modules = [ProjectModule(**m) for m in record.pop("modules")]
        return Project(**record, modules=modules)
    except (ValueError, TypeError, KeyError) as exc:
        raise OutputError(f"unreadable project record: {exc}", path=path) from None


# ----------------------------------------------------------------------------- create

def create_project(directory: str, archive: str, board: Board, *, flash: Region | None = None,
                   ram: Region | None = None, stack_size: int = DEFAULT_STACK_SIZE,
                   force: bool = False, cmsis_nn_path: str | None = None) -> Project:
    """Write the project; nothing is left behind when any check fails. `cmsis_nn_path`: the
    CMSIS-NN checkout the firmware builds, needed when a module calls CMSIS-NN."""
    _check_directory(directory, force)
    cmsis_root = check_root(cmsis_nn_path) if cmsis_nn_path is not None else None
    parent = os.path.dirname(os.path.abspath(directory))
    with tempfile.TemporaryDirectory(prefix=".tvmc-micro-", dir=parent) as tmp:
        model_dir = os.path.join(tmp, MODEL_DIR)
        extract_archive(archive, os.path.join(tmp, "archive"))
        loaded = load_model_library_format(os.path.join(tmp, "archive"))
        modules = list(loaded.modules.values())
        project = _resolve(board, modules, archive, flash, ram, stack_size)
        _add_cmsis_nn(project, modules, archive, cmsis_root)
        _copy_model(os.path.join(tmp, "archive"), model_dir, modules)
        _write_files(tmp, project, modules)
        shutil.rmtree(os.path.join(tmp, "archive"))
        if os.path.isdir(directory):
            shutil.rmtree(directory)
        os.replace(tmp, directory)
        os.makedirs(tmp)  # TemporaryDirectory removes it on exit
    return project


def _add_cmsis_nn(project: Project, modules: list[LoadedModule], archive: str,
                  root: Any) -> None:
    """Record the CMSIS-NN build when a module calls it (an error without a path)."""
    needing = [m.name for m in modules if EXTERNAL_LIBRARY in m.external_dependencies]
    if needing and root is None:
        raise UsageError(f"module{'s' if len(needing) > 1 else ''} {', '.join(needing)} "
                         f"call{'' if len(needing) > 1 else 's'} CMSIS-NN (compiled with "
                         '--target "cmsis-nn, c"): give its sources with --cmsis-nn-path DIR',
                         path=archive, hint="a checkout of github.com/ARM-software/CMSIS-NN")
    if needing:
        project.cmsis_nn = str(root)
        project.cmsis_nn_sources = [str(p.relative_to(root)) for p in int8_sources(root)]


def _check_directory(directory: str, force: bool) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise OutputError("exists and is not a directory", path=directory)
    if os.path.isdir(directory) and os.listdir(directory) and not force:
        raise OutputError("directory is not empty", path=directory,
                          hint="choose a new directory, or --force to replace it")
    parent = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(parent):
        raise OutputError("parent directory does not exist", path=directory)


def _resolve(board: Board, modules: list[LoadedModule], archive: str, flash: Region | None,
             ram: Region | None, stack_size: int) -> Project:
    problems: list[TvmcError] = []
    for module in modules:
        bad = check_module_name(module.name)
        if bad:
            problems.append(OutputError(f"invalid module name in the archive: {bad.message}",
                                        path=archive))
        for source in module.sources:
            if not _SOURCE_NAME.match(source):  # it becomes a make target and a CMake source
                problems.append(OutputError(f"source file name '{source}' of module "
                                            f"{module.name} is not a plain C file name",
                                            path=archive))
    mcpu = _archive_mcpu(modules, archive)
    if board.name == GENERIC:
        if mcpu is None:
            raise UsageError("the generic board takes its core from the archive's -mcpu, and "
                             "the archive has none", path=archive,
                             hint='compile with --target "c -mcpu=cortex-m..."')
        if flash is None or ram is None:
            raise UsageError("--board generic needs --flash ORIGIN:SIZE and --ram ORIGIN:SIZE",
                             hint="e.g. --flash 0x08000000:1M --ram 0x20000000:256K")
    else:
        if flash or ram:
            raise UsageError(f"--flash/--ram are for --board generic; {board.name} has its own "
                             "memory map")
        if mcpu is not None and base_cpu(mcpu) != board.cpu:
            raise UsageError(f"the archive was compiled for -mcpu={mcpu}, board {board.name} is "
                             f"a {board.cpu}", path=archive,
                             hint=f'recompile with --target "c -mcpu={board.cpu}" or choose a '
                                  f"{base_cpu(mcpu)} board")
        mcpu = mcpu or board.cpu
        flash, ram = board.flash, board.ram
    if stack_size < MIN_STACK_SIZE or stack_size % 8:
        # newlib's printf alone takes about 1 KB of stack
        problems.append(UsageError(f"--stack-size {stack_size}: at least {MIN_STACK_SIZE}, a "
                                   "multiple of 8"))
    raise_all(problems)
    assert mcpu is not None and flash is not None and ram is not None
    return Project(board=board.name, description=board.description, mcpu=mcpu,
                   cpu_flags=cpu_flags(mcpu), qemu_machine=board.qemu_machine,
                   cpu_clock_hz=board.cpu_clock_hz, flash=flash.text(), ram=ram.text(),
                   stack_size=stack_size, modules=[_project_module(m) for m in modules])


def _archive_mcpu(modules: list[LoadedModule], archive: str) -> str | None:
    """The one -mcpu of every module's target (None when no module names one)."""
    found: dict[str, str] = {}
    for module in modules:
        for target in module.target:
            match = re.search(r"-mcpu=(\S+)", target)
            if match:
                found[module.name] = match.group(1).strip("'\"").lower()
    values = sorted(set(found.values()))
    if len(values) > 1:
        raise UsageError("the archive's modules were compiled for different cores ("
                         + ", ".join(f"{n}: -mcpu={v}" for n, v in found.items()) + ")",
                         path=archive, hint="one firmware runs on one core")
    if values and not _MCPU.match(values[0]):
        raise OutputError(f"the archive's target has an invalid -mcpu '{values[0]}'", path=archive)
    return values[0] if values else None


def _project_module(module: LoadedModule) -> ProjectModule:
    api = module.c_api
    assert api is not None, "mlf.reader builds every loaded module's C API"
    return ProjectModule(
        name=module.name,
        sources=sorted(f for f in module.sources if f.endswith(".c")),
        inputs=[_tensor_record(t, c.offset_macro if api.workspace_io else None)
                for t, c in zip(module.inputs, api.inputs)],
        outputs=[_tensor_record(t, c.offset_macro if api.workspace_io else None)
                 for t, c in zip(module.outputs, api.outputs)],
        workspace_size_bytes=module.workspace_size_bytes,
        constants_size_bytes=module.constants_size_bytes,
        shared_workspace=api.shared,
        has_state=api.stateful,
        workspace_io=api.workspace_io)


def _tensor_record(tensor: TensorInfo, offset_macro: str | None = None) -> dict[str, Any]:
    """`offset_macro`: the header's macro of its offset in the workspace (workspace io)."""
    record = {"name": tensor.name, "c_name": tensor.c_name, "dtype": tensor.dtype,
              "shape": list(tensor.shape), "nbytes": tensor.nbytes}
    return {**record, "offset_macro": offset_macro} if offset_macro else record


def tensor_infos(records: list[dict[str, Any]]) -> list[TensorInfo]:
    return [TensorInfo(name=r["name"], shape=tuple(r["shape"]), dtype=r["dtype"],
                       c_name=r["c_name"]) for r in records]


def _copy_model(extracted: str, model_dir: str, modules: list[LoadedModule]) -> None:
    include = os.path.join(extracted, "codegen", "host", "include")
    shutil.copytree(include, os.path.join(model_dir, "codegen", "host", "include"))
    src = os.path.join(model_dir, "codegen", "host", "src")
    os.makedirs(src)
    for module in modules:
        for name in module.sources:
            shutil.copy(os.path.join(extracted, "codegen", "host", "src", name), src)
    shutil.copy(os.path.join(extracted, "metadata.json"), model_dir)


def _template(name: str) -> str:
    return (resources.files(__package__) / "templates" / name).read_text()


def _write_files(root: str, project: Project, modules: list[LoadedModule]) -> None:
    flash, ram = (Region(*map(int, _region_numbers(t))) for t in (project.flash, project.ram))
    files = {
        "board/startup.c": _template("startup.c"),
        "board/tvmc_micro.c": _template("tvmc_micro.c"),
        "board/tvmc_micro.h": _template("tvmc_micro.h"),
        "board/tvmc_micro_profile.h": _template("tvmc_micro_profile.h"),
        "board/link.ld": _template("link.ld")
        .replace("@BOARD@", project.board)
        .replace("@FLASH_ORIGIN@", f"0x{flash.origin:08x}")
        .replace("@FLASH_SIZE@", str(flash.size))
        .replace("@RAM_ORIGIN@", f"0x{ram.origin:08x}")
        .replace("@RAM_SIZE@", str(ram.size))
        .replace("@STACK_SIZE@", str(project.stack_size)),
        "cmake/arm-none-eabi.cmake": _template("arm-none-eabi.cmake"),
        "src/main.c": main_source(project),
        "Makefile": makefile(project),
        "CMakeLists.txt": cmakelists(project),
        PROJECT_RECORD: json.dumps(asdict(project), indent=2) + "\n",
    }
    for relative, text in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(text)


def _region_numbers(text: str) -> tuple[int, int]:
    origin, size = text.split(":")
    return int(origin, 16), int(size)


def source_paths(project: Project) -> list[str]:
    return [f"{MODEL_DIR}/codegen/host/src/{f}" for m in project.modules for f in m.sources]


# ----------------------------------------------------------------------------- main.c

def main_source(project: Project) -> str:
    """main.c: with no arguments every module runs once on zero inputs and prints its first
    outputs; `run MODULE INVOKES IN... OUT...` (semihosting command line) runs one module on
    inputs read from files and writes its outputs to files. Each run prints one
    `tvmc-micro: module=... invoke=... status=... ticks=... stack=...` line."""
    lines = [
        f"/* main.c of a tvmc micro project for board {project.board} ({project.mcpu}).",
        " * Generated by tvmc micro create-project.",
        " *   no arguments:                     every module once on zero inputs",
        " *   run MODULE INVOKES IN... OUT...:  one module on inputs read from files (semihosting)",
        " * Timer ticks are SysTick counts at the core clock: cycles on a real part, and",
        " * instructions x TVMC_MICRO_CPU_HZ / 1e9 under QEMU -icount shift=0. */",
        "#include <stdint.h>", "#include <stdio.h>",
        "#include <stdlib.h>", "#include <string.h>", "",
        '#include "tvmc_micro.h"', '#include "tvmgen_modules.h"', "",
        "#define BYTES(n) ((n) > 0 ? (n) : 1)", "",
        "struct tensor { const char* name; const char* dtype; uint8_t* data; size_t size; };",
        "struct module {",
        "  const char* name;",
        "  int32_t (*run)(void);",
        "  void (*reset)(void);",
        "  const struct tensor* inputs;",
        "  int input_count;",
        "  const struct tensor* outputs;",
        "  int output_count;",
        "  int inputs_in_workspace;  /* a run may overwrite them: written before each run */",
        "};", "",
    ]
    if any(m.shared_workspace for m in project.modules):
        lines += ["/* one arena for the modules compiled with --workspace shared */",
                  "static _Alignas(TVMGEN_MAX_WORKSPACE_ALIGNMENT) uint8_t shared_workspace"
                  "[BYTES(TVMGEN_MAX_WORKSPACE_SIZE)];", ""]
    for module in project.modules:
        lines += _module_block(module)
    lines += ["static const struct module modules[] = {"]
    for m in project.modules:
        reset = f"reset_{m.name}" if m.has_state else "0"
        lines.append(f"  {{\"{m.name}\", run_{m.name}, {reset}, {m.name}_inputs, "
                     f"{len(m.inputs)}, {m.name}_outputs, {len(m.outputs)}, "
                     f"{int(m.workspace_io)}}},")
    lines += ["};", f"#define MODULE_COUNT {len(project.modules)}", ""]
    lines += _C_FUNCTIONS.replace("@PRINT_VALUES@", str(PRINT_VALUES)).replace(
        "@MAX_ARGS@", str(MAX_ARGS)).replace("@PRINTERS@", _printers()).splitlines()
    return "\n".join(lines) + "\n"


def _module_block(module: ProjectModule) -> list[str]:
    name, prefix = module.name, f"tvmgen_{module.name}"
    lines = [f"/* module {name} */"]
    if module.workspace_io:  # the tensors are the module's own, inside its workspace
        arena = "shared_workspace" if module.shared_workspace else f"{prefix}_workspace"
        data = {(kind, i): f"(uint8_t*){arena} + {t['offset_macro']}"
                for kind, tensors in (("in", module.inputs), ("out", module.outputs))
                for i, t in enumerate(tensors)}
    else:  # buffers of the harness
        data = {}
        for kind, tensors in (("in", module.inputs), ("out", module.outputs)):
            for i, t in enumerate(tensors):
                lines.append(f"static _Alignas(16) uint8_t {name}_{kind}{i}"
                             f"[BYTES({t['nbytes']})];")
                data[kind, i] = f"{name}_{kind}{i}"
    for kind, short, tensors in (("inputs", "in", module.inputs),
                                 ("outputs", "out", module.outputs)):
        entries = [f"{{\"{t['c_name']}\", \"{_dtype(t['dtype'])}\", {data[short, i]}, "
                   f"{t['nbytes']}}}" for i, t in enumerate(tensors)]
        entries = entries or ["{0, 0, 0, 0}"]
        lines.append(f"static const struct tensor {name}_{kind}[] = {{{', '.join(entries)}}};")
    workspace = ", shared_workspace" if module.shared_workspace else ""
    if module.workspace_io:
        # no buffers to pass: run() reads and writes them in the workspace
        lines += [f"static int32_t run_{name}(void) {{",
                  f"  return {prefix}_run({'shared_workspace' if module.shared_workspace else ''});",
                  "}"]
    else:
        lines += [f"static int32_t run_{name}(void) {{",
                  f"  struct {prefix}_inputs inputs;", f"  struct {prefix}_outputs outputs;",
                  "  memset(&inputs, 0, sizeof(inputs));",
                  "  memset(&outputs, 0, sizeof(outputs));"]
        lines += [f"  inputs.{t['c_name']} = {name}_in{i};" for i, t in enumerate(module.inputs)]
        lines += [f"  outputs.{t['c_name']} = {name}_out{i};"
                  for i, t in enumerate(module.outputs)]
        lines += [f"  return {prefix}_run(&inputs, &outputs{workspace});", "}"]
    if module.has_state:
        lines += [f"static void reset_{name}(void) {{ {prefix}_reset(); }}"]
    return lines + [""]


def _dtype(dtype: str) -> str:
    """Element type names reach C only from this fixed set (anything else prints as bytes)."""
    return dtype if dtype in _PRINTABLE else "bytes"


def _printers() -> str:
    cases = []
    for dtype, (c_type, conversion, cast) in _PRINTABLE.items():
        cases.append(f'  if (strcmp(t->dtype, "{dtype}") == 0) {{\n'
                     f"    {c_type} v;\n"
                     f"    for (i = 0; i < t->size / sizeof(v) && i < {PRINT_VALUES}; ++i) {{\n"
                     f"      memcpy(&v, t->data + i * sizeof(v), sizeof(v));\n"
                     f'      printf(" {conversion}", ({cast})v);\n'
                     f"    }}\n"
                     f'    if (t->size / sizeof(v) > {PRINT_VALUES}) printf(" ...");\n'
                     f'    printf("\\n");\n    return;\n  }}')
    return "\n".join(cases)


_C_FUNCTIONS = r"""
#ifdef TVMC_MICRO_PROFILE
/* per-operator timer reads of the last invoke (the runner's TVMGEN_OPERATOR_CALL hook) */
#define MAX_CALLS 1024
static struct { int index; const char* function; uint64_t ticks; } calls[MAX_CALLS];
static int call_count;
static uint64_t call_start;

void tvmc_micro_operator_begin(void) { call_start = tvmc_micro_ticks(); }

int32_t tvmc_micro_operator_end(int index, const char* function, int32_t status) {
  uint64_t now = tvmc_micro_ticks();
  if (call_count < MAX_CALLS) {
    calls[call_count].index = index;
    calls[call_count].function = function;
    calls[call_count].ticks = now - call_start;
    ++call_count;
  }
  return status;
}
#endif

/* not inlined: gcc 12 would see a small output buffer through the table and warn
   (-Warray-bounds) about the wider element types' branches that never run for it */
static __attribute__((noinline)) void print_values(const struct tensor* t) {
  size_t i;
@PRINTERS@
  for (i = 0; i < t->size && i < @PRINT_VALUES@; ++i) printf(" %02x", (unsigned)t->data[i]);
  printf("\n");
}

static const struct module* find_module(const char* name) {
  int i;
  for (i = 0; i < MODULE_COUNT; ++i) {
    if (strcmp(modules[i].name, name) == 0) return &modules[i];
  }
  return 0;
}

static int load_file(const char* path, const struct tensor* t) {
  FILE* f = fopen(path, "rb");
  size_t got = f ? fread(t->data, 1, t->size, f) : 0;
  if (f) fclose(f);
  if (got != t->size) {
    printf("error: cannot read %u bytes of %s from %s\n", (unsigned)t->size, t->name, path);
    return 0;
  }
  return 1;
}

static int save_file(const char* path, const struct tensor* t) {
  FILE* f = fopen(path, "wb");
  int ok = f && fwrite(t->data, 1, t->size, f) == t->size;
  if (f && fclose(f) != 0) ok = 0;
  if (!ok) printf("error: cannot write %s to %s\n", t->name, path);
  return ok;
}

/* one run: the stack painted before and checked after, the timer read around it */
static int32_t invoke(const struct module* m, int number) {
  uint64_t start, stop;
  int32_t status;
#ifdef TVMC_MICRO_PROFILE
  int i;
  call_count = 0;
#endif
  tvmc_micro_paint_stack();
  start = tvmc_micro_ticks();
  status = m->run();
  stop = tvmc_micro_ticks();
  printf("tvmc-micro: module=%s invoke=%d status=%ld ticks=%llu stack=%u stack_size=%u\n",
         m->name, number, (long)status, (unsigned long long)(stop - start), (unsigned)tvmc_micro_stack_peak(),
         (unsigned)tvmc_micro_stack_size());
#ifdef TVMC_MICRO_PROFILE
  for (i = 0; i < call_count; ++i) {
    printf("tvmc-micro: operator module=%s invoke=%d index=%d function=%s ticks=%llu\n",
           m->name, number, calls[i].index, calls[i].function,
           (unsigned long long)calls[i].ticks);
  }
#endif
  return status;
}

/* run MODULE INVOKES IN... OUT... */
static int run_from_files(int argc, char** argv) {
  const struct module* m = find_module(argv[2]);
  int invokes = atoi(argv[3]);
  int i, k;
  if (!m) { printf("error: no module %s\n", argv[2]); return 2; }
  if (argc != 4 + m->input_count + m->output_count || invokes < 1) {
    printf("error: run %s takes INVOKES, %d input and %d output files\n", m->name,
           m->input_count, m->output_count);
    return 2;
  }
  if (m->reset) m->reset();
  for (i = 1; i <= invokes; ++i) {
    /* inputs in the workspace: read again before every run, which may overwrite them */
    for (k = 0; k < m->input_count && (i == 1 || m->inputs_in_workspace); ++k) {
      if (!load_file(argv[4 + k], &m->inputs[k])) return 3;
    }
    if (invoke(m, i) != 0) return 1;
  }
  for (i = 0; i < m->output_count; ++i) {
    if (!save_file(argv[4 + m->input_count + i], &m->outputs[i])) return 3;
  }
  return 0;
}

static int run_every_module(void) {
  int failures = 0, i, j;
  for (i = 0; i < MODULE_COUNT; ++i) {
    const struct module* m = &modules[i];
    for (j = 0; j < m->input_count; ++j) memset(m->inputs[j].data, 0, m->inputs[j].size);
    if (m->reset) m->reset();
    if (invoke(m, 1) != 0) {
      printf("%s: run failed\n", m->name);
      ++failures;
      continue;
    }
    for (j = 0; j < m->output_count; ++j) {
      printf("%s.%s (%u bytes):", m->name, m->outputs[j].name, (unsigned)m->outputs[j].size);
      print_values(&m->outputs[j]);
    }
  }
  printf("%d of %d modules ran\n", MODULE_COUNT - failures, MODULE_COUNT);
  return failures == 0 ? 0 : 1;
}

int main(void) {
  char* argv[@MAX_ARGS@];
  int argc = tvmc_micro_command_line(argv, @MAX_ARGS@);
  tvmc_micro_timer_start();
  if (argc >= 4 && strcmp(argv[1], "run") == 0) return run_from_files(argc, argv);
  return run_every_module();
}
"""


# ----------------------------------------------------------------------------- build files

def makefile(project: Project) -> str:
    sources = source_paths(project)
    objects = " ".join(f"$(BUILD)/{os.path.splitext(s)[0]}.o" for s in sources)
    return f"""\
# Firmware of a tvmc micro project: board {project.board} ({project.mcpu}).
# Generated by tvmc micro create-project.
#   make                 -> build/firmware.elf
#   make PROFILE=1       -> build/profile/firmware.elf (timer read around every operator call)
#   make CFLAGS=-Os      (optimisation; the core's flags are always used, link line included)
CROSS_COMPILE ?= arm-none-eabi-
CC := $(CROSS_COMPILE)gcc
CPU_FLAGS := {' '.join(project.cpu_flags)}
CFLAGS ?= -O2
WARNINGS ?= -Wall -Wextra -Werror
TVMC_CFLAGS := $(CPU_FLAGS) -std=gnu11 -ffunction-sections -fdata-sections \\
  -Imodel/codegen/host/include -Iboard -DTVMC_MICRO_CPU_HZ={project.cpu_clock_hz or 0}u
# "=": $(BUILD) is set below (with ":=" the map went to /firmware.map)
LDFLAGS = $(CPU_FLAGS) -T board/link.ld --specs=rdimon.specs -nostartfiles \\
  -Wl,--gc-sections -Wl,-Map=$(BUILD)/firmware.map
LDLIBS := -lm

ifeq ($(PROFILE),1)
BUILD := build/profile
MAIN_FLAGS := -DTVMC_MICRO_PROFILE
MODEL_FLAGS := -include board/tvmc_micro_profile.h
else
BUILD := build
endif

OBJECTS := $(BUILD)/board/startup.o $(BUILD)/board/tvmc_micro.o $(BUILD)/src/main.o \\
  {objects}
{_cmsis_nn_make(project)}
.PHONY: all clean
all: $(BUILD)/firmware.elf

$(BUILD)/firmware.elf: $(OBJECTS) $(LIBRARIES) board/link.ld
\t$(CC) $(LDFLAGS) $(CFLAGS) -o $@ $(OBJECTS) $(LIBRARIES) $(LDLIBS)

$(BUILD)/board/%.o: board/%.c board/tvmc_micro.h
\t@mkdir -p $(dir $@)
\t$(CC) $(TVMC_CFLAGS) $(CFLAGS) $(WARNINGS) -c $< -o $@

$(BUILD)/src/main.o: src/main.c board/tvmc_micro.h
\t@mkdir -p $(dir $@)
\t$(CC) $(TVMC_CFLAGS) $(CFLAGS) $(WARNINGS) $(MAIN_FLAGS) -c $< -o $@

$(BUILD)/model/%.o: model/%.c
\t@mkdir -p $(dir $@)
\t$(CC) $(TVMC_CFLAGS) $(CFLAGS) $(WARNINGS) $(MODEL_FLAGS) $(LIBRARY_INCLUDES) -c $< -o $@

clean:
\trm -rf build
"""


def _cmsis_nn_make(project: Project) -> str:
    """The Makefile's CMSIS-NN part: a static library (only what is called gets linked) built
    from CMSIS_NN (override with make CMSIS_NN=DIR) with the core's flags, without -Werror
    (ARM's code, not ours), once for both builds (PROFILE=1 too)."""
    if not project.cmsis_nn:
        return "LIBRARIES :=\nLIBRARY_INCLUDES :=\n"
    sources = " \\\n  ".join(project.cmsis_nn_sources)
    return f"""
# CMSIS-NN, the library the modules call (metadata.json: external_dependencies)
.DEFAULT_GOAL := all
CMSIS_NN ?= {project.cmsis_nn}
CMSIS_NN_CFLAGS ?=
AR := $(CROSS_COMPILE)ar
CMSIS_NN_SOURCES := \\
  {sources}
CMSIS_NN_OBJECTS := $(patsubst %.c,build/cmsis-nn/%.o,$(CMSIS_NN_SOURCES))
LIBRARIES := build/cmsis-nn/libcmsis-nn.a
LIBRARY_INCLUDES := -I$(CMSIS_NN)/Include

build/cmsis-nn/libcmsis-nn.a: $(CMSIS_NN_OBJECTS)
\t$(AR) rcs $@ $^

build/cmsis-nn/%.o: $(CMSIS_NN)/%.c
\t@mkdir -p $(dir $@)
\t$(CC) $(CPU_FLAGS) -std=gnu11 -ffunction-sections -fdata-sections $(CFLAGS) \\
\t  -I$(CMSIS_NN)/Include $(CMSIS_NN_CFLAGS) -c $< -o $@
"""


def _cmsis_nn_cmake(project: Project) -> str:
    if not project.cmsis_nn:
        return ""
    sources = "\n".join(f"  ${{CMSIS_NN}}/{s}" for s in project.cmsis_nn_sources)
    return f"""
# CMSIS-NN, the library the modules call (metadata.json: external_dependencies)
set(CMSIS_NN "{project.cmsis_nn}" CACHE PATH "CMSIS-NN checkout")
add_library(cmsis_nn STATIC
{sources}
)
target_include_directories(cmsis_nn PUBLIC ${{CMSIS_NN}}/Include)
target_compile_options(cmsis_nn PRIVATE ${{CPU_FLAGS}} -std=gnu11 -ffunction-sections
  -fdata-sections)
target_include_directories(tvmgen_modules PRIVATE ${{CMSIS_NN}}/Include)
target_link_libraries(firmware PRIVATE cmsis_nn)
"""


def cmakelists(project: Project) -> str:
    sources = "\n".join(f"  {s}" for s in source_paths(project))
    flags = " ".join(project.cpu_flags)
    return f"""\
# Firmware of a tvmc micro project: board {project.board} ({project.mcpu}).
# Generated by tvmc micro create-project.
#   cmake -S . -B build-cmake -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake
#   cmake --build build-cmake          (-DTVMC_MICRO_PROFILE=ON: timer around every operator)
cmake_minimum_required(VERSION 3.13)
project(tvmc_micro_firmware C)

option(TVMC_MICRO_PROFILE "read the timer around every operator call" OFF)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()
set(CMAKE_C_FLAGS_RELEASE "-O2")
set(CPU_FLAGS {flags})

add_library(tvmgen_modules OBJECT
{sources}
)
add_executable(firmware board/startup.c board/tvmc_micro.c src/main.c
  $<TARGET_OBJECTS:tvmgen_modules>)
set_target_properties(firmware PROPERTIES SUFFIX ".elf")

foreach(target tvmgen_modules firmware)
  target_include_directories(${{target}} PRIVATE model/codegen/host/include board)
  target_compile_options(${{target}} PRIVATE ${{CPU_FLAGS}} -std=gnu11 -ffunction-sections
    -fdata-sections -Wall -Wextra -Werror)
  target_compile_definitions(${{target}} PRIVATE TVMC_MICRO_CPU_HZ={project.cpu_clock_hz or 0}u)
endforeach()
if(TVMC_MICRO_PROFILE)
  target_compile_options(tvmgen_modules PRIVATE -include
    ${{CMAKE_CURRENT_SOURCE_DIR}}/board/tvmc_micro_profile.h)
  target_compile_definitions(firmware PRIVATE TVMC_MICRO_PROFILE)
endif()
target_link_options(firmware PRIVATE ${{CPU_FLAGS}} -T ${{CMAKE_CURRENT_SOURCE_DIR}}/board/link.ld
  --specs=rdimon.specs -nostartfiles -Wl,--gc-sections -Wl,-Map=firmware.map)
target_link_libraries(firmware PRIVATE m)
set_property(TARGET firmware APPEND PROPERTY LINK_DEPENDS
  ${{CMAKE_CURRENT_SOURCE_DIR}}/board/link.ld)
{_cmsis_nn_cmake(project)}"""
