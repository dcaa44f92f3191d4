"""GEMM/MatMul on rows of features (issue 11, item 8): M×K and B×M×K activations times constant K×N
weights, as transformers' linear layers and Deeploy's GEMM tests export them.

Rows of K features are the HWC feature map 1×K×R×1 (`dory_mlir/tensor_layout.py`), so a row-wise
linear layer is a pointwise conv: the generated networks (`quantlib_builder.rows_networks`, goldens
from onnx's ReferenceEvaluator) must be bit-exact in the golden model against their npz goldens
(ONNX layout) and in the generated C. TransA is a one-line error naming the node; constants that vary
over the rows are tests/test_gemm_row_constants.py's, MatMul of two activations tests/test_matmul_acts.py's.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from xdsl.dialects import func
from xdsl.parser import Parser

from dory_mlir.dialects import qnn
from dory_mlir.examples import quantlib_builder
from dory_mlir.golden.check import check_folder, network_layers
from dory_mlir.golden.files import write_dory_txt
from dory_mlir.golden.npz import input_type_for
from dory_mlir.pipeline import load_network, make_context
from dory_mlir.quantize import QuantizeOptions, quantize
from dory_mlir.tensor_layout import (
    FEATURE_LAST_ATTR,
    FeatureLastShape,
    feature_last_tensors,
    ir_shape,
    ir_to_onnx,
    onnx_to_ir,
)
from dory_mlir.cli import opt as dory_opt

from conftest import quantlib_examples, tool
from test_errors import node
from test_gemm_requant import opt_error
from test_mlir_opt import MLIR_OPT
from test_npz_inputs import golden
from test_verify import assert_bit_exact, verify

ROWS = sorted(quantlib_builder.rows_networks())


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> Path:
    return quantlib_examples(tmp_path_factory, "rows_nets", ROWS)


def test_layout_maps_rows_to_pixels():
    """M×K is 1×K×M×1: feature k of row m is channel k of pixel row m; B×M×K concatenates the rows."""
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    shape = FeatureLastShape(x.shape)
    ir = onnx_to_ir(x, shape)
    assert ir_shape(shape) == [1, 4, 6, 1] and ir.shape == (1, 4, 6, 1)
    assert ir[0, 3, 4, 0] == x[1, 1, 3]
    assert np.array_equal(np.transpose(ir[0], (1, 2, 0)).reshape(-1), x.reshape(-1))  # HWC = row-major
    assert np.array_equal(ir_to_onnx(ir, shape), x)
    assert ir_shape((1, 4, 8)) == [1, 4, 1, 8]  # N×C×W stays channels first


@pytest.mark.parametrize("name", ROWS)
def test_rows_network_golden_model_bit_exact(nets: Path, name: str):
    folder = nets / name
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    module = load_network(folder / "network.onnx", input_type_for(folder, folder / "network.onnx"))
    layers = network_layers(module)
    kinds = [layer.kind() for layer in layers.values()]
    assert "pointwise" in kinds and set(kinds) <= {"pointwise", "add"}, kinds  # linear layers are 1×1 convs
    report = check_folder(module, folder, folder / "network.onnx")
    compared = {r.layer for r in report.rows if not r.skipped and r.compared}
    assert compared >= {str(i) for i in layers} | {"output"}, "\n" + report.table()


@pytest.mark.parametrize("name", ROWS)
def test_rows_network_bit_exact_in_c(nets: Path, name: str):
    assert_bit_exact(verify(nets / name / "network.onnx", nets / name, None))


@pytest.mark.full
@pytest.mark.parametrize("name", ROWS)
def test_rows_network_bit_exact_in_c_tiny_memories(nets: Path, name: str):
    """Tiles along the rows (H) and over the features."""
    assert_bit_exact(verify(nets / name / "network.onnx", nets / name, "tile{l1-size=2000 l2-size=3000},lower-to-pulp"))


SMALL_L2 = "tile{l1-size=8000 l2-size=20000}"


@pytest.fixture(scope="module")
def long_sequence(tmp_path_factory) -> Path:
    """256 rows × 64 features (16 kB in, 16 kB out) through two linear layers."""
    b = quantlib_builder.QuantLibNetBuilder(2, (256, 64), signed_input=True)
    b.rows_linear("fc1", 64, signed=True, gemm=True)
    b.rows_linear("fc2", 32, signed=True)
    return b.write(tmp_path_factory.mktemp("long_sequence"), "long")


def test_long_sequence_streams_from_l3_by_rows(long_sequence: Path):
    """With 20 kB of L2 the layer's input and output do not fit: the rows are image rows (H), so the
    tiler streams them from L3 in slices of rows (as 1×256 pixels, W = R, it could not)."""
    tiled = subprocess.run([tool("dory-opt"), str(long_sequence / "network.onnx"), "-p", SMALL_L2],
                           capture_output=True, text=True)
    assert tiled.returncode == 0 and 'streamed = ["layer0"]' in tiled.stdout, tiled.stderr


@pytest.mark.full
def test_long_sequence_streamed_bit_exact_in_c(long_sequence: Path):
    assert_bit_exact(verify(long_sequence / "network.onnx", long_sequence, f"{SMALL_L2},lower-to-pulp", sanitize=False))


def test_dory_txt_goldens_of_rows_are_row_major(nets: Path, tmp_path: Path):
    """DORY txt files are HWC, which for rows of features is ONNX's row-major order."""
    source = nets / "rows_mlp"
    x = np.load(source / "inputs.npz")["input_0"]
    out = np.load(source / "outputs.npz")["output_0"]
    write_dory_txt(tmp_path / "input.txt", "input", x.shape, x)
    write_dory_txt(tmp_path / "output.txt", "output", out.shape, out)
    model = source / "network.onnx"
    report = check_folder(load_network(model, "si8"), tmp_path, model)
    assert report.passed() and any(r.layer == "output" and r.layout == "HWC" for r in report.rows), report.table()


