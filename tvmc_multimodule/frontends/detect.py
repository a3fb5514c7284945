"""Which frontend reads a file: by the user's word, else by content, else by extension."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelError, UsageError

FORMATS = ("tflite", "onnx")
_EXTENSIONS = {".tflite": "tflite", ".onnx": "onnx"}


def _sniff(head: bytes) -> str | None:
    # TFLite flatbuffers carry the file identifier "TFL3" at bytes 4..8.
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    # ONNX is a protobuf ModelProto: field 1 (ir_version, varint) comes first in every
    # exporter we know; tag byte 0x08.
    if head[:1] == b"\x08":
        return "onnx"
    return None


def check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise ModelError("file not found", path=path, hint="check the path")
    if os.path.isdir(path):
        raise ModelError("is a directory, not a model file", path=path)
    if not os.access(path, os.R_OK):
        raise ModelError("file is not readable", path=path, hint="check its permissions")
    if os.path.getsize(path) == 0:
        raise ModelError("file is empty", path=path, hint="re-download or re-export the model")


def detect_format(path: str, declared: str | None = None) -> str:
    """The model format of `path`; content wins over a wrong extension."""
    check_readable(path)
    if declared is not None:
        if declared not in FORMATS:
            raise UsageError(f"unknown model format '{declared}'", path=path,
                             hint=f"use one of: {', '.join(FORMATS)}")
        return declared
    with open(path, "rb") as fh:
        head = fh.read(16)
    sniffed = _sniff(head)
    if sniffed:
        return sniffed
    by_ext = _EXTENSIONS.get(Path(path).suffix.lower())
    if by_ext:
        return by_ext
    raise ModelError("not a TFLite or ONNX model (unknown content and extension)", path=path,
                     hint="pass --model-format if the file is valid")
