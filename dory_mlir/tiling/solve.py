"""Solving the L1 tiling model: a vectorized search proposes, Z3 proves it optimal.

DESIGN §8 measured that handing the nonlinear model to `z3.Optimize` takes seconds to
minutes per layer. Proving that *no* legal tile beats a given value, however, takes Z3
milliseconds. So the search evaluates the model (numpy backend) over every
(co, ho, wo) for a set of input-channel slices, and Z3 then checks
`legal ∧ objective > best` over the whole domain: `unsat` proves the optimum; a model
(a tile the search did not consider) becomes the new best and the check repeats.
The result is always Z3's optimum of the model, whatever the search covers.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import z3

from dory_mlir.tiling import solve_cache
from dory_mlir.tiling.model import (
    NP,
    PY,
    Z3Terms,
    bonus,
    DoesNotFit,
    L1Target,
    LayerShape,
    Tile,
    TilingResult,
    domain,
    footprint,
    objective,
    smallest_footprint,
    tile_data_bytes,
    total_bytes,
)


def _best_cell(layer: LayerShape, target: L1Target, tile: Tile) -> tuple[Tile, int] | None:
    """The best legal tile among a batch of tiles given as numpy arrays."""
    legal = np.logical_and.reduce(np.broadcast_arrays(*domain(layer, tile, NP)))
    legal &= total_bytes(layer, tile, target, NP) <= target.l1_bytes
    if not legal.any():
        return None
    values = np.where(legal, objective(layer, tile, target, NP), -1)
    i = np.unravel_index(int(np.argmax(values)), values.shape)
    return Tile(int(tile.co[i]), int(tile.ho[i]), int(tile.wo[i]), int(tile.ci[i])), int(values[i])


def _largest_fitting_slice(layer: LayerShape, target: L1Target, co, ho, wo) -> np.ndarray:
    """Per tile, the largest input-channel slice below c_in that fits (0 if none): the
    footprint grows with the slice, so a vectorized bisection finds it."""
    lo, hi = np.zeros_like(co), np.full_like(co, layer.c_in - 1)
    while (lo < hi).any():
        mid = (lo + hi + 1) // 2
        fits = total_bytes(layer, Tile(co, ho, wo, np.maximum(mid, 1)), target, NP) <= target.l1_bytes
        lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid - 1)
    return lo


def search(layer: LayerShape, target: L1Target) -> tuple[Tile, int] | None:
    """The best legal tile, searched exhaustively over (co, ho, wo).

    The input-channel slice is c_in, or, below c_in, the largest that fits: no term of
    the objective but the tile data depends on a slice below c_in, and the data (like the
    footprint) grows with it. Slices are only searched for tiles whose bound beats the best so far.
    """
    co, ho, wo = np.meshgrid(
        np.arange(1, layer.c_out + 1), np.arange(1, layer.h_out + 1), np.arange(1, layer.w_out + 1), indexing="ij"
    )
    whole = Tile(co, ho, wo, np.full_like(co, layer.c_in) if layer.splits_reduction else co)
    best = _best_cell(layer, target, whole)
    if not layer.splits_reduction or layer.c_in == 1:
        return best
    # Bound for slices below c_in: the whole budget plus every term but the reduction's
    # (the tile data never exceeds the footprint, which fits the budget).
    other_terms = objective(layer, whole, target, NP) - tile_data_bytes(layer, whole, NP) - target.l1_bytes // 2
    promising = target.l1_bytes + other_terms > (best[1] if best else -1)
    if not promising.any():
        return best
    co, ho, wo = co[promising], ho[promising], wo[promising]
    ci = _largest_fitting_slice(layer, target, co, ho, wo)
    sliced = _best_cell(layer, target, Tile(co, ho, wo, ci))
    if sliced is not None and (best is None or sliced[1] > best[1]):
        return sliced
    return best


def z3_better_tile(layer: LayerShape, target: L1Target, value: int) -> Tile | None:
    """A legal tile whose objective exceeds `value`, or None when Z3 proves there is none.

    A fresh solver (in its own context, so layers can be proven in parallel threads) per
    question: Z3's incremental mode (push/pop) is several times slower on these problems.
    The tile data never exceeds the budget, so the performance terms alone must exceed
    `value - budget`: stating that redundant bound prunes Z3's search early.
    """
    ctx = z3.Context()
    tile = Tile(*z3.Ints("co ho wo ci", ctx=ctx))
    terms = Z3Terms(ctx)
    solver = z3.SolverFor("QF_NIA", ctx=ctx)
    solver.add(*domain(layer, tile, terms))
    solver.add(total_bytes(layer, tile, target, terms) <= target.l1_bytes)
    performance = bonus(layer, tile, target, terms)
    solver.add(tile_data_bytes(layer, tile, terms) + performance > value)
    solver.add(performance > value - target.l1_bytes)
    solver.add(*terms.side)
    result = solver.check()
    if result == z3.unknown:
        raise RuntimeError(f"z3 could not decide the tiling model: {solver.reason_unknown()}")
    if result == z3.unsat:
        return None
    model = solver.model()
    return Tile(*(model.eval(v).as_long() for v in (tile.co, tile.ho, tile.wo, tile.ci)))


def solve_all(layers: list[LayerShape], target: L1Target) -> list[tuple[TilingResult | DoesNotFit, float]]:
    """Solves many layers, distinct shapes in parallel threads (Z3 and numpy release the
    GIL); each result comes with the seconds its shape took (0 for a repeated shape, or one
    read from the on-disk cache of `solve_cache.py`)."""
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
    """The optimal L1 tile of `layer`, proven by Z3; DoesNotFit if no tile fits."""
    found = search(layer, target)
    if found is None:
        raise DoesNotFit(layer, target, smallest_footprint(layer, target))
    tile, value = found
    checks = 1
    while (better := z3_better_tile(layer, target, value)) is not None:
        tile, value = better, objective(layer, better, target, PY)
        checks += 1
    return TilingResult(tile, value, footprint(layer, tile, target, PY), checks)
