"""`-t pulp-c`: prints the lowered IR as a C application for PULP (and the host runtime).

A printer over the IR with a print context, in the manner of xDSL's CSL printer: each op
prints its C; SSA values become C variables; a memref value is a pointer plus its sizes
and strides (C expressions). Functions marked `pulp.cluster` are forked on the team:
their L1 allocations happen on the cluster master before the fork, the body runs on
every core, DMA is issued and waited by core 0 only.

Files written (`-o DIR`): `network.c`, `network.h`, `main.c` (runs the network on
`input.bin`, or `input_K.bin` per network input K when there are several, writes every layer's
output and a checksum line per layer), `Makefile`
(PULP SDK), `Makefile.host` (gcc with the host runtime) and `Makefile.rv32` (rv32imc with the
bare-metal runtime, run under QEMU, counting instructions per layer and per kernel call).
"""

from __future__ import annotations

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
    StridedLayoutAttr,
    StringAttr,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.utils.target import Target

from dory_mlir.backend import build, rv32
from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import dma, pulp
from dory_mlir.ir_utils import op_where
from dory_mlir.dialects.tiling import target_of
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
VALUE_OPS = (arith.ConstantOp, arith.IndexCastOp, arith.AddiOp, arith.SubiOp, arith.MuliOp, arith.RemUIOp,
             arith.CmpiOp, memref.LoadOp)


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

    def print_op(self, op: Operation) -> None:  # noqa: C901 - one dispatch table
        if isinstance(op, arith.ConstantOp):
            value = op.value
            assert isinstance(value, IntegerAttr)
            self.names[op.result] = f"({value.value.data})"  # a literal where it is used
        elif isinstance(op, arith.IndexCastOp):
            # A tile size may only size views whose sizes no kernel call reads (an add of two vectors).
            self.line(f"{c_type(op.result.type)} {self.name(op.result)} __attribute__((unused)) = (int){self.name(op.input)};")
        elif isinstance(op, arith.AddiOp | arith.SubiOp | arith.MuliOp | arith.RemUIOp):
            symbol = {arith.AddiOp: "+", arith.SubiOp: "-", arith.MuliOp: "*", arith.RemUIOp: "%"}[type(op)]
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
        function = next(f for f in self.module.ops if isinstance(f, func.FuncOp) and f.sym_name.data == callee)
        out_index = next(i for i, a in enumerate(function.body.block.args) if a.name_hint == "out")
        out = self.memref(op.arguments[out_index])
        if out.level == "L3":  # read back from L3 by the fabric controller after the run
            self.l3_outputs.append((layer, out.ptr, self.byte_count(out)))
        else:
            self.line(f"dory_layer_done({layer}, {out.ptr}, {self.byte_count(out)});")
            self.line("dory_perf_resume();")  # the verification hook is not counted


