"""The printed table: one row per model, plain text, aligned columns, `-` for no figure."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from results import ModelResult

Column = tuple[str, str, Callable[[Any], str]]  # group, heading, cell
NONE = "-"


def _num(value: float | None, fmt: str) -> str:
    return NONE if value is None else format(value, fmt)


def _bytes(value: int | None) -> str:
    return NONE if value is None else str(value)


def _diff(result: ModelResult) -> str:
    acc = result.accuracy
    if acc.max_diff is None:
        return NONE
    if acc.unit == "lsb":
        return f"{acc.max_diff:.0f} LSB"
    return f"{acc.max_diff:.1e}"


def _reference(result: ModelResult) -> str:
    short = {"tflite_micro": "tflm", "litert": "litert", "onnxruntime": "ort"}
    return short.get(result.accuracy.reference or "", NONE)


def _section(result: ModelResult, where: str, kind: str) -> str:
    sections = getattr(result.flash_bytes, where)
    return NONE if sections is None else str(getattr(sections, kind))


def columns() -> list[Column]:
    lat, ratio = "latency ms", "ours/theirs"
    return [
        ("", "model", lambda r: r.name),
        ("compile s", "cli", lambda r: _num(r.compile.cli_s, ".2f")),
        ("compile s", "api", lambda r: _num(r.compile.api_s, ".2f")),
        (lat, "ours", lambda r: _num(r.latency_ms.ours, ".3f")),
        (lat, "tflm", lambda r: _num(r.latency_ms.tflite_micro, ".3f")),
        (lat, "litert", lambda r: _num(r.latency_ms.litert, ".3f")),
        (lat, "ort", lambda r: _num(r.latency_ms.onnxruntime, ".3f")),
        (ratio, "/tflm", lambda r: _num(r.ratio.get("tflite_micro"), ".2f")),
        (ratio, "/litert", lambda r: _num(r.ratio.get("litert"), ".2f")),
        (ratio, "/ort", lambda r: _num(r.ratio.get("onnxruntime"), ".2f")),
        ("output", "diff", _diff),
        ("output", "vs", _reference),
        ("ram B", "ours", lambda r: _bytes(r.ram_bytes.ours)),
        ("ram B", "tflm", lambda r: _bytes(r.ram_bytes.tflite_micro_arena)),
        ("ram B", "bound", lambda r: _bytes(r.ram_bytes.liveness_bound)),
        ("flash B", "const", lambda r: _bytes(r.flash_bytes.constants)),
        ("flash B", "x86 text", lambda r: _section(r, "host", "text")),
        ("flash B", "x86 ro", lambda r: _section(r, "host", "rodata")),
        ("flash B", "m4 text", lambda r: _section(r, "arm", "text")),
        ("flash B", "m4 ro", lambda r: _section(r, "arm", "rodata")),
        ("flash B", "file", lambda r: _bytes(r.flash_bytes.model_file)),
    ]


def _groups(cols: Sequence[Column]) -> list[tuple[str, list[int]]]:
    """Consecutive columns with the same group: (group, column indices)."""
    groups: list[tuple[str, list[int]]] = []
    for index, (group, _, _) in enumerate(cols):
        if groups and groups[-1][0] == group:
            groups[-1][1].append(index)
        else:
            groups.append((group, [index]))
    return groups


def _fit_groups(groups: Sequence[tuple[str, list[int]]], widths: list[int]) -> None:
    """Widen the last column of a group whose heading is wider than its columns."""
    for group, indices in groups:
        span = sum(widths[i] for i in indices) + 2 * (len(indices) - 1)
        widths[indices[-1]] += max(0, len(group) - span)


def _group_line(groups: Sequence[tuple[str, list[int]]], widths: Sequence[int]) -> str:
    cells = []
    for group, indices in groups:
        span = sum(widths[i] for i in indices) + 2 * (len(indices) - 1)
        cells.append(group.center(span) if group else " " * span)
    return "  ".join(cells).rstrip()


def render(results: Sequence[Any], cols: Sequence[Column] | None = None) -> str:
    """The table as text: group headings, headings, a rule, one row per result (figures
    right-aligned). `cols`: another table's columns (default: bench/run.py's)."""
    cols = columns() if cols is None else cols
    body = [[cell(r) for _, _, cell in cols] for r in results]
    widths = [max([len(heading), *(len(row[i]) for row in body)])
              for i, (_, heading, _) in enumerate(cols)]
    groups = _groups(cols)
    _fit_groups(groups, widths)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([_group_line(groups, widths), line([h for _, h, _ in cols]), rule,
                      *(line(row) for row in body)])
