"""CMSIS-NN calls (`--target "cmsis-nn, c"`): the int8 operators CMSIS-NN implements become
calls of ARM's library, one C function per layer (c_source.py) called from TIR by
`call_extern`; the rest, and configurations CMSIS-NN does not take, go to the library the
target would use without it (`fallback`: Cortex-M DSP or portable C).

- convolution: arm_convolve_wrapper_s8; depthwise: arm_depthwise_conv_wrapper_s8 (any
  channel multiplier); fully connected: arm_fully_connected_s8 (per-tensor) or
  arm_fully_connected_per_channel_s8; arm_avgpool_s8, arm_max_pool_s8; arm_softmax_s8
  (TFLite's output quantisation 1/256, -128); same-shape ADD and MUL:
  arm_elementwise_add_s8 / arm_elementwise_mul_s8.
- Weights stay in TFLite's layouts (CMSIS-NN reads OHWI, [1, KH, KW, C*M], [units, depth]).
- Scratch: each call's `*_get_buffer_size` answer for the target's core (buffers.py) is an
  allocation of the kernel that the pipeline puts in the module's workspace plan.
- Bit-exact with TFLite Micro (CMSIS-NN's double rounding); ONNX-QDQ models (rounding "onnx")
  keep our kernels, whose single rounding matches onnxruntime.
"""
from __future__ import annotations

import re
from string import Template
from typing import Sequence

import numpy as np
from tvm import tirx

from ...target import CMSIS_NN_DEPENDENCY
from .. import fixedpoint as fx
from ..c_helpers import CHelpers
from ..library import SCRATCH_IN_WORKSPACE_ATTR, Kernel, extern_kernel, layer_name
from ..portable import PortableC
from ..records import AddParams, Conv2DSpec, FullyConnectedSpec, PoolSpec
from . import buffers
from .buffers import ARCHES, arch_for_cpu
from .c_source import ADD, CONV, FULLY_CONNECTED, HEADER, MUL, MUTABLE, POOL, SOFTMAX

# metadata.json's name of the external library an archive's modules call
EXTERNAL_LIBRARY = CMSIS_NN_DEPENDENCY
# the commit this library is tested with (TFLite Micro's pin)
TESTED_VERSION = "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae"
_CALL = re.compile(r"\b(arm_\w+_s8)\(")
# operators without a CMSIS-NN form: the fallback library's own
_DELEGATED = ("mean", "add", "add_scaled", "mul", "table_lookup", "quantize_float", "pad",
              "strided_slice", "average_pool", "max_pool", "softmax")


def _call_kernel(name: str, inputs: Sequence[tuple[tuple[int, ...], str]],
                 out_shape: Sequence[int], scratch_bytes: int, macs: int = 0) -> tirx.PrimFunc:
    """A PrimFunc calling `name(inputs..., out[, scratch])`; the scratch is an allocation the
    pipeline places in the workspace (SCRATCH_IN_WORKSPACE_ATTR), however small."""
    return (extern_kernel(name, inputs, out_shape, macs, scratch_bytes)
            .with_attr(SCRATCH_IN_WORKSPACE_ATTR, True))


def _layer(helpers: CHelpers, kind: str, template: Template, **params: object) -> tuple[str, str]:
    """(C function name, its text): named after a hash of the text, so equal layers share
    one function."""
    text = template.substitute(params, name="NAME")
    name = layer_name(helpers.prefix, f"cmsis_{kind}", text)
    return name, text.replace("NAME", name)


