"""The reference runtimes, timed on the same input in this process, one thread each:

- TFLite Micro (`tflite_micro`): reference kernels. It reuses input buffers for intermediates,
  so every input is set before every `invoke()` (untimed); its arena use is read from the
  allocation report it prints on the C-level stderr.
- LiteRT (`ai_edge_litert`): default op resolver, i.e. with the XNNPACK delegate, 1 thread.
- onnxruntime: CPU provider, 1 intra-op and 1 inter-op thread; `session.run` is timed.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from timing import Latency, TimingConfig, time_calls

TFLM_ARENA_MIN = 16 << 20


@dataclass(frozen=True)
class ReferenceRun:
    """One runtime's latency and outputs; `arena_bytes`/`arena_head_bytes` for TFLite Micro."""

    latency: Latency
    outputs: list[np.ndarray]
    arena_bytes: int | None = None
    arena_head_bytes: int | None = None


def capture_c_stderr(action: Callable[[], None]) -> str:
    """Text that `action` writes to file descriptor 2 (C-level stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            action()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode(errors="replace")


def _report_bytes(report: str, what: str) -> int | None:
    match = re.search(rf"Arena allocation {what} (\d+) bytes", report)
    return int(match.group(1)) if match else None


def run_tflite_micro(model: bytes, inputs: Sequence[np.ndarray], config: TimingConfig) -> ReferenceRun:
    """Time `invoke()` in TFLite Micro (inputs set before each call) and read its arena use."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=max(TFLM_ARENA_MIN, 10 * len(model)))

    def prepare() -> None:
        for index, value in enumerate(inputs):
            interpreter.set_input(np.ascontiguousarray(value), index)

    latency = time_calls(prepare, interpreter.invoke, config)
    outputs = [np.array(interpreter.get_output(i)) for i in range(_tflite_output_count(model))]
    report = capture_c_stderr(interpreter.print_allocations)
    return ReferenceRun(latency, outputs, _report_bytes(report, "total"), _report_bytes(report, "head"))


def _tflite_output_count(model: bytes) -> int:
    from tflite.Model import Model

    return Model.GetRootAs(model, 0).Subgraphs(0).OutputsLength()


def run_litert(model: bytes, inputs: Sequence[np.ndarray], config: TimingConfig) -> ReferenceRun:
    """Time `invoke()` in LiteRT with its default delegate (XNNPACK) and one thread. An input
    of another shape than the model's placeholder (a symbolic dimension) is resized to it."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
    for detail, value in zip(interpreter.get_input_details(), inputs):
        if tuple(detail["shape"]) != np.shape(value):
            interpreter.resize_tensor_input(detail["index"], list(np.shape(value)))
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()

    def prepare() -> None:
        for detail, value in zip(details, inputs):
            interpreter.set_tensor(detail["index"], np.ascontiguousarray(value, dtype=detail["dtype"]))

    latency = time_calls(prepare, interpreter.invoke, config)
    outputs = [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]
    return ReferenceRun(latency, outputs)


def run_onnxruntime(path: str, inputs: Sequence[np.ndarray], config: TimingConfig) -> ReferenceRun:
    """Time `session.run` in onnxruntime (CPU, one thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = {meta.name: np.ascontiguousarray(x) for meta, x in zip(session.get_inputs(), inputs)}
    results: list[list[np.ndarray]] = []

    def call() -> None:
        results.append(session.run(None, feeds))
        del results[:-1]

    latency = time_calls(lambda: None, call, config)
    return ReferenceRun(latency, [np.asarray(out) for out in results[-1]])
