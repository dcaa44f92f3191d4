"""Every op ends up in a layer (issue 11, item 4): a requantization that no layer's chain takes
(it reads a tensor with several consumers, as on a residual skip branch) is a layer of its own,
bit-exact in the golden model and in C."""

from pathlib import Path

import numpy as np
import onnx
import pytest

from dory_mlir.examples.quantlib_builder import QuantLibNetBuilder
from dory_mlir.golden.check import check_folder, network_layers
from dory_mlir.passes.fuse import FusePass
from dory_mlir.pipeline import load_network, make_context
from test_verify import assert_bit_exact, verify


def write(builder: QuantLibNetBuilder, folder: Path) -> Path:
    model, goldens = builder.build(folder.name)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "network.onnx")
    for file, arrays in goldens.items():
        np.savez(folder / f"{file}.npz", **arrays)
    return folder / "network.onnx"


def requant_on_skip_branch(seed: int, rank2: bool = False) -> QuantLibNetBuilder:
    """conv → x; y = conv(conv(x)); skip = RequantShift(x) (x has two consumers); add(y, skip)."""
    b = QuantLibNetBuilder(seed, (1, 3, 12, 10), signed_input=True)
    x = b.conv("stem", 8, 3, signed=True)
    y = b.conv("branch.conv1", 8, 3, x=x, signed=True)
    y = b.conv("branch.conv2", 8, 1, x=y, signed=True)
    skip = b.requant(x, "skip", signed=True)
    b.add("add", y, skip, signed=True)
    b.linear("fc", 6, signed=True)
    return b


@pytest.mark.parametrize("seed", [0, 1])
def test_requant_on_a_skip_branch_is_its_own_layer(tmp_path: Path, seed: int):
    model = write(requant_on_skip_branch(seed), tmp_path / f"skip{seed}")
    module = load_network(model, "si8")
    layers = network_layers(module)
    kinds = [layer.kind() for layer in layers.values()]
    assert len(layers) == 6, kinds  # stem, conv1, conv2, the skip's requant, add, fc
    report = check_folder(module, model.parent, model)
    assert report.passed(), "\n" + report.table()
    FusePass().apply(make_context(), module)  # idempotent
    assert len(network_layers(module)) == 6


def test_requant_layer_bit_exact_in_c(tmp_path: Path):
    model = write(requant_on_skip_branch(2), tmp_path / "skip")
    assert_bit_exact(verify(model, model.parent, "tile{l1-size=4000},lower-to-pulp"))
