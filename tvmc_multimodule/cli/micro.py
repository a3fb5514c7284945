"""`tvmc micro create-project | build | flash` and `tvmc run --device micro`.

The work is in `tvmc_multimodule.micro`; this module parses, validates, prints.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Any

from ..errors import BuildError, TvmcError, UsageError
from . import options

PROFILE_NOTE = ("QEMU counts instructions, not cycles (-icount shift=0: one instruction per "
                "virtual nanosecond); a real core takes at least as many cycles")


def register_parser(subparsers: argparse._SubParsersAction) -> None:
    from ..micro import board_names

    parser = subparsers.add_parser(
        "micro", help="Cortex-M firmware projects: create, build, flash (QEMU boards)",
        description="Cortex-M firmware from a Model Library Format archive: a standalone\n"
                    "project (Makefile, CMake, startup code, linker script, main.c), its build\n"
                    "with the footprint of every module, and runs on QEMU-emulated boards.",
        epilog="example:\n"
               "  tvmc micro create-project fw models.tar --board mps2_an386\n"
               "  tvmc micro build fw && tvmc micro flash fw\n"
               "  tvmc run --device micro fw --module kws --inputs in.npz -o out.npz --profile",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_verbose(parser)
    actions = parser.add_subparsers(title="micro commands", metavar="ACTION", dest="action")
    actions.required = True

    create = actions.add_parser("create-project", help="write a firmware project for a board")
    create.add_argument("project_dir", metavar="DIR", help="new project directory")
    create.add_argument("archive", metavar="MLF", help="Model Library Format archive (.tar)")
    create.add_argument("--board", required=True, choices=board_names(),
                        help="QEMU board (mps2_an386 Cortex-M4F, mps2_an500 Cortex-M7, "
                             "mps2_an505 Cortex-M33, mps3_an547 Cortex-M55) or generic")
    create.add_argument("--flash", metavar="ORIGIN:SIZE",
                        help="generic board: code memory, e.g. 0x08000000:1M")
    create.add_argument("--ram", metavar="ORIGIN:SIZE",
                        help="generic board: data memory, e.g. 0x20000000:256K")
    create.add_argument("--stack-size", type=int, default=16 * 1024, metavar="BYTES",
                        help="stack reserved at the top of RAM (default 16384)")
    create.add_argument("--force", action="store_true", help="replace a non-empty DIR")
    create.add_argument("--cmsis-nn-path", metavar="DIR",
                        help="CMSIS-NN checkout (github.com/ARM-software/CMSIS-NN) the firmware "
                             "builds; needed for archives compiled with --target \"cmsis-nn, c\"")
    options.add_verbose(create)
    create.set_defaults(func=drive_create)

    build = actions.add_parser("build", help="build the firmware, print its footprint")
    build.add_argument("project_dir", metavar="DIR")
    build.add_argument("--cmake", action="store_true", help="build with CMake instead of make")
    options.add_verbose(build)
    build.set_defaults(func=drive_build)

    flash = actions.add_parser("flash", help="run the firmware on the QEMU board (generic: how "
                                             "to flash it)")
    flash.add_argument("project_dir", metavar="DIR")
    options.add_verbose(flash)
    flash.set_defaults(func=drive_flash)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """`tvmc run` options for `--device micro` (the run command's hook)."""
    parser.add_argument("--device", choices=("host", "micro"), default="host",
                        help="host: build and run the archive's C here (default); micro: run "
                             "on the board of the tvmc micro project given instead of MLF")
    parser.add_argument("--profile", action="store_true",
                        help="(--device micro) instructions per inference and per operator, "
                             "stack peak, flash and RAM")
    parser.add_argument("--profile-json", metavar="JSON",
                        help="(--device micro) with --profile: also write the instructions of "
                             "each operator call as JSON, for 'tvmc report --profile'")
    if "--invokes" not in parser._option_string_actions:
        parser.add_argument("--invokes", type=int, default=1, metavar="N",
                            help="run the module N times in a row (state carries over); the "
                                 "outputs are the last run's")


# ----------------------------------------------------------------------------- create / build

def drive_create(args: argparse.Namespace) -> int:
    from ..micro import create_project, load_board, parse_region

    problems: list[TvmcError] = []
    missing = options.archive_problem(args.archive)
    if missing is not None:
        problems.append(missing)
    regions = {}
    for option in ("flash", "ram"):
        if getattr(args, option):
            try:
                regions[option] = parse_region(getattr(args, option), f"--{option}")
            except TvmcError as err:
                problems.append(err)
    options.raise_all(problems)
    project = create_project(args.project_dir, args.archive, load_board(args.board),
                             flash=regions.get("flash"), ram=regions.get("ram"),
                             stack_size=args.stack_size, force=args.force,
                             cmsis_nn_path=args.cmsis_nn_path)
    names = ", ".join(m.name for m in project.modules)
    print(f"project for {project.board} ({project.description}); {' '.join(project.cpu_flags)}")
    print(f"modules: {names}")
    print(f"wrote {args.project_dir} (build: tvmc micro build {args.project_dir}, or make -C "
          f"{args.project_dir})")
    return 0


def drive_build(args: argparse.Namespace) -> int:
    from ..micro.firmware import build, footprint, footprint_table, write_footprint

    project, elf = build(args.project_dir, cmake=args.cmake)
    result = footprint(args.project_dir, project, elf)
    path = write_footprint(args.project_dir, result)
    print(footprint_table(result))
    print(f"wrote {path}")
    return 0


def _built_elf(directory: str) -> str:
    """The ELF of the last `tvmc micro build` (footprint.json), else make's or CMake's."""
    from ..micro.firmware import FOOTPRINT_FILE

    candidates = ["build/firmware.elf", "build-cmake/firmware.elf"]
    try:
        with open(os.path.join(directory, FOOTPRINT_FILE)) as fh:
            candidates.insert(0, str(json.load(fh)["elf"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for candidate in candidates:
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise BuildError("the firmware is not built", path=directory,
                     hint=f"run 'tvmc micro build {directory}' first")


def drive_flash(args: argparse.Namespace) -> int:
    from ..micro import load_project
    from ..micro.emulator import instructions, run_firmware

    project = load_project(args.project_dir)
    elf = _built_elf(args.project_dir)
    if not project.qemu_machine:
        print(_generic_instructions(project, elf))
        return 0
    run = run_firmware(project, elf)
    print(run.stdout, end="" if run.stdout.endswith("\n") else "\n")
    assert project.cpu_clock_hz
    for invoke in run.invokes:
        print(f"{invoke.module}: {instructions(invoke.ticks, project.cpu_clock_hz):,.0f} "
              f"instructions, stack peak {invoke.stack:,} of {invoke.stack_size:,} B")
    print(f"({PROFILE_NOTE})")
    return 0


def _generic_instructions(project: Any, elf: str) -> str:
    flash, ram = project.flash.split(":"), project.ram.split(":")
    return "\n".join([
        f"board {project.board} has no emulator: flash {elf} with your part's tool.",
        f"  core {project.mcpu}; code at {flash[0]} ({flash[1]} B), data at {ram[0]} "
        f"({ram[1]} B)",
        f"  openocd -f <interface.cfg> -f <target.cfg> -c \"program {elf} verify reset exit\"",
        f"  pyocd flash -t <part> {elf}      or the vendor's tool (STM32CubeProgrammer, J-Link...)",
        f"  a raw image: arm-none-eabi-objcopy -O binary {elf} firmware.bin",
        "The firmware prints through semihosting: enable it in the debugger (openocd: 'arm "
        "semihosting enable') to see the results; board/startup.c is the place for the part's "
        "clock and its own interrupt vectors.",
    ])


# ----------------------------------------------------------------------------- run --device micro

def drive_run_on_device(args: argparse.Namespace) -> int:
    """`tvmc run --device micro DIR --module M [--inputs in.npz] [-o out.npz] [--profile]`."""
    from ..micro import load_project
    from ..micro.emulator import run_module
    from ..micro.firmware import build, footprint
    from ..micro.project import tensor_infos
    from . import run as host_run

    directory = args.archive
    invokes = getattr(args, "invokes", 1) or 1
    problems: list[TvmcError] = []
    if not os.path.isdir(directory):
        problems.append(UsageError("--device micro takes a tvmc micro project directory",
                                   path=directory,
                                   hint="create one with 'tvmc micro create-project'"))
    if args.inputs and not os.path.isfile(args.inputs):
        problems.append(UsageError("inputs file not found", path=args.inputs))
    if invokes < 1:
        problems.append(UsageError(f"--invokes {invokes}: N must be at least 1"))
    profile_json = getattr(args, "profile_json", None)
    if profile_json and not args.profile:
        problems.append(UsageError("--profile-json needs --profile"))
    if profile_json:
        try:
            options.check_output_path(profile_json)
        except TvmcError as err:
            problems.append(err)
    if args.outputs:
        try:
            options.check_output_path(args.outputs)
        except TvmcError as err:
            problems.append(err)
    options.raise_all(problems)
    project = load_project(directory)
    if args.module is None and len(project.modules) != 1:
        raise UsageError(f"the project holds {len(project.modules)} modules: choose one with "
                         "--module", path=directory,
                         hint=f"modules: {', '.join(m.name for m in project.modules)}")
    module = project.module(args.module or project.modules[0].name)
    inputs = tensor_infos(module.inputs)
    try:
        arrays = (host_run.match_inputs(host_run._load_npz(args.inputs), inputs) if args.inputs
                  else host_run.fill_inputs(inputs, args.fill_mode))
        _, elf = build(directory)
        with tempfile.TemporaryDirectory(prefix="tvmc-micro-") as tmp:
            outputs, run = run_module(project, elf, module.name, arrays, tmp, invokes)
            operators = None
            if args.profile:
                _, profile_elf = build(directory, profile=True)
                _, profiled = run_module(project, profile_elf, module.name, arrays,
                                         os.path.join(tmp, "profile"), invokes)
                operators = [c for c in profiled.operators if c.invoke == invokes]
    except TvmcError as err:
        raise options.locate_all(err, module=module.name, path=directory)
    if args.outputs:
        host_run.save_npz(outputs, args.outputs)
    host_run._print_results(outputs, args.print_top)
    if args.profile:
        print(profile_table(project, module.name, run, operators or [],
                            footprint(directory, project, elf)))
    if profile_json:
        write_profile_json(profile_json, project, module.name, operators or [])
    if args.outputs:
        print(f"wrote {args.outputs}")
    return 0


def write_profile_json(path: str, project: Any, module: str, operators: list) -> None:
    """{"<module>": {"<step>": instructions}}: the runner's step index of each operator call
    (TVMGEN_OPERATOR_CALL's index), the format `tvmc report --profile` reads."""
    from ..micro.emulator import instructions
    from ..mlf.writer import write_atomically

    counts = {str(c.index): int(round(instructions(c.ticks, project.cpu_clock_hz)))
              for c in operators}
    text = json.dumps({module: counts}, indent=1, sort_keys=True) + "\n"
    write_atomically(path, text.encode("utf-8"))


def profile_table(project: Any, module: str, run: Any, operators: list, fp: Any) -> str:
    from ..micro.emulator import instructions

    hz = project.cpu_clock_hz
    last = run.invokes[-1]
    mod = fp.modules[module]
    lines = [f"profile of {module} on {project.board} ({project.mcpu}); {PROFILE_NOTE}",
             "  invoke  instructions  stack peak B"]
    lines += [f"  {i.number:>6}  {instructions(i.ticks, hz):>12,.0f}  {i.stack:>12,}"
              for i in run.invokes]
    lines += [f"  stack size {last.stack_size:,} B; peak {max(i.stack for i in run.invokes):,} B",
              f"  flash {mod.flash:,} B: code {mod.code:,}, constants {mod.constants:,}",
              f"  RAM {mod.ram:,} B: workspace {mod.workspace:,}, inputs/outputs {mod.io:,}, "
              f"state {mod.state:,}, other {mod.other_ram:,} (firmware: flash {fp.flash:,} B, "
              f"RAM {fp.ram:,} B with the stack)"]
    if operators:
        total = sum(c.ticks for c in operators) or 1
        width = max(len(c.function) for c in operators)
        lines += ["per operator call (profiling build: the timer read around each call, "
                  f"resolution {instructions(1, hz):.0f} instructions):",
                  f"  {'#':>4}  {'operator':<{width}}  {'instructions':>12}  share"]
        lines += [f"  {c.index:>4}  {c.function:<{width}}  {instructions(c.ticks, hz):>12,.0f}"
                  f"  {100 * c.ticks / total:5.1f}%" for c in operators]
        lines.append(f"  {'':>4}  {'sum of operator calls':<{width}}  "
                     f"{instructions(total, hz):>12,.0f}")
    return "\n".join(lines)
