"""The HTML report (`dory-opt --report`, `dory-verify --report`): its content from the tile report, and
what a real browser shows of it (headless Chromium: one table row per layer, charts that are drawn)."""

import html.parser
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from conftest import DORY_NETWORKS, EXAMPLE_NAMES, needs_shared, onnx_file
from dory_mlir.backend.html_report import render
from dory_mlir.cli import opt as dory_opt, verify as dory_verify

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (Debian package chromium, make test installs it)")


class PageParser(html.parser.HTMLParser):
    """Counts what the page is made of: layer rows, charts and their drawn shapes, scripts, fetched URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_rows: list[str] = []
        self.charts: list[str] = []
        self.shapes_per_chart: list[int] = []
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and attributes.get("class") == "layer":
            self.layer_rows.append(attributes["data-layer"])
        if tag == "svg" and attributes.get("class") == "chart":
            self.charts.append(attributes.get("aria-label", ""))
            self.shapes_per_chart.append(0)
        if tag == "rect" and self.shapes_per_chart and attributes.get("class") in ("buffer", "bar"):
            self.shapes_per_chart[-1] += 1
        if tag == "script":
            self.scripts += 1
        for name in ("src", "href"):
            if attributes.get(name):
                self.external.append(attributes[name])


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    return parser


def compile_with_report(model: Path, tmp_path: Path, *options: str) -> tuple[dict, str]:
    json_path, html_path = tmp_path / "tiles.json", tmp_path / "report.html"
    assert dory_opt.main([str(model), "-p", f"tile{{{' '.join(options)}}}" if options else "tile",
                          "--tile-report", str(json_path), "-o", str(tmp_path / "out.mlir")]) == 0
    assert dory_opt.main([str(model), "-p", f"tile{{{' '.join(options)}}}" if options else "tile",
                          "--report", str(html_path), "-o", str(tmp_path / "out2.mlir")]) == 0
    return json.loads(json_path.read_text()), html_path.read_text()


@pytest.mark.parametrize("name", EXAMPLE_NAMES[:3])
def test_report_has_a_row_per_layer_and_drawn_charts(name, examples_dir, tmp_path):
    report, page = compile_with_report(examples_dir / name / "model.onnx", tmp_path, "l1-size=8000")
    parsed = parse(page)
    assert parsed.layer_rows == [str(row["layer"]) for row in report["layers"]]
    assert parsed.charts == ["L2 plan over the network's life", "L1 use per layer", "DMA traffic per layer",
                             "Estimated cycles per layer"]
    assert all(count > 0 for count in parsed.shapes_per_chart)
    assert parsed.scripts == 0 and parsed.external == []  # self-contained: nothing to fetch
    assert report["l2_plan"]["buffers"] and report["l1_budget"] == 8000


def test_report_is_the_tile_reports_data():
    """Rendering is a pure function of the report: the L2 buffers and the layer rows drawn are those given."""
    row = {"layer": 0, "name": "Conv_0", "kind": "conv", "input_hwc": [8, 8, 3], "output_hwc": [8, 8, 4],
           "l2_l1_tile": {"co": 4, "ho": 4, "wo": 8, "ci": 3}, "l3_l2_tile": {"co": 4, "ho": 8},
           "tiles": {"co": 1, "ho": 2, "wo": 1, "ci": 1}, "loop_order": "weight-stationary", "stationary_slots": 1,
           "l1_bytes": 500, "l1_buffers": {"input": 300, "output": 200},
           "weights_in": "L2", "input_bytes": 192, "output_bytes": 256, "constant_bytes": 124,
           "dma_l2_l1_bytes": 700, "dma_l3_l2_bytes": 0, "macs": 6912, "est_cycles": 3456,
           "est_dma_l2_l1_cycles": 1000, "est_compute_cycles": 3000, "est_dma_l3_l2_cycles": 0,
           "est_macs_per_cycle": 2.0}
    plan = {"l2_budget": 1000, "l2_peak": 600, "weights": "L2",
            "buffers": [{"name": "input", "offset": 0, "bytes": 192, "first": 0, "last": 0},
                        {"name": "layer0", "offset": 192, "bytes": 256, "first": 0, "last": 1}]}
    page = render({"target": "gap8", "l1_budget": 1000, "l2_plan": plan, "layers": [row]}, "tiny.onnx")
    parsed = parse(page)
    assert parsed.layer_rows == ["0"] and parsed.shapes_per_chart[0] == 2
    assert "1.22" in page  # 700 B moved / 572 B lower bound
    assert "2×1 spatial tiles of 4×8 pixels" in page
    assert "3,456 (2.00 MAC/cycle)" in page
    assert "weight-stationary (1 slot)" in page


def test_report_needs_an_html_name_and_the_tile_pass(tmp_path, capsys):
    model = tmp_path / "x.mlir"
    model.write_text("builtin.module {}\n")
    assert dory_opt.main([str(model), "--tile", "--report", str(tmp_path / "r.json")]) == 1
    assert dory_opt.main([str(model), "--report", str(tmp_path / "r.html")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(line.startswith("error:") for line in errors)
    assert "FILE.html" in errors[0] and "needs the tile pass" in errors[1]
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------ in a real browser


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGBA rows of an 8-bit RGBA/RGB PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0
    channels = 4 if colour == 6 else 3
    raw, stride, rows, previous = zlib.decompress(b"".join(chunks)), width * channels, [], bytes(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):  # undo the PNG row filter
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            line[i] = (line[i] + predictor) & 0xFF
        previous = bytes(line)
        rows.append(bytes(line) if channels == 4 else b"".join(bytes(line[i : i + 3]) + b"\xff" for i in range(0, stride, 3)))
    return width, height, rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def coloured_share(path: Path) -> float:
    """The share of pixels in a saturated colour (the chart's bars and buffers, not text or axes)."""
    width, height, rows = png_pixels(path)
    coloured = sum(1 for row in rows for i in range(0, len(row), 4)
                   if max(row[i : i + 3]) - min(row[i : i + 3]) > 60)
    return coloured / (width * height)


def chromium(*args: str) -> str:
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@needs_chromium
@needs_shared
def test_browser_shows_every_layer_and_non_blank_charts(tmp_path):
    folder = next(p for p in DORY_NETWORKS if "PenguiNet" in p.name)
    page = tmp_path / "report.html"
    status = dory_verify.main([str(onnx_file(folder)), "--golden", str(folder), "--report", str(page)])
    assert status == 0
    dom = chromium("--dump-dom", page.as_uri())  # the page as the browser built it
    parsed = parse(dom)
    assert len(parsed.layer_rows) == 9 and dom.count(">PASS<") == 9
    # Each chart on its own page, screenshot at its size: drawn means coloured pixels.
    for k, svg in enumerate(dom.split('<svg class="chart"')[1:]):
        chart = tmp_path / f"chart{k}.html"
        chart.write_text('<html><body style="margin:0"><svg class="chart"' + svg.split("</svg>")[0] + "</svg></body></html>")
        shot = tmp_path / f"chart{k}.png"
        chromium(f"--screenshot={shot}", "--window-size=900,260", chart.as_uri())
        assert coloured_share(shot) > 0.02, f"chart {k} looks blank"
    blank = tmp_path / "blank.html"
    blank.write_text('<html><body style="margin:0"><svg class="chart" width="900" height="260"></svg></body></html>')
    chromium(f"--screenshot={tmp_path / 'blank.png'}", "--window-size=900,260", blank.as_uri())
    assert coloured_share(tmp_path / "blank.png") == 0  # the measure sees nothing where nothing is drawn


@needs_shared
@pytest.mark.parametrize("folder", DORY_NETWORKS, ids=[p.name for p in DORY_NETWORKS])
def test_every_shared_network_has_a_report(folder, tmp_path):
    page = tmp_path / "report.html"
    assert dory_opt.main([str(onnx_file(folder)), "--tile", "--report", str(page), "-o", str(tmp_path / "t.mlir")]) == 0
    parsed = parse(page.read_text())
    layers = (tmp_path / "t.mlir").read_text().count("qnn.layer")
    assert len(parsed.layer_rows) == layers > 0
    assert all(count > 0 for count in parsed.shapes_per_chart)
