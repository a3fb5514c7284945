"""Streaming (stateful) models over a sequence of invokes, side by side with the reference
runtimes: max difference at every step, RAM (state + workspace + inputs/outputs) against
TFLite Micro's arena (which holds its variables too), and time per invoke.

    python bench/streaming.py [--steps 64] [--rounds 5] [MODEL.tflite ...]

Default models: the test-built patterns (int8 and float resource-variable streams, a float and
an int8 UNIDIRECTIONAL_SEQUENCE_LSTM whose state tensors carry across invokes), the microWakeWord models of pymicro-wakeword
2.0.0 and silero-VAD 6.2.3 (both from bench/corpus.py's cache, ~/.cache/tvmc-corpus; missing
ones are skipped, `--no-corpus` skips them all). TFLite models are compared with TFLite Micro
and LiteRT (max |d| in LSB for integer outputs, relative to the output's largest magnitude for
float ones); TFLite Micro's own LSTM examples (tensorflow/tflite-micro:
tensorflow/lite/micro/examples/mnist_lstm/trained_lstm_int8.tflite,
third_party/xtensa/examples/micro_speech_lstm/micro_speech_lstm.tflite) can be given; silero-VAD (ONNX) with onnxruntime (relative difference,
bench/streaming_vad.py). Time per invoke, the median over the steps of one pass, then the
median of `--rounds` passes with every runtime's passes interleaved (the host is shared: all
see the same load), all single-threaded: ours in C around the run call (gcc -O3), TFLite Micro
(the tflite-micro Python package: its reference kernels) and LiteRT (ai-edge-litert, builtin
kernels without XNNPACK) around `invoke()` alone, onnxruntime around `session.run`.
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

CORPUS = Path.home() / ".cache/tvmc-corpus/models"


def _harness(api, steps: int) -> str:
    m = api.prefix
    lines = ["#define _POSIX_C_SOURCE 199309L", "#include <stdio.h>", "#include <stdlib.h>",
             "#include <time.h>", f'#include "{api.header_file}"',
             "static void* load(const char* p, size_t n) { void* b = malloc(n ? n : 1);",
             "  FILE* f = fopen(p, \"rb\"); if (!f || fread(b, 1, n, f) != n) exit(2);",
             "  fclose(f); return b; }",
             "static int cmp(const void* a, const void* b) {",
             "  double x = *(const double*)a, y = *(const double*)b; return (x > y) - (x < y); }",
             "int main(void) {", f"  {api.inputs_struct} in; {api.outputs_struct} out;",
             f"  static double us[{steps}];", "  struct timespec t0, t1; int k; FILE* f;"]
    for i, t in enumerate(api.inputs):
        lines.append(f"  unsigned char* in{i} = load(\"in{i}.bin\", {steps}u * {t.nbytes}u);")
    for j, t in enumerate(api.outputs):
        lines.append(f"  unsigned char* out{j} = malloc({steps}u * {t.nbytes}u);")
    lines += [f"  {m}_reset();", f"  for (k = 0; k < {steps}; ++k) {{"]
    lines += [f"    in.{t.c_name} = in{i} + k * {t.nbytes};" for i, t in enumerate(api.inputs)]
    lines += [f"    out.{t.c_name} = out{j} + k * {t.nbytes};" for j, t in enumerate(api.outputs)]
    lines += ["    clock_gettime(CLOCK_MONOTONIC, &t0);",
              f"    if ({m}_run(&in, &out)) return 1;",
              "    clock_gettime(CLOCK_MONOTONIC, &t1);",
              "    us[k] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;",
              "  }", f"  qsort(us, {steps}, sizeof(double), cmp);",
              f"  printf(\"%.3f\\n\", us[{steps} / 2]);"]
    for j, t in enumerate(api.outputs):
        lines += [f"  f = fopen(\"out{j}.bin\", \"wb\"); fwrite(out{j}, 1, {steps}u * "
                  f"{t.nbytes}u, f); fclose(f);"]
    return "\n".join(lines + ["  return 0;", "}", ""])


def build_ours(path: Path, xs: list[np.ndarray], steps: int, work: Path) -> object:
    from tvmc_multimodule import api as tvmc_api
    from tvmc_multimodule.mlf import extract_archive

    module = tvmc_api.compile_model(str(path), "s")
    tvmc_api.export_model_library_format(module, str(work / "s.tar"))
    extract_archive(str(work / "s.tar"), str(work / "x"))
    (work / "main.c").write_text(_harness(module.c_api, steps))
    sources = sorted(str(p) for p in (work / "x/codegen/host/src").glob("s_lib*.c"))
    subprocess.run(["gcc", "-O3", "-I", str(work / "x/codegen/host/include"), str(work / "main.c"),
                    *sources, "-o", str(work / "app"), "-lm"], check=True)
    for i, x in enumerate(xs):
        np.ascontiguousarray(x).tofile(work / f"in{i}.bin")
    return module


def run_ours(module: object, steps: int, work: Path) -> tuple[list, float]:
    us = float(subprocess.run([str(work / "app")], cwd=work, check=True,
                              capture_output=True, text=True).stdout)
    outs = [np.fromfile(work / f"out{j}.bin", t.dtype).reshape(steps, *t.shape)
            for j, t in enumerate(module.outputs)]  # type: ignore[attr-defined]
    return outs, us


def tflm(model: bytes, xs: list[np.ndarray], steps: int) -> tuple[list, float]:
    """One pass from a fresh interpreter (fresh variables): outputs, median us of invoke()."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    count = _outputs(model)
    outs: list[list] = [[] for _ in range(count)]
    times = []
    for k in range(steps):
        for i, x in enumerate(xs):
            interpreter.set_input(x[k], i)
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
        for j in range(count):
            outs[j].append(np.array(interpreter.get_output(j)))
    return [np.array(o) for o in outs], float(np.median(times)) * 1e6


