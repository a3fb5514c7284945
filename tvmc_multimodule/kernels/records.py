"""Operator records: what a frontend knows about one int8 operator (shapes, quantisation
as integers, padding) and every kernel library reads. Weights travel beside them as numpy
arrays in TFLite's layouts; packing them is the library's business."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conv2DSpec:
    """One NHWC int8 convolution (or depthwise convolution) as TFLite Micro runs it."""

    input_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]  # TFLite's OHWI; depthwise (1, KH, KW, C * mult)
    output_hw: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad_top_left: tuple[int, int]
    input_zero_point: int
    output_zero_point: int
    act_min: int
    act_max: int
    depthwise: bool = False


@dataclass(frozen=True)
class PoolSpec:
    input_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad_top_left: tuple[int, int]
    output_hw: tuple[int, int]
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddParams:
    zero_points: tuple[int, int, int]                 # input 1, input 2, output
    input_multipliers: tuple[tuple[int, int], tuple[int, int]]
    output_multiplier: tuple[int, int]
    act_min: int
    act_max: int


@dataclass(frozen=True)
class FullyConnectedSpec:
    """y[b, o] = requant(sum_k x[b, k] * w[o, k] + bias[o]); weights TFLite's [units, depth]."""

    batch: int
    depth: int
    units: int
    input_zero_point: int
    output_zero_point: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class LstmSpec:
    """One int8 LSTM layer: sizes, zero points and TFLite Micro's fixed-point parameters."""

    batch: int
    steps: int
    inputs: int
    hidden: int
    time_major: bool
    input_zero_point: int
    hidden_zero_point: int
    fc: tuple[tuple[int, int], ...]   # (multiplier, shift): input FC i f c o, recurrent i f c o
    forget_cell: tuple[int, int]      # f x c -> c
    input_cell: tuple[int, int]       # i x g -> c
    output_hidden: tuple[int, int]    # o x tanh(c) -> h
    cell_scale_power: int             # cell state scale = 2^power
    cell_clip: int = 0                # quantised |c| bound; 0: none
    cell_tanh: bool = True            # the cell gate's activation (else sigmoid)
