"""The proven L1 tilings on disk, one small JSON file per distinct (layer shape, L1 target).

Solving a shape (the search and its Z3 certificate, `solve.py`) is most of the tile pass; the result depends on
nothing but the shape, the target and the code. So a network compiled again, or any network with a
layer of a shape seen before, reads the result instead of proving it again. The key hashes the shape, the
target, every source file of `dory_mlir` (the model reads `kernel_abi.py` too) and the Z3 and numpy
versions: a change to the code is a different key, never a stale result. Writes are atomic (a temporary
file renamed), so parallel compiles share the cache; an unreadable entry is a miss, an unwritable cache is
no cache.

Folder: `$DORY_TILING_CACHE`, else `$XDG_CACHE_HOME/dory-mlir/tiling` (`~/.cache/dory-mlir/tiling`);
`DORY_TILING_CACHE=off` solves every shape every time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from dory_mlir.tiling.geometry import LoopOrder
from dory_mlir.tiling.model import DoesNotFit, L1Target, LayerShape, Tile, TilingResult

CACHE_ENV = "DORY_TILING_CACHE"


def cache_dir() -> Path | None:
    setting = os.environ.get(CACHE_ENV)
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dory-mlir" / "tiling"


@functools.cache
def code_version() -> str:
    """The code and the solvers the tiling runs on: any change is a different cache key."""
    import numpy
    import z3

    package = Path(__file__).parents[1]
    digest = hashlib.sha256(f"z3 {z3.get_full_version()} numpy {numpy.__version__}".encode())
    for source in hashed_sources():
        digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def hashed_sources() -> list[Path]:
    """Every source file of dory_mlir: the model reads more than `tiling/` (kernel_abi's im2col and partial sums)."""
    return sorted(Path(__file__).parents[1].rglob("*.py"))


def entry(folder: Path, layer: LayerShape, target: L1Target) -> Path:
    key = hashlib.sha256(f"{code_version()}\n{layer!r}\n{target!r}".encode()).hexdigest()
    return folder / f"{key[:40]}.json"


def load(layer: LayerShape, target: L1Target) -> TilingResult | DoesNotFit | None:
    """The stored result of the shape, or None (no cache, not stored yet, or unreadable)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        data = json.loads(entry(folder, layer, target).read_text())
        if "does_not_fit" in data:
            return DoesNotFit(layer, target, {str(k): int(v) for k, v in data["does_not_fit"].items()})
        return TilingResult(Tile(*(int(v) for v in data["tile"])), int(data["objective"]),
                            {str(k): int(v) for k, v in data["buffers"].items()}, int(data["z3_checks"]),
                            LoopOrder(data["order"]), int(data["stationary_slots"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(layer: LayerShape, target: L1Target, result: TilingResult | DoesNotFit) -> None:
    folder = cache_dir()
    if folder is None:
        return
    if isinstance(result, DoesNotFit):
        data: dict = {"does_not_fit": {k: int(v) for k, v in result.buffers.items()}}
    else:
        tile = result.tile
        data = {"tile": [int(tile.co), int(tile.ho), int(tile.wo), int(tile.ci)], "objective": int(result.objective),
                "buffers": {k: int(v) for k, v in result.buffers.items()}, "z3_checks": int(result.z3_checks),
                "order": result.order.value, "stationary_slots": int(result.stationary_slots)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(data, file)
            os.replace(name, entry(folder, layer, target))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a cache that cannot be written is no cache
