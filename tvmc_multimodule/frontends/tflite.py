"""TFLite flatbuffer -> Relax IRModule, with every unsupported feature named up front."""
from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..model import ImportedModel, QuantParams, StateInfo, TensorInfo
from ..names import unique_c_names, with_raw_names
from .checks import MAX_TENSOR_BYTES, check_imported, raise_shape_problems, tensor_bytes
from .custom_ops import counted, unimplemented_custom_ops

if TYPE_CHECKING:
    from ..kernels import KernelLibrary

log = logging.getLogger(__name__)

HYBRID_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_STATEFUL = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}
# IF and WHILE compile (the runner branches and loops in C, see control_subgraphs)
_CONTROL_FLOW = {"CALL", "STABLEHLO_WHILE", "STABLEHLO_CASE"}
_BRANCHING = {"IF": ("IfOptions", ("ThenSubgraphIndex", "ElseSubgraphIndex")),
              "WHILE": ("WhileOptions", ("CondSubgraphIndex", "BodySubgraphIndex"))}
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
               7: "int16", 9: "int8", 10: "float64", 15: "uint32", 16: "uint16"}
_UNSUPPORTED_TYPES = {5: "string", 8: "complex64", 11: "complex128",
                      14: "resource", 16: "uint16", 17: "int4", 18: "bfloat16"}


def _load(path: str) -> Any:
    import tflite

    with open(path, "rb") as fh:
        buf = fh.read()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError("not a TFLite flatbuffer (no 'TFL3' identifier)", path=path,
                         hint="re-export or re-download the model")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        _touch_everything(model)
    except ModelError:
        raise
    except Exception as exc:  # a truncated buffer fails inside flatbuffers' accessors
        raise ModelError(f"corrupt or truncated TFLite file ({type(exc).__name__})", path=path,
                         hint="re-download or re-export the model") from None
    return model


def _touch_everything(model: Any) -> None:
    """Read every table the frontend will read, so corruption shows here and not deep
    inside TVM. Offsets that point outside the buffer raise in flatbuffers."""
    if model.SubgraphsLength() < 1:
        raise ModelError("TFLite file holds no subgraph")
    for op_code in range(model.OperatorCodesLength()):
        model.OperatorCodes(op_code).BuiltinCode()
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            shape = _shape(tensor)
            buffer_index = tensor.Buffer()
            if buffer_index >= model.BuffersLength():
                raise ModelError(f"tensor {t} points at buffer {buffer_index}, "
                                 f"beyond the {model.BuffersLength()} buffers")
            data_bytes = model.Buffers(buffer_index).DataLength()
            # a sparse constant stores only its non-zero values: densify checks them
            _check_tensor(t, tensor, shape, 0 if tensor.Sparsity() is not None else data_bytes)
        if s == 0 and (graph.InputsLength() == 0 or graph.OutputsLength() == 0):
            raise ModelError("the main subgraph declares no inputs or no outputs")
        for what, indices in (("input", graph.InputsAsNumpy()), ("output", graph.OutputsAsNumpy())):
            for t in _indices(indices):
                if not 0 <= t < graph.TensorsLength():
                    raise ModelError(f"subgraph {s} {what} is tensor {t}, beyond the table")
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if op.OpcodeIndex() >= model.OperatorCodesLength():
                raise ModelError(f"operator {o} uses opcode {op.OpcodeIndex()}, beyond the table")
            for t in _indices(op.InputsAsNumpy()) + _indices(op.OutputsAsNumpy()):
                if t >= graph.TensorsLength() or t < -1:  # -1: an omitted optional input
                    raise ModelError(f"operator {o} uses tensor {t}, beyond the table")
        _check_dataflow(model, graph, s)


