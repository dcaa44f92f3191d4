"""The golden model: an exact int64 numpy interpreter of `qnn` IR on xDSL's interpreter.

Every op is evaluated in int64 with the semantics its docstring in `qnn.py` states;
values that leave the declared types (an si32 accumulator, a requant intermediate
wider than `intermediate_bits`) raise, because the generated C would overflow there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, Signedness
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    ReturnedValues,
    TerminatorValue,
    impl,
    impl_terminator,
    register_impls,
)
from xdsl.interpreters.func import FuncFunctions

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.ir_utils import op_where
from dory_mlir.network_values import constant_array, input_names  # noqa: F401 (re-exported)


def check_fits(op: Any, values: np.ndarray, lo: int, hi: int, what: str) -> None:
    if values.size and (values.min() < lo or values.max() > hi):
        raise DoryError(
            f"{what} reaches [{values.min()}, {values.max()}], outside [{lo}, {hi}]", op_where(op)
        )


def channel_broadcast(vector: np.ndarray, rank: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast along axis 1 of a rank-`rank` tensor."""
    return vector.reshape((1, -1) + (1,) * (rank - 2))


def requant_broadcast(constant: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A requant mul/add shaped to broadcast over its N×C(×H×W) input: per channel [C], per tensor [1],
    per row [H, C] / [H, 1], or per group of rows [G, 1] (row h uses entry h // (H / G); see `qnn.RequantOp`)."""
    if constant.ndim == 2:
        rows = np.repeat(constant, shape[2] // constant.shape[0], axis=0)  # [H, C] or [H, 1]
        return rows.T.reshape(1, rows.shape[1], rows.shape[0], 1)
    return channel_broadcast(constant, len(shape))


def windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int]):
    """Yields (i, j, strided view) for every kernel offset of a padded NCHW tensor."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, strides, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]


def pad_hw(x: np.ndarray, pads: tuple[int, int, int, int], value: int) -> np.ndarray:
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


@register_impls
class QnnFunctions(InterpreterFunctions):
    """Implementations of the `qnn` ops; records every layer's output by index."""

    def __init__(self) -> None:
        self.layer_outputs: dict[int, np.ndarray] = {}

    @impl(qnn.ConstantOp)
    def run_constant(self, interpreter: Interpreter, op: qnn.ConstantOp, args: tuple[Any, ...]):
        return (constant_array(op),)

    @impl(qnn.ConvOp)
    def run_conv(self, interpreter: Interpreter, op: qnn.ConvOp, args: tuple[Any, ...]):
        x, w = args[0], args[1]
        groups = op.groups.value.data
        n, c_out, ho, wo = qnn.shape_of(op.output)
        xp = pad_hw(x, op.pads_tlbr(), op.padding_value())
        c_in = x.shape[1]
        wg = w.reshape(groups, c_out // groups, c_in // groups, *w.shape[2:])
        acc = np.zeros((n, groups, c_out // groups, ho, wo), dtype=np.int64)
        dh, dw = op.dilations.get_values()
        for i, j, view in windows(xp, op.kernel_hw(), op.stride_hw(), (dh, dw), (ho, wo)):  # type: ignore[arg-type]
            patch = view.reshape(n, groups, c_in // groups, ho, wo)
            acc += np.einsum("ngchw,goc->ngohw", patch, wg[:, :, :, i, j])
        acc = acc.reshape(n, c_out, ho, wo)
        if len(args) > 2:
            acc += channel_broadcast(args[2], 4)
        check_fits(op, acc, -(2**31), 2**31 - 1, "the int32 accumulator")
        return (acc,)

    @impl(qnn.LinearOp)
    def run_linear(self, interpreter: Interpreter, op: qnn.LinearOp, args: tuple[Any, ...]):
        acc = args[0] @ args[1].T
        if len(args) > 2:
            acc = acc + args[2].reshape(1, -1)
        check_fits(op, acc, -(2**31), 2**31 - 1, "the int32 accumulator")
        return (acc,)

    @impl(qnn.MatMulOp)
    def run_matmul(self, interpreter: Interpreter, op: qnn.MatMulOp, args: tuple[Any, ...]):
        m, k, n = op.dims()
        lhs_batch, rhs_batch = tuple(op.lhs_batch.get_values()), tuple(op.rhs_batch.get_values())
        # IR 1×C×R×1 → ONNX [*batch, rows, C] (tensor_layout.py), the product, and back.
        a = args[0].reshape(k, -1).T.reshape(*lhs_batch, m, k)
        b = args[1].reshape(n, -1).T.reshape(*rhs_batch, k, n)
        acc = np.matmul(a, b).reshape(-1, n).T.reshape(qnn.shape_of(op.output))
        check_fits(op, acc, -(2**31), 2**31 - 1, "the int32 accumulator")
        return (acc,)

    @impl(qnn.RequantOp)
    def run_requant(self, interpreter: Interpreter, op: qnn.RequantOp, args: tuple[Any, ...]):
        x, mul, add = args
        rank = x.ndim
        bits = op.intermediate_bits.value.data
        limit = 2 ** (bits - 1)
        # Python-int object arithmetic where 64 bits may not hold the product exactly.
        wide = object if bits == 64 else np.int64
        t = x.astype(wide) * requant_broadcast(mul.astype(wide), x.shape) + requant_broadcast(add.astype(wide), x.shape)
        check_fits(op, np.asarray(t), -limit, limit - 1, f"the {bits}-bit intermediate x·mul + add")
        t = t * op.scale.value.data
        check_fits(op, np.asarray(t), -limit, limit - 1, f"the {bits}-bit intermediate (x·mul + add)·scale")
        divisor = op.divisor.value.data
        if op.rounding.data == qnn.Rounding.TRUNC:
            y = np.sign(t) * (np.abs(t) // divisor)
        else:
            y = t // divisor
        y = np.clip(y, op.min.value.data, op.max.value.data).astype(np.int64)
        return (y,)

    @impl(qnn.AddOp)
    def run_add(self, interpreter: Interpreter, op: qnn.AddOp, args: tuple[Any, ...]):
        total = np.zeros(args[0].shape, dtype=np.int64)
        for x, m, a, s in zip(args, op.mul.get_values(), op.add.get_values(), op.shift.get_values(), strict=True):
            total += (x * m + a) >> s  # arithmetic shift = floor division by 2^s
        check_fits(op, total, -(2**31), 2**31 - 1, "the int32 sum")
        return (total,)

    @impl(qnn.MaxPoolOp)
    def run_max_pool(self, interpreter: Interpreter, op: qnn.MaxPoolOp, args: tuple[Any, ...]):
        lowest = np.iinfo(np.int64).min  # padding never wins
        xp = pad_hw(args[0], op.pads_tlbr(), lowest)
        _, _, ho, wo = qnn.shape_of(op.output)
        out = np.full((xp.shape[0], xp.shape[1], ho, wo), lowest, dtype=np.int64)
        for _, _, view in windows(xp, op.kernel_hw(), op.stride_hw(), (1, 1), (ho, wo)):
            np.maximum(out, view, out=out)
        return (out,)

    @impl(qnn.SoftmaxOp)
    def run_softmax(self, interpreter: Interpreter, op: qnn.SoftmaxOp, args: tuple[Any, ...]):
        x = args[0].astype(np.int64)  # N×K×R×1: the features of a row are the channels of a pixel
        e = qnn.softmax_exponentials(x - x.max(axis=1, keepdims=True), *op.coefficients())
        return (e * (op.n_levels.value.data - 1) // e.sum(axis=1, keepdims=True),)

    @impl(qnn.RMSNormOp)
    def run_rms_norm(self, interpreter: Interpreter, op: qnn.RMSNormOp, args: tuple[Any, ...]):
        lo, hi = qnn.int_range(qnn.element_type(op.output))
        return (np.clip(qnn.rms_norm_reference(args[0].astype(np.int64), args[1], op.shift.value.data), lo, hi),)

    @impl(qnn.ITAMaxOp)
    def run_ita_max(self, interpreter: Interpreter, op: qnn.ITAMaxOp, args: tuple[Any, ...]):
        return (op.values(args[0].astype(np.int64)),)  # N×K×R×1: a row's features are a pixel's channels

    @impl(qnn.LayerNormOp)
    def run_layer_norm(self, interpreter: Interpreter, op: qnn.LayerNormOp, args: tuple[Any, ...]):
        lo, hi = qnn.int_range(qnn.element_type(op.output))
        x = args[0].astype(np.int64)
        return (np.clip(qnn.layer_norm_reference(x, args[1], args[2], op.shift.value.data), lo, hi),)

    @impl(qnn.HardswishOp)
    def run_hardswish(self, interpreter: Interpreter, op: qnn.HardswishOp, args: tuple[Any, ...]):
        return (op.values(args[0].astype(np.int64)),)

    @impl(qnn.GeluOp)
    def run_gelu(self, interpreter: Interpreter, op: qnn.GeluOp, args: tuple[Any, ...]):
        return (op.values(args[0].astype(np.int64)),)

    @impl(qnn.SumPoolOp)
    def run_sum_pool(self, interpreter: Interpreter, op: qnn.SumPoolOp, args: tuple[Any, ...]):
        xp = pad_hw(args[0], op.pads_tlbr(), 0)
        _, _, ho, wo = qnn.shape_of(op.output)
        out = np.zeros((xp.shape[0], xp.shape[1], ho, wo), dtype=np.int64)
        for _, _, view in windows(xp, op.kernel_hw(), op.stride_hw(), (1, 1), (ho, wo)):
            out += view
        return (out,)

    @impl(qnn.PadOp)
    def run_pad(self, interpreter: Interpreter, op: qnn.PadOp, args: tuple[Any, ...]):
        return (pad_hw(args[0], op.pads_tlbr(), op.value.value.data),)

    @impl(qnn.ReshapeOp)
    def run_reshape(self, interpreter: Interpreter, op: qnn.ReshapeOp, args: tuple[Any, ...]):
        if op.rows is not None:
            return (qnn.rows_of(qnn.row_major_bytes(args[0]), qnn.shape_of(op.output)[1]),)
        return (args[0].reshape(qnn.shape_of(op.output)),)

    @impl(qnn.TransposeOp)
    def run_transpose(self, interpreter: Interpreter, op: qnn.TransposeOp, args: tuple[Any, ...]):
        return (op.values(args[0]),)

    @impl(qnn.LayerOp)
    def run_layer(self, interpreter: Interpreter, op: qnn.LayerOp, args: tuple[Any, ...]):
        (result,) = interpreter.run_ssacfg_region(op.body, args, f"layer {op.index.value.data}")
        self.layer_outputs[op.index.value.data] = result
        return (result,)

    @impl_terminator(qnn.YieldOp)
    def run_yield(
        self, interpreter: Interpreter, op: qnn.YieldOp, args: tuple[Any, ...]
    ) -> tuple[TerminatorValue, tuple[Any, ...]]:
        return ReturnedValues(args), ()


def network_function(module: ModuleOp) -> func.FuncOp:
    functions = [op for op in module.ops if isinstance(op, func.FuncOp)]
    if len(functions) != 1:
        raise DoryError(f"expected one network function in the module, found {len(functions)}")
    return functions[0]


def run_network(
    module: ModuleOp, x: np.ndarray | Sequence[np.ndarray], functions: QnnFunctions | None = None
) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
    """Runs the network on its NCHW inputs (one array, or one per network input, in order);
    returns its outputs and every layer's output.

    `functions` replaces the op implementations (e.g. a subclass that feeds each layer another
    model's inputs)."""
    function = network_function(module)
    arg_types = function.function_type.inputs.data
    xs = [x] if isinstance(x, np.ndarray) else list(x)
    if len(xs) != len(arg_types):
        raise DoryError(f"{len(xs)} input tensors given, the network has {len(arg_types)} inputs")
    names = input_names(len(arg_types))
    for name, value, arg_type in zip(names, xs, arg_types, strict=True):
        shape = qnn.shape_of(arg_type)
        if tuple(value.shape) != shape:
            raise DoryError(f"{name} has shape {list(value.shape)}, the network needs {list(shape)}")
        lo, hi = qnn.int_range(qnn.element_type(arg_type))
        if value.size and (value.min() < lo or value.max() > hi):
            raise DoryError(f"{name} values reach [{value.min()}, {value.max()}], outside the input type's [{lo}, {hi}]")
    functions = QnnFunctions() if functions is None else functions
    interpreter = Interpreter(module)
    interpreter.register_implementations(functions)
    interpreter.register_implementations(FuncFunctions())
    outputs = interpreter.call_op(function.sym_name.data, tuple(np.asarray(v).astype(np.int64) for v in xs))
    return list(outputs), functions.layer_outputs
