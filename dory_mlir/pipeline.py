"""Loading a network for the tools: `.onnx` through the importer, `.mlir` through xDSL's parser."""

from pathlib import Path

from xdsl.context import Context
from xdsl.dialects import builtin, func
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError, VerifyException

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects.qnn import QNN
from dory_mlir.frontend.onnx_import import import_onnx_file
from dory_mlir.passes.fuse import FusePass


def make_context() -> Context:
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, QNN):
        ctx.load_dialect(dialect)
    return ctx


def load_network(path: Path, input_type: str | None = None) -> ModuleOp:
    """Imports or parses a network and returns it fused into numbered layers."""
    if path.suffix == ".mlir":
        try:
            module = Parser(make_context(), path.read_text(), str(path)).parse_module()
            module.verify()
        except OSError as e:
            raise DoryError(f"cannot read: {e.strerror}", str(path)) from None
        except (ParseError, VerifyException) as e:
            raise DoryError(str(e).strip().splitlines()[0], str(path)) from None
    else:
        module = import_onnx_file(path, input_type)
    FusePass().apply(make_context(), module)
    module.verify()
    return module
