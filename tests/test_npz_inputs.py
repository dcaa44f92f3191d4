"""Golden data as Deeploy writes it (issue 11, items 1, 3, 7): several network inputs end to end,
inputs.npz quirks (by position, trailing initializer arrays, integers stored as floats), 1-D
networks in the npz form, and activations.npz files that lack some tensors.

The networks are our own seeded QuantLib-format ones (`quantlib_builder.format_networks`).
"""

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import tool
from dory_mlir.dialects import qnn
from dory_mlir.examples import quantlib_builder
from dory_mlir.golden.check import check_folder, network_layers
from dory_mlir.golden.files import to_layout, write_dory_txt
from dory_mlir.golden.interpreter import network_function
from dory_mlir.golden.npz import Candidate, input_type_for, match_activations
from dory_mlir.ir_utils import layer_output_node
from dory_mlir.pipeline import load_network
from dory_mlir.cli import golden as dory_golden
from test_errors import assert_one_line_error
from test_verify import assert_bit_exact


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("format_nets")
    for name in quantlib_builder.format_networks():
        quantlib_builder.write_example(name, root / name, 0)
    return root


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def golden(model: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess:
    """dory-golden in this process (its main(), as the console script runs it): output and status."""
    argv = [str(model), "--check", str(folder), *extra]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = dory_golden.main(argv)
    return subprocess.CompletedProcess(["dory-golden", *argv], status, out.getvalue(), err.getvalue())


def assert_every_layer_compared(model: Path, folder: Path, input_type: str | None) -> None:
    module = load_network(model, input_type)
    report = check_folder(module, folder, model)
    assert report.passed(), "\n" + report.table()
    compared = {r.layer for r in report.rows if not r.skipped and r.compared}
    assert compared >= {str(i) for i in network_layers(module)}, "\n" + report.table()


# ---------------------------------------------------------------------- several inputs


def test_two_inputs_each_with_its_own_type(nets: Path):
    folder = nets / "two_inputs"
    assert input_type_for(folder, folder / "network.onnx") == "ui8,si8"
    module = load_network(folder / "network.onnx", "ui8,si8")
    types = network_function(module).function_type.inputs.data
    assert [str(qnn.element_type(t)) for t in types] == ["ui8", "si8"]
    assert [qnn.shape_of(t) for t in types] == [(1, 3, 12, 12), (1, 8, 12, 12)]
    assert_every_layer_compared(folder / "network.onnx", folder, "ui8,si8")
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    assert "add" in done.stdout


def test_input_types_must_match_the_input_count(nets: Path):
    model = nets / "two_inputs" / "network.onnx"
    assert_one_line_error(golden(model, nets / "two_inputs", "--input-type", "ui8,si8,si8"), "3 input types", "2 inputs")


def test_deeploy_style_inputs_npz(nets: Path, tmp_path: Path):
    """By position whatever the names; float64 integers; a trailing array equal to a weight is ignored, once."""
    folder = copy_of(nets / "two_inputs", tmp_path)
    model = onnx.load(folder / "network.onnx")
    weight = next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == "branch.weight")
    arrays = list(np.load(folder / "inputs.npz").values())
    np.savez(folder / "inputs.npz", zeta=arrays[0].astype(np.float64), alpha=arrays[1].astype(np.float32), w=weight)
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "'w' = 'branch.weight'" in warnings[0], done.stderr

    np.savez(folder / "inputs.npz", a=arrays[0], b=arrays[1], w=weight + 1)
    assert_one_line_error(golden(folder / "network.onnx", folder), "inputs.npz", "'w' equals no initializer")
    np.savez(folder / "inputs.npz", a=arrays[0])
    assert_one_line_error(golden(folder / "network.onnx", folder), "inputs.npz", "1 arrays", "2 inputs")
    np.savez(folder / "inputs.npz", a=arrays[0] + 0.5, b=arrays[1])
    assert_one_line_error(golden(folder / "network.onnx", folder), "inputs.npz", "'a' does not hold integers")
    np.savez(folder / "inputs.npz", a=arrays[0], b=arrays[1][:, :4])
    assert_one_line_error(golden(folder / "network.onnx", folder), "inputs.npz", "'b' has shape", "input_1")
    np.savez(folder / "inputs.npz", a=arrays[0] * 2, b=arrays[1])
    assert_one_line_error(golden(folder / "network.onnx", folder, "--input-type", "ui8,si8"), "inputs.npz",
                          "'a' holds values", "range [0, 255]")


