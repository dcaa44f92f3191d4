"""Generated code on 32-bit RISC-V under QEMU (DESIGN.md §7, issue 6).

- The bare-metal PMSIS runtime (dory_mlir/runtime/rv32) keeps the host runtime's contract: the
  scenarios of tests/host_runtime/runtime_checks.c run under qemu-system-riscv32 and must pass,
  or stop with the host runtime's messages (prefix "pmsis-rv32: ") and exit statuses; plus what
  only the rv32 runtime has: cluster stacks of the target's sizes, cores switched at barriers,
  hidden emulation instructions.
- Networks (the generated examples with tiny L1/L2 budgets that stream from L3, three shared
  networks at 8 kB L1 and one at the default budgets) and seeded random single layers are
  bit-exact with the golden model when built for rv32imc and run under QEMU.
- The instruction counts are printed per layer and checked for consistency only (kernels inside
  their layer, one kernel call per core, identical run after run), never as timings.

Skipped only when the toolchain is absent; `make test` installs it (`make riscv-toolchain`).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import DORY_NETWORKS, EXAMPLE_NAMES, needs_shared, onnx_file, tiered, tool
from dory_mlir.backend import build, rv32
from dory_mlir.backend.build import RV32, build_for_verify
from dory_mlir.diagnostics import DoryError
from dory_mlir.examples.random_layers import random_layer
from test_host_runtime import CHECKS_C, EXIT_BUDGET, NEGATIVE, POSITIVE, _budget_cases
from test_random_layers import assert_output_bit_exact, lowered_application

REPO = Path(__file__).resolve().parents[1]
TOOLCHAIN = rv32.find_toolchain()
pytestmark = pytest.mark.skipif(TOOLCHAIN is None, reason=f"RISC-V toolchain absent: {rv32.SETUP}")

EXIT_ABORT = 134  # abort() through semihosting's extended exit


def compiles(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


# ----------------------------------------------------------------------------- the runtime's contract


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    """checks(build) -> the ELF of runtime_checks.c on the rv32 runtime ("plain" or "small_l1")."""
    root = tmp_path_factory.mktemp("rv32_checks")

    @functools.cache
    def get(build: str) -> Path:
        budget = ["-DDORY_L1_SIZE=8000"] if build == "small_l1" else []
        obj = root / f"checks_{build}.o"
        compiles([TOOLCHAIN.gcc, *RV32.compile_flags(budget), "-Dmain=checks_main", "-c", str(CHECKS_C), "-o", str(obj)])
        elf = root / f"checks_{build}.elf"
        compiles(RV32.program_command(TOOLCHAIN.gcc, [obj, REPO / "tests" / "rv32_runtime" / "scenario_main.c"], elf, budget))
        return elf

    return get


def scenario(elf: Path, name: str) -> rv32.Run:
    return rv32.run_elf(elf, TOOLCHAIN, elf.parent, args=name, timeout=60)


# "address32" checks the host's mapping below 2 GiB; the rv32 arenas are at fixed addresses above it.
@pytest.mark.parametrize("build", ["plain", "small_l1"])
@pytest.mark.parametrize("name", [s for s in POSITIVE if s != "address32"])
def test_runtime_scenario_passes(checks, build: str, name: str):
    run = scenario(checks(build), name)
    assert run.returncode == 0 and f"PASS {name}" in run.output, run.output
    assert "pmsis-rv32" not in run.output


@pytest.mark.parametrize("build", ["plain", "small_l1"])
@pytest.mark.parametrize("name", ["l1_over", "l1_over_single", "l2_over", "l3_over"])
def test_runtime_budget_overflow_exits_loudly(checks, build: str, name: str):
    run = scenario(checks(build), name)
    assert run.returncode == EXIT_BUDGET, run.output
    expected = _budget_cases(build)[name]
    assert re.search(r"^pmsis-rv32: " + expected + "$", run.output, re.M), run.output


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_runtime_contract_violation_aborts(checks, name: str):
    run = scenario(checks("plain"), name)
    assert run.returncode == EXIT_ABORT, f"rc={run.returncode}\n{run.output}"
    assert re.search(r"^pmsis-rv32: " + NEGATIVE[name], run.output, re.M), run.output
    assert "FAIL" not in run.output


def test_stack_overflow_is_reported(checks):
    """A core that needs more stack than the target gives it (3,400 B) is stopped, not silent."""
    run = scenario(checks("plain"), "rv32_stack_overflow")
    assert run.returncode == EXIT_ABORT, run.output
    assert re.search(r"^pmsis-rv32: core 3 overflowed its 3400-byte stack", run.output, re.M), run.output


def test_l3_is_reachable_only_through_the_ram_api(checks):
    """pi_ram_alloc hands out offsets in L3, not addresses: using one as a pointer traps."""
    run = scenario(checks("plain"), "rv32_l3_deref")
    assert run.returncode != 0 and "FAIL" not in run.output, run.output
    assert rv32.failure(run.output).startswith("RISC-V exception (mepc: 0x"), run.output


def test_cores_switch_at_barriers_in_rotating_order(checks):
    """Every core sees the others' writes after a barrier, and the order of the cores changes
    from phase to phase (the core completing a barrier goes first)."""
    run = scenario(checks("plain"), "rv32_order")
    assert run.returncode == 0 and "PASS rv32_order" in run.output, run.output
    orders = re.findall(r"^phase \d+ order ([0-7 ]+)$", run.output, re.M)
    assert len(orders) == 4 and len(set(orders)) == 4, run.output
    assert all(sorted(o.split()) == [str(i) for i in range(8)] for o in orders), run.output


def test_emulated_hardware_is_not_counted(checks):
    """The instructions counted around a DMA transfer and its wait do not depend on its size:
    the copy is the DMA engine's work on GAP8, so the runtime hides it."""
    run = scenario(checks("plain"), "rv32_hidden")
    assert run.returncode == 0 and "PASS rv32_hidden" in run.output, run.output
    small, large = (int(n) for n in re.search(r"counted (\d+) for 64 B, (\d+) for 60000 B", run.output).groups())
    assert small == large, run.output


