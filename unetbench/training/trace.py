"""Profiler traces of a few steady training steps, and the top operations they show.

    python3 unet_cpu.py --trace-steps 2 ...        # any entry point; also python -m unetbench.bench
    ./run_benchmark.sh --trace-steps 5             # every job of the suite
    ./run_benchmark.sh --nsys --trace-steps 5      # CUDA jobs also under Nsight Systems

After warm-up, the StepTimer runs ``--trace-steps`` steps in a window of their own ("trace"),
counted in no throughput figure; its hook starts torch.profiler when that window opens and
stops it when it closes (the trace is written after the window's closing clock reading, in no
window). Activities: the CPU, plus the backend's device (CUDA, Intel Gaudi's HPU) where it has
one. Written to OUT/trace_<run>.json (``_rank<r>`` for ranks above 0): a Chrome trace that
Perfetto (ui.perfetto.dev), chrome://tracing and TensorBoard's profiler plugin open.
The results' ``trace`` section holds the top operations by self device time (self CPU time on
the CPU) and the share of that time per category.

Under ``run_benchmark.sh --nsys`` the launcher sets NSYS_CAPTURE_ENV: the traced steps are then
also bracketed by cudaProfilerStart/Stop (nsys ``--capture-range=cudaProfilerApi``), and
torch.profiler records the CPU only (two CUDA profilers cannot share CUPTI).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TOP_OPERATIONS = 15
NSYS_CAPTURE_ENV = "UNETBENCH_NSYS_CAPTURE"   # "1": bracket the traced steps for nsys
# First match wins: communication and optimizer names also contain elementwise words.
CATEGORIES = (
    ("communication", r"nccl|gloo|hccl|all_?reduce|all_?gather|broadcast|c10d|reduce_scatter"),
    ("optimizer", r"adam|optim|_foreach_|sgd|addcdiv|addcmul|lerp"),
    ("convolution", r"conv"),
    ("normalisation", r"norm"),
    ("copies", r"copy|memcpy|memset|_to_copy|\bto\b|contiguous|clone|\bcat\b|pad"),
    ("elementwise", r"add|mul|relu|threshold|sigmoid|div|sub|fill|zero|where|clamp|exp|log|sqrt|neg|"
                    r"\beq\b|\bne\b|\bgt\b|\blt\b|pow|triton_poi"),
)
CATEGORY_NAMES = tuple(name for name, _ in CATEGORIES) + ("other",)


def category(op_name: str) -> str:
    name = op_name.lower()
    for label, pattern in CATEGORIES:
        if re.search(pattern, name):
            return label
    return "other"


def trace_path(out: Path, run_name: str, rank: int = 0) -> Path:
    return Path(out) / (f"trace_{run_name}.json" if rank == 0 else f"trace_{run_name}_rank{rank}.json")


def top_operations(averages, limit: int = TOP_OPERATIONS) -> dict:
    """From ``profiler.key_averages()``: operations by self device time (self CPU time when no
    device time was recorded), with their share and category, and the share per category.
    Device kernels appear under the operation that launched them, so only host-side events
    (operations) are ranked: counting the kernels too would count their time twice."""
    rows = []
    for e in averages:
        if str(getattr(e, "device_type", "DeviceType.CPU")).rsplit(".", 1)[-1] != "CPU":
            continue
        device_us = getattr(e, "self_device_time_total", None)
        if device_us is None:
            device_us = getattr(e, "self_cuda_time_total", 0.0)
        rows.append({"name": e.key, "calls": int(e.count), "self_device_ms": device_us / 1e3,
                     "self_cpu_ms": e.self_cpu_time_total / 1e3, "category": category(e.key)})
    basis = "device" if any(r["self_device_ms"] > 0 for r in rows) else "cpu"
    key = f"self_{basis}_ms"
    rows = [r for r in rows if r[key] > 0]
    total = sum(r[key] for r in rows)
    rows.sort(key=lambda r: r[key], reverse=True)
    for r in rows:
        r["share"] = r[key] / total if total else None
    shares = {name: 0.0 for name in CATEGORY_NAMES}
    for r in rows:
        shares[r["category"]] += r[key] / total if total else 0.0
    return {"time_basis": basis, "total_ms": total, "top_operations": rows[:limit], "category_share": shares}


class Tracer:
    """Starts and stops the profiler at the timer's "trace" window (its hook)."""

    def __init__(self, backend, out: Path, run_name: str, steps: int, rank: int = 0, env=os.environ):
        self.backend = backend
        self.steps = steps
        self.path = trace_path(out, run_name, rank)
        self.nsys = env.get(NSYS_CAPTURE_ENV) == "1" and backend.spec.nsys_trace is not None
        # The report file lib_job.sh gave nsys (%q{SLURM_PROCID}: nsys puts the rank there)
        self.nsys_file = (env.get("UNETBENCH_NSYS_OUTPUT", "").replace("%q{SLURM_PROCID}", env.get("SLURM_PROCID", ""))
                          or None) if self.nsys else None
        self.summary: dict | None = None   # the results' trace section once written
        self._profiler = None

    def hook(self, phase: str | None, now: float) -> None:
        if phase == "trace" and self._profiler is None and self.summary is None:
            self._start()
        elif phase is None and self._profiler is not None:
            self._stop()

    def _start(self) -> None:
        import torch
        activities = [torch.profiler.ProfilerActivity.CPU]
        if not self.nsys:
            activities += self.backend.profiler_activities()
        self._activities = [a.name for a in activities]
        self._profiler = torch.profiler.profile(activities=activities)
        self._profiler.start()
        if self.nsys:
            self.backend.capture_range(True)

    def _stop(self) -> None:
        if self.nsys:
            self.backend.capture_range(False)
        profiler, self._profiler = self._profiler, None
        self.backend.synchronize()  # the traced steps' device work is over (already, after the timer's sync)
        profiler.stop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(self.path.name + ".part")
        profiler.export_chrome_trace(str(temp))
        os.replace(temp, self.path)
        self.summary = {"steps_requested": self.steps, "file": str(self.path), "activities": self._activities,
                        "nsys_capture": self.nsys, "nsys_file": self.nsys_file, **top_operations(profiler.key_averages())}
