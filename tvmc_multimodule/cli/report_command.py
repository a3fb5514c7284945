"""`tvmc report ARCHIVE [-o report.html]`: what an archive costs and computes, per module.

Read from the archive only (metadata.json's `layers` and `memory_plan`, validated by
mlf/analysis.py, and the C sources for the code size): per module a layer table and the memory
plan, flash and RAM per module, and for several modules one shared arena (MAX) against
separate arenas (SUM). Without -o the tables are printed as text; with -o they are written as
one self-contained HTML page with inline SVG pictures (report_html.py).

Instructions per layer: a Cortex-M profile given with --profile (JSON, see docs/cli.md) adds
a column; without one the column is left out.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..model import LayerInfo, MemoryLayout
from . import options
from .report import code_size, format_table

MAX_PROFILE_BYTES = 16 << 20


def register_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="layer tables, memory plans, flash and RAM of an archive",
        description="Show what each module of a Model Library Format archive computes and\n"
                    "costs: layers (shapes, MACs, weights, activations), the memory plan,\n"
                    "flash and RAM. As text, or with -o as one self-contained HTML page.",
        epilog="examples:\n  tvmc report models.tar\n  tvmc report models.tar -o report.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", metavar="MLF", help="Model Library Format archive (.tar)")
    parser.add_argument("-o", "--output", metavar="HTML",
                        help="write an HTML page (inline SVG, no network) instead of text")
    parser.add_argument("--profile", metavar="JSON",
                        help="instructions per layer from a Cortex-M run: "
                             '{"<module>": {"<step>": instructions, ...}, ...}')
    options.add_verbose(parser)
    parser.set_defaults(func=drive_report)


# ----------------------------------------------------------------------------- data

@dataclass(frozen=True)
class ModuleSummary:
    """One module as the report shows it."""

    name: str
    model_file: str
    model_format: str
    workspace_bytes: int
    liveness_bound_bytes: int | None
    constants_bytes: int
    code_bytes: int | None
    io_bytes: int
    io_in_workspace: bool
    layers: list[LayerInfo]
    plan: MemoryLayout | None
    instructions: dict[int, int]        # step -> instructions (from --profile)
    state_bytes: int = 0                # persistent state (a streaming model's variables)

    @property
    def flash_bytes(self) -> int:
        return self.constants_bytes + (self.code_bytes or 0)

    @property
    def ram_bytes(self) -> int:
        """The workspace, plus the input and output buffers unless they live inside it, plus
        the persistent state."""
        return (self.workspace_bytes + (0 if self.io_in_workspace else self.io_bytes)
                + self.state_bytes)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


@dataclass(frozen=True)
class ArchiveReport:
    archive: str
    modules: list[ModuleSummary]
    shared_workspace: bool              # compiled with --workspace shared

    @property
    def arena_shared_bytes(self) -> int:
        return max((m.workspace_bytes for m in self.modules), default=0)

    @property
    def arena_separate_bytes(self) -> int:
        return sum(m.workspace_bytes for m in self.modules)


def _options(raw: dict[str, Any]) -> dict[str, Any]:
    value = raw.get("options")
    return value if isinstance(value, dict) else {}


def read_profile(path: str | None) -> dict[str, dict[int, int]]:
    """--profile: ``{"<module>": {"<step>": instructions}}``, checked."""
    if path is None:
        return {}
    try:
        if os.path.getsize(path) > MAX_PROFILE_BYTES:
            raise UsageError("--profile file is larger than 16 MiB", path=path)
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read --profile: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise UsageError("--profile must be a JSON object of modules", path=path)
    profile: dict[str, dict[int, int]] = {}
    for module, steps in data.items():
        if not isinstance(steps, dict):
            raise UsageError(f"--profile entry '{module}' must map steps to counts", path=path)
        counts = {}
        for step, count in steps.items():
            if (not str(step).isdigit() or isinstance(count, bool) or not isinstance(count, int)
                    or count < 0):
                raise UsageError(f"--profile '{module}': '{step}' -> {count!r} is not a step "
                                 "index and an instruction count", path=path)
            counts[int(step)] = count
        profile[str(module)] = counts
    return profile


def build_report(archive_path: str, profile: dict[str, dict[int, int]]) -> ArchiveReport:
    from ..mlf import load_model_library_format

    archive = load_model_library_format(archive_path)
    unknown = sorted(set(profile) - set(archive.modules))
    if unknown:
        raise UsageError(f"--profile names module(s) not in the archive: {', '.join(unknown)}",
                         hint="modules are: " + ", ".join(archive.modules))
    modules = []
    for name, loaded in archive.modules.items():
        opts = _options(loaded.raw)
        modules.append(ModuleSummary(
            name=name, model_file=os.path.basename(str(loaded.raw.get("model_file", ""))),
            model_format=str(loaded.raw.get("model_format", "")),
            workspace_bytes=loaded.workspace_size_bytes,
            liveness_bound_bytes=loaded.liveness_bound_bytes,
            constants_bytes=loaded.constants_size_bytes,
            code_bytes=code_size(loaded) if loaded.header is not None else None,  # type: ignore[arg-type]
            io_bytes=loaded.io_size_bytes,
            io_in_workspace=bool(opts.get("workspace_io", False)),
            layers=loaded.layers, plan=loaded.memory_layout,
            instructions=profile.get(name, {}), state_bytes=loaded.state_size_bytes))
    shared = any(_options(m.raw).get("workspace") == "shared" for m in archive.modules.values())
    return ArchiveReport(os.path.basename(archive_path), modules, shared)


# ----------------------------------------------------------------------------- text

def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


TEXT_NAME_CHARS = 48  # a layer name in the text table; the HTML page shows it whole


def printable(text: str) -> str:
    """A model's text made safe to show: every character that is not printable (controls,
    terminal escapes, bidirectional overrides, line breaks) as its Python escape, and a
    backslash doubled so the escapes stay unambiguous."""
    return "".join(c if c.isprintable() and c != "\\" else
                   c.encode("unicode_escape").decode("ascii") for c in text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def layer_rows(module: ModuleSummary,
               name_limit: int | None = TEXT_NAME_CHARS) -> tuple[list[str], list[list[str]]]:
    """The layer table; `name` is the model's name for the layer (printable(), cut at
    `name_limit` characters unless None)."""
    headers = ["step", "layer", "op", "function", "inputs", "output", "MACs", "weight B",
               "activation B"]
    with_profile = bool(module.instructions)
    if with_profile:
        headers.append("instructions")
    rows = []
    for layer in module.layers:
        name = printable(layer.name) if layer.name else "-"
        row = [str(layer.step), name if name_limit is None else _cut(name, name_limit),
               layer.op, layer.function_name,
               " ".join(shape_text(s) for s in layer.input_shapes),
               f"{shape_text(layer.output_shape)}:{layer.dtype}", str(layer.macs),
               str(layer.weight_bytes), str(layer.activation_bytes)]
        if with_profile:
            row.append(str(module.instructions.get(layer.step, "-")))
        rows.append(row)
    return headers, rows


def summary_rows(report: ArchiveReport) -> tuple[list[str], list[list[str]]]:
    headers = ["module", "file", "format", "layers", "MACs", "workspace B", "bound B",
               "constants B", "code B", "flash B", "RAM B"]
    rows = [[m.name, m.model_file, m.model_format, str(len(m.layers)), str(m.total_macs),
             str(m.workspace_bytes), "-" if m.liveness_bound_bytes is None
             else str(m.liveness_bound_bytes), str(m.constants_bytes),
             "-" if m.code_bytes is None else str(m.code_bytes), str(m.flash_bytes),
             str(m.ram_bytes)] for m in report.modules]
    return headers, rows


def plan_line(module: ModuleSummary) -> str:
    plan = module.plan
    if plan is None:
        return f"module {module.name}: no memory plan in the archive"
    peak_step = max(range(plan.steps), key=lambda t: plan.live_bytes[t], default=0)
    peak_live = plan.live_bytes[peak_step] if plan.live_bytes else 0
    return (f"memory plan of {module.name}: workspace {plan.workspace_bytes:,} B over "
            f"{plan.steps} steps, {len(plan.buffers)} buffers; liveness bound "
            f"{plan.liveness_bound_bytes:,} B; most bytes live at step {peak_step} "
            f"({peak_live:,} B)")


def arena_line(report: ArchiveReport) -> str:
    used = "shared" if report.shared_workspace else "separate"
    return (f"arena: one shared arena (MAX) {report.arena_shared_bytes:,} B vs separate "
            f"arenas (SUM) {report.arena_separate_bytes:,} B; this archive uses {used}")


def text_report(report: ArchiveReport) -> str:
    parts = [f"archive {report.archive}: {len(report.modules)} module(s)", "",
             format_table(*summary_rows(report))]
    if len(report.modules) > 1:
        parts += ["", arena_line(report)]
    for module in report.modules:
        parts += ["", f"module {module.name} ({module.model_file}): {len(module.layers)} "
                      f"layers, {module.total_macs:,} MACs"]
        if module.layers:
            parts.append(format_table(*layer_rows(module)))
        parts.append(plan_line(module))
    return "\n".join(parts)


# ----------------------------------------------------------------------------- command

def write_text_atomically(path: str, text: str) -> None:
    """With the archive writer's rules: a symbolic link is written through, a device or
    FIFO is never replaced (docs/cli.md, Output paths)."""
    from ..mlf.writer import write_atomically

    options.check_output_path(path)
    write_atomically(path, text.encode("utf-8"))


def drive_report(args: argparse.Namespace) -> int:
    missing = options.archive_problem(args.archive, directory_ok=True)
    if missing is not None:
        raise missing
    report = build_report(args.archive, read_profile(args.profile))
    if args.output is None:
        print(text_report(report))
        return 0
    from .report_html import html_report

    write_text_atomically(args.output, html_report(report))
    print(f"wrote {args.output}")
    return 0
