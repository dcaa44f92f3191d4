"""`bufferize-network`: the tiled network on tensors becomes one on memrefs in L2/L3.

- Activations get HWC memrefs: views (`memref.view`) of one L2 arena at the offsets of
  the `l2_plan`, or L3 buffers when the plan streams them. A flatten is a view of the
  same bytes.
- Constants become `memref.global`s in L3 (HyperRAM, loaded from flash at start-up in
  the SDK flow) in the kernels' layouts: conv weights OHWI, depthwise CHW... and the
  columns of a linear layer that reads a flattened NCHW tensor permuted to HWC order.
  When the plan keeps weights resident, the network copies them once into the arena.
- Each `qnn.layer` becomes a `pulp.layer` naming its kernel, its buffers by role and
  its static parameters (the `tiling` decision rides along).

The function's new signature, the arena, the inputs' and the resident constants' copies are built first
(`bufferize_signature`); then one rewrite pattern per op kind replaces, in network order, the flattens,
the layers and the return. Until all its readers are rewritten, a bufferized tensor is an
`unrealized_conversion_cast` of its buffer; the casts and the tensor constants go last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    Signedness,
    StringAttr,
    UnitAttr,
    UnrealizedConversionCastOp,
    i8,
    i64,
)
from xdsl.builder import Builder
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier, PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint, Rewriter

from dory_mlir.diagnostics import PassError
from dory_mlir.dialects import dma, pulp, qnn
from dory_mlir.network_values import constant_array, input_names
from dory_mlir.ir_utils import op_where
from dory_mlir.kernel_abi import KERNEL_OF, MOVE_OF
from dory_mlir.dialects.tiling import L2_PLAN, TILING, L2PlanAttr, LayerTilingAttr
from dory_mlir.tiling.geometry import ALIGN
from dory_mlir.tiling.layers import layer_constants

# Attribute of the bufferized network function: how many of its leading arguments are network inputs.
NETWORK_INPUTS = "network_inputs"


def hwc_shape(shape: tuple[int, ...]) -> list[int]:
    """NCHW (batch 1) → HWC; a [1, K] vector → [K]."""
    if len(shape) == 4:
        return [shape[2], shape[3], shape[1]]
    return [int(np.prod(shape))]


def memref_of(value: SSAValue, level: str) -> MemRefType:
    return MemRefType(qnn.element_type(value), hwc_shape(qnn.shape_of(value)), NoneAttr(), StringAttr(level))


def _int(value: int) -> IntegerAttr:
    return IntegerAttr(value, i64)


def requant_params(rq: qnn.RequantOp) -> dict[str, Attribute]:
    bits = max(qnn.element_type(v).width.data for v in (rq.mul, rq.add))
    channels = qnn.shape_of(rq.input)[1]
    shift = rq.shift()
    return {
        "scale": rq.scale, "divisor": rq.divisor, "min": rq.min, "max": rq.max,
        "trunc": _int(int(rq.rounding.data == qnn.Rounding.TRUNC)),
        "wide": _int(int(rq.intermediate_bits.value.data == 64)),
        "shift": _int(-1 if shift is None else shift),
        "const_bits": _int(bits),
        # Of a constant that varies over the rows ([H, C] / [H, 1]) a tile reads one row: its last axis;
        # [G, 1] constants hold one value per batch slice of a matmul: per tensor within a tile.
        "mul_per_channel": _int(int(qnn.shape_of(rq.mul)[-1] == channels > 1)),
        "add_per_channel": _int(int(qnn.shape_of(rq.add)[-1] == channels > 1)),
    }


def layer_params(layer: qnn.LayerOp) -> dict[str, Attribute]:
    anchor = layer.anchor()
    params: dict[str, Attribute] = {}
    if isinstance(anchor, qnn.ConvOp | qnn.MaxPoolOp | qnn.SumPoolOp):
        kh, kw = anchor.kernel_hw()
        sh, sw = anchor.stride_hw()
        t, l, b, r = anchor.pads_tlbr()
        params |= {"kh": _int(kh), "kw": _int(kw), "sh": _int(sh), "sw": _int(sw),
                   "pad_t": _int(t), "pad_l": _int(l), "pad_b": _int(b), "pad_r": _int(r)}
        if isinstance(anchor, qnn.ConvOp):
            dh, dw = anchor.dilations.get_values()
            params |= {"dh": _int(dh), "dw": _int(dw)}  # type: ignore[arg-type]
            if anchor.padding_value():
                params["pad_value"] = _int(anchor.padding_value())
    if isinstance(anchor, qnn.AddOp):
        params |= {"in_mul": anchor.mul, "in_add": anchor.add, "in_shift": anchor.shift}
    if isinstance(anchor, qnn.MatMulOp):
        # Rows per batch slice, and the slice of each operand every output slice reads (broadcasting).
        sources = anchor.batch_sources()
        params |= {"rows_per_batch": _int(anchor.dims()[0]),
                   "lhs_slices": DenseArrayBase.from_list(i64, [a for a, _ in sources]),
                   "rhs_slices": DenseArrayBase.from_list(i64, [b for _, b in sources])}
    if isinstance(anchor, qnn.TransposeOp):
        params |= {"shape": anchor.shape, "perm": anchor.perm}
    if isinstance(anchor, qnn.SoftmaxOp):
        params |= {name: getattr(anchor, name) for name in ("coeff_a", "coeff_b", "coeff_c", "log2", "n_levels")}
    if isinstance(anchor, qnn.HardswishOp):
        params |= {"one_over_six": anchor.one_over_six, "three": anchor.three, "six": anchor.six}
    if isinstance(anchor, qnn.ITAMaxOp):
        params |= {"n_levels": anchor.n_levels, "group_width": anchor.group_width}
    if isinstance(anchor, qnn.GeluOp):
        params |= {"b": anchor.b, "one": anchor.one}
    if isinstance(anchor, qnn.RMSNormOp | qnn.LayerNormOp):
        lo, hi = qnn.int_range(qnn.element_type(anchor.output))
        params |= {"shift": anchor.shift, "min": _int(lo), "max": _int(hi)}
    requants = [op for op in layer.compute_ops() if isinstance(op, qnn.RequantOp)]
    if len(requants) > 1:
        raise PassError("the kernels requantize once; this layer chains two requantizations", op_where(layer))
    if requants:
        params |= requant_params(requants[0])
    return params


def kernel_layout(values: np.ndarray, role: str, layer: qnn.LayerOp, flattened_from: tuple[int, ...] | None) -> np.ndarray:
    """Constants in the layout the kernels read."""
    if role == "weights" and values.ndim == 4:
        kernel = layer.kind()
        hwc = values.transpose(0, 2, 3, 1)  # OIHW → OHWI
        return hwc[:, :, :, 0] if kernel == "depthwise" else hwc
    if role == "weights" and values.ndim == 2 and flattened_from is not None and len(flattened_from) == 4:
        _, c, h, w = flattened_from
        return values.reshape(values.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(values.shape[0], -1)
    return values.reshape(-1) if values.ndim <= 1 else values


# What the tile pass decided, as this pass reads it: the function's L2 plan and each layer's tiling.

def l2_plan_of(function: func.FuncOp) -> L2PlanAttr:
    plan = function.attributes.get(L2_PLAN)
    if not isinstance(plan, L2PlanAttr):
        raise PassError("bufferize-network needs a tiled network: run --tile first", op_where(function))
    return plan


def planned_offsets(plan: L2PlanAttr) -> dict[str, int]:
    """Each planned L2 buffer's byte offset in the arena, by name."""
    return {name: b.offset.data for name, b in plan.by_name().items()}


