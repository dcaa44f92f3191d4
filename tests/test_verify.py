"""The whole pipeline: ONNX → tile → lower-to-pulp → C → host build (ASan+UBSan) → every layer bit-exact."""

import subprocess
from pathlib import Path

import pytest

from conftest import DORY_NETWORKS, EXAMPLE_NAMES, needs_shared, onnx_file, tiered, tool

PIPELINES = {
    "default": None,
    "l1-8000": "tile{l1-size=8000},lower-to-pulp",
    "single-buffer": "tile{double-buffer=false},lower-to-pulp{double-buffer=false}",
    # activations streamed by rows and weights in channel slices from L3
    "l3-streaming": "tile{l1-size=8000 l2-size=64000},lower-to-pulp",
    "tiny-l2": "tile{l1-size=2000 l2-size=3000},lower-to-pulp",
}


def verify(model: Path, golden: Path, pipeline: str | None, sanitize: bool = True) -> subprocess.CompletedProcess:
    command = [tool("dory-verify"), str(model), "--golden", str(golden)]
    command += ["--sanitize"] if sanitize else []
    command += ["-p", pipeline] if pipeline else []
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def assert_bit_exact(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: bit-exact" in done.stdout
    assert "FAIL" not in done.stdout


# make test: every example with the default pipeline and each tight configuration once (test-full: all).
EXAMPLE_CASES = [(name, pipeline) for name in EXAMPLE_NAMES for pipeline in ("default", "l1-8000", "single-buffer", "tiny-l2")]
EXAMPLE_CI = {(name, "default") for name in EXAMPLE_NAMES} | {
    ("residual", "tiny-l2"), ("tiny_cnn", "tiny-l2"), ("mobile_block", "l1-8000"), ("padded", "single-buffer")}


@pytest.mark.parametrize(("name", "pipeline"), tiered(EXAMPLE_CASES, EXAMPLE_CI, [f"{n}-{p}" for n, p in EXAMPLE_CASES]))
def test_example_network_bit_exact_in_c(examples_dir: Path, name: str, pipeline: str):
    assert_bit_exact(verify(examples_dir / name / "model.onnx", examples_dir / name, PIPELINES[pipeline]))


# make test: every shared network with the default pipeline; the tight budgets on the networks whose
# tilings have reduction splits (PenguiNet: 6 layers at 8 kB, quantlab_Dronet: 8), ragged borders (dscnn:
# 9, dronet: 7), L3 streaming (quantlab_Dronet: 8 layers, Residual: 2) and 1-D layers (TCN);
# `dory-opt --tile-report` shows them. test-full: every network with every pipeline.
SHARED_CASES = [(folder, pipeline) for folder in DORY_NETWORKS for pipeline in ("default", "l1-8000", "l3-streaming")]
SHARED_CI = {(f, "default") for f in DORY_NETWORKS} | {(f, p) for f in DORY_NETWORKS for p, names in {
    "l1-8000": ("nemo_8-bits-2D_PenguiNet_32", "nemo_8-bits-2D_dscnn_test", "nemo_8-bits-2D_dronet_2.0"),
    "l3-streaming": ("quantlab_Dronet", "nemo_8-bits-2D_Residual_connection_test_1", "nemo_8-bits-1D_TCN_T"),
}.items() if f.name in names}


@needs_shared
@pytest.mark.parametrize(("folder", "pipeline"), tiered(SHARED_CASES, SHARED_CI, [f"{f.name}-{p}" for f, p in SHARED_CASES]))
def test_reference_network_bit_exact_in_c(folder: Path, pipeline: str):
    assert_bit_exact(verify(onnx_file(folder), folder, PIPELINES[pipeline]))


def test_random_input_without_golden_files(examples_dir: Path):
    done = subprocess.run([tool("dory-verify"), str(examples_dir / "residual" / "model.onnx"), "--seed", "3"],
                          capture_output=True, text=True, timeout=600)
    assert_bit_exact(done)
    assert "random" in done.stdout


def test_application_files_and_strict_build(examples_dir: Path, tmp_path: Path):
    app = tmp_path / "app"
    done = subprocess.run([tool("dory-opt"), str(examples_dir / "mobile_block" / "model.onnx"), "--tile",
                           "--lower-to-pulp", "-t", "pulp-c", "-o", str(app)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("network.c", "network.h", "main.c", "Makefile", "Makefile.host"):
        assert (app / name).is_file()
    built = subprocess.run(["make", "-s", "-f", "Makefile.host"], cwd=app, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr  # -std=c11 -Wall -Wextra -Werror
    assert "DORY_L1_SIZE=36700" in (app / "Makefile.host").read_text()
