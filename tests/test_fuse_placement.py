"""Every op ends up in a layer (issue 11, item 4): a requantization that no layer's chain takes
(it reads a tensor with several consumers, as on a residual skip branch) is a layer of its own,
bit-exact in the golden model and in C."""

from pathlib import Path

import pytest

from dory_mlir.examples.quantlib_builder import QuantLibNetBuilder
from dory_mlir.golden.check import check_folder, network_layers
from dory_mlir.passes.fuse import FusePass
from dory_mlir.pipeline import load_network, make_context
from test_verify import assert_bit_exact, verify


def write(builder: QuantLibNetBuilder, folder: Path) -> Path:
    return builder.write(folder) / "network.onnx"


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


# Issue 11, item 5: a residual add followed by a separate requantization stage that is no exact
# power-of-two fold (NEMO's `Add → Div → Floor → Mul → Div → Floor → Clip`) is two layers, numbered
# as DORY's golden files number them; the checker says when a golden file names another kind.

def test_separate_requant_stage_after_an_add_is_its_own_layer(tmp_path: Path):
    from dory_mlir.examples.nemo_builder import example_networks, write_example

    for seed in (0, 1, 2):
        folder = write_example(example_networks()["residual_stage"](seed), tmp_path / f"s{seed}", seed)
        module = load_network(folder / "model.onnx")
        FusePass().apply(make_context(), module)
        kinds = [layer.kind() for _, layer in sorted(network_layers(module).items())]
        assert kinds == ["conv", "conv", "add", "depthwise", "conv", "linear"], kinds
        report = check_folder(module, folder)
        assert report.passed(), "\n" + report.table()


def test_golden_numbered_otherwise_is_reported_as_a_numbering_difference(tmp_path: Path):
    """Golden files numbered as if the requant stage were part of the add (one layer fewer)."""
    from dory_mlir.examples.nemo_builder import example_networks, write_example

    folder = write_example(example_networks()["residual_stage"](0), tmp_path / "net", 0)
    (folder / "out_layer3.txt").unlink()
    for n in (4, 5):
        (folder / f"out_layer{n}.txt").rename(folder / f"out_layer{n - 1}.txt")
    text = (folder / "out_layer2.txt").read_text().replace("# Add_24", "# resBlock1.conv2", 1)
    (folder / "out_layer2.txt").write_text(text)
    module = load_network(folder / "model.onnx")
    report = check_folder(module, folder)
    assert not report.passed()
    notes = " ".join(row.note for row in report.rows)
    assert "numbering differs? the golden file names 'MatMul_45' (linear), our layer is a conv" in notes, report.table()


def test_header_kinds():
    from dory_mlir.golden.check import header_kinds

    assert header_kinds("resBlock3.add") == {"add"}
    assert header_kinds("_QL_OP_TREE_REPLACE_DORY_ADDER_2") == {"add"}
    assert header_kinds("reluadd1") == {"add"}
    assert header_kinds("layer1.maxpool") == {"maxpool"}
    assert header_kinds("fc") == {"linear"}
    assert header_kinds("relu2") is None and header_kinds("layers.0.relu1") is None