def planned_sizes(plan: L2PlanAttr) -> dict[str, int]:
    """Each planned L2 buffer's size in bytes, by name."""
    return {name: b.bytes.data for name, b in plan.by_name().items()}


def weights_resident(plan: L2PlanAttr) -> bool:
    """Whether the plan keeps every layer's constants in L2 for the whole run."""
    return plan.weights.data == "L2"


def l2_peak(plan: L2PlanAttr) -> int:
    return plan.peak.data


def weights_staged(layer: qnn.LayerOp) -> bool:
    """Whether the layer's weights stay in L3 and are copied whole into L2 right before it runs."""
    tiling = layer.attributes[TILING]
    assert isinstance(tiling, LayerTilingAttr)
    return tiling.weights.data == "L3"


def kernel_of(layer: qnn.LayerOp) -> str:
    return KERNEL_OF.get(layer.kind()) or MOVE_OF[layer.kind()]


def aligned(size: int) -> int:
    """`size` rounded up to the arena's alignment."""
    return -(-size // ALIGN) * ALIGN


def alloc(ty: MemRefType) -> memref.AllocOp:
    return memref.AllocOp([], [], ty, alignment=IntegerAttr(ALIGN, 64))


def byte_size(ty: MemRefType) -> int:
    return int(np.prod(ty.get_shape())) * ty.element_type.width.data // 8  # type: ignore[attr-defined]


def buffer_of(tensor: SSAValue) -> SSAValue:
    """The memref a bufferized tensor lives in (the tensor is, until every reader is rewritten, a cast of it)."""
    cast = tensor.owner
    assert isinstance(cast, UnrealizedConversionCastOp), f"{tensor} is read before it is bufferized"
    return cast.inputs[0]


def tensor_cast(buffer: SSAValue, ty: Attribute) -> UnrealizedConversionCastOp:
    """`buffer` seen as the tensor of type `ty` that the readers not yet rewritten expect."""
    return UnrealizedConversionCastOp.get([buffer], [ty])


def constant_roles(layer: qnn.LayerOp) -> list[tuple[str, SSAValue]]:
    """The layer's constants by kernel role, as the values the layer reads from outside."""
    outer = dict(zip(layer.body.block.args, layer.inputs, strict=True))
    return [(role, outer[value]) for role, value in layer_constants(layer)]


@dataclass
class NetworkBuffers:
    """What the rewrites of one network function share: the L2 arena and the plan's buffers in it, the
    activation buffers' names in the plan, the index constants (one per value, created at first use), and
    the constants the plan keeps resident in L2."""

    network: func.FuncOp
    arena: SSAValue
    offsets: dict[str, int]
    sizes: dict[str, int]
    names: dict[SSAValue, str] = field(default_factory=dict)
    indices: dict[int, SSAValue] = field(default_factory=dict)
    resident: dict[tuple[int, str], SSAValue] = field(default_factory=dict)
    # A flatten's view → the NCHW shape it flattens (a linear layer reading it permutes its weights).
    flattened: dict[SSAValue, tuple[int, ...]] = field(default_factory=dict)

    def index(self, builder: Builder, value: int) -> SSAValue:
        if value not in self.indices:
            self.indices[value] = builder.insert(arith.ConstantOp(IntegerAttr(value, IndexType()))).results[0]
        return self.indices[value]

    def view(self, builder: Builder, offset: int, ty: MemRefType) -> SSAValue:
        return builder.insert(memref.ViewOp(self.arena, self.index(builder, offset), [], ty)).results[0]

    def place(self, builder: Builder, tensor: SSAValue, name: str) -> SSAValue:
        """The buffer of an activation: a view of the arena where the plan puts it, else an L3 buffer."""
        if name in self.offsets:
            buffer = self.view(builder, self.offsets[name], memref_of(tensor, "L2"))
        else:
            buffer = builder.insert(alloc(memref_of(tensor, "L3"))).results[0]
        self.names[buffer] = name
        return buffer

    def global_constant(self, builder: Builder, name: str, values: np.ndarray, element: IntegerType) -> SSAValue:
        ty = MemRefType(element, list(values.shape), NoneAttr(), StringAttr("L3"))
        width = element.width.data
        kind = "u" if element.signedness.data == Signedness.UNSIGNED else "i"
        data = np.ascontiguousarray(values).astype(f"<{kind}{width // 8}").tobytes()
        tensor = qnn.TensorType(element, list(values.shape))
        Rewriter.insert_op(memref.GlobalOp.get(
            StringAttr(name), ty, DenseIntOrFPElementsAttr(tensor, BytesAttr(data)), constant=UnitAttr(), alignment=ALIGN
        ), InsertPoint.before(self.network))
        return builder.insert(memref.GetGlobalOp(name, ty)).results[0]

    def constant_global(self, builder: Builder, layer: qnn.LayerOp, role: str, value: SSAValue) -> SSAValue:
        owner = value.owner
        assert isinstance(owner, qnn.ConstantOp)
        flattened = None
        anchor = layer.anchor()
        if isinstance(anchor, qnn.LinearOp):
            activation = next(v for v in layer.inputs if not isinstance(v.owner, qnn.ConstantOp))
            flattened = self.flattened_from(activation)
        values = kernel_layout(constant_array(owner), role, layer, flattened)
        element = qnn.element_type(owner.result)
        return self.global_constant(builder, f"layer{layer.index.value.data}_{role}", values, element)

    def flattened_from(self, activation: SSAValue) -> tuple[int, ...] | None:
        """The shape a layer's input was flattened from, if it was (before or after the flatten is rewritten)."""
        if isinstance(activation.owner, qnn.ReshapeOp):
            return qnn.shape_of(activation.owner.input)
        if isinstance(activation.owner, UnrealizedConversionCastOp):
            return self.flattened.get(buffer_of(activation))
        return None

    def copy_constants_to_l2(self, builder: Builder, layer: qnn.LayerOp, offset: int) -> dict[str, SSAValue]:
        """Copies the layer's constants from their L3 globals into consecutive aligned L2 buffers at
        `offset` of the arena; their views by role."""
        copies = {}
        for role, value in constant_roles(layer):
            source = self.constant_global(builder, layer, role, value)
            ty = source.type
            assert isinstance(ty, MemRefType)
            view = self.view(builder, offset, MemRefType(ty.element_type, ty.get_shape(), NoneAttr(), StringAttr("L2")))
            builder.insert(dma.WaitOp(builder.insert(dma.CopyOp(flat(builder, source), flat(builder, view))).results[0]))
            copies[role] = view
            offset += aligned(byte_size(ty))
        return copies

    def slice_buffers(self, builder: Builder, index: int, roles: dict[str, SSAValue]) -> dict[str, SSAValue]:
        """L2 byte buffers (views of the arena) for the slices of what the layer streams from L3."""
        slices: dict[str, SSAValue] = {}
        for role in ("in", "a", "b", "out"):
            buffer = roles.get(role)
            if buffer is None or dma.memory_level(buffer.type) != "L3":
                continue
            key = f"layer {index} {self.names[buffer]} ({'out' if role == 'out' else 'in'})"
            slices[f"{role}_slice"] = self.view(builder, self.offsets[key], MemRefType(i8, [self.sizes[key]], NoneAttr(), StringAttr("L2")))
        weights = roles.get("weights")
        if weights is not None and dma.memory_level(weights.type) == "L3":
            key = f"layer {index} weights"
            slices["weights_slice"] = self.view(builder, self.offsets[key], MemRefType(i8, [self.sizes[key]], NoneAttr(), StringAttr("L2")))
        return slices


def copy_whole(builder: Builder, source: SSAValue, destination: SSAValue) -> None:
    """Copies a whole buffer: by DMA when one side is in L3."""
    if "L3" in (dma.memory_level(source.type), dma.memory_level(destination.type)):
        builder.insert(dma.WaitOp(builder.insert(dma.CopyOp(source, destination)).results[0]))
    else:
        builder.insert(memref.CopyOp(source, destination))


def flat(builder: Builder, value: SSAValue) -> SSAValue:
    """A contiguous buffer seen as 1-D, for whole-buffer copies."""
    ty = value.type
    assert isinstance(ty, MemRefType)
    if len(ty.get_shape()) == 1:
        return value
    flat_ty = MemRefType(ty.element_type, [int(np.prod(ty.get_shape()))], NoneAttr(), ty.memory_space)
    reassociation = ArrayAttr([ArrayAttr([IntegerAttr(i, 64) for i in range(len(ty.get_shape()))])])
    return builder.insert(memref.CollapseShapeOp.build(
        operands=[value], result_types=[flat_ty], properties={"reassociation": reassociation}
    )).results[0]


def bufferize_signature(function: func.FuncOp) -> NetworkBuffers:
    """Replaces `function` by the bufferized network function with the same body: its arguments are the
    network inputs' L2 buffers (`input`, or `input0`, `input1`, ...), then the outputs'. The body starts with
    the L2 arena, the inputs copied to where the plan puts them, and the constants the plan keeps resident
    copied into the arena; the rest of the body, still on tensors, is for the rewrite patterns."""
    plan = l2_plan_of(function)
    block = function.body.block
    returned = block.last_op
    assert isinstance(returned, func.ReturnOp)
    inputs = list(block.args)
    names = input_names(len(inputs))
    arg_types = [memref_of(v, "L2") for v in inputs] + [memref_of(v, "L2") for v in returned.operands]
    network = func.FuncOp.from_region("network", arg_types, [], Rewriter.move_region_contents_to_new_regions(function.body))
    network.attributes[L2_PLAN] = plan
    network.attributes[NETWORK_INPUTS] = _int(len(inputs))  # the first arguments; the outputs follow
    Rewriter.replace_op(function, network)
    arguments = [block.insert_arg(ty, len(block.args)) for ty in arg_types]
    for argument, name in zip(arguments, names, strict=False):
        argument.name_hint = name.replace("_", "")
    builder = Builder(InsertPoint.at_start(block))
    arena_type = MemRefType(i8, [max(l2_peak(plan), 1)], NoneAttr(), StringAttr("L2"))
    arena = builder.insert(alloc(arena_type)).results[0]
    arena.name_hint = "l2_arena"
    buffers = NetworkBuffers(network, arena, planned_offsets(plan), planned_sizes(plan))
    for tensor, argument, name in zip(inputs, arguments, names, strict=False):
        buffer = buffers.place(builder, tensor, name)
        copy_whole(builder, argument, buffer)
        tensor.replace_all_uses_with(builder.insert(tensor_cast(buffer, tensor.type)).results[0])
        block.erase_arg(tensor)
    if weights_resident(plan):
        for layer in (op for op in block.ops if isinstance(op, qnn.LayerOp)):
            index = layer.index.value.data
            if not constant_roles(layer):
                continue
            offset = buffers.offsets[f"weights of layer {index}"]
            for role, view in buffers.copy_constants_to_l2(builder, layer, offset).items():
                buffers.resident[(index, role)] = view
    return buffers


@dataclass(frozen=True, eq=False)
class FlattenAsView(RewritePattern):
    """A flatten (`qnn.reshape`) is the same bytes seen as a vector (HWC order): a view."""

    buffers: NetworkBuffers

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: qnn.ReshapeOp, rewriter: PatternRewriter) -> None:
        source = buffer_of(op.input)
        owner = source.owner
        if not isinstance(owner, memref.ViewOp):
            raise PassError("a flattened tensor that lives in L3 is not supported yet", op_where(op))
        ty = memref_of(op.output, dma.memory_level(source.type))
        view = rewriter.insert(memref.ViewOp(owner.source, owner.byte_shift, [], ty)).results[0]
        self.buffers.names[view] = self.buffers.names[source]
        self.buffers.flattened[view] = qnn.shape_of(op.input)
        rewriter.replace(op, tensor_cast(view, op.output.type))


