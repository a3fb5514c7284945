"""ONNX LSTM / GRU and control flow (If, Loop): every small model built with onnx.helper,
compiled into ONE archive, built into ONE program with gcc -Wall -Wextra -Werror, run, and
compared with onnxruntime (the ONNX reference evaluator where onnxruntime has no kernel:
batch-major LSTM, layout=1) within 1e-5 relative; TFLite UNIDIRECTIONAL_SEQUENCE_LSTM against
LiteRT."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest

import cbuild
import references
from builders import onnx_models
from builders import onnx_recurrent_models as models
from builders import tflite_recurrent_models as tflite_models
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule.errors import UnsupportedError, UsageError

RTOL = 1e-5


def _cases() -> dict[str, Callable[[], onnx.ModelProto]]:
    cases: dict[str, Callable[[], onnx.ModelProto]] = {}
    for op in ("LSTM", "GRU", "RNN"):
        for direction in ("forward", "reverse", "bidirectional"):
            for initial in (False, True):
                key = f"{op}_{direction}_{'h0' if initial else 'zero'}".lower()
                cases[key] = (lambda op=op, d=direction, i=initial:
                              models.recurrent(op, d, i, seed=len(d) + i))
    cases["gru_linear_before_reset"] = lambda: models.recurrent(
        "GRU", "bidirectional", True, linear_before_reset=1)
    cases["lstm_peepholes_batch_major"] = lambda: models.recurrent(
        "LSTM", "bidirectional", True, layout=1, peepholes=True)
    cases.update(models.CONTROL_MODELS)
    for rate in (16000, 8000):
        cases[f"vad_sr{rate // 1000}k"] = models.vad  # sr fixed at compile time
        cases[f"vad_runtime_sr{rate // 1000}k"] = models.vad  # sr a run-time input
    return cases


# run-time inputs given these values (both If branches computed, the output selected)
RUN_TIME = {"vad_runtime_sr16k": {"sr": np.array(16000, np.int64)},
            "vad_runtime_sr8k": {"sr": np.array(8000, np.int64)}}

# case -> inputs fixed at compile time (given to onnxruntime as inputs)
FIXED = {"vad_sr16k": {"sr": np.array(16000, np.int64)},
         "vad_sr8k": {"sr": np.array(8000, np.int64)}}


CASES = _cases()
# float TFLite UNIDIRECTIONAL_SEQUENCE_LSTM, compared with LiteRT (one invoke from zero state)
TFLITE_CASES = {
    "tfl_lstm": lambda: tflite_models.sequence_lstm(),
    "tfl_lstm_time_major": lambda: tflite_models.sequence_lstm(time_major=True, batch=2,
                                                                seed=1),
    "tfl_lstm_peepholes": lambda: tflite_models.sequence_lstm(peepholes=True, steps=7, seed=2),
}
NO_ORT = {"lstm_peepholes_batch_major"}  # onnxruntime refuses layout=1


def _reference(name: str, model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    if name in NO_ORT:
        from onnx.reference import ReferenceEvaluator

        return [np.asarray(a) for a in ReferenceEvaluator(model).run(None, feed)]
    return references.run_onnxruntime(model, feed)


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root: Path = tmp_path_factory.mktemp("recurrent")
    rng = np.random.default_rng(7)
    compiled, inputs, expected = [], {}, {}
    for name, build in CASES.items():
        model = build()
        path = root / f"{name}.onnx"
        onnx_models.save(model, path)
        fixed = FIXED.get(name, {})
        module = compile_model(str(path), module_name=name, input_values=fixed)
        given = RUN_TIME.get(name, {})
        xs = [given[t.name] if t.name in given else references.random_array(t.shape, t.dtype, rng)
              for t in module.inputs]
        feed = {t.name: x for t, x in zip(module.inputs, xs)}
        expected[name] = _reference(name, model, {**feed, **fixed})
        compiled.append(module)
        inputs[name] = xs
    for name, build in TFLITE_CASES.items():
        model = build()
        path = root / f"{name}.tflite"
        path.write_bytes(model)
        module = compile_model(str(path), module_name=name)
        xs = [references.random_array(t.shape, t.dtype, rng) for t in module.inputs]
        expected[name] = references.run_litert(model, xs)
        compiled.append(module)
        inputs[name] = xs
    archive = export_model_library_format(compiled, str(root / "recurrent.tar"))
    extracted = cbuild.extract(archive, root / "mlf")
    outputs = cbuild.build_and_run(extracted, {m.name: (m.inputs, m.outputs) for m in compiled},
                                   inputs)
    return {"outputs": outputs, "expected": expected, "root": extracted}


@pytest.mark.parametrize("name", sorted(CASES) + sorted(TFLITE_CASES))
def test_matches_reference_runtime(recurrent_run: dict, name: str) -> None:
    actual, expected = recurrent_run["outputs"][name], recurrent_run["expected"][name]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        cbuild.assert_close(a, np.asarray(e), f"{name} output {i}", rtol=RTOL)


def test_time_loop_is_not_unrolled(recurrent_run: dict) -> None:
    """One kernel per recurrent node with the loop over time inside: the C does not grow
    with the sequence length."""
    source = (recurrent_run["root"] / "codegen" / "host" / "src"
              / "lstm_bidirectional_h0_lib0.c").read_text()
    assert source.count("int32_t tvmgen_lstm_bidirectional_h0_lstm(") == 2  # prototype + body
    assert "for (int32_t s = 0; s < 6; ++s)" in source


def test_fixed_input_leaves_the_signature(recurrent_run: dict) -> None:
    header = (recurrent_run["root"] / "codegen" / "host" / "include" / "tvmgen_vad_sr16k.h").read_text()
    assert " sr;" not in header and " state;" in header


def test_if_whose_branches_differ_in_shape_is_one_clear_error(tmp_path: Path) -> None:
    """A run-time If computes both branches; when they cannot agree on a shape it is exit 4
    naming the node and the value it branches on."""
    path = tmp_path / "if.onnx"
    onnx_models.save(onnx_models.if_node(), path)
    with pytest.raises(UnsupportedError) as caught:
        compile_model(str(path), module_name="branchy")
    line = caught.value.one_line()
    for word in ("control flow", "If node", "'cond'", "run time", "different shapes",
                 "--input-values", str(path), "branchy"):
        assert word in line, f"{word!r} missing from: {line}"


def test_loop_without_static_trip_count_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "loop.onnx"
    onnx_models.save(models.loop_static(trip_input=True), path)
    with pytest.raises(UnsupportedError) as caught:
        compile_model(str(path), module_name="loopy")
    line = caught.value.one_line()
    for word in ("control flow", "Loop node 'static_loop'", "trip count", "--input-values"):
        assert word in line, f"{word!r} missing from: {line}"


def test_unknown_input_value_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "vad.onnx"
    onnx_models.save(models.vad(), path)
    with pytest.raises(UsageError, match="samplerate"):
        compile_model(str(path), module_name="vad", input_values={"samplerate": 16000})


def test_cli_input_values_select_the_branch(capsys, tmp_path: Path) -> None:
    """`--input-values vad:sr=16000` folds the If (sr leaves the signature); a bad value is
    a usage error (exit 2)."""
    from tvmc_multimodule.cli import driver

    path = tmp_path / "vad.onnx"
    onnx_models.save(models.vad(), path)
    out = tmp_path / "out.tar"
    code = driver.main(["compile-multi", f"{path}:vad", "--input-values", "vad:sr=16000",
                        "-o", str(out)])
    assert code == 0 and out.exists()
    code = driver.main(["compile", str(path), "--input-values", "sr=16k", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--input-values 'sr'" in err


def test_odd_sizes_use_the_remainder_rows(tmp_path: Path) -> None:
    """Input and hidden sizes that are not multiples of the kernels' four-row blocks: the
    remainder loops (compiled and compared here; the other cases use 5 inputs, 4 hidden)."""
    compiled, inputs, expected = [], {}, {}
    rng = np.random.default_rng(11)
    for op in ("LSTM", "GRU"):
        model = models.recurrent(op, "bidirectional", True, steps=3, inputs=7, hidden=5,
                                 seed=9)
        path = tmp_path / f"{op}.onnx"
        onnx_models.save(model, path)
        module = compile_model(str(path), module_name=f"odd_{op.lower()}")
        xs = [references.random_array(t.shape, t.dtype, rng) for t in module.inputs]
        expected[module.name] = references.run_onnxruntime(
            model, {t.name: x for t, x in zip(module.inputs, xs)})
        compiled.append(module)
        inputs[module.name] = xs
    archive = export_model_library_format(compiled, str(tmp_path / "odd.tar"))
    root = cbuild.extract(archive, tmp_path / "mlf")
    outputs = cbuild.build_and_run(root, {m.name: (m.inputs, m.outputs) for m in compiled},
                                   inputs)
    assert outputs.keys() == expected.keys()
    for name, actual in outputs.items():
        assert len(actual) == len(expected[name])
        for i, (a, e) in enumerate(zip(actual, expected[name])):
            cbuild.assert_close(a, np.asarray(e), f"{name} output {i}", rtol=RTOL)
