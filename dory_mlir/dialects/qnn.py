"""The `qnn` dialect: integer quantized neural networks on tensors.

Tensors are NCHW as in ONNX (1-D networks use H = 1); every value is an integer and
every op is exact integer arithmetic (see `../shared/DESIGN.md` §2). The import
produces the fine-grained ops (conv, requant, add, pools, ...); the `fuse` pass wraps
them into numbered `qnn.layer` ops, the unit that tiling and code generation work on.
"""

from __future__ import annotations

from collections.abc import Sequence

import math

import numpy as np

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    StringAttr,
    TensorType,
    UnitAttr,
    i64,
)
from xdsl.ir import Attribute, Dialect, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    Pure,
)
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

ACC_TYPE = IntegerType(32, Signedness.SIGNED)

# Unit attribute of a network function imported with `--activations saturate`: a requantization the
# graph does not clip, whose values may exceed 8 bits, saturates to 8 bits as DORY's kernels do
# (the `fuse` pass narrows NEMO's two-stage residual adds so too). Without it the network is exact:
# such tensors are 16-bit.
SATURATE_ATTR = "saturate_unclipped"
ACTIVATION_TYPES = (
    IntegerType(8, Signedness.UNSIGNED), IntegerType(8, Signedness.SIGNED),
    IntegerType(16, Signedness.UNSIGNED), IntegerType(16, Signedness.SIGNED),
)


def narrowest_activation_type(lo: int, hi: int) -> IntegerType | None:
    """The narrowest activation type (ui8, si8, ui16, si16) holding [lo, hi], None beyond 16 bits."""
    for ty in ACTIVATION_TYPES:
        type_lo, type_hi = int_range(ty)
        if type_lo <= lo and hi <= type_hi:
            return ty
    return None


# --------------------------------------------------------------------------- helpers


def int_range(ty: Attribute) -> tuple[int, int]:
    """Inclusive value range of an integer element type (signless counts as signed)."""
    if not isinstance(ty, IntegerType):
        raise VerifyException(f"expected an integer element type, got {ty}")
    width = ty.width.data
    if ty.signedness.data == Signedness.UNSIGNED:
        return 0, (1 << width) - 1
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def tensor_type(value: SSAValue | Attribute) -> TensorType[Attribute]:
    ty = value.type if isinstance(value, SSAValue) else value
    if not isinstance(ty, TensorType):
        raise VerifyException(f"expected a ranked tensor, got {ty}")
    return ty


def shape_of(value: SSAValue | Attribute) -> tuple[int, ...]:
    shape = tuple(tensor_type(value).get_shape())
    if any(d < 1 for d in shape):
        raise VerifyException(f"dimensions must be static and positive, got {tensor_type(value)}")
    return shape


def element_type(value: SSAValue | Attribute) -> IntegerType:
    ty = tensor_type(value).element_type
    if not isinstance(ty, IntegerType):
        raise VerifyException(f"expected integer elements, got {ty}")
    return ty


def _check_activation(what: str, value: SSAValue, rank: int) -> IntegerType:
    """Activations are ranked integer tensors of at most 16 bits (16 where the exported network's own
    integers exceed 8 bits: the kernels read them through an exact path of their own)."""
    shape = shape_of(value)
    if len(shape) != rank:
        raise VerifyException(f"{what} must have rank {rank}, got shape {list(shape)}")
    ty = element_type(value)
    if ty.width.data > 16:
        raise VerifyException(f"{what} must have at most 16-bit elements, got {ty}")
    return ty


def _check_si32(what: str, value: SSAValue) -> None:
    if element_type(value) != ACC_TYPE:
        raise VerifyException(f"{what} must have si32 elements, got {element_type(value)}")


