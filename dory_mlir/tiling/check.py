"""An independent check of the `tile` pass's decisions, re-derived from the IR alone.

The pass decides with the tiling model (`tiling/model.py`, interior tile only) and
plans L2 with `tiling/memory_plan.py`. This module shares no code with either (only the
geometry definitions of `tiling/geometry.py`: spans of tiles, rows a tile reads, alignment): it reads
what the pass wrote (`tiling` on every `qnn.layer`, `l2_plan` on the function) and the
layer bodies, recomputes everything itself, and reports every disagreement:

1. L1: every tile of every layer fits the L1 budget, border tiles with their real extents
   (the input rows and columns they actually read, padding excluded); the interior tile's
   footprint is the recorded `l1_bytes` and no border tile needs more;
2. coverage: the tiles partition the output, and the input-channel slices the reduction;
3. L2: no two buffers alive at once share a byte, every buffer lies within the budget, the
   recorded peak is the highest end, every activation kept in L2 (and, when weights are
   resident, every layer's constants) has a buffer holding it for its whole lifetime, and
   every layer has the L2 buffers its L3 weights and streamed activations are staged in;
4. the attribute values are sane: sizes within their dimensions, tile counts, where the
   weights and the streamed activations live.

Tiles nest as the generated code runs them: L2 slices of `co2` output channels × `ho2`
output rows, L1 tiles of `co × ho × wo × ci` inside each slice, the last tile of each
slice ragged. Each L2 slice is executed as a layer of its own (as DORY calls its L2 layer
function once per L3 tile), so the whole tensor that decides whether an L1 buffer is
double-buffered is the slice, not the layer's tensor.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

from dory_mlir.dialects import qnn
from dory_mlir.dialects.tiling import L2_PLAN, TARGET, TILING, L2PlanAttr, LayerTilingAttr, TargetAttr, target_of
from dory_mlir.kernel_abi import KERNEL_OF, acc_bytes, im2col_bytes
from dory_mlir.network_values import input_names
from dory_mlir.tiling.geometry import (
    ROW_KINDS, LayerShape, align, input_rows, nested_spans, spans, transpose_runs, transpose_tile_rows,
)

REDUCING = ("conv", "pointwise", "linear", "matmul")
"""Kinds whose input channels are a reduction that may be sliced (with int32 partial sums)."""

WEIGHTED = ("conv", "pointwise", "depthwise", "linear")

Span = tuple[int, int]


def _element_bytes(value: SSAValue) -> int:
    return max(1, qnn.element_type(value).width.data // 8)


def _tensor_bytes(value: SSAValue) -> int:
    count = 1
    for d in qnn.shape_of(value):
        count *= d
    return count * _element_bytes(value)


# --------------------------------------------------------------------------- layer geometry


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a layer's window (H or W): extents, kernel, stride, dilation, leading pad."""

    size_in: int
    size_out: int
    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad: int = 0

    def halo(self, out: int) -> int:
        """Input rows the interior tile of `out` output rows holds: its receptive field, at most the input."""
        return min((out - 1) * self.stride + self.dilation * (self.kernel - 1) + 1, self.size_in)

    def rows_read(self, span: Span) -> int:
        """Input rows output rows [start, stop) really read: a border tile's padding is not fetched."""
        return input_rows(*span, self.stride, self.kernel, self.dilation, self.pad, self.size_in)


@dataclass(frozen=True)
class Geometry:
    """What a layer's L1 footprint depends on, read from its anchor op and body: its `LayerShape`
    (the tiler's definition, re-derived here from the IR), the leading pads of its window, and a
    matmul's operand batch slices. The shape's fields read as the geometry's own."""

    shape: LayerShape
    pad_t: int = 0
    pad_l: int = 0
    lhs_slices: int = 1
    rhs_slices: int = 1

    def __getattr__(self, name: str):
        if name == "shape":  # not set yet (copying): no shape to ask
            raise AttributeError(name)
        return getattr(self.shape, name)

    @property
    def h(self) -> Axis:
        s = self.shape
        return Axis(s.h_in, s.h_out, s.kh, s.sh, s.dh, self.pad_t)

    @property
    def w(self) -> Axis:
        s = self.shape
        return Axis(s.w_in, s.w_out, s.kw, s.sw, s.dw, self.pad_l)

    @property
    def rows_vary(self) -> bool:
        """Requant constants that vary over the output rows: each tile must be one row."""
        return bool(self.row_const_bytes or self.row_fixed_const_bytes)

    @property
    def reduces(self) -> bool:
        return self.kind in REDUCING


