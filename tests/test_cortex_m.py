"""The archive's C running on an emulated Cortex-M4F (QEMU mps2-an386): several modules (float
ONNX and TFLite, int8 TFLite) in one firmware image, built through a `tvmc micro` project with
arm-none-eabi-gcc -Werror, outputs compared with the reference runtimes. Skipped when the ARM
toolchain or QEMU is missing (CI installs both)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_models
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule.micro import create_project, load_board
from tvmc_multimodule.micro.emulator import run_module
from tvmc_multimodule.micro.firmware import build

pytestmark = pytest.mark.arm


def test_modules_run_on_an_emulated_cortex_m4(tmp_path: Path) -> None:
    cbuild.need_tools("arm-none-eabi-gcc", "qemu-system-arm", "make")
    sources = {
        "anomaly": (tmp_path / "ad.onnx", onnx_models.gemm().SerializeToString()),
        "vision": (tmp_path / "conv.onnx", onnx_models.conv2d().SerializeToString()),
        "kws": (tmp_path / "kws.tflite", tflite_models.depthwise_conv2d()),
        "kws8": (tmp_path / "kws8.tflite", tflite_models.int8_conv_fc_softmax()),
    }
    modules = []
    for name, (path, data) in sources.items():
        path.write_bytes(data)
        modules.append(compile_model(str(path), module_name=name, target="c -mcpu=cortex-m4"))
    archive = export_model_library_format(modules, str(tmp_path / "m.tar"))
    create_project(str(tmp_path / "fw"), archive, load_board("mps2_an386"))
    project, elf = build(str(tmp_path / "fw"))
    rng = np.random.default_rng(11)
    for m in modules:
        path, data = sources[m.name]
        xs = [references.random_array(t.shape, t.dtype, rng) for t in m.inputs]
        got, _ = run_module(project, elf, m.name, xs, str(tmp_path / f"io_{m.name}"))
        expected = (references.run_litert(data, xs) if path.suffix == ".tflite" else
                    references.run_onnxruntime(data, {t.name: x for t, x in zip(m.inputs, xs)}))
        for i, t in enumerate(m.outputs):
            cbuild.assert_close(got[t.name], np.asarray(expected[i]),
                                f"{m.name} output {i} on Cortex-M4")
