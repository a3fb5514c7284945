"""`tvmc compile-multi MODEL[:NAME] ...`: several models -> one MLF v7 archive.

Declared as the ``compile-multi`` entry point of the ``tvmc.subcommands`` group.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

from ..errors import OutputError, TvmcError
from ..interrupts import deferred, success_once_committed
from ..model import CompiledModule
from ..processes import init_worker
from . import options, report
from .driver import internal_error, log_dependency_warning

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  tvmc compile-multi kws.tflite:kws ad.onnx:anomaly --target c -o models.tar
  tvmc compile-multi kws.tflite ad.onnx --module-name kws --module-name anomaly
  tvmc compile-multi kws.onnx:kws ad.onnx:ad --input-shapes "kws:input:[1,49,10,1] ad:x:[1,640]"
"""


def register_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compile-multi", help="compile several models into one Model Library Format archive",
        description="Compile each model to plain C (symbols tvmgen_<NAME>_*) and write all\n"
                    "of them into ONE Model Library Format v7 archive. Nothing is written\n"
                    "unless every model compiles.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL[:NAME]",
                        help="model file (.tflite or .onnx) and optional module name "
                             "(default: the file name stem)")
    parser.add_argument("--module-name", action="append", metavar="NAME",
                        help="module name of each MODEL, in order: give one per MODEL "
                             "(instead of MODEL:NAME)")
    options.add_compile_options(parser, multi=True)
    parser.set_defaults(func=drive_compile_multi)


def drive_compile_multi(args: argparse.Namespace) -> int:
    pairs = options.pair_module_names(args.models, args.module_name)
    jobs, settings = options.validate_compile(args, pairs, module_prefixes=True)
    return compile_and_write(jobs, settings)


def compile_and_write(jobs: list[options.ModelJob], settings: options.CompileSettings) -> int:
    """Compile every job, then write the archive and print the table (nothing on failure).

    The table (its code sizes take a few compiler runs) is measured BEFORE the archive is
    renamed into place: the rename is the last step that can fail or be interrupted, so an
    interrupted run never leaves a new archive behind, and a run whose archive is in place
    ends as a success (`interrupts.success_once_committed`).
    """
    # imported here: TVM takes most of a second to import, argument errors should not wait
    from .. import api

    for note in settings.notes:
        print(f"note: {note}", file=sys.stderr, flush=True)
    workers = min(settings.jobs, len(jobs))
    if workers > 1:
        modules = compile_in_parallel(jobs, settings, workers)
    else:
        modules = [compile_job(job, settings, i, len(jobs)) for i, job in enumerate(jobs, 1)]
    table = report.module_table(modules, settings.jobs, shared=settings.workspace == "shared")
    if settings.output == options.STDOUT:
        write_to_stdout(modules, table)
        return 0
    with success_once_committed():
        path = api.export_model_library_format(modules, settings.output)
        print(table)
        print(f"wrote {path}")
        sys.stdout.flush()
    return 0


def write_to_stdout(modules: list[CompiledModule], table: str) -> None:
    """``-o -``: the plain tar on stdout, the table on stderr. The archive is built whole
    first; an interrupt while it is being written leaves the reader a truncated tar."""
    from ..mlf.writer import archive_bytes

    data = archive_bytes(modules)
    print(table, file=sys.stderr, flush=True)
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # the reader went away: stop writing and keep Python's exit-time flush quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise OutputError("stdout was closed before the archive was written",
                          path="-") from None
    except OSError as exc:
        raise OutputError(f"cannot write the archive to stdout: {exc.strerror or exc}",
                          path="-") from None
    print(f"wrote the archive to stdout ({len(data)} bytes)", file=sys.stderr, flush=True)


def compile_one(job: options.ModelJob, settings: options.CompileSettings) -> CompiledModule:
    """One module; every error names the module and its file. Runs in worker processes too."""
    from .. import api

    try:
        return api.compile_model(
            job.path, module_name=job.name, target=settings.target.canonical,
            input_shapes=job.input_shapes or None, model_format=job.model_format,
            opt_level=settings.opt_level, pass_config=settings.pass_config or None,
            schedule=settings.schedule, workspace=settings.workspace,
            strict_int8=settings.strict_int8, desired_layout=settings.desired_layout,
            input_values=job.input_values or None, workspace_io=settings.workspace_io,
            custom_ops=dict(settings.custom_ops) or None)
    except TvmcError as err:
        raise options.locate_all(err, module=job.name, path=job.path)
    except Exception as exc:  # a bug; still say which model triggered it
        raise internal_error(exc).located(module=job.name, path=job.path) from exc


def compile_job(job: options.ModelJob, settings: options.CompileSettings,
                index: int, count: int) -> CompiledModule:
    with report.progress(index, count, job.name, job.path):
        return compile_one(job, settings)


def compile_in_parallel(jobs: list[options.ModelJob], settings: options.CompileSettings,
                        workers: int) -> list[CompiledModule]:
    """Worker processes compile the modules; results keep the command line's order, so the
    archive is byte-identical to -j 1. The first failure (in that order) is raised."""
    # Fresh interpreters ("spawn"), children of this process: not a plain fork (TVM's
    # thread pools do not survive one), and not a fork server, whose workers are ITS
    # children and so outlive a `kill -9` of this process. Each worker asks the kernel to
    # kill it when this process dies (`processes.init_worker`).
    context = multiprocessing.get_context("spawn")
    results: dict[int, CompiledModule] = {}
    errors: dict[int, BaseException] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=init_worker,
                             initargs=(os.getpid(), log_dependency_warning)) as pool:
        try:
            # submit starts the workers: an interrupt in the middle would leave one that is
            # not yet in the pool's list (and so never stopped) starting up alone
            with deferred(), _ctrl_c_ignored_by_new_processes():
                futures = {pool.submit(compile_one, job, settings): i
                           for i, job in enumerate(jobs)}
            # the pool starts `workers` modules, then the next one as each finishes
            starting = iter(enumerate(jobs, 1))
            for index, job in itertools.islice(starting, workers):
                report.progress_start(index, len(jobs), job.name, job.path)
            for done, future in enumerate(as_completed(futures), 1):
                if future.cancelled():  # after another module failed
                    continue
                index, job = futures[future], jobs[futures[future]]
                try:
                    results[index] = future.result()
                    outcome = f"{results[index].compile_seconds:.2f} s"
                except Exception as exc:  # noqa: BLE001 - re-raised below, in job order
                    errors[index] = exc
                    outcome = "failed"
                    for pending in futures:
                        pending.cancel()
                report.progress_end(index + 1, len(jobs), job.name, job.path, outcome)
                for next_index, next_job in itertools.islice(starting, 1):
                    report.progress_start(next_index, len(jobs), next_job.name, next_job.path)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (driver.Terminated)
            _stop_workers(pool)
            raise
    if errors:
        raise errors[min(errors)]
    return [results[i] for i in range(len(jobs))]


@contextmanager
def _ctrl_c_ignored_by_new_processes() -> Iterator[None]:
    """Start processes with SIGINT ignored, a disposition that survives exec: the workers then
    ignore Ctrl-C (sent to the whole process group) even while they import TVM, instead of
    dying with a traceback; this process stops them. This process ignores a Ctrl-C during
    these few milliseconds too (the next one counts)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers: leaving the ``with`` block
    would otherwise wait for the modules being compiled."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown clears it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
