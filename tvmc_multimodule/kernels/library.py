"""A kernel library turns operator records (records.py) into kernels: a PrimFunc plus the
constants it reads, packed at compile time in the order its loops read them.

Every library answers for every operator: `PortableC` (portable/) is complete, and a library
for a particular core subclasses it and overrides the operators it speeds up. Adding a library
touches its own folder and the table in `__init__.py`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tvm import te, tirx

# a kernel (PrimFunc attribute) whose temporaries all go to the module's workspace, however
# small (smaller ones otherwise stay on the C stack): the buffers handed to CMSIS-NN are planned
SCRATCH_IN_WORKSPACE_ATTR = "tvmc.scratch_in_workspace"
MACS_ATTR = "tvmc.macs"  # read by pipeline/layers.py (a string: no import of another stage)


def extern_kernel(name: str, inputs: Sequence[tuple[tuple[int, ...], str]],
                  out_shape: Sequence[int], macs: int, scratch_bytes: int = 0) -> tirx.PrimFunc:
    """A PrimFunc whose body is one call `name(inputs..., out[, scratch])` of a C function
    with its buffers' pointers; `macs` recorded for the layer report (TIR cannot count inside
    the C); the scratch, when asked for, is an int8 allocation of the kernel."""
    import tvm.s_tir.stmt as sblock

    from .portable.nn import finish_func  # portable/ imports this module

    tensors = [te.placeholder(tuple(shape), dtype, name=f"in{i}")
               for i, (shape, dtype) in enumerate(inputs)]
    scratch = tirx.decl_buffer((scratch_bytes,), "int8", name="cmsis_nn_scratch")
    extra = [scratch.data] if scratch_bytes else []
    out = te.extern(tuple(out_shape), tensors, lambda ins, outs: tirx.call_extern(
        "int32", name, *[t.data for t in ins], outs[0].data, *extra), dtype="int8", name="out")
    func = te.create_prim_func([*tensors, out])
    if scratch_bytes:
        realize = func.body
        block = realize.block
        block = sblock.SBlock(block.iter_vars, block.reads, block.writes, block.name_hint,
                              block.body, block.init, [scratch], block.match_buffers,
                              block.annotations)
        func = func.with_body(sblock.SBlockRealize(realize.iter_values, realize.predicate,
                                                   block))
    return finish_func(func).with_attr(MACS_ATTR, int(macs))


def layer_name(prefix: str, kind: str, text: str) -> str:
    """The C name of a layer's function: `prefix` + `kind` + a hash of its text, so equal
    layers share one function."""
    return f"{prefix}{kind}_{hashlib.sha1(text.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Kernel:
    """`func`'s parameters: the activation inputs, then `constants` in order, output last."""

    func: tirx.PrimFunc
    constants: tuple[np.ndarray, ...]
    c_sources: tuple[tuple[str, str], ...] = ()  # (key, C the kernel calls): once per module
