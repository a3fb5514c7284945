"""Walk the statically planned Relax `main` into a flat program the C runner can execute.

After `lower_relax`, `main` is a list of storage allocations, tensors placed in them,
destination-passing calls of operators, pure reshapes (aliases) and fresh allocations for the
returned tensors. Each value gets a Location (every tensor its own Buffer); the program is a
list of Call/Copy steps.
"""
from __future__ import annotations

import hashlib
import re

from dataclasses import dataclass, field
from typing import Union

import numpy as np
from tvm import ir, relax

from ..errors import UnsupportedError
from ..names import RAW_NAMES_ATTR


@dataclass(frozen=True)
class Input:
    index: int


@dataclass(frozen=True)
class Output:
    index: int


@dataclass(frozen=True)
class Constant:
    index: int


@dataclass(frozen=True)
class Buffer:
    """An intermediate tensor; the memory planner gives it an offset in the workspace (or it
    is a returned tensor written straight into the caller's output buffer)."""

    index: int


Location = Union[Input, Output, Constant, Buffer]


@dataclass(frozen=True)
class Call:
    relax_name: str
    args: tuple[Location, ...]


@dataclass(frozen=True)
class Copy:
    dst: Location
    src: Location
    nbytes: int


@dataclass(frozen=True)
class BranchIf:
    """`if (*cond) {`: the steps up to the matching BranchElse run when the condition (a
    scalar tensor) is non-zero; those from it to the matching BranchEnd otherwise."""

    cond: Location
    dtype: str


@dataclass(frozen=True)
class BranchElse:
    pass


@dataclass(frozen=True)
class BranchEnd:
    pass


@dataclass(frozen=True)
class LoopBegin:
    """`while (1) {`: the steps up to the matching LoopEnd repeat until a LoopBreak leaves."""


@dataclass(frozen=True)
class LoopBreak:
    """`if (*cond == 0) break;` (`exit_when` False) or `if (*cond != 0) break;` (True)."""

    cond: Location
    dtype: str
    exit_when: bool = False


@dataclass(frozen=True)
class LoopEnd:
    pass


Step = Union[Call, Copy, BranchIf, BranchElse, BranchEnd, LoopBegin, LoopBreak, LoopEnd]


def step_locations(step: object) -> tuple[Location, ...]:
    """The places a step reads or writes."""
    if isinstance(step, Call):
        return step.args
    if isinstance(step, Copy):
        return (step.dst, step.src)
    if isinstance(step, (BranchIf, LoopBreak)):
        return (step.cond,)
    return ()


def loop_ranges(program: "Program") -> list[tuple[int, int]]:
    """(LoopBegin index, LoopEnd index) of every loop, innermost first."""
    open_loops, ranges = [], []
    for index, step in enumerate(program.steps):
        if isinstance(step, LoopBegin):
            open_loops.append(index)
        elif isinstance(step, LoopEnd):
            ranges.append((open_loops.pop(), index))
    return ranges


@dataclass
class Program:
    """The static call sequence of one module."""

    input_types: list[tuple[tuple[int, ...], str]]      # (shape, dtype) of main's params
    output_types: list[tuple[tuple[int, ...], str]]
    buffers: list[int] = field(default_factory=list)    # bytes of each intermediate tensor
    buffer_outputs: dict[int, int] = field(default_factory=dict)  # buffer index -> output index
    constants: list[np.ndarray] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    # the model's name for what a step computes (the variable the frontend bound its result
    # to: a TFLite tensor, an ONNX node), raw text: it reaches C only through names.c_text
    step_names: dict[int, str] = field(default_factory=dict)


def nbytes(shape: tuple[int, ...], dtype: str) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _static_shape(ty: object) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in ty.shape.values)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnsupportedError(f"tensor with a symbolic shape ({ty})",
                               hint="give static shapes with --input-shapes") from exc


def _int(value: object) -> int:
    return int(value.value) if hasattr(value, "value") else int(value)  # type: ignore[attr-defined]


