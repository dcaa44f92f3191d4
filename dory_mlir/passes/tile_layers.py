"""`tile-layers`: each `pulp.layer` becomes a function that runs its tiles on the cluster.

The tile grid of the `tiling` decision is laid out at compile time as a table (one row a
tile: output and input offsets and sizes, border padding, reduction-slice flags; border
tiles exact), and an `scf.for` walks it: `memref.subview`s of the L2 tensors, `dma.copy`
into L1, the kernel (`pulp.kernel`, all cores), `dma.copy` of the output back.

With double buffering (the default) every L1 buffer has two slots: the copies of tile
t+1 are issued before tile t computes and waited after it, and the output of tile t is
written back while tile t+1 computes (its wait comes one iteration later). A layer that
streams from L3 runs its tiles L2 slice by L2 slice, pipelined the same way one level up
(`LayerLowering.slice_loop`: slice k+1's L3 copies fly while slice k's tiles run). The layer
function carries `pulp.cluster`: the code generator runs it on every core of the team,
issuing DMA from core 0, with the `pulp.barrier`s of the IR between copies and compute.

The rewrite is one pattern, `LayerAsClusterCall` (a `pulp.layer` → a `func.call` of the cluster function
`LayerLowering` builds for it), run by a `PatternRewriteWalker`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StridedLayoutAttr,
    StringAttr,
    TensorType,
    UnitAttr,
    i8,
    i32,
)
from xdsl.ir import Attribute, Block, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint
from xdsl.transforms.dead_code_elimination import dce

from dory_mlir.diagnostics import PassError
from dory_mlir.dialects import dma, pulp
from dory_mlir.ir_utils import BodyBuilder, op_where
from dory_mlir.kernel_abi import KERNEL_OF, LAYER_PARAMS, acc_bytes, im2col_bytes
from dory_mlir.target import planned_execution
from dory_mlir.tensor_layout import permuted_strides
from dory_mlir.tiling.traffic import block_loops
from dory_mlir.tiling.geometry import (
    ALIGN, TILE_DIMS, LayerShape, LoopOrder, activation_tile_bytes, align, buffer_slots, input_rows, spans, transpose_runs,
    transpose_tile_rows, weight_tile_bytes,
)

COLUMNS = ("co0", "con", "h0", "hn", "w0", "wn", "ci0", "cin", "ih0", "ihn", "iw0", "iwn",
           "pad_t", "pad_l", "pad_b", "pad_r", "first", "last")
COL = {name: i for i, name in enumerate(COLUMNS)}
LOOP_COLUMN = {"co": "co0", "ho": "h0", "wo": "w0", "ci": "ci0"}
"""The column of a tile's position along each tile loop (`geometry.TILE_DIMS`)."""
CONV_KERNELS = ("dory_conv2d", "dory_pointwise", "dory_depthwise")
# A matmul's table has two more columns: the first row of the right operand's block (its batch
# slice's K rows from `kr0 - ci0`) and the output batch slice (for constants per batch slice).
# Its `ih0` is the first row of the left operand's block (in the lhs batch slice the tile reads).
MATMUL_COLUMNS = (*COLUMNS, "kr0", "bat")
MATMUL_COL = {name: i for i, name in enumerate(MATMUL_COLUMNS)}


def _param(params: DictionaryAttr, name: str, default: int = 0) -> int:
    value = params.data.get(name)
    return value.value.data if isinstance(value, IntegerAttr) else default  # type: ignore[union-attr]


def _ints(attr: Attribute) -> list[int]:
    return list(attr.get_values())  # type: ignore[attr-defined]


def _shape(value: SSAValue) -> list[int]:
    ty = value.type
    assert isinstance(ty, MemRefType)
    return list(ty.get_shape())


def _elem_bytes(value: SSAValue) -> int:
    ty = value.type
    assert isinstance(ty, MemRefType)
    return max(1, ty.element_type.width.data // 8)  # type: ignore[attr-defined]


KIND_OF_KERNEL = {kernel: kind for kind, kernel in KERNEL_OF.items()}


def layer_shape(layer: pulp.LayerOp) -> LayerShape:
    """The layer's dimensions (its buffers are HWC; linear: H = W = 1) and window, as the tiler saw them."""
    params = layer.params
    activation = layer.buffer("in") or layer.buffer("a")
    out = layer.buffer("out")
    assert activation is not None and out is not None
    in_shape, out_shape = _shape(activation), _shape(out)
    kind = KIND_OF_KERNEL[layer.kernel.data]
    if len(in_shape) == 1:
        return LayerShape(kind, in_shape[0], out_shape[0], 1, 1, 1, 1)
    (h_in, w_in, c_in), (h_out, w_out, c_out) = in_shape, out_shape
    window = {name: _param(params, name, 1) for name in ("kh", "kw", "sh", "sw", "dh", "dw")}
    return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, **window)


def layer_pads(layer: pulp.LayerOp) -> tuple[int, int, int, int]:
    """Padding rows and columns (top, left, bottom, right) of the layer's window."""
    return tuple(_param(layer.params, p) for p in ("pad_t", "pad_l", "pad_b", "pad_r"))  # type: ignore[return-value]


SLICE_COLUMNS = ("start", "count", "co0", "con", "h0", "hn", "ih0", "ihn", "last_co")
SCOL = {name: i for i, name in enumerate(SLICE_COLUMNS)}


def tile_table(g: LayerShape, pads: tuple[int, int, int, int], l1_tile: list[int], co2: int,
               ho2: int, order: LoopOrder = LoopOrder.INPUT_STATIONARY) -> tuple[np.ndarray, np.ndarray]:
    """The tiles (one row each) and the L2 slices they are grouped in (rows of `co2` channels
    by `ho2` output rows; rows outer). Within a slice the tiles run in the loop order `order`
    (input-stationary: rows, columns, channel tiles, reduction slices; weight-stationary: channel
    tiles first)."""
    co, ho, wo, ci = l1_tile
    t, l, _, _ = pads
    tiles, slices = [], []
    for s_h0, s_h1 in spans(g.h_out, ho2):
        for s_c0, s_c1 in spans(g.c_out, co2):
            first = len(tiles)
            spans_of = {"ho": [(a + s_h0, b + s_h0) for a, b in spans(s_h1 - s_h0, ho)], "wo": spans(g.w_out, wo),
                        "co": [(a + s_c0, b + s_c0) for a, b in spans(s_c1 - s_c0, co)]}
            outer = [dim for dim in order.loops if dim != "ci"]  # the reduction slices are innermost
            for picked in itertools.product(*(spans_of[dim] for dim in outer)):
                (h0, h1), (w0, w1), (c0, c1) = (picked[outer.index(dim)] for dim in ("ho", "wo", "co"))
                for i0, i1 in spans(g.c_in, ci) if g.splits_reduction else [(c0, c1)]:
                    first_h, last_h = h0 * g.sh - t, (h1 - 1) * g.sh - t + g.dh * (g.kh - 1)
                    first_w, last_w = w0 * g.sw - l, (w1 - 1) * g.sw - l + g.dw * (g.kw - 1)
                    # A tile whose window lies wholly in the padding (pads wider than the dilated
                    # kernel) reads no input: 0 rows or columns at an offset inside the tensor.
                    tiles.append([
                        c0, c1 - c0, h0, h1 - h0, w0, w1 - w0, i0, i1 - i0,
                        min(max(first_h, 0), g.h_in), input_rows(h0, h1, g.sh, g.kh, g.dh, t, g.h_in),
                        min(max(first_w, 0), g.w_in), input_rows(w0, w1, g.sw, g.kw, g.dw, l, g.w_in),
                        max(0, -first_h), max(0, -first_w),
                        max(0, last_h - (g.h_in - 1)), max(0, last_w - (g.w_in - 1)),
                        int(i0 == 0), int(i1 == g.c_in),
                    ])
            slices.append([first, len(tiles) - first, s_c0, s_c1 - s_c0, s_h0, s_h1 - s_h0,
                           min(max(s_h0 * g.sh - t, 0), g.h_in), input_rows(s_h0, s_h1, g.sh, g.kh, g.dh, t, g.h_in),
                           int(s_c1 == g.c_out)])
    return np.array(tiles, dtype=np.int32), np.array(slices, dtype=np.int32)


