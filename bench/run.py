"""Benchmark tvmc-multimodule against TFLite Micro, LiteRT and onnxruntime.

    python bench/run.py [--models DIR|FILE ...] [--quick] [--all] [--json out.json] [--cflags "-O2"]

For each model: compile time (`tvmc compile` subprocess and in-process `compile_model`),
latency of our C on this host (gcc, `--cflags`, single thread, median) beside the reference
runtimes on the same input, the largest output difference from the reference, RAM (our
workspace + io, TFLite Micro's arena, a liveness lower bound) and flash (constants, .text and
.rodata of the module's objects for the host and Cortex-M4, the model file). Models run one
after another; nothing runs in parallel.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import compiling
import flash
import harness
import liveness
import models
import reference_runtimes as refs
import results
import table
from timing import Latency, TimingConfig

FULL_TIMING = TimingConfig(warmup=10, repeats=500, budget_s=3.0)
QUICK_TIMING = TimingConfig(warmup=1, repeats=5, budget_s=0.5)


def _attach_cflags(argv: Sequence[str]) -> list[str]:
    """`--cflags -O2` -> `--cflags=-O2`: argparse would take a value starting with '-' for an option."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--cflags":
            joined[-1] = f"--cflags={arg}"
        else:
            joined.append(arg)
    return joined


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=Path, metavar="PATH",
                        help="model folders (searched recursively) or files; default: "
                             f"{models.SHARED_MODELS} when present, else two self-built tiny models")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke test: the self-built tiny models, few repeats")
    parser.add_argument("--all", action="store_true",
                        help=f"include model files over {models.LARGE_MODEL_BYTES / 1e6:.0f} MB")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--cflags", default="-O2", help='host C flags for our code (default "-O2")')
    parser.add_argument("--schedule", choices=("auto", "vector", "scalar", "none"), default="auto",
                        help="our operator schedules (tvmc --schedule; default: auto)")
    parser.add_argument("--rounds", type=int, default=2, metavar="N",
                        help="time every runtime N times, alternating, and keep each one's "
                             "lowest median (default 2; --quick: 1)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the benchmark (and the programs it starts) to one CPU")
    parser.add_argument("--workdir", type=Path, help="keep archives and builds here (default: a "
                                                    "temporary folder, removed at the end)")
    args = parser.parse_args(_attach_cflags(sys.argv[1:] if argv is None else argv))
    missing = [str(p) for p in args.models or () if not p.exists()]
    if missing:
        parser.error(f"no such model file or folder: {', '.join(missing)}")
    return args


def select_models(args: argparse.Namespace, work: Path) -> tuple[list[models.ModelSpec], list[str]]:
    if args.models:
        return models.find_models(args.models, args.all)
    if not args.quick and models.SHARED_MODELS.is_dir():
        return models.find_models([models.SHARED_MODELS / "tflite", models.SHARED_MODELS / "onnx"],
                                  args.all)
    return models.build_tiny_models(work / "tiny_models"), []


def attempt(result: results.ModelResult, stage: str, action: Callable[[], object]) -> object | None:
    """Run one stage; on failure record `stage: error` and return None, so the others still run."""
    try:
        return action()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures instead of stopping
        result.errors.append(f"{stage}: {type(exc).__name__}: {str(exc).strip()[:400]}")
        return None


def measure_references(spec: models.ModelSpec, inputs: list, timing: TimingConfig,
                       result: results.ModelResult) -> dict[str, refs.ReferenceRun]:
    """Every applicable reference runtime on `inputs`, one after another."""
    runners: dict[str, Callable[[], refs.ReferenceRun]] = {}
    if spec.model_format == "tflite":
        data = spec.path.read_bytes()
        runners["tflite_micro"] = lambda: refs.run_tflite_micro(data, inputs, timing)
        runners["litert"] = lambda: refs.run_litert(data, inputs, timing)
    else:
        runners["onnxruntime"] = lambda: refs.run_onnxruntime(str(spec.path), inputs, timing)
    runs = {}
    for name, runner in runners.items():
        run = attempt(result, name, runner)
        if run is not None:
            runs[name] = run
            keep_fastest(result, name, run.latency)
    return runs


