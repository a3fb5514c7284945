"""int8 UNIDIRECTIONAL_SEQUENCE_LSTM (the fully integer form TFLite's converter writes: int8
activations and weights, int16 cell state, intermediates): built here without TensorFlow,
compiled, run with `tvmc run --invokes` (C built with -Wall -Wextra -Werror; one state carried
across the invokes) and compared at every step with ONE TFLite Micro interpreter invoked as
many times: 0 LSB. LiteRT's integer LSTM rounds differently: within 1 LSB."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders import tflite_recurrent_models
from test_state import litert_sequence
from test_state_float import tflm_steps
from tvmc_multimodule import compile_model, load_model_library_format
from tvmc_multimodule.cli import driver
from tvmc_multimodule.errors import UnsupportedError

NO_PLUGINS = lambda: []  # noqa: E731
INVOKES = 32
STEPS = 8  # time steps per invoke

CASES = {
    "batch_major": {},
    "time_major_batch2": {"time_major": True, "batch": 2, "seed": 1},
    "clip_16_units": {"cell_clip": 0.9, "cell_scale": 2.0 ** -12, "hidden": 16, "inputs": 12,
                      "seed": 2},
}


def _lsb(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_lstm_equals_tflite_micro_at_every_step(tmp_path: Path, case: str) -> None:
    kwargs = CASES[case]
    model = tflite_recurrent_models.sequence_lstm_int8(steps=STEPS, **kwargs)
    (tmp_path / "q.tflite").write_bytes(model)
    archive = tmp_path / "q.tar"
    assert driver.main(["compile", str(tmp_path / "q.tflite"), "--module-name", "q",
                        "--strict-int8", "-o", str(archive)], entry_point_loader=NO_PLUGINS) == 0
    batch, inputs = kwargs.get("batch", 1), kwargs.get("inputs", 6)
    shape = (STEPS, batch, inputs) if kwargs.get("time_major") else (batch, STEPS, inputs)
    xs = np.random.default_rng(7).integers(-128, 128, (INVOKES,) + shape).astype(np.int8)
    np.savez(tmp_path / "seq.npz", x=xs)
    assert driver.main(["run", str(archive), "--inputs", str(tmp_path / "seq.npz"),
                        "--invokes", str(INVOKES), "-o", str(tmp_path / "out.npz")],
                       entry_point_loader=NO_PLUGINS) == 0
    ours = np.load(tmp_path / "out.npz")["y"]
    tflm = tflm_steps(model, xs, 1)
    for step in range(INVOKES):
        assert _lsb(ours[step], tflm[step][0]) == 0, f"TFLite Micro @ invoke {step}"
    litert = litert_sequence(model, xs)
    assert max(_lsb(ours[k], litert[k][0]) for k in range(INVOKES)) <= 1
    # the outputs span the int8 range, and the carried state matters
    assert int(ours.max()) - int(ours.min()) > 150
    fresh = tflm_steps(model, xs[1:2], 1)[0][0]
    assert _lsb(fresh, tflm[1][0]) > 0


def test_int8_lstm_state_and_kernel(tmp_path: Path) -> None:
    path = tmp_path / "q.tflite"
    path.write_bytes(tflite_recurrent_models.sequence_lstm_int8())
    module = compile_model(str(path), "q", strict_int8=True)
    archive = tmp_path / "q.tar"
    from tvmc_multimodule import export_model_library_format

    export_model_library_format(module, str(archive))
    loaded = load_model_library_format(str(archive)).modules["q"]
    assert [(s.name, s.shape, s.dtype, s.offset) for s in loaded.c_api.states] == [
        ("h_state", (1, 5), "int8", 0), ("c_state", (1, 5), "int16", 16)]
    runner = loaded.sources["q_lib1.c"]
    assert "memset(st + 0, 254, 5); /* h_state */" in runner  # its zero point, -2
    operators = loaded.sources["q_lib0.c"]
    assert "lstm_sigmoid_table[256]" in operators and "tvmgen_q_lstm_i8_" in operators


def test_per_channel_int8_lstm_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "q.tflite"
    path.write_bytes(tflite_recurrent_models.sequence_lstm_int8(per_channel=True))
    with pytest.raises(UnsupportedError) as caught:
        compile_model(str(path), "q")
    line = caught.value.one_line()
    assert "int8 UNIDIRECTIONAL_SEQUENCE_LSTM" in line and "per-tensor" in line
