"""Write several compiled modules into one Model Library Format (MLF) archive, version 7.

The layout and the per-module metadata keys follow what Apache TVM 0.18 wrote for a list of
modules (RFC 0076); the extra keys are ours and documented in ``docs/mlf-format.md``.

The archive is reproducible: the same modules and the same timestamp give the same bytes.
It is written atomically: a temporary file in the destination directory is renamed over the
destination only once it is complete.
"""
from __future__ import annotations

import datetime
import gzip
import io
import json
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import OutputError, TvmcError, UsageError
from ..interrupts import committed, deferred
from ..c_api import ModuleApi
from ..model import CompiledModule, TensorInfo
from ..names import CText, c_text, validate_module_names
from ..output_paths import resolve_output, temp_prefix
from .analysis import layers_entry, memory_plan_entry

MLF_VERSION = 7
DEVICE_CPU = 1  # kDLCPU, the only device the C backend targets
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%SZ"
UMBRELLA_HEADER = "tvmgen_modules.h"
EXAMPLE_PROGRAM = "tvmgen_example"
EXAMPLE_REQUIRED_CFLAGS = "-std=c11 -Wall -Wextra -Werror"  # kept even when CFLAGS is set
EXAMPLE_OPT_CFLAGS = "-O2"
PRINT_LIMIT = 8  # output values main.c prints per output tensor

FILE_MODE = 0o644
DIR_MODE = 0o755

# numpy dtype -> (kind used by main.c's printer, printf conversion)
_C_VALUE_KINDS: dict[str, tuple[str, str]] = {
    "float32": ("float", "%g"), "float64": ("double", "%g"),
    "int8": ("int8_t", "%d"), "int16": ("int16_t", "%d"),
    "int32": ("int32_t", "%\" PRId32 \""), "int64": ("int64_t", "%\" PRId64 \""),
    "uint8": ("uint8_t", "%u"), "uint16": ("uint16_t", "%u"),
    "uint32": ("uint32_t", "%\" PRIu32 \""), "uint64": ("uint64_t", "%\" PRIu64 \""),
    "bool": ("uint8_t", "%u"),
}


# --------------------------------------------------------------------------------------------
# public entry point


def export_model_library_format(modules: CompiledModule | list[CompiledModule], path: str, *,
                                source_date_epoch: int | None = None) -> str:
    """Write `modules` as one MLF v7 archive at `path` and return `path`.

    `path` ending in ``.tar.gz`` or ``.tgz`` gives a gzip-compressed archive, anything else a
    plain tar. Timestamps come from `source_date_epoch`, else the ``SOURCE_DATE_EPOCH``
    environment variable, else the current time.
    """
    path = os.fspath(path)
    try:
        resolve_output(path)  # a path that can never be written fails before the work
        data = archive_bytes(modules, compress=wants_gzip(path),
                             source_date_epoch=source_date_epoch)
        write_atomically(path, data)
    except TvmcError as err:
        raise err.located(path=path)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one typed error
        raise OutputError(f"cannot write the archive: {exc}", path=path,
                          hint="check that the directory exists and is writable") from exc
    return path


def archive_bytes(modules: CompiledModule | list[CompiledModule], *, compress: bool = False,
                  source_date_epoch: int | None = None) -> bytes:
    """The archive `export_model_library_format` writes, as bytes (``tvmc ... -o -``)."""
    mods = [modules] if isinstance(modules, CompiledModule) else list(modules)
    check_modules(mods)
    return build_archive_bytes(mods, resolve_epoch(source_date_epoch), compress=compress)


# --------------------------------------------------------------------------------------------
# checks and inputs


def check_modules(mods: list[CompiledModule]) -> None:
    """Refuse what would give a broken or ambiguous archive, before anything is written."""
    if not mods:
        raise UsageError("no modules to export", hint="give at least one compiled module")
    for mod in mods:
        if not isinstance(mod, CompiledModule):
            raise UsageError(f"cannot export {type(mod).__name__}: expected a CompiledModule")
    validate_module_names([m.name for m in mods])
    check_c_apis(mods)
    seen: dict[str, str] = {}
    for mod in mods:
        for file_name in mod.sources:
            if not is_plain_file_name(file_name):
                raise OutputError(f"source file name '{file_name}' is not a plain file name",
                                  module=mod.name)
            owner = seen.setdefault(file_name.lower(), mod.name)
            if owner != mod.name:
                raise OutputError(f"source file '{file_name}' is produced by modules "
                                  f"'{owner}' and '{mod.name}'", module=mod.name)


