"""The AOT runner of one module: constants, then the operator calls in order.

It reads like the model: every call carries a comment naming the model's layer (op, the
TFLite tensor or ONNX node name, shapes, MACs), constants are named for the layer and the
role they play in it (`conv2d_3_weights`, `_bias`, `_multiplier`, `_shift`), are `const`
and passed as such, and the operators' prototypes use their definitions' parameter names.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..c_api import ModuleApi
from ..model import LayerInfo
from ..names import CText, c_text, unique_c_names
from ..pipeline import (BranchElse, BranchEnd, BranchIf, Buffer, Call, Constant, Copy, Input,
                        LoopBegin, LoopBreak, LoopEnd, MemoryPlan, OperatorSignature, Output,
                        Program, step_locations)
from ..pipeline.tir_passes import SCRATCH_PARAM, c_param_names
from .constants import ENDIAN_GUARD, constant_definition
from .ctypes import c_type

_ALIGNED_MACRO = """#if defined(__GNUC__) || defined(__clang__)
#define TVMGEN_ALIGNED(x) __attribute__((aligned(x)))
#else
#define TVMGEN_ALIGNED(x)
#endif"""

# Compile-time hook around every operator call, e.g. to read a timer (`tvmc micro` profiles
# with it); by default the call itself. `function` is the operator's C name.
_OPERATOR_CALL_MACRO = """#ifndef TVMGEN_OPERATOR_CALL
#define TVMGEN_OPERATOR_CALL(index, function, arguments) function arguments
#endif"""


# an operator parameter's name -> the role of the constant passed there
_ROLES = {"w": "weights", "weight": "weights", "weights": "weights", "kernel": "weights",
          "bias": "bias", "mult": "multiplier", "multiplier": "multiplier", "shift": "shift"}
# parameter names TVM makes up (`param_0`, `lv3`, `p1`): the role comes from the shape
_ANONYMOUS_PARAM = re.compile(r"^(param_\d+|lv\d*|p\d+|arg\d*|B|T_\w*)$")


def _role(param_name: str, array: np.ndarray, op: str) -> str:
    base = param_name[:-len("_data")] if param_name.endswith("_data") else param_name
    if base in _ROLES:
        return _ROLES[base]
    if not _ANONYMOUS_PARAM.match(base):
        return base
    if sum(1 for d in array.shape if d > 1) >= 2:
        return "weights"
    return "bias" if "add" in op.split("_") else "constant"


def constant_names(program: Program, signatures: dict[str, OperatorSignature],
                   layers: list[LayerInfo]) -> list[str]:
    """A unique C identifier per constant: the first layer reading it (its op and its
    number among the layers of that op) and its role there (`conv2d_3_weights`)."""
    op_of = {layer.step: layer.op for layer in layers}
    seen_ops: dict[str, int] = {}
    wanted: dict[int, str] = {}
    for step_index, step in enumerate(program.steps):
        if not isinstance(step, Call):
            continue
        op = op_of.get(step_index) or "op"
        number = seen_ops.get(op, 0)
        seen_ops[op] = number + 1
        params = signatures[step.relax_name].params
        for loc, (param_name, _) in zip(step.args, params):
            if isinstance(loc, Constant) and loc.index not in wanted:
                role = _role(param_name, program.constants[loc.index], op)
                wanted[loc.index] = f"{op}_{number}_{role}"
    raw = [wanted.get(i, "constant") for i in range(len(program.constants))]
    reserved = [sig.c_name for sig in signatures.values()]
    return unique_c_names(raw, fallback="constant", reserved=reserved)


