"""Fuzzing: mutated TFLite and ONNX files must give a result or a clean model error.

Hypothesis takes a valid model from the builders, applies a few mutations (bit flips, byte
replacements, 32-bit integers overwritten with edge values, truncations, insertions at random
offsets) and `tvmc compile`s the result. Allowed outcomes: 0 (compiled), 3 (model error),
4 (unsupported). 70 (internal error), any other code, a crash (a signal: segfaults in TVM's
C++ or in flatbuffers cannot be caught in-process) or a hang are failures naming the seed
model and the mutations.

The cases run in a long-lived worker process (this file run as a script: TVM is imported
once), which reads one case a line on stdin and answers one JSON line per case. A worker
that dies or does not answer within CASE_TIMEOUT_S is replaced.

Time: 1000 cases by default (CI; about 10 s, never more than a minute); TVMC_FUZZ_SECONDS=600
runs for ten minutes. `pytest -s` prints the tally.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ALLOWED = {0: "compiled", 3: "model error", 4: "unsupported"}
CASE_TIMEOUT_S = 20.0
FUZZ_SECONDS = float(os.environ.get("TVMC_FUZZ_SECONDS", "60"))
EDGE_INT32 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
              0x00010000, 0x40000000)


# ----------------------------------------------------------------------------- worker side

def worker_main() -> int:
    """One case per stdin line: {"path", "format", "out"}; one JSON answer per line.

    The answers go to a private copy of fd 1; fd 1 itself is pointed at stderr so that
    whatever TVM's C++ prints cannot garble them.
    """
    import contextlib
    import io

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from tvmc_multimodule import api  # noqa: F401 - import TVM once, before the first case
    from tvmc_multimodule.cli import driver

    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = driver.main(["compile", case["path"], "--model-format", case["format"],
                                "--module-name", "fuzz", "-j", "1", "-o", case["out"]],
                               entry_point_loader=lambda: [])
        errors = [x for x in err.getvalue().splitlines() if x.startswith("error:")]
        answers.write(json.dumps({"code": code, "error": errors[-1] if errors else "",
                                  "seconds": round(time.perf_counter() - start, 3),
                                  "traceback": "Traceback" in err.getvalue()}) + "\n")
        with contextlib.suppress(OSError):
            os.unlink(case["out"])
    return 0


# ----------------------------------------------------------------------------- test side

class Worker:
    """The worker process, restarted after a crash or a hang."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.process: subprocess.Popen | None = None
        self.env = {**os.environ, "CC": str(folder / "no-compiler"),  # no code-size column
                    "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE),
                                                   os.environ.get("PYTHONPATH", "")])}

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env,
            cwd=self.folder, start_new_session=True)
        assert self._answer(120) == {"ready": True}, "the fuzz worker did not start"

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                stream.close()
            self.process = None

    def _answer(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.process.stdout.readline()
        return json.loads(line) if line else None

    def run(self, path: Path, model_format: str) -> dict:
        """{"code": ...} or {"crash": "..."}."""
        if self.process is None:
            self.start()
        try:
            self.process.stdin.write(json.dumps({"path": str(path), "format": model_format,
                                                 "out": str(self.folder / "out.tar")}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        answer = self._answer(CASE_TIMEOUT_S)
        if answer is not None:
            return answer
        if self.process.poll() is None:
            result = {"crash": f"no answer within {CASE_TIMEOUT_S:.0f} s (hang)"}
        else:
            code = self.process.returncode
            result = {"crash": f"worker died: signal {-code}" if code < 0 else
                      f"worker exited with {code}"}
        self.stop()
        return result


def seed_models() -> dict[str, tuple[str, bytes]]:
    """name -> (format, bytes) of every valid builder model."""
    from builders import onnx_models, onnx_quant_models, tflite_models

    seeds = {f"tflite:{name}": ("tflite", build())
             for name, build in tflite_models.good_models().items()}
    seeds.update({f"onnx:{name}": ("onnx", build().SerializeToString())
                  for name, build in onnx_models.good_models().items()})
    # quantised ONNX: the QDQ translator and the QOperator rewrite see mutated graphs too
    quantised = {**onnx_quant_models.qdq_models(), **onnx_quant_models.qoperator_models()}
    seeds.update({f"onnx:{name}": ("onnx", build().SerializeToString())
                  for name, build in quantised.items()})
    return seeds


def mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    """Apply (kind, position, value) in order; positions wrap around the current length."""
    buf = bytearray(data)
    for kind, position, value in mutations:
        if not buf:
            break
        at = position % len(buf)
        if kind == "flip":
            buf[at] ^= 1 << (value % 8)
        elif kind == "byte":
            buf[at] = value % 256
        elif kind == "int32":
            at = min(at & ~3, max(len(buf) - 4, 0))
            buf[at:at + 4] = EDGE_INT32[value % len(EDGE_INT32)].to_bytes(4, "little")[
                :len(buf) - at]
        elif kind == "truncate":
            del buf[at:]
        elif kind == "insert":
            buf[at:at] = bytes([value % 256]) * (1 + value % 16)
    return bytes(buf)


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# ci: the same 1000 cases every run (about 10 s), capped at FUZZ_SECONDS; long (TVMC_FUZZ_SECONDS=600): as many
# cases as fit, and a failure is shrunk to a minimal mutation list
settings.register_profile(
    "tvmc-fuzz-ci", max_examples=1000, deadline=None, database=None, derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# about 100 cases a second; examples past the time budget are no-ops (a millisecond each)
settings.register_profile(
    "tvmc-fuzz-long", max_examples=max(1000, int(FUZZ_SECONDS * 130)), deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PROFILE = "tvmc-fuzz-long" if "TVMC_FUZZ_SECONDS" in os.environ else "tvmc-fuzz-ci"

SEEDS = seed_models() if __name__ != "__main__" else {}
MUTATION = st.tuples(st.sampled_from(["flip", "flip", "byte", "int32", "truncate", "insert"]),
                     st.integers(0, 2**31 - 1), st.integers(0, 255))


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    """The worker and the tally of outcomes, printed at the end (pytest -s shows it)."""
    folder = tmp_path_factory.mktemp("fuzz")
    worker = Worker(folder)
    tally = {"cases": 0, "outcomes": Counter(), "start": time.monotonic(), "slowest": 0.0,
             "folder": folder}
    yield worker, tally
    worker.stop()
    seconds = time.monotonic() - tally["start"]
    print(f"\nfuzz: {tally['cases']} cases in {seconds:.0f} s: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(tally["outcomes"].items()))
          + f"; slowest case {tally['slowest']:.1f} s")


@settings(settings.get_profile(PROFILE))
@given(seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_models_fail_cleanly(fuzz, seed, mutations):
    worker, tally = fuzz
    if time.monotonic() - tally["start"] > FUZZ_SECONDS:
        return  # the time budget is spent: the remaining examples are no-ops
    model_format, data = SEEDS[seed]
    path = tally["folder"] / f"case.{model_format}"
    path.write_bytes(mutate(data, mutations))
    result = worker.run(path, model_format)
    tally["cases"] += 1
    what = f"{seed} mutated by {mutations}"
    if "crash" in result:
        tally["outcomes"]["crash"] += 1
        (tally["folder"] / f"crash-{tally['cases']}.{model_format}").write_bytes(
            path.read_bytes())
        pytest.fail(f"{what}: {result['crash']}")
    code = result["code"]
    tally["outcomes"][ALLOWED.get(code, f"exit {code}")] += 1
    tally["slowest"] = max(tally["slowest"], result["seconds"])
    assert code in ALLOWED, f"{what}: exit {code}: {result['error']}"
    assert not result["traceback"], f"{what}: a traceback was printed"


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    sys.exit(worker_main())
