"""Comparing the golden model with a folder of golden files, layer by layer.

A folder holds one test input (`input.txt`, goldens `out_layerN.txt`, `output.txt`) or
several (`input_K.txt`, `out_K_layerN.txt`, `output_K.txt`). DORY files are HWC, but some
exporters write CHW under the same header (dscnn_test): each file is compared in every
layout its shape allows and the matching one is reported, so a real mismatch still
shows in every layout. The input's layout is taken from layer 0 when it is ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.frontend.onnx_import import DROPPED_TAIL
from dory_mlir.golden.files import GoldenTensor, from_hwc, read_dory_txt, to_layout
from dory_mlir.golden.interpreter import network_function, run_network
from dory_mlir.golden.npz import is_npz_folder, load_npz_goldens
from dory_mlir.ir_utils import loc_name


@dataclass(frozen=True)
class TestSet:
    """One golden input with the layer outputs and network output recorded for it."""

    label: str
    input_path: Path
    layer_files: dict[int, Path]
    output_path: Path | None


@dataclass
class Row:
    test: str
    layer: str
    op: str
    node: str
    shape: str
    compared: int
    mismatches: int
    layout: str
    note: str = ""
    skipped: bool = False


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def passed(self) -> bool:
        return bool(self.rows) and all(r.skipped or (r.mismatches == 0 and not r.note) for r in self.rows) and any(
            r.compared for r in self.rows
        )

    def table(self) -> str:
        header = ("set", "layer", "op", "node", "shape (HWC)", "compared", "mismatches", "layout")
        lines = [header] + [
            (r.test, r.layer, r.op, r.node, r.shape, str(r.compared), str(r.mismatches), r.layout + (f"  {r.note}" if r.note else ""))
            for r in self.rows
        ]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
            for line in lines
        )


def find_test_sets(folder: Path) -> list[TestSet]:
    sets = []
    numbered = sorted(
        (int(m.group(1)), p) for p in folder.glob("input_*.txt") if (m := re.fullmatch(r"input_(\d+)\.txt", p.name))
    )
    for k, path in numbered:
        layers = _layer_files(folder, rf"out_{k}_layer(\d+)\.txt")
        output = folder / f"output_{k}.txt"
        sets.append(TestSet(str(k), path, layers, output if output.exists() else None))
    plain_layers = _layer_files(folder, r"out_layer(\d+)\.txt")
    plain_output = folder / "output.txt"
    if (folder / "input.txt").exists() and (plain_layers or plain_output.exists()):
        sets.append(TestSet("-", folder / "input.txt", plain_layers, plain_output if plain_output.exists() else None))
    if not sets:
        raise DoryError("no golden input (input.txt or input_K.txt with out_layerN.txt files) found", str(folder))
    return sets


def _layer_files(folder: Path, pattern: str) -> dict[int, Path]:
    found = {}
    for path in folder.glob("out_*.txt"):
        if match := re.fullmatch(pattern, path.name):
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def layouts_for(tensor: np.ndarray) -> list[str]:
    if tensor.ndim == 4 and tensor.shape[1] > 1 and tensor.shape[2] * tensor.shape[3] > 1:
        return ["HWC", "CHW"]
    return ["HWC"] if tensor.ndim == 4 else ["flat"]


def compare(tensor: np.ndarray, golden: GoldenTensor) -> tuple[int, str, str]:
    """(mismatches, layout, note) of the best-matching layout."""
    if tensor.size != golden.values.size:
        return golden.values.size, "-", f"size differs: golden {golden.values.size}, model {tensor.size}"
    scored = [
        (int(np.count_nonzero(to_layout(tensor, layout) != golden.values)), rank, layout)
        for rank, layout in enumerate(layouts_for(tensor))
    ]
    mismatches, _, layout = min(scored)  # ties go to the first layout, DORY's HWC
    return mismatches, layout, ""


def hwc_shape(tensor_shape: tuple[int, ...]) -> str:
    if len(tensor_shape) == 4:
        _, c, h, w = tensor_shape
        return f"{h}x{w}x{c}"
    return "x".join(str(s) for s in tensor_shape[1:])


def read_input(test: TestSet, shape: tuple[int, ...], layout: str) -> np.ndarray:
    golden = read_dory_txt(test.input_path)
    expected = int(np.prod(shape))
    if golden.values.size != expected:
        raise DoryError(
            f"holds {golden.values.size} values, the network input needs {expected} ({'x'.join(map(str, shape))})",
            str(test.input_path),
        )
    if layout == "CHW":
        return golden.values.reshape(shape)
    return from_hwc(golden.values, shape)


def network_layers(module: ModuleOp) -> dict[int, qnn.LayerOp]:
    function = network_function(module)
    return {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}


def check_folder(module: ModuleOp, folder: Path, model_path: Path | None = None) -> Report:
    """Runs every test input of `folder` through `module` (fused) and compares each golden file.

    `folder` holds DORY txt files or the npz form (`inputs.npz`, ...), whose intermediate
    tensors are matched to layers through the ONNX graph at `model_path`.
    """
    if not folder.is_dir():
        raise DoryError("not a folder of golden files", str(folder))
    if is_npz_folder(folder):
        return check_npz_folder(module, folder, model_path)
    function = network_function(module)
    layers = network_layers(module)
    in_shape = qnn.shape_of(function.function_type.inputs.data[0])
    report = Report()
    for test in find_test_sets(folder):
        outputs, layer_outputs = _run_best_input_layout(module, test, in_shape)
        for index, path in test.layer_files.items():
            golden = read_dory_txt(path)
            if index not in layers:
                report.rows.append(Row(test.label, str(index), "-", "-", "-", 0, golden.values.size, "-", f"network has no layer {index}"))
                continue
            layer = layers[index]
            tensor = layer_outputs[index]
            mismatches, layout, note = compare(tensor, golden)
            report.rows.append(
                Row(test.label, str(index), layer.kind(), loc_name(layer) or "-", hwc_shape(tensor.shape), golden.values.size, mismatches, layout, note)
            )
        if test.output_path is not None and DROPPED_TAIL in function.attributes:
            tail = ", ".join(a.data for a in function.attributes[DROPPED_TAIL].data)  # type: ignore[attr-defined]
            report.rows.append(Row(test.label, "output", "-", "-", "-", 0, 0, "-",
                                   f"skipped: taken after the float tail ({tail}) that is not deployed", True))
        elif test.output_path is not None:
            golden = read_dory_txt(test.output_path)
            mismatches, layout, note = compare(outputs[0], golden)
            report.rows.append(
                Row(test.label, "output", "-", "-", hwc_shape(outputs[0].shape), golden.values.size, mismatches, layout, note)
            )
    return report


def check_npz_folder(module: ModuleOp, folder: Path, model_path: Path | None) -> Report:
    layers = network_layers(module)
    goldens = load_npz_goldens(folder, layers, model_path)
    report = Report()
    for sample in goldens.samples:
        outputs, layer_outputs = run_network(module, sample.input)
        for index, (name, golden) in sample.layers.items():
            layer = layers[index]
            report.rows.append(npz_row(sample.label, str(index), layer.kind(), loc_name(layer) or "-", name,
                                       layer_outputs[index], golden))
        for position, (name, golden) in enumerate(sample.outputs):
            if position >= len(outputs):
                report.rows.append(Row(sample.label, "output", "-", "-", "-", 0, golden.size, "-",
                                       f"'{name}': the network has {len(outputs)} outputs"))
                continue
            report.rows.append(npz_row(sample.label, "output", "-", "-", name, outputs[position], golden))
    for name, why in goldens.skipped:
        report.rows.append(Row("-", "-", "-", "-", "-", 0, 0, "-", f"skipped '{name}': {why}", True))
    return report


def npz_row(label: str, layer: str, op: str, node: str, name: str, tensor: np.ndarray, golden: np.ndarray) -> Row:
    """An npz tensor is NCHW like the model's: compared element by element, shape included."""
    if tensor.shape != golden.shape:
        return Row(label, layer, op, node, hwc_shape(tensor.shape), 0, golden.size, "NCHW",
                   f"'{name}': shape {list(golden.shape)}, the network's {list(tensor.shape)}")
    mismatches = int(np.count_nonzero(tensor != golden))
    return Row(label, layer, op, node, hwc_shape(tensor.shape), golden.size, mismatches, f"NCHW '{name}'")


def _run_best_input_layout(module: ModuleOp, test: TestSet, in_shape: tuple[int, ...]):
    """DORY inputs are HWC; a multi-channel input whose layer 0 only matches as CHW is read as CHW."""
    candidates = ["HWC", "CHW"] if in_shape[1] > 1 and in_shape[2] * in_shape[3] > 1 else ["HWC"]
    first_golden = read_dory_txt(test.layer_files[min(test.layer_files)]) if test.layer_files else None
    best = None
    for layout in candidates:
        outputs, layer_outputs = run_network(module, read_input(test, in_shape, layout))
        if first_golden is None or min(test.layer_files) not in layer_outputs:
            return outputs, layer_outputs
        mismatches, _, _ = compare(layer_outputs[min(test.layer_files)], first_golden)
        if best is None or mismatches < best[0]:
            best = (mismatches, outputs, layer_outputs)
        if mismatches == 0:
            break
    assert best is not None
    return best[1], best[2]
