"""QuantLib's integer transformer ops (issue 15): Deeploy's integer kernel tests beyond conv/GEMM.

`iNoNorm(x, weight, bias)` {D, mul, n_levels} is an elementwise affine map with per-element constants,
`clip(floor(((x·weight + bias)·mul) / D))`: imported as a requantization of rows of features (constants
per row `[R, C]`), the identity depthwise layer with per-row constants, no kernel of its own. `iSoftmax` {coeffA, coeffB,
coeffC, log2, n_levels} over the last axis is `qnn.softmax`, a layer of its own (kernel `dory_softmax`,
tiles of whole rows); so is `iRMSNorm(x, weight)` {D, n_levels}, `qnn.rms_norm` (kernel `dory_rmsnorm`). `iHardswish` is
`qnn.hardswish`, elementwise with an int32 result that a following RequantShift requantizes in the same
layer (kernel `dory_hardswish`). The
networks are our own seeded ones (`quantlib_builder.integer_op_networks`, goldens from onnx's
ReferenceEvaluator with Python implementations of the custom ops): bit-exact in the golden model and in
the generated C. Deeploy's tests must pass too (when ../shared is present). What is not supported is one
line naming the node.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from conftest import SHARED_MODELS, tiered, tool
from dory_mlir.backend import rv32
from dory_mlir.examples import quantlib_builder
from test_gemm_rows import assert_error
from test_npz_inputs import golden
from test_verify import assert_bit_exact, verify

DEEPLOY = SHARED_MODELS / "deeploy-kernels"
SEEDS = list(range(12))
TIGHT = "tile{l1-size=600},lower-to-pulp"
NETWORKS = sorted(quantlib_builder.integer_op_networks())
CASES = [(name, seed, pipeline) for name in NETWORKS for seed in SEEDS for pipeline in ("default", "tight")]
CI_CASES = {(name, seed, pipeline) for name in NETWORKS for seed, pipeline in ((0, "default"), (3, "tight"))}


def write(name: str, folder: Path, seed: int = 0) -> Path:
    quantlib_builder.write_example(name, folder, seed)
    return folder


def assert_golden_pass(folder: Path) -> None:
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize(("name", "seed", "pipeline"), tiered(CASES, CI_CASES, ["-".join(map(str, c)) for c in CASES]))
def test_random_network_bit_exact(name: str, seed: int, pipeline: str, tmp_path: Path):
    """Golden model against the npz goldens, then the C (ASan+UBSan), default or tight L1."""
    folder = write(name, tmp_path, seed)
    assert_golden_pass(folder)
    assert_bit_exact(verify(folder / "network.onnx", folder, TIGHT if pipeline == "tight" else None))


def seen_cases(network: str, op_types: str, features) -> set[str]:
    """What the seeds of `network` cover at its node of one of the `op_types` (space-separated): the
    layout, the input's sign, a layer in front, a layer after, and whatever `features(builder, node, x, y)` adds."""
    seen: set[str] = set()
    for seed in SEEDS:
        builder = quantlib_builder.integer_op_networks()[network](seed)
        node = next(n for n in builder.nodes if n.op_type in op_types.split())
        x, y = builder.values[node.input[0]], builder.values[node.output[0]]
        seen.add("rank > 2" if x.ndim > 2 else "2-D")
        seen.add("signed input" if x.min() < 0 else "unsigned input")
        seen |= {"after a layer"} if node.input[0] != "input" else set()
        seen |= {"followed by a layer"} if node.output[0] != builder.last else set()
        seen |= {"clipped"} if y.min() == -128 or y.max() == 127 else set()
        seen |= features(builder, node, x, y)
    return seen


