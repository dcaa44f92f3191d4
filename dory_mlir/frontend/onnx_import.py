"""ONNX → `qnn` import: `import_onnx_file` reads a model file and hands it to its family's importer.

onnxruntime's QDQ/QOperator models (`qoperator_import.py`) are told apart by their ops; every other
model is an integer-valued graph: NEMO/Quantlab (`integer_import.py`) or QuantLib/Deeploy, whose importer
(`quantlib_import.py`) extends the NEMO/Quantlab one and reads both. All build on `importer.py`;
`loader.py` reads and checks the file.
"""

from __future__ import annotations

from pathlib import Path

from xdsl.dialects.builtin import ModuleOp

from dory_mlir.diagnostics import DoryError
from dory_mlir.frontend.activation_modes import ACTIVATION_MODES
from dory_mlir.frontend.loader import input_type_from_dory_config, load_model
from dory_mlir.frontend.qdq_legalize import is_quantized
from dory_mlir.frontend.quantlib_import import QuantLibImporter


def import_onnx_file(path: str | Path, input_type: str | None = None, activations: str = "exact") -> ModuleOp:
    """Import a model file; the input type defaults to a DORY config beside it, else ui8.
    `activations` (ACTIVATION_MODES): what an unclipped result beyond 8 bits becomes."""
    path = Path(path)
    if activations not in ACTIVATION_MODES:
        raise DoryError(f"unknown activations mode '{activations}' (expected {' or '.join(ACTIVATION_MODES)})")
    model = load_model(path)
    if is_quantized(model):  # onnxruntime's QDQ / QOperator forms
        from dory_mlir.frontend.qoperator_import import import_quantized  # loads only for such models

        return import_quantized(model, path, input_type)
    spec = input_type or input_type_from_dory_config(path) or "ui8"
    return QuantLibImporter(model, path.name, spec, saturate=activations == "saturate").run()
