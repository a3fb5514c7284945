"""Total RAM with the inputs and outputs inside the workspace (tvmc's
``--pass-config tir.usmp.use_workspace_io=1``) against TFLite Micro's arena, per shared model.

Without the option the module needs its workspace plus the input and output buffers the
application provides; with it, the workspace alone (the inputs live from step 0 to their last
read, the outputs from their first write to the end, planned with every other tensor).
TFLite Micro's figure is its arena ("Arena allocation total", which holds its inputs and
outputs too), read from the tflite-micro package after one invoke.

    python bench/workspace_io.py [--models DIR]      # default: ../shared/models/tflite
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from reference_runtimes import TFLM_ARENA_MIN, _report_bytes, capture_c_stderr  # noqa: E402

DEFAULT_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models" / "tflite"
if not DEFAULT_MODELS.is_dir():  # a worktree under /work/wt: the models are at /work/shared
    DEFAULT_MODELS = Path(__file__).resolve().parents[3] / "shared" / "models" / "tflite"


def tflite_micro_arena(model: bytes) -> int | None:
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=max(TFLM_ARENA_MIN,
                                                                       10 * len(model)))
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
    interpreter.invoke()
    return _report_bytes(capture_c_stderr(interpreter.print_allocations), "total")


def measure(path: Path) -> dict[str, int | None]:
    from tvmc_multimodule import api

    default = api.compile_model(str(path), "m")
    io = api.compile_model(str(path), "m", workspace_io=True)
    return {"workspace": default.workspace_bytes, "io": default.io_bytes,
            "default_total": default.workspace_bytes + default.io_bytes,
            "io_in_workspace": io.workspace_bytes,
            "tflm_arena": tflite_micro_arena(path.read_bytes())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    args = parser.parse_args(argv)
    rows = [("model", "workspace B", "io B", "ws+io B", "io in ws B", "TFLM arena B", "ours/TFLM")]
    worse = 0
    for path in sorted(args.models.glob("*.tflite")):
        m = measure(path)
        ratio = m["io_in_workspace"] / m["tflm_arena"] if m["tflm_arena"] else float("nan")
        worse += ratio >= 1
        rows.append((path.stem, *(f"{m[k]:,}" if m[k] is not None else "-" for k in
                                  ("workspace", "io", "default_total", "io_in_workspace",
                                   "tflm_arena")), f"{ratio:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))
    print(f"{worse} model(s) need as much RAM as TFLite Micro's arena or more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
