"""Ctrl-C and SIGTERM as exceptions, and the short sections they must not cut in two.

`tvmc` (cli/driver.py) installs `handlers()` while it runs: SIGINT raises KeyboardInterrupt,
SIGTERM raises `Terminated` (a KeyboardInterrupt), in the main thread, so every clean-up runs
(``finally``, ``except BaseException``) whichever way the user stops the tool.

`deferred()` holds a signal that comes during a few statements that must run together
(create a temporary file and register it for removal; start a worker process and record it)
and raises it at the end of the block. `committed()` marks the point after which the run has
succeeded (the archive renamed into place): inside `success_once_committed()` a signal from
then on is noted and not raised, so `tvmc` never reports "terminated" for a run whose output
is complete. It works at the Python level: a signal mask would not
do, since the C-level handler may run in any thread (TVM's thread pool, the executor's
manager thread) and Python then runs the handler in the main thread at once.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# 128 + the signal number, as a shell reports a process killed by that signal
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
MESSAGES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C's KeyboardInterrupt is.

    A subclass of KeyboardInterrupt, so every clean-up written for Ctrl-C (the archive
    writer's temporary file, the worker processes of ``-j``) runs for ``kill`` too.
    """


def exception_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class _State:
    """What the handlers know. Python runs signal handlers in the main thread only, so no
    lock: the fields are read and written by that thread."""

    def __init__(self) -> None:
        self.signum: int | None = None    # the first signal seen while installed
        self.pending: int | None = None   # a signal held by deferred()
        self.depth = 0                    # nesting of deferred()
        self.raising = True               # False: only note signals (the CLI is reporting)
        self.settle_on_commit = False     # committed() makes the run a success (the CLI)

    def handler(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum
        if self.depth or not self.raising:
            self.pending = self.pending or signum
            return
        raise exception_for(signum)


_state = _State()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handlers() -> Iterator[_State]:
    """SIGINT and SIGTERM raise in the main thread during the block; handlers restored after.

    Only default dispositions are replaced: a signal the caller ignores (``nohup``, SIGINT of
    a background job) or handles itself stays as it is. Yields the state, whose ``signum``
    tells whether a signal came (TVM turns a KeyboardInterrupt raised in a Python callback
    into a RuntimeError, so the exception alone does not say).
    """
    global _state
    saved, _state = _state, _State()
    installed: dict[int, Any] = {}
    if _in_main_thread():
        for signum, default in ((signal.SIGINT, signal.default_int_handler),
                                (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(signum) is default:
                installed[signum] = signal.signal(signum, _state.handler)
    try:
        yield _state
    finally:
        _state.raising = False
        for signum, previous in installed.items():
            signal.signal(signum, previous)
        _state = saved


@contextmanager
def deferred() -> Iterator[None]:
    """Run the block whole: SIGINT/SIGTERM that come meanwhile are raised when it ends.

    Outside `handlers()`, in the main thread, Python's own SIGINT handler is replaced for
    the block, so library callers get the same guarantee for Ctrl-C.
    """
    if not _in_main_thread():  # handlers run in the main thread: nothing to hold here
        yield
        return
    state = _state
    temporary = None
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        temporary = signal.signal(signal.SIGINT, state.handler)
    state.depth += 1
    try:
        yield
    finally:
        state.depth -= 1
        if temporary is not None:
            signal.signal(signal.SIGINT, temporary)
        if state.depth == 0 and state.pending and state.raising:
            signum, state.pending = state.pending, None
            raise exception_for(signum)


@contextmanager
def success_once_committed() -> Iterator[None]:
    """In the block, `committed()` settles the outcome: the run has succeeded, so a signal
    that comes from then on (or was held by `deferred()` around the commit) is noted and not
    raised, and the block finishes its last steps (printing the report)."""
    state = _state
    state.settle_on_commit = True
    try:
        yield
    finally:
        state.settle_on_commit = False


def committed() -> None:
    """The output is complete and in place. Inside `success_once_committed()`, signals stop
    raising from here on; elsewhere (library use) nothing changes."""
    state = _state
    if state.settle_on_commit:
        state.raising = False
        state.pending = None
