"""The C API of one module, described once.

`ModuleApi` holds every name the generated C of a module exposes: symbols, macros, the
input/output structs and their members, and the signatures of the run functions for the
workspace mode. codegen builds it from the compiled module (`ModuleApi.build`) and derives
the header, the runner and the static-workspace file from it; mlf/writer derives the
umbrella header and the example main.c; mlf/reader rebuilds it from validated metadata and
`tvmc run` derives its harness from it. None of these spells an API name itself (operator
symbols, `tvmgen_<name>_<op>`, are the pipeline's).

Model text (tensor names) reaches C only through `names.c_text`: as identifiers (`c_name`,
made by `assign_c_names` or checked by `c_name_problems`), as comments (`CTensor.comment`)
and as string literals (main.c's labels).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .model import CompiledModule, QuantParams, StateInfo, TensorInfo
from .names import CText, c_text, check_module_name, is_c_identifier, unique_c_names

WORKSPACE_MODES = ("static", "shared")
DEFAULT_ALIGNMENT = 16
MAX_ALIGNMENT = 4096

# TVMGEN_<MODULE>_<C_NAME>_<suffix>: the macros of one tensor
TENSOR_MACRO_SUFFIXES = ("SIZE", "SCALE", "ZERO_POINT", "QUANTIZE", "DEQUANTIZE", "OFFSET")
# TVMGEN_<MODULE>_<suffix>: the module's own macros (and the include guard)
MODULE_MACRO_SUFFIXES = ("WORKSPACE_SIZE", "WORKSPACE_ALIGNMENT", "WORKSPACE_SHARED",
                         "WORKSPACE_IO", "H_")

_8_BIT_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}

# TVMGEN_<MODULE>_STATE_<suffix>: the macros of a stateful module's state buffer
STATE_MACRO_SUFFIXES = ("STATE_SIZE", "STATE_ALIGNMENT")
STATE_ALIGNMENT = 16


def state_offsets(states: Sequence[StateInfo]) -> list[int]:
    """Each variable's offset in the state buffer: in order, each aligned to 16 bytes."""
    offsets, top = [], 0
    for state in states:
        offsets.append(top)
        top = (top + state.nbytes + STATE_ALIGNMENT - 1) // STATE_ALIGNMENT * STATE_ALIGNMENT
    return offsets


def state_size(states: Sequence[StateInfo]) -> int:
    """Bytes of the state buffer holding `states` at their offsets."""
    return max((s.offset + s.nbytes for s in states), default=0)


def reserved_tensor_c_names(stateful: bool = False) -> frozenset[str]:
    """C names a tensor may not take because one of its macros would be a module macro
    (`workspace` -> TVMGEN_<M>_WORKSPACE_SIZE; `state` in a stateful module)."""
    out = set()
    for module_suffix in MODULE_MACRO_SUFFIXES + (STATE_MACRO_SUFFIXES if stateful else ()):
        for suffix in TENSOR_MACRO_SUFFIXES:
            if module_suffix.endswith("_" + suffix):
                out.add(module_suffix[: -len(suffix) - 1])
    return frozenset(out)


def assign_c_names(inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                   stateful: bool = False) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The tensors with C names unique across inputs and outputs (ignoring case) and apart
    from the module's reserved names: inputs first, then outputs, in model order; a later
    clash gets `_1`, `_2`... (see `names.unique_c_names`)."""
    tensors = [*inputs, *outputs]
    c_names = unique_c_names([t.name for t in tensors], "t", reserved_tensor_c_names(stateful))
    named = [TensorInfo(t.name, c, t.shape, t.dtype, t.quant) for t, c in zip(tensors, c_names)]
    return named[: len(inputs)], named[len(inputs):]


def c_name_problems(inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                    stateful: bool = False) -> list[str]:
    """What is wrong with the tensors' C names (an archive's, or a hand-made module's)."""
    problems = []
    seen: dict[str, str] = {}
    reserved = reserved_tensor_c_names(stateful)
    for tensor in [*inputs, *outputs]:
        c_name = tensor.c_name
        if not is_c_identifier(c_name):
            problems.append(f"C name {c_name!r} of tensor {tensor.name!r} is not a plain C "
                            "identifier (or is a keyword or reserved word)")
        elif c_name.upper() in reserved:
            problems.append(f"C name {c_name!r} of tensor {tensor.name!r} is reserved for "
                            "the module's macros")
        elif c_name.upper() in seen:
            problems.append(f"C names {seen[c_name.upper()]!r} and {c_name!r} give the same "
                            "macros")
        else:
            seen[c_name.upper()] = c_name
    return problems