def read_only_params(program: Program, signatures: dict[str, OperatorSignature]
                     ) -> dict[str, set[int]]:
    """Per operator C name, the parameters that only ever receive constants (`const`)."""
    constant: dict[str, set[int]] = {}
    other: dict[str, set[int]] = {}
    for step in program.steps:
        if isinstance(step, Call):
            sig = signatures[step.relax_name]
            for position, loc in enumerate(step.args):
                (constant if isinstance(loc, Constant) else other).setdefault(
                    sig.c_name, set()).add(position)
    result = {}
    for sig in signatures.values():
        in_place = {i for pair in sig.inplace for i in pair}
        result[sig.c_name] = (constant.get(sig.c_name, set()) - other.get(sig.c_name, set())
                              - in_place)
    return result


def layer_comment(layer: LayerInfo) -> str:
    """`/* layer 3: conv2d 'model/conv_3' 1x25x5x64 -> 1x25x5x64 int8, 36,864 MACs */`: the
    model's name for the layer through names.c_text, like all model text that reaches C."""
    shapes = ", ".join("x".join(str(d) for d in s) or "scalar"
                       for s in layer.input_shapes) or "-"
    out = "x".join(str(d) for d in layer.output_shape) or "scalar"
    name = f" '{c_text(layer.name, CText.COMMENT)}'" if layer.name else ""
    macs = f", {layer.macs:,} MACs" if layer.macs else ""
    return f"  /* layer {layer.step}: {layer.op}{name} {shapes} -> {out} {layer.dtype}{macs} */"


class _Locations:
    """C expressions for the places a program reads and writes."""

    def __init__(self, api: ModuleApi, program: Program, plan: MemoryPlan,
                 constants: list[str]):
        self.api, self.program, self.plan = api, program, plan
        self.constants = constants

    def expr(self, loc: object) -> str:
        state = self._state(loc)
        if state is not None:  # a variable's old and new value share its place
            return f"(void*)(st + {state})"
        if isinstance(loc, (Input, Output)):
            tensor = (self.api.inputs if isinstance(loc, Input) else self.api.outputs)[loc.index]
            if tensor.offset is not None:  # inside the workspace
                return f"(void*)(ws + {tensor.offset})"
            return f"{'inputs' if isinstance(loc, Input) else 'outputs'}->{tensor.c_name}"
        if isinstance(loc, Constant):
            return f"{self.api.constant_symbol(self.constants[loc.index])}.data"
        if isinstance(loc, Buffer):
            if loc.index in self.program.buffer_outputs:
                return self.expr(Output(self.program.buffer_outputs[loc.index]))
            return f"(void*)(ws + {self.plan.buffer_offsets[loc.index]})"
        raise TypeError(loc)

    def _state(self, loc: object) -> int | None:
        """The state-buffer offset of a stateful module's extra parameter or result."""
        if isinstance(loc, Input) and loc.index >= len(self.api.inputs):
            return self.api.states[loc.index - len(self.api.inputs)].offset
        if isinstance(loc, Output) and loc.index >= len(self.api.outputs):
            return self.api.states[loc.index - len(self.api.outputs)].offset
        return None

    def scratch(self, step_index: int) -> str:
        return f"(uint8_t*)(ws + {self.plan.scratch_offsets[step_index]})"


def _prototype(sig: OperatorSignature, read_only: set[int]) -> str:
    """The definition's own parameter list (restrict aside, which only the definition needs)."""
    names = c_param_names([name for name, _ in sig.params])
    params = [f"{'const ' if i in read_only else ''}{c_type(dtype)}* {name}"
              for i, (name, (_, dtype)) in enumerate(zip(names, sig.params))]
    if sig.scratch_bytes:
        params.append(f"uint8_t* {SCRATCH_PARAM}")
    return f"int32_t {sig.c_name}({', '.join(params)});"


def _argument(loc: object, dtype: str, where: _Locations, const_param: bool) -> str:
    if isinstance(loc, Constant) and const_param:  # the union's member of its own const type
        return where.expr(loc)
    if isinstance(loc, Constant):
        # an operator shared by calls that pass it constants and tensors (-O0 reuses one
        # `add` for both) takes a plain pointer; the operator only reads it
        return f"({c_type(dtype)}*)(uintptr_t){where.expr(loc)}"
    return f"({c_type(dtype)}*){where.expr(loc)}"


