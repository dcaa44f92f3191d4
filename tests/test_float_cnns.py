"""The seeded float CNN generator (`dory_mlir.examples.float_cnns`)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from dory_mlir.examples import float_cnns as fc

NAMES = sorted(fc.float_networks())


def ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize("name", NAMES)
def test_model_is_valid_static_opset13_and_runs(name: str):
    model = fc.float_networks()[name](0)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 13
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    output = inferred.graph.output[0].type.tensor_type
    assert output.elem_type == onnx.TensorProto.FLOAT
    assert all(d.HasField("dim_value") for d in output.shape.dim)
    (x,) = fc.sample_inputs(0, fc.input_shape(model), 1)
    (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {fc.INPUT_NAME: x})
    assert y.shape == tuple(d.dim_value for d in output.shape.dim)
    assert np.all(np.isfinite(y)) and np.std(y) > 0.1  # He initialization keeps the scale


def test_catalogue_covers_the_layer_kinds():
    nets = {name: build(0) for name, build in fc.float_networks().items()}
    convs = [n for m in nets.values() for n in m.graph.node if n.op_type == "Conv"]
    assert any(attrs(n).get("group", 1) > 1 for n in convs), "depthwise"
    assert any(len(n.input) == 2 for n in convs) and any(len(n.input) == 3 for n in convs), "with and without bias"
    assert ops(nets["residual"])["Add"] == 1
    assert {"MaxPool", "AveragePool", "GlobalAveragePool"} <= set(ops(nets["pooling"]))
    assert ops(nets["depthwise_separable"])["MatMul"] == 1 and ops(nets["conv_stack"])["Gemm"] == 1
    shapes = {name: fc.input_shape(m) for name, m in nets.items()}
    assert shapes["pooling"][2] != shapes["pooling"][3], "non-square input"
    assert shapes["conv1d"][2] == 1, "1-D input as (1, C, 1, W)"
    assert len(shapes["mlp"]) == 2


def test_same_seed_same_bytes_other_seed_other_weights():
    build = fc.float_networks()["residual"]
    assert build(3).SerializeToString() == build(3).SerializeToString()
    weights = lambda m: np.concatenate([numpy_helper.to_array(t).reshape(-1) for t in m.graph.initializer])  # noqa: E731
    assert not np.array_equal(weights(build(3)), weights(build(4)))


def test_command_writes_model_and_samples(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "dory_mlir.examples.float_cnns", str(tmp_path), "--name", "pooling",
                           "--seed", "2", "--samples", "3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    model = onnx.load(tmp_path / "model.onnx")
    assert model.SerializeToString() == fc.float_networks()["pooling"](2).SerializeToString()
    samples = sorted((tmp_path / fc.SAMPLES_DIR).glob("*.npy"))
    assert len(samples) == 3
    first = np.load(samples[0])
    assert first.shape == fc.input_shape(model) and first.dtype == np.float32
    assert np.array_equal(first, fc.sample_inputs(2, first.shape, 1)[0])


def test_builder_rejects_bad_shapes():
    with pytest.raises(ValueError, match="batch 1"):
        fc.FloatNetBuilder(0, (2, 3, 8, 8), "x")
    b = fc.FloatNetBuilder(0, (1, 3, 8, 8), "x")
    with pytest.raises(ValueError, match="groups"):
        b.conv(8, 3, groups=2)
