"""Ops of users' graphs beyond conv/pool/add (issue 11, item 8): `Sub`, integer `ReduceSum`/
`ReduceMean`, `Slice`, `Concat` on channels/height/width, a `Pad` no convolution absorbs, and
QuantLib's C×1×1 requant constants on 1-D layers — each on a seeded generated network
(`quantlib_builder.data_op_networks`, goldens from onnx's ReferenceEvaluator), bit-exact in the
golden model on every tensor and in C under sanitizers; and the cases still refused, in one line.
"""

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import quantlib_examples, tool
from dory_mlir.examples import quantlib_builder
from test_errors import assert_one_line_error
from test_gemm_requant import assert_bit_exact as assert_golden_bit_exact
from test_verify import assert_bit_exact

NAMES = sorted(quantlib_builder.data_op_networks())


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> Path:
    return quantlib_examples(tmp_path_factory, "data_op_nets", NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_golden_bit_exact(nets: Path, name: str):
    assert_golden_bit_exact(nets / name)


@pytest.mark.parametrize("name", NAMES)
def test_c_bit_exact(nets: Path, name: str, tmp_path: Path):
    folder = nets / name
    done = subprocess.run([tool("dory-verify"), str(folder / "network.onnx"), "--golden", str(folder),
                           "--sanitize", "--keep", str(tmp_path / "app")], capture_output=True, text=True)
    assert_bit_exact(done)


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_golden(tmp_path: Path, seed: int):
    for name in NAMES:
        assert_golden_bit_exact(quantlib_builder.write_example(name, tmp_path / name, seed))


def single_node_model(tmp_path: Path, node: onnx.NodeProto, shape: list[int], out_shape: list[int] | None = None,
                      initializers=(), extra_nodes=()) -> Path:
    graph = helper.make_graph(
        [node, *extra_nodes], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(extra_nodes[-1].output[0] if extra_nodes else node.output[0],
                                       onnx.TensorProto.FLOAT, out_shape)], list(initializers))
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_squeezed_reduction_feeding_a_layer_is_refused(tmp_path: Path):
    reduce = helper.make_node("ReduceSum", ["x", "axes"], ["r"], name="sum", keepdims=0)
    pool = helper.make_node("MaxPool", ["r"], ["y"], name="pool", kernel_shape=[2])
    axes = onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    path = single_node_model(tmp_path, reduce, [1, 4, 6, 6], None, [axes], [pool])
    assert_one_line_error(subprocess.run([tool("dory-opt"), str(path)], capture_output=True, text=True), "node 'sum' (ReduceSum)", "keepdims=1")


def test_slice_with_negative_step_is_refused(tmp_path: Path):
    consts = [onnx.numpy_helper.from_array(np.array(v, dtype=np.int64), n)
              for n, v in (("s", [5]), ("e", [0]), ("a", [2]), ("st", [-1]))]
    node = helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"], name="flip")
    path = single_node_model(tmp_path, node, [1, 4, 6, 6], None, consts)
    assert_one_line_error(subprocess.run([tool("dory-opt"), str(path)], capture_output=True, text=True), "node 'flip' (Slice)", "step -1")


def test_concat_along_batch_is_refused(tmp_path: Path):
    node = helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=0)
    pool = helper.make_node("MaxPool", ["y"], ["z"], name="pool", kernel_shape=[1, 1])
    path = single_node_model(tmp_path, node, [1, 4, 6, 6], None, (), [pool])
    assert_one_line_error(subprocess.run([tool("dory-opt"), str(path)], capture_output=True, text=True), "node 'cat' (Concat)", "axis 0")
