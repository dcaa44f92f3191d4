"""The cores and double buffering the tiling is made for reach the lowering and the C unchanged (issue 12):
every combination allocates within the L1 budget and runs bit-exact; a lowering option that disagrees
with the tiling, or more cores than the cluster has, is one line."""

import pytest

from dory_mlir.cli import opt as dory_opt, verify as dory_verify


@pytest.mark.parametrize("cores", [1, 2, 8])
@pytest.mark.parametrize("double_buffer", ["true", "false"])
def test_every_cores_and_buffering_allocates_within_budget_and_is_exact(cores, double_buffer, examples_dir):
    model = examples_dir / "residual" / "model.onnx"
    pipeline = f"tile{{l1-size=4000 cores={cores} double-buffer={double_buffer}}},lower-to-pulp"
    # The host runtime's L1 is exactly the budget: an allocation beyond it stops the program.
    assert dory_verify.main([str(model), "--golden", str(model.parent), "-p", pipeline]) == 0


@pytest.mark.parametrize("pipeline, message", [
    ("tile{l1-size=4000 cores=2},lower-to-pulp{cores=8}",
     "lowering option cores=8 disagrees with the tiling, which the tile pass made for cores=2"),
    ("tile{double-buffer=false},lower-to-pulp{double-buffer=true}",
     "lowering option double-buffer=true disagrees with the tiling, which the tile pass made for double-buffer=false"),
    ("tile{cores=9}", "tile option cores=9: the gap8 cluster has 8 cores"),
])
def test_disagreeing_options_are_one_line(pipeline, message, examples_dir, tmp_path, capsys):
    model = examples_dir / "residual" / "model.onnx"
    assert dory_opt.main([str(model), "-p", pipeline, "-o", str(tmp_path / "out.mlir")]) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning:")]
    assert line.startswith("error:") and message in line
    assert not (tmp_path / "out.mlir").exists()


def test_the_c_is_built_for_the_planned_cores(examples_dir, tmp_path):
    model = examples_dir / "residual" / "model.onnx"
    assert dory_opt.main([str(model), "-p", "tile{cores=2},lower-to-pulp", "-t", "pulp-c", "-o", str(tmp_path)]) == 0
    assert "#define NUM_CORES 2" in (tmp_path / "network.c").read_text()
    for makefile in ("Makefile", "Makefile.host", "Makefile.rv32"):
        assert "-DNUM_CORES=2" in (tmp_path / makefile).read_text()
