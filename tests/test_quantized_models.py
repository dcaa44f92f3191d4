"""Float models quantized by onnxruntime (QDQ and QOperator) through the whole pipeline.

`dory-verify` runs the generated C on a quantized float input and checks (its PASS condition) that
the C equals the golden model bit for bit, that the input is quantized as onnxruntime does, and
that every layer, run on onnxruntime's own input tensors, is within 1 LSB of onnxruntime's output.
The models use weights in [-64, 64] (`--reduce-range`): onnxruntime's u8s8 kernels on x86 without VNNI
(this CI machine) saturate 16-bit pair sums for larger weights and are then not exact; there
`dory-verify` compares with onnx's exact ReferenceEvaluator instead (`--reference`, auto).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import tool
from dory_mlir.examples import float_cnns as fc
from dory_mlir.dialects import qnn
from dory_mlir.golden.interpreter import network_function
from dory_mlir.golden.layerwise import difference, run_layerwise
from dory_mlir.golden.onnxruntime_ref import OnnxRuntimeReference, input_quantizer, saturating_u8s8_kernels
from dory_mlir.ir_utils import layer_output_node
from dory_mlir.pipeline import load_network
from dory_mlir.quantize import QuantizeOptions, quantize

# (network, format, activations, per-channel weights). Two more models run below:
# depthwise_separable as QOperator (uint8, per tensor; a given input, 4 kB L1) and as QDQ (uint8,
# per channel; from dory-quantize): 5 QDQ and 2 QOperator models in all.
MODELS = [
    ("conv_stack", "qdq", "uint8", True),
    ("pooling", "qdq", "int8", True),
    ("conv1d", "qdq", "uint8", False),
    ("residual", "qdq", "int8", False),
    ("residual", "qoperator", "int8", True),
]
BOUND_LSB = 1
SUMMARY = re.compile(r"on onnxruntime's inputs (\d+) of (\d+) values differ from onnxruntime \(max (\d+), bound 1\); "
                     r"end to end (\d+) differ \(max (\d+)\)")


def model_id(spec: tuple) -> str:
    name, fmt, act, per_channel = spec
    return f"{name}-{fmt}-{act}-{'per-channel' if per_channel else 'per-tensor'}"


@pytest.fixture(scope="module")
def floats(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("float")
    for name, build in fc.float_networks().items():
        fc.write_float_network(build(0), root / name, 0)
    return root


def quantized(floats: Path, spec: tuple, reduce_range: bool = True) -> Path:
    name, fmt, act, per_channel = spec
    options = QuantizeOptions(format=fmt, activations=act, per_channel=per_channel, reduce_range=reduce_range)
    out = floats / f"{model_id(spec)}{'' if reduce_range else '-8bit'}.onnx"
    return quantize(floats / name / "model.onnx", out, options, calibration=floats / name / fc.SAMPLES_DIR)


def dory_verify(model: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("dory-verify"), str(model), *extra], capture_output=True, text=True, timeout=600)


def layer_rows(stdout: str) -> list[list[str]]:
    """The per-layer table: layer, op, node, shape, values, C vs golden, C vs onnxruntime, layer-wise."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    rows = []
    for line in lines[start + 1:]:
        if not line[:1].isdigit():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def assert_within_bound(done: subprocess.CompletedProcess) -> tuple[int, ...]:
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS") == 1 and "FAIL" not in done.stdout
    rows = layer_rows(done.stdout)
    assert rows and all(row[5] == "0" for row in rows), "C bit-exact with the golden model in every layer"
    for row in rows:
        match = re.fullmatch(r"0|(\d+) \(max (\d+)\)", row[7])
        assert match and (match.group(2) is None or int(match.group(2)) <= BOUND_LSB), row
    assert re.search(r"input: \d+ values quantized as '[^']+' .*; 0 differ from onnxruntime's", done.stdout)
    summary = SUMMARY.search(done.stdout)
    assert summary, done.stdout
    differing, values, max_abs, chained, chained_max = map(int, summary.groups())
    assert max_abs <= BOUND_LSB and differing <= values
    return differing, values, chained, chained_max


@pytest.mark.parametrize("spec", MODELS, ids=model_id)
def test_quantized_model_within_one_lsb_of_onnxruntime(floats: Path, spec: tuple):
    assert_within_bound(dory_verify(quantized(floats, spec), "--seed", "1"))


