"""Every string from a model or an archive that reaches C goes through `c_text`.

Three forms, one function:

- ``CText.COMMENT``: text to place between ``/* `` and `` */``. Printable ASCII stays as it
  is except ``%``, ``*``, ``\\`` and ``?``, which are percent-encoded (``%25``, ``%2A``,
  ``%5C``, ``%3F``) as are control characters and the UTF-8 bytes of non-ASCII characters;
  a final ``/`` becomes ``%2F``. So no name can end the comment (``*/``), open a nested one
  (``/*``, a -Wcomment error), splice lines (backslash-newline, the ``??/`` trigraph under
  -std=c11/-trigraphs) or carry a newline. Text longer than 200 characters is cut there
  (``...``).
- ``CText.STRING``: a complete C string literal; ``"``, ``\\`` and ``?`` are escaped,
  everything outside printable ASCII becomes 3-digit octal escapes of its UTF-8 bytes.
- ``CText.IDENTIFIER``: a C identifier made from any text (struct members, the tensor part of
  macros). ``[A-Za-z0-9_]`` stay, other ASCII characters become ``_``, each non-ASCII character
  becomes ``u`` + its code point in hex (``λ`` -> ``u03bb``) set off by ``_``; a leading digit
  gets a ``_`` before it; a name the implementation reserves (``__x``, ``_X``) or starting
  with ``TVMGEN_`` (the module's own macros) gets a ``t`` before it; a C keyword or a macro of
  the standard headers the generated code includes (``NULL``, ``EOF``, ``INT8_MAX``...) gets
  a ``_`` after it, and so does a C++ keyword (``class``, ``this``: the header is C++ too).
  A valid name comes back unchanged, so ``c_text(s, IDENTIFIER) == s`` is the test an
  archive's C names must pass (`is_c_identifier`).

Uniqueness is `unique_c_names`' job: names are compared upper-cased (macros are upper-case).
"""
from __future__ import annotations

