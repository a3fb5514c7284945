"""The state of one import: the Relax builder, the values of the tensors converted so far and
the integer kernels already added (one PrimFunc per distinct kernel)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tvm
from tvm import relax, tirx

from ...kernels import CHelpers, Kernel, KernelLibrary
from .graph import Graph, Operator, Tensor


class NoIntegerKernel(Exception):
    """This operator (or this configuration of it) has no integer kernel: use the float form."""


class Context:
    def __init__(self, graph: Graph, builder: relax.BlockBuilder, helpers: CHelpers,
                 library: KernelLibrary):
        self.graph = graph
        self.library = library  # builds the kernels (chosen from the target)
        self.builder = builder
        self.helpers = helpers
        self.layer_name = ""  # the output tensor of the operator being converted
        self.values: dict[int, relax.Expr] = {}
        self._functions: dict[int, list[tuple[tirx.PrimFunc, tvm.ir.GlobalVar]]] = {}
        self._names: dict[str, int] = {}
        self.c_sources: dict[str, str] = {}  # C the library's kernels call, once each

    # ---- tensors
    def tensor(self, index: int) -> Tensor:
        return self.graph.tensor(index)

    def value(self, index: int) -> relax.Expr:
        """The Relax value of a tensor: converted activation or constant."""
        if index in self.values:
            return self.values[index]
        t = self.tensor(index)
        if t.data is None:
            raise NoIntegerKernel(f"tensor '{t.name}' has no value yet")
        return self.const(t.data)

    def const(self, array: np.ndarray) -> relax.Constant:
        return relax.const(np.ascontiguousarray(array))

    def constant_data(self, op: Operator, position: int, what: str) -> np.ndarray:
        if position >= len(op.inputs) or op.inputs[position] < 0:
            raise NoIntegerKernel(f"{op.name} without its {what}")
        t = self.tensor(op.inputs[position])
        if t.data is None:
            raise NoIntegerKernel(f"{op.name} with a non-constant {what}")
        return t.data

    # ---- emission
    def emit(self, expr: relax.Expr) -> relax.Var:
        # named after the TFLite tensor the operator writes: the C runner's layer comments
        return self.builder.emit(expr, name_hint=self.layer_name)

    def reshape(self, value: relax.Expr, shape: Sequence[int]) -> relax.Expr:
        current = [int(d) for d in value.ty.shape.values]
        if current == [int(d) for d in shape]:
            return value
        return self.emit(relax.op.reshape(value, [int(d) for d in shape]))

    def call_kernel(self, kernel: Kernel, name: str, inputs: Sequence[relax.Expr],
                    shape: Sequence[int], dtype: str = "int8") -> relax.Var:
        """call_tir of a library's kernel: `inputs`, then its packed constants."""
        for key, source in kernel.c_sources:
            self.c_sources.setdefault(key, source)
        args = [*inputs, *(self.const(c) for c in kernel.constants)]
        return self.call(kernel.func, name, args, shape, dtype)

    def call_kernel_outputs(self, kernel: Kernel, name: str, inputs: Sequence[relax.Expr],
                            outputs: Sequence[tuple[Sequence[int], str]]) -> list[relax.Expr]:
        """call_tir of a kernel with several outputs ((shape, dtype) each): their values."""
        for key, source in kernel.c_sources:
            self.c_sources.setdefault(key, source)
        args = [*inputs, *(self.const(c) for c in kernel.constants)]
        gvar = self._function(kernel.func, name)
        types = [relax.TensorType([int(d) for d in s], dtype) for s, dtype in outputs]
        result = self.emit(relax.call_tir(gvar, args, types))
        return [self.emit(relax.TupleGetItem(result, k)) for k in range(len(types))]

    def _function(self, func: tirx.PrimFunc, name: str) -> tvm.ir.GlobalVar:
        """`func` added to the module once per distinct kernel."""
        import tvm_ffi

        same_hash = self._functions.setdefault(tvm_ffi.structural_hash(func), [])
        gvar = next((g for f, g in same_hash if tvm_ffi.structural_equal(f, func)), None)
        if gvar is None:
            count = self._names.get(name, 0)
            self._names[name] = count + 1
            gvar = self.builder.add_func(func, f"{name}_{count}" if count else name)
            same_hash.append((func, gvar))
        return gvar

    def call(self, func: tirx.PrimFunc, name: str, args: Sequence[relax.Expr],
             shape: Sequence[int], dtype: str = "int8") -> relax.Var:
        """call_tir of `func` (added once per distinct kernel) writing a new tensor."""
        gvar = self._function(func, name)
        out = relax.TensorType([int(d) for d in shape], dtype)
        return self.emit(relax.call_tir(gvar, list(args), out))
