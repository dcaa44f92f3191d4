"""`dory-quantize FLOAT.onnx -o OUT`: a float model to PULP C in one command.

    dory-quantize float.onnx [--calibration DIR | --samples N --seed S] [--format qdq|qoperator]
                  [--activations uint8|int8] [--per-tensor] [--asymmetric-weights] [--reduce-range]
                  [-p PIPELINE] -o OUT

Quantizes with onnxruntime (static, MinMax calibration on the `.npy` inputs of DIR, or on N seeded
random N(0, 1) inputs; int8 weights, per channel and symmetric unless told otherwise) into
OUT/model.quant.onnx, then compiles that exactly as
`dory-opt OUT/model.quant.onnx -p PIPELINE -t pulp-c -o OUT/app` (default pipeline `tile,lower-to-pulp`)
into the C application OUT/app. Errors are one line and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dory_mlir.cli import DEFAULT_PIPELINE, opt, run_command
from dory_mlir.diagnostics import DEBUG_FLAG, DEBUG_HELP, DoryError, Progress
from dory_mlir.quantize import ACTIVATIONS, FORMATS, QuantizeOptions, quantize

QUANTIZED_NAME = "model.quant.onnx"
APP_DIR = "app"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dory-quantize", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("model", type=Path, help="float ONNX model (one input, static shape)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                        help=f"output folder: OUT/{QUANTIZED_NAME} and the C application OUT/{APP_DIR}")
    calibration = parser.add_mutually_exclusive_group()
    calibration.add_argument("--calibration", type=Path, metavar="DIR", help="folder of .npy sample inputs")
    calibration.add_argument("--samples", type=int, default=16, metavar="N",
                             help="without --calibration: N seeded random N(0, 1) inputs (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random calibration inputs")
    parser.add_argument("--format", choices=FORMATS, default="qdq", help="ONNX quantization format (default qdq)")
    parser.add_argument("--activations", choices=ACTIVATIONS, default="uint8", help="activation type (default uint8)")
    parser.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor, not per channel")
    parser.add_argument("--asymmetric-weights", action="store_true", help="weights with zero points")
    parser.add_argument("--reduce-range", action="store_true",
                        help="weights in [-64, 64], so that onnxruntime on x86 without VNNI computes exactly (for dory-verify)")
    parser.add_argument("-p", "--passes", default=DEFAULT_PIPELINE, metavar="PIPELINE",
                        help=f"compile pipeline (default: {DEFAULT_PIPELINE})")
    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


def run(args: argparse.Namespace) -> int:
    if args.output.exists() and not args.output.is_dir():
        raise DoryError("-o names an existing file; it must be a folder (created if missing)", str(args.output))
    options = QuantizeOptions(format=args.format, activations=args.activations, per_channel=not args.per_tensor,
                              symmetric_weights=not args.asymmetric_weights, reduce_range=args.reduce_range)
    progress = Progress("dory-quantize")  # on stderr when it is a terminal
    quantized = quantize(args.model, args.output / QUANTIZED_NAME, options, calibration=args.calibration,
                         samples=args.samples, seed=args.seed, progress=progress)
    progress.done()
    calibrated_on = str(args.calibration) if args.calibration else f"{args.samples} random inputs (seed {args.seed})"
    weights = f"{'per-channel' if options.per_channel else 'per-tensor'} int8 weights{' in [-64, 64]' if options.reduce_range else ''}"
    print(f"quantized: {quantized} ({options.format.upper()}, {options.activations} activations, {weights}, "
          f"calibrated on {calibrated_on})")
    app = args.output / APP_DIR
    status = opt.main([str(quantized), "-p", args.passes, "-t", "pulp-c", "-o", str(app),
                            *([DEBUG_FLAG] if args.debug else [])])
    if status == 0:
        print(f"application: {app} (host build: make -C {app} -f Makefile.host)")
    return status


if __name__ == "__main__":
    sys.exit(main())
