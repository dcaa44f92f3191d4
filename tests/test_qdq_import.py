"""onnxruntime-quantized models (QDQ and QOperator) into `qnn`: semantics against onnxruntime, errors.

The models are small seeded float networks quantized by `quantize_static`
(`dory_mlir/examples/ort_quantized.py`), with 7-bit weights (`reduce_range`) because onnxruntime's
u8×s8 kernels on x86 without VNNI saturate 16-bit pair sums and are then not exact themselves.
Each node is compared with onnxruntime on onnxruntime's own inputs (`qdq_reference.py`); a
mismatch is allowed only where `ort_requant.py`'s bound allows one: by 1, for an exact value
within ε of a rounding boundary (every ε of these models is below `BOUNDARY`).
"""

from __future__ import annotations

import html
import subprocess
from pathlib import Path

import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import tool
from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.examples import ort_quantized as oq
from dory_mlir.frontend.onnx_import import import_onnx_file
from dory_mlir.golden.interpreter import network_function
from dory_mlir.ir_utils import layer_output_node, loc_name
from dory_mlir.passes.fuse import FusePass
from dory_mlir.pipeline import make_context
from qdq_reference import compare

# The largest ε (ort_requant.py) of the test models' ops: the 2x2 average pool's (K + 4)·2^-24·(M + |zp_y|)
# with M + |zp_y| < 2^9, about 2^-11.8; the others are smaller. A mismatch farther from a rounding
# boundary than this would be an error of the import.
BOUNDARY = 2.0**-10

# (network, format, activations, per-channel weights, input low end: 0 gives input zero point 0 in uint8)
CASES = [
    ("conv", "qdq", "uint8", True, -1.0),
    ("conv", "qoperator", "int8", False, 0.0),
    ("conv1d", "qdq", "int8", True, -1.0),
    ("conv1d", "qoperator", "uint8", False, -1.0),
    ("depthwise", "qdq", "int8", False, 0.0),
    ("depthwise", "qoperator", "uint8", True, -1.0),
    ("residual", "qdq", "uint8", False, -1.0),
    ("residual", "qoperator", "int8", True, -1.0),
    ("pools", "qdq", "uint8", True, 0.0),
    ("pools", "qdq", "int8", False, -1.0),
    ("pools", "qoperator", "int8", True, 0.0),
    ("linear", "qdq", "int8", True, -1.0),
    ("linear", "qdq", "uint8", False, 0.0),
    ("linear", "qoperator", "uint8", True, -1.0),
    ("net", "qdq", "uint8", True, 0.0),
    ("net", "qdq", "int8", True, -1.0),
    ("net", "qoperator", "uint8", False, -1.0),
    ("net", "qoperator", "int8", False, 0.0),
]


def case_id(case: tuple) -> str:
    name, fmt, act, per_channel, low = case
    return f"{name}-{fmt}-{act}-{'per-channel' if per_channel else 'per-tensor'}-{'signed' if low < 0 else 'positive'}-input"


def write(tmp_path: Path, name: str, options: oq.Options) -> tuple[Path, tuple[int, ...]]:
    return oq.write(name, tmp_path / f"{name}-{options.format}-{options.activations}.onnx", options)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_node_matches_onnxruntime_within_the_bound(case: tuple, tmp_path: Path) -> None:
    name, fmt, act, per_channel, low = case
    options = oq.Options(fmt, act, per_channel, input_low=low)
    path, shape = write(tmp_path, name, options)
    result = compare(path, oq.sample(shape, options, 10))
    assert result.nodes, "no node was compared"
    for node in result.nodes:
        if node.mismatches:
            assert node.max_difference == 1, node
            assert node.worst_distance <= BOUNDARY, node
    values = sum(n.values for n in result.nodes)
    assert result.mismatches <= values // 50, f"{result.mismatches} of {values} values differ"


def test_qoperator_network_is_bit_exact(tmp_path: Path) -> None:
    """No float pipeline and no exact tie in this network: the goal, bit-exact, is met."""
    options = oq.Options("qoperator", "uint8", True, input_low=-1.0)
    path, shape = write(tmp_path, "net", options)
    for index in (10, 11):
        result = compare(path, oq.sample(shape, options, index))
        assert result.mismatches == 0, [n for n in result.nodes if n.mismatches]
        assert {n.node for n in result.nodes} >= {"conv1_quant", "dw_quant", "add_quant", "gap_quant", "fc_quant"}


