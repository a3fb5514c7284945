"""What the compile commands print: progress lines, the per-module table, code sizes.

Code size is the `.text` of the module's C compiled for the host with ``cc -c -O2``: the C
source text is mostly constant tables, so its length says nothing about flash use. The
constants' data is left out of that compilation (zero-initialised: the same code); a model with
330 MB of weights had gcc compile 1 GB of C for minutes. The host ISA is not the
microcontroller's, so it is an estimate; "-" when no compiler is at hand.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from ..codegen.constants import without_constant_data
from ..model import CompiledModule, TensorInfo
from ..processes import Finished, run_all

log = logging.getLogger(__name__)

COMPILE_TIMEOUT_S = 600


def find_c_compiler() -> list[str] | None:
    """The host C compiler: ``$CC`` (may hold arguments: "ccache gcc"), else cc/gcc/clang."""
    env = os.environ.get("CC", "").strip()
    if env:
        command = shlex.split(env)
        return command if shutil.which(command[0]) else None
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    return None


def first_error_line(output: str) -> str:
    """The line of compiler output worth showing: the first 'error', else the first line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower():
            return line
    return lines[0] if lines else "(no output)"


def code_size(module: CompiledModule) -> int | None:
    """Bytes of `.text` in the module's sources built with the host ``cc -c -O2``, or None."""
    return code_sizes([module], 1)[0]


def code_sizes(modules: Sequence[CompiledModule], jobs: int = 1) -> list[int | None]:
    """`code_size` of each module, up to `jobs` compilers at a time.

    The compilers run as children of this thread (`processes.run_all`): Ctrl-C or SIGTERM
    kills them at once, and a killed `tvmc` takes them along.
    """
    compiler = find_c_compiler()
    size_tool = shutil.which("size")
    if compiler is None or size_tool is None:
        return [None] * len(modules)
    with tempfile.TemporaryDirectory(prefix="tvmc-size-") as tmp:
        plans = [_size_plan(module, compiler, os.path.join(tmp, str(i)))
                 for i, module in enumerate(modules)]
        commands = [command for plan in plans for command in plan[0]]
        finished = iter(run_all(commands, jobs, COMPILE_TIMEOUT_S))
        built = [[_succeeded(next(finished), command) for command in plan[0]]
                 for plan in plans]
        measurable = [(i, objects) for i, ((commands_, objects), ok)
                      in enumerate(zip(plans, built)) if objects and all(ok)]
        sizes = run_all([[size_tool, "-A", *objects] for _, objects in measurable], jobs,
                        COMPILE_TIMEOUT_S)
        result: list[int | None] = [None] * len(modules)
        for (i, _), done in zip(measurable, sizes):
            if _succeeded(done, [size_tool]):
                result[i] = _text_bytes(done.stdout)
        return result


def _size_plan(module: CompiledModule, compiler: list[str],
               folder: str) -> tuple[list[list[str]], list[str]]:
    """Write the module's header and sources under `folder`: (compile commands, objects)."""
    include = os.path.join(folder, "include")
    os.makedirs(include)
    with open(os.path.join(include, f"tvmgen_{module.name}.h"), "w") as fh:
        fh.write(module.header)
    commands, objects = [], []
    for file_name, text in module.sources.items():
        source = os.path.join(folder, os.path.basename(file_name))
        with open(source, "w") as fh:  # constants are data: not compiled for .text
            fh.write(without_constant_data(text))
        objects.append(source[:-2] + ".o")
        commands.append([*compiler, "-std=c11", "-O2", "-c", "-I", include, source,
                         "-o", objects[-1]])
    return commands, objects


def _succeeded(done: Finished, command: list[str]) -> bool:
    """Whether a tool ran well; a failure is logged at debug level only."""
    if done.returncode == 0:
        return True
    log.debug("code size: %s failed: %s", shlex.join(command),
              first_error_line(done.stderr) if done.returncode is not None
              else "did not start or timed out")
    return False


def _text_bytes(output: str) -> int:
    """Sum the `.text*` sections reported by ``size -A`` (SysV format, one section a line)."""
    total = 0
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".text") and parts[1].isdigit():
            total += int(parts[1])
    return total


# ----------------------------------------------------------------------------- progress

def _progress_head(index: int, count: int, name: str, path: str) -> str:
    return f"[{index}/{count}] {name} ({os.path.basename(path)}) ..."


def progress_start(index: int, count: int, name: str, path: str,
                   stream: TextIO | None = None) -> None:
    """``[n/N] <name> (<file>) ...`` when a module starts (a line of its own: other messages,
    such as the frontends' warnings, may come before it ends)."""
    print(_progress_head(index, count, name, path), file=stream or sys.stderr, flush=True)


