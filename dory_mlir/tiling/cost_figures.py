"""The figures the cycle estimate (`cost.py`) is made of: the target's DMA bandwidths and setup costs and
the per-kernel-kind coefficients fitted to rv32 instruction counts. Plain data, so that the tiling model's
target (`model.L1Target`) can carry them without importing the estimate.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from dory_mlir.tiling.geometry import DMA_KINDS

KERNEL_COSTS = Path(__file__).with_name("kernel_costs.json")
"""Fitted per-kernel-kind coefficients (`bench/fit_kernel_costs.py --write` refits them)."""


@dataclass(frozen=True)
class Link:
    """One DMA path: sustained bytes per cluster cycle and the cycles to set one transfer up."""

    bytes_per_cycle: float
    setup_cycles: float

    def cycles(self, nbytes, transfers):
        return nbytes / self.bytes_per_cycle + transfers * self.setup_cycles


@dataclass(frozen=True)
class DmaCosts:
    """The target's data-movement figures (`dma` in the target JSON)."""

    l2_l1: Link = Link(8.0, 30.0)
    l3_l2: Link = Link(1.0, 300.0)
    tile_overhead_cycles: float = 100.0
    """Per tile: the cores' barriers, the tile table walk and core 0 waiting on and programming the DMA."""

    @staticmethod
    def from_json(data: dict) -> DmaCosts:
        return DmaCosts(Link(**data["l2_l1"]), Link(**data["l3_l2"]), data["tile_overhead_cycles"])


@functools.lru_cache(maxsize=1)
def _fitted() -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    data = json.loads(KERNEL_COSTS.read_text())
    return tuple((kind, tuple(sorted(coef.items()))) for kind, coef in sorted(data["kernels"].items()))


@dataclass(frozen=True)
class CostModel:
    """DMA figures and per-kind kernel coefficients (hashable: the solver caches on it)."""

    dma: DmaCosts = DmaCosts()
    kernels: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = field(default_factory=_fitted)

    def coefficients(self, kind: str) -> dict[str, float]:
        if kind in DMA_KINDS:
            return {}  # no kernel: the layer's time is its DMA
        table = dict(self.kernels)
        return dict(table[kind if kind in table else KIND_FALLBACK[kind]])


KIND_FALLBACK = {"avgpool": "maxpool", "matmul": "pointwise", "softmax": "add", "rmsnorm": "add",
                 "hardswish": "add", "gelu": "add", "layernorm": "add",
                 "itamax": "add"}
"""Kinds not measured on their own: the sum pool walks its windows like the max pool; a matmul tile is
a pointwise product of its rows (the same blocked inner loop). The row-wise integer ops (softmaxes, RMS and layer norms)
and the elementwise hardswish and GELU are not fitted yet: they borrow the elementwise add's per-element costs (their tiles are whole
rows, so the estimate only weighs how many rows a tile holds)."""
