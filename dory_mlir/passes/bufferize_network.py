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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    Signedness,
    StringAttr,
    UnitAttr,
    i8,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import dma, pulp, qnn
from dory_mlir.network_values import constant_array, input_names
from dory_mlir.ir_utils import BodyBuilder, op_where
from dory_mlir.dialects.tiling import L2_PLAN, TILING, L2PlanAttr, LayerTilingAttr
from dory_mlir.tiling.geometry import ALIGN
from dory_mlir.tiling.layers import layer_constants

KERNEL_OF = {
    "conv": "dory_conv2d", "pointwise": "dory_pointwise", "depthwise": "dory_depthwise", "linear": "dory_linear",
    "maxpool": "dory_maxpool", "avgpool": "dory_sumpool", "add": "dory_add", "matmul": "dory_matmul",
}
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
    params: dict[str, Attribute] = {TILING: layer.attributes[TILING]}
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
    requants = [op for op in layer.compute_ops() if isinstance(op, qnn.RequantOp)]
    if len(requants) > 1:
        raise DoryError("the kernels requantize once; this layer chains two requantizations", op_where(layer))
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


@dataclass
class NetworkBuilder:
    """Builds the bufferized network function next to the tensor one."""

    module: ModuleOp
    function: func.FuncOp

    def __post_init__(self) -> None:
        plan = self.function.attributes.get(L2_PLAN)
        if not isinstance(plan, L2PlanAttr):
            raise DoryError("bufferize-network needs a tiled network: run --tile first", op_where(self.function))
        self.plan = plan
        self.offsets = {name: b.offset.data for name, b in plan.by_name().items()}
        self.sizes = {name: b.bytes.data for name, b in plan.by_name().items()}
        self.tensor_names: dict[SSAValue, str] = {}
        self.weights_resident = plan.weights.data == "L2"
        self.globals: list[Operation] = []
        self.body = BodyBuilder(Block())

    def emit(self, op: Operation) -> Operation:
        return self.body.add(op)

    def index(self, value: int) -> SSAValue:
        return self.body.index(value)

    def view(self, arena: SSAValue, offset: int, ty: MemRefType) -> SSAValue:
        return self.emit(memref.ViewOp(arena, self.index(offset), [], ty)).results[0]

    def global_constant(self, name: str, values: np.ndarray, element: IntegerType) -> SSAValue:
        ty = MemRefType(element, list(values.shape), NoneAttr(), StringAttr("L3"))
        width = element.width.data
        kind = "u" if element.signedness.data == Signedness.UNSIGNED else "i"
        data = np.ascontiguousarray(values).astype(f"<{kind}{width // 8}").tobytes()
        tensor = qnn.TensorType(element, list(values.shape))
        self.globals.append(memref.GlobalOp.get(
            StringAttr(name), ty, DenseIntOrFPElementsAttr(tensor, BytesAttr(data)), constant=UnitAttr(), alignment=ALIGN
        ))
        return self.emit(memref.GetGlobalOp(name, ty)).results[0]

    def build(self) -> func.FuncOp:
        block = self.function.body.block
        returned = block.last_op
        assert isinstance(returned, func.ReturnOp)
        # Arguments: the network inputs (`input`, or `input_0`, `input_1`, ...), then the outputs.
        inputs = list(block.args)
        names = input_names(len(inputs))
        arg_types = [memref_of(v, "L2") for v in inputs] + [memref_of(v, "L2") for v in returned.operands]
        body = Block(arg_types=arg_types)
        for arg, name in zip(body.args, names, strict=False):
            arg.name_hint = name.replace("_", "")
        self.body = BodyBuilder(body)
        peak = self.plan.peak.data
        arena = self.emit(memref.AllocOp([], [], MemRefType(i8, [max(peak, 1)], NoneAttr(), StringAttr("L2")), alignment=IntegerAttr(ALIGN, 64))).results[0]
        arena.name_hint = "l2_arena"
        buffers: dict[SSAValue, SSAValue] = {}

        def place(value: SSAValue, name: str) -> SSAValue:
            self.tensor_names[value] = name
            if name in self.offsets:
                return self.view(arena, self.offsets[name], memref_of(value, "L2"))
            return self.emit(memref.AllocOp([], [], memref_of(value, "L3"), alignment=IntegerAttr(ALIGN, 64))).results[0]

        for k, (value, name) in enumerate(zip(inputs, names, strict=True)):
            buffers[value] = place(value, name)
            self.copy_in(body.args[k], buffers[value])
        resident = self.copy_resident_weights(arena)
        for op in block.ops:
            if isinstance(op, qnn.ReshapeOp):
                source = buffers[op.input]
                buffers[op.output] = self.reshaped(source, op, arena)
                self.tensor_names[op.output] = self.tensor_names[op.input]
            elif isinstance(op, qnn.LayerOp):
                out = place(op.output, f"layer{op.index.value.data}")
                out.name_hint = f"layer{op.index.value.data}"
                buffers[op.output] = out
                self.layer(op, buffers, resident, arena)
        for value, destination in zip(returned.operands, body.args[len(inputs):], strict=True):
            self.copy_out(buffers[value], destination)
        self.emit(memref.DeallocOp.get(arena))
        self.emit(func.ReturnOp())
        network = func.FuncOp.from_region("network", arg_types, [], Region(body))
        network.attributes[L2_PLAN] = self.plan
        network.attributes[NETWORK_INPUTS] = _int(len(inputs))  # the first arguments; the outputs follow
        return network

    def copy_in(self, source: SSAValue, destination: SSAValue) -> None:
        if dma.memory_level(destination.type) == "L3":
            self.emit(dma.WaitOp(self.emit(dma.CopyOp(source, destination)).results[0]))
        else:
            self.emit(memref.CopyOp(source, destination))

    def copy_out(self, source: SSAValue, destination: SSAValue) -> None:
        if dma.memory_level(source.type) == "L3":
            self.emit(dma.WaitOp(self.emit(dma.CopyOp(source, destination)).results[0]))
        else:
            self.emit(memref.CopyOp(source, destination))

    def reshaped(self, source: SSAValue, op: qnn.ReshapeOp, arena: SSAValue) -> SSAValue:
        """A flatten is the same bytes seen as a vector (HWC order)."""
        ty = memref_of(op.output, dma.memory_level(source.type))
        owner = source.owner
        if isinstance(owner, memref.ViewOp):
            return self.emit(memref.ViewOp(owner.source, owner.byte_shift, [], ty)).results[0]
        raise DoryError("a flattened tensor that lives in L3 is not supported yet", op_where(op))

    def constants(self, layer: qnn.LayerOp) -> list[tuple[str, SSAValue]]:
        """The layer's constants by kernel role."""
        outer = dict(zip(layer.body.block.args, layer.inputs, strict=True))
        return [(role, outer[value]) for role, value in layer_constants(layer)]

    def constant_global(self, layer: qnn.LayerOp, role: str, value: SSAValue) -> SSAValue:
        owner = value.owner
        assert isinstance(owner, qnn.ConstantOp)
        flattened = None
        anchor = layer.anchor()
        if isinstance(anchor, qnn.LinearOp):
            activation = next(v for v in layer.inputs if not isinstance(v.owner, qnn.ConstantOp))
            if isinstance(activation.owner, qnn.ReshapeOp):
                flattened = qnn.shape_of(activation.owner.input)
        values = kernel_layout(constant_array(owner), role, layer, flattened)
        element = qnn.element_type(owner.result)
        return self.global_constant(f"layer{layer.index.value.data}_{role}", values, element)

    def copy_resident_weights(self, arena: SSAValue) -> dict[tuple[int, str], SSAValue]:
        """With resident weights, every layer's constants are copied once into the arena."""
        if not self.weights_resident:
            return {}
        resident: dict[tuple[int, str], SSAValue] = {}
        for layer in (op for op in self.function.body.block.ops if isinstance(op, qnn.LayerOp)):
            index = layer.index.value.data
            offset = self.offsets.get(f"weights of layer {index}")
            for role, value in self.constants(layer):
                source = self.constant_global(layer, role, value)
                assert offset is not None
                view = self.view(arena, offset, MemRefType(source.type.element_type, source.type.get_shape(), NoneAttr(), StringAttr("L2")))  # type: ignore[attr-defined]
                self.emit(dma.WaitOp(self.emit(dma.CopyOp(self.flat(source), self.flat(view))).results[0]))
                resident[(index, role)] = view
                offset += -(-self._bytes(source.type) // ALIGN) * ALIGN
        return resident

    def flat(self, value: SSAValue) -> SSAValue:
        """A contiguous buffer seen as 1-D, for whole-buffer copies."""
        ty = value.type
        assert isinstance(ty, MemRefType)
        if len(ty.get_shape()) == 1:
            return value
        flat_ty = MemRefType(ty.element_type, [int(np.prod(ty.get_shape()))], NoneAttr(), ty.memory_space)
        reassociation = ArrayAttr([ArrayAttr([IntegerAttr(i, 64) for i in range(len(ty.get_shape()))])])
        return self.emit(memref.CollapseShapeOp.build(
            operands=[value], result_types=[flat_ty], properties={"reassociation": reassociation}
        )).results[0]

    def slice_buffers(self, layer: qnn.LayerOp, roles: dict[str, SSAValue], buffers: dict[SSAValue, SSAValue],
                      arena: SSAValue) -> dict[str, SSAValue]:
        """L2 byte buffers (views of the arena) for the slices of what the layer streams from L3."""
        index = layer.index.value.data
        names = {buffer: self.tensor_names[value] for value, buffer in buffers.items() if value in self.tensor_names}
        slices: dict[str, SSAValue] = {}
        for role in ("in", "a", "b", "out"):
            buffer = roles.get(role)
            if buffer is None or dma.memory_level(buffer.type) != "L3":
                continue
            key = f"layer {index} {names[buffer]} ({'out' if role == 'out' else 'in'})"
            slices[f"{role}_slice"] = self.view(arena, self.offsets[key], MemRefType(i8, [self.sizes[key]], NoneAttr(), StringAttr("L2")))
        weights = roles.get("weights")
        if weights is not None and dma.memory_level(weights.type) == "L3":
            key = f"layer {index} weights"
            slices["weights_slice"] = self.view(arena, self.offsets[key], MemRefType(i8, [self.sizes[key]], NoneAttr(), StringAttr("L2")))
        return slices

    def stage_weights(self, layer: qnn.LayerOp, arena: SSAValue) -> dict[str, SSAValue]:
        """Weights the plan keeps in L3 and copies whole per layer: copied into the layer's L2
        buffer right before it runs."""
        tiling = layer.attributes[TILING]
        assert isinstance(tiling, LayerTilingAttr)
        if tiling.weights.data != "L3":
            return {}
        offset = self.offsets[f"layer {layer.index.value.data} weights"]
        staged = {}
        for role, value in self.constants(layer):
            source = self.constant_global(layer, role, value)
            ty = source.type
            assert isinstance(ty, MemRefType)
            view = self.view(arena, offset, MemRefType(ty.element_type, ty.get_shape(), NoneAttr(), StringAttr("L2")))
            self.emit(dma.WaitOp(self.emit(dma.CopyOp(self.flat(source), self.flat(view))).results[0]))
            staged[role] = view
            offset += -(-self._bytes(ty) // ALIGN) * ALIGN
        return staged

    @staticmethod
    def _bytes(ty: MemRefType) -> int:
        return int(np.prod(ty.get_shape())) * ty.element_type.width.data // 8  # type: ignore[attr-defined]

    def layer(self, layer: qnn.LayerOp, buffers: dict[SSAValue, SSAValue], resident: dict, arena: SSAValue) -> None:
        index = layer.index.value.data
        outer = dict(zip(layer.body.block.args, layer.inputs, strict=True))
        anchor = layer.anchor()
        roles: dict[str, SSAValue] = {}
        if isinstance(anchor, qnn.AddOp):
            roles["a"], roles["b"] = buffers[outer[anchor.lhs]], buffers[outer[anchor.rhs]]
        elif isinstance(anchor, qnn.MatMulOp):
            roles["in"], roles["rhs"] = buffers[outer[anchor.lhs]], buffers[outer[anchor.rhs]]
        else:
            roles["in"] = buffers[outer[anchor.operands[0]]]
        staged = self.stage_weights(layer, arena)
        for role, value in self.constants(layer):
            roles[role] = resident.get((index, role)) or staged.get(role) or self.constant_global(layer, role, value)
        roles["out"] = buffers[layer.output]
        roles |= self.slice_buffers(layer, roles, buffers, arena)
        op = pulp.LayerOp(index, KERNEL_OF[layer.kind()], roles, layer_params(layer))
        op.location = layer.location
        self.emit(op)


@dataclass(frozen=True)
class BufferizeNetworkPass(ModulePass):
    """Tensors to memrefs in L2/L3 following the tile pass's L2 plan; layers to `pulp.layer`."""

    name = "bufferize-network"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for function in [f for f in op.ops if isinstance(f, func.FuncOp) and f.body.blocks]:
            builder = NetworkBuilder(op, function)
            network = builder.build()
            for global_op in builder.globals:
                Rewriter.insert_op(global_op, InsertPoint.before(function))
            Rewriter.replace_op(function, network)
