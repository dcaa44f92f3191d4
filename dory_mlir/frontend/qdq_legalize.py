"""QDQ → QOperator: the ONNX rewrite that onnxruntime's own QDQ fusion performs.

`onnxruntime.quantization.quantize_static` writes a model in one of two forms:
- QOperator: `QLinearConv`, `QLinearMatMul`, `QGemm`, `QLinearAdd`, `QLinearAveragePool`,
  `QLinearGlobalAveragePool`, ... on integer tensors, integer `MaxPool`/`Flatten`/`Reshape`;
- QDQ: float ops between `DequantizeLinear` (DQ) and `QuantizeLinear` (Q) nodes.

onnxruntime executes a QDQ group `DQ(x), DQ(w)[, DQ(b)] → op → Q` as the matching QLinear
kernel, so this module rewrites every such group into that QOperator node, named after the
group's Q node (the node whose output tensor the QLinear node now produces) — the QDQ and the
QOperator form then import through one path (`qoperator_import.py`) with one arithmetic.
Ops that only move data (MaxPool, Flatten, Reshape) become the same op on the integers, Relu/Clip
an integer Clip; when such an op's output quantization differs from its input's (quantize_static
folds a ReLU after a MaxPool into the MaxPool's output range), the integer op is followed by the
pair `DQ → Q`, the requantization onnxruntime computes there (imported as one `qnn.requant`).

Both forms start with a Q of the float input: it is replaced by an integer graph input (the
tensor that Q produces), which is what the compiled network takes. The trailing DQ / Softmax are
kept; the importer leaves them off like any float tail. The result is again a valid ONNX model
(onnxruntime runs it), so the rewrite can be checked against onnxruntime directly.
Everything that has no integer form here is a one-line `DoryError` naming the node.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from dory_mlir.diagnostics import DoryError

MS_DOMAIN = "com.microsoft"
# Nodes that mark a model as quantized (QDQ or QOperator).
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
    "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid",
    "QLinearLeakyRelu", "QLinearSoftmax", "QLinearReduceMean", "ConvInteger", "MatMulInteger",
})
# Float ops a QDQ group may wrap, by what they become.
COMPUTE_OPS = {"Conv", "MatMul", "Gemm", "Add", "AveragePool", "GlobalAveragePool"}
MOVE_OPS = {"MaxPool", "Flatten", "Reshape"}
CLIP_OPS = {"Relu", "Clip"}
# The ops the importer lowers to integer `qnn` ops (after this rewrite); whatever feeds one of
# them must be one too, or the input (everything after the last of them is the dropped tail).
INTEGER_OPS = frozenset({
    "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearAveragePool", "QLinearGlobalAveragePool",
    "MaxPool", "Flatten", "Reshape", "Clip",
})
INT_TYPES = {onnx.TensorProto.UINT8: np.uint8, onnx.TensorProto.INT8: np.int8}


def is_quantized(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QUANTIZED_OPS for n in model.graph.node)


@dataclass(frozen=True)
class QParams:
    """The scale and zero point inputs of a Q or DQ node (names in the graph, values)."""

    scale: str
    zero_point: str
    scale_value: np.ndarray
    zp_value: np.ndarray
    axis: int


class Legalizer:
    """One rewrite of a model; `run()` returns the QOperator-form model."""

    def __init__(self, model: onnx.ModelProto, model_name: str):
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        self.graph = self.model.graph
        self.model_name = model_name
        self.consts: dict[str, np.ndarray] = {t.name: self.tensor(t, f"initializer '{t.name}'") for t in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value" and node.output:
                self.consts[node.output[0]] = self.tensor(node.attribute[0].t, f"the value of Constant '{node.output[0]}'")
        self.bypass_identities()
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.outputs = {o.name for o in self.graph.output}
        self.new_inits: list[onnx.TensorProto] = []

    # ------------------------------------------------------------------ helpers

    def tensor(self, tensor: onnx.TensorProto, what: str) -> np.ndarray:
        try:
            return numpy_helper.to_array(tensor)
        except Exception as e:  # noqa: BLE001 - onnx raises bare exceptions for malformed raw data
            raise DoryError(f"{what} cannot be read ({type(e).__name__}: {e})", self.model_name) from None

    def bypass_identities(self) -> None:
        """`Identity` is a no-op: its consumers read its input instead (the node itself stays for the
        graph outputs it names, and is dropped when nothing reads it)."""
        source = {n.output[0]: n.input[0] for n in self.graph.node
                  if n.op_type == "Identity" and len(n.input) == 1 and len(n.output) == 1 and n.input[0]}
        for node in self.graph.node:
            if node.op_type == "Identity":
                continue
            for index, name in enumerate(node.input):
                seen = set()
                while name in source and name not in seen:  # a chain of Identities (a cycle is left as it is)
                    seen.add(name)
                    name = source[name]
                node.input[index] = name

    def error(self, node: onnx.NodeProto, message: str) -> DoryError:
        return DoryError(message, f"{self.model_name}: node '{node.name or node.output[0]}' ({node.op_type})")

    def qparams(self, node: onnx.NodeProto) -> QParams:
        """Scale and zero point of a Q/DQ node; both must be constants."""
        if len(node.input) < 2 or node.input[1] not in self.consts:
            raise self.error(node, "the scale is not a constant (dynamic quantization is not supported)")
        scale = np.asarray(self.consts[node.input[1]])
        if scale.dtype != np.float32:
            raise self.error(node, f"scale of type {scale.dtype} is not supported (float32 only)")
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.consts:
                raise self.error(node, "the zero point is not a constant (dynamic quantization is not supported)")
            zp_name, zp = node.input[2], np.asarray(self.consts[node.input[2]])
        else:  # ONNX's default: a uint8 zero point 0 (or the DQ input's type)
            data = self.consts.get(node.input[0])
            dtype = data.dtype if node.op_type == "DequantizeLinear" and data is not None else np.uint8
            zp = np.zeros((), dtype=dtype)
            zp_name = f"{node.name or node.output[0]}_zero_point"
            if zp_name not in self.consts:
                self.consts[zp_name] = zp
                self.new_inits.append(numpy_helper.from_array(zp, zp_name))
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise self.error(node, f"the attribute 'axis' must be an integer, got {str(axis)[:40]!r}")
        if any(a.name == "block_size" and helper.get_attribute_value(a) for a in node.attribute):
            raise self.error(node, "blocked quantization is not supported")
        return QParams(node.input[1], zp_name, scale, zp, int(axis))

    def activation_dq(self, unit: onnx.NodeProto, name: str) -> tuple[str, QParams]:
        """The integer tensor and per-tensor quantization behind a dequantized activation."""
        dq = self.producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            what = f"'{dq.name}' ({dq.op_type})" if dq is not None else "a graph input"
            raise self.error(unit, f"input '{name}' comes from {what}, not from a DequantizeLinear; "
                                   "float ops between quantized layers are not supported")
        if dq.input[0] in self.consts:
            raise self.error(unit, f"input '{name}' is a constant where an activation is expected")
        q = self.qparams(dq)
        self.check_activation_params(dq, q)
        return dq.input[0], q

    def check_activation_params(self, node: onnx.NodeProto, q: QParams) -> None:
        if q.scale_value.size != 1 or q.zp_value.size != 1:
            raise self.error(node, "per-channel quantization of an activation is not supported")
        if q.zp_value.dtype not in (np.uint8, np.int8):
            raise self.error(node, f"{q.zp_value.dtype} activations are not supported (int8 or uint8 only)")

    def constant_dq(self, unit: onnx.NodeProto, name: str, what: str, output_axis: int | None = None) -> tuple[str, QParams]:
        """The integer initializer and quantization behind a dequantized weight or bias; per-channel
        weight quantization must be along the output channels (`output_axis`), as the QLinear ops take it."""
        dq = self.producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in self.consts:
            if name in self.consts:
                raise self.error(unit, f"{what} '{name}' is a float constant; it must be quantized "
                                       "(DequantizeLinear of an integer initializer)")
            raise self.error(unit, f"{what} '{name}' must be a DequantizeLinear of an integer initializer")
        q = self.qparams(dq)
        rank = np.asarray(self.consts[dq.input[0]]).ndim
        if output_axis is not None and q.scale_value.size > 1 and q.axis % max(rank, 1) != output_axis:
            raise self.error(unit, f"{what} '{name}' is quantized per channel along axis {q.axis}, "
                                   f"not along its output channels (axis {output_axis})")
        return dq.input[0], q

    def output_q(self, unit: onnx.NodeProto) -> tuple[onnx.NodeProto, QParams]:
        """The one QuantizeLinear that quantizes the output of a QDQ group."""
        out = unit.output[0]
        users = self.consumers.get(out, [])
        if len(users) != 1 or users[0].op_type != "QuantizeLinear" or out in self.outputs:
            raise self.error(unit, "its float output is not quantized by exactly one QuantizeLinear; "
                                   "float ops between quantized layers are not supported")
        q = self.qparams(users[0])
        self.check_activation_params(users[0], q)
        return users[0], q

    def int_constant(self, name: str, value: np.ndarray) -> str:
        if name not in self.consts:
            self.consts[name] = value
            self.new_inits.append(numpy_helper.from_array(value, name))
        return name

    # ------------------------------------------------------------------ groups

    def group(self, node: onnx.NodeProto) -> list[onnx.NodeProto]:
        """The QOperator node(s) for one QDQ group `DQ… → node → Q`."""
        q_node, qy = self.output_q(node)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        name, out = q_node.name or q_node.output[0], q_node.output[0]
        op = node.op_type

        def make(op_type: str, inputs: list[str], domain: str = "", **extra) -> onnx.NodeProto:
            return helper.make_node(op_type, inputs, [out], name=name, domain=domain or None, **extra)

        if op in MOVE_OPS or op in CLIP_OPS:
            x, qx = self.activation_dq(node, node.input[0])
            same = (np.array_equal(qx.scale_value, qy.scale_value) and np.array_equal(qx.zp_value, qy.zp_value)
                    and qx.zp_value.dtype == qy.zp_value.dtype)
            if op in MOVE_OPS:
                moved = make(op, [x, *node.input[1:]], **attrs)
            else:
                moved = self.integer_clip(node, x, qx, make, attrs)
            if same:
                return [moved]
            # Different output quantization: the op on the integers (exact: DQ is monotone), then
            # DQ → Q, the requantization onnxruntime computes for the group (imported as one requant).
            moved.name, moved.output[0] = node.name or f"{name}_op", f"{out}_int"
            dq = helper.make_node("DequantizeLinear", [moved.output[0], qx.scale, qx.zero_point], [f"{out}_float"],
                                  name=f"{name}_dequantize")
            return [moved, dq, helper.make_node("QuantizeLinear", [dq.output[0], qy.scale, qy.zero_point], [out], name=name)]
        if op == "Conv":
            x, qx = self.activation_dq(node, node.input[0])
            w, qw = self.constant_dq(node, node.input[1], "weight", output_axis=0)
            inputs = [x, qx.scale, qx.zero_point, w, qw.scale, qw.zero_point, qy.scale, qy.zero_point]
            if len(node.input) > 2 and node.input[2]:
                inputs.append(self.constant_dq(node, node.input[2], "bias")[0])
            return [make("QLinearConv", inputs, **attrs)]
        if op == "MatMul":
            a, qa = self.activation_dq(node, node.input[0])
            b, qb = self.constant_dq(node, node.input[1], "weight", output_axis=1)
            return [make("QLinearMatMul", [a, qa.scale, qa.zero_point, b, qb.scale, qb.zero_point, qy.scale, qy.zero_point])]
        if op == "Gemm":
            if float(attrs.get("beta", 1.0)) != 1.0 and len(node.input) > 2 and node.input[2]:
                raise self.error(node, "Gemm with beta other than 1 is not supported")
            a, qa = self.activation_dq(node, node.input[0])
            b, qb = self.constant_dq(node, node.input[1], "weight", output_axis=0 if attrs.get("transB") else 1)
            c = self.constant_dq(node, node.input[2], "bias")[0] if len(node.input) > 2 and node.input[2] else ""
            attrs.pop("beta", None)
            return [make("QGemm", [a, qa.scale, qa.zero_point, b, qb.scale, qb.zero_point, c, qy.scale, qy.zero_point],
                         MS_DOMAIN, **attrs)]
        if op == "Add":
            (a, qa), (b, qb) = (self.activation_dq(node, i) for i in node.input)
            return [make("QLinearAdd", [a, qa.scale, qa.zero_point, b, qb.scale, qb.zero_point, qy.scale, qy.zero_point],
                         MS_DOMAIN)]
        if op in ("AveragePool", "GlobalAveragePool"):
            x, qx = self.activation_dq(node, node.input[0])
            return [make(f"QLinear{op}", [x, qx.scale, qx.zero_point, qy.scale, qy.zero_point], MS_DOMAIN, **attrs)]
        raise AssertionError(op)

    def integer_clip(self, node: onnx.NodeProto, x: str, q: QParams, make, attrs: dict) -> onnx.NodeProto:
        """Relu/Clip between equal quantizations: `Q(clip(DQ(x), lo, hi))` = clip(x, Q(lo), Q(hi)),
        since Q is monotone and Q(DQ(x)) = x; Q(bound) is computed as onnxruntime's QuantizeLinear."""
        lo, hi = (0.0, None) if node.op_type == "Relu" else (attrs.get("min"), attrs.get("max"))
        for index, bound in ((1, "min"), (2, "max")):
            if node.op_type == "Clip" and len(node.input) > index and node.input[index]:
                if node.input[index] not in self.consts:
                    raise self.error(node, f"clip {bound} is not a constant")
                value = float(np.asarray(self.consts[node.input[index]]).reshape(-1)[0])
                lo, hi = (value, hi) if index == 1 else (lo, value)
        dtype = q.zp_value.dtype.type
        info = np.iinfo(dtype)
        scale, zp = np.float32(q.scale_value.reshape(-1)[0]), int(q.zp_value.reshape(-1)[0])

        def quantize(v: float | None, default: int) -> int:
            if v is None:
                return default
            return int(np.clip(np.rint(np.float32(v) / scale) + zp, info.min, info.max))

        prefix = node.name or node.output[0]
        bounds = [self.int_constant(f"{prefix}_{what}_int", np.array(quantize(v, d), dtype=dtype))
                  for what, v, d in (("min", lo, int(info.min)), ("max", hi, int(info.max)))]
        return make("Clip", [x, *bounds])

    # ------------------------------------------------------------------ driver

    def integer_input(self) -> None:
        """Replaces the QuantizeLinear of the float graph input by an integer graph input."""
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise DoryError(f"expected exactly one network input, found {len(inputs)}", self.model_name)
        graph_input = inputs[0]
        if graph_input.type.tensor_type.elem_type in INT_TYPES:
            return  # already integer
        users = self.consumers.get(graph_input.name, [])
        if len(users) != 1 or users[0].op_type != "QuantizeLinear":
            first = ", ".join(f"'{n.name}' ({n.op_type})" for n in users) or "nothing"
            raise DoryError(f"the float input '{graph_input.name}' goes to {first}, not to one QuantizeLinear",
                            self.model_name)
        q_node = users[0]
        q = self.qparams(q_node)
        self.check_activation_params(q_node, q)
        for d in graph_input.type.tensor_type.shape.dim:
            if d.dim_value <= 0:
                raise self.error(q_node, f"input '{graph_input.name}' has a dynamic dimension "
                                         f"'{d.dim_param or '?'}'; export with static shapes")
        dims = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        elem = onnx.TensorProto.UINT8 if q.zp_value.dtype == np.uint8 else onnx.TensorProto.INT8
        new_input = helper.make_tensor_value_info(q_node.output[0], elem, dims)
        graph_input.CopyFrom(new_input)
        self.graph.node.remove(q_node)

    def run(self) -> onnx.ModelProto:
        self.integer_input()
        nodes: list[onnx.NodeProto] = []
        absorbed: set[str] = set()  # output names of Q nodes replaced by a QOperator node
        for node in self.graph.node:
            if node.op_type == "QuantizeLinear" and node.output[0] in absorbed:
                continue
            if self.is_group(node):
                group = self.group(node)
                absorbed.add(group[-1].output[0])
                nodes.extend(group)
            else:
                nodes.append(node)
        nodes = self.live(nodes)
        self.check_body(nodes)
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        self.graph.initializer.extend(self.new_inits)
        if not any(o.domain == MS_DOMAIN for o in self.model.opset_import):
            self.model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
        return self.model

    def is_group(self, node: onnx.NodeProto) -> bool:
        """A float op reading at least one dequantized activation (a QDQ group to rewrite)."""
        if node.op_type not in COMPUTE_OPS | MOVE_OPS | CLIP_OPS:
            return False
        sources = [self.producer.get(name) for name in node.input]
        return any(p is not None and p.op_type == "DequantizeLinear" and p.input[0] not in self.consts for p in sources)

    def check_body(self, nodes: list[onnx.NodeProto]) -> None:
        """Everything that feeds an integer op must itself be one: a float op there is an error.

        Past the last integer ops only the tail remains (DequantizeLinear, Softmax, ...), which the
        importer leaves off. A DQ → Q pair feeding integer ops is a requantization (see `group`).
        """
        producer = {o: n for n in nodes for o in n.output}
        body: dict[int, onnx.NodeProto] = {}
        stack = [n for n in nodes if n.op_type in INTEGER_OPS]
        while stack:
            node = stack.pop()
            for name in node.input:
                source = producer.get(name)
                if source is not None and id(source) not in body:
                    body[id(source)] = source
                    stack.append(source)
        consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in nodes:
            for name in n.input:
                consumers[name].append(n)
        offenders = [n for n in nodes if id(n) in body and n.op_type not in INTEGER_OPS | {"Constant"}
                     and not self.is_requantization(n, producer, consumers)]
        if not offenders:
            return
        node = next((n for n in offenders if n.op_type not in ("QuantizeLinear", "DequantizeLinear")), offenders[0])
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            raise self.error(node, "float ops between quantized layers are not supported")
        raise self.error(node, f"unsupported op '{node.op_type}' in a quantized model")

    def is_requantization(self, node: onnx.NodeProto, producer: dict[str, onnx.NodeProto],
                          consumers: dict[str, list[onnx.NodeProto]]) -> bool:
        """A Q reading a DQ of an integer tensor, or a DQ read only by such Qs: a requantization."""
        if node.op_type == "QuantizeLinear":
            source = producer.get(node.input[0])
            return source is not None and source.op_type == "DequantizeLinear" and source.input[0] not in self.consts
        users = consumers.get(node.output[0], []) if node.op_type == "DequantizeLinear" else []
        return bool(users) and all(u.op_type == "QuantizeLinear" for u in users)

    def live(self, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
        """Drops nodes whose outputs nothing reads any more (the DQs folded into QLinear nodes)."""
        while True:
            used = {i for n in nodes for i in n.input} | self.outputs
            kept = [n for n in nodes if any(o in used for o in n.output)]
            if len(kept) == len(nodes):
                return kept
            nodes = kept


def legalize(model: onnx.ModelProto, model_name: str) -> onnx.ModelProto:
    """The QOperator form of a QDQ or QOperator model, with an integer graph input."""
    return Legalizer(model, model_name).run()
