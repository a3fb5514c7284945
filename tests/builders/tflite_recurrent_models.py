"""Float TFLite UNIDIRECTIONAL_SEQUENCE_LSTM models (the form TF/Keras export: separate
weights per gate, an input gate, the state as variable tensors)."""
from __future__ import annotations

import numpy as np

from .tflite_models import TFLiteGraph

TANH = 4


def sequence_lstm(steps: int = 5, batch: int = 1, inputs: int = 6, hidden: int = 4,
                  time_major: bool = False, peepholes: bool = False, seed: int = 0) -> bytes:
    """x -> UNIDIRECTIONAL_SEQUENCE_LSTM -> y ([B,T,H], or [T,B,H] when time major)."""
    rng = np.random.default_rng(seed)
    g = TFLiteGraph()
    x_shape = [steps, batch, inputs] if time_major else [batch, steps, inputs]
    y_shape = [steps, batch, hidden] if time_major else [batch, steps, hidden]
    x = g.add_tensor("x", x_shape)

    def const(name: str, shape: tuple[int, ...]) -> int:
        return g.add_const(name, (rng.standard_normal(shape) * 0.4).astype(np.float32))

    ins = [x]
    ins += [const(f"w_{k}", (hidden, inputs)) for k in "ifco"]          # 1-4
    ins += [const(f"r_{k}", (hidden, hidden)) for k in "ifco"]          # 5-8
    ins += [const(f"p_{k}", (hidden,)) for k in "ifo"] if peepholes else [-1, -1, -1]  # 9-11
    ins += [const(f"b_{k}", (hidden,)) for k in "ifco"]                 # 12-15
    ins += [-1, -1]                                                     # 16-17 projection
    ins += [g.add_tensor("h_state", [batch, hidden], variable=True),   # 18
            g.add_tensor("c_state", [batch, hidden], variable=True)]   # 19
    ins += [-1, -1, -1, -1]                                             # 20-23 layer norm
    y = g.add_tensor("y", y_shape)
    g.add_operator("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y],
                   ("UnidirectionalSequenceLSTMOptions",
                    {"FusedActivationFunction": TANH, "CellClip": 0.0, "ProjClip": 0.0,
                     "TimeMajor": time_major}))
    g.set_io([x], [y])
    return g.to_bytes()
