"""Integer-only int8 kernels: bit-exact (0 LSB) against the TFLite Micro interpreter.

Every test model of builders/tflite_int8_models.py and the shared MLPerf-Tiny int8 models are
compiled into ONE archive per group and ONE C program that runs every module on a batch of
24+ inputs (random, all -128, all 127, plus per-model edge cases), so the suite stays fast.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

import cbuild
import references
from builders import tflite_int8_models
from tvmc_multimodule import compile_model, export_model_library_format
from tvmc_multimodule.errors import UnsupportedError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "tflite"
SHARED_MODELS = ["kws_dscnn", "vww_mobilenet_v1_025", "ic_resnet8", "ad_autoencoder"]
RANDOM_INPUTS = 21
SCALAR = "_scalar"  # module-name suffix of the scalar-variant build of each test model
DSP = "_dsp"  # ... of the Cortex-M DSP library's build (target -mcpu=cortex-m4)
VARIANTS = (("", None, "c"), (SCALAR, "scalar", "c"), (DSP, None, "c -mcpu=cortex-m4"))


# ---------------------------------------------------------------- batched C harness

def _size(macro: str, tensor: object) -> str:
    return f"{macro}_{tensor.c_name.upper()}_SIZE"  # type: ignore[attr-defined]


def _batched_main(modules: dict[str, tuple[Sequence, Sequence]], repeat: int = 1) -> str:
    """main.c: for each module, run every input of its batch files, `repeat` times each
    (argv[1] overrides), writing the outputs of the last repetition; prints the median ns
    per run."""
    lines = ["#define _POSIX_C_SOURCE 199309L", "#include <stdio.h>", "#include <stdlib.h>",
             "#include <time.h>"]
    lines += [f'#include "tvmgen_{n}.h"' for n in modules]
    lines += [
        "static int cmp(const void* a, const void* b) {",
        "  double x = *(const double*)a, y = *(const double*)b; return (x > y) - (x < y); }",
        "static unsigned char* load(const char* path, size_t* n) {",
        "  FILE* f = fopen(path, \"rb\"); unsigned char* p; long size;",
        "  if (!f) { fprintf(stderr, \"cannot read %s\\n\", path); exit(2); }",
        "  fseek(f, 0, SEEK_END); size = ftell(f); fseek(f, 0, SEEK_SET);",
        "  p = malloc(size ? (size_t)size : 1);",
        "  if (fread(p, 1, (size_t)size, f) != (size_t)size) exit(2);",
        "  fclose(f); *n = (size_t)size; return p; }",
        "static void save(const char* path, const void* p, size_t n) {",
        "  FILE* f = fopen(path, \"wb\"); if (!f || fwrite(p, 1, n, f) != n) exit(3); fclose(f); }",
        "static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);",
        "  return t.tv_sec * 1e9 + t.tv_nsec; }",
        "int main(int argc, char** argv) {",
        f"  int repeat = argc > 1 ? atoi(argv[1]) : {repeat};",
    ]
    for name, (inputs, outputs) in modules.items():
        macro = f"TVMGEN_{name.upper()}"
        lines.append(f"  {{ struct tvmgen_{name}_inputs in; struct tvmgen_{name}_outputs out;")
        lines.append("    size_t n = 0, count = 0, k = 0; int b, r; double* times;")
        for i, t in enumerate(inputs):
            lines.append(f'    unsigned char* in{i} = load("{name}_in{i}.bin", &n);')
            lines.append(f"    count = n / {_size(macro, t)};")
        for i, t in enumerate(outputs):
            lines.append(f"    unsigned char* out{i} = malloc(count * {_size(macro, t)});")
        lines.append("    times = malloc(count * (size_t)repeat * sizeof(double));")
        lines.append("    for (b = 0; b < (int)count; ++b) {")
        for i, t in enumerate(inputs):
            lines.append(f"      in.{t.c_name} = in{i} + (size_t)b * {_size(macro, t)};")
        for i, t in enumerate(outputs):
            lines.append(f"      out.{t.c_name} = out{i} + (size_t)b * {_size(macro, t)};")
        lines += [
            "      for (r = 0; r < repeat; ++r) {",
            "        double t0 = now();",
            f"        if (tvmgen_{name}_run(&in, &out) != 0) return 1;",
            "        times[k++] = now() - t0;",
            "      }",
            "    }",
        ]
        for i, t in enumerate(outputs):
            lines.append(f'    save("{name}_out{i}.bin", out{i}, count * {_size(macro, t)});')
        lines.append("    qsort(times, k, sizeof(double), cmp);")
        lines.append(f'    printf("{name} %.0f\\n", times[k / 2]);')
        lines.append("    free(times);")
        lines.append("  }")
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


def build_batched(root: Path, modules: dict[str, tuple[Sequence, Sequence]],
                  flags: Sequence[str] = ("-O2",)) -> Path:
    work = root / "harness"
    work.mkdir(exist_ok=True)
    (work / "main.c").write_text(_batched_main(modules))
    sources = [str(p) for n in modules for p in cbuild.module_sources(root, n)]
    cmd = ["gcc", *cbuild.STRICT, *flags, "-I", str(root / "codegen" / "host" / "include"),
           str(work / "main.c"), *sources, "-lm", "-o", str(work / "app")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"C build failed:\n{result.stderr[:4000]}"
    return work


def run_batched(work: Path, modules: dict[str, tuple[Sequence, Sequence]],
                batches: dict[str, list[list[np.ndarray]]], repeat: int = 1
                ) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """batches[name][k] = the k-th input set; returns outputs[name][output i] stacked over k
    and the median ns per run of each module."""
    for name, sets in batches.items():
        for i in range(len(sets[0])):
            np.concatenate([np.ascontiguousarray(s[i]).reshape(-1) for s in sets]).tofile(
                work / f"{name}_in{i}.bin")
    run = subprocess.run([str(work / "app"), str(repeat)], cwd=work, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, f"harness failed ({run.returncode}): {run.stderr[:2000]}"
    times = {line.split()[0]: float(line.split()[1]) for line in run.stdout.splitlines()}
    outputs = {}
    for name, (_, outs) in modules.items():
        count = len(batches[name])
        outputs[name] = [np.fromfile(work / f"{name}_out{i}.bin", dtype=t.dtype)
                         .reshape((count, *t.shape)) for i, t in enumerate(outs)]
    return outputs, times


# ---------------------------------------------------------------- inputs

def _input_sets(model: bytes, name: str, rng: np.random.Generator,
                extra: Sequence[list[np.ndarray]] = ()) -> list[list[np.ndarray]]:
    specs = references.tflite_input_specs(model)
    sets = []
    for _ in range(RANDOM_INPUTS):
        sets.append([rng.uniform(-4, 4, shape).astype(np.float32) if np.dtype(dt).kind == "f"
                     else references.random_array(shape, dt, rng) for shape, dt in specs])
    for fill in (-128, 127):  # saturated inputs
        sets.append([np.full(shape, fill if np.dtype(dt).kind != "f" else fill / 10, dt)
                     for shape, dt in specs])
    sets += [list(s) for s in extra]
    return sets


def _softmax_ties(rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Rows whose values sit at the maximum or 1-3 steps below it (rounding near ties)."""
    sets = []
    for _ in range(4):
        top = rng.integers(-128, 128, size=(6, 1))
        x = np.clip(top - rng.integers(0, 4, size=(6, 10)), -128, 127).astype(np.int8)
        sets.append([x])
    return sets


