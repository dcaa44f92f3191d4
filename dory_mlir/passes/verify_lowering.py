"""`verify-lowering`: checks what the generated C will do, on the lowered IR, against the target.

`tiling/check.py` checks the tile pass's decisions; this pass checks their lowering, after
`tile-layers` (on by default in `lower-to-pulp`), reading only the lowered IR and the module's
`#tiling.target`:

1. L1: every cluster function's L1 allocation, rounded up as the runtimes' allocator rounds it,
   fits the target's L1 budget;
2. coverage: the rows of every tile table (border tiles included) cover the layer's output
   exactly once, and for a layer that slices its reduction, each output tile's input-channel
   slices cover the input channels exactly once, first and last slice flagged;
3. L2: the views of the network's L2 arena lie inside it, and no two of them that are alive at
   once share a byte (views of the same bytes, e.g. a flattened tensor, are one buffer).

A failure is one line naming the layer. IR lowered without the tile pass has no target: nothing
to verify against, the pass does nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerAttr, MemRefType, ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from dory_mlir.diagnostics import PassError
from dory_mlir.dialects import pulp
from dory_mlir.dialects.tiling import TargetAttr, target_of
from dory_mlir.passes.tile import L1_ALLOC_GRANULE
from dory_mlir.passes.tile_layers import COL

REDUCING_KERNELS = ("dory_conv2d", "dory_pointwise", "dory_linear", "dory_matmul")


def _bytes(ty: MemRefType) -> int:
    return int(np.prod(ty.get_shape())) * max(1, ty.element_type.width.data // 8)  # type: ignore[attr-defined]


def _level(ty: MemRefType) -> str | None:
    space = ty.memory_space
    return space.data if isinstance(space, StringAttr) else None


def _top_level(op: Operation, block) -> Operation:
    while op.parent_block() is not block:
        op = op.parent_op()  # type: ignore[assignment]
    return op


@dataclass
class LayerFunction:
    """A cluster function of `tile-layers`: its layer index, kernel and tile table."""

    function: func.FuncOp
    index: int
    kernel: str
    table: np.ndarray | None

    @staticmethod
    def of(function: func.FuncOp, globals_by_name: dict[str, memref.GlobalOp]) -> LayerFunction:
        index_attr = function.attributes.get("pulp.layer")
        index = index_attr.value.data if isinstance(index_attr, IntegerAttr) else -1
        kernel = next((op.callee.data for op in function.walk() if isinstance(op, pulp.KernelOp)), "")
        table = None
        source = globals_by_name.get(f"layer{index}_tiles")
        if source is not None and isinstance(source.initial_value, DenseIntOrFPElementsAttr):
            shape = source.type.get_shape()  # type: ignore[attr-defined]
            table = np.array(source.initial_value.get_values(), dtype=np.int64).reshape(shape)
        return LayerFunction(function, index, kernel, table)

    def fail(self, message: str) -> PassError:
        return PassError(f"layer {self.index}: {message}")

    def argument(self, role: str) -> SSAValue | None:
        """The L2 buffer of a role (the function's arguments are named by role)."""
        return next((a for a in self.function.body.block.args if a.name_hint == role), None)


def check_l1(layer: LayerFunction, target: TargetAttr) -> None:
    allocated = sum(_bytes(op.memref.type) for op in layer.function.walk()  # type: ignore[arg-type]
                    if isinstance(op, memref.AllocOp) and _level(op.memref.type) == "L1")  # type: ignore[arg-type]
    reserved = -(-allocated // L1_ALLOC_GRANULE) * L1_ALLOC_GRANULE
    if reserved > target.l1_budget.data:
        raise layer.fail(f"allocates {reserved} B of L1 (its {allocated} B rounded up to {L1_ALLOC_GRANULE} B, as the "
                         f"runtimes allocate) > L1 budget {target.l1_budget.data} B")


def check_coverage(layer: LayerFunction) -> None:
    table = layer.table
    if table is None or not len(table):
        raise layer.fail("has no tile table")
    c = COL
    if (table[:, [c["con"], c["hn"], c["wn"], c["cin"]]] <= 0).any():
        raise layer.fail("a tile of the tile table is empty")
    out = layer.argument("out")
    ends = [int((table[:, c[f"{d}0"]] + table[:, c[f"{d}n"]]).max()) for d in ("h", "w", "co")]
    if out is not None and isinstance(out.type, MemRefType):
        shape = list(out.type.get_shape())
        ends = [1, 1, *shape] if len(shape) == 1 else shape
    if (table[:, [c["h0"], c["w0"], c["co0"]]] < 0).any():
        raise layer.fail("a tile starts outside the output")
    covered = np.zeros(ends, dtype=np.int64)
    outputs = {tuple(row) for row in table[:, [c["h0"], c["hn"], c["w0"], c["wn"], c["co0"], c["con"]]]}
    for h0, hn, w0, wn, c0, cn in outputs:
        if h0 + hn > ends[0] or w0 + wn > ends[1] or c0 + cn > ends[2]:
            raise layer.fail(f"tile rows {h0}+{hn}, columns {w0}+{wn}, channels {c0}+{cn} leave the output {ends}")
        covered[h0 : h0 + hn, w0 : w0 + wn, c0 : c0 + cn] += 1
    if (covered != 1).any():
        where = tuple(int(i) for i in np.argwhere(covered != 1)[0])
        raise layer.fail(f"the tiles cover output element {where} {int(covered[where])} times, not once")
    if layer.kernel in REDUCING_KERNELS:
        check_reduction(layer, table)


def check_reduction(layer: LayerFunction, table: np.ndarray) -> None:
    """Each output tile's input-channel slices follow each other from 0 to the layer's input channels."""
    c = COL
    channels = int((table[:, c["ci0"]] + table[:, c["cin"]]).max())
    key = [c["h0"], c["hn"], c["w0"], c["wn"], c["co0"], c["con"]]
    slices: dict[tuple[int, ...], list[tuple[int, int, int, int]]] = {}
    for row in table:
        slices.setdefault(tuple(row[key]), []).append((row[c["ci0"]], row[c["cin"]], row[c["first"]], row[c["last"]]))
    for tile, parts in slices.items():
        position = 0
        for i, (start, count, first, last) in enumerate(parts):
            if start != position or bool(first) != (i == 0) or bool(last) != (i == len(parts) - 1):
                raise layer.fail(f"the input-channel slices of output tile {list(tile)} do not follow each other "
                                 f"from 0 to {channels} (slice {start}+{count})")
            position = start + count
        if position != channels:
            raise layer.fail(f"the input-channel slices of output tile {list(tile)} end at {position}, not {channels}")


@dataclass(frozen=True)
class ArenaView:
    """A view of the L2 arena: bytes [start, end), alive over the network's ops [first, last]."""

    op: memref.ViewOp
    start: int
    end: int
    first: int
    last: int

    def describe(self) -> str:
        name = f"%{self.op.results[0].name_hint}" if self.op.results[0].name_hint else "a view"
        return f"{name} [{self.start}, {self.end}) alive over ops {self.first}..{self.last}"


def arena_views(network: func.FuncOp) -> list[ArenaView]:
    block = network.body.block
    position = {op: i for i, op in enumerate(block.ops)}
    views = []
    for op in block.ops:
        if not (isinstance(op, memref.ViewOp) and isinstance(op.source.owner, memref.AllocOp)
                and _level(op.source.type) == "L2"):  # type: ignore[arg-type]
            continue
        shift = op.byte_shift.owner
        if not isinstance(shift, arith.ConstantOp):
            continue
        start = shift.value.value.data  # type: ignore[attr-defined]
        users, pending = [], [op.results[0]]
        while pending:
            for use in pending.pop().uses:
                users.append(use.operation)
                pending += [r for r in use.operation.results if isinstance(r.type, MemRefType)]
        last = max((position[_top_level(u, block)] for u in users), default=position[op])
        views.append(ArenaView(op, start, start + _bytes(op.results[0].type), position[op], last))  # type: ignore[arg-type]
    return views


def check_l2(network: func.FuncOp) -> None:
    arenas = [op for op in network.body.block.ops if isinstance(op, memref.AllocOp) and _level(op.memref.type) == "L2"]  # type: ignore[arg-type]
    if not arenas:
        return
    size = _bytes(arenas[0].memref.type)  # type: ignore[arg-type]
    where = f"@{network.sym_name.data}"
    views = arena_views(network)
    for view in views:
        if view.start < 0 or view.end > size:
            raise PassError(f"L2 {view.describe()} lies outside the {size} B arena", where)
    for a, b in itertools.combinations(views, 2):
        same_bytes = (a.start, a.end) == (b.start, b.end)
        if not same_bytes and a.start < b.end and b.start < a.end and a.first <= b.last and b.first <= a.last:
            raise PassError(f"L2 {a.describe()} and {b.describe()} share bytes while both are alive", where)


@dataclass(frozen=True)
class VerifyLoweringPass(ModulePass):
    """Checks the lowered network's L1 allocations, tile coverage and L2 views (module docstring)."""

    name = "verify-lowering"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = target_of(op)
        if target is None:
            return
        globals_by_name = {g.sym_name.data: g for g in op.ops if isinstance(g, memref.GlobalOp)}
        for function in [f for f in op.ops if isinstance(f, func.FuncOp)]:
            if "pulp.cluster" in function.attributes:
                layer = LayerFunction.of(function, globals_by_name)
                check_l1(layer, target)
                check_coverage(layer)
            elif "l2_plan" in function.attributes:
                check_l2(function)
