"""How many times to run a model, and the Python-side timing loop used for the reference runtimes."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

MIN_SAMPLES = 5


@dataclass(frozen=True)
class TimingConfig:
    """Warm-up calls, then up to `repeats` timed calls, stopping early once the timed calls
    add up to `budget_s` seconds (but never before `MIN_SAMPLES` of them)."""

    warmup: int
    repeats: int
    budget_s: float


@dataclass(frozen=True)
class Latency:
    median_ms: float
    min_ms: float
    samples: int


def time_calls(prepare: Callable[[], None], call: Callable[[], object], config: TimingConfig) -> Latency:
    """Median wall time of `call()`; `prepare()` runs untimed before every call."""
    for _ in range(config.warmup):
        prepare()
        call()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < config.repeats:
        prepare()
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        samples.append(elapsed)
        spent += elapsed
        if spent > config.budget_s and len(samples) >= MIN_SAMPLES:
            break
    return Latency(statistics.median(samples) * 1e3, min(samples) * 1e3, len(samples))
