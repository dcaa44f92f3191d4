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
)
from xdsl.ir import Block, Operation, Region, SSAValue

from dory_mlir.diagnostics import DoryError, warn
from dory_mlir.dialects import qnn
from dory_mlir.frontend.qdq_legalize import is_quantized
from dory_mlir.frontend.requant_chain import Chain, ChainError, Range, as_int_vector

SI8 = IntegerType(8, Signedness.SIGNED)
UI8 = IntegerType(8, Signedness.UNSIGNED)
SI32 = IntegerType(32, Signedness.SIGNED)
SI64 = IntegerType(64, Signedness.SIGNED)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Function attribute listing the ONNX nodes after the last integer layer that were left off.
DROPPED_TAIL = "dropped_tail"

# Float ops that exporters append after the last integer layer; DORY drops them too.
TAIL_OPS = {"Sigmoid", "Softmax", "LogSoftmax", "Gather", "Unsqueeze", "Squeeze", "Concat", "Identity"}
ONNX_INT64 = onnx.TensorProto.INT64
ONNX_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


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


def parse_element_type(spec: str) -> tuple[IntegerType, Range]:
    """'ui8', 'si8', or 'si8:2' (signed, 2 significant bits) → element type and range."""
    name, _, bits = spec.partition(":")
    types = {"ui8": UI8, "si8": SI8}
    if name not in types:
        raise DoryError(f"unsupported input type '{spec}' (expected ui8 or si8, optionally ':BITS')")
    ty = types[name]
    nbits = int(bits) if bits else 8
    if not 1 <= nbits <= 8:
        raise DoryError(f"input bits must be 1..8, got {nbits}")
    if ty == UI8:
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
        signed = bool(data.get("input_signed", False))
        return f"{'si8' if signed else 'ui8'}:{int(data['input_bits'])}"
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
    return model


