"""`-t pulp-c`: prints the lowered IR as a C application for PULP (and the host runtime).

A printer over the IR with a print context, in the manner of xDSL's CSL printer: each op
prints its C; SSA values become C variables; a memref value is a pointer plus its sizes
and strides (C expressions). Functions marked `pulp.cluster` are forked on the team:
their L1 allocations happen on the cluster master before the fork, the body runs on
every core, DMA is issued and waited by core 0 only. Kernel calls fill the argument
structs of the kernel table (`dory_mlir/kernel_abi.py`).

`print_network_c(module, stream)` prints `network.c` (`-t pulp-network-c`, to stdout or `-o FILE`).
`-t pulp-c -o DIR` writes the whole application: `network.c` and the files of `templates/` filled
with the tiling's core count and memory budgets: `network.h`, `main.c` (runs the network on
`input.bin`, or `input_K.bin` per network input K when there are several, writes every layer's
output and a checksum line per layer), `Makefile` (PULP SDK), `Makefile.host` (gcc with the host
runtime) and `Makefile.rv32` (rv32imc with the bare-metal runtime, run under QEMU, counting
instructions per layer and per kernel call).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from xdsl.context import Context
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    Signedness,
    StringAttr,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.utils.target import Target

from dory_mlir import kernel_abi
from dory_mlir.backend import build, rv32
from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import dma, pulp
from dory_mlir.ir_utils import op_where
from dory_mlir.dialects.tiling import L2_PLAN, target_of
from dory_mlir.passes.bufferize_network import l2_plan_of, weights_resident
from dory_mlir.target import BUILTIN_TARGETS, load_target, planned_execution

RUNTIME = build.RUNTIME


def c_type(ty: Attribute) -> str:
    if isinstance(ty, IndexType):
        return "int"
    if isinstance(ty, IntegerType):
        width = ty.width.data
        unsigned = ty.signedness.data == Signedness.UNSIGNED or (width == 8 and ty.signedness.data == Signedness.SIGNLESS)
        if width == 1:
            return "int"
        return f"{'u' if unsigned else ''}int{max(width, 8)}_t"
    if isinstance(ty, dma.TokenType):
        return "dory_dma_t *"
    raise DoryError(f"no C type for {ty}")


def dtype_enum(ty: Attribute) -> str:
    assert isinstance(ty, IntegerType)
    if ty.width.data == 32:
        return "DORY_I32"
    unsigned = ty.signedness.data == Signedness.UNSIGNED
    if ty.width.data == 16:
        return "DORY_U16" if unsigned else "DORY_I16"
    return "DORY_U8" if unsigned else "DORY_I8"


# Ops that only compute a value: printed only when something printed uses it (a lowering may leave
# a tile-table read unused, e.g. the rows of an add of two vectors; the C builds with -Werror).
VALUE_OPS = (arith.ConstantOp, arith.IndexCastOp, arith.AddiOp, arith.SubiOp, arith.MuliOp, arith.DivUIOp,
             arith.RemUIOp, arith.CmpiOp, memref.LoadOp)


@dataclass
class MemrefC:
    """A memref in C: a pointer expression, sizes and strides (element units) as C expressions."""

    ptr: str
    sizes: list[str]
    strides: list[str]
    element: Attribute
    level: str


@dataclass
class Printer:
    """Prints C for one function at a time; `out` collects the lines."""

    module: ModuleOp
    out: list[str] = field(default_factory=list)
    names: dict[SSAValue, str] = field(default_factory=dict)
    memrefs: dict[SSAValue, MemrefC] = field(default_factory=dict)
    indent: int = 0
    counter: int = 0
    in_cluster: bool = False
    l3_outputs: list[tuple[str, str, str]] = field(default_factory=list)
    setup_end: Operation | None = None  # the network's set-up transfers end here: a DMA count line of their own

    def line(self, text: str) -> None:
        self.out.append("    " * self.indent + text)

    def fresh(self, hint: str = "v") -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    def name(self, value: SSAValue) -> str:
        if value not in self.names:
            hint = value.name_hint or "v"
            self.names[value] = self.fresh("".join(ch if ch.isalnum() else "_" for ch in hint) + "_")
        return self.names[value]

    def declare(self, value: SSAValue, expression: str) -> None:
        self.line(f"{c_type(value.type)} {self.name(value)} = {expression};")

    # ------------------------------------------------------------------ memrefs

    def memref(self, value: SSAValue) -> MemrefC:
        if value not in self.memrefs:
            raise DoryError(f"memref value of {value.owner} has no C representation")
        return self.memrefs[value]

    def define_memref(self, value: SSAValue, ptr_expression: str, sizes: list[str], strides: list[str]) -> None:
        ty = value.type
        assert isinstance(ty, MemRefType)
        name = self.name(value)
        self.line(f"{c_type(ty.element_type)} *{name} = ({c_type(ty.element_type)} *)({ptr_expression});")
        level = ty.memory_space.data if isinstance(ty.memory_space, StringAttr) else "L2"
        self.memrefs[value] = MemrefC(name, sizes, strides, ty.element_type, level)

    @staticmethod
    def dense_strides(sizes: list[str]) -> list[str]:
        strides = []
        for i in range(len(sizes)):
            rest = sizes[i + 1 :]
            strides.append("*".join(f"({s})" for s in rest) if rest else "1")
        return strides

    def static_sizes(self, ty: MemRefType, dynamic: list[SSAValue]) -> list[str]:
        values = iter(dynamic)
        return [str(d) if d >= 0 else self.name(next(values)) for d in ty.get_shape()]

    # ------------------------------------------------------------------ ops

    def print_block(self, block: Block) -> None:
        dead: set[Operation] = set()
        for op in reversed(list(block.ops)):
            if isinstance(op, VALUE_OPS) and all(
                    use.operation in dead for result in op.results for use in result.uses):
                dead.add(op)
        for op in block.ops:
            if op not in dead:
                self.print_op(op)
            if op is self.setup_end:
                self.line("dory_dma_count_layer(-1); /* the network's set-up, before the layers' own transfers */")

    def print_op(self, op: Operation) -> None:  # noqa: C901 - one dispatch table
        if isinstance(op, arith.ConstantOp):
            value = op.value
            assert isinstance(value, IntegerAttr)
            self.names[op.result] = f"({value.value.data})"  # a literal where it is used
        elif isinstance(op, arith.IndexCastOp):
            # A tile size may only size views whose sizes no kernel call reads (an add of two vectors).
            self.line(f"{c_type(op.result.type)} {self.name(op.result)} __attribute__((unused)) = (int){self.name(op.input)};")
        elif isinstance(op, arith.AddiOp | arith.SubiOp | arith.MuliOp | arith.DivUIOp | arith.RemUIOp):
            # index values are never negative here (offsets, sizes, slots): C's int / and % are the unsigned ones
            symbol = {arith.AddiOp: "+", arith.SubiOp: "-", arith.MuliOp: "*", arith.DivUIOp: "/", arith.RemUIOp: "%"}[type(op)]
            self.declare(op.result, f"{self.name(op.lhs)} {symbol} {self.name(op.rhs)}")
        elif isinstance(op, arith.CmpiOp):
            symbol = {"eq": "==", "ne": "!=", "ult": "<", "slt": "<", "ule": "<=", "sle": "<=", "ugt": ">", "sgt": ">"}[
                arith.CMPI_COMPARISON_OPERATIONS[op.predicate.value.data]]
            self.declare(op.result, f"{self.name(op.lhs)} {symbol} {self.name(op.rhs)}")
        elif isinstance(op, memref.GetGlobalOp):
            ty = op.memref.type
            assert isinstance(ty, MemRefType)
            sizes = [str(d) for d in ty.get_shape()]
            self.define_memref(op.memref, f"{self.global_pointer(op.name_.string_value())}", sizes, self.dense_strides(sizes))
        elif isinstance(op, memref.LoadOp):
            m = self.memref(op.memref)
            index = " + ".join(f"{self.name(i)} * ({s})" for i, s in zip(op.indices, m.strides, strict=True))
            self.declare(op.res, f"{m.ptr}[{index}]")
        elif isinstance(op, memref.ViewOp):
            ty = op.result.type
            assert isinstance(ty, MemRefType)
            sizes = self.static_sizes(ty, list(op.sizes))
            source = self.memref(op.source)
            self.define_memref(op.result, f"(uint8_t *){source.ptr} + {self.name(op.byte_shift)}", sizes, self.dense_strides(sizes))
        elif isinstance(op, memref.SubviewOp):
            self.subview(op)
        elif isinstance(op, memref.CollapseShapeOp):
            self.collapse(op)
        elif isinstance(op, memref.ReinterpretCastOp):
            self.reinterpret(op)
        elif isinstance(op, memref.AllocOp | memref.DeallocOp):
            if self.in_cluster:
                return  # L1 buffers of a cluster function are allocated around the fork
            self.alloc_or_free(op)
        elif isinstance(op, memref.CopyOp):
            src, dst = self.memref(op.source), self.memref(op.destination)
            self.line(f"memcpy({dst.ptr}, {src.ptr}, {self.byte_count(src)});")
        elif isinstance(op, dma.CopyOp):
            self.dma_copy(op)
        elif isinstance(op, dma.WaitOp):
            self.on_core0(f"dory_dma_wait({self.name(op.token)});")
        elif isinstance(op, dma.CompletedOp):
            self.declare(op.token, "&dma_done")
        elif isinstance(op, pulp.BarrierOp):
            self.line("pi_cl_team_barrier();")
        elif isinstance(op, pulp.KernelOp):
            KernelCall(self, op).print()
        elif isinstance(op, scf.ForOp):
            self.for_loop(op)
        elif isinstance(op, scf.IfOp):
            self.if_op(op)
        elif isinstance(op, func.CallOp):
            self.call(op)
        elif isinstance(op, func.ReturnOp | scf.YieldOp):
            return  # handled by the enclosing construct
        else:
            raise DoryError(f"the C printer does not handle '{op.name}'", op_where(op))

    def global_pointer(self, symbol: str) -> str:
        return f"g_{symbol}"

    def byte_count(self, m: MemrefC) -> str:
        return "*".join(f"({s})" for s in m.sizes) + f" * sizeof({c_type(m.element)})"

    def subview(self, op: memref.SubviewOp) -> None:
        source = self.memref(op.source)
        offsets = iter(op.offsets)
        sizes_dyn = iter(op.sizes)
        offs = [self.name(next(offsets)) if o == memref.DYNAMIC_INDEX else str(o) for o in op.static_offsets.get_values()]
        sizes = [self.name(next(sizes_dyn)) if s == memref.DYNAMIC_INDEX else str(s) for s in op.static_sizes.get_values()]
        base = " + ".join(f"({o}) * ({s})" for o, s in zip(offs, source.strides, strict=True))
        self.define_memref(op.result, f"{source.ptr} + {base}", sizes, source.strides)

    def reinterpret(self, op: memref.ReinterpretCastOp) -> None:
        """A view of the source's elements from `offset` (counted from the source's first element) with
        its own sizes and strides: a transpose's rows in the input (`tile-layers`)."""
        source = self.memref(op.source)

        def listed(static, dynamic) -> list[str]:
            values = iter(dynamic)
            return [self.name(next(values)) if v == memref.DYNAMIC_INDEX else str(v) for v in static.get_values()]

        (offset,) = listed(op.static_offsets, op.offsets)
        self.define_memref(op.result, f"{source.ptr} + {offset}", listed(op.static_sizes, op.sizes),
                           listed(op.static_strides, op.strides))

    def collapse(self, op: memref.CollapseShapeOp) -> None:
        source = self.memref(op.src)
        sizes, strides = [], []
        for group in op.reassociation.data:
            dims = [d.value.data for d in group.data]  # type: ignore[attr-defined]
            sizes.append("*".join(f"({source.sizes[d]})" for d in dims))
            strides.append(source.strides[dims[-1]])
        self.define_memref(op.result, source.ptr, sizes, strides)

    def alloc_or_free(self, op: Operation) -> None:
        if isinstance(op, memref.AllocOp):
            ty = op.memref.type
            assert isinstance(ty, MemRefType)
            sizes = [str(d) for d in ty.get_shape()]
            level = ty.memory_space.data if isinstance(ty.memory_space, StringAttr) else "L2"
            self.memrefs[op.memref] = MemrefC(f"state.{self.name(op.memref)}", sizes, self.dense_strides(sizes), ty.element_type, level)
            return
        # frees happen in network_free(), where the allocation was made

    def on_core0(self, statement: str) -> None:
        if self.in_cluster:
            self.line(f"if (pi_core_id() == 0) {statement}")
        else:
            self.line(statement)

    def token_storage(self, block: Block) -> None:
        """A token lives in its copy site's storage: two slots, used in turn, because a site
        issues its next copy (the prefetch) before the previous one is waited. The storage is
        static (L2): one copy for the team, since only core 0 issues and waits (the other cores
        only compute the same addresses), and the cluster stacks (3.4 kB per core on GAP8) could
        not hold 128 bytes per copy site -- a network loading its weights has dozens of sites."""
        self.line("dory_dma_t dma_done;")
        self.line("dory_dma_done(&dma_done);")
        self.sites: dict[Operation, str] = {}
        for op in block.walk():
            if isinstance(op, dma.CopyOp):
                site = self.fresh("dma_site")
                self.sites[op] = site
                self.line(f"static dory_dma_t {site}[2];")
                self.line(f"int {site}_n = 0;")
        if self.sites:
            self.line(f"(void){next(iter(self.sites.values()))}_n;")

    def dma_copy(self, op: dma.CopyOp) -> None:
        src, dst = self.memref(op.source), self.memref(op.destination)
        site = self.sites[op]
        self.declare(op.token, f"&{site}[{site}_n++ & 1]")
        token = self.name(op.token)
        if "L3" in (src.level, dst.level):
            l3, l2 = (src, dst) if src.level == "L3" else (dst, src)
            to_l2 = int(src.level == "L3")
            self.on_core0(f"dory_ram_copy(&ram, (uint32_t)(uintptr_t){l3.ptr}, {l2.ptr}, {self.byte_count(l2)}, {to_l2}, {token});")
            return
        ext, loc, direction = (src, dst, "PI_CL_DMA_DIR_EXT2LOC") if src.level == "L2" else (dst, src, "PI_CL_DMA_DIR_LOC2EXT")
        sizes = (["1"] * (3 - len(ext.sizes))) + ext.sizes
        strides = (["0"] * (3 - len(ext.strides))) + ext.strides
        if strides[2] != "1":  # elements gathered at a stride (a transpose that moves the features)
            self.on_core0(
                f"dory_dma_gather({ext.ptr}, {loc.ptr}, {sizes[0]}, {sizes[1]}, {sizes[2]}, {strides[0]}, {strides[1]}, "
                f"{strides[2]}, sizeof({c_type(ext.element)}), {direction}, {token});"
            )
            return
        self.on_core0(
            f"dory_dma_copy({ext.ptr}, {loc.ptr}, {sizes[0]}, {sizes[1]}, {sizes[2]}, {strides[0]}, {strides[1]}, "
            f"sizeof({c_type(ext.element)}), {direction}, {token});"
        )

    def for_loop(self, op: scf.ForOp) -> None:
        body = op.body.block
        iv, carried = body.args[0], body.args[1:]
        for arg, init, result in zip(carried, op.iter_args, op.results, strict=True):
            self.line(f"{c_type(arg.type)} {self.name(arg)} = {self.name(init)};")
            self.names[result] = self.names[arg]
        self.line(f"for (int {self.name(iv)} = {self.name(op.lb)}; {self.name(iv)} < {self.name(op.ub)}; {self.name(iv)} += {self.name(op.step)}) {{")
        self.indent += 1
        self.print_block(body)
        yielded = body.last_op
        assert isinstance(yielded, scf.YieldOp)
        temps = []
        for value in yielded.operands:
            temp = self.fresh("next_")
            self.line(f"{c_type(value.type)} {temp} = {self.name(value)};")
            temps.append(temp)
        for arg, temp in zip(carried, temps, strict=True):
            self.line(f"{self.name(arg)} = {temp};")
        self.indent -= 1
        self.line("}")

    def if_op(self, op: scf.IfOp) -> None:
        for result in op.results:
            self.line(f"{c_type(result.type)} {self.name(result)};")
        self.line(f"if ({self.name(op.cond)}) {{")
        for region, last in ((op.true_region, False), (op.false_region, True)):
            self.indent += 1
            self.print_block(region.block)
            yielded = region.block.last_op
            assert isinstance(yielded, scf.YieldOp)
            for result, value in zip(op.results, yielded.operands, strict=True):
                self.line(f"{self.name(result)} = {self.name(value)};")
            self.indent -= 1
            self.line("}" if last else "} else {")

    def call(self, op: func.CallOp) -> None:
        callee = op.callee.string_value()
        args = []
        for value in op.arguments:
            m = self.memref(value)
            args.append(m.ptr)
        layer = callee.removeprefix("layer")
        self.line(f"dory_perf_layer_begin({layer});")
        self.line(f"{callee}({', '.join(args)});")
        self.line(f"dory_perf_layer_end({layer});")
        self.line(f"dory_dma_count_layer({layer});")  # the bytes its transfers moved (host, rv32 runtimes)
        function = next(f for f in self.module.ops if isinstance(f, func.FuncOp) and f.sym_name.data == callee)
        out_index = next(i for i, a in enumerate(function.body.block.args) if a.name_hint == "out")
        out = self.memref(op.arguments[out_index])
        if out.level == "L3":  # read back from L3 by the fabric controller after the run
            self.l3_outputs.append((layer, out.ptr, self.byte_count(out)))
            self.line("dory_perf_resume();")  # nor is the count
        else:
            self.line(f"dory_layer_done({layer}, {out.ptr}, {self.byte_count(out)});")
            self.line("dory_perf_resume();")  # the verification hook is not counted


