"""`dory-verify MODEL`: compile to C, build for the host, run, compare every layer bit for bit.

    dory-verify model.onnx [--golden DIR] [--sanitize] [-p PIPELINE] [--keep DIR] [--target host|rv32-qemu]

The application runs on the golden input (`--golden`: DORY txt files or the npz form of
QuantLib/Deeploy exports; otherwise a seeded random input); every layer's output is
compared with the numpy golden model and, where a golden tensor exists, with it. Exit 0 only if every value of every layer matches.

A quantized model with a float input (QDQ/QOperator, starting with QuantizeLinear) runs on a float
input (`--input X.npy`, else seeded random) and is also compared with onnxruntime: verify_onnxruntime.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp, Signedness
from xdsl.passes import PassPipeline
from xdsl.utils.exceptions import DiagnosticException

from dory_mlir.backend import perf_report, rv32
from dory_mlir.backend.build import build_for_verify
from dory_mlir.backend.pulp_c import write_application
from dory_mlir.diagnostics import DoryError, Progress, one_line
from dory_mlir.dialects import qnn
from dory_mlir.frontend.activation_modes import ACTIVATION_MODES, ACTIVATIONS_HELP
from dory_mlir.golden.check import compare, find_test_sets, hwc_shape, input_shapes, read_inputs
from dory_mlir.golden.files import read_dory_txt, to_layout
from dory_mlir.golden.npz import as_network_shape, input_type_for, is_npz_folder, load_npz_goldens
from dory_mlir.golden.interpreter import network_function, run_network
from dory_mlir.ir_utils import loc_name
from dory_mlir.pipeline import load_network, make_context
from dory_mlir.universe import DORY_UNIVERSE

DEFAULT_PIPELINE = "tile,lower-to-pulp"


def compile_network(module: ModuleOp, pipeline: str) -> ModuleOp:
    """The pipeline applied to a copy of the (fused) network."""
    module = module.clone()
    passes = {name: factory for name, factory in DORY_UNIVERSE.all_passes.items()}
    try:
        parsed = PassPipeline.parse_spec(passes, pipeline)
    except ValueError as e:
        raise DoryError(f"bad pipeline '{pipeline}': {e}") from None
    parsed.apply(make_context(), module)  # a pass's own failure is not a bad pipeline
    return module


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


def nchw_to_hwc(tensor: np.ndarray) -> np.ndarray:
    return to_layout(tensor, "HWC")


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


def read_dump(path: Path, value) -> np.ndarray:
    return np.fromfile(path, dtype=element_dtype(value)).astype(np.int64) if path.exists() else np.array([])


def verify(args: argparse.Namespace) -> int:
    from dory_mlir_tools.verify_onnxruntime import verify_float_input_model  # it imports this module

    status = verify_float_input_model(args)  # a quantized model with a float input: against onnxruntime
    if status is not None:
        return status
    input_type = args.input_type
    if input_type is None and args.golden and is_npz_folder(Path(args.golden)):
        input_type = input_type_for(Path(args.golden), Path(args.model))
    progress = Progress("dory-verify")
    progress("importing")
    golden_module = load_network(args.model, input_type, args.activations)
    function = network_function(golden_module)
    layers = {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}
    in_types = list(function.function_type.inputs.data)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dory-verify-"))
    pipeline = args.passes or DEFAULT_PIPELINE
    if args.report:  # the tile pass's report, to which the comparisons are added below
        from dory_mlir_tools.dory_opt import with_tile_report

        workdir.mkdir(parents=True, exist_ok=True)
        pipeline = with_tile_report(pipeline, str(workdir / "tiles.json"), "--report")
    progress("compiling")
    compiled = compile_network(golden_module, pipeline)
    write_application(compiled, workdir)
    progress("building the C" + (" with ASan+UBSan" if args.sanitize else "") + (" for rv32" if args.target == "rv32-qemu" else ""))
    binary = build_for_verify(workdir, args.sanitize, args.target)

    cases = golden_cases(Path(args.golden), golden_module, args.model) if args.golden else [
        random_case(in_types, args.seed)]
    rows, failed = [], False
    for number, case in enumerate(cases, start=1):
        progress("running and comparing input set", number, len(cases))
        run_app(binary, workdir, [nchw_to_hwc(x) for x in case.inputs], [element_dtype(t) for t in in_types])
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
    header = ("set", "layer", "op", "node", "shape (HWC)", "values", "C vs golden model", "golden file")
    table = [header] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    verdict = "FAIL" if failed else "PASS: bit-exact"
    print(f"{verdict}: {len(rows)} layer outputs of the generated C{' (ASan+UBSan)' if args.sanitize else ''} compared")
    if args.target == "rv32-qemu":  # instruction counts of the last run
        print("\n".join(perf_report.verify_report(workdir, layers)))
    if args.report:
        write_html_report(Path(args.report), workdir, args, layers, rows, verdict)
    if args.keep:
        print(f"application kept in {workdir}")
    return 1 if failed else 0


def write_html_report(path: Path, workdir: Path, args: argparse.Namespace, layers: dict[int, qnn.LayerOp],
                      rows: list[tuple[str, ...]], verdict: str) -> None:
    """The tile report as HTML with, per layer, the comparisons of every run (and rv32 instructions)."""
    import json

    from dory_mlir.backend.html_report import VerifyColumns, render

    header = ["values", "C vs golden model", "golden file"]
    per_layer: dict[int, list[str]] = {}
    for _, index, _, _, _, values, mismatches, file_note in rows:
        if index.isdigit():
            previous = per_layer.get(int(index))
            if previous is None or previous[1] == "0":  # the first run with a difference shows
                per_layer[int(index)] = [values, mismatches, file_note]
    for cells in per_layer.values():
        cells[1] = "PASS" if cells[1] == "0" else f"FAIL: {cells[1]} differ"
    if args.target == "rv32-qemu":
        from dory_mlir.backend.rv32 import LOG, parse_perf

        perf = perf_report.network_perf(layers, parse_perf((workdir / LOG).read_text()))
        header.append("rv32 instructions")
        for row in perf.rows:
            per_layer.setdefault(row.index, ["-", "-", "-"]).append(f"{row.count.total:,}")
    report = json.loads((workdir / "tiles.json").read_text())
    path.write_text(render(report, Path(args.model).name, VerifyColumns(header, per_layer, verdict)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dory-verify", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="network (.onnx or .mlir)")
    parser.add_argument("--golden", metavar="DIR",
                        help="golden files to run and compare against: DORY txt (input.txt, out_layerN.txt) "
                             "or npz (inputs.npz, outputs.npz, activations.npz)")
    parser.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    parser.add_argument("-p", "--passes", metavar="PIPELINE", help=f"compile pipeline (default: {DEFAULT_PIPELINE})")
    parser.add_argument("--input-type", metavar="TYPE", help="input element type (see dory-opt --help)")
    parser.add_argument("--activations", choices=ACTIVATION_MODES, default="exact", help=ACTIVATIONS_HELP)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input when there is no --golden")
    parser.add_argument("--input", type=Path, metavar="X.npy",
                        help="float input of a quantized model with a float input (compared with onnxruntime)")
    parser.add_argument("--reference", choices=["auto", "onnx", "onnxruntime"], default="auto",
                        help="reference of a quantized model with a float input: onnxruntime, or onnx's exact "
                             "ReferenceEvaluator (auto: onnx where onnxruntime's u8s8 kernels saturate, x86 without VNNI)")
    parser.add_argument("--keep", metavar="DIR", help="write the application into DIR and keep it")
    parser.add_argument("--report", metavar="FILE.html",
                        help="write the HTML report of the tiling with the per-layer comparison (and, with "
                             "--target rv32-qemu, instruction counts)")
    parser.add_argument("--target", choices=["host", "rv32-qemu"], default="host",
                        help="host: gcc with the host runtime (default); rv32-qemu: rv32imc with the bare-metal "
                             "runtime under qemu-system-riscv32, with instruction counts per layer")
    from dory_mlir.diagnostics import DEBUG_FLAG, DEBUG_HELP, run_tool

    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    args = None

    def body() -> int:
        nonlocal args
        args = parser.parse_args(argv)
        if args.report and not args.report.endswith(".html"):
            raise DoryError("--report writes an HTML page: name a FILE.html", args.report)
        if args.keep and Path(args.keep).exists() and not Path(args.keep).is_dir():
            raise DoryError("--keep names an existing file; it must be a folder (created if missing)", args.keep)
        return verify(args)

    # DoryError and xDSL diagnostics: one `error:` line, exit 1; anything else `internal error:`, exit 2.
    return run_tool(body, argv, lambda: str(args.model) if args is not None else None)


if __name__ == "__main__":
    sys.exit(main())
