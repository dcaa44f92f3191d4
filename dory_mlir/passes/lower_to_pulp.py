"""`lower-to-pulp`: the tiled network down to memrefs, tile loops, DMA and kernel calls.

Composes `bufferize-network` (tensors → memrefs in L2/L3 per the L2 plan, layers →
`pulp.layer`), `tile-layers` (each layer → a cluster function with its tile loop) and
`verify-lowering` (the L1 allocations, tile coverage and L2 views the C will use, against the
target; `verify=false` skips it).
"""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from dory_mlir.passes.bufferize_network import BufferizeNetworkPass
from dory_mlir.passes.tile_layers import TileLayersPass
from dory_mlir.passes.verify_lowering import VerifyLoweringPass


@dataclass(frozen=True)
class LowerToPulpPass(ModulePass):
    name = "lower-to-pulp"

    double_buffer: bool | None = None
    """Default: as the tile pass planned; see `tile-layers`."""
    cores: int | None = None
    verify: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        BufferizeNetworkPass().apply(ctx, op)
        TileLayersPass(self.double_buffer, self.cores).apply(ctx, op)
        if self.verify:
            VerifyLoweringPass().apply(ctx, op)
