"""The small typed objects that flow between the stages.

frontends -> ImportedModel -> pipeline -> (codegen) -> CompiledModule -> mlf -> archive
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .c_api import ModuleApi


@dataclass(frozen=True)
class QuantParams:
    """Affine quantisation of an integer tensor: real = scale * (q - zero_point)."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None  # per-channel axis; None for per-tensor

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scale": list(self.scale), "zero_point": list(self.zero_point)}
        if self.axis is not None:
            out["axis"] = self.axis
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "QuantParams":
        return cls(tuple(float(s) for s in data["scale"]),
                   tuple(int(z) for z in data["zero_point"]), data.get("axis"))


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as the application sees it."""

    name: str                    # name in the model file
    c_name: str                  # sanitised, unique C identifier (struct member, macro part)
    shape: tuple[int, ...]       # the shape the model declares
    dtype: str                   # numpy dtype name: float32, int8, ...
    quant: QuantParams | None = None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class StateInfo:
    """One persistent variable of a stateful module (a TFLite resource variable): kept in
    the module's state buffer between runs, set to `initial` by reset."""

    name: str                    # the model's variable name (shared_name)
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    initial: Any = field(default=None, compare=False, repr=False)  # np.ndarray, or None
    offset: int = 0              # inside the state buffer

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class CustomOp:
    """A custom operator the user implements in C (`--custom-op NAME=impl.c`): the module
    calls `tvmgen_<module>_custom_<NAME>(inputs..., outputs...)` with typed pointers.
    `outputs`: None (the shapes and types the model declares), a list of (shape, dtype), or a
    callable taking the inputs' [(shape, dtype)] and returning that list. `source`: the C
    text; `source_name`: the file it came from (comments only)."""

    name: str
    source: str
    source_name: str = "impl.c"
    outputs: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class OperatorInfo:
    """One generated operator function and the scratch it needs inside the workspace."""

    function_name: str
    workspace_bytes: int = 0


@dataclass(frozen=True)
class LayerInfo:
    """One operator call of the runner, as `tvmc report` shows it."""

    step: int                              # index in the runner's sequence of steps
    function_name: str                     # the C function called
    op: str                                # the operators it fuses: conv2d_add_relu
    input_shapes: tuple[tuple[int, ...], ...]  # non-constant inputs
    output_shape: tuple[int, ...]
    dtype: str                             # of the output
    macs: int                              # multiply-accumulates (0: none counted)
    weight_bytes: int                      # constants read
    activation_bytes: int                  # non-constant tensors read and written
    name: str = ""                         # the model's tensor/node name, raw ("" if none)


@dataclass(frozen=True)
class PlannedBuffer:
    """One buffer of the memory plan: live from step `first` to `last` at `offset`."""

    kind: str                              # "tensor", "scratch", "input" or "output"
    first: int
    last: int
    offset: int
    size: int


@dataclass(frozen=True)
class MemoryLayout:
    """The memory plan of one module as a picture needs it."""

    steps: int
    workspace_bytes: int
    liveness_bound_bytes: int
    buffers: tuple[PlannedBuffer, ...]
    live_bytes: tuple[int, ...]            # tensor bytes live at each step


@dataclass(frozen=True)
class ImportedModel:
    """A model file turned into a Relax IRModule (frontends -> pipeline)."""

    name: str                    # module name: tvmgen_<name>_
    path: str
    model_format: str            # "tflite" | "onnx"
    relax_module: Any            # tvm.IRModule with a "main" function
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    c_support: str = ""          # C the operators call (the int8 kernels' static helpers)
    # persistent variables: main's last parameters and last results, in this order
    states: tuple[StateInfo, ...] = ()
    # user custom operators the operators call: frontends.custom_ops.CustomCall each
    custom_calls: tuple[Any, ...] = ()


@dataclass
class CompiledModule:
    """Everything the archive writer needs for one module (codegen -> mlf).

    `sources` maps file names (``<name>_lib0.c``...) to C text; `header` is the text of
    ``tvmgen_<name>.h``; `params` are the module's constants by name.
    """

    name: str
    model_path: str
    model_format: str
    target: str                  # full target string, e.g. "c -mcpu=cortex-m4"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    sources: dict[str, str]
    header: str
    relax_text: str
    params: dict[str, np.ndarray]
    operators: list[OperatorInfo]
    workspace_bytes: int
    constants_bytes: int
    liveness_bound_bytes: int = 0   # lower bound of workspace_bytes for these lifetimes
    compile_seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    # the C API the header and sources were derived from (None in modules made by hand:
    # ModuleApi.of rebuilds it from the fields above)
    c_api: ModuleApi | None = None
    layers: list[LayerInfo] = field(default_factory=list)
    memory_layout: MemoryLayout | None = None
    states: list[StateInfo] = field(default_factory=list)  # with their offsets
    # libraries the module's C calls but does not contain (metadata "external_dependencies":
    # CMSIS-NN for --target "cmsis-nn, c"), one JSON object each
    external_dependencies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state_bytes(self) -> int:
        """Bytes of the state buffer (TVMGEN_<M>_STATE_SIZE)."""
        from .c_api import state_size

        return state_size(self.states)

    @property
    def io_bytes(self) -> int:
        return sum(t.nbytes for t in self.inputs) + sum(t.nbytes for t in self.outputs)

    def replace(self, **changes: Any) -> "CompiledModule":
        """A copy with `changes`; a change to what the C API describes drops `c_api`."""
        if changes.keys() & {"name", "inputs", "outputs", "workspace_bytes", "options",
                             "states"}:
            changes.setdefault("c_api", None)
        return dataclasses.replace(self, **changes)
