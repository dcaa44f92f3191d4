"""Command-line entry points of dory-mlir: each module reads its arguments and calls the library."""

from __future__ import annotations

import argparse
import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence

from dory_mlir.diagnostics import run_tool

# The passes the tools compile a network with unless told otherwise (`-p`).
DEFAULT_PIPELINE = "tile,lower-to-pulp"


# The cyclic collector's thresholds while a tool runs. A compile allocates many small IR objects that
# live until the end; with the default (700, 10, 10) the collector runs thousands of times and scans
# them again and again (about 6 % of a dronet compile). Garbage cycles are still collected, less often.
TOOL_GC_THRESHOLDS = (20_000, 20, 100)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raises the collector's thresholds for a tool's run, and restores them after (tools also run in-process)."""
    previous = gc.get_threshold()
    gc.set_threshold(*TOOL_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def run_command(parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
                command: Callable[[argparse.Namespace], int], argv: Sequence[str] | None) -> int:
    """Parses the arguments and runs the command; errors are one line naming the model (`run_tool`)."""
    args = None

    def body() -> int:
        nonlocal args
        args = parse_args(argv)
        return command(args)

    with fewer_collections():
        return run_tool(body, argv, lambda: str(args.model) if args is not None else None)