@dataclass(frozen=True, eq=False)
class LayerAsPulpLayer(RewritePattern):
    """A `qnn.layer` becomes a `pulp.layer` naming its kernel, its buffers by role (its output placed as the
    plan says; its constants as L3 globals in the kernels' layouts, or their copies in L2) and its static
    parameters."""

    buffers: NetworkBuffers

    @op_type_rewrite_pattern
    def match_and_rewrite(self, layer: qnn.LayerOp, rewriter: PatternRewriter) -> None:
        buffers = self.buffers
        index = layer.index.value.data
        out = buffers.place(rewriter, layer.output, f"layer{index}")
        out.name_hint = f"layer{index}"
        outer = dict(zip(layer.body.block.args, layer.inputs, strict=True))
        anchor = layer.anchor()
        roles: dict[str, SSAValue] = {}
        if isinstance(anchor, qnn.AddOp):
            roles["a"], roles["b"] = buffer_of(outer[anchor.lhs]), buffer_of(outer[anchor.rhs])
        elif isinstance(anchor, qnn.MatMulOp):
            roles["in"], roles["rhs"] = buffer_of(outer[anchor.lhs]), buffer_of(outer[anchor.rhs])
        else:
            roles["in"] = buffer_of(outer[anchor.operands[0]])
        staged = {}
        if weights_staged(layer):
            staged = buffers.copy_constants_to_l2(rewriter, layer, buffers.offsets[f"layer {index} weights"])
        for role, value in constant_roles(layer):
            roles[role] = buffers.resident.get((index, role)) or staged.get(role) or \
                buffers.constant_global(rewriter, layer, role, value)
        roles["out"] = out
        roles |= buffers.slice_buffers(rewriter, index, roles)
        op = pulp.LayerOp(index, kernel_of(layer), roles, layer_params(layer), layer.attributes[TILING])  # type: ignore[arg-type]
        op.location = layer.location
        rewriter.insert(op)
        rewriter.replace(layer, tensor_cast(out, layer.output.type))