def keep_fastest(result: results.ModelResult, runtime: str, latency: Latency) -> None:
    """The runtime's latency: the lowest median of the rounds (each runtime gets the same
    number of rounds, alternating with the others, so a slow spell of the host hits them
    alike)."""
    current = getattr(result.latency_ms, runtime)
    if current is None or latency.median_ms < current:
        setattr(result.latency_ms, runtime, latency.median_ms)
        result.latency_ms.samples[runtime] = latency.samples


def record_accuracy(result: results.ModelResult, ours: list, runs: dict[str, refs.ReferenceRun]) -> None:
    """Our outputs against every reference; the headline one is TFLite Micro or onnxruntime,
    else LiteRT."""
    for name, run in runs.items():
        unit, diff = results.max_diff(ours, run.outputs)
        result.accuracy.vs[name] = diff
        result.accuracy.unit = unit
    for name in ("tflite_micro", "onnxruntime", "litert"):
        if name in result.accuracy.vs:
            result.accuracy.reference, result.accuracy.max_diff = name, result.accuracy.vs[name]
            return


def record_memory(result: results.ModelResult, archive: compiling.CompiledArchive,
                  runs: dict[str, refs.ReferenceRun]) -> None:
    ram = result.ram_bytes
    ram.workspace = archive.main["workspace_size_bytes"]
    ram.io = archive.main["io_size_bytes"]
    ram.state = archive.main.get("state_size_bytes", 0)  # a streaming model's variables
    ram.ours = ram.workspace + ram.io + ram.state
    if "tflite_micro" in runs:
        ram.tflite_micro_arena = runs["tflite_micro"].arena_bytes
        ram.tflite_micro_arena_head = runs["tflite_micro"].arena_head_bytes
    result.flash_bytes.constants = archive.main["constants_size_bytes"]


def record_flash(result: results.ModelResult, archive: compiling.CompiledArchive, work: Path,
                 cflags: str) -> None:
    for toolchain in (flash.host_toolchain(cflags), flash.arm_toolchain()):
        if not toolchain.available():
            continue
        sizes = attempt(result, f"{toolchain.label} objects", lambda t=toolchain: flash.object_sizes(
            t, archive.sources, archive.include_dir, work / f"obj_{t.label}"))
        if sizes is not None:
            setattr(result.flash_bytes, toolchain.label, results.Sections(**sizes))


def measure_ours(result: results.ModelResult, archive: compiling.CompiledArchive, inputs: list,
                 work: Path, cflags: str, timing: TimingConfig) -> list:
    """Build and time our C; returns our outputs."""
    exe = harness.build(archive, work / "harness", cflags)
    latency, outputs = harness.run(exe, inputs, list(archive.main["outputs"].values()), timing)
    keep_fastest(result, "ours", latency)
    return outputs


def benchmark_model(spec: models.ModelSpec, work: Path, cflags: str,
                    timing: TimingConfig, schedule: str = "auto",
                    rounds: int = 1) -> results.ModelResult:
    """Every figure for one model; failed stages are listed in `errors`."""
    result = results.ModelResult(spec.name, spec.path.name, spec.model_format)
    result.flash_bytes.model_file = spec.path.stat().st_size
    result.ram_bytes.liveness_bound = attempt(result, "liveness", lambda: liveness.model_bound(str(spec.path)))
    work.mkdir(parents=True, exist_ok=True)
    tar = work / f"{spec.name}.tar"
    result.compile.cli_s = attempt(result, "tvmc compile", lambda: compiling.time_cli_compile(spec, tar, schedule))
    result.compile.api_s = attempt(result, "compile_model", lambda: compiling.time_api_compile(spec, schedule))
    if result.compile.cli_s is None:
        return result
    archive = attempt(result, "extract", lambda: compiling.extract(tar, work / "mlf", spec.name))
    if archive is None:
        return result
    inputs = models.model_inputs(spec, archive.main["inputs"])
    ours, runs = None, {}
    for _ in range(rounds):  # ours, then the references, then again
        ours = attempt(result, "ours", lambda: measure_ours(result, archive, inputs, work,
                                                           cflags, timing)) or ours
        runs = measure_references(spec, inputs, timing, result) or runs
    result.ratio = results.ratios(result.latency_ms)
    if ours is not None:
        attempt(result, "accuracy", lambda: record_accuracy(result, ours, runs))
    record_memory(result, archive, runs)
    record_flash(result, archive, work, cflags)
    return result