@dataclass
class KernelCall:
    """Fills the kernel's argument struct from the op's roles and parameters."""

    printer: Printer
    op: pulp.KernelOp

    def param(self, name: str, default: int = 0) -> int:
        value = self.op.params.data.get(name)
        return value.value.data if isinstance(value, IntegerAttr) else default  # type: ignore[union-attr]

    def array(self, name: str) -> list[int]:
        return list(self.op.params.data[name].get_values())  # type: ignore[attr-defined]

    def print(self) -> None:
        p = self.printer
        operands = self.op.operand_by_role()
        m = {role: p.memref(v) for role, v in operands.items() if isinstance(v.type, MemRefType)}
        s = {role: p.name(v) for role, v in operands.items() if isinstance(v.type, IndexType)}
        callee = self.op.callee.data
        rq = self.requant(m)
        p.line("{")
        p.indent += 1
        if rq:
            p.line(f"const dory_requant_t rq = {{{rq}}};")
        fields = self.fields(callee, m, s, "&rq" if rq else "NULL")
        struct = {"dory_linear": "dory_linear_t", "dory_maxpool": "dory_pool_t", "dory_sumpool": "dory_pool_t",
                  "dory_add": "dory_add_t", "dory_matmul": "dory_matmul_t"}.get(callee, "dory_conv_t")
        p.line(f"const {struct} args = {{{', '.join(fields)}}};")
        p.line(f"DORY_PERF_KERNEL({callee}(&args));")  # instruction counts (rv32 build), else a plain call
        p.indent -= 1
        p.line("}")

    def requant(self, m: dict[str, MemrefC]) -> str:
        if "scale" not in self.op.params.data:
            return ""
        return ", ".join([
            f".mul = {m['mul'].ptr}", f".add = {m['add'].ptr}",
            f".mul_per_channel = {self.param('mul_per_channel')}", f".add_per_channel = {self.param('add_per_channel')}",
            f".const_bits = {self.param('const_bits', 32)}", f".wide = {self.param('wide')}", f".trunc = {self.param('trunc')}",
            f".shift = {self.param('shift', -1)}", f".scale = {self.param('scale')}LL", f".divisor = {self.param('divisor')}LL",
            f".min = {self.param('min')}", f".max = {self.param('max')}",
        ])

    def fields(self, callee: str, m: dict[str, MemrefC], s: dict[str, str], rq: str) -> list[str]:
        out = m["out"]
        if callee == "dory_add":
            mul, add, shift = self.array("in_mul"), self.array("in_add"), self.array("in_shift")
            h, w, c = (["1", "1"] + list(out.sizes))[-3:]  # an add of two vectors is 1×1×K
            return [f".a = {m['a'].ptr}", f".b = {m['b'].ptr}", f".a_type = {dtype_enum(m['a'].element)}",
                    f".b_type = {dtype_enum(m['b'].element)}", f".h = {h}", f".w = {w}",
                    f".c = {c}", f".mul = {{{mul[0]}, {mul[1]}}}", f".add = {{{add[0]}, {add[1]}}}",
                    f".shift = {{{shift[0]}, {shift[1]}}}", f".rq = {rq}", f".out = {out.ptr}",
                    f".out_type = {dtype_enum(out.element)}"]
        inp = m["in"]
        if callee == "dory_matmul":  # tiles [rows][1][K], [K][1][N], [rows][1][N]
            rhs = m["rhs"]
            return [f".a = {inp.ptr}", f".b = {rhs.ptr}", f".a_type = {dtype_enum(inp.element)}",
                    f".b_type = {dtype_enum(rhs.element)}", f".m = {out.sizes[0]}", f".k = {inp.sizes[2]}",
                    f".n = {out.sizes[2]}", f".acc = {m['acc'].ptr if 'acc' in m else 'NULL'}",
                    f".first_slice = {s['first']}", f".last_slice = {s['last']}", f".rq = {rq}", f".out = {out.ptr}",
                    f".out_type = {dtype_enum(out.element)}"]
        if callee == "dory_linear":
            return [f".in = {inp.ptr}", f".in_type = {dtype_enum(inp.element)}", f".in_c = {inp.sizes[0]}",
                    f".out_c = {out.sizes[0]}", f".weights = {m['weights'].ptr}",
                    f".bias = {m['bias'].ptr if 'bias' in m else 'NULL'}", f".acc = {m['acc'].ptr if 'acc' in m else 'NULL'}",
                    f".first_slice = {s['first']}", f".last_slice = {s['last']}", f".rq = {rq}", f".out = {out.ptr}",
                    f".out_type = {dtype_enum(out.element)}"]
        window = [f".kh = {self.param('kh', 1)}", f".kw = {self.param('kw', 1)}", f".sh = {self.param('sh', 1)}",
                  f".sw = {self.param('sw', 1)}"]
        pads = [f".{p} = {s[p]}" for p in ("pad_t", "pad_l", "pad_b", "pad_r") if p in s]
        shapes = [f".in = {inp.ptr}", f".in_type = {dtype_enum(inp.element)}", f".in_h = {inp.sizes[0]}",
                  f".in_w = {inp.sizes[1]}", f".out_h = {out.sizes[0]}", f".out_w = {out.sizes[1]}",
                  f".out = {out.ptr}", f".out_type = {dtype_enum(out.element)}"]
        if callee in ("dory_maxpool", "dory_sumpool"):
            return shapes + [f".c = {inp.sizes[2]}"] + window + pads + [f".rq = {rq}"]
        conv = shapes + window + pads + [
            f".in_c = {inp.sizes[2]}", f".out_c = {out.sizes[2]}", f".dh = {self.param('dh', 1)}", f".dw = {self.param('dw', 1)}",
            f".weights = {m['weights'].ptr}", f".bias = {m['bias'].ptr if 'bias' in m else 'NULL'}",
            f".acc = {m['acc'].ptr if 'acc' in m else 'NULL'}",
            f".first_slice = {s.get('first', '1')}", f".last_slice = {s.get('last', '1')}", f".rq = {rq}",
            f".im2col = {('(int8_t *)' + m['im2col'].ptr) if 'im2col' in m else 'NULL'}",
        ]
        if not -(2**15) <= self.param("pad_value", 0) < 2**15:  # the kernels' int16_t pad_value
            raise DoryError(f"padding value {self.param('pad_value', 0)} does not fit the kernels' 16-bit pad_value")
        if self.param("pad_value", 0):
            conv.append(f".pad_value = {self.param('pad_value', 0)}")
        return conv


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


