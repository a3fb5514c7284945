"""C identifiers: sanitising tensor names and validating module names."""
from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import ErrorGroup, UsageError

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic
_Imaginary _Noreturn _Static_assert _Thread_local bool true false alignas alignof asm
""".split())

# tvmc's default module name; a keyword, but it only ever appears inside tvmgen_default_*
TVMC_DEFAULT_NAME = "default"

# file names the archive writer uses for itself (tvmgen_<reserved>.h would clash)
RESERVED_MODULE_NAMES = frozenset({"modules"})

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sanitize(name: str, fallback: str = "t") -> str:
    """Turn any tensor name into a C identifier (`gpu_0/data_0` -> `gpu_0_data_0`)."""
    text = re.sub(r"[^0-9A-Za-z_]", "_", name.encode("ascii", "replace").decode()) or fallback
    if text[0].isdigit():
        text = "_" + text
    if text in C_KEYWORDS or keyword.iskeyword(text):
        text += "_"
    return text


def unique_c_names(names: Iterable[str], fallback: str = "t") -> list[str]:
    """Sanitise every name and make them unique ignoring case (macros are upper-case)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        base = sanitize(name, fallback=f"{fallback}{i}")
        cand, k = base, 1
        while cand.upper() in seen:
            cand, k = f"{base}_{k}", k + 1
        seen.add(cand.upper())
        out.append(cand)
    return out


def module_name_from_path(path: str) -> str:
    """Default module name: the file stem made into a C identifier."""
    return sanitize(Path(path).stem, fallback="model")


def check_module_name(name: str) -> UsageError | None:
    """The error for one bad module name, or None."""
    if not name:
        return UsageError("empty module name", hint="give NAME in MODEL:NAME")
    if not name.isascii() or not _IDENT.match(name):
        return UsageError(f"module name '{name}' is not a C identifier",
                          module=name, hint="use letters, digits and '_', not starting with a digit")
    if name in C_KEYWORDS and name != TVMC_DEFAULT_NAME:
        return UsageError(f"module name '{name}' is a C keyword", module=name,
                          hint="choose another name")
    if name in RESERVED_MODULE_NAMES:
        return UsageError(f"module name '{name}' is reserved by the archive layout",
                          module=name, hint="choose another name")
    return None


def validate_module_names(names: list[str]) -> None:
    """All names valid and unique ignoring case; every problem reported at once."""
    problems: list[UsageError] = []
    seen: dict[str, str] = {}
    for name in names:
        err = check_module_name(name)
        if err:
            problems.append(err)
            continue
        key = name.lower()
        if key in seen:
            what = "twice" if seen[key] == name else f"and '{seen[key]}' differ only in case"
            problems.append(UsageError(f"module name '{name}' is used {what}"
                                       if seen[key] == name else
                                       f"module names '{name}' {what}", module=name,
                                       hint="module names must be unique ignoring case"))
        else:
            seen[key] = name
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ErrorGroup(problems)