# The cases each generator's seeds must cover (so a failure there is not a gap of the generator).
COVERAGE = {
    "random_no_norm": ("iNoNorm", lambda b, n, x, y: {"per element" if b.values[n.input[1]].ndim == 2 else "per feature"},
                       {"per element", "per feature", "rank > 2", "2-D", "signed input", "unsigned input",
                        "after a layer", "clipped"}),
    "random_softmax": ("iSoftmax", lambda b, n, x, y: {"long rows"} if x.shape[-1] > 40 else set(),
                       {"rank > 2", "2-D", "signed input", "unsigned input", "after a layer", "followed by a layer",
                        "long rows"}),
    "random_rms_norm": ("iRMSNorm", lambda b, n, x, y: set(),
                        {"rank > 2", "2-D", "signed input", "unsigned input", "after a layer", "clipped"}),
    "random_hardswish": ("iHardswish", lambda b, n, x, y: set(),
                         {"rank > 2", "2-D", "signed input", "unsigned input", "after a layer", "followed by a layer"}),
    "random_ita_max": ("ITAMax ITAPartialMax", lambda b, n, x, y: {n.op_type} | ({"long rows"} if x.shape[-1] > 40 else set()),
                       {"rank > 2", "2-D", "signed input", "after a layer", "followed by a layer", "long rows", "ITAMax",
                        "ITAPartialMax"}),
    "random_layer_norm": ("iLayerNorm",
                          lambda b, n, x, y: {"per feature" if b.values[n.input[1]].size > 1 else "one for all"},
                          {"rank > 2", "2-D", "signed input", "unsigned input", "after a layer", "followed by a layer",
                           "clipped", "per feature", "one for all"}),
    "random_gelu": ("iGELU", lambda b, n, x, y: {"int32 output"} if n.output[0] == b.last else set(),
                    {"rank > 2", "2-D", "signed input", "unsigned input", "after a layer", "followed by a layer",
                     "int32 output"}),
    "random_true_integer_div": ("TrueIntegerDiv",
                                lambda b, n, x, y: {"folded into the requant" if n.output[0] not in b.recorded
                                                    else "rounded quotient"},
                                {"rank > 2", "2-D", "signed input", "unsigned input", "after a layer", "followed by a layer",
                                 "folded into the requant", "rounded quotient"}),
    "random_integer_mean": ("IntegerMean",
                            lambda b, n, x, y: ({"over channels" if 1 in n.attribute[0].ints else "over space only"}
                                                | ({"dropped axes"} if y.ndim < x.ndim else set())),
                            {"rank > 2", "signed input", "unsigned input", "after a layer", "followed by a layer",
                             "over channels", "over space only", "dropped axes"}),
}


@pytest.mark.parametrize("network", sorted(COVERAGE))
def test_random_network_covers_the_cases(network: str):
    op_type, features, expected = COVERAGE[network]
    seen = seen_cases(network, op_type, features)
    assert seen >= expected, seen
    if network == "random_hardswish":  # an int32 output, as Deeploy's Hardswish-Regular
        assert any(quantlib_builder.random_hardswish(s).nodes[-1].op_type == "iHardswish" for s in SEEDS)


@pytest.mark.parametrize(("network", "seed"), [("random_softmax", 1), ("random_layer_norm", 10)])
def test_row_op_tiles_hold_whole_rows(network: str, seed: int, tmp_path: Path):
    """A tight L1 splits the rows, never a row's features."""
    folder = write(network, tmp_path, seed)
    tiled = subprocess.run([tool("dory-opt"), str(folder / "network.onnx"), "-p", "tile{l1-size=200}"],
                           capture_output=True, text=True)
    assert tiled.returncode == 0, tiled.stderr
    k = quantlib_builder.integer_op_networks()[network](seed).values["input"].shape[-1]
    assert f"l1_tile = [{k}, " in tiled.stdout and "l1_tiles = [1, 1, " not in tiled.stdout, tiled.stdout



# One network per kernel of these ops on rv32imc under QEMU (its 32-bit C: dory_layernorm's 64-bit
# quotients, dory_gelu, dory_itamax in groups), some after and before other layers.
RV32_CASES = [("random_layer_norm", 9), ("random_gelu", 1), ("random_ita_max", 5)]


@pytest.mark.skipif(rv32.find_toolchain() is None, reason=f"RISC-V toolchain absent: {rv32.SETUP}")
@pytest.mark.parametrize(("name", "seed"), tiered(RV32_CASES, {("random_layer_norm", 9)}))
def test_random_network_bit_exact_on_rv32(name: str, seed: int, tmp_path: Path):
    folder = write(name, tmp_path, seed)
    done = subprocess.run([tool("dory-verify"), str(folder / "network.onnx"), "--golden", str(folder),
                           "--target", "rv32-qemu"], capture_output=True, text=True, timeout=900)
    assert_bit_exact(done)


@pytest.mark.skipif(not DEEPLOY.is_dir(), reason=f"Deeploy's kernel tests not found at {DEEPLOY}")
@pytest.mark.parametrize("name", tiered(
    ["iNoNorm", "Softmax-Regular", "Softmax-Large", "RMSNorm", "Hardswish-Regular", "Hardswish-Regular_RQ",
     "TrueIntegerDiv"],
    {"iNoNorm", "Softmax-Regular", "RMSNorm", "Hardswish-Regular_RQ", "TrueIntegerDiv"}))
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


def softmax_model(tmp_path: Path, x_shape: list[int], axis: int = -1, name: str = "softmax") -> tuple[Path, onnx.NodeProto]:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    attrs = {k: helper.make_tensor(k, onnx.TensorProto.FLOAT, [1], [v]) for k, v in
             (("coeffA", 1.0), ("coeffB", 345.0), ("coeffC", 62395.0), ("log2", 255.0), ("n_levels", 256.0))}
    node = helper.make_node("iSoftmax", ["x"], ["y"], name=name, axis=axis, **attrs)
    path = tmp_path / "softmax.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), path)
    return path, node