UMBRELLA_MACROS = ("TVMGEN_MODULES_H_", "TVMGEN_MODULES_COUNT", "TVMGEN_MAX_WORKSPACE_SIZE",
                   "TVMGEN_MAX_WORKSPACE_ALIGNMENT")


def check_c_apis(mods: list[CompiledModule]) -> None:
    """Every module has a valid C API and no two modules (or the umbrella header) define the
    same macro or symbol (module `a` tensor `b_x` and module `a_b` tensor `x` would)."""
    owners: dict[str, str] = {macro: "tvmgen_modules.h" for macro in UMBRELLA_MACROS}
    for mod in mods:
        try:
            api = ModuleApi.of(mod)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"the module's C API is invalid: {exc}", module=mod.name) from None
        for name in (*api.macros(), *api.symbols()):
            owner = owners.setdefault(name, mod.name)
            if owner != mod.name:
                raise UsageError(f"'{name}' would be defined by module '{owner}' and module "
                                 f"'{mod.name}'", module=mod.name,
                                 hint="rename one of the modules")


def is_plain_file_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and "\0" not in name


def resolve_epoch(source_date_epoch: int | None) -> int:
    """The archive's single instant: the argument, else $SOURCE_DATE_EPOCH, else now."""
    if source_date_epoch is not None:
        return int(source_date_epoch)
    text = os.environ.get("SOURCE_DATE_EPOCH")
    if text is None or not text.strip():
        return int(time.time())
    try:
        value = int(text.strip())
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH='{text}' is not an integer",
                         hint="set it to seconds since 1970-01-01 UTC, or unset it") from None
    if value < 0:
        raise UsageError(f"SOURCE_DATE_EPOCH={value} is negative",
                         hint="set it to seconds since 1970-01-01 UTC, or unset it")
    return value


def wants_gzip(path: str) -> bool:
    return path.lower().endswith((".tar.gz", ".tgz"))


def tool_version() -> str:
    """The installed version of tvmc-multimodule, or a stand-in when run from a checkout."""
    from importlib import metadata

    try:
        return metadata.version("tvmc-multimodule")
    except metadata.PackageNotFoundError:
        import tvmc_multimodule

        return str(getattr(tvmc_multimodule, "__version__", "0+unknown"))


# --------------------------------------------------------------------------------------------
# metadata.json


def format_datetime(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime(
        DATETIME_FORMAT)


def tensor_entry(tensor: TensorInfo) -> dict[str, Any]:
    """TVM's {size, dtype} plus our shape, c_name and (for integer tensors) quantization."""
    entry: dict[str, Any] = {
        "c_name": tensor.c_name,
        "dtype": tensor.dtype,
        "shape": [int(d) for d in tensor.shape],
        "size": int(tensor.nbytes),
    }
    if tensor.quant is not None:
        entry["quantization"] = tensor.quant.to_json()
    return entry


def tensor_map(tensors: Iterable[TensorInfo]) -> dict[str, dict[str, Any]]:
    """Tensors keyed by model name, in model order; a repeated name falls back to its c_name."""
    out: dict[str, dict[str, Any]] = {}
    for tensor in tensors:
        key = tensor.name if tensor.name and tensor.name not in out else tensor.c_name
        out[key] = tensor_entry(tensor)
    return out


def with_workspace_offsets(entries: dict[str, dict[str, Any]],
                           tensors: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Each tensor's `workspace_offset` when the inputs and outputs live in the workspace."""
    for entry, tensor in zip(entries.values(), tensors):
        if tensor.offset is not None:
            entry["workspace_offset"] = int(tensor.offset)
    return entries


def memory_entry(mod: CompiledModule) -> dict[str, Any]:
    api = ModuleApi.of(mod)
    main = {
        "constants_size_bytes": int(mod.constants_bytes),
        "device": DEVICE_CPU,
        "inputs": with_workspace_offsets(tensor_map(mod.inputs), api.inputs),
        "io_size_bytes": int(mod.io_bytes),
        "liveness_bound_bytes": int(mod.liveness_bound_bytes),
        "outputs": with_workspace_offsets(tensor_map(mod.outputs), api.outputs),
        "workspace_size_bytes": int(mod.workspace_bytes),
    }
    if api.stateful:  # ours: the persistent variables in the module's state buffer
        main["state"] = [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape),
                          "offset": s.offset, "size": s.nbytes,
                          **({"quantization": s.quant.to_json()} if s.quant else {})}
                         for s in api.states]
        main["state_size_bytes"] = api.state_bytes
    operators = [{
        "function_name": op.function_name,
        "workspace": [{"device": DEVICE_CPU, "workspace_size_bytes": int(op.workspace_bytes)}],
    } for op in mod.operators]
    return {"functions": {"main": [main], "operator_functions": operators}}


