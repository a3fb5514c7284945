"""Our layer over TVM 0.27's Relax TFLite converter: constants prepared at compile time
(float16 -> float32, sparse -> dense, dynamic-range int8 weights), and converters whose
upstream form is broken or wasteful replaced.

Imported lazily (it imports TVM): only `import_tflite` uses it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax
from tvm.relax.frontend.tflite.tflite_frontend import (OperatorConverter, get_pad_value,
                                                       get_tensor_name)

from ..errors import UnsupportedError
from ..names import record_raw_name, sanitize
from ..relax_shapes import static_shape
from . import custom_ops
from . import tflite_hybrid as hybrid
from .tflite_sparse import dense_constant

CUSTOM = "TVMC_CUSTOM"  # convert_map key of the custom operators we compile
FLOAT16 = 1
FLOAT32 = 0
_NUMPY = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16,
          9: np.int8}


def constant_value(model: Any, tensor: Any) -> np.ndarray | None:
    """The dense value of a constant tensor (sparse ones densified), or None."""
    buffer = model.Buffers(tensor.Buffer())
    if buffer is None or not buffer.DataLength() or tensor.Type() not in _NUMPY:
        return None
    dtype = np.dtype(_NUMPY[tensor.Type()]).name
    return dense_constant(tensor, buffer.DataAsNumpy().tobytes(), dtype)


class Converter(OperatorConverter):  # type: ignore[misc]
    """`from_tflite(..., op_converter=Converter)`. `hybrid_weights`: indices of the int8
    weight tensors of dynamic-range operators, computed as LiteRT's hybrid kernels (see
    tflite_hybrid). `builders`: every converter (also a branch's or loop body's) adds the
    BlockBuilder it fills (relax_blocks.blocks_ended_on_error)."""

    def __init__(self, model: Any, subgraph: Any, exp_tab: Any, ctx: Any, *args: Any,
                 hybrid_weights: frozenset[int] = frozenset(),
                 custom_ops: Any = None, module_name: str = "default",
                 custom_calls: dict | None = None, state: Any = None,
                 raw_names: dict[str, str | None] | None = None,
                 builders: list[Any] | None = None, **kwargs: Any) -> None:
        self.hybrid_weights = hybrid_weights
        # tflite_float_state.StateValues: the module's persistent values (None: stateless)
        self.state = state
        self.custom_ops = dict(custom_ops or {})
        self.module_name = module_name
        # filled while converting: the user operators the module calls, by name
        self.custom_calls = custom_calls if custom_calls is not None else {}
        # filled while converting: layer identifier -> the TFLite tensor's own name
        self.raw_names = raw_names if raw_names is not None else {}
        super().__init__(model, subgraph, exp_tab, ctx, *args, **kwargs)
        # TVM converts an IF's branches and a WHILE's condition and body with converters it
        # makes itself (`type(self)(model, subgraph, ..., conversion_state)`): they take the
        # main converter's user operators and names from the state they share
        shared = self.conversion_state.setdefault("tvmc", {
            "custom_ops": self.custom_ops, "module_name": module_name,
            "custom_calls": self.custom_calls, "raw_names": self.raw_names,
            "builders": builders if builders is not None else []})
        self.custom_ops, self.module_name = shared["custom_ops"], shared["module_name"]
        self.custom_calls, self.raw_names = shared["custom_calls"], shared["raw_names"]
        # a subgraph's converter fills a builder of its own: its blocks are ended too when
        # the conversion fails (relax_blocks)
        shared["builders"].append(self.bb)
        self.convert_map[CUSTOM] = self._convert_custom
        self._name_results(exp_tab)

    def get_op_code_str(self, op: Any) -> str:
        code = self._custom_code(op)
        if code is not None and (code in self.custom_ops or code in custom_ops.BUILTIN):
            return CUSTOM
        return super().get_op_code_str(op)

    def _custom_code(self, op: Any) -> str | None:
        from tflite.BuiltinOperator import BuiltinOperator

        code = self.model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != BuiltinOperator.CUSTOM:
            return None
        return (code.CustomCode() or b"").decode(errors="replace")

    def get_tensor_value(self, tensor_wrapper: Any, is_sparse: bool = False) -> Any:
        """A constant with no elements (shape [0]: RESHAPE to a scalar) may leave its
        buffer's data vector out altogether, which TVM's reader takes for bytes."""
        shape, _ = self._spec(tensor_wrapper)
        if 0 in shape and not tensor_wrapper.buffer.DataLength():
            return np.zeros(shape, self.get_tensor_type_as_numpy(tensor_wrapper))
        return super().get_tensor_value(tensor_wrapper, is_sparse)

    def convert_batch_matmul(self, op: Any) -> Any:
        """TVM reads both operands as earlier results; a constant one (the DFT and mel
        filter-bank matrices of openWakeWord's melspectrogram .tflite) is bound first."""
        for tensor in self.get_input_tensors(op):
            if not self.has_expr(tensor.tensor_idx):
                # normalised: TVM reads the operand's type (`.ty.shape`)
                self.exp_tab.set_expr(get_tensor_name(self.subgraph, tensor.tensor_idx),
                                      self.bb.normalize(self.get_tensor_expr(tensor)))
        return super().convert_batch_matmul(op)

    def flatten_to_nd(self, x: Any, nd: int = 3) -> Any:
        """TVM's BATCH_MATMUL passes an operand it has just broadcast (a rank-2 constant
        against a rank-4 activation), whose type is not known until it is normalised."""
        return super().flatten_to_nd(self.bb.normalize(x), nd)

    def _spec(self, wrapper: Any) -> tuple[tuple[int, ...], str]:
        shape = tuple(int(d) for d in wrapper.tensor.ShapeAsNumpy())
        return shape, self.get_tensor_type_str(wrapper.tensor.Type())

    def _name_results(self, exp_tab: Any) -> None:
        """An operator's result is bound to a variable named after the TFLite tensor it
        writes (TVM's importer leaves `lv`), an identifier; `raw_names` maps it back to the
        tensor's own text, which the C runner's layer comments and `tvmc report` show."""
        from tvm import relax

        set_expr = exp_tab.set_expr
        builder = self.bb
        raw_names = self.raw_names

        def named(name: str, expr: Any, *args: Any, **kwargs: Any) -> Any:
            if (isinstance(expr, relax.Call) and isinstance(name, str) and name
                    and isinstance(getattr(expr, "ty", None), relax.TensorType)):
                # an identifier: TVM derives C names of temporaries from it (`<name>_red`)
                identifier = sanitize(name)
                record_raw_name(raw_names, identifier, name)
                expr = builder.emit(expr, name_hint=identifier)
            return set_expr(name, expr, *args, **kwargs)

        exp_tab.set_expr = named

    def _convert_custom(self, op: Any) -> Any:
        """A user operator: one call of its C function; a built-in: its Relax form."""
        name = self._custom_code(op)
        ins = [t for t in self.get_input_tensors(op) if t.tensor_idx >= 0]
        outs = self.get_output_tensors(op)
        args = [self.get_tensor_expr(t) for t in ins]
        if name not in self.custom_ops:  # built-in
            options = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
            out_shape = self._spec(outs[0])[0]
            func = custom_ops.convolution2d_transpose_bias(
                self._spec(ins[0])[0], self._spec(ins[1])[0], out_shape, options)
            gvar = self.add_function(func, "conv2d_transpose_bias")
            return relax.call_tir(gvar, args, relax.TensorType(list(out_shape), "float32"))
        in_specs = [self._spec(t) for t in ins]
        out_specs = custom_ops.output_specs(self.custom_ops[name], in_specs,
                                            [self._spec(t) for t in outs])
        gvar, result = custom_ops.add_call(self.custom_calls, self.module_name, name, in_specs,
                                           out_specs, self.add_function)
        return relax.call_tir(gvar, args, result if len(result) > 1 else result[0])

    def add_function(self, func: Any, name: str) -> Any:
        """`func` added to the module: through the module's builder, since a branch or loop
        subgraph's converter builds into a builder of its own that keeps only its function."""
        return self.conversion_state["module_builder"].add_func(func, name)

    def convert_if(self, op: Any) -> Any:
        """IF on a constant condition: a call of the branch it selects (the other branch is
        never converted); otherwise TVM's If over two branch functions, on which the C
        runner branches (pipeline/control.py)."""
        from tflite.IfOptions import IfOptions

        inputs = self.get_input_tensors(op)
        value = constant_value(self.model, inputs[0].tensor) if inputs else None
        if value is None or value.size != 1:
            return super().convert_if(op)
        options = self._get_builtin_options(op, IfOptions)
        index = int(options.ThenSubgraphIndex() if value.reshape(-1)[0]
                    else options.ElseSubgraphIndex())
        self._check_subgraph_interface(index, "IF", input_tensors=inputs[1:],
                                       output_tensors=self.get_output_tensors(op))
        branch = self._lower_subgraph_to_function(index, f"tflite_if_branch_subgraph_{index}",
                                                  op_name="IF")
        return relax.Call(branch, [self.get_tensor_expr(t) for t in inputs[1:]])

    def check_unsupported_ops(self) -> None:
        # our own check (frontends/tflite.py) ran before, with the features we add
        saved = self.get_tensors
        self.get_tensors = self._without_hybrid_quantisation
        try:
            super().check_unsupported_ops()
        finally:
            self.get_tensors = saved

    def _without_hybrid_quantisation(self, indices: Any) -> list[Any]:
        wrappers = OperatorConverter.get_tensors(self, indices)
        for wrapper in wrappers:
            if wrapper.tensor_idx in self.hybrid_weights:
                wrapper.qnn_params = None
        return wrappers

    def get_tensors(self, tensors_idx_list: Any) -> list[Any]:
        return self._without_hybrid_quantisation(tensors_idx_list)

    def convert_op_to_relax(self) -> None:
        self._prepare_constants()
        super().convert_op_to_relax()

    def _prepare_constants(self) -> None:
        """float16 and sparse constants become float32 (or dense) Relax constants before any
        operator reads them."""
        for index in range(self.subgraph.TensorsLength()):
            tensor = self.subgraph.Tensors(index)
            if tensor.Type() != FLOAT16 and tensor.Sparsity() is None:
                continue
            value = constant_value(self.model, tensor)
            if value is None:
                continue
            if value.dtype == np.float16:
                value = value.astype(np.float32)  # exact: every float16 is a float32
            name = get_tensor_name(self.subgraph, index)
            self.exp_tab.set_expr(name, self.exp_tab.new_const(value, dtype=value.dtype.name),
                                  force_override=True)

    def convert_dequantize(self, op: Any) -> Any:
        """A float16 (or densified) constant is already float32: DEQUANTIZE is a no-op."""
        (source,) = self.get_input_tensors(op)
        if source.tensor.Type() == FLOAT16 and self.has_expr(source.tensor_idx):
            return self.get_expr(source.tensor_idx)
        return super().convert_dequantize(op)

    def convert_densify(self, op: Any) -> Any:
        """The dense value was made at compile time (`_prepare_constants`)."""
        (source,) = self.get_input_tensors(op)
        return self.get_tensor_expr(source)

    def convert_expand_dims(self, op: Any) -> Any:
        """Upstream calls `expand_dims(x, axis, 1)` (an old signature: TypeError)."""
        data, axis_tensor = self.get_input_tensors(op)
        axis = int(np.asarray(self.get_tensor_value(axis_tensor)).reshape(-1)[0])
        rank = len(data.tensor.ShapeAsNumpy()) if data.tensor.ShapeLength() else 0
        if axis < 0:
            axis += rank + 1
        return relax.op.expand_dims(self.get_tensor_expr(data), [axis])

    # ------------------------------------------------------------------ persistent state

    def _variable_key(self, op: Any) -> str:
        (handle,) = self.get_input_tensors(op)[:1]
        if handle.tensor_idx not in self.state.handles:
            raise UnsupportedError(f"{self.get_op_code_str(op)} uses a handle no VAR_HANDLE "
                                   "of the main graph made")
        return self.state.handles[handle.tensor_idx]

    def convert_var_handle(self, op: Any) -> Any:
        """Handles resolve by name to the states (StateValues.handles)."""
        return None if self.state is not None else super().convert_var_handle(op)

    def convert_call_once(self, op: Any) -> Any:
        """The initialisation is folded into the states' initial values."""
        return None if self.state is not None else super().convert_call_once(op)

    def convert_read_variable(self, op: Any) -> Any:
        if self.state is None:
            return super().convert_read_variable(op)
        out = self.get_output_tensors(op)[0]
        shape = [int(d) for d in out.tensor.ShapeAsNumpy()] if out.tensor.ShapeLength() else []
        return self.state.read(self._variable_key(op), shape)

    def convert_assign_variable(self, op: Any) -> Any:
        if self.state is None:
            return super().convert_assign_variable(op)
        value = self.get_input_tensors(op)[1]
        self.state.write(self._variable_key(op), self.get_tensor_expr(value))
        return None

    def convert_unidirectional_sequence_lstm(self, op: Any) -> Any:
        """Float, with an input gate or without (CIFG), on our LSTM kernel
        (tflite_recurrent.py), its state carried across invokes."""
        from .tflite_recurrent import convert_sequence_lstm

        if self.is_quantized(op):
            return super().convert_unidirectional_sequence_lstm(op)
        out = self.get_output_tensors(op)[0]
        return convert_sequence_lstm(self, op, get_tensor_name(self.subgraph, out.tensor_idx))

    def convert_svdf(self, op: Any) -> Any:
        """Float SVDF with its state carried across invokes (tflite_recurrent.py); TVM's
        converter read the state tensor as a constant and never updated it."""
        from .tflite_recurrent import convert_svdf

        if self.is_quantized(op):
            return super().convert_svdf(op)
        out = self.get_output_tensors(op)[0]
        return convert_svdf(self, op, get_tensor_name(self.subgraph, out.tensor_idx))

    def convert_reshape(self, op: Any) -> Any:
        """A target shape computed in the graph (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, as
        the TF converter writes a batch-preserving reshape) is a Relax call upstream cannot
        use; our shapes are static, so the output tensor's declared shape is the target."""
        tensors = self.get_input_tensors(op)
        if len(tensors) == 2 and self.has_expr(tensors[1].tensor_idx):
            data = self.get_tensor_expr(tensors[0])
            out = self.get_output_tensors(op)[0].tensor
            shape = [int(d) for d in out.ShapeAsNumpy()] if out.ShapeLength() else []
            have = static_shape(data)
            if have is not None and int(np.prod(have)) == int(np.prod(shape)):
                return relax.op.reshape(data, shape)
        return super().convert_reshape(op)

    def convert_prelu(self, op: Any) -> Any:
        """x >= 0 ? x : alpha * x with alpha in its own (broadcastable) shape: upstream
        broadcasts alpha to the whole activation, and that array became a constant."""
        data, alpha = self.get_input_tensors(op)
        x = self.get_tensor_expr(data)
        a = self.get_tensor_expr(alpha)
        zero = relax.const(0.0, "float32")
        return relax.op.where(relax.op.greater_equal(x, zero), x, relax.op.multiply(x, a))

    # ------------------------------------------------------------------ hybrid operators

    def _is_hybrid(self, op: Any) -> bool:
        inputs = [int(i) for i in op.InputsAsNumpy()]
        return len(inputs) > 1 and inputs[1] in self.hybrid_weights

    def _hybrid_parts(self, op: Any) -> tuple[Any, np.ndarray, Any, relax.Expr | None]:
        """(input wrapper, int8 weight value, weight tensor, float bias expr or None)."""
        tensors = self.get_input_tensors(op)
        weight = tensors[1]
        value = constant_value(self.model, weight.tensor)
        if np.any(hybrid.weight_zero_points(weight.tensor) != 0) or value.dtype != np.int8:
            raise NotImplementedError("dynamic-range weights with a zero point or uint8")
        bias = None
        if len(tensors) > 2 and tensors[2].tensor_idx >= 0:
            bias = self.get_tensor_expr(tensors[2])
        return tensors[0], value, weight.tensor, bias

    def convert_conv(self, op: Any, conv_type: str) -> Any:
        if not self._is_hybrid(op):
            return super().convert_conv(op, conv_type)
        from tflite.Conv2DOptions import Conv2DOptions
        from tflite.DepthwiseConv2DOptions import DepthwiseConv2DOptions
        from tflite.Padding import Padding

        data, weight, weight_tensor, bias = self._hybrid_parts(op)
        options = (Conv2DOptions if conv_type == "conv2d" else DepthwiseConv2DOptions)()
        raw = op.BuiltinOptions()
        options.Init(raw.Bytes, raw.Pos)
        _, in_h, in_w, in_c = [int(d) for d in data.tensor.ShapeAsNumpy()]
        scales = hybrid.weight_scales(weight_tensor)
        params: dict[str, Any] = {
            "strides": [options.StrideH(), options.StrideW()],
            "dilation": [options.DilationHFactor(), options.DilationWFactor()],
            "data_layout": "NHWC", "padding": [0, 0, 0, 0]}
        if conv_type == "conv2d":
            out_c, k_h, k_w, w_c = weight.shape
            params["kernel_layout"] = "HWIO"
            params["groups"] = in_c // w_c
            kernel = weight.transpose(1, 2, 3, 0)
            per_channel = params["groups"] != 1 or bool(np.any(scales != scales[0]))
        else:
            _, k_h, k_w, out_c = weight.shape
            if in_c == 1:  # one input channel: an ordinary convolution
                params.update(kernel_layout="HWIO", groups=1)
                kernel = weight.reshape(k_h, k_w, 1, out_c)
            else:
                params.update(kernel_layout="HWOI", groups=in_c)
                kernel = weight.reshape(k_h, k_w, out_c, 1)
            per_channel = True
        if scales.size not in (1, out_c):
            raise NotImplementedError(f"{scales.size} weight scales for {out_c} channels")
        if per_channel and scales.size == 1:
            scales = np.repeat(scales, out_c)
        if options.Padding() == Padding.SAME:
            dh, dw = params["dilation"]
            top, bottom = get_pad_value(in_h, dh * (k_h - 1) + 1, params["strides"][0])
            left, right = get_pad_value(in_w, dw * (k_w - 1) + 1, params["strides"][1])
            params["padding"] = [top, left, bottom, right]
        out = hybrid.conv2d(self.get_tensor_expr(data), np.ascontiguousarray(kernel), scales,
                            bias, params, per_channel)
        return self.convert_fused_activation_function(out, options.FusedActivationFunction())

    def convert_fully_connected(self, op: Any) -> Any:
        if not self._is_hybrid(op):
            return super().convert_fully_connected(op)
        from tflite.FullyConnectedOptions import FullyConnectedOptions

        data, weight, weight_tensor, bias = self._hybrid_parts(op)
        options = FullyConnectedOptions()
        raw = op.BuiltinOptions()
        if raw is not None:
            options.Init(raw.Bytes, raw.Pos)
        units, depth = weight.shape
        x = relax.op.reshape(self.get_tensor_expr(data), [-1, depth])
        asymmetric = raw is not None and bool(options.AsymmetricQuantizeInputs())
        out = hybrid.fully_connected(x, weight, hybrid.weight_scales(weight_tensor), bias,
                                     asymmetric)
        if raw is not None and options.KeepNumDims():
            shape = [int(d) for d in data.tensor.ShapeAsNumpy()][:-1] + [units]
            out = relax.op.reshape(out, shape)
        activation = options.FusedActivationFunction() if raw is not None else 0
        return self.convert_fused_activation_function(out, activation)
