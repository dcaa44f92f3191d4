"""QuantLib's integer transformer ops (issue 15): Deeploy's integer kernel tests beyond conv/GEMM.

`iNoNorm(x, weight, bias)` {D, mul, n_levels} is an elementwise affine map with per-element constants,
`clip(floor(((x·weight + bias)·mul) / D))`: imported as a requantization of rows of features (constants
per row `[R, C]`), the identity depthwise layer with per-row constants, no kernel of its own. The
networks are our own seeded ones (`quantlib_builder.integer_op_networks`, goldens from onnx's
ReferenceEvaluator with Python implementations of the custom ops): bit-exact in the golden model and in
the generated C. Deeploy's tests must pass too (when ../shared is present). What is not supported is one
line naming the node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import SHARED_MODELS, tiered
from dory_mlir.examples import quantlib_builder
from test_gemm_rows import assert_error
from test_npz_inputs import golden
from test_verify import assert_bit_exact, verify

DEEPLOY = SHARED_MODELS / "deeploy-kernels"
SEEDS = list(range(12))
TIGHT = "tile{l1-size=600},lower-to-pulp"
CASES = [(seed, pipeline) for seed in SEEDS for pipeline in ("default", "tight")]
CI_CASES = {(0, "default"), (3, "tight")}


def write(name: str, folder: Path, seed: int = 0) -> Path:
    quantlib_builder.write_example(name, folder, seed)
    return folder


def assert_golden_pass(folder: Path) -> None:
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize(("seed", "pipeline"), tiered(CASES, CI_CASES, [f"{s}-{p}" for s, p in CASES]))
def test_random_no_norm_bit_exact(seed: int, pipeline: str, tmp_path: Path):
    """Golden model against the npz goldens, then the C (ASan+UBSan), default or tight L1."""
    folder = write("random_no_norm", tmp_path, seed)
    assert_golden_pass(folder)
    assert_bit_exact(verify(folder / "network.onnx", folder, TIGHT if pipeline == "tight" else None))


def test_random_no_norm_covers_the_cases():
    """The seeds cover both weight forms, batched rows, both input signs, a linear layer in front and a
    clip that binds (so a failure there is not a gap of the generator)."""
    seen = set()
    for seed in SEEDS:
        builder = quantlib_builder.random_no_norm(seed)
        norm = next(n for n in builder.nodes if n.op_type == "iNoNorm")
        x, weight, y = builder.values[norm.input[0]], builder.values[norm.input[1]], builder.values[norm.output[0]]
        seen.add("per element" if weight.ndim == 2 else "per feature")
        seen |= {"batched"} if x.ndim > 2 else set()
        seen.add("signed input" if builder.values["input"].min() < 0 else "unsigned input")
        seen |= {"after a layer"} if norm.input[0] != "input" else set()
        seen |= {"clipped"} if y.min() == -128 or y.max() == 127 else set()
    assert seen >= {"per element", "per feature", "batched", "signed input", "unsigned input", "after a layer",
                    "clipped"}, seen


@pytest.mark.skipif(not DEEPLOY.is_dir(), reason=f"Deeploy's kernel tests not found at {DEEPLOY}")
@pytest.mark.parametrize("name", ["iNoNorm"])
def test_deeploy_integer_ops(name: str):
    folder = DEEPLOY / f"Kernels-Integer-{name}"
    assert_golden_pass(folder)
    assert_bit_exact(verify(folder / "network.onnx", folder, None))


# ---------------------------------------------------------------------- one-line errors


def no_norm_model(tmp_path: Path, x_shape: list[int], weight, bias, name: str = "norm") -> tuple[Path, onnx.NodeProto]:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    attrs = {k: helper.make_tensor(k, onnx.TensorProto.FLOAT, [1], [v]) for k, v in
             (("D", 256.0), ("mul", 3.0), ("n_levels", 256.0))}
    inits = [onnx.numpy_helper.from_array(weight.astype("float32"), "w"),
             onnx.numpy_helper.from_array(bias.astype("float32"), "b")]
    node = helper.make_node("iNoNorm", ["x", "w", "b"], ["y"], name=name, **attrs)
    path = tmp_path / "no_norm.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y], inits)), path)
    return path, node


def test_no_norm_fractional_weight_is_one_line_error(tmp_path: Path):
    path, node = no_norm_model(tmp_path, [4, 8], np.full(8, 0.5), np.zeros(8))
    assert_error(path, node, "weight is not integer-valued")


def test_no_norm_unbroadcastable_weight_is_one_line_error(tmp_path: Path):
    path, node = no_norm_model(tmp_path, [4, 8], np.ones((3, 8)), np.zeros(8))
    assert_error(path, node, "weight of shape [3, 8] does not broadcast to the tensor [4, 8]")
