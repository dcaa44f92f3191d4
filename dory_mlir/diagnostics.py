"""User-facing diagnostics: one-line errors and warnings, never tracebacks.

Every error a user can cause (bad model, bad input file, a layer that cannot fit)
is raised as `DoryError`; the command-line tools print it as `error: ...` and exit 1.
Anything else that escapes a tool is a bug of the compiler: `run_tool` prints it as
`internal error: <file>: <where>: <exception>` and exits 2, with the Python traceback
only when `--debug` is on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

from xdsl.utils.exceptions import PassFailedException

EXIT_ERROR = 1  # the user's input
EXIT_INTERNAL = 2  # a bug of the compiler
DEBUG_FLAG = "--debug"
DEBUG_HELP = "on an internal error, print the Python traceback"


class DoryError(Exception):
    """An error in the user's input, reported as one line naming its source."""

    def __init__(self, message: str, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class PassError(DoryError, PassFailedException):
    """A pass that cannot handle its input: xDSL's `PassFailedException`, reported by the tools as one
    line naming the op (`where`: its location, e.g. `node 'Conv_3' (Conv)`)."""


class InternalError(Exception):
    """A compiler bug caught where its context is known (e.g. the ONNX node being imported)."""

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


def check_mlir_text(text: str, source: str) -> None:
    """Refuses MLIR text with an unterminated string literal (strings do not span lines), which xDSL's
    lexer would take exponential time to reject (a file cut inside a `dense<"0x...">` constant)."""
    for number, line in enumerate(text.splitlines(), start=1):
        in_string, escaped, start = False, False, 0
        for column, char in enumerate(line):
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string, start = True, column
            elif line.startswith("//", column):
                break
        if in_string:
            raise DoryError(f"{number}:{start + 1}: unterminated string literal (is the file truncated?)", source)


def _single_line(text: str) -> str:
    """A message on one line (a multi-line message keeps its lines, joined by ' | ')."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " | ".join(lines)


def describe_exception(error: BaseException) -> str:
    """`KeyError: 'to'`: the exception's type and first line."""
    text = _single_line(str(error))
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _innermost_op(tb: TracebackType | None) -> str | None:
    """The innermost xDSL operation a failing frame was working on, as `qnn.conv at loc("Conv_3")`."""
    try:
        from xdsl.dialects.builtin import NameLoc
        from xdsl.ir import Operation
    except ImportError:  # pragma: no cover - xDSL is a dependency
        return None
    found = None
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, Operation) and value.name != "builtin.module":
                found = value
                break
        tb = tb.tb_next
    if found is None:
        return None
    location = getattr(found, "location", None)
    if isinstance(location, NameLoc):
        return f'{found.name} at loc("{location.desc.data}")'
    return found.name


class _ArgumentError(Exception):
    """A command-line mistake, raised instead of argparse's usage message and exit code 2."""


def _argparse_error(parser: argparse.ArgumentParser, message: str):
    raise _ArgumentError(f"{parser.prog}: {message} (see --help)")


@contextlib.contextmanager
def _one_line_argparse() -> Iterator[None]:
    original = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _argparse_error  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = original  # type: ignore[method-assign]


def run_tool(body: Callable[[], int | None], argv: Sequence[str] | None,
             source: Callable[[], str | None] | str | None = None) -> int:
    """Runs a tool's body; every exception that escapes becomes one line on stderr.

    `DoryError` and xDSL's parse/verify diagnostics (the user's input): `error: ...`, exit 1.
    Anything else (a bug): `internal error: <source>: <op>: <exception>`, exit 2, and the
    traceback only when `--debug` is in `argv`. `source` names the input file (or returns it).
    """
    from xdsl.utils.exceptions import DiagnosticException, ParseError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    try:
        try:
            with _one_line_argparse():
                status = body()
        finally:
            Progress.clear_all()  # an error line must not follow a progress line on the terminal
        return 0 if status is None else int(status)
    except DoryError as e:
        print(f"error: {_single_line(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except _ArgumentError as e:
        print(f"error: {_single_line(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except (ParseError, DiagnosticException) as e:
        print(f"error: {_single_line(one_line(e))}", file=sys.stderr)
        return EXIT_ERROR
    except SystemExit as e:  # --help, --version, or a library calling exit()
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(f"error: {_single_line(str(code))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file the user named cannot be read or written
        if debug:
            traceback.print_exc()
        name = e.filename if e.filename is not None else (source() if callable(source) else source)
        reason = e.strerror or describe_exception(e)
        print(f"error: {_single_line(f'{name}: {reason}' if name else reason)}", file=sys.stderr)
        return EXIT_ERROR
    except BaseException as e:  # noqa: BLE001 - the one place every bug is reported
        if debug:
            traceback.print_exc()
        try:
            where = source() if callable(source) else source
        except Exception:  # noqa: BLE001 - the report must not fail
            where = None
        if isinstance(e, InternalError):
            parts = [None if e.where else where, str(e)]
        else:
            parts = [where, _innermost_op(e.__traceback__), describe_exception(e)]
        message = ": ".join(_single_line(str(p)) for p in parts if p)
        hint = "" if debug else f" (run with {DEBUG_FLAG} for the traceback)"
        print(f"internal error: {message}{hint}", file=sys.stderr)
        return EXIT_INTERNAL


class Progress:
    """What a long command is doing, on one rewritten line of stderr when stderr is a terminal (stage, and
    item k/N); nothing otherwise, so logs and pipes stay clean."""

    _shown: list[Progress] = []

    @classmethod
    def clear_all(cls) -> None:
        for progress in list(cls._shown):
            progress.done()

    def __init__(self, tool: str, stream=None):
        self.tool = tool
        self.stream = stream if stream is not None else sys.stderr
        self.active = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = False

    def __call__(self, stage: str, item: int | None = None, total: int | None = None) -> None:
        if not self.active:
            return
        count = f" {item}/{total}" if item is not None and total is not None else ""
        self.stream.write(f"\r\033[K{self.tool}: {stage}{count}")
        self.stream.flush()
        if not self.shown:
            Progress._shown.append(self)
        self.shown = True

    def done(self) -> None:
        """Clears the line before the command's own output."""
        if self.active and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False
            Progress._shown.remove(self)
