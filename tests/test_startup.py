"""Start-up cost is imports: a command loads only what it uses (issue 13). Checked by the modules a
fresh interpreter has loaded, not by timing (tests do not time things)."""

import json
import subprocess
import sys
from pathlib import Path

FILECHECK_INPUT = Path(__file__).parent / "filecheck" / "passes" / "tile.mlir"


def loaded_modules(code: str) -> set[str]:
    script = f"import sys, json, contextlib, io\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def run_dory_opt(args: list[str]) -> str:
    return (f"from dory_mlir.cli.opt import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    main({args!r})")


def test_help_loads_neither_onnx_nor_the_interpreter():
    modules = loaded_modules(
        "from dory_mlir.cli.opt import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert "onnx" not in modules
    assert "xdsl.interpreter" not in modules
    assert not {"numpy", "z3", "xdsl.dialects.arith"} & modules, "--help loads no pass, solver or dialect of ours"


def test_compiling_mlir_to_c_loads_neither_onnx_nor_the_interpreter(tmp_path):
    modules = loaded_modules(run_dory_opt([str(FILECHECK_INPUT), "--tile", "--lower-to-pulp", "-t", "pulp-c",
                                           "-o", str(tmp_path / "app")]))
    assert (tmp_path / "app").is_dir()
    assert "onnx" not in modules
    assert "xdsl.interpreter" not in modules


def test_verification_of_the_result_by_default_and_of_each_pass_on_request(monkeypatch, tmp_path):
    """The whole module is verified once after the pipeline (the input when parsed), between every
    two passes with --verify-each-pass."""
    from xdsl.dialects.builtin import ModuleOp

    from dory_mlir.cli.opt import main

    calls = []
    original = ModuleOp.verify
    monkeypatch.setattr(ModuleOp, "verify", lambda self: (calls.append(1), original(self))[1])
    out = tmp_path / "out.mlir"
    assert main([str(FILECHECK_INPUT), "--tile", "--lower-to-pulp", "-o", str(out)]) == 0
    default = len(calls)
    calls.clear()
    assert main([str(FILECHECK_INPUT), "--tile", "--lower-to-pulp", "--verify-each-pass", "-o", str(out)]) == 0
    assert len(calls) == default + 3  # before the first pass and between the three (--tile: fuse, tile)


def test_golden_tool_help_loads_neither_onnx_nor_the_interpreter():
    modules = loaded_modules(
        "from dory_mlir.cli.golden import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert "onnx" not in modules and "xdsl.interpreter" not in modules


def test_verify_tool_help_loads_neither_onnx_nor_numpy():
    modules = loaded_modules(
        "from dory_mlir.cli.verify import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert "onnx" not in modules and "numpy" not in modules and "xdsl.interpreter" not in modules


def test_progress_only_on_a_terminal():
    import io

    from dory_mlir.diagnostics import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, terminal = io.StringIO(), Terminal()
    for stream in (piped, terminal):
        progress = Progress("dory-verify", stream)
        progress("running", 1, 3)
        progress.done()
    assert piped.getvalue() == ""
    assert "dory-verify: running 1/3" in terminal.getvalue() and terminal.getvalue().endswith("\r\033[K")


def test_loading_mlir_input_loads_no_onnx():
    """`.mlir` input goes through xDSL's parser: the ONNX importer (and onnx) load only for `.onnx` input."""
    modules = loaded_modules(
        "from pathlib import Path\n"
        "from dory_mlir.pipeline import load_network\n"
        f"load_network(Path({str(FILECHECK_INPUT)!r}))"
    )
    assert "onnx" not in modules and "dory_mlir.frontend.onnx_import" not in modules
