"""Persistent state (TFLite resource variables) and running sequences (`tvmc run --invokes`).

A streaming int8 model built here (CALL_ONCE initialisation, a ring buffer of past frames
updated with STRIDED_SLICE, SPLIT_V, an accumulator, LOGISTIC and an int8 -> uint8 QUANTIZE)
is compiled and run over 64 steps; every step must equal TFLite Micro's interpreter (0 LSB,
one interpreter invoked 64 times: it keeps the variables) and LiteRT's reference kernels."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import cbuild
from builders import tflite_state_models
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli import driver

NO_PLUGINS = lambda: []  # noqa: E731
STEPS = 64


def tflm_sequence(model: bytes, xs: np.ndarray) -> list[list[np.ndarray]]:
    """Every step's outputs from ONE TFLite Micro interpreter (its resource variables persist
    between invokes; CALL_ONCE runs at the first)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 16)
    steps = []
    for x in xs:
        interpreter.set_input(np.ascontiguousarray(x), 0)
        interpreter.invoke()
        steps.append([np.array(interpreter.get_output(i)) for i in range(2)])
    return steps


def litert_sequence(model: bytes, xs: np.ndarray) -> list[list[np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    steps = []
    for x in xs:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        steps.append([interpreter.get_tensor(d["index"]).copy()
                      for d in interpreter.get_output_details()])
    return steps


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    tmp = tmp_path_factory.mktemp("state")
    model = tflite_state_models.streaming()
    (tmp / "stream.tflite").write_bytes(model)
    archive = tmp / "kws.tar"
    code = driver.main(["compile", str(tmp / "stream.tflite"), "--module-name", "kws",
                        "-o", str(archive)], entry_point_loader=NO_PLUGINS)
    assert code == 0
    return model, archive


def _sequence(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (STEPS, 1, 1, 4)).astype(np.int8)


def test_run_invokes_equals_tflite_micro_at_every_step(streaming, tmp_path, capsys) -> None:
    model, archive = streaming
    xs = _sequence(1)
    np.savez(tmp_path / "seq.npz", x=xs)
    out = tmp_path / "out.npz"
    code = driver.main(["run", str(archive), "--inputs", str(tmp_path / "seq.npz"),
                        "--invokes", str(STEPS), "-o", str(out)], entry_point_loader=NO_PLUGINS)
    assert code == 0
    assert "output y: [64,1,8] uint8" in capsys.readouterr().out
    ours = np.load(out)
    assert ours["y"].shape == (STEPS, 1, 8) and ours["z"].shape == (STEPS, 1, 3, 4)
    for step, (tflm, litert) in enumerate(zip(tflm_sequence(model, xs),
                                              litert_sequence(model, xs))):
        for name, want, second in zip(("y", "z"), tflm, litert):
            np.testing.assert_array_equal(ours[name][step], want, err_msg=f"{name} @ {step}")
            # LiteRT's int8 LOGISTIC is not TFLite Micro's: one step of its input apart, and
            # the sigmoid's slope here is 3.8 output steps per input step; z (the ring
            # buffer's frames) is the same integer arithmetic in both
            lsb = np.abs(ours[name][step].astype(int) - second.astype(int)).max()
            assert lsb <= (4 if name == "y" else 0), f"litert {name} @ {step}: {lsb} LSB"
    # the sequence really depends on the state: later steps differ from a fresh start
    assert len({ours["y"][k].tobytes() for k in range(STEPS)}) > STEPS // 2


def test_run_without_invokes_runs_once_from_reset(streaming, tmp_path) -> None:
    model, archive = streaming
    xs = _sequence(2)
    np.savez(tmp_path / "one.npz", x=xs[0])
    code = driver.main(["run", str(archive), "--inputs", str(tmp_path / "one.npz"),
                        "-o", str(tmp_path / "out.npz")], entry_point_loader=NO_PLUGINS)
    assert code == 0
    ours = np.load(tmp_path / "out.npz")
    assert ours["y"].shape == (1, 8)
    np.testing.assert_array_equal(ours["y"], tflm_sequence(model, xs[:1])[0][0])


def test_invokes_needs_the_steps_axis(streaming, tmp_path, capsys) -> None:
    _, archive = streaming
    np.savez(tmp_path / "short.npz", x=_sequence(3)[:5])
    code = driver.main(["run", str(archive), "--inputs", str(tmp_path / "short.npz"),
                        "--invokes", "6"], entry_point_loader=NO_PLUGINS)
    assert code != 0
    assert "first axis must be the 6 steps" in capsys.readouterr().err


def test_state_in_header_metadata_and_ram(streaming) -> None:
    _, archive = streaming
    module = load_model_library_format(str(archive)).modules["kws"]
    api = module.c_api
    assert [(s.name, s.shape, s.offset) for s in api.states] == [
        ("ring", (1, 3, 4), 0), ("acc", (1, 8), 16)]
    assert module.state_size_bytes == 24
    assert "#define TVMGEN_KWS_STATE_SIZE 24" in module.header
    for symbol in ("tvmgen_kws_reset(void)", "tvmgen_kws_reset_state(void* state)",
                   "tvmgen_kws_run_with_state("):
        assert symbol in module.header
    runner = module.sources["kws_lib1.c"]
    assert "memset(st + 0, 3, 12)" in runner          # a uniform initial value
    assert "tvmgen_kws_state_init_1.data" in runner   # a table
    # the ring buffer is updated in place; so is the accumulator: its int8 ADD reads each
    # element of the old value just before writing the new one (inplace.py), so no copy back
    assert module.raw["options"]["state_in_place"] == [True, True]
    assert "memcpy" not in _run_body(runner, "kws")


def _run_body(runner: str, module: str) -> str:
    """The C of `run_with_state` in the runner file (the reset function above it copies the
    initial values: that memcpy is not a per-run cost)."""
    start = runner.index(f"int32_t tvmgen_{module}_run_with_state(")
    body = runner[start:].split("\n}", 1)[0]
    assert "TVMGEN_OPERATOR_CALL" in body
    return body


def _two_instances_harness() -> str:
    return "\n".join([
        "#include <stdio.h>", "#include <stdlib.h>", '#include "tvmgen_kws.h"',
        "static _Alignas(TVMGEN_KWS_STATE_ALIGNMENT) unsigned char a[TVMGEN_KWS_STATE_SIZE];",
        "static _Alignas(TVMGEN_KWS_STATE_ALIGNMENT) unsigned char b[TVMGEN_KWS_STATE_SIZE];",
        "static _Alignas(TVMGEN_KWS_WORKSPACE_ALIGNMENT) "
        "unsigned char ws[TVMGEN_KWS_WORKSPACE_SIZE];",
        f"static signed char xa[{STEPS}][4], xb[{STEPS}][4], za[{STEPS}][12], zb[{STEPS}][12];",
        f"static unsigned char ya[{STEPS}][8], yb[{STEPS}][8];",
        "int main(void) {",
        "  FILE* f = fopen(\"in.bin\", \"rb\"); int k;",
        "  if (!f || fread(xa, 1, sizeof xa, f) != sizeof xa || fread(xb, 1, sizeof xb, f) "
        "!= sizeof xb) return 2;",
        "  fclose(f);",
        "  if (tvmgen_kws_reset_state(a) || tvmgen_kws_reset_state(b)) return 1;",
        f"  for (k = 0; k < {STEPS}; ++k) {{  /* interleaved: one workspace, two states */",
        "    struct tvmgen_kws_inputs in; struct tvmgen_kws_outputs out;",
        "    in.x = xa[k]; out.y = ya[k]; out.z = za[k];",
        "    if (tvmgen_kws_run_with_state(&in, &out, ws, a)) return 1;",
        "    in.x = xb[k]; out.y = yb[k]; out.z = zb[k];",
        "    if (tvmgen_kws_run_with_state(&in, &out, ws, b)) return 1;",
        "  }",
        "  f = fopen(\"out.bin\", \"wb\");",
        "  fwrite(ya, 1, sizeof ya, f); fwrite(za, 1, sizeof za, f);",
        "  fwrite(yb, 1, sizeof yb, f); fwrite(zb, 1, sizeof zb, f);",
        "  return fclose(f) != 0;", "}", ""])


@pytest.mark.skipif(not cbuild.have("gcc"), reason="gcc needed")
def test_two_instances_with_caller_state_are_independent(streaming, tmp_path) -> None:
    model, archive = streaming
    root = cbuild.extract(archive, tmp_path / "x")
    (tmp_path / "main.c").write_text(_two_instances_harness())
    # only the runner and the operators: the module's own static state is not linked
    sources = [str(p) for p in cbuild.module_sources(root, "kws")
               if p.name in ("kws_lib0.c", "kws_lib1.c")]
    build = subprocess.run(["gcc", *cbuild.STRICT, "-O2", "-I",
                            str(root / "codegen/host/include"), str(tmp_path / "main.c"),
                            *sources, "-o", str(tmp_path / "app")],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    xa, xb = _sequence(4), _sequence(5)
    np.concatenate([xa, xb]).tofile(tmp_path / "in.bin")
    run = subprocess.run([str(tmp_path / "app")], cwd=tmp_path, capture_output=True)
    assert run.returncode == 0
    raw = np.fromfile(tmp_path / "out.bin", np.uint8)
    half = STEPS * 20
    for xs, block in ((xa, raw[:half]), (xb, raw[half:])):
        y = block[: STEPS * 8].reshape(STEPS, 1, 8)
        z = block[STEPS * 8:].view(np.int8).reshape(STEPS, 1, 3, 4)
        for step, (want_y, want_z) in enumerate(tflm_sequence(model, xs)):
            np.testing.assert_array_equal(y[step], want_y, err_msg=f"y @ {step}")
            np.testing.assert_array_equal(z[step], want_z, err_msg=f"z @ {step}")


@pytest.mark.parametrize("entry,message", [
    ({"name": "ring", "dtype": "int8", "shape": [1, 3, 4], "offset": 3}, "16-byte boundary"),
    ({"name": "ring", "dtype": "object", "shape": [1, 3, 4], "offset": 0}, "unknown dtype"),
    ({"name": 7, "dtype": "int8", "shape": [1, 3, 4], "offset": 0}, "lacks its name"),
])
def test_archive_with_a_bad_state_entry_is_refused(streaming, tmp_path, capsys, entry,
                                                   message) -> None:
    import json
    import tarfile

    _, archive = streaming
    root = cbuild.extract(archive, tmp_path / "x")
    meta_path = root / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["modules"]["kws"]["memory"]["functions"]["main"][0]["state"][0] = entry
    meta_path.write_text(json.dumps(meta))
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    code = driver.main(["run", str(bad)], entry_point_loader=NO_PLUGINS)
    assert code == 5
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_large_state_added_in_place_by_the_dsp_kernel(tmp_path, capsys) -> None:
    """A 512-unit accumulator on Cortex-M4: the DSP library's C ADD (which TIR cannot look
    into; it declares its in-place pairs) writes the new state over the old one, no copy per
    run, and every step still equals TFLite Micro (the DSP C built on the host)."""
    model = tflite_state_models.streaming(units=512)
    (tmp_path / "s.tflite").write_bytes(model)
    archive = tmp_path / "s.tar"
    assert driver.main(["compile", str(tmp_path / "s.tflite"), "--module-name", "s",
                        "--target", "c -mcpu=cortex-m4", "-o", str(archive)],
                       entry_point_loader=NO_PLUGINS) == 0
    module = load_model_library_format(str(archive)).modules["s"]
    runner, operators = module.sources["s_lib1.c"], module.sources["s_lib0.c"]
    assert "_dsp_add_" in operators
    assert module.raw["options"]["state_in_place"] == [True, True]
    assert "memcpy" not in _run_body(runner, "s")
    steps = 8
    xs = _sequence(5)[:steps]
    np.savez(tmp_path / "seq.npz", x=xs)
    code = driver.main(["run", str(archive), "--inputs", str(tmp_path / "seq.npz"),
                        "--invokes", str(steps), "-o", str(tmp_path / "out.npz")],
                       entry_point_loader=NO_PLUGINS)
    assert code == 0, capsys.readouterr().err
    ours = np.load(tmp_path / "out.npz")
    for step, want in enumerate(tflm_sequence(model, xs)):
        np.testing.assert_array_equal(ours["y"][step], want[0], err_msg=f"y @ {step}")
    assert len({ours["y"][k].tobytes() for k in range(steps)}) == steps  # the state matters
