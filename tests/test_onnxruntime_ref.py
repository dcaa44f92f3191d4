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
    OnnxReference,
    OnnxRuntimeReference,
    _contrib_ops,
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


# ---------------------------------------------------------------------- onnx's ReferenceEvaluator


def exact_requant(acc: np.ndarray, scale: np.ndarray, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """clip(round_half_even(acc · scale) + zp) in exact rational arithmetic (scale: float32 values)."""
    from fractions import Fraction

    out = np.empty(acc.shape, dtype=np.int64)
    for index in np.ndindex(acc.shape):
        value = int(acc[index]) * Fraction(float(np.broadcast_to(scale, acc.shape)[index]))
        floor = value.numerator // value.denominator
        rest = value - floor
        rounded = floor + (1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2) else 0)
        out[index] = min(max(rounded + zero_point, lo), hi)
    return out


def qlinear_conv_model(rng: np.random.Generator, c_in: int, c_out: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """One QLinearConv 3x3 (u8 activations, s8 weights reaching ±127 per channel, int32 bias) and a QGemm
    after a Flatten, as onnxruntime's quantizer writes them."""
    f32 = np.float32
    values = {
        "x_s": f32(0.02), "x_z": np.uint8(120), "w": rng.integers(-127, 128, size=(c_out, c_in, 3, 3)).astype(np.int8),
        "w_s": (rng.uniform(0.002, 0.02, size=c_out)).astype(f32), "w_z": np.zeros(c_out, np.int8),
        "y_s": f32(0.05), "y_z": np.uint8(7), "b": rng.integers(-2000, 2000, size=c_out).astype(np.int32),
        "g": rng.integers(-127, 128, size=(5, c_out * 16)).astype(np.int8), "g_s": f32(0.013), "g_z": np.int8(0),
        "gb": rng.integers(-500, 500, size=5).astype(np.int32), "o_s": f32(0.11), "o_z": np.uint8(128),
    }
    nodes = [
        helper.make_node("QLinearConv", ["x", "x_s", "x_z", "w", "w_s", "w_z", "y_s", "y_z", "b"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["y"], ["f"]),
        helper.make_node("QGemm", ["f", "y_s", "y_z", "g", "g_s", "g_z", "gb", "o_s", "o_z"], ["o"], domain="com.microsoft", transB=1),
    ]
    graph = helper.make_graph(nodes, "qconv", [helper.make_tensor_value_info("x", onnx.TensorProto.UINT8, [1, c_in, 4, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.UINT8, None),
                               helper.make_tensor_value_info("o", onnx.TensorProto.UINT8, None)],
                              initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in values.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("com.microsoft", 1)])
    return model, values


def test_reference_evaluator_is_exact_where_onnxruntime_saturates():
    """onnx's QLinearConv and our QGemm (com.microsoft) equal exact integer accumulation and exact
    rational requantization (round half to even) with onnxruntime's float32 scales; onnxruntime's
    u8s8 kernels (x86 without VNNI) do not, with 8-bit weights."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(3)
    c_in, c_out = 16, 8
    model, v = qlinear_conv_model(rng, c_in, c_out)
    x = rng.integers(0, 256, size=(1, c_in, 4, 4)).astype(np.uint8)
    y, o = ReferenceEvaluator(model, new_ops=_contrib_ops()).run(None, {"x": x})
    padded = np.pad(x.astype(np.int64) - 120, ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = np.zeros((1, c_out, 4, 4), dtype=np.int64)
    for i in range(4):
        for j in range(4):
            acc[0, :, i, j] = np.einsum("oikl,ikl->o", v["w"].astype(np.int64), padded[0, :, i:i + 3, j:j + 3])
    acc += v["b"].reshape(1, -1, 1, 1)
    scale = (np.float32(0.02) * v["w_s"] / np.float32(0.05)).astype(np.float32).reshape(1, -1, 1, 1)  # float32, as onnxruntime
    assert np.array_equal(y, exact_requant(acc, scale, 7, 0, 255))
    gemm = (y.reshape(1, -1).astype(np.int64) - 7) @ v["g"].astype(np.int64).T + v["gb"]
    assert np.array_equal(o, exact_requant(gemm, np.float32(np.float32(0.05) * np.float32(0.013)) / np.float32(0.11), 128, 0, 255))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_y = session.run(["y"], {"x": x})[0]
    if saturating_u8s8_kernels():
        assert np.abs(ort_y.astype(int) - y.astype(int)).max() > 1  # saturated pair sums, not rounding


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_onnx_reference_runs_onnxruntimes_fused_graph(tmp_path: Path, fmt: str):
    """The evaluator runs the graph onnxruntime fuses a QDQ/QOperator model into (QLinearConv, QGemm,
    QLinearAdd, ...) and exposes the same original nodes as onnxruntime; with reduce-range weights
    (exact in onnxruntime too) the two agree within 1 (float32 vs exact requantization)."""
    fc.write_float_network(fc.float_networks()["residual"](0), tmp_path / "residual", 0)
    model = quantize(tmp_path / "residual" / "model.onnx", tmp_path / "q.onnx",
                     QuantizeOptions(format=fmt, activations="int8", per_channel=True, reduce_range=True),
                     calibration=tmp_path / "residual" / fc.SAMPLES_DIR)
    ours, theirs = OnnxReference(model), OnnxRuntimeReference(model)
    quantizer = input_quantizer(ours.model, str(model))
    x = quantizer.random_input(fc.input_shape(ours.model), seed=2)
    nodes = [n.name for n in ours.model.graph.node if n.op_type == "QuantizeLinear" or n.op_type.startswith("QLinear")]
    _, exact = ours.run(x, nodes)
    _, ort_values = theirs.run(x, nodes)
    assert set(exact) == set(nodes)
    for name in nodes:
        assert exact[name].shape == ort_values[name].shape
        assert np.abs(exact[name] - ort_values[name]).max() <= 1, name
