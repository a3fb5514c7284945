"""The public header of one module, tvmgen_<name>.h, derived from its `ModuleApi`."""
from __future__ import annotations

import math

from ..c_api import DEFAULT_ALIGNMENT, STATE_ALIGNMENT, WORKSPACE_MODES, CTensor, ModuleApi

ALIGNMENT = DEFAULT_ALIGNMENT
__all__ = ["ALIGNMENT", "WORKSPACE_MODES", "module_header"]

_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _float_literal(value: float) -> str:
    """A C float constant; a non-finite scale (a broken model) as an expression C accepts."""
    if math.isfinite(value):
        return f"{value!r}f"
    return "(0.0f / 0.0f)" if math.isnan(value) else ("(1.0f / 0.0f)" if value > 0
                                                       else "(-1.0f / 0.0f)")


def _tensor_lines(api: ModuleApi, tensors: tuple[CTensor, ...]) -> list[str]:
    lines = []
    real_to_q, q_to_real = api.quant_functions
    for t in tensors:
        base = t.macro
        lines.append(f"/* '{t.comment}': {t.dtype}{list(t.shape)} */")
        lines.append(f"#define {t.size_macro} {t.nbytes}")
        if t.offset is not None:
            lines.append(f"#define {t.offset_macro} {t.offset}")
        if t.quant is not None and len(t.quant.scale) == 1:
            lines.append(f"#define {base}_SCALE {_float_literal(t.quant.scale[0])}")
            lines.append(f"#define {base}_ZERO_POINT {int(t.quant.zero_point[0])}")
            if t.has_8_bit_quant:
                lo, hi = _RANGES[t.dtype]
                lines.append(f"#define {base}_QUANTIZE(x) (({t.dtype}_t){real_to_q}((x), "
                             f"{base}_SCALE, {base}_ZERO_POINT, {lo}, {hi}))")
                lines.append(f"#define {base}_DEQUANTIZE(q) {q_to_real}((int32_t)(q), "
                             f"{base}_SCALE, {base}_ZERO_POINT)")
    return lines


def _quant_functions(api: ModuleApi) -> list[str]:
    """What <TENSOR>_QUANTIZE / _DEQUANTIZE call: TFLite's round(x / scale) + zero point
    (halves away from zero, saturated to the type; NaN gives the lowest value) and
    scale * (q - zero point)."""
    real_to_q, q_to_real = api.quant_functions
    return [
        "/* real value <-> 8-bit value of a quantised input or output (no libm needed) */",
        f"static inline int32_t {real_to_q}(float x, float scale, int32_t zero_point,",
        "                                         int32_t lo, int32_t hi) {",
        "  float v = x / scale, frac;",
        "  int32_t r;",
        "  if (!(v > -1000.0f)) return lo;",
        "  if (v > 1000.0f) return hi;",
        "  r = (int32_t)v;",
        "  frac = v - (float)r;",
        "  r += frac >= 0.5f ? 1 : (frac <= -0.5f ? -1 : 0);",
        "  r += zero_point;",
        "  return r < lo ? lo : (r > hi ? hi : r);",
        "}",
        f"static inline float {q_to_real}(int32_t q, float scale, int32_t zero_point) {{",
        "  return scale * (float)(q - zero_point);",
        "}", "",
    ]


def _struct(tag: str, tensors: tuple[CTensor, ...]) -> list[str]:
    return [f"{tag} {{", *[f"  void* {t.c_name};" for t in tensors], "};"]


def _map_function(api: ModuleApi, function: str, tag: str,
                  tensors: tuple[CTensor, ...]) -> list[str]:
    """`struct .. map(void* workspace)`: the tensors' pointers inside a workspace."""
    return [f"static inline {tag} {function}(void* workspace) {{",
            f"  {tag} io;",
            *[f"  io.{t.c_name} = (uint8_t*)workspace + {t.offset_macro};" for t in tensors],
            "  return io;", "}"]


def _workspace_io(api: ModuleApi) -> list[str]:
    """With the inputs and outputs in the workspace: where they are, and the arena of the
    static mode the application writes them into."""
    if not api.workspace_io:
        return []
    arena = ([f"/* The module's static workspace (run() uses it): "
              f"{api.map_inputs}({api.static_workspace_symbol}) */",
              f"extern uint8_t {api.static_workspace_symbol}[{api.workspace_size_macro}];", ""]
             if not api.shared and api.workspace_bytes else [])
    return [
        "/* The inputs and outputs live inside the workspace (tir.usmp.use_workspace_io): write",
        f"   the inputs through {api.map_inputs}(workspace), run, read the outputs through",
        f"   {api.map_outputs}(workspace). The workspace is all the RAM the module needs; an",
        "   input may be overwritten by the run, so write every input before each run. */",
        *_map_function(api, api.map_inputs, api.inputs_struct, api.inputs),
        *_map_function(api, api.map_outputs, api.outputs_struct, api.outputs), "", *arena,
    ]


