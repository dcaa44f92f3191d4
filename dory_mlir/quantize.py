"""Post-training quantization of a float ONNX model with onnxruntime (`dory-quantize`).

The compiler deploys integer networks; a float model gets there through onnxruntime's static
quantization: activations calibrated (MinMax) on sample inputs, weights int8 per output channel.
The sample inputs are `.npy` files of the model's input shape (with or without the batch
dimension), or seeded random N(0, 1) data when the user has none — enough to produce a
deployable model, though real samples give the accuracy.

Every user error (no model, not ONNX, a non-float or dynamic input, samples of the wrong shape)
is a one-line `DoryError`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from dory_mlir.diagnostics import DoryError
from dory_mlir.frontend.loader import ONNX_FLOAT_TYPES, read_model

FORMATS = ("qdq", "qoperator")
ACTIVATIONS = ("int8", "uint8")


@dataclass(frozen=True)
class QuantizeOptions:
    """How to quantize: ONNX format, activation type, weight granularity and symmetry.

    uint8 activations are the default because DORY-style PULP kernels take unsigned activations
    after ReLU; weights are always int8 (the kernels' weight type). `reduce_range` quantizes
    weights to [-64, 64] (onnxruntime's option): then onnxruntime's own u8s8 kernels on x86 CPUs
    without VNNI, which add pairs of products in 16 bits with saturation, compute exactly, so the
    model can be compared with onnxruntime (`dory-verify`); GAP8 does not need it. onnxruntime
    keeps per-channel QDQ weights symmetric whatever `symmetric_weights` says.
    """

    format: str = "qdq"
    activations: str = "uint8"
    per_channel: bool = True
    symmetric_weights: bool = True
    reduce_range: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise DoryError(f"unknown quantization format '{self.format}' (expected {' or '.join(FORMATS)})")
        if self.activations not in ACTIVATIONS:
            raise DoryError(f"unknown activation type '{self.activations}' (expected {' or '.join(ACTIVATIONS)})")


@dataclass(frozen=True)
class FloatInput:
    """The float model's single data input."""

    name: str
    shape: tuple[int, ...]


def float_input(model: onnx.ModelProto, where: str) -> FloatInput:
    """The model's one data input; it must be float with a static shape."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise DoryError(f"the model has {len(inputs)} inputs; dory-quantize takes models with one input", where)
    (graph_input,) = inputs
    tensor_type = graph_input.type.tensor_type
    if tensor_type.elem_type not in ONNX_FLOAT_TYPES:
        kind = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
        raise DoryError(f"input '{graph_input.name}' is {kind}, not float: the model is not a float model", where)
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim]
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise DoryError(f"input '{graph_input.name}' has a dynamic shape {dims}: export the model with a static shape", where)
    return FloatInput(graph_input.name, tuple(dims))


def read_sample(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """One `.npy` input of `shape` (or `shape` without its batch dimension of 1), as float32."""
    try:
        x = np.load(path, allow_pickle=False)
    except OSError as e:
        raise DoryError(f"cannot read: {e.strerror or e}", str(path)) from None
    except ValueError as e:
        raise DoryError(f"not a .npy array ({e})", str(path)) from None
    if not isinstance(x, np.ndarray) or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DoryError("not a numeric .npy array", str(path))
    if shape[:1] == (1,) and tuple(x.shape) == shape[1:]:
        x = x[np.newaxis]
    if tuple(x.shape) != shape:
        raise DoryError(f"sample has shape {list(x.shape)}, the model's input needs {list(shape)}", str(path))
    return x.astype(np.float32)


def read_samples(folder: Path, shape: tuple[int, ...]) -> list[np.ndarray]:
    """The `.npy` files of `folder` in name order (see `read_sample`)."""
    if not folder.is_dir():
        raise DoryError("no such calibration folder", str(folder))
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise DoryError("no .npy samples in the calibration folder", str(folder))
    return [read_sample(path, shape) for path in files]


def random_samples(shape: tuple[int, ...], count: int, seed: int) -> list[np.ndarray]:
    """`count` seeded N(0, 1) float32 inputs: calibration when the user has no data."""
    if count < 1:
        raise DoryError(f"--samples must be at least 1, got {count}")
    rng = np.random.default_rng([seed, 4])
    return [rng.standard_normal(size=shape).astype(np.float32) for _ in range(count)]


def _reader(input_name: str, samples: list[np.ndarray], progress: Callable[[str, int, int], None] | None = None):
    from onnxruntime.quantization import CalibrationDataReader

    class SampleReader(CalibrationDataReader):
        """Feeds the calibration samples one by one (onnxruntime's calibration protocol), telling
        `progress` which one."""

        def __init__(self) -> None:
            self._feeds: Iterator[tuple[int, dict[str, np.ndarray]]] = enumerate(({input_name: x} for x in samples), 1)

        def get_next(self) -> dict[str, np.ndarray] | None:
            number, feed = next(self._feeds, (None, None))
            if progress is not None and number is not None:
                progress("calibrating on sample", number, len(samples))
            return feed

    return SampleReader()


def quantize(
    float_model: Path,
    output: Path,
    options: QuantizeOptions,
    calibration: Path | None = None,
    samples: int = 16,
    seed: int = 0,
    progress: Callable[..., None] | None = None,
) -> Path:
    """Quantizes `float_model` into `output` and returns `output`; `progress(stage[, k, n])` hears
    of each stage and calibration sample (`diagnostics.Progress`).

    The model is first shape-inferred and optimized with `quant_pre_process` (onnxruntime's
    recommended preparation: folds batch norms into convolutions, gives every tensor a shape;
    its symbolic shape inference is skipped, the input shape being static).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    model = read_model(float_model)
    graph_input = float_input(model, str(float_model))
    data = read_samples(calibration, graph_input.shape) if calibration else random_samples(graph_input.shape, samples, seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dory-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            # Symbolic shape inference is for dynamic (transformer) shapes; inputs are static here.
            if progress is not None:
                progress("preparing the model")
            quant_pre_process(model, prepared, skip_symbolic_shape=True)
            quantize_static(
                prepared,
                output,
                _reader(graph_input.name, data, progress),
                quant_format=QuantFormat.QDQ if options.format == "qdq" else QuantFormat.QOperator,
                per_channel=options.per_channel,
                reduce_range=options.reduce_range,
                activation_type=QuantType.QUInt8 if options.activations == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"WeightSymmetric": options.symmetric_weights, "ActivationSymmetric": False},
            )
        except Exception as e:  # onnxruntime reports bad models with assorted exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DoryError(f"onnxruntime cannot quantize the model: {first}", str(float_model)) from None
    return output
