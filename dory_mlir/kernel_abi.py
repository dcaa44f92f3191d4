"""The kernel ABI, written once: every kernel of `dory_mlir/runtime/include/dory_kernels.h`.

Per kernel: its C function, the layer kinds it computes (`qnn.LayerOp.kind()`), its argument struct
(fields in declaration order, with their C types and what fills each one), the buffer roles it
requires or accepts, its index operands and its L1 scratch. The `pulp` dialect's verifiers, the
bufferization's kernel choice, the tiler's scratch sizes, the C printer's argument structs and the
tests' ctypes mirrors are all derived from this table; tests/test_kernel_abi.py checks it against
the C header. Plain Python (no IR imports), so the tiling model can use it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# ---------------------------------------------------------------------- what fills a struct field


@dataclass(frozen=True)
class Buffer:
    """The pointer of the L1 buffer with this role; NULL when an optional role is absent."""

    role: str


@dataclass(frozen=True)
class ElementType:
    """The `dory_dtype_t` of the elements of the buffer with this role."""

    role: str


@dataclass(frozen=True)
class Extent:
    """The size of the role's tile along `axis`, counted from the last dimension (-1); dimensions
    the buffer does not have are 1 (an add of two vectors is a 1 x 1 x K image)."""

    role: str
    axis: int


@dataclass(frozen=True)
class Param:
    """A static parameter of the kernel call (`params`), `default` when it is absent."""

    name: str
    default: int = 0


@dataclass(frozen=True)
class Index:
    """An index operand of the kernel call (a tile-dependent value), `default` when it has none."""

    role: str
    default: int = 0


@dataclass(frozen=True)
class Pair:
    """A parameter of two values (one per input of an add)."""

    name: str


@dataclass(frozen=True)
class Requant:
    """The address of the call's `dory_requant_t` when it requantizes (has a `scale`), else NULL."""


Fill = Buffer | ElementType | Extent | Param | Index | Pair | Requant


@dataclass(frozen=True)
class Field:
    name: str
    c_type: str  # as declared: "const void *", "uint16_t", "int32_t[2]", ...
    fill: Fill


@dataclass(frozen=True)
class Struct:
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Kernel:
    name: str  # the C function
    kinds: tuple[str, ...]  # the layer kinds it computes
    struct: Struct
    required: tuple[str, ...]  # buffer roles
    optional: tuple[str, ...]
    indices: tuple[str, ...]  # index operands, in order
    # Bytes of one core's part of the im2col scratch, from (kh, kw, in_c, in_rows) of the tile; None: no im2col.
    im2col_per_core: Callable[[object, object, object, object], object] | None = None
    # Output channels the kernel computes at once (its blocked inner loop); the leftovers go channel by channel.
    channel_block: int = 1


# L1 scratch buffers that tiling adds: a layer in L2/L3 has none.
SCRATCH = ("im2col", "acc")


def _fields(*fields: tuple[str, str, Fill]) -> tuple[Field, ...]:
    return tuple(Field(*f) for f in fields)


REQUANT = Struct("dory_requant_t", _fields(
    ("mul", "const void *", Buffer("mul")), ("add", "const void *", Buffer("add")),
    ("mul_per_channel", "uint8_t", Param("mul_per_channel")), ("add_per_channel", "uint8_t", Param("add_per_channel")),
    ("const_bits", "uint8_t", Param("const_bits", 32)), ("wide", "uint8_t", Param("wide")),
    ("trunc", "uint8_t", Param("trunc")), ("shift", "int8_t", Param("shift", -1)),
    ("scale", "int64_t", Param("scale")), ("divisor", "int64_t", Param("divisor")),
    ("min", "int32_t", Param("min")), ("max", "int32_t", Param("max")),
))

_PADS = (("pad_t", "uint8_t", Index("pad_t")), ("pad_l", "uint8_t", Index("pad_l")),
         ("pad_b", "uint8_t", Index("pad_b")), ("pad_r", "uint8_t", Index("pad_r")))
