"""Building the generated application: the one recipe for the host and for rv32.

A `Platform` (HOST, RV32) holds the whole recipe -- instruction set, the project's flags, defines,
the runtime's headers and sources (`runtime/common` + the platform's folder), link flags -- and
the builds are spelled from it: the kernel library below, programs built without a Makefile
(`Platform.program_command`: the runtime's tests), and the generated Makefiles take its flags
(pulp_c.py, which still writes their source lists). rv32's toolchain and QEMU are in rv32.py.

The application's own files (`main.c`, `network.c`) and the platform runtime (its arenas have the
tiler's budgets, given as `-D` flags) are compiled per network. The kernel library
(`runtime/kernels/*.c` and the DMA helper) does not depend on the network or its budgets, and it
is most of the build time (under ASan+UBSan especially): it is compiled once per configuration
(compiler, flags, platform headers) into an archive kept in a content-addressed cache, and the
application's Makefile links it through `DORY_KERNELS_LIB` instead of compiling the sources
again. The cache key hashes the compiler's identity, the flags and every source and header the
library is built from, so a changed kernel or flag never links a stale archive.

Cache folder: `$DORY_BUILD_CACHE`, else `$XDG_CACHE_HOME/dory-mlir` (`~/.cache/dory-mlir`);
`DORY_BUILD_CACHE=off` compiles the kernels into every application as the Makefiles do alone.
Concurrent builds (pytest-xdist workers, parallel `dory-verify` runs) take a file lock per key
and publish the archive by an atomic rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dory_mlir.backend import rv32
from dory_mlir.diagnostics import DoryError

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"

# The runtime every platform shares (memory model, transfers, cluster rules), relative to RUNTIME.
COMMON_RUNTIME = "common"

# Warnings are errors in every build of the generated C and the runtime.
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]


@dataclass(frozen=True)
class Platform:
    """Where an application runs, and the one recipe of its programs: the compiler's flags, the
    runtime it links and the Makefile (written by pulp_c.py from these fields) that builds it."""

    name: str         # "host" | "rv32"
    runtime: str      # folder of dory_mlir/runtime holding its pmsis.h and its own runtime sources
    arch: tuple[str, ...]     # instruction set and C library (every object of the program)
    defines: tuple[str, ...]
    link: tuple[str, ...]     # link flags of a program (memory map, C library's I/O)
    makefile: str
    output: str       # what the Makefile builds

    def include_flags(self, root: Path) -> list[str]:
        return [f"-I{root / self.runtime}", f"-I{root / 'include'}"]

    def runtime_sources(self, root: Path | None = None) -> list[Path]:
        """The C sources of the platform's PMSIS runtime: the common runtime and its own files."""
        root = root or RUNTIME
        return [*sorted((root / COMMON_RUNTIME).glob("*.c")), *sorted((root / self.runtime).glob("*.c"))]

    def compile_flags(self, flags: Sequence[str] = (), root: Path | None = None) -> list[str]:
        """The flags every object of a program is compiled with; `flags`: budgets, sanitizers, ..."""
        return [*self.arch, *CFLAGS, *flags, *self.defines, *self.include_flags(root or RUNTIME)]

    def program_command(self, cc: str, sources: Sequence[Path | str], output: Path, flags: Sequence[str] = (),
                        root: Path | None = None) -> list[str]:
        """Compiles and links `sources` with the platform's runtime into `output` (what the
        generated Makefile does, for callers that build without one)."""
        runtime = self.runtime_sources(root)
        return [cc, *self.compile_flags(flags, root), *self.link, *map(str, [*sources, *runtime]), "-o", str(output)]


HOST = Platform("host", "host", (), ("-pthread", "-DDORY_HOST"), (), "Makefile.host", "network")
RV32 = Platform("rv32", "rv32", tuple(rv32.ARCH_FLAGS), ("-DDORY_RV32",), tuple(rv32.LINK_FLAGS), "Makefile.rv32",
                "network.elf")

# The sources of the kernel library, relative to the runtime folder.
KERNEL_LIBRARY_SOURCES = ("kernels/*.c", "dma/dory_dma.c")
KERNEL_LIBRARY_HEADERS = ("kernels/*.h", "include/*.h")


def library_sources() -> list[Path]:
    return sorted(p for pattern in KERNEL_LIBRARY_SOURCES for p in RUNTIME.glob(pattern))


