"""Seeded small float CNNs: the project's own "bring your own model" inputs.

`dory-quantize` takes a float ONNX model; the tests and the README need such models without
downloading any. This module builds them with `onnx.helper` (opset 13, static shapes, float32),
with He-initialized seeded weights, so the same seed always gives the same bytes.

    python -m dory_mlir.examples.float_cnns OUT_DIR [--name NAME] [--seed S] [--samples N]

writes `model.onnx` and `samples/sample_K.npy` (float32 inputs of the model's input shape, a
calibration folder for `dory-quantize --calibration`) into OUT_DIR (or OUT_DIR/NAME for each
network when --name is not given).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
SAMPLES_DIR = "samples"


@dataclass(frozen=True)
class Tensor:
    """A value of the network being built: its ONNX name and (static) shape."""

    name: str
    shape: tuple[int, ...]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def _out_size(size: int, k: int, stride: int, pad_total: int) -> int:
    return (size + pad_total - k) // stride + 1


class FloatNetBuilder:
    """Builds a float CNN node by node, tracking shapes (NCHW or (1, K), batch 1) without evaluating.

    Layer methods take an optional input `x` (default: the last tensor) and return the new
    `Tensor`, so residual branches can be formed. Weights are He-normal (std sqrt(2 / fan_in)),
    biases N(0, 0.1²): activations keep roughly unit scale through the network, which gives
    every layer a meaningful quantization range.
    """

    def __init__(self, seed: int, input_shape: Sequence[int], name: str):
        shape = tuple(int(d) for d in input_shape)
        if len(shape) not in (2, 4) or shape[0] != 1:
            raise ValueError(f"input shape must be NCHW or (1, K) with batch 1, got {shape}")
        self.name = name
        self.input = Tensor(INPUT_NAME, shape)
        self._rng = np.random.default_rng([seed, 2])
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: list[TensorProto] = []
        self._last = self.input
        self._count: dict[str, int] = {}

    def _fresh(self, op_type: str) -> str:
        n = self._count.get(op_type, 0)
        self._count[op_type] = n + 1
        return f"{op_type.lower()}{n}"

    def _const(self, name: str, values: np.ndarray) -> str:
        self._initializers.append(numpy_helper.from_array(values.astype(np.float32), name))
        return name

    def _node(self, op_type: str, inputs: list[str], shape: tuple[int, ...], **attrs) -> Tensor:
        name = self._fresh(op_type)
        self._nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        self._last = Tensor(name, shape)
        return self._last

    def _he(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return self._rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)

    def _bias(self, n: int) -> np.ndarray:
        return self._rng.normal(0.0, 0.1, size=n)

    def conv(
        self,
        c_out: int,
        k: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        relu: bool = True,
        x: Tensor | None = None,
    ) -> Tensor:
        """Conv with "same"-style padding (k // 2 on each side), then Relu unless `relu=False`."""
        x = x or self._last
        _, c_in, h, w = x.shape
        (kh, kw), (sh, sw) = _pair(k), _pair(stride)
        if c_in % groups or c_out % groups:
            raise ValueError(f"groups {groups} must divide {c_in} input and {c_out} output channels")
        pads = [kh // 2, kw // 2, kh // 2, kw // 2]
        prefix = self._fresh("conv_param")
        inputs = [x.name, self._const(f"{prefix}.weight", self._he((c_out, c_in // groups, kh, kw), c_in // groups * kh * kw))]
        if bias:
            inputs.append(self._const(f"{prefix}.bias", self._bias(c_out)))
        shape = (1, c_out, _out_size(h, kh, sh, 2 * (kh // 2)), _out_size(w, kw, sw, 2 * (kw // 2)))
        y = self._node("Conv", inputs, shape, kernel_shape=[kh, kw], strides=[sh, sw], pads=pads, group=groups)
        return self.relu(y) if relu else y

    def relu(self, x: Tensor | None = None) -> Tensor:
        x = x or self._last
        return self._node("Relu", [x.name], x.shape)

    def _pool(self, op_type: str, k: int | Sequence[int], stride: int | Sequence[int] | None, x: Tensor | None) -> Tensor:
        x = x or self._last
        (kh, kw), (sh, sw) = _pair(k), _pair(stride or k)
        n, c, h, w = x.shape
        shape = (n, c, _out_size(h, kh, sh, 0), _out_size(w, kw, sw, 0))
        return self._node(op_type, [x.name], shape, kernel_shape=[kh, kw], strides=[sh, sw])

    def maxpool(self, k: int | Sequence[int], stride: int | Sequence[int] | None = None, x: Tensor | None = None) -> Tensor:
        return self._pool("MaxPool", k, stride, x)

    def avgpool(self, k: int | Sequence[int], stride: int | Sequence[int] | None = None, x: Tensor | None = None) -> Tensor:
        return self._pool("AveragePool", k, stride, x)

    def global_avgpool(self, x: Tensor | None = None) -> Tensor:
        x = x or self._last
        return self._node("GlobalAveragePool", [x.name], x.shape[:2] + (1, 1))

    def add(self, a: Tensor, b: Tensor, relu: bool = True) -> Tensor:
        if a.shape != b.shape:
            raise ValueError(f"residual add of different shapes {a.shape} and {b.shape}")
        y = self._node("Add", [a.name, b.name], a.shape)
        return self.relu(y) if relu else y

    def flatten(self, x: Tensor | None = None) -> Tensor:
        x = x or self._last
        return self._node("Flatten", [x.name], (1, int(np.prod(x.shape[1:]))), axis=1)

    def gemm(self, m: int, bias: bool = True, relu: bool = False, x: Tensor | None = None) -> Tensor:
        """Fully connected as PyTorch exports nn.Linear: `Gemm(x, W[M, K], b, transB=1)`."""
        x = x or self._last
        k = x.shape[1]
        prefix = self._fresh("fc_param")
        inputs = [x.name, self._const(f"{prefix}.weight", self._he((m, k), k))]
        if bias:
            inputs.append(self._const(f"{prefix}.bias", self._bias(m)))
        y = self._node("Gemm", inputs, (1, m), transB=1)
        return self.relu(y) if relu else y

    def matmul(self, m: int, bias: bool = False, relu: bool = False, x: Tensor | None = None) -> Tensor:
        """Fully connected as `MatMul(x, W[K, M])`, with a bias as a following `Add`."""
        x = x or self._last
        k = x.shape[1]
        prefix = self._fresh("fc_param")
        y = self._node("MatMul", [x.name, self._const(f"{prefix}.weight", self._he((k, m), k))], (1, m))
        if bias:
            y = self._node("Add", [y.name, self._const(f"{prefix}.bias", self._bias(m))], (1, m))
        return self.relu(y) if relu else y

    def build(self) -> onnx.ModelProto:
        """The checked model; its output is the last tensor, renamed `logits`."""
        last = self._nodes[-1]
        last.output[0] = OUTPUT_NAME
        graph = helper.make_graph(
            self._nodes,
            self.name,
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, self.input.shape)],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, self._last.shape)],
            initializer=self._initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dory_mlir.examples.float_cnns"
        )
        model.ir_version = 8  # what onnxruntime 1.x accepts for opset 13
        onnx.checker.check_model(model, full_check=True)
        return model


# ---------------------------------------------------------------------- catalogue


def _conv_stack(seed: int) -> onnx.ModelProto:
    b = FloatNetBuilder(seed, (1, 3, 16, 16), "conv_stack")
    b.conv(8, 3)
    b.conv(16, 3, stride=2)
    b.conv(16, 3, stride=2, bias=False)
    b.flatten()
    b.gemm(10)
    return b.build()


def _depthwise_separable(seed: int) -> onnx.ModelProto:
    b = FloatNetBuilder(seed, (1, 3, 16, 16), "depthwise_separable")
    b.conv(8, 3)
    b.conv(8, 3, stride=2, groups=8)
    b.conv(16, 1)
    b.conv(16, 3, groups=16)
    b.conv(16, 1, bias=False)
    b.global_avgpool()
    b.flatten()
    b.matmul(10)
    return b.build()


def _residual(seed: int) -> onnx.ModelProto:
    b = FloatNetBuilder(seed, (1, 3, 16, 16), "residual")
    x = b.conv(8, 3)
    y = b.conv(8, 3)
    y = b.conv(8, 3, relu=False)
    b.add(x, y)
    b.maxpool(2)
    b.flatten()
    b.gemm(10, bias=False)
    return b.build()


def _pooling(seed: int) -> onnx.ModelProto:
    """Non-square input; MaxPool (before its ReLU: a requantizing max pool), AveragePool, GlobalAveragePool."""
    b = FloatNetBuilder(seed, (1, 3, 12, 20), "pooling")
    b.conv(8, 3, relu=False)
    b.maxpool(2)
    b.relu()
    b.conv(16, 3)
    b.avgpool(2)
    b.conv(16, 1)
    b.global_avgpool()
    b.flatten()
    b.gemm(10)
    return b.build()


def _conv1d(seed: int) -> onnx.ModelProto:
    """A 1-D signal as (1, C, 1, W): 1xK convolutions and pools, a MatMul + Add head."""
    b = FloatNetBuilder(seed, (1, 4, 1, 64), "conv1d")
    b.conv(8, (1, 5), stride=(1, 2))
    b.maxpool((1, 2))
    b.conv(16, (1, 3), bias=False)
    b.global_avgpool()
    b.flatten()
    b.matmul(6, bias=True)
    return b.build()


def _mlp(seed: int) -> onnx.ModelProto:
    """Fully connected only on a (1, 64) input: MatMul + Add + Relu, then Gemm.

    The input is 2-D because a Flatten of the float input would come before the model's first
    QuantizeLinear, where a quantized model must start."""
    b = FloatNetBuilder(seed, (1, 64), "mlp")
    b.matmul(32, bias=True, relu=True)
    b.gemm(10)
    return b.build()


def float_networks() -> dict[str, Callable[[int], onnx.ModelProto]]:
    """The float networks by name; each callable takes the seed and returns the model.

    conv_stack: conv3x3, conv3x3/s2, conv3x3/s2 without bias, Gemm. depthwise_separable:
    conv3x3, depthwise3x3/s2, pointwise, depthwise3x3, pointwise without bias, global average
    pool, MatMul without bias. residual: conv3x3, two conv3x3, Add + Relu, maxpool2, Gemm
    without bias. pooling (12x20 input): conv, maxpool2, conv, avgpool2, conv1x1, global
    average pool, Gemm. conv1d (1x64 input): conv1x5/s2, maxpool1x2, conv1x3 without bias,
    global average pool, MatMul + Add. mlp ((1, 64) input): MatMul + Add + Relu, Gemm. Every conv but the
    residual branch's second one is followed by Relu.
    """
    return {
        "conv_stack": _conv_stack,
        "depthwise_separable": _depthwise_separable,
        "residual": _residual,
        "pooling": _pooling,
        "conv1d": _conv1d,
        "mlp": _mlp,
    }


def input_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    """The static shape of the model's (single, non-initializer) input."""
    initializers = {t.name for t in model.graph.initializer}
    (graph_input,) = [i for i in model.graph.input if i.name not in initializers]
    return tuple(d.dim_value for d in graph_input.type.tensor_type.shape.dim)


def sample_inputs(seed: int, shape: Sequence[int], count: int) -> list[np.ndarray]:
    """`count` seeded float32 inputs, N(0, 1) per value (the networks' nominal input scale)."""
    rng = np.random.default_rng([seed, 3])
    return [rng.standard_normal(size=tuple(shape)).astype(np.float32) for _ in range(count)]


def write_float_network(model: onnx.ModelProto, out_dir: str | Path, seed: int, samples: int = 4) -> Path:
    """Writes `model.onnx` and `samples/sample_K.npy` into `out_dir`; returns the model path."""
    out = Path(out_dir)
    (out / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    onnx.save(model, out / "model.onnx")
    for k, x in enumerate(sample_inputs(seed, input_shape(model), samples)):
        np.save(out / SAMPLES_DIR / f"sample_{k}.npy", x)
    return out / "model.onnx"


def main(argv: Sequence[str] | None = None) -> None:
    networks = float_networks()
    parser = argparse.ArgumentParser(description="Write seeded float CNNs (ONNX) with sample inputs.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--name", choices=sorted(networks), help="write this network into OUT_DIR (default: all, each into OUT_DIR/NAME)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=4, help="sample inputs to write (default 4)")
    args = parser.parse_args(argv)
    targets = {args.name: args.out_dir} if args.name else {n: args.out_dir / n for n in networks}
    for name, out in targets.items():
        print(f"{name}: {write_float_network(networks[name](args.seed), out, args.seed, args.samples)}")


if __name__ == "__main__":
    main()