_SLICES = (("first_slice", "uint8_t", Index("first", 1)), ("last_slice", "uint8_t", Index("last", 1)))
_OUT = (("rq", "const dory_requant_t *", Requant()), ("out", "void *", Buffer("out")),
        ("out_type", "dory_dtype_t", ElementType("out")))

CONV = Struct("dory_conv_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("in_h", "uint16_t", Extent("in", -3)), ("in_w", "uint16_t", Extent("in", -2)), ("in_c", "uint16_t", Extent("in", -1)),
    ("weights", "const int8_t *", Buffer("weights")), ("bias", "const int32_t *", Buffer("bias")),
    ("out_h", "uint16_t", Extent("out", -3)), ("out_w", "uint16_t", Extent("out", -2)),
    ("out_c", "uint16_t", Extent("out", -1)),
    ("kh", "uint8_t", Param("kh", 1)), ("kw", "uint8_t", Param("kw", 1)), ("sh", "uint8_t", Param("sh", 1)),
    ("sw", "uint8_t", Param("sw", 1)), ("dh", "uint8_t", Param("dh", 1)), ("dw", "uint8_t", Param("dw", 1)),
    *_PADS, ("acc", "int32_t *", Buffer("acc")), *_SLICES, *_OUT,
    ("im2col", "int8_t *", Buffer("im2col")), ("pad_value", "int16_t", Param("pad_value")),
))

LINEAR = Struct("dory_linear_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("in_c", "uint16_t", Extent("in", -1)), ("out_c", "uint16_t", Extent("out", -1)),
    ("weights", "const int8_t *", Buffer("weights")), ("bias", "const int32_t *", Buffer("bias")),
    ("acc", "int32_t *", Buffer("acc")), *_SLICES, *_OUT,
))

POOL = Struct("dory_pool_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("in_h", "uint16_t", Extent("in", -3)), ("in_w", "uint16_t", Extent("in", -2)), ("c", "uint16_t", Extent("in", -1)),
    ("out_h", "uint16_t", Extent("out", -3)), ("out_w", "uint16_t", Extent("out", -2)),
    ("kh", "uint8_t", Param("kh", 1)), ("kw", "uint8_t", Param("kw", 1)), ("sh", "uint8_t", Param("sh", 1)),
    ("sw", "uint8_t", Param("sw", 1)), *_PADS, *_OUT,
))

ADD = Struct("dory_add_t", _fields(
    ("a", "const void *", Buffer("a")), ("b", "const void *", Buffer("b")),
    ("a_type", "dory_dtype_t", ElementType("a")), ("b_type", "dory_dtype_t", ElementType("b")),
    ("h", "uint16_t", Extent("out", -3)), ("w", "uint16_t", Extent("out", -2)), ("c", "uint16_t", Extent("out", -1)),
    ("mul", "int32_t[2]", Pair("in_mul")), ("add", "int32_t[2]", Pair("in_add")), ("shift", "uint8_t[2]", Pair("in_shift")),
    *_OUT,
))

# A matmul's tiles are [rows][1][K] (a), [K][1][N] (rhs) and [rows][1][N] (out).
MATMUL = Struct("dory_matmul_t", _fields(
    ("a", "const void *", Buffer("in")), ("b", "const void *", Buffer("rhs")),
    ("a_type", "dory_dtype_t", ElementType("in")), ("b_type", "dory_dtype_t", ElementType("rhs")),
    ("m", "uint16_t", Extent("out", -3)), ("k", "uint16_t", Extent("in", -1)), ("n", "uint16_t", Extent("out", -1)),
    ("acc", "int32_t *", Buffer("acc")), *_SLICES, *_OUT,
))