@dataclass(frozen=True, eq=False)
class ReturnAsCopies(RewritePattern):
    """The network's results are copied into its output arguments; the arena is freed."""

    buffers: NetworkBuffers

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: func.ReturnOp, rewriter: PatternRewriter) -> None:
        if not op.operands:
            return
        outputs = self.buffers.network.body.block.args[-len(op.operands):]
        for value, destination in zip(op.operands, outputs, strict=True):
            copy_whole(rewriter, buffer_of(value), destination)
        rewriter.insert(memref.DeallocOp.get(self.buffers.arena))
        rewriter.replace(op, func.ReturnOp())


class EraseUnusedTensor(RewritePattern):
    """Tensors nothing reads any more: the constants (now globals) and the casts of bufferized tensors."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, qnn.ConstantOp | UnrealizedConversionCastOp) and not any(r.uses for r in op.results):
            rewriter.erase(op)


@dataclass(frozen=True)
class BufferizeNetworkPass(ModulePass):
    """Tensors to memrefs in L2/L3 following the tile pass's L2 plan; layers to `pulp.layer`."""

    name = "bufferize-network"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp) and f.body.blocks]:
            buffers = bufferize_signature(function)
            network = buffers.network.body
            # One sweep in network order (an op's buffers exist before its readers are rewritten); no
            # dead-code elimination: the pulp ops read and write their buffers by side effect.
            rewrites = [FlattenAsView(buffers), LayerAsPulpLayer(buffers), ReturnAsCopies(buffers)]
            PatternRewriteWalker(GreedyRewritePatternApplier(rewrites, dce_enabled=False),
                                 apply_recursively=False).rewrite_region(network)
            PatternRewriteWalker(EraseUnusedTensor(), apply_recursively=False).rewrite_region(network)
