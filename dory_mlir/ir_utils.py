"""Small helpers shared by passes and tools: naming ops in messages, verifying, building blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, IntegerAttr, ModuleOp, NameLoc
from xdsl.ir import Block, Operation, SSAValue
from xdsl.utils.exceptions import VerifyException

from dory_mlir.diagnostics import DoryError


def loc_name(op: Operation) -> str | None:
    """The ONNX node name an op carries in its `loc`, if any."""
    location = op.location
    return location.desc.data if isinstance(location, NameLoc) else None


def layer_output_node(layer: Operation) -> str | None:
    """The ONNX node whose output a `qnn.layer` yields (the layer's own loc names its anchor op)."""
    terminator = layer.regions[0].block.last_op if layer.regions else None
    if terminator is None or not terminator.operands:
        return None
    source = terminator.operands[0].owner
    return loc_name(source) if isinstance(source, Operation) else None


def op_where(op: Operation) -> str:
    """`qnn.conv at loc("Conv_3")`: how diagnostics name an op."""
    name = loc_name(op)
    return f'{op.name} at loc("{name}")' if name else op.name


def verify_module(module: ModuleOp, source: str) -> None:
    """Verifies `module`; a failure names the innermost failing op (`DoryError`, one line)."""
    try:
        module.verify()
    except VerifyException as error:
        for op in module.walk():
            try:
                op.verify(verify_nested_ops=False)
            except VerifyException as inner:
                result = f" (%{op.results[0].name_hint})" if op.results and op.results[0].name_hint else ""
                raise DoryError(f"{op_where(op)}{result}: {inner}", source) from None
        raise DoryError(str(error).strip().splitlines()[0], source) from None


@dataclass
class BodyBuilder:
    """Appends ops to a block; index constants are created once per block."""

    block: Block
    constants: dict[int, SSAValue] = field(default_factory=dict)
    rows: dict[tuple, dict[str, SSAValue]] = field(default_factory=dict)
    """Values loaded from table rows in this block, by (table, row): loaded once per block."""

    def add(self, op: Operation) -> Operation:
        self.block.add_op(op)
        return op

    def index(self, value: int) -> SSAValue:
        if value not in self.constants:
            self.constants[value] = self.add(arith.ConstantOp(IntegerAttr(value, IndexType()))).results[0]
        return self.constants[value]

    def binary(self, op_class, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.add(op_class(a, b)).results[0]

    def child(self, block: Block) -> BodyBuilder:
        """A builder of a block nested in this one (appended here after the constants made so far,
        which therefore dominate it and are reused)."""
        return BodyBuilder(block, dict(self.constants))