def package_provenance() -> dict[str, object]:
    """Which tvmc_multimodule was benchmarked: its folder and, inside this repository, the git
    commit and whether the package differs from it."""
    import tvmc_multimodule

    folder = Path(tvmc_multimodule.__file__).resolve().parent
    info: dict[str, object] = {"path": str(folder), "version": tvmc_multimodule.__version__,
                               "commit": None, "modified": None}
    if folder.parent == models.REPO:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=models.REPO, capture_output=True,
                                  text=True).stdout.strip()
        info["commit"] = git("rev-parse", "--short", "HEAD") or None
        info["modified"] = bool(git("status", "--porcelain", "--", folder.name))
    return info


def describe(package: dict[str, object]) -> str:
    if package["commit"] is None:
        return str(package["path"])
    return f"{package['path']} (git {package['commit']}{', modified' if package['modified'] else ''})"


def environment(cflags: str, timing: TimingConfig) -> dict[str, object]:
    """What the figures depend on: host, compilers, flags, timing settings."""
    def version(tool: str) -> str | None:
        try:
            out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
            return out.splitlines()[0] if out else None
        except OSError:
            return None
    return {"machine": platform.machine(), "processor": platform.processor() or None,
            "python": platform.python_version(), "package": package_provenance(), "gcc": version("gcc"),
            "arm_gcc": version(flash.ARM_CC), "cflags": cflags, "arm_cflags": flash.ARM_FLAGS,
            "timing": {"warmup": timing.warmup, "repeats": timing.repeats, "budget_s": timing.budget_s}}


def run_all(args: argparse.Namespace, work: Path) -> tuple[list[results.ModelResult], list[str]]:
    timing = QUICK_TIMING if args.quick else FULL_TIMING
    specs, notes = select_models(args, work)
    collected = []
    for spec in specs:
        start = time.perf_counter()
        print(f"[bench] {spec.name} ({spec.path.name}) ...", file=sys.stderr, flush=True)
        collected.append(benchmark_model(spec, work / spec.name, args.cflags, timing,
                                         args.schedule, 1 if args.quick else max(args.rounds, 1)))
        for error in collected[-1].errors:
            print(f"[bench]   error in {error}", file=sys.stderr)
        print(f"[bench]   done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return collected, notes


def pin_to_one_cpu() -> int | None:
    """Pin this process (and every program it starts) to its last allowed CPU. Unpinned, the
    scheduler moves a run between cores and its caches go cold: ic_resnet8's median measured
    0.72-1.16 ms on this 2-core host, pinned 0.71-0.73 ms."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cpu = None if args.no_pin else pin_to_one_cpu()
    timing = QUICK_TIMING if args.quick else FULL_TIMING
    with tempfile.TemporaryDirectory(prefix="tvmc-bench-") as tmp:
        work = args.workdir.resolve() if args.workdir else Path(tmp)
        collected, notes = run_all(args, work)
    print(f"tvmc_multimodule: {describe(package_provenance())}")
    print(f"schedule: {args.schedule}   cflags: {args.cflags}   arm: {flash.ARM_FLAGS}   latency: median of up to "
          f"{timing.repeats} calls after {timing.warmup} warm-up, best of "
          f"{1 if args.quick else max(args.rounds, 1)} alternating rounds, 1 thread"
          f"{'' if cpu is None else f', pinned to CPU {cpu}'}; ours/theirs < 1: ours faster")
    print(table.render(collected))
    for note in notes:
        print(f"note: {note}")
    for result in collected:
        for error in result.errors:
            print(f"error: {result.name}: {error}")
    if args.json:
        payload = {"environment": environment(args.cflags, timing), "notes": notes,
                   "models": [r.to_json() for r in collected]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if any(r.errors for r in collected) else 0


if __name__ == "__main__":
    sys.exit(main())