def module_metadata(mod: CompiledModule, epoch: int) -> dict[str, Any]:
    # "layers" and "memory_plan" are ours (tvmc report; written and validated in analysis.py)
    analysis = {"layers": layers_entry(mod.layers)} if mod.layers else {}
    if mod.memory_layout is not None:
        analysis["memory_plan"] = memory_plan_entry(mod.memory_layout)
    return {
        "executors": ["aot"],
        "export_datetime": format_datetime(epoch),
        "external_dependencies": canonical_json_value(mod.external_dependencies),
        **({"layers": analysis["layers"]} if "layers" in analysis else {}),
        "memory": memory_entry(mod),
        **({"memory_plan": analysis["memory_plan"]} if "memory_plan" in analysis else {}),
        "model_file": os.path.basename(mod.model_path),
        "model_format": mod.model_format,
        "model_name": mod.name,
        "options": canonical_json_value(mod.options),
        "style": "full-model",
        "target": [mod.target],
    }


def archive_metadata(mods: list[CompiledModule], epoch: int) -> dict[str, Any]:
    return {
        "generator": f"tvmc-multimodule {tool_version()}",
        "modules": {m.name: module_metadata(m, epoch) for m in mods},
        "version": MLF_VERSION,
    }


def canonical_json_value(value: Any) -> Any:
    """A JSON-ready copy of user options: sorted keys, lists for tuples and sets, str otherwise."""
    if isinstance(value, dict):
        return {str(k): canonical_json_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical_json_value(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical_json_value(v) for v in value), key=repr)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def metadata_text(mods: list[CompiledModule], epoch: int) -> str:
    # key order is set by the builders above (alphabetical like TVM's sort_keys, except
    # inputs/outputs which keep the model's order)
    return json.dumps(archive_metadata(mods, epoch), indent=2) + "\n"


# --------------------------------------------------------------------------------------------
# parameters


def params_bytes(params: dict[str, np.ndarray]) -> bytes:
    """The module's constants in TVM's param-dict format, names sorted (stable bytes)."""
    import tvm

    ordered = {name: np.ascontiguousarray(params[name]) for name in sorted(params)}
    return bytes(tvm.runtime.save_param_dict(ordered))


# --------------------------------------------------------------------------------------------
# C: umbrella header and the example host program


def max_expression(terms: list[str]) -> str:
    """MAX of constant expressions, as a balanced tree of ?: (text grows as n log n)."""
    if len(terms) == 1:
        return f"({terms[0]})"
    half = len(terms) // 2
    left, right = max_expression(terms[:half]), max_expression(terms[half:])
    return f"({left} > {right} ? {left} : {right})"


