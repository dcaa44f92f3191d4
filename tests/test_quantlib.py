"""QuantLib/Deeploy `RequantShift` networks (MLPerf Tiny and our generated ones) with npz goldens.

Golden model and generated C are compared with every recorded tensor that is a layer output
and with `outputs.npz`; recorded tensors inside a fused layer (conv accumulators) are listed
as skipped.
"""

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import MLPERF_NETWORKS, QUANTLIB_NAMES, needs_mlperf, tiered, tool
from dory_mlir.dialects import qnn
from dory_mlir.golden.check import check_folder, network_layers
from dory_mlir.golden.npz import input_type_for, load_npz_goldens
from dory_mlir.pipeline import load_network
from test_errors import assert_one_line_error
from test_verify import PIPELINES, assert_bit_exact, verify


def assert_golden_model_bit_exact(model: Path, folder: Path) -> None:
    module = load_network(model, input_type_for(folder))
    report = check_folder(module, folder, model)
    assert report.passed(), "\n" + report.table()
    compared_layers = {r.layer for r in report.rows if not r.skipped and r.compared}
    layers = network_layers(module)
    # Every layer's output and the network output were compared, none left out.
    assert compared_layers == {str(i) for i in layers} | {"output"}, "\n" + report.table()


@needs_mlperf
@pytest.mark.parametrize("folder", MLPERF_NETWORKS, ids=lambda p: p.name)
def test_mlperf_golden_model_bit_exact(folder: Path):
    assert_golden_model_bit_exact(folder / "network.onnx", folder)


@pytest.mark.parametrize("name", QUANTLIB_NAMES)
def test_generated_quantlib_golden_model_bit_exact(quantlib_dir: Path, name: str):
    assert_golden_model_bit_exact(quantlib_dir / name / "network.onnx", quantlib_dir / name)


# make test: the default pipeline (neither network streams from L3 at 64 kB of L2; test-full runs that too).
MLPERF_CASES = [(folder, pipeline) for folder in MLPERF_NETWORKS for pipeline in ("default", "l3-streaming")]


@needs_mlperf
@pytest.mark.parametrize(("folder", "pipeline"), tiered(MLPERF_CASES, {(f, "default") for f in MLPERF_NETWORKS},
                                                        [f"{f.name}-{p}" for f, p in MLPERF_CASES]))
def test_mlperf_bit_exact_in_c(folder: Path, pipeline: str):
    done = verify(folder / "network.onnx", folder, PIPELINES[pipeline])
    assert_bit_exact(done)
    assert "output" in done.stdout


QUANTLIB_CASES = [(name, pipeline) for name in QUANTLIB_NAMES for pipeline in ("default", "l1-8000")]
QUANTLIB_CI = {(name, "default") for name in QUANTLIB_NAMES} | {("resnet8", "l1-8000")}


@pytest.mark.parametrize(("name", "pipeline"), tiered(QUANTLIB_CASES, QUANTLIB_CI, [f"{n}-{p}" for n, p in QUANTLIB_CASES]))
def test_generated_quantlib_bit_exact_in_c(quantlib_dir: Path, name: str, pipeline: str):
    # MobileNetV1-0.25 at 128x128 takes ~30 s under ASan: sanitized in the smaller networks only
    sanitize = pipeline == "default" and name != "mobilenet_v1_025"
    assert_bit_exact(verify(quantlib_dir / name / "network.onnx", quantlib_dir / name, PIPELINES[pipeline], sanitize))


def test_signed_input_type_comes_from_the_npz_input(quantlib_dir: Path):
    assert input_type_for(quantlib_dir / "resnet8") == "si8"
    assert input_type_for(quantlib_dir / "mobilenet_v1_025") is None
    module = load_network(quantlib_dir / "resnet8" / "network.onnx", "si8")
    function = next(op for op in module.walk() if op.name == "func.func")
    assert qnn.element_type(function.function_type.inputs.data[0]).signedness.data.name == "SIGNED"


@needs_mlperf
def test_mlperf_activations_match_by_position():
    """Deeploy names activations after PyTorch modules: matched to nodes by position, accumulators skipped."""
    folder = MLPERF_NETWORKS[[p.name for p in MLPERF_NETWORKS].index("KeywordSpotting")]
    module = load_network(folder / "network.onnx")
    layers = network_layers(module)
    goldens = load_npz_goldens(folder, module, folder / "network.onnx")
    assert len(goldens.samples) == 1
    assert goldens.samples[0].layers[9][0] == "model_5"  # the max pool
    assert sorted(goldens.samples[0].layers) == sorted(layers)
    assert all("pact_conv2d" in name or "pact_lin" in name for name, _ in goldens.skipped)


def test_tampered_activation_fails(quantlib_dir: Path, tmp_path: Path):
    folder = tmp_path / "kws"
    folder.mkdir()
    for f in (quantlib_dir / "kws_maxpool").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    activations = dict(np.load(folder / "activations.npz"))
    name = list(activations)[1]  # layer 0's output (the first array is its conv accumulator)
    activations[name].reshape(-1)[3] += 1
    np.savez(folder / "activations.npz", **activations)
    done = subprocess.run([tool("dory-golden"), str(folder / "network.onnx"), "--check", str(folder)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "FAIL" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("-    0 "))
    assert row.split()[6] == "1"


def test_activation_count_mismatch_degrades_gracefully(quantlib_dir: Path, tmp_path: Path):
    """One tensor fewer than computing nodes: the others are still matched by position, the
    layer without a golden tensor is listed as not compared (issue 11, item 7)."""
    folder = tmp_path / "kws"
    folder.mkdir()
    for f in (quantlib_dir / "kws_maxpool").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    activations = {f"module_{i}": v for i, v in enumerate(np.load(folder / "activations.npz").values())}
    activations.popitem()
    np.savez(folder / "activations.npz", **activations)
    done = subprocess.run([tool("dory-golden"), str(folder / "network.onnx"), "--check", str(folder)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    assert "layer 4 not compared: no array of activations.npz records its output" in done.stdout
    assert [line.split()[1] for line in done.stdout.splitlines()[1:] if line.split()[1].isdigit()] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("change, fragments", [
    (lambda n: n.attribute.remove(next(a for a in n.attribute if a.name == "div")), ("RequantShift_", "'div'")),
    (lambda n: next(a for a in n.attribute if a.name == "div").t.CopyFrom(onnx.numpy_helper.from_array(np.array(0.0, np.float32))),
     ("RequantShift_", "div must be positive")),
    (lambda n: n.input.pop(), ("RequantShift_", "inputs (x, mul, add)")),
])
def test_bad_requant_shift_is_one_line_error(quantlib_dir: Path, tmp_path: Path, change, fragments):
    model = onnx.load(quantlib_dir / "kws_maxpool" / "network.onnx")
    change(next(n for n in model.graph.node if n.op_type == "RequantShift"))
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    assert_one_line_error(subprocess.run([tool("dory-opt"), str(path)], capture_output=True, text=True), *fragments)
