"""onnxruntime's float32 requantization as one exact integer `qnn.requant` (QDQ / QOperator import).

What onnxruntime (1.32, CPU) computes. Every quantized kernel first forms an exact integer `A`
and leaves the integer domain once. With `fl` = rounding to float32 (nearest, ties to even),
`rne` = rounding to an integer with ties to even, `sat` = clipping to the output type:

- QLinearConv, QLinearMatMul, QGemm (`MlasRequantizeOutput`, the `MlasConvSym*` kernels):
  `A = Σ (x − zp_x)·(w − zp_w) + bias` (padding holds zp_x, a real 0) and
  `y = sat(rne(fl(fl(A)·S)) + zp_y)`, `S = fl(fl(s_x·s_w[c]) / s_y)` (QGemm: `fl(fl(fl(α·s_a)·s_b[c]) / s_y)`).
- QLinearGlobalAveragePool: the same with `A = Σx − zp_x·N`, `S = fl(s_x / fl(s_y·N))`.
- QLinearAveragePool (K elements a window): `rne(fl(fl(fl(Σ fl(s_x·(x − zp_x))) / K) / s_y) + zp_y))`.
- QLinearAdd (AVX2): `rne(fma(a, R_a, fma(b, R_b, F)))`, `R_a = fl(s_a/s_c)`, `R_b = fl(s_b/s_c)`,
  `F ≈ zp_c − R_a·zp_a − R_b·zp_b` in float32.
- `Q(DQ(x))` (a data-movement op whose output quantization differs): `rne(fl(fl((x − zp_x)·s_x) / s_y)) + zp_y`.

The integer form (multiplier and shift, as TFLite and PULP kernels requantize). A float32 scale
is a dyadic rational `S = m·2^-d` (`m` odd, at most 24 bits), so the value the kernel
approximates is exactly `v = A·S`, and the import emits one requant

    y = clip(floor((A·m + 2^(d-1) + zp_y·2^d) / 2^d), qmin, qmax)  =  clip(⌊v + 1/2⌋ + zp_y)

— round half up of the exact `v`, with onnxruntime's own float32 `S`. Per-channel scales share
one shift `d` (the multipliers of the larger scales take the extra powers of two: exact). `A·m`
needs 64 bits in general, which `qnn.requant` has. Where there is no single float32 scale the
multiplier is the exact ratio rounded to 24 significant bits (average pool: `s_x/(K·s_y)`;
`Q(DQ(x))`: `s_x/s_y`); for QLinearAdd, `R_a`, `R_b` become multipliers over the common shift
that keeps `qnn.add`'s int32 sum in range (rounded to nearest when they need more bits). Only
when exact per-channel multipliers would overflow 63 bits is `d` lowered and `m` rounded
(`Dyadic.exact` False).

The bound. Both results are the integer nearest to their real value (`v` here, onnxruntime's
pre-rounding float `v_ort`, both without `zp_y`), so they can differ only if a half-integer `h`
lies between `v` and `v_ort`, i.e. `|v − h| ≤ ε` with `ε ≥ |v_ort − v|`, and then by exactly 1
(also after clipping, which is 1-Lipschitz). Per op, to first order in 2^-24:

- conv / matmul / gemm / global average pool: `ε = 2^-24·|v|` (`|A| ≤ 2^24`; `2^-23·|v|` above,
  where onnxruntime also rounds `A` to float32). Since only `|v| < 2^9` can matter for an 8-bit
  output, a mismatch needs `v` within 2^-15 of a half-integer.
- average pool: `ε = (K + 4)·2^-24·(M + |zp_y|)`, `M = max|x − zp_x|·s_x/s_y`.
- add: `ε = 2^-22·(R_a·(|zp_a| + max|a|) + R_b·(|zp_b| + max|b|) + |zp_c|) + 2^-(d+1)·(max|a − zp_a| + max|b − zp_b|)`
  (the last term only when the multipliers were rounded).
- `Q(DQ(x))`: `ε = 3·2^-24·|v|`.

That includes the exact ties `v = k + 1/2` (distance 0), where onnxruntime rounds to even and the
import up: they occur when `S` has few significant bits, e.g. a QDQ AveragePool whose input and
output share one quantization (`S = 1/K`). Everywhere else the import equals onnxruntime bit for
bit (`tests/test_qdq_import.py` checks every mismatch against these bounds, node by node).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dory_mlir.dialects.qnn import Rounding
from dory_mlir.frontend.requant_chain import Chain, Range, as_int_vector

F32_SIGNIFICAND_BITS = 24
# The requant intermediate `A·m + offset` must stay below this (the golden model and C use int64).
INTERMEDIATE_LIMIT = 2**62


def f32(value: float | np.floating) -> np.float32:
    return np.float32(value)


def exact(value: np.float32 | float) -> Fraction:
    """The exact rational value of a float (float32 values are dyadic rationals)."""
    return Fraction(float(value))


def conv_scale(s_x: np.float32, s_w: np.ndarray, s_y: np.float32, alpha: float = 1.0) -> list[Fraction]:
    """onnxruntime's float32 output scale of QLinearConv / QLinearMatMul / QGemm, per channel.

    The float32 operations are done in numpy float32, which rounds like the C++ `float` code
    (`X_scale * W_scale[i] / Y_scale`, evaluated left to right, no contraction possible).
    """
    scales = []
    for w in np.asarray(s_w, dtype=np.float32).reshape(-1):
        a = f32(f32(alpha) * s_x) if alpha != 1.0 else s_x
        scales.append(exact(f32(f32(a * w) / s_y)))
    return scales


def global_pool_scale(s_x: np.float32, s_y: np.float32, count: int) -> Fraction:
    """`ScaleInput / (ScaleOutput * (float)ImageSize)` of `MlasQLinearGlobalAveragePool`."""
    return exact(f32(s_x / f32(s_y * f32(count))))


def round_to_significand(value: Fraction, bits: int = F32_SIGNIFICAND_BITS) -> Fraction:
    """`value` (> 0) rounded to nearest (ties up) with `bits` significant bits."""
    exponent = value.numerator.bit_length() - value.denominator.bit_length()
    shift = bits - 1 - exponent
    while True:
        m = int(value * Fraction(2) ** shift + Fraction(1, 2))
        if m < 2**bits:
            return Fraction(m) / Fraction(2) ** shift
        shift -= 1


@dataclass(frozen=True)
class Dyadic:
    """Integer multipliers over one power-of-two divisor: `scales[c] ≈ m[c] / 2^d`."""

    m: list[int]
    d: int
    exact: bool  # m[c] / 2^d equals scales[c] for every c


def dyadic(scales: Sequence[Fraction], limit: int) -> Dyadic:
    """The exact multipliers over the smallest common shift, if every one is ≤ `limit`; else the
    largest shift whose rounded-to-nearest multipliers are ≤ `limit`."""
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive, got {[float(s) for s in scales][:4]}")
    # Every float scale is dyadic: its reduced denominator is 2^d_c.
    d = max(s.denominator.bit_length() - 1 for s in scales)
    if all(s.denominator & (s.denominator - 1) == 0 for s in scales):
        m = [int(s * 2**d) for s in scales]
        if max(m) <= limit:
            return Dyadic(m, d, True)
    # Lower the shift until the rounded multipliers fit (or the scale is not dyadic at all).
    top = max(scales)
    d = max(0, limit.bit_length() - 1 - (top.numerator.bit_length() - top.denominator.bit_length() + 1))
    while d > 0 and int(top * 2**d + Fraction(1, 2)) > limit:
        d -= 1
    while int(top * 2 ** (d + 1) + Fraction(1, 2)) <= limit:
        d += 1
    m = [int(s * 2**d + Fraction(1, 2)) for s in scales]
    if max(m) > limit or min(m) < 1:
        raise ValueError(f"scales {[float(s) for s in scales][:4]} have no integer multiplier within {limit}")
    return Dyadic(m, d, all(Fraction(mc, 2**d) == s for mc, s in zip(m, scales, strict=True)))


def rounding_chain(
    source: object, source_range: Range, scales: Sequence[Fraction], zero_offset: np.ndarray | int,
    zp_y: int, lo: int, hi: int,
) -> tuple[Chain, Dyadic]:
    """`clip(⌊(A + zero_offset)·S[c] + 1/2⌋ + zp_y, lo, hi)` over the integer `A` (= `source`).

    `zero_offset` (per channel or one value) is an exact integer added to `A` before scaling,
    e.g. `−zp_x·N` of a pool. Returns the `Chain` the importer emits as one `qnn.requant`, and
    the multipliers (for the error bound).
    """
    offsets = as_int_vector(np.atleast_1d(zero_offset))
    widest = max(abs(source_range.min() + min(offsets)), abs(source_range.max() + max(offsets)), 1)
    # The offset term is < 2^d·(|zp_y| + 1) + max|offsets|·m; keep the whole below the limit.
    limit = max(1, INTERMEDIATE_LIMIT // (2 * widest + 2 * abs(zp_y) + 2))
    scaled = dyadic(scales, limit)
    m = as_int_vector(scaled.m)
    half = 2 ** (scaled.d - 1) if scaled.d > 0 else 0
    l = offsets * m + half + zp_y * 2**scaled.d
    chain = Chain(source, m, as_int_vector(l), Fraction(1, 2**scaled.d), Rounding.FLOOR, lo, hi)
    return chain, scaled
