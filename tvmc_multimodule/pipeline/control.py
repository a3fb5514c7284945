"""Relax `If` made ready for the pass list: each branch outlined into a function of its own.

Relax's FuseOps fuses only the dataflow blocks of a function's own body, never inside an If's
branches, and TVM's ONNX importer builds a function with an If without any dataflow block.
With each branch a private function called from the If (`main_then_0(x, state)`), and runs
of pure bindings made dataflow blocks again, every branch is fused, legalised and statically
planned like `main`; `build_program` walks into the branch functions where the If calls them
and the runner branches in C (`Branch` steps).
"""
from __future__ import annotations

import tvm
from tvm import relax


def has_if(mod: tvm.IRModule) -> bool:
    found = []

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.If):
            found.append(expr)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return bool(found)


class _Outliner:
    """Rewrites the Ifs of one function, adding the outlined branches to `functions`."""

    def __init__(self, builder: relax.BlockBuilder, prefix: str):
        self.builder, self.prefix, self.count = builder, prefix, 0

    def function(self, func: relax.Function) -> relax.Function:
        body = func.body
        blocks = [self._block(block) for block in body.blocks]
        return relax.Function(func.params, relax.SeqExpr(blocks, body.body), func.ret_ty,
                              func.is_pure, func.attrs, func.span)

    def _block(self, block: relax.BindingBlock) -> relax.BindingBlock:
        bindings = []
        for binding in block.bindings:
            value = binding.value
            if isinstance(binding, relax.VarBinding) and isinstance(value, relax.If):
                number = self.count
                self.count += 1
                value = relax.If(value.cond,
                                 self._outlined(value.true_branch, f"then_{number}", binding.var),
                                 self._outlined(value.false_branch, f"else_{number}",
                                                binding.var))
                binding = relax.VarBinding(binding.var, value)
            bindings.append(binding)
        return (relax.DataflowBlock(bindings) if isinstance(block, relax.DataflowBlock)
                else relax.BindingBlock(bindings))

    def _outlined(self, branch: relax.SeqExpr, name: str, var: relax.Var) -> relax.SeqExpr:
        """`branch` as a call of a new private function of the outer values it reads."""
        free = list(relax.analysis.free_vars(branch))
        inner = relax.Function(free, branch, var.ty, is_pure=True)
        inner = relax.utils.copy_with_new_vars(inner)
        name = f"{self.prefix}_{name}"
        inner = _Outliner(self.builder, name).function(inner)  # nested Ifs
        gvar = self.builder.add_func(inner, name)
        result = relax.Var(f"{name}_result", var.ty)
        call = relax.Call(gvar, free)
        return relax.SeqExpr([relax.BindingBlock([relax.VarBinding(result, call)])], result)


@tvm.transform.module_pass(opt_level=0, name="OutlineBranches")
def outline_branches(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    """Every If branch of `main` (nested ones too) a private function; pure bindings in
    dataflow blocks. A module without If is returned as it is."""
    if not has_if(mod):
        return mod
    builder = relax.BlockBuilder(mod)
    main = _Outliner(builder, "main").function(mod["main"])
    builder.update_func(mod.get_global_var("main"), main)
    result = builder.get()
    return relax.transform.ConvertToDataflow(min_size=1)(relax.transform.Normalize()(result))


def branch_functions(mod: tvm.IRModule) -> dict[str, relax.Function]:
    """The Relax functions besides `main` that are not fused operator groups, by name: the
    outlined branches, and TVM's TFLite importer's functions for IF (a function holding the
    If, one per branch) and WHILE (a recursive function, its condition and its body)."""
    return {g.name_hint: f for g, f in mod.functions.items()
            if isinstance(f, relax.Function) and g.name_hint != "main"
            and not (f.attrs is not None and "Primitive" in f.attrs)}


def rewrite_functions(mod: tvm.IRModule, mutator: relax.PyExprMutator) -> tvm.IRModule:
    """`main` and the functions its control flow runs (`branch_functions`) visited by
    `mutator` (a PyExprMutator over `mod`), with what its builder added (legalised
    operators); `mod` itself when nothing changed."""
    names = ["main", *branch_functions(mod)]
    new = {name: mutator.visit_expr(mod[name]) for name in names}
    if all(new[name].same_as(mod[name]) for name in names):
        return mod
    # a new module: the pass's input (the imported model) stays as it was
    functions = {g: new.get(g.name_hint, f) for g, f in mutator.builder_.get().functions.items()}
    return tvm.IRModule(functions, attrs=mod.attrs)
