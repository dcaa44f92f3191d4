"""Seeded random small networks (whole graphs) in the NEMO and QuantLib spellings, with goldens.

`random_graph(seed)` draws a spelling, one or two network inputs (1-D N×C×W or 2-D N×C×H×W, C 1–24,
H/W 1–20, signed or unsigned), a DAG of 1–6 layers from an op table (convs: regular, depthwise,
pointwise, strided, padded, dilated; max and average pools; global average pool; residual adds with
a requantized skip branch sometimes; a second network input joined by an add), `Identity` nodes
anywhere, ReLU/Clip after requantizations, and a head of one or two fully-connected layers (`Gemm` or
`MatMul` after a `Flatten`/`Reshape`). The tables `QUANTLIB_OPS` and `NEMO_OPS` map an op's name to
its weight and builder: a new op is one function and one table row.

The goldens come from the example builders, which evaluate every node with onnx's
`ReferenceEvaluator` (`nemo_builder`: DORY txt files; `quantlib_builder`: npz files, with the Python
`RequantShift` reference), never from our golden model. QuantLib average pools whose window count is
not a power of two have float32 means that are not exact, so here they are made exact: the window
sum is recovered from the evaluator's mean (exact: sums stay far below 2^24) and carried as a
rational into an exact rational `RequantShift`.

A few constructs lie outside what the compiler claims to support; the generator draws them rarely
and records the expected one-line refusal (`EXPECTED_REFUSALS`), so that a refusal of any other
graph is a failure.

    python -m dory_mlir.examples.random_graphs SEED OUT_DIR   # writes the model and its goldens
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from dory_mlir.dialects.qnn import window_output_size
from dory_mlir.examples import nemo_builder
from dory_mlir.examples.nemo_builder import NemoNetBuilder, Tensor
from dory_mlir.examples.quantlib_builder import DIV, EXACT_LIMIT, INPUT_NAME, QuantLibNetBuilder

# Constructs the compiler refuses by design, each with a fragment of its one-line error. Only graphs
# holding one of these may be refused; a refusal of any other graph is a bug.
EXPECTED_REFUSALS = {
    "grouped_conv": "has no kernel",  # 1 < groups, not depthwise: no kernel for it (tiling/layers.py)
    "dilated_maxpool": "dilated pooling is not supported",
    "avgpool_excluding_pad": "divides by a varying count",  # padded AveragePool, count_include_pad=0
    # NEMO's residual adds are not clipped: an add of an add's sum (or a layer reading one) may need more than
    # the 16-bit activations by the importer's propagated bound (seed 353: [0, 260100]).
    "nested_nemo_sums": "beyond the 16-bit activations",
}
# Of those, the constructs refused only when the propagated bound says so: such a graph may also PASS.
BOUND_DEPENDENT_REFUSALS = frozenset({"nested_nemo_sums"})

# Seeds that fail today, each with its diagnosis (tests/test_random_graphs.py runs them as strict xfails,
# so fixing the bug makes the test say so).
KNOWN_FAILURES: dict[int, str] = {}

# Seeds beyond the test's range that found a bug, run by the test too (each is fixed; the regression test of the
# fix is named after it): 326, 353 — a NEMO average pool folding to the window sum (tests/test_golden.py; 353 is
# now refused in one line: its nested NEMO sums reach [0, 260100], beyond the 16-bit activations); 82 (in
# the full range) — a tensor read through a Flatten was streamed from L3 under a tiny L2 budget, which the
# lowering cannot view (memory_plan: such tensors are not `streamable`).
REGRESSION_SEEDS = (326, 353)

# The pipelines a seed may draw: the default, a tight L1 (many tiles), single buffering, and tiny L1 and L2
# budgets (activations and weights streamed from L3, across branches and network inputs).
PIPELINES = (None, None, None, "tile{l1-size=8000},lower-to-pulp",
             "tile{double-buffer=false},lower-to-pulp{double-buffer=false}",
             "tile{l1-size=2000 l2-size=4000},lower-to-pulp")
# Only the tiny budgets may be too small for a graph (a linear layer's whole input and one weight slice must fit
# in L2): the tiling's one-line "smallest L1 tiling / L2 working set needs N B (...) > budget B B" is then the
# right answer. No other pipeline may refuse a supported graph.
BUDGET_REFUSALS = {"tile{l1-size=2000 l2-size=4000},lower-to-pulp": "> budget"}
MAX_ATTEMPTS = 20


@dataclass
class RandomGraph:
    """One random network: its model, how to write its goldens, and what the compiler must do with it."""

    seed: int
    spelling: str  # "nemo" | "quantlib"
    layers: list[str]
    model: onnx.ModelProto
    input_types: list[str]  # one per network input, in graph order ("ui8", "si8")
    pipeline: str | None  # dory-verify's -p (None: its default)
    refusal: str | None  # a key of EXPECTED_REFUSALS when the graph holds such a construct
    _write_goldens: Callable[[Path], None] = field(repr=False)

    def allowed_refusals(self) -> list[str]:
        """Fragments of the one-line errors the tools may answer with (none: they must PASS)."""
        return ([EXPECTED_REFUSALS[self.refusal]] if self.refusal else []) + (
            [BUDGET_REFUSALS[self.pipeline]] if self.pipeline in BUDGET_REFUSALS else [])

    def describe(self) -> str:
        inputs = ",".join(self.input_types)
        refusal = f"; expected refusal: {self.refusal}" if self.refusal else ""
        return (f"seed {self.seed}: {self.spelling}, inputs {inputs}, {' -> '.join(self.layers)}; "
                f"pipeline {self.pipeline or 'default'}{refusal}")

    def write(self, folder: Path) -> Path:
        """The model and its goldens in `folder` (created); returns the model's path."""
        folder.mkdir(parents=True, exist_ok=True)
        self._write_goldens(folder)
        (model,) = folder.glob("*.onnx")
        return model


