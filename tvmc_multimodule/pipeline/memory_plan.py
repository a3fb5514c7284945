"""One offset plan over every intermediate tensor and every operator scratch of a module.

Each buffer lives from the step that first touches it to the step that last does. An operator
output may take over an input that dies at that operator when the operator is element-for-
element (see inplace.py). Offsets come from a greedy first-fit placement, the best of several
orderings (by size, by number of conflicts, by conflicting bytes), as TFLite Micro's and TVM's
USMP greedy planners do. The liveness bound, the largest sum of live bytes at any step, is a
lower bound for any placement of these lifetimes and is reported beside the plan.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .program import (Buffer, Call, Input, Output, Program, loop_ranges, nbytes,
                      step_locations)
from .tir_passes import OperatorSignature

WORKSPACE_ALIGN = 16


def align_up(value: int, alignment: int = WORKSPACE_ALIGN) -> int:
    return (value + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Interval:
    size: int
    first: int
    last: int

    def overlaps(self, other: "Interval") -> bool:
        return not (self.last < other.first or other.last < self.first)


@dataclass(frozen=True)
class MemoryPlan:
    buffer_offsets: tuple[int | None, ...]   # None: written straight into an output
    scratch_offsets: dict[int, int]          # step index -> offset of that call's scratch
    workspace_bytes: int
    liveness_bound_bytes: int
    inplace_reuses: int
    strategy: str
    # with the inputs and outputs in the workspace (tir.usmp.use_workspace_io): their offsets
    input_offsets: tuple[int, ...] = ()
    output_offsets: tuple[int, ...] = ()

    @property
    def io_in_workspace(self) -> bool:
        return bool(self.input_offsets or self.output_offsets)

    def offset(self, kind: str, index: int) -> int | None:
        """The workspace offset of a planned location ("buffer", "scratch" by step index,
        "input", "output"), or None where it has none (a buffer written into an output, a
        call without scratch)."""
        if kind == "scratch":
            return self.scratch_offsets.get(index)
        return {"buffer": self.buffer_offsets, "input": self.input_offsets,
                "output": self.output_offsets}[kind][index]


def _io_lifetimes(program: Program) -> dict[tuple[str, int], Interval]:
    """Inputs live from step 0 to their last use (the application writes them before the
    run), outputs from their first write to the end (it reads them after)."""
    end = max(0, len(program.steps) - 1)
    last_read: dict[int, int] = {}
    first_write: dict[int, int] = {}
    for step_index, step in enumerate(program.steps):
        for loc in step_locations(step):
            if isinstance(loc, Input):
                last_read[loc.index] = step_index
            output = (loc.index if isinstance(loc, Output)
                      else program.buffer_outputs.get(loc.index) if isinstance(loc, Buffer)
                      else None)
            if output is not None:
                first_write.setdefault(output, step_index)
    intervals = {}
    for i, (shape, dtype) in enumerate(program.input_types):
        intervals[("input", i)] = Interval(nbytes(shape, dtype), 0, last_read.get(i, 0))
    for i, (shape, dtype) in enumerate(program.output_types):
        intervals[("output", i)] = Interval(nbytes(shape, dtype), first_write.get(i, end), end)
    return intervals


def _lifetimes(program: Program, signatures: dict[str, OperatorSignature],
               io_in_workspace: bool = False) -> dict[tuple[str, int], Interval]:
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    intervals: dict[tuple[str, int], Interval] = {}
    for step_index, step in enumerate(program.steps):
        for loc in step_locations(step):
            if isinstance(loc, Buffer) and loc.index not in program.buffer_outputs:
                first.setdefault(loc.index, step_index)
                last[loc.index] = step_index
        if isinstance(step, Call) and signatures[step.relax_name].scratch_bytes:
            intervals[("scratch", step_index)] = Interval(
                signatures[step.relax_name].scratch_bytes, step_index, step_index)
    for index, start in first.items():
        intervals[("buffer", index)] = Interval(program.buffers[index], start, last[index])
    if io_in_workspace:
        intervals.update(_io_lifetimes(program))
    return _across_loops(program, intervals)


def _across_loops(program: Program, intervals: dict[tuple[str, int], Interval]
                  ) -> dict[tuple[str, int], Interval]:
    """A buffer that lives into or out of a loop (a value read by every iteration, a
    loop-carried value) lives through all of it: every iteration may read it again.
    Buffers of one iteration keep their own steps."""
    for begin, end in loop_ranges(program):  # innermost first
        for key, v in intervals.items():
            inside = begin <= v.first and v.last <= end
            if not inside and v.first <= end and begin <= v.last:
                intervals[key] = Interval(v.size, min(v.first, begin), max(v.last, end))
    return intervals


def _merge_inplace(program: Program, signatures: dict[str, OperatorSignature],
                   intervals: dict[tuple[str, int], Interval]) -> dict[tuple[str, int], tuple[str, int]]:
    """Let outputs take over inputs that die at the same step; returns output -> host buffer."""
    alias: dict[tuple[str, int], tuple[str, int]] = {}
    for step_index, step in enumerate(program.steps):
        if not isinstance(step, Call):
            continue
        for in_param, out_param in signatures[step.relax_name].inplace:
            src, dst = step.args[in_param], step.args[out_param]
            if not (isinstance(src, Buffer) and isinstance(dst, Buffer)):
                continue
            host, guest = ("buffer", src.index), ("buffer", dst.index)
            while host in alias:
                host = alias[host]
            if host not in intervals or guest not in intervals or host == guest:
                continue
            h, g = intervals[host], intervals[guest]
            if h.last != step_index or g.first != step_index or g.size > h.size:
                continue
            intervals[host] = Interval(h.size, h.first, g.last)
            del intervals[guest]
            alias[guest] = host
    return alias


def _place(order: list[tuple[str, int]], intervals: dict[tuple[str, int], Interval],
           alignment: int) -> tuple[dict[tuple[str, int], int], int]:
    offsets: dict[tuple[str, int], int] = {}
    for key in order:
        me = intervals[key]
        taken = sorted((offsets[k], intervals[k].size) for k in offsets if intervals[k].overlaps(me))
        candidate = 0
        for start, size in taken:
            if candidate + me.size <= start:
                break
            candidate = max(candidate, align_up(start + size, alignment))
        offsets[key] = candidate
    top = max((offsets[k] + intervals[k].size for k in offsets), default=0)
    return offsets, align_up(top, alignment)


def _orderings(intervals: dict[tuple[str, int], Interval]
               ) -> dict[str, Callable[[tuple[str, int]], tuple]]:
    def conflicts(key: tuple[str, int]) -> list[Interval]:
        return [v for k, v in intervals.items() if k != key and v.overlaps(intervals[key])]

    count = {k: len(conflicts(k)) for k in intervals}
    weight = {k: sum(v.size for v in conflicts(k)) for k in intervals}
    return {
        "size": lambda k: (-intervals[k].size, intervals[k].first, k),
        "conflicts": lambda k: (-count[k], -intervals[k].size, k),
        "conflicting_bytes": lambda k: (-weight[k], -intervals[k].size, k),
    }


TENSOR_KINDS = ("buffer", "input", "output")


def _live_bytes(intervals: dict[tuple[str, int], Interval], step: int,
                kinds: tuple[str, ...] = TENSOR_KINDS) -> int:
    return sum(v.size for k, v in intervals.items() if k[0] in kinds and v.first <= step <= v.last)


def liveness_bound(intervals: dict[tuple[str, int], Interval]) -> int:
    """The largest sum of tensor bytes live at one step (operator scratch not counted: it is
    a property of the schedule, not of the graph; inputs and outputs only when they are in
    the workspace)."""
    steps = {t for v in intervals.values() for t in (v.first, v.last)}
    return max((_live_bytes(intervals, t) for t in steps), default=0)


def scratch_at_peak(program: Program, signatures: dict[str, OperatorSignature],
                    tolerance: float) -> frozenset[str]:
    """Operators whose scratch pushes the live bytes of their step above `tolerance` x the
    liveness bound: schedules that need no scratch should be used for them."""
    intervals = _lifetimes(program, signatures)
    _merge_inplace(program, signatures, intervals)
    limit = tolerance * liveness_bound(intervals)
    names = set()
    for (kind, step), interval in intervals.items():
        if kind == "scratch" and _live_bytes(intervals, step) + interval.size > limit:
            names.add(program.steps[step].relax_name)  # type: ignore[union-attr]
    return frozenset(names)


def plan_memory(program: Program, signatures: dict[str, OperatorSignature],
                inplace: bool = True, alignment: int = WORKSPACE_ALIGN,
                io_in_workspace: bool = False) -> MemoryPlan:
    """Every tensor and scratch buffer at an offset that is a multiple of `alignment`;
    with `io_in_workspace` the inputs and outputs too (the workspace is then the module's
    only RAM)."""
    intervals = _lifetimes(program, signatures, io_in_workspace)
    alias = _merge_inplace(program, signatures, intervals) if inplace else {}
    best: tuple[int, str, dict[tuple[str, int], int]] | None = None
    for name, key in _orderings(intervals).items():
        offsets, total = _place(sorted(intervals, key=key), intervals, alignment)
        if best is None or total < best[0]:
            best = (total, name, offsets)
    total, strategy, offsets = best or (0, "empty", {})

    def offset_of(key: tuple[str, int]) -> int | None:
        while key in alias:
            key = alias[key]
        return offsets.get(key)

    buffer_offsets = tuple(None if i in program.buffer_outputs else offset_of(("buffer", i))
                           for i in range(len(program.buffers)))
    scratch = {k[1]: v for k, v in offsets.items() if k[0] == "scratch"}
    io = ((tuple(offsets[("input", i)] for i in range(len(program.input_types))),
           tuple(offsets[("output", i)] for i in range(len(program.output_types))))
          if io_in_workspace else ((), ()))
    return MemoryPlan(buffer_offsets, scratch, total, liveness_bound(intervals), len(alias),
                      strategy, *io)


def check_plan(program: Program, signatures: dict[str, OperatorSignature],
               plan: MemoryPlan) -> list[str]:
    """Independent check: buffers live at the same step never overlap in memory (in-place
    pairs excepted). Returns the violations found."""
    spans = []
    for key, interval in _lifetimes(program, signatures, plan.io_in_workspace).items():
        offset = plan.offset(*key)
        if offset is None:
            return [f"{key} has no offset"]
        if offset + interval.size > plan.workspace_bytes:
            return [f"{key} ends beyond the workspace"]
        spans.append((key, interval, offset))
    allowed = set()
    for step_index, step in enumerate(program.steps):
        if isinstance(step, Call):
            for i, o in signatures[step.relax_name].inplace:
                a, b = step.args[i], step.args[o]
                if isinstance(a, Buffer) and isinstance(b, Buffer):
                    allowed.add(frozenset({("buffer", a.index), ("buffer", b.index)}))
    problems = []
    for n, (k1, i1, o1) in enumerate(spans):
        for k2, i2, o2 in spans[n + 1:]:
            live_together = i1.overlaps(i2) and frozenset({k1, k2}) not in allowed
            if live_together and o1 < o2 + i2.size and o2 < o1 + i1.size:
                problems.append(f"{k1} and {k2} overlap")
    return problems

