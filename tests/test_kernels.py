"""The C kernel library (dory_mlir/runtime/kernels) is bit-exact with the golden model.

The kernels are compiled with gcc into shared libraries (once per session) together with
`tests/kernels/shim.c`, which provides `pi_core_id()` from a global variable and runs a
kernel once per core id; kernels have no synchronization inside, so running the cores one
after the other -- here in a random order -- is a faithful schedule. The drivers (the shim and
`tests/kernels/rv32_driver.c`) know no kernel by name: `kernel_table.h`, generated here from
`dory_mlir/kernel_abi.py` (kernel_table_source), gives each kernel's caller and the fields of
its argument struct; the ctypes mirrors of the structs come from the same table. Every random
configuration (seeded) is run on each library variant:

- `cores8`: NUM_CORES=8, portable C;
- `cores1`: NUM_CORES=1, portable C;
- `simd8`:  NUM_CORES=8, the PULP SIMD code path (`-DDORY_PULP_SIMD`), with the two PULP
  builtins it uses defined in C by `tests/kernels/pulp_builtins.{h,c}`.

The expected values come from the golden model itself: the `qnn` op of the layer is built
(and verified) and evaluated by `dory_mlir.golden.interpreter.QnnFunctions`, NCHW, then
converted to the kernels' HWC layout. The golden model raises when an int32 accumulator or
a requant intermediate leaves its declared width, so every generated configuration is a
legal one (in particular the 32-bit requants really fit 32 bits).

A subset runs once more in a subprocess against a library built with
`-fsanitize=address,undefined` (this file run as a script), and the sources are compiled
with `-Wall -Wextra -Werror` in several configurations (-O0, -O3, pedantic C11, PULP SIMD).
Where the Debian RISC-V toolchain and qemu are installed, a subset of every family also runs as
32-bit RISC-V code under qemu-system-riscv32 (test_rv32_qemu; the build and run of
run_rv32_cases, which bench/kernels_rv32.py uses too). Every kernel of the table must have a
family of random configurations (test_every_kernel_of_the_table_has_cases).
"""

from __future__ import annotations

import ctypes
import keyword
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import IntegerType, Signedness, TensorType
from xdsl.utils.test_value import create_ssa_value

from dory_mlir import kernel_abi
from dory_mlir.backend import rv32
from dory_mlir.dialects import qnn
from dory_mlir.golden.interpreter import QnnFunctions

REPO = Path(__file__).resolve().parents[1]
KERNELS = REPO / "dory_mlir" / "runtime" / "kernels"
INCLUDE = REPO / "dory_mlir" / "runtime" / "include"
SHIM = REPO / "tests" / "kernels"
SOURCES = sorted(KERNELS.glob("*.c"))

WARNINGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
PULP_SIMD = ["-DDORY_PULP_SIMD", "-include", str(SHIM / "pulp_builtins.h")]  # + pulp_builtins.c
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]

U8, I8, I32, U16, I16 = 0, 1, 2, 3, 4  # dory_dtype_t
NP_TYPE = {U8: np.uint8, I8: np.int8, I32: np.int32, U16: np.uint16, I16: np.int16}
RANGE = {U8: (0, 255), I8: (-128, 127), I32: (-(2**31), 2**31 - 1), U16: (0, 65535), I16: (-32768, 32767)}
WIDE = (U16, I16)  # 16-bit activations: the kernels' exact path of their own (wide.c)
# A kernel's number in the test drivers (tests/kernels/shim.c, rv32_driver.c): its index in the kernel table.
KERNEL_ID = {name: index for index, name in enumerate(kernel_abi.KERNELS)}
(K_CONV2D, K_POINTWISE, K_DEPTHWISE, K_LINEAR, K_MAXPOOL, K_SUMPOOL, K_ADD, K_MATMUL, K_SOFTMAX, K_RMSNORM,
 K_HARDSWISH, K_GELU, K_LAYERNORM, K_ITAMAX) = (KERNEL_ID[name] for name in (
    "dory_conv2d", "dory_pointwise", "dory_depthwise", "dory_linear", "dory_maxpool", "dory_sumpool", "dory_add",
    "dory_matmul", "dory_softmax", "dory_rmsnorm", "dory_hardswish", "dory_gelu", "dory_layernorm", "dory_itamax"))

# ----------------------------------------------------------------------------- C structs (ctypes mirrors of dory_mlir/kernel_abi.py)

u8, i8, u16, i32, i64, ptr, enum = (ctypes.c_uint8, ctypes.c_int8, ctypes.c_uint16, ctypes.c_int32,
                                    ctypes.c_int64, ctypes.c_void_p, ctypes.c_int)


CTYPES = {"uint8_t": u8, "int8_t": i8, "uint16_t": u16, "int16_t": ctypes.c_int16, "int32_t": i32, "int64_t": i64,
          "dory_dtype_t": enum}


def ctypes_struct(struct: kernel_abi.Struct) -> type[ctypes.Structure]:
    """The ctypes mirror of an argument struct of the kernel table; a field named like a Python
    keyword gets a trailing underscore (`in_`)."""
    fields = []
    for f in struct.fields:
        base, _, count = f.c_type.partition("[")
        ctype = ptr if base.endswith("*") else CTYPES[base]
        fields.append((f.name + "_" if keyword.iskeyword(f.name) else f.name, ctype * int(count[:-1]) if count else ctype))
    return type(struct.name, (ctypes.Structure,), {"_fields_": fields})


MIRRORS = {name: ctypes_struct(struct) for name, struct in kernel_abi.STRUCTS.items()}
Requant, Conv, Linear, Pool, Add, MatMul, Softmax, RMSNorm, Hardswish, Gelu, LayerNorm, ITAMax = (
    MIRRORS[name] for name in ("dory_requant_t", "dory_conv_t", "dory_linear_t", "dory_pool_t", "dory_add_t",
                               "dory_matmul_t", "dory_softmax_t", "dory_rmsnorm_t", "dory_hardswish_t", "dory_gelu_t",
                               "dory_layernorm_t", "dory_itamax_t"))


def layout_source() -> str:
    """dory_test_layout(): sizeof and every field offset of the argument structs, in the table's order,
    as the compiler lays them out from dory_kernels.h (compared with the ctypes mirrors)."""
    lines = ["#include <stddef.h>", '#include "dory_kernels.h"', "", "int dory_test_layout(size_t *out);",
             "int dory_test_layout(size_t *out)", "{", "    int n = 0;"]
    for struct in kernel_abi.STRUCTS.values():
        lines.append(f"    out[n++] = sizeof({struct.name});")
        lines += [f"    out[n++] = offsetof({struct.name}, {f.name});" for f in struct.fields]
    return "\n".join([*lines, "    return n;", "}", ""])


# The kinds of struct fields the drivers read (tests/kernels/kernel_table.h): the C base type of a
# value (an array "int32_t[2]" is `count` of them), a pointer (a buffer id), or the requant pointer.
FIELD_KINDS = {"uint8_t": "DT_U8", "int8_t": "DT_I8", "uint16_t": "DT_U16", "int16_t": "DT_I16", "int32_t": "DT_I32",
               "int64_t": "DT_I64", "dory_dtype_t": "DT_DTYPE"}


def field_kind(field: kernel_abi.Field) -> tuple[str, int]:
    """(kind, count) of a struct field in the drivers' table."""
    if isinstance(field.fill, kernel_abi.Requant):
        return "DT_REQUANT", 1
    base, _, count = field.c_type.partition("[")
    return ("DT_POINTER" if base.endswith("*") else FIELD_KINDS[base.strip()]), int(count[:-1]) if count else 1


def kernel_table_source() -> str:
    """kernel_table.h: every kernel of the table (its number is its index) with the fields of its argument
    struct (offset, kind, count) and of dory_requant_t, so the test drivers (tests/kernels/shim.c, rv32_driver.c)
    call and read every kernel, including ones added to dory_mlir/kernel_abi.py later, with no code of their own."""
    lines = ["/* Generated from dory_mlir/kernel_abi.py by tests/test_kernels.py (kernel_table_source). */",
             "#include <stddef.h>", '#include "kernel_table_types.h"', ""]
    for struct in kernel_abi.STRUCTS.values():
        rows = [f"    {{offsetof({struct.name}, {f.name}), {kind}, {count}}},"
                for f in struct.fields for kind, count in [field_kind(f)]]
        lines += [f"static const dt_field_t DT_FIELDS_{struct.name}[] DT_MAYBE_UNUSED = {{", *rows, "};"]
    for kernel in kernel_abi.KERNELS.values():
        call = f"{kernel.name}((const {kernel.struct.name} *)p);"
        lines.append(f"static void dt_call_{kernel.name}(const void *p) {{ {call} }}")
    lines += ["", "static const dt_kernel_t DT_KERNELS[] = {"]
    lines += [f'    {{"{k.name}", dt_call_{k.name}, sizeof({k.struct.name}), DT_FIELDS_{k.struct.name}, '
              f"{len(k.struct.fields)}}}," for k in kernel_abi.KERNELS.values()]
    lines += ["};", f"#define DT_N_KERNELS {len(kernel_abi.KERNELS)}",
              f"#define DT_N_REQUANT_FIELDS {len(kernel_abi.REQUANT.fields)}",
              "#define DT_REQUANT_FIELDS DT_FIELDS_dory_requant_t", ""]
    return "\n".join(lines)


