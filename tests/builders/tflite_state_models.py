"""Streaming int8 TFLite test models with persistent state (resource variables), the way the
TFLite converter writes streaming wake-word models (microWakeWord): CALL_ONCE runs an
initialisation subgraph that assigns constants, the main graph reads each variable, computes,
and assigns the new value (a ring buffer of past frames)."""
from __future__ import annotations

import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType

from .tflite_models import TFLiteGraph, quantize_per_channel

NONE = ActivationFunctionType.NONE
FRAME = 4          # features per step
HISTORY = 3        # past frames kept in the ring buffer
UNITS = 8


def _variable(g: TFLiteGraph, init: int, name: str, value: np.ndarray) -> tuple[int, tuple]:
    """Handle of variable `name` in the main graph; `init` assigns it `value`."""
    options = ("VarHandleOptions", {"SharedName": name})
    h = g.add_tensor(f"{name}_handle_init", [], "resource", subgraph=init)
    v = g.add_tensor(f"{name}_initial", list(value.shape), value.dtype, value, subgraph=init,
                     scale=1.0, zero_point=0)
    g.add_operator("VAR_HANDLE", [], [h], options, subgraph=init)
    g.add_operator("ASSIGN_VARIABLE", [h, v], [], subgraph=init)
    handle = g.add_tensor(f"{name}_handle", [], "resource")
    g.add_operator("VAR_HANDLE", [], [handle], options)
    return handle, options


