"""`fuse`: group `qnn` ops into the deployable layers that tiling and codegen work on.

A layer is one conv, linear, pool or add op (the anchor) with the `qnn.requant` chain
that consumes its result; a `qnn.pad` in front of convolutions is folded into
their padding (and pad value) first. A requant that no anchor's chain takes (it reads a
tensor with several consumers, e.g. on a residual skip branch, or the network input) is a
layer of its own, as DORY deploys it: its anchor is an identity (a depthwise 1×1
convolution, or for N×K tensors a linear layer, with unit weights: the int32 accumulator is
the input itself), so tiling, lowering and kernels need nothing new; so is a requant of another
requant's 8-bit output (the kernels requantize once per layer), and a pad that no convolution
absorbs (an identity depthwise conv with the pad's padding). Every op ends up in a
layer; one that cannot is a one-line error naming it. Layers are numbered in network order, so `qnn.layer N` is the
golden `out_layerN`. A power-of-two division right after an add folds into the add's
per-input shifts when that is exact. Running the pass again changes nothing.

Each fold is a rewrite pattern; `FUSE_PHASES` applies them phase after phase (a phase's patterns
greedily over the whole module), then every op is checked to be in a layer and the layers are numbered.
"""

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    BytesAttr, DenseIntOrFPElementsAttr, IntegerAttr, IntegerType, ModuleOp, Signedness, TensorType, i64,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from dory_mlir.diagnostics import PassError, warn
from dory_mlir.dialects import qnn
from dory_mlir.ir_utils import op_where

ANCHORS = (qnn.ConvOp, qnn.LinearOp, qnn.MatMulOp, qnn.MaxPoolOp, qnn.SumPoolOp, qnn.AddOp, qnn.SoftmaxOp, qnn.RMSNormOp,
           qnn.HardswishOp, qnn.GeluOp, qnn.LayerNormOp, qnn.ITAMaxOp, qnn.TransposeOp)
# Anchors whose kernels do not requantize: a requant of their result is a layer of its own (a transpose
# only moves data).
ROW_ANCHORS = (qnn.SoftmaxOp, qnn.RMSNormOp, qnn.LayerNormOp, qnn.ITAMaxOp, qnn.TransposeOp)
# Ops that may stand between layers: they hold data or only reinterpret its shape.
BETWEEN_LAYERS = (qnn.ConstantOp, qnn.ReshapeOp, qnn.LayerOp)


def in_network_body(op: Operation) -> bool:
    """Whether `op` stands in a network function's body, where `fuse` works (not inside a `qnn.layer`
    it built before: running the pass again must change nothing)."""
    return isinstance(op.parent_op(), func.FuncOp)


def block_of(op: Operation) -> Block:
    block = op.parent_block()
    assert block is not None
    return block


def absorbing_convs(pad: qnn.PadOp) -> list[qnn.ConvOp] | None:
    """The convolutions that read `pad` and can take it into their padding, if all its readers can.

    A non-zero pad value (a zero point) becomes the conv's `pad_value`, which must then
    agree with the conv's own padding: none, or padding by the same value.
    """
    value = pad.value.value.data
    users = [use.operation for use in pad.output.uses]
    convs = [user for user in users if isinstance(user, qnn.ConvOp) and user.input == pad.output
             and user.weight != pad.output and (not any(user.pads_tlbr()) or user.padding_value() == value)]
    return convs if len(convs) == len(users) else None


class HoistConstant(RewritePattern):
    """Moves a `qnn.constant` up to the constants at the top of the block, so every layer can stand
    where its anchor stood (constants keep their order)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: qnn.ConstantOp, rewriter: PatternRewriter) -> None:
        if not in_network_body(op) or op.prev_op is None or isinstance(op.prev_op, qnn.ConstantOp):
            return
        first_other = next(other for other in block_of(op).ops if not isinstance(other, qnn.ConstantOp))
        op.detach()
        rewriter.insert(op, InsertPoint.before(first_other))


class FoldPadIntoConvs(RewritePattern):
    """Moves a `qnn.pad` into the padding (and pad value) of the convolutions that read it."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, pad: qnn.PadOp, rewriter: PatternRewriter) -> None:
        if not in_network_body(pad) or (convs := absorbing_convs(pad)) is None:
            return
        for conv in convs:
            pads = [a + b for a, b in zip(conv.pads_tlbr(), pad.pads_tlbr(), strict=True)]
            folded = qnn.ConvOp(
                pad.input, conv.weight, conv.bias, conv.output.type, conv.stride_hw(), pads,
                tuple(conv.dilations.get_values()), conv.groups.value.data, pad.value.value.data,  # type: ignore[arg-type]
            )
            folded.location = conv.location
            rewriter.replace(conv, folded)
        rewriter.erase(pad)


