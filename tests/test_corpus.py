"""bench/corpus.py: cause classification and totals (pure), and the whole corpus path on a
fake package wheel holding two self-built models (no network): one the reference runtime
cannot run (skipped at the reference stage), one that goes through compile, gcc, run and
match against onnxruntime."""
from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from builders import onnx_models

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def corpus() -> ModuleType:
    # corpus.py imports its sibling bench modules by name, as when run as a script
    sys.path.insert(0, str(BENCH))
    try:
        import corpus as module
        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("line, exit_code, cause", [
    ("error: m (a/b.tflite): unsupported tensor types: float16 - remove or replace these", 4,
     "fp16 weights"),
    ("error: m (a/b.onnx): unsupported operators: LSTM (x2), Foo; control flow is not "
     "supported: If (x2) - remove or replace these before compiling", 4,
     "LSTM, unsupported operator Foo, If"),
    ("error: m (a/b.tflite): custom operators: Convolution2DTransposeBias (x3)", 4,
     "custom op Convolution2DTransposeBias"),
    ("error: m (a/model.onnx): custom operators: com.microsoft.FusedConv (x6) (give each its C "
     "implementation: --custom-op com.microsoft.FusedConv=impl.c) - remove or replace these "
     "before compiling", 4, "custom op FusedConv"),
    ("error: m (a/b.tflite): stateful variables are not supported: READ_VARIABLE (x4)", 4,
     "resource variables"),
    ("error: m (a/b.tflite): input 'x:0' has dynamic dim 0 - give static shapes", 3,
     "dynamic batch dim"),
    ("error: m (a/b.onnx): input 'x' has dynamic dim 0 ('batch'); input 'y' has dynamic dim 0 "
     "('N') - give static shapes", 3, "dynamic batch dim"),
    ("error: m (a/b.tflite): corrupt file: tensor 7 holds 154 bytes of data for the shape "
     "[8,1,1,32] of float16", 3, "sparse weights"),
    ("error: m (a/b.onnx): internal error: TVMError: Invalid SLayout: can't find S in source "
     "layout - please report", 70, "internal error: layout conversion"),
    ("error: m (a/b.onnx): the onnx frontend failed: Reshape requires the input new shape to "
     "be Shape", 4, "shape arithmetic"),
    ("error: m (a/b.onnx): operation 'relax.nn.conv2d_transpose' is left after lowering", 4,
     "conv2d_transpose left after lowering"),
    ("error: m (p): internal error: KeyError: 'x_17'", 70, "internal error: KeyError: '…'"),
    ("timed out after 120 s", None, "timeout"),
    ("/tmp/w/mlf/codegen/host/src/s_lib0.c:260:32: error: ‘Squeeze_red_ptr’ undeclared (first "
     "use in this function)", None, "C: ‘Squeeze_red_ptr’ undeclared (first use in this function)"),
    ("error: m (p): control flow: If node 'If_0' branches on 'c', which is computed at run "
     "time; only If nodes whose condition folds to a constant are compiled - fix", 4,
     "If (run-time condition)"),
    ("RuntimeError: Encountered unresolved custom op: Landmarks2TransformMatrix. See "
     "instructions: ... Node number 192 (Landmarks2TransformMatrix) failed to prepare.", None,
     "custom op Landmarks2TransformMatrix"),
])
def test_cause_of_a_message(corpus: ModuleType, line: str, exit_code: int | None,
                            cause: str) -> None:
    assert corpus.corpus_causes.classify(line, exit_code) == cause


def test_totals_count_the_stages_each_model_passed(corpus: ModuleType) -> None:
    def result(name: str, stage: str, cause: str | None = None, package: str = "p==1") -> object:
        return corpus.CorpusResult(name, package, f"p/{name}", "onnx", 10, stage=stage,
                                   cause=cause)

    collected = [result("a", "ok"), result("b", "reference", "custom op"),
                 result("c", "compile", "If"), result("d", "compile", "If", "q==2"),
                 result("e", "match", "output 0 differs"), result("f", "build", "gcc"),
                 result("d", "compile", "LSTM", "r==3")]
    assert corpus.totals(collected) == {"attempted": 7, "reference runs": 6, "compile": 3,
                                        "build": 2, "run": 2, "match": 1}
    # the same file name in two packages: each one named with its package
    assert corpus.by_cause(collected) == {"compile: If": ["c", "d (q==2)"], "build: gcc": ["f"],
                                          "compile: LSTM": ["d (r==3)"],
                                          "match: output 0 differs": ["e"]}


def test_fake_package_end_to_end(corpus: ModuleType, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    onnx_models.save(onnx_models.conv2d(), models / "conv.onnx")
    onnx_models.save(onnx_models.custom_op(), models / "custom.onnx")
    wheel = tmp_path / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ("conv.onnx", "custom.onnx"):
            zf.write(models / name, f"fakepkg/models/{name}")
        zf.writestr("fakepkg/__init__.py", "")
    out = tmp_path / "corpus.json"
    assert corpus.main(["--local", str(wheel), "--cache", str(tmp_path / "cache"),
                        "--json", str(out), "--no-nice", "--timeout", "300"]) == 0
    report = json.loads(out.read_text())
    assert report["totals"] == {"attempted": 2, "reference runs": 1, "compile": 1, "build": 1,
                                "run": 1, "match": 1}
    by_file = {Path(m["member"]).name: m for m in report["models"]}
    conv, custom = by_file["conv.onnx"], by_file["custom.onnx"]
    assert custom["stage"] == "reference" and custom["compile_s"] is None
    assert conv["stage"] == "ok" and conv["cause"] is None
    assert conv["package"] == wheel.name and conv["compile_s"] > 0
    assert conv["max_abs_diff"] < 1e-4 and conv["diff_unit"] == "abs"
    assert 0.9 < conv["constants_ratio"] < 1.05  # the conv's weights and bias, nothing more
    printed = capsys.readouterr().out
    assert "totals: attempted 2, reference runs 1, compile 1" in printed
