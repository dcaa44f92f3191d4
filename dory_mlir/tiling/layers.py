"""From `qnn.layer` ops to the plain shapes the tiling model works on."""

from __future__ import annotations

from xdsl.ir import SSAValue

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.ir_utils import op_where
from dory_mlir.tiling.model import LayerShape


def nbytes(value) -> int:
    """Bytes of a tensor value as stored (elements of 8/16/32/64 bits)."""
    count = 1
    for d in qnn.shape_of(value):
        count *= d
    return count * max(1, qnn.element_type(value).width.data // 8)


def _per_channel_bytes(layer: qnn.LayerOp, channels: int) -> int:
    """Bytes per output channel of the per-channel constants (bias, requant mul/add)."""
    return sum(per_channel for role, per_channel, _ in constant_parts(layer) if role != "weights")


def constant_parts(layer: qnn.LayerOp) -> list[tuple[str, int, int]]:
    """(role, bytes per output channel, fixed bytes) of each constant the layer reads, in the
    order the kernels take them: a slice of `co` channels needs `co · per_channel + fixed`."""
    channels = qnn.shape_of(layer.anchor().results[0])[1]
    parts: list[tuple[str, int, int]] = []
    for op in layer.compute_ops():
        values: list[tuple[str, SSAValue]] = []
        if isinstance(op, qnn.ConvOp | qnn.LinearOp):
            values.append(("weights", op.weight))
            if op.bias is not None:
                values.append(("bias", op.bias))
        if isinstance(op, qnn.RequantOp):
            values += [("mul", op.mul), ("add", op.add)]
        for role, value in values:
            size = nbytes(value)
            if role in ("weights", "bias") or (channels > 1 and qnn.shape_of(value) == (channels,)):
                parts.append((role, size // channels, 0))
            else:
                parts.append((role, 0, size))
    return parts


def _fixed_bytes(layer: qnn.LayerOp) -> int:
    """L1 bytes of the per-tensor constants, each aligned."""
    return sum(aligned(fixed) for _, _, fixed in constant_parts(layer) if fixed)


def layer_shape(layer: qnn.LayerOp) -> LayerShape:
    anchor = layer.anchor()
    out_bytes = qnn.element_type(layer.output).width.data // 8
    in_bytes = input_element_bytes(anchor)
    kind = layer.kind()
    if isinstance(anchor, qnn.LinearOp):
        _, k = qnn.shape_of(anchor.input)
        m = qnn.shape_of(anchor.weight)[0]
        return LayerShape("linear", k, m, 1, 1, 1, 1, out_bytes=out_bytes, in_bytes=in_bytes, const_bytes=_per_channel_bytes(layer, m),
                          fixed_const_bytes=_fixed_bytes(layer))
    _, c_in, h_in, w_in = as_nchw(qnn.shape_of(anchor.operands[0]))
    _, c_out, h_out, w_out = as_nchw(qnn.shape_of(anchor.results[0]))
    if isinstance(anchor, qnn.ConvOp):
        if 1 < anchor.groups.value.data and kind != "depthwise":
            raise DoryError(f"grouped convolution ({anchor.groups.value.data} groups) has no kernel", op_where(layer))
        kh, kw = anchor.kernel_hw()
        sh, sw = anchor.stride_hw()
        dh, dw = anchor.dilations.get_values()
        return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, kh, kw, sh, sw, dh, dw,  # type: ignore[arg-type]
                          out_bytes=out_bytes, in_bytes=in_bytes, const_bytes=_per_channel_bytes(layer, c_out),
                          fixed_const_bytes=_fixed_bytes(layer))
    if isinstance(anchor, qnn.MaxPoolOp | qnn.SumPoolOp):
        kh, kw = anchor.kernel_hw()
        sh, sw = anchor.stride_hw()
        return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, kh, kw, sh, sw, out_bytes=out_bytes, in_bytes=in_bytes,
                          const_bytes=_per_channel_bytes(layer, c_out), fixed_const_bytes=_fixed_bytes(layer))
    return LayerShape("add", c_in, c_out, h_in, w_in, h_out, w_out, out_bytes=out_bytes, in_bytes=in_bytes,
                      const_bytes=_per_channel_bytes(layer, c_out), fixed_const_bytes=_fixed_bytes(layer))


def input_element_bytes(anchor) -> int:
    """Bytes of an activation element the anchor reads (the wider of an add's two inputs)."""
    inputs = (anchor.lhs, anchor.rhs) if isinstance(anchor, qnn.AddOp) else (anchor.operands[0],)
    return max(max(1, qnn.element_type(x).width.data // 8) for x in inputs)


def as_nchw(shape: tuple[int, ...]) -> tuple[int, ...]:
    """An N×K tensor (an add of two vectors) is the feature map N×K×1×1: the same bytes."""
    return (*shape, 1, 1) if len(shape) == 2 else shape


def aligned(n: int, alignment: int = 4) -> int:
    return -(-n // alignment) * alignment
