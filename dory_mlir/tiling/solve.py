"""Solving the L1 tiling model: an exhaustive vectorized search for the cheapest tile.

The objective is the estimated cycles of the layer (`cost.py`) for a tile and a loop order
(`geometry.LoopOrder`: each tile is weighed input- and weight-stationary); estimates within `TIE` of the
cheapest are a tie (the fitted kernel model is ±10 %, the DMA figures are estimates: a smaller difference
means nothing), broken toward fewer L2↔L1 bytes, then fewer cycles, then the smaller footprint. Tiles
whose output channels are a multiple of the kernel's channel block (`model.blocked`) come first when any
fits. The search evaluates the model (numpy backend) over every (co, ho, wo) for each input-channel slice
count: for a given number of slices the estimate does not depend on the slice size (the MACs and bytes are
linear in it, the copies and calls are counted per slice), and the footprint grows with it, so the
smallest slice of each count (`ci_candidates`) is the only one to try. The result is the exact choice of
this rule over every legal tile (the tests compare it with brute force).

Z3 does not prove that choice optimal (the estimate is a float model with table lookups: the exhaustive
search and the brute-force tests stand for that); it certifies the memory contract of the chosen tile
(`certify.certify_tile`): every tile of its grid, border tiles included, is in the model's domain and fits
the L1 budget. A counterexample is an internal error.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dory_mlir.tiling import solve_cache
from dory_mlir.tiling.certify import certify_tile
from dory_mlir.tiling.cost import TileSpans, compute_cycles, compute_parts, estimate
from dory_mlir.tiling.geometry import TILE_DIMS, LoopOrder
from dory_mlir.tiling.model import (
    NP,
    PY,
    DoesNotFit,
    L1Target,
    LayerShape,
    Tile,
    TilingResult,
    blocked,
    domain,
    footprint,
    smallest_footprint,
    total_bytes,
)

SEED_TILES = 256
"""How many tiles of least compute the search estimates first: their cheapest estimate bounds the rest."""

SPLIT_BATCH = 1 << 16
"""About how many (tile, input-channel slice) pairs of split reductions one vectorized evaluation weighs."""

TIE = (1, 50)
"""Estimates within 1/50 (2 %) of the cheapest tile's are a tie: `cycles · 50 ≤ best · 51`."""


