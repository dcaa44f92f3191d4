"""Build, run and compare: the generated C of a network, run on its inputs, against the golden model.

The network is compiled (`compile_network`), written as an application, built for the host or rv32
(`dory_mlir/backend/build.py`) and run on a golden input (DORY txt files or the npz form of
QuantLib/Deeploy exports; otherwise a seeded random input); every layer's output is compared with
the numpy golden model and, where a golden tensor exists, with it (`verify_with_goldens`).
`dory-verify`, the benches and the tests use this module; a quantized model with a float input is
compared with onnxruntime by `verify_onnxruntime.py`, on top of the helpers here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp, Signedness
from xdsl.passes import PassPipeline

from dory_mlir.backend import perf_report, rv32
from dory_mlir.backend.build import build_for_verify
from dory_mlir.backend.pulp_c import write_application
from dory_mlir.diagnostics import DoryError, Progress
from dory_mlir.dialects import qnn
from dory_mlir.golden.check import compare, find_test_sets, hwc_shape, input_shapes, read_inputs
from dory_mlir.golden.files import read_dory_txt, to_layout
from dory_mlir.golden.interpreter import network_function, run_network
from dory_mlir.golden.npz import as_network_shape, input_type_for, is_npz_folder, load_npz_goldens
from dory_mlir.ir_utils import loc_name
from dory_mlir.pipeline import load_network, make_context
from dory_mlir.universe import DORY_UNIVERSE

# The tile pass's JSON report in the application folder, from which the HTML report is drawn.


@dataclass(frozen=True)
class VerifyOptions:
    """How the network is imported, compiled, built and run, and what its C is compared with."""

    pipeline: str  # the passes that compile the fused network (`dory_mlir.cli.DEFAULT_PIPELINE`)
    input_type: str | None = None
    activations: str = "exact"
    golden: Path | None = None  # golden files (DORY txt or npz); None: a seeded random input
    seed: int = 0
    sanitize: bool = False  # build with ASan+UBSan
    target: str = "host"  # or "rv32-qemu" (`build_for_verify`)
    report: Path | None = None  # the HTML page of the pipeline's tile pass, with the comparisons
    keep: bool = False  # the application folder is the user's: say where it is
    float_input: Path | None = None  # a quantized model's float input (verify_onnxruntime.py)
    reference: str = "auto"  # verify_onnxruntime.py's reference


def compile_network(module: ModuleOp, pipeline: str) -> ModuleOp:
    """The pipeline applied to a copy of the (fused) network."""
    return compile_network_with_report(module, pipeline)[0]


def compile_network_with_report(module: ModuleOp, pipeline: str) -> tuple[ModuleOp, dict | None]:
    """The pipeline applied to a copy of the (fused) network, and the report of its (last) tile pass."""
    from dory_mlir.passes.tile import collecting_tile_reports

    module = module.clone()
    passes = {name: factory for name, factory in DORY_UNIVERSE.all_passes.items()}
    try:
        parsed = PassPipeline.parse_spec(passes, pipeline)
    except ValueError as e:
        raise DoryError(f"bad pipeline '{pipeline}': {e}") from None
    with collecting_tile_reports() as reports:
        parsed.apply(make_context(), module)  # a pass's own failure is not a bad pipeline
    return module, (reports[-1] if reports else None)


def element_dtype(value) -> np.dtype:
    ty = qnn.element_type(value)
    kind = "u" if ty.signedness.data == Signedness.UNSIGNED else "i"
    return np.dtype(f"{kind}{max(1, ty.width.data // 8)}")


def input_files(count: int) -> list[str]:
    """The files main.c reads: `input.bin`, or `input_K.bin` per network input K when there are several."""
    return ["input.bin"] if count == 1 else [f"input_{k}.bin" for k in range(count)]


def run_app(binary: Path, workdir: Path, x_hwc: np.ndarray | list[np.ndarray],
            input_dtype: np.dtype | list[np.dtype]) -> str:
    """Runs the application on its inputs (HWC; one array per network input)."""
    xs = [x_hwc] if isinstance(x_hwc, np.ndarray) else list(x_hwc)
    dtypes = input_dtype if isinstance(input_dtype, list) else [input_dtype] * len(xs)
    for name, x, dtype in zip(input_files(len(xs)), xs, dtypes, strict=True):
        x.astype(dtype).tofile(workdir / name)
    if binary.suffix == ".elf":
        return rv32.run_for_verify(binary, workdir)
    env = dict(os.environ, DORY_DUMP_DIR=str(workdir), ASAN_OPTIONS="detect_leaks=1")
    done = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DoryError(f"the application failed (exit {done.returncode}): {' | '.join(tail)}", str(binary))
    return done.stdout


DMA_DIRECTIONS = ("l2_l1", "l1_l2", "l3_l2", "l2_l3")


def parse_dma_counts(stdout: str) -> dict[int, dict[str, int]]:
    """The runtime's `dma layer N l2_l1 B l1_l2 B l3_l2 B l2_l3 B` lines (`dory_dma_count_layer`): the bytes
    each layer's transfers moved per direction (summed when a layer has several lines)."""
    counts: dict[int, dict[str, int]] = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) == 3 + 2 * len(DMA_DIRECTIONS) and words[:2] == ["dma", "layer"]:
            layer = counts.setdefault(int(words[2]), dict.fromkeys(DMA_DIRECTIONS, 0))
            for name, value in zip(words[3::2], words[4::2], strict=True):
                layer[name] += int(value)
    return counts