def _float_ties(scale: float = 0.02, zero_point: int = -1) -> list[list[np.ndarray]]:
    """Floats exactly halfway between two quantisation steps, and just beside them."""
    k = np.arange(-72, 72).reshape(1, 6, 6, 4)[..., :2] + 0.5
    half = (k * np.float32(scale)).astype(np.float32)
    return [[half], [np.nextafter(half, np.float32(np.inf))],
            [np.nextafter(half, np.float32(-np.inf))]]


def _extra_inputs(name: str, rng: np.random.Generator) -> list[list[np.ndarray]]:
    if name == "softmax":
        return _softmax_ties(rng)
    if name == "activations":  # every int8 value
        every = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
        return [[every, every], [every[:, ::-1].copy(), every]]
    if name == "float_edges":
        return _float_ties()
    return []


def _tflm_outputs(model: bytes, sets: list[list[np.ndarray]]) -> list[np.ndarray]:
    per_set = [references.run_tflite_micro(model, s) for s in sets]
    return [np.stack([np.asarray(o[i]) for o in per_set]) for i in range(len(per_set[0]))]


def _lsb(actual: np.ndarray, expected: np.ndarray) -> int:
    if np.issubdtype(expected.dtype, np.floating):
        return 0 if np.array_equal(actual.reshape(-1), expected.reshape(-1)) else 1
    return int(np.abs(actual.reshape(-1).astype(np.int64)
                      - expected.reshape(-1).astype(np.int64)).max(initial=0))


