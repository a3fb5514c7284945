"""TFLite sparse constants (SparsityParameters: traversal order, block map, per-level
DENSE / SPARSE_CSR metadata) made dense at compile time, exactly as LiteRT's
`FormatConverter::SparseToDense` does. Every index is checked: a corrupt sparse tensor is a
ModelError, never an IndexError."""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ..errors import ModelError

_INDEX_VECTORS = {1: ("Int32Vector", np.int32), 2: ("Uint16Vector", np.uint16),
                  3: ("Uint8Vector", np.uint8)}
_DENSE, _CSR = 0, 1
# the level-by-level walk holds every index of a level at once: more than this is no weight
# tensor of a microcontroller model (and would take gigabytes here)
_MAX_VALUES = 1 << 25


def _index_vector(table: Any, kind: int, what: str) -> np.ndarray:
    if table is None or kind not in _INDEX_VECTORS:
        raise ModelError(f"corrupt file: sparse tensor metadata has no {what}")
    name, _ = _INDEX_VECTORS[kind]
    cls = getattr(importlib.import_module(f"tflite.{name}"), name)
    vector = cls()
    vector.Init(table.Bytes, table.Pos)
    values = vector.ValuesAsNumpy()
    return np.asarray(values, np.int64) if isinstance(values, np.ndarray) else np.zeros(0, np.int64)


def _levels(sparsity: Any) -> list[tuple[int, Any]]:
    """Per traversal level: (DENSE, size) or (SPARSE_CSR, (segments, indices))."""
    levels = []
    for level in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == _DENSE:
            levels.append((_DENSE, int(meta.DenseSize())))
        elif meta.Format() == _CSR:
            segments = _index_vector(meta.ArraySegments(), meta.ArraySegmentsType(), "segments")
            indices = _index_vector(meta.ArrayIndices(), meta.ArrayIndicesType(), "indices")
            levels.append((_CSR, (segments, indices)))
        else:
            raise ModelError(f"corrupt file: sparse dimension format {meta.Format()}")
    return levels


def _walk(levels: list[tuple[int, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Every stored value's index at each traversal level, in storage order, and its
    position in the last level (LiteRT's recursive Populate, level by level, vectorised)."""
    idx = np.zeros((1, 0), np.int64)
    parent = np.zeros(1, np.int64)
    for kind, meta in levels:
        if kind == _DENSE:
            n = parent.size
            if n * max(meta, 0) > _MAX_VALUES:
                raise ModelError("corrupt file: sparse tensor too large")
            parent = (parent[:, None] * meta + np.arange(meta)).reshape(-1)
            idx = np.concatenate([np.repeat(idx, meta, axis=0),
                                  np.tile(np.arange(meta), n)[:, None]], axis=1)
        else:
            segments, indices = meta
            if parent.size and int(parent.max()) + 1 >= segments.size:
                raise ModelError("corrupt file: sparse segments shorter than the tensor")
            lo, hi = segments[parent], segments[parent + 1]
            if np.any(lo < 0) or np.any(hi < lo) or np.any(hi > indices.size):
                raise ModelError("corrupt file: sparse segments out of range")
            counts = hi - lo
            if int(counts.sum()) > _MAX_VALUES:
                raise ModelError("corrupt file: sparse tensor too large")
            rows = np.repeat(np.arange(parent.size), counts)
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            parent = lo[rows] + (np.arange(rows.size) - starts)
            idx = np.concatenate([idx[rows], indices[parent][:, None]], axis=1)
    return idx, parent


def densify(sparsity: Any, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The dense array of `shape` a sparse TFLite tensor stands for (zeros elsewhere)."""
    rank = len(shape)
    order = [int(d) for d in sparsity.TraversalOrderAsNumpy()] if sparsity.TraversalOrderLength() \
        else list(range(rank))
    block_map = [int(d) for d in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    levels = _levels(sparsity)
    if (len(levels) != len(order) or len(order) != rank + len(block_map)
            or sorted(order) != list(range(len(order)))
            or any(not 0 <= d < rank for d in block_map)):
        raise ModelError("corrupt file: inconsistent sparsity parameters (traversal order, "
                         "block map and dimension metadata disagree)")
    block_size = []
    for k in range(len(block_map)):
        kind, size = levels[order.index(rank + k)]
        if kind != _DENSE or size <= 0:
            raise ModelError("corrupt file: a sparse block dimension is not dense")
        block_size.append(size)
    idx, parent = _walk(levels)
    if parent.size != values.size:
        raise ModelError(f"corrupt file: sparse tensor holds {values.size} values, its "
                         f"metadata addresses {parent.size}")
    orig = np.zeros((parent.size, rank), np.int64)
    for level in range(rank):
        orig[:, order[level]] = idx[:, level]
    for level in range(rank, len(order)):
        k = order[level] - rank
        orig[:, block_map[k]] = orig[:, block_map[k]] * block_size[k] + idx[:, level]
    dims = np.asarray(shape, np.int64)
    if orig.size and (np.any(orig < 0) or np.any(orig >= dims)):
        raise ModelError("corrupt file: a sparse index lies outside the tensor's shape")
    strides = np.cumprod(np.concatenate([dims[1:], [1]])[::-1])[::-1]
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), values.dtype)
    dense[orig @ strides] = values
    return dense.reshape(shape)


def sparse_values(tensor: Any, data: bytes, dtype: str) -> np.ndarray:
    """The stored (non-zero) values of a sparse constant, as `dtype`."""
    itemsize = np.dtype(dtype).itemsize
    if len(data) % itemsize:
        raise ModelError(f"corrupt file: sparse tensor data of {len(data)} bytes is not a "
                         f"whole number of {dtype}")
    return np.frombuffer(data, dtype)


def dense_constant(tensor: Any, data: bytes, dtype: str) -> np.ndarray:
    """A (possibly sparse) constant tensor's dense value."""
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    if tensor.Sparsity() is None:
        return np.frombuffer(data, dtype).reshape(shape)
    return densify(tensor.Sparsity(), sparse_values(tensor, data, dtype), shape)
