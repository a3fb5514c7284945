"""--input-values: model inputs fixed to constants at compile time ("sr=16000 mode=[1,0]").

A fixed input leaves the module's signature; control flow depending on it (an If on a
sample rate) folds to the branch it selects. With several models every entry names its
module first: "vad:sr=16000".
"""
from __future__ import annotations

import re
from typing import Iterable

from ..errors import TvmcError, UsageError, raise_all

# NAME=VALUE or NAME=[v0,v1,...]; the name may contain ':' (a module prefix, TFLite-like names)
_ENTRY = re.compile(r"(?P<name>[^\s=\[\]]+)=(?P<value>\[[^\[\]]*\]|[^\s\[\]]+)")
_SEPARATOR = re.compile(r"\s*")


def parse_input_values(texts: Iterable[str] | None) -> dict[str, list[float]]:
    """{"sr": [16000.0]} from ["sr=16000"]; several entries per text, separated by spaces."""
    values: dict[str, list[float]] = {}
    for text in texts or []:
        pos = _SEPARATOR.match(text, 0).end()
        if pos == len(text):
            raise _syntax(text)
        while pos < len(text):
            match = _ENTRY.match(text, pos)
            if not match:
                raise _syntax(text)
            name = match["name"]
            if name in values:
                raise UsageError(f"--input-values gives '{name}' twice")
            values[name] = _numbers(name, match["value"])
            pos = _SEPARATOR.match(text, match.end()).end()
    return values


def _numbers(name: str, text: str) -> list[float]:
    items = [t.strip() for t in text.strip("[]").split(",") if t.strip()]
    try:
        numbers = [float(t) for t in items]
    except ValueError:
        numbers = []
    if not numbers or any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
        raise UsageError(f"--input-values '{name}': '{text}' is not a number or a list of "
                         "numbers", hint="write e.g. sr=16000 or mask=[1,0,1]")
    return numbers


def _syntax(text: str) -> UsageError:
    return UsageError(f"cannot parse --input-values '{text}'",
                      hint="write \"sr=16000\" (compile-multi: \"vad:sr=16000\")")


def split_input_values(values: dict[str, list[float]],
                       module_names: list[str]) -> dict[str, dict[str, list[float]]]:
    """MODULE:INPUT=VALUE entries to their modules (one module: the prefix may be left out)."""
    result: dict[str, dict[str, list[float]]] = {m: {} for m in module_names}
    problems: list[TvmcError] = []
    for key, value in values.items():
        prefix, sep, rest = key.partition(":")
        if sep and rest and prefix in result:
            result[prefix][rest] = value
        elif len(module_names) == 1:
            result[module_names[0]][key] = value
        else:
            problems.append(UsageError(
                f"--input-values entry '{key}' needs a known module prefix",
                hint=f"modules are: {', '.join(module_names)}; write e.g. "
                     f"{module_names[0]}:{rest or key}=..."))
    raise_all(problems)
    return result