# ---------------------------------------------------------------- test models

@pytest.fixture(scope="module")
def int8_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("int8")
    rng = np.random.default_rng(2024)
    compiled, batches, expected, models = [], {}, {}, {}
    for name, build in tflite_int8_models.integer_models().items():
        model = build()
        path = root / f"{name}.tflite"
        path.write_bytes(model)
        sets = _input_sets(model, name, rng, _extra_inputs(name, rng))
        reference = _tflm_outputs(model, sets)
        # strict: every operator of these models must run on an integer kernel; the scalar
        # variant (register-blocked kernels for Cortex-M) and the Cortex-M DSP library (its
        # portable-C primitives on the host; test_cortex_m.py runs the DSP instructions) too
        for suffix, schedule, target in VARIANTS:
            module = compile_model(str(path), module_name=name + suffix, strict_int8=True,
                                   schedule=schedule, target=target)
            compiled.append(module)
            batches[module.name] = sets
            expected[module.name] = reference
            models[module.name] = module
    archive = export_model_library_format(compiled, str(root / "int8.tar"))
    extracted = cbuild.extract(archive, root / "mlf")
    spec = {m.name: (m.inputs, m.outputs) for m in compiled}
    work = build_batched(extracted, spec)
    outputs, _ = run_batched(work, spec, batches)
    return {"outputs": outputs, "expected": expected, "modules": models, "root": extracted,
            "spec": spec, "batches": batches}


@pytest.mark.parametrize("name", sorted(n + s for n in tflite_int8_models.integer_models()
                                         for s in ("", SCALAR, DSP)))
def test_bit_exact_with_tflite_micro(int8_run: dict, name: str) -> None:
    actual, expected = int8_run["outputs"][name], int8_run["expected"][name]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape[0] >= RANDOM_INPUTS + 2
        assert _lsb(a, e) == 0, f"{name} output {i}: {_lsb(a, e)} LSB off"


def test_armv6m_helpers_bit_exact_on_host(int8_run: dict) -> None:
    """The helpers' Cortex-M0 branches (16-bit partial products instead of a 64-bit multiply,
    shift-subtract division), compiled for the host by defining __ARM_ARCH_6M__."""
    root = int8_run["root"]
    shutil.rmtree(root / "harness", ignore_errors=True)
    work = build_batched(root, int8_run["spec"], ("-O2", "-D__ARM_ARCH_6M__=1"))
    outputs, _ = run_batched(work, int8_run["spec"], int8_run["batches"])
    for name, expected in int8_run["expected"].items():
        for i, (a, e) in enumerate(zip(outputs[name], expected)):
            assert _lsb(a, e) == 0, f"{name} output {i} (ARMv6-M helpers)"


def test_outputs_saturate(int8_run: dict) -> None:
    """The kernels are checked on clamped outputs too (the simplifier once dropped a clamp)."""
    for name, index in (("conv_same_stride2", 1), ("fully_connected", 0), ("add_mul", 1),
                        ("add_mul", 2), ("mean", 1), ("activations", 1)):
        values = int8_run["outputs"][name][index]
        assert values.min() == -128 and values.max() == 127, (name, index)
    relu6 = int8_run["outputs"]["conv_same_stride2"][0]
    assert relu6.max() < 127 and (relu6 == relu6.max()).sum() > 1  # clamped at quantised 6
    standalone_relu6 = int8_run["outputs"]["activations"][4]
    assert standalone_relu6.min() == -30 and standalone_relu6.max() == 30


def test_weights_stay_int8(int8_run: dict) -> None:
    module = int8_run["modules"]["conv_dilated_depthwise"]
    dtypes = {str(a.dtype) for a in module.params.values()}
    assert "float32" not in dtypes and "int8" in dtypes
    ops = module.sources["conv_dilated_depthwise_lib0.c"]
    ops = ops[ops.index("end of integer helpers"):]  # the kernels, after the C helpers
    assert "float" not in ops and "double" not in ops
    assert "int8_t* " in ops


def test_helpers_prefixed_once(int8_run: dict) -> None:
    for module in int8_run["modules"].values():
        ops = module.sources[f"{module.name}_lib0.c"]
        assert ops.count(f"static inline int64_t tvmgen_{module.name}_i8_mul64(") == 1
        names = re.findall(r"^static inline \w+ (\w+)\(", ops, re.M)
        assert names and all(n.startswith(f"tvmgen_{module.name}_") for n in names)


