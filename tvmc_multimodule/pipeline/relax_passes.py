"""Relax passes that turn an imported model into a static call sequence.

The default Relax build pipeline neither fuses for target "c" nor stops before the VM, so the
list is explicit (measured on apache-tvm 0.27, see docs/architecture.md).
"""
from __future__ import annotations

import logging
from typing import Any

import tvm
from tvm import relax

from .constant_guard import shrink_broadcast_constants
from .control import branch_functions, outline_branches
from .layout import CHANNELS_LAST, convert_layout
from .numpy_fold import fold_constants_with_numpy
from .program import GENERATED_NAME

# ConvertLayout puts no layout on quantize/dequantize: the transposes it puts around them cost
# RAM (the torch DS-CNN in QDQ form: 66,008 -> 106,008 B)
_LAYOUT_BLOCKERS = {"relax.quantize", "relax.dequantize"}
# what `main` may still call after the passes (build_program walks exactly these)
_LOWERED_OPS = {"relax.memory.alloc_storage", "relax.memory.alloc_tensor",
                "relax.builtin.alloc_tensor", "relax.reshape", "relax.memory.view",
                "relax.null_value"}

log = logging.getLogger(__name__)


def _uses(mod: tvm.IRModule, op_names: set[str]) -> bool:
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            op = getattr(binding.value, "op", None)
            if getattr(op, "name", None) in op_names:
                return True
    return False


# tvmc's --desired-layout: the layout asked for the float convolutions
DESIRED_LAYOUTS = {"NHWC": CHANNELS_LAST, "NCHW": {"relax.nn.conv2d": ["NCHW", "OIHW"]}}


def _layouts(mod: tvm.IRModule, opt_level: int,
             desired_layout: str | None) -> dict[str, list[str]] | None:
    if desired_layout is not None:  # asked for: also at -O0 and around quantize/dequantize
        return DESIRED_LAYOUTS[desired_layout]
    if opt_level >= 1 and not _uses(mod, _LAYOUT_BLOCKERS):
        return CHANNELS_LAST
    return None


def _leftover_ops(mod: tvm.IRModule) -> list[str]:
    """Operators still in `main` (or a branch of its) after the passes that no C can run
    (none legalised them)."""
    names = set()
    for block in [block for func in [mod["main"], *branch_functions(mod).values()]
                  for block in func.body.blocks]:
        for binding in block.bindings:
            op = getattr(binding.value, "op", None)
            name = getattr(op, "name", None) if isinstance(op, tvm.ir.Op) else None
            if name and name not in _LOWERED_OPS and not name.startswith("relax.memory.kill"):
                names.add(name)
    return sorted(names)


def _passes(opt_level: int, layouts: dict[str, list[str]] | None) -> list[Any]:
    fusion = [relax.transform.FuseOps(), relax.transform.FuseTIR()] if opt_level >= 1 else []
    return [
        outline_branches,  # an If's branches fused and planned like main (control.py)
        # batch_norm -> arithmetic on constants: FoldConstant leaves one multiply-add, and no
        # unused mean/variance outputs are computed
        relax.transform.DecomposeOpsForInference(),
        relax.transform.CanonicalizeBindings(),  # (y, mean, var)[0] -> y
        relax.transform.DeadCodeElimination(["main"]),
        fold_constants_with_numpy,  # FoldConstant compiles a function per constant call
        *([convert_layout(layouts)] if layouts else []),
        fold_constants_with_numpy,  # ...and the weights' transposes
        shrink_broadcast_constants,  # no constant broadcast to an activation's full size
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        *fusion,
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
        relax.transform.DeadCodeElimination(["main"]),
    ]


LAYER_NAMES_ATTR = "tvmc.layer_names"


def _is_fuse_ops(p: Any) -> bool:
    return "FuseOps" in str(getattr(p, "info", ""))


def _calls(mod: tvm.IRModule, func: Any, within: frozenset[str] = frozenset(),
           branches: dict | None = None) -> list[tuple[str, str]]:
    """(callee, name of the bound variable) of every operator call in `func`, in order; an
    If's branch functions (control.py) in the order the runner has them: then, else; a
    loop's function (TFLite WHILE) once, where it is first called (`within`: the functions
    being expanded)."""
    out = []
    branches = branch_functions(mod)
    for block in getattr(func.body, "blocks", []):
        for binding in block.bindings:
            value = binding.value
            if isinstance(value, relax.If):
                for branch in (value.true_branch, value.false_branch):
                    out += _calls(mod, relax.Function([], branch), within, branches)
                continue
            if not isinstance(value, relax.Call):
                continue
            name = getattr(value.op, "name_hint", None)
            if name in branches and name not in within:
                out += _calls(mod, branches[name], within | {name}, branches)
            elif name in branches:
                continue  # a loop calling itself again
            elif isinstance(value.op, tvm.ir.GlobalVar):
                out.append((value.op.name_hint, str(binding.var.name)))
            elif getattr(value.op, "name", "") == "relax.call_tir":
                out.append((value.args[0].name_hint, str(binding.var.name)))
    return out


