"""`tvmc`: the command-line entry point and its single error boundary.

Subcommands are plugged in the way tvmc did it, a ``register_parser(subparsers)`` function
per subcommand, but collected into a `SubcommandRegistry` built inside `main` (no module-level
list that imports append to): the built-in ones, then every entry point of the
``tvmc.subcommands`` group, so another package can add a subcommand by declaring one.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol

from .. import interrupts
from ..errors import ErrorGroup, InternalError, TvmcError, UsageError
from . import legacy

log = logging.getLogger(__name__)

PROG = "tvmc"
DISTRIBUTION = "tvmc-multimodule"
ENTRY_POINT_GROUP = "tvmc.subcommands"
PACKAGE_LOGGER = "tvmc_multimodule"
ISSUES_WHERE = "the tvmc-multimodule issue tracker"

# "module:function" of the built-in register_parser functions, imported when the registry is
# built. compile-multi is also declared as an entry point; listing it here keeps
# `python -m tvmc_multimodule` complete when the package is not installed.
BUILTIN_SUBCOMMANDS = (
    ("compile", "tvmc_multimodule.cli.compile:register_parser"),
    ("compile-multi", "tvmc_multimodule.cli.compile_multi:register_parser"),
    ("run", "tvmc_multimodule.cli.run:register_parser"),
    ("micro", "tvmc_multimodule.cli.micro:register_parser"),
    ("report", "tvmc_multimodule.cli.report_command:register_parser"),
)

RegisterParser = Callable[[Any], None]


class EntryPointLike(Protocol):
    """What the registry needs of an `importlib.metadata.EntryPoint`."""

    name: str

    def load(self) -> Any: ...


EntryPointLoader = Callable[[], Iterable[EntryPointLike]]


class _ConflictingSubcommand(Exception):
    """A register_parser tried to add a subcommand name that is already taken."""


class _GuardedSubparsers:
    """The subparsers action as register_parser functions see it: refuses duplicate names.

    argparse's own behaviour on a duplicate differs between Python versions (silent
    replacement before 3.11, an ArgumentError after); one rule for all is clearer.
    """

    def __init__(self, action: argparse._SubParsersAction):
        self._action = action

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        taken = [n for n in (name, *kwargs.get("aliases", ())) if n in self._action.choices]
        if taken:
            raise _ConflictingSubcommand(taken[0])
        return self._action.add_parser(name, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._action, attr)


class SubcommandRegistry:
    """The register_parser functions of one `tvmc` invocation, each added once."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, RegisterParser, str]] = []  # (name, function, origin)

    def add(self, name: str, register: RegisterParser, origin: str = "built-in") -> bool:
        """Add a subcommand's register_parser; False (and a note) when it is already there."""
        for known_name, known_register, known_origin in self._entries:
            if register is known_register:
                return False  # the same function reached twice (built-in and entry point)
            if name == known_name:
                log.warning("ignoring subcommand '%s' from %s: already provided by %s",
                            name, origin, known_origin)
                return False
        self._entries.append((name, register, origin))
        return True

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self._entries]

    def install(self, subparsers: argparse._SubParsersAction) -> None:
        """Let each register_parser add its parser(s); a conflicting plugin is skipped."""
        guarded = _GuardedSubparsers(subparsers)
        for name, register, origin in self._entries:
            try:
                register(guarded)
            except _ConflictingSubcommand as clash:
                log.warning("ignoring subcommand '%s' from %s: '%s' is already defined",
                            name, origin, clash.args[0])


def default_entry_points() -> Iterable[EntryPointLike]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def _import_function(spec: str) -> RegisterParser:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build_registry(entry_point_loader: EntryPointLoader = default_entry_points,
                   builtins: Sequence[tuple[str, str]] = BUILTIN_SUBCOMMANDS
                   ) -> SubcommandRegistry:
    """Built-in subcommands, then the ``tvmc.subcommands`` entry points.

    `entry_point_loader` returns objects with ``.name`` and ``.load()``; tests pass fakes.
    A plugin that fails to load is skipped with a warning: one broken package must not take
    the whole tool down.
    """
    registry = SubcommandRegistry()
    for name, spec in builtins:
        registry.add(name, _import_function(spec))
    try:
        entry_points = list(entry_point_loader())
    except Exception as exc:  # a broken installation's metadata
        log.warning("cannot list '%s' entry points: %s", ENTRY_POINT_GROUP, exc)
        entry_points = []
    for entry_point in entry_points:
        try:
            register = entry_point.load()
        except Exception as exc:
            log.warning("cannot load subcommand '%s': %s: %s", entry_point.name,
                        type(exc).__name__, exc)
            continue
        registry.add(entry_point.name, register, origin=f"entry point '{entry_point.name}'")
    return registry


# ----------------------------------------------------------------------------- parser

class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so the one boundary reports it.

    Subparsers are created with the parent's class, so this covers them too.
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def version_text() -> str:
    """Installed versions; the package's own __version__ when it runs from a source tree."""
    def version_of(dist: str, fallback: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return fallback

    own = version_of(DISTRIBUTION, getattr(sys.modules.get("tvmc_multimodule"), "__version__",
                                           "unknown"))
    return f"{DISTRIBUTION} {own} (apache-tvm {version_of('apache-tvm', 'not installed')})"


def build_parser(registry: SubcommandRegistry) -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Compile TFLite and ONNX models to plain C in a "
                     "Model Library Format archive, and run them on the host.")
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="increase verbosity: -v info and tracebacks, -vv debug")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    registry.install(subparsers)
    return parser


