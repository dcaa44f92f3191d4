"""Reading an ONNX model file: decoded, checked at the model level (versions, domains, initializers,
input sizes), its nodes in topological order; and the input type a DORY config beside it declares.
Every problem is a one-line `DoryError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from dory_mlir.diagnostics import DoryError

ONNX_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


def read_model(path: Path) -> onnx.ModelProto:
    """The decoded model of a file, with at least one node (any model: float ones too)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DoryError(f"cannot read the model: {e.strerror}", str(path)) from None
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise DoryError(f"not a valid ONNX model (truncated or corrupt protobuf: {e})", str(path)) from None
    if not model.graph.node:
        raise DoryError("not a valid ONNX model (the graph has no nodes)", str(path))
    return model


def load_model(path: Path) -> onnx.ModelProto:
    """A model the importers can walk: read, checked (`check_model`), nodes in topological order."""
    model = read_model(path)
    check_model(model, path.name)
    sort_nodes(model.graph)
    return model


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Puts the nodes in topological order when they are not (ONNX requires it; some exporters, e.g.
    Deeploy's OutputIdentity test, write a consumer first). A sorted graph keeps its order (it
    numbers the layers); otherwise each step takes the first node whose inputs are available. Nodes
    whose inputs never become available keep their relative order at the end (the importer names them)."""
    initial = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    available = set(initial)
    for node in graph.node:
        if not all(name in available for name in node.input):
            break
        available.update(node.output)
    else:
        return
    available, pending, ordered = set(initial), list(graph.node), []
    while pending:
        node = next((n for n in pending if all(name in available for name in n.input)), None)
        if node is None:
            break
        available.update(node.output)
        ordered.append(node)
        pending.remove(node)
    nodes = []
    for node in ordered + pending:
        clone = onnx.NodeProto()
        clone.CopyFrom(node)
        nodes.append(clone)
    del graph.node[:]
    graph.node.extend(nodes)

# Domains whose nodes the importers know: ONNX's own, the custom ops of QuantLib/Deeploy exports
# (RequantShift in "", "ai.onnx.contrib" or the PACT ops domain) and onnxruntime's (QGemm, QLinearAdd, ...).
KNOWN_DOMAINS = {"", "ai.onnx", "ai.onnx.contrib", "PACTOps", "com.microsoft"}
MIN_OPSET = 7  # Clip with min/max attributes, Pad, Unsqueeze with axes attributes: every spelling from 7 on is read
MIN_IR_VERSION = 3
MAX_INPUT_ELEMENTS = 2**26  # beyond any memory of the targets (L3: 8 MB)


def check_model(model: onnx.ModelProto, model_name: str) -> None:
    """Model-level checks before any node is read: versions, node domains, initializers, inputs."""
    if not MIN_IR_VERSION <= model.ir_version <= onnx.IR_VERSION:
        raise DoryError(f"ONNX IR version {model.ir_version} is not supported "
                        f"({MIN_IR_VERSION} to {onnx.IR_VERSION})", model_name)
    max_opset = onnx.defs.onnx_opset_version()
    default = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not default:
        raise DoryError("the model imports no opset of the default ONNX domain", model_name)
    if not all(MIN_OPSET <= v <= max_opset for v in default):
        raise DoryError(f"opset {default[0]} of the default ONNX domain is not supported ({MIN_OPSET} to {max_opset})",
                        model_name)
    for index, node in enumerate(model.graph.node):
        if node.domain not in KNOWN_DOMAINS:
            raise DoryError(f"op '{node.op_type}' of the unknown domain '{node.domain}' is not supported",
                            f"{model_name}: node '{node.name or f'{node.op_type}_{index}'}' ({node.op_type})")
    seen: set[str] = set()
    for init in model.graph.initializer:
        if init.name in seen:
            raise DoryError(f"two initializers are named '{init.name}'", model_name)
        seen.add(init.name)
    for value_info in model.graph.input:
        if value_info.name in seen or not value_info.type.HasField("tensor_type"):
            continue
        dims = [d.dim_value for d in value_info.type.tensor_type.shape.dim]
        if all(d > 0 for d in dims) and int(np.prod(dims, dtype=object)) > MAX_INPUT_ELEMENTS:
            raise DoryError(f"input '{value_info.name}' of shape {dims} is too large "
                            f"(more than {MAX_INPUT_ELEMENTS} values)", model_name)


def input_type_from_dory_config(model_path: Path) -> str | None:
    """The input type a DORY network config beside the model declares (`input_bits`, `input_signed`)."""
    for cfg in sorted(model_path.parent.glob("*.json")):
        try:
            data = json.loads(cfg.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "input_bits" not in data:
            continue
        onnx_file = data.get("onnx_file")
        if onnx_file and Path(str(onnx_file)).name != model_path.name:
            continue
        bits, signed = data["input_bits"], data.get("input_signed", False)
        integral = isinstance(bits, int) or (isinstance(bits, float) and bits.is_integer())
        if isinstance(bits, bool) or not integral or not 1 <= bits <= 8:
            raise DoryError(f"'input_bits' must be an integer 1..8, got {json.dumps(bits)[:40]}", str(cfg))
        if not isinstance(signed, bool | int) or signed not in (0, 1):
            raise DoryError(f"'input_signed' must be true or false, got {json.dumps(signed)[:40]}", str(cfg))
        return f"{'si8' if signed else 'ui8'}:{int(bits)}"
    return None
