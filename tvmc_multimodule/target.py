"""The `--target` option: tvmc's target-string syntax, restricted to the plain C backend.

tvmc accepted ``KIND -option=value ...`` and comma-separated lists of targets and BYOC
codegens (``"cmsis-nn, c -mcpu=cortex-m55"``). We generate portable C only, so exactly one
target of kind ``c`` is accepted; anything else is a UsageError that says so. TVM 0.27 no
longer parses such strings itself (it wants a JSON dict), hence `TargetSpec.to_tvm()`.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError, raise_all

SUPPORTED_KIND = "c"

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


def parse_target(text: str, extra_options: dict[str, str] | None = None) -> TargetSpec:
    """Parse a tvmc target string (``c``, ``c -mcpu=cortex-m4``) or a JSON dict.

    `extra_options` are tvmc's ``--target-c-OPTION=VALUE`` options, merged into the target (an
    option given both ways must agree). Every problem of the string is reported at once.
    """
    stripped = (text or "").strip()
    if not stripped:
        raise UsageError("empty --target", hint="use --target c")
    problems: list[UsageError] = []
    if stripped.startswith("{"):
        kind, raw_options = _from_json(stripped)
    else:
        kind, raw_options = _from_string(stripped, problems)
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
    return TargetSpec(kind, options, _canonical(kind, options))


def _unsupported(kind: str) -> UsageError:
    return UsageError(f"target '{kind}' is not supported: only 'c' (plain C) is",
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


def _from_string(text: str, problems: list[UsageError]) -> tuple[str, dict[str, str]]:
    """Kind and raw options; each bad kind or option is added to `problems`."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:  # unbalanced quotes
        raise UsageError(f"cannot parse --target '{text}': {exc}") from None
    groups = [g for g in _split_targets(tokens) if g]
    if not groups:
        raise UsageError(f"cannot parse --target '{text}'", hint="use --target c")
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


def _split_option(token: str) -> tuple[str, str]:
    """``-mcpu=cortex-m4`` -> ("mcpu", "cortex-m4"); tvmc also allowed ``--mcpu=...``."""
    body = token[2:] if token.startswith("--") else token[1:] if token.startswith("-") else ""
    name, sep, value = body.partition("=")
    if not name or not token.startswith("-"):
        raise UsageError(f"cannot parse target option '{token}'",
                         hint="write options as -name=value, e.g. c -mcpu=cortex-m4")
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


def _canonical(kind: str, options: dict[str, Any]) -> str:
    parts = [kind]
    for name in sorted(options):
        value = options[name]
        text = ",".join(value) if isinstance(value, list) else str(value)
        parts.append(f"-{name}={shlex.quote(text)}")
    return " ".join(parts)
