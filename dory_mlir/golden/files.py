"""Reading golden data: DORY's txt files (`input.txt`, `out_layerN.txt`, `output.txt`).

A file is a header line naming the tensor and its shape (`# relu1 (shape [100, 100, 32]),`
— the `#` is sometimes missing, the shape may carry a leading batch 1) followed by
one decimal value per line (`81.000,\\` or `0,`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dory_mlir.diagnostics import DoryError

_SHAPE = re.compile(r"shape\s*\[([^\]]*)\]")
GOLDEN_LIMIT = 2**40  # beyond the int32 accumulators and 64-bit requant intermediates' outputs
_VALUE = re.compile(r"^\s*(-?\d+(?:\.\d*)?)\s*,?\s*\\?\s*$")


@dataclass(frozen=True)
class GoldenTensor:
    name: str
    shape: tuple[int, ...]
    values: np.ndarray  # int64, in file order


def read_dory_txt(path: Path) -> GoldenTensor:
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DoryError(f"cannot read: {e.strerror}", str(path)) from None
    except UnicodeDecodeError as e:
        raise DoryError(f"not a text file (byte {e.start} is not UTF-8)", str(path)) from None
    if not lines:
        raise DoryError("empty golden file", str(path))
    header = lines[0]
    match = _SHAPE.search(header)
    if match is None:
        raise DoryError(f"header has no shape: '{header[:80]}'", str(path))
    dims = [s.strip() for s in match.group(1).split(",") if s.strip()]
    if not all(d.isdigit() and len(d) <= 9 for d in dims):
        raise DoryError(f"header's shape [{match.group(1)[:60]}] is not a list of sizes", str(path))
    shape = tuple(int(d) for d in dims)
    name = header.split("(shape")[0].lstrip("# ").strip()
    values = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        value = _VALUE.match(line)
        if value is None:
            raise DoryError(f"line {number}: expected one number, got '{line[:40]}'", str(path))
        number_text = value.group(1)
        whole, _, fraction = number_text.partition(".")
        if fraction.strip("0"):
            raise DoryError(f"line {number}: {number_text[:40]} is not an integer", str(path))
        integer = int(whole) if len(whole) <= 24 else GOLDEN_LIMIT  # exact, no float rounding
        if abs(integer) >= GOLDEN_LIMIT:
            raise DoryError(f"line {number}: {number_text[:40]} is beyond any tensor value (|v| < 2^40)", str(path))
        values.append(integer)
    # The header's shape is informative only: some exporters write a wrong one (dscnn_test).
    return GoldenTensor(name, shape, np.array(values, dtype=np.int64))


def write_dory_txt(path: Path, name: str, shape: tuple[int, ...], values: np.ndarray) -> None:
    """Writes the format `read_dory_txt` reads (one integer per line)."""
    body = "".join(f"{int(v)},\n" for v in np.asarray(values).reshape(-1))
    path.write_text(f"# {name} (shape [{', '.join(str(s) for s in shape)}]),\n{body}")


def to_layout(tensor: np.ndarray, layout: str) -> np.ndarray:
    """A network tensor (NCHW, batch 1) flattened in a file layout: 'HWC', 'CHW' or 'flat'.

    For rows of features (M×K GEMM data, the IR's 1×K×M×1; `dory_mlir/tensor_layout.py`) HWC is
    ONNX's row-major order, so their txt files and the application's `.bin` files need no other rule."""
    if tensor.ndim == 4 and layout == "HWC":
        return np.transpose(tensor[0], (1, 2, 0)).reshape(-1)
    return tensor.reshape(-1)


def from_hwc(values: np.ndarray, nchw: tuple[int, ...]) -> np.ndarray:
    """A DORY input file's HWC values as the network's NCHW input."""
    n, c, h, w = nchw
    return np.transpose(values.reshape(h, w, c), (2, 0, 1)).reshape(nchw)