@dataclass(frozen=True)
class DmaAgreement:
    """A layer's bytes counted by the runtime against the tile report's (L2→L1 and L1→L2, L3↔L2)."""

    layer: int
    counted: tuple[int, int, int]  # L2→L1, L1→L2, L3↔L2 (both directions)
    reported: tuple[int, int, int]

    @property
    def equal(self) -> bool:
        return self.counted == self.reported


def dma_agreement(report: dict, counts: dict[int, dict[str, int]]) -> list[DmaAgreement]:
    """Per layer of the tile report, the counted bytes next to the report's `dma_l2_l1` (its `output`
    part is L1→L2) and `dma_l3_l2_bytes` (both directions); a layer without counts counts 0."""
    rows = []
    for row in report["layers"]:
        c = counts.get(row["layer"], dict.fromkeys(DMA_DIRECTIONS, 0))
        out = row["dma_l2_l1"].get("output", 0)
        rows.append(DmaAgreement(row["layer"], (c["l2_l1"], c["l1_l2"], c["l3_l2"] + c["l2_l3"]),
                                 (row["dma_l2_l1_bytes"] - out, out, row["dma_l3_l2_bytes"])))
    return rows


def measure_dma_agreement(model: Path, workdir: Path, pipeline: str) -> list[DmaAgreement]:
    """Compiles the network with `pipeline`, builds it for the host, runs it on a seeded random input (the
    bytes moved do not depend on the values) and returns `dma_agreement` of its counts and tile report."""
    module = load_network(model, None, "exact")
    in_types = list(network_function(module).function_type.inputs.data)
    compiled, report = compile_network_with_report(module, pipeline)
    if report is None:
        raise DoryError(f"the pipeline '{pipeline}' has no tile pass: no report to compare with")
    workdir.mkdir(parents=True, exist_ok=True)
    write_application(compiled, workdir)
    binary = build_for_verify(workdir, False, "host")
    stdout = run_app(binary, workdir, [nchw_to_hwc(x) for x in random_case(in_types, 0).inputs],
                     [element_dtype(t) for t in in_types])
    return dma_agreement(report, parse_dma_counts(stdout))


def print_dma_agreement(rows: list[DmaAgreement], counts: dict[int, dict[str, int]]) -> None:
    """The table of `dma_agreement`, the network's set-up transfers (`counts[-1]`, in no layer) and a summary."""
    print_table(("layer", "L2→L1 counted", "report", "L1→L2 counted", "report", "L3↔L2 counted", "report", ""),
                [(str(r.layer), *(f"{v:,}" for pair in zip(r.counted, r.reported, strict=True) for v in pair),
                  "" if r.equal else "DIFFERS") for r in rows])
    if -1 in counts:
        print(f"network set-up before the first layer (inputs to L3, resident constants): "
              f"L3→L2 {counts[-1]['l3_l2']:,} B, L2→L3 {counts[-1]['l2_l3']:,} B")
    same = sum(r.equal for r in rows)
    print(f"DMA bytes counted by the runtime: {same} of {len(rows)} layers equal to the tile report")


