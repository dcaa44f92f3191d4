"""`dory-opt`: the compiler driver, xDSL's `xdsl-opt` with an ONNX frontend.

`dory-opt model.onnx --fuse` (every registered pass is also a flag, applied in
command-line order after any `-p` pipeline); `.onnx` and `.mlir` inputs; all of
xdsl-opt's options (`-p`, `--print-op-generic`, `--print-between-passes`, ...).
User errors print one `error:` line and exit 1; `-o` is written only on success.
"""

import argparse
import dataclasses
import io
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import ArgSpecParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from dory_mlir.cli import fewer_collections
from dory_mlir.diagnostics import DEBUG_FLAG, DEBUG_HELP, DoryError, check_mlir_text, one_line, run_tool
from dory_mlir.frontend.activation_modes import ACTIVATION_MODES, ACTIVATIONS_HELP
from dory_mlir.universe import DORY_UNIVERSE


class _DeferredOutput(io.StringIO):
    """Collects the output; the base driver's close() must not discard it."""

    def close(self) -> None:
        pass


def with_fuse_before_tile(pipeline: str) -> str:
    """The tile pass tiles layers and refuses ops outside them; the tool fuses the network first (`fuse`
    is idempotent) unless the pipeline already does."""
    names = [re.match(r"[\w-]*", stage).group(0) for stage in split_pipeline(pipeline)]
    if "tile" in names and "fuse" not in names[: names.index("tile")]:
        return f"fuse,{pipeline}"
    return pipeline


def split_pipeline(pipeline: str) -> list[str]:
    """The stages of a pass pipeline (commas inside a pass's `{options}` do not split)."""
    stages, depth, start = [], 0, 0
    for i, char in enumerate(pipeline):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            stages.append(pipeline[start:i])
            start = i + 1
    return [*stages, pipeline[start:]] if pipeline else []


def require_tile_pass(pipeline: str, flag: str) -> None:
    """A report of the tile pass needs the tile pass in the pipeline."""
    if not re.search(r"(^|,)tile(\{|,|$)", pipeline):
        raise DoryError(f"{flag} needs the tile pass (--tile or -p tile)")


def write_tile_report(path: Path, report: dict) -> None:
    """The tile pass's report: JSON, or the HTML page when the file name ends in .html."""
    if path.suffix == ".html":
        from dory_mlir.backend.html_report import render

        path.write_text(render(report, path.stem))
    else:
        path.write_text(json.dumps(report, indent=2) + "\n")


