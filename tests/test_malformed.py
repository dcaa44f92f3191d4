"""A seeded catalog of malformed inputs: no tool ever ends in a traceback.

Small valid networks (NEMO-style from `nemo_builder`, QuantLib-style from `quantlib_builder`)
are mutated programmatically — attributes deleted or set to zero, negative, huge or NaN values,
initializers replaced, types swapped, files truncated or overwritten with garbage, golden files
corrupted — and each mutant goes through `dory-opt --fuse` and `dory-golden --check`, called
in-process. Every run must end with exit code 0, or 1 with exactly one `error:` line on stderr
(or dory-golden's FAIL verdict): never a traceback, never `internal error:` (exit 2), never a
numpy warning on stderr.
"""

from __future__ import annotations

import contextlib
import copy
import io
import random
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dory_mlir.examples import nemo_builder, quantlib_builder
from dory_mlir.cli import golden as dory_golden, opt as dory_opt

SEED = 11
CASES_PER_MODEL = 60


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


def call(main: Callable[[list[str]], int], *args: str) -> Result:
    """A tool's `main(argv)` in-process, numpy/Python RuntimeWarnings turned into exceptions."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        warnings.simplefilter("error", RuntimeWarning)
        status = main(list(args))
    return Result(status, out.getvalue(), err.getvalue())


def problems(result: Result, what: str) -> list[str]:
    """What is wrong with one run (empty when it is a clean success or a clean one-line error)."""
    found = []
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if "Traceback" in result.stderr or "Traceback" in result.stdout:
        found.append("traceback")
    stray = [line for line in lines if not line.startswith(("error: ", "warning: ", "internal error: "))]
    if stray:
        found.append(f"stray stderr {stray[:2]}")
    errors = [line for line in lines if line.startswith(("error: ", "internal error: "))]
    if result.status == 0:
        if errors:
            found.append(f"exit 0 with {errors[:1]}")
    elif result.status == 1:
        failed_check = not errors and "FAIL" in result.stdout
        if not failed_check and len(errors) != 1:
            found.append(f"exit 1 with {len(errors)} error lines")
        if errors and not errors[0].startswith("error: "):
            found.append(errors[0])
    else:
        found.append(f"exit {result.status}: {errors[:1] or lines[-1:]}")
    return [f"{what}: {p}" for p in found]


# ---------------------------------------------------------------------- base networks


def _nemo(tmp: Path, name: str) -> Path:
    model = nemo_builder.example_networks()[name](0)
    return nemo_builder.write_example(model, tmp / name, 0)


def _quantlib_small(seed: int) -> quantlib_builder.QuantLibNetBuilder:
    b = quantlib_builder.QuantLibNetBuilder(seed, (1, 2, 8, 8), signed_input=True)
    x = b.conv("c0", 4, 3, signed=True)
    y = b.conv("c1", 4, 3, x=x, signed=True)
    b.add("add", x, y, signed=True)
    b.maxpool(2)
    b.linear("fc", 5, signed=True)
    return b


def _quantlib(tmp: Path) -> Path:
    out = tmp / "quantlib_small"
    out.mkdir(parents=True)
    model, goldens = _quantlib_small(0).build("quantlib_small")
    onnx.save(model, out / "network.onnx")
    for file, arrays in goldens.items():
        np.savez(out / f"{file}.npz", **arrays)
    return out


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("malformed_bases")
    folders = {name: _nemo(root, name) for name in ("tiny_cnn", "residual", "padded", "mobile_block")}
    folders["quantlib_small"] = _quantlib(root)
    return folders


def model_file(folder: Path) -> Path:
    return next(folder.glob("*.onnx"))


# ---------------------------------------------------------------------- model mutations

HUGE = [2**31, 2**40, 2**63 - 1, -(2**40)]
BAD_FLOATS = [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-45, 3e38, 0.5, -7.25, 1e30]
TYPES = [TensorProto.STRING, TensorProto.BOOL, TensorProto.INT64, TensorProto.UINT8, TensorProto.FLOAT16,
         TensorProto.DOUBLE, TensorProto.COMPLEX64, TensorProto.UNDEFINED, 999]
OPS = ["Sub", "Conv", "MaxPool", "Relu", "Identity", "Unsqueeze", "Squeeze", "ReduceMean", "Cast", "Clip",
       "Floor", "RequantShift", "Gemm", "MatMul", "Add", "Mul", "Div", "Frobnicate", "Pad", "Reshape", "Flatten",
       "Constant", "AveragePool", "GlobalAveragePool", "Concat", "Softmax"]


def _int_values(rng: random.Random) -> list[int]:
    return rng.choice([[0], [-1], [0, 0], [-2, -2], [HUGE[rng.randrange(4)]] * 2, [], [1, 2, 3, 4, 5, 6, 7],
                       [rng.randint(-3, 9) for _ in range(rng.randint(1, 4))]])


def mutate_attribute(model: onnx.ModelProto, rng: random.Random) -> str:
    node = rng.choice([n for n in model.graph.node if n.attribute] or list(model.graph.node))
    if not node.attribute or rng.random() < 0.1:
        node.attribute.append(helper.make_attribute(rng.choice(["group", "kernel_shape", "strides", "axis", "to"]),
                                                    _int_values(rng) or [0]))
        return f"{node.name}: extra attribute"
    attr = rng.choice(list(node.attribute))
    choice = rng.randrange(6)
    if choice == 0:
        node.attribute.remove(attr)
        return f"{node.name}: delete '{attr.name}'"
    if attr.type == onnx.AttributeProto.INTS:
        values = _int_values(rng)
        del attr.ints[:]
        attr.ints.extend(values)
        return f"{node.name}: {attr.name}={values}"
    if attr.type == onnx.AttributeProto.INT:
        attr.i = rng.choice([0, -1, -3, *HUGE, 7])
        return f"{node.name}: {attr.name}={attr.i}"
    if attr.type == onnx.AttributeProto.FLOAT:
        attr.f = rng.choice(BAD_FLOATS)
        return f"{node.name}: {attr.name}={attr.f}"
    if attr.type == onnx.AttributeProto.TENSOR:
        value = rng.choice([0.0, -256.0, 2.0**40, float("nan"), float("inf"), 1e-45, 0.5, 3e38])
        shape = rng.choice([(1,), (), (2,), (0,)])
        attr.t.CopyFrom(numpy_helper.from_array(np.full(shape, value, dtype=rng.choice([np.float32, np.float64, np.int64]) if np.isfinite(value) and value == int(value) else np.float32), attr.t.name))
        return f"{node.name}: {attr.name}=tensor {value} {shape}"
    if attr.type == onnx.AttributeProto.STRING:
        attr.s = rng.choice([b"", b"SAME_UPPER", b"reflect", b"\xff\xfe", b"VALID"])
        return f"{node.name}: {attr.name}={attr.s!r}"
    attr.type = rng.choice([onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING])
    return f"{node.name}: {attr.name} retyped"


def mutate_initializer(model: onnx.ModelProto, rng: random.Random) -> str:
    init = rng.choice(list(model.graph.initializer))
    value = numpy_helper.to_array(init).astype(np.float64)
    choice = rng.randrange(9)
    if choice == 0:
        value = np.zeros_like(value)
    elif choice == 1:
        value = -np.abs(value) - 1
    elif choice == 2:
        value = value * rng.choice([2.0**20, 2.0**40, 1e30, 1e-30])
    elif choice == 3:
        value = value.copy()
        value.reshape(-1)[rng.randrange(value.size)] = rng.choice([np.nan, np.inf, 0.5, -np.inf])
    elif choice == 4:
        value = value.reshape(-1)[: max(0, value.size - 1)]
    elif choice == 5:
        value = np.zeros((0,))
    elif choice == 6:
        value = value.reshape((1,) + value.shape) if value.ndim < 5 else value
    elif choice == 7:
        raw = numpy_helper.from_array(value.astype(np.float32), init.name)
        raw.raw_data = raw.raw_data[: rng.randrange(len(raw.raw_data) + 1)] + b"\x01"
        init.CopyFrom(raw)
        return f"{init.name}: bad raw data"
    else:
        dtype = rng.choice([np.int64, np.uint8, np.int8, np.float16, np.bool_, np.int32, np.float64])
        with np.errstate(all="ignore"):
            init.CopyFrom(numpy_helper.from_array(value.astype(dtype), init.name))
        return f"{init.name}: as {np.dtype(dtype).name}"
    with np.errstate(all="ignore"):
        init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), init.name))
    return f"{init.name}: values #{choice}"


def mutate_graph(model: onnx.ModelProto, rng: random.Random) -> str:
    graph = model.graph
    choice = rng.randrange(14)
    node = rng.choice(list(graph.node))
    if choice == 0:
        node.op_type = rng.choice(OPS)
        return f"{node.name}: op {node.op_type}"
    if choice == 1:
        node.domain = rng.choice(["com.example", "ai.onnx.ml", "com.microsoft"])
        return f"{node.name}: domain {node.domain}"
    if choice == 2:
        del model.opset_import[:]
        model.opset_import.append(helper.make_opsetid("", rng.choice([1, 6, 7, 13, 18, 21, 99, 0])))
        return f"opset {model.opset_import[0].version}"
    if choice == 3:
        model.ir_version = rng.choice([0, 1, 2, 99, -1 & 0xFFFFFFFF])
        return f"ir_version {model.ir_version}"
    if choice == 4 and graph.initializer:
        graph.initializer.append(copy.deepcopy(rng.choice(list(graph.initializer))))
        return "duplicate initializer"
    if choice == 5:
        graph.input[0].type.tensor_type.elem_type = rng.choice(TYPES)
        return f"input type {graph.input[0].type.tensor_type.elem_type}"
    if choice == 6:
        dims = graph.input[0].type.tensor_type.shape.dim
        dim = rng.choice(list(dims))
        value = rng.choice([0, -1, 2, 3, 2**31, None])
        if value is None:
            dim.dim_param = "N"
        else:
            dim.dim_value = value
        return f"input dim {value}"
    if choice == 7:
        if node.input:
            index = rng.randrange(len(node.input))
            node.input[index] = rng.choice(["", "nowhere", graph.input[0].name, node.output[0]])
            return f"{node.name}: input {index} rewired"
        node.input.append("nowhere")
        return f"{node.name}: input added"
    if choice == 8:
        if len(node.input) > 1 and rng.random() < 0.5:
            del node.input[-1]
            return f"{node.name}: last input removed"
        node.input.append(rng.choice([graph.input[0].name, graph.initializer[0].name if graph.initializer else "x"]))
        return f"{node.name}: extra input"
    if choice == 9:
        nodes = list(graph.node)
        i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
        nodes[i], nodes[j] = nodes[j], nodes[i]
        del graph.node[:]
        graph.node.extend(nodes)
        return f"nodes {i} and {j} swapped"
    if choice == 10:
        graph.output[0].name = rng.choice([graph.input[0].name, "nowhere",
                                           graph.initializer[0].name if graph.initializer else "x"])
        return f"output renamed {graph.output[0].name}"
    if choice == 11:
        graph.node.remove(node)
        return f"{node.name}: removed"
    if choice == 12:
        node.output.append(rng.choice(["extra", node.output[0]]))
        return f"{node.name}: extra output"
    # a Constant node with bad raw data in front of the graph
    tensor = TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[4], raw_data=b"\x00\x01\x02")
    const = helper.make_node("Constant", [], ["bad_const"], name="BadConstant", value=tensor)
    graph.node.insert(0, const)
    if node.input:
        node.input[rng.randrange(len(node.input))] = "bad_const"
    return "Constant with bad raw data"


MUTATIONS = [mutate_attribute, mutate_attribute, mutate_initializer, mutate_graph, mutate_graph]


def mutated_models(base: Path, out: Path, count: int, seed: int) -> list[tuple[str, Path]]:
    """`count` mutants of the model in `base`, written into `out` (a copy of `base`'s golden files)."""
    rng = random.Random(seed)
    original = onnx.load(model_file(base))
    cases = []
    for index in range(count):
        model = copy.deepcopy(original)
        label = "; ".join(rng.choice(MUTATIONS)(model, rng) for _ in range(rng.choice([1, 1, 1, 2])))
        path = out / f"m{index}.onnx"
        data = model.SerializeToString()
        if rng.random() < 0.08:  # damaged files
            cut = rng.randrange(len(data))
            data = data[:cut] if rng.random() < 0.5 else data[:cut] + bytes(rng.randrange(256) for _ in range(8)) + data[cut + 8:]
            label += "; bytes damaged"
        path.write_bytes(data)
        cases.append((label, path))
    return cases


def test_mutated_models_never_traceback(bases: dict[str, Path], tmp_path: Path):
    found: list[str] = []
    for number, (name, base) in enumerate(sorted(bases.items())):
        work = tmp_path / name
        shutil.copytree(base, work)
        for label, path in mutated_models(base, work, CASES_PER_MODEL, SEED + number):
            what = f"{name} [{label}]"
            found += problems(call(dory_opt.main, str(path), "--fuse"), f"dory-opt {what}")
            found += problems(call(dory_golden.main, str(path), "--check", str(work)), f"dory-golden {what}")
    assert not found, "\n".join(found)


# ---------------------------------------------------------------------- IR text mutations

_INTEGER = re.compile(r"(?<![\w%#.\"])-?\d+(?![\w.])")
IR_VALUES = ["0", "-1", "300", "-129", str(2**31), str(2**32 + 3), str(2**63), str(-(2**63) - 1), str(2**64 + 5),
             "9" * 30, "-7"]


def mutated_ir(text: str, rng: random.Random) -> tuple[str, str]:
    choice = rng.randrange(5)
    lines = text.splitlines(keepends=True)
    if choice <= 2:  # an integer literal replaced (attributes, shapes, constants)
        spots = list(_INTEGER.finditer(text))
        spot = rng.choice(spots)
        value = rng.choice(IR_VALUES)
        return f"literal {spot.group()}->{value} at {spot.start()}", text[: spot.start()] + value + text[spot.end():]
    if choice == 3:
        cut = rng.randrange(len(text))
        return f"cut at {cut}", text[:cut]
    index = rng.randrange(len(lines))
    return f"line {index} removed", "".join(lines[:index] + lines[index + 1:])


def test_mutated_ir_never_traceback(bases: dict[str, Path], tmp_path: Path):
    folder = tmp_path / "tiny"
    shutil.copytree(bases["tiny_cnn"], folder)
    ir = tmp_path / "tiny.mlir"
    assert call(dory_opt.main, str(model_file(folder)), "-o", str(ir)).status == 0
    text = ir.read_text()
    rng = random.Random(SEED)
    found: list[str] = []
    for index in range(40):
        label, mutant = mutated_ir(text, rng)
        path = tmp_path / f"ir{index}.mlir"
        path.write_text(mutant)
        found += problems(call(dory_opt.main, str(path), "--fuse"), f"dory-opt [{label}]")
        found += problems(call(dory_golden.main, str(path), "--check", str(folder)), f"dory-golden [{label}]")
    assert not found, "\n".join(found)


# ---------------------------------------------------------------------- golden file mutations

GOLDEN_LINES = ["1e5,", "12.5,", "abc", "9" * 40 + ",", "-" + "9" * 20 + ",", "1" * 13 + ".000,", ",", "0x1F,", "nan,"]
HEADERS = ["# x (shape [8, a, 16]),", "# x (shape [99999999999999999999]),", "# x (shape [,,]),", "no shape here",
           "# x (shape [-1, 4]),", "# x (shape [1, 2, 3]", "", "\x00\x01"]


def test_mutated_golden_files_never_traceback(bases: dict[str, Path], tmp_path: Path):
    rng = random.Random(SEED)
    found: list[str] = []
    for index in range(24):
        folder = tmp_path / f"g{index}"
        shutil.copytree(bases["tiny_cnn"], folder)
        target = rng.choice(sorted(folder.glob("*.txt")))
        lines = target.read_text().splitlines()
        choice = rng.randrange(5)
        if choice == 0:
            lines[0] = rng.choice(HEADERS)
        elif choice == 1:
            lines[rng.randrange(1, len(lines))] = rng.choice(GOLDEN_LINES)
        elif choice == 2:
            lines = lines[: rng.randrange(len(lines))]
        elif choice == 3:
            target.write_bytes(bytes(rng.randrange(256) for _ in range(64)))
            lines = None
        else:
            lines = lines + lines[1:3]
        if lines is not None:
            target.write_text("\n".join(lines) + "\n")
        label = f"{target.name} #{choice}"
        found += problems(call(dory_golden.main, str(model_file(folder)), "--check", str(folder)), f"dory-golden [{label}]")
    assert not found, "\n".join(found)


# ---------------------------------------------------------------------- a QOperator model, its scales mutated


def qoperator_model(x_scale: float, w_scale: float, y_scale: float) -> onnx.ModelProto:
    """float input → QuantizeLinear → QLinearConv → DequantizeLinear."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array(x_scale, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
        numpy_helper.from_array(rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8), "w"),
        numpy_helper.from_array(np.array(w_scale, np.float32), "w_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
        numpy_helper.from_array(np.array(y_scale, np.float32), "y_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "y_zp"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="quant"),
        helper.make_node("QLinearConv", ["xq", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"], ["yq"],
                         name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["y"], name="dequant"),
    ]
    graph = helper.make_graph(nodes, "qop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("scales", [
    (0.02, 0.01, 0.05),  # valid
    (1e-30, 1e-30, 1.0),  # the product underflows to 0 in float32
    (3e38, 3e38, 1e-30),  # overflows to infinity
    (0.0, 0.01, 0.05), (-0.02, 0.01, 0.05), (float("nan"), 0.01, 0.05), (0.02, float("inf"), 0.05),
    (1e-45, 1e-45, 1e-45), (0.02, 0.01, 1e-45),
], ids=str)
def test_qoperator_scales(tmp_path: Path, scales):
    path = tmp_path / "qop.onnx"
    onnx.save(qoperator_model(*scales), path)
    done = call(dory_opt.main, str(path), "--fuse")
    found = problems(done, f"dory-opt {scales}")
    assert not found, "\n".join(found)
    if scales == (0.02, 0.01, 0.05):
        assert done.status == 0, done.stderr
    elif all(s > 0 and np.isfinite(s) for s in scales):  # valid scales whose float32 product is not
        assert "node 'conv' (QLinearConv): the requantization scale" in done.stderr, done.stderr
    else:
        assert "node 'conv' (QLinearConv)" in done.stderr and "must be positive and finite" in done.stderr, done.stderr


# ---------------------------------------------------------------------- valid spellings that used to fail


def _golden_passes(model: onnx.ModelProto, folder: Path, name: str) -> Result:
    path = folder / name
    onnx.save(model, path)
    return call(dory_golden.main, str(path), "--check", str(folder))


def test_identity_anywhere_is_a_no_op(bases: dict[str, Path], tmp_path: Path):
    """Identity on the network input, between a requant chain and Flatten, and on the output (that one
    out of topological order)."""
    folder = tmp_path / "tiny"
    shutil.copytree(bases["tiny_cnn"], folder)
    model = onnx.load(model_file(folder))
    graph = model.graph
    input_name = graph.input[0].name
    for node in graph.node:
        node.input[:] = ["input_id" if name == input_name else name for name in node.input]
    flatten = next(n for n in graph.node if n.op_type == "Flatten")
    source = flatten.input[0]
    flatten.input[0] = "middle_id"
    last = graph.node[-1].output[0]
    graph.node.insert(0, helper.make_node("Identity", [input_name], ["input_id"], name="IdentityIn"))
    graph.node.insert(list(graph.node).index(flatten), helper.make_node("Identity", [source], ["middle_id"], name="IdentityMid"))
    # written before its producer, as Deeploy's OutputIdentity test does: the importer sorts the nodes
    graph.node.insert(1, helper.make_node("Identity", [last], ["out"], name="IdentityOut"))
    graph.output[0].name = "out"
    done = _golden_passes(model, folder, "identity.onnx")
    assert done.status == 0 and "PASS" in done.stdout, done.stdout + done.stderr


def test_opset13_axes_inputs_and_shape_arithmetic(bases: dict[str, Path], tmp_path: Path):
    """PyTorch's `x.view(x.size(0), -1)` at opset 13: Shape → Gather → Unsqueeze(axes as an input) →
    Concat → Reshape, with Squeeze (axes input) on a constant too."""
    folder = tmp_path / "tiny"
    shutil.copytree(bases["tiny_cnn"], folder)
    model = onnx.load(model_file(folder))
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", 13))
    graph = model.graph
    flatten = next(n for n in graph.node if n.op_type == "Flatten")
    x, out = flatten.input[0], flatten.output[0]
    graph.initializer.extend([
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
        numpy_helper.from_array(np.array([[-1]], np.int64), "minus_one_2d"),
    ])
    nodes = [
        helper.make_node("Shape", [x], ["shape"], name="Shape_v"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="Gather_v", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch_1d"], name="Unsqueeze_v"),
        helper.make_node("Squeeze", ["minus_one_2d", "axes0"], ["minus_one"], name="Squeeze_v"),
        helper.make_node("Concat", ["batch_1d", "minus_one"], ["target"], name="Concat_v", axis=0),
        helper.make_node("Reshape", [x, "target"], [out], name="Reshape_v"),
    ]
    index = list(graph.node).index(flatten)
    graph.node.remove(flatten)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)
    done = _golden_passes(model, folder, "opset13.onnx")
    assert done.status == 0 and "PASS" in done.stdout, done.stdout + done.stderr
    # the axes input must be a constant
    graph.node[index + 2].input[1] = x
    done = _golden_passes(model, folder, "dynamic_axes.onnx")
    assert done.status == 1 and "node 'Unsqueeze_v' (Unsqueeze)" in done.stderr, done.stderr
