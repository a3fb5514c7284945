"""Custom operators: a user's C implementation (`--custom-op NAME=impl.c`, or CustomOp in the
Python API) called with typed buffers, and MediaPipe's Convolution2DTransposeBias built in;
outputs against NumPy references computed here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import onnx

import cbuild
from builders import onnx_custom_models as onnx_custom
from builders import tflite_custom_models as models
from builders import tflite_models
from tvmc_multimodule import CustomOp, compile_model, export_model_library_format
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli import driver
from tvmc_multimodule.errors import UnsupportedError, UsageError
from tvmc_cli import error_lines

NO_PLUGINS = lambda: []  # noqa: E731


def _run(archive: Path, tmp: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    np.savez(tmp / "in.npz", x=x)
    code = driver.main(["run", str(archive), "-i", str(tmp / "in.npz"), "-o",
                        str(tmp / "out.npz")], entry_point_loader=NO_PLUGINS)
    assert code == 0
    return dict(np.load(tmp / "out.npz"))


def test_user_c_file_from_the_cli(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(models.scale_shift())
    (tmp_path / "scale_shift.c").write_text(models.SCALE_SHIFT_C.format(module="ss"))
    archive = tmp_path / "ss.tar"
    assert driver.main(["compile", str(tmp_path / "m.tflite"), "--module-name", "ss",
                        "--custom-op", f"ScaleShift={tmp_path / 'scale_shift.c'}",
                        "-o", str(archive)], entry_point_loader=NO_PLUGINS) == 0
    module = load_model_library_format(str(archive)).modules["ss"]
    assert ("int32_t tvmgen_ss_custom_ScaleShift(const float* in0, const float* in1, "
            "float* out0, int32_t* out1);") in module.header
    assert "scale_shift.c" in module.sources["ss_lib10.c"]  # the archive carries it
    x = np.random.default_rng(3).standard_normal((1, 4, 4, 3)).astype(np.float32)
    ours = _run(archive, tmp_path, x)
    want = models.scale_shift_reference(x)
    np.testing.assert_allclose(ours["out"], want[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ours["k"], want[1])
    # the header's prototype and the user's definition agree under -Wall -Werror
    root = cbuild.extract(archive, tmp_path / "x")
    got = cbuild.build_and_run(root, {"ss": (module.inputs, module.outputs)}, {"ss": [x]})
    np.testing.assert_array_equal(got["ss"][1], want[1])


def test_python_api_with_an_output_declaration(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(models.scale_shift())
    seen = []

    def outputs(inputs: list) -> list:
        seen.append(inputs)
        shape = inputs[0][0]
        return [(shape, "float32"), (shape[:-1], "int32")]

    op = CustomOp("ScaleShift", models.SCALE_SHIFT_C.format(module="api"), "ss.c", outputs)
    module = compile_model(str(tmp_path / "m.tflite"), module_name="api",
                           custom_ops={"ScaleShift": op})
    assert seen == [[((1, 4, 4, 3), "float32"), ((3,), "float32")]]
    archive = tmp_path / "api.tar"
    export_model_library_format(module, str(archive))
    x = np.random.default_rng(4).standard_normal((1, 4, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(archive, tmp_path, x)["k"],
                                  models.scale_shift_reference(x)[1])
    wrong = CustomOp("ScaleShift", "", "ss.c", [((1, 4, 4, 3), "float32")])
    with pytest.raises(UnsupportedError, match="declares 1 outputs"):
        compile_model(str(tmp_path / "m.tflite"), module_name="api",
                      custom_ops={"ScaleShift": wrong})


@pytest.mark.parametrize("padding,kernel", [(models.SAME, 4), (models.VALID, 3)])
def test_convolution2d_transpose_bias_built_in(tmp_path: Path, padding: int,
                                               kernel: int) -> None:
    model, weights, bias = models.transpose_conv_bias(padding, kernel)
    (tmp_path / "m.tflite").write_bytes(model)
    archive = tmp_path / "tc.tar"
    assert driver.main(["compile", str(tmp_path / "m.tflite"), "--module-name", "tc", "-o",
                        str(archive)], entry_point_loader=NO_PLUGINS) == 0
    x = np.random.default_rng(5).standard_normal((1, 5, 6, 4)).astype(np.float32)
    ours = _run(archive, tmp_path, x)["y"]
    want = models.transpose_conv_bias_reference(x, weights, bias, ours.shape[1:3], padding, 2)
    assert ours.shape == want.shape
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_unknown_custom_operator_is_one_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "m.tflite").write_bytes(tflite_models.custom_op())
    code = driver.main(["compile", str(tmp_path / "m.tflite"), "-o", str(tmp_path / "a.tar")],
                       entry_point_loader=NO_PLUGINS)
    assert code == 4
    err = capsys.readouterr().err
    errors = error_lines(err)
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert "custom operators: MyCustom" in errors[0] and "--custom-op MyCustom=impl.c" in errors[0]
    assert not (tmp_path / "a.tar").exists()


@pytest.mark.skipif(not (cbuild.have("gcc") and cbuild.have("make")), reason="gcc, make")
def test_archive_example_links_a_stateful_and_a_custom_module(tmp_path: Path) -> None:
    """compile-multi of a streaming model and a custom-op model: the archive's own example
    program (Makefile, main.c: reset, then a few runs) builds with -Werror and runs both."""
    import subprocess

    from builders import tflite_state_models

    (tmp_path / "kws.tflite").write_bytes(tflite_state_models.streaming())
    (tmp_path / "ss.tflite").write_bytes(models.scale_shift())
    (tmp_path / "ss.c").write_text(models.SCALE_SHIFT_C.format(module="ss"))
    archive = tmp_path / "a.tar"
    assert driver.main(["compile-multi", f"{tmp_path / 'kws.tflite'}:kws",
                        f"{tmp_path / 'ss.tflite'}:ss", "--custom-op",
                        f"ScaleShift={tmp_path / 'ss.c'}", "-o", str(archive)],
                       entry_point_loader=NO_PLUGINS) == 0
    host = cbuild.extract(archive, tmp_path / "x") / "templates" / "host"
    build = subprocess.run(["make", "-s", "CFLAGS=" + " ".join(cbuild.STRICT + ["-O1"])],
                           cwd=host, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run(["./tvmgen_example"], cwd=host, capture_output=True, text=True)
    assert run.returncode == 0 and "2 of 2 modules ran" in run.stdout


def test_custom_operator_on_quantised_tensors_is_refused(tmp_path: Path, capsys) -> None:
    from builders.tflite_models import TFLiteGraph

    g = TFLiteGraph()
    x = g.add_tensor("x", [1, 4], "int8", scale=0.1, zero_point=0)
    y = g.add_tensor("y", [1, 4], "int8", scale=0.1, zero_point=0)
    g.add_operator("CUSTOM", [x], [y], custom_code="Foo", custom_options=b"")
    g.set_io([x], [y])
    (tmp_path / "q.tflite").write_bytes(g.to_bytes())
    (tmp_path / "foo.c").write_text("int foo;\n")
    code = driver.main(["compile", str(tmp_path / "q.tflite"), "--custom-op",
                        f"Foo={tmp_path / 'foo.c'}", "-o", str(tmp_path / "q.tar")],
                       entry_point_loader=NO_PLUGINS)
    assert code == 4
    err = capsys.readouterr().err
    assert "custom operator Foo on quantised tensors" in err and "--input-shapes" not in err


# ---------------------------------------------------------------- ONNX custom domains

def _onnx_c(tmp: Path, module: str, op: str) -> Path:
    path = tmp / f"{module}.c"
    path.write_text(onnx_custom.C_TEXT.format(module=module, op=op))
    return path


def test_onnx_custom_domain_with_outputs_declared_on_the_cli(tmp_path: Path) -> None:
    """A com.example operator between standard ones, its outputs not shaped in the model:
    `--custom-op DOMAIN.OP=impl.c:DTYPE[dims];...` declares them."""
    onnx.save(onnx_custom.scale_shift(declared=False), tmp_path / "m.onnx")
    c_file = _onnx_c(tmp_path, "ad", "com_example_ScaleShift")
    archive = tmp_path / "ad.tar"
    assert driver.main(["compile", str(tmp_path / "m.onnx"), "--module-name", "ad",
                        "--custom-op", f"com.example.ScaleShift={c_file}:float32[1,16,3];"
                        "int32[1,16]", "-o", str(archive)], entry_point_loader=NO_PLUGINS) == 0
    module = load_model_library_format(str(archive)).modules["ad"]
    assert ("int32_t tvmgen_ad_custom_com_example_ScaleShift(const float* in0, "
            "const float* in1, float* out0, int32_t* out1);") in module.header
    assert "ad.c" in module.sources["ad_lib10.c"]
    x = np.random.default_rng(6).standard_normal((1, 16, 3)).astype(np.float32)
    ours = _run(archive, tmp_path, x)
    want = onnx_custom.reference(x)
    np.testing.assert_allclose(ours["out"], want[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ours["k"], want[1])


def test_onnx_and_tflite_custom_ops_linked_into_one_binary(tmp_path: Path) -> None:
    """compile-multi: a TFLite module (custom code ScaleShift) and an ONNX one
    (com.example.ScaleShift, outputs shaped by the model), each with its own C file: the
    ONNX node takes `DOMAIN.OP` before the bare `OP` the TFLite one is given under; both
    modules linked with the harness into one program under -Wall -Werror."""
    (tmp_path / "ss.tflite").write_bytes(models.scale_shift())
    onnx.save(onnx_custom.scale_shift(declared=True), tmp_path / "ad.onnx")
    (tmp_path / "ss.c").write_text(models.SCALE_SHIFT_C.format(module="ss"))
    ad_c = _onnx_c(tmp_path, "ad", "com_example_ScaleShift")
    archive = tmp_path / "a.tar"
    assert driver.main(["compile-multi", f"{tmp_path / 'ss.tflite'}:ss",
                        f"{tmp_path / 'ad.onnx'}:ad", "--custom-op",
                        f"ScaleShift={tmp_path / 'ss.c'}", "--custom-op",
                        f"com.example.ScaleShift={ad_c}", "-o", str(archive)],
                       entry_point_loader=NO_PLUGINS) == 0
    mods = load_model_library_format(str(archive)).modules
    root = cbuild.extract(archive, tmp_path / "x")
    rng = np.random.default_rng(7)
    x_ss = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    x_ad = rng.standard_normal((1, 16, 3)).astype(np.float32)
    got = cbuild.build_and_run(
        root, {m: (mods[m].inputs, mods[m].outputs) for m in ("ss", "ad")},
        {"ss": [x_ss], "ad": [x_ad]})
    for name, x, want in (("ss", x_ss, models.scale_shift_reference(x_ss)),
                          ("ad", x_ad, onnx_custom.reference(x_ad))):
        np.testing.assert_allclose(got[name][0], want[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got[name][1], want[1])


def test_onnx_python_api_bare_name_and_callable(tmp_path: Path) -> None:
    onnx.save(onnx_custom.scale_shift(declared=False), tmp_path / "m.onnx")
    seen = []

    def outputs(inputs: list) -> list:
        seen.append(inputs)
        return [(inputs[0][0], "float32"), (inputs[0][0][:-1], "int32")]

    op = CustomOp("ScaleShift", onnx_custom.C_TEXT.format(module="api", op="ScaleShift"),
                  "ss.c", outputs)
    module = compile_model(str(tmp_path / "m.onnx"), module_name="api",
                           custom_ops={"ScaleShift": op})
    assert seen == [[((1, 16, 3), "float32"), ((3,), "float32")]]
    assert "tvmgen_api_custom_ScaleShift(" in module.header
    archive = tmp_path / "api.tar"
    export_model_library_format(module, str(archive))
    x = np.random.default_rng(8).standard_normal((1, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(archive, tmp_path, x)["k"], onnx_custom.reference(x)[1])


def test_onnx_output_declaration_from_a_json_file(tmp_path: Path) -> None:
    onnx.save(onnx_custom.scale_shift(declared=False), tmp_path / "m.onnx")
    (tmp_path / "outs.json").write_text(
        '[{"shape": [1, 16, 3], "dtype": "float32"}, {"shape": [1, 16], "dtype": "int32"}]')
    c_file = _onnx_c(tmp_path, "js", "ScaleShift")
    assert driver.main(["compile", str(tmp_path / "m.onnx"), "--module-name", "js",
                        "--custom-op", f"ScaleShift={c_file}:{tmp_path / 'outs.json'}",
                        "-o", str(tmp_path / "js.tar")], entry_point_loader=NO_PLUGINS) == 0
    x = np.random.default_rng(9).standard_normal((1, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run(tmp_path / "js.tar", tmp_path, x)["k"],
                                  onnx_custom.reference(x)[1])


@pytest.mark.parametrize("given,code,expected", [
    (None, 4, "custom operators: com.example.ScaleShift (give each its C implementation: "
              "--custom-op com.example.ScaleShift=impl.c)"),
    ("", 4, "custom operator com.example.ScaleShift: the model does not declare the shape of "
            "its output 'y' - declare the outputs: --custom-op com.example.ScaleShift=impl.c:"),
    (":float32[1,16,3]", 4, "declares 1 outputs, the model gives it 2"),
    (":float33[1,16,3]", 2, "output type 'float33' is not a numeric type name"),
])
def test_onnx_custom_op_errors(tmp_path: Path, capsys, given: str | None, code: int,
                               expected: str) -> None:
    onnx.save(onnx_custom.scale_shift(declared=False), tmp_path / "m.onnx")
    c_file = _onnx_c(tmp_path, "m", "com_example_ScaleShift")
    option = [] if given is None else ["--custom-op", f"com.example.ScaleShift={c_file}{given}"]
    assert driver.main(["compile", str(tmp_path / "m.onnx"), "--module-name", "m", *option,
                        "-o", str(tmp_path / "m.tar")], entry_point_loader=NO_PLUGINS) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and expected in err[-1], err[-1]
    assert not (tmp_path / "m.tar").exists()


@pytest.mark.parametrize("names", [("com.example.ScaleShift", "com.example_ScaleShift"),
                                   ("a.b", "a_b")])
def test_two_names_with_one_c_symbol_are_refused(tmp_path: Path, capsys,
                                                 names: tuple[str, str]) -> None:
    """Two operator names that become one C identifier would make two user functions one
    symbol: exit 2 naming both (no suffix: the symbol stays the name the user predicts)."""
    onnx.save(onnx_custom.scale_shift(declared=True), tmp_path / "m.onnx")
    c_file = _onnx_c(tmp_path, "m", "com_example_ScaleShift")
    options = [arg for name in names for arg in ("--custom-op", f"{name}={c_file}")]
    assert driver.main(["compile", str(tmp_path / "m.onnx"), "--module-name", "m", *options,
                        "-o", str(tmp_path / "m.tar")], entry_point_loader=NO_PLUGINS) == 2
    err = capsys.readouterr().err.strip().splitlines()
    symbol = "tvmgen_<module>_custom_" + names[1].replace(".", "_")
    assert err == [f"error: custom operator '{names[0]}' and '{names[1]}' both become the C "
                   f"name {symbol} - rename one custom operator"], err
    assert not (tmp_path / "m.tar").exists()
    with pytest.raises(UsageError, match="both become the C name"):  # the Python API too
        compile_model(str(tmp_path / "m.onnx"), module_name="m",
                      custom_ops={name: str(c_file) for name in names})
