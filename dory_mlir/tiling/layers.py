"""From `qnn.layer` ops to the plain shapes the tiling model works on."""

from __future__ import annotations

from dory_mlir.dialects import qnn
from dory_mlir.tiling.model import LayerShape


def nbytes(value) -> int:
    """Bytes of a tensor value as stored (elements of 8/16/32/64 bits)."""
    count = 1
    for d in qnn.shape_of(value):
        count *= d
    return count * max(1, qnn.element_type(value).width.data // 8)


def _per_channel_bytes(layer: qnn.LayerOp, channels: int) -> int:
    """Bytes per output channel of the constants that are per channel (bias, requant mul/add)."""
    total = 0
    for op in layer.compute_ops():
        values = []
        if isinstance(op, qnn.ConvOp | qnn.LinearOp) and op.bias is not None:
            values.append(op.bias)
        if isinstance(op, qnn.RequantOp):
            values += [op.mul, op.add]
        for value in values:
            if qnn.shape_of(value) == (channels,) and channels > 1:
                total += qnn.element_type(value).width.data // 8
    return total


def layer_shape(layer: qnn.LayerOp) -> LayerShape:
    anchor = layer.anchor()
    out_bytes = qnn.element_type(layer.output).width.data // 8
    kind = layer.kind()
    if isinstance(anchor, qnn.LinearOp):
        _, k = qnn.shape_of(anchor.input)
        m = qnn.shape_of(anchor.weight)[0]
        return LayerShape("linear", k, m, 1, 1, 1, 1, out_bytes=out_bytes, const_bytes=_per_channel_bytes(layer, m))
    _, c_in, h_in, w_in = qnn.shape_of(anchor.operands[0])
    _, c_out, h_out, w_out = qnn.shape_of(anchor.results[0])
    if isinstance(anchor, qnn.ConvOp):
        kh, kw = anchor.kernel_hw()
        sh, sw = anchor.stride_hw()
        dh, dw = anchor.dilations.get_values()
        return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, kh, kw, sh, sw, dh, dw,  # type: ignore[arg-type]
                          out_bytes=out_bytes, const_bytes=_per_channel_bytes(layer, c_out))
    if isinstance(anchor, qnn.MaxPoolOp | qnn.SumPoolOp):
        kh, kw = anchor.kernel_hw()
        sh, sw = anchor.stride_hw()
        return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, kh, kw, sh, sw, out_bytes=out_bytes)
    return LayerShape("add", c_in, c_out, h_in, w_in, h_out, w_out, out_bytes=out_bytes)


def weight_bytes(layer: qnn.LayerOp) -> int:
    """Bytes of the constants a layer reads: weights, bias, requant constants."""
    return sum(nbytes(v) for v in layer.inputs if isinstance(v.owner, qnn.ConstantOp))