# ---------------------------------------------------------------------- one-line errors


def edited(nets: Path, tmp_path: Path, name: str, edit) -> Path:
    model = onnx.load(nets / name / "network.onnx")
    edit(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


def assert_error(path: Path, node: onnx.NodeProto, *fragments: str) -> None:
    status, err = opt_error(path)
    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in (f"node '{node.name}' ({node.op_type})", *fragments):
        assert fragment in err, err


def test_gemm_trans_a_and_fractional_alpha_are_one_line_errors(nets: Path, tmp_path: Path):
    for attribute, value, fragment in (("transA", 1, "transA = 1 is not supported"),
                                       ("alpha", 0.5, "alpha = 0.5 is not an integer")):
        def edit(model, attribute=attribute, value=value):
            gemm = node(model, "Gemm")
            kept = [a for a in gemm.attribute if a.name != attribute]
            del gemm.attribute[:]
            gemm.attribute.extend([*kept, helper.make_attribute(attribute, value)])
        path = edited(nets, tmp_path, "rows_mlp", edit)
        assert_error(path, node(onnx.load(path), "Gemm"), fragment)


def test_rows_tensor_into_a_conv_is_one_line_error(tmp_path: Path):
    """A 3-D input read by a MatMul holds rows (features last): a conv reading it too would see
    its axis 1 as channels, so the import refuses rather than guess."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    z = helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((8, 8), np.float32), "w")
    k = numpy_helper.from_array(np.ones((4, 4, 1), np.float32), "k")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc"),
                               helper.make_node("Conv", ["x", "k"], ["z"], name="conv")], "g", [x], [y, z], [w, k])
    path = tmp_path / "both.onnx"
    onnx.save(helper.make_model(graph), path)
    assert_error(path, graph.node[1], "holds rows of features [1, 4, 8]")


def test_one_by_k_linear_stays_a_linear_layer(tmp_path: Path):
    """The existing 1×K linear layers keep their `qnn.linear` (and numbering)."""
    folder = quantlib_builder.write_example("kws_maxpool", tmp_path / "kws", 0)
    module = load_network(folder / "network.onnx", None)
    kinds = [layer.kind() for layer in network_layers(module).values()]
    assert kinds[-1] == "linear", kinds
    assert any(isinstance(op, qnn.LinearOp) for op in module.walk())


@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt is not installed (make test installs mlir-19-tools)")
def test_feature_last_attribute_round_trips_through_mlir_opt(nets: Path):
    """The record of rows tensors (`onnx_feature_last`, keyed by ONNX tensor names that need quoting)
    is a plain dictionary attribute: generic MLIR like the rest of the fused IR."""
    ours = subprocess.run([tool("dory-opt"), str(nets / "rows_mlp" / "network.onnx"), "--fuse", "--print-op-generic"],
                          capture_output=True, text=True)
    assert ours.returncode == 0 and FEATURE_LAST_ATTR in ours.stdout, ours.stderr
    theirs = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", "--mlir-print-op-generic"],
                            input=ours.stdout, capture_output=True, text=True)
    assert theirs.returncode == 0, theirs.stderr
    back = Parser(make_context(), theirs.stdout).parse_module()
    assert back.is_structurally_equivalent(Parser(make_context(), ours.stdout).parse_module())
    function = next(op for op in back.ops if isinstance(op, func.FuncOp))
    assert feature_last_tensors(function)["input"] == (5, 24)


def float_rows_mlp(path: Path) -> Path:
    """A float MLP on 4 rows of 16 features: MatMul + Add bias, Relu, Gemm transB."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
               for name, shape in (("w1", (16, 12)), ("b1", (12,)), ("w2", (8, 12)))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc2", transB=1)]
    graph = helper.make_graph(nodes, "rows_mlp", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 16])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 8])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("fmt", [pytest.param("qdq"), pytest.param("qoperator", marks=pytest.mark.full)])
def test_quantized_rows_mlp_matches_onnxruntime(tmp_path: Path, fmt: str):
    """onnxruntime's rows (an M×K float input, quantized) are transposed into the IR's layout by
    dory-verify as by the golden readers: every layer equal to onnxruntime's."""
    options = QuantizeOptions(format=fmt, reduce_range=True)
    quantized = quantize(float_rows_mlp(tmp_path / "mlp.onnx"), tmp_path / "q.onnx", options, samples=8)
    done = subprocess.run([tool("dory-verify"), str(quantized)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and "PASS: 2 layers: C bit-exact" in done.stdout, done.stdout + done.stderr
    assert "0 of 80 values differ" in done.stdout and "end to end 0 differ" in done.stdout, done.stdout


def test_npz_goldens_of_rows_need_the_onnx_model(nets: Path, tmp_path: Path):
    """Without the graph the record of rows cannot name the arrays: the 16×16 input would be read
    untransposed and pass its shape check, so it is an error instead."""
    ir = tmp_path / "rows_matmul.mlir"
    status, err = import_to_file(nets / "rows_matmul" / "network.onnx", ir)
    assert status == 0, err
    done = golden(ir, nets / "rows_matmul")
    assert done.returncode == 1 and "give the .onnx file" in done.stderr and done.stderr.count("\n") == 1, done.stderr


def import_to_file(model: Path, output: Path) -> tuple[int, str]:
    """dory-opt MODEL -o OUTPUT in this process: status and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = dory_opt.main([str(model), "-o", str(output)])
    return status, err.getvalue()