def matmul_tile_table(g: LayerShape, l1_tile: list[int], rows_per_batch: int,
                      lhs_slices: list[int], rhs_slices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The tiles of a matmul (one L2 slice: its tensors stay in L2). Rows outermost — batch slice
    by batch slice, as the tile's rows divide a slice's M — then columns (N), then slices of K.
    Output batch slice `bat` reads the left operand's slice `lhs_slices[bat]` and the right
    operand's `rhs_slices[bat]` (ONNX broadcasting, resolved here at compile time)."""
    co, ho, _, ci = l1_tile
    m, k = rows_per_batch, g.c_in
    if m % ho:
        raise AssertionError(f"a matmul tile of {ho} rows straddles batch slices of {m} rows")
    tiles = []
    for h0, h1 in spans(g.h_out, ho):
        bat = h0 // m
        a0 = lhs_slices[bat] * m + h0 - bat * m
        for c0, c1 in spans(g.c_out, co):
            for i0, i1 in spans(k, ci):
                tiles.append([c0, c1 - c0, h0, h1 - h0, 0, 1, i0, i1 - i0, a0, h1 - h0, 0, 1, 0, 0, 0, 0,
                              int(i0 == 0), int(i1 == k), rhs_slices[bat] * k + i0, bat])
    slices = [[0, len(tiles), 0, g.c_out, 0, g.h_out, 0, g.h_in, 1]]
    return np.array(tiles, dtype=np.int32), np.array(slices, dtype=np.int32)


def cluster_function(b: BodyBuilder, index: int, l1_arena: SSAValue) -> func.FuncOp:
    """The function of layer `index` whose body `b` has built (its arguments the layer's buffers): frees
    the L1 arena, returns; run on the cluster team (`pulp.cluster`)."""
    b.add(memref.DeallocOp.get(l1_arena))
    b.add(func.ReturnOp())
    arg_types = [arg.type for arg in b.block.args]
    function = func.FuncOp.from_region(f"layer{index}", arg_types, [], Region(b.block))
    function.attributes["pulp.cluster"] = UnitAttr()
    function.attributes["pulp.layer"] = IntegerAttr(index, 64)
    function.sym_visibility = StringAttr("private")
    return function


def table_global(name: str, table: np.ndarray) -> memref.GlobalOp:
    """A compile-time table (int32, in L2) as a constant global."""
    return memref.GlobalOp.get(StringAttr(name), MemRefType(i32, list(table.shape), NoneAttr(), StringAttr("L2")),
                               DenseIntOrFPElementsAttr(TensorType(i32, list(table.shape)),
                                                        BytesAttr(table.astype("<i4").tobytes())),
                               constant=UnitAttr(), alignment=ALIGN)


@dataclass
class SliceBlock:
    """The block of a streamed tensor an L2 slice needs, in its L2 slot (`LayerLowering.slice_blocks`)."""

    phase: str
    source: SSAValue  # the tensor in L3
    offsets: list[SSAValue]  # the block's origin in it
    sizes: list[SSAValue]
    view: SSAValue  # where the block is in L2
    counts: list[SSAValue]  # sizes whose 0 means nothing to copy (a slice that reads only padding)
    first_co: SSAValue | None  # i1: the block is not in L2 yet (the first channel slice of its rows)


class TileRow(dict):
    """Columns of one row of a table (tiles, or L2 slices) as index values, loaded on first use."""

    def __init__(self, b: BodyBuilder, table: SSAValue, tile: SSAValue, columns: dict[str, int] | None = None):
        super().__init__()
        self.b, self.table, self.tile, self.columns = b, table, tile, columns or COL

    def __missing__(self, name: str) -> SSAValue:
        loaded = self.b.add(memref.LoadOp.get(self.table, [self.tile, self.b.index(self.columns[name])])).results[0]
        self[name] = self.b.add(arith.IndexCastOp(loaded, IndexType())).results[0]
        return self[name]


@dataclass
class LayerLowering:
    """Builds the tiled function of one `pulp.layer`."""

    layer: pulp.LayerOp
    double_buffer: bool
    cores: int

    def __post_init__(self) -> None:
        self.params = self.layer.params
        tiling = self.layer.tiling
        if tiling is None:
            raise PassError("tile-layers needs the tile pass's decisions", op_where(self.layer))
        self.tiling = tiling
        self.kernel_name = self.layer.kernel.data
        self.shape = layer_shape(self.layer)
        self.l1_tile = list(tiling.tile)
        co2, ho2 = tiling.slice
        self.columns = dict(COL)
        if self.kernel_name == "dory_matmul":
            self.columns = MATMUL_COL
            self.table, self.slice_table = matmul_tile_table(
                self.shape, self.l1_tile, _param(self.params, "rows_per_batch"),
                _ints(self.params.data["lhs_slices"]), _ints(self.params.data["rhs_slices"]))
        else:
            self.table, self.slice_table = tile_table(self.shape, layer_pads(self.layer), self.l1_tile, co2, ho2,
                                                      tiling.order)
        self.all_roles = [r.data for r in self.layer.roles.data]
        self.roles = [r for r in self.all_roles if not r.endswith("_slice")]
        self.index = self.layer.index.value.data
        self.invariant = self.tile_invariant_roles()
        self.kept = self.kept_blocks()
        # The stationary buffer kept in one L1 slot although it changes: copied between two tiles, waited for.
        single = {"input": ("in", "a", "b"), "weights": ("weights",)}.get(tiling.single or "", ())
        self.single_slot = [r for r in self.roles if r in single and r not in self.invariant]
        # Roles streamed from L3: their tiles come from L2 slice buffers, filled per slice.
        self.streamed = [r for r in self.roles if dma.memory_level(self.layer.buffer(r).type) == "L3"]  # type: ignore[union-attr]
        if self.streamed and self.kernel_name == "dory_matmul":
            raise PassError(f"a matmul's tensors must be in L2, but {', '.join(self.streamed)} are in L3",
                            op_where(self.layer))
        self.slice_sources: dict[str, tuple[SSAValue, list[SSAValue]]] = {}
        # Never an empty transfer: the copies of the input tiles (slices) that read only padding are skipped.
        self.empty_in = [c for c in ("ihn", "iwn") if (self.table[:, COL[c]] == 0).any()]
        self.empty_slice_in = bool((self.slice_table[:, SCOL["ihn"]] == 0).any())
        sizes = [self.table[:, COL[c]] for c in ("con", "hn", "wn", "cin")] + [self.slice_table[:, SCOL[c]] for c in ("count", "con", "hn")]
        if any((column <= 0).any() for column in sizes):
            raise AssertionError(f"layer {self.index}: a tile or L2 slice of the tile table is empty")

    # --------------------------------------------------------------- L1 buffers

    def tile_invariant_roles(self) -> list[str]:
        """Roles whose L1 tile is the same for every tile of an L2 slice: one slot, copied once
        per slice before its tiles (as the tiling model counts them: single-buffered when
        the slice has one tile)."""
        columns = {"in": ("ih0", "ihn", "iw0", "iwn", "ci0", "cin"), "a": ("h0", "hn", "w0", "wn", "co0", "con"),
                   "weights": ("co0", "con", "ci0", "cin"), "out": ("h0", "hn", "w0", "wn", "co0", "con")}
        columns["b"] = columns["a"]
        columns["rhs"] = ("kr0", "cin", "co0", "con")
        groups = [self.table[start : start + count] for start, count in self.slice_table[:, :2]]

        def constant(cols: tuple[str, ...]) -> bool:  # within every L2 slice
            return all(len({tuple(row) for row in group[:, [self.columns[c] for c in cols]]}) == 1 for group in groups)

        invariant = []
        for role in self.roles:
            if role in ("mul", "add") and self.per_batch(role):
                if constant(("bat",)):
                    invariant.append(role)
            elif role in ("bias", "mul", "add"):
                shape = _shape(self.layer.buffer(role))  # type: ignore[arg-type]
                if len(shape) == 2:  # one block per output row: the tile's row's
                    if constant(("h0",) if shape[1] == 1 else ("h0", "co0", "con")):
                        invariant.append(role)
                elif shape[0] == 1 or constant(("co0", "con")):
                    invariant.append(role)
            elif constant(columns[role]):
                invariant.append(role)
        return invariant

    def block_loops(self, role: str) -> frozenset[str]:
        """The tile loops (`geometry.TILE_DIMS`) the role's block follows: the traffic model's rule."""
        loops = block_loops(self.shape)
        if role in ("in", "a", "b"):
            return loops["input"]
        if role == "weights":
            return loops["weights"]
        shape = _shape(self.layer.buffer(role))  # type: ignore[arg-type]
        if len(shape) == 2:  # one block per output row: per channel, or per tensor
            return loops["row fixed constants"] if shape[1] == 1 else loops["row constants"]
        return loops["constants"]

    def kept_blocks(self) -> list[str]:
        """The per-tile input roles whose block is, on some tile, the previous tile's (the loop order keeps
        it in L1: e.g. the input across the channel tiles when input-stationary): their copy is issued only
        on the tiles of the table's `fetch_<role>` column, into the slot of its `slot_<role>` column (the
        slots alternate per copy, so the next block's copy never overwrites the block in use). A matmul
        copies every block that is not the same for the whole layer (`traffic`)."""
        if self.kernel_name == "dory_matmul":
            return []
        starts = np.zeros(len(self.table), bool)
        starts[self.slice_table[:, SCOL["start"]]] = True
        kept, columns = [], []
        for role in self.roles:
            if role in self.invariant or role == "out":
                continue
            follows = self.table[:, [COL[LOOP_COLUMN[d]] for d in TILE_DIMS if d in self.block_loops(role)]]
            fetch = starts.copy()
            fetch[1:] |= (follows[1:] != follows[:-1]).any(axis=1)
            if fetch.all():
                continue
            slot = np.zeros_like(self.table[:, 0])
            for start, count in self.slice_table[:, :2]:
                slot[start : start + count] = (np.cumsum(fetch[start : start + count]) - 1) % 2
            kept.append(role)
            columns += [fetch.astype(np.int32), slot]
            self.columns |= {f"fetch_{role}": len(self.columns), f"slot_{role}": len(self.columns) + 1}
        if columns:
            self.table = np.column_stack([self.table, *columns]).astype(np.int32)
        return kept

    def slot_of(self, role: str, row: dict[str, SSAValue], slot: SSAValue | None) -> SSAValue | None:
        """The L1 slot of a role's block for the tile of `row` (`slot`: the tile's, alternating per tile)."""
        return row[f"slot_{role}"] if slot is not None and role in self.kept else slot

    def per_batch(self, role: str) -> bool:
        """A requant constant [G, 1] with one value per batch slice of a matmul (`qnn.requant`); in the
        other layers a 2-D constant varies over the output rows ([H, C] / [H, 1])."""
        return self.kernel_name == "dory_matmul" and len(_shape(self.layer.buffer(role))) == 2  # type: ignore[arg-type]

    def l1_sizes(self) -> dict[str, int]:
        """Bytes of one slot of each L1 buffer: the largest tile of each role."""
        g, tab = self.shape, self.table
        c = COL
        sizes: dict[str, int] = {}
        # an add's two input slots are alike, sized for the wider (the tiling model's `in_bytes`)
        per_pixel_in = max(_elem_bytes(self.layer.buffer(role)) for role in ("in", "a", "b") if role in self.roles)  # type: ignore[arg-type]
        in_bytes = int(activation_tile_bytes(tab[:, c["ihn"]], tab[:, c["iwn"]], tab[:, c["cin"]], per_pixel_in).max())
        for role in ("in", "a", "b"):
            if role in self.roles:
                sizes[role] = align(in_bytes)
        out_bytes = activation_tile_bytes(tab[:, c["hn"]], tab[:, c["wn"]], tab[:, c["con"]], _elem_bytes(self.layer.buffer("out")))  # type: ignore[arg-type]
        sizes["out"] = align(int(out_bytes.max()))
        max_co, max_ci = int(tab[:, c["con"]].max()), int(tab[:, c["cin"]].max())
        if "weights" in self.roles:
            sizes["weights"] = align(weight_tile_bytes(g.kind, max_co, max_ci, g.kh, g.kw))
        if "rhs" in self.roles:
            sizes["rhs"] = align(int((tab[:, c["cin"]] * tab[:, c["con"]]).max()) * _elem_bytes(self.layer.buffer("rhs")))  # type: ignore[arg-type]
        for role in ("bias", "mul", "add"):
            value = self.layer.buffer(role)
            if value is not None:
                values = 1 if role != "bias" and self.per_batch(role) else min(_shape(value)[-1], max_co)  # per row: one row's
                sizes[role] = align(values * _elem_bytes(value))
        if g.splits_reduction and (tab[:, c["cin"]] < g.c_in).any():
            sizes["acc"] = align(acc_bytes(int((tab[:, c["hn"]] * tab[:, c["wn"]] * tab[:, c["con"]]).max())))
        if (im2col := im2col_bytes(self.kernel_name, self.cores, g.kh, g.kw, max_ci, int(tab[:, c["ihn"]].max()))) is not None:
            sizes["im2col"] = align(im2col)
        return sizes

    def slots(self, role: str) -> int:
        """Double-buffered roles get two slots; scratch, tile-invariant buffers and the stationary buffer
        the tiling keeps in one slot, one."""
        return buffer_slots(role in ("acc", "im2col") or role in self.invariant or role in self.single_slot,
                            self.double_buffer)

    def phase(self, role: str) -> str:
        """When a role's blocks are copied: "invariant" (once per L2 slice, before its tiles), "waited"
        (one slot: at the tile that needs it, after the previous tile computed) or "prefetched" (two slots:
        during the previous tile's computation)."""
        return "invariant" if role in self.invariant else "waited" if role in self.single_slot else "prefetched"

    # --------------------------------------------------------------- the function

    def build(self) -> func.FuncOp:
        arg_types = [v.type for v in self.layer.buffers]
        block = Block(arg_types=arg_types)
        for arg, role in zip(block.args, self.all_roles, strict=True):
            arg.name_hint = role
        self.args = dict(zip(self.all_roles, block.args, strict=True))
        b = BodyBuilder(block)
        self.table_value = b.add(memref.GetGlobalOp(self.table_name(), self.table_type())).results[0]
        # One L1 allocation for the layer (within the footprint the tiler proved), cut into buffers.
        sizes = self.l1_sizes()
        total = sum(size * self.slots(role) for role, size in sizes.items())
        proven = self.tiling.l1_bytes.data
        if total > proven:
            raise AssertionError(f"layer {self.index}: the lowering allocates {total} B of L1 where the tiler "
                                 f"proved {proven} B ({sizes})")
        if self.kernel_name == "dory_matmul" and total != proven:
            # A matmul's allocation is exactly its footprint (the memory contract, held to the byte here).
            raise AssertionError(f"layer {self.index}: the L1 allocation ({total} B: {sizes}) differs from the "
                                 f"tiling model's footprint ({proven} B)")
        arena = b.add(memref.AllocOp([], [], MemRefType(i8, [total], NoneAttr(), StringAttr("L1")),
                                     alignment=IntegerAttr(ALIGN, 64))).results[0]
        arena.name_hint = "l1"
        self.buffers: dict[str, tuple[SSAValue, int]] = {}
        offset = 0
        for role, size in sizes.items():
            ty = MemRefType(i8, [size * self.slots(role)], NoneAttr(), StringAttr("L1"))
            buffer = b.add(memref.ViewOp(arena, b.index(offset), [], ty)).results[0]
            buffer.name_hint = f"l1_{role}"
            self.buffers[role] = (buffer, size)
            offset += size * self.slots(role)
        self.l1_arena = arena
        self.weights_3d = self.weights_view(b)
        if self.streamed:
            self.slice_loop(b)
        else:
            self.tile_loop(b, b.index(0), b.index(len(self.table)))
        return cluster_function(b, self.index, self.l1_arena)

    def table_name(self) -> str:
        return f"layer{self.index}_tiles"

    def table_type(self) -> MemRefType:
        return MemRefType(i32, list(self.table.shape), NoneAttr(), StringAttr("L2"))

    def weights_view(self, b: BodyBuilder) -> SSAValue | None:
        """Conv weights OHWI as [co][kh·kw][ci], so a tile is one ≤ 3-D block."""
        weights = self.args.get("weights")
        if weights is None:
            return None
        shape = _shape(weights)
        if len(shape) == 4:
            ty = MemRefType(weights.type.element_type, [shape[0], shape[1] * shape[2], shape[3]], NoneAttr(),  # type: ignore[attr-defined]
                            weights.type.memory_space)  # type: ignore[attr-defined]
            assoc = ArrayAttr([ArrayAttr([IntegerAttr(i, 64) for i in group]) for group in ([0], [1, 2], [3])])
        elif len(shape) == 3:
            ty = MemRefType(weights.type.element_type, [shape[0], shape[1] * shape[2]], NoneAttr(), weights.type.memory_space)  # type: ignore[attr-defined]
            assoc = ArrayAttr([ArrayAttr([IntegerAttr(i, 64) for i in group]) for group in ([0], [1, 2])])
        else:
            return weights
        return b.add(memref.CollapseShapeOp.build(operands=[weights], result_types=[ty], properties={"reassociation": assoc})).results[0]

    # --------------------------------------------------------------- L2 slices streamed from L3

    def source(self, role: str) -> tuple[SSAValue, list[SSAValue] | None]:
        """Where a role's tiles are cut from: its L2 tensor, or the current slice's L2 buffer
        (with the slice's origin, to subtract from the tile's offsets)."""
        if role in self.slice_sources:
            view, origin = self.slice_sources[role]
            return view, origin
        memref_value = self.weights_3d if role == "weights" else self.args[role]
        assert memref_value is not None
        return memref_value, None

    def slice_loop(self, b: BodyBuilder) -> None:
        """The L2 slices, pipelined like the tiles one level down: slice k+1's streamed inputs are copied
        from L3 into the other of their two L2 slots (the plan reserves two per streamed tensor that
        changes between slices) while slice k's tiles run, and waited for when slice k+1 starts; slice
        k's streamed output (written after the last channel slice of its rows) goes out to L3 while
        slice k+1 runs, and is waited for after it."""
        table = b.add(memref.GetGlobalOp(self.slice_table_name(), self.slice_table_type())).results[0]
        blocks = self.slice_blocks(b, TileRow(b, table, b.index(0), SCOL), b.index(0), ("prefetched",))
        first = [self.copy_slice_block(b, block) for block in blocks.values()]
        start = b.add(dma.CompletedOp()).results[0]
        body = Block(arg_types=[IndexType(), *[dma.TokenType()] * (len(first) + 1)])
        sb = b.child(body)
        index, incoming, previous_out = body.args[0], body.args[1:-1], body.args[-1]
        issued: list[SSAValue] = []
        if first:
            following = sb.binary(arith.AddiOp, index, sb.index(1))
            has_next = sb.add(arith.CmpiOp(following, sb.index(len(self.slice_table)), "ult")).results[0]
            prefetch, none = Block(), Block()
            pb = sb.child(prefetch)
            next_blocks = self.slice_blocks(pb, TileRow(pb, table, following, SCOL), following, ("prefetched",))
            prefetch.add_op(scf.YieldOp(*(self.copy_slice_block(pb, block) for block in next_blocks.values())))
            nothing = [dma.CompletedOp() for _ in first]
            for op in nothing:
                none.add_op(op)
            none.add_op(scf.YieldOp(*(op.token for op in nothing)))
            issued = list(sb.add(scf.IfOp(has_next, [dma.TokenType()] * len(first), [prefetch], [none])).results)
        row = TileRow(sb, table, index, SCOL)
        blocks = self.slice_blocks(sb, row, index, ("prefetched", "waited", "written"))
        # Held in one place, not per slot: copied only now that the previous slice's tiles are done with it.
        waited = [self.copy_slice_block(sb, block) for block in blocks.values() if block.phase == "waited"]
        for token in [*incoming, *waited]:
            sb.add(dma.WaitOp(token))
        self.slice_sources = {role: (block.view, block.offsets) for role, block in blocks.items()}
        self.tile_loop(sb, row["start"], sb.binary(arith.AddiOp, row["start"], row["count"]))
        sb.add(dma.WaitOp(previous_out))  # slice k-1's output went out to L3 while slice k ran
        sb.add(scf.YieldOp(*issued, self.write_slice(sb, row, blocks.get("out"))))
        self.slice_sources.clear()
        loop = b.add(scf.ForOp(b.index(0), b.index(len(self.slice_table)), b.index(1), [*first, start], body))
        b.add(dma.WaitOp(loop.results[-1]))

    def slice_blocks(self, b: BodyBuilder, row: TileRow, index: SSAValue, phases: tuple[str, ...]) -> dict[str, SliceBlock]:
        """The blocks of the streamed tensors slice `index` (its table row `row`) needs in L2, in their
        slot, whose phase is one of `phases`: "prefetched" (two slots: copied during the previous
        slice), "waited" (the constants every channel slice needs whole, held once: copied at the
        slice) or "written" (the output)."""
        blocks: dict[str, SliceBlock] = {}
        channel_sliced = len(set(self.slice_table[:, SCOL["co0"]].tolist())) > 1
        for role in self.streamed:
            if role in ("weights", "bias", "mul", "add"):
                continue
            phase = "written" if role == "out" else "prefetched"
            if phase not in phases:
                continue
            source = self.args[role]
            shape = _shape(source)
            rows, origin_rows = (row["ihn"], row["ih0"]) if role == "in" else (row["hn"], row["h0"])
            sizes = [rows, b.index(shape[1]), b.index(shape[2])] if len(shape) == 3 else [b.index(shape[0])]
            offsets = [origin_rows, b.index(0), b.index(0)] if len(shape) == 3 else [b.index(0)]
            base = self.slot_base(b, f"{role}_slice", index, self.row_slices(), 0)
            view = self.slice_view(b, f"{role}_slice", base, sizes, source.type.element_type)  # type: ignore[attr-defined]
            # A slice of output rows may read only padding: no copy then.
            counts = [row["ihn"]] if role == "in" and self.empty_slice_in and len(shape) == 3 else []
            # The rows stay in their L2 slot across the channel slices of the same rows: copied at the first only.
            first_co = b.add(arith.CmpiOp(row["co0"], b.index(0), "eq")).results[0] if channel_sliced and role != "out" else None
            blocks[role] = SliceBlock(phase, source, offsets, sizes, view, counts, first_co)
        layout = self.constants_layout()
        for role, (whole, offset) in layout.items():
            phase = "waited" if whole else "prefetched"
            if phase not in phases:
                continue
            source = self.weights_3d if role == "weights" else self.args[role]
            assert source is not None
            shape = _shape(source)
            sizes = [b.index(d) for d in shape] if whole else [row["con"], *(b.index(d) for d in shape[1:])]
            offsets = [b.index(0)] * len(shape) if whole else [row["co0"], *(b.index(0) for _ in shape[1:])]
            # The per-channel blocks alternate between two slots; the whole constants follow both.
            base = b.index(offset) if whole else self.slot_base(b, "weights_slice", index, len(self.slice_table), offset)
            view = self.slice_view(b, "weights_slice", base, sizes, source.type.element_type)  # type: ignore[attr-defined]
            blocks[role] = SliceBlock(phase, source, offsets, sizes, view, [], None)
        return blocks

    def constant_sizes(self) -> dict[str, tuple[bool, int]]:
        """Per streamed constant: whether it is copied whole (per-tensor constants, and requant constants
        that vary over the rows: [H, C] / [H, 1]) and its L2 bytes (aligned; a channel slice's at most)."""
        sizes: dict[str, tuple[bool, int]] = {}
        max_co = int(self.slice_table[:, SCOL["con"]].max())
        for role in ("weights", "bias", "mul", "add"):
            if role not in self.streamed:
                continue
            source = self.weights_3d if role == "weights" else self.args[role]
            assert source is not None
            shape = _shape(source)
            whole = role != "weights" and (shape[0] == 1 or len(shape) == 2)
            per_channel = int(np.prod(shape[1:])) * _elem_bytes(source)
            sizes[role] = (whole, align(per_channel * shape[0] if whole else per_channel * max_co))
        return sizes

    def constants_layout(self) -> dict[str, tuple[bool, int]]:
        """Per streamed constant: whether it is whole, and its byte offset in its slot of the weights' L2
        buffer (the whole ones: in the buffer, after the two slots). Checked against the plan's size."""
        sizes = self.constant_sizes()
        if not sizes:
            return {}
        slots = 2 if len(self.slice_table) > 1 else 1
        layout, offsets = {}, {False: 0, True: self.slot_bytes("weights_slice") * slots}
        for role, (whole, size) in sizes.items():
            layout[role] = (whole, offsets[whole])
            offsets[whole] += size
        reserved = _shape(self.args["weights_slice"])[0]
        if offsets[True] != reserved:
            raise AssertionError(f"layer {self.index}: the streamed constants take {offsets[True]} B of L2 "
                                 f"({slots} slots) where the plan reserved {reserved} B")
        return layout

    def row_slices(self) -> int:
        """The slices of rows (each split in the same channel slices)."""
        return len(set(self.slice_table[:, SCOL["h0"]].tolist()))

    def slot_base(self, b: BodyBuilder, buffer: str, index: SSAValue, copies: int, offset: int) -> SSAValue:
        """Byte offset of slice `index`'s block in an L2 slice buffer of `copies` copies per layer (the
        slices, or the slices of rows): two slots, alternating per copy, when it is copied more than once
        (the plan then reserved two, `memory_plan._working_set`), else one."""
        first = isinstance(index.owner, arith.ConstantOp) and index.owner.value == IntegerAttr(0, IndexType())
        if copies == 1 or first:  # one slot, or the first slice's (the loop's prologue): slot 0
            return b.index(offset)
        per_copy = len(self.slice_table) // copies
        copy = index if per_copy == 1 else b.binary(arith.DivUIOp, index, b.index(per_copy))
        slot = b.binary(arith.RemUIOp, copy, b.index(2))
        base = b.binary(arith.MuliOp, slot, b.index(self.slot_bytes(buffer)))
        return b.binary(arith.AddiOp, base, b.index(offset)) if offset else base

    def slot_bytes(self, buffer: str) -> int:
        """Bytes of one of the two slots of an L2 slice buffer: the activations' buffers are two equal
        slots; the weights' are two slots of the per-channel constants, then the whole ones."""
        if buffer == "weights_slice":
            return sum(size for whole, size in self.constant_sizes().values() if not whole)
        return _shape(self.args[buffer])[0] // 2

    def copy_slice_block(self, b: BodyBuilder, block: SliceBlock) -> SSAValue:
        """The L3 → L2 copy of a slice block (guarded: none when it reads only padding, or its rows are
        already in L2)."""
        def copy(cb: BodyBuilder) -> SSAValue:
            return cb.add(dma.CopyOp(self.l3_block(cb, block.source, block.offsets, block.sizes), block.view)).results[0]

        if block.counts or block.first_co is not None:
            return self.guarded(b, block.counts, copy, block.first_co)
        return copy(b)

    def write_slice(self, b: BodyBuilder, row: TileRow, block: SliceBlock | None) -> SSAValue:
        """Slice `row`'s output rows, L2 → L3, after the last channel slice of those rows (else, or
        without a streamed output, a completed token)."""
        if block is None:
            return b.add(dma.CompletedOp()).results[0]
        last = b.add(arith.CmpiOp(row["last_co"], b.index(1), "eq")).results[0]
        write, skip = Block(), Block()
        wb = b.child(write)
        write.add_op(scf.YieldOp(wb.add(dma.CopyOp(block.view, self.l3_block(wb, block.source, block.offsets, block.sizes))).results[0]))
        skip.add_op(completed := dma.CompletedOp())
        skip.add_op(scf.YieldOp(completed.token))
        return b.add(scf.IfOp(last, [dma.TokenType()], [write], [skip])).results[0]

    def slice_view(self, b: BodyBuilder, role: str, offset: SSAValue, sizes: list[SSAValue], element: Attribute) -> SSAValue:
        ty = MemRefType(element, [DYNAMIC_INDEX] * len(sizes), NoneAttr(), StringAttr("L2"))
        return b.add(memref.ViewOp(self.args[role], offset, sizes, ty)).results[0]

    def l3_block(self, b: BodyBuilder, source: SSAValue, offsets: list[SSAValue], sizes: list[SSAValue]) -> SSAValue:
        """A block of an L3 tensor (contiguous: whole rows, or whole channels' constants)."""
        return self.l2_block(b, source, offsets, sizes)

    def slice_table_name(self) -> str:
        return f"layer{self.index}_slices"

    def slice_table_type(self) -> MemRefType:
        return MemRefType(i32, list(self.slice_table.shape), NoneAttr(), StringAttr("L2"))

    def globals(self) -> list[memref.GlobalOp]:
        tables = [(self.table_name(), self.table)] + ([(self.slice_table_name(), self.slice_table)] if self.streamed else [])
        return [table_global(name, t) for name, t in tables]

    # --------------------------------------------------------------- per-tile pieces

    def tile_row(self, b: BodyBuilder, tile: SSAValue) -> TileRow:
        """The table row of tile `tile`; each column is loaded where it is first used."""
        key = (self.table_value, tile)
        if key not in b.rows:
            b.rows[key] = TileRow(b, self.table_value, tile, self.columns)
        return b.rows[key]

    def l1_view(self, b: BodyBuilder, role: str, slot: SSAValue | None, sizes: list[SSAValue], element: Attribute) -> SSAValue:
        buffer, size = self.buffers[role]
        offset = b.index(0) if slot is None or self.slots(role) == 1 else b.binary(arith.MuliOp, slot, b.index(size))
        ty = MemRefType(element, [DYNAMIC_INDEX] * len(sizes), NoneAttr(), StringAttr("L1"))
        view = b.add(memref.ViewOp(buffer, offset, sizes, ty)).results[0]
        view.name_hint = f"{role}_tile"
        return view

    def l2_block(self, b: BodyBuilder, source: SSAValue, offsets: list[SSAValue], sizes: list[SSAValue]) -> SSAValue:
        ty = source.type
        assert isinstance(ty, MemRefType)
        shape = list(ty.get_shape())
        if any(d < 0 for d in shape):  # a slice buffer: dense, sizes known at run time
            strides: list[int | None] = [None] * (len(shape) - 1) + [1]
        else:
            strides = [int(np.prod(shape[i + 1 :])) for i in range(len(shape))]
        result = MemRefType(ty.element_type, [DYNAMIC_INDEX] * len(shape), StridedLayoutAttr(strides, None), ty.memory_space)
        op = memref.SubviewOp.get(source, offsets, sizes, [1] * len(shape), result)
        return b.add(op).results[0]

    def input_regions(self, b: BodyBuilder, row: TileRow) -> dict[str, tuple[list[SSAValue], list[SSAValue]]]:
        """(offsets, sizes) in L2 of the blocks each input role of a tile needs."""
        r = row
        regions: dict[str, tuple[list[SSAValue], list[SSAValue]]] = {}
        for role in ("in", "a", "b"):
            if role not in self.args:
                continue
            if len(_shape(self.args[role])) == 1:
                regions[role] = ([r["ci0"]], [r["cin"]])
            elif role in ("a", "b"):
                regions[role] = ([r["h0"], r["w0"], r["co0"]], [r["hn"], r["wn"], r["con"]])
            else:
                regions[role] = ([r["ih0"], r["iw0"], r["ci0"]], [r["ihn"], r["iwn"], r["cin"]])
        if self.weights_3d is not None:
            shape = _shape(self.weights_3d)
            if self.kernel_name == "dory_depthwise":
                regions["weights"] = ([r["co0"], b.index(0)], [r["con"], b.index(shape[1])])
            elif len(shape) == 3:
                regions["weights"] = ([r["co0"], b.index(0), r["ci0"]], [r["con"], b.index(shape[1]), r["cin"]])
            else:
                regions["weights"] = ([r["co0"], r["ci0"]], [r["con"], r["cin"]])
        if "rhs" in self.args:  # the block of the right operand: K rows of its batch slice × N columns
            regions["rhs"] = ([r["kr0"], b.index(0), r["co0"]], [r["cin"], b.index(1), r["con"]])
        for role in ("bias", "mul", "add"):
            if role in self.buffers and role != "bias" and self.per_batch(role):
                regions[role] = ([r["bat"], b.index(0)], [b.index(1), b.index(1)])
            elif role in self.buffers:
                shape = _shape(self.args[role])
                if len(shape) == 2:
                    # Requant constants that vary over the output rows ([H, C] / [H, 1]): the block of the
                    # tile's one row (the tiling model makes every tile of such a layer one row high).
                    per_tensor = shape[1] == 1
                    regions[role] = ([r["h0"], b.index(0) if per_tensor else r["co0"]],
                                     [b.index(1), b.index(1) if per_tensor else r["con"]])
                    continue
                per_tensor = shape[0] == 1
                regions[role] = ([b.index(0)], [b.index(1)]) if per_tensor else ([r["co0"]], [r["con"]])
        return regions

    def relative(self, b: BodyBuilder, offsets: list[SSAValue], origin: list[SSAValue] | None) -> list[SSAValue]:
        if origin is None:
            return offsets
        return [b.binary(arith.SubiOp, o, base) for o, base in zip(offsets, origin, strict=True)]

    def copy_inputs(self, b: BodyBuilder, row: dict[str, SSAValue], slot: SSAValue | None,
                    phases: tuple[str, ...]) -> list[SSAValue]:
        """Copies the inputs of a tile whose `phase` is one of `phases` (a block the previous tile holds
        is not copied again)."""
        tokens = []
        for role, (offsets, sizes) in self.input_regions(b, row).items():
            if self.phase(role) not in phases:
                continue
            source, origin = self.source(role)
            role_slot = self.slot_of(role, row, slot)

            def copy(cb: BodyBuilder, role=role, offsets=offsets, sizes=sizes, source=source, origin=origin,
                     role_slot=role_slot) -> SSAValue:
                block = self.l2_block(cb, source, self.relative(cb, offsets, origin), sizes)
                view = self.l1_view(cb, role, role_slot, sizes, source.type.element_type)  # type: ignore[attr-defined]
                return cb.add(dma.CopyOp(block, view)).results[0]

            empty = [row[c] for c in self.empty_in] if role == "in" and self.empty_in and len(sizes) == 3 else []
            # A block the previous tile holds is not copied again.
            changed = (b.add(arith.CmpiOp(row[f"fetch_{role}"], b.index(0), "ne")).results[0]
                       if role in self.kept else None)
            tokens.append(self.guarded(b, empty, copy, changed) if empty or changed is not None else copy(b))
        return tokens

    def guarded(self, b: BodyBuilder, counts: list[SSAValue], copy, also: SSAValue | None = None) -> SSAValue:
        """`copy` (a function building the copy and returning its token) issued only when no
        count is 0 (and `also`, an i1, holds), else a completed token: a tile or slice whose window
        lies wholly in the padding has nothing to transfer (its kernel still runs, on padding only)."""
        conditions = [] if also is None else [also]
        if counts:
            product = counts[0]
            for count in counts[1:]:
                product = b.binary(arith.MuliOp, product, count)
            conditions.insert(0, b.add(arith.CmpiOp(product, b.index(0), "ne")).results[0])
        return self.copy_if(b, conditions, copy)

    def copy_if(self, b: BodyBuilder, conditions: list[SSAValue], copy) -> SSAValue:
        """`copy` issued only when every condition (i1) holds, else a completed token (nested ifs)."""
        nonempty, rest = conditions[0], conditions[1:]
        inner = (lambda cb: self.copy_if(cb, rest, copy)) if rest else copy
        then_block, else_block = Block(), Block()
        then_block.add_op(scf.YieldOp(inner(b.child(then_block))))
        else_block.add_op(completed := dma.CompletedOp())
        else_block.add_op(scf.YieldOp(completed.token))
        return b.add(scf.IfOp(nonempty, [dma.TokenType()], [then_block], [else_block])).results[0]

    def kernel(self, b: BodyBuilder, row: dict[str, SSAValue], slot: SSAValue | None) -> SSAValue:
        """Invokes the kernel on the tile's L1 views; returns the output view."""
        r = row
        buffers: dict[str, SSAValue] = {}
        for role, (_, sizes) in self.input_regions(b, row).items():
            source, _ = self.source(role)
            buffers[role] = self.l1_view(b, role, self.slot_of(role, row, slot), sizes, source.type.element_type)  # type: ignore[attr-defined]
        out_element = self.args["out"].type.element_type  # type: ignore[attr-defined]
        out_sizes = [r["con"]] if len(_shape(self.args["out"])) == 1 else [r["hn"], r["wn"], r["con"]]
        buffers["out"] = self.l1_view(b, "out", slot, out_sizes, out_element)
        if "acc" in self.buffers:
            buffers["acc"] = self.l1_view(b, "acc", None, out_sizes, i32)
        if "im2col" in self.buffers:
            buffers["im2col"] = self.l1_view(b, "im2col", None, [b.index(self.buffers["im2col"][1])], i8)
        scalars: dict[str, SSAValue] = {}
        _, _, index_roles = pulp.KERNELS[self.kernel_name]
        for role in index_roles:
            scalars[role] = r[role]
        params = {k: v for k, v in self.params.data.items() if k not in LAYER_PARAMS}
        b.add(pulp.KernelOp(self.kernel_name, buffers, scalars, params))
        return buffers["out"]

    def copy_output(self, b: BodyBuilder, row: dict[str, SSAValue], out_view: SSAValue) -> SSAValue:
        r = row
        destination, origin = self.source("out")
        if len(_shape(self.args["out"])) == 1:
            offsets, sizes = [r["co0"]], [r["con"]]
        else:
            offsets, sizes = [r["h0"], r["w0"], r["co0"]], [r["hn"], r["wn"], r["con"]]
        block = self.l2_block(b, destination, self.relative(b, offsets, origin), sizes)
        return b.add(dma.CopyOp(out_view, block)).results[0]

    def copy_invariants(self, b: BodyBuilder, first: SSAValue) -> None:
        tokens = self.copy_inputs(b, self.tile_row(b, first), None, ("invariant",))
        for token in tokens:
            b.add(dma.WaitOp(token))

    # --------------------------------------------------------------- the loops

    def compute(self, b: BodyBuilder, row: dict[str, SSAValue], slot: SSAValue | None) -> SSAValue:
        """Barrier (inputs visible to all cores), kernel, barrier (output complete)."""
        b.add(pulp.BarrierOp())
        out_view = self.kernel(b, row, slot)
        b.add(pulp.BarrierOp())
        return out_view

    def write_back(self, b: BodyBuilder, row: dict[str, SSAValue], out_view: SSAValue) -> SSAValue:
        """Copies the output tile back after the last reduction slice (else a completed token)."""
        if "acc" not in self.buffers:
            return self.copy_output(b, row, out_view)
        is_last = b.add(arith.CmpiOp(row["last"], b.index(1), "eq")).results[0]
        then_block, else_block = Block(), Block()
        then_b = b.child(then_block)
        then_block.add_op(scf.YieldOp(self.copy_output(then_b, row, out_view)))
        else_block.add_op(completed := dma.CompletedOp())
        else_block.add_op(scf.YieldOp(completed.token))
        return b.add(scf.IfOp(is_last, [dma.TokenType()], [then_block], [else_block])).results[0]

    def tile_loop(self, b: BodyBuilder, first: SSAValue, end: SSAValue) -> None:
        """The tiles [first, end): tile-invariant inputs once, then the per-tile loop."""
        self.copy_invariants(b, first)
        per_tile = [r for r in self.roles if r not in self.invariant and r != "out"]
        if self.double_buffer and per_tile:
            self.pipelined_loop(b, first, end)
        else:
            self.simple_loop(b, first, end)

    def simple_loop(self, b: BodyBuilder, first: SSAValue, end: SSAValue) -> None:
        """Single buffering: copy in, wait, compute, copy out, wait — tile after tile."""
        body = Block(arg_types=[IndexType()])
        lb = b.child(body)
        row = self.tile_row(lb, body.args[0])
        for token in self.copy_inputs(lb, row, None, ("prefetched", "waited")):
            lb.add(dma.WaitOp(token))
        out_view = self.compute(lb, row, None)
        lb.add(dma.WaitOp(self.write_back(lb, row, out_view)))
        lb.add(scf.YieldOp())
        b.add(scf.ForOp(first, end, b.index(1), [], body))

    def pipelined_loop(self, b: BodyBuilder, first_tile: SSAValue, end: SSAValue) -> None:
        """Ping-pong: tile t+1's copies fly while tile t computes; tile t's output while t+1 does. A buffer
        kept in one slot is copied at the tile that needs it (tile t−1 has computed) and waited for."""
        first = self.copy_inputs(b, self.tile_row(b, first_tile), b.index(0), ("prefetched",))
        start = b.add(dma.CompletedOp()).results[0]
        token_types = [dma.TokenType()] * (len(first) + 1)
        body = Block(arg_types=[IndexType(), *token_types])
        lb = b.child(body)
        tile, incoming, previous_out = body.args[0], body.args[1:-1], body.args[-1]
        slot = lb.binary(arith.RemUIOp, lb.binary(arith.SubiOp, tile, first_tile), lb.index(2))
        next_tile = lb.binary(arith.AddiOp, tile, lb.index(1))
        has_next = lb.add(arith.CmpiOp(next_tile, end, "ult")).results[0]
        prefetch, none = Block(), Block()
        pb = lb.child(prefetch)
        next_slot = pb.binary(arith.SubiOp, pb.index(1), slot)
        prefetch.add_op(scf.YieldOp(*self.copy_inputs(pb, self.tile_row(pb, next_tile), next_slot, ("prefetched",))))
        nothing = [dma.CompletedOp() for _ in first]
        for op in nothing:
            none.add_op(op)
        none.add_op(scf.YieldOp(*(op.token for op in nothing)))
        issued = lb.add(scf.IfOp(has_next, [dma.TokenType()] * len(first), [prefetch], [none])).results
        row = self.tile_row(lb, tile)
        for token in [*incoming, *self.copy_inputs(lb, row, slot, ("waited",))]:
            lb.add(dma.WaitOp(token))
        out_view = self.compute(lb, row, slot)
        lb.add(dma.WaitOp(previous_out))  # tile t-1's output went out while tile t computed
        lb.add(scf.YieldOp(*issued, self.write_back(lb, row, out_view)))
        loop = b.add(scf.ForOp(first_tile, end, b.index(1), [*first, start], body))
        b.add(dma.WaitOp(loop.results[-1]))


@dataclass(frozen=True, eq=False)
class LayerAsClusterCall(RewritePattern):
    """A `pulp.layer` becomes a call of its tiled cluster function (built by `LayerLowering`), which goes
    before the network function with the layer's tile tables."""

    double_buffer: bool
    cores: int

    @op_type_rewrite_pattern
    def match_and_rewrite(self, layer: pulp.LayerOp, rewriter: PatternRewriter) -> None:
        network = layer.parent_op()
        while network is not None and not isinstance(network, func.FuncOp):
            network = network.parent_op()
        assert network is not None, "a pulp.layer lives in the network function"
        lowering = (TransposeLowering(layer) if layer.kernel.data == "dma_transpose"
                    else LayerLowering(layer, self.double_buffer, self.cores))
        function = lowering.build()
        for table in lowering.globals():
            rewriter.insert(table, InsertPoint.before(network))
        rewriter.insert(function, InsertPoint.before(network))
        call = func.CallOp(function.sym_name.data, list(layer.buffers), [])
        call.location = layer.location
        rewriter.replace(layer, call)


# A transpose's table has one more column: the input element of its first row's first feature.
TRANSPOSE_COL = {name: i for i, name in enumerate((*COLUMNS, "src"))}


def transpose_tile_table(g: LayerShape, rows: int, shape: list[int], perm: list[int]) -> np.ndarray:
    """The tiles of a transpose: `rows` output rows each (all features), one strided copy each
    (`transpose_tile_rows`); `src` is where the tile's first row starts in the input."""
    if rows not in transpose_tile_rows(g.rows_per_batch, g.row_runs):
        raise AssertionError(f"a transpose tile of {rows} rows is not one strided copy")
    out = [shape[p] for p in perm]
    strides = permuted_strides(tuple(shape), tuple(perm))
    tiles = []
    for h0, h1 in spans(g.h_out, rows):
        src = sum(int(i) * s for i, s in zip(np.unravel_index(h0, out[:-1]), strides[:-1], strict=True))
        tiles.append([0, g.c_out, h0, h1 - h0, 0, 1, 0, g.c_in, h0, h1 - h0, 0, 1, 0, 0, 0, 0, 1, 1, src])
    return np.array(tiles, dtype=np.int32)


@dataclass
class TransposeLowering:
    """The tiled function of a transpose (`dma_transpose`, no kernel): per tile, its output rows are
    gathered from the L2 input by one strided copy — a view of the input in the output's order, its
    strides `permuted_strides`: [runs, rows, features] — into L1, and written back to the L2 output from
    the same buffer. Every tile has the same size. One L1 buffer, single (the model's footprint: with no
    kernel there is nothing to overlap the copies with)."""

    layer: pulp.LayerOp

    def __post_init__(self) -> None:
        tiling = self.layer.tiling
        if tiling is None:
            raise PassError("tile-layers needs the tile pass's decisions", op_where(self.layer))
        self.tiling = tiling
        self.index = self.layer.index.value.data
        shape_in = _ints(self.layer.params.data["shape"])
        perm = _ints(self.layer.params.data["perm"])
        out = self.layer.buffer("out")
        assert out is not None
        rows, _, features = _shape(out)
        self.element = out.type.element_type  # type: ignore[attr-defined]
        self.strides = permuted_strides(tuple(shape_in), tuple(perm))
        self.geometry = LayerShape("transpose", features, features, rows, 1, rows, 1, in_bytes=_elem_bytes(out),
                                   **transpose_runs(tuple(shape_in[p] for p in perm)))
        self.rows = list(tiling.tile)[1]
        self.table = transpose_tile_table(self.geometry, self.rows, shape_in, perm)

    def globals(self) -> list[memref.GlobalOp]:
        return [table_global(f"layer{self.index}_tiles", self.table)]

    def block_shape(self) -> tuple[list[int], list[int]]:
        """Sizes [runs, rows, features] of a tile's block and its element strides in the input."""
        g, rows = self.geometry, self.rows
        if rows <= g.rows_per_batch:
            return [1, rows, g.c_out], [g.rows_per_batch * self.strides[-2], *self.strides[-2:]]
        return [rows // g.rows_per_batch, g.rows_per_batch, g.c_out], list(self.strides[-3:])

    def build(self) -> func.FuncOp:
        arg_types = [v.type for v in self.layer.buffers]
        roles = [r.data for r in self.layer.roles.data]
        block = Block(arg_types=arg_types)
        for arg, role in zip(block.args, roles, strict=True):
            arg.name_hint = role
        args = dict(zip(roles, block.args, strict=True))
        b = BodyBuilder(block)
        table = b.add(memref.GetGlobalOp(f"layer{self.index}_tiles",
                                         MemRefType(i32, list(self.table.shape), NoneAttr(), StringAttr("L2")))).results[0]
        sizes, strides = self.block_shape()
        size = align(int(np.prod(sizes)) * self.geometry.in_bytes)
        if size != self.tiling.l1_bytes.data:
            raise AssertionError(f"layer {self.index}: the L1 allocation ({size} B) differs from the tiling "
                                 f"model's footprint ({self.tiling.l1_bytes.data} B)")
        arena = b.add(memref.AllocOp([], [], MemRefType(i8, [size], NoneAttr(), StringAttr("L1")),
                                     alignment=IntegerAttr(ALIGN, 64))).results[0]
        arena.name_hint = "l1"
        tile = b.add(memref.ViewOp(arena, b.index(0), [], MemRefType(self.element, sizes, NoneAttr(),
                                                                    StringAttr("L1")))).results[0]
        tile.name_hint = "rows_tile"
        body = Block(arg_types=[IndexType()])
        lb = b.child(body)
        row = TileRow(lb, table, body.args[0], TRANSPOSE_COL)
        gathered = lb.add(memref.ReinterpretCastOp.from_dynamic(
            args["in"], [row["src"]], sizes, strides,
            MemRefType(self.element, sizes, StridedLayoutAttr(strides, None), StringAttr("L2")))).results[0]
        lb.add(dma.WaitOp(lb.add(dma.CopyOp(gathered, tile)).results[0]))
        features = self.geometry.c_out
        written = lb.add(memref.ReinterpretCastOp.from_dynamic(
            args["out"], [lb.binary(arith.MuliOp, row["h0"], lb.index(features))], sizes,
            [sizes[1] * features, features, 1],
            MemRefType(self.element, sizes, StridedLayoutAttr([sizes[1] * features, features, 1], None),
                       StringAttr("L2")))).results[0]
        lb.add(dma.WaitOp(lb.add(dma.CopyOp(tile, written)).results[0]))
        lb.add(scf.YieldOp())
        b.add(scf.ForOp(b.index(0), b.index(len(self.table)), b.index(1), [], body))
        return cluster_function(b, self.index, arena)


@dataclass(frozen=True)
class TileLayersPass(ModulePass):
    """Each `pulp.layer` becomes a tiled cluster function (see the module docstring)."""

    name = "tile-layers"

    double_buffer: bool | None = None
    """Default: as the tile pass planned (the module's `target`), else true. An option that disagrees with the plan
    is an error: the L1 footprint the tiler proved depends on both (second slots, im2col per core)."""
    cores: int | None = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        cores, double_buffer = planned_execution(op, self.cores, self.double_buffer)
        PatternRewriteWalker(LayerAsClusterCall(double_buffer, cores), apply_recursively=False).rewrite_module(op)
        dce(op)  # the table columns and index constants a tile does not use
