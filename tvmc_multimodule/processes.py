"""Child processes that die with the process that started them.

`tvmc` starts compilers (`cc` for the code-size column and for `run`), the program `run`
builds, and `-j` worker processes. A `kill -9` of `tvmc` runs no clean-up of ours, so each
child asks the kernel itself to be killed when its parent goes: Linux's
``prctl(PR_SET_PDEATHSIG, SIGKILL)``, set in the child between fork and exec (the setting
survives exec). Elsewhere this is a no-op and children may outlive a killed `tvmc`.

`run_all` runs several commands at once from the calling thread, so a Ctrl-C or SIGTERM
(raised in the main thread) kills them at once instead of waiting for them to finish.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.02


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, from the symbols already loaded into this process (no library search,
    which may run a subprocess); None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with(prctl: Callable[..., int], parent_pid: int | None) -> None:
    """Between fork and exec too: only prctl, getppid and _exit."""
    prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent is already gone: the request came too late


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have this process killed (SIGKILL) when its parent exits.

    `parent_pid`: the parent it must still have; if it already exited (the child was
    re-parented before the request took effect) this process exits at once.
    """
    prctl = _load_prctl()
    if prctl is not None:
        _die_with(prctl, parent_pid)


def init_worker(parent_pid: int, showwarning: Callable[..., None] | None = None) -> None:
    """Initializer of `-j` worker processes: die with the parent (even on `kill -9`), leave
    Ctrl-C to it (the terminal sends it to the whole process group, and the parent stops
    the workers), route Python warnings like the parent. It lives in this light module so
    that it runs before the worker imports TVM (seconds in which a killed parent would
    otherwise leave the worker running)."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if showwarning is not None:
        warnings.showwarning = showwarning


def child_options() -> dict[str, Any]:
    """Keyword arguments for `subprocess.Popen`/`run` that tie the child's life to ours.
    prctl is looked up here, in the parent: the child only calls it."""
    prctl = _load_prctl()
    if prctl is None:
        return {}
    parent = os.getpid()
    return {"preexec_fn": lambda: _die_with(prctl, parent)}


@dataclass(frozen=True)
class Finished:
    """What one command of `run_all` gave."""

    returncode: int | None   # None: it could not start or ran out of time
    stdout: str
    stderr: str


def run_all(commands: Sequence[Sequence[str]], parallel: int, timeout: float) -> list[Finished]:
    """Run `commands`, at most `parallel` at a time, each with its own time limit.

    Waits in the calling thread: an exception there (Ctrl-C, SIGTERM in `tvmc`) kills every
    command still running before it propagates. Output is captured in temporary files, so a
    chatty compiler cannot fill a pipe and stall.
    """
    results: list[Finished | None] = [None] * len(commands)
    running: dict[int, tuple[subprocess.Popen, float, Any, Any]] = {}
    pending = list(range(len(commands)))
    try:
        while pending or running:
            while pending and len(running) < max(1, parallel):
                index = pending.pop(0)
                started = _start(commands[index], timeout)
                if started is None:
                    results[index] = Finished(None, "", f"cannot run {commands[index][0]}")
                else:
                    running[index] = started
            for index, (process, deadline, out, err) in list(running.items()):
                if process.poll() is None and time.monotonic() < deadline:
                    continue
                if process.returncode is None:  # out of time
                    process.kill()
                    process.wait()
                    code = None
                else:
                    code = process.returncode
                results[index] = Finished(code, _read(out), _read(err))
                del running[index]
            if running:
                time.sleep(POLL_S)
    finally:
        for process, _, out, err in running.values():
            process.kill()
            process.wait()
            out.close()
            err.close()
    return [r if r is not None else Finished(None, "", "") for r in results]


def _start(command: Sequence[str],
           timeout: float) -> tuple[subprocess.Popen, float, Any, Any] | None:
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    try:
        process = subprocess.Popen(list(command), stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, **child_options())
    except OSError:
        out.close()
        err.close()
        return None
    return process, time.monotonic() + timeout, out, err


def _read(handle: Any) -> str:
    with handle:
        handle.seek(0)
        return handle.read().decode("utf-8", "replace")