def _chw(value: SSAValue) -> tuple[int, int, int]:
    """Channels, rows, columns of an NCHW tensor; vectors (N×C) are 1×1 images."""
    shape = qnn.shape_of(value)
    c, h, w = (shape[1:] + (1, 1))[:3]
    return c, h, w


def _per_channel_bytes(layer: qnn.LayerOp, c_out: int, per_row: bool = False) -> int:
    """Bytes per output channel of the constants that come in one value per channel (`per_row`:
    of the requant constants [H, C] that vary over the output rows, one row's)."""
    total = 0
    for op in layer.compute_ops():
        if isinstance(op, qnn.ConvOp | qnn.LinearOp) and op.bias is not None and not per_row:
            total += _element_bytes(op.bias)  # the verifier guarantees shape [C_out]
        if isinstance(op, qnn.RMSNormOp) and not per_row:
            total += _element_bytes(op.weight)
        if isinstance(op, qnn.LayerNormOp) and not per_row:
            total += _element_bytes(op.weight) + _element_bytes(op.bias)
        if isinstance(op, qnn.RequantOp):
            total += sum(_element_bytes(v) for v in (op.mul, op.add)
                         if c_out > 1 and qnn.shape_of(v)[-1] == c_out and _varies_over_rows(v) == per_row)
    return total


def _fixed_bytes(layer: qnn.LayerOp, c_out: int, per_row: bool = False) -> int:
    """Bytes of the requant constants that hold one value for all channels (each aligned; `per_row`:
    of the per-row ones [H, 1], one row's)."""
    total = 0
    for op in layer.compute_ops():
        if isinstance(op, qnn.RequantOp):
            total += sum(align(_element_bytes(v)) for v in (op.mul, op.add)
                         if not (c_out > 1 and qnn.shape_of(v)[-1] == c_out) and _varies_over_rows(v) == per_row)
    return total


def _varies_over_rows(value: SSAValue) -> bool:
    """A requant constant [H, C] or [H, 1] (`qnn.RequantOp`): one block per output row."""
    return len(qnn.shape_of(value)) == 2


