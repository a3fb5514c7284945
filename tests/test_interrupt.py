"""Ctrl-C and SIGTERM during `tvmc compile-multi` leave nothing behind.

Real signals to a real `python -m tvmc_multimodule` process, at several moments: while TVM
compiles, while the archive is written (the signal goes out as soon as the temporary file
appears) and while `-j 2` worker processes compile. After each: exit code 130 (SIGINT) or 143
(SIGTERM), or 0 when the run finished first; one `error:` line and no traceback; no temporary
file in the output directory or in TMPDIR; the archive that was at `-o` byte-identical (or,
if the run got that far, the complete new one); no process of the run left alive.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OLD_ARCHIVE = b"the archive of an earlier run\n" * 1000
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def big_onnx(path: Path, rows: int, seed: int = 0) -> Path:
    """x[1,rows] @ w[rows,1024]: rows * 4 KiB of weights, which take a moment to compile and
    write (about 2.8 characters of C per byte of constants)."""
    weights = np.random.default_rng(seed).standard_normal((rows, 1024)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])],
        [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("interrupt-models")
    return {"small": big_onnx(folder / "small.onnx", 1000),   # 4 MB
            "a": big_onnx(folder / "a.onnx", 2500, 1),         # 10 MB
            "b": big_onnx(folder / "b.onnx", 2500, 2)}


def group_members(pgid: int) -> list[str]:
    """Processes of process group `pgid` that are not zombies: 'pid state command line'."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(f"{entry.name} {fields[0]} {command}")
    return found


def tvm_loaded(pid: int) -> bool:
    try:
        return "libtvm_compiler" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def worker_processes(pgid: int) -> list[int]:
    """The -j worker processes (spawned interpreters) of process group `pgid`."""
    return [int(p.split()[0]) for p in group_members(pgid) if "multiprocessing.spawn" in p]


def wait_for(predicate, timeout: float, step: float = 0.001) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# moments to send the signal: (what to wait for, then how many seconds more)
MOMENTS = {
    # TVM's libraries load early in its ~1 s import: then the frontend and the passes run
    "compiling": (lambda p, out: tvm_loaded(p.pid), 1.2),
    "compiling-later": (lambda p, out: tvm_loaded(p.pid), 1.8),
    # the temporary archive exists: the archive is being written
    "writing": (lambda p, out: any(f.suffix == ".tmp" for f in out.iterdir()), 0.0),
    # the workers start up (Python and our modules import)
    "starting-workers": (lambda p, out: len(worker_processes(p.pid)) >= 1, 0.2),
    # 2 workers with TVM loaded: the workers compile
    "workers": (lambda p, out: sum(map(tvm_loaded, worker_processes(p.pid))) >= 2, 0.3),
}

# (id, models, -j, signal, to the whole process group (Ctrl-C in a terminal), moment)
CASES = [
    ("sigterm-compiling", ["a"], 1, signal.SIGTERM, False, "compiling"),
    ("sigint-compiling", ["a"], 1, signal.SIGINT, True, "compiling-later"),
    ("sigterm-writing", ["small"], 1, signal.SIGTERM, False, "writing"),
    ("sigint-writing", ["small"], 1, signal.SIGINT, True, "writing"),
    ("sigint-starting-workers", ["a", "b"], 2, signal.SIGINT, True, "starting-workers"),
    ("sigterm-workers", ["a", "b"], 2, signal.SIGTERM, False, "workers"),
]


