"""The `--target` option: tvmc's target-string syntax, restricted to the plain C backend.

tvmc accepted ``KIND -option=value ...`` and comma-separated lists of targets and BYOC
codegens (``"cmsis-nn, c -mcpu=cortex-m55"``). We generate C only, so exactly one target of
kind ``c`` is accepted, optionally beside ``cmsis-nn`` (int8 operators become calls to the
CMSIS-NN library, `kernels/cmsis_nn/`); anything else is a UsageError that says so. TVM 0.27
no longer parses such strings itself (it wants a JSON dict), hence `TargetSpec.to_tvm()`.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError, raise_all

SUPPORTED_KIND = "c"
CMSIS_NN = "cmsis-nn"
CMSIS_NN_DEPENDENCY = "CMSIS-NN"  # its short_name in metadata.json's external_dependencies
# kernel libraries a "c" target may name beside it (tvmc's BYOC kinds), with their options
LIBRARY_KINDS = {CMSIS_NN: frozenset({"mcpu"})}

# Options of TVM's "c" target kind that a user may set, with their value type.
# (kind/host/from_device/target_device_type are internal to TVM and not offered.)
_STR_OPTIONS = frozenset({"mcpu", "march", "model", "device", "tag"})
_LIST_OPTIONS = frozenset({"keys", "libs"})
_INT_OPTIONS = frozenset({"workspace-byte-alignment", "constants-byte-alignment"})
KNOWN_OPTIONS = _STR_OPTIONS | _LIST_OPTIONS | _INT_OPTIONS
# workspace buffers and constants are always at least this aligned (SIMD loads); the
# -*-byte-alignment options can only raise it (a DMA engine, a cache line)
MIN_ALIGNMENT = 16
MAX_ALIGNMENT = 4096

# Target options of TVM <= 0.8 microTVM that later moved to --executor/--runtime options;
# people still copy them from old tutorials, so they get a specific hint.
_LEGACY_OPTIONS = {
    "executor": "use --executor aot (the default)",
    "runtime": "use --runtime crt (the default)",
    "link-params": "constants are always linked into the generated C",
    "interface-api": "the C interface API is always generated",
    "unpacked-api": "the unpacked API is always generated",
    "system-lib": "plain C needs no system library",
}


@dataclass(frozen=True)
class TargetSpec:
    """A parsed, validated target: kind "c" plus its options."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    canonical: str = SUPPORTED_KIND
    libraries: tuple[str, ...] = ()  # external kernel libraries: ("cmsis-nn",) or ()

    @property
    def cmsis_nn(self) -> bool:
        return CMSIS_NN in self.libraries

    @property
    def workspace_alignment(self) -> int:
        """Alignment of the workspace and of every tensor placed in it."""
        return max(MIN_ALIGNMENT, int(self.options.get("workspace-byte-alignment", 1)))

    @property
    def constants_alignment(self) -> int:
        return max(MIN_ALIGNMENT, int(self.options.get("constants-byte-alignment", 1)))

    def to_tvm(self) -> dict[str, Any]:
        """The JSON-dict form that `tvm.target.Target(...)` accepts in TVM 0.27."""
        return {"kind": self.kind, **self.options}


