"""CMSIS-NN as an external dependency of a firmware project: where its sources are (a path the
user gives: ARM-software/CMSIS-NN, never copied into this tool) and which of them an int8
model's calls need."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UsageError
from ..target import CMSIS_NN_DEPENDENCY

EXTERNAL_LIBRARY = CMSIS_NN_DEPENDENCY  # its short_name in metadata.json's external_dependencies

# a source our calls (convolution, depthwise, fully connected, pooling, softmax, add, mul)
# never reach: float (f16/f32), int4, int16-only, LSTM/SVDF, and the int8 operators we do not
# call (transposed convolution, batch matmul, concatenation, pad, reshape, relu,
# maximum/minimum, uint8 softmax)
_UNUSED = re.compile(r"_(f16|f32|flt|s4)(_|$)|lstm|svdf|transpose_conv|batch_matmul|"
                     r"concatenation|_pad_|reshape|relu|maximum|minimum|softmax_u8|s8_s64|"
                     r"s8_s32|mul_s16", re.I)


def check_root(path: str, what: str = "--cmsis-nn-path") -> Path:
    """The CMSIS-NN checkout at `path` (it must hold Include/arm_nnfunctions.h and Source/)."""
    root = Path(path).expanduser().resolve()
    if not (root / "Include" / "arm_nnfunctions.h").is_file() or not (root / "Source").is_dir():
        raise UsageError(f"{what} '{path}' is not a CMSIS-NN checkout (no "
                         "Include/arm_nnfunctions.h and Source/)",
                         hint="give the root of ARM-software/CMSIS-NN")
    return root


def int8_sources(root: Path) -> list[Path]:
    """The sources of `root`/Source our int8 calls may reach (about 40 of 110), sorted."""
    sources = []
    for path in sorted(root.glob("Source/*/*.c")):
        stem = path.stem
        int16_only = "_s16" in stem and "_s8" not in stem
        if not _UNUSED.search(stem) and not int16_only and "LSTM" not in str(path.parent):
            sources.append(path)
    return sources


