"""The L1 tiling model of one layer: plain shapes in, the optimal tile out. No IR here.

A layer computes an output tensor of `c_out × h_out × w_out` (HWC in memory). A tile is
`(co, ho, wo, ci)`: output channels, output rows, output columns, and the slice of input
channels (the reduction) that is in L1 at once. The loops run spatial tiles outermost,
then output-channel tiles, then input-channel slices; when `ci < c_in` the int32 partial
sums of the output tile stay in L1 and are requantized after the last slice (DORY cannot
split the reduction, so a layer whose one-output-channel slice does not fit fails there).

Every buffer the kernels need is in L1 at once (`footprint`):

| buffer | bytes | double-buffered when |
|---|---|---|
| input | `hi · wi · ci · in_bytes` (the halo: `hi = min((ho-1)·sh + dh·(kh-1) + 1, h_in)`; an add: two such buffers) | the input tile changes between iterations (unless input-stationary with one slot) |
| weights | `co · kh · kw · ci` (depthwise `co · kh · kw`) | there is more than one weight tile (unless weight-stationary with one slot) |
| output | `ho · wo · co · out_bytes` | there is more than one output tile |
| constants | `co · const_bytes` (bias, per-channel mul/add) + the per-tensor constants | more than one output-channel tile (per-tensor: never) |
| row constants | `co · row_const_bytes` + `row_fixed_const_bytes`: one output row's block of the requant constants that vary over the rows (then `ho = 1`) | more than one output row (per channel: or more than one output-channel tile) |
| partial sums | `ho · wo · co · 4` | never (lives across the input-channel slices) |
| im2col | `kernel_abi.im2col_bytes`: `2 · cores · kh · kw · ci` (PULP-NN: 2 pixels per core) for `dory_conv2d`; `cores · hi · kw` for depthwise | never |

A matmul (two activations, `matmul_footprint`) holds `ho` rows × `ci` of A, the `ci × co` block of B
(the "weights" entry), `ho × co` outputs, its constants (per column, per tensor, one value per batch
slice) and partial sums when K is sliced; its tiles' rows divide a batch slice's M.

A transpose (DMA only, no kernel) holds one buffer of `ho` whole output rows, single: its rows come in by
one strided copy and go back out from it (`geometry.transpose_tile_rows` says which `ho` make one copy).

Each buffer is rounded up to `ALIGN` bytes. Border tiles are never larger than the
interior tile, so the footprint of the interior tile bounds every tile.

The objective (minimized, `solve.py`) is the estimated cycles of the layer (`cost.py`: DMA and compute
per tile, double buffering), ties (estimates within 2 %, `solve.TIE`) broken toward fewer L2↔L1 bytes;
no bonus terms: L1 use, tile shapes and the reduction split follow from the estimate. Among the legal tiles, those whose
output channels are a multiple of the kernel's channel block (`kernel_abi`: 4 for the blocked conv,
pointwise and linear kernels) or all of them come first (`blocked`): a ragged block is computed
channel by channel.

The same expressions serve three backends: Python ints (checks, brute-force tests), numpy arrays (the
search over a grid of tiles) and Z3 terms (`certify.Z3Terms`: the proof that every tile of the chosen
grid, border tiles included, fits L1), so they cannot disagree. Z3 certifies this memory contract, not
the optimality of the estimate (that is the exhaustive search's, checked against brute force).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dory_mlir.kernel_abi import KERNEL_OF, KERNELS, acc_bytes, im2col_bytes
from dory_mlir.tiling.cost_figures import CostModel
from dory_mlir.tiling.geometry import (
    ALIGN, DMA_KINDS, ROW_KINDS, LayerShape, LoopOrder, transpose_tile_rows, activation_tile_bytes, buffer_slots,
    weight_tile_bytes,
)

@dataclass(frozen=True)
class L1Target:
    """The L1 side of the target: bytes the tiler may use, cores, double buffering."""

    l1_bytes: int
    cores: int = 8
    double_buffer: bool = True
    costs: CostModel = CostModel()
    """DMA figures and kernel coefficients of the cycle estimate (the objective)."""


@dataclass(frozen=True)
class Tile:
    co: int
    ho: int
    wo: int
    ci: int


class _Python:
    """Backend over Python ints."""

    @staticmethod
    def Divides(n: int, x):  # noqa: N802
        return n % x == 0

    @staticmethod
    def align(value):
        return -(-value // ALIGN) * ALIGN

    @staticmethod
    def If(cond, a, b):  # noqa: N802 - mirrors np.where
        return a if cond else b

    @staticmethod
    def And(*conds):  # noqa: N802
        return all(conds)

    @staticmethod
    def Or(*conds):  # noqa: N802
        return any(conds)

    @staticmethod
    def Min(a, b):  # noqa: N802
        return min(a, b)

    @staticmethod
    def Max(a, b):  # noqa: N802
        return max(a, b)


class _NumPy(_Python):
    """Backend over numpy arrays: evaluates a whole grid of tiles at once (the search)."""

    If = staticmethod(np.where)

    @staticmethod
    def And(*conds):  # noqa: N802
        return np.logical_and.reduce(np.broadcast_arrays(*conds))

    @staticmethod
    def Or(*conds):  # noqa: N802
        return np.logical_or.reduce(np.broadcast_arrays(*conds))

    Min = staticmethod(np.minimum)
    Max = staticmethod(np.maximum)

    @staticmethod
    def align(value):
        # the same rounding as `_Python.align` by a mask (ALIGN is a power of two): a third of the time
        # of a floor division over the search's arrays
        return (value + (ALIGN - 1)) & -ALIGN


PY = _Python()
NP = _NumPy()


def input_extent(out: int, stride: int, kernel: int, dilation: int, size: int, B=PY):
    """Input rows (or columns) an output tile of `out` rows reads, clamped to the input."""
    return B.Min((out - 1) * stride + dilation * (kernel - 1) + 1, size)


def footprint(layer: LayerShape, tile, target: L1Target, B=PY, single: str | None = None) -> dict[str, object]:
    """Bytes of each L1 buffer for a tile (B: the PY or NP backend). `single`: the buffer ("input" or
    "weights": the loop order's stationary one) kept in one slot although it changes (`LoopOrder`)."""
    co, ho, wo, ci = tile.co, tile.ho, tile.wo, tile.ci
    db = 2 if target.double_buffer else 1

    def slots(unchanging, buffer: str | None = None):
        return buffer_slots(True if buffer is not None and buffer == single else unchanging, target.double_buffer, B.If)

    whole_spatial = B.And(ho == layer.h_out, wo == layer.w_out)
    hi = input_extent(ho, layer.sh, layer.kh, layer.dh, layer.h_in, B)
    wi = input_extent(wo, layer.sw, layer.kw, layer.dw, layer.w_in, B)
    one_input = B.And(whole_spatial, ci == layer.c_in)
    one_weight = B.And(co == layer.c_out, ci == layer.c_in)
    one_output = B.And(whole_spatial, co == layer.c_out)
    if layer.kind == "matmul":
        return matmul_footprint(layer, tile, target, B)
    if layer.kind in DMA_KINDS:
        # The rows come in and go back out from one buffer, single: with no kernel to overlap, a second
        # slot would only overlap the gather of tile t+1 with the write of tile t on the same DMA.
        return {"input": B.align(activation_tile_bytes(ho, 1, co, layer.in_bytes))}
    inputs = 2 if layer.kind == "add" else 1
    buffers: dict[str, object] = {
        # An add's two inputs are two buffers, each aligned (as the lowering allocates them).
        "input": slots(one_input, "input") * inputs * B.align(activation_tile_bytes(hi, wi, ci, layer.in_bytes)),
        "output": slots(one_output) * B.align(activation_tile_bytes(ho, wo, co, layer.out_bytes)),
    }
    if layer.has_weights:
        buffers["weights"] = slots(one_weight, "weights") * B.align(weight_tile_bytes(layer.kind, co, ci, layer.kh, layer.kw))
    if layer.const_bytes or layer.fixed_const_bytes:
        per_channel = slots(co == layer.c_out) * B.align(co * layer.const_bytes) if layer.const_bytes else 0
        buffers["constants"] = per_channel + layer.fixed_const_bytes
    if layer.constants_vary_over_rows:
        # A new block every row (ho = 1): one slot only when the layer (slice) has one row.
        row_slots = 1 if layer.h_out == 1 else db
        per_channel = (B.If(co == layer.c_out, row_slots, db) * B.align(co * layer.row_const_bytes)
                       if layer.row_const_bytes else 0)
        buffers["row constants"] = per_channel + row_slots * layer.row_fixed_const_bytes
    if layer.splits_reduction:
        buffers["partial sums"] = B.If(ci == layer.c_in, 0, B.align(acc_bytes(ho * wo * co)))
    if (im2col := im2col_bytes(KERNEL_OF[layer.kind], target.cores, layer.kh, layer.kw, ci, hi)) is not None:
        buffers["im2col"] = B.align(im2col)
    return buffers


def matmul_footprint(layer: LayerShape, tile, target: L1Target, B=PY) -> dict[str, object]:
    """A matmul tile: `ho` rows of A (× `ci` of K), the `ci` × `co` block of B, `ho` × `co` outputs.

    A buffer is single when its tile never changes: A when the tile holds all of K and either all
    rows or (A shared by every batch slice) the M rows of one slice; B when the tile holds all of
    B's slice and B is shared or there is one row tile. Constants per batch slice change with the
    slice (there is more than one row tile whenever there are several slices).
    """
    co, ho, ci = tile.co, tile.ho, tile.ci

    def slots(unchanging):
        return buffer_slots(unchanging, target.double_buffer, B.If)

    all_rows = ho == layer.h_out
    lhs_rows = B.Or(all_rows, ho == layer.rows_per_batch) if layer.shared_lhs else all_rows
    one_lhs = B.And(ci == layer.c_in, lhs_rows)
    one_rhs = B.And(co == layer.c_out, ci == layer.c_in) if layer.shared_rhs else B.And(
        co == layer.c_out, ci == layer.c_in, all_rows)
    buffers: dict[str, object] = {
        "input": slots(one_lhs) * B.align(activation_tile_bytes(ho, 1, ci, 1)),
        "output": slots(B.And(all_rows, co == layer.c_out)) * B.align(activation_tile_bytes(ho, 1, co, layer.out_bytes)),
        "weights": slots(one_rhs) * B.align(ci * co),
    }
    if layer.const_bytes or layer.fixed_const_bytes or layer.batch_const_bytes:
        per_channel = slots(co == layer.c_out) * B.align(co * layer.const_bytes) if layer.const_bytes else 0
        per_batch = slots(all_rows) * layer.batch_const_bytes
        buffers["constants"] = per_channel + layer.fixed_const_bytes + per_batch
    buffers["partial sums"] = B.If(ci == layer.c_in, 0, B.align(acc_bytes(ho * co)))
    return buffers


def total_bytes(layer: LayerShape, tile, target: L1Target, B=PY, single: str | None = None):
    return sum(footprint(layer, tile, target, B, single).values())


def domain(layer: LayerShape, tile, B=PY) -> list:
    """The legal tiles: bounds, and the channel ties of layers that cannot split the reduction."""
    constraints = [
        tile.co >= 1, tile.co <= layer.c_out,
        tile.ho >= 1, tile.ho <= layer.h_out,
        tile.wo >= 1, tile.wo <= layer.w_out,
        tile.ci >= 1, tile.ci <= layer.c_in,
    ]
    if not layer.splits_reduction:
        constraints.append(tile.ci == tile.co)  # depthwise, pools, add: channel c of input → c of output
    if layer.kind in ROW_KINDS:
        constraints.append(tile.co == layer.c_out)  # a row-wise op reads all the features of a row
    if layer.constants_vary_over_rows:
        constraints.append(tile.ho == 1)  # so that a tile's constants are one row's: per channel or per tensor
    if layer.kind == "matmul":
        constraints.append(B.Divides(layer.rows_per_batch, tile.ho))  # no tile straddles two batch slices
    if layer.kind == "transpose":  # one strided copy per tile
        constraints.append(B.Or(*(tile.ho == rows for rows in transpose_tile_rows(layer.rows_per_batch, layer.row_runs))))
    return constraints


def blocked(layer: LayerShape, tile, B=PY):
    """The output-channel tile is a multiple of the kernel's channel block, or all channels."""
    if layer.kind in DMA_KINDS:
        return tile.co == layer.c_out  # no kernel: whole rows (the domain says so)
    block = KERNELS[KERNEL_OF[layer.kind]].channel_block
    return B.Or(tile.co % block == 0, tile.co == layer.c_out)


def is_legal(layer: LayerShape, tile: Tile, target: L1Target, single: str | None = None) -> bool:
    return all(domain(layer, tile)) and total_bytes(layer, tile, target, single=single) <= target.l1_bytes


@dataclass(frozen=True)
class TilingResult:
    tile: Tile
    objective: int
    """The estimated cycles of the layer (`cost.estimate`, rounded)."""
    buffers: dict[str, int]
    z3_checks: int = 0
    """Z3 proofs of the tile's memory contract (`certify.certify_tile`; 0: not certified)."""
    order: LoopOrder = LoopOrder.INPUT_STATIONARY
    """How the tiles are walked (which buffer stays in L1 across which loop): chosen with the tile."""
    stationary_slots: int = 2
    """L1 slots of the order's stationary buffer (1: its copies are not overlapped, `LoopOrder`)."""

    @property
    def single(self) -> str | None:
        """The buffer kept in one L1 slot although it changes (None: every changing buffer has two)."""
        return self.order.stationary if self.stationary_slots == 1 else None


class DoesNotFit(Exception):
    """No legal tile fits the budget; `buffers` is the smallest footprint any tile needs."""

    def __init__(self, layer: LayerShape, target: L1Target, buffers: dict[str, int]):
        self.layer = layer
        self.budget = target.l1_bytes
        self.buffers = buffers
        self.needed = sum(buffers.values())
        super().__init__(f"smallest L1 tiling needs {self.needed} B > budget {self.budget} B")


def smallest_footprint(layer: LayerShape, target: L1Target, singles: tuple[str | None, ...] = (None,)) -> dict[str, int]:
    """The smallest footprint of any legal tile, with any of `singles` kept in one slot (`footprint`).

    Between the points where a buffer stops being double-buffered (a dimension at its
    full size) the footprint grows with every tile size, so the minimum is at a corner
    where each size is 1 or full.
    """
    # (A matmul's left operand is also single when its tile is one batch slice of a shared operand.)
    rows = {1, layer.h_out} | ({layer.rows_per_batch} if layer.kind == "matmul" else set())
    corners = [
        Tile(co, ho, wo, ci)
        for co in {1, layer.c_out}
        for ho in rows
        for wo in {1, layer.w_out}
        for ci in {1, layer.c_in}
    ]
    legal = [t for t in corners if all(domain(layer, t))]
    # A buffer is kept in one slot only by a tile that holds the whole reduction (`solve.schedules`).
    return min((footprint(layer, t, target, single=single) for t in legal for single in singles
                if single is None or not layer.splits_reduction or t.ci == layer.c_in),
               key=lambda b: sum(b.values()))
