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
from typing import Protocol

import z3

from dory_mlir.diagnostics import InternalError
from dory_mlir.tiling.geometry import ALIGN, LayerShape
from dory_mlir.tiling.model import L1Target, Tile, domain, footprint, input_extent, total_bytes



class Buffer(Protocol):
    """A placed L2 buffer (`memory_plan.Buffer`): its bytes at `offset`, alive from layer `first` to `last`."""

    name: str
    bytes: int
    offset: int
    first: int
    last: int

DIMS = ("co", "ho", "wo", "ci")


class NotCertified(InternalError):
    """Z3 found a tile (or an L2 address) that breaks the memory contract, or could not decide: a tiler bug."""


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _text(x) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x) if x >= 0 else f"(- {-x})"
    return x.text


class Term:
    """An SMT-LIB term as text: the statement is written by plain string operations and handed to Z3 in
    one call (building it through Z3's Python API costs more than proving it)."""

    __slots__ = ("text",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, text: str) -> None:
        self.text = text

    def _op(self, op: str, *args) -> Term:
        return Term(f"({op} {' '.join(_text(a) for a in args)})")

    def __add__(self, other): return self._op("+", self, other)  # noqa: E704
    def __radd__(self, other): return self if other == 0 else self._op("+", other, self)  # noqa: E704
    def __sub__(self, other): return self._op("-", self, other)  # noqa: E704
    def __rsub__(self, other): return self._op("-", other, self)  # noqa: E704
    def __mul__(self, other): return self._op("*", self, other)  # noqa: E704
    def __rmul__(self, other): return self._op("*", other, self)  # noqa: E704
    def __eq__(self, other): return self._op("=", self, other)  # type: ignore[override]  # noqa: E704
    def __ne__(self, other): return self._op("distinct", self, other)  # type: ignore[override]  # noqa: E704
    def __lt__(self, other): return self._op("<", self, other)  # noqa: E704
    def __le__(self, other): return self._op("<=", self, other)  # noqa: E704
    def __gt__(self, other): return self._op(">", self, other)  # noqa: E704
    def __ge__(self, other): return self._op(">=", self, other)  # noqa: E704


