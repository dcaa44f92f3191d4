"""The tile pass on whole networks: the design card's command, the report, idempotent fusion."""

import json
import subprocess
from pathlib import Path

import pytest

from conftest import tool


def opt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("dory-opt"), *args], capture_output=True, text=True)


def test_tile_fuses_first_and_fuse_stays_idempotent(examples_dir: Path):
    model = str(examples_dir / "mobile_block" / "model.onnx")
    direct = opt(model, "--tile")
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout == opt(model, "--fuse", "--tile").stdout == opt(model, "--fuse", "--fuse", "--tile").stdout
    assert direct.stdout.count("tiling = #tiling.layer<") == 5


def test_report(examples_dir: Path, tmp_path: Path):
    model = str(examples_dir / "residual" / "model.onnx")
    report = tmp_path / "tiles.json"
    done = opt(model, "-p", "tile{l1-size=4000 l2-size=3000}", "--tile-report", str(report))
    assert done.returncode == 0, done.stderr
    written = json.loads(report.read_text())
    layers = written["layers"]
    assert [row["layer"] for row in layers] == list(range(6))
    assert written["l2_plan"]["certified"] == "z3" and written["l2_plan"]["z3_checks"] == 1
    for row in layers:
        assert row["l1_bytes"] <= 4000
        assert row["certified"] == "z3" and row["z3_checks"] == 1
        assert row["dma_l2_l1_bytes"] >= row["dma_l2_l1"]["output"] > 0
        assert set(row) >= {"input_hwc", "output_hwc", "l3_l2_tile", "l2_l1_tile", "tiles", "l2_working_bytes",
                            "dma_l3_l2_bytes", "solver_seconds"}
    assert any(row["streamed_from_l3"] for row in layers), "3,000 B of L2 must force L3 streaming"


def test_tile_report_needs_the_tile_pass(examples_dir: Path, tmp_path: Path):
    done = opt(str(examples_dir / "residual" / "model.onnx"), "--fuse", "--tile-report", str(tmp_path / "r.json"))
    assert done.returncode == 1 and done.stderr.startswith("error: --tile-report needs the tile pass")


def test_the_tool_writes_the_report_once_the_pipeline_succeeds(examples_dir: Path, tmp_path: Path):
    """The pass writes no file (it has no report option); a pipeline failing after the tile pass leaves
    no report behind."""
    model = str(examples_dir / "residual" / "model.onnx")
    done = opt(model, "-p", f'tile{{report="{tmp_path / "r.json"}"}}')
    assert done.returncode == 1 and '["report"] not found' in done.stderr and not (tmp_path / "r.json").exists()
    failing = opt(model, "-p", "tile,tile-layers{cores=2}", "--tile-report", str(tmp_path / "r.json"))
    assert failing.returncode == 1 and "error: lowering option cores=2 disagrees" in failing.stderr, failing.stderr
    assert not (tmp_path / "r.json").exists()


def test_gap9_target(examples_dir: Path):
    done = opt(str(examples_dir / "residual" / "model.onnx"), "-p", "tile{target=gap9}")
    assert done.returncode == 0, done.stderr
    assert '#tiling.target<chip = "gap9", cores = 8, l1_budget = 100700' in done.stdout


def test_the_pass_refuses_unfused_ops_and_the_tool_fuses_first():
    """`tile` tiles layers: an op outside one is refused (the pass runs no other pass); dory-opt adds
    `fuse` in front of a pipeline's first tile pass when the pipeline does not fuse first."""
    from dory_mlir.cli.opt import with_fuse_before_tile
    from dory_mlir.diagnostics import PassError
    from dory_mlir.passes.tile import TilePass
    from dory_mlir.pipeline import make_context
    from xdsl.parser import Parser

    source = (Path(__file__).parent / "filecheck" / "passes" / "tile_invalid.mlir").read_text()
    module = Parser(make_context(), source).parse_module()
    with pytest.raises(PassError, match=r'qnn.conv at loc\("conv_7"\): the tile pass tiles layers, and this op is not in one'):
        TilePass().apply(make_context(), module)
    assert with_fuse_before_tile("tile{l1-size=4000 cores=2},lower-to-pulp") == "fuse,tile{l1-size=4000 cores=2},lower-to-pulp"
    assert with_fuse_before_tile("fuse,tile") == "fuse,tile"
    assert with_fuse_before_tile("tile-layers") == "tile-layers"