# ----------------------------------------------------------------------------- networks


def verify(model: Path, golden: Path, pipeline: str | None, keep: Path, from_source: bool = False) -> subprocess.CompletedProcess:
    """dory-verify --target rv32-qemu (linking the cached kernel library, or with `from_source`
    the kernels compiled by Makefile.rv32 alone)."""
    command = [tool("dory-verify"), str(model), "--golden", str(golden), "--target", "rv32-qemu", "--keep", str(keep)]
    command += ["-p", pipeline] if pipeline else []
    env = dict(os.environ, DORY_BUILD_CACHE="off") if from_source else None
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)


def check_network(done: subprocess.CompletedProcess, app: Path) -> None:
    """Bit-exact, and a consistent instruction table (printed, not judged)."""
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: bit-exact" in done.stdout and "FAIL" not in done.stdout
    print(done.stdout)
    counts = rv32.parse_perf((app / rv32.LOG).read_text())
    layer_rows = re.findall(r"^(\d+)\s+\w+\s+[\d,]+ (?:MAC|pool op|add op)\s+[\d,]+\s", done.stdout, re.M)
    assert sorted(int(i) for i in layer_rows) == sorted(counts.layers), done.stdout
    assert re.search(r"^total\s+[\d,]+ MAC\s+[\d,]+\s+[\d.]+/MAC", done.stdout, re.M), done.stdout
    for index, count in counts.layers.items():
        assert 0 < count.kernels <= count.cluster, (index, count)
        assert count.calls > 0 and count.calls % 8 == 0, (index, count)  # every core calls every tile's kernel
    assert all(0 < used < size for used, size in counts.stacks.values()), counts.stacks


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_network_bit_exact_under_qemu(examples_dir: Path, name: str, tmp_path: Path):
    """Tiny L1 and L2 budgets: many tiles, ragged borders, activations and weights streamed from L3."""
    pipeline = "tile{l1-size=2000 l2-size=3000},lower-to-pulp"
    app = tmp_path / "app"
    check_network(verify(examples_dir / name / "model.onnx", examples_dir / name, pipeline, app), app)


SHARED_CASES = [("nemo_8-bits-1D_TCN_T", "l1-8000"), ("nemo_8-bits-2D_eegnet_1d_8b_1xW", "l1-8000"),
                ("nemo_8-bits-2D_dscnn_test", "l1-8000"), ("nemo_8-bits-2D_dscnn_test", "default")]
PIPELINES = {"default": None, "l1-8000": "tile{l1-size=8000},lower-to-pulp"}


@needs_shared
@pytest.mark.parametrize(("network", "pipeline"), SHARED_CASES, ids=[f"{n}-{p}" for n, p in SHARED_CASES])
def test_shared_network_bit_exact_under_qemu(network: str, pipeline: str, tmp_path: Path):
    folder = next((f for f in DORY_NETWORKS if f.name == network), None)
    if folder is None:
        pytest.skip(f"{network} is not among the shared networks")
    app = tmp_path / "app"
    check_network(verify(onnx_file(folder), folder, PIPELINES[pipeline], app), app)


def test_counts_are_identical_run_after_run(examples_dir: Path, tmp_path: Path):
    """Also the build of Makefile.rv32 as it stands (kernels compiled from source)."""
    app = tmp_path / "app"
    check_network(verify(examples_dir / "residual" / "model.onnx", examples_dir / "residual", None, app, from_source=True), app)
    first = (app / rv32.LOG).read_text()
    again = rv32.run_app(app / "network.elf", TOOLCHAIN, app)
    assert [line for line in again.splitlines() if line.startswith("dory-perf")] == \
        [line for line in first.splitlines() if line.startswith("dory-perf")]


def test_missing_toolchain_is_one_line_error(examples_dir: Path, tmp_path: Path):
    env = dict(os.environ, PATH=str(Path(tool("dory-verify")).parent) + os.pathsep + "/nonexistent")
    done = subprocess.run([tool("dory-verify"), str(examples_dir / "tiny_cnn" / "model.onnx"), "--target", "rv32-qemu",
                           "--keep", str(tmp_path / "app")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "riscv64-unknown-elf-gcc" in lines[0] and "make riscv-toolchain" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_sanitize_is_for_the_host_build(tmp_path: Path):
    with pytest.raises(DoryError, match="--sanitize is for the host build"):
        build_for_verify(tmp_path, sanitize=True, target="rv32-qemu")


# ----------------------------------------------------------------------------- random single layers

RANDOM_SEEDS = range(16)


@pytest.mark.parametrize("seed", tiered(RANDOM_SEEDS, range(8)))
def test_random_layer_bit_exact_under_qemu(seed: int, tmp_path: Path):
    layer = random_layer(seed)
    expected_run = lowered_application(layer, tmp_path)
    elf = build.build_application(tmp_path, build.RV32, TOOLCHAIN.gcc)
    output = rv32.run_app(elf, TOOLCHAIN, tmp_path, timeout=120)
    assert "dory-perf layer 0 " in output
    assert_output_bit_exact(layer, expected_run, tmp_path)
