"""Typed errors. Raised anywhere inside the package, caught once at the CLI boundary.

Every error carries the module name and the model file it concerns (when known) so the CLI can
print one line: ``error: <module> (<file>): <what> - <what to do>``.
"""
from __future__ import annotations

from typing import Sequence


class TvmcError(Exception):
    """Base of every error the tool reports to a user."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, module: str | None = None, path: str | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.module = module
        self.path = path
        self.hint = hint

    def __reduce__(self) -> tuple:
        # keeps module, path and hint when an error crosses a process boundary (compile -j)
        return (_restore_error, (type(self), dict(self.__dict__)))

    def located(self, *, module: str | None = None, path: str | None = None) -> "TvmcError":
        """Fill in the module and file where the raiser did not know them."""
        self.module = self.module or module
        self.path = self.path or path
        return self

    def one_line(self) -> str:
        where = ""
        if self.module and self.path:
            where = f"{self.module} ({self.path}): "
        elif self.module:
            where = f"{self.module}: "
        elif self.path:
            where = f"{self.path}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" - {self.hint}"
        return " ".join(text.split())  # one line, whatever the parts held

    def __str__(self) -> str:
        return self.one_line()


class UsageError(TvmcError):
    """Bad command line or option values."""

    exit_code = 2


class ModelError(TvmcError):
    """The model file is missing, unreadable, corrupt or inconsistent."""

    exit_code = 3


class UnsupportedError(TvmcError):
    """A valid model uses something we cannot compile yet (operator, control flow...)."""

    exit_code = 4


class OutputError(TvmcError):
    """The archive or another output cannot be written, or an archive cannot be read."""

    exit_code = 5


class BuildError(TvmcError):
    """The generated C failed to build or run on the host (``tvmc run``)."""

    exit_code = 6


class InternalError(TvmcError):
    """A bug in tvmc-multimodule or in TVM itself."""

    exit_code = 70


class ErrorGroup(TvmcError):
    """Several problems found in one validation pass, reported together."""

    def __init__(self, errors: list[TvmcError]):
        super().__init__("; ".join(e.one_line() for e in errors))
        self.errors = list(errors)
        # the most specific shared cause decides the exit code
        codes = {e.exit_code for e in errors}
        self.exit_code = codes.pop() if len(codes) == 1 else UsageError.exit_code

    def one_line(self) -> str:
        return self.message


def raise_all(problems: Sequence[TvmcError]) -> None:
    """Raise nothing, the one error, or an ErrorGroup of all of them."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ErrorGroup(list(problems))


def _restore_error(cls: type, state: dict) -> TvmcError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error
