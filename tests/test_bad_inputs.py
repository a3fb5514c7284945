"""Hostile and careless input: one table of bad command lines and model files.

Every row is a real `tvmc` invocation and must end with its documented exit code
(docs/cli.md), exactly one `error:` line naming the offending file, module or option, no
traceback, and nothing new in the output directory. The table runs in-process (fast), then
once more through `python -m tvmc_multimodule` subprocesses (several at a time): every row
that fails before TVM is imported and a sample of the others (all of them with
TVMC_TEST_ALL_SUBPROCESS=1).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from builders import (onnx_models, onnx_recurrent_models, tflite_control_models,
                      tflite_int8_models, tflite_models, tflite_recurrent_models)
from tvmc_cli import NO_PLUGINS
from tvmc_multimodule.cli import driver

REPO = Path(__file__).resolve().parents[1]
PROGRESS = re.compile(r"\[\d+/\d+\] \w+ \(.*\) \.\.\.( .*)?$")  # docs/cli.md


@dataclass(frozen=True)
class Place:
    """Where one row runs: the model files (read-only for the rows) and a fresh output dir."""

    models: Path
    out: Path

    def m(self, name: str) -> str:
        return str(self.models / name)

    @property
    def tar(self) -> str:
        return str(self.out / "m.tar")


@dataclass(frozen=True)
class Row:
    id: str
    argv: Callable[[Place], list[str]]    # after the command; "-o" added when absent
    code: int
    needles: Callable[[Place], list[str]]  # all must be in the one error line
    command: str = "compile-multi"


def write_models(folder: Path) -> None:
    """Every model file the table uses."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx_models.save(onnx_models.gemm(), folder / "good.onnx")
    (folder / "good.tflite").write_bytes(tflite_models.fully_connected())
    (folder / "truncated.tflite").write_bytes(tflite_models.truncated())
    noise = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    (folder / "noise.onnx").write_bytes(b"\x01" + noise)  # not ONNX's leading 0x08
    onnx_models.save(onnx_models.missing_initializer(), folder / "no_init.onnx")
    (folder / "empty.tflite").write_bytes(b"")
    (folder / "a_directory.onnx").mkdir(exist_ok=True)
    onnx_models.save(onnx_models.det(), folder / "det.onnx")
    onnx_models.save(onnx_models.custom_op(), folder / "custom.onnx")
    (folder / "custom.tflite").write_bytes(tflite_models.custom_op())
    (folder / "while.tflite").write_bytes(tflite_models.while_loop())
    (folder / "hybrid.tflite").write_bytes(tflite_models.dynamic_range_batch_matmul())
    onnx_models.save(onnx_models.dynamic_length(), folder / "dynamic.onnx")
    (folder / "notes.txt").write_text("not a model\n")
    (folder / "plain_file").write_text("a regular file, not a directory\n")
    # refused inside the Relax conversion (TVM's frontends, our converters in them)
    (folder / "if_int8.tflite").write_bytes(tflite_control_models.if_int8())
    (folder / "svdf_int8.tflite").write_bytes(tflite_recurrent_models.svdf_int8())
    (folder / "lstm_int8_per_channel.tflite").write_bytes(
        tflite_recurrent_models.sequence_lstm_int8(per_channel=True))
    (folder / "leaky_int8.tflite").write_bytes(tflite_int8_models.with_float_operator())
    onnx_models.save(onnx_models.top_k(), folder / "top_k.onnx")
    onnx_models.save(onnx_models.resize_half_pixel_symmetric(), folder / "resize.onnx")
    onnx_models.save(onnx_recurrent_models.lstm_with(input_forget=1), folder / "cifg.onnx")
    onnx_models.save(onnx_recurrent_models.lstm_with(activations=["Elu", "Tanh", "Tanh"]),
                     folder / "lstm_elu.onnx")
    for name, model in onnx_file_faults().items():
        onnx_models.save(model, folder / f"{name}.onnx")


