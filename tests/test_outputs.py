"""Where `-o` writes: symbolic links written through, special files never replaced, `-o -` on
stdout, long names. (The refusals, with their exit codes and messages, are rows of
tests/test_bad_inputs.py; these tests check what happens to the files.)"""
from __future__ import annotations

import io
import os
import pty
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from builders import onnx_models
from tvmc_cli import NO_PLUGINS
from tvmc_multimodule import load_model_library_format
from tvmc_multimodule.cli import driver
from tvmc_multimodule.errors import OutputError
from tvmc_multimodule.output_paths import resolve_output

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("outputs") / "gemm.onnx"
    onnx_models.save(onnx_models.gemm(), path)
    return path


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent-cc")  # no code-size column: faster
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")


def compile_to(model: Path, output: str, capsys) -> tuple[int, str, str]:
    code = driver.main(["compile", str(model), "--module-name", "m", "-o", output, "-j", "1"],
                       entry_point_loader=NO_PLUGINS)
    out, err = capsys.readouterr()
    return code, out, err


def test_symbolic_link_is_written_through(tmp_path, model, capsys):
    """The link stays a link, its target gets the archive and keeps its own mode."""
    real = tmp_path / "store" / "v3.tar"
    real.parent.mkdir()
    real.write_bytes(b"old archive")
    real.chmod(0o600)
    link = tmp_path / "models.tar"
    link.symlink_to(real)
    code, out, err = compile_to(model, str(link), capsys)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(load_model_library_format(str(real)).modules) == ["m"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["v3.tar"]  # no temporary left


def test_special_files_are_never_replaced(tmp_path, model, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    targets = [fifo]
    device = tmp_path / "null"
    try:  # a character device of our own (root in a container may create one)
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        targets.append(device)
    except (PermissionError, OSError):
        pass
    for target in targets:
        kind = stat.S_IFMT(target.lstat().st_mode)
        code, _, err = compile_to(model, str(target), capsys)
        assert code == 5 and "refusing to replace it" in err, err
        assert stat.S_IFMT(target.lstat().st_mode) == kind
    # the archive writer itself refuses too (a FIFO made after the command line was checked)
    from tvmc_multimodule.mlf import writer

    with pytest.raises(OutputError, match="FIFO"):
        writer.write_atomically(str(fifo), b"data")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    # the system's devices are recognised without writing anything near them
    with pytest.raises(OutputError, match="character device"):
        resolve_output("/dev/null")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(t.name for t in targets)


def test_long_output_name_is_written(tmp_path, model, capsys):
    """A name of 250 bytes is legal; the temporary name built from it must be too."""
    output = tmp_path / ("m" * 246 + ".tar")
    code, out, err = compile_to(model, str(output), capsys)
    assert code == 0, err
    assert sorted(load_model_library_format(str(output)).modules) == ["m"]
    assert [p.name for p in tmp_path.iterdir()] == [output.name]


def test_dash_writes_the_tar_to_stdout(tmp_path, model, capsysbinary):
    """`-o -`: stdout holds the plain tar, byte for byte what `-o FILE` writes; the table
    and the final line go to stderr."""
    code = driver.main(["compile", str(model), "--module-name", "m", "-o", "-", "-j", "1"],
                       entry_point_loader=NO_PLUGINS)
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    assert b"wrote the archive to stdout" in err and b"module" in err
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert "./metadata.json" in tar.getnames()
    file_archive = tmp_path / "m.tar"
    assert driver.main(["compile", str(model), "--module-name", "m", "-o", str(file_archive),
                        "-j", "1"], entry_point_loader=NO_PLUGINS) == 0
    assert out == file_archive.read_bytes()
    assert not (Path.cwd() / "-").exists()


def test_dash_refuses_a_terminal(tmp_path, model):
    """Binary data is not written to a terminal (as gzip does); nothing is compiled."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH",
                                                                                  "")])}
    try:
        done = subprocess.run([sys.executable, "-m", "tvmc_multimodule", "compile", str(model),
                               "-o", "-"], stdout=follower, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=tmp_path, timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 5, done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: -: refusing to write a binary "
                                                   "archive to a terminal"), done.stderr
    assert list(tmp_path.iterdir()) == []
