"""Depth-first fusion of two layers, the second reading the first's output: the fused tiling, its estimate
and the decision. No IR here. Two patterns (`fusable`):

- channel-wise: a conv or pointwise layer → a depthwise layer (below);
- row-wise: a depthwise layer → a pointwise layer (1x1, stride 1): a tile of `ho` rows, per tile the
  depthwise kernel computes those rows of all channels into L1 (its input rows with their halo, as its own
  row tiles read them) and the pointwise kernel reads them there for each block of `co` output channels
  (the intermediate rows stay in L1 across the blocks; the depthwise weights and constants, whole, are
  copied once; the pointwise weights and constants per row tile unless there is one block). No recompute.

A depthwise layer's output channels [c, c + t) read only its input channels [c, c + t), which the
producer computes from all of its input channels and its output channels [c, c + t) alone. So the pair
can run tile by tile with the intermediate block kept in L1 (`FusedTile`: a block of `co` channels and
`ho` depthwise output rows over the whole width): per tile the producer computes the intermediate rows the
depthwise tile reads (its halo rows recomputed by the next row tile), into an L1 buffer the depthwise
kernel reads, and only the depthwise output goes back to L2. The intermediate tensor is never written to
L2 nor read back, and needs no L2 buffer.

The fused walk has the two loop orders of a layer (`geometry.LoopOrder`): input-stationary, row tiles
outermost and channel blocks inner, so the producer's input rows (all its input channels, the whole width)
stay in L1 across the channel blocks and the weights and constants of both layers are copied per tile;
or weight-stationary, channel blocks outermost, so a block's weights and constants stay in L1 across the
row tiles and the producer's input rows are copied per tile. A buffer whose block is the previous tile's
is not copied again (one row tile, or one channel block: copied once).

| L1 buffer | bytes | slots |
|---|---|---|
| producer input | `pi · w_in · c_in · in_bytes` (`pi`: input rows of the largest tile's intermediate rows) | 2 unless one row tile |
| producer weights, constants | `co · kh · kw · c_in`, `co · const_bytes` (+ per-tensor) | 2 unless one channel block |
| intermediate | `mi · w_mid · co · out_bytes` (`mi`: the rows the depthwise tile reads, halo included) | 1 (made and used within the tile) |
| depthwise weights, constants | `co · kh · kw`, `co · const_bytes` (+ per-tensor) | 2 unless one channel block |
| output | `ho · w_out · co · out_bytes` | 2 unless one tile |
| im2col | each kernel's scratch (`kernel_abi.im2col_bytes`) | 1 |

The row-wise pattern's buffers: the depthwise input (`hi · w_in · c`, 2 slots unless one row tile), its
weights and constants (whole, 1 slot), the intermediate (`ho · w · c`, 1 slot), the pointwise weights and
constants (`co · c`, 2 slots unless one block), the output (`ho · w · co`, 2 slots unless one tile) and the
depthwise kernel's im2col.

The estimate is `cost.py`'s, over the fused tiles: per tile both kernel calls (`cost.call_cycles`) and two
`tile_overhead_cycles` (two kernels, their barriers), DMA of all copies at the target's L2↔L1 figures,
double-buffered `max(DMA, compute)` + the average input copy of one tile + the average output copy.
Padding is guessed symmetric from the shapes (as the search's grid, `cost.TileSpans.regular`).
The decision (`choose`) compares it with the two layers tiled on their own (`solve.solve_l1`, the tile pass's
L1 objective, L3 transfers excluded in both): fused when its estimate is lower beyond the tiler's tie
(`solve.TIE`), or within the tie and moving fewer L2↔L1 bytes.

This is the tiling model's half of fusion: the lowering does not run fused groups yet (see the README).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from dory_mlir.kernel_abi import KERNEL_OF, KERNELS, im2col_bytes
from dory_mlir.tiling.cost import call_cycles
from dory_mlir.tiling.geometry import (
    LayerShape, LoopOrder, activation_tile_bytes, align, buffer_slots, input_rows, spans, weight_tile_bytes,
)
from dory_mlir.tiling.memory_plan import NetLayer, NetTensor
from dory_mlir.tiling.model import PY, L1Target, Tile
from dory_mlir.tiling.solve import TIE, solve_l1
from dory_mlir.tiling.traffic import Grid, l2_l1_bytes

PRODUCER_KINDS = ("conv", "pointwise")


def fusable(producer: LayerShape, consumer: LayerShape) -> bool:
    """One of the two patterns (the module docstring): the consumer reads exactly the producer's output (same
    channels, rows, columns, element width), and neither takes requant constants that vary over the rows."""
    channel_wise = producer.kind in PRODUCER_KINDS and consumer.kind == "depthwise"
    row_wise = (producer.kind == "depthwise" and consumer.kind == "pointwise"
                and (consumer.kh, consumer.kw, consumer.sh, consumer.sw) == (1, 1, 1, 1))
    return ((channel_wise or row_wise)
            and (consumer.c_in, consumer.h_in, consumer.w_in) == (producer.c_out, producer.h_out, producer.w_out)
            and consumer.in_bytes == producer.out_bytes
            and not producer.constants_vary_over_rows and not consumer.constants_vary_over_rows)


def row_wise(producer: LayerShape) -> bool:
    """A `fusable` pair of the row-wise pattern (depthwise → pointwise)."""
    return producer.kind == "depthwise"


def fusable_pairs(layers: list[NetLayer], tensors: dict[str, NetTensor]) -> list[tuple[NetLayer, NetLayer]]:
    """The (producer, consumer) pairs of a network that may run fused: the consumer is the next layer, its
    one input is the producer's output and no other layer reads it, nor is it a network output
    (`NetTensor.last`: the last reader; past the layers for an output)."""
    return [(p, d) for p, d in zip(layers, layers[1:])
            if d.inputs == (p.output,) and tensors[p.output].last == d.index and fusable(p.shape, d.shape)]


def symmetric_pad(size_out: int, stride: int, kernel: int, dilation: int, size_in: int) -> int:
    """The leading padding of a layer guessed symmetric from its shapes (`cost._rows_read`'s guess)."""
    return (max(0, (size_out - 1) * stride + dilation * (kernel - 1) + 1 - size_in) + 1) // 2


@dataclass(frozen=True)
class FusedTile:
    co: int
    """Channels of a block: channel-wise, the producer's output channels = the depthwise layer's channels;
    row-wise, the pointwise layer's output channels."""
    ho: int
    """Output rows of a tile of the pair's second layer (all columns)."""
    order: LoopOrder = LoopOrder.INPUT_STATIONARY


@dataclass(frozen=True)
class FusedEstimate:
    tile: FusedTile
    buffers: dict[str, int]
    dma_cycles: float
    compute_cycles: float
    total_cycles: int
    l2_l1_bytes: int


@dataclass(frozen=True)
class FusionChoice:
    """A producer → depthwise pair: the best fused tiling (None: none fits L1), the two layers tiled on
    their own, and whether to fuse."""

    fused: FusedEstimate | None
    unfused_cycles: int
    unfused_bytes: int
    intermediate_bytes: int
    """The intermediate tensor's bytes: its L2 buffer and its L1→L2 write and L2→L1 read when unfused."""

    @property
    def fuse(self) -> bool:
        if self.fused is None:
            return False
        cycles, theirs = self.fused.total_cycles, self.unfused_cycles
        if cycles * (TIE[1] + TIE[0]) < theirs * TIE[1]:
            return True
        tie = cycles * TIE[1] <= theirs * (TIE[1] + TIE[0])
        return tie and self.fused.l2_l1_bytes < self.unfused_bytes


def _row_tiles(producer: LayerShape, consumer: LayerShape, ho: int) -> list[tuple[int, int, int]]:
    """Per depthwise row tile of `ho` rows: (its rows, the intermediate rows it reads, the producer's input
    rows those need), padding excluded."""
    c_pad = symmetric_pad(consumer.h_out, consumer.sh, consumer.kh, consumer.dh, consumer.h_in)
    p_pad = symmetric_pad(producer.h_out, producer.sh, producer.kh, producer.dh, producer.h_in)
    found = []
    for r0, r1 in spans(consumer.h_out, ho):
        first = max(r0 * consumer.sh - c_pad, 0)
        mid = input_rows(r0, r1, consumer.sh, consumer.kh, consumer.dh, c_pad, consumer.h_in)
        found.append((r1 - r0, mid, input_rows(first, first + mid, producer.sh, producer.kh, producer.dh, p_pad,
                                               producer.h_in) if mid else 0))
    return found


def fused_footprint(producer: LayerShape, consumer: LayerShape, tile: FusedTile, target: L1Target) -> dict[str, int]:
    """Bytes of each L1 buffer of the fused walk (the module docstring's table), the largest tile's."""
    if row_wise(producer):
        return _row_wise_footprint(producer, consumer, tile, target)
    rows = _row_tiles(producer, consumer, tile.ho)
    one_row_tile, one_block = len(rows) == 1, tile.co >= consumer.c_out
    mid_rows, in_rows = max(r[1] for r in rows), max(r[2] for r in rows)

    def slots(unchanging: bool) -> int:
        return buffer_slots(unchanging, target.double_buffer)

    def constants(layer: LayerShape) -> int:
        per_channel = slots(one_block) * align(tile.co * layer.const_bytes) if layer.const_bytes else 0
        return per_channel + layer.fixed_const_bytes

    buffers = {
        "input": slots(one_row_tile) * align(activation_tile_bytes(in_rows, producer.w_in, producer.c_in, producer.in_bytes)),
        "weights": slots(one_block) * align(weight_tile_bytes(producer.kind, tile.co, producer.c_in, producer.kh, producer.kw)),
        "constants": constants(producer),
        "intermediate": align(activation_tile_bytes(mid_rows, producer.w_out, tile.co, producer.out_bytes)),
        "dw weights": slots(one_block) * align(weight_tile_bytes("depthwise", tile.co, tile.co, consumer.kh, consumer.kw)),
        "dw constants": constants(consumer),
        "output": slots(one_row_tile and one_block) * align(activation_tile_bytes(tile.ho, consumer.w_out, tile.co, consumer.out_bytes)),
    }
    scratch = [im2col_bytes(KERNEL_OF[producer.kind], target.cores, producer.kh, producer.kw, producer.c_in, in_rows),
               im2col_bytes(KERNEL_OF["depthwise"], target.cores, consumer.kh, consumer.kw, tile.co, mid_rows)]
    buffers["im2col"] = sum(align(s) for s in scratch if s is not None)  # both alive: one allocation per group
    return buffers


def fused_estimate(producer: LayerShape, consumer: LayerShape, tile: FusedTile, target: L1Target) -> FusedEstimate:
    """Estimated cycles and L2↔L1 bytes of the fused walk (the module docstring)."""
    if row_wise(producer):
        return _row_wise_estimate(producer, consumer, tile, target)
    rows = _row_tiles(producer, consumer, tile.ho)
    blocks = spans(consumer.c_out, tile.co)
    costs, link = target.costs, target.costs.dma.l2_l1
    per_channel = producer.kh * producer.kw * producer.c_in + consumer.kh * consumer.kw
    per_block_bytes = per_channel + producer.const_bytes + consumer.const_bytes  # per channel of a block
    # The inner loop's buffer is copied again per outer iteration when it changes (`traffic.fetches`).
    weight_stationary = tile.order is LoopOrder.WEIGHT_STATIONARY
    weights_again = len(rows) if len(blocks) > 1 and not weight_stationary else 1
    input_again = len(blocks) if len(rows) > 1 and weight_stationary else 1
    fixed = producer.fixed_const_bytes + consumer.fixed_const_bytes
    moved_in = (sum(r[2] for r in rows) * producer.w_in * producer.c_in * producer.in_bytes * input_again
                + consumer.c_out * per_block_bytes * weights_again + fixed)
    moved_out = consumer.h_out * consumer.w_out * consumer.c_out * consumer.out_bytes
    copies_per_block = 2 + int(bool(producer.const_bytes)) + int(bool(consumer.const_bytes))
    copies_in = len(rows) * input_again + copies_per_block * len(blocks) * weights_again + int(bool(fixed))
    n_tiles = len(rows) * len(blocks)
    compute = 0.0
    for (ho, mid, _), (c0, c1) in itertools.product(rows, blocks):
        co = c1 - c0
        if mid:
            compute += call_cycles(producer.kind, co, mid, producer.w_out, producer.c_in, producer.kh, producer.kw,
                                   target.cores, costs, PY)
        compute += call_cycles("depthwise", co, ho, consumer.w_out, co, consumer.kh, consumer.kw, target.cores, costs, PY)
    compute += n_tiles * 2 * costs.dma.tile_overhead_cycles
    return _estimate(producer, consumer, tile, target, (moved_in, copies_in), moved_out, n_tiles, compute)


def _estimate(producer: LayerShape, consumer: LayerShape, tile: FusedTile, target: L1Target,
              moved_in: tuple[int, int], moved_out: int, n_tiles: int, compute: float) -> FusedEstimate:
    """The fused walk's estimate from its input bytes and copies, output bytes (a copy per tile), tiles and
    compute cycles: `cost.estimate`'s double-buffered total."""
    link = target.costs.dma.l2_l1
    dma_in, dma_out = link.cycles(*moved_in), link.cycles(moved_out, n_tiles)
    dma = dma_in + dma_out
    total = max(dma, compute) + dma_in / n_tiles + dma_out / n_tiles if target.double_buffer else dma + compute
    return FusedEstimate(tile, fused_footprint(producer, consumer, tile, target), dma, compute, round(total),
                         moved_in[0] + moved_out)


def _dw_rows(dw: LayerShape, ho: int) -> list[tuple[int, int]]:
    """Per row tile of `ho` depthwise output rows: (its rows, the input rows it reads, padding excluded)."""
    pad = symmetric_pad(dw.h_out, dw.sh, dw.kh, dw.dh, dw.h_in)
    return [(r1 - r0, input_rows(r0, r1, dw.sh, dw.kh, dw.dh, pad, dw.h_in)) for r0, r1 in spans(dw.h_out, ho)]


def _row_wise_footprint(dw: LayerShape, pw: LayerShape, tile: FusedTile, target: L1Target) -> dict[str, int]:
    rows = _dw_rows(dw, tile.ho)
    one_row_tile, one_block = len(rows) == 1, tile.co >= pw.c_out
    in_rows = max(r[1] for r in rows)

    def slots(unchanging: bool) -> int:
        return buffer_slots(unchanging, target.double_buffer)

    buffers = {
        "input": slots(one_row_tile) * align(activation_tile_bytes(in_rows, dw.w_in, dw.c_in, dw.in_bytes)),
        "dw weights": align(weight_tile_bytes("depthwise", dw.c_out, dw.c_out, dw.kh, dw.kw)),
        "dw constants": align(dw.c_out * dw.const_bytes) + dw.fixed_const_bytes if dw.const_bytes else dw.fixed_const_bytes,
        "intermediate": align(activation_tile_bytes(tile.ho, dw.w_out, dw.c_out, dw.out_bytes)),
        "weights": slots(one_block) * align(weight_tile_bytes("pointwise", tile.co, pw.c_in, 1, 1)),
        "constants": (slots(one_block) * align(tile.co * pw.const_bytes) if pw.const_bytes else 0) + pw.fixed_const_bytes,
        "output": slots(one_row_tile and one_block) * align(activation_tile_bytes(tile.ho, pw.w_out, tile.co, pw.out_bytes)),
    }
    scratch = im2col_bytes(KERNEL_OF["depthwise"], target.cores, dw.kh, dw.kw, dw.c_out, in_rows)
    buffers["im2col"] = align(scratch) if scratch is not None else 0
    return buffers


def _row_wise_estimate(dw: LayerShape, pw: LayerShape, tile: FusedTile, target: L1Target) -> FusedEstimate:
    rows, blocks = _dw_rows(dw, tile.ho), spans(pw.c_out, tile.co)
    costs = target.costs
    # Per row tile: its input rows; the pointwise weights and constants per block, again per row tile unless
    # one block serves every tile; the depthwise weights and constants once.
    pw_again = len(rows) if len(blocks) > 1 else 1
    moved_in = (sum(r[1] for r in rows) * dw.w_in * dw.c_in * dw.in_bytes
                + dw.c_out * (dw.kh * dw.kw + dw.const_bytes) + dw.fixed_const_bytes
                + pw.c_out * (pw.c_in + pw.const_bytes) * pw_again + pw.fixed_const_bytes)
    moved_out = pw.h_out * pw.w_out * pw.c_out * pw.out_bytes
    copies_in = (len(rows) + 1 + int(bool(dw.const_bytes or dw.fixed_const_bytes))
                 + (1 + int(bool(pw.const_bytes))) * len(blocks) * pw_again + int(bool(pw.fixed_const_bytes)))
    compute = 0.0
    for ho, _ in rows:  # the depthwise kernel once per row tile (all channels), the pointwise per block
        compute += call_cycles("depthwise", dw.c_out, ho, dw.w_out, dw.c_out, dw.kh, dw.kw, target.cores, costs, PY)
        compute += costs.dma.tile_overhead_cycles
        for c0, c1 in blocks:
            compute += call_cycles("pointwise", c1 - c0, ho, pw.w_out, pw.c_in, 1, 1, target.cores, costs, PY)
            compute += costs.dma.tile_overhead_cycles
    return _estimate(dw, pw, tile, target, (moved_in, copies_in), moved_out, len(rows) * len(blocks), compute)


def tile_candidates(producer: LayerShape, consumer: LayerShape) -> list[FusedTile]:
    """The smallest tile of each tile count along rows and along channel blocks (a channel block a
    multiple of the conv and pointwise kernels' channel block, or all channels): a smaller tile of the same
    count only needs more L1."""
    block = KERNELS[KERNEL_OF["pointwise"]].channel_block  # the conv, pointwise kernels' block (depthwise: 1)
    c = consumer.c_out
    channel_blocks = sorted({min(c, block * -(-c // (block * n))) for n in range(1, -(-c // block) + 1)})
    rows = sorted({-(-consumer.h_out // n) for n in range(1, consumer.h_out + 1)})
    # row-wise: the intermediate rows stay in L1 across the blocks (input-stationary) only
    orders = (LoopOrder.INPUT_STATIONARY,) if row_wise(producer) else tuple(LoopOrder)
    return [FusedTile(co, ho, order) for co in channel_blocks for ho in rows for order in orders]


def best_fused(producer: LayerShape, consumer: LayerShape, target: L1Target) -> FusedEstimate | None:
    """The cheapest fused tiling that fits L1 (fewer bytes, then the smaller footprint break ties), None if none."""
    best, best_key = None, None
    for tile in tile_candidates(producer, consumer):
        if sum(fused_footprint(producer, consumer, tile, target).values()) > target.l1_bytes:
            continue
        found = fused_estimate(producer, consumer, tile, target)
        key = (found.total_cycles, found.l2_l1_bytes, sum(found.buffers.values()))
        if best_key is None or key < best_key:
            best, best_key = found, key
    return best


def _pads(layer: LayerShape) -> tuple[int, int, int, int]:
    top = symmetric_pad(layer.h_out, layer.sh, layer.kh, layer.dh, layer.h_in)
    left = symmetric_pad(layer.w_out, layer.sw, layer.kw, layer.dw, layer.w_in)
    return top, left, top, left


def unfused(layer: LayerShape, target: L1Target) -> tuple[int, int]:
    """The layer tiled on its own (the tile pass's L1 objective): estimated cycles and L2↔L1 bytes
    (`model.DoesNotFit` when no tile fits: then the network does not compile unfused either)."""
    result = solve_l1(layer, target)
    moved = l2_l1_bytes(layer, Grid.of(layer, Tile(*(getattr(result.tile, d) for d in ("co", "ho", "wo", "ci")))),
                        _pads(layer), result.order)
    return result.objective, sum(moved.values())


def choose(producer: LayerShape, consumer: LayerShape, target: L1Target) -> FusionChoice:
    """The fusion decision for a `fusable` pair (see the module docstring)."""
    if not fusable(producer, consumer):
        raise ValueError(f"not a fusable pair: {producer.describe()} -> {consumer.describe()}")
    (p_cycles, p_bytes), (d_cycles, d_bytes) = unfused(producer, target), unfused(consumer, target)
    intermediate = producer.h_out * producer.w_out * producer.c_out * producer.out_bytes
    return FusionChoice(best_fused(producer, consumer, target), p_cycles + d_cycles, p_bytes + d_bytes, intermediate)


def select_groups(pairs: list[tuple[int, int, FusionChoice]]) -> list[int]:
    """Which of the pairs (producer index, consumer index, choice) to fuse, as positions in `pairs`: a layer
    belongs to one group at most (a chain of three is not modelled), so among the pairs whose choice says
    fuse, the set with no layer in common that saves the most L2↔L1 bytes (their estimated cycles are no
    worse by the tiler's tie rule: bytes decide). The pairs are consecutive layers in network order: a
    dynamic program over them."""
    best: list[tuple[int, list[int]]] = [(0, [])]  # over the first j pairs: (bytes saved, chosen)
    for j, (producer, _, choice) in enumerate(pairs):
        skip = best[-1]
        take = skip
        if choice.fuse:
            saved = choice.unfused_bytes - choice.fused.l2_l1_bytes  # type: ignore[union-attr]
            # the best over the pairs before j that do not use this pair's producer
            k = j
            while k > 0 and pairs[k - 1][1] >= producer:
                k -= 1
            before = best[k]
            if before[0] + saved > skip[0]:
                take = (before[0] + saved, [*before[1], j])
        best.append(take)
    return best[-1][1]