def write_txt_goldens(npz_folder: Path, out: Path, sets: int) -> None:
    """The DORY txt form of a two-input network: input_K.txt per network input, or input_S_K.txt per set."""
    out.mkdir()
    shutil.copy(npz_folder / "network.onnx", out / "network.onnx")
    module = load_network(npz_folder / "network.onnx", "ui8,si8")
    inputs = list(np.load(npz_folder / "inputs.npz").values())
    activations = dict(np.load(npz_folder / "activations.npz"))
    for s in range(sets):
        prefix, out_prefix = ("input_", "out_layer") if sets == 1 else (f"input_{s}_", f"out_{s}_layer")
        for k, x in enumerate(inputs):
            write_dory_txt(out / f"{prefix}{k}.txt", f"input{k}", x.shape[1:], to_layout(x, "HWC"))
        for index, layer in network_layers(module).items():
            node = next(n for n in onnx.load(npz_folder / "network.onnx").graph.node if n.name == layer_output_node(layer))
            tensor = activations[node.output[0]]
            write_dory_txt(out / f"{out_prefix}{index}.txt", node.name, tensor.shape, to_layout(tensor, "HWC"))


def test_two_inputs_dory_txt_form(nets: Path, tmp_path: Path):
    write_txt_goldens(nets / "two_inputs", tmp_path / "one", 1)
    done = golden(tmp_path / "one" / "network.onnx", tmp_path / "one", "--input-type", "ui8,si8")
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    assert done.stdout.count("\n-    ") == 4  # the 4 layers of one test set

    write_txt_goldens(nets / "two_inputs", tmp_path / "sets", 2)
    done = golden(tmp_path / "sets" / "network.onnx", tmp_path / "sets", "--input-type", "ui8,si8")
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr
    assert sum(line.startswith(("0 ", "1 ")) for line in done.stdout.splitlines()) == 8  # 2 sets x 4 layers

    (tmp_path / "one" / "input_1.txt").unlink()
    assert_one_line_error(golden(tmp_path / "one" / "network.onnx", tmp_path / "one", "--input-type", "ui8,si8"),
                          "2 inputs", "input_0.txt")
    (tmp_path / "one" / "input_0.txt").rename(tmp_path / "one" / "input.txt")
    assert_one_line_error(golden(tmp_path / "one" / "network.onnx", tmp_path / "one", "--input-type", "ui8,si8"),
                          "input.txt is ambiguous")


def test_two_inputs_bit_exact_in_c(nets: Path, tmp_path: Path):
    """One input file per network input (input_0.bin, input_1.bin), npz and DORY txt goldens."""
    folder = nets / "two_inputs"
    app = tmp_path / "app"
    done = subprocess.run([tool("dory-verify"), str(folder / "network.onnx"), "--golden", str(folder), "--keep", str(app)],
                          capture_output=True, text=True, timeout=900)
    assert_bit_exact(done)
    assert (app / "input_0.bin").stat().st_size == 3 * 12 * 12 and (app / "input_1.bin").stat().st_size == 8 * 12 * 12
    assert not (app / "input.bin").exists()
    assert "network_input_count = 2" in (app / "network.c").read_text()
    write_txt_goldens(folder, tmp_path / "txt", 1)
    done = subprocess.run([tool("dory-verify"), str(tmp_path / "txt" / "network.onnx"), "--golden", str(tmp_path / "txt"),
                           "--input-type", "ui8,si8", "-p", "tile{l1-size=4000},lower-to-pulp"],
                          capture_output=True, text=True, timeout=900)
    assert_bit_exact(done)


# ---------------------------------------------------------------------- 1-D networks


