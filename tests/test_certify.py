"""The Z3 certificates (`tiling/certify.py`): chosen tilings and L2 plans are certified, wrong ones get a
counterexample naming the tile or the buffers, border tiles and clamped halos are part of the statement."""

import dataclasses
import itertools
import random

import pytest
import z3

from dory_mlir.tiling.certify import NotCertified, Term, Z3Terms, certify_plan, certify_tile, halo, tile_statement
from dory_mlir.tiling.geometry import LayerShape, input_rows
from dory_mlir.tiling.memory_plan import Buffer, check_plan
from dory_mlir.tiling.model import L1Target, Tile, footprint, total_bytes
from dory_mlir.tiling.solve import solve_l1
from test_tiling_model import random_layer, random_matmul_layer, random_row_constant_layer

# A strided, padded conv whose tiles do not divide the output: 3x3/s2, pad 1, 9x9 -> 5x5.
STRIDED = LayerShape("conv", 5, 6, 9, 9, 5, 5, 3, 3, 2, 2, const_bytes=8)


@pytest.mark.parametrize("seed", range(12))
def test_chosen_tilings_are_certified(seed: int):
    rng = random.Random(seed)
    make = [random_layer, random_matmul_layer, random_row_constant_layer][seed % 3]
    layer = make(rng)
    target = L1Target(rng.choice([256, 512, 1024, 4096]), cores=rng.choice([1, 8]), double_buffer=rng.random() < 0.8)
    try:
        result = solve_l1(layer, target)
    except Exception as error:  # noqa: BLE001 - only DoesNotFit may stop a tiling here
        assert type(error).__name__ == "DoesNotFit"
        return
    assert result.z3_checks == 1


def test_a_budget_lowered_after_choosing_gets_a_counterexample():
    target = L1Target(2000)
    tile = solve_l1(STRIDED, target).tile
    needed = total_bytes(STRIDED, tile, target)
    assert certify_tile(STRIDED, tile, dataclasses.replace(target, l1_bytes=needed)) == 1
    with pytest.raises(NotCertified, match=r"counterexample .* the tile Tile\(co=.*\) at origin .* is over the L1 budget"):
        certify_tile(STRIDED, tile, dataclasses.replace(target, l1_bytes=needed - 1))


def test_a_tile_outside_the_domain_gets_a_counterexample():
    depthwise = LayerShape("depthwise", 8, 8, 6, 6, 6, 6, 3, 3, const_bytes=8)
    with pytest.raises(NotCertified, match="outside the model's domain"):
        certify_tile(depthwise, Tile(4, 2, 2, 8), L1Target(10**6))  # its input channels must be its output's


def test_the_border_tiles_are_clipped():
    """Along ho the tiles of 2 rows are [0, 2), [2, 4), [4, 5): the last one holds one row, and its
    footprint (not the interior's) is what the statement states at the last origin."""
    target = L1Target(10**6)
    tile = Tile(6, 2, 5, 5)
    border = footprint(STRIDED, Tile(6, 1, 5, 5), target)
    assert sum(border.values()) < total_bytes(STRIDED, tile, target)
    for budget, expected in ((sum(border.values()), z3.unsat), (sum(border.values()) - 1, z3.sat)):
        statement = tile_statement(STRIDED, tile, dataclasses.replace(target, l1_bytes=budget))
        solver = z3.Solver(ctx=z3.Context())
        solver.from_string(statement.smt2(*statement.bounds, statement.origin["ho"] == 4, statement.clipped.ho == 1,
                                          statement.violations["over the L1 budget"]))
        assert solver.check() == expected


def test_the_halo_is_the_clamped_input_rows_at_any_position_and_padding():
    """The encoded halo is `geometry.input_rows` (padding excluded, clamped to the input)."""
    term = halo(Term("origin"), Term("rows"), STRIDED.sh, STRIDED.kh, STRIDED.dh, Term("pad"), STRIDED.h_in, Z3Terms())
    for start, count, padding in itertools.product(range(5), range(1, 3), range(3)):
        if start + count > STRIDED.h_out:
            continue
        ctx = z3.Context()
        defined = f"(declare-const value Int)(assert (= value {term.text}))"
        solver = z3.Solver(ctx=ctx)
        solver.from_string(defined.replace("origin", str(start)).replace("rows", str(count)).replace("pad", str(padding)))
        assert solver.check() == z3.sat
        value = solver.model().eval(z3.Int("value", ctx)).as_long()
        assert value == input_rows(start, start + count, STRIDED.sh, STRIDED.kh, STRIDED.dh, padding, STRIDED.h_in)
    # Every tile of the strided, padded conv reads a halo its input buffer holds: certified.
    assert certify_tile(STRIDED, Tile(6, 2, 2, 5), L1Target(10**6)) == 1


def test_l2_plans_are_certified_and_overlaps_get_a_counterexample():
    good = [Buffer("a", 100, 0, 2, 0), Buffer("b", 50, 1, 3, 100), Buffer("c", 100, 3, 4, 0)]
    assert not check_plan(good, 200) and certify_plan(good, 200) == 1
    overlapping = [*good[:2], Buffer("c", 100, 2, 4, 0)]
    assert check_plan(overlapping, 200)
    with pytest.raises(NotCertified, match="a and c share address .* at layer 2"):
        certify_plan(overlapping, 200)
    with pytest.raises(NotCertified, match="b past the budget"):
        certify_plan(good, 120)
