"""Latency of the shared int8 models: integer kernels vs the frontend's float form
(dequantize -> float op -> quantize), host gcc -O2, median of repeated runs.

    python tests/int8_latency.py [target] [repeats]

Not a test (pytest does not collect it); prints one line per model.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cbuild  # noqa: E402
import references  # noqa: E402
import test_int8 as harness  # noqa: E402
import tvmc_multimodule.frontends.tflite_int8 as int8  # noqa: E402
from tvmc_multimodule import compile_model, export_model_library_format  # noqa: E402


def main(target: str = "c", repeats: int = 200) -> None:
    modules, batches, expected = [], {}, {}
    rng = np.random.default_rng(1)
    for name in harness.SHARED_MODELS:
        path = harness.SHARED / f"{name}_int8.tflite"
        new = compile_model(str(path), module_name=f"{name}_int", target=target)
        with mock.patch.object(int8, "is_full_int8", lambda graph: False):
            old = compile_model(str(path), module_name=f"{name}_flt", target=target)
        x = references.random_array(new.inputs[0].shape, "int8", rng)
        for module in (new, old):
            modules.append(module)
            batches[module.name] = [[x]]
        expected[name] = references.run_tflite_micro(path.read_bytes(), [x])[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = cbuild.extract(export_model_library_format(modules, f"{tmp}/a.tar"),
                              Path(tmp) / "mlf")
        spec = {m.name: (m.inputs, m.outputs) for m in modules}
        outputs, times = harness.run_batched(harness.build_batched(root, spec), spec, batches,
                                             repeat=repeats)
    by_name = {m.name: m for m in modules}
    for name in harness.SHARED_MODELS:
        new, old = by_name[f"{name}_int"], by_name[f"{name}_flt"]
        t_new, t_old = times[new.name] / 1e6, times[old.name] / 1e6
        lsb_new = harness._lsb(outputs[new.name][0][0], expected[name])
        print(f"{name}: int8 {t_new:.3f} ms ({lsb_new} LSB vs TFLM, workspace "
              f"{new.workspace_bytes} B, constants "
              f"{new.constants_bytes} B) | float form {t_old:.3f} ms "
              f"({harness._lsb(outputs[old.name][0][0], expected[name])} LSB, workspace "
              f"{old.workspace_bytes} B, constants {old.constants_bytes} B) | x{t_old / t_new:.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "c", int(sys.argv[2]) if len(sys.argv) > 2 else 200)
