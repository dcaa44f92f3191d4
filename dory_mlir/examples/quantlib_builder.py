"""Generate QuantLib/Deeploy-format integer ONNX networks with npz golden data.

The format of the MLPerf Tiny networks in `../shared/models/mlperf-tiny`: float32 tensors
holding integers, integer `Conv`/`Gemm` with int8 weights and int32 bias, the custom
`RequantShift(x, mul, add)` op (attributes `div`, `n_levels_out`, `signed` stored as float
tensors) after every layer, `Add` of requantized branches followed by a `RequantShift`,
`MaxPool`, `AveragePool`/`GlobalAveragePool`, `Reshape`. Goldens are `inputs.npz`,
`outputs.npz` and `activations.npz` (NCHW int64) like Deeploy's; the activations are the
integer tensors of the graph under their ONNX names (Deeploy's exports use PyTorch module
names instead, which the golden reader matches by position).

The goldens come from `onnx.reference.ReferenceEvaluator`, with `RequantShift` evaluated in
exact int64 as `clip(floor((x·mul + add + div/2) / div))` (the rule the MLPerf Tiny
activations follow). Every float32 value the other ops compute is checked to be an exact
integer (or, for average pools, an exact multiple of 1/count), so the goldens are exact.

    python -m dory_mlir.examples.quantlib_builder OUT_DIR [--name resnet8] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

OPSET = 11
EXACT_LIMIT = 2**24
INPUT_NAME = "input"
DIV = 2**16


class RequantShift(OpRun):
    """QuantLib's requantization, exact in int64 (the reference for the goldens)."""

    op_domain = ""

    def _run(self, x, mul, add, div=None, n_levels_out=None, signed=None):  # noqa: D401 - OpRun API
        d = int(np.asarray(div).reshape(-1)[0])
        levels = int(np.asarray(n_levels_out).reshape(-1)[0])
        lo, hi = (-(levels // 2), levels // 2 - 1) if int(np.asarray(signed).reshape(-1)[0]) else (0, levels - 1)
        # ONNX broadcasting: per-channel constants are (C, 1, 1) for N×C×H×W, per-column ones (N,)
        # for rows of features (M×N, B×M×N), as the importer reads them.
        m = np.asarray(mul).astype(np.int64)
        a = np.asarray(add).astype(np.int64)
        # Exact in float64: x is an integer or (after an average pool) a float32 mean with a
        # few fractional bits, and |x·mul| stays far below 2^53.
        xi = np.asarray(x, dtype=np.float64)
        scaled = xi * m
        if np.abs(scaled).max(initial=0) >= 2**40:
            raise ValueError("RequantShift product too large for an exact float64 reference")
        y = np.floor((scaled + a + d // 2) / d)
        return (np.clip(y, lo, hi).astype(np.float32),)


class ReduceMean(OpRun):
    """Deeploy's integer ReduceMean, floor((Σ + n/2) / n): the reference where the mean is read as
    an integer (at the network output); where a RequantShift follows, ONNX's float mean is kept.
    (The class name is the op type the evaluator replaces.)"""

    op_domain = ""

    def _run(self, x, axes=None, keepdims=1, noop_with_empty_axes=0):  # noqa: D401 - OpRun API
        axes = tuple(axes) if axes is not None else tuple(range(x.ndim))
        total = np.asarray(x, dtype=np.int64).sum(axis=axes, keepdims=bool(keepdims))
        count = int(np.prod([x.shape[a] for a in axes]))
        return (np.floor_divide(total + count // 2, count).astype(np.float32),)


def _scalar(value) -> int:
    return int(np.asarray(value).reshape(-1)[0])


class iNoNorm(OpRun):  # noqa: N801 - the op type the evaluator replaces
    """QuantLib's `iNoNorm(x, weight, bias)`: clip(floor(((x·weight + bias)·mul) / D)) to the signed
    n_levels, weight and bias broadcast as ONNX does (what Deeploy's iNoNorm goldens hold)."""

    op_domain = ""

    def _run(self, x, weight, bias, D=None, mul=None, n_levels=None):  # noqa: N803, D401 - OpRun API
        levels = _scalar(n_levels)
        acc = (np.asarray(x).astype(np.int64) * np.asarray(weight).astype(np.int64) + np.asarray(bias).astype(np.int64))
        y = np.floor_divide(acc * _scalar(mul), _scalar(D))
        return (np.clip(y, -(levels // 2), levels // 2 - 1).astype(np.float32),)


class iSoftmax(OpRun):  # noqa: N801 - the op type the evaluator replaces
    """QuantLib's integer softmax over the last axis, as Deeploy's goldens hold it (unsigned): with
    d = x − max, z = min(⌊−d / log2⌋, 31), p = d + z·log2, e = (coeffA·(p + coeffB)² + coeffC) >> z,
    y = ⌊e·(n_levels − 1) / Σe⌋."""

    op_domain = ""

    def _run(self, x, coeffA=None, coeffB=None, coeffC=None, log2=None, n_levels=None):  # noqa: N803, D401
        a, b, c, ln2, levels = (_scalar(v) for v in (coeffA, coeffB, coeffC, log2, n_levels))
        d = np.asarray(x).astype(np.int64)
        d = d - d.max(axis=-1, keepdims=True)
        z = np.minimum(-d // ln2, 31)
        p = d + z * ln2
        e = (a * (p + b) ** 2 + c) >> z
        return ((e * (levels - 1) // e.sum(axis=-1, keepdims=True)).astype(np.float32),)


class ITAMax(OpRun):
    """QuantLib's PACTIntegerITAMax over the last axis (n_levels 256, B = 8): shift = ⌊(max − x)·B/2^B + 1/2⌋,
    S = ⌊Σ n / 2^shift⌋, y = ⌊⌊n·(n − 1) / S⌋ / 2^shift⌋ (unsigned)."""

    op_domain = ""

    def _run(self, x, n_levels=None):  # noqa: D401 - OpRun API
        levels = _scalar(n_levels)
        x = np.asarray(x).astype(np.int64)
        shift = (x.max(axis=-1, keepdims=True) - x + 16) // 32
        total = (levels // 2**shift).sum(axis=-1, keepdims=True)
        return ((levels * (levels - 1) // total) // 2**shift).astype(np.float32),


class ITAPartialMax(OpRun):
    """QuantLib's PACTIntegerITAPartialMax over the last axis (n_levels 256, B = 8), in `groups` groups of
    `group_width` features: a running maximum from −127, the partial sum rescaled by 2^−⌊Δmax·B/2^B + 1/2⌋
    where a group raises it, then y = ⌊⌊n·(n − 1) / S⌋ / 2^shift⌋ (unsigned)."""

    op_domain = ""

    def _run(self, x, n_levels=None, groups=None, group_width=None):  # noqa: D401 - OpRun API
        levels = _scalar(n_levels)
        x = np.asarray(x).astype(np.int64)
        peak = np.full(x.shape[:-1] + (1,), -127, dtype=np.int64)
        total = np.zeros_like(peak)
        for g in range(groups):
            block = x[..., g * group_width:(g + 1) * group_width]
            block_max = block.max(axis=-1, keepdims=True)
            rescale = np.where(block_max > peak, (block_max - peak + 16) // 32, 0)
            peak = np.maximum(peak, block_max)
            total = total // 2**rescale + (levels // 2 ** ((peak - block + 16) // 32)).sum(axis=-1, keepdims=True)
        shift = (peak - x + 16) // 32
        return ((levels * (levels - 1) // total) // 2**shift).astype(np.float32),


class iRMSNorm(OpRun):  # noqa: N801 - the op type the evaluator replaces
    """QuantLib's integer RMS norm over the last axis, as Deeploy's C computes it: r = ⌊√(⌊Σx² / K⌋ + 1)⌋,
    y = clip(trunc(x·weight / r) >> log2 D) to the signed n_levels."""

    op_domain = ""

    def _run(self, x, weight, D=None, n_levels=None):  # noqa: N803, D401
        levels, shift = _scalar(n_levels), _scalar(D).bit_length() - 1
        x = np.asarray(x).astype(np.int64)
        roots = np.array([math.isqrt(int(v)) for v in ((x * x).sum(axis=-1) // x.shape[-1] + 1).reshape(-1)])
        num = x * np.asarray(weight).astype(np.int64)
        quotient = np.sign(num) * (np.abs(num) // roots.reshape(*x.shape[:-1], 1))
        return (np.clip(quotient >> shift, -(levels // 2), levels // 2 - 1).astype(np.float32),)


class iLayerNorm(OpRun):  # noqa: N801 - the op type the evaluator replaces
    """QuantLib's integer layer norm over the last axis, as Deeploy's C computes it: m = trunc(Σx / K),
    d = x − m, r = ⌊√(⌊Σd² / K⌋ + 1)⌋, y = clip((trunc(d·weight / r) + bias) >> log2 D) to the signed n_levels."""

    op_domain = ""

    def _run(self, x, weight, bias, D=None, n_levels=None):  # noqa: N803, D401
        levels, shift = _scalar(n_levels), _scalar(D).bit_length() - 1
        x = np.asarray(x).astype(np.int64)
        total = x.sum(axis=-1, keepdims=True)
        d = x - np.sign(total) * (np.abs(total) // x.shape[-1])
        roots = np.array([math.isqrt(int(v)) for v in ((d * d).sum(axis=-1) // x.shape[-1] + 1).reshape(-1)])
        num = d * np.asarray(weight).astype(np.int64)
        quotient = np.sign(num) * (np.abs(num) // roots.reshape(*x.shape[:-1], 1)) + np.asarray(bias).astype(np.int64)
        return (np.clip(quotient >> shift, -(levels // 2), levels // 2 - 1).astype(np.float32),)


class iHardswish(OpRun):  # noqa: N801 - the op type the evaluator replaces
    """QuantLib's integer hardswish: x · (clip(x + three, 0, six) · one_over_six), int32."""

    op_domain = ""

    def _run(self, x, one_over_six=None, three=None, six=None):  # noqa: D401 - OpRun API
        x = np.asarray(x).astype(np.int64)
        return ((x * (np.clip(x + three, 0, six) * one_over_six)).astype(np.float64),)


class iGELU(OpRun):  # noqa: N801 - the op type the evaluator replaces
    """QuantLib's integer GELU: L = sgn(x)·(one − (min(|x|, −b) + b)²), x·⌊(one + L) / 2⌋, int32."""

    op_domain = ""

    def _run(self, x, b=None, one=None):  # noqa: D401 - OpRun API
        x = np.asarray(x).astype(np.int64)
        d = np.minimum(np.abs(x), -b) + b
        return ((x * ((one + np.sign(x) * (one - d * d)) // 2)).astype(np.float64),)


class TrueIntegerDiv(OpRun):
    """QuantLib's forward of `TrueIntegerDiv` {Delta, eps, eta, y}: round half up of
    x·Delta·eta / (y·eta + eps) (exact rational arithmetic)."""

    op_domain = ""

    def _run(self, x, Delta=None, eps=None, eta=None, y=None):  # noqa: N803, D401 - OpRun API
        den = y * eta + eps
        return (np.floor_divide(2 * np.asarray(x).astype(np.int64) * Delta * eta + den, 2 * den).astype(np.float64),)


class _TrueIntegerDivBeforeRequant(OpRun):
    """`TrueIntegerDiv` as Deeploy computes it when a RequantShift (one mul, zero add) follows and its
    MergeTrueIntegerDivRequantShiftPass folds the pair: x·⌊Delta·eta / (y·eta + eps)⌋ (what its goldens hold)."""

    op_domain = ""

    def _run(self, x, Delta=None, eps=None, eta=None, y=None):  # noqa: N803, D401 - OpRun API
        return ((np.asarray(x).astype(np.int64) * (Delta * eta // (y * eta + eps))).astype(np.float64),)


_TrueIntegerDivBeforeRequant.__name__ = "TrueIntegerDiv"  # the op type the evaluator replaces


class IntegerMean(ReduceMean):
    """QuantLib's `IntegerMean` {axes, keepdims}: floor(mean + 1/2), Deeploy's integer mean."""

# QuantLib's integer ops the evaluator runs with our reference implementations (exact int64).
CUSTOM_OPS = {"iNoNorm": iNoNorm, "iSoftmax": iSoftmax, "iRMSNorm": iRMSNorm, "iHardswish": iHardswish,
              "TrueIntegerDiv": TrueIntegerDiv, "IntegerMean": IntegerMean, "iGELU": iGELU,
              "iLayerNorm": iLayerNorm, "ITAMax": ITAMax,
              "ITAPartialMax": ITAPartialMax}


def _float_tensor(value: float | list[float]) -> TensorProto:
    array = np.asarray(value, dtype=np.float32)
    return numpy_helper.from_array(array)


class QuantLibNetBuilder:
    """Builds a network layer by layer, evaluating each node at once on the seeded input.

    Requantization constants are calibrated on the actual accumulators so every layer's
    output spreads over its range; `signed` picks int8 activations ([-128, 127]) instead of
    uint8 ([0, 255]).
    """

    def __init__(self, seed: int, input_shape: Sequence[int], signed_input: bool = False):
        self.rng = np.random.default_rng([seed, 7])
        lo, hi = (-128, 127) if signed_input else (0, 255)
        x = self.rng.integers(lo, hi + 1, size=tuple(input_shape)).astype(np.float32)
        self.values: dict[str, np.ndarray] = {INPUT_NAME: x}
        self.inputs: list[str] = [INPUT_NAME]  # graph inputs, in order (`add_input` appends)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.recorded: list[str] = []  # integer tensors, in computation order
        self.shape = tuple(input_shape)
        self.last = INPUT_NAME
        self.count = 0
        self.integer_mean = False  # ReduceMean nodes evaluated as Deeploy's integer mean (ReduceMean)
        self.div_before_requant = False  # TrueIntegerDiv evaluated as Deeploy folds it into the next RequantShift

    # ------------------------------------------------------------------ plumbing

    def node(self, op_type: str, inputs: Sequence[str], record: bool = True, **attrs) -> str:
        name = f"{op_type}_{self.count}"
        output = f"t{self.count}"
        self.count += 1
        node = helper.make_node(op_type, list(inputs), [output], name=name, **attrs)
        self.nodes.append(node)
        self.values[output] = self.evaluate(node, inputs)
        if record:
            self.recorded.append(output)
        self.last = output
        return output

    def evaluate(self, node: onnx.NodeProto, inputs: Sequence[str]) -> np.ndarray:
        graph = helper.make_graph(
            [node], "one",
            [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(self.values[i].dtype), None) for i in inputs],
            [helper.make_value_info(node.output[0], onnx.TypeProto())],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        new_ops = [RequantShift] + ([ReduceMean] if node.op_type == "ReduceMean" and self.integer_mean else [])
        if node.op_type == "TrueIntegerDiv" and self.div_before_requant:
            new_ops.append(_TrueIntegerDivBeforeRequant)
        elif node.op_type in CUSTOM_OPS:
            new_ops.append(CUSTOM_OPS[node.op_type])
        evaluator = ReferenceEvaluator(model, new_ops=new_ops)
        (value,) = evaluator.run(None, {i: self.values[i] for i in inputs})
        value = np.asarray(value)
        if node.op_type not in ("AveragePool", "GlobalAveragePool", "ReduceMean") and (
            np.abs(value).max(initial=0) >= EXACT_LIMIT or not np.array_equal(value, np.round(value))
        ):
            raise ValueError(f"{node.name}: float32 would not hold these integers exactly")
        return value

    def param(self, name: str, value: np.ndarray) -> str:
        value = value.astype(np.float32)
        self.initializers.append(numpy_helper.from_array(value, name))
        self.values[name] = value
        return name

    def requant(self, acc: str, module: str, signed: bool, per_channel: bool = True, axis: int = 1) -> str:
        """RequantShift calibrated so the seeded accumulators fill the 8-bit range; per-channel
        constants vary along `axis` (1: NCHW channels, -1: the columns of rows of features)."""
        a = self.values[acc].astype(np.int64)
        axis = axis % a.ndim
        channels = a.shape[axis]
        axes = tuple(i for i in range(a.ndim) if i != axis)
        spread = np.maximum(np.abs(a).max(axis=axes), 1) if per_channel else np.full(channels, max(np.abs(a).max(), 1))
        target = 127 if signed else 255
        mul = np.maximum(1, np.round(target * DIV / spread * self.rng.uniform(0.7, 1.3, size=channels))).astype(np.int64)
        add = (self.rng.integers(-DIV // 4, DIV // 4, size=channels) if not signed else np.zeros(channels, np.int64))
        if not per_channel:
            mul, add = mul[:1], add[:1]
        # Per-channel constants broadcast along `axis`: (C, 1, 1) for NCHW tensors, (C,) for N×C and rows.
        mul, add = (v.reshape((-1,) + (1,) * (a.ndim - 1 - axis)) for v in (mul, add))
        index = len(self.initializers)
        attrs = dict(div=_float_tensor(DIV), n_levels_out=_float_tensor([256.0]), signed=_float_tensor([1.0 if signed else 0.0]))
        return self.node("RequantShift", [acc, self.param(f"{module}.mul{index}", mul), self.param(f"{module}.add{index}", add)],
                         **attrs)

    def add_input(self, name: str, shape: Sequence[int], signed: bool = False) -> str:
        """Another network input, seeded like the first."""
        lo, hi = (-128, 127) if signed else (0, 255)
        self.values[name] = self.rng.integers(lo, hi + 1, size=tuple(shape)).astype(np.float32)
        self.inputs.append(name)
        return name

    # ------------------------------------------------------------------ layers

    def conv1d(self, module: str, c_out: int, k: int, stride: int = 1, dilation: int = 1, groups: int = 1,
               x: str | None = None, signed: bool = False) -> str:
        """A 1-D conv (N×C×W) with 'same' padding for stride 1, then its RequantShift."""
        x = x or self.last
        c_in = self.values[x].shape[1]
        w = self.rng.integers(-128, 128, size=(c_out, c_in // groups, k))
        pad = dilation * (k - 1) // 2
        acc = self.node("Conv", [x, self.param(f"{module}.weight", w),
                                 self.param(f"{module}.bias", self.rng.integers(-2000, 2000, size=c_out))],
                        kernel_shape=[k], strides=[stride], pads=[pad, pad], group=groups, dilations=[dilation])
        return self.requant(acc, module, signed)

    def conv(self, module: str, c_out: int, k: int, stride: int = 1, groups: int = 1, x: str | None = None,
             signed: bool = False, bias: bool = True) -> str:
        x = x or self.last
        c_in = self.values[x].shape[1]
        w = self.rng.integers(-128, 128, size=(c_out, c_in // groups, k, k))
        inputs = [x, self.param(f"{module}.weight", w)]
        if bias:
            inputs.append(self.param(f"{module}.bias", self.rng.integers(-2000, 2000, size=c_out)))
        acc = self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                        pads=[k // 2] * 4, group=groups, dilations=[1, 1])
        return self.requant(acc, module, signed)

    def add(self, module: str, a: str, b: str, signed: bool) -> str:
        total = self.node("Add", [a, b])
        return self.requant(total, module, signed, per_channel=False)

    def maxpool(self, k: int) -> str:
        return self.node("MaxPool", [self.last], kernel_shape=[k, k], strides=[k, k], pads=[0] * 4)

    def global_avgpool(self, module: str, signed: bool) -> str:
        h, w = self.values[self.last].shape[2:]
        if (h * w) & (h * w - 1):
            raise ValueError("the window must hold a power of two of values so float32 means are exact")
        mean = self.node("GlobalAveragePool", [self.last], record=False)  # a float mean
        return self.requant(mean, module, signed, per_channel=False)

    def linear(self, module: str, n_out: int, signed: bool) -> str:
        x = self.last
        if self.values[x].ndim != 2:
            shape = f"{module}.shape"
            self.values[shape] = np.array([1, -1], dtype=np.int64)
            self.initializers.append(numpy_helper.from_array(self.values[shape], shape))
            x = self.node("Reshape", [x, shape], record=False)
        k = self.values[x].shape[1]
        w = self.rng.integers(-128, 128, size=(n_out, k))
        acc = self.node("Gemm", [x, self.param(f"{module}.weight", w), self.param(f"{module}.bias", self.rng.integers(-2000, 2000, size=n_out))],
                        transB=1)
        return self.requant(acc, module, signed, per_channel=False)

    def ints(self, name: str, values: Sequence[int]) -> str:
        """An int64 initializer (Slice starts/ends/axes/steps, Reshape shapes)."""
        self.values[name] = np.array(values, dtype=np.int64)
        self.initializers.append(numpy_helper.from_array(self.values[name], name))
        return name

    def rows_linear(self, module: str, n_out: int, signed: bool, gemm: bool = False, bias: bool = True,
                    per_column: bool = True, alpha: int = 1, beta: int = 1) -> str:
        """A linear layer on rows of features (M×K or B×M×K, last axis the features) with a constant
        weight, as transformers' linear layers export: `MatMul(x, W[K, N])` (+ `Add(bias[N])`), or
        `Gemm(x, W[N, K], bias[N], transB=1, alpha, beta)`; then RequantShift per column or per tensor."""
        x = self.last
        k = self.values[x].shape[-1]
        w = self.rng.integers(-128, 128, size=(n_out, k))
        b = self.rng.integers(-2000, 2000, size=n_out)
        if gemm:
            inputs = [x, self.param(f"{module}.weight", w)] + ([self.param(f"{module}.bias", b)] if bias else [])
            acc = self.node("Gemm", inputs, transB=1, alpha=float(alpha), beta=float(beta))
        else:
            acc = self.node("MatMul", [x, self.param(f"{module}.weight", w.T)], record=not bias)
            if bias:
                acc = self.node("Add", [acc, self.param(f"{module}.bias", b)])
        return self.requant(acc, module, signed, per_channel=per_column, axis=-1)

    def rows_gemm(self, module: str, n_out: int, offset: str, requant: str | None, signed: bool = True,
                  gemm: bool = True, trans_b: bool = True, alpha: int = 1, beta: int = 1,
                  over_batch: bool = False) -> str:
        """A linear layer on rows of features (M×K, B×M×K) whose constants vary over the rows, as
        Deeploy's GEMM tests export them: `Gemm(x, W, C, alpha, beta, transB)` or `MatMul(x, W)` +
        `Add(C)`, the offset C per "column" ([N]), per "row" ([M, 1]) or per "element" ([M, N]); then
        no RequantShift (`requant` None: the int32 output) or one with mul/add per "tensor",
        "column", "row" or "element". `over_batch`: the per-row/-element constants of a B×M×K input
        vary over the batch too ([B, M, ...]; else they broadcast over it)."""
        x = self.last
        k = self.values[x].shape[-1]
        w = self.rng.integers(-128, 128, size=(n_out, k))
        c = self.rng.integers(-2000, 2000, size=self.rows_constant_shape(offset, n_out, over_batch))
        if gemm:
            weight = self.param(f"{module}.weight", w if trans_b else w.T)
            acc = self.node("Gemm", [x, weight, self.param(f"{module}.offset", c)], record=requant is None,
                            transB=int(trans_b), alpha=float(alpha), beta=float(beta))
        else:
            product = self.node("MatMul", [x, self.param(f"{module}.weight", w.T)], record=False)
            acc = self.node("Add", [product, self.param(f"{module}.offset", c)], record=requant is None)
        if requant is None:
            return acc
        if requant in ("tensor", "column"):
            return self.requant(acc, module, signed, per_channel=requant == "column", axis=-1)
        return self.requant_rows(acc, module, signed, requant, over_batch)

    def rows_constant_shape(self, over: str, columns: int, over_batch: bool) -> tuple[int, ...]:
        """The ONNX shape of a constant of the rows of features `self.last` (… × M × K) that varies
        per "column" ([N]), per "row" ([M, 1]) or per "element" ([M, N]), `over_batch`: [B, M, …]."""
        rows = self.values[self.last].shape[:-1] if over_batch else self.values[self.last].shape[-2:-1]
        return {"column": (columns,), "row": (*rows, 1), "element": (*rows, columns)}[over]

    def requant_rows(self, acc: str, module: str, signed: bool, over: str, over_batch: bool = False) -> str:
        """RequantShift of rows of features whose mul/add vary per "row" ([M, 1]) or per "element"
        ([M, N]), calibrated per row so every row fills the 8-bit range."""
        a = self.values[acc].astype(np.int64)
        rows = a.shape[:-1] if over_batch else a.shape[-2:-1]
        shape = (*rows, 1 if over == "row" else a.shape[-1])
        full = (1,) * (a.ndim - len(shape)) + shape
        # the spread of each row (over the columns and the axes the constant broadcasts along)
        axes = tuple(i for i, d in enumerate(full) if d == 1 or i == a.ndim - 1)
        spread = np.broadcast_to(np.maximum(np.abs(a).max(axis=axes, keepdims=True), 1), full).reshape(shape)
        target = 127 if signed else 255
        mul = np.maximum(1, np.round(target * DIV / spread * self.rng.uniform(0.7, 1.3, size=shape))).astype(np.int64)
        add = self.rng.integers(-DIV // 4, DIV // 4, size=shape)
        index = len(self.initializers)
        attrs = dict(div=_float_tensor(DIV), n_levels_out=_float_tensor([256.0]), signed=_float_tensor([1.0 if signed else 0.0]))
        return self.node("RequantShift", [acc, self.param(f"{module}.mul{index}", mul), self.param(f"{module}.add{index}", add)],
                         **attrs)

    def matmul(self, module: str, a: str, b: str, requant: str | None, signed: bool = False) -> str:
        """`MatMul(a, b)` of two activations ([..., M, K] × [..., K, N], batch axes broadcast as ONNX
        does), then a RequantShift `requant` = "tensor" (one value), "column" (per output column),
        "batch" (one value per batch slice: constants shaped [*batch, 1, 1], as Deeploy's
        `[1, B, 1, 1]`) or None (the int32 products are the output)."""
        acc = self.node("MatMul", [a, b], record=requant is None)
        if requant in (None, "tensor", "column"):
            return acc if requant is None else self.requant(acc, module, signed, per_channel=requant == "column", axis=-1)
        values = self.values[acc].astype(np.int64)
        batch = values.shape[:-2]
        spread = np.maximum(np.abs(values).max(axis=(-2, -1)), 1)
        target = 127 if signed else 255
        mul = np.maximum(1, np.round(target * DIV / spread * self.rng.uniform(0.7, 1.3, size=batch))).astype(np.int64)
        add = self.rng.integers(-DIV // 4, DIV // 4, size=batch)
        mul, add = (v.reshape((*batch, 1, 1)) for v in (mul, add))
        index = len(self.initializers)
        attrs = dict(div=_float_tensor(DIV), n_levels_out=_float_tensor([256.0]), signed=_float_tensor([1.0 if signed else 0.0]))
        return self.node("RequantShift", [acc, self.param(f"{module}.mul{index}", mul), self.param(f"{module}.add{index}", add)],
                         **attrs)

    def i_no_norm(self, module: str, per_element: bool, shift: int = 16) -> str:
        """QuantLib's `iNoNorm` on the rows of features `self.last` (… × M × K): int8 weights per
        element ([M, K]) or per feature ([K]), an int32 bias per feature, `D` = 2^shift and `mul`
        calibrated so the outputs fill the signed 8-bit range (a few clip)."""
        x = self.values[self.last].astype(np.int64)
        k = x.shape[-1]
        weight = self.rng.integers(-128, 128, size=x.shape[-2:] if per_element else (k,))
        bias = self.rng.integers(-6000, 6000, size=k)
        spread = max(int(np.abs(x * weight + bias).max()), 1)
        mul = max(1, int(round(127 * 2**shift / spread * self.rng.uniform(0.8, 1.2))))
        attrs = dict(D=_float_tensor(2.0**shift), mul=_float_tensor(float(mul)), n_levels=_float_tensor(256.0))
        return self.node("iNoNorm", [self.last, self.param(f"{module}.weight", weight),
                                     self.param(f"{module}.bias", bias)], **attrs)

    def i_softmax(self, log2: int) -> str:
        """QuantLib's `iSoftmax` over the features of the rows `self.last`, I-BERT's second-order
        exponential for an input step of ln 2 / log2 (QuantLib's coefficients: coeffB = 1.353·log2,
        coeffC = 0.344 / 0.3585 · log2²; Deeploy's tests have log2 = 255)."""
        attrs = dict(coeffA=_float_tensor(1.0), coeffB=_float_tensor(float(round(1.353 * log2))),
                     coeffC=_float_tensor(float(round(0.344 / 0.3585 * log2 * log2))), log2=_float_tensor(float(log2)),
                     n_levels=_float_tensor(256.0))
        return self.node("iSoftmax", [self.last], **attrs)

    def ita_max(self, group_width: int | None = None) -> str:
        """QuantLib's `ITAMax` over the features of the rows `self.last` (int8: the output of ITA's signed
        RequantShift), or `ITAPartialMax` in groups of `group_width` features; n_levels a tensor attribute
        as QuantLib exports it."""
        if group_width is None:
            return self.node("ITAMax", [self.last], n_levels=_float_tensor(256.0))
        groups = self.values[self.last].shape[-1] // group_width
        return self.node("ITAPartialMax", [self.last], n_levels=_float_tensor(256.0), groups=groups,
                         group_width=group_width)

    def i_rms_norm(self, module: str, shift: int) -> str:
        """QuantLib's `iRMSNorm` over the features of the rows `self.last`: a gain per feature, as an
        int32 weight scaled by D = 2^shift (outputs about 40·gain·x/rms: a few clip)."""
        k = self.values[self.last].shape[-1]
        weight = np.round(self.rng.uniform(0.3, 2.5, size=k) * 40 * 2**shift).astype(np.int64)
        return self.node("iRMSNorm", [self.last, self.param(f"{module}.weight", weight)], D=2**shift, n_levels=256)

    def i_layer_norm(self, module: str, shift: int, per_feature: bool) -> str:
        """QuantLib's `iLayerNorm` over the features of the rows `self.last`: a gain and an offset per
        feature (`per_feature`, else one of each, as QuantLib's totScaler without affine parameters),
        int32 and scaled by D = 2^shift (outputs about 40·gain·z + offset: a few clip); D and n_levels
        are tensor attributes, as QuantLib exports them."""
        k = self.values[self.last].shape[-1] if per_feature else 1
        weight = np.round(self.rng.uniform(0.3, 2.5, size=k) * 40 * 2**shift).astype(np.int64)
        bias = np.round(self.rng.uniform(-30, 30, size=k) * 2**shift).astype(np.int64) if per_feature else np.zeros(1)
        return self.node("iLayerNorm", [self.last, self.param(f"{module}.weight", weight), self.param(f"{module}.bias", bias)],
                         D=_float_tensor(2.0**shift), n_levels=_float_tensor(256.0))

    def i_hardswish(self, step: int) -> str:
        """QuantLib's `iHardswish` for an input step of 1/step: three = 3·step, six = 6·step,
        one_over_six = round(2^k / 6) for a seeded k (int32 output)."""
        one_over_six = round(2 ** int(self.rng.integers(3, 8)) / 6)
        return self.node("iHardswish", [self.last], one_over_six=one_over_six, three=3 * step, six=6 * step)

    def i_gelu(self, eps_in: float) -> str:
        """QuantLib's `iGELU` for an input step eps_in, its constants as PACTIntegerGELU rounds them:
        b = round(−1.769 / ε_b), one = round(1 / (ε_b²·0.2888)) with ε_b = eps_in / √2 (int32 output)."""
        eps_b = eps_in / math.sqrt(2.0)
        b, one = math.floor(-1.769 / eps_b + 0.5), math.floor(1.0 / (eps_b * eps_b * 0.2888) + 0.5)
        return self.node("iGELU", [self.last], b=b, one=one)

    def true_integer_div(self, delta: int, eps: int, eta: int, y: int, before_requant: bool) -> str:
        """QuantLib's `TrueIntegerDiv` of `self.last` by y (the quotient scaled by delta); `before_requant`:
        a RequantShift with one mul and a zero add follows (Deeploy's reading, see _TrueIntegerDivBeforeRequant),
        whose input is then no tensor of Deeploy's (not recorded)."""
        self.div_before_requant = before_requant
        try:
            return self.node("TrueIntegerDiv", [self.last], record=not before_requant, Delta=delta, eps=eps, eta=eta, y=y)
        finally:
            self.div_before_requant = False

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """`Reshape(x, shape)` (not recorded: exporters record no reshape)."""
        return self.node("Reshape", [x, self.ints(f"shape{self.count}", shape)], record=False)

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        """`Transpose(x, perm)` (not recorded: it only moves data)."""
        return self.node("Transpose", [x], record=False, perm=list(perm))

    def attention(self, module: str, x: str, heads: int, keys: str | None = None, values: str | None = None,
                  key_perm: Sequence[int] | None = None) -> str:
        """QuantLib's integerized multi-head attention on the rows `x` ([..., S, E], E = heads · D), as
        Deeploy's Attention test exports it: Q (and K, V unless the `keys`/`values` rows [..., T, E] are
        given: a KV cache) = x·W + b requantized per tensor, each reshaped to [..., S, H, D] and transposed
        to heads ([..., H, S, D]; keys to [..., H, D, T], `key_perm` of the 4-D [B, S, H, D] another
        permutation giving that), scores = Q·Kᵀ requantized, iSoftmax, context = P·V requantized,
        transposed back, reshaped to [..., S, E], projected: the block's output."""
        lead = self.values[x].shape[:-2]
        embed = self.values[x].shape[-1]
        head_dim = embed // heads

        def projected(name: str, source: str | None) -> str:
            if source is None:
                self.last = x
                source = self.rows_linear(f"{module}.{name}", embed, signed=True, per_column=False)
            rows = self.values[source].shape[-2]
            return self.reshape(source, (*lead, rows, heads, head_dim))

        q, k, v = projected("q", None), projected("k", keys), projected("v", values)
        n = len(lead)
        to_heads = (*range(n), n + 1, n, n + 2)  # [..., S, H, D] -> [..., H, S, D]
        if key_perm is None:
            kt = self.transpose(k, (*range(n), n + 1, n + 2, n))  # [..., H, D, T]
        else:
            kt = self.transpose(self.transpose(k, to_heads), key_perm)
        scores = self.matmul(f"{module}.scores", self.transpose(q, to_heads), kt, "tensor", signed=True)
        self.last = scores
        probs = self.i_softmax(255)
        context = self.matmul(f"{module}.context", probs, self.transpose(v, to_heads), "tensor", signed=True)
        merged = self.reshape(self.transpose(context, to_heads), (*lead, self.values[x].shape[-2], embed))
        self.last = merged
        return self.rows_linear(f"{module}.out", embed, signed=True, per_column=False)

    def write(self, folder: str | Path, name: str | None = None) -> Path:
        """Writes `network.onnx` and its npz goldens (`inputs`, `outputs`, `activations`) into `folder`
        (created); the graph is named `name`, else after the folder. Returns the folder."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        model, goldens = self.build(name or out.name)
        onnx.save(model, out / "network.onnx")
        for file, arrays in goldens.items():
            np.savez(out / f"{file}.npz", **arrays)
        return out

    def build(self, name: str) -> tuple[onnx.ModelProto, dict[str, dict[str, np.ndarray]]]:
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(i, TensorProto.FLOAT, list(self.values[i].shape)) for i in self.inputs],
            [helper.make_tensor_value_info(self.last, TensorProto.FLOAT, list(self.values[self.last].shape))],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dory-mlir quantlib_builder")
        as_int = lambda v: np.asarray(v).astype(np.int64)  # noqa: E731
        goldens = {
            "inputs": {f"input_{k}": as_int(self.values[i]) for k, i in enumerate(self.inputs)},
            "outputs": {"output_0": as_int(self.values[self.last])},
            "activations": {tensor: as_int(self.values[tensor]) for tensor in self.recorded},
        }
        return model, goldens


def resnet8(seed: int) -> QuantLibNetBuilder:
    """MLPerf Tiny's image classifier at its size: ResNet-8 on 32x32x3, signed activations, 3 residual stages."""
    b = QuantLibNetBuilder(seed, (1, 3, 32, 32), signed_input=True)
    x = b.conv("stem", 16, 3, signed=True)
    for stage, (channels, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
        y = b.conv(f"stage{stage}.conv1", channels, 3, stride, x=x, signed=True)
        y = b.conv(f"stage{stage}.conv2", channels, 3, x=y, signed=True)
        skip = x if stride == 1 else b.conv(f"stage{stage}.down", channels, 1, stride, x=x, signed=True)
        x = b.add(f"stage{stage}.add", y, skip, signed=True)
    b.global_avgpool("pool", signed=True)
    b.linear("fc", 10, signed=True)
    return b


def mobilenet_v1(seed: int, width: float = 1.0, classes: int = 1000) -> QuantLibNetBuilder:
    """MobileNetV1 of a width multiplier: a strided 3x3 conv, 13 depthwise-separable blocks, global average
    pool, FC; unsigned activations on 128x128x3 (`bench/compile.py` times the 1.0 network)."""
    b = QuantLibNetBuilder(seed, (1, 3, 128, 128))
    b.conv("conv0", int(32 * width), 3, 2)
    blocks = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + ((1024, 2), (1024, 1))
    for i, (channels, stride) in enumerate(blocks):
        c = b.values[b.last].shape[1]
        b.conv(f"dw{i}", c, 3, stride, groups=c, bias=False)
        b.conv(f"pw{i}", int(channels * width), 1)
    b.global_avgpool("pool", signed=False)
    b.linear("fc", classes, signed=True)
    return b


def mobilenet_v1_025(seed: int) -> QuantLibNetBuilder:
    """MobileNetV1-0.25 (MLPerf Tiny's visual wake words network): its 13 depthwise-separable blocks,
    unsigned activations, on 128x128x3 (VWW uses 96x96; 128 keeps the final average pool's
    window a power of two, so the float32 means of the golden run are exact)."""
    return mobilenet_v1(seed, 0.25, 2)


def kws_maxpool(seed: int) -> QuantLibNetBuilder:
    """A DS-CNN-like keyword spotter with a max pool head, non-square input."""
    b = QuantLibNetBuilder(seed, (1, 1, 24, 12))
    b.conv("conv0", 16, 3, 2)
    b.conv("dw0", 16, 3, groups=16)
    b.conv("pw0", 24, 1)
    b.maxpool(2)
    b.linear("fc", 12, signed=True)
    return b


def two_inputs(seed: int) -> QuantLibNetBuilder:
    """Two network inputs of their own types: an unsigned image through a conv, added by a
    residual `Add` to a signed second input of the conv's output shape, then a strided conv
    and a classifier."""
    b = QuantLibNetBuilder(seed, (1, 3, 12, 12))
    second = b.add_input("input_b", (1, 8, 12, 12), signed=True)
    y = b.conv("branch", 8, 3, signed=True)
    b.add("join", y, second, signed=True)
    b.conv("head", 8, 3, 2)
    b.linear("fc", 6, signed=True)
    return b


def tcn_1d(seed: int) -> QuantLibNetBuilder:
    """A 1-D network (N×C×W inputs, activations and outputs, as Deeploy's 1-D tests): dilated
    1-D convs with a residual add, a strided 1-D conv and a classifier."""
    b = QuantLibNetBuilder(seed, (1, 4, 32), signed_input=True)
    x = b.conv1d("conv0", 8, 3, signed=True)
    y = b.conv1d("conv1", 8, 3, dilation=2, x=x, signed=True)
    y = b.conv1d("conv2", 8, 3, dilation=4, x=y, signed=True)
    b.add("res", x, y, signed=True)
    b.conv1d("down", 12, 3, stride=2)
    b.linear("fc", 5, signed=True)
    return b


def sub_branches(seed: int) -> QuantLibNetBuilder:
    """`Sub` of two activations (two conv branches), of a constant from a tensor and of a tensor
    from a constant, each requantized, then a conv."""
    b = QuantLibNetBuilder(seed, (1, 4, 8, 8))
    x = b.conv("stem", 6, 3)
    left = b.conv("left", 6, 3, x=x, signed=True)
    right = b.conv("right", 6, 1, x=x, signed=True)
    b.requant(b.node("Sub", [left, right]), "diff", signed=True, per_channel=False)
    offsets = b.param("offsets", b.rng.integers(-40, 40, size=(1, 6, 1, 1)))
    b.requant(b.node("Sub", [b.last, offsets]), "shifted", signed=True)
    b.requant(b.node("Sub", [b.param("bias", np.array([50.0])), b.last]), "flipped", signed=False)
    b.conv("head", 5, 3)
    return b


def reduce_heads(seed: int) -> QuantLibNetBuilder:
    """ReduceSum over channels (kept) → RequantShift → conv; ReduceMean over the width →
    RequantShift (exact float mean) → conv; a final ReduceMean over channels read as an integer at
    the output with keepdims=0 (Deeploy's integer mean)."""
    b = QuantLibNetBuilder(seed, (1, 5, 8, 8))  # 64 pixels: the float32 means are exact
    x = b.conv("stem", 8, 3, signed=True)
    b.requant(b.node("ReduceSum", [x], axes=[1], keepdims=1), "sum", signed=True, per_channel=False)
    y = b.conv("mid", 8, 3, signed=True)
    b.requant(b.node("ReduceMean", [y], axes=[3], keepdims=1, record=False), "pool", signed=True, per_channel=False)
    b.integer_mean = True
    b.conv("wide", 4, 1, signed=True)
    b.node("ReduceMean", [b.last], axes=[1], keepdims=0)
    return b


def slice_crop(seed: int) -> QuantLibNetBuilder:
    """Slices with steps along channels, height and width (and negative indices), then a conv."""
    b = QuantLibNetBuilder(seed, (1, 6, 11, 10))
    x = b.conv("stem", 8, 3)
    t = b.node("Slice", [x, b.ints("s0.starts", [1, 2]), b.ints("s0.ends", [7, -1]), b.ints("s0.axes", [1, 2]),
                         b.ints("s0.steps", [2, 3])])
    b.node("Slice", [t, b.ints("s1.starts", [-7]), b.ints("s1.ends", [100]), b.ints("s1.axes", [3])])
    b.conv("head", 4, 3, signed=True)
    return b


def concat_branches(seed: int) -> QuantLibNetBuilder:
    """Concat on channels of two branches, on height of three, and on width, then a conv."""
    b = QuantLibNetBuilder(seed, (1, 3, 8, 6))
    x = b.conv("stem", 4, 3)
    a, c = b.conv("a", 3, 3, x=x), b.conv("c", 5, 1, x=x)
    joined = b.node("Concat", [a, c], axis=1)
    rows = b.node("Concat", [joined, b.conv("r", 8, 3, x=joined), joined], axis=2)
    cols = b.node("Concat", [rows, b.conv("k", 8, 1, x=rows)], axis=-1)
    b.conv("head", 6, 3, x=cols)
    return b


def pad_alone(seed: int) -> QuantLibNetBuilder:
    """Pads no convolution absorbs: before a max pool (pad value 0) and at the output."""
    b = QuantLibNetBuilder(seed, (1, 3, 9, 7))
    b.conv("stem", 5, 3)
    b.node("Pad", [b.last, b.ints("p0.pads", [0, 0, 1, 0, 0, 0, 0, 1])], mode="constant")
    b.maxpool(2)
    b.conv("mid", 4, 3, signed=True)
    b.node("Pad", [b.last, b.ints("p1.pads", [0, 0, 2, 1, 0, 0, 0, 3])], mode="constant")
    return b


def requant_1d_channel_first(seed: int) -> QuantLibNetBuilder:
    """A 1-D conv whose RequantShift constants are C×1×1 (QuantLib's 2-D habit, as Deeploy's
    Conv-Regular_1D_RQ writes them): one value per channel."""
    b = QuantLibNetBuilder(seed, (1, 4, 20))
    x = b.conv1d("conv0", 6, 3)
    rq = b.nodes[-1]
    for name in rq.input[1:]:
        index = next(i for i, t in enumerate(b.initializers) if t.name == name)
        values = b.values[name].reshape(-1, 1, 1)
        b.initializers[index] = numpy_helper.from_array(values, name)
    b.conv1d("conv1", 3, 3, x=x, signed=True)
    return b


def vector_add(seed: int) -> QuantLibNetBuilder:
    """An add of two 1×K vectors (two network inputs, as Deeploy's Identity tests), then a classifier."""
    b = QuantLibNetBuilder(seed, (1, 24))
    second = b.add_input("input_b", (1, 24))
    b.add("sum", b.last, second, signed=False)
    b.linear("fc", 5, signed=True)
    return b


def data_op_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    """Small networks of the data-movement and arithmetic ops (Sub, ReduceSum/Mean, Slice, Concat,
    Pad alone), tested on their own in tests/test_data_ops.py."""
    return {"sub_branches": sub_branches, "reduce_heads": reduce_heads, "slice_crop": slice_crop,
            "concat_branches": concat_branches, "pad_alone": pad_alone,
            "requant_1d_channel_first": requant_1d_channel_first, "vector_add": vector_add}

def rows_matmul(seed: int) -> QuantLibNetBuilder:
    """A 16×16 input of 16 rows × 16 features (square, so a transposed layout could not pass by its
    shape) through MatMul + RequantShift per tensor."""
    b = QuantLibNetBuilder(seed, (16, 16), signed_input=True)
    b.rows_linear("fc", 12, signed=True, bias=False, per_column=False)
    return b


def rows_batch_gemm(seed: int) -> QuantLibNetBuilder:
    """B×M×K = 2×3×16 through Gemm (transB, bias) + RequantShift per column."""
    b = QuantLibNetBuilder(seed, (2, 3, 16))
    b.rows_linear("fc", 8, signed=False, gemm=True)
    return b


def rows_mlp(seed: int) -> QuantLibNetBuilder:
    """A transformer's feed-forward block on 5 rows of 24 features: two chained linear layers, Gemm
    (transB, bias, alpha 2, beta 3) + RequantShift per column, then MatMul + Add bias + RequantShift
    per column, and the residual Add of the block's input + RequantShift."""
    b = QuantLibNetBuilder(seed, (5, 24), signed_input=True)
    b.rows_linear("fc1", 32, signed=False, gemm=True, alpha=2, beta=3)
    y = b.rows_linear("fc2", 24, signed=True)
    b.add("residual", INPUT_NAME, y, signed=True)
    return b


def rows_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    """Networks on rows of features (GEMM data M×K, B×M×K), tested in tests/test_gemm_rows.py."""
    return {"rows_matmul": rows_matmul, "rows_batch_gemm": rows_batch_gemm, "rows_mlp": rows_mlp}


def gemm_element_offset_int32(seed: int) -> QuantLibNetBuilder:
    """Deeploy's GEMM-Regular: Gemm (transB) with an offset per element [M, N], int32 output; the
    shapes vary with the seed."""
    rng = np.random.default_rng([seed, 11])
    b = QuantLibNetBuilder(seed, (int(rng.integers(2, 14)), int(rng.integers(3, 40))), signed_input=True)
    b.rows_gemm("gemm", int(rng.integers(2, 20)), offset="element", requant=None)
    return b


def gemm_requant_per_row(seed: int) -> QuantLibNetBuilder:
    """Deeploy's GEMM-Regular_RQPerRow: Gemm (no transB, alpha 2, beta 3) with an offset per element,
    RequantShift per row [M, 1]."""
    rng = np.random.default_rng([seed, 12])
    b = QuantLibNetBuilder(seed, (int(rng.integers(2, 14)), int(rng.integers(3, 40))), signed_input=True)
    b.rows_gemm("gemm", int(rng.integers(2, 20)), offset="element", requant="row", trans_b=False, alpha=2, beta=3)
    return b


def matmul_add_element_int32(seed: int) -> QuantLibNetBuilder:
    """Deeploy's MatMul-Add: MatMul then Add of an [M, N] constant, int32 output."""
    rng = np.random.default_rng([seed, 13])
    b = QuantLibNetBuilder(seed, (int(rng.integers(2, 14)), int(rng.integers(3, 40))))
    b.rows_gemm("fc", int(rng.integers(2, 20)), offset="element", requant=None, gemm=False)
    return b


def batch_gemm_rows(seed: int) -> QuantLibNetBuilder:
    """B×M×K rows through Gemm (transB) with an offset per row [M, 1] (the same for every batch),
    RequantShift per element [B, M, N] (varying over the batch too), unsigned output."""
    rng = np.random.default_rng([seed, 14])
    b = QuantLibNetBuilder(seed, (int(rng.integers(2, 4)), int(rng.integers(2, 6)), int(rng.integers(3, 24))))
    b.rows_gemm("gemm", int(rng.integers(2, 20)), offset="row", requant="element", signed=False, over_batch=True)
    return b


def rows_mlp_row_constants(seed: int) -> QuantLibNetBuilder:
    """Two chained linear layers on rows: Gemm (transB, beta 2) with a per-row offset and a
    RequantShift per row, then MatMul + Add of an offset per element and a RequantShift per column."""
    rng = np.random.default_rng([seed, 15])
    b = QuantLibNetBuilder(seed, (int(rng.integers(2, 12)), int(rng.integers(3, 32))), signed_input=True)
    b.rows_gemm("fc1", int(rng.integers(5, 24)), offset="row", requant="row", beta=2)
    b.rows_gemm("fc2", int(rng.integers(2, 20)), offset="element", requant="column", gemm=False, signed=False)
    return b


def row_constant_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    """GEMMs on rows whose offsets and requantization vary over the rows (per row [M, 1], per
    element [M, N]), seeded shapes; tested in tests/test_gemm_row_constants.py."""
    return {"gemm_element_offset_int32": gemm_element_offset_int32, "gemm_requant_per_row": gemm_requant_per_row,
            "matmul_add_element_int32": matmul_add_element_int32, "batch_gemm_rows": batch_gemm_rows,
            "rows_mlp_row_constants": rows_mlp_row_constants}


def random_matmul(seed: int) -> QuantLibNetBuilder:
    """A seeded MatMul of two activations: shapes [*Ba, M, K] × [*Bb, K, N] with 0–2 batch axes (some
    broadcast: size 1 on one side, or fewer axes), each operand signed or unsigned, either a network
    input or computed by a linear layer on rows (Q = X·W, as attention computes its operands), and
    no requantization (int32 output), or a RequantShift per tensor, per column or per batch slice."""
    rng = np.random.default_rng([seed, 11])
    m, k, n = (int(v) for v in rng.integers(2, 13, size=3))
    batch = [int(v) for v in rng.integers(1, 4, size=int(rng.integers(0, 3)))]

    def operand_batch() -> list[int]:
        dims = [d if rng.random() < 0.7 else 1 for d in batch]
        return dims[int(rng.integers(0, len(dims) + 1)):] if rng.random() < 0.3 else dims

    a_batch, b_batch = operand_batch(), operand_batch()  # M, K >= 2: no operand is a 1×K vector
    a_signed, b_signed = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    b = QuantLibNetBuilder(seed, (*a_batch, m, k), signed_input=a_signed)
    a_name = INPUT_NAME
    if rng.random() < 0.3:  # the left operand computed by a linear layer (rows), K features out
        b.last = INPUT_NAME
        a_name = b.rows_linear("q", k, signed=a_signed)
    rhs = b.add_input("input_b", (*b_batch, k, n), signed=b_signed)
    if rng.random() < 0.3:
        b.last = rhs
        rhs = b.rows_linear("v", n, signed=b_signed)
    requant = [None, "tensor", "column", "batch"][int(rng.integers(0, 4))]
    if requant == "batch" and not batch:
        requant = "tensor"
    b.matmul("scores", a_name, rhs, requant, signed=bool(rng.integers(0, 2)))
    return b


def matmul_long_k(seed: int) -> QuantLibNetBuilder:
    """[2, 6, 240] × [2, 240, 5] (a long reduction: small L1 budgets slice K, with int32 partial
    sums) with a RequantShift per batch slice; signed left, unsigned right operand."""
    b = QuantLibNetBuilder(seed, (2, 6, 240), signed_input=True)
    rhs = b.add_input("input_b", (2, 240, 5))
    b.matmul("scores", INPUT_NAME, rhs, "batch", signed=True)
    return b


def matmul_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    """MatMul of two activations (seeded random shapes), tested in tests/test_matmul_acts.py."""
    return {"random_matmul": random_matmul, "matmul_long_k": matmul_long_k}


def random_no_norm(seed: int) -> QuantLibNetBuilder:
    """QuantLib's iNoNorm on seeded rows of features ([M, K], [B, M, K] or [1, B, M, K], signed or
    unsigned input), weights per element or per feature, sometimes after a linear layer on the rows."""
    rng = np.random.default_rng([seed, 21])
    m, k = (int(v) for v in rng.integers(2, 24, size=2))
    shape = [(m, k), (int(rng.integers(1, 4)), m, k), (1, int(rng.integers(1, 4)), m, k)][int(rng.integers(0, 3))]
    b = QuantLibNetBuilder(seed, shape, signed_input=bool(rng.integers(0, 2)))
    if rng.random() < 0.3:
        b.rows_linear("fc", k, signed=True)
    b.i_no_norm("norm", per_element=bool(rng.integers(0, 2)), shift=int(rng.integers(8, 20)))
    return b


def _random_rows(seed: int, stream: int, max_features: int = 69) -> tuple[np.random.Generator, QuantLibNetBuilder, int]:
    """A seeded input of rows of K ≤ `max_features` features ([M, K], [B, M, K] or [1, B, M, K], signed or
    unsigned) for the row-wise ops: the generator (stream `stream` of the seed), the builder and K."""
    rng = np.random.default_rng([seed, stream])
    m, k = int(rng.integers(2, 20)), int(rng.integers(2, max_features + 1))
    shape = [(m, k), (int(rng.integers(1, 4)), m, k), (1, int(rng.integers(1, 4)), m, k)][int(rng.integers(0, 3))]
    return rng, QuantLibNetBuilder(seed, shape, signed_input=bool(rng.integers(0, 2))), k


def random_softmax(seed: int) -> QuantLibNetBuilder:
    """QuantLib's iSoftmax over seeded rows of features ([M, K], [B, M, K] or [1, B, M, K], signed or
    unsigned input, log2 from 8 to 255), sometimes after a linear layer on the rows (attention's
    scores) and sometimes requantized after (a layer of its own: the softmax kernel does not requantize)."""
    rng, b, k = _random_rows(seed, 22)
    if rng.random() < 0.3:
        b.rows_linear("scores", k, signed=True)
    b.i_softmax(int(rng.choice([8, 37, 128, 255])))
    if rng.random() < 0.3:
        b.requant(b.last, "probs", signed=True, per_channel=False, axis=-1)
    return b


def random_rms_norm(seed: int) -> QuantLibNetBuilder:
    """QuantLib's iRMSNorm over seeded rows of features ([M, K], [B, M, K] or [1, B, M, K], signed or
    unsigned input, D from 2^8 to 2^16), sometimes after a linear layer on the rows."""
    rng, b, k = _random_rows(seed, 23)
    if rng.random() < 0.3:
        b.rows_linear("fc", k, signed=True)
    b.i_rms_norm("norm", int(rng.integers(8, 17)))
    return b


def _random_elementwise_input(seed: int, stream: int, rows_probability: float = 0.3
                              ) -> tuple[np.random.Generator, QuantLibNetBuilder, bool]:
    """A seeded N×C×H×W or (with `rows_probability`) rows [M, K] input, signed or unsigned, for the
    elementwise ops: the generator (stream `stream` of the seed), the builder and whether it is rows."""
    rng = np.random.default_rng([seed, stream])
    rows = rng.random() < rows_probability
    shape = (int(rng.integers(2, 12)), int(rng.integers(2, 40))) if rows else \
        (1, int(rng.integers(1, 9)), int(rng.integers(1, 12)), int(rng.integers(1, 12)))
    return rng, QuantLibNetBuilder(seed, shape, signed_input=bool(rng.integers(0, 2))), rows


def random_hardswish(seed: int) -> QuantLibNetBuilder:
    """QuantLib's iHardswish on a seeded N×C×H×W or rows tensor (signed or unsigned input, input steps
    that clip at 0 and six or not), sometimes after a conv, then a RequantShift per tensor or per
    channel, or none (the int32 output)."""
    rng, b, rows = _random_elementwise_input(seed, 24)
    if not rows and rng.random() < 0.3:
        b.conv("conv", int(rng.integers(1, 9)), 3, signed=True)
    acc = b.i_hardswish(int(rng.choice([4, 16, 42, 255])))
    requant = ["none", "tensor", "channel"][int(rng.integers(0, 3))]
    if requant != "none":
        b.requant(acc, "act", signed=bool(rng.integers(0, 2)), per_channel=requant == "channel", axis=-1 if rows else 1)
    return b


def random_ita_max(seed: int) -> QuantLibNetBuilder:
    """QuantLib's ITAMax, or ITAPartialMax in groups of 1 to 16 features, over seeded rows of int8 features
    ([M, K], [B, M, K] or [1, B, M, K]), the input or (sometimes) the signed requantized scores of a linear
    layer, sometimes requantized after (a layer of its own: the kernel does not requantize)."""
    rng = np.random.default_rng([seed, 29])
    width = int(rng.choice([1, 4, 16])) if rng.random() < 0.5 else None
    m, k = int(rng.integers(2, 20)), int(rng.integers(1, 5)) * width if width else int(rng.integers(2, 70))
    shape = [(m, k), (int(rng.integers(1, 4)), m, k), (1, int(rng.integers(1, 4)), m, k)][int(rng.integers(0, 3))]
    b = QuantLibNetBuilder(seed, shape, signed_input=True)
    if rng.random() < 0.3:
        b.rows_linear("scores", k, signed=True)
    b.ita_max(width)
    if rng.random() < 0.3:
        b.requant(b.last, "probs", signed=True, per_channel=False, axis=-1)
    return b


def random_layer_norm(seed: int) -> QuantLibNetBuilder:
    """QuantLib's iLayerNorm over seeded rows of features ([M, K], [B, M, K] or [1, B, M, K], signed or
    unsigned input, D from 2^8 to 2^20, constants per feature or one for all), sometimes after a linear
    layer on the rows, sometimes followed by one. K ≤ 44: a tile of one row then fits the tests' tight L1
    (600 B) with the two int32 constants per feature."""
    rng, b, k = _random_rows(seed, 28, max_features=44)
    if rng.random() < 0.3:
        b.rows_linear("fc", k, signed=True)
    b.i_layer_norm("norm", int(rng.integers(8, 21)), per_feature=rng.random() < 0.7)
    if rng.random() < 0.3:
        b.rows_linear("out", int(rng.integers(2, 20)), signed=True)
    return b


def random_gelu(seed: int) -> QuantLibNetBuilder:
    """QuantLib's iGELU on a seeded N×C×H×W or rows tensor (signed or unsigned input, input steps whose
    polynomial saturates within the 8-bit range or not), sometimes after a layer, then a RequantShift per
    tensor or per channel, or none (the int32 output)."""
    rng, b, rows = _random_elementwise_input(seed, 27, rows_probability=0.4)
    if rng.random() < 0.3:
        b.rows_linear("fc", b.shape[-1], signed=True) if rows else b.conv("conv", int(rng.integers(1, 9)), 3, signed=True)
    acc = b.i_gelu(float(rng.choice([1 / 8, 1 / 16, 8 / 255, 1 / 50, 1 / 64])))
    requant = ["none", "tensor", "channel"][int(rng.integers(0, 3))]
    if requant != "none":
        b.requant(acc, "act", signed=bool(rng.integers(0, 2)), per_channel=requant == "channel", axis=-1 if rows else 1)
    return b


def random_true_integer_div(seed: int) -> QuantLibNetBuilder:
    """QuantLib's TrueIntegerDiv on a seeded N×C×H×W or rows tensor (signed or unsigned input), sometimes
    after a conv: either Deeploy's pattern (a large Delta, then a RequantShift with one mul and a zero add,
    folded by Deeploy) or QuantLib's rounded quotient with a small Delta (its values fit 16 bits), as the
    output or requantized per channel with an offset."""
    rng, b, rows = _random_elementwise_input(seed, 25)
    if not rows and rng.random() < 0.3:
        b.conv("conv", int(rng.integers(1, 9)), 3, signed=True)
    y, eta, eps = int(rng.integers(1, 9)), int(rng.choice([1, 7, 1000, 200000])), int(rng.integers(0, 3))
    then = ["folded", "output", "requantized"][int(rng.integers(0, 3))]
    if then == "folded":
        b.true_integer_div(2 ** int(rng.integers(8, 15)), eps, eta, y, before_requant=True)
        b.requant(b.last, "div", signed=True, per_channel=False, axis=-1 if rows else 1)
    else:
        b.true_integer_div(int(rng.integers(1, 64)), eps, eta, y, before_requant=False)
        if then == "requantized":
            b.requant(b.last, "div", signed=False, per_channel=True, axis=-1 if rows else 1)
    return b


def random_integer_mean(seed: int) -> QuantLibNetBuilder:
    """QuantLib's IntegerMean over the channels or a seeded subset of the spatial axes of an N×C×H×W or
    N×C×W tensor (signed or unsigned input), sometimes after a conv; kept axes then sometimes a
    RequantShift (the mean is rounded before it), or dropped axes at the output. (Not both channels and
    space: that sum is a conv with an H×W kernel, whose im2col the tests' tight L1 does not hold.)"""
    rng = np.random.default_rng([seed, 26])
    shape = (1, *(int(v) for v in rng.integers(1, 10, size=int(rng.integers(2, 4)))))
    b = QuantLibNetBuilder(seed, shape, signed_input=bool(rng.integers(0, 2)))
    if len(shape) == 4 and rng.random() < 0.3:
        b.conv("conv", int(rng.integers(1, 9)), 3, signed=True)
    axes = [a for a in range(2, len(shape)) if rng.random() < 0.6] if rng.random() < 0.6 else [1]
    axes = axes or [len(shape) - 1]
    then = ["requantized", "output", "dropped axes"][int(rng.integers(0, 3))]
    b.node("IntegerMean", [b.last], axes=axes, keepdims=int(then != "dropped axes"))
    if then == "requantized":
        b.requant(b.last, "mean", signed=bool(rng.integers(0, 2)), per_channel=False)
    return b


def random_attention(seed: int) -> QuantLibNetBuilder:
    """A seeded QuantLib integer attention block (Deeploy's Attention test, shapes varied): signed rows
    [1, S, E] (sometimes [S, E]) of S in 2..16 tokens, 1 to 4 heads of D in 2..12 features, the
    attention (`QuantLibNetBuilder.attention`; the keys sometimes transposed in two steps, heads first
    then [D, T] by a 4-D permutation), a residual add (both branches requantized, the sum too), and
    sometimes an MLP (E -> 2E unsigned -> E) with its own residual add."""
    rng = np.random.default_rng([seed, 31])
    tokens, heads, head_dim = int(rng.integers(2, 17)), int(rng.integers(1, 5)), int(rng.integers(2, 13))
    embed = heads * head_dim
    batched = bool(rng.integers(0, 2))
    b = QuantLibNetBuilder(seed, (1, tokens, embed) if batched else (tokens, embed), signed_input=True)
    key_perm = (0, 1, 3, 2) if batched and rng.random() < 0.4 else None
    attended = b.attention("attn", INPUT_NAME, heads, key_perm=key_perm)
    x = b.add("res1", b.requant(INPUT_NAME, "skip1", signed=True, per_channel=False, axis=-1), attended, signed=True)
    if rng.random() < 0.5:
        b.last = x
        b.rows_linear("fc1", 2 * embed, signed=False, per_column=False)
        mlp = b.rows_linear("fc2", embed, signed=True, per_column=False)
        b.add("res2", b.requant(x, "skip2", signed=True, per_channel=False, axis=-1), mlp, signed=True)
    return b


def llama_decoder_step(seed: int) -> QuantLibNetBuilder:
    """A micro Llama-style decoder step (seeded sizes): the new token's hidden state x [1, 1, E] and the KV
    cache as two more graph inputs, keys and values [1, T, E] of T in 2..12 positions, token-major as the
    steps append them (this step's own key and value already written at the last position by the
    application): iRMSNorm, attention of the token over the cache (H heads of D), residual add, iRMSNorm,
    an MLP (E -> 2E unsigned -> E), residual add."""
    rng = np.random.default_rng([seed, 32])
    positions, heads, head_dim = int(rng.integers(2, 13)), int(rng.integers(1, 5)), int(rng.integers(2, 9))
    embed = heads * head_dim
    b = QuantLibNetBuilder(seed, (1, 1, embed), signed_input=True)
    keys = b.add_input("k_cache", (1, positions, embed), signed=True)
    values = b.add_input("v_cache", (1, positions, embed), signed=True)
    b.last = INPUT_NAME
    normed = b.i_rms_norm("attn_norm", int(rng.integers(8, 13)))
    attended = b.attention("attn", normed, heads, keys=keys, values=values)
    x = b.add("res1", b.requant(INPUT_NAME, "skip1", signed=True, per_channel=False, axis=-1), attended, signed=True)
    b.last = x
    b.i_rms_norm("mlp_norm", int(rng.integers(8, 13)))
    b.rows_linear("fc1", 2 * embed, signed=False, per_column=False)
    mlp = b.rows_linear("fc2", embed, signed=True, per_column=False)
    b.add("res2", b.requant(x, "skip2", signed=True, per_channel=False, axis=-1), mlp, signed=True)
    return b


def transformer_encoder(seed: int) -> QuantLibNetBuilder:
    """A small integer transformer encoder (seeded sizes, 1 or 2 post-norm layers as BERT's): signed rows
    [1, S, E] (sometimes [S, E]) of S in 2..12 tokens, per layer the attention (H in 1..4 heads of D in
    2..8), a residual add, iLayerNorm, an MLP (E -> 2E, iGELU requantized, -> E), a residual add,
    iLayerNorm: every QuantLib integer op of a BERT-style encoder in one network."""
    rng = np.random.default_rng([seed, 33])
    tokens, heads, head_dim = int(rng.integers(2, 13)), int(rng.integers(1, 5)), int(rng.integers(2, 9))
    embed = heads * head_dim
    batched = bool(rng.integers(0, 2))
    b = QuantLibNetBuilder(seed, (1, tokens, embed) if batched else (tokens, embed), signed_input=True)
    x = INPUT_NAME
    for layer in range(int(rng.integers(1, 3))):
        attended = b.attention(f"l{layer}.attn", x, heads)
        b.last = b.add(f"l{layer}.res1", b.requant(x, f"l{layer}.skip1", signed=True, per_channel=False, axis=-1),
                       attended, signed=True)
        x = b.i_layer_norm(f"l{layer}.norm1", int(rng.integers(8, 17)), per_feature=rng.random() < 0.8)
        b.rows_linear(f"l{layer}.fc1", 2 * embed, signed=True, per_column=False)
        gelu = b.i_gelu(float(rng.choice([1 / 16, 8 / 255, 1 / 50])))
        b.requant(gelu, f"l{layer}.act", signed=True, per_channel=False, axis=-1)
        mlp = b.rows_linear(f"l{layer}.fc2", embed, signed=True, per_column=False)
        b.last = b.add(f"l{layer}.res2", b.requant(x, f"l{layer}.skip2", signed=True, per_channel=False, axis=-1),
                       mlp, signed=True)
        x = b.i_layer_norm(f"l{layer}.norm2", int(rng.integers(8, 17)), per_feature=rng.random() < 0.8)
    return b


def attention_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    """Integer attention (issue 15): heads as Reshape + Transpose, tested in tests/test_attention.py."""
    return {"random_attention": random_attention, "llama_decoder_step": llama_decoder_step,
            "transformer_encoder": transformer_encoder}


def integer_op_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    """QuantLib's integer transformer ops (issue 15), tested in tests/test_integer_ops.py."""
    return {"random_no_norm": random_no_norm, "random_softmax": random_softmax, "random_rms_norm": random_rms_norm,
            "random_hardswish": random_hardswish, "random_true_integer_div": random_true_integer_div,
            "random_integer_mean": random_integer_mean, "random_gelu": random_gelu,
            "random_layer_norm": random_layer_norm, "random_ita_max": random_ita_max}


def example_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    return {"resnet8": resnet8, "mobilenet_v1_025": mobilenet_v1_025, "kws_maxpool": kws_maxpool}


def format_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    """Small networks for format features (several inputs, 1-D), tested on their own
    (tests/test_npz_inputs.py) rather than with every pipeline like `example_networks`."""
    return {"two_inputs": two_inputs, "tcn_1d": tcn_1d}


def all_networks() -> dict[str, Callable[[int], QuantLibNetBuilder]]:
    return (example_networks() | format_networks() | data_op_networks() | rows_networks() | row_constant_networks()
            | matmul_networks() | integer_op_networks() | attention_networks())


def write_example(name: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Writes `network.onnx`, `inputs.npz`, `outputs.npz` and `activations.npz` into `out_dir`."""
    return all_networks()[name](seed).write(out_dir, name)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--name", choices=sorted(all_networks()), help="one network (default: all, in subfolders)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in [args.name] if args.name else sorted(all_networks()):
        path = write_example(name, args.out_dir if args.name else args.out_dir / name, args.seed)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
