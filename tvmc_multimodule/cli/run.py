"""`tvmc run MLF --module NAME`: build one module of an archive for the host and run it once.

There is no TVM runtime to load the code into any more, so the module is run the way a
firmware would: a small generated C program (main.c) reads each input from a file, calls
``tvmgen_<name>_run`` and writes each output to a file; it is built with the host C compiler
from that module's sources only, so a link error also reveals a module that is not
self-contained.

Missing --inputs: every input is filled with zeros by default (deterministic, and valid for
every dtype); tvmc filled them with random values. ``--fill-mode ones|random`` is available,
``random`` with a fixed seed so runs can be compared.
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..c_api import ModuleApi
from ..errors import BuildError, OutputError, TvmcError, UsageError
from ..model import TensorInfo
from ..processes import child_options
from . import micro, options
from .report import find_c_compiler, first_error_line

BUILD_TIMEOUT_S = 900
RUN_TIMEOUT_S = 600
RANDOM_SEED = 0
MAX_INVOKES = 1_000_000


def register_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="build one module of an archive for the host and run it",
        description="Build one module of a Model Library Format archive with the host C\n"
                    "compiler, run it once on the given inputs and save its outputs.\n"
                    "This compiles and executes the C code inside the archive: run only\n"
                    "archives you trust. Names in its metadata are validated first (exit 5).",
        epilog="example:\n  tvmc run models.tar --module kws --inputs in.npz -o out.npz "
               "--print-top 3", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", metavar="MLF", help="Model Library Format archive (.tar)")
    parser.add_argument("--module", metavar="NAME",
                        help="module to run (needed when the archive holds several)")
    parser.add_argument("-i", "--inputs", metavar="NPZ",
                        help="input tensors by model tensor name (or C name), as .npz")
    parser.add_argument("-o", "--outputs", metavar="NPZ",
                        help="write the output tensors, by model tensor name, to this .npz")
    parser.add_argument("--fill-mode", choices=("zeros", "ones", "random"), default="zeros",
                        help="values of the inputs when --inputs is not given (default: zeros)")
    parser.add_argument("--print-top", type=int, metavar="N",
                        help="print the N largest values of each output and their indices")
    parser.add_argument("--invokes", type=int, metavar="N",
                        help="run a sequence: every input array carries a leading axis of N "
                             "steps; the module is reset once and run N times in order on "
                             "one state, each output saved with the same leading axis. "
                             "(--device micro: run N times on the same inputs, the outputs "
                             "are the last run's)")
    parser.add_argument("--cmsis-nn-path", metavar="DIR",
                        help="CMSIS-NN checkout to build with a module compiled with --target "
                             "\"cmsis-nn, c\" (host: its portable C)")
    micro.add_device_options(parser)
    options.add_verbose(parser)
    parser.set_defaults(func=drive_run)


def drive_run(args: argparse.Namespace) -> int:
    if args.device == "micro":
        return micro.drive_run_on_device(args)
    if args.profile or getattr(args, "profile_json", None):
        raise UsageError("--profile needs --device micro (a tvmc micro project)")
    _validate(args)
    from ..mlf import extract_archive, load_model_library_format

    with tempfile.TemporaryDirectory(prefix="tvmc-run-") as tmp:
        root = os.path.join(tmp, "mlf")
        extract_archive(args.archive, root)
        try:
            loaded = load_model_library_format(root)
        except OutputError as err:  # name the archive, not the temporary directory
            raise OutputError(err.message, module=err.module, path=args.archive,
                              hint=err.hint) from None
        module = _select_module(loaded.modules, args.module, args.archive)
        libraries = _libraries(module, getattr(args, "cmsis_nn_path", None), args.archive)
        steps = args.invokes
        try:
            arrays = (match_inputs(_load_npz(args.inputs, module.inputs, steps), module.inputs,
                                   steps)
                      if args.inputs
                      else fill_inputs(module.inputs, args.fill_mode, steps))
            executable = build_runner(root, module.c_api, list(module.sources),
                                      os.path.join(tmp, "build"), steps or 1, libraries)
            outputs = run_runner(executable, arrays, module.outputs, os.path.join(tmp, "io"),
                                 steps)
        except TvmcError as err:
            raise options.locate_all(err, module=module.name, path=args.archive)
    if args.outputs:
        save_npz(outputs, args.outputs)
    _print_results(outputs, args.print_top)
    if args.outputs:
        print(f"wrote {args.outputs}")
    return 0


def _libraries(module: Any, cmsis_nn_path: str | None, archive: str) -> list[str]:
    """Compiler arguments of the libraries the module calls: CMSIS-NN's include directory and
    int8 sources (built with the harness); a module calling it needs --cmsis-nn-path."""
    from ..micro.cmsis_nn import EXTERNAL_LIBRARY, check_root, int8_sources

    if EXTERNAL_LIBRARY not in module.external_dependencies:
        return []
    if cmsis_nn_path is None:
        raise UsageError(f"module {module.name} calls CMSIS-NN (compiled with --target "
                         '"cmsis-nn, c"): give its sources with --cmsis-nn-path DIR',
                         path=archive, hint="a checkout of github.com/ARM-software/CMSIS-NN")
    root = check_root(cmsis_nn_path)
    return ["-I", str(root / "Include"), *map(str, int8_sources(root))]


def _validate(args: argparse.Namespace) -> None:
    problems: list[TvmcError] = []
    missing = options.archive_problem(args.archive)
    if missing is not None:
        problems.append(missing)
    if args.inputs and not os.path.isfile(args.inputs):
        problems.append(UsageError("inputs file not found", path=args.inputs))
    if args.invokes is not None and not 1 <= args.invokes <= MAX_INVOKES:
        problems.append(UsageError(f"--invokes {args.invokes}: N must be 1 to {MAX_INVOKES}"))
    if args.print_top is not None and args.print_top < 1:
        problems.append(UsageError(f"--print-top {args.print_top}: N must be at least 1"))
    if args.outputs:
        try:
            options.check_output_path(args.outputs, [p for p in (args.archive, args.inputs)
                                                     if p])
        except TvmcError as err:
            problems.append(err)
    options.raise_all(problems)


def _select_module(modules: dict[str, Any], wanted: str | None, archive: str) -> Any:
    names = ", ".join(sorted(modules)) or "(none)"
    if wanted is None:
        if len(modules) == 1:
            return next(iter(modules.values()))
        raise UsageError(f"the archive holds {len(modules)} modules: choose one with --module",
                         path=archive, hint=f"modules: {names}")
    if wanted not in modules:
        raise UsageError(f"no module '{wanted}' in the archive", path=archive,
                         hint=f"modules: {names}")
    return modules[wanted]


# ----------------------------------------------------------------------------- inputs

def _load_npz(path: str, inputs: Sequence[TensorInfo] | None = None,
              steps: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz. With the module's `inputs`, each array's header is read first:
    one whose element count differs from its input's is refused before it is loaded (a
    header may declare 10^12 elements), and arrays of unknown names are not loaded at all
    (an empty stand-in keeps the name for `match_inputs` to report)."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"cannot read inputs: {exc}", path=path) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise UsageError("not an .npz file (a single .npy array?)", path=path,
                         hint="save inputs with numpy.savez(path, name=array, ...)")
    try:
        with data:
            if inputs is None:
                return {key: data[key] for key in data.files}
            wanted = {n: info for info in inputs for n in (info.name, info.c_name)}
            shapes = _declared_shapes(data)
            options.raise_all([problem for key, shape in shapes.items() if key in wanted
                               for problem in _count_problem(key, shape, wanted[key], path,
                                                             steps)])
            return {key: data[key] if key in wanted else np.empty(0) for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # object arrays (they need pickle), truncated or corrupt members
        raise UsageError(f"cannot read inputs: {exc}", path=path) from None


def _declared_shapes(data: Any) -> dict[str, tuple[int, ...]]:
    """Each member's shape as its .npy header declares it, without reading the data."""
    fmt = np.lib.format
    shapes = {}
    members = set(data.zip.namelist())
    for key in data.files:
        with data.zip.open(f"{key}.npy" if f"{key}.npy" in members else key) as member:
            version = fmt.read_magic(member)
            reader = fmt.read_array_header_1_0 if version == (1, 0) else \
                fmt.read_array_header_2_0
            shapes[key] = tuple(reader(member)[0])
    return shapes


