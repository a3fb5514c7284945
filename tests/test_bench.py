"""bench/: the liveness lower bound on hand-made graphs, and `bench/run.py --quick` as a smoke test
(every JSON field for every model; no speed thresholds)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from builders.tflite_models import TFLiteGraph
from onnx import TensorProto, helper, numpy_helper

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str) -> ModuleType:
    """A bench module by file (bench/ is not a package and is not on sys.path)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def liveness() -> ModuleType:
    return _load("liveness")


# ---------------------------------------------------------------- liveness bound
# The chain used below: x[1,16] -FC(W1 const)-> h1[1,32] -RELU-> h2[1,32] -FC(W2 const)-> y[1,8],
# float32, so x = 64 B, h1 = h2 = 128 B, y = 32 B (the weights, 2048 B and 1024 B, are constants).
# Live at op 0: x + h1 = 192; op 1: h1 + h2 = 256; op 2: h2 + y = 160. Bound: 256 bytes.
CHAIN_BOUND = 256


def test_bound_of_hand_made_chain(liveness: ModuleType) -> None:
    op = liveness.Operator
    graph = liveness.Graph(
        operators=(op(("x", "W1"), ("h1",)), op(("h1",), ("h2",)), op(("h2", "W2"), ("y",))),
        nbytes={"x": 64, "W1": 2048, "h1": 128, "h2": 128, "W2": 1024, "y": 32},
        inputs=("x",), outputs=("y",), constants=frozenset({"W1", "W2"}))
    assert liveness.live_ranges(graph) == {"x": (0, 0), "h1": (0, 1), "h2": (1, 2), "y": (2, 2)}
    assert liveness.peak_live_bytes(graph) == CHAIN_BOUND


def test_inputs_live_from_start_and_outputs_to_end(liveness: ModuleType) -> None:
    # a -> op0 -> b (an output, never read again) ; c (an input first read at op 2)
    # op1: a -> d ; op2: c, d -> e (output). Sizes a=10, b=20, c=40, d=80, e=160.
    # op0: a + b + c = 70; op1: a + b + c + d = 150; op2: b + c + d + e = 300.
    op = liveness.Operator
    graph = liveness.Graph(
        operators=(op(("a",), ("b",)), op(("a",), ("d",)), op(("c", "d"), ("e",))),
        nbytes={"a": 10, "b": 20, "c": 40, "d": 80, "e": 160},
        inputs=("a", "c"), outputs=("b", "e"), constants=frozenset())
    assert liveness.live_ranges(graph)["b"] == (0, 2)
    assert liveness.live_ranges(graph)["c"] == (0, 2)
    assert liveness.peak_live_bytes(graph) == 300


def _tflite_chain() -> bytes:
    rng = np.random.default_rng(0)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 16])
    w1 = g.add_const("W1", rng.standard_normal((32, 16)).astype(np.float32))
    h1 = g.add_tensor("h1", [1, 32])
    h2 = g.add_tensor("h2", [1, 32])
    w2 = g.add_const("W2", rng.standard_normal((8, 32)).astype(np.float32))
    y = g.add_tensor("y", [1, 8])
    g.add_operator("FULLY_CONNECTED", [x, w1, -1], [h1])
    g.add_operator("RELU", [h1], [h2])
    g.add_operator("FULLY_CONNECTED", [h2, w2, -1], [y])
    g.set_io([x], [y])
    return g.to_bytes()


