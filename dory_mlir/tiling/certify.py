"""Z3 certificates of the memory contract: every L1 tile fits, the L2 plan is sound.

What is proven (the negation is `unsat`):

- `certify_tile`: for the chosen tile `(co, ho, wo, ci)` of a layer, every tile of its grid — interior
  or border, at any position, the border tiles clipped to `min(step, size - origin)` — lies in the
  model's domain (`model.domain`), reads an input halo (at its position, with any padding, clamped to
  the input) that the model's input buffer holds, and has an L1 footprint (`model.footprint`: every
  buffer aligned, with its slots) within the L1 budget.
- `certify_plan`: no two L2 buffers alive at the same layer share an address, and every buffer lies
  in [0, budget).

What is not: that the chosen tile is the cheapest by the cycle estimate (a float cost model with table
lookups, `cost.py`). That is the exhaustive search of `solve.py`, compared with brute force by the tests.

The footprint expressions are the model's own (`model.footprint` over the `Z3Terms` backend), so the
proof is about the same formulas the search evaluates over numpy; the statement adds the grid: the
positions and the clipped border tiles. Each thread proves in its own `z3.Context`, so threads prove in parallel.
A counterexample (`sat`) or an undecided proof (`unknown`) is a bug of the tiler: `NotCertified`, an
internal error naming the tile.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import z3

from dory_mlir.diagnostics import InternalError
from dory_mlir.tiling.geometry import ALIGN, LayerShape
from dory_mlir.tiling.model import L1Target, Tile, domain, footprint, input_extent, total_bytes

if TYPE_CHECKING:
    from dory_mlir.tiling.memory_plan import Buffer

DIMS = ("co", "ho", "wo", "ci")


class NotCertified(InternalError):
    """Z3 found a tile (or an L2 address) that breaks the memory contract, or could not decide: a tiler bug."""


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class Z3Terms:
    """Backend over Z3 integer terms: divisibility by a variable is a choice among the divisors, rounding
    up to the alignment an integer division by the constant `ALIGN` (several times faster to prove than
    an auxiliary variable with bounds)."""

    If = staticmethod(z3.If)
    And = staticmethod(z3.And)
    Or = staticmethod(z3.Or)

    @staticmethod
    def Min(a, b):  # noqa: N802
        return z3.If(a < b, a, b)

    @staticmethod
    def Max(a, b):  # noqa: N802
        return z3.If(a > b, a, b)

    @staticmethod
    def Divides(n: int, x):  # noqa: N802
        return z3.Or([x == d for d in divisors(n)])

    @staticmethod
    def align(value):
        if not isinstance(value, z3.ExprRef):
            return -(-value // ALIGN) * ALIGN
        return (value + (ALIGN - 1)) / ALIGN * ALIGN


_CONTEXTS: list[z3.Context] = []
_CONTEXTS_LOCK = threading.Lock()


@contextmanager
def _context() -> Iterator[z3.Context]:
    """A Z3 context no other thread uses meanwhile: proofs in different threads run in parallel. The
    contexts are kept for the next proofs (creating one costs more than most proofs)."""
    with _CONTEXTS_LOCK:
        ctx = _CONTEXTS.pop() if _CONTEXTS else None
    ctx = ctx or z3.Context()
    try:
        yield ctx
    finally:
        with _CONTEXTS_LOCK:
            _CONTEXTS.append(ctx)


def halo(origin, rows, stride: int, kernel: int, dilation: int, pad, size: int, B: Z3Terms):
    """Input rows read by output rows [origin, origin + rows) with `pad` rows of padding before,
    clamped to the input (as `geometry.input_rows`)."""
    first = origin * stride - pad
    last = (origin + rows - 1) * stride - pad + dilation * (kernel - 1)
    return B.Max(0, B.Min(last, size - 1) - B.Max(first, 0) + 1)


def _check(solver: z3.Solver, what: str) -> z3.ModelRef | None:
    result = solver.check()
    if result == z3.unknown:
        raise NotCertified(f"Z3 could not decide {what}: {solver.reason_unknown()}")
    return solver.model() if result == z3.sat else None


@dataclass
class TileStatement:
    """The grid of a tiling in Z3: tile positions (`origin`, bounded by the grid), the tile at each
    position clipped at the border (`clipped`), and what would break the contract (`violations`)."""

    origin: dict[str, z3.ArithRef]
    clipped: Tile
    bounds: list[z3.BoolRef]
    violations: dict[str, z3.BoolRef]


def tile_statement(layer: LayerShape, tile: Tile, target: L1Target, ctx: z3.Context) -> TileStatement:
    B = Z3Terms()
    sizes = {"co": layer.c_out, "ho": layer.h_out, "wo": layer.w_out, "ci": layer.c_in}
    steps = {d: getattr(tile, d) for d in DIMS}
    index = {d: z3.Int(f"{d}_tile", ctx) for d in DIMS}
    origin = {d: index[d] * steps[d] for d in DIMS}
    bounds = [c for d in DIMS for c in (index[d] >= 0, origin[d] <= sizes[d] - 1)]
    if not layer.splits_reduction:
        bounds.append(index["ci"] == index["co"])  # the input-channel slice is the output's
    clipped = Tile(*(B.Min(steps[d], sizes[d] - origin[d]) for d in DIMS))
    violations = {
        "outside the model's domain": z3.Not(z3.And(*domain(layer, clipped, B))),
        "over the L1 budget": total_bytes(layer, clipped, target, B) > target.l1_bytes,
    }
    if layer.kind != "matmul":
        pads = z3.Ints("pad_top pad_left", ctx)  # any padding: the statement holds for all of them
        for what, rows, stride, kernel, dilation, size, pad in (
            ("rows", clipped.ho, layer.sh, layer.kh, layer.dh, layer.h_in, pads[0]),
            ("columns", clipped.wo, layer.sw, layer.kw, layer.dw, layer.w_in, pads[1]),
        ):
            first = "ho" if what == "rows" else "wo"
            read = halo(origin[first], rows, stride, kernel, dilation, pad, size, B)
            violations[f"input {what} beyond the input buffer"] = read > input_extent(rows, stride, kernel, dilation, size, B)
    return TileStatement(origin, clipped, bounds, violations)


@functools.lru_cache(maxsize=4096)
def certify_tile(layer: LayerShape, tile: Tile, target: L1Target) -> int:
    """Proves the memory contract of every tile of `layer`'s grid of `tile` (module docstring);
    returns the number of Z3 checks (1). Cached per (layer, tile, target)."""
    with _context() as ctx:
        statement = tile_statement(layer, tile, target, ctx)
        solver = z3.SolverFor("QF_NIA", ctx=ctx)
        solver.add(*statement.bounds, z3.Or(*statement.violations.values()))
        model = _check(solver, f"the L1 tiling of {layer.describe()} with tile {tile}")
        if model is None:
            return 1

        def value(term) -> int:
            return model.eval(term, model_completion=True).as_long()

        found = Tile(*(value(getattr(statement.clipped, d)) for d in DIMS))
        broken = [what for what, term in statement.violations.items() if z3.is_true(model.eval(term, model_completion=True))]
        used = footprint(layer, found, target)
        raise NotCertified(
            f"Z3 counterexample to the L1 tiling of {layer.describe()} with tile {tile}: the tile {found} at "
            f"origin {tuple(value(statement.origin[d]) for d in DIMS)} (co, ho, wo, ci) is {' and '.join(broken)}: "
            f"it needs {sum(used.values())} B ({', '.join(f'{k} {v}' for k, v in used.items())}), "
            f"budget {target.l1_bytes} B")


def certify_plan(buffers: list[Buffer], budget: int) -> int:
    """Proves that no two buffers alive at the same layer share an L2 address and every buffer lies in
    [0, budget); returns the number of Z3 checks (1)."""
    with _context() as ctx:
        return _certify_plan(buffers, budget, ctx)


def _certify_plan(buffers: list[Buffer], budget: int, ctx: z3.Context) -> int:
    layer, address = z3.Int("layer", ctx), z3.Int("address", ctx)
    holds = [z3.If(z3.And(b.first <= layer, layer <= b.last, b.offset <= address, address < b.offset + b.bytes),
                   z3.IntVal(1, ctx), z3.IntVal(0, ctx)) for b in buffers]
    outside = [z3.BoolVal(b.offset < 0 or b.offset + b.bytes > budget, ctx) for b in buffers]
    solver = z3.SolverFor("QF_LIA", ctx=ctx)
    solver.add(z3.Or(z3.Sum(holds) >= 2, *outside) if buffers else z3.BoolVal(False, ctx))
    model = _check(solver, "the L2 plan")
    if model is not None:
        at, when = (model.eval(v, model_completion=True).as_long() for v in (address, layer))
        shared = [b.name for b, h in zip(buffers, holds, strict=True) if model.eval(h).as_long()]
        past = [b.name for b, o in zip(buffers, outside, strict=True) if z3.is_true(o)]
        raise NotCertified(f"Z3 counterexample to the L2 plan (budget {budget} B): "
                           + (f"{', '.join(past)} past the budget" if past else
                              f"{' and '.join(shared)} share address {at} at layer {when}"))
    return 1