# names Relax's passes and TVM's frontends make up, which say nothing about the model
GENERATED_NAME = re.compile(r"^(lv|gv|alloc|storage|param|p|_|)_?\d*$")


class _Walker:
    """Assigns a Location to every Relax variable of `main`, in order."""

    def __init__(self, program: Program, module: ir.IRModule,
                 model_names: frozenset[str] = frozenset()):
        self.program, self.module = program, module
        self.model_names = model_names  # identifiers standing for a model's text ("1000")
        self.where: dict[object, object] = {}
        self.const_index: dict[object, int] = {}
        self.by_content: dict[tuple[str, tuple[int, ...], bytes], int] = {}
        self.written_by: dict[object, int] = {}  # buffer -> the step writing it

    def resolve(self, expr: object) -> object:
        if isinstance(expr, ir.Var):
            return self.where[expr]
        if isinstance(expr, ir.GenericConst):
            return self._constant(expr)
        if isinstance(expr, ir.Tuple):
            return tuple(self.resolve(f) for f in expr.fields)
        raise UnsupportedError(f"unsupported value in main: {type(expr).__name__}")

    def _constant(self, const: object) -> Constant:
        for known, index in self.const_index.items():
            if known.same_as(const):  # type: ignore[attr-defined]
                return Constant(index)
        value = const.value.numpy()  # type: ignore[attr-defined]
        # equal arrays are stored once: a weight several operators share (a TFLite tensor
        # read by 9 convolutions) becomes one constant per use after the frontend
        key = (value.dtype.str, value.shape, hashlib.sha256(value.tobytes()).digest())
        index = self.by_content.get(key)
        if index is None:
            index = len(self.program.constants)
            self.program.constants.append(value)
            self.by_content[key] = index
        self.const_index[const] = index
        return Constant(index)

    def bind(self, var: object, value: object) -> None:
        if isinstance(value, (ir.Var, ir.GenericConst)):
            self.where[var] = self.resolve(value)
            self._name_step(var)
        elif isinstance(value, ir.Tuple):
            self.where[var] = tuple(self.resolve(f) for f in value.fields)
        elif isinstance(value, ir.TupleGetItem):
            self.where[var] = self.resolve(value.tuple_value)[value.index]  # type: ignore[index]
        elif isinstance(value, ir.Call):
            self._call(var, value)
        elif isinstance(value, relax.If):
            self._branch(var, value)
        else:
            raise UnsupportedError(f"unsupported binding in main: {type(value).__name__}")

    def _name_step(self, var: object) -> None:
        """The first model-given name bound to a step's output names the step."""
        step = self.written_by.get(self.where.get(var))
        name = str(getattr(var, "name", ""))
        if step is not None and step not in self.program.step_names \
                and (name in self.model_names or not GENERATED_NAME.match(name)):
            self.program.step_names[step] = name

    def _new_buffer(self, var: object, shape: object, dtype: object) -> None:
        dims = tuple(_int(d) for d in shape.values)  # type: ignore[attr-defined]
        self.where[var] = Buffer(len(self.program.buffers))
        self.program.buffers.append(nbytes(dims, str(dtype.value)))  # type: ignore[attr-defined]

    def walk(self, seq: object) -> object:
        """The bindings of a SeqExpr in order; the location of its result."""
        for block in seq.blocks:  # type: ignore[attr-defined]
            for binding in block.bindings:
                self.bind(binding.var, binding.value)
        return self.resolve(seq.body)  # type: ignore[attr-defined]

    def _branch(self, var: object, value: object) -> None:
        """An If: `BranchIf`, the then steps, `BranchElse`, the else steps, `BranchEnd`. Each
        result tensor has one place both branches write: the buffer the then branch
        computes it in, the else branch's own buffer renamed to it (else a copy)."""
        steps, buffers = self.program.steps, self.program.buffers
        cond = self.resolve(value.cond)  # type: ignore[attr-defined]
        if isinstance(cond, Constant):  # known at compile time: only its branch
            chosen = bool(np.asarray(self.program.constants[cond.index]).reshape(-1)[0])
            self.where[var] = self.walk(value.true_branch if chosen  # type: ignore[attr-defined]
                                        else value.false_branch)  # type: ignore[attr-defined]
            return
        steps.append(BranchIf(cond, str(value.cond.ty.dtype)))  # type: ignore[attr-defined]
        fresh = len(buffers)
        then_result = self.walk(value.true_branch)  # type: ignore[attr-defined]
        fields = list(then_result) if isinstance(then_result, tuple) else [then_result]
        sizes = _result_sizes(value)
        targets: list[object] = []
        for loc, size in zip(fields, sizes):
            if isinstance(loc, Buffer) and loc.index >= fresh and loc not in targets:
                targets.append(loc)
            else:  # an input, a constant, a value from before the If: its own copy
                targets.append(Buffer(len(buffers)))
                buffers.append(size)
                steps.append(Copy(targets[-1], loc, size))  # type: ignore[arg-type]
        steps.append(BranchElse())
        start, fresh = len(steps), len(buffers)
        else_result = self.walk(value.false_branch)  # type: ignore[attr-defined]
        renames: dict[object, object] = {}
        for loc, target, size in zip(
                list(else_result) if isinstance(else_result, tuple) else [else_result],
                targets, sizes):
            if loc == target:
                continue
            if isinstance(loc, Buffer) and loc.index >= fresh and loc not in renames:
                renames[loc] = target
            else:
                steps.append(Copy(target, loc, size))  # type: ignore[arg-type]
        steps[start:] = [_renamed(step, renames) for step in steps[start:]]
        steps.append(BranchEnd())
        self.where[var] = tuple(targets) if isinstance(then_result, tuple) else targets[0]

    def _loop(self, var: object, gvar: object, callee: object, args: tuple) -> None:
        """A tail-recursive function (TVM's form of a TFLite WHILE: the condition, then an If
        whose one branch runs the body and calls the function again, the other returns):
        the loop-carried values get buffers of their own, copied in before the loop and
        overwritten with the body's results at the end of each iteration; a value the body
        passes on unchanged (the input a recurrence reads each step) stays where it is."""
        steps, buffers = self.program.steps, self.program.buffers
        carried, origins, copies = [], [], []
        for param, arg in zip(callee.params, args):  # type: ignore[attr-defined]
            size = nbytes(_static_shape(param.ty), str(param.ty.dtype))
            carried.append(Buffer(len(buffers)))
            buffers.append(size)
            origins.append(self.resolve(arg))
            copies.append(len(steps))
            steps.append(Copy(carried[-1], origins[-1], size))  # type: ignore[arg-type]
            self.where[param] = carried[-1]
        begin = len(steps)
        steps.append(LoopBegin())
        body = callee.body  # type: ignore[attr-defined]
        branch = None
        for block in body.blocks:
            for binding in block.bindings:
                if branch is None and isinstance(binding.value, relax.If) \
                        and _calls_function(binding.value, gvar):
                    branch = binding
                elif branch is None:
                    self.bind(binding.var, binding.value)
                else:
                    raise UnsupportedError("a loop function computes after its recursion")
        if branch is None:
            raise UnsupportedError("a recursive function that is not a loop")
        test = branch.value
        again_on_true = _calls_function(test.true_branch, gvar)
        steps.append(LoopBreak(self.resolve(test.cond), str(test.cond.ty.dtype),
                               exit_when=not again_on_true))
        again = test.true_branch if again_on_true else test.false_branch
        invariant = self._iterate(again, gvar, carried)
        steps.append(LoopEnd())
        renames = {carried[i]: origins[i] for i in invariant}
        for i in invariant:  # no copy (a copy onto itself, which the runner skips)
            steps[copies[i]] = Copy(origins[i], origins[i], buffers[carried[i].index])
            self.where[callee.params[i]] = origins[i]  # type: ignore[attr-defined]
        steps[begin:] = [_renamed(step, renames) for step in steps[begin:]]
        self.where[branch.var] = self.walk(test.false_branch if again_on_true
                                           else test.true_branch)
        self.where[var] = self.resolve(body.body)

    def _iterate(self, again: object, gvar: object, carried: list) -> list[int]:
        """The body's steps up to the recursive call, then its arguments copied over the
        loop-carried buffers (through a temporary where one is another's old value).
        Returns the loop values the body passes on unchanged."""
        steps, buffers = self.program.steps, self.program.buffers
        for block in again.blocks:  # type: ignore[attr-defined]
            for binding in block.bindings:
                value = binding.value
                if not (isinstance(value, ir.Call) and value.op.same_as(gvar)):
                    self.bind(binding.var, value)
                    continue
                nexts = [self.resolve(a) for a in value.args]
                for i, loc in enumerate(nexts):
                    if loc in carried and loc != carried[i]:
                        temp = Buffer(len(buffers))
                        buffers.append(buffers[carried[i].index])
                        steps.append(Copy(temp, loc, buffers[temp.index]))
                        nexts[i] = temp
                for loc, place in zip(nexts, carried):
                    if isinstance(loc, Buffer) and buffers[loc.index] != buffers[place.index]:
                        raise UnsupportedError("control flow: a loop value changes size in an "
                                               "iteration (only loops whose values keep "
                                               "their shapes compile)")
                    if loc != place:
                        steps.append(Copy(place, loc, buffers[place.index]))
                return [i for i, (loc, place) in enumerate(zip(nexts, carried)) if loc == place]
        raise UnsupportedError("a loop whose body does not call it again")

    def _call(self, var: object, call: ir.Call) -> None:
        op = call.op
        if isinstance(op, ir.GlobalVar) and isinstance(self.module[op], relax.Function) \
                and _calls_function(self.module[op].body, op):
            self._loop(var, op, self.module[op], call.args)
            return
        if isinstance(op, ir.GlobalVar) and isinstance(self.module[op], relax.Function):
            # an If branch (control.py, TVM's TFLite IF): its steps where it is called
            callee = self.module[op]
            for param, arg in zip(callee.params, call.args):
                self.where[param] = self.resolve(arg)
            self.where[var] = self.walk(callee.body)
            return
        if isinstance(op, ir.GlobalVar):
            args = tuple(self.resolve(a) for a in call.args)
            if args and isinstance(args[-1], Buffer):
                self.written_by[args[-1]] = len(self.program.steps)
            self.program.steps.append(Call(op.name_hint, args))
            self._name_step(var)
            return
        name = getattr(op, "name", str(op))
        if name == "relax.memory.alloc_storage":
            # Relax's own storage sharing is ignored: every tensor gets its own buffer with an
            # exact lifetime, and plan_memory() places them all in one arena
            self.where[var] = None
        elif name == "relax.memory.alloc_tensor":
            self._new_buffer(var, call.args[2], call.args[3])
        elif name == "relax.builtin.alloc_tensor":
            self._new_buffer(var, call.args[0], call.args[1])
        elif name in ("relax.reshape", "relax.memory.view"):
            self.where[var] = self.resolve(call.args[0])
        elif name.startswith("relax.memory.kill") or name == "relax.null_value":
            return
        else:
            raise UnsupportedError(f"operation '{name}' is left after lowering "
                                   "(an extern or packed call)")


