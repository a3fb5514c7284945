"""The archive's C running on an emulated Cortex-M4F (QEMU mps2-an386): several modules, one
firmware image built with arm-none-eabi-gcc -Werror, outputs compared with the reference
runtimes. Skipped when the ARM toolchain or QEMU is missing (CI installs both)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_models
from tvmc_multimodule import compile_model, export_model_library_format

HERE = Path(__file__).resolve().parent / "cortex_m"
CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2",
          *cbuild.STRICT]
TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")

pytestmark = pytest.mark.arm


def _need_tools() -> None:
    missing = [t for t in TOOLS if not cbuild.have(t)]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {missing} (.ci/run installs them)")
        pytest.skip(f"{missing} not installed")


def _c_bytes(name: str, data: bytes) -> str:
    body = ",".join(str(b) for b in data) or "0"
    return f"static const _Alignas(16) unsigned char {name}[] = {{{body}}};"


def _firmware_main(modules: list, inputs: dict[str, list[np.ndarray]]) -> str:
    lines = ["#include <stdio.h>", "#include <string.h>", '#include "tvmgen_modules.h"']
    for m in modules:
        for i, x in enumerate(inputs[m.name]):
            lines.append(_c_bytes(f"{m.name}_in{i}", x.tobytes()))
        for i, t in enumerate(m.outputs):
            lines.append(f"static _Alignas(16) unsigned char {m.name}_out{i}[{t.nbytes}];")
    lines += ["static void dump(const char* tag, const unsigned char* p, unsigned n) {",
              '  unsigned i; printf("%s ", tag);',
              '  for (i = 0; i < n; ++i) printf("%02x", p[i]);', '  printf("\\n"); }',
              "int main(void) {"]
    for m in modules:
        p = f"tvmgen_{m.name}"
        lines.append(f"  {{ struct {p}_inputs in; struct {p}_outputs out;")
        lines += [f"    in.{t.c_name} = (void*){m.name}_in{i};" for i, t in enumerate(m.inputs)]
        lines += [f"    out.{t.c_name} = {m.name}_out{i};" for i, t in enumerate(m.outputs)]
        lines.append(f"    if ({p}_run(&in, &out) != 0) return 1;")
        lines += [f'    dump("{m.name}_out{i}", {m.name}_out{i}, sizeof({m.name}_out{i}));'
                  for i in range(len(m.outputs))]
        lines.append("  }")
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


def test_modules_run_on_an_emulated_cortex_m4(tmp_path: Path) -> None:
    _need_tools()
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
    root = cbuild.extract(export_model_library_format(modules, str(tmp_path / "m.tar")),
                          tmp_path / "mlf")
    rng = np.random.default_rng(11)
    inputs = {m.name: [references.random_array(t.shape, t.dtype, rng) for t in m.inputs]
              for m in modules}
    (tmp_path / "main.c").write_text(_firmware_main(modules, inputs))
    srcs = [str(p) for m in modules for p in cbuild.module_sources(root, m.name)]
    elf = tmp_path / "app.elf"
    build = subprocess.run(
        ["arm-none-eabi-gcc", *CFLAGS, "-I", str(root / "codegen/host/include"),
         str(HERE / "startup.c"), str(tmp_path / "main.c"), *srcs, "-T", str(HERE / "link.ld"),
         "--specs=rdimon.specs", "-nostartfiles", "-lm", "-o", str(elf)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[:3000]
    run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting-config",
                          "enable=on,target=native", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    dumps = dict(line.split(" ", 1) for line in run.stdout.splitlines() if "_out" in line)
    for m in modules:
        path, data = sources[m.name]
        xs = inputs[m.name]
        expected = (references.run_litert(data, xs) if path.suffix == ".tflite" else
                    references.run_onnxruntime(data, {t.name: x for t, x in zip(m.inputs, xs)}))
        for i, t in enumerate(m.outputs):
            got = np.frombuffer(bytes.fromhex(dumps[f"{m.name}_out{i}"].strip()),
                                dtype=t.dtype).reshape(t.shape)
            cbuild.assert_close(got, np.asarray(expected[i]), f"{m.name} output {i} on Cortex-M4")
