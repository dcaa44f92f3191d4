"""The golden model layer by layer on another model's tensors, and the comparison with it.

Run end to end, two models that round differently in one value of layer k see different inputs
from layer k + 1 on, and their differences compound. To state a bound per requantization, each
layer is instead run on the reference's own input tensors: `run_layerwise` runs the network and
records what every layer computes, but hands the reference's tensor on to the layers after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter, impl, register_impls

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.golden.interpreter import QnnFunctions, run_network


@register_impls
class LayerwiseFunctions(QnnFunctions):
    """`QnnFunctions` whose layers pass the reference's output on instead of their own."""

    def __init__(self, reference: dict[int, np.ndarray]) -> None:
        super().__init__()
        self.reference = reference

    @impl(qnn.LayerOp)
    def run_layer(self, interpreter: Interpreter, op: qnn.LayerOp, args: tuple[Any, ...]):
        # `@impl` wraps the parent's method: it returns an OpImplResult, not the values.
        (own,) = super().run_layer(interpreter, op, args).values
        index = op.index.value.data
        if index not in self.reference:
            return (own,)
        value = self.reference[index]
        if value.size != own.size:
            raise DoryError(f"layer {index}: the reference tensor has {value.size} values, the layer {own.size}")
        return (value.reshape(own.shape).astype(np.int64),)


def run_layerwise(module: ModuleOp, x: np.ndarray | list[np.ndarray], reference: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Every layer's output when each layer reads the reference's outputs of the layers before it
    (`reference`: layer index → that layer's tensor; layers without one pass their own on)."""
    functions = LayerwiseFunctions(reference)
    run_network(module, x, functions)
    return functions.layer_outputs


@dataclass(frozen=True)
class Difference:
    """How two integer tensors differ: values compared, values that differ, largest |a - b|
    (`same_size` False: the tensors have different sizes and count as differing everywhere)."""

    values: int
    differing: int
    max_abs: int
    same_size: bool = True

    def within(self, bound: int) -> bool:
        return self.same_size and self.max_abs <= bound

    def __add__(self, other: Difference) -> Difference:
        return Difference(self.values + other.values, self.differing + other.differing,
                          max(self.max_abs, other.max_abs), self.same_size and other.same_size)

    def __str__(self) -> str:
        if not self.same_size:
            return "sizes differ"
        return f"{self.differing} (max {self.max_abs})" if self.differing else "0"


NO_DIFFERENCE = Difference(0, 0, 0)


def difference(a: np.ndarray, b: np.ndarray) -> Difference:
    """Values compared element by element; tensors of different sizes differ everywhere."""
    a, b = np.asarray(a, dtype=np.int64).reshape(-1), np.asarray(b, dtype=np.int64).reshape(-1)
    if a.size != b.size:
        return Difference(max(a.size, b.size), max(a.size, b.size), 0, same_size=False)
    delta = np.abs(a - b)
    return Difference(int(a.size), int(np.count_nonzero(delta)), int(delta.max()) if delta.size else 0)
