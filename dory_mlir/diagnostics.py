"""User-facing diagnostics: one-line errors and warnings, never tracebacks.

Every error a user can cause (bad model, bad input file, a layer that cannot fit)
is raised as `DoryError`; the command-line tools print it as `error: ...` and exit 1.
"""

import sys


class DoryError(Exception):
    """An error in the user's input, reported as one line naming its source."""

    def __init__(self, message: str, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


def warn(message: str, where: str | None = None) -> None:
    print(f"warning: {where}: {message}" if where else f"warning: {message}", file=sys.stderr)


def one_line(error: BaseException) -> str:
    """xDSL parse/verify errors as one line: `file:line:col: message` or the first line."""
    from xdsl.utils.exceptions import ParseError

    if isinstance(error, ParseError):
        return f"{str(error).strip().splitlines()[0]}: {error.msg}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