class CmsisNN(PortableC):
    """CMSIS-NN where it applies; `fallback` (the target's own library) for the rest."""

    name = "cmsis-nn"

    def __init__(self, fallback: PortableC, arch: str = "none"):
        if arch not in ARCHES:
            raise ValueError(f"unknown CMSIS-NN architecture {arch!r}")
        super().__init__(fallback.form)
        self.fallback = fallback
        self.arch = arch  # the code path CMSIS-NN takes on the core: scratch sizes depend on it
        for op in _DELEGATED:  # instance attributes: the fallback's forms, not PortableC's
            setattr(self, op, getattr(fallback, op))

    def __repr__(self) -> str:
        return f"CmsisNN({self.fallback!r}, {self.arch!r})"

    @staticmethod
    def _kernel(call: tuple[str, str], func: tirx.PrimFunc,
                constants: tuple[np.ndarray, ...] = ()) -> Kernel:
        """The kernel and its C: CMSIS-NN's header once per module, the layer's function."""
        name, text = call
        return Kernel(func, constants, (("cmsis_nn_header", HEADER), (name, text)))

    @staticmethod
    def _exact(helpers: CHelpers) -> bool:
        return helpers.rounding == "tflite"

    # ---- convolutions
    def conv2d(self, spec: Conv2DSpec, weights: np.ndarray, bias: np.ndarray,
               mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        if not self._exact(helpers):
            return self.fallback.conv2d(spec, weights, bias, mult, shift, helpers)
        n, h, w_in, c = spec.input_shape
        _, kh, kw, _ = spec.weight_shape
        out_c = spec.weight_shape[3] if spec.depthwise else spec.weight_shape[0]
        oh, ow = spec.output_hw
        (sh, sw), (dh, dw), (pt, pl) = spec.stride, spec.dilation, spec.pad_top_left
        act = f"{{{spec.act_min}, {spec.act_max}}}"
        tiles = f"{{{sw}, {sh}}}, {{{pl}, {pt}}}, {{{dw}, {dh}}}"
        offsets = f"{-spec.input_zero_point}, {spec.output_zero_point}"
        if spec.depthwise:
            size = buffers.depthwise_conv_wrapper_s8(spec.input_shape, (kh, kw), out_c,
                                                     (oh, ow), spec.stride, (pt, pl),
                                                     spec.dilation, self.arch)
            params = dict(params_type="cmsis_nn_dw_conv_params", FN=1, FC=out_c,
                          params=f"{{{offsets}, {out_c // c}, {tiles}, {act}}}",
                          function="arm_depthwise_conv_wrapper_s8")
        else:
            size = buffers.convolve_wrapper_s8(spec.input_shape, (kh, kw), (oh, ow),
                                               spec.stride, (pt, pl), spec.dilation, self.arch)
            params = dict(params_type="cmsis_nn_conv_params", FN=out_c, FC=c,
                          params=f"{{{offsets}, {tiles}, {act}}}",
                          function="arm_convolve_wrapper_s8")
        call = _layer(helpers, "dwconv" if spec.depthwise else "conv", CONV,
                      N=n, H=h, W=w_in, C=c, KH=kh, KW=kw, O=out_c, OH=oh, OW=ow,
                      mutable=MUTABLE, **params, **_scratch(size))
        constants = (np.ascontiguousarray(weights), bias.astype(np.int32),
                     mult.astype(np.int32), shift.astype(np.int32))
        macs = n * oh * ow * out_c * kh * kw * (1 if spec.depthwise else c)
        func = _call_kernel(call[0], [(tuple(spec.input_shape), "int8"),
                                      *[(a.shape, str(a.dtype)) for a in constants]],
                            (n, oh, ow, out_c), size, macs)
        return self._kernel(call, func, constants)

    def fully_connected(self, spec: FullyConnectedSpec, weights: np.ndarray, bias: np.ndarray,
                        mult: np.ndarray, shift: np.ndarray, helpers: CHelpers) -> Kernel:
        if not self._exact(helpers):
            return self.fallback.fully_connected(spec, weights, bias, mult, shift, helpers)
        constants = [np.ascontiguousarray(weights), bias.astype(np.int32)]
        if len(set(mult.tolist())) <= 1 and len(set(shift.tolist())) <= 1:  # per tensor
            quant = (f"static const cmsis_nn_per_tensor_quant_params quant = "
                     f"{{{int(mult[0])}, {int(shift[0])}}};")
            function, quant_params = "arm_fully_connected_s8", ""
        else:
            quant = f"const cmsis_nn_per_channel_quant_params quant = {{{MUTABLE}mult, " \
                    f"{MUTABLE}shift}};"
            function = "arm_fully_connected_per_channel_s8"
            quant_params = ", const int32_t* mult, const int32_t* shift"
            constants += [mult.astype(np.int32), shift.astype(np.int32)]
        sums_param, buf = "", "NULL"
        if self.arch == "mve":  # its kernel sums (arm_vector_sum_s8), computed here
            sums = bias.astype(np.int64) - spec.input_zero_point * weights.astype(
                np.int64).sum(axis=1)
            constants.append(sums.astype(np.int32))
            sums_param, buf = ", const int32_t* sums", "(void*)(uintptr_t)sums"
        call = _layer(helpers, "fc", FULLY_CONNECTED, B=spec.batch, K=spec.depth,
                      O=spec.units, in_off=-spec.input_zero_point,
                      out_off=spec.output_zero_point, lo=spec.act_min, hi=spec.act_max,
                      quant=quant, function=function, sums_param=sums_param, buf=buf,
                      quant_params=quant_params,
                      size=buffers.fully_connected_s8(spec.depth, spec.units, self.arch))
        func = _call_kernel(call[0], [((spec.batch, spec.depth), "int8"),
                                      *[(a.shape, str(a.dtype)) for a in constants]],
                            (spec.batch, spec.units), 0, spec.batch * spec.depth * spec.units)
        return self._kernel(call, func, tuple(constants))

    # ---- pooling
    def _pool(self, spec: PoolSpec, helpers: CHelpers, kind: str, function: str,
              size: int) -> Kernel:
        n, h, w_in, c = spec.input_shape
        (kh, kw), (sh, sw), (pt, pl) = spec.kernel, spec.stride, spec.pad_top_left
        oh, ow = spec.output_hw
        call = _layer(helpers, kind, POOL, N=n, H=h, W=w_in, C=c, KH=kh, KW=kw, SH=sh, SW=sw,
                      PH=pt, PW=pl, OH=oh, OW=ow, lo=spec.act_min, hi=spec.act_max,
                      function=function, **_scratch(size))
        func = _call_kernel(call[0], [(tuple(spec.input_shape), "int8")], (n, oh, ow, c), size)
        return self._kernel(call, func)

    def average_pool_kernel(self, spec: PoolSpec, helpers: CHelpers) -> Kernel:
        if not self._exact(helpers):
            return self.fallback.average_pool_kernel(spec, helpers)
        size = buffers.avgpool_s8(spec.input_shape[3], self.arch)
        return self._pool(spec, helpers, "avgpool", "arm_avgpool_s8", size)

    def max_pool_kernel(self, spec: PoolSpec, helpers: CHelpers) -> Kernel:
        return self._pool(spec, helpers, "maxpool", "arm_max_pool_s8", 0)

    # ---- softmax, elementwise
    def softmax_kernel(self, rows: int, depth: int, in_scale: float, beta: float,
                       helpers: CHelpers, requantise: tuple[int, int, int] | None) -> Kernel:
        if requantise is not None or not self._exact(helpers):
            return self.fallback.softmax_kernel(rows, depth, in_scale, beta, helpers,
                                                requantise)
        mult, shift, diff_min = fx.softmax_params(in_scale, beta)
        call = _layer(helpers, "softmax", SOFTMAX, rows=rows, depth=depth, mult=mult,
                      shift=shift, diff_min=diff_min)
        return self._kernel(call, _call_kernel(call[0], [((rows, depth), "int8")],
                                               (rows, depth), 0))

    def add_kernel(self, a_shape: Sequence[int], b_shape: Sequence[int],
                   out_shape: Sequence[int], params: AddParams, helpers: CHelpers) -> Kernel:
        same = tuple(a_shape) == tuple(b_shape) == tuple(out_shape)
        if not same or not self._exact(helpers):
            return self.fallback.add_kernel(a_shape, b_shape, out_shape, params, helpers)
        (z1, z2, zout), ((m1, s1), (m2, s2)) = params.zero_points, params.input_multipliers
        mo, so = params.output_multiplier
        size = int(np.prod(out_shape))
        call = _layer(helpers, "add", ADD, off1=-z1, m1=m1, s1=s1, off2=-z2, m2=m2, s2=s2,
                      zout=zout, mo=mo, so=so, lo=params.act_min, hi=params.act_max, size=size)
        func = _call_kernel(call[0], [(tuple(a_shape), "int8"), (tuple(b_shape), "int8")],
                            tuple(out_shape), 0)
        return self._kernel(call, func)

    def mul_kernel(self, a_shape: Sequence[int], b_shape: Sequence[int],
                   out_shape: Sequence[int], zero_points: tuple[int, int, int],
                   multiplier: tuple[int, int], lo: int, hi: int, helpers: CHelpers) -> Kernel:
        same = tuple(a_shape) == tuple(b_shape) == tuple(out_shape)
        if not same or not self._exact(helpers):
            return self.fallback.mul_kernel(a_shape, b_shape, out_shape, zero_points,
                                            multiplier, lo, hi, helpers)
        z1, z2, zout = zero_points
        call = _layer(helpers, "mul", MUL, off1=-z1, off2=-z2, zout=zout, mult=multiplier[0],
                      shift=multiplier[1], lo=lo, hi=hi, size=int(np.prod(out_shape)))
        func = _call_kernel(call[0], [(tuple(a_shape), "int8"), (tuple(b_shape), "int8")],
                            tuple(out_shape), 0)
        return self._kernel(call, func)


def external_dependency(c_text: str) -> dict[str, object] | None:
    """metadata.json's entry for CMSIS-NN when the module's C (`c_text`, the kernels' C)
    calls it: name, where to get it, the commit tested, the header and the functions called."""
    functions = sorted(set(_CALL.findall(c_text)))
    if not functions:
        return None
    return {"short_name": EXTERNAL_LIBRARY, "url": "https://github.com/ARM-software/CMSIS-NN",
            "url_type": "github", "version_spec": TESTED_VERSION,
            "include": ["arm_nnfunctions.h"], "functions": functions}


def _scratch(size: int) -> dict[str, object]:
    """The template fields of a call's scratch buffer (none when CMSIS-NN needs none)."""
    if size:
        return dict(scratch_param=", int8_t* scratch", buf="scratch", size=size)
    return dict(scratch_param="", buf="NULL", size=0)


__all__ = ["ARCHES", "CmsisNN", "EXTERNAL_LIBRARY", "arch_for_cpu", "external_dependency"]
