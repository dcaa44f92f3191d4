"""Comparing the golden model with a folder of golden files, layer by layer.

DORY txt folders. A network with **one input**: one test input (`input.txt`, goldens
`out_layerN.txt`, `output.txt`) or several test sets (`input_K.txt`, `out_K_layerN.txt`,
`output_K.txt`, K = test set). A network with **N > 1 inputs**: `input_K.txt` is network
input K (K = 0 .. N-1) of the test whose goldens are `out_layerN.txt`, `output.txt`; several
test sets are `input_S_K.txt` (set S, input K) with `out_S_layerN.txt`, `output_S.txt`. The
network's input count decides which reading applies, so a name never means two things.
DORY files are HWC, but some exporters write CHW under the same header (dscnn_test): each
file is compared in every layout its shape allows and the matching one is reported, so a
real mismatch still shows in every layout. The inputs' layout is taken from layer 0 when it
is ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.frontend.importer import DROPPED_TAIL
from dory_mlir.golden.files import GoldenTensor, from_hwc, read_dory_txt, to_layout
from dory_mlir.golden.interpreter import network_function, run_network
from dory_mlir.golden.npz import as_network_shape, is_npz_folder, load_npz_goldens
from dory_mlir.ir_utils import loc_name


@dataclass(frozen=True)
class TestSet:
    """One golden input (one file per network input) with the layer outputs and network output recorded for it."""

    label: str
    input_paths: tuple[Path, ...]
    layer_files: dict[int, Path]
    output_path: Path | None

    @property
    def input_path(self) -> Path:
        return self.input_paths[0]


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

    def summary(self) -> str:
        """The verdict line under the table."""
        compared = sum(r.compared for r in self.rows)
        mismatched = sum(1 for r in self.rows if not r.skipped and (r.mismatches or r.note))
        verdict = "PASS: bit-exact" if self.passed() else "FAIL"
        return f"{verdict}: {len(self.rows)} tensors, {compared} values compared, {mismatched} tensors differ"

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


def find_test_sets(folder: Path, input_count: int = 1) -> list[TestSet]:
    """The test sets of a DORY txt folder for a network with `input_count` inputs (module docstring)."""
    if input_count > 1:
        return _multi_input_test_sets(folder, input_count)
    sets = []
    numbered = sorted(
        (int(m.group(1)), p) for p in folder.glob("input_*.txt") if (m := re.fullmatch(r"input_(\d+)\.txt", p.name))
    )
    for k, path in numbered:
        layers = _layer_files(folder, rf"out_{k}_layer(\d+)\.txt")
        output = folder / f"output_{k}.txt"
        sets.append(TestSet(str(k), (path,), layers, output if output.exists() else None))
    plain_layers = _layer_files(folder, r"out_layer(\d+)\.txt")
    plain_output = folder / "output.txt"
    if (folder / "input.txt").exists() and (plain_layers or plain_output.exists()):
        sets.append(TestSet("-", (folder / "input.txt",), plain_layers, plain_output if plain_output.exists() else None))
    if not sets:
        raise DoryError("no golden input (input.txt or input_K.txt with out_layerN.txt files) found", str(folder))
    return sets


def _multi_input_test_sets(folder: Path, count: int) -> list[TestSet]:
    expected = ", ".join(f"input_{k}.txt" for k in range(count))
    if (folder / "input.txt").exists():
        raise DoryError(f"input.txt is ambiguous for a network with {count} inputs: name them {expected}", str(folder))
    by_set: dict[int, dict[int, Path]] = {}
    for path in folder.glob("input_*_*.txt"):
        if match := re.fullmatch(r"input_(\d+)_(\d+)\.txt", path.name):
            by_set.setdefault(int(match.group(1)), {})[int(match.group(2))] = path
    plain = {int(m.group(1)): p for p in folder.glob("input_*.txt") if (m := re.fullmatch(r"input_(\d+)\.txt", p.name))}
    sets = []
    for label, files, layer_pattern, output in (
        *((str(s), by_set[s], rf"out_{s}_layer(\d+)\.txt", folder / f"output_{s}.txt") for s in sorted(by_set)),
        *((("-", plain, r"out_layer(\d+)\.txt", folder / "output.txt"),) if plain else ()),
    ):
        if sorted(files) != list(range(count)):
            prefix = "input_" if label == "-" else f"input_{label}_"
            raise DoryError(f"the network has {count} inputs ({prefix}0.txt .. {prefix}{count - 1}.txt), found "
                            f"{', '.join(p.name for _, p in sorted(files.items()))}", str(folder))
        sets.append(TestSet(label, tuple(files[k] for k in range(count)), _layer_files(folder, layer_pattern),
                            output if output.exists() else None))
    if not sets:
        raise DoryError(f"no golden input for a network with {count} inputs ({expected}, or input_S_K.txt per "
                        "test set S) found", str(folder))
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


def read_input(test: TestSet, shape: tuple[int, ...], layout: str, k: int = 0) -> np.ndarray:
    """Network input `k` of a test set, NCHW, from its file in `layout` (HWC or CHW)."""
    path = test.input_paths[k]
    golden = read_dory_txt(path)
    expected = int(np.prod(shape))
    if golden.values.size != expected:
        raise DoryError(
            f"holds {golden.values.size} values, the network input needs {expected} ({'x'.join(map(str, shape))})",
            str(path),
        )
    if layout == "CHW" or len(shape) != 4:
        return golden.values.reshape(shape)
    return from_hwc(golden.values, shape)


def read_inputs(test: TestSet, shapes: list[tuple[int, ...]], layout: str) -> list[np.ndarray]:
    return [read_input(test, shape, layout, k) for k, shape in enumerate(shapes)]


def input_shapes(module: ModuleOp) -> list[tuple[int, ...]]:
    return [qnn.shape_of(t) for t in network_function(module).function_type.inputs.data]


def network_layers(module: ModuleOp) -> dict[int, qnn.LayerOp]:
    function = network_function(module)
    return {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}


# Words of DORY golden headers (PyTorch module names: `resBlock3.add`, `pool`, `fc`) that name a
# layer's kind; any other name (`relu2`, `act0`, a conv's activation) says nothing about it.
_HEADER_KINDS = {
    "add": {"add"}, "adder": {"add"}, "reluadd": {"add"},
    "pool": {"maxpool", "avgpool"}, "maxpool": {"maxpool"}, "avgpool": {"avgpool"},
    "fc": {"linear"}, "linear": {"linear"}, "gemm": {"linear"}, "matmul": {"linear"},
}


def header_kinds(name: str) -> set[str] | None:
    """The layer kinds a golden header's name allows, or None when it does not tell."""
    words = [w for w in re.split(r"[^a-z]+", name.lower()) if w]
    for word in reversed(words):  # the innermost module name decides (`resBlock3.add`)
        stem = word.rstrip("0123456789")
        if stem in _HEADER_KINDS:
            return _HEADER_KINDS[stem]
        for suffix in ("add", "pool"):  # reluadd, upsamplepool
            if stem.endswith(suffix):
                return _HEADER_KINDS[suffix]
    return None


