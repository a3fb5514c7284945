"""The Python API, as TVM users knew it: compile_model, export/load_model_library_format.

compile_model runs the stages in order:
frontends (file -> Relax) -> pipeline (passes, lowering, static program, memory plan)
-> codegen (C sources, header) -> CompiledModule.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from . import codegen, frontends, kernels, pipeline
from .c_api import CFunction, CParam, ModuleApi, assign_c_names
from .errors import InternalError, TvmcError, UsageError
from .frontends.custom_ops import check_symbols as check_custom_symbols
from .model import (CompiledModule, CustomOp, ImportedModel, OperatorInfo, StateInfo,
                    TensorInfo)
from .names import CText, c_text
from .names import check_module_name
from .target import TargetSpec, parse_target

log = logging.getLogger(__name__)

# workspace allowed above the liveness bound for faster operator schedules
WORKSPACE_TOLERANCE = 1.05


def _resolve_tensors(declared: tuple[TensorInfo, ...], compiled: list[tuple[tuple[int, ...], str]],
                     what: str) -> list[TensorInfo]:
    """The model's own names and shapes, checked against what the compiled program uses."""
    if len(declared) != len(compiled):
        raise InternalError(f"the model declares {len(declared)} {what}s, the compiled "
                            f"program has {len(compiled)}")
    result = []
    for info, (shape, dtype) in zip(declared, compiled):
        same_size = (-1 not in info.shape
                     and int(np.prod(info.shape, dtype=np.int64)) == int(np.prod(shape, dtype=np.int64)))
        # keep the declared shape ([1,N] vs the [1,1,1,N] TVM may produce) when sizes agree
        keep = info.shape if same_size else shape
        result.append(TensorInfo(info.name, info.c_name, tuple(keep), dtype, info.quant))
    return result


CUSTOM_SOURCE_INDEX = 10  # <module>_lib10.c...: the user's custom operators, one file each


def _custom_function(call: Any) -> CFunction:
    """`int32_t tvmgen_<m>_custom_<NAME>(const T* in0, ..., T* out0, ...)`."""
    params = [CParam(f"const {codegen.c_type(dtype)}*", f"in{i}", "custom_input")
              for i, (_, dtype) in enumerate(call.inputs)]
    params += [CParam(f"{codegen.c_type(dtype)}*", f"out{i}", "custom_output")
               for i, (_, dtype) in enumerate(call.outputs)]
    return CFunction(call.symbol, tuple(params))


def _without_declarations(source: str, functions: list[CFunction]) -> str:
    """TVM declares the extern functions it calls with plain pointers; the typed prototype
    before them (const inputs, as the header has it) is the one to keep."""
    import re

    for function in functions:
        source = re.sub(rf"^int32_t {re.escape(function.symbol)}\([^)]*\);\n", "", source,
                        flags=re.M)
        source = source.replace(function.prototype() + "\n", "", 1)
        source = source.replace("#include <stdint.h>\n", "#include <stdint.h>\n"
                                + function.prototype() + "\n", 1)
    return source


def _placed_states(states: tuple[StateInfo, ...]) -> list[StateInfo]:
    """The variables at their offsets in the state buffer."""
    from dataclasses import replace

    from .c_api import state_offsets

    return [replace(s, offset=o) for s, o in zip(states, state_offsets(states))]


def _scheduled_operators(relaxed: Any, program: pipeline.Program, prefix: str, target: Any,
                         schedule: pipeline.ScheduleOptions,
                         pass_config: dict[str, Any] | None) -> pipeline.LoweredOperators:
    """Schedule and lower every operator. RAM first: operators whose padding scratch would
    lift the workspace above the liveness bound compute the padding in the read instead
    (slower, no scratch)."""
    lowered = pipeline.schedule_operators(relaxed, schedule)
    operators = pipeline.lower_operators(lowered, prefix, target, pass_config)
    at_peak = pipeline.scratch_at_peak(program, operators.signatures, WORKSPACE_TOLERANCE)
    if not at_peak:
        return operators
    lowered = pipeline.schedule_operators(relaxed, schedule, inline_padding=at_peak)
    return pipeline.lower_operators(lowered, prefix, target, pass_config)