def test_softmax_over_another_axis_is_one_line_error(tmp_path: Path):
    path, node = softmax_model(tmp_path, [1, 4, 8], axis=1)
    assert_error(path, node, "iSoftmax over axis 1 of the tensor [1, 4, 8] is not supported")


def test_softmax_overflowing_row_is_one_line_error(tmp_path: Path):
    path, node = softmax_model(tmp_path, [2, 30000])
    assert_error(path, node, "the 32-bit sum or the products by 255 would overflow")


def test_rms_norm_divisor_not_a_power_of_two_is_one_line_error(tmp_path: Path):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node("iRMSNorm", ["x", "w"], ["y"], name="norm", D=1000, n_levels=256)
    weight = onnx.numpy_helper.from_array(np.full(8, 1000, dtype=np.float32), "w")
    path = tmp_path / "rms.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y], [weight])), path)
    assert_error(path, node, "iRMSNorm D = 1000 is not a power of two")


def test_no_norm_fractional_weight_is_one_line_error(tmp_path: Path):
    path, node = no_norm_model(tmp_path, [4, 8], np.full(8, 0.5), np.zeros(8))
    assert_error(path, node, "weight is not integer-valued")


def test_no_norm_unbroadcastable_weight_is_one_line_error(tmp_path: Path):
    path, node = no_norm_model(tmp_path, [4, 8], np.ones((3, 8)), np.zeros(8))
    assert_error(path, node, "weight of shape [3, 8] does not broadcast to the tensor [4, 8]")


def true_integer_div_model(tmp_path: Path, **attrs) -> tuple[Path, onnx.NodeProto]:
    """x → TrueIntegerDiv {attrs} → the output (QuantLib's rounded quotient: no RequantShift folds it)."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 3, 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node("TrueIntegerDiv", ["x"], ["y"], name="div", **attrs)
    path = tmp_path / "div.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), path)
    return path, node


def test_true_integer_div_by_a_non_positive_divisor_is_one_line_error(tmp_path: Path):
    path, node = true_integer_div_model(tmp_path, Delta=16, eps=0, eta=1, y=0)
    assert_error(path, node, "TrueIntegerDiv divides by y·eta + eps = 0; it must be positive")


def test_true_integer_div_beyond_16_bits_is_one_line_error(tmp_path: Path):
    """Unfolded, the rounded quotient is a tensor of its own: 255·16384/2 does not fit 16 bits."""
    path, node = true_integer_div_model(tmp_path, Delta=16384, eps=1, eta=200000, y=2)
    assert_error(path, node, "the graph does not clip them: beyond the 16-bit activations")


def test_layer_norm_bias_not_per_feature_is_one_line_error(tmp_path: Path):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node("iLayerNorm", ["x", "w", "b"], ["y"], name="norm", D=2.0**16, n_levels=256.0)
    constants = [onnx.numpy_helper.from_array(np.full(n, 1000, dtype=np.float32), name) for name, n in (("w", 8), ("b", 3))]
    path = tmp_path / "layer_norm.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y], constants)), path)
    assert_error(path, node, "iLayerNorm bias of shape [3] is not one value per feature (8)")


def test_ita_max_of_unsigned_rows_is_one_line_error(tmp_path: Path):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node("ITAMax", ["x"], ["y"], name="softmax", n_levels=helper.make_tensor(
        "n_levels", onnx.TensorProto.FLOAT, [1], [256.0]))
    path = tmp_path / "ita_max.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), path)
    assert_error(path, node, "ITAMax of a ui8 tensor is not supported (ITA's rows are si8)")


def test_ita_partial_max_groups_not_covering_the_row_is_one_line_error(tmp_path: Path):
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 64])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    attrs = dict(n_levels=helper.make_tensor("n_levels", onnx.TensorProto.FLOAT, [1], [256.0]), groups=3, group_width=16)
    node = helper.make_node("RequantShift", ["x", "m", "a"], ["r"], name="rq", div=helper.make_tensor(
        "div", onnx.TensorProto.FLOAT, [1], [2.0]), n_levels_out=helper.make_tensor("n", onnx.TensorProto.FLOAT, [1], [256.0]),
        signed=helper.make_tensor("s", onnx.TensorProto.FLOAT, [1], [1.0]))
    softmax = helper.make_node("ITAPartialMax", ["r"], ["y"], name="softmax", **attrs)
    constants = [onnx.numpy_helper.from_array(np.array([v], dtype=np.float32), name) for name, v in (("m", 1.0), ("a", -128.0))]
    path = tmp_path / "ita_partial_max.onnx"
    onnx.save(helper.make_model(helper.make_graph([node, softmax], "g", [x], [y], constants)), path)
    assert_error(path, softmax, "ITAPartialMax groups × group_width = 3 × 16 is not the 64 features of a row")
