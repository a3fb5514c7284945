"""Constants as compact, aligned `static const` C arrays.

Each constant is a union of 32-bit words (printed in hex: 11 characters per 4 bytes, so the C
text stays under 3x the weight bytes) and a member of the tensor's own C type, which the
runner passes to the operators.
"""
from __future__ import annotations

import numpy as np

from .ctypes import c_type

WORDS_PER_LINE = 12
CONSTANT_ALIGN = 16

ENDIAN_GUARD = """#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "constants are stored as little-endian words: this target is big-endian"
#endif"""


def _words(array: np.ndarray) -> np.ndarray:
    raw = np.ascontiguousarray(array).view(np.uint8).ravel()
    padded = np.zeros(max(1, (raw.size + 3) // 4) * 4, np.uint8)
    padded[: raw.size] = raw
    return padded.view("<u4")


def constant_definition(c_name: str, array: np.ndarray, alignment: int = CONSTANT_ALIGN) -> str:
    """`static const union {...} c_name` holding `array`; use `c_name.data`."""
    words = _words(array)
    lines = []
    for start in range(0, words.size, WORDS_PER_LINE):
        chunk = words[start:start + WORDS_PER_LINE]
        lines.append("  " + ",".join(f"0x{int(w):08x}" for w in chunk) + ",")
    ctype = c_type(str(array.dtype))
    count = max(1, array.size)
    return (f"/* {array.dtype}{list(array.shape)} */\n"
            f"static const union {{ uint32_t words[{words.size}]; {ctype} data[{count}]; }} "
            f"{c_name} TVMGEN_ALIGNED({alignment}) = {{{{\n" + "\n".join(lines) + "\n}};")


_INITIALISER_START = "= {{\n"
_INITIALISER_END = "\n}};"


def without_constant_data(source: str) -> str:
    """`source` with every constant of `constant_definition` zero-initialised (`= {{0}};`):
    the same code, for measuring code size without compiling megabytes of constant data."""
    parts, position = [], 0
    while (start := source.find(_INITIALISER_START, position)) >= 0:
        end = source.find(_INITIALISER_END, start)
        if end < 0:
            break
        parts.append(source[position:start])
        parts.append("= {{0}};")
        position = end + len(_INITIALISER_END)
    parts.append(source[position:])
    return "".join(parts)
