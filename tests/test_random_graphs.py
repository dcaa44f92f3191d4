"""Seeded fuzz test of whole graphs (issue 11, item 10): random small NEMO- and QuantLib-format networks
(`dory_mlir/examples/random_graphs.py`) through import + `dory-golden --check` and `dory-verify --sanitize`.

Each seed must end in one of two ways:
- PASS: the golden model equals the goldens of onnx's ReferenceEvaluator on every layer, and the generated
  C (ASan+UBSan) equals the golden model on every layer;
- a clean refusal, one stderr line `error: ...` and exit 1, and only for a graph that holds one of the
  constructs of `EXPECTED_REFUSALS` (with that construct's message), or a tiling budget too small for the graph
  on the pipelines of `BUDGET_REFUSALS` (tiny L1/L2 budgets).
Seeds of `KNOWN_FAILURES` (run as well when beyond `SEEDS`) are expected to fail (strict xfail: fixing one
makes the test say so); `REGRESSION_SEEDS` are seeds beyond `SEEDS` that once found a bug.

Reproduce seed N (the test id is the seed), then look at the graph and run the tools by hand:

    .venv/bin/python -m pytest -q tests/test_random_graphs.py -k 'seed_N]'
    .venv/bin/python -m dory_mlir.examples.random_graphs N /tmp/graph_N   # prints the dory-verify command
"""

import contextlib
import io
import subprocess
from pathlib import Path

import pytest

from conftest import tiered
from dory_mlir.examples.random_graphs import BOUND_DEPENDENT_REFUSALS, KNOWN_FAILURES, REGRESSION_SEEDS, RandomGraph, random_graph
from dory_mlir.cli import golden as dory_golden, verify as dory_verify

# make test: seeds 0-15 (about 4 s of CPU each on the 2-core machine); make test-full: 0-99.
SEEDS = range(100)
CI_SEEDS = range(16)


def run_tool(main, argv: list[str]) -> subprocess.CompletedProcess:
    """A tool's main() in this process, as its console script runs it: status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def refusal_line(done: subprocess.CompletedProcess) -> str | None:
    """The error line of a clean refusal (exit 1, exactly one `error:` line besides warnings), else None."""
    lines = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
    if done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr:
        return lines[0]
    return None


def passed(done: subprocess.CompletedProcess) -> bool:
    return done.returncode == 0 and "PASS: bit-exact" in done.stdout and "FAIL" not in done.stdout


def check(graph: RandomGraph, tool: str, done: subprocess.CompletedProcess) -> str | None:
    """None if the tool passed; its error line if it refused the graph as allowed; an assertion otherwise."""
    if passed(done):
        return None
    line = refusal_line(done)
    report = f"{graph.describe()}\n{tool} exit {done.returncode}\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
    assert line is not None, f"neither PASS nor a clean one-line refusal: {report}"
    allowed = graph.allowed_refusals()
    assert allowed, f"a supported graph was refused: {report}"
    assert any(fragment in line for fragment in allowed), f"refused for another reason than {allowed}: {report}"
    return line


def seed_params() -> list:
    seeds = sorted(set(SEEDS) | set(REGRESSION_SEEDS) | set(KNOWN_FAILURES))
    params = tiered(seeds, CI_SEEDS, [f"seed_{seed}" for seed in seeds])
    return [pytest.param(*p.values, id=p.id, marks=(*p.marks, pytest.mark.xfail(reason=KNOWN_FAILURES[p.values[0]], strict=True)))
            if p.values[0] in KNOWN_FAILURES else p for p in params]


def run_seed(seed: int, tmp_path: Path) -> str:
    """Seed's graph through dory-golden and dory-verify: "PASS" or the allowed refusal's line (else an assertion)."""
    graph = random_graph(seed)
    model = graph.write(tmp_path / "graph")
    input_types = ["--input-type", ",".join(graph.input_types)]
    golden = run_tool(dory_golden.main, [str(model), "--check", str(model.parent), *input_types])
    refused = check(graph, "dory-golden", golden)
    if refused:
        return refused
    uncompared = [line for line in golden.stdout.splitlines() if "not compared" in line or "matches no node" in line]
    assert not uncompared, f"{graph.describe()}: goldens left uncompared: {uncompared}"
    argv = [str(model), "--golden", str(model.parent), "--sanitize", "--keep", str(tmp_path / "app"), *input_types]
    argv += ["-p", graph.pipeline] if graph.pipeline else []
    refused = check(graph, "dory-verify", run_tool(dory_verify.main, argv))
    assert refused or not graph.refusal or graph.refusal in BOUND_DEPENDENT_REFUSALS, f"expected a refusal ({graph.refusal}), got PASS: {graph.describe()}"
    return refused or "PASS"


@pytest.mark.parametrize("seed", seed_params())
def test_random_graph(seed: int, tmp_path: Path):
    run_seed(seed, tmp_path)
