"""Control flow that branches at run time: an ONNX If on a run-time condition (the
voice-activity-detector-like graph: If on the sample rate, an LSTM with state in each branch)
becomes a C `if` in the runner. The generated C is built with gcc -Wall -Wextra -Werror with a
TVMGEN_OPERATOR_CALL hook that logs every operator call, run for each condition value,
compared with onnxruntime (1e-5 relative), and the log shows that only one branch ran."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models
from builders import onnx_recurrent_models as models
from tvmc_multimodule import compile_model, export_model_library_format

RTOL = 1e-5

# every operator call logged (its index in the runner) before it runs
CALL_LOG_HEADER = """#include <stdio.h>
#define TVMGEN_OPERATOR_CALL(index, function, arguments) \\
  (fprintf(stderr, "call %d\\n", (int)(index)), function arguments)
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


def run_logged(root: Path, module: object, inputs: Sequence[np.ndarray]
               ) -> tuple[list[np.ndarray], list[int]]:
    """The module's outputs and the operator calls it made, in order."""
    work = root / "harness"
    for i, array in enumerate(inputs):
        np.ascontiguousarray(array).tofile(work / f"{module.name}_in{i}.bin")
    run = subprocess.run([str(work / "app")], cwd=work, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr[:2000]
    calls = [int(line.split()[1]) for line in run.stderr.splitlines() if line.startswith("call ")]
    outputs = [np.fromfile(work / f"{module.name}_out{i}.bin", dtype=t.dtype).reshape(t.shape)
               for i, t in enumerate(module.outputs)]
    return outputs, calls


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
        actual, calls = run_logged(root, module, [feed[t.name] for t in module.inputs])
        runs[rate] = (actual, calls, references.run_onnxruntime(model, feed))
    source = (root / "codegen" / "host" / "src" / "vad_lib1.c").read_text()
    return {"module": module, "fixed": fixed, "runs": runs, "source": source}


@pytest.mark.parametrize("rate", [16000, 8000])
def test_run_time_if_matches_onnxruntime(vad_run_time: dict, rate: int) -> None:
    actual, _, expected = vad_run_time["runs"][rate]
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
