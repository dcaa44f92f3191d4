"""Compile time per pass and as a user sees it, and DMA traffic against its lower bound, for every shared network.

    .venv/bin/python bench/compile.py [--models ../shared/models/dory] [--l1-size N] [--l2-size N] [--runs N]
                                      [--no-mobilenet] [--baseline CHECKOUT]

Per network: seconds for import, fuse, tile, bufferize-network, tile-layers and writing the C
application inside one warm process (their sum: `passes`), then the whole process as a user runs it
(`dory-opt model.onnx --tile --lower-to-pulp -t pulp-c -o DIR`: start-up, imports, everything; the
median of `--runs` runs), as a first compile (`process`: an empty tiling cache; `cpu`: its CPU time, user +
system, which the load of a shared machine changes less than the wall time) and compiled `again` (the
proven tilings of a run before read from the cache, `dory_mlir/tiling/solve_cache.py`), and, for the
networks DORY was timed on, DORY's whole-process time from a side-by-side run on this 2-core machine and
the ratios DORY / ours (DORY cannot run here: its times are quoted, absolute times drift between machines,
ratios hold). Then the DMA bytes the tiling moves
L2↔L1 and L3↔L2 for the whole network next to the lower bound (every input, weight and output byte
moved once), with their ratio. Besides the shared networks: MobileNetV1-1.0 at 128×128 (generated with
seeded weights by the QuantLib builder, 28 layers, 4.2 MB of weights; `--no-mobilenet` leaves it off), and
`dory-opt --help`. With `--baseline CHECKOUT`, another checkout's compiler (say main's) is timed too, run by
turns with ours on the first compiles, so both see the same load of a shared machine. Progress goes to stderr when it is a terminal. Nothing is asserted: it measures.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dory_mlir.backend.pulp_c import write_application
from dory_mlir.diagnostics import Progress
from dory_mlir.frontend.onnx_import import import_onnx_file
from dory_mlir.passes.bufferize_network import BufferizeNetworkPass
from dory_mlir.passes.fuse import FusePass
from dory_mlir.passes.tile import TilePass, collecting_tile_reports
from dory_mlir.passes.tile_layers import TileLayersPass
from dory_mlir.pipeline import make_context


# DORY's whole-process times (ONNX → C written, s), measured interleaved with ours on this machine (issue 13).
DORY_SECONDS = {
    "nemo_8-bits-2D_Residual_connection_test_1": 3.29,
    "nemo_8-bits-2D_dronet_2.0": 4.40,
    "nemo_8-bits-2D_PenguiNet_32": 3.73,
    "quantlab_Dronet": 5.34,
}


DORY_OPT = Path(sys.executable).with_name("dory-opt")
TILING_CACHE = "DORY_TILING_CACHE"  # the tiling results on disk (dory_mlir/tiling/solve_cache.py)


def timed(command: list[str], output: bool = False, **env: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system: what the machine's load changes least) of one run of a command
    (with `output`: given a fresh `-o` folder; `env`: variables set for it)."""
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command + (["-o", str(Path(tmp) / "app")] if output else []), check=True, capture_output=True,
                       env={**os.environ, **env})
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def first_compiles(command: list[str], runs: int, baseline: Path | None, output: bool = True
                   ) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """Medians (wall, CPU) of `runs` first runs (an empty tiling cache each), and of the baseline checkout's, run by
    turns with ours so that both see the same load."""
    ours, base = [], []
    for _ in range(runs):
        if baseline is not None:
            base.append(timed(command, output, PYTHONPATH=str(baseline)))
        with tempfile.TemporaryDirectory() as cache:
            ours.append(timed(command, output, **{TILING_CACHE: cache}))
    return medians(ours), medians(base) if base else None


def whole_process_seconds(model: Path, args: argparse.Namespace) -> tuple[tuple[float, float], tuple[float, float] | None, float]:
    """`dory-opt` compiling the model to C as a user runs it: medians (wall, CPU) of the first compile, of the
    baseline's (if any), and the median wall time of a recompile (the proven tilings cached by a run before,
    `solve_cache.py`)."""
    options = " ".join(f"{name}={value}" for name, value in (("l1-size", args.l1_size), ("l2-size", args.l2_size)) if value)
    pipeline = f"tile{{{options}}},lower-to-pulp" if options else "tile,lower-to-pulp"
    command = [str(DORY_OPT), str(model), "-p", pipeline, "-t", "pulp-c"]
    first, base = first_compiles(command, args.runs, args.baseline)
    with tempfile.TemporaryDirectory() as cache:
        timed(command, True, **{TILING_CACHE: cache})  # fills the cache
        again, _ = medians([timed(command, True, **{TILING_CACHE: cache}) for _ in range(args.runs)])
    return first, base, again


