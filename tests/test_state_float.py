"""Persistent state of float TFLite graphs (through TVM's Relax frontend): resource variables
and UNIDIRECTIONAL_SEQUENCE_LSTM's variable tensors (output and cell state), carried across
invokes as LiteRT and TFLite Micro carry them.

Each model is compiled, run with `tvmc run --invokes` (the archive's C built with
-Wall -Wextra -Werror, reset once, then invoked on one state) and compared at every step with
ONE TFLite Micro interpreter and ONE LiteRT interpreter invoked as many times."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import cbuild
from builders import tflite_recurrent_models, tflite_state_models
from test_state import litert_sequence
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli import driver

NO_PLUGINS = lambda: []  # noqa: E731
STEPS = 32
RTOL = 1e-5


def tflm_steps(model: bytes, xs: np.ndarray, outputs: int) -> list[list[np.ndarray]]:
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 16)
    steps = []
    for x in xs:
        interpreter.set_input(np.ascontiguousarray(x), 0)
        interpreter.invoke()
        steps.append([np.array(interpreter.get_output(i)) for i in range(outputs)])
    return steps


def _compile(tmp: Path, model: bytes, name: str) -> Path:
    (tmp / f"{name}.tflite").write_bytes(model)
    archive = tmp / f"{name}.tar"
    code = driver.main(["compile", str(tmp / f"{name}.tflite"), "--module-name", name,
                        "-o", str(archive)], entry_point_loader=NO_PLUGINS)
    assert code == 0
    return archive


def _run_sequence(tmp: Path, archive: Path, xs: np.ndarray) -> dict[str, np.ndarray]:
    np.savez(tmp / "seq.npz", x=xs)
    code = driver.main(["run", str(archive), "--inputs", str(tmp / "seq.npz"),
                        "--invokes", str(len(xs)), "-o", str(tmp / "out.npz")],
                       entry_point_loader=NO_PLUGINS)
    assert code == 0
    return dict(np.load(tmp / "out.npz"))


def _assert_steps(ours: dict[str, np.ndarray], names: list[str], reference: list[list],
                  who: str) -> None:
    for step, outs in enumerate(reference):
        for name, want in zip(names, outs):
            np.testing.assert_allclose(ours[name][step], want, rtol=RTOL, atol=1e-7,
                                       err_msg=f"{who}: {name} @ step {step}")


def test_float_variables_match_litert_and_tflite_micro_at_every_step(tmp_path) -> None:
    model = tflite_state_models.streaming_float()
    archive = _compile(tmp_path, model, "fstream")
    xs = np.random.default_rng(3).standard_normal((STEPS, 1, 1, 4)).astype(np.float32)
    ours = _run_sequence(tmp_path, archive, xs)
    assert ours["y"].shape == (STEPS, 1, 8) and ours["z"].shape == (STEPS, 1, 3, 4)
    _assert_steps(ours, ["y", "z"], tflm_steps(model, xs, 2), "TFLite Micro")
    _assert_steps(ours, ["y", "z"], litert_sequence(model, xs), "LiteRT")
    module = load_model_library_format(str(archive)).modules["fstream"]
    assert [(s.name, s.shape, s.dtype) for s in module.c_api.states] == [
        ("ring", (1, 3, 4), "float32"), ("acc", (1, 8), "float32")]
    assert "#define TVMGEN_FSTREAM_STATE_SIZE 80" in module.header
    assert "tvmgen_fstream_run_with_state(" in module.header
    runner = module.sources["fstream_lib1.c"]
    assert "memset(st + 0, 0, 48); /* ring */" in runner  # zeros: a memset, the ramp a table


def _lstm(**kwargs) -> bytes:
    return tflite_recurrent_models.sequence_lstm(steps=5, inputs=6, hidden=4, **kwargs)


@pytest.mark.parametrize("cell_clip", [0.0, 0.6], ids=["no_clip", "cell_clip"])
def test_streaming_lstm_carries_its_state_like_tflite_micro_and_litert(tmp_path,
                                                                        cell_clip) -> None:
    model = _lstm(cell_clip=cell_clip)
    archive = _compile(tmp_path, model, "slstm")
    xs = np.random.default_rng(4).standard_normal((STEPS, 1, 5, 6)).astype(np.float32)
    ours = _run_sequence(tmp_path, archive, xs)
    tflm = tflm_steps(model, xs, 1)
    _assert_steps(ours, ["y"], tflm, "TFLite Micro")
    _assert_steps(ours, ["y"], litert_sequence(model, xs), "LiteRT")
    # the state matters: a fresh interpreter per chunk gives other outputs after the first
    fresh = [tflm_steps(model, xs[k:k + 1], 1)[0][0] for k in (1, 2)]
    assert all(np.abs(f - tflm[k][0]).max() > 1e-3 for k, f in zip((1, 2), fresh))


def test_streaming_lstm_with_peepholes_like_litert(tmp_path) -> None:
    """TFLite Micro has no peephole LSTM (its Prepare refuses them): LiteRT only."""
    model = _lstm(peepholes=True, seed=2, time_major=True)
    archive = _compile(tmp_path, model, "plstm")
    xs = np.random.default_rng(6).standard_normal((STEPS, 5, 1, 6)).astype(np.float32)
    ours = _run_sequence(tmp_path, archive, xs)
    _assert_steps(ours, ["y"], litert_sequence(model, xs), "LiteRT")


@pytest.mark.parametrize("peepholes", [False, True], ids=["cifg", "cifg_peepholes"])
def test_streaming_cifg_lstm_carries_its_state_like_litert(tmp_path, peepholes) -> None:
    """No input gate (CIFG: 1 - the forget gate) on our kernel: its state carried as LiteRT
    carries it (TVM's converter started every run from zero). TFLite Micro has no CIFG LSTM
    (its Prepare needs every gate's tensors): LiteRT only."""
    model = _lstm(cifg=True, peepholes=peepholes, seed=3)
    archive = _compile(tmp_path, model, "clstm")
    xs = np.random.default_rng(8).standard_normal((STEPS, 1, 5, 6)).astype(np.float32)
    ours = _run_sequence(tmp_path, archive, xs)
    litert = litert_sequence(model, xs)
    _assert_steps(ours, ["y"], litert, "LiteRT")
    fresh = litert_sequence(model, xs[1:2])[0][0]  # the state matters
    assert np.abs(fresh - litert[1][0]).max() > 1e-3


@pytest.mark.parametrize("options", [{}, {"batch": 2, "rank": 1, "relu": True},
                                     {"memory": 1, "seed": 4, "bias": False}],
                         ids=["rank2", "batch2_relu", "m1_no_bias"])
def test_svdf_carries_its_state_like_tflite_micro_and_litert(tmp_path, options) -> None:
    """SVDF's activation state (a variable tensor) shifted by one step per invoke as TFLite's
    kernel does it; TVM's converter failed on it (the state read as a constant). TFLite
    Micro's float SVDF crashes without a bias: LiteRT only there."""
    model = tflite_recurrent_models.svdf(**options)
    archive = _compile(tmp_path, model, "svdf")
    batch = options.get("batch", 1)
    xs = np.random.default_rng(9).standard_normal((STEPS, batch, 6)).astype(np.float32)
    ours = _run_sequence(tmp_path, archive, xs)
    litert = litert_sequence(model, xs)
    _assert_steps(ours, ["y"], litert, "LiteRT")
    if options.get("bias", True):
        _assert_steps(ours, ["y"], tflm_steps(model, xs, 1), "TFLite Micro")
    module = load_model_library_format(str(archive)).modules["svdf"]
    memory = options.get("memory", 5)
    assert [(s.name, s.shape) for s in module.c_api.states] == [
        ("svdf_state", (batch, memory * 4 * options.get("rank", 2)))]
    if memory > 1:  # the state matters
        fresh = litert_sequence(model, xs[1:2])[0][0]
        assert np.abs(fresh - litert[1][0]).max() > 1e-3


def test_lstm_state_is_module_state(tmp_path, caplog) -> None:
    archive = _compile(tmp_path, _lstm(), "slstm")
    assert "starts from its initial value" not in caplog.text
    module = load_model_library_format(str(archive)).modules["slstm"]
    assert [(s.name, s.shape, s.offset) for s in module.c_api.states] == [
        ("h_state", (1, 4), 0), ("c_state", (1, 4), 16)]
    assert module.state_size_bytes == 32


@pytest.mark.skipif(not cbuild.have("gcc"), reason="gcc needed")
def test_reset_restarts_the_lstm_sequence(tmp_path) -> None:
    """run, run, reset, run: the third output equals the first (TFLite Micro's reset())."""
    model = _lstm()
    root = cbuild.extract(_compile(tmp_path, model, "slstm"), tmp_path / "x")
    xs = np.random.default_rng(5).standard_normal((2, 1, 5, 6)).astype(np.float32)
    xs.tofile(tmp_path / "in.bin")
    (tmp_path / "main.c").write_text("\n".join([
        "#include <stdio.h>", '#include "tvmgen_slstm.h"',
        "static float x[2][30], y[3][20];",
        "int main(void) {",
        "  struct tvmgen_slstm_inputs in; struct tvmgen_slstm_outputs out;",
        "  FILE* f = fopen(\"in.bin\", \"rb\");",
        "  if (!f || fread(x, sizeof x, 1, f) != 1) return 2;",
        "  fclose(f);",
        "  in.x = x[0]; out.y = y[0]; if (tvmgen_slstm_run(&in, &out)) return 1;",
        "  in.x = x[1]; out.y = y[1]; if (tvmgen_slstm_run(&in, &out)) return 1;",
        "  if (tvmgen_slstm_reset()) return 1;",
        "  in.x = x[0]; out.y = y[2]; if (tvmgen_slstm_run(&in, &out)) return 1;",
        "  f = fopen(\"out.bin\", \"wb\"); fwrite(y, sizeof y, 1, f);",
        "  return fclose(f) != 0;", "}", ""]))
    sources = [str(p) for p in cbuild.module_sources(root, "slstm")]
    build = subprocess.run(["gcc", *cbuild.STRICT, "-O2", "-I",
                            str(root / "codegen/host/include"), str(tmp_path / "main.c"),
                            *sources, "-o", str(tmp_path / "app"), "-lm"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    assert subprocess.run([str(tmp_path / "app")], cwd=tmp_path).returncode == 0
    y = np.fromfile(tmp_path / "out.bin", np.float32).reshape(3, 1, 5, 4)
    tflm = tflm_steps(model, xs, 1)
    np.testing.assert_allclose(y[:2], [s[0] for s in tflm], rtol=RTOL, atol=1e-7)
    np.testing.assert_array_equal(y[2], y[0])
