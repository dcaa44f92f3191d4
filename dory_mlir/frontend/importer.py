"""The base of the ONNX → `qnn` importers: one walk over the graph in node order.

`OnnxImporter` keeps the ONNX name → value environment, folds constants with numpy, carries the
elementwise arithmetic around each conv/linear/pool/add exactly in a `Chain` (see `requant_chain.py`)
and emits it as `qnn.requant` when a structural op consumes it, and reads the ops every exporter family
writes alike (Conv, Gemm's product, pooling, Clip, Reshape/Flatten). Each family's importer subclasses
it with its own op table (`handlers`): `integer_import.py` (NEMO, Quantlab), `quantlib_import.py`
(QuantLib/Deeploy, extending the former), `qoperator_import.py` (onnxruntime's QDQ/QOperator). Every op
carries a `loc` with its ONNX node name; each construct the import cannot represent exactly is a
one-line `DoryError` naming the node.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import onnx
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
from dory_mlir.frontend.loader import ONNX_FLOAT_TYPES
from dory_mlir.frontend.requant_chain import Chain, ChainError, Range, as_int_vector
from dory_mlir.tensor_layout import (
    FEATURE_LAST_ATTR,
    FeatureLastShape,
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
    "AveragePool": (1, 1), "GlobalAveragePool": (1, 1), "Pad": (1, 4), "Flatten": (1, 1), "Reshape": (2, 2), "Transpose": (1, 1),
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
# QuantLib's integer ops that work along the last axis (features): they read input 0 as rows of features.
ROW_OPS = {"iNoNorm", "iSoftmax", "iRMSNorm", "iLayerNorm", "ITAMax", "ITAPartialMax"}

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
    """One import: walks the graph, keeps the ONNX name → value environment, emits ops. A subclass per
    exporter family fills `handlers`, its op type → handler table (an op without one is an error)."""

    handlers: dict[str, Callable[[onnx.NodeProto], list[Value]]]

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
                if node.op_type in ROW_OPS and node.input[0] == name:
                    return True
                if node.op_type == "Transpose":
                    return True  # only rows are transposed (attention's heads, a KV cache)
                if node.op_type in ELEMENTWISE_OPS or self.into_heads(node):
                    pending.extend(o for o in node.output if o)
        return False

    def into_heads(self, node: onnx.NodeProto) -> bool:
        """A Reshape to a constant shape of rank 3 or more (attention's rows into heads, [T, E] → [T, H, D]):
        the layout of what it reads is what reads its output. (A flatten to N×K is a linear layer's.)"""
        if node.op_type != "Reshape" or len(node.input) < 2:
            return False
        target = self.env.get(node.input[1])
        return isinstance(target, np.ndarray) and target.size >= 3

    def input_onnx_shape(self, value_info: onnx.ValueInfoProto) -> tuple[int, ...]:
        """A graph input's static ONNX shape, marked `FeatureLastShape` when it holds rows of
        features (tensor_layout.py): an M×K input with M > 1 (N×K vectors have N = 1), or a 3-D
        input that a MatMul/Gemm reads as its data operand, or that a MatMul of two activations or a
        QuantLib row op (`ROW_OPS`) reads (any rank ≥ 3: the leading axes are its batch)."""
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

    # ----------------------------------------------------------------- ops every importer reads

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

    def scalar_constant(self, name: str, what: str) -> float:
        value = self.lookup(name)
        if not isinstance(value, np.ndarray) or value.size != 1 or value.dtype.kind not in "iufb":
            raise self.error(f"{what} must be a numeric scalar constant")
        return float(value.reshape(-1)[0])

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

    def sum_pool(self, x: Act, kernel: list[int], strides: list[int], pads: list[int]) -> Pending:
        """Average pool = window sum · 1/(kh·kw), kept exact until a rounding op."""
        shape, onnx_shape = self.pooled_shape(x, kernel, strides, pads)
        op = self.emit(qnn.SumPoolOp(x.ssa, TensorType(SI32, shape), kernel, strides, pads))
        count = kernel[0] * kernel[1]
        total = Range.scalar(min(x.range.min(), 0) * count, max(x.range.max(), 0) * count)
        chain = Chain.over(Act(op.results[0], total, onnx_shape)).mul(Fraction(1, count))
        return self.pending(chain, onnx_shape)

    def reshaped(self, name: str, onnx_shape: tuple[int, ...]) -> list[Value]:
        x = self.activation(name)
        if int(np.prod(onnx_shape)) != int(np.prod(x.onnx_shape)):
            raise self.error(f"cannot reshape {list(x.onnx_shape)} to {list(onnx_shape)}")
        if is_feature_last(x.onnx_shape):
            # Rows regrouped (B×M×K ↔ B·M×K) are the same IR tensor. Any other reshape mixes
            # features into rows, which `qnn.reshape` (row-major over NCHW, channels first) does not express.
            if len(onnx_shape) in (2, 3) and onnx_shape[-1] == x.onnx_shape[-1]:
                return [Act(x.ssa, x.range, FeatureLastShape(onnx_shape))]
            return [self.rows_reshaped(x, onnx_shape)]
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

    def rows_reshaped(self, x: Act, onnx_shape: tuple[int, ...]) -> Act:
        """Rows of features reshaped to other features (attention's `[S, H·D]` → `[S, H, D]` and back):
        the same row-major bytes, a `qnn.reshape {rows}` (a view). The result is rows again: of rank ≥ 2
        whose last axis is the new features (2-D: more than one row, else an N×K vector)."""
        if len(onnx_shape) < 2 or (len(onnx_shape) == 2 and onnx_shape[0] == 1) or len(onnx_shape) > 4:
            raise self.error(f"reshaping the rows of features {list(x.onnx_shape)} to {list(onnx_shape)} is not "
                             "supported (rows of features to rows of features of rank 2 to 4)")
        shape = FeatureLastShape(onnx_shape)
        if ir_shape(shape) == list(qnn.shape_of(x.ssa)):
            return Act(x.ssa, x.range, shape)
        op = self.emit(qnn.ReshapeOp(x.ssa, TensorType(qnn.element_type(x.ssa), ir_shape(shape)), rows=True))
        return Act(op.results[0], Range.scalar(x.range.min(), x.range.max()), shape)

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