def setup_end(block: Block, resident: bool) -> Operation | None:
    """The wait of the network's last set-up transfer before its first layer (`bufferize-network`): its
    inputs written to L3 and, when the plan keeps them resident, the constants loaded into L2."""
    last = None
    for op in block.ops:
        if isinstance(op, func.CallOp):
            break
        if isinstance(op, dma.WaitOp) and isinstance(copy := op.token.owner, dma.CopyOp):
            if resident or copy.source in block.args:
                last = op
    return last


# The range of each integer C type of the argument structs: a parameter outside it is an error, never a wrap.
C_INT_RANGES = {f"{sign}int{bits}_t": ((0, 2**bits - 1) if sign else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
                for sign in ("u", "") for bits in (8, 16, 32, 64)}


@dataclass
class KernelCall:
    """Fills the kernel's argument struct (`dory_mlir/kernel_abi.py`) from the op's roles and parameters."""

    printer: Printer
    op: pulp.KernelOp

    def print(self) -> None:
        p = self.printer
        operands = self.op.operand_by_role()
        self.buffers = {role: p.memref(v) for role, v in operands.items() if isinstance(v.type, MemRefType)}
        self.indices = {role: p.name(v) for role, v in operands.items() if isinstance(v.type, IndexType)}
        callee = self.op.callee.data
        kernel = kernel_abi.KERNELS[callee]
        self.requantizes = "scale" in self.op.params.data
        p.line("{")
        p.indent += 1
        if self.requantizes:
            p.line(f"const {kernel_abi.REQUANT.name} rq = {{{self.initializer(kernel_abi.REQUANT)}}};")
        p.line(f"const {kernel.struct.name} args = {{{self.initializer(kernel.struct)}}};")
        p.line(f"DORY_PERF_KERNEL({callee}(&args));")  # instruction counts (rv32 build), else a plain call
        p.indent -= 1
        p.line("}")

    def initializer(self, struct: kernel_abi.Struct) -> str:
        return ", ".join(f".{f.name} = {self.value(struct, f)}" for f in struct.fields)

    def value(self, struct: kernel_abi.Struct, f: kernel_abi.Field) -> str:  # noqa: C901 - one case per fill
        fill = f.fill
        if isinstance(fill, kernel_abi.Buffer):
            buffer = self.buffers.get(fill.role)
            if buffer is None:
                return "NULL"
            pointee = f.c_type.removeprefix("const ").removesuffix("*").strip()
            cast = pointee not in ("void", c_type(buffer.element))  # e.g. the im2col bytes
            return f"({f.c_type}){buffer.ptr}" if cast else buffer.ptr
        if isinstance(fill, kernel_abi.ElementType):
            return dtype_enum(self.buffers[fill.role].element)
        if isinstance(fill, kernel_abi.Extent):
            sizes = ["1"] * 3 + self.buffers[fill.role].sizes
            return sizes[fill.axis]
        if isinstance(fill, kernel_abi.Index):
            return self.indices.get(fill.role, str(fill.default))
        if isinstance(fill, kernel_abi.Pair):
            return "{" + ", ".join(str(v) for v in self.op.params.data[fill.name].get_values()) + "}"  # type: ignore[attr-defined]
        if isinstance(fill, kernel_abi.Requant):
            return "&rq" if self.requantizes else "NULL"
        value = self.op.params.data.get(fill.name)
        number = value.value.data if isinstance(value, IntegerAttr) else fill.default
        low, high = C_INT_RANGES[f.c_type]
        if not low <= number <= high:
            raise DoryError(f"parameter {fill.name} = {number} does not fit the kernels' {f.c_type} {struct.name}.{f.name}",
                            op_where(self.op))
        return f"{number}LL" if f.c_type == "int64_t" else str(number)


# ---------------------------------------------------------------------- the application


PER_LINE = 24
# "-128," .. " 255,": every byte value as a right-aligned C literal of 5 characters, indexed by value + 128.
_BYTE_LITERALS = np.frombuffer("".join(f"{v:>4d}," for v in range(-128, 256)).encode(), dtype=np.uint8).reshape(-1, 5)


def c_array(values: np.ndarray, ctype: str) -> str:
    """The initializer of a C array, PER_LINE values a line. Byte arrays (the weights: nearly all the bytes
    of a network) are formatted by one table lookup in numpy; wider values one by one."""
    flat = values.reshape(-1)
    if flat.size == 0:
        return "{0}"
    if flat.dtype.itemsize == 1 and flat.dtype.kind in "iu":
        pad = -flat.size % PER_LINE
        lines = _BYTE_LITERALS[np.concatenate([flat.astype(np.int16) + 128, np.full(pad, -1, np.int16)])]
        lines = lines.reshape(-1, PER_LINE * 5)  # the padding entries (index -1) are cut from the last line below
        text = np.concatenate([np.full((len(lines), 4), ord(" "), np.uint8), lines,
                               np.full((len(lines), 1), ord("\n"), np.uint8)], axis=1).tobytes().decode()
        if pad:
            text = text[: len(text) - 1 - 5 * pad] + "\n"
        return "{\n" + text + "}"
    strings = list(map(str, flat.tolist()))
    rows = [", ".join(strings[i : i + PER_LINE]) for i in range(0, len(strings), PER_LINE)]
    return "{\n    " + ",\n    ".join(rows) + "\n}"


def global_values(op: memref.GlobalOp) -> np.ndarray:
    value = op.initial_value
    assert isinstance(value, DenseIntOrFPElementsAttr)
    element = value.get_element_type()
    assert isinstance(element, IntegerType)
    kind = "u" if element.signedness.data == Signedness.UNSIGNED else "i"
    data = np.frombuffer(value.data.data, dtype=f"<{kind}{element.width.data // 8}")
    count = math.prod(value.get_shape())
    return np.broadcast_to(data, (count,)) if data.size == 1 else data


def lowered_network(module: ModuleOp) -> func.FuncOp:
    """The `network` function of a lowered module (its arguments are memrefs)."""
    network = next((op for op in module.ops if isinstance(op, func.FuncOp) and op.sym_name.data == "network"), None)
    if network is None or not all(isinstance(t, MemRefType) for t in network.function_type.inputs.data):
        raise DoryError("the C printer needs the lowered network (run --tile --lower-to-pulp)")
    return network


def memref_bytes(ty: MemRefType) -> int:
    return math.prod(ty.get_shape()) * max(1, ty.element_type.width.data // 8)  # type: ignore[attr-defined]


def io_bytes(network: func.FuncOp) -> list[int]:
    """Bytes of each network input and output (the arguments of the network function)."""
    return [memref_bytes(ty) for ty in network.function_type.inputs.data]  # type: ignore[arg-type]


@dataclass
class NetworkC:
    """Prints `network.c` of the lowered module: the constants, the state (L2/L3 buffers), one function per
    layer (forked on the cluster), the network body, and network_init/run/free."""

    module: ModuleOp
    stream: IO[str]

    def write(self, lines: list[str]) -> None:
        self.stream.write("".join(line + "\n" for line in lines))

    def print(self) -> None:
        network = lowered_network(self.module)
        self.globals = [op for op in self.module.ops if isinstance(op, memref.GlobalOp)]
        self.cores, _ = planned_execution(self.module)
        self.state_fields: list[str] = []
        self.allocations: list[tuple[str, str, int]] = []
        self.network_printer = self.printer(cluster=False)
        self.collect_state(network)
        self.write(self.prologue())
        for op in self.module.ops:
            if isinstance(op, func.FuncOp) and "pulp.cluster" in op.attributes:
                self.write(self.cluster_function(op))
        self.write(self.network_function(network))
        self.write(self.init_and_run())

    def prologue(self) -> list[str]:
        """Includes, the core count check, the constants (in L2, or loaded into L3), the state struct."""
        lines = ['#include <stdint.h>', '#include <stdlib.h>', '#include <string.h>', '#include "pmsis.h"', '#include "dory_kernels.h"',
                 '#include "dory_dma.h"', '#include "dory_perf.h"', '#include "network.h"', "",
                 f"/* The tiling was made for {self.cores} cores (L1 scratch per core): the kernels must be built for them. */",
                 "#ifndef NUM_CORES", f"#define NUM_CORES {self.cores}", "#endif", f"#if NUM_CORES != {self.cores}",
                 f'#error "this network was tiled for {self.cores} cores: build it with -DNUM_CORES={self.cores}"',
                 "#endif", "", "static struct pi_device ram;", ""]
        self.l3_globals = []
        for op in self.globals:
            ty = op.type
            assert isinstance(ty, MemRefType)
            ctype = c_type(ty.element_type)
            name = op.sym_name.data
            values = global_values(op)
            if isinstance(ty.memory_space, StringAttr) and ty.memory_space.data == "L3":
                lines.append(f"static const {ctype} init_{name}[{values.size}] = {c_array(values, ctype)};")
                lines.append(f"static uint32_t l3_{name};")
                self.l3_globals.append((name, memref_bytes(ty)))
            else:
                lines.append(f"static const {ctype} g_{name}[{values.size}] = {c_array(values, ctype)};")
        lines.append("")
        lines.append("static struct {")
        for field_line in self.state_fields:
            lines.append(f"    {field_line}")
        lines.append("    int unused;")
        lines.append("} state;")
        lines += ["", "__attribute__((weak)) void dory_layer_done(int layer, const void *data, int bytes) {",
                  "    (void)layer; (void)data; (void)bytes;", "}", ""]
        return lines

    def printer(self, cluster: bool) -> Printer:
        printer = Printer(self.module, in_cluster=cluster)
        printer.global_pointer = lambda symbol: (  # type: ignore[method-assign]
            f"(uintptr_t)l3_{symbol}" if any(op.sym_name.data == symbol and isinstance(op.type.memory_space, StringAttr)
                                              and op.type.memory_space.data == "L3" for op in self.globals)
            else f"g_{symbol}")
        return printer

    def cluster_function(self, function: func.FuncOp) -> list[str]:
        """A layer: L1 allocations on the cluster master, then the body forked on the team."""
        name = function.sym_name.data
        p = self.printer(cluster=True)
        block = function.body.block
        allocs = [op for op in block.ops if isinstance(op, memref.AllocOp)]
        params = []
        for arg in block.args:
            ty = arg.type
            assert isinstance(ty, MemRefType)
            params.append(f"{c_type(ty.element_type)} *{p.name(arg)}")
        ctx_fields = params + [f"uint8_t *{p.name(a.memref)}" for a in allocs]
        lines = [f"typedef struct {{ {'; '.join(ctx_fields)}; }} {name}_ctx_t;", "",
                 f"static void {name}_body(void *arg) {{", f"    {name}_ctx_t *ctx = ({name}_ctx_t *)arg;"]
        for value in [*block.args, *(a.memref for a in allocs)]:
            ty = value.type
            assert isinstance(ty, MemRefType)
            local = p.name(value)
            ctype = c_type(ty.element_type)
            lines.append(f"    {ctype} *{local} = ctx->{local};")
            sizes = [str(d) for d in ty.get_shape()]
            level = ty.memory_space.data if isinstance(ty.memory_space, StringAttr) else "L2"
            p.memrefs[value] = MemrefC(local, sizes, p.dense_strides(sizes), ty.element_type, level)
        p.indent = 1
        p.token_storage(block)
        p.print_block(block)
        lines += p.out + ["}", ""]
        sizes = {p.name(a.memref): math.prod(a.memref.type.get_shape()) for a in allocs}  # type: ignore[attr-defined]
        lines.append(f"static void {name}({', '.join(params)}) {{")
        lines.append(f"    {name}_ctx_t ctx;")
        for arg in block.args:
            lines.append(f"    ctx.{p.name(arg)} = {p.name(arg)};")
        for local, size in sizes.items():
            lines.append(f"    ctx.{local} = (uint8_t *)pi_cl_l1_malloc(NULL, {size});")
        lines.append(f"    pi_cl_team_fork(NUM_CORES, {name}_body, &ctx);")
        for local, size in reversed(list(sizes.items())):
            lines.append(f"    pi_cl_l1_free(NULL, ctx.{local}, {size});")
        lines += ["}", ""]
        return lines

    def collect_state(self, network: func.FuncOp) -> None:
        """The network body's L2/L3 buffers (allocated by network_init()) and its inputs/outputs become the state."""
        p = self.network_printer
        block = network.body.block
        for op in block.ops:
            if isinstance(op, memref.AllocOp):
                ty = op.memref.type
                assert isinstance(ty, MemRefType)
                local = p.name(op.memref)
                level = ty.memory_space.data if isinstance(ty.memory_space, StringAttr) else "L2"
                self.state_fields.append(f"{c_type(ty.element_type)} *{local};")
                self.allocations.append((local, level, memref_bytes(ty)))
        inputs = network.attributes.get("network_inputs")  # bufferize-network: the leading arguments
        self.input_count = inputs.value.data if isinstance(inputs, IntegerAttr) else 1
        self.io = list(enumerate(io_bytes(network)))
        for i, arg in enumerate(block.args):
            ty = arg.type
            assert isinstance(ty, MemRefType)
            self.state_fields.append(f"{c_type(ty.element_type)} *io{i};")
            sizes = [str(d) for d in ty.get_shape()]
            p.memrefs[arg] = MemrefC(f"state.io{i}", sizes, p.dense_strides(sizes), ty.element_type, "L2")

    def network_function(self, function: func.FuncOp) -> list[str]:
        """The network body runs on the cluster master."""
        p = self.network_printer
        block = function.body.block
        p.indent = 1
        p.line("dory_perf_network_begin();")
        p.setup_end = setup_end(block, L2_PLAN in function.attributes and weights_resident(l2_plan_of(function)))
        p.token_storage(block)
        p.print_block(block)
        p.line("dory_perf_network_end();")
        self.l3_outputs = p.l3_outputs
        return ["static void network_cluster(void *arg) {", "    (void)arg;"] + p.out + ["}", ""]

    def init_and_run(self) -> list[str]:
        lines = ["int network_init(void) {", "    struct pi_hyperram_conf conf;", "    pi_hyperram_conf_init(&conf);",
                 "    pi_open_from_conf(&ram, &conf);", "    if (pi_ram_open(&ram)) return -1;"]
        for name, size in self.l3_globals:
            lines += [f"    if (pi_ram_alloc(&ram, &l3_{name}, {size})) return -1;",
                      f"    pi_ram_write(&ram, l3_{name}, (void *)init_{name}, {size});"]
        for local, level, size in self.allocations:
            if level == "L3":
                lines += ["    {", "        uint32_t address;", f"        if (pi_ram_alloc(&ram, &address, {size})) return -1;",
                          f"        state.{local} = (void *)(uintptr_t)address;", "    }"]
            else:
                lines.append(f"    state.{local} = pi_l2_malloc({size});")
        lines += ["    return 0;", "}", ""]
        sizes = ", ".join(f"{size}" for _, size in self.io)
        lines += [f"const int network_io_bytes[] = {{{sizes}}};", f"const int network_io_count = {len(self.io)};",
                  f"const int network_input_count = {self.input_count};", ""]
        lines += ["void network_run(struct pi_device *cluster, void *const *io) {"]
        for i, size in self.io:
            lines += [f"    state.io{i} = pi_l2_malloc({size});"]
        for i, size in self.io[: self.input_count]:
            lines.append(f"    memcpy(state.io{i}, io[{i}], {size});")
        lines += ["    struct pi_cluster_task task;",
                  "    pi_cluster_task(&task, network_cluster, NULL);", "    pi_cluster_send_task_to_cl(cluster, &task);"]
        for i, size in self.io[self.input_count :]:
            lines.append(f"    memcpy(io[{i}], state.io{i}, {size});")
        for layer, ptr, size in self.l3_outputs:  # layer outputs that live in L3
            lines += ["    {", f"        void *copy = malloc({size});",
                      f"        pi_ram_read(&ram, (uint32_t)(uintptr_t){ptr}, copy, {size});",
                      f"        dory_layer_done({layer}, copy, {size});", "        free(copy);", "    }"]
        for i, size in self.io:
            lines.append(f"    pi_l2_free(state.io{i}, {size});")
        lines += ["}", "", "void network_free(void) {"]
        for local, level, size in reversed(self.allocations):
            if level == "L3":
                lines.append(f"    pi_ram_free(&ram, (uint32_t)(uintptr_t)state.{local}, {size});")
            else:
                lines.append(f"    pi_l2_free(state.{local}, {size});")
        for name, size in self.l3_globals:
            lines.append(f"    pi_ram_free(&ram, l3_{name}, {size});")
        lines += ["    pi_ram_close(&ram);", "}"]
        return lines


def print_network_c(module: ModuleOp, stream: IO[str]) -> None:
    """Prints `network.c` of the lowered module to `stream`."""
    NetworkC(module, stream).print()


# The application's other files: templates with @NAME@ placeholders (kernels.mk: the kernel sources rule
# both host and rv32 Makefiles include as @KERNELS@).
TEMPLATES = Path(__file__).parent / "templates"


def render(template: str, **values: str) -> str:
    text = (TEMPLATES / template).read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    return text


def makefile_host(budgets: str) -> str:
    """Makefile.host: the recipe of dory_mlir/backend/build.py with the tiler's budgets."""
    return render("Makefile.host", CFLAGS=" ".join(build.CFLAGS), BUDGETS=budgets,
                  KERNELS=render("kernels.mk").rstrip("\n"), DEFINES=" ".join(build.HOST.defines))


def makefile_rv32(budgets: str, target_name: str) -> str:
    """Makefile.rv32: the flags of dory_mlir/backend/rv32.py, the budgets, and the target's
    cluster stacks and L3 size when it is a built-in target (else the runtime's GAP8 values)."""
    stacks_from = f"target '{target_name}' is not built in: GAP8's"
    if (BUILTIN_TARGETS / f"{target_name}.json").is_file():
        target = load_target(target_name)
        master, *slaves = target.l1_stacks
        budgets += f" -DDORY_STACK_MASTER={master} -DDORY_STACK_SLAVE={max(slaves, default=master)} -DDORY_L3_SIZE={target.l3_total}"
        stacks_from = f"target {target_name}"
    return render("Makefile.rv32", GCC=rv32.GCC, QEMU=rv32.QEMU, ARCH=" ".join(build.RV32.arch),
                  CFLAGS=" ".join(build.CFLAGS), KERNELS=render("kernels.mk").rstrip("\n"),
                  DEFINES=" ".join(build.RV32.defines), BUDGETS=budgets.strip(), LDFLAGS=" ".join(rv32.LINK_FLAGS),
                  QEMU_ARGS=" ".join(rv32.QEMU_ARGS), STACKS_FROM=stacks_from)


def application_files(module: ModuleOp) -> dict[str, str]:
    """The files of the C application: network.c, and the templates filled with the tiler's core count and
    budgets (L1 without the cluster stacks, L2 without the code-reserved space plus the network's input/output)."""
    network = lowered_network(module)
    network_c = io.StringIO()
    print_network_c(module, network_c)
    cores, _ = planned_execution(module)
    target = target_of(module)
    budgets = ""
    if target is not None:
        l2 = target.l2_budget.data + sum(-(-size // 8) * 8 for size in io_bytes(network))
        budgets = f"-DDORY_L1_SIZE={target.l1_budget.data} -DDORY_L2_SIZE={l2} -DNUM_CORES={cores}"
    chip = target.chip.data if target is not None else "gap8"
    return {
        "network.h": render("network.h"),
        "network.c": network_c.getvalue(),
        "main.c": render("main.c"),
        "Makefile": render("Makefile", CORES=str(cores)),
        "Makefile.host": makefile_host(budgets),
        "Makefile.rv32": makefile_rv32(budgets, chip),
    }


def write_application(module: ModuleOp, directory: Path) -> list[Path]:
    """Writes the application and a copy of the runtime it builds with."""
    import shutil

    files = application_files(module)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        (directory / name).write_text(text)
        written.append(directory / name)
    for part in ("include", "kernels", "dma", "common", "host", "rv32"):
        source = RUNTIME / part
        if source.is_dir():
            shutil.copytree(source, directory / "runtime" / part, dirs_exist_ok=True)
    return written


@dataclass(frozen=True)
class PulpCTarget(Target):
    """`-t pulp-c`: the C application, written into `output_dir` (dory-opt's `-o`)."""

    name = "pulp-c"
    output_dir: str = "out"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        for path in write_application(module, Path(self.output_dir)):
            output.write(f"wrote {path}\n")


@dataclass(frozen=True)
class PulpNetworkCTarget(Target):
    """`-t pulp-network-c`: `network.c` alone, to the output stream (stdout, or dory-opt's `-o` file)."""

    name = "pulp-network-c"

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        print_network_c(module, output)
