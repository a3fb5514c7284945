"""Instructions per inference, footprint and stack of our C on an emulated Cortex-M4F
(QEMU mps2-an386; --board: another emulated DSP core), through the project `tvmc micro` writes.

    python bench/cortex_m.py [--models FILE ...] [--repeat N] [--schedules scalar vector]
                             [--profile] [--board mps2_an500|mps2_an505|mps3_an547]
                             [--tflm-results DIR]

QEMU is not cycle-accurate, but with `-icount shift=0` its virtual clock advances 1 ns per
executed instruction, and the core's SysTick (25 MHz on this board) then ticks once per 40
instructions: the firmware reads it around the model's `run`, so the figure is an instruction
count (deterministic, +-40), good for comparing schedule variants and int8 against float on
the same core, not a latency. Each model is compiled with `-mcpu=cortex-m4` in each schedule
variant (scalar, the default there, and vector), put into a `tvmc micro` project for
mps2_an386 (arm-none-eabi-gcc -O2) and run on zero inputs: one warm-up, then N timed runs.
Footprint: code (.text) and constants (.rodata) of the module's objects, its workspace and
input/output buffers, and the stack peak (painted before the run, checked after).
On -mcpu=cortex-m4 the scalar schedule builds int8 models on the Cortex-M DSP kernel library
(kernels/cortex_m_dsp). TFLite Micro's figures on the same emulated core (reference kernels
and CMSIS-NN: instructions, per operator type, code beyond the common firmware base) are
printed beside ours when ../shared/reference/tflm-m4/results is present. `--profile`: also
instructions per operator type (a second build reading the timer around every operator).
"ours via CMSIS-NN": the same model compiled with `--target "cmsis-nn, c -mcpu=cortex-m4"`
(int8 operators as CMSIS-NN calls, kernels/cmsis_nn), the project building CMSIS-NN from
../shared/vendor/CMSIS-NN (the commit TFLite Micro pins; skipped when absent); its code is the
module's plus the CMSIS-NN functions linked (from the firmware's link map).
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
CMSIS_TARGET = "cmsis-nn, c -mcpu=cortex-m4"
CMSIS_NN = REPO.parent / "shared" / "vendor" / "CMSIS-NN"
CMSIS = "cmsis"  # the pseudo-schedule of the CMSIS-NN build (scalar schedule, CMSIS-NN calls)
PER_FUNCTION = False  # profile per operator function instead of per operator type


def operator_type(function: str) -> str:
    """`tvmgen_m_dwconv2d_3` -> `dwconv2d`; fused float operators keep their fused name."""
    name = re.sub(r"^tvmgen_m_", "", function)
    return re.sub(r"(_\d+)+$", "", name)


def measure(path: Path, schedule: str, repeat: int, work: Path, profile: bool = False,
            board: str = BOARD) -> dict:
    """Instructions per inference (mean of `repeat` runs after a warm-up), the module's
    footprint, its stack peak and the firmware's .text; `profile`: also instructions per
    operator type (from a second build that reads the timer around every operator call).
    `board`: an emulated board of tvmc_multimodule/micro/boards, compiled for its core."""
    from tvmc_multimodule import compile_model, export_model_library_format
    from tvmc_multimodule.micro import create_project, load_board
    from tvmc_multimodule.micro.emulator import instructions, run_module
    from tvmc_multimodule.micro.firmware import build, footprint

    cmsis = schedule == CMSIS
    target = (CMSIS_TARGET if cmsis else TARGET).replace("cortex-m4", load_board(board).cpu)
    module = compile_model(str(path), module_name="m", target=target,
                           schedule="scalar" if cmsis else schedule)
    archive = export_model_library_format(module, str(work / "m.tar"))
    project = create_project(str(work / "fw"), archive, load_board(board),
                             cmsis_nn_path=str(CMSIS_NN) if module.external_dependencies
                             else None)
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
            "text": fp.sections.get(".text", 0),
            "library": library_bytes(work / "fw" / "build" / "firmware.map")}


def library_bytes(link_map: Path) -> dict[str, int]:
    """.text and .rodata bytes the firmware links from CMSIS-NN's library (the link map's
    input sections of libcmsis-nn.a); zeros without it."""
    sizes = {".text": 0, ".rodata": 0}
    if link_map.exists():
        pattern = re.compile(r"^ (\.text|\.rodata)\S*\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+"
                             r"\S*libcmsis-nn\.a", re.M)
        for kind, size in pattern.findall(link_map.read_text()):
            sizes[kind] += int(size, 16)
    return sizes


def instructions(path: Path, schedule: str, repeat: int, work: Path) -> tuple[float, int]:
    """(instructions per inference, .text bytes of the firmware)."""
    result = measure(path, schedule, repeat, work)
    return result["instructions"], result["text"]


TFLM_RESULTS = REPO.parent / "shared" / "reference" / "tflm-m4" / "results"
TFLM_BASE_TEXT = 31_484  # startup, newlib printf, semihosting (README: the empty firmware)
TFLM_OPERATORS = {"conv2d": "CONV_2D", "dwconv2d": "DEPTHWISE_CONV_2D", "add": "ADD",
                  "fully_connected": "FULLY_CONNECTED", "avg_pool2d": "AVERAGE_POOL_2D",
                  "softmax": "SOFTMAX", "mean": "MEAN", "max_pool2d": "MAX_POOL_2D"}


def tflm_figures(results: Path = TFLM_RESULTS) -> tuple[dict, dict]:
    """TFLite Micro's figures on the same emulated core, when the reference measurement
    (../shared/reference/tflm-m4 for the M4, its scripts rebuilt for another core) is
    present: ({(model, kernels): row}, {(model, kernels, operator type): Minstr})."""
    totals: dict = {}
    for kernels in ("ref", "cmsis_nn"):
        path = results / f"results_{kernels}.tsv"
        if path.exists():
            lines = [line.split("\t") for line in path.read_text().splitlines()]
            for row in lines[1:]:
                totals[(row[0], kernels)] = dict(zip(lines[0], row))
    per_op: dict = {}
    profile = results / "profile.txt"
    if profile.exists():
        for line in profile.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 5 and parts[2] != "TOTAL":
                per_op[(parts[0], parts[1], parts[2])] = float(parts[4])
    return totals, per_op


def _print_operators(stem: str, ours: dict[str, float], per_op: dict,
                     via_cmsis: dict[str, float] | None) -> None:
    def cell(value: float | None, width: int = 12) -> str:
        return f"{'-':>{width}s}" if value is None else f"{value:{width}.3f}"

    for kind, count in sorted(ours.items(), key=lambda kv: -kv[1]):
        op = TFLM_OPERATORS.get(kind, kind)
        ref, cmsis = per_op.get((stem, "ref", op)), per_op.get((stem, "cmsis_nn", op))
        mine = None if via_cmsis is None or kind not in via_cmsis else via_cmsis[kind] / 1e6
        print(f"    {kind:22s} {count / 1e6:10.3f}{cell(mine, 14)}{cell(ref)}{cell(cmsis)}")


def _via_footprint(via: dict | None) -> str:
    """Code (module + CMSIS-NN .text), constants (module + CMSIS-NN .rodata), workspace and
    stack of the CMSIS-NN build."""
    if not via:
        return ""
    m, lib = via["module"], via["library"]
    return (f"{m.code + lib['.text']:8d} {m.constants + lib['.rodata']:9d} {m.workspace:8d} "
            f"{via['stack']:7d}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs after one warm-up")
    parser.add_argument("--schedules", nargs="+", default=["scalar", "vector"],
                        choices=["scalar", "vector", "none"])
    parser.add_argument("--profile", action="store_true",
                        help="also instructions per operator type (first schedule)")
    parser.add_argument("--board", default=BOARD,
                        help="emulated board (its core: -mcpu): mps2_an386 (M4F), mps2_an500 "
                             "(M7), mps2_an505 (M33), mps3_an547 (M55)")
    parser.add_argument("--tflm-results", type=Path, default=None,
                        help="TFLite Micro's results_{ref,cmsis_nn}.tsv for this board's core "
                             "(default: ../shared/reference/tflm-m4/results on mps2_an386)")
    args = parser.parse_args(argv)
    first = args.schedules[0]
    tflm = args.tflm_results or (TFLM_RESULTS if args.board == BOARD else None)
    totals, per_op = tflm_figures(tflm) if tflm else ({}, {})
    with_cmsis = (CMSIS_NN / "Include" / "arm_nnfunctions.h").is_file()
    from tvmc_multimodule.micro import load_board
    board = load_board(args.board)
    print(f"Minstr per inference on QEMU {board.qemu_machine} ({board.cpu}, -icount shift=0); "
          "scalar = the Cortex-M DSP kernels for int8, via CMSIS-NN = ours with "
          '--target "cmsis-nn, c" (int8 only), TFLM = TFLite Micro (reference kernels, '
          "CMSIS-NN)" + ("" if with_cmsis else
                         f"; ours via CMSIS-NN: not built ({CMSIS_NN} absent)"))
    print(" ".join([f"{'model':30s}", *(f"{s + ' Minstr':>14s}" for s in args.schedules),
                    f"{'via CMSIS-NN':>12s}",
                    f"{'TFLM ref':>9s} {'TFLM+CMSIS':>10s} {'ours/CMSIS':>10s}",
                    f"{'code B':>8s} {'TFLM code':>9s} {'const B':>9s} {'file B':>8s}",
                    f"{'ws B':>8s} {'io B':>7s} {'stack B':>7s}   ({first})",
                    f"{'code B':>8s} {'const B':>9s} {'ws B':>8s} {'stack B':>7s}"
                    "   (via CMSIS-NN: module + CMSIS-NN linked)"]))
    for path in args.models:
        if not path.exists():
            print(f"{path.name}: missing", file=sys.stderr)
            continue
        results = {}
        int8 = "int8" in path.stem
        for schedule in [*args.schedules, *([CMSIS] if with_cmsis and int8 else [])]:
            with tempfile.TemporaryDirectory(prefix="tvmc-m4-") as tmp:
                results[schedule] = measure(
                    path, schedule, args.repeat, Path(tmp),
                    profile=args.profile and schedule in (first, CMSIS), board=args.board)
        via = results.get(CMSIS)
        m, stack = results[first]["module"], results[first]["stack"]
        ref, cmsis = totals.get((path.stem, "ref"), {}), totals.get((path.stem, "cmsis_nn"), {})
        ours = results[first]["instructions"] / 1e6
        ratio = f"{ours / float(cmsis['warm_Minstr']):9.2f}x" if cmsis else f"{'-':>10s}"
        tflm_text = (cmsis or ref).get("text")  # whole firmware: minus the common base
        tflm_code = str(int(tflm_text) - TFLM_BASE_TEXT) if tflm_text else "-"
        print(" ".join([f"{path.stem:30s}",
                        *(f"{results[s]['instructions'] / 1e6:14.3f}" for s in args.schedules),
                        f"{via['instructions'] / 1e6:12.3f}" if via else f"{'-':>12s}",
                        f"{ref.get('warm_Minstr', '-'):>9s} {cmsis.get('warm_Minstr', '-'):>10s}",
                        ratio, f"{m.code:8d} {tflm_code:>9s} {m.constants:9d}",
                        f"{path.stat().st_size:8d} {m.workspace:8d} {m.io:7d} {stack:7d}",
                        _via_footprint(via)]),
              flush=True)
        if args.profile:
            print(f"    {'operator type':22s} {'ours':>10s}{'via CMSIS-NN':>14s}"
                  f"{'TFLM ref':>12s}{'TFLM+CMSIS':>12s}")
            _print_operators(path.stem, results[first]["per_type"], per_op,
                             via["per_type"] if via else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
