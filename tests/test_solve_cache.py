"""The on-disk cache of proven L1 tilings (`dory_mlir/tiling/solve_cache.py`): a shape solved once is read
back identical, a failing shape too; `off` stores nothing; a bad entry is a miss; another code version is
another key."""

from __future__ import annotations

import pytest

from dory_mlir.tiling import solve, solve_cache
from dory_mlir.tiling.model import DoesNotFit, L1Target, LayerShape

CONV = LayerShape("conv", 16, 32, 18, 18, 16, 16, 3, 3, 1, 1, const_bytes=8)
POINTWISE = LayerShape("pointwise", 32, 64, 8, 8, 8, 8, const_bytes=8)
TARGET = L1Target(8000)
SOLVE_L1 = solve.solve_l1  # its in-process cache, cleared so each test reaches the disk


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(solve_cache.CACHE_ENV, str(tmp_path / "tiling"))
    SOLVE_L1.cache_clear()
    yield tmp_path / "tiling"
    SOLVE_L1.cache_clear()


def no_solving(monkeypatch) -> None:
    def refuse(layer, target):
        raise AssertionError(f"solved {layer} again")

    monkeypatch.setattr(solve, "solve_l1", refuse)


def test_a_solved_shape_is_read_back_identical(cache, monkeypatch):
    layers = [CONV, POINTWISE, CONV]
    cold = solve.solve_all(layers, TARGET)
    assert len(list(cache.glob("*.json"))) == 2, "one entry per distinct shape"
    no_solving(monkeypatch)
    warm = solve.solve_all(layers, TARGET)
    assert [r for r, _ in warm] == [r for r, _ in cold]
    assert [r.z3_checks for r, _ in warm] == [r.z3_checks for r, _ in cold] and all(r.z3_checks for r, _ in cold)
    assert [s for _, s in warm] == [0.0, 0.0, 0.0]


def test_a_shape_that_does_not_fit_is_cached_too(cache, monkeypatch):
    tiny = L1Target(100)
    (cold, _), = solve.solve_all([CONV], tiny)
    assert isinstance(cold, DoesNotFit)
    no_solving(monkeypatch)
    (warm, _), = solve.solve_all([CONV], tiny)
    assert isinstance(warm, DoesNotFit) and warm.buffers == cold.buffers and str(warm) == str(cold)


def test_off_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(solve_cache.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    SOLVE_L1.cache_clear()
    solve.solve_all([POINTWISE], TARGET)
    assert solve_cache.cache_dir() is None and not any(tmp_path.rglob("*.json"))


def test_an_unreadable_entry_is_a_miss_and_rewritten(cache):
    (expected, _), = solve.solve_all([POINTWISE], TARGET)
    (entry,) = cache.glob("*.json")
    entry.write_text("{not json")
    SOLVE_L1.cache_clear()
    (again, _), = solve.solve_all([POINTWISE], TARGET)
    assert again == expected and solve_cache.load(POINTWISE, TARGET) == expected


def test_other_tiling_code_is_another_key(cache, monkeypatch):
    solve.solve_all([POINTWISE], TARGET)
    monkeypatch.setattr(solve_cache, "code_version", lambda: "a changed objective")
    assert solve_cache.load(POINTWISE, TARGET) is None


def test_the_key_covers_what_the_model_reads():
    names = {path.name for path in solve_cache.hashed_sources()}
    assert {"model.py", "solve.py", "traffic.py", "kernel_abi.py"} <= names