def nchw_to_hwc(tensor: np.ndarray) -> np.ndarray:
    return to_layout(tensor, "HWC")


def read_dump(path: Path, value) -> np.ndarray:
    """A tensor the application dumped (HWC, flat), or an empty array when it wrote none."""
    return np.fromfile(path, dtype=element_dtype(value)).astype(np.int64) if path.exists() else np.array([])


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@dataclass(frozen=True)
class Case:
    """One input with the golden comparisons recorded for it (layer index -> compare(model tensor))."""

    label: str
    inputs: list[np.ndarray]  # NCHW, one per network input
    layer_goldens: dict[int, Callable[[np.ndarray], tuple[int, str]]] = field(default_factory=dict)
    output_goldens: list[tuple[str, np.ndarray]] = field(default_factory=list)


def random_case(in_types, seed: int) -> Case:
    """Seeded random values over each network input's type."""
    rng = np.random.default_rng(seed)
    inputs = []
    for in_type in in_types:
        lo, hi = qnn.int_range(qnn.element_type(in_type))
        inputs.append(rng.integers(lo, hi + 1, size=qnn.shape_of(in_type)))
    return Case("random", inputs)


def golden_cases(folder: Path, module: ModuleOp, model: Path) -> list[Case]:
    """The inputs of a golden folder, DORY txt (HWC) or npz (NCHW), with their layer goldens."""
    if not folder.is_dir():
        raise DoryError("not a folder of golden files", str(folder))
    if is_npz_folder(folder):
        goldens = load_npz_goldens(folder, module, model)
        return [
            Case(sample.label, sample.inputs,
                 {index: partial(compare_npz, name=name, golden=golden) for index, (name, golden) in sample.layers.items()},
                 sample.outputs)
            for sample in goldens.samples
        ]
    shapes = input_shapes(module)
    return [
        Case(test.label, read_inputs(test, shapes, "HWC"),
             {index: partial(compare_txt, path=path) for index, path in test.layer_files.items()})
        for test in find_test_sets(folder, len(shapes))
    ]


def compare_txt(tensor: np.ndarray, path: Path) -> tuple[int, str]:
    mismatches, layout, note = compare(tensor, read_dory_txt(path))
    return (mismatches or int(bool(note))), note or f"{mismatches} ({layout})"


def compare_npz(tensor: np.ndarray, name: str, golden: np.ndarray) -> tuple[int, str]:
    reshaped = as_network_shape(golden, tensor.shape)  # N×C×W goldens of 1-D networks: N×C×1×W
    if reshaped is None:
        return golden.size, f"'{name}' has shape {list(golden.shape)}, the network {list(tensor.shape)}"
    mismatches = int(np.count_nonzero(tensor != reshaped))
    return mismatches, f"{mismatches} ('{name}')"


