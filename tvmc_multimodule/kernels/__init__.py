"""The kernel stage: int8 operator records (records.py) -> TIR kernels and the C they call.

Frontends describe each integer operator as a record plus its weights; the kernel library
chosen from the target builds the kernel and packs the weights for it.

- records.py: the operator records; library.py: `Kernel`, what a library returns
- fixedpoint.py: host-side integer maths (multipliers, tables, gemmlowp fixed point)
- c_helpers.py: the C helpers kernels call (`tvmgen_<module>_...`, static inline)
- portable/: portable C, "vector" and "scalar" loop forms (complete)
- cortex_m_dsp/: Cortex-M cores with the DSP extension (SMLAD): convolutions, depthwise
  convolutions and fully connected layers; the rest as portable C's scalar form
- cmsis_nn/: calls of ARM's CMSIS-NN library (`--target "cmsis-nn, c"`), the rest as the
  library the core would use without it
"""
from __future__ import annotations

from . import fixedpoint
from .c_helpers import CHelpers
from .cmsis_nn import CmsisNN, arch_for_cpu, external_dependency
from .cortex_m_dsp import CortexMDsp
from .library import Kernel
from .portable import PortableC
from .portable.lstm import lstm_spec
from .records import AddParams, Conv2DSpec, FullyConnectedSpec, LstmSpec, PoolSpec

KernelLibrary = PortableC  # every library is a PortableC (it overrides what it speeds up)


def library_for_target(mcpu: str | None, form: str, cmsis_nn: bool = False) -> KernelLibrary:
    """The kernel library for a target's -mcpu and the schedule's loop form ("vector",
    "scalar"; "none" builds the vector form, as before): Cortex-M DSP for cores with the DSP
    extension in the scalar form (their default), portable C otherwise; with `cmsis_nn`
    (``--target "cmsis-nn, c"``) CMSIS-NN calls in front of that library."""
    if cmsis_nn:
        return CmsisNN(library_for_target(mcpu, form), arch_for_cpu(mcpu))
    if form == "scalar" and arch_for_cpu(mcpu) != "none":  # the core has the DSP extension
        return CortexMDsp()
    return PortableC("scalar" if form == "scalar" else "vector")


__all__ = ["AddParams", "CHelpers", "CmsisNN", "Conv2DSpec", "CortexMDsp", "FullyConnectedSpec",
           "Kernel", "KernelLibrary", "LstmSpec", "PoolSpec", "PortableC", "external_dependency",
           "fixedpoint", "library_for_target", "lstm_spec"]
