"""`dory-verify MODEL`: compile to C, build for the host, run, compare every layer bit for bit.

    dory-verify model.onnx [--golden DIR] [--sanitize] [-p PIPELINE] [--keep DIR] [--target host|rv32-qemu]

The application runs on the golden input (`--golden`: DORY txt files or the npz form of
QuantLib/Deeploy exports; otherwise a seeded random input); every layer's output is
compared with the numpy golden model and, where a golden tensor exists, with it. Exit 0 only if every value of every layer matches.

A quantized model with a float input (QDQ/QOperator, starting with QuantizeLinear) runs on a float
input (`--input X.npy`, else seeded random) and is also compared with onnxruntime.
The work is `dory_mlir/verify.py` and `dory_mlir/verify_onnxruntime.py`; this module only reads the
command line (numpy, onnx and the compiler load after it: `--help` and usage errors need none of them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from dory_mlir.cli import DEFAULT_PIPELINE, run_command
from dory_mlir.diagnostics import DEBUG_FLAG, DEBUG_HELP, DoryError
from dory_mlir.frontend.activation_modes import ACTIVATION_MODES, ACTIVATIONS_HELP

TARGETS = ("host", "rv32-qemu")  # dory_mlir/backend/build.py's build_for_verify


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dory-verify", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="network (.onnx or .mlir)")
    parser.add_argument("--golden", type=Path, metavar="DIR",
                        help="golden files to run and compare against: DORY txt (input.txt, out_layerN.txt) "
                             "or npz (inputs.npz, outputs.npz, activations.npz)")
    parser.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    parser.add_argument("-p", "--passes", metavar="PIPELINE", default=DEFAULT_PIPELINE,
                        help=f"compile pipeline (default: {DEFAULT_PIPELINE})")
    parser.add_argument("--input-type", metavar="TYPE", help="input element type (see dory-opt --help)")
    parser.add_argument("--activations", choices=ACTIVATION_MODES, default="exact", help=ACTIVATIONS_HELP)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input when there is no --golden")
    parser.add_argument("--input", type=Path, metavar="X.npy",
                        help="float input of a quantized model with a float input (compared with onnxruntime)")
    parser.add_argument("--reference", choices=["auto", "onnx", "onnxruntime"], default="auto",
                        help="reference of a quantized model with a float input: onnxruntime, or onnx's exact "
                             "ReferenceEvaluator (auto: onnx where onnxruntime's u8s8 kernels saturate, x86 without VNNI)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="write the application into DIR and keep it")
    parser.add_argument("--report", type=Path, metavar="FILE.html",
                        help="write the HTML report of the tiling with the per-layer comparison (and, with "
                             "--target rv32-qemu, instruction counts)")
    parser.add_argument("--target", choices=TARGETS, default="host",
                        help="host: gcc with the host runtime (default); rv32-qemu: rv32imc with the bare-metal "
                             "runtime under qemu-system-riscv32, with instruction counts per layer")
    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    if args.report and args.report.suffix != ".html":
        raise DoryError("--report writes an HTML page: name a FILE.html", str(args.report))
    if args.keep and args.keep.exists() and not args.keep.is_dir():
        raise DoryError("--keep names an existing file; it must be a folder (created if missing)", str(args.keep))
    return args


def verify(args: argparse.Namespace) -> int:
    from dory_mlir.verify import VerifyOptions, verify_with_goldens
    from dory_mlir.verify_onnxruntime import float_input_quantizer, verify_with_onnxruntime

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="dory-verify-"))
    pipeline = args.passes
    if args.report:  # the tile pass's report, to which the comparisons are added
        from dory_mlir.cli.opt import require_tile_pass

        require_tile_pass(pipeline, "--report")
    options = VerifyOptions(pipeline=pipeline, input_type=args.input_type, activations=args.activations,
                            golden=args.golden, seed=args.seed, sanitize=args.sanitize, target=args.target,
                            report=args.report, keep=args.keep is not None, float_input=args.input,
                            reference=args.reference)
    quantizer = float_input_quantizer(args.model, options)
    if quantizer is not None:  # a quantized model with a float input: against onnxruntime
        return verify_with_onnxruntime(args.model, workdir, options, quantizer)
    return verify_with_goldens(args.model, workdir, options)


def main(argv: list[str] | None = None) -> int:
    # DoryError and xDSL diagnostics: one `error:` line, exit 1; anything else `internal error:`, exit 2.
    return run_command(parse_args, verify, argv)


if __name__ == "__main__":
    sys.exit(main())
