"""The HTML page of `tvmc report -o`: one file, inline CSS and SVG, no script, no network.

Every string that comes from the archive goes through `html.escape` (the archive reader has
validated names already; escaping keeps the page safe even so); a layer's model name, any
text, is first made printable (report_command.printable) and shown whole.
"""
from __future__ import annotations

from html import escape

from ..model import MemoryLayout
from .report_command import (ArchiveReport, ModuleSummary, arena_line, layer_rows, plan_line,
                             summary_rows)

COLOURS = {"tensor": "#4e79a7", "scratch": "#f28e2b", "input": "#59a14f", "output": "#b07aa1"}
PLAN_W, PLAN_H, MARGIN_L, MARGIN_B, LIVE_W = 680, 300, 70, 30, 140
BAR_W, BAR_H = 520, 22

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
th { background: #eee; } td { overflow-wrap: anywhere; max-width: 420px; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
p.note { font-size: 12px; color: #555; } svg text { font-size: 11px; font-family: sans-serif; }
"""


# columns of counts, right-aligned with thousands separators; every other column is text,
# even when it looks like a number (a layer named "1000")
NUMBER_COLUMNS = frozenset({"step", "MACs", "weight B", "activation B", "instructions",
                            "layers", "workspace B", "bound B", "constants B", "code B",
                            "flash B", "RAM B"})


def _cell(header: str, value: str) -> str:
    if header in NUMBER_COLUMNS and value.isascii() and value.isdigit():
        return f'<td class="n">{int(value):,}</td>'
    return f"<td>{escape(value)}</td>"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(_cell(h, c) for h, c in zip(headers, row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _bars(title: str, items: list[tuple[str, int, str]], svg_id: str) -> str:
    """Horizontal bars: (label, bytes, colour) each."""
    top = max((v for _, v, _ in items), default=0) or 1
    height = BAR_H * len(items) + 24
    parts = [f'<svg id="{svg_id}" xmlns="http://www.w3.org/2000/svg" width="{BAR_W + 260}" '
             f'height="{height}" role="img"><title>{escape(title)}</title>']
    for i, (label, value, colour) in enumerate(items):
        y = 4 + i * BAR_H
        width = max(1.0, BAR_W * value / top)
        parts.append(f'<text x="0" y="{y + 15}">{escape(label)}</text>'
                     f'<rect x="150" y="{y}" width="{width:.1f}" height="{BAR_H - 6}" '
                     f'fill="{colour}"><title>{escape(label)}: {value:,} B</title></rect>'
                     f'<text x="{150 + width + 6:.1f}" y="{y + 15}">{value:,} B</text>')
    parts.append("</svg>")
    return "".join(parts)


def _plan_svg(module: ModuleSummary, plan: MemoryLayout) -> str:
    """Buffers as rectangles over step (x) and offset (y); the workspace top (the peak) as a
    red line; beside it the bytes live at each step, with the liveness bound dashed."""
    steps = max(1, plan.steps)
    top = max(plan.workspace_bytes, plan.liveness_bound_bytes, max(plan.live_bytes, default=0),
              1)
    sx, sy = PLAN_W / steps, (PLAN_H - 40) / top
    base = PLAN_H - MARGIN_B + 30

    def y_of(value: float) -> float:
        return base - value * sy

    width = MARGIN_L + PLAN_W + 30 + LIVE_W + 120
    parts = [f'<svg class="plan" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{PLAN_H + 40}" role="img"><title>memory plan of '
             f'{escape(module.name)}</title>',
             f'<rect x="{MARGIN_L}" y="{y_of(top):.1f}" width="{PLAN_W}" '
             f'height="{top * sy:.1f}" fill="#fafafa" stroke="#999"/>']
    for b in plan.buffers:
        x = MARGIN_L + b.first * sx
        w = max(1.0, (b.last - b.first + 1) * sx - 1)
        h = max(0.5, b.size * sy)
        parts.append(
            f'<rect class="buffer" x="{x:.1f}" y="{y_of(b.offset + b.size):.1f}" '
            f'width="{w:.1f}" height="{h:.1f}" fill="{COLOURS.get(b.kind, "#888")}" '
            f'fill-opacity="0.8" stroke="#fff" stroke-width="0.5"><title>{escape(b.kind)} '
            f'{b.size:,} B at offset {b.offset:,}, steps {b.first}-{b.last}</title></rect>')
    peak_y = y_of(plan.workspace_bytes)
    parts.append(f'<line class="peak" x1="{MARGIN_L}" x2="{MARGIN_L + PLAN_W}" y1="{peak_y:.1f}" '
                 f'y2="{peak_y:.1f}" stroke="#d62728" stroke-width="2"/>'
                 f'<text x="{MARGIN_L + 4}" y="{peak_y - 4:.1f}" fill="#d62728">peak: '
                 f'workspace {plan.workspace_bytes:,} B</text>')
    for frac in (0, 0.5, 1):
        value = int(top * frac)
        parts.append(f'<text x="{MARGIN_L - 6}" y="{y_of(value) + 4:.1f}" '
                     f'text-anchor="end">{value:,}</text>')
    parts.append(f'<text x="{MARGIN_L + PLAN_W / 2}" y="{base + 16}" text-anchor="middle">'
                 f'operator step (0-{plan.steps - 1}) &#8594;</text>'
                 f'<text x="12" y="{y_of(top / 2):.1f}" transform="rotate(-90 12 '
                 f'{y_of(top / 2):.1f})" text-anchor="middle">offset (B)</text>')
    # beside it: live bytes per step, and the liveness bound
    lx = MARGIN_L + PLAN_W + 30
    step_w = LIVE_W / steps
    points = []
    for t, live in enumerate(plan.live_bytes):
        points += [f"{lx + t * step_w:.1f},{y_of(live):.1f}",
                   f"{lx + (t + 1) * step_w:.1f},{y_of(live):.1f}"]
    parts.append(f'<rect x="{lx}" y="{y_of(top):.1f}" width="{LIVE_W}" height="{top * sy:.1f}" '
                 f'fill="#fafafa" stroke="#999"/>')
    if points:
        parts.append(f'<polyline class="live" points="{" ".join(points)}" fill="none" '
                     f'stroke="#4e79a7" stroke-width="1.5"/>')
    if plan.live_bytes:  # the step where the most bytes are live
        peak_step = max(range(len(plan.live_bytes)), key=lambda t: plan.live_bytes[t])
        parts.append(f'<circle class="peak-step" cx="{lx + (peak_step + 0.5) * step_w:.1f}" '
                     f'cy="{y_of(plan.live_bytes[peak_step]):.1f}" r="4" fill="#d62728">'
                     f'<title>most bytes live: {plan.live_bytes[peak_step]:,} B at step '
                     f'{peak_step}</title></circle>')
    bound_y = y_of(plan.liveness_bound_bytes)
    parts.append(f'<line class="bound" x1="{lx}" x2="{lx + LIVE_W}" y1="{bound_y:.1f}" '
                 f'y2="{bound_y:.1f}" stroke="#2ca02c" stroke-dasharray="4 3" stroke-width="2"/>'
                 f'<text x="{lx + LIVE_W + 4}" y="{bound_y + 4:.1f}" fill="#2ca02c">bound '
                 f'{plan.liveness_bound_bytes:,} B</text>'
                 f'<text x="{lx + LIVE_W / 2}" y="{base + 16}" text-anchor="middle">bytes live '
                 f'per step</text>')
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    items = "".join(f'<span style="display:inline-block;width:10px;height:10px;'
                    f'background:{c};margin:0 4px 0 12px"></span>{escape(k)}'
                    for k, c in COLOURS.items())
    return (f'<p class="note">{items}<span style="color:#d62728;margin-left:12px">'
            f'&#9472; peak (workspace size)</span><span style="color:#2ca02c;'
            f'margin-left:12px">- - liveness bound</span></p>')


def _module_section(module: ModuleSummary) -> str:
    parts = [f'<h2 id="m-{escape(module.name)}">Module {escape(module.name)} '
             f'<small>({escape(module.model_file)}, {escape(module.model_format)})</small></h2>',
             f"<p>{len(module.layers)} layers, {module.total_macs:,} MACs; flash "
             f"{module.flash_bytes:,} B, RAM {module.ram_bytes:,} B"
             f"{' (inputs and outputs inside the workspace)' if module.io_in_workspace else ''}"
             f"</p>", "<h3>Layers</h3>"]
    if module.layers:
        parts.append(_table(*layer_rows(module, name_limit=None)))
        if not module.instructions:
            parts.append('<p class="note">Instructions per layer: give a Cortex-M profile '
                         "with --profile to add them.</p>")
    else:
        parts.append('<p class="note">The archive has no layer table for this module.</p>')
    parts.append("<h3>Memory plan</h3>")
    if module.plan is not None:
        parts += [f"<p>{escape(plan_line(module))}</p>", _legend(),
                  _plan_svg(module, module.plan)]
    else:
        parts.append('<p class="note">The archive has no memory plan for this module.</p>')
    return "\n".join(parts)


def html_report(report: ArchiveReport) -> str:
    flash = [(m.name, m.flash_bytes, "#4e79a7") for m in report.modules]
    ram = [(m.name, m.ram_bytes, "#f28e2b") for m in report.modules]
    body = [f"<h1>tvmc report: {escape(report.archive)}</h1>",
            _table(*summary_rows(report)),
            "<h2>Flash per module</h2>", _bars("flash per module", flash, "flash-bars"),
            "<h2>RAM per module</h2>", _bars("RAM per module", ram, "ram-bars")]
    if len(report.modules) > 1:
        body += ["<h2>Shared arena vs separate arenas</h2>", f"<p>{escape(arena_line(report))}</p>",
                 _bars("workspace: shared vs separate",
                       [("shared (MAX)", report.arena_shared_bytes, "#59a14f"),
                        ("separate (SUM)", report.arena_separate_bytes, "#e15759")],
                       "arena-bars")]
    body += [_module_section(m) for m in report.modules]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>tvmc report: {escape(report.archive)}</title><style>{CSS}</style></head>"
            "<body>\n" + "\n".join(body) + "\n</body></html>\n")
