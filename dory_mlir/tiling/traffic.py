"""DMA bytes a tiled layer moves, counted tile by tile (border tiles exact).

The tiles run in the layer's loop order (`geometry.LoopOrder`: input- or weight-stationary, the
input-channel slices innermost). As `tile-layers` lowers it: a buffer whose block is the same as
the previous tile's is not copied again (`fetches`: its block follows some of the tile loops,
`block_loops`), so an input that holds all the input channels is fetched once per spatial tile when
input-stationary and once per output-channel tile too when weight-stationary, and the weights the
other way round; outputs are written once. A matmul keeps its own order (rows, columns, slices of
K) and copies a block on every tile unless it is the same for the whole layer. A layer that streams
from L3 runs these rules L2 slice by L2 slice (`sliced_l2_l1_bytes`). The generated C counts the bytes it moves (`dory-verify`), and
tests/test_dma_counts.py holds the tile report's count equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dory_mlir.tiling.geometry import TILE_DIMS, LayerShape, LoopOrder, input_rows, nested_spans, spans
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


def l2_l1_bytes(shape: LayerShape, grid: Grid, pads: tuple[int, int, int, int] = (0, 0, 0, 0),
                order: LoopOrder = LoopOrder.INPUT_STATIONARY) -> dict[str, int]:
    """Bytes moved L2 → L1 (input, weights, constants) and L1 → L2 (output) for the layer."""
    return moved_bytes(shape, *input_read(shape, grid, pads), grid.counts(), order)


def sliced_l2_l1_bytes(shape: LayerShape, tile: Tile, co2: int, ho2: int,
                       pads: tuple[int, int, int, int] = (0, 0, 0, 0),
                       order: LoopOrder = LoopOrder.INPUT_STATIONARY) -> dict[str, int]:
    """`l2_l1_bytes` of a layer that streams from L3: `tile-layers` runs its tiles L2 slice by L2 slice
    (rows of `ho2`, then channels of `co2`), each in the loop order, so what does not change within a
    slice is copied once per slice and an input is re-fetched per channel tile of its slice at most."""
    total: dict[str, int] = {}
    for h0, h1 in spans(shape.h_out, ho2):
        for c0, c1 in spans(shape.c_out, co2):
            part = replace(shape, c_out=c1 - c0, h_out=h1 - h0, c_in=shape.c_in if shape.splits_reduction else c1 - c0)
            grid = Grid([(c0 + a, c0 + b) for a, b in spans(c1 - c0, tile.co)],
                        [(h0 + a, h0 + b) for a, b in spans(h1 - h0, tile.ho)], spans(shape.w_out, tile.wo),
                        spans(shape.c_in, tile.ci) if shape.splits_reduction else [(0, c1 - c0)])
            for name, nbytes in moved_bytes(part, *input_read(shape, grid, pads), grid.counts(), order).items():
                total[name] = total.get(name, 0) + nbytes
    return total


def fetches(depends: frozenset[str], order: LoopOrder, counts) -> tuple[object, object]:
    """How often a buffer is copied when its block follows the tile loops in `depends` (names of
    `TILE_DIMS`) and a copy is skipped while the block is the previous tile's: (copies, how often each
    block is copied). A loop outside `depends` repeats the copies only when it runs outside one that
    changes the block (`LoopOrder`). Plain arithmetic on the counts (Python ints or numpy arrays)."""
    n = dict(zip(TILE_DIMS, counts, strict=True))
    changed, blocks, repeats = False, 1, 1
    for dim in reversed(order.loops):  # innermost first
        if dim in depends:
            changed, blocks = changed | (n[dim] > 1), blocks * n[dim]
        else:
            repeats = repeats * (1 + (n[dim] - 1) * changed)
    return blocks * repeats, repeats


def block_loops(shape: LayerShape) -> dict[str, frozenset[str]]:
    """The tile loops (`TILE_DIMS`) each input buffer's block follows; `tile-layers` copies a block again
    only when one of them moved on (per-tensor constants follow none: copied once)."""
    spatial = frozenset(("ho", "wo"))
    reduction = "ci" if shape.splits_reduction else "co"  # depthwise, pools, add: input channel c is output c
    return {"input": spatial | {reduction},
            "weights": frozenset(("co", "ci") if shape.splits_reduction else ("co",)),
            "constants": frozenset(("co",)), "row constants": frozenset(("ho", "co")),
            "row fixed constants": frozenset(("ho",))}


def moved_bytes(shape: LayerShape, in_rows, in_cols, counts, order: LoopOrder = LoopOrder.INPUT_STATIONARY,
                B=PY) -> dict[str, object]:
    """The bytes of `l2_l1_bytes` from the input rows and columns all row (column) tiles read, the tile
    counts (co, ho, wo, ci) and the loop order: `B` the Python or numpy backend of the model (the cost
    search). Every block of a buffer is copied as often as `fetches` says; the output once; per-tensor
    constants once (their tile never changes)."""
    return traffic(shape, in_rows, in_cols, counts, order, B)[0]


def copies(shape: LayerShape, counts, order: LoopOrder = LoopOrder.INPUT_STATIONARY, B=PY) -> dict[str, object]:
    """How many copies of each buffer of `moved_bytes` the layer makes (`fetches`; the row constants:
    their per-channel blocks', one transfer with the per-tensor ones)."""
    return traffic(shape, 0, 0, counts, order, B)[1]


def traffic(shape: LayerShape, in_rows, in_cols, counts, order: LoopOrder = LoopOrder.INPUT_STATIONARY,
            B=PY) -> tuple[dict[str, object], dict[str, object]]:
    """`moved_bytes` and `copies` at once (the cost search needs both)."""
    if shape.kind == "matmul":
        return _matmul_moved_bytes(shape, in_rows, in_cols, counts, B), _matmul_copies(shape, counts, B)
    n_co, n_ho, n_wo, _ = counts
    fetched = {buffer: fetches(loops, order, counts) for buffer, loops in block_loops(shape).items()}
    inputs = 2 if shape.kind == "add" else 1
    moved = {"input": inputs * in_rows * in_cols * shape.c_in * shape.in_bytes * fetched["input"][1],
             "output": shape.h_out * shape.w_out * shape.c_out * shape.out_bytes}
    made = {"input": fetched["input"][0], "output": n_co * n_ho * n_wo}
    if shape.has_weights:
        per_channel = shape.kh * shape.kw * (1 if shape.kind == "depthwise" else shape.c_in)
        moved["weights"] = shape.c_out * per_channel * fetched["weights"][1]
        made["weights"] = fetched["weights"][0]
    if shape.const_bytes or shape.fixed_const_bytes:
        moved["constants"] = shape.c_out * shape.const_bytes * fetched["constants"][1] + shape.fixed_const_bytes
        made["constants"] = fetched["constants"][0] if shape.const_bytes else 1
    if shape.constants_vary_over_rows:
        # Every tile is one output row (h_out rows: one per row tile) and copies that row's block when it changed.
        moved["row constants"] = shape.h_out * (shape.c_out * shape.row_const_bytes * fetched["row constants"][1]
                                                + shape.row_fixed_const_bytes * fetched["row fixed constants"][1])
        made["row constants"] = fetched["row constants"][0]
    return moved, made


# A matmul walks its rows outermost, then columns, then slices of K (`tile-layers`), and copies every
# block that is not the same for the whole layer on every tile.

def _one_input_tile(counts, B):
    n_co, n_ho, n_wo, n_ci = counts
    return B.And(n_ho * n_wo == 1, n_ci == 1)


def _single_rhs(shape: LayerShape, counts, B):
    n_co, n_ho, _, n_ci = counts
    return B.And(n_co == 1, n_ci == 1, B.Or(n_ho == 1, shape.shared_rhs))


def _matmul_moved_bytes(shape: LayerShape, in_rows, in_cols, counts, B) -> dict[str, object]:
    n_co, n_ho, n_wo, n_ci = counts
    moved = {"input": in_rows * in_cols * shape.c_in * shape.in_bytes * B.If(_one_input_tile(counts, B), 1, n_co),
             "output": shape.h_out * shape.w_out * shape.c_out * shape.out_bytes,
             # a block of B per row tile, unless one block serves every tile
             "weights": shape.c_in * shape.c_out * B.If(_single_rhs(shape, counts, B), 1, n_ho)}
    if shape.const_bytes or shape.fixed_const_bytes:
        moved["constants"] = (shape.c_out * shape.const_bytes * B.If(n_co == 1, 1, n_ho * n_wo * n_ci)
                              + shape.fixed_const_bytes)
    if shape.constants_vary_over_rows:
        block = shape.c_out * shape.row_const_bytes + n_co * shape.row_fixed_const_bytes
        moved["row constants"] = block * B.If(n_ho * n_wo * n_co * n_ci == 1, 1, n_ho * n_wo * n_ci)
    return moved


def _matmul_copies(shape: LayerShape, counts, B) -> dict[str, object]:
    n_co, n_ho, n_wo, n_ci = counts
    tiles = n_co * n_ho * n_wo * n_ci
    made = {"input": B.If(_one_input_tile(counts, B), 1, tiles), "output": n_co * n_ho * n_wo,
            "weights": B.If(_single_rhs(shape, counts, B), 1, tiles)}
    if shape.const_bytes:
        made["constants"] = B.If(n_co == 1, 1, tiles)
    elif shape.fixed_const_bytes:
        made["constants"] = 1
    if shape.constants_vary_over_rows:
        made["row constants"] = tiles
    return made