def progress_end(index: int, count: int, name: str, path: str, outcome: str,
                 stream: TextIO | None = None) -> None:
    """``[n/N] <name> (<file>) ... <t.tt> s`` (or ``failed``) when it ends."""
    print(f"{_progress_head(index, count, name, path)} {outcome}", file=stream or sys.stderr,
          flush=True)


@contextmanager
def progress(index: int, count: int, name: str, path: str,
             stream: TextIO | None = None) -> Iterator[None]:
    """The start line, then the end line with the module's compile time, around the work."""
    progress_start(index, count, name, path, stream)
    start = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = f"{time.perf_counter() - start:.2f} s"
    finally:
        progress_end(index, count, name, path, outcome, stream)


# ----------------------------------------------------------------------------- table

TABLE_HEADERS = ("module", "file", "format", "inputs", "outputs", "workspace B", "bound B",
                 "constants B", "code B")


def tensor_list(tensors: Sequence[TensorInfo]) -> str:
    """``name:[1,49,10,1]:int8, other:[10]:float32``."""
    return ", ".join(f"{t.name}:[{','.join(str(d) for d in t.shape)}]:{t.dtype}"
                     for t in tensors)


def module_row(module: CompiledModule, code_bytes: int | None) -> list[str]:
    return [module.name, os.path.basename(module.model_path), module.model_format,
            tensor_list(module.inputs), tensor_list(module.outputs), str(module.workspace_bytes),
            str(module.liveness_bound_bytes), str(module.constants_bytes),
            "-" if code_bytes is None else str(code_bytes)]


def total_row(modules: Sequence[CompiledModule], sizes: Sequence[int | None],
              shared: bool) -> list[str]:
    """Flash adds up; RAM is the MAX over the modules when they share one workspace
    (--workspace shared: they never run at once), the SUM of their arenas otherwise."""
    ram = max if shared else sum
    code = "-" if any(s is None for s in sizes) else str(sum(s or 0 for s in sizes))
    how = "workspace: max (shared arena)" if shared else "workspace: sum (one arena each)"
    return ["total", f"{len(modules)} modules", "", how, "",
            str(ram(m.workspace_bytes for m in modules)),
            str(ram(m.liveness_bound_bytes for m in modules)),
            str(sum(m.constants_bytes for m in modules)), code]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                 footer: Sequence[Sequence[str]] = ()) -> str:
    """A plain, aligned text table; numbers right-aligned; `footer` rows below a second rule."""
    widths = [max(len(str(cell)) for cell in column)
              for column in zip(headers, *rows, *footer)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for cell, width in zip(cells, widths):
            text = str(cell)
            out.append(text.rjust(width) if text.isascii() and text.isdigit()
                       else text.ljust(width))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    tail = [rule, *(line(r) for r in footer)] if footer else []
    return "\n".join([line(headers), rule, *(line(r) for r in rows), *tail])


def module_table(modules: Sequence[CompiledModule], jobs: int = 1, shared: bool = False) -> str:
    sizes = code_sizes(modules, jobs)
    rows = [module_row(m, size) for m, size in zip(modules, sizes)]
    footer = [total_row(modules, sizes, shared)] if len(modules) > 1 else []
    return format_table(TABLE_HEADERS, rows, footer) + "\n" + totals_line(modules, sizes, shared)


def totals_line(modules: Sequence[CompiledModule], sizes: Sequence[int | None],
                shared: bool) -> str:
    """What the archive costs the device: flash (constants + code) and RAM (the workspace,
    MAX or SUM over the modules, plus the input/output buffers the application provides)."""
    constants = sum(m.constants_bytes for m in modules)
    code = None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)
    workspace = (max if shared else sum)(m.workspace_bytes for m in modules)
    # inputs and outputs planned inside the workspace (tir.usmp.use_workspace_io) cost nothing more
    io = sum(m.io_bytes for m in modules if not m.options.get("workspace_io"))
    flash = (f"flash {constants + code:,} B (constants {constants:,} + code {code:,})"
             if code is not None else f"flash {constants:,} B of constants + code")
    how = ("max over modules: one shared arena, " if shared and len(modules) > 1
           else "sum over modules, " if len(modules) > 1 else "")
    inside = (" inside the workspace" if all(m.options.get("workspace_io") for m in modules)
              else f" {io:,}")
    # persistent state is never shared: each stateful module keeps its own between runs
    state = sum(m.state_bytes for m in modules)
    kept = f", state {state:,}" if state else ""
    return (f"total: {flash}; RAM {workspace + io + state:,} B (workspace {workspace:,}, {how}"
            f"inputs/outputs{inside}{kept})")