def cache_root() -> Path | None:
    setting = os.environ.get("DORY_BUILD_CACHE")
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dory-mlir"


@cache
def compiler_identity(cc: str) -> str:
    """The compiler's path and version line: a different compiler is a different archive."""
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise DoryError(f"cannot run the C compiler '{cc}': {e}") from None
    return f"{shutil.which(cc) or cc}\n{version.splitlines()[0] if version else ''}"


def library_key(cc: str, flags: list[str], platform: Platform) -> str:
    digest = hashlib.sha256()
    digest.update(compiler_identity(cc).encode())
    digest.update("\0".join(flags).encode())
    files = library_sources() + sorted(p for pattern in KERNEL_LIBRARY_HEADERS for p in RUNTIME.glob(pattern))
    files += sorted((RUNTIME / platform.runtime).glob("*.h"))
    for path in files:
        digest.update(str(path.relative_to(RUNTIME)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def archiver(cc: str) -> str:
    """`ar` of the same toolchain (riscv64-unknown-elf-gcc -> riscv64-unknown-elf-ar)."""
    prefixed = cc.removesuffix("gcc") + "ar" if cc.endswith("gcc") else "ar"
    return prefixed if shutil.which(prefixed) else "ar"


def kernel_library(cc: str, extra_flags: list[str], platform: Platform) -> Path | None:
    """The kernel library built with the platform's compile flags plus `extra_flags`, from the
    cache or compiled into it now; None when the cache is off."""
    root = cache_root()
    if root is None:
        return None
    flags = platform.compile_flags(extra_flags)
    archive = root / f"libdory-{platform.name}-{library_key(cc, flags, platform)}.a"
    if archive.is_file():
        return archive
    root.mkdir(parents=True, exist_ok=True)
    with open(archive.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same archive
        if archive.is_file():
            return archive
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            objects = []
            for source in library_sources():
                obj = Path(scratch) / f"{source.parent.name}_{source.stem}.o"
                compile_c(cc, [*flags, "-c", str(source), "-o", str(obj)], f"the kernel library ({source.name})")
                objects.append(str(obj))
            partial = Path(scratch) / archive.name
            subprocess.run([archiver(cc), "rcs", str(partial), *objects], check=True, capture_output=True)
            os.replace(partial, archive)
    return archive


def last_lines(done: subprocess.CompletedProcess) -> str:
    """The end of a failed build's output on one line (the compiler's error is there)."""
    return " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])


def compile_c(cc: str, arguments: list[str], what: str, cwd: Path | None = None) -> None:
    done = subprocess.run([cc, *arguments], capture_output=True, text=True, cwd=cwd)
    if done.returncode:
        raise DoryError(f"{what} does not build: {last_lines(done)}")


def build_application(app: Path, platform: Platform, cc: str, extra_flags: list[str] = ()) -> Path:
    """`make -f Makefile.<platform>` in the application folder, linking the cached kernel library;
    returns the program."""
    extra = list(extra_flags)
    make = ["make", "-s", "-f", platform.makefile, f"CC={cc}", f"EXTRA_CFLAGS={' '.join(extra)}"]
    # The kernels share their work among the cores the network was tiled for (its Makefile says how many).
    cores = re.findall(r"-DNUM_CORES=\d+", (app / platform.makefile).read_text())
    library = kernel_library(cc, extra + cores[:1], platform)
    if library is not None:
        make.append(f"DORY_KERNELS_LIB={library}")
    done = subprocess.run(make, cwd=app, capture_output=True, text=True)
    if done.returncode:
        where = "" if platform is HOST else f" for {platform.name}"
        raise DoryError(f"the generated C does not build{where}: {last_lines(done)}", str(app))
    return app / platform.output


def build_for_verify(app: Path, sanitize: bool, target: str = "host") -> Path:
    """The program of `dory-verify --target host|rv32-qemu [--sanitize]`."""
    if target == "rv32-qemu":
        if sanitize:
            raise DoryError("--sanitize is for the host build: ASan and UBSan have no bare-metal rv32 runtime")
        return build_application(app, RV32, rv32.require_toolchain().gcc)
    return build_application(app, HOST, "gcc", SANITIZE_FLAGS if sanitize else [])
