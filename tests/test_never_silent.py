"""Never a silent wrong answer (issue 11, item 9): what cannot be compiled exactly is refused in one line.

- An integer `Concat` at the network output is not a float tail: it is compiled (both branches kept),
  while float ops and selections of one tensor are still left off with the warning.
- L3 capacity is checked in `tile` ("needs N B > budget M B"), as L1 and L2 are.
- No empty transfer: tiles and L3 slices whose window lies wholly in the padding (1-D TCN-style layers
  with wide causal padding) copy nothing, and the `dma.copy` verifier rejects a static size 0.
"""

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp, NoneAttr, StringAttr, TensorType, i8
from xdsl.ir import Block, Region
from xdsl.utils.exceptions import VerifyException

from conftest import tool
from test_errors import assert_one_line_error
from dory_mlir.backend.build import HOST
from dory_mlir.backend.pulp_c import RUNTIME, write_application
from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import dma, qnn
from dory_mlir.examples.nemo_builder import NemoNetBuilder
from dory_mlir.examples.random_layers import SI8, SI32, UI8, _Builder
from dory_mlir.frontend.onnx_import import import_onnx_file
from dory_mlir.golden.files import to_layout
from dory_mlir.golden.interpreter import run_network
from dory_mlir.passes.fuse import FusePass
from dory_mlir.passes.lower_to_pulp import LowerToPulpPass
from dory_mlir.passes.tile import TilePass
from dory_mlir.pipeline import make_context


def one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    assert_one_line_error(done, *fragments)
    return next(line for line in done.stderr.splitlines() if line.startswith("error: "))


def two_branches(tail) -> onnx.ModelProto:
    """conv → (conv3x3, conv1x1) → `tail(a, b)` nodes appended as the network output."""
    b = NemoNetBuilder(3, (1, 1, 8, 8))
    x = b.conv(4, 3)
    left = b.conv(4, 3, x=x)
    right = b.conv(4, 1, x=x)
    model = b.build()
    nodes, output = tail(left.name, right.name)
    model.graph.node.extend(nodes)
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    return model


def test_integer_concat_at_the_output_keeps_both_branches(tmp_path: Path):
    """Once refused (left off like a float tail, one branch would have vanished); now compiled:
    the output holds both branches, equal to onnx's reference evaluation of the graph."""
    from onnx.reference import ReferenceEvaluator

    model = two_branches(lambda a, b: ([helper.make_node("Concat", [a, b], ["cat"], name="Concat_out", axis=1)], "cat"))
    path = tmp_path / "concat.onnx"
    onnx.save(model, path)
    x = np.random.default_rng(0).integers(0, 256, size=(1, 1, 8, 8)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})
    module = import_onnx_file(path)
    FusePass().apply(make_context(), module)
    (output,), _ = run_network(module, x.astype(np.int64))
    assert output.shape == (1, 8, 8, 8)
    assert np.array_equal(output, expected.astype(np.int64))


