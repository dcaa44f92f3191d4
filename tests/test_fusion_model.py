"""Depth-first fusion's tiling model (`dory_mlir/tiling/fusion.py`) alone: no IR."""

import pytest

from dory_mlir.tiling.cost_figures import CostModel, DmaCosts, Link
from dory_mlir.tiling.fusion import (
    FusedEstimate, FusedTile, FusionChoice, best_fused, choose, fused_estimate, fused_footprint, fusable, fusable_pairs,
    select_groups, tile_candidates, unfused,
)
from dory_mlir.tiling.memory_plan import NetLayer, NetTensor
from dory_mlir.tiling.geometry import LayerShape, LoopOrder
from dory_mlir.tiling.model import L1Target

POINTWISE = LayerShape("pointwise", 8, 8, 4, 4, 4, 4, const_bytes=8)
DEPTHWISE = LayerShape("depthwise", 8, 8, 4, 4, 4, 4, 3, 3, const_bytes=8)
TARGET = L1Target(36_000, 8, True, CostModel(DmaCosts(Link(8.0, 30.0), Link(1.0, 300.0), 100.0)))


def test_fusable_pairs():
    assert fusable(POINTWISE, DEPTHWISE)
    assert fusable(DEPTHWISE, POINTWISE)  # row-wise
    assert not fusable(DEPTHWISE, LayerShape("conv", 8, 8, 4, 4, 4, 4, 3, 3))  # a 3x3 conv reads a halo of rows
    assert not fusable(POINTWISE, POINTWISE)
    assert not fusable(POINTWISE, LayerShape("depthwise", 16, 16, 4, 4, 4, 4, 3, 3))  # other channels
    assert not fusable(POINTWISE, LayerShape("depthwise", 8, 8, 4, 4, 4, 4, 3, 3, in_bytes=2))  # other width
    with pytest.raises(ValueError, match="not a fusable pair"):
        choose(POINTWISE, POINTWISE, TARGET)


def test_one_tile_moves_every_byte_once_and_never_the_intermediate():
    whole = fused_estimate(POINTWISE, DEPTHWISE, FusedTile(8, 4), TARGET)
    inputs = 4 * 4 * 8 + 8 * 8 + 8 * 8  # producer input, weights, constants
    dw = 8 * 9 + 8 * 8  # depthwise weights, constants
    assert whole.l2_l1_bytes == inputs + dw + 4 * 4 * 8
    # One tile: every buffer in one slot, the intermediate (4 rows x 4 columns x 8 channels) in L1.
    assert whole.buffers["intermediate"] == 4 * 4 * 8
    assert whole.buffers["input"] == 4 * 4 * 8 and whole.buffers["output"] == 4 * 4 * 8
    # Unfused, the intermediate goes L1 → L2 and back: 2 x 128 B more (the layers' own tilings are one tile).
    assert unfused(POINTWISE, TARGET)[1] + unfused(DEPTHWISE, TARGET)[1] == whole.l2_l1_bytes + 2 * 4 * 4 * 8


def test_row_tiles_recompute_the_halo_rows():
    """Two row tiles of 2 depthwise rows each read 3 intermediate rows (pad 1): the producer computes 6 rows
    for 4, and reads its input rows per row tile (input-stationary: once per row tile)."""
    rows = fused_estimate(POINTWISE, DEPTHWISE, FusedTile(8, 2), TARGET)
    assert rows.buffers["intermediate"] == 3 * 4 * 8
    assert rows.buffers["input"] == 2 * 3 * 4 * 8  # two slots: the next row tile's rows in flight
    inputs = 6 * 4 * 8 + 8 * 8 + 8 * 8 + 8 * 9 + 8 * 8  # weights and constants once: one channel block
    assert rows.l2_l1_bytes == inputs + 4 * 4 * 8
    whole = fused_estimate(POINTWISE, DEPTHWISE, FusedTile(8, 4), TARGET)
    assert rows.compute_cycles > whole.compute_cycles


def test_loop_order_decides_what_is_fetched_again():
    """Two row tiles x two channel blocks: input-stationary copies the weights and constants per row tile,
    weight-stationary copies the producer's input rows per channel block."""
    per_channel = 8 + 8 + 9 + 8  # producer weights and constants, depthwise weights and constants
    by_input = fused_estimate(POINTWISE, DEPTHWISE, FusedTile(4, 2, LoopOrder.INPUT_STATIONARY), TARGET)
    by_weights = fused_estimate(POINTWISE, DEPTHWISE, FusedTile(4, 2, LoopOrder.WEIGHT_STATIONARY), TARGET)
    once = 6 * 4 * 8 + 8 * per_channel + 4 * 4 * 8
    assert by_input.l2_l1_bytes == once + 8 * per_channel
    assert by_weights.l2_l1_bytes == once + 6 * 4 * 8


def test_footprint_counts_slots():
    two_blocks = fused_footprint(POINTWISE, DEPTHWISE, FusedTile(4, 4), TARGET)
    assert two_blocks["input"] == 4 * 4 * 8  # one row tile: copied once
    assert two_blocks["weights"] == 2 * 4 * 8 and two_blocks["dw weights"] == 2 * 4 * 9
    assert two_blocks["intermediate"] == 4 * 4 * 4  # made and used within the tile: one slot
    assert two_blocks["output"] == 2 * 4 * 4 * 4


