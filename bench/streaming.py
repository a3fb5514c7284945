"""Streaming (stateful) models over a sequence of invokes: max difference against TFLite Micro
at every step, RAM (state + workspace + inputs/outputs) against TFLite Micro's arena (which
holds its variables too), and time per invoke against TFLite Micro and LiteRT (both timed
from Python: set input, invoke, get output; ours from C, the whole run call).

    python bench/streaming.py [--steps 64] [MODEL.tflite ...]   # default: the test patterns

The test patterns: the int8 and float resource-variable streams (tests/builders/
tflite_state_models.py), a float and an int8 UNIDIRECTIONAL_SEQUENCE_LSTM whose state tensors
carry across invokes (tflite_recurrent_models.py). Differences: integer outputs in LSB, float
outputs relative to the output's largest magnitude over the sequence. Real streaming models:
pip download pymicro-wakeword into /tmp and give its models/*.tflite; TFLite Micro's own LSTM
examples (tensorflow/tflite-micro: examples/mnist_lstm/trained_lstm_int8.tflite,
third_party/xtensa/examples/micro_speech_lstm/micro_speech_lstm.tflite) run too.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

from workspace_io import tflite_micro_arena  # noqa: E402


def _harness(api, steps: int) -> str:
    m = api.prefix
    lines = ["#include <stdio.h>", "#include <stdlib.h>", "#include <time.h>",
             f'#include "{api.header_file}"',
             "static void* load(const char* p, size_t n) { void* b = malloc(n ? n : 1);",
             "  FILE* f = fopen(p, \"rb\"); if (!f || fread(b, 1, n, f) != n) exit(2);",
             "  fclose(f); return b; }",
             "int main(void) {", f"  {api.inputs_struct} in; {api.outputs_struct} out;",
             "  struct timespec t0, t1; int k; FILE* f;"]
    for i, t in enumerate(api.inputs):
        lines.append(f"  unsigned char* in{i} = load(\"in{i}.bin\", {steps}u * {t.nbytes}u);")
    for j, t in enumerate(api.outputs):
        lines.append(f"  unsigned char* out{j} = malloc({steps}u * {t.nbytes}u);")
    lines += [f"  {m}_reset();", "  clock_gettime(CLOCK_MONOTONIC, &t0);",
              f"  for (k = 0; k < {steps}; ++k) {{"]
    lines += [f"    in.{t.c_name} = in{i} + k * {t.nbytes};" for i, t in enumerate(api.inputs)]
    lines += [f"    out.{t.c_name} = out{j} + k * {t.nbytes};" for j, t in enumerate(api.outputs)]
    lines += [f"    if ({m}_run(&in, &out)) return 1;", "  }",
              "  clock_gettime(CLOCK_MONOTONIC, &t1);",
              f"  printf(\"%.3f\\n\", ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec)"
              f" / 1e3) / {steps});"]
    for j, t in enumerate(api.outputs):
        lines += [f"  f = fopen(\"out{j}.bin\", \"wb\"); fwrite(out{j}, 1, {steps}u * "
                  f"{t.nbytes}u, f); fclose(f);"]
    return "\n".join(lines + ["  return 0;", "}", ""])


def ours(path: Path, xs: list[np.ndarray], steps: int, work: Path) -> tuple[list, float, object]:
    from tvmc_multimodule import api as tvmc_api
    from tvmc_multimodule.mlf import extract_archive

    module = tvmc_api.compile_model(str(path), "s")
    tvmc_api.export_model_library_format(module, str(work / "s.tar"))
    extract_archive(str(work / "s.tar"), str(work / "x"))
    c_api = module.c_api
    (work / "main.c").write_text(_harness(c_api, steps))
    sources = sorted(str(p) for p in (work / "x/codegen/host/src").glob("s_lib*.c"))
    subprocess.run(["gcc", "-O3", "-I", str(work / "x/codegen/host/include"), str(work / "main.c"),
                    *sources, "-o", str(work / "app"), "-lm"], check=True)
    for i, x in enumerate(xs):
        np.ascontiguousarray(x).tofile(work / f"in{i}.bin")
    best = min(float(subprocess.run([str(work / "app")], cwd=work, check=True,
                                    capture_output=True, text=True).stdout) for _ in range(5))
    outs = [np.fromfile(work / f"out{j}.bin", t.dtype).reshape(steps, *t.shape)
            for j, t in enumerate(module.outputs)]
    return outs, best, module


def tflm(model: bytes, xs: list[np.ndarray], steps: int) -> tuple[list, float]:
    """Outputs of one interpreter over the sequence; time: the best of 3 fresh ones."""
    from tflite_micro import runtime

    first: list = []
    seconds = []
    for _ in range(3):
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
        outs: list[list] = [[] for _ in range(_outputs(model))]
        start = time.perf_counter()
        for k in range(steps):
            for i, x in enumerate(xs):
                interpreter.set_input(x[k], i)
            interpreter.invoke()
            for j in range(len(outs)):
                outs[j].append(np.array(interpreter.get_output(j)))
        seconds.append(time.perf_counter() - start)
        first = first or outs
    return [np.array(o) for o in first], min(seconds) / steps * 1e6


def litert(model: bytes, xs: list[np.ndarray], steps: int) -> tuple[list, float]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.
                              BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    first: list = []
    seconds = []
    for _ in range(4):  # outputs of the first pass (CALL_ONCE runs once per interpreter);
        # time: the best later pass (LiteRT's first invokes prepare lazily)
        interpreter.reset_all_variables()
        outs: list[list] = [[] for _ in interpreter.get_output_details()]
        start = time.perf_counter()
        for k in range(steps):
            for d, x in zip(details, xs):
                interpreter.set_tensor(d["index"], x[k])
            interpreter.invoke()
            for j, d in enumerate(interpreter.get_output_details()):
                outs[j].append(interpreter.get_tensor(d["index"]).copy())
        seconds.append(time.perf_counter() - start)
        first = first or outs
    return [np.array(o) for o in first], min(seconds[1:]) / steps * 1e6


def difference(ours_: list[np.ndarray], reference: list[np.ndarray]) -> str:
    """Largest difference over every output and step: LSB, or relative for float outputs."""
    worst = 0.0
    floats = False
    for a, b in zip(ours_, reference):
        b = b.reshape(a.shape)
        if a.dtype.kind in "iu":
            worst = max(worst, float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()))
        else:
            floats = True
            scale = max(float(np.abs(b).max()), 1e-30)
            worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()) / scale)
    return f"{worst:.1e} rel" if floats else f"{int(worst)} LSB"


def _outputs(model: bytes) -> int:
    import tflite

    return tflite.Model.GetRootAsModel(model, 0).Subgraphs(0).OutputsLength()


def _inputs(model: bytes, steps: int) -> list[np.ndarray]:
    """Per input, `steps` values: a slowly drifting random envelope (features of a stream)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    rng = np.random.default_rng(0)
    xs, index = [], 0
    while True:
        try:
            details = interpreter.get_input_details(index)
        except Exception:  # noqa: BLE001  (no more inputs)
            break
        shape = tuple(details["shape"])
        if np.dtype(details["dtype"]).kind == "f":
            envelope = np.cumsum(rng.standard_normal((steps, *shape)) * 0.1, axis=0)
            xs.append((envelope + rng.standard_normal((steps, *shape)) * 0.5)
                      .astype(details["dtype"]))
        else:
            envelope = np.cumsum(rng.integers(-8, 9, (steps, *shape)), axis=0)
            xs.append(np.clip(envelope + rng.integers(-40, 41, (steps, *shape)), -128, 127)
                      .astype(details["dtype"]))
        index += 1
    return xs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--steps", type=int, default=64)
    args = parser.parse_args()
    from builders import tflite_recurrent_models, tflite_state_models

    patterns = {"int8_variables": tflite_state_models.streaming,
                "float_variables": tflite_state_models.streaming_float,
                "float_lstm_state": lambda: tflite_recurrent_models.sequence_lstm(
                    steps=8, inputs=16, hidden=32),
                "int8_lstm_state": lambda: tflite_recurrent_models.sequence_lstm_int8(
                    steps=8, inputs=16, hidden=32)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = list(args.models)
        if not paths:
            for name, build in patterns.items():
                paths.append(Path(tmp) / f"{name}.tflite")
                paths[-1].write_bytes(build())
        rows = [("model", "max|d| TFLM", "max|d| LiteRT", "state B", "workspace B", "io B",
                 "total B", "TFLM arena B", "ours us", "TFLM us", "LiteRT us")]
        for n, path in enumerate(paths):
            model = path.read_bytes()
            xs = _inputs(model, args.steps)
            work = Path(tmp) / f"m{n}"
            work.mkdir()
            mine, us, module = ours(path, xs, args.steps, work)
            ref, tflm_us = tflm(model, xs, args.steps)
            lite, litert_us = litert(model, xs, args.steps)
            total = module.state_bytes + module.workspace_bytes + module.io_bytes
            rows.append((path.stem, difference(mine, ref), difference(mine, lite),
                         str(module.state_bytes), str(module.workspace_bytes),
                         str(module.io_bytes), str(total), str(tflite_micro_arena(model)),
                         f"{us:.2f}", f"{tflm_us:.2f}", f"{litert_us:.2f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
