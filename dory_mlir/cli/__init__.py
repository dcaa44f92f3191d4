"""Command-line entry points of dory-mlir (installed as the `dory_mlir_tools` package)."""
