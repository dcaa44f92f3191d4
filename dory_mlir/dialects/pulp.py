"""The `pulp` dialect: layers on memrefs, kernel invocations and the cluster team.

- `pulp.layer` is a layer after bufferization: which kernel computes it, its buffers
  (activations and constants in L2/L3, by role), its static parameters (named by the kernel
  table, `kernel_abi.kernel_params`) and the tile pass's `#tiling.layer` decisions.
  `tile-layers` turns it into a tile loop.
- `pulp.kernel` invokes a kernel of the library (`dory_mlir/runtime/include/dory_kernels.h`)
  on L1 buffers; every core of the team calls it and computes its share.
- `pulp.barrier` is the team barrier.

Buffers and index operands are named by `roles` (one per operand, in order), so the
kernel's C struct is filled by name, and the verifiers know what each kernel needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    DictionaryAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    StringAttr,
    i64,
)
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    opt_prop_def,
    prop_def,
    var_operand_def,
)
from xdsl.utils.exceptions import VerifyException

from dory_mlir import kernel_abi
from dory_mlir.dialects.dma import memory_level
from dory_mlir.dialects.tiling import LayerTilingAttr

# kernel → (required buffer roles, optional buffer roles, index roles), from the kernel table.
KERNELS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    name: (kernel.required, kernel.optional, kernel.indices) for name, kernel in kernel_abi.KERNELS.items()
}


def _roles(op: IRDLOperation) -> list[str]:
    return [r.data for r in op.roles.data]  # type: ignore[attr-defined]


SCRATCH = kernel_abi.SCRATCH


def _check_params(op: IRDLOperation, callee: str, extra: Sequence[str] = ()) -> None:
    """Every static parameter is one the kernel table names for `callee`; single values are integers."""
    if callee in kernel_abi.DATA_MOVES:
        known = {name: kernel_abi.Param(name) for name in kernel_abi.DATA_MOVES[callee].params}
        for name in op.params.data:  # type: ignore[attr-defined]
            if name not in known:
                raise VerifyException(f"{callee} has no parameter '{name}' (it takes: {', '.join(known)})")
        return
    known = kernel_abi.kernel_params(callee)
    for name, value in op.params.data.items():  # type: ignore[attr-defined]
        if name not in known and name not in extra:
            raise VerifyException(f"{callee} has no parameter '{name}' (it takes: {', '.join([*known, *extra])})")
        if isinstance(known.get(name), kernel_abi.Param) and not isinstance(value, IntegerAttr):
            raise VerifyException(f"parameter '{name}' of {callee} must be an integer, got {value}")


def _check_roles(op: IRDLOperation, callee: str, buffers: Sequence[SSAValue], scalars: Sequence[SSAValue],
                 tiled: bool) -> None:
    moves = {name: (move.required, (), ()) for name, move in kernel_abi.DATA_MOVES.items()}
    if callee not in KERNELS and callee not in moves:
        raise VerifyException(f"unknown kernel '{callee}' (known: {', '.join(KERNELS)})")
    required, optional, index_roles = KERNELS.get(callee) or moves[callee]
    if not tiled:
        required = tuple(r for r in required if r not in SCRATCH)
        optional = tuple(r for r in optional if r not in SCRATCH)
        # L2 buffers for the slices of tensors streamed from L3 (weights: all the constants).
        optional += tuple(f"{r}_slice" for r in (*required, *optional) if r not in kernel_abi.CONSTANTS)
        index_roles = ()
    roles = _roles(op)
    if len(roles) != len(buffers) + len(scalars):
        raise VerifyException(f"{len(roles)} roles for {len(buffers) + len(scalars)} operands")
    buffer_roles, scalar_roles = roles[: len(buffers)], roles[len(buffers) :]
    if len(set(buffer_roles)) != len(buffer_roles):
        raise VerifyException(f"a buffer role appears twice: {buffer_roles}")
    if missing := [r for r in required if r not in buffer_roles]:
        raise VerifyException(f"{callee} needs buffers {missing}")
    if unknown := [r for r in buffer_roles if r not in required + optional]:
        raise VerifyException(f"{callee} has no buffer role {unknown}")
    if scalar_roles != list(index_roles):
        raise VerifyException(f"{callee} takes index operands {list(index_roles)}, got {scalar_roles}")


@irdl_op_definition
class LayerOp(IRDLOperation):
    """A layer on memrefs (L2 or L3): `kernel` computes it, `params` are its static parameters.

    ```mlir
    pulp.layer 3 "dory_conv2d" (%in, %w, %k, %l, %out) {roles = ["in", "weights", "mul", "add", "out"], params = {...},
                                                      tiling = #tiling.layer<...>}
    ```
    """

    name = "pulp.layer"
    index = prop_def(IntegerAttr[I64])
    kernel = prop_def(StringAttr)
    roles = prop_def(ArrayAttr[StringAttr])
    params = prop_def(DictionaryAttr)
    tiling = opt_prop_def(LayerTilingAttr)
    buffers = var_operand_def(MemRefType)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$index $kernel ` ` `(` $buffers `)` attr-dict `:` type($buffers)"

    def __init__(self, index: int, kernel: str, buffers: Mapping[str, SSAValue], params: Mapping[str, Attribute],
                 tiling: LayerTilingAttr | None = None):
        properties: dict[str, Attribute] = {
            "index": IntegerAttr(index, i64),
            "kernel": StringAttr(kernel),
            "roles": ArrayAttr([StringAttr(r) for r in buffers]),
            "params": DictionaryAttr(dict(params)),
        }
        if tiling is not None:
            properties["tiling"] = tiling
        super().__init__(operands=[list(buffers.values())], properties=properties)

    def buffer(self, role: str) -> SSAValue | None:
        roles = _roles(self)
        return self.buffers[roles.index(role)] if role in roles else None

    def verify_(self) -> None:
        _check_roles(self, self.kernel.data, self.buffers, [], tiled=False)
        _check_params(self, self.kernel.data, kernel_abi.LAYER_PARAMS)
        for role, value in zip(_roles(self), self.buffers, strict=True):
            if memory_level(value.type) == "L1":
                raise VerifyException("a layer's buffers live in L2 or L3, not L1")
            if role.endswith("_slice") and memory_level(value.type) != "L2":
                raise VerifyException(f"slice buffer '{role}' must be in L2")


@irdl_op_definition
class KernelOp(IRDLOperation):
    """All cores call `callee` on L1 buffers; `roles` name the buffers, then the index operands.

    ```mlir
    pulp.kernel "dory_maxpool" (%in, %out) [%pt, %pl, %pb, %pr] {roles = [...], params = {...}} : ...
    ```
    """

    name = "pulp.kernel"
    callee = prop_def(StringAttr)
    roles = prop_def(ArrayAttr[StringAttr])
    params = prop_def(DictionaryAttr)
    buffers = var_operand_def(MemRefType)
    scalars = var_operand_def(IndexType)

    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = "$callee ` ` `(` $buffers `)` `[` $scalars `]` attr-dict `:` type($buffers)"

    def __init__(self, callee: str, buffers: Mapping[str, SSAValue], scalars: Mapping[str, SSAValue],
                 params: Mapping[str, Attribute]):
        super().__init__(
            operands=[list(buffers.values()), list(scalars.values())],
            properties={
                "callee": StringAttr(callee),
                "roles": ArrayAttr([StringAttr(r) for r in [*buffers, *scalars]]),
                "params": DictionaryAttr(dict(params)),
            },
        )

    def operand_by_role(self) -> dict[str, SSAValue]:
        return dict(zip(_roles(self), [*self.buffers, *self.scalars], strict=True))

    def verify_(self) -> None:
        _check_roles(self, self.callee.data, self.buffers, self.scalars, tiled=True)
        _check_params(self, self.callee.data)
        for value in self.buffers:
            if memory_level(value.type) != "L1":
                raise VerifyException(f"kernels work on L1 buffers, got {value.type}")


@irdl_op_definition
class BarrierOp(IRDLOperation):
    """Every core of the team waits here until all have arrived."""

    name = "pulp.barrier"
    assembly_format = "attr-dict"


PULP = Dialect("pulp", [LayerOp, KernelOp, BarrierOp], [])