def _match_group(unfused: list[tuple[str, str]], used: list[bool],
                 inner: list[str]) -> list[int] | None:
    """Indices of the unfused calls a fused group replaced: its callees in order, from the
    first call not yet matched on (a residual group interleaves with the shortcut's)."""
    start = used.index(False) if False in used else len(used)
    found, position = [], start
    for callee in inner:
        while position < len(unfused) and (used[position] or unfused[position][0] != callee):
            position += 1
        if position == len(unfused):
            return None
        found.append(position)
        position += 1
    return found


def fused_layer_names(before: tvm.IRModule, after: tvm.IRModule
                      ) -> list[tuple[str, str]] | None:
    """The frontend's name (an ONNX node's, a TFLite tensor's) of each operator call FuseOps
    leaves in `main`: the last name the frontend gave in the group it fuses (layout
    conversion renames a group's last call). Groups are matched in order, callee by callee;
    (callee, name) per call, None unless every unfused call is matched exactly once (no
    names then rather than wrong ones)."""
    unfused = _calls(before, before["main"])
    used = [False] * len(unfused)
    names = []
    after_branches = branch_functions(after)
    for callee, _ in _calls(after, after["main"], branches=after_branches):
        func = after[after.get_global_var(callee)]
        inner = ([c for c, _ in _calls(after, func, branches=after_branches)]
                 if isinstance(func, relax.Function)
                 else [callee])
        group = _match_group(unfused, used, inner) if inner else None
        if group is None:
            return None
        for index in group:
            used[index] = True
        given = [unfused[i][1] for i in group if not GENERATED_NAME.match(unfused[i][1])]
        names.append((callee, given[-1] if given else unfused[group[-1]][1]))
    return names if all(used) else None


def _with_layer_names(mod: tvm.IRModule, names: list[tuple[str, str]]) -> tvm.IRModule:
    """`main` carries them ([callee, name, callee, name...]) to build_program."""
    flat = [text for pair in names for text in pair]
    return tvm.IRModule({**{g: f for g, f in mod.functions.items() if g.name_hint != "main"},
                         mod.get_global_var("main"): mod["main"].with_attr(LAYER_NAMES_ATTR,
                                                                           flat)},
                        attrs=mod.attrs)


def _attempt(mod: tvm.IRModule, opt_level: int,
             layouts: dict[str, list[str]] | None) -> tuple[tvm.IRModule | None, str]:
    """(lowered module, "") or (None, why it failed or what it left unlegalised)."""
    try:
        lowered = mod
        for p in _passes(opt_level, layouts):
            if _is_fuse_ops(p):  # fusion renames the layers: keep the model's names
                names = fused_layer_names(lowered, fused := p(lowered))
                lowered = fused if names is None else _with_layer_names(fused, names)
            else:
                lowered = p(lowered)
    except Exception as exc:  # noqa: BLE001 - TVM raises anything; the next attempt decides
        return None, (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
    leftover = _leftover_ops(lowered)
    return (None, "leaves " + ", ".join(leftover)) if leftover else (lowered, "")


def lower_relax(mod: tvm.IRModule, opt_level: int = 3,
                desired_layout: str | None = None) -> tvm.IRModule:
    """Legalise, fuse and statically plan `main`; stops before the VM-specific passes.

    At -O1 and above convolutions go channels-last (`layout.py`, safe per operator;
    `desired_layout` "NHWC"/"NCHW" asks for a layout at any level). Should that still fail on
    some graph, or leave an operator no legaliser takes, the model is lowered again in its own
    layout, and then without fusion (as at -O0), each time with a warning: a model that
    compiles at -O0 compiles at -O3.
    """
    layouts = _layouts(mod, opt_level, desired_layout)
    attempts = [(opt_level, layouts, "the model keeps its own layout")] if layouts else []
    if opt_level >= 1:
        attempts.append((opt_level, None, "operators are not fused (as at -O0)"))
    # the warnings are printed only when an attempt succeeds: when every one fails, the
    # model's error (one line) says what is wrong, and they would only precede it
    failures: list[tuple[str, str, str]] = []
    with tvm.target.Target("c"):
        for level, layout, fallback in attempts:
            lowered, reason = _attempt(mod, level, layout)
            if lowered is not None:
                _warn(failures)
                return lowered
            failures.append(("layout conversion" if layout else "operator fusion", reason,
                             fallback))
        # -O0's own passes: their errors are the model's, raised as they are
        lowered = tvm.transform.Sequential(_passes(0, None))(mod)
    if not _leftover_ops(lowered):  # else an error naming the operator follows
        _warn(failures)
    return lowered


def _warn(failures: list[tuple[str, str, str]]) -> None:
    for what, reason, fallback in failures:
        log.warning("%s failed (%s): %s", what, reason, fallback)
