"""Streaming silero-VAD: our C module against onnxruntime over a sequence of audio chunks.

    python bench/streaming_vad.py                      # silero-vad 6.2.3 (corpus cache or pip)
    python bench/streaming_vad.py --model silero_vad.onnx --chunks 128 --rounds 7 --cflags=-O2

The model is compiled with the sample rate fixed (`--input-values sr=16000`: the If keeps the
16 kHz branch); each chunk of 576 samples (512 new + 64 of context, as silero's wrapper feeds
it) runs with the state the previous chunk returned, in a C harness and in onnxruntime
(1 thread, intra- and inter-op). Prints the largest difference of the speech probability and
of the final state (absolute and relative to the largest reference value), the module's
workspace and liveness bound, and the time per invoke of each: the median over the chunks of
one pass, the median of `--rounds` passes, ours and onnxruntime's passes interleaved (the host
is shared: both see the same load). Ours is timed in C around the run call, onnxruntime in
Python around `session.run`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACKAGE = "silero-vad==6.2.3"
MEMBER = "silero_vad/data/silero_vad.onnx"
CHUNK, STATE = 576, (2, 1, 128)

HARNESS = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tvmgen_vad.h"
static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b; return (x > y) - (x < y);
}
int main(int argc, char** argv) {
  int n = atoi(argv[1]);
  float* x = malloc(sizeof(float) * CHUNK * n);
  float* probs = malloc(sizeof(float) * n);
  double* us = malloc(sizeof(double) * n);
  FILE* f = fopen("chunks.bin", "rb");
  if (fread(x, sizeof(float), (size_t)CHUNK * n, f) != (size_t)CHUNK * n) return 2;
  fclose(f);
  static float state[STATE_FLOATS], next[STATE_FLOATS];
  float prob[1];
  for (int i = 0; i < n; ++i) {
    struct tvmgen_vad_inputs in = {x + CHUNK * i, state};
    struct tvmgen_vad_outputs out = {prob, next};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (tvmgen_vad_run(&in, &out)) return 1;
    clock_gettime(CLOCK_MONOTONIC, &b);
    us[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
    memcpy(state, next, sizeof state);
    probs[i] = prob[0];
  }
  f = fopen("out.bin", "wb");
  fwrite(probs, sizeof(float), n, f);
  fwrite(state, sizeof(float), STATE_FLOATS, f);
  fclose(f);
  qsort(us, n, sizeof(double), cmp);
  printf("%.2f\n", us[n / 2]);
  return 0;
}
"""


CORPUS_COPY = (Path.home() / ".cache/tvmc-corpus/models/silero_vad-6.2.3-py3-none-any.whl"
               / MEMBER)