def write_driver_sources(folder: Path) -> Path:
    """The generated source the test drivers include (kernel_table.h) in `folder` (then on the include path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel_table.h").write_text(kernel_table_source())
    return folder


def expected_layout() -> list[int]:
    """sizeof and every field offset, in the order of dory_test_layout()."""
    layout = []
    for struct in MIRRORS.values():
        layout.append(ctypes.sizeof(struct))
        layout += [getattr(struct, name).offset for name, _ in struct._fields_]
    return layout


# Bytes of every array whose address went into an argument struct (address()), by address: what
# the rv32 recorder copies for a pointer field. An address is registered again whenever an array
# at it is passed, so a freed array's entry never outlives its reuse.
BUFFER_BYTES: dict[int, int] = {}


def address(array: np.ndarray | None) -> int | None:
    if array is None:
        return None
    BUFFER_BYTES[array.ctypes.data] = array.nbytes
    return array.ctypes.data


# ----------------------------------------------------------------------------- building the libraries


def compile_library(out: Path, num_cores: int, extra: list[str] = (), opt: str = "-O2") -> Path:
    """The kernels + the shim (+ the host PULP builtins for the SIMD code path) as a shared library."""
    layout = out.with_name(f"{out.stem}_layout.c")
    layout.write_text(layout_source())
    generated = write_driver_sources(out.with_name(f"{out.stem}_generated"))
    shim = [SHIM / "shim.c", layout] + ([SHIM / "pulp_builtins.c"] if "-DDORY_PULP_SIMD" in extra else [])
    cmd = ["gcc", *WARNINGS, opt, "-fPIC", "-shared", f"-DNUM_CORES={num_cores}", *extra,
           f"-I{generated}", f"-I{SHIM}", f"-I{INCLUDE}", *map(str, SOURCES + shim), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)}\n{done.stderr}")
    return out


class KernelLib:
    """One build of the kernel library, loaded with ctypes."""

    def __init__(self, name: str, path: Path):
        self.name = name
        self.dll = ctypes.CDLL(str(path))
        self.cores = self.dll.dory_test_num_cores()
        self.dll.dory_test_run.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self.dll.dory_test_layout.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
        self.dll.dory_requant.argtypes = [ctypes.POINTER(Requant), ctypes.c_int32, ctypes.c_int]
        self.dll.dory_requant.restype = ctypes.c_int32
        layout = (ctypes.c_size_t * 256)()
        n = self.dll.dory_test_layout(layout)
        assert list(layout[:n]) == expected_layout(), "ctypes mirrors differ from dory_kernels.h"

    only: int | None = None  # run only this core (the share checks)

    def run(self, kernel: int, params: ctypes.Structure, rng: np.random.Generator) -> None:
        """All cores, in a random order, with the same arguments (or only core `self.only`)."""
        order = rng.permutation(self.cores) if self.only is None else [self.only]
        c_order = (ctypes.c_int * len(order))(*map(int, order))
        scratch = self.scratch_parts(kernel, params)
        before = ctypes.string_at(params.im2col, scratch * self.cores) if scratch else b""
        assert self.dll.dory_test_run(kernel, ctypes.addressof(params), c_order, len(order)) == 0
        if scratch and self.only is not None:  # a core writes only its own part of the scratch
            after = ctypes.string_at(params.im2col, scratch * self.cores)
            own = slice(self.only * scratch, (self.only + 1) * scratch)
            assert before[: own.start] == after[: own.start] and before[own.stop:] == after[own.stop:], \
                f"core {self.only} wrote outside its part of the im2col scratch"

    @staticmethod
    def scratch_parts(kernel: int, params: ctypes.Structure) -> int:
        """Bytes of one core's part of the im2col scratch (the shim's kernel numbers follow the table's order)."""
        per_core = list(kernel_abi.KERNELS.values())[kernel].im2col_per_core
        return 0 if per_core is None else per_core(params.kh, params.kw, params.in_c, params.in_h)


VARIANTS = {"cores8": (8, []), "cores1": (1, []), "simd8": (8, PULP_SIMD)}


@pytest.fixture(scope="session")
def libs(tmp_path_factory) -> list[KernelLib]:
    root = tmp_path_factory.mktemp("kernels")
    with ThreadPoolExecutor(len(VARIANTS)) as pool:
        paths = dict(zip(VARIANTS, pool.map(lambda item: compile_library(root / f"lib{item[0]}.so", *item[1]),
                                            VARIANTS.items())))
    return [KernelLib(name, path) for name, path in paths.items()]


# ----------------------------------------------------------------------------- golden model helpers

GOLDEN = QnnFunctions()


def int_type(kind: int | str) -> IntegerType:
    if kind == U8:
        return IntegerType(8, Signedness.UNSIGNED)
    if kind == I8:
        return IntegerType(8, Signedness.SIGNED)
    if kind in WIDE:
        return IntegerType(16, Signedness.UNSIGNED if kind == U16 else Signedness.SIGNED)
    return IntegerType(64 if kind == 64 else 32, Signedness.SIGNED)


def value(shape, kind):
    return create_ssa_value(TensorType(int_type(kind), list(shape)))


def golden(op, *args: np.ndarray) -> np.ndarray:
    """Evaluates one verified qnn op with the golden model's implementation."""
    op.verify()
    # the @impl-registered methods, called as the interpreter does (they do not use it)
    run = {qnn.ConvOp: QnnFunctions.run_conv, qnn.LinearOp: QnnFunctions.run_linear,
           qnn.RequantOp: QnnFunctions.run_requant, qnn.AddOp: QnnFunctions.run_add,
           qnn.MaxPoolOp: QnnFunctions.run_max_pool, qnn.SumPoolOp: QnnFunctions.run_sum_pool,
           qnn.MatMulOp: QnnFunctions.run_matmul, qnn.SoftmaxOp: QnnFunctions.run_softmax,
           qnn.RMSNormOp: QnnFunctions.run_rms_norm, qnn.HardswishOp: QnnFunctions.run_hardswish,
           qnn.GeluOp: QnnFunctions.run_gelu, qnn.LayerNormOp: QnnFunctions.run_layer_norm,
           qnn.ITAMaxOp: QnnFunctions.run_ita_max}
    (result,) = run[type(op)](GOLDEN, None, op, tuple(np.asarray(a, dtype=np.int64) for a in args)).values
    return np.asarray(result, dtype=np.int64)


def to_nchw(x_hwc: np.ndarray) -> np.ndarray:
    return x_hwc.transpose(2, 0, 1)[None]


def to_hwc(x_nchw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x_nchw[0].transpose(1, 2, 0))


def random_activations(rng, shape, kind: int) -> np.ndarray:
    lo, hi = RANGE[kind]
    return rng.integers(lo, hi + 1, size=shape).astype(NP_TYPE[kind])


def garbage(rng, shape, dtype) -> np.ndarray:
    """Uninitialized-looking memory: every value the kernel must write is overwritten."""
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def output_buffer(rng, shape, dtype, fill: int | None) -> np.ndarray:
    """Garbage, or every element `fill` (to see which elements a core writes)."""
    return garbage(rng, shape, dtype) if fill is None else np.full(shape, fill, dtype=dtype)


def log_uniform(rng, hi: int) -> int:
    """An integer in [0, hi], magnitudes spread over all bit widths."""
    if hi <= 0:
        return 0
    if rng.random() < 0.1:
        return hi  # the bound itself: the intermediates reach the edge of their width
    return min(hi, int(2 ** rng.uniform(0, math.log2(hi + 1))))


def signed(rng, hi: int, p_negative: float = 0.25) -> int:
    v = log_uniform(rng, hi)
    return -v if rng.random() < p_negative else v


