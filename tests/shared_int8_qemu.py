"""The four shared MLPerf-Tiny int8 models in one firmware on QEMU's Cortex-M4, each output
compared with TFLite Micro on the given input and on a random one. Used by the DSP-kernel and
the CMSIS-NN tests, which differ only in the target and the CMSIS-NN path."""
from __future__ import annotations

from pathlib import Path

import numpy as np

import references
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule.micro import create_project, load_board
from tvmc_multimodule.micro.emulator import run_module
from tvmc_multimodule.micro.firmware import build

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "tflite"
SHARED_MODELS = ("kws_dscnn", "vww_mobilenet_v1_025", "ic_resnet8", "ad_autoencoder")


def _quantised_given_input(name: str, module: object) -> np.ndarray:
    q = module.inputs[0].quant
    real = np.load(SHARED / f"{name}_input.npy").astype(np.float32)
    given = np.clip(np.round(real / q.scale[0]) + q.zero_point[0], -128, 127)
    return given.astype(np.int8).reshape(module.inputs[0].shape)


def assert_shared_int8_bit_exact_on_qemu(tmp_path: Path, target: str,
                                         cmsis_nn_path: str | None = None) -> list:
    """Compiles the four models for `target` into one archive and one mps2-an386 firmware and
    asserts every output equals TFLite Micro's; returns the compiled modules."""
    modules, data = [], {}
    for name in SHARED_MODELS:
        path = SHARED / f"{name}_int8.tflite"
        data[name] = path.read_bytes()
        modules.append(compile_model(str(path), module_name=name.split("_")[0], target=target))
    archive = export_model_library_format(modules, str(tmp_path / "m.tar"))
    create_project(str(tmp_path / "fw"), archive, load_board("mps2_an386"),
                   cmsis_nn_path=cmsis_nn_path)
    project, elf = build(str(tmp_path / "fw"))
    rng = np.random.default_rng(3)
    for name, module in zip(SHARED_MODELS, modules):
        shape = module.inputs[0].shape
        inputs = [_quantised_given_input(name, module),
                  rng.integers(-128, 128, shape).astype(np.int8)]
        for k, x in enumerate(inputs):
            got, _ = run_module(project, elf, module.name, [x], str(tmp_path / f"io_{name}{k}"))
            want = np.asarray(references.run_tflite_micro(data[name], [x])[0]).reshape(-1)
            have = got[module.outputs[0].name].reshape(-1).astype(np.int32)
            assert have.size == want.size > 1, name
            assert np.array_equal(have, want.astype(np.int32)), name
    return modules
