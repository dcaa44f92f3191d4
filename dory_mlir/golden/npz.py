"""Golden data in the npz form of QuantLib/Deeploy exports: `inputs.npz`, `outputs.npz`, `activations.npz`.

Arrays hold integers in ONNX's layout: NCHW (N×C×W for 1-D networks, N×K for vectors), or rows
of features (M×K, B×M×K: GEMM/MatMul data), stored as any integer type or as float32/float64
holding only integers. Several samples may be stacked along the batch axis (for rows tensors,
along an extra leading axis). Every array is converted to its IR tensor's layout as it is read
(`dory_mlir.tensor_layout`: the importer records which tensors hold rows), so the comparisons
after this module see IR-shaped goldens only.

- `inputs.npz`: the arrays map to the network inputs **by position** (Deeploy's rule; the
  names do not matter). Arrays after the last network input that equal an initializer of
  the model (Deeploy stores e.g. a conv's weights there) are not inputs: they are ignored,
  with one warning. Any other extra array is an error.
- `outputs.npz`: the network outputs, by position.
- `activations.npz`: intermediate tensors under the names of the PyTorch modules that produced
  them (`model_0__ql_replaced__integerize_pact_conv2d_pass_0`), not the ONNX tensor names, in
  the order the network computes them. Matching (`match_activations`): an array whose name is
  an ONNX tensor or node name, or the module whose parameters one node alone reads
  (`module_names`), is matched by name, and an array equal to a network output (`outputs.npz`)
  records that output; the others are matched by position within the gaps the name matches
  leave (the arrays after a name match, with the nodes after its node), in order, to the nodes that compute values (nodes that only
  reshape are skipped; the graph inputs come first, since some exports record them), and only
  where the shapes agree and the tensor's type holds the array's values. When an export leaves some tensors out (e.g. an add's output before
  its requantization), the positional alignment is the one that compares the most arrays and,
  among those, leaves out the fewest layer outputs and records the fewest network inputs. Arrays that match nothing and layers that
  no array records are listed as not compared, never an error.

A golden tensor is compared when it is the output of a fused layer (the layer's last node
produced it); the others (e.g. conv accumulators that a layer's requantization consumes
internally) are listed as skipped. Shapes agree when they are equal once dimensions of size 1
are dropped (an N×C×W array is the network's N×C×1×W tensor).
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from xdsl.dialects.builtin import ModuleOp

from dory_mlir.diagnostics import DoryError, warn
from dory_mlir.dialects import qnn
from dory_mlir.golden.interpreter import input_names, network_function
from dory_mlir.ir_utils import layer_output_node, loc_name
from dory_mlir.tensor_layout import feature_last_tensors, onnx_to_ir

# Nodes that move data without computing it: exporters do not record their outputs.
SHAPE_ONLY_OPS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Constant", "Transpose"}
NPZ_FILES = ("inputs.npz", "outputs.npz", "activations.npz")


@dataclass(frozen=True)
class GoldenSample:
    """One sample: its inputs and, per fused layer index, the expected output (all NCHW, batch 1)."""

    label: str
    inputs: list[np.ndarray]  # one per network input, in the network's IR shape
    layers: dict[int, tuple[str, np.ndarray]]  # layer index -> (npz name, tensor), IR layout
    outputs: list[tuple[str, np.ndarray]]  # IR layout

    @property
    def input(self) -> np.ndarray:
        return self.inputs[0]


@dataclass
class NpzGoldens:
    samples: list[GoldenSample] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (npz name or layer, why it is not compared)


def is_npz_folder(folder: Path) -> bool:
    return (folder / "inputs.npz").is_file()


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz file in their stored order, as int64."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise DoryError("no such file", str(path)) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DoryError(f"not a readable npz file ({e})", str(path)) from None
    for name, array in arrays.items():
        if array.dtype.kind not in "iufb":
            raise DoryError(f"array '{name}' does not hold numbers (dtype {array.dtype})", str(path))
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
                raise DoryError(f"array '{name}' does not hold integers", str(path))
            if array.size and np.abs(array).max() >= 2**63:
                raise DoryError(f"array '{name}' holds values beyond 64 bits", str(path))
    return {name: array.astype(np.int64) for name, array in arrays.items()}


def squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def same_shape(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Equal once dimensions of size 1 are dropped: N×C×W is the IR's N×C×1×W."""
    return squeezed(tuple(a)) == squeezed(tuple(b))


