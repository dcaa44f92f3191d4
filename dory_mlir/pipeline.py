"""Loading a network for the tools: `.onnx` through the importer, `.mlir` through xDSL's parser."""

from pathlib import Path

from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, memref, scf
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError

from dory_mlir.diagnostics import DoryError, check_mlir_text, one_line
from dory_mlir.dialects.dma import DMA
from dory_mlir.dialects.pulp import PULP
from dory_mlir.dialects.qnn import QNN
from dory_mlir.dialects.tiling import TILING_DIALECT
from dory_mlir.ir_utils import verify_module
from dory_mlir.passes.fuse import FusePass


def make_context() -> Context:
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, memref.MemRef, scf.Scf, QNN, DMA, PULP, TILING_DIALECT):
        ctx.load_dialect(dialect)
    return ctx


def load_network(path: Path, input_type: str | None = None, activations: str = "exact") -> ModuleOp:
    """Imports or parses a network and returns it fused into numbered layers (`activations`: see
    `import_onnx_file`)."""
    if path.suffix == ".mlir":
        try:
            text = path.read_text()
            check_mlir_text(text, str(path))
            module = Parser(make_context(), text, str(path)).parse_module()
        except OSError as e:
            raise DoryError(f"cannot read: {e.strerror}", str(path)) from None
        except UnicodeDecodeError as e:
            raise DoryError(f"not a text file (byte {e.start} is not UTF-8); .mlir input is MLIR text", str(path)) from None
        except ParseError as e:
            raise DoryError(one_line(e)) from None
        except (ValueError, OverflowError) as e:  # xDSL's attribute constructors reject out-of-range literals
            if isinstance(e, DoryError):
                raise
            raise DoryError(f"invalid IR: {one_line(e)}", str(path)) from None
        verify_module(module, str(path))
    else:
        from dory_mlir.frontend.onnx_import import import_onnx_file  # onnx only for .onnx input

        module = import_onnx_file(path, input_type, activations)
    FusePass().apply(make_context(), module)
    module.verify()
    return module