def _call_line(step_index: int, step: Call, sig: OperatorSignature, where: _Locations,
               read_only: set[int]) -> str:
    args = [_argument(loc, dtype, where, i in read_only)
            for i, (loc, (_, dtype)) in enumerate(zip(step.args, sig.params))]
    if sig.scratch_bytes:
        args.append(where.scratch(step_index))
    return (f"  if (TVMGEN_OPERATOR_CALL({step_index}, {sig.c_name}, ({', '.join(args)})) != 0) "
            "return -1;")


def _reset_state(api: ModuleApi, initial: Sequence[np.ndarray],
                 constants_alignment: int) -> list[str]:
    """The initial-value tables (a variable of one repeated byte is a memset instead) and
    reset_state(state)."""
    tables, body = [], []
    for index, (state, value) in enumerate(zip(api.states, initial)):
        raw = np.ascontiguousarray(value, dtype=state.dtype).view(np.uint8).ravel()
        where = f"st + {state.offset}"
        if raw.size and np.all(raw == raw[0]):
            body.append(f"  memset({where}, {int(raw[0])}, {state.nbytes}); /* {state.comment} */")
        else:
            symbol = api.initial_state_symbol(index)
            tables.append(constant_definition(symbol, np.asarray(value, dtype=state.dtype),
                                              constants_alignment))
            body.append(f"  memcpy({where}, {symbol}.data, {state.nbytes}); /* {state.comment} */")
    return [*tables, "", api.reset_state.signature() + " {", "  uint8_t* st = (uint8_t*)state;",
            *body, "  return 0;", "}", ""]


def runner_source(api: ModuleApi, program: Program, plan: MemoryPlan,
                  signatures: dict[str, OperatorSignature], layers: list[LayerInfo],
                  constants_alignment: int = 16,
                  initial_states: Sequence[np.ndarray] = ()) -> str:
    """The module's constants and its runner entry point (`api.core_entry`: run(in, out,
    workspace) in shared mode, run_with_workspace(in, out, workspace) in static mode,
    run_with_state(in, out, workspace, state) for a stateful module, with reset_state and
    the initial values `initial_states`)."""
    names = constant_names(program, signatures, layers)
    read = {loc.index for step in program.steps for loc in step_locations(step)
            if isinstance(loc, Constant)}
    read_only = read_only_params(program, signatures)
    layer_at = {layer.step: layer for layer in layers}
    where = _Locations(api, program, plan, names)
    used = []
    for step in program.steps:
        if isinstance(step, Call) and signatures[step.relax_name] not in used:
            used.append(signatures[step.relax_name])
    body: list[str] = []
    depth = 0  # of the branches the step is in: two spaces more each
    for step_index, step in enumerate(program.steps):
        lines: list[str] = []
        if isinstance(step, Call):
            if step_index in layer_at:
                lines.append(layer_comment(layer_at[step_index]))
            sig = signatures[step.relax_name]
            lines.append(_call_line(step_index, step, sig, where, read_only[sig.c_name]))
        elif isinstance(step, Copy):
            dst, src = where.expr(step.dst), where.expr(step.src)
            if dst != src:
                lines.append(f"  memcpy({dst}, {src}, {step.nbytes});")
        elif isinstance(step, BranchIf):
            # only the branch the condition selects runs (an ONNX If, a TFLite IF)
            lines.append(f"  if (*(const {c_type(step.dtype)}*){where.expr(step.cond)} != 0) {{")
        elif isinstance(step, BranchElse):
            lines.append("  } else {")
        elif isinstance(step, (BranchEnd, LoopEnd)):
            lines.append("  }")
        elif isinstance(step, LoopBegin):  # a TFLite WHILE
            lines.append("  while (1) {")
        elif isinstance(step, LoopBreak):
            test = "!=" if step.exit_when else "=="
            lines.append(f"  if (*(const {c_type(step.dtype)}*){where.expr(step.cond)} {test} 0) "
                         "break;")
        depth -= isinstance(step, (BranchElse, BranchEnd, LoopEnd))
        body += ["  " * depth + line for line in lines]
        depth += isinstance(step, (BranchIf, BranchElse, LoopBegin))
    lines = [
        f"/* AOT runner of module '{api.name}', generated by tvmc-multimodule. */",
        "#include <stdint.h>", "#include <string.h>", f'#include "{api.header_file}"', "",
        _ALIGNED_MACRO, ENDIAN_GUARD, _OPERATOR_CALL_MACRO, "",
        "/* operators (defined in the module's other source file) */",
        *[_prototype(sig, read_only[sig.c_name]) for sig in used], "",
        # every constant a step reads (not a folded If's condition)
        *[constant_definition(api.constant_symbol(name), array, constants_alignment)
          for index, (name, array) in enumerate(zip(names, program.constants))
          if index in read], "",
        *(_reset_state(api, initial_states, constants_alignment) if api.stateful else []),
        api.core_entry.signature(",\n    ") + " {",
        "  uint8_t* ws = (uint8_t*)workspace;",
        *(["  uint8_t* st = (uint8_t*)state;", "  (void)st;"] if api.stateful else []),
        "  (void)ws;" if api.workspace_io else "  (void)ws; (void)inputs; (void)outputs;",
        *body,
        "  return 0;", "}", "",
    ]
    return "\n".join(lines)