def _product(values: Sequence[int]) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def _ints(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(attr.get_values())  # type: ignore[arg-type]


def _check_array(name: str, values: Sequence[int], length: int, minimum: int) -> None:
    if len(values) != length:
        raise VerifyException(f"{name} must have {length} entries, got {len(values)}")
    if any(v < minimum for v in values):
        raise VerifyException(f"{name} entries must be >= {minimum}, got {list(values)}")


def window_output_size(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int = 1
) -> int:
    """Output extent of a sliding window (ONNX floor convention)."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def _array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, values)


class _WindowOp(IRDLOperation):
    """Shared accessors of ops with a 2-D sliding window over NCHW tensors."""

    strides = prop_def(DenseArrayBase.constr(i64))
    pads = prop_def(DenseArrayBase.constr(i64))
    """Zero padding as [top, left, bottom, right]."""

    def stride_hw(self) -> tuple[int, int]:
        sh, sw = _ints(self.strides)
        return sh, sw

    def pads_tlbr(self) -> tuple[int, int, int, int]:
        t, l, b, r = _ints(self.pads)
        return t, l, b, r

    def _verify_arrays(self) -> None:
        _check_array("strides", _ints(self.strides), 2, 1)
        _check_array("pads", _ints(self.pads), 4, 0)

    def _verify_window(self, kernel: tuple[int, int], dilation: tuple[int, int]) -> None:
        self._verify_arrays()
        in_shape = shape_of(self.operands[0])
        out_shape = shape_of(self.results[0])
        if len(out_shape) != 4:
            raise VerifyException(f"result must have rank 4, got shape {list(out_shape)}")
        t, l, b, r = self.pads_tlbr()
        sh, sw = self.stride_hw()
        for axis, (size, k, s, p0, p1, d) in enumerate(
            ((in_shape[2], kernel[0], sh, t, b, dilation[0]), (in_shape[3], kernel[1], sw, l, r, dilation[1]))
        ):
            if d * (k - 1) + 1 > size + p0 + p1:
                raise VerifyException(
                    f"window {k} (dilation {d}) is larger than the padded input extent {size + p0 + p1}"
                )
            expected = window_output_size(size, k, s, p0, p1, d)
            if out_shape[2 + axis] != expected:
                raise VerifyException(
                    f"output {'HW'[axis]} must be {expected} for input {size}, kernel {k}, "
                    f"stride {s}, pads {p0}+{p1}, dilation {d}; got {out_shape[2 + axis]}"
                )


# --------------------------------------------------------------------------- ops


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """An integer tensor constant: weights, biases and per-channel requant constants.

    ```mlir
    %w = qnn.constant dense<[[1, -2], [3, 4]]> : tensor<2x2xsi8>
    ```
    """

    name = "qnn.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, value: DenseIntOrFPElementsAttr):
        super().__init__(properties={"value": value}, result_types=[value.get_type()])

    def verify_(self) -> None:
        if self.value.get_type() != self.result.type:
            raise VerifyException(
                f"result type {self.result.type} differs from the value's type {self.value.get_type()}"
            )
        element_type(self.result)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.value)
        printer.print_op_attributes(self.attributes)

    @classmethod
    def parse(cls, parser: Parser) -> ConstantOp:
        value = parser.parse_attribute()
        if not isinstance(value, DenseIntOrFPElementsAttr):
            parser.raise_error("expected a dense integer elements attribute")
        attrs = parser.parse_optional_attr_dict()
        op = cls(value)
        op.attributes.update(attrs)
        return op


@irdl_op_definition
class ConvOp(_WindowOp):
    """2-D convolution with int32 accumulation: `acc[n,o,y,x] = bias[o] + Σ w[o,c,i,j]·in[...]`.

    Weights are OIHW with I = C_in / groups (depthwise: groups = C_in = C_out).
    Padded positions hold `pad_value` (default 0) in the activation's integer domain:
    formats with a zero point pad with it, so that padding means a real zero.
    """

    name = "qnn.conv"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    dilations = prop_def(DenseArrayBase.constr(i64))
    groups = prop_def(IntegerAttr[I64])
    pad_value = opt_prop_def(IntegerAttr[I64])

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = (
        "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    )

    def __init__(
        self,
        input: SSAValue,
        weight: SSAValue,
        bias: SSAValue | None,
        result_type: Attribute,
        strides: Sequence[int],
        pads: Sequence[int],
        dilations: Sequence[int] = (1, 1),
        groups: int = 1,
        pad_value: int = 0,
    ):
        properties = {
            "strides": _array(strides),
            "pads": _array(pads),
            "dilations": _array(dilations),
            "groups": IntegerAttr(groups, i64),
        }
        if pad_value:
            properties["pad_value"] = IntegerAttr(pad_value, i64)
        super().__init__(operands=[input, weight, bias], result_types=[result_type], properties=properties)

    def padding_value(self) -> int:
        return self.pad_value.value.data if self.pad_value is not None else 0

    def kernel_hw(self) -> tuple[int, int]:
        shape = shape_of(self.weight)
        return shape[2], shape[3]

    def is_depthwise(self) -> bool:
        c_in = shape_of(self.input)[1]
        return self.groups.value.data == c_in > 1 and shape_of(self.weight)[0] == c_in

    def verify_(self) -> None:
        _check_activation("input", self.input, 4)
        n, c_in, _, _ = shape_of(self.input)
        w_shape = shape_of(self.weight)
        if len(w_shape) != 4:
            raise VerifyException(f"weight must be OIHW (rank 4), got shape {list(w_shape)}")
        if element_type(self.weight).width.data > 8 or element_type(self.weight).signedness.data != Signedness.SIGNED:
            raise VerifyException(f"weight must have si8 (or narrower signed) elements, got {element_type(self.weight)}")
        groups = self.groups.value.data
        c_out = w_shape[0]
        if groups < 1 or c_in % groups or c_out % groups:
            raise VerifyException(
                f"groups {groups} must divide input channels {c_in} and output channels {c_out}"
            )
        if w_shape[1] != c_in // groups:
            raise VerifyException(
                f"weight has {w_shape[1]} input channels per group, expected {c_in // groups} "
                f"({c_in} channels / {groups} groups)"
            )
        if self.bias is not None:
            _check_si32("bias", self.bias)
            if shape_of(self.bias) != (c_out,):
                raise VerifyException(f"bias must have shape [{c_out}], got {list(shape_of(self.bias))}")
        _check_si32("result", self.output)
        out_shape = shape_of(self.output)
        if len(out_shape) != 4 or out_shape[:2] != (n, c_out):
            raise VerifyException(f"result must be {n}x{c_out}xHxW, got {list(out_shape)}")
        _check_array("dilations", _ints(self.dilations), 2, 1)
        dh, dw = _ints(self.dilations)
        self._verify_window(self.kernel_hw(), (dh, dw))
        lo, hi = int_range(element_type(self.input))
        if not lo <= self.padding_value() <= hi:
            raise VerifyException(f"pad_value {self.padding_value()} is outside the input's range [{lo}, {hi}]")


@irdl_op_definition
class LinearOp(IRDLOperation):
    """Fully connected layer with int32 accumulation: `acc[n,m] = bias[m] + Σ_k w[m,k]·in[n,k]`."""

    name = "qnn.linear"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)

    assembly_format = (
        "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"
    )

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue | None, result_type: Attribute):
        super().__init__(operands=[input, weight, bias], result_types=[result_type])

    def verify_(self) -> None:
        _check_activation("input", self.input, 2)
        n, k = shape_of(self.input)
        w_shape = shape_of(self.weight)
        if len(w_shape) != 2 or w_shape[1] != k:
            raise VerifyException(f"weight must have shape [M, {k}], got {list(w_shape)}")
        if element_type(self.weight).width.data > 8 or element_type(self.weight).signedness.data != Signedness.SIGNED:
            raise VerifyException(f"weight must have si8 (or narrower signed) elements, got {element_type(self.weight)}")
        m = w_shape[0]
        if self.bias is not None:
            _check_si32("bias", self.bias)
            if shape_of(self.bias) != (m,):
                raise VerifyException(f"bias must have shape [{m}], got {list(shape_of(self.bias))}")
        _check_si32("result", self.output)
        if shape_of(self.output) != (n, m):
            raise VerifyException(f"result must have shape [{n}, {m}], got {list(shape_of(self.output))}")


@irdl_op_definition
class MatMulOp(IRDLOperation):
    """Product of two activations (ONNX MatMul, batched and broadcast): `acc[..., m, n] = Σ_k a[..., m, k]·b[..., k, n]`.

    Both operands and the result are rows of features (`tensor_layout.py`): `lhs` is the ONNX tensor
    `[*lhs_batch, M, K]` as the IR feature map 1×K×(prod(lhs_batch)·M)×1, `rhs` is `[*rhs_batch, K, N]` as
    1×N×(prod(rhs_batch)·K)×1, the int32 result `[*batch, M, N]` is 1×N×(prod(batch)·M)×1, with `batch` the
    ONNX broadcast of `lhs_batch` and `rhs_batch` (equal rank; each pair of sizes equal, or one of them 1).
    The bytes of each are ONNX's row-major bytes: batch slices of M (or K) rows one after the other.
    """

    name = "qnn.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    lhs_batch = prop_def(DenseArrayBase.constr(i64))
    rhs_batch = prop_def(DenseArrayBase.constr(i64))

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute,
                 lhs_batch: Sequence[int] = (), rhs_batch: Sequence[int] = ()):
        super().__init__(operands=[lhs, rhs], result_types=[result_type],
                         properties={"lhs_batch": _array(lhs_batch), "rhs_batch": _array(rhs_batch)})

    def batch(self) -> tuple[int, ...]:
        """The output's batch dimensions (the broadcast of both operands')."""
        return tuple(max(a, b) for a, b in zip(_ints(self.lhs_batch), _ints(self.rhs_batch), strict=True))

    def dims(self) -> tuple[int, int, int]:
        """(M, K, N) of one batch slice."""
        k, n = shape_of(self.lhs)[1], shape_of(self.rhs)[1]
        m = shape_of(self.output)[2] // max(1, _product(self.batch()))
        return m, k, n

    def batch_sources(self) -> list[tuple[int, int]]:
        """For each output batch slice (row-major over `batch`), the lhs and rhs slice it reads."""
        batch = self.batch()
        lhs_index = np.arange(_product(_ints(self.lhs_batch))).reshape(_ints(self.lhs_batch))
        rhs_index = np.arange(_product(_ints(self.rhs_batch))).reshape(_ints(self.rhs_batch))
        lhs_all = np.broadcast_to(lhs_index, batch).reshape(-1)
        rhs_all = np.broadcast_to(rhs_index, batch).reshape(-1)
        return [(int(a), int(b)) for a, b in zip(lhs_all, rhs_all, strict=True)]

    def verify_(self) -> None:
        lhs_batch, rhs_batch = _ints(self.lhs_batch), _ints(self.rhs_batch)
        if len(lhs_batch) != len(rhs_batch):
            raise VerifyException(f"lhs_batch {list(lhs_batch)} and rhs_batch {list(rhs_batch)} must have the same rank")
        if any(d < 1 for d in lhs_batch + rhs_batch):
            raise VerifyException("batch dimensions must be positive")
        if any(a != b and 1 not in (a, b) for a, b in zip(lhs_batch, rhs_batch, strict=True)):
            raise VerifyException(f"batch dimensions {list(lhs_batch)} and {list(rhs_batch)} do not broadcast")
        for what, value in (("lhs", self.lhs), ("rhs", self.rhs)):
            _check_activation(what, value, 4)
            n, _, _, w = shape_of(value)
            if n != 1 or w != 1:
                raise VerifyException(f"{what} must be rows of features 1xCxRx1, got {list(shape_of(value))}")
        _check_si32("result", self.output)
        _, k, a_rows, _ = shape_of(self.lhs)
        _, n, b_rows, _ = shape_of(self.rhs)
        if b_rows % _product(rhs_batch) or b_rows // _product(rhs_batch) != k:
            raise VerifyException(f"rhs must hold {_product(rhs_batch)} slices of K = {k} rows, got {b_rows} rows")
        if a_rows % _product(lhs_batch):
            raise VerifyException(f"lhs rows {a_rows} are not {_product(lhs_batch)} equal batch slices")
        m = a_rows // _product(lhs_batch)
        expected = (1, n, _product(self.batch()) * m, 1)
        if shape_of(self.output) != expected:
            raise VerifyException(f"result must have shape {list(expected)}, got {list(shape_of(self.output))}")


class Rounding(StrEnum):
    """How `qnn.requant` rounds its exact quotient to an integer."""

    FLOOR = "floor"
    TRUNC = "trunc"  # toward zero, as ONNX integer `Div` does


@irdl_op_definition
class RequantOp(IRDLOperation):
    """Requantization: `y = clip(round(((x·mul[c] + add[c]) · scale) / divisor), min, max)`.

    `mul`/`add` are per-channel (channel axis 1) or per-tensor (one entry) constants —
    batch-norm folded into integers — or, for a rank-4 input N×C×H×W, vary over the rows as
    well: shape [H, C] (`mul[h, c]`) or [H, 1] (`mul[h]`, per row). A GEMM's per-row and
    per-element offsets and per-row requantization take that form (its rows are the IR's H,
    see `tensor_layout.py`); the tiler gives such a layer tiles of one output row, so each
    tile's constants are again per channel or per tensor. Per group of rows: shape [G, 1] with
    1 < G < H dividing the rows H, row h using entry h // (H / G) (per row is G = H) — one value
    per batch slice of a `qnn.matmul` result, whose slices are consecutive runs of rows.
    `divisor` is usually a power of two (a shift) but
    any positive integer is allowed: some exporters divide by 2^d - 1, and the result
    must be exact. `intermediate_bits` (32 or 64) is the width the products need; the
    golden model checks that no value exceeds it.
    """

    name = "qnn.requant"
    input = operand_def(TensorType)
    mul = operand_def(TensorType)
    add = operand_def(TensorType)
    output = result_def(TensorType)
    scale = prop_def(IntegerAttr[I64])
    divisor = prop_def(IntegerAttr[I64])
    min = prop_def(IntegerAttr[I64])
    max = prop_def(IntegerAttr[I64])
    rounding = prop_def(StringAttr)
    intermediate_bits = prop_def(IntegerAttr[I64])

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = (
        "$input `,` $mul `,` $add attr-dict `:` functional-type(operands, results)"
    )

    def __init__(
        self,
        input: SSAValue,
        mul: SSAValue,
        add: SSAValue,
        result_type: Attribute,
        *,
        scale: int,
        divisor: int,
        min: int,
        max: int,
        rounding: Rounding = Rounding.FLOOR,
        intermediate_bits: int = 32,
    ):
        super().__init__(
            operands=[input, mul, add],
            result_types=[result_type],
            properties={
                "scale": IntegerAttr(scale, i64),
                "divisor": IntegerAttr(divisor, i64),
                "min": IntegerAttr(min, i64),
                "max": IntegerAttr(max, i64),
                "rounding": StringAttr(rounding.value),
                "intermediate_bits": IntegerAttr(intermediate_bits, i64),
            },
        )

    def varies_over_rows(self) -> bool:
        """Whether mul or add holds one block of constants per output row ([H, C] or [H, 1])."""
        return any(len(shape_of(v)) == 2 for v in (self.mul, self.add))

    def shift(self) -> int | None:
        """log2(divisor) when the divisor is a power of two, else None."""
        d = self.divisor.value.data
        return d.bit_length() - 1 if d & (d - 1) == 0 else None

    def verify_(self) -> None:
        in_shape = shape_of(self.input)
        if shape_of(self.output) != in_shape:
            raise VerifyException(
                f"result shape {list(shape_of(self.output))} differs from input shape {list(in_shape)}"
            )
        element_type(self.input)
        channels = in_shape[1] if len(in_shape) > 1 else 1
        allowed = [(channels,), (1,)]
        if len(in_shape) == 4:
            allowed += [(in_shape[2], channels), (in_shape[2], 1)]
        for what, value in (("mul", self.mul), ("add", self.add)):
            shape = shape_of(value)
            if len(shape) == 2 and len(in_shape) == 4 and shape[1] == 1 and shape[0] not in (1, in_shape[2]):
                if shape[0] < 2 or in_shape[2] % shape[0]:  # per group of rows
                    raise VerifyException(f"{what} per group of rows [G, 1] needs G > 1 dividing the {in_shape[2]} "
                                          f"rows, got {list(shape)}")
            elif shape not in allowed:
                forms = f"[{channels}] (per channel) or [1] (per tensor)"
                if len(in_shape) == 4:
                    forms = f"[{channels}] (per channel), [1] (per tensor), [{in_shape[2]}, {channels}] or [{in_shape[2]}, 1] (per row)"
                raise VerifyException(f"{what} must have shape {forms}, got {list(shape)}")
            if element_type(value).width.data not in (32, 64):
                raise VerifyException(f"{what} must have 32- or 64-bit elements, got {element_type(value)}")
        if self.divisor.value.data < 1:
            raise VerifyException(f"divisor must be positive, got {self.divisor.value.data}")
        if self.rounding.data not in tuple(Rounding):
            raise VerifyException(
                f"rounding must be one of {', '.join(tuple(Rounding))}, got '{self.rounding.data}'"
            )
        if self.intermediate_bits.value.data not in (32, 64):
            raise VerifyException(
                f"intermediate_bits must be 32 or 64, got {self.intermediate_bits.value.data}"
            )
        lo, hi = self.min.value.data, self.max.value.data
        if lo > hi:
            raise VerifyException(f"min {lo} is greater than max {hi}")
        type_lo, type_hi = int_range(element_type(self.output))
        if lo < type_lo or hi > type_hi:
            raise VerifyException(
                f"clip range [{lo}, {hi}] does not fit the result type {element_type(self.output)} "
                f"[{type_lo}, {type_hi}]"
            )


@irdl_op_definition
class AddOp(IRDLOperation):
    """Residual add with per-input requantization, int32 result:
    `y = Σ_i floor((x_i · mul[i] + add[i]) / 2^shift[i])`.

    The sum is brought back to 8 bits by a following `qnn.requant`.
    """

    name = "qnn.add"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    mul = prop_def(DenseArrayBase.constr(i64))
    add = prop_def(DenseArrayBase.constr(i64))
    shift = prop_def(DenseArrayBase.constr(i64))

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"

    def __init__(
        self,
        lhs: SSAValue,
        rhs: SSAValue,
        result_type: Attribute,
        mul: Sequence[int] = (1, 1),
        add: Sequence[int] = (0, 0),
        shift: Sequence[int] = (0, 0),
    ):
        super().__init__(
            operands=[lhs, rhs],
            result_types=[result_type],
            properties={"mul": _array(mul), "add": _array(add), "shift": _array(shift)},
        )

    def verify_(self) -> None:
        lhs_shape = shape_of(self.lhs)
        if shape_of(self.rhs) != lhs_shape:
            raise VerifyException(
                f"operands must have the same shape, got {list(lhs_shape)} and {list(shape_of(self.rhs))}"
            )
        _check_activation("lhs", self.lhs, len(lhs_shape))
        _check_activation("rhs", self.rhs, len(lhs_shape))
        if shape_of(self.output) != lhs_shape:
            raise VerifyException(f"result must have shape {list(lhs_shape)}, got {list(shape_of(self.output))}")
        _check_si32("result", self.output)
        for name in ("mul", "add", "shift"):
            if len(_ints(getattr(self, name))) != 2:
                raise VerifyException(f"{name} must have one entry per operand (2)")
        if any(not 0 <= s <= 31 for s in _ints(self.shift)):
            raise VerifyException(f"shift entries must be in [0, 31], got {list(_ints(self.shift))}")


class _PoolOp(_WindowOp):
    """Shared definition of the pooling ops: one input, a kernel, strides and pads."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    kernel = prop_def(DenseArrayBase.constr(i64))

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(
        self,
        input: SSAValue,
        result_type: Attribute,
        kernel: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[int] = (0, 0, 0, 0),
    ):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            properties={"kernel": _array(kernel), "strides": _array(strides), "pads": _array(pads)},
        )

    def kernel_hw(self) -> tuple[int, int]:
        kh, kw = _ints(self.kernel)
        return kh, kw

    def _verify_pool(self) -> None:
        _check_activation("input", self.input, 4)
        _check_array("kernel", _ints(self.kernel), 2, 1)
        self._verify_window(self.kernel_hw(), (1, 1))
        if shape_of(self.output)[:2] != shape_of(self.input)[:2]:
            raise VerifyException("result must keep the batch and channel dimensions of the input")


