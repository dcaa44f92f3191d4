"""The C counts the DMA bytes it moves (the host runtime, per layer and direction) and they equal the
tile report's `dma_l2_l1_bytes` (L2→L1 and its `output` part, L1→L2) and `dma_l3_l2_bytes` (L3↔L2)."""

from pathlib import Path

import pytest

from conftest import DORY_NETWORKS, EXAMPLE_NAMES, needs_shared, onnx_file, tiered
from dory_mlir.cli import DEFAULT_PIPELINE
from dory_mlir.verify import DmaAgreement, dma_agreement, measure_dma_agreement, parse_dma_counts

PIPELINES = {
    "default": DEFAULT_PIPELINE,
    "l1-8000": "tile{l1-size=8000},lower-to-pulp",
    # activations streamed by rows and weights in channel slices from L3
    "l3-streaming": "tile{l1-size=8000 l2-size=64000},lower-to-pulp",
    # the examples' L2 at 64 kB holds everything: theirs streams at 3 kB (too small for the shared networks)
    "tiny-l2": "tile{l1-size=2000 l2-size=3000},lower-to-pulp",
}
SHARED_PIPELINES = ("default", "l1-8000", "l3-streaming")

def assert_agree(rows: list[DmaAgreement]) -> None:
    differing = {r.layer: (r.counted, r.reported) for r in rows if not r.equal}
    assert not differing, f"counted vs report (L2→L1, L1→L2, L3↔L2) where they differ: {differing}"


def test_parse_dma_counts_and_agreement():
    stdout = "layer 0 checksum 5 bytes 2\ndma layer -1 l2_l1 0 l1_l2 0 l3_l2 64 l2_l3 0\n" \
             "dma layer 0 l2_l1 30 l1_l2 8 l3_l2 4 l2_l3 8\ndma layer 1 l2_l1 16 l1_l2 2 l3_l2 0 l2_l3 0\n"
    counts = parse_dma_counts(stdout)
    assert counts[0] == {"l2_l1": 30, "l1_l2": 8, "l3_l2": 4, "l2_l3": 8}
    assert counts[-1]["l3_l2"] == 64
    report = {"layers": [
        {"layer": 0, "dma_l2_l1_bytes": 38, "dma_l2_l1": {"input": 30, "output": 8}, "dma_l3_l2_bytes": 12},
        {"layer": 1, "dma_l2_l1_bytes": 20, "dma_l2_l1": {"input": 18, "output": 2}, "dma_l3_l2_bytes": 0},
    ]}
    rows = dma_agreement(report, counts)
    assert [r.equal for r in rows] == [True, False]
    assert rows[1].counted == (16, 2, 0) and rows[1].reported == (18, 2, 0)


EXAMPLE_CASES = [(name, pipeline) for name in EXAMPLE_NAMES for pipeline in ("default", "l1-8000", "tiny-l2")]
EXAMPLE_CI = {("residual", "tiny-l2")}


@pytest.mark.parametrize(("name", "pipeline"), tiered(EXAMPLE_CASES, EXAMPLE_CI, [f"{n}-{p}" for n, p in EXAMPLE_CASES]))
def test_example_network_counts_equal_report(examples_dir: Path, tmp_path: Path, name: str, pipeline: str):
    assert_agree(measure_dma_agreement(examples_dir / name / "model.onnx", tmp_path, PIPELINES[pipeline]))


SHARED_CASES = [(folder, pipeline) for folder in DORY_NETWORKS for pipeline in SHARED_PIPELINES]
SHARED_CI = {(f, p) for f in DORY_NETWORKS for p, name in (("l3-streaming", "quantlab_Dronet"),
                                                            ("l1-8000", "nemo_8-bits-2D_dscnn_test")) if f.name == name}


@needs_shared
@pytest.mark.parametrize(("folder", "pipeline"), tiered(SHARED_CASES, SHARED_CI, [f"{f.name}-{p}" for f, p in SHARED_CASES]))
def test_reference_network_counts_equal_report(folder: Path, tmp_path: Path, pipeline: str):
    assert_agree(measure_dma_agreement(onnx_file(folder), tmp_path, PIPELINES[pipeline]))