import enum
import keyword
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import UsageError, raise_all

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic
_Imaginary _Noreturn _Static_assert _Thread_local bool true false alignas alignof asm
""".split())

# the module header is also C++ (extern "C"): a member may not be a C++ keyword either
CXX_KEYWORDS = frozenset("""
and and_eq bitand bitor catch char8_t char16_t char32_t class compl concept consteval
constexpr constinit const_cast co_await co_return co_yield decltype delete dynamic_cast
explicit export friend mutable namespace new noexcept not not_eq nullptr operator or or_eq
private protected public reinterpret_cast requires static_assert static_cast template this
thread_local throw try typeid typename using virtual wchar_t xor xor_eq
""".split())

# object-like macros of the headers generated C includes (stdint.h, inttypes.h, stddef.h,
# stdio.h, stdlib.h, string.h), GNU's predefined ones, and the generated code's own: a
# struct member of that name would be replaced by the preprocessor
_STANDARD_MACROS = frozenset("""
NULL EOF BUFSIZ FILENAME_MAX FOPEN_MAX L_tmpnam TMP_MAX SEEK_SET SEEK_CUR SEEK_END stdin
stdout stderr errno EXIT_SUCCESS EXIT_FAILURE RAND_MAX MB_CUR_MAX SIZE_MAX PTRDIFF_MIN
PTRDIFF_MAX SIG_ATOMIC_MIN SIG_ATOMIC_MAX WCHAR_MIN WCHAR_MAX WINT_MIN WINT_MAX unix linux
i386 offsetof TVMGEN_ALIGNED EXAMPLE_BYTES
""".split())
_STDINT_MACRO = re.compile(
    r"^(U?INT(_LEAST|_FAST)?(8|16|32|64)_(MIN|MAX)|U?INT(MAX|PTR)_(MIN|MAX)"
    r"|U?INT(8|16|32|64|MAX)_C|(PRI|SCN)[diouxX](8|16|32|64|LEAST\d+|FAST\d+|MAX|PTR))$")

# tvmc's default module name; a keyword, but it only ever appears inside tvmgen_default_*
TVMC_DEFAULT_NAME = "default"

# names the archive's own files and macros use (tvmgen_modules.h, TVMGEN_MODULES_COUNT,
# TVMGEN_MAX_WORKSPACE_SIZE): a module of that name would clash with them
RESERVED_MODULE_NAMES = frozenset({"modules", "max"})

COMMENT_MAX_CHARS = 200
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COMMENT_ESCAPED = frozenset("%*\\?")


class CText(enum.Enum):
    """Where in C a piece of model or archive text goes."""

    COMMENT = "comment"
    STRING = "string"
    IDENTIFIER = "identifier"


def c_text(text: str, kind: CText, fallback: str = "t") -> str:
    """`text` made safe for `kind` (see the module's docstring); the only way such text
    enters generated C. `fallback` is the identifier used for an empty name."""
    if kind is CText.COMMENT:
        return _comment(text)
    if kind is CText.STRING:
        return _string_literal(text)
    if kind is CText.IDENTIFIER:
        return _identifier(text, fallback)
    raise ValueError(kind)


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def _comment(text: str) -> str:
    cut = len(text) > COMMENT_MAX_CHARS
    text = text[:COMMENT_MAX_CHARS]
    out = [_percent(c) if c in _COMMENT_ESCAPED or not " " <= c <= "~" else c for c in text]
    if out and out[-1] == "/":
        out[-1] = "%2F"
    return "".join(out) + ("..." if cut else "")


def _string_literal(text: str) -> str:
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        char = chr(byte)
        if char in '"\\?':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _identifier(text: str, fallback: str) -> str:
    pieces: list[str] = []
    for char in text:
        if char.isascii():
            pieces.append(char if char.isalnum() or char == "_" else "_")
            continue
        code = f"u{ord(char):04x}"
        if pieces and pieces[-1] != "_":
            pieces.append("_")
        pieces += [code, "\0"]  # "\0": set off from what follows, unless it ends the name
    joined = "".join(pieces)
    result = re.sub(r"\0(?=[A-Za-z0-9])", "_", joined).replace("\0", "") or fallback
    if result[0].isdigit():
        result = "_" + result
    if re.match(r"^(__|_[A-Z]|TVMGEN_)", result):
        result = "t" + result
    if is_reserved_word(result):
        result += "_"
    return result


def is_reserved_word(name: str) -> bool:
    """A C or C++ keyword, a Python keyword, or a macro the generated code's headers
    define."""
    return (name in C_KEYWORDS or name in CXX_KEYWORDS or keyword.iskeyword(name)
            or name in _STANDARD_MACROS
            or bool(_STDINT_MACRO.match(name)))


def is_c_identifier(name: object) -> bool:
    """`name` is a string that `c_text(..., IDENTIFIER)` leaves unchanged."""
    return isinstance(name, str) and bool(_IDENT.match(name)) and name.isascii() \
        and c_text(name, CText.IDENTIFIER) == name


def sanitize(name: str, fallback: str = "t") -> str:
    """Turn any tensor name into a C identifier (`gpu_0/data_0` -> `gpu_0_data_0`)."""
    return c_text(name, CText.IDENTIFIER, fallback)


def unique_c_names(names: Iterable[str], fallback: str = "t",
                   reserved: Iterable[str] = ()) -> list[str]:
    """Sanitise every name and make them unique ignoring case (macros are upper-case) and
    different from `reserved`: the first name keeps its identifier, a later one that would
    clash gets `_1`, `_2`... (the first suffix free), in the order given."""
    out: list[str] = []
    seen: set[str] = {r.upper() for r in reserved}
    for i, name in enumerate(names):
        base = sanitize(name, fallback=f"{fallback}{i}")
        cand, k = base, 1
        while cand.upper() in seen or not is_c_identifier(cand):
            cand, k = f"{base}_{k}", k + 1
        seen.add(cand.upper())
        out.append(cand)
    return out


def check_distinct_identifiers(names: Iterable[str], what: str, example: str = "{}") -> None:
    """Names that become C identifiers (`sanitize`) verbatim, so that each keeps a name the
    user can predict: two that would become the same identifier are a UsageError naming
    both. `example` formats the identifier as it appears in C."""
    seen: dict[str, str] = {}
    for name in names:
        ident = sanitize(name)
        if ident in seen:
            raise UsageError(f"{what} '{seen[ident]}' and '{name}' both become the C name "
                             f"{example.format(ident)}", hint=f"rename one {what}")
        seen[ident] = name


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
    raise_all(problems)


# main's attribute {identifier: the model's own text}: layer names enter Relax as C
# identifiers (TVM names C temporaries after them); the comments show the model's text
RAW_NAMES_ATTR = "tvmc.raw_names"


def with_raw_names(mod: object, raw: dict[str, str]) -> object:
    """`mod` whose main records the model's text of each identifier a frontend named a
    layer with (an identifier two different texts map to keeps itself)."""
    import tvm

    if not raw:
        return mod
    main = mod["main"]  # type: ignore[index]
    updated = main.with_attr(RAW_NAMES_ATTR, {k: v for k, v in raw.items() if v is not None})
    functions = {g: (updated if g.name_hint == "main" else f)
                 for g, f in mod.functions.items()}  # type: ignore[attr-defined]
    return tvm.IRModule(functions, attrs=mod.attrs)  # type: ignore[attr-defined]


def record_raw_name(raw: dict[str, str | None], identifier: str, text: str) -> None:
    """Remember `text` behind `identifier` (None when two texts share it)."""
    if identifier != text:
        known = raw.setdefault(identifier, text)
        if known != text:
            raw[identifier] = None
