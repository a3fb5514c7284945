"""The `layers` and `memory_plan` keys of a module's metadata: written, and read back validated.

They are what `tvmc report` draws (docs/mlf-format.md, "Layers and memory plan"). An archive is
untrusted: every field is type- and range-checked when read, names must be C identifiers, and
the sizes are bounded, so a hostile archive cannot make the report misbehave (the report
escapes every string it prints as well). A layer's `name` is the model's own text (any
characters): the reader only bounds its length and requires valid Unicode; whoever shows it
escapes it (HTML, the terminal, names.c_text for C). An archive without the keys (another writer, an older
version) reads as having no layers and no plan.
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import OutputError
from ..model import LayerInfo, MemoryLayout, PlannedBuffer

ANALYSIS_VERSION = 1
MAX_STEPS = 100_000
MAX_RANK = 8
MAX_BYTES = 1 << 40
BUFFER_KINDS = ("tensor", "scratch", "input", "output")
MAX_NAME_CHARS = 1024  # a layer's model name; longer names are cut when written
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")
_DTYPE = re.compile(r"[a-z]+[0-9]{0,3}")


# ----------------------------------------------------------------------------- writing

def layers_entry(layers: list[LayerInfo]) -> list[dict[str, Any]]:
    return [{
        "activation_bytes": int(layer.activation_bytes),
        "dtype": layer.dtype,
        "function_name": layer.function_name,
        "input_shapes": [[int(d) for d in shape] for shape in layer.input_shapes],
        "macs": int(layer.macs),
        "name": layer.name[:MAX_NAME_CHARS],
        "op": layer.op,
        "output_shape": [int(d) for d in layer.output_shape],
        "step": int(layer.step),
        "weight_bytes": int(layer.weight_bytes),
    } for layer in layers]


def memory_plan_entry(layout: MemoryLayout) -> dict[str, Any]:
    return {
        "buffers": [{"first": b.first, "kind": b.kind, "last": b.last, "offset": b.offset,
                     "size": b.size} for b in layout.buffers],
        "live_bytes": [int(v) for v in layout.live_bytes],
        "liveness_bound_bytes": int(layout.liveness_bound_bytes),
        "steps": int(layout.steps),
        "version": ANALYSIS_VERSION,
        "workspace_size_bytes": int(layout.workspace_bytes),
    }


# ----------------------------------------------------------------------------- reading

class _Bad(ValueError):
    """A malformed field; turned into one OutputError naming the module."""


def _int(value: Any, what: str, low: int = 0, high: int = MAX_BYTES) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Bad(f"{what} must be an integer in [{low}, {high}], not {value!r:.40}")
    return value


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_RANK:
        raise _Bad(f"{what} must be a list of at most {MAX_RANK} dimensions")
    return tuple(_int(d, what, 0, 1 << 31) for d in value)


def _text(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _Bad(f"{what} {value!r:.60} is not a valid name")
    return value


def _raw_name(value: Any, what: str) -> str:
    """A model's layer name: any text of bounded length that encodes as UTF-8 (no lone
    surrogates, which JSON can carry); absent in archives written before names were kept."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
        raise _Bad(f"{what} must be a string of at most {MAX_NAME_CHARS} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(f"{what} is not valid Unicode") from None
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > MAX_STEPS:
        raise _Bad(f"{what} must be a list of at most {MAX_STEPS} entries")
    return value


def _layer(entry: Any, i: int) -> LayerInfo:
    if not isinstance(entry, dict):
        raise _Bad(f"layers[{i}] is not an object")
    return LayerInfo(
        step=_int(entry.get("step"), f"layers[{i}].step", 0, MAX_STEPS),
        function_name=_text(entry.get("function_name"), _IDENTIFIER, f"layers[{i}].function_name"),
        op=_text(entry.get("op"), _IDENTIFIER, f"layers[{i}].op"),
        input_shapes=tuple(_shape(s, f"layers[{i}].input_shapes")
                           for s in _list(entry.get("input_shapes"), f"layers[{i}].input_shapes")),
        output_shape=_shape(entry.get("output_shape"), f"layers[{i}].output_shape"),
        dtype=_text(entry.get("dtype"), _DTYPE, f"layers[{i}].dtype"),
        macs=_int(entry.get("macs"), f"layers[{i}].macs", 0, 1 << 50),
        weight_bytes=_int(entry.get("weight_bytes"), f"layers[{i}].weight_bytes"),
        activation_bytes=_int(entry.get("activation_bytes"), f"layers[{i}].activation_bytes"),
        name=_raw_name(entry.get("name"), f"layers[{i}].name"))


def _buffer(entry: Any, i: int, steps: int, workspace: int) -> PlannedBuffer:
    if not isinstance(entry, dict):
        raise _Bad(f"buffers[{i}] is not an object")
    kind = entry.get("kind")
    if kind not in BUFFER_KINDS:
        raise _Bad(f"buffers[{i}].kind must be one of {', '.join(BUFFER_KINDS)}")
    first = _int(entry.get("first"), f"buffers[{i}].first", 0, max(0, steps - 1))
    last = _int(entry.get("last"), f"buffers[{i}].last", first, max(0, steps - 1))
    size = _int(entry.get("size"), f"buffers[{i}].size", 0, workspace)
    offset = _int(entry.get("offset"), f"buffers[{i}].offset", 0, workspace - size)
    return PlannedBuffer(kind, first, last, offset, size)


def _memory_plan(entry: Any) -> MemoryLayout:
    if not isinstance(entry, dict):
        raise _Bad("memory_plan is not an object")
    if entry.get("version") != ANALYSIS_VERSION:
        raise _Bad(f"memory_plan version {entry.get('version')!r} is not {ANALYSIS_VERSION}")
    steps = _int(entry.get("steps"), "memory_plan.steps", 0, MAX_STEPS)
    workspace = _int(entry.get("workspace_size_bytes"), "memory_plan.workspace_size_bytes")
    live = tuple(_int(v, "memory_plan.live_bytes") for v in _list(entry.get("live_bytes"),
                                                                  "memory_plan.live_bytes"))
    if len(live) != steps:
        raise _Bad(f"memory_plan.live_bytes has {len(live)} entries for {steps} steps")
    buffers = tuple(_buffer(b, i, steps, workspace)
                    for i, b in enumerate(_list(entry.get("buffers"), "memory_plan.buffers")))
    return MemoryLayout(steps, workspace,
                        _int(entry.get("liveness_bound_bytes"), "memory_plan.liveness_bound_bytes"),
                        buffers, live)


def read_analysis(raw: dict[str, Any], origin: str,
                  module: str) -> tuple[list[LayerInfo], MemoryLayout | None]:
    """The module's layers and memory plan, validated; empty when the archive has none."""
    try:
        layers = [_layer(e, i) for i, e in enumerate(_list(raw.get("layers", []), "layers"))]
        plan = _memory_plan(raw["memory_plan"]) if "memory_plan" in raw else None
    except _Bad as exc:
        raise OutputError(f"metadata of module '{module}' is malformed: {exc}", path=origin,
                          module=module) from None
    return layers, plan
