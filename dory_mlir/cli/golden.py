"""`dory-golden MODEL --check DIR`: the golden model against a folder of golden files."""

import argparse
import sys
from pathlib import Path

from dory_mlir.cli import run_command
from dory_mlir.diagnostics import DEBUG_FLAG, DEBUG_HELP
from dory_mlir.frontend.activation_modes import ACTIVATION_MODES, ACTIVATIONS_HELP


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dory-golden",
        description="Run the exact integer golden model of a network and compare every layer with golden files.",
    )
    parser.add_argument("model", type=Path, help="network (.onnx or .mlir)")
    parser.add_argument("--check", type=Path, required=True, metavar="DIR",
                        help="folder with DORY txt goldens (input.txt / out_layerN.txt, or input_K.txt / "
                             "out_K_layerN.txt) or the npz form (inputs.npz, outputs.npz, activations.npz)")
    parser.add_argument("--input-type", metavar="TYPE",
                        help="input element type: ui8, si8, ui16 or si16, optionally ':BITS' (default: a DORY "
                             "config beside the model, else the narrowest type holding an npz input's values, "
                             "else ui8)")
    parser.add_argument("--activations", choices=ACTIVATION_MODES, default="exact", help=ACTIVATIONS_HELP)
    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    return parser.parse_args(argv)


def check(args: argparse.Namespace) -> int:
    # Loaded after the arguments: --help and usage errors need neither onnx nor the interpreter.
    from dory_mlir.golden.check import check_folder
    from dory_mlir.golden.npz import input_type_for, is_npz_folder
    from dory_mlir.pipeline import load_network

    input_type = args.input_type or (input_type_for(args.check, args.model) if is_npz_folder(args.check) else None)
    report = check_folder(load_network(args.model, input_type, args.activations), args.check, args.model)
    print(report.table())
    print(report.summary())
    return 0 if report.passed() else 1


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, check, argv)


if __name__ == "__main__":
    sys.exit(main())
