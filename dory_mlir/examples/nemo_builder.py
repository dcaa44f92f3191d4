"""Generate small NEMO-style integer ONNX networks together with their golden files.

The project's tests need bit-exact reference networks that exist without `../shared/`. This
module builds networks in the exact graph pattern NEMO exports (opset 9, float32 tensors that
hold integers, see `../shared/models/README.md`), with seeded int8 weights and requantization
constants calibrated on a seeded input so that every layer's output spreads over [0, 255].

The golden activations come from `onnx.reference.ReferenceEvaluator`, never from our compiler.
They equal exact integer arithmetic because the generator checks that every float32 value the
graph computes (including every partial sum of a convolution or matrix product) is an integer
of magnitude below 2^24, which float32 represents exactly.

Typical use::

    b = NemoNetBuilder(seed=0, input_shape=(1, 1, 16, 16))
    b.conv(8, 3)
    b.maxpool(2)
    b.linear(10)
    write_example(b.build(), "out/my_net", seed=0)

or from the shell: `python -m dory_mlir.examples.nemo_builder OUT_DIR [--name NAME] [--seed S]`.
"""

from __future__ import annotations

import argparse

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from dory_mlir.golden.files import write_dory_txt

OPSET = 9
IR_VERSION = 6  # what PyTorch 1.6 (NEMO's exporter) writes
EXACT_LIMIT = 2**24  # float32 holds every integer of magnitude below this exactly
INPUT_NAME = "input"

# Ops whose float output is legitimately not an integer: the mean of AveragePool (NEMO
# multiplies it back by kh*kw right away), the float division by 2^d that the next Floor
# completes (exact, being a power of two), and the float tails the compiler drops.
_NON_INTEGER_OPS = frozenset({"AveragePool", "Div", "Sigmoid", "LogSoftmax"})
_TAILS = {"sigmoid": "Sigmoid", "logsoftmax": "LogSoftmax"}

IntPair = int | Sequence[int]


@dataclass(frozen=True)
class Tensor:
    """A value of the network being built: its ONNX name and shape (NCHW, or (1, M))."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Layer:
    """A deployable layer of a NEMO graph: the name of its main node and its last tensor."""

    name: str
    output: str


def make_input(seed: int, shape: Sequence[int]) -> np.ndarray:
    """The seeded uint8-valued float32 input (NCHW), used for calibration and for the goldens."""
    rng = np.random.default_rng([seed, 1])
    return rng.integers(0, 256, size=tuple(shape)).astype(np.float32)


def _quiet_float_tails() -> np.errstate:
    """Silence numpy's overflow warnings: the float tails see 32-bit logits, and their values
    are never used (every value that is used is checked to be an exact integer)."""
    return np.errstate(over="ignore", divide="ignore", invalid="ignore")


def _evaluate(op_type: str, inputs: Sequence[np.ndarray], **attrs) -> np.ndarray:
    """Run one opset-9 ONNX op with the reference evaluator (the same semantics as the goldens)."""
    names = [f"in{j}" for j in range(len(inputs))]
    node = helper.make_node(op_type, names, ["out"], **attrs)
    graph = helper.make_graph(
        [node],
        "single_op",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, inputs)
        ],
        [helper.make_value_info("out", onnx.TypeProto())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    with _quiet_float_tails():
        (result,) = ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))
    return np.asarray(result)


def _check_exact(what: str, value: np.ndarray) -> None:
    """Raise unless `value` holds only integers that float32 represents exactly."""
    if value.size and (
        np.abs(value).max() >= EXACT_LIMIT or not np.array_equal(value, np.round(value))
    ):
        raise ValueError(
            f"{what}: values are not integers of magnitude < 2^24, so float32 ONNX semantics "
            "would differ from exact integer arithmetic"
        )


def _mean_roundtrip_exact(n: int) -> bool:
    """Whether float32 (s / n) * n gives back s for every window sum s of n uint8 values."""
    s = np.arange(255 * n + 1, dtype=np.float32)
    return np.array_equal((s / np.float32(n)) * np.float32(n), s)


def _pair(v: IntPair) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def _pads(pad: int | Sequence[int] | None, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    """Normalize a padding spec to ONNX's (top, left, bottom, right); None means k // 2."""
    if pad is None:
        return kernel[0] // 2, kernel[1] // 2, kernel[0] // 2, kernel[1] // 2
    if isinstance(pad, int):
        return pad, pad, pad, pad
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    top, left, bottom, right = pad
    return top, left, bottom, right


