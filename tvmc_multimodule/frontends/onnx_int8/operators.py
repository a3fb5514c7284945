"""One handler per ONNX operator: match its QDQ pattern and add the equivalent records
(CONV_2D, FULLY_CONNECTED, ADD... for the integer kernels), or raise KeepFloat (the operator
keeps its float form) or NotQDQ (the graph is outside the pattern)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ..tflite_int8.converters import EXPLICIT, TABLE
from .translator import (ELEMENTWISE, NHWC, NHWC_AXIS, PASS_THROUGH, RESHAPES, KeepFloat,
                         NotQDQ, Quant, Translator, Value, node_attrs, spatial_padding)


def _dequantize_linear(t: Translator, node: Any) -> None:
    x, out = node.input[0], node.output[0]
    if x in t.inits:
        quant = t.quant(node, t.inits[x].dtype.name)
        t.constants[out] = (t.inits[x].astype(np.int64) - (128 if quant.dtype == "uint8" else 0),
                            quant)
        return
    if x in t.graph_inputs and x not in t.values:
        quant = t.quant(node)
        index = t.graph_input(x, quant)
        if quant.dtype == "uint8":  # the file's uint8 -> int8, same real values
            to_int8 = t.tensor(x + "_i8", t.shape(x), "int8", quant)
            t.operator(TABLE, [index], [to_int8], Values=(np.arange(256) - 128).astype(np.int8),
                       Name="from_uint8")
            index = to_int8
        t.values[x] = Value(index, False, quant)
    value = t.source(x)
    if not value.quant.same(t.quant(node)):
        raise NotQDQ(f"DequantizeLinear '{node.name}' reads '{x}' with other parameters")
    t.dequantized[out] = x
    if out in t.graph_outputs:
        src = t.onnx_order(value, t.shape(out)) if value.nhwc else value.index
        t.output_records[out] = t.tensor(out, t.shape(out), "float32")
        t.operator("DEQUANTIZE", [src], [t.output_records[out]])


def _quantize_linear(t: Translator, node: Any) -> None:
    x, quant = node.input[0], t.quant(node)
    if quant.dtype == "int32" or not quant.per_tensor:
        raise NotQDQ(f"QuantizeLinear '{node.name}' to {quant.dtype} per axis")
    if x in t.graph_inputs:
        index = t.graph_input(x, None)
        out = t.int8_output(node.output[0], quant, nhwc=False)
        t.operator("QUANTIZE", [index], [out.index])
        return
    src = t.source(x)
    if src.quant.same(quant):
        t.values[node.output[0]] = Value(src.index, src.nhwc, quant)
        return
    out = t.int8_output(node.output[0], quant, src.nhwc)
    t.operator("QUANTIZE", [src.index], [out.index])


def _weights(t: Translator, name: str, what: str) -> tuple[np.ndarray, Quant]:
    if name not in t.constants or t.constants[name][1].dtype == "int32":
        raise KeepFloat(f"{what} are not constant 8-bit data")
    data, quant = t.constants[name]
    if np.any(quant.zero_points != 0):
        raise KeepFloat(f"{what} have a non-zero zero point")
    return data.astype(np.int8), quant


def _bias(t: Translator, name: Optional[str], in_scale: float, w_scales: np.ndarray,
          channels: int) -> Optional[np.ndarray]:
    """int32 bias at scale input x weight (per channel), from DequantizeLinear or float."""
    if not name:
        return None
    scale = (np.float32(in_scale) * np.broadcast_to(w_scales, (channels,))).astype(np.float32)
    if name in t.constants:
        data, quant = t.constants[name]
        data = data.reshape(-1)
        if quant.dtype == "int32" and np.all(quant.zero_points == 0) and np.array_equal(
                np.broadcast_to(quant.scales, (channels,)), scale):
            return data.astype(np.int32)
        real = ((data - quant.zero_points) * quant.scales).astype(np.float32)
    elif name in t.inits:
        real = t.inits[name].astype(np.float32).reshape(-1)
    else:
        raise KeepFloat("the bias is computed at run time")
    return np.clip(np.rint(real / scale), -2**31, 2**31 - 1).astype(np.int32)


def _conv(t: Translator, node: Any) -> None:
    attrs = node_attrs(node)
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    if len(shape) != 4:
        raise KeepFloat("not a 2-D convolution")
    w, w_quant = _weights(t, node.input[1], "weights")
    q_node, activation, absorbed = t.output_quant(node)
    channels, group = w.shape[0], int(attrs.get("group", 1))
    if group == 1:
        name, weights, axis = "CONV_2D", w.transpose(0, 2, 3, 1), 0
    elif group == shape[1] and w.shape[1] == 1:
        name, weights, axis = "DEPTHWISE_CONV_2D", w.transpose(1, 2, 3, 0), 3
    else:
        raise KeepFloat("grouped convolution")
    if not x.quant.per_tensor:
        raise KeepFloat("per-axis input quantisation")
    kernel = w.shape[2:]
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    padding = spatial_padding(attrs, shape[2:], kernel, strides, dilations)
    bias = _bias(t, node.input[2] if len(node.input) > 2 else None, x.quant.scales[0],
                 w_quant.scales, channels)
    t.absorbed.update(n.output[0] for n in absorbed)
    inputs = [t.layout(x, nhwc=True), t.constant(node.input[1], weights, w_quant, axis)]
    if bias is not None:
        inputs.append(t.constant(node.input[2], bias))
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc=True)
    t.operator(name, inputs, [out.index], raw=node, Padding=EXPLICIT, ExplicitPadding=padding,
               StrideH=strides[0], StrideW=strides[1], DilationHFactor=dilations[0],
               DilationWFactor=dilations[1], FusedActivationFunction=activation)


def _fully_connected(t: Translator, node: Any, weights: np.ndarray, w_quant: Quant,
                     bias_name: Optional[str]) -> None:
    """x (ONNX order) @ weights[units, depth]^T + bias, as FULLY_CONNECTED."""
    x = t.source(node.input[0])
    if not x.quant.per_tensor:
        raise KeepFloat("per-axis input quantisation")
    q_node, activation, absorbed = t.output_quant(node)
    bias = _bias(t, bias_name, x.quant.scales[0], w_quant.scales, weights.shape[0])
    t.absorbed.update(n.output[0] for n in absorbed)
    shape = t.shape(node.input[0])
    inputs = [t.onnx_order(x, shape) if x.nhwc else x.index,
              t.constant(node.input[1], np.ascontiguousarray(weights), w_quant, 0)]
    if bias is not None:
        inputs.append(t.constant(bias_name, bias))
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc=False)
    t.operator("FULLY_CONNECTED", inputs, [out.index], raw=node,
               FusedActivationFunction=activation, WeightsFormat=0)


def _gemm(t: Translator, node: Any) -> None:
    attrs = node_attrs(node)
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or (
            len(node.input) > 2 and attrs.get("beta", 1.0) != 1.0):
        raise KeepFloat("Gemm with transA, alpha or beta")
    if len(t.shape(node.input[0])) != 2:
        raise KeepFloat("Gemm of a tensor that is not 2-D")
    w, quant = _weights(t, node.input[1], "weights")
    if not attrs.get("transB", 0):
        w, quant = _transposed_matrix(w, quant)
    _fully_connected(t, node, w, quant, node.input[2] if len(node.input) > 2 else None)


def _transposed_matrix(w: np.ndarray, quant: Quant) -> tuple[np.ndarray, Quant]:
    """[depth, units] -> [units, depth]; per-axis scales must be along the units."""
    if not quant.per_tensor and quant.axis not in (1, -1):
        raise KeepFloat("weights quantised along the reduction axis")
    return w.T, quant


def _matmul(t: Translator, node: Any) -> None:
    w, quant = _weights(t, node.input[1], "weights")
    if w.ndim != 2:
        raise KeepFloat("MatMul with weights that are not a matrix")
    _fully_connected(t, node, *_transposed_matrix(w, quant), None)


def _operand(t: Translator, name: str, nhwc: bool, rank: int) -> int:
    """An Add/Mul operand in the wanted layout: activation or constant (broadcast-ready)."""
    if name in t.constants:
        data, quant = t.constants[name]
        if not quant.per_tensor or quant.dtype == "int32":
            raise KeepFloat("constant operand quantised per axis or int32")
        data = data.reshape((1,) * (rank - data.ndim) + data.shape)
        return t.constant(name, (data.transpose(NHWC) if nhwc else data).astype(np.int8), quant)
    value = t.source(name)
    if not value.quant.per_tensor:
        raise KeepFloat("per-axis operand")
    if len(t.shape(name)) != rank:
        raise KeepFloat("operands of different ranks")
    return t.layout(value, nhwc) if rank == 4 else value.index


def _binary(t: Translator, node: Any) -> None:
    if any(n in t.inits for n in node.input):
        raise KeepFloat("a float constant operand")
    q_node, activation, absorbed = t.output_quant(node)
    rank = len(t.shape(q_node.output[0]))
    nhwc = rank == 4 and any(n in t.dequantized and t.source(n).nhwc for n in node.input)
    inputs = [_operand(t, n, nhwc, rank) for n in node.input]
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc)
    t.operator(node.op_type.upper(), inputs, [out.index], raw=node,
               FusedActivationFunction=activation)


def _pool(t: Translator, node: Any) -> None:
    attrs = node_attrs(node)
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    if len(shape) != 4 or attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise KeepFloat("pooling with ceil_mode, dilations or not 2-D")
    if node.op_type.startswith("Global"):
        kernel, strides, padding = shape[2:], (1, 1), ((0, 0), (0, 0))
    else:
        kernel = tuple(attrs["kernel_shape"])
        strides = tuple(attrs.get("strides", (1, 1)))
        padding = spatial_padding(attrs, shape[2:], kernel, strides, (1, 1))
    if node.op_type == "AveragePool" and attrs.get("count_include_pad", 0) and any(map(any, padding)):
        raise KeepFloat("average pooling counting the padding")
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if not quant.same(x.quant):
        raise KeepFloat("pooling that changes the quantisation")
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(out_name, quant, nhwc=True)
    name = "MAX_POOL_2D" if "Max" in node.op_type else "AVERAGE_POOL_2D"
    t.operator(name, [t.layout(x, nhwc=True)], [out.index], raw=node, Padding=EXPLICIT,
               ExplicitPadding=padding, FilterHeight=kernel[0], FilterWidth=kernel[1],
               StrideH=strides[0], StrideW=strides[1], FusedActivationFunction=activation)


def _direct_or_quantised(t: Translator, node: Any, x: Value) -> tuple[str, Quant, int, list]:
    """An operator reading an 8-bit tensor directly writes 8-bit with the same parameters;
    one reading a DequantizeLinear output writes what its QuantizeLinear says."""
    if node.input[0] in t.values and node.input[0] not in t.dequantized:
        return node.output[0], x.quant, 0, []
    q_node, activation, absorbed = t.output_quant(node)
    return q_node.output[0], t.quant(q_node), activation, absorbed


def _mean(t: Translator, node: Any) -> None:
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    attrs = node_attrs(node)
    if node.op_type == "GlobalAveragePool":
        axes, keep = list(range(2, len(shape))), True
    else:
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1] in t.inits:
            axes = t.inits[node.input[1]].tolist()
        if axes is None:
            raise KeepFloat("ReduceMean over all axes")
        keep = bool(attrs.get("keepdims", 1))
    axes = sorted(int(a) % len(shape) for a in axes)
    q_node, activation, absorbed = t.output_quant(node)
    if activation or not x.quant.per_tensor:
        raise KeepFloat("mean with an activation or per-axis input")
    nhwc = x.nhwc
    if nhwc and not keep:  # the kept axes must keep their ONNX order
        kept = [a for a in NHWC if a not in axes]
        nhwc = kept == sorted(kept)
    index = t.layout(x, nhwc) if len(shape) == 4 else x.index
    stored = [NHWC_AXIS[a] for a in axes] if nhwc else axes
    t.absorbed.update(n.output[0] for n in absorbed)
    # without keepdims the kept axes are in ONNX order (checked above)
    out = t.int8_output(q_node.output[0], t.quant(q_node), nhwc=nhwc and keep)
    axes_index = t.constant(node.name + "_axes", np.array(stored, np.int32))
    t.operator("MEAN", [index, axes_index], [out.index], raw=node)


def _softmax(t: Translator, node: Any) -> None:
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    axis = int(node_attrs(node).get("axis", -1 if t.opset >= 13 else 1)) % len(shape)
    if axis != len(shape) - 1:
        raise KeepFloat("softmax over an axis that is not the last")
    q_node, activation, absorbed = t.output_quant(node)
    quant = t.quant(q_node)
    if activation or not (x.quant.per_tensor and quant.per_tensor):
        raise KeepFloat("softmax with an activation or per-axis quantisation")
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(q_node.output[0], quant, nhwc=False)
    index = t.onnx_order(x, shape) if x.nhwc else x.index
    t.operator("SOFTMAX", [index], [out.index], raw=node, Beta=1.0)


def _elementwise(t: Translator, node: Any) -> None:
    """A one-input elementwise operator as a table over the 256 input values, computed by
    onnx's reference evaluator on DequantizeLinear -> operator -> QuantizeLinear."""
    if any(name and name not in t.inits for name in node.input[1:]):
        raise KeepFloat("an operand computed at run time")
    x = t.source(node.input[0])
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if activation:
        raise KeepFloat("followed by another activation")
    table = _reference_table(t, node, x.quant, quant)
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(out_name, quant, x.nhwc)
    t.operator(TABLE, [x.index], [out.index], raw=node, Values=table, Name=node.op_type.lower())