def umbrella_header(mods: list[CompiledModule]) -> str:
    apis = [ModuleApi.of(m) for m in mods]
    names = ", ".join(api.name for api in apis)
    lines = [
        "/* tvmgen_modules.h: every module of this Model Library Format archive.",
        " * Generated by tvmc-multimodule; do not edit.",
        f" * Modules: {c_text(names, CText.COMMENT)} */",
        "#ifndef TVMGEN_MODULES_H_",
        "#define TVMGEN_MODULES_H_",
        "",
    ]
    lines += [f'#include "{api.header_file}"' for api in apis]
    lines += [
        "",
        "/* number of modules in the archive */",
        f"#define TVMGEN_MODULES_COUNT {len(mods)}",
        "",
        "/* bytes of one workspace that any module can use when the modules run one at a time */",
        "#define TVMGEN_MAX_WORKSPACE_SIZE "
        + max_expression([api.workspace_size_macro for api in apis]),
        "/* ... and the alignment it needs (the largest of the modules') */",
        "#define TVMGEN_MAX_WORKSPACE_ALIGNMENT "
        + max_expression([api.workspace_alignment_macro for api in apis]),
        "",
        "#endif /* TVMGEN_MODULES_H_ */",
        "",
    ]
    return "\n".join(lines)


def dtype_kind(dtype: str) -> tuple[str, str, int]:
    """(C type, printf conversion, item size) for main.c; unknown types print raw bytes."""
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        bits = re.search(r"(\d+)$", dtype)
        itemsize = (int(bits.group(1)) + 7) // 8 if bits else 1
    c_type, conversion = _C_VALUE_KINDS.get(dtype, ("raw", "%02x"))
    return c_type, conversion, max(itemsize, 1)


def printer_name(dtype: str) -> str:
    return "print_" + re.sub(r"[^0-9A-Za-z_]", "_", dtype)


def printer_functions(dtypes: set[str]) -> list[str]:
    """One print_<type> helper per output dtype used (unused static functions break -Werror)."""
    lines: list[str] = []
    for dtype in sorted(dtypes):
        c_type, conversion, itemsize = dtype_kind(dtype)
        fn = printer_name(dtype)
        lines += [f"static void {fn}(const uint8_t* data, size_t bytes) {{",
                  f"  size_t count = bytes / {itemsize};",
                  "  size_t i;",
                  f"  for (i = 0; i < count && i < {PRINT_LIMIT}; ++i) {{"]
        if c_type == "raw":
            lines += ["    size_t b;",
                      "    printf(\" 0x\");",
                      f"    for (b = 0; b < {itemsize}; ++b) printf(\"%02x\", "
                      f"(unsigned)data[i * {itemsize} + {itemsize} - 1 - b]);"]
        else:
            value = "(double)v" if c_type in ("float", "double") else (
                "(int)v" if conversion == "%d" else ("(unsigned)v" if conversion == "%u" else "v"))
            lines += [f"    {c_type} v;",
                      f"    memcpy(&v, data + i * {itemsize}, sizeof(v));",
                      f"    printf(\" {conversion}\", {value});"]
        lines += ["  }",
                  "  if (count > " + str(PRINT_LIMIT) + ") printf(\" ...\");",
                  "  printf(\"\\n\");",
                  "}", ""]
    return lines


def example_buffers(index: int, api: ModuleApi) -> list[str]:
    lines = [f"/* module {api.name} */"]
    if api.workspace_io:
        return lines + ["/* inputs and outputs inside its workspace */"]
    for kind, tensors in (("in", api.inputs), ("out", api.outputs)):
        for j, tensor in enumerate(tensors):
            lines.append(f"static _Alignas(16) uint8_t m{index}_{kind}{j}"
                         f"[EXAMPLE_BYTES({tensor.size_macro})];"
                         f" /* {tensor.comment}: {tensor.shape_text} */")
    return lines


def example_run_block_io(api: ModuleApi) -> list[str]:
    """A module whose inputs and outputs live in its workspace: their pointers from the
    header's map functions."""
    arena = "shared_workspace" if api.shared else api.static_workspace_symbol
    lines = ["  {",
             f"    {api.inputs_struct} inputs = {api.map_inputs}({arena});",
             f"    {api.outputs_struct} outputs = {api.map_outputs}({arena});",
             "    int32_t status;"]
    lines += [f"    memset(inputs.{t.c_name}, 0, {t.size_macro});" for t in api.inputs]
    call = api.run.call({"workspace": "shared_workspace"})
    lines += [f"    status = {call};",
              "    if (status != 0) {",
              f"      fprintf(stderr, \"%s: {api.run.symbol} returned %d\\n\", "
              f"{c_text(api.name, CText.STRING)}, (int)status);",
              "      ++failures;",
              "    } else {"]
    for tensor in api.outputs:
        label = f"{api.name} {tensor.name} ({tensor.shape_text}):"
        lines += [f"      printf(\"%s\", {c_text(label, CText.STRING)});",
                  f"      {printer_name(tensor.dtype)}(outputs.{tensor.c_name}, "
                  f"{tensor.size_macro});"]
    lines += ["    }", "  }"]
    return lines


