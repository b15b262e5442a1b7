"""Throughput benchmark: the pure training step versus the full training loop, in one run.

    python3 -m unetbench.bench --backend cuda --profile fast            # H100: 384x512, batch 16
    python3 -m unetbench.bench --backend cpu --crop 32x48 --batch-size 2 --steps 3 --model-width 8
    python3 -m unetbench.bench --model unet ...                          # any model in registry.MODELS

(a) compute only: one training step on tensors already on the device, repeated;
(b) end to end: the real training loop (loader, host-to-device copies, on-device augmentation,
    metrics, logging) on a prepared dataset (``--splits``; by default a synthetic one is made
    in a temporary folder at the requested crop).
Each part runs in a process of its own with an empty compile cache, so both warm-ups are cold:
compilation, autotuning and the compiler's caches start from nothing in each (run in one
process, the second part reused the first part's compiled graph: 0.1 s instead of 7.2 s).
Prints samples/s, TFLOP/s, utilisation against a matrix-product peak measured here, the
end-to-end / compute-only ratio, host data-wait and metrics shares, warm-up time and peak
memory. Needs only torch and numpy beyond this package. ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

if __name__ == "__main__":  # before torch loads (and with it, the Gaudi bridge in its mode)
    from ..devices.before_torch import prepare_environment_from_argv
    prepare_environment_from_argv(sys.argv[1:])

import torch  # noqa: E402
from torch import nn

from ..core.atomic import atomic_write_json
from ..core.errors import UserError, run_cli
from ..core.parsing import (
    argparse_type,
    check_crop_for_models,
    non_negative_int,
    parse_crop,
    positive_int,
)
from ..core.paths import REPO_ROOT
from ..core.registry import (
    BACKENDS,
    DEFAULT_MODEL,
    MODELS,
    PROFILES,
    ModelSpec,
    resolve,
)
from ..core.settings import Settings
from ..data.prepared import load_splits
from ..devices.base import make_backend
from ..models.flops import flops_per_sample
from ..models.unet import TrainForward
from .boundary_hooks import print_energy_and_trace
from .metrics import ConfusionMatrix
from .results import GB

PARTS = ("compute_only", "end_to_end")


def _timed(backend, fn, repeats: int) -> float:
    """Seconds per call of ``fn``, synchronised on both sides of the timed block."""
    backend.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    backend.synchronize()  # the clock must see the work finish, not just its launch
    return (time.perf_counter() - t0) / repeats


def matmul_peak_tflops(backend, size: int, warmup_s: float = 2.0, trials: int = 10, repeats: int = 20,
                       clock=time.perf_counter) -> float:
    """Dense matrix-product throughput in the profile's compute dtype: the utilisation yardstick.

    Utilisation is measured / peak, so a peak measured low overstates utilisation: the device
    first works continuously for ``warmup_s`` (GPU clocks ramp up under load; the library picks
    its kernel on the first calls), then the best of ``trials`` timed blocks counts.

    Gaudi lazy mode runs only what is still held when its graph is cut: each product is kept
    until its step boundary, so it is computed; warm-up and timed blocks repeat the same
    one-product graph, so its compilation happens in the warm-up (at least one block)."""
    dtype = torch.bfloat16 if backend.precision == "bf16" else torch.float32
    a = torch.randn(size, size, device=backend.device, dtype=dtype)
    b = torch.randn(size, size, device=backend.device, dtype=dtype)
    backend.step_boundary()  # the operands exist before the first product's graph
    held = []

    def product():
        held[:] = [a @ b]        # alive at the cut: executed, not dropped
        backend.step_boundary()

    start = clock()
    _timed(backend, product, repeats)
    while clock() - start < warmup_s:
        _timed(backend, product, repeats)
    seconds = min(_timed(backend, product, repeats) for _ in range(trials))
    return 2 * size**3 / seconds / 1e12


def compute_only(backend, spec: ModelSpec, num_classes: int, crop: tuple, batch: int, width: int, warmup: int,
                 steps: int) -> dict:
    """(a) The training step alone, on device-resident tensors (the ceiling for the loop)."""
    model = backend.prepare_model(resolve(spec.builder)(3, num_classes, width))
    optimizer = backend.make_optimizer(model.parameters(), 1e-4)
    train_model = backend.compile_model(TrainForward(model, nn.CrossEntropyLoss()))
    x = torch.randn(batch, 3, *crop, device=backend.device).contiguous(memory_format=backend.memory_format)
    y = torch.randint(0, num_classes, (batch, *crop), device=backend.device)

    def step():
        with backend.autocast():
            loss, _ = train_model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        backend.step_boundary()
        optimizer.step()
        backend.step_boundary()

    backend.reset_peak_memory()
    warmup_s = _timed(backend, step, warmup) * warmup
    step_s = _timed(backend, step, steps)
    peak = backend.memory_bytes()["peak_allocated"]

    # Metrics cost outside the compiled step: the on-device confusion-matrix update.
    prediction = torch.randint(0, num_classes, (batch, *crop), device=backend.device)
    cm = ConfusionMatrix(num_classes, backend.device)
    metrics_s = _timed(backend, lambda: cm.update(prediction, y), steps)
    return {"samples_per_s": batch / step_s, "step_ms": step_s * 1e3, "warmup_s": warmup_s,
            "metrics_ms": metrics_s * 1e3, "peak_memory_gb": None if peak is None else peak / GB}


def end_to_end(backend, model: str, splits: Path, batch: int, width: int, warmup: int, steps: int, workers: int,
               out: Path, compile_cache: Path | None = None, trace_steps: int = 0) -> dict:
    """(b) The real training loop for ``warmup + steps`` steps; figures from its own results."""
    from .trainer import Trainer
    settings = Settings(splits=str(splits), out=str(out), run_name=f"bench_{backend.name}", profile=backend.profile,
                        model=model, epochs=1, batch_size=batch, workers=workers, warmup_steps=warmup,
                        max_steps_per_epoch=warmup + trace_steps + steps, trace_steps=trace_steps,
                        model_width=width, log_every=max(1, steps),
                        compile_mode=backend.compile_mode,
                        compile_cache=None if compile_cache is None else str(compile_cache))
    trainer = Trainer(settings, backend)
    trainer.run()
    results = trainer.results("completed")
    t = results["timing"]
    return {"samples_per_s": t["steady_samples_per_s"], "step_ms_p50": t["step_ms"]["p50"],
            "step_ms_p90": t["step_ms"]["p90"], "warmup_s": t["warmup_s"], "eval_warmup_s": t["eval_warmup_s"],
            "data_wait_fraction": t["data_wait_fraction"], "measured_steps": t["measured_steps"],
            "peak_memory_gb": results["memory"]["peak_allocated_gb"], "environment": results["environment"],
            "energy": results["energy"], "trace": results["trace"]}


def make_synthetic_splits(folder: Path, crop: tuple, batch: int, warmup: int, steps: int) -> Path:
    from ..data.prepare.api import default_jobs, prepare_synthetic
    train_needed = batch * (warmup + steps)
    num_images = math.ceil(train_needed / 0.70) + 3
    print(f"preparing {num_images} synthetic {crop[0]}x{crop[1]} images in {folder} ...", flush=True)
    return Path(prepare_synthetic(folder, num_images=num_images, crop=crop, jobs=default_jobs()).splits_file)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m unetbench.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=tuple(BACKENDS), default="cuda")
    p.add_argument("--profile", choices=PROFILES, default="fast")
    p.add_argument("--model", choices=tuple(MODELS), default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    p.add_argument("--crop", type=argparse_type(parse_crop, "--crop"), default=(384, 512),
                   help="HxW (default 384x512); both sides multiples of the model's input multiple")
    p.add_argument("--batch-size", type=argparse_type(positive_int, "--batch-size"), default=16)
    p.add_argument("--model-width", type=argparse_type(positive_int, "--model-width"), default=64,
                   help="64 = the seed's UNet")
    p.add_argument("--num-classes", type=argparse_type(positive_int, "--num-classes"), default=13,
                   help="for the compute-only part")
    p.add_argument("--warmup", type=argparse_type(positive_int, "--warmup"), default=15,
                   help="warm-up steps (compilation, autotuning)")
    p.add_argument("--steps", type=argparse_type(positive_int, "--steps"), default=100, help="measured steps")
    p.add_argument("--trace-steps", type=argparse_type(non_negative_int, "--trace-steps"), default=0,
                   help="end to end: steps after warm-up under torch.profiler, apart from the measured ones; "
                        "the trace goes to --out (unetbench/training/trace.py)")
    p.add_argument("--workers", type=argparse_type(non_negative_int, "--workers"), default=6,
                   help="loader workers for the end-to-end part")
    p.add_argument("--splits", type=Path, help="prepared dataset (default: make a synthetic one)")
    p.add_argument("--matmul-size", type=argparse_type(positive_int, "--matmul-size"), default=8192)
    p.add_argument("--matmul-warmup-s", type=argparse_type(_seconds, "--matmul-warmup-s"), default=2.0,
                   help="seconds of continuous matrix products before the peak is timed (clocks ramp up)")
    p.add_argument("--out", type=Path, help="folder for the end-to-end run's results and compile cache")
    p.add_argument("--compile-mode", help="torch.compile mode for the CUDA fast profile")
    p.add_argument("--json", type=Path, help="write the figures to this file")
    # Internal: main() runs each part in a child process of its own (a cold warm-up for each).
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--part-json", type=Path, help=argparse.SUPPRESS)
    return p


def _seconds(text, flag: str = "value") -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise UserError(f"{flag} must be a number of seconds, 0 or more, not {str(text)!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else map(str, argv))
    args = build_parser().parse_args(argv)
    spec = MODELS[args.model]
    # Before any device work: a crop the model cannot take would fail deep inside its forward.
    check_crop_for_models(args.crop, "--crop", models=[args.model])
    if args.part:
        return run_part(args, spec)
    if args.trace_steps and not args.out:
        raise UserError("--trace-steps writes its trace into the run folder: add --out DIR to keep it")
    with tempfile.TemporaryDirectory(prefix="unetbench_bench_") as tmp:
        out = args.out or Path(tmp) / "results"
        splits = args.splits or make_synthetic_splits(Path(tmp) / "data", args.crop, args.batch_size,
                                                      args.warmup, args.steps + args.trace_steps)
        meta = load_splits(splits)
        check_crop_for_models(meta.crop, f"dataset {splits} has crops of", models=[args.model])
        parts = {}
        for part in PARTS:
            figures = Path(tmp) / f"{part}.json"
            code = _run_part_process(argv, part, figures, splits, out, Path(tmp) / f"compile_cache_{part}")
            if code:
                return code  # the child has printed why
            parts[part] = json.loads(figures.read_text())
    compute, e2e = parts["compute_only"], parts["end_to_end"]
    peak = compute.pop("matmul_peak_tflops")
    flops = flops_per_sample(args.model, *meta.crop, meta.num_classes, base=args.model_width)
    report = {
        "backend": args.backend, "profile": args.profile, "model": args.model, "model_title": spec.title,
        "crop": list(meta.crop), "batch_size": args.batch_size,
        "model_width": args.model_width, "gflop_per_sample": flops / 1e9, "matmul_peak_tflops": peak,
        "compute_only": compute, "end_to_end": e2e,
        "end_to_end_over_compute": (e2e["samples_per_s"] or 0) / compute["samples_per_s"],
        "tflops_compute_only": compute["samples_per_s"] * flops / 1e12,
        "tflops_end_to_end": (e2e["samples_per_s"] or 0) * flops / 1e12,
        "metrics_share": compute["metrics_ms"] / compute["step_ms"],
    }
    report["utilisation_end_to_end"] = report["tflops_end_to_end"] / peak
    print_report(report)
    if args.json:
        atomic_write_json(args.json, report)
    return 0


def _run_part_process(argv: list, part: str, figures: Path, splits: Path, out: Path, cache: Path) -> int:
    """One part in a fresh Python process: no graph, kernel, autotuning result or allocator
    state of the other part, and an empty compile cache of its own: its warm-up is cold."""
    cache.mkdir(parents=True)
    env = dict(os.environ)
    env["TORCHINDUCTOR_CACHE_DIR"] = str(cache)
    env.pop("TRITON_CACHE_DIR", None)  # inductor then keeps Triton's cache inside the empty folder
    package_root = str(REPO_ROOT)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "unetbench.training.bench", *argv, "--splits", str(splits), "--out", str(out),
               "--part", part, "--part-json", str(figures)]
    return subprocess.run(command, env=env).returncode


def run_part(args: argparse.Namespace, spec: ModelSpec) -> int:
    """In the child process: one part's figures into --part-json."""
    backend = make_backend(args.backend, args.profile, compile_mode=args.compile_mode)
    meta = load_splits(args.splits)
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    cold = {"process": os.getpid(), "compile_cache": cache,
            "compile_cache_was_empty": not (cache and any(Path(cache).iterdir()))}
    if args.part == "compute_only":
        peak = matmul_peak_tflops(backend, args.matmul_size, warmup_s=args.matmul_warmup_s)
        figures = compute_only(backend, spec, meta.num_classes, meta.crop, args.batch_size, args.model_width,
                               args.warmup, args.steps)
        figures["matmul_peak_tflops"] = peak
    else:
        figures = end_to_end(backend, args.model, args.splits, args.batch_size, args.model_width, args.warmup,
                             args.steps, args.workers, args.out, compile_cache=cache and Path(cache),
                             trace_steps=args.trace_steps)
    figures["warmup_state"] = cold
    atomic_write_json(args.part_json, figures)
    return 0


