"""onnxruntime's QOperator form -> the equivalent QDQ form, as a pure ONNX graph rewrite.

onnxruntime's static quantisation writes a quantised model either as QDQ (QuantizeLinear /
DequantizeLinear around float operators; TVM's Relax ONNX frontend imports it) or as QOperator
(QLinearConv, QLinearMatMul, com.microsoft::QGemm, ... with integer tensors; TVM has no
converter for them). `rewrite_qoperators()` replaces each QOperator node we know by

    DequantizeLinear(each quantised input) -> the float operator -> QuantizeLinear(output)

keeping the output's name (and so its declared type), so the rest of the pipeline is unchanged.
One function per operator below; a node none of them takes (unknown operator, an attribute we
do not handle, per-axis scales before opset 13) stays as it is and is reported by
`unsupported_features()`.

Scales and zero points that are initializers with one element are used per tensor; 1-D ones
with more elements per axis (the weights' output channel, a matrix's rows/columns). Scales that
are computed at run time are taken as per tensor.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

_MS = "com.microsoft"
_PER_AXIS_OPSET = 13  # DequantizeLinear/QuantizeLinear have `axis` from opset 13


class _Rewriter:
    """Builds the replacement nodes of one graph: fresh names, scalar copies of scales."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.taken = {n for node in model.graph.node for n in (*node.input, *node.output)}
        self.taken |= set(self.inits) | {v.name for v in model.graph.input}
        self.new_inits: list[Any] = []
        self.nodes: list[Any] = []

    def fresh(self, hint: str) -> str:
        name, i = hint, 0
        while name in self.taken:
            i += 1
            name = f"{hint}_{i}"
        self.taken.add(name)
        return name

    def const(self, hint: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.new_inits.append(numpy_helper.from_array(np.asarray(array), name))
        self.inits[name] = np.asarray(array)
        return name

    def size(self, name: str) -> Optional[int]:
        """Element count of an initializer, None for a tensor computed at run time."""
        return int(self.inits[name].size) if name in self.inits else None

    def per_axis(self, scale: str) -> bool:
        return (self.size(scale) or 1) > 1

    def scalar(self, name: str) -> str:
        """A one-element 1-D initializer as a scalar one (per-tensor in Q/DQ's reading)."""
        if name and name in self.inits and self.inits[name].shape == (1,):
            return self.const(name + "_scalar", self.inits[name].reshape(()))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        from onnx import helper

        name = self.fresh(outputs[0] + "_" + op)
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))

    def dequantize(self, x: str, scale: str, zero: str, axis: int,
                   per_axis: Optional[bool] = None) -> str:
        """DequantizeLinear(x, scale, zero) (ONNX: y = (x - zero) * scale), per `axis` when
        the scale has several elements (or when `per_axis` says so)."""
        out = self.fresh(x + "_dq")
        per_axis = self.per_axis(scale) if per_axis is None else per_axis
        scale, zero = self.scalar(scale), self.scalar(zero)
        attrs = {"axis": axis} if per_axis else {}
        self.node("DequantizeLinear", [x, scale, zero] if zero else [x, scale], [out], **attrs)
        return out

    def bias_scale(self, bias: str, s1: str, s2: str) -> str:
        """s1 * s2, the scale of an int32 bias (a constant when both scales are)."""
        if s1 in self.inits and s2 in self.inits:
            product = self.inits[s1].astype(np.float32) * self.inits[s2].astype(np.float32)
            return self.const(bias + "_scale", product.reshape(()) if product.size == 1 else product)
        out = self.fresh(bias + "_scale")
        self.node("Mul", [self.scalar(s1), self.scalar(s2)], [out])
        return out

    def dequantize_bias(self, bias: str, s1: str, s2: str) -> str:
        """DequantizeLinear(bias, s1 * s2, 0): an int32 bias, per output channel (axis 0)
        when either scale is."""
        scale = self.bias_scale(bias, s1, s2)
        zero = self.const(bias + "_zero", np.int32(0))
        return self.dequantize(bias, scale, zero, 0, self.per_axis(s1) or self.per_axis(s2))

    def quantize(self, x: str, scale: str, zero: str, out: str) -> None:
        """QuantizeLinear(x, scale, zero) -> out (ONNX: saturate(round_half_even(x / scale) +
        zero)); the output type is the zero point's."""
        scale, zero = self.scalar(scale), self.scalar(zero)
        self.node("QuantizeLinear", [x, scale, zero] if zero else [x, scale], [out])

    def allows(self, *scales: str) -> bool:
        """Per-axis scales need opset 13; before it only per-tensor rewrites are possible."""
        return self.opset >= _PER_AXIS_OPSET or not any(self.per_axis(s) for s in scales if s)


def _arg(node: Any, i: int) -> str:
    return node.input[i] if len(node.input) > i else ""


def _attrs(node: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name not in drop}


