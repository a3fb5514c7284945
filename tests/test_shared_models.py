"""The MLPerf-Tiny-style models of ../shared/models (float32 and int8) in ONE compile-multi call,
one program, compared with LiteRT. Skipped when ../shared/models is absent (a fresh clone)."""
from __future__ import annotations

import pytest

import cbuild
import references
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli.driver import main as tvmc

SHARED = references.SHARED_MODELS / "tflite"
MODELS = ["kws_dscnn", "vww_mobilenet_v1_025", "ic_resnet8", "ad_autoencoder"]

pytestmark = [
    pytest.mark.shared_models,
    pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models not present"),
]


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("shared")
    files = {f"{m}_{kind}": SHARED / f"{m}_{kind}.tflite" for m in MODELS for kind in ("float32", "int8")}
    out = folder / "models.tar"
    assert tvmc(["compile-multi", *[f"{p}:{n}" for n, p in files.items()], "-o", str(out)]) == 0
    loaded = load_model_library_format(str(out))
    root = cbuild.extract(out, folder / "mlf")
    inputs, expected = {}, {}
    for name, path in files.items():
        module = loaded.modules[name]
        x = references.shared_input(name.rsplit("_", 1)[0], module.inputs[0])
        inputs[name] = [x]
        expected[name] = references.run_litert(path.read_bytes(), [x])
    outputs = cbuild.build_and_run(root, {n: (m.inputs, m.outputs) for n, m in loaded.modules.items()},
                                   inputs)
    return {"outputs": outputs, "expected": expected}


@pytest.mark.parametrize("name", [f"{m}_{k}" for m in MODELS for k in ("float32", "int8")])
def test_shared_model_matches_litert(shared_run: dict, name: str) -> None:
    for i, (a, e) in enumerate(zip(shared_run["outputs"][name], shared_run["expected"][name])):
        cbuild.assert_close(a, e, f"{name} output {i}")
