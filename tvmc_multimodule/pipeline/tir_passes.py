"""TIR passes: every operator becomes a plain C function with pointer arguments.

- Buffer parameters become data pointers (DeclBuffer in the body), the function stays private
  so MakePackedAPI leaves it alone: `int32_t tvmgen_m_op(float* a, float* b)`.
- Operator temporaries that TVM would allocate with TVMBackendAllocWorkspace are rebound to an
  extra `uint8_t* scratch` parameter, so the generated code needs nothing but libm.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import tirx

from ..errors import UnsupportedError
from ..names import unique_c_names
from ..kernels.library import SCRATCH_IN_WORKSPACE_ATTR
from ..kernels.portable.nn import KERNEL_ATTR
from .inplace import _accesses, inplace_pairs

# smaller temporaries stay on the C stack (TVM's kMaxStackAlloca)
MAX_STACK_ALLOCA = 1024
SCRATCH_ALIGN = 16
SCRATCH_PARAM = "tvmgen_scratch"


@dataclass(frozen=True)
class OperatorSignature:
    """How the AOT runner calls one lowered operator."""

    c_name: str
    params: tuple[tuple[str, str], ...]   # (parameter name, dtype) of the tensor arguments
    scratch_bytes: int                    # >0: an extra trailing scratch pointer argument
    inplace: tuple[tuple[int, int], ...] = ()   # (input, output) params that may share memory


@dataclass(frozen=True)
class LoweredOperators:
    host_module: tvm.IRModule            # ready for codegen
    signatures: dict[str, OperatorSignature]   # keyed by the Relax GlobalVar name


# C names of the module's API beside its operators (tvmgen_<module>_<name>)
_API_NAMES = ("run", "run_with_workspace", "run_with_state", "reset_state", "workspace",
              "state", "inputs", "outputs")


def op_name(relax_name: str) -> str:
    """``fused_conv2d1_add_relu`` -> ``conv2d_add_relu``: the operators a function fuses,
    without the numbering TVM's passes add."""
    parts = relax_name.split("_")
    if parts and parts[0] == "fused":
        parts = parts[1:]
    cleaned = [p.rstrip("0123456789") for p in parts if not p.isdigit()]
    return "_".join(p for p in cleaned if p) or relax_name


def _written(func: tirx.PrimFunc) -> set[str]:
    try:
        return {name for name, accesses in _accesses(func).items()
                if any(kind == "w" for kind, *_ in accesses)}
    except Exception:  # noqa: BLE001 - no block structure: the destination is last
        return set()


def _call_order(relax_mod: tvm.IRModule) -> dict[str, int]:
    """Operator name -> the position of its first call in `main` (numbering follows the
    model: the first conv2d_add_relu is `conv2d_add_relu`, the next `conv2d_add_relu_1`)."""
    order: dict[str, int] = {}
    main = relax_mod.functions.get(relax_mod.get_global_var("main")) \
        if "main" in [g.name_hint for g in relax_mod.functions] else None
    blocks = getattr(getattr(main, "body", None), "blocks", [])
    for block in blocks:
        for binding in block.bindings:
            op = getattr(binding.value, "op", None)
            if isinstance(op, tvm.ir.GlobalVar):
                order.setdefault(op.name_hint, len(order))
            for arg in getattr(binding.value, "args", []):  # call_tir(gvar, ...)
                if isinstance(arg, tvm.ir.GlobalVar):
                    order.setdefault(arg.name_hint, len(order))
    return order


def readable_param_names(func: tirx.PrimFunc, relax_name: str) -> list[str]:
    """The operator's parameter names as C shows them. Hand-written kernels keep theirs
    (`x, w, bias, mult, shift, out`); functions TVM made (legalised or fused) name their
    parameters after the model tensors they first met and TVM's temporaries (`lv3`,
    `param_0`, `compute_intermediate`), misleading wherever the function is reused: they
    become `x`, `weights`/`bias`/`constant` (the fused constants) and `out`."""
    names = [p.name for p in func.params]
    attrs = func.attrs if func.attrs is not None else {}
    if KERNEL_ATTR in attrs or not (relax_name.startswith("fused_") or "op_pattern" in attrs):
        return names
    written = _written(func) or {names[-1]}
    ops = op_name(relax_name).split("_")
    readable = []
    for param in func.params:
        if param.name in written:
            readable.append("out")
        elif re.fullmatch(r"param_\d+", param.name):
            try:
                wide = sum(1 for d in param.ty.shape if int(d) > 1) >= 2
            except (TypeError, ValueError):
                wide = False
            readable.append("weights" if wide else "bias" if "add" in ops else "constant")
        else:
            readable.append("x")
    return readable


def c_param_names(names: list[str]) -> list[str]:
    """The C names of an operator's pointer parameters, from its TIR parameter names:
    tensor names are not C names (`gpu_0/data_0`), and one tensor may be passed twice."""
    return unique_c_names([name + "_data" for name in names], "arg")


