"""L2↔L1 DMA bytes of our tiling against DORY's own tiling, per network and per layer, and estimated cycles.

    .venv/bin/python bench/dory_bytes.py [--models ../shared/models/dory] [--layers] [-p 'tile{...}']

For every shared network DORY tiled (`../shared/baselines/dory-tiling/`, see its README): our tile pass
(default GAP8 target unless -p says otherwise) and its report's `dma_l2_l1_bytes`, next to DORY's bytes
from `dory_dma_l2_l1.csv` (target PULP.GAP8: L1 budget 36,700 B, and PULP_gvsoc: 35,000 B, double-buffered)
and the lower bound (every input, weight, constant and output byte once: DORY's, and ours, which counts
16-bit activations as 2 bytes and our constants' layout; `same widths`: ours less that difference, over
DORY's: the ratio with DORY's widths, assuming the wider tensors are moved once). `--layers` adds one line per layer:
DORY's bytes recounted from its tiling CSV with the README's rule (input tile bytes with the halo clamped to
the real input, padding guessed symmetric, × times fetched: once per output-channel tile when the layer has
more than one spatial tile; weights and constants once; output once) next to ours, and ours with DORY's
widths (`width_excess`), with the count of layers moving no more than DORY's. Then our estimated cycles
per network (the tiler's cost model: `dory_mlir/tiling/cost.py`) and MAC/cycle. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dory_mlir.passes.fuse import FusePass  # noqa: E402
from dory_mlir.passes.tile import TilePass, collecting_tile_reports  # noqa: E402
from dory_mlir.pipeline import load_network, make_context  # noqa: E402
from dory_mlir.tiling.geometry import input_rows, spans  # noqa: E402

BASELINE = REPO.parent / "shared" / "baselines" / "dory-tiling"


def dory_name(folder: str) -> str:
    return folder.removeprefix("nemo_8-bits-2D_")


def dory_totals() -> dict[tuple[str, str], tuple[int, int]]:
    lines = [line for line in (BASELINE / "dory_dma_l2_l1.csv").read_text().splitlines() if not line.startswith("#")]
    return {(r["net"], r["config"]): (int(r["dory_bytes"]), int(r["lower_bound"])) for r in csv.DictReader(lines)}


def _read(out: int, tile: int, kernel: int, stride: int, size: int) -> int:
    """Input rows (columns) all tiles of `tile` output rows read, clamped to the input, padding symmetric."""
    pad = (max(0, (out - 1) * stride + kernel - size) + 1) // 2
    return sum(input_rows(a, b, stride, kernel, 1, pad, size) for a, b in spans(out, tile))


ADD_TYPES = ("QAddition", "Add")
"""DORY's names of an addition of two tensors (NEMO's networks: QAddition; Quantlab's: Add)."""