def import_onnx_file(path: str | Path, input_type: str | None = None) -> ModuleOp:
    """Import a model file; the input type defaults to a DORY config beside it, else ui8."""
    path = Path(path)
    model = load_model(path)
    if is_quantized(model):  # onnxruntime's QDQ / QOperator forms
        from dory_mlir.frontend.qoperator_import import import_quantized  # it imports this module

        return import_quantized(model, path, input_type)
    spec = input_type or input_type_from_dory_config(path) or "ui8"
    return OnnxImporter(model, path.name, spec).run()


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

    def __init__(self, model: onnx.ModelProto, model_name: str, input_type: str):
        self.model = model
        self.graph = model.graph
        self.model_name = model_name
        self.input_type, self.input_range = parse_element_type(input_type)
        self.env: dict[str, Value] = {}
        self.constants: list[Operation] = []  # emitted first, so weights head the function
        self.ops: list[Operation] = []
        self.node_name = ""
        self.node_op = ""
        # Materialized chains by identity: a chain read by two consumers is emitted once.
        self.materialized: dict[int, tuple[Chain, Act]] = {}
        self.dropped_tail: list[str] = []
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
        }

    # ----------------------------------------------------------------- driver

    def error(self, message: str) -> DoryError:
        where = f"{self.model_name}: node '{self.node_name}' ({self.node_op})" if self.node_name else self.model_name
        return DoryError(message, where)

    def run(self) -> ModuleOp:
        for init in self.graph.initializer:
            self.env[init.name] = self.initializer_array(init)
        graph_inputs = [i for i in self.graph.input if i.name not in self.env]
        if len(graph_inputs) != 1:
            raise self.error(f"expected exactly one network input, found {len(graph_inputs)}")
        block = Block(arg_types=[self.input_tensor_type(graph_inputs[0])])
        block.args[0].name_hint = "input"
        onnx_shape = tuple(d.dim_value for d in graph_inputs[0].type.tensor_type.shape.dim)
        self.env[graph_inputs[0].name] = Act(block.args[0], self.input_range, onnx_shape)

        for index, node in enumerate(self.graph.node):
            self.node_name = node.name or f"{node.op_type}_{index}"
            self.node_op = node.op_type
            outputs = self.visit(node)
            for name, value in zip(node.output, outputs, strict=True):
                self.env[name] = value
        self.node_name = ""

        results = self.network_outputs()
        for op in self.constants + self.ops:
            block.add_op(op)
        block.add_op(func.ReturnOp(*results))
        function = func.FuncOp.from_region(
            "network", [block.args[0].type], [r.type for r in results], Region(block)
        )
        function.location = name_loc(self.graph.name or self.model_name)
        if self.dropped_tail:
            function.attributes[DROPPED_TAIL] = ArrayAttr([StringAttr(n) for n in self.dropped_tail])
        module = ModuleOp([function])
        module.location = name_loc(self.model_name)
        module.verify()
        return module

    def visit(self, node: onnx.NodeProto) -> list[Value]:
        inputs = [self.lookup(name) for name in node.input if name]
        if inputs and all(isinstance(v, np.ndarray) for v in inputs) and node.op_type != "Constant":
            return [self.fold_constant(node, inputs)]  # type: ignore[arg-type]
        if any(isinstance(v, Dropped) for v in inputs):
            if node.op_type in TAIL_OPS:
                return [self.drop(node, inputs)]
            raise self.error(
                f"uses the output of '{next(v for v in inputs if isinstance(v, Dropped)).node}', "
                "a float op that only the network's tail may contain"
            )
        if node.op_type in TAIL_OPS:
            return [self.drop(node, inputs)]
        handler = self.handlers.get(node.op_type)
        if handler is None:
            raise self.error(f"unsupported op '{node.op_type}'")
        try:
            return handler(node)
        except ChainError as e:
            raise self.error(str(e)) from None

    def lookup(self, name: str) -> Value:
        if name not in self.env:
            raise self.error(
                f"input '{name}' is neither a graph input, an initializer nor the output of an earlier node"
            )
        return self.env[name]

    def drop(self, node: onnx.NodeProto, inputs: list[Value]) -> Dropped:
        source = next(v for v in inputs if not isinstance(v, np.ndarray))
        source = source.source if isinstance(source, Dropped) else source
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

    def input_tensor_type(self, value_info: onnx.ValueInfoProto) -> TensorType:
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
        if len(shape) not in (2, 3, 4) or shape[0] != 1:
            raise DoryError(
                f"input '{value_info.name}' must be N×K, N×C×W or N×C×H×W with N = 1, got {shape}", self.model_name
            )
        return TensorType(self.input_type, self.ir_shape(tuple(shape)))

    @staticmethod
    def ir_shape(onnx_shape: tuple[int, ...]) -> list[int]:
        """1-D (N, C, W) tensors become N×C×1×W in the IR."""
        if len(onnx_shape) == 3:
            return [onnx_shape[0], onnx_shape[1], 1, onnx_shape[2]]
        return list(onnx_shape)

    def loc(self) -> NameLoc:
        return name_loc(self.node_name)

    def emit(self, op: Operation) -> Operation:
        op.location = self.loc()
        self.ops.append(op)
        return op

    def constant(self, node: onnx.NodeProto) -> list[Value]:
        attr = next((a for a in node.attribute if a.name == "value"), None)
        if attr is None:
            raise self.error("Constant without a tensor 'value' attribute is not supported")
        return [numpy_helper.to_array(attr.t)]

    def fold_constant(self, node: onnx.NodeProto, inputs: list[np.ndarray]) -> np.ndarray:
        """Evaluates ops on constants (shape arithmetic, casts) with numpy."""
        op = node.op_type
        attrs = self.attributes(node)
        if op == "Cast":
            return inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
        binary = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract}
        if op in binary:
            return binary[op](inputs[0], inputs[1])
        if op == "Unsqueeze":
            return np.expand_dims(inputs[0], tuple(attrs["axes"]))
        if op == "Gather":
            return np.take(inputs[0], inputs[1], axis=attrs.get("axis", 0))
        if op == "Concat":
            return np.concatenate(inputs, axis=attrs["axis"])
        if op in ("Reshape", "Flatten", "Identity"):
            return inputs[0]
        raise self.error(f"cannot evaluate '{op}' on constant inputs")

    def attributes(self, node: onnx.NodeProto) -> dict[str, object]:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def integer_constant(self, value: np.ndarray, what: str, lo: int, hi: int) -> np.ndarray:
        if not np.all(np.isfinite(value)) or not np.all(value == np.round(value)):
            raise self.error(f"{what} is not integer-valued")
        ints = np.round(value).astype(np.int64) if value.dtype.kind == "f" else value.astype(np.int64)
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
        """An operand that must be an 8-bit activation tensor of the IR."""
        value = self.lookup(name)
        if isinstance(value, np.ndarray):
            raise self.error(f"operand '{name}' is a constant where an activation is expected")
        act = self.materialize(value, activation=True)
        self.env[name] = act
        width = qnn.element_type(act.ssa).width.data
        if width > 8:
            raise self.error(f"operand '{name}' is a {width}-bit tensor; activations must have at most 8 bits")
        return act

    # ----------------------------------------------------------------- requantization

    def materialize(self, value: Act | Pending, activation: bool) -> Act:
        """Emits the pending chain of a value as `qnn.requant` ops."""
        if isinstance(value, Act):
            return value
        chain = value.chain.simplified()
        if isinstance(chain, Act):
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
        element = self.result_element_type(lo, hi)
        rounding = chain.rounding or qnn.Rounding.FLOOR
        if rounding == qnn.Rounding.TRUNC and (lo >= 0 or divisor == 1):
            rounding = qnn.Rounding.FLOOR  # equal after clipping at lo >= 0, so use the cheaper shift
        channels = qnn.shape_of(source.ssa)[1]
        # mul and add share one width: the kernels read both with the wider one's element size.
        wide = not all(INT32_MIN <= int(v) <= INT32_MAX for v in [*chain.k, *chain.l])
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
        """Bounds for a requant the graph does not clip: exact if they fit, else saturating."""
        lo, hi = out_range.min(), out_range.max()
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
    def result_element_type(lo: int, hi: int) -> IntegerType:
        if lo >= 0 and hi <= 255:
            return UI8
        if lo >= -128 and hi <= 127:
            return SI8
        return SI32

    def requant_constant(self, values: np.ndarray, channels: int, what: str, wide: bool = False) -> SSAValue:
        ints = [int(v) for v in values]
        if len(set(ints)) == 1:
            ints = ints[:1]
        elif len(ints) != channels:
            raise self.error(f"per-channel {what} has {len(ints)} entries for {channels} channels")
        fits32 = all(INT32_MIN <= v <= INT32_MAX for v in ints)
        if not all(-(2**63) <= v < 2**63 for v in ints):
            raise self.error(f"requantization {what} exceeds 64 bits")
        return self.const_op(np.array(ints, dtype=np.int64), SI64 if wide or not fits32 else SI32, f"{self.node_name}.{what}")

    def channel_vector(self, const: np.ndarray, onnx_shape: tuple[int, ...], what: str) -> np.ndarray:
        """A constant broadcast along the channel axis only → exact integer vector."""
        shape = (1,) * (len(onnx_shape) - const.ndim) + tuple(const.shape)
        if len(shape) != len(onnx_shape) or any(s != 1 for i, s in enumerate(shape) if i != 1):
            raise self.error(f"{what} of shape {list(const.shape)} is not per-channel or per-tensor for {list(onnx_shape)}")
        if shape[1] not in (1, onnx_shape[1]):
            raise self.error(f"{what} has {shape[1]} channels, the tensor {onnx_shape[1]}")
        ints = self.integer_constant(const.astype(np.float64) if const.dtype.kind == "f" else const, what, -(2**62), 2**62)
        return as_int_vector(ints)

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
                if qnn.element_type(source.ssa).width.data <= 8:
                    m = chain.f.numerator
                    return source, int(chain.k[0]) * m, int(chain.l[0]) * m
        return self.activation(name), 1, 0

    def quantlab_add(self, node: onnx.NodeProto) -> Value:
        """Quantlab's requantizing Add: each input `floor((x·mul + add) / 2^shift)`, summed, then `out_*`."""
        attrs = self.attributes(node)
        sides: list[tuple[Act, int, int]] = []
        shifts: list[int] = []
        for i, name in enumerate(node.input, start=1):
            act = self.activation(name)
            if int(attrs.get(f"in{i}_rq", 1)):  # type: ignore[arg-type]
                sides.append((act, int(attrs[f"in{i}_mul"]), int(attrs[f"in{i}_add"])))  # type: ignore[arg-type]
                shifts.append(int(attrs[f"in{i}_shift"]))  # type: ignore[arg-type]
            else:
                sides.append((act, 1, 0))
                shifts.append(0)
        total = self.emit_add(sides, (shifts[0], shifts[1]))
        chain = Chain.over(total)
        if int(attrs.get("out_rq", 0)):  # type: ignore[arg-type]
            out_mul, out_add = int(attrs["out_mul"]), int(attrs["out_add"])  # type: ignore[arg-type]
            chain = Chain(
                total, as_int_vector([out_mul]), as_int_vector([out_add]), Fraction(1, 2 ** int(attrs["out_shift"]))  # type: ignore[arg-type]
            ).floor()
        levels = int(attrs.get("out_n_levels", 256))  # type: ignore[arg-type]
        return self.pending(chain.clip(0, levels - 1), total.onnx_shape)

    def emit_add(self, sides: list[tuple[Act, int, int]], shifts: tuple[int, int]) -> Act:
        (lhs, m1, a1), (rhs, m2, a2) = sides
        if qnn.shape_of(lhs.ssa) != qnn.shape_of(rhs.ssa):
            raise self.error(
                f"operands have different shapes {qnn.shape_of(lhs.ssa)} and {qnn.shape_of(rhs.ssa)} (broadcasting is not supported)"
            )
        ty = TensorType(SI32, qnn.shape_of(lhs.ssa))
        op = self.emit(qnn.AddOp(lhs.ssa, rhs.ssa, ty, (m1, m2), (a1, a2), shifts))
        r1 = lhs.range.affine(as_int_vector([m1]), as_int_vector([a1])).divided(2 ** shifts[0])
        r2 = rhs.range.affine(as_int_vector([m2]), as_int_vector([a2])).divided(2 ** shifts[1])
        total = Range.scalar(r1.min() + r2.min(), r1.max() + r2.max())
        if total.min() < INT32_MIN or total.max() > INT32_MAX:
            raise self.error("the sum may overflow 32 bits")
        return Act(op.results[0], total, lhs.onnx_shape)

    def floor(self, node: onnx.NodeProto) -> list[Value]:
        pending = self.as_chain(self.lookup(node.input[0]))
        return [self.pending(pending.chain.floor(), pending.onnx_shape)]

    def cast(self, node: onnx.NodeProto) -> list[Value]:
        to = int(self.attributes(node)["to"])  # type: ignore[arg-type]
        pending = self.as_chain(self.lookup(node.input[0]))
        if to not in ONNX_FLOAT_TYPES and to not in (ONNX_INT64, onnx.TensorProto.INT32):
            raise self.error(f"Cast to {onnx.TensorProto.DataType.Name(to)} is not supported")
        return [self.pending(pending.chain.cast(to not in ONNX_FLOAT_TYPES), pending.onnx_shape)]

    def clip(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        lo, hi = attrs.get("min"), attrs.get("max")
        if len(node.input) > 1 and node.input[1]:
            lo = self.scalar_constant(node.input[1], "clip min")
        if len(node.input) > 2 and node.input[2]:
            hi = self.scalar_constant(node.input[2], "clip max")
        bounds = []
        for bound, what in ((lo, "min"), (hi, "max")):
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
        for name in ("div", "n_levels_out"):
            if name not in attrs:
                raise self.error(f"RequantShift without the '{name}' attribute")
        div = self.attribute_int(attrs["div"], "div")
        levels = self.attribute_int(attrs["n_levels_out"], "n_levels_out")
        signed = self.attribute_int(attrs.get("signed", 0), "signed")
        if div <= 0:
            raise self.error(f"RequantShift div must be positive, got {div}")
        if not 2 <= levels <= 2**32:
            raise self.error(f"RequantShift n_levels_out must be in [2, 2^32], got {levels}")
        pending = self.as_chain(self.lookup(node.input[0]))
        scaled = []
        for index, what in ((1, "mul"), (2, "add")):
            const = self.lookup(node.input[index])
            if not isinstance(const, np.ndarray):
                raise self.error(f"RequantShift {what} must be a constant")
            scaled.append(self.channel_vector(const, pending.onnx_shape, what))
        mul, add = scaled
        # QuantLib rounds to nearest, ties up: floor((x·mul + add) / div + 1/2), kept exact for odd div too.
        if div % 2:
            mul, add, div = mul * 2, add * 2 + div, div * 2
        else:
            add = add + div // 2
        chain = pending.chain.mul_affine(mul).add(add).div(div).floor()
        lo, hi = (-(levels // 2), levels // 2 - 1) if signed else (0, levels - 1)
        return [self.pending(chain.clip(lo, hi), pending.onnx_shape)]

    def attribute_int(self, value: object, what: str) -> int:
        """An integer attribute, also when an exporter stores it as a float tensor (QuantLib does)."""
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        array = np.asarray(value, dtype=np.float64).reshape(-1)
        if array.size != 1 or array[0] != round(array[0]):
            raise self.error(f"attribute '{what}' must be one integer, got {array.tolist()[:4]}")
        return int(array[0])

    def scalar_constant(self, name: str, what: str) -> float:
        value = self.lookup(name)
        if not isinstance(value, np.ndarray) or value.size != 1:
            raise self.error(f"{what} must be a scalar constant")
        return float(value.reshape(-1)[0])

    # ----------------------------------------------------------------- structural ops

    def window_attrs(self, node: onnx.NodeProto, onnx_shape: tuple[int, ...], kernel: list[int]) -> tuple[list[int], list[int], list[int]]:
        """strides, pads [t, l, b, r], dilations of a 1-D or 2-D window op, in the IR's 2-D form."""
        attrs = self.attributes(node)
        spatial = len(onnx_shape) - 2
        strides = list(attrs.get("strides", [1] * spatial))  # type: ignore[arg-type]
        dilations = list(attrs.get("dilations", [1] * spatial))  # type: ignore[arg-type]
        pads = list(attrs.get("pads", [0] * (2 * spatial)))  # type: ignore[arg-type]
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
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
        x = self.activation(node.input[0])
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
        groups = int(self.attributes(node).get("group", 1))  # type: ignore[arg-type]
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
        x = self.activation(x_name)
        if len(x.onnx_shape) != 2 or x.onnx_shape[0] != 1:
            raise self.error(f"fully connected input must be 1×K (flatten it first), got {list(x.onnx_shape)}")
        w = self.integer_constant(w_mk, f"weight '{w_name}'", -128, 127)
        m, k = w.shape
        if k != x.onnx_shape[1]:
            raise self.error(f"weight has {k} inputs, the activation {x.onnx_shape[1]}")
        bias = None
        bias_ints = np.zeros(m, dtype=np.int64)
        if bias_value is not None:
            if bias_value.size != m:
                raise self.error(f"bias must have {m} values, got {bias_value.size}")
            bias_ints = self.integer_constant(bias_value.reshape(-1), f"bias '{bias_name}'", INT32_MIN, INT32_MAX)
            bias = self.const_op(bias_ints, SI32, bias_name)
        weight = self.const_op(w, SI8, w_name)
        op = self.emit(qnn.LinearOp(x.ssa, weight, bias, TensorType(SI32, [1, m])))
        act = Act(op.results[0], self.accumulator_range(w, bias_ints, x.range), (1, m))
        return [self.pending(Chain.over(act), (1, m))]

    def matmul(self, node: onnx.NodeProto) -> list[Value]:
        w = self.lookup(node.input[1])
        if not isinstance(w, np.ndarray) or w.ndim != 2:
            raise self.error("MatMul needs a 2-D constant weight as its second input")
        return self.linear(node.input[0], w.T, node.input[1], None, "")

    def gemm(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        if float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0:  # type: ignore[arg-type]
            raise self.error("Gemm with alpha or beta other than 1 is not supported")
        if int(attrs.get("transA", 0)):  # type: ignore[arg-type]
            raise self.error("Gemm with transA is not supported")
        w = self.lookup(node.input[1])
        if not isinstance(w, np.ndarray) or w.ndim != 2:
            raise self.error("Gemm needs a 2-D constant weight as its second input")
        w_mk = w if int(attrs.get("transB", 0)) else w.T  # type: ignore[arg-type]
        bias = None
        if len(node.input) > 2 and node.input[2]:
            b = self.lookup(node.input[2])
            if not isinstance(b, np.ndarray):
                raise self.error("Gemm bias must be a constant")
            bias = b
        return self.linear(node.input[0], w_mk, node.input[1], bias, node.input[2] if bias is not None else "")

    def pool_window(self, node: onnx.NodeProto, x: Act) -> tuple[list[int], list[int], list[int]]:
        attrs = self.attributes(node)
        kernel = list(attrs["kernel_shape"])  # type: ignore[arg-type]
        if any(d != 1 for d in attrs.get("dilations", [1] * len(kernel))):  # type: ignore[union-attr]
            raise self.error("dilated pooling is not supported")
        strides, pads, _ = self.window_attrs(node, x.onnx_shape, kernel)
        kernel2 = [1, kernel[0]] if len(kernel) == 1 else kernel
        if int(attrs.get("ceil_mode", 0)):  # type: ignore[arg-type]
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
        x = self.activation(node.input[0])
        kernel, strides, pads = self.pool_window(node, x)
        shape, onnx_shape = self.pooled_shape(x, kernel, strides, pads)
        op = self.emit(qnn.MaxPoolOp(x.ssa, TensorType(qnn.element_type(x.ssa), shape), kernel, strides, pads))
        return [Act(op.results[0], x.range, onnx_shape)]

    def average_pool(self, node: onnx.NodeProto) -> list[Value]:
        x = self.activation(node.input[0])
        kernel, strides, pads = self.pool_window(node, x)
        if any(pads) and not int(self.attributes(node).get("count_include_pad", 0)):  # type: ignore[arg-type]
            raise self.error("padded AveragePool without count_include_pad=1 divides by a varying count; not supported")
        return [self.sum_pool(x, kernel, strides, pads)]

    def global_average_pool(self, node: onnx.NodeProto) -> list[Value]:
        x = self.activation(node.input[0])
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
        mode = attrs.get("mode", b"constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
            raise self.error(f"Pad mode '{mode!r}' is not supported (only constant)")
        x = self.activation(node.input[0])
        if len(node.input) > 1 and node.input[1]:
            pads_value = self.lookup(node.input[1])
            if not isinstance(pads_value, np.ndarray):
                raise self.error("pads must be a constant")
            pads = [int(p) for p in pads_value.reshape(-1)]
            value = self.scalar_constant(node.input[2], "pad value") if len(node.input) > 2 and node.input[2] else 0.0
        else:
            pads = [int(p) for p in attrs.get("pads", [])]  # type: ignore[union-attr]
            value = float(attrs.get("value", 0.0))  # type: ignore[arg-type]
        rank = len(x.onnx_shape)
        if len(pads) != 2 * rank:
            raise self.error(f"pads has {len(pads)} entries for a rank-{rank} tensor")
        begins, ends = pads[:rank], pads[rank:]
        if any(begins[:2]) or any(ends[:2]) or any(p < 0 for p in pads):
            raise self.error(f"only non-negative padding of the spatial dimensions is supported, got {pads}")
        if value != round(value):
            raise self.error(f"pad value {value} is not an integer")
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
        ir_shape = self.ir_shape(onnx_shape) if len(onnx_shape) in (3, 4) else list(onnx_shape)
        if ir_shape == list(qnn.shape_of(x.ssa)):
            return [Act(x.ssa, x.range, onnx_shape)]
        op = self.emit(qnn.ReshapeOp(x.ssa, TensorType(qnn.element_type(x.ssa), ir_shape)))
        merged = Range.scalar(x.range.min(), x.range.max())
        return [Act(op.results[0], merged, onnx_shape)]

    def flatten(self, node: onnx.NodeProto) -> list[Value]:
        value = self.lookup(node.input[0])
        shape = value.onnx_shape if isinstance(value, Act | Pending) else ()
        axis = int(self.attributes(node).get("axis", 1))  # type: ignore[arg-type]
        axis = axis + len(shape) if axis < 0 else axis
        outer = int(np.prod(shape[:axis])) if axis else 1
        return self.reshaped(node.input[0], (outer, int(np.prod(shape[axis:]))))

    def reshape(self, node: onnx.NodeProto) -> list[Value]:
        value = self.lookup(node.input[0])
        target = self.lookup(node.input[1])
        if not isinstance(target, np.ndarray):
            raise self.error("the target shape must be a constant (dynamic shapes are not supported)")
        shape = value.onnx_shape if isinstance(value, Act | Pending) else ()
        dims = [int(d) for d in target.reshape(-1)]
        dims = [shape[i] if d == 0 else d for i, d in enumerate(dims)]
        if dims.count(-1) > 1:
            raise self.error(f"target shape {dims} has more than one -1")
        if -1 in dims:
            known = int(np.prod([d for d in dims if d != -1]))
            dims[dims.index(-1)] = int(np.prod(shape)) // known
        return self.reshaped(node.input[0], tuple(dims))
