"""The kernel table (dory_mlir/kernel_abi.py) is the C header's ABI: every argument struct of
dory_kernels.h with the table's name, fields, order and C types, and every kernel's prototype
taking the table's struct."""

from __future__ import annotations

import re
from pathlib import Path

from dory_mlir import kernel_abi

HEADER = Path(kernel_abi.__file__).parent / "runtime" / "include" / "dory_kernels.h"


def header_structs(text: str) -> dict[str, list[tuple[str, str]]]:
    """`typedef struct { ... } name;` -> [(field, C type)], a declaration of several fields
    (`uint16_t h, w, c;`, `const void *a, *b;`, `int32_t mul[2], add[2];`) split into one per field."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    structs = {}
    for body, name in re.findall(r"typedef struct\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S):
        fields = []
        for declaration in filter(None, (d.strip() for d in body.split(";"))):
            base, declarators = re.match(r"((?:const\s+)?\w+)\s+(.*)", declaration, flags=re.S).groups()
            for declarator in declarators.split(","):
                stars, field, count = re.fullmatch(r"\s*(\**)\s*(\w+)\s*(?:\[(\d+)\])?\s*", declarator).groups()
                c_type = f"{base} {stars}" if stars else base + (f"[{count}]" if count else "")
                fields.append((field, c_type))
        structs[name] = fields
    return structs


def test_structs_match_the_header():
    structs = header_structs(HEADER.read_text())
    table = {s.name: [(f.name, f.c_type) for f in s.fields] for s in kernel_abi.STRUCTS.values()}
    assert list(table) == list(structs)
    for name, fields in table.items():
        assert fields == structs[name], name


def test_kernels_match_the_prototypes():
    prototypes = dict(re.findall(r"void (dory_\w+)\(const (\w+) \*p\);", HEADER.read_text()))
    assert {name: kernel.struct.name for name, kernel in kernel_abi.KERNELS.items()} == prototypes


def test_every_layer_kind_has_one_kernel():
    kinds = [kind for kernel in kernel_abi.KERNELS.values() for kind in kernel.kinds]
    assert len(kinds) == len(set(kinds)) == len(kernel_abi.KERNEL_OF)


def test_fields_read_the_kernels_operands():
    """Shapes and element types come from buffers every call has; every buffer and index operand a kernel
    takes is read by a field (of its struct or, mul and add, of the requant's)."""
    for kernel in kernel_abi.KERNELS.values():
        fills = [f.fill for f in (*kernel.struct.fields, *kernel_abi.REQUANT.fields)]
        for fill in fills:
            if isinstance(fill, kernel_abi.ElementType | kernel_abi.Extent):
                assert fill.role in kernel.required, (kernel.name, fill)
        read = {fill.role for fill in fills if isinstance(fill, kernel_abi.Buffer | kernel_abi.Index)}
        assert {*kernel.required, *kernel.optional, *kernel.indices} <= read, kernel.name
