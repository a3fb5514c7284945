"""RAM of control flow compiled to C branches and loops, beside what the alternatives cost.

For a run-time If (the VAD-like ONNX graph at three sizes, the TFLite IF test model): the
workspace of the module that branches in C, of each branch compiled alone (its condition
fixed at compile time) and their sum (what a plan holding both branches at once would need
at least). For TFLite IF / WHILE also TFLite Micro's arena (which holds the inputs and
outputs too: ours are added to the workspace for that column), and for WHILE the runner's
size at 5 and 500 iterations (a C loop: it does not grow).

    python bench/control_flow.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

from builders import onnx_models  # noqa: E402
from builders import onnx_recurrent_models as onnx_control  # noqa: E402
from builders import tflite_control_models as tflite_control  # noqa: E402
from reference_runtimes import TFLM_ARENA_MIN, _report_bytes, capture_c_stderr  # noqa: E402
from tvmc_multimodule import compile_model  # noqa: E402


def _tflm_arena(model: bytes, inputs: list[np.ndarray]) -> int | None:
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=TFLM_ARENA_MIN)
    for i, value in enumerate(inputs):
        interpreter.set_input(value, i)
    interpreter.invoke()
    return _report_bytes(capture_c_stderr(interpreter.print_allocations), "total")


def _ram(module: object) -> int:
    return module.workspace_bytes + module.io_bytes  # type: ignore[attr-defined]


def vad_rows(work: Path) -> list[tuple]:
    rows = []
    for samples, hidden in ((64, 8), (256, 32), (512, 64)):
        path = work / f"vad_{hidden}.onnx"
        onnx_models.save(onnx_control.vad(samples=samples, hidden=hidden), path)
        branching = compile_model(str(path), module_name="vad")
        alone = [compile_model(str(path), module_name="vad", input_values={"sr": rate})
                 for rate in (16000, 8000)]
        sizes = [m.workspace_bytes for m in alone]
        rows.append((f"ONNX VAD-like {samples} samples, LSTM {hidden}", branching.workspace_bytes,
                     *sizes, sum(sizes), "-"))
    return rows


def tflite_rows(work: Path) -> list[tuple]:
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    model = tflite_control.if_model(hidden=256)
    (work / "if.tflite").write_bytes(model)
    branching = compile_model(str(work / "if.tflite"), module_name="branchy")
    alone = []
    for flag in (True, False):
        (work / f"if_{flag}.tflite").write_bytes(tflite_control.if_model(flag, hidden=256))
        alone.append(compile_model(str(work / f"if_{flag}.tflite"), module_name="alone"))
    sizes = [m.workspace_bytes for m in alone]
    arena = _tflm_arena(model, [x, np.array(True)])
    return [("TFLite IF, MLP 8-256-8 | tanh", branching.workspace_bytes, *sizes, sum(sizes),
             f"{_ram(branching)} vs {arena}")]


def while_rows(work: Path) -> list[tuple]:
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    rows = []
    for trips in (5, 500):
        model = tflite_control.while_model(trips)
        (work / f"while_{trips}.tflite").write_bytes(model)
        module = compile_model(str(work / f"while_{trips}.tflite"), module_name="loop")
        runner = module.sources["loop_lib1.c"]
        body = runner[runner.index("while (1) {"):]
        rows.append((f"TFLite WHILE, {trips} iterations", module.workspace_bytes,
                     f"runner loop {len(body.splitlines())} lines",
                     f"{_ram(module)} vs {_tflm_arena(model, [x])}"))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        branch_rows = vad_rows(work) + tflite_rows(work)
        loops = while_rows(work)
    print("run-time If: workspace bytes (the module branching in C, each branch compiled "
          "alone, their sum); RAM incl. inputs/outputs vs TFLite Micro's arena")
    header = ("model", "branching", "then alone", "else alone", "sum", "RAM vs TFLM")
    widths = [38, 10, 11, 11, 7, 14]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in branch_rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    print()
    print("WHILE: workspace bytes, runner size, RAM incl. inputs/outputs vs TFLite Micro's arena")
    for name, workspace, size, ram in loops:
        print(f"{name:38}  {workspace:>6}  {size:24}  {ram}")


if __name__ == "__main__":
    main()