def _check_dataflow(model: Any, graph: Any, s: int) -> None:
    """Every operator input is a subgraph input, a constant, a variable or an earlier
    operator's output (a tensor with no value at all means the file is corrupt). A constant
    with no elements (a RESHAPE to a scalar takes the shape []: a tensor of shape [0]) needs
    no bytes, so an empty buffer is its whole value."""
    ready = set(_indices(graph.InputsAsNumpy()))
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        if (tensor.IsVariable() or model.Buffers(tensor.Buffer()).DataLength()
                or 0 in _shape(tensor)):
            ready.add(t)
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        for t in _indices(op.InputsAsNumpy()):
            if t >= 0 and t not in ready:
                raise ModelError(f"corrupt file: operator {o} of subgraph {s} reads tensor {t}, "
                                 "which has no data and which no earlier operator writes")
        ready.update(_indices(op.OutputsAsNumpy()))


def tensor_name(graph: Any, index: int) -> str:
    """A tensor's name; the schema makes it optional, and TVM's frontend then calls it
    `tvmgen_tensor_<index>`, which is what its input shapes are keyed by."""
    raw = graph.Tensors(index).Name()
    return raw.decode(errors="replace") if raw is not None else f"tvmgen_tensor_{index}"


def _indices(vector: Any) -> list[int]:
    """A flatbuffers int vector as a list (its accessor returns 0 when the vector is absent)."""
    return [int(i) for i in vector] if isinstance(vector, np.ndarray) else []


def _shape(tensor: Any) -> list[int]:
    return _indices(tensor.ShapeAsNumpy())


def _check_tensor(index: int, tensor: Any, shape: list[int], data_bytes: int) -> None:
    """A shape no model has (negative, or too large to index), or constant data whose
    size disagrees with the shape: the file is corrupt."""
    dtype = _TYPE_NAMES.get(tensor.Type())
    dims = ",".join(map(str, shape))
    if any(d < 0 for d in shape):
        raise ModelError(f"corrupt file: tensor {index} has a negative dimension: [{dims}]")
    if tensor_bytes(shape, dtype or "uint8") > MAX_TENSOR_BYTES:
        raise ModelError(f"corrupt file: tensor {index} has the shape [{dims}], more than "
                         f"{MAX_TENSOR_BYTES} bytes")
    if data_bytes and dtype is not None and data_bytes != tensor_bytes(shape, dtype):
        raise ModelError(f"corrupt file: tensor {index} holds {data_bytes} bytes of data for "
                         f"the shape [{dims}] of {dtype}")


def _op_name(model: Any, op: Any) -> tuple[str, str | None]:
    from tflite.BuiltinOperator import BuiltinOperator

    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    name = names.get(builtin, f"BUILTIN_{builtin}")
    custom = code.CustomCode().decode(errors="replace") if name == "CUSTOM" else None
    return name, custom


def _supported_ops(model: Any) -> set[str]:
    from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

    return set(OperatorConverter(model, model.Subgraphs(0), None, None).convert_map)


def _init_subgraphs(model: Any) -> set[int]:
    """Subgraphs the main graph's CALL_ONCE operators run (resource-variable initialisation)."""
    from tflite.CallOnceOptions import CallOnceOptions

    graph, found = model.Subgraphs(0), set()
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        if _op_name(model, op)[0] == "CALL_ONCE" and op.BuiltinOptions() is not None:
            options = CallOnceOptions()
            options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            found.add(int(options.InitSubgraphIndex()))
    return found


def _control_ops(model: Any) -> list[tuple[Any, int, str, list[int]]]:
    """(graph, operator index, IF/WHILE, its subgraph indices) of every IF and WHILE the main
    graph runs, those in its branches, conditions and bodies included."""
    import importlib

    found: list[tuple[Any, int, str, list[int]]] = []
    seen: set[int] = {0}
    pending = [0]
    while pending:
        graph = model.Subgraphs(pending.pop())
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            name = _op_name(model, op)[0]
            if name not in _BRANCHING or op.BuiltinOptions() is None:
                continue
            table, fields = _BRANCHING[name]
            options = getattr(importlib.import_module(f"tflite.{table}"), table)()
            options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            indices = [int(getattr(options, field)()) for field in fields]
            found.append((graph, o, name, indices))
            for index in indices:
                if 0 < index < model.SubgraphsLength() and index not in seen:
                    seen.add(index)
                    pending.append(index)
    return found


