"""The independent checker of the `tile` pass (`dory_mlir.tiling.check`).

The pass's output on every reference and example network passes the checker, and every
kind of tampering with the decisions in the IR is reported.
"""

import functools
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp
from xdsl.utils.exceptions import VerifyException

from conftest import DORY_NETWORKS, EXAMPLE_NAMES, needs_shared, onnx_file
from dory_mlir.dialects import qnn
from dory_mlir.dialects.tiling import L2_PLAN, TARGET, TILING, L2BufferAttr, L2PlanAttr, LayerTilingAttr
from dory_mlir.examples.nemo_builder import example_networks
from dory_mlir.passes.tile import TilePass
from dory_mlir.pipeline import load_network, make_context
from dory_mlir.tiling.check import Axis, check_tiling
from dory_mlir.tiling.geometry import nested_spans, spans

CONFIGS = {
    "default": {},
    "l1-35000": {"l1_size": 35000},
    "l1-8000-l2-64000": {"l1_size": 8000, "l2_size": 64000},
}
EXAMPLE_CONFIGS = {"default": {}, "l1-2000-l2-12000": {"l1_size": 2000, "l2_size": 12000}}

DRONET = "nemo_8-bits-2D_dronet_2.0"  # with l1 8000 / l2 64000: L3 weights, streamed activations
DSCNN = "nemo_8-bits-2D_dscnn_test"  # by default: weights resident in L2


@functools.cache
def tiled_network(name: str, config: str) -> ModuleOp:
    """A reference network after `tile` (tests that tamper with it take a clone)."""
    (folder,) = [p for p in DORY_NETWORKS if p.name == name]
    module = load_network(onnx_file(folder))
    TilePass(**CONFIGS[config]).apply(make_context(), module)
    return module


def tampered(name: str = DRONET, config: str = "l1-8000-l2-64000") -> ModuleOp:
    return tiled_network(name, config).clone()


def function_of(module: ModuleOp) -> func.FuncOp:
    return next(op for op in module.walk() if isinstance(op, func.FuncOp))


def layer_of(module: ModuleOp, index: int) -> qnn.LayerOp:
    return next(op for op in module.walk() if isinstance(op, qnn.LayerOp) and op.index.value.data == index)


def tiling_of(layer: qnn.LayerOp) -> LayerTilingAttr:
    return layer.attributes[TILING]  # type: ignore[return-value]


def set_tiling(layer: qnn.LayerOp, **changes) -> None:
    layer.attributes[TILING] = tiling_of(layer).replace(**changes)


def set_target(module: ModuleOp, **changes) -> None:
    module.attributes[TARGET] = module.attributes[TARGET].replace(**changes)  # type: ignore[attr-defined]


def plan_of(module: ModuleOp) -> L2PlanAttr:
    return function_of(module).attributes[L2_PLAN]  # type: ignore[return-value]


def set_plan(module: ModuleOp, **changes) -> None:
    function_of(module).attributes[L2_PLAN] = plan_of(module).replace(**changes)


def buffers_of(module: ModuleOp) -> list[L2BufferAttr]:
    return list(plan_of(module).buffers.data)


def set_buffers(module: ModuleOp, buffers: list[L2BufferAttr]) -> None:
    set_plan(module, buffers=ArrayAttr(buffers))


def change_buffer(module: ModuleOp, name: str, **changes: int) -> None:
    set_buffers(module, [b.replace(**changes) if b.buffer.data == name else b for b in buffers_of(module)])


def problems_of(module: ModuleOp, layer: int | None = None) -> list[str]:
    problems = check_tiling(module)
    return [p for p in problems if f"layer {layer}:" in p] if layer is not None else problems


# --------------------------------------------------------------------------- the pass's output verifies


@needs_shared
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("folder", DORY_NETWORKS, ids=lambda p: p.name)
def test_reference_network_tiling_verifies(folder: Path, config: str):
    assert check_tiling(tiled_network(folder.name, config)) == []


@pytest.mark.parametrize("config", EXAMPLE_CONFIGS)
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_network_tiling_verifies(name: str, config: str, tmp_path: Path):
    path = tmp_path / "model.onnx"
    onnx.save(example_networks()[name](0), path)
    module = load_network(path)
    TilePass(**EXAMPLE_CONFIGS[config]).apply(make_context(), module)
    assert check_tiling(module) == []


@needs_shared
def test_single_buffering_is_checked_as_such():
    module = load_network(onnx_file(next(p for p in DORY_NETWORKS if p.name == DRONET)))
    TilePass(l1_size=8000, double_buffer=False).apply(make_context(), module)
    assert check_tiling(module) == []
    set_target(module, double_buffer=True)
    assert any("but l1_bytes =" in p for p in check_tiling(module))