def mobilenet_v1(folder: Path) -> Path:
    """MobileNetV1-1.0 at 128×128 (conv, 13 depthwise-separable blocks, pool, FC to 1000 classes), integer
    weights from a fixed seed, written as `folder/network.onnx`."""
    from dory_mlir.examples.quantlib_builder import mobilenet_v1 as build

    return build(0).write(folder, "mobilenet_v1_1.0_128") / "network.onnx"


def lower_bounds(row: dict) -> tuple[int, int]:
    """Every input, constant and output byte moved once between L2 and L1; and between L3 and
    L2, once each: the constants that live in L3 and the activations streamed from L3."""
    l2_l1 = row["input_bytes"] + row["constant_bytes"] + row["output_bytes"]
    l3_l2 = row["constant_bytes"] if row["weights_in"] in ("L3", "L3-stream") else 0
    return l2_l1, l3_l2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "models" / "dory")
    parser.add_argument("--l1-size", type=int)
    parser.add_argument("--l2-size", type=int)
    parser.add_argument("--runs", type=int, default=5, help="whole-process runs per network (the median is shown)")
    parser.add_argument("--no-mobilenet", action="store_true", help="leave off the generated MobileNetV1-1.0-128")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="also time another checkout's dory_mlir (e.g. `git archive REV | tar -x -C DIR`), run by "
                             "this venv by turns with ours: columns `base` and its `cpu`")
    args = parser.parse_args()
    progress = Progress("bench/compile.py")
    header = (f"{'network':44s} {'import':>7s} {'fuse':>6s} {'tile':>6s} {'bufferize':>9s} {'tile-layers':>11s} "
              f"{'emit C':>7s} {'passes':>7s} {'base':>5s} {'cpu':>5s} {'process':>8s} {'cpu':>5s} {'again':>6s} {'DORY':>5s} {'DORY/us':>7s} {'again':>6s}   "
              f"{'L2<->L1 MB':>10s} {'bound':>7s} {'ratio':>6s}   {'L3<->L2 MB':>10s} {'bound':>7s}")
    print(header)
    os.environ[TILING_CACHE] = "off"  # the phases measured in this process solve every shape
    with tempfile.TemporaryDirectory() as generated:
        models = [(folder.name, next(folder.glob("*.onnx"))) for folder in sorted(p for p in args.models.glob("*") if p.is_dir())]
        if not args.no_mobilenet:
            progress("generating MobileNetV1-1.0-128")
            models.append(("MobileNetV1-1.0-128 (generated)", mobilenet_v1(Path(generated) / "mobilenet_v1")))
        for number, (name, model) in enumerate(models, start=1):
            progress(f"{name}", number, len(models))
            row = measure(name, model, args)
            progress.done()
            print(row, flush=True)
    progress("dory-opt --help")
    (help_seconds, help_cpu), base = first_compiles([str(DORY_OPT), "--help"], args.runs, args.baseline, output=False)
    progress.done()
    versus = f"; baseline {base[0]:.2f} s, CPU {base[1]:.2f} s" if base else ""
    print(f"dory-opt --help: {help_seconds:.2f} s, CPU {help_cpu:.2f} s{versus} (medians of {args.runs})")


def measure(name: str, model: Path, args: argparse.Namespace) -> str:
    """One row of the table: the phases in this process, the whole process, DORY, the DMA traffic."""
    ctx = make_context()
    times = []
    start = time.perf_counter()
    module = import_onnx_file(model)
    times.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp, collecting_tile_reports() as reports:
        for step in (FusePass(), TilePass(l1_size=args.l1_size, l2_size=args.l2_size),
                     BufferizeNetworkPass(), TileLayersPass()):
            t0 = time.perf_counter()
            step.apply(ctx, module)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        write_application(module, Path(tmp) / "app")
        times.append(time.perf_counter() - t0)
        rows = reports[-1]["layers"]
    moved = sum(r["dma_l2_l1_bytes"] for r in rows)
    bound = sum(lower_bounds(r)[0] for r in rows)
    l3 = sum(r["dma_l3_l2_bytes"] for r in rows)
    l3_bound = sum(lower_bounds(r)[1] for r in rows)
    cells = " ".join(f"{t:{w}.2f}" for t, w in zip(times, (7, 6, 6, 9, 11, 7), strict=True))
    (process, cpu), base, again = whole_process_seconds(model, args)
    baseline = f"{base[0]:5.2f} {base[1]:5.2f}" if base else f"{'-':>5s} {'-':>5s}"
    dory = DORY_SECONDS.get(name)
    versus = (f"{dory:5.2f} {dory / process:7.2f} {dory / again:6.2f}" if dory and not (args.l1_size or args.l2_size)
              else f"{'-':>5s} {'-':>7s} {'-':>6s}")
    return (f"{name:44s} {cells} {sum(times):7.2f} {baseline} {process:8.2f} {cpu:5.2f} {again:6.2f} {versus}   {moved / 1e6:10.3f} {bound / 1e6:7.3f} "
            f"{moved / bound:6.2f}   {l3 / 1e6:10.3f} {l3_bound / 1e6:7.3f}")


if __name__ == "__main__":
    main()
