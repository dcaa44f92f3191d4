"""The L3/L2 level: where weights and activations live, L3→L2 slices, and the L2 plan.

Plain data in (tensors with lifetimes, layers with shapes), a plan out; no IR here.

- Weights stay in L2 for the whole run when all of them fit beside the activations.
  Otherwise they live in L3 (HyperRAM) and each layer copies its own into an L2 buffer —
  whole, or, when they do not fit, in slices of `co2` output channels, double-buffered.
- An activation stays in L2 from the layer that writes it to the last layer that reads
  it (a residual branch lives until its add). When the layers' working sets do not fit,
  the largest activation live at the worst layer moves to L3 and is streamed by rows: its
  producer writes `ho2`-row slices, its consumers read the slices they need (with halo),
  both double-buffered. Weights and activations may stream at once (DORY refuses that).
- The L2 plan gives every buffer an offset (first fit, largest first, among buffers
  whose lifetimes overlap); `check_plan` verifies it independently of how it was made, and Z3
  certifies it (`certify.certify_plan`: no two buffers alive at once share an address, none ends past
  the budget).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from dory_mlir.tiling.certify import certify_plan
from dory_mlir.tiling.geometry import LayerShape, align
from dory_mlir.tiling.model import DoesNotFit, L1Target, TilingResult, input_extent
from dory_mlir.tiling.solve import solve_all

@dataclass(frozen=True)
class NetTensor:
    """An activation: its bytes, rows (H of HWC, 1 for vectors), and lifetime in layers."""

    name: str
    bytes: int
    rows: int
    first: int  # producing layer (-1: the network input)
    last: int  # last reading layer (number of layers: a network output)
    streamable: bool = True  # False: must stay in L2 (read through a reshaped view)


@dataclass(frozen=True)
class NetLayer:
    index: int
    name: str
    shape: LayerShape
    inputs: tuple[str, ...]
    output: str
    constants: tuple[tuple[int, int], ...] = ()
    """(bytes per output channel, fixed bytes) of each constant (weights, bias, requant)."""

    def constant_bytes(self, channels: int) -> int:
        """L2 bytes of the constants of `channels` output channels, each constant aligned."""
        return sum(align(per_channel * channels + fixed) for per_channel, fixed in self.constants)

    def whole_constant_bytes(self) -> int:
        """L2 bytes of the constants every channel slice needs whole (per tensor, or per row: [H, C], [H, 1])."""
        return sum(align(fixed) for per_channel, fixed in self.constants if not per_channel)

    @property
    def weight_bytes(self) -> int:
        return self.constant_bytes(self.shape.c_out)


@dataclass
class Buffer:
    name: str
    bytes: int
    first: int
    last: int
    offset: int = -1

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class LayerDecision:
    """A layer's L3/L2 decisions and its L1 tiling on the L2 slice."""

    weights_in: str  # "none", "L2" (resident), "L3" (copied whole per layer) or "L3-stream" (co2 slices)
    co2: int  # output channels per L2 slice
    ho2: int  # output rows per L2 slice
    streamed: tuple[str, ...]  # activations of this layer that live in L3
    l1_shape: LayerShape
    l1: TilingResult
    l2_working: dict[str, int] = field(default_factory=dict)
    solver_seconds: float = 0.0


@dataclass
class L2Plan:
    budget: int
    weights_resident: bool
    buffers: list[Buffer]
    layers: list[LayerDecision]
    l3_tensors: frozenset[str]
    z3_checks: int = 0
    """Z3 proofs of the placement (`certify.certify_plan`; 0: not certified)."""

    @property
    def peak(self) -> int:
        return max((b.offset + b.bytes for b in self.buffers), default=0)


class LayerDoesNotFit(Exception):
    """A layer's smallest footprint at `level` (L1 or L2), buffer by buffer, exceeds the budget."""

    def __init__(self, layer: NetLayer, level: str, buffers: dict[str, int], budget: int):
        self.layer = layer
        self.level = level
        self.buffers = buffers
        self.budget = budget
        super().__init__(f"layer {layer.index}: {level} needs {sum(buffers.values())} B > {budget} B")


L3_ALIGN = 8
"""The runtime's RAM allocator rounds every block up to 8 bytes and never hands out address 0."""


