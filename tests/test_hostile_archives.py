"""Hostile archives: every name read from metadata.json is validated before it names a file or
reaches C, and the archive is refused otherwise (exit 5, one line), reading nothing outside it.

A real archive (one ONNX module) is unpacked, its metadata.json edited, and repacked; `tvmc
run` and `load_model_library_format` must refuse it. Every file the process opens is recorded
with an audit hook: none may be a decoy placed where a traversing name would lead.
"""
from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import cbuild
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli.driver import main as tvmc
from tvmc_multimodule.errors import OutputError

pytestmark = pytest.mark.skipif(not cbuild.have("gcc"), reason="needs gcc")

DECOY = "decoy"
_OPENED: list[str] = []
_RECORDING: list[bool] = [False]


def _audit(event: str, args: tuple) -> None:
    if _RECORDING[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only while asked to


def _opened_during(action: Callable[[], object]) -> tuple[object, list[str]]:
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        result = action()
    finally:
        _RECORDING[0] = False
    return result, list(_OPENED)


def _tiny_onnx(path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor("s", TensorProto.FLOAT, [1, 8], [2.0] * 8)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of a valid archive with one module `m`."""
    folder = tmp_path_factory.mktemp("hostile_archive")
    _tiny_onnx(folder / "tiny.onnx")
    archive = folder / "m.tar"
    assert tvmc(["compile", str(folder / "tiny.onnx"), "--module-name", "m", "-o",
                 str(archive)]) == 0
    return cbuild.extract(archive, folder / "files")


def _pack(files: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w") as tar:
        for path in sorted(files.rglob("*")):
            if path.is_file():
                tar.add(path, arcname="./" + path.relative_to(files).as_posix())
    return archive


def _edited(base: Path, work: Path, edit: Callable[[dict], dict]) -> Path:
    """A copy of the archive's files with metadata.json edited; decoys around it."""
    files = work / "a" / "b" / "files"
    files.mkdir(parents=True)
    for path in base.rglob("*"):
        if path.is_file():
            target = files / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    metadata = json.loads((files / "metadata.json").read_text())
    (files / "metadata.json").write_text(json.dumps(edit(metadata)))
    for parent in (work, work / "a", work / "a" / "b"):  # where ../ names would lead
        for suffix in (".params", ".relax", ".relay", ".h", "_lib0.c"):
            (parent / f"{DECOY}{suffix}").write_text("decoy: must never be read\n")
    return files


def _rename_module(metadata: dict, new: str) -> dict:
    metadata["modules"] = {new: metadata["modules"]["m"]}
    metadata["modules"][new]["model_name"] = new
    return metadata


def _main(metadata: dict) -> dict:
    return metadata["modules"]["m"]["memory"]["functions"]["main"][0]


def _set_c_name(metadata: dict, c_name: str, which: str = "inputs") -> dict:
    _main(metadata)[which]["x" if which == "inputs" else "y"]["c_name"] = c_name
    return metadata


def _as_v6(metadata: dict, name: str) -> dict:
    module = metadata["modules"]["m"]
    return {**module, "version": 6, "model_name": name}


INJECTION = 'x; }; __attribute__((constructor)) static void pwn(void) { system("touch PWNED"); } struct q { int z'

HOSTILE: dict[str, Callable[[dict], dict]] = {
    "v7 key traversal": lambda m: _rename_module(m, f"../../{DECOY}"),
    "v7 key traversal deep": lambda m: _rename_module(m, f"../../../{DECOY}"),
    "v7 key not an identifier": lambda m: _rename_module(m, "bad-name"),
    "v6 model_name traversal": lambda m: _as_v6(m, f"../../{DECOY}"),
    "v6 model_name absolute": lambda m: _as_v6(m, "/etc/passwd"),
    "injected c_name": lambda m: _set_c_name(m, INJECTION),
    "c_name with newline": lambda m: _set_c_name(m, "x\n#include </etc/passwd>\n"),
    "c_name keyword": lambda m: _set_c_name(m, "int"),
    "c_name starts with digit": lambda m: _set_c_name(m, "1x"),
    "c_names collide ignoring case": lambda m: _set_c_name(m, "X", "outputs"),
    "c_name is a module macro": lambda m: _set_c_name(m, "WORKSPACE"),
    "c_name not a string": lambda m: _set_c_name(m, ["x"]),
    "operator name injected": lambda m: (m["modules"]["m"]["memory"]["functions"]
                                         ["operator_functions"][0].update(
                                             function_name="f(); system(\"id\")") or m),
    "v7 keys differing only in case": lambda m: (m["modules"].update(M=m["modules"]["m"]) or m),
    "dtype numpy cannot hold in C": lambda m: (_main(m)["inputs"]["x"].update(dtype="object")
                                               or m),
    "workspace alignment not a power of two": lambda m: (
        m["modules"]["m"]["options"].update(workspace_byte_alignment=24) or m),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_tvmc_run_refuses_hostile_archive(base, tmp_path, capsys, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = _edited(base, tmp_path, HOSTILE[case])
    archive = _pack(files, tmp_path / "hostile.tar")
    code, opened = _opened_during(lambda: tvmc(["run", str(archive)]))
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 5, err
    assert len(errors) == 1 and len(err.strip().splitlines()) == 1, err
    assert not [p for p in opened if DECOY in p], "a file outside the archive was opened"
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("case", sorted(c for c in HOSTILE if "traversal" in c))
def test_loader_reads_nothing_outside_a_directory(base, tmp_path, case):
    files = _edited(base, tmp_path, HOSTILE[case])

    def load() -> object:
        with pytest.raises(OutputError) as info:
            load_model_library_format(str(files))
        return info.value

    error, opened = _opened_during(load)
    assert error.exit_code == 5
    assert not [p for p in opened if DECOY in p], f"opened outside the archive: {opened}"


def test_loader_refuses_links_out_of_a_directory(base, tmp_path):
    files = _edited(base, tmp_path, lambda m: m)
    header = files / "codegen/host/include/tvmgen_m.h"
    header.unlink()
    header.symlink_to(tmp_path / f"{DECOY}.h")
    error, opened = _opened_during(lambda: pytest.raises(OutputError, load_model_library_format,
                                                         str(files)))
    assert "outside the archive" in str(error.value)
    assert not [p for p in opened if DECOY in p]


def test_unedited_archive_runs(base, tmp_path, capsys):
    """The control: the same repacking without an edit gives a working archive."""
    archive = _pack(_edited(base, tmp_path, lambda m: m), tmp_path / "ok.tar")
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
    np.savez(tmp_path / "in.npz", x=x)
    assert tvmc(["run", str(archive), "-i", str(tmp_path / "in.npz"), "-o",
                 str(tmp_path / "out.npz")]) == 0, capsys.readouterr().err
    with np.load(tmp_path / "out.npz") as data:
        np.testing.assert_allclose(data["y"], np.maximum(2 * x, 0), rtol=1e-6)
