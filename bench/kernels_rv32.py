"""Instructions per MAC of the int8 kernels on plain RV32IMC, counted by QEMU.

    .venv/bin/python bench/kernels_rv32.py [--opt -O2] [--only conv3x3,pointwise]

Builds dory_mlir/runtime/kernels for rv32imc together with tests/kernels/rv32_driver.c (the
tests' build and run, tests/test_kernels.py: run_rv32_cases), runs typical DORY tile shapes and
attention's matrix products under `qemu-system-riscv32 -icount shift=0` (exact, repeatable
instruction counts) and prints per kernel and requantization: the shape, MACs (output elements
for the pools and the add), the instructions of the 8 cores' calls summed, and instructions per MAC.
`max core` is the largest share of one core (the cluster's critical path). Every output is
also compared with the golden model: a mismatch is printed instead of the figures.

The requantizations are those of the shared networks: `shift32` (32-bit, divisor 2^16, the
PULP-NN style) and `div64` (64-bit intermediate, scale 54, divisor 2^21 - 1, as the NEMO
exports in /work/shared/models/dory use), both with per-channel mul/add, uint8 output
clipped to [0, 255] (about a quarter of the values clip at 0). `i32` is the int32
accumulator output of a last linear layer. Nothing is asserted: it measures.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import TensorType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dory_mlir.dialects import qnn  # noqa: E402
from tests.test_kernels import (  # noqa: E402
    I8, I32, K_ADD, K_CONV2D, K_DEPTHWISE, K_LINEAR, K_MATMUL, K_MAXPOOL, K_POINTWISE, U8, Add, Case, Conv, Linear,
    MatMul, Pool, Requant, address, golden, i32, int_type, output_extent, random_activations, run_rv32_cases, to_hwc,
    to_nchw, u8, value)

REQUANTS = {"shift32": dict(wide=0, scale=1, divisor=2**16), "div64": dict(wide=1, scale=54, divisor=2**21 - 1)}


def requant_for(acc: np.ndarray, kind: str, rng: np.random.Generator):
    """(Requant struct, arrays to keep alive, golden output NCHW/NC) for int32 accumulators
    acc: per-channel mul/add mapping the accumulators' spread onto [0, 255] around 96."""
    spec = REQUANTS[kind]
    scale, divisor = spec["scale"], spec["divisor"]
    channels = acc.shape[1]
    spread = max(1.0, float(acc.std()))
    target = 48 * divisor / (scale * spread)  # one standard deviation -> 48 output steps
    muls = np.maximum(1, np.round(target * rng.uniform(0.7, 1.3, channels))).astype(np.int64)
    adds = np.round(-float(acc.mean()) * muls + 96 * divisor / scale).astype(np.int64)
    bits = 64 if spec["wide"] else 32
    op = qnn.RequantOp(value(acc.shape, I32), value((channels,), 32), value((channels,), 32),
                       TensorType(int_type(U8), list(acc.shape)), scale=scale, divisor=divisor, min=0, max=255,
                       rounding=qnn.Rounding.FLOOR, intermediate_bits=bits)
    expected = golden(op, acc, muls, adds)  # raises when an intermediate leaves the width
    mul, add = muls.astype(np.int32), adds.astype(np.int32)
    shift = divisor.bit_length() - 1 if divisor & (divisor - 1) == 0 else -1
    struct = Requant(mul=address(mul), add=address(add), mul_per_channel=1, add_per_channel=1, const_bits=32,
                     wide=spec["wide"], trunc=0, shift=shift, scale=scale, divisor=divisor, min=0, max=255)
    return struct, [mul, add], expected


def output_for(acc: np.ndarray, requant: str, rng: np.random.Generator):
    """(Requant struct or None, arrays to keep alive, golden output, output type): `requant_for`'s uint8
    outputs, or the int32 accumulators themselves (`i32`)."""
    if requant == "i32":
        return None, [], acc, I32
    return (*requant_for(acc, requant, rng), U8)


