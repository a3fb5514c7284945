"""One static workspace per module: planned storage blocks, fresh tensors and operator scratch.

Operators run one after another, so every operator's scratch shares one region sized for the
largest of them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .program import Program

WORKSPACE_ALIGN = 16


def align_up(value: int, alignment: int = WORKSPACE_ALIGN) -> int:
    return (value + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class MemoryPlan:
    storage_offsets: tuple[int, ...]
    fresh_offsets: tuple[int | None, ...]    # None: written straight into an output
    scratch_offset: int
    workspace_bytes: int


def plan_memory(program: Program, scratch_bytes: int) -> MemoryPlan:
    offset = 0
    storage_offsets = []
    for size in program.storages:
        storage_offsets.append(offset)
        offset = align_up(offset + size)
    fresh_offsets: list[int | None] = []
    for index, size in enumerate(program.fresh):
        if index in program.fresh_outputs:
            fresh_offsets.append(None)
        else:
            fresh_offsets.append(offset)
            offset = align_up(offset + size)
    scratch_offset = offset
    offset = align_up(offset + scratch_bytes)
    return MemoryPlan(tuple(storage_offsets), tuple(fresh_offsets), scratch_offset, offset)
