"""ONNX → `qnn` import of integer-valued quantized networks (NEMO, Quantlab).

The graph is walked once in node order. Constants are folded with numpy; the
elementwise ops around each conv/linear/pool/add are folded exactly into a
`Chain` (see `requant_chain.py`) and emitted as `qnn.requant` when a structural op
consumes them. Every op carries a `loc` with its ONNX node name. Each construct the
import cannot represent exactly is a one-line `DoryError` naming the node.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    IntegerType,
    ModuleOp,
    NameLoc,
    NoneAttr,
    Signedness,
    StringAttr,
    TensorType,
    UnitAttr,
)
from xdsl.ir import Block, Operation, Region, SSAValue

from dory_mlir.diagnostics import DoryError, InternalError, describe_exception, warn
from dory_mlir.dialects import qnn
from dory_mlir.frontend.activation_modes import ACTIVATION_MODES
from dory_mlir.frontend.qdq_legalize import is_quantized
from dory_mlir.frontend.requant_chain import Chain, ChainError, Range, as_int_vector
from dory_mlir.tensor_layout import (
    FEATURE_LAST_ATTR,
    FeatureLastShape,
    channel_axis,
    feature_last_attr,
    ir_shape,
    is_feature_last,
)

SI8 = IntegerType(8, Signedness.SIGNED)
UI8 = IntegerType(8, Signedness.UNSIGNED)
SI16 = IntegerType(16, Signedness.SIGNED)
UI16 = IntegerType(16, Signedness.UNSIGNED)
SI32 = IntegerType(32, Signedness.SIGNED)
SI64 = IntegerType(64, Signedness.SIGNED)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Function attribute listing the ONNX nodes after the last integer layer that were left off.
DROPPED_TAIL = "dropped_tail"

# Float ops that exporters append after the last integer layer; DORY drops them too.
TAIL_OPS = {"Sigmoid", "Softmax", "LogSoftmax", "Gather", "Unsqueeze", "Squeeze", "Concat", "Identity"}
ONNX_INT64 = onnx.TensorProto.INT64
ONNX_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
# Graph inputs hold integers stored in any numeric ONNX type (float32 in QuantLib/NEMO exports).
NUMERIC_INPUT_TYPES = ONNX_FLOAT_TYPES | {
    onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16,
    onnx.TensorProto.INT32, onnx.TensorProto.UINT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT64,
}


@dataclass(frozen=True)
class Act:
    """A materialized integer tensor of the IR with its per-channel value range."""

    ssa: SSAValue
    range: Range
    onnx_shape: tuple[int, ...]


@dataclass(frozen=True)
class Pending:
    """A value whose elementwise arithmetic has not been emitted yet."""

    chain: Chain
    onnx_shape: tuple[int, ...]


@dataclass(frozen=True)
class Dropped:
    """The output of a float tail op left off the deployed network."""

    source: object
    node: str


Value = Act | Pending | Dropped | np.ndarray


_REQUIRED = object()
# Window sizes, strides, dilations and pads beyond this are no real network's (and overflow the kernels' int16 loops).
MAX_WINDOW = 2**15
# Arity (fewest, most inputs) of the default-domain ops the importers read; a node outside it is an error.
ARITY = {
    "Conv": (2, 3), "MatMul": (2, 2), "Gemm": (2, 3), "Mul": (2, 2), "Add": (2, 2), "Div": (2, 2), "Sub": (2, 2),
    "Floor": (1, 1), "Cast": (1, 1), "Clip": (1, 3), "Relu": (1, 1), "MaxPool": (1, 1),
    "AveragePool": (1, 1), "GlobalAveragePool": (1, 1), "Pad": (1, 4), "Flatten": (1, 1), "Reshape": (2, 2),
    "Constant": (0, 0), "Identity": (1, 1), "Shape": (1, 1), "Unsqueeze": (1, 2), "Squeeze": (1, 2),
    "Gather": (2, 2), "Slice": (1, 5), "Concat": (1, 2**16), "Sigmoid": (1, 1), "Softmax": (1, 1), "LogSoftmax": (1, 1),
    "ReduceMean": (1, 2), "ReduceSum": (1, 2), "ReduceMax": (1, 2), "ReduceMin": (1, 2), "ReduceProd": (1, 2),
    "QuantizeLinear": (2, 3), "DequantizeLinear": (2, 3), "QLinearConv": (8, 9), "QLinearMatMul": (8, 8),
    "QGemm": (6, 9), "QLinearAdd": (7, 8), "QLinearAveragePool": (4, 5), "QLinearGlobalAveragePool": (4, 5),
}


# Ops that compute element by element: their output has their input's layout, so the layout of a
# graph input is decided by the structural op that finally reads it through them.
ELEMENTWISE_OPS = {"Mul", "Add", "Div", "Sub", "Floor", "Cast", "Clip", "Relu", "RequantShift", "Identity"}
# Products with a constant K×N weight: they read their data operand (input 0) as rows of features.
GEMM_OPS = {"MatMul", "Gemm"}

# Ops whose `axes` became an input (Unsqueeze/Squeeze/ReduceSum at opset 13, the other reductions at 18).
AXES_INPUT_OPS = {"Unsqueeze", "Squeeze", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"}


class Attributes:
    """A node's attributes, each read with its expected type and range.

    A missing required attribute, a value of the wrong kind or outside its range is a one-line
    `DoryError` naming the node (through `error`), never a KeyError or TypeError.
    """

    def __init__(self, node: onnx.NodeProto, error: Callable[[str], DoryError]):
        self.error = error
        self.raw = {a.name: a for a in node.attribute}

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def value(self, name: str, default: object = _REQUIRED) -> object:
        if name not in self.raw:
            if default is _REQUIRED:
                raise self.error(f"the attribute '{name}' is missing")
            return default
        try:
            return onnx.helper.get_attribute_value(self.raw[name])
        except Exception as e:  # noqa: BLE001 - onnx raises bare exceptions for malformed attributes
            raise self.error(f"the attribute '{name}' cannot be read ({describe_exception(e)})") from None

    def _as_int(self, name: str, value: object) -> int:
        if isinstance(value, onnx.TensorProto):
            try:
                value = numpy_helper.to_array(value)
            except Exception as e:  # noqa: BLE001
                raise self.error(f"the attribute '{name}' cannot be read ({describe_exception(e)})") from None
        if isinstance(value, np.ndarray):
            if value.size != 1 or value.dtype.kind not in "iuf":
                raise self.error(f"the attribute '{name}' must be one integer, got {value.reshape(-1)[:4].tolist()}")
            value = value.reshape(-1)[0].item()
        if isinstance(value, float) and np.isfinite(value) and value == int(value):
            value = int(value)  # QuantLib stores integers as floats
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"the attribute '{name}' must be an integer, got {str(value)[:40]!r}")
        return value

    @staticmethod
    def _check_range(error, name: str, value: int | float, lo: int | float | None, hi: int | float | None) -> None:
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"in [{lo}, {hi}]" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
            raise error(f"the attribute '{name}' is {value}; it must be {bounds}")

    def int(self, name: str, default: object = _REQUIRED, lo: int | None = None, hi: int | None = None) -> int:
        value = self.value(name, default)
        if value is default and default is not _REQUIRED:
            return value  # type: ignore[return-value]
        result = self._as_int(name, value)
        self._check_range(self.error, name, result, lo, hi)
        return result

    def ints(self, name: str, default: object = _REQUIRED, length: int | None = None,
             lo: int | None = None, hi: int | None = None) -> list[int]:
        value = self.value(name, default)
        if value is default and default is not _REQUIRED:
            return list(value)  # type: ignore[call-overload]
        if isinstance(value, onnx.TensorProto | np.ndarray):
            array = np.asarray(numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value)
            value = array.reshape(-1).tolist()
        if not isinstance(value, list | tuple):
            raise self.error(f"the attribute '{name}' must be a list of integers, got {str(value)[:40]!r}")
        result = [self._as_int(name, v) for v in value]
        if length is not None and len(result) != length:
            raise self.error(f"the attribute '{name}' has {len(result)} values, expected {length}")
        for v in result:
            self._check_range(self.error, name, v, lo, hi)
        return result

    def float(self, name: str, default: object = _REQUIRED) -> float:
        value = self.value(name, default)
        if isinstance(value, onnx.TensorProto | np.ndarray):
            array = np.asarray(numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value)
            if array.size != 1 or array.dtype.kind not in "iuf":
                raise self.error(f"the attribute '{name}' must be one number, got {array.reshape(-1)[:4].tolist()}")
            value = array.reshape(-1)[0].item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"the attribute '{name}' must be a number, got {str(value)[:40]!r}")
        return float(value)

    def string(self, name: str, default: str) -> str:
        value = self.value(name, default)
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError:
                raise self.error(f"the attribute '{name}' is not text") from None
        if not isinstance(value, str):
            raise self.error(f"the attribute '{name}' must be a string, got {str(value)[:40]!r}")
        return value


def parse_element_type(spec: str) -> tuple[IntegerType, Range]:
    """'ui8', 'si8', 'ui16', 'si16', or 'si8:2' (signed, 2 significant bits) → element type and range."""
    name, _, bits = spec.partition(":")
    types = {"ui8": UI8, "si8": SI8, "ui16": UI16, "si16": SI16}
    if name not in types:
        raise DoryError(f"unsupported input type '{spec}' (expected ui8, si8, ui16 or si16, optionally ':BITS')")
    ty = types[name]
    width = ty.width.data
    if bits and not bits.strip().isdigit():
        raise DoryError(f"unsupported input type '{spec}': the bits after ':' must be a number 1..{width}")
    nbits = int(bits) if bits else width
    if not 1 <= nbits <= width:
        raise DoryError(f"input bits must be 1..{width}, got {nbits} (input type '{spec}')")
    if ty.signedness.data == Signedness.UNSIGNED:
        return ty, Range.scalar(0, 2**nbits - 1)
    return ty, Range.scalar(-(2 ** (nbits - 1)), 2 ** (nbits - 1) - 1)


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


def load_model(path: Path) -> onnx.ModelProto:
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


def import_onnx_file(path: str | Path, input_type: str | None = None, activations: str = "exact") -> ModuleOp:
    """Import a model file; the input type defaults to a DORY config beside it, else ui8.
    `activations` (ACTIVATION_MODES): what an unclipped result beyond 8 bits becomes."""
    path = Path(path)
    if activations not in ACTIVATION_MODES:
        raise DoryError(f"unknown activations mode '{activations}' (expected {' or '.join(ACTIVATION_MODES)})")
    model = load_model(path)
    if is_quantized(model):  # onnxruntime's QDQ / QOperator forms
        from dory_mlir.frontend.qoperator_import import import_quantized  # it imports this module

        return import_quantized(model, path, input_type)
    spec = input_type or input_type_from_dory_config(path) or "ui8"
    return OnnxImporter(model, path.name, spec, saturate=activations == "saturate").run()


def channels_last_is_row_major(shape: tuple[int, ...]) -> bool:
    """Whether an N×C×H×W tensor's channels-last bytes are in row-major NCHW order (C = 1 or H·W = 1)."""
    return len(shape) != 4 or shape[1] == 1 or shape[2] * shape[3] == 1


def ssa_name(name: str) -> str:
    """An SSA name hint from an ONNX tensor name (`bn1.kappa` → `bn1_kappa`)."""
    hint = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return hint if hint[:1].isalpha() else f"t{hint}"


def name_loc(name: str) -> NameLoc:
    return NameLoc(StringAttr(name), NoneAttr())


def _elements_attr(values: np.ndarray, ty: TensorType) -> DenseIntOrFPElementsAttr:
    width = ty.element_type.width.data  # type: ignore[union-attr]
    dtype = {8: "<i1", 32: "<i4", 64: "<i8"}[width]
    return DenseIntOrFPElementsAttr(ty, BytesAttr(np.asarray(values).astype(dtype).tobytes()))


