"""Float TFLite UNIDIRECTIONAL_SEQUENCE_LSTM models (the form TF/Keras export: separate
weights per gate, an input gate, the state as variable tensors)."""
from __future__ import annotations

import numpy as np

from .tflite_models import TFLiteGraph

TANH = 4


def sequence_lstm(steps: int = 5, batch: int = 1, inputs: int = 6, hidden: int = 4,
                  time_major: bool = False, peepholes: bool = False, cell_clip: float = 0.0,
                  seed: int = 0, cifg: bool = False) -> bytes:
    """x -> UNIDIRECTIONAL_SEQUENCE_LSTM -> y ([B,T,H], or [T,B,H] when time major).
    `cifg`: no input gate (its weights, recurrent weights, peephole and bias absent: the
    input gate is 1 - the forget gate)."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x_shape = [steps, batch, inputs] if time_major else [batch, steps, inputs]
    y_shape = [steps, batch, hidden] if time_major else [batch, steps, hidden]
    x = g.add_tensor("x", x_shape)

    def const(name: str, shape: tuple[int, ...]) -> int:
        return g.add_const(name, (rng.standard_normal(shape) * 0.4).astype(np.float32))

    def gate(k: str, name: str, shape: tuple[int, ...]) -> int:
        return -1 if cifg and k == "i" else const(name, shape)

    ins = [x]
    ins += [gate(k, f"w_{k}", (hidden, inputs)) for k in "ifco"]        # 1-4
    ins += [gate(k, f"r_{k}", (hidden, hidden)) for k in "ifco"]        # 5-8
    ins += [gate(k, f"p_{k}", (hidden,)) for k in "ifo"] if peepholes else [-1, -1, -1]  # 9-11
    ins += [gate(k, f"b_{k}", (hidden,)) for k in "ifco"]               # 12-15
    ins += [-1, -1]                                                     # 16-17 projection
    ins += [g.add_tensor("h_state", [batch, hidden], variable=True),   # 18
            g.add_tensor("c_state", [batch, hidden], variable=True)]   # 19
    ins += [-1, -1, -1, -1]                                             # 20-23 layer norm
    y = g.add_tensor("y", y_shape)
    g.add_operator("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y],
                   ("UnidirectionalSequenceLSTMOptions",
                    {"FusedActivationFunction": TANH, "CellClip": cell_clip, "ProjClip": 0.0,
                     "TimeMajor": time_major}))
    g.set_io([x], [y])
    return g.to_bytes()


def sequence_lstm_int8(steps: int = 8, batch: int = 1, inputs: int = 6, hidden: int = 5,
                       time_major: bool = False, cell_clip: float = 0.0,
                       cell_scale: float = 2.0 ** -11, per_channel: bool = False,
                       seed: int = 0) -> bytes:
    """The fully integer UNIDIRECTIONAL_SEQUENCE_LSTM TFLite's converter writes (as in
    TFLite Micro's mnist_lstm and micro_speech_lstm examples): int8 input, per-tensor
    symmetric int8 weights, int32 biases (scale input x weight), an int8 output state and an
    int16 cell state (power-of-two scale) as variable tensors, five intermediates (four float
    gate tensors, the int8 effective hidden state). x -> LSTM -> y, y the raw int8 hidden
    states ([B,T,H], or [T,B,H] when time major)."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x_scale, x_zp, h_scale, h_zp = 0.05, 3, 1.0 / 128, -2
    x_shape = [steps, batch, inputs] if time_major else [batch, steps, inputs]
    y_shape = [steps, batch, hidden] if time_major else [batch, steps, hidden]
    x = g.add_tensor("x", x_shape, "int8", scale=x_scale, zero_point=x_zp)

    def weights(name: str, shape: tuple[int, int]) -> tuple[int, float]:
        w = rng.standard_normal(shape) * 0.5
        if per_channel:  # not what the converter writes for an LSTM: refused
            scales = np.abs(w).max(axis=1) / 127
            q = np.clip(np.round(w / scales[:, None]), -127, 127).astype(np.int8)
            return g.add_const(name, q, scale=scales, zero_point=0), float(scales[0])
        scale = float(np.abs(w).max() / 127)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        return g.add_const(name, q, scale=scale, zero_point=0), scale

    w_in = {k: weights(f"w_{k}", (hidden, inputs)) for k in "ifco"}
    w_rec = {k: weights(f"r_{k}", (hidden, hidden)) for k in "ifco"}
    biases = {k: g.add_const(f"b_{k}", rng.integers(-3000, 3000, hidden).astype(np.int32),
                             scale=x_scale * w_in[k][1], zero_point=0) for k in "ifco"}
    ins = [x] + [w_in[k][0] for k in "ifco"] + [w_rec[k][0] for k in "ifco"]
    ins += [-1, -1, -1] + [biases[k] for k in "ifco"] + [-1, -1]
    ins += [g.add_tensor("h_state", [batch, hidden], "int8", scale=h_scale, zero_point=h_zp,
                         variable=True),
            g.add_tensor("c_state", [batch, hidden], "int16", scale=cell_scale, zero_point=0,
                         variable=True)]
    ins += [-1, -1, -1, -1]
    intermediates = [g.add_tensor(f"gate_{k}", [0], "float32") for k in "ifco"]
    intermediates.append(g.add_tensor("effective_hidden", [0], "int8", scale=h_scale,
                                      zero_point=h_zp))
    y = g.add_tensor("y", y_shape, "int8", scale=h_scale, zero_point=h_zp)
    g.add_operator("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y],
                   ("UnidirectionalSequenceLSTMOptions",
                    {"FusedActivationFunction": TANH, "CellClip": cell_clip, "ProjClip": 0.0,
                     "TimeMajor": time_major, "AsymmetricQuantizeInputs": False}),
                   intermediates=intermediates)
    g.set_io([x], [y])
    return g.to_bytes()


