"""Solving the L1 tiling model: an exhaustive vectorized search for the cheapest tile.

The objective is the estimated cycles of the layer (`cost.py`); estimates within `TIE` of the
cheapest are a tie (the fitted kernel model is ±10 %, the DMA figures are estimates: a smaller difference
means nothing), broken toward fewer L2↔L1 bytes, then fewer cycles, then the smaller footprint. Tiles
whose output channels are a multiple of the kernel's channel block (`model.blocked`) come first when any
fits. The search evaluates the model (numpy backend) over every (co, ho, wo) for each input-channel slice
count: for a given number of slices the estimate does not depend on the slice size (the MACs and bytes are
linear in it, the copies and calls are counted per slice), and the footprint grows with it, so the
smallest slice of each count (`ci_candidates`) is the only one to try. The result is the exact choice of
this rule over every legal tile (the tests compare it with brute force).
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dory_mlir.tiling.cost import TileSpans, compute_parts, estimate
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

TIE = (1, 50)
"""Estimates within 1/50 (2 %) of the cheapest tile's are a tie: `cycles · 50 ≤ best · 51`."""


def ci_candidates(layer: LayerShape) -> list[int] | None:
    """The input-channel slices worth trying: the smallest of each slice count (None: ci is tied to co)."""
    if not layer.splits_reduction:
        return None
    return sorted({-(-layer.c_in // n) for n in range(1, layer.c_in + 1)}, reverse=True)


def keys(layer: LayerShape, tile, target: L1Target, B=PY, parts=None) -> dict[str, object]:
    """What the choice compares: blocked (1 when the tile is), estimated cycles (rounded), bytes, footprint."""
    found = estimate(layer, tile, TileSpans.regular(layer, tile, B), target.cores, target.double_buffer,
                     target.costs, B, parts)
    cycles = np.rint(found.total_cycles).astype(np.int64) if B is NP else round(found.total_cycles)
    return {"blocked": B.If(blocked(layer, tile, B), 1, 0), "cycles": cycles, "bytes": found.l2_l1_bytes,
            "footprint": total_bytes(layer, tile, target, B)}


def choose(found: dict[str, np.ndarray]) -> int:
    """The index of the chosen tile among legal tiles' `keys` (see the module docstring)."""
    pool = found["blocked"] == 1 if found["blocked"].any() else np.ones_like(found["cycles"], bool)
    best = found["cycles"][pool].min()
    pool &= found["cycles"] * TIE[1] <= best * (TIE[1] + TIE[0])
    index = np.flatnonzero(pool)
    order = np.lexsort([found[k][index] for k in ("footprint", "cycles", "bytes")])
    return int(index[order[0]])


def search(layer: LayerShape, target: L1Target) -> tuple[Tile, int] | None:
    """The chosen legal tile and its estimated cycles, searched exhaustively."""
    co, ho, wo = (a.ravel() for a in np.meshgrid(
        np.arange(1, layer.c_out + 1), np.arange(1, layer.h_out + 1), np.arange(1, layer.w_out + 1), indexing="ij"))
    candidates = ci_candidates(layer) or [None]
    # A tile that fits with no slice fits with none (the footprint grows with a slice below c_in): search the rest.
    fits = np.zeros_like(co, bool)
    for ci in {candidates[0], candidates[-1]}:
        fits |= total_bytes(layer, Tile(co, ho, wo, co if ci is None else ci), target, NP) <= target.l1_bytes
    co, ho, wo = co[fits], ho[fits], wo[fits]
    spatial = TileSpans.regular(layer, Tile(co, ho, wo, co), NP)
    parts = [np.broadcast_to(p, co.shape) for p in compute_parts(layer, spatial, target.cores, target.costs, NP)]
    pool: list[dict[str, np.ndarray]] = []
    for ci in candidates:
        tile = Tile(co, ho, wo, co if ci is None else np.full_like(co, ci))
        legal = np.logical_and.reduce(np.broadcast_arrays(*domain(layer, tile, NP)))
        legal &= total_bytes(layer, tile, target, NP) <= target.l1_bytes
        if not legal.any():
            continue
        tile = Tile(*(np.asarray(getattr(tile, d))[legal] for d in ("co", "ho", "wo", "ci")))
        found = {k: np.broadcast_to(v, tile.co.shape) for k, v in
                 keys(layer, tile, target, NP, [p[legal] for p in parts]).items()}
        found |= {"co": tile.co, "ho": tile.ho, "wo": tile.wo, "ci": tile.ci}
        # Keep only what may still be chosen (a blocked tile beats any other; the window can only shrink).
        pool.append(found)
        merged = {k: np.concatenate([p[k] for p in pool]) for k in found}
        top = merged["blocked"] == 1 if merged["blocked"].any() else np.ones_like(merged["cycles"], bool)
        best = merged["cycles"][top].min()
        keep = top & (merged["cycles"] * TIE[1] <= best * (TIE[1] + TIE[0]))
        pool = [{k: v[keep] for k, v in merged.items()}]
    if not pool:
        return None
    i = choose(pool[0])
    return Tile(*(int(pool[0][d][i]) for d in ("co", "ho", "wo", "ci"))), int(pool[0]["cycles"][i])


def solve_all(layers: list[LayerShape], target: L1Target) -> list[tuple[TilingResult | DoesNotFit, float]]:
    """Solves many layers, distinct shapes in parallel threads (numpy releases the
    GIL); each result comes with the seconds its shape took (0 for a repeated shape)."""
    distinct = list(dict.fromkeys(layers))

    def attempt(layer: LayerShape) -> tuple[TilingResult | DoesNotFit, float]:
        start = time.perf_counter()
        try:
            result: TilingResult | DoesNotFit = solve_l1(layer, target)
        except DoesNotFit as error:
            result = error
        return result, time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = dict(zip(distinct, pool.map(attempt, distinct), strict=True))
    first = {layer: layers.index(layer) for layer in distinct}
    return [results[layer] if first[layer] == i else (results[layer][0], 0.0) for i, layer in enumerate(layers)]


@functools.lru_cache(maxsize=4096)
def solve_l1(layer: LayerShape, target: L1Target) -> TilingResult:
    """The cheapest L1 tile of `layer`; DoesNotFit if no tile fits."""
    found = search(layer, target)
    if found is None:
        raise DoesNotFit(layer, target, smallest_footprint(layer, target))
    tile, cycles = found
    return TilingResult(tile, cycles, footprint(layer, tile, target, PY))
