"""The `dma` dialect: asynchronous strided copies between memory levels.

A copy moves a 1-D, 2-D or 3-D block (a `memref.subview`, any strides) from one level
to the next: L3 ↔ L2 (the cluster's RAM API) or L2 ↔ L1 (the cluster DMA). It returns
a token; the data is there (and the source may be reused) only after `dma.wait` on it.
Memory levels are the memref's memory space: "L1", "L2" or "L3". A copy is never empty: a
static dimension of size 0 is rejected (the DMA and RAM APIs refuse transfers of 0 bytes).

```mlir
%t = dma.copy %src, %dst : memref<4x16x8xui8, strided<[512, 32, 1], offset: ?>, "L2"> to memref<4x16x8xui8, "L1">
dma.wait %t
```
"""

from __future__ import annotations

from xdsl.dialects.builtin import MemRefType, StringAttr
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import IRDLOperation, irdl_attr_definition, irdl_op_definition, operand_def, result_def
from xdsl.utils.exceptions import VerifyException

LEVELS = ("L1", "L2", "L3")
# Which transfers exist: the cluster DMA (L2 <-> L1) and the RAM API (L3 <-> L2).
TRANSFERS = {("L2", "L1"), ("L1", "L2"), ("L3", "L2"), ("L2", "L3")}


@irdl_attr_definition
class TokenType(ParametrizedAttribute, TypeAttribute):
    """A transfer in flight; `dma.wait` completes it."""

    name = "dma.token"


def memory_level(ty: Attribute) -> str:
    """The level ("L1", "L2", "L3") of a memref type."""
    if not isinstance(ty, MemRefType):
        raise VerifyException(f"expected a memref, got {ty}")
    space = ty.memory_space
    if not isinstance(space, StringAttr) or space.data not in LEVELS:
        raise VerifyException(f"memref must be in memory space \"L1\", \"L2\" or \"L3\", got {ty}")
    return space.data


@irdl_op_definition
class CopyOp(IRDLOperation):
    """Starts copying `source` into `destination` (same shape and element type)."""

    name = "dma.copy"
    source = operand_def(MemRefType)
    destination = operand_def(MemRefType)
    token = result_def(TokenType)

    assembly_format = "$source `,` $destination attr-dict `:` type($source) `to` type($destination)"

    def __init__(self, source: SSAValue, destination: SSAValue):
        super().__init__(operands=[source, destination], result_types=[TokenType()])

    def direction(self) -> tuple[str, str]:
        return memory_level(self.source.type), memory_level(self.destination.type)

    def verify_(self) -> None:
        src, dst = self.source.type, self.destination.type
        assert isinstance(src, MemRefType) and isinstance(dst, MemRefType)
        levels = self.direction()
        if levels not in TRANSFERS:
            raise VerifyException(f"no transfer from {levels[0]} to {levels[1]} (only L3 <-> L2 and L2 <-> L1)")
        if src.element_type != dst.element_type:
            raise VerifyException(f"element types differ: {src.element_type} and {dst.element_type}")
        src_shape, dst_shape = src.get_shape(), dst.get_shape()
        if len(src_shape) != len(dst_shape) or any(
            a != b and a >= 0 and b >= 0 for a, b in zip(src_shape, dst_shape)  # dynamic sizes match at run time
        ):
            raise VerifyException(f"shapes differ: {list(src_shape)} and {list(dst_shape)}")
        if not 1 <= len(src_shape) <= 3:
            raise VerifyException(f"copies are 1-D, 2-D or 3-D, got rank {len(src.get_shape())}")
        if 0 in src_shape or 0 in dst_shape:
            # The DMA and RAM APIs reject a transfer of 0 bytes: a copy that may be empty must be
            # skipped by the lowering (sizes known only at run time: guard it, see tile-layers).
            raise VerifyException(f"empty transfer: shape {list(src_shape)} to {list(dst_shape)} has a dimension of size 0")


@irdl_op_definition
class WaitOp(IRDLOperation):
    """Blocks until the transfer of `token` has completed."""

    name = "dma.wait"
    token = operand_def(TokenType)

    assembly_format = "$token attr-dict"

    def __init__(self, token: SSAValue):
        super().__init__(operands=[token])


@irdl_op_definition
class CompletedOp(IRDLOperation):
    """A token of no transfer (waiting on it returns at once): what a branch that copies
    nothing yields where the other branch yields a copy's token."""

    name = "dma.completed"
    token = result_def(TokenType)

    assembly_format = "attr-dict"

    def __init__(self):
        super().__init__(result_types=[TokenType()])


DMA = Dialect("dma", [CopyOp, WaitOp, CompletedOp], [TokenType])
