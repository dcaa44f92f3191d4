"""Estimated cycles of a tiled layer: the tiler's objective. No IR here.

A layer's L2↔L1 tiling runs `n` tiles (the product of the tile counts along output channels, rows,
columns and input-channel slices). Per tile, the cluster DMA copies the tile's buffers L2 → L1 and the
output back, and the 8 cores run one kernel call. The estimate, in cluster cycles:

| term | formula | source |
|---|---|---|
| DMA, L2↔L1 | `bytes / l2_l1.bytes_per_cycle + transfers · l2_l1.setup_cycles` | bytes: `traffic.moved_bytes` in the layer's loop order (input- or weight-stationary: which buffer stays in L1 across which loop; the same count as the tile report); bandwidth and setup: the target JSON's `dma` (estimates, see there) |
| transfers | per copy of a buffer (`traffic.copies`: a block the previous tile holds is not copied again): 1 when its tile is one 2-D transfer (whole channels, or whole rows), else one per tile row | how a HWC tile maps onto the cluster DMA's 2-D transfers |
| compute | `Σ over tiles (call + output · outputs + mac · MACs(4-channel blocks) + mac_single · MACs(leftover channels) + im2col · bytes + line · lines)` (lines: depthwise output lines; add: one run per channel) on the busiest core, + `tile_overhead_cycles` per tile | per-kernel-kind coefficients fitted to rv32 instruction counts (`kernel_costs.json`, refit by `bench/fit_kernel_costs.py`); one instruction = one cycle |
| busiest core | conv/pointwise/matmul: pixel pairs split over the cores (pointwise: channel groups of 4 when a tile has fewer pairs than cores); depthwise: (channel, line) pairs, a line the longer of an output row and column; linear: output channels; pools, add: pixels | the kernels' work split (`runtime/kernels/*.c`) |
| double-buffered total | `max(DMA − exposed, compute) + exposed + prologue + epilogue` | tile t+1's copies and tile t−1's write overlap tile t's kernel: per tile the longer of the two (summed over tiles with the per-tile averages); exposed: the DMA of the stationary buffer when it has one L1 slot (`LoopOrder`: copied between two tiles, waited for) |
| prologue / epilogue | the average input copy of one tile (waited for before the first kernel) / the average output copy of one tile (after the last) | |
| single-buffered total | `DMA + compute` | every copy is waited for (also a transpose, double buffering or not: DMA alone, its copies in and out one after the other) |
| L3↔L2 (report only) | `L3 = bytes / l3_l2.bytes_per_cycle + transfers · l3_l2.setup_cycles` (a transfer per tensor and L2 slice); with `s` L2 slices and the L2-level total `T` above, the layer takes `(s − 1)/s · max(L3, T) + (L3 + T)/s` (`with_l3_overlap`) | `tile-layers` pipelines the slices: slice k+1's L3 copies and slice k−1's write-back fly while slice k's tiles run, so per slice (averages) the longer of the two counts, plus one slice's L3 copies (the first's in, the last's out) and one slice's tiles not overlapped; one slice: `L3 + T`. The L3 → L2 copy of whole weights before a layer is counted as if overlapped too (an approximation); the L2 plan, not the L1 tiler, decides these bytes |

The tile grid of the search is regular (`TileSpans.regular`: full tiles plus one ragged tile per dimension,
the padding guessed symmetric from the shapes); the report's is the lowering's exact grid (`TileSpans.of_spans`,
the layer's real pads, tiles nested in L2 slices). The compute term sums the distinct tile sizes exactly; the
DMA/compute overlap uses per-tile averages. The kernels are measured as the project builds them for
rv32imc (plain C, no XpulpV2 SIMD or hardware loops), so on GAP8 itself compute is cheaper than estimated and
DMA weighs more: the estimate ranks tilings, it does not predict GAP8's run time. Expressions take a backend `B` (`model.PY` Python ints,
`model.NP` numpy arrays: the search evaluates a grid of tiles at once).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from dory_mlir.tiling.cost_figures import CostModel
from dory_mlir.tiling.geometry import DMA_KINDS, TILE_DIMS, LayerShape, LoopOrder, input_rows, spans
from dory_mlir.tiling.model import input_extent
from dory_mlir.tiling.traffic import traffic

FEATURES = ("call", "output", "mac", "mac_single", "im2col", "line")
"""The compute terms of one kernel call, per busiest core (see the module docstring)."""


def _ceil(a, b):
    return -(-a // b)


def kernel_terms(kind: str, co, ho, wo, ci, kh: int, kw: int, cores: int, B) -> dict[str, object]:
    """The terms (FEATURES) of one kernel call on a tile, counted on the busiest core."""
    pixels = ho * wo
    taps = kh * kw
    if kind in ("conv", "pointwise", "matmul"):
        pairs, quads = _ceil(pixels, 2), _ceil(co, 4)
        by_channels = B.And(pairs < cores, quads > pairs) if kind != "conv" else False
        pix = B.If(by_channels, pixels, B.Min(pixels, 2 * _ceil(pairs, cores)))
        chans = B.If(by_channels, B.Min(co, 4 * _ceil(quads, cores)), co)
        single = chans % 4
        k = taps * ci
        terms = {"output": pix * chans, "mac": pix * (chans - single) * k, "mac_single": pix * single * k}
        if kind == "conv":
            terms["im2col"] = pix * k
        return terms
    if kind == "linear":
        chans = _ceil(co, cores)
        return {"output": chans, "mac": chans * ci}
    if kind == "depthwise":
        length, lines = B.If(wo >= ho, wo, ho), B.If(wo >= ho, ho, wo)
        per_core = _ceil(co * lines, cores)
        return {"line": per_core, "output": per_core * length, "mac": per_core * length * taps}
    pix = _ceil(pixels, cores)  # pools and add: output pixels, all channels
    if kind == "add":  # a core walks its pixels one channel at a time: a run (requant decoded) per channel
        return {"output": pix * co, "line": co}
    return {"output": pix * co, "mac": pix * co * taps}


def call_cycles(kind: str, co, ho, wo, ci, kh: int, kw: int, cores: int, model: CostModel, B):
    """Estimated cycles of one kernel call (the busiest core)."""
    coef = model.coefficients(kind)
    terms = kernel_terms(kind, co, ho, wo, ci, kh, kw, cores, B)
    return coef.get("call", 0.0) + sum(coef.get(name, 0.0) * value for name, value in terms.items())


@dataclass(frozen=True)
class TileSpans:
    """The tiles of a layer per dimension as (size, how many tiles of that size), and the input rows and
    columns read over all row (column) tiles, padding excluded."""

    co: list[tuple[object, object]]
    ho: list[tuple[object, object]]
    wo: list[tuple[object, object]]
    ci: list[tuple[object, object]]
    in_rows: object
    in_cols: object

    def count(self, dim: str):
        return sum(n for _, n in getattr(self, dim))

    @staticmethod
    def regular(layer: LayerShape, tile, B) -> TileSpans:
        """Full tiles and one ragged last tile per dimension (the search's grid; pads guessed symmetric)."""
        def dim(size, step):
            rest = size % step
            return [(step, size // step), (rest, B.If(rest > 0, 1, 0))]

        ci = tile.ci if layer.splits_reduction else layer.c_in
        return TileSpans(dim(layer.c_out, tile.co), dim(layer.h_out, tile.ho), dim(layer.w_out, tile.wo),
                         dim(layer.c_in, ci), _rows_read(layer.h_out, layer.sh, layer.kh, layer.dh, layer.h_in)[tile.ho],
                         _rows_read(layer.w_out, layer.sw, layer.kw, layer.dw, layer.w_in)[tile.wo])

    @staticmethod
    def of_spans(co, ho, wo, ci, in_rows: int, in_cols: int) -> TileSpans:
        """From the [start, stop) spans of an exact grid (`traffic.Grid`)."""
        def sizes(spans_):
            found: dict[int, int] = {}
            for a, b in spans_:
                found[b - a] = found.get(b - a, 0) + 1
            return sorted(found.items())

        return TileSpans(sizes(co), sizes(ho), sizes(wo), sizes(ci), in_rows, in_cols)


@functools.lru_cache(maxsize=1024)
def _rows_read(size_out: int, stride: int, kernel: int, dilation: int, size_in: int):
    """Per tile size (index), the input rows all tiles of that size read (padding guessed symmetric)."""
    import numpy as np

    pad_begin = (max(0, (size_out - 1) * stride + dilation * (kernel - 1) + 1 - size_in) + 1) // 2
    table = [0] + [sum(input_rows(a, b, stride, kernel, dilation, pad_begin, size_in) for a, b in spans(size_out, t))
                   for t in range(1, size_out + 1)]
    return np.array(table)


def transfers(rows, whole_rows, whole_channels, B):
    """2-D DMA transfers of one copy of a HWC tile of `rows` rows."""
    return B.If(B.Or(whole_rows, whole_channels), 1, rows)


@dataclass(frozen=True)
class Estimate:
    dma_cycles: object
    compute_cycles: object
    total_cycles: object
    l2_l1_bytes: object


def compute_parts(layer: LayerShape, grid: TileSpans, cores: int, model: CostModel, B):
    """The kernel calls' cycles over the spatial and output-channel tiles as (per slice, per input channel):
    a call's terms are affine in its input channels (`kernel_terms`), so the layer's compute is
    `per_slice · slices + per_channel · c_in` whatever the slices' sizes (the search reuses both parts
    for every slice count)."""
    per_slice, per_channel = 0, 0
    for (co, nco), (ho, nho), (wo, nwo) in itertools.product(grid.co, grid.ho, grid.wo):
        calls = nco * nho * nwo
        if layer.splits_reduction:
            fixed = call_cycles(layer.kind, co, ho, wo, 0, layer.kh, layer.kw, cores, model, B)
            slope = call_cycles(layer.kind, co, ho, wo, 1, layer.kh, layer.kw, cores, model, B) - fixed
        else:  # one slice, tied to the output channels
            fixed, slope = call_cycles(layer.kind, co, ho, wo, co, layer.kh, layer.kw, cores, model, B), 0
        per_slice, per_channel = per_slice + calls * fixed, per_channel + calls * slope
    return per_slice, per_channel


def compute_cycles(layer: LayerShape, parts, counts: tuple, model: CostModel):
    """The compute term of a layer tiled in `counts` tiles per dimension (co, ho, wo, ci) from its
    `compute_parts`. It is a lower bound of the estimate's total in either buffering (`estimate`): the search
    drops tiles whose bound is already beyond the cheapest estimate found."""
    per_slice, per_channel = parts
    n_tiles = counts[0] * counts[1] * counts[2] * counts[3]
    return per_slice * counts[3] + per_channel * layer.c_in + n_tiles * model.dma.tile_overhead_cycles


def estimate(layer: LayerShape, tile, grid: TileSpans, cores: int, double_buffer: bool, model: CostModel,
             B, parts=None, order: LoopOrder = LoopOrder.INPUT_STATIONARY, single: str | None = None) -> Estimate:
    """Estimated cycles of the layer tiled as `grid` (interior tile `tile`) in loop order `order`: see the
    module docstring. `parts`: `compute_parts` of the grid when already known; `single`: the buffer kept
    in one L1 slot (its copies are waited for, not overlapped)."""
    counts = tuple(grid.count(d) for d in TILE_DIMS)
    moved, n_copies = traffic(layer, grid.in_rows, grid.in_cols, counts, order, B)
    in_rows = input_extent(tile.ho, layer.sh, layer.kh, layer.dh, layer.h_in, B)
    whole_width, whole_in = tile.wo == layer.w_out, tile.ci == layer.c_in
    per_copy = {"input": transfers(in_rows, whole_width, whole_in, B),
                "output": transfers(tile.ho, whole_width, tile.co == layer.c_out, B)}
    link = model.dma.l2_l1
    dma_in, dma_out, exposed = 0, 0, 0
    for name, nbytes in moved.items():
        cycles = link.cycles(nbytes, n_copies[name] * per_copy.get(name, 1))
        if name == "output":
            dma_out = cycles
        else:
            dma_in = dma_in + cycles
        if name == single:
            exposed = cycles
    compute = compute_cycles(layer, parts if parts is not None else compute_parts(layer, grid, cores, model, B),
                             counts, model)
    n_tiles = counts[0] * counts[1] * counts[2] * counts[3]
    dma = dma_in + dma_out
    if double_buffer and layer.kind not in DMA_KINDS:  # a DMA-only layer's copies wait for each other
        total = B.Max(dma - exposed, compute) + exposed + dma_in / n_tiles + dma_out / n_copies["output"]
    else:
        total = dma + compute
    return Estimate(dma, compute, total, sum(moved.values()))


def with_l3_overlap(l2_total, l3_cycles, slices: int):
    """A layer's estimate with its L3↔L2 transfers (`l3_cycles`) over `slices` pipelined L2 slices whose
    L2-level estimate totals `l2_total` (the L3↔L2 row of the module docstring)."""
    return (slices - 1) / slices * max(l3_cycles, l2_total) + (l3_cycles + l2_total) / slices
