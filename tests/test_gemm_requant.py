"""Deeploy's `RequantShift` spellings: `n_levels` (as well as QuantLib's `n_levels_out`), and GEMM
requantization constants per column (`RQPerColumn`: one value per output feature, shape [N] or
[1, N]) or per row ([M, 1]).

Per column is per output channel: exact, bit for bit against the goldens of onnx's
ReferenceEvaluator. A per-row constant equal on every row is per-tensor (exact); one that really
varies along a conv's height/width has no form for the kernels: a one-line error naming the node
(one that varies along the rows of a GEMM is tests/test_gemm_row_constants.py's).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from dory_mlir.examples.quantlib_builder import DIV, QuantLibNetBuilder, _float_tensor
from dory_mlir.golden.check import check_folder
from dory_mlir.golden.npz import input_type_for
from dory_mlir.pipeline import load_network
from dory_mlir.cli import opt as dory_opt


def requant_per_column(b: QuantLibNetBuilder, acc: str, module: str, shape: tuple[int, ...], signed: bool) -> str:
    """RequantShift of a GEMM output with per-column mul/add of `shape` ([N] or [1, N]), calibrated
    so every column fills the 8-bit range."""
    a = b.values[acc].astype(np.int64)
    columns = a.shape[1]
    spread = np.maximum(np.abs(a).max(axis=0), 1)
    mul = np.maximum(1, np.round((127 if signed else 255) * DIV / spread * b.rng.uniform(0.7, 1.3, columns)))
    add = b.rng.integers(-DIV // 4, DIV // 4, size=columns)
    attrs = dict(div=_float_tensor(DIV), n_levels_out=_float_tensor([256.0]), signed=_float_tensor([1.0 if signed else 0.0]))
    return b.node("RequantShift", [acc, b.param(f"{module}.mul", mul.reshape(shape)), b.param(f"{module}.add", add.reshape(shape))],
                  **attrs)


def gemm_network(shape: tuple[int, ...] | None) -> QuantLibNetBuilder:
    """conv → Reshape → Gemm (1×K, bias) → RequantShift, the GEMM's constants per column of `shape`
    (None: per tensor) → Gemm → RequantShift."""
    b = QuantLibNetBuilder(3, (1, 2, 6, 6), signed_input=True)
    b.conv("conv", 4, 3, signed=True)
    b.linear("fc0", 12, signed=True)  # per tensor; Reshape to 1×K first
    acc = b.node("Gemm", [b.last, b.param("fc1.weight", b.rng.integers(-128, 128, size=(7, 12))),
                          b.param("fc1.bias", b.rng.integers(-2000, 2000, size=7))], transB=1)
    if shape is None:
        b.requant(acc, "fc1", signed=True, per_channel=False)
    else:
        requant_per_column(b, acc, "fc1", shape, signed=True)
    return b


def write(b: QuantLibNetBuilder, folder: Path, levels_name: str = "n_levels_out") -> Path:
    """The network and its npz goldens; `levels_name` = "n_levels" renames the attribute as Deeploy
    writes it (the same op: the goldens do not change)."""
    folder.mkdir(parents=True)
    model, goldens = b.build(folder.name)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "n_levels_out":
                attr.name = levels_name
    onnx.save(model, folder / "network.onnx")
    for file, arrays in goldens.items():
        np.savez(folder / f"{file}.npz", **arrays)
    return folder


def assert_bit_exact(folder: Path) -> None:
    model = folder / "network.onnx"
    report = check_folder(load_network(model, input_type_for(folder)), folder, model)
    assert report.passed(), "\n" + report.table()
    assert any(r.layer == "output" and r.compared for r in report.rows), "\n" + report.table()


def opt_error(path: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = dory_opt.main([str(path), "--fuse"])
    return status, err.getvalue()


def test_n_levels_spelling(tmp_path: Path):
    folder = write(gemm_network(None), tmp_path / "n_levels", levels_name="n_levels")
    model = onnx.load(folder / "network.onnx")
    spelled = {a.name for n in model.graph.node if n.op_type == "RequantShift" for a in n.attribute}
    assert "n_levels" in spelled and "n_levels_out" not in spelled
    assert_bit_exact(folder)


def test_gemm_per_column_constants(tmp_path: Path):
    for shape in ((7,), (1, 7)):
        folder = write(gemm_network(shape), tmp_path / f"per_column_{len(shape)}d", levels_name="n_levels")
        assert_bit_exact(folder)


def test_per_row_constant_equal_on_every_row_is_per_tensor(tmp_path: Path):
    """A [M, 1] constant of a 1×N GEMM, and an [M, 1]-like [1, 1, H, 1] one equal on every row of a conv."""
    folder = write(gemm_network(None), tmp_path / "rows")
    model = onnx.load(folder / "network.onnx")
    rqs = [n for n in model.graph.node if n.op_type == "RequantShift"]
    inits = {i.name: i for i in model.graph.initializer}
    conv_mul = inits[rqs[0].input[1]]
    values = numpy_helper.to_array(conv_mul)  # per channel (4, 1, 1): tile it over the 6 rows
    conv_mul.CopyFrom(numpy_helper.from_array(np.repeat(values[None], 6, axis=2).reshape(1, 4, 6, 1), conv_mul.name))
    gemm_mul = inits[rqs[-1].input[1]]
    gemm_mul.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(gemm_mul).reshape(1, 1), gemm_mul.name))
    onnx.save(model, folder / "network.onnx")
    assert_bit_exact(folder)


def test_varying_per_row_or_per_pixel_constant_is_one_line_error(tmp_path: Path):
    folder = write(gemm_network(None), tmp_path / "varying")
    model = onnx.load(folder / "network.onnx")
    rq = next(n for n in model.graph.node if n.op_type == "RequantShift")
    mul = next(i for i in model.graph.initializer if i.name == rq.input[1])
    mul.CopyFrom(numpy_helper.from_array(np.arange(1, 7, dtype=np.float32).reshape(1, 1, 6, 1) * 1000, mul.name))
    onnx.save(model, folder / "network.onnx")
    status, err = opt_error(folder / "network.onnx")
    assert status == 1 and err.count("\n") == 1, err
    assert f"node '{rq.name}' (RequantShift)" in err and "varies along the height" in err, err