def print_report(r: dict) -> None:
    env = r["end_to_end"]["environment"]
    c, e = r["compute_only"], r["end_to_end"]
    print(f"\n{env['device_name']} | torch {env['torch']} | CUDA {env.get('cuda')} cuDNN {env.get('cudnn')} | "
          f"{r['backend']}/{r['profile']} {env['math_mode']}")
    print(f"{r['model_title']} width {r['model_width']}, crop {r['crop'][0]}x{r['crop'][1]}, batch {r['batch_size']}, "
          f"{r['gflop_per_sample']:.3g} GFLOP per sample per training step; matmul peak {r['matmul_peak_tflops']:.3g} TFLOP/s")
    rows = [("", "compute only", "end to end"),
            ("samples/s", f"{c['samples_per_s']:.4g}", f"{e['samples_per_s'] or 0:.4g}"),
            ("TFLOP/s", f"{r['tflops_compute_only']:.2f}", f"{r['tflops_end_to_end']:.2f}"),
            ("step ms (mean | p50)", f"{c['step_ms']:.1f}", f"{e['step_ms_p50'] or 0:.1f}"),
            ("warm-up s (cold)" if _warmth(c) == _warmth(e) == "cold" else "warm-up s (see below)",
             f"{c['warmup_s']:.1f}", f"{e['warmup_s']:.1f}"),
            ("peak memory GB", _num(c["peak_memory_gb"]), _num(e["peak_memory_gb"]))]
    for name, a, b in rows:
        print(f"  {name:<22}{a:>14}{b:>14}")
    print(f"  end-to-end / compute-only ratio: {r['end_to_end_over_compute']:.3f}")
    print(f"  utilisation vs matmul peak (end to end): {100 * r['utilisation_end_to_end']:.1f}%")
    print(f"  warm-up: each part in a fresh process with an empty compile cache of its own (compute only "
          f"{_warmth(c)}, end to end {_warmth(e)}); evaluation's own warm-up, before training and outside "
          f"every figure above: {e['eval_warmup_s']:.1f} s")
    print(f"  data-wait share (host blocked on the loader, not device idle time): "
          f"{100 * (e['data_wait_fraction'] or 0):.2f}%   "
          f"metrics share (confusion update / step): {100 * r['metrics_share']:.2f}%")
    print_energy_and_trace(e.get("energy"), e.get("trace"))


def _warmth(part: dict) -> str:
    state = part["warmup_state"]
    return "cold" if state["compile_cache_was_empty"] else f"compile cache warm: {state['compile_cache']}"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    run_cli(main)
