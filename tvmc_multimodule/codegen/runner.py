"""The AOT runner of one module: constants, then the operator calls in order."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..c_api import ModuleApi
from ..pipeline import (Buffer, Call, Constant, Copy, Input, MemoryPlan, OperatorSignature,
                        Output, Program)
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


class _Locations:
    """C expressions for the places a program reads and writes."""

    def __init__(self, api: ModuleApi, program: Program, plan: MemoryPlan):
        self.api, self.program, self.plan = api, program, plan

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
            return f"(void*){self.api.constant_symbol(loc.index)}.data"
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


def _prototype(sig: OperatorSignature) -> str:
    params = [f"{c_type(dtype)}* p{i}" for i, (_, dtype) in enumerate(sig.params)]
    if sig.scratch_bytes:
        params.append(f"uint8_t* p{len(params)}")
    return f"int32_t {sig.c_name}({', '.join(params)});"


def _call_line(step_index: int, step: Call, sig: OperatorSignature, where: _Locations) -> str:
    args = [f"({c_type(dtype)}*){where.expr(loc)}" for loc, (_, dtype) in zip(step.args, sig.params)]
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
                  signatures: dict[str, OperatorSignature],
                  constants_alignment: int = 16,
                  initial_states: Sequence[np.ndarray] = ()) -> str:
    """The module's constants and its runner entry point (`api.core_entry`: run(in, out,
    workspace) in shared mode, run_with_workspace(in, out, workspace) in static mode,
    run_with_state(in, out, workspace, state) for a stateful module, with reset_state and
    the initial values `initial_states`)."""
    where = _Locations(api, program, plan)
    used = []
    for step in program.steps:
        if isinstance(step, Call) and signatures[step.relax_name] not in used:
            used.append(signatures[step.relax_name])
    body = []
    for step_index, step in enumerate(program.steps):
        if isinstance(step, Call):
            body.append(_call_line(step_index, step, signatures[step.relax_name], where))
        elif isinstance(step, Copy):
            dst, src = where.expr(step.dst), where.expr(step.src)
            if dst != src:
                body.append(f"  memcpy({dst}, {src}, {step.nbytes});")
    lines = [
        f"/* AOT runner of module '{api.name}', generated by tvmc-multimodule. */",
        "#include <stdint.h>", "#include <string.h>", f'#include "{api.header_file}"', "",
        _ALIGNED_MACRO, ENDIAN_GUARD, _OPERATOR_CALL_MACRO, "",
        "/* operators (defined in the module's other source file) */",
        *[_prototype(sig) for sig in used], "",
        *[constant_definition(api.constant_symbol(i), array, constants_alignment)
          for i, array in enumerate(program.constants)], "",
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
