"""The IR of every network prints and parses back, in custom and generic form, before and after fuse."""

from pathlib import Path

import pytest
from xdsl.parser import Parser
from xdsl.printer import Printer
from io import StringIO

from conftest import DORY_NETWORKS, EXAMPLE_NAMES, needs_shared, onnx_file
from dory_mlir.frontend.onnx_import import import_onnx_file
from dory_mlir.passes.fuse import FusePass
from dory_mlir.pipeline import make_context


def printed(module, generic: bool = False) -> str:
    out = StringIO()
    Printer(stream=out, print_generic_format=generic, print_debuginfo=True).print_op(module)
    return out.getvalue()


def assert_round_trips(model: Path) -> None:
    module = import_onnx_file(model)
    for stage in ("import", "fuse"):
        if stage == "fuse":
            FusePass().apply(make_context(), module)
        for generic in (False, True):
            text = printed(module, generic)
            reparsed = Parser(make_context(), text).parse_module()
            reparsed.verify()
            assert printed(reparsed, generic) == text, f"{stage} (generic={generic})"
            assert reparsed.is_structurally_equivalent(module)


@needs_shared
@pytest.mark.parametrize("folder", DORY_NETWORKS, ids=lambda p: p.name)
def test_reference_network_round_trips(folder: Path):
    assert_round_trips(onnx_file(folder))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_round_trips(examples_dir: Path, name: str):
    assert_round_trips(examples_dir / name / "model.onnx")