def svdf(batch: int = 1, inputs: int = 6, units: int = 4, rank: int = 2, memory: int = 5,
         relu: bool = False, bias: bool = True, seed: int = 0) -> bytes:
    """x [B, I] -> SVDF (feature weights [U*R, I], time weights [U*R, M], bias [U], its
    activation state a variable tensor [B, M*U*R]) -> y [B, U]."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    filters = units * rank
    x = g.add_tensor("x", [batch, inputs])

    def const(name: str, shape: tuple[int, ...]) -> int:
        return g.add_const(name, (rng.standard_normal(shape) * 0.4).astype(np.float32))

    ins = [x, const("w_feature", (filters, inputs)), const("w_time", (filters, memory)),
           const("bias", (units,)) if bias else -1,
           g.add_tensor("svdf_state", [batch, memory * filters], variable=True)]
    y = g.add_tensor("y", [batch, units])
    g.add_operator("SVDF", ins, [y], ("SVDFOptions", {"Rank": rank,
                                                      "FusedActivationFunction": int(relu)}))
    g.set_io([x], [y])
    return g.to_bytes()


def svdf_int8(inputs: int = 6, units: int = 4, rank: int = 1, memory: int = 5) -> bytes:
    """The integer SVDF TFLite's converter writes (int8 x, y and feature weights, int16 time
    weights and state, int32 bias): unsupported, an exit-4 error."""
    g = TFLiteGraph()
    filters = units * rank
    x = g.add_tensor("x", [1, inputs], "int8", scale=0.05, zero_point=0)
    ins = [x,
           g.add_const("w_feature", np.ones((filters, inputs), np.int8), scale=0.01),
           g.add_const("w_time", np.ones((filters, memory), np.int16), scale=0.001),
           g.add_const("bias", np.zeros(units, np.int32), scale=0.0005),
           g.add_tensor("svdf_state", [1, memory * filters], "int16", scale=0.002,
                        variable=True)]
    y = g.add_tensor("y", [1, units], "int8", scale=0.05, zero_point=0)
    g.add_operator("SVDF", ins, [y], ("SVDFOptions", {"Rank": rank}))
    g.set_io([x], [y])
    return g.to_bytes()
