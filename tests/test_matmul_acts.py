"""MatMul of two activations (issue 11; the foundation of attention's Q·Kᵀ and A·V).

`qnn.matmul` multiplies two tensors of rows ([*Ba, M, K] × [*Bb, K, N], batch axes broadcast as
ONNX's MatMul does), int8/uint8 each, int32 products, then optionally a requant per tensor, per
column or per batch slice. The networks are our own seeded ones (`quantlib_builder.matmul_networks`,
goldens from onnx's ReferenceEvaluator): bit-exact in the golden model and in the generated C,
also with L1 budgets so small that the rows, the columns and the reduction K are tiled. Deeploy's
three MatMul tests must pass too (when ../shared is present). What is not supported is one line.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import SHARED_MODELS, tiered, tool
from dory_mlir.dialects import qnn
from dory_mlir.examples import quantlib_builder
from dory_mlir.golden.npz import input_type_for
from dory_mlir.pipeline import load_network
from test_gemm_rows import assert_error
from test_npz_inputs import golden
from test_verify import assert_bit_exact, verify

SEEDS = list(range(24))
# Budgets that tile the small random networks by rows and columns (the tile's rows divide a batch slice).
TIGHT = "tile{l1-size=200},lower-to-pulp"
CASES = [(seed, pipeline) for seed in SEEDS for pipeline in ("default", "tight")]
# make test: 4-D broadcast batch axes, per-batch requant, operands from layers (9); a 2-D right operand
# broadcast over a batched left one, per-batch requant (12); int32 output of broadcast slices (10).
CI_CASES = {(9, "tight"), (12, "tight"), (10, "default")}
DEEPLOY = SHARED_MODELS / "deeploy-kernels"
DEEPLOY_MATMUL = ["MatMul-Regular", "MatMul-Regular_RQ", "MatMul-Batch"]


def write(name: str, folder: Path, seed: int = 0) -> Path:
    quantlib_builder.write_example(name, folder, seed)
    return folder


@pytest.mark.parametrize(("seed", "pipeline"), tiered(CASES, CI_CASES, [f"{s}-{p}" for s, p in CASES]))
def test_random_matmul_bit_exact(seed: int, pipeline: str, tmp_path: Path):
    """Golden model against the npz goldens, then the C (ASan+UBSan), default or tight L1."""
    folder = write("random_matmul", tmp_path, seed)
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    module = load_network(folder / "network.onnx", input_type_for(folder, folder / "network.onnx"))
    assert any(isinstance(op, qnn.MatMulOp) for op in module.walk())
    assert_bit_exact(verify(folder / "network.onnx", folder, TIGHT if pipeline == "tight" else None))


def test_random_matmul_covers_the_cases():
    """The seeds of the matrix cover broadcasting, both signs, every requant form and operands
    computed by layers (so a failure there is not a gap of the generator)."""
    seen = set()
    for seed in SEEDS:
        builder = quantlib_builder.random_matmul(seed)
        matmul = next(n for n in builder.nodes if n.op_type == "MatMul" and n.input[1] not in
                      {i.name for i in builder.initializers})
        a, b = (builder.values[x] for x in matmul.input)
        if a.shape[:-2] != b.shape[:-2]:
            seen.add("broadcast")
        if max(a.ndim, b.ndim) > 2:
            seen.add("batched")
        seen |= {"signed" if v.min() < 0 else "unsigned" for v in (a, b)}
        seen |= {"from a layer" for x in matmul.input if x not in builder.inputs}
        after = [n for n in builder.nodes if matmul.output[0] in n.input]
        if not after:
            seen.add("int32 output")
        else:
            mul = builder.values[after[0].input[1]]
            seen.add("per batch" if mul.ndim > 1 and mul.shape[-1] == 1 and mul.size > 1 else
                     "per column" if mul.size > 1 else "per tensor")
    assert seen >= {"broadcast", "batched", "signed", "unsigned", "from a layer", "int32 output", "per batch",
                    "per column", "per tensor"}, seen


@pytest.mark.parametrize("pipeline", tiered(
    ["tile{l1-size=400},lower-to-pulp", "tile{l1-size=160},lower-to-pulp",
     "tile{l1-size=400 double-buffer=false},lower-to-pulp{double-buffer=false}"],
    {"tile{l1-size=400},lower-to-pulp"}))
def test_reduction_split_with_per_batch_requant(pipeline: str, tmp_path: Path):
    """K = 240 in slices (int32 partial sums in L1) with constants per batch slice."""
    folder = write("matmul_long_k", tmp_path)
    module = load_network(folder / "network.onnx", "si8,ui8")
    (matmul,) = [op for op in module.walk() if isinstance(op, qnn.MatMulOp)]
    assert matmul.dims() == (6, 240, 5)
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    assert_bit_exact(verify(folder / "network.onnx", folder, pipeline))


def test_tiles_split_the_reduction(tmp_path: Path):
    folder = write("matmul_long_k", tmp_path)
    tiled = subprocess.run([tool("dory-opt"), str(folder / "network.onnx"), "-p", "tile{l1-size=400}"],
                           capture_output=True, text=True)
    assert tiled.returncode == 0, tiled.stderr
    # K = 240 does not fit 400 B: it is sliced (int32 partial sums), and no row tile straddles the two
    # batch slices of 6 rows (the cost model picks the sizes: today 2 tiles of 6 rows, 30 slices of 8).
    found = re.search(r"l1_tile = \[(\d+), (\d+), 1, (\d+)\], l1_tiles = \[1, (\d+), 1, (\d+)\]", tiled.stdout)
    assert found, tiled.stdout
    n, rows, k, row_tiles, k_slices = map(int, found.groups())
    assert n == 5 and 6 % rows == 0 and row_tiles == 12 // rows
    assert k < 240 and k_slices == -(-240 // k) > 1


@pytest.mark.skipif(not DEEPLOY.is_dir(), reason=f"Deeploy's kernel tests not found at {DEEPLOY}")
@pytest.mark.parametrize("name", tiered(DEEPLOY_MATMUL, {"MatMul-Regular_RQ"}))
def test_deeploy_matmul(name: str):
    folder = DEEPLOY / f"Kernels-Integer-{name}"
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    assert_bit_exact(verify(folder / "network.onnx", folder, None))


# ---------------------------------------------------------------------- one-line errors


def matmul_model(tmp_path: Path, a_shape: list[int], b_shape: list[int], name: str = "scores",
                 op: str = "MatMul", initializers=()) -> tuple[Path, onnx.NodeProto]:
    a = helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, a_shape)
    b = helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, b_shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node(op, ["a", "b"], ["y"], name=name)
    graph = helper.make_graph([node], "g", [a, b], [y], list(initializers))
    path = tmp_path / "matmul.onnx"
    onnx.save(helper.make_model(graph), path)
    return path, node


def test_unbroadcastable_batch_axes_are_one_line_error(tmp_path: Path):
    path, node = matmul_model(tmp_path, [2, 4, 8], [3, 8, 5])
    assert_error(path, node, "batch axes [2] and [3] do not broadcast")


def test_mismatched_k_is_one_line_error(tmp_path: Path):
    path, node = matmul_model(tmp_path, [4, 8], [6, 5])
    assert_error(path, node, "do not agree on K")


def test_vector_operand_is_one_line_error(tmp_path: Path):
    """A 1×K operand is a channel-first vector (a `qnn.linear` input), not rows."""
    path, node = matmul_model(tmp_path, [1, 8], [8, 5])
    assert_error(path, node, "operand 'a' of shape [1, 8] is not a matrix of rows")


def test_gemm_of_two_activations_is_one_line_error(tmp_path: Path):
    path, node = matmul_model(tmp_path, [4, 8], [8, 4], op="Gemm")
    assert_error(path, node, "Gemm of two activations ('a' × 'b')")


def test_requant_varying_per_batch_and_column_is_one_line_error(tmp_path: Path):
    """One value per batch slice, or per column: both at once has no form in the kernels."""
    folder = write("matmul_long_k", tmp_path)
    model = onnx.load(folder / "network.onnx")
    rq = next(n for n in model.graph.node if n.op_type == "RequantShift")
    for init in model.graph.initializer:
        if init.name == rq.input[1]:
            values = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(
                (values + np.arange(5, dtype=np.float32).reshape(1, 1, 5)).astype(np.float32), init.name))
    path = tmp_path / "varying.onnx"
    onnx.save(model, path)
    assert_error(path, rq, "varies per batch slice and within a slice")


def test_matmul_too_large_for_l2_is_one_line_error(tmp_path: Path):
    """A matmul's tensors stay in L2 (they are not streamed from L3): too small an L2 is one line."""
    folder = write("matmul_long_k", tmp_path)
    done = subprocess.run([tool("dory-opt"), str(folder / "network.onnx"), "-p", "tile{l2-size=4000}"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and "L2" in done.stderr, done.stderr
