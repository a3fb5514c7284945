"""onnxruntime's fused contrib operators back into standard ONNX.

A model saved after onnxruntime's graph optimisations (`SessionOptions.optimized_model_filepath`,
as fasr's MarbleNet VAD ships) holds `com.microsoft.FusedConv`: a Conv, an optional residual
`Z` added to it, then one activation. Each is written back as Conv [-> Add Z] -> activation,
which the rest of the importer takes like any exported model. A FusedConv whose activation
onnxruntime itself does not fuse is left alone (it stays a custom operator the user may
implement).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .onnx_attributes import attribute_text, node_attrs

CONV_ATTRIBUTES = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
# onnxruntime's FusedConv activations and how many `activation_params` each reads
ACTIVATIONS = {"Relu": 0, "Tanh": 0, "Sigmoid": 0, "LeakyRelu": 1, "HardSigmoid": 2,
               "Clip": 2}


def expand_fused_conv(model: Any, implemented: Any = ()) -> Any:
    """`model` with every com.microsoft.FusedConv written back as standard nodes (a copy;
    `model` itself when there is none). `implemented`: custom operators the user compiles
    (`DOMAIN.OP` or `OP`), left as they are."""
    import onnx

    if "com.microsoft.FusedConv" in implemented or "FusedConv" in implemented:
        return model
    if not any(_expandable(n) for n in model.graph.node):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes, initializers = [], []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    for node in out.graph.node:
        nodes += _expand(node, initializers, opset) if _expandable(node) else [node]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(initializers)
    return out


def _expandable(node: Any) -> bool:
    return (node.domain == "com.microsoft" and node.op_type == "FusedConv"
            and attribute_text(node_attrs(node).get("activation", b"")) in ACTIVATIONS
            and len(node_attrs(node).get("activation_params", []))
            >= ACTIVATIONS[attribute_text(node_attrs(node).get("activation", b""))])


def _expand(node: Any, initializers: list, opset: int) -> list:
    from onnx import helper, numpy_helper

    base = node.name or node.output[0]
    conv_attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute
                  if a.name in CONV_ATTRIBUTES}
    conv_out = f"{base}/conv"
    inputs = list(node.input[:3])
    while inputs and not inputs[-1]:
        inputs.pop()
    nodes = [helper.make_node("Conv", inputs, [conv_out], name=f"{base}/conv", **conv_attrs)]
    if len(node.input) > 3 and node.input[3]:  # Z: added before the activation
        summed = f"{base}/sum"
        nodes.append(helper.make_node("Add", [conv_out, node.input[3]], [summed],
                                      name=f"{base}/add"))
        conv_out = summed
    activation = attribute_text(node_attrs(node).get("activation", b""))
    params = [float(p) for p in node_attrs(node).get("activation_params", [])]
    attrs: dict[str, Any] = {}
    act_inputs = [conv_out]
    if activation == "LeakyRelu":
        attrs = {"alpha": params[0]}
    elif activation == "HardSigmoid":
        attrs = {"alpha": params[0], "beta": params[1]}
    elif activation == "Clip" and opset < 11:  # before opset 11 the bounds are attributes
        attrs = {"min": params[0], "max": params[1]}
    elif activation == "Clip":
        for bound, value in (("min", params[0]), ("max", params[1])):
            initializers.append(numpy_helper.from_array(np.asarray(value, np.float32),
                                                        f"{base}/clip_{bound}"))
            act_inputs.append(f"{base}/clip_{bound}")
    nodes.append(helper.make_node(activation, act_inputs, list(node.output[:1]),
                                  name=f"{base}/{activation.lower()}", **attrs))
    return nodes
