"""What the benchmark records for one model (the JSON schema), and the output comparison.

Every field is always present in the JSON; a figure that does not apply or could not be
measured is null (e.g. onnxruntime for a .tflite model, arm sizes without arm-none-eabi-gcc),
and the reason is in `errors` when something failed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence

import numpy as np

RUNTIMES = ("tflite_micro", "litert", "onnxruntime")


@dataclass
class CompileTimes:
    cli_s: float | None = None   # `tvmc compile` subprocess wall time, Python start included
    api_s: float | None = None   # in-process `compile_model` wall time


@dataclass
class Latencies:
    """Median milliseconds per call (`samples`: how many timed calls each median is over)."""

    ours: float | None = None
    tflite_micro: float | None = None
    litert: float | None = None
    onnxruntime: float | None = None
    samples: dict[str, int] = field(default_factory=dict)


@dataclass
class Accuracy:
    """Largest difference of our outputs from `reference`'s: `unit` "abs" (float outputs,
    max absolute difference) or "lsb" (integer outputs, max difference in quantisation steps).
    `vs` has the same figure against every reference runtime that ran."""

    reference: str | None = None
    unit: str | None = None
    max_diff: float | None = None
    vs: dict[str, float] = field(default_factory=dict)


@dataclass
class Ram:
    """Bytes. `ours` = workspace + io + state; TFLite Micro's arena total (head: its planned
    tensors; its resource variables are in the arena too)."""

    workspace: int | None = None
    io: int | None = None
    state: int | None = None
    ours: int | None = None
    tflite_micro_arena: int | None = None
    tflite_micro_arena_head: int | None = None
    liveness_bound: int | None = None


@dataclass
class Sections:
    text: int
    rodata: int
    data: int
    bss: int


@dataclass
class Flash:
    """Bytes: constants (metadata), objects' sections on the host and on Cortex-M4, model file."""

    constants: int | None = None
    model_file: int | None = None
    host: Sections | None = None
    arm: Sections | None = None


@dataclass
class ModelResult:
    name: str
    file: str
    format: str
    compile: CompileTimes = field(default_factory=CompileTimes)
    latency_ms: Latencies = field(default_factory=Latencies)
    ratio: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(RUNTIMES))  # ours/theirs
    accuracy: Accuracy = field(default_factory=Accuracy)
    ram_bytes: Ram = field(default_factory=Ram)
    flash_bytes: Flash = field(default_factory=Flash)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def schema() -> dict[str, Any]:
    """The keys of a model's JSON object: nested dicts for nested records, None for leaves."""
    def keys_of(cls: type) -> dict[str, Any]:
        nested = {CompileTimes, Latencies, Accuracy, Ram, Flash}
        return {f.name: (keys_of(f.default_factory) if getattr(f, "default_factory", None) in nested
                         else None) for f in fields(cls)}
    return keys_of(ModelResult)


def ratios(latency: Latencies) -> dict[str, float | None]:
    """ours / theirs for each reference runtime (None when either side is missing)."""
    theirs = {name: getattr(latency, name) for name in RUNTIMES}
    return {name: (latency.ours / value if latency.ours is not None and value else None)
            for name, value in theirs.items()}


def max_diff(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray]) -> tuple[str, float]:
    """("lsb", steps) for integer outputs, else ("abs", max absolute difference), over all outputs."""
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} outputs vs {len(theirs)}")
    integer = all(np.issubdtype(np.asarray(t).dtype, np.integer) for t in theirs)
    worst = 0.0
    for a, b in zip(ours, theirs):
        a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
        if a.size != b.size:
            raise ValueError(f"output sizes differ: {a.size} vs {b.size}")
        kind = np.int64 if integer else np.float64
        worst = max(worst, float(np.abs(a.astype(kind) - b.astype(kind)).max(initial=0)))
    return ("lsb" if integer else "abs"), worst