class GeneratorLimit(ValueError):
    """A draw the reference cannot evaluate exactly (the generator draws again)."""


def random_graph(seed: int) -> RandomGraph:
    """The network of `seed`: the same graph, weights, input and goldens on every machine."""
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, 11, attempt])
        spelling = "quantlib" if rng.random() < 0.55 else "nemo"
        try:
            graph = (_quantlib_graph if spelling == "quantlib" else _nemo_graph)(seed, rng)
        except ValueError:  # the builders' exactness checks (and GeneratorLimit): draw again
            continue
        graph.pipeline = PIPELINES[int(rng.integers(0, len(PIPELINES)))]
        return graph
    raise RuntimeError(f"seed {seed}: no exact graph in {MAX_ATTEMPTS} attempts")


def _pick(rng: np.random.Generator, table: dict[str, tuple[float, Callable]]) -> tuple[str, Callable]:
    names = list(table)
    weights = np.array([table[n][0] for n in names], dtype=np.float64)
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return name, table[name][1]


def _fit_window(size: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int) -> tuple[int, int]:
    """(kernel, dilation), shrunk until the window fits the padded extent."""
    while window_output_size(size, kernel, stride, pads[0], pads[1], dilation) < 1:
        if dilation > 1:
            dilation = 1
        else:
            kernel -= 1
    return kernel, dilation


# ====================================================================== QuantLib spelling


