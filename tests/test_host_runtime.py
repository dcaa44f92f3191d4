"""The host implementation of PMSIS (dory_mlir/runtime/host): builds tests/host_runtime/runtime_checks.c
together with the host runtime (pmsis_host.c and runtime/common) using the project's compile command (plain, with ASan/UBSan, with a small L1
budget, with TSan) and runs each scenario of it.

Positive scenarios print "PASS <name>"; negative ones must be stopped by the runtime with a
"pmsis-host: ..." message: abort() for contract violations, exit status 3 for budget overflows.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from dory_mlir.backend.build import HOST

REPO = Path(__file__).resolve().parents[1]
HOST_DIR = REPO / "dory_mlir" / "runtime" / "host"
RUNTIME_SOURCES = [str(source) for source in HOST.runtime_sources()]
CHECKS_C = REPO / "tests" / "host_runtime" / "runtime_checks.c"

# The flags the project builds generated code with on the host runtime.
CFLAGS = HOST.compile_flags()
BUILDS = {
    "plain": [],
    "asan": ["-fsanitize=address,undefined"],
    "small_l1": ["-DDORY_L1_SIZE=8000"],
    "small_l1_asan": ["-DDORY_L1_SIZE=8000", "-fsanitize=address,undefined"],
    "tsan": ["-fsanitize=thread"],
}
L1_SIZE = {"small_l1": 8000, "small_l1_asan": 8000}
EXIT_BUDGET = 3
ENV = dict(
    os.environ,
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
    ASAN_OPTIONS="detect_leaks=1",
)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


def _compile(out: Path, extra: list[str]) -> subprocess.CompletedProcess:
    cmd = HOST.program_command("gcc", [CHECKS_C], out, extra)
    return subprocess.run(cmd, capture_output=True, text=True)


def _sanitizer_available(flag: str, tmp: Path) -> bool:
    probe = tmp / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    exe = tmp / ("probe" + re.sub(r"\W", "_", flag))
    if subprocess.run(["gcc", flag, str(probe), "-o", str(exe)], capture_output=True).returncode:
        return False
    return subprocess.run([str(exe)], capture_output=True, env=ENV).returncode == 0


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """build(name) -> path of runtime_checks compiled with BUILDS[name] (compiled once)."""
    root = tmp_path_factory.mktemp("host_runtime")

    @functools.cache
    def get(name: str) -> Path:
        for flag in BUILDS[name]:
            if flag.startswith("-fsanitize") and not _sanitizer_available(flag, root):
                pytest.skip(f"{flag} is not usable with this gcc")
        exe = root / f"runtime_checks_{name}"
        res = _compile(exe, BUILDS[name])
        assert res.returncode == 0, f"build {name} failed:\n{res.stdout}{res.stderr}"
        return exe

    return get


def run(exe: Path, scenario: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), scenario], capture_output=True, text=True, timeout=60, env=ENV)


# --------------------------------------------------------------------------- builds


def test_runtime_compiles_alone_with_project_flags(tmp_path):
    for name in ("plain", "asan"):
        extra = BUILDS[name]
        for source in RUNTIME_SOURCES:
            res = subprocess.run(
                ["gcc", *CFLAGS, *extra, "-c", source, "-o", str(tmp_path / f"{Path(source).stem}_{name}.o")],
                capture_output=True,
                text=True,
            )
            assert res.returncode == 0, res.stderr


def test_header_is_strict_c_and_cxx(tmp_path):
    src = tmp_path / "use.c"
    src.write_text('#include "pmsis.h"\nint main(void) { return (int)pi_core_id(); }\n')
    res = subprocess.run(
        ["gcc", *CFLAGS, "-Wpedantic", "-Wstrict-prototypes", "-Wmissing-prototypes", "-c", str(src),
         "-o", str(tmp_path / "use.o")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    if shutil.which("g++"):
        res = subprocess.run(
            ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{HOST_DIR}", "-x", "c++", "-c", str(src),
             "-o", str(tmp_path / "use_cxx.o")],
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- positive scenarios

POSITIVE = [
    "address32",       # arena pointers are exact as uint32_t, 8-byte aligned, fresh memory is 0x5A
    "l1_full",         # the whole L1 budget is usable, frees are reusable
    "dma1d",           # 1-D both directions: poison before the wait, exact copy after
    "dma2d",           # 2-D both directions: strided L2 side, contiguous L1 side, gaps untouched
    "source_at_wait",  # the copy reads the source at wait time
    "premature_read",  # a kernel reading before the wait sees 0xA5
    "dma_multicore",   # transfers issued and waited on different cores of a fork
    "team",            # 8-core fork, per-core ids, barriers, fork(0) reuses the previous size
    "l3",              # L3 alloc / write / read round trip, FC and cluster side, poison on cl reads
    "perf",            # perf counters increase while started, freeze when stopped
    "pipeline",        # generated-code-like: L3 -> L2, double-buffered DMA, 8-core tiles, L1 -> L2
    "pipeline_bug",    # the same computing each tile before its wait: every output byte is wrong
]


@pytest.mark.parametrize("build_name", ["plain", "asan", "small_l1"])
@pytest.mark.parametrize("scenario", POSITIVE)
def test_positive(build, build_name, scenario):
    res = run(build(build_name), scenario)
    assert res.returncode == 0 and f"PASS {scenario}" in res.stdout, res.stdout + res.stderr
    assert "pmsis-host" not in res.stderr


@pytest.mark.parametrize("scenario", ["team", "dma_multicore", "dma1d", "l3", "pipeline"])
def test_thread_sanitizer_clean(build, scenario):
    res = run(build("tsan"), scenario)
    assert res.returncode == 0 and f"PASS {scenario}" in res.stdout, res.stdout + res.stderr
    assert "ThreadSanitizer" not in res.stderr


# --------------------------------------------------------------------------- budgets


def _budget_cases(build_name: str):
    l1 = L1_SIZE.get(build_name, 64000)
    return {
        "l1_over": rf"L1 allocation of 1009 bytes exceeds the L1 budget \(used {l1 - 1000} of {l1}\)",
        "l1_over_single": rf"L1 allocation of {l1 + 1} bytes exceeds the L1 budget \(used 0 of {l1}\)",
        "l2_over": r"L2 allocation of 1 bytes exceeds the L2 budget \(used 512000 of 512000\)",
        "l3_over": r"L3 allocation of 1000000 bytes exceeds the L3 budget \(used 8000008 of 8388608\)",
    }


@pytest.mark.parametrize("build_name", ["plain", "asan", "small_l1", "small_l1_asan"])
@pytest.mark.parametrize("scenario", ["l1_over", "l1_over_single", "l2_over", "l3_over"])
def test_budget_overflow_exits_loudly(build, build_name, scenario):
    res = run(build(build_name), scenario)
    assert res.returncode == EXIT_BUDGET, res.stdout + res.stderr
    assert re.search(r"^pmsis-host: " + _budget_cases(build_name)[scenario] + "$", res.stderr, re.M), res.stderr
    assert "FAIL" not in res.stdout


# --------------------------------------------------------------------------- contract violations

NEGATIVE = {
    "l1_closed": r"pi_cl_l1_malloc: the cluster is not open",
    "free_size_mismatch": r"pi_cl_l1_free: the L1 block at 0x[0-9a-f]{8} was allocated with 64 bytes but is freed with 32",
    "double_free": r"pi_l2_free: 0x[0-9a-f]{8} is not the start of a live L2 allocation",
    "dma_from_fc": r"pi_cl_dma_cmd called outside a cluster task",
    "bad_outside": r"pi_cl_dma_cmd: ext \(L2\) = 0x[0-9a-f]{8} \(outside the L1 and L2 arenas.*is not inside the L2 arena",
    "bad_loc_in_l2": r"pi_cl_dma_cmd: loc \(L1\) = 0x[0-9a-f]{8} \(L2 offset \d+\) with 64 bytes is not inside the L1 arena",
    "bad_swapped": r"pi_cl_dma_cmd: loc 0x[0-9a-f]{8} is in L2 and ext 0x[0-9a-f]{8} is in L1: are ext and loc swapped\?",
    "bad_overrun": r"pi_cl_dma_cmd: loc \(L1\) range \[0x[0-9a-f]{8}, 0x[0-9a-f]{8}\) overruns the L1 block at 0x[0-9a-f]{8} of 512 bytes",
    "bad_overrun_2d": r"pi_cl_dma_cmd_2d: ext \(L2\) range \[0x([0-9a-f]{8}), 0x[0-9a-f]{8}\) overruns the L2 block at 0x\1 of 512 bytes",
    "bad_wait_twice": r"pi_cl_dma_cmd_wait: .* was already waited for \(waited twice\)",
    "bad_wait_never": r"pi_cl_dma_cmd_wait: the command at .* was never issued",
    "bad_reuse": r"pi_cl_dma_cmd: the command at .* is still in flight",
    "bad_not_waited": r"pi_cluster_send_task_to_cl: the cluster task ended with 1 cluster-DMA transfer\(s\) and 0 RAM request\(s\) never waited for",
    "bad_freed": r"pi_cl_dma_cmd_wait: loc \(L1\) of this in-flight transfer range .* is not inside a live pi_cl_l1_malloc allocation",
    "bad_2d_size": r"pi_cl_dma_cmd_2d: size 100 is not a multiple of length 30",
    "nested_fork": r"pi_cl_team_fork called inside a fork \(core 1\): nested forks are not supported",
    "barrier_mismatch": r"pi_cl_team_barrier mismatch: 1 core\(s\) wait in pi_cl_team_barrier while 7 core\(s\) already returned",
    "barrier_outside": r"pi_cl_team_barrier called outside pi_cl_team_fork",
    "fork_on_fc": r"pi_cl_team_fork called outside a cluster task",
    "l3_oob": r"pi_ram_read: L3 range \[0x00000018, 0x00000038\) overruns the L3 block at 0x00000008 of 32 bytes",
    "l3_beyond": r"pi_ram_write: L3 range \[0x007ffff0, 0x00800030\) is outside the L3 memory \(8388608 bytes\)",
    "l3_unallocated": r"pi_ram_read: L3 range \[0x00000000, 0x00000010\) is not inside a live pi_ram_alloc block",
    "l3_oob_cluster": r"pi_cl_ram_read: L3 range \[0x00000008, 0x00000089\) overruns the L3 block at 0x00000008 of 128 bytes",
}


@pytest.mark.parametrize("build_name", ["plain", "asan"])
@pytest.mark.parametrize("scenario", sorted(NEGATIVE))
def test_contract_violation_aborts(build, build_name, scenario):
    res = run(build(build_name), scenario)
    assert res.returncode == -signal.SIGABRT, f"rc={res.returncode}\n{res.stdout}{res.stderr}"
    assert re.search(r"^pmsis-host: " + NEGATIVE[scenario], res.stderr, re.M), res.stderr
    assert "FAIL" not in res.stdout
    # the runtime stops the program before the sanitizers see anything
    assert "Sanitizer" not in res.stderr and "runtime error" not in res.stderr, res.stderr


def test_small_l1_budget_rejects_what_default_accepts(build):
    """A transfer buffer of 8000+ bytes fits the default L1 but not -DDORY_L1_SIZE=8000."""
    assert run(build("plain"), "l1_full").returncode == 0
    res = run(build("small_l1"), "l1_over_single")
    assert res.returncode == EXIT_BUDGET and "exceeds the L1 budget (used 0 of 8000)" in res.stderr


def test_asan_reports_overrun_into_free_arena_space(build):
    """Free arena space is poisoned for ASan: a write past an L1 block is reported there."""
    res = run(build("asan"), "asan_overrun")
    assert res.returncode != 0 and "use-after-poison" in res.stderr, res.stdout + res.stderr
    # without ASan the same write is silent (the arena is ordinary memory)
    assert run(build("plain"), "asan_overrun").returncode == 0
