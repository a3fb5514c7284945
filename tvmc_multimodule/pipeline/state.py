"""Persistent state written back in place.

A stateful module's `main` takes each variable's value as an extra (last) parameter and
returns its new value as an extra (last) result; the runner points both at the same place in
the state buffer. That is only correct when every step reading the old value runs before the
first step touching the new one: `write_back_in_place` checks it per variable and, where it
does not hold, lets the new value be computed into the workspace and copied over the old one
after the last step (one memcpy of that variable per run).
"""
from __future__ import annotations

from typing import Mapping

from .program import Buffer, Call, Copy, Input, Output, Program, nbytes, step_locations
from .tir_passes import OperatorSignature


def _touches(step: object, loc: object) -> bool:
    return loc in step_locations(step)


def _elementwise(step: object, old: object, new: object,
                 signatures: Mapping[str, OperatorSignature]) -> bool:
    """The step reads `old` once and writes `new` element for element (inplace.py's check):
    each element is read before it is overwritten, so both may be one buffer."""
    if not isinstance(step, Call) or step.relax_name not in signatures:
        return False
    reads = [i for i, a in enumerate(step.args) if a == old]
    writes = [i for i, a in enumerate(step.args) if a == new]
    return (len(reads) == 1 and len(writes) == 1
            and (reads[0], writes[0]) in signatures[step.relax_name].inplace)


def write_back_in_place(program: Program, inputs: int, outputs: int,
                        signatures: Mapping[str, OperatorSignature] | None = None) -> list[bool]:
    """Make `program` (params: `inputs` model inputs then the states; results: `outputs`
    model outputs then the states) safe to run with each state's parameter and result in
    one buffer. Returns, per state, whether its new value is written in place. With the
    operators' `signatures`, an element-for-element operator may read the old value while
    writing the new one (an accumulator's ADD)."""
    states = len(program.input_types) - inputs
    in_place = []
    for k in range(states):
        old, new = Input(inputs + k), Output(outputs + k)
        # the state is left unchanged: nothing to write
        program.steps = [s for s in program.steps
                         if not (isinstance(s, Copy) and s.dst == new and s.src == old)]
        buffer = next((Buffer(b) for b, o in program.buffer_outputs.items()
                       if o == outputs + k), None)
        reads = [i for i, s in enumerate(program.steps) if _touches(s, old)]
        writes = [i for i, s in enumerate(program.steps)
                  if _touches(s, new) or (buffer is not None and _touches(s, buffer))]
        first = min(writes) if writes else None
        if not reads or first is None or max(reads) < first or (
                max(reads) == first and signatures is not None and buffer is not None
                and _elementwise(program.steps[first], old, buffer, signatures)):
            in_place.append(True)
            continue
        if buffer is not None:  # into the workspace, then over the old value at the end
            del program.buffer_outputs[buffer.index]
            shape, dtype = program.output_types[outputs + k]
            program.steps.append(Copy(new, buffer, nbytes(shape, dtype)))
        in_place.append(False)
    return in_place