def control_subgraphs(model: Any) -> list[int]:
    """The subgraphs the main graph's IF and WHILE operators run (their branches, conditions
    and bodies, and the subgraphs those run in turn)."""
    return sorted({i for *_, indices in _control_ops(model) for i in indices
                   if 0 < i < model.SubgraphsLength()})


def _io_shapes(graph: Any, which: str) -> list[list[int]]:
    return [_shape(graph.Tensors(t)) for t in _indices(getattr(graph, which + "AsNumpy")())]


def control_flow_problems(model: Any) -> list[str]:
    """What keeps an IF or WHILE from compiling with static shapes: a condition that is not
    one bool, subgraphs whose inputs or outputs disagree with the operator's, loop values
    whose shape changes from one iteration to the next (the runner's buffers are static)."""
    problems = []
    for graph, o, name, indices in _control_ops(model):
        op = graph.Operators(o)
        label = f"{name} operator {o} ('{tensor_name(graph, int(op.Outputs(0)))}')" \
            if op.OutputsLength() else f"{name} operator {o}"
        ins = [_shape(graph.Tensors(t)) for t in _indices(op.InputsAsNumpy())]
        outs = [_shape(graph.Tensors(t)) for t in _indices(op.OutputsAsNumpy())]
        if not all(0 < i < model.SubgraphsLength() for i in indices):
            problems.append(f"{label} names a subgraph the file does not have")
            continue
        first, second = (model.Subgraphs(i) for i in indices)
        if name == "IF":
            cond = graph.Tensors(int(op.Inputs(0)))
            if cond.Type() != 6 or _shape(cond):
                problems.append(f"{label} branches on a {_TYPE_NAMES.get(cond.Type(), '?')}"
                                f"{_shape(cond)}, not on one bool")
            for branch in (first, second):
                if _io_shapes(branch, "Inputs") != ins[1:] or _io_shapes(branch, "Outputs") != outs:
                    problems.append(f"{label}: a branch's inputs or outputs differ in shape "
                                    "from the operator's")
                    break
            continue
        cond_out = [first.Tensors(t) for t in _indices(first.OutputsAsNumpy())]
        if len(cond_out) != 1 or cond_out[0].Type() != 6 or _shape(cond_out[0]):
            problems.append(f"{label}: its condition subgraph does not give one bool")
        body_in, body_out = _io_shapes(second, "Inputs"), _io_shapes(second, "Outputs")
        for k, (before, after) in enumerate(zip(body_in, body_out)):
            if before != after:
                problems.append(f"{label}: loop value {k} changes shape from {before} to {after} "
                                "in one iteration (only loops whose values keep their shapes "
                                "compile)")
        if body_in != ins or outs != ins or _io_shapes(first, "Inputs") != ins:
            if all(b == a for b, a in zip(body_in, body_out)):
                problems.append(f"{label}: its condition or body subgraph's values differ in "
                                "shape from the operator's")
    return problems


def stateful_operators(model: Any) -> Counter[str]:
    """The resource-variable operators of the main graph, counted."""
    graph = model.Subgraphs(0)
    names = (_op_name(model, graph.Operators(o))[0] for o in range(graph.OperatorsLength()))
    return Counter(n for n in names if n in _STATEFUL)


