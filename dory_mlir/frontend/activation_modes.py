"""The `--activations` option of the tools (no imports: the tools read it before loading onnx)."""

# What an unclipped requantization whose values may exceed 8 bits becomes: `exact` (the default) a
# 16-bit tensor, as the exported network computes it; `saturate` 8 bits, as DORY's kernels do.
ACTIVATION_MODES = ("exact", "saturate")
ACTIVATIONS_HELP = ("ONNX import: an unclipped result whose values may exceed 8 bits (e.g. a NEMO add with no "
                    "clip) is carried exactly as a 16-bit tensor (exact, the default) or saturated to 8 bits as "
                    "DORY's kernels do, with a warning (saturate)")