def _compile_imported(imported: ImportedModel, spec: TargetSpec, opt_level: int,
                      pass_config: dict[str, Any] | None,
                      schedule: pipeline.ScheduleOptions, workspace: str,
                      desired_layout: str | None = None,
                      workspace_io: bool = False,
                      custom_ops: dict[str, CustomOp] | None = None) -> CompiledModule:
    import tvm

    name = imported.name
    target = tvm.target.Target("c")
    if imported.states and workspace_io:
        raise UsageError("a stateful module cannot keep its inputs and outputs in the "
                         "workspace (tir.usmp.use_workspace_io)",
                         hint="compile it without use_workspace_io")
    relaxed = pipeline.lower_relax(imported.relax_module, opt_level, desired_layout)
    program = pipeline.build_program(relaxed)
    relaxed = pipeline.called_operators_only(relaxed, program)  # not a folded If's other branch
    states = _placed_states(imported.states)
    n_in, n_out = len(imported.inputs), len(imported.outputs)
    operators = _scheduled_operators(relaxed, program, f"tvmgen_{name}_", target, schedule,
                                     pass_config)
    in_place = pipeline.write_back_in_place(program, len(imported.inputs),
                                            len(imported.outputs), operators.signatures)
    plan = pipeline.plan_memory(program, operators.signatures,
                                alignment=spec.workspace_alignment,
                                io_in_workspace=workspace_io)
    inputs, outputs = assign_c_names(
        _resolve_tensors(imported.inputs, program.input_types[:n_in], "input"),
        _resolve_tensors(imported.outputs, program.output_types[:n_out], "output"),
        stateful=bool(states))
    custom = [_custom_function(call) for call in imported.custom_calls]
    c_api = ModuleApi.build(name, inputs, outputs, plan.workspace_bytes, workspace,
                            spec.workspace_alignment,
                            plan.input_offsets + plan.output_offsets if workspace_io else None,
                            states, custom)
    support = imported.c_support + "".join(f.prototype() + "\n" for f in custom)
    layers = pipeline.describe_layers(relaxed, program, operators.signatures,
                                      [t.name for t in c_api.outputs])
    operators_c = codegen.add_restrict(
        _without_declarations(
            codegen.operators_source(operators.host_module, target, name, support), custom),
        operators.signatures)
    sources = {
        f"{name}_lib0.c": codegen.add_const(
            operators_c, codegen.read_only_params(program, operators.signatures)),
        f"{name}_lib1.c": codegen.runner_source(c_api, program, plan, operators.signatures,
                                                layers, spec.constants_alignment,
                                                [s.initial for s in states]),
    }
    if not c_api.shared:  # in a file of its own: RAM an application sharing memory never links
        sources[f"{name}_lib2.c"] = codegen.static_workspace_source(c_api)
    if states:  # the module's own state: RAM an application keeping its states never links
        sources[f"{name}_lib3.c"] = codegen.static_state_source(c_api)
    for k, call in enumerate(imported.custom_calls):  # the user's implementations
        op = (custom_ops or {})[call.name]
        sources[f"{name}_lib{CUSTOM_SOURCE_INDEX + k}.c"] = (
            f"/* Custom operator '{c_text(call.name, CText.COMMENT)}' of module '{name}': "
            f"{c_text(op.source_name, CText.COMMENT)}, as given. */\n{op.source}")
    return CompiledModule(
        name=name, model_path=imported.path, model_format=imported.model_format,
        target=spec.canonical, inputs=inputs, outputs=outputs, sources=sources,
        header=codegen.module_header(c_api), c_api=c_api,
        relax_text=imported.relax_module.script(show_meta=False),
        # named as the runner's C arrays are (conv2d_3_weights)
        params=dict(zip(codegen.constant_names(program, operators.signatures, layers),
                        program.constants)),
        operators=[OperatorInfo(s.c_name, s.scratch_bytes)
                   for s in sorted(operators.signatures.values(), key=lambda s: s.c_name)],
        workspace_bytes=plan.workspace_bytes,
        liveness_bound_bytes=plan.liveness_bound_bytes,
        layers=layers,
        memory_layout=pipeline.memory_layout(program, operators.signatures, plan),
        external_dependencies=[d for d in [kernels.external_dependency(imported.c_support)]
                               if d],
        constants_bytes=int(sum(a.nbytes for a in program.constants)
                            + sum(s.initial.nbytes for s in states)),
        states=states,
        options={"opt_level": opt_level, "pass_config": dict(pass_config or {}),
                 "executor": "aot", "runtime": "crt", "interface_api": "c",
                 "unpacked_api": True, "schedule": schedule.variant, "workspace": workspace,
                 "memory_planner": plan.strategy, "inplace_reuses": plan.inplace_reuses,
                 "workspace_byte_alignment": spec.workspace_alignment,
                 **({"desired_layout": desired_layout} if desired_layout else {}),
                 **({"workspace_io": True} if workspace_io else {}),
                 **({"state_in_place": in_place} if states else {}),
                 "constants_byte_alignment": spec.constants_alignment},
    )