def _count_problem(key: str, shape: tuple[int, ...], info: TensorInfo,
                   path: str, steps: int | None = None) -> list[UsageError]:
    count = int(np.prod(shape, dtype=object))
    need = int(np.prod(info.shape, dtype=np.int64)) * (steps or 1)
    if count == need:
        return []
    if steps is not None:
        return [UsageError(f"input '{key}' has the shape {_shape(shape)}: with --invokes "
                           f"{steps} its first axis must be the {steps} steps of "
                           f"{_shape(info.shape)}", path=path)]
    return [UsageError(f"input '{key}' has {count} elements {_shape(shape)}, the model needs "
                       f"{need} {_shape(info.shape)}", path=path)]


def match_inputs(given: dict[str, np.ndarray], inputs: Sequence[TensorInfo],
                 steps: int | None = None) -> list[np.ndarray]:
    """The arrays in the module's input order; keys may be tensor names or C names. With
    `steps`, each array holds that many inputs along its first axis."""
    problems: list[TvmcError] = []
    missing: list[str] = []
    arrays: list[np.ndarray] = []
    for info in inputs:
        key = info.name if info.name in given else info.c_name if info.c_name in given else None
        if key is None:
            missing.append(info.name)
            continue
        try:
            arrays.append(coerce_input(given[key], info) if steps is None
                          else coerce_sequence(given[key], info, steps))
        except UsageError as err:
            problems.append(err)
    known = {n for info in inputs for n in (info.name, info.c_name)}
    extra = sorted(set(given) - known)
    expected = f"the module's inputs are {_names(inputs)}"
    if missing:
        problems.append(UsageError(f"--inputs lacks {', '.join(missing)}", hint=expected))
    if extra:
        problems.append(UsageError(f"--inputs has unknown tensor(s) {', '.join(extra)}",
                                   hint=None if missing else expected))
    options.raise_all(problems)
    return arrays