def parse_target(text: str, extra_options: dict[str, str] | None = None,
                 library_options: dict[str, dict[str, str]] | None = None) -> TargetSpec:
    """Parse a tvmc target string (``c``, ``c -mcpu=cortex-m4``, ``cmsis-nn, c``) or a JSON
    dict.

    `extra_options` are tvmc's ``--target-c-OPTION=VALUE`` options, merged into the target (an
    option given both ways must agree); `library_options` its ``--target-cmsis-nn-mcpu=V``
    (kind -> options). A library's -mcpu is the core's: it becomes the ``c`` target's -mcpu (one
    core runs both; two different ones are an error). Every problem is reported at once.
    """
    stripped = (text or "").strip()
    if not stripped:
        raise UsageError("empty --target", hint="use --target c")
    problems: list[UsageError] = []
    libraries: dict[str, dict[str, str]] = {}
    if stripped.startswith("{"):
        kind, raw_options = _from_json(stripped)
    else:
        kind, raw_options = _from_string(stripped, problems, libraries)
    for library, given in (library_options or {}).items():
        if library not in libraries:
            problems.append(UsageError(
                f"--target-{library}-OPTION needs '{library}' in --target",
                hint=f'use --target "{library}, c"'))
            continue
        for name, value in given.items():
            _merge_option(libraries[library], name, value, problems, library)
    for library, lib_options in libraries.items():
        for name, value in lib_options.items():  # only mcpu (checked when split)
            if name in raw_options and str(raw_options[name]) != str(value):
                problems.append(UsageError(
                    f"'{library} -{name}={value}' and 'c -{name}={raw_options[name]}' differ: "
                    "one core runs both", hint=f"give -{name} once, to 'c'"))
            raw_options[name] = value
    for name, value in (extra_options or {}).items():
        if name in raw_options and str(raw_options[name]) != str(value):
            problems.append(UsageError(f"target option '-{name}' is given twice, as "
                                       f"'{raw_options[name]}' and '{value}'"))
        raw_options[name] = value
    options = {}
    for name, value in raw_options.items():
        try:
            options[name] = _option_value(name, value)
        except UsageError as err:
            problems.append(err)
    raise_all(problems)
    names = tuple(sorted(libraries))
    return TargetSpec(kind, options, _canonical(kind, options, names), names)


def _merge_option(options: dict[str, str], name: str, value: str,
                  problems: list[UsageError], kind: str) -> None:
    if name not in LIBRARY_KINDS[kind]:
        problems.append(UsageError(f"unknown option '-{name}' for target '{kind}'",
                                   hint=f"known options: {', '.join(sorted(LIBRARY_KINDS[kind]))}"))
    elif name in options and options[name] != value:
        problems.append(UsageError(f"{kind} option '-{name}' is given twice, as "
                                   f"'{options[name]}' and '{value}'"))
    else:
        options[name] = value


def _unsupported(kind: str) -> UsageError:
    return UsageError(f"target '{kind}' is not supported: only 'c' (plain C) is, "
                      "optionally with 'cmsis-nn'",
                      hint="use --target c, optionally with -mcpu=... / -march=...")


def _from_json(text: str) -> tuple[str, dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--target is not valid JSON: {exc.msg} at column {exc.colno}",
                         hint='write e.g. {"kind": "c", "mcpu": "cortex-m4"}') from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise UsageError("a JSON --target must be an object with a string \"kind\"",
                         hint='write e.g. {"kind": "c", "mcpu": "cortex-m4"}')
    data = dict(data)
    kind = data.pop("kind")
    if kind != SUPPORTED_KIND:
        raise _unsupported(kind)
    return kind, data


def _split_targets(tokens: list[str]) -> list[list[str]]:
    """Split tokens at the commas that separate targets (``"c -mcpu=x, llvm"``).

    A comma inside an option value (``-libs=a,b``) belongs to the value; a comma at the start
    or end of a token, or inside a kind name (``c,llvm``), separates targets.
    """
    groups: list[list[str]] = [[]]
    for token in tokens:
        if not token.startswith("-") and "," in token:
            parts = token.split(",")
        else:
            lead, core, trail = token.startswith(","), token.strip(","), token.endswith(",")
            parts = ([""] if lead else []) + [core] + ([""] if trail else [])
        for i, part in enumerate(parts):
            if i:
                groups.append([])
            if part:
                groups[-1].append(part)
    return groups


