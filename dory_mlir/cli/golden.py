"""`dory-golden MODEL --check DIR`: the golden model against a folder of golden files."""

import argparse
import sys
from pathlib import Path

from dory_mlir.diagnostics import DEBUG_FLAG, DEBUG_HELP, run_tool
from dory_mlir.frontend.activation_modes import ACTIVATION_MODES, ACTIVATIONS_HELP


def main(argv: list[str] | None = None) -> int:
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
    args = None

    def body() -> int:
        nonlocal args
        args = parser.parse_args(argv)
        # Loaded after the arguments: --help and usage errors need neither onnx nor the interpreter.
        from dory_mlir.golden.check import check_folder
        from dory_mlir.golden.npz import input_type_for, is_npz_folder
        from dory_mlir.pipeline import load_network

        input_type = args.input_type or (input_type_for(args.check, args.model) if is_npz_folder(args.check) else None)
        report = check_folder(load_network(args.model, input_type, args.activations), args.check, args.model)
        print(report.table())
        compared = sum(r.compared for r in report.rows)
        mismatched = sum(1 for r in report.rows if not r.skipped and (r.mismatches or r.note))
        verdict = "PASS: bit-exact" if report.passed() else "FAIL"
        print(f"{verdict}: {len(report.rows)} tensors, {compared} values compared, {mismatched} tensors differ")
        return 0 if report.passed() else 1

    return run_tool(body, argv, lambda: str(args.model) if args is not None else None)

if __name__ == "__main__":
    sys.exit(main())