def verify_with_goldens(model: Path, workdir: Path, options: VerifyOptions) -> int:
    """Compiles, builds and runs the network in `workdir` on every golden input (else a random one) and
    compares every layer with the golden model and the golden files; prints the table; 0 iff all match."""
    input_type = options.input_type
    if input_type is None and options.golden is not None and is_npz_folder(options.golden):
        input_type = input_type_for(options.golden, model)
    progress = Progress("dory-verify")
    progress("importing")
    golden_module = load_network(model, input_type, options.activations)
    function = network_function(golden_module)
    layers = {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}
    in_types = list(function.function_type.inputs.data)
    workdir.mkdir(parents=True, exist_ok=True)
    progress("compiling")
    compiled, tile_report = compile_network_with_report(golden_module, options.pipeline)
    write_application(compiled, workdir)
    progress("building the C" + (" with ASan+UBSan" if options.sanitize else "")
             + (" for rv32" if options.target == "rv32-qemu" else ""))
    binary = build_for_verify(workdir, options.sanitize, options.target)

    cases = golden_cases(options.golden, golden_module, model) if options.golden is not None else [
        random_case(in_types, options.seed)]
    rows, failed = [], False
    for number, case in enumerate(cases, start=1):
        progress("running and comparing input set", number, len(cases))
        stdout = run_app(binary, workdir, [nchw_to_hwc(x) for x in case.inputs], [element_dtype(t) for t in in_types])
        outputs, layer_outputs = run_network(golden_module, case.inputs)
        for index, layer in sorted(layers.items()):
            expected = layer_outputs[index]
            got = read_dump(workdir / f"out_layer{index}.bin", layer.output)
            model_mismatch = int(np.count_nonzero(got != nchw_to_hwc(expected))) if got.size == expected.size else expected.size
            file_note = "-"
            if index in case.layer_goldens:
                mismatches, file_note = case.layer_goldens[index](expected)
                failed |= bool(mismatches)
            failed |= model_mismatch > 0
            rows.append((case.label, str(index), layer.kind(), loc_name(layer) or "-", hwc_shape(expected.shape),
                         str(expected.size), str(model_mismatch), file_note))
        for position, (name, golden) in enumerate(case.output_goldens):
            result = function.function_type.outputs.data[min(position, len(outputs) - 1)]
            got = read_dump(workdir / f"out_layer{-(position + 1)}.bin", result)
            expected = outputs[min(position, len(outputs) - 1)]
            model_mismatch = int(np.count_nonzero(got != nchw_to_hwc(expected))) if got.size == expected.size else expected.size
            mismatches, file_note = compare_npz(expected, name, golden)
            failed |= bool(mismatches) or model_mismatch > 0 or position >= len(outputs)
            rows.append((case.label, "output", "-", "-", hwc_shape(expected.shape), str(expected.size),
                         str(model_mismatch), file_note))
    progress.done()
    print_table(("set", "layer", "op", "node", "shape (HWC)", "values", "C vs golden model", "golden file"), rows)
    verdict = "FAIL" if failed else "PASS: bit-exact"
    print(f"{verdict}: {len(rows)} layer outputs of the generated C{' (ASan+UBSan)' if options.sanitize else ''} compared")
    if tile_report is not None:  # the DMA bytes of the last run against the tile report's
        counts = parse_dma_counts(stdout)
        print_dma_agreement(dma_agreement(tile_report, counts), counts)
    if options.target == "rv32-qemu":  # instruction counts of the last run
        print("\n".join(perf_report.verify_report(workdir, layers)))
    if options.report is not None and tile_report is not None:
        write_html_report(options.report, tile_report, model, workdir, options.target, layers, rows, verdict)
    if options.keep:
        print(f"application kept in {workdir}")
    return 1 if failed else 0


def write_html_report(path: Path, report: dict, model: Path, workdir: Path, target: str,
                      layers: dict[int, qnn.LayerOp], rows: list[tuple[str, ...]], verdict: str,
                      reference: str = "golden file") -> None:
    """The tile report as HTML with, per layer, the comparisons of every run (and rv32 instructions); rows
    are (run, layer, op, node, shape, values, C vs golden model, vs `reference`)."""
    from dory_mlir.backend.html_report import VerifyColumns, render

    header = ["values", "C vs golden model", reference]
    per_layer: dict[int, list[str]] = {}
    for _, index, _, _, _, values, mismatches, file_note in rows:
        if index.isdigit():
            previous = per_layer.get(int(index))
            if previous is None or previous[1] == "0":  # the first run with a difference shows
                per_layer[int(index)] = [values, mismatches, file_note]
    for cells in per_layer.values():
        cells[1] = "PASS" if cells[1] == "0" else f"FAIL: {cells[1]} differ"
    if target == "rv32-qemu":
        perf = perf_report.network_perf(layers, rv32.parse_perf((workdir / rv32.LOG).read_text()))
        header.append("rv32 instructions")
        for row in perf.rows:
            per_layer.setdefault(row.index, ["-", "-", "-"]).append(f"{row.count.total:,}")
    path.write_text(render(report, model.name, VerifyColumns(header, per_layer, verdict)))
