"""Archives and .npz inputs whose numbers are hostile: `tvmc run` refuses them with its
documented code (5: bad archive, 2: bad --inputs) and one line, never an internal error (70),
a MemoryError or a build of C from impossible sizes.

One real archive (an ONNX Gemm module `g`) is unpacked, one thing in it changed, repacked.
"""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from builders import onnx_models
from tvmc_cli import NO_PLUGINS
from tvmc_multimodule.cli import driver



@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    """The members of a valid archive, by name."""
    folder = tmp_path_factory.mktemp("bad-numbers")
    onnx_models.save(onnx_models.gemm(), folder / "g.onnx")
    archive = folder / "g.tar"
    assert driver.main(["compile", str(folder / "g.onnx"), "--module-name", "g", "-o",
                        str(archive), "-j", "1"], entry_point_loader=NO_PLUGINS) == 0
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def pack(path: Path, files: dict[str, bytes], metadata: str | None = None,
         extra: tarfile.TarInfo | None = None) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            if name == "./metadata.json" and metadata is not None:
                data = metadata.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"x" * extra.size))
    return path


def edited(files: dict[str, bytes], change: Callable[[dict], None]) -> str:
    metadata = json.loads(files["./metadata.json"])
    change(metadata["modules"]["g"]["memory"]["functions"]["main"][0])
    return json.dumps(metadata)  # Infinity and NaN as Python's json writes them


def tensor(which: str, key: str, value: object) -> Callable[[dict], None]:
    name = "x" if which == "inputs" else "y"
    return lambda main: main[which][name].__setitem__(key, value)


def nul_member() -> tarfile.TarInfo:
    info = tarfile.TarInfo("x")
    info.pax_headers = {"path": "codegen/a\0b.c"}
    info.size = 1
    return info


DEEP = 100_000
# id -> (metadata.json text or an edit of main's entry, extra member, words of the message)
CASES: dict[str, tuple] = {
    "pax-path-with-nul": (None, nul_member, "has a NUL byte in its name"),
    "json-nested-arrays": ("[" * DEEP + "]" * DEEP, None, "nested too deeply"),
    "json-nested-objects": ('{"version": 7, "x": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}",
                            None, "nested too deeply"),
    "size-infinity": (tensor("inputs", "size", float("inf")), None,
                      "size inf, which is not a byte count"),
    "size-negative": (tensor("outputs", "size", -32), None, "size -32"),
    "shape-infinity": (tensor("inputs", "shape", [1, float("inf")]), None, "shape"),
    "shape-nan": (tensor("inputs", "shape", [1, float("nan")]), None, "shape"),
    "shape-negative": (tensor("inputs", "shape", [1, -16]), None, "shape"),
    "shape-huge": (tensor("outputs", "shape", [10 ** 30, 8]), None, "shape"),
    "shape-2-gib": (tensor("outputs", "shape", [2 ** 20, 2 ** 10]), None, "2 GiB"),
    "dtype-unknown": (tensor("inputs", "dtype", "float99"), None, "unknown dtype 'float99'"),
    "workspace-infinity": (lambda main: main.__setitem__("workspace_size_bytes",
                                                         float("inf")), None, "workspace"),
    "constants-infinity": (lambda main: main.__setitem__("constants_size_bytes",
                                                         float("inf")), None,
                           "'constants_size_bytes' is inf"),
    "liveness-negative": (lambda main: main.__setitem__("liveness_bound_bytes", -1), None,
                          "'liveness_bound_bytes' is -1"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_refuses_archive_with_bad_numbers(files, tmp_path, capsys, case):
    text_or_edit, extra, words = CASES[case]
    metadata = text_or_edit if isinstance(text_or_edit, str) or text_or_edit is None \
        else edited(files, text_or_edit)
    archive = pack(tmp_path / "bad.tar", files, metadata, extra() if extra else None)
    code = driver.main(["run", str(archive)], entry_point_loader=NO_PLUGINS)
    out, err = capsys.readouterr()
    assert code == 5, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: "), err
    assert words in err and str(archive) in err, err
    assert "Traceback" not in err and not out


def npz_declaring(path: Path, shape: tuple[int, ...], dtype: str = "<f4") -> Path:
    """An .npz whose header declares `shape` over a few bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False,
                                                  "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
    return path


@pytest.mark.parametrize("shape", [(10 ** 12,), (10 ** 6, 10 ** 6, 10 ** 6)])
def test_run_refuses_npz_declaring_huge_arrays_before_loading(files, tmp_path, capsys, shape):
    archive = pack(tmp_path / "g.tar", files)
    inputs = npz_declaring(tmp_path / "in.npz", shape)
    code = driver.main(["run", str(archive), "-i", str(inputs)], entry_point_loader=NO_PLUGINS)
    err = capsys.readouterr().err
    assert code == 2, err
    count = int(np.prod(shape, dtype=object))
    assert err.strip().splitlines() == [f"error: g ({inputs}): input 'x' has {count} elements "
                                        f"[{','.join(map(str, shape))}], the model needs 16 "
                                        "[1,16]"], err