def numbering_note(golden: GoldenTensor, layer: qnn.LayerOp) -> str:
    """Says so when the golden file of layer N names another kind of layer than ours: the golden
    files then number the layers differently (e.g. a separate requantization stage)."""
    kinds = header_kinds(golden.name)
    if kinds is None or layer.kind() in kinds:
        return ""
    return (f"numbering differs? the golden file names '{golden.name}' ({'/'.join(sorted(kinds))}), "
            f"our layer is a {layer.kind()}")


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
    in_shapes = input_shapes(module)
    report = Report()
    for test in find_test_sets(folder, len(in_shapes)):
        outputs, layer_outputs = _run_best_input_layout(module, test, in_shapes)
        for index, path in test.layer_files.items():
            golden = read_dory_txt(path)
            if index not in layers:
                report.rows.append(Row(test.label, str(index), "-", "-", "-", 0, golden.values.size, "-", f"network has no layer {index}"))
                continue
            layer = layers[index]
            tensor = layer_outputs[index]
            mismatches, layout, note = compare(tensor, golden)
            if mismatches:
                note = "; ".join(filter(None, [note, numbering_note(golden, layer)]))
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
    goldens = load_npz_goldens(folder, module, model_path)
    report = Report()
    for sample in goldens.samples:
        outputs, layer_outputs = run_network(module, sample.inputs)
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
        note = f"{name} not compared: {why}" if name.startswith("layer ") else f"skipped '{name}': {why}"
        report.rows.append(Row("-", "-", "-", "-", "-", 0, 0, "-", note, True))
    return report


def npz_row(label: str, layer: str, op: str, node: str, name: str, tensor: np.ndarray, golden: np.ndarray) -> Row:
    """An npz tensor is NCHW like the model's (N×C×W for 1-D): compared element by element, shape included."""
    reshaped = as_network_shape(golden, tensor.shape)
    if reshaped is None:
        return Row(label, layer, op, node, hwc_shape(tensor.shape), 0, golden.size, "NCHW",
                   f"'{name}': shape {list(golden.shape)}, the network's {list(tensor.shape)}")
    mismatches = int(np.count_nonzero(tensor != reshaped))
    return Row(label, layer, op, node, hwc_shape(tensor.shape), golden.size, mismatches, f"NCHW '{name}'")


def _run_best_input_layout(module: ModuleOp, test: TestSet, in_shapes: list[tuple[int, ...]]):
    """DORY inputs are HWC; multi-channel inputs whose layer 0 only matches as CHW are read as CHW."""
    ambiguous = any(len(s) == 4 and s[1] > 1 and s[2] * s[3] > 1 for s in in_shapes)
    candidates = ["HWC", "CHW"] if ambiguous else ["HWC"]
    first_golden = read_dory_txt(test.layer_files[min(test.layer_files)]) if test.layer_files else None
    best = None
    for layout in candidates:
        outputs, layer_outputs = run_network(module, read_inputs(test, in_shapes, layout))
        if first_golden is None or min(test.layer_files) not in layer_outputs:
            return outputs, layer_outputs
        mismatches, _, _ = compare(layer_outputs[min(test.layer_files)], first_golden)
        if best is None or mismatches < best[0]:
            best = (mismatches, outputs, layer_outputs)
        if mismatches == 0:
            break
    assert best is not None
    return best[1], best[2]