def _calls_function(expr: object, gvar: object) -> bool:
    """`expr` calls the function `gvar` somewhere."""
    found = []

    def visit(node: object) -> None:
        if isinstance(node, ir.Call) and isinstance(node.op, ir.GlobalVar) \
                and node.op.same_as(gvar):
            found.append(node)

    relax.analysis.post_order_visit(expr, visit)
    return bool(found)


def _result_sizes(value: object) -> list[int]:
    """Bytes of each tensor an If gives."""
    ty = value.ty  # type: ignore[attr-defined]
    fields = list(ty.fields) if hasattr(ty, "fields") else [ty]
    try:
        return [nbytes(_static_shape(f), str(f.dtype)) for f in fields]
    except TypeError:  # Relax merged two element types into none
        raise UnsupportedError("control flow: the branches of an If give a result different "
                               "element types") from None


def _renamed(step: object, renames: dict[object, object]) -> object:
    if not renames:
        return step
    if isinstance(step, Call):
        return Call(step.relax_name, tuple(renames.get(a, a) for a in step.args))
    if isinstance(step, Copy):
        return Copy(renames.get(step.dst, step.dst), renames.get(step.src, step.src), step.nbytes)
    if isinstance(step, BranchIf):
        return BranchIf(renames.get(step.cond, step.cond), step.dtype)
    if isinstance(step, LoopBreak):
        return LoopBreak(renames.get(step.cond, step.cond), step.dtype, step.exit_when)
    return step


