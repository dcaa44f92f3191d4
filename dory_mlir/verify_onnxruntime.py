"""Verification of quantized models with a float input (QDQ, QOperator): `dory-verify MODEL.onnx [--input X.npy]`.

The float input (`--input`, else a seeded random one over the input quantization's range) is
quantized exactly as the model's first QuantizeLinear does in onnxruntime; the generated C runs
on that integer input; the reference runs the model on the float input. Per layer it prints:

- C vs golden: values where the C differs from the golden model (run end to end). Must be 0.
- C vs onnxruntime: values where the C's layer output differs from onnxruntime's, both run end to
  end (a difference in one layer also changes the inputs of the later ones), and the largest |diff|.
- on onnxruntime's inputs: the golden model's layer run on onnxruntime's own input tensors for
  that layer, against onnxruntime's output: the difference one requantization makes.

The reference (`--reference`): onnxruntime, or onnx's ReferenceEvaluator on the graph onnxruntime fuses
the model into (exact integer QLinear ops: `OnnxReference`). The default, `auto`, is onnxruntime except
on x86 CPUs without VNNI when weights reach beyond ±64: there onnxruntime's u8s8 kernels add pairs of
products in 16 bits with saturation, so onnx's evaluator is taken, with a one-line note.

The bound (PASS iff it holds, besides C = golden everywhere and the quantized input = onnxruntime's):
every value of every layer, computed on onnxruntime's inputs, is within BOUND_LSB = 1 of
onnxruntime's value (1 LSB of the layer's output quantization). onnxruntime requantizes in float32
(conv/matmul: the int32 accumulator times the float32 scale; average pooling and add: on
dequantized values) and rounds half to even; the import computes the exact rational value of the
same float32 scales and rounds half up. The two differ only where onnxruntime's float32 result is
within its rounding error of a rounding boundary or exactly on one, and then by 1; how many such
values there are depends on the data, so the counts are reported, not bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from dory_mlir.backend import perf_report
from dory_mlir.backend.build import build_for_verify
from dory_mlir.backend.pulp_c import write_application
from dory_mlir.diagnostics import DoryError
from dory_mlir.dialects import qnn
from dory_mlir.golden.check import hwc_shape
from dory_mlir.golden.interpreter import constant_array, network_function, run_network
from dory_mlir.golden.layerwise import NO_DIFFERENCE, Difference, difference, run_layerwise
from dory_mlir.golden.onnxruntime_ref import (
    REFERENCES,
    InputQuantizer,
    load_float_input,
    model_input_quantizer,
    saturating_u8s8_kernels,
)
from dory_mlir.ir_utils import layer_output_node, loc_name
from dory_mlir.pipeline import load_network
from dory_mlir.quantize import float_input
from dory_mlir.tensor_layout import feature_last_tensors, onnx_to_ir
from dory_mlir.verify import (
    VerifyOptions,
    compile_network_with_report,
    element_dtype,
    nchw_to_hwc,
    print_table,
    read_dump,
    run_app,
    write_html_report,
)

BOUND_LSB = 1
# |w| <= 64: a pair of u8·s8 products stays within int16 (2·255·64 = 32640), so onnxruntime's
# saturating u8s8 kernels are exact.
SATURATION_FREE_WEIGHT = 64


def float_input_quantizer(model: Path, options: VerifyOptions) -> InputQuantizer | None:
    """The quantization of MODEL's float input when it is a quantized model with a float input (its
    first node a QuantizeLinear) and no golden files are given, else None (verified against goldens)."""
    quantizer = None if options.golden is not None else model_input_quantizer(model)
    if options.float_input is not None and options.golden is not None:
        raise DoryError("--input and --golden exclude each other")
    if quantizer is None and options.float_input is not None:
        raise DoryError("--input is the float input of a quantized model that starts with QuantizeLinear", str(model))
    return quantizer


def verify_with_onnxruntime(model: Path, workdir: Path, options: VerifyOptions, quantizer: InputQuantizer) -> int:
    """Compiles, builds and runs the network in `workdir` on a float input quantized by `quantizer` and
    compares every layer with the golden model and the reference; prints the table; 0 iff PASS."""
    module = load_network(model, options.input_type)
    function = network_function(module)
    layers = {op.index.value.data: op for op in function.body.block.ops if isinstance(op, qnn.LayerOp)}
    in_type = function.function_type.inputs.data[0]
    if element_dtype(in_type) != quantizer.dtype:
        raise DoryError(f"the network's input is {element_dtype(in_type)}, '{quantizer.node}' produces {quantizer.dtype}", str(model))
    nodes = {}
    for index, layer in sorted(layers.items()):
        node = layer_output_node(layer) or loc_name(layer)  # the node whose output the layer yields
        if node is None:
            raise DoryError(f"layer {index} ({layer.kind()}) names no ONNX node to compare with onnxruntime", str(model))
        nodes[index] = node

    reference_name, note = choose_reference(options.reference, layers)
    if note:
        print(note)
    reference = REFERENCES[reference_name](model)
    ref = reference_name
    x_float = load_float_input(options.float_input, model) if options.float_input else quantizer.random_input(
        float_input(reference.model, str(model)).shape, options.seed)
    x_onnx = quantizer.quantize(x_float)
    in_shape = qnn.shape_of(in_type)
    if x_onnx.size != int(np.prod(in_shape)):
        raise DoryError(f"the network's input has shape {list(in_shape)}, the model's {list(x_onnx.shape)}", str(model))
    in_ir_layout = ir_layout(function, reference.model)
    x = in_ir_layout(x_onnx, quantizer.node).reshape(in_shape)

    workdir.mkdir(parents=True, exist_ok=True)
    compiled, tile_report = compile_network_with_report(module, options.pipeline)
    write_application(compiled, workdir)
    run_app(build_for_verify(workdir, options.sanitize, options.target), workdir, nchw_to_hwc(x), element_dtype(in_type))
    _, golden = run_network(module, x)
    _, ort = reference.run(x_float, [quantizer.node, *nodes.values()])
    ort_layers = {index: in_ir_layout(ort[name], name) for index, name in nodes.items()}
    layerwise = run_layerwise(module, x, ort_layers)

    input_difference = difference(x, in_ir_layout(ort[quantizer.node], quantizer.node))
    compared = {index: compare_layer(layer, workdir, golden[index], ort_layers[index], layerwise[index])
                for index, layer in sorted(layers.items())}
    print_table(("layer", "op", "node", "shape (HWC)", "values", "C vs golden", f"C vs {ref}",
                 f"on {ref}'s inputs"),
                [(str(index), layers[index].kind(), nodes[index], hwc_shape(golden[index].shape), str(golden[index].size),
                  str(c.c_golden), str(c.chained), str(c.layerwise)) for index, c in compared.items()])
    print(f"input: {input_difference.values} values quantized as '{quantizer.node}' (scale {float(quantizer.scale):.9g}, "
          f"zero point {quantizer.zero_point}); {input_difference.differing} differ from {ref}'s")
    c_golden = sum(c.c_golden for c in compared.values())
    chained = sum((c.chained for c in compared.values()), NO_DIFFERENCE)
    local = sum((c.layerwise for c in compared.values()), NO_DIFFERENCE)
    within = local.within(BOUND_LSB)
    passed = c_golden == 0 and input_difference.differing == 0 and input_difference.same_size and within
    summary = (f"{len(compared)} layers: C bit-exact with the golden model{' (ASan+UBSan)' if options.sanitize else ''}"
               if c_golden == 0 else f"{c_golden} values of the C differ from the golden model")
    print(f"{'PASS' if passed else 'FAIL'}: {summary}; on {ref}'s inputs {local.differing} of {local.values} "
          f"values differ from {ref} (max {local.max_abs}, bound {BOUND_LSB}); "
          f"end to end {chained.differing} differ (max {chained.max_abs})")
    if ref == "onnxruntime" and saturating_u8s8_kernels() and any(not c.layerwise.within(BOUND_LSB) and max_weight(layers[index]) > SATURATION_FREE_WEIGHT
                                         for index, c in compared.items()):
        print("note: on this CPU (x86 without VNNI) onnxruntime's u8s8 kernels add pairs of products in 16 bits "
              "with saturation, so they are not exact for weights beyond ±64: --reference onnx compares with onnx's "
              "exact ReferenceEvaluator (or quantize with --reduce-range)")
    if options.target == "rv32-qemu":  # instruction counts of the run
        print("\n".join(perf_report.verify_report(workdir, layers)))
    if options.report is not None and tile_report is not None:
        rows = [(ref, str(index), layers[index].kind(), nodes[index], hwc_shape(golden[index].shape), str(golden[index].size),
                 str(c.c_golden), str(c.layerwise)) for index, c in compared.items()]
        write_html_report(options.report, tile_report, model, workdir, options.target, layers, rows,
                          "PASS" if passed else "FAIL", f"on {ref}'s inputs vs {ref}")
    if options.keep:
        print(f"application kept in {workdir}")
    return 0 if passed else 1


def ir_layout(function, model: onnx.ModelProto) -> Callable[[np.ndarray, str], np.ndarray]:
    """(onnxruntime's output of a node, node name) → that tensor in its IR layout: rows of features
    (`dory_mlir/tensor_layout.py`, as the importer recorded them) are transposed, others unchanged."""
    rows = feature_last_tensors(function)
    output_of = {node.name: node.output[0] for node in model.graph.node if node.output}

    def convert(array: np.ndarray, node: str) -> np.ndarray:
        shape = rows.get(output_of.get(node, ""))
        if shape is None or np.asarray(array).size != int(np.prod(shape)):
            return array
        return onnx_to_ir(array, shape)

    return convert


def choose_reference(choice: str, layers: dict[int, qnn.LayerOp]) -> tuple[str, str | None]:
    """The reference to compare with and the note to print: `auto` is onnxruntime, except on an x86
    CPU without VNNI when a layer's weights reach beyond ±64, where onnxruntime's u8s8 kernels
    saturate and onnx's ReferenceEvaluator (exact integer QLinear ops) is taken instead."""
    if choice not in ("auto", *REFERENCES):
        raise DoryError(f"--reference must be auto, onnx or onnxruntime, got '{choice}'")
    if choice != "auto":
        return choice, None
    widest = max((max_weight(layer) for layer in layers.values()), default=0)
    if saturating_u8s8_kernels() and widest > SATURATION_FREE_WEIGHT:
        return "onnx", (f"note: onnxruntime's u8s8 kernels saturate on this CPU (x86 without VNNI) and the weights reach "
                        f"±{widest}: the reference is onnx's ReferenceEvaluator (exact integer QLinear ops); "
                        "--reference onnxruntime compares with onnxruntime anyway")
    return "onnxruntime", None


@dataclass(frozen=True)
class LayerComparison:
    c_golden: int  # values of the C that differ from the golden model
    chained: Difference  # the C against onnxruntime, both end to end
    layerwise: Difference  # the golden layer on onnxruntime's inputs against onnxruntime


def compare_layer(layer: qnn.LayerOp, workdir: Path, golden: np.ndarray, ort: np.ndarray,
                  layerwise: np.ndarray) -> LayerComparison:
    """One layer's three comparisons; the C's dump is HWC, the other tensors NCHW."""
    expected = nchw_to_hwc(golden)
    c = read_dump(workdir / f"out_layer{layer.index.value.data}.bin", layer.output)
    c_golden = int(np.count_nonzero(c != expected.reshape(-1))) if c.size == expected.size else expected.size
    ort_hwc = nchw_to_hwc(ort.reshape(golden.shape)) if ort.size == golden.size else ort
    chained = difference(c, ort_hwc) if c.size else Difference(expected.size, expected.size, 0, same_size=False)
    return LayerComparison(c_golden, chained, difference(layerwise, ort))


def max_weight(layer: qnn.LayerOp) -> int:
    """The largest |value| among the 8-bit constants a layer reads (its weights)."""
    largest = 0
    for operand in layer.operands:
        owner = operand.owner
        if isinstance(owner, qnn.ConstantOp) and qnn.element_type(owner.result).width.data == 8:
            largest = max(largest, int(np.abs(constant_array(owner)).max()))
    return largest
