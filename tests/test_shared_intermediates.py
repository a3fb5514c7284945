"""Every intermediate int8 tensor of the shared vww int8 model, our generated C vs TFLite Micro.

The model's output is [7, -7] for every input (each layer attenuates its input: from ~4 layers
deep on, any input gives the same tensors), so comparing the output alone proves little. Here:

- `full`: the whole model with every operator's output made a model output (31 taps), fed the
  saved image and a random input; TFLite Micro runs the UNMODIFIED model with all tensors
  preserved, so the rewritten copy only changes what our C exposes, not the reference.
- `seg<k>`: operators k, k+1 as a model of their own, fed full-range random int8 data at
  operator k's input, so every operator of the depth computes on varied data (the
  deep layers otherwise only ever see the same constant tensor); TFLite Micro runs the
  same segment model.

All modules go through ONE compile-multi call into one program; every tap must be 0 LSB off.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli.driver import main as tvmc

MODEL = references.SHARED_MODELS / "tflite" / "vww_mobilenet_v1_025_int8.tflite"
SEGMENT = 2  # operators per segment model

pytestmark = [
    pytest.mark.shared_models,
    pytest.mark.skipif(not MODEL.is_file(), reason="../shared/models not present"),
]


def _rewired(data: bytes, first: int, last: int) -> bytes:
    """Operators first..last-1 of the main subgraph as a model: its input is operator `first`'s
    first input, its outputs every operator's output (tensors and buffers left as they are)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    operators = graph.operators[first:last]
    if first > 0:
        graph.inputs = np.array([operators[0].inputs[0]], dtype=np.int32)
    graph.operators = operators
    graph.outputs = np.array([op.outputs[0] for op in operators], dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _operator_outputs(data: bytes) -> list[int]:
    from tflite.Model import Model

    graph = Model.GetRootAs(data, 0).Subgraphs(0)
    return [graph.Operators(i).Outputs(0) for i in range(graph.OperatorsLength())]


def _tflm_all_tensors(data: bytes, x: np.ndarray, tensors: list[int]) -> list[np.ndarray]:
    """TFLite Micro on the unmodified model with every tensor preserved: the `tensors` after invoke."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(
        data, arena_size=references.DEFAULT_TFLM_ARENA,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    interpreter.set_input(np.ascontiguousarray(x), 0)
    interpreter.invoke()
    return [np.array(interpreter.GetTensor(t, 0)["tensor_data"]) for t in tensors]


@pytest.fixture(scope="module")
def taps(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("intermediates")
    data = MODEL.read_bytes()
    count = len(_operator_outputs(data))
    models = {"full": _rewired(data, 0, count)}
    models.update({f"seg{k}": _rewired(data, k, min(k + SEGMENT, count)) for k in range(0, count, SEGMENT)})
    for name, blob in models.items():
        (folder / f"{name}.tflite").write_bytes(blob)
    out = folder / "taps.tar"
    assert tvmc(["compile-multi", *[f"{folder / n}.tflite:{n}" for n in models], "-o", str(out)]) == 0
    loaded = load_model_library_format(str(out))
    root = cbuild.extract(out, folder / "mlf")
    spec = {n: (m.inputs, m.outputs) for n, m in loaded.modules.items()}
    rng = np.random.default_rng(7)
    sets = []
    for draw in range(2):
        inputs = {n: [references.random_array(m.inputs[0].shape, "int8", rng)] for n, m in loaded.modules.items()}
        if draw == 0:
            inputs["full"] = [references.shared_input("vww_mobilenet_v1_025", loaded.modules["full"].inputs[0])]
        run = cbuild.build_and_run if draw == 0 else cbuild.run_again
        ours = run(root, spec, inputs)
        expected = {n: references.run_tflite_micro(blob, inputs[n]) for n, blob in models.items() if n != "full"}
        expected["full"] = _tflm_all_tensors(data, inputs["full"][0], _operator_outputs(data))
        sets.append((ours, expected))
    return {"sets": sets, "count": count, "names": list(models)}


def test_every_intermediate_tensor_is_bit_exact_with_tflite_micro(taps: dict) -> None:
    compared = 0
    for draw, (ours, expected) in enumerate(taps["sets"]):
        for name in taps["names"]:
            assert len(ours[name]) == len(expected[name])
            for i, (a, e) in enumerate(zip(ours[name], expected[name])):
                assert a.dtype == np.int8 and a.shape == e.shape, f"{name} tap {i}"
                lsb = int(np.abs(a.astype(np.int16) - e.reshape(a.shape).astype(np.int16)).max())
                assert lsb == 0, f"draw {draw}, {name}: tap {i} is {lsb} LSB off TFLite Micro"
                compared += 1
    # 31 taps of the whole model + 31 of the segments, for each of the two inputs
    assert compared == 2 * 2 * taps["count"]


def test_every_operator_sees_varied_data(taps: dict) -> None:
    """The comparison is not of constants: each segment's first operator output changes with
    its input, and the shallow taps of the whole model change with the image."""
    (ours0, _), (ours1, _) = taps["sets"]
    for name in taps["names"]:
        if name != "full":
            assert not np.array_equal(ours0[name][0], ours1[name][0]), f"{name}: first output constant"
    assert not np.array_equal(ours0["full"][0], ours1["full"][0])
