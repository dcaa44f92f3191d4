"""Small seeded float networks quantized by onnxruntime's `quantize_static` (QDQ or QOperator).

The import tests run these through the compiler and compare with onnxruntime. Each network is
built with `onnx.helper` from seeded weights; calibration data are seeded too, so a
(network, options, seed) triple always gives the same model.

Options that matter for exactness against onnxruntime on x86 without VNNI: there the u8×s8
kernels add pairs of products in saturating 16-bit arithmetic (`vpmaddubsw`), so onnxruntime's
own accumulators are not exact for weights beyond ±64. `reduce_range` (7-bit weights, the
remedy onnxruntime documents) is therefore on by default.

    python -m dory_mlir.examples.ort_quantized OUT_DIR --name net --format qdq --activations uint8
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass(frozen=True)
class Options:
    format: str = "qdq"  # or "qoperator"
    activations: str = "uint8"  # or "int8"
    per_channel: bool = True
    symmetric_activations: bool = False
    input_low: float = 0.0  # calibration/input data are uniform in [input_low, 1): 0 gives input zero point 0 in uint8
    reduce_range: bool = True
    seed: int = 0


class _Graph:
    """Collects nodes and seeded initializers of one float network."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: tuple[int, ...], scale: float = 0.3) -> str:
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x: str, name: str, c_in: int, c_out: int, k: int = 3, pad: int = 1, stride: int = 1,
             group: int = 1, bias: bool = True, relu: bool = True) -> str:
        inputs = [x, self.weight(f"{name}.w", (c_out, c_in // group, k, k))]
        if bias:
            inputs.append(self.weight(f"{name}.b", (c_out,), 0.1))
        y = self.node("Conv", inputs, name, pads=[pad] * 4, strides=[stride] * 2, group=group)
        return self.node("Relu", [y], f"{name}_relu") if relu else y

    def model(self, shape: tuple[int, ...], outputs: list[tuple[str, list[int]]]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def conv(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """A padded 3x3 conv with bias and ReLU, then an unpadded strided one without bias or ReLU."""
    g = _Graph(seed)
    y = g.conv("x", "conv1", 3, 8)
    y = g.conv(y, "conv2", 8, 8, k=3, pad=0, stride=2, bias=False, relu=False)
    return g.model((1, 3, 10, 10), [(y, [1, 8, 4, 4])]), (1, 3, 10, 10)


def conv1d(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """1-D convolutions (N×C×W): padded k=3 with ReLU, then strided k=3 unpadded."""
    g = _Graph(seed)
    y = g.node("Conv", ["x", g.weight("c1.w", (8, 4, 3)), g.weight("c1.b", (8,), 0.1)], "c1", pads=[1, 1])
    y = g.node("Relu", [y], "c1_relu")
    y = g.node("Conv", [y, g.weight("c2.w", (8, 8, 3))], "c2", strides=[2])
    return g.model((1, 4, 16), [(y, [1, 8, 7])]), (1, 4, 16)


def depthwise(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """Pointwise conv, padded depthwise 3x3, pointwise again."""
    g = _Graph(seed)
    y = g.conv("x", "pw1", 4, 8, k=1, pad=0)
    y = g.conv(y, "dw", 8, 8, group=8)
    y = g.conv(y, "pw2", 8, 8, k=1, pad=0, relu=False)
    return g.model((1, 4, 8, 8), [(y, [1, 8, 8, 8])]), (1, 4, 8, 8)


def residual(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """conv → conv added to the first conv's output (a residual Add), then ReLU."""
    g = _Graph(seed)
    a = g.conv("x", "conv1", 3, 8)
    b = g.conv(a, "conv2", 8, 8, relu=False)
    s = g.node("Add", [a, b], "add")
    y = g.node("Relu", [s], "add_relu")
    return g.model((1, 3, 8, 8), [(y, [1, 8, 8, 8])]), (1, 3, 8, 8)


def pools(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """conv → MaxPool 2x2 → AveragePool 2x2 → conv → GlobalAveragePool."""
    g = _Graph(seed)
    y = g.conv("x", "conv1", 3, 8)
    y = g.node("MaxPool", [y], "maxpool", kernel_shape=[2, 2], strides=[2, 2])
    y = g.node("AveragePool", [y], "avgpool", kernel_shape=[2, 2], strides=[2, 2])
    y = g.conv(y, "conv2", 8, 8, k=1, pad=0)
    y = g.node("GlobalAveragePool", [y], "gap")
    return g.model((1, 3, 16, 16), [(y, [1, 8, 1, 1])]), (1, 3, 16, 16)


def linear(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """Gemm with bias + ReLU → Gemm without bias → MatMul, on a 1×48 input."""
    g = _Graph(seed)
    y = g.node("Gemm", ["x", g.weight("fc1.w", (16, 48), 0.2), g.weight("fc1.b", (16,), 0.1)], "fc1", transB=1)
    y = g.node("Relu", [y], "fc1_relu")
    y = g.node("Gemm", [y, g.weight("fc2.w", (16, 12), 0.3)], "fc2")
    y = g.node("MatMul", [y, g.weight("fc3.w", (12, 10), 0.3)], "fc3")
    return g.model((1, 48), [(y, [1, 10])]), (1, 48)


def net(seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """A small CNN with every supported construct and a Softmax at the end."""
    g = _Graph(seed)
    a = g.conv("x", "conv1", 3, 8)
    b = g.conv(a, "dw", 8, 8, group=8)
    b = g.conv(b, "pw", 8, 8, k=1, pad=0, relu=False)
    s = g.node("Relu", [g.node("Add", [a, b], "add")], "add_relu")
    y = g.node("MaxPool", [s], "maxpool", kernel_shape=[2, 2], strides=[2, 2])
    y = g.conv(y, "conv2", 8, 16, stride=2)
    y = g.node("GlobalAveragePool", [y], "gap")
    y = g.node("Flatten", [y], "flatten")
    y = g.node("Gemm", [y, g.weight("fc.w", (10, 16), 0.3), g.weight("fc.b", (10,), 0.1)], "fc", transB=1)
    y = g.node("Softmax", [y], "softmax")
    return g.model((1, 3, 16, 16), [(y, [1, 10])]), (1, 3, 16, 16)


NETWORKS: dict[str, Callable[[int], tuple[onnx.ModelProto, tuple[int, ...]]]] = {
    "conv": conv, "conv1d": conv1d, "depthwise": depthwise, "residual": residual, "pools": pools, "linear": linear, "net": net,
}


def sample(shape: tuple[int, ...], options: Options, index: int) -> np.ndarray:
    """Seeded float input `index` (0.. are calibration data; the tests use others)."""
    rng = np.random.default_rng([options.seed, index])
    return rng.uniform(options.input_low, 1.0, size=shape).astype(np.float32)


def quantize(
    model: onnx.ModelProto, shape: tuple[int, ...], out: Path, options: Options, *, weights: str = "int8",
    symmetric_weights: bool | None = None, reduce_range: bool | None = None, nodes_to_exclude: tuple[str, ...] = (),
) -> Path:
    """`quantize_static` of a float model with seeded calibration data; writes `out`.

    The keyword arguments reach the options the tests need beyond `Options` (weight type and
    symmetry, 8-bit weights, nodes left in float)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.samples = iter([{"x": sample(shape, options, i)} for i in range(4)])

        def get_next(self):  # noqa: ANN201 - onnxruntime's interface
            return next(self.samples, None)

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8, "int16": QuantType.QInt16}
    extra = {"ActivationSymmetric": options.symmetric_activations}
    if symmetric_weights is not None:
        extra["WeightSymmetric"] = symmetric_weights
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static advises pre-processing on every call
    with tempfile.TemporaryDirectory(prefix="dory-float-") as tmp:
        float_path = Path(tmp) / "float.onnx"
        onnx.save(model, float_path)
        quantize_static(
            str(float_path), str(out), Reader(),
            quant_format=QuantFormat.QDQ if options.format == "qdq" else QuantFormat.QOperator,
            activation_type=types[options.activations], weight_type=types[weights],
            per_channel=options.per_channel,
            reduce_range=options.reduce_range if reduce_range is None else reduce_range,
            nodes_to_exclude=list(nodes_to_exclude), extra_options=extra,
        )
    return out


def write(name: str, out: Path, options: Options) -> tuple[Path, tuple[int, ...]]:
    """Builds network `name`, quantizes it to `out` and returns the path and its input shape."""
    model, shape = NETWORKS[name](options.seed)
    return quantize(model, shape, out, options), shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--name", default="net", choices=sorted(NETWORKS))
    parser.add_argument("--format", default="qdq", choices=["qdq", "qoperator"])
    parser.add_argument("--activations", default="uint8", choices=["uint8", "int8"])
    parser.add_argument("--per-tensor", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    options = Options(args.format, args.activations, not args.per_tensor, seed=args.seed)
    path, _ = write(args.name, args.out_dir / "model.onnx", options)
    print(path)


if __name__ == "__main__":
    main()
