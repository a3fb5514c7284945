"""Options shared by `tvmc compile` and `tvmc compile-multi`, and their validation.

The checks are cheap (TVM is imported only to check --pass-config names, and only when all
else is right), so a bad command line is rejected before any model is compiled.
`validate_compile` collects every problem it finds and raises them together, so a user fixes
a long command line in one go.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import ErrorGroup, OutputError, TvmcError, UsageError, raise_all
from ..frontends import FORMATS, detect_format
from ..frontends.custom_ops import check_symbols as check_custom_symbols
from ..names import module_name_from_path, validate_module_names
from ..output_paths import check_name_length, resolve_output, same_file
from ..target import TargetSpec, parse_target
from . import legacy
from .input_values import parse_input_values, split_input_values
from .option_entries import parse_entries, split_by_module

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_OUTPUT = "module.tar"
STDOUT = "-"  # -o -: the archive on stdout


# ----------------------------------------------------------------------------- argparse

def add_verbose(parser: argparse.ArgumentParser) -> None:
    """`-v` after the subcommand too, as tvmc allowed (`tvmc compile -v ...`).

    A separate dest: argparse copies a subparser's defaults over the main namespace, which
    would reset a `tvmc -v compile` count to 0.
    """
    parser.add_argument("-v", "--verbose", dest="sub_verbose", action="count",
                        default=argparse.SUPPRESS, help="increase verbosity (repeatable)")


def add_compile_options(parser: argparse.ArgumentParser, *, multi: bool) -> None:
    """The tvmc compile options we keep, with tvmc's names and defaults where they still apply."""
    prefix_note = (" With several models, prefix each input with its module name: "
                   "'kws:input_1:[1,49,10,1]'." if multi else "")
    parser.add_argument("--target", default="c",
                        help="compilation target: 'c' with optional options, e.g. "
                             "'c -mcpu=cortex-m4' (default: c)")
    parser.add_argument("--model-format", choices=FORMATS,
                        help="input model format (default: detected from the file content"
                             + (", for every model" if multi else "") + ")")
    parser.add_argument("--input-shapes", action="append", metavar="SHAPES",
                        help="static input shapes, '\"input0:[1,32,32,3] input1:[10]\"'."
                             + prefix_note + " May be repeated.")
    parser.add_argument("--input-values", action="append", metavar="VALUES",
                        help="ONNX inputs fixed at compile time, e.g. 'sr=16000': the input "
                             "leaves the module's signature and If/Loop depending on it fold."
                             + (" Prefix each with its module: 'vad:sr=16000'." if multi else "")
                             + " May be repeated.")
    parser.add_argument("--custom-op", action="append", metavar="NAME=FILE.c[:OUTPUTS]",
                        help="the C implementation of a custom operator (TFLite: its custom "
                             "code; ONNX: DOMAIN.OP or OP): the module calls "
                             "tvmgen_<module>_custom_<NAME>(inputs..., outputs...) and the "
                             "archive carries the file. OUTPUTS declares the output shapes "
                             "and types, 'float32[1,16];int32[4]' or a JSON file, where the "
                             "model does not. May be repeated"
                             + (" (it serves every module that uses the operator)." if multi
                                else "."))
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT, metavar="PATH",
                        help=f"output Model Library Format archive (default: {DEFAULT_OUTPUT})")
    parser.add_argument("-f", "--output-format", default="mlf", metavar="{mlf}",
                        help="output format; only 'mlf' (Model Library Format) (default: mlf)")
    parser.add_argument("--executor", default="aot", metavar="{aot}",
                        help="executor; only 'aot' (default: aot)")
    parser.add_argument("--runtime", default="crt", metavar="{crt}",
                        help="runtime; only 'crt' (default: crt)")
    parser.add_argument("--executor-aot-interface-api", metavar="{c}",
                        help="accepted for tvmc compatibility; the C interface is always used")
    parser.add_argument("--executor-aot-unpacked-api", metavar="{1}",
                        help="accepted for tvmc compatibility; the unpacked API is always used")
    parser.add_argument("--pass-config", action="append", metavar="NAME=VALUE",
                        help="TVM PassContext configuration, repeatable, e.g. "
                             "'tirx.disable_vectorize=1'; TVM 0.18's "
                             "'tir.usmp.use_workspace_io=1' puts the inputs and outputs in the "
                             "workspace (the module's only RAM)")
    parser.add_argument("-O", "--opt-level", type=int, choices=range(4), default=3,
                        metavar="[0-3]", help="optimization level (default: 3)")
    parser.add_argument("--workspace", choices=("static", "shared"), default="static",
                        help="static: each module owns a static arena, run(in, out); shared: "
                             "run(in, out, workspace) takes the caller's arena, one of "
                             "TVMGEN_MAX_WORKSPACE_SIZE bytes serves every module "
                             "(default: static)")
    parser.add_argument("--strict-int8", action="store_true",
                        help="int8 TFLite and quantised ONNX models: an operator without an "
                             "integer kernel is an error instead of running in float with a "
                             "warning")
    parser.add_argument("--schedule", choices=("auto", "vector", "scalar", "none"),
                        default="auto",
                        help="operator schedules: vector (hosts, SIMD cores), scalar "
                             "(register-blocked for Cortex-M), none (unscheduled); auto picks "
                             "by the target's -mcpu (default: auto)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="compile up to N models in parallel worker processes; the "
                             "archive is byte-identical to -j 1 (default: number of CPUs)")
    add_verbose(parser)
    legacy.add_legacy_options(parser)
    # the driver fills it with the options argparse does not know, reported with the rest
    parser.set_defaults(unknown_options=[])


