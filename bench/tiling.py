"""Tiling speed: all layers of MobileNetV1-1.0 at 128×128, and every shared network.

    .venv/bin/python bench/tiling.py [--models ../shared/models/dory]

Prints seconds per network (the L1 solver; for the shared networks also the L2 planning) and, for
MobileNetV1 at the default L1 budget and at 8,000 B, its estimated cycles and L2↔L1 bytes against the lower bound. Nothing is asserted: it measures.
"""

import argparse
import time
from pathlib import Path

from dory_mlir.passes.tile import TilePass
from dory_mlir.pipeline import load_network, make_context
from dory_mlir.target import load_target
from dory_mlir.tiling.cost_figures import CostModel
from dory_mlir.tiling.model import L1Target, LayerShape, Tile
from dory_mlir.tiling.solve import solve_all
from dory_mlir.tiling.traffic import Grid, l2_l1_bytes


def mobilenet_v1_layers(width: float = 1.0, resolution: int = 128) -> list[LayerShape]:
    """The 28 layers of MobileNetV1 (conv, 13 × depthwise + pointwise, pool, FC) as plain shapes."""
    def ch(c: int) -> int:
        return int(c * width)

    size = resolution // 2
    layers = [LayerShape("conv", 3, ch(32), resolution, resolution, size, size, 3, 3, 2, 2, const_bytes=8)]
    blocks = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]
    blocks += [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    for c_in, c_out, stride in blocks:
        out = (size + 2 - 3) // stride + 1
        layers.append(LayerShape("depthwise", ch(c_in), ch(c_in), size, size, out, out, 3, 3, stride, stride, const_bytes=8))
        layers.append(LayerShape("pointwise", ch(c_in), ch(c_out), out, out, out, out, const_bytes=8))
        size = out
    layers.append(LayerShape("avgpool", ch(1024), ch(1024), size, size, 1, 1, size, size))
    layers.append(LayerShape("linear", ch(1024), 1000, 1, 1, 1, 1, out_bytes=4, const_bytes=4))
    return layers


def _same_pads(layer: LayerShape) -> tuple[int, int, int, int]:
    pad = 1 if layer.kh == 3 else 0
    return (pad, pad, pad, pad)


def layer_lower_bound(layer: LayerShape) -> int:
    """Every input, weight, constant and output byte once."""
    once = l2_l1_bytes(layer, Grid.of(layer, Tile(layer.c_out, layer.h_out, layer.w_out, layer.c_in)), _same_pads(layer))
    return sum(once.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models" / "dory")
    args = parser.parse_args()
    target = load_target()
    layers = mobilenet_v1_layers()
    bound = sum(layer_lower_bound(layer) for layer in layers)
    for budget in (target.l1_budget, 8000):
        l1 = L1Target(budget, target.cores, target.double_buffer, CostModel(target.dma))
        start = time.perf_counter()
        results = [result for result, _ in solve_all(layers, l1)]
        seconds = time.perf_counter() - start
        moved = sum(sum(l2_l1_bytes(layer, Grid.of(layer, r.tile), _same_pads(layer), r.order).values())
                    for layer, r in zip(layers, results, strict=True))
        print(f"MobileNetV1-1.0 128x128, L1 {budget} B: {len(layers)} layers tiled in {seconds:.2f} s "
              f"({len(set(layers))} distinct shapes), {sum(r.objective for r in results):,} estimated cycles, "
              f"L2<->L1 {moved:,} B = {moved / bound:.2f}x the lower bound")

    for folder in sorted(p for p in args.models.glob("*") if p.is_dir()):
        model = next(folder.glob("*.onnx"))
        module = load_network(model)
        for options in ({}, {"l1_size": 8000, "l2_size": 64000}):
            start = time.perf_counter()
            TilePass(**options).apply(make_context(), module.clone())
            label = "default" if not options else "l1=8000 l2=64000"
            print(f"{folder.name:45s} {label:17s} {time.perf_counter() - start:6.2f} s")


if __name__ == "__main__":
    main()
