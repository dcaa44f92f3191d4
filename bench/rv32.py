"""Instructions per MAC of every shared network, generated C on rv32imc under QEMU.

    .venv/bin/python bench/rv32.py [--models DIR ...] [-p PIPELINE] [--keep DIR]

Per network (every network folder of --models, by default ../shared/models/dory and
../shared/models/mlperf-tiny; the project's generated example networks when none exists): `dory-verify MODEL --golden FOLDER --target rv32-qemu`, i.e. compile with the default
pipeline (or -p), build for rv32imc with the bare-metal PMSIS runtime, run under
qemu-system-riscv32 with -icount shift=0 on the golden input, check every layer bit-exact, and
print its per-layer table, then the tiler's cost model against it per layer (`estimated`: the
tile report's `est_compute_cycles` less `tile_overhead_cycles` per tile, i.e. the kernels on the busiest
core, `tiling/cost.py`; `measured`: the kernel instructions of the core that ran most, summed over the
layer's tiles per core; their relative error). Then one line per network: MACs, instructions, instructions
per MAC of the whole network, of its conv + pointwise layers and of its depthwise layers, the share
spent inside kernels, and the cost model's median and worst per-layer error. The counts are exact and identical run after run (QEMU's icount); they sum
the 8 emulated cores (the work, not the parallel latency) and leave out the runtime's emulation
of the DMA engine, barriers and L3. Nothing is asserted: it measures (the exit status says
whether every network was bit-exact).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from dory_mlir.backend import perf_report, rv32
from dory_mlir.dialects import qnn
from dory_mlir.golden.interpreter import network_function
from dory_mlir.golden.npz import input_type_for, is_npz_folder
from dory_mlir.pipeline import load_network
from dory_mlir.target import load_target

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def networks(models: list[Path], scratch: Path) -> list[tuple[str, Path, Path]]:
    """(name, model, golden folder) of every network, or of the generated examples."""
    found = [(f.name, next(f.glob("*.onnx")), f) for folder in models if folder.is_dir()
             for f in sorted(folder.iterdir()) if f.is_dir()]
    if found:
        return found
    from dory_mlir.examples.nemo_builder import example_networks, write_example

    print(f"{', '.join(map(str, models))} not found: measuring the generated example networks")
    found = []
    for name, build in sorted(example_networks().items()):
        write_example(build(0), scratch / name, 0)
        found.append((name, scratch / name / "model.onnx", scratch / name))
    return found


def layers_of(model: Path, golden: Path) -> dict[int, qnn.LayerOp]:
    input_type = input_type_for(golden) if is_npz_folder(golden) else None  # as dory-verify decides it
    with contextlib.redirect_stderr(io.StringIO()):  # its import warnings were printed by dory-verify
        function = network_function(load_network(model, input_type))
    return {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}


def tile_report(model: Path, golden: Path, passes: str | None) -> dict:
    """The tile report of the compile dory-verify ran (same pipeline, same input type)."""
    input_type = input_type_for(golden) if is_npz_folder(golden) else None
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "tiles.json"
        command = [sys.executable, "-m", "dory_mlir.cli.opt", str(model), "-p", passes or "tile,lower-to-pulp",
                   "--tile-report", str(report), "-o", str(Path(tmp) / "out.mlir")]
        subprocess.run(command + (["--input-type", input_type] if input_type else []), check=True,
                       capture_output=True)
        return json.loads(report.read_text())


def cost_model_errors(report: dict, counts: rv32.PerfCounts) -> list[tuple[str, ...]]:
    """Per layer: estimated kernel cycles on the busiest core against the measured busiest core."""
    target = load_target(report["target"])
    rows = []
    for layer in report["layers"]:
        count = counts.layers.get(layer["layer"])
        if count is None or not count.busiest:
            continue
        tiles = count.calls / target.cores  # every core calls the kernel once per tile
        estimated = layer["est_compute_cycles"] - tiles * target.dma.tile_overhead_cycles
        error = estimated / count.busiest - 1
        rows.append((str(layer["layer"]), layer["kind"], f"{estimated:,.0f}", f"{count.busiest:,}", f"{100 * error:+.1f} %"))
    return rows


def fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]], title: str) -> None:
    table = [header] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"== {title}")
    for row in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", default=[SHARED / "dory", SHARED / "mlperf-tiny"])
    parser.add_argument("-p", "--passes", metavar="PIPELINE", help="compile pipeline (dory-verify's default)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the applications in DIR/<network>")
    args = parser.parse_args()
    if rv32.find_toolchain() is None:
        print(f"error: needs {rv32.GCC}, picolibc and {rv32.QEMU}: {rv32.SETUP}", file=sys.stderr)
        return 1
    summary, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for name, model, golden in networks(args.models, Path(tmp) / "examples"):
            app = root / name
            command = [sys.executable, "-m", "dory_mlir.cli.verify", str(model), "--golden", str(golden),
                       "--target", "rv32-qemu", "--keep", str(app)] + (["-p", args.passes] if args.passes else [])
            done = subprocess.run(command, capture_output=True, text=True)
            print(f"== {name}\n{done.stdout}{done.stderr}")
            if done.returncode:
                failed.append(name)
                continue
            counts = rv32.parse_perf((app / rv32.LOG).read_text())
            perf = perf_report.network_perf(layers_of(model, golden), counts)
            errors = cost_model_errors(tile_report(model, golden, args.passes), counts)
            print_table(("layer", "kind", "estimated", "measured", "error"), errors,
                        "the cost model's kernel cycles, busiest core (tiling/cost.py) vs QEMU")
            relative = [abs(float(row[-1].split()[0])) for row in errors]
            summary.append((name, f"{perf.macs:,}", f"{perf.instructions:,}", fmt(perf.per_mac()),
                            fmt(perf.per_mac_of({"conv", "pointwise"})), fmt(perf.per_mac_of({"depthwise"})),
                            fmt(perf.per_mac_of({"linear"})), f"{100.0 * perf.kernels / perf.instructions:.1f} %",
                            f"{statistics.median(relative):.1f} %" if relative else "-",
                            f"{max(relative):.1f} %" if relative else "-"))
    header = ("network", "MACs", "instructions", "ins/MAC", "conv+pw ins/MAC", "dw ins/MAC", "linear ins/MAC",
              "in kernels", "cost model |error| median", "worst")
    print_table(header, summary, f"{perf_report.HEADER}\n   {perf_report.NOT_COUNTED}")
    if failed:
        print(f"not bit-exact or not run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