def test_1d_network_npz(nets: Path):
    folder = nets / "tcn_1d"
    assert np.load(folder / "inputs.npz")["input_0"].shape == (1, 4, 32)  # N×C×W, as Deeploy's 1-D tests
    assert all(a.ndim in (2, 3) for a in np.load(folder / "activations.npz").values())
    assert_every_layer_compared(folder / "network.onnx", folder, "si8")
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 0 and "PASS: bit-exact" in done.stdout, done.stdout + done.stderr


# ---------------------------------------------------------------------- partial activations.npz


def test_activations_missing_some_tensors(nets: Path, tmp_path: Path):
    """Module-style names (no ONNX name agrees), the adds' un-requantized outputs and the last tensor
    left out: every other layer is still compared, the rest listed as not compared."""
    folder = copy_of(nets / "tcn_1d", tmp_path)
    model = onnx.load(folder / "network.onnx")
    producer = {n.output[0]: n.op_type for n in model.graph.node}
    arrays = dict(np.load(folder / "activations.npz"))
    kept = {f"module_{i}": v for i, (name, v) in enumerate(arrays.items()) if producer[name] != "Add"}
    last = list(kept)[-1]
    del kept[last]
    # a tensor named after its ONNX node where the names agree anchors the positional matching
    named = {("RequantShift_5" if k == "module_5" else k): v for k, v in kept.items()}
    np.savez(folder / "activations.npz", **named)
    module = load_network(folder / "network.onnx", "si8")
    report = check_folder(module, folder, folder / "network.onnx")
    assert report.passed(), "\n" + report.table()
    layers = network_layers(module)
    compared = {r.layer for r in report.rows if not r.skipped and r.compared}
    assert compared == {str(i) for i in layers} - {str(max(layers))} | {"output"}, "\n" + report.table()
    notes = [r.note for r in report.rows if r.skipped]
    assert any(f"layer {max(layers)} not compared" in n for n in notes), notes
    add_row = next(r for r in report.rows if r.op == "add")
    assert add_row.compared and not add_row.mismatches


def test_tampered_partial_activation_still_fails(nets: Path, tmp_path: Path):
    folder = copy_of(nets / "tcn_1d", tmp_path)
    arrays = {f"m{i}": v for i, v in enumerate(np.load(folder / "activations.npz").values()) if i != 0}
    arrays["m3"].reshape(-1)[5] += 1
    np.savez(folder / "activations.npz", **arrays)
    done = golden(folder / "network.onnx", folder)
    assert done.returncode == 1 and "FAIL" in done.stdout, done.stdout + done.stderr


def test_alignment_prefers_layer_outputs_and_computed_tensors():
    c = lambda node, shape, out=False, inp=False: Candidate(node, node + ":0", shape, out, inp)  # noqa: E731
    candidates = [c("x", (1, 4, 8, 8), inp=True), c("conv", (1, 4, 8, 8)), c("rq", (1, 4, 8, 8), True),
                  c("add", (1, 4, 8, 8)), c("rq2", (1, 4, 8, 8), True), c("gemm", (1, 10)), c("rq3", (1, 10), True)]
    # the add's raw output is missing; the conv accumulator is not the network input
    arrays = [("a", (1, 4, 8, 8), None), ("b", (1, 4, 8, 8), None), ("c", (1, 4, 8, 8), None), ("d", (1, 10), None)]
    matched, unmatched = match_activations(arrays, candidates)
    assert {k: v.node for k, v in matched.items()} == {"a": "conv", "b": "rq", "c": "rq2", "d": "rq3"}
    assert unmatched == []
    # values beyond an 8-bit layer output's type: the accumulator, not the requantized output
    candidates[-1] = Candidate("rq3", "rq3:0", (1, 10), True, value_range=(-128, 127))
    matched, _ = match_activations(arrays[:3] + [("d", (1, 10), (-900, 4000))], candidates)
    assert matched["d"].node == "gemm"
    # names anchor; an array whose shape fits nothing is listed
    arrays = [("rq:0", (1, 4, 8, 8), None), ("e", (3, 3), None), ("rq3", (1, 10), None)]
    matched, unmatched = match_activations(arrays, candidates)
    assert {k: v.node for k, v in matched.items()} == {"rq:0": "rq", "rq3": "rq3"}
    assert unmatched == ["e"]