def example_run_block(index: int, api: ModuleApi) -> list[str]:
    if api.workspace_io:
        return example_run_block_io(api)
    lines = ["  {",
             f"    {api.inputs_struct} inputs;",
             f"    {api.outputs_struct} outputs;",
             "    int32_t status;",
             "    memset(&inputs, 0, sizeof(inputs));",
             "    memset(&outputs, 0, sizeof(outputs));"]
    for j, tensor in enumerate(api.inputs):
        lines += [f"    memset(m{index}_in{j}, 0, sizeof(m{index}_in{j}));",
                  f"    inputs.{tensor.c_name} = m{index}_in{j};"]
    for j, tensor in enumerate(api.outputs):
        lines.append(f"    outputs.{tensor.c_name} = m{index}_out{j};")
    call = api.run.call({"inputs": "&inputs", "outputs": "&outputs",
                         "workspace": "shared_workspace"})
    if api.stateful:  # a streaming model: start a sequence, then one run per new input
        lines += ["    int step;",
                  f"    status = {api.reset.call({})};",
                  f"    for (step = 0; step < EXAMPLE_STEPS && status == 0; ++step) {{",
                  "      /* write this step's inputs here */",
                  f"      status = {call};", "    }"]
    else:
        lines.append(f"    status = {call};")
    lines += ["    if (status != 0) {",
              f"      fprintf(stderr, \"%s: {api.run.symbol} returned %d\\n\", "
              f"{c_text(api.name, CText.STRING)}, (int)status);",
              "      ++failures;",
              "    } else {"]
    for j, tensor in enumerate(api.outputs):
        label = f"{api.name} {tensor.name} ({tensor.shape_text}):"
        lines += [f"      printf(\"%s\", {c_text(label, CText.STRING)});",
                  f"      {printer_name(tensor.dtype)}(m{index}_out{j}, {tensor.size_macro});"]
    lines += ["    }", "  }"]
    return lines


def example_main(mods: list[CompiledModule]) -> str:
    apis = [ModuleApi.of(m) for m in mods]
    lines = [
        "/* main.c: example host program for this Model Library Format archive.",
        " * Generated by tvmc-multimodule. Runs every module once with all-zero inputs and",
        f" * prints the first {PRINT_LIMIT} values of each output. Build with the Makefile or",
        " * CMakeLists.txt next to this file. */",
        "#include <inttypes.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <stdio.h>",
        "#include <string.h>",
        "",
        f'#include "{UMBRELLA_HEADER}"',
        "",
        "/* a zero-byte tensor still gets a one-byte buffer (C has no empty arrays) */",
        "#define EXAMPLE_BYTES(n) ((n) > 0 ? (n) : 1)",
        *(["/* runs of a stateful (streaming) module, from one reset */",
           "#define EXAMPLE_STEPS 4"] if any(api.stateful for api in apis) else []),
        "",
    ]
    for i, api in enumerate(apis):
        lines += example_buffers(i, api) + [""]
    if any(api.run.takes_workspace for api in apis):
        lines += ["/* one arena for every module compiled with --workspace shared */",
                  "static _Alignas(TVMGEN_MAX_WORKSPACE_ALIGNMENT) uint8_t shared_workspace"
                  "[EXAMPLE_BYTES(TVMGEN_MAX_WORKSPACE_SIZE)];", ""]
    lines += printer_functions({t.dtype for api in apis for t in api.outputs})
    lines += ["int main(void) {", "  int failures = 0;"]
    for i, api in enumerate(apis):
        lines += example_run_block(i, api)
    lines += ["  printf(\"%d of %d modules ran\\n\", TVMGEN_MODULES_COUNT - failures, "
              "TVMGEN_MODULES_COUNT);",
              "  return failures == 0 ? 0 : 1;",
              "}", ""]
    return "\n".join(lines)


