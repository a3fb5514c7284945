"""numpy dtype names -> C types."""
from __future__ import annotations

from ..errors import UnsupportedError

C_TYPES = {
    "float32": "float", "float64": "double", "int8": "int8_t", "uint8": "uint8_t",
    "int16": "int16_t", "uint16": "uint16_t", "int32": "int32_t", "uint32": "uint32_t",
    "int64": "int64_t", "uint64": "uint64_t", "bool": "int8_t",
}


def c_type(dtype: str) -> str:
    try:
        return C_TYPES[dtype]
    except KeyError:
        raise UnsupportedError(f"tensors of type {dtype} are not supported by the C backend",
                               hint="convert the model to float32 or int8") from None
