"""ONNX file -> Relax IRModule, with every unsupported feature named up front."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import logging

import numpy as np

from ..errors import ModelError, UnsupportedError
from ..model import ImportedModel, QuantParams, TensorInfo
from ..names import unique_c_names
from .checks import check_imported, raise_shape_problems, shape_problem
from .custom_ops import counted, unimplemented_custom_ops
from .onnx_custom import STANDARD_DOMAINS as _STANDARD_DOMAINS
from .onnx_custom import (CustomConverter, declared_specs, mark_custom_nodes,
                          unknown_custom_ops)
from .onnx_control import (CONTROL_OPS, fix_input_values, has_control_flow,
                           resolve_control_flow)
from .onnx_contrib import expand_fused_conv
from .onnx_qoperator import rewrite_qoperators

if TYPE_CHECKING:
    from ..kernels import KernelLibrary

log = logging.getLogger(__name__)

_CONTROL_FLOW = {"Scan"}  # If and Loop: onnx_control.py makes them static or names them
_SPARSE_TYPE = "sparse_tensor_type"


def _load(path: str) -> Any:
    import onnx

    try:
        model = onnx.load(path)
    except Exception as exc:  # protobuf raises DecodeError, but also ValueError, RuntimeError...
        raise ModelError(f"not a valid ONNX file ({type(exc).__name__})", path=path,
                         hint="re-export or re-download the model") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelError("ONNX file holds no graph", path=path,
                         hint="re-export or re-download the model")
    return model


def _supported_ops() -> set[str]:
    from .onnx_relax import supported_ops

    return supported_ops()


def unsupported_features(model: Any, custom_ops: Any = ()) -> list[str]:
    """Every reason the Relax ONNX frontend + our C path cannot take this model.
    `custom_ops`: the names of the custom operators the user implements."""
    supported = _supported_ops()
    counts: Counter[str] = Counter()
    custom: Counter[str] = Counter()
    control: Counter[str] = Counter()
    known = {name: None for name in custom_ops}
    for graph in [model.graph, *_subgraphs(model.graph)]:  # If branches, Loop bodies too
        for node in graph.node:
            if node.domain not in _STANDARD_DOMAINS:
                if graph is not model.graph or unknown_custom_ops([node], known):
                    custom[f"{node.domain}.{node.op_type}"] += 1
            elif node.op_type in _CONTROL_FLOW:
                control[node.op_type] += 1
            elif node.op_type not in supported and node.op_type not in CONTROL_OPS:
                counts[node.op_type] += 1
    problems = []
    if counts:
        problems.append("unsupported operators: " + counted(counts))
    if custom:
        problems.append(unimplemented_custom_ops(custom))
    if control:
        problems.append("control flow is not supported: " + counted(control))
    if model.graph.sparse_initializer:
        problems.append(f"{len(model.graph.sparse_initializer)} sparse initializer(s)")
    for value in list(model.graph.input) + list(model.graph.output):
        if value.type.WhichOneof("value") == _SPARSE_TYPE:
            problems.append(f"sparse tensor '{value.name}'")
    return problems


def _subgraphs(graph: Any) -> list[Any]:
    """Every graph nested in `graph`'s nodes (If branches, Loop bodies), recursively."""
    found = []
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                found += [sub, *_subgraphs(sub)]
    return found


def _check_wiring(model: Any, path: str) -> None:
    """Every node input must come from somewhere: catches missing initializers."""
    known = {v.name for v in model.graph.input} | {t.name for t in model.graph.initializer}
    missing = []
    for node in model.graph.node:
        for name in node.input:
            if name and name not in known and name not in missing:
                missing.append(name)
        known.update(node.output)
    if missing:
        raise ModelError("tensors used but never defined (missing initializer?): "
                         + ", ".join(missing[:10]), path=path,
                         hint="the file is incomplete; re-export the model")


def _dims(value: Any) -> list[int | str | None]:
    out: list[int | str | None] = []
    for d in value.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or None)
    return out


def _dtype(value: Any) -> str:
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)).name


def graph_inputs(model: Any) -> list[tuple[str, list[int | str | None], str]]:
    """(name, dims, dtype) of the real inputs (initializers listed as inputs excluded)."""
    inits = {t.name for t in model.graph.initializer}
    return [(v.name, _dims(v), _dtype(v)) for v in model.graph.input if v.name not in inits]