@irdl_op_definition
class MaxPoolOp(_PoolOp):
    """Max pooling; padded positions never win (they are not part of the window)."""

    name = "qnn.max_pool"

    def verify_(self) -> None:
        ty = element_type(self.input)
        if element_type(self.output) != ty:
            raise VerifyException(f"result element type {element_type(self.output)} differs from input {ty}")
        self._verify_pool()
        kh, kw = self.kernel_hw()
        t, l, b, r = self.pads_tlbr()
        if max(t, b) >= kh or max(l, r) >= kw:
            raise VerifyException(f"pads {[t, l, b, r]} must be smaller than the kernel {[kh, kw]}")


@irdl_op_definition
class SumPoolOp(_PoolOp):
    """Sum over each window (zero padding), int32 result.

    Average pooling is `qnn.sum_pool` followed by `qnn.requant` dividing by the
    window size (or whatever the exporter's integer rule is).
    """

    name = "qnn.sum_pool"

    def verify_(self) -> None:
        _check_si32("result", self.output)
        self._verify_pool()


def softmax_exponentials(diff: object, coeff_a: int, coeff_b: int, coeff_c: int, log2: int) -> object:
    """QuantLib's integer exponential of `diff` = x − max(row) ≤ 0 (int64 numpy or Python ints):
    z = min(⌊−diff / log2⌋, 31), p = diff + z·log2, (coeff_a·(p + coeff_b)² + coeff_c) >> z."""
    z = np.minimum(np.floor_divide(-np.asarray(diff, dtype=np.int64), log2), 31)
    p = diff + z * log2
    return (coeff_a * (p + coeff_b) * (p + coeff_b) + coeff_c) >> z


