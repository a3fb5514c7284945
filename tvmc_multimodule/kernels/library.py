"""A kernel library turns operator records (records.py) into kernels: a PrimFunc plus the
constants it reads, packed at compile time in the order its loops read them.

Every library answers for every operator: `PortableC` (portable/) is complete, and a library
for a particular core subclasses it and overrides the operators it speeds up. Adding a library
touches its own folder and the table in `__init__.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx

# a kernel (PrimFunc attribute) whose temporaries all go to the module's workspace, however
# small (smaller ones otherwise stay on the C stack): the buffers handed to CMSIS-NN are planned
SCRATCH_IN_WORKSPACE_ATTR = "tvmc.scratch_in_workspace"


@dataclass(frozen=True)
class Kernel:
    """`func`'s parameters: the activation inputs, then `constants` in order, output last."""

    func: tirx.PrimFunc
    constants: tuple[np.ndarray, ...]
    c_sources: tuple[tuple[str, str], ...] = ()  # (key, C the kernel calls): once per module