def _static_shapes(model: Any, path: str, shapes: dict[str, list[int]]) -> dict[str, list[int]]:
    result, problems = {}, []
    known = {name for name, _, _ in graph_inputs(model)}
    for name, dims, _ in graph_inputs(model):
        if name in shapes:
            result[name] = [int(d) for d in shapes[name]]
            continue
        if len(dims) >= 2 and not isinstance(dims[0], int):
            # a symbolic batch: one inference at a time, as TFLite Micro runs
            log.warning("input '%s': symbolic batch dim%s set to 1 (--input-shapes sets "
                        "another)", name, f" '{dims[0]}'" if dims[0] else "")
            dims = [1, *dims[1:]]
        dynamic = [f"dim {i} ('{d}')" if d else f"dim {i}" for i, d in enumerate(dims)
                   if not isinstance(d, int)]
        if dynamic:
            problems.append(f"input '{name}' has dynamic {', '.join(dynamic)}")
        result[name] = [d for d in dims if isinstance(d, int)]
    raise_shape_problems(path, problems, [n for n in shapes if n not in known], sorted(known))
    dtypes = {n: dt for n, _, dt in graph_inputs(model)}
    wrong = [f"input '{n}' has the shape [{','.join(map(str, dims))}] ({why})"
             for n, dims in result.items() if (why := shape_problem(dims, dtypes[n]))]
    if wrong:
        raise ModelError("; ".join(wrong), path=path,
                         hint="the file is corrupt, or --input-shapes gives a wrong shape")
    return result


# ONNX element types the C path compiles; the others (float16, bfloat16, float8, float4,
# int4, string, complex) are named as unsupported
_C_ELEMENT_TYPES = {"FLOAT", "DOUBLE", "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32",
                    "INT64", "UINT64", "BOOL"}


def _check_element_types(model: Any, path: str) -> None:
    """Every declared tensor type is one we compile (a corrupt file may hold any number)."""
    from onnx import TensorProto

    names = {value: name for name, value in TensorProto.DataType.items()}
    declared = [(v.name, v.type.tensor_type.elem_type)
                for v in [*model.graph.input, *model.graph.output]
                if v.type.WhichOneof("value") == "tensor_type"]
    declared += [(v.name, v.type.tensor_type.elem_type) for v in model.graph.value_info
                 if v.type.WhichOneof("value") == "tensor_type" and v.type.tensor_type.elem_type]
    declared += [(t.name, t.data_type) for t in model.graph.initializer]
    unknown = sorted({f"{code} ('{name}')" for name, code in declared if code not in names})
    if unknown:
        raise ModelError("unknown ONNX element types: " + ", ".join(unknown[:5]), path=path,
                         hint="the file is corrupt; re-export the model")
    unsupported = sorted({names[code] for _, code in declared
                          if names[code] not in _C_ELEMENT_TYPES})
    if unsupported:
        raise UnsupportedError("unsupported tensor types: " + ", ".join(unsupported).lower(),
                               path=path, hint="convert the model to float32 or int8")


# ONNX element type -> the TensorProto field that holds its values when not in raw_data
_TYPED_FIELDS = {"FLOAT": "float_data", "DOUBLE": "double_data", "INT64": "int64_data",
                 "UINT32": "uint64_data", "UINT64": "uint64_data"}
_MAX_TENSOR_BYTES = 2 ** 31


def _check_initializers(model: Any, path: str) -> None:
    """Every constant tensor (initializers, Constant nodes) holds exactly the data its dims
    and type need: a corrupt file otherwise fails deep in the frontend (numpy's reshape),
    or compiles with a negative dimension. Runs after `_check_element_types`, so only the
    C element types are left. External data is refused by onnx.load already."""
    from onnx import TensorProto, helper

    for graph in [model.graph, *_subgraphs(model.graph)]:
        tensors = list(graph.initializer)
        tensors += [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute
                    if a.name == "value" and a.HasField("t")]
        for tensor in tensors:
            problem = _tensor_data_problem(tensor, TensorProto, helper)
            if problem:
                raise ModelError(f"initializer '{tensor.name}' is corrupt: {problem}", path=path,
                                 hint="the file is corrupt; re-export the model")


