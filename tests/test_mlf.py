"""Model Library Format v7: writer, reader, safety of extraction, generated host templates."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tvmc_multimodule.errors import OutputError, TvmcError, UsageError
from tvmc_multimodule.mlf import (LoadedArchive, export_model_library_format,
                                  load_model_library_format)
from tvmc_multimodule.mlf import writer as mlf_writer
from tvmc_multimodule.mlf.reader import extract_archive
from tvmc_multimodule.model import CompiledModule, OperatorInfo, QuantParams, TensorInfo

EPOCH = 1_700_000_000  # 2023-11-14 22:13:20 UTC


# --------------------------------------------------------------------------------------------
# hand-made modules


def header_text(name: str, inputs: list[TensorInfo], outputs: list[TensorInfo],
                workspace: int) -> str:
    up = name.upper()
    lines = [f"#ifndef TVMGEN_{up}_H_", f"#define TVMGEN_{up}_H_", "#include <stdint.h>",
             "#ifdef __cplusplus", 'extern "C" {', "#endif",
             f"#define TVMGEN_{up}_WORKSPACE_SIZE {workspace}"]
    lines += [f"#define TVMGEN_{up}_{t.c_name.upper()}_SIZE {t.nbytes}" for t in inputs + outputs]
    lines += [f"struct tvmgen_{name}_inputs {{"] + [f"  void* {t.c_name};" for t in inputs]
    lines += ["};", f"struct tvmgen_{name}_outputs {{"] + [f"  void* {t.c_name};" for t in outputs]
    lines += ["};", f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs, "
              f"struct tvmgen_{name}_outputs* outputs);",
              "#ifdef __cplusplus", "}", "#endif", f"#endif /* TVMGEN_{up}_H_ */", ""]
    return "\n".join(lines)


def copy_sources(name: str, src: TensorInfo, dst: TensorInfo, add: int) -> dict[str, str]:
    """lib0: an element-wise helper; lib1: the run function copying (plus `add`) in -> out."""
    ctype = {"float32": "float", "int8": "int8_t"}[src.dtype]
    helper = f"tvmgen_{name}_add_const"
    lib0 = (f'#include <stdint.h>\n#include "tvmgen_{name}.h"\n'
            f"int32_t {helper}({ctype}* restrict out, const {ctype}* restrict in, int n);\n"
            f"int32_t {helper}({ctype}* restrict out, const {ctype}* restrict in, int n) {{\n"
            f"  int i;\n  for (i = 0; i < n; ++i) out[i] = ({ctype})(in[i] + {add});\n"
            "  return 0;\n}\n")
    count = int(np.prod(src.shape))
    lib1 = (f'#include <stdint.h>\n#include "tvmgen_{name}.h"\n'
            f"int32_t {helper}({ctype}* restrict out, const {ctype}* restrict in, int n);\n"
            f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs, "
            f"struct tvmgen_{name}_outputs* outputs) {{\n"
            f"  return {helper}(({ctype}*)outputs->{dst.c_name}, "
            f"(const {ctype}*)inputs->{src.c_name}, {count});\n}}\n")
    return {f"{name}_lib0.c": lib0, f"{name}_lib1.c": lib1}


def make_module(name: str = "alpha", *, dtype: str = "float32", add: int = 0,
                workspace: int = 64, quant: QuantParams | None = None,
                in_name: str = "x", in_c: str = "x", out_name: str = "y",
                out_c: str = "y") -> CompiledModule:
    x = TensorInfo(in_name, in_c, (1, 4) if dtype == "float32" else (3,), dtype, quant)
    y = TensorInfo(out_name, out_c, x.shape, dtype, quant)
    return CompiledModule(
        name=name, model_path=f"/models/{name}.tflite", model_format="tflite",
        target="c -mcpu=cortex-m4", inputs=[x], outputs=[y],
        sources=copy_sources(name, x, y, add), header=header_text(name, [x], [y], workspace),
        relax_text=f"# from tvm.script import relax as R\n# module {name}\n",
        params={"w": np.arange(6, dtype="float32").reshape(2, 3),
                "b": np.array([1, -2], dtype="int8")},
        operators=[OperatorInfo(f"tvmgen_{name}_add_const", 0),
                   OperatorInfo(f"tvmgen_{name}_conv", 128)],
        workspace_bytes=workspace, constants_bytes=26, compile_seconds=0.5,
        options={"opt_level": 3, "disable": ("b", "a"), "path": Path("/x")},
    )


def two_modules() -> list[CompiledModule]:
    beta_q = QuantParams((0.5,), (-3,))
    return [make_module("alpha"),
            make_module("beta", dtype="int8", add=1, workspace=128, quant=beta_q,
                        in_name="in:0", in_c="in_0", out_name="out", out_c="out")]


def tar_members(path: str | Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


# --------------------------------------------------------------------------------------------
# writer + reader round trip


def test_round_trip_every_field(tmp_path):
    import tvm

    mods = two_modules()
    out = tmp_path / "models.tar"
    assert export_model_library_format(mods, str(out), source_date_epoch=EPOCH) == str(out)
    archive = load_model_library_format(str(out))
    assert isinstance(archive, LoadedArchive)
    assert archive.version == 7
    assert list(archive.modules) == ["alpha", "beta"]
    assert archive.metadata["generator"].startswith("tvmc-multimodule ")
    for mod in mods:
        got = archive.modules[mod.name]
        assert got.name == mod.name
        assert got.target == [mod.target]
        assert got.inputs == mod.inputs
        assert got.outputs == mod.outputs
        assert got.workspace_size_bytes == mod.workspace_bytes
        assert got.constants_size_bytes == mod.constants_bytes
        assert got.io_size_bytes == mod.io_bytes
        assert got.operator_functions == mod.operators
        assert got.sources == mod.sources
        assert list(got.sources) == [f"{mod.name}_lib0.c", f"{mod.name}_lib1.c"]
        assert got.header == mod.header
        assert got.ir_text == mod.relax_text
        params = tvm.runtime.load_param_dict(got.params_bytes)
        assert sorted(params) == sorted(mod.params)
        for key, value in mod.params.items():
            np.testing.assert_array_equal(params[key].numpy(), value)
        assert got.raw is archive.metadata["modules"][mod.name]
        assert got.raw["model_file"] == f"{mod.name}.tflite"
        assert got.raw["model_format"] == "tflite"
        assert got.raw["options"] == {"disable": ["b", "a"], "opt_level": 3, "path": "/x"}
    assert archive.modules["beta"].inputs[0].quant == QuantParams((0.5,), (-3,))


def test_metadata_keys_match_tvm_0_18(tmp_path):
    out = tmp_path / "m.tar"
    export_model_library_format(make_module("alpha"), str(out), source_date_epoch=EPOCH)
    meta = load_model_library_format(str(out)).metadata
    assert set(meta) == {"version", "modules", "generator"}
    mod = meta["modules"]["alpha"]
    assert set(mod) == {"model_name", "export_datetime", "target", "executors", "style",
                        "external_dependencies", "memory",
                        "model_format", "model_file", "options"}
    assert mod["model_name"] == "alpha"
    assert mod["export_datetime"] == "2023-11-14 22:13:20Z"
    assert mod["executors"] == ["aot"] and mod["style"] == "full-model"
    assert mod["external_dependencies"] == []
    main = mod["memory"]["functions"]["main"]
    assert main == [{
        "constants_size_bytes": 26, "device": 1, "io_size_bytes": 32,
        "workspace_size_bytes": 64, "liveness_bound_bytes": 0,
        "inputs": {"x": {"c_name": "x", "dtype": "float32", "shape": [1, 4], "size": 16}},
        "outputs": {"y": {"c_name": "y", "dtype": "float32", "shape": [1, 4], "size": 16}},
    }]
    assert mod["memory"]["functions"]["operator_functions"] == [
        {"function_name": "tvmgen_alpha_add_const",
         "workspace": [{"device": 1, "workspace_size_bytes": 0}]},
        {"function_name": "tvmgen_alpha_conv",
         "workspace": [{"device": 1, "workspace_size_bytes": 128}]},
    ]


def test_tensor_order_kept_and_repeated_names(tmp_path):
    mod = make_module("alpha")
    a = TensorInfo("zeta", "zeta", (2,), "float32")
    b = TensorInfo("alpha", "alpha", (2,), "float32")
    out_a = TensorInfo("zeta", "zeta_1", (2,), "float32")
    dup = TensorInfo("zeta", "zeta_2", (2,), "float32")
    mod = mod.replace(inputs=[a, b], outputs=[out_a, dup])
    out = tmp_path / "m.tar"
    export_model_library_format(mod, str(out), source_date_epoch=EPOCH)
    got = load_model_library_format(str(out)).modules["alpha"]
    assert [t.c_name for t in got.inputs] == ["zeta", "alpha"]
    assert [t.c_name for t in got.outputs] == ["zeta_1", "zeta_2"]


def test_archive_layout(tmp_path):
    out = tmp_path / "m.tar"
    export_model_library_format(two_modules(), str(out), source_date_epoch=EPOCH)
    members = tar_members(out)
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    files = {m.name for m in members if m.isfile()}
    assert files == {
        "./metadata.json",
        "./codegen/host/src/alpha_lib0.c", "./codegen/host/src/alpha_lib1.c",
        "./codegen/host/src/beta_lib0.c", "./codegen/host/src/beta_lib1.c",
        "./codegen/host/include/tvmgen_alpha.h", "./codegen/host/include/tvmgen_beta.h",
        "./codegen/host/include/tvmgen_modules.h",
        "./parameters/alpha.params", "./parameters/beta.params",
        "./src/alpha.relax", "./src/beta.relax",
        "./templates/host/Makefile", "./templates/host/CMakeLists.txt",
        "./templates/host/main.c",
    }
    dirs = {m.name for m in members if m.isdir()}
    assert dirs == {"./codegen", "./codegen/host", "./codegen/host/src",
                    "./codegen/host/include", "./parameters", "./src", "./templates",
                    "./templates/host"}
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH)
        assert m.mode == (0o755 if m.isdir() else 0o644)


def test_umbrella_header(tmp_path):
    out = tmp_path / "m.tar"
    export_model_library_format(two_modules(), str(out), source_date_epoch=EPOCH)
    with tarfile.open(out) as tar:
        text = tar.extractfile("./codegen/host/include/tvmgen_modules.h").read().decode()
    assert '#include "tvmgen_alpha.h"\n#include "tvmgen_beta.h"' in text
    assert "#define TVMGEN_MODULES_COUNT 2\n" in text
    assert ("#define TVMGEN_MAX_WORKSPACE_SIZE ((TVMGEN_ALPHA_WORKSPACE_SIZE) > "
            "(TVMGEN_BETA_WORKSPACE_SIZE) ? (TVMGEN_ALPHA_WORKSPACE_SIZE) : "
            "(TVMGEN_BETA_WORKSPACE_SIZE))") in text
    assert text.index("#ifndef TVMGEN_MODULES_H_") < text.index("#include")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("count", [1, 3, 5])
def test_max_workspace_expression_evaluates(tmp_path, count):
    sizes = [17, 300, 5, 4096, 9][:count]
    defs = "".join(f"#define TVMGEN_M{i}_WORKSPACE_SIZE {s}\n" for i, s in enumerate(sizes))
    expr = mlf_writer.max_expression([f"TVMGEN_M{i}_WORKSPACE_SIZE" for i in range(count)])
    src = tmp_path / "t.c"
    src.write_text(f"{defs}_Static_assert({expr} == {max(sizes)}, \"max\");\n"
                   f"static char buf[{expr}];\nint main(void) {{ return (int)sizeof(buf) "
                   f"== {max(sizes)} ? 0 : 1; }}\n")
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-c", str(src), "-o",
                    str(tmp_path / "t.o")], check=True)


# --------------------------------------------------------------------------------------------
# reproducibility and atomicity


def test_byte_identical_with_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    export_model_library_format(two_modules(), str(first))
    export_model_library_format(two_modules(), str(second))
    assert first.read_bytes() == second.read_bytes()
    assert {m.mtime for m in tar_members(first)} == {EPOCH}
    meta = load_model_library_format(str(first)).metadata
    assert meta["modules"]["beta"]["export_datetime"] == "2023-11-14 22:13:20Z"


def test_params_order_does_not_change_bytes(tmp_path):
    mod = make_module()
    reordered = mod.replace(params=dict(reversed(list(mod.params.items()))))
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    export_model_library_format(mod, str(a), source_date_epoch=EPOCH)
    export_model_library_format(reordered, str(b), source_date_epoch=EPOCH)
    assert a.read_bytes() == b.read_bytes()


def test_gzip_reproducible_and_readable(tmp_path):
    a, b = tmp_path / "a.tar.gz", tmp_path / "b.tgz"
    export_model_library_format(two_modules(), str(a), source_date_epoch=EPOCH)
    export_model_library_format(two_modules(), str(b), source_date_epoch=EPOCH)
    assert a.read_bytes()[:2] == b"\x1f\x8b"
    assert a.read_bytes() == b.read_bytes()
    assert list(load_model_library_format(str(b)).modules) == ["alpha", "beta"]


def test_bad_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        export_model_library_format(make_module(), str(tmp_path / "m.tar"))


def test_unwritable_directory_raises_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    target = blocker / "x.tar"
    with pytest.raises(OutputError) as info:
        export_model_library_format(make_module(), str(target), source_date_epoch=EPOCH)
    assert str(target) in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_missing_directory_raises(tmp_path):
    target = tmp_path / "missing" / "x.tar"
    with pytest.raises(OutputError, match="missing"):
        export_model_library_format(make_module(), str(target), source_date_epoch=EPOCH)


def test_path_is_directory(tmp_path):
    with pytest.raises(OutputError, match="directory"):
        export_model_library_format(make_module(), str(tmp_path), source_date_epoch=EPOCH)


def test_failed_write_keeps_existing_archive(tmp_path, monkeypatch):
    target = tmp_path / "m.tar"
    target.write_bytes(b"previous archive")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlf_writer.os, "replace", broken_replace)
    with pytest.raises(OutputError, match="No space left"):
        export_model_library_format(make_module(), str(target), source_date_epoch=EPOCH)
    assert target.read_bytes() == b"previous archive"
    assert sorted(os.listdir(tmp_path)) == ["m.tar"]


def test_failure_while_building_keeps_existing_archive(tmp_path):
    target = tmp_path / "m.tar"
    target.write_bytes(b"previous archive")
    bad = make_module().replace(params={"w": object()})
    with pytest.raises(OutputError):
        export_model_library_format(bad, str(target), source_date_epoch=EPOCH)
    assert target.read_bytes() == b"previous archive"
    assert sorted(os.listdir(tmp_path)) == ["m.tar"]


def test_replaces_existing_archive_keeping_mode(tmp_path):
    target = tmp_path / "m.tar"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    export_model_library_format(make_module(), str(target), source_date_epoch=EPOCH)
    assert tarfile.is_tarfile(target)
    assert (target.stat().st_mode & 0o777) == 0o600


def test_refuses_empty_and_duplicate_names(tmp_path):
    with pytest.raises(UsageError, match="no modules"):
        export_model_library_format([], str(tmp_path / "m.tar"))
    with pytest.raises(TvmcError, match="differ only in case"):
        export_model_library_format([make_module("net"), make_module("NET")],
                                    str(tmp_path / "m.tar"))
    with pytest.raises(TvmcError, match="reserved"):
        export_model_library_format([make_module("modules")], str(tmp_path / "m.tar"))
    assert os.listdir(tmp_path) == []


def test_refuses_source_file_with_path(tmp_path):
    mod = make_module()
    mod = mod.replace(sources={"../evil.c": "int x;\n"})
    with pytest.raises(OutputError, match="plain file name"):
        export_model_library_format(mod, str(tmp_path / "m.tar"))


# --------------------------------------------------------------------------------------------
# older and foreign archives


def write_tar(path: Path, files: dict[str, bytes | str], *, prefix: str = "./") -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(prefix + name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_load_version_5_tvm_0_8_layout(tmp_path):
    meta = {
        "version": 5, "model_name": "default", "export_datetime": "2021-11-01 10:00:00Z",
        "executors": ["aot"], "style": "full-model",
        "target": {"1": "c -keys=cpu -link-params=0"},
        "memory": {"functions": {
            "main": [{"device": 1, "workspace_size_bytes": 96, "constants_size_bytes": 8,
                      "io_size_bytes": 24}],
            "operator_functions": [{"function_name": "tvmgen_default_fused_add",
                                    "workspace": [{"device": 1,
                                                   "workspace_size_bytes": 32}]}]}},
    }
    path = tmp_path / "v5.tar"
    write_tar(path, {
        "metadata.json": json.dumps(meta, indent=2, sort_keys=True),
        "codegen/host/src/default_lib0.c": "/* lib0 */\n",
        "codegen/host/src/default_lib1.c": "/* lib1 */\n",
        "codegen/host/include/tvmgen_default.h": "/* header */\n",
        "parameters/default.params": b"\x01\x02",
        "src/relay.txt": "def @main() {}\n",
    })
    archive = load_model_library_format(str(path))
    assert archive.version == 5
    mod = archive.modules["default"]
    assert mod.target == ["c -keys=cpu -link-params=0"]
    assert (mod.workspace_size_bytes, mod.constants_size_bytes, mod.io_size_bytes) == (96, 8, 24)
    assert mod.operator_functions == [OperatorInfo("tvmgen_default_fused_add", 32)]
    assert list(mod.sources) == ["default_lib0.c", "default_lib1.c"]
    assert mod.header == "/* header */\n"
    assert mod.params_bytes == b"\x01\x02"
    assert mod.ir_text == "def @main() {}\n"
    assert mod.inputs == [] and mod.outputs == []
    assert mod.raw is archive.metadata


def test_load_version_6(tmp_path):
    meta = {
        "version": 6, "model_name": "kws", "export_datetime": "2022-05-01 10:00:00Z",
        "executors": ["aot"], "style": "full-model", "target": ["c -keys=cpu"],
        "external_dependencies": [{"short_name": "tvm_standalone_crt", "url": "./runtime",
                                   "url_type": "mlf_path", "version_spec": "0.9.dev0"}],
        "memory": {"functions": {
            "main": [{"device": 1, "workspace_size_bytes": 10, "constants_size_bytes": 0,
                      "io_size_bytes": 5,
                      "inputs": {"input_1": {"size": 4, "dtype": "int8"}},
                      "outputs": {"output": {"size": 1, "dtype": "uint8"}}}],
            "operator_functions": []}},
    }
    path = tmp_path / "v6.tar"
    write_tar(path, {"metadata.json": json.dumps(meta),
                     "codegen/host/src/kws_lib0.c": "int a;\n",
                     "src/relay.txt": "relay\n"}, prefix="")
    mod = load_model_library_format(str(path)).modules["kws"]
    assert mod.target == ["c -keys=cpu"]
    assert mod.inputs == [TensorInfo("input_1", "input_1", (), "int8")]
    assert mod.outputs == [TensorInfo("output", "output", (), "uint8")]
    assert mod.sources == {"kws_lib0.c": "int a;\n"}
    assert mod.header is None and mod.params_bytes is None
    assert mod.ir_text == "relay\n"


def test_load_tvm_0_18_style_version_7(tmp_path):
    meta = {"version": 7, "modules": {
        "add": {"model_name": "add", "export_datetime": "2024-01-01 00:00:00Z",
                "target": ["c -keys=cpu"], "executors": ["aot"], "style": "full-model",
                "memory": {"functions": {"main": [{
                    "constants_size_bytes": 8, "device": 1, "io_size_bytes": 18,
                    "workspace_size_bytes": 0,
                    "inputs": {"a": {"dtype": "uint8", "size": 2},
                               "b": {"dtype": "float32", "size": 8}},
                    "outputs": {"output": {"dtype": "float32", "size": 8}}}],
                    "operator_functions": []}}},
        "add2": {"model_name": "add2", "export_datetime": "2024-01-01 00:00:00Z",
                 "target": ["c"], "executors": ["aot"], "style": "full-model",
                 "memory": {"functions": {"main": [], "operator_functions": []}}}}}
    path = tmp_path / "tvm.tar"
    write_tar(path, {"metadata.json": json.dumps(meta),
                     "codegen/host/src/add_lib0.c": "a0\n", "codegen/host/src/add_lib1.c": "a1\n",
                     "codegen/host/src/add2_lib0.c": "b0\n",
                     "src/add.relay": "relay add\n"})
    archive = load_model_library_format(str(path))
    add = archive.modules["add"]
    assert [t.name for t in add.inputs] == ["a", "b"]
    assert add.io_size_bytes == 18
    assert add.sources == {"add_lib0.c": "a0\n", "add_lib1.c": "a1\n"}
    assert add.ir_text == "relay add\n"
    assert archive.modules["add2"].sources == {"add2_lib0.c": "b0\n"}
    assert archive.modules["add2"].ir_text is None


def test_load_from_extracted_directory(tmp_path):
    out = tmp_path / "m.tar"
    export_model_library_format(two_modules(), str(out), source_date_epoch=EPOCH)
    files = extract_archive(str(out), str(tmp_path / "x"))
    assert "metadata.json" in files
    archive = load_model_library_format(str(tmp_path / "x"))
    assert list(archive.modules) == ["alpha", "beta"]


def test_unknown_version(tmp_path):
    path = tmp_path / "v99.tar"
    write_tar(path, {"metadata.json": json.dumps({"version": 99, "modules": {}})})
    with pytest.raises(OutputError) as info:
        load_model_library_format(str(path))
    text = str(info.value)
    assert "99" in text and "5, 6, 7" in text and str(path) in text


def test_not_an_archive(tmp_path):
    path = tmp_path / "junk.tar"
    path.write_bytes(b"this is not a tar file at all" * 40)
    with pytest.raises(OutputError, match="tar"):
        load_model_library_format(str(path))
    with pytest.raises(OutputError, match="not found"):
        load_model_library_format(str(tmp_path / "nothing.tar"))
    empty = tmp_path / "empty.tar"
    write_tar(empty, {"readme.txt": "hi"})
    with pytest.raises(OutputError, match="metadata.json"):
        load_model_library_format(str(empty))


# --------------------------------------------------------------------------------------------
# unsafe archives


def crafted(path: Path, info: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        meta = json.dumps({"version": 7, "modules": {}}).encode()
        good = tarfile.TarInfo("metadata.json")
        good.size = len(meta)
        tar.addfile(good, io.BytesIO(meta))
        if info.isreg():
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:
            tar.addfile(info)
    return path


def symlink_member(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize("make_member, word", [
    (lambda: tarfile.TarInfo("../evil"), ".."),
    (lambda: tarfile.TarInfo("./codegen/../../evil"), ".."),
    (lambda: tarfile.TarInfo("/tmp/evil_absolute"), "absolute"),
    (lambda: symlink_member("codegen", "/etc"), "symbolic link"),
    (lambda: (lambda i: (setattr(i, "type", tarfile.LNKTYPE), setattr(i, "linkname", "/etc/passwd"),
                         i)[-1])(tarfile.TarInfo("hard")), "hard link"),
    (lambda: (lambda i: (setattr(i, "type", tarfile.FIFOTYPE), i)[-1])(tarfile.TarInfo("fifo")),
     "fifo"),
    (lambda: (lambda i: (setattr(i, "type", tarfile.CHRTYPE), i)[-1])(tarfile.TarInfo("tty")),
     "device"),
])
def test_unsafe_members_refused(tmp_path, make_member, word):
    member = make_member()
    path = crafted(tmp_path / "bad.tar", member)
    dest = tmp_path / "dest"
    with pytest.raises(OutputError) as info:
        extract_archive(str(path), str(dest))
    text = str(info.value)
    assert word in text and member.name in text and str(path) in text
    with pytest.raises(OutputError):
        load_model_library_format(str(path))
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil_absolute").exists()


def test_extraction_limits(tmp_path):
    path = crafted(tmp_path / "big.tar", tarfile.TarInfo("blob"), b"0" * 5000)
    with pytest.raises(OutputError, match="exceed 4096 bytes.*blob"):
        extract_archive(str(path), str(tmp_path / "d1"), max_bytes=4096)
    with pytest.raises(OutputError, match="more than 1 members.*blob"):
        extract_archive(str(path), str(tmp_path / "d2"), max_members=1)


def test_extraction_does_not_follow_existing_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "codegen")
    path = crafted(tmp_path / "a.tar", tarfile.TarInfo("codegen/x.c"))
    with pytest.raises(OutputError, match="outside"):
        extract_archive(str(path), str(dest))
    assert list(outside.iterdir()) == []


# --------------------------------------------------------------------------------------------
# generated host templates build and run


def extracted_archive(tmp_path: Path) -> Path:
    out = tmp_path / "models.tar"
    export_model_library_format(two_modules(), str(out), source_date_epoch=EPOCH)
    dest = tmp_path / "out"
    dest.mkdir()
    subprocess.run(["tar", "xf", str(out), "-C", str(dest)], check=True)
    return dest


def check_program_output(text: str) -> None:
    lines = text.splitlines()
    assert "alpha y (float32[1,4]): 0 0 0 0" in lines
    assert "beta out (int8[3]): 1 1 1" in lines
    assert lines[-1] == "2 of 2 modules ran"


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None,
                    reason="needs make and a C compiler")
def test_generated_makefile_builds_and_runs(tmp_path):
    dest = extracted_archive(tmp_path)
    host = dest / "templates" / "host"
    env = {k: v for k, v in os.environ.items() if k not in ("CFLAGS", "CPPFLAGS", "LDFLAGS")}
    build = subprocess.run(["make", "-C", str(host)], capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "-std=c11 -Wall -Wextra -Werror -O2" in build.stdout
    run = subprocess.run([str(host / "tvmgen_example")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    check_program_output(run.stdout)


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("cc") is None,
                    reason="needs cmake and a C compiler")
def test_generated_cmakelists_builds_and_runs(tmp_path):
    dest = extracted_archive(tmp_path)
    build_dir = tmp_path / "build"
    conf = subprocess.run(["cmake", "-S", str(dest / "templates" / "host"), "-B",
                           str(build_dir)], capture_output=True, text=True)
    assert conf.returncode == 0, conf.stdout + conf.stderr
    build = subprocess.run(["cmake", "--build", str(build_dir)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([str(build_dir / "tvmgen_example")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    check_program_output(run.stdout)


def test_main_c_uses_header_api(tmp_path):
    out = tmp_path / "m.tar"
    export_model_library_format(two_modules(), str(out), source_date_epoch=EPOCH)
    with tarfile.open(out) as tar:
        main_c = tar.extractfile("./templates/host/main.c").read().decode()
        makefile = tar.extractfile("./templates/host/Makefile").read().decode()
    assert '#include "tvmgen_modules.h"' in main_c
    assert "EXAMPLE_BYTES(TVMGEN_BETA_IN_0_SIZE)" in main_c
    assert "inputs.in_0 = m1_in0;" in main_c
    assert "tvmgen_alpha_run(&inputs, &outputs)" in main_c
    assert "$(ROOT)/codegen/host/src/beta_lib1.c" in makefile
    assert "LDLIBS += -lm" in makefile