@pytest.mark.parametrize("names, jobs, signum, group, moment",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_interrupt_leaves_nothing_behind(tmp_path, models, names, jobs, signum, group, moment):
    out_dir, tmp_dir = tmp_path / "out", tmp_path / "tmp"
    out_dir.mkdir()
    tmp_dir.mkdir()
    archive = out_dir / "models.tar"
    archive.write_bytes(OLD_ARCHIVE)
    env = {**os.environ, "TMPDIR": str(tmp_dir), "SOURCE_DATE_EPOCH": "0",
           "CC": str(tmp_path / "no-compiler"),  # skips the code-size column: faster
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "tvmc_multimodule", "compile-multi",
               *(f"{models[n]}:{n}" for n in names), "-j", str(jobs), "-o", str(archive)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, start_new_session=True)
    try:
        ready, delay = MOMENTS[moment]
        assert wait_for(lambda: ready(process, out_dir) or process.poll() is not None,
                        timeout=60), f"never reached: {moment}"
        time.sleep(delay)
        if process.poll() is None:
            (os.killpg if group else os.kill)(process.pid, signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()

    code = process.returncode
    assert code in (EXIT_CODES[signum], 0), f"exit {code}\n{err}"
    assert "Traceback" not in err, err
    if code:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert errors == [f"error: {'interrupted' if signum == signal.SIGINT else 'terminated'}"
                          + ("" if signum == signal.SIGINT else " (SIGTERM)")], err
        assert "wrote" not in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["models.tar"]  # no .tmp, no test file
    assert list(tmp_dir.iterdir()) == []
    if archive.read_bytes() != OLD_ARCHIVE:  # replaced: only ever by the complete archive
        from tvmc_multimodule import load_model_library_format

        assert sorted(load_model_library_format(str(archive)).modules) == sorted(names)
    else:
        assert code != 0
    # the workers go with the parent (zombies may wait to be reaped)
    assert wait_for(lambda: not group_members(process.pid), timeout=5, step=0.05), \
        group_members(process.pid)


# ----------------------------------------------------------------------------- kill -9, code size

def slow_compiler(folder: Path, marker: Path) -> Path:
    """A `$CC` that says it started (creates `marker`) and then takes a minute: the moment a
    signal comes while `tvmc` measures code sizes. `exec` keeps one process, which is what
    a killed `tvmc` must take along."""
    script = folder / "slow-cc"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\nexec sleep 60\n")
    script.chmod(0o755)
    return script


def start_tvmc(tmp_path: Path, models: dict[str, Path], names: list[str], jobs: int,
               archive: Path, cc: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "SOURCE_DATE_EPOCH": "0",
           "CC": str(cc),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "tvmc_multimodule", "compile-multi",
               *(f"{models[n]}:{n}" for n in names), "-j", str(jobs), "-o", str(archive)]
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        # files, not pipes: a survivor holding a pipe open would block reading it
        return subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env,
                                start_new_session=True)


def finish(process: subprocess.Popen, tmp_path: Path) -> tuple[str, str]:
    """Wait for `tvmc`, then kill whatever of its process group is left (survivors of a
    failed test must not linger); its stdout and stderr."""
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()


def no_survivors(pgid: int) -> list[str]:
    """Wait (5 s at most) for the process group to be empty; what is left, killed."""
    wait_for(lambda: not group_members(pgid), timeout=5, step=0.05)
    left = group_members(pgid)
    if left:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def test_sigterm_while_measuring_code_size_keeps_outcome_and_archive_in_step(tmp_path, models):
    """The code-size step runs `cc`; a SIGTERM then must not leave a NEW archive behind a
    `terminated` report (the archive used to be renamed into place before this step)."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    archive = out_dir / "models.tar"
    archive.write_bytes(OLD_ARCHIVE)
    marker = tmp_path / "cc-started"
    process = start_tvmc(tmp_path, models, ["small"], 1, archive,
                         slow_compiler(tmp_path, marker))
    try:
        assert wait_for(lambda: marker.exists() or process.poll() is not None, timeout=60)
        assert process.poll() is None, (tmp_path / "stderr").read_text()
        os.kill(process.pid, signal.SIGTERM)
    finally:
        out, err = finish(process, tmp_path)
    assert process.returncode == 143, err
    assert err.splitlines()[-1:] == ["error: terminated (SIGTERM)"], err
    assert archive.read_bytes() == OLD_ARCHIVE  # terminated: the old archive stays
    assert sorted(p.name for p in out_dir.iterdir()) == ["models.tar"]
    assert no_survivors(process.pid) == []  # the compiler went with it


def helpers_with_tvm(pid: int) -> list[int]:
    """Processes of `pid`'s group, other than `pid`, that have loaded TVM (the workers, and
    a fork server if there is one)."""
    return [int(p.split()[0]) for p in group_members(pid)
            if int(p.split()[0]) != pid and tvm_loaded(int(p.split()[0]))]


def test_sigkill_with_two_jobs_leaves_no_process(tmp_path, models):
    """`kill -9` runs no clean-up of ours: the workers (and whatever helper processes the
    pool has) must die with the parent, through the kernel."""
    archive = tmp_path / "models.tar"
    process = start_tvmc(tmp_path, models, ["a", "b"], 2, archive, tmp_path / "no-compiler")
    try:
        assert wait_for(lambda: len(helpers_with_tvm(process.pid)) >= 2
                        or process.poll() is not None, timeout=90), group_members(process.pid)
        time.sleep(0.3)  # the workers compile
        assert process.poll() is None, (tmp_path / "stderr").read_text()
        os.kill(process.pid, signal.SIGKILL)
    finally:
        finish(process, tmp_path)
    assert process.returncode == -signal.SIGKILL
    assert no_survivors(process.pid) == []
    assert not archive.exists()


def test_sigkill_while_measuring_code_size_leaves_no_compiler(tmp_path, models):
    marker = tmp_path / "cc-started"
    process = start_tvmc(tmp_path, models, ["small"], 1, tmp_path / "models.tar",
                         slow_compiler(tmp_path, marker))
    try:
        assert wait_for(lambda: marker.exists() or process.poll() is not None, timeout=60)
        assert process.poll() is None, (tmp_path / "stderr").read_text()
        os.kill(process.pid, signal.SIGKILL)
    finally:
        finish(process, tmp_path)
    assert no_survivors(process.pid) == []


def test_signal_at_the_rename_does_not_undo_a_success(tmp_path, monkeypatch):
    """A SIGTERM held while the archive is renamed into place: the archive is complete, so
    under `success_once_committed` (what compile_and_write uses) the run goes on to report
    its success instead of raising `Terminated` after the fact."""
    from tvmc_multimodule import interrupts
    from tvmc_multimodule.mlf import writer

    archive = tmp_path / "models.tar"
    archive.write_bytes(OLD_ARCHIVE)
    real_replace = os.replace

    def replace_with_a_signal(src, dst):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run and holds the signal
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", replace_with_a_signal)
    steps = []
    with interrupts.handlers() as state:
        with interrupts.success_once_committed():
            writer.write_atomically(str(archive), b"new archive")
            os.kill(os.getpid(), signal.SIGTERM)  # after the commit: noted, not raised
            time.sleep(0.05)
            steps.append("reported")
    assert steps == ["reported"] and state.signum == signal.SIGTERM
    assert archive.read_bytes() == b"new archive"
    # outside the block (library use) a held signal still raises after the rename
    with interrupts.handlers():
        with pytest.raises(interrupts.Terminated):
            writer.write_atomically(str(archive), b"newer archive")
    assert archive.read_bytes() == b"newer archive"


# ----------------------------------------------------------------------------- in-process

def test_sigterm_handler_restored_and_reported(capsys):
    """A signal that TVM turned into another exception on its way is still reported as the
    interrupt; the handlers are put back after `main`."""
    from types import SimpleNamespace

    from tvmc_multimodule.cli import driver

    def register_parser(subparsers):
        def stop(args):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except KeyboardInterrupt:  # what tvm_ffi does to an exception in a callback
                raise RuntimeError("wrapped by the FFI") from None
            return 0
        subparsers.add_parser("stop").set_defaults(func=stop)

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    code = driver.main(["stop"], entry_point_loader=lambda: [
        SimpleNamespace(name="stop", load=lambda: register_parser)])
    _, err = capsys.readouterr()
    assert code == 143
    assert err.splitlines() == ["error: terminated (SIGTERM)"]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_deferred_holds_the_signal_until_the_block_ends():
    from tvmc_multimodule import interrupts

    steps = []
    with interrupts.handlers():
        with pytest.raises(interrupts.Terminated):
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now, and held the signal
                steps.append("block finished")
    assert steps == ["block finished"]


def test_interrupt_while_writing_removes_the_temporary_file(tmp_path, monkeypatch):
    from tvmc_multimodule.mlf import writer

    archive = tmp_path / "models.tar"
    archive.write_bytes(OLD_ARCHIVE)

    def interrupted_fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        writer.write_atomically(str(archive), b"new archive")
    assert [p.name for p in tmp_path.iterdir()] == ["models.tar"]
    assert archive.read_bytes() == OLD_ARCHIVE
