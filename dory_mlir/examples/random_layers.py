"""Seeded random single-layer networks in `qnn` IR, for differential tests of the pipeline.

Each seed draws a layer kind (conv, depthwise, pointwise, strided/dilated/padded, linear
after a flatten, max pool, average pool, residual add), its shapes, signedness of input
and output, weights and requantization constants (per channel or per tensor, a shift or
an exact division, floor or trunc, 32- or 64-bit intermediates as the value ranges need)
and L1 and L2 budgets (small L2 budgets stream from L3). The golden model runs the same
IR, so any difference is a bug.

About a quarter of the seeds draw a 1-D layer instead (`one_d`): N×C×1×W as ONNX's N×C×W
imports (or N×C×T×1, time along the rows), long, TCN style — dilated windows, causal or
wider-than-the-window padding (tiles and L3 slices that read only padding) — with an L2
budget just too small for everything, so that weights and activations stream from L3.
The other seeds draw exactly what they drew before 1-D layers were added.

`random_layer(seed, wide=True)` draws from another stream: inputs and outputs mostly 16-bit
(`ui16`/`si16`, where an exported network's own integers exceed 8 bits), the rest 8-bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr, IntegerType, ModuleOp, Signedness, TensorType
from xdsl.ir import Block, Operation, Region, SSAValue

from dory_mlir.dialects import qnn

SI8, UI8, SI32 = (IntegerType(8, Signedness.SIGNED), IntegerType(8, Signedness.UNSIGNED),
                  IntegerType(32, Signedness.SIGNED))
SI64 = IntegerType(64, Signedness.SIGNED)
SI16, UI16 = IntegerType(16, Signedness.SIGNED), IntegerType(16, Signedness.UNSIGNED)
KINDS = ("conv", "depthwise", "pointwise", "linear", "maxpool", "avgpool", "add")
L1_BUDGETS = (36700, 8000, 3000, 1500)
L2_BUDGETS = (None, None, 16384, 4096)  # None: the target's; small ones stream from L3


@dataclass
class RandomLayer:
    seed: int
    kind: str
    module: ModuleOp
    input: np.ndarray  # NCHW
    l1_size: int
    l2_size: int | None

    one_d: bool = False
    wide: bool = False

    def describe(self) -> str:
        kind = f"1-D {self.kind}" if self.one_d else self.kind
        stream = ", wide" if self.wide else ""
        return f"seed {self.seed}{stream}: {kind}, L1 {self.l1_size} B, L2 {self.l2_size or 'default'}"


def _activation_types(rng: np.random.Generator, wide: bool) -> tuple[IntegerType, IntegerType]:
    """The input and output element types (the 8-bit stream draws exactly what it always drew)."""
    if not wide:
        in_signed, out_signed = rng.random() < 0.3, rng.random() < 0.3
        return SI8 if in_signed else UI8, SI8 if out_signed else UI8
    types = [UI16, SI16, UI8, SI8]
    in_type, out_type = (types[int(rng.choice(4, p=[0.4, 0.3, 0.15, 0.15]))] for _ in range(2))
    return in_type, out_type


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.ops: list[Operation] = []

    def add(self, op: Operation) -> Operation:
        self.ops.append(op)
        return op

    def const(self, values: np.ndarray, element: IntegerType) -> SSAValue:
        width = element.width.data
        kind = "u" if element.signedness.data == Signedness.UNSIGNED else "i"
        attr = DenseIntOrFPElementsAttr(TensorType(element, list(values.shape)),
                                        BytesAttr(values.astype(f"<{kind}{width // 8}").tobytes()))
        return self.add(qnn.ConstantOp(attr)).results[0]

    def requant(self, acc: SSAValue, acc_bound: int, channels: int, element: IntegerType) -> SSAValue:
        """A random requantization that maps |acc| ≤ acc_bound onto the range of `element`."""
        rng = self.rng
        per_channel = channels > 1 and rng.random() < 0.7
        n = channels if per_channel else 1
        mul = rng.integers(1, 64, size=n) * rng.choice([1, -1], size=n, p=[0.8, 0.2])
        add = rng.integers(-acc_bound - 1, acc_bound + 2, size=n) // 4
        scale = int(rng.integers(1, 8))
        span = max(1, (acc_bound * int(np.abs(mul).max()) + int(np.abs(add).max())) * scale)
        target = 2 ** int(np.ceil(np.log2(span))) // 2 ** (element.width.data - 1)
        divisor = max(1, target) if rng.random() < 0.7 else max(1, target - 1 - int(rng.integers(0, 3)))
        widest = (acc_bound * int(np.abs(mul).max()) + int(np.abs(add).max())) * scale
        bits = 32 if widest < 2**31 and rng.random() < 0.8 else 64
        lo, hi = qnn.int_range(element)
        out_signed = lo < 0
        rounding = qnn.Rounding.TRUNC if out_signed and rng.random() < 0.3 else qnn.Rounding.FLOOR
        const_type = SI64 if bits == 64 and rng.random() < 0.3 else SI32
        return self.add(qnn.RequantOp(
            acc, self.const(mul, const_type), self.const(add, const_type), TensorType(element, qnn.shape_of(acc)),
            scale=scale, divisor=divisor, min=lo, max=hi, rounding=rounding, intermediate_bits=bits,
        )).results[0]


def random_layer(seed: int, wide: bool = False) -> RandomLayer:
    rng = np.random.default_rng([seed, 16] if wide else seed)
    kind = str(rng.choice(KINDS))
    if kind != "linear" and np.random.default_rng([seed, 1]).random() < 0.3:
        return _one_d_layer(seed, kind, rng, wide)
    in_type, out_type = _activation_types(rng, wide)
    in_lo, in_hi = qnn.int_range(in_type)
    c = int(rng.integers(1, 20))
    k = int(rng.choice([1, 2, 3, 5])) if kind in ("conv", "depthwise", "maxpool", "avgpool") else 1
    stride = int(rng.integers(1, 3)) if kind != "add" else 1
    dilation = int(rng.integers(1, 3)) if kind == "conv" and k > 1 and rng.random() < 0.3 else 1
    reach = dilation * (k - 1) + 1
    h, w = int(rng.integers(reach, reach + 10)), int(rng.integers(reach, reach + 10))
    pad = [int(rng.integers(0, k)) for _ in range(4)] if kind in ("conv", "depthwise") else [0, 0, 0, 0]
    if kind == "maxpool":
        pad = [int(rng.integers(0, k)) if k > 1 and rng.random() < 0.3 else 0 for _ in range(4)]
    x_type = TensorType(in_type, [1, c, h, w])
    block = Block(arg_types=[x_type])
    x = block.args[0]
    b = _Builder(rng)
    x_bound = max(abs(in_lo), in_hi)
    if kind in ("conv", "depthwise", "pointwise"):
        groups = c if kind == "depthwise" else 1
        c_out = c if kind == "depthwise" else int(rng.integers(1, 20))
        kh = kw = 1 if kind == "pointwise" else k
        weights = rng.integers(-128, 128, size=(c_out, c // groups, kh, kw))
        bias = rng.integers(-5000, 5000, size=c_out) if rng.random() < 0.4 else None
        ho = qnn.window_output_size(h, kh, stride, pad[0], pad[2], dilation)
        wo = qnn.window_output_size(w, kw, stride, pad[1], pad[3], dilation)
        acc = b.add(qnn.ConvOp(x, b.const(weights, SI8), None if bias is None else b.const(bias, SI32),
                               TensorType(SI32, [1, c_out, ho, wo]), [stride, stride], pad, [dilation, dilation],
                               groups)).results[0]
        bound = int(np.abs(weights).reshape(c_out, -1).sum(axis=1).max()) * x_bound + (5000 if bias is not None else 0)
        result = b.requant(acc, bound, c_out, out_type)
    elif kind == "linear":
        flat = b.add(qnn.ReshapeOp(x, TensorType(in_type, [1, c * h * w]))).results[0]
        m = int(rng.integers(1, 24))
        weights = rng.integers(-128, 128, size=(m, c * h * w))
        acc = b.add(qnn.LinearOp(flat, b.const(weights, SI8), None, TensorType(SI32, [1, m]))).results[0]
        bound = int(np.abs(weights).sum(axis=1).max()) * x_bound
        result = b.requant(acc, bound, m, out_type) if rng.random() < 0.6 else acc
    elif kind == "maxpool":
        ho = qnn.window_output_size(h, k, stride, pad[0], pad[2])
        wo = qnn.window_output_size(w, k, stride, pad[1], pad[3])
        result = b.add(qnn.MaxPoolOp(x, TensorType(in_type, [1, c, ho, wo]), [k, k], [stride, stride], pad)).results[0]
    elif kind == "avgpool":
        ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
        total = b.add(qnn.SumPoolOp(x, TensorType(SI32, [1, c, ho, wo]), [k, k], [stride, stride])).results[0]
        result = b.requant(total, k * k * x_bound, c, out_type)
    else:
        muls = [int(v) for v in rng.integers(1, 64, size=2)]
        shifts = [int(v) for v in rng.integers(0, 4, size=2)]
        total = b.add(qnn.AddOp(x, x, TensorType(SI32, [1, c, h, w]), muls, [0, 0], shifts)).results[0]
        result = b.requant(total, x_bound * sum(muls), 1, out_type)
    for op in b.ops:
        block.add_op(op)
    block.add_op(func.ReturnOp(result))
    module = ModuleOp([func.FuncOp.from_region("network", [x_type], [result.type], Region(block))])
    module.verify()
    x_values = rng.integers(in_lo, in_hi + 1, size=(1, c, h, w))
    l2 = L2_BUDGETS[int(rng.integers(0, len(L2_BUDGETS)))]
    return RandomLayer(seed, kind, module, x_values, int(rng.choice(L1_BUDGETS)), l2, wide=wide)


def _one_d_layer(seed: int, kind: str, rng: np.random.Generator, wide: bool) -> RandomLayer:
    """A random 1-D layer (see the module docstring) and a tight L2 budget."""
    in_type, out_type = _activation_types(rng, wide)
    in_lo, in_hi = qnn.int_range(in_type)
    x_bound = max(abs(in_lo), in_hi)
    along_rows = rng.random() < 0.3  # time along H: the L3 slices are ranges of time steps
    c = int(rng.integers(1, 24))
    k = 1 if kind in ("pointwise", "add") else int(rng.choice([2, 3, 5, 7] if kind in ("conv", "depthwise") else [1, 2, 3, 5]))
    dilation = int(rng.integers(1, 5)) if kind in ("conv", "depthwise") and k > 1 else 1
    stride = 1 if kind == "add" else int(rng.choice([1, 1, 2]))
    reach = dilation * (k - 1) + 1
    w = int(rng.integers(reach, reach + 200))
    if kind in ("conv", "depthwise", "pointwise"):
        extent = reach - 1
        if rng.random() < 0.5:
            before, after = extent, 0  # causal
        else:  # up to beyond the window: the first or last outputs see only padding
            before, after = (int(v) for v in rng.integers(0, extent + 3, size=2))
    elif kind == "maxpool":
        before, after = (int(v) if rng.random() < 0.3 else 0 for v in rng.integers(0, k, size=2))
    else:
        before = after = 0

    def hw(time: int, other: int) -> list[int]:  # a pair in (H, W) order
        return [time, other] if along_rows else [other, time]

    pad = [before, 0, after, 0] if along_rows else [0, before, 0, after]
    x_shape = [1, c, *hw(w, 1)]
    x_type = TensorType(in_type, x_shape)
    block = Block(arg_types=[x_type])
    x = block.args[0]
    b = _Builder(rng)
    weight_bytes = 0
    if kind in ("conv", "depthwise", "pointwise"):
        groups = c if kind == "depthwise" else 1
        c_out = c if kind == "depthwise" else int(rng.integers(1, 24))
        weights = rng.integers(-128, 128, size=(c_out, c // groups, *hw(k, 1)))
        bias = rng.integers(-5000, 5000, size=c_out) if rng.random() < 0.4 else None
        wo = qnn.window_output_size(w, k, stride, before, after, dilation)
        acc = b.add(qnn.ConvOp(x, b.const(weights, SI8), None if bias is None else b.const(bias, SI32),
                               TensorType(SI32, [1, c_out, *hw(wo, 1)]), hw(stride, 1), pad, hw(dilation, 1),
                               groups)).results[0]
        bound = int(np.abs(weights).reshape(c_out, -1).sum(axis=1).max()) * x_bound + (5000 if bias is not None else 0)
        result = b.requant(acc, bound, c_out, out_type)
        weight_bytes = weights.size + 12 * c_out
    elif kind == "maxpool":
        wo = qnn.window_output_size(w, k, stride, before, after)
        result = b.add(qnn.MaxPoolOp(x, TensorType(in_type, [1, c, *hw(wo, 1)]), hw(k, 1), hw(stride, 1), pad)).results[0]
    elif kind == "avgpool":
        wo = (w - k) // stride + 1
        total = b.add(qnn.SumPoolOp(x, TensorType(SI32, [1, c, *hw(wo, 1)]), hw(k, 1), hw(stride, 1))).results[0]
        result = b.requant(total, k * x_bound, c, out_type)
        weight_bytes = 8 * c
    else:
        muls = [int(v) for v in rng.integers(1, 64, size=2)]
        shifts = [int(v) for v in rng.integers(0, 4, size=2)]
        total = b.add(qnn.AddOp(x, x, TensorType(SI32, x_shape), muls, [0, 0], shifts)).results[0]
        result = b.requant(total, x_bound * sum(muls), 1, out_type)
    for op in b.ops:
        block.add_op(op)
    block.add_op(func.ReturnOp(result))
    module = ModuleOp([func.FuncOp.from_region("network", [x_type], [result.type], Region(block))])
    module.verify()
    x_values = rng.integers(in_lo, in_hi + 1, size=x_shape)
    # L2: both activations but not all the constants (these stream from L3, whole or by channels), or, with
    # time along the rows, less than the activations (streamed by time steps).
    activations = x_values.size * _element_bytes(in_type) + int(np.prod(qnn.shape_of(result))) * _element_bytes(
        qnn.element_type(result))
    if along_rows and rng.random() < 0.6:
        l2 = max(256, int(activations * rng.uniform(0.3, 0.9)))
    else:
        l2 = activations + 64 + int(rng.integers(0, max(1, weight_bytes // 2)))
    l2 = -(-l2 // 8) * 8  # the host runtime's allocations are multiples of 8 bytes
    return RandomLayer(seed, kind, module, x_values, int(rng.choice(L1_BUDGETS)), l2, one_d=True, wide=wide)


def _element_bytes(element: IntegerType) -> int:
    return max(1, element.width.data // 8)
