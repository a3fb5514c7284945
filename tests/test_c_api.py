"""One description of a module's C API (`tvmc_multimodule.c_api.ModuleApi`) drives the header,
the runner, the templates and `tvmc run`'s harness: `tvmc run` works on archives compiled
with either workspace mode, and its outputs match onnxruntime and LiteRT."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_models
from tvmc_multimodule.c_api import ModuleApi
from tvmc_multimodule.cli.driver import main as tvmc
from tvmc_multimodule.model import TensorInfo

pytestmark = pytest.mark.skipif(not cbuild.have("gcc"), reason="needs gcc")


def test_api_signatures_per_workspace_mode():
    x, y = TensorInfo("in:0", "in_0", (1, 4), "float32"), TensorInfo("y", "y", (2,), "int8")
    static = ModuleApi.build("kws", [x], [y], 96, "static")
    shared = ModuleApi.build("kws", [x], [y], 96, "shared")
    io = "struct tvmgen_kws_inputs* inputs, struct tvmgen_kws_outputs* outputs"
    assert static.run.prototype() == f"int32_t tvmgen_kws_run({io});"
    assert [f.symbol for f in static.entry_points] == ["tvmgen_kws_run",
                                                       "tvmgen_kws_run_with_workspace"]
    assert shared.run.prototype() == f"int32_t tvmgen_kws_run({io}, void* workspace);"
    assert [f.symbol for f in shared.entry_points] == ["tvmgen_kws_run"]
    assert shared.run.call({"inputs": "&i", "outputs": "&o", "workspace": "w"}) \
        == "tvmgen_kws_run(&i, &o, w)"
    assert "TVMGEN_KWS_WORKSPACE_SHARED" in shared.macros()
    assert "TVMGEN_KWS_WORKSPACE_SHARED" not in static.macros()
    assert [t.size_macro for t in static.inputs + static.outputs] == ["TVMGEN_KWS_IN_0_SIZE",
                                                                      "TVMGEN_KWS_Y_SIZE"]
    with pytest.raises(ValueError):
        ModuleApi.build("kws", [x], [y], 96, "pooled")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("c_api")
    onnx_model = onnx_models.two_in_two_out().SerializeToString()
    tflite_model = tflite_models.int8_conv_fc_softmax()
    (folder / "two.onnx").write_bytes(onnx_model)
    (folder / "kws.tflite").write_bytes(tflite_model)
    return {"folder": folder, "onnx": onnx_model, "tflite": tflite_model}


def _run(folder: Path, archive: Path, module: str, inputs: dict[str, np.ndarray]) -> dict:
    in_file, out_file = folder / f"{module}_in.npz", folder / f"{module}_out.npz"
    np.savez(in_file, **inputs)
    assert tvmc(["run", str(archive), "--module", module, "-i", str(in_file),
                 "-o", str(out_file)]) == 0
    with np.load(out_file) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("workspace", ["static", "shared"])
def test_run_in_both_workspace_modes_matches_references(models, workspace):
    folder = models["folder"]
    archive = folder / f"{workspace}.tar"
    assert tvmc(["compile-multi", f"{folder / 'two.onnx'}:vis", f"{folder / 'kws.tflite'}:kws",
                 "--workspace", workspace, "-j", "1", "-o", str(archive)]) == 0
    header = cbuild.extract(archive, folder / workspace) / "codegen/host/include/tvmgen_kws.h"
    declares_workspace_run = "tvmgen_kws_run(struct tvmgen_kws_inputs* inputs, " \
        "struct tvmgen_kws_outputs* outputs, void* workspace);" in header.read_text()
    assert declares_workspace_run == (workspace == "shared")

    rng = np.random.default_rng(7)
    a, b = (rng.standard_normal((1, 8)).astype(np.float32) for _ in range(2))
    got = _run(folder, archive, "vis", {"a": a, "b": b})
    want = references.run_onnxruntime(models["onnx"], {"a": a, "b": b})
    for name, expected in zip(["prod", "sum"], want):
        cbuild.assert_close(got[name], expected, f"vis {name} ({workspace})")

    x = rng.integers(-128, 128, (1, 8, 8, 3), dtype=np.int8)
    got = _run(folder, archive, "kws", {"x": x})
    want = references.run_litert(models["tflite"], [x], reference_kernels=True)
    cbuild.assert_close(got["y"], want[0], f"kws y ({workspace})")


def test_archive_refuses_macros_shared_by_two_modules(tmp_path):
    """Module `a` with tensor `b_x` and module `a_b` with tensor `x` would both define
    TVMGEN_A_B_X_SIZE in tvmgen_modules.h's translation unit."""
    from test_mlf import make_module
    from tvmc_multimodule.errors import UsageError
    from tvmc_multimodule.mlf import export_model_library_format

    clash = [make_module("a", in_name="b_x", in_c="b_x"), make_module("a_b")]
    with pytest.raises(UsageError, match="TVMGEN_A_B_X_SIZE"):
        export_model_library_format(clash, str(tmp_path / "m.tar"))
    assert not (tmp_path / "m.tar").exists()
    with pytest.raises(UsageError, match="reserved"):
        export_model_library_format([make_module("max")], str(tmp_path / "m.tar"))
