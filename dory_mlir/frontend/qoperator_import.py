"""Import of onnxruntime-quantized models (QDQ and QOperator) into integer `qnn` ops.

`qdq_legalize.py` first rewrites a QDQ model into the QOperator form (as onnxruntime does
before running it) and replaces the QuantizeLinear of the float input by an integer input. This
importer then lowers each QOperator node exactly (`ort_requant.py` states the arithmetic and
its bound):

- QLinearConv / QLinearMatMul / QGemm → `qnn.conv` / `qnn.linear` with the int32 bias
  `bias − zp_x·Σw` (the input zero point folded exactly) and one `qnn.requant`. A padded conv
  with `zp_x ≠ 0` pads with `zp_x` (a real 0): an explicit `qnn.pad` before an unpadded conv.
- QLinearAdd → `qnn.add` of `m_a·(a − zp_a)` and `m_b·(b − zp_b)` over a common shift, one requant.
- QLinearAveragePool / QLinearGlobalAveragePool → `qnn.sum_pool` and a requant folding `1/K`.
- MaxPool, Flatten, Reshape, Clip on integers → the existing handlers (they are exact).
- The trailing DequantizeLinear / (Q)Softmax are left off like any float tail (`dropped_tail`).

Weights enter as `w − zp_w` in int8, exact whenever that fits (int8 with zero point 0, uint8 with
128, onnxruntime's 7-bit `reduce_range` weights with any zero point); otherwise a one-line error.
Each op keeps the ONNX node name as its location; for a QDQ model that is the group's
QuantizeLinear, whose output tensor equals the op's.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from xdsl.dialects.builtin import ModuleOp, TensorType

from dory_mlir.diagnostics import DoryError, InternalError, describe_exception, warn
from dory_mlir.dialects import qnn
from dory_mlir.frontend import ort_requant
from dory_mlir.frontend.importer import (
    INT32_MAX,
    INT32_MIN,
    Act,
    Dropped,
    OnnxImporter,
    Pending,
    Value,
)
from dory_mlir.frontend.qdq_legalize import INT_TYPES, legalize
from dory_mlir.frontend.requant_chain import Range, as_int_vector

# Ops that only the network's tail may apply to a dequantized (float) value.
QUANTIZED_TAIL_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearSoftmax", "QLinearSigmoid"}


class QOperatorImporter(OnnxImporter):
    """The importer of onnxruntime's QOperator ops (a QDQ model legalized into them)."""

    def __init__(self, model: onnx.ModelProto, model_name: str, input_type: str):
        super().__init__(model, model_name, input_type)
        self.handlers = {
            "Constant": self.constant,
            "QLinearConv": self.qlinear_conv,
            "QLinearMatMul": self.qlinear_matmul,
            "QGemm": self.qgemm,
            "QLinearAdd": self.qlinear_add,
            "QLinearAveragePool": self.qlinear_average_pool,
            "QLinearGlobalAveragePool": self.qlinear_global_average_pool,
            "MaxPool": self.max_pool,
            "Flatten": self.flatten,
            "Reshape": self.reshape,
            "Clip": self.clip,
            "DequantizeLinear": self.dequantize,
            "QuantizeLinear": self.quantize,
            "QLinearSoftmax": self.quantized_tail,
            "QLinearSigmoid": self.quantized_tail,
        }
        # DequantizeLinear node name → (integer input, scale, zero point), for Q(DQ(x)) requantizations.
        self.dequantized: dict[str, tuple[Act, np.float32, int]] = {}

    def visit_node(self, node: onnx.NodeProto) -> list[Value]:
        first = self.env.get(node.input[0]) if node.input else None
        if node.op_type == "QuantizeLinear" and isinstance(first, Dropped) and first.node in self.dequantized:
            return [self.requantize_pair(node, first.node)]  # Q(DQ(x)): a requantization, not the tail
        if node.op_type in QUANTIZED_TAIL_OPS and any(isinstance(self.env.get(n), Dropped) for n in node.input if n):
            return [self.drop(node, [self.lookup(n) for n in node.input if n])]
        return super().visit_node(node)

    # ----------------------------------------------------------------- quantization parameters

    def const_input(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        value = self.lookup(name) if name else None
        if not isinstance(value, np.ndarray):
            raise self.error(f"{what} must be a constant (dynamic quantization is not supported)")
        return value

    def scale(self, node: onnx.NodeProto, index: int, what: str, per_channel: int = 0) -> np.ndarray:
        """A float32 scale: one value, or `per_channel` values when that is > 0."""
        value = np.asarray(self.const_input(node, index, what))
        if value.dtype != np.float32:
            raise self.error(f"{what} has type {value.dtype}; only float32 scales are supported")
        flat = value.reshape(-1)
        if flat.size != 1 and flat.size != per_channel:
            expected = f"1 or {per_channel} values" if per_channel else "one value (per-tensor)"
            raise self.error(f"{what} has {flat.size} values, expected {expected}")
        if not np.all(np.isfinite(flat)) or np.any(flat <= 0):
            raise self.error(f"{what} must be positive and finite, got {flat[:4].tolist()}")
        return flat

    def zero_point(self, node: onnx.NodeProto, index: int, what: str) -> tuple[int, np.dtype]:
        value = np.asarray(self.const_input(node, index, what))
        if value.dtype not in (np.uint8, np.int8):
            raise self.error(f"{what} has type {value.dtype}; only int8 and uint8 are supported")
        if value.size != 1:
            raise self.error(f"{what} must be one value (per-tensor)")
        return int(value.reshape(-1)[0]), value.dtype

    def activation_params(self, node: onnx.NodeProto, first: int, what: str) -> tuple[np.float32, int]:
        """(scale, zero point) of an activation input at inputs first, first + 1."""
        scale = self.scale(node, first, f"{what} scale")
        zp, _ = self.zero_point(node, first + 1, f"{what} zero point")
        return np.float32(scale[0]), zp

    def output_params(self, node: onnx.NodeProto, first: int) -> tuple[np.float32, int, int, int]:
        """(scale, zero point, lo, hi) of the output: the clip range is its integer type's."""
        scale = self.scale(node, first, "output scale")
        zp, dtype = self.zero_point(node, first + 1, "output zero point")
        info = np.iinfo(dtype)
        return np.float32(scale[0]), zp, int(info.min), int(info.max)

    def symmetric_weights(self, node: onnx.NodeProto, index: int, zp_index: int, axis: int = 0) -> tuple[str, np.ndarray]:
        """The weights minus their zero point (per tensor, or per output channel along `axis`) as
        int8 values: exact whenever they fit int8 — int8 with zero point 0, uint8 with 128, and
        any narrower range (onnxruntime's `reduce_range` 7-bit weights) with any zero point."""
        name = node.input[index]
        w = np.asarray(self.const_input(node, index, "weight"))
        zp = np.asarray(self.const_input(node, zp_index, "weight zero point")).reshape(-1)
        if w.dtype not in (np.int8, np.uint8) or zp.dtype != w.dtype:
            raise self.error(f"weights of type {w.dtype} with a {zp.dtype} zero point are not supported (int8 or uint8)")
        if zp.size not in (1, w.shape[axis]):
            raise self.error(f"weight zero point has {zp.size} values for {w.shape[axis]} output channels")
        if not np.any(zp):
            return name, w.astype(np.int64)
        shape = [1] * w.ndim
        shape[axis] = -1
        shifted = w.astype(np.int64) - zp.astype(np.int64).reshape(shape if zp.size > 1 else [1] * w.ndim)
        if shifted.min() < -128 or shifted.max() > 127:
            kind = "asymmetric int8" if w.dtype == np.int8 else "uint8"
            raise self.error(f"{kind} weights with zero point {int(zp[zp != 0][0])} are not supported: weight − zero point "
                             f"reaches [{shifted.min()}, {shifted.max()}], outside int8; quantize the weights "
                             "symmetrically (int8, zero point 0)")
        self.env[f"{name}_s8"] = shifted
        return f"{name}_s8", shifted

    def folded_bias(self, node: onnx.NodeProto, index: int, w_rows: np.ndarray, zp_x: int) -> tuple[str, np.ndarray] | None:
        """`bias − zp_x·Σw` per output channel (int32), or None when both terms are 0."""
        has_bias = index < len(node.input) and bool(node.input[index])
        bias = np.zeros(w_rows.shape[0], dtype=np.int64)
        if has_bias:
            value = np.asarray(self.const_input(node, index, "bias"))
            if value.dtype != np.int32:
                raise self.error(f"bias has type {value.dtype}; the quantized bias must be int32")
            if value.size not in (1, w_rows.shape[0]):
                raise self.error(f"bias has {value.size} values for {w_rows.shape[0]} output channels")
            bias = bias + value.reshape(-1).astype(np.int64)
        if zp_x == 0:
            return (node.input[index], bias) if has_bias else None
        folded = bias - zp_x * w_rows.sum(axis=1)
        if folded.min() < INT32_MIN or folded.max() > INT32_MAX:
            raise self.error("bias − zero point·Σweights exceeds 32 bits")
        name = f"{node.input[index]}_folded" if has_bias else f"{self.node_name}_bias"
        return name, folded

    def requantize(self, acc: Act, scales: list[Fraction], offset: np.ndarray | int, zp_y: int, lo: int, hi: int) -> Pending:
        if any(s <= 0 for s in scales):
            raise self.error("the requantization scale underflows to 0 in float32 (input and weight scales "
                             "too small for the output scale)")
        try:
            chain, _ = ort_requant.rounding_chain(acc, acc.range, scales, offset, zp_y, lo, hi)
        except ValueError as e:
            raise self.error(f"the requantization has no integer form: {e}") from None
        return self.pending(chain, acc.onnx_shape)

    def float_scales(self, compute: Callable[[], list[Fraction]]) -> list[Fraction]:
        """onnxruntime's float32 scale arithmetic; an overflow to infinity is an error, not a warning."""
        try:
            with np.errstate(all="ignore"):
                return compute()
        except (OverflowError, ValueError, ZeroDivisionError):
            raise self.error("the requantization scale overflows float32 (input and weight scales too large "
                             "for the output scale)") from None

    # ----------------------------------------------------------------- ops

    def qlinear_conv(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        if attrs.int("channels_last", 0):
            raise self.error("channels_last QLinearConv is not supported")
        x = self.spatial_activation(node.input[0])
        s_x, zp_x = self.activation_params(node, 1, "input")
        w_name, w = self.symmetric_weights(node, 3, 5)
        if w.ndim not in (3, 4):
            raise self.error(f"weight must be O×I×H×W (or O×I×W), got shape {list(w.shape)}")
        s_w = self.scale(node, 4, "weight scale", per_channel=w.shape[0])
        s_y, zp_y, lo, hi = self.output_params(node, 6)
        bias = self.folded_bias(node, 8, w.reshape(w.shape[0], -1), zp_x)
        strides, pads, dilations = self.window_attrs(node, x.onnx_shape, list(w.shape[2:]))
        x_name = node.input[0]
        if any(pads) and zp_x != 0:
            # Padding must hold zp_x (a real 0), which the conv's zero padding cannot express.
            x_name = f"{self.node_name}_padded"
            self.env[x_name] = self.pad_with(x, pads, zp_x)
            pads = [0, 0, 0, 0]
        inputs = [x_name, w_name]
        if bias is not None:
            self.env[bias[0]] = bias[1]
            inputs.append(bias[0])
        spatial = len(x.onnx_shape) - 2
        window = {"group": attrs.int("group", 1, lo=1, hi=max(1, qnn.shape_of(x.ssa)[1]))}
        if spatial == 1:
            window |= {"strides": [strides[1]], "pads": [pads[1], pads[3]], "dilations": [dilations[1]]}
        else:
            window |= {"strides": strides, "pads": [pads[0], pads[1], pads[2], pads[3]], "dilations": dilations}
        (pending,) = self.conv(helper.make_node("Conv", inputs, ["acc"], name=self.node_name, **window))
        acc = pending.chain.x  # type: ignore[union-attr]
        scales = self.float_scales(lambda: ort_requant.conv_scale(s_x, s_w, s_y))
        return [self.requantize(acc, scales, 0, zp_y, lo, hi)]

    def pad_with(self, x: Act, pads: list[int], value: int) -> Act:
        """`qnn.pad` of the spatial dimensions (IR pads [t, l, b, r]) with an integer value."""
        t, l, b, r = pads
        n, c, h, w = qnn.shape_of(x.ssa)
        ty = TensorType(qnn.element_type(x.ssa), [n, c, h + t + b, w + l + r])
        op = self.emit(qnn.PadOp(x.ssa, ty, [t, l, b, r], value))
        shape = (n, c, w + l + r) if len(x.onnx_shape) == 3 else (n, c, h + t + b, w + l + r)
        padded = Range(as_int_vector([min(v, value) for v in x.range.lo]), as_int_vector([max(v, value) for v in x.range.hi]))
        return Act(op.results[0], padded, shape)

    def quantized_linear(self, node: onnx.NodeProto, w_name: str, w_mk: np.ndarray, s_w: np.ndarray,
                         bias_index: int, out_index: int, alpha: float = 1.0) -> list[Value]:
        """`qnn.linear` + requant of QLinearMatMul / QGemm (weights already M×K int8)."""
        x = self.activation(node.input[0])
        s_x, zp_x = self.activation_params(node, 1, "input")
        s_y, zp_y, lo, hi = self.output_params(node, out_index)
        bias = self.folded_bias(node, bias_index, w_mk, zp_x)
        (pending,) = self.linear(node.input[0], w_mk, w_name, None if bias is None else bias[1], "" if bias is None else bias[0])
        acc = pending.chain.x  # type: ignore[union-attr]
        if s_w.size not in (1, w_mk.shape[0]):
            raise self.error(f"weight scale has {s_w.size} values for {w_mk.shape[0]} outputs")
        scales = self.float_scales(lambda: ort_requant.conv_scale(s_x, s_w, s_y, alpha))
        return [self.requantize(acc, scales, 0, zp_y, lo, hi)]

    def qlinear_matmul(self, node: onnx.NodeProto) -> list[Value]:
        w_name, w = self.symmetric_weights(node, 3, 5, axis=1)
        if w.ndim != 2:
            raise self.error(f"QLinearMatMul needs a 2-D constant weight, got shape {list(w.shape)}")
        s_w = self.scale(node, 4, "weight scale", per_channel=w.shape[1])
        return self.quantized_linear(node, w_name, w.T.copy(), s_w, len(node.input) + 1, 6)

    def qgemm(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        if attrs.int("transA", 0, lo=0, hi=1):
            raise self.error("QGemm with transA is not supported")
        if len(node.input) < 9 or not node.input[7]:
            raise self.error("QGemm without an output scale (float output) is not supported")
        transposed = attrs.int("transB", 0, lo=0, hi=1)
        w_name, w = self.symmetric_weights(node, 3, 5, axis=0 if transposed else 1)
        if w.ndim != 2:
            raise self.error(f"QGemm needs a 2-D constant weight, got shape {list(w.shape)}")
        w_mk = w if transposed else w.T.copy()
        s_w = self.scale(node, 4, "weight scale", per_channel=w_mk.shape[0])
        alpha = attrs.float("alpha", 1.0)
        if not np.isfinite(alpha) or alpha <= 0:
            raise self.error(f"QGemm alpha must be positive and finite, got {alpha}")
        return self.quantized_linear(node, w_name, w_mk, s_w, 6, 7, alpha)

    def qlinear_add(self, node: onnx.NodeProto) -> list[Value]:
        if len(node.input) < 8:
            raise self.error(f"QLinearAdd needs 8 inputs, got {len(node.input)}")
        for index in (0, 3):
            if isinstance(self.lookup(node.input[index]), np.ndarray):
                raise self.error(f"adding the constant '{node.input[index]}' is not supported")
        a, b = self.activation(node.input[0]), self.activation(node.input[3])
        (s_a, zp_a), (s_b, zp_b) = self.activation_params(node, 1, "A"), self.activation_params(node, 4, "B")
        s_c, zp_c, lo, hi = self.output_params(node, 6)
        ratios = self.float_scales(lambda: [ort_requant.exact(np.float32(s / s_c)) for s in (s_a, s_b)])
        if any(r <= 0 for r in ratios):
            raise self.error("an input scale over the output scale underflows to 0 in float32")
        # m_a·(a − zp_a) + m_b·(b − zp_b) is qnn.add's int32 sum: the multipliers share its room.
        spans = [max(abs(act.range.min() - zp), abs(act.range.max() - zp), 1) for act, zp in ((a, zp_a), (b, zp_b))]
        try:
            scaled = ort_requant.dyadic(ratios, INT32_MAX // sum(spans))
        except ValueError as e:
            raise self.error(f"scale ratios have no integer form: {e}") from None
        (m_a, m_b), d = scaled.m, scaled.d
        total = self.emit_add([(a, m_a, -zp_a * m_a), (b, m_b, -zp_b * m_b)], (0, 0))
        return [self.requantize(total, [Fraction(1, 2**d)], 0, zp_c, lo, hi)]

    def qlinear_global_average_pool(self, node: onnx.NodeProto) -> list[Value]:
        if self.attributes(node).int("channels_last", 0):
            raise self.error("channels_last QLinearGlobalAveragePool is not supported")
        x = self.spatial_activation(node.input[0])
        s_x, zp_x = self.activation_params(node, 1, "input")
        s_y, zp_y, lo, hi = self.output_params(node, 3)
        _, _, h, w = qnn.shape_of(x.ssa)
        total = self.sum_pool(x, [h, w], [1, 1], [0, 0, 0, 0]).chain.x
        (scale,) = self.float_scales(lambda: [ort_requant.global_pool_scale(s_x, s_y, h * w)])
        return [self.requantize(total, [scale], -zp_x * h * w, zp_y, lo, hi)]  # type: ignore[arg-type]

    def qlinear_average_pool(self, node: onnx.NodeProto) -> list[Value]:
        attrs = self.attributes(node)
        if attrs.int("channels_last", 0):
            raise self.error("channels_last QLinearAveragePool is not supported")
        x = self.spatial_activation(node.input[0])
        s_x, zp_x = self.activation_params(node, 1, "input")
        s_y, zp_y, lo, hi = self.output_params(node, 3)
        kernel, strides, pads = self.pool_window(node, x)
        if any(pads) and not attrs.int("count_include_pad", 0, lo=0, hi=1):
            raise self.error("padded AveragePool without count_include_pad=1 divides by a varying count; not supported")
        if any(pads) and zp_x != 0:
            x = self.pad_with(x, pads, zp_x)  # the padding is a real 0: zp_x in the integer domain
            pads = [0, 0, 0, 0]
        count = kernel[0] * kernel[1]
        total = self.sum_pool(x, kernel, strides, pads).chain.x
        scale = ort_requant.round_to_significand(ort_requant.exact(s_x) / (count * ort_requant.exact(s_y)))
        return [self.requantize(total, [scale], -zp_x * count, zp_y, lo, hi)]  # type: ignore[arg-type]

    # ----------------------------------------------------------------- the float edges

    def dequantize(self, node: onnx.NodeProto) -> list[Value]:
        """A DequantizeLinear makes a float value: only the network's tail, or a QuantizeLinear
        right after it (a requantization), may use it."""
        x = self.activation(node.input[0])
        self.dequantized[self.node_name] = (x, *self.activation_params(node, 1, "input"))
        return [self.drop(node, [x])]

    def requantize_pair(self, node: onnx.NodeProto, dq_name: str) -> Value:
        """`Q(DQ(x))`: onnxruntime computes `fl(fl((x − zp_x)·s_x) / s_y)`; the import rounds the
        exact `(x − zp_x)·s_x/s_y` with `s_x/s_y` to 24 significant bits (`ort_requant.py`)."""
        x, s_x, zp_x = self.dequantized[dq_name]
        s_y, zp_y, lo, hi = self.output_params(node, 1)
        self.dropped_tail.remove(dq_name)  # not a tail after all
        scale = ort_requant.round_to_significand(ort_requant.exact(s_x) / ort_requant.exact(s_y))
        return self.requantize(x, [scale], -zp_x, zp_y, lo, hi)

    def quantized_tail(self, node: onnx.NodeProto) -> list[Value]:
        warn(f"{node.op_type} at the network output is left off the deployed network, as DORY does",
             f"{self.model_name}: node '{self.node_name}'")
        return [self.drop(node, [self.lookup(n) for n in node.input if n])]

    def quantize(self, node: onnx.NodeProto) -> list[Value]:
        raise self.error("QuantizeLinear of a value the network computes in float is not supported "
                         "(float ops between quantized layers)")


def input_spec(model: onnx.ModelProto) -> str:
    """'ui8' or 'si8' from the (legalized, integer) graph input."""
    consts = {t.name for t in model.graph.initializer}
    (graph_input,) = [i for i in model.graph.input if i.name not in consts]
    return "ui8" if INT_TYPES.get(graph_input.type.tensor_type.elem_type) is np.uint8 else "si8"


def import_quantized(model: onnx.ModelProto, path: Path, input_type: str | None = None) -> ModuleOp:
    """Import of a QDQ or QOperator model; the input type is the one its first QuantizeLinear makes."""
    try:
        legal = legalize(model, path.name)
    except DoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug of the QDQ rewrite: name the stage
        raise InternalError(f"QDQ/QOperator rewrite: {describe_exception(e)}", path.name) from e
    spec = input_spec(legal)
    if input_type is not None and input_type.partition(":")[0] != spec:
        raise DoryError(f"the model's input is {spec} (its first QuantizeLinear); --input-type {input_type} disagrees",
                        path.name)
    return QOperatorImporter(legal, path.name, spec).run()