def _raw_names(main: object) -> dict[str, str]:
    attrs = getattr(main, "attrs", None)
    if not attrs or RAW_NAMES_ATTR not in attrs:
        return {}
    return {str(k): str(v) for k, v in attrs[RAW_NAMES_ATTR].items()}


def _name_fused_steps(program: Program, main: object, model_names: frozenset[str]) -> None:
    """Names the frontend gave the layers fusion renamed (`relax_passes.fused_layer_names`),
    matched to the steps callee by callee (calls that became aliases, reshapes, are skipped);
    none at all if they do not match."""
    attrs = getattr(main, "attrs", None)
    flat = [str(x) for x in attrs["tvmc.layer_names"]] if attrs and "tvmc.layer_names" in attrs \
        else []
    pairs = list(zip(flat[0::2], flat[1::2]))
    found: dict[int, str] = {}
    position = 0
    for step_index, step in enumerate(program.steps):
        if not isinstance(step, Call):
            continue
        while position < len(pairs) and pairs[position][0] != step.relax_name:
            position += 1
        if position == len(pairs):
            return
        if pairs[position][1] in model_names or not GENERATED_NAME.match(pairs[position][1]):
            found[step_index] = pairs[position][1]
        position += 1
    for step_index, name in found.items():
        program.step_names.setdefault(step_index, name)