def dory_layer_input_bytes(row: dict) -> int:
    """The input bytes DORY's tiling of one layer moves (its loop order: output-channel tiles outermost)."""
    kh, kw = (int(k) for k in row["kernel"].split("x"))
    sh, sw = (int(s) for s in row["stride"].split("x"))
    c_in, out_c = int(row["in_C"]), int(row["out_C"])
    rows = _read(int(row["out_H"]), int(row["tile_h_out"]), kh, sh, int(row["in_H"]))
    cols = _read(int(row["out_W"]), int(row["tile_w_out"]), kw, sw, int(row["in_W"]))
    n_spatial = -(-int(row["out_H"]) // int(row["tile_h_out"])) * -(-int(row["out_W"]) // int(row["tile_w_out"]))
    n_co = -(-out_c // int(row["tile_n_out"]))
    add = row["layer_type"] in ADD_TYPES
    inputs = 2 if add else 1
    depthwise = int(row["group"]) > 1 or add or row["layer_type"] in ("MaxPool", "AvgPool", "ReluAveragePool")
    refetch = n_co if n_spatial > 1 and not depthwise else 1
    return inputs * rows * cols * c_in * refetch


def width_excess(row: dict) -> int:
    """The bytes a layer's inputs take beyond one byte an element (16-bit activations: DORY counts 1 byte):
    our count less this is the count with DORY's widths (each input element moved once)."""
    inputs = 2 if row["kind"] == "add" else 1
    h, w, c = row["input_hwc"]
    return row["input_bytes"] - inputs * h * w * c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models" / "dory")
    parser.add_argument("--layers", action="store_true", help="one line per layer")
    parser.add_argument("--l1-size", type=int)
    args = parser.parse_args()
    totals = dory_totals()
    total_layers = total_no_more = total_same = 0
    print(f"{'network':28s} {'ours':>9s} {'DORY gap8':>9s} {'ours/DORY':>9s} {'DORY gvsoc':>10s} {'ours/gvsoc':>10s} "
          f"{'bound':>9s} {'ours/bound':>10s} {'our bound':>9s} {'same widths':>11s}   {'est. cycles':>12s} {'MAC/cycle':>9s}")
    for folder in sorted(p for p in args.models.glob("*") if p.is_dir()):
        net = dory_name(folder.name)
        if (net, "gap8") not in totals:
            continue
        module = load_network(next(folder.glob("*.onnx")))
        with collecting_tile_reports() as reports:
            FusePass().apply(make_context(), module)
            TilePass(l1_size=args.l1_size).apply(make_context(), module)
        layers = reports[-1]["layers"]
        ours = sum(r["dma_l2_l1_bytes"] for r in layers)
        (dory, bound), (gvsoc, _) = totals[(net, "gap8")], totals[(net, "gvsoc35000")]
        cycles, macs = sum(r["est_cycles"] for r in layers), sum(r["macs"] for r in layers)
        our_bound = sum(r["input_bytes"] + r["constant_bytes"] + r["output_bytes"] for r in layers)
        print(f"{net:28s} {ours:9,d} {dory:9,d} {ours / dory:9.3f} {gvsoc:10,d} {ours / gvsoc:10.3f} {bound:9,d} "
              f"{ours / bound:10.3f} {our_bound:9,d} {(ours - our_bound + bound) / dory:11.3f}   {cycles:12,d} "
              f"{macs / cycles:9.2f}")
        if args.layers:
            dory_rows = list(csv.DictReader((BASELINE / f"dory_tiling_{net}.csv").open()))
            same = len(dory_rows) == len(layers)
            no_more = no_more_same_widths = 0
            for i, r in enumerate(layers):
                line = f"  {r['layer']:3d} {r['kind']:10s} tile {r['l2_l1_tile']} ours {r['dma_l2_l1_bytes']:9,d}"
                if same:
                    d = dory_rows[i]
                    theirs = dory_layer_input_bytes(d) + r["constant_bytes"] + r["output_bytes"]
                    no_more += r["dma_l2_l1_bytes"] <= theirs
                    no_more_same_widths += r["dma_l2_l1_bytes"] - width_excess(r) <= theirs
                    line += (f"  DORY {theirs:9,d} ({r['dma_l2_l1_bytes'] / theirs:5.2f}, same widths "
                             f"{(r['dma_l2_l1_bytes'] - width_excess(r)) / theirs:5.2f})  DORY tile co {d['tile_n_out']}"
                             f" ho {d['tile_h_out']} wo {d['tile_w_out']}")
                slots = ", 1 slot" if r["stationary_slots"] == 1 else ""
                print(line + f"  est. {r['est_cycles']:,} cycles  ({r['loop_order']}{slots})")
            if same:
                print(f"  layers moving no more than DORY's tiling: {no_more} of {len(layers)} "
                      f"({no_more_same_widths} with DORY's widths)")
                total_layers, total_no_more, total_same = (total_layers + len(layers), total_no_more + no_more,
                                                           total_same + no_more_same_widths)
    if total_layers:
        print(f"all networks: {total_no_more} of {total_layers} layers move no more than DORY's tiling "
              f"({total_no_more / total_layers:.0%}), {total_same} with DORY's widths ({total_same / total_layers:.0%})")


if __name__ == "__main__":
    main()