def ci_candidates(layer: LayerShape) -> list[int] | None:
    """The input-channel slices worth trying: the smallest of each slice count (None: ci is tied to co)."""
    if not layer.splits_reduction:
        return None
    return sorted({-(-layer.c_in // n) for n in range(1, layer.c_in + 1)}, reverse=True)


def loop_orders(layer: LayerShape) -> tuple[LoopOrder, ...]:
    """The loop orders the search weighs (a matmul walks its rows outermost: `traffic`)."""
    return (LoopOrder.INPUT_STATIONARY,) if layer.kind == "matmul" else tuple(LoopOrder)


def keys(layer: LayerShape, tile, target: L1Target, B=PY, parts=None, footprint_key: bool = True,
         grid: TileSpans | None = None, order: LoopOrder = LoopOrder.INPUT_STATIONARY,
         single: str | None = None) -> dict[str, object]:
    """What the choice compares for a tile walked in `order` (`single`: the buffer kept in one slot): blocked
    (1 when the tile is), estimated cycles (rounded), bytes, footprint. (`parts`, `grid`: the tile's
    `compute_parts` and `TileSpans.regular` when already known.)"""
    grid = grid or TileSpans.regular(layer, tile, B)
    found = estimate(layer, tile, grid, target.cores, target.double_buffer, target.costs, B, parts, order, single)
    cycles = np.rint(found.total_cycles).astype(np.int64) if B is NP else round(found.total_cycles)
    chosen = {"blocked": B.If(blocked(layer, tile, B), 1, 0), "cycles": cycles, "bytes": found.l2_l1_bytes}
    return chosen | ({"footprint": total_bytes(layer, tile, target, B, single)} if footprint_key else {})


def choose(found: dict[str, np.ndarray]) -> int:
    """The index of the chosen tile among legal tiles' `keys` (see the module docstring)."""
    pool = _window(found)
    index = np.flatnonzero(pool)
    ranked = np.lexsort([found[k][index] for k in ("footprint", "cycles", "bytes")])
    return int(index[ranked[0]])


def _window(found: dict[str, np.ndarray]) -> np.ndarray:
    """The tiles that may be chosen: blocked ones if any, within `TIE` of the cheapest of them."""
    pool = found["blocked"] == 1 if found["blocked"].any() else np.ones_like(found["cycles"], bool)
    best = found["cycles"][pool].min()
    return pool & (found["cycles"] * TIE[1] <= best * (TIE[1] + TIE[0]))


def _largest_fitting_slice(layer: LayerShape, target: L1Target, co, ho, wo) -> np.ndarray:
    """Per tile, the largest input-channel slice below c_in that fits (0 if none): below c_in the
    footprint grows with the slice, so a vectorized bisection finds it."""
    lo, hi = np.zeros_like(co), np.full_like(co, layer.c_in - 1)
    while (lo < hi).any():
        mid = (lo + hi + 1) // 2
        fits = total_bytes(layer, Tile(co, ho, wo, np.maximum(mid, 1)), target, NP) <= target.l1_bytes
        lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid - 1)
    return lo


def _pick(sizes: list[tuple], shape: tuple[int, ...], rows: np.ndarray) -> list[tuple]:
    """One dimension of a `TileSpans` of the searched grid (arrays of `shape`, or scalars), at the tiles `rows`."""
    return [tuple(np.broadcast_to(v, shape)[rows] for v in pair) for pair in sizes]


def schedules(layer: LayerShape, target: L1Target, whole_reduction: bool = True) -> list[tuple[LoopOrder, str | None]]:
    """The (loop order, buffer kept in one slot) pairs the search weighs: each order of `loop_orders` with
    every changing buffer double-buffered, and with its stationary buffer in one slot (`LoopOrder`). A tile
    that splits the reduction (`whole_reduction` false) is walked input-stationary with two slots only:
    its input and weights both change on every tile in either order (the orders differ in the per-channel
    constants alone), so no buffer is stationary."""
    if not whole_reduction:
        return [(LoopOrder.INPUT_STATIONARY, None)]
    found: list[tuple[LoopOrder, str | None]] = [(order, None) for order in loop_orders(layer)]
    if target.double_buffer and layer.kind != "matmul":
        found += [(order, order.stationary) for order in loop_orders(layer)
                  if order.stationary == "input" or layer.has_weights]
    return found


def search(layer: LayerShape, target: L1Target) -> tuple[Tile, LoopOrder, str | None, int] | None:
    """The chosen legal tile, its loop order, the buffer it keeps in one slot and its estimated cycles,
    searched exhaustively (every tile in every one of its `schedules`). A tile that fits with every changing
    buffer double-buffered is only weighed so: one slot less saves nothing then and exposes the copies."""
    co, ho, wo = (a.ravel() for a in np.meshgrid(
        np.arange(1, layer.c_out + 1), np.arange(1, layer.h_out + 1), np.arange(1, layer.w_out + 1), indexing="ij"))
    whole = Tile(co, ho, wo, co if not layer.splits_reduction else np.full_like(co, layer.c_in))
    # The domain constrains ci only by its bounds (or ties it to co), whatever the candidate.
    legal_spatial = np.logical_and.reduce(np.broadcast_arrays(*domain(layer, whole, NP)))
    plans = schedules(layer, target)
    singles = list(dict.fromkeys(single for _, single in plans))

    def fits(tile: Tile, single: str | None) -> np.ndarray:
        return total_bytes(layer, tile, target, NP, single) <= target.l1_bytes

    two_slots = fits(whole, None)  # with every input channel (with theirs when ci is tied to co)
    fits_whole = two_slots.copy()  # a tile that fits with no slice (or one buffer in one slot) fits with none
    if layer.splits_reduction and layer.c_in > 1:
        fits_whole |= fits(Tile(co, ho, wo, np.ones_like(co)), None)
    for single in singles[1:]:  # one slot: only with all input channels (`schedules`)
        rest = np.flatnonzero(~fits_whole)
        fits_whole[rest] = fits(Tile(*(getattr(whole, d)[rest] for d in TILE_DIMS)), single)
    keep = legal_spatial & fits_whole
    channel_blocked = np.broadcast_to(blocked(layer, Tile(co, ho, wo, co), NP), co.shape)
    if (keep & channel_blocked).any():
        keep &= channel_blocked  # a blocked tile beats any other (`_window`): the others need no estimate
    co, ho, wo = co[keep], ho[keep], wo[keep]
    candidates = ci_candidates(layer) or [None]
    # The tiles that fit with all input channels (with theirs when ci is tied to co): with two slots, and
    # where those do not fit, with a buffer in one slot; the largest slice below c_in that fits (two slots).
    every_ci = Tile(co, ho, wo, np.full_like(co, layer.c_in) if layer.splits_reduction else co)
    fits_all = {None: two_slots[keep]}
    tight = np.flatnonzero(~fits_all[None])
    for single in singles[1:]:
        fits_all[single] = np.zeros_like(co, bool)
        fits_all[single][tight] = fits(Tile(*(getattr(every_ci, d)[tight] for d in TILE_DIMS)), single)
    largest = _largest_fitting_slice(layer, target, co, ho, wo) if layer.splits_reduction else None
    spatial = TileSpans.regular(layer, Tile(co, ho, wo, co), NP)
    parts = [np.broadcast_to(p, co.shape) for p in compute_parts(layer, spatial, target.cores, target.costs, NP)]

    pool: list[dict[str, np.ndarray]] = []

    spatial_counts = [np.broadcast_to(spatial.count(d), co.shape) for d in ("co", "ho", "wo")]

    def least_cycles(rows: np.ndarray, ci: np.ndarray | None) -> np.ndarray:
        """A lower bound of the tiles' estimates in any plan: their compute (`compute_cycles`)."""
        slices = 1 if ci is None else -(-layer.c_in // ci)
        counts = (*(n[rows] for n in spatial_counts), slices)
        return np.rint(compute_cycles(layer, [p[rows] for p in parts], counts, target.costs))

    def weigh(rows: np.ndarray, ci: np.ndarray | None, single: str | None) -> None:
        """Adds the estimates of the tiles `rows` (indices into co, ho, wo) with input-channel slices `ci`
        (None: all, or tied to co) to the pool, in every plan of `single` that `ci` allows — but not those
        of tiles whose compute alone is beyond the window of the cheapest estimate already in the pool
        (exact: that estimate only falls, and all tiles weighed are alike blocked or not)."""
        if pool:
            within = least_cycles(rows, ci) * TIE[1] <= pool[0]["cycles"].min() * (TIE[1] + TIE[0])
            rows, ci = rows[within], (ci if ci is None else ci[within])
            if not rows.size:
                return
        whole_reduction = ci is None or bool((ci == layer.c_in).all())
        here = schedules(layer, target, whole_reduction)
        if ci is None:
            tile = Tile(co[rows], ho[rows], wo[rows], every_ci.ci[rows])
            ci_spans = _pick(spatial.ci, co.shape, rows)
        else:
            tile = Tile(co[rows], ho[rows], wo[rows], ci)
            rest = layer.c_in % ci
            ci_spans = [(ci, layer.c_in // ci), (rest, (rest > 0).astype(ci.dtype))]
        grid = TileSpans(*(_pick(getattr(spatial, d), co.shape, rows) for d in ("co", "ho", "wo")), ci_spans,
                         spatial.in_rows[rows], spatial.in_cols[rows])
        legal_parts = [p[rows] for p in parts]
        for index, (order, kept) in enumerate(plans):
            if kept != single or (order, kept) not in here:
                continue
            found = {k: np.broadcast_to(v, tile.co.shape) for k, v in
                     keys(layer, tile, target, NP, legal_parts, False, grid, order, single).items()}
            found |= {"co": tile.co, "ho": tile.ho, "wo": tile.wo, "ci": tile.ci, "plan": np.full(tile.co.shape, index)}
            if order is not LoopOrder.INPUT_STATIONARY and single is None:
                # with one channel tile both orders walk the same tiles (with two slots: the same estimate)
                found = {k: v[tile.co < layer.c_out] for k, v in found.items()}
            pool.append(found)

    def prune() -> None:
        """Keeps only what may still be chosen (a blocked tile beats any other; the window only shrinks)."""
        if pool:
            merged = {k: np.concatenate([p[k] for p in pool]) for k in pool[0]}
            pool[:] = [{k: v[_window(merged)] for k, v in merged.items()}]

    # All input channels: with two slots, and with a buffer in one slot only where two do not fit (it
    # saves nothing then and exposes the copies).
    every = (lambda rows: np.full(rows.size, layer.c_in)) if layer.splits_reduction else (lambda rows: None)
    for single in singles:
        legal = fits_all[None] if single is None else fits_all[single] & ~fits_all[None]
        rows = np.flatnonzero(legal)
        if not pool and rows.size > SEED_TILES:  # the least compute first: a bound for the rest
            first = np.zeros(rows.size, bool)
            first[np.argpartition(least_cycles(rows, every(rows)), SEED_TILES)[:SEED_TILES]] = True
            weigh(rows[first], every(rows[first]), single)
            prune()
            rows = rows[~first]
        if rows.size:
            weigh(rows, every(rows), single)
            prune()
    # Split reductions (two slots, input-stationary: `schedules`): every slice size with every tile it fits,
    # weighed in batches of about SPLIT_BATCH tiles rather than one slice size at a time (a layer with
    # thousands of input channels has a hundred slice sizes and few tiles each).
    split = np.array([ci for ci in candidates if ci is not None and ci < layer.c_in], dtype=np.int64)
    if split.size:  # how many tiles each slice size fits
        per_slice = np.maximum(1, largest.size - np.searchsorted(np.sort(largest), split, side="left"))
    start = 0
    while start < split.size:
        stop = start + max(1, int(np.searchsorted(np.cumsum(per_slice[start:]), SPLIT_BATCH, side="right")))
        which, rows = np.nonzero(largest[None, :] >= split[start:stop, None])
        if rows.size:
            weigh(rows, split[start:stop][which], None)
            prune()
        start = stop
    if not pool:
        return None
    found = pool[0]
    found["footprint"] = np.zeros_like(found["co"])
    for index, (_, single) in enumerate(plans):
        at = found["plan"] == index
        found["footprint"][at] = total_bytes(layer, Tile(*(found[d][at] for d in TILE_DIMS)), target, NP, single)
    i = choose(found)
    order, single = plans[int(found["plan"][i])]
    return Tile(*(int(found[d][i]) for d in TILE_DIMS)), order, single, int(found["cycles"][i])


def solve_all(layers: list[LayerShape], target: L1Target) -> list[tuple[TilingResult | DoesNotFit, float]]:
    """Solves many layers, distinct shapes in parallel threads (numpy and Z3 release the GIL); each
    result comes with the seconds its shape took (0 for a repeated shape, or one read from the
    on-disk cache of `solve_cache.py`)."""
    distinct = list(dict.fromkeys(layers))

    def attempt(layer: LayerShape) -> tuple[TilingResult | DoesNotFit, float]:
        start = time.perf_counter()
        try:
            result: TilingResult | DoesNotFit = solve_l1(layer, target)
        except DoesNotFit as error:
            result = error
        return result, time.perf_counter() - start

    results = {layer: (found, 0.0) for layer in distinct if (found := solve_cache.load(layer, target)) is not None}
    missing = [layer for layer in distinct if layer not in results]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results |= dict(zip(missing, pool.map(attempt, missing), strict=True))
    for layer in missing:
        solve_cache.store(layer, target, results[layer][0])
    first = {layer: layers.index(layer) for layer in distinct}
    return [results[layer] if first[layer] == i else (results[layer][0], 0.0) for i, layer in enumerate(layers)]


@functools.lru_cache(maxsize=4096)
def solve_l1(layer: LayerShape, target: L1Target) -> TilingResult:
    """The cheapest L1 tile of `layer`, its memory contract certified by Z3; DoesNotFit if no tile fits."""
    found = search(layer, target)
    if found is None:
        singles = tuple(dict.fromkeys(single for _, single in schedules(layer, target)))
        raise DoesNotFit(layer, target, smallest_footprint(layer, target, singles))
    tile, order, single, cycles = found
    return TilingResult(tile, cycles, footprint(layer, tile, target, PY, single),
                        certify_tile(layer, tile, target, single), order, 1 if single else 2)
