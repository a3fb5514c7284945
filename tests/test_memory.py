"""Memory planning: hand-computed liveness bounds, a no-overlap check of every plan, and all
modules of one archive running from ONE shared arena filled with garbage before each run."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper

import cbuild
import references
from builders import onnx_models, tflite_models
from tvmc_multimodule import compile_model, export_model_library_format, pipeline
from tvmc_multimodule.frontends import import_model

F32 = 4


def _graph(nodes: list, weights: dict[str, tuple[int, int]], seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)
             for name, shape in weights.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def chain() -> onnx.ModelProto:
    """x -> matmul+relu -> a -> matmul+relu -> b -> matmul -> y: a and b live together once."""
    n = helper.make_node
    return _graph([n("MatMul", ["x", "W1"], ["a0"]), n("Relu", ["a0"], ["a"]),
                   n("MatMul", ["a", "W2"], ["b0"]), n("Relu", ["b0"], ["b"]),
                   n("MatMul", ["b", "W3"], ["y"])], {f"W{i}": (64, 64) for i in (1, 2, 3)})


def residual() -> onnx.ModelProto:
    """a = x W1; c = x W2 + a; y = c W3: the add is element-for-element on a, which dies there,
    so c may take a's place."""
    n = helper.make_node
    return _graph([n("MatMul", ["x", "W1"], ["a"]), n("MatMul", ["x", "W2"], ["b"]),
                   n("Add", ["a", "b"], ["c"]), n("MatMul", ["c", "W3"], ["y"])],
                  {f"W{i}": (64, 64) for i in (1, 2, 3)})


def branch() -> onnx.ModelProto:
    """a = x W1 [1,32]; b = x W2 [1,32]; c = concat(a, b) [1,64]; y = c W3."""
    n = helper.make_node
    return _graph([n("MatMul", ["x", "W1"], ["a"]), n("MatMul", ["x", "W2"], ["b"]),
                   n("Concat", ["a", "b"], ["c"], axis=1), n("MatMul", ["c", "W3"], ["y"])],
                  {"W1": (64, 32), "W2": (64, 32), "W3": (64, 64)})


# hand-computed: bytes live together at the worst step
EXPECTED_BOUND = {
    "chain": 2 * 64 * F32,          # a and b while the second matmul runs
    "residual": 64 * F32,           # a, then c in a's place
    "branch": (32 + 32 + 64) * F32,  # a, b and c while the concat runs
}
BUILDERS = {"chain": chain, "residual": residual, "branch": branch}