def compile_model(path: str, module_name: str = "default", target: str = "c",
                  input_shapes: dict[str, list[int]] | None = None,
                  model_format: str | None = None, opt_level: int = 3,
                  pass_config: dict[str, Any] | None = None,
                  schedule: str | None = None, workspace: str = "static",
                  strict_int8: bool = False,
                  desired_layout: str | None = None,
                  input_values: dict[str, Any] | None = None,
                  workspace_io: bool = False,
                  custom_ops: dict[str, CustomOp] | None = None) -> CompiledModule:
    """Compile one TFLite or ONNX model to plain C (symbols prefixed `tvmgen_<module_name>_`).

    Fully int8-quantised TFLite models run on integer-only kernels; an operator without one
    runs in float (dequantize -> op -> quantize) with a warning, or, with `strict_int8`,
    raises UnsupportedError.

    `schedule` picks the operator schedules: "vector" (hosts, SIMD cores), "scalar"
    (register-blocked, for Cortex-M), "none" (TVM's unscheduled loops); by default it follows
    the target's -mcpu. `workspace`: "static" (the module owns a static arena; `run(in, out)`)
    or "shared" (`run(in, out, workspace)` takes the caller's arena, see tvmgen_modules.h).
    `desired_layout` ("NHWC", "NCHW"): tvmc's --desired-layout for the float convolutions.
    `input_values` (ONNX): inputs fixed to constant values (e.g. {"sr": 16000}); they leave
    the module's inputs, and If / Loop nodes depending on them fold at compile time.
    `custom_ops`: custom operator name (TFLite: its custom code; ONNX: `DOMAIN.OP` or `OP`)
    -> CustomOp (its C implementation and output declaration), the path of its C file, or a
    (path, outputs) pair; MediaPipe's Convolution2DTransposeBias and com.microsoft's
    DynamicQuantizeLSTM are built in.
    """
    custom_ops = load_custom_ops(custom_ops)
    bad_name = check_module_name(module_name)
    if bad_name:
        raise bad_name.located(path=path)
    if not 0 <= opt_level <= 3:
        raise UsageError(f"opt level {opt_level} is not in 0..3")
    spec = parse_target(target)
    if schedule is not None and schedule not in pipeline.SCHEDULE_VARIANTS:
        raise UsageError(f"unknown schedule '{schedule}'",
                         hint=f"use one of: {', '.join(pipeline.SCHEDULE_VARIANTS)}")
    if desired_layout not in (None, *pipeline.DESIRED_LAYOUTS):
        raise UsageError(f"unknown layout '{desired_layout}'", hint="use NHWC or NCHW")
    if workspace not in codegen.WORKSPACE_MODES:
        raise UsageError(f"unknown workspace mode '{workspace}'",
                         hint=f"use one of: {', '.join(codegen.WORKSPACE_MODES)}")
    schedule_options = pipeline.options_for_target(spec.options.get("mcpu"), schedule)
    start = time.perf_counter()
    imported = frontends.import_model(
        path, module_name, model_format, input_shapes, strict_int8=strict_int8,
        kernel_library=kernels.library_for_target(spec.options.get("mcpu"),
                                                  schedule_options.variant, spec.cmsis_nn),
        input_values=input_values, custom_ops=custom_ops)
    try:
        compiled = _compile_imported(imported, spec, opt_level, pass_config, schedule_options,
                                      workspace, desired_layout, workspace_io, custom_ops)
    except TvmcError as err:
        raise err.located(module=module_name, path=path)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise InternalError(f"compilation failed: {type(exc).__name__}: {first[:300]}",
                            module=module_name, path=path) from exc
    compiled.compile_seconds = time.perf_counter() - start
    compiled.options["strict_int8"] = strict_int8
    if input_values:
        compiled.options["input_values"] = {k: np.asarray(v).tolist()
                                            for k, v in input_values.items()}
    log.info("compiled %s (%s) in %.2f s", module_name, path, compiled.compile_seconds)
    return compiled


MAX_CUSTOM_SOURCE_BYTES = 4 << 20


def load_custom_ops(given: dict[str, Any] | None) -> dict[str, CustomOp]:
    """Name -> CustomOp; a path is read as the C implementation (outputs as the model
    declares them), a (path, outputs) pair with the outputs declared."""
    ops: dict[str, CustomOp] = {}
    for name, value in (given or {}).items():
        if not isinstance(name, str) or not name or not name.isprintable():
            raise UsageError(f"custom operator name {name!r} is not a printable name")
        if isinstance(value, CustomOp):
            if value.name != name:
                raise UsageError(f"custom operator '{name}' is declared as '{value.name}'")
            ops[name] = value
            continue
        outputs = None
        if isinstance(value, tuple):
            value, outputs = value
        path = str(value)
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_CUSTOM_SOURCE_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"cannot read the C file of custom operator '{name}': "
                             f"{exc.strerror or exc}", path=path) from None
        if len(data) > MAX_CUSTOM_SOURCE_BYTES:
            raise UsageError(f"the C file of custom operator '{name}' is larger than 4 MiB",
                             path=path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"the C file of custom operator '{name}' is not UTF-8 text",
                             path=path) from None
        import os

        ops[name] = CustomOp(name, text, os.path.basename(path), outputs)
    check_custom_symbols(ops)
    return ops


def export_model_library_format(modules: CompiledModule | list[CompiledModule], path: str) -> str:
    """Write one MLF v7 archive holding every module; returns `path`."""
    from .mlf import export_model_library_format as export

    return export(modules, path)


def load_model_library_format(path: str) -> Any:
    """Read an MLF archive (v7 with any number of modules, or single-module v5/v6)."""
    from .mlf import load_model_library_format as load

    return load(path)
