"""onnxruntime as the reference (`dory_mlir.golden.onnxruntime_ref`) and the layer-wise golden run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from dory_mlir.diagnostics import DoryError
from dory_mlir.examples import float_cnns as fc
from dory_mlir.examples.nemo_builder import example_networks, make_input, write_example
from dory_mlir.golden.interpreter import run_network
from dory_mlir.golden.layerwise import difference, run_layerwise
from dory_mlir.golden.onnxruntime_ref import (
    InputQuantizer,
    OnnxRuntimeReference,
    input_quantizer,
    saturating_u8s8_kernels,
)
from dory_mlir.pipeline import load_network
from dory_mlir.quantize import QuantizeOptions, quantize


def quantize_linear_model(scale: np.float32, zero_point: np.ndarray, n: int) -> onnx.ModelProto:
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])
    elem = helper.np_dtype_to_tensor_dtype(zero_point.dtype)
    graph = helper.make_graph(
        [node], "q", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [n])],
        [helper.make_tensor_value_info("q", elem, [n])],
        initializer=[numpy_helper.from_array(np.array(scale, np.float32), "s"), numpy_helper.from_array(zero_point, "z")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("dtype, zero_point", [(np.uint8, 0), (np.uint8, 131), (np.int8, -7), (np.int8, 0)])
@pytest.mark.parametrize("scale", [0.0625, 0.0123456789, 3.0])
def test_input_quantization_equals_onnxruntimes_quantize_linear(dtype, zero_point, scale):
    scale = np.float32(scale)
    rng = np.random.default_rng(0)
    k = np.arange(-300, 300, dtype=np.float32)
    x = np.concatenate([
        (k + np.float32(0.5)) * scale,  # exact ties when the scale is a power of two
        k * scale,
        rng.normal(0, 200 * float(scale), 4000).astype(np.float32),
        np.float32([1e30, -1e30, 0.0, -0.0]),  # saturation
    ])
    zp = np.array(zero_point, dtype=dtype)
    (expected,) = ort.InferenceSession(quantize_linear_model(scale, zp, x.size).SerializeToString(),
                                       providers=["CPUExecutionProvider"]).run(None, {"x": x})
    quantizer = InputQuantizer("q", "q", scale, int(zero_point), np.dtype(dtype))
    assert np.array_equal(quantizer.quantize(x), expected.astype(np.int64))


def test_random_input_reaches_every_level():
    quantizer = InputQuantizer("q", "q", np.float32(0.02), 100, np.dtype(np.uint8))
    q = quantizer.quantize(quantizer.random_input((1, 3, 64, 64), seed=1))
    assert q.min() == 0 and q.max() == 255 and np.unique(q).size == 256
    assert np.array_equal(quantizer.random_input((4,), 2), quantizer.random_input((4,), 2))


def test_nan_input_is_an_error():
    quantizer = InputQuantizer("q", "q", np.float32(0.5), 0, np.dtype(np.int8))
    with pytest.raises(DoryError, match="NaN or infinite"):
        quantizer.quantize(np.array([1.0, np.nan], np.float32))


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> dict[str, Path]:
    """conv_stack and residual quantized as QDQ and QOperator with int8 and uint8 activations."""
    root = tmp_path_factory.mktemp("quantized")
    models = {}
    for name in ("conv_stack", "residual"):
        float_model = fc.write_float_network(fc.float_networks()[name](0), root / name, 0)
        for fmt in ("qdq", "qoperator"):
            for act in ("int8", "uint8"):
                models[f"{name}_{fmt}_{act}"] = quantize(
                    float_model, root / f"{name}_{fmt}_{act}.onnx", QuantizeOptions(fmt, act, reduce_range=True),
                    calibration=root / name / fc.SAMPLES_DIR)
    return models


def test_input_quantizer_is_found(quantized):
    model = onnx.load(quantized["residual_qdq_int8"])
    quantizer = input_quantizer(model, "m")
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert quantizer.node == "input_QuantizeLinear" and quantizer.dtype == np.int8
    assert quantizer.scale == values["input_scale"] and quantizer.zero_point == int(values["input_zero_point"])


def test_integer_valued_float_models_are_not_quantized_models(tmp_path: Path):
    write_example(example_networks()["tiny_cnn"](0), tmp_path, 0)
    assert input_quantizer(onnx.load(tmp_path / "model.onnx"), "m") is None


def test_float_op_before_the_quantize_linear_is_an_error(quantized):
    model = onnx.load(quantized["conv_stack_qdq_uint8"])
    relu = helper.make_node("Relu", ["input"], ["input_relu"], name="early_relu")
    for node in model.graph.node:
        node.input[:] = ["input_relu" if i == "input" else i for i in node.input]
    model.graph.node.insert(0, relu)
    with pytest.raises(DoryError, match="goes to 'early_relu' \\(Relu\\), not to one QuantizeLinear"):
        input_quantizer(model, "m")


@pytest.mark.parametrize("name", ["conv_stack_qdq_int8", "conv_stack_qdq_uint8", "residual_qdq_int8",
                                  "residual_qoperator_int8", "residual_qoperator_uint8"])
def test_exposed_tensors_are_onnxruntimes_own(quantized, name: str):
    """The input tensor is the quantized input, every tensor is in its type's range, and the last
    one dequantizes to exactly what a plain default session outputs."""
    reference = OnnxRuntimeReference(quantized[name])
    model = reference.model
    quantizer = input_quantizer(model, name)
    integer_nodes = [n.name for n in model.graph.node if n.op_type in ("QuantizeLinear", "QLinearConv", "QLinearAdd", "QGemm")]
    x = quantizer.random_input(fc.input_shape(model), seed=0)
    (output,), tensors = reference.run(x, integer_nodes)
    assert np.array_equal(tensors[quantizer.node], quantizer.quantize(x))
    lo, hi = quantizer.range
    assert all(lo <= t.min() and t.max() <= hi for t in tensors.values())
    (dequantize,) = [n for n in model.graph.node if n.output[0] == model.graph.output[0].name]
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = next(n.name for n in model.graph.node if n.output[0] == dequantize.input[0])
    last = (tensors[producer] - int(values[dequantize.input[2]])).astype(np.float32) * values[dequantize.input[1]]
    assert np.array_equal(last, output)


def test_unknown_node_is_an_error(quantized):
    reference = OnnxRuntimeReference(quantized["conv_stack_qdq_uint8"])
    with pytest.raises(DoryError, match="has no node 'nope'"):
        reference.run(np.zeros((1, 3, 16, 16), np.float32), ["nope"])


def test_saturating_kernels_follow_the_cpu_flags(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert saturating_u8s8_kernels(cpuinfo)
    cpuinfo.write_text("processor: 0\nflags\t\t: fpu sse2 avx2 avx_vnni\n")
    assert not saturating_u8s8_kernels(cpuinfo)
    cpuinfo.write_text("processor: 0\nisa: rv64imafdc\n")  # not x86
    assert not saturating_u8s8_kernels(cpuinfo)


def test_layerwise_run_feeds_each_layer_the_reference(tmp_path: Path):
    write_example(example_networks()["residual"](0), tmp_path, 0)
    module = load_network(tmp_path / "model.onnx")
    x = make_input(0, (1, 1, 32, 32)).astype(np.int64)
    _, own = run_network(module, x)
    same = run_layerwise(module, x, own)
    assert all(difference(same[i], own[i]).differing == 0 for i in own)
    # Layer 0 feeds layers 1 and 3 (branch and bypass): only they see the changed tensor.
    changed = {**own, 0: np.clip(own[0] + 1, 0, 255)}
    result = run_layerwise(module, x, changed)
    assert [i for i in own if difference(result[i], own[i]).differing] == [1, 3]


def test_difference_counts_and_max():
    d = difference(np.array([1, 2, 3, 4]), np.array([1, 3, 3, 1]))
    assert (d.values, d.differing, d.max_abs) == (4, 2, 3) and d.within(3) and not d.within(2)
    assert not difference(np.zeros(3), np.zeros(4)).within(10)
