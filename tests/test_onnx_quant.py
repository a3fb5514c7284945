"""Quantised ONNX models (QDQ form, and onnxruntime's QOperator form rewritten to QDQ by
`frontends/onnx_qoperator.py`): compiled into ONE archive, built into ONE program with gcc,
run on several random inputs (the first saturating) and compared with an exact reference
(`onnx_exact`: onnx's ReferenceEvaluator, quantisation in float64, onnxruntime's com.microsoft
QOperators from their definitions): integer outputs within 1 LSB, float outputs of a final
DequantizeLinear within one quantisation step. onnxruntime is not the reference here: its u8s8
integer GEMM saturates on CPUs without AVX-VNNI, so its verdict would depend on the machine."""
from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import cbuild
import references
from onnx_exact import run_onnx_exact
from builders import onnx_models, onnx_quant_models
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule.errors import UnsupportedError
from tvmc_multimodule.frontends.onnx import unsupported_features
from tvmc_multimodule.frontends.onnx_qoperator import rewrite_qoperators

CASES = {**onnx_quant_models.qdq_models(), **onnx_quant_models.qoperator_models()}
RUNS = 3  # input sets per model: 14 models x 3 = 42 inputs
SHARED = references.SHARED_MODELS / "onnx"
KWS = SHARED / "torch_dscnn_kws_int8_qdq.onnx"
KWS_INPUT = SHARED / "torch_dscnn_kws_input.npy"


def _input(shape, dtype, rng: np.random.Generator, saturate: bool) -> np.ndarray:
    """Integers over the full range (only the extremes when `saturate`); floats in [-1.5, 1.5)
    (beyond the models' [-1, 1] input range: the input quantisation saturates)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if saturate:
            return rng.choice(np.array([info.min, info.max], dtype), size=tuple(shape))
        return references.random_array(shape, dtype, rng)
    high = 4.0 if saturate else 1.5
    return rng.uniform(-high, high, size=tuple(shape)).astype(dtype)


def _output_steps(model: onnx.ModelProto) -> dict[str, float]:
    """Output name -> scale of the DequantizeLinear producing it (float outputs only)."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n.output[0]: float(inits[n.input[1]].max()) for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[1] in inits}


def _lsb(actual: np.ndarray, expected: np.ndarray, step: float | None) -> float:
    """Largest difference in output quantisation steps (integers: in LSB)."""
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max(initial=0)
    return float(diff / step) if step else float(diff)


@pytest.fixture(scope="module")
def quant_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[float]]:
    """name -> the LSB difference of every (input set, output) pair."""
    root = tmp_path_factory.mktemp("onnx_quant")
    rng = np.random.default_rng(2024)
    compiled, models = [], {}
    for name, build in CASES.items():
        models[name] = build()
        path = root / f"{name}.onnx"
        onnx_models.save(models[name], path)
        compiled.append(compile_model(str(path), module_name=name))
    archive = export_model_library_format(compiled, str(root / "quant.tar"))
    extracted = cbuild.extract(archive, root / "mlf")
    modules = {m.name: (m.inputs, m.outputs) for m in compiled}
    diffs: dict[str, list[float]] = {name: [] for name in CASES}
    for run in range(RUNS):
        inputs = {m.name: [_input(t.shape, t.dtype, rng, saturate=run == 0) for t in m.inputs]
                  for m in compiled}
        if run == 0:
            outputs = cbuild.build_and_run(extracted, modules, inputs)
        else:
            outputs = cbuild.run_again(extracted, modules, inputs)
        for m in compiled:
            expected = run_onnx_exact(
                models[m.name], {t.name: x for t, x in zip(m.inputs, inputs[m.name])})
            steps = _output_steps(models[m.name])
            for t, a, e in zip(m.outputs, outputs[m.name], expected):
                assert a.dtype == e.dtype, f"{m.name}: {a.dtype} != {e.dtype}"
                diffs[m.name].append(_lsb(a, np.asarray(e), steps.get(t.name)))
    return diffs


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_exact_reference_within_one_lsb(quant_run: dict, name: str) -> None:
    worst = max(quant_run[name])
    # float outputs: one step plus float32 rounding of the dequantised value
    assert worst <= 1.0 + 1e-3, f"{name}: {worst:.3f} LSB off the exact reference ({quant_run[name]})"


def test_enough_inputs_compared(quant_run: dict) -> None:
    assert sum(len(v) for v in quant_run.values()) >= 20


@pytest.mark.parametrize("name", sorted(onnx_quant_models.qoperator_models()))
def test_qoperators_are_rewritten_to_standard_operators(name: str) -> None:
    model = rewrite_qoperators(CASES[name]())
    assert unsupported_features(model) == []
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    onnx.checker.check_model(model)


