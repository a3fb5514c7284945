"""TVM 0.18 tvmc command lines (microTVM tutorials): each old option accepted with its effect
checked, or refused with its one-line reason; the compile progress and summary table."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

import cbuild
import references
from builders import onnx_models, tflite_int8_models
from tvmc_cli import NO_PLUGINS, tvmc
from tvmc_multimodule.cli import driver, options
from tvmc_multimodule.cli.legacy import REFUSED

FAKE_TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(24)


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def settings_of(model: Path, out: Path, *argv: str) -> options.CompileSettings:
    parser = driver.build_parser(driver.build_registry(NO_PLUGINS))
    args = driver.parse_arguments(parser, ["compile", str(model), "-o", str(out), *argv])
    return options.validate_compile(args, [(args.model, args.module_name)],
                                    module_prefixes=False)[1]


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "kws.tflite"
    path.write_bytes(FAKE_TFLITE)
    return path


# ----------------------------------------------------------------------------- mapped options

@pytest.mark.parametrize("argv, canonical", [
    (["--target-c-mcpu=cortex-m4"], "c -mcpu=cortex-m4"),
    (["--target-c-mcpu", "cortex-m7", "--target-c-march=armv7e-m"],
     "c -march=armv7e-m -mcpu=cortex-m7"),
    (["--target", "c -mcpu=cortex-m4", "--target-c-mcpu=cortex-m4"], "c -mcpu=cortex-m4"),
    (["--executor-aot-workspace-byte-alignment", "64",
      "--executor-aot-constant-byte-alignment", "32"],
     "c -constants-byte-alignment=32 -workspace-byte-alignment=64"),
])
def test_old_target_options_map_onto_the_target(model, tmp_path, argv, canonical):
    assert settings_of(model, tmp_path / "m.tar", *argv).target.canonical == canonical


def test_old_options_accepted_with_a_note(model, tmp_path):
    settings = settings_of(model, tmp_path / "m.tar", "--runtime-crt-system-lib", "1",
                           "--executor-aot-link-params", "1",
                           "--pass-config", "tir.usmp.enable=1",
                           "--pass-config", "tir.usmp.algorithm=hill_climb",
                           "--desired-layout", "NHWC")
    notes = " | ".join(settings.notes)
    assert "--runtime-crt-system-lib 1 changes nothing" in notes
    assert "tir.usmp.algorithm=hill_climb: the workspace is planned by tvmc-multimodule" in notes
    assert settings.pass_config == {} and not settings.workspace_io
    assert settings.desired_layout == "NHWC"


@pytest.mark.parametrize("argv, message", [
    *[([flag] if not takes else [flag, "x"], f"{flag} is not supported: {reason}")
      for flag, (takes, reason) in REFUSED.items()],
    (["--pass-config", "tir.usmp.enable=0"], "tir.usmp.enable=0 is not supported"),
    (["--pass-config", "tir.usmp.algorithm=best"], "unknown USMP algorithm"),
    (["--pass-config", "tir.usmp.custom_algorithm=x"], "custom_algorithm=x is not supported"),
    (["--executor-aot-link-params", "0"], "constants are always part of the generated C"),
    (["--runtime-crt-system-lib", "2"], "takes 0 or 1"),
    (["--desired-layout", "NCWH"], "choose NCHW or NHWC"),
    (["--desired-layout", "NHWC", "--desired-layout-ops", "nn.dense"],
     "cannot change the layout of nn.dense"),
    (["--target", "c -mcpu=a", "--target-c-mcpu=b"], "'-mcpu' is given twice"),
])
def test_old_options_refused_with_their_reason(capsys, model, tmp_path, argv, message):
    code, out, err = tvmc(capsys, "compile", str(model), "-o", str(tmp_path / "m.tar"), *argv)
    assert code == 2 and message in error_line(err)
    assert not (tmp_path / "m.tar").exists()


def test_unknown_option_with_a_value_is_named_not_the_model(capsys, model, tmp_path):
    code, _, err = tvmc(capsys, "compile", "--target-llvm-mcpu", "skylake", "--frob", "3",
                        str(model), "-o", str(tmp_path / "m.tar"))
    line = error_line(err)
    assert code == 2
    assert "--target-llvm-mcpu: target 'llvm' is not supported" in line
    assert "unknown option '--frob'" in line and str(model) not in line
    assert "usage: tvmc compile " in err  # the subcommand's usage, not tvmc's


def test_unknown_target_kind_option_with_dash_in_kind(capsys, model, tmp_path):
    code, _, err = tvmc(capsys, "compile", "--target-ethos-u-accelerator_config=ethos-u55-256",
                        str(model))
    assert code == 2 and "target 'ethos-u' is not supported" in error_line(err)
    code, _, err = tvmc(capsys, "compile", "--target-cmsis-nn-mattr=+nodsp", str(model))
    assert code == 2 and "unknown option '-mattr' for target 'cmsis-nn'" in error_line(err)
    code, _, err = tvmc(capsys, "compile", "--target-cmsis-nn-mcpu=cortex-m55", str(model))
    assert code == 2 and "needs 'cmsis-nn' in --target" in error_line(err)


def test_every_problem_of_a_target_string(capsys, model, tmp_path):
    code, _, err = tvmc(capsys, "compile", str(model), "-o", str(tmp_path / "m.tar"),
                        "--target", "c -foo=1 -libs -mcpu=a -mcpu=b", "--use-vm")
    line = error_line(err)
    for needle in ("unknown option '-foo'", "'-libs' needs a value", "'-mcpu' is given twice",
                   "--use-vm is not supported"):
        assert needle in line
    assert code == 2


def test_old_microtvm_command_line_compiles(capsys, tmp_path):
    """The tutorial's command line end to end: the target reaches the archive, the schedule
    follows -mcpu, the USMP options and system-lib are notes."""
    path = tmp_path / "conv.onnx"
    onnx_models.save(onnx_models.conv2d(), path)
    out = tmp_path / "m.tar"
    code, stdout, err = tvmc(
        capsys, "compile", str(path), "--target", "c", "--target-c-mcpu=cortex-m4",
        "--runtime", "crt", "--runtime-crt-system-lib", "1", "--executor", "aot",
        "--executor-aot-interface-api", "c", "--executor-aot-unpacked-api", "1",
        "--pass-config", "tir.usmp.enable=1", "--pass-config", "tir.usmp.algorithm=hill_climb",
        "--pass-config", "tir.disable_vectorize=1", "-f", "mlf", "-o", str(out))
    assert code == 0, err
    with tarfile.open(out) as tar:
        meta = json.load(tar.extractfile("./metadata.json"))["modules"]["default"]
    assert meta["target"] == ["c -mcpu=cortex-m4"]
    assert meta["options"]["schedule"] == "scalar"
    assert "note: --pass-config tir.usmp.enable=1" in err
    assert "note: --runtime-crt-system-lib 1" in err


def _operator_names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        meta = json.load(tar.extractfile("./metadata.json"))["modules"]["default"]
    return [op["function_name"] for op in meta["memory"]["functions"]["operator_functions"]]


@pytest.mark.skipif(not cbuild.have("gcc"), reason="needs gcc")
def test_desired_layout_nchw_keeps_onnx_layout(capsys, tmp_path):
    """NCHW: no transposes around the convolution (the default converts to NHWC); the outputs
    still match onnxruntime."""
    model = onnx_models.conv2d()
    path = tmp_path / "conv.onnx"
    onnx_models.save(model, path)
    names = {}
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = references.run_onnxruntime(model, {"x": x})[0]
    for layout in ("default", "NCHW"):
        out = tmp_path / f"{layout}.tar"
        extra = [] if layout == "default" else ["--desired-layout", layout]
        assert tvmc(capsys, "compile", str(path), "-o", str(out), *extra)[0] == 0
        names[layout] = _operator_names(out)
        from tvmc_multimodule import load_model_library_format
        mod = load_model_library_format(str(out)).modules["default"]
        root = cbuild.extract(out, tmp_path / layout)
        got = cbuild.build_and_run(root, {"default": (mod.inputs, mod.outputs)},
                                   {"default": [x]})["default"][0]
        cbuild.assert_close(got, expected, f"{layout} layout")
    assert any("transpose" in n for n in names["default"])
    assert not any("transpose" in n for n in names["NCHW"])


# ----------------------------------------------------------------------------- progress, table

def test_int8_model_with_other_input_shape_warns(capsys, tmp_path):
    path = tmp_path / "fc.tflite"
    path.write_bytes(tflite_int8_models.fully_connected())
    code, out, err = tvmc(capsys, "compile", str(path), "-o", str(tmp_path / "m.tar"),
                          "--input-shapes", "x:[4,24]")
    assert code == 0, err
    assert "--input-shapes change the shape the int8 model declares" in err
    assert "compiles in float" in err


def test_progress_and_totals(capsys, tmp_path):
    path = tmp_path / "sub" / "gemm.onnx"
    path.parent.mkdir()
    onnx_models.save(onnx_models.gemm(), path)
    code, out, err = tvmc(capsys, "compile-multi", f"{path}:a", f"{path}:b", "-j", "1",
                          "--workspace", "shared", "-o", str(tmp_path / "m.tar"))
    assert code == 0, err
    lines = err.splitlines()
    assert lines.index("[1/2] a (gemm.onnx) ...") < lines.index("[2/2] b (gemm.onnx) ...")
    assert str(path.parent) not in out  # base names in the table
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    # workspace MAX (shared arena), constants SUM
    assert rows["total"][-4] == rows["a"][-4]
    assert int(rows["total"][-2]) == 2 * int(rows["a"][-2])
    assert "max over modules: one shared arena" in out


def test_notes_only_options_change_nothing(capsys, tmp_path, monkeypatch):
    """The options accepted with a note leave the archive byte for byte as without them."""
    path = tmp_path / "conv.onnx"
    onnx_models.save(onnx_models.conv2d(), path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    archives = []
    for extra in ([], ["--runtime-crt-system-lib", "1", "--executor-aot-link-params", "1",
                       "--pass-config", "tir.usmp.enable=1",
                       "--pass-config", "tir.usmp.algorithm=greedy_by_conflicts"]):
        out = tmp_path / f"m{len(archives)}.tar"
        assert tvmc(capsys, "compile", str(path), "-o", str(out), *extra)[0] == 0
        archives.append(out.read_bytes())
    assert archives[0] == archives[1]


def test_desired_layout_nhwc_applies_at_o0(capsys, tmp_path):
    """-O0 converts no layout by default; --desired-layout NHWC does (transposes appear)."""
    path = tmp_path / "conv.onnx"
    onnx_models.save(onnx_models.conv2d(), path)
    names = {}
    for label, extra in (("default", []), ("nhwc", ["--desired-layout", "NHWC"])):
        out = tmp_path / f"{label}.tar"
        assert tvmc(capsys, "compile", str(path), "-O", "0", "-o", str(out), *extra)[0] == 0
        names[label] = _operator_names(out)
    assert not any("transpose" in n for n in names["default"])
    assert any("transpose" in n for n in names["nhwc"])


def test_unknown_option_reported_with_the_other_problems(capsys, model, tmp_path):
    code, _, err = tvmc(capsys, "compile", str(model), "-o", str(tmp_path / "m.tar"), "--frob",
                        "--target-llvm-mcpu", "x", "--target", "c -foo=1", "--use-vm")
    line = error_line(err)
    for needle in ("unknown option '--frob'", "target 'llvm' is not supported",
                   "unknown option '-foo'", "--use-vm is not supported"):
        assert needle in line
    assert code == 2 and "usage: tvmc compile " in err