def l3_usage(layers: list[NetLayer], tensors: dict[str, NetTensor], plan: L2Plan) -> dict[str, int]:
    """Bytes the network keeps in L3 for the whole run: every constant (the weights and requant
    constants live in L3 and are copied from there, also when the plan keeps them in L2) and every
    activation the plan streams from L3, each block rounded as the RAM allocator does."""
    def block(n: int) -> int:
        return -(-max(n, 1) // L3_ALIGN) * L3_ALIGN

    constants = sum(block(per_channel * layer.shape.c_out + fixed) for layer in layers for per_channel, fixed in layer.constants)
    streamed = sum(block(tensors[name].bytes) for name in sorted(plan.l3_tensors))
    return {"weights and constants": constants, "activations streamed from L3": streamed, "reserved address 0": L3_ALIGN}


class L3DoesNotFit(Exception):
    """The data the network keeps in L3 (HyperRAM) exceeds the L3 size."""

    def __init__(self, usage: dict[str, int], budget: int):
        self.usage = usage
        self.budget = budget
        super().__init__(f"L3 needs {sum(usage.values())} B > {budget} B")


def check_l3(layers: list[NetLayer], tensors: dict[str, NetTensor], plan: L2Plan, budget: int) -> dict[str, int]:
    """The L3 usage of the plan; `L3DoesNotFit` when it exceeds `budget`."""
    usage = l3_usage(layers, tensors, plan)
    if sum(usage.values()) > budget:
        raise L3DoesNotFit(usage, budget)
    return usage


def place(buffers: list[Buffer]) -> None:
    """First-fit offsets, largest first, never overlapping a buffer alive at the same time."""
    placed: list[Buffer] = []
    for buffer in sorted(buffers, key=lambda b: (-b.bytes, b.first, b.name)):
        offset = 0
        for other in sorted((p for p in placed if p.overlaps_in_time(buffer)), key=lambda p: p.offset):
            if offset + buffer.bytes <= other.offset:
                break
            offset = max(offset, align(other.offset + other.bytes))
        buffer.offset = offset
        placed.append(buffer)


def check_plan(buffers: list[Buffer], budget: int) -> list[str]:
    """Problems of a plan: overlaps of buffers alive at once, buffers past the budget."""
    problems = []
    for i, a in enumerate(buffers):
        if a.offset < 0 or a.offset + a.bytes > budget:
            problems.append(f"{a.name} [{a.offset}, {a.offset + a.bytes}) exceeds the L2 budget {budget}")
        for b in buffers[i + 1 :]:
            if a.overlaps_in_time(b) and a.offset < b.offset + b.bytes and b.offset < a.offset + a.bytes:
                problems.append(f"{a.name} and {b.name} overlap in L2 while both are alive")
    return problems


def _slice_rows(shape: LayerShape, ho2: int) -> int:
    """Input rows an output slice of `ho2` rows reads (with halo)."""
    return input_extent(ho2, shape.sh, shape.kh, shape.dh, shape.h_in)


def _working_set(layer: NetLayer, tensors: dict[str, NetTensor], streamed: set[str], weights_resident: bool,
                 co2: int, ho2: int) -> dict[str, int]:
    """The L2 buffers a layer needs beyond the resident activations, for slices (co2, ho2)."""
    shape = layer.shape
    working: dict[str, int] = {}
    if not weights_resident and layer.weight_bytes:
        # Channel slices are double-buffered; the constants every slice needs whole are held once.
        whole = layer.whole_constant_bytes()
        working["weights"] = (layer.constant_bytes(co2) - whole) * (1 if co2 == shape.c_out else 2) + whole
    rows_split = ho2 < shape.h_out
    for name in layer.inputs:
        if name in streamed:
            t = tensors[name]
            per_row = t.bytes // t.rows
            rows = _slice_rows(shape, ho2) if shape.h_in == t.rows else t.rows
            working[f"{name} (in)"] = align(per_row * rows) * (2 if rows_split else 1)
    if layer.output in streamed:
        t = tensors[layer.output]
        per_row = t.bytes // t.rows
        working[f"{layer.output} (out)"] = align(per_row * ho2) * (2 if rows_split else 1)
    return working


def _l3_traffic(layer: NetLayer, tensors: dict[str, NetTensor], streamed: set[str], weights_resident: bool,
                co2: int, ho2: int) -> int:
    """Bytes moved between L3 and L2 by the layer with slices (co2, ho2)."""
    shape = layer.shape
    slices = -(-shape.h_out // ho2)
    traffic = 0
    if not weights_resident:
        traffic += layer.weight_bytes * (slices if co2 < shape.c_out else 1)
    for name in layer.inputs:
        if name in streamed:
            t = tensors[name]
            rows = sum(_slice_rows(shape, min(ho2, shape.h_out - s * ho2)) for s in range(slices)) if shape.h_in == t.rows else t.rows
            traffic += t.bytes // t.rows * rows
    if layer.output in streamed:
        traffic += tensors[layer.output].bytes
    return traffic


def _choose_slices(layer: NetLayer, tensors: dict[str, NetTensor], streamed: set[str], weights_resident: bool,
                   available: int) -> tuple[int, int] | None:
    """The (co2, ho2) with the least L3 traffic whose working set fits `available` bytes."""
    shape = layer.shape
    row_options = range(shape.h_out, 0, -1) if any(n in streamed for n in (*layer.inputs, layer.output)) else [shape.h_out]
    # Constants are sliced by output channels along with the weights; a layer without weights (a pool or an
    # add with per-channel requant constants) copies its few constants whole (the lowering slices weights only).
    sliced = not weights_resident and layer.weight_bytes and shape.has_weights
    channel_options = range(shape.c_out, 0, -1) if sliced else [shape.c_out]
    best: tuple[int, int, int] | None = None
    for ho2 in row_options:
        for co2 in channel_options:
            if sum(_working_set(layer, tensors, streamed, weights_resident, co2, ho2).values()) <= available:
                cost = _l3_traffic(layer, tensors, streamed, weights_resident, co2, ho2)
                if best is None or (cost, -co2 * ho2) < (best[0], -best[1] * best[2]):
                    best = (cost, co2, ho2)
                break  # smaller co2 only costs more for this ho2
    return None if best is None else (best[1], best[2])


def _resident_live(tensors: dict[str, NetTensor], streamed: set[str], index: int) -> int:
    return sum(align(t.bytes) for t in tensors.values() if t.name not in streamed and t.first <= index <= t.last)


def plan_network(layers: list[NetLayer], tensors: dict[str, NetTensor], budget: int, l1: L1Target) -> L2Plan:
    """Decides placements and slices for every layer, solves L1 on the slices, places L2."""
    total_weights = sum(layer.weight_bytes for layer in layers)
    streamed: set[str] = set()
    weights_resident = all(
        _resident_live(tensors, streamed, layer.index) + total_weights <= budget for layer in layers
    )
    while True:
        slices, overflow = {}, None
        for layer in layers:
            available = budget - _resident_live(tensors, streamed, layer.index) - (total_weights if weights_resident else 0)
            choice = _choose_slices(layer, tensors, streamed, weights_resident, available)
            if choice is None:
                overflow = layer
                break
            slices[layer.index] = choice
        if overflow is None:
            buffers = _buffers(layers, tensors, streamed, weights_resident, slices)
            place(buffers)
            if max(b.offset + b.bytes for b in buffers) <= budget:
                if problems := check_plan(buffers, budget):
                    raise AssertionError(f"the L2 placement is wrong: {problems[0]}")
                plan = _decide(layers, tensors, streamed, weights_resident, slices, buffers, budget, l1)
                plan.z3_checks = certify_plan(buffers, budget)
                return plan
            overflow = _worst_layer(layers, buffers, budget)
        candidates = [t for t in tensors.values()
                      if t.streamable and t.name not in streamed and t.first <= overflow.index <= t.last]
        if not candidates:
            smallest = _working_set(overflow, tensors, streamed | set(overflow.inputs) | {overflow.output},
                                    weights_resident, 1, 1)
            resident = budget - _resident_live(tensors, streamed, overflow.index)
            raise LayerDoesNotFit(overflow, "L2", {**smallest, "resident activations": budget - resident}, budget)
        streamed.add(max(candidates, key=lambda t: (t.bytes, t.name)).name)


def _worst_layer(layers: list[NetLayer], buffers: list[Buffer], budget: int) -> NetLayer:
    """The layer during which the placed buffers reach highest."""
    def top(index: int) -> int:
        return max((b.offset + b.bytes for b in buffers if b.first <= index <= b.last), default=0)
    return max(layers, key=lambda layer: top(layer.index))


def _buffers(layers, tensors, streamed, weights_resident, slices) -> list[Buffer]:
    last_index = len(layers)
    buffers = [Buffer(t.name, align(t.bytes), max(t.first, 0), t.last) for t in tensors.values() if t.name not in streamed]
    if weights_resident:
        buffers += [Buffer(f"weights of layer {l.index}", l.weight_bytes, 0, last_index)
                    for l in layers if l.weight_bytes]
    for layer in layers:
        co2, ho2 = slices[layer.index]
        for what, size in _working_set(layer, tensors, streamed, weights_resident, co2, ho2).items():
            buffers.append(Buffer(f"layer {layer.index} {what}", size, layer.index, layer.index))
    return buffers


def _decide(layers, tensors, streamed, weights_resident, slices, buffers, budget, l1: L1Target) -> L2Plan:
    subs = []
    for layer in layers:
        co2, ho2 = slices[layer.index]
        shape = layer.shape
        subs.append(dataclasses.replace(
            shape,
            c_out=co2,
            c_in=shape.c_in if shape.splits_reduction else co2,
            h_out=ho2,
            h_in=_slice_rows(shape, ho2) if ho2 < shape.h_out else shape.h_in,
        ))
    decisions = []
    for layer, sub, (result, seconds) in zip(layers, subs, solve_all(subs, l1), strict=True):
        if isinstance(result, DoesNotFit):
            raise LayerDoesNotFit(layer, "L1", result.buffers, result.budget)
        co2, ho2 = slices[layer.index]
        weights_in = "none" if not layer.weight_bytes else "L2" if weights_resident else "L3" if co2 == layer.shape.c_out else "L3-stream"
        io = tuple(n for n in (*layer.inputs, layer.output) if n in streamed)
        working = _working_set(layer, tensors, streamed, weights_resident, co2, ho2)
        decisions.append(LayerDecision(weights_in, co2, ho2, io, sub, result, working, seconds))
    return L2Plan(budget, weights_resident, buffers, decisions, frozenset(streamed))
