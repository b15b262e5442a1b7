"""The words for a run's arithmetic, one spelling wherever a figure appears.

    math_label({"precision": "fp32", "tf32": False})   # 'FP32, no TF32'
    math_label(results["environment"]["math_mode"])     # the report, the benchmark's print-out

The parity profile turns TF32 off (true FP32 everywhere, the same math on every device), so its
figures are not comparable with published figures, which use TF32 by default on NVIDIA GPUs:
only a run with --allow-tf32 ("FP32 with TF32") is. The label says so wherever a figure is shown.
"""

from __future__ import annotations

PRECISION_WORDS = {"fp32": "FP32", "bf16": "BF16 autocast", "fp16": "FP16 autocast"}


def math_label(math_mode: dict | None) -> str | None:
    """``math_mode`` as a run records it (Backend.math_mode()); None where it recorded none."""
    if not math_mode or not math_mode.get("precision"):
        return None
    precision = math_mode["precision"]
    words = PRECISION_WORDS.get(precision, precision.upper())
    tf32 = math_mode.get("tf32")
    if precision == "fp32":
        return f"{words}, no TF32" if tf32 is False else f"{words} with TF32" if tf32 else words
    return f"{words}, TF32" if tf32 else words   # TF32 there concerns the ops autocast leaves in FP32