def as_network_shape(golden: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The golden tensor in the network tensor's shape, or None if the shapes disagree."""
    return golden.reshape(shape) if same_shape(golden.shape, shape) else None


# ---------------------------------------------------------------------- the model's side


def graph_input_names(model: onnx.ModelProto) -> list[str]:
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def initializer_arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    arrays = {}
    for init in model.graph.initializer:
        try:
            arrays[init.name] = numpy_helper.to_array(init)
        except Exception:  # noqa: BLE001 - a malformed initializer is the importer's error to report
            continue
    return arrays


def load_onnx(model_path: Path | None) -> onnx.ModelProto | None:
    if model_path is None or model_path.suffix != ".onnx":
        return None
    try:
        return onnx.load(str(model_path), load_external_data=False)
    except Exception:  # noqa: BLE001 - the importer reports an unreadable model
        return None


def computing_outputs(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(node name, first output) of every node that computes values, in graph order."""
    return [
        (node.name or f"{node.op_type}_{i}", node.output[0])
        for i, node in enumerate(model.graph.node)
        if node.op_type not in SHAPE_ONLY_OPS and node.output
    ]


def node_types(layers: dict[int, qnn.LayerOp]) -> dict[str, tuple[tuple[int, ...], tuple[int, int]]]:
    """ONNX node name -> (shape, element type range) of the value it computes, for the nodes the
    fused layers carry (the last op with that node's `loc`); nodes folded away have no entry."""
    types: dict[str, tuple[tuple[int, ...], tuple[int, int]]] = {}
    for layer in layers.values():
        for op in layer.body.walk():
            name = loc_name(op)
            if name and op.results:
                try:
                    types[name] = (qnn.shape_of(op.results[0]), qnn.int_range(qnn.element_type(op.results[0])))
                except Exception:  # noqa: BLE001 - a non-tensor result: nothing to check
                    continue
    return types


# ---------------------------------------------------------------------- matching activations


@dataclass(frozen=True)
class Candidate:
    """A tensor of the graph an activation may record: a node's output or a network input."""

    node: str  # node name, or the graph input's name
    tensor: str
    shape: tuple[int, ...] | None  # None: unknown (matches any shape)
    layer_output: bool = False
    network_input: bool = False
    value_range: tuple[int, int] | None = None  # of its element type; None: unknown
    module: str | None = None  # the PyTorch module the node alone has parameters of (`module_names`)

    def fits(self, shape: tuple[int, ...], values: tuple[int, int] | None) -> bool:
        """Could an array of this shape and value range record this tensor? (Its type, not its values.)"""
        if self.shape is not None and not same_shape(shape, self.shape):
            return False
        return values is None or self.value_range is None or (
            self.value_range[0] <= values[0] and values[1] <= self.value_range[1])


# An activation array: (npz name, shape of one sample, (min, max) of its values or None).
ArrayInfo = tuple[str, tuple[int, ...], tuple[int, int] | None]


def match_activations(arrays: list[ArrayInfo], candidates: list[Candidate]) -> tuple[dict[str, Candidate], list[str]]:
    """npz activation name -> the candidate it records, and the names matched to nothing.

    By name first (tensor or node name); then, in each gap between name matches, by position
    among the remaining candidates whose shape agrees and whose element type holds the array's
    values (an int32 accumulator is no 8-bit layer output), the alignment that matches the most
    arrays and skips the fewest layer outputs (ties: the earliest)."""
    by_name = ({c.module: c for c in candidates if c.module} | {c.tensor: c for c in candidates}
               | {c.node: c for c in candidates})
    position = {c.node: k for k, c in enumerate(candidates)}
    matched: dict[str, Candidate] = {}
    for name, *_ in arrays:
        if name in by_name and by_name[name] not in matched.values():
            matched[name] = by_name[name]
    # Name matches split both sequences into gaps: the arrays after a name match (up to the next one)
    # align with the nodes after its node (up to the next node matched by name), so that a graph
    # listing independent branches in another order than the export computed them still aligns.
    taken = {c.node for c in matched.values()}
    matched_at = sorted(position[c.node] for c in matched.values())
    starts = [-1] + [i for i, (name, *_) in enumerate(arrays) if name in matched]
    for a0, a1 in zip(starts, [*starts[1:], len(arrays)]):
        c0 = position[matched[arrays[a0][0]].node] if a0 >= 0 else -1
        c1 = next((k for k in matched_at if k > c0), len(candidates))
        gap_arrays = [a for a in arrays[a0 + 1 : a1] if a[0] not in matched]
        gap_nodes = [c for c in candidates[c0 + 1 : c1] if c.node not in taken]
        found = _align(gap_arrays, gap_nodes)
        taken |= {c.node for c in found.values()}
        matched |= found
    unmatched = [name for name, *_ in arrays if name not in matched]
    return matched, unmatched


def _align(arrays: list[ArrayInfo], nodes: list[Candidate]) -> dict[str, Candidate]:
    """Order-preserving alignment of arrays to candidates (dynamic programming)."""
    m, n = len(arrays), len(nodes)
    if not m or not n:
        return {}
    # One more match outweighs any number of skipped layer outputs; a network input is the
    # last resort of an array (exports seldom record inputs; a conv accumulator may share their shape).
    match_score = 2 * (n + m + 1)
    best = [[0] * (n + 1) for _ in range(m + 1)]
    step = [[""] * (n + 1) for _ in range(m + 1)]
    for i in range(m, -1, -1):
        for j in range(n, -1, -1):
            if i == m and j == n:
                continue
            options = []
            if i < m and j < n and nodes[j].fits(arrays[i][1], arrays[i][2]):
                options.append((match_score - int(nodes[j].network_input) + best[i + 1][j + 1], "match"))
            if j < n:
                options.append((best[i][j + 1] - int(nodes[j].layer_output), "skip node"))
            if i < m:
                options.append((best[i + 1][j], "skip array"))
            score, choice = max(options, key=lambda o: o[0])  # max keeps the first of equal scores
            best[i][j], step[i][j] = score, choice
    result, i, j = {}, 0, 0
    while i < m or j < n:
        choice = step[i][j]
        if choice == "match":
            result[arrays[i][0]] = nodes[j]
            i, j = i + 1, j + 1
        elif choice == "skip node":
            j += 1
        else:
            i += 1
    return result


# ---------------------------------------------------------------------- reading a folder


def network_inputs(module: ModuleOp) -> list[tuple[str, tuple[int, ...]]]:
    """(name used in messages, IR shape) of every network input, in order."""
    types = network_function(module).function_type.inputs.data
    return list(zip(input_names(len(types)), (qnn.shape_of(t) for t in types), strict=True))


def select_inputs(arrays: dict[str, np.ndarray], count: int, model: onnx.ModelProto | None, where: str,
                  quiet: bool = False) -> list[tuple[str, np.ndarray]]:
    """The first `count` arrays (the network inputs, by position); trailing arrays must equal an
    initializer of the model (they are ignored, with one warning unless `quiet`)."""
    items = list(arrays.items())
    if len(items) < count:
        raise DoryError(f"holds {len(items)} arrays, the network has {count} inputs", where)
    extra = items[count:]
    if not extra:
        return items
    initializers = initializer_arrays(model) if model is not None else {}
    equal_to = []
    for name, array in extra:
        init = next((init_name for init_name, value in initializers.items()
                     if value.shape == array.shape and np.array_equal(value, array)), None)
        if init is None:
            what = "equals no initializer of the model" if model is not None else "cannot be checked without the ONNX model"
            raise DoryError(f"holds {len(items)} arrays for the network's {count} inputs; array '{name}' {what}", where)
        equal_to.append(f"'{name}' = '{init}'")
    if not quiet:
        warn(f"ignored {len(extra)} trailing array(s) equal to initializers, not network inputs: {', '.join(equal_to)}",
             where)
    return items[:count]


def split_inputs(selected: list[tuple[str, np.ndarray]], inputs: list[tuple[str, tuple[int, ...]]],
                 where: str, rows: list[tuple[int, ...] | None] | None = None) -> tuple[int, list[list[np.ndarray]]]:
    """(sample count, per input its samples in the IR shape); samples stack along the batch axis.
    `rows[k]`: the ONNX shape of input k when it holds rows of features (its arrays have exactly
    that shape, or one more leading axis of samples), else None."""
    per_input, counts = [], []
    rows = rows or [None] * len(inputs)
    for (array_name, array), (input_name, shape), row_shape in zip(selected, inputs, rows, strict=True):
        size = int(np.prod(shape))
        if row_shape is not None and tuple(array.shape) == tuple(row_shape):
            samples = [onnx_to_ir(array, row_shape)]
        elif row_shape is not None and array.ndim == len(row_shape) + 1 and tuple(array.shape[1:]) == tuple(row_shape):
            samples = [onnx_to_ir(sample, row_shape) for sample in array]
        elif row_shape is not None:
            raise DoryError(f"array '{array_name}' has shape {list(array.shape)}, the network's {input_name} "
                            f"{list(row_shape)} (rows of features)", where)
        elif array.size == size and same_shape(array.shape, shape):
            samples = [array.reshape(shape)]
        elif array.ndim >= 1 and array.shape[0] > 1 and same_shape(array.shape[1:], shape[1:]) and shape[0] == 1:
            samples = [array[i].reshape(shape) for i in range(array.shape[0])]
        else:
            raise DoryError(f"array '{array_name}' has shape {list(array.shape)}, the network's {input_name} "
                            f"{list(shape)}", where)
        per_input.append(samples)
        counts.append(len(samples))
    if len(set(counts)) > 1:
        raise DoryError(f"the input arrays hold different numbers of samples: {counts}", where)
    return counts[0], per_input


def in_ir_layout(array: np.ndarray, row_shape: tuple[int, ...] | None) -> np.ndarray:
    """A golden array of one sample in its IR tensor's layout (unchanged unless it holds rows of
    features, or when its size is not the tensor's: the comparison then reports the shapes)."""
    if row_shape is None or array.size != int(np.prod(row_shape)):
        return array
    return onnx_to_ir(array, row_shape)


def check_input_ranges(module: ModuleOp, selected: list[tuple[str, np.ndarray]], per_input: list[list[np.ndarray]],
                       where: str) -> None:
    """Every input array within its network input's type (`--input-type` sets another)."""
    types = network_function(module).function_type.inputs.data
    for (array_name, _), samples, ty, name in zip(selected, per_input, types, input_names(len(types)), strict=True):
        lo, hi = qnn.int_range(qnn.element_type(ty))
        low, high = min(int(x.min()) for x in samples), max(int(x.max()) for x in samples)
        if samples[0].size and (low < lo or high > hi):
            raise DoryError(f"array '{array_name}' holds values in [{low}, {high}], outside the {qnn.element_type(ty)} "
                            f"range [{lo}, {hi}] of the network's {name}", where)


def split_samples(array: np.ndarray, count: int, name: str, where: str) -> list[np.ndarray]:
    """`count` samples of a golden array (the whole array when there is one sample)."""
    if count == 1:
        return [array]
    if array.ndim == 0 or array.shape[0] != count:
        raise DoryError(f"'{name}' has {array.shape[0] if array.ndim else 0} samples, the inputs {count}", where)
    return [array[i : i + 1] for i in range(count)]


def module_names(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> the PyTorch module whose parameters it alone reads, as activations.npz spells module
    names (`net.l1._QL_PASS_2.bias` is a parameter of `net_l1__ql_pass_2`). QuantLib names initializers
    after their modules, and the activation arrays after the module that produced them, so a module
    read by one node names that node's output whatever the graph's node order (Deeploy's Attention
    computes its projections in another order than the graph lists them). Modules read by several
    nodes (deduplicated constants) name no node."""
    initializers = {init.name for init in model.graph.initializer}
    readers: dict[str, set[str]] = {}
    for i, node in enumerate(model.graph.node):
        for name in node.input:
            if name in initializers and "." in name:
                module = name.rsplit(".", 1)[0].lower().replace(".", "_")
                readers.setdefault(module, set()).add(node.name or f"{node.op_type}_{i}")
    return {next(iter(nodes)): module for module, nodes in readers.items() if len(nodes) == 1}


def activation_candidates(model: onnx.ModelProto, module: ModuleOp, layers: dict[int, qnn.LayerOp]) -> list[Candidate]:
    """The tensors an activation array may record, each with the shape its array has: the IR
    shape, or the ONNX shape of a tensor of rows of features."""
    types = node_types(layers)
    rows = feature_last_tensors(network_function(module))
    outputs = {node for layer in layers.values() if (node := layer_output_node(layer))}
    input_types = network_function(module).function_type.inputs.data
    candidates = [Candidate(name, name, rows.get(name, qnn.shape_of(ty)), network_input=True,
                            value_range=qnn.int_range(qnn.element_type(ty)))
                  for name, ty in zip(graph_input_names(model), input_types, strict=False)]
    modules = module_names(model)
    for node, tensor in computing_outputs(model):
        shape, value_range = types.get(node, (None, None))
        if shape is not None and tensor in rows:
            shape = rows[tensor]
        candidates.append(Candidate(node, tensor, shape, node in outputs, value_range=value_range,
                                    module=modules.get(node)))
    return candidates


def load_npz_goldens(folder: Path, module: ModuleOp, model_path: Path | None) -> NpzGoldens:
    """Reads the folder and assigns each recorded tensor to the fused layer that computes it."""
    function = network_function(module)
    layers = {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}
    inputs = network_inputs(module)
    model = load_onnx(model_path)
    where = str(folder / "inputs.npz")
    selected = select_inputs(read_npz(folder / "inputs.npz"), len(inputs), model, where)
    rows = feature_last_tensors(function)
    if rows and model is None:
        # The record names ONNX tensors; without the graph, an M×M array would be read untransposed.
        raise DoryError("the network holds rows of features (M×K GEMM data), whose npz arrays are matched to "
                        "its tensors through the ONNX model: give the .onnx file, not the IR", where)
    input_rows = [rows.get(name) for name in graph_input_names(model)] if model is not None else None
    count, per_input = split_inputs(selected, inputs, where, input_rows)
    check_input_ranges(module, selected, per_input, where)
    outputs = read_npz(folder / "outputs.npz") if (folder / "outputs.npz").is_file() else {}
    activations = read_npz(folder / "activations.npz") if (folder / "activations.npz").is_file() else {}

    goldens = NpzGoldens()
    layer_of_node = {node: index for index, layer in layers.items() if (node := layer_output_node(layer))}
    assigned: dict[int, str] = {}
    assigned_rows: dict[str, tuple[int, ...] | None] = {}  # npz name -> ONNX shape if it records rows
    if activations:
        if model is None:
            goldens.skipped += [(name, "needs the ONNX model to match it to a layer") for name in activations]
        else:
            infos = [(name, a.shape if count == 1 else (1, *a.shape[1:]),
                      (int(a.min()), int(a.max())) if a.size else None) for name, a in activations.items()]
            candidates = activation_candidates(model, module, layers)
            # An array that holds a network output's golden (outputs.npz, by position) records that
            # output: the export stored the one tensor twice (its name is then the output tensor's).
            output_tensors = [o.name for o in model.graph.output]
            for name, array in activations.items():
                for k, (_, output) in enumerate(outputs.items()):
                    if k < len(output_tensors) and array.shape == output.shape and np.array_equal(array, output):
                        candidates = [dataclasses.replace(c, module=name) if c.tensor == output_tensors[k] else c
                                      for c in candidates]
            matched, unmatched = match_activations(infos, candidates)
            for name, candidate in matched.items():
                if candidate.network_input:
                    goldens.skipped.append((name, f"records the network input '{candidate.node}'"))
                elif candidate.node in layer_of_node:
                    assigned[layer_of_node[candidate.node]] = name
                    assigned_rows[name] = rows.get(candidate.tensor)
                else:
                    goldens.skipped.append((name, f"output of '{candidate.node}', inside a fused layer"))
            goldens.skipped += [(name, "matches no node of the graph by name, nor by position and shape")
                                for name in unmatched]
            goldens.skipped += [(f"layer {index}", f"no array of activations.npz records its output "
                                                   f"('{layer_output_node(layer) or loc_name(layer) or '?'}')")
                                for index, layer in sorted(layers.items()) if index not in assigned]
    per_sample_acts = {name: [in_ir_layout(a, assigned_rows[name]) for a in split_samples(activations[name], count, name, str(folder))]
                       for name in assigned.values()}
    # outputs.npz holds the network outputs by position: graph output k is the array at k.
    output_names = [o.name for o in model.graph.output] if model is not None else []
    output_rows = [rows.get(output_names[k]) if k < len(output_names) else None for k in range(len(outputs))]
    per_sample_outs = {name: [in_ir_layout(a, row_shape) for a in split_samples(array, count, name, str(folder))]
                       for (name, array), row_shape in zip(outputs.items(), output_rows, strict=True)}
    for i in range(count):
        goldens.samples.append(GoldenSample(
            label=str(i) if count > 1 else "-",
            inputs=[samples[i] for samples in per_input],
            layers={index: (name, per_sample_acts[name][i]) for index, name in sorted(assigned.items())},
            outputs=[(name, arrays[i]) for name, arrays in per_sample_outs.items()],
        ))
    return goldens


def narrowest_spec(array: np.ndarray) -> str:
    """The `--input-type` spec of the narrowest activation type holding the array's values."""
    if not array.size:
        return "ui8"
    lo, hi = int(array.min()), int(array.max())
    for spec, (type_lo, type_hi) in (("ui8", (0, 255)), ("si8", (-128, 127)), ("ui16", (0, 65535))):
        if type_lo <= lo and hi <= type_hi:
            return spec
    return "si16"


def input_type_for(folder: Path, model_path: Path | None = None) -> str | None:
    """The input type spec of the recorded inputs: None (the importer's default, ui8) when every
    input fits ui8, else one spec per network input, the narrowest type holding its values (`si8`,
    `si16,ui8`...; values beyond 16 bits keep si16, which the input check then reports).
    With the ONNX model, trailing arrays beyond its inputs are not counted."""
    arrays = read_npz(folder / "inputs.npz")
    model = load_onnx(model_path)
    if model is not None:
        count = len(graph_input_names(model))
        if count and count != len(arrays):
            arrays = dict(select_inputs(arrays, count, model, str(folder / "inputs.npz"), quiet=True))
    specs = [narrowest_spec(array) for array in arrays.values()]
    if set(specs) == {"ui8"}:
        return None
    return specs[0] if len(set(specs)) == 1 else ",".join(specs)
