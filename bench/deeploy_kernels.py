"""Classifies Deeploy's integer kernel tests (../shared/models/deeploy-kernels) in one command.

    .venv/bin/python bench/deeploy_kernels.py [ROOT] [--verify [--sanitize] [--target rv32-qemu]] [--jobs N] [--filter TEXT]

For every folder: its op types, `dory-golden --check` (and with `--verify`, `dory-verify`: the
generated C bit-exact) and, when a tool fails, the first line of its error. A result is
PASS, FAIL (the tool ran and values differ), ERROR (a clean one-line `error:`), or CRASH
(anything else: an internal error or a traceback, which must never happen). Exit status 1
if any folder CRASHes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = Path(os.environ.get("DORY_SHARED_MODELS", REPO.parent / "shared" / "models")) / "deeploy-kernels"
TOOL = [sys.executable, "-m"]  # the tools of this environment (PYTHONPATH is honoured)


@dataclass(frozen=True)
class Outcome:
    result: str  # PASS, FAIL, ERROR, CRASH, -
    detail: str
    seconds: float


def classify(done: subprocess.CompletedProcess | None, seconds: float) -> Outcome:
    if done is None:
        return Outcome("CRASH", "timed out", seconds)
    err = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    if done.returncode == 0:
        return Outcome("PASS", "", seconds)
    if done.returncode == 1 and len(err) == 1 and err[0].startswith("error: "):
        return Outcome("ERROR", err[0][len("error: "):], seconds)
    if done.returncode == 1 and not err and "FAIL" in done.stdout:
        last = [line for line in done.stdout.splitlines() if line.strip()][-1]
        return Outcome("FAIL", last, seconds)
    first = err[0] if err else (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return Outcome("CRASH", f"exit {done.returncode}: {first}", seconds)


def run(command: list[str], timeout: int) -> Outcome:
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        done = None
    return classify(done, time.monotonic() - start)


def op_types(folder: Path) -> str:
    try:
        model = onnx.load(str(folder / "network.onnx"), load_external_data=False)
    except Exception:  # noqa: BLE001 - reported by the tools
        return "?"
    return ",".join(sorted({node.op_type for node in model.graph.node}))


def check(folder: Path, verify: list[str] | None, timeout: int) -> tuple[str, str, Outcome, Outcome | None]:
    """`verify`: None, or dory-verify's extra options (`--sanitize`, `--target rv32-qemu`)."""
    model = folder / "network.onnx"
    golden = run([*TOOL, "dory_mlir.cli.golden", str(model), "--check", str(folder)], timeout)
    verified = None
    if verify is not None:
        verified = run([*TOOL, "dory_mlir.cli.verify", str(model), "--golden", str(folder), *verify], timeout) \
            if golden.result == "PASS" else Outcome("-", "", 0.0)
    return folder.name, op_types(folder), golden, verified


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--verify", action="store_true", help="also run dory-verify where dory-golden passes")
    parser.add_argument("--sanitize", action="store_true", help="dory-verify builds with ASan+UBSan")
    parser.add_argument("--target", choices=("host", "rv32-qemu"), default="host", help="dory-verify's target")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--filter", default="", help="only folders whose name contains TEXT")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args(argv)
    folders = sorted(p for p in args.root.iterdir() if p.is_dir() and args.filter in p.name) if args.root.is_dir() else []
    if not folders:
        print(f"no test folders under {args.root}", file=sys.stderr)
        return 1
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        options = (["--sanitize"] if args.sanitize else []) + ["--target", args.target]
        rows = list(pool.map(lambda f: check(f, options if args.verify else None, args.timeout), folders))
    header = ["folder", "ops", "dory-golden"] + (["dory-verify"] if args.verify else []) + ["first line of the error"]
    table = [header]
    for name, ops, golden, verified in rows:
        detail = golden.detail or (verified.detail if verified else "")
        table.append([name.removeprefix("Kernels-Integer-"), ops, golden.result]
                     + ([verified.result] if verified else []) + [detail[:140]])
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    results = [golden.result for _, _, golden, _ in rows] + [v.result for *_, v in rows if v]
    counts = {r: results.count(r) for r in ("PASS", "FAIL", "ERROR", "CRASH")}
    print(f"{len(rows)} folders: " + ", ".join(f"{n} {r}" for r, n in counts.items()))
    return 1 if counts["CRASH"] else 0


if __name__ == "__main__":
    sys.exit(main())
