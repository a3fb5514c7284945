"""Instructions per inference, footprint and stack of our C on an emulated Cortex-M4F
(QEMU mps2-an386), through the same project `tvmc micro` writes.

    python bench/cortex_m.py [--models FILE ...] [--repeat N] [--schedules scalar vector]

QEMU is not cycle-accurate, but with `-icount shift=0` its virtual clock advances 1 ns per
executed instruction, and the core's SysTick (25 MHz on this board) then ticks once per 40
instructions: the firmware reads it around the model's `run`, so the figure is an instruction
count (deterministic, +-40), good for comparing schedule variants and int8 against float on
the same core, not a latency. Each model is compiled with `-mcpu=cortex-m4` in each schedule
variant (scalar, the default there, and vector), put into a `tvmc micro` project for
mps2_an386 (arm-none-eabi-gcc -O2) and run on zero inputs: one warm-up, then N timed runs.
Footprint: code (.text) and constants (.rodata) of the module's objects, its workspace and
input/output buffers, and the stack peak (painted before the run, checked after).
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "models" / "tflite"
DEFAULT_MODELS = [SHARED / f"{m}_{k}.tflite" for m in
                  ("kws_dscnn", "vww_mobilenet_v1_025", "ic_resnet8", "ad_autoencoder")
                  for k in ("int8", "float32")]
BOARD = "mps2_an386"
TARGET = "c -mcpu=cortex-m4"
PER_FUNCTION = False  # profile per operator function instead of per operator type


def operator_type(function: str) -> str:
    """`tvmgen_m_dwconv2d_3` -> `dwconv2d`; fused float operators keep their fused name."""
    name = re.sub(r"^tvmgen_m_", "", function)
    return re.sub(r"(_\d+)+$", "", name)


def measure(path: Path, schedule: str, repeat: int, work: Path, profile: bool = False) -> dict:
    """Instructions per inference (mean of `repeat` runs after a warm-up), the module's
    footprint, its stack peak and the firmware's .text; `profile`: also instructions per
    operator type (from a second build that reads the timer around every operator call)."""
    from tvmc_multimodule import compile_model, export_model_library_format
    from tvmc_multimodule.micro import create_project, load_board
    from tvmc_multimodule.micro.emulator import instructions, run_module
    from tvmc_multimodule.micro.firmware import build, footprint

    module = compile_model(str(path), module_name="m", target=TARGET, schedule=schedule)
    archive = export_model_library_format(module, str(work / "m.tar"))
    project = create_project(str(work / "fw"), archive, load_board(BOARD))
    project, elf = build(str(work / "fw"))
    zeros = [np.zeros(t.shape, t.dtype) for t in module.inputs]
    _, run = run_module(project, elf, "m", zeros, str(work / "io"), invokes=1 + repeat)
    timed = run.invokes[1:]
    assert project.cpu_clock_hz
    fp = footprint(str(work / "fw"), project, elf)
    per_type: dict[str, float] = {}
    if profile:
        project, profiled = build(str(work / "fw"), profile=True)
        _, prun = run_module(project, profiled, "m", zeros, str(work / "io"), invokes=2)
        for call in prun.operators:
            if call.invoke == prun.invokes[-1].number:
                kind = call.function if PER_FUNCTION else operator_type(call.function)
                per_type[kind] = per_type.get(kind, 0.0) + instructions(call.ticks,
                                                                        project.cpu_clock_hz)
    return {"per_type": per_type,
            "instructions": instructions(sum(i.ticks for i in timed) / len(timed),
                                         project.cpu_clock_hz),
            "stack": max(i.stack for i in run.invokes), "module": fp.modules["m"],
            "text": fp.sections.get(".text", 0)}


def instructions(path: Path, schedule: str, repeat: int, work: Path) -> tuple[float, int]:
    """(instructions per inference, .text bytes of the firmware)."""
    result = measure(path, schedule, repeat, work)
    return result["instructions"], result["text"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs after one warm-up")
    parser.add_argument("--schedules", nargs="+", default=["scalar", "vector"],
                        choices=["scalar", "vector", "none"])
    args = parser.parse_args(argv)
    first = args.schedules[0]
    print(" ".join([f"{'model':30s}", *(f"{s + ' Minstr':>14s}" for s in args.schedules),
                    f"{'code B':>8s} {'const B':>9s} {'ws B':>8s} {'io B':>7s} {'stack B':>7s}"
                    f"   ({first})"]))
    for path in args.models:
        if not path.exists():
            print(f"{path.name}: missing", file=sys.stderr)
            continue
        results = {}
        for schedule in args.schedules:
            with tempfile.TemporaryDirectory(prefix="tvmc-m4-") as tmp:
                results[schedule] = measure(path, schedule, args.repeat, Path(tmp))
        m, stack = results[first]["module"], results[first]["stack"]
        print(" ".join([f"{path.stem:30s}",
                        *(f"{results[s]['instructions'] / 1e6:14.3f}" for s in args.schedules),
                        f"{m.code:8d} {m.constants:9d} {m.workspace:8d} {m.io:7d} {stack:7d}"]),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
