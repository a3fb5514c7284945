"""The C timing harness: a main.c that calls `tvmgen_<mod>_run` in a loop on this host.

It reads each input from `in<i>.bin`, restores the inputs before every call (untimed), runs
the warm-up calls, then times each call with clock_gettime(CLOCK_MONOTONIC), prints
`samples N median_ns M min_ns K` and writes each output of the last call to `out<i>.bin`.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from compiling import CompiledArchive
from timing import MIN_SAMPLES, Latency, TimingConfig

PRELUDE = """\
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tvmgen_{name}.h"

static int64_t now_ns(void) {{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}}
static int by_value(const void* a, const void* b) {{
  int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
  return (x > y) - (x < y);
}}
static void load(const char* path, void* dst, size_t n) {{
  FILE* f = fopen(path, "rb");
  if (!f || fread(dst, 1, n, f) != n) {{ fprintf(stderr, "cannot read %s\\n", path); exit(2); }}
  fclose(f);
}}
static void save(const char* path, const void* src, size_t n) {{
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(src, 1, n, f) != n) {{ fprintf(stderr, "cannot write %s\\n", path); exit(3); }}
  fclose(f);
}}
"""

MAIN = """\
int main(int argc, char** argv) {{
  if (argc != 4) {{ fprintf(stderr, "usage: %s WARMUP REPEATS BUDGET_NS\\n", argv[0]); return 2; }}
  long warmup = atol(argv[1]), repeats = atol(argv[2]);
  int64_t budget_ns = atoll(argv[3]);
  struct tvmgen_{name}_inputs inputs;
  struct tvmgen_{name}_outputs outputs;
{setup}
  for (long i = 0; i < warmup; ++i) {{
    restore_inputs();
    if (tvmgen_{name}_run(&inputs, &outputs) != 0) {{ fprintf(stderr, "run failed\\n"); return 1; }}
  }}
  int64_t* samples = malloc((size_t)(repeats > 0 ? repeats : 1) * sizeof *samples);
  long n = 0;
  int64_t spent = 0;
  while (n < repeats) {{
    restore_inputs();
    int64_t start = now_ns();
    int32_t status = tvmgen_{name}_run(&inputs, &outputs);
    int64_t elapsed = now_ns() - start;
    if (status != 0) {{ fprintf(stderr, "run failed\\n"); return 1; }}
    samples[n++] = elapsed;
    spent += elapsed;
    if (spent > budget_ns && n >= {min_samples}) break;
  }}
  qsort(samples, (size_t)n, sizeof *samples, by_value);
  int64_t median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  printf("samples %ld median_ns %lld min_ns %lld\\n", n, (long long)median, (long long)samples[0]);
{save}
  free(samples);
  return 0;
}}
"""


def run_group(cmd: Sequence[str], timeout: float | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`subprocess.run(cmd, capture_output=True, text=True)` in a new process group that is
    killed whole on timeout (gcc's cc1, or a compiler's own children, are not left running);
    raises subprocess.TimeoutExpired then."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _macro(name: str, tensor: dict[str, Any]) -> str:
    return f"TVMGEN_{name.upper()}_{tensor['c_name'].upper()}_SIZE"


def _buffers(name: str, inputs: Sequence[dict], outputs: Sequence[dict]) -> list[str]:
    lines = []
    for i, tensor in enumerate(inputs):
        size = _macro(name, tensor)
        lines.append(f"static uint8_t in{i}[{size} + 1] __attribute__((aligned(16)));")
        lines.append(f"static uint8_t in{i}_saved[{size} + 1];")
    for i, tensor in enumerate(outputs):
        lines.append(f"static uint8_t out{i}[{_macro(name, tensor)} + 1] __attribute__((aligned(16)));")
    restores = [f"  memcpy(in{i}, in{i}_saved, {_macro(name, t)});" for i, t in enumerate(inputs)]
    return [*lines, "static void restore_inputs(void) {", *restores, "}", ""]


def harness_source(name: str, inputs: Sequence[dict], outputs: Sequence[dict]) -> str:
    """main.c for module `name`; `inputs`/`outputs` are metadata.json tensor entries in order."""
    setup = [f'  load("in{i}.bin", in{i}_saved, {_macro(name, t)});' for i, t in enumerate(inputs)]
    setup += [f"  inputs.{t['c_name']} = in{i};" for i, t in enumerate(inputs)]
    setup += [f"  outputs.{t['c_name']} = out{i};" for i, t in enumerate(outputs)]
    save = [f'  save("out{i}.bin", out{i}, {_macro(name, t)});' for i, t in enumerate(outputs)]
    main = MAIN.format(name=name, setup="\n".join(setup), save="\n".join(save),
                       min_samples=MIN_SAMPLES)
    return "\n".join([PRELUDE.format(name=name), *_buffers(name, inputs, outputs), main])


def build(archive: CompiledArchive, work: Path, cflags: str, compiler: str = "gcc",
          timeout: float | None = None) -> Path:
    """Compile the harness and the module's sources into `work/bench`; returns the executable."""
    work.mkdir(parents=True, exist_ok=True)
    source = work / "bench_main.c"
    source.write_text(harness_source(archive.name, list(archive.main["inputs"].values()),
                                     list(archive.main["outputs"].values())))
    exe = work / "bench"
    cmd = [compiler, "-std=c11", *shlex.split(cflags), "-I", str(archive.include_dir),
           str(source), *map(str, archive.sources), "-lm", "-o", str(exe)]
    result = run_group(cmd, timeout)
    if result.returncode != 0:
        raise RuntimeError(f"harness build failed: {result.stderr.strip()[-1500:]}")
    return exe


def run(exe: Path, inputs: Sequence[np.ndarray], outputs: Sequence[dict],
        config: TimingConfig, timeout: float = 3600) -> tuple[Latency, list[np.ndarray]]:
    """Run the harness (single thread) on `inputs`; returns its latency and the outputs."""
    work = exe.parent
    for i, array in enumerate(inputs):
        np.ascontiguousarray(array).tofile(work / f"in{i}.bin")
    args = [str(exe), str(config.warmup), str(config.repeats), str(int(config.budget_s * 1e9))]
    result = run_group(args, timeout, cwd=work)
    if result.returncode != 0:
        raise RuntimeError(f"harness failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    match = re.search(r"samples (\d+) median_ns (\d+) min_ns (\d+)", result.stdout)
    if match is None:
        raise RuntimeError(f"unexpected harness output: {result.stdout[:200]!r}")
    samples, median_ns, min_ns = (int(g) for g in match.groups())
    arrays = [np.fromfile(work / f"out{i}.bin", dtype=t["dtype"]).reshape(t["shape"])
              for i, t in enumerate(outputs)]
    return Latency(median_ns / 1e6, min_ns / 1e6, samples), arrays