def _onnx_chain():
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((32, 16)).astype(np.float32), "W1"),
             numpy_helper.from_array(rng.standard_normal((8, 32)).astype(np.float32), "W2")]
    nodes = [helper.make_node("Gemm", ["x", "W1"], ["h1"], transB=1),
             helper.make_node("Relu", ["h1"], ["h2"]),
             helper.make_node("Gemm", ["h2", "W2"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_bound_from_tflite_flatbuffer(liveness: ModuleType) -> None:
    assert liveness.peak_live_bytes(liveness.tflite_graph(_tflite_chain())) == CHAIN_BOUND


def test_bound_from_onnx_graph(liveness: ModuleType) -> None:
    assert liveness.peak_live_bytes(liveness.onnx_graph(_onnx_chain())) == CHAIN_BOUND


def _onnx_qdq_chain():
    """x f32[1,16] -> Q -> DQ -> Gemm(DQ(W int8)) -> Relu -> Q -> DQ -> y f32[1,8]."""
    f32, i8 = np.float32, np.int8
    inits = [numpy_helper.from_array(np.ones((8, 16), i8), "W"),
             numpy_helper.from_array(f32(0.1), "s"), numpy_helper.from_array(i8(0), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             helper.make_node("DequantizeLinear", ["W", "s", "z"], ["wf"]),
             helper.make_node("Gemm", ["xf", "wf"], ["t"], transB=1),
             helper.make_node("Relu", ["t"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_bound_of_qdq_graph_counts_8_bit_tensors(liveness: ModuleType) -> None:
    """Folded: Q(x -> xq), Gemm(xq -> yq), Relu(yq -> yq), DQ(yq -> y). x = 64 B, xq = 16 B,
    yq = 8 B, y = 32 B. Op 0: x + xq = 80; op 1: xq + yq = 24; then yq (+ y) = 8, 40.
    Unfolded, the float t and r (32 B each) and xf (64 B) would count."""
    assert liveness.peak_live_bytes(liveness.onnx_graph(_onnx_qdq_chain())) == 80


# ---------------------------------------------------------------- run.py --quick


def _missing_keys(expected: dict, actual: dict, where: str) -> list[str]:
    missing = []
    for key, sub in expected.items():
        if key not in actual:
            missing.append(f"{where}.{key}")
        elif isinstance(sub, dict) and isinstance(actual[key], dict):
            missing += _missing_keys(sub, actual[key], f"{where}.{key}")
    return missing


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    result = subprocess.run([sys.executable, str(BENCH / "run.py"), "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"run.py failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return {"stdout": result.stdout, "json": json.loads(out.read_text())}


def test_quick_json_has_every_field(quick_run: dict) -> None:
    schema = _load("results").schema()
    models = quick_run["json"]["models"]
    assert {m["format"] for m in models} == {"tflite", "onnx"}
    for model in models:
        assert _missing_keys(schema, model, model["name"]) == []
        assert model["errors"] == []
        assert None not in model["compile"].values()
        assert model["latency_ms"]["ours"] > 0
        assert model["accuracy"]["max_diff"] is not None
        ram = model["ram_bytes"]
        assert None not in (ram["workspace"], ram["io"], ram["ours"], ram["liveness_bound"])
        flash = model["flash_bytes"]
        assert flash["constants"] is not None and flash["model_file"] > 0
        assert set(flash["host"]) == {"text", "rodata", "data", "bss"}
        if shutil.which("arm-none-eabi-gcc"):
            assert set(flash["arm"]) == {"text", "rodata", "data", "bss"}
        runtimes = ["tflite_micro", "litert"] if model["format"] == "tflite" else ["onnxruntime"]
        for runtime in runtimes:
            assert model["latency_ms"][runtime] > 0 and model["ratio"][runtime] > 0
            assert runtime in model["accuracy"]["vs"]
        if model["format"] == "tflite":
            assert ram["tflite_micro_arena"] > 0


def test_quick_prints_one_row_per_model(quick_run: dict) -> None:
    lines = quick_run["stdout"].splitlines()
    for model in quick_run["json"]["models"]:
        assert sum(line.startswith(model["name"] + " ") for line in lines) == 1


# ---------------------------------------------------------------- cortex_m.py


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_cortex_m_instruction_counts_are_deterministic(tmp_path: Path) -> None:
    """The same firmware counted twice gives the same instructions, and the per-inference
    count of a small int8 model is positive."""
    from builders.tflite_models import int8_conv_fc_softmax

    cortex_m = _load("cortex_m")
    path = tmp_path / "tiny.tflite"
    path.write_bytes(int8_conv_fc_softmax())
    counts = []
    for k in range(2):
        work = tmp_path / f"run{k}"
        work.mkdir()
        counts.append(cortex_m.instructions(path, "scalar", 1, work)[0])
    assert counts[0] == counts[1] > 0


# ---------------------------------------------------------------- tflite_taps.py


def test_tflite_taps_compares_an_intermediate_tensor(tmp_path: Path) -> None:
    """x -CONV_2D-> h -LOGISTIC-> y: the tool exposes h (not a model output), and our h agrees
    with both LiteRT kernel sets and with the layer in float64 (--float64) to float rounding."""
    rng = np.random.default_rng(0)
    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 8, 8, 3])
    w = g.add_const("w", rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32))
    b = g.add_const("b", rng.normal(0, 0.1, (4,)).astype(np.float32))
    h = g.add_tensor("h", [1, 8, 8, 4])
    y = g.add_tensor("y", [1, 8, 8, 4])
    g.add_operator("CONV_2D", [x, w, b], [h], ("Conv2DOptions", {
        "Padding": 0, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1, "DilationHFactor": 1}))
    g.add_operator("LOGISTIC", [h], [y])
    g.set_io([x], [y])
    model = tmp_path / "two.tflite"
    model.write_bytes(g.to_bytes())
    result = subprocess.run([sys.executable, str(BENCH / "tflite_taps.py"), str(model),
                             "--workdir", str(tmp_path / "work"), "--float64"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split()[1]: [float(v) for v in line.split()[2:] if v != "|"]
            for line in result.stdout.splitlines() if line.split()[1:2] in (["CONV_2D"], ["LOGISTIC"])}
    assert set(rows) == {"CONV_2D", "LOGISTIC"}
    assert all(len(r) == 7 for r in rows.values())  # max |x|, 3 differences, 3 float64 errors
    assert rows["CONV_2D"][0] > 0.1  # max |h|: the conv's output really is read back
    assert all(d < 1e-5 for d in rows["CONV_2D"][1:] + rows["LOGISTIC"][1:])