def test_candidates_are_blocked_and_cover_every_count():
    wide = LayerShape("pointwise", 8, 40, 6, 6, 6, 6)
    dw = LayerShape("depthwise", 40, 40, 6, 6, 6, 6, 3, 3)
    tiles = tile_candidates(wide, dw)
    assert all(t.co % 4 == 0 or t.co == 40 for t in tiles)
    # every block count a multiple of 4 makes, each by its smallest block
    assert {-(-40 // t.co) for t in tiles} == {-(-40 // co) for co in range(4, 41, 4)}
    assert min(t.co for t in tiles if -(-40 // t.co) == 3) == 16
    assert {t.ho for t in tiles} == {1, 2, 3, 6}  # the smallest rows of each row-tile count


def test_best_fused_fits_l1_and_none_when_nothing_fits():
    found = best_fused(POINTWISE, DEPTHWISE, TARGET)
    assert found is not None and sum(found.buffers.values()) <= TARGET.l1_bytes
    assert found.tile.co == 8 and found.tile.ho == 4  # everything fits: one tile
    tiny = L1Target(200, 8, True, TARGET.costs)
    assert best_fused(POINTWISE, DEPTHWISE, tiny) is None


def test_choice_fuses_when_cheaper_and_not_when_the_halo_costs_more():
    small = choose(POINTWISE, DEPTHWISE, TARGET)
    assert small.fuse and small.fused.l2_l1_bytes < small.unfused_bytes
    assert small.intermediate_bytes == 4 * 4 * 8
    assert choose(DEPTHWISE, POINTWISE, TARGET).fuse  # row-wise too
    # A large feature map: the fused tiles must be small, the halo rows recomputed: not worth it.
    big_pw = LayerShape("pointwise", 64, 128, 32, 32, 32, 32, const_bytes=8)
    big_dw = LayerShape("depthwise", 128, 128, 32, 32, 32, 32, 3, 3, const_bytes=8)
    big = choose(big_pw, big_dw, L1Target(36_000, 8, True, CostModel()))
    assert not big.fuse


def test_network_pairs_need_the_intermediate_read_by_the_depthwise_layer_alone():
    conv = LayerShape("conv", 8, 8, 4, 4, 4, 4, 3, 3, const_bytes=8)
    layers = [NetLayer(0, "pw", POINTWISE, ("input",), "t0"), NetLayer(1, "dw", DEPTHWISE, ("t0",), "t1"),
              NetLayer(2, "conv", conv, ("t1",), "t2"), NetLayer(3, "dw2", DEPTHWISE, ("t2",), "t3")]

    def tensors(**last: int) -> dict[str, NetTensor]:
        return {name: NetTensor(name, 128, 4, first, last.get(name, first + 1))
                for name, first in (("input", -1), ("t0", 0), ("t1", 1), ("t2", 2), ("t3", 3))}

    assert [(p.name, d.name) for p, d in fusable_pairs(layers, tensors())] == [("pw", "dw"), ("conv", "dw2")]
    # t0 also read by a later layer (a residual branch), t2 a network output: not fusable
    assert fusable_pairs(layers, tensors(t0=3, t2=4)) == []


def test_row_wise_one_tile_moves_every_byte_once_and_never_the_intermediate():
    whole = fused_estimate(DEPTHWISE, POINTWISE, FusedTile(8, 4), TARGET)
    dw = 4 * 4 * 8 + 8 * 9 + 8 * 8  # depthwise input, weights, constants
    pw = 8 * 8 + 8 * 8  # pointwise weights, constants
    assert whole.l2_l1_bytes == dw + pw + 4 * 4 * 8
    assert whole.buffers["intermediate"] == 4 * 4 * 8 and whole.buffers["dw weights"] == 8 * 9
    assert unfused(DEPTHWISE, TARGET)[1] + unfused(POINTWISE, TARGET)[1] == whole.l2_l1_bytes + 2 * 4 * 4 * 8


def test_row_wise_tiles_reread_the_input_halo_and_the_pointwise_blocks_per_row_tile():
    """Two row tiles (3 input rows each, pad 1) x two blocks of 4 output channels: the depthwise weights and
    constants once, the pointwise's per row tile; the depthwise kernel runs once per row tile."""
    tiled = fused_estimate(DEPTHWISE, POINTWISE, FusedTile(4, 2), TARGET)
    assert tiled.l2_l1_bytes == 6 * 4 * 8 + 8 * 9 + 8 * 8 + 2 * 8 * (8 + 8) + 4 * 4 * 8
    assert tiled.buffers["intermediate"] == 2 * 4 * 8  # the tile's rows, all channels: no halo
    assert tiled.buffers["weights"] == 2 * 4 * 8 and tiled.buffers["output"] == 2 * 2 * 4 * 4
    assert all(t.order is LoopOrder.INPUT_STATIONARY for t in tile_candidates(DEPTHWISE, POINTWISE))


def test_select_groups_puts_a_layer_in_one_group_and_saves_the_most_bytes():
    def choice(saved: int, fuse: bool = True) -> FusionChoice:
        fused = FusedEstimate(FusedTile(4, 1), {}, 0.0, 0.0, 100, 1000 - saved) if fuse else None
        return FusionChoice(fused, 100, 1000, 0)

    # a chain 0-1-2-3: the pairs (0,1) and (2,3) together save more than (1,2) alone
    chain = [(0, 1, choice(300)), (1, 2, choice(500)), (2, 3, choice(300))]
    assert select_groups(chain) == [0, 2]
    chain[1] = (1, 2, choice(700))
    assert select_groups(chain) == [1]
    assert select_groups([(0, 1, choice(300, fuse=False)), (1, 2, choice(200))]) == [1]
    assert select_groups([]) == []