# ----------------------------------------------------------------------------- models

def parse_model_arg(text: str) -> tuple[str, str | None]:
    """``kws.tflite:kws`` -> ("kws.tflite", "kws"); ``kws.tflite`` -> ("kws.tflite", None).

    Splits on the LAST ':' only if what follows is a non-empty name without '/' or '\\', so
    ``C:\\models\\kws.tflite`` and ``dir:x/kws.tflite`` stay paths. An existing file whose
    name contains ':' is taken as a path too.
    """
    head, sep, tail = text.rpartition(":")
    if not sep or not tail or "/" in tail or "\\" in tail or os.path.exists(text):
        if sep and not tail and head and os.path.exists(head):
            raise UsageError("empty module name after ':'", path=head,
                             hint="write MODEL:NAME, or just MODEL for the default name")
        return text, None
    return head, tail


def pair_module_names(models: list[str], names: list[str] | None) -> list[tuple[str, str]]:
    """(path, module name) for each MODEL argument.

    Names come either from ``MODEL:NAME`` or from one ``--module-name`` per model, in order;
    missing names default to the file stem.
    """
    if not names:
        pairs = [parse_model_arg(m) for m in models]
        return [(path, name if name is not None else module_name_from_path(path))
                for path, name in pairs]
    if len(names) != len(models):
        raise UsageError(f"{len(models)} model file(s) but {len(names)} --module-name option(s)",
                         hint="give one --module-name per model file, in the same order, "
                              "or write MODEL:NAME")
    for model in models:
        path, name = parse_model_arg(model)
        if name is not None and not os.path.exists(model) and os.path.exists(path):
            raise UsageError(f"'{model}' has a name and --module-name is given too", path=path,
                             hint="name modules either as MODEL:NAME or with --module-name")
    return list(zip(models, names))


# ----------------------------------------------------------------------------- input shapes

# NAME:[d0,d1,...]; a name may itself contain ':' '/' '.' (TFLite "serving_default_x:0"),
# the greedy name part backtracks to the last ':' before '['.
_SHAPE_ENTRY = re.compile(r"(?P<name>[^\s\[\],]+):\s*\[(?P<value>[^\[\]]*)\]")
_SEPARATOR = re.compile(r"[\s,]*")