def source_order_key(file_name: str) -> tuple[str, int, str]:
    """`m_lib2.c` before `m_lib10.c`."""
    match = re.match(r"^(.*?)(\d+)(\.[^.]*)$", file_name)
    if match:
        return match.group(1), int(match.group(2)), match.group(3)
    return file_name, -1, ""


def compiled_sources(mods: list[CompiledModule]) -> list[str]:
    """The C files of every module, in module order then lib order."""
    files: list[str] = []
    for mod in mods:
        files += sorted((f for f in mod.sources if f.endswith(".c")), key=source_order_key)
    return files


def example_makefile(mods: list[CompiledModule]) -> str:
    sources = compiled_sources(mods)
    objects = " ".join(f"build/{os.path.splitext(f)[0]}.o" for f in sources)
    headers = " ".join(["$(INCLUDE)/" + UMBRELLA_HEADER]
                       + [f"$(INCLUDE)/{ModuleApi.of(m).header_file}" for m in mods])
    lines = [
        "# Builds every module of this Model Library Format archive plus main.c into one",
        "# host executable. Generated by tvmc-multimodule.",
        "#   tar xf models.tar -C out && make -C out/templates/host && out/templates/host/"
        f"{EXAMPLE_PROGRAM}",
        "",
        "# For a Cortex-M board (startup code, linker script): tvmc micro create-project.",
        "# TVMGEN_CFLAGS are always used; CFLAGS (optimisation) may come from the environment",
        f"TVMGEN_CFLAGS := {EXAMPLE_REQUIRED_CFLAGS}",
        f"CFLAGS ?= {EXAMPLE_OPT_CFLAGS}",
        "LDLIBS += -lm",
        "ROOT := ../..",
        "INCLUDE := $(ROOT)/codegen/host/include",
        "CPPFLAGS += -I$(INCLUDE)",
        f"HEADERS := {headers}",
        f"OBJECTS := build/main.o {objects}",
        "",
        ".PHONY: all clean",
        f"all: {EXAMPLE_PROGRAM}",
        "",
        f"{EXAMPLE_PROGRAM}: $(OBJECTS)",
        "\t$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJECTS) $(LDLIBS)",  # -mcpu, -flto... link too
        "",
        "build:",
        "\tmkdir -p build",
        "",
        "build/main.o: main.c $(HEADERS) | build",
        "\t$(CC) $(CPPFLAGS) $(TVMGEN_CFLAGS) $(CFLAGS) -c main.c -o $@",
        "",
    ]
    for file_name in sources:
        stem = os.path.splitext(file_name)[0]
        lines += [f"build/{stem}.o: $(ROOT)/codegen/host/src/{file_name} $(HEADERS) | build",
                  "\t$(CC) $(CPPFLAGS) $(TVMGEN_CFLAGS) $(CFLAGS) -c $< -o $@", ""]
    lines += ["clean:", f"\trm -rf build {EXAMPLE_PROGRAM}", ""]
    return "\n".join(lines)


def example_cmakelists(mods: list[CompiledModule]) -> str:
    sources = "\n".join(f"  ${{TVMGEN_ROOT}}/codegen/host/src/{f}" for f in compiled_sources(mods))
    return "\n".join([
        "# Builds every module of this Model Library Format archive as the static library",
        "# tvmgen_modules, and main.c into the host executable " + EXAMPLE_PROGRAM + ".",
        "# Generated by tvmc-multimodule.",
        "cmake_minimum_required(VERSION 3.13)",
        "project(tvmgen_example C)",
        "",
        "set(CMAKE_C_STANDARD 11)",
        "set(CMAKE_C_STANDARD_REQUIRED ON)",
        "set(CMAKE_C_EXTENSIONS OFF)",
        "set(TVMGEN_ROOT ${CMAKE_CURRENT_SOURCE_DIR}/../..)",
        "",
        "add_library(tvmgen_modules STATIC",
        sources,
        ")",
        "target_include_directories(tvmgen_modules PUBLIC ${TVMGEN_ROOT}/codegen/host/include)",
        "if(NOT MSVC)",
        "  target_compile_options(tvmgen_modules PRIVATE -Wall -Wextra -Werror -O2)",
        "  target_link_libraries(tvmgen_modules PUBLIC m)",
        "endif()",
        "",
        f"add_executable({EXAMPLE_PROGRAM} main.c)",
        f"target_link_libraries({EXAMPLE_PROGRAM} PRIVATE tvmgen_modules)",
        "if(NOT MSVC)",
        f"  target_compile_options({EXAMPLE_PROGRAM} PRIVATE -Wall -Wextra -Werror -O2)",
        "endif()",
        "",
    ])