SOFTMAX = Struct("dory_softmax_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("h", "uint16_t", Extent("out", -3)), ("w", "uint16_t", Extent("out", -2)), ("c", "uint16_t", Extent("out", -1)),
    ("coeff_a", "int32_t", Param("coeff_a")), ("coeff_b", "int32_t", Param("coeff_b")),
    ("coeff_c", "int32_t", Param("coeff_c")), ("log2", "int32_t", Param("log2", 1)),
    ("n_levels", "int32_t", Param("n_levels", 256)), ("out", "uint8_t *", Buffer("out")),
))

RMSNORM = Struct("dory_rmsnorm_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("h", "uint16_t", Extent("out", -3)), ("w", "uint16_t", Extent("out", -2)), ("c", "uint16_t", Extent("out", -1)),
    ("weight", "const int32_t *", Buffer("bias")), ("shift", "uint8_t", Param("shift")),
    ("min", "int32_t", Param("min")), ("max", "int32_t", Param("max")),
    ("out", "void *", Buffer("out")), ("out_type", "dory_dtype_t", ElementType("out")),
))

HARDSWISH = Struct("dory_hardswish_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("h", "uint16_t", Extent("out", -3)), ("w", "uint16_t", Extent("out", -2)), ("c", "uint16_t", Extent("out", -1)),
    ("one_over_six", "int32_t", Param("one_over_six")), ("three", "int32_t", Param("three")),
    ("six", "int32_t", Param("six")), *_OUT,
))

GELU = Struct("dory_gelu_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("h", "uint16_t", Extent("out", -3)), ("w", "uint16_t", Extent("out", -2)), ("c", "uint16_t", Extent("out", -1)),
    ("b", "int32_t", Param("b")), ("one", "int32_t", Param("one")), *_OUT,
))

LAYERNORM = Struct("dory_layernorm_t", _fields(
    ("in", "const void *", Buffer("in")), ("in_type", "dory_dtype_t", ElementType("in")),
    ("h", "uint16_t", Extent("out", -3)), ("w", "uint16_t", Extent("out", -2)), ("c", "uint16_t", Extent("out", -1)),
    ("weight", "const int32_t *", Buffer("mul")), ("bias", "const int32_t *", Buffer("bias")),
    ("shift", "uint8_t", Param("shift")), ("min", "int32_t", Param("min")), ("max", "int32_t", Param("max")),
    ("out", "void *", Buffer("out")), ("out_type", "dory_dtype_t", ElementType("out")),
))

ITAMAX = Struct("dory_itamax_t", _fields(
    ("in", "const int8_t *", Buffer("in")),
    ("h", "uint16_t", Extent("out", -3)), ("w", "uint16_t", Extent("out", -2)), ("c", "uint16_t", Extent("out", -1)),
    ("n_levels", "int32_t", Param("n_levels", 256)), ("group_width", "uint16_t", Param("group_width", 1)),
    ("out", "uint8_t *", Buffer("out")),
))

PADS = ("pad_t", "pad_l", "pad_b", "pad_r")
SLICES = ("first", "last")
CONSTANTS = ("bias", "mul", "add")  # per output channel (or one value)