def fetch_model(work: Path) -> Path:
    if CORPUS_COPY.exists():  # bench/corpus.py extracted it already
        return CORPUS_COPY
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", PACKAGE,
                    "-d", str(work)], check=True)
    wheel = next(work.glob("silero_vad-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(MEMBER, work)
    return work / MEMBER


def audio(chunks: int) -> np.ndarray:
    """A tone switching on and off every second over faint noise (seeded)."""
    t = np.arange(CHUNK * chunks) / 16000
    rng = np.random.default_rng(0)
    voiced = 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
    return (voiced + 0.02 * rng.standard_normal(t.size)).astype(np.float32).reshape(chunks, 1, CHUNK)


def build_ours(model: Path, work: Path, x: np.ndarray, cflags: list[str]) -> tuple[int, int]:
    """Compile, write the harness and the chunks, build; (workspace, liveness bound) bytes."""
    from tvmc_multimodule import compile_model, export_model_library_format

    module = compile_model(str(model), module_name="vad", input_shapes={
        "input": [1, CHUNK], "state": list(STATE)}, input_values={"sr": 16000})
    archive = export_model_library_format([module], str(work / "vad.tar"))
    subprocess.run(["tar", "xf", archive, "-C", str(work)], check=True)
    (work / "main.c").write_text(HARNESS.replace("CHUNK", str(CHUNK)).replace(
        "STATE_FLOATS", str(int(np.prod(STATE)))))
    sources = sorted(str(p) for p in (work / "codegen" / "host" / "src").glob("*.c"))
    subprocess.run(["gcc", *cflags, "-Wall", "-Werror", "-I", str(work / "codegen" / "host" / "include"),
                    str(work / "main.c"), *sources, "-lm", "-o", str(work / "app")], check=True)
    x.tofile(work / "chunks.bin")
    return module.workspace_bytes, module.liveness_bound_bytes


def run_ours(work: Path, chunks: int) -> tuple[np.ndarray, np.ndarray, float]:
    """One pass over the chunks: probabilities, final state, median us per invoke."""
    median = float(subprocess.run([str(work / "app"), str(chunks)], cwd=work, check=True,
                                  capture_output=True, text=True).stdout)
    out = np.fromfile(work / "out.bin", np.float32)
    return out[:chunks], out[chunks:].reshape(STATE), median


def onnxruntime_session(model: Path) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def run_onnxruntime(session: object, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    state = np.zeros(STATE, np.float32)
    probs, times = [], []
    for chunk in x:
        start = time.perf_counter()
        prob, state = session.run(None, {"input": chunk, "state": state,  # type: ignore[attr-defined]
                                         "sr": np.array(16000, np.int64)})
        times.append((time.perf_counter() - start) * 1e6)
        probs.append(float(np.asarray(prob).reshape(-1)[0]))
    return np.array(probs, np.float32), state, float(np.median(times))


def measure(model: Path, work: Path, chunks: int = 64, rounds: int = 5,
            cflags: tuple[str, ...] = ("-O3",)) -> dict:
    """Ours and onnxruntime on the same chunks, passes interleaved; medians of the rounds."""
    x = audio(chunks)
    workspace, bound = build_ours(model, work, x, list(cflags))
    session = onnxruntime_session(model)
    ours_us, ort_us = [], []
    for _ in range(rounds):
        probs, state, us = run_ours(work, chunks)
        ours_us.append(us)
        ref_probs, ref_state, us = run_onnxruntime(session, x)
        ort_us.append(us)
    return {"probs": probs, "state": state, "ref_probs": ref_probs, "ref_state": ref_state,
            "workspace": workspace, "bound": bound, "ours_us": float(np.median(ours_us)),
            "ort_us": float(np.median(ort_us)), "ours_rounds": ours_us, "ort_rounds": ort_us}


def _relative(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-30))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help=f"silero-VAD v5/v6 ONNX (default: {PACKAGE})")
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cflags", default="-O3")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model or fetch_model(work)
        r = measure(model, work, args.chunks, args.rounds, tuple(args.cflags.split()))
    print(f"model                 {model.name} ({args.chunks} chunks of {CHUNK} samples, sr 16000)")
    print(f"max |d probability|   {np.abs(r['probs'] - r['ref_probs']).max():.3g} "
          f"(relative {_relative(r['probs'], r['ref_probs']):.2g}; probabilities "
          f"{r['ref_probs'].min():.3f}..{r['ref_probs'].max():.3f})")
    print(f"max |d final state|   {np.abs(r['state'] - r['ref_state']).max():.3g} "
          f"(relative {_relative(r['state'], r['ref_state']):.2g})")
    print(f"workspace B           {r['workspace']:,} (liveness bound {r['bound']:,})")
    print(f"us per invoke         ours {r['ours_us']:.1f} ({args.cflags}), onnxruntime "
          f"{r['ort_us']:.1f} (1 thread); medians of {args.rounds} interleaved passes: ours "
          f"{' '.join(f'{v:.0f}' for v in r['ours_rounds'])}, onnxruntime "
          f"{' '.join(f'{v:.0f}' for v in r['ort_rounds'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