def _tensor_data_problem(tensor: Any, tensor_proto: Any, helper: Any) -> str | None:
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        return f"negative dimension in {dims}"
    count = int(np.prod(dims, dtype=object))
    type_name = tensor_proto.DataType.Name(tensor.data_type)
    if type_name not in _C_ELEMENT_TYPES:
        return None  # refused as an unsupported type, or not ours to judge
    itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    if count * itemsize > _MAX_TENSOR_BYTES:
        return f"dims {dims} make {count * itemsize} bytes, over 2 GiB"
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != count * itemsize:
            return (f"{len(tensor.raw_data)} bytes of data for dims {dims} of "
                    f"{type_name.lower()} ({count * itemsize} bytes)")
        return None
    values = len(getattr(tensor, _TYPED_FIELDS.get(type_name, "int32_data")))
    if values != count:
        return f"{values} values for dims {dims} ({count} values)"
    return None


def _check_opset(model: Any, path: str) -> None:
    """The model's ONNX opset is one the frontend knows. An operator's meaning can change
    with the opset; TVM's converters use the newest version they implement that is not
    newer than the model's, so a model from a newer opset would be converted with an older
    operator's meaning, silently."""
    opset = next((o.version for o in model.opset_import if o.domain in _STANDARD_DOMAINS), 1)
    newest = newest_known_opset()
    if opset > newest:
        raise UnsupportedError(f"ONNX opset {opset} is newer than the frontend knows (opsets "
                               f"up to {newest})", path=path,
                               hint=f"export the model with opset {newest} or older")


def newest_known_opset() -> int:
    """The newest default-domain opset both TVM's Relax ONNX converters (their newest
    ``_impl_v<N>``: 23 in TVM 0.27) and the installed onnx package (its checker and shape
    inference) know."""
    import re

    import onnx
    from tvm.relax.frontend.onnx import onnx_frontend

    versions = [int(match.group(1)) for converter in onnx_frontend._get_convert_map().values()
                for attr in dir(converter)
                for match in [re.fullmatch(r"_impl_v(\d+)", attr)] if match]
    return min(max(versions, default=1), onnx.defs.onnx_opset_version())


def _check_types(model: Any, path: str) -> None:
    """ONNX's own type inference: an operator given a type its schema does not allow
    (MaxPool on bool) is refused here, not deep inside TVM's lowering."""
    import onnx

    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=False)
    except onnx.shape_inference.InferenceError as exc:
        first = (str(exc).strip().splitlines() or ["?"])[0]
        raise ModelError(f"onnx.shape_inference.infer_shapes refuses the model: {first[:300]}",
                         path=path, hint="the file is corrupt or was exported wrongly; "
                                         "re-export the model") from None
    except Exception:  # noqa: BLE001 - e.g. over 2 GB: no verdict, TVM's frontend decides
        pass


