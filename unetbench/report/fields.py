"""The per-run figures the comparison uses, each read from one place in the results file.

Usage::

    from unetbench.report.fields import run_figures, METRICS
    figures = run_figures(record)        # {"samples_per_s": 251.3, "step_p50_ms": 63.1, ...}
    METRICS["samples_per_s"].label       # "samples/s"

Names say what a figure is and carry their unit; a figure the run could not provide is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..core.math_label import math_label
from .energy_cost import energy_figures
from .load import RunRecord


@dataclass(frozen=True)
class Metric:
    label: str          # column heading, unit included
    higher_is_better: bool
    digits: int         # decimals shown in tables
    missing: str = "-"  # shown where no run of a group has the figure


METRICS: dict[str, Metric] = {
    "samples_per_s": Metric("samples/s", True, 1),
    # per device, against the device's own matmul peak measured by the run (training/peak.py);
    # results from before the peak was measured have neither: n/a
    "achieved_tflops": Metric("TFLOP/s", True, 2, "n/a"),
    "peak_tflops": Metric("peak TFLOP/s", True, 2, "n/a"),
    "peak_share_pct": Metric("% of measured peak", True, 1, "n/a"),
    "step_p50_ms": Metric("step p50 ms", False, 1),
    "step_p90_ms": Metric("step p90 ms", False, 1),
    "step_p99_ms": Metric("step p99 ms", False, 1),
    "train_s": Metric("train s", False, 1),
    "total_wall_s": Metric("wall s", False, 1),
    "warmup_s": Metric("warm-up s", False, 2),
    "data_wait_pct": Metric("data wait %", False, 1),
    "model_gb": Metric("model GB", False, 3),
    "peak_allocated_gb": Metric("peak alloc GB", False, 2),
    "peak_reserved_gb": Metric("peak reserved GB", False, 2),
    "test_accuracy": Metric("test acc", True, 4),
    "test_miou": Metric("test mIoU", True, 4),
    "test_precision": Metric("precision", True, 4),
    "test_recall": Metric("recall", True, 4),
    "test_f1": Metric("F1", True, 4),
    "best_val_miou": Metric("best val mIoU", True, 4),
    "best_epoch": Metric("best epoch", True, 0),
    "time_to_best_s": Metric("time to best s", False, 1),
    "time_to_target_s": Metric("time to target s", False, 1),
    "energy_kj": Metric("energy kJ", False, 2),
    "avg_power_w": Metric("avg power W", False, 1),
    "samples_per_j": Metric("samples/J", True, 3),
    # metered in process over the steady window (energy_cost.py); cost from site.env's prices
    "j_per_sample": Metric("gross J/sample", False, 3),
    "net_j_per_sample": Metric("net J/sample", False, 3),   # above the idle baseline
    "idle_w": Metric("idle W", False, 1),
    "samples_per_s_per_w": Metric("samples/s/W", True, 4),
    "steady_power_w": Metric("steady W", False, 1),
    "cost_per_epoch": Metric("cost/epoch", False, 4),
    "cost_per_m_samples": Metric("cost/M samples", False, 2),
}


def _get(data: dict, *path: str) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def per_device_batch(data: dict) -> Any:
    return _get(data, "distributed", "per_device_batch") or _get(data, "settings", "batch_size")


def trained_samples(data: dict) -> int | None:
    """Samples seen in training: completed epochs x train split size (drop_last ignored)."""
    train = _get(data, "dataset", "counts", "train")
    epochs = len(data.get("history") or [])
    return train * epochs if isinstance(train, int) and epochs else None


def _pct(x: Any) -> Any:
    return None if x is None else 100.0 * x


_READERS: dict[str, Callable[[dict], Any]] = {
    "samples_per_s": lambda d: _get(d, "timing", "steady_samples_per_s"),
    "achieved_tflops": lambda d: _get(d, "peak", "achieved_tflops"),
    "peak_tflops": lambda d: _get(d, "peak", "tflops"),
    "peak_share_pct": lambda d: _pct(_get(d, "peak", "share")),
    "step_p50_ms": lambda d: _get(d, "timing", "step_ms", "p50"),
    "step_p90_ms": lambda d: _get(d, "timing", "step_ms", "p90"),
    "step_p99_ms": lambda d: _get(d, "timing", "step_ms", "p99"),
    "train_s": lambda d: _get(d, "timing", "train_s"),
    "total_wall_s": lambda d: _get(d, "timing", "total_wall_s"),
    "warmup_s": lambda d: _get(d, "timing", "warmup_s"),
    "data_wait_pct": lambda d: _pct(_get(d, "timing", "data_wait_fraction")),
    "model_gb": lambda d: _get(d, "memory", "model_gb"),
    "peak_allocated_gb": lambda d: _get(d, "memory", "peak_allocated_gb"),
    "peak_reserved_gb": lambda d: _get(d, "memory", "peak_reserved_gb"),
    "test_accuracy": lambda d: _get(d, "test", "accuracy"),
    "test_miou": lambda d: _get(d, "test", "miou"),
    "test_precision": lambda d: _get(d, "test", "precision"),
    "test_recall": lambda d: _get(d, "test", "recall"),
    "test_f1": lambda d: _get(d, "test", "f1"),
    "best_val_miou": lambda d: _get(d, "best", "val_miou"),
    "best_epoch": lambda d: _get(d, "best", "epoch"),
    "time_to_best_s": lambda d: _get(d, "timing", "time_to_best_val_miou_s"),
    "time_to_target_s": lambda d: _get(d, "quality", "time_to_target_s"),   # None: not reached or no target
}


def _finite(x: Any) -> Any:
    """NaN or infinite (a diverged run) counts as missing: it has no median and no JSON form."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def run_figures(record: RunRecord) -> dict[str, Any]:
    """Every figure in METRICS for one run (None where absent); energy from record.energy."""
    data = record.data or {}
    figures = {name: _finite(read(data)) for name, read in _READERS.items()}
    energy = record.energy or {}
    joules = energy.get("energy_j")
    samples = trained_samples(data)
    figures["energy_kj"] = None if joules is None else joules / 1000.0
    figures["avg_power_w"] = energy.get("avg_power_w")
    figures["samples_per_j"] = samples / joules if joules and samples else None
    figures.update(energy_figures(data, record.price_per_hour))
    return figures