def parse_input_shapes(texts: Iterable[str] | str | None) -> dict[str, list[int]]:
    """Parse tvmc's ``"input0:[1,32,32,3] input1:[10]"`` (one or several strings)."""
    if texts is None:
        return {}
    return parse_entries([texts] if isinstance(texts, str) else texts, "--input-shapes",
                         _SHAPE_ENTRY, _SEPARATOR, '"input0:[1,32,32,3] input1:[10]"',
                         _parse_dims)


def _parse_dims(name: str, dims: str) -> list[int]:
    items = [d.strip() for d in dims.split(",")] if dims.strip() else []
    try:
        shape = [int(d) for d in items]
    except ValueError:
        raise UsageError(f"--input-shapes '{name}': '[{dims}]' is not a list of integers",
                         hint="write e.g. [1,49,10,1]") from None
    if any(d < 1 for d in shape):
        raise UsageError(f"--input-shapes '{name}': every dimension must be a positive "
                         f"number, got [{dims}]",
                         hint="microcontroller code needs static shapes: give each "
                              "dimension's size")
    return shape


def split_input_shapes(shapes: dict[str, list[int]],
                       module_names: list[str]) -> dict[str, dict[str, list[int]]]:
    """Assign ``MODULE:INPUT`` entries to their modules (option_entries.split_by_module)."""
    return split_by_module(shapes, module_names, "--input-shapes",
                           lambda shape: ":" + _dims_text(shape))