class NemoNetBuilder:
    """Builds a NEMO-style integer network layer by layer.

    Every node is evaluated as soon as it is added, on `make_input(seed, input_shape)`: the
    requantization constants are chosen from the actual accumulator values, and every float32
    value is checked to be exact (`ValueError` otherwise). Layer methods take an optional input
    `x` (default: the previous layer's output) and return the new `Tensor`, so branches and
    residual connections can be formed.
    """

    def __init__(self, seed: int, input_shape: Sequence[int]):
        shape = tuple(int(d) for d in input_shape)
        if len(shape) != 4 or shape[0] != 1:
            raise ValueError(f"input shape must be NCHW with batch 1, got {shape}")
        self._rng = np.random.default_rng([seed, 0])
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: list[TensorProto] = []
        self._values: dict[str, np.ndarray] = {INPUT_NAME: make_input(seed, shape)}
        self._node_count = 0
        self._param_count = 0
        self.input = Tensor(INPUT_NAME, shape)
        self._last = self.input

    # ------------------------------------------------------------------ graph plumbing

    def _node(self, op_type: str, inputs: Sequence[str], **attrs) -> str:
        """Append a node named like NEMO's (`Conv_3`), evaluate it, return its output name."""
        index = self._node_count
        self._node_count += 1
        name, output = f"{op_type}_{index}", str(index)
        self._nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attrs))
        value = _evaluate(op_type, [self._values[i] for i in inputs], **attrs)
        if value.dtype == np.float32 and op_type not in _NON_INTEGER_OPS:
            _check_exact(name, value)
        self._values[output] = value
        return output

    def _const(self, value: np.ndarray) -> str:
        return self._node("Constant", [], value=numpy_helper.from_array(value))

    def _param(self, name: str, value: np.ndarray) -> str:
        value = value.astype(np.float32)
        self._initializers.append(numpy_helper.from_array(value, name))
        self._values[name] = value
        return name

    def _next_param_index(self) -> int:
        self._param_count += 1
        return self._param_count - 1

    def _result(self, name: str) -> Tensor:
        self._last = Tensor(name, tuple(self._values[name].shape))
        return self._last

    def _spatial_input(self, x: Tensor | None) -> Tensor:
        x = x or self._last
        if len(x.shape) != 4:
            raise ValueError(f"{x.name} has shape {x.shape}; this layer needs an NCHW tensor")
        return x

    def _int8(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._rng.integers(-128, 128, size=shape).astype(np.float32)

    def _check_accumulation(self, what: str, op_type: str, inputs: Sequence[str], **attrs) -> None:
        """Bound every partial sum of a Conv/MatMul/Gemm by running it on absolute values."""
        bound = _evaluate(op_type, [np.abs(self._values[i]) for i in inputs], **attrs).max()
        if bound >= EXACT_LIMIT:
            raise ValueError(
                f"{what}: partial sums may reach {int(bound)} >= 2^24; use fewer inputs"
            )

    # ------------------------------------------------------------------ layers

    def conv(
        self,
        c_out: int,
        kernel: IntPair,
        stride: IntPair = 1,
        pad: int | Sequence[int] | None = None,
        groups: int = 1,
        bias: bool = False,
        standalone_pad: bool = False,
        x: Tensor | None = None,
        dilation: IntPair = 1,
    ) -> Tensor:
        """Conv (+ optional int bias) with its batch-norm/requant chain: NEMO's conv layer.

        `pad` is an int, (ph, pw), (top, left, bottom, right) or None for k // 2; with
        `standalone_pad` it becomes a separate opset-9 `Pad` node and the Conv's pads are 0.
        Depthwise: `groups = c_out = C_in`. `dilation` spreads the window (eegnet-style).
        """
        x = self._spatial_input(x)
        c_in = x.shape[1]
        if c_in % groups or c_out % groups:
            raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
        kh, kw = _pair(kernel)
        top, left, bottom, right = _pads(pad, (kh, kw))
        index = self._next_param_index()
        source = x.name
        if standalone_pad:
            pads = [0, 0, top, left, 0, 0, bottom, right]
            source = self._node("Pad", [source], mode="constant", pads=pads, value=0.0)
            top = left = bottom = right = 0
        attrs = dict(
            dilations=list(_pair(dilation)),
            group=groups,
            kernel_shape=[kh, kw],
            pads=[top, left, bottom, right],
            strides=list(_pair(stride)),
        )
        weight = self._int8((c_out, c_in // groups, kh, kw))
        inputs = [source, self._param(f"conv{index}.weight", weight)]
        if bias:
            spread = int(_evaluate("Conv", [self._values[i] for i in inputs], **attrs).std()) + 1
            values = self._rng.integers(-spread, spread + 1, size=c_out)
            inputs.append(self._param(f"conv{index}.bias", values))
        self._check_accumulation(f"conv{index}", "Conv", inputs, **attrs)
        acc = self._node("Conv", inputs, **attrs)
        return self._result(self._requant(acc, index))

    def _requant(self, acc: str, index: int) -> str:
        """Append NEMO's requant chain after `acc`; return the Clip's output.

        The chain is `Mul(kappa) → Add(lambda) → Cast → Mul(m) → Div(2^d) → Cast → Clip`.
        Per channel, the accumulator's [30 %, 97 %] quantile range maps linearly onto [0, 255];
        a random quarter of the channels get a negative kappa and map their [3 %, 70 %] range
        the other way round (a batch norm with negative gamma). kappa is kept small enough that
        kappa * acc + lambda stays below 2^23; m / 2^d carries the rest of the scale.
        """
        acc_value = self._values[acc]
        channels = acc_value.shape[1]
        per_channel = acc_value[0].reshape(channels, -1).astype(np.float64)
        sign = np.where(self._rng.random(channels) < 0.25, -1, 1)
        q03, q30, q70, q97 = np.quantile(per_channel, [0.03, 0.30, 0.70, 0.97], axis=1)
        zero_at = np.round(np.where(sign > 0, q30, q70))  # the accumulator value mapped to 0
        span = np.maximum(np.where(sign > 0, q97 - zero_at, zero_at - q03), 1.0)
        scale = 255.0 / span  # the wanted |kappa| * m / 2^d
        m = int(self._rng.integers(2, 64))
        kappa_max = (EXACT_LIMIT // 2) // (np.abs(per_channel).max(axis=1) + np.abs(zero_at) + 1)
        fitting = [d for d in range(48) if np.all(np.round(scale * 2.0**d / m) <= kappa_max)]
        if not fitting:
            raise ValueError(f"bn{index}: accumulators too large for an exact requantization")
        d = max(fitting)
        kappa = sign * np.maximum(1.0, np.round(scale * 2.0**d / m))
        lamda = -kappa * zero_at
        shape = (1, channels, 1, 1)
        t = self._node("Mul", [self._param(f"bn{index}.kappa", kappa.reshape(shape)), acc])
        t = self._node("Add", [t, self._param(f"bn{index}.lamda", lamda.reshape(shape))])
        t = self._node("Cast", [t], to=TensorProto.INT64)
        t = self._node("Mul", [t, self._const(np.array([m], dtype=np.int64))])
        t = self._node("Div", [t, self._const(np.array([2**d], dtype=np.int64))])
        t = self._node("Cast", [t], to=TensorProto.FLOAT)
        return self._node("Clip", [t], min=0.0, max=255.0)

    def maxpool(self, k: IntPair, s: IntPair | None = None, x: Tensor | None = None) -> Tensor:
        """MaxPool without padding; the stride defaults to the kernel size."""
        x = self._spatial_input(x)
        attrs = dict(kernel_shape=list(_pair(k)), pads=[0, 0, 0, 0], strides=list(_pair(s or k)))
        return self._result(self._node("MaxPool", [x.name], **attrs))

    def avgpool(self, k: IntPair, s: IntPair | None = None, x: Tensor | None = None) -> Tensor:
        """NEMO's average pool: `AveragePool → Mul(kh*kw) → Mul(m) → Div(2^d) → Floor`.

        The first Mul turns the mean back into the window sum, which is exact only for window
        sizes where float32 (s / n) * n == s for all sums (e.g. 4, 9, 16, 36, but not 25).
        m / 2^d maps the largest observed window sum to at most 255.
        """
        x = self._spatial_input(x)
        kh, kw = _pair(k)
        if not _mean_roundtrip_exact(kh * kw):
            raise ValueError(f"avgpool {kh}x{kw}: float32 mean * {kh * kw} is not the window sum")
        attrs = dict(kernel_shape=[kh, kw], pads=[0, 0, 0, 0], strides=list(_pair(s or k)))
        t = self._node("AveragePool", [x.name], **attrs)
        t = self._node("Mul", [t, self._const(np.array(kh * kw, dtype=np.float32))])
        d = int(self._rng.integers(6, 12))
        m = max(1, (255 * 2**d) // max(int(self._values[t].max()), 1))
        t = self._node("Mul", [t, self._const(np.array(m, dtype=np.float32))])
        t = self._node("Div", [t, self._const(np.array(2**d, dtype=np.float32))])
        return self._result(self._node("Floor", [t]))

    def identity(self, x: Tensor | None = None) -> Tensor:
        """An `Identity` node (exporters leave them anywhere; they compute nothing)."""
        x = x or self._last
        return self._result(self._node("Identity", [x.name]))

    def add(self, a: Tensor, b: Tensor, second_stage: bool = False, unclipped_peak: int | None = None) -> Tensor:
        """Residual add: `Mul(a, ca), Mul(b, cb) → Add → Div(2^d) → Floor → Clip(0, 255)`.

        ca / cb weight the branches with a random ratio, scaled so that the 98 % quantile of
        the weighted sum maps to 255. With `second_stage`, the add is followed by a separate
        requantization as some NEMO exports write it, `Add → Div(2^d) → Floor → Mul(m) →
        Div(2^e) → Floor → Clip` with odd ca, cb (no exact power-of-two fold into the add; the
        first stage's values stay within [0, 255]) and m / 2^e no power of two: DORY deploys and
        numbers that stage as a layer of its own (`deployable_layers`).
        With `unclipped_peak`, the add ends at its Floor with no Clip, as some NEMO exports write it,
        and the weighted sum's maximum maps to that peak: beyond 255 the exported network's own
        integers exceed 8 bits (the layer reading it computes on them).
        """
        if a.shape != b.shape:
            raise ValueError(f"residual add of different shapes {a.shape} and {b.shape}")
        d = int(self._rng.integers(3, 7))
        ratio = self._rng.uniform(0.5, 2.0)
        mix = self._values[a.name] + ratio * self._values[b.name]
        top = max(float(mix.max() if second_stage or unclipped_peak else np.quantile(mix, 0.98)), 1.0)
        peak = unclipped_peak or 255
        ca = max(1, round(2**d * peak / top))
        cb = max(1, round(2**d * peak * ratio / top))
        if second_stage:  # odd and never above the bound: floor(Σ / 2^d) <= 255 on this input
            ca, cb = ca | 1, cb | 1
            while np.floor((self._values[a.name] * ca + self._values[b.name] * cb) / 2**d).max() > 255 and ca + cb > 2:
                ca, cb = max(1, ca - 2), max(1, cb - 2)
        ta = self._node("Mul", [a.name, self._const(np.array(ca, dtype=np.float32))])
        tb = self._node("Mul", [b.name, self._const(np.array(cb, dtype=np.float32))])
        t = self._node("Add", [ta, tb])
        t = self._node("Div", [t, self._const(np.array(2**d, dtype=np.float32))])
        t = self._node("Floor", [t])
        if second_stage:
            m, e = int(self._rng.integers(33, 63)) | 1, 6  # odd m over 64: not a power of two
            t = self._node("Mul", [t, self._const(np.array(m, dtype=np.float32))])
            t = self._node("Div", [t, self._const(np.array(2**e, dtype=np.float32))])
            t = self._node("Floor", [t])
        if unclipped_peak:
            return self._result(t)
        return self._result(self._node("Clip", [t], min=0.0, max=255.0))

    def linear(
        self, m: int, use_gemm: bool = False, bias: bool = False, x: Tensor | None = None
    ) -> Tensor:
        """Final fully-connected layer: `Flatten → MatMul(x, W[K, M])` or
        `Flatten → Gemm(x, W[M, K], b, transB=1)`.

        No requantization: the output is the raw (32-bit) accumulator. PyTorch exports a biased
        Linear as Gemm, so `bias` needs `use_gemm`; an opset-9 Gemm always has a bias input,
        which is zero when `bias` is False.
        """
        x = x or self._last
        if bias and not use_gemm:
            raise ValueError("NEMO exports a linear layer with bias as Gemm: pass use_gemm=True")
        index = self._next_param_index()
        flat = self._node("Flatten", [x.name], axis=1)
        k = self._values[flat].shape[1]
        if use_gemm:
            weight = self._int8((m, k))
            spread = int((self._values[flat] @ weight.T).std()) + 1 if bias else 0
            bias_values = self._rng.integers(-spread, spread + 1, size=m)
            inputs = [
                flat,
                self._param(f"fc{index}.weight", weight),
                self._param(f"fc{index}.bias", bias_values),
            ]
            op_type, attrs = "Gemm", dict(alpha=1.0, beta=1.0, transB=1)
        else:
            inputs = [flat, self._param(f"fc{index}.weight", self._int8((k, m)))]
            op_type, attrs = "MatMul", {}
        self._check_accumulation(f"fc{index}", op_type, inputs, **attrs)
        return self._result(self._node(op_type, inputs, **attrs))

    def tail(self, kind: str, x: Tensor | None = None) -> Tensor:
        """A float `sigmoid` or `logsoftmax` after the last linear layer (the compiler drops it)."""
        if kind not in _TAILS:
            raise ValueError(f"unknown tail {kind!r}; expected one of {sorted(_TAILS)}")
        x = x or self._last
        attrs = {"axis": 1} if kind == "logsoftmax" else {}
        return self._result(self._node(_TAILS[kind], [x.name], **attrs))

    def build(self) -> onnx.ModelProto:
        """The checked opset-9 model; its output is the last tensor produced."""
        graph = helper.make_graph(
            self._nodes,
            "nemo_example",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, self.input.shape)],
            [helper.make_tensor_value_info(self._last.name, TensorProto.FLOAT, self._last.shape)],
            initializer=self._initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="dory_mlir.examples.nemo_builder",
        )
        onnx.checker.check_model(model, full_check=True)
        return model


# ---------------------------------------------------------------------- layers and goldens

_ANCHOR_OPS = frozenset({"Conv", "MatMul", "Gemm", "MaxPool", "AveragePool"})
_CHAIN_OPS = frozenset({"Mul", "Add", "Cast", "Div", "Floor", "Clip"})


def deployable_layers(model: onnx.ModelProto) -> list[Layer]:
    """The deployable layers of a NEMO graph in network order, as the golden files number them.

    A layer starts at a Conv, MatMul, Gemm, MaxPool, AveragePool or residual Add (an Add of two
    computed tensors). All but MaxPool extend over the single-consumer requant chain that
    follows (Mul/Add/Cast/Div with constants) up to its Clip, or its Floor (+ Clip); a linear
    layer has such a chain only when it is not the last one (NEMO's eegnet). A standalone Pad
    is part of the next conv, the residual Add's input Muls are part of the Add; Flatten and
    float tails end no layer. This gives the golden files' layer count for every NEMO network
    in `../shared/models/dory/`.
    """
    graph = model.graph
    constants = {t.name for t in graph.initializer}
    constants |= {n.output[0] for n in graph.node if n.op_type == "Constant"}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)

    def data_inputs(node: onnx.NodeProto) -> list[str]:
        return [name for name in node.input if name and name not in constants]

    def chain_end(tensor: str) -> str:
        while len(consumers[tensor]) == 1:
            user = consumers[tensor][0]
            if user.op_type not in _CHAIN_OPS or data_inputs(user) != [tensor]:
                break
            tensor = user.output[0]
            if user.op_type == "Clip":
                break
            if user.op_type == "Floor":
                after = consumers[tensor]
                if len(after) == 1 and after[0].op_type == "Clip":
                    tensor = after[0].output[0]
                break
        return tensor

    def producer_of(tensor: str) -> onnx.NodeProto | None:
        return next((n for n in graph.node if tensor in n.output), None)

    layers = []
    for node in graph.node:
        residual_add = node.op_type == "Add" and len(data_inputs(node)) == 2
        if node.op_type in _ANCHOR_OPS or residual_add:
            output = node.output[0] if node.op_type == "MaxPool" else chain_end(node.output[0])
            layers.append(Layer(node.name, output))
            # A residual add's chain ending at a Floor that feeds another requant stage (Mul by a
            # constant ...): DORY deploys that stage as a layer of its own.
            end = producer_of(output)
            after = consumers[output]
            if residual_add and end is not None and end.op_type == "Floor" and len(after) == 1 \
                    and after[0].op_type == "Mul" and data_inputs(after[0]) == [output]:
                stage_end = chain_end(output)
                if stage_end != output:
                    layers.append(Layer(after[0].name, stage_end))
    return layers


def golden_activations(model: onnx.ModelProto, x: np.ndarray) -> list[tuple[Layer, np.ndarray]]:
    """Every deployable layer's output (NCHW or (1, M), int64) on input `x`, computed by the
    ONNX reference evaluator and checked to be exact integers."""
    feeds = {_graph_input(model).name: x}
    with _quiet_float_tails():
        results = ReferenceEvaluator(model).run(None, feeds, intermediate=True)
    goldens = []
    for layer in deployable_layers(model):
        value = np.asarray(results[layer.output])
        _check_exact(f"output of layer {layer.name}", value)
        goldens.append((layer, value.astype(np.int64)))
    return goldens


def _graph_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    initializers = {t.name for t in model.graph.initializer}
    return next(i for i in model.graph.input if i.name not in initializers)


def _to_hwc(value: np.ndarray) -> np.ndarray:
    """DORY's layout: (1, C, H, W) → (H, W, C); a linear layer's (1, M) → (M,)."""
    if value.ndim == 4:
        return value[0].transpose(1, 2, 0)
    if value.ndim == 2:
        return value[0]
    raise ValueError(f"no DORY layout for a tensor of shape {value.shape}")


def write_example(model: onnx.ModelProto, out_dir: str | Path, seed: int) -> Path:
    """Write `model.onnx`, `input.txt` (`make_input(seed, ...)`, header [C, H, W], values HWC)
    and one `out_layerN.txt` per deployable layer (HWC) into `out_dir`; return `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape = tuple(d.dim_value for d in _graph_input(model).type.tensor_type.shape.dim)
    x = make_input(seed, shape)
    onnx.save(model, out / "model.onnx")
    write_dory_txt(out / "input.txt", "input", tuple(shape[1:]), x[0].transpose(1, 2, 0))
    for n, (layer, value) in enumerate(golden_activations(model, x)):
        hwc = _to_hwc(value)
        write_dory_txt(out / f"out_layer{n}.txt", layer.name, hwc.shape, hwc)
    return out


# ---------------------------------------------------------------------- catalogue


def _tiny_cnn(seed: int) -> onnx.ModelProto:
    b = NemoNetBuilder(seed, (1, 1, 16, 16))
    b.conv(8, 3)
    b.maxpool(2)
    b.conv(16, 3, stride=2)
    b.linear(10)
    return b.build()


def _mobile_block(seed: int) -> onnx.ModelProto:
    b = NemoNetBuilder(seed, (1, 3, 24, 24))
    b.conv(8, 3)
    b.conv(8, 3, stride=2, groups=8)
    b.conv(16, 1)
    b.avgpool(6)
    b.linear(10, use_gemm=True, bias=True)
    b.tail("logsoftmax")
    return b.build()


def _residual(seed: int) -> onnx.ModelProto:
    b = NemoNetBuilder(seed, (1, 1, 32, 32))
    x = b.conv(8, 5, stride=2)
    branch = b.conv(8, 3, stride=2, x=x)
    branch = b.conv(8, 3, x=branch)
    bypass = b.conv(8, 1, stride=2, x=x)
    b.add(branch, bypass)
    b.linear(2)
    b.tail("sigmoid")
    return b.build()


def _residual_stage(seed: int) -> onnx.ModelProto:
    """A residual add followed by a separate requantization stage (its own layer, as DORY numbers it)."""
    b = NemoNetBuilder(seed, (1, 2, 16, 16))
    x = b.conv(8, 3, stride=2)
    branch = b.conv(8, 3, x=x)
    b.add(branch, x, second_stage=True)
    b.conv(4, 3)
    b.linear(3)
    return b.build()


def _residual_wide(seed: int) -> onnx.ModelProto:
    """A residual add with no clip whose values reach 400 on the golden input (NEMO; seen up to 358
    in the exporter's own goldens), read by a conv: a 16-bit tensor where the compile is exact."""
    b = NemoNetBuilder(seed, (1, 2, 16, 16))
    x = b.conv(8, 3, stride=2)
    branch = b.conv(8, 3, x=x)
    b.add(branch, x, unclipped_peak=400)
    b.conv(8, 3, pad=1)
    b.linear(4)
    return b.build()


def _padded(seed: int) -> onnx.ModelProto:
    b = NemoNetBuilder(seed, (1, 1, 8, 32))
    b.conv(8, 3, pad=(1, 1, 1, 1), bias=True, standalone_pad=True)
    b.conv(8, (1, 5), pad=(0, 2), bias=True, standalone_pad=True)
    b.conv(8, (1, 3), pad=(0, 1), bias=True)
    b.maxpool((1, 4))
    b.linear(4)
    return b.build()


def example_networks() -> dict[str, Callable[[int], onnx.ModelProto]]:
    """The example networks by name; each callable takes the seed and returns the model.

    tiny_cnn: conv3x3, maxpool, conv3x3/s2, MatMul FC. mobile_block (3-channel input): conv3x3,
    depthwise 3x3/s2, pointwise, avgpool 6x6, Gemm FC with bias, LogSoftmax. residual:
    conv5x5/s2, branch conv3x3/s2 + conv3x3, bypass conv1x1/s2, add, MatMul FC, Sigmoid.
    padded: standalone Pad + conv3x3 with bias, standalone Pad + conv1x5 with bias, conv1x3
    with bias, maxpool 1x4, MatMul FC. residual_stage: conv3x3/s2, conv3x3, add followed by a
    separate requantization stage (a layer of its own), conv3x3, MatMul FC. residual_wide: conv3x3/s2,
    conv3x3, an add with no clip whose values exceed 255, conv3x3 (reading them), MatMul FC. Every conv has its
    per-channel batch norm (kappa, lambda).
    """
    return {
        "tiny_cnn": _tiny_cnn,
        "mobile_block": _mobile_block,
        "residual": _residual,
        "residual_stage": _residual_stage,
        "padded": _padded,
        "residual_wide": _residual_wide,
    }


def main(argv: Sequence[str] | None = None) -> None:
    examples = example_networks()
    parser = argparse.ArgumentParser(
        description="Write seeded NEMO-style example networks with their golden files."
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--name",
        choices=sorted(examples),
        help="write this example into OUT_DIR (default: all, each into OUT_DIR/NAME)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    targets = {args.name: args.out_dir} if args.name else {n: args.out_dir / n for n in examples}
    for name, out in targets.items():
        write_example(examples[name](args.seed), out, args.seed)
        print(f"{name}: {out}")


if __name__ == "__main__":
    main()
