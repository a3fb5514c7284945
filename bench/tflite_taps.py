"""Where a float TFLite model's outputs drift: every operator output, ours vs LiteRT.

    python bench/tflite_taps.py MODEL.tflite [--seed N] [--cflags "-O2"] [--workdir DIR]

A copy of the model whose outputs are every operator's output (DEQUANTIZE of constants
skipped) is compiled with `tvmc compile`, built beside the bench harness and run on seeded
uniform [-1, 1) inputs (the corpus' data). LiteRT runs the UNMODIFIED model with every tensor
preserved, once with its optimised kernels (what the corpus compares with) and once with its
reference kernels. One line per operator in graph order: the largest |value|, then the largest
difference ours-optimised, reference-optimised and ours-reference, each relative to it. A
divergence that LiteRT's two kernel sets show as well is float reassociation, not a bug.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

import compiling
import harness
from timing import TimingConfig

ONE_CALL = TimingConfig(warmup=0, repeats=1, budget_s=0.0)


def _op_names(model: object) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    codes = model.operatorCodes
    return [names[max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode)]
            for op in model.subgraphs[0].operators]


def tapped_copy(data: bytes) -> tuple[bytes, list[int], list[str], list[int]]:
    """The model with its outputs followed by every other operator output; the tapped tensor
    indices and their operators' names (graph order), and the copy's output order."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    taps, kinds = [], []
    for op, kind in zip(graph.operators, _op_names(model)):
        if kind != "DEQUANTIZE":
            taps.append(int(op.outputs[0]))
            kinds.append(kind)
    declared = [int(t) for t in graph.outputs]
    order = [*declared, *[t for t in taps if t not in declared]]
    graph.outputs = np.array(order, dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), taps, kinds, order


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


def report(data: bytes, seed: int, cflags: str, work: Path) -> None:
    from tflite.Model import Model

    graph = Model.GetRootAs(data, 0).Subgraphs(0)
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(-1.0, 1.0, size=tuple(graph.Tensors(graph.Inputs(i)).ShapeAsNumpy()))
              .astype(np.float32) for i in range(graph.InputsLength())]
    tapped, taps, kinds, order = tapped_copy(data)
    ours = dict(zip(order, our_tensors(tapped, inputs, work, cflags)))
    optimised = litert_tensors(data, inputs, taps, reference_kernels=False)
    reference = litert_tensors(data, inputs, taps, reference_kernels=True)
    print(f"{'tensor':>6} {'operator':18} {'max|x|':>9} {'ours-opt':>9} {'ref-opt':>9} {'ours-ref':>9}  (relative)")
    for tensor, kind in zip(taps, kinds):
        a, o, r = ours[tensor].reshape(optimised[tensor].shape), optimised[tensor], reference[tensor]
        scale = max(float(np.abs(o).max(initial=0)), 1e-30)
        diffs = [float(np.abs(x - y).max(initial=0)) / scale for x, y in ((a, o), (r, o), (a, r))]
        print(f"{tensor:6d} {kind:18} {scale:9.3g} " + " ".join(f"{d:9.2g}" for d in diffs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="input seed (default 0, the corpus')")
    parser.add_argument("--cflags", default="-O2")
    parser.add_argument("--workdir", type=Path, help="keep the archive and build here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tvmc-taps-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report(args.model.read_bytes(), args.seed, args.cflags, work.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