class Z3Terms:
    """Backend over SMT-LIB terms (`Term`) for Z3: divisibility by a variable is a choice among the
    divisors, rounding up to the alignment an integer division by the constant `ALIGN` (several times
    faster to prove than an auxiliary variable with bounds). Python bools and ints fold in place."""

    @staticmethod
    def If(cond, a, b):  # noqa: N802
        if isinstance(cond, bool):
            return a if cond else b
        return Term(f"(ite {cond.text} {_text(a)} {_text(b)})")

    @staticmethod
    def _junction(op: str, conds, unit: bool):
        terms = []
        for cond in conds:
            if isinstance(cond, bool):
                if cond != unit:
                    return cond
            else:
                terms.append(cond)
        if not terms:
            return unit
        return terms[0] if len(terms) == 1 else Term(f"({op} {' '.join(t.text for t in terms)})")

    @classmethod
    def And(cls, *conds):  # noqa: N802
        return cls._junction("and", conds, True)

    @classmethod
    def Or(cls, *conds):  # noqa: N802
        return cls._junction("or", conds, False)

    @staticmethod
    def Not(cond):  # noqa: N802
        return (not cond) if isinstance(cond, bool) else Term(f"(not {cond.text})")

    @classmethod
    def Min(cls, a, b):  # noqa: N802
        return min(a, b) if isinstance(a, int) and isinstance(b, int) else cls.If(a < b, a, b)

    @classmethod
    def Max(cls, a, b):  # noqa: N802
        return max(a, b) if isinstance(a, int) and isinstance(b, int) else cls.If(a > b, a, b)

    @classmethod
    def Divides(cls, n: int, x):  # noqa: N802
        return cls.Or(*(x == d for d in divisors(n)))

    @staticmethod
    def align(value):
        if isinstance(value, int):
            return -(-value // ALIGN) * ALIGN
        return Term(f"(* (div (+ {value.text} {ALIGN - 1}) {ALIGN}) {ALIGN})")


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
    """The grid of a tiling as SMT-LIB terms: tile indices `<d>_tile` (declared, bounded by the grid), tile
    positions (`origin`), the tile at each position clipped at the border (`clipped`), and what would
    break the contract (`violations`)."""

    origin: dict[str, Term]
    clipped: Tile
    bounds: list[Term]
    violations: dict[str, Term]
    names: list[str]

    def smt2(self, *asserted) -> str:
        """The SMT-LIB text declaring the statement's constants and asserting `asserted`."""
        return "".join(f"(declare-const {name} Int)" for name in self.names) + "".join(
            f"(assert {_text(term)})" for term in asserted)


def tile_statement(layer: LayerShape, tile: Tile, target: L1Target, single: str | None = None) -> TileStatement:
    B = Z3Terms()
    sizes = {"co": layer.c_out, "ho": layer.h_out, "wo": layer.w_out, "ci": layer.c_in}
    steps = {d: getattr(tile, d) for d in DIMS}
    # A dimension of one tile has one position (origin 0): it folds to constants in Python.
    index = {d: Term(f"{d}_tile") if steps[d] < sizes[d] else 0 for d in DIMS}
    origin = {d: index[d] * steps[d] for d in DIMS}
    bounds = [c for d in DIMS if isinstance(index[d], Term) for c in (index[d] >= 0, origin[d] <= sizes[d] - 1)]
    if not layer.splits_reduction and isinstance(index["co"], Term):
        bounds.append(index["ci"] == index["co"])  # the input-channel slice is the output's
    clipped = Tile(*(B.Min(steps[d], sizes[d] - origin[d]) for d in DIMS))
    violations = {
        "outside the model's domain": B.Not(B.And(*domain(layer, clipped, B))),
        "over the L1 budget": total_bytes(layer, clipped, target, B, single) > target.l1_bytes,
    }
    names = [f"{d}_tile" for d in DIMS if isinstance(index[d], Term)]
    if layer.kind != "matmul":
        names += ["pad_top", "pad_left"]  # any padding: the statement holds for all of them
        for what, rows, stride, kernel, dilation, size, pad in (
            ("rows", clipped.ho, layer.sh, layer.kh, layer.dh, layer.h_in, Term("pad_top")),
            ("columns", clipped.wo, layer.sw, layer.kw, layer.dw, layer.w_in, Term("pad_left")),
        ):
            first = origin["ho"] if what == "rows" else origin["wo"]
            read = halo(first, rows, stride, kernel, dilation, pad, size, B)
            violations[f"input {what} beyond the input buffer"] = read > input_extent(rows, stride, kernel, dilation, size, B)
    return TileStatement(origin, clipped, bounds, violations, names)


@functools.lru_cache(maxsize=4096)
def certify_tile(layer: LayerShape, tile: Tile, target: L1Target, single: str | None = None) -> int:
    """Proves the memory contract of every tile of `layer`'s grid of `tile` (module docstring; `single`:
    the buffer kept in one slot, `model.footprint`); returns the number of Z3 checks (1). Cached per
    (layer, tile, target, single)."""
    statement = tile_statement(layer, tile, target, single)
    with _context() as ctx:
        solver = z3.SolverFor("QF_NIA", ctx=ctx)
        solver.from_string(statement.smt2(*statement.bounds, Z3Terms.Or(*statement.violations.values())))
        model = _check(solver, f"the L1 tiling of {layer.describe()} with tile {tile}")
        if model is None:
            return 1
        at = {d: model.eval(z3.Int(f"{d}_tile", ctx), model_completion=True).as_long() * getattr(tile, d)
              if f"{d}_tile" in statement.names else 0 for d in DIMS}
        broken = [what for what, term in statement.violations.items()
                  if z3.is_true(model.eval(z3.parse_smt2_string(statement.smt2(term), ctx=ctx)[0], model_completion=True))]
    sizes = {"co": layer.c_out, "ho": layer.h_out, "wo": layer.w_out, "ci": layer.c_in}
    found = Tile(*(min(getattr(tile, d), sizes[d] - at[d]) for d in DIMS))
    used = footprint(layer, found, target, single=single)
    raise NotCertified(
        f"Z3 counterexample to the L1 tiling of {layer.describe()} with tile {tile}: the tile {found} at "
        f"origin {tuple(at[d] for d in DIMS)} (co, ho, wo, ci) is {' and '.join(broken)}: "
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
