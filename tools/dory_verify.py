"""`dory-verify MODEL`: compile to C, build for the host, run, compare every layer bit for bit.

    dory-verify model.onnx [--golden DIR] [--sanitize] [-p PIPELINE] [--keep DIR] [--target host|rv32-qemu]

The application runs on the golden input (`--golden`: DORY txt files; otherwise a seeded
random input); every layer's output is compared with the numpy golden model and, where a
golden file exists, with it. Exit 0 only if every value of every layer matches.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp, Signedness
from xdsl.passes import PassPipeline
from xdsl.utils.exceptions import DiagnosticException

from dory_mlir.backend import perf_report, rv32
from dory_mlir.backend.pulp_c import write_application
from dory_mlir.diagnostics import DoryError, one_line
from dory_mlir.dialects import qnn
from dory_mlir.golden.check import compare, find_test_sets, hwc_shape, read_input
from dory_mlir.golden.files import read_dory_txt, to_layout
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
        PassPipeline.parse_spec(passes, pipeline).apply(make_context(), module)
    except ValueError as e:
        raise DoryError(f"bad pipeline '{pipeline}': {e}") from None
    return module


def build(app: Path, sanitize: bool, target: str = "host") -> Path:
    if target == "rv32-qemu":  # rv32imc under QEMU: dory_mlir/backend/rv32.py
        return rv32.build_for_verify(app, sanitize)
    flags = "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" if sanitize else ""
    done = subprocess.run(["make", "-s", "-f", "Makefile.host", f"EXTRA_CFLAGS={flags}"], cwd=app,
                          capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise DoryError(f"the generated C does not build: {' | '.join(tail)}", str(app))
    return app / "network"


def element_dtype(value) -> np.dtype:
    ty = qnn.element_type(value)
    kind = "u" if ty.signedness.data == Signedness.UNSIGNED else "i"
    return np.dtype(f"{kind}{max(1, ty.width.data // 8)}")


def run_app(binary: Path, workdir: Path, x_hwc: np.ndarray, input_dtype: np.dtype) -> str:
    x_hwc.astype(input_dtype).tofile(workdir / "input.bin")
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


def verify(args: argparse.Namespace) -> int:
    golden_module = load_network(args.model, args.input_type)
    function = network_function(golden_module)
    layers = {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}
    in_type = function.function_type.inputs.data[0]
    in_shape = qnn.shape_of(in_type)
    compiled = compile_network(golden_module, args.passes or DEFAULT_PIPELINE)
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dory-verify-"))
    write_application(compiled, workdir)
    binary = build(workdir, args.sanitize, args.target)

    if args.golden:
        tests = [(t.label, read_input(t, in_shape, "HWC"), t) for t in find_test_sets(Path(args.golden))]
    else:
        lo, hi = qnn.int_range(qnn.element_type(in_type))
        rng = np.random.default_rng(args.seed)
        tests = [("random", rng.integers(lo, hi + 1, size=in_shape), None)]
    rows, failed = [], False
    for label, x, test in tests:
        run_app(binary, workdir, nchw_to_hwc(x), element_dtype(in_type))
        _, layer_outputs = run_network(golden_module, x)
        for index, layer in sorted(layers.items()):
            expected = layer_outputs[index]
            path = workdir / f"out_layer{index}.bin"
            got = np.fromfile(path, dtype=element_dtype(layer.output)).astype(np.int64) if path.exists() else np.array([])
            model_mismatch = int(np.count_nonzero(got != nchw_to_hwc(expected))) if got.size == expected.size else expected.size
            file_note = "-"
            if test is not None and index in test.layer_files:
                golden = read_dory_txt(test.layer_files[index])
                mismatches, layout, note = compare(expected, golden)
                file_note = note or f"{mismatches} ({layout})"
                failed |= bool(mismatches or note)
            failed |= model_mismatch > 0
            rows.append((label, str(index), layer.kind(), loc_name(layer) or "-", hwc_shape(expected.shape),
                         str(expected.size), str(model_mismatch), file_note))
    header = ("set", "layer", "op", "node", "shape (HWC)", "values", "C vs golden model", "golden file")
    table = [header] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    verdict = "FAIL" if failed else "PASS: bit-exact"
    print(f"{verdict}: {len(rows)} layer outputs of the generated C{' (ASan+UBSan)' if args.sanitize else ''} compared")
    if args.target == "rv32-qemu":  # instruction counts of the last run
        print("\n".join(perf_report.verify_report(workdir, layers)))
    if args.keep:
        print(f"application kept in {workdir}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dory-verify", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="network (.onnx or .mlir)")
    parser.add_argument("--golden", metavar="DIR", help="golden files (DORY txt) to run and compare against")
    parser.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    parser.add_argument("-p", "--passes", metavar="PIPELINE", help=f"compile pipeline (default: {DEFAULT_PIPELINE})")
    parser.add_argument("--input-type", metavar="TYPE", help="input element type (see dory-opt --help)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input when there is no --golden")
    parser.add_argument("--keep", metavar="DIR", help="write the application into DIR and keep it")
    parser.add_argument("--target", choices=["host", "rv32-qemu"], default="host",
                        help="host: gcc with the host runtime (default); rv32-qemu: rv32imc with the bare-metal "
                             "runtime under qemu-system-riscv32, with instruction counts per layer")
    args = parser.parse_args(argv)
    try:
        return verify(args)
    except DoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except DiagnosticException as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
