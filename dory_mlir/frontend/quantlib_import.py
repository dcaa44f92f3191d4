"""ONNX → `qnn` import of QuantLib/Deeploy exports: the NEMO/Quantlab integer graph and QuantLib's ops.

QuantLib writes each requantization as one `RequantShift(x, mul, add)` (rounding to nearest, ties up;
Deeploy's `[1, B, 1, 1]` constants vary per batch slice of a MatMul), and Deeploy's kernel tests add
integer ReduceSum/ReduceMean, Slice, Concat and MatMul of two activations. Everything else is spelled as
NEMO/Quantlab spell it (`integer_import.py`), so this importer extends that one's op table; a model does
not say which exporter wrote it, so every integer-valued model is read with this one (`onnx_import.py`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnx
from xdsl.dialects.builtin import TensorType
from xdsl.utils.exceptions import VerifyException

from dory_mlir.dialects import qnn
from dory_mlir.frontend.importer import INT32_MAX, INT32_MIN, SI8, SI32, SI64, UI8, Act, Pending, Value
from dory_mlir.frontend.integer_import import IntegerGraphImporter
from dory_mlir.frontend.requant_chain import Chain, Range, as_int_vector
from dory_mlir.tensor_layout import FeatureLastShape, ir_shape, is_feature_last


class QuantLibImporter(IntegerGraphImporter):
    """The integer-graph importer with QuantLib/Deeploy's RequantShift, reductions, Slice, Concat and
    MatMul of two activations."""

    def __init__(self, model: onnx.ModelProto, model_name: str, input_type: str, saturate: bool = False):
        super().__init__(model, model_name, input_type, saturate)
        self.handlers |= {
            "RequantShift": self.requant_shift,
            "ReduceSum": self.reduce_sum,
            "ReduceMean": self.reduce_mean,
            "Slice": self.slice,
            "Concat": self.concat,
            "MatMul": self.matmul,
            "iNoNorm": self.i_no_norm,
            "iSoftmax": self.i_softmax,
            "iRMSNorm": self.i_rms_norm,
            "iHardswish": self.i_hardswish,
            "TrueIntegerDiv": self.true_integer_div,
            "IntegerMean": self.integer_mean,
            "iGELU": self.i_gelu,
            "iLayerNorm": self.i_layer_norm,
            "ITAMax": self.ita_max,
            "ITAPartialMax": self.ita_max,
            "Transpose": self.transpose,
        }

    # ----------------------------------------------------------------- RequantShift

    def requant_shift(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib/Deeploy `RequantShift(x, mul, add)`: clip(round((x·mul + add) / div)) to n levels.

        The rounding (to nearest, ties up) is what reproduces the MLPerf Tiny activations.
        """
        if len(node.input) != 3:
            raise self.error(f"RequantShift needs inputs (x, mul, add), got {len(node.input)}")
        attrs = self.attributes(node)
        # Deeploy accepts either spelling of the level count; QuantLib writes n_levels_out.
        levels_name = "n_levels_out" if "n_levels_out" in attrs or "n_levels" not in attrs else "n_levels"
        for name in ("div", levels_name):
            if name not in attrs:
                raise self.error(f"RequantShift without the '{name}' attribute")
        div = attrs.int("div")
        levels = attrs.int(levels_name)
        signed = attrs.int("signed", 0, lo=0, hi=1)
        if div <= 0 or div >= 2**62:
            raise self.error(f"RequantShift div must be positive (and below 2^62), got {div}")
        if not 2 <= levels <= 2**32:
            raise self.error(f"RequantShift {levels_name} must be in [2, 2^32], got {levels}")
        pending = self.as_chain(self.lookup(node.input[0]))
        per_batch = self.batch_requant_shift(node, pending, div, levels, signed)
        if per_batch is not None:
            return [per_batch]
        scaled = []
        for index, what in ((1, "mul"), (2, "add")):
            const = self.lookup(node.input[index])
            if not isinstance(const, np.ndarray):
                raise self.error(f"RequantShift {what} must be a constant")
            scaled.append(self.channel_vector(self.channel_first(const, pending.onnx_shape), pending.onnx_shape, what))
        mul, add = scaled
        # QuantLib rounds to nearest, ties up: floor((x·mul + add) / div + 1/2), kept exact for odd div too.
        if div % 2:
            mul, add, div = mul * 2, add * 2 + div, div * 2
        else:
            add = add + div // 2
        chain = pending.chain.mul_affine(mul).add(add).div(div).floor()
        lo, hi = (-(levels // 2), levels // 2 - 1) if signed else (0, levels - 1)
        return [self.pending(chain.clip(lo, hi), pending.onnx_shape)]

    def batch_requant_shift(self, node: onnx.NodeProto, pending: Pending, div: int, levels: int,
                            signed: int) -> Act | None:
        """A RequantShift right after a `qnn.matmul` whose mul/add vary along the batch axes (one
        value per batch slice, as Deeploy's `[1, B, 1, 1]`): a `qnn.requant` with `[G, 1]` constants,
        G = the number of batch slices. None when the constants do not vary per batch slice (the
        usual per-column / per-tensor path then applies)."""
        source = pending.chain.simplified()
        shape = pending.onnx_shape
        if not isinstance(source, Act) or not isinstance(source.ssa.owner, qnn.MatMulOp) or len(shape) < 3:
            return None
        values = []
        for index, what in ((1, "mul"), (2, "add")):
            const = self.lookup(node.input[index])
            if not isinstance(const, np.ndarray) or const.dtype.kind not in "iufb":
                return None  # the usual path says what is wrong
            while const.ndim > len(shape) and const.shape[0] == 1:
                const = const.reshape(const.shape[1:])
            if const.ndim > len(shape) or any(c not in (1, t) for c, t in zip(const.shape[::-1], shape[::-1])):
                return None
            values.append(np.broadcast_to(const, shape))
        batch_axes = tuple(range(len(shape) - 2))
        if all(np.array_equal(v, np.broadcast_to(v[(0,) * len(batch_axes)], v.shape)) for v in values):
            return None  # the same in every batch slice
        groups = int(np.prod(shape[:-2]))
        per_group = []
        for what, full in zip(("mul", "add"), values, strict=True):
            slices = full.reshape(groups, -1)
            if not (slices == slices[:, :1]).all():
                raise self.error(f"RequantShift {what} varies per batch slice and within a slice (shape "
                                 f"{list(full.shape)}); constants per batch slice must be one value per slice")
            per_group.append(self.integer_constant(slices[:, 0].astype(np.float64) if slices.dtype.kind == "f"
                                                   else slices[:, 0], what, -(2**62), 2**62))
        mul, add = (np.array([int(v) for v in p], dtype=object) for p in per_group)
        if div % 2:  # rounding to nearest, ties up, exactly (see requant_shift)
            mul, add, div = mul * 2, add * 2 + div, div * 2
        else:
            add = add + div // 2
        lo, hi = (-(levels // 2), levels // 2 - 1) if signed else (0, levels - 1)
        acc_lo, acc_hi = source.range.min(), source.range.max()
        ends = [x * int(m) + int(a) for m, a in zip(mul, add, strict=True) for x in (acc_lo, acc_hi)]
        widest = max(abs(v) for v in ends)
        if widest >= 2**63:
            raise self.error(f"requantization needs more than 64 bits (|value| up to {widest})")
        wide = not all(INT32_MIN <= int(v) <= INT32_MAX for v in [*mul, *add])
        element = SI64 if wide or widest > INT32_MAX else SI32
        constants = [self.const_op(np.array([int(v) for v in vector], dtype=np.int64).reshape(groups, 1), element,
                                   f"{self.node_name}.{what}") for what, vector in (("mul", mul), ("add", add))]
        out_lo = max(lo, min(v // div for v in ends))
        out_hi = min(hi, max(v // div for v in ends))
        op = self.emit(qnn.RequantOp(
            source.ssa, constants[0], constants[1], TensorType(self.result_element_type(lo, hi, True), qnn.shape_of(source.ssa)),
            scale=1, divisor=div, min=lo, max=hi, intermediate_bits=32 if widest <= INT32_MAX else 64))
        return Act(op.results[0], Range.scalar(min(out_lo, out_hi), max(out_lo, out_hi)), shape)

    def i_no_norm(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `iNoNorm(x, weight, bias)` {D, mul, n_levels}: y = clip(floor(((x·weight + bias)·mul) / D))
        to the signed n levels, weight and bias broadcast against x as ONNX does (Deeploy's goldens; its
        C shifts right by log2 D, the same floor). An elementwise affine map with per-element constants:
        a requantization (of rows of features: per-row constants `[R, C]`), no kernel of its own."""
        if len(node.input) != 3:
            raise self.error(f"iNoNorm needs inputs (x, weight, bias), got {len(node.input)}")
        attrs = self.attributes(node)
        divisor, mul = attrs.int("D", lo=1, hi=2**62), attrs.int("mul", lo=-(2**31), hi=2**31 - 1)
        levels = attrs.int("n_levels", lo=2, hi=2**16)
        pending = self.as_chain(self.lookup(node.input[0]))
        weight, bias = (self.constant_operand(node, index, what) for index, what in ((1, "weight"), (2, "bias")))
        weight, bias = (self.channel_vector(c, pending.onnx_shape, what) for c, what in ((weight, "weight"), (bias, "bias")))
        chain = pending.chain.mul_affine(weight * mul).add(bias * mul).div(divisor).floor()
        return [self.pending(chain.clip(-(levels // 2), levels // 2 - 1), pending.onnx_shape)]

    def i_softmax(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `iSoftmax` {coeffA, coeffB, coeffC, log2, n_levels} over the last axis of rows of
        features: `qnn.softmax` (its docstring has the integer semantics), an unsigned result."""
        attrs = self.attributes(node)
        coeffs = [attrs.int(name, lo=-(2**31), hi=2**31 - 1) for name in ("coeffA", "coeffB", "coeffC")]
        log2, levels = attrs.int("log2", lo=1, hi=2**31 - 1), attrs.int("n_levels", lo=2, hi=256)
        axis = attrs.int("axis", -1)
        x = self.activation(node.input[0])
        if not is_feature_last(x.onnx_shape) or axis not in (-1, len(x.onnx_shape) - 1):
            raise self.error(f"iSoftmax over axis {axis} of the tensor {list(x.onnx_shape)} is not supported "
                             "(only over the last axis of rows of features)")
        if qnn.element_type(x.ssa).width.data != 8:
            raise self.error("iSoftmax of a 16-bit tensor is not supported (8-bit inputs)")
        op = qnn.SoftmaxOp(x.ssa, TensorType(UI8, qnn.shape_of(x.ssa)), *coeffs, log2, levels)
        self.emit_verified(op)
        return [Act(op.output, Range.scalar(0, levels - 1), x.onnx_shape)]

    def ita_max(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `ITAMax` {n_levels} and `ITAPartialMax` {n_levels, groups, group_width} over the last
        axis of rows of int8 features: `qnn.ita_max` (its docstring has the integer semantics; ITAMax is one
        group of all the features), an unsigned result; n_levels 256 (ITA's, Deeploy's C); the groups must
        cover the features (QuantLib's forward leaves features past them out of the sum, Deeploy's C does not)."""
        attrs = self.attributes(node)
        levels = attrs.int("n_levels", lo=2, hi=2**16)
        x = self.activation(node.input[0])
        if not is_feature_last(x.onnx_shape):
            raise self.error(f"{node.op_type} of the tensor {list(x.onnx_shape)} is not supported (only over the last "
                             "axis of rows of features)")
        if qnn.element_type(x.ssa) != SI8:
            raise self.error(f"{node.op_type} of a {qnn.element_type(x.ssa)} tensor is not supported (ITA's rows are si8)")
        features = x.onnx_shape[-1]
        width = features
        if node.op_type == "ITAPartialMax":
            groups, width = attrs.int("groups", lo=1, hi=features), attrs.int("group_width", lo=1, hi=features)
            if groups * width != features:
                raise self.error(f"ITAPartialMax groups × group_width = {groups} × {width} is not the {features} "
                                 "features of a row")
        op = qnn.ITAMaxOp(x.ssa, TensorType(UI8, qnn.shape_of(x.ssa)), n_levels=levels, group_width=width)
        self.emit_verified(op)
        return [Act(op.output, Range.scalar(0, levels - 1), x.onnx_shape)]

    def i_rms_norm(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `iRMSNorm(x, weight)` {D, n_levels} over the last axis of rows of features:
        `qnn.rms_norm` (its docstring has the integer semantics); x·weight must fit the kernel's 32 bits."""
        x, shift, levels, (weight,) = self.row_norm_operands(node, ("weight",))
        widest = max(abs(x.range.min()), abs(x.range.max())) * int(np.abs(weight).max())
        if widest >= 2**31:
            raise self.error(f"x·weight may reach {widest}, beyond the kernel's 32 bits")
        op = qnn.RMSNormOp(x.ssa, self.const_op(np.array(weight, dtype=np.int64), SI32, f"{self.node_name}.weight"),
                           TensorType(SI8, qnn.shape_of(x.ssa)), shift)
        return self.row_norm_result(op, x, levels)

    def i_layer_norm(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `iLayerNorm(x, weight, bias)` {D, n_levels} over the last axis of rows of features:
        `qnn.layer_norm` (its docstring has the integer semantics)."""
        x, shift, levels, (weight, bias) = self.row_norm_operands(node, ("weight", "bias"))
        weight, bias = (self.const_op(np.array(v, dtype=np.int64), SI32, f"{self.node_name}.{what}")
                        for v, what in ((weight, "weight"), (bias, "bias")))
        return self.row_norm_result(qnn.LayerNormOp(x.ssa, weight, bias, TensorType(SI8, qnn.shape_of(x.ssa)), shift),
                                    x, levels)

    def row_norm_operands(self, node: onnx.NodeProto, constants: tuple[str, ...]) -> tuple[Act, int, int, list[np.ndarray]]:
        """What QuantLib's row norms share: inputs (x, *constants) and {D, n_levels}, D a power of two, x
        rows of 8-bit features, each constant one int32 per feature (or one for all). Returns x, log2 D,
        n_levels (at most 256: signed 8-bit results) and the constants as [K] vectors."""
        if len(node.input) != 1 + len(constants):
            raise self.error(f"{node.op_type} needs inputs (x, {', '.join(constants)}), got {len(node.input)}")
        attrs = self.attributes(node)
        divisor, levels = attrs.int("D", lo=1, hi=2**31), attrs.int("n_levels", lo=2, hi=256)
        if divisor & (divisor - 1):
            raise self.error(f"{node.op_type} D = {divisor} is not a power of two")
        x = self.activation(node.input[0])
        if not is_feature_last(x.onnx_shape):
            raise self.error(f"{node.op_type} of the tensor {list(x.onnx_shape)} is not supported (only over the last "
                             "axis of rows of features)")
        if qnn.element_type(x.ssa).width.data != 8:
            raise self.error(f"{node.op_type} of a 16-bit tensor is not supported (8-bit inputs)")
        features = x.onnx_shape[-1]
        values = []
        for index, what in enumerate(constants, start=1):
            value = self.integer_constant(self.constant_operand(node, index, what), what, INT32_MIN, INT32_MAX)
            if value.size not in (1, features):
                raise self.error(f"{node.op_type} {what} of shape {list(value.shape)} is not one value per feature "
                                 f"({features})")
            values.append(np.broadcast_to(value.reshape(-1), (features,)))
        return x, divisor.bit_length() - 1, levels, values

    def row_norm_result(self, op: qnn.RMSNormOp | qnn.LayerNormOp, x: Act, levels: int) -> list[Value]:
        """The verified norm, its si8 result clipped to the signed n_levels when they are fewer than 256."""
        self.emit_verified(op)
        act = Act(op.output, Range.scalar(-128, 127), x.onnx_shape)
        lo, hi = -(levels // 2), levels // 2 - 1
        if (lo, hi) == (-128, 127):
            return [act]
        return [self.pending(Chain.over(act).clip(lo, hi), x.onnx_shape)]

    def i_hardswish(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `iHardswish` {one_over_six, three, six}, elementwise: `qnn.hardswish`."""
        attrs = self.attributes(node)
        one_over_six, three, six = (attrs.int(name, lo=-(2**31), hi=2**31 - 1) for name in ("one_over_six", "three", "six"))
        return self.elementwise_int32(node, lambda x, ty: qnn.HardswishOp(x, ty, one_over_six, three, six))

    def i_gelu(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `iGELU` {b, one}, elementwise: `qnn.gelu` (Deeploy's RQSiGELU is it with the
        RequantShift after it)."""
        attrs = self.attributes(node)
        b, one = (attrs.int(name, lo=-(2**31), hi=2**31 - 1) for name in ("b", "one"))
        return self.elementwise_int32(node, lambda x, ty: qnn.GeluOp(x, ty, b=b, one=one))

    def elementwise_int32(self, node: onnx.NodeProto, make_op) -> list[Value]:
        """An elementwise op of an 8-bit activation with an int32 result (`make_op(x, result_type)`,
        one with `values`), verified, its result pending like a conv's accumulator (a RequantShift
        after it is the layer's requant)."""
        x = self.activation(node.input[0])
        if qnn.element_type(x.ssa).width.data != 8:
            raise self.error(f"{node.op_type} of a 16-bit tensor is not supported (8-bit inputs)")
        op = make_op(x.ssa, TensorType(SI32, qnn.shape_of(x.ssa)))
        self.emit_verified(op)
        ends = op.values(np.arange(x.range.min(), x.range.max() + 1, dtype=np.int64))
        act = Act(op.output, Range.scalar(int(ends.min()), int(ends.max())), x.onnx_shape)
        return [self.pending(Chain.over(act), x.onnx_shape)]

    def true_integer_div(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `TrueIntegerDiv(x)` {Delta, eps, eta, y}: x scaled by Delta and divided by the
        constant y (eps, eta keep the divisor away from zero), an elementwise rational map folded into
        the requantization chain (no kernel of its own). Two readings, as the exporters' goldens have it:
        - before a RequantShift with one mul and a zero add (its only consumer), Deeploy's
          MergeTrueIntegerDivRequantShiftPass folds the pair into that RequantShift, the quotient
          becoming the integer factor ⌊Delta·eta / (y·eta + eps)⌋ (its ×256 stretch of mul and div
          cancels exactly): Deeploy's TrueIntegerDiv golden is that, not the rounded quotient;
        - otherwise QuantLib's own forward, round half up of x·Delta·eta / (y·eta + eps)."""
        if len(node.input) != 1:
            raise self.error(f"TrueIntegerDiv divides by its attribute y: one input expected, got {len(node.input)}")
        attrs = self.attributes(node)
        delta, eps, eta, divisor = (attrs.int(name, lo=-(2**31), hi=2**31 - 1) for name in ("Delta", "eps", "eta", "y"))
        denominator = divisor * eta + eps
        if denominator <= 0:
            raise self.error(f"TrueIntegerDiv divides by y·eta + eps = {denominator}; it must be positive")
        pending = self.as_chain(self.lookup(node.input[0]))
        if self.merged_into_requant_shift(node):
            return [self.pending(pending.chain.mul_affine(as_int_vector([delta * eta // denominator])), pending.onnx_shape)]
        # floor(x·Delta·eta / den + 1/2), exactly: an integer tensor of its own (its layer requantizes once)
        chain = pending.chain.mul_affine(as_int_vector([2 * delta * eta])).add(as_int_vector([denominator]))
        return [self.materialize(self.pending(chain.div(2 * denominator).floor(), pending.onnx_shape), activation=True)]

    def merged_into_requant_shift(self, node: onnx.NodeProto) -> bool:
        """Whether Deeploy merges this node into the RequantShift after it: that RequantShift is its only
        consumer (not a graph output) and has a one-value mul and a one-value zero add."""
        consumers = [n for n in self.graph.node if node.output[0] in n.input]
        if len(consumers) != 1 or consumers[0].op_type != "RequantShift" or consumers[0].input[0] != node.output[0]:
            return False
        if node.output[0] in {o.name for o in self.graph.output} or len(consumers[0].input) != 3:
            return False
        mul, add = (self.lookup(name) for name in consumers[0].input[1:])
        return (isinstance(mul, np.ndarray) and mul.size == 1 and isinstance(add, np.ndarray) and add.size == 1
                and add.dtype.kind in "iuf" and float(add.reshape(-1)[0]) == 0)  # else RequantShift says what is wrong

    def emit_verified(self, op) -> None:
        """Emits `op` once its verifier passes; its complaint is the node's one-line error."""
        try:
            op.verify_()
        except VerifyException as e:
            raise self.error(str(e)) from None
        self.emit(op)

    def constant_operand(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        const = self.lookup(node.input[index])
        if not isinstance(const, np.ndarray):
            raise self.error(f"{node.op_type} {what} must be a constant")
        return const

    @staticmethod
    def channel_first(const: np.ndarray, onnx_shape: tuple[int, ...]) -> np.ndarray:
        """QuantLib writes per-channel requant constants as C×1×1 whatever the layer's rank; for an
        N×C×W (1-D) tensor that shape does not broadcast in ONNX's sense, and Deeploy reads it as one
        value per channel: so do we (only for RequantShift, whose semantics are QuantLib's)."""
        channels = onnx_shape[1] if len(onnx_shape) > 1 else 0
        if (const.ndim == len(onnx_shape) and const.ndim >= 2 and channels > 1 and onnx_shape[0] == 1
                and const.shape[0] == channels and const.size == channels):
            return const.reshape((channels,) + (1,) * (len(onnx_shape) - 2))  # broadcasts along axis 1
        return const


    # ----------------------------------------------------------------- reductions and data movement
    #
    # ReduceSum/ReduceMean over channels, Slice and Concat are computed by convolutions whose weights
    # are 0/1 (sums, one-hot selections, identity placements into a zero-padded frame): exact by
    # construction, tiled and run by the existing conv kernels. Slices and concats so pay MACs where a
    # copy would do (a DMA-only layer is the faster form, not built yet).

    def reduce_sum(self, node: onnx.NodeProto) -> list[Value]:
        return [self.reduce(node, mean=False)]

    def reduce_mean(self, node: onnx.NodeProto) -> list[Value]:
        return [self.reduce(node, mean=True)]

    def integer_mean(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib's `IntegerMean` {axes, keepdims}: floor(mean + 1/2) over the axes (Deeploy maps it to
        its ReduceMean): the integer mean of `reduce`, rounded here even where a RequantShift follows."""
        return [self.reduce(node, mean=True, rounds_itself=True)]

    def reduce(self, node: onnx.NodeProto, mean: bool, rounds_itself: bool = False) -> Value:
        """Integer ReduceSum/ReduceMean: the exact int32 sum; the mean rounds half up,
        floor((Σ + n/2) / n), as Deeploy's integer kernels and goldens do (`rounds_itself`: always,
        else not where a later op rounds the exact mean)."""
        x = self.spatial_activation(node.input[0])
        rank = len(x.onnx_shape)
        attrs = self.attributes(node)
        axes = self.axes(node, rank)
        if axes is None:
            if attrs.int("noop_with_empty_axes", 0, lo=0, hi=1):
                return x
            axes = list(range(rank))
        keepdims = attrs.int("keepdims", 1, lo=0, hi=1)
        reduced = sorted(set(axes) - {0})  # N = 1
        if not reduced:
            return x
        kept_shape = tuple(1 if a in reduced else d for a, d in enumerate(x.onnx_shape))
        n, c, *spatial = qnn.shape_of(x.ssa)
        if len(spatial) == 2:
            h, w = spatial
            kernel = [h if (rank == 4 and 2 in reduced) else 1, w if (3 in reduced or (rank == 3 and 2 in reduced)) else 1]
            out_c = 1 if 1 in reduced else c
            out_ir = [n, out_c, h // kernel[0], w // kernel[1]]
            if 1 in reduced:  # over channels (and maybe space): one conv with all-ones weights
                ones = np.ones((1, c, kernel[0], kernel[1]), dtype=np.int64)
                op = self.emit(qnn.ConvOp(x.ssa, self.const_op(ones, SI8, f"{self.node_name}.ones"), None,
                                          TensorType(SI32, out_ir), [1, 1], [0, 0, 0, 0], [1, 1], 1))
            else:
                op = self.emit(qnn.SumPoolOp(x.ssa, TensorType(SI32, out_ir), kernel, [1, 1], [0, 0, 0, 0]))
        else:  # N×K: the sum of the K features
            ones = np.ones((1, c), dtype=np.int64)
            op = self.emit(qnn.LinearOp(x.ssa, self.const_op(ones, SI8, f"{self.node_name}.ones"), None,
                                        TensorType(SI32, [n, 1])))
        count = int(np.prod([x.onnx_shape[a] for a in reduced]))
        total = Range.scalar(min(x.range.min(), 0) * count, max(x.range.max(), 0) * count)
        chain = Chain.over(Act(op.results[0], total, kept_shape))
        if mean and not rounds_itself and self.rounded_later(node):
            chain = chain.mul(Fraction(1, count))  # the exact mean, as AveragePool: a later op rounds it
        elif mean:
            chain = chain.add(as_int_vector([count // 2])).mul(Fraction(1, count)).floor()
        result = self.pending(chain, kept_shape)
        if keepdims:  # rounds_itself: an integer tensor of its own (a RequantShift after it is another layer)
            return self.materialize(result, activation=True) if rounds_itself else result
        squeezed = tuple(d for a, d in enumerate(x.onnx_shape) if a not in reduced)
        return self.squeezed(node, result, squeezed)

    def rounded_later(self, node: onnx.NodeProto) -> bool:
        """Whether every consumer continues the arithmetic up to its own rounding (QuantLib's float
        tensors: ReduceMean → RequantShift keeps the exact mean, like AveragePool); a mean read as an
        integer (network output, a layer's input) is Deeploy's integer mean, rounded half up."""
        consumers = [n for n in self.graph.node if node.output[0] in n.input]
        return bool(consumers) and all(n.op_type in {"RequantShift", "Mul", "Div", "Floor", "Add", "Sub", "Cast"}
                                       for n in consumers)

    def squeezed(self, node: onnx.NodeProto, value: Pending, onnx_shape: tuple[int, ...]) -> Value:
        """A result whose ONNX shape lost axes (keepdims=0). At the network output only the element
        order matters (row-major NCHW = the IR's); a consumer would read the ONNX axes as other
        layout axes (e.g. H as channels), which the IR does not reorder: refused by name."""
        consumers = [n for n in self.graph.node if node.output[0] in n.input and n.op_type != "Identity"]
        if consumers:
            raise self.error(f"the reduced tensor {list(onnx_shape)} (keepdims=0) feeds '{consumers[0].name}': "
                             "only a network output may drop axes; export with keepdims=1")
        return Pending(value.chain, onnx_shape)

    def slice(self, node: onnx.NodeProto) -> list[Value]:
        """Slice with positive steps along channels, height and width: a convolution with one-hot
        weights. Along a spatial axis keeping n of `size` positions from `start` by `step`, the
        kernel spans size - (n-1)·step positions with its 1 at `start` and the conv's stride is
        `step`: output y reads input start + y·step, and exactly n outputs fit."""
        x = self.spatial_activation(node.input[0])
        rank = len(x.onnx_shape)
        starts, ends, axes, steps = self.slice_arguments(node, rank)
        selected = [list(range(d)) for d in x.onnx_shape]
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            if step <= 0:
                raise self.error(f"Slice with step {step} is not supported (only positive steps)")
            size = x.onnx_shape[axis]
            start = max(0, min(size, start + size if start < 0 else start))
            end = max(0, min(size, end + size if end < 0 else end))
            selected[axis] = list(range(start, end, step))
            if not selected[axis]:
                raise self.error(f"Slice keeps nothing of axis {axis} (size {size}, [{start}, {end}) by {step})")
        if selected[0] != list(range(x.onnx_shape[0])):
            raise self.error("Slice along the batch axis is not supported")
        onnx_shape = tuple(len(s) for s in selected)
        if onnx_shape == x.onnx_shape:
            return [x]
        if rank not in (3, 4):
            raise self.error(f"Slice of a rank-{rank} tensor is not supported (N×C×W or N×C×H×W)")
        n, c, h, w = qnn.shape_of(x.ssa)
        rows, cols = ([0], selected[2]) if rank == 3 else (selected[2], selected[3])
        extents, strides = [], []
        for kept, size in ((rows, h), (cols, w)):
            step = kept[1] - kept[0] if len(kept) > 1 else 1
            extents.append(size - (len(kept) - 1) * step)
            strides.append(step)
        channels = selected[1]
        depthwise = channels == list(range(c))
        weights = np.zeros((len(channels), 1 if depthwise else c, extents[0], extents[1]), dtype=np.int64)
        for o, ch in enumerate(channels):
            weights[o, 0 if depthwise else ch, rows[0], cols[0]] = 1
        return [self.emit_selection(x, weights, strides, [0, 0, 0, 0], c if depthwise else 1, onnx_shape)]

    def slice_arguments(self, node: onnx.NodeProto, rank: int) -> tuple[list[int], ...]:
        """(starts, ends, axes, steps): inputs from opset 10, attributes before."""
        if len(node.input) == 1:
            attrs = self.attributes(node)
            starts, ends = attrs.ints("starts"), attrs.ints("ends")
            axes = attrs.ints("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        else:
            if len(node.input) < 3:
                raise self.error("Slice needs starts and ends")
            values = []
            for index, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
                if index >= len(node.input) or not node.input[index]:
                    values.append(None)
                    continue
                value = self.lookup(node.input[index])
                if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu" or value.ndim != 1:
                    raise self.error(f"Slice {what} must be a 1-D integer constant")
                values.append([int(v) for v in value])
            starts, ends, axes, steps = values
            axes = axes if axes is not None else list(range(len(starts)))
            steps = steps if steps is not None else [1] * len(starts)
        if not (len(starts) == len(ends) == len(axes) == len(steps)):
            raise self.error("Slice starts, ends, axes and steps differ in length")
        axes = [a + rank if a < 0 else a for a in axes]
        if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
            raise self.error(f"Slice axes {axes} are not distinct axes of a rank-{rank} tensor")
        return starts, ends, axes, steps

    def emit_selection(self, x: Act, weights: np.ndarray, strides: list[int], pads: list[int], groups: int,
                       onnx_shape: tuple[int, ...]) -> Act:
        """A conv of 0/1 weights that moves values without changing them, requantized by 1 back to
        an 8-bit activation: the result keeps x's range (and 0, which padding brings in)."""
        n, c, h, w = qnn.shape_of(x.ssa)
        kh, kw = weights.shape[2], weights.shape[3]
        ho = qnn.window_output_size(h, kh, strides[0], pads[0], pads[2])
        wo = qnn.window_output_size(w, kw, strides[1], pads[1], pads[3])
        op = self.emit(qnn.ConvOp(x.ssa, self.const_op(weights, SI8, f"{self.node_name}.select"), None,
                                  TensorType(SI32, [n, weights.shape[0], ho, wo]), strides, pads, [1, 1], groups))
        moved = Range.scalar(min(x.range.min(), 0), max(x.range.max(), 0))
        accumulator = Act(op.results[0], moved, onnx_shape)
        return self.emit_requant(self.pending(Chain.over(accumulator), onnx_shape).chain, accumulator, onnx_shape,
                                 activation=True)

    def concat(self, node: onnx.NodeProto) -> list[Value]:
        """Concat along channels, height or width: each input placed into the output's frame by a
        0/1 conv (channels: one-hot pointwise weights to its channel offset; spatial: an identity
        depthwise conv zero-padded to its offset), the placed tensors summed by adds — every
        position has exactly one non-zero term, so the sum is the concatenation."""
        values = [self.lookup(name) for name in node.input if name]
        if any(isinstance(v, np.ndarray) for v in values):
            raise self.error("Concat of a constant with activations is not supported")
        if len(values) == 1:
            return [values[0]]
        acts = [self.spatial_activation(name) for name in node.input if name]
        rank = len(acts[0].onnx_shape)
        axis = self.attributes(node).int("axis", lo=-rank, hi=rank - 1)
        axis = axis + rank if axis < 0 else axis
        for act in acts:
            if len(act.onnx_shape) != rank or any(
                    a != b for i, (a, b) in enumerate(zip(act.onnx_shape, acts[0].onnx_shape, strict=True)) if i != axis):
                raise self.error(f"Concat inputs {[list(a.onnx_shape) for a in acts]} differ off axis {axis}")
        if axis == 0 or rank not in (3, 4):
            raise self.error(f"Concat along axis {axis} of rank-{rank} tensors is not supported "
                             "(channels, height or width of N×C×W or N×C×H×W)")
        total = sum(a.onnx_shape[axis] for a in acts)
        onnx_shape = tuple(total if i == axis else d for i, d in enumerate(acts[0].onnx_shape))
        ir_axis = 3 if rank == 3 and axis == 2 else axis
        placed: list[Act] = []
        offset = 0
        for act in acts:
            n, c, h, w = qnn.shape_of(act.ssa)
            size = qnn.shape_of(act.ssa)[ir_axis]
            if ir_axis == 1:
                weights = np.zeros((total, c, 1, 1), dtype=np.int64)
                weights[np.arange(offset, offset + c), np.arange(c), 0, 0] = 1
                placed.append(self.emit_selection(act, weights, [1, 1], [0, 0, 0, 0], 1, onnx_shape))
            else:
                before, after = offset, total - offset - size
                pads = [before, 0, after, 0] if ir_axis == 2 else [0, before, 0, after]
                placed.append(self.emit_selection(act, np.ones((c, 1, 1, 1), dtype=np.int64), [1, 1], pads, c,
                                                  onnx_shape))
            offset += size
        union = Range.scalar(min(a.range.min() for a in placed), max(a.range.max() for a in placed))
        result = placed[0]
        for other in placed[1:]:
            total_act = Act(self.emit_add([(result, 1, 0), (other, 1, 0)], (0, 0)).ssa, union, onnx_shape)
            result = self.emit_requant(self.pending(Chain.over(total_act), onnx_shape).chain, total_act, onnx_shape,
                                       activation=True)
        return [result]


    # ----------------------------------------------------------------- MatMul of two activations

    def matmul(self, node: onnx.NodeProto) -> list[Value]:
        if isinstance(self.lookup(node.input[1]), np.ndarray):
            return super().matmul(node)  # a constant weight: a linear layer
        return self.matmul_of_activations(node)

    def matmul_of_activations(self, node: onnx.NodeProto) -> list[Value]:
        """A MatMul of two activations `[*Ba, M, K] × [*Bb, K, N]` (batch axes broadcast as ONNX's
        MatMul does): a `qnn.matmul` of two tensors of rows, its int32 accumulator pending."""
        a, b = self.activation(node.input[0]), self.activation(node.input[1])
        for name, act in ((node.input[0], a), (node.input[1], b)):
            if not is_feature_last(act.onnx_shape):
                raise self.error(f"operand '{name}' of shape {list(act.onnx_shape)} is not a matrix of rows "
                                 "(M×K with M > 1, or batched [..., M, K]); a MatMul of two activations reads both "
                                 "operands as rows of features")
        a_shape, b_shape = tuple(a.onnx_shape), tuple(b.onnx_shape)
        m, k = a_shape[-2:]
        if b_shape[-2] != k:
            raise self.error(f"the operands' shapes {list(a_shape)} × {list(b_shape)} do not agree on K")
        n = b_shape[-1]
        rank = max(len(a_shape), len(b_shape)) - 2
        a_batch = (1,) * (rank - len(a_shape) + 2) + a_shape[:-2]
        b_batch = (1,) * (rank - len(b_shape) + 2) + b_shape[:-2]
        if any(x != y and 1 not in (x, y) for x, y in zip(a_batch, b_batch, strict=True)):
            raise self.error(f"batch axes {list(a_shape[:-2])} and {list(b_shape[:-2])} do not broadcast")
        batch = tuple(max(x, y) for x, y in zip(a_batch, b_batch, strict=True))
        corners = [int(x) * int(y) for x in (a.range.min(), a.range.max()) for y in (b.range.min(), b.range.max())]
        lo, hi = k * min(min(corners), 0), k * max(max(corners), 0)
        if lo < INT32_MIN or hi > INT32_MAX:
            raise self.error(f"the products of K = {k} terms may reach [{lo}, {hi}], beyond the int32 accumulator")
        rows = int(np.prod(batch, dtype=np.int64)) * m
        op = self.emit(qnn.MatMulOp(a.ssa, b.ssa, TensorType(SI32, [1, n, rows, 1]), a_batch, b_batch))
        onnx_shape = FeatureLastShape((*batch, m, n))
        act = Act(op.results[0], Range.scalar(lo, hi), onnx_shape)
        return [self.pending(Chain.over(act), onnx_shape)]

    # ----------------------------------------------------------------- Transpose (attention's heads)

    def transpose(self, node: onnx.NodeProto) -> list[Value]:
        """ONNX Transpose of rows of features of rank 2 to 4 (attention's heads: `[B, S, H, D]` →
        `[B, H, S, D]`, keys to `[B, H, D, S]`, back): a `qnn.transpose` (only data moves, by DMA), the
        result rows again; the identity is the same tensor."""
        x = self.activation(node.input[0])
        shape = x.onnx_shape
        attrs = self.attributes(node)
        perm = tuple(attrs.ints("perm", list(range(len(shape) - 1, -1, -1))))
        if sorted(perm) != list(range(len(shape))):
            raise self.error(f"perm {list(perm)} is not a permutation of the {len(shape)} axes of {list(shape)}")
        if not is_feature_last(shape) or not 2 <= len(shape) <= 4:
            raise self.error(f"Transpose of {list(shape)} is not supported (only of rows of features, of rank 2 "
                             "to 4: a MatMul's operands or results)")
        result = FeatureLastShape(tuple(shape[p] for p in perm))
        if perm == tuple(range(len(shape))):
            return [Act(x.ssa, x.range, result)]
        op = self.emit(qnn.TransposeOp(x.ssa, TensorType(qnn.element_type(x.ssa), ir_shape(result)), tuple(shape), perm))
        return [Act(op.results[0], Range.scalar(x.range.min(), x.range.max()), result)]
