"""Firmware on QEMU: runs, the `tvmc-micro:` report lines, instruction counts.

QEMU is not cycle-accurate. With ``-icount shift=0`` its virtual clock advances 1 ns per
executed instruction, so the SysTick (at the board's core clock, e.g. 25 MHz on mps2) ticks
once per 1e9 / clock instructions (40 on mps2-an386): ticks * 1e9 / clock is an instruction
count (deterministic, to one tick), not a cycle count.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import BuildError, UsageError
from ..model import TensorInfo
from ..processes import child_options
from .project import Project, tensor_infos

QEMU = "qemu-system-arm"
RUN_TIMEOUT_S = 600
NS_PER_INSTRUCTION = 1  # -icount shift=0
_REPORT = re.compile(r"^tvmc-micro: (?:(operator) )?(.*)$")
_SAFE_ARG = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass
class Invoke:
    module: str
    number: int
    status: int
    ticks: int
    stack: int
    stack_size: int


@dataclass
class OperatorCall:
    module: str
    invoke: int
    index: int
    function: str
    ticks: int


@dataclass
class FirmwareRun:
    stdout: str
    invokes: list[Invoke] = field(default_factory=list)
    operators: list[OperatorCall] = field(default_factory=list)


def instructions(ticks: float, cpu_clock_hz: int) -> float:
    """SysTick ticks -> instructions under -icount shift=0."""
    return ticks * 1e9 / NS_PER_INSTRUCTION / cpu_clock_hz


def qemu_command(machine: str, elf: str, args: Sequence[str] = ()) -> list[str]:
    for arg in args:  # QEMU's option syntax gives ',' and '=' a meaning
        if not _SAFE_ARG.match(arg):
            raise UsageError(f"firmware argument '{arg}' has characters QEMU cannot pass")
    semihosting = ",".join(["enable=on", "target=native",
                            *(f"arg={a}" for a in ("firmware", *args))])
    return [QEMU, "-M", machine, "-display", "none", "-monitor", "none", "-serial", "none",
            "-icount", "shift=0", "-semihosting-config", semihosting, "-kernel",
            os.path.abspath(elf)]


def run_firmware(project: Project, elf: str, args: Sequence[str] = (), *, cwd: str | None = None,
                 timeout: int = RUN_TIMEOUT_S) -> FirmwareRun:
    """Run the ELF on the project's QEMU board; BuildError when it fails."""
    if not project.qemu_machine:
        raise UsageError(f"board {project.board} has no emulator",
                         hint="flash build/firmware.elf with your own tool")
    if shutil.which(QEMU) is None:
        raise BuildError(f"{QEMU} not found", hint="apt-get install qemu-system-arm")
    if not os.path.isfile(elf):
        raise BuildError("no firmware to run", path=elf,
                         hint="build it with 'tvmc micro build DIR'")
    command = qemu_command(project.qemu_machine, elf, args)
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False, **child_options())
    except subprocess.TimeoutExpired:
        raise BuildError(f"the firmware ran for more than {timeout} s on QEMU") from None
    result = parse_report(done.stdout)
    if done.returncode != 0:
        detail = _failure_line(done.stdout + "\n" + done.stderr) or f"exit status {done.returncode}"
        raise BuildError(f"the firmware failed on QEMU {project.qemu_machine}: {detail}")
    for invoke in result.invokes:
        if invoke.stack >= invoke.stack_size:  # the painted stack is used up to its last word
            raise BuildError(f"module {invoke.module} overflowed the {invoke.stack_size}-byte "
                             "stack (its results cannot be trusted)",
                             hint="create the project again with a larger --stack-size")
    return result


def _failure_line(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("error:") or "Lockup" in line or "failed" in line:
            return line.removeprefix("error:").strip()
    return ""


def parse_report(stdout: str) -> FirmwareRun:
    result = FirmwareRun(stdout=stdout)
    for line in stdout.splitlines():
        match = _REPORT.match(line.strip())
        if not match:
            continue
        fields = dict(item.split("=", 1) for item in match.group(2).split() if "=" in item)
        if match.group(1):
            result.operators.append(OperatorCall(fields["module"], int(fields["invoke"]),
                                                 int(fields["index"]), fields["function"],
                                                 int(fields["ticks"])))
        else:
            result.invokes.append(Invoke(fields["module"], int(fields["invoke"]),
                                         int(fields["status"]), int(fields["ticks"]),
                                         int(fields["stack"]), int(fields["stack_size"])))
    return result


def run_module(project: Project, elf: str, module: str, arrays: Sequence[np.ndarray],
               io_dir: str, invokes: int = 1) -> tuple[dict[str, np.ndarray], FirmwareRun]:
    """Run one module `invokes` times on the given inputs (files through semihosting); its
    outputs by model tensor name, in metadata shape, and the firmware's report."""
    entry = project.module(module)
    outputs: list[TensorInfo] = tensor_infos(entry.outputs)
    os.makedirs(io_dir, exist_ok=True)
    in_files = [f"in{i}.bin" for i in range(len(arrays))]
    out_files = [f"out{i}.bin" for i in range(len(outputs))]
    for name, array in zip(in_files, arrays):
        with open(os.path.join(io_dir, name), "wb") as fh:
            fh.write(np.ascontiguousarray(array).tobytes())
    run = run_firmware(project, elf, ["run", module, str(invokes), *in_files, *out_files],
                       cwd=io_dir)
    result = {}
    for tensor, name in zip(outputs, out_files):
        path = os.path.join(io_dir, name)
        data = np.fromfile(path, dtype=tensor.dtype) if os.path.exists(path) else np.array([])
        if data.size != int(np.prod(tensor.shape)):
            raise BuildError(f"the firmware wrote {data.size} values of '{tensor.name}', "
                             f"expected {int(np.prod(tensor.shape))}")
        result[tensor.name] = data.reshape(tensor.shape)
    return result, run
