"""DESIGN §1: the generic form of every stage parses with upstream `mlir-opt` (Debian's mlir-19-tools).

Each stage's IR is printed generic by dory-opt, read and re-printed by `mlir-opt
--allow-unregistered-dialect`, and parsed back by xDSL: the result must be structurally the
same module (mlir-opt drops SSA names and sorts dictionary keys, nothing else).
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from xdsl.parser import Parser

from conftest import tool
from dory_mlir.pipeline import make_context

MLIR_OPT = shutil.which("mlir-opt-19") or shutil.which("mlir-opt")
STAGES = {
    "import": [],
    "fuse": ["--fuse"],
    "tile": ["--tile"],
    "bufferize-network": ["-p", "tile,bufferize-network"],
    "lower-to-pulp": ["--tile", "--lower-to-pulp"],
}


@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt is not installed (make test installs mlir-19-tools)")
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("network", ["nemo", "quantlib"])
def test_generic_form_round_trips_through_mlir_opt(examples_dir: Path, quantlib_dir: Path, network: str, stage: str):
    model = examples_dir / "residual" / "model.onnx" if network == "nemo" else quantlib_dir / "resnet8" / "network.onnx"
    ours = subprocess.run([tool("dory-opt"), str(model), *STAGES[stage], "--print-op-generic"],
                          capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", "--mlir-print-op-generic"],
                            input=ours.stdout, capture_output=True, text=True)
    assert theirs.returncode == 0, theirs.stderr
    original = Parser(make_context(), ours.stdout).parse_module()
    back = Parser(make_context(), theirs.stdout).parse_module()
    assert back.is_structurally_equivalent(original)
