"""Depth-first fusion's estimated saving: per network, every conv/pointwise → depthwise pair the tiling model
may fuse (`dory_mlir/tiling/fusion.py`), fused against unfused.

    .venv/bin/python bench/fusion.py [--models ../shared/models] [--no-mobilenet] [--l1-size N]

Networks: MobileNetV1-1.0 at 128x128 and MobileNetV1-0.25 (MLPerf Tiny's visual wake words network, at
128x128), both generated with seeded weights by the QuantLib builder, and every shared network (MLPerf Tiny's
KeywordSpotting and AnomalyDetection, DORY's; one line for a network without such a pair). A pair is the producer and the next layer,
a layer that alone reads the producer's output (`fusion.fusable_pairs`: conv/pointwise → depthwise,
depthwise → pointwise). Per pair: the two layers tiled on their own (the
tile pass's L1 objective: estimated cycles, L2↔L1 bytes), the best fused tiling (channels x depthwise rows,
loop order) and its estimate, and the decision; `grouped`: the pairs fused together (`fusion.select_groups`:
a layer in one group at most). Per network: the saving of those groups,
in estimated cycles and L2↔L1 bytes, the pairs' share of the network's totals (the tile report's), and the
intermediate tensors kept out of L2 (and the most activation bytes alive at once, unfused and fused: a lower
bound of the L2 plan's peak). Estimates only (L3 transfers excluded on both sides): the lowering does
not run fused groups yet. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from xdsl.dialects import func

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dory_mlir.passes.fuse import FusePass  # noqa: E402
from dory_mlir.passes.tile import L1_ALLOC_GRANULE, NetworkView, TilePass, collecting_tile_reports  # noqa: E402
from dory_mlir.pipeline import load_network, make_context  # noqa: E402
from dory_mlir.target import load_target  # noqa: E402
from dory_mlir.tiling.cost_figures import CostModel  # noqa: E402
from dory_mlir.tiling.fusion import choose, fusable_pairs, select_groups  # noqa: E402
from dory_mlir.tiling.model import L1Target  # noqa: E402


def networks(models: Path, mobilenet: bool, scratch: Path) -> list[tuple[str, Path]]:
    found = []
    if mobilenet:
        from dory_mlir.examples.quantlib_builder import mobilenet_v1, mobilenet_v1_025

        for name, build in (("MobileNetV1-1.0-128", mobilenet_v1), ("MobileNetV1-0.25-128 (VWW)", mobilenet_v1_025)):
            found.append((name, build(0).write(scratch / name.split()[0]) / "network.onnx"))
    for folder in sorted(p for p in [*models.glob("mlperf-tiny/*"), *models.glob("dory/*")] if p.is_dir()):
        onnx = next(folder.glob("*.onnx"), None)
        if onnx is not None:
            found.append((f"{folder.parent.name}/{folder.name}", onnx))
    return found


def live_peak(tensors: dict, layers: int, left_out: set[str] = frozenset()) -> int:
    """The most activation bytes alive at once in L2 (a tensor from the layer that writes it to the last that
    reads it), without the tensors `left_out`: the L2 plan's peak is at least this."""
    return max(sum(t.bytes for t in tensors.values() if t.first <= i <= t.last and t.name not in left_out)
               for i in range(layers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models")
    parser.add_argument("--no-mobilenet", action="store_true", help="leave off the generated MobileNetV1 networks")
    parser.add_argument("--l1-size", type=int)
    args = parser.parse_args()
    target = load_target().with_options(args.l1_size, None, None, True)
    l1 = L1Target(target.l1_budget - target.l1_budget % L1_ALLOC_GRANULE, target.cores, target.double_buffer,
                  CostModel(target.dma))
    print(f"{'network / pair':58s} {'unfused cyc':>12s} {'fused cyc':>12s} {'unfused B':>10s} {'fused B':>10s}  "
          f"{'fused tile (co x ho, order)':32s} fuse")
    with tempfile.TemporaryDirectory() as scratch:
        for name, onnx in networks(args.models, not args.no_mobilenet, Path(scratch)):
            module = load_network(onnx)
            with collecting_tile_reports() as reports:
                FusePass().apply(make_context(), module)
                TilePass(l1_size=args.l1_size).apply(make_context(), module)
            rows = reports[-1]["layers"]
            function = next(f for f in module.walk() if isinstance(f, func.FuncOp) and f.body.blocks)
            view = NetworkView(function)
            layers, tensors = view.net_layers, view.tensors
            pairs = fusable_pairs(layers, tensors)
            if not pairs:
                print(f"{name}: no fusable pair")
                continue
            print(name)
            choices = [(p.index, d.index, choose(p.shape, d.shape, l1)) for p, d in pairs]
            chosen = select_groups(choices)
            for i, ((p, d), (_, _, found)) in enumerate(zip(pairs, choices, strict=True)):
                f = found.fused
                tile = f"{f.tile.co} x {f.tile.ho}, {f.tile.order.value}" if f else "none fits L1"
                print(f"  {p.index:3d} {p.shape.kind:9s} -> {d.index:3d} {d.shape.describe():36s} "
                      f"{found.unfused_cycles:12,d} {f.total_cycles if f else 0:12,d} {found.unfused_bytes:10,d} "
                      f"{f.l2_l1_bytes if f else 0:10,d}  {tile:32s} {'yes' if found.fuse else 'no':4s}"
                      f"{'  grouped' if i in chosen else ''}")
            groups = [choices[i] for i in chosen]
            saved_cycles = sum(c.unfused_cycles - c.fused.total_cycles for _, _, c in groups)
            saved_bytes = sum(c.unfused_bytes - c.fused.l2_l1_bytes for _, _, c in groups)
            group_cycles = sum(c.unfused_cycles for _, _, c in groups) or 1
            group_bytes = sum(c.unfused_bytes for _, _, c in groups) or 1
            kept = {p.output for i, (p, _) in enumerate(pairs) if i in chosen}
            kept_out = sum(tensors[tensor].bytes for tensor in kept)
            peak, fused_peak = live_peak(tensors, len(layers)), live_peak(tensors, len(layers), kept)
            total_cycles, total_bytes = sum(r["est_cycles"] for r in rows), sum(r["dma_l2_l1_bytes"] for r in rows)
            print(f"  {len(groups)} groups of {len(pairs)} pairs: saves {saved_cycles:,} est. cycles "
                  f"({saved_cycles / group_cycles:.1%} of the groups', {saved_cycles / total_cycles:.1%} of the network's "
                  f"{total_cycles:,}), {saved_bytes:,} L2<->L1 B ({saved_bytes / group_bytes:.1%} of the groups', "
                  f"{saved_bytes / total_bytes:.1%} of the network's {total_bytes:,}); "
                  f"{kept_out:,} B of intermediates kept out of L2; live activations peak {peak:,} -> {fused_peak:,} B")


if __name__ == "__main__":
    main()