def test_checker_is_independent_of_the_tiler():
    """The checker must not share the model, solver or planner it checks (nor Z3)."""
    tiler = ["z3", "dory_mlir.tiling.model", "dory_mlir.tiling.solve", "dory_mlir.tiling.memory_plan"]
    code = f"import sys, dory_mlir.tiling.check; print([m for m in {tiler!r} if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


# --------------------------------------------------------------------------- tile grids


def test_spans_are_ragged_at_the_end():
    assert spans(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert spans(3, 5) == [(0, 3)]


def test_l1_tiles_never_cross_an_l2_slice():
    assert nested_spans(10, 6, 4) == [(0, 4), (4, 6), (6, 10)]


def test_border_tiles_read_no_padding_rows():
    axis = Axis(size_in=10, size_out=10, kernel=3, stride=1, pad=1)  # 3x3, pad 1: same size
    assert axis.halo(4) == 6
    assert [axis.rows_read(s) for s in spans(10, 4)] == [5, 6, 3]
    strided = Axis(size_in=50, size_out=25, kernel=3, stride=2, pad=1)
    assert [strided.rows_read(s) for s in spans(25, 3)][:2] == [6, 7]
    assert strided.rows_read((24, 25)) == 3


# --------------------------------------------------------------------------- L1 tampering


@needs_shared
def test_tile_beyond_the_l1_budget_is_reported():
    module = tampered()
    layer = layer_of(module, 3)  # pointwise 32->32 on 25x25, one L2 slice
    set_tiling(layer, l1_tile=(32, 25, 25, 32))
    problems = problems_of(module, 3)
    assert any("tile co=32 ho=25 wo=25 ci=32" in p and "> L1 budget 8000 B" in p for p in problems)
    assert any("but l1_bytes = 7424" in p for p in problems)
    assert any("l1_tiles = [1, 4, 4, 1], but the grid has [1, 1, 1, 1]" in p for p in problems)


@needs_shared
def test_border_tiles_are_checked_with_their_real_extents():
    """Depthwise 3x3/s2 (pad 1) 50x50 -> 25x25, tile 6x3: interior tiles read 13x7 input
    pixels and need 7832 B, border tiles less (12x7: 7360 B, 13x6: 7000 B)."""
    module = tampered()
    set_tiling(layer_of(module, 2), l1_tile=(32, 6, 3, 32), l1_tiles=(1, 5, 9, 1), l1_bytes=7832)
    assert problems_of(module, 2) == []
    set_target(module, l1_budget=7360)
    (problem,) = problems_of(module, 2)
    assert "(input 13x7) needs 7832 B" in problem
    set_target(module, l1_budget=7359)
    problems = problems_of(module, 2)
    assert len(problems) == 2 and any("(input 12x7) needs 7360 B" in p for p in problems)


@needs_shared
def test_wrong_l1_bytes_is_reported():
    module = tampered()
    set_tiling(layer_of(module, 4), l1_bytes=6340)
    (problem,) = problems_of(module, 4)
    assert "needs 6336 B" in problem and "but l1_bytes = 6340" in problem


@needs_shared
def test_tile_larger_than_its_dimension_is_reported():
    module = tampered()
    set_tiling(layer_of(module, 3), l1_tile=(32, 2, 26, 32))
    assert problems_of(module, 3) == ["@network layer 3: wo=26 is outside 1..25"]
    set_tiling(layer_of(module, 3), l1_tile=(32, 2, 25, 32), l2_tile=(33, 25))
    assert problems_of(module, 3) == ["@network layer 3: co2=33 is outside 1..32"]
    with pytest.raises(VerifyException, match="l1_tile must be positive"):  # the attribute's verifier
        set_tiling(layer_of(module, 3), l1_tile=(32, 0, 25, 32), l2_tile=(32, 25))


@needs_shared
def test_l1_tile_larger_than_its_l2_slice_is_reported():
    module = tampered()
    set_tiling(layer_of(module, 0), l1_tile=(8, 4, 100, 1))  # ho2 = 3
    assert "@network layer 0: ho=4 is outside 1..3" in problems_of(module, 0)


@needs_shared
def test_channel_tie_of_a_depthwise_layer_is_reported():
    module = tampered()
    set_tiling(layer_of(module, 2), l1_tile=(32, 6, 3, 16))
    assert any("ci=16 != co=32" in p for p in problems_of(module, 2))


@needs_shared
def test_missing_tiling_is_reported():
    module = tampered()
    del layer_of(module, 5).attributes["tiling"]
    assert problems_of(module, 5) == ["@network layer 5: no 'tiling' attribute (was the tile pass run?)"]


# --------------------------------------------------------------------------- L2 tampering


@needs_shared
def test_overlapping_live_buffers_are_reported():
    module = tampered()
    buffers = buffers_of(module)
    a, b = next(
        (a, b) for i, a in enumerate(buffers) for b in buffers[i + 1 :]
        if a.first.data <= b.last.data and b.first.data <= a.last.data
    )
    change_buffer(module, b.buffer.data, offset=a.offset.data)
    assert any(f"'{a.buffer.data}'" in p and f"'{b.buffer.data}'" in p and "overlap while both are alive" in p
               for p in check_tiling(module))


@needs_shared
def test_buffers_at_the_same_offset_at_different_times_are_fine():
    module = tampered()
    change_buffer(module, "layer3", offset=0)  # layer3 lives 3..4; "input" (at 0) only in layer 0
    change_buffer(module, "layer 3 weights", offset=20000)
    assert check_tiling(module) == []


@needs_shared
def test_dropped_activation_buffer_is_reported():
    module = tampered()
    set_buffers(module, [b for b in buffers_of(module) if b.buffer.data != "layer7"])
    assert any("activation 'layer7' (20000 B, layers 7..12) has no L2 buffer" in p for p in check_tiling(module))


@needs_shared
def test_short_lifetime_and_small_buffer_are_reported():
    module = tampered()
    change_buffer(module, "layer7", last=11)
    change_buffer(module, "layer5", bytes=19996)
    problems = check_tiling(module)
    assert any("'layer7'" in p and "does not live over activation 'layer7''s lifetime 7..12" in p for p in problems)
    assert any("holds 19996 B, but activation 'layer5' needs 20000 B" in p for p in problems)


@needs_shared
def test_buffer_past_the_l2_budget_and_wrong_peak_are_reported():
    module = tampered()
    set_target(module, l2_budget=63999)
    problems = check_tiling(module)
    assert any("lies outside [0, 63999)" in p for p in problems)
    # A peak below the buffers' end is not even a plan: the attribute's verifier refuses it.
    with pytest.raises(VerifyException, match="past the plan's peak 1"):
        set_plan(module, peak=1)


@needs_shared
def test_missing_resident_weights_are_reported():
    module = tampered(DSCNN, "default")
    assert plan_of(module).weights.data == "L2"
    set_buffers(module, [b for b in buffers_of(module) if b.buffer.data != "weights of layer 0"])
    assert any("'weights of layer 0'" in p and "has no L2 buffer" in p for p in check_tiling(module))


@needs_shared
def test_streaming_inconsistencies_are_reported():
    module = tampered()
    set_tiling(layer_of(module, 1), streamed=["layer1"])
    assert any("layer 1: touches ['layer0'], which live in L3, but does not stream them" in p
               for p in check_tiling(module))
    set_tiling(layer_of(module, 3), streamed=["layer0"])
    assert any("streams ['layer0'], which the layer neither reads nor writes" in p for p in problems_of(module, 3))


@needs_shared
def test_streamed_slice_and_weight_buffers_are_checked():
    """Layer 1 (max pool 2x2/s2) reads layer0 in L3 by slices of 4 output rows: two slices
    of 8 input rows x 100 x 32 channels; layer 0 copies its 1056 B of weights from L3."""
    module = tampered()
    change_buffer(module, "layer 1 layer0 (in)", bytes=51196)
    change_buffer(module, "layer 0 weights", bytes=1052)
    problems = check_tiling(module)
    assert any("but 'layer 1 layer0 (in)' needs 51200 B" in p for p in problems)
    assert any("but 'layer 0 weights' needs 1056 B" in p for p in problems)


@needs_shared
def test_weights_placement_must_match_the_plan():
    module = tampered()
    set_tiling(layer_of(module, 3), weights="L2")
    set_tiling(layer_of(module, 1), weights="L3")
    assert problems_of(module, 3) == ["@network layer 3: weights = 'L2', expected 'L3' "
                                      "(l2_plan weights 'L3', co2=32 of 32 channels)"]
    assert any("weights = 'L3', expected 'none'" in p for p in problems_of(module, 1))


# --------------------------------------------------------------------------- a tiler bug the checker found


@needs_shared
def test_streamed_weight_slices_of_layers_with_per_tensor_constants():
    """dscnn layers 6 and 8 (pointwise 64->64, bias, per-channel mul, per-tensor add) with
    l2-size=11500 stream weights in slices of 2 channels: 2·64 + 2·4 + 2·4 + 4 = 148 B a
    slice, 296 B double-buffered (the plan once gave 288 B, spreading the per-tensor
    constant over the channels)."""
    module = load_network(onnx_file(next(p for p in DORY_NETWORKS if p.name == DSCNN)))
    TilePass(l2_size=11500).apply(make_context(), module)
    assert check_tiling(module) == []


def test_untiled_network_is_reported(tmp_path: Path):
    path = tmp_path / "model.onnx"
    onnx.save(example_networks()["tiny_cnn"](0), path)
    assert check_tiling(load_network(path)) == ["no 'tiling.target' attribute on the module (was the tile pass run?)"]