def _matmul_geometry(layer: qnn.LayerOp, anchor: qnn.MatMulOp) -> Geometry:
    """A matmul as an image of rows: C_in = K, C_out = N, H = the rows (every batch slice's M)."""
    m, k, n = anchor.dims()
    batch_bytes = 0
    for op in layer.compute_ops():
        if isinstance(op, qnn.RequantOp):
            batch_bytes += sum(align(_element_bytes(v)) for v in (op.mul, op.add) if len(qnn.shape_of(v)) == 2)
    fixed = _fixed_bytes(layer, n)  # each per-tensor value once, aligned (the 2-D [G, 1] ones are apart)
    lhs_rows = qnn.shape_of(anchor.lhs)[2]
    shape = LayerShape("matmul", k, n, lhs_rows, 1, qnn.shape_of(anchor.output)[2], 1,
                       out_bytes=_element_bytes(layer.output), const_bytes=_per_channel_bytes(layer, n),
                       fixed_const_bytes=fixed, rows_per_batch=m, batch_const_bytes=batch_bytes)
    return Geometry(shape, lhs_slices=lhs_rows // m, rhs_slices=qnn.shape_of(anchor.rhs)[2] // k)


def geometry(layer: qnn.LayerOp) -> Geometry:
    """The layer's shapes, window and per-channel constants, as its anchor op states them."""
    anchor = layer.anchor()
    if isinstance(anchor, qnn.MatMulOp):
        return _matmul_geometry(layer, anchor)
    if isinstance(anchor, qnn.TransposeOp):
        # Only data moves: each output row is gathered from the input, so both sides are the output's rows.
        features, rows, _ = _chw(anchor.output)
        return Geometry(LayerShape("transpose", features, features, rows, 1, rows, 1,
                                   out_bytes=_element_bytes(layer.output), in_bytes=_element_bytes(anchor.input),
                                   **transpose_runs(anchor.result_shape())))
    c_in, h_in, w_in = _chw(anchor.operands[0])
    if isinstance(anchor, qnn.LinearOp):
        c_out, h_out, w_out = qnn.shape_of(anchor.weight)[0], 1, 1
    else:
        c_out, h_out, w_out = _chw(anchor.results[0])
    kernel, strides, pads, dilations = (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)
    if isinstance(anchor, qnn.ConvOp | qnn.MaxPoolOp | qnn.SumPoolOp):
        kernel, strides, pads = anchor.kernel_hw(), anchor.stride_hw(), anchor.pads_tlbr()
    if isinstance(anchor, qnn.ConvOp):
        dilations = tuple(anchor.dilations.get_values())
    shape = LayerShape(
        layer.kind(), c_in, c_out, h_in, w_in, h_out, w_out, *kernel, *strides, *dilations,
        out_bytes=_element_bytes(layer.output),
        const_bytes=_per_channel_bytes(layer, c_out),
        fixed_const_bytes=_fixed_bytes(layer, c_out),
        row_const_bytes=_per_channel_bytes(layer, c_out, per_row=True),
        row_fixed_const_bytes=_fixed_bytes(layer, c_out, per_row=True),
        in_bytes=max(_element_bytes(x) for x in (anchor.operands if isinstance(anchor, qnn.AddOp) else anchor.operands[:1])),
    )
    return Geometry(shape, pads[0], pads[1])


# --------------------------------------------------------------------------- the pass's decisions


class Malformed(Exception):
    """An attribute the pass should have written is missing or has the wrong type."""


@dataclass(frozen=True)
class LayerTiling:
    """A layer's `tiling` attribute."""

    co: int
    ho: int
    wo: int
    ci: int
    counts: tuple[int, ...]
    l1_bytes: int
    co2: int
    ho2: int
    weights: str
    streamed: tuple[str, ...]
    single: str | None = None
    """The buffer ("input" or "weights") kept in one L1 slot although it changes (the loop order's
    stationary buffer with `stationary_slots = 1`)."""

    @staticmethod
    def read(layer: qnn.LayerOp) -> LayerTiling:
        attr = layer.attributes.get(TILING)
        if not isinstance(attr, LayerTilingAttr):
            raise Malformed(f"no '{TILING}' attribute (was the tile pass run?)")
        return LayerTiling(*attr.tile, attr.counts, attr.l1_bytes.data, *attr.slice, attr.weights.data,
                           attr.streamed_names, attr.single)


@dataclass(frozen=True)
class PlanBuffer:
    """One entry of `l2_plan.buffers`: bytes [offset, offset + bytes) from layer `first` to `last`."""

    name: str
    offset: int
    bytes: int
    first: int
    last: int

    @property
    def end(self) -> int:
        return self.offset + self.bytes

    def clashes_with(self, other: PlanBuffer) -> bool:
        alive_together = self.first <= other.last and other.first <= self.last
        return alive_together and self.offset < other.end and other.offset < self.end

    def describe(self) -> str:
        return f"'{self.name}' [{self.offset}, {self.end}) layers {self.first}..{self.last}"


@dataclass(frozen=True)
class L2Plan:
    """The function's `l2_plan` attribute, with the target's budgets."""

    l1_budget: int
    l2_budget: int
    l2_peak: int
    weights: str
    buffers: tuple[PlanBuffer, ...]

    @functools.cached_property
    def by_name(self) -> dict[str, PlanBuffer]:
        """The buffers by name (the first of a duplicated name: `plan_problems` reports duplicates)."""
        return {b.name: b for b in reversed(self.buffers)}

    @staticmethod
    def read(function: func.FuncOp, target: TargetAttr) -> L2Plan:
        attr = function.attributes.get(L2_PLAN)
        if not isinstance(attr, L2PlanAttr):
            raise Malformed(f"no '{L2_PLAN}' attribute (was the tile pass run?)")
        buffers = tuple(PlanBuffer(b.buffer.data, b.offset.data, b.bytes.data, b.first.data, b.last.data)
                        for b in attr.buffers.data)
        return L2Plan(target.l1_budget.data, target.l2_budget.data, attr.peak.data, attr.weights.data, buffers)


# --------------------------------------------------------------------------- L1: tiles and footprints


def grid(g: Geometry, t: LayerTiling) -> dict[str, list[Span]]:
    """The tiles of the layer along each dimension (co, ho, wo, ci); the grid is their product.

    Layers that do not reduce over channels read input channel c for output channel c, so
    their only input-channel "slice" is all of them, tied to the output-channel tile.
    """
    return {
        "co": nested_spans(g.c_out, t.co2, t.co),
        "ho": nested_spans(g.h.size_out, t.ho2, t.ho),
        "wo": spans(g.w.size_out, t.wo),
        "ci": spans(g.c_in, t.ci) if g.reduces else [(0, g.c_in)],
    }


@dataclass(frozen=True)
class TileExtent:
    """The actual extents of one tile: outputs co × ho × wo, input slice ci, input rows × columns."""

    co: int
    ho: int
    wo: int
    ci: int
    rows_in: int
    cols_in: int

    def describe(self) -> str:
        return f"co={self.co} ho={self.ho} wo={self.wo} ci={self.ci} (input {self.rows_in}x{self.cols_in})"


def interior_tile(g: Geometry, t: LayerTiling) -> TileExtent:
    return TileExtent(t.co, t.ho, t.wo, t.ci, g.h.halo(t.ho), g.w.halo(t.wo))


def distinct_tiles(g: Geometry, t: LayerTiling, tiles: dict[str, list[Span]]) -> list[TileExtent]:
    """Every different tile of the grid, border tiles included.

    The grid is the product of the per-dimension spans, so its different tiles are the
    product of each dimension's different (extent, input extent) pairs: a handful of
    footprints to compute instead of one per tile.
    """
    rows = sorted({(b - a, g.h.rows_read((a, b))) for a, b in tiles["ho"]})
    cols = sorted({(b - a, g.w.rows_read((a, b))) for a, b in tiles["wo"]})
    channels = sorted({b - a for a, b in tiles["co"]})
    slices = sorted({b - a for a, b in tiles["ci"]})
    return [
        TileExtent(co, ho, wo, ci if g.reduces else co, rows_in, cols_in)
        for co, (ho, rows_in), (wo, cols_in), ci in itertools.product(channels, rows, cols, slices)
    ]


def footprint(g: Geometry, t: LayerTiling, tile: TileExtent, cores: int, double_buffer: bool) -> dict[str, int]:
    """Bytes of each L1 buffer while `tile` is computed (the model docstring's table).

    Whether a buffer is double-buffered is a property of the loop, not of one tile: it is
    when its tile is not the whole L2 slice (the next tile's data then arrives during the
    computation), decided from the nominal tile sizes, unless the tiling keeps it in one slot
    (`single`: its copies are waited for).
    """
    slice_c_in = g.c_in if g.reduces else t.co2
    whole_rows = t.ho == t.ho2 and t.wo == g.w.size_out
    whole_co, whole_ci = t.co == t.co2, t.ci == slice_c_in

    def copies(whole: bool, buffer: str | None = None) -> int:
        return 1 if whole or not double_buffer or (buffer is not None and buffer == t.single) else 2

    if g.kind == "matmul":
        return _matmul_footprint(g, t, tile, copies)
    if g.kind == "transpose":
        return {"input": align(tile.ho * tile.co * g.in_bytes)}  # in and back out of one buffer, never double
    inputs = 2 if g.kind == "add" else 1
    buffers = {
        "input": copies(whole_rows and whole_ci, "input") * inputs * align(tile.rows_in * tile.cols_in * tile.ci * g.in_bytes),
        "output": copies(whole_rows and whole_co) * align(tile.ho * tile.wo * tile.co * g.out_bytes),
    }
    if g.kind in WEIGHTED:
        per_channel = g.h.kernel * g.w.kernel * (1 if g.kind == "depthwise" else tile.ci)
        buffers["weights"] = copies(whole_co and whole_ci, "weights") * align(tile.co * per_channel)
    if g.const_bytes or g.fixed_const_bytes:
        per_channel = copies(whole_co) * align(tile.co * g.const_bytes) if g.const_bytes else 0
        buffers["constants"] = per_channel + g.fixed_const_bytes
    if g.rows_vary:
        # One output row's block, a new one every row of the slice.
        whole_h = t.ho2 == 1
        per_channel = copies(whole_h and whole_co) * align(tile.co * g.row_const_bytes) if g.row_const_bytes else 0
        buffers["row constants"] = per_channel + copies(whole_h) * g.row_fixed_const_bytes
    if g.reduces and t.ci < g.c_in:
        buffers["partial sums"] = align(acc_bytes(tile.ho * tile.wo * tile.co))
    if (im2col := im2col_bytes(KERNEL_OF[g.kind], cores, g.h.kernel, g.w.kernel, tile.ci, tile.rows_in)) is not None:
        buffers["im2col"] = align(im2col)
    return buffers


def _matmul_footprint(g: Geometry, t: LayerTiling, tile: TileExtent, copies) -> dict[str, int]:
    """A matmul tile's buffers: rows of A, a block of B, the output rows, per-column and per-batch
    constants, partial sums when K is sliced. A buffer is single when its block is the same for
    every tile: A's when K is whole and the tile is all rows, or the M rows of a slice of an A
    shared by all slices; B's when K and N are whole and there is one row tile or one B slice."""
    all_rows = t.ho == g.h.size_out
    whole_k, whole_n = t.ci == g.c_in, t.co == g.c_out
    lhs_fixed = all_rows or (g.lhs_slices == 1 and t.ho == g.rows_per_batch)
    buffers = {
        "input": copies(whole_k and lhs_fixed) * align(tile.ho * tile.ci),
        "output": copies(all_rows and whole_n) * align(tile.ho * tile.co * g.out_bytes),
        "weights": copies(whole_k and whole_n and (all_rows or g.rhs_slices == 1)) * align(tile.ci * tile.co),
    }
    if g.const_bytes or g.fixed_const_bytes or g.batch_const_bytes:
        per_channel = copies(whole_n) * align(tile.co * g.const_bytes) if g.const_bytes else 0
        buffers["constants"] = per_channel + g.fixed_const_bytes + copies(all_rows) * g.batch_const_bytes
    buffers["partial sums"] = 0 if whole_k else align(acc_bytes(tile.ho * tile.co))
    return buffers


def _listing(buffers: dict[str, int]) -> str:
    return ", ".join(f"{name} {size}" for name, size in buffers.items())


def sanity_problems(g: Geometry, t: LayerTiling) -> list[str]:
    """Tile and slice sizes must lie within their dimensions; L1 tiles within their L2 slice."""
    bounds = {"co": (t.co, t.co2), "ho": (t.ho, t.ho2), "wo": (t.wo, g.w.size_out), "ci": (t.ci, g.c_in),
              "co2": (t.co2, g.c_out), "ho2": (t.ho2, g.h.size_out)}
    problems = [f"{key}={value} is outside 1..{bound}" for key, (value, bound) in bounds.items()
                if not 1 <= value <= bound]
    if not g.reduces and t.ci != t.co:
        problems.append(f"a {g.kind} layer reads the channels it writes, but ci={t.ci} != co={t.co}")
    if g.kind in ROW_KINDS and not t.co == t.co2 == g.c_out:
        problems.append(f"a {g.kind} layer reads all {g.c_out} features of a row, but co={t.co}, co2={t.co2}")
    if g.rows_vary and t.ho != 1:
        problems.append(f"the requant constants vary over the output rows, but a tile has ho={t.ho} rows (must be 1)")
    if g.kind == "matmul" and (g.rows_per_batch % t.ho or t.ho2 != g.h.size_out or t.co2 != g.c_out):
        problems.append(f"a matmul tile's rows must divide the {g.rows_per_batch} rows of a batch slice and its L2 "
                        f"slice be the whole layer, got ho={t.ho}, co2={t.co2}, ho2={t.ho2}")
    if g.kind == "transpose" and (t.ho not in transpose_tile_rows(g.rows_per_batch, g.row_runs) or t.ho2 != g.h.size_out):
        problems.append(f"a transpose tile's rows must be one strided copy ({g.rows_per_batch} rows at one input "
                        f"stride, in {g.row_runs} runs) and its L2 slice the whole layer, got ho={t.ho}, ho2={t.ho2}")
    return problems


def coverage_problems(g: Geometry, t: LayerTiling, tiles: dict[str, list[Span]]) -> list[str]:
    """Each dimension's spans partition it, so their product covers each output element once
    (and each input channel of the reduction once); the counts are the recorded ones."""
    sizes = {"co": (g.c_out, t.co), "ho": (g.h.size_out, t.ho), "wo": (g.w.size_out, t.wo),
             "ci": (g.c_in, t.ci if g.reduces else g.c_in)}
    problems = []
    for key, (size, step) in sizes.items():
        position = 0
        for start, stop in tiles[key]:
            if start != position or not 0 < stop - start <= step:
                problems.append(f"{key} tile [{start}, {stop}) does not continue the tiles at {position}")
            position = stop
        if position != size:
            problems.append(f"{key} tiles cover [0, {position}) of [0, {size})")
    counts = tuple(len(tiles[key]) for key in ("co", "ho", "wo", "ci"))
    if counts != t.counts:
        problems.append(f"l1_tiles = {list(t.counts)}, but the grid has {list(counts)} tiles per dimension")
    return problems


def l1_problems(g: Geometry, t: LayerTiling, tiles: dict[str, list[Span]], budget: int, cores: int,
                double_buffer: bool) -> list[str]:
    """Every tile fits L1; the interior tile is the recorded footprint and the largest one."""
    interior = interior_tile(g, t)
    interior_buffers = footprint(g, t, interior, cores, double_buffer)
    interior_bytes = sum(interior_buffers.values())
    problems = []
    if interior_bytes != t.l1_bytes:
        problems.append(f"interior tile {interior.describe()} needs {interior_bytes} B "
                        f"({_listing(interior_buffers)}), but l1_bytes = {t.l1_bytes}")
    for tile in distinct_tiles(g, t, tiles):
        buffers = footprint(g, t, tile, cores, double_buffer)
        needed = sum(buffers.values())
        if needed > budget:
            problems.append(f"tile {tile.describe()} needs {needed} B ({_listing(buffers)}) > L1 budget {budget} B")
        elif needed > interior_bytes:
            problems.append(f"border tile {tile.describe()} needs {needed} B ({_listing(buffers)}), "
                            f"more than the interior tile's {interior_bytes} B")
    return problems


# --------------------------------------------------------------------------- L2: activations and the plan


@dataclass(frozen=True)
class Activation:
    """A tensor between layers: its bytes, rows (H), and the layers from its producer to its last reader."""

    name: str
    bytes: int
    rows: int
    first: int
    last: int

    def row_bytes(self) -> int:
        return self.bytes // self.rows


class Network:
    """A function's layers and activations, with lifetimes re-derived from the IR.

    The network input is alive from layer 0, a layer's output from its own index; both
    until the last layer that reads them (a `qnn.reshape` is a view of the same buffer),
    and until `end` (one past the last layer, when the caller reads them) if returned.
    """

    def __init__(self, function: func.FuncOp):
        block = function.body.block
        self.layers = [op for op in block.ops if isinstance(op, qnn.LayerOp)]
        self.end = len(self.layers)
        self.name_of: dict[SSAValue, str] = {}
        values: dict[str, SSAValue] = {}
        first: dict[str, int] = {}
        for arg, name in zip(block.args, input_names(len(block.args)), strict=True):  # the network inputs
            self.name_of[arg], values[name], first[name] = name, arg, 0
        for op in block.ops:
            if isinstance(op, qnn.LayerOp):
                name = f"layer{op.index.value.data}"
                self.name_of[op.output], values[name], first[name] = name, op.output, op.index.value.data
            elif isinstance(op, qnn.ReshapeOp) and op.input in self.name_of:
                self.name_of[op.output] = self.name_of[op.input]
        last = dict(first)
        for layer in self.layers:
            for name in self.activations(layer):
                last[name] = max(last[name], layer.index.value.data)
        if isinstance(block.last_op, func.ReturnOp):
            for value in block.last_op.operands:
                if value in self.name_of:
                    last[self.name_of[value]] = self.end
        self.tensors = {name: Activation(name, _tensor_bytes(value), _chw(value)[1], first[name], last[name])
                        for name, value in values.items()}

    def activations(self, layer: qnn.LayerOp) -> list[str]:
        """Names of the activations the layer reads."""
        return [self.name_of[v] for v in layer.inputs if v in self.name_of]

    def touched(self, layer: qnn.LayerOp) -> set[str]:
        """Names of the activations the layer reads or writes."""
        return {*self.activations(layer), self.name_of[layer.output]}

    @staticmethod
    def constant_bytes(layer: qnn.LayerOp) -> int:
        """Bytes of the weights, biases and requant constants the layer reads."""
        return sum(_tensor_bytes(v) for v in layer.inputs if isinstance(v.owner, qnn.ConstantOp))

    def unnamed_inputs(self, layer: qnn.LayerOp) -> list[SSAValue]:
        """Operands that are neither an activation nor a constant: the checker cannot place them."""
        return [v for v in layer.inputs if v not in self.name_of and not isinstance(v.owner, qnn.ConstantOp)]


def placement_problems(net: Network, layer: qnn.LayerOp, g: Geometry, t: LayerTiling, plan: L2Plan) -> list[str]:
    """Where the layer's weights and streamed activations live agrees with the plan and the IR."""
    problems = []
    has_constants = net.constant_bytes(layer) > 0
    if not has_constants:
        expected = "none"
    elif plan.weights == "L2":
        expected = "L2"
    else:
        expected = "L3-stream" if t.co2 < g.c_out else "L3"
    if t.weights != expected:
        problems.append(f"weights = '{t.weights}', expected '{expected}' "
                        f"(l2_plan weights '{plan.weights}', co2={t.co2} of {g.c_out} channels)")
    foreign = sorted(set(t.streamed) - net.touched(layer))
    if foreign:
        problems.append(f"streams {foreign}, which the layer neither reads nor writes")
    return problems


def streamed_problems(net: Network, tilings: dict[int, LayerTiling]) -> tuple[set[str], list[str]]:
    """The activations in L3, and every layer that touches one but does not say it streams it."""
    streamed = {name for t in tilings.values() for name in t.streamed}
    problems = []
    for layer in net.layers:
        index = layer.index.value.data
        if index in tilings:
            missing = sorted((net.touched(layer) & streamed) - set(tilings[index].streamed))
            if missing:
                problems.append(f"layer {index}: touches {missing}, which live in L3, but does not stream them")
    return streamed, problems


def plan_problems(plan: L2Plan) -> list[str]:
    """Buffers lie within the budget, never share bytes while alive together; the peak is right."""
    problems = []
    for b in plan.buffers:
        if b.offset < 0 or b.bytes < 0 or b.end > plan.l2_budget:
            problems.append(f"L2 buffer {b.describe()} lies outside [0, {plan.l2_budget})")
        if b.first > b.last:
            problems.append(f"L2 buffer {b.describe()} ends before it starts")
    for a, b in itertools.combinations(plan.buffers, 2):
        if a.clashes_with(b):
            problems.append(f"L2 buffers {a.describe()} and {b.describe()} overlap while both are alive")
    names = [b.name for b in plan.buffers]
    problems += [f"two L2 buffers are named '{name}'" for name in sorted(set(names)) if names.count(name) > 1]
    peak = max((b.end for b in plan.buffers), default=0)
    if plan.l2_peak != peak:
        problems.append(f"l2_peak = {plan.l2_peak}, but the buffers reach {peak}")
    return problems


def _holds(buffer: PlanBuffer | None, what: str, size: int, first: int, last: int) -> list[str]:
    """`buffer` holds `size` bytes from layer `first` to layer `last`."""
    if buffer is None:
        return [f"{what} ({size} B, layers {first}..{last}) has no L2 buffer"]
    problems = []
    if buffer.bytes < size:
        problems.append(f"L2 buffer {buffer.describe()} holds {buffer.bytes} B, but {what} needs {size} B")
    if buffer.first > first or buffer.last < last:
        problems.append(f"L2 buffer {buffer.describe()} does not live over {what}'s lifetime {first}..{last}")
    return problems


def residency_problems(net: Network, plan: L2Plan, streamed: set[str]) -> list[str]:
    """Every activation not in L3 (and every layer's constants when weights stay in L2) has a buffer."""
    by_name = plan.by_name
    problems = []
    for tensor in net.tensors.values():
        if tensor.name not in streamed:
            problems += _holds(by_name.get(tensor.name), f"activation '{tensor.name}'", tensor.bytes,
                               tensor.first, tensor.last)
    if plan.weights == "L2":
        for layer in net.layers:
            size = net.constant_bytes(layer)
            name = f"weights of layer {layer.index.value.data}"
            if size:
                problems += _holds(by_name.get(name), f"'{name}'", size, 0, net.end - 1)
    return problems


def constant_slice_bytes(layer: qnn.LayerOp, c_out: int, co2: int) -> tuple[int, int]:
    """Bytes of the constants an L2 slice of `co2` output channels needs: (`co2` channels of
    every per-channel constant (leading dimension C_out), all of every per-tensor or per-row one)."""
    sliced = whole = 0
    for value, arg in zip(layer.inputs, layer.body.block.args, strict=True):
        if isinstance(value.owner, qnn.ConstantOp):
            size = _tensor_bytes(value)
            # A requant constant that varies over the rows ([H, C], [H, 1]) is needed whole.
            per_row = _varies_over_rows(value) and any(isinstance(use.operation, qnn.RequantOp) for use in arg.uses)
            if qnn.shape_of(value)[0] == c_out and not per_row:
                sliced += size // c_out * co2
            else:
                whole += size
    return sliced, whole


def working_problems(net: Network, layer: qnn.LayerOp, g: Geometry, t: LayerTiling, plan: L2Plan) -> list[str]:
    """The layer's own L2 buffers (alive at its index, named "layer N ..." as the pass names them).

    Weights in L3 are copied into "layer N weights": all of them, or, streamed in slices of
    `co2` output channels, two slices (double-buffered) beside one copy of the constants
    every slice needs whole. A streamed activation is staged in
    "layer N T (in)" / "layer N T (out)": the input rows that `ho2` output rows read (halo
    included; a tensor the layer does not read by rows, e.g. a flattened one, whole), or
    `ho2` output rows; two of them when the L2 slice is not the whole layer.
    """
    index = layer.index.value.data
    needs: dict[str, int] = {}
    if t.weights == "L3":
        needs["weights"] = net.constant_bytes(layer)
    elif t.weights == "L3-stream":
        sliced, whole = constant_slice_bytes(layer, g.c_out, t.co2)
        needs["weights"] = 2 * sliced + whole  # the whole constants are the same for every slice: held once
    slots = 2 if t.ho2 < g.h.size_out else 1
    for name in sorted(set(net.activations(layer)) & set(t.streamed)):
        tensor = net.tensors[name]
        rows = g.h.halo(t.ho2) if tensor.rows == g.h.size_in else tensor.rows
        needs[f"{name} (in)"] = slots * rows * tensor.row_bytes()
    output = net.name_of[layer.output]
    if output in t.streamed:
        needs[f"{output} (out)"] = slots * t.ho2 * net.tensors[output].row_bytes()
    problems = []
    for what, size in needs.items():
        name = f"layer {index} {what}"
        problems += _holds(plan.by_name.get(name), f"'{name}'", size, index, index)
    return problems


# --------------------------------------------------------------------------- entry point


def layer_problems(net: Network, layer: qnn.LayerOp, t: LayerTiling, plan: L2Plan, cores: int,
                   double_buffer: bool) -> list[str]:
    """Everything about one layer and its tiling."""
    g = geometry(layer)
    problems = [f"reads %{v.name_hint or '?'}, which is neither an activation nor a constant"
                for v in net.unnamed_inputs(layer)]
    problems += placement_problems(net, layer, g, t, plan)
    sane = sanity_problems(g, t)
    if sane:
        return problems + sane  # the grid of nonsensical sizes is meaningless
    tiles = grid(g, t)
    return (problems + coverage_problems(g, t, tiles) + l1_problems(g, t, tiles, plan.l1_budget, cores, double_buffer)
            + working_problems(net, layer, g, t, plan))


def check_function(function: func.FuncOp, target: TargetAttr) -> list[str]:
    """Every problem of one function's layers and L2 plan, prefixed with where it is."""
    net = Network(function)
    where = f"@{function.sym_name.data}"
    try:
        plan = L2Plan.read(function, target)
    except Malformed as error:
        return [f"{where}: {error}"]
    cores, double_buffer = target.cores.data, bool(target.double_buffer.value.data)
    tilings: dict[int, LayerTiling] = {}
    problems = []
    for layer in net.layers:
        index = layer.index.value.data
        try:
            tilings[index] = LayerTiling.read(layer)
        except Malformed as error:
            problems.append(f"{where} layer {index}: {error}")
            continue
        found = layer_problems(net, layer, tilings[index], plan, cores, double_buffer)
        problems += [f"{where} layer {index}: {p}" for p in found]
    streamed, stream_problems = streamed_problems(net, tilings)
    problems += [f"{where} {p}" for p in stream_problems]
    problems += [f"{where}: {p}" for p in plan_problems(plan) + residency_problems(net, plan, streamed)]
    return problems


def check_tiling(module: ModuleOp) -> list[str]:
    """Every problem of the `tile` pass's decisions in `module` (empty: all verified), for the
    module's target (its budgets, cores and double buffering, as the pass used them)."""
    target = target_of(module)
    if target is None:
        return [f"no '{TARGET}' attribute on the module (was the tile pass run?)"]
    problems = []
    for function in module.walk():
        if isinstance(function, func.FuncOp) and function.body.blocks:
            if any(isinstance(op, qnn.LayerOp) for op in function.body.block.ops):
                problems += check_function(function, target)
    return problems