def _names(tensors: Sequence[TensorInfo]) -> str:
    return ", ".join(f"{t.name}:{_shape(t.shape)}:{t.dtype}" for t in tensors) or "(none)"


def _shape(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def coerce_input(array: np.ndarray, info: TensorInfo) -> np.ndarray:
    """The array in the model's dtype and shape, if that loses nothing; else a UsageError.

    Any shape with the right element count is accepted (a missing batch dimension is
    common); float64 -> float32 is accepted (numpy's default float); integers are accepted
    when every value fits the model's integer type.
    """
    want = np.dtype(info.dtype)
    count = int(np.prod(info.shape, dtype=np.int64))
    if array.size != count:
        raise UsageError(f"input '{info.name}' has {array.size} elements "
                         f"{_shape(array.shape)}, the model needs {count} {_shape(info.shape)}")
    if array.dtype != want:
        array = _convert_dtype(array, want, info.name)
    return np.ascontiguousarray(array.reshape(info.shape))


def coerce_sequence(array: np.ndarray, info: TensorInfo, steps: int) -> np.ndarray:
    """`steps` inputs stacked on the first axis, each coerced as by `coerce_input`."""
    if array.ndim < 1 or array.shape[0] != steps:
        raise UsageError(f"input '{info.name}' has the shape {_shape(array.shape)}: with "
                         f"--invokes {steps} its first axis must be the {steps} steps",
                         hint=f"stack the inputs of each run: shape [{steps},"
                              f"{','.join(str(d) for d in info.shape)}]")
    try:
        return np.stack([coerce_input(array[k], info) for k in range(steps)])
    except UsageError as err:
        raise UsageError(f"{err.message} (one step of --invokes {steps})") from None


def _convert_dtype(array: np.ndarray, want: np.dtype, name: str) -> np.ndarray:
    if array.dtype.kind == "f" and want.kind == "f":
        return array.astype(want)
    if array.dtype.kind in "biu" and want.kind in "iu":
        converted = array.astype(want)
        if np.array_equal(converted.astype(array.dtype), array):
            return converted
        raise UsageError(f"input '{name}' has {array.dtype} values that do not fit {want}")
    raise UsageError(f"input '{name}' is {array.dtype}, the model needs {want}",
                     hint="convert (or quantize) it first, e.g. array.astype(...)")


def fill_inputs(inputs: Sequence[TensorInfo], mode: str,
                steps: int | None = None) -> list[np.ndarray]:
    """Inputs of `mode`; with `steps`, that many stacked on a first axis."""
    rng = np.random.default_rng(RANDOM_SEED)
    arrays = []
    for info in inputs:
        dtype = np.dtype(info.dtype)
        shape = tuple(info.shape) if steps is None else (steps, *info.shape)
        if mode == "zeros":
            arrays.append(np.zeros(shape, dtype))
        elif mode == "ones":
            arrays.append(np.ones(shape, dtype))
        elif dtype.kind == "f":
            arrays.append(rng.uniform(-1.0, 1.0, shape).astype(dtype))
        else:
            low, high = _int_range(dtype)
            arrays.append(rng.integers(low, high, shape, endpoint=True).astype(dtype))
    return arrays


def _int_range(dtype: np.dtype) -> tuple[int, int]:
    if dtype.kind == "b":
        return 0, 1
    info = np.iinfo(dtype)
    return max(info.min, -128), min(info.max, 127)  # the quantized range int8/uint8 models use


# ----------------------------------------------------------------------------- harness

def _entry(api: ModuleApi) -> Any:
    """The function the harness calls: `run`, or with the inputs and outputs inside the
    workspace the one that takes the harness's own arena."""
    return api.runner_entry if api.workspace_io else api.run


def _workspace_lines(api: ModuleApi) -> list[str]:
    """A static arena of the metadata's size and alignment when `run` takes a workspace."""
    if not _entry(api).takes_workspace:
        return []
    return [f"#if {api.workspace_size_macro} > {api.workspace_bytes} || "
            f"{api.workspace_alignment_macro} > {api.workspace_alignment}",
            "#error \"the header's workspace does not fit the metadata's\"", "#endif",
            f"static _Alignas({api.workspace_alignment}) uint8_t "
            f"workspace[{max(api.workspace_bytes, 1)}];"]


def _mode_check(api: ModuleApi) -> list[str]:
    """The header must declare the workspace mode the metadata records."""
    condition = "!defined" if api.shared else "defined"
    io = "!defined" if api.workspace_io else "defined"
    return [f"#if {condition}({api.workspace_shared_macro})",
            "#error \"the header's workspace mode differs from the metadata's\"", "#endif",
            f"#if {io}({api.workspace_io_macro})",
            "#error \"the header's inputs and outputs are not where the metadata says\"",
            "#endif"]


def harness_source(api: ModuleApi, steps: int = 1) -> str:
    """main.c: argv = input files..., output files...; exit 0 on success. Each file holds
    `steps` consecutive values of its tensor: the module is reset once (a stateful one) and
    run `steps` times in order, each run on the next input values, its outputs kept."""
    checks, loads, allocs, per_step, saves = [], [], [], [], []
    for i, t in enumerate(api.inputs, 1):
        loads.append(f"  in{i - 1} = (uint8_t*)load_file(argv[{i}], {steps}u * {t.nbytes}u);")
    for j, t in enumerate(api.outputs):
        allocs.append(f"  out{j} = (uint8_t*)alloc_buffer({steps}u * {t.nbytes}u);")
    if api.workspace_io:  # the buffers are inside the workspace: copy the inputs there
        allocs += [f"  inputs = {api.map_inputs}(workspace);",
                   f"  outputs = {api.map_outputs}(workspace);"]
        per_step += [f"    memcpy(inputs.{t.c_name}, in{i} + step * {t.nbytes}u, {t.nbytes}u);"
                     for i, t in enumerate(api.inputs)]
    else:
        per_step += [f"    inputs.{t.c_name} = in{i} + step * {t.nbytes}u;"
                     for i, t in enumerate(api.inputs)]
        per_step += [f"    outputs.{t.c_name} = out{j} + step * {t.nbytes}u;"
                     for j, t in enumerate(api.outputs)]
    copies = ([f"    memcpy(out{j} + step * {t.nbytes}u, outputs.{t.c_name}, {t.nbytes}u);"
               for j, t in enumerate(api.outputs)] if api.workspace_io else [])
    for j, t in enumerate(api.outputs):
        saves.append(f"  save_file(argv[{1 + len(api.inputs) + j}], out{j}, "
                     f"{steps}u * {t.nbytes}u);")
    for t in (*api.inputs, *api.outputs):
        # the header's size macros must agree with the metadata the buffers are sized from
        checks.append(f"#ifdef {t.size_macro}\n_Static_assert({t.size_macro} == {t.nbytes}, "
                      f"\"{t.c_name}: header and metadata sizes differ\");\n#endif")
    if api.stateful:
        checks.append(f"_Static_assert({api.state_size_macro} == {api.state_bytes}, "
                      "\"header and metadata state sizes differ\");")
    argc = 1 + len(api.inputs) + len(api.outputs)
    call = _entry(api).call({"inputs": "&inputs", "outputs": "&outputs",
                             "workspace": "workspace"})
    buffers = [f"  uint8_t* in{i} = 0;" for i in range(len(api.inputs))]
    buffers += [f"  uint8_t* out{j} = 0;" for j in range(len(api.outputs))]
    reset = ([f"  if ({api.reset.call({})} != 0) {{",
              f"    fprintf(stderr, \"{api.reset.symbol} failed\\n\");", "    return 1;", "  }"]
             if api.stateful else [])
    return f"""\
/* Generated by `tvmc run`: runs module '{api.name}' {steps} time(s) on inputs read from files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "{api.header_file}"

{chr(10).join(checks)}
{chr(10).join(_mode_check(api) + _workspace_lines(api))}

static void* alloc_buffer(size_t size) {{
  void* data = calloc(size ? size : 1, 1);
  if (!data) {{ fprintf(stderr, "out of memory\\n"); exit(3); }}
  return data;
}}

static void* load_file(const char* path, size_t size) {{
  void* data = alloc_buffer(size);
  FILE* f = fopen(path, "rb");
  if (!f || fread(data, 1, size, f) != size) {{
    fprintf(stderr, "cannot read %zu bytes from %s\\n", size, path);
    exit(3);
  }}
  fclose(f);
  return data;
}}

static void save_file(const char* path, const void* data, size_t size) {{
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {{
    fprintf(stderr, "cannot write %s\\n", path);
    exit(3);
  }}
}}

int main(int argc, char** argv) {{
  {api.inputs_struct} inputs;
  {api.outputs_struct} outputs;
  int32_t status;
  size_t step;
{chr(10).join(buffers)}
  if (argc != {argc}) {{
    fprintf(stderr, "expected {argc - 1} file arguments\\n");
    return 2;
  }}
  memset(&inputs, 0, sizeof(inputs));
  memset(&outputs, 0, sizeof(outputs));
{chr(10).join(loads + allocs + reset)}
  for (step = 0; step < {steps}u; ++step) {{
{chr(10).join(per_step)}
    status = {call};
    if (status != 0) {{
      fprintf(stderr, "{_entry(api).symbol} returned %d at run %zu\\n", (int)status, step + 1);
      return 1;
    }}
{chr(10).join(copies)}
  }}
{chr(10).join(saves)}
  return 0;
}}
"""


def build_runner(root: str, api: ModuleApi, source_files: Sequence[str],
                 build_dir: str, steps: int = 1, libraries: Sequence[str] = ()) -> str:
    """Compile main.c with the module's own sources (and `libraries`: compiler arguments of
    the libraries it calls); the executable's path, or BuildError."""
    compiler = find_c_compiler()
    if compiler is None:
        raise BuildError("no C compiler found", hint="install gcc or clang, or set CC")
    if not source_files:
        raise BuildError("the archive has no C sources for this module")
    os.makedirs(build_dir, exist_ok=True)
    main_c = os.path.join(build_dir, "main.c")
    with open(main_c, "w") as fh:
        fh.write(harness_source(api, steps))
    sources = [os.path.join(root, "codegen", "host", "src", os.path.basename(f))
               for f in source_files]
    executable = os.path.join(build_dir, "runner")
    command = [*compiler, "-std=c11", "-O2", "-I", os.path.join(root, "codegen", "host",
               "include"), main_c, *sources, *libraries, "-o", executable, "-lm"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                              check=False, **child_options())
    except FileNotFoundError:
        raise BuildError(f"C compiler '{compiler[0]}' not found",
                         hint="install gcc or clang, or set CC") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"the C build took more than {BUILD_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise BuildError(f"the C build failed: {first_error_line(done.stderr + done.stdout)}",
                         hint="run with -v to see the compiler command")
    return executable


