"""Bad input gets one `error:` line naming the node or file, exit code 1, no traceback."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import tool


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*args], capture_output=True, text=True)


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture
def tiny(examples_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    shutil.copytree(examples_dir / "tiny_cnn", folder)
    return folder


def mutate(folder: Path, change) -> Path:
    model = onnx.load(folder / "model.onnx")
    change(model)
    path = folder / "bad.onnx"
    onnx.save(model, path)
    return path


def node(model: onnx.ModelProto, op_type: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op_type)


def set_initializer(model: onnx.ModelProto, name: str, values: np.ndarray) -> None:
    init = next(i for i in model.graph.initializer if i.name == name)
    init.CopyFrom(numpy_helper.from_array(values.astype(np.float32), name))


def first_weight(model: onnx.ModelProto) -> tuple[str, np.ndarray]:
    name = node(model, "Conv").input[1]
    init = next(i for i in model.graph.initializer if i.name == name)
    return name, numpy_helper.to_array(init).copy()


def check_both_tools(path: Path, folder: Path, *fragments: str) -> None:
    out = folder / "out.mlir"
    assert_one_line_error(run(tool("dory-opt"), str(path), "--fuse", "-o", str(out)), *fragments)
    assert not out.exists(), "nothing may be written on error"
    assert_one_line_error(run(tool("dory-golden"), str(path), "--check", str(folder)), *fragments)


def test_truncated_model(tiny: Path):
    data = (tiny / "model.onnx").read_bytes()
    (tiny / "bad.onnx").write_bytes(data[: len(data) // 2])
    check_both_tools(tiny / "bad.onnx", tiny, "bad.onnx", "not a valid ONNX model")


def test_corrupt_model(tiny: Path):
    (tiny / "bad.onnx").write_bytes(bytes(range(256)) * 4)
    check_both_tools(tiny / "bad.onnx", tiny, "bad.onnx", "not a valid ONNX model")


def test_missing_initializer(tiny: Path):
    def drop_weight(model):
        name = node(model, "Conv").input[1]
        model.graph.initializer.remove(next(i for i in model.graph.initializer if i.name == name))

    check_both_tools(mutate(tiny, drop_weight), tiny, "node 'Conv_0'", "is neither a graph input, an initializer")


def test_unsupported_op(tiny: Path):
    def to_lstm(model):
        pool = node(model, "MaxPool")
        pool.op_type = "LSTM"
        pool.name = "LSTM_7"
        del pool.attribute[:]

    check_both_tools(mutate(tiny, to_lstm), tiny, "node 'LSTM_7' (LSTM)", "unsupported op 'LSTM'")


def test_dynamic_shape(tiny: Path):
    def dynamic_batch(model):
        dim = model.graph.input[0].type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "N"

    check_both_tools(mutate(tiny, dynamic_batch), tiny, "input 'input'", "dynamic dimension 'N'")


def test_division_by_zero(tiny: Path):
    def zero_divisor(model):
        div = node(model, "Div")
        constant = next(n for n in model.graph.node if n.output[0] == div.input[1])
        constant.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([0], dtype=np.int64)))

    check_both_tools(mutate(tiny, zero_divisor), tiny, "node 'Div_", "division by zero")


@pytest.mark.parametrize(
    "value, message", [(0.5, "is not integer-valued"), (200, "outside [-128, 127]")], ids=["fraction", "beyond-int8"]
)
def test_bad_weights(tiny: Path, value: float, message: str):
    def set_first_weight(model):
        name, w = first_weight(model)
        w.flat[0] = value
        set_initializer(model, name, w)

    check_both_tools(mutate(tiny, set_first_weight), tiny, "node 'Conv_0'", message)


def test_input_of_wrong_size(tiny: Path):
    lines = (tiny / "input.txt").read_text().splitlines()
    (tiny / "input.txt").write_text("\n".join(lines[:100]) + "\n")
    done = run(tool("dory-golden"), str(tiny / "model.onnx"), "--check", str(tiny))
    assert_one_line_error(done, "input.txt", "holds 99 values, the network input needs 256")


def test_mul_of_two_tensors(tiny: Path):
    def square(model):
        mul = next(n for n in model.graph.node if n.op_type == "Mul")
        conv_out = node(model, "Conv").output[0]
        mul.input[:] = [conv_out, conv_out]

    check_both_tools(mutate(tiny, square), tiny, "node 'Mul_", "multiplication of two tensors")


def test_mlir_parse_error(tmp_path: Path):
    bad = tmp_path / "bad.mlir"
    bad.write_text('func.func @network(%x: tensor<1x1x4x4xui8>) {\n  %y = qnn.nosuchop %x\n}\n')
    done = run(tool("dory-opt"), str(bad))
    assert_one_line_error(done, "bad.mlir:2")


def test_unknown_pass(tiny: Path):
    assert_one_line_error(run(tool("dory-opt"), str(tiny / "model.onnx"), "-p", "nosuchpass"), "nosuchpass")


def test_missing_file(tmp_path: Path):
    assert_one_line_error(run(tool("dory-opt"), str(tmp_path / "absent.onnx")), "absent.onnx")
    assert_one_line_error(run(tool("dory-golden"), str(tmp_path / "absent.onnx"), "--check", str(tmp_path)), "absent.onnx")


def test_mlir_verifier_error_names_the_op(tmp_path: Path):
    bad = tmp_path / "bad.mlir"
    bad.write_text(
        "func.func @network(%x: tensor<1x1x4x4xui8>) -> tensor<1x1x3x2xui8> {\n"
        "  %y = qnn.max_pool %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, "
        "pads = array<i64: 0, 0, 0, 0>} : (tensor<1x1x4x4xui8>) -> tensor<1x1x3x2xui8>\n"
        "  func.return %y : tensor<1x1x3x2xui8>\n}\n"
    )
    for done in (run(tool("dory-opt"), str(bad)), run(tool("dory-golden"), str(bad), "--check", str(tmp_path))):
        assert_one_line_error(done, "bad.mlir", "qnn.max_pool (%y)", "output H must be 2")


# ---------------------------------------------------------------------- command lines (in-process, fast)


def in_process(main, *args: str) -> subprocess.CompletedProcess:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return subprocess.CompletedProcess(list(args), status, out.getvalue(), err.getvalue())


def test_command_line_mistakes_are_one_line(tiny: Path, tmp_path: Path):
    from dory_mlir.cli import golden as dory_golden
    from dory_mlir.cli import opt as dory_opt
    from dory_mlir.cli import quantize as dory_quantize
    from dory_mlir.cli import verify as dory_verify

    model = str(tiny / "model.onnx")
    existing = tmp_path / "a_file"
    existing.write_text("keep me")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    (tmp_path / "binary.mlir").write_bytes(bytes(range(256)))
    cases = [
        (dory_opt.main, [model, "-t", "pulp-c", "-o", str(tmp_path / "app")], "--lower-to-pulp"),
        (dory_opt.main, [model, "--tile", "--lower-to-pulp", "-t", "pulp-c", "-o", str(existing)], "existing file"),
        (dory_opt.main, [model, "--fuse", "-o", str(folder)], "names a folder"),
        (dory_opt.main, [model, "--input-type", "si8:x"], "si8:x"),
        (dory_opt.main, [model, "--input-type", "ui8:0"], "1..8"),
        (dory_opt.main, [model, "--no-such-flag"], "unrecognized arguments"),
        (dory_opt.main, [str(tmp_path / "binary.mlir")], "not a text file"),
        (dory_golden.main, [model], "--check"),
        (dory_golden.main, [str(tmp_path / "binary.mlir"), "--check", str(tiny)], "not a text file"),
        (dory_verify.main, [model, "--keep", str(existing)], "--keep names an existing file"),
        (dory_quantize.main, [model, "-o", str(existing)], "existing file"),
    ]
    for main, args, fragment in cases:
        assert_one_line_error(in_process(main, *args), fragment)
    assert existing.read_text() == "keep me" and not (tmp_path / "app").exists()


@pytest.mark.parametrize("config, fragment", [
    ('{"input_bits": "eight"}', "'input_bits' must be an integer 1..8"),
    ('{"input_bits": 0}', "'input_bits'"),
    ('{"input_bits": 1e400}', "'input_bits'"),
    ('{"input_bits": 8, "input_signed": "yes"}', "'input_signed'"),
])
def test_bad_dory_config(tiny: Path, config: str, fragment: str):
    from dory_mlir.cli import opt as dory_opt

    (tiny / "config.json").write_text(config)
    assert_one_line_error(in_process(dory_opt.main, str(tiny / "model.onnx")), "config.json", fragment)


def test_internal_error_is_one_line_and_traceback_only_with_debug(tiny: Path, monkeypatch):
    from dory_mlir.golden import check
    from dory_mlir.cli import golden as dory_golden

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(check, "check_folder", broken)  # dory-golden imports it when it runs
    args = [str(tiny / "model.onnx"), "--check", str(tiny)]
    done = in_process(dory_golden.main, *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("internal error: ") and "model.onnx" in lines[0], done.stderr
    assert "KeyError: 'boom'" in lines[0] and "--debug" in lines[0]
    done = in_process(dory_golden.main, *args, "--debug")
    assert done.returncode == 2 and "Traceback" in done.stderr and done.stderr.strip().splitlines()[-1].startswith("internal error: ")