def unsupported_features(model: Any, allow_state: bool = False,
                         custom_ops: Any = ()) -> list[str]:
    """Every reason the Relax TFLite frontend + our C path cannot take this model.
    `allow_state`: resource variables (and their CALL_ONCE initialisation subgraphs) are
    left to the int8 importer, which checks them itself. `custom_ops`: the names of the custom
    operators the user implements (the built-in ones are known)."""
    from .custom_ops import BUILTIN

    supported = _supported_ops(model)
    graph = model.Subgraphs(0)
    unknown: Counter[str] = Counter()
    custom: Counter[str] = Counter()
    control: Counter[str] = Counter()
    stateful: Counter[str] = Counter()
    dynamic_range: Counter[str] = Counter()
    consumers = _consumers(model, graph)
    branches = control_subgraphs(model)
    for owner, op in [(g, g.Operators(o)) for g in [graph, *map(model.Subgraphs, branches)]
                      for o in range(g.OperatorsLength())]:
        name, custom_code = _op_name(model, op)
        if custom_code is not None:
            if custom_code not in custom_ops and custom_code not in BUILTIN:
                custom[custom_code] += 1
        elif name in _STATEFUL:
            if not allow_state:
                stateful[name] += 1
        elif name in _CONTROL_FLOW:
            control[name] += 1
        elif name not in supported:
            unknown[name] += 1
        elif _is_dynamic_range(owner, op) and (name not in HYBRID_OPS or owner is not graph):
            # (LiteRT's hybrid kernels are computed for the main graph's operators only)
            dynamic_range[name] += 1
    problems = []
    if unknown:
        problems.append("unsupported operators: " + counted(unknown))
    if custom:
        problems.append(unimplemented_custom_ops(custom))
    extra = (model.SubgraphsLength() - 1 - len(branches)
             - (len(_init_subgraphs(model) - set(branches)) if allow_state else 0))
    if control or extra > 0:
        what = counted(control) if control else f"{model.SubgraphsLength()} subgraphs"
        problems.append("control flow is not supported: " + what)
    if stateful:
        problems.append("stateful variables are not supported: " + counted(stateful))
    if dynamic_range:
        problems.append("dynamic-range quantisation (float activations, int8 weights) is "
                        "supported for " + ", ".join(HYBRID_OPS) + " only, not: "
                        + counted(dynamic_range)
                        + "; convert the model with full-integer quantisation")
    bad_types = [t for t in _unsupported_tensor_types(model, graph, consumers)
                 if not (allow_state and t == "resource")]
    if bad_types:
        problems.append("unsupported tensor types: " + ", ".join(bad_types))
    sparse = [t for t in range(graph.TensorsLength()) if graph.Tensors(t).Sparsity() is not None
              and not _is_constant(model, graph.Tensors(t))]
    if sparse:
        problems.append(f"sparse tensors that are not constants (x{len(sparse)})")
    return problems


def _consumers(model: Any, graph: Any) -> dict[int, list[str]]:
    """Tensor index -> names of the operators reading it."""
    readers: dict[int, list[str]] = {}
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        name = _op_name(model, op)[0]
        for t in _indices(op.InputsAsNumpy()):
            readers.setdefault(t, []).append(name)
    return readers


def _is_constant(model: Any, tensor: Any) -> bool:
    return model.Buffers(tensor.Buffer()).DataLength() > 0


def _producers(model: Any, graph: Any) -> dict[int, str]:
    made: dict[int, str] = {}
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        for t in _indices(op.OutputsAsNumpy()):
            made[t] = _op_name(model, op)[0]
    return made


def _unsupported_tensor_types(model: Any, graph: Any, consumers: dict[int, list[str]]
                              ) -> list[str]:
    """Tensor types without C support. float16 is fine as weights (a constant, or a
    DENSIFY of one) that only DEQUANTIZE/DENSIFY read: converted to float32 at compile time."""
    found = set()
    producers = _producers(model, graph)
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        kind = tensor.Type()
        if kind == 1:
            weights = _is_constant(model, tensor) or producers.get(t) == "DENSIFY"
            if not (weights and set(consumers.get(t, [])) <= {"DEQUANTIZE", "DENSIFY"}):
                found.add("float16 (activations; float16 weights feeding DEQUANTIZE are "
                          "supported)")
        elif kind in _UNSUPPORTED_TYPES:
            found.add(_UNSUPPORTED_TYPES[kind])
    return sorted(found)


def hybrid_weights(model: Any) -> frozenset[int]:
    """The int8 weight tensors of dynamic-range CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED."""
    graph = model.Subgraphs(0)
    found = set()
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        if _op_name(model, op)[0] in HYBRID_OPS and _is_dynamic_range(graph, op):
            found.add(_indices(op.InputsAsNumpy())[1])
    return frozenset(found)


def _is_dynamic_range(graph: Any, op: Any) -> bool:
    ins = [graph.Tensors(t) for t in _indices(op.InputsAsNumpy()) if t >= 0]
    if not ins or ins[0].Type() != 0:
        return False
    return any(t.Type() in (9, 3) and t.Buffer() > 0 for t in ins[1:])


