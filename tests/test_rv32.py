"""The bare-metal rv32 PMSIS runtime (dory_mlir/runtime/rv32) under QEMU (DESIGN.md §7, issue 6).

It keeps the host runtime's contract: the scenarios of tests/host_runtime/runtime_checks.c run
under qemu-system-riscv32 and must pass, or stop with the host runtime's messages (prefix
"pmsis-rv32: ") and exit statuses; plus what only the rv32 runtime has: cluster stacks of the
target's sizes, cores switched at barriers, hidden emulation instructions.

Skipped only when the toolchain is absent.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from dory_mlir.backend import rv32
from dory_mlir.backend.pulp_c import RUNTIME
from test_host_runtime import CHECKS_C, EXIT_BUDGET, NEGATIVE, POSITIVE, _budget_cases

REPO = Path(__file__).resolve().parents[1]
TOOLCHAIN = rv32.find_toolchain()
pytestmark = pytest.mark.skipif(TOOLCHAIN is None, reason=f"RISC-V toolchain absent: {rv32.SETUP}")

CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *rv32.ARCH_FLAGS]
RV32_RUNTIME = sorted((RUNTIME / "rv32").glob("*.c"))
INCLUDES = [f"-I{RUNTIME / 'rv32'}", f"-I{RUNTIME / 'include'}"]
EXIT_ABORT = 134  # abort() through semihosting's extended exit


def gcc(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run([TOOLCHAIN.gcc, *args], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]


# ----------------------------------------------------------------------------- the runtime's contract


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    """checks(build) -> the ELF of runtime_checks.c on the rv32 runtime ("plain" or "small_l1")."""
    root = tmp_path_factory.mktemp("rv32_checks")
    cache: dict[str, Path] = {}

    def get(build: str) -> Path:
        if build not in cache:
            budget = ["-DDORY_L1_SIZE=8000"] if build == "small_l1" else []
            obj = root / f"checks_{build}.o"
            gcc(*CFLAGS, *budget, *INCLUDES, "-Dmain=checks_main", "-c", str(CHECKS_C), "-o", str(obj))
            elf = root / f"checks_{build}.elf"
            gcc(*CFLAGS, *budget, *INCLUDES, *rv32.LINK_FLAGS, str(obj), str(REPO / "tests" / "rv32_runtime" / "scenario_main.c"),
                *map(str, RV32_RUNTIME), "-o", str(elf))
            cache[build] = elf
        return cache[build]

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