def _dims_text(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


# ----------------------------------------------------------------------------- pass config

def parse_pass_configs(items: Iterable[str] | None) -> dict[str, object]:
    """``NAME=VALUE`` items -> dict; values become int, bool ("true"/"false") or str, as in tvmc."""
    configs: dict[str, object] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UsageError(f"invalid --pass-config '{item}'", hint="write NAME=VALUE")
        configs[name] = _config_value(value)
    return configs


def _config_value(value: str) -> object:
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


_CONFIG_TYPES = {"bool": "bool", "int": "int", "ir.IntImm": "int"}


def check_pass_configs(configs: dict[str, object],
                       known: dict[str, str] | None = None) -> dict[str, object]:
    """Check names and value types against TVM's PassContext options; the converted dict.

    tvmc users' TVM <= 0.18 names (``tir.disable_vectorize``) are mapped to TVM 0.27's
    (``tirx.disable_vectorize``). `known` maps option names to type names; by default it is
    read from TVM, which is imported only when there is something to check.
    """
    if not configs:
        return {}
    known = pass_config_types() if known is None else known
    checked: dict[str, object] = {}
    problems: list[TvmcError] = []
    for name, value in configs.items():
        real = name if name in known else _renamed_config(name, known)
        if real is None:
            settable = sorted(n for n, t in known.items() if t in _CONFIG_TYPES)
            problems.append(UsageError(f"unknown --pass-config '{name}'",
                                       hint="options are: " + ", ".join(settable)))
            continue
        try:
            checked[real] = _typed_config(real, value, known[real])
        except UsageError as err:
            problems.append(err)
    raise_all(problems)
    return checked


def pass_config_types() -> dict[str, str]:
    import tvm  # noqa: PLC0415 - slow import, only when --pass-config is used

    return {str(name): str(info["type"])
            for name, info in tvm.transform.PassContext.list_configs().items()}


def _renamed_config(name: str, known: dict[str, str]) -> str | None:
    if name.startswith("tir."):
        for prefix in ("tirx.", "s_tir."):
            candidate = prefix + name[len("tir."):]
            if candidate in known:
                log.info("--pass-config %s is called %s in this TVM", name, candidate)
                return candidate
    return None


def _typed_config(name: str, value: object, type_name: str) -> object:
    kind = _CONFIG_TYPES.get(type_name)
    if kind is None:
        raise UsageError(f"--pass-config '{name}' takes a {type_name}, which cannot be given "
                         "on the command line")
    if kind == "bool":
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise UsageError(f"--pass-config '{name}' takes true/false or 1/0, not '{value}'")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise UsageError(f"--pass-config '{name}' takes an integer, not '{value}'")


# ----------------------------------------------------------------------------- fixed options

def check_fixed_options(args: argparse.Namespace) -> list[TvmcError]:
    """tvmc options that remain only for compatibility: the one value we support, or an error."""
    problems: list[TvmcError] = []
    if args.output_format != "mlf":
        problems.append(UsageError(
            f"output format '{args.output_format}' is not supported: only 'mlf' is",
            hint="microcontroller builds use the Model Library Format archive (-f mlf)"))
    if args.executor != "aot":
        problems.append(UsageError(
            f"executor '{args.executor}' is not supported: only 'aot' is",
            hint="plain C builds have no TVM runtime for the graph or vm executor: drop "
                 "--executor or use --executor aot"))
    if args.runtime != "crt":
        problems.append(UsageError(
            f"runtime '{args.runtime}' is not supported: only 'crt' is",
            hint="drop --runtime or use --runtime crt"))
    if args.executor_aot_interface_api not in (None, "c"):
        problems.append(UsageError(
            f"--executor-aot-interface-api {args.executor_aot_interface_api} is not supported",
            hint="we always generate the C interface with the unpacked API "
                 "(--executor-aot-interface-api c)"))
    if args.executor_aot_unpacked_api not in (None, "1", "true", "True"):
        problems.append(UsageError(
            f"--executor-aot-unpacked-api {args.executor_aot_unpacked_api} is not supported",
            hint="we always generate the C interface with the unpacked API "
                 "(--executor-aot-unpacked-api 1)"))
    if args.jobs < 1:
        problems.append(UsageError(f"-j {args.jobs}: the number of jobs must be at least 1"))
    return problems


# ----------------------------------------------------------------------------- output

def check_output_path(path: str, inputs: Iterable[str] = (), *,
                      stdout_allowed: bool = False) -> None:
    """The output can be written at `path` without destroying anything (see output_paths).

    Refused: a directory, device, FIFO or socket (also through a symbolic link), a link to a
    missing file, one of the `inputs` (also through links or hard links), a file name longer
    than the file system allows, and a folder where no file can be created. Writability is
    tested by creating (and removing) a temporary file there, because os.access lies on
    some file systems (ACLs, read-only mounts, root). ``-`` is stdout when `stdout_allowed`
    (and stdout is not a terminal).
    """
    if not path:
        raise OutputError("empty output path", hint="give -o PATH.tar")
    if path == STDOUT:
        check_stdout(stdout_allowed)
        return
    target = resolve_output(path)
    for source in inputs:
        if same_file(target, source):
            raise OutputError(f"output path is the input file '{source}': refusing to "
                              "overwrite it", path=path, hint="give another -o")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise OutputError(f"'{folder}' is not a directory", path=path,
                              hint="the output's parent must be a directory")
        raise OutputError(f"output directory '{folder}' does not exist", path=path,
                          hint="create it first")
    check_name_length(path)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".tvmc-write-test-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to directory '{folder}': {exc.strerror}", path=path,
                          hint="check its permissions or choose another -o") from None


def archive_problem(path: str, *, directory_ok: bool = False) -> OutputError | None:
    """The error for an archive argument (`run`, `report`, `micro create-project`) that is
    missing or not a file, or None. Every command reports it alike: exit code 5, the class of
    an archive that cannot be read (docs/cli.md, Exit codes). `directory_ok`: an extracted
    archive's directory is read too (`report`)."""
    if os.path.isfile(path) or (directory_ok and os.path.isdir(path)):
        return None
    if os.path.isdir(path):
        return OutputError("archive is a directory, not an archive", path=path,
                           hint="give the .tar file")
    return OutputError("archive not found", path=path)


def check_stdout(allowed: bool) -> None:
    """``-o -``: stdout, unless this command does not write there or it is a terminal."""
    if not allowed:
        raise OutputError("'-' (stdout) is not accepted for this output", path=STDOUT,
                          hint="give a file name (./- for a file named '-')")
    try:
        terminal = os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no real stdout (embedded, tests)
        terminal = False
    if terminal:
        raise OutputError("refusing to write a binary archive to a terminal", path=STDOUT,
                          hint="redirect stdout (-o - > models.tar, or | tar t) or give -o FILE")


