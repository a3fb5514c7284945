"""TVM 0.18 tvmc command lines: each old compile option mapped onto ours, or refused in one line.

microTVM tutorials wrote ``--target-c-mcpu=cortex-m4 --runtime-crt-system-lib 1
--pass-config tir.usmp.enable=1``. Every such option is declared to argparse with tvmc's
arity, so its value is never mistaken for the model file, and is then either mapped (target
options, AOT alignments, the layout, USMP), accepted with a note saying why it changes
nothing, or refused with the reason it does not apply. A refused option is reported with the
command line's other problems.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import TvmcError, UsageError
from ..target import CMSIS_NN, KNOWN_OPTIONS, LIBRARY_KINDS

# tvmc options that do not apply here: flag -> (takes a value?, why not)
_BUILD_ELSEWHERE = ("the archive holds C sources: build them with your own toolchain "
                    "(templates/host/Makefile takes CC=...)")
_NO_TUNING = "schedules are rule-based (docs/architecture.md): there is nothing to tune"
_FIXED_PASSES = "the pass list is fixed (docs/architecture.md)"
_NO_FLOAT16 = ("float16 has no portable C type on the targets and would change the results: "
               "quantise to int8 instead")
_ONE_POOL = ("each module's tensors are planned in one workspace; --workspace shared gives "
             "one arena for all modules, --pass-config tir.usmp.use_workspace_io=1 puts the "
             "inputs and outputs in it")
REFUSED: dict[str, tuple[bool, str]] = {
    "--cross-compiler": (True, _BUILD_ELSEWHERE),
    "--cross-compiler-options": (True, _BUILD_ELSEWHERE),
    "--dump-code": (True, "the generated C is in the archive (codegen/host/src/), the Relax "
                          "module in src/<module>.relax"),
    "--dump-offloads": (True, "nothing is offloaded: every operator is generated C"),
    "--tuning-records": (True, _NO_TUNING),
    "--disabled-pass": (True, _FIXED_PASSES),
    "--print-pass-times": (False, _FIXED_PASSES + "; -v prints each module's time"),
    "--print-ir-before": (True, _FIXED_PASSES + "; the archive keeps the Relax module"),
    "--print-ir-after": (True, _FIXED_PASSES + "; the archive keeps the Relax module"),
    "--use-vm": (False, "the AOT executor is the only one: a microcontroller runs no VM"),
    "--mixed-precision": (False, _NO_FLOAT16),
    "--mixed-precision-ops": (True, _NO_FLOAT16),
    "--mixed-precision-calculation-type": (True, _NO_FLOAT16),
    "--mixed-precision-acc-type": (True, _NO_FLOAT16),
    "--workspace-pools": (True, _ONE_POOL),
    "--workspace-pools-targets": (True, _ONE_POOL),
    "--workspace-pools-size-hint-bytes": (True, _ONE_POOL),
    "--workspace-pools-clock-frequency-hz": (True, _ONE_POOL),
    "--workspace-pools-read-bandwidth-bytes-per-cycle": (True, _ONE_POOL),
    "--workspace-pools-write-bandwidth-bytes-per-cycle": (True, _ONE_POOL),
    "--workspace-pools-read-latency-cycles": (True, _ONE_POOL),
    "--workspace-pools-write-latency-cycles": (True, _ONE_POOL),
    "--workspace-pools-target-burst-bytes": (True, _ONE_POOL),
    "--runtime-cpp-system-lib": (True, "only the crt runtime is supported"),
    "--executor-graph-link-params": (True, "only the aot executor is supported"),
}

LAYOUTS = ("NCHW", "NHWC")
# --desired-layout-ops that ConvertLayout can act on here (tvmc's Relay names); qnn.conv2d is
# accepted because quantised convolutions run on the NHWC integer kernels whatever is asked
LAYOUT_OPS = {"nn.conv2d": "relax.nn.conv2d", "nn.conv2d_transpose": "relax.nn.conv2d_transpose",
              "qnn.conv2d": None}
USMP_ALGORITHMS = ("greedy_by_size", "greedy_by_conflicts", "hill_climb")
USMP_PREFIX = "tir.usmp."
# TVM 0.18 target kinds whose names hold a dash (the rest is "KIND-OPTION")
_DASHED_KINDS = ("cmsis-nn", "ethos-u", "ethos-n", "vitis-ai", "clml-opencl")
_TARGET_OPTION = re.compile(r"--target-(?P<rest>[A-Za-z0-9_-]+)")


class _KeyValue(argparse.Action):
    """Collects ``--target-c-mcpu=V`` style options as (option name, value) pairs."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((self.metavar_name, values))
        setattr(namespace, self.dest, items)

    def __init__(self, *args: Any, metavar_name: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.metavar_name = metavar_name


def add_legacy_options(parser: argparse.ArgumentParser) -> None:
    """tvmc 0.18's compile options that `add_compile_options` does not declare itself."""
    group = parser.add_argument_group(
        "TVM 0.18 tvmc options", "mapped onto the options above (see docs/cli.md); "
        "--target-c-OPTION=VALUE is --target 'c -OPTION=VALUE'")
    for option in sorted(KNOWN_OPTIONS):
        group.add_argument(f"--target-c-{option}", dest="target_c_options", action=_KeyValue,
                           metavar_name=option, help=argparse.SUPPRESS)
    for option in sorted(LIBRARY_KINDS[CMSIS_NN]):  # with "cmsis-nn" in --target
        group.add_argument(f"--target-cmsis-nn-{option}", dest="target_cmsis_nn_options",
                           action=_KeyValue, metavar_name=option, help=argparse.SUPPRESS)
    group.add_argument("--executor-aot-link-params", metavar="{1}",
                       help="accepted: constants are always in the generated C")
    group.add_argument("--executor-aot-workspace-byte-alignment", metavar="N",
                       help="same as --target 'c -workspace-byte-alignment=N'")
    group.add_argument("--executor-aot-constant-byte-alignment", metavar="N",
                       help="same as --target 'c -constants-byte-alignment=N'")
    group.add_argument("--runtime-crt-system-lib", metavar="{0,1}",
                       help="accepted; changes nothing: the C API needs no function registry")
    group.add_argument("--desired-layout", metavar="{NCHW,NHWC}",
                       help="layout of the float convolutions (default: NHWC from -O1)")
    group.add_argument("--desired-layout-ops", metavar="OPS",
                       help="comma-separated operators --desired-layout applies to "
                            "(default: nn.conv2d)")
    for flag, (takes_value, _) in REFUSED.items():
        dest = "refused_" + flag.lstrip("-").replace("-", "_")
        if takes_value:
            parser.add_argument(flag, dest=dest, help=argparse.SUPPRESS)
        else:
            parser.add_argument(flag, dest=dest, action="store_true", help=argparse.SUPPRESS)


@dataclass
class LegacyMapping:
    """What the old options amount to: target options, settings, notes and problems."""

    target_options: dict[str, str] = field(default_factory=dict)
    library_options: dict[str, dict[str, str]] = field(default_factory=dict)  # cmsis-nn's
    desired_layout: str | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[TvmcError] = field(default_factory=list)


def map_legacy_options(args: argparse.Namespace) -> LegacyMapping:
    out = LegacyMapping()
    for flag, (_, reason) in REFUSED.items():
        value = getattr(args, "refused_" + flag.lstrip("-").replace("-", "_"), None)
        if value not in (None, False):
            out.problems.append(UsageError(f"{flag} is not supported: {reason}"))
    for name, value in getattr(args, "target_c_options", None) or []:
        _set_target_option(out, out.target_options, name, value, f"--target-c-{name}")
    for name, value in getattr(args, "target_cmsis_nn_options", None) or []:
        _set_target_option(out, out.library_options.setdefault(CMSIS_NN, {}), name, value,
                           f"--target-cmsis-nn-{name}")
    _map_executor_options(args, out)
    _map_runtime_option(args, out)
    _map_layout(args, out)
    return out


def _set_target_option(out: LegacyMapping, options: dict[str, str], name: str, value: str,
                       flag: str) -> None:
    """`options[name] = value` (a target's or a library's options), a problem when an earlier
    flag gave it another value."""
    if name in options and options[name] != value:
        out.problems.append(UsageError(f"{flag}={value} contradicts an earlier "
                                       f"-{name}={options[name]}"))
    options[name] = value


def _map_executor_options(args: argparse.Namespace, out: LegacyMapping) -> None:
    link = getattr(args, "executor_aot_link_params", None)
    if link is not None and link.lower() not in ("1", "true"):
        out.problems.append(UsageError(
            f"--executor-aot-link-params {link} is not supported: the constants are always "
            "part of the generated C", hint="drop the option or give 1"))
    for flag, option in (("workspace_byte_alignment", "workspace-byte-alignment"),
                         ("constant_byte_alignment", "constants-byte-alignment")):
        value = getattr(args, f"executor_aot_{flag}", None)
        if value is not None:
            _set_target_option(out, out.target_options, option, value,
                               f"--executor-aot-{flag.replace('_', '-')}")


def _map_runtime_option(args: argparse.Namespace, out: LegacyMapping) -> None:
    value = getattr(args, "runtime_crt_system_lib", None)
    if value is None:
        return
    if value.lower() not in ("0", "1", "true", "false"):
        out.problems.append(UsageError(f"--runtime-crt-system-lib takes 0 or 1, not '{value}'"))
        return
    out.notes.append(f"--runtime-crt-system-lib {value} changes nothing: the application "
                     "calls tvmgen_<name>_run directly, so there is no function registry "
                     "(system library) to build either way")


def _map_layout(args: argparse.Namespace, out: LegacyMapping) -> None:
    layout = getattr(args, "desired_layout", None)
    ops_text = getattr(args, "desired_layout_ops", None)
    ops = [op for op in re.split(r"[\s,]+", ops_text) if op] if ops_text else None
    if layout is None:
        if ops:
            out.problems.append(UsageError("--desired-layout-ops needs --desired-layout"))
        return
    if layout not in LAYOUTS:
        out.problems.append(UsageError(f"--desired-layout {layout}: choose NCHW or NHWC"))
        return
    unknown = [op for op in ops or [] if op not in LAYOUT_OPS]
    if unknown:
        out.problems.append(UsageError(
            f"--desired-layout-ops: cannot change the layout of {', '.join(unknown)}",
            hint=f"give some of {', '.join(LAYOUT_OPS)}"))
        return
    out.desired_layout = layout
    if layout == "NHWC" and (ops is None or "nn.conv2d" in ops):
        out.notes.append("--desired-layout NHWC: float convolutions are converted to NHWC "
                         "at -O1 and above anyway; quantised ones always run on NHWC kernels")
    elif layout == "NCHW":
        out.notes.append("--desired-layout NCHW: float convolutions keep NCHW (slower C than "
                         "the default NHWC); quantised ones still run on NHWC integer kernels")


# ----------------------------------------------------------------------------- USMP

@dataclass
class UsmpMapping:
    pass_config: dict[str, object]            # the remaining (TVM) options
    workspace_io: bool = False
    notes: list[str] = field(default_factory=list)
    problems: list[TvmcError] = field(default_factory=list)


def map_usmp(configs: dict[str, object]) -> UsmpMapping:
    """``tir.usmp.*`` (TVM's Unified Static Memory Planner) onto our memory planner."""
    out = UsmpMapping({k: v for k, v in configs.items() if not k.startswith(USMP_PREFIX)})
    usmp = {k[len(USMP_PREFIX):]: v for k, v in configs.items() if k.startswith(USMP_PREFIX)}
    planned = "the workspace is planned by tvmc-multimodule's own planner (greedy first fit, " \
              "best of three orderings, reported beside the liveness bound), not by TVM's USMP"
    for name, value in usmp.items():
        full = f"--pass-config {USMP_PREFIX}{name}={value}"
        if name == "enable":
            if value not in (1, True):
                out.problems.append(UsageError(f"{full} is not supported: {planned}, always"))
            else:
                out.notes.append(f"{full}: {planned}")
        elif name == "algorithm":
            if value not in USMP_ALGORITHMS:
                out.problems.append(UsageError(f"{full}: unknown USMP algorithm",
                                               hint="TVM's were " + ", ".join(USMP_ALGORITHMS)))
            else:
                out.notes.append(f"{full}: {planned}")
        elif name == "use_workspace_io":
            if value not in (0, 1, True, False):
                out.problems.append(UsageError(f"{full}: give 1 or 0"))
            out.workspace_io = value in (1, True)
        else:
            out.problems.append(UsageError(
                f"{full} is not supported", hint=f"of TVM's USMP options, {USMP_PREFIX}enable, "
                f"{USMP_PREFIX}algorithm and {USMP_PREFIX}use_workspace_io are understood"))
    return out


# ----------------------------------------------------------------------------- argv

def join_target_values(argv: list[str]) -> list[str]:
    """``--target-KIND-OPTION VALUE`` -> ``--target-KIND-OPTION=VALUE``.

    Every tvmc target option took a value; joined, an option of a kind we do not declare
    (``--target-llvm-mcpu``) stays one unknown token instead of handing its value to MODEL.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return out + argv[i:]
        if (_TARGET_OPTION.fullmatch(token) and i + 1 < len(argv)
                and not argv[i + 1].startswith("-")):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def unknown_option_error(token: str) -> UsageError:
    """One line for an option argparse does not know, naming the option itself."""
    flag, _, value = token.partition("=")
    match = _TARGET_OPTION.fullmatch(flag)
    if match:
        rest = match["rest"]
        kind = next((k for k in _DASHED_KINDS if rest.startswith(k + "-")),
                    rest.split("-", 1)[0])
        if rest.startswith("c-"):
            return UsageError(f"{flag}: unknown option '-{rest[2:]}' for target 'c'",
                              hint="known options: " + ", ".join(sorted(KNOWN_OPTIONS)))
        if kind in LIBRARY_KINDS:
            return UsageError(f"{flag}: unknown option '-{rest[len(kind) + 1:]}' for target "
                              f"'{kind}'", hint="known options: "
                              + ", ".join(sorted(LIBRARY_KINDS[kind])))
        return UsageError(f"{flag}: target '{kind}' is not supported: only 'c' (plain C) is",
                          hint="use --target-c-OPTION or --target 'c -OPTION=VALUE'")
    return UsageError(f"unknown option '{flag}'")
