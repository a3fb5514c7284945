"""The `tvmc` command line run in-process, as the tests run it."""
from __future__ import annotations

import pytest

from tvmc_multimodule.cli import driver

NO_PLUGINS = lambda: []  # noqa: E731 - an entry-point loader that finds nothing


def error_lines(stderr: str) -> list[str]:
    """The lines of STDERR that are error messages (a warning may precede them)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def tvmc(capsys: pytest.CaptureFixture, *argv: object,
         loader: driver.EntryPointLoader = NO_PLUGINS) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `tvmc ARGV` (no installed plugin registered)."""
    capsys.readouterr()  # only what this command prints
    code = driver.main([str(a) for a in argv], entry_point_loader=loader)
    out, err = capsys.readouterr()
    return code, out, err