class _UnaryIntOp(IRDLOperation):
    """Shared definition of QuantLib's one-input integer ops whose parameters are integer properties."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue, result_type: Attribute, **properties: int):
        """`properties`: the op's integer properties by name (subclasses may spell them as parameters)."""
        super().__init__(operands=[input], result_types=[result_type],
                         properties={name: IntegerAttr(value, i64) for name, value in properties.items()})

    def check_result_shape(self) -> None:
        if shape_of(self.output) != shape_of(self.input):
            raise VerifyException(f"result shape {list(shape_of(self.output))} differs from input shape "
                                  f"{list(shape_of(self.input))}")


class _ElementwiseInt32Op(_UnaryIntOp):
    """QuantLib's elementwise ops of an 8-bit tensor (rank 2 or 4) with an int32 result of its shape;
    `verify_parameters` checks the op's own properties."""

    def verify_(self) -> None:
        ty = _check_activation("input", self.input, len(shape_of(self.input)))
        if ty.width.data != 8 or len(shape_of(self.input)) not in (2, 4):
            raise VerifyException(f"input must be an 8-bit tensor of rank 2 or 4, got {self.input.type}")
        self.check_result_shape()
        _check_si32("result", self.output)
        self.verify_parameters()

    def verify_parameters(self) -> None:
        raise NotImplementedError


