"""DMA bytes a tiled layer moves, counted tile by tile (border tiles exact).

Loop order as in the model: spatial tiles outermost, output-channel tiles, then
input-channel slices. As `tile-layers` lowers it: a buffer whose tile is the same for
every tile of the layer is fetched once; any other is fetched for every tile (so the
input of a conv split over output channels is fetched once per channel tile); outputs
are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from dory_mlir.tiling.geometry import LayerShape, input_rows, nested_spans, spans
from dory_mlir.tiling.model import Tile


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


def l2_l1_bytes(shape: LayerShape, grid: Grid, pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> dict[str, int]:
    """Bytes moved L2 → L1 (input, weights, constants) and L1 → L2 (output) for the layer."""
    t, l, _, _ = pads
    rows = [input_rows(a, b, shape.sh, shape.kh, shape.dh, t, shape.h_in) for a, b in grid.ho]
    cols = [input_rows(a, b, shape.sw, shape.kw, shape.dw, l, shape.w_in) for a, b in grid.wo]
    spatial_in = sum(rows) * sum(cols)  # Σ over spatial tiles of rows × cols
    n_spatial = len(rows) * len(cols)
    n_co, _, _, n_ci = grid.counts()
    inputs = 2 if shape.kind == "add" else 1
    one_input_tile = n_spatial == 1 and (n_ci == 1 if shape.splits_reduction else n_co == 1)
    refetch = n_co if shape.splits_reduction and not one_input_tile else 1
    moved = {"input": inputs * spatial_in * shape.c_in * shape.in_bytes * refetch,
             "output": shape.h_out * shape.w_out * shape.c_out * shape.out_bytes}
    if shape.kind == "matmul":  # a block of B per tile, unless one block serves every tile
        single = (n_co, n_ci) == (1, 1) and (len(rows) == 1 or shape.shared_rhs)
        moved["weights"] = shape.c_in * shape.c_out * (1 if single else len(rows))
    if shape.has_weights:
        per_channel = shape.kh * shape.kw * (1 if shape.kind == "depthwise" else shape.c_in)
        weights = shape.c_out * per_channel
        moved["weights"] = weights if (n_co, n_ci) == (1, 1) else weights * n_spatial
    if shape.const_bytes:
        constants = shape.c_out * shape.const_bytes
        moved["constants"] = constants if n_co == 1 else constants * n_spatial * n_ci
    if shape.constants_vary_over_rows:
        # Every tile is one output row and copies that row's block (once when there is one tile).
        block = shape.c_out * shape.row_const_bytes + n_co * shape.row_fixed_const_bytes
        moved["row constants"] = block if n_spatial * n_co * n_ci == 1 else block * n_spatial * n_ci
    return moved
