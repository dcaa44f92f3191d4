"""Exact symbolic folding of the elementwise ops that exporters spell requantization with.

NEMO writes `Mul(kappa) → Add(lambda) → Cast → Mul(m) → Div(2^d) → Cast → Clip`,
Quantlab `Mul → Add → Div → Floor → Clip`, average pools `Mul(k·k) → Mul(m) → Div → Floor`.
Instead of matching each spelling, the importer folds any such sequence into one
`Chain`: the exact value `clip(round((x·k + l)·f), lo, hi)` with integer per-channel
`k, l`, a rational `f` and a rounding applied at most once. A chain becomes one
`qnn.requant` (`scale`/`divisor` = numerator/denominator of `f`) when a structural op
consumes it. Anything that does not fit the form is an error, never an approximation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dory_mlir.dialects.qnn import Rounding


def as_int_vector(values: np.ndarray) -> np.ndarray:
    """Exact Python-int object array (products of exporter constants can pass 2^63)."""
    return np.array([int(v) for v in np.asarray(values).reshape(-1)], dtype=object)


def per_channel_bounds(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of a [R, C] block of per-row values (a chain's constants that vary over the rows of
    a GEMM) as per-channel bounds: the loosest over the rows; vectors unchanged."""
    if np.ndim(lo) == 2:
        return as_int_vector(np.min(lo, axis=0)), as_int_vector(np.max(hi, axis=0))
    return lo, hi


