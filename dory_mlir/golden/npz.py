"""Golden data in the npz form of QuantLib/Deeploy exports: `inputs.npz`, `outputs.npz`, `activations.npz`.

Every array is int64, NCHW (or N×K), with the samples along the batch axis. `activations.npz`
holds intermediate tensors under the names of the PyTorch modules that produced them
(`model_0__ql_replaced__integerize_pact_conv2d_pass_0`), not the ONNX tensor names, in
the order the network computes them. They are matched to the ONNX graph by name where
the names agree, else by position: the k-th array is the output of the k-th node of
the graph that computes values (nodes that only reshape are skipped). A mismatch in
count is an error, never a guess. A golden tensor is compared when it is the output of a
fused layer (the layer's last node produced it); the others (e.g. conv accumulators that
a layer's requantization consumes internally) are listed as skipped.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.ir_utils import layer_output_node

# Nodes that move data without computing it: exporters do not record their outputs.
SHAPE_ONLY_OPS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Constant"}
NPZ_FILES = ("inputs.npz", "outputs.npz", "activations.npz")


@dataclass(frozen=True)
class GoldenSample:
    """One sample: its input and, per fused layer index, the expected output (all NCHW, batch 1)."""

    label: str
    input: np.ndarray
    layers: dict[int, tuple[str, np.ndarray]]  # layer index -> (npz name, tensor)
    outputs: list[tuple[str, np.ndarray]]


@dataclass
class NpzGoldens:
    samples: list[GoldenSample] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (npz name, why it is not compared)


def is_npz_folder(folder: Path) -> bool:
    return (folder / "inputs.npz").is_file()


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz file in their stored order."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise DoryError("no such file", str(path)) from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DoryError(f"not a readable npz file ({e})", str(path)) from None
    for name, array in arrays.items():
        if array.dtype.kind not in "iuf" or (array.dtype.kind == "f" and not np.all(array == np.round(array))):
            raise DoryError(f"array '{name}' does not hold integers", str(path))
    return {name: array.astype(np.int64) for name, array in arrays.items()}


def computing_outputs(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(node name, first output) of every node that computes values, in graph order."""
    return [
        (node.name or f"{node.op_type}_{i}", node.output[0])
        for i, node in enumerate(model.graph.node)
        if node.op_type not in SHAPE_ONLY_OPS and node.output
    ]


def match_activations(model: onnx.ModelProto, names: list[str], where: str) -> dict[str, str]:
    """npz activation name -> ONNX node name whose first output it records."""
    produced = computing_outputs(model)
    by_tensor = {tensor: node for node, tensor in produced}
    by_node = {node: node for node, _ in produced}
    if all(n in by_tensor or n in by_node for n in names):
        return {n: by_tensor.get(n, by_node.get(n, "")) for n in names}
    if len(names) != len(produced):
        raise DoryError(
            f"{len(names)} activations do not match the {len(produced)} computing nodes of the graph by name "
            "or by position", where,
        )
    return {name: node for name, (node, _) in zip(names, produced, strict=True)}


def split_samples(array: np.ndarray, count: int, name: str, where: str) -> list[np.ndarray]:
    if array.ndim == 0 or array.shape[0] != count:
        raise DoryError(f"'{name}' has {array.shape[0] if array.ndim else 0} samples, the inputs {count}", where)
    return [array[i : i + 1] for i in range(count)]


def load_npz_goldens(folder: Path, layers: dict[int, qnn.LayerOp], model_path: Path | None) -> NpzGoldens:
    """Reads the folder and assigns each recorded tensor to the fused layer that computes it."""
    inputs = read_npz(folder / "inputs.npz")
    if len(inputs) != 1:
        raise DoryError(f"expected one network input, found {len(inputs)} arrays", str(folder / "inputs.npz"))
    (input_name, input_array), = inputs.items()
    count = input_array.shape[0] if input_array.ndim else 0
    if count < 1:
        raise DoryError(f"input '{input_name}' has no batch axis", str(folder / "inputs.npz"))
    outputs = read_npz(folder / "outputs.npz") if (folder / "outputs.npz").is_file() else {}
    activations = read_npz(folder / "activations.npz") if (folder / "activations.npz").is_file() else {}

    goldens = NpzGoldens()
    layer_of_node = {node: index for index, layer in layers.items() if (node := layer_output_node(layer))}
    assigned: dict[int, str] = {}
    if activations:
        if model_path is None or model_path.suffix != ".onnx":
            goldens.skipped += [(name, "needs the ONNX model to match it to a layer") for name in activations]
        else:
            model = onnx.load(str(model_path), load_external_data=False)
            node_of = match_activations(model, list(activations), str(folder / "activations.npz"))
            for name, node in node_of.items():
                if node in layer_of_node:
                    assigned[layer_of_node[node]] = name
                else:
                    goldens.skipped.append((name, f"output of '{node}', inside a fused layer"))
    per_sample_acts = {name: split_samples(activations[name], count, name, str(folder)) for name in assigned.values()}
    per_sample_outs = {name: split_samples(array, count, name, str(folder)) for name, array in outputs.items()}
    for i, x in enumerate(split_samples(input_array, count, input_name, str(folder))):
        goldens.samples.append(GoldenSample(
            label=str(i) if count > 1 else "-",
            input=x,
            layers={index: (name, per_sample_acts[name][i]) for index, name in sorted(assigned.items())},
            outputs=[(name, arrays[i]) for name, arrays in per_sample_outs.items()],
        ))
    return goldens


def input_type_for(folder: Path) -> str | None:
    """'si8' when the recorded input has negative values (the importer's default is ui8)."""
    (array,) = read_npz(folder / "inputs.npz").values()
    return "si8" if array.size and int(array.min()) < 0 else None