def test_float_operator_falls_back_with_warning(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    model = tflite_int8_models.with_float_operator()
    path = tmp_path / "fallback.tflite"
    path.write_bytes(model)
    with caplog.at_level(logging.WARNING):
        module = compile_model(str(path), module_name="fallback")
    assert "LEAKY_RELU" in caplog.text
    rng = np.random.default_rng(7)
    sets = _input_sets(model, "fallback", rng)
    extracted = cbuild.extract(export_model_library_format([module], str(tmp_path / "a.tar")),
                               tmp_path / "mlf")
    spec = {"fallback": (module.inputs, module.outputs)}
    outputs, _ = run_batched(build_batched(extracted, spec), spec, {"fallback": sets})
    expected = _tflm_outputs(model, sets)
    assert _lsb(outputs["fallback"][0], expected[0]) <= 1  # the float form: within 1 LSB
    assert module.inputs[0].dtype == "int8" and module.outputs[0].dtype == "int8"


def test_strict_int8_rejects_float_operator(tmp_path: Path) -> None:
    path = tmp_path / "fallback.tflite"
    path.write_bytes(tflite_int8_models.with_float_operator())
    with pytest.raises(UnsupportedError, match="LEAKY_RELU"):
        compile_model(str(path), module_name="fallback", strict_int8=True)


def test_strict_int8_accepts_integer_model(tmp_path: Path) -> None:
    path = tmp_path / "fc.tflite"
    path.write_bytes(tflite_int8_models.fully_connected())
    module = compile_model(str(path), module_name="fc", strict_int8=True)
    assert module.options["strict_int8"] is True


def test_header_quantisation_macros(int8_run: dict) -> None:
    module = int8_run["modules"]["float_edges"]
    header = int8_run["modules"]["conv_same_stride2"].header
    assert "TVMGEN_CONV_SAME_STRIDE2_X_QUANTIZE(" in header
    assert "TVMGEN_CONV_SAME_STRIDE2_Y1_DEQUANTIZE(" in header
    assert module.inputs[0].dtype == "float32"
    # the macros compile and round-trip in C
    work = int8_run["root"] / "macros"
    work.mkdir(exist_ok=True)
    (work / "m.c").write_text(
        '#include <stdio.h>\n#include "tvmgen_conv_same_stride2.h"\n'
        "int main(void) { int8_t q = TVMGEN_CONV_SAME_STRIDE2_X_QUANTIZE(0.5f);\n"
        "  float r = TVMGEN_CONV_SAME_STRIDE2_X_DEQUANTIZE(q);\n"
        '  int8_t s = TVMGEN_CONV_SAME_STRIDE2_X_QUANTIZE(1000.0f);\n'
        '  printf("%d %g %d\\n", q, r, s); return 0; }\n')
    build = subprocess.run(["gcc", *cbuild.STRICT, "-I", str(int8_run["root"] / "codegen" / "host"
                                                               / "include"), str(work / "m.c"),
                            "-o", str(work / "m")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(work / "m")], capture_output=True, text=True).stdout.split()
    assert out == ["17", "0.5", "127"]  # round(0.5 / 0.05) + 7; saturated


@pytest.mark.skipif(not cbuild.have("arm-none-eabi-gcc") and not __import__("os").environ.get("CI"),
                    reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4"])
def test_cortex_m_build_has_no_float_or_library_calls(int8_run: dict, cpu: str) -> None:
    root = int8_run["root"]
    work = root / f"arm_{cpu}"
    work.mkdir(exist_ok=True)
    for name in ("conv_dilated_depthwise", "softmax", "add_mul", "pools", "mean",
                 "activations", "fully_connected"):
        for src in cbuild.module_sources(root, name):
            obj = work / (src.stem + ".o")
            cmd = ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", *cbuild.STRICT, "-O2", "-c",
                   "-I", str(root / "codegen" / "host" / "include"), str(src), "-o", str(obj)]
            result = subprocess.run(cmd, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr[:3000]
            undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True,
                                       text=True).stdout.split()
            # nothing but memcpy/memset: no soft float, no 64-bit or 32-bit division call
            allowed = {"U", "memcpy", "memset"}
            foreign = {u for u in set(undefined) - allowed if not u.startswith(f"tvmgen_{name}_")}
            assert not foreign, (src.name, undefined)
            asm = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True,
                                 text=True).stdout
            assert not re.search(r"\tv(add|sub|mul|div|cvt|mov|ldr|str)\.?f?", asm), src.name


# ---------------------------------------------------------------- shared int8 models

