"""Layer geometry shared by the tiler, the traffic model, the lowering and the checker. No IR here.

What a layer is to the tiling (`LayerShape`), how its tiles are laid out along one dimension
(`spans`, `nested_spans`), which input rows a tile reads (`input_rows`), and the sizes every L1
buffer is rounded to (`ALIGN`). The footprint model (`model.py`) builds on these; the lowering
(`passes/tile_layers.py`) lays its tile tables out with them, so the two cannot disagree on a tile.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

ALIGN = 4
"""Every L1 and L2 buffer starts on a word: its bytes are rounded up to a multiple of 4."""


def align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


KINDS = ("conv", "pointwise", "depthwise", "linear", "matmul", "maxpool", "avgpool", "add", "softmax", "rmsnorm",
         "hardswish", "gelu", "layernorm", "itamax", "transpose")
# Row-wise layers (softmax, norms over the features of each row; a transpose's output rows, each gathered
# by one strided copy): a tile holds all the channels of its pixels.
ROW_KINDS = ("softmax", "rmsnorm", "layernorm", "itamax", "transpose")
# Layers that only move data (no kernel): a tile's rows are gathered L2 → L1 by strided DMA and written
# back L1 → L2 from the same L1 buffer (`tile-layers`).
DMA_KINDS = ("transpose",)


@dataclass(frozen=True)
class LayerShape:
    """What the tiler needs to know of a layer (linear layers: h = w = k = 1)."""

    kind: str
    c_in: int
    c_out: int
    h_in: int
    w_in: int
    h_out: int
    w_out: int
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    dh: int = 1
    dw: int = 1
    out_bytes: int = 1
    const_bytes: int = 0
    """Bytes of per-channel constants per output channel (bias + requant mul/add)."""
    fixed_const_bytes: int = 0
    """Bytes of per-tensor constants (one requant value for all channels, each aligned)."""
    row_const_bytes: int = 0
    """Bytes per output channel of one output row of the requant constants that vary over the rows ([H, C])."""
    row_fixed_const_bytes: int = 0
    """Bytes of one output row of the per-row requant constants ([H, 1]), each aligned."""
    rows_per_batch: int = 0
    """matmul: the rows M of one batch slice (h_out = batch slices · M; a tile's rows divide M, so no
    tile straddles two slices, each of which multiplies by its own right-hand matrix). transpose: the
    output rows along its second-to-last axis (`transpose_tile_rows`)."""
    row_runs: int = 1
    """transpose: the runs of `rows_per_batch` rows along the output's third-to-last axis (1 for rank 2)."""
    shared_lhs: bool = False
    """matmul: the left operand has one batch slice, read by every output slice (ONNX broadcasting)."""
    shared_rhs: bool = False
    """matmul: the right operand has one batch slice, read by every output slice."""
    batch_const_bytes: int = 0
    """matmul: bytes of the constants with one value per batch slice (each aligned), one value in L1."""
    in_bytes: int = 1
    """Bytes of an input element: 2 where the exported network's integers exceed 8 bits (an add's
    two inputs both count the wider one's; the im2col scratch stays in bytes: the kernels read
    16-bit inputs in place)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown layer kind '{self.kind}'")

    @property
    def splits_reduction(self) -> bool:
        """Only conv, linear and matmul layers may slice their input channels (matmul: the K of A·B)."""
        return self.kind in ("conv", "pointwise", "linear", "matmul")

    @property
    def constants_vary_over_rows(self) -> bool:
        """The kernels take per-channel or per-tensor constants: a tile is one output row."""
        return bool(self.row_const_bytes or self.row_fixed_const_bytes)

    @property
    def has_weights(self) -> bool:
        return self.kind in ("conv", "pointwise", "depthwise", "linear")

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer (0 for pools and adds)."""
        if self.kind == "matmul":
            return self.h_out * self.c_in * self.c_out
        if not self.has_weights:
            return 0
        per_output = self.kh * self.kw * (1 if self.kind == "depthwise" else self.c_in)
        return self.h_out * self.w_out * self.c_out * per_output

    def describe(self) -> str:
        if self.kind == "matmul":
            batches = self.h_out // self.rows_per_batch
            return f"matmul, {batches} x ({self.rows_per_batch}x{self.c_in} . {self.c_in}x{self.c_out})"
        if self.kind == "linear":
            return f"linear, {self.c_in}->{self.c_out}"
        if self.kind == "transpose":
            return f"transpose, {self.h_out} rows of {self.c_out}"
        if self.kind in ("conv", "pointwise", "depthwise"):
            stride = f"/s{self.sh}" if self.sh > 1 or self.sw > 1 else ""
            return f"{self.kind} {self.kh}x{self.kw}{stride}, {self.c_in}->{self.c_out}, {self.h_in}x{self.w_in}"
        if self.kind in ("maxpool", "avgpool"):
            return f"{self.kind} {self.kh}x{self.kw}, {self.c_in} channels, {self.h_in}x{self.w_in}"
        return f"{self.kind}, {self.c_out} channels, {self.h_out}x{self.w_out}"


