"""Relax passes that turn an imported model into a static call sequence.

The default Relax build pipeline neither fuses for target "c" nor stops before the VM, so the
list is explicit (measured on apache-tvm 0.27, see docs/architecture.md).
"""
from __future__ import annotations

from typing import Any

import tvm
from tvm import relax

from .constant_guard import shrink_broadcast_constants

# Channels-last is what the schedules vectorise (channel axis innermost); ONNX graphs are NCHW.
# Measured on the DS-CNN exported from torch: 0.52 ms NCHW -> 0.17 ms NHWC/HWIO at -O3.
# (pooling and elementwise operators follow the convolutions' layout by inference)
CHANNELS_LAST = {"relax.nn.conv2d": ["NHWC", "HWIO"]}
# ...except around quantize/dequantize, which take no layout: the transposes ConvertLayout puts
# there cost RAM (the torch DS-CNN in QDQ form: 66,008 -> 106,008 B)
_LAYOUT_BLOCKERS = {"relax.quantize", "relax.dequantize"}


def _uses(mod: tvm.IRModule, op_names: set[str]) -> bool:
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            op = getattr(binding.value, "op", None)
            if getattr(op, "name", None) in op_names:
                return True
    return False


# tvmc's --desired-layout: the layout asked for the float convolutions
DESIRED_LAYOUTS = {"NHWC": CHANNELS_LAST, "NCHW": {"relax.nn.conv2d": ["NCHW", "OIHW"]}}


def _passes(mod: tvm.IRModule, opt_level: int, desired_layout: str | None) -> list[Any]:
    fusion = [relax.transform.FuseOps(), relax.transform.FuseTIR()] if opt_level >= 1 else []
    if desired_layout is not None:  # asked for: also at -O0 and around quantize/dequantize
        layout = [relax.transform.ConvertLayout(DESIRED_LAYOUTS[desired_layout])]
    elif opt_level >= 1 and not _uses(mod, _LAYOUT_BLOCKERS):
        layout = [relax.transform.ConvertLayout(CHANNELS_LAST)]
    else:
        layout = []
    return [
        *layout,
        shrink_broadcast_constants,  # no constant broadcast to an activation's full size
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        *fusion,
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
        relax.transform.DeadCodeElimination(["main"]),
    ]


def lower_relax(mod: tvm.IRModule, opt_level: int = 3,
                desired_layout: str | None = None) -> tvm.IRModule:
    """Legalise, fuse and statically plan `main`; stops before the VM-specific passes.
    `desired_layout` ("NHWC", "NCHW"): the convolutions' layout instead of the default."""
    with tvm.target.Target("c"):
        return tvm.transform.Sequential(_passes(mod, opt_level, desired_layout))(mod)
