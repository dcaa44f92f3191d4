"""onnxruntime as the reference for quantized ONNX models with a float input (QDQ, QOperator).

Such a model starts with a `QuantizeLinear` of its float input; the compiled network starts with
the integer tensor that node produces. This module
- quantizes a float input exactly as onnxruntime's `QuantizeLinear` does (float32 division,
  round half to even, saturation), so the compiled network and onnxruntime see the same integers;
- runs onnxruntime with its default graph optimizations (QDQ groups fused into QLinear kernels)
  and returns, for given ONNX node names, the integer tensor each node produces.

Exposing an intermediate tensor as a graph output can change what onnxruntime computes: on x86
CPUs without VNNI it converts int8 activations to uint8 (`qdq_s8_to_u8`) so that QDQ groups fuse
into u8s8 kernels, and it cannot convert a tensor that is a graph output, so the group then runs
in float instead. The tensors are therefore taken from onnxruntime's own optimized graph (level
`ORT_ENABLE_EXTENDED`, saved by the session and run again with optimizations off), where a tensor
the optimizer renamed is found through the node that now produces it and one it converted to
uint8 is shifted back by 128. Every run checks that this graph's outputs equal those of a plain
default session, so the per-layer tensors are those of onnxruntime's own execution.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from dory_mlir.diagnostics import DoryError
from dory_mlir.frontend.loader import read_model
from dory_mlir.quantize import float_input, read_sample

# Input index of the output zero point, by op type of the integer-producing ops.
_OUTPUT_ZERO_POINT = {
    "QuantizeLinear": 2, "QLinearConv": 7, "QLinearMatMul": 7, "QGemm": 8, "QLinearAdd": 7, "QLinearMul": 7,
    "QLinearGlobalAveragePool": 4, "QLinearAveragePool": 4, "QLinearSigmoid": 4, "QLinearLeakyRelu": 4,
    "QLinearConcat": 1,
}
_QUANTIZED_OPS = frozenset(_OUTPUT_ZERO_POINT) - {"QuantizeLinear"} | {"DequantizeLinear"}
# Ops whose output has their first input's type (integer data moved, not computed).
_PASS_THROUGH = frozenset({"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Pad"})
INT8_TO_UINT8_OFFSET = 128


@dataclass(frozen=True)
class InputQuantizer:
    """The model's first `QuantizeLinear`: float input → the integer network input."""

    node: str
    tensor: str  # the integer tensor it produces
    scale: np.float32
    zero_point: int
    dtype: np.dtype  # uint8 or int8

    @property
    def range(self) -> tuple[int, int]:
        info = np.iinfo(self.dtype)
        return int(info.min), int(info.max)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """`clip(rint(x / scale) + zero_point)` as onnxruntime's MLAS computes it: the division
        in float32 (x86 `divps`), rounding half to even (`cvtps2dq`), then saturation."""
        x32 = np.asarray(x, dtype=np.float32)
        if not np.all(np.isfinite(x32)):
            raise DoryError("the float input has NaN or infinite values")
        lo, hi = self.range
        q = np.rint(x32 / self.scale).astype(np.float64) + self.zero_point
        return np.clip(q, lo, hi).astype(np.int64)

    def random_input(self, shape: Sequence[int], seed: int) -> np.ndarray:
        """A seeded float32 input uniform over the range the quantization represents, so every
        integer level (and both saturation ends) occurs, whatever the calibration was."""
        lo, hi = self.range
        low, high = (lo - self.zero_point - 0.5) * float(self.scale), (hi - self.zero_point + 0.5) * float(self.scale)
        return np.random.default_rng([seed, 5]).uniform(low, high, size=tuple(shape)).astype(np.float32)


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def input_quantizer(model: onnx.ModelProto, where: str) -> InputQuantizer | None:
    """The `QuantizeLinear` of the model's float input, or None when the model is not a quantized
    model with a float input (e.g. NEMO's integer-valued float models)."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    ops = {n.op_type for n in model.graph.node}
    if len(inputs) != 1 or not (ops & _QUANTIZED_OPS) or "QuantizeLinear" not in ops:
        return None
    name = inputs[0].name
    if inputs[0].type.tensor_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE):
        return None
    consumers = [n for n in model.graph.node if name in n.input]
    if len(consumers) != 1 or consumers[0].op_type != "QuantizeLinear":
        first = ", ".join(f"'{n.name}' ({n.op_type})" for n in consumers) or "nothing"
        raise DoryError(f"the float input '{name}' goes to {first}, not to one QuantizeLinear", where)
    node = consumers[0]
    values = _initializers(model)
    if node.input[1] not in values:
        raise DoryError(f"node '{node.name}' (QuantizeLinear): the scale is not a constant", where)
    scale = np.asarray(values[node.input[1]], dtype=np.float32)
    zero_point = values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.uint8(0)
    if zero_point is None:
        raise DoryError(f"node '{node.name}' (QuantizeLinear): the zero point is not a constant", where)
    zero_point = np.asarray(zero_point)
    if scale.size != 1 or zero_point.size != 1:
        raise DoryError(f"node '{node.name}' (QuantizeLinear): per-axis quantization of the input is not supported", where)
    if zero_point.dtype not in (np.uint8, np.int8):
        raise DoryError(f"node '{node.name}' (QuantizeLinear): quantizes to {zero_point.dtype}, not int8 or uint8", where)
    return InputQuantizer(node.name, node.output[0], np.float32(scale.reshape(())), int(zero_point.reshape(())), zero_point.dtype)


def model_input_quantizer(path: Path) -> InputQuantizer | None:
    """`input_quantizer` of a model file (None for a model that is not .onnx)."""
    if path.suffix != ".onnx":
        return None
    return input_quantizer(read_model(path), str(path))


def load_float_input(path: Path, model_path: Path) -> np.ndarray:
    """A float input `.npy` of the model's input shape (the batch dimension may be left off)."""
    graph_input = float_input(read_model(model_path), str(model_path))
    return read_sample(path, graph_input.shape)


