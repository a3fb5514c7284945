"""What each step of the program computes, and where the memory plan put every buffer: the
facts `tvmc report` draws (layer table, memory-plan picture), recorded in the archive.

MACs are counted on the operator's TIR before scheduling: each block that accumulates a
product (``acc = acc + a * b``, casts allowed) over reduction iterators adds the size of its
iteration domain. Weight bytes are the constants a step reads; activation bytes the tensors
it reads and writes that are not constants.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tvm
from tvm import s_tir, tirx

from ..model import LayerInfo, MemoryLayout, PlannedBuffer
from .memory_plan import MemoryPlan, _lifetimes, _merge_inplace
from .program import Buffer, Call, Constant, Output, Program, nbytes
from .tir_passes import OperatorSignature, op_name

_REDUCE = 2  # IterVar.iter_type of a commutative reduction

MACS_ATTR = "tvmc.macs"  # PrimFunc attribute: MACs of a kernel TIR cannot see into


def _has_product(expr: object) -> bool:
    if isinstance(expr, tirx.Mul):
        return True
    return isinstance(expr, tirx.Cast) and _has_product(expr.value)


def count_macs(func: tirx.PrimFunc) -> int:
    """Multiply-accumulates of one operator (0 when it has none or no analysable blocks);
    a kernel whose body is a call of C (kernels/cortex_m_dsp) declares its own (MACS_ATTR)."""
    declared = func.attrs.get(MACS_ATTR) if func.attrs is not None else None
    if declared is not None:
        return int(declared)
    try:
        sch = s_tir.Schedule(tvm.IRModule({"main": func}))
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
    except Exception:  # noqa: BLE001 - no block structure: nothing to count
        return 0
    total = 0
    for block_rv in blocks:
        block = sch.get(block_rv)
        if not any(int(iv.iter_type) == _REDUCE for iv in block.iter_vars):
            continue
        value = getattr(block.body, "value", None)
        if isinstance(value, tirx.Add) and (_has_product(value.a) or _has_product(value.b)):
            try:
                total += int(np.prod([int(iv.dom.extent) for iv in block.iter_vars],
                                     dtype=np.int64))
            except (TypeError, ValueError):
                continue
    return total


def _output_written(step: Call, program: Program) -> int | None:
    """The index of the model output a step writes straight into, if it does."""
    out = step.args[-1] if step.args else None
    if isinstance(out, Buffer) and out.index in program.buffer_outputs:
        return program.buffer_outputs[out.index]
    return out.index if isinstance(out, Output) else None


def describe_layers(relaxed: tvm.IRModule, program: Program,
                    signatures: dict[str, OperatorSignature],
                    output_names: Sequence[str] = ()) -> list[LayerInfo]:
    """One LayerInfo per operator call of `program`, in order. A layer the frontend did not
    name (or fusion renamed) that writes a model output takes that output's name."""
    layers = []
    names = program.step_names
    for step_index, step in enumerate(program.steps):
        if not isinstance(step, Call):
            continue
        func = relaxed[step.relax_name]
        shapes = [tuple(int(d) for d in p.ty.shape) for p in func.params]
        dtypes = [str(p.ty.dtype) for p in func.params]
        weights = activations = 0
        for loc, shape, dtype in zip(step.args, shapes, dtypes):
            size = nbytes(shape, dtype)
            if isinstance(loc, Constant):
                weights += size
            else:
                activations += size
        inputs = tuple(s for loc, s in zip(step.args[:-1], shapes[:-1])
                       if not isinstance(loc, Constant))
        name = names.get(step_index, "")
        written = _output_written(step, program)
        if not name and written is not None and written < len(output_names):
            name = output_names[written]
        layers.append(LayerInfo(
            step=step_index, function_name=signatures[step.relax_name].c_name,
            op=op_name(step.relax_name), input_shapes=inputs,
            output_shape=shapes[-1] if shapes else (), dtype=dtypes[-1] if dtypes else "",
            macs=count_macs(func), weight_bytes=weights, activation_bytes=activations,
            name=name))
    return layers


def memory_layout(program: Program, signatures: dict[str, OperatorSignature],
                  plan: MemoryPlan) -> MemoryLayout:
    """Every buffer of the plan as (first step, last step, offset, size), the bytes live at
    each step (tensors only, as the liveness bound counts them) and the bound itself."""
    io = plan.io_in_workspace
    buffers = []
    for (kind, index), interval in sorted(_lifetimes(program, signatures, io).items(),
                                          key=lambda item: (item[1].first, item[0])):
        offset = plan.offset(kind, index)
        if offset is None:
            continue
        buffers.append(PlannedBuffer("tensor" if kind == "buffer" else kind,
                                     interval.first, interval.last, offset, interval.size))
    steps = len(program.steps)
    live = [0] * steps
    merged = _lifetimes(program, signatures, io)
    _merge_inplace(program, signatures, merged)  # an in-place pair counts once, as in the bound
    for (kind, _), interval in merged.items():
        if kind != "scratch":
            for t in range(interval.first, min(interval.last, steps - 1) + 1):
                live[t] += interval.size
    return MemoryLayout(steps=steps, workspace_bytes=plan.workspace_bytes,
                        liveness_bound_bytes=plan.liveness_bound_bytes,
                        buffers=tuple(buffers), live_bytes=tuple(live))