def litert(model: bytes, xs: list[np.ndarray], steps: int) -> tuple[list, float]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, num_threads=1,
                              experimental_op_resolver_type=OpResolverType.
                              BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    outs: list[list] = [[] for _ in interpreter.get_output_details()]
    times = []
    for k in range(steps):
        for d, x in zip(details, xs):
            interpreter.set_tensor(d["index"], x[k])
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
        for j, d in enumerate(interpreter.get_output_details()):
            outs[j].append(interpreter.get_tensor(d["index"]).copy())
    return [np.array(o) for o in outs], float(np.median(times)) * 1e6


def difference(ours: list[np.ndarray], reference: list[np.ndarray]) -> str:
    """Largest difference over every output and step: LSB, or relative for float outputs."""
    worst, floats = 0.0, False
    for a, b in zip(ours, reference):
        b = b.reshape(a.shape)
        if a.dtype.kind in "iu":
            worst = max(worst, float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()))
        else:
            floats = True
            scale = max(float(np.abs(b).max()), 1e-30)
            worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()) / scale)
    return f"{worst:.1g} rel" if floats else f"{int(worst)} LSB"


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
            index += 1
            continue
        envelope = np.cumsum(rng.integers(-8, 9, (steps, *shape)), axis=0)
        xs.append(np.clip(envelope + rng.integers(-40, 41, (steps, *shape)), -128, 127)
                  .astype(details["dtype"]))
        index += 1
    return xs


HEADER = ("model", "max|d| ref", "max|d| LiteRT", "state B", "workspace B", "io B", "total B", "TFLM arena B",
          "ours us", "TFLM us", "LiteRT us", "ORT us")


def tflite_row(path: Path, steps: int, rounds: int, work: Path) -> tuple[str, ...]:
    model = path.read_bytes()
    xs = _inputs(model, steps)
    work.mkdir()
    module = build_ours(path, xs, steps, work)
    times: dict[str, list[float]] = {"ours": [], "tflm": [], "litert": []}
    for _ in range(rounds):
        mine, us = run_ours(module, steps, work)
        times["ours"].append(us)
        ref, us = tflm(model, xs, steps)
        times["tflm"].append(us)
        lite, us = litert(model, xs, steps)
        times["litert"].append(us)
    total = module.state_bytes + module.workspace_bytes + module.io_bytes  # type: ignore[attr-defined]
    med = {k: f"{np.median(v):.1f}" for k, v in times.items()}
    return (path.stem, difference(mine, ref), difference(mine, lite),
            str(module.state_bytes), str(module.workspace_bytes),  # type: ignore[attr-defined]
            str(module.io_bytes), str(total), str(tflite_micro_arena(model)),  # type: ignore[attr-defined]
            med["ours"], med["tflm"], med["litert"], "-")


def silero_row(model: Path, steps: int, rounds: int, work: Path) -> tuple[str, ...]:
    import streaming_vad

    work.mkdir()
    r = streaming_vad.measure(model, work, steps, rounds)
    rel = max(float(np.abs(r[a] - r[b]).max() / np.abs(r[b]).max())
              for a, b in (("probs", "ref_probs"), ("state", "ref_state")))
    state = int(np.prod(streaming_vad.STATE)) * 4  # passed in and out by the caller
    io = (streaming_vad.CHUNK + 1) * 4 + 2 * state
    return (f"{model.stem} (ONNX)", f"{rel:.1g} rel", "-", "0", str(r["workspace"]), str(io),
            str(r["workspace"] + io), "-", f"{r['ours_us']:.1f}", "-", "-", f"{r['ort_us']:.1f}")


def corpus_models() -> tuple[list[Path], Path | None]:
    import streaming_vad

    wakeword = CORPUS / "pymicro_wakeword-2.0.0-py3-none-manylinux_2_35_x86_64.whl/pymicro_wakeword/models"
    vad = streaming_vad.CORPUS_COPY
    return sorted(wakeword.glob("*.tflite")), vad if vad.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-corpus", action="store_true",
                        help="only the test patterns (and the models given)")
    args = parser.parse_args()
    from builders import tflite_recurrent_models, tflite_state_models

    patterns = {"int8_variables": tflite_state_models.streaming,
                "float_variables": tflite_state_models.streaming_float,
                "float_lstm_state": lambda: tflite_recurrent_models.sequence_lstm(
                    steps=8, inputs=16, hidden=32),
                "int8_lstm_state": lambda: tflite_recurrent_models.sequence_lstm_int8(
                    steps=8, inputs=16, hidden=32)}
    with tempfile.TemporaryDirectory() as tmp:
        paths, vad = list(args.models), None
        if not paths:
            for name, build in patterns.items():
                paths.append(Path(tmp) / f"{name}.tflite")
                paths[-1].write_bytes(build())
            if not args.no_corpus:
                wakeword, vad = corpus_models()
                paths += wakeword
        rows = [HEADER]
        for n, path in enumerate(paths):
            rows.append(tflite_row(path, args.steps, args.rounds, Path(tmp) / f"m{n}"))
        if vad is not None:
            rows.append(silero_row(vad, args.steps, args.rounds, Path(tmp) / "vad"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    print(f"us: median per invoke, median of {args.rounds} interleaved passes of {args.steps} "
          "invokes, 1 thread; ours gcc -O3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