def import_onnx(path: str, name: str, input_shapes: dict[str, list[int]] | None = None,
                strict_int8: bool = False, kernel_library: KernelLibrary | None = None,
                input_values: dict[str, Any] | None = None,
                custom_ops: dict[str, Any] | None = None) -> ImportedModel:
    """Statically quantised (QDQ) models go to the integer kernels (onnx_int8), the rest to
    TVM's Relax frontend. `strict_int8`: a quantised model, or one of its operators, that the
    integer kernels cannot take is an UnsupportedError instead of running in float.
    `input_values`: inputs fixed to constants (they leave the module's inputs; If and Loop
    depending on them fold, see onnx_control.py). `custom_ops`: custom-domain operators the
    user implements, by `DOMAIN.OP` or `OP` (see onnx_custom.py)."""
    custom_ops = dict(custom_ops or {})
    model = rewrite_qoperators(_load(path))  # QLinearConv, QGemm... -> their QDQ form
    model = expand_fused_conv(model, custom_ops)  # onnxruntime-optimised files
    problems = unsupported_features(model, custom_ops)
    if problems:
        raise UnsupportedError("; ".join(problems), module=name, path=path,
                               hint="remove or replace these before compiling")
    _check_opset(model, path)
    _check_element_types(model, path)
    _check_initializers(model, path)
    _check_wiring(model, path)
    _check_types(model, path)
    model = fix_input_values(model, input_values or {})
    shapes = _static_shapes(model, path, input_shapes or {})
    inputs = graph_inputs(model)
    dtypes = {n: dt for n, _, dt in inputs}
    model = _fold_shapes(model, shapes)
    if has_control_flow(model):  # fold again: the inlined branches' shape arithmetic too
        model = _fold_shapes(resolve_control_flow(model), shapes)
    in_names = [n for n, _, _ in inputs]
    outs = list(model.graph.output)
    out_names = [v.name for v in outs]
    quant = _io_quantisation(model)
    in_infos = tuple(TensorInfo(n, c, tuple(shapes[n]), dtypes[n], quant.get(n))
                     for n, c in zip(in_names, unique_c_names(in_names, "input")))
    out_infos = tuple(TensorInfo(v.name, c, tuple(d if isinstance(d, int) else -1 for d in _dims(v)),
                                 _dtype(v), quant.get(v.name))
                      for v, c in zip(outs, unique_c_names(out_names, "output")))
    integer = _import_integer(model, path, name, [tuple(shapes[n]) for n in in_names],
                              strict_int8, kernel_library)
    if integer is not None:
        relax_mod, c_support = integer
        return ImportedModel(name, path, "onnx", relax_mod, in_infos, out_infos,
                             c_support=c_support)
    from .onnx_relax import from_onnx

    model, table = mark_custom_nodes(model, custom_ops)
    custom = CustomConverter(name, custom_ops, declared_specs(model), table)
    relax_mod = from_onnx(model, shape_dict=shapes, dtype_dict=dtypes, custom=custom)
    check_imported(relax_mod, path, "tvm.relax.frontend.onnx.from_onnx")
    return ImportedModel(name, path, "onnx", relax_mod, in_infos, out_infos,
                         custom_calls=tuple(custom.calls.values()))


def _import_integer(model: Any, path: str, name: str, input_shapes: list[tuple[int, ...]],
                    strict: bool, library: KernelLibrary | None
                    ) -> tuple[Any, str] | None:
    """(Relax module, C support) on the integer kernels, or None: not quantised, or outside
    the static-quantisation pattern (then the float form, with a warning)."""
    from . import onnx_int8
    from .tflite_int8 import NoIntegerForm, import_int8

    if not onnx_int8.has_quantize_nodes(model):
        return None
    try:
        graph = onnx_int8.translate_qdq(model, onnx_int8.static_shapes(model))
        result = import_int8(graph, name, input_shapes, strict=strict,
                             float_form=onnx_int8.OnnxFloatForm, library=library,
                             rounding="onnx")
    except (onnx_int8.NotQDQ, NoIntegerForm) as exc:
        if strict:
            raise UnsupportedError(f"strict int8: the quantised model cannot run on integer "
                                   f"kernels: {exc}", module=name, path=path,
                                   hint="compile without strict int8 to run it in float") from None
        log.warning("module '%s': the quantised model runs in float (dequantize -> op -> "
                    "quantize), not on integer kernels: %s", name, exc)
        return None
    check_imported(result.relax_module, path, "the int8 importer")
    return result.relax_module, result.c_support


def _io_quantisation(model: Any) -> dict[str, QuantParams]:
    """Scale and zero point of 8-bit model inputs (their DequantizeLinear) and outputs (their
    QuantizeLinear), as the file gives them."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    ends = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    found = {}
    for node in model.graph.node:
        name = node.input[0] if node.op_type == "DequantizeLinear" else (
            node.output[0] if node.op_type == "QuantizeLinear" else None)
        if name not in ends or node.input[1] not in inits:
            continue
        scale = numpy_helper.to_array(inits[node.input[1]]).reshape(-1)
        zero = (numpy_helper.to_array(inits[node.input[2]]).reshape(-1)
                if len(node.input) > 2 and node.input[2] in inits else np.zeros(scale.size, int))
        if scale.size == 1:
            found[name] = QuantParams((float(scale[0]),), (int(zero[0]),))
    return found


def _fold_shapes(model: Any, shapes: dict[str, list[int]]) -> Any:
    """Fix the input shapes in the graph and fold the shape arithmetic of older exporters
    (Shape -> Gather -> Concat -> Reshape) into constants (`onnx_fold.py`)."""
    import onnx

    from .onnx_fold import fold_shape_arithmetic

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for d, size in zip(dims, shapes[value.name]):
                d.Clear()
                d.dim_value = int(size)
    return fold_shape_arithmetic(fixed)
