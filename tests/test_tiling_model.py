"""The L1 tiling model alone (no IR): the search's choice against brute force, footprints, no-fit."""

import dataclasses
import itertools
import random

import numpy as np
import pytest

from dory_mlir.tiling.geometry import LayerShape
from dory_mlir.tiling.model import (
    DoesNotFit,
    L1Target,
    Tile,
    TilingResult,
    domain,
    footprint,
    is_legal,
    smallest_footprint,
    total_bytes,
)
from dory_mlir.tiling.solve import choose, keys, schedules, solve_l1


def random_layer(rng: random.Random) -> LayerShape:
    kind = rng.choice(["conv", "pointwise", "depthwise", "linear", "maxpool", "avgpool", "add"])
    c_in = rng.randint(1, 12)
    if kind == "linear":
        return LayerShape("linear", rng.randint(1, 40), rng.randint(1, 12), 1, 1, 1, 1,
                          out_bytes=rng.choice([1, 4]), const_bytes=rng.choice([0, 8]))
    k = 1 if kind in ("pointwise", "add") else rng.choice([1, 2, 3, 5])
    s = 1 if kind == "add" else rng.choice([1, 2])
    h_in, w_in = rng.randint(k, 10), rng.randint(k, 10)
    pad = rng.randint(0, k // 2)
    h_out, w_out = (h_in + 2 * pad - k) // s + 1, (w_in + 2 * pad - k) // s + 1
    c_out = rng.randint(1, 12) if kind in ("conv", "pointwise") else c_in
    const = rng.choice([0, 8, 12]) if kind in ("conv", "pointwise", "depthwise") else 0
    return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, k, k, s, s, const_bytes=const)


def brute_force(layer: LayerShape, target: L1Target) -> dict[str, int] | None:
    """The keys of the tile the solver's rule chooses among every legal tile in every loop order, with its
    stationary buffer in one or two slots (None: none fits)."""
    found = []
    for co, ho, wo, ci in itertools.product(
        range(1, layer.c_out + 1), range(1, layer.h_out + 1), range(1, layer.w_out + 1), range(1, layer.c_in + 1)
    ):
        tile = Tile(co, ho, wo, ci)
        if not all(domain(layer, tile)):
            continue
        # A tile that fits with every changing buffer in two slots is weighed so only (`solve.search`).
        double = total_bytes(layer, tile, target) <= target.l1_bytes
        whole_reduction = not layer.splits_reduction or ci == layer.c_in
        found += [keys(layer, tile, target, order=order, single=single)
                  for order, single in schedules(layer, target, whole_reduction)
                  if (single is None) == double and total_bytes(layer, tile, target, single=single) <= target.l1_bytes]
    if not found:
        return None
    return found[choose({k: np.array([f[k] for f in found]) for k in found[0]})]


def solved_as_brute_force(layer: LayerShape, target: L1Target, seed: int) -> TilingResult | None:
    """The solver's choice, checked against the brute-force one (None: no tile fits, as both agree)."""
    expected = brute_force(layer, target)
    if expected is None:
        with pytest.raises(DoesNotFit) as error:
            solve_l1(layer, target)
        assert error.value.needed > target.l1_bytes
        return None
    result = solve_l1(layer, target)
    assert keys(layer, result.tile, target, order=result.order, single=result.single) == expected, \
        f"seed {seed}: {layer} {target}"
    assert result.objective == expected["cycles"]
    assert is_legal(layer, result.tile, target, result.single)
    return result


@pytest.mark.parametrize("seed", range(60))
def test_choice_equals_brute_force(seed: int):
    rng = random.Random(seed)
    layer = random_layer(rng)
    target = L1Target(rng.choice([64, 128, 256, 512, 1024, 4096]), cores=rng.choice([1, 2, 8]),
                      double_buffer=rng.random() < 0.8)
    solved_as_brute_force(layer, target, seed)


def test_smallest_footprint_is_the_minimum_over_all_tiles():
    rng = random.Random(7)
    for _ in range(30):
        layer = random_layer(rng)
        target = L1Target(10**6)
        tiles = [Tile(*t) for t in itertools.product(range(1, layer.c_out + 1), range(1, layer.h_out + 1),
                                                      range(1, layer.w_out + 1), range(1, layer.c_in + 1))]
        minimum = min(total_bytes(layer, t, target) for t in tiles if all(domain(layer, t)))
        assert sum(smallest_footprint(layer, target).values()) == minimum


def test_conv_footprint_by_hand():
    # 3x3 conv, 16 -> 32 channels, 16x16, tile 8 channels x 4 rows x 16 columns x all 16 inputs.
    layer = LayerShape("conv", 16, 32, 16, 16, 16, 16, 3, 3, const_bytes=8)
    buffers = footprint(layer, Tile(8, 4, 16, 16), L1Target(10**6, cores=8))
    assert buffers == {
        "input": 2 * 6 * 16 * 16,  # 4 rows + 2 halo rows, all 16 columns (clamped), 16 channels
        "output": 2 * 4 * 16 * 8,
        "weights": 2 * 8 * 3 * 3 * 16,
        "constants": 2 * 8 * 8,
        "partial sums": 0,
        "im2col": 2 * 8 * 3 * 3 * 16,
    }


def test_reduction_split_when_one_channel_does_not_fit():
    """A 10000-input FC in 8 kB: DORY fails, the input-channel split fits it."""
    layer = LayerShape("linear", 10000, 2, 1, 1, 1, 1, out_bytes=4)
    result = solve_l1(layer, L1Target(8000))
    assert result.tile.ci < 10000
    assert sum(result.buffers.values()) <= 8000
    assert result.buffers["partial sums"] > 0