def run_runner(executable: str, arrays: Sequence[np.ndarray], outputs: Sequence[TensorInfo],
               io_dir: str, steps: int | None = None) -> dict[str, np.ndarray]:
    """Run the built program; the outputs by model tensor name, in metadata shape (with
    `steps`, built for that many runs: a leading axis of the steps)."""
    os.makedirs(io_dir, exist_ok=True)
    in_files = [os.path.join(io_dir, f"in{i}.bin") for i in range(len(arrays))]
    out_files = [os.path.join(io_dir, f"out{i}.bin") for i in range(len(outputs))]
    for path, array in zip(in_files, arrays):
        with open(path, "wb") as fh:
            fh.write(np.ascontiguousarray(array).tobytes())
    try:
        done = subprocess.run([executable, *in_files, *out_files], capture_output=True,
                              text=True, timeout=RUN_TIMEOUT_S, check=False,
                              **child_options())
    except subprocess.TimeoutExpired:
        raise BuildError(f"the module ran for more than {RUN_TIMEOUT_S} s") from None
    if done.returncode != 0:
        detail = first_error_line(done.stderr) if done.stderr.strip() else \
            f"exit status {done.returncode}"
        raise BuildError(f"running the module failed: {detail}")
    lead = () if steps is None else (steps,)
    return {t.name: np.fromfile(path, dtype=t.dtype).reshape(*lead, *t.shape)
            for t, path in zip(outputs, out_files)}