def test_exact_ties_are_the_only_average_pool_difference(tmp_path: Path) -> None:
    """A QDQ AveragePool keeps its input quantization, so S = 1/4: exact ties, which onnxruntime
    rounds to even and the import up (the rounding `qnn.requant` has); nothing else differs."""
    options = oq.Options("qdq", "uint8", True, input_low=0.0)
    path, shape = write(tmp_path, "pools", options)
    result = compare(path, oq.sample(shape, options, 10))
    pool = next(n for n in result.nodes if n.node == "avgpool_QuantizeLinear")
    assert pool.mismatches > 0 and pool.max_difference == 1 and pool.worst_distance == 0.0
    assert all(n.mismatches == 0 for n in result.nodes if n is not pool)


def test_weights_with_a_zero_point_shift_exactly(tmp_path: Path) -> None:
    """uint8 weights (zero point 64 with 7 bits) and asymmetric int8 7-bit weights: w − zp fits int8."""
    model, shape = oq.conv(0)
    options = oq.Options("qdq", "uint8", True, input_low=-1.0)
    path = oq.quantize(model, shape, tmp_path / "u8w.onnx", options, weights="uint8")
    zero_points = {numpy_helper.to_array(i).reshape(-1)[0] for i in onnx.load(path).graph.initializer if "w_zero_point" in i.name}
    assert zero_points == {64}
    assert compare(path, oq.sample(shape, options, 10)).mismatches == 0
    options = oq.Options("qoperator", "uint8", True, input_low=-1.0)
    path = oq.quantize(model, shape, tmp_path / "asym.onnx", options, symmetric_weights=False)
    assert compare(path, oq.sample(shape, options, 10)).mismatches == 0


def test_input_type_and_zero_point_padding(tmp_path: Path) -> None:
    """The input is the first QuantizeLinear's integer type; a padded conv reading a non-zero zero
    point pads with it explicitly (exact), the others keep the conv's zero padding."""
    for act, element in (("uint8", "ui8"), ("int8", "si8")):
        path, _ = write(tmp_path, "conv", oq.Options("qdq", act, True, input_low=-1.0))
        function = network_function(import_onnx_file(path))
        assert str(qnn.element_type(function.function_type.inputs.data[0])) == element
    path, _ = write(tmp_path, "conv", oq.Options("qoperator", "uint8", True, input_low=-1.0))
    model = onnx.load(path)
    zp = int(numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "x_zero_point")))
    assert zp != 0
    ops = [op for op in network_function(import_onnx_file(path)).body.block.ops if not isinstance(op, qnn.ConstantOp)]
    pad, conv = ops[0], ops[1]
    assert isinstance(pad, qnn.PadOp) and pad.value.value.data == zp and pad.pads_tlbr() == (1, 1, 1, 1)
    assert isinstance(conv, qnn.ConvOp) and conv.pads_tlbr() == (0, 0, 0, 0) and loc_name(conv) == "conv1_quant"
    with pytest.raises(DoryError, match="--input-type si8 disagrees"):
        import_onnx_file(path, "si8")


@pytest.mark.parametrize("fmt, producers", [("qdq", {"QuantizeLinear"}), ("qoperator", {"QLinearConv", "QLinearAdd", "MaxPool", "QLinearGlobalAveragePool", "QGemm"})])
def test_fused_layers_name_the_nodes_producing_their_output(fmt: str, producers: set[str], tmp_path: Path) -> None:
    path, _ = write(tmp_path, "net", oq.Options(fmt, "uint8", True, input_low=0.0))
    module = import_onnx_file(path)
    FusePass().apply(make_context(), module)
    nodes = {n.name: n for n in onnx.load(path).graph.node}
    layers = [op for op in network_function(module).body.block.ops if isinstance(op, qnn.LayerOp)]
    assert [layer.kind() for layer in layers] == ["conv", "depthwise", "pointwise", "add", "maxpool", "conv", "avgpool", "linear"]
    assert {nodes[layer_output_node(layer)].op_type for layer in layers} == producers
    assert network_function(module).attributes["dropped_tail"]