def _quant(tensor: Any) -> QuantParams | None:
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scales = tuple(float(s) for s in q.ScaleAsNumpy())
    zps = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,) * len(scales)
    axis = int(q.QuantizedDimension()) if len(scales) > 1 else None
    return QuantParams(scales, zps, axis)


def _tensor_infos(graph: Any, indices: list[int], fallback: str,
                  shapes: dict[str, list[int]]) -> tuple[TensorInfo, ...]:
    tensors = [graph.Tensors(int(i)) for i in indices]
    names = [tensor_name(graph, int(i)) for i in indices]
    infos = []
    for t, name, c_name in zip(tensors, names, unique_c_names(names, fallback)):
        shape = tuple(shapes.get(name) or _shape(t))
        dtype = _TYPE_NAMES.get(t.Type(), "float32")
        infos.append(TensorInfo(name, c_name, shape, dtype, _quant(t)))
    return tuple(infos)


def _check_static(graph: Any, path: str, shapes: dict[str, list[int]]) -> None:
    problems = []
    names = []
    for i in _indices(graph.InputsAsNumpy()):
        t = graph.Tensors(int(i))
        name = tensor_name(graph, int(i))
        names.append(name)
        if name in shapes:
            continue
        if not isinstance(t.ShapeAsNumpy(), np.ndarray):  # absent, not empty: TVM needs one
            problems.append(f"input '{name}' declares no shape")
            continue
        # shape_signature may say -1 (a dynamic batch): the concrete `shape` beside it is
        # what LiteRT and TFLite Micro allocate and run, and so do we
        shape = _shape(t)
        sig = _indices(t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else []
        dyn = [f"dim {k}" for k, d in enumerate(sig) if d < 0 and (k >= len(shape)
                                                                    or shape[k] <= 0)]
        if dyn:
            problems.append(f"input '{name}' has dynamic {', '.join(dyn)}")
    raise_shape_problems(path, problems, [n for n in shapes if n not in names], names)


def import_tflite(path: str, name: str, input_shapes: dict[str, list[int]] | None = None,
                  strict_int8: bool = False,
                  kernel_library: KernelLibrary | None = None,
                  custom_ops: dict[str, Any] | None = None) -> ImportedModel:
    """Fully int8-quantised graphs go to the integer-kernel importer (tflite_int8), the rest
    to TVM's Relax frontend. `strict_int8`: an int8 operator without an integer kernel, or a
    quantised model that is not fully int8, is an UnsupportedError instead of running in
    float (float32 models are not affected)."""
    model = _load(path)
    custom_ops = dict(custom_ops or {})
    problems = unsupported_features(model, allow_state=True, custom_ops=custom_ops)
    control = [] if problems else control_flow_problems(model)
    if control:
        raise UnsupportedError("control flow: " + "; ".join(control), module=name, path=path,
                               hint="IF and WHILE compile when they branch on one bool and "
                                    "their values keep their shapes")
    if problems:
        raise UnsupportedError("; ".join(problems), module=name, path=path,
                               hint="remove or replace these before compiling")
    graph = model.Subgraphs(0)
    shapes = dict(input_shapes or {})
    _check_static(graph, path, shapes)
    inputs = _tensor_infos(graph, _indices(graph.InputsAsNumpy()), "input", shapes)
    outputs = _tensor_infos(graph, _indices(graph.OutputsAsNumpy()), "output", {})
    from .tflite_int8 import import_int8, is_full_int8, read_graph

    int8_graph = read_graph(model)
    full_int8 = is_full_int8(int8_graph)
    # the integer kernels are built for the shapes the file declares
    declared = all(int8_graph.tensor(i).shape == t.shape for i, t in zip(int8_graph.inputs, inputs))
    custom = _quantised_custom(model)
    if custom:
        raise UnsupportedError(f"custom operator {custom} on quantised tensors: custom "
                               "operators are compiled on float (or plain integer) tensors "
                               "only", module=name, path=path,
                               hint="dequantize before it and quantize after it, or replace it")
    if full_int8 and declared and not _has_custom(model):
        result = import_int8(int8_graph, name, [t.shape for t in inputs], strict=strict_int8,
                             library=kernel_library)
        check_imported(result.relax_module, path, "the int8 importer")
        return ImportedModel(name, path, "tflite", result.relax_module, inputs, outputs,
                             c_support=result.c_support,
                             states=tuple(_state_info(v) for v in result.variables))
    if strict_int8 and full_int8:
        raise UnsupportedError("strict int8: the integer kernels need the input shapes the "
                               "model declares", module=name, path=path,
                               hint="drop --input-shapes for this model")
    if full_int8 and not declared:
        changed = ", ".join(f"'{t.name}' {list(int8_graph.tensor(i).shape)} -> {list(t.shape)}"
                            for i, t in zip(int8_graph.inputs, inputs)
                            if int8_graph.tensor(i).shape != t.shape)
        log.warning("module '%s': --input-shapes change the shape the int8 model declares "
                    "(%s) and the integer kernels are built for the declared shapes, so the "
                    "model compiles in float (dequantize -> op -> quantize, float weights: "
                    "larger and slower); drop --input-shapes to keep it integer-only",
                    name, changed)
    if strict_int8 and _has_quantized_tensors(graph):
        raise UnsupportedError("strict int8: the model is quantised but not fully int8 (float "
                               "or other integer tensors between operators)", module=name,
                               path=path, hint="convert with full-integer int8 quantisation")
    from tvm.relax.frontend.tflite import from_tflite

    from .tflite_converter import Converter
    from .relax_blocks import blocks_ended_on_error
    from .tflite_float_state import find_state, from_tflite_with_state

    hybrid = hybrid_weights(model)
    calls: dict[str, Any] = {}
    raw_names: dict[str, str | None] = {}
    slots = find_state(model)

    shape_dict = {t.name: list(t.shape) for t in inputs}
    dtype_dict = {t.name: t.dtype for t in inputs}
    with blocks_ended_on_error() as builders:  # each converter adds the builder it fills

        def converter(*args: Any, **kwargs: Any) -> Converter:
            return Converter(*args, hybrid_weights=hybrid, custom_ops=custom_ops,
                             module_name=name, custom_calls=calls, raw_names=raw_names,
                             builders=builders, **kwargs)

        if slots:  # resource variables, variable tensors: main's last parameters and results
            relax_mod = from_tflite_with_state(model, shape_dict, dtype_dict, converter, slots)
        else:
            relax_mod = from_tflite(model, shape_dict=shape_dict, dtype_dict=dtype_dict,
                                    op_converter=converter)
    check_imported(relax_mod, path, "tvm.relax.frontend.tflite.from_tflite")
    relax_mod = with_raw_names(relax_mod, raw_names)
    return ImportedModel(name, path, "tflite", relax_mod, inputs, outputs,
                         custom_calls=tuple(calls.values()),
                         states=tuple(s.info() for s in slots))


def _has_custom(model: Any) -> bool:
    graph = model.Subgraphs(0)
    return any(_op_name(model, graph.Operators(o))[1] is not None
               for o in range(graph.OperatorsLength()))


def _quantised_custom(model: Any) -> str | None:
    """The first custom operator reading or writing a quantised tensor (custom operators
    compile through the frontend's float converter, ours over TVM's)."""
    graph = model.Subgraphs(0)
    for o in range(graph.OperatorsLength()):
        op = graph.Operators(o)
        code = _op_name(model, op)[1]
        tensors = _indices(op.InputsAsNumpy()) + _indices(op.OutputsAsNumpy())
        if code is not None and any(t >= 0 and _quant(graph.Tensors(t)) is not None
                                    for t in tensors):
            return code
    return None


def _state_info(variable: Any) -> StateInfo:
    t = variable.tensor
    quant = None
    if t.quantized and t.scales.size == 1:
        quant = QuantParams((float(t.scales[0]),), (t.zero_point,))
    return StateInfo(variable.name, tuple(int(d) for d in t.shape), t.dtype, quant,
                     variable.initial)


def _has_quantized_tensors(graph: Any) -> bool:
    return any(_quant(graph.Tensors(t)) is not None for t in range(graph.TensorsLength()))