# ----------------------------------------------------------------------------- requant parameters


@dataclass
class RequantCase:
    struct: Requant
    arrays: list[np.ndarray]
    out_type: int
    config: dict
    op_for: Callable  # shape -> qnn.RequantOp
    mul: np.ndarray
    add: np.ndarray

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """The golden requant of an NCHW (or NC) int32 tensor."""
        return golden(self.op_for(acc.shape), acc, self.mul, self.add)


def make_requant(rng, acc: np.ndarray, out_type: int | None = None, wide: bool | None = None,
                 avg_window: int | None = None, out16: bool = False) -> RequantCase:
    """Random requant constants for which every intermediate of `acc` (NCHW/NC) fits the width."""
    channels = acc.shape[1]
    per_channel_max = [int(np.abs(acc[:, c]).max()) + 1 for c in range(channels)]
    if wide is None:
        wide = bool(rng.random() < 0.4)
    bits = 64 if wide else 32
    const_bits = 64 if rng.random() < (0.6 if wide else 0.2) else 32
    mul_pc, add_pc = bool(rng.random() < 0.6), bool(rng.random() < 0.5)
    limit = 2 ** (bits - 1) - 1
    const_limit = 2 ** (const_bits - 1) - 1
    if avg_window is not None and rng.random() < 0.6:  # average pooling: floor(sum / window)
        scale, muls, adds, mul_pc, add_pc = 1, [1], [0], False, False
        divisor = avg_window
    else:
        if wide:
            scale = int(rng.choice([1, 2 ** int(rng.integers(1, 16)), int(rng.integers(2, 1000))]))
        else:
            scale = int(rng.choice([1, 1, int(rng.integers(2, 64))]))
        budget = limit // scale  # |acc * mul + add| <= budget keeps both intermediates in range
        amax = per_channel_max if mul_pc else [max(per_channel_max)]
        muls = [signed(rng, min(const_limit, budget // (2 * a))) for a in amax]
        room = [budget - per_channel_max[c] * abs(muls[c if mul_pc else 0]) for c in range(channels)]
        add_room = room if add_pc else [min(room)]
        adds = [signed(rng, min(const_limit, r), 0.5) for r in add_room]
        typical = sorted(per_channel_max[c] * abs(muls[c if mul_pc else 0]) * scale for c in range(channels))
        target = max(1, typical[len(typical) // 2] // 200)
        divisor = 1
        if rng.random() < 0.6:  # a power of two
            shift = max(0, round(math.log2(target)) + int(rng.integers(-1, 2)))
            if not wide and rng.random() < 0.05:
                shift = int(rng.integers(31, 41))  # a divisor beyond every 32-bit value
            divisor = 2 ** min(shift, 62)
        else:
            choice = rng.random()
            if choice < 0.35:
                divisor = 2 ** max(2, round(math.log2(target + 1))) - 1  # 2^d - 1 (some exporters)
            elif choice < 0.55:
                divisor = int(rng.integers(1, 12))
            elif choice < 0.95:
                divisor = max(1, int(target * rng.uniform(0.5, 2.0)))
            else:  # beyond every 32-bit value / a huge 64-bit one
                divisor = 3 * 2**31 if not wide else int(rng.integers(2**40, 2**62))
    if out_type is None:
        out_type = int(rng.choice([U8, U8, I8, I8, I32] + ([U16, I16, U16, I16] if out16 else [])))
    lo, hi = RANGE[out_type]
    if rng.random() < 0.3:  # a narrower clip (ReLU6-like)
        lo, hi = (int(rng.integers(lo, lo + 20)), int(rng.integers(hi - 150, hi + 1))) if out_type != I32 else \
                 (int(rng.integers(-(2**20), 0)), int(rng.integers(1, 2**20)))
    trunc = bool(rng.random() < 0.5)
    shift = divisor.bit_length() - 1 if divisor & (divisor - 1) == 0 else -1
    const_np = np.int64 if const_bits == 64 else np.int32
    mul_arr, add_arr = np.array(muls, dtype=const_np), np.array(adds, dtype=const_np)
    struct = Requant(mul=address(mul_arr), add=address(add_arr), mul_per_channel=int(len(muls) > 1),
                     add_per_channel=int(len(adds) > 1), const_bits=const_bits, wide=int(wide), trunc=int(trunc),
                     shift=shift, scale=scale, divisor=divisor, min=lo, max=hi)
    config = dict(wide=wide, const_bits=const_bits, mul=muls if len(muls) < 6 else f"{len(muls)} values",
                  add=adds if len(adds) < 6 else f"{len(adds)} values", scale=scale, divisor=divisor, shift=shift,
                  trunc=trunc, min=lo, max=hi, out_type=out_type)

    def op_for(shape):
        c = shape[1]
        return qnn.RequantOp(value(shape, I32), value((len(muls),) if len(muls) == 1 else (c,), const_bits),
                             value((len(adds),) if len(adds) == 1 else (c,), const_bits), TensorType(int_type(out_type), list(shape)),
                             scale=scale, divisor=divisor, min=lo, max=hi,
                             rounding=qnn.Rounding.TRUNC if trunc else qnn.Rounding.FLOOR, intermediate_bits=bits)

    return RequantCase(struct, [mul_arr, add_arr], out_type, config, op_for,
                       np.array(muls, dtype=np.int64), np.array(adds, dtype=np.int64))


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One random configuration: `execute(lib, rng)` returns the kernel's output (HWC)."""

    name: str
    seed: int
    config: dict
    expected: np.ndarray
    execute: Callable[[KernelLib, np.random.Generator], np.ndarray]
    keep: list = field(default_factory=list)

    def check_shares(self, lib: KernelLib) -> None:
        """Run core by core: every output element is written by exactly one core (so the
        cores need no synchronization), and each core writes only its part of the scratch."""
        fills = (0x11, 0x22)
        writers = np.zeros(self.expected.shape, dtype=np.int64)
        for core in range(lib.cores):
            lib.only = core
            try:
                written = [self.execute(lib, np.random.default_rng(self.seed), fill) != fill for fill in fills]
            finally:
                lib.only = None
            writers += written[0] | written[1]
        if not (writers == 1).all():
            raise AssertionError(f"{self.name} seed={self.seed} lib={lib.name}: elements written by "
                                 f"{sorted(set(writers.ravel().tolist()))} cores\nconfig: {self.config}")

    def check(self, lib: KernelLib) -> None:
        got = self.execute(lib, np.random.default_rng(self.seed + 7919))
        if got.shape != self.expected.shape or not np.array_equal(got.astype(np.int64), self.expected):
            bad = np.argwhere(got.astype(np.int64) != self.expected)[:5] if got.shape == self.expected.shape else []
            detail = ", ".join(f"{tuple(map(int, i))}: got {int(got[tuple(i)])} expected {int(self.expected[tuple(i)])}"
                               for i in bad)
            raise AssertionError(f"{self.name} seed={self.seed} lib={lib.name} mismatch ({detail})\n"
                                 f"config: {self.config}")


def output_extent(size, k, s, p0, p1, d=1) -> int:
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def input_extent_for(rng, k, d, p0, p1, extra=6) -> int:
    """An input size whose padded extent holds the dilated window."""
    need = max(1, d * (k - 1) + 1 - p0 - p1)
    return need + int(rng.integers(0, extra + 1))


def slices_of(rng, channels: int, most: int = 3) -> list[tuple[int, int]]:
    n = int(rng.integers(1, min(most, channels) + 1))
    cuts = sorted(rng.choice(np.arange(1, channels), size=n - 1, replace=False).tolist()) if n > 1 else []
    bounds = [0, *cuts, channels]
    return list(zip(bounds[:-1], bounds[1:]))


def requant_or_int32(rng, acc: np.ndarray, p_int32: float = 0.25, **kwargs):
    """(RequantCase or None, golden output NCHW/NC, out_type)."""
    if rng.random() < p_int32:
        return None, acc, I32
    rq = make_requant(rng, acc, **kwargs)
    return rq, rq.apply(acc), rq.out_type


def conv_case(seed: int, kind: str) -> Case:
    """conv2d (im2col), pointwise or depthwise, with random geometry, types and requant
    (`…16`: 16-bit inputs, and outputs of every type)."""
    rng = np.random.default_rng(seed)
    wide = kind.endswith("16")
    kind = kind.removesuffix("16")
    depthwise = kind.startswith("depthwise")
    extra = 6
    if kind == "pointwise":
        kh = kw = dh = dw = 1
        pads = rng.integers(0, 2, 4).tolist() if rng.random() < 0.2 else [0, 0, 0, 0]
    elif kind == "pointwise-rows":  # tiles of one GEMM row (or a few pixels): the cores share the channels
        kh = kw = dh = dw = 1
        pads = [0, 0, 0, 0]
        extra = int(rng.choice([0, 0, 1, 3]))
    elif kind == "conv-rows":  # first layers: short window rows read in place (kw * in_c <= 16)
        kh, kw = (int(rng.choice([1, 3, 5])) for _ in range(2))
        dh, dw = int(rng.choice([1, 1, 2])), 1
        pads = rng.integers(0, 2, 4).tolist()
        extra = 12
    elif kind == "depthwise3x3":  # the sliding-window path: lines longer than its runs of 16
        kh = kw = 3
        dh = dw = 1
        pads = rng.integers(0, 3, 4).tolist()
        extra = int(rng.choice([6, 24]))
    else:
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        dh, dw = (int(rng.choice([1, 1, 1, 2, 3])) for _ in range(2))
        pads = rng.integers(0, 4, 4).tolist()
    sh, sw = (int(v) for v in rng.integers(1, 3, 2))
    t, l, b, r = (int(p) for p in pads)
    in_h, in_w = input_extent_for(rng, kh, dh, t, b, extra), input_extent_for(rng, kw, dw, l, r, extra)
    in_c = int(rng.integers(1, 4)) if kind == "conv-rows" else int(rng.integers(1, 14))
    out_c = in_c if depthwise else int(rng.integers(1, 48 if kind == "pointwise-rows" else 12))
    out_h, out_w = output_extent(in_h, kh, sh, t, b, dh), output_extent(in_w, kw, sw, l, r, dw)
    in_type = int(rng.choice(WIDE if wide else [U8, U8, U8, I8] if kind == "conv-rows" else [U8, I8]))
    x = random_activations(rng, (in_h, in_w, in_c), in_type)
    w = rng.integers(-128, 128, size=(out_c, kh, kw, 1 if depthwise else in_c)).astype(np.int8)
    bias = rng.integers(-(2**int(rng.integers(4, 24))), 2**20, size=out_c).astype(np.int32) if rng.random() < 0.7 else None
    # padding by a zero point (QDQ / QOperator models) in some cases
    pad_value = int(rng.integers(RANGE[in_type][0], min(RANGE[in_type][1], 2**15 - 1) + 1)) \
        if any(pads) and rng.random() < 0.3 else 0
    op = qnn.ConvOp(value((1, in_c, in_h, in_w), in_type), value((out_c, 1 if depthwise else in_c, kh, kw), I8),
                    None if bias is None else value((out_c,), I32), TensorType(int_type(I32), [1, out_c, out_h, out_w]),
                    strides=(sh, sw), pads=(t, l, b, r), dilations=(dh, dw), groups=in_c if depthwise else 1,
                    pad_value=pad_value)
    args = [to_nchw(x), w.transpose(0, 3, 1, 2)] + ([] if bias is None else [bias])
    acc = golden(op, *args)
    rq, y, out_type = requant_or_int32(rng, acc, **(dict(p_int32=0.0, out_type=U8) if kind == "conv-rows" else
                                                    dict(out16=True) if wide else {}))
    expected = to_hwc(y)
    whole = depthwise or kind == "conv-rows"  # (conv-rows: the output paths that read in place)
    slices = [(0, in_c)] if whole else slices_of(rng, in_c)
    use_acc = kind != "conv-rows" and (len(slices) > 1 or rng.random() < 0.2)
    kernel = K_DEPTHWISE if depthwise else {"conv": K_CONV2D, "conv-rows": K_CONV2D, "pointwise": K_POINTWISE,
                                            "pointwise-rows": K_POINTWISE}[kind]
    config = dict(kind=kind, in_hwc=(in_h, in_w, in_c), out_hwc=(out_h, out_w, out_c), k=(kh, kw), s=(sh, sw),
                  d=(dh, dw), pads_tlbr=(t, l, b, r), pad_value=pad_value, in_type=in_type, bias=bias is not None, slices=slices,
                  acc=use_acc, requant=None if rq is None else rq.config)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (out_h, out_w, out_c), NP_TYPE[out_type], fill)
        acc_buf = garbage(run_rng, (out_h, out_w, out_c), np.int32) if use_acc else None
        for n, (c0, c1) in enumerate(slices):
            xs = np.ascontiguousarray(x[:, :, c0:c1])
            ws = np.ascontiguousarray(w if depthwise else w[:, :, :, c0:c1])
            ci = c1 - c0
            if kernel == K_CONV2D:
                scratch = garbage(run_rng, 2 * lib.cores * kh * kw * ci, np.int8)
            elif depthwise:
                scratch = garbage(run_rng, lib.cores * in_h * kw, np.int8)
            else:
                scratch = None
            params = Conv(in_=address(xs), in_type=in_type, in_h=in_h, in_w=in_w, in_c=ci, weights=address(ws),
                          bias=address(bias), out_h=out_h, out_w=out_w, out_c=out_c, kh=kh, kw=kw, sh=sh, sw=sw,
                          dh=dh, dw=dw, pad_t=t, pad_l=l, pad_b=b, pad_r=r, acc=address(acc_buf),
                          first_slice=int(n == 0), last_slice=int(n == len(slices) - 1),
                          rq=None if rq is None else ctypes.addressof(rq.struct), out=address(out),
                          out_type=out_type, im2col=address(scratch), pad_value=pad_value)
            lib.run(kernel, params, run_rng)
        return out

    return Case(kind + ("16" if wide else ""), seed, config, expected, execute, [rq])


def linear_case(seed: int, wide: bool = False) -> Case:
    rng = np.random.default_rng(seed)
    k, m = int(rng.integers(1, 80)), int(rng.integers(1, 40))
    in_type = int(rng.choice(WIDE if wide else [U8, I8]))
    x = random_activations(rng, (k,), in_type)
    w = rng.integers(-128, 128, size=(m, k)).astype(np.int8)
    bias = rng.integers(-(2**22), 2**22, size=m).astype(np.int32) if rng.random() < 0.7 else None
    op = qnn.LinearOp(value((1, k), in_type), value((m, k), I8), None if bias is None else value((m,), I32),
                      TensorType(int_type(I32), [1, m]))
    acc = golden(op, x[None], w, *([] if bias is None else [bias]))
    rq, y, out_type = requant_or_int32(rng, acc, out16=wide)
    slices = slices_of(rng, k, 4)
    use_acc = len(slices) > 1 or rng.random() < 0.2
    config = dict(in_c=k, out_c=m, in_type=in_type, bias=bias is not None, slices=slices, acc=use_acc,
                  requant=None if rq is None else rq.config)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (m,), NP_TYPE[out_type], fill)
        acc_buf = garbage(run_rng, (m,), np.int32) if use_acc else None
        for n, (c0, c1) in enumerate(slices):
            xs, ws = np.ascontiguousarray(x[c0:c1]), np.ascontiguousarray(w[:, c0:c1])
            params = Linear(in_=address(xs), in_type=in_type, in_c=c1 - c0, out_c=m, weights=address(ws),
                            bias=address(bias), acc=address(acc_buf), first_slice=int(n == 0),
                            last_slice=int(n == len(slices) - 1),
                            rq=None if rq is None else ctypes.addressof(rq.struct), out=address(out),
                            out_type=out_type)
            lib.run(K_LINEAR, params, run_rng)
        return out

    return Case("linear16" if wide else "linear", seed, config, y[0], execute, [rq])


def pool_case(seed: int, kind: str) -> Case:
    rng = np.random.default_rng(seed)
    wide = kind.endswith("16")
    kind = kind.removesuffix("16")
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    if kind == "maxpool" and seed % 3 == 0:  # the 2x2 window of the kernel's fast path
        kh = kw = 2
    sh, sw = (int(v) for v in rng.integers(1, 3, 2))
    if kind == "maxpool":  # pads smaller than the kernel (the op's rule)
        t, b = (int(rng.integers(0, kh)) for _ in range(2))
        l, r = (int(rng.integers(0, kw)) for _ in range(2))
    else:
        t, l, b, r = (int(p) for p in rng.integers(0, 4, 4))
    in_h, in_w = input_extent_for(rng, kh, 1, t, b, 7), input_extent_for(rng, kw, 1, l, r, 7)
    c = int(rng.integers(1, 14))
    out_h, out_w = output_extent(in_h, kh, sh, t, b), output_extent(in_w, kw, sw, l, r)
    in_type = int(rng.choice(WIDE if wide else [U8, I8]))
    x = random_activations(rng, (in_h, in_w, c), in_type)
    op_class = qnn.MaxPoolOp if kind == "maxpool" else qnn.SumPoolOp
    result = in_type if kind == "maxpool" else I32
    op = op_class(value((1, c, in_h, in_w), in_type), TensorType(int_type(result), [1, c, out_h, out_w]),
                  kernel=(kh, kw), strides=(sh, sw), pads=(t, l, b, r))
    pooled = golden(op, to_nchw(x))
    if kind == "maxpool" and rng.random() < 0.7:
        rq, y, out_type = None, pooled, in_type
    elif kind == "maxpool":  # a max pool that changes the quantization (QDQ models): its requant
        rq = make_requant(rng, pooled, out16=wide)
        y, out_type = rq.apply(pooled), rq.out_type
    else:
        rq, y, out_type = requant_or_int32(rng, pooled, 0.2, avg_window=kh * kw, out16=wide)
    config = dict(kind=kind, in_hwc=(in_h, in_w, c), out_hw=(out_h, out_w), k=(kh, kw), s=(sh, sw),
                  pads_tlbr=(t, l, b, r), in_type=in_type, requant=None if rq is None else rq.config)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (out_h, out_w, c), NP_TYPE[out_type], fill)
        params = Pool(in_=address(x), in_type=in_type, in_h=in_h, in_w=in_w, c=c, out_h=out_h, out_w=out_w,
                      kh=kh, kw=kw, sh=sh, sw=sw, pad_t=t, pad_l=l, pad_b=b, pad_r=r,
                      rq=None if rq is None else ctypes.addressof(rq.struct), out=address(out), out_type=out_type)
        lib.run(K_MAXPOOL if kind == "maxpool" else K_SUMPOOL, params, run_rng)
        return out

    return Case(kind + ("16" if wide else ""), seed, config, to_hwc(y), execute, [rq])


def add_term(rng, kind: int) -> tuple[int, int, int]:
    """(mul, add, shift) with |floor((x * mul + add) / 2^shift)| <= 2^29 for every x of the type."""
    xmax = {U8: 255, I8: 128, U16: 65535, I16: 32768}[kind]
    shift = int(rng.integers(0, 32))
    if rng.random() < 0.3:
        shift, mul, add = 0, 1, 0  # the plain sum of the inputs
        return mul, add, shift
    mul = signed(rng, min(2**31 - 1, (2 ** (28 + shift)) // xmax))
    add = signed(rng, min(2**31 - 1, 2 ** (28 + shift)), 0.5)
    return mul, add, shift


def add_case(seed: int, wide: bool = False) -> Case:
    """(wide: at least one 16-bit input, outputs of every type)"""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 14))
    ta, tb = (int(rng.choice([U8, I8, U16, I16] if wide else [U8, I8])) for _ in range(2))
    if wide and ta not in WIDE and tb not in WIDE:
        ta = int(rng.choice(WIDE))
    a, b = random_activations(rng, (h, w, c), ta), random_activations(rng, (h, w, c), tb)
    (m0, a0, s0), (m1, a1, s1) = add_term(rng, ta), add_term(rng, tb)
    op = qnn.AddOp(value((1, c, h, w), ta), value((1, c, h, w), tb), TensorType(int_type(I32), [1, c, h, w]),
                   mul=(m0, m1), add=(a0, a1), shift=(s0, s1))
    total = golden(op, to_nchw(a), to_nchw(b))
    rq, y, out_type = requant_or_int32(rng, total, out16=wide)
    config = dict(hwc=(h, w, c), types=(ta, tb), mul=(m0, m1), add=(a0, a1), shift=(s0, s1),
                  requant=None if rq is None else rq.config)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (h, w, c), NP_TYPE[out_type], fill)
        params = Add(a=address(a), b=address(b), a_type=ta, b_type=tb, h=h, w=w, c=c, mul=(i32 * 2)(m0, m1),
                     add=(i32 * 2)(a0, a1), shift=(u8 * 2)(s0, s1),
                     rq=None if rq is None else ctypes.addressof(rq.struct), out=address(out), out_type=out_type)
        lib.run(K_ADD, params, run_rng)
        return out

    return Case("add16" if wide else "add", seed, config, to_hwc(y), execute, [rq])


def matmul_case(seed: int) -> Case:
    """Two activation tiles a [m][k] × b [k][n] (each u8 or i8), K in slices (partial sums), requant
    per column / per tensor, or int32 products."""
    rng = np.random.default_rng(seed)
    most = 48 if seed % 4 == 0 else 20  # some tiles with several 4 x 2 blocks per core
    m, k, n = int(rng.integers(1, most)), int(rng.integers(1, 70)), int(rng.integers(1, most))
    ta, tb = (int(rng.choice([U8, I8])) for _ in range(2))
    a, b = random_activations(rng, (m, k), ta), random_activations(rng, (k, n), tb)
    # The IR holds rows of features: a is 1×K×M×1, b 1×N×K×1, the product 1×N×M×1 (NCHW).
    op = qnn.MatMulOp(value((1, k, m, 1), ta), value((1, n, k, 1), tb), TensorType(int_type(I32), [1, n, m, 1]))
    acc = golden(op, a.T.reshape(1, k, m, 1), b.T.reshape(1, n, k, 1))
    rq, y, out_type = requant_or_int32(rng, acc)
    slices = slices_of(rng, k, 4)
    use_acc = len(slices) > 1 or rng.random() < 0.2
    config = dict(mkn=(m, k, n), types=(ta, tb), slices=slices, acc=use_acc, requant=None if rq is None else rq.config)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (m, 1, n), NP_TYPE[out_type], fill)
        acc_buf = garbage(run_rng, (m, n), np.int32) if use_acc else None
        for index, (k0, k1) in enumerate(slices):
            a_s, b_s = np.ascontiguousarray(a[:, k0:k1]), np.ascontiguousarray(b[k0:k1])
            params = MatMul(a=address(a_s), b=address(b_s), a_type=ta, b_type=tb, m=m, k=k1 - k0, n=n,
                            acc=address(acc_buf), first_slice=int(index == 0), last_slice=int(index == len(slices) - 1),
                            rq=None if rq is None else ctypes.addressof(rq.struct), out=address(out), out_type=out_type)
            lib.run(K_MATMUL, params, run_rng)
        return out

    return Case("matmul", seed, config, to_hwc(y), execute, [rq])