def build_program(lowered: ir.IRModule) -> Program:
    """The static program of `lowered["main"]`."""
    main = lowered["main"]
    program = Program(
        input_types=[(_static_shape(p.ty), str(p.ty.dtype)) for p in main.params],
        output_types=[])
    raw = _raw_names(main)
    walker = _Walker(program, lowered, frozenset(raw))
    for i, param in enumerate(main.params):
        walker.where[param] = Input(i)
    located = walker.walk(main.body)
    _name_fused_steps(program, main, frozenset(raw))
    program.step_names = {step: raw.get(name, name) for step, name in program.step_names.items()}
    result = main.body.body
    infos = list(result.ty.fields) if isinstance(located, tuple) else [result.ty]
    locations = list(located) if isinstance(located, tuple) else [located]
    for i, (loc, info) in enumerate(zip(locations, infos)):
        shape, dtype = _static_shape(info), str(info.dtype)
        program.output_types.append((shape, dtype))
        if isinstance(loc, Buffer) and loc.index not in program.buffer_outputs:
            program.buffer_outputs[loc.index] = i  # the operator writes into the caller's buffer
        else:  # the output aliases an input, a constant, a planned tensor or another output
            program.steps.append(Copy(Output(i), loc, nbytes(shape, dtype)))  # type: ignore[arg-type]
    return program


def called_operators_only(lowered: ir.IRModule, program: Program) -> ir.IRModule:
    """`lowered` without the operator functions no step calls (those of an If branch a
    constant condition never takes): no dead code in the operators' C."""
    from tvm import tirx

    called = {step.relax_name for step in program.steps if isinstance(step, Call)}
    dead = [g for g, f in lowered.functions.items()
            if isinstance(f, tirx.PrimFunc) and g.name_hint not in called]
    if not dead:
        return lowered
    return ir.IRModule({g: f for g, f in lowered.functions.items() if g not in dead},
                       attrs=lowered.attrs)