def _state_lines(api: ModuleApi) -> list[str]:
    """The state buffer: its size, what it holds, and the functions that use it."""
    if not api.stateful:
        return []
    variables = [f"   '{s.comment}': {s.dtype}{list(s.shape)} at byte {s.offset}"
                 for s in api.states]
    return [
        "/* Persistent state (the model's variables), kept between runs:",
        *variables, "*/",
        f"#define {api.state_size_macro} {api.state_bytes}",
        f"#define {api.state_alignment_macro} {STATE_ALIGNMENT}", "",
        f"/* Sets the module's own state to its initial value. {api.run.symbol} calls it before",
        "   its first run; call it again to start a new sequence. 0 on success. */",
        api.reset.prototype(), "",
        "/* The re-entrant form, for several instances (or a state kept elsewhere): each",
        f"   instance owns {api.state_size_macro} bytes aligned to {api.state_alignment_macro},",
        f"   set by {api.reset_state.symbol} before its first run. The workspace is not kept",
        "   between runs and may be shared by every instance that never runs at the same time. */",
        api.reset_state.prototype(),
        api.run_with_state.prototype(), "",
    ]


def _custom_lines(api: ModuleApi) -> list[str]:
    if not api.custom_functions:
        return []
    return ["/* Custom operators the module calls: the application (or the archive's impl.c)",
            "   defines them; inputs then outputs, in the model's order; 0 on success. */",
            *(f.prototype() for f in api.custom_functions), ""]


def _entry_points(api: ModuleApi) -> list[str]:
    if api.custom_functions:
        return _custom_lines(api) + _state_entry_points(api)
    return _state_entry_points(api)


def _state_entry_points(api: ModuleApi) -> list[str]:
    if api.stateful:
        return _plain_entry_points(api) + [""] + _state_lines(api)
    return _plain_entry_points(api)


def _plain_entry_points(api: ModuleApi) -> list[str]:
    macro = api.macro
    if api.workspace_io:
        return _workspace_io(api) + _entry_points_io(api)
    if api.shared:
        return [
            f"/* Runs the model in the caller's workspace: {macro}_WORKSPACE_SIZE bytes aligned to",
            f"   {macro}_WORKSPACE_ALIGNMENT (TVMGEN_MAX_WORKSPACE_SIZE in tvmgen_modules.h fits",
            "   every module of the archive, for modules that never run at the same time).",
            "   Returns 0 on success. */",
            api.run.prototype(),
        ]
    return [
        "/* Runs the model with the module's own static workspace; 0 on success. */",
        api.run.prototype(), "",
        f"/* Same, with a caller-provided workspace of {macro}_WORKSPACE_SIZE bytes aligned to",
        f"   {macro}_WORKSPACE_ALIGNMENT. An application that only calls this one and links the",
        "   module from a library does not link the static workspace. */",
        api.runner_entry.prototype(),
    ]


def _entry_points_io(api: ModuleApi) -> list[str]:
    macro = api.macro
    if api.shared:
        return [f"/* Runs the model in the caller's workspace ({macro}_WORKSPACE_SIZE bytes aligned "
                f"to {macro}_WORKSPACE_ALIGNMENT, holding the inputs); 0 on success. */",
                api.run.prototype()]
    return ["/* Runs the model in the module's static workspace; 0 on success. */",
            api.run.prototype(), "",
            f"/* Same, in a caller-provided workspace of {macro}_WORKSPACE_SIZE bytes aligned to",
            f"   {macro}_WORKSPACE_ALIGNMENT. */", api.runner_entry.prototype()]


def module_header(api: ModuleApi) -> str:
    """tvmgen_<name>.h: sizes, quantisation, structs and entry points of the module."""
    guard = api.guard
    mode_macro = [f"#define {api.workspace_shared_macro} 1"] if api.shared else []
    if api.workspace_io:
        mode_macro.append(f"#define {api.workspace_io_macro} 1")
    quantised = any(t.has_8_bit_quant for t in (*api.inputs, *api.outputs))
    lines = [
        f"/* Module '{api.name}' generated by tvmc-multimodule. */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
        "/* Bytes of working memory the module needs, and their alignment. The contents are",
        "   not kept between calls: any other code may use the memory between two runs. */",
        f"#define {api.workspace_size_macro} {api.workspace_bytes}",
        f"#define {api.workspace_alignment_macro} {api.workspace_alignment}", *mode_macro, "",
        *(_quant_functions(api) if quantised else []),
        "/* inputs */", *_tensor_lines(api, api.inputs), "",
        "/* outputs */", *_tensor_lines(api, api.outputs), "",
        "/* Pointers to the input and output buffers, one per tensor, in the model's order. */",
        *_struct(api.inputs_struct, api.inputs), *_struct(api.outputs_struct, api.outputs), "",
        *_entry_points(api),
        "", "#ifdef __cplusplus", "}", "#endif", f"#endif /* {guard} */", "",
    ]
    return "\n".join(lines)