@irdl_op_definition
class SoftmaxOp(_UnaryIntOp):
    """QuantLib's integer softmax (`iSoftmax`) over the features of each row: of a tensor of rows
    1×K×R×1 (`tensor_layout.py`), over the K channels of every pixel. Per row, with
    e_j = `softmax_exponentials`(x_j − max_k x_k), y_j = ⌊e_j·(n_levels − 1) / Σ_k e_k⌋ in
    [0, n_levels − 1] (unsigned: what Deeploy's goldens hold; its generic C subtracts n_levels/2).
    The kernel computes in 32 bits: every e_j must lie in [0, 2^32 / n_levels) and the row's sum
    below 2^32 (checked here for any 8-bit input)."""

    name = "qnn.softmax"
    coeff_a = prop_def(IntegerAttr[I64])
    coeff_b = prop_def(IntegerAttr[I64])
    coeff_c = prop_def(IntegerAttr[I64])
    log2 = prop_def(IntegerAttr[I64])
    n_levels = prop_def(IntegerAttr[I64])

    def __init__(self, input: SSAValue, result_type: Attribute, coeff_a: int, coeff_b: int, coeff_c: int,
                 log2: int, n_levels: int):
        super().__init__(input, result_type, coeff_a=coeff_a, coeff_b=coeff_b, coeff_c=coeff_c, log2=log2,
                         n_levels=n_levels)

    def coefficients(self) -> tuple[int, int, int, int]:
        return tuple(p.value.data for p in (self.coeff_a, self.coeff_b, self.coeff_c, self.log2))  # type: ignore[return-value]

    def verify_(self) -> None:
        ty = _check_activation("input", self.input, 4)
        if ty.width.data != 8:
            raise VerifyException(f"input must have 8-bit elements, got {ty}")
        self.check_result_shape()
        if element_type(self.output) != IntegerType(8, Signedness.UNSIGNED):
            raise VerifyException(f"result must be ui8, got {element_type(self.output)}")
        levels = self.n_levels.value.data
        if not 2 <= levels <= 256:
            raise VerifyException(f"n_levels must be in [2, 256], got {levels}")
        if self.log2.value.data < 1:
            raise VerifyException(f"log2 must be positive, got {self.log2.value.data}")
        e = softmax_exponentials(np.arange(-255, 1), *self.coefficients())
        features = shape_of(self.input)[1]
        if e.min() < 0 or int(e.max()) * (levels - 1) >= 2**32 or int(e.max()) * features >= 2**32:
            raise VerifyException(f"exponentials reach [{e.min()}, {e.max()}]: over {features} features the "
                                  f"32-bit sum or the products by {levels - 1} would overflow")


def ita_max_shifts(peak: np.ndarray, x: np.ndarray) -> np.ndarray:
    """ITA's exponents: the distance of x to the running maximum `peak` in steps of B / 2^B = 1/32
    (B = 8 bits), rounded half up, (peak − x + 16) >> 5, so that 2^−shift stands for e^(x − peak)."""
    return (peak - x + 16) >> 5


