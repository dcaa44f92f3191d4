"""GEMM constants that vary over the rows (issue 11): offsets per row ([M, 1]) or per element ([M, N]),
RequantShift mul/add per row or per element, as Deeploy's GEMM-Regular, GEMM-Regular_RQPerRow,
GEMM-TransB_RQ and MatMul-Add export them.

The importer folds them into `qnn.requant` constants of shape [H, C] / [H, 1] (H = the rows, see
`tensor_layout.py`); the tiler gives such a layer tiles of one output row and the lowering copies that
row's block of constants per tile, so the kernels see per-channel or per-tensor constants. The seeded
networks of `quantlib_builder.row_constant_networks` (varied M, N, K, batch, transB, alpha/beta, int32 and
requantized outputs) must be bit-exact in the golden model and in the generated C, also under tiny
memories (many one-row tiles, split channels, weights streamed from L3).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from xdsl.dialects.builtin import ModuleOp

from dory_mlir.dialects import qnn
from dory_mlir.examples import quantlib_builder
from dory_mlir.golden.check import check_folder, network_layers
from dory_mlir.golden.npz import input_type_for
from dory_mlir.dialects.tiling import TILING
from dory_mlir.tiling.layers import nbytes
from dory_mlir.passes.tile import TilePass
from dory_mlir.pipeline import load_network, make_context

from conftest import tiered
from test_verify import assert_bit_exact, verify

NETS = sorted(quantlib_builder.row_constant_networks())
SEEDS = (0, 1, 2)
DEEPLOY = Path(__file__).resolve().parents[2] / "shared" / "models" / "deeploy-kernels"
DEEPLOY_ROWS = ("GEMM-Regular", "GEMM-Regular_RQPerRow", "GEMM-TransB_RQ", "MatMul-Add")
TINY_L2 = 1200
TINY = f"tile{{l1-size=160 l2-size={TINY_L2}}},lower-to-pulp"


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("row_constants")
    for name in NETS:
        for seed in SEEDS:
            quantlib_builder.write_example(name, root / f"{name}-{seed}", seed)
    return root


def assert_golden_bit_exact(folder: Path) -> ModuleOp:
    model = folder / "network.onnx"
    module = load_network(model, input_type_for(folder, model))
    report = check_folder(module, folder, model)
    assert report.passed(), "\n" + report.table()
    assert any(r.layer == "output" and r.compared for r in report.rows), "\n" + report.table()
    return module


def row_requants(module) -> list[qnn.RequantOp]:
    """The requants whose constants vary over the rows."""
    return [op for op in module.walk() if isinstance(op, qnn.RequantOp) and op.varies_over_rows()]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NETS)
def test_golden_model_bit_exact(nets: Path, name: str, seed: int):
    module = assert_golden_bit_exact(nets / f"{name}-{seed}")
    requants = row_requants(module)
    assert requants, "the network should have constants that vary over the rows"
    for rq in requants:
        rows = qnn.shape_of(rq.input)[2]
        assert all(qnn.shape_of(v)[0] == rows for v in (rq.mul, rq.add) if len(qnn.shape_of(v)) == 2)


C_CASES = [(name, seed, pipeline) for name in NETS for seed in SEEDS for pipeline in ("default", "tiny")]
C_CI = {("rows_mlp_row_constants", 1, "tiny")}  # + Deeploy's GEMM-Regular_RQPerRow and the L3 stream below


@pytest.mark.parametrize(("name", "seed", "pipeline"), tiered(C_CASES, C_CI, [f"{n}-{s}-{p}" for n, s, p in C_CASES]))
def test_bit_exact_in_c(nets: Path, name: str, seed: int, pipeline: str):
    folder = nets / f"{name}-{seed}"
    done = verify(folder / "network.onnx", folder, None if pipeline == "default" else TINY)
    if pipeline == "tiny" and done.returncode != 0 and whole_row_constant_bytes(folder) > TINY_L2:
        # Constants that vary over the rows are copied into L2 whole (not sliced by rows): larger than
        # the L2 budget, the layer is refused in one line rather than compiled.
        (line,) = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
        assert line.startswith("error: layer 0 ") and "smallest L2 working set needs" in line, done.stderr
        return
    assert_bit_exact(done)


def whole_row_constant_bytes(folder: Path) -> int:
    """The most bytes of [H, C] / [H, 1] requant constants one layer reads."""
    module = load_network(folder / "network.onnx", None)
    return max(sum(nbytes(v) for v in (rq.mul, rq.add) if len(qnn.shape_of(v)) == 2)
               for rq in row_requants(module))


def test_tiles_are_one_row(nets: Path):
    """A layer with row constants is tiled one output row at a time (the tiling checker agrees)."""
    module = load_network(nets / "rows_mlp_row_constants-0" / "network.onnx", None)
    TilePass(l1_size=160, l2_size=1200).apply(make_context(), module)
    layers = network_layers(module)
    assert len(layers) == 2
    for layer in layers.values():
        tiling = layer.attributes[TILING]
        co, ho, wo, ci = tiling.tile  # type: ignore[attr-defined]
        h_out = qnn.shape_of(layer.output)[2]
        assert ho == 1 and tiling.counts[1] == h_out  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """3 rows × 64 features → 48 outputs: the weights (3 kB) outweigh the row constants, so a small
    L2 streams them from L3 in slices of output channels, each slice with all rows' constants."""
    b = quantlib_builder.QuantLibNetBuilder(3, (3, 64), signed_input=True)
    b.rows_gemm("fc", 48, offset="element", requant="row")
    return b.write(tmp_path_factory.mktemp("wide"), "wide")


def test_weights_streamed_from_l3_with_row_constants(wide: Path):
    module = load_network(wide / "network.onnx", None)
    TilePass(l1_size=600, l2_size=2000).apply(make_context(), module)
    (layer,) = network_layers(module).values()
    assert layer.attributes[TILING].weights.data == "L3-stream"  # type: ignore[attr-defined]
    assert_bit_exact(verify(wide / "network.onnx", wide, "tile{l1-size=600 l2-size=2000},lower-to-pulp"))


@pytest.mark.parametrize("folder", DEEPLOY_ROWS)
def test_deeploy_gemm_row_constants_golden(folder: str):
    path = DEEPLOY / f"Kernels-Integer-{folder}"
    if not path.is_dir():
        pytest.skip(f"{path} is not there")
    assert_golden_bit_exact(path)


@pytest.mark.parametrize("folder", tiered(list(DEEPLOY_ROWS), {"GEMM-Regular_RQPerRow"}))
def test_deeploy_gemm_row_constants_in_c(folder: str):
    path = DEEPLOY / f"Kernels-Integer-{folder}"
    if not path.is_dir():
        pytest.skip(f"{path} is not there")
    assert_bit_exact(verify(path / "network.onnx", path, None))
