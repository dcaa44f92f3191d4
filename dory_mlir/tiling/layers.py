"""From `qnn.layer` ops to the plain shapes the tiling model works on."""

from __future__ import annotations

from xdsl.ir import SSAValue

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.ir_utils import op_where
from dory_mlir.tiling.geometry import LayerShape, transpose_runs


def nbytes(value) -> int:
    """Bytes of a tensor value as stored (elements of 8/16/32/64 bits)."""
    count = 1
    for d in qnn.shape_of(value):
        count *= d
    return count * max(1, qnn.element_type(value).width.data // 8)


def per_batch(value: SSAValue) -> bool:
    """In a matmul layer, a requant constant with one value per batch slice ([G, 1], `qnn.requant`);
    in other layers a 2-D constant varies over the rows ([H, C] / [H, 1], `l1_constant_parts`)."""
    return len(qnn.shape_of(value)) == 2


def _batch_const_bytes(layer: qnn.LayerOp) -> int:
    """L1 bytes of the per-batch-slice constants: one value of each (aligned) per tile."""
    return sum(aligned(nbytes(value) // qnn.shape_of(value)[0]) for op in layer.compute_ops()
               if isinstance(op, qnn.RequantOp) for value in (op.mul, op.add) if per_batch(value))


def _per_channel_bytes(layer: qnn.LayerOp, channels: int) -> int:
    """Bytes per output channel of the per-channel constants (bias, requant mul/add)."""
    return sum(per_channel for role, per_channel, _, rows in l1_constant_parts(layer) if role != "weights" and not rows)


def layer_constants(layer: qnn.LayerOp) -> list[tuple[str, SSAValue]]:
    """(role, value) of each constant the layer reads, in the order the kernels take them."""
    values: list[tuple[str, SSAValue]] = []
    for op in layer.compute_ops():
        if isinstance(op, qnn.ConvOp | qnn.LinearOp):
            values.append(("weights", op.weight))
            if op.bias is not None:
                values.append(("bias", op.bias))
        if isinstance(op, qnn.RMSNormOp):
            values.append(("bias", op.weight))  # an int32 per feature: a norm's per-channel constant
        if isinstance(op, qnn.LayerNormOp):
            values += [("bias", op.bias), ("mul", op.weight)]  # int32 per feature, as a conv's bias and mul
        if isinstance(op, qnn.RequantOp):
            values += [("mul", op.mul), ("add", op.add)]
    return values


def constant_parts(layer: qnn.LayerOp) -> list[tuple[str, int, int]]:
    """(role, bytes per output channel, fixed bytes) of each constant the layer reads, in the
    order the kernels take them: a slice of `co` channels needs `co · per_channel + fixed`
    (a constant that varies over the output rows, [H, C] or [H, 1], is needed whole)."""
    channels = qnn.shape_of(layer.anchor().results[0])[1]
    parts: list[tuple[str, int, int]] = []
    for role, value in layer_constants(layer):
        size = nbytes(value)
        if role in ("weights", "bias") or (channels > 1 and qnn.shape_of(value) == (channels,)):
            parts.append((role, size // channels, 0))
        else:
            parts.append((role, 0, size))
    return parts


def l1_constant_parts(layer: qnn.LayerOp) -> list[tuple[str, int, int, bool]]:
    """(role, bytes per output channel, fixed bytes, varies over the rows) of the block of each
    constant one L1 tile reads: of a constant that varies over the output rows, one row's
    (per channel for [H, C], fixed for [H, 1])."""
    channels = qnn.shape_of(layer.anchor().results[0])[1]
    parts = []
    for (role, per_channel, fixed), (_, value) in zip(constant_parts(layer), layer_constants(layer), strict=True):
        shape = qnn.shape_of(value)
        if role in ("mul", "add") and len(shape) == 2:
            row = nbytes(value) // shape[0]
            parts.append((role, row // channels, 0, True) if channels > 1 and shape[1] == channels else (role, 0, row, True))
        else:
            parts.append((role, per_channel, fixed, False))
    return parts


def _fixed_bytes(layer: qnn.LayerOp) -> int:
    """L1 bytes of the per-tensor constants, each aligned (those that vary over the rows, or per batch
    slice of a matmul, are counted apart)."""
    return sum(aligned(fixed) for _, _, fixed, rows in l1_constant_parts(layer) if fixed and not rows)


def _row_constant_bytes(layer: qnn.LayerOp) -> dict[str, int]:
    """The `row_const_bytes` and `row_fixed_const_bytes` of the layer's shape (see LayerShape)."""
    parts = [part for part in l1_constant_parts(layer) if part[3]]
    return {"row_const_bytes": sum(per_channel for _, per_channel, _, _ in parts),
            "row_fixed_const_bytes": sum(aligned(fixed) for _, _, fixed, _ in parts if fixed)}


def layer_shape(layer: qnn.LayerOp) -> LayerShape:
    anchor = layer.anchor()
    out_bytes = qnn.element_type(layer.output).width.data // 8
    in_bytes = input_element_bytes(anchor)
    kind = layer.kind()
    rows = qnn.shape_of(anchor.results[0])[2] if len(qnn.shape_of(anchor.results[0])) == 4 else 1
    two_dimensional = [qnn.shape_of(v) for op in layer.compute_ops() if isinstance(op, qnn.RequantOp)
                       for v in (op.mul, op.add) if per_batch(v)]
    if not isinstance(anchor, qnn.MatMulOp) and any(shape[0] != rows for shape in two_dimensional):
        raise DoryError(f"a {kind} layer has requant constants per group of rows; only a matmul's batch slices "
                        "have such constants", op_where(layer))
    if isinstance(anchor, qnn.MatMulOp) and any(shape[1] != 1 for shape in two_dimensional):
        raise DoryError("a matmul layer's requant constants vary over its rows and columns; per batch slice "
                        "([G, 1]), per column or per tensor are supported", op_where(layer))
    if isinstance(anchor, qnn.MatMulOp):
        if in_bytes > 1:
            raise DoryError("a matmul of 16-bit activations has no kernel (dory_matmul reads 8-bit operands)",
                            op_where(layer))
        m, k, n = anchor.dims()
        rows_out = qnn.shape_of(anchor.output)[2]
        lhs_rows = qnn.shape_of(anchor.lhs)[2]
        return LayerShape("matmul", k, n, lhs_rows, 1, rows_out, 1, out_bytes=out_bytes,
                          const_bytes=_per_channel_bytes(layer, n), fixed_const_bytes=_fixed_bytes(layer),
                          rows_per_batch=m, shared_lhs=lhs_rows == m, shared_rhs=qnn.shape_of(anchor.rhs)[2] == k,
                          batch_const_bytes=_batch_const_bytes(layer))
    if isinstance(anchor, qnn.TransposeOp):
        # Its output rows, each gathered from the input: as wide as the output on both sides.
        _, features, rows_out, _ = qnn.shape_of(anchor.output)
        return LayerShape("transpose", features, features, rows_out, 1, rows_out, 1, out_bytes=out_bytes,
                          in_bytes=in_bytes, **transpose_runs(anchor.result_shape()))
    if isinstance(anchor, qnn.LinearOp):
        _, k = qnn.shape_of(anchor.input)
        m = qnn.shape_of(anchor.weight)[0]
        return LayerShape("linear", k, m, 1, 1, 1, 1, out_bytes=out_bytes, in_bytes=in_bytes, const_bytes=_per_channel_bytes(layer, m),
                          fixed_const_bytes=_fixed_bytes(layer), **_row_constant_bytes(layer))
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
                          fixed_const_bytes=_fixed_bytes(layer), **_row_constant_bytes(layer))
    if isinstance(anchor, qnn.MaxPoolOp | qnn.SumPoolOp):
        kh, kw = anchor.kernel_hw()
        sh, sw = anchor.stride_hw()
        return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, kh, kw, sh, sw, out_bytes=out_bytes, in_bytes=in_bytes,
                          const_bytes=_per_channel_bytes(layer, c_out), fixed_const_bytes=_fixed_bytes(layer),
                          **_row_constant_bytes(layer))
    return LayerShape(kind, c_in, c_out, h_in, w_in, h_out, w_out, out_bytes=out_bytes, in_bytes=in_bytes,
                      const_bytes=_per_channel_bytes(layer, c_out), fixed_const_bytes=_fixed_bytes(layer),
                      **_row_constant_bytes(layer))


def input_element_bytes(anchor) -> int:
    """Bytes of an activation element the anchor reads (the wider of an add's two inputs)."""
    inputs = (anchor.lhs, anchor.rhs) if isinstance(anchor, qnn.AddOp | qnn.MatMulOp) else (anchor.operands[0],)
    return max(max(1, qnn.element_type(x).width.data // 8) for x in inputs)


def as_nchw(shape: tuple[int, ...]) -> tuple[int, ...]:
    """An N×K tensor (an add of two vectors) is the feature map N×K×1×1: the same bytes."""
    return (*shape, 1, 1) if len(shape) == 2 else shape


def aligned(n: int, alignment: int = 4) -> int:
    return -(-n // alignment) * alignment