def test_does_not_fit_reports_the_smallest_footprint():
    layer = LayerShape("conv", 256, 256, 18, 18, 18, 18, 3, 3, const_bytes=8)
    with pytest.raises(DoesNotFit) as error:
        solve_l1(layer, L1Target(100, cores=8))
    assert error.value.needed == sum(smallest_footprint(layer, L1Target(100)).values()) > 100
    assert set(error.value.buffers) >= {"input", "weights", "output", "im2col"}


def random_row_constant_layer(rng: random.Random) -> LayerShape:
    """A layer whose requant constants vary over the output rows (a GEMM's per-row / per-element
    offsets and requantization): one row's block per output channel and/or per tensor."""
    layer = random_layer(rng)
    while layer.kind == "linear":
        layer = random_layer(rng)
    per_channel, fixed = rng.choice([(4, 0), (8, 0), (0, 4), (4, 4), (4, 8)])
    return dataclasses.replace(layer, row_const_bytes=per_channel, row_fixed_const_bytes=fixed)


@pytest.mark.parametrize("seed", range(20))
def test_row_constants_choice_equals_brute_force(seed: int):
    """Tiles of one output row; the row's block of constants double-buffered unless the layer has one row."""
    rng = random.Random(1000 + seed)
    layer = random_row_constant_layer(rng)
    target = L1Target(rng.choice([64, 128, 256, 512, 4096]), cores=rng.choice([1, 8]), double_buffer=rng.random() < 0.8)
    result = solved_as_brute_force(layer, target, seed)
    if result is None:
        return
    assert result.tile.ho == 1
    tiles = [Tile(*t) for t in itertools.product(range(1, layer.c_out + 1), range(1, layer.h_out + 1),
                                                  range(1, layer.w_out + 1), range(1, layer.c_in + 1))]
    minimum = min(total_bytes(layer, t, target) for t in tiles if all(domain(layer, t)))
    assert sum(smallest_footprint(layer, target).values()) == minimum


def test_row_constants_footprint_by_hand():
    # A GEMM of 6 rows, 16 -> 8 features: add [6, 8] (4 B a channel), mul [6, 1] (4 B).
    layer = LayerShape("pointwise", 16, 8, 6, 1, 6, 1, row_const_bytes=4, row_fixed_const_bytes=4)
    target = L1Target(4000)
    assert not all(domain(layer, Tile(8, 2, 1, 16)))
    buffers = footprint(layer, Tile(8, 1, 1, 16), target)
    assert buffers["row constants"] == 2 * 32 + 2 * 4  # a new row every tile: two slots each
    one_row = dataclasses.replace(layer, h_in=1, h_out=1)
    assert footprint(one_row, Tile(8, 1, 1, 16), target)["row constants"] == 32 + 4
    assert footprint(one_row, Tile(4, 1, 1, 16), target)["row constants"] == 2 * 16 + 4


def random_matmul_layer(rng: random.Random) -> LayerShape:
    """A matmul: batch slices of M rows (the tile's rows divide M), K, N, operands shared or not,
    per-column, per-tensor and per-batch-slice constants."""
    m, k, n, batches = rng.randint(1, 8), rng.randint(1, 24), rng.randint(1, 10), rng.randint(1, 3)
    lhs_shared, rhs_shared = rng.random() < 0.3, rng.random() < 0.3
    return LayerShape("matmul", k, n, m if lhs_shared else batches * m, 1, batches * m, 1,
                      out_bytes=rng.choice([1, 4]), const_bytes=rng.choice([0, 8]),
                      fixed_const_bytes=rng.choice([0, 4]), rows_per_batch=m, shared_lhs=lhs_shared,
                      shared_rhs=rhs_shared, batch_const_bytes=rng.choice([0, 8]) if batches > 1 else 0)


@pytest.mark.parametrize("seed", range(40))
def test_matmul_choice_equals_brute_force(seed: int):
    rng = random.Random(1000 + seed)
    layer = random_matmul_layer(rng)
    target = L1Target(rng.choice([64, 128, 256, 512, 1024]), cores=8, double_buffer=rng.random() < 0.8)
    result = solved_as_brute_force(layer, target, seed)
    if result is None:
        return
    assert layer.rows_per_batch % result.tile.ho == 0
    assert sum(smallest_footprint(layer, target).values()) == min(
        total_bytes(layer, Tile(co, ho, 1, ci), target)
        for co in range(1, layer.c_out + 1) for ho in range(1, layer.h_out + 1) for ci in range(1, layer.c_in + 1)
        if all(domain(layer, Tile(co, ho, 1, ci))))


GAP8 = L1Target(36696)


def test_output_channel_tiles_are_kernel_blocks():
    """PenguiNet's layer 2 took 32 tiles of one channel under the old objective; MobileNet's 512 -> 512 two."""
    for layer in (LayerShape("conv", 32, 32, 24, 40, 12, 20, 3, 3, 2, 2, const_bytes=8),
                  LayerShape("pointwise", 512, 512, 8, 8, 8, 8, const_bytes=8)):
        assert solve_l1(layer, GAP8).tile.co % 4 == 0


def test_depthwise_splits_by_channels():
    """Splitting a depthwise layer by channels moves no halo: whole planes of a few channels."""
    layer = LayerShape("depthwise", 32, 32, 64, 64, 64, 64, 3, 3, const_bytes=8)
    tile = solve_l1(layer, GAP8).tile
    assert (tile.ho, tile.wo) == (64, 64) and tile.co < 32
