"""Shared fixtures: the reference networks of ../shared (when present) and our own examples."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from dory_mlir.examples import quantlib_builder
from dory_mlir.examples.nemo_builder import example_networks, write_example
from dory_mlir.examples.quantlib_builder import example_networks as quantlib_networks

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = Path(os.environ.get("DORY_SHARED_MODELS", REPO.parent / "shared" / "models"))
DORY_NETWORKS = sorted(p for p in (SHARED_MODELS / "dory").glob("*") if p.is_dir())
MLPERF_NETWORKS = sorted(p for p in (SHARED_MODELS / "mlperf-tiny").glob("*") if p.is_dir())
EXAMPLE_NAMES = sorted(example_networks())
QUANTLIB_NAMES = sorted(quantlib_networks())

needs_shared = pytest.mark.skipif(not DORY_NETWORKS, reason=f"reference networks not found at {SHARED_MODELS}")
needs_mlperf = pytest.mark.skipif(not MLPERF_NETWORKS, reason=f"MLPerf Tiny networks not found at {SHARED_MODELS}")


def tiered(cases, in_ci, ids=None) -> list:
    """`cases` as pytest params, those not in `in_ci` marked `full`: `make test` runs a
    representative part of a matrix, `make test-full` all of it (pytest -m "not full" / no -m)."""
    params = []
    for i, case in enumerate(cases):
        values = case if isinstance(case, tuple) else (case,)
        marks = () if case in in_ci else (pytest.mark.full,)
        params.append(pytest.param(*values, marks=marks, id=ids[i] if ids else None))
    return params


def pytest_configure(config) -> None:
    """One kernel-library cache for the whole run (dory_mlir/backend/build.py), shared by the
    pytest-xdist workers, which inherit the environment: each configuration (host, host with
    ASan+UBSan, rv32) is compiled once per run, never taken from an earlier run."""
    if hasattr(config, "workerinput") or "DORY_BUILD_CACHE" in os.environ:
        return
    cache = tempfile.mkdtemp(prefix="dory-build-cache-")
    os.environ["DORY_BUILD_CACHE"] = cache
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))


def onnx_file(folder: Path) -> Path:
    (model,) = folder.glob("*.onnx")
    return model


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory) -> Path:
    """Every generated example network with its golden files, written once per session."""
    root = tmp_path_factory.mktemp("examples")
    for name, build in example_networks().items():
        write_example(build(0), root / name, 0)
    return root


@pytest.fixture(scope="session")
def quantlib_dir(tmp_path_factory) -> Path:
    """Every generated QuantLib-format network with its npz goldens, written once per session."""
    return quantlib_examples(tmp_path_factory, "quantlib", quantlib_networks())


def quantlib_examples(tmp_path_factory, folder: str, names) -> Path:
    """The QuantLib-format example networks `names` (seed 0), each in its subfolder of a new folder."""
    root = tmp_path_factory.mktemp(folder)
    for name in names:
        quantlib_builder.write_example(name, root / name, 0)
    return root


def tool(name: str) -> str:
    """A console script of this environment (the venv's bin need not be on PATH)."""
    return str(Path(sys.executable).parent / name)