class OnnxImporter:
    """One import: walks the graph, keeps the ONNX name → value environment, emits ops."""

    def __init__(self, model: onnx.ModelProto, model_name: str, input_type: str, saturate: bool = False):
        self.model = model
        self.saturate = saturate
        self.graph = model.graph
        self.model_name = model_name
        # One spec for every network input, or a comma-separated list with one per input.
        self.input_specs = [parse_element_type(spec.strip()) for spec in input_type.split(",")]
        self.input_type, self.input_range = self.input_specs[0]
        self.env: dict[str, Value] = {}
        self.constants: list[Operation] = []  # emitted first, so weights head the function
        self.ops: list[Operation] = []
        self.node_name = ""
        self.node_op = ""
        # Materialized chains by identity: a chain read by two consumers is emitted once.
        self.materialized: dict[int, tuple[Chain, Act]] = {}
        self.dropped_tail: list[str] = []
        self.feature_last: dict[str, tuple[int, ...]] = {}  # ONNX tensor → shape, of the rows tensors
        self.handlers: dict[str, Callable[[onnx.NodeProto], list[Value]]] = {
            "Constant": self.constant,
            "Conv": self.conv,
            "MatMul": self.matmul,
            "Gemm": self.gemm,
            "Mul": self.mul,
            "Add": self.add,
            "Div": self.div,
            "Floor": self.floor,
            "Cast": self.cast,
            "Clip": self.clip,
            "Relu": self.relu,
            "RequantShift": self.requant_shift,
            "MaxPool": self.max_pool,
            "AveragePool": self.average_pool,
            "GlobalAveragePool": self.global_average_pool,
            "Pad": self.pad,
            "Flatten": self.flatten,
            "Reshape": self.reshape,
            "Shape": self.shape,
            "Sub": self.sub,
            "ReduceSum": self.reduce_sum,
            "ReduceMean": self.reduce_mean,
            "Slice": self.slice,
            "Concat": self.concat,
        }

    # ----------------------------------------------------------------- driver

    def error(self, message: str) -> DoryError:
        where = f"{self.model_name}: node '{self.node_name}' ({self.node_op})" if self.node_name else self.model_name
        return DoryError(message, where)

    def run(self) -> ModuleOp:
        for init in self.graph.initializer:
            self.env[init.name] = self.initializer_array(init)
        block = self.network_inputs()

        for index, node in enumerate(self.graph.node):
            self.node_name = node.name or f"{node.op_type}_{index}"
            self.node_op = node.op_type
            outputs = self.visit(node)
            for name, value in zip(node.output, outputs, strict=True):
                self.env[name] = value
                if isinstance(value, Act | Pending):
                    self.record_layout(name, value.onnx_shape)
        self.node_name = ""

        results = self.network_outputs()
        for op in self.constants + self.ops:
            block.add_op(op)
        block.add_op(func.ReturnOp(*results))
        function = func.FuncOp.from_region(
            "network", [arg.type for arg in block.args], [r.type for r in results], Region(block)
        )
        function.location = name_loc(self.graph.name or self.model_name)
        if self.feature_last:
            function.attributes[FEATURE_LAST_ATTR] = feature_last_attr(self.feature_last)
        if self.saturate:
            function.attributes[qnn.SATURATE_ATTR] = UnitAttr()
        if self.dropped_tail:
            function.attributes[DROPPED_TAIL] = ArrayAttr([StringAttr(n) for n in self.dropped_tail])
        module = ModuleOp([function])
        module.location = name_loc(self.model_name)
        module.verify()
        return module

    def network_inputs(self) -> Block:
        """The function's block: one argument per graph input (initializers excluded), in graph
        order, each with its own type and range (`input_type`: one spec for all, or one per input).
        A single input is `%input`, several are `%input0`, `%input1`, ..."""
        graph_inputs = [i for i in self.graph.input if i.name not in self.env]
        if not graph_inputs:
            raise self.error("the graph has no network input (every input is an initializer)")
        names = [i.name for i in graph_inputs]
        if len(set(names)) != len(names):
            raise self.error(f"graph input '{next(n for n in names if names.count(n) > 1)}' is declared twice")
        specs = self.input_specs
        if len(specs) == 1:
            specs = specs * len(graph_inputs)
        elif len(specs) != len(graph_inputs):
            raise self.error(f"{len(specs)} input types given for the network's {len(graph_inputs)} inputs")
        for graph_input in graph_inputs:
            elem = graph_input.type.tensor_type.elem_type if graph_input.type.HasField("tensor_type") else 0
            if elem not in NUMERIC_INPUT_TYPES:
                raise self.error(f"input '{graph_input.name}' is not a numeric tensor (ONNX element type {elem})")
        self.check_no_product_of_inputs(set(names))
        onnx_shapes = [self.input_onnx_shape(i) for i in graph_inputs]
        block = Block(arg_types=[TensorType(ty or self.input_type, ir_shape(shape))
                                 for shape, (ty, _) in zip(onnx_shapes, specs, strict=True)])
        for k, (graph_input, onnx_shape, (_, value_range)) in enumerate(zip(graph_inputs, onnx_shapes, specs, strict=True)):
            block.args[k].name_hint = "input" if len(graph_inputs) == 1 else f"input{k}"
            self.env[graph_input.name] = Act(block.args[k], value_range, onnx_shape)
            self.record_layout(graph_input.name, onnx_shape)
        return block

    def check_no_product_of_inputs(self, input_names: set[str]) -> None:
        """A Gemm whose weight operand is a network input multiplies two activations: no kernel
        does that (MatMul does, `matmul_of_activations`). Said before the inputs' shapes are
        checked, so the message names it."""
        for index, node in enumerate(self.graph.node):
            if node.op_type == "Gemm" and len(node.input) > 1 and node.input[1] in input_names:
                self.node_name, self.node_op = node.name or f"{node.op_type}_{index}", node.op_type
                raise self.error(f"{node.op_type} of two activations ('{node.input[0]}' × '{node.input[1]}') is not "
                                 "supported; the second operand must be a constant weight")
        self.node_name = self.node_op = ""

    def read_as_rows(self, tensor: str) -> bool:
        """Does a GEMM read `tensor` (directly or through elementwise ops) as its data operand?

        A 3-D tensor is N×C×W to a conv (channels on axis 1) but B×M×K to a MatMul (features on
        the last axis): the same rank, two layouts. Only the op that reads it tells them apart,
        and elementwise ops on the way keep the layout, so the search walks through them."""
        pending, seen = [tensor], set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            for node in self.graph.node:
                if name not in node.input:
                    continue
                if node.op_type in GEMM_OPS and node.input[0] == name:
                    return True
                if node.op_type == "MatMul" and name in node.input[:2]:
                    return True  # either operand of a MatMul of two activations
                if node.op_type in ELEMENTWISE_OPS:
                    pending.extend(o for o in node.output if o)
        return False

    def input_onnx_shape(self, value_info: onnx.ValueInfoProto) -> tuple[int, ...]:
        """A graph input's static ONNX shape, marked `FeatureLastShape` when it holds rows of
        features (tensor_layout.py): an M×K input with M > 1 (N×K vectors have N = 1), or a 3-D
        input that a MatMul/Gemm reads as its data operand, or that a MatMul of two activations reads
        (any rank ≥ 3: the leading axes are its batch)."""
        dims = value_info.type.tensor_type.shape.dim
        shape: list[int] = []
        for d in dims:
            if d.dim_value <= 0:
                label = d.dim_param or "?"
                raise DoryError(
                    f"input '{value_info.name}' has a dynamic dimension '{label}'; export with static shapes",
                    self.model_name,
                )
            shape.append(d.dim_value)
        if (len(shape) == 2 and shape[0] > 1) or (len(shape) >= 3 and self.read_as_rows(value_info.name)):
            return FeatureLastShape(shape)
        if len(shape) not in (2, 3, 4) or shape[0] != 1:
            raise DoryError(
                f"input '{value_info.name}' must be N×K, N×C×W or N×C×H×W with N = 1, or rows of features "
                f"(M×K, or B×M×K read by a MatMul/Gemm), got {shape}", self.model_name
            )
        return tuple(shape)

    def record_layout(self, tensor: str, onnx_shape: tuple[int, ...]) -> None:
        """Remembers a feature-last tensor for the golden readers (tensor_layout.FEATURE_LAST_ATTR)."""
        if is_feature_last(onnx_shape):
            self.feature_last[tensor] = onnx_shape

    def visit(self, node: onnx.NodeProto) -> list[Value]:
        """The values of a node's outputs. A bad node is a `DoryError` naming it; any other exception
        is a compiler bug, reported as an `InternalError` naming the node."""
        try:
            self.check_arity(node)
            outputs = self.visit_node(node)
        except ChainError as e:
            raise self.error(str(e)) from None
        except (DoryError, InternalError):
            raise
        except Exception as e:  # noqa: BLE001 - a bug: name the node it happened on
            where = f"{self.model_name}: node '{self.node_name}' ({self.node_op})"
            raise InternalError(describe_exception(e), where) from e
        if len(outputs) != len(node.output):
            if len(outputs) > len(node.output) or any(node.output[len(outputs):]):
                raise self.error(f"has {len(node.output)} outputs; this importer reads {len(outputs)} from it")
            outputs = outputs + outputs[:1] * (len(node.output) - len(outputs))  # unnamed optional outputs
        return outputs

    def check_arity(self, node: onnx.NodeProto) -> None:
        if not node.output or not node.output[0]:
            raise self.error("the node has no output")
        fewest, most = ARITY.get(node.op_type, (0, None))
        count = len(node.input)
        if count < fewest or (most is not None and count > most):
            expected = f"{fewest}" if fewest == most else f"{fewest} to {most}"
            raise self.error(f"has {count} inputs, '{node.op_type}' takes {expected}")
        if not all(node.input[:fewest]):
            raise self.error(f"input {node.input[:fewest].index('')} of '{node.op_type}' is required but empty")

    def visit_node(self, node: onnx.NodeProto) -> list[Value]:
        inputs = [self.lookup(name) for name in node.input if name]
        if node.op_type == "Identity":
            return [inputs[0]]  # a no-op anywhere: the graph's input, middle or output
        if node.op_type in AXES_INPUT_OPS and len(node.input) > 1 and node.input[1]:
            if not isinstance(self.lookup(node.input[1]), np.ndarray):  # opset 13+: axes as an input
                raise self.error("the axes input must be a constant (an initializer or a Constant)")
        if inputs and all(isinstance(v, np.ndarray) for v in inputs) and node.op_type != "Constant":
            return [self.fold_constant(node, inputs)]  # type: ignore[arg-type]
        if any(isinstance(v, Dropped) for v in inputs):
            if node.op_type in TAIL_OPS:
                return [self.drop(node, inputs)]
            raise self.error(
                f"uses the output of '{next(v for v in inputs if isinstance(v, Dropped)).node}', "
                "a float op that only the network's tail may contain"
            )
        if node.op_type in TAIL_OPS and node.op_type not in self.handlers:  # an op with a handler is compiled
            return [self.drop(node, inputs)]
        handler = self.handlers.get(node.op_type)
        if handler is None:
            raise self.error(f"unsupported op '{node.op_type}'")
        return handler(node)

    def lookup(self, name: str) -> Value:
        if name not in self.env:
            raise self.error(
                f"input '{name}' is neither a graph input, an initializer nor the output of an earlier node"
            )
        return self.env[name]

    def drop(self, node: onnx.NodeProto, inputs: list[Value]) -> Dropped:
        source = next((v for v in inputs if not isinstance(v, np.ndarray)), None)
        if source is None:
            raise self.error(f"'{node.op_type}' without a tensor input")
        source = source.source if isinstance(source, Dropped) else source
        # Only ops of no integer meaning may be left off: float ones, and shape/selection ops of one tensor
        # (the deployed network outputs that tensor whole). Leaving off a Concat of two integer tensors
        # would lose one of them.
        sources = {id(v.source if isinstance(v, Dropped) else v) for v in inputs if not isinstance(v, np.ndarray)}
        if len(sources) > 1:
            raise self.error(f"'{node.op_type}' of {len(sources)} different integer tensors is not supported (left off "
                             "at the network output like a float op, all but one of them would be lost)")
        if node.op_type in {"Sigmoid", "Softmax", "LogSoftmax"}:
            warn(f"float {node.op_type} at the network output is left off the deployed network, as DORY does",
                 f"{self.model_name}: node '{self.node_name}'")
        self.dropped_tail.append(self.node_name)
        return Dropped(source, self.node_name)

    def network_outputs(self) -> list[SSAValue]:
        results: list[SSAValue] = []
        for out in self.graph.output:
            value = self.lookup(out.name)
            if isinstance(value, Dropped):
                value = value.source
                if isinstance(value, Act | Pending):
                    self.record_layout(out.name, value.onnx_shape)
            if isinstance(value, np.ndarray):
                raise self.error(f"network output '{out.name}' is a constant")
            ssa = self.materialize(value, activation=False).ssa  # type: ignore[arg-type]
            if ssa not in results:
                results.append(ssa)
        return results

    # ----------------------------------------------------------------- values

    def initializer_array(self, init: onnx.TensorProto) -> np.ndarray:
        try:
            return numpy_helper.to_array(init)
        except Exception as e:  # onnx raises bare exceptions for malformed raw data
            raise DoryError(f"initializer '{init.name}' cannot be read ({e})", self.model_name) from None

    def loc(self) -> NameLoc:
        return name_loc(self.node_name)

    def emit(self, op: Operation) -> Operation:
        op.location = self.loc()
        self.ops.append(op)
        return op

    def constant(self, node: onnx.NodeProto) -> list[Value]:
        """`Constant` in any of its spellings: a tensor `value`, or (opset 12) `value_float(s)`/`value_int(s)`."""
        attrs = self.attributes(node)
        if "value" in attrs:
            tensor = attrs.value("value")
            if not isinstance(tensor, onnx.TensorProto):
                raise self.error("the attribute 'value' is not a tensor")
            return [self.tensor_array(tensor, "its value")]
        if "value_int" in attrs:
            return [np.array(attrs.int("value_int"), dtype=np.int64)]
        if "value_ints" in attrs:
            return [np.array(attrs.ints("value_ints"), dtype=np.int64)]
        if "value_float" in attrs:
            return [np.array(attrs.float("value_float"), dtype=np.float32)]
        if "value_floats" in attrs:
            values = attrs.value("value_floats")
            return [np.array(values, dtype=np.float32)]
        raise self.error("Constant without a 'value', 'value_int(s)' or 'value_float(s)' attribute is not supported")

    def tensor_array(self, tensor: onnx.TensorProto, what: str) -> np.ndarray:
        try:
            return numpy_helper.to_array(tensor)
        except Exception as e:  # noqa: BLE001 - onnx raises bare exceptions for malformed raw data
            raise self.error(f"{what} cannot be read ({describe_exception(e)})") from None

    def axes(self, node: onnx.NodeProto, rank: int) -> list[int] | None:
        """The `axes` of Unsqueeze/Squeeze/ReduceX: the attribute (opsets before 13/18) or the second
        input (from opset 13/18), which must then be a constant; normalized to [0, rank). None: not given."""
        attrs = self.attributes(node)
        if len(node.input) > 1 and node.input[1]:
            value = self.lookup(node.input[1])
            if not isinstance(value, np.ndarray):
                raise self.error("the axes input must be a constant (an initializer or a Constant)")
            if value.dtype.kind not in "iu" or value.ndim > 1:
                raise self.error(f"the axes input must be a 1-D integer tensor, got {value.dtype} of shape {list(value.shape)}")
            axes = [int(a) for a in value.reshape(-1)]
        elif "axes" in attrs:
            axes = attrs.ints("axes")
        else:
            return None
        normalized = [a + rank if a < 0 else a for a in axes]
        if any(not 0 <= a < rank for a in normalized) or len(set(normalized)) != len(normalized):
            raise self.error(f"axes {axes} are not distinct axes of a rank-{rank} tensor")
        return normalized

    def fold_constant(self, node: onnx.NodeProto, inputs: list[np.ndarray]) -> np.ndarray:
        """Evaluates ops on constants (shape arithmetic, casts) with numpy."""
        try:
            with np.errstate(all="ignore"):  # overflows show as non-integer or out-of-range values where read
                return np.asarray(self.evaluate_constant(node, inputs))  # numpy scalars (np.take) as arrays
        except (ValueError, TypeError, IndexError, OverflowError, MemoryError) as e:
            raise self.error(f"cannot evaluate '{node.op_type}' on its constant inputs ({describe_exception(e)})") from None

    def evaluate_constant(self, node: onnx.NodeProto, inputs: list[np.ndarray]) -> np.ndarray:
        op = node.op_type
        attrs = self.attributes(node)
        x = inputs[0]
        if op == "Cast":
            return x.astype(self.cast_dtype(attrs))
        binary = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract}
        if op in binary:
            return binary[op](inputs[0], inputs[1])
        if op == "Unsqueeze":
            axes = self.axes(node, x.ndim + self.unsqueeze_count(node, attrs))
            if axes is None:
                raise self.error("Unsqueeze without axes")
            return np.expand_dims(x, tuple(axes))
        if op == "Squeeze":
            axes = self.axes(node, x.ndim)
            return np.squeeze(x, axis=None if axes is None else tuple(axes))
        if op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"):
            axes = self.axes(node, x.ndim)
            if axes is None and attrs.int("noop_with_empty_axes", 0):
                return x
            reduce = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max, "ReduceMin": np.min,
                      "ReduceProd": np.prod}[op]
            result = reduce(x, axis=None if axes is None else tuple(axes), keepdims=bool(attrs.int("keepdims", 1)))
            return np.asarray(result).astype(x.dtype) if op != "ReduceMean" else np.asarray(result)
        if op == "Gather":
            if inputs[1].dtype.kind not in "iu":
                raise self.error("Gather indices must be integers")
            return np.take(x, inputs[1], axis=attrs.int("axis", 0))
        if op == "Concat":
            return np.concatenate(inputs, axis=attrs.int("axis"))
        if op == "Shape":
            return self.shape_of(x.shape, attrs)
        if op == "Reshape":
            return x.reshape(self.target_shape(x.shape, inputs[1], attrs))
        if op == "Flatten":
            axis = attrs.int("axis", 1, lo=-x.ndim, hi=x.ndim)
            axis = axis + x.ndim if axis < 0 else axis
            return x.reshape(int(np.prod(x.shape[:axis])), -1)
        if op == "Identity":
            return x
        raise self.error(f"cannot evaluate '{op}' on constant inputs")

    def unsqueeze_count(self, node: onnx.NodeProto, attrs: Attributes) -> int:
        """How many axes an Unsqueeze inserts (the output rank is the input's plus that)."""
        if len(node.input) > 1 and node.input[1]:
            value = self.lookup(node.input[1])
            return int(np.asarray(value).size) if isinstance(value, np.ndarray) else 0
        return len(attrs.ints("axes", []))

    def shape_of(self, shape: tuple[int, ...], attrs: Attributes) -> np.ndarray:
        """`Shape` (with opset 15's start/end) of a tensor whose shape is known."""
        start, end = attrs.int("start", 0), attrs.int("end", len(shape))
        return np.array(shape[slice(start, end)], dtype=np.int64)

    def shape(self, node: onnx.NodeProto) -> list[Value]:
        """`Shape` of an activation: its static shape, as a constant (for Reshape's shape arithmetic)."""
        value = self.lookup(node.input[0])
        if isinstance(value, Dropped):
            raise self.error("Shape of a value of the float tail is not supported")
        return [self.shape_of(value.onnx_shape, self.attributes(node))]  # type: ignore[union-attr]

    def cast_dtype(self, attrs: Attributes) -> np.dtype:
        to = attrs.int("to")
        if to == onnx.TensorProto.UNDEFINED or to not in onnx.TensorProto.DataType.values():
            raise self.error(f"Cast to the unknown ONNX type {to}")
        try:
            return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))
        except Exception:  # noqa: BLE001 - types numpy has no dtype for
            raise self.error(f"Cast to {onnx.TensorProto.DataType.Name(to)} is not supported") from None

    def attributes(self, node: onnx.NodeProto) -> Attributes:
        return Attributes(node, self.error)

    def integer_constant(self, value: np.ndarray, what: str, lo: int, hi: int) -> np.ndarray:
        value = np.asarray(value)
        if value.dtype.kind not in "iufb":
            raise self.error(f"{what} has type {value.dtype}; a numeric tensor is expected")
        if value.dtype.kind == "f":
            wide = value.astype(np.float64)
            if not np.all(np.isfinite(wide)) or not np.all(wide == np.round(wide)):
                raise self.error(f"{what} is not integer-valued")
            if wide.size and (wide.min() < lo or wide.max() > hi):  # before casting: no wrap-around
                raise self.error(f"{what} has values in [{wide.min():.6g}, {wide.max():.6g}], outside [{lo}, {hi}]")
            return np.round(wide).astype(np.int64)
        if value.dtype == np.uint64 and value.size and int(value.max()) > hi:
            raise self.error(f"{what} has values up to {int(value.max())}, outside [{lo}, {hi}]")
        ints = value.astype(np.int64)
        if ints.size and (ints.min() < lo or ints.max() > hi):
            raise self.error(f"{what} has values in [{ints.min()}, {ints.max()}], outside [{lo}, {hi}]")
        return ints

    def const_op(self, values: np.ndarray, element: IntegerType, name: str) -> SSAValue:
        ty = TensorType(element, list(values.shape))
        op = qnn.ConstantOp(_elements_attr(values, ty))
        op.location = name_loc(name)
        op.result.name_hint = ssa_name(name)
        self.constants.append(op)
        return op.result

    def input_name(self, node: onnx.NodeProto, index: int) -> str:
        return node.input[index]

    def pending(self, chain: Chain, onnx_shape: tuple[int, ...]) -> Pending:
        """A chain that the current node extended: its requant will carry this node's name."""
        return Pending(dataclasses.replace(chain, where=self.node_name), onnx_shape)

    def as_chain(self, value: Value) -> Pending:
        if isinstance(value, Pending):
            return value
        if isinstance(value, Act):
            return self.pending(Chain.over(value), value.onnx_shape)
        raise self.error("expected a tensor operand")

    def activation(self, name: str) -> Act:
        """An operand that must be an activation tensor of the IR (8 or 16 bits)."""
        value = self.lookup(name)
        if isinstance(value, np.ndarray):
            raise self.error(f"operand '{name}' is a constant where an activation is expected")
        act = self.materialize(value, activation=True)
        self.env[name] = act
        width = qnn.element_type(act.ssa).width.data
        if width > 16:
            raise self.error(f"operand '{name}' is a {width}-bit tensor; activations must have at most 16 bits")
        return act

    def spatial_activation(self, name: str) -> Act:
        """An activation a conv, pool or pad reads as channels × height × width."""
        act = self.activation(name)
        if is_feature_last(act.onnx_shape):
            raise self.error(f"operand '{name}' holds rows of features {list(act.onnx_shape)} (the last axis is the "
                             f"features, as a MatMul/Gemm reads it); a {self.node_op} reads axis 1 as channels")
        return act

    # ----------------------------------------------------------------- requantization

    def materialize(self, value: Act | Pending, activation: bool) -> Act:
        """Emits the pending chain of a value as `qnn.requant` ops."""
        if isinstance(value, Act):
            return value
        chain = value.chain.simplified()
        if isinstance(chain, Act):
            if activation and qnn.element_type(chain.ssa).width.data > 16:
                # An int32 result whose chain does nothing (an average pool's window sum scaled by
                # exactly 1, a 0/1 selection conv) read as an activation: requantized by 1 to the
                # narrowest type that holds its range.
                if id(value.chain) not in self.materialized:
                    act = self.emit_requant(Chain.over(chain), chain, value.onnx_shape, activation)
                    self.materialized[id(value.chain)] = (value.chain, act)
                return self.materialized[id(value.chain)][1]
            return chain
        return self.emit_chain(chain, value.onnx_shape, activation)  # type: ignore[arg-type]

    def emit_chain(self, chain: Chain, onnx_shape: tuple[int, ...], activation: bool) -> Act:
        if id(chain) in self.materialized:
            return self.materialized[id(chain)][1]
        source = chain.x
        if isinstance(source, Chain):
            simplified = source.simplified()
            source = simplified if isinstance(simplified, Act) else self.emit_chain(simplified, onnx_shape, False)  # type: ignore[arg-type]
        assert isinstance(source, Act)
        consumer, self.node_name = self.node_name, chain.where
        try:
            act = self.emit_requant(chain, source, onnx_shape, activation)
        finally:
            self.node_name = consumer
        self.materialized[id(chain)] = (chain, act)
        return act

    def emit_requant(self, chain: Chain, source: Act, onnx_shape: tuple[int, ...], activation: bool) -> Act:
        if not chain.is_integral():
            raise self.error(f"a non-integer value (pending scale {chain.f}) flows into this node")
        scale, divisor = chain.f.numerator, chain.f.denominator
        t1 = source.range.affine(chain.k, chain.l)
        t2 = t1.scaled(scale)
        widest = max(abs(t1.min()), abs(t1.max()), abs(t2.min()), abs(t2.max()))
        if widest >= 2**63:
            raise self.error(f"requantization needs more than 64 bits (|value| up to {widest})")
        intermediate = 32 if widest <= INT32_MAX else 64
        exact = t2.divided(divisor)
        out_range = exact.clipped(chain.lo, chain.hi)
        if chain.lo is not None and chain.hi is not None:
            lo, hi = chain.lo, chain.hi
        else:
            lo, hi = self.unclipped_bounds(out_range, activation)
            out_range = out_range.clipped(lo, hi)
        element = self.result_element_type(lo, hi, activation)
        rounding = chain.rounding or qnn.Rounding.FLOOR
        if rounding == qnn.Rounding.TRUNC and (lo >= 0 or divisor == 1):
            rounding = qnn.Rounding.FLOOR  # equal after clipping at lo >= 0, so use the cheaper shift
        channels = qnn.shape_of(source.ssa)[1]
        # mul and add share one width: the kernels read both with the wider one's element size.
        wide = not all(INT32_MIN <= int(v) <= INT32_MAX for v in [*chain.k.reshape(-1), *chain.l.reshape(-1)])
        mul = self.requant_constant(chain.k, channels, "mul", wide)
        add = self.requant_constant(chain.l, channels, "add", wide)
        ty = TensorType(element, qnn.shape_of(source.ssa))
        op = qnn.RequantOp(
            source.ssa, mul, add, ty, scale=scale, divisor=divisor, min=lo, max=hi,
            rounding=rounding, intermediate_bits=intermediate,
        )
        self.emit(op)
        return Act(op.output, out_range, onnx_shape)

    def unclipped_bounds(self, out_range: Range, activation: bool) -> tuple[int, int]:
        """Bounds for a requant the graph does not clip: an activation's are those of the narrowest
        type holding its propagated range (8 or 16 bits: exact; beyond 16 bits an error), or with
        `saturate` 8 bits, saturating where the range exceeds them."""
        lo, hi = out_range.min(), out_range.max()
        if activation and not self.saturate:
            ty = qnn.narrowest_activation_type(lo, hi)
            if ty is None:
                raise self.error(f"values may reach [{lo}, {hi}] and the graph does not clip them: beyond the "
                                 "16-bit activations the kernels read (--activations saturate saturates to 8 bits "
                                 "as DORY does)")
            return qnn.int_range(ty)
        if activation:
            type_lo, type_hi = (0, 255) if lo >= 0 else (-128, 127)
            if lo < type_lo or hi > type_hi:
                warn(
                    f"values may reach [{lo}, {hi}] and the graph does not clip them; "
                    f"saturating to [{type_lo}, {type_hi}] as DORY's 8-bit kernels do",
                    f"{self.model_name}: node '{self.node_name}'",
                )
            return type_lo, type_hi
        if lo < INT32_MIN or hi > INT32_MAX:
            raise self.error(f"unclipped values may reach [{lo}, {hi}], beyond 32 bits")
        return max(lo, INT32_MIN), min(hi, INT32_MAX)

    @staticmethod
    def result_element_type(lo: int, hi: int, activation: bool) -> IntegerType:
        """The narrowest type of a requant's clip range [lo, hi]: 8 bits, 16 bits for an activation
        (the exporter's own integers exceed 8 bits), else an int32 intermediate."""
        narrowest = qnn.narrowest_activation_type(lo, hi)
        if narrowest is not None and (activation or narrowest.width.data == 8):
            return narrowest
        return SI32

    def requant_constant(self, values: np.ndarray, channels: int, what: str, wide: bool = False) -> SSAValue:
        """Per tensor [1], per channel [C], or — a [R, C] / [R, 1] block over the rows of a GEMM
        (`channel_vector`) — per row: [R, C] / [R, 1], [R, 1] when every row's values are equal."""
        block = np.asarray(values)
        if block.ndim == 2:
            if all(len({int(v) for v in row}) == 1 for row in block):
                block = block[:, :1]
            if len({tuple(int(v) for v in row) for row in block}) == 1:
                block = block[0]  # equal on every row after all
        ints = [int(v) for v in block.reshape(-1)]
        shape: tuple[int, ...] = (len(ints),)
        if block.ndim == 2:
            shape = block.shape
            if shape[1] not in (1, channels):
                raise self.error(f"per-row {what} has {shape[1]} entries per row for {channels} channels")
        elif len(set(ints)) == 1:
            ints, shape = ints[:1], (1,)
        elif len(ints) != channels:
            raise self.error(f"per-channel {what} has {len(ints)} entries for {channels} channels")
        fits32 = all(INT32_MIN <= v <= INT32_MAX for v in ints)
        if not all(-(2**63) <= v < 2**63 for v in ints):
            raise self.error(f"requantization {what} exceeds 64 bits")
        return self.const_op(np.array(ints, dtype=np.int64).reshape(shape), SI64 if wide or not fits32 else SI32,
                             f"{self.node_name}.{what}")

    def channel_vector(self, const: np.ndarray, onnx_shape: tuple[int, ...], what: str) -> np.ndarray:
        """A constant that varies at most along the channel axis (axis 1: the channels of N×C×H×W and
        N×C×W tensors; the last axis: the columns — output features — of an M×N or B×M×N GEMM
        output) → exact integer vector; on the rows of a GEMM also one that varies over the rows.

        A constant with more axes than the tensor is accepted when the extra leading axes are 1, and one
        that has a size > 1 along another axis when it does not vary along it (it then broadcasts as
        per-channel or per-tensor). One that varies over the R rows of a GEMM output ([M, 1], [M, N],
        [B, M, N], ...) → the 2-D block [R, N] (per element) or [R, 1] (per row), row r = IR row r
        (`tensor_layout.py`): requant constants of that shape vary over the layer's output rows
        (`qnn.RequantOp`). One that varies along the height or width of a conv's tensor has no form
        for the kernels: a one-line error.
        """
        const = np.asarray(const)
        if const.dtype.kind not in "iufb":
            raise self.error(f"{what} has type {const.dtype}; a numeric tensor is expected")
        while const.ndim > len(onnx_shape) and const.shape[0] == 1:
            const = const.reshape(const.shape[1:])
        shape = (1,) * (len(onnx_shape) - const.ndim) + tuple(const.shape)
        if len(shape) != len(onnx_shape) or any(s not in (1, t) for s, t in zip(shape, onnx_shape, strict=True)):
            raise self.error(f"{what} of shape {list(const.shape)} does not broadcast to the tensor {list(onnx_shape)}")
        full = const.reshape(shape)
        over_rows = False
        for axis in range(len(shape)):
            if axis == channel_axis(onnx_shape) or shape[axis] == 1:
                continue
            first = np.take(full, [0], axis=axis)
            if not np.array_equal(full, np.broadcast_to(first, full.shape), equal_nan=False):
                if not is_feature_last(onnx_shape):
                    raise self.error(self.varying_constant_message(what, const.shape, onnx_shape, axis))
                over_rows = True
                continue
            full = first
        ints = self.integer_constant(full.astype(np.float64) if full.dtype.kind == "f" else full, what, -(2**62), 2**62)
        if over_rows:
            rows = np.broadcast_to(ints, (*onnx_shape[:-1], ints.shape[-1])).reshape(-1, ints.shape[-1])
            return as_int_vector(rows).reshape(rows.shape)
        return as_int_vector(ints)

    @staticmethod
    def varying_constant_message(what: str, shape: tuple[int, ...], onnx_shape: tuple[int, ...], axis: int) -> str:
        names = {2: "height", 3: "width"} if len(onnx_shape) == 4 else {2: "width"}
        along = names.get(axis, f"axis {axis}")
        return (f"{what} of shape {list(shape)} varies along the {along} of the tensor {list(onnx_shape)}; "
                "only per-channel (axis 1) or per-tensor constants are supported")

    # ----------------------------------------------------------------- elementwise

    def split_const(self, node: onnx.NodeProto) -> tuple[Pending, np.ndarray] | None:
        a, b = self.lookup(node.input[0]), self.lookup(node.input[1])
        if isinstance(b, np.ndarray) and not isinstance(a, np.ndarray):
            return self.as_chain(a), b
        if isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            return self.as_chain(b), a
        return None

    def onnx_is_int(self, const: np.ndarray, pending: Pending) -> bool:
        return pending.chain.onnx_int or const.dtype.kind in "iu"

    def mul(self, node: onnx.NodeProto) -> list[Value]:
        split = self.split_const(node)
        if split is None:
            raise self.error("multiplication of two tensors is not supported")
        pending, const = split
        vec = self.channel_vector(const, pending.onnx_shape, "multiplier")
        chain = pending.chain.mul(vec if vec.size > 1 else int(vec[0]))
        chain = dataclasses.replace(chain, onnx_int=self.onnx_is_int(const, pending))
        return [self.pending(chain, pending.onnx_shape)]

    def div(self, node: onnx.NodeProto) -> list[Value]:
        a, b = self.lookup(node.input[0]), self.lookup(node.input[1])
        if isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
            raise self.error("only division of a tensor by a constant is supported")
        pending = self.as_chain(a)
        if b.size != 1:
            raise self.error(f"divisor must be a scalar, got shape {list(b.shape)}")
        divisor = self.integer_constant(b.reshape(-1), "divisor", -(2**62), 2**62)
        if int(divisor[0]) == 0:
            raise self.error("division by zero")
        chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(b, pending))
        return [self.pending(chain.div(int(divisor[0])), pending.onnx_shape)]

    def add(self, node: onnx.NodeProto) -> list[Value]:
        if any(a.name.startswith(("in1_", "in2_", "out_")) for a in node.attribute):
            return [self.quantlab_add(node)]
        split = self.split_const(node)
        if split is not None:
            pending, const = split
            vec = self.channel_vector(const, pending.onnx_shape, "offset")
            chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(const, pending))
            return [self.pending(chain.add(vec), pending.onnx_shape)]
        if len(node.input) != 2:
            raise self.error("Add must have two inputs")
        sides = [self.add_operand(name) for name in node.input]
        return [self.emit_add(sides, (0, 0))]

    def add_operand(self, name: str) -> tuple[Act, int, int]:
        """A residual branch `x·m (+ a)` over an 8-bit tensor → that tensor and the per-input (m, a)."""
        value = self.lookup(name)
        if isinstance(value, np.ndarray):
            raise self.error(f"operand '{name}' is a constant where an activation is expected")
        if isinstance(value, Pending):
            chain = value.chain
            per_tensor = chain.k.size == 1 and chain.l.size == 1
            if per_tensor and chain.rounding is None and chain.lo is None and chain.hi is None and chain.f.denominator == 1:
                source = chain.x if isinstance(chain.x, Act) else self.materialize(
                    Pending(chain.x, value.onnx_shape), activation=True  # type: ignore[arg-type]
                )
                if qnn.element_type(source.ssa).width.data <= 16:
                    m = chain.f.numerator
                    return source, int(chain.k[0]) * m, int(chain.l[0]) * m
        return self.activation(name), 1, 0

    def quantlab_add(self, node: onnx.NodeProto) -> Value:
        """Quantlab's requantizing Add: each input `floor((x·mul + add) / 2^shift)`, summed, then `out_*`."""
        attrs = self.attributes(node)
        if len(node.input) != 2:
            raise self.error(f"Quantlab's requantizing Add needs two inputs, got {len(node.input)}")
        sides: list[tuple[Act, int, int]] = []
        shifts: list[int] = []
        for i, name in enumerate(node.input, start=1):
            act = self.activation(name)
            if attrs.int(f"in{i}_rq", 1, lo=0, hi=1):
                sides.append((act, attrs.int(f"in{i}_mul", lo=-INT32_MAX, hi=INT32_MAX),
                              attrs.int(f"in{i}_add", lo=-INT32_MAX, hi=INT32_MAX)))
                shifts.append(attrs.int(f"in{i}_shift", lo=0, hi=31))
            else:
                sides.append((act, 1, 0))
                shifts.append(0)
        total = self.emit_add(sides, (shifts[0], shifts[1]))
        chain = Chain.over(total)
        if attrs.int("out_rq", 0, lo=0, hi=1):
            out_mul = attrs.int("out_mul", lo=-INT32_MAX, hi=INT32_MAX)
            out_add = attrs.int("out_add", lo=-INT32_MAX, hi=INT32_MAX)
            out_shift = attrs.int("out_shift", lo=0, hi=62)
            chain = Chain(total, as_int_vector([out_mul]), as_int_vector([out_add]), Fraction(1, 2**out_shift)).floor()
        levels = attrs.int("out_n_levels", 256, lo=2, hi=2**32)
        return self.pending(chain.clip(0, levels - 1), total.onnx_shape)

    def emit_add(self, sides: list[tuple[Act, int, int]], shifts: tuple[int, int]) -> Act:
        (lhs, m1, a1), (rhs, m2, a2) = sides
        if qnn.shape_of(lhs.ssa) != qnn.shape_of(rhs.ssa):
            raise self.error(
                f"operands have different shapes {qnn.shape_of(lhs.ssa)} and {qnn.shape_of(rhs.ssa)} (broadcasting is not supported)"
            )
        if is_feature_last(lhs.onnx_shape) != is_feature_last(rhs.onnx_shape):
            # Equal IR shapes, different ONNX layouts (rows of features vs channels first): their
            # elements do not correspond one to one.
            raise self.error(f"operands {list(lhs.onnx_shape)} and {list(rhs.onnx_shape)} have different layouts "
                             "(one holds rows of features, the other channels first)")
        ty = TensorType(SI32, qnn.shape_of(lhs.ssa))
        op = self.emit(qnn.AddOp(lhs.ssa, rhs.ssa, ty, (m1, m2), (a1, a2), shifts))
        r1 = lhs.range.affine(as_int_vector([m1]), as_int_vector([a1])).divided(2 ** shifts[0])
        r2 = rhs.range.affine(as_int_vector([m2]), as_int_vector([a2])).divided(2 ** shifts[1])
        total = Range.scalar(r1.min() + r2.min(), r1.max() + r2.max())
        if total.min() < INT32_MIN or total.max() > INT32_MAX:
            raise self.error("the sum may overflow 32 bits")
        return Act(op.results[0], total, lhs.onnx_shape)

    def sub(self, node: onnx.NodeProto) -> list[Value]:
        """`a - b`: a constant folds into the chain's offset (negated); two tensors are a residual
        add whose second input has the multiplier -1 (the add kernel takes any integer multiplier)."""
        a, b = self.lookup(node.input[0]), self.lookup(node.input[1])
        if isinstance(b, np.ndarray) and not isinstance(a, np.ndarray):
            pending = self.as_chain(a)
            vec = self.channel_vector(b, pending.onnx_shape, "subtrahend")
            chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(b, pending))
            return [self.pending(chain.add(-vec), pending.onnx_shape)]
        if isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            pending = self.as_chain(b)
            vec = self.channel_vector(a, pending.onnx_shape, "minuend")
            chain = dataclasses.replace(pending.chain, onnx_int=self.onnx_is_int(a, pending))
            return [self.pending(chain.mul_affine(as_int_vector([-1])).add(vec), pending.onnx_shape)]
        (lhs, m1, a1), (rhs, m2, a2) = (self.add_operand(name) for name in node.input)
        return [self.emit_add([(lhs, m1, a1), (rhs, -m2, -a2)], (0, 0))]

    # ----------------------------------------------------------------- reductions and data movement
    #
    # ReduceSum/ReduceMean over channels, Slice and Concat are computed by convolutions whose weights
    # are 0/1 (sums, one-hot selections, identity placements into a zero-padded frame): exact by
    # construction, tiled and run by the existing conv kernels. Slices and concats so pay MACs where a
    # copy would do (a DMA-only layer is the faster form, not built yet).

    def reduce_sum(self, node: onnx.NodeProto) -> list[Value]:
        return [self.reduce(node, mean=False)]

    def reduce_mean(self, node: onnx.NodeProto) -> list[Value]:
        return [self.reduce(node, mean=True)]

    def reduce(self, node: onnx.NodeProto, mean: bool) -> Value:
        """Integer ReduceSum/ReduceMean: the exact int32 sum; the mean rounds half up,
        floor((Σ + n/2) / n), as Deeploy's integer kernels and goldens do."""
        x = self.spatial_activation(node.input[0])
        rank = len(x.onnx_shape)
        attrs = self.attributes(node)
        axes = self.axes(node, rank)
        if axes is None:
            if attrs.int("noop_with_empty_axes", 0, lo=0, hi=1):
                return x
            axes = list(range(rank))
        keepdims = attrs.int("keepdims", 1, lo=0, hi=1)
        reduced = sorted(set(axes) - {0})  # N = 1
        if not reduced:
            return x
        kept_shape = tuple(1 if a in reduced else d for a, d in enumerate(x.onnx_shape))
        n, c, *spatial = qnn.shape_of(x.ssa)
        if len(spatial) == 2:
            h, w = spatial
            kernel = [h if (rank == 4 and 2 in reduced) else 1, w if (3 in reduced or (rank == 3 and 2 in reduced)) else 1]
            out_c = 1 if 1 in reduced else c
            out_ir = [n, out_c, h // kernel[0], w // kernel[1]]
            if 1 in reduced:  # over channels (and maybe space): one conv with all-ones weights
                ones = np.ones((1, c, kernel[0], kernel[1]), dtype=np.int64)
                op = self.emit(qnn.ConvOp(x.ssa, self.const_op(ones, SI8, f"{self.node_name}.ones"), None,
                                          TensorType(SI32, out_ir), [1, 1], [0, 0, 0, 0], [1, 1], 1))
            else:
                op = self.emit(qnn.SumPoolOp(x.ssa, TensorType(SI32, out_ir), kernel, [1, 1], [0, 0, 0, 0]))
        else:  # N×K: the sum of the K features
            ones = np.ones((1, c), dtype=np.int64)
            op = self.emit(qnn.LinearOp(x.ssa, self.const_op(ones, SI8, f"{self.node_name}.ones"), None,
                                        TensorType(SI32, [n, 1])))
        count = int(np.prod([x.onnx_shape[a] for a in reduced]))
        total = Range.scalar(min(x.range.min(), 0) * count, max(x.range.max(), 0) * count)
        chain = Chain.over(Act(op.results[0], total, kept_shape))
        if mean and self.rounded_later(node):
            chain = chain.mul(Fraction(1, count))  # the exact mean, as AveragePool: a later op rounds it
        elif mean:
            chain = chain.add(as_int_vector([count // 2])).mul(Fraction(1, count)).floor()
        result = self.pending(chain, kept_shape)
        if keepdims:
            return result
        squeezed = tuple(d for a, d in enumerate(x.onnx_shape) if a not in reduced)
        return self.squeezed(node, result, squeezed)

    def rounded_later(self, node: onnx.NodeProto) -> bool:
        """Whether every consumer continues the arithmetic up to its own rounding (QuantLib's float
        tensors: ReduceMean → RequantShift keeps the exact mean, like AveragePool); a mean read as an
        integer (network output, a layer's input) is Deeploy's integer mean, rounded half up."""
        consumers = [n for n in self.graph.node if node.output[0] in n.input]
        return bool(consumers) and all(n.op_type in {"RequantShift", "Mul", "Div", "Floor", "Add", "Sub", "Cast"}
                                       for n in consumers)

    def squeezed(self, node: onnx.NodeProto, value: Pending, onnx_shape: tuple[int, ...]) -> Value:
        """A result whose ONNX shape lost axes (keepdims=0). At the network output only the element
        order matters (row-major NCHW = the IR's); a consumer would read the ONNX axes as other
        layout axes (e.g. H as channels), which the IR does not reorder: refused by name."""
        consumers = [n for n in self.graph.node if node.output[0] in n.input and n.op_type != "Identity"]
        if consumers:
            raise self.error(f"the reduced tensor {list(onnx_shape)} (keepdims=0) feeds '{consumers[0].name}': "
                             "only a network output may drop axes; export with keepdims=1")
        return Pending(value.chain, onnx_shape)

    def slice(self, node: onnx.NodeProto) -> list[Value]:
        """Slice with positive steps along channels, height and width: a convolution with one-hot
        weights. Along a spatial axis keeping n of `size` positions from `start` by `step`, the
        kernel spans size - (n-1)·step positions with its 1 at `start` and the conv's stride is
        `step`: output y reads input start + y·step, and exactly n outputs fit."""
        x = self.spatial_activation(node.input[0])
        rank = len(x.onnx_shape)
        starts, ends, axes, steps = self.slice_arguments(node, rank)
        selected = [list(range(d)) for d in x.onnx_shape]
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            if step <= 0:
                raise self.error(f"Slice with step {step} is not supported (only positive steps)")
            size = x.onnx_shape[axis]
            start = max(0, min(size, start + size if start < 0 else start))
            end = max(0, min(size, end + size if end < 0 else end))
            selected[axis] = list(range(start, end, step))
            if not selected[axis]:
                raise self.error(f"Slice keeps nothing of axis {axis} (size {size}, [{start}, {end}) by {step})")
        if selected[0] != list(range(x.onnx_shape[0])):
            raise self.error("Slice along the batch axis is not supported")
        onnx_shape = tuple(len(s) for s in selected)
        if onnx_shape == x.onnx_shape:
            return [x]
        if rank not in (3, 4):
            raise self.error(f"Slice of a rank-{rank} tensor is not supported (N×C×W or N×C×H×W)")
        n, c, h, w = qnn.shape_of(x.ssa)
        rows, cols = ([0], selected[2]) if rank == 3 else (selected[2], selected[3])
        extents, strides = [], []
        for kept, size in ((rows, h), (cols, w)):
            step = kept[1] - kept[0] if len(kept) > 1 else 1
            extents.append(size - (len(kept) - 1) * step)
            strides.append(step)
        channels = selected[1]
        depthwise = channels == list(range(c))
        weights = np.zeros((len(channels), 1 if depthwise else c, extents[0], extents[1]), dtype=np.int64)
        for o, ch in enumerate(channels):
            weights[o, 0 if depthwise else ch, rows[0], cols[0]] = 1
        return [self.emit_selection(x, weights, strides, [0, 0, 0, 0], c if depthwise else 1, onnx_shape)]

    def slice_arguments(self, node: onnx.NodeProto, rank: int) -> tuple[list[int], ...]:
        """(starts, ends, axes, steps): inputs from opset 10, attributes before."""
        if len(node.input) == 1:
            attrs = self.attributes(node)
            starts, ends = attrs.ints("starts"), attrs.ints("ends")
            axes = attrs.ints("axes", list(range(len(starts))))
            steps = [1] * len(starts)
        else:
            if len(node.input) < 3:
                raise self.error("Slice needs starts and ends")
            values = []
            for index, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
                if index >= len(node.input) or not node.input[index]:
                    values.append(None)
                    continue
                value = self.lookup(node.input[index])
                if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu" or value.ndim != 1:
                    raise self.error(f"Slice {what} must be a 1-D integer constant")
                values.append([int(v) for v in value])
            starts, ends, axes, steps = values
            axes = axes if axes is not None else list(range(len(starts)))
            steps = steps if steps is not None else [1] * len(starts)
        if not (len(starts) == len(ends) == len(axes) == len(steps)):
            raise self.error("Slice starts, ends, axes and steps differ in length")
        axes = [a + rank if a < 0 else a for a in axes]
        if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
            raise self.error(f"Slice axes {axes} are not distinct axes of a rank-{rank} tensor")
        return starts, ends, axes, steps

    def emit_selection(self, x: Act, weights: np.ndarray, strides: list[int], pads: list[int], groups: int,
                       onnx_shape: tuple[int, ...]) -> Act:
        """A conv of 0/1 weights that moves values without changing them, requantized by 1 back to
        an 8-bit activation: the result keeps x's range (and 0, which padding brings in)."""
        n, c, h, w = qnn.shape_of(x.ssa)
        kh, kw = weights.shape[2], weights.shape[3]
        ho = qnn.window_output_size(h, kh, strides[0], pads[0], pads[2])
        wo = qnn.window_output_size(w, kw, strides[1], pads[1], pads[3])
        op = self.emit(qnn.ConvOp(x.ssa, self.const_op(weights, SI8, f"{self.node_name}.select"), None,
                                  TensorType(SI32, [n, weights.shape[0], ho, wo]), strides, pads, [1, 1], groups))
        moved = Range.scalar(min(x.range.min(), 0), max(x.range.max(), 0))
        accumulator = Act(op.results[0], moved, onnx_shape)
        return self.emit_requant(self.pending(Chain.over(accumulator), onnx_shape).chain, accumulator, onnx_shape,
                                 activation=True)

    def concat(self, node: onnx.NodeProto) -> list[Value]:
        """Concat along channels, height or width: each input placed into the output's frame by a
        0/1 conv (channels: one-hot pointwise weights to its channel offset; spatial: an identity
        depthwise conv zero-padded to its offset), the placed tensors summed by adds — every
        position has exactly one non-zero term, so the sum is the concatenation."""
        values = [self.lookup(name) for name in node.input if name]
        if any(isinstance(v, np.ndarray) for v in values):
            raise self.error("Concat of a constant with activations is not supported")
        if len(values) == 1:
            return [values[0]]
        acts = [self.spatial_activation(name) for name in node.input if name]
        rank = len(acts[0].onnx_shape)
        axis = self.attributes(node).int("axis", lo=-rank, hi=rank - 1)
        axis = axis + rank if axis < 0 else axis
        for act in acts:
            if len(act.onnx_shape) != rank or any(
                    a != b for i, (a, b) in enumerate(zip(act.onnx_shape, acts[0].onnx_shape, strict=True)) if i != axis):
                raise self.error(f"Concat inputs {[list(a.onnx_shape) for a in acts]} differ off axis {axis}")
        if axis == 0 or rank not in (3, 4):
            raise self.error(f"Concat along axis {axis} of rank-{rank} tensors is not supported "
                             "(channels, height or width of N×C×W or N×C×H×W)")
        total = sum(a.onnx_shape[axis] for a in acts)
        onnx_shape = tuple(total if i == axis else d for i, d in enumerate(acts[0].onnx_shape))
        ir_axis = 3 if rank == 3 and axis == 2 else axis
        placed: list[Act] = []
        offset = 0
        for act in acts:
            n, c, h, w = qnn.shape_of(act.ssa)
            size = qnn.shape_of(act.ssa)[ir_axis]
            if ir_axis == 1:
                weights = np.zeros((total, c, 1, 1), dtype=np.int64)
                weights[np.arange(offset, offset + c), np.arange(c), 0, 0] = 1
                placed.append(self.emit_selection(act, weights, [1, 1], [0, 0, 0, 0], 1, onnx_shape))
            else:
                before, after = offset, total - offset - size
                pads = [before, 0, after, 0] if ir_axis == 2 else [0, before, 0, after]
                placed.append(self.emit_selection(act, np.ones((c, 1, 1, 1), dtype=np.int64), [1, 1], pads, c,
                                                  onnx_shape))
            offset += size
        union = Range.scalar(min(a.range.min() for a in placed), max(a.range.max() for a in placed))
        result = placed[0]
        for other in placed[1:]:
            total_act = Act(self.emit_add([(result, 1, 0), (other, 1, 0)], (0, 0)).ssa, union, onnx_shape)
            result = self.emit_requant(self.pending(Chain.over(total_act), onnx_shape).chain, total_act, onnx_shape,
                                       activation=True)
        return [result]

    def floor(self, node: onnx.NodeProto) -> list[Value]:
        pending = self.as_chain(self.lookup(node.input[0]))
        return [self.pending(pending.chain.floor(), pending.onnx_shape)]

    def cast(self, node: onnx.NodeProto) -> list[Value]:
        to = self.attributes(node).int("to")
        pending = self.as_chain(self.lookup(node.input[0]))
        if to not in onnx.TensorProto.DataType.values() or to == onnx.TensorProto.UNDEFINED:
            raise self.error(f"Cast to the unknown ONNX type {to}")
        if to not in ONNX_FLOAT_TYPES and to not in (ONNX_INT64, onnx.TensorProto.INT32):
            raise self.error(f"Cast to {onnx.TensorProto.DataType.Name(to)} is not supported")
        return [self.pending(pending.chain.cast(to not in ONNX_FLOAT_TYPES), pending.onnx_shape)]

    def clip(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        lo = attrs.float("min") if "min" in attrs else None
        hi = attrs.float("max") if "max" in attrs else None
        if len(node.input) > 1 and node.input[1]:
            lo = self.scalar_constant(node.input[1], "clip min")
        if len(node.input) > 2 and node.input[2]:
            hi = self.scalar_constant(node.input[2], "clip max")
        bounds = []
        for bound, what in ((lo, "min"), (hi, "max")):
            if bound is not None and np.isnan(float(bound)):
                raise self.error(f"clip {what} is NaN")
            if bound is None or abs(float(bound)) >= 2**62:  # ±FLT_MAX means unbounded
                bounds.append(None)
            elif float(bound) != round(float(bound)):
                raise self.error(f"clip {what} {bound} is not an integer")
            else:
                bounds.append(int(round(float(bound))))
        pending = self.as_chain(self.lookup(node.input[0]))
        return [self.pending(pending.chain.clip(bounds[0], bounds[1]), pending.onnx_shape)]

    def relu(self, node: onnx.NodeProto) -> list[Value]:
        pending = self.as_chain(self.lookup(node.input[0]))
        return [self.pending(pending.chain.clip(0, None), pending.onnx_shape)]

    def requant_shift(self, node: onnx.NodeProto) -> list[Value]:
        """QuantLib/Deeploy `RequantShift(x, mul, add)`: clip(round((x·mul + add) / div)) to n levels.

        The rounding (to nearest, ties up) is what reproduces the MLPerf Tiny activations.
        """
        if len(node.input) != 3:
            raise self.error(f"RequantShift needs inputs (x, mul, add), got {len(node.input)}")
        attrs = self.attributes(node)
        # Deeploy accepts either spelling of the level count; QuantLib writes n_levels_out.
        levels_name = "n_levels_out" if "n_levels_out" in attrs or "n_levels" not in attrs else "n_levels"
        for name in ("div", levels_name):
            if name not in attrs:
                raise self.error(f"RequantShift without the '{name}' attribute")
        div = attrs.int("div")
        levels = attrs.int(levels_name)
        signed = attrs.int("signed", 0, lo=0, hi=1)
        if div <= 0 or div >= 2**62:
            raise self.error(f"RequantShift div must be positive (and below 2^62), got {div}")
        if not 2 <= levels <= 2**32:
            raise self.error(f"RequantShift {levels_name} must be in [2, 2^32], got {levels}")
        pending = self.as_chain(self.lookup(node.input[0]))
        per_batch = self.batch_requant_shift(node, pending, div, levels, signed)
        if per_batch is not None:
            return [per_batch]
        scaled = []
        for index, what in ((1, "mul"), (2, "add")):
            const = self.lookup(node.input[index])
            if not isinstance(const, np.ndarray):
                raise self.error(f"RequantShift {what} must be a constant")
            scaled.append(self.channel_vector(self.channel_first(const, pending.onnx_shape), pending.onnx_shape, what))
        mul, add = scaled
        # QuantLib rounds to nearest, ties up: floor((x·mul + add) / div + 1/2), kept exact for odd div too.
        if div % 2:
            mul, add, div = mul * 2, add * 2 + div, div * 2
        else:
            add = add + div // 2
        chain = pending.chain.mul_affine(mul).add(add).div(div).floor()
        lo, hi = (-(levels // 2), levels // 2 - 1) if signed else (0, levels - 1)
        return [self.pending(chain.clip(lo, hi), pending.onnx_shape)]

    def batch_requant_shift(self, node: onnx.NodeProto, pending: Pending, div: int, levels: int,
                            signed: int) -> Act | None:
        """A RequantShift right after a `qnn.matmul` whose mul/add vary along the batch axes (one
        value per batch slice, as Deeploy's `[1, B, 1, 1]`): a `qnn.requant` with `[G, 1]` constants,
        G = the number of batch slices. None when the constants do not vary per batch slice (the
        usual per-column / per-tensor path then applies)."""
        source = pending.chain.simplified()
        shape = pending.onnx_shape
        if not isinstance(source, Act) or not isinstance(source.ssa.owner, qnn.MatMulOp) or len(shape) < 3:
            return None
        values = []
        for index, what in ((1, "mul"), (2, "add")):
            const = self.lookup(node.input[index])
            if not isinstance(const, np.ndarray) or const.dtype.kind not in "iufb":
                return None  # the usual path says what is wrong
            while const.ndim > len(shape) and const.shape[0] == 1:
                const = const.reshape(const.shape[1:])
            if const.ndim > len(shape) or any(c not in (1, t) for c, t in zip(const.shape[::-1], shape[::-1])):
                return None
            values.append(np.broadcast_to(const, shape))
        batch_axes = tuple(range(len(shape) - 2))
        if all(np.array_equal(v, np.broadcast_to(v[(0,) * len(batch_axes)], v.shape)) for v in values):
            return None  # the same in every batch slice
        groups = int(np.prod(shape[:-2]))
        per_group = []
        for what, full in zip(("mul", "add"), values, strict=True):
            slices = full.reshape(groups, -1)
            if not (slices == slices[:, :1]).all():
                raise self.error(f"RequantShift {what} varies per batch slice and within a slice (shape "
                                 f"{list(full.shape)}); constants per batch slice must be one value per slice")
            per_group.append(self.integer_constant(slices[:, 0].astype(np.float64) if slices.dtype.kind == "f"
                                                   else slices[:, 0], what, -(2**62), 2**62))
        mul, add = (np.array([int(v) for v in p], dtype=object) for p in per_group)
        if div % 2:  # rounding to nearest, ties up, exactly (see requant_shift)
            mul, add, div = mul * 2, add * 2 + div, div * 2
        else:
            add = add + div // 2
        lo, hi = (-(levels // 2), levels // 2 - 1) if signed else (0, levels - 1)
        acc_lo, acc_hi = source.range.min(), source.range.max()
        ends = [x * int(m) + int(a) for m, a in zip(mul, add, strict=True) for x in (acc_lo, acc_hi)]
        widest = max(abs(v) for v in ends)
        if widest >= 2**63:
            raise self.error(f"requantization needs more than 64 bits (|value| up to {widest})")
        wide = not all(INT32_MIN <= int(v) <= INT32_MAX for v in [*mul, *add])
        element = SI64 if wide or widest > INT32_MAX else SI32
        constants = [self.const_op(np.array([int(v) for v in vector], dtype=np.int64).reshape(groups, 1), element,
                                   f"{self.node_name}.{what}") for what, vector in (("mul", mul), ("add", add))]
        out_lo = max(lo, min(v // div for v in ends))
        out_hi = min(hi, max(v // div for v in ends))
        op = self.emit(qnn.RequantOp(
            source.ssa, constants[0], constants[1], TensorType(self.result_element_type(lo, hi, True), qnn.shape_of(source.ssa)),
            scale=1, divisor=div, min=lo, max=hi, intermediate_bits=32 if widest <= INT32_MAX else 64))
        return Act(op.results[0], Range.scalar(min(out_lo, out_hi), max(out_lo, out_hi)), shape)

    @staticmethod
    def channel_first(const: np.ndarray, onnx_shape: tuple[int, ...]) -> np.ndarray:
        """QuantLib writes per-channel requant constants as C×1×1 whatever the layer's rank; for an
        N×C×W (1-D) tensor that shape does not broadcast in ONNX's sense, and Deeploy reads it as one
        value per channel: so do we (only for RequantShift, whose semantics are QuantLib's)."""
        channels = onnx_shape[1] if len(onnx_shape) > 1 else 0
        if (const.ndim == len(onnx_shape) and const.ndim >= 2 and channels > 1 and onnx_shape[0] == 1
                and const.shape[0] == channels and const.size == channels):
            return const.reshape((channels,) + (1,) * (len(onnx_shape) - 2))  # broadcasts along axis 1
        return const

    def scalar_constant(self, name: str, what: str) -> float:
        value = self.lookup(name)
        if not isinstance(value, np.ndarray) or value.size != 1 or value.dtype.kind not in "iufb":
            raise self.error(f"{what} must be a numeric scalar constant")
        return float(value.reshape(-1)[0])

    # ----------------------------------------------------------------- structural ops

    def window_attrs(self, node: onnx.NodeProto, onnx_shape: tuple[int, ...], kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
        """strides, pads [t, l, b, r], dilations of a 1-D or 2-D window op, in the IR's 2-D form."""
        attrs = self.attributes(node)
        spatial = len(onnx_shape) - 2
        if len(kernel) != spatial or any(not 1 <= k <= MAX_WINDOW for k in kernel):
            raise self.error(f"kernel {list(kernel)} does not fit a {spatial}-D input (sizes 1 to {MAX_WINDOW})")
        if "kernel_shape" in attrs and attrs.ints("kernel_shape") != list(kernel):
            raise self.error(f"kernel_shape {attrs.ints('kernel_shape')} differs from the weights' {list(kernel)}")
        strides = attrs.ints("strides", [1] * spatial, length=spatial, lo=1, hi=MAX_WINDOW)
        dilations = attrs.ints("dilations", [1] * spatial, length=spatial, lo=1, hi=MAX_WINDOW)
        pads = attrs.ints("pads", [0] * (2 * spatial), length=2 * spatial, lo=0, hi=MAX_WINDOW)
        auto_pad = attrs.string("auto_pad", "NOTSET")
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0] * (2 * spatial)
            for i in range(spatial):
                size = onnx_shape[2 + i]
                out = -(-size // strides[i])
                total = max(0, (out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - size)
                small, large = total // 2, total - total // 2
                pads[i], pads[i + spatial] = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        elif auto_pad not in ("NOTSET", "VALID"):
            raise self.error(f"auto_pad '{auto_pad}' is not supported")
        if len(strides) != spatial or len(pads) != 2 * spatial or len(dilations) != spatial:
            raise self.error(f"window attributes do not match a {spatial}-D input")
        if spatial == 1:
            return [1, strides[0]], [0, pads[0], 0, pads[1]], [1, dilations[0]]
        return strides, [pads[0], pads[1], pads[2], pads[3]], dilations

    def conv(self, node: onnx.NodeProto) -> list[Value]:
        x = self.spatial_activation(node.input[0])
        if len(x.onnx_shape) not in (3, 4):
            raise self.error(f"convolution input must be 1-D or 2-D (N×C×W or N×C×H×W), got {list(x.onnx_shape)}")
        weight_value = self.lookup(node.input[1])
        if not isinstance(weight_value, np.ndarray):
            raise self.error("weights must be a constant initializer")
        w = self.integer_constant(weight_value, f"weight '{node.input[1]}'", -128, 127)
        if w.ndim == 3:
            w = w[:, :, None, :]
        if w.ndim != 4:
            raise self.error(f"weight must be O×I×H×W (or O×I×W), got shape {list(weight_value.shape)}")
        groups = self.attributes(node).int("group", 1, lo=1, hi=max(1, qnn.shape_of(x.ssa)[1]))
        kernel = list(weight_value.shape[2:])
        strides, pads, dilations = self.window_attrs(node, x.onnx_shape, kernel)
        n, c_in, h, wd = qnn.shape_of(x.ssa)
        c_out = w.shape[0]
        if c_in % groups or c_out % groups or w.shape[1] != c_in // groups:
            raise self.error(
                f"weight shape {list(weight_value.shape)} does not match {c_in} input channels in {groups} groups"
            )
        kh, kw = w.shape[2], w.shape[3]
        ho = qnn.window_output_size(h, kh, strides[0], pads[0], pads[2], dilations[0])
        wo = qnn.window_output_size(wd, kw, strides[1], pads[1], pads[3], dilations[1])
        if ho < 1 or wo < 1:
            raise self.error(f"kernel {kh}x{kw} does not fit the padded {h}x{wd} input")
        bias = None
        bias_ints = np.zeros(c_out, dtype=np.int64)
        if len(node.input) > 2 and node.input[2]:
            bias_value = self.lookup(node.input[2])
            if not isinstance(bias_value, np.ndarray) or bias_value.size != c_out:
                raise self.error(f"bias must be a constant of {c_out} values")
            bias_ints = self.integer_constant(bias_value.reshape(-1), f"bias '{node.input[2]}'", INT32_MIN, INT32_MAX)
            bias = self.const_op(bias_ints, SI32, node.input[2])
        weight = self.const_op(w, SI8, node.input[1])
        ty = TensorType(SI32, [n, c_out, ho, wo])
        op = self.emit(qnn.ConvOp(x.ssa, weight, bias, ty, strides, pads, dilations, groups))
        acc_range = self.accumulator_range(w.reshape(c_out, -1), bias_ints, x.range)
        onnx_shape = (n, c_out, wo) if len(x.onnx_shape) == 3 else (n, c_out, ho, wo)
        return [self.pending(Chain.over(Act(op.results[0], acc_range, onnx_shape)), onnx_shape)]

    @staticmethod
    def accumulator_range(w: np.ndarray, bias: np.ndarray, x: Range) -> Range:
        """Per-output-channel bounds of bias + Σ w·x over the input range (padding 0 included)."""
        xlo, xhi = min(x.min(), 0), max(x.max(), 0)
        wpos, wneg = np.clip(w, 0, None).sum(axis=1), np.clip(w, None, 0).sum(axis=1)
        lo = [int(b) + int(p) * xlo + int(q) * xhi for b, p, q in zip(bias, wpos, wneg, strict=True)]
        hi = [int(b) + int(p) * xhi + int(q) * xlo for b, p, q in zip(bias, wpos, wneg, strict=True)]
        return Range(as_int_vector(lo), as_int_vector(hi))

    def linear(self, x_name: str, w_mk: np.ndarray, w_name: str, bias_value: np.ndarray | None, bias_name: str) -> list[Value]:
        """x·Wᵀ (+ bias) with a constant M×K weight `w_mk` (M outputs): the int32 accumulator, pending.

        A 1×K vector is a `qnn.linear`; rows of K features (tensor_layout.py) are a pointwise conv."""
        x = self.activation(x_name)
        rows = is_feature_last(x.onnx_shape)
        if not rows and (len(x.onnx_shape) != 2 or x.onnx_shape[0] != 1):
            raise self.error(f"fully connected input must be 1×K (flatten it first) or rows of features (M×K, "
                             f"B×M×K), got {list(x.onnx_shape)}")
        w = self.integer_constant(w_mk, f"weight '{w_name}'", -128, 127)
        m, k = w.shape
        if k != x.onnx_shape[-1]:
            raise self.error(f"weight has {k} inputs, the activation {x.onnx_shape[-1]}")
        bias = None
        bias_ints = np.zeros(m, dtype=np.int64)
        if bias_value is not None:
            if bias_value.size != m:
                raise self.error(f"bias must have {m} values, got {bias_value.size}")
            bias_ints = self.integer_constant(bias_value.reshape(-1), f"bias '{bias_name}'", INT32_MIN, INT32_MAX)
            bias = self.const_op(bias_ints, SI32, bias_name)
        acc_range = self.accumulator_range(w, bias_ints, x.range)
        if rows:
            # Row-major rows × K are the HWC feature map 1×K×R×1: one 1×1 conv, K → M channels.
            weight = self.const_op(w.reshape(m, k, 1, 1), SI8, w_name)
            n, _, h, wd = qnn.shape_of(x.ssa)
            op = self.emit(qnn.ConvOp(x.ssa, weight, bias, TensorType(SI32, [n, m, h, wd]),
                                      [1, 1], [0, 0, 0, 0], [1, 1], 1))
            onnx_shape: tuple[int, ...] = FeatureLastShape((*x.onnx_shape[:-1], m))
        else:
            weight = self.const_op(w, SI8, w_name)
            op = self.emit(qnn.LinearOp(x.ssa, weight, bias, TensorType(SI32, [1, m])))
            onnx_shape = (1, m)
        act = Act(op.results[0], acc_range, onnx_shape)
        return [self.pending(Chain.over(act), onnx_shape)]

    def matmul(self, node: onnx.NodeProto) -> list[Value]:
        w = self.lookup(node.input[1])
        if not isinstance(w, np.ndarray):
            return self.matmul_of_activations(node)
        if w.ndim != 2:
            raise self.error(f"MatMul needs a 2-D constant K×N weight as its second input, got shape {list(w.shape)}")
        return self.linear(node.input[0], w.T, node.input[1], None, "")

    def matmul_of_activations(self, node: onnx.NodeProto) -> list[Value]:
        """A MatMul of two activations `[*Ba, M, K] × [*Bb, K, N]` (batch axes broadcast as ONNX's
        MatMul does): a `qnn.matmul` of two tensors of rows, its int32 accumulator pending."""
        a, b = self.activation(node.input[0]), self.activation(node.input[1])
        for name, act in ((node.input[0], a), (node.input[1], b)):
            if not is_feature_last(act.onnx_shape):
                raise self.error(f"operand '{name}' of shape {list(act.onnx_shape)} is not a matrix of rows "
                                 "(M×K with M > 1, or batched [..., M, K]); a MatMul of two activations reads both "
                                 "operands as rows of features")
        a_shape, b_shape = tuple(a.onnx_shape), tuple(b.onnx_shape)
        m, k = a_shape[-2:]
        if b_shape[-2] != k:
            raise self.error(f"the operands' shapes {list(a_shape)} × {list(b_shape)} do not agree on K")
        n = b_shape[-1]
        rank = max(len(a_shape), len(b_shape)) - 2
        a_batch = (1,) * (rank - len(a_shape) + 2) + a_shape[:-2]
        b_batch = (1,) * (rank - len(b_shape) + 2) + b_shape[:-2]
        if any(x != y and 1 not in (x, y) for x, y in zip(a_batch, b_batch, strict=True)):
            raise self.error(f"batch axes {list(a_shape[:-2])} and {list(b_shape[:-2])} do not broadcast")
        batch = tuple(max(x, y) for x, y in zip(a_batch, b_batch, strict=True))
        corners = [int(x) * int(y) for x in (a.range.min(), a.range.max()) for y in (b.range.min(), b.range.max())]
        lo, hi = k * min(min(corners), 0), k * max(max(corners), 0)
        if lo < INT32_MIN or hi > INT32_MAX:
            raise self.error(f"the products of K = {k} terms may reach [{lo}, {hi}], beyond the int32 accumulator")
        rows = int(np.prod(batch, dtype=np.int64)) * m
        op = self.emit(qnn.MatMulOp(a.ssa, b.ssa, TensorType(SI32, [1, n, rows, 1]), a_batch, b_batch))
        onnx_shape = FeatureLastShape((*batch, m, n))
        act = Act(op.results[0], Range.scalar(lo, hi), onnx_shape)
        return [self.pending(Chain.over(act), onnx_shape)]

    def gemm(self, node: onnx.NodeProto) -> list[Value]:
        """Y = alpha·A·B' + beta·C, B' = B or Bᵀ (transB), C broadcast per column (output feature)."""
        attrs = self.attributes(node)
        if attrs.int("transA", 0, lo=0, hi=1):
            raise self.error("Gemm with transA = 1 is not supported (the data operand must be rows × features)")
        alpha, beta = attrs.float("alpha", 1.0), attrs.float("beta", 1.0)
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not np.isfinite(value) or value != round(value) or abs(value) >= 2**31:
                raise self.error(f"Gemm {name} = {value} is not an integer; only integral alpha and beta have "
                                 "an exact integer form")
        alpha, beta = int(alpha), int(beta)
        w = self.lookup(node.input[1])
        if not isinstance(w, np.ndarray):
            raise self.error(f"Gemm of two activations ('{node.input[0]}' × '{node.input[1]}') is not supported; "
                             "the second operand must be a constant weight")
        if w.ndim != 2:
            raise self.error(f"Gemm needs a 2-D constant weight as its second input, got shape {list(w.shape)}")
        w_mk = w if attrs.int("transB", 0, lo=0, hi=1) else w.T
        bias, bias_name = None, ""
        if len(node.input) > 2 and node.input[2]:
            bias, bias_name = self.gemm_bias(node, w_mk.shape[0], beta)
        if alpha == 1 and (bias is None or bias.ndim == 1):
            return self.linear(node.input[0], w_mk, node.input[1], bias, bias_name)
        # alpha·(A·B') + beta·C: the bias cannot go into the accumulator (alpha would scale it too),
        # so it joins the requantization chain after the multiplication by alpha; so does a bias that
        # varies over the rows (the conv's bias is per output channel, the requant's add may vary per row).
        (pending,) = self.linear(node.input[0], w_mk, node.input[1], None, "")
        assert isinstance(pending, Pending)
        chain = pending.chain.mul_affine(as_int_vector([alpha]))
        if bias is not None:
            chain = chain.add(bias if bias.ndim == 2 else as_int_vector(bias))
        return [self.pending(chain, pending.onnx_shape)]

    def gemm_bias(self, node: onnx.NodeProto, columns: int, beta: int) -> tuple[np.ndarray, str]:
        """beta·C, and its name: one value per output column when C broadcasts over the output
        ([N], [1, N], a scalar, or [M, N] equal on every row), else (C varies over the rows: [M, 1],
        [M, N]) the [R, N] / [R, 1] block of `channel_vector`."""
        c = self.lookup(node.input[2])
        if not isinstance(c, np.ndarray):
            raise self.error("Gemm bias must be a constant")
        x = self.lookup(node.input[0])
        x_shape = x.onnx_shape if isinstance(x, Act | Pending) else (1, columns)
        out_shape: tuple[int, ...] = (*x_shape[:-1], columns)
        if is_feature_last(x_shape):
            out_shape = FeatureLastShape(out_shape)
        vector = self.channel_vector(c, out_shape, "bias")
        if vector.ndim == 2:
            if any(abs(int(v)) * abs(beta) >= 2**62 for v in vector.reshape(-1)):
                raise self.error(f"beta·bias exceeds 62 bits (beta = {beta})")
            return vector * beta, node.input[2] if beta == 1 else f"{node.input[2]}_times_{beta}"
        if vector.size not in (1, columns):
            raise self.error(f"bias has {vector.size} values for {columns} output columns")
        scaled = [int(v) * beta for v in np.broadcast_to(vector, (columns,))]
        if any(abs(v) >= 2**62 for v in scaled):
            raise self.error(f"beta·bias exceeds 62 bits (beta = {beta})")
        per_column = np.array(scaled, dtype=np.int64)
        return per_column, node.input[2] if beta == 1 else f"{node.input[2]}_times_{beta}"

    def pool_window(self, node: onnx.NodeProto, x: Act) -> tuple[list[int], list[int], list[int]]:
        attrs = self.attributes(node)
        if len(x.onnx_shape) not in (3, 4):
            raise self.error(f"pooling input must be 1-D or 2-D (N×C×W or N×C×H×W), got {list(x.onnx_shape)}")
        kernel = attrs.ints("kernel_shape", length=len(x.onnx_shape) - 2, lo=1, hi=MAX_WINDOW)
        if any(d != 1 for d in attrs.ints("dilations", [1] * len(kernel))):
            raise self.error("dilated pooling is not supported")
        strides, pads, _ = self.window_attrs(node, x.onnx_shape, kernel)
        kernel2 = [1, kernel[0]] if len(kernel) == 1 else kernel
        if attrs.int("ceil_mode", 0, lo=0, hi=1):
            # Extra end padding that yields the ceil-mode output size.
            _, _, h, w = qnn.shape_of(x.ssa)
            for axis, size in ((0, h), (1, w)):
                total = size + pads[axis] + pads[axis + 2] - kernel2[axis]
                out_ceil = -(-total // strides[axis]) + 1
                if (out_ceil - 1) * strides[axis] >= size + pads[axis]:
                    out_ceil -= 1  # the last window must start inside the input
                pads[axis + 2] += max(0, (out_ceil - 1) * strides[axis] + kernel2[axis] - (size + pads[axis] + pads[axis + 2]))
        return kernel2, strides, pads

    def pooled_shape(self, x: Act, kernel: list[int], strides: list[int], pads: list[int]) -> tuple[list[int], tuple[int, ...]]:
        n, c, h, w = qnn.shape_of(x.ssa)
        ho = qnn.window_output_size(h, kernel[0], strides[0], pads[0], pads[2])
        wo = qnn.window_output_size(w, kernel[1], strides[1], pads[1], pads[3])
        if ho < 1 or wo < 1:
            raise self.error(f"pooling window {kernel} does not fit the {h}x{w} input")
        onnx_shape = (n, c, wo) if len(x.onnx_shape) == 3 else (n, c, ho, wo)
        return [n, c, ho, wo], onnx_shape

    def max_pool(self, node: onnx.NodeProto) -> list[Value]:
        if len(node.output) > 1 and node.output[1]:
            raise self.error("MaxPool with an indices output is not supported")
        x = self.spatial_activation(node.input[0])
        kernel, strides, pads = self.pool_window(node, x)
        shape, onnx_shape = self.pooled_shape(x, kernel, strides, pads)
        op = self.emit(qnn.MaxPoolOp(x.ssa, TensorType(qnn.element_type(x.ssa), shape), kernel, strides, pads))
        return [Act(op.results[0], x.range, onnx_shape)]

    def average_pool(self, node: onnx.NodeProto) -> list[Value]:
        x = self.spatial_activation(node.input[0])
        kernel, strides, pads = self.pool_window(node, x)
        if any(pads) and not self.attributes(node).int("count_include_pad", 0, lo=0, hi=1):
            raise self.error("padded AveragePool without count_include_pad=1 divides by a varying count; not supported")
        return [self.sum_pool(x, kernel, strides, pads)]

    def global_average_pool(self, node: onnx.NodeProto) -> list[Value]:
        x = self.spatial_activation(node.input[0])
        _, _, h, w = qnn.shape_of(x.ssa)
        return [self.sum_pool(x, [h, w], [1, 1], [0, 0, 0, 0])]

    def sum_pool(self, x: Act, kernel: list[int], strides: list[int], pads: list[int]) -> Pending:
        """Average pool = window sum · 1/(kh·kw), kept exact until a rounding op."""
        shape, onnx_shape = self.pooled_shape(x, kernel, strides, pads)
        op = self.emit(qnn.SumPoolOp(x.ssa, TensorType(SI32, shape), kernel, strides, pads))
        count = kernel[0] * kernel[1]
        total = Range.scalar(min(x.range.min(), 0) * count, max(x.range.max(), 0) * count)
        chain = Chain.over(Act(op.results[0], total, onnx_shape)).mul(Fraction(1, count))
        return self.pending(chain, onnx_shape)

    def pad(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        mode = attrs.string("mode", "constant")
        if mode != "constant":
            raise self.error(f"Pad mode '{mode}' is not supported (only constant)")
        x = self.spatial_activation(node.input[0])
        if len(node.input) > 1 and node.input[1]:
            pads_value = self.lookup(node.input[1])
            if not isinstance(pads_value, np.ndarray):
                raise self.error("pads must be a constant")
            if pads_value.dtype.kind not in "iu":
                raise self.error(f"pads must be integers, got {pads_value.dtype}")
            if len(node.input) > 3 and node.input[3]:
                raise self.error("Pad with an axes input is not supported")
            pads = [int(p) for p in pads_value.reshape(-1)]
            value = self.scalar_constant(node.input[2], "pad value") if len(node.input) > 2 and node.input[2] else 0.0
        else:
            pads = attrs.ints("pads", [])
            value = attrs.float("value", 0.0)
        rank = len(x.onnx_shape)
        if len(pads) != 2 * rank:
            raise self.error(f"pads has {len(pads)} entries for a rank-{rank} tensor")
        begins, ends = pads[:rank], pads[rank:]
        if any(begins[:2]) or any(ends[:2]) or any(p < 0 for p in pads):
            raise self.error(f"only non-negative padding of the spatial dimensions is supported, got {pads}")
        if not np.isfinite(value) or value != round(value) or abs(value) > INT32_MAX:
            raise self.error(f"pad value {value} is not an integer")
        if any(p > MAX_WINDOW for p in pads):
            raise self.error(f"padding {pads} is larger than {MAX_WINDOW}")
        if not any(pads):
            return [x]
        t, l, b, r = (0, begins[2], 0, ends[2]) if rank == 3 else (begins[2], begins[3], ends[2], ends[3])
        n, c, h, w = qnn.shape_of(x.ssa)
        ty = TensorType(qnn.element_type(x.ssa), [n, c, h + t + b, w + l + r])
        op = self.emit(qnn.PadOp(x.ssa, ty, [t, l, b, r], int(value)))
        onnx_shape = tuple(s + bb + e for s, bb, e in zip(x.onnx_shape, begins, ends, strict=True))
        padded = Range(
            as_int_vector([min(v, int(value)) for v in x.range.lo]),
            as_int_vector([max(v, int(value)) for v in x.range.hi]),
        )
        return [Act(op.results[0], padded, onnx_shape)]

    def reshaped(self, name: str, onnx_shape: tuple[int, ...]) -> list[Value]:
        x = self.activation(name)
        if int(np.prod(onnx_shape)) != int(np.prod(x.onnx_shape)):
            raise self.error(f"cannot reshape {list(x.onnx_shape)} to {list(onnx_shape)}")
        if is_feature_last(x.onnx_shape):
            # Rows regrouped (B×M×K ↔ B·M×K) are the same IR tensor. Any other reshape mixes
            # features into rows, which `qnn.reshape` (row-major over NCHW, channels first) does not express.
            if len(onnx_shape) in (2, 3) and onnx_shape[-1] == x.onnx_shape[-1]:
                return [Act(x.ssa, x.range, FeatureLastShape(onnx_shape))]
            raise self.error(f"reshaping the rows of features {list(x.onnx_shape)} to {list(onnx_shape)} is not "
                             "supported (only regrouping rows, the last axis kept)")
        new_shape = ir_shape(onnx_shape) if len(onnx_shape) in (3, 4) else list(onnx_shape)
        if new_shape == list(qnn.shape_of(x.ssa)):
            return [Act(x.ssa, x.range, onnx_shape)]
        if len(new_shape) == 4 and not (channels_last_is_row_major(qnn.shape_of(x.ssa))
                                        and channels_last_is_row_major(tuple(new_shape))):
            # qnn.reshape is lowered to a view of the same bytes, which are channels-last (HWC): that
            # is ONNX's row-major NCHW reshape only when C = 1 or H·W = 1 on both sides. (A flatten
            # to N×K is exact anyway: the linear layer's weights are permuted to the HWC order.)
            raise self.error(f"reshaping {list(x.onnx_shape)} to {list(onnx_shape)} reorders the tensor's "
                             "channels-last bytes; only flattening (to N×K) or reshapes with one channel or one "
                             "pixel are supported")
        op = self.emit(qnn.ReshapeOp(x.ssa, TensorType(qnn.element_type(x.ssa), new_shape)))
        merged = Range.scalar(x.range.min(), x.range.max())
        return [Act(op.results[0], merged, onnx_shape)]

    def flatten(self, node: onnx.NodeProto) -> list[Value]:
        value = self.lookup(node.input[0])
        shape = value.onnx_shape if isinstance(value, Act | Pending) else ()
        axis = self.attributes(node).int("axis", 1, lo=-len(shape), hi=len(shape))
        axis = axis + len(shape) if axis < 0 else axis
        outer = int(np.prod(shape[:axis])) if axis else 1
        return self.reshaped(node.input[0], (outer, int(np.prod(shape[axis:]))))

    def reshape(self, node: onnx.NodeProto) -> list[Value]:
        value = self.lookup(node.input[0])
        target = self.lookup(node.input[1])
        if not isinstance(target, np.ndarray):
            raise self.error("the target shape must be a constant (dynamic shapes are not supported)")
        shape = value.onnx_shape if isinstance(value, Act | Pending) else ()
        return self.reshaped(node.input[0], self.target_shape(shape, target, self.attributes(node)))

    def target_shape(self, shape: tuple[int, ...], target: np.ndarray, attrs: Attributes) -> tuple[int, ...]:
        """Reshape's target: 0 copies the input's dimension (unless allowzero), one -1 is inferred."""
        if target.dtype.kind not in "iu" or target.ndim > 1:
            raise self.error(f"the target shape must be a 1-D integer tensor, got {target.dtype} of shape {list(target.shape)}")
        dims = [int(d) for d in target.reshape(-1)]
        if not attrs.int("allowzero", 0):
            if any(d == 0 and i >= len(shape) for i, d in enumerate(dims)):
                raise self.error(f"target shape {dims} copies a dimension the {len(shape)}-D input does not have")
            dims = [shape[i] if d == 0 else d for i, d in enumerate(dims)]
        if dims.count(-1) > 1 or any(d < -1 for d in dims):
            raise self.error(f"target shape {dims} is not a shape (negative sizes or more than one -1)")
        size = int(np.prod(shape, dtype=object)) if shape else 1
        if -1 in dims:
            known = int(np.prod([d for d in dims if d != -1], dtype=object))
            if known == 0 or size % known:
                raise self.error(f"cannot reshape {list(shape)} to {dims}")
            dims[dims.index(-1)] = size // known
        return tuple(dims)