def _qlinear_conv(r: _Rewriter, node: Any) -> bool:
    """QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, B]) (ONNX opset 10):
    Conv of the dequantised x and w (w_scale per output channel: axis 0) with the int32 bias B
    dequantised by scale x_scale * w_scale and zero point 0, then quantised by y_scale, y_zp."""
    x, xs, xz, w, ws, wz, ys, yz = (_arg(node, i) for i in range(8))
    if not r.allows(xs, ws, ys):
        return False
    inputs = [r.dequantize(x, xs, xz, 1), r.dequantize(w, ws, wz, 0)]
    bias = _arg(node, 8)
    if bias:
        inputs.append(r.dequantize_bias(bias, xs, ws))
    y = r.fresh(node.output[0] + "_float")
    r.node("Conv", inputs, [y], **_attrs(node))
    r.quantize(y, ys, yz, node.output[0])
    return True


def _qlinear_matmul(r: _Rewriter, node: Any) -> bool:
    """QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) (ONNX opset 10):
    MatMul of the dequantised a (per row: axis -2) and b (per column: axis -1), quantised."""
    a, as_, az, b, bs, bz, ys, yz = (_arg(node, i) for i in range(8))
    if not r.allows(as_, bs, ys):
        return False
    y = r.fresh(node.output[0] + "_float")
    r.node("MatMul", [r.dequantize(a, as_, az, -2), r.dequantize(b, bs, bz, -1)], [y])
    r.quantize(y, ys, yz, node.output[0])
    return True


def _qgemm(r: _Rewriter, node: Any) -> bool:
    """com.microsoft::QGemm(A, a_scale, a_zp, B, b_scale, b_zp[, C][, y_scale][, y_zp]):
    Gemm (transA, transB) of the dequantised A and B (b_scale per output column: axis 0 when
    transB else 1), plus the int32 C dequantised by a_scale * b_scale and zero point 0; quantised
    by y_scale, y_zp, or float when y_scale is absent. alpha is folded into b_scale (C is
    quantised with alpha * a_scale * b_scale, so it stays as it is); that needs a constant
    b_scale."""
    attrs = _attrs(node)
    alpha = float(attrs.get("alpha", 1.0))
    a, as_, az, b, bs, bz, c, ys, yz = (_arg(node, i) for i in range(9))
    if len(node.output) != 1 or not r.allows(as_, bs, ys):
        return False
    if alpha != 1.0:
        if bs not in r.inits:
            return False
        bs = r.const(bs + "_alpha", (r.inits[bs].astype(np.float32) * np.float32(alpha)))
    inputs = [r.dequantize(a, as_, az, 1), r.dequantize(b, bs, bz, 0 if attrs.get("transB") else 1)]
    if c:
        inputs.append(r.dequantize_bias(c, as_, bs))
    gemm_attrs = {k: attrs[k] for k in ("transA", "transB") if k in attrs}
    if not ys:
        r.node("Gemm", inputs, [node.output[0]], **gemm_attrs)
        return True
    y = r.fresh(node.output[0] + "_float")
    r.node("Gemm", inputs, [y], **gemm_attrs)
    r.quantize(y, ys, yz or az, node.output[0])
    return True


def _qlinear_binary(op: str) -> Callable[[_Rewriter, Any], bool]:
    def rewrite(r: _Rewriter, node: Any) -> bool:
        a, as_, az, b, bs, bz, cs, cz = (_arg(node, i) for i in range(8))
        if r.per_axis(as_) or r.per_axis(bs) or r.per_axis(cs):
            return False  # the contrib operators define per-tensor scales only
        y = r.fresh(node.output[0] + "_float")
        r.node(op, [r.dequantize(a, as_, az, 1), r.dequantize(b, bs, bz, 1)], [y])
        r.quantize(y, cs, cz or az, node.output[0])
        return True

    rewrite.__doc__ = (f"com.microsoft::QLinear{op}(A, A_scale, A_zp, B, B_scale, B_zp, C_scale, "
                       f"C_zp): {op} (with broadcasting) of the dequantised A and B, quantised by "
                       "C_scale, C_zp (per-tensor scales).")
    return rewrite


def _qlinear_global_average_pool(r: _Rewriter, node: Any) -> bool:
    """com.microsoft::QLinearGlobalAveragePool(X, x_scale, x_zp, y_scale, y_zp), channels_last
    = 0 (NCHW) only: GlobalAveragePool of the dequantised X, quantised by y_scale, y_zp."""
    if _attrs(node).get("channels_last", 0):
        return False
    x, xs, xz, ys, yz = (_arg(node, i) for i in range(5))
    if r.per_axis(xs) or r.per_axis(ys):
        return False
    y = r.fresh(node.output[0] + "_float")
    r.node("GlobalAveragePool", [r.dequantize(x, xs, xz, 1)], [y])
    r.quantize(y, ys, yz or xz, node.output[0])
    return True


