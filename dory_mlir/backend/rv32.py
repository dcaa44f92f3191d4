"""The generated application on 32-bit RISC-V: build with Debian's bare-metal toolchain, run
under QEMU, read back the instruction counts (DESIGN.md §7).

The application (`-t pulp-c` writes `Makefile.rv32` beside `Makefile.host`) is built for
`-march=rv32imc -mabi=ilp32` with picolibc against the project's bare-metal PMSIS runtime
(`dory_mlir/runtime/common` + `rv32`) and run on QEMU's `virt` machine with `-icount shift=0`, where
`rdinstret` is exact and the same run after run. Semihosting (`target=native`) gives the
program the files of its working directory, so the same `main.c` reads `input.bin` and writes
`out_layerN.bin` as on the host, and the program's exit status becomes QEMU's.

Packages (installed by `make riscv-toolchain`, which `make test` runs):
gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf, qemu-system-misc.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from dory_mlir.diagnostics import DoryError

GCC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-system-riscv32"
PACKAGES = "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc"
SETUP = f"run `make riscv-toolchain` in the dory-mlir checkout (Debian packages {PACKAGES})"

# The cluster cores' base ISA (without the PULP extensions), with picolibc's headers and libraries.
ARCH_FLAGS = ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs"]
# picolibc's semihosting I/O; the memory map of runtime/rv32/rv32_internal.h: code and constants
# from 0x80000000, data + heap + the fabric controller's 16 kB stack from 0x81000000 (ending
# below the L1 arena at 0x82000000).
LINK_FLAGS = ["--oslib=semihost", "--crt0=semihost",
              "-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x01000000",
              "-Wl,--defsym=__ram=0x81000000", "-Wl,--defsym=__ram_size=0x01000000",
              "-Wl,--defsym=__stack_size=0x4000"]
QEMU_ARGS = ["-machine", "virt", "-m", "128M", "-nographic", "-icount", "shift=0",
             "-semihosting-config", "enable=on,target=native", "-bios", "none"]
# The largest shared network runs in ~10 s; a hang (e.g. a core spinning) is cut off here.
RUN_TIMEOUT = 600


@dataclass(frozen=True)
class Toolchain:
    gcc: str
    qemu: str


def find_toolchain() -> Toolchain | None:
    """The compiler (with picolibc) and the simulator, or None when one is missing."""
    gcc, qemu = shutil.which(GCC), shutil.which(QEMU)
    if gcc is None or qemu is None:
        return None
    specs = subprocess.run([gcc, "-print-file-name=picolibc.specs"], capture_output=True, text=True).stdout.strip()
    return Toolchain(gcc, qemu) if Path(specs).is_absolute() and Path(specs).is_file() else None


def require_toolchain() -> Toolchain:
    found = find_toolchain()
    if found is None:
        missing = [name for name in (GCC, QEMU) if shutil.which(name) is None] or ["picolibc for riscv64-unknown-elf"]
        raise DoryError(f"--target rv32-qemu needs {', '.join(missing)}: {SETUP}")
    return found


@dataclass
class Run:
    returncode: int
    output: str  # the program's stdout and stderr (semihosting writes both to QEMU's console)


def run_elf(elf: Path, toolchain: Toolchain, cwd: Path, args: str = "", timeout: int = RUN_TIMEOUT) -> Run:
    """Runs the program under QEMU in `cwd` (its semihosting file system); `args` becomes
    the last words of its command line."""
    command = [toolchain.qemu, *QEMU_ARGS, "-kernel", str(elf.resolve())]
    command += ["-append", args] if args else []
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DoryError(f"QEMU did not finish within {timeout} s", str(elf)) from None
    return Run(done.returncode, done.stdout + done.stderr)


def run_app(elf: Path, toolchain: Toolchain, workdir: Path, timeout: int = RUN_TIMEOUT) -> str:
    """Runs the application on `workdir/input.bin`; its output, or a one-line error."""
    run = run_elf(elf, toolchain, workdir, timeout=timeout)
    if run.returncode:
        raise DoryError(f"the application failed under QEMU (exit {run.returncode}): {failure(run.output)}", str(elf))
    return run.output


def failure(output: str) -> str:
    """The reason of a failed run in one line: the runtime's messages, picolibc's trap report
    (cause and addresses of a RISC-V exception), or the last lines."""
    lines = [line.strip() for line in output.strip().splitlines()]
    runtime = [line for line in lines if line.startswith("pmsis-rv32")]
    if runtime:
        return " | ".join(runtime)
    if "RISCV fault" in lines:
        trap = [line.replace("\t", " ") for line in lines if line.split(":")[0] in ("mcause", "mepc", "mtval")]
        return "RISC-V exception (" + ", ".join(" ".join(t.split()) for t in trap) + ")"
    return " | ".join(lines[-3:])


# ---------------------------------------------------------------------- instruction counts


@dataclass(frozen=True)
class LayerCount:
    """Instructions of one layer, summed over the emulated cores (runtime/include/dory_perf.h)."""

    pre: int      # network code before the layer: L3 -> L2 staging (layer 0: input copy, resident weights)
    cluster: int  # the layer's cluster function: L2 <-> L1 DMA, tile loop, kernels
    kernels: int  # inside kernel calls
    calls: int    # kernel calls (tiles x cores)
    busiest: int  # inside kernel calls on the core that ran most of them (what tiling/cost.py estimates)

    @property
    def total(self) -> int:
        return self.pre + self.cluster


@dataclass
class PerfCounts:
    layers: dict[int, LayerCount] = field(default_factory=dict)
    tail: int = 0      # network code after the last layer (output copies)
    hidden: int = 0    # instructions of the runtime's hardware emulation, not counted
    stacks: dict[int, tuple[int, int]] = field(default_factory=dict)  # core -> (used, size) bytes


_LAYER = re.compile(r"^dory-perf layer (\d+) pre (\d+) cluster (\d+) kernels (\d+) calls (\d+) busiest (\d+)$")
_STACK = re.compile(r"^dory-perf stack core (\d+) used (-?\d+) of (\d+)$")


def parse_perf(output: str) -> PerfCounts:
    """The `dory-perf` lines the application prints (runtime/rv32/perf_rv32.c)."""
    counts = PerfCounts()
    for line in output.splitlines():
        line = line.strip()
        if m := _LAYER.match(line):
            counts.layers[int(m[1])] = LayerCount(*(int(g) for g in m.groups()[1:]))
        elif m := _STACK.match(line):
            counts.stacks[int(m[1])] = (int(m[2]), int(m[3]))
        elif line.startswith("dory-perf tail "):
            counts.tail = int(line.split()[-1])
        elif line.startswith("dory-perf hidden "):
            counts.hidden = int(line.split()[-1])
    if not counts.layers:
        raise DoryError("the application printed no instruction counts (no 'dory-perf layer' lines)")
    return counts


# ---------------------------------------------------------------------- dory-verify --target rv32-qemu

LOG = "qemu.log"  # the console output of the last run, kept in the application directory


def run_for_verify(elf: Path, workdir: Path) -> str:
    """Runs the application (input.bin already written) and keeps its console output in LOG."""
    output = run_app(elf, require_toolchain(), workdir)
    (workdir / LOG).write_text(output)
    return output
