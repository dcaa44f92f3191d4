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


def test_unclipped_add_beyond_8_bits_is_exact_by_default(examples_dir: Path):
    """NEMO's add with no clip whose values exceed 255 (up to 400) feeding a conv: the default import
    carries it as a ui16 tensor and every layer is bit-exact; `--activations saturate` (DORY's 8-bit
    kernels) warns and differs from the exported network from the conv on."""
    folder = examples_dir / "residual_wide"
    done = subprocess.run([tool("dory-opt"), str(folder / "model.onnx"), "--fuse"], capture_output=True, text=True)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    assert "tensor<1x8x8x8xui16>" in done.stdout
    done = subprocess.run([tool("dory-golden"), str(folder / "model.onnx"), "--check", str(folder),
                           "--activations", "saturate"], capture_output=True, text=True)
    assert done.returncode == 1 and "saturating to [0, 255]" in done.stderr
    rows = {line.split()[1]: line.split() for line in done.stdout.splitlines() if line.startswith("-    ")}
    assert rows["2"][6] != "0" and rows["3"][6] != "0"  # the add saturates, the conv reading it differs


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


def test_nemo_average_pool_folding_to_the_window_sum(tmp_path: Path):
    """NEMO's average pool `AveragePool → Mul(kh·kw) → Mul(m) → Div(2^d) → Floor` with m = 2^d is the window sum
    itself (found by tests/test_random_graphs.py, seeds 326 and 353): it is requantized like the chain with any
    other m, not refused as a 32-bit operand of the next layer — by default exactly, into the 16-bit tensor its
    sums [0, 1020] need; with `--activations saturate` to 8 bits with the warning, as DORY does."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from dory_mlir.golden.interpreter import run_network

    scalar = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("AveragePool", ["x"], ["mean"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Mul", ["mean", "count"], ["sum"]),
        helper.make_node("Mul", ["sum", "m"], ["scaled"]),
        helper.make_node("Div", ["scaled", "two_d"], ["divided"]),
        helper.make_node("Floor", ["divided"], ["pooled"]),
        helper.make_node("Conv", ["pooled", "w"], ["acc"], kernel_shape=[1, 1]),
        helper.make_node("Clip", ["acc"], ["y"], min=0.0, max=255.0),
    ]
    graph = helper.make_graph(
        nodes, "identity_avgpool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])],
        [scalar("count", 4.0), scalar("m", 64.0), scalar("two_d", 64.0),
         numpy_helper.from_array(np.ones((1, 1, 1, 1), dtype=np.float32), "w")])
    model = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)]), model)
    x = np.array([[0, 63, 1, 2], [64, 128, 3, 4], [100, 0, 50, 50], [0, 0, 50, 50]]).reshape(1, 1, 4, 4)
    module = load_network(model, "ui8")
    outputs, _ = run_network(module, [x])
    (expected,) = ReferenceEvaluator(str(model)).run(None, {"x": x.astype(np.float32)})
    assert np.array_equal(outputs[0], expected.astype(np.int64))  # window sums 255, 10, 100, 200
    wide = np.array([[255, 255, 1, 2], [255, 255, 3, 4], [100, 0, 50, 50], [0, 0, 50, 50]]).reshape(1, 1, 4, 4)
    outputs, _ = run_network(module, [wide])
    (expected,) = ReferenceEvaluator(str(model)).run(None, {"x": wide.astype(np.float32)})
    assert np.array_equal(outputs[0], expected.astype(np.int64))  # a window sum of 1020, clipped by the conv's Clip
    done = subprocess.run([tool("dory-opt"), str(model), "--fuse"], capture_output=True, text=True)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    assert "tensor<1x1x2x2xui16>" in done.stdout
    done = subprocess.run([tool("dory-opt"), str(model), "--fuse", "--activations", "saturate"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "values may reach [0, 1020]" in done.stderr and "saturating to [0, 255]" in done.stderr
