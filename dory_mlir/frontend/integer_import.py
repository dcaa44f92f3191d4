"""ONNX → `qnn` import of integer-valued quantized networks in NEMO's and Quantlab's spelling.

These exporters write the integer arithmetic itself as float ONNX ops: chains of Mul/Add/Div/Sub/
Floor/Cast/Clip/Relu around each conv/linear/pool (Quantlab's requantizing Add with `in1_*` / `out_*`
attributes). The chains are folded exactly (`requant_chain.py`) and emitted by the base importer
(`importer.py`) as `qnn.requant`. QuantLib/Deeploy exports use the same ops and more
(`quantlib_import.py`).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import onnx
from xdsl.dialects.builtin import TensorType

from dory_mlir.dialects import qnn
from dory_mlir.frontend.importer import (
    INT32_MAX,
    MAX_WINDOW,
    Act,
    Dropped,
    OnnxImporter,
    Pending,
    Value,
)
from dory_mlir.frontend.loader import ONNX_FLOAT_TYPES
from dory_mlir.frontend.requant_chain import Chain, Range, as_int_vector
from dory_mlir.tensor_layout import FeatureLastShape, channel_axis, is_feature_last

ONNX_INT64 = onnx.TensorProto.INT64


class IntegerGraphImporter(OnnxImporter):
    """The importer of integer-valued graphs as NEMO and Quantlab write them."""

    def __init__(self, model: onnx.ModelProto, model_name: str, input_type: str, saturate: bool = False):
        super().__init__(model, model_name, input_type, saturate)
        self.handlers = {
            "Constant": self.constant,
            "Conv": self.conv,
            "MatMul": self.matmul,
            "Gemm": self.gemm,
            "Mul": self.mul,
            "Add": self.add,
            "Div": self.div,
            "Floor": self.floor,
            "Cast": self.cast,
            "Clip": self.clip,
            "Relu": self.relu,
            "MaxPool": self.max_pool,
            "AveragePool": self.average_pool,
            "GlobalAveragePool": self.global_average_pool,
            "Pad": self.pad,
            "Flatten": self.flatten,
            "Reshape": self.reshape,
            "Shape": self.shape,
            "Sub": self.sub,
        }

    # ----------------------------------------------------------------- constants of the elementwise arithmetic

    def channel_vector(self, const: np.ndarray, onnx_shape: tuple[int, ...], what: str) -> np.ndarray:
        """A constant that varies at most along the channel axis (axis 1: the channels of N×C×H×W and
        N×C×W tensors; the last axis: the columns — output features — of an M×N or B×M×N GEMM
        output) → exact integer vector; on the rows of a GEMM also one that varies over the rows.

        A constant with more axes than the tensor is accepted when the extra leading axes are 1, and one
        that has a size > 1 along another axis when it does not vary along it (it then broadcasts as
        per-channel or per-tensor). One that varies over the R rows of a GEMM output ([M, 1], [M, N],
        [B, M, N], ...) → the 2-D block [R, N] (per element) or [R, 1] (per row), row r = IR row r
        (`tensor_layout.py`): requant constants of that shape vary over the layer's output rows
        (`qnn.RequantOp`). One that varies along the height or width of a conv's tensor has no form
        for the kernels: a one-line error.
        """
        const = np.asarray(const)
        if const.dtype.kind not in "iufb":
            raise self.error(f"{what} has type {const.dtype}; a numeric tensor is expected")
        while const.ndim > len(onnx_shape) and const.shape[0] == 1:
            const = const.reshape(const.shape[1:])
        shape = (1,) * (len(onnx_shape) - const.ndim) + tuple(const.shape)
        if len(shape) != len(onnx_shape) or any(s not in (1, t) for s, t in zip(shape, onnx_shape, strict=True)):
            raise self.error(f"{what} of shape {list(const.shape)} does not broadcast to the tensor {list(onnx_shape)}")
        full = const.reshape(shape)
        over_rows = False
        for axis in range(len(shape)):
            if axis == channel_axis(onnx_shape) or shape[axis] == 1:
                continue
            first = np.take(full, [0], axis=axis)
            if not np.array_equal(full, np.broadcast_to(first, full.shape), equal_nan=False):
                if not is_feature_last(onnx_shape):
                    raise self.error(self.varying_constant_message(what, const.shape, onnx_shape, axis))
                over_rows = True
                continue
            full = first
        ints = self.integer_constant(full.astype(np.float64) if full.dtype.kind == "f" else full, what, -(2**62), 2**62)
        if over_rows:
            rows = np.broadcast_to(ints, (*onnx_shape[:-1], ints.shape[-1])).reshape(-1, ints.shape[-1])
            return as_int_vector(rows).reshape(rows.shape)
        return as_int_vector(ints)

    @staticmethod
    def varying_constant_message(what: str, shape: tuple[int, ...], onnx_shape: tuple[int, ...], axis: int) -> str:
        names = {2: "height", 3: "width"} if len(onnx_shape) == 4 else {2: "width"}
        along = names.get(axis, f"axis {axis}")
        return (f"{what} of shape {list(shape)} varies along the {along} of the tensor {list(onnx_shape)}; "
                "only per-channel (axis 1) or per-tensor constants are supported")

    # ----------------------------------------------------------------- elementwise

    def split_const(self, node: onnx.NodeProto) -> tuple[Pending, np.ndarray] | None:
        a, b = self.lookup(node.input[0]), self.lookup(node.input[1])
        if isinstance(b, np.ndarray) and not isinstance(a, np.ndarray):
            return self.as_chain(a), b
        if isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            return self.as_chain(b), a
        return None

    def onnx_is_int(self, const: np.ndarray, pending: Pending) -> bool:
        return pending.chain.onnx_int or const.dtype.kind in "iu"

    def mul(self, node: onnx.NodeProto) -> list[Value]:
        split = self.split_const(node)
        if split is None:
            raise self.error("multiplication of two tensors is not supported")
        pending, const = split
        vec = self.channel_vector(const, pending.onnx_shape, "multiplier")
        chain = pending.chain.mul(vec if vec.size > 1 else int(vec[0]))
        chain = dataclasses.replace(chain, onnx_int=self.onnx_is_int(const, pending))
        return [self.pending(chain, pending.onnx_shape)]

    def div(self, node: onnx.NodeProto) -> list[Value]:
        a, b = self.lookup(node.input[0]), self.lookup(node.input[1])
        if isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
            raise self.error("only division of a tensor by a constant is supported")
        pending = self.as_chain(a)
        if b.size != 1:
            raise self.error(f"divisor must be a scalar, got shape {list(b.shape)}")
        divisor = self.integer_constant(b.reshape(-1), "divisor", -(2**62), 2**62)
        if int(divisor[0]) == 0:
            raise self.error("division by zero")
        chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(b, pending))
        return [self.pending(chain.div(int(divisor[0])), pending.onnx_shape)]

    def add(self, node: onnx.NodeProto) -> list[Value]:
        if any(a.name.startswith(("in1_", "in2_", "out_")) for a in node.attribute):
            return [self.quantlab_add(node)]
        split = self.split_const(node)
        if split is not None:
            pending, const = split
            vec = self.channel_vector(const, pending.onnx_shape, "offset")
            chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(const, pending))
            return [self.pending(chain.add(vec), pending.onnx_shape)]
        if len(node.input) != 2:
            raise self.error("Add must have two inputs")
        sides = [self.add_operand(name) for name in node.input]
        return [self.emit_add(sides, (0, 0))]

    def add_operand(self, name: str) -> tuple[Act, int, int]:
        """A residual branch `x·m (+ a)` over an 8-bit tensor → that tensor and the per-input (m, a)."""
        value = self.lookup(name)
        if isinstance(value, np.ndarray):
            raise self.error(f"operand '{name}' is a constant where an activation is expected")
        if isinstance(value, Pending):
            chain = value.chain
            per_tensor = chain.k.size == 1 and chain.l.size == 1
            if per_tensor and chain.rounding is None and chain.lo is None and chain.hi is None and chain.f.denominator == 1:
                source = chain.x if isinstance(chain.x, Act) else self.materialize(
                    Pending(chain.x, value.onnx_shape), activation=True  # type: ignore[arg-type]
                )
                if qnn.element_type(source.ssa).width.data <= 16:
                    m = chain.f.numerator
                    return source, int(chain.k[0]) * m, int(chain.l[0]) * m
        return self.activation(name), 1, 0

    def quantlab_add(self, node: onnx.NodeProto) -> Value:
        """Quantlab's requantizing Add: each input `floor((x·mul + add) / 2^shift)`, summed, then `out_*`."""
        attrs = self.attributes(node)
        if len(node.input) != 2:
            raise self.error(f"Quantlab's requantizing Add needs two inputs, got {len(node.input)}")
        sides: list[tuple[Act, int, int]] = []
        shifts: list[int] = []
        for i, name in enumerate(node.input, start=1):
            act = self.activation(name)
            if attrs.int(f"in{i}_rq", 1, lo=0, hi=1):
                sides.append((act, attrs.int(f"in{i}_mul", lo=-INT32_MAX, hi=INT32_MAX),
                              attrs.int(f"in{i}_add", lo=-INT32_MAX, hi=INT32_MAX)))
                shifts.append(attrs.int(f"in{i}_shift", lo=0, hi=31))
            else:
                sides.append((act, 1, 0))
                shifts.append(0)
        total = self.emit_add(sides, (shifts[0], shifts[1]))
        chain = Chain.over(total)
        if attrs.int("out_rq", 0, lo=0, hi=1):
            out_mul = attrs.int("out_mul", lo=-INT32_MAX, hi=INT32_MAX)
            out_add = attrs.int("out_add", lo=-INT32_MAX, hi=INT32_MAX)
            out_shift = attrs.int("out_shift", lo=0, hi=62)
            chain = Chain(total, as_int_vector([out_mul]), as_int_vector([out_add]), Fraction(1, 2**out_shift)).floor()
        levels = attrs.int("out_n_levels", 256, lo=2, hi=2**32)
        return self.pending(chain.clip(0, levels - 1), total.onnx_shape)

    def sub(self, node: onnx.NodeProto) -> list[Value]:
        """`a - b`: a constant folds into the chain's offset (negated); two tensors are a residual
        add whose second input has the multiplier -1 (the add kernel takes any integer multiplier)."""
        a, b = self.lookup(node.input[0]), self.lookup(node.input[1])
        if isinstance(b, np.ndarray) and not isinstance(a, np.ndarray):
            pending = self.as_chain(a)
            vec = self.channel_vector(b, pending.onnx_shape, "subtrahend")
            chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(b, pending))
            return [self.pending(chain.add(-vec), pending.onnx_shape)]
        if isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            pending = self.as_chain(b)
            vec = self.channel_vector(a, pending.onnx_shape, "minuend")
            chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(a, pending))
            return [self.pending(chain.mul_affine(as_int_vector([-1])).add(vec), pending.onnx_shape)]
        (lhs, m1, a1), (rhs, m2, a2) = (self.add_operand(name) for name in node.input)
        return [self.emit_add([(lhs, m1, a1), (rhs, -m2, -a2)], (0, 0))]

    # ----------------------------------------------------------------- rounding and casts

    def floor(self, node: onnx.NodeProto) -> list[Value]:
        pending = self.as_chain(self.lookup(node.input[0]))
        return [self.pending(pending.chain.floor(), pending.onnx_shape)]

    def cast(self, node: onnx.NodeProto) -> list[Value]:
        to = self.attributes(node).int("to")
        pending = self.as_chain(self.lookup(node.input[0]))
        if to not in onnx.TensorProto.DataType.values() or to == onnx.TensorProto.UNDEFINED:
            raise self.error(f"Cast to the unknown ONNX type {to}")
        if to not in ONNX_FLOAT_TYPES and to not in (ONNX_INT64, onnx.TensorProto.INT32):
            raise self.error(f"Cast to {onnx.TensorProto.DataType.Name(to)} is not supported")
        return [self.pending(pending.chain.cast(to not in ONNX_FLOAT_TYPES), pending.onnx_shape)]

    def relu(self, node: onnx.NodeProto) -> list[Value]:
        pending = self.as_chain(self.lookup(node.input[0]))
        return [self.pending(pending.chain.clip(0, None), pending.onnx_shape)]

    # ----------------------------------------------------------------- products and pooling

    def constant_weight(self, node: onnx.NodeProto, layout: str) -> np.ndarray:
        """The second operand of a MatMul/Gemm: a 2-D constant weight (`layout` names its axes)."""
        w = self.lookup(node.input[1])
        if not isinstance(w, np.ndarray):
            raise self.error(f"{node.op_type} of two activations ('{node.input[0]}' × '{node.input[1]}') is not "
                             "supported; the second operand must be a constant weight")
        if w.ndim != 2:
            raise self.error(f"{node.op_type} needs a 2-D constant {layout}weight as its second input, got shape "
                             f"{list(w.shape)}")
        return w

    def matmul(self, node: onnx.NodeProto) -> list[Value]:
        w = self.constant_weight(node, "K×N ")
        return self.linear(node.input[0], w.T, node.input[1], None, "")

    def gemm(self, node: onnx.NodeProto) -> list[Value]:
        """Y = alpha·A·B' + beta·C, B' = B or Bᵀ (transB), C broadcast per column (output feature)."""
        attrs = self.attributes(node)
        if attrs.int("transA", 0, lo=0, hi=1):
            raise self.error("Gemm with transA = 1 is not supported (the data operand must be rows × features)")
        alpha, beta = attrs.float("alpha", 1.0), attrs.float("beta", 1.0)
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not np.isfinite(value) or value != round(value) or abs(value) >= 2**31:
                raise self.error(f"Gemm {name} = {value} is not an integer; only integral alpha and beta have "
                                 "an exact integer form")
        alpha, beta = int(alpha), int(beta)
        w = self.constant_weight(node, "")
        w_mk = w if attrs.int("transB", 0, lo=0, hi=1) else w.T
        bias, bias_name = None, ""
        if len(node.input) > 2 and node.input[2]:
            bias, bias_name = self.gemm_bias(node, w_mk.shape[0], beta)
        if alpha == 1 and (bias is None or bias.ndim == 1):
            return self.linear(node.input[0], w_mk, node.input[1], bias, bias_name)
        # alpha·(A·B') + beta·C: the bias cannot go into the accumulator (alpha would scale it too),
        # so it joins the requantization chain after the multiplication by alpha; so does a bias that
        # varies over the rows (the conv's bias is per output channel, the requant's add may vary per row).
        (pending,) = self.linear(node.input[0], w_mk, node.input[1], None, "")
        assert isinstance(pending, Pending)
        chain = pending.chain.mul_affine(as_int_vector([alpha]))
        if bias is not None:
            chain = chain.add(bias if bias.ndim == 2 else as_int_vector(bias))
        return [self.pending(chain, pending.onnx_shape)]

    def gemm_bias(self, node: onnx.NodeProto, columns: int, beta: int) -> tuple[np.ndarray, str]:
        """beta·C, and its name: one value per output column when C broadcasts over the output
        ([N], [1, N], a scalar, or [M, N] equal on every row), else (C varies over the rows: [M, 1],
        [M, N]) the [R, N] / [R, 1] block of `channel_vector`."""
        c = self.lookup(node.input[2])
        if not isinstance(c, np.ndarray):
            raise self.error("Gemm bias must be a constant")
        x = self.lookup(node.input[0])
        x_shape = x.onnx_shape if isinstance(x, Act | Pending) else (1, columns)
        out_shape: tuple[int, ...] = (*x_shape[:-1], columns)
        if is_feature_last(x_shape):
            out_shape = FeatureLastShape(out_shape)
        vector = self.channel_vector(c, out_shape, "bias")
        if vector.ndim == 2:
            if any(abs(int(v)) * abs(beta) >= 2**62 for v in vector.reshape(-1)):
                raise self.error(f"beta·bias exceeds 62 bits (beta = {beta})")
            return vector * beta, node.input[2] if beta == 1 else f"{node.input[2]}_times_{beta}"
        if vector.size not in (1, columns):
            raise self.error(f"bias has {vector.size} values for {columns} output columns")
        scaled = [int(v) * beta for v in np.broadcast_to(vector, (columns,))]
        if any(abs(v) >= 2**62 for v in scaled):
            raise self.error(f"beta·bias exceeds 62 bits (beta = {beta})")
        per_column = np.array(scaled, dtype=np.int64)
        return per_column, node.input[2] if beta == 1 else f"{node.input[2]}_times_{beta}"

    def average_pool(self, node: onnx.NodeProto) -> list[Value]:
        x = self.spatial_activation(node.input[0])
        kernel, strides, pads = self.pool_window(node, x)
        if any(pads) and not self.attributes(node).int("count_include_pad", 0, lo=0, hi=1):
            raise self.error("padded AveragePool without count_include_pad=1 divides by a varying count; not supported")
        return [self.sum_pool(x, kernel, strides, pads)]

    def global_average_pool(self, node: onnx.NodeProto) -> list[Value]:
        x = self.spatial_activation(node.input[0])
        _, _, h, w = qnn.shape_of(x.ssa)
        return [self.sum_pool(x, [h, w], [1, 1], [0, 0, 0, 0])]

    def pad(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        mode = attrs.string("mode", "constant")
        if mode != "constant":
            raise self.error(f"Pad mode '{mode}' is not supported (only constant)")
        x = self.spatial_activation(node.input[0])
        if len(node.input) > 1 and node.input[1]:
            pads_value = self.lookup(node.input[1])
            if not isinstance(pads_value, np.ndarray):
                raise self.error("pads must be a constant")
            if pads_value.dtype.kind not in "iu":
                raise self.error(f"pads must be integers, got {pads_value.dtype}")
            if len(node.input) > 3 and node.input[3]:
                raise self.error("Pad with an axes input is not supported")
            pads = [int(p) for p in pads_value.reshape(-1)]
            value = self.scalar_constant(node.input[2], "pad value") if len(node.input) > 2 and node.input[2] else 0.0
        else:
            pads = attrs.ints("pads", [])
            value = attrs.float("value", 0.0)
        rank = len(x.onnx_shape)
        if len(pads) != 2 * rank:
            raise self.error(f"pads has {len(pads)} entries for a rank-{rank} tensor")
        begins, ends = pads[:rank], pads[rank:]
        if any(begins[:2]) or any(ends[:2]) or any(p < 0 for p in pads):
            raise self.error(f"only non-negative padding of the spatial dimensions is supported, got {pads}")
        if not np.isfinite(value) or value != round(value) or abs(value) > INT32_MAX:
            raise self.error(f"pad value {value} is not an integer")
        if any(p > MAX_WINDOW for p in pads):
            raise self.error(f"padding {pads} is larger than {MAX_WINDOW}")
        if not any(pads):
            return [x]
        t, l, b, r = (0, begins[2], 0, ends[2]) if rank == 3 else (begins[2], begins[3], ends[2], ends[3])
        n, c, h, w = qnn.shape_of(x.ssa)
        ty = TensorType(qnn.element_type(x.ssa), [n, c, h + t + b, w + l + r])
        op = self.emit(qnn.PadOp(x.ssa, ty, [t, l, b, r], int(value)))
        onnx_shape = tuple(s + bb + e for s, bb, e in zip(x.onnx_shape, begins, ends, strict=True))
        padded = Range(
            as_int_vector([min(v, int(value)) for v in x.range.lo]),
            as_int_vector([max(v, int(value)) for v in x.range.hi]),
        )
        return [Act(op.results[0], padded, onnx_shape)]

    def shape(self, node: onnx.NodeProto) -> list[Value]:
        """`Shape` of an activation: its static shape, as a constant (for Reshape's shape arithmetic)."""
        value = self.lookup(node.input[0])
        if isinstance(value, Dropped):
            raise self.error("Shape of a value of the float tail is not supported")
        return [self.shape_of(value.onnx_shape, self.attributes(node))]  # type: ignore[union-attr]
