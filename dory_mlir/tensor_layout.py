"""How an ONNX tensor maps to its IR tensor (NCHW), shape and data — defined here once.

Two kinds of ONNX tensors reach the IR:

- **Channel-first** (conv networks): N×K vectors, N×C×W (1-D) and N×C×H×W, N = 1. The IR tensor has
  the same elements in the same order: N×K and N×C×H×W as they are, N×C×W as N×C×1×W. Data maps
  by a reshape.
- **Feature-last** (the rows of a GEMM: transformers' linear layers, Deeploy's GEMM/MatMul tests):
  M×K (M > 1) and B×M×K, i.e. R = M (or B·M) rows of K features, multiplied by a constant K×N
  weight. Row-major, such a tensor is in memory exactly the HWC layout of the IR feature map
  **1×K×R×1** (C = K, H = R, W = 1), so `rows · W` is a pointwise (1×1) convolution over R pixels
  and reuses the conv kernels, tiling and C unchanged. H = R rather than W = R (the 1-D networks'
  N×C×1×W): both are the same bytes and the same pixel order for the kernels, which walk a tile's
  pixels row-major, but the tiler streams activations between L3 and L2 by rows (H), so only
  H = R lets a sequence larger than L2 stream (a 256×64 input with 20 kB of L2: impossible as
  1×256 pixels, streamed in slices of 27 rows as 256×1). The IR data is the transpose (features
  first, as NCHW has channels first); the batch axis B just concatenates rows, as every row is
  computed independently.

The importer decides which kind each tensor is (`FeatureLastShape` marks the ONNX shape of a
feature-last one) and records every feature-last tensor in the network function's attribute
`FEATURE_LAST_ATTR` (ONNX tensor name → ONNX shape), so golden data written in ONNX's layout
(`inputs.npz`, `outputs.npz`, `activations.npz`) converts with `onnx_to_ir` wherever it is read.
DORY txt files and the C application's `.bin` files are HWC, which for a feature-last tensor *is*
ONNX's row-major order: they need no conversion.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseArrayBase, DictionaryAttr, i64

# Function attribute: {ONNX tensor name: its ONNX shape} of every feature-last tensor.
FEATURE_LAST_ATTR = "onnx_feature_last"


class FeatureLastShape(tuple):
    """The ONNX shape of a feature-last tensor (rows × features: M×K, B×M×K).

    A tuple like any ONNX shape, so every place that carries shapes through elementwise ops keeps
    the marker without knowing about it; ops that give a tensor a new shape build a plain tuple
    (channel-first) unless they make rows on purpose."""

    def __repr__(self) -> str:
        return f"FeatureLastShape({tuple(self)})"

    @property
    def rows(self) -> int:
        return int(np.prod(self[:-1], dtype=np.int64))

    @property
    def features(self) -> int:
        return self[-1]


def is_feature_last(onnx_shape: tuple[int, ...]) -> bool:
    return isinstance(onnx_shape, FeatureLastShape)


def channel_axis(onnx_shape: tuple[int, ...]) -> int:
    """The ONNX axis the IR's channels come from: the last for rows, axis 1 otherwise."""
    return len(onnx_shape) - 1 if is_feature_last(onnx_shape) else 1


def ir_shape(onnx_shape: tuple[int, ...]) -> list[int]:
    """The IR shape of an ONNX tensor (module docstring)."""
    if is_feature_last(onnx_shape):
        return [1, onnx_shape[-1], FeatureLastShape(onnx_shape).rows, 1]
    if len(onnx_shape) == 3:
        return [onnx_shape[0], onnx_shape[1], 1, onnx_shape[2]]
    return list(onnx_shape)


def onnx_to_ir(array: np.ndarray, onnx_shape: tuple[int, ...]) -> np.ndarray:
    """ONNX-layout data of a tensor of `onnx_shape` as the IR tensor's data (NCHW)."""
    array = np.asarray(array).reshape(tuple(onnx_shape))
    if is_feature_last(onnx_shape):
        rows = array.reshape(-1, onnx_shape[-1])  # R × K
        return np.ascontiguousarray(rows.T).reshape(ir_shape(onnx_shape))
    return array.reshape(ir_shape(onnx_shape))


def ir_to_onnx(array: np.ndarray, onnx_shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `onnx_to_ir`."""
    if is_feature_last(onnx_shape):
        rows = np.asarray(array).reshape(onnx_shape[-1], -1).T  # 1×K×R×1 → R × K
        return np.ascontiguousarray(rows).reshape(tuple(onnx_shape))
    return np.asarray(array).reshape(tuple(onnx_shape))


def feature_last_attr(shapes: dict[str, tuple[int, ...]]) -> DictionaryAttr:
    return DictionaryAttr({name: DenseArrayBase.from_list(i64, list(shape)) for name, shape in shapes.items()})


def feature_last_tensors(function: func.FuncOp) -> dict[str, FeatureLastShape]:
    """ONNX tensor name → ONNX shape of every feature-last tensor the importer recorded."""
    attr = function.attributes.get(FEATURE_LAST_ATTR)
    if not isinstance(attr, DictionaryAttr):
        return {}
    return {name: FeatureLastShape(value.get_values()) for name, value in attr.data.items()}  # type: ignore[attr-defined]


def permuted_strides(shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[int, ...]:
    """Of a row-major tensor of `shape` transposed by `perm` (ONNX Transpose), the element stride in the
    source along each axis of the result: the result seen in place, as a strided view of the source."""
    strides = [int(np.prod(shape[axis + 1:], dtype=np.int64)) for axis in range(len(shape))]
    return tuple(strides[p] for p in perm)
