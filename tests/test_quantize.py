"""Quantization of float models with onnxruntime (`dory_mlir.quantize`) and `dory-quantize`'s errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import tool
from dory_mlir.diagnostics import DoryError
from dory_mlir.examples import float_cnns as fc
from dory_mlir.quantize import QuantizeOptions, quantize
from dory_mlir.cli import quantize as dory_quantize


@pytest.fixture(scope="module")
def conv_stack(tmp_path_factory) -> Path:
    """The float conv_stack network with 4 sample inputs in samples/."""
    out = tmp_path_factory.mktemp("conv_stack")
    return fc.write_float_network(fc.float_networks()["conv_stack"](0), out, 0)


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(path).graph.node}


def test_qdq_per_channel_symmetric_uint8(conv_stack: Path, tmp_path: Path):
    out = quantize(conv_stack, tmp_path / "q.onnx", QuantizeOptions(), calibration=conv_stack.parent / fc.SAMPLES_DIR)
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops(out)
    values = initializers(out)
    weight = values["conv_param0.weight_quantized"]
    assert weight.dtype == np.int8 and weight.shape == (8, 3, 3, 3)
    assert values["conv_param0.weight_scale"].shape == (8,), "one scale per output channel"
    assert not values["conv_param0.weight_zero_point"].any(), "symmetric weights"
    assert np.abs(weight).max() == 127
    assert values["input_zero_point"].dtype == np.uint8


def test_qoperator_int8_per_tensor_reduce_range(conv_stack: Path, tmp_path: Path):
    options = QuantizeOptions(format="qoperator", activations="int8", per_channel=False, reduce_range=True)
    out = quantize(conv_stack, tmp_path / "q.onnx", options, samples=4, seed=1)
    assert {"QLinearConv", "QGemm", "QuantizeLinear"} <= ops(out) and "Conv" not in ops(out)
    values = initializers(out)
    assert values["conv_param0.weight_scale"].size == 1
    assert np.abs(values["conv_param0.weight_quantized"]).max() == 64, "7-bit weights"
    assert values["input_zero_point"].dtype == np.int8


def test_asymmetric_weights_have_zero_points(conv_stack: Path, tmp_path: Path):
    # (onnxruntime keeps per-channel QDQ weights symmetric whatever the option says)
    options = QuantizeOptions(symmetric_weights=False, per_channel=False)
    assert initializers(quantize(conv_stack, tmp_path / "q.onnx", options, samples=2))["conv_param0.weight_zero_point"] != 0


def test_calibration_decides_the_scales_deterministically(conv_stack: Path, tmp_path: Path):
    def input_scale(name: str, **kwargs) -> float:
        return float(initializers(quantize(conv_stack, tmp_path / name, QuantizeOptions(), **kwargs))["input_scale"])

    folder = conv_stack.parent / fc.SAMPLES_DIR
    assert input_scale("a.onnx", calibration=folder) == input_scale("b.onnx", calibration=folder)
    assert input_scale("c.onnx", samples=8, seed=5) == input_scale("d.onnx", samples=8, seed=5)
    assert input_scale("e.onnx", samples=8, seed=5) != input_scale("f.onnx", samples=8, seed=6)
    samples = fc.sample_inputs(0, fc.input_shape(onnx.load(conv_stack)), 4)
    x_max = max(float(np.abs(x).max()) for x in samples)
    # uint8 input: the asymmetric range covers [min, max] of the samples in 255 steps
    expected = (max(x.max() for x in samples) - min(x.min() for x in samples)) / 255
    assert input_scale("g.onnx", calibration=folder) == pytest.approx(expected, rel=1e-6) and x_max > 0


def test_samples_without_batch_dimension_are_accepted(conv_stack: Path, tmp_path: Path):
    folder = tmp_path / "unbatched"
    folder.mkdir()
    for k, x in enumerate(fc.sample_inputs(0, (1, 3, 16, 16), 2)):
        np.save(folder / f"s{k}.npy", x[0])
    assert quantize(conv_stack, tmp_path / "q.onnx", QuantizeOptions(), calibration=folder).is_file()


def dynamic_model(path: Path) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing model", "cannot read the model: No such file"),
        ("not onnx", "not a valid ONNX model"),
        ("dynamic input", "has a dynamic shape ['N', 3]"),
        ("wrong sample shape", "sample has shape [1, 4, 1, 64], the model's input needs [1, 3, 16, 16]"),
        ("empty folder", "no .npy samples in the calibration folder"),
        ("no folder", "no such calibration folder"),
        ("not npy", "not a .npy array"),
    ],
)
def test_tool_errors_are_one_line(case: str, message: str, conv_stack: Path, tmp_path: Path, capsys):
    model, extra = conv_stack, []
    if case == "missing model":
        model = tmp_path / "absent.onnx"
    elif case == "not onnx":
        model = tmp_path / "junk.onnx"
        model.write_bytes(b"\x08\x07garbage")
    elif case == "dynamic input":
        model = dynamic_model(tmp_path / "dynamic.onnx")
    elif case == "wrong sample shape":
        fc.write_float_network(fc.float_networks()["conv1d"](0), tmp_path / "conv1d", 0)
        extra = ["--calibration", str(tmp_path / "conv1d" / fc.SAMPLES_DIR)]
    elif case == "empty folder":
        (folder := tmp_path / "empty").mkdir()
        extra = ["--calibration", str(folder)]
    elif case == "no folder":
        extra = ["--calibration", str(tmp_path / "nowhere")]
    elif case == "not npy":
        (folder := tmp_path / "bad").mkdir()
        (folder / "x.npy").write_text("not an array")
        extra = ["--calibration", str(folder)]
    assert dory_quantize.main([str(model), "-o", str(tmp_path / "out"), *extra]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_console_script_error_exit_code(tmp_path: Path):
    done = subprocess.run([tool("dory-quantize"), str(tmp_path / "absent.onnx"), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'absent.onnx'}: cannot read the model: No such file or directory"


def test_non_float_input_is_refused(tmp_path: Path):
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.UINT8, [1, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.UINT8, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "int.onnx")
    with pytest.raises(DoryError, match="is UINT8, not float"):
        quantize(tmp_path / "int.onnx", tmp_path / "q.onnx", QuantizeOptions())


def test_bad_options_are_refused():
    with pytest.raises(DoryError, match="unknown quantization format 'qlinear'"):
        QuantizeOptions(format="qlinear")
    with pytest.raises(DoryError, match="unknown activation type"):
        QuantizeOptions(activations="int4")


def test_calibration_progress_only_on_a_terminal(conv_stack: Path, tmp_path: Path, capsys):
    """Issue 13: the calibration shows its sample k/N on stderr when it is a terminal, nothing otherwise."""
    import io

    from dory_mlir.diagnostics import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, terminal = io.StringIO(), Terminal()
    for stream in (piped, terminal):
        quantize(conv_stack, tmp_path / "q.onnx", QuantizeOptions(), samples=3, progress=Progress("dory-quantize", stream))
    assert piped.getvalue() == ""
    assert "dory-quantize: calibrating on sample 3/3" in terminal.getvalue()
    assert dory_quantize.main([str(conv_stack), "--samples", "2", "-o", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == "", "stderr is not a terminal under pytest: no progress"