def _requant_shift_exact(node: onnx.NodeProto, x: np.ndarray, mul: np.ndarray, add: np.ndarray) -> np.ndarray:
    """QuantLib's RequantShift `clip(floor((x·mul + add) / div + 1/2))` in exact rationals: the
    reference for inputs that are rational means (average pools)."""
    attrs = {a.name: float(numpy_helper.to_array(a.t).reshape(-1)[0]) for a in node.attribute}
    div, levels, signed = int(attrs["div"]), int(attrs["n_levels_out"]), bool(attrs["signed"])
    lo, hi = (-(levels // 2), levels // 2 - 1) if signed else (0, levels - 1)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = np.broadcast_to(mul.astype(np.int64).reshape(shape if mul.size > 1 else (1,)), x.shape)
    a = np.broadcast_to(add.astype(np.int64).reshape(shape if add.size > 1 else (1,)), x.shape)
    y = [min(hi, max(lo, math.floor((v * int(k) + int(b)) / div + Fraction(1, 2))))
         for v, k, b in zip(x.reshape(-1), m.reshape(-1), a.reshape(-1), strict=True)]
    return np.array(y, dtype=np.float32).reshape(x.shape)


class _ExactQuantLibBuilder(QuantLibNetBuilder):
    """QuantLibNetBuilder whose average pools yield exact rational means (object arrays of Fraction)."""

    def evaluate(self, node: onnx.NodeProto, inputs: Sequence[str]) -> np.ndarray:
        if self.values[inputs[0]].dtype == object:  # a rational mean: only these two ops read one
            if node.op_type == "Identity":
                return self.values[inputs[0]]
            return _requant_shift_exact(node, *(np.asarray(self.values[i]) for i in inputs))
        value = super().evaluate(node, inputs)
        if node.op_type not in ("AveragePool", "GlobalAveragePool"):
            return value
        x = self.values[inputs[0]]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "GlobalAveragePool":
            count = int(np.prod(x.shape[2:]))
        elif any(attrs.get("pads", [])) and not attrs.get("count_include_pad", 0):
            return value  # a varying count: an expected refusal, whose goldens are never compared
        else:
            count = int(np.prod(attrs["kernel_shape"]))
        sums = np.round(value.astype(np.float64) * count)
        if np.abs(value.astype(np.float64) * count - sums).max(initial=0) > 0.25:
            raise GeneratorLimit(f"{node.name}: the float32 mean does not give back the window sum")
        return np.vectorize(lambda s: Fraction(int(s), count), otypes=[object])(sums)


class QuantLibGraph:
    """The state of a QuantLib-format graph being drawn: the builder, the current tensor, what was drawn."""

    def __init__(self, seed: int, rng: np.random.Generator):
        self.rng = rng
        one_d = rng.random() < 0.25
        c = int(rng.integers(1, 25))
        spatial = (int(rng.integers(1, 41)),) if one_d else (int(rng.integers(1, 21)), int(rng.integers(1, 21)))
        signed = bool(rng.random() < 0.4)
        self.b = _ExactQuantLibBuilder(seed, (1, c, *spatial), signed_input=signed)
        self.input_types = ["si8" if signed else "ui8"]
        self.x = INPUT_NAME
        self.layers: list[str] = []
        self.refusal: str | None = None
        self.modules = 0

    # ------------------------------------------------------------------ helpers

    def shape(self, name: str | None = None) -> tuple[int, ...]:
        return tuple(self.b.values[name or self.x].shape)

    def module(self) -> str:
        self.modules += 1
        return f"l{self.modules}"

    def refuse(self, construct: str) -> None:
        self.refusal = self.refusal or construct

    def maybe_identity(self, name: str, p: float = 0.1) -> str:
        """An Identity after `name` now and then (exporters leave them anywhere)."""
        return self.b.node("Identity", [name], record=False) if self.rng.random() < p else name

    def requant(self, acc: str, signed: bool | None = None, per_channel: bool | None = None) -> str:
        """RequantShift (calibrated by the builder), then sometimes a ReLU or a narrower Clip."""
        rng = self.rng
        signed = bool(rng.random() < 0.5) if signed is None else signed
        per_channel = bool(rng.random() < 0.7) if per_channel is None else per_channel
        y = self.b.requant(self.maybe_identity(acc, 0.05), self.module(), signed, per_channel)
        act = rng.random()
        if act < 0.15:
            y = self.b.node("Relu", [y])
        elif act < 0.3:
            lo, hi = (-128, 127) if signed else (0, 255)
            lo, hi = sorted(int(v) for v in rng.integers(lo, hi + 1, size=2))
            name = self.module()
            y = self.b.node("Clip", [y, self.b.param(f"{name}.min", np.array(lo)), self.b.param(f"{name}.max", np.array(hi))])
        return y

    def conv(self, x: str, c_out: int, kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
             dilations: Sequence[int], groups: int = 1, bias: bool = True, auto_pad: str | None = None) -> str:
        """A Conv whose float32 partial sums stay exact: weights narrow as the fan-in grows."""
        c_in = self.shape(x)[1]
        fan_in = c_in // groups * int(np.prod(kernel))
        w_max = min(127, (EXACT_LIMIT - 1 - 2000) // (fan_in * 255))
        module = self.module()
        w = self.b.rng.integers(-w_max, w_max + 1, size=(c_out, c_in // groups, *kernel))
        inputs = [x, self.b.param(f"{module}.weight", w)]
        if bias:
            inputs.append(self.b.param(f"{module}.bias", self.b.rng.integers(-2000, 2000, size=c_out)))
        window = dict(auto_pad=auto_pad) if auto_pad else dict(pads=list(pads))
        return self.b.node("Conv", inputs, kernel_shape=list(kernel), strides=list(strides), group=groups,
                           dilations=list(dilations), **window)

    def window(self, kernels: Sequence[int], stride_choices: Sequence[int], pad_p: float,
               dilation_p: float = 0.0, same: bool = False,
               wide_pads: bool = False) -> tuple[list[int], list[int], list[int], list[int]]:
        """kernel, strides, pads (ONNX order: begins then ends), dilations over x's spatial axes, fitted.
        Pads are smaller than the window (as pools need) unless `wide_pads` (convs may pad more)."""
        rng = self.rng
        spatial = self.shape()[2:]
        k = int(rng.choice(kernels))
        square = rng.random() < 0.7
        kernel, strides, dilations, begins, ends = [], [], [], [], []
        for size in spatial:
            kk = k if square else int(rng.choice(kernels))
            d = 2 if kk > 1 and rng.random() < dilation_p else 1
            s = int(rng.choice(stride_choices)) if not same else 1
            if same:
                p0 = p1 = d * (kk - 1) // 2
            elif rng.random() < pad_p:
                p0, p1 = (int(v) for v in rng.integers(0, kk, size=2))
            else:
                p0 = p1 = 0
            kk, d = _fit_window(size, kk, s, (p0, p1), d)
            if same and (d * (kk - 1)) % 2:
                kk, d = 1, 1  # an even window has no 'same' padding: a pointwise step instead
                p0 = p1 = 0
            if wide_pads and not same and rng.random() < 0.1:
                p0, p1 = (int(v) for v in rng.integers(0, kk + 2, size=2))  # border outputs of padding only
            else:
                p0, p1 = min(p0, max(kk - 1, 0)), min(p1, max(kk - 1, 0))  # ONNX pools: pads below the window
            kernel.append(kk)
            strides.append(s)
            dilations.append(d)
            begins.append(p0)
            ends.append(p1)
        return kernel, strides, begins + ends, dilations


# ---------------------------------------------------------------------- QuantLib op builders


def ql_conv(g: QuantLibGraph) -> str:
    """A conv layer: regular, depthwise or pointwise; strided, padded, dilated; rarely a grouped conv."""
    rng = g.rng
    c_in = g.shape()[1]
    variant = str(rng.choice(["conv", "conv", "depthwise", "pointwise"]))
    if variant == "depthwise" and c_in == 1:
        variant = "conv"
    kernel, strides, pads, dilations = g.window([1] if variant == "pointwise" else [1, 2, 3, 5], [1, 1, 2], 0.6, 0.25,
                                                wide_pads=True)
    groups, c_out = 1, int(rng.integers(1, 25))
    if variant == "depthwise":
        groups = c_out = c_in
    elif c_in > 1 and g.refusal is None and rng.random() < 0.04:  # one refused construct per graph at most
        groups = int(rng.choice([d for d in range(2, c_in + 1) if c_in % d == 0]))
        c_out = groups * int(rng.integers(1, 3))
        if groups == c_in == c_out:
            c_out = 2 * c_in  # a depthwise conv with a channel multiplier
        variant = f"grouped({groups})"
        g.refuse("grouped_conv")
    auto_pad = _auto_pad(g, kernel, strides, dilations)
    if auto_pad:
        pads = [0] * len(pads)  # the importer computes them
    acc = g.conv(g.x, c_out, kernel, strides, pads, dilations, groups, bias=bool(rng.random() < 0.7), auto_pad=auto_pad)
    g.x = g.requant(acc)
    if auto_pad:
        variant += f" {auto_pad}"
    return f"{variant} {'x'.join(map(str, kernel))}/s{max(strides)}/d{max(dilations)}/p{max(pads)} ->{c_out}"


def _auto_pad(g: QuantLibGraph, kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int] | None = None) -> str | None:
    """Now and then an auto_pad instead of explicit pads (VALID only where the window fits unpadded)."""
    if g.rng.random() >= 0.1:
        return None
    dilations = dilations or [1] * len(kernel)
    fits = all(window_output_size(size, k, s, 0, 0, d) >= 1
               for size, k, s, d in zip(g.shape()[2:], kernel, strides, dilations, strict=True))
    return str(g.rng.choice(["SAME_UPPER", "SAME_LOWER", "VALID"] if fits else ["SAME_UPPER", "SAME_LOWER"]))


def _pool_attrs(g: QuantLibGraph, kernel: list[int], strides: list[int], pads: list[int]) -> tuple[dict, str]:
    """Symmetric pads, or auto_pad VALID, and now and then ceil_mode; with their note for the description.

    onnx's ReferenceEvaluator (1.23) pools wrongly where the pads differ at both ends of an axis (explicit,
    or SAME_LOWER/SAME_UPPER with an odd total; onnxruntime and numpy agree with each other), so pools
    draw none of those: their goldens would be wrong."""
    spatial = len(kernel)
    pads[:] = [max(pads[i], pads[i + spatial]) for i in range(spatial)] * 2  # the larger: the window still fits
    fits_unpadded = all(window_output_size(n, k, s, 0, 0) >= 1 for n, k, s in zip(g.shape()[2:], kernel, strides, strict=True))
    auto_pad = "VALID" if _auto_pad(g, kernel, strides) and fits_unpadded else None
    attrs: dict = dict(auto_pad=auto_pad) if auto_pad else dict(pads=pads)
    note = f" {auto_pad}" if auto_pad else ""
    if not auto_pad and g.rng.random() < 0.2:  # onnx's reference has no ceil_mode with auto_pad
        attrs["ceil_mode"] = 1
        note += " ceil"
    return attrs, note


def ql_maxpool(g: QuantLibGraph) -> str:
    kernel, strides, pads, _ = g.window([1, 2, 3], [1, 2, 2], 0.3)
    # onnx's ReferenceEvaluator (1.23) gets padded stride-1 MaxPools wrong (shapes and values; onnxruntime
    # and numpy agree with each other): those would have wrong goldens, so they are drawn unpadded.
    pads = [p if s > 1 else 0 for s, p in zip(strides * 2, pads, strict=True)]
    kernel = [min(k, n + p0 + p1) for k, n, p0, p1 in zip(kernel, g.shape()[2:], pads[:len(kernel)], pads[len(kernel):], strict=True)]
    window, note = _pool_attrs(g, kernel, strides, pads)
    attrs = dict(kernel_shape=kernel, strides=strides, **window)
    if max(kernel) > 1 and g.refusal is None and g.rng.random() < 0.03:
        attrs["dilations"] = [2] * len(kernel)
        if any(window_output_size(s, k, st, p0, p1, 2) < 1 for s, k, st, p0, p1 in
               zip(g.shape()[2:], kernel, strides, pads[:len(kernel)], pads[len(kernel):], strict=True)):
            del attrs["dilations"]
        else:
            g.refuse("dilated_maxpool")
    g.x = g.b.node("MaxPool", [g.x], **attrs)
    return f"maxpool {'x'.join(map(str, kernel))}/s{max(strides)}/p{max(pads)}{note}" + ("/dilated" if "dilations" in attrs else "")


def ql_avgpool(g: QuantLibGraph) -> str:
    kernel, strides, pads, _ = g.window([1, 2, 3, 4], [1, 2, 2], 0.3)
    include_pad = 1
    if any(pads) and g.refusal is None and g.rng.random() < 0.1:
        include_pad = 0
        g.refuse("avgpool_excluding_pad")
    window, note = _pool_attrs(g, kernel, strides, pads)
    if include_pad == 0:
        window = dict(pads=pads)
        note = ""
    mean = g.b.node("AveragePool", [g.x], record=False, kernel_shape=kernel, strides=strides,
                    count_include_pad=include_pad, **window)
    g.x = g.requant(mean)
    return f"avgpool {'x'.join(map(str, kernel))}/s{max(strides)}/p{max(pads)}{note}" + ("" if include_pad else "/excl-pad")


def ql_global_avgpool(g: QuantLibGraph) -> str:
    g.x = g.requant(g.b.node("GlobalAveragePool", [g.x], record=False))
    return "global-avgpool"


def ql_same_conv(g: QuantLibGraph, x: str) -> str:
    """A stride-1 conv keeping x's shape (a residual branch)."""
    g.x = x
    kernel, strides, pads, dilations = g.window([1, 3], [1], 0.0, 0.2, same=True)
    return g.requant(g.conv(x, g.shape(x)[1], kernel, strides, pads, dilations, bias=bool(g.rng.random() < 0.5)))


def ql_residual(g: QuantLibGraph) -> str:
    """Two branches from x joined by Add + RequantShift; the skip is x, x requantized or a 1x1 conv."""
    rng = g.rng
    x = g.x
    skip_kind = str(rng.choice(["direct", "requant", "conv1x1", "self"], p=[0.3, 0.3, 0.3, 0.1]))
    branch = x
    for _ in range(int(rng.integers(1, 3)) if skip_kind != "self" else 0):
        branch = ql_same_conv(g, branch)
    if skip_kind == "self":  # x + x: one tensor read twice by the add
        skip = x
    elif skip_kind == "requant":
        skip = g.requant(x)  # x has two readers: a requant layer of its own
    elif skip_kind == "conv1x1":
        skip = g.requant(g.conv(x, g.shape(x)[1], [1] * (len(g.shape(x)) - 2), [1] * (len(g.shape(x)) - 2),
                                [0] * 2 * (len(g.shape(x)) - 2), [1] * (len(g.shape(x)) - 2)))
    else:
        skip = x
    a, b = (branch, skip) if rng.random() < 0.5 else (skip, branch)
    g.x = g.requant(g.b.node("Add", [a, b]), per_channel=False)
    return f"residual(skip {skip_kind})"


def ql_second_input(g: QuantLibGraph) -> str | None:
    """A second network input, added to x directly or after a pointwise conv to x's channels."""
    if len(g.input_types) > 1:
        return None
    rng = g.rng
    shape = g.shape()
    signed = bool(rng.random() < 0.5)
    direct = rng.random() < 0.5
    channels = shape[1] if direct else int(rng.integers(1, 25))
    other = g.b.add_input("input_b", (1, channels, *shape[2:]), signed=signed)
    g.input_types.append("si8" if signed else "ui8")
    x = g.x
    if not direct:
        ones = [1] * (len(shape) - 2)
        other = g.requant(g.conv(g.maybe_identity(other), shape[1], ones, ones, [0, 0] * len(ones), ones))
    a, b = (x, other) if rng.random() < 0.5 else (other, x)
    g.x = g.requant(g.b.node("Add", [a, b]), per_channel=False)
    return f"add(input_b {'direct' if direct else 'conv1x1'})"


QUANTLIB_OPS: dict[str, tuple[float, Callable[[QuantLibGraph], str | None]]] = {
    "conv": (4.0, ql_conv),
    "maxpool": (1.0, ql_maxpool),
    "avgpool": (1.0, ql_avgpool),
    "global_avgpool": (0.25, ql_global_avgpool),
    "residual": (2.0, ql_residual),
    "second_input": (1.0, ql_second_input),
}


def ql_head(g: QuantLibGraph) -> list[str]:
    """Flatten (or Reshape) and one or two fully-connected layers (Gemm or MatMul), each requantized."""
    rng = g.rng
    done = []
    if rng.random() < 0.3 and int(np.prod(g.shape()[2:])) > 1:
        done.append(ql_global_avgpool(g))
    if rng.random() < 0.5:
        g.x = g.b.node("Flatten", [g.x], record=False, axis=1)
    else:
        shape = f"{g.module()}.shape"
        g.b.values[shape] = np.array([1, -1], dtype=np.int64)
        g.b.initializers.append(numpy_helper.from_array(g.b.values[shape], shape))
        g.x = g.b.node("Reshape", [g.x, shape], record=False)
    for _ in range(int(rng.integers(1, 3))):
        g.x = g.maybe_identity(g.x)
        k = g.shape()[1]
        n = int(rng.integers(1, 25))
        w_max = min(127, (EXACT_LIMIT - 1 - 2000) // (k * 255))
        module = g.module()
        w = g.b.rng.integers(-w_max, w_max + 1, size=(n, k))
        if rng.random() < 0.5:
            trans_b = int(rng.random() < 0.7)  # PyTorch's Linear: W as N×K (transB=1); else K×N
            inputs = [g.x, g.b.param(f"{module}.weight", w if trans_b else w.T)]
            if rng.random() < 0.7:
                inputs.append(g.b.param(f"{module}.bias", g.b.rng.integers(-2000, 2000, size=n)))
            acc, op = g.b.node("Gemm", inputs, transB=trans_b), "gemm"
        else:
            acc, op = g.b.node("MatMul", [g.x, g.b.param(f"{module}.weight", w.T)]), "matmul"
        g.x = g.requant(acc)
        done.append(f"{op} {k}->{n}")
    return done


def _quantlib_graph(seed: int, rng: np.random.Generator) -> RandomGraph:
    g = QuantLibGraph(seed, rng)
    g.x = g.maybe_identity(g.x)
    count = int(rng.integers(1, 7))
    while len(g.layers) < count:
        _, build = _pick(rng, QUANTLIB_OPS)
        drawn = build(g)
        if drawn is not None:
            g.layers.append(drawn)
            g.x = g.maybe_identity(g.x)
    if rng.random() < 0.6:
        g.layers += ql_head(g)
    g.x = g.maybe_identity(g.x)
    model, goldens = g.b.build(f"random_graph_{seed}")

    def write(folder: Path) -> None:
        onnx.save(model, folder / "network.onnx")
        for file, arrays in goldens.items():
            np.savez(folder / f"{file}.npz", **arrays)

    return RandomGraph(seed, "quantlib", g.layers, model, g.input_types, None, g.refusal, write)


# ====================================================================== NEMO spelling

# Average-pool windows whose float32 mean times the window size gives back the sum (NEMO's
# AveragePool → Mul(kh·kw) is exact only for those; nemo_builder checks it too).
NEMO_AVGPOOL_WINDOWS = [w for w in ((2, 2), (3, 3), (4, 4), (1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (1, 4))
                        if nemo_builder._mean_roundtrip_exact(w[0] * w[1])]


class NemoGraph:
    """The state of a NEMO-format graph being drawn (one unsigned 2-D input, as NEMO exports)."""

    def __init__(self, seed: int, rng: np.random.Generator):
        self.rng = rng
        c, h, w = int(rng.integers(1, 25)), int(rng.integers(1, 21)), int(rng.integers(1, 21))
        if rng.random() < 0.2:  # NEMO's 1-D networks (TCN, eegnet) are N×C×1×W, often long
            h, w = 1, int(rng.integers(1, 41))
        self.b = NemoNetBuilder(seed, (1, c, h, w))
        self.x: Tensor = self.b.input
        self.layers: list[str] = []
        self.residuals = 0
        self.refusal: str | None = None

    def maybe_identity(self, p: float = 0.1) -> None:
        if self.rng.random() < p:
            self.x = self.b.identity(self.x)

    def fitted(self, kernel: tuple[int, int], stride: int, pads: tuple[int, int, int, int],
               dilation: int) -> tuple[tuple[int, int], int]:
        h, w = self.x.shape[2:]
        kh, dh = _fit_window(h, kernel[0], stride, (pads[0], pads[2]), dilation)
        kw, dw = _fit_window(w, kernel[1], stride, (pads[1], pads[3]), dilation)
        return (kh, kw), min(dh, dw)


def nemo_conv(g: NemoGraph, x: Tensor | None = None, same: bool = False) -> str:
    rng = g.rng
    x = x or g.x
    c_in = x.shape[1]
    variant = str(rng.choice(["conv", "conv", "depthwise", "pointwise"]))
    if variant == "depthwise" and c_in == 1 or same and variant == "pointwise":
        variant = "conv"
    k = 1 if variant == "pointwise" else int(rng.choice([1, 2, 3, 5] if not same else [1, 3]))
    kernel = (k, k) if rng.random() < 0.7 or same else (1, k)
    stride = 1 if same else int(rng.choice([1, 1, 2]))
    dilation = 2 if k > 1 and rng.random() < 0.2 else 1
    if same:
        pads = (dilation * (kernel[0] - 1) // 2, dilation * (kernel[1] - 1) // 2) * 2
    elif rng.random() < 0.5:
        pads = tuple(int(v) for v in rng.integers(0, k, size=4))
    else:
        pads = (0, 0, 0, 0)
    g.x = x
    kernel, fitted_dilation = g.fitted(kernel, stride, pads, dilation)
    dilation = 1 if same and fitted_dilation != dilation else fitted_dilation
    if same and kernel != (k, k):
        kernel, pads = (1, 1), (0, 0, 0, 0)
    c_out = c_in if variant == "depthwise" else (c_in if same else int(rng.integers(1, 25)))
    standalone = any(pads) and rng.random() < 0.3
    g.x = g.b.conv(c_out, kernel, stride=stride, pad=pads, groups=c_in if variant == "depthwise" else 1,
                   bias=bool(rng.random() < 0.5), standalone_pad=standalone, x=x, dilation=dilation)
    pad_note = ("pad-node" if standalone else "p") + str(max(pads))
    return f"{variant} {kernel[0]}x{kernel[1]}/s{stride}/d{dilation}/{pad_note} ->{c_out}"


def nemo_maxpool(g: NemoGraph) -> str:
    k = int(g.rng.choice([1, 2, 3]))
    stride = int(g.rng.choice([1, 2, k]))
    (kh, kw), _ = g.fitted((k, k), stride, (0, 0, 0, 0), 1)
    g.x = g.b.maxpool((kh, kw), stride)
    return f"maxpool {kh}x{kw}/s{stride}"


def nemo_avgpool(g: NemoGraph) -> str | None:
    h, w = g.x.shape[2:]
    windows = [win for win in NEMO_AVGPOOL_WINDOWS if win[0] <= h and win[1] <= w]
    if not windows:
        return None
    kh, kw = windows[int(g.rng.integers(0, len(windows)))]
    stride = int(g.rng.choice([1, 2, max(kh, kw)]))
    g.x = g.b.avgpool((kh, kw), stride)
    return f"avgpool {kh}x{kw}/s{stride}"


def nemo_residual(g: NemoGraph) -> str:
    x = g.x
    branch = x
    for _ in range(int(g.rng.integers(1, 3))):
        nemo_conv(g, branch, same=True)
        branch = g.x
    bypass = x
    if g.rng.random() < 0.4:
        g.x = g.b.conv(x.shape[1], 1, x=x)
        bypass = g.x
    g.x = g.b.add(branch, bypass) if g.rng.random() < 0.5 else g.b.add(bypass, branch)
    g.residuals += 1
    if g.residuals > 1:
        g.refusal = g.refusal or "nested_nemo_sums"
    return f"residual(bypass {'conv1x1' if bypass is not x else 'direct'})"


NEMO_OPS: dict[str, tuple[float, Callable[[NemoGraph], str | None]]] = {
    "conv": (4.0, nemo_conv),
    "maxpool": (1.0, nemo_maxpool),
    "avgpool": (1.0, nemo_avgpool),
    "residual": (2.0, nemo_residual),
}


def _nemo_graph(seed: int, rng: np.random.Generator) -> RandomGraph:
    g = NemoGraph(seed, rng)
    g.maybe_identity()
    count = int(rng.integers(1, 7))
    while len(g.layers) < count:
        _, build = _pick(rng, NEMO_OPS)
        drawn = build(g)
        if drawn is not None:
            g.layers.append(drawn)
            g.maybe_identity()
    if rng.random() < 0.6:  # NEMO's linear layer outputs the raw accumulator: only at the end
        use_gemm = bool(rng.random() < 0.5)
        m = int(rng.integers(1, 25))
        g.x = g.b.linear(m, use_gemm=use_gemm, bias=use_gemm and bool(rng.random() < 0.7))
        g.layers.append(f"{'gemm' if use_gemm else 'matmul'} ->{m}")
        if rng.random() < 0.3:
            g.x = g.b.tail(str(rng.choice(["sigmoid", "logsoftmax"])))
            g.layers.append("float tail")
    if not g.layers[-1].startswith(("float", "gemm", "matmul")):  # the builder checks that values are integers
        g.maybe_identity()
    model = g.b.build()

    def write(folder: Path) -> None:
        nemo_builder.write_example(model, folder, seed)

    return RandomGraph(seed, "nemo", g.layers, model, ["ui8"], None, g.refusal, write)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed", type=int)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    graph = random_graph(args.seed)
    model = graph.write(args.out_dir)
    print(graph.describe())
    print(f"wrote {model}; check with: dory-verify {model} --golden {args.out_dir} --sanitize "
          f"--input-type {','.join(graph.input_types)}" + (f" -p '{graph.pipeline}'" if graph.pipeline else ""))


if __name__ == "__main__":
    main()
