"""Hostile tensor names from ONNX and TFLite models cannot inject C, collide or redefine a macro.

Each model has 8 inputs and 8 outputs, output i = input i * (i + 2), named to break comments
(`*/`, `*\\` + newline + `/`, the `??/` trigraph), to collide (x/X, a.b/a_b, two non-ASCII
names, x/X/x_1), to hit a module macro (`workspace` -> TVMGEN_<M>_WORKSPACE_SIZE) and to be
C keywords or standard macros (int, NULL, __LINE__). The archive is compiled by the real CLI,
every generated file is preprocessed with -std=c11 -trigraphs (no payload may survive outside a
string literal), the module is built with gcc -std=c11 -Wall -Wextra -Werror -trigraphs with
our test harness, with the archive's own template (make) and by `tvmc run`, and the outputs
are compared with onnxruntime / LiteRT.
"""
from __future__ import annotations

import os
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders.tflite_models import TFLiteGraph
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli.driver import main as tvmc

pytestmark = pytest.mark.skipif(not cbuild.have("gcc"), reason="needs gcc")

MARKER = "INJECTED"
PAIRS = [  # (input name, output name)
    ("x", "X"),
    ("a.b", "a_b"),
    ("λ", "μ"),
    ("workspace", "int"),
    (f"c*/ int {MARKER}_1 = 1; /*", f"d*\\\n/ int {MARKER}_2 = 2; /*"),
    (f"g*??/\n/ int {MARKER}_3 = 3; /*", f"h??/\n#error {MARKER}_4"),
    ("NULL", "__LINE__"),
    ("default", "x_1"),
    ("file", "allow_pickle"),  # parameters of numpy.savez: `tvmc run -o` must still save them
    ("class", "this"),  # C++ keywords: the header is also included from C++
]
SHAPE = (1, 4)


def _onnx_model() -> bytes:
    from onnx import TensorProto, helper

    nodes, inits = [], []
    for i, (name_in, name_out) in enumerate(PAIRS):
        inits.append(helper.make_tensor(f"k{i}", TensorProto.FLOAT, [1], [float(i + 2)]))
        nodes.append(helper.make_node("Mul", [name_in, f"k{i}"], [name_out], name=f"mul{i}"))
    graph = helper.make_graph(
        nodes, "hostile", [helper.make_tensor_value_info(a, TensorProto.FLOAT, SHAPE)
                           for a, _ in PAIRS],
        [helper.make_tensor_value_info(b, TensorProto.FLOAT, SHAPE) for _, b in PAIRS], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _tflite_model() -> bytes:
    g = TFLiteGraph()
    ins, outs = [], []
    for i, (name_in, name_out) in enumerate(PAIRS):
        x = g.add_tensor(name_in, SHAPE)
        k = g.add_const(f"k{i}", np.array([i + 2], np.float32))
        y = g.add_tensor(name_out, SHAPE)
        g.add_operator("MUL", [x, k], [y], ("MulOptions", {"FusedActivationFunction": 0}))
        ins.append(x)
        outs.append(y)
    g.set_io(ins, outs)
    return g.to_bytes()


MODELS = {"onnx": ("hostile.onnx", _onnx_model), "tflite": ("hostile.tflite", _tflite_model)}


def _inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in PAIRS]


def _reference(kind: str, data: bytes, xs: list[np.ndarray]) -> list[np.ndarray]:
    if kind == "onnx":
        return references.run_onnxruntime(data, {a: x for (a, _), x in zip(PAIRS, xs)})
    return references.run_litert(data, xs)


@pytest.fixture(scope="module", params=sorted(MODELS))
def compiled(request, tmp_path_factory: pytest.TempPathFactory) -> dict:
    kind = request.param
    folder = tmp_path_factory.mktemp(f"hostile_{kind}")
    file_name, build = MODELS[kind]
    data = build()
    (folder / file_name).write_bytes(data)
    archive = folder / "m.tar"
    assert tvmc(["compile-multi", f"{folder / file_name}:m", "-j", "1", "-o", str(archive)]) == 0
    root = cbuild.extract(archive, folder / "mlf")
    return {"kind": kind, "folder": folder, "data": data, "archive": archive, "root": root,
            "module": load_model_library_format(str(archive)).modules["m"]}


def _without_string_literals(text: str) -> str:
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