def requant_constant(value: int) -> qnn.ConstantOp:
    ty = TensorType(IntegerType(32, Signedness.SIGNED), (1,))
    return qnn.ConstantOp(DenseIntOrFPElementsAttr(ty, BytesAttr(np.array([value], "<i4").tobytes())))


class PadAsLayer(RewritePattern):
    """A pad that no convolution can absorb (read by a pool, an add, the output, or convs padding
    with another value) is a layer of its own: an identity depthwise 1×1 conv with the pad's
    padding and pad value, requantized by 1 to the same element type (exact)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, pad: qnn.PadOp, rewriter: PatternRewriter) -> None:
        if not in_network_body(pad) or absorbing_convs(pad) is not None:
            return
        x = pad.input
        element = qnn.element_type(x)
        if element.width.data > 16:
            raise PassError(f"padding of a {element.width.data}-bit tensor cannot be a layer", op_where(pad))
        channels = qnn.shape_of(x)[1]
        weights = unit_weights((channels, 1, 1, 1), np.ones(channels))
        accumulator = TensorType(IntegerType(32, Signedness.SIGNED), qnn.shape_of(pad.output))
        conv = qnn.ConvOp(x, weights.result, None, accumulator, (1, 1), pad.pads_tlbr(), (1, 1), channels,
                          pad.value.value.data)
        one, zero = requant_constant(1), requant_constant(0)
        lo, hi = qnn.int_range(element)
        rq = qnn.RequantOp(conv.output, one.result, zero.result, pad.output.type, scale=1, divisor=1, min=lo, max=hi)
        conv.location = rq.location = pad.location
        for constant in (weights, one, zero):
            rewriter.insert(constant, InsertPoint.at_start(block_of(pad)))
        rewriter.insert([conv, rq], InsertPoint.before(pad))
        rewriter.replace_all_uses_with(pad.output, rq.output)
        rewriter.erase(pad)


def _is_scalar(value: SSAValue, expected: int) -> bool:
    owner = value.owner
    if not isinstance(owner, qnn.ConstantOp) or qnn.shape_of(value) != (1,):
        return False
    from dory_mlir.network_values import constant_array

    return int(constant_array(owner)[0]) == expected


class FoldShiftIntoAdd(RewritePattern):
    """`requant(add(a, b), /2^s)` → add with per-input shifts, when exact.

    floor((m_a·a + m_b·b) / 2^s) = floor(m_a·a / 2^s) + (m_b / 2^s)·b whenever 2^s divides
    m_b (and a_b); NEMO writes such adds (TCN), and the kernels requantize once per layer.
    The requant must be a plain floor division by a power of two whose clip cannot bind.
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, add: qnn.AddOp, rewriter: PatternRewriter) -> None:
        if not in_network_body(add):
            return
        uses = list(add.output.uses)
        if len(uses) != 1 or not isinstance(rq := uses[0].operation, qnn.RequantOp):
            return
        shift = rq.shift()
        if (shift is None or rq.scale.value.data != 1 or rq.rounding.data != qnn.Rounding.FLOOR
                or not _is_scalar(rq.mul, 1) or not _is_scalar(rq.add, 0) or any(add.shift.get_values())
                or not list(rq.output.uses) or not isinstance(list(rq.output.uses)[0].operation, qnn.RequantOp)):
            return
        muls, adds = list(add.mul.get_values()), list(add.add.get_values())
        divisor = 1 << shift
        exact = [m % divisor == 0 and a % divisor == 0 for m, a in zip(muls, adds, strict=True)]
        if sum(not e for e in exact) > 1:
            return
        bounds = []
        for value, m, a in zip(add.operands, muls, adds, strict=True):
            lo, hi = qnn.int_range(qnn.element_type(value))
            bounds.append(sorted((lo * m + a, hi * m + a)))
        total_lo, total_hi = sum(b[0] for b in bounds) >> shift, sum(b[1] for b in bounds) >> shift
        if total_lo < rq.min.value.data or total_hi > rq.max.value.data:
            return  # the clip may bind: not an exact rewrite
        new_mul = [m // divisor if e else m for m, e in zip(muls, exact, strict=True)]
        new_add = [a // divisor if e else a for a, e in zip(adds, exact, strict=True)]
        new_shift = [0 if e else shift for e in exact]
        folded = qnn.AddOp(add.lhs, add.rhs, add.output.type, new_mul, new_add, new_shift)
        folded.location = add.location
        rewriter.insert(folded, InsertPoint.before(add))
        rewriter.replace_all_uses_with(rq.output, folded.output)
        rewriter.erase(rq)
        rewriter.erase(add)


def unit_weights(shape: tuple[int, ...], values: np.ndarray) -> qnn.ConstantOp:
    ty = TensorType(IntegerType(8, Signedness.SIGNED), shape)
    return qnn.ConstantOp(DenseIntOrFPElementsAttr(ty, BytesAttr(values.astype("<i1").tobytes())))


def identity_anchor(rq: qnn.RequantOp) -> list[Operation]:
    """An anchor whose int32 result equals the requant's input, and its weights."""
    x = rq.input
    shape = qnn.shape_of(x)
    if any(len(qnn.shape_of(v)) == 2 and (len(shape) != 4 or qnn.shape_of(v)[0] != shape[2]) for v in (rq.mul, rq.add)):
        raise PassError("a requantization with one constant per batch slice must directly follow the matmul it "
                        "requantizes (its only reader)", op_where(rq))
    if qnn.element_type(x).width.data > 16:
        raise PassError(f"a requantization of a {qnn.element_type(x).width.data}-bit tensor that no layer "
                        "computes cannot be placed in a layer", op_where(rq))
    result = TensorType(IntegerType(32, Signedness.SIGNED), shape)
    if len(shape) == 4:
        channels = shape[1]
        weights = unit_weights((channels, 1, 1, 1), np.ones(channels))
        return [weights, qnn.ConvOp(x, weights.result, None, result, (1, 1), (0, 0, 0, 0), (1, 1), channels)]
    if len(shape) == 2:
        weights = unit_weights((shape[1], shape[1]), np.eye(shape[1]))
        return [weights, qnn.LinearOp(x, weights.result, None, result)]
    raise PassError(f"a requantization of a rank-{len(shape)} tensor cannot be placed in a layer", op_where(rq))


def saturates(op: Operation) -> bool:
    """Whether the network function holding `op` was imported with `--activations saturate`."""
    function = op.parent_op()
    return function is not None and qnn.SATURATE_ATTR in function.attributes


class NarrowRequantStage(RewritePattern):
    """A requant stage that reads another requant's wide (unclipped) result — NEMO's residual add
    `Add → Div → Floor → Mul → Div → Clip`, whose first division is no exact power-of-two fold into
    the add — is deployed as DORY does: the add's layer ends after the first stage, the second stage
    is a layer of its own (`AnchorLoneRequant`). The golden files number it so. The first
    stage's output is the narrowest activation type holding its propagated range (exact: 8 or 16
    bits, beyond 16 an error), or with `saturate` (the function's SATURATE_ATTR) 8 bits,
    saturating with the warning the importer gives unclipped outputs."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, rq: qnn.RequantOp, rewriter: PatternRewriter) -> None:
        inner = rq.input.owner
        if not in_network_body(rq) or not isinstance(inner, qnn.RequantOp) or len(list(rq.input.uses)) != 1:
            return
        if qnn.element_type(inner.output).width.data <= 16 or not isinstance(inner.input.owner, qnn.AddOp):
            return
        saturate = saturates(rq)
        lo, hi = inner.min.value.data, inner.max.value.data
        exact = qnn.narrowest_activation_type(lo, hi)
        if not saturate and exact is None:
            raise PassError(f"values may reach [{lo}, {hi}] and the graph does not clip them: beyond the 16-bit "
                            "activations the kernels read (--activations saturate saturates to 8 bits as DORY does)",
                            op_where(inner))
        element = exact if not saturate and exact is not None else \
            IntegerType(8, Signedness.UNSIGNED if lo >= 0 else Signedness.SIGNED)
        type_lo, type_hi = qnn.int_range(element)
        if lo < type_lo or hi > type_hi:
            warn(f"values may reach [{lo}, {hi}] and the graph does not clip them; saturating to "
                 f"[{type_lo}, {type_hi}] as DORY's 8-bit kernels do", op_where(inner))
        narrowed = qnn.RequantOp(
            inner.input, inner.mul, inner.add, TensorType(element, qnn.shape_of(inner.output)),
            scale=inner.scale.value.data, divisor=inner.divisor.value.data, min=max(lo, type_lo),
            max=min(hi, type_hi), rounding=qnn.Rounding(inner.rounding.data),
            intermediate_bits=inner.intermediate_bits.value.data,
        )
        narrowed.location = inner.location
        rewriter.replace(inner, narrowed)


class AnchorLoneRequant(RewritePattern):
    """Gives a requant that no anchor's chain takes an identity anchor of its own."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, rq: qnn.RequantOp, rewriter: PatternRewriter) -> None:
        if not in_network_body(rq):
            return
        source = rq.input.owner
        if isinstance(source, ANCHORS) and not isinstance(source, ROW_ANCHORS) and len(list(rq.input.uses)) == 1:
            return  # taken by the chain of the anchor that computes its input
        if isinstance(source, qnn.RequantOp) and len(list(rq.input.uses)) == 1 and (
                qnn.element_type(rq.input).width.data > 16):
            return  # a wide intermediate: the layer's chain (tile refuses it: the kernels requantize once)
        # A requant of an 8-bit requant's output (e.g. Sub of a constant after a RequantShift) is
        # a second stage the kernels cannot chain: a layer of its own.
        weights, anchor = identity_anchor(rq)
        anchor.location = rq.location
        rewriter.insert(weights, InsertPoint.at_start(block_of(rq)))
        rewriter.insert(anchor, InsertPoint.before(rq))
        rq.operands[0] = anchor.results[0]
        rewriter.notify_op_modified(rq)


def check_all_placed(block: Block) -> None:
    for op in block.ops:
        if not isinstance(op, (*BETWEEN_LAYERS, func.ReturnOp)):
            raise PassError(f"'{op.name}' is not part of any layer and cannot be deployed alone", op_where(op))


def layer_group(anchor: Operation) -> list[Operation]:
    """The anchor and the requant ops that only it feeds, in order (a row op's kernel does not requantize:
    its layer is the anchor alone)."""
    group = [anchor]
    while not isinstance(anchor, ROW_ANCHORS):
        result = group[-1].results[0]
        uses = list(result.uses)
        if len(uses) != 1:
            return group
        user = uses[0].operation
        if not isinstance(user, qnn.RequantOp) or user.input != result or user.parent is not anchor.parent:
            return group
        group.append(user)
    return group


class WrapLayer(RewritePattern):
    """Replaces an anchor and its requant chain (`layer_group`) by a `qnn.layer` whose operands are every
    value the group reads from outside; the layer stands at the anchor's place, so that block order
    (= layer numbering, `number_layers`) is network order."""

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self, anchor: qnn.ConvOp | qnn.LinearOp | qnn.MatMulOp | qnn.MaxPoolOp | qnn.SumPoolOp | qnn.AddOp
        | qnn.SoftmaxOp | qnn.RMSNormOp | qnn.HardswishOp | qnn.GeluOp | qnn.LayerNormOp
        | qnn.ITAMaxOp | qnn.TransposeOp,
        rewriter: PatternRewriter,
    ) -> None:
        if not in_network_body(anchor):
            return
        group = layer_group(anchor)
        inside = {result for op in group for result in op.results}
        activations = [v for v in anchor.operands if not isinstance(v.owner, qnn.ConstantOp)]
        external: list[SSAValue] = []
        for value in activations + [v for op in group for v in op.operands]:
            if value not in inside and value not in external:
                external.append(value)
        body = Block(arg_types=[v.type for v in external])
        mapping: dict[SSAValue, SSAValue] = dict(zip(external, body.args, strict=True))
        for op in group:
            body.add_op(op.clone(value_mapper=mapping))
        last = group[-1].results[0]
        body.add_op(qnn.YieldOp(mapping[last]))
        layer = qnn.LayerOp(-1, external, last.type, Region(body))
        layer.location = anchor.location
        rewriter.insert(layer, InsertPoint.before(anchor))
        rewriter.replace_all_uses_with(last, layer.output)
        for op in reversed(group):
            rewriter.erase(op)


def number_layers(block: Block) -> None:
    """`qnn.layer N` is the N-th layer in block order: the golden `out_layerN`."""
    for index, layer in enumerate(op for op in block.ops if isinstance(op, qnn.LayerOp)):
        layer.index = IntegerAttr(index, i64)


# Each phase runs to completion before the next, as each relies on what the previous left:
FUSE_PHASES: tuple[tuple[RewritePattern, ...], ...] = (
    # Constants first, so that a layer built at its anchor's place follows its constants.
    (HoistConstant(),),
    (FoldPadIntoConvs(), PadAsLayer(), FoldShiftIntoAdd()),
    # After the shift folds: an exactly folded division leaves no second stage to narrow.
    (NarrowRequantStage(),),
    # After narrowing: the stage that read a wide requant now reads an 8- or 16-bit one, alone.
    (AnchorLoneRequant(),),
    # Last: every requant now follows an anchor.
    (WrapLayer(),),
)


@dataclass(frozen=True)
class FusePass(ModulePass):
    """Groups `qnn` ops into numbered `qnn.layer`s (idempotent)."""

    name = "fuse"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for patterns in FUSE_PHASES:
            # No dead-code elimination: an unused constant (a pure op) stays, as the user wrote it.
            PatternRewriteWalker(GreedyRewritePatternApplier(list(patterns), dce_enabled=False)).rewrite_module(op)
        for function in op.walk():
            if isinstance(function, func.FuncOp) and function.body.blocks:
                check_all_placed(function.body.block)
                number_layers(function.body.block)