def _reference_table(t: Translator, node: Any, qin: Quant, qout: Quant) -> np.ndarray:
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    if not (qin.per_tensor and qout.per_tensor):
        raise KeepFloat("per-axis quantisation")
    ins = np.arange(-128, 128, dtype=np.int8)
    consts = [numpy_helper.from_array(np.float32(qin.scales[0]), "si"),
              numpy_helper.from_array(np.int8(qin.zero_points[0]), "zi"),
              numpy_helper.from_array(np.float32(qout.scales[0]), "so"),
              numpy_helper.from_array(np.int8(qout.zero_points[0]), "zo")]
    consts += [numpy_helper.from_array(t.inits[n], n) for n in node.input[1:] if n]
    op = helper.make_node(node.op_type, ["f", *node.input[1:]], ["g"], **node_attrs(node))
    nodes = [helper.make_node("DequantizeLinear", ["x", "si", "zi"], ["f"]), op,
             helper.make_node("QuantizeLinear", ["g", "so", "zo"], ["y"])]
    graph = helper.make_graph(nodes, "table", [helper.make_tensor_value_info(
        "x", TensorProto.INT8, [256])], [helper.make_tensor_value_info("y", TensorProto.INT8, [256])],
        consts)
    # the reference evaluator runs DequantizeLinear from opset 19; elementwise operators
    # have kept their meaning across versions
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(t.opset, 21))])
    try:
        (table,) = ReferenceEvaluator(model).run(None, {"x": ins})
    except Exception as exc:  # noqa: BLE001 - an operator the evaluator does not run
        raise KeepFloat(f"no table for {node.op_type}: {exc}") from None
    return np.asarray(table, np.int8)