# ---------------------------------------------------------------- the loops over a layer's tiles

TILE_DIMS = ("co", "ho", "wo", "ci")
"""The dimensions of a tile (output channels, rows, columns, input channels), as `Tile` orders them."""


class LoopOrder(str, enum.Enum):
    """How a layer (an L2 slice of it) walks its tiles; the tiler chooses it per layer by the cost model.

    Input-stationary: spatial tiles outermost, then output channels, so an input tile that holds all
    the input channels stays in L1 across the output-channel loop (the weights are fetched again per
    spatial tile). Weight-stationary: output channels outermost, so a weight tile that holds all the
    input channels stays in L1 across the spatial loop (the input is fetched again per channel tile).
    The reduction split (input-channel slices) is innermost in both: the int32 partial sums of one
    output tile stay in L1 only while its slices run. A buffer whose block is the same as the previous
    tile's is not copied again (`traffic.fetches` counts it, `tile-layers` skips the copy)."""

    INPUT_STATIONARY = "input-stationary"
    WEIGHT_STATIONARY = "weight-stationary"

    @property
    def stationary(self) -> str:
        """The buffer (of the tiling model's footprint) that stays in L1 across the inner loop."""
        return "input" if self is LoopOrder.INPUT_STATIONARY else "weights"

    @property
    def loops(self) -> tuple[str, ...]:
        """The tile loops, outermost first (names of `TILE_DIMS`)."""
        if self is LoopOrder.INPUT_STATIONARY:
            return ("ho", "wo", "co", "ci")
        return ("co", "ho", "wo", "ci")


def transpose_runs(result_shape: tuple[int, ...]) -> dict[str, int]:
    """A transpose's `rows_per_batch` and `row_runs` (LayerShape) from its result's ONNX shape."""
    return {"rows_per_batch": result_shape[-2], "row_runs": result_shape[-3] if len(result_shape) > 2 else 1}


def transpose_tile_rows(rows_per_batch: int, row_runs: int) -> list[int]:
    """The row counts a transpose tile may have: a divisor of the `rows_per_batch` output rows that lie at
    one stride in the input (along the output's second-to-last axis), or a whole number of such runs dividing
    the `row_runs` of the third-to-last axis — so that every tile is one strided copy of at most 3-D
    ([runs, rows, features]) and all tiles have the same size."""
    def divisors(n: int) -> list[int]:
        return [d for d in range(1, n + 1) if n % d == 0]

    return sorted(set(divisors(rows_per_batch)) | {j * rows_per_batch for j in divisors(row_runs)})


# ---------------------------------------------------------------- one tile's L1 buffers
# The sizes of the data buffers of a tile and how many slots each gets: the footprint model (over any
# backend: Python ints, numpy grids, Z3 terms) and the lowering (over its tile table's largest tile)
# both size L1 with these.


def weight_tile_bytes(kind: str, co, ci, kh: int, kw: int):
    """Bytes of the weights of `co` output channels × `ci` input channels (depthwise: one per channel)."""
    return co * kh * kw * (1 if kind == "depthwise" else ci)


def activation_tile_bytes(rows, cols, channels, element_bytes: int):
    """Bytes of an HWC activation tile (an input tile with its halo, or an output tile)."""
    return rows * cols * channels * element_bytes


def buffer_slots(unchanging, double_buffer: bool, choose=None):
    """Slots of an L1 buffer: one when its tile is the same for every tile (copied once) or without
    double buffering, else two (tile t+1's copy in flight while tile t computes). `choose` is the
    backend's If when `unchanging` is a term of it (numpy, Z3)."""
    if choose is None:
        return 1 if unchanging or not double_buffer else 2
    return choose(unchanging, 1, 2 if double_buffer else 1)


def spans(size: int, step: int) -> list[tuple[int, int]]:
    """[start, stop) of each tile along one dimension; the last one may be ragged."""
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def nested_spans(size: int, outer: int, inner: int) -> list[tuple[int, int]]:
    """Tiles of `inner` inside slices of `outer` (L1 tiles inside an L2 slice): no tile crosses a slice."""
    return [(a + x, a + y) for a, b in spans(size, outer) for x, y in spans(b - a, inner)]


def input_rows(start: int, stop: int, stride: int, kernel: int, dilation: int, pad_begin: int, size: int) -> int:
    """Input rows (clamped to the real input, padding excluded) read by output rows [start, stop)."""
    first = start * stride - pad_begin
    last = (stop - 1) * stride - pad_begin + dilation * (kernel - 1)
    return max(0, min(last, size - 1) - max(first, 0) + 1)
