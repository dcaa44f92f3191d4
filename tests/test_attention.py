"""Integer multi-head attention (issue 15): Reshape of rows into heads, Transpose, batched MatMuls.

A Reshape of rows of features into heads (`[S, H·D]` → `[S, H, D]`) and back is `qnn.reshape {rows}`, a
view (the bytes do not move); a Transpose of rows (rank 2 to 4, any permutation) is `qnn.transpose`, a
layer of its own done by DMA alone: each tile's output rows are gathered from the L2 input by one strided
copy into L1 and written back (`tile-layers`, `dma_transpose`). The heads then run as batched MatMuls of
two activations (`qnn.matmul`, batch = heads). The networks are our own seeded ones
(`quantlib_builder.attention_networks`: a QuantLib attention block and a Llama-style decoder step with
its KV cache as graph inputs; goldens from onnx's ReferenceEvaluator with Python implementations of the
custom ops), bit-exact in the golden model and in the C, with the DMA bytes the C counts equal to the tile
report; Deeploy's Attention test too (when ../shared is present).
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import SHARED_MODELS, tiered, tool
from dory_mlir.backend import rv32
from dory_mlir.dialects import qnn
from dory_mlir.examples import quantlib_builder
from dory_mlir.verify import measure_dma_agreement
from test_dma_counts import assert_agree
from test_gemm_rows import assert_error
from test_integer_ops import assert_golden_pass, write
from test_verify import assert_bit_exact, verify

DEEPLOY_ATTENTION = SHARED_MODELS / "deeploy-kernels" / "Kernels-Integer-Attention"
SEEDS = list(range(8))
TIGHT = "tile{l1-size=600},lower-to-pulp"
NETWORKS = sorted(quantlib_builder.attention_networks())
CASES = [(name, seed, pipeline) for name in NETWORKS for seed in SEEDS for pipeline in ("default", "tight")]
CI_CASES = {(name, seed, pipeline) for name in NETWORKS for seed, pipeline in ((0, "default"), (1, "tight"))}


@pytest.mark.parametrize(("name", "seed", "pipeline"), tiered(CASES, CI_CASES, ["-".join(map(str, c)) for c in CASES]))
def test_attention_network_bit_exact(name: str, seed: int, pipeline: str, tmp_path: Path):
    """Golden model against the npz goldens, then the C (ASan+UBSan), default or tight L1."""
    folder = write(name, tmp_path, seed)
    assert_golden_pass(folder)
    assert_bit_exact(verify(folder / "network.onnx", folder, TIGHT if pipeline == "tight" else None))


@pytest.mark.parametrize(("name", "pipeline"), tiered(
    [(n, p) for n in NETWORKS for p in ("default", "tight")], {("random_attention", "tight")}))
def test_attention_dma_counts_equal_report(name: str, pipeline: str, tmp_path: Path):
    """The transposes' strided gathers and write-backs are counted by the C as the report counts them."""
    folder = write(name, tmp_path / "net", 2)
    assert_agree(measure_dma_agreement(folder / "network.onnx", tmp_path / "app",
                                       TIGHT if pipeline == "tight" else "tile,lower-to-pulp"))


@pytest.mark.parametrize("shape", [(1, 2, 4, 8), (2, 3, 4, 8)])
def test_weights_on_4d_rows_bit_exact(shape: tuple[int, ...], tmp_path: Path):
    """A MatMul of 4-D rows ([B, H, S, D], heads as batch) with a constant weight + RequantShift per column:
    a pointwise layer over all B·H·S rows, tiled by a tight L1."""
    builder = quantlib_builder.QuantLibNetBuilder(len(shape) + shape[0], shape, signed_input=shape[0] == 1)
    builder.rows_linear("proj", 6, signed=True, per_column=True)
    folder = builder.write(tmp_path, "rows_4d")
    assert_golden_pass(folder)
    assert_bit_exact(verify(folder / "network.onnx", folder, "tile{l1-size=300},lower-to-pulp"))


