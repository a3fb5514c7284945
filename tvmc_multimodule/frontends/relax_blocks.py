"""Relax BlockBuilders a failed conversion leaves with open blocks.

When an exception leaves `with builder.function(...)`, TVM 0.27's Python scopes do not end the
binding block the function began (the dataflow scope even begins a new one on its way out).
The builder's C++ destructor then prints "BlockBuilder destroyed with remaining blocks!" on
stderr, next to our one-line error, whenever the traceback holding the builder is freed.
Ending the blocks as the error propagates removes the cause; the error itself is unchanged.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def end_open_blocks(builder: Any) -> None:
    """End every block `builder` still has open (each binding block TVM's scopes began)."""
    from tvm.error import InternalError

    while True:
        try:
            builder._end_block()
        except InternalError:  # "no block is being built": none left
            return


@contextmanager
def blocks_ended_on_error(*known: Any) -> Iterator[list[Any]]:
    """A list of the builders of a conversion (`known`, and those the conversion adds as it
    makes them); if the conversion raises, their open blocks are ended before the exception
    goes on."""
    builders = list(known)
    try:
        yield builders
    except BaseException:
        for builder in builders:
            end_open_blocks(builder)
        raise
