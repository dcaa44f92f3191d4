"""DMA bytes a tiled layer moves, counted tile by tile (border tiles exact).

Loop order as in the model: spatial tiles outermost, output-channel tiles, then
input-channel slices. As `tile-layers` lowers it: a buffer whose tile is the same for
every tile of the layer is fetched once; any other is fetched for every tile (so the
input of a conv split over output channels is fetched once per channel tile); outputs
are written once. A layer that streams from L3 runs these rules L2 slice by L2 slice
(`sliced_l2_l1_bytes`). The generated C counts the bytes it moves (`dory-verify`), and
tests/test_dma_counts.py holds the tile report's count equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dory_mlir.tiling.geometry import LayerShape, input_rows, nested_spans, spans
from dory_mlir.tiling.model import PY, Tile


@dataclass(frozen=True)
class Grid:
    """The tiles of a layer along each dimension, as [start, stop) spans."""

    co: list[tuple[int, int]]
    ho: list[tuple[int, int]]
    wo: list[tuple[int, int]]
    ci: list[tuple[int, int]]

    @staticmethod
    def of(shape: LayerShape, tile: Tile, co2: int | None = None, ho2: int | None = None) -> Grid:
        """The grid of L1 tiles, nested in L2 slices of co2 channels and ho2 rows."""
        return Grid(
            nested_spans(shape.c_out, co2 or shape.c_out, tile.co),
            nested_spans(shape.h_out, ho2 or shape.h_out, tile.ho),
            spans(shape.w_out, tile.wo),
            spans(shape.c_in, tile.ci) if shape.splits_reduction else [(0, shape.c_in)],
        )

    def counts(self) -> tuple[int, int, int, int]:
        return len(self.co), len(self.ho), len(self.wo), len(self.ci)


def input_read(shape: LayerShape, grid: Grid, pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> tuple[int, int]:
    """Input rows and columns read over all row (column) tiles, padding excluded."""
    t, l, _, _ = pads
    rows = sum(input_rows(a, b, shape.sh, shape.kh, shape.dh, t, shape.h_in) for a, b in grid.ho)
    cols = sum(input_rows(a, b, shape.sw, shape.kw, shape.dw, l, shape.w_in) for a, b in grid.wo)
    return rows, cols


def l2_l1_bytes(shape: LayerShape, grid: Grid, pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> dict[str, int]:
    """Bytes moved L2 → L1 (input, weights, constants) and L1 → L2 (output) for the layer."""
    return moved_bytes(shape, *input_read(shape, grid, pads), grid.counts())


def sliced_l2_l1_bytes(shape: LayerShape, tile: Tile, co2: int, ho2: int,
                       pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> dict[str, int]:
    """`l2_l1_bytes` of a layer that streams from L3: `tile-layers` runs its tiles L2 slice by L2 slice
    (rows of `ho2`, then channels of `co2`), so what does not change within a slice is copied once per
    slice and an input is re-fetched per channel tile of its slice only."""
    total: dict[str, int] = {}
    for h0, h1 in spans(shape.h_out, ho2):
        for c0, c1 in spans(shape.c_out, co2):
            part = replace(shape, c_out=c1 - c0, h_out=h1 - h0, c_in=shape.c_in if shape.splits_reduction else c1 - c0)
            grid = Grid([(c0 + a, c0 + b) for a, b in spans(c1 - c0, tile.co)],
                        [(h0 + a, h0 + b) for a, b in spans(h1 - h0, tile.ho)], spans(shape.w_out, tile.wo),
                        spans(shape.c_in, tile.ci) if shape.splits_reduction else [(0, c1 - c0)])
            for name, nbytes in moved_bytes(part, *input_read(shape, grid, pads), grid.counts()).items():
                total[name] = total.get(name, 0) + nbytes
    return total


def _one_input_tile(shape: LayerShape, counts, B):
    n_co, n_ho, n_wo, n_ci = counts
    return B.And(n_ho * n_wo == 1, (n_ci if shape.splits_reduction else n_co) == 1)


def moved_bytes(shape: LayerShape, in_rows, in_cols, counts, B=PY) -> dict[str, object]:
    """The bytes of `l2_l1_bytes` from the input rows and columns all row (column) tiles read and the tile
    counts (co, ho, wo, ci): `B` the Python or numpy backend of the model (the cost search). Per-tensor
    constants are copied once (their tile never changes)."""
    n_co, n_ho, n_wo, n_ci = counts
    n_spatial = n_ho * n_wo
    inputs = 2 if shape.kind == "add" else 1
    refetch = B.If(_one_input_tile(shape, counts, B), 1, n_co) if shape.splits_reduction else 1
    moved = {"input": inputs * in_rows * in_cols * shape.c_in * shape.in_bytes * refetch,
             "output": shape.h_out * shape.w_out * shape.c_out * shape.out_bytes}
    if shape.kind == "matmul":  # a block of B per row tile, unless one block serves every tile
        moved["weights"] = shape.c_in * shape.c_out * B.If(_single_rhs(shape, counts, B), 1, n_ho)
    if shape.has_weights:
        per_channel = shape.kh * shape.kw * (1 if shape.kind == "depthwise" else shape.c_in)
        moved["weights"] = shape.c_out * per_channel * B.If(B.And(n_co == 1, n_ci == 1), 1, n_spatial)
    if shape.const_bytes or shape.fixed_const_bytes:
        moved["constants"] = (shape.c_out * shape.const_bytes * B.If(n_co == 1, 1, n_spatial * n_ci)
                              + shape.fixed_const_bytes)
    if shape.constants_vary_over_rows:
        # Every tile is one output row and copies that row's block (once when there is one tile).
        block = shape.c_out * shape.row_const_bytes + n_co * shape.row_fixed_const_bytes
        moved["row constants"] = block * B.If(n_spatial * n_co * n_ci == 1, 1, n_spatial * n_ci)
    return moved


def _single_rhs(shape: LayerShape, counts, B):
    n_co, n_ho, _, n_ci = counts
    return B.And(n_co == 1, n_ci == 1, B.Or(n_ho == 1, shape.shared_rhs))


def copies(shape: LayerShape, counts, B=PY) -> dict[str, object]:
    """How many copies of each buffer of `moved_bytes` the layer makes (each tile copies what changes)."""
    n_co, n_ho, n_wo, n_ci = counts
    tiles = n_co * n_ho * n_wo * n_ci
    made = {"input": B.If(_one_input_tile(shape, counts, B), 1, tiles), "output": n_co * n_ho * n_wo}
    if shape.kind == "matmul":
        made["weights"] = B.If(_single_rhs(shape, counts, B), 1, tiles)
    if shape.has_weights:
        made["weights"] = B.If(B.And(n_co == 1, n_ci == 1), 1, tiles)
    if shape.const_bytes:
        made["constants"] = B.If(n_co == 1, 1, tiles)
    elif shape.fixed_const_bytes:
        made["constants"] = 1
    if shape.constants_vary_over_rows:
        made["row constants"] = tiles
    return made