def conv_bench(name, rng, h, w, ci, co, k, stride, pad, requant, depthwise=False) -> tuple[Case, int]:
    kernel = K_DEPTHWISE if depthwise else K_POINTWISE if k == 1 else K_CONV2D
    x = rng.integers(0, 256, (h, w, ci)).astype(np.uint8)
    wt = rng.integers(-128, 128, (co, k, k, 1 if depthwise else ci)).astype(np.int8)
    bias = rng.integers(-(2**12), 2**12, co).astype(np.int32)
    oh, ow = output_extent(h, k, stride, pad, pad), output_extent(w, k, stride, pad, pad)
    op = qnn.ConvOp(value((1, ci, h, w), U8), value((co, 1 if depthwise else ci, k, k), I8), value((co,), I32),
                    TensorType(int_type(I32), [1, co, oh, ow]), strides=(stride, stride), pads=(pad,) * 4,
                    dilations=(1, 1), groups=ci if depthwise else 1)
    acc = golden(op, to_nchw(x), wt.transpose(0, 3, 1, 2), bias)
    rq, keep, y = requant_for(acc, requant, rng)
    cores = 8
    scratch = np.zeros(2 * cores * k * k * ci if kernel == K_CONV2D else cores * h * k if depthwise else 1, np.int8)

    def execute(lib, run_rng, fill=None):
        out = np.zeros((oh, ow, co), np.uint8)
        params = Conv(in_=address(x), in_type=U8, in_h=h, in_w=w, in_c=ci, weights=address(wt), bias=address(bias),
                      out_h=oh, out_w=ow, out_c=co, kh=k, kw=k, sh=stride, sw=stride, dh=1, dw=1, pad_t=pad,
                      pad_l=pad, pad_b=pad, pad_r=pad, acc=None, first_slice=1, last_slice=1,
                      rq=ctypes.addressof(rq), out=address(out), out_type=U8,
                      im2col=address(scratch) if kernel != K_POINTWISE else None)
        lib.run(kernel, params, run_rng)
        return out

    macs = oh * ow * co * k * k * (1 if depthwise else ci)
    shape = f"{h}x{w}x{ci} -> {oh}x{ow}x{co}, {k}x{k}" + (f" s{stride}" if stride > 1 else "") + \
        (f" pad {pad}" if pad else "")
    return Case(name, 0, dict(shape=shape, requant=requant), to_hwc(y), execute, [rq, keep]), macs


def linear_bench(name, rng, ci, co, requant) -> tuple[Case, int]:
    x = rng.integers(0, 256, ci).astype(np.uint8)
    wt = rng.integers(-128, 128, (co, ci)).astype(np.int8)
    bias = rng.integers(-(2**12), 2**12, co).astype(np.int32)
    op = qnn.LinearOp(value((1, ci), U8), value((co, ci), I8), value((co,), I32), TensorType(int_type(I32), [1, co]))
    acc = golden(op, x[None], wt, bias)
    rq, keep, y, out_type = output_for(acc, requant, rng)

    def execute(lib, run_rng, fill=None):
        out = np.zeros(co, np.int32 if out_type == I32 else np.uint8)
        params = Linear(in_=address(x), in_type=U8, in_c=ci, out_c=co, weights=address(wt), bias=address(bias),
                        acc=None, first_slice=1, last_slice=1, rq=None if rq is None else ctypes.addressof(rq),
                        out=address(out), out_type=out_type)
        lib.run(K_LINEAR, params, run_rng)
        return out

    return Case(name, 0, dict(shape=f"{ci} -> {co}", requant=requant), y[0], execute, [rq, keep]), ci * co


def maxpool_bench(name, rng, h, w, c, k) -> tuple[Case, int]:
    x = rng.integers(0, 256, (h, w, c)).astype(np.uint8)
    oh, ow = h // k, w // k
    op = qnn.MaxPoolOp(value((1, c, h, w), U8), TensorType(int_type(U8), [1, c, oh, ow]), kernel=(k, k),
                       strides=(k, k), pads=(0, 0, 0, 0))
    y = golden(op, to_nchw(x))

    def execute(lib, run_rng, fill=None):
        out = np.zeros((oh, ow, c), np.uint8)
        lib.run(K_MAXPOOL, Pool(in_=address(x), in_type=U8, in_h=h, in_w=w, c=c, out_h=oh, out_w=ow, kh=k, kw=k,
                                sh=k, sw=k, rq=None, out=address(out), out_type=U8), run_rng)
        return out

    return Case(name, 0, dict(shape=f"{h}x{w}x{c}, {k}x{k}", requant="-"), to_hwc(y), execute), oh * ow * c


def add_bench(name, rng, h, w, c) -> tuple[Case, int]:
    a, b = (rng.integers(0, 256, (h, w, c)).astype(np.uint8) for _ in range(2))
    mul, add, shift = (3, 5), (100, -40), (2, 3)
    op = qnn.AddOp(value((1, c, h, w), U8), value((1, c, h, w), U8), TensorType(int_type(I32), [1, c, h, w]),
                   mul=mul, add=add, shift=shift)
    total = golden(op, to_nchw(a), to_nchw(b))
    rq, keep, y = requant_for(total, "shift32", rng)

    def execute(lib, run_rng, fill=None):
        out = np.zeros((h, w, c), np.uint8)
        lib.run(K_ADD, Add(a=address(a), b=address(b), a_type=U8, b_type=U8, h=h, w=w, c=c, mul=(i32 * 2)(*mul),
                           add=(i32 * 2)(*add), shift=(u8 * 2)(*shift), rq=ctypes.addressof(rq),
                           out=address(out), out_type=U8), run_rng)
        return out

    return Case(name, 0, dict(shape=f"{h}x{w}x{c}", requant="shift32"), to_hwc(y), execute, [rq, keep]), h * w * c


