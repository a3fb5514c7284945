"""The one parser of options whose value is a list of per-input entries, `--input-shapes`
("x:[1,49,10,1] y:[10]") and `--input-values` ("sr=16000 mask=[1,0]"): entries read from
one or several strings with the same loop, duplicates refused alike, and split to their
modules by the same rule with the same messages (`split_by_module`)."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..errors import TvmcError, UsageError, raise_all

T = TypeVar("T")


def parse_entries(texts: Iterable[str], option: str, entry: re.Pattern[str],
                  separator: re.Pattern[str], example: str,
                  value: Callable[[str, str], T]) -> dict[str, T]:
    """{name: value(name, text)} of every `entry` match (groups `name` and `value`) in each
    text, entries separated by `separator`; a text that is empty or not entries alone is a
    syntax error showing `example`, a name given twice an error of its own."""
    found: dict[str, T] = {}
    for text in texts:
        pos = separator.match(text, 0).end()  # type: ignore[union-attr]
        if pos == len(text):
            raise _syntax(option, text, example)
        while pos < len(text):
            match = entry.match(text, pos)
            if not match:
                raise _syntax(option, text, example)
            name = match["name"]
            if name in found:
                raise UsageError(f"{option} gives '{name}' twice")
            found[name] = value(name, match["value"])
            pos = separator.match(text, match.end()).end()  # type: ignore[union-attr]
    return found


def _syntax(option: str, text: str, example: str) -> UsageError:
    return UsageError(f"cannot parse {option} '{text}'", hint=f"write {example}")


def split_by_module(entries: dict[str, T], module_names: list[str], option: str,
                    shown: Callable[[T], str]) -> dict[str, dict[str, T]]:
    """``MODULE:INPUT`` entries to their modules. With one module an entry without its
    prefix is the input's full name (tvmc's syntax, where input names may contain ':');
    with several every entry needs a known prefix. `shown(value)`: how the entry writes
    the value after its name (":[1,2]", "=16000"), for the hint."""
    result: dict[str, dict[str, T]] = {m: {} for m in module_names}
    problems: list[TvmcError] = []
    for key, value in entries.items():
        prefix, sep, rest = key.partition(":")
        if sep and rest and prefix in result:
            result[prefix][rest] = value
        elif len(module_names) == 1:
            result[module_names[0]][key] = value
        elif sep:
            problems.append(UsageError(
                f"{option} entry '{key}' names unknown module '{prefix}'",
                hint=f"modules are: {', '.join(module_names)} (an input name that contains "
                     f"':' needs its module prefix too, e.g. {module_names[0]}:{key})"))
        else:
            problems.append(UsageError(
                f"{option} entry '{key}' needs a module prefix",
                hint=f"with several models write MODULE:INPUT, e.g. "
                     f"{module_names[0]}:{key}{shown(value)}"))
    raise_all(problems)
    return result
