"""Every small test model: compiled, put in ONE archive, built into ONE program with gcc
-Wall -Wextra -Werror, run, and compared with onnxruntime / LiteRT; once per operator
schedule variant (vector, scalar and unscheduled), each against the reference runtime."""
from __future__ import annotations


import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_models
from tvmc_multimodule import compile_model, export_model_library_format


def _cases() -> dict[str, tuple[str, object]]:
    cases: dict[str, tuple[str, object]] = {}
    for key, build in onnx_models.good_models().items():
        cases["onnx_" + key] = ("onnx", build)
    for key, build in tflite_models.good_models().items():
        cases["tfl_" + key] = ("tflite", build)
    return cases


CASES = _cases()


@pytest.fixture(scope="module", params=["vector", "scalar", "none"])
def coverage_run(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp(f"coverage_{request.param}")
    rng = np.random.default_rng(1234)
    compiled, inputs, references_out = [], {}, {}
    for name, (fmt, build) in CASES.items():
        model = build()
        path = root / f"{name}.{fmt}"
        if fmt == "onnx":
            onnx_models.save(model, path)
        else:
            path.write_bytes(model)
        module = compile_model(str(path), module_name=name, schedule=request.param)
        xs = [references.random_array(t.shape, t.dtype, rng) for t in module.inputs]
        if fmt == "onnx":
            expected = references.run_onnxruntime(model, {t.name: x for t, x in zip(module.inputs, xs)})
        else:
            expected = references.run_litert(model, xs)
        compiled.append(module)
        inputs[name] = xs
        references_out[name] = expected
    archive = export_model_library_format(compiled, str(root / "coverage.tar"))
    extracted = cbuild.extract(archive, root / "mlf")
    outputs = cbuild.build_and_run(extracted, {m.name: (m.inputs, m.outputs) for m in compiled},
                                   inputs)
    return {"outputs": outputs, "expected": references_out,
            "modules": {m.name: m for m in compiled}}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference_runtime(coverage_run: dict, name: str) -> None:
    actual, expected = coverage_run["outputs"][name], coverage_run["expected"][name]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        cbuild.assert_close(a, np.asarray(e), f"{name} output {i}")


def test_outputs_keep_declared_shapes(coverage_run: dict) -> None:
    module = coverage_run["modules"]["onnx_two_in_two_out"]
    assert [t.shape for t in module.outputs] == [(1, 4), (1, 8)]
    assert [t.name for t in module.outputs] == ["prod", "sum"]


def test_tensor_names_become_unique_c_identifiers(coverage_run: dict) -> None:
    module = coverage_run["modules"]["onnx_weird_names"]
    assert [t.c_name for t in module.inputs] == ["gpu_0_data_0"]
    assert [t.c_name for t in module.outputs] == ["out_0"]


def test_constants_text_is_compact(coverage_run: dict) -> None:
    for module in coverage_run["modules"].values():
        if module.constants_bytes >= 1024:
            runner = module.sources[f"{module.name}_lib1.c"]
            const_text = sum(len(line) + 1 for line in runner.splitlines()
                             if line.startswith("  0x"))
            assert const_text < 4 * module.constants_bytes, module.name