@dataclass(frozen=True)
class CTensor:
    """One input or output as C sees it."""

    name: str                     # the model's name: C only ever gets comment/literal
    c_name: str                   # struct member; upper-cased in the macros
    macro: str                    # TVMGEN_<MODULE>_<C_NAME>
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    quant: QuantParams | None = None
    offset: int | None = None     # inside the workspace (tir.usmp.use_workspace_io)

    @property
    def size_macro(self) -> str:
        return f"{self.macro}_SIZE"

    @property
    def offset_macro(self) -> str:
        return f"{self.macro}_OFFSET"

    @property
    def comment(self) -> str:
        """The model's name, safe inside a C comment."""
        return c_text(self.name, CText.COMMENT)

    @property
    def has_8_bit_quant(self) -> bool:
        return (self.dtype in _8_BIT_RANGES and self.quant is not None
                and len(self.quant.scale) == 1)

    @property
    def shape_text(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class CState:
    """One persistent variable inside the state buffer (no C name: C sees only the buffer)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    offset: int
    quant: QuantParams | None = None

    @property
    def comment(self) -> str:
        return c_text(self.name, CText.COMMENT)


@dataclass(frozen=True)
class CParam:
    """One parameter of an entry point; `role` is inputs, outputs, workspace or state."""

    c_type: str
    name: str
    role: str


@dataclass(frozen=True)
class CFunction:
    """An entry point of the module: `int32_t symbol(params)`."""

    symbol: str
    params: tuple[CParam, ...]

    @property
    def takes_workspace(self) -> bool:
        return any(p.role == "workspace" for p in self.params)

    def signature(self, separator: str = ", ") -> str:
        params = separator.join(f"{p.c_type} {p.name}" for p in self.params) or "void"
        return f"int32_t {self.symbol}({params})"

    def prototype(self) -> str:
        return self.signature() + ";"

    def call(self, args: Mapping[str, str]) -> str:
        """`symbol(arg, ...)`, the arguments given by role."""
        return f"{self.symbol}({', '.join(args[p.role] for p in self.params)})"


@dataclass(frozen=True)
class ModuleApi:
    """Every name and signature of one module's generated C."""

    name: str
    workspace_mode: str           # "static" | "shared"
    workspace_bytes: int
    workspace_alignment: int
    inputs: tuple[CTensor, ...]
    outputs: tuple[CTensor, ...]
    # inputs and outputs inside the workspace at their `offset` (tir.usmp.use_workspace_io):
    # the run functions take no buffers, map_inputs/map_outputs give their pointers
    workspace_io: bool = False
    # persistent variables in the module's state buffer (TFLite resource variables)
    states: tuple[CState, ...] = ()
    # the user's custom operators the module calls (what each impl.c must define)
    custom_functions: tuple[CFunction, ...] = ()

    # ---------------------------------------------------------------- construction
    @classmethod
    def build(cls, name: str, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
              workspace_bytes: int, workspace_mode: str = "static",
              workspace_alignment: int = DEFAULT_ALIGNMENT,
              io_offsets: Sequence[int] | None = None,
              states: Sequence[StateInfo] = (),
              custom_functions: Sequence[CFunction] = ()) -> "ModuleApi":
        """The API of a module; its names must already be valid (ValueError otherwise).
        `io_offsets`: the workspace offsets of the inputs then the outputs, when they live
        in the workspace. `states`: the persistent variables at their offsets."""
        problems = api_problems(name, inputs, outputs, workspace_bytes, workspace_mode,
                                workspace_alignment, io_offsets, states)
        if problems:
            raise ValueError("; ".join(problems))
        macro = f"TVMGEN_{name.upper()}"
        offsets = list(io_offsets) if io_offsets is not None else [None] * (len(inputs)
                                                                             + len(outputs))

        def tensor(t: TensorInfo, offset: int | None) -> CTensor:
            nbytes = int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
            return CTensor(t.name, t.c_name, f"{macro}_{t.c_name.upper()}",
                           tuple(int(d) for d in t.shape),
                           t.dtype, nbytes, t.quant, offset)

        return cls(name, workspace_mode, int(workspace_bytes), int(workspace_alignment),
                   tuple(tensor(t, o) for t, o in zip(inputs, offsets[:len(inputs)])),
                   tuple(tensor(t, o) for t, o in zip(outputs, offsets[len(inputs):])),
                   io_offsets is not None,
                   tuple(CState(s.name, tuple(int(d) for d in s.shape), s.dtype, s.nbytes,
                                int(s.offset), s.quant) for s in states),
                   tuple(custom_functions))

    @classmethod
    def of(cls, module: CompiledModule) -> "ModuleApi":
        """The API of a compiled module: the one codegen built, else one rebuilt from its
        fields (modules made by hand); ValueError when they cannot describe one."""
        if isinstance(module.c_api, ModuleApi):
            return module.c_api
        options = module.options or {}
        return cls.build(module.name, module.inputs, module.outputs, module.workspace_bytes,
                         str(options.get("workspace", "static")),
                         int(options.get("workspace_byte_alignment", DEFAULT_ALIGNMENT)),
                         states=module.states)

    # ---------------------------------------------------------------- names
    @property
    def prefix(self) -> str:
        """Start of every symbol: tvmgen_<name>."""
        return f"tvmgen_{self.name}"

    @property
    def macro(self) -> str:
        """Start of every macro: TVMGEN_<NAME>."""
        return f"TVMGEN_{self.name.upper()}"

    @property
    def header_file(self) -> str:
        return f"tvmgen_{self.name}.h"

    @property
    def guard(self) -> str:
        return f"{self.macro}_H_"

    @property
    def inputs_struct(self) -> str:
        return f"struct {self.prefix}_inputs"

    @property
    def outputs_struct(self) -> str:
        return f"struct {self.prefix}_outputs"

    @property
    def workspace_size_macro(self) -> str:
        return f"{self.macro}_WORKSPACE_SIZE"

    @property
    def workspace_alignment_macro(self) -> str:
        return f"{self.macro}_WORKSPACE_ALIGNMENT"

    @property
    def workspace_shared_macro(self) -> str:
        return f"{self.macro}_WORKSPACE_SHARED"

    @property
    def workspace_io_macro(self) -> str:
        return f"{self.macro}_WORKSPACE_IO"

    @property
    def map_inputs(self) -> str:
        """`struct <m>_inputs map_inputs(void* workspace)`: the inputs' pointers in it."""
        return f"{self.prefix}_map_inputs"

    @property
    def map_outputs(self) -> str:
        return f"{self.prefix}_map_outputs"

    @property
    def shared(self) -> bool:
        return self.workspace_mode == "shared"

    @property
    def quant_functions(self) -> tuple[str, str]:
        """(real -> 8-bit, 8-bit -> real) helpers the QUANTIZE/DEQUANTIZE macros call."""
        return f"{self.prefix}_real_to_q", f"{self.prefix}_q_to_real"

    @property
    def static_workspace_symbol(self) -> str:
        return f"{self.prefix}_workspace"

    def constant_symbol(self, name: str) -> str:
        """The runner's (file-static) array of one constant; `name` is a C identifier made
        unique by the runner (`conv2d_3_weights`)."""
        return f"{self.prefix}_{name}"

    # ---------------------------------------------------------------- state
    @property
    def stateful(self) -> bool:
        return bool(self.states)

    @property
    def state_bytes(self) -> int:
        return state_size(self.states)

    @property
    def state_size_macro(self) -> str:
        return f"{self.macro}_STATE_SIZE"

    @property
    def state_alignment_macro(self) -> str:
        return f"{self.macro}_STATE_ALIGNMENT"

    @property
    def static_state_symbol(self) -> str:
        return f"{self.prefix}_state"

    def initial_state_symbol(self, index: int) -> str:
        return f"{self.prefix}_state_init_{index}"

    @property
    def reset(self) -> CFunction:
        """Sets the module's own state to its initial value (run() calls it before the first
        run)."""
        return CFunction(f"{self.prefix}_reset", ())

    @property
    def reset_state(self) -> CFunction:
        """Sets a caller's state buffer to the initial value."""
        return CFunction(f"{self.prefix}_reset_state", (CParam("void*", "state", "state"),))

    @property
    def run_with_state(self) -> CFunction:
        """The re-entrant run: the caller's workspace and state buffer."""
        return CFunction(f"{self.prefix}_run_with_state",
                         (*self._io_params(), CParam("void*", "workspace", "workspace"),
                          CParam("void*", "state", "state")))

    @property
    def core_entry(self) -> CFunction:
        """What the runner file defines: run_with_state for a stateful module (the runs
        with the module's own state are in a file of their own), else runner_entry."""
        return self.run_with_state if self.stateful else self.runner_entry

    # ---------------------------------------------------------------- entry points
    def _io_params(self) -> tuple[CParam, ...]:
        if self.workspace_io:  # the inputs and outputs are in the workspace
            return ()
        return (CParam(f"{self.inputs_struct}*", "inputs", "inputs"),
                CParam(f"{self.outputs_struct}*", "outputs", "outputs"))

    @property
    def run(self) -> CFunction:
        """What an application calls: run(in, out) (static) or run(in, out, workspace)."""
        if self.shared:
            return self.runner_entry
        return CFunction(f"{self.prefix}_run", self._io_params())

    @property
    def runner_entry(self) -> CFunction:
        """What the runner file defines: the run with a caller's workspace."""
        symbol = f"{self.prefix}_run" if self.shared else f"{self.prefix}_run_with_workspace"
        return CFunction(symbol, (*self._io_params(), CParam("void*", "workspace", "workspace")))

    @property
    def entry_points(self) -> tuple[CFunction, ...]:
        """Every function the header declares, in order."""
        runs = (self.run,) if self.shared else (self.run, self.runner_entry)
        if self.stateful:
            runs += (self.reset, self.reset_state, self.run_with_state)
        return runs

    # ---------------------------------------------------------------- checks
    def tensor_macros(self, tensor: CTensor) -> list[str]:
        names = [tensor.size_macro]
        if tensor.offset is not None:
            names.append(tensor.offset_macro)
        if tensor.quant is not None and len(tensor.quant.scale) == 1:
            names += [f"{tensor.macro}_SCALE", f"{tensor.macro}_ZERO_POINT"]
            if tensor.has_8_bit_quant:
                names += [f"{tensor.macro}_QUANTIZE", f"{tensor.macro}_DEQUANTIZE"]
        return names

    def macros(self) -> list[str]:
        """Every macro the module header defines."""
        names = [self.guard, self.workspace_size_macro, self.workspace_alignment_macro]
        if self.shared:
            names.append(self.workspace_shared_macro)
        if self.workspace_io:
            names.append(self.workspace_io_macro)
        if self.stateful:
            names += [self.state_size_macro, self.state_alignment_macro]
        for tensor in (*self.inputs, *self.outputs):
            names += self.tensor_macros(tensor)
        return names

    def symbols(self) -> list[str]:
        """Every external symbol and struct tag of the module's API."""
        io = [self.map_inputs, self.map_outputs] if self.workspace_io else []
        arena = [self.static_workspace_symbol] if self.workspace_io and not self.shared else []
        state = ([self.static_state_symbol, *(self.initial_state_symbol(i)
                                              for i in range(len(self.states)))]
                 if self.stateful else [])
        return [*(f.symbol for f in self.entry_points), *self.quant_functions, *io, *arena,
                *state, *(f.symbol for f in self.custom_functions),
                self.inputs_struct, self.outputs_struct]


def _tensor_problems(tensor: TensorInfo) -> list[str]:
    try:
        dtype = np.dtype(tensor.dtype)
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in "biuf" or dtype.name != tensor.dtype:
        return [f"tensor {tensor.name!r} has an unknown dtype {tensor.dtype!r}"]
    itemsize = dtype.itemsize
    shape = tensor.shape
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
               and 0 <= d < 2 ** 31 for d in shape):
        return [f"tensor {tensor.name!r} has a bad shape {list(shape)!r}"]
    if int(np.prod(shape, dtype=object)) * itemsize >= 2 ** 31:
        return [f"tensor {tensor.name!r} has 2 GiB or more"]
    return []


