"""The results file: one JSON per run, written atomically, described by schema/results.schema.json.

    path = results_path("results", "cuda")        # results/results_cuda.json
    payload = build_results("completed", None, progress=..., run=..., ...)   # what the trainer knows
    write_results(path, payload)                   # NaN -> null, temp file + rename

Fields and units are documented in the schema, schema/results.schema.json. This module
imports no torch: the report reads SCHEMA_VERSION and clean_for_json from it on machines
where importing torch is slow or impossible (the host environment lives in environment.py).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from ..core.atomic import atomic_write_json
from .energy_windows import energy_section
from .time_to_target import quality_section

SCHEMA_VERSION = 1   # the only definition: the schema file and the report take it from here
SCHEMA_PATH = Path(__file__).with_name("schema") / "results.schema.json"
GB = 1e9


def results_path(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / f"results_{run_name}.json"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def clean_for_json(value):
    """JSON has no NaN/inf: undefined numbers become null; numpy/torch scalars become Python
    ones, tuples lists and keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_for_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_for_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return clean_for_json(value.item())
    return value


def write_results(path: str | Path, payload: dict) -> None:
    atomic_write_json(path, clean_for_json(payload))


def build_results(status: str, message: str | None, *, progress, run: Mapping, model: Mapping,
                  distributed: Mapping, timing: Mapping, memory: Mapping, wall_s: float,
                  checkpoints: Mapping[str, Path], energy: list | None = None, trace: Mapping | None = None,
                  peak: Mapping | None = None) -> dict:
    """The results document of a run as it stands, in the schema's layout and units.

    progress     the trainer's RunProgress: history, best, test, train/eval/eval warm-up time, time
                 to best, attempts, started_at, memory phases (GB), replicas_identical
    run          run_name, backend, profile, environment, settings, dataset: recorded as given
    model        name (title), key (registry name), parameters, width, bytes, flops_per_sample
    distributed  DistContext.describe()
    timing       StepTimer.summary(), samples counted over all ranks
    memory       Backend.memory_bytes(): bytes, None where the device cannot tell
    wall_s       wall time of every attempt so far
    checkpoints  {"best": path, "last": path}; a path is recorded once its file exists
    energy       EnergyLedger.ranks: every rank's joules per window (energy_windows.py)
    trace        Tracer.summary: trace file, top operations, share per category (trace.py)
    peak         the device's matmul peak (peak.run_peak), or None where the run has not measured it
    """
    return {
        "schema_version": SCHEMA_VERSION, "status": status, "message": message, "run_name": run["run_name"],
        "backend": run["backend"], "profile": run["profile"],
        "started_at": progress.started_at, "finished_at": utc_now() if status != "running" else None,
        "environment": run["environment"],
        "settings": run["settings"],
        "dataset": run["dataset"],
        "model": _model_section(model),
        "distributed": {**distributed, "replicas_identical": progress.replicas_identical},
        "timing": _timing_section(progress, timing, wall_s, model["flops_per_sample"]),
        "memory": _memory_section(memory, model["bytes"], progress.memory_phases_gb),
        "history": progress.history,
        "best": progress.best,
        "test": progress.test,
        "quality": quality_section(progress.quality, run["settings"]),   # time to target
        "overlays": progress.overlays,   # predictions on fixed test images (overlays.py)
        # Metered in process at the timer's boundaries (energy_windows.py); where no meter
        # exists, ``absent`` says why and the report integrates the monitor's power samples.
        "energy": energy_section(energy, timing) if energy is not None else None,
        "trace": trace,   # --trace-steps: the trace file and the top operations (trace.py)
        # The device's measured matmul peak and the share of it the steady state reached.
        "peak": _peak_section(peak, timing["steady_samples_per_s"], distributed["world_size"],
                              model["flops_per_sample"]),
        "checkpoints": {name: str(path) if Path(path).exists() else None for name, path in checkpoints.items()},
    }


def _model_section(model: Mapping) -> dict:
    return {"name": model["name"], "key": model["key"], "parameters": model["parameters"],
            "size_gb": model["bytes"] / GB, "width": model["width"],
            "gflop_per_sample": model["flops_per_sample"] / 1e9}


def _timing_section(progress, timing: Mapping, wall_s: float, flops_per_sample: float) -> dict:
    steady = timing["steady_samples_per_s"]
    return {
        **timing,
        "total_wall_s": wall_s,
        "train_s": progress.train_s, "eval_s": progress.eval_s, "eval_warmup_s": progress.eval_warmup_s,
        "epoch_s": [row["epoch_s"] for row in progress.history],
        "time_to_best_val_miou_s": progress.time_to_best_s,
        "attempts": progress.attempts,
        "steady_tflops": steady * flops_per_sample / 1e12 if steady else None,
    }


def _peak_section(peak: Mapping | None, steady_samples_per_s, world_size: int, flops_per_sample: float) -> dict:
    """The peak as measured (or why it is absent), with the steady state's achieved TFLOP/s per
    device (samples/s per device x training FLOPs per sample, forward + backward) and its share
    of the measured peak: chips of any size on one scale."""
    peak = dict(peak) if peak is not None else {"tflops": None, "absent": "the run stopped before measuring it"}
    achieved = steady_samples_per_s / world_size * flops_per_sample / 1e12 if steady_samples_per_s else None
    ceiling = peak.get("tflops")
    return {**peak, "achieved_tflops": achieved,
            "share": achieved / ceiling if achieved is not None and ceiling else None}


def _memory_section(memory: Mapping, model_bytes: int, phases_gb: list) -> dict:
    # Measured steps are sampled at their high phase (after the forward pass, or the step's
    # peak where the device runs nothing before the graph cut) and their low
    # phase (after the optimizer step); the average gives both the same weight. With no sample
    # yet (no measured step), the three figures are null: the allocation between runs' phases
    # would be no average of training.
    high = [pair[0] for pair in phases_gb]
    low = [pair[1] for pair in phases_gb]
    return {"model_gb": model_bytes / GB,
            "peak_allocated_gb": _gb(memory["peak_allocated"]), "peak_reserved_gb": _gb(memory["peak_reserved"]),
            "avg_allocated_gb": _mean(high + low), "step_high_allocated_gb": _mean(high),
            "step_low_allocated_gb": _mean(low), "source": memory["source"],
            # what peak_allocated_gb covers, and how the step's high was observed (memory_phases.py)
            "peak_window": memory.get("peak_window"), "step_high_phase": memory.get("step_high_phase")}


def _mean(values: list) -> float | None:
    return sum(values) / len(values) if values else None


def _gb(value) -> float | None:
    return None if value is None else value / GB