def _data_movement(t: Translator, node: Any) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity: on the ONNX element order
    (a Transpose of an NHWC tensor folds the layout into its permutation)."""
    x = t.source(node.input[0])
    shape = t.shape(node.input[0])
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if activation or not quant.same(x.quant):
        raise KeepFloat("data movement that changes the quantisation")
    t.absorbed.update(n.output[0] for n in absorbed)
    if node.op_type in PASS_THROUGH:
        t.values[out_name] = Value(x.index, x.nhwc, quant)
        return
    out = t.int8_output(out_name, quant, nhwc=False)
    if node.op_type == "Transpose":
        perm = list(node_attrs(node).get("perm", range(len(shape)))[::1])
        if x.nhwc:
            perm = [NHWC_AXIS[p] for p in perm]
        perm_index = t.constant(node.name + "_perm", np.array(perm, np.int32))
        t.operator("TRANSPOSE", [x.index, perm_index], [out.index], raw=node)
        return
    index = t.onnx_order(x, shape) if x.nhwc else x.index
    t.operator("RESHAPE", [index], [out.index], raw=node)


def _concat(t: Translator, node: Any) -> None:
    """CONCATENATION; an input quantised otherwise than the output is first requantised by
    a table (DequantizeLinear -> QuantizeLinear, as onnxruntime's QDQ form says)."""
    values = [t.source(n) for n in node.input]
    rank = len(t.shape(node.input[0]))
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, values[0])
    if activation or not all(v.quant.per_tensor for v in values):
        raise KeepFloat("concatenation with an activation or per-axis quantisation")
    nhwc = rank == 4 and all(v.nhwc for v in values)
    axis = int(node_attrs(node)["axis"]) % rank
    t.absorbed.update(n.output[0] for n in absorbed)
    inputs = [t.layout(v, nhwc) if rank == 4 else v.index for v in values]
    for k, value in enumerate(values):
        if not value.quant.same(quant):
            inputs[k] = _requantised(t, inputs[k], value.quant, quant)
    out = t.int8_output(out_name, quant, nhwc)
    t.operator("CONCATENATION", inputs, [out.index], raw=node,
               Axis=NHWC_AXIS[axis] if nhwc else axis, FusedActivationFunction=0)