def streaming(seed: int = 21, units: int = UNITS) -> bytes:
    """x[1,1,4] int8 per step (s .05, zp 3); state `ring`[1,3,4] (the last three frames,
    initialised to the zero point: a memset) and `acc`[1,8] (initialised to a ramp: a table;
    `units` instead of 8: at 512 and more, Cortex-M's DSP library adds with its C kernel).

    window = CONCATENATION(ring, x) [1,4,4]; ring <- STRIDED_SLICE(window)[:, 1:4];
    SPLIT_V(window, [1,3], axis 1) -> oldest [1,1,4], recent [1,3,4];
    z = MUL(oldest, recent) (broadcast) [1,3,4] output;
    h = FULLY_CONNECTED(RESHAPE(window) [1,16]) [1,8]; acc <- ADD(h, acc);
    y = QUANTIZE(LOGISTIC(acc)) int8 -> uint8 [1,8] output."""
    rng = np.random.default_rng(seed)
    q = {"scale": 0.05, "zero_point": 3}
    g = TFLiteGraph()
    init = g.add_subgraph("init")
    g.add_operator("CALL_ONCE", [], [], ("CallOnceOptions", {"InitSubgraphIndex": init}))
    ring_h, _ = _variable(g, init, "ring", np.full((1, HISTORY, FRAME), 3, np.int8))
    ramp = (np.arange(units) * 11 - 40 + 128) % 256 - 128
    acc_h, _ = _variable(g, init, "acc", ramp.astype(np.int8).reshape(1, units))
    g.set_io([], [], subgraph=init)

    x = g.add_tensor("x", [1, 1, FRAME], "int8", **q)
    ring = g.add_tensor("ring", [1, HISTORY, FRAME], "int8", **q)
    g.add_operator("READ_VARIABLE", [ring_h], [ring])
    window = g.add_tensor("window", [1, HISTORY + 1, FRAME], "int8", **q)
    g.add_operator("CONCATENATION", [ring, x], [window],
                   ("ConcatenationOptions", {"Axis": 1, "FusedActivationFunction": NONE}))
    begin = g.add_const("begin", np.array([0, 1, 0], np.int32))
    end = g.add_const("end", np.array([1, HISTORY + 1, FRAME], np.int32))
    strides = g.add_const("strides", np.array([1, 1, 1], np.int32))
    new_ring = g.add_tensor("new_ring", [1, HISTORY, FRAME], "int8", **q)
    g.add_operator("STRIDED_SLICE", [window, begin, end, strides], [new_ring],
                   ("StridedSliceOptions", {}))
    g.add_operator("ASSIGN_VARIABLE", [ring_h, new_ring], [])

    sizes = g.add_const("sizes", np.array([1, HISTORY], np.int32))
    axis = g.add_const("axis", np.array([1], np.int32))
    oldest = g.add_tensor("oldest", [1, 1, FRAME], "int8", **q)
    recent = g.add_tensor("recent", [1, HISTORY, FRAME], "int8", **q)
    g.add_operator("SPLIT_V", [window, sizes, axis], [oldest, recent],
                   ("SplitVOptions", {"NumSplits": 2}))
    z = g.add_tensor("z", [1, HISTORY, FRAME], "int8", scale=0.15, zero_point=-5)
    g.add_operator("MUL", [oldest, recent], [z], ("MulOptions", {"FusedActivationFunction": NONE}))

    shape = g.add_const("shape", np.array([1, (HISTORY + 1) * FRAME], np.int32))
    flat = g.add_tensor("flat", [1, (HISTORY + 1) * FRAME], "int8", **q)
    g.add_operator("RESHAPE", [window, shape], [flat],
                   ("ReshapeOptions", {"NewShape": [1, (HISTORY + 1) * FRAME]}))
    w = rng.standard_normal((units, (HISTORY + 1) * FRAME)).astype(np.float32) * 0.3
    wq, ws = quantize_per_channel(w, axis=0)
    tw = g.add_const("fc/weights", wq, scale=ws, zero_point=0, axis=0)
    tb = g.add_const("fc/bias", rng.integers(-500, 500, units).astype(np.int32),
                     scale=0.05 * ws, zero_point=0)
    h = g.add_tensor("h", [1, units], "int8", scale=0.04, zero_point=-7)
    g.add_operator("FULLY_CONNECTED", [flat, tw, tb], [h],
                   ("FullyConnectedOptions", {"FusedActivationFunction": NONE}), version=4)
    acc = g.add_tensor("acc", [1, units], "int8", scale=0.06, zero_point=2)
    g.add_operator("READ_VARIABLE", [acc_h], [acc])
    new_acc = g.add_tensor("new_acc", [1, units], "int8", scale=0.06, zero_point=2)
    g.add_operator("ADD", [h, acc], [new_acc], ("AddOptions", {"FusedActivationFunction": NONE}))
    g.add_operator("ASSIGN_VARIABLE", [acc_h, new_acc], [])
    p = g.add_tensor("p", [1, units], "int8", scale=1.0 / 256, zero_point=-128)
    g.add_operator("LOGISTIC", [new_acc], [p])
    y = g.add_tensor("y", [1, units], "uint8", scale=1.0 / 256, zero_point=0)
    g.add_operator("QUANTIZE", [p], [y])
    g.set_io([x], [y, z])
    return g.to_bytes()