def test_dory_verify_builds_and_matches(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "net", oq.Options("qdq", "uint8", True, input_low=0.0))
    page = tmp_path / "report.html"
    done = subprocess.run([tool("dory-verify"), str(path), "--report", str(page)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    # --report on the onnxruntime path: the tile report with the comparisons (none silently dropped)
    text = html.unescape(page.read_text())
    assert "on onnxruntime's inputs vs onnxruntime" in text and text.count("PASS") >= 8


def test_maxpool_with_its_own_output_quantization(tmp_path: Path) -> None:
    """quantize_static folds a ReLU after a MaxPool into the MaxPool's output range: the integer
    max pool, then Q(DQ(·)), one requant named after the group's QuantizeLinear."""
    g = oq._Graph(0)
    y = g.conv("x", "conv1", 3, 8, relu=False)
    y = g.node("Relu", [g.node("MaxPool", [y], "maxpool", kernel_shape=[2, 2], strides=[2, 2])], "relu")
    options = oq.Options("qdq", "uint8", True, input_low=-1.0)
    path = oq.quantize(g.model((1, 3, 8, 8), [(y, [1, 8, 4, 4])]), (1, 3, 8, 8), tmp_path / "mp.onnx", options)
    assert compare(path, oq.sample((1, 3, 8, 8), options, 10)).mismatches == 0
    ops = [op for op in network_function(import_onnx_file(path)).body.block.ops if not isinstance(op, qnn.ConstantOp)]
    pool, requant = ops[-3:-1]  # before func.return
    assert isinstance(pool, qnn.MaxPoolOp) and isinstance(requant, qnn.RequantOp) and requant.input == pool.output
    assert loc_name(requant) == "relu_QuantizeLinear" and requant.min.value.data == 0


def test_relu_between_equal_quantizations_is_an_integer_clip(tmp_path: Path) -> None:
    """DQ → Relu → Q with one quantization (written by hand: quantize_static folds ReLUs away)
    clips at the zero point; the clip joins the previous requant."""
    options = oq.Options("qdq", "int8", True, input_low=-1.0)
    path = quantized_model(tmp_path, "conv", activations="int8")
    model = onnx.load(path)
    q = next(n for n in model.graph.node if n.name == "conv2_QuantizeLinear")
    scale, zp = q.input[1], q.input[2]
    out = model.graph.output[0].name  # the last DequantizeLinear's, replaced by the ReLU group's
    model.graph.node.remove(next(n for n in model.graph.node if out in n.output))
    model.graph.node.extend([
        helper.make_node("DequantizeLinear", [q.output[0], scale, zp], ["r_in"], name="r_dq"),
        helper.make_node("Relu", ["r_in"], ["r_out"], name="relu"),
        helper.make_node("QuantizeLinear", ["r_out", scale, zp], ["r_q"], name="relu_q"),
        helper.make_node("DequantizeLinear", ["r_q", scale, zp], [out], name="y_dq"),
    ])
    onnx.save(model, path)
    assert compare(path, oq.sample((1, 3, 10, 10), options, 10)).mismatches == 0
    zero_point = int(numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == zp)))
    requants = [op for op in network_function(import_onnx_file(path)).body.block.ops if isinstance(op, qnn.RequantOp)]
    assert len(requants) == 2 and loc_name(requants[-1]) == "relu_q" and requants[-1].min.value.data == zero_point


# ----------------------------------------------------------------------------- errors (issue 5, item 4)


def quantized_model(tmp_path: Path, name: str, fmt: str = "qdq", **quantize_options) -> Path:
    activations, per_channel = quantize_options.pop("activations", "uint8"), quantize_options.pop("per_channel", True)
    options = oq.Options(fmt, activations, per_channel, input_low=-1.0)
    model, shape = oq.NETWORKS[name](0)
    return oq.quantize(model, shape, tmp_path / f"{name}-{fmt}.onnx", options, **quantize_options)


def edited(path: Path, change) -> Path:
    model = onnx.load(path)
    change(model)
    out = path.with_name(f"edited-{path.name}")
    onnx.save(model, out)
    return out


