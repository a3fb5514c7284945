"""Where a float TFLite model's outputs drift: every operator output, ours vs LiteRT.

    python bench/tflite_taps.py MODEL.tflite [--seed N] [--cflags=-O2] [--workdir DIR] [--float64]

A copy of the model whose outputs are every operator's output (DEQUANTIZE of constants
skipped) is compiled with `tvmc compile`, built beside the bench harness and run on seeded
uniform [-1, 1) inputs (the corpus' data). LiteRT runs the UNMODIFIED model with every tensor
preserved, once with its optimised kernels (what the corpus compares with) and once with its
reference kernels. One line per operator in graph order: the largest |value|, then the largest
difference ours-optimised, reference-optimised and ours-reference, each relative to it. A
divergence that LiteRT's two kernel sets show as well is float reassociation, not a bug.
--float64 adds, per layer, each runtime's output against the layer recomputed in float64 from
that runtime's own inputs (float64_ops.py): a wrong kernel shows there, rounding stays ~1e-6.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import compiling
import float64_ops
import harness
from timing import TimingConfig

ONE_CALL = TimingConfig(warmup=0, repeats=1, budget_s=0.0)


def _op_names(model: object) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    codes = model.operatorCodes
    return [names[max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode)]
            for op in model.subgraphs[0].operators]


@dataclass
class Tap:
    """An operator whose (first) output is compared."""

    tensor: int
    kind: str
    inputs: list[int]  # -1: an optional input left out
    options: Any


def tapped_copy(data: bytes) -> tuple[bytes, list[Tap], list[int]]:
    """The model with its outputs followed by every other operator output; the taps (graph
    order) and the copy's output order."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    taps = [Tap(int(op.outputs[0]), kind, [int(i) for i in op.inputs], op.builtinOptions)
            for op, kind in zip(graph.operators, _op_names(model)) if kind != "DEQUANTIZE"]
    declared = [int(t) for t in graph.outputs]
    order = [*declared, *[t.tensor for t in taps if t.tensor not in declared]]
    graph.outputs = np.array(order, dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), taps, order


def litert_tensors(data: bytes, inputs: Sequence[np.ndarray], tensors: Sequence[int],
                   reference_kernels: bool) -> dict[int, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (OpResolverType.BUILTIN_REF if reference_kernels
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=resolver,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return {t: interpreter.get_tensor(t).astype(np.float64) for t in tensors}


def our_tensors(tapped: bytes, inputs: Sequence[np.ndarray], work: Path, cflags: str) -> list[np.ndarray]:
    """Our outputs of the tapped copy, in its output order."""
    (work / "tapped.tflite").write_bytes(tapped)
    archive = work / "tapped.tar"
    subprocess.run([*compiling.tvmc_command(), "compile", str(work / "tapped.tflite"),
                    "--module-name", "taps", "-o", str(archive)], check=True, cwd=work,
                   stdout=subprocess.DEVNULL)
    compiled = compiling.extract(archive, work / "mlf", "taps")
    exe = harness.build(compiled, work / "harness", cflags)
    _, outputs = harness.run(exe, list(inputs), list(compiled.main["outputs"].values()), ONE_CALL)
    return [o.astype(np.float64) for o in outputs]


def layer_errors(tap: Tap, runs: Sequence[dict[int, np.ndarray]],
                 fallback: dict[int, np.ndarray]) -> list[float] | None:
    """Each run's output of `tap` against the operator recomputed in float64 from that run's
    own inputs (constants and model inputs from `fallback`), relative to the float64 output's
    largest magnitude: the rounding the layer itself adds. None: operator not modelled."""
    errors = []
    for run in runs:
        inputs = [None if i < 0 else run.get(i, fallback[i]) for i in tap.inputs]
        exact = float64_ops.evaluate(tap.kind, tap.options, inputs)
        if exact is None:
            return None
        got = run[tap.tensor].reshape(exact.shape)
        errors.append(float(np.abs(got - exact).max(initial=0)) / max(float(np.abs(exact).max(initial=0)), 1e-30))
    return errors


def report(data: bytes, seed: int, cflags: str, work: Path, float64: bool) -> None:
    from tflite.Model import Model

    graph = Model.GetRootAs(data, 0).Subgraphs(0)
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(-1.0, 1.0, size=tuple(graph.Tensors(graph.Inputs(i)).ShapeAsNumpy()))
              .astype(np.float32) for i in range(graph.InputsLength())]
    tapped, taps, order = tapped_copy(data)
    ours = dict(zip(order, our_tensors(tapped, inputs, work, cflags)))
    wanted = sorted({t.tensor for t in taps} | {i for t in taps for i in t.inputs if i >= 0})
    optimised = litert_tensors(data, inputs, wanted, reference_kernels=False)
    reference = litert_tensors(data, inputs, wanted, reference_kernels=True)
    header = f"{'tensor':>6} {'operator':18} {'max|x|':>9} {'ours-opt':>9} {'ref-opt':>9} {'ours-ref':>9}"
    print(header + ("  | float64 layer: ours, opt, ref" if float64 else "") + "  (relative)")
    for tap in taps:
        o, r = optimised[tap.tensor], reference[tap.tensor]
        a = ours[tap.tensor].reshape(o.shape)
        scale = max(float(np.abs(o).max(initial=0)), 1e-30)
        diffs = [float(np.abs(x - y).max(initial=0)) / scale for x, y in ((a, o), (r, o), (a, r))]
        line = f"{tap.tensor:6d} {tap.kind:18} {scale:9.3g} " + " ".join(f"{d:9.2g}" for d in diffs)
        if float64:
            errors = layer_errors(tap, [ours, optimised, reference], reference)
            line += "  | " + (" ".join(f"{e:9.2g}" for e in errors) if errors else "        -")
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="input seed (default 0, the corpus')")
    parser.add_argument("--cflags", default="-O2")
    parser.add_argument("--workdir", type=Path, help="keep the archive and build here")
    parser.add_argument("--float64", action="store_true",
                        help="also each layer recomputed in float64 from each runtime's own inputs "
                             "(CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, RESIZE_BILINEAR, LOGISTIC)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tvmc-taps-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report(args.model.read_bytes(), args.seed, args.cflags, work.resolve(), args.float64)
    return 0


if __name__ == "__main__":
    sys.exit(main())
