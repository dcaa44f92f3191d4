"""`--report FILE.html`: one self-contained page (inline SVG and CSS, no script, nothing fetched)
showing what the compiler decided for a network.

The page is drawn from the tile pass's report (`tile{report=FILE.json}`: one row per layer plus
the L2 plan) — the same data, never recomputed here:

- the L2 plan over the network's life: every buffer a rectangle (layers on x, addresses on y);
- L1 use per layer, stacked by buffer, against the budget;
- DMA bytes per layer (L2↔L1 and L3↔L2) against the lower bound (every byte moved once);
- estimated cycles per layer (L2↔L1 DMA, compute, L3↔L2 DMA, total: the tiler's cost model,
  `dory_mlir/tiling/cost.py`; estimates from fitted kernel counts and datasheet DMA figures, not
  measurements);
- one table row per layer; a click on it opens the layer's tile grid;
- from `dory-verify`: the per-layer bit-exact comparison and, under QEMU, instruction counts.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

# Colours of the L1 buffer kinds (the tiling model's names) and of the L2 buffer kinds.
L1_COLOURS = {"input": "#4e79a7", "output": "#f28e2b", "weights": "#59a14f", "constants": "#b07aa1",
              "partial sums": "#e15759", "im2col": "#9c755f"}
L2_COLOURS = {"activation": "#4e79a7", "weights": "#59a14f", "working": "#f28e2b", "input": "#76b7b2"}
CHART_WIDTH = 900
CHART_HEIGHT = 260
MARGIN = (60, 20, 30, 40)  # left, right, top, bottom


@dataclass
class VerifyColumns:
    """What `dory-verify` adds per layer: values compared, mismatches, golden-file note, instructions."""

    header: Sequence[str]
    rows: dict[int, Sequence[str]] = field(default_factory=dict)
    verdict: str = ""


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def _bytes(n: int) -> str:
    return f"{n:,} B"


def _axes(width: int, height: int, y_max: int, y_label: str, x_labels: Sequence[str]) -> list[str]:
    left, right, top, bottom = MARGIN
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
             f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
             f'<text class="label" x="4" y="{top - 8}">{_escape(y_label)}</text>']
    for k in range(5):
        value = y_max * k // 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<text class="tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_compact(value)}</text>')
    step = max(1, len(x_labels) // 20)
    for i, label in enumerate(x_labels):
        if i % step == 0:
            x = left + plot_w * (i + 0.5) / max(1, len(x_labels))
            parts.append(f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{_escape(label)}</text>')
    return parts


def _compact(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1000)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _svg(width: int, height: int, parts: list[str], title: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{_escape(title)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">' + "".join(parts) + "</svg>")


def l2_plan_chart(plan: dict, layer_count: int) -> str:
    """Buffers as rectangles: x from the first to the last layer that needs them, y their addresses."""
    left, right, top, bottom = MARGIN
    plot_w, plot_h = CHART_WIDTH - left - right, CHART_HEIGHT - top - bottom
    budget = max(plan.get("l2_budget", 0), plan.get("l2_peak", 0), 1)
    columns = layer_count + 1  # the last column: the network's outputs, read after the last layer
    parts = _axes(CHART_WIDTH, CHART_HEIGHT, budget, "L2 address", [str(i) for i in range(layer_count)] + ["out"])
    for buffer in plan.get("buffers", []):
        first, last = max(buffer["first"], 0), min(buffer["last"], layer_count)
        x0 = left + plot_w * first / columns
        x1 = left + plot_w * (last + 1) / columns
        y1 = top + plot_h - plot_h * buffer["offset"] / budget
        y0 = top + plot_h - plot_h * (buffer["offset"] + buffer["bytes"]) / budget
        kind = _l2_kind(buffer["name"])
        parts.append(
            f'<rect class="buffer" x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
            f'height="{max(y1 - y0, 0.5):.1f}" fill="{L2_COLOURS[kind]}"><title>{_escape(buffer["name"])}: '
            f'{_bytes(buffer["bytes"])} at {buffer["offset"]:,}, layers {first}–{last}</title></rect>')
    y_budget = top + plot_h - plot_h * plan.get("l2_budget", 0) / budget
    parts.append(f'<line class="budget" x1="{left}" y1="{y_budget:.1f}" x2="{left + plot_w}" y2="{y_budget:.1f}"/>')
    return _svg(CHART_WIDTH, CHART_HEIGHT, parts, "L2 plan over the network's life")


def _l2_kind(name: str) -> str:
    if name.startswith("weights"):
        return "weights"
    if name.startswith("layer ") and " " in name[6:]:
        return "working"
    return "input" if name.startswith("input") else "activation"


def stacked_bars(values: Sequence[dict[str, int]], colours: dict[str, str], limit: int | None, label: str,
                 title: str) -> str:
    """One stacked bar per layer; a dashed line at `limit` (the budget)."""
    left, right, top, bottom = MARGIN
    plot_w, plot_h = CHART_WIDTH - left - right, CHART_HEIGHT - top - bottom
    y_max = max([sum(v.values()) for v in values] + [limit or 0, 1])
    parts = _axes(CHART_WIDTH, CHART_HEIGHT, y_max, label, [str(i) for i in range(len(values))])
    slot = plot_w / max(1, len(values))
    for i, stack in enumerate(values):
        y = top + plot_h
        for name, size in stack.items():
            if size <= 0:
                continue
            h = plot_h * size / y_max
            y -= h
            parts.append(f'<rect class="bar" x="{left + slot * i + slot * 0.15:.1f}" y="{y:.1f}" '
                         f'width="{max(slot * 0.7, 1):.1f}" height="{max(h, 0.5):.1f}" fill="{colours.get(name, "#999")}">'
                         f'<title>layer {i} {_escape(name)}: {_bytes(size)}</title></rect>')
    if limit:
        y_limit = top + plot_h - plot_h * limit / y_max
        parts.append(f'<line class="budget" x1="{left}" y1="{y_limit:.1f}" x2="{left + plot_w}" y2="{y_limit:.1f}"/>')
    return _svg(CHART_WIDTH, CHART_HEIGHT, parts, title)


def grouped_bars(bars: Sequence[Sequence[int]], colours: Sequence[str], names: Sequence[str], label: str,
                 title: str, unit=_bytes) -> str:
    """Per layer, one bar per value side by side."""
    left, right, top, bottom = MARGIN
    plot_w, plot_h = CHART_WIDTH - left - right, CHART_HEIGHT - top - bottom
    y_max = max([max(b) for b in bars] + [1])
    parts = _axes(CHART_WIDTH, CHART_HEIGHT, y_max, label, [str(i) for i in range(len(bars))])
    slot = plot_w / max(1, len(bars))
    width = 0.8 / len(names)
    for i, values in enumerate(bars):
        for k, (value, colour, what) in enumerate(zip(values, colours, names, strict=True)):
            h = plot_h * value / y_max
            parts.append(f'<rect class="bar" x="{left + slot * i + slot * (0.1 + width * k):.1f}" '
                         f'y="{top + plot_h - h:.1f}" width="{max(slot * (width - 0.02), 1):.1f}" '
                         f'height="{max(h, 0.5 if value else 0):.1f}" '
                         f'fill="{colour}"><title>layer {i} {what}: {unit(value)}</title></rect>')
    return _svg(CHART_WIDTH, CHART_HEIGHT, parts, title)


TRAFFIC_COLOURS = {"L2↔L1 moved": "#4e79a7", "lower bound": "#bab0ac", "L3↔L2 moved": "#e15759"}
CYCLE_COLOURS = {"L2↔L1 DMA": "#4e79a7", "compute": "#59a14f", "L3↔L2 DMA": "#e15759", "total": "#444444"}


def traffic_chart(layers: Sequence[dict]) -> str:
    """Per layer: L2↔L1 bytes moved next to their lower bound, and L3↔L2 bytes."""
    bars = [(row["dma_l2_l1_bytes"], lower_bound(row), row["dma_l3_l2_bytes"]) for row in layers]
    return grouped_bars(bars, list(TRAFFIC_COLOURS.values()), list(TRAFFIC_COLOURS), "bytes moved",
                        "DMA traffic per layer")


def cycles_chart(layers: Sequence[dict]) -> str:
    """Per layer: the estimated cycles of the L2↔L1 DMA, the kernels, the L3↔L2 DMA, and the total."""
    bars = [(row["est_dma_l2_l1_cycles"], row["est_compute_cycles"], row["est_dma_l3_l2_cycles"], row["est_cycles"])
            for row in layers]
    return grouped_bars(bars, list(CYCLE_COLOURS.values()), list(CYCLE_COLOURS), "estimated cycles",
                        "Estimated cycles per layer", unit=lambda n: f"{n:,} cycles")


def lower_bound(row: dict) -> int:
    """Every input, constant and output byte of the layer moved once between L2 and L1."""
    return row["input_bytes"] + row["constant_bytes"] + row["output_bytes"]


def tile_grid(row: dict) -> str:
    """The layer's output (H×W) cut into L1 tiles; the channel and reduction splits as text."""
    h, w, _ = row["output_hwc"]
    tile = row["l2_l1_tile"]
    size = 220
    scale = size / max(h, w, 1)
    width, height = max(w * scale, 4), max(h * scale, 4)
    parts = [f'<rect x="0" y="0" width="{width:.1f}" height="{height:.1f}" class="tensor"/>']
    for r in range(0, h, tile["ho"]):
        for c in range(0, w, tile["wo"]):
            parts.append(f'<rect class="tile" x="{c * scale:.1f}" y="{r * scale:.1f}" '
                         f'width="{min(tile["wo"], w - c) * scale:.1f}" height="{min(tile["ho"], h - r) * scale:.1f}">'
                         f'<title>rows {r}–{min(r + tile["ho"], h) - 1}, columns {c}–{min(c + tile["wo"], w) - 1}</title></rect>')
    counts = row["tiles"]
    text = (f'{counts["ho"]}×{counts["wo"]} spatial tiles of {tile["ho"]}×{tile["wo"]} pixels, '
            f'{counts["co"]} channel tile(s) of {tile["co"]}, {counts["ci"]} reduction slice(s) of {tile["ci"]}; '
            f'L3→L2 slices: {row["l3_l2_tile"]["co"]} channels × {row["l3_l2_tile"]["ho"]} rows')
    return (f'<svg class="grid" width="{width + 2:.0f}" height="{height + 2:.0f}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(parts) + f"</svg><p>{_escape(text)}</p>")


def _legend(colours: dict[str, str]) -> str:
    return '<p class="legend">' + " ".join(
        f'<span><i style="background:{c}"></i>{_escape(name)}</span>' for name, c in colours.items()) + "</p>"


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.summary td{padding:2px 12px 2px 0}
svg.chart{background:#fafafa;border:1px solid #ddd}
.axis{stroke:#444}.budget{stroke:#d00;stroke-dasharray:6 4;stroke-width:1.5}
.tick,.label{font-size:11px;fill:#444}.buffer{stroke:#fff;stroke-width:.5}
.legend span{margin-right:14px}.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
table.layers{border-collapse:collapse;margin-top:8px}
table.layers th,table.layers td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
table.layers th{background:#f0f0f0}table.layers td.name,table.layers td.kind{text-align:left}
details summary{cursor:pointer;color:#1a5fb4}
.tensor{fill:#eef;stroke:#446}.tile{fill:#4e79a7;fill-opacity:.25;stroke:#1a3a6a;stroke-width:.7}
.fail{color:#c00;font-weight:bold}.pass{color:#080;font-weight:bold}
"""


def render(report: dict, source: str, verify: VerifyColumns | None = None) -> str:
    """The page for a tile report (`{"target", "l1_budget", "l2_plan", "layers"}`)."""
    layers = report["layers"]
    plan = report.get("l2_plan", {})
    l1_budget = report.get("l1_budget")
    moved = sum(r["dma_l2_l1_bytes"] for r in layers)
    bound = sum(lower_bound(r) for r in layers)
    cycles = sum(r["est_cycles"] for r in layers)
    summary = [
        ("network", source), ("target", report.get("target", "?")), ("layers", len(layers)),
        ("L1 budget", _bytes(l1_budget) if l1_budget else "?"),
        ("L2 peak / budget", f'{_bytes(plan.get("l2_peak", 0))} / {_bytes(plan.get("l2_budget", 0))}'),
        ("weights live in", plan.get("weights", "?")),
        ("L2↔L1 DMA", f"{_bytes(moved)} ({moved / bound:.2f}× the lower bound)" if bound else _bytes(moved)),
        ("L3↔L2 DMA", _bytes(sum(r["dma_l3_l2_bytes"] for r in layers))),
        ("estimated cycles", f"{cycles:,} ({sum(r['macs'] for r in layers) / max(cycles, 1):.2f} MAC/cycle)"),
    ]
    if verify is not None and verify.verdict:
        summary.append(("dory-verify", verify.verdict))
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>dory-mlir report: {_escape(source)}</title><style>{STYLE}</style></head><body>",
           f"<h1>dory-mlir: {_escape(source)}</h1>", '<table class="summary">']
    out += [f"<tr><td>{_escape(k)}</td><td>{_escape(v)}</td></tr>" for k, v in summary]
    out.append("</table>")
    out += ["<h2>L2 over the network's life</h2>",
            "<p>Each rectangle is a buffer of the L2 plan, from the first to the last layer that needs it "
            "(activations, weights resident in L2, each layer's working set); the dashed line is the budget.</p>",
            _legend(L2_COLOURS), l2_plan_chart(plan, len(layers))]
    out += ["<h2>L1 per layer</h2>", "<p>The tile's buffers, stacked; the dashed line is the L1 budget.</p>",
            _legend(L1_COLOURS),
            stacked_bars([r["l1_buffers"] for r in layers], L1_COLOURS, l1_budget, "L1 bytes", "L1 use per layer")]
    out += ["<h2>DMA traffic per layer</h2>",
            "<p>Bytes the tiling moves between L2 and L1 next to the lower bound (every input, constant and "
            "output byte once), and between L3 and L2.</p>",
            _legend(TRAFFIC_COLOURS), traffic_chart(layers)]
    out += ["<h2>Estimated cycles per layer</h2>",
            "<p>The tiler's cost model (<code>dory_mlir/tiling/cost.py</code>): L2↔L1 DMA, kernels (fitted to "
            "rv32 instruction counts), L3↔L2 DMA and the total with double buffering (DMA and compute overlap). "
            "Estimates, not measurements.</p>",
            _legend(CYCLE_COLOURS), cycles_chart(layers)]
    out.append("<h2>Layers</h2><p>Click a layer's tiles to see its tile grid.</p>")
    header = ["layer", "node", "kind", "in (HWC)", "out (HWC)", "L1 tile (co,ho,wo,ci)", "tiles", "loop order",
              "L1 bytes", "weights in", "L2↔L1 bytes", "× bound", "est. cycles", "MAC/cycle"]
    if verify is not None:
        header += list(verify.header)
    out.append('<table class="layers"><thead><tr>' + "".join(f"<th>{_escape(h)}</th>" for h in header)
               + "</tr></thead><tbody>")
    for row in layers:
        t = row["l2_l1_tile"]
        count = row["tiles"]["co"] * row["tiles"]["ho"] * row["tiles"]["wo"] * row["tiles"]["ci"]
        cells = [
            str(row["layer"]), row["name"], row["kind"], "×".join(map(str, row["input_hwc"])),
            "×".join(map(str, row["output_hwc"])), f'{t["co"]},{t["ho"]},{t["wo"]},{t["ci"]}',
        ]
        tds = [f'<td>{_escape(cells[0])}</td><td class="name">{_escape(cells[1])}</td>'
               f'<td class="kind">{_escape(cells[2])}</td>']
        tds += [f"<td>{_escape(c)}</td>" for c in cells[3:]]
        tds.append(f"<td><details><summary>{count}</summary>{tile_grid(row)}</details></td>")
        tds.append(f"<td>{_escape(loop_order(row))}</td>")
        ratio = row["dma_l2_l1_bytes"] / lower_bound(row) if lower_bound(row) else 0
        tds += [f'<td>{row["l1_bytes"]:,}</td>', f'<td>{_escape(row["weights_in"])}</td>',
                f'<td>{row["dma_l2_l1_bytes"]:,}</td>', f"<td>{ratio:.2f}</td>", f'<td>{row["est_cycles"]:,}</td>',
                f'<td>{row["est_macs_per_cycle"]:.2f}</td>']
        if verify is not None:
            extra = verify.rows.get(row["layer"], ["-"] * len(verify.header))
            tds += [f'<td class="{_cell_class(c)}">{_escape(c)}</td>' for c in extra]
        out.append(f'<tr class="layer" data-layer="{row["layer"]}">' + "".join(tds) + "</tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out) + "\n"


def loop_order(row: dict) -> str:
    """The layer's loop order, and its stationary buffer's L1 slots when it is kept in one."""
    single = " (1 slot)" if row["stationary_slots"] == 1 else ""
    return row["loop_order"] + single


def _cell_class(cell: str) -> str:
    return "fail" if cell.startswith("FAIL") else "pass" if cell.startswith("PASS") else ""
