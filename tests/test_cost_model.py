"""The cycle estimate of a tiled layer (`dory_mlir/tiling/cost.py`) alone: no IR."""

import json
import random

import numpy as np
import pytest

from dory_mlir.target import load_target
from dory_mlir.tiling.cost import TileSpans, estimate, kernel_terms, with_l3_overlap
from dory_mlir.tiling.cost_figures import KERNEL_COSTS, CostModel, DmaCosts, Link
from dory_mlir.tiling.geometry import LayerShape, LoopOrder
from dory_mlir.tiling.model import NP, PY, Tile
from dory_mlir.tiling.traffic import Grid, l2_l1_bytes, moved_bytes

# Round coefficients so that the figures below can be checked by hand.
SIMPLE = CostModel(DmaCosts(Link(8.0, 30.0), Link(1.0, 300.0), 100.0),
                   (("pointwise", (("call", 500.0), ("mac", 1.0), ("mac_single", 2.0), ("output", 10.0))),))


def test_one_tile_single_buffered_by_hand():
    # 1x1 conv, 8 -> 4 channels, 2x4 pixels: one tile holds everything.
    layer = LayerShape("pointwise", 8, 4, 2, 4, 2, 4)
    tile = Tile(4, 2, 4, 8)
    found = estimate(layer, tile, TileSpans.regular(layer, tile, PY), 8, False, SIMPLE, PY)
    moved = 2 * 4 * 8 + 4 * 8 + 2 * 4 * 4  # input, weights, output: once each
    assert found.l2_l1_bytes == moved
    assert found.dma_cycles == moved / 8 + 3 * 30  # three copies, one 2-D transfer each
    # 8 pixels = 4 pairs < 8 cores and 1 group of 4 channels: the pixels are shared, 2 per core.
    assert found.compute_cycles == 500 + 10 * 2 * 4 + 1.0 * 2 * 4 * 8 + 100
    assert found.total_cycles == found.dma_cycles + found.compute_cycles


def test_double_buffered_is_the_longer_of_dma_and_compute_plus_prologue_and_epilogue():
    layer = LayerShape("pointwise", 8, 4, 8, 4, 8, 4)
    tile = Tile(4, 2, 4, 8)  # 4 row tiles
    single = estimate(layer, tile, TileSpans.regular(layer, tile, PY), 8, False, SIMPLE, PY)
    double = estimate(layer, tile, TileSpans.regular(layer, tile, PY), 8, True, SIMPLE, PY)
    dma_in = (8 * 4 * 8 + 4 * 8) / 8 + (4 + 1) * 30  # input per row tile, weights once
    dma_out = 8 * 4 * 4 / 8 + 4 * 30
    assert single.dma_cycles == dma_in + dma_out
    assert double.total_cycles == max(single.dma_cycles, single.compute_cycles) + dma_in / 4 + dma_out / 4
    assert double.total_cycles < single.total_cycles


def test_loop_order_decides_which_buffer_is_fetched_again():
    """Input-stationary (spatial → output channels → input channels): the input of a spatial tile stays in L1
    across the channel tiles and the weights are fetched per spatial tile; weight-stationary the other way."""
    layer = LayerShape("pointwise", 16, 16, 8, 8, 8, 8)

    def moved(tile: Tile, order: LoopOrder) -> int:
        return estimate(layer, tile, TileSpans.regular(layer, tile, PY), 8, True, SIMPLE, PY, order=order).l2_l1_bytes

    whole_channels, split = Tile(16, 4, 8, 16), Tile(4, 4, 8, 16)  # 2 spatial tiles; 1 or 4 channel tiles
    for order in LoopOrder:
        assert moved(whole_channels, order) == 8 * 8 * 16 + 16 * 16 + 8 * 8 * 16  # every byte once
    assert moved(split, LoopOrder.INPUT_STATIONARY) - moved(whole_channels, LoopOrder.INPUT_STATIONARY) == 16 * 16
    assert moved(split, LoopOrder.WEIGHT_STATIONARY) - moved(whole_channels, LoopOrder.WEIGHT_STATIONARY) == 3 * 8 * 8 * 16


def test_reduction_split_fetches_both_per_tile():
    """Input-channel slices run innermost: with 2 slices the input changes every tile (fetched per channel tile
    in both orders) and so do the weights (per spatial tile); the per-channel constants follow the channel
    tiles only."""
    layer = LayerShape("pointwise", 16, 16, 8, 8, 8, 8, const_bytes=8)
    tile = Tile(4, 4, 8, 8)  # 4 channel tiles, 2 spatial tiles, 2 slices
    for order, constants in ((LoopOrder.INPUT_STATIONARY, 2), (LoopOrder.WEIGHT_STATIONARY, 1)):
        spans = TileSpans.regular(layer, tile, PY)
        found = moved_bytes(layer, spans.in_rows, spans.in_cols, (4, 2, 1, 2), order)
        assert found["input"] == 4 * 8 * 8 * 16 and found["weights"] == 2 * 16 * 16
        assert found["constants"] == constants * 16 * 8