# --------------------------------------------------------------------------------------------
# archive assembly


def archive_files(mods: list[CompiledModule], epoch: int) -> dict[str, bytes]:
    """Every file of the archive: relative path -> contents."""
    files: dict[str, str | bytes] = {"metadata.json": metadata_text(mods, epoch)}
    for mod in mods:
        for file_name, text in mod.sources.items():
            files[f"codegen/host/src/{file_name}"] = text
        files[f"codegen/host/include/{ModuleApi.of(mod).header_file}"] = mod.header
        files[f"parameters/{mod.name}.params"] = params_bytes(mod.params)
        files[f"src/{mod.name}.relax"] = mod.relax_text
    files[f"codegen/host/include/{UMBRELLA_HEADER}"] = umbrella_header(mods)
    files["templates/host/Makefile"] = example_makefile(mods)
    files["templates/host/CMakeLists.txt"] = example_cmakelists(mods)
    files["templates/host/main.c"] = example_main(mods)
    return {path: data.encode("utf-8") if isinstance(data, str) else bytes(data)
            for path, data in files.items()}


def directories_of(paths: Iterable[str]) -> set[str]:
    dirs: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return dirs


def tar_entry(name: str, epoch: int, *, size: int = 0, is_dir: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo("./" + name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = DIR_MODE if is_dir else FILE_MODE
    info.size = 0 if is_dir else size
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def tar_bytes(files: dict[str, bytes], epoch: int) -> bytes:
    """An uncompressed tar, entries sorted (parents first), names prefixed with ``./`` as TVM."""
    entries = [(path, False) for path in files] + [(d, True) for d in directories_of(files)]
    entries.sort(key=lambda item: item[0].split("/"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, is_dir in entries:
            if is_dir:
                tar.addfile(tar_entry(name, epoch, is_dir=True))
            else:
                data = files[name]
                tar.addfile(tar_entry(name, epoch, size=len(data)), io.BytesIO(data))
    return buffer.getvalue()


def gzip_bytes(data: bytes, epoch: int) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=epoch, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


def build_archive_bytes(mods: list[CompiledModule], epoch: int, *, compress: bool = False) -> bytes:
    data = tar_bytes(archive_files(mods, epoch), epoch)
    return gzip_bytes(data, epoch) if compress else data


# --------------------------------------------------------------------------------------------
# atomic write


def target_mode(path: str) -> int:
    """Keep the permissions of the file being replaced; new files get rw-r--r--."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return FILE_MODE


def write_atomically(path: str, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, then rename it over `path`.

    Whatever stops the write (an OSError, Ctrl-C, SIGTERM turned into an exception by the
    CLI) removes the temporary file and leaves an existing `path` untouched. Only a regular
    file is replaced; a symbolic link is written through (see `output_paths`). Once the
    rename is done, `interrupts.committed()` tells the CLI the outcome is success.
    """
    target = resolve_output(path)
    directory = os.path.dirname(os.path.abspath(target))
    tmp: str | None = None
    try:
        with deferred():  # the file exists only once `tmp` names it
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=temp_prefix(target),
                                       suffix=".tmp")
            handle = os.fdopen(fd, "wb")
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, target_mode(target))
        with deferred():  # renamed means done: no interrupt between the two
            os.replace(tmp, target)
            tmp = None
            committed()
    except BaseException:
        if tmp is not None:
            with deferred():
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
        raise