def matmul_bench(name, rng, m, k, n, a_type, b_type, requant) -> tuple[Case, int]:
    """A product of two activation tiles a [m][k] x b [k][n] (attention's Q·Kᵀ and A·V), requantized per
    column (`shift32` / `div64`) or int32 products (`i32`)."""
    a, b = random_activations(rng, (m, k), a_type), random_activations(rng, (k, n), b_type)
    # the IR's rows of features: a is 1×K×M×1, b 1×N×K×1, the product 1×N×M×1 (NCHW)
    op = qnn.MatMulOp(value((1, k, m, 1), a_type), value((1, n, k, 1), b_type), TensorType(int_type(I32), [1, n, m, 1]))
    acc = golden(op, a.T.reshape(1, k, m, 1), b.T.reshape(1, n, k, 1))
    rq, keep, y, out_type = output_for(acc, requant, rng)

    def execute(lib, run_rng, fill=None):
        out = np.zeros((m, 1, n), np.int32 if out_type == I32 else np.uint8)
        lib.run(K_MATMUL, MatMul(a=address(a), b=address(b), a_type=a_type, b_type=b_type, m=m, k=k, n=n, acc=None,
                                 first_slice=1, last_slice=1, rq=None if rq is None else ctypes.addressof(rq),
                                 out=address(out), out_type=out_type), run_rng)
        return out

    types = "".join("i" if t == I8 else "u" for t in (a_type, b_type))
    return Case(name, 0, dict(shape=f"{m}x{k} · {k}x{n} ({types}8)", requant=requant), to_hwc(y), execute,
                [rq, keep]), m * k * n


def benches(rng) -> list[tuple[Case, int]]:
    found = []
    for rq in ("shift32", "div64"):
        found += [conv_bench("conv3x3", rng, 16, 16, 32, 32, 3, 1, 1, rq),
                  conv_bench("conv5x5-ci1", rng, 48, 48, 1, 32, 5, 2, 2, rq),
                  conv_bench("pointwise", rng, 16, 16, 64, 64, 1, 1, 0, rq),
                  conv_bench("depthwise", rng, 16, 16, 64, 64, 3, 1, 1, rq, depthwise=True),
                  conv_bench("depthwise-s2", rng, 16, 16, 64, 64, 3, 2, 1, rq, depthwise=True)]
    found += [linear_bench("linear", rng, 1024, 10, "i32"), linear_bench("linear", rng, 1024, 10, "shift32"),
              maxpool_bench("maxpool", rng, 16, 16, 32, 2), add_bench("add", rng, 16, 16, 32)]
    # attention: Q·Kᵀ (signed, head dimension 32 and 64), A·V (the softmax output unsigned), square ones, and odd
    # sizes (K not a multiple of 4, leftover rows and columns)
    found += [matmul_bench("matmul", rng, 16, 32, 16, I8, I8, "shift32"),
              matmul_bench("matmul", rng, 16, 64, 16, I8, I8, "shift32"),
              matmul_bench("matmul", rng, 16, 16, 32, U8, I8, "shift32"),
              matmul_bench("matmul", rng, 64, 64, 16, U8, I8, "shift32"),
              matmul_bench("matmul", rng, 32, 64, 32, I8, I8, "shift32"),
              matmul_bench("matmul", rng, 64, 64, 64, I8, I8, "shift32"),
              matmul_bench("matmul", rng, 64, 64, 64, I8, I8, "div64"),
              matmul_bench("matmul", rng, 64, 64, 64, U8, U8, "i32"),
              matmul_bench("matmul", rng, 17, 30, 19, U8, I8, "shift32")]
    return found


def run_cases(cases: list[tuple[Case, int]], opt: str = "-O2") -> list[tuple[int, int] | None]:
    """Builds the kernels and the driver for rv32imc, runs every case under QEMU: per case (instructions of
    the 8 cores summed, of the busiest core), or None when its output differs from the golden model."""
    with tempfile.TemporaryDirectory() as tmp:
        lines = run_rv32_cases([case for case, _ in cases], Path(tmp), opt)
    if lines is None:
        sys.exit("needs gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf and qemu-system-misc")
    found = [line.split() for line in lines if line.startswith("case ")]
    return [(int(line[4]), int(line[6])) if line[2] == "ok" else None for line in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", default="-O2", help="optimization flag of the rv32 build")
    parser.add_argument("--only", help="comma-separated kernel names")
    args = parser.parse_args()
    cases = benches(np.random.default_rng(1))
    if args.only:
        cases = [c for c in cases if c[0].name in args.only.split(",")]
    counts = run_cases(cases, args.opt)
    print(f"{'kernel':14s} {'shape':34s} {'requant':8s} {'MACs':>9s} {'instructions':>13s} {'ins/MAC':>8s} "
          f"{'max core':>9s}")
    for (case, macs), counted in zip(cases, counts, strict=True):
        if counted is None:
            print(f"{case.name:14s} {case.config['shape']:34s} {case.config['requant']:8s} MISMATCH")
            continue
        total, worst = counted
        print(f"{case.name:14s} {case.config['shape']:34s} {case.config['requant']:8s} {macs:9d} {total:13d} "
              f"{total / macs:8.2f} {worst:9d}")


if __name__ == "__main__":
    main()