def test_no_name_escapes_a_comment(compiled):
    root = compiled["root"]
    files = [*root.glob("codegen/host/src/*.c"), *root.glob("codegen/host/include/*.h"),
             root / "templates/host/main.c"]
    include = str(root / "codegen/host/include")
    for path in files:
        done = subprocess.run(["gcc", "-std=c11", "-trigraphs", "-E", "-P", "-I", include,
                               "-Wall", "-Werror", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, f"{path.name}: {done.stderr[:1000]}"
        # a payload that escaped is a token of its own; inside an identifier made from a name
        # (g_______int_INJECTED_3___3____) it is harmless
        escaped = re.findall(rf"\b{MARKER}_\d\b", _without_string_literals(done.stdout))
        assert not escaped, f"{path.name}: a tensor name escaped its comment: {escaped}"


def test_c_names_and_macros_are_unique(compiled):
    module = compiled["module"]
    ins, outs = [t.c_name for t in module.inputs], [t.c_name for t in module.outputs]
    assert ins[:4] == ["x", "a_b", "u03bb", "workspace_1"] and ins[6] == "NULL_"
    assert outs[:4] == ["X_1", "a_b_1", "u03bc", "int_"]
    assert outs[6:8] == ["t__LINE__", "x_1_1"]
    c_names = ins + outs
    assert len({c.upper() for c in c_names}) == len(c_names)
    header = (compiled["root"] / "codegen/host/include/tvmgen_m.h").read_text()
    defined = re.findall(r"^#define (\w+)", header, re.M)
    assert len(defined) == len(set(defined)), "a macro is defined twice"
    assert "#define TVMGEN_M_WORKSPACE_SIZE " in header
    assert header.count("#define TVMGEN_M_WORKSPACE_SIZE ") == 1


@pytest.mark.skipif(not cbuild.have("g++"), reason="needs g++")
def test_header_is_valid_cxx(compiled):
    include = compiled["root"] / "codegen/host/include"
    done = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                           "-x", "c++", str(include / "tvmgen_modules.h")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[:2000]


def test_built_strictly_and_outputs_match_reference(compiled):
    module = compiled["module"]
    xs = _inputs()
    want = _reference(compiled["kind"], compiled["data"], xs)
    got = cbuild.build_and_run(compiled["root"], {"m": (module.inputs, module.outputs)},
                               {"m": xs}, extra_flags=["-trigraphs"])["m"]
    for i, (actual, expected) in enumerate(zip(got, want)):
        cbuild.assert_close(actual, expected.reshape(actual.shape), f"output {i}")
        cbuild.assert_close(actual, xs[i] * (i + 2), f"output {i} (exact)")


@pytest.mark.skipif(not cbuild.have("make"), reason="needs make")
def test_archive_template_builds_with_trigraphs(compiled):
    host = compiled["root"] / "templates/host"
    env = {**os.environ, "CFLAGS": "-O1 -trigraphs"}
    build = subprocess.run(["make", "-C", str(host)], capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(host / "tvmgen_example")], capture_output=True, text=True)
    assert run.returncode == 0 and "1 of 1 modules ran" in run.stdout, run.stderr
    assert MARKER in run.stdout  # the names are printed as data, from string literals


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def test_tvmc_run_with_hostile_names(compiled, tmp_path):
    xs = _inputs()
    want = _reference(compiled["kind"], compiled["data"], xs)
    in_file, out_file = tmp_path / "in.npz", tmp_path / "out.npz"
    module = compiled["module"]
    # keyed by C name (model names work too); "file" cannot go through numpy.savez's keywords
    _write_npz(in_file, {t.c_name: x for t, x in zip(module.inputs, xs)})
    assert tvmc(["run", str(compiled["archive"]), "-i", str(in_file), "-o", str(out_file)]) == 0
    with np.load(out_file) as data:
        for i, (tensor, expected) in enumerate(zip(module.outputs, want)):
            cbuild.assert_close(data[tensor.name], expected.reshape(SHAPE), f"output {i}")
    assert not Path("PWNED").exists()


def test_c_text_round_trips_through_gcc(tmp_path):
    """Random hostile text as comments, string literals and identifiers: the C builds under
    -std=c11 -trigraphs -Wall -Werror, each literal prints back the text's exact UTF-8 bytes,
    and no comment ends early (each is followed by a line that must survive)."""
    from tvmc_multimodule.names import CText, c_text, is_c_identifier

    rng = np.random.default_rng(11)
    alphabet = list("*/\\?\n\r\t\"'%#() ;{}azAZ09_.") + ["??/", "??=", "*\\\n/", "λ", "\x00",
                                                          "\x1b", "\u2028", "名"]
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 12)))) for _ in range(300)]
    texts += [name for pair in PAIRS for name in pair]
    lines = ["#include <stdio.h>", "int main(void) {", "  int survived = 0;"]
    for i, text in enumerate(texts):
        identifier = c_text(text, CText.IDENTIFIER, fallback=f"empty{i}")
        assert is_c_identifier(identifier), (text, identifier)
        lines += [f"  /* {c_text(text, CText.COMMENT)} */", "  ++survived;",
                  f"  {{ int {identifier} = 0; (void){identifier}; }}",
                  f"  fwrite({c_text(text, CText.STRING)}, 1, {len(text.encode())}, stdout);",
                  "  fputc(0xff, stdout);"]
    lines += [f"  return survived == {len(texts)} ? 0 : 1;", "}", ""]
    (tmp_path / "t.c").write_text("\n".join(lines))
    build = subprocess.run(["gcc", "-std=c11", "-trigraphs", "-Wall", "-Wextra", "-Werror",
                            str(tmp_path / "t.c"), "-o", str(tmp_path / "t")],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[:2000]
    run = subprocess.run([str(tmp_path / "t")], capture_output=True)
    assert run.returncode == 0, "a comment swallowed code"
    assert run.stdout.split(b"\xff")[:-1] == [t.encode() for t in texts]


def test_layer_comments_carry_the_layer_names_escaped(compiled):
    """Each Mul's runner comment names its layer by the model's own text, always through
    c_text: the ONNX node (`mul<i>`) or the hostile TFLite tensor it writes (float TFLite as
    the int8 and ONNX paths: the raw name, not its identifier form); one comment per line,
    closed once. The archive's layer metadata carries the same raw names."""
    from tvmc_multimodule.names import CText, c_text

    runner = next(compiled["root"].glob("codegen/host/src/m_lib1.c")).read_text()
    comments = re.findall(r"^  /\* layer \d+: .* \*/$", runner, re.M)
    assert len(comments) == len(PAIRS)
    expected = [f"mul{i}" if compiled["kind"] == "onnx" else name_out
                for i, (_, name_out) in enumerate(PAIRS)]
    for comment, name in zip(comments, expected):
        assert f" '{c_text(name, CText.COMMENT)}' " in comment, (comment, name)
    assert all(c.count("*/") == 1 and c.count("/*") == 1 for c in comments)
    assert [layer.name for layer in compiled["module"].layers] == expected