def transposes(builder: quantlib_builder.QuantLibNetBuilder) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(input shape, perm) of every Transpose of a generated network."""
    found = []
    for node in builder.nodes:
        if node.op_type == "Transpose":
            perm = tuple(helper.get_attribute_value(node.attribute[0]))
            found.append((builder.values[node.input[0]].shape, perm))
    return found


def test_attention_generators_cover_the_cases():
    """The seeds vary what the lowering distinguishes: rank 3 and 4, one head and several, keys transposed
    in one step or two (heads first, then a 4-D permutation that moves the features), an MLP or not,
    a cache longer than one position."""
    seen: set[str] = set()
    for seed in SEEDS:
        attention = quantlib_builder.random_attention(seed)
        found = transposes(attention)
        seen.add(f"rank {len(found[0][0])}")
        seen.add("one head" if found[0][0][-2] == 1 else "several heads")
        seen |= {"keys in two steps"} if len(found) == 5 else {"keys in one step"}
        seen |= {"mlp"} if any(n.name.startswith("MatMul") and "fc1" in "".join(n.input) for n in attention.nodes) else set()
        decoder = quantlib_builder.llama_decoder_step(seed)
        seen.add(f"decoder cache of {'one' if decoder.values['k_cache'].shape[1] == 1 else 'several'} positions")
    assert seen >= {"rank 3", "rank 4", "one head", "several heads", "keys in two steps", "keys in one step", "mlp",
                    "decoder cache of several positions"}, seen


def transpose_model(tmp_path: Path, shape: list[int], perm: list[int], name: str = "move") -> tuple[Path, onnx.NodeProto]:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node("Transpose", ["x"], ["y"], name=name, perm=perm)
    path = tmp_path / "transpose.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), path)
    return path, node


PERMS_4D = ["".join(map(str, p)) for p in itertools.permutations(range(4))]


@pytest.mark.parametrize("perm_digits", tiered(PERMS_4D, {"0213", "0231", "3102"}))
def test_every_4d_permutation_bit_exact(perm_digits: str, tmp_path: Path):
    """A network of one Transpose of a [2, 3, 4, 5] input (rows of 5), each of the 24 permutations, in C
    with a tight L1 (several tiles) against numpy's transpose."""
    perm = [int(d) for d in perm_digits]
    path, _ = transpose_model(tmp_path, [2, 3, 4, 5], perm)
    x = np.random.default_rng(list(perm)).integers(0, 256, size=(2, 3, 4, 5))
    np.savez(tmp_path / "inputs.npz", x=x)
    np.savez(tmp_path / "outputs.npz", y=np.transpose(x, perm))
    assert_bit_exact(verify(path, tmp_path, "tile{l1-size=64},lower-to-pulp"))


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 6), (2, 3, 1, 5)])
def test_golden_transpose_is_numpys(shape: tuple[int, ...]):
    """qnn.transpose's golden model (on the rows tensor 1×K×R×1) is ONNX's Transpose, for every permutation."""
    x = np.random.default_rng(len(shape)).integers(-128, 128, size=shape)
    for perm in itertools.permutations(range(len(shape))):
        out = np.transpose(x, perm)
        rows = qnn.rows_of(x.reshape(-1), shape[-1])
        op = qnn.TransposeOp.__new__(qnn.TransposeOp)
        op.properties = {"shape": qnn.DenseArrayBase.from_list(qnn.i64, list(shape)),
                         "perm": qnn.DenseArrayBase.from_list(qnn.i64, list(perm))}
        assert np.array_equal(op.values(rows), qnn.rows_of(out.reshape(-1), out.shape[-1])), perm


@pytest.mark.skipif(rv32.find_toolchain() is None, reason=f"RISC-V toolchain absent: {rv32.SETUP}")
def test_attention_bit_exact_under_qemu(tmp_path: Path):
    """The decoder step (iRMSNorm, attention over the cache, MLP) built for rv32imc, run under QEMU."""
    folder = write("llama_decoder_step", tmp_path / "net", 1)
    done = subprocess.run([tool("dory-verify"), str(folder / "network.onnx"), "--golden", str(folder),
                           "--target", "rv32-qemu", "-p", TIGHT], capture_output=True, text=True, timeout=900)
    assert_bit_exact(done)
    assert "element moved" in done.stdout  # the transposes' rows of the instruction table


@pytest.mark.skipif(not DEEPLOY_ATTENTION.is_dir(), reason=f"Deeploy's Attention test not found at {DEEPLOY_ATTENTION}")
def test_deeploy_attention():
    assert_golden_pass(DEEPLOY_ATTENTION)
    assert_bit_exact(verify(DEEPLOY_ATTENTION / "network.onnx", DEEPLOY_ATTENTION, None))


# ---------------------------------------------------------------------- one-line errors


def test_transpose_of_channels_first_tensor_is_one_line_error(tmp_path: Path):
    """An NCHW feature map read by a conv is not rows: its transpose is refused, naming the node."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    weight = onnx.numpy_helper.from_array(np.ones((2, 2, 1, 1), dtype=np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv")
    node = helper.make_node("Transpose", ["c"], ["y"], name="move", perm=[0, 2, 3, 1])
    path = tmp_path / "nchw.onnx"
    onnx.save(helper.make_model(helper.make_graph([conv, node], "g", [x], [y], [weight])), path)
    assert_error(path, node, "Transpose of [1, 2, 4, 4] is not supported (only of rows of features")


def test_transpose_of_rank_five_is_one_line_error(tmp_path: Path):
    path, node = transpose_model(tmp_path, [1, 2, 3, 4, 5], [0, 1, 2, 4, 3])
    assert_error(path, node, "Transpose of [1, 2, 3, 4, 5] is not supported")


def test_bad_permutation_is_one_line_error(tmp_path: Path):
    path, node = transpose_model(tmp_path, [2, 3, 4], [0, 0, 2])
    assert_error(path, node, "perm [0, 0, 2] is not a permutation of the 3 axes of [2, 3, 4]")
