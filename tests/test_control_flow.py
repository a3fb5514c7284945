"""Control flow that branches and loops at run time: an ONNX If on a run-time condition (the
voice-activity-detector-like graph: If on the sample rate, an LSTM with state in each branch)
and a TFLite IF become a C `if` in the runner, a TFLite WHILE a C `while` loop; an IF on a
constant folds. The generated C is built with gcc -Wall -Wextra -Werror with a
TVMGEN_OPERATOR_CALL hook that logs every operator call, run for each condition value and
compared with onnxruntime / LiteRT (1e-5 relative); the log shows which operators ran."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_control_models as oc
from builders import onnx_models
from builders import onnx_recurrent_models as models
from builders import tflite_control_models as tc
from tvmc_multimodule import compile_model, export_model_library_format

RTOL = 1e-5

# every operator call logged (its index in the runner, its function) before it runs
CALL_LOG_HEADER = """#include <stdio.h>
#define TVMGEN_OPERATOR_CALL(index, function, arguments) \\
  (fprintf(stderr, "call %d %s\\n", (int)(index), #function), function arguments)
"""


def build_logged(tmp_path: Path, modules: Sequence) -> Path:
    """The modules in one archive, built into one program with the call log."""
    archive = export_model_library_format(list(modules), str(tmp_path / "control.tar"))
    root = cbuild.extract(archive, tmp_path / "mlf")
    header = tmp_path / "call_log.h"
    header.write_text(CALL_LOG_HEADER)
    work = root / "harness"
    work.mkdir(exist_ok=True)
    spec = {m.name: (m.inputs, m.outputs) for m in modules}
    (work / "main.c").write_text(cbuild.harness_source(spec))
    cbuild.build_program(root, work / "main.c", list(spec), work / "app",
                         ["-O2", "-include", str(header)])
    return root


def run_all(root: Path, modules: Sequence, inputs: dict[str, Sequence[np.ndarray]]
            ) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """Each module's outputs and the operator calls it made, in order (the program runs
    every module; `inputs` by module name)."""
    work = root / "harness"
    for name, arrays in inputs.items():
        for i, array in enumerate(arrays):
            np.array(array, order="C").tofile(work / f"{name}_in{i}.bin")
    run = subprocess.run([str(work / "app")], cwd=work, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr[:2000]
    log = [line.split() for line in run.stderr.splitlines() if line.startswith("call ")]
    result = {}
    for m in modules:
        calls = [int(i) for _, i, function in log if function.startswith(f"tvmgen_{m.name}_")]
        outputs = [np.fromfile(work / f"{m.name}_out{i}.bin", dtype=t.dtype).reshape(t.shape)
                   for i, t in enumerate(m.outputs)]
        result[m.name] = (outputs, calls)
    return result


@pytest.fixture(scope="module")
def vad_run_time(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("vad_if")
    model = models.vad()
    path = tmp / "vad.onnx"
    onnx_models.save(model, path)
    module = compile_model(str(path), module_name="vad")
    fixed = {rate: compile_model(str(path), module_name=f"vad{rate}", input_values={"sr": rate})
             for rate in (16000, 8000)}
    root = build_logged(tmp, [module])
    rng = np.random.default_rng(5)
    x = references.random_array([1, 64], "float32", rng)
    state = references.random_array([2, 1, 8], "float32", rng)
    runs = {}
    for rate in (16000, 8000):
        feed = {"x": x, "sr": np.array(rate, np.int64), "state": state}
        actual, calls = run_all(root, [module],
                                {"vad": [feed[t.name] for t in module.inputs]})["vad"]
        runs[rate] = (actual, calls, references.run_onnxruntime(model, feed))
    source = (root / "codegen" / "host" / "src" / "vad_lib1.c").read_text()
    return {"module": module, "fixed": fixed, "runs": runs, "source": source}


@pytest.mark.parametrize("rate", [16000, 8000])
def test_run_time_if_matches_onnxruntime(vad_run_time: dict, rate: int) -> None:
    actual, _, expected = vad_run_time["runs"][rate]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        cbuild.assert_close(a, np.asarray(e), f"vad sr={rate} output {i}", rtol=RTOL)


def test_run_time_if_runs_one_branch(vad_run_time: dict) -> None:
    """The runner is an `if` on the condition; each run calls the condition's operator and
    then only its own branch's operators (each with an LSTM): none in common but the
    condition, and as many calls as the module compiled with sr fixed (branch folded)."""
    source = vad_run_time["source"]
    assert source.count("if (*(const int8_t*)") == 1 and "} else {" in source
    calls16, calls8 = vad_run_time["runs"][16000][1], vad_run_time["runs"][8000][1]
    assert calls16[0] == calls8[0] == 0  # the condition: sr == 16000
    assert not set(calls16[1:]) & set(calls8[1:])
    assert max(calls16) < min(calls8[1:])  # the then branch comes first in the runner
    lstm_calls = [line for line in source.splitlines() if "_lstm" in line and "CALL(" in line]
    assert len(lstm_calls) == 2
    for rate, calls in ((16000, calls16), (8000, calls8)):
        folded = vad_run_time["fixed"][rate]
        assert len(calls) == 1 + len(folded.layers), rate


def test_branches_share_the_workspace(vad_run_time: dict) -> None:
    """The branches never live together: the workspace is the larger branch's (plus the
    condition's byte, which dies at the `if`), not their sum."""
    module, fixed = vad_run_time["module"], vad_run_time["fixed"]
    larger = max(f.workspace_bytes for f in fixed.values())
    both = sum(f.workspace_bytes for f in fixed.values())
    assert module.workspace_bytes <= larger + 16 < both
    assert module.liveness_bound_bytes <= module.workspace_bytes


def test_nested_run_time_ifs(tmp_path: Path) -> None:
    """An If inside a branch of an If, and branches that return the input itself (a copy
    into the output): every sign of (a, b) matches onnxruntime and calls only its path's
    operators (the matmul only for a > 0 and b > 0)."""
    model = oc.nested_if()
    path = tmp_path / "nested.onnx"
    onnx_models.save(model, path)
    module = compile_model(str(path), module_name="nested")
    source = module.sources["nested_lib1.c"]
    assert source.count("} else {") == 2 and source.count("memcpy(outputs->y, inputs->x") == 2
    root = build_logged(tmp_path, [module])
    x = references.random_array([2, 4], "float32", np.random.default_rng(8))
    for a, b in ((1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)):
        feed = {"x": x, "a": np.array(a, np.float32), "b": np.array(b, np.float32)}
        (y,), calls = run_all(root, [module], {"nested": [feed[t.name] for t in module.inputs]})[
            "nested"]
        cbuild.assert_close(y, references.run_onnxruntime(model, feed)[0], f"a={a} b={b}",
                            rtol=RTOL)
        assert len(calls) == (1 if a < 0 else 3 if b > 0 else 2), (a, b, calls)


def test_convolutions_in_run_time_branches(tmp_path: Path) -> None:
    """The passes that rewrite `main` (channels-last convolutions, numpy folding) run on
    the branches too: each branch's convolution is NHWC between transposes, and both flag
    values match onnxruntime."""
    model = oc.conv_if()
    path = tmp_path / "conv_if.onnx"
    onnx_models.save(model, path)
    module = compile_model(str(path), module_name="conv_if")
    convs = [layer for layer in module.layers if layer.op.startswith("conv2d")]
    assert len(convs) == 2 and all(layer.output_shape == (1, 8, 8, 4) for layer in convs)
    root = build_logged(tmp_path, [module])
    x = references.random_array([1, 3, 8, 8], "float32", np.random.default_rng(9))
    for flag in (True, False):
        feed = {"x": x, "flag": np.array(flag)}
        (y,), calls = run_all(root, [module], {"conv_if": [feed[t.name] for t in module.inputs]})[
            "conv_if"]
        cbuild.assert_close(y, references.run_onnxruntime(model, feed)[0], f"flag={flag}",
                            rtol=RTOL)
        assert len(calls) == 3  # transpose, convolution, transpose: one branch's


def test_onnx_loop_at_run_time(tmp_path: Path) -> None:
    """A Loop without scan outputs whose trip count is an input, or whose condition the
    body computes, is a C loop (not unrolled, no error): matches onnxruntime for trip counts
    0, 1 and 5 and for the data-dependent stop; the condition runs n + 1 times."""
    modules, models_ = [], {}
    for name, until in (("trips", False), ("until", True)):
        models_[name] = oc.loop_run_time(until)
        onnx_models.save(models_[name], tmp_path / f"{name}.onnx")
        modules.append(compile_model(str(tmp_path / f"{name}.onnx"), module_name=name))
    for m in modules:
        assert m.sources[f"{m.name}_lib1.c"].count("while (1) {") == 1
    root = build_logged(tmp_path, modules)
    x = references.random_array([1, 4], "float32", np.random.default_rng(10))
    for n in (0, 1, 5):
        results = run_all(root, modules, {"trips": [x, np.array(n, np.int64)], "until": [x]})
        for name, feed in (("trips", {"x": x, "trips": np.array(n, np.int64)}),
                           ("until", {"x": x})):
            (acc,), calls = results[name]
            cbuild.assert_close(acc, references.run_onnxruntime(models_[name], feed)[0],
                                f"{name} n={n}", rtol=RTOL)
        calls = results["trips"][1]
        assert calls.count(min(calls)) == n + 1, calls


# ------------------------------------------------------------------ TFLite IF and WHILE

X = np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(1, 8)
TFLITE = {"branchy": lambda: tc.if_model(), "then_only": lambda: tc.if_model(True),
          "else_only": lambda: tc.if_model(False),
          "computed_else": lambda: tc.if_model(False, computed=True), "loop5": lambda: tc.while_model(5),
          "loop_n": lambda: tc.while_model(None)}


@pytest.fixture(scope="module")
def tflite_control(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("tflite_control")
    models_, modules = {}, []
    for name, build in TFLITE.items():
        models_[name] = build()
        (tmp / f"{name}.tflite").write_bytes(models_[name])
        modules.append(compile_model(str(tmp / f"{name}.tflite"), module_name=name))
    root = build_logged(tmp, modules)
    sources = {m.name: (root / "codegen" / "host" / "src" / f"{m.name}_lib1.c").read_text()
               for m in modules}

    def run(flag: bool, trips: int) -> dict:
        inputs = {"branchy": [X, np.array(flag)], "then_only": [X], "else_only": [X],
                  "computed_else": [X], "loop5": [X],
                  "loop_n": [X, np.array(trips, np.int32)]}
        results = run_all(root, modules, inputs)
        return {name: (*results[name], references.run_litert(models_[name], inputs[name]))
                for name in inputs}

    operators = {m.name: m.sources[f"{m.name}_lib0.c"] for m in modules}
    return {"modules": {m.name: m for m in modules}, "sources": sources, "run": run,
            "operators": operators,
            "runs": {(flag, trips): run(flag, trips) for flag, trips in
                     ((True, 3), (False, 0), (True, 7))}}


def _close(result: tuple, what: str) -> None:
    actual, _, expected = result
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        cbuild.assert_close(a, np.asarray(e), f"{what} output {i}", rtol=RTOL)


@pytest.mark.parametrize("name", sorted(TFLITE))
def test_tflite_control_flow_matches_litert(tflite_control: dict, name: str) -> None:
    for key, runs in tflite_control["runs"].items():
        _close(runs[name], f"{name} {key}")


def test_tflite_if_runs_one_branch(tflite_control: dict) -> None:
    """A run-time IF: an `if` in C; the flag's run calls the then branch's two operators
    (the wide MLP), the other run the else branch's one, never both."""
    assert "if (*(const int8_t*)inputs->flag != 0) {" in tflite_control["sources"]["branchy"]
    then_calls = tflite_control["runs"][(True, 3)]["branchy"][1]
    else_calls = tflite_control["runs"][(False, 0)]["branchy"][1]
    assert len(then_calls) == 2 and len(else_calls) == 1
    assert not set(then_calls) & set(else_calls)


def test_tflite_if_on_a_constant_folds(tflite_control: dict) -> None:
    """A constant condition selects its branch at compile time: no `if`, only that
    branch's operators and constants, also when the condition is computed from constants
    (LESS(1, 1)): the other branch's operators are not even in the operators' C."""
    for name, calls in (("then_only", 2), ("else_only", 1), ("computed_else", 1)):
        source = tflite_control["sources"][name]
        assert "if (*(" not in source and "while (" not in source
        assert len(tflite_control["runs"][(True, 3)][name][1]) == calls
    for name in ("else_only", "computed_else"):
        assert "matmul" not in tflite_control["sources"][name]
        assert "matmul" not in tflite_control["operators"][name]


def test_branches_of_a_tflite_if_share_the_workspace(tflite_control: dict) -> None:
    modules = tflite_control["modules"]
    larger = max(modules[n].workspace_bytes for n in ("then_only", "else_only"))
    assert modules["branchy"].workspace_bytes <= larger + 16


def test_tflite_while_is_a_c_loop(tflite_control: dict) -> None:
    """WHILE becomes `while (1) { condition; break; body; changed loop values copied back }`:
    with a constant trip count 5 the condition runs 6 times and the body 5 (code does not
    grow with the trip count); with a run-time count n, n + 1 and n times (n = 0: the body
    never runs)."""
    for name in ("loop5", "loop_n"):
        source = tflite_control["sources"][name]
        assert source.count("while (1) {") == 1 and "== 0) break;" in source
        # x, which the body passes on unchanged, is read where it is: not copied
        assert "(float*)inputs->x" in source and "inputs->x, 32)" not in source
    for (_, trips), runs in tflite_control["runs"].items():
        for name, n in (("loop5", 5), ("loop_n", trips)):
            calls = runs[name][1]
            first = min(calls)  # the condition: the loop's first operator
            assert calls.count(first) == n + 1, (name, n, calls)
            assert len(calls) == (n + 1) + 2 * n, (name, n, calls)  # i + 1; fused h update


def test_loop_values_that_change_shape_are_one_clear_error(tmp_path: Path, capsys) -> None:
    """A WHILE body that doubles its value cannot run on static buffers: exit 4, one line
    naming the file, the module, the operator and the value; no archive."""
    from tvmc_multimodule.cli import driver

    path = tmp_path / "growing.tflite"
    path.write_bytes(tc.while_growing())
    code = driver.main(["compile", str(path), "-o", str(tmp_path / "out.tar")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 4 and len(err) == 1
    for word in ("error:", str(path), "control flow", "WHILE operator 0", "changes shape",
                 "[1, 8]", "[1, 16]"):
        assert word in err[0], f"{word!r} missing from: {err[0]}"
    assert not (tmp_path / "out.tar").exists()


def test_custom_operator_in_a_tflite_branch(tmp_path: Path) -> None:
    """The branch subgraphs are converted with the module's user operators: a custom
    operator in the then branch calls the user's C; both flags match a NumPy reference."""
    from builders import tflite_custom_models as custom
    from tvmc_multimodule import CustomOp

    (tmp_path / "m.tflite").write_bytes(tc.if_custom())
    op = CustomOp("ScaleShift", custom.SCALE_SHIFT_C.format(module="branch_op"), "ss.c",
                  lambda ins: [(ins[0][0], "float32"), (ins[0][0][:-1], "int32")])
    module = compile_model(str(tmp_path / "m.tflite"), module_name="branch_op",
                           custom_ops={"ScaleShift": op})
    root = build_logged(tmp_path, [module])
    x = np.random.default_rng(3).standard_normal((1, 4, 4, 3)).astype(np.float32)
    for flag in (True, False):
        (y, k), calls = run_all(root, [module], {"branch_op": [x, np.array(flag)]})["branch_op"]
        scaled = x * np.array([0.5, -2.0, 3.0], np.float32) + 1
        expected = ((scaled, np.argmax(scaled, axis=-1)) if flag
                    else (np.maximum(x, 0), x.max(axis=-1).astype(np.int32)))
        np.testing.assert_allclose(y, expected[0], rtol=RTOL)
        np.testing.assert_array_equal(k, expected[1].astype(np.int32))
        assert len(calls) == (1 if flag else 3)