def assert_error(path: Path, *fragments: str) -> None:
    with pytest.raises(DoryError) as caught:
        import_onnx_file(path)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_dynamic_input_shape(tmp_path: Path) -> None:
    def dynamic(model: onnx.ModelProto) -> None:
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    assert_error(edited(quantized_model(tmp_path, "conv"), dynamic),
                 "node 'x_QuantizeLinear' (QuantizeLinear)", "dynamic dimension 'N'")


def test_dynamic_quantization_parameters(tmp_path: Path) -> None:
    def scale_from_data(model: onnx.ModelProto) -> None:
        """conv1's output scale computed by a node, as dynamic quantization computes it."""
        index, q = next((i, n) for i, n in enumerate(model.graph.node)
                        if n.op_type == "QuantizeLinear" and n.name != "x_QuantizeLinear")
        model.graph.node.insert(index, helper.make_node("ReduceMax", [q.input[1]], ["s"], name="range", keepdims=0))
        q.input[1] = "s"
    path = edited(quantized_model(tmp_path, "conv"), scale_from_data)
    assert_error(path, "node 'conv1_relu_QuantizeLinear' (QuantizeLinear)", "the scale is not a constant")


def test_weights_whose_zero_point_does_not_fit_int8(tmp_path: Path) -> None:
    path = quantized_model(tmp_path, "conv", "qoperator", symmetric_weights=False, reduce_range=False)
    assert_error(path, "node 'conv1_quant' (QLinearConv)", "asymmetric int8 weights with zero point", "outside int8")
    # Per-tensor: onnxruntime makes per-channel weights symmetric whatever the option says.
    path = quantized_model(tmp_path, "linear", "qdq", weights="uint8", symmetric_weights=False, reduce_range=False,
                           per_channel=False)
    assert_error(path, "node 'fc1_relu_QuantizeLinear' (QGemm)", "uint8 weights with zero point", "outside int8")


def sigmoid_in_the_middle(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    g = oq._Graph(seed)
    y = g.conv("x", "conv1", 3, 8)
    y = g.node("Sigmoid", [y], "sigmoid")
    y = g.conv(y, "conv2", 8, 8, relu=False)
    return g.model((1, 3, 8, 8), [(y, [1, 8, 8, 8])]), (1, 3, 8, 8)


@pytest.mark.parametrize("fmt, op", [("qdq", "Sigmoid"), ("qoperator", "QLinearSigmoid")])
def test_unsupported_op_between_layers(fmt: str, op: str, tmp_path: Path) -> None:
    model, shape = sigmoid_in_the_middle(0)
    path = oq.quantize(model, shape, tmp_path / f"sigmoid-{fmt}.onnx", oq.Options(fmt))
    assert_error(path, f"({op})", f"unsupported op '{op}'")


def test_float_op_between_layers(tmp_path: Path) -> None:
    """A node left in float (`nodes_to_exclude`) between quantized layers."""
    path = quantized_model(tmp_path, "depthwise", nodes_to_exclude=["dw"])
    assert_error(path, "node 'dw' (Conv)", "float ops between quantized layers are not supported")


def test_non_8_bit_activations(tmp_path: Path) -> None:
    path = quantized_model(tmp_path, "conv", activations="int16")
    assert_error(path, "(QuantizeLinear)", "int16 activations are not supported")


def test_average_pool_with_a_varying_count(tmp_path: Path) -> None:
    g = oq._Graph(0)
    y = g.conv("x", "conv1", 3, 8)
    y = g.node("AveragePool", [y], "avgpool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    model = g.model((1, 3, 8, 8), [(y, [1, 8, 8, 8])])
    path = oq.quantize(model, (1, 3, 8, 8), tmp_path / "avg.onnx", oq.Options("qoperator"))
    assert_error(path, "node 'avgpool_quant' (QLinearAveragePool)", "count_include_pad")


def test_errors_are_one_line_from_the_tools(tmp_path: Path) -> None:
    path = quantized_model(tmp_path, "conv", "qoperator", symmetric_weights=False, reduce_range=False)
    done = subprocess.run([tool("dory-opt"), str(path), "--fuse"], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "conv1_quant" in errors[0], done.stderr