# ----------------------------------------------------------------------------- results

def write_npz(fh: Any, arrays: dict[str, np.ndarray]) -> None:
    """numpy.savez's format, for any tensor name: savez(file, **arrays) fails on a tensor
    named `file` or `allow_pickle`, its own parameters."""
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def save_npz(arrays: dict[str, np.ndarray], path: str) -> None:
    """Write atomically, with the archive writer's rules (a symbolic link is written through,
    a special file is never replaced): a half-written .npz would look valid to the next tool."""
    from ..mlf.writer import write_atomically

    buffer = io.BytesIO()
    write_npz(buffer, arrays)
    try:
        write_atomically(path, buffer.getvalue())
    except TvmcError as err:
        raise err.located(path=path)
    except OSError as exc:
        raise OutputError(f"cannot write outputs: {exc.strerror or exc}", path=path) from None


def top_values(array: np.ndarray, count: int) -> list[tuple[int, Any]]:
    """(flat index, value) of the `count` largest values, largest first."""
    flat = array.reshape(-1)
    order = np.argsort(-flat.astype(np.float64), kind="stable")[:count]
    return [(int(i), flat[i].item()) for i in order]


def _print_results(outputs: dict[str, np.ndarray], top: int | None) -> None:
    for name, array in outputs.items():
        shown = name if name.isprintable() else repr(name)  # no raw control characters
        print(f"output {shown}: {_shape(array.shape)} {array.dtype}")
        if top:
            for index, value in top_values(array, top):
                print(f"  [{index}] {value}")
