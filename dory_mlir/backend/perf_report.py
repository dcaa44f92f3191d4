"""Instruction counts of a generated network against its work: the per-layer table that
`dory-verify --target rv32-qemu` and `bench/rv32.py` print.

The work of a layer comes from its `qnn` IR: multiply-accumulates for conv and linear layers
(out_h·out_w·out_c·kh·kw·in_c/groups, in·out), element operations for the others, labelled
by kind (a pool: one per window element, kh·kw per output; an add: one per output element).
The counts come from the application (`dory_mlir/backend/rv32.py`, `runtime/include/dory_perf.h`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dory_mlir.backend.rv32 import LayerCount, PerfCounts
from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn

HEADER = ("instructions on rv32imc under QEMU (-icount shift=0), summed over the 8 emulated cores: "
          "the work, not the parallel latency")
NOT_COUNTED = "not counted: the runtime's emulation of the DMA engine, barriers and L3 (hardware on GAP8)"


@dataclass(frozen=True)
class Work:
    count: int
    unit: str  # "MAC", "pool op" or "add op"


def layer_work(layer: qnn.LayerOp) -> Work:
    op = layer.anchor()
    if isinstance(op, qnn.ConvOp):
        batch, out_c, out_h, out_w = qnn.shape_of(op.output)
        in_c = qnn.shape_of(op.input)[1]
        kh, kw = op.kernel_hw()
        return Work(batch * out_h * out_w * out_c * kh * kw * in_c // op.groups.value.data, "MAC")
    if isinstance(op, qnn.LinearOp):
        batch, in_features = qnn.shape_of(op.input)
        return Work(batch * in_features * qnn.shape_of(op.weight)[0], "MAC")
    if isinstance(op, qnn.MatMulOp):
        return Work(math.prod(qnn.shape_of(op.output)) * op.dims()[1], "MAC")
    if isinstance(op, qnn.MaxPoolOp | qnn.SumPoolOp):
        kh, kw = op.kernel_hw()
        return Work(math.prod(qnn.shape_of(op.output)) * kh * kw, "pool op")
    if isinstance(op, qnn.SoftmaxOp | qnn.RMSNormOp | qnn.HardswishOp | qnn.GeluOp
                      | qnn.LayerNormOp | qnn.ITAMaxOp):
        return Work(math.prod(qnn.shape_of(op.output)), "element")
    if isinstance(op, qnn.TransposeOp):
        return Work(math.prod(qnn.shape_of(op.output)), "element moved")
    return Work(math.prod(qnn.shape_of(op.results[0])), "add op")


@dataclass(frozen=True)
class Row:
    index: int
    kind: str
    work: Work
    count: LayerCount

    @property
    def per_unit(self) -> float:
        return self.count.total / self.work.count if self.work.count else math.nan

    @property
    def kernel_share(self) -> float:
        return 100.0 * self.count.kernels / self.count.total if self.count.total else 0.0


@dataclass(frozen=True)
class NetworkPerf:
    rows: list[Row]
    counts: PerfCounts

    @property
    def instructions(self) -> int:
        return sum(r.count.total for r in self.rows) + self.counts.tail

    @property
    def macs(self) -> int:
        return sum(r.work.count for r in self.rows if r.work.unit == "MAC")

    @property
    def kernels(self) -> int:
        return sum(r.count.kernels for r in self.rows)

    def per_mac(self) -> float:
        return self.instructions / self.macs if self.macs else math.nan

    def per_mac_of(self, kinds: set[str]) -> float:
        """Instructions per MAC of the layers of these kinds together."""
        rows = [r for r in self.rows if r.kind in kinds]
        macs = sum(r.work.count for r in rows)
        return sum(r.count.total for r in rows) / macs if macs else math.nan


def network_perf(layers: dict[int, qnn.LayerOp], counts: PerfCounts) -> NetworkPerf:
    missing = sorted(set(layers) - set(counts.layers))
    if missing:
        raise DoryError(f"the application printed no instruction counts for layer(s) {missing}")
    rows = [Row(i, layer.kind(), layer_work(layer), counts.layers[i]) for i, layer in sorted(layers.items())]
    return NetworkPerf(rows, counts)


def _ratio(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def format_table(perf: NetworkPerf) -> list[str]:
    """The per-layer table and the network total, one string per line."""
    header = ("layer", "op", "work", "instructions", "ins/work", "in kernels", "DMA+control", "kernel calls")
    rows = []
    for r in perf.rows:
        c = r.count
        rest = c.total - c.kernels
        rows.append((str(r.index), r.kind, f"{r.work.count:,} {r.work.unit}", f"{c.total:,}",
                     f"{_ratio(r.per_unit)}/{r.work.unit.split()[0]}", f"{r.kernel_share:.1f} %",
                     f"{100.0 * rest / c.total if c.total else 0.0:.1f} %", str(c.calls)))
    total = perf.instructions
    rows.append(("total", "", f"{perf.macs:,} MAC", f"{total:,}", f"{_ratio(perf.per_mac())}/MAC",
                 f"{100.0 * perf.kernels / total if total else 0.0:.1f} %",
                 f"{100.0 * (total - perf.kernels) / total if total else 0.0:.1f} %",
                 str(sum(r.count.calls for r in perf.rows))))
    table = [header] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [HEADER, NOT_COUNTED + "; DMA+control: L2<->L1 DMA set-up, tile loops, L3->L2 staging",
             "total: every instruction of the network over its MACs (pool and add layers included)"]
    lines += ["  ".join(cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
              for row in table]
    stacks = perf.counts.stacks
    if stacks:
        lines.append("cluster stacks used (bytes of size): " + ", ".join(
            f"core {core} {used}/{size}" for core, (used, size) in sorted(stacks.items())))
    return lines


def verify_report(workdir: Path, layers: dict[int, qnn.LayerOp]) -> list[str]:
    """The table of the last run of `dory-verify --target rv32-qemu` (its console log)."""
    from dory_mlir.backend.rv32 import LOG, parse_perf

    return format_table(network_perf(layers, parse_perf((workdir / LOG).read_text())))
