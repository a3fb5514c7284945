"""--input-values: model inputs fixed to constants at compile time ("sr=16000 mode=[1,0]").

A fixed input leaves the module's signature; control flow depending on it (an If on a
sample rate) folds to the branch it selects. With several models every entry names its
module first: "vad:sr=16000".
"""
from __future__ import annotations

import re
from typing import Iterable

from ..errors import UsageError
from .option_entries import parse_entries, split_by_module

# NAME=VALUE or NAME=[v0,v1,...]; the name may contain ':' (a module prefix, TFLite-like names)
_ENTRY = re.compile(r"(?P<name>[^\s=\[\]]+)=(?P<value>\[[^\[\]]*\]|[^\s\[\]]+)")
_SEPARATOR = re.compile(r"\s*")


def parse_input_values(texts: Iterable[str] | None) -> dict[str, list[float]]:
    """{"sr": [16000.0]} from ["sr=16000"]; several entries per text, separated by spaces."""
    return parse_entries(texts or [], "--input-values", _ENTRY, _SEPARATOR,
                         '"sr=16000" (compile-multi: "vad:sr=16000")', _numbers)


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


def _value_text(value: list[float]) -> str:
    text = ",".join(f"{v:g}" for v in value)
    return f"={text}" if len(value) == 1 else f"=[{text}]"


def split_input_values(values: dict[str, list[float]],
                       module_names: list[str]) -> dict[str, dict[str, list[float]]]:
    """MODULE:INPUT=VALUE entries to their modules (one module: the prefix may be left out)."""
    return split_by_module(values, module_names, "--input-values", _value_text)
