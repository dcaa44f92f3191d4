"""Command-line entry points of dory-mlir: each module reads its arguments and calls the library."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from dory_mlir.diagnostics import run_tool

# The passes the tools compile a network with unless told otherwise (`-p`).
DEFAULT_PIPELINE = "tile,lower-to-pulp"


def run_command(parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
                command: Callable[[argparse.Namespace], int], argv: Sequence[str] | None) -> int:
    """Parses the arguments and runs the command; errors are one line naming the model (`run_tool`)."""
    args = None

    def body() -> int:
        nonlocal args
        args = parse_args(argv)
        return command(args)

    return run_tool(body, argv, lambda: str(args.model) if args is not None else None)
