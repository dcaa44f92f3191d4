"""Per-node comparison of the golden model with onnxruntime, each node fed onnxruntime's inputs.

`compare` imports a quantized model, runs onnxruntime on the original model and on its QOperator
legalization (asserting they agree: the rewrite is what onnxruntime itself executes), then runs
the golden model with every node's result replaced by onnxruntime's before the next node reads
it, so a rounding difference in one node never propagates: each node is compared in isolation.
For every element the requantization also records how far its exact value lies from the nearest
rounding boundary (a half-integer), which is what the documented bound is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from xdsl.interpreter import impl, register_impls

from dory_mlir.dialects import qnn
from dory_mlir.frontend.onnx_import import import_onnx_file
from dory_mlir.frontend.qdq_legalize import legalize
from dory_mlir.golden.interpreter import QnnFunctions, channel_broadcast, network_function, run_network
from dory_mlir.ir_utils import loc_name


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """onnxruntime (default optimizations, one thread) with `names` exposed as outputs."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    exposed.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


@register_impls
class Isolated(QnnFunctions):
    """Golden op implementations that record each ONNX node's result and continue with onnxruntime's."""

    def __init__(self, reference: dict[str, np.ndarray]):
        super().__init__()
        self.reference = reference  # ONNX node name → onnxruntime's tensor
        self.ours: dict[str, np.ndarray] = {}
        self.boundary_distance: dict[str, np.ndarray] = {}

    def _node_result(self, op, values: tuple) -> tuple:
        name = loc_name(op)
        if name not in self.reference:  # an intermediate tensor the original model does not have
            return values
        self.ours[name] = values[0]
        return (self.reference[name].astype(np.int64).reshape(values[0].shape),)

    @impl(qnn.RequantOp)
    def run_requant(self, interpreter, op: qnn.RequantOp, args):
        x, mul, add = args
        # Exact (x·mul + add)·scale / divisor: its distance to the nearest integer is the distance of
        # the rounded value v = that − 1/2 from the nearest half-integer.
        t = (x.astype(object) * channel_broadcast(mul.astype(object), x.ndim)
             + channel_broadcast(add.astype(object), x.ndim)) * op.scale.value.data
        divisor = op.divisor.value.data
        frac = np.vectorize(lambda v: Fraction(v % divisor, divisor))(t)
        self.boundary_distance[loc_name(op)] = np.vectorize(lambda f: float(min(f, 1 - f)))(frac)
        return self._node_result(op, super().run_requant(interpreter, op, args).values)

    @impl(qnn.MaxPoolOp)
    def run_max_pool(self, interpreter, op, args):
        return self._node_result(op, super().run_max_pool(interpreter, op, args).values)

    @impl(qnn.ReshapeOp)
    def run_reshape(self, interpreter, op, args):
        return self._node_result(op, super().run_reshape(interpreter, op, args).values)


@dataclass
class NodeComparison:
    node: str
    values: int
    mismatches: int
    max_difference: int
    worst_distance: float  # the largest boundary distance among mismatching elements (0 if none)


@dataclass
class Comparison:
    nodes: list[NodeComparison] = field(default_factory=list)
    integer_input: np.ndarray | None = None

    @property
    def mismatches(self) -> int:
        return sum(n.mismatches for n in self.nodes)


def compare(path: Path, x: np.ndarray) -> Comparison:
    """Every node of the imported network against onnxruntime, in isolation (see the module doc)."""
    model = onnx.load(path)
    legal = legalize(model, path.name)
    input_name = legal.graph.input[0].name
    tensors = {o for n in model.graph.node for o in n.output}
    names = [n.output[0] for n in legal.graph.node
             if n.output[0] in tensors and n.op_type not in ("DequantizeLinear", "Softmax", "QLinearSoftmax")]
    original = run_ort(model, {model.graph.input[0].name: x}, [input_name, *names])
    xi = original[input_name]
    legalized = run_ort(legal, {input_name: xi}, names)
    for name in names:
        assert np.array_equal(original[name], legalized[name]), f"onnxruntime computes {name} differently after the rewrite"
    by_node = {n.name: original[n.output[0]] for n in legal.graph.node if n.output[0] in original}
    functions = Isolated(by_node)
    module = import_onnx_file(path)
    ir_shape = qnn.shape_of(network_function(module).function_type.inputs.data[0])  # 1-D: N×C×1×W
    run_network(module, xi.astype(np.int64).reshape(ir_shape), functions)
    result = Comparison(integer_input=xi)
    for name, ours in functions.ours.items():
        ref = by_node[name].astype(np.int64).reshape(ours.shape)
        wrong = ours != ref
        distance = functions.boundary_distance.get(name, np.zeros(ours.shape))
        result.nodes.append(NodeComparison(
            name, ours.size, int(wrong.sum()), int(np.abs(ours - ref).max(initial=0)),
            float(distance[wrong].max(initial=0.0)),
        ))
    return result
