"""The golden model reproduces every golden layer of the reference and example networks."""

import subprocess
from pathlib import Path

import pytest

from conftest import DORY_NETWORKS, EXAMPLE_NAMES, needs_shared, onnx_file, tool
from dory_mlir.dialects import qnn
from dory_mlir.golden.check import check_folder, find_test_sets
from dory_mlir.pipeline import load_network


def assert_every_layer_bit_exact(model: Path, folder: Path) -> None:
    module = load_network(model)
    report = check_folder(module, folder)
    failures = [r for r in report.rows if not r.skipped and (r.mismatches or r.note)]
    assert not failures, "\n" + report.table()
    assert report.passed()
    # Every layer of the network has a golden file and was compared.
    layers = sum(1 for op in module.walk() if isinstance(op, qnn.LayerOp))
    for test in find_test_sets(folder):
        assert sorted(test.layer_files) == list(range(layers))


@needs_shared
@pytest.mark.parametrize("folder", DORY_NETWORKS, ids=lambda p: p.name)
def test_reference_network_bit_exact(folder: Path):
    assert_every_layer_bit_exact(onnx_file(folder), folder)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_network_bit_exact(examples_dir: Path, name: str):
    """The examples' goldens come from onnx's ReferenceEvaluator, independent of our semantics."""
    assert_every_layer_bit_exact(examples_dir / name / "model.onnx", examples_dir / name)


def test_cli_prints_table_and_passes(examples_dir: Path):
    folder = examples_dir / "residual"
    done = subprocess.run([tool("dory-golden"), str(folder / "model.onnx"), "--check", str(folder)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "PASS: bit-exact" in done.stdout
    assert "add" in done.stdout and "Add_" in done.stdout


def test_cli_fails_on_a_wrong_golden_value(examples_dir: Path, tmp_path: Path):
    folder = tmp_path / "tampered"
    folder.mkdir()
    for f in (examples_dir / "tiny_cnn").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    lines = (folder / "out_layer1.txt").read_text().splitlines()
    lines[5] = f"{int(lines[5].rstrip(',')) + 1},"
    (folder / "out_layer1.txt").write_text("\n".join(lines) + "\n")
    done = subprocess.run([tool("dory-golden"), str(folder / "model.onnx"), "--check", str(folder)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    row = next(line for line in done.stdout.splitlines() if line.startswith("-    1 "))
    assert row.split()[6] == "1"  # exactly the one tampered value differs
    assert "FAIL" in done.stdout