def comparability_values(data: dict) -> dict[str, Any]:
    """The fields that must match for two runs' figures to be compared."""
    crop = _get(data, "dataset", "crop")
    return {
        "model": _get(data, "model", "key") or "unet",
        "dataset": _get(data, "dataset", "splits_sha256"),
        "crop": "x".join(map(str, crop)) if crop else None,
        "batch_size": per_device_batch(data),
        "epochs": _get(data, "settings", "epochs"),
        "precision": math_label(_get(data, "environment", "math_mode")),   # with TF32 or not
        "device_settings": device_settings_text(data),
        "container": container_text(data),
    }


def container_text(data: dict):
    """The image a run ran in, as one short text ("apptainer pytorch.sif sha256:0123abcd"), "none"
    for the host's software, None for results older than the record (unknown, not different)."""
    environment = _get(data, "environment") or {}
    if "container" not in environment:
        return None
    record = environment["container"]
    if not record:
        return "none"
    image = str(record.get("image") or "?")
    name = image if "://" in image or "#" in image or "/" not in image else image.rsplit("/", 1)[-1]
    return " ".join([str(record.get("runtime")), name, (record.get("digest") or "no digest")[:15]])


def device_settings_text(data: dict) -> str | None:
    """The device's own figure-deciding facts (environment.device_settings) as one short text,
    "name=value, ..." in name order; None where the run recorded none."""
    settings = _get(data, "environment", "device_settings") or {}
    return ", ".join(f"{name}={value}" for name, value in sorted(settings.items())) or None


def per_class_iou(data: dict) -> dict[str, Any]:
    """Test IoU per class name, in class-id order."""
    rows = _get(data, "test", "per_class") or []
    return {row["name"]: _finite(row.get("iou")) for row in sorted(rows, key=lambda r: r["id"])}