KERNELS: dict[str, Kernel] = {k.name: k for k in (
    # PULP-NN's im2col: the receptive fields of 2 output pixels per core.
    Kernel("dory_conv2d", ("conv",), CONV, ("in", "weights", "out", "im2col"), (*CONSTANTS, "acc"), (*PADS, *SLICES),
           im2col_per_core=lambda kh, kw, in_c, in_rows: 2 * kh * kw * in_c, channel_block=4),
    Kernel("dory_pointwise", ("pointwise",), CONV, ("in", "weights", "out"), (*CONSTANTS, "acc"), (*PADS, *SLICES),
           channel_block=4),
    # Reserved: the kernel reads its input in place (see dory_kernels.h).
    Kernel("dory_depthwise", ("depthwise",), CONV, ("in", "weights", "out", "im2col"), CONSTANTS, PADS,
           im2col_per_core=lambda kh, kw, in_c, in_rows: in_rows * kw),
    Kernel("dory_linear", ("linear",), LINEAR, ("in", "weights", "out"), (*CONSTANTS, "acc"), SLICES, channel_block=4),
    Kernel("dory_maxpool", ("maxpool",), POOL, ("in", "out"), ("mul", "add"), PADS),
    Kernel("dory_sumpool", ("avgpool",), POOL, ("in", "out", "mul", "add"), (), PADS),
    Kernel("dory_add", ("add",), ADD, ("a", "b", "out"), ("mul", "add"), ()),
    Kernel("dory_matmul", ("matmul",), MATMUL, ("in", "rhs", "out"), ("mul", "add", "acc"), SLICES),
    Kernel("dory_softmax", ("softmax",), SOFTMAX, ("in", "out"), (), ()),
    Kernel("dory_rmsnorm", ("rmsnorm",), RMSNORM, ("in", "bias", "out"), (), ()),
    Kernel("dory_hardswish", ("hardswish",), HARDSWISH, ("in", "out"), ("mul", "add"), ()),
    Kernel("dory_gelu", ("gelu",), GELU, ("in", "out"), ("mul", "add"), ()),
    Kernel("dory_layernorm", ("layernorm",), LAYERNORM, ("in", "bias", "mul", "out"), (), ()),
    Kernel("dory_itamax", ("itamax",), ITAMAX, ("in", "out"), (), ()),
)}

# Static parameters of a layer (`pulp.layer`'s `params`) that tiling turns into something else: the pads
# (per-tile index operands of the kernel call) and a matmul's batch structure (its tile table).
LAYER_PARAMS = (*PADS, "rows_per_batch", "lhs_slices", "rhs_slices")


def kernel_params(kernel: str) -> dict[str, Fill]:
    """The static parameters of a call of `kernel` (`pulp.kernel`'s `params`), by name: its struct's
    `Param` and `Pair` fields, and the requantization's when the struct has one."""
    fields = list(KERNELS[kernel].struct.fields)
    if any(isinstance(f.fill, Requant) for f in fields):
        fields += REQUANT.fields
    return {f.fill.name: f.fill for f in fields if isinstance(f.fill, Param | Pair)}


# The argument structs of the header, in its order.
STRUCTS: dict[str, Struct] = {s.name: s for s in (REQUANT, CONV, LINEAR, POOL, ADD, MATMUL, SOFTMAX, RMSNORM, HARDSWISH,
                                                   GELU, LAYERNORM, ITAMAX)}

# layer kind -> the kernel that computes it
KERNEL_OF: dict[str, str] = {kind: k.name for k in KERNELS.values() for kind in k.kinds}


def acc_bytes(outputs):
    """Bytes of the `acc` scratch of a tile of `outputs` output values: int32 partial sums."""
    return 4 * outputs


def im2col_bytes(kernel: str, cores, kh, kw, in_c, in_rows):
    """Bytes of the im2col scratch of a tile for all `cores` (before alignment), None when `kernel` has none.
    Plain arithmetic, so the sizes may be symbolic (the tiling model's Z3 terms)."""
    per_core = KERNELS[kernel].im2col_per_core
    return None if per_core is None else cores * per_core(kh, kw, in_c, in_rows)


# ---------------------------------------------------------------------- layers without a kernel


@dataclass(frozen=True)
class DataMove:
    """A layer kind that only moves data: its `pulp.layer` names this instead of a kernel (`tile-layers`
    lowers it to DMA copies alone), with the buffer roles and static parameters it takes."""

    name: str
    kinds: tuple[str, ...]
    required: tuple[str, ...]
    params: tuple[str, ...]


DATA_MOVES: dict[str, DataMove] = {m.name: m for m in (
    # `qnn.transpose`: its input's ONNX shape and the permutation (rows gathered by strided DMA).
    DataMove("dma_transpose", ("transpose",), ("in", "out"), ("shape", "perm")),
)}

# layer kind -> the data movement that carries it out
MOVE_OF: dict[str, str] = {kind: m.name for m in DATA_MOVES.values() for kind in m.kinds}
