"""The driver: pass flags, -p pipelines, .onnx and .mlir inputs, generic printing."""

import subprocess
from pathlib import Path

from conftest import tool


def opt(*args: str) -> str:
    done = subprocess.run([tool("dory-opt"), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pass_flag_equals_pipeline(examples_dir: Path):
    model = str(examples_dir / "mobile_block" / "model.onnx")
    fused = opt(model, "--fuse")
    assert fused == opt(model, "-p", "fuse")
    assert fused.count("qnn.layer ") == 5


def test_flags_run_after_the_pipeline_in_order(examples_dir: Path):
    model = str(examples_dir / "tiny_cnn" / "model.onnx")
    out = opt(model, "-p", "fuse", "--fuse", "--print-between-passes")
    assert out.count("IR after fuse:") == 1  # printed between the two runs of fuse


def test_mlir_input_and_generic_form(examples_dir: Path, tmp_path: Path):
    model = str(examples_dir / "padded" / "model.onnx")
    (tmp_path / "net.mlir").write_text(opt(model))
    generic = opt(str(tmp_path / "net.mlir"), "--fuse", "--print-op-generic")
    assert '"qnn.layer"' in generic
    (tmp_path / "generic.mlir").write_text(generic)
    assert opt(str(tmp_path / "generic.mlir")) == opt(model, "--fuse")


def test_help_lists_our_passes():
    assert "--fuse" in opt("--help")


def test_output_file(examples_dir: Path, tmp_path: Path):
    model = str(examples_dir / "residual" / "model.onnx")
    opt(model, "--fuse", "-o", str(tmp_path / "out.mlir"))
    assert (tmp_path / "out.mlir").read_text() == opt(model, "--fuse")