def test_float_and_one_tensor_tails_are_left_off_with_the_warning(tmp_path: Path):
    def tail(a, b):  # Dronet's head: both outputs select from one tensor, one through a Sigmoid
        return [helper.make_node("Sigmoid", [a], ["sig"], name="Sigmoid_t"),
                helper.make_node("Concat", ["sig", a], ["cat"], name="Concat_t", axis=1)], "cat"

    path = tmp_path / "tail.onnx"
    onnx.save(two_branches(tail), path)
    done = subprocess.run([tool("dory-opt"), str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and "Sigmoid" in done.stderr and "left off" in done.stderr
    # A float op on a second tensor still loses it: refused.
    path = tmp_path / "two.onnx"
    onnx.save(two_branches(lambda a, b: ([helper.make_node("Sigmoid", [b], ["sig"], name="Sigmoid_b"),
                                          helper.make_node("Concat", [a, "sig"], ["cat"], name="Concat_ab", axis=1)], "cat")), path)
    one_line_error(subprocess.run([tool("dory-opt"), str(path)], capture_output=True, text=True), "node 'Concat_ab' (Concat)")


def test_l3_capacity_is_checked_in_tile(tmp_path: Path):
    b = NemoNetBuilder(5, (1, 4, 8, 8))
    b.conv(16, 3)
    b.conv(16, 3, stride=2)
    b.linear(10)
    path = tmp_path / "net.onnx"
    onnx.save(b.build(), path)
    module = import_onnx_file(path)
    FusePass().apply(make_context(), module)
    # Weights: 4·16·9 + 16·16·9 + 16·4·4·10 = 5,440 bytes, and the requant constants.
    with pytest.raises(DoryError, match=r"L3 needs [\d,]+ B \(weights and constants [\d,]+.*\) > budget 5,000 B"):
        TilePass(l3_size=5000).apply(make_context(), module.clone())
    TilePass(l3_size=20000).apply(make_context(), module.clone())
    # Activations streamed from L3 count too (a small L2 streams them).
    with pytest.raises(DoryError, match=r"activations streamed from L3 [\d,]+.*> budget 1 B"):
        TilePass(l2_size=1500, l3_size=1).apply(make_context(), module.clone())
    done = subprocess.run([tool("dory-opt"), str(path), "-p", "tile{l3-size=5000}"], capture_output=True, text=True)
    one_line_error(done, "needs", "> budget 5,000 B")
    done = subprocess.run([tool("dory-opt"), str(path), "-p", "tile{l3-size=0}"], capture_output=True, text=True)
    one_line_error(done, "l3-size must be positive")


def test_dma_copy_of_size_zero_is_rejected():
    block = Block(arg_types=[MemRefType(i8, [0, 4], NoneAttr(), StringAttr("L2")),
                             MemRefType(i8, [0, 4], NoneAttr(), StringAttr("L1"))])
    copy = dma.CopyOp(block.args[0], block.args[1])
    block.add_op(copy)
    with pytest.raises(VerifyException, match="empty transfer"):
        copy.verify()


def tcn_block(time_along_rows: bool) -> tuple[ModuleOp, np.ndarray]:
    """Two 1-D layers of a TCN: a 1x1 conv padded on both sides (its first and last outputs see only
    padding) and a dilated conv padded wider than its window, N×C×1×W (or N×C×T×1)."""
    rng = np.random.default_rng(7)

    def hw(time: int, other: int = 1) -> list[int]:
        return [time, other] if time_along_rows else [other, time]

    def pads(before: int, after: int) -> list[int]:
        return [before, 0, after, 0] if time_along_rows else [0, before, 0, after]

    w = 120
    x_type = TensorType(UI8, [1, 6, *hw(w)])
    block = Block(arg_types=[x_type])
    b = _Builder(rng)
    x = block.args[0]
    for c_in, c_out, k, d, before, after in ((6, 12, 1, 1, 2, 3), (12, 12, 3, 4, 13, 9)):
        wo = qnn.window_output_size(w, k, 1, before, after, d)
        weights = rng.integers(-128, 128, size=(c_out, c_in, *hw(k)))
        bias = rng.integers(-3000, 3000, size=c_out)
        acc = b.add(qnn.ConvOp(x, b.const(weights, SI8), b.const(bias, SI32), TensorType(SI32, [1, c_out, *hw(wo)]),
                               [1, 1], pads(before, after), hw(d), 1)).results[0]
        x = b.requant(acc, int(np.abs(weights).reshape(c_out, -1).sum(axis=1).max()) * 255 + 3000, c_out, UI8)
        w = wo
    for op in b.ops:
        block.add_op(op)
    block.add_op(func.ReturnOp(x))
    module = ModuleOp([func.FuncOp.from_region("network", [x_type], [x.type], Region(block))])
    module.verify()
    return module, rng.integers(0, 256, size=x_type.get_shape())


@pytest.mark.parametrize("time_along_rows", [False, True], ids=["NxCx1xW", "NxCxTx1"])
def test_padding_only_tiles_copy_nothing(time_along_rows: bool, tmp_path: Path):
    """Tight budgets (activations and weights streamed from L3): bit-exact in C, no transfer of 0 bytes."""
    module, x = tcn_block(time_along_rows)
    golden = module.clone()
    FusePass().apply(make_context(), golden)
    _, expected = run_network(golden, x)
    l1, l2 = 1500, 2048 if time_along_rows else 3328  # 1x W: the activations are not sliced, the weights stream
    FusePass().apply(make_context(), module)
    TilePass(l1_size=l1, l2_size=l2).apply(make_context(), module)
    tilings = [op.attributes["tiling"] for op in module.walk() if isinstance(op, qnn.LayerOp)]
    assert any(t.streamed_names or t.weights.data != "L2" for t in tilings)  # type: ignore[attr-defined]
    LowerToPulpPass().apply(make_context(), module)
    guarded = [op for op in module.walk() if isinstance(op, dma.CopyOp) and op.parent_op().name == "scf.if"]
    assert guarded, "the copies of padding-only tiles are guarded"
    write_application(module, tmp_path)
    sources = [*sorted((RUNTIME / "kernels").glob("*.c")), RUNTIME / "dma" / "dory_dma.c", *HOST.runtime_sources()]
    io = 2 * (x.size + 4 * 12 * 200)
    build = subprocess.run(["gcc", "-std=c11", "-O0", "-pthread", "-DDORY_HOST", f"-I{RUNTIME / 'host'}", f"-I{RUNTIME / 'include'}",
                            f"-DDORY_L1_SIZE={l1}", f"-DDORY_L2_SIZE={l2 + io}", "main.c", "network.c", *map(str, sources),
                            "-o", "network"], cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    to_layout(x, "HWC").astype(np.uint8).tofile(tmp_path / "input.bin")
    run = subprocess.run(["./network"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={"DORY_DUMP_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-2000:]
    for index, values in expected.items():
        got = np.fromfile(tmp_path / f"out_layer{index}.bin", dtype=np.uint8).astype(np.int64)
        assert np.array_equal(got, to_layout(values, "HWC").reshape(-1)), f"layer {index} differs"


def test_reshape_that_reorders_channels_last_bytes_is_refused(tmp_path: Path):
    """ONNX reshapes row-major NCHW; the deployed tensors are channels-last and qnn.reshape is a view of
    the same bytes: [1, 4, 2, 2] → [1, 2, 4, 2] feeding a conv compiled into C that differed from the
    golden model on every value. Refused by name; a flatten (to N×K) or a reshape with one channel
    or one pixel on both sides stays a view."""
    w = onnx.numpy_helper.from_array(np.ones((3, 2, 1, 1), np.float32), "w")
    shape = onnx.numpy_helper.from_array(np.array([1, 2, 4, 2], np.int64), "s")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["r"], name="regroup"),
         helper.make_node("Conv", ["r", "w"], ["y"], name="conv", kernel_shape=[1, 1])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 2, 2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [w, shape])
    path = tmp_path / "reshape.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    one_line_error(subprocess.run([tool("dory-opt"), str(path)], capture_output=True, text=True),
                   "node 'regroup' (Reshape)", "channels-last")