def test_unknown_qoperator_stays_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "leaky.onnx"
    onnx_models.save(onnx_quant_models.qop_unsupported(), path)
    with pytest.raises(UnsupportedError) as caught:
        compile_model(str(path), module_name="bad")
    assert "com.microsoft.QLinearReduceMean" in caught.value.one_line()


def test_float_models_are_not_copied() -> None:
    model = onnx_models.conv2d()
    assert rewrite_qoperators(model) is model


SHARED_QDQ = {"kws_qdq": KWS, "mobilenet_v2_qdq": SHARED / "torchvision_mobilenet_v2_int8_qdq.onnx"}


@pytest.mark.shared_models
@pytest.mark.parametrize("name", sorted(SHARED_QDQ))
def test_shared_qdq_models_on_integer_kernels(tmp_path: Path, name: str) -> None:
    """onnxruntime's QDQ DS-CNN and MobileNetV2: integer kernels, workspace at the liveness
    bound, within one output step of the exact reference on the saved input and random ones."""
    path = SHARED_QDQ[name]
    if not path.exists() or not KWS_INPUT.exists():
        pytest.skip("shared models absent")
    model = onnx.load(str(path))
    module = compile_model(str(path), module_name=name)
    assert "i8_mul64" in module.sources[f"{name}_lib0.c"]
    assert module.workspace_bytes <= 1.05 * module.liveness_bound_bytes
    rng = np.random.default_rng(3)
    shape = module.inputs[0].shape
    inputs = [rng.standard_normal(shape).astype(np.float32) * s for s in (0.5, 2.0)]
    if name == "kws_qdq":
        inputs.insert(0, np.load(KWS_INPUT).astype(np.float32))
    extracted = cbuild.extract(export_model_library_format([module], str(tmp_path / "m.tar")),
                               tmp_path / "mlf")
    spec = {module.name: (module.inputs, module.outputs)}
    steps = _output_steps(model)
    for k, x in enumerate(inputs):
        run = cbuild.build_and_run if k == 0 else lambda _, s, i: cbuild.run_again(extracted, s, i)
        actual = run(extracted, spec, {module.name: [x]})[module.name]
        expected = run_onnx_exact(model, {module.inputs[0].name: x})
        for t, a, e in zip(module.outputs, actual, expected):
            top_actual, top_expected = int(np.argmax(a)), int(np.argmax(e))  # short messages
            assert top_actual == top_expected, f"input {k}: class {top_actual} != {top_expected}"
            steps_off = _lsb(a, np.asarray(e), steps.get(t.name))
            assert steps_off <= 1.0 + 1e-3, f"input {k}: {steps_off:.3f} steps off"


# ---------------------------------------------------------------- the integer kernels

FLOAT_ONLY = {"qop_matmul_integer": "int32 output (integer maths already, no QDQ)",
              "qdq_outside_pattern": "float tensors between operators"}
TABLE_ENTRIES = 256  # DEQUANTIZE at a float output is a 256-entry float table


def _compile(tmp_path: Path, name: str, **options) -> object:
    path = tmp_path / f"{name}.onnx"
    onnx_models.save(CASES[name](), path)
    return compile_model(str(path), module_name=name, **options)


@pytest.mark.parametrize("name", sorted(set(CASES) - set(FLOAT_ONLY)))
def test_quantised_models_run_on_integer_kernels(tmp_path: Path, name: str) -> None:
    """Weights stay 8-bit in the constants; the only float constants are 256-entry tables."""
    module = _compile(tmp_path, name)
    floats = [a for a in module.params.values() if a.dtype == np.float32]
    assert all(a.size <= TABLE_ENTRIES for a in floats), [a.shape for a in floats]
    assert "i8_mul64" in module.sources[f"{name}_lib0.c"]  # the integer requantisation


