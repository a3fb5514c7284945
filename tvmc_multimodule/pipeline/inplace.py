"""Which operator outputs may overwrite one of the operator's inputs (in-place reuse).

Decided by a dataflow check on the operator's TIR, not by names: input X and output Y may share
memory when X is read in exactly one block, that block also is the only writer of Y, it is not a
reduction, both are accessed element-for-element at the block's own iterators (so element i of X
is read before element i of Y is written, and never again; a dimension of extent 1 may be
read at its index 0, as broadcasting kernels do), and both have the same shape and element
size. A kernel whose body is a call of C, which TIR cannot look into, declares its pairs
(INPLACE_ATTR).
"""
from __future__ import annotations

import tvm
from tvm import s_tir, tirx


# PrimFunc attribute: [[input parameter, output parameter], ...] a kernel written in C
# (kernels/cortex_m_dsp) declares element-for-element
INPLACE_ATTR = "tvmc.inplace"


def _at_iterator(index: object, iter_var: object) -> bool:
    """`index` is the block iterator itself, or 0 where the iterator only takes 0."""
    if isinstance(index, tirx.Var):
        return index.same_as(iter_var.var)  # type: ignore[attr-defined]
    return (isinstance(index, tirx.IntImm) and int(index) == 0
            and int(iter_var.dom.extent) == 1)  # type: ignore[attr-defined]


def _is_identity(region: list, iter_vars: list) -> bool:
    return len(region) == len(iter_vars) and all(
        _at_iterator(r.min, iv) and int(r.extent) == 1 for r, iv in zip(region, iter_vars))


def _accesses(func: tirx.PrimFunc) -> dict[str, list[tuple[str, bool, bool, int]]]:
    """param buffer name -> [(kind 'r'/'w', identity access, reduction block, block id)]."""
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    params = {p.name for p in func.params}
    found: dict[str, list[tuple[str, bool, bool, int]]] = {}
    for block_id, block_rv in enumerate(sch.get_child_blocks(sch.get_sblock("root"))):
        block = sch.get(block_rv)
        reduction = any(int(iv.iter_type) == 2 for iv in block.iter_vars)
        for kind, regions in (("r", block.reads), ("w", block.writes)):
            for access in regions:
                name = access.source.name
                if name in params:
                    ident = _is_identity(list(access.region), list(block.iter_vars))
                    found.setdefault(name, []).append((kind, ident, reduction, block_id))
    return found


def _param_layout(param: object) -> tuple[tuple[int, ...], int] | None:
    ty = param.ty  # type: ignore[attr-defined]
    try:
        return tuple(int(d) for d in ty.shape), tvm.DataType(str(ty.dtype)).bits
    except (TypeError, ValueError):
        return None


def inplace_pairs(func: tirx.PrimFunc) -> tuple[tuple[int, int], ...]:
    """(input parameter index, output parameter index) pairs that may share memory."""
    declared = func.attrs.get(INPLACE_ATTR) if func.attrs is not None else None
    if declared is not None:
        return tuple((int(i), int(o)) for i, o in declared)
    try:
        accesses = _accesses(func)
    except Exception:  # noqa: BLE001 - no analysable block structure: no in-place reuse
        return ()
    names = [p.name for p in func.params]
    pairs = []
    for i, x in enumerate(names):
        x_acc = accesses.get(x, [])
        if not x_acc or any(k != "r" or not ident or red for k, ident, red, _ in x_acc):
            continue
        blocks = {b for *_, b in x_acc}
        if len(blocks) != 1:
            continue
        for j, y in enumerate(names):
            y_acc = accesses.get(y, [])
            if i == j or not y_acc or _param_layout(func.params[i]) != _param_layout(func.params[j]):
                continue
            if all(k == "w" and ident and not red and b in blocks for k, ident, red, b in y_acc):
                pairs.append((i, j))
                break
    return tuple(pairs)