@dataclass
class Application:
    """Generates the files of the C application from the lowered module."""

    module: ModuleOp

    def generate(self) -> dict[str, str]:
        self.globals = [op for op in self.module.ops if isinstance(op, memref.GlobalOp)]
        functions = [op for op in self.module.ops if isinstance(op, func.FuncOp)]
        network = next((f for f in functions if f.sym_name.data == "network"), None)
        if network is None or not all(isinstance(t, MemRefType) for t in network.function_type.inputs.data):
            raise DoryError("-t pulp-c needs the lowered network (run --tile --lower-to-pulp)")
        layers = [f for f in functions if "pulp.cluster" in f.attributes]
        body: list[str] = []
        for layer in layers:
            body += self.cluster_function(layer)
        body += self.network_function(network)
        target = target_of(self.module)
        self.cores, _ = planned_execution(self.module)
        budgets = ""
        if target is not None:
            io = sum(-(-size // 8) * 8 for _, size in self.io)
            budgets = f"-DDORY_L1_SIZE={target.l1_budget.data} -DDORY_L2_SIZE={target.l2_budget.data + io} -DNUM_CORES={self.cores}"
        chip = target.chip.data if target is not None else "gap8"
        return {
            "network.h": NETWORK_H,
            "network.c": self.network_c(body),
            "main.c": MAIN_C,
            "Makefile": MAKEFILE.replace("@CORES@", str(self.cores)),
            "Makefile.host": makefile_host(budgets),
            "Makefile.rv32": makefile_rv32(budgets, chip),
        }

    def network_c(self, body: list[str]) -> str:
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
                self.l3_globals.append((name, values.size * max(1, ty.element_type.width.data // 8)))  # type: ignore[attr-defined]
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
        return "\n".join(lines + body + self.init_and_run()) + "\n"

    state_fields: list[str] = field(default_factory=list)
    allocations: list[tuple[str, str, int]] = field(default_factory=list)

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

    def network_function(self, function: func.FuncOp) -> list[str]:
        """The network body runs on the cluster master; its L2/L3 buffers come from network_init()."""
        p = self.printer(cluster=False)
        block = function.body.block
        for op in block.ops:
            if isinstance(op, memref.AllocOp):
                ty = op.memref.type
                assert isinstance(ty, MemRefType)
                local = p.name(op.memref)
                size = math.prod(ty.get_shape()) * max(1, ty.element_type.width.data // 8)  # type: ignore[attr-defined]
                level = ty.memory_space.data if isinstance(ty.memory_space, StringAttr) else "L2"
                self.state_fields.append(f"{c_type(ty.element_type)} *{local};")
                self.allocations.append((local, level, size))
        inputs = function.attributes.get("network_inputs")  # bufferize-network: the leading arguments
        self.input_count = inputs.value.data if isinstance(inputs, IntegerAttr) else 1
        self.io = []
        for i, arg in enumerate(block.args):
            ty = arg.type
            assert isinstance(ty, MemRefType)
            self.state_fields.append(f"{c_type(ty.element_type)} *io{i};")
            sizes = [str(d) for d in ty.get_shape()]
            p.memrefs[arg] = MemrefC(f"state.io{i}", sizes, p.dense_strides(sizes), ty.element_type, "L2")
            self.io.append((i, math.prod(ty.get_shape()) * max(1, ty.element_type.width.data // 8)))  # type: ignore[attr-defined]
        p.indent = 1
        p.line("dory_perf_network_begin();")
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


NETWORK_H = """/* Generated by dory-mlir: the network's C interface. */
#ifndef NETWORK_H
#define NETWORK_H

#include "pmsis.h"

/* Bytes of each network input (io[0 .. network_input_count-1]) and of each output (the rest). */
extern const int network_io_bytes[];
extern const int network_io_count;
extern const int network_input_count;

/* Opens the RAM, loads the weights into L3 and allocates the L2 buffers (fabric controller). */
int network_init(void);
/* Runs the network on the cluster: io[0 .. network_input_count-1] are the inputs (HWC), the others receive the outputs. */
void network_run(struct pi_device *cluster, void *const *io);
void network_free(void);
/* Called after every layer with its output (weak default: nothing). */
void dory_layer_done(int layer, const void *data, int bytes);

#endif
"""

MAIN_C = """/* Generated by dory-mlir: runs the network once and prints one checksum per layer.
 * Host and rv32 builds: read input.bin (several network inputs: input_0.bin, input_1.bin, ...),
 * write out_layerN.bin (network output K: out_layer-K.bin, K from 1) into DORY_DUMP_DIR
 * (or .; under QEMU the files are those of its working directory, through semihosting);
 * the rv32 build also prints its instruction counts (dory_perf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmsis.h"
#include "dory_perf.h"
#include "network.h"

#if defined(DORY_HOST) || defined(DORY_RV32)
#define DORY_FILES 1
#endif

#ifdef DORY_FILES
static const char *dump_dir(void) {
    const char *dir = getenv("DORY_DUMP_DIR");
    return dir ? dir : ".";
}
#endif

void dory_layer_done(int layer, const void *data, int bytes) {
    const unsigned char *p = (const unsigned char *)data;
    unsigned long sum = 0;
    for (int i = 0; i < bytes; i++) sum += p[i];
    printf("layer %d checksum %lu bytes %d\\n", layer, sum, bytes);
#ifdef DORY_FILES
    char path[512];
    snprintf(path, sizeof path, "%s/out_layer%d.bin", dump_dir(), layer);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, (size_t)bytes, f);
        fclose(f);
    }
#endif
}

int main(void) {
    struct pi_device cluster;
    struct pi_cluster_conf conf;
    pi_cluster_conf_init(&conf);
    pi_open_from_conf(&cluster, &conf);
    if (pi_cluster_open(&cluster)) return 1;
    if (network_init()) return 2;
    void **io = (void **)calloc((size_t)network_io_count, sizeof(void *));
    if (!io) return 4;
    for (int i = 0; i < network_io_count; i++) {
        io[i] = calloc(1, (size_t)network_io_bytes[i]);
        if (!io[i]) return 4;
    }
#ifdef DORY_FILES
    for (int i = 0; i < network_input_count; i++) {
        char path[512];
        if (network_input_count == 1) snprintf(path, sizeof path, "%s/input.bin", dump_dir());
        else snprintf(path, sizeof path, "%s/input_%d.bin", dump_dir(), i);
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t got = fread(io[i], 1, (size_t)network_io_bytes[i], f);
            fclose(f);
            if (got != (size_t)network_io_bytes[i]) return 3;
        }
    }
#endif
    network_run(&cluster, io);
    dory_perf_report();
    for (int i = network_input_count; i < network_io_count; i++)
        dory_layer_done(-(i - network_input_count + 1), io[i], network_io_bytes[i]);
    for (int i = 0; i < network_io_count; i++) free(io[i]);
    free(io);
    network_free();
    pi_cluster_close(&cluster);
    return 0;
}
"""

MAKEFILE = """# PULP SDK build (GAP8): make clean all run
APP = network
APP_SRCS = main.c network.c $(wildcard runtime/kernels/*.c) runtime/dma/dory_dma.c
APP_CFLAGS += -O3 -Iruntime/include -DNUM_CORES=@CORES@
include $(RULES_DIR)/pmsis_rules.mk
"""

MAKEFILE_HOST = """# Host build with the project's PMSIS runtime: make -f Makefile.host && ./network
# The runtime's L1 and L2 arenas have the sizes the tiler planned for (L1 without the
# cluster stacks, L2 without the code-reserved space, plus the network's input/output).
CC ?= gcc
CFLAGS ?= @CFLAGS@
BUDGETS = @BUDGETS@
@KERNELS@
SRCS = main.c network.c runtime/host/pmsis_host.c $(KERNELS)

network: $(SRCS)
\t$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(BUDGETS) @DEFINES@ -Iruntime/host -Iruntime/include -o $@ $(SRCS)
"""

# DORY_KERNELS_LIB: the kernel library already built with the same flags (dory_mlir/backend/build.py).
KERNELS_RULE = """# DORY_KERNELS_LIB (make or environment variable): an archive of the kernel library built with
# these flags, linked instead of compiling the kernels again (most of the build time).
ifdef DORY_KERNELS_LIB
KERNELS = $(DORY_KERNELS_LIB)
else
KERNELS = $(wildcard runtime/kernels/*.c) runtime/dma/dory_dma.c
endif"""

MAKEFILE_RV32 = """# rv32imc build with the project's bare-metal PMSIS runtime (runtime/rv32), run under QEMU:
#   make -f Makefile.rv32 run      (reads input.bin, writes out_layerN.bin here; instruction counts)
# Debian packages: gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc.
# The L1 and L2 arenas have the tiler's budgets, the cluster stacks the target's sizes (@STACKS_FROM@).
CC = @GCC@
QEMU = @QEMU@
CFLAGS ?= @CFLAGS@
ARCH = @ARCH@
BUDGETS = @BUDGETS@
LDFLAGS = @LDFLAGS@
@KERNELS@
SRCS = main.c network.c $(wildcard runtime/rv32/*.c) $(KERNELS)

network.elf: $(SRCS)
\t$(CC) $(ARCH) $(CFLAGS) $(EXTRA_CFLAGS) $(BUDGETS) @DEFINES@ -Iruntime/rv32 -Iruntime/include $(LDFLAGS) -o $@ $(SRCS)

run: network.elf
\t$(QEMU) @QEMU_ARGS@ -kernel network.elf </dev/null
"""


def makefile_host(budgets: str) -> str:
    """Makefile.host: the recipe of dory_mlir/backend/build.py with the tiler's budgets."""
    return (MAKEFILE_HOST.replace("@CFLAGS@", " ".join(build.CFLAGS)).replace("@BUDGETS@", budgets)
            .replace("@KERNELS@", KERNELS_RULE).replace("@DEFINES@", " ".join(build.HOST.defines)))


def makefile_rv32(budgets: str, target_name: str) -> str:
    """Makefile.rv32: the flags of dory_mlir/backend/rv32.py, the budgets, and the target's
    cluster stacks and L3 size when it is a built-in target (else the runtime's GAP8 values)."""
    stacks_from = f"target '{target_name}' is not built in: GAP8's"
    if (BUILTIN_TARGETS / f"{target_name}.json").is_file():
        target = load_target(target_name)
        master, *slaves = target.l1_stacks
        budgets += f" -DDORY_STACK_MASTER={master} -DDORY_STACK_SLAVE={max(slaves, default=master)} -DDORY_L3_SIZE={target.l3_total}"
        stacks_from = f"target {target_name}"
    return (MAKEFILE_RV32.replace("@GCC@", rv32.GCC).replace("@QEMU@", rv32.QEMU).replace("@ARCH@", " ".join(build.RV32.arch))
            .replace("@CFLAGS@", " ".join(build.CFLAGS)).replace("@KERNELS@", KERNELS_RULE)
            .replace("@DEFINES@", " ".join(build.RV32.defines))
            .replace("@BUDGETS@", budgets.strip()).replace("@LDFLAGS@", " ".join(rv32.LINK_FLAGS))
            .replace("@QEMU_ARGS@", " ".join(rv32.QEMU_ARGS)).replace("@STACKS_FROM@", stacks_from))


def write_application(module: ModuleOp, directory: Path) -> list[Path]:
    """Writes the application and a copy of the runtime it builds with."""
    import shutil

    files = Application(module).generate()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        (directory / name).write_text(text)
        written.append(directory / name)
    for part in ("include", "kernels", "dma", "host", "rv32"):
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