def streaming_float(seed: int = 22) -> bytes:
    """The float form of `streaming`: x[1,1,4] f32 per step; state `ring`[1,3,4] (zeros, a
    memset) and `acc`[1,8] (a ramp, a table).

    window = CONCATENATION(ring, x) [1,4,4]; ring <- STRIDED_SLICE(window)[:, 1:4];
    SPLIT_V(window, [1,3], axis 1) -> oldest, recent; z = MUL(oldest, recent) [1,3,4] output;
    h = TANH(FULLY_CONNECTED(RESHAPE(window))) [1,8]; acc <- 0.9 * acc + h;
    y = LOGISTIC(acc) [1,8] output."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    init = g.add_subgraph("init")
    g.add_operator("CALL_ONCE", [], [], ("CallOnceOptions", {"InitSubgraphIndex": init}))
    ring_h = _float_variable(g, init, "ring", np.zeros((1, HISTORY, FRAME), np.float32))
    acc_h = _float_variable(g, init, "acc", np.linspace(-1, 1, UNITS, dtype=np.float32)
                            .reshape(1, UNITS))
    g.set_io([], [], subgraph=init)

    x = g.add_tensor("x", [1, 1, FRAME])
    ring = g.add_tensor("ring", [1, HISTORY, FRAME])
    g.add_operator("READ_VARIABLE", [ring_h], [ring])
    window = g.add_tensor("window", [1, HISTORY + 1, FRAME])
    g.add_operator("CONCATENATION", [ring, x], [window],
                   ("ConcatenationOptions", {"Axis": 1, "FusedActivationFunction": NONE}))
    begin = g.add_const("begin", np.array([0, 1, 0], np.int32))
    end = g.add_const("end", np.array([1, HISTORY + 1, FRAME], np.int32))
    strides = g.add_const("strides", np.array([1, 1, 1], np.int32))
    new_ring = g.add_tensor("new_ring", [1, HISTORY, FRAME])
    g.add_operator("STRIDED_SLICE", [window, begin, end, strides], [new_ring],
                   ("StridedSliceOptions", {}))
    g.add_operator("ASSIGN_VARIABLE", [ring_h, new_ring], [])

    sizes = g.add_const("sizes", np.array([1, HISTORY], np.int32))
    axis = g.add_const("axis", np.array(1, np.int32))
    oldest = g.add_tensor("oldest", [1, 1, FRAME])
    recent = g.add_tensor("recent", [1, HISTORY, FRAME])
    g.add_operator("SPLIT_V", [window, sizes, axis], [oldest, recent],
                   ("SplitVOptions", {"NumSplits": 2}))
    z = g.add_tensor("z", [1, HISTORY, FRAME])
    g.add_operator("MUL", [oldest, recent], [z], ("MulOptions", {"FusedActivationFunction": NONE}))

    shape = g.add_const("shape", np.array([1, (HISTORY + 1) * FRAME], np.int32))
    flat = g.add_tensor("flat", [1, (HISTORY + 1) * FRAME])
    g.add_operator("RESHAPE", [window, shape], [flat],
                   ("ReshapeOptions", {"NewShape": [1, (HISTORY + 1) * FRAME]}))
    w = g.add_const("fc/weights", (rng.standard_normal((UNITS, (HISTORY + 1) * FRAME))
                                   * 0.3).astype(np.float32))
    b = g.add_const("fc/bias", (rng.standard_normal(UNITS) * 0.1).astype(np.float32))
    pre = g.add_tensor("pre", [1, UNITS])
    g.add_operator("FULLY_CONNECTED", [flat, w, b], [pre],
                   ("FullyConnectedOptions", {"FusedActivationFunction": NONE}))
    h = g.add_tensor("h", [1, UNITS])
    g.add_operator("TANH", [pre], [h])
    acc = g.add_tensor("acc", [1, UNITS])
    g.add_operator("READ_VARIABLE", [acc_h], [acc])
    decay = g.add_const("decay", np.array([0.9], np.float32))
    kept = g.add_tensor("kept", [1, UNITS])
    g.add_operator("MUL", [acc, decay], [kept], ("MulOptions", {"FusedActivationFunction": NONE}))
    new_acc = g.add_tensor("new_acc", [1, UNITS])
    g.add_operator("ADD", [h, kept], [new_acc], ("AddOptions", {"FusedActivationFunction": NONE}))
    g.add_operator("ASSIGN_VARIABLE", [acc_h, new_acc], [])
    y = g.add_tensor("y", [1, UNITS])
    g.add_operator("LOGISTIC", [new_acc], [y])
    g.set_io([x], [y, z])
    return g.to_bytes()


def _float_variable(g: TFLiteGraph, init: int, name: str, value: np.ndarray) -> int:
    options = ("VarHandleOptions", {"SharedName": name})
    h = g.add_tensor(f"{name}_handle_init", [], "resource", subgraph=init)
    v = g.add_tensor(f"{name}_initial", list(value.shape), "float32", value, subgraph=init)
    g.add_operator("VAR_HANDLE", [], [h], options, subgraph=init)
    g.add_operator("ASSIGN_VARIABLE", [h, v], [], subgraph=init)
    handle = g.add_tensor(f"{name}_handle", [], "resource")
    g.add_operator("VAR_HANDLE", [], [handle], options)
    return handle