def _from_string(text: str, problems: list[UsageError],
                 libraries: dict[str, dict[str, str]]) -> tuple[str, dict[str, str]]:
    """Kind and raw options; each bad kind or option is added to `problems`, the kernel
    libraries named beside 'c' (``cmsis-nn -mcpu=...``) to `libraries`."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"cannot parse --target '{text}': {exc}") from None
    groups = [g for g in _split_targets(tokens) if g]
    if not groups:
        raise UsageError(f"cannot parse --target '{text}'", hint="use --target c")
    for group in [g for g in groups if g[0] in LIBRARY_KINDS]:
        groups.remove(group)
        if group[0] in libraries:
            problems.append(UsageError(f"--target '{text}' names '{group[0]}' twice"))
        options = libraries.setdefault(group[0], {})
        for token in group[1:]:
            try:
                name, value = _split_option(token, group[0])
            except UsageError as err:
                problems.append(err)
                continue
            _merge_option(options, name, value, problems, group[0])
    if not groups and libraries:
        problems.append(UsageError(f"--target '{text}' names no 'c' target: "
                                   f"{', '.join(libraries)} needs one",
                                   hint=f'use --target "{next(iter(libraries))}, c"'))
        return SUPPORTED_KIND, {}
    problems.extend(_unsupported(group[0]) for group in groups if group[0] != SUPPORTED_KIND)
    if len(groups) > 1 and not problems:  # "c, c": else each other kind is its own problem
        problems.append(UsageError(f"--target '{text}' names {len(groups)} targets: only one "
                                   "'c' target is supported", hint="use --target c"))
    # the options of every 'c' group are checked (other kinds' options are not ours to judge)
    option_tokens = [t for g in groups if g[0] == SUPPORTED_KIND for t in g[1:]]
    options: dict[str, str] = {}
    for token in option_tokens:
        try:
            name, value = _split_option(token)
        except UsageError as err:
            problems.append(err)
            continue
        if name in options:
            problems.append(UsageError(f"target option '-{name}' is given twice"))
        options[name] = value
    return SUPPORTED_KIND, options


def _split_option(token: str, kind: str = SUPPORTED_KIND) -> tuple[str, str]:
    """``-mcpu=cortex-m4`` -> ("mcpu", "cortex-m4"); tvmc also allowed ``--mcpu=...``."""
    body = token[2:] if token.startswith("--") else token[1:] if token.startswith("-") else ""
    name, sep, value = body.partition("=")
    if not name or not token.startswith("-"):
        raise UsageError(f"cannot parse target option '{token}'",
                         hint="write options as -name=value, e.g. c -mcpu=cortex-m4")
    if kind != SUPPORTED_KIND:  # a kernel library's options: checked by _merge_option
        if not sep or not value:
            raise UsageError(f"target option '-{name}' needs a value",
                             hint=f"write -{name}=VALUE")
        return name, value
    if name in _LEGACY_OPTIONS:
        raise UsageError(f"target option '-{name}' is no longer part of the target",
                         hint=_LEGACY_OPTIONS[name])
    if name not in KNOWN_OPTIONS:
        raise UsageError(f"unknown option '-{name}' for target 'c'",
                         hint=f"known options: {', '.join(sorted(KNOWN_OPTIONS))}")
    if not sep or not value:
        raise UsageError(f"target option '-{name}' needs a value", hint=f"write -{name}=VALUE")
    return name, value


def _option_value(name: str, value: Any) -> Any:
    """Check and convert one option value to the type TVM's "c" target kind expects."""
    if name not in KNOWN_OPTIONS:  # reached from JSON input
        if name in _LEGACY_OPTIONS:
            raise UsageError(f"target option '{name}' is no longer part of the target",
                             hint=_LEGACY_OPTIONS[name])
        raise UsageError(f"unknown option '{name}' for target 'c'",
                         hint=f"known options: {', '.join(sorted(KNOWN_OPTIONS))}")
    if name in _INT_OPTIONS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1 or isinstance(value, bool):
            raise UsageError(f"target option '-{name}' must be a positive integer, "
                             f"not '{value}'")
        if number & (number - 1) or number > MAX_ALIGNMENT:
            raise UsageError(f"target option '-{name}' must be a power of two up to "
                             f"{MAX_ALIGNMENT}, not {number}")
        return number
    if name in _LIST_OPTIONS:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise UsageError(f"target option '-{name}' must be a comma-separated list of names")
        return [i.strip() for i in items]
    if not isinstance(value, str) or not value:
        raise UsageError(f"target option '-{name}' must be a non-empty string")
    return value


def _canonical(kind: str, options: dict[str, Any], libraries: tuple[str, ...] = ()) -> str:
    """``c -mcpu=...``; kernel libraries first, as tvmc wrote them: ``cmsis-nn, c -mcpu=...``
    (their -mcpu is the c target's)."""
    parts = [f"{name}," for name in libraries] + [kind]
    for name in sorted(options):
        value = options[name]
        text = ",".join(value) if isinstance(value, list) else str(value)
        parts.append(f"-{name}={shlex.quote(text)}")
    return " ".join(parts)