def onnx_file_faults() -> dict[str, "onnx.ModelProto"]:
    """x[1,4] @ w[4,3]: w's data cut short, w with a negative dimension, opset 24."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def matmul(w: onnx.TensorProto, opset: int = 17) -> onnx.ModelProto:
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        return model

    weights = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    short = onnx.TensorProto()
    short.CopyFrom(weights)
    short.raw_data = weights.raw_data[:20]
    negative = onnx.TensorProto()
    negative.CopyFrom(weights)
    negative.dims[1] = -3
    return {"short_initializer": matmul(short), "negative_dims": matmul(negative),
            "opset24": matmul(weights, 24)}


ROWS = [
    # --- model files
    Row("truncated-tflite", lambda p: [p.m("truncated.tflite") + ":kws"], 3,
        lambda p: ["kws", p.m("truncated.tflite"), "truncated"]),
    Row("random-bytes-onnx", lambda p: [p.m("noise.onnx") + ":ad"], 3,
        lambda p: ["ad", p.m("noise.onnx"), "not a valid ONNX file"]),
    Row("onnx-corrupt-initializer", lambda p: [p.m("short_initializer.onnx") + ":ad"], 3,
        lambda p: ["ad", p.m("short_initializer.onnx"), "initializer 'w' is corrupt: 20 bytes "
                   "of data for dims [4, 3] of float (48 bytes)"]),
    Row("onnx-negative-initializer-dims", lambda p: [p.m("negative_dims.onnx") + ":ad"], 3,
        lambda p: ["ad", "initializer 'w' is corrupt: negative dimension in [4, -3]"]),
    Row("onnx-opset-too-new", lambda p: [p.m("opset24.onnx") + ":ad"], 4,
        lambda p: ["ad", p.m("opset24.onnx"), "ONNX opset 24 is newer than the frontend "
                   "knows (opsets up to 23)"]),
    Row("onnx-missing-initializer", lambda p: [p.m("no_init.onnx") + ":ad"], 3,
        lambda p: ["ad", p.m("no_init.onnx"), "w_missing"]),
    Row("empty-file", lambda p: [p.m("empty.tflite") + ":kws"], 3,
        lambda p: ["kws", p.m("empty.tflite"), "file is empty"]),
    Row("directory-as-model", lambda p: [p.m("a_directory.onnx") + ":ad"], 3,
        lambda p: ["ad", p.m("a_directory.onnx"), "is a directory"]),
    Row("nonexistent-file", lambda p: [p.m("missing.onnx") + ":ad"], 3,
        lambda p: ["ad", p.m("missing.onnx"), "file not found"]),
    Row("not-a-model", lambda p: [p.m("notes.txt") + ":doc"], 3,
        lambda p: ["doc", p.m("notes.txt"), "not a TFLite or ONNX model"]),
    Row("onnx-unsupported-op", lambda p: [p.m("good.onnx") + ":ok", p.m("det.onnx") + ":rnn"],
        4, lambda p: ["rnn", p.m("det.onnx"), "unsupported operators: Det"]),
    Row("onnx-custom-op", lambda p: [p.m("custom.onnx") + ":ad"], 4,
        lambda p: ["ad", p.m("custom.onnx"), "custom operators: com.example.MyOp"]),
    Row("tflite-custom-op", lambda p: [p.m("custom.tflite") + ":kws"], 4,
        lambda p: ["kws", p.m("custom.tflite"), "custom operators: MyCustom"]),
    Row("tflite-control-flow", lambda p: [p.m("while.tflite") + ":loop"], 4,
        lambda p: ["loop", p.m("while.tflite"), "control flow", "WHILE"]),
    Row("tflite-dynamic-range", lambda p: [p.m("hybrid.tflite") + ":fc"], 4,
        lambda p: ["fc", p.m("hybrid.tflite"), "dynamic-range"]),
    # refused while a Relax BlockBuilder is building: nothing of TVM's may follow the line
    Row("tflite-int8-if", lambda p: [p.m("if_int8.tflite") + ":branchy"], 4,
        lambda p: ["branchy", p.m("if_int8.tflite"), "quantized", "'IF'"]),
    Row("tflite-int8-svdf", lambda p: [p.m("svdf_int8.tflite") + ":svdf"], 4,
        lambda p: ["svdf", p.m("svdf_int8.tflite"), "quantized", "'SVDF'"]),
    Row("tflite-int8-lstm-per-channel", lambda p: [p.m("lstm_int8_per_channel.tflite") + ":q"],
        4, lambda p: ["q", p.m("lstm_int8_per_channel.tflite"), "per-tensor"]),
    Row("tflite-strict-int8-float-op", lambda p: [p.m("leaky_int8.tflite") + ":q",
                                                  "--strict-int8"], 4,
        lambda p: ["q", p.m("leaky_int8.tflite"), "strict int8", "LEAKY_RELU"]),
    Row("onnx-resize-mode", lambda p: [p.m("resize.onnx") + ":up"], 4,
        lambda p: ["up", p.m("resize.onnx"), "Resize node 'y'",
                   "coordinate_transformation_mode 'half_pixel_symmetric' is not supported"]),
    Row("onnx-lstm-input-forget", lambda p: [p.m("cifg.onnx") + ":vad"], 4,
        lambda p: ["vad", p.m("cifg.onnx"), "input_forget=1"]),
    Row("onnx-lstm-activation", lambda p: [p.m("lstm_elu.onnx") + ":vad"], 4,
        lambda p: ["vad", p.m("lstm_elu.onnx"), "activation 'Elu'"]),
    # not lowered to C: the failed -O3 attempts' warnings must not precede the error
    Row("onnx-op-left-after-lowering", lambda p: [p.m("top_k.onnx") + ":k"], 4,
        lambda p: ["k", p.m("top_k.onnx"), "relax.topk", "left after lowering"]),
    Row("dynamic-shape-without-input-shapes", lambda p: [p.m("dynamic.onnx") + ":dyn"], 3,
        lambda p: ["dyn", p.m("dynamic.onnx"), "input 'x' has dynamic", "--input-shapes"]),
    # --- --input-shapes
    Row("input-shapes-unknown-module",
        lambda p: [p.m("good.onnx") + ":a", p.m("good.tflite") + ":b",
                   "--input-shapes", "c:x:[1,16]"], 2,
        lambda p: ["'c:x'", "unknown module 'c'"]),
    Row("input-shapes-unknown-input",
        lambda p: [p.m("good.onnx") + ":a", "--input-shapes", "a:nope:[1,16]"], 2,
        lambda p: ["a", p.m("good.onnx"), "'nope', which is not an input"]),
    Row("input-shapes-not-positive",
        lambda p: [p.m("dynamic.onnx") + ":dyn", "--input-shapes", "dyn:x:[-1,8]"], 2,
        lambda p: ["'dyn:x'", "positive"]),
    # --- module names
    Row("duplicate-names", lambda p: [p.m("good.onnx") + ":net", p.m("good.tflite") + ":net"], 2,
        lambda p: ["'net' is used twice", p.m("good.tflite")]),
    Row("names-differ-in-case",
        lambda p: [p.m("good.onnx") + ":net", p.m("good.tflite") + ":NET"], 2,
        lambda p: ["'NET' and 'net' differ only in case", p.m("good.tflite")]),
    Row("name-with-dash", lambda p: [p.m("good.onnx") + ":my-mod"], 2,
        lambda p: ["'my-mod' is not a C identifier", p.m("good.onnx")]),
    Row("name-starts-with-digit", lambda p: [p.m("good.onnx") + ":1abc"], 2,
        lambda p: ["'1abc' is not a C identifier", p.m("good.onnx")]),
    Row("name-is-c-keyword", lambda p: [p.m("good.onnx") + ":int"], 2,
        lambda p: ["'int' is a C keyword", p.m("good.onnx")]),
    Row("name-is-reserved", lambda p: [p.m("good.onnx") + ":modules"], 2,
        lambda p: ["'modules' is reserved", p.m("good.onnx")]),
    Row("module-name-count", lambda p: [p.m("good.onnx"), p.m("good.tflite"),
                                        "--module-name", "a"], 2,
        lambda p: ["2 model file(s) but 1 --module-name"]),
    # --- output
    Row("output-under-a-file",
        lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out / "plain_file" / "m.tar")], 5,
        lambda p: [str(p.out / "plain_file"), "is not a directory"]),
    Row("output-on-proc", lambda p: [p.m("good.onnx") + ":a", "-o", "/proc/m.tar"], 5,
        lambda p: ["/proc/m.tar", "cannot write to directory '/proc'"]),
    Row("output-is-directory", lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out)], 5,
        lambda p: [str(p.out), "output path is a directory"]),
    Row("output-directory-missing",
        lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out / "no" / "m.tar")], 5,
        lambda p: [str(p.out / "no"), "does not exist"]),
    Row("output-is-fifo", lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out / "fifo")], 5,
        lambda p: [str(p.out / "fifo"), "is a FIFO", "refusing to replace it"]),
    Row("output-links-to-fifo",
        lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out / "to_fifo")], 5,
        lambda p: [str(p.out / "to_fifo"), "is a FIFO", f"through the link to '{p.out}"]),
    Row("output-dangling-link",
        lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out / "dangling")], 5,
        lambda p: [str(p.out / "dangling"), "symbolic link to a missing file"]),
    Row("output-is-the-model", lambda p: [p.m("good.onnx") + ":a", "-o", p.m("good.onnx")], 5,
        lambda p: [p.m("good.onnx"), "is the input file", "refusing to overwrite it"]),
    Row("output-is-a-model-hard-link",
        lambda p: [p.m("good.onnx") + ":a", p.m("good.tflite") + ":b",
                   "-o", str(p.out / "hard.tflite")], 5,
        lambda p: [str(p.out / "hard.tflite"), f"is the input file '{p.m('good.tflite')}'"]),
    Row("output-links-to-the-model",
        lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out / "to_model")], 5,
        lambda p: [str(p.out / "to_model"), f"is the input file '{p.m('good.onnx')}'"]),
    Row("output-name-too-long",
        lambda p: [p.m("good.onnx") + ":a", "-o", str(p.out / ("m" * 252 + ".tar"))], 5,
        lambda p: ["256 bytes long, longer than the 255 bytes the file system allows"]),
    Row("run-output-is-the-archive",
        lambda p: [p.m("notes.txt"), "-o", p.m("notes.txt")], 5,
        lambda p: [p.m("notes.txt"), "is the input file", "refusing to overwrite it"],
        command="run"),
    Row("run-output-on-stdout", lambda p: [p.m("notes.txt"), "-o", "-"], 5,
        lambda p: ["'-' (stdout) is not accepted", "./- for a file named '-'"], command="run"),
    # --- target and legacy options
    Row("target-unknown", lambda p: [p.m("good.onnx") + ":a", "--target", "foo"], 2,
        lambda p: ["target 'foo' is not supported"]),
    Row("target-llvm", lambda p: [p.m("good.onnx") + ":a", "--target", "llvm"], 2,
        lambda p: ["target 'llvm' is not supported: only 'c'"]),
    Row("target-legacy-option", lambda p: [p.m("good.onnx") + ":a", "--target",
                                           "c -executor=aot"], 2,
        lambda p: ["'-executor' is no longer part of the target"]),
    Row("aot-interface-api-packed", lambda p: [p.m("good.onnx") + ":a",
                                               "--executor-aot-interface-api", "packed"], 2,
        lambda p: ["--executor-aot-interface-api packed is not supported"]),
    Row("executor-graph", lambda p: [p.m("good.onnx") + ":a", "--executor", "graph"], 2,
        lambda p: ["executor 'graph' is not supported"]),
    Row("pass-config-unknown", lambda p: [p.m("good.onnx") + ":a", "--pass-config",
                                          "tir.no_such_option=1"], 2,
        lambda p: ["unknown --pass-config 'tir.no_such_option'"]),
    # --- `compile` (one model, tvmc's syntax)
    Row("compile-truncated-tflite", lambda p: [p.m("truncated.tflite")], 3,
        lambda p: ["default", p.m("truncated.tflite"), "truncated"], command="compile"),
    Row("compile-keyword-name", lambda p: [p.m("good.onnx"), "--module-name", "double"], 2,
        lambda p: ["'double' is a C keyword"], command="compile"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input-models")
    write_models(folder)
    return folder


def prepare(models: Path, out: Path, row: Row) -> tuple[Place, list[str]]:
    out.mkdir()
    (out / "plain_file").write_text("a regular file\n")
    os.mkfifo(out / "fifo")
    (out / "to_fifo").symlink_to(out / "fifo")
    (out / "dangling").symlink_to(out / "nowhere")
    (out / "to_model").symlink_to(models / "good.onnx")
    os.link(models / "good.tflite", out / "hard.tflite")
    place = Place(models, out)
    argv = row.argv(place)
    if "-o" not in argv:
        argv += ["-o", place.tar]
    if row.command == "run":
        return place, [row.command, *argv]
    # -j 1 in-process: no worker processes for a command that is meant to fail
    return place, [row.command, *argv, "-j", "1"]


def check(row: Row, place: Place, code: int, out: str, err: str, before: list[str]) -> None:
    assert code == row.code, f"exit {code}, expected {row.code}\n{err}"
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    # and nothing else but our progress lines: no log line or warning of TVM's C++
    assert [line for line in err.splitlines() if not PROGRESS.match(line)] == errors, err
    # our messages only: no raw warning of a dependency ("file.py:47: UserWarning: ...")
    assert not re.search(r"\w+Warning: ", err), err
    for needle in row.needles(place):
        assert needle in errors[0], f"{needle!r} not in: {errors[0]}"
    assert "wrote" not in out
    assert sorted(os.listdir(place.out)) == before, "a file was left in the output directory"


def test_table_has_at_least_twenty_rows():
    assert len(ROWS) >= 20
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(capsys, tmp_path, models, row):
    place, argv = prepare(models, tmp_path / "out", row)
    before = sorted(os.listdir(place.out))
    code = driver.main(argv, entry_point_loader=NO_PLUGINS)
    out, err = capsys.readouterr()
    check(row, place, code, out, err, before)


# ----------------------------------------------------------------------------- subprocesses

PARALLEL = 3  # processes at a time
# Rows that get past validation import TVM (about 1 s of CPU per process); the subprocess
# pass runs these few of them, and all with TVMC_TEST_ALL_SUBPROCESS=1.
REACH_TVM = {"truncated-tflite", "random-bytes-onnx", "onnx-missing-initializer",
             "onnx-corrupt-initializer", "onnx-negative-initializer-dims", "onnx-opset-too-new",
             "onnx-unsupported-op", "onnx-custom-op", "tflite-custom-op", "tflite-control-flow",
             "tflite-dynamic-range", "dynamic-shape-without-input-shapes",
             "input-shapes-unknown-input", "pass-config-unknown", "compile-truncated-tflite"}
# ...and those refused while a Relax BlockBuilder builds, whose C++ destructor printed a
# warning on stderr after the process had printed its error (in-process, capsys sees no fd 2)
IN_CONVERSION = {"tflite-int8-if", "tflite-int8-svdf", "tflite-int8-lstm-per-channel",
                 "tflite-strict-int8-float-op", "onnx-lstm-input-forget", "onnx-lstm-activation",
                 "onnx-resize-mode"}
REACH_TVM |= IN_CONVERSION | {"onnx-op-left-after-lowering"}
SUBPROCESS_SAMPLE = {"truncated-tflite", "onnx-corrupt-initializer", "onnx-unsupported-op",
                     "input-shapes-unknown-input", *IN_CONVERSION}
SUBPROCESS_ROWS = [r for r in ROWS if os.environ.get("TVMC_TEST_ALL_SUBPROCESS")
                   or r.id not in REACH_TVM or r.id in SUBPROCESS_SAMPLE]


@pytest.fixture(scope="module")
def subprocess_results(models, tmp_path_factory) -> dict[str, tuple]:
    """The rows through `python -m tvmc_multimodule`, a few at a time."""
    root = tmp_path_factory.mktemp("bad-input-runs")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO),
                                                        os.environ.get("PYTHONPATH", "")])}
    results: dict[str, tuple] = {}
    pending = list(SUBPROCESS_ROWS)
    running: list[tuple[Row, Place, list[str], subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < PARALLEL:
            row = pending.pop(0)
            place, argv = prepare(models, root / row.id, row)
            before = sorted(os.listdir(place.out))
            process = subprocess.Popen([sys.executable, "-m", "tvmc_multimodule", *argv],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, env=env, cwd=root)
            running.append((row, place, before, process))
        row, place, before, process = running.pop(0)
        out, err = process.communicate(timeout=300)
        results[row.id] = (place, process.returncode, out, err, before)
    return results


@pytest.mark.parametrize("row", SUBPROCESS_ROWS, ids=[r.id for r in SUBPROCESS_ROWS])
def test_bad_input_subprocess(subprocess_results, row):
    place, code, out, err, before = subprocess_results[row.id]
    check(row, place, code, out, err, before)
