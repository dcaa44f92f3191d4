"""Tests of the NEMO-style example generator (`dory_mlir.examples.nemo_builder`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from dory_mlir.examples import nemo_builder as nb
from dory_mlir.golden.files import read_dory_txt

SHARED_DORY = Path(__file__).resolve().parents[2] / "shared" / "models" / "dory"

# The main op of each golden layer, in order.
EXPECTED_LAYERS = {
    "tiny_cnn": ["Conv", "MaxPool", "Conv", "MatMul"],
    "mobile_block": ["Conv", "Conv", "Conv", "AveragePool", "Gemm"],
    "residual": ["Conv", "Conv", "Conv", "Conv", "Add", "MatMul"],
    "padded": ["Conv", "Conv", "Conv", "MaxPool", "MatMul"],
    "residual_stage": ["Conv", "Conv", "Add", "Mul", "Conv", "MatMul"],  # Mul: the requant stage's layer
    "residual_wide": ["Conv", "Conv", "Add", "Conv", "MatMul"],
}
# Layers whose values the exported network leaves beyond 8 bits (an add with no clip).
WIDE_LAYERS = {("residual_wide", 2)}
SEED = 0


def read(path):
    golden = read_dory_txt(path)
    return golden.name, golden.shape, golden.values


def test_catalogue_has_the_examples():
    assert set(nb.example_networks()) == set(EXPECTED_LAYERS)


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> dict[str, tuple[onnx.ModelProto, Path]]:
    out = tmp_path_factory.mktemp("examples")
    return {
        name: (model := build(SEED), nb.write_example(model, out / name, SEED))
        for name, build in nb.example_networks().items()
    }


def _nodes(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in model.graph.node}


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYERS))
def test_model_is_valid_nemo_opset9(examples, name):
    model, _ = examples[name]
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 9)]
    (graph_input,) = model.graph.input
    assert graph_input.name == "input"
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    for index, node in enumerate(model.graph.node):
        assert node.name == f"{node.op_type}_{index}"
    for name_, value in _initializers(model).items():
        assert value.dtype == np.float32 and np.array_equal(value, np.round(value)), name_
        if name_.endswith(".weight"):
            assert value.min() >= -128 and value.max() <= 127


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYERS))
def test_layers_in_network_order(examples, name):
    model, _ = examples[name]
    layers = nb.deployable_layers(model)
    nodes = _nodes(model)
    assert [nodes[layer.name].op_type for layer in layers] == EXPECTED_LAYERS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYERS))
def test_golden_files(examples, name):
    model, out = examples[name]
    assert (out / "model.onnx").read_bytes() == model.SerializeToString()

    header, shape, values = read(out / "input.txt")
    x = nb.make_input(SEED, (1, *shape))
    assert header == "input"
    assert np.array_equal(values, x[0].transpose(1, 2, 0).ravel())

    expected = EXPECTED_LAYERS[name]
    assert sorted(p.name for p in out.glob("out_layer*.txt")) == sorted(
        f"out_layer{n}.txt" for n in range(len(expected))
    )
    for n in range(len(expected)):
        layer_name, shape, values = read(out / f"out_layer{n}.txt")
        assert layer_name.split("_")[0] == expected[n]
        assert values.size == np.prod(shape)
        if n < len(expected) - 1:  # 8-bit activations (HWC), or beyond 255 where the add has no clip
            assert len(shape) == 3
            assert values.min() >= 0 and (values.max() > 255 if (name, n) in WIDE_LAYERS else values.max() <= 255)
            assert (values == 0).mean() < 0.9 and (values == 255).mean() < 0.9
        else:  # final linear layer: 32-bit accumulators
            assert len(shape) == 1
            assert np.abs(values).max() < 2**24
        assert len(np.unique(values)) >= min(3, values.size), f"layer {n} is degenerate"


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYERS))
def test_deterministic_for_a_seed(name):
    build = nb.example_networks()[name]
    assert build(5).SerializeToString() == build(5).SerializeToString()
    assert build(5).SerializeToString() != build(6).SerializeToString()


def test_conv_layer_pattern_and_integer_semantics(examples):
    """Layer 0 and 1 of tiny_cnn, recomputed with int64 numpy from the graph's constants."""
    model, out = examples["tiny_cnn"]
    assert [n.op_type for n in model.graph.node[:10]] == [
        "Conv", "Mul", "Add", "Cast", "Constant", "Mul", "Constant", "Div", "Cast", "Clip",
    ]  # fmt: skip
    conv, mul, add, cast_i, const_m, mul_m, const_d, div, cast_f, clip = model.graph.node[:10]
    params = _initializers(model)
    consts = {n.output[0]: numpy_helper.to_array(_attrs(n)["value"]) for n in (const_m, const_d)}
    assert mul.input[0] in params and mul.input[1] == conv.output[0]  # kappa is the first operand
    assert params[mul.input[0]].shape == (1, 8, 1, 1)
    assert params[add.input[1]].shape == (1, 8, 1, 1)
    assert _attrs(cast_i)["to"] == onnx.TensorProto.INT64
    assert _attrs(cast_f)["to"] == onnx.TensorProto.FLOAT
    assert all(v.dtype == np.int64 for v in consts.values())
    d_value = int(consts[div.input[1]][0])
    assert d_value & (d_value - 1) == 0  # a power of two
    assert (_attrs(clip)["min"], _attrs(clip)["max"]) == (0.0, 255.0)

    x = nb.make_input(SEED, (1, 1, 16, 16)).astype(np.int64)[0]
    w = params[conv.input[1]].astype(np.int64)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    acc = np.zeros((8, 16, 16), dtype=np.int64)
    for i in range(3):
        for j in range(3):
            acc += np.einsum("oc,chw->ohw", w[:, :, i, j], padded[:, i : i + 16, j : j + 16])
    kappa = params[mul.input[0]].astype(np.int64)[0]
    lamda = params[add.input[1]].astype(np.int64)[0]
    m = int(consts[mul_m.input[1]][0])
    y = np.clip((acc * kappa + lamda) * m // d_value, 0, 255)
    _, shape, layer0 = read(out / "out_layer0.txt")
    assert shape == (16, 16, 8)
    assert np.array_equal(layer0, y.transpose(1, 2, 0).ravel())

    _, shape, layer1 = read(out / "out_layer1.txt")
    pooled = y.reshape(8, 8, 2, 8, 2).max(axis=(2, 4))
    assert shape == (8, 8, 8)
    assert np.array_equal(layer1, pooled.transpose(1, 2, 0).ravel())


def test_mobile_block_pattern(examples):
    model, _ = examples["mobile_block"]
    nodes = model.graph.node
    params = _initializers(model)
    depthwise = [n for n in nodes if n.op_type == "Conv"][1]
    assert _attrs(depthwise)["group"] == 8 and params[depthwise.input[1]].shape == (8, 1, 3, 3)
    assert _attrs(depthwise)["strides"] == [2, 2]
    pool = next(i for i, n in enumerate(nodes) if n.op_type == "AveragePool")
    chain = [n.op_type for n in nodes[pool : pool + 8]]
    assert chain == ["AveragePool", "Constant", "Mul", "Constant", "Mul", "Constant", "Div", "Floor"]
    assert numpy_helper.to_array(_attrs(nodes[pool + 1])["value"]) == 36.0
    gemm = next(n for n in nodes if n.op_type == "Gemm")
    assert _attrs(gemm)["transB"] == 1 and params[gemm.input[1]].shape == (10, 16 * 2 * 2)
    assert np.any(params[gemm.input[2]] != 0)
    assert nodes[-1].op_type == "LogSoftmax"
    assert model.graph.output[0].name == nodes[-1].output[0]


def test_residual_pattern(examples):
    model, _ = examples["residual"]
    nodes = list(model.graph.node)
    (add_layer,) = [layer for layer in nb.deployable_layers(model) if layer.name.startswith("Add")]
    position = [n.name for n in nodes].index(add_layer.name)
    producers = {n.output[0]: n for n in nodes}
    assert [producers[i].op_type for i in nodes[position].input] == ["Mul", "Mul"]
    after = [n.op_type for n in nodes[position + 1 :] if n.op_type != "Constant"]
    assert after[:3] == ["Div", "Floor", "Clip"]
    assert add_layer.output == nodes[position + 4].output[0]  # the Clip ends the layer
    bypass = [n for n in model.graph.node if n.op_type == "Conv"][3]
    assert _attrs(bypass)["kernel_shape"] == [1, 1] and _attrs(bypass)["strides"] == [2, 2]
    assert model.graph.node[-1].op_type == "Sigmoid"


def test_residual_wide_pattern(examples):
    """The add ends at its Floor (no Clip) and the conv after it reads values beyond 255."""
    model, out = examples["residual_wide"]
    nodes = list(model.graph.node)
    (add_layer,) = [layer for layer in nb.deployable_layers(model) if layer.name.startswith("Add")]
    producers = {n.output[0]: n for n in nodes}
    assert producers[add_layer.output].op_type == "Floor"
    assert not any(n.op_type == "Clip" and n.input[0] == add_layer.output for n in nodes)
    assert any(n.op_type == "Conv" and n.input[0] == add_layer.output for n in nodes)
    _, _, values = read(out / "out_layer2.txt")
    assert 255 < values.max() < 2**16 and (values > 255).sum() > 10


def test_padded_pattern(examples):
    model, _ = examples["padded"]
    nodes = list(model.graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    for i in convs[:2]:
        assert nodes[i - 1].op_type == "Pad" and nodes[i].input[0] == nodes[i - 1].output[0]
        assert _attrs(nodes[i])["pads"] == [0, 0, 0, 0]
    assert _attrs(nodes[convs[0] - 1])["pads"] == [0, 0, 1, 1, 0, 0, 1, 1]
    assert _attrs(nodes[convs[1] - 1])["pads"] == [0, 0, 0, 2, 0, 0, 0, 2]
    assert _attrs(nodes[convs[1]])["kernel_shape"] == [1, 5]
    assert _attrs(nodes[convs[2]])["pads"] == [0, 1, 0, 1]
    assert all(len(nodes[i].input) == 3 for i in convs)  # bias, followed by the batch norm
    assert all(nodes[i + 1].op_type == "Mul" for i in convs)


def test_exactness_is_enforced():
    big = nb.NemoNetBuilder(0, (1, 64, 32, 32))
    with pytest.raises(ValueError, match="2\\^24"):
        big.linear(4)
    pool = nb.NemoNetBuilder(0, (1, 1, 10, 10))
    with pytest.raises(ValueError, match="window sum"):
        pool.avgpool(5)  # float32 (s / 25) * 25 is not always s


def test_builder_rejects_misuse():
    b = nb.NemoNetBuilder(0, (1, 1, 8, 8))
    with pytest.raises(ValueError, match="Gemm"):
        b.linear(4, bias=True)
    with pytest.raises(ValueError, match="groups"):
        b.conv(4, 3, groups=2)
    b.linear(4)
    with pytest.raises(ValueError, match="NCHW"):
        b.conv(4, 3)
    with pytest.raises(ValueError, match="tail"):
        b.tail("softmax")


def test_custom_network_with_multichannel_input(tmp_path):
    b = nb.NemoNetBuilder(3, (1, 2, 6, 8))
    x = b.conv(4, (3, 1), pad=(1, 0, 1, 0))
    y = b.conv(4, 1, x=x)
    b.add(x, y)
    b.avgpool(2)
    b.linear(3, use_gemm=True)
    out = nb.write_example(b.build(), tmp_path, 3)
    _, shape, values = read(out / "input.txt")
    assert shape == (2, 6, 8)
    assert np.array_equal(values, nb.make_input(3, (1, 2, 6, 8))[0].transpose(1, 2, 0).ravel())
    assert [read(out / f"out_layer{n}.txt")[1] for n in range(5)] == [
        (6, 8, 4), (6, 8, 4), (6, 8, 4), (3, 4, 4), (3,),
    ]  # fmt: skip


def test_read_dory_txt_variants(tmp_path):
    path = tmp_path / "golden.txt"
    path.write_text("layers.0.relu1 (shape [1, 2, 1, 1]),\\\n81.000,\\\n0,\\\n")
    name, shape, values = read(path)
    assert (name, shape, values.tolist()) == ("layers.0.relu1", (1, 2, 1, 1), [81, 0])


def test_cli_writes_one_or_all(tmp_path):
    nb.main([str(tmp_path / "one"), "--name", "tiny_cnn", "--seed", "3"])
    assert (tmp_path / "one" / "model.onnx").is_file()
    assert (tmp_path / "one" / "out_layer3.txt").is_file()
    nb.main([str(tmp_path / "all")])
    for name, layers in EXPECTED_LAYERS.items():
        assert (tmp_path / "all" / name / f"out_layer{len(layers) - 1}.txt").is_file()


@pytest.mark.skipif(not SHARED_DORY.is_dir(), reason="../shared/models/dory not available")
def test_layer_numbering_matches_shared_nemo_goldens():
    """The golden extraction reproduces the real NEMO networks' golden files."""
    for folder in sorted(SHARED_DORY.glob("nemo_*")):
        model = onnx.load(next(folder.glob("*.onnx")))
        assert len(nb.deployable_layers(model)) == len(list(folder.glob("out_layer*.txt")))
    for name in ("nemo_8-bits-2D_Residual_connection_test_1", "nemo_8-bits-2D_eegnet_1d_8b_1xW"):
        folder = SHARED_DORY / name
        model = onnx.load(next(folder.glob("*.onnx")))
        _, _, values = read(folder / "input.txt")
        dims = model.graph.input[0].type.tensor_type.shape.dim
        c, h, w = (d.dim_value for d in dims[1:])
        x = values.reshape(h, w, c).transpose(2, 0, 1)[None].astype(np.float32)
        for n, (_, value) in enumerate(nb.golden_activations(model, x)):
            _, _, golden = read(folder / f"out_layer{n}.txt")
            hwc = value[0].transpose(1, 2, 0) if value.ndim == 4 else value[0]
            assert np.array_equal(hwc.ravel(), golden), f"{name} layer {n}"