def test_regular_grid_counts_the_traffic_of_the_exact_grid():
    """A 3x3 'same' conv: the search's grid (pads guessed symmetric) moves what the lowering's grid moves."""
    layer = LayerShape("conv", 8, 12, 10, 9, 10, 9, 3, 3, const_bytes=8)
    for tile in (Tile(4, 3, 9, 8), Tile(12, 4, 4, 3), Tile(5, 10, 2, 8)):
        spans = TileSpans.regular(layer, tile, PY)
        counts = tuple(spans.count(d) for d in ("co", "ho", "wo", "ci"))
        assert counts == Grid.of(layer, tile).counts()
        assert moved_bytes(layer, spans.in_rows, spans.in_cols, counts) == l2_l1_bytes(
            layer, Grid.of(layer, tile), (1, 1, 1, 1))


def random_layer(rng: random.Random) -> LayerShape:
    kind = rng.choice(["conv", "pointwise", "depthwise", "linear", "maxpool", "avgpool", "add", "matmul"])
    c_in, c_out = rng.randint(1, 20), rng.randint(1, 20)
    if kind == "linear":
        return LayerShape("linear", c_in, c_out, 1, 1, 1, 1, const_bytes=8)
    if kind == "matmul":
        return LayerShape("matmul", c_in, c_out, 6, 1, 6, 1, rows_per_batch=3)
    k, s = (1, 1) if kind in ("pointwise", "add") else (rng.choice([2, 3]), rng.choice([1, 2]))
    h, w = rng.randint(k, 12), rng.randint(k, 12)
    c_out = c_out if kind in ("conv", "pointwise") else c_in
    return LayerShape(kind, c_in, c_out, h, w, (h - k) // s + 1, (w - k) // s + 1, k, k, s, s,
                      const_bytes=8 if kind in ("conv", "pointwise", "depthwise") else 0)


@pytest.mark.parametrize("seed", range(10))
def test_numpy_backend_equals_python(seed: int):
    rng = random.Random(seed)
    layer = random_layer(rng)
    model = CostModel()
    grid = np.meshgrid(np.arange(1, layer.c_out + 1), np.arange(1, layer.h_out + 1), np.arange(1, layer.w_out + 1),
                       indexing="ij")
    co, ho, wo = (a.ravel() for a in grid)
    ci = np.full_like(co, max(1, layer.c_in // 2)) if layer.splits_reduction else co
    many = estimate(layer, Tile(co, ho, wo, ci), TileSpans.regular(layer, Tile(co, ho, wo, ci), NP), 8, True,
                    model, NP)
    for i in rng.sample(range(len(co)), min(20, len(co))):
        tile = Tile(int(co[i]), int(ho[i]), int(wo[i]), int(ci[i]))
        one = estimate(layer, tile, TileSpans.regular(layer, tile, PY), 8, True, model, PY)
        assert np.isclose(np.broadcast_to(many.total_cycles, co.shape)[i], one.total_cycles)
        assert np.broadcast_to(many.l2_l1_bytes, co.shape)[i] == one.l2_l1_bytes


def test_fitted_coefficients():
    data = json.loads(KERNEL_COSTS.read_text())
    assert "bench/fit_kernel_costs.py --write" in data["source"]
    assert set(data["kernels"]) == {"conv", "pointwise", "depthwise", "linear", "maxpool", "add"}
    # A channel outside the 4-channel blocks costs more per MAC than one inside.
    for kind in ("conv", "pointwise"):
        assert data["kernels"][kind]["mac_single"] > data["kernels"][kind]["mac"]


def test_one_channel_tiles_cost_more_per_mac():
    layer = LayerShape("pointwise", 64, 32, 8, 8, 8, 8)
    model = CostModel()

    def compute(co):
        tile = Tile(co, 8, 8, 64)
        return estimate(layer, tile, TileSpans.regular(layer, tile, PY), 8, True, model, PY).compute_cycles

    assert compute(1) > compute(4) > compute(32)


def test_kernel_terms_depthwise_lines_along_the_longer_side():
    terms = kernel_terms("depthwise", 8, 16, 4, 8, 3, 3, 8, PY)
    assert terms["line"] == 8 * 4 // 8 and terms["output"] == terms["line"] * 16


def test_target_dma_figures():
    assert load_target("gap8").dma.l2_l1.bytes_per_cycle == 8
    assert load_target("gap8").dma == DmaCosts()  # the default model is GAP8's


def test_l3_transfers_overlap_the_pipelined_l2_slices():
    """One slice: nothing to overlap (L3 + T). Many: per slice the longer of the two, plus one slice of each
    not overlapped (the first slice's copies in, the last one's tiles / write-back)."""
    assert with_l3_overlap(1000, 400, 1) == 1400
    assert with_l3_overlap(1000, 400, 4) == 3 / 4 * 1000 + 1400 / 4
    assert with_l3_overlap(400, 1000, 4) == 3 / 4 * 1000 + 1400 / 4
    assert max(1000, 400) < with_l3_overlap(1000, 400, 100) < 1000 + 400