class DoryOptMain(xDSLOptMain):
    def __init__(self, args: Sequence[str] | None = None):
        super().__init__(description="dory-mlir: quantized networks to PULP code", args=args)

    def register_all_frontends(self) -> None:
        super().register_all_frontends()
        self.available_frontends["onnx"] = self.import_onnx

    def import_onnx(self, stream: IO[bytes]) -> ModuleOp:
        from dory_mlir.frontend.onnx_import import import_onnx_file  # onnx and numpy load only for .onnx input

        stream.close()
        return import_onnx_file(Path(self.args.input_file), self.args.input_type, self.args.activations)

    def parse_chunk(self, chunk: IO[bytes], file_extension: str, start_offset: int = 0) -> ModuleOp | None:
        source = self.args.input_file or "<stdin>"
        try:
            if file_extension == "mlir":
                data = chunk.read()
                text = data.decode() if isinstance(data, bytes) else data
                check_mlir_text(text, source)
                chunk = io.BytesIO(text.encode()) if isinstance(data, bytes) else io.StringIO(text)  # type: ignore[assignment]
            module = super().parse_chunk(chunk, file_extension, start_offset)
        except UnicodeDecodeError as e:
            raise DoryError(f"not a text file (byte {e.start} is not UTF-8); .mlir input is MLIR text", source) from None
        except (ValueError, OverflowError) as e:  # xDSL's attribute constructors reject out-of-range literals
            if isinstance(e, DoryError) or file_extension != "mlir":
                raise
            raise DoryError(f"invalid IR: {one_line(e)}", source) from None
        if module is not None and not self.args.verify_diagnostics and not self.args.disable_verify:
            from dory_mlir.ir_utils import verify_module  # (xdsl's arith dialect: not for --help)

            verify_module(module, self.args.input_file or "<stdin>")
        return module

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--input-type",
            metavar="TYPE",
            help="ONNX import: input element type ui8, si8, ui16 or si16, optionally ':BITS' "
            "(default: a DORY config beside the model, else ui8)",
        )
        arg_parser.add_argument("--activations", choices=ACTIVATION_MODES, default="exact", help=ACTIVATIONS_HELP)
        arg_parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
        arg_parser.add_argument(
            "--verify-each-pass",
            action="store_true",
            help="verify the whole module between every two passes (default: the input when it is parsed "
            "and the result of the pipeline; --disable-verify turns both off)",
        )
        arg_parser.add_argument(
            "--tile-report",
            metavar="FILE.json",
            help="write the per-layer tiling report of the tile pass ("
            "FILE.html: the HTML report)",
        )
        arg_parser.add_argument(
            "--report",
            metavar="FILE.html",
            help="write a self-contained HTML page of the tiling: L2 plan over time, L1 per layer, DMA traffic, "
            "tile grids (needs the tile pass)",
        )
        ours = set(DORY_UNIVERSE.all_passes)
        for name in self.available_passes:
            try:
                arg_parser.add_argument(
                    f"--{name}",
                    dest="pass_flags",
                    action="append_const",
                    const=name,
                    help=f"run the '{name}' pass" if name in ours else argparse.SUPPRESS,
                )
            except argparse.ArgumentError:
                continue  # a pass named like an existing option stays reachable through -p

    def setup_pipeline(self) -> None:
        flags = getattr(self.args, "pass_flags", None) or []
        if flags:
            self.args.passes = ",".join([p for p in [self.args.passes] if p] + flags)
        self.args.passes = with_fuse_before_tile(self.args.passes)
        if self.args.tile_report and self.args.report:
            raise DoryError("--tile-report and --report both name the tile pass's report: give one")
        if self.args.report and not self.args.report.endswith(".html"):
            raise DoryError("--report writes an HTML page: name a FILE.html (--tile-report FILE.json for JSON)",
                            self.args.report)
        if self.args.tile_report:
            require_tile_pass(self.args.passes, "--tile-report")
        if self.args.report:
            require_tile_pass(self.args.passes, "--report")
        super().setup_pipeline()
        self.pipeline = dataclasses.replace(self.pipeline, callback=self.verify_at_ends(self.pipeline.callback))

    def verify_at_ends(self, callback):
        """The base driver verifies the whole module before, between and after the passes: the input is
        verified when it is parsed, so only the pipeline's result is (every pass between with
        --verify-each-pass). Verifying a lowered network costs more than some passes do."""

        def at_ends(previous_pass, module, next_pass) -> None:
            disabled = self.args.disable_verify
            self.args.disable_verify = disabled or (next_pass is not None and not self.args.verify_each_pass)
            try:
                callback(previous_pass, module, next_pass)
            finally:
                self.args.disable_verify = disabled

        return at_ends

    def apply_passes(self, prog: ModuleOp) -> None:
        """Runs the pipeline; the tile pass's report (of its last run) is written where asked."""
        report_path = self.args.tile_report or self.args.report
        if report_path is None:
            return super().apply_passes(prog)
        from dory_mlir.passes.tile import collecting_tile_reports

        with collecting_tile_reports() as reports:
            super().apply_passes(prog)
        if reports:
            write_tile_report(Path(report_path), reports[-1])

    def writes_directory(self) -> bool:
        """`-t pulp-c -o DIR` writes an application into DIR, not a file."""
        return self.args.target.split("{")[0] == "pulp-c"

    def prepare_output(self) -> IO[str]:
        return sys.stdout if self.args.output_file is None or self.writes_directory() else _DeferredOutput()

    def output_resulting_program(self, prog: ModuleOp) -> str:
        if self.writes_directory():
            from dory_mlir.backend.pulp_c import PulpCTarget

            unlowered = next((op for op in prog.walk() if op.name.startswith("qnn.")), None)
            if unlowered is not None:
                from dory_mlir.ir_utils import op_where

                raise DoryError(f"-t pulp-c emits lowered IR, but '{op_where(unlowered)}' is not lowered: "
                                "add the lowering (--tile --lower-to-pulp, or -p tile,lower-to-pulp)",
                                self.args.input_file or "<stdin>")

            output = io.StringIO()
            PulpCTarget(output_dir=self.args.output_file or "out").emit(self.ctx, prog, output)
            return output.getvalue()
        return super().output_resulting_program(prog)

    def check_output_path(self) -> None:
        """`-o` must name what the target writes (a folder for -t pulp-c, else a file): checked before any work."""
        if self.args.output_file is None:
            return
        path = Path(self.args.output_file)
        if self.writes_directory() and path.exists() and not path.is_dir():
            raise DoryError("-o names an existing file; -t pulp-c writes an application folder", str(path))
        if not self.writes_directory() and path.is_dir():
            raise DoryError("-o names a folder; the IR is written to a file (-t pulp-c writes a folder)", str(path))

    def run(self) -> None:
        self.check_output_path()
        if self.args.input_file is not None and self.args.frontend is None:
            extension = Path(self.args.input_file).suffix.lstrip(".")
            if extension not in self.available_frontends:
                raise DoryError(
                    f"unknown input kind '.{extension}' (expected {', '.join('.' + f for f in self.available_frontends)})",
                    self.args.input_file,
                )
        output = self.prepare_output()
        self.prepare_output = lambda: output  # type: ignore[method-assign]
        super().run()
        if isinstance(output, _DeferredOutput):
            Path(self.args.output_file).write_text(output.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    """Every exception becomes one line: `error:` (exit 1) or `internal error:` (exit 2, see diagnostics)."""
    driver: DoryOptMain | None = None

    def body() -> int:
        nonlocal driver
        try:
            driver = DoryOptMain(args=argv)
        except (ValueError, ArgSpecParseError) as e:  # an unknown pass or bad pass options
            raise DoryError(one_line(e)) from None
        driver.run()
        return 0

    def source() -> str | None:
        return driver.args.input_file if driver is not None else None

    with fewer_collections():
        return run_tool(body, argv, source)


if __name__ == "__main__":
    sys.exit(main())
