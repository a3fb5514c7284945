"""The main job on an example that needs nothing from outside the repository.

Builds two small models (an ONNX anomaly detector and a TFLite keyword spotter), runs
`tvmc compile-multi` on both, builds the archive's C with gcc into ONE program, runs it and
prints each module's output beside the reference runtime's (onnxruntime, LiteRT).

    python examples/demo.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's model builders and C harness

import cbuild  # noqa: E402
import references  # noqa: E402
from builders import onnx_models, tflite_models  # noqa: E402


def _tvmc(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "tvmc_multimodule", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="tvmc-demo-"))
    work.mkdir(parents=True, exist_ok=True)

    onnx_models.save(onnx_models.gemm(), work / "ad.onnx")
    (work / "kws.tflite").write_bytes(tflite_models.conv2d())
    _tvmc("compile-multi", str(work / "ad.onnx") + ":anomaly", str(work / "kws.tflite") + ":kws",
          "--target", "c", "-o", str(work / "models.tar"))

    from tvmc_multimodule import load_model_library_format

    archive = load_model_library_format(str(work / "models.tar"))
    root = cbuild.extract(work / "models.tar", work / "mlf")
    rng = np.random.default_rng(0)
    inputs = {n: [references.random_array(t.shape, t.dtype, rng) for t in m.inputs]
              for n, m in archive.modules.items()}
    outputs = cbuild.build_and_run(root, {n: (m.inputs, m.outputs) for n, m in archive.modules.items()},
                                   inputs)
    expected = {
        "anomaly": references.run_onnxruntime(str(work / "ad.onnx"),
                                              {archive.modules["anomaly"].inputs[0].name: inputs["anomaly"][0]}),
        "kws": references.run_litert((work / "kws.tflite").read_bytes(), inputs["kws"]),
    }
    print(f"\none program built from {work / 'models.tar'} ({root / 'harness' / 'app'})")
    for name in archive.modules:
        ours, ref = outputs[name][0].ravel(), np.asarray(expected[name][0]).ravel()
        runtime = "onnxruntime" if name == "anomaly" else "LiteRT"
        print(f"\n{name}: first outputs (generated C vs {runtime}), max abs diff "
              f"{np.abs(ours - ref).max():.2e}")
        for a, b in list(zip(ours, ref))[:4]:
            print(f"  {a:+.6f}  {b:+.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