# ----------------------------------------------------------------------------- validation

@dataclass(frozen=True)
class ModelJob:
    """One model to compile into one module of the archive."""

    path: str
    name: str
    model_format: str
    input_shapes: dict[str, list[int]] = field(default_factory=dict, hash=False)
    input_values: dict[str, list[float]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class CompileSettings:
    """The options that apply to every module of one archive."""

    target: TargetSpec
    output: str
    opt_level: int = 3
    pass_config: dict[str, object] = field(default_factory=dict, hash=False)
    jobs: int = 1
    workspace: str = "static"
    schedule: str | None = None     # None: chosen by the target
    strict_int8: bool = False
    workspace_io: bool = False      # inputs and outputs inside the workspace (tir.usmp)
    desired_layout: str | None = None
    notes: tuple[str, ...] = ()     # what the tvmc 0.18 options given amount to
    # name -> (C file, declared outputs or None)
    custom_ops: dict[str, CustomOpOption] = field(default_factory=dict, hash=False)


CustomOpOption = tuple[str, "tuple[tuple[tuple[int, ...], str], ...] | None"]
_OUTPUT_SPEC = re.compile(r"\s*([a-z]+[0-9]*)\s*\[\s*([0-9]+(?:\s*,\s*[0-9]+)*)?\s*\]\s*")


def parse_custom_ops(texts: list[str] | None) -> dict[str, CustomOpOption]:
    """`--custom-op NAME=impl.c[:OUTPUTS]` (repeatable) -> {NAME: (path, outputs or None)};
    OUTPUTS: `float32[1,16];int32[4]` or a JSON file of [{"shape": [...], "dtype": "..."}].
    The files must exist."""
    ops: dict[str, CustomOpOption] = {}
    for text in texts or []:
        name, sep, rest = text.partition("=")
        if not sep or not name or not rest:
            raise UsageError(f"--custom-op '{text}' is not NAME=FILE.c",
                             hint="e.g. --custom-op MyOp=my_op.c")
        if name in ops:
            raise UsageError(f"--custom-op gives '{name}' twice")
        path, outputs = _split_output_spec(name, rest)
        if not os.path.isfile(path):
            raise UsageError(f"the C file of custom operator '{name}' is not found", path=path)
        ops[name] = (path, outputs)
    check_custom_symbols(ops)
    return ops


def _split_output_spec(name: str, text: str) -> CustomOpOption:
    """`impl.c:float32[1,16]` or `impl.c:outs.json` -> (path, outputs); `impl.c` (or a path
    holding ':' whose tail is no declaration, `C:\\ops\\a.c`) -> (text, None)."""
    head, sep, tail = text.rpartition(":")
    if not sep or not head:
        return text, None
    if tail.lower().endswith(".json"):
        return head, _output_spec_file(name, tail)
    parts = tail.split(";")
    matches = [_OUTPUT_SPEC.fullmatch(p) for p in parts]
    if not all(matches):
        return text, None
    specs = []
    for match in matches:
        dims = tuple(int(d) for d in (match.group(2) or "").split(",") if d.strip())
        specs.append(_output_spec(name, dims, match.group(1)))
    return head, tuple(specs)


def _output_spec(name: str, dims: Any, dtype: Any) -> tuple[tuple[int, ...], str]:
    import numpy as np

    try:
        kind = np.dtype(str(dtype))
    except TypeError:
        kind = None
    if kind is None or kind.kind not in "biuf" or str(dtype) != kind.name:
        raise UsageError(f"custom operator '{name}': output type '{dtype}' is not a numeric "
                         "type name", hint="use float32, int8, uint8, int16, int32...")
    if not isinstance(dims, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise UsageError(f"custom operator '{name}': output shape {dims} is not a list of "
                         "positive integers")
    return tuple(dims), kind.name


def _output_spec_file(name: str, path: str) -> tuple[tuple[tuple[int, ...], str], ...]:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the output declaration of custom operator '{name}': "
                         f"{getattr(exc, 'strerror', None) or exc}", path=path) from None
    if not isinstance(data, list) or not data or not all(
            isinstance(e, dict) and set(e) == {"shape", "dtype"} for e in data):
        raise UsageError(f"the output declaration of custom operator '{name}' is not a list "
                         'of {"shape": [...], "dtype": "..."}', path=path)
    return tuple(_output_spec(name, e["shape"], e["dtype"]) for e in data)


def validate_compile(args: argparse.Namespace, pairs: list[tuple[str, str]], *,
                     module_prefixes: bool) -> tuple[list[ModelJob], CompileSettings]:
    """Check the whole command line before any compile work; raise every problem at once.

    `module_prefixes`: whether --input-shapes entries may carry a ``MODULE:`` prefix
    (compile-multi) or are plain tvmc syntax for the single module (compile).
    """
    problems: list[TvmcError] = list(getattr(args, "unknown_options", None) or [])
    names = [name for _, name in pairs]
    formats = [_collect(problems, detect_format, path, args.model_format, path=path,
                        module=name) for path, name in pairs]
    _collect(problems, validate_module_names, names,
             locate=dict((name, path) for path, name in pairs))
    shapes = _collect(problems, parse_input_shapes, args.input_shapes) or {}
    if module_prefixes:
        per_module = _collect(problems, split_input_shapes, shapes, names) or {}
    else:
        per_module = {names[0]: shapes}
    custom = _collect(problems, parse_custom_ops, getattr(args, "custom_op", None)) or {}
    values = _collect(problems, parse_input_values, args.input_values) or {}
    values_per_module = _collect(problems, split_input_values, values, names) or {}
    old = legacy.map_legacy_options(args)
    problems.extend(old.problems)
    target = _collect(problems, parse_target, args.target, old.target_options,
                      old.library_options)
    usmp = legacy.map_usmp(_collect(problems, parse_pass_configs, args.pass_config) or {})
    problems.extend(usmp.problems)
    pass_config = usmp.pass_config
    problems.extend(check_fixed_options(args))
    _collect(problems, lambda: check_output_path(args.output, [path for path, _ in pairs],
                                                 stdout_allowed=True))
    if pass_config and not problems:  # needs TVM: only once all else is right
        pass_config = _collect(problems, check_pass_configs, pass_config)
    raise_all(problems)
    jobs = [ModelJob(path, name, fmt, per_module.get(name, {}), values_per_module.get(name, {}))
            for (path, name), fmt in zip(pairs, formats)]
    settings = CompileSettings(target, args.output, args.opt_level, pass_config or {},
                               args.jobs, args.workspace,
                               None if args.schedule == "auto" else args.schedule,
                               args.strict_int8, usmp.workspace_io, old.desired_layout,
                               tuple(old.notes + usmp.notes), custom)
    return jobs, settings


def _collect(problems: list[TvmcError], check: Callable[..., T], *check_args: Any,
             path: str | None = None, module: str | None = None,
             locate: dict[str, str] | None = None) -> T | None:
    """Run one check; on failure add its error(s) to `problems` and return None.

    `path`/`module` locate every error; `locate` maps an error's module to its file.
    """
    try:
        return check(*check_args)
    except TvmcError as err:
        for one in flatten(err):
            where = path or (locate or {}).get(one.module or "")
            problems.append(one.located(module=module, path=where))
        return None


def flatten(err: TvmcError) -> list[TvmcError]:
    """The individual errors inside an ErrorGroup (or the error itself)."""
    if isinstance(err, ErrorGroup):
        return [leaf for inner in err.errors for leaf in flatten(inner)]
    return [err]


def locate_all(err: TvmcError, *, module: str | None = None,
               path: str | None = None) -> TvmcError:
    """`err.located(...)`, applied to each error inside an ErrorGroup too."""
    if isinstance(err, ErrorGroup):
        return ErrorGroup([e.located(module=module, path=path) for e in flatten(err)])
    return err.located(module=module, path=path)