@irdl_op_definition
class ITAMaxOp(_UnaryIntOp):
    """ITA's integer softmax over the features of each row (QuantLib's `ITAPartialMax`, and `ITAMax`:
    one group of all K features), n_levels = 256: of a tensor of int8 rows 1×K×R×1, over the K channels
    of every pixel, in groups of `group_width` features as ITA streams them. Per row: a running maximum
    m (from −127, QuantLib's start), for each group g: if its maximum exceeds m, the partial sum P is
    shifted right by `ita_max_shifts`(its maximum, m) and m raised; P += Σ_g 256 >> `ita_max_shifts`(m, x).
    Then y = ⌊(n_levels − 1)·256 / P⌋ >> `ita_max_shifts`(m, x) in [0, 255] (unsigned, as QuantLib
    computes it; Deeploy's C subtracts n_levels/2). P ≤ 256·K fits 32 bits."""

    name = "qnn.ita_max"
    n_levels = prop_def(IntegerAttr[I64])
    group_width = prop_def(IntegerAttr[I64])

    def verify_(self) -> None:
        if element_type(self.input) != IntegerType(8, Signedness.SIGNED) or len(shape_of(self.input)) != 4:
            raise VerifyException(f"input must be an si8 tensor of rows (rank 4), got {self.input.type}")
        self.check_result_shape()
        if element_type(self.output) != IntegerType(8, Signedness.UNSIGNED):
            raise VerifyException(f"result must be ui8, got {element_type(self.output)}")
        if self.n_levels.value.data != 256:
            raise VerifyException(f"n_levels must be 256 (ITA's 8-bit steps of 1/32), got {self.n_levels.value.data}")
        features, width = shape_of(self.input)[1], self.group_width.value.data
        if width < 1 or features % width:
            raise VerifyException(f"group_width {width} does not divide the {features} features")

    def values(self, x: np.ndarray) -> np.ndarray:
        """The results of the rows of x (int64, features on axis 1)."""
        width = self.group_width.value.data
        peak = np.full_like(x[:, :1], -127)
        partial = np.zeros_like(peak)
        for start in range(0, x.shape[1], width):
            group = x[:, start:start + width]
            group_max = group.max(axis=1, keepdims=True)
            partial = partial >> np.where(group_max > peak, ita_max_shifts(group_max, peak), 0)
            peak = np.maximum(peak, group_max)
            partial = partial + (256 >> ita_max_shifts(peak, group)).sum(axis=1, keepdims=True)
        return ((self.n_levels.value.data - 1) * 256 // partial) >> ita_max_shifts(peak, x)


@irdl_op_definition
class HardswishOp(_ElementwiseInt32Op):
    """QuantLib's integer hardswish (`iHardswish`), elementwise, int32 result:
    y = x · (clip(x + three, 0, six) · one_over_six) (a `qnn.requant` may follow, as after a conv).
    |y| must fit 31 bits for any 8-bit x (checked here)."""

    name = "qnn.hardswish"
    one_over_six = prop_def(IntegerAttr[I64])
    three = prop_def(IntegerAttr[I64])
    six = prop_def(IntegerAttr[I64])

    def __init__(self, input: SSAValue, result_type: Attribute, one_over_six: int, three: int, six: int):
        super().__init__(input, result_type, one_over_six=one_over_six, three=three, six=six)

    def verify_parameters(self) -> None:
        three, six, one_over_six = self.three.value.data, self.six.value.data, self.one_over_six.value.data
        if six < 0:
            raise VerifyException(f"six must be non-negative, got {six}")
        widest = 255 * six * abs(one_over_six)
        if widest >= 2**31 or abs(three) + 255 >= 2**31:
            raise VerifyException(f"values may reach ±{widest}, beyond 32 bits")

    def values(self, x: np.ndarray) -> np.ndarray:
        """The exact results of x (int64)."""
        return x * (np.clip(x + self.three.value.data, 0, self.six.value.data) * self.one_over_six.value.data)


@irdl_op_definition
class GeluOp(_ElementwiseInt32Op):
    """QuantLib's integer GELU (`iGELU`, I-BERT's second-order polynomial), elementwise, int32 result:
    with q = min(|x|, −b), L = sgn(x)·(one − (q + b)²), y = x·⌊(one + L) / 2⌋ (a `qnn.requant` may
    follow, as after a conv). Every intermediate must fit 31 bits for any 8-bit x (checked here)."""

    name = "qnn.gelu"
    b = prop_def(IntegerAttr[I64])
    one = prop_def(IntegerAttr[I64])

    def verify_parameters(self) -> None:
        widest = max(int(np.abs(v).max()) for v in self.stages(np.arange(-128, 256, dtype=np.int64)))
        if widest >= 2**31:
            raise VerifyException(f"values may reach ±{widest}, beyond 32 bits")

    def stages(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """The kernel's intermediates for x (int64): (q + b)², L, one + L and the result."""
        b, one = self.b.value.data, self.one.value.data
        d = np.minimum(np.abs(x), -b) + b
        level = np.sign(x) * (one - d * d)
        return d * d, level, one + level, x * ((one + level) >> 1)

    def values(self, x: np.ndarray) -> np.ndarray:
        """The exact results of x (int64)."""
        return self.stages(x)[-1]


def rms_norm_reference(x: np.ndarray, weight: np.ndarray, shift: int) -> np.ndarray:
    """QuantLib's integer RMS norm of the rows of x (int64, features on axis 1, N×K×R×1), unclipped:
    s = ⌊Σ x² / K⌋ + 1, r = ⌊√s⌋, y = trunc(x·weight / r) >> shift (Deeploy's C: a division toward
    zero, then an arithmetic shift)."""
    k = x.shape[1]
    root = np.vectorize(math.isqrt, otypes=[np.int64])((x * x).sum(axis=1, keepdims=True) // k + 1)
    num = x * weight.reshape(1, -1, 1, 1)
    return (np.sign(num) * (np.abs(num) // root)) >> shift


@irdl_op_definition
class RMSNormOp(IRDLOperation):
    """QuantLib's integer RMS norm (`iRMSNorm`) over the features of each row: of a tensor of rows
    1×K×R×1, over the K channels of every pixel; `weight` [K] (si32) per feature. Per row,
    `rms_norm_reference`, clipped to the result type's range, which holds n_levels values (signed).
    The kernel computes in 32 bits: K·x² and every x·weight fit (the importer checks the weights)."""

    name = "qnn.rms_norm"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    output = result_def(TensorType)
    shift = prop_def(IntegerAttr[I64])

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input `,` $weight attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue, weight: SSAValue, result_type: Attribute, shift: int):
        super().__init__(operands=[input, weight], result_types=[result_type],
                         properties={"shift": IntegerAttr(shift, i64)})

    def verify_(self) -> None:
        _verify_row_norm(self, {"weight": self.weight})


def _verify_row_norm(op: RMSNormOp | LayerNormOp, constants: dict[str, SSAValue]) -> None:
    """What the row norms share: 8-bit rows in and out (shapes alike), si32 constants per feature, a
    shift in [0, 31], the 32-bit sum of K squares of (at most) 8-bit magnitudes."""
    ty = _check_activation("input", op.input, 4)
    if ty.width.data != 8:
        raise VerifyException(f"input must have 8-bit elements, got {ty}")
    out = _check_activation("result", op.output, 4)
    if shape_of(op.output) != shape_of(op.input) or out.width.data != 8:
        raise VerifyException(f"result must be an 8-bit tensor of the input's shape {list(shape_of(op.input))}")
    features = shape_of(op.input)[1]
    for what, value in constants.items():
        if shape_of(value) != (features,) or element_type(value) != ACC_TYPE:
            raise VerifyException(f"{what} must be si32 [{features}], got {value.type}")
    if not 0 <= op.shift.value.data <= 31:
        raise VerifyException(f"shift must be in [0, 31], got {op.shift.value.data}")
    if features * 255 * 255 >= 2**31:
        raise VerifyException(f"the sum of {features} squares may overflow 32 bits")


def layer_norm_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, shift: int) -> np.ndarray:
    """QuantLib's integer layer norm of the rows of x (int64, features on axis 1, N×K×R×1), unclipped, as
    Deeploy's C computes it: m = trunc(Σx / K), d = x − m, r = ⌊√(⌊Σd² / K⌋ + 1)⌋,
    y = (trunc(d·weight / r) + bias) >> shift (C's divisions toward zero, an arithmetic shift; QuantLib's
    float forward truncates the mean and the quotient alike)."""
    k = x.shape[1]
    total = x.sum(axis=1, keepdims=True)
    d = x - np.sign(total) * (np.abs(total) // k)
    root = np.vectorize(math.isqrt, otypes=[np.int64])((d * d).sum(axis=1, keepdims=True) // k + 1)
    num = d * weight.reshape(1, -1, 1, 1)
    return (np.sign(num) * (np.abs(num) // root) + bias.reshape(1, -1, 1, 1)) >> shift


@irdl_op_definition
class LayerNormOp(IRDLOperation):
    """QuantLib's integer layer norm (`iLayerNorm`) over the features of each row: of a tensor of rows
    1×K×R×1, over the K channels of every pixel; `weight` and `bias` [K] (si32) per feature. Per row,
    `layer_norm_reference`, clipped to the result type's range, which holds n_levels values (signed).
    The kernel sums the squares in 32 bits and forms d·weight and the biased quotient in 64 bits."""

    name = "qnn.layer_norm"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)
    shift = prop_def(IntegerAttr[I64])

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue, weight: SSAValue, bias: SSAValue, result_type: Attribute, shift: int):
        super().__init__(operands=[input, weight, bias], result_types=[result_type],
                         properties={"shift": IntegerAttr(shift, i64)})

    def verify_(self) -> None:
        _verify_row_norm(self, {"weight": self.weight, "bias": self.bias})


@irdl_op_definition
class PadOp(IRDLOperation):
    """Constant padding of the spatial dimensions: pads = [top, left, bottom, right]."""

    name = "qnn.pad"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    pads = prop_def(DenseArrayBase.constr(i64))
    value = prop_def(IntegerAttr[I64])

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue, result_type: Attribute, pads: Sequence[int], value: int = 0):
        super().__init__(
            operands=[input],
            result_types=[result_type],
            properties={"pads": _array(pads), "value": IntegerAttr(value, i64)},
        )

    def pads_tlbr(self) -> tuple[int, int, int, int]:
        t, l, b, r = _ints(self.pads)
        return t, l, b, r

    def verify_(self) -> None:
        ty = _check_activation("input", self.input, 4)
        if element_type(self.output) != ty:
            raise VerifyException(f"result element type {element_type(self.output)} differs from input {ty}")
        _check_array("pads", _ints(self.pads), 4, 0)
        t, l, b, r = self.pads_tlbr()
        n, c, h, w = shape_of(self.input)
        expected = (n, c, h + t + b, w + l + r)
        if shape_of(self.output) != expected:
            raise VerifyException(f"result shape must be {list(expected)}, got {list(shape_of(self.output))}")
        lo, hi = int_range(ty)
        if not lo <= self.value.value.data <= hi:
            raise VerifyException(f"pad value {self.value.value.data} does not fit {ty}")


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    """Row-major reshape of an NCHW tensor (ONNX Flatten/Reshape): same elements, new shape.

    With `rows`: ONNX's row-major reshape of a tensor of rows (`tensor_layout.py`) that changes its
    features, `[..., K]` to `[..., K']` (attention's rows into heads, `[S, H·D]` → `[S, H, D]`, and back),
    both 1×K×R×1. Either way the bytes (channels-last, i.e. row-major for rows) do not move: a view."""

    name = "qnn.reshape"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    rows = opt_prop_def(UnitAttr)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue, result_type: Attribute, rows: bool = False):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"rows": UnitAttr()} if rows else {})

    def verify_(self) -> None:
        if self.rows is not None:
            for what, value in (("input", self.input), ("result", self.output)):
                shape = shape_of(value)
                if len(shape) != 4 or shape[0] != 1 or shape[3] != 1:
                    raise VerifyException(f"{what} of a rows reshape must be rows of features 1xKxRx1, got {list(shape)}")
        in_ty, out_ty = tensor_type(self.input), tensor_type(self.output)
        shape_of(self.input), shape_of(self.output)
        if in_ty.element_type != out_ty.element_type:
            raise VerifyException(f"element type changes from {in_ty.element_type} to {out_ty.element_type}")
        element_type(self.input)
        if in_ty.element_count() != out_ty.element_count():
            raise VerifyException(
                f"element count changes from {in_ty.element_count()} to {out_ty.element_count()}"
            )


def row_major_bytes(rows: np.ndarray) -> np.ndarray:
    """The elements of a rows tensor 1×K×R×1 in memory order (row after row: ONNX's row-major order)."""
    return np.ascontiguousarray(rows[0, :, :, 0].T).reshape(-1)


def rows_of(values: np.ndarray, features: int) -> np.ndarray:
    """Row-major elements as the rows tensor 1×K×R×1 of `features` = K (the inverse of `row_major_bytes`)."""
    return np.ascontiguousarray(values.reshape(-1, features).T)[None, :, :, None]


@irdl_op_definition
class TransposeOp(IRDLOperation):
    """ONNX Transpose of a tensor of rows: the input's row-major elements seen as the ONNX tensor
    `shape` (rank 2 to 4, its last axis the input's K features), permuted by `perm`; the result is
    the permuted tensor as rows, its features the last axis after the permutation, `shape[perm[-1]]`.
    Only data moves (lowered as strided DMA, no kernel); the result's type is the input's."""

    name = "qnn.transpose"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    shape = prop_def(DenseArrayBase.constr(i64))
    perm = prop_def(DenseArrayBase.constr(i64))

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` functional-type(operands, results)"

    def __init__(self, input: SSAValue, result_type: Attribute, shape: Sequence[int], perm: Sequence[int]):
        super().__init__(operands=[input], result_types=[result_type],
                         properties={"shape": _array(shape), "perm": _array(perm)})

    def source_shape(self) -> tuple[int, ...]:
        return _ints(self.shape)

    def permutation(self) -> tuple[int, ...]:
        return _ints(self.perm)

    def result_shape(self) -> tuple[int, ...]:
        """The result's ONNX shape."""
        return tuple(self.source_shape()[p] for p in self.permutation())

    def values(self, rows: np.ndarray) -> np.ndarray:
        """The result of the rows tensor `rows` (any integer dtype)."""
        moved = np.transpose(row_major_bytes(rows).reshape(self.source_shape()), self.permutation())
        return rows_of(moved, self.result_shape()[-1])

    def verify_(self) -> None:
        shape, perm = self.source_shape(), self.permutation()
        if not 2 <= len(shape) <= 4 or sorted(perm) != list(range(len(shape))):
            raise VerifyException(f"perm {list(perm)} must permute the {len(shape)} axes of shape {list(shape)} "
                                  "(rank 2 to 4)")
        if any(d < 1 for d in shape):
            raise VerifyException(f"shape {list(shape)} must be positive")
        ty = _check_activation("input", self.input, 4)
        if element_type(self.output) != ty:
            raise VerifyException(f"result element type {element_type(self.output)} differs from input {ty}")
        _, k, rows, w = shape_of(self.input)
        if shape_of(self.input)[0] != 1 or w != 1 or shape[-1] != k or _product(shape) != k * rows:
            raise VerifyException(f"input must be the rows 1x{shape[-1]}x{_product(shape[:-1])}x1 of shape "
                                  f"{list(shape)}, got {list(shape_of(self.input))}")
        features = self.result_shape()[-1]
        expected = (1, features, _product(shape) // features, 1)
        if shape_of(self.output) != expected:
            raise VerifyException(f"result must be {list(expected)}, got {list(shape_of(self.output))}")


@irdl_op_definition
class LayerOp(IRDLOperation):
    """A deployable layer: the unit of tiling and code generation.

    Its operands are every tensor the layer reads (activations first, then constants);
    the body computes the layer from the block arguments and yields its output.
    `index` numbers the layers in network order, so layer N is the golden `out_layerN`.

    ```mlir
    %y = qnn.layer 0 (%x, %w, %k, %l) : (...) -> tensor<...> {
    ^bb0(%a: ..., %b: ..., %c: ..., %d: ...):
      ...
      qnn.yield %r : tensor<...>
    }
    ```
    """

    name = "qnn.layer"
    index = prop_def(IntegerAttr[I64])
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    body = region_def("single_block")
    traits = traits_def(IsolatedFromAbove())

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$index ` ` `(` $inputs `)` attr-dict `:` functional-type($inputs, $output) $body"

    def __init__(self, index: int, inputs: Sequence[SSAValue], result_type: Attribute, body: Region):
        super().__init__(
            operands=[inputs],
            result_types=[result_type],
            properties={"index": IntegerAttr(index, i64)},
            regions=[body],
        )

    def compute_ops(self) -> list[IRDLOperation]:
        """The body's ops, terminator excluded."""
        return [op for op in self.body.block.ops if not isinstance(op, YieldOp)]  # type: ignore[misc]

    def anchor(self) -> IRDLOperation:
        """The op that gives the layer its kind: conv, linear, pool or add."""
        for op in self.body.block.ops:
            if isinstance(op, LAYER_ANCHORS):
                return op
        raise VerifyException("layer has no conv, linear, pool or add op")

    def kind(self) -> str:
        """conv | depthwise | pointwise | linear | matmul | maxpool | avgpool | add | softmax | rmsnorm | hardswish
        | gelu | layernorm | itamax | transpose."""
        op = self.anchor()
        if isinstance(op, ConvOp):
            if op.is_depthwise():
                return "depthwise"
            return "pointwise" if op.kernel_hw() == (1, 1) and op.groups.value.data == 1 else "conv"
        return {LinearOp: "linear", MatMulOp: "matmul", MaxPoolOp: "maxpool", SumPoolOp: "avgpool", AddOp: "add",
                SoftmaxOp: "softmax", RMSNormOp: "rmsnorm", HardswishOp: "hardswish",
                GeluOp: "gelu", LayerNormOp: "layernorm", ITAMaxOp: "itamax", TransposeOp: "transpose"}[type(op)]

    def verify_(self) -> None:
        block = self.body.block
        if tuple(a.type for a in block.args) != tuple(v.type for v in self.inputs):
            raise VerifyException("block argument types must match the layer's operand types")
        terminator = block.last_op
        if not isinstance(terminator, YieldOp):
            raise VerifyException("layer body must end with qnn.yield")
        if terminator.value.type != self.output.type:
            raise VerifyException(
                f"yielded type {terminator.value.type} differs from the layer's result type {self.output.type}"
            )
        anchors = [op for op in block.ops if isinstance(op, LAYER_ANCHORS)]
        if len(anchors) != 1:
            raise VerifyException(
                f"layer must contain exactly one conv, linear, pool or add op, found {len(anchors)}"
            )


# The ops that give a layer its kind (`LayerOp.anchor`): one per layer.
LAYER_ANCHORS = (ConvOp, LinearOp, MatMulOp, MaxPoolOp, SumPoolOp, AddOp, SoftmaxOp, RMSNormOp, HardswishOp, GeluOp,
                 LayerNormOp, ITAMaxOp, TransposeOp)


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminator of `qnn.layer`: the layer's output."""

    name = "qnn.yield"
    value = operand_def(TensorType)
    traits = traits_def(IsTerminator(), HasParent(LayerOp))

    assembly_format = "$value attr-dict `:` type($value)"

    def __init__(self, value: SSAValue):
        super().__init__(operands=[value])


QNN = Dialect(
    "qnn",
    [
        ConstantOp,
        ConvOp,
        LinearOp,
        MatMulOp,
        RequantOp,
        AddOp,
        MaxPoolOp,
        SumPoolOp,
        SoftmaxOp,
        RMSNormOp,
        HardswishOp,
        GeluOp,
        LayerNormOp,
        ITAMaxOp,
        PadOp,
        ReshapeOp,
        TransposeOp,
        LayerOp,
        YieldOp,
    ],
    [],
)