def row_tile(rng) -> tuple[int, int, int, int]:
    """(h, w, c, in_type) of a tile of rows of features (a pixel is a row of c features)."""
    return int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 70)), int(rng.choice([U8, I8]))


def softmax_case(seed: int) -> Case:
    """QuantLib's iSoftmax over the c features of every pixel, QuantLib's coefficients for an input step of
    ln 2 / log2 (quantlib_builder.i_softmax), n_levels up to 256."""
    rng = np.random.default_rng(seed)
    h, w, c, in_type = row_tile(rng)
    log2 = int(rng.choice([8, 37, 128, 255]))
    coeffs = dict(coeff_a=1, coeff_b=round(1.353 * log2), coeff_c=round(0.344 / 0.3585 * log2 * log2), log2=log2,
                  n_levels=int(rng.choice([256, 256, 16, 2])))
    x = random_activations(rng, (h, w, c), in_type)
    op = qnn.SoftmaxOp(value((1, c, h, w), in_type), TensorType(int_type(U8), [1, c, h, w]), **coeffs)
    expected = to_hwc(golden(op, to_nchw(x)))

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (h, w, c), np.uint8, fill)
        lib.run(K_SOFTMAX, Softmax(in_=address(x), in_type=in_type, h=h, w=w, c=c, out=address(out), **coeffs), run_rng)
        return out

    return Case("softmax", seed, dict(hwc=(h, w, c), in_type=in_type, **coeffs), expected, execute)