def _tflm_arena(model_path: Path) -> int:
    """TFLite Micro's arena use for the model (its recording allocator's total)."""
    code = ("import sys\nfrom tflite_micro import runtime\n"
            "data = open(sys.argv[1], 'rb').read()\n"
            "it = runtime.Interpreter.from_bytes(data, arena_size=1 << 21)\n"
            "it.print_allocations()\n")
    run = subprocess.run([sys.executable, "-c", code, str(model_path)], capture_output=True,
                         text=True, timeout=120)
    out = run.stdout + run.stderr
    return int(re.search(r"Arena allocation total (\d+) bytes", out).group(1))


@pytest.fixture(scope="module")
def shared_int8(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("shared_int8")
    rng = np.random.default_rng(99)
    compiled, batches, expected = [], {}, {}
    for model_name in SHARED_MODELS:
        path = SHARED / f"{model_name}_int8.tflite"
        module = compile_model(str(path), module_name=model_name)
        model = path.read_bytes()
        q = module.inputs[0].quant
        real = np.load(SHARED / f"{model_name}_input.npy").astype(np.float32)
        given = np.clip(np.round(real / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
        sets = _input_sets(model, model_name, rng, [[given.reshape(module.inputs[0].shape)]])
        compiled.append(module)
        batches[model_name] = sets
        expected[model_name] = _tflm_outputs(model, sets)
    archive = export_model_library_format(compiled, str(root / "shared.tar"))
    extracted = cbuild.extract(archive, root / "mlf")
    spec = {m.name: (m.inputs, m.outputs) for m in compiled}
    outputs, _ = run_batched(build_batched(extracted, spec), spec, batches)
    return {"outputs": outputs, "expected": expected, "modules": {m.name: m for m in compiled}}


shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models not present")


@pytest.mark.shared_models
@shared
@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_int8_bit_exact(shared_int8: dict, name: str) -> None:
    for i, (a, e) in enumerate(zip(shared_int8["outputs"][name], shared_int8["expected"][name])):
        assert _lsb(a, e) == 0, f"{name} output {i}: {_lsb(a, e)} LSB off"


@pytest.mark.shared_models
@shared
@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_int8_memory(shared_int8: dict, name: str) -> None:
    module = shared_int8["modules"][name]
    path = SHARED / f"{name}_int8.tflite"
    arena = _tflm_arena(path)
    size = path.stat().st_size
    print(f"{name}: constants {module.constants_bytes} B (file {size} B), "
          f"workspace {module.workspace_bytes} B (TFLite Micro arena {arena} B)")
    assert module.constants_bytes <= size
    assert module.workspace_bytes <= arena
    assert all(str(a.dtype) != "float32" for a in module.params.values())


def test_test_models_cover_every_integer_operator() -> None:
    from tvmc_multimodule.frontends.tflite_int8 import INTEGER_OPERATORS, read_graph
    import tflite

    from builders import tflite_recurrent_models

    seen = set()
    # the stateful LSTM is compared over sequences of invokes in test_lstm_int8.py
    for build in [*tflite_int8_models.integer_models().values(),
                  tflite_recurrent_models.sequence_lstm_int8]:
        graph = read_graph(tflite.Model.GetRootAsModel(build(), 0))
        seen |= {op.name for op in graph.operators}
    assert INTEGER_OPERATORS <= seen, sorted(INTEGER_OPERATORS - seen)


def test_strict_int8_needs_declared_input_shapes(tmp_path: Path) -> None:
    path = tmp_path / "fc.tflite"
    path.write_bytes(tflite_int8_models.fully_connected())
    with pytest.raises(UnsupportedError, match="declares"):
        compile_model(str(path), module_name="fc", input_shapes={"x": [4, 24]},
                      strict_int8=True)


def test_cli_strict_int8_names_the_float_operator(tmp_path: Path, capsys) -> None:
    from tvmc_multimodule.cli.driver import main as tvmc

    model = tmp_path / "leaky.tflite"
    model.write_bytes(tflite_int8_models.with_float_operator())
    assert tvmc(["compile-multi", f"{model}:lenient", "-j", "1", "-o", str(tmp_path / "a.tar")]) == 0
    assert "LEAKY_RELU" in capsys.readouterr().err  # the warning names the float operator
    code = tvmc(["compile-multi", f"{model}:strict", "--strict-int8", "-j", "1",
                 "-o", str(tmp_path / "b.tar")])
    err = capsys.readouterr().err
    assert code == 4 and "LEAKY_RELU" in err and "strict" in err and "Traceback" not in err
    assert not (tmp_path / "b.tar").exists()
