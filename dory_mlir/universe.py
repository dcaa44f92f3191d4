"""The `xdsl.universe` entry point: makes `qnn` and our passes known to any xDSL tool."""

from xdsl.universe import Universe


def _qnn():
    from dory_mlir.dialects.qnn import QNN

    return QNN


def _dma():
    from dory_mlir.dialects.dma import DMA

    return DMA


def _pulp():
    from dory_mlir.dialects.pulp import PULP

    return PULP


def _tiling():
    from dory_mlir.dialects.tiling import TILING_DIALECT

    return TILING_DIALECT


def _fuse():
    from dory_mlir.passes.fuse import FusePass

    return FusePass


def _tile():
    from dory_mlir.passes.tile import TilePass

    return TilePass


def _bufferize_network():
    from dory_mlir.passes.bufferize_network import BufferizeNetworkPass

    return BufferizeNetworkPass


def _tile_layers():
    from dory_mlir.passes.tile_layers import TileLayersPass

    return TileLayersPass


def _lower_to_pulp():
    from dory_mlir.passes.lower_to_pulp import LowerToPulpPass

    return LowerToPulpPass


def _verify_lowering():
    from dory_mlir.passes.verify_lowering import VerifyLoweringPass

    return VerifyLoweringPass


def _pulp_c():
    from dory_mlir.backend.pulp_c import PulpCTarget

    return PulpCTarget


def _pulp_network_c():
    from dory_mlir.backend.pulp_c import PulpNetworkCTarget

    return PulpNetworkCTarget


DORY_UNIVERSE = Universe(
    all_dialects={"qnn": _qnn, "dma": _dma, "pulp": _pulp, "tiling": _tiling},
    all_passes={"fuse": _fuse, "tile": _tile, "bufferize-network": _bufferize_network,
                "tile-layers": _tile_layers, "lower-to-pulp": _lower_to_pulp, "verify-lowering": _verify_lowering},
    all_targets={"pulp-c": _pulp_c, "pulp-network-c": _pulp_network_c},
)