def _subparser(parser: argparse.ArgumentParser,
               argv: Sequence[str]) -> argparse.ArgumentParser:
    """The subcommand's parser named in `argv` (the parser itself when there is none)."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        choices = getattr(action, "choices", None) or {}
        for token in argv:
            if token in choices:
                return choices[token]
    return parser


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """parse_args, except that arguments argparse does not know are reported by the options
    themselves (every one of them, with the subcommand's usage): an unknown option that takes a
    value would otherwise make argparse take the value as the model and name the model file.

    A subcommand that validates its whole command line (compile, compile-multi: they set
    `unknown_options` to a list) gets the unknown options as problems among the others, when
    no stray argument shows that one of them swallowed a value.
    """
    argv = legacy.join_target_values(list(argv))
    args, extras = parser.parse_known_args(argv)
    if not extras:
        return args
    sub = _subparser(parser, argv)
    options = [token for token in extras if token.startswith("-") and token != "-"]
    sub.print_usage(sys.stderr)
    if not options:
        raise UsageError(f"unexpected argument(s): {' '.join(extras)}",
                         hint=f"see '{sub.prog} --help'")
    problems = [legacy.unknown_option_error(token) for token in options]
    for problem in problems:
        problem.hint = problem.hint or f"see '{sub.prog} --help'"
    if isinstance(getattr(args, "unknown_options", None), list) and len(options) == len(extras):
        args.unknown_options = problems
        return args
    if len(problems) == 1:
        raise problems[0]
    raise ErrorGroup(problems)


# ----------------------------------------------------------------------------- boundary

def internal_error(exc: BaseException) -> InternalError:
    """An unexpected exception as the one-line report the user should file."""
    return InternalError(f"internal error: {type(exc).__name__}: {exc}",
                         hint=f"this is a bug, please report it to {ISSUES_WHERE} with the command "
                              "line (run with -v for the traceback)")


def _prescan_verbosity(argv: Sequence[str]) -> int:
    """-v count before parsing succeeded (a failure while building the parser)."""
    count = 0
    for arg in argv:
        if arg == "--":
            break
        if arg == "--verbose":
            count += 1
        elif arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) == {"v"}:
            count += len(arg) - 1
    return count


def _set_log_level(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.getLogger(PACKAGE_LOGGER).setLevel(level)


@contextmanager
def _logging_to_stderr(verbosity: int) -> Iterator[None]:
    """Log this package's records to the current stderr while `main` runs.

    The logger is put back as it was afterwards, so in-process calls (tests, embedding) do not
    stack handlers or leave the package's logging changed.
    """
    package_logger = logging.getLogger(PACKAGE_LOGGER)
    saved = package_logger.level, package_logger.propagate
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
    package_logger.addHandler(handler)
    package_logger.propagate = False  # the root logger may have handlers of its own
    _set_log_level(verbosity)
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(saved[0])
        package_logger.propagate = saved[1]


def log_dependency_warning(message: Warning | str, category: type[Warning], filename: str,
                           lineno: int, file: Any = None, line: str | None = None) -> None:
    """`warnings.showwarning` while `tvmc` runs: a Python warning of a dependency (TVM, onnx,
    numpy) becomes a debug message (-vv) instead of raw lines on stderr, which carries our
    own one-line messages only."""
    logging.getLogger(f"{PACKAGE_LOGGER}.dependencies").debug(
        "%s: %s (%s:%d)", category.__name__, message, filename, lineno)


@contextmanager
def _dependency_warnings_to_log() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.showwarning = log_dependency_warning
        yield


def _interrupted(exc: BaseException, signum: int | None) -> int:
    """One line and 130 (SIGINT, Ctrl-C) or 143 (SIGTERM)."""
    if signum is None:  # a KeyboardInterrupt raised without a signal
        signum = signal.SIGTERM if isinstance(exc, interrupts.Terminated) else signal.SIGINT
    _report(exc, interrupts.MESSAGES[signum], 0)
    return interrupts.EXIT_CODES[signum]


def _report(exc: BaseException, line: str, verbosity: int) -> None:
    """The traceback first (when asked for), so the `error:` line stays the last one."""
    if verbosity:
        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()
    print(f"error: {' '.join(line.split())}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None,
         entry_point_loader: EntryPointLoader = default_entry_points) -> int:
    """Run `tvmc`; returns the exit code (see docs/cli.md).

    The one place where errors become messages: a TvmcError prints its one line and exits with
    its code; anything else is a bug, reported as such (exit 70). Ctrl-C (SIGINT) and SIGTERM
    raise KeyboardInterrupt / `Terminated` in the main thread, so clean-ups run, and end here
    with one line and 130 / 143, whatever exception they turned into on the way.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    verbosity = _prescan_verbosity(argv)
    with _logging_to_stderr(verbosity), _dependency_warnings_to_log(), \
            interrupts.handlers() as signals:
        try:
            parser = build_parser(build_registry(entry_point_loader))
            args = parse_arguments(parser, argv)
            verbosity = args.verbose + getattr(args, "sub_verbose", 0)
            _set_log_level(verbosity)
            if not hasattr(args, "func"):
                parser.print_usage(sys.stderr)
                raise UsageError("no command given", hint=f"see '{PROG} --help'")
            return int(args.func(args) or 0)
        except SystemExit as exc:  # --help and --version exit through argparse
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except KeyboardInterrupt as exc:
            signals.raising = False  # a second signal must not break the report
            return _interrupted(exc, signals.signum)
        except TvmcError as exc:
            signals.raising = False
            if signals.signum:  # the interrupt surfaced as another error
                return _interrupted(exc, signals.signum)
            _report(exc, exc.one_line(), verbosity)
            return exc.exit_code
        except Exception as exc:
            signals.raising = False
            if signals.signum:
                return _interrupted(exc, signals.signum)
            _report(exc, internal_error(exc).one_line(), verbosity)
            return InternalError.exit_code