@pytest.mark.parametrize("name", sorted(FLOAT_ONLY))
def test_other_quantised_models_take_the_float_form(tmp_path: Path, name: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        module = _compile(tmp_path, name)
    assert "i8_mul64" not in module.sources[f"{name}_lib0.c"]
    if name == "qdq_outside_pattern":
        assert "not on integer kernels" in caplog.text and "'c_node'" in caplog.text
        with pytest.raises(UnsupportedError, match="strict int8"):
            _compile(tmp_path, name, strict_int8=True)


def test_operator_without_integer_kernel_is_named(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """ReduceMax keeps its float form inside an integer model."""
    with caplog.at_level(logging.WARNING):
        module = _compile(tmp_path, "qdq_float_form")
    assert "run in float" in caplog.text and "ReduceMax" in caplog.text
    assert any(a.dtype == np.int8 and a.ndim == 4 for a in module.params.values())
    with pytest.raises(UnsupportedError, match="ReduceMax"):
        _compile(tmp_path, "qdq_float_form", strict_int8=True)


def test_integer_io_keeps_its_quantisation(tmp_path: Path) -> None:
    """uint8 in and out (moved to int8 inside): the header describes the file's parameters."""
    module = _compile(tmp_path, "qop_conv")
    scale, zero = onnx_quant_models.qparams(-1.0, 1.0, np.uint8)
    assert module.inputs[0].dtype == "uint8"
    assert module.inputs[0].quant.zero_point == (int(zero),)
    assert module.inputs[0].quant.scale == pytest.approx((float(scale),))
    assert module.outputs[0].dtype == "uint8" and module.outputs[0].quant is not None


@pytest.mark.skipif(not cbuild.have("arm-none-eabi-gcc") and not os.environ.get("CI"),
                    reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4"])
def test_cortex_m_build_needs_no_float_or_library_calls(tmp_path: Path, cpu: str) -> None:
    """QDQ models with float edges (quantised by comparing float bits, dequantised by a table)
    compile with -Werror and call nothing: no soft float, no division, no libm."""
    names = ["qdq_cnn", "qdq_elementwise", "qdq_layout", "qop_conv"]
    modules = [_compile(tmp_path, name) for name in names]
    root = cbuild.extract(export_model_library_format(modules, str(tmp_path / "m.tar")),
                          tmp_path / "mlf")
    for name in names:
        for src in cbuild.module_sources(root, name):
            obj = tmp_path / f"{src.stem}_{cpu}.o"
            cmd = ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", *cbuild.STRICT, "-O2", "-c",
                   "-I", str(root / "codegen" / "host" / "include"), str(src), "-o", str(obj)]
            result = subprocess.run(cmd, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr[:3000]
            undefined = set(subprocess.run(["arm-none-eabi-nm", "-u", str(obj)],
                                           capture_output=True, text=True).stdout.split())
            foreign = {u for u in undefined - {"U", "memcpy", "memset"}
                       if not u.startswith(f"tvmgen_{name}_")}
            assert not foreign, (src.name, sorted(foreign))


def test_uint8_io_header_macros_compile_and_saturate(tmp_path: Path) -> None:
    module = _compile(tmp_path, "qop_conv")  # x: scale 2/255, zero point 127
    root = cbuild.extract(export_model_library_format([module], str(tmp_path / "m.tar")),
                          tmp_path / "mlf")
    (tmp_path / "m.c").write_text(
        '#include <stdio.h>\n#include "tvmgen_qop_conv.h"\n'
        "int main(void) { uint8_t q = TVMGEN_QOP_CONV_X_QUANTIZE(0.5f);\n"
        "  float r = TVMGEN_QOP_CONV_X_DEQUANTIZE(q);\n"
        "  uint8_t hi = TVMGEN_QOP_CONV_X_QUANTIZE(1000.0f), lo = TVMGEN_QOP_CONV_X_QUANTIZE(-9.0f);\n"
        '  printf("%d %.4f %d %d\\n", q, r, hi, lo); return 0; }\n')
    cbuild.build_program(root, tmp_path / "m.c", [], tmp_path / "m", flags=[])
    out = subprocess.run([str(tmp_path / "m")], capture_output=True, text=True).stdout.split()
    assert out == ["191", "0.5020", "255", "0"]  # round(0.5 / (2/255)) + 127; saturated


# ---------------------------------------------------------------- onnxruntime's own quantiser

ORT_VARIANTS = [(fmt, act, per_channel) for fmt in ("QDQ", "QOperator")
                for act in ("QInt8", "QUInt8") for per_channel in (True, False)]
ORT_RUNS = 3


def _ort_name(fmt: str, act: str, per_channel: bool) -> str:
    return f"ort_{fmt.lower()}_{act.lower()}_{'channel' if per_channel else 'tensor'}"


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def ort_quantised(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The float CNN quantised by onnxruntime.quantization.quantize_static in 8 ways (QDQ and
    QOperator; int8 and uint8 activations; per-channel and per-tensor int8 weights), compiled
    into ONE archive and ONE program, run on ORT_RUNS inputs beside the exact reference."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(1)
            self.batches = iter([{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}
                                 for _ in range(8)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    root = tmp_path_factory.mktemp("ort_quant")
    float_path = root / "float_cnn.onnx"
    onnx_models.save(onnx_quant_models.float_cnn_for_quantisation(), float_path)
    warnings = _Warnings()
    logging.getLogger("tvmc_multimodule").addHandler(warnings)
    compiled, models = [], {}
    try:
        for fmt, act, per_channel in ORT_VARIANTS:
            name = _ort_name(fmt, act, per_channel)
            path = root / f"{name}.onnx"
            quantize_static(str(float_path), str(path), Calibration(),
                            quant_format=getattr(QuantFormat, fmt),
                            activation_type=getattr(QuantType, act),
                            weight_type=QuantType.QInt8, per_channel=per_channel)
            models[name] = onnx.load(str(path))
            compiled.append(compile_model(str(path), module_name=name))
    finally:
        logging.getLogger("tvmc_multimodule").removeHandler(warnings)
    extracted = cbuild.extract(export_model_library_format(compiled, str(root / "ort.tar")),
                               root / "mlf")
    spec = {m.name: (m.inputs, m.outputs) for m in compiled}
    rng = np.random.default_rng(9)
    steps: dict[str, list[float]] = {m.name: [] for m in compiled}
    for run in range(ORT_RUNS):
        x = (rng.standard_normal((1, 3, 16, 16)) * (0.5 + run)).astype(np.float32)
        inputs = {m.name: [x] for m in compiled}
        outputs = (cbuild.build_and_run(extracted, spec, inputs) if run == 0
                   else cbuild.run_again(extracted, spec, inputs))
        for m in compiled:
            expected = run_onnx_exact(models[m.name], {"x": x})[0]
            step = _output_steps(models[m.name]).get(m.outputs[0].name)
            steps[m.name].append(_lsb(outputs[m.name][0], np.asarray(expected), step))
    return {"steps": steps, "modules": {m.name: m for m in compiled},
            "warnings": warnings.messages}


@pytest.mark.parametrize("variant", ORT_VARIANTS, ids=lambda v: _ort_name(*v))
def test_onnxruntime_quantised_models_within_one_step(ort_quantised: dict, variant) -> None:
    name = _ort_name(*variant)
    assert max(ort_quantised["steps"][name]) <= 1.0 + 1e-3, ort_quantised["steps"][name]
    assert len(ort_quantised["steps"][name]) == ORT_RUNS


@pytest.mark.parametrize("variant", ORT_VARIANTS, ids=lambda v: _ort_name(*v))
def test_onnxruntime_quantised_models_are_integer_only(ort_quantised: dict, variant) -> None:
    """Every operator of every variant (residual Add, Concat of differently quantised
    branches, Sigmoid, Softmax...) on an integer kernel: no float-form warning, no expf."""
    name = _ort_name(*variant)
    module = ort_quantised["modules"][name]
    assert not [w for w in ort_quantised["warnings"] if f"'{name}'" in w]
    assert "i8_mul64" in module.sources[f"{name}_lib0.c"]
    assert not any("expf" in text for text in module.sources.values())


def test_requant_even_rounds_once_half_to_even(tmp_path: Path) -> None:
    """The ONNX rounding helper against exact rational arithmetic: acc * m * 2^(s - 31)
    rounded half to even, on random operands and exact ties (m a power of two)."""
    from fractions import Fraction

    from tvmc_multimodule.kernels import CHelpers

    rng = np.random.default_rng(0)
    count = 20000
    acc = rng.integers(-2**24, 2**24, count)
    acc[:500] = rng.integers(-300, 300, 500)
    m = rng.integers(2**30, 2**31, count)
    s = rng.integers(-30, 3, count)
    m[500:1500], acc[500:1500], s[500:1500] = 2**30, rng.integers(-999, 999, 1000), -3
    np.stack([acc, m, s], 1).astype(np.int32).tofile(tmp_path / "in.bin")
    (tmp_path / "t.c").write_text(
        "#include <stdint.h>\n#include <stdio.h>\n" + CHelpers("t_").source() +
        "int main(void) { FILE* f = fopen(\"in.bin\", \"rb\"); FILE* o = fopen(\"out.bin\", \"wb\");\n"
        "  int32_t v[3], r;\n  while (fread(v, 4, 3, f) == 3) {\n"
        "    r = t_i8_requant_even(v[0], v[1], v[2], 0, INT32_MIN, INT32_MAX);\n"
        "    fwrite(&r, 4, 1, o);\n  }\n  fclose(o); fclose(f); return 0;\n}\n")
    subprocess.run(["gcc", *cbuild.STRICT, "-O2", str(tmp_path / "t.c"), "-o", str(tmp_path / "t")],
                   check=True)
    subprocess.run([str(tmp_path / "t")], cwd=tmp_path, check=True)
    actual = np.fromfile(tmp_path / "out.bin", np.int32)

    def exact(a: int, mm: int, ss: int) -> int:
        value = Fraction(a * mm, 2 ** (31 - ss))
        low = value.numerator // value.denominator
        rest = value - low
        return low + (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and low % 2 == 1))

    wrong = [i for i in range(count) if exact(int(acc[i]), int(m[i]), int(s[i])) != actual[i]]
    assert not wrong, [(int(acc[i]), int(m[i]), int(s[i]), int(actual[i])) for i in wrong[:5]]
