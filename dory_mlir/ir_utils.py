"""Small helpers shared by passes and tools for naming IR ops in messages."""

from xdsl.dialects.builtin import NameLoc
from xdsl.ir import Operation


def loc_name(op: Operation) -> str | None:
    """The ONNX node name an op carries in its `loc`, if any."""
    location = op.location
    return location.desc.data if isinstance(location, NameLoc) else None


def op_where(op: Operation) -> str:
    """`qnn.conv at loc("Conv_3")`: how diagnostics name an op."""
    name = loc_name(op)
    return f'{op.name} at loc("{name}")' if name else op.name
