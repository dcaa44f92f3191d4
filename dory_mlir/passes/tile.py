"""`tile`: places every layer's tensors in L3/L2/L1 and chooses its tiles (the cheapest by the cost model).

Its input is fused into layers (`fuse`; `dory-opt --tile` adds it, `-p tile` does not). The module gets the target it planned for
(`#tiling.target`: cores, L1/L2 budgets, L3 size, double buffering), each `qnn.layer` its
`#tiling.layer` (L3→L2 slice, L2→L1 tile, tile counts, L1 bytes proven, where weights live, loop order and its stationary buffer's slots), the
function its `#tiling.l2_plan` (peak, every L2 buffer with its lifetime and offset); see
`dialects/tiling.py`.
The per-layer report goes to the tool that asked for it (`collecting_tile_reports`; `dory-opt
--tile-report`, `dory-verify --report` write it): a pass writes no files. The independent checker re-verifies
every tile (border tiles included) and the L2 plan after the pass (`verify=false` skips it).
L1, L2 and L3 capacity are checked here: what does not fit is a one-line "needs N B > budget M B"
error (`l3-size` overrides the target's L3 size).

    dory-opt net.onnx -p 'tile{l1-size=35000 l2-size=380000 cores=8 double-buffer=true}'
    dory-opt net.onnx -p 'tile{target=gap9}' --tile-report tiles.json
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from dory_mlir.diagnostics import PassError
from dory_mlir.dialects import qnn
from dory_mlir.dialects.tiling import L2_PLAN, TARGET, TILING, L2BufferAttr, L2PlanAttr, LayerTilingAttr
from dory_mlir.network_values import input_names
from dory_mlir.ir_utils import loc_name, op_where
from dory_mlir.passes.fuse import ANCHORS
from dory_mlir.target import Target, load_target
from dory_mlir.tiling.check import check_tiling
from dory_mlir.tiling.layers import constant_parts, layer_shape, nbytes
from dory_mlir.tiling.memory_plan import L3DoesNotFit, LayerDoesNotFit, NetLayer, NetTensor, L2Plan, check_l3, plan_network
from dory_mlir.tiling.model import PY, L1Target

from dory_mlir.tiling.cost import TileSpans, estimate, with_l3_overlap
from dory_mlir.tiling.cost_figures import CostModel
from dory_mlir.tiling.geometry import input_rows, spans
from dory_mlir.tiling.traffic import Grid, input_read, l2_l1_bytes, sliced_l2_l1_bytes

L1_ALLOC_GRANULE = 8  # round_up(size, 8) of the host and rv32 runtimes' pi_cl_l1_malloc

def _pads(layer: qnn.LayerOp) -> tuple[int, int, int, int]:
    anchor = layer.anchor()
    return anchor.pads_tlbr() if isinstance(anchor, qnn.ConvOp | qnn.MaxPoolOp | qnn.SumPoolOp) else (0, 0, 0, 0)


def _grouped(n: int) -> str:
    return f"{n:,}"


def does_not_fit_message(error: LayerDoesNotFit, layer: qnn.LayerOp) -> str:
    what = "L1 tiling" if error.level == "L1" else "L2 working set"
    parts = ", ".join(f"{name} {_grouped(size)}" for name, size in error.buffers.items() if size)
    return (
        f"layer {error.layer.index} '{error.layer.name}' ({error.layer.shape.describe()}): smallest {what} needs "
        f"{_grouped(sum(error.buffers.values()))} B ({parts}) > budget {_grouped(error.budget)} B"
    )


class NetworkView:
    """The layers of one function as the planner sees them: tensors, lifetimes, shapes."""

    def __init__(self, function: func.FuncOp):
        block = function.body.block
        self.layers = [op for op in block.ops if isinstance(op, qnn.LayerOp)]
        # The network inputs: `input`, or `input_0`, `input_1`, ... (alive from the start, first = -1).
        self.input_names = input_names(len(block.args))
        self.tensor_of: dict[SSAValue, str] = dict(zip(block.args, self.input_names, strict=True))
        for layer in self.layers:
            self.tensor_of[layer.output] = f"layer{layer.index.value.data}"
        for op in block.ops:
            if isinstance(op, qnn.ReshapeOp):
                self.tensor_of[op.output] = self.tensor_of[op.input]  # a view of the same buffer
        count = len(self.layers)
        first = {name: -1 for name in self.input_names} | {f"layer{l.index.value.data}": l.index.value.data for l in self.layers}
        last = dict(first)
        for layer in self.layers:
            for value in self.activations(layer):
                last[self.tensor_of[value]] = max(last[self.tensor_of[value]], layer.index.value.data)
        returned = block.last_op
        assert isinstance(returned, func.ReturnOp)
        for value in returned.operands:
            last[self.tensor_of[value]] = count
        values = {name: value for value, name in self.tensor_of.items() if value.owner is not None and not isinstance(value.owner, qnn.ReshapeOp)}
        values |= dict(zip(self.input_names, block.args, strict=True))
        # A reshaped tensor is read through a view of its L2 buffer (bufferize-network): it stays in L2.
        viewed = {self.tensor_of[op.input] for op in block.ops if isinstance(op, qnn.ReshapeOp)}
        # A matmul reads its operands by batch slices and blocks of B's rows, not by the row slices
        # L3 streaming stages: its tensors stay in L2 (one that does not fit is a one-line error).
        for layer in self.layers:
            if layer.kind() in ("matmul", "transpose"):  # a transpose gathers its rows from all of its input
                viewed |= {self.tensor_of[v] for v in self.activations(layer)} | {self.tensor_of[layer.output]}
        self.tensors = {
            name: NetTensor(name, nbytes(value), qnn.shape_of(value)[2] if len(qnn.shape_of(value)) == 4 else 1,
                            first[name], last[name], streamable=name not in viewed)
            for name, value in values.items()
        }
        self.net_layers = [
            NetLayer(
                layer.index.value.data,
                loc_name(layer) or f"layer{layer.index.value.data}",
                layer_shape(layer),
                tuple(self.tensor_of[v] for v in self.activations(layer)),
                self.tensor_of[layer.output],
                tuple((per_channel, fixed) for _, per_channel, fixed in constant_parts(layer)),
            )
            for layer in self.layers
        ]

    @staticmethod
    def activations(layer: qnn.LayerOp) -> list[SSAValue]:
        return [v for v in layer.inputs if not isinstance(v.owner, qnn.ConstantOp)]


def annotate(view: NetworkView, plan: L2Plan, function: func.FuncOp, l1: L1Target) -> list[dict]:
    """Writes the decisions into the IR; returns the report rows."""
    rows = []
    for layer, net, decision in zip(view.layers, view.net_layers, plan.layers, strict=True):
        shape, tile = net.shape, decision.l1.tile
        grid = Grid.of(shape, tile, decision.co2, decision.ho2)
        l1_bytes = sum(decision.l1.buffers.values())
        l2_bytes = sum(decision.l2_working.values())
        order = decision.l1.order
        layer.attributes[TILING] = LayerTilingAttr((tile.co, tile.ho, tile.wo, tile.ci), grid.counts(), l1_bytes,
                                                   (decision.co2, decision.ho2), decision.weights_in, decision.streamed,
                                                   order, decision.l1.stationary_slots)
        if decision.streamed or decision.weights_in == "L3-stream":  # tiled L2 slice by L2 slice
            moved = sliced_l2_l1_bytes(shape, tile, decision.co2 or shape.c_out, decision.ho2 or shape.h_out,
                                       _pads(layer), order)
        else:
            moved = l2_l1_bytes(shape, grid, _pads(layer), order)
        l3, l3_copies = _l3_bytes(net, view, plan, decision, _pads(layer))
        tile_spans = TileSpans.of_spans(grid.co, grid.ho, grid.wo, grid.ci, *input_read(shape, grid, _pads(layer)))
        cycles = estimate(shape, tile, tile_spans, l1.cores, l1.double_buffer, l1.costs, PY, order=order,
                          single=decision.l1.single)
        l3_cycles = l1.costs.dma.l3_l2.cycles(l3, l3_copies)
        sliced = decision.streamed or decision.weights_in == "L3-stream"
        # the lowering's slice table: rows outer, channel slices inner (`tile_layers.tile_table`)
        slices = len(spans(shape.h_out, decision.ho2 or shape.h_out)) * len(spans(shape.c_out, decision.co2 or shape.c_out)) if sliced else 1
        total = round(with_l3_overlap(cycles.total_cycles, l3_cycles, slices))
        rows.append({
            "layer": net.index, "name": net.name, "kind": shape.kind,
            "input_hwc": [shape.h_in, shape.w_in, shape.c_in], "output_hwc": [shape.h_out, shape.w_out, shape.c_out],
            "kernel": [shape.kh, shape.kw], "stride": [shape.sh, shape.sw],
            "l3_l2_tile": {"co": decision.co2, "ho": decision.ho2},
            "l2_l1_tile": {"co": tile.co, "ho": tile.ho, "wo": tile.wo, "ci": tile.ci},
            "tiles": dict(zip(("co", "ho", "wo", "ci"), grid.counts(), strict=True)), "loop_order": order.value,
            "stationary_slots": decision.l1.stationary_slots,
            "weights_in": decision.weights_in, "streamed_from_l3": list(decision.streamed),
            "input_bytes": sum(view.tensors[n].bytes for n in net.inputs),
            "output_bytes": view.tensors[net.output].bytes, "constant_bytes": net.weight_bytes,
            "l1_bytes": l1_bytes, "l1_buffers": decision.l1.buffers, "l2_working_bytes": l2_bytes,
            "dma_l2_l1_bytes": sum(moved.values()), "dma_l2_l1": moved, "dma_l3_l2_bytes": l3,
            "macs": shape.macs, "est_cycles": total, "est_dma_l2_l1_cycles": round(cycles.dma_cycles),
            "est_compute_cycles": round(cycles.compute_cycles), "est_dma_l3_l2_cycles": round(l3_cycles),
            "est_macs_per_cycle": round(shape.macs / total, 3) if total else 0.0,
            "solver_seconds": round(decision.solver_seconds, 4),
            # Z3 proved every tile of the grid (border tiles too) within the model's domain and the L1 budget.
            "certified": "z3" if decision.l1.z3_checks else "none", "z3_checks": decision.l1.z3_checks,
        })
    function.attributes[L2_PLAN] = L2PlanAttr(plan.peak, "L2" if plan.weights_resident else "L3", [
        L2BufferAttr(b.name, b.offset, b.bytes, b.first, b.last) for b in sorted(plan.buffers, key=lambda b: (b.first, b.offset))
    ])
    return rows


def _l3_bytes(net: NetLayer, view: NetworkView, plan: L2Plan, decision,
              pads: tuple[int, int, int, int]) -> tuple[int, int]:
    """Bytes the layer moves between L3 and L2, and the copies that move them (one per tensor and slice): a
    streamed input, per slice of output rows, the input rows they read (halo included, padding excluded),
    once for all the channel slices of those rows."""
    shape = net.shape
    slices = -(-shape.h_out // decision.ho2)
    row_slices = [(a, min(a + decision.ho2, shape.h_out)) for a in range(0, shape.h_out, decision.ho2)]
    rows_read = sum(input_rows(a, b, shape.sh, shape.kh, shape.dh, pads[0], shape.h_in) for a, b in row_slices)
    moved = copies = 0
    if decision.weights_in in ("L3", "L3-stream"):
        many = slices if decision.weights_in == "L3-stream" else 1
        moved, copies = net.weight_bytes * many, many
    for name in net.inputs:
        if name in plan.l3_tensors:
            tensor = view.tensors[name]
            moved += tensor.bytes if slices == 1 else tensor.bytes // tensor.rows * rows_read
            copies += slices
    if net.output in plan.l3_tensors:
        moved += view.tensors[net.output].bytes
        copies += slices
    return moved, copies


def plan_report(plan: L2Plan, target: Target) -> dict:
    """The L2 plan of the report (`backend/html_report.py` draws it)."""
    return {"target": target.name, "l1_budget": target.l1_budget, "cores": target.cores,
            "double_buffer": int(target.double_buffer), "l2_budget": plan.budget, "l2_peak": plan.peak,
            "weights": "L2" if plan.weights_resident else "L3",
            "certified": "z3" if plan.z3_checks else "none", "z3_checks": plan.z3_checks,
            "buffers": [{"name": b.name, "offset": b.offset, "bytes": b.bytes, "first": b.first, "last": b.last}
                        for b in sorted(plan.buffers, key=lambda b: (b.first, b.offset))]}


_TILE_REPORTS: ContextVar[list[dict] | None] = ContextVar("tile_reports", default=None)


@contextmanager
def collecting_tile_reports() -> Iterator[list[dict]]:
    """The reports (`{"target", "l1_budget", "l2_plan", "layers"}`) of the tile passes run inside, in
    order, for the tool to write (JSON, or the HTML page of `backend/html_report.py`)."""
    reports: list[dict] = []
    token = _TILE_REPORTS.set(reports)
    try:
        yield reports
    finally:
        _TILE_REPORTS.reset(token)


@dataclass(frozen=True)
class TilePass(ModulePass):
    """Tiles every layer for the target (see the module docstring for the options)."""

    name = "tile"

    target: str = "gap8"
    l1_size: int | None = None
    l2_size: int | None = None
    l3_size: int | None = None
    """L3 (HyperRAM) bytes for the weights and the activations streamed from L3 (default: the target's)."""
    cores: int | None = None
    double_buffer: bool = True
    verify: bool = True
    """Re-check every decision with the independent checker (`tiling/check.py`, independent of the model)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = load_target(self.target).with_options(self.l1_size, self.l2_size, self.cores, self.double_buffer)
        if self.l3_size is not None:
            if self.l3_size <= 0:
                raise PassError(f"tile option l3-size must be positive, got {self.l3_size}")
            target = dataclasses.replace(target, l3_total=self.l3_size)
        if unfused := next((o for o in op.walk() if isinstance(o, ANCHORS) and not isinstance(o.parent_op(), qnn.LayerOp)), None):
            raise PassError("the tile pass tiles layers, and this op is not in one: run fuse first "
                            "(-p 'fuse,tile', or --tile, which adds it)", op_where(unfused))
        rows, plans = [], []
        for function in [f for f in op.walk() if isinstance(f, func.FuncOp) and f.body.blocks]:
            view = NetworkView(function)
            # A layer's L1 buffers are one allocation, and the runtimes' allocators hand out multiples of
            # L1_ALLOC_GRANULE bytes: a footprint of exactly a budget that is no multiple of it (36,700 B
            # on GAP8) would not fit. The recorded budget (the arena) stays the target's.
            l1 = L1Target(target.l1_budget - target.l1_budget % L1_ALLOC_GRANULE, target.cores, target.double_buffer,
                          CostModel(target.dma))
            try:
                plan = plan_network(view.net_layers, view.tensors, target.l2_budget, l1)
            except LayerDoesNotFit as error:
                raise PassError(does_not_fit_message(error, view.layers[error.layer.index])) from None
            try:
                check_l3(view.net_layers, view.tensors, plan, target.l3_total)
            except L3DoesNotFit as error:
                parts = ", ".join(f"{name} {_grouped(size)}" for name, size in error.usage.items() if size)
                raise PassError(f"the network's data in L3 needs {_grouped(sum(error.usage.values()))} B ({parts}) "
                                f"> budget {_grouped(error.budget)} B") from None
            rows += annotate(view, plan, function, l1)
            plans.append(plan_report(plan, target))
        op.attributes[TARGET] = target.attribute()
        if self.verify and (problems := check_tiling(op)):
            raise AssertionError("the tiling checker rejects the tile pass's result:\n" + "\n".join(problems))
        if (reports := _TILE_REPORTS.get()) is not None:
            reports.append({"target": target.name, "l1_budget": target.l1_budget,
                            "l2_plan": plans[0] if len(plans) == 1 else {}, "layers": rows})
