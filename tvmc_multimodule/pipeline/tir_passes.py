"""TIR passes: every operator becomes a plain C function with pointer arguments.

- Buffer parameters become data pointers (DeclBuffer in the body), the function stays private
  so MakePackedAPI leaves it alone: `int32_t tvmgen_m_op(float* a, float* b)`.
- Operator temporaries that TVM would allocate with TVMBackendAllocWorkspace are rebound to an
  extra `uint8_t* scratch` parameter, so the generated code needs nothing but libm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import tirx

from ..errors import UnsupportedError
from ..names import unique_c_names
from .inplace import inplace_pairs

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


def c_param_names(names: list[str]) -> list[str]:
    """The C names of an operator's pointer parameters, from its TIR parameter names:
    tensor names are not C names (`gpu_0/data_0`), and one tensor may be passed twice."""
    return unique_c_names([name + "_data" for name in names], "arg")


def _to_pointer_params(func: tirx.PrimFunc) -> tirx.PrimFunc:
    pointers, decls = [], []
    c_names = c_param_names([p.name for p in func.params])
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
    offset, new_stmts = 0, []
    for stmt in stmts:
        if isinstance(stmt, tirx.AllocBuffer):
            buf_type = stmt.buffer.ty
            size = _buffer_bytes(buf_type)
            if size >= MAX_STACK_ALLOCA and str(buf_type.storage_scope) in ("global", ""):
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
    for gvar, func in relax_mod.functions.items():
        if isinstance(func, tirx.PrimFunc):
            c_name = prefix + gvar.name_hint
            renamed[gvar.name_hint] = (c_name, tuple((p.name, str(p.ty.dtype)) for p in func.params))
            inplace[gvar.name_hint] = inplace_pairs(func)
            funcs[c_name] = _to_pointer_params(func)
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