def integer_dtype(model: onnx.ModelProto, tensor: str) -> np.dtype:
    """The element type a tensor of the original model has: the zero point type of the op that
    computes it, looked up through ops that only move integers (MaxPool, Flatten, ...)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    values = _initializers(model)
    while tensor in producers:
        node = producers[tensor]
        if node.op_type in _OUTPUT_ZERO_POINT:
            index = _OUTPUT_ZERO_POINT[node.op_type]
            if index < len(node.input) and node.input[index] in values:
                return values[node.input[index]].dtype
            return np.dtype(np.uint8)  # ONNX's default zero point type
        if node.op_type not in _PASS_THROUGH:
            break
        tensor = node.input[0]
    raise DoryError(f"tensor '{tensor}' is not an integer tensor of the quantized model")


@dataclass(frozen=True)
class Located:
    """Where onnxruntime's optimized graph holds the tensor of an original node."""

    tensor: str
    offset: int  # added to the optimized graph's values to give the original ones


class OnnxRuntimeReference:
    """onnxruntime's execution of one model, with the integer tensors of named nodes exposed."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort

        self._ort = ort
        self.path = path
        self.model = read_model(path)
        self.threads = threads  # results do not depend on it; the tests share two cores
        try:
            self.default = ort.InferenceSession(str(path), self._options(), providers=["CPUExecutionProvider"])
            with tempfile.TemporaryDirectory(prefix="dory-ort-") as tmp:
                options = self._options(ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
                options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
                ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                self.optimized = onnx.load(options.optimized_model_filepath)
        except Exception as e:  # onnxruntime's errors have assorted types and long texts
            raise DoryError(f"onnxruntime cannot run the model: {str(e).strip().splitlines()[0]}", str(path)) from None
        self.input_name = self.default.get_inputs()[0].name
        self._types = self._optimized_types()

    def _options(self, level=None):
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3  # no warnings about hardware-specific optimized graphs
        if level is not None:
            options.graph_optimization_level = level
        return options

    def locate(self, node_name: str) -> Located:
        """The optimized graph's tensor that holds the output of original node `node_name`."""
        nodes = {n.name: n for n in self.model.graph.node}
        if node_name not in nodes:
            raise DoryError(f"the model has no node '{node_name}'", str(self.path))
        node = nodes[node_name]
        original_type = integer_dtype(self.model, node.output[0])
        produced = {o for n in self.optimized.graph.node for o in n.output} | {i.name for i in self.optimized.graph.input}
        tensor = node.output[0] if node.output[0] in produced else None
        if tensor is None:
            # Renamed by the optimizer: the node itself survived (QuantizeLinear kept), or the
            # op it quantizes was fused into a QLinear node that keeps that op's name.
            producers = {o: n for n in self.model.graph.node for o in n.output}
            candidates = [node.name]
            if node.op_type == "QuantizeLinear" and node.input[0] in producers:
                candidates.append(producers[node.input[0]].name)
            for candidate in candidates:
                matches = [n for n in self.optimized.graph.node if n.name == candidate or n.name.startswith(candidate + "/")]
                if matches:
                    tensor = matches[0].output[0]
                    break
        if tensor is None:
            raise DoryError(f"onnxruntime's optimized graph has no tensor for node '{node_name}'", str(self.path))
        offset = 0
        optimized_type = self._types.get(tensor)
        if original_type == np.int8 and optimized_type == onnx.TensorProto.UINT8:
            offset = -INT8_TO_UINT8_OFFSET
        return Located(tensor, offset)

    def _optimized_types(self) -> dict[str, int]:
        """Element types of the optimized graph's tensors, from its zero points and inputs."""
        values = {t.name: t.data_type for t in self.optimized.graph.initializer}
        types = {i.name: i.type.tensor_type.elem_type for i in self.optimized.graph.input}
        for node in self.optimized.graph.node:
            index = _OUTPUT_ZERO_POINT.get(node.op_type)
            if index is not None and index < len(node.input) and node.input[index] in values:
                types[node.output[0]] = values[node.input[index]]
            elif node.op_type in _PASS_THROUGH and node.input and node.input[0] in types:
                types[node.output[0]] = types[node.input[0]]
        return types

    def run(self, x: np.ndarray, node_names: Sequence[str]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        """The model's outputs on float input `x` and each named node's integer tensor (int64)."""
        located = {name: self.locate(name) for name in node_names}
        feeds = {self.input_name: np.asarray(x, dtype=np.float32)}
        outputs = self.default.run(None, feeds)
        exposed = onnx.ModelProto()
        exposed.CopyFrom(self.optimized)
        present = {o.name for o in exposed.graph.output}
        for place in located.values():
            if place.tensor not in present:
                exposed.graph.output.append(onnx.ValueInfoProto(name=place.tensor))
                present.add(place.tensor)
        options = self._options(self._ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        session = self._ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
        results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
        for output, value in zip(self.default.get_outputs(), outputs, strict=True):
            if not np.array_equal(results[output.name], value, equal_nan=True):
                raise DoryError(
                    f"onnxruntime's optimized graph computes output '{output.name}' differently from its default session",
                    str(self.path),
                )
        tensors = {}
        for name, place in located.items():
            value = results[place.tensor]
            if not np.issubdtype(value.dtype, np.integer):
                raise DoryError(f"onnxruntime computes the tensor of node '{name}' in {value.dtype}", str(self.path))
            tensors[name] = value.astype(np.int64) + place.offset
        return outputs, tensors


def saturating_u8s8_kernels(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether onnxruntime's u8s8 matrix kernels here add pairs of u8·s8 products in 16 bits with
    saturation (`vpmaddubsw`): x86 CPUs without VNNI. There, weights beyond ±64 can make its conv
    and matmul results differ from exact integer arithmetic by more than rounding."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), None)
    return flags is not None and "sse2" in flags and not {"avx512_vnni", "avx_vnni"} & set(flags)


# ---------------------------------------------------------------------- onnx's ReferenceEvaluator

def _contrib_ops() -> list[type]:
    """Python implementations of the com.microsoft quantized ops onnxruntime fuses QDQ groups into
    (onnx's ReferenceEvaluator has the standard QLinearConv/QLinearMatMul, not these). Integer parts
    are exact; the requantization evaluates the op's formula in float64 with the model's float32
    scales (combined in float32 as onnxruntime combines them) and rounds half to even."""
    from onnx.reference.op_run import OpRun

    def saturate(values: np.ndarray, zero_point) -> np.ndarray:
        dtype = np.asarray(zero_point).dtype if zero_point is not None else np.dtype(np.uint8)
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)

    def centered(x, zero_point) -> np.ndarray:
        return x.astype(np.int64) - (np.asarray(zero_point).astype(np.int64) if zero_point is not None else 0)

    class QGemm(OpRun):
        op_domain = "com.microsoft"

        def _run(self, a, a_scale, a_zp, b, b_scale, b_zp, c=None, y_scale=None, y_zp=None,
                 alpha=None, transA=None, transB=None):  # noqa: N803 - ONNX attribute names
            alpha = np.float32(1.0 if alpha is None else alpha)
            A, B = centered(a, a_zp), b.astype(np.int64)
            if b_zp is not None:  # per-column zero points of B (N) or one
                B = B - np.asarray(b_zp).astype(np.int64).reshape((1, -1) if not transB else (-1, 1))
            A = A.T if transA else A
            B = B.T if transB else B
            acc = A @ B + (c.astype(np.int64) if c is not None else 0)
            scale = np.float32(np.float32(alpha * np.float32(a_scale)) * np.asarray(b_scale, dtype=np.float32)) if alpha != 1 else \
                np.float32(a_scale) * np.asarray(b_scale, dtype=np.float32)
            if y_scale is None:
                return ((acc * scale.astype(np.float64)).astype(np.float32),)
            return (saturate(acc * (scale / np.float32(y_scale)).astype(np.float64) + np.asarray(y_zp, dtype=np.float64), y_zp),)

    class QLinearAdd(OpRun):
        op_domain = "com.microsoft"

        def _run(self, a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp=None):
            value = (centered(a, a_zp) * np.float64(a_scale) + centered(b, b_zp) * np.float64(b_scale)) / np.float64(c_scale)
            return (saturate(value + (np.float64(c_zp) if c_zp is not None else 0), c_zp),)

    class QLinearGlobalAveragePool(OpRun):
        op_domain = "com.microsoft"

        def _run(self, x, x_scale, x_zp, y_scale, y_zp, channels_last=None):
            if channels_last:
                raise NotImplementedError("QLinearGlobalAveragePool with channels_last")
            axes = tuple(range(2, x.ndim))
            count = int(np.prod([x.shape[a] for a in axes]))
            total = centered(x, x_zp).sum(axis=axes, keepdims=True)
            value = total * np.float64(x_scale) / (np.float64(y_scale) * count)
            return (saturate(value + (np.float64(y_zp) if y_zp is not None else 0), y_zp),)

    class QLinearAveragePool(OpRun):
        op_domain = "com.microsoft"

        def _run(self, x, x_scale, x_zp, y_scale, y_zp=None, auto_pad=None, ceil_mode=None, channels_last=None,
                 count_include_pad=None, kernel_shape=None, pads=None, strides=None):
            kernel = list(kernel_shape)
            if ceil_mode or channels_last or len(kernel) != 2 or (auto_pad or "NOTSET") not in ("NOTSET", b"NOTSET"):
                raise NotImplementedError("QLinearAveragePool other than 2-D, NCHW, explicit pads, floor mode")
            stride = list(strides or [1, 1])
            t, l, b_, r = list(pads or [0, 0, 0, 0])
            include = bool(count_include_pad)
            xc = np.pad(centered(x, x_zp), ((0, 0), (0, 0), (t, b_), (l, r)))
            ones = np.pad(np.ones(x.shape[2:], dtype=np.int64), ((t, b_), (l, r)))
            ho = (x.shape[2] + t + b_ - kernel[0]) // stride[0] + 1
            wo = (x.shape[3] + l + r - kernel[1]) // stride[1] + 1
            out = np.empty((*x.shape[:2], ho, wo), dtype=np.float64)
            for i in range(ho):
                for j in range(wo):
                    rows, cols = slice(i * stride[0], i * stride[0] + kernel[0]), slice(j * stride[1], j * stride[1] + kernel[1])
                    count = kernel[0] * kernel[1] if include else int(ones[rows, cols].sum())
                    out[:, :, i, j] = xc[:, :, rows, cols].sum(axis=(2, 3)) / count
            value = out * np.float64(x_scale) / np.float64(y_scale)
            return (saturate(value + (np.float64(y_zp) if y_zp is not None else 0), y_zp),)

    return [QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool]


class OnnxReference(OnnxRuntimeReference):
    """onnx's `ReferenceEvaluator` as the reference: exact integer arithmetic in its QLinearConv and
    QLinearMatMul (accumulators in int32/int64, requantized in float64 with the float32 scales,
    rounded half to even), where onnxruntime's u8s8 kernels on x86 without VNNI saturate pairs of
    products in 16 bits. It runs the graph onnxruntime fuses the model into (QDQ groups become
    QLinear ops, so nothing runs in float that onnxruntime computes in integers), with the
    com.microsoft ops of `_contrib_ops`; the tensors of original nodes are located as for
    onnxruntime."""

    name = "onnx"

    def run(self, x: np.ndarray, node_names: Sequence[str]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        from onnx.reference import ReferenceEvaluator

        located = {name: self.locate(name) for name in node_names}
        feeds = {self.input_name: np.asarray(x, dtype=np.float32)}
        outputs = [o.name for o in self.optimized.graph.output]
        wanted = list(dict.fromkeys([*outputs, *(place.tensor for place in located.values())]))
        graph = onnx.ModelProto()
        graph.CopyFrom(self.optimized)
        for opset in graph.opset_import:  # the evaluator implements (De)QuantizeLinear from opset 19 on,
            if opset.domain in ("", "ai.onnx") and opset.version < 19:  # the same on int8/uint8
                opset.version = 19
        try:
            evaluator = ReferenceEvaluator(graph, new_ops=_contrib_ops())
            values = dict(zip(wanted, evaluator.run(wanted, feeds), strict=True))
        except Exception as e:  # noqa: BLE001 - the evaluator raises assorted types for ops it lacks
            raise DoryError(f"onnx's ReferenceEvaluator cannot run the model: {str(e).strip().splitlines()[0][:200]}",
                            str(self.path)) from None
        tensors = {}
        for name, place in located.items():
            value = np.asarray(values[place.tensor])
            if not np.issubdtype(value.dtype, np.integer):
                raise DoryError(f"onnx's ReferenceEvaluator computes the tensor of node '{name}' in {value.dtype}", str(self.path))
            tensors[name] = value.astype(np.int64) + place.offset
        return [np.asarray(values[o]) for o in outputs], tensors


OnnxRuntimeReference.name = "onnxruntime"  # type: ignore[attr-defined]
REFERENCES = {"onnxruntime": OnnxRuntimeReference, "onnx": OnnxReference}