def row_norm_case(name: str, seed: int, with_bias: bool) -> Case:
    """QuantLib's iRMSNorm (`with_bias` False) or iLayerNorm over the c features of every pixel: int32 gains
    (|x·weight| < 2^31 for the RMS norm, a mean-free x four times wider for the layer norm) and, for the layer
    norm, offsets per feature; a shift (log2 D), an 8-bit output clipped to its type's range or narrower."""
    rng = np.random.default_rng(seed)
    h, w, c, in_type = row_tile(rng)
    out_type = int(rng.choice([I8, I8, U8]))
    shift = int(rng.integers(0, 17))
    weight = np.array([signed(rng, 2**31 // (1024 if with_bias else 256) - 1, 0.3) for _ in range(c)], dtype=np.int32)
    constants = [weight] + ([np.array([signed(rng, 2**24, 0.5) for _ in range(c)], dtype=np.int32)] if with_bias else [])
    x = random_activations(rng, (h, w, c), in_type)
    op_class, kernel, mirror = (qnn.LayerNormOp, K_LAYERNORM, LayerNorm) if with_bias else (qnn.RMSNormOp, K_RMSNORM, RMSNorm)
    op = op_class(value((1, c, h, w), in_type), *(value((c,), I32) for _ in constants),
                  TensorType(int_type(out_type), [1, c, h, w]), shift)
    lo, hi = RANGE[out_type]
    if rng.random() < 0.3:  # a narrower clip (n_levels below 256)
        lo, hi = lo + int(rng.integers(0, 64)), hi - int(rng.integers(0, 64))
    expected = np.clip(to_hwc(golden(op, to_nchw(x), *constants)), lo, hi)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (h, w, c), NP_TYPE[out_type], fill)
        pointers = dict(zip(("weight", "bias"), (address(v) for v in constants)))
        lib.run(kernel, mirror(in_=address(x), in_type=in_type, h=h, w=w, c=c, shift=shift, min=lo, max=hi,
                               out=address(out), out_type=out_type, **pointers), run_rng)
        return out

    return Case(name, seed, dict(hwc=(h, w, c), in_type=in_type, out_type=out_type, shift=shift, clip=(lo, hi)),
                expected, execute)


rmsnorm_case = partial(row_norm_case, "rmsnorm", with_bias=False)
layernorm_case = partial(row_norm_case, "layernorm", with_bias=True)


def elementwise_int32_case(name: str, seed: int, op_class, kernel: int, mirror, draw_params) -> Case:
    """A QuantLib elementwise op with an int32 result (iHardswish, iGELU) on a random HWC tile, its parameters
    drawn by `draw_params(rng)`, then a requant per channel or per tensor, or the int32 values."""
    rng = np.random.default_rng(seed)
    h, w, c = int(rng.integers(1, 8)), int(rng.integers(1, 8)), int(rng.integers(1, 14))
    in_type = int(rng.choice([U8, I8]))
    params = draw_params(rng)
    x = random_activations(rng, (h, w, c), in_type)
    op = op_class(value((1, c, h, w), in_type), TensorType(int_type(I32), [1, c, h, w]), **params)
    rq, y, out_type = requant_or_int32(rng, golden(op, to_nchw(x)), 0.3)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (h, w, c), NP_TYPE[out_type], fill)
        lib.run(kernel, mirror(in_=address(x), in_type=in_type, h=h, w=w, c=c,
                               rq=None if rq is None else ctypes.addressof(rq.struct), out=address(out),
                               out_type=out_type, **params), run_rng)
        return out

    return Case(name, seed, dict(hwc=(h, w, c), in_type=in_type, requant=None if rq is None else rq.config,
                                 **params), to_hwc(y), execute, [rq])


def hardswish_params(rng) -> dict[str, int]:
    """iHardswish for an input step of 1/step (quantlib_builder.i_hardswish)."""
    step = int(rng.choice([4, 16, 42, 255]))
    return dict(one_over_six=round(2 ** int(rng.integers(3, 8)) / 6), three=3 * step, six=6 * step)


def gelu_params(rng) -> dict[str, int]:
    """iGELU's constants for an input step eps (quantlib_builder.i_gelu)."""
    eps_b = float(rng.choice([1 / 8, 1 / 16, 8 / 255, 1 / 50, 1 / 64])) / math.sqrt(2.0)
    return dict(b=math.floor(-1.769 / eps_b + 0.5), one=math.floor(1.0 / (eps_b * eps_b * 0.2888) + 0.5))


hardswish_case = partial(elementwise_int32_case, "hardswish", op_class=qnn.HardswishOp, kernel=K_HARDSWISH,
                         mirror=Hardswish, draw_params=hardswish_params)
gelu_case = partial(elementwise_int32_case, "gelu", op_class=qnn.GeluOp, kernel=K_GELU, mirror=Gelu,
                    draw_params=gelu_params)


def itamax_case(seed: int) -> Case:
    """ITA's integer softmax (QuantLib's ITAMax: one group of all the features, or ITAPartialMax in groups)
    over the c int8 features of every pixel."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    width = int(rng.choice([1, 4, 16])) if rng.random() < 0.5 else None
    c = int(rng.integers(1, 5)) * width if width else int(rng.integers(1, 70))
    params = dict(n_levels=256, group_width=width or c)
    x = random_activations(rng, (h, w, c), I8)
    op = qnn.ITAMaxOp(value((1, c, h, w), I8), TensorType(int_type(U8), [1, c, h, w]), **params)
    expected = to_hwc(golden(op, to_nchw(x)))

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        out = output_buffer(run_rng, (h, w, c), np.uint8, fill)
        lib.run(K_ITAMAX, ITAMax(in_=address(x), h=h, w=w, c=c, out=address(out), **params), run_rng)
        return out

    return Case("itamax", seed, dict(hwc=(h, w, c), **params), expected, execute)


def requant_case(seed: int) -> Case:
    """dory_requant on single values: accumulators of every magnitude, up to the int32 extremes."""
    rng = np.random.default_rng(seed)
    channels = int(rng.integers(1, 9))
    magnitude = int(rng.choice([8, 16, 24, 31]))
    acc = rng.integers(-(2**magnitude), 2**magnitude, size=(64, channels), dtype=np.int64)
    if magnitude == 31:
        acc[0, 0], acc[1, 0] = -(2**31), 2**31 - 1
    rq = make_requant(rng, acc)
    expected = rq.apply(acc)

    def execute(lib: KernelLib, run_rng, fill: int | None = None) -> np.ndarray:
        del run_rng, fill
        return np.array([[lib.dll.dory_requant(ctypes.byref(rq.struct), int(v), c) for c, v in enumerate(row)]
                         for row in acc], dtype=np.int64)

    return Case("requant", seed, dict(acc_bits=magnitude, channels=channels, requant=rq.config), expected, execute, [rq])


# ----------------------------------------------------------------------------- the random tests

COUNTS = {"conv": 60, "pointwise": 30, "depthwise": 45, "linear": 30, "maxpool": 25, "sumpool": 25, "add": 25,
          "requant": 20, "depthwise3x3": 40, "conv-rows": 40, "pointwise-rows": 20, "matmul": 30,
          # 16-bit inputs (and outputs of every type): the exact path of wide.c
          "conv16": 20, "pointwise16": 12, "depthwise16": 12, "linear16": 12, "maxpool16": 10, "sumpool16": 10,
          "add16": 12,
          # QuantLib's integer transformer ops
          "softmax": 20, "rmsnorm": 20, "hardswish": 20, "gelu": 20, "layernorm": 20, "itamax": 20}


def make_case(name: str, seed: int) -> Case:
    if name.removesuffix("16") in ("conv", "pointwise", "depthwise", "depthwise3x3", "conv-rows", "pointwise-rows"):
        return conv_case(seed, name)
    if name.removesuffix("16") in ("maxpool", "sumpool"):
        return pool_case(seed, name)
    return {"linear": linear_case, "add": add_case, "requant": requant_case, "matmul": matmul_case,
            "softmax": softmax_case, "rmsnorm": rmsnorm_case, "hardswish": hardswish_case,
            "gelu": gelu_case, "layernorm": layernorm_case, "itamax": itamax_case,
            "linear16": partial(linear_case, wide=True), "add16": partial(add_case, wide=True)}[name](seed)


ALL_CASES = [(name, 1000 * index + seed) for index, (name, n) in enumerate(COUNTS.items()) for seed in range(n)]


@pytest.mark.parametrize("name,seed", ALL_CASES, ids=[f"{n}-{s}" for n, s in ALL_CASES])
def test_random_configuration(libs: list[KernelLib], name: str, seed: int):
    case = make_case(name, seed)
    for lib in libs:
        case.check(lib)


SHARE_CASES = [(name, 1000 * index + seed) for index, name in enumerate(COUNTS) if name != "requant"
               for seed in range(4)]


@pytest.mark.parametrize("name,seed", SHARE_CASES, ids=[f"{n}-{s}" for n, s in SHARE_CASES])
def test_cores_write_disjoint_shares(libs: list[KernelLib], name: str, seed: int):
    make_case(name, seed).check_shares(libs[0])


def test_at_least_200_configurations():
    assert len(ALL_CASES) >= 200


def test_every_kernel_of_the_table_has_cases():
    """The drivers call any kernel of the table; this asks for random configurations of each (one seed of
    every family recorded, no build): a kernel added to dory_mlir/kernel_abi.py needs a case family here."""
    called = set()
    for index, name in enumerate(COUNTS):
        if name == "requant":  # dory_requant, the API's single value (not a kernel of the table)
            continue
        recorder = Recorder()
        make_case(name, 1000 * index).execute(recorder, np.random.default_rng(0))
        called |= set(recorder.kernels)
    missing = sorted(set(KERNEL_ID) - {list(KERNEL_ID)[k] for k in called})
    assert not missing, f"kernels of the table without random configurations in COUNTS: {missing}"


# ----------------------------------------------------------------------------- requant edge cases

EDGES = [
    # (wide, const_bits, acc, mul, add, scale, divisor, trunc): intermediates at the edge of the width
    (0, 32, 2**30 + 50, 2, -200, 1, 1, 0),           # acc*mul leaves int32, + add comes back
    (0, 32, -(2**31), 1, 0, 1, 2**31, 0),            # t = INT32_MIN, shift 31, floor -> -1
    (0, 32, -(2**31), 1, 0, 1, 2**31, 1),            # trunc -> -1 (exactly divisible)
    (0, 32, -(2**31) + 1, 1, 0, 1, 2**31, 1),        # trunc -> 0
    (0, 32, -5, 1, 0, 1, 3 * 2**31, 0),              # divisor beyond int32: floor -> -1
    (0, 32, -5, 1, 0, 1, 3 * 2**31, 1),              # trunc -> 0
    (0, 32, -5, 1, 0, 1, 2**40, 0),                  # shift 40 in a 32-bit requant
    (0, 64, 0, 2**40, 5, 3, 7, 0),                   # a 64-bit mul constant in a 32-bit requant (acc 0)
    (0, 64, 0, 2**40, 0, 2**40, 7, 0),               # 64-bit mul and scale, intermediate 0
    (0, 32, 2**31 - 1, 1, 0, 1, 2**31 - 1, 0),       # INT32_MAX / INT32_MAX
    (0, 32, -(2**31), 1, 0, 1, 2**31 - 1, 0),        # floor(INT32_MIN / INT32_MAX) = -2
    (0, 32, -(2**31), 1, 0, 1, 2**31 - 1, 1),        # trunc -> -1
    (0, 32, -7, 1, 0, 1, 2, 0), (0, 32, -7, 1, 0, 1, 2, 1), (0, 32, -7, 1, 0, 1, 3, 0), (0, 32, -7, 1, 0, 1, 3, 1),
    (1, 64, 2**31 - 1, 2**32 + 4, -(2**33), 1, 2**40, 0),  # acc*mul leaves int64, + add comes back
    (1, 64, -(2**31), 2**32, 0, 1, 2**62, 0),        # t = INT64_MIN, shift 62
    (1, 64, -(2**31), 2**32, 0, 1, 2**62, 1),
    (1, 64, -(2**31), 2**32, 0, 1, 3, 0),            # INT64_MIN / 3, floor and trunc
    (1, 64, -(2**31), 2**32, 0, 1, 3, 1),
    (1, 64, -(2**31), 2**32, 0, 1, 1, 1),            # INT64_MIN / 1 (clipped)
    (1, 32, -(2**31), -(2**31), 0, 1, 2**62, 0),     # (-2^31)^2 = 2^62 with 32-bit constants
    (1, 32, 12345, -(2**31), -(2**31), 2**8, 2**45 - 1, 0),
    (1, 32, -12345, 2**31 - 1, 2**31 - 1, 2**8, 2**45 - 1, 1),
]


@pytest.mark.parametrize("edge", range(len(EDGES)))
def test_requant_edge_values(libs: list[KernelLib], edge: int):
    wide, const_bits, acc, mul, add, scale, divisor, trunc = EDGES[edge]
    bits = 64 if wide else 32
    t = (acc * mul + add) * scale
    assert -(2 ** (bits - 1)) <= t < 2 ** (bits - 1), "an illegal edge case (the golden model rejects it)"
    for lo, hi in ((-(2**31), 2**31 - 1), (-128, 127)):
        out_kind = I32 if hi > 127 else I8
        const_np = np.int64 if const_bits == 64 else np.int32
        mul_arr, add_arr = np.array([mul], dtype=const_np), np.array([add], dtype=const_np)
        op = qnn.RequantOp(value((1, 1), I32), value((1,), const_bits), value((1,), const_bits),
                           TensorType(int_type(out_kind), [1, 1]), scale=scale, divisor=divisor, min=lo, max=hi,
                           rounding=qnn.Rounding.TRUNC if trunc else qnn.Rounding.FLOOR, intermediate_bits=bits)
        expected = int(golden(op, np.array([[acc]]), np.array([mul]), np.array([add]))[0, 0])
        shifts = [divisor.bit_length() - 1, -1] if divisor & (divisor - 1) == 0 else [-1]
        for shift in shifts:  # the shift and the division path must agree
            rq = Requant(mul=address(mul_arr), add=address(add_arr), mul_per_channel=0, add_per_channel=0,
                         const_bits=const_bits, wide=wide, trunc=trunc, shift=shift, scale=scale, divisor=divisor,
                         min=lo, max=hi)
            for lib in libs:
                got = lib.dll.dory_requant(ctypes.byref(rq), acc, 0)
                assert got == expected, f"edge {EDGES[edge]} shift={shift} clip=[{lo}, {hi}] lib={lib.name}: " \
                                        f"got {got}, expected {expected}"


def test_requant_null_constants_are_identity(libs: list[KernelLib]):
    """mul == NULL means 1 and add == NULL means 0 (formats without a k or l)."""
    rq = Requant(mul=None, add=None, const_bits=32, wide=0, trunc=0, shift=2, scale=3, divisor=4, min=-128, max=127)
    for lib in libs:
        assert [lib.dll.dory_requant(ctypes.byref(rq), v, 0) for v in (-9, -1, 0, 5, 1000)] == [-7, -1, 0, 3, 127]


def test_wide_requant_multiplier_beyond_int32(libs: list[KernelLib]):
    """A 64-bit requant whose mul * scale leaves int32 (the kernels' 64 x 32-bit product path)
    on a pointwise layer, values on both sides of and inside the clip window."""
    rng = np.random.default_rng(5)
    h, w, ci, co = 4, 6, 3, 8
    x = rng.integers(0, 3, (h, w, ci)).astype(np.uint8)
    wt = rng.integers(-1, 2, (co, 1, 1, ci)).astype(np.int8)
    op = qnn.ConvOp(value((1, ci, h, w), U8), value((co, ci, 1, 1), I8), None,
                    TensorType(int_type(I32), [1, co, h, w]), strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
                    groups=1)
    acc = golden(op, to_nchw(x), wt.transpose(0, 3, 1, 2))
    muls = np.full(co, 2**23 + 1, dtype=np.int32)  # mul * scale = 2^31 + 256
    adds = np.full(co, 2**23, dtype=np.int32)  # acc 0 -> 128; acc -1 -> 0; acc 1 -> above the window
    rq_op = qnn.RequantOp(value(acc.shape, I32), value((co,), 32), value((co,), 32),
                          TensorType(int_type(U8), list(acc.shape)), scale=256, divisor=2**24, min=0, max=255,
                          rounding=qnn.Rounding.FLOOR, intermediate_bits=64)
    expected = to_hwc(golden(rq_op, acc, muls.astype(np.int64), adds.astype(np.int64)))
    assert len(set(expected.ravel().tolist())) > 2, "the case should hit the window and both clips"
    rq = Requant(mul=address(muls), add=address(adds), mul_per_channel=1, add_per_channel=1, const_bits=32, wide=1,
                 trunc=0, shift=24, scale=256, divisor=2**24, min=0, max=255)
    for lib in libs:
        out = np.zeros((h, w, co), np.uint8)
        params = Conv(in_=address(x), in_type=U8, in_h=h, in_w=w, in_c=ci, weights=address(wt), bias=None, out_h=h,
                      out_w=w, out_c=co, kh=1, kw=1, sh=1, sw=1, dh=1, dw=1, acc=None, first_slice=1, last_slice=1,
                      rq=ctypes.addressof(rq), out=address(out), out_type=U8, im2col=None)
        lib.run(K_POINTWISE, params, rng)
        assert np.array_equal(out, expected), f"lib={lib.name}"


# ----------------------------------------------------------------------------- build checks


WERROR_BUILDS = {
    "O0": ["-O0"],
    "O3-cores1": ["-O3", "-DNUM_CORES=1"],
    "pedantic": ["-O2", "-pedantic"],
    "pulp-simd": ["-O2", *PULP_SIMD],
    "pulp-simd-O3": ["-O3", *PULP_SIMD],
    "no-simd-forced": ["-O2", "-DDORY_PULP_SIMD", "-DDORY_NO_SIMD"],
}


@pytest.mark.parametrize("flags", WERROR_BUILDS.values(), ids=WERROR_BUILDS.keys())
def test_kernels_compile_without_warnings(tmp_path: Path, flags: list[str]):
    for source in SOURCES:
        cmd = ["gcc", *WARNINGS, *flags, f"-I{SHIM}", f"-I{INCLUDE}", "-c", str(source), "-o",
               str(tmp_path / (source.stem + ".o"))]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"


# ----------------------------------------------------------------------------- 32-bit RISC-V (qemu)


def mirror_name(field: kernel_abi.Field) -> str:
    """The attribute of a struct field in its ctypes mirror (`in` -> `in_`)."""
    return field.name + "_" if keyword.iskeyword(field.name) else field.name


class Recorder:
    """Stands in for a KernelLib: records the calls of a case for tests/kernels/rv32_driver.c, every
    argument struct written field by field as the kernel table describes it (any kernel of the table)."""

    name, cores, only = "rv32", 8, None
    SHARED = ("acc", "out")  # the buffers a layer's calls share across slices of the reduction

    def __init__(self):
        self.buffers: list[bytes] = []
        self.shared: dict[int, int] = {}  # acc / out: one buffer across the slices
        self.words: list[int] = []
        self.kernels: list[int] = []  # the kernel of each call

    def buffer(self, addr: int | None, shared: bool = False) -> int:
        if not addr:
            return -1
        if shared and addr in self.shared:
            return self.shared[addr]
        assert addr in BUFFER_BYTES, "a pointer field not set with address(): its size is unknown"
        self.buffers.append(ctypes.string_at(addr, BUFFER_BYTES[addr]))
        if shared:
            self.shared[addr] = len(self.buffers) - 1
        return len(self.buffers) - 1

    def fields(self, struct: kernel_abi.Struct, params: ctypes.Structure) -> list[int]:
        words = []
        for f in struct.fields:
            v = getattr(params, mirror_name(f))
            kind, _ = field_kind(f)
            if kind == "DT_REQUANT":
                words += [0] if not v else [1, *self.fields(kernel_abi.REQUANT, Requant.from_address(v))]
            elif kind == "DT_POINTER":
                words.append(self.buffer(v, shared=f.name in self.SHARED))
            elif isinstance(v, ctypes.Array):
                words += list(v)
            else:
                words.append(int(v))
        return words

    def run(self, kernel: int, params: ctypes.Structure, rng) -> None:
        self.kernels.append(kernel)
        self.words += [kernel, *self.fields(list(kernel_abi.KERNELS.values())[kernel].struct, params)]

    def serialize(self, case: Case) -> bytes:
        """The case in the format of cases.bin (see rv32_driver.c)."""
        out = case.execute(self, np.random.default_rng(case.seed + 7919))
        expected = case.expected.astype(out.dtype).tobytes()

        def words(*values: int) -> bytes:
            return np.array(values, dtype="<i8").tobytes()

        data = [words(len(self.buffers))]
        for buf in self.buffers:
            data += [words(len(buf)), buf + bytes(-len(buf) % 8)]
        data += [words(len(self.kernels), *self.words), words(self.shared[out.ctypes.data], len(expected)),
                 expected + bytes(-len(expected) % 8)]
        return b"".join(data)


def run_rv32_cases(cases: list[Case], folder: Path, opt: str = "-O2") -> list[str] | None:
    """Builds the kernels with tests/kernels/rv32_driver.c for rv32imc (the generated application's compiler
    and link flags, dory_mlir/backend/rv32.py) and runs `cases` under QEMU in `folder`: the driver's output
    lines, or None without the toolchain. The one build and run of the driver (also bench/kernels_rv32.py)."""
    toolchain = rv32.find_toolchain()
    if toolchain is None:
        return None
    blob = [np.int64(len(cases)).tobytes()] + [Recorder().serialize(case) for case in cases]
    (folder / "cases.bin").write_bytes(b"".join(blob))
    generated = write_driver_sources(folder / "generated")
    cmd = [toolchain.gcc, *WARNINGS, opt, *rv32.ARCH_FLAGS, *rv32.LINK_FLAGS, "-DNUM_CORES=8", f"-I{generated}",
           f"-I{SHIM}", f"-I{INCLUDE}", *map(str, SOURCES + [SHIM / "rv32_driver.c"]), "-o", str(folder / "app.elf")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"
    run = rv32.run_elf(folder / "app.elf", toolchain, folder)
    return [line.strip() for line in run.output.splitlines()]  # semihosting prints to qemu's stderr


RV32_CASES = [(name, 1000 * index + seed) for index, name in enumerate(COUNTS) if name != "requant"
              for seed in range(3)]


def test_rv32_qemu(tmp_path: Path):
    """Random configurations of every kernel built for 32-bit RISC-V (rv32imc, ILP32: the cluster cores'
    base ISA, without the PULP extensions) and run under qemu-system-riscv32, 8 cores in turn."""
    cases = [make_case(name, seed) for name, seed in RV32_CASES]
    lines = run_rv32_cases(cases, tmp_path)
    if lines is None:
        pytest.skip("needs gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf and qemu-system-misc")
    bad = [f"{line}  <- {cases[int(line.split()[1])].name} seed={cases[int(line.split()[1])].seed}"
           for line in lines if "MISMATCH" in line]
    assert not bad and f"{len(cases)} passed, 0 failed" in lines, "\n".join(bad) or "\n".join(lines)


def sanitizer_runtime() -> str | None:
    found = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


SANITIZED_SEEDS = 6  # per kernel family


def test_sanitized_subset(tmp_path: Path):
    """A subset of the random configurations against an ASan + UBSan build (in a subprocess:
    the ASan runtime must be loaded first, with LD_PRELOAD)."""
    runtime = sanitizer_runtime()
    if runtime is None:
        pytest.skip("gcc has no libasan")
    env = dict(os.environ, LD_PRELOAD=runtime, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    done = subprocess.run([sys.executable, __file__, "--sanitized", str(tmp_path), str(SANITIZED_SEEDS)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    assert "sanitized: all" in done.stdout


def run_sanitized(folder: Path, seeds: int) -> int:
    """Builds the sanitized libraries (NUM_CORES 8 and 1: with one core, its scratch is the
    whole buffer, so any overflow of it is caught) and runs `seeds` configurations of every
    family on both."""
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda n: compile_library(folder / f"libsan{n}.so", n, SANITIZE, "-O1"), (8, 1)))
    libs = [KernelLib(f"sanitized-cores{n}", path) for n, path in zip((8, 1), paths)]
    count = 0
    for index, name in enumerate(COUNTS):
        for seed in range(seeds):
            case = make_case(name, 1000 * index + seed)
            for lib in libs:
                case.check(lib)
            count += 1
    for edge in EDGES:
        wide, const_bits, acc, mul, add, scale, divisor, trunc = edge
        if not -(2 ** (63 if wide else 31)) <= (acc * mul + add) * scale < 2 ** (63 if wide else 31):
            continue
        const_np = np.int64 if const_bits == 64 else np.int32
        m, a = np.array([mul], dtype=const_np), np.array([add], dtype=const_np)
        rq = Requant(mul=address(m), add=address(a), const_bits=const_bits, wide=wide, trunc=trunc,
                     shift=divisor.bit_length() - 1 if divisor & (divisor - 1) == 0 else -1, scale=scale,
                     divisor=divisor, min=-(2**31), max=2**31 - 1)
        for lib in libs:
            lib.dll.dory_requant(ctypes.byref(rq), acc, 0)
    print(f"sanitized: all {count} configurations bit-exact")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--sanitized":
        sys.exit(run_sanitized(Path(sys.argv[2]), int(sys.argv[3])))
    print(f"usage: {sys.argv[0]} --sanitized BUILD_DIR SEEDS_PER_FAMILY", file=sys.stderr)
    sys.exit(2)