def _to_pointer_params(func: tirx.PrimFunc, names: list[str]) -> tirx.PrimFunc:
    pointers, decls = [], []
    c_names = c_param_names(names)
    for param, c_name in zip(func.params, c_names):
        buf_type = param.ty
        if not isinstance(buf_type, tirx.BufferType):
            raise UnsupportedError(f"operator parameter '{param}' has a symbolic shape")
        ptr = tirx.Var(c_name, tvm.ir.PointerType(buf_type.dtype))
        pointers.append(ptr)
        decls.append(tirx.DeclBuffer(param, data=ptr))
    lowered = tirx.PrimFunc(pointers, tirx.SeqStmt(decls + [func.body]),
                            tvm.ir.PrimType("int32"), func.attrs)
    if lowered.attrs is not None and "global_symbol" in lowered.attrs:
        lowered = lowered.without_attr("global_symbol")
    return lowered


def _buffer_bytes(buf_type: object) -> int:
    try:
        count = int(np.prod([int(x) for x in buf_type.shape]))  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return -1  # symbolic size
    return count * max(1, tvm.DataType(str(buf_type.dtype)).bits // 8)  # type: ignore[attr-defined]


def _align(value: int, alignment: int = SCRATCH_ALIGN) -> int:
    return (value + alignment - 1) // alignment * alignment


def _lift_scratch(func: tirx.PrimFunc) -> tuple[tirx.PrimFunc, int]:
    """After StorageRewrite, large temporaries are top-level AllocBuffer statements: give each
    an offset inside one trailing scratch parameter."""
    body = func.body
    stmts = list(body.seq) if isinstance(body, tirx.SeqStmt) else [body]
    scratch = tirx.Var(SCRATCH_PARAM, tvm.ir.PointerType(tvm.ir.PrimType("uint8")))
    smallest = 1 if func.attrs and SCRATCH_IN_WORKSPACE_ATTR in func.attrs else MAX_STACK_ALLOCA
    offset, new_stmts = 0, []
    for stmt in stmts:
        if isinstance(stmt, tirx.AllocBuffer):
            buf_type = stmt.buffer.ty
            size = _buffer_bytes(buf_type)
            if size >= smallest and str(buf_type.storage_scope) in ("global", ""):
                new_stmts.append(tirx.DeclBuffer(
                    stmt.buffer, data=tirx.ptr_byte_offset(scratch, offset, str(buf_type.dtype))))
                offset = _align(offset + size)
                continue
        new_stmts.append(stmt)
    if offset == 0:
        return func, 0
    return tirx.PrimFunc(list(func.params) + [scratch], tirx.SeqStmt(new_stmts), func.ret_type,
                         func.attrs), offset


def _finish(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """CPU device context (LowerTVMBuiltin needs it) and `return 0` after the body."""
    if func.attrs and "tirx.is_entry_func" in func.attrs:
        # a one-function module otherwise gets a `__tvm_ffi_main` wrapper
        func = func.without_attr("tirx.is_entry_func")
    int32 = lambda v: tirx.IntImm("int32", v)  # noqa: E731
    body = tirx.AttrStmt("default", "device_type", int32(1), func.body)
    body = tirx.AttrStmt("default", "device_id", int32(0), body)
    return func.with_body(tirx.SeqStmt([body, tirx.Return(int32(0))]))


def lower_operators(relax_mod: tvm.IRModule, prefix: str, target: tvm.target.Target,
                    pass_config: dict[str, object] | None = None) -> LoweredOperators:
    """Rename every PrimFunc to `<prefix><name>` and lower it to host TIR."""
    from tvm.s_tir.pipeline import default_s_tir_pipeline, finalize_host_passes
    from tvm.tirx.build import split_host_device_mods

    funcs, renamed, inplace = {}, {}, {}
    order = _call_order(relax_mod)
    prims = sorted(((g, f) for g, f in relax_mod.functions.items()
                    if isinstance(f, tirx.PrimFunc)),
                   key=lambda item: (order.get(item[0].name_hint, len(order)), item[0].name_hint))
    # named for what they compute (`conv2d_add_relu`, `_1`...), not TVM's fusion counters
    c_names = unique_c_names([op_name(g.name_hint) for g, _ in prims], "op", _API_NAMES)
    for (gvar, func), c_name in zip(prims, c_names):
        c_name = prefix + c_name
        params = readable_param_names(func, gvar.name_hint)
        renamed[gvar.name_hint] = (c_name, tuple((name, str(p.ty.dtype))
                                                 for name, p in zip(params, func.params)))
        inplace[gvar.name_hint] = inplace_pairs(func)
        funcs[c_name] = _to_pointer_params(func, params)
    tir_mod = tvm.IRModule(funcs)
    config = {"tirx.disable_vectorize": True, **(pass_config or {})}
    scratch: dict[str, int] = {}
    with tvm.transform.PassContext(opt_level=3, config=config):
        tir_mod = tirx.transform.BindTarget(target.with_host(target))(tir_mod)
        base, _, _ = default_s_tir_pipeline()
        tir_mod = base(tir_mod)
        finished = {}
        for gvar, func in tir_mod.functions.items():
            func, scratch[gvar.name_hint] = _lift_scratch(func)
            finished[gvar] = _finish(func)
        tir_mod = tvm.IRModule(finished, attrs=tir_mod.attrs)
        host_mod, _ = split_host_device_mods(tir_mod)
        host_mod = finalize_host_passes()(host_mod)
    signatures = {relax_name: OperatorSignature(c_name, params, scratch.get(c_name, 0),
                                                inplace[relax_name])
                  for relax_name, (c_name, params) in renamed.items()}
    return LoweredOperators(host_mod, signatures)
