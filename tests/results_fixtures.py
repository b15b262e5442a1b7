"""Schema-valid result dicts for the comparison tests and benchmark.

Usage::

    from results_fixtures import make_result, write_result, write_monitor
    res = make_result("cuda", "fast", samples_per_s=250.0, seed=1)
    path = write_result(tmp_path, res)            # tmp_path/results_<run_name>.json

Every keyword maps to one field the comparison reads, so a test states only what it varies.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

CLASS_NAMES = ["unlabeled", "road", "car", "pedestrian", "sky"]
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _metrics(rng: random.Random, miou: float, class_names: list[str]) -> dict:
    per_class = []
    for cid, name in enumerate(class_names):
        iou = max(0.0, min(1.0, miou + rng.uniform(-0.15, 0.15)))
        per_class.append({"id": cid, "name": name, "iou": round(iou, 4), "precision": round(min(1.0, iou + 0.05), 4),
                          "recall": round(min(1.0, iou + 0.03), 4), "f1": round(min(1.0, iou + 0.04), 4),
                          "support": rng.randint(1000, 100000)})
    return {"loss": round(1.0 - miou, 4), "accuracy": round(min(1.0, miou + 0.2), 4), "miou": miou,
            "precision": round(min(1.0, miou + 0.05), 4), "recall": round(min(1.0, miou + 0.03), 4),
            "f1": round(min(1.0, miou + 0.04), 4), "per_class": per_class}


def make_result(backend: str = "cuda", profile: str = "parity", *, run_name: str | None = None,
                status: str = "completed", seed: int = 0, samples_per_s: float = 100.0,
                epochs: int = 3, batch: int = 16, crop: tuple[int, int] = (384, 512),
                splits_sha256: str = "a" * 64, precision: str | None = None, world_size: int = 1,
                nodes: int = 1, test_miou: float = 0.6, energy: dict | None = None,
                class_names: list[str] | None = None, started: datetime = T0,
                train_count: int = 64, step_samples: int = 50, peak_tflops: float | None = None,
                gflop_per_sample: float = 868.0) -> dict:
    """One results dict that validates against unetbench/training/schema/results.schema.json.
    Without ``peak_tflops`` it has no ``peak`` section, as results from before runs measured it."""
    rng = random.Random(f"{backend}{profile}{seed}")
    class_names = list(class_names or CLASS_NAMES)
    precision = precision or ("fp32" if profile == "parity" else "bf16")
    run_name = run_name or f"{backend}_{profile}" + (f"_ws{world_size}" if world_size > 1 else "") + f"_{seed}"
    step_ms = 1000.0 * batch * world_size / samples_per_s
    steps = [round(step_ms * rng.uniform(0.95, 1.15), 3) for _ in range(step_samples)]
    steps_sorted = sorted(steps)
    epoch_s = round(train_count * epochs / samples_per_s / epochs + 0.5, 3)
    history, elapsed = [], 0.0
    for ep in range(1, epochs + 1):
        elapsed += epoch_s + 0.4
        history.append({"epoch": ep, "train_loss": round(1.5 / ep + rng.uniform(0, 0.05), 4),
                        "val_loss": round(1.6 / ep + rng.uniform(0, 0.05), 4),
                        "val_miou": round(test_miou * (0.6 + 0.4 * ep / epochs), 4), "lr": 1e-3,
                        "epoch_s": epoch_s, "eval_s": 0.4, "samples_per_s": samples_per_s,
                        "elapsed_s": round(elapsed, 3)})
    total = elapsed + 2.0
    warmup_s = round(5.0 if profile == "fast" else 1.0, 3)
    measured_s = round(sum(steps) / 1000.0, 4)
    res = {
        "schema_version": 1, "status": status,
        "message": None if status == "completed" else f"run {status}",
        "run_name": run_name, "backend": backend, "profile": profile,
        "started_at": iso(started), "finished_at": iso(started + timedelta(seconds=total)),
        "environment": {"host": "node01", "device_name": {"cuda": "NVIDIA H100 80GB HBM3", "cpu": "x86_64"}.get(backend, "Gaudi2"),
                        "device_count": world_size, "driver": None, "torch": "2.13.0", "cuda": None, "cudnn": None,
                        "habana": None, "python": "3.11.2", "platform": "Linux", "slurm_job_id": "1234", "git_commit": None,
                        "math_mode": {"precision": precision, "tf32": False, "channels_last": profile == "fast",
                                      "compiled": profile == "fast", "fused_optimizer": profile == "fast"}},
        "settings": {"batch_size": batch, "epochs": epochs, "lr": 1e-3, "profile": profile},
        "dataset": {"splits_file": "data/dataset_splits.json", "splits_sha256": splits_sha256, "fingerprint": None,
                    "num_classes": len(class_names), "class_names": class_names, "crop": list(crop),
                    "counts": {"train": train_count, "val": 16, "test": 16}},
        "model": {"name": "unet", "parameters": 31044756, "size_gb": 0.124},
        "distributed": {"world_size": world_size, "nodes": nodes, "devices_per_node": max(1, world_size // nodes),
                        "per_device_batch": batch, "global_batch": batch * world_size,
                        "backend": None if world_size == 1 else "nccl"},
        "timing": {"total_wall_s": round(total, 3), "train_s": round(epoch_s * epochs, 3), "eval_s": 0.4 * epochs,
                   "warmup_steps": 3, "warmup_s": warmup_s, "measured_steps": step_samples,
                   "measured_samples": step_samples * batch * world_size, "measured_s": measured_s,
                   "steady_samples_per_s": samples_per_s,
                   "step_ms": {"p50": steps_sorted[len(steps) // 2], "p90": steps_sorted[int(len(steps) * 0.9)],
                               "p99": steps_sorted[-1], "min": steps_sorted[0], "max": steps_sorted[-1],
                               "mean": round(sum(steps) / len(steps), 3)},
                   "data_wait_s": round(measured_s * 0.05, 4), "data_wait_fraction": 0.05,
                   "epoch_s": [epoch_s] * epochs, "time_to_best_val_miou_s": round(elapsed, 3),
                   "step_samples_ms": steps},
        "memory": {"model_gb": 0.124, "peak_allocated_gb": round(8.0 * batch / 16 + rng.uniform(0, 0.2), 3),
                   "peak_reserved_gb": round(9.0 * batch / 16 + rng.uniform(0, 0.2), 3),
                   "avg_allocated_gb": 6.0, "source": "torch.cuda" if backend == "cuda" else "none"},
        "history": history,
        "best": {"epoch": epochs, "val_miou": history[-1]["val_miou"], "val_loss": history[-1]["val_loss"]},
        "test": _metrics(rng, test_miou, class_names),
        "checkpoints": {"best": None, "last": None},
    }
    if energy is not None:
        res["energy"] = energy
    if peak_tflops is not None:
        achieved = samples_per_s * gflop_per_sample / 1e3
        res["model"]["gflop_per_sample"] = gflop_per_sample
        res["peak"] = {"tflops": peak_tflops, "absent": None, "achieved_tflops": achieved,
                       "share": achieved / peak_tflops, "per_rank_tflops": [peak_tflops] * world_size,
                       "dtype": "bfloat16" if precision == "bf16" else "float32", "size": 8192}
    if status != "completed":
        res["test"] = None
        res["finished_at"] = None if status == "running" else res["finished_at"]
    return res


def write_result(folder: str | Path, result: dict, name: str | None = None) -> Path:
    path = Path(folder) / f"results_{name or result['run_name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return path


def write_monitor(folder: str | Path, run: str, start: float, end: float, watts: float,
                  devices: int = 1, interval: float = 1.0, margin: float = 5.0) -> Path:
    """monitor_<run>.csv with constant power per device, sampled from start-margin to end+margin."""
    path = Path(folder) / f"monitor_{run}.csv"
    lines = ["timestamp,device_index,utilization_pct,memory_used_mib,power_w,temperature_c"]
    t = start - margin
    while t <= end + margin:
        for dev in range(devices):
            lines.append(f"{t:.3f},{dev},95.0,40000,{watts:.1f},60")
        t += interval
    path.write_text("\n".join(lines) + "\n")
    return path
