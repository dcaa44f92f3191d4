"""Fits the cost model's per-kernel coefficients to rv32 instruction counts (QEMU) of the int8 kernels.

    .venv/bin/python bench/fit_kernel_costs.py [--write]

Runs tile shapes of every kernel kind (a spread of channels, including 1- and 3-channel tiles, pixels,
fewer pixel pairs than cores) on rv32imc under `qemu-system-riscv32 -icount shift=0` (the machinery of
bench/kernels_rv32.py: every output checked against the golden model) and fits, per kind, the
instructions of the busiest core as a non-negative combination of the terms of
`dory_mlir.tiling.cost.kernel_terms` (one call, outputs, MACs in 4-channel blocks, MACs of leftover
channels, im2col bytes, depthwise lines), weighting each case by 1 / its count (relative error). Prints
every case measured vs fitted; `--write` stores the coefficients in dory_mlir/tiling/kernel_costs.json.
The requantization is the NEMO exports' (`div64`) for conv, pointwise and depthwise, `shift32` for linear.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels_rv32 import add_bench, conv_bench, linear_bench, maxpool_bench, run_cases  # noqa: E402

from dory_mlir.tiling.cost import FEATURES, kernel_terms  # noqa: E402
from dory_mlir.tiling.cost_figures import KERNEL_COSTS  # noqa: E402
from dory_mlir.tiling.model import PY  # noqa: E402

CORES = 8
CONV = [(8, 8, 16, 16), (8, 8, 16, 1), (8, 8, 16, 3), (8, 8, 8, 4), (4, 4, 32, 8), (16, 16, 4, 8), (2, 2, 16, 32),
        (6, 6, 3, 16), (12, 12, 8, 6)]
POINTWISE = [(8, 8, 32, 32), (8, 8, 32, 1), (8, 8, 32, 3), (4, 4, 64, 64), (2, 2, 128, 16), (1, 1, 256, 64),
             (16, 16, 16, 8), (8, 8, 8, 12), (1, 2, 64, 5)]
DEPTHWISE = [(8, 8, 32, 1), (16, 16, 8, 1), (4, 4, 64, 1), (8, 8, 4, 1), (16, 16, 32, 2), (2, 2, 128, 1),
             (16, 4, 16, 1)]
LINEAR = [(256, 16), (1024, 4), (64, 64), (512, 1), (128, 10), (32, 100)]
POOL = [(8, 8, 16), (16, 16, 32), (4, 4, 64), (2, 2, 8)]
ADD = [(8, 8, 16), (16, 16, 32), (4, 4, 8), (2, 2, 64)]


def cases(rng) -> list[tuple[str, tuple, tuple]]:
    """(kind, tile (co, ho, wo, ci, kh, kw), bench case) of every measurement."""
    found = []
    for h, w, ci, co in CONV:
        found.append(("conv", (co, h, w, ci, 3, 3), conv_bench("conv", rng, h, w, ci, co, 3, 1, 1, "div64")))
    found.append(("conv", (8, 12, 12, 1, 5, 5), conv_bench("conv", rng, 24, 24, 1, 8, 5, 2, 2, "div64")))
    for h, w, ci, co in POINTWISE:
        found.append(("pointwise", (co, h, w, ci, 1, 1), conv_bench("pointwise", rng, h, w, ci, co, 1, 1, 0, "div64")))
    for h, w, c, s in DEPTHWISE:
        found.append(("depthwise", (c, -(-h // s), -(-w // s), c, 3, 3),
                      conv_bench("depthwise", rng, h, w, c, c, 3, s, 1, "div64", depthwise=True)))
    for ci, co in LINEAR:
        found.append(("linear", (co, 1, 1, ci, 1, 1), linear_bench("linear", rng, ci, co, "shift32")))
    for h, w, c in POOL:
        found.append(("maxpool", (c, h // 2, w // 2, c, 2, 2), maxpool_bench("maxpool", rng, h, w, c, 2)))
    for h, w, c in ADD:
        found.append(("add", (c, h, w, c, 1, 1), add_bench("add", rng, h, w, c)))
    return found


def nonnegative_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with coefficients ≥ 0: drop the most negative term and refit until none is."""
    active = list(range(x.shape[1]))
    while True:
        coef = np.zeros(x.shape[1])
        coef[active] = np.linalg.lstsq(x[:, active], y, rcond=None)[0]
        if (coef[active] >= 0).all():
            return coef
        active.remove(active[int(np.argmin(coef[active]))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"store the coefficients in {KERNEL_COSTS}")
    args = parser.parse_args()
    measured = cases(np.random.default_rng(1))
    counts = run_cases([case for _, _, case in measured])
    fitted: dict[str, dict[str, float]] = {}
    print(f"{'kind':10s} {'co ho wo ci kh kw':22s} {'measured':>9s} {'fitted':>9s} {'error':>7s}")
    for kind in dict.fromkeys(k for k, _, _ in measured):
        rows = [(tile, count) for (k, tile, _), count in zip(measured, counts, strict=True) if k == kind]
        if any(count is None for _, count in rows):
            sys.exit(f"{kind}: an output differs from the golden model")
        terms = [{"call": 1} | kernel_terms(kind, *tile[:4], *tile[4:], CORES, PY) for tile, _ in rows]
        names = [f for f in FEATURES if any(f in t for t in terms)]
        x = np.array([[t.get(f, 0) for f in names] for t in terms], dtype=float)
        y = np.array([worst for _, (_, worst) in rows], dtype=float)
        coef = nonnegative_fit(x / y[:, None], np.ones_like(y))
        fitted[kind] = {f: round(float(c), 4) for f, c in zip(names, coef, strict=True) if c > 0}
        for (tile, _), row, value in zip(rows, x, y, strict=True):
            estimate = float(row @ coef)
            print(f"{kind:10s} {' '.join(map(str, tile)):22s} {int(value):9d} {estimate:9.0f} "
                  f"{100 * (estimate - value) / value:+6.1f}%")
        print(f"{kind:10s} coefficients {fitted[kind]}")
    if args.write:
        KERNEL_COSTS.write_text(json.dumps({
            "source": "rv32imc instructions of the busiest core under qemu-system-riscv32 -icount shift=0 "
                      "(one instruction taken as one cycle); refit: .venv/bin/python bench/fit_kernel_costs.py --write",
            "kernels": fitted}, indent=2) + "\n")
        print(f"wrote {KERNEL_COSTS}")


if __name__ == "__main__":
    main()
