"""200 seeded random single-layer networks through the whole pipeline, bit-exact in C.

Each one is tiled (with random L1 and L2 budgets; small L2 budgets stream from L3), lowered, printed as C, built with
dory-verify's recipe (the kernel library compiled once per test session: dory_mlir/backend/build.py), run, and its output
compared with the golden model on the same IR. A failure names its seed:
`dory_mlir.examples.random_layers.random_layer(seed)` rebuilds the case.
"""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import Signedness

from dory_mlir.backend.build import HOST, build_application
from dory_mlir.backend.pulp_c import write_application
from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.examples.random_layers import L1_BUDGETS, random_layer
from dory_mlir.golden.files import to_layout
from dory_mlir.golden.interpreter import run_network
from dory_mlir.passes.fuse import FusePass
from dory_mlir.passes.lower_to_pulp import LowerToPulpPass
from dory_mlir.passes.tile import TilePass
from dory_mlir.pipeline import make_context

from conftest import tiered

# make test: seeds 0-199 (every kind of layer, 1-D and 2-D, budgets from tight to roomy); test-full: 0-599.
SEEDS = range(600)
CI_SEEDS = range(200)
# The 16-bit stream (inputs and outputs mostly ui16/si16): make test 0-23, test-full 0-149.
WIDE_SEEDS = range(150)
CI_WIDE_SEEDS = range(24)


def dtype(value) -> np.dtype:
    ty = qnn.element_type(value)
    return np.dtype(f"{'u' if ty.signedness.data == Signedness.UNSIGNED else 'i'}{max(1, ty.width.data // 8)}")


def tiled(layer) -> tuple[object, int, int]:
    """The layer tiled at its budgets, or at the next larger ones when nothing fits."""
    fused = layer.module.clone()
    FusePass().apply(make_context(), fused)
    for l2 in dict.fromkeys([layer.l2_size, None]):
        for budget in sorted({b for b in L1_BUDGETS if b >= layer.l1_size} | {36700}):
            module = fused.clone()
            try:
                TilePass(l1_size=budget, l2_size=l2).apply(make_context(), module)
                return module, budget, l2 or 400000
            except DoryError:
                continue
    raise AssertionError(f"{layer.describe()}: no budget fits")


@pytest.mark.parametrize("seed", tiered(SEEDS, CI_SEEDS))
def test_random_layer_bit_exact(seed: int, tmp_path: Path):
    check_bit_exact(random_layer(seed), tmp_path)


@pytest.mark.parametrize("seed", tiered(WIDE_SEEDS, CI_WIDE_SEEDS))
def test_random_16_bit_layer_bit_exact(seed: int, tmp_path: Path):
    check_bit_exact(random_layer(seed, wide=True), tmp_path)


def lowered_application(layer, tmp_path: Path):
    """Writes the layer's tiled C application into `tmp_path` with its input; returns what
    `assert_output_bit_exact` compares against (the golden module, its outputs, the budgets)."""
    golden = layer.module.clone()
    FusePass().apply(make_context(), golden)
    _, outputs = run_network(golden, layer.input)
    module, budget, l2_budget = tiled(layer)
    LowerToPulpPass().apply(make_context(), module)
    write_application(module, tmp_path)
    arg = golden.body.block.ops.first.body.block.args[0]  # type: ignore[union-attr]
    to_layout(layer.input, "HWC").astype(dtype(arg)).tofile(tmp_path / "input.bin")
    return golden, outputs, budget, l2_budget


def assert_output_bit_exact(layer, expected_run, tmp_path: Path) -> None:
    golden, outputs, budget, l2_budget = expected_run
    returned = golden.body.block.ops.first.body.block.last_op  # type: ignore[union-attr]
    got = np.fromfile(tmp_path / "out_layer0.bin", dtype=dtype(returned.operands[0])).astype(np.int64)
    expected = to_layout(outputs[0], "HWC")
    mismatches = int(np.count_nonzero(got != expected)) if got.size == expected.size else expected.size
    assert mismatches == 0, f"{layer.describe()} (tiled at L1 {budget} B, L2 {l2_budget} B): {mismatches} of {expected.size} values differ"


def check_bit_exact(layer, tmp_path: Path) -> None:
    expected_run = lowered_application(layer, tmp_path)
    try:
        binary = build_application(tmp_path, HOST, "gcc")
    except DoryError as e:
        raise AssertionError(f"{layer.describe()}: {e}") from None
    run = subprocess.run([str(binary)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"DORY_DUMP_DIR": str(tmp_path)})
    assert run.returncode == 0, f"{layer.describe()}: {run.stderr[-2000:]}"
    assert_output_bit_exact(layer, expected_run, tmp_path)
