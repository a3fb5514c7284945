"""The `tvmc` command line: parsing, validation, the error boundary, the registry, `run`.

Fast on purpose: no model is compiled here except in the one end-to-end test at the bottom.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tvmc_cli import NO_PLUGINS, error_lines, tvmc
from tvmc_multimodule.cli import driver, options, report, run
from tvmc_multimodule.errors import ErrorGroup, ModelError, OutputError, UsageError
from tvmc_multimodule.model import CompiledModule, TensorInfo
from tvmc_multimodule.target import parse_target

REPO = Path(__file__).resolve().parents[1]

# A file that format detection takes for TFLite: the flatbuffer identifier at bytes 4..8.
FAKE_TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(24)


def assert_one_error(stderr: str, *needles: str) -> str:
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "kws.tflite"
    path.write_bytes(FAKE_TFLITE)
    return path


@pytest.fixture
def out_dir(tmp_path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


# ----------------------------------------------------------------------------- target

@pytest.mark.parametrize("text, options_, canonical", [
    ("c", {}, "c"),
    ("  c  ", {}, "c"),
    ("c -mcpu=cortex-m4", {"mcpu": "cortex-m4"}, "c -mcpu=cortex-m4"),
    ("c -mcpu=cortex-m4 -march=armv7e-m", {"mcpu": "cortex-m4", "march": "armv7e-m"},
     "c -march=armv7e-m -mcpu=cortex-m4"),
    ("c --mcpu=cortex-m7", {"mcpu": "cortex-m7"}, "c -mcpu=cortex-m7"),
    ("c -workspace-byte-alignment=16", {"workspace-byte-alignment": 16},
     "c -workspace-byte-alignment=16"),
    ("c -libs=a,b", {"libs": ["a", "b"]}, "c -libs=a,b"),
    ('{"kind": "c", "mcpu": "cortex-m55"}', {"mcpu": "cortex-m55"}, "c -mcpu=cortex-m55"),
])
def test_parse_target_valid(text, options_, canonical):
    spec = parse_target(text)
    assert (spec.kind, spec.options, spec.canonical) == ("c", options_, canonical)
    assert spec.to_tvm() == {"kind": "c", **options_}
    assert parse_target(spec.canonical) == spec


@pytest.mark.parametrize("text, library_options, canonical", [
    ("cmsis-nn, c", None, "cmsis-nn, c"),
    ("c, cmsis-nn", None, "cmsis-nn, c"),
    ("cmsis-nn -mcpu=cortex-m4, c", None, "cmsis-nn, c -mcpu=cortex-m4"),
    ("cmsis-nn, c -mcpu=cortex-m55", None, "cmsis-nn, c -mcpu=cortex-m55"),
    ("cmsis-nn, c", {"cmsis-nn": {"mcpu": "cortex-m7"}}, "cmsis-nn, c -mcpu=cortex-m7"),
])
def test_parse_target_cmsis_nn(text, library_options, canonical):
    """`cmsis-nn` beside `c` (tvmc's BYOC syntax): its -mcpu is the core's, the c target's."""
    spec = parse_target(text, library_options=library_options)
    assert spec.cmsis_nn and spec.kind == "c" and spec.canonical == canonical
    assert parse_target(spec.canonical) == spec and not parse_target("c").cmsis_nn


def test_parse_target_cmsis_nn_option_without_the_library():
    with pytest.raises(UsageError) as info:
        parse_target("c", library_options={"cmsis-nn": {"mcpu": "cortex-m4"}})
    assert "needs 'cmsis-nn' in --target" in info.value.one_line()


@pytest.mark.parametrize("text, message", [
    ("llvm", "target 'llvm' is not supported: only 'c' (plain C) is"),
    ("cuda", "target 'cuda' is not supported"),
    ("cmsis-nn", "names no 'c' target"),
    ("cmsis-nn -mattr=+nodsp, c", "unknown option '-mattr' for target 'cmsis-nn'"),
    ("cmsis-nn -mcpu=cortex-m4, c -mcpu=cortex-m7", "one core runs both"),
    ("cmsis-nn, cmsis-nn, c", "names 'cmsis-nn' twice"),
    ("ethos-u -accelerator_config=ethos-u55-256, c", "target 'ethos-u' is not supported"),
    ("c, llvm", "target 'llvm' is not supported"),
    ("c,llvm", "target 'llvm' is not supported"),
    ("c, c", "only one 'c' target"),
    ("c -mcpu", "needs a value"),
    ("c mcpu=cortex-m4", "cannot parse target option"),
    ("c -foo=1", "unknown option '-foo'"),
    ("c -executor=aot", "no longer part of the target"),
    ("c --link-params", "no longer part of the target"),
    ("c -mcpu=a -mcpu=b", "given twice"),
    ("c -workspace-byte-alignment=x", "positive integer"),
    ("c -workspace-byte-alignment=24", "power of two"),
    ("c -constants-byte-alignment=8192", "power of two up to 4096"),
    ('c -mcpu="cortex', "cannot parse --target"),
    ("", "empty --target"),
    ('{"kind": "llvm"}', "target 'llvm' is not supported"),
    ("{nope", "not valid JSON"),
])
def test_parse_target_invalid(text, message):
    with pytest.raises(UsageError) as info:
        parse_target(text)
    assert message in info.value.one_line()
    assert info.value.exit_code == 2


# ----------------------------------------------------------------------------- MODEL[:NAME]

@pytest.mark.parametrize("text, expected", [
    ("kws.tflite:kws", ("kws.tflite", "kws")),
    ("models/kws.tflite:kws", ("models/kws.tflite", "kws")),
    ("kws.tflite", ("kws.tflite", None)),
    ("C:\\models\\kws.tflite", ("C:\\models\\kws.tflite", None)),
    ("C:\\models\\kws.tflite:kws", ("C:\\models\\kws.tflite", "kws")),
    ("dir:x/kws.tflite", ("dir:x/kws.tflite", None)),
    ("a:b:kws", ("a:b", "kws")),
    ("kws.tflite:", ("kws.tflite:", None)),
])
def test_parse_model_arg(text, expected):
    assert options.parse_model_arg(text) == expected


def test_parse_model_arg_existing_file_with_colon(tmp_path):
    path = tmp_path / "model:v2"
    path.write_bytes(FAKE_TFLITE)
    assert options.parse_model_arg(str(path)) == (str(path), None)


def test_parse_model_arg_empty_name(model):
    with pytest.raises(UsageError, match="empty module name"):
        options.parse_model_arg(f"{model}:")


def test_pair_names_from_suffix_and_default():
    assert options.pair_module_names(["a/kws.tflite:kws", "b/ad-1.onnx"], None) == [
        ("a/kws.tflite", "kws"), ("b/ad-1.onnx", "ad_1")]


def test_pair_module_name_options_in_order():
    assert options.pair_module_names(["kws.tflite", "ad.onnx"], ["kws", "anomaly"]) == [
        ("kws.tflite", "kws"), ("ad.onnx", "anomaly")]


@pytest.mark.parametrize("names", [["kws"], ["kws", "ad", "extra"]])
def test_pair_module_name_count_mismatch(names):
    with pytest.raises(UsageError, match=r"2 model file\(s\) but \d --module-name"):
        options.pair_module_names(["kws.tflite", "ad.onnx"], names)


def test_pair_mixing_suffix_and_option(model):
    with pytest.raises(UsageError, match="--module-name is given too"):
        options.pair_module_names([f"{model}:kws"], ["other"])


def test_cli_module_name_pairing_mismatch(capsys, model, out_dir):
    code, _, err = tvmc(capsys, "compile-multi", str(model), str(model), "--module-name", "a",
                        "-o", str(out_dir / "m.tar"))
    assert code == 2
    assert_one_error(err, "2 model file(s) but 1 --module-name")


# ----------------------------------------------------------------------------- input shapes

@pytest.mark.parametrize("texts, expected", [
    ("input0:[1,32,32,3] input1:[10]", {"input0": [1, 32, 32, 3], "input1": [10]}),
    ("x:[1, 49, 10, 1]", {"x": [1, 49, 10, 1]}),
    ("serving_default_x:0:[1,640]", {"serving_default_x:0": [1, 640]}),
    ("gpu_0/data_0:[1,3,224,224]", {"gpu_0/data_0": [1, 3, 224, 224]}),
    ("a.b:[2],c:[3]", {"a.b": [2], "c": [3]}),
    (["kws:in:[1,2]", "ad:in:[3]"], {"kws:in": [1, 2], "ad:in": [3]}),
    ("s:[]", {"s": []}),
    (None, {}),
])
def test_parse_input_shapes(texts, expected):
    assert options.parse_input_shapes(texts) == expected


@pytest.mark.parametrize("text, message", [
    ("input0", "cannot parse --input-shapes"),
    ("input0:[1,2", "cannot parse --input-shapes"),
    ("x:[1,2] garbage", "cannot parse --input-shapes"),
    ("", "cannot parse --input-shapes"),
    ("x:[1,a]", "not a list of integers"),
    ("x:[1,-1]", "positive number"),
    ("x:[0,3]", "positive number"),
    ("x:[1] x:[2]", "gives 'x' twice"),
])
def test_parse_input_shapes_invalid(text, message):
    with pytest.raises(UsageError, match=message):
        options.parse_input_shapes(text)


def test_input_shapes_module_prefix():
    shapes = options.parse_input_shapes("kws:input0:[1,49,10,1] anomaly:x:0:[1,640]")
    assert options.split_input_shapes(shapes, ["kws", "anomaly"]) == {
        "kws": {"input0": [1, 49, 10, 1]}, "anomaly": {"x:0": [1, 640]}}


def test_input_shapes_single_module_keeps_tvmc_syntax():
    shapes = options.parse_input_shapes("serving_default_x:0:[1,640] kws:y:[2]")
    assert options.split_input_shapes(shapes, ["kws"]) == {
        "kws": {"serving_default_x:0": [1, 640], "y": [2]}}


def test_input_shapes_unknown_module_prefix():
    shapes = options.parse_input_shapes("kwz:input0:[1,2] ad:x:[3]")
    with pytest.raises(UsageError) as info:
        options.split_input_shapes(shapes, ["kws", "ad"])
    assert "unknown module 'kwz'" in info.value.one_line()
    assert "kws, ad" in info.value.one_line()


def test_input_shapes_need_prefix_with_several_modules():
    with pytest.raises(UsageError, match="needs a module prefix"):
        options.split_input_shapes({"input0": [1]}, ["kws", "ad"])


# the two per-input options share one parser and splitter: the same mistakes read alike
PER_INPUT_OPTIONS = {
    "--input-shapes": (options.parse_input_shapes, options.split_input_shapes, "{}:[1,2]"),
    "--input-values": (options.parse_input_values, options.split_input_values, "{}=[1,2]"),
}


@pytest.mark.parametrize("option", sorted(PER_INPUT_OPTIONS))
def test_per_input_options_report_mistakes_alike(option):
    parse, split, entry = PER_INPUT_OPTIONS[option]
    parsed = parse([f"{entry.format('kwz:x')} {entry.format('ad:y')}"])
    with pytest.raises(UsageError) as info:
        split(parsed, ["kws", "ad"])
    assert info.value.one_line().startswith(f"{option} entry 'kwz:x' names unknown module "
                                            "'kwz'"), info.value.one_line()
    assert "modules are: kws, ad" in info.value.one_line()
    with pytest.raises(UsageError) as info:
        split(parse([entry.format("x")]), ["kws", "ad"])
    line = info.value.one_line()
    assert line.startswith(f"{option} entry 'x' needs a module prefix"), line
    assert f"e.g. {entry.format('kws:x')}" in line, line
    assert split(parse([entry.format("kws:x")]), ["kws"])["kws"]["x"] in ([1, 2], [1.0, 2.0])
    with pytest.raises(UsageError, match=f"{option} gives 'x' twice"):
        parse([f"{entry.format('x')} {entry.format('x')}"])
    for bad in ("", "x", entry.format("x") + " junk"):
        with pytest.raises(UsageError, match=f"cannot parse {option} '{re.escape(bad)}'"):
            parse([bad])


def test_cli_unknown_shape_prefix_is_usage_error(capsys, model, out_dir):
    code, _, err = tvmc(capsys, "compile-multi", f"{model}:kws", f"{model}:ad",
                        "--input-shapes", "nope:x:[1,2]", "-o", str(out_dir / "m.tar"))
    assert code == 2
    assert_one_error(err, "unknown module 'nope'")
    assert list(out_dir.iterdir()) == []


# ----------------------------------------------------------------------------- pass config

def test_parse_pass_configs():
    assert options.parse_pass_configs([
        "tir.disable_vectorize=1", "a.flag=true", "b.flag=False", "c.name=opt,pass",
        "d.neg=-3", " e = x=y "]) == {
        "tir.disable_vectorize": 1, "a.flag": True, "b.flag": False, "c.name": "opt,pass",
        "d.neg": -3, "e": "x=y"}
    assert options.parse_pass_configs(None) == {}


@pytest.mark.parametrize("item", ["novalue", "=1", "name=", ""])
def test_parse_pass_configs_invalid(item):
    with pytest.raises(UsageError, match="invalid --pass-config"):
        options.parse_pass_configs([item])


KNOWN_CONFIGS = {"tirx.disable_vectorize": "bool", "relax.FuseOps.max_depth": "int",
                 "relax.fallback_device_type": "ir.IntImm",
                 "tirx.UnrollLoop": "tirx.transform.UnrollLoopConfig"}


def test_check_pass_configs_types_and_old_names():
    configs = options.parse_pass_configs(["tir.disable_vectorize=1", "relax.FuseOps.max_depth=4",
                                          "relax.fallback_device_type=1"])
    assert options.check_pass_configs(configs, KNOWN_CONFIGS) == {
        "tirx.disable_vectorize": True, "relax.FuseOps.max_depth": 4,
        "relax.fallback_device_type": 1}
    assert options.check_pass_configs({}, None) == {}  # TVM is not asked


@pytest.mark.parametrize("item, message", [
    ("foo.bar=1", "unknown --pass-config 'foo.bar'"),
    ("tirx.disable_vectorize=7", "takes true/false or 1/0"),
    ("relax.FuseOps.max_depth=deep", "takes an integer"),
    ("tirx.UnrollLoop=1", "cannot be given on the command line"),
])
def test_check_pass_configs_invalid(item, message):
    with pytest.raises(UsageError, match=message):
        options.check_pass_configs(options.parse_pass_configs([item]), KNOWN_CONFIGS)


# ----------------------------------------------------------------------------- argument parsing

def parse(*argv: str):
    parser = driver.build_parser(driver.build_registry(NO_PLUGINS))
    return parser.parse_args(list(argv))


def test_compile_multi_defaults():
    args = parse("compile-multi", "a.tflite:kws", "b.onnx")
    assert args.models == ["a.tflite:kws", "b.onnx"]
    assert (args.target, args.output, args.output_format, args.executor, args.runtime) == (
        "c", "module.tar", "mlf", "aot", "crt")
    assert (args.opt_level, args.jobs, args.module_name, args.model_format) == (
        3, os.cpu_count() or 1, None, None)
    assert options.check_fixed_options(args) == []


def test_compile_multi_all_options():
    args = parse("-v", "compile-multi", "a.tflite", "b.onnx", "--module-name", "kws",
                 "--module-name", "ad", "--target", "c -mcpu=cortex-m4", "--model-format",
                 "tflite", "--input-shapes", "kws:x:[1]", "--input-shapes", "ad:y:[2]",
                 "-o", "m.tar", "-f", "mlf", "--executor", "aot", "--runtime", "crt",
                 "--pass-config", "a=1", "--pass-config", "b=x", "-O", "1", "-j", "4", "-vv")
    assert args.module_name == ["kws", "ad"]
    assert args.input_shapes == ["kws:x:[1]", "ad:y:[2]"]
    assert args.pass_config == ["a=1", "b=x"]
    assert (args.opt_level, args.jobs, args.verbose, args.sub_verbose) == (1, 4, 1, 2)


def test_compile_single_defaults():
    args = parse("compile", "model.tflite")
    assert (args.model, args.module_name, args.output) == ("model.tflite", "default",
                                                           "module.tar")


def test_compile_default_module_name_is_valid(model, out_dir):
    args = parse("compile", str(model), "-o", str(out_dir / "m.tar"))
    jobs, _ = options.validate_compile(args, [(args.model, args.module_name)],
                                       module_prefixes=False)
    assert jobs[0].name == "default"


def test_legacy_aot_flags_accepted_as_no_ops():
    args = parse("compile", "m.tflite", "--executor-aot-interface-api", "c",
                 "--executor-aot-unpacked-api", "1")
    assert options.check_fixed_options(args) == []


@pytest.mark.parametrize("argv, message", [
    (["--executor-aot-interface-api", "packed"], "interface-api packed is not supported"),
    (["--executor-aot-unpacked-api", "0"], "unpacked-api 0 is not supported"),
    (["--executor", "graph"], "executor 'graph' is not supported: only 'aot' is"),
    (["--runtime", "cpp"], "runtime 'cpp' is not supported"),
    (["-f", "so"], "output format 'so' is not supported"),
    (["-j", "0"], "at least 1"),
])
def test_unsupported_fixed_options(argv, message):
    problems = options.check_fixed_options(parse("compile", "m.tflite", *argv))
    assert len(problems) == 1 and message in problems[0].one_line()
    assert "unpacked API" in problems[0].one_line() or "api" not in argv[0]


@pytest.mark.parametrize("argv, message", [
    (["compile-multi"], "the following arguments are required: MODEL[:NAME]"),
    (["compile-multi", "a.tflite", "-O", "7"], "invalid choice"),
    (["compile-multi", "a.tflite", "--model-format", "pb"], "invalid choice"),
    (["compile-multi", "a.tflite", "-j", "x"], "invalid int value"),
    (["frobnicate"], "invalid choice"),
    ([], "no command given"),
])
def test_argparse_errors_are_one_line(capsys, argv, message):
    code, out, err = tvmc(capsys, *argv)
    assert code == 2
    assert_one_error(err, message)
    assert "usage:" in err


def test_help_and_version(capsys):
    code, out, _ = tvmc(capsys, "--help")
    assert code == 0 and "compile-multi" in out and "run" in out
    code, out, _ = tvmc(capsys, "--version")
    assert code == 0 and out.startswith("tvmc-multimodule ") and "apache-tvm" in out


# ----------------------------------------------------------------------------- validation

def run_invalid(capsys, out_dir: Path, *argv: str) -> tuple[int, str]:
    """Run a command that must fail validation: nothing may appear in `out_dir`."""
    before = sorted(out_dir.iterdir())
    code, out, err = tvmc(capsys, *argv)
    assert sorted(out_dir.iterdir()) == before
    assert "wrote" not in out
    return code, err


@pytest.mark.parametrize("make, code, needle", [
    (lambda d, m: f"{d}/missing.tflite:kws", 3, "missing.tflite): file not found"),
    (lambda d, m: f"{d}:kws", 3, "is a directory"),
    (lambda d, m: f"{(d / 'empty.onnx').write_bytes(b'') or d / 'empty.onnx'}:kws", 3,
     "file is empty"),
    (lambda d, m: f"{m}:my-mod", 2, "module name 'my-mod' is not a C identifier"),
    (lambda d, m: f"{m}:1abc", 2, "module name '1abc' is not a C identifier"),
    (lambda d, m: f"{m}:int", 2, "module name 'int' is a C keyword"),
])
def test_validation_error_per_model(capsys, tmp_path, model, out_dir, make, code, needle):
    argument = make(tmp_path, model)
    got, err = run_invalid(capsys, out_dir, "compile-multi", argument,
                           "-o", str(out_dir / "m.tar"))
    assert got == code
    line = assert_one_error(err, needle)
    name = argument.rpartition(":")[2]
    assert name in line  # the module or the file is named


def test_names_differing_only_in_case(capsys, model, out_dir):
    code, err = run_invalid(capsys, out_dir, "compile-multi", f"{model}:kws", f"{model}:KWS",
                            "-o", str(out_dir / "m.tar"))
    assert code == 2
    assert_one_error(err, "'KWS' and 'kws' differ only in case", str(model))


@pytest.mark.parametrize("argv, code, needle", [
    (["-o", "{out}"], 5, "output path is a directory"),
    (["-o", "{out}/no/such/dir/m.tar"], 5, "does not exist"),
    (["--target", "llvm"], 2, "target 'llvm' is not supported: only 'c' (plain C) is"),
    (["--executor", "graph"], 2, "executor 'graph' is not supported"),
    (["--pass-config", "oops"], 2, "invalid --pass-config"),
])
def test_validation_error_options(capsys, model, out_dir, argv, code, needle):
    argv = [a.format(out=out_dir) for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(out_dir / "m.tar")]
    got, err = run_invalid(capsys, out_dir, "compile-multi", f"{model}:kws", *argv)
    assert got == code
    assert_one_error(err, needle)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_directory(capsys, model, out_dir):
    out_dir.chmod(0o500)
    try:
        code, err = run_invalid(capsys, out_dir, "compile-multi", str(model),
                                "-o", str(out_dir / "m.tar"))
    finally:
        out_dir.chmod(0o700)
    assert code == 5
    assert_one_error(err, "cannot write to directory")


def test_all_problems_reported_together(capsys, tmp_path, model, out_dir):
    code, err = run_invalid(capsys, out_dir, "compile-multi", f"{tmp_path}/nope.tflite:a",
                            f"{model}:my-mod", f"{model}:int", "--target", "llvm",
                            "--executor", "graph", "-o", str(out_dir))
    assert code == 2  # mixed kinds of problem: usage
    line = assert_one_error(err, "a (", "nope.tflite): file not found", "'my-mod'", "'int'",
                            "'llvm'", "'graph'", "output path is a directory")
    assert line.count(";") == 5


def test_validation_runs_before_compiling(monkeypatch, model, out_dir):
    """A bad option among good models: the compiler is never called."""
    import tvmc_multimodule.api as api

    monkeypatch.setattr(api, "compile_model", lambda *a, **k: pytest.fail("compiled"))
    args = parse("compile-multi", f"{model}:kws", "--target", "llvm", "-o",
                 str(out_dir / "m.tar"))
    with pytest.raises(UsageError):
        args.func(args)


def test_valid_command_line_becomes_jobs(model, out_dir):
    args = parse("compile-multi", f"{model}:kws", f"{model}:ad", "--input-shapes",
                 "kws:x:[1,2] ad:y:[3]", "--target", "c -mcpu=cortex-m4", "-O", "2",
                 "--pass-config", "tir.disable_vectorize=true", "-o", str(out_dir / "m.tar"))
    jobs, settings = options.validate_compile(args, options.pair_module_names(
        args.models, args.module_name), module_prefixes=True)
    assert [(j.name, j.model_format, j.input_shapes) for j in jobs] == [
        ("kws", "tflite", {"x": [1, 2]}), ("ad", "tflite", {"y": [3]})]
    assert settings.target.canonical == "c -mcpu=cortex-m4"
    assert (settings.opt_level, settings.pass_config) == (2, {"tirx.disable_vectorize": True})
    assert list(out_dir.iterdir()) == []  # the write test left nothing behind


def test_compile_errors_carry_module_and_file(capsys, monkeypatch, model, out_dir):
    import tvmc_multimodule.api as api

    def failing(path, module_name="default", **_):
        if module_name == "ad":
            raise ModelError("operator FOO is not supported")
        return object()

    monkeypatch.setattr(api, "compile_model", failing)
    monkeypatch.setattr(api, "export_model_library_format",
                        lambda *a: pytest.fail("nothing may be written"))
    # -j 1: the patched compile_model lives in this process only
    code, out, err = tvmc(capsys, "compile-multi", f"{model}:kws", f"{model}:ad", "-j", "1",
                          "-o", str(out_dir / "m.tar"))
    assert code == 3
    assert_one_error(err, f"ad ({model}): operator FOO is not supported")
    base = os.path.basename(model)
    assert f"[1/2] kws ({base}) ..." in err and f"[2/2] ad ({base}) ... failed" in err
    assert list(out_dir.iterdir()) == []


def test_bug_in_compiler_is_internal_error_with_location(capsys, monkeypatch, model, out_dir):
    import tvmc_multimodule.api as api

    monkeypatch.setattr(api, "compile_model", lambda *a, **k: {}["boom"])
    code, _, err = tvmc(capsys, "compile-multi", f"{model}:kws", "-o", str(out_dir / "m.tar"))
    assert code == 70
    assert_one_error(err, f"kws ({model}): internal error: KeyError", "this is a bug")


def test_subprocess_reports_one_line(tmp_path, model, out_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "tvmc_multimodule", "compile-multi",
         f"{tmp_path}/missing.tflite:kws", f"{model}:my-mod", "-o", str(out_dir / "m.tar")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert_one_error(done.stderr, "kws (", "missing.tflite): file not found", "'my-mod'")
    assert list(out_dir.iterdir()) == []


# ----------------------------------------------------------------------------- error boundary

def plugin(name: str, action):
    """A fake entry point whose register_parser adds subcommand `name` running `action`."""
    def register_parser(subparsers):
        sub = subparsers.add_parser(name, help=f"test {name}")
        sub.set_defaults(func=lambda args: action())

    return SimpleNamespace(name=name, load=lambda: register_parser)


def test_unexpected_exception_is_internal_error(capsys):
    def crash():
        raise RuntimeError("kaput\nsecond line")

    code, _, err = tvmc(capsys, "crash", loader=lambda: [plugin("crash", crash)])
    assert code == 70
    line = assert_one_error(err, "internal error: RuntimeError: kaput second line",
                            "this is a bug, please report it to", "run with -v")
    assert driver.ISSUES_WHERE in line


def test_verbose_adds_traceback(capsys):
    def crash():
        raise RuntimeError("kaput")

    code, _, err = tvmc(capsys, "-v", "crash", loader=lambda: [plugin("crash", crash)])
    assert code == 70 and "Traceback" in err
    assert len(error_lines(err)) == 1 and err.strip().splitlines()[-1].startswith("error:")


def test_keyboard_interrupt(capsys):
    def interrupt():
        raise KeyboardInterrupt

    code, _, err = tvmc(capsys, "stop", loader=lambda: [plugin("stop", interrupt)])
    assert code == 130
    assert_one_error(err, "interrupted")


def test_typed_error_exit_code(capsys):
    def fail():
        raise ErrorGroup([OutputError("a", path="x.tar"), OutputError("b", path="y.tar")])

    code, _, err = tvmc(capsys, "fail", loader=lambda: [plugin("fail", fail)])
    assert code == 5
    assert_one_error(err, "x.tar: a; y.tar: b")


# ----------------------------------------------------------------------------- registry

def test_registry_has_builtins_without_entry_points():
    assert driver.build_registry(NO_PLUGINS).names == ["compile", "compile-multi", "run", "micro", "report"]


def test_registry_with_installed_metadata_has_each_name_once():
    # installed: compile-multi comes as built-in AND entry point; not installed: built-in only
    assert driver.build_registry().names == ["compile", "compile-multi", "run", "micro", "report"]


def test_registry_picks_up_entry_point(capsys):
    calls = []
    code, out, _ = tvmc(capsys, "hello", loader=lambda: [plugin("hello", lambda: calls.append(1))])
    assert code == 0 and calls == [1]
    code, out, _ = tvmc(capsys, "--help", loader=lambda: [plugin("hello", lambda: 0)])
    assert "hello" in out


def test_registry_never_registers_a_name_twice(caplog):
    from tvmc_multimodule.cli import compile_multi

    same = SimpleNamespace(name="compile-multi", load=lambda: compile_multi.register_parser)
    other = plugin("compile", lambda: 0)
    registry = driver.build_registry(lambda: [same, other])
    assert registry.names == ["compile", "compile-multi", "run", "micro", "report"]
    assert "ignoring subcommand 'compile'" in caplog.text
    parse("compile-multi", "a.tflite")  # the parser still builds


def test_registry_skips_plugin_that_adds_a_taken_name(capsys):
    sneaky = plugin("compile", lambda: 0)
    sneaky.name = "sneaky"
    code, _, err = tvmc(capsys, "--help", loader=lambda: [sneaky])
    assert code == 0 and "'compile' is already defined" in err


def test_registry_survives_broken_plugin(capsys):
    def broken():
        raise ImportError("no module named foo")

    code, out, err = tvmc(capsys, "--help",
                          loader=lambda: [SimpleNamespace(name="broken", load=broken)])
    assert code == 0 and "compile-multi" in out
    assert "cannot load subcommand 'broken'" in err


def test_no_module_level_registry_state():
    first, second = driver.build_registry(NO_PLUGINS), driver.build_registry(NO_PLUGINS)
    assert first is not second and first.names == second.names


# ----------------------------------------------------------------------------- report

def test_format_table_aligns():
    text = report.format_table(["a", "num"], [["xyz", "5"], ["q", "12345"]])
    lines = text.splitlines()
    assert lines[0].split() == ["a", "num"] and set(lines[1]) <= {"-", " "}
    assert lines[2].endswith("    5") and lines[3].endswith("12345")


def test_tensor_list():
    tensors = [TensorInfo("x:0", "x_0", (1, 49, 10, 1), "int8"),
               TensorInfo("y", "y", (10,), "float32")]
    assert report.tensor_list(tensors) == "x:0:[1,49,10,1]:int8, y:[10]:float32"


class FakeStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_line(tty):
    """A line when each module starts (the user sees what runs), one with its time at the end;
    the file by its base name."""
    stream = FakeStream(tty)
    with report.progress(1, 2, "kws", "/long/path/to/kws.tflite", stream):
        assert stream.getvalue() == "[1/2] kws (kws.tflite) ...\n"
    with pytest.raises(KeyError), report.progress(2, 2, "ad", "ad.onnx", stream):
        raise KeyError
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("[1/2] kws (kws.tflite) ... ") and lines[1].endswith(" s")
    assert lines[2:] == ["[2/2] ad (ad.onnx) ...", "[2/2] ad (ad.onnx) ... failed"]


def plus_one_module(name: str = "plus") -> CompiledModule:
    """A hand-written module with the generated C API: out[i] = in[i] + 1 (float32[4])."""
    up = name.upper()
    header = (f"#ifndef TVMGEN_{up}_H_\n#define TVMGEN_{up}_H_\n#include <stdint.h>\n"
              f"#define TVMGEN_{up}_X_SIZE 16\n#define TVMGEN_{up}_Y_SIZE 16\n"
              f"struct tvmgen_{name}_inputs {{ void* x; }};\n"
              f"struct tvmgen_{name}_outputs {{ void* y; }};\n"
              f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs, "
              f"struct tvmgen_{name}_outputs* outputs);\n#endif\n")
    source = (f'#include "tvmgen_{name}.h"\n'
              f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs, "
              f"struct tvmgen_{name}_outputs* outputs) {{\n"
              f"  const float* x = (const float*)inputs->x; float* y = (float*)outputs->y;\n"
              f"  for (int i = 0; i < 4; ++i) y[i] = x[i] + 1.0f;\n  return 0;\n}}\n")
    return CompiledModule(
        name=name, model_path=f"{name}.onnx", model_format="onnx", target="c",
        inputs=[TensorInfo("in:0", "x", (1, 4), "float32")],
        outputs=[TensorInfo("out/0", "y", (1, 4), "float32")],
        sources={f"{name}_lib0.c": source}, header=header, relax_text="", params={},
        operators=[], workspace_bytes=0, constants_bytes=0)


needs_cc = pytest.mark.skipif(report.find_c_compiler() is None, reason="no host C compiler")


@needs_cc
def test_code_size_measures_text():
    size = report.code_size(plus_one_module())
    assert size is None or 0 < size < 4096  # None only when `size` is missing
    broken = plus_one_module().replace(sources={"plus_lib0.c": "this is not C"})
    assert report.code_size(broken) is None


def test_code_size_without_compiler(monkeypatch):
    monkeypatch.setattr(report, "find_c_compiler", lambda: None)
    assert report.code_size(plus_one_module()) is None
    assert report.module_row(plus_one_module(), None)[-1] == "-"


# ----------------------------------------------------------------------------- run

X = TensorInfo("in:0", "x", (1, 4), "float32")


def test_match_inputs_by_name_or_c_name():
    a = np.arange(4, dtype=np.float32)
    assert run.match_inputs({"in:0": a}, [X])[0].shape == (1, 4)
    assert run.match_inputs({"x": a.astype(np.float64)}, [X])[0].dtype == np.float32


@pytest.mark.parametrize("given, message", [
    ({}, "--inputs lacks in:0"),
    ({"in:0": np.zeros(4, np.float32), "extra": np.zeros(1)}, "unknown tensor(s) extra"),
    ({"in:0": np.zeros(5, np.float32)}, "has 5 elements [5], the model needs 4 [1,4]"),
    ({"in:0": np.zeros(4, np.int32)}, "is int32, the model needs float32"),
])
def test_match_inputs_errors(given, message):
    with pytest.raises(UsageError) as info:
        run.match_inputs(given, [X])
    assert message in info.value.one_line()


def test_integer_inputs_must_fit():
    info = TensorInfo("q", "q", (2,), "int8")
    assert run.coerce_input(np.array([-128, 127]), info).dtype == np.int8
    with pytest.raises(UsageError, match="do not fit int8"):
        run.coerce_input(np.array([0, 300]), info)


def test_fill_inputs():
    q = TensorInfo("q", "q", (3,), "int8")
    zeros, = run.fill_inputs([q], "zeros")
    assert zeros.dtype == np.int8 and not zeros.any()
    first, second = run.fill_inputs([X], "random")[0], run.fill_inputs([X], "random")[0]
    assert np.array_equal(first, second)  # seeded: runs can be compared


@pytest.fixture
def plus_archive(tmp_path) -> Path:
    from tvmc_multimodule.mlf import export_model_library_format

    path = tmp_path / "plus.tar"
    export_model_library_format([plus_one_module("plus"), plus_one_module("plus_lib")],
                                str(path))
    return path


@needs_cc
def test_run_end_to_end_without_tvm(capsys, tmp_path, plus_archive):
    inputs, outputs = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inputs, **{"in:0": np.array([[1, 2, 3, 4]], np.float32)})
    code, out, err = tvmc(capsys, "run", str(plus_archive), "--module", "plus", "--inputs",
                          str(inputs), "-o", str(outputs), "--print-top", "2")
    assert code == 0, err
    with np.load(outputs) as data:
        assert data.files == ["out/0"]
        np.testing.assert_array_equal(data["out/0"], [[2, 3, 4, 5]])
    assert "output out/0: [1,4] float32" in out and "[3] 5.0" in out
    assert f"wrote {outputs}" in out


@needs_cc
def test_run_default_inputs_are_zeros(capsys, plus_archive):
    code, out, err = tvmc(capsys, "run", str(plus_archive), "--module", "plus_lib",
                          "--print-top", "1")
    assert code == 0, err
    assert "[0] 1.0" in out


def test_run_needs_module_choice(capsys, plus_archive):
    code, _, err = tvmc(capsys, "run", str(plus_archive))
    assert code == 2
    assert_one_error(err, "holds 2 modules", "plus, plus_lib")
    code, _, err = tvmc(capsys, "run", str(plus_archive), "--module", "nope")
    assert code == 2
    assert_one_error(err, "no module 'nope'")


def test_run_bad_inputs_name_them(capsys, tmp_path, plus_archive):
    inputs = tmp_path / "in.npz"
    np.savez(inputs, wrong=np.zeros(4, np.float32))
    code, _, err = tvmc(capsys, "run", str(plus_archive), "--module", "plus", "--inputs",
                        str(inputs))
    assert code == 2
    assert_one_error(err, "plus (", "lacks in:0", "unknown tensor(s) wrong")


@pytest.mark.parametrize("content", ["npy", "garbage"])
def test_run_inputs_not_npz(capsys, tmp_path, plus_archive, content):
    inputs = tmp_path / "in.npz"
    if content == "npy":
        with open(inputs, "wb") as fh:
            np.save(fh, np.zeros(4, np.float32))
    else:
        inputs.write_bytes(b"not numpy at all")
    code, _, err = tvmc(capsys, "run", str(plus_archive), "--module", "plus", "--inputs",
                        str(inputs))
    assert code == 2
    assert_one_error(err, "in.npz")


def test_run_without_compiler_is_build_error(capsys, monkeypatch, plus_archive):
    monkeypatch.setattr(run, "find_c_compiler", lambda: None)
    code, _, err = tvmc(capsys, "run", str(plus_archive), "--module", "plus")
    assert code == 6
    assert_one_error(err, "no C compiler found")


@needs_cc
def test_run_compiler_error_shows_first_error_line(capsys, tmp_path):
    from tvmc_multimodule.mlf import export_model_library_format

    broken = plus_one_module().replace(sources={"plus_lib0.c": "int broken( {\n"})
    path = tmp_path / "broken.tar"
    export_model_library_format(broken, str(path))
    code, _, err = tvmc(capsys, "run", str(path))
    assert code == 6
    assert_one_error(err, "the C build failed:", "error")


# every subcommand that reads an archive, with what follows the archive argument
ARCHIVE_COMMANDS = {"run": lambda tmp, a: ["run", a],
                    "report": lambda tmp, a: ["report", a],
                    "micro create-project": lambda tmp, a: ["micro", "create-project",
                                                            tmp / "fw", a, "--board",
                                                            "mps2_an386"]}


def test_every_archive_command_is_listed():
    """A new subcommand with an MLF argument must join ARCHIVE_COMMANDS (and the test
    below)."""
    import argparse

    parser = driver.build_parser(driver.build_registry(NO_PLUGINS))

    def walk(p: argparse.ArgumentParser, prefix: str) -> list[str]:
        found = []
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += walk(sub, f"{prefix} {name}".strip())
            elif action.metavar == "MLF":
                found.append(prefix)
        return found

    assert sorted(set(walk(parser, ""))) == sorted(ARCHIVE_COMMANDS)


@pytest.mark.parametrize("command", sorted(ARCHIVE_COMMANDS))
def test_missing_archive_is_an_output_error(capsys, tmp_path, command):
    """A missing archive is exit code 5 (an archive that cannot be read, docs/cli.md) with
    the same line from every subcommand that takes one, and nothing is written."""
    code, _, err = tvmc(capsys, *ARCHIVE_COMMANDS[command](tmp_path, tmp_path / "none.tar"))
    assert code == 5, err
    assert_one_error(err, "none.tar: archive not found")
    assert not (tmp_path / "fw").exists()
    (tmp_path / "d").mkdir()
    code, _, err = tvmc(capsys, *ARCHIVE_COMMANDS[command](tmp_path, tmp_path / "d"))
    if command == "report":  # reads an extracted archive: this one has no metadata
        assert code == 5 and "metadata.json is missing" in err, err
    else:
        assert code == 5, err
        assert_one_error(err, "d: archive is a directory, not an archive")


# ----------------------------------------------------------------------------- end to end

def tiny_onnx(path: Path, scale: float) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor("s", TensorProto.FLOAT, [1, 8], [scale] * 8)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@needs_cc
def test_compile_multi_and_run_end_to_end(capsys, tmp_path):
    pytest.importorskip("tvmc_multimodule.api")
    pytest.importorskip("onnx")
    tiny_onnx(tmp_path / "twice.onnx", 2.0)
    tiny_onnx(tmp_path / "triple.onnx", 3.0)
    archive = tmp_path / "models.tar"
    code, out, err = tvmc(capsys, "compile-multi", f"{tmp_path}/twice.onnx:twice",
                          f"{tmp_path}/triple.onnx", "-j", "1", "-o", str(archive))
    assert code == 0, err
    assert "[1/2] twice (" in err and "[2/2] triple (" in err
    assert "x:[1,8]:float32" in out and out.strip().endswith(f"wrote {archive}")
    inputs, outputs = tmp_path / "in.npz", tmp_path / "out.npz"
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    np.savez(inputs, x=x)
    code, _, err = tvmc(capsys, "run", str(archive), "--module", "triple", "--inputs",
                        str(inputs), "-o", str(outputs))
    assert code == 0, err
    with np.load(outputs) as data:
        np.testing.assert_allclose(data["y"], np.maximum(3 * x, 0), rtol=1e-6)


@pytest.mark.parametrize("argv", [["--help"], ["compile-multi", "--help"], ["compile", "--bogus"]])
def test_help_and_usage_errors_do_not_load_tvm(argv):
    """`tvmc --help` and a bad command line answer at once: TVM (about a second of CPU) is
    loaded only when something is compiled or read."""
    probe = ("import sys\nfrom tvmc_multimodule.cli import driver\n"
             "try:\n    driver.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "sys.stdout.flush()\nprint('TVM-LOADED' if 'tvm' in sys.modules else 'NO-TVM', file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                          timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "NO-TVM", done.stderr[-500:]


@needs_cc
def test_report_of_an_archive_does_not_load_tvm(capsys, tmp_path):
    """`tvmc report ARCHIVE` reads metadata and measures code size with gcc: no TVM."""
    pytest.importorskip("onnx")
    tiny_onnx(tmp_path / "twice.onnx", 2.0)
    archive = tmp_path / "models.tar"
    code, _, err = tvmc(capsys, "compile-multi", f"{tmp_path}/twice.onnx:twice", "-o",
                        str(archive))
    assert code == 0, err
    probe = ("import sys\nfrom tvmc_multimodule.cli import driver\n"
             "code = driver.main(sys.argv[1:])\n"
             "print('TVM-LOADED' if 'tvm' in sys.modules else 'NO-TVM', code, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe, "report", str(archive)],
                          capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "NO-TVM 0", done.stderr[-500:]
    assert "twice" in done.stdout