def _qlinear_unary(op: str, copied: tuple[str, ...] = ()) -> Callable[[_Rewriter, Any], bool]:
    def rewrite(r: _Rewriter, node: Any) -> bool:
        x, xs, xz, ys, yz = (_arg(node, i) for i in range(5))
        if r.per_axis(xs) or r.per_axis(ys):
            return False
        attrs = {k: v for k, v in _attrs(node).items() if k in copied}
        y = r.fresh(node.output[0] + "_float")
        r.node(op, [r.dequantize(x, xs, xz, 1)], [y], **attrs)
        r.quantize(y, ys, yz or xz, node.output[0])
        return True

    rewrite.__doc__ = (f"com.microsoft::QLinear{op}(X, X_scale, X_zp, Y_scale, Y_zp): {op} of "
                       "the dequantised X, quantised by Y_scale, Y_zp (per-tensor scales).")
    return rewrite


def _qlinear_softmax(r: _Rewriter, node: Any) -> bool:
    """com.microsoft::QLinearSoftmax(X, X_scale, X_zp, Y_scale, Y_zp), axis, opset: Softmax of
    the dequantised X. Before opset 13 Softmax flattened from `axis`; that only agrees with
    the opset-13 meaning for the last axis, so other axes stay unrewritten then."""
    attrs = _attrs(node)
    axis = int(attrs.get("axis", -1))
    if int(attrs.get("opset", 13)) < _PER_AXIS_OPSET and axis != -1:
        return False
    return _qlinear_unary("Softmax", ("axis",))(r, node)


def _qlinear_concat(r: _Rewriter, node: Any) -> bool:
    """com.microsoft::QLinearConcat(Y_scale, Y_zp, (X_i, X_i_scale, X_i_zp)...), axis: Concat
    of the dequantised inputs, quantised by Y_scale, Y_zp (per-tensor scales)."""
    ys, yz, *triplets = (_arg(node, i) for i in range(len(node.input)))
    if len(triplets) % 3 or not triplets or r.per_axis(ys) or any(
            r.per_axis(s) for s in triplets[1::3]):
        return False
    inputs = [r.dequantize(x, s, z, 1) for x, s, z in zip(*[iter(triplets)] * 3)]
    y = r.fresh(node.output[0] + "_float")
    r.node("Concat", inputs, [y], axis=int(_attrs(node)["axis"]))
    r.quantize(y, ys, yz or triplets[2], node.output[0])
    return True


def _matmul_integer(r: _Rewriter, node: Any) -> bool:
    """MatMulInteger(A, B[, a_zp][, b_zp]) (ONNX opset 10): int32 MatMul of (A - a_zp) and
    (B - b_zp); written as Cast to int32, Sub, MatMul (exact). Per-tensor zero points only."""
    a, b, az, bz = (_arg(node, i) for i in range(4))
    if any(z and (z not in r.inits or r.inits[z].size != 1) for z in (az, bz)):
        return False
    wide = []
    for x, z in ((a, az), (b, bz)):
        x32 = r.fresh(x + "_int32")
        r.node("Cast", [x], [x32], to=6)  # TensorProto.INT32
        if z and int(r.inits[z].reshape(-1)[0]) != 0:
            shifted = r.fresh(x + "_minus_zp")
            zero = r.const(z + "_int32", r.inits[z].reshape(()).astype(np.int32))
            r.node("Sub", [x32, zero], [shifted])
            x32 = shifted
        wide.append(x32)
    r.node("MatMul", wide, [node.output[0]])
    return True


# (domain, op_type) -> rewrite; "" is the default ONNX domain
REWRITES: dict[tuple[str, str], Callable[[_Rewriter, Any], bool]] = {
    ("", "QLinearConv"): _qlinear_conv,
    ("", "QLinearMatMul"): _qlinear_matmul,
    ("", "MatMulInteger"): _matmul_integer,
    (_MS, "QGemm"): _qgemm,
    (_MS, "QLinearAdd"): _qlinear_binary("Add"),
    (_MS, "QLinearMul"): _qlinear_binary("Mul"),
    (_MS, "QLinearGlobalAveragePool"): _qlinear_global_average_pool,
    (_MS, "QLinearSigmoid"): _qlinear_unary("Sigmoid"),
    (_MS, "QLinearLeakyRelu"): _qlinear_unary("LeakyRelu", ("alpha",)),
    (_MS, "QLinearSoftmax"): _qlinear_softmax,
    (_MS, "QLinearConcat"): _qlinear_concat,
}


def rewrite_qoperators(model: Any) -> Any:
    """The model with every QOperator node we can rewrite replaced by its QDQ form (a copy;
    `model` itself is returned unchanged when there is nothing to rewrite)."""
    import onnx

    def key(node: Any) -> tuple[str, str]:
        return ("" if node.domain == "ai.onnx" else node.domain, node.op_type)

    if not any(key(n) in REWRITES for n in model.graph.node):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    r = _Rewriter(out)
    nodes = []
    for node in out.graph.node:
        rewrite = REWRITES.get(key(node))
        r.nodes = []
        if rewrite is not None and rewrite(r, node):
            nodes.extend(r.nodes)
        else:
            nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(r.new_inits)
    return out