def static_state_source(api: ModuleApi) -> str:
    """The module's own state buffer, reset() and the runs that use it (reset on the first
    run), in a file of their own: an application that keeps its states itself
    (run_with_state) never links this RAM."""
    entry = api.runner_entry
    call = api.run_with_state.call({"inputs": "inputs", "outputs": "outputs",
                                    "workspace": "workspace",
                                    "state": api.static_state_symbol})
    return "\n".join([
        f"/* Static state of module '{api.name}', generated by tvmc-multimodule. */",
        "#include <stdint.h>", f'#include "{api.header_file}"', "", _ALIGNED_MACRO, "",
        f"static uint8_t {api.static_state_symbol}[{api.state_size_macro}] "
        f"TVMGEN_ALIGNED({api.state_alignment_macro});",
        f"static int {api.static_state_symbol}_ready;", "",
        api.reset.signature() + " {",
        f"  {api.static_state_symbol}_ready = 1;",
        f"  return {api.reset_state.call({'state': api.static_state_symbol})};", "}", "",
        entry.signature(",\n    ") + " {",
        f"  if (!{api.static_state_symbol}_ready) {api.reset.call({})};",
        f"  return {call};", "}", "",
    ])


def static_workspace_source(api: ModuleApi) -> str:
    """`run(in, out)` with the module's own static arena, in a file of its own so an
    application that provides the workspace itself never links this RAM."""
    if api.workspace_bytes:
        # with the inputs and outputs inside it, the application must reach the arena
        storage = "" if api.workspace_io else "static "
        arena = [f"{storage}uint8_t {api.static_workspace_symbol}[{api.workspace_size_macro}] "
                 f"TVMGEN_ALIGNED({api.workspace_alignment_macro});", ""]
        argument = api.static_workspace_symbol
    else:  # C has no zero-length arrays; nothing reads the workspace
        arena, argument = [], "(void*)0"
    call = api.runner_entry.call({"inputs": "inputs", "outputs": "outputs",
                                  "workspace": argument})
    return "\n".join([
        f"/* Static workspace of module '{api.name}', generated by tvmc-multimodule. */",
        "#include <stdint.h>", f'#include "{api.header_file}"', "", _ALIGNED_MACRO, "", *arena,
        api.run.signature() + " {",
        f"  return {call};", "}", "",
    ])
