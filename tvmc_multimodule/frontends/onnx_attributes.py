"""Attributes of ONNX nodes, read one way for every ONNX frontend module."""
from __future__ import annotations

from typing import Any


def node_attrs(node: Any) -> dict[str, Any]:
    """The attributes of an onnx NodeProto by name, as Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def attribute_text(value: Any) -> Any:
    """A string attribute as str (ONNX stores bytes; undecodable bytes are replaced, so the
    caller's check names the value instead of failing on it); other values unchanged."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value
