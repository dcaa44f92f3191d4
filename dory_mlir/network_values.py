"""What passes and tools read of a network without running it: the values of its constants and
the names of its inputs. Kept apart from the golden interpreter so that compiling never imports
xDSL's interpreter framework (about half a second of start-up)."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import Signedness

from dory_mlir.dialects import qnn


def constant_array(op: qnn.ConstantOp) -> np.ndarray:
    ty = qnn.element_type(op.result)
    kind = "u" if ty.signedness.data == Signedness.UNSIGNED else "i"
    dtype = np.dtype(f"<{kind}{ty.width.data // 8}")
    shape = qnn.shape_of(op.result)
    data = np.frombuffer(op.value.data.data, dtype=dtype).astype(np.int64)
    return np.broadcast_to(data, shape).copy() if data.size == 1 else data.reshape(shape)


def input_names(count: int) -> list[str]:
    """How messages and files name the network inputs: `input`, or `input_0`, `input_1`, ..."""
    return ["input"] if count == 1 else [f"input_{k}" for k in range(count)]
