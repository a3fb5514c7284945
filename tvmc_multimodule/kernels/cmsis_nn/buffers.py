"""Scratch-buffer sizes of CMSIS-NN's int8 functions, computed at compile time.

CMSIS-NN answers "how much scratch?" through `*_get_buffer_size()` functions whose result
depends on the core it was built for (the `_dsp` / `_mve` variants, or neither). We know the
core from the target's -mcpu and every shape at compile time, so the sizes are computed here
(a transcription of CMSIS-NN 4ab83cc's `arm_*_get_buffer_sizes_s8.c`, checked against those
functions by tests/test_cmsis_nn.py) and the buffers are planned in the module's workspace.
Where CMSIS-NN's answer depends on the compiler (armclang's 1x1 fast convolution uses a
buffer, gcc's does not) the larger one is taken, so any compiler may build the library.
"""
from __future__ import annotations

from ..cortex_m_dsp import DSP_CORES

ARCHES = ("none", "dsp", "mve")  # no DSP extension, DSP extension (SMLAD), Helium (MVE)
CH_IN_BLOCK_MVE = 124


def arch_for_cpu(mcpu: str | None) -> str:
    """The CMSIS-NN code path a core takes: "mve" (Cortex-M55/M85 unless +nomve), "dsp"
    (M4/M7/M33/M35P, M55/M85 with +nomve, unless +nodsp), "none" (M0/M3, hosts)."""
    core, *features = (mcpu or "").lower().split("+")
    if "nodsp" in features:
        return "none"
    if core in ("cortex-m55", "cortex-m85"):
        return "dsp" if "nomve" in features else "mve"
    return "dsp" if core in DSP_CORES else "none"


def _is_1x1(pad: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int]) -> bool:
    return pad == (0, 0) and kernel == (1, 1) and dilation == (1, 1)


def _is_1_x_n(h: int, c: int, kh: int, stride_w: int, dilation_w: int) -> bool:
    return h == 1 and dilation_w == 1 and kh == 1 and (stride_w * c) % 4 == 0


def _convolve_s8(c: int, kh: int, kw: int, arch: str) -> int:
    if arch == "mve":
        return 4 * ((c * kw * kh + 15) // 16) * 16
    cols = kw * kh * c
    return 2 * (cols + (-cols) % 4) * 2


def _convolve_1_x_n_mve(w_in: int, c: int, kh: int, kw: int, pad_w: int, stride_w: int,
                        ow: int) -> int:
    total_pad = (ow - 1) * stride_w + kw - w_in
    asym = total_pad % 2
    right = max(1, (pad_w + asym + stride_w - 1) // stride_w) if pad_w + asym else 0
    left = max(1, (pad_w + stride_w - 1) // stride_w) if pad_w else 0
    if right + max(ow - (right + left), 0) + left != ow:
        return _convolve_s8(c, kh, kw, "mve")
    pad_left = pad_w * c
    pad_right = right * c if asym else pad_left
    num_left = kw * c
    return max(num_left + pad_left, num_left - c + pad_right)


def convolve_wrapper_s8(input_shape: tuple[int, int, int, int], kernel: tuple[int, int],
                        output_hw: tuple[int, int], stride: tuple[int, int],
                        pad: tuple[int, int], dilation: tuple[int, int], arch: str) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size[_dsp|_mve]; shapes (h, w) pairs, NHWC input."""
    _, h, w_in, c = input_shape
    kh, kw = kernel
    if _is_1x1(pad, kernel, dilation):
        fast = stride == (1, 1)
        return 2 * c * 2 if fast and arch == "dsp" else 0  # dsp: armclang's size (gcc: 0)
    if _is_1_x_n(h, c, kh, stride[1], dilation[1]):
        if arch == "mve":
            return _convolve_1_x_n_mve(w_in, c, kh, kw, pad[1], stride[1], output_hw[1])
        return _convolve_s8(c, kh, kw, arch)
    return _convolve_s8(c, kh, kw, arch)


def depthwise_conv_wrapper_s8(input_shape: tuple[int, int, int, int], kernel: tuple[int, int],
                              out_channels: int, output_hw: tuple[int, int],
                              stride: tuple[int, int], pad: tuple[int, int],
                              dilation: tuple[int, int], arch: str) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size[_dsp|_mve]; for MVE, the larger of
    armclang's and gcc's answers (they convert a one-channel input at different widths)."""
    n, _, _, c = input_shape
    kh, kw = kernel
    size = 0
    if c == out_channels and n == 1 and dilation == (1, 1):
        if arch == "mve":
            size = 4 * CH_IN_BLOCK_MVE * kw * kh
        elif arch == "dsp":
            if not (kernel == (3, 3) and pad[0] <= 1 and pad[1] <= 1):
                size = c * kw * kh * 2
    if arch == "mve" and c == 1 and out_channels > 1:
        as_conv = convolve_wrapper_s8(input_shape, kernel, output_hw, stride, pad, dilation,
                                      "mve") + out_channels * kh * kw
        size = max(size, as_conv)
    return size


def fully_connected_s8(depth: int, units: int, arch: str) -> int:
    """arm_fully_connected_s8_get_buffer_size[_dsp|_mve]: MVE reads per-unit kernel sums
    there (int32 each)."""
    return units * 4 if arch == "mve" else 0


def avgpool_s8(channels: int, arch: str) -> int:
    """arm_avgpool_s8_get_buffer_size[_dsp|_mve]."""
    return channels * 4 if arch == "dsp" else 0