def test_pooling_differences_are_ties_of_average_pooling(floats: Path):
    """The one place the measured differences occur: a QDQ AveragePool keeps its input's scale,
    so y = zp + S / 4 with S the window sum over (x - zp), and a quarter of the windows are exact
    ties (S = 2 mod 4). The import rounds them half up; onnxruntime averages the dequantized
    values in float32 and divides by the scale, so its float error decides the tie either way.
    Every differing value is such a tie, one above onnxruntime's; every other layer is exact."""
    model = quantized(floats, ("pooling", "qdq", "int8", True))
    module = load_network(model)
    layers = {op.index.value.data: op for op in network_function(module).body.block.ops if isinstance(op, qnn.LayerOp)}
    nodes = {index: layer_output_node(layer) for index, layer in layers.items()}
    reference = OnnxRuntimeReference(model)
    quantizer = input_quantizer(reference.model, str(model))
    x = quantizer.random_input(fc.input_shape(reference.model), seed=1)
    _, ort = reference.run(x, list(nodes.values()))
    ort_layers = {index: ort[name] for index, name in nodes.items()}
    ours = run_layerwise(module, quantizer.quantize(x).reshape(fc.input_shape(reference.model)), ort_layers)
    differing = {index for index in layers if difference(ours[index], ort_layers[index]).differing}
    graph = reference.model.graph
    average = next(n for n in graph.node if n.op_type == "AveragePool")
    node = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == average.output[0])
    (pool,) = [index for index, name in nodes.items() if name == node.name]
    assert differing == {pool}
    source = layers[pool].operands[0].owner.index.value.data
    zero_point = int(next(numpy_helper.to_array(t) for t in graph.initializer if t.name == node.input[2]))
    n, c, h, w = ort_layers[source].shape
    sums = ort_layers[source].reshape(n, c, h // 2, 2, w // 2, 2).sum(axis=(3, 5)) - 4 * zero_point
    ties = sums % 4 == 2
    where = ours[pool] != ort_layers[pool]
    assert where.any() and np.all(ties[where])
    assert np.all(ours[pool][where] - ort_layers[pool][where] == 1)


def test_given_float_input_and_small_l1(floats: Path):
    spec = ("depthwise_separable", "qoperator", "uint8", False)
    sample = floats / "depthwise_separable" / fc.SAMPLES_DIR / "sample_2.npy"
    assert_within_bound(dory_verify(quantized(floats, spec), "--input", str(sample), "-p", "tile{l1-size=4000},lower-to-pulp"))


@pytest.mark.skipif(not saturating_u8s8_kernels(), reason="onnxruntime's u8s8 kernels are exact on this CPU (VNNI)")
def test_eight_bit_weights_meet_onnxruntimes_saturation(floats: Path):
    """With 8-bit weights, onnxruntime's own first conv saturates on this CPU: compared with it
    (`--reference onnxruntime`) the C (exact) is still bit-exact with the golden model, the bound
    fails, and the tool says why; by default the reference is then onnx's exact ReferenceEvaluator
    (with a note), and every layer equals it."""
    model = quantized(floats, ("conv_stack", "qdq", "uint8", True), reduce_range=False)
    done = dory_verify(model, "--seed", "1", "--reference", "onnxruntime")
    assert done.returncode == 1
    assert all(row[5] == "0" for row in layer_rows(done.stdout))
    assert "FAIL: " in done.stdout and "with saturation" in done.stdout and "--reference onnx" in done.stdout
    done = dory_verify(model, "--seed", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith("note: onnxruntime's u8s8 kernels saturate on this CPU")
    assert all(row[5] == row[6] == row[7] == "0" for row in layer_rows(done.stdout))
    assert "PASS: " in done.stdout and "on onnx's inputs 0 of" in done.stdout


def test_float_input_errors(floats: Path, tmp_path: Path):
    model = quantized(floats, ("conv_stack", "qdq", "uint8", True))
    wrong = floats / "conv1d" / fc.SAMPLES_DIR / "sample_0.npy"
    done = dory_verify(model, "--input", str(wrong))
    assert done.returncode == 1 and done.stderr.strip() == (
        f"error: {wrong}: sample has shape [1, 4, 1, 64], the model's input needs [1, 3, 16, 16]")
    float_model = floats / "conv_stack" / "model.onnx"
    done = dory_verify(floats / "conv_stack" / "model.onnx", "--input", str(wrong))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith(f"error: {float_model}: ")


def test_dory_quantize_float_model_to_c_with_calibration_folder(floats: Path, tmp_path: Path):
    """`dory-quantize` from a float model to the C application; the result verifies against onnxruntime."""
    source = floats / "depthwise_separable"
    done = subprocess.run([tool("dory-quantize"), str(source / "model.onnx"), "--calibration", str(source / fc.SAMPLES_DIR),
                           "--reduce-range", "-o", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_application(tmp_path, done.stdout)
    assert {n.op_type for n in onnx.load(tmp_path / "model.quant.onnx").graph.node} >= {"QuantizeLinear", "Conv"}
    assert_within_bound(dory_verify(tmp_path / "model.quant.onnx", "--input", str(source / fc.SAMPLES_DIR / "sample_0.npy")))


def test_dory_quantize_with_random_calibration(floats: Path, tmp_path: Path):
    done = subprocess.run([tool("dory-quantize"), str(floats / "residual" / "model.onnx"), "--samples", "4", "--seed", "3",
                           "--format", "qoperator", "--activations", "int8", "-o", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "calibrated on 4 random inputs (seed 3)" in done.stdout
    assert_application(tmp_path, done.stdout)
    model = onnx.load(tmp_path / "model.quant.onnx")
    assert {"QLinearConv", "QLinearAdd"} <= {n.op_type for n in model.graph.node}
    zero_point = next(t for t in model.graph.initializer if t.name == "input_zero_point")
    assert zero_point.data_type == onnx.TensorProto.INT8


def assert_application(out: Path, stdout: str) -> None:
    assert (out / "model.quant.onnx").is_file()
    for name in ("network.c", "network.h", "main.c", "Makefile", "Makefile.host"):
        assert (out / "app" / name).is_file()
    assert f"application: {out / 'app'}" in stdout