def _io_offset_problems(tensors: Sequence[TensorInfo], offsets: object,
                        workspace_bytes: object) -> list[str]:
    if not isinstance(offsets, (list, tuple)) or len(offsets) != len(tensors):
        return [f"workspace offsets {offsets!r:.60} are not one per input and output"]
    limit = workspace_bytes if isinstance(workspace_bytes, int) else 0
    problems = []
    for tensor, offset in zip(tensors, offsets):
        nbytes = (int(np.prod(tensor.shape, dtype=object)) * np.dtype(tensor.dtype).itemsize
                  if not _tensor_problems(tensor) else 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 \
                or offset + nbytes > limit:
            problems.append(f"tensor {tensor.name!r} at workspace offset {offset!r:.20} does "
                            "not lie inside the workspace")
    return problems


def _state_problems(states: Sequence[StateInfo], workspace_io: bool) -> list[str]:
    problems = []
    if states and workspace_io:
        problems.append("a stateful module cannot keep its inputs and outputs in the workspace")
    end = 0
    for state in states:
        bad = _tensor_problems(TensorInfo(state.name, "s", state.shape, state.dtype))
        if bad:
            problems += bad
            continue
        offset = state.offset
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < end \
                or offset % STATE_ALIGNMENT or offset + state.nbytes >= 2 ** 31:
            problems.append(f"state {state.name!r} at offset {offset!r:.20} is not after the "
                            f"previous one on a {STATE_ALIGNMENT}-byte boundary")
            continue
        end = offset + state.nbytes
    return problems


def api_problems(name: str, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                 workspace_bytes: object, workspace_mode: object,
                 workspace_alignment: object, io_offsets: object = None,
                 states: Sequence[StateInfo] = ()) -> list[str]:
    """Everything that keeps these values from being a module's C API."""
    problems = _state_problems(states, io_offsets is not None)
    if io_offsets is not None:
        problems += _io_offset_problems([*inputs, *outputs], io_offsets, workspace_bytes)
    bad_name = check_module_name(name) if isinstance(name, str) else None
    if not isinstance(name, str) or bad_name is not None or not name.isascii():
        problems.append(bad_name.message if bad_name else f"module name {name!r} is not a C "
                        "identifier")
    problems += c_name_problems(inputs, outputs, bool(states))
    for tensor in (*inputs, *outputs):
        problems += _tensor_problems(tensor)
    if isinstance(workspace_bytes, bool) or not isinstance(workspace_bytes, int) \
            or not 0 <= workspace_bytes < 2 ** 31:
        problems.append(f"workspace size {workspace_bytes!r} is not a byte count below 2 GiB")
    if workspace_mode not in WORKSPACE_MODES:
        problems.append(f"workspace mode {workspace_mode!r} is not one of "
                        f"{', '.join(WORKSPACE_MODES)}")
    if isinstance(workspace_alignment, bool) or not isinstance(workspace_alignment, int) \
            or not 0 < workspace_alignment <= MAX_ALIGNMENT \
            or workspace_alignment & (workspace_alignment - 1):
        problems.append(f"workspace alignment {workspace_alignment!r} is not a power of two "
                        f"up to {MAX_ALIGNMENT}")
    return problems