def _plan(path: Path, name: str) -> tuple[object, dict, object]:
    imported = import_model(str(path), name)
    lowered = pipeline.schedule_operators(pipeline.lower_relax(imported.relax_module),
                                          pipeline.ScheduleOptions())
    program = pipeline.build_program(lowered)
    operators = pipeline.lower_operators(lowered, f"tvmgen_{name}_", tvm.target.Target("c"))
    return program, operators.signatures, pipeline.plan_memory(program, operators.signatures)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_plan_reaches_the_hand_computed_bound(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.onnx"
    onnx.save(BUILDERS[name](), path)
    program, signatures, plan = _plan(path, name)
    assert plan.liveness_bound_bytes == EXPECTED_BOUND[name]
    assert plan.workspace_bytes == EXPECTED_BOUND[name]
    assert pipeline.check_plan(program, signatures, plan) == []
    if name == "residual":
        assert plan.inplace_reuses == 1


def _all_models(folder: Path) -> dict[str, Path]:
    paths = {}
    for key, build in {**onnx_models.good_models(), **{k: v for k, v in BUILDERS.items()}}.items():
        paths[f"onnx_{key}"] = folder / f"{key}.onnx"
        onnx.save(build(), paths[f"onnx_{key}"])
    for key, build in tflite_models.good_models().items():
        paths[f"tfl_{key}"] = folder / f"{key}.tflite"
        paths[f"tfl_{key}"].write_bytes(build())
    return paths


def test_no_two_live_buffers_overlap_in_any_plan(tmp_path: Path) -> None:
    for name, path in _all_models(tmp_path).items():
        program, signatures, plan = _plan(path, name)
        assert pipeline.check_plan(program, signatures, plan) == [], name
        assert plan.liveness_bound_bytes <= plan.workspace_bytes


def test_checker_finds_an_overlap(tmp_path: Path) -> None:
    path = tmp_path / "chain.onnx"
    onnx.save(chain(), path)
    program, signatures, plan = _plan(path, "chain")
    broken = pipeline.MemoryPlan(tuple(0 if o is not None else None for o in plan.buffer_offsets),
                                 plan.scratch_offsets, plan.workspace_bytes,
                                 plan.liveness_bound_bytes, 0, "broken")
    assert pipeline.check_plan(program, signatures, broken)


SHARED_ARENA_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tvmgen_modules.h"
static _Alignas(TVMGEN_MAX_WORKSPACE_ALIGNMENT) unsigned char arena[TVMGEN_MAX_WORKSPACE_SIZE];
static void* load(const char* path, size_t n) {
  void* p = malloc(n); FILE* f = fopen(path, "rb");
  if (!f || fread(p, 1, n, f) != n) exit(2);
  fclose(f); return p; }
static void save(const char* path, const void* p, size_t n) {
  FILE* f = fopen(path, "wb"); if (!f || fwrite(p, 1, n, f) != n) exit(3); fclose(f); }
"""


def _shared_arena_program(modules: list) -> str:
    lines = [SHARED_ARENA_MAIN]
    for m in modules:
        p, macro = f"tvmgen_{m.name}", f"TVMGEN_{m.name.upper()}"
        lines.append(f"static int run_{m.name}(int round) {{")
        lines.append(f"  struct {p}_inputs in; struct {p}_outputs out; char path[64]; int rc;")
        for i, t in enumerate(m.inputs):
            lines.append(f'  in.{t.c_name} = load("{m.name}_in{i}.bin", {macro}_{t.c_name.upper()}_SIZE);')
        for t in m.outputs:
            lines.append(f"  out.{t.c_name} = malloc({macro}_{t.c_name.upper()}_SIZE);")
        lines.append("  memset(arena, 0xA5 ^ (round * 37), sizeof(arena)); /* garbage */")
        lines.append(f"  rc = {p}_run(&in, &out, arena);")
        for i, t in enumerate(m.outputs):
            lines.append(f'  snprintf(path, sizeof(path), "{m.name}_r%d_out{i}.bin", round);')
            lines.append(f"  save(path, out.{t.c_name}, {macro}_{t.c_name.upper()}_SIZE); free(out.{t.c_name});")
        lines += [f"  free(in.{t.c_name});" for t in m.inputs]
        lines.append("  return rc; }")
    lines.append("int main(void) { int round, failures = 0;")
    lines.append("  for (round = 0; round < 4; ++round) {")
    forward = " ".join(f"failures += run_{m.name}(round) != 0;" for m in modules)
    backward = " ".join(f"failures += run_{m.name}(round) != 0;" for m in reversed(modules))
    lines.append(f"    if (round % 2 == 0) {{ {forward} }} else {{ {backward} }}")
    lines.append("  }\n  return failures; }")
    return "\n".join(lines)


def test_all_modules_share_one_garbage_filled_arena(tmp_path: Path) -> None:
    sources = {name: (tmp_path / f"{name}.onnx", build()) for name, build in BUILDERS.items()}
    sources["kws"] = (tmp_path / "kws.tflite", tflite_models.conv2d())
    sources["kws8"] = (tmp_path / "kws8.tflite", tflite_models.int8_conv_fc_softmax())
    sources["pair"] = (tmp_path / "pair.onnx", onnx_models.two_in_two_out())
    modules = []
    for name, (path, model) in sources.items():
        path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
        modules.append(compile_model(str(path), module_name=name, workspace="shared"))
    assert all(f"{m.name}_lib2.c" not in m.sources for m in modules)  # no static arena linked
    root = cbuild.extract(export_model_library_format(modules, str(tmp_path / "m.tar")),
                          tmp_path / "mlf")
    work = root / "harness"
    work.mkdir()
    (work / "main.c").write_text(_shared_arena_program(modules))
    rng = np.random.default_rng(3)
    expected = {}
    for m in modules:
        xs = [references.random_array(t.shape, t.dtype, rng) for t in m.inputs]
        for i, x in enumerate(xs):
            x.tofile(work / f"{m.name}_in{i}.bin")
        path, model = sources[m.name]
        expected[m.name] = (references.run_litert(model, xs) if path.suffix == ".tflite" else
                            references.run_onnxruntime(model, {t.name: x for t, x in zip(m.inputs, xs)}))
    cbuild.build_program(root, work / "main.c", [m.name for m in modules], work / "app")
    run = subprocess.run([str(work / "app")], cwd=work, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    header = (root / "codegen/host/include/tvmgen_modules.h").read_text()
    assert "TVMGEN_MAX_WORKSPACE_SIZE" in header
    for m in modules:
        for rnd in range(4):
            for i, t in enumerate(m.outputs):
                got = np.fromfile(work / f"{m.name}_r{rnd}_out{i}.bin", t.dtype).reshape(t.shape)
                cbuild.assert_close(got, np.asarray(expected[m.name][i]), f"{m.name} round {rnd}")


def test_target_alignment_options_are_honoured(tmp_path: Path) -> None:
    """-workspace-byte-alignment=64 puts every tensor at a multiple of 64 in a 64-aligned arena
    (header, umbrella, static arena); -constants-byte-alignment=32 aligns the constants; the
    program still matches onnxruntime. Smaller values keep the 16-byte minimum."""
    import re

    model = onnx_models.conv2d()
    path = tmp_path / "conv.onnx"
    onnx_models.save(model, path)
    module = compile_model(str(path), module_name="aligned",
                           target="c -workspace-byte-alignment=64 -constants-byte-alignment=32")
    runner = module.sources["aligned_lib1.c"]
    offsets = [int(o) for o in re.findall(r"ws \+ (\d+)\)", runner)]
    assert offsets and all(o % 64 == 0 for o in offsets), offsets
    assert module.workspace_bytes % 64 == 0
    assert "#define TVMGEN_ALIGNED_WORKSPACE_ALIGNMENT 64" in module.header
    assert "TVMGEN_ALIGNED(32)" in runner and "TVMGEN_ALIGNED(16)" not in runner
    archive = export_model_library_format([module], str(tmp_path / "a.tar"))
    root = cbuild.extract(archive, tmp_path / "mlf")
    umbrella = (root / "codegen" / "host" / "include" / "tvmgen_modules.h").read_text()
    assert "TVMGEN_MAX_WORKSPACE_ALIGNMENT" in umbrella
    x = np.random.default_rng(0).standard_normal(module.inputs[0].shape).astype(np.float32)
    actual = cbuild.build_and_run(root, {"aligned": (module.inputs, module.outputs)},
                                  {"aligned": [x]})["aligned"][0]
    expected = references.run_onnxruntime(model, {module.inputs[0].name: x})[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    small = compile_model(str(path), module_name="small", target="c -workspace-byte-alignment=4")
    assert "#define TVMGEN_SMALL_WORKSPACE_ALIGNMENT 16" in small.header


def test_constants_spread_over_an_activation_stay_small(tmp_path: Path) -> None:
    """An Expand of a per-channel constant and a bias written out in full (16x32x32 floats
    that repeat along H and W) are stored as their 16 values each, read by broadcasting: no
    64 KiB constant, no 64 KiB temporary; outputs match onnxruntime."""
    rng = np.random.default_rng(5)
    shape = [1, 16, 32, 32]
    per_channel = rng.standard_normal((16, 1, 1)).astype(np.float32)
    full = np.ascontiguousarray(np.broadcast_to(rng.standard_normal((1, 16, 1, 1)), shape),
                                np.float32)
    n = helper.make_node
    graph = helper.make_graph(
        [n("Expand", ["c", "shape"], ["e"]), n("Add", ["x", "e"], ["a"]),
         n("Mul", ["a", "full"], ["y"])], "spread",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(per_channel, "c"),
         numpy_helper.from_array(np.array(shape, np.int64), "shape"),
         numpy_helper.from_array(full, "full")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "spread.onnx"
    onnx.save(model, str(path))
    module = compile_model(str(path), module_name="spread")
    assert module.constants_bytes <= 2 * 16 * F32, [a.shape for a in module.params.values()]
    assert module.workspace_bytes <= int(np.prod(shape)) * F32  # at most one activation
    root = cbuild.extract(export_model_library_format([module], str(tmp_path / "a.tar")),
                          tmp_path / "mlf")
    x = rng.standard_normal(shape).astype(np.float32)
    actual = cbuild.build_and_run(root, {"spread": (module.inputs, module.outputs)},
                                  {"spread": [x]})["spread"][0]
    expected = references.run_onnxruntime(model, {"x": x})[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)