@dataclass(frozen=True)
class Range:
    """Per-channel inclusive integer bounds (vectors of length C, or 1 for per-tensor)."""

    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def scalar(lo: int, hi: int) -> Range:
        return Range(as_int_vector([lo]), as_int_vector([hi]))

    def min(self) -> int:
        return int(min(self.lo))

    def max(self) -> int:
        return int(max(self.hi))

    def affine(self, k: np.ndarray, l: np.ndarray) -> Range:
        """Bounds of x·k + l (per-row k, l: the bounds over all rows)."""
        a, b = self.lo * k, self.hi * k
        return Range(*per_channel_bounds(np.minimum(a, b) + l, np.maximum(a, b) + l))

    def scaled(self, m: int) -> Range:
        a, b = self.lo * m, self.hi * m
        return Range(np.minimum(a, b), np.maximum(a, b))

    def divided(self, d: int) -> Range:
        """Bounds of round(x / d) for floor or trunc rounding (d > 0)."""
        return Range(
            as_int_vector([v // d for v in self.lo]),
            as_int_vector([-(-v // d) for v in self.hi]),
        )

    def clipped(self, lo: int | None, hi: int | None) -> Range:
        new_lo, new_hi = self.lo, self.hi
        if lo is not None:
            new_lo = as_int_vector([max(v, lo) for v in new_lo])
            new_hi = as_int_vector([max(v, lo) for v in new_hi])
        if hi is not None:
            new_lo = as_int_vector([min(v, hi) for v in new_lo])
            new_hi = as_int_vector([min(v, hi) for v in new_hi])
        return Range(new_lo, new_hi)


class ChainError(Exception):
    """The elementwise sequence has no exact integer requantization form."""


@dataclass(frozen=True)
class Chain:
    """`clip(round((x·k + l)·f), lo, hi)` over a source `x` (an IR value or another chain).

    `k` and `l` are vectors (length C or 1) or, on the rows of a GEMM, [R, C] / [R, 1] blocks
    that vary over the rows. `rounding` is None while no rounding has happened: the value is then exact and an
    integer only if `f` is. `onnx_int` tracks whether ONNX sees an integer tensor,
    because ONNX integer `Div` truncates while float `Div` is exact.
    """

    x: object
    k: np.ndarray
    l: np.ndarray
    f: Fraction = Fraction(1)
    rounding: Rounding | None = None
    lo: int | None = None
    hi: int | None = None
    onnx_int: bool = False
    where: str = ""  # the ONNX node that last extended the chain, for names and messages

    @staticmethod
    def over(x: object, onnx_int: bool = False) -> Chain:
        return Chain(x, as_int_vector([1]), as_int_vector([0]), onnx_int=onnx_int)

    def is_identity(self) -> bool:
        return (
            self.f == 1
            and self.rounding is None
            and self.lo is None
            and self.hi is None
            and bool(np.all(self.k == 1))
            and bool(np.all(self.l == 0))
        )

    def is_integral(self) -> bool:
        return self.rounding is not None or self.f.denominator == 1

    def _closed(self) -> bool:
        """A rounded or clipped chain cannot absorb more arithmetic: start a new one."""
        return self.rounding is not None or self.lo is not None or self.hi is not None

    def _open(self) -> Chain:
        return Chain.over(self, self.onnx_int) if self._closed() else self

    def mul(self, c: np.ndarray | int | Fraction) -> Chain:
        """Multiply by a per-channel integer vector (or per-row block) or a scalar."""
        chain = self._open()
        if isinstance(c, np.ndarray) and c.size > 1:
            return dataclasses.replace(chain, k=chain.k * c, l=chain.l * c)
        scalar = Fraction(c.reshape(-1)[0]) if isinstance(c, np.ndarray) else Fraction(c)
        return dataclasses.replace(chain, f=chain.f * scalar)

    def mul_affine(self, c: np.ndarray) -> Chain:
        """Multiply `k` and `l` by an integer vector (or one value), so that later integer offsets fold exactly."""
        chain = self._open()
        return dataclasses.replace(chain, k=chain.k * c, l=chain.l * c)

    def add(self, c: np.ndarray) -> Chain:
        """Add a per-channel (or per-row block) or scalar integer offset: folds into `l` as c / f."""
        chain = self._open()
        c = np.asarray(c)
        offsets = [Fraction(int(v)) / chain.f for v in c.reshape(-1)]
        if any(o.denominator != 1 for o in offsets):
            raise ChainError(
                f"offset {[int(v) for v in c.reshape(-1)][:4]} is not a multiple of the pending scale {chain.f}"
            )
        return dataclasses.replace(chain, l=chain.l + as_int_vector([o.numerator for o in offsets]).reshape(c.shape))

    def div(self, d: int) -> Chain:
        """Divide by a positive integer; integer ONNX tensors truncate at once."""
        if d == 0:
            raise ChainError("division by zero")
        chain = self._open()
        if d < 0:
            chain = dataclasses.replace(chain, k=-chain.k, l=-chain.l)
            d = -d
        chain = dataclasses.replace(chain, f=chain.f / d)
        if chain.onnx_int and not chain.is_integral():
            chain = dataclasses.replace(chain, rounding=Rounding.TRUNC)
        return chain

    def floor(self) -> Chain:
        return self._round(Rounding.FLOOR)

    def cast(self, to_int: bool) -> Chain:
        """ONNX Cast: float → int truncates a non-integer value; int → float is exact."""
        chain = self._round(Rounding.TRUNC) if to_int else self
        return dataclasses.replace(chain, onnx_int=to_int)

    def _round(self, rounding: Rounding) -> Chain:
        if self.is_integral():
            return self
        return dataclasses.replace(self, rounding=rounding)

    def clip(self, lo: int | None, hi: int | None) -> Chain:
        if not self.is_integral():
            raise ChainError(f"clip of a non-integer value (pending scale {self.f})")
        if self.f == 1 and self.rounding is None and isinstance(self.x, Chain) and self.is_identity_affine():
            # A clip right after an exact no-op stage (e.g. Mul(32)·Div(32)) clips the inner stage.
            return dataclasses.replace(self, x=self.x.clip(lo, hi))
        new_lo = lo if self.lo is None else (self.lo if lo is None else max(self.lo, lo))
        new_hi = hi if self.hi is None else (self.hi if hi is None else min(self.hi, hi))
        return dataclasses.replace(self, lo=new_lo, hi=new_hi)

    def is_identity_affine(self) -> bool:
        return bool(np.all(self.k == 1)) and bool(np.all(self.l == 0)) and self.lo is None and self.hi is None

    def simplified(self) -> Chain | object:
        """The source itself when the chain does nothing; folds exact no-op stages."""
        if self.is_identity():
            return self.x.simplified() if isinstance(self.x, Chain) else self.x
        return self