def _requantised(t: Translator, index: int, qin: Quant, qout: Quant) -> int:
    from onnx import helper

    src = t.tensors[index]
    out = t.tensor(src.name + "_requantised", src.shape, "int8", qout)
    table = _reference_table(t, helper.make_node("Identity", ["a"], ["b"]), qin, qout)
    t.operator(TABLE, [index], [out], Values=table, Name="requantize")
    return out


def _pad(t: Translator, node: Any) -> None:
    attrs = node_attrs(node)
    mode = attrs.get("mode", b"constant")
    x = t.source(node.input[0])
    rank = len(t.shape(node.input[0]))
    pads = attrs.get("pads") if t.opset < 11 else (
        t.inits[node.input[1]].tolist() if node.input[1] in t.inits else None)
    if mode not in (b"constant", "constant") or pads is None or len(node.input) > 3:
        raise KeepFloat("Pad that is not constant with constant pads")
    if len(node.input) > 2 and node.input[2]:
        value = node.input[2]
        zero = (t.constants[value][0].reshape(-1)[0] if value in t.constants
                else t.inits.get(value, np.ones(1)).reshape(-1)[0])
        if value in t.constants and zero != t.constants[value][1].zero_points[0] or (
                value not in t.constants and zero != 0):
            raise KeepFloat("Pad with a value other than zero")
    out_name, quant, activation, absorbed = _direct_or_quantised(t, node, x)
    if activation or not quant.same(x.quant):
        raise KeepFloat("Pad that changes the quantisation")
    pairs = np.array([[pads[a], pads[a + rank]] for a in range(rank)], np.int32)
    nhwc = x.nhwc
    if nhwc:
        pairs = pairs[list(NHWC)]
    t.absorbed.update(n.output[0] for n in absorbed)
    out = t.int8_output(out_name, quant, nhwc)
    t.operator("PAD", [x.index, t.constant(node.name + "_pads", pairs)], [out.index], raw=node)


HANDLERS: dict[str, Callable[[Translator, Any], None]] = {
    "DequantizeLinear": _dequantize_linear,
    "QuantizeLinear": _quantize_linear,
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary,
    "Mul": _binary,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalMaxPool": _pool,
    "GlobalAveragePool": _mean,
    "ReduceMean": _mean,
    "Softmax": _softmax,
    "Concat": _concat,
    "Pad": _pad,
    "Transpose": _data_movement,
    **{op: _data_movement for op in RESHAPES | PASS_THROUGH},
    **{op: _elementwise for op in ELEMENTWISE},
}

