"""Throughput benchmark: the training loop's own step alone versus the whole training loop.

    python3 -m unetbench.bench --backend cuda --profile fast            # H100: 384x512, batch 16
    python3 -m unetbench.bench --backend cpu --crop 32x48 --batch-size 2 --steps 3 --model-width 8
    python3 -m unetbench.bench --model unet ...                          # any model in registry.MODELS

(a) compute only: the loop's own training step, ``Trainer.train_step`` (forward, loss, metrics
    on the device, backward, optimizer step) through the loop's own units, on the dataset's
    first batch (real labels) already on the device, repeated;
(b) end to end: the real training loop (loader, host-to-device copies, on-device augmentation,
    metrics, logging) on a prepared dataset (``--splits``; by default a synthetic one is made
    in a temporary folder at the requested crop).
Each part runs in a process of its own with an empty compile cache, so both warm-ups are cold:
compilation, autotuning and the compiler's caches start from nothing in each (run in one
process, the second part reused the first part's compiled graph: 0.1 s instead of 7.2 s).
Prints samples/s, TFLOP/s, utilisation against the device's matrix-product peak (measured by
the end-to-end run as by every training run, bounded in time: unetbench/training/peak.py;
``--no-peak`` skips it), the end-to-end / compute-only ratio, host data-wait and metrics shares
(argmax and confusion counts on real labels, predicted as a trained model would), warm-up time
and peak memory over the measured steps (warm-up excluded in both parts). Needs only torch and
numpy beyond this package. ``--json FILE`` keeps the figures.

The training flags it takes are the training's own (unetbench/core/settings.py, the only list
of them: same checks, same help), with the benchmark's defaults where it needs others.
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

from ..core.atomic import atomic_write_json
from ..core.errors import UserError, run_cli
from ..core.math_label import math_label
from ..core.parsing import (
    argparse_type,
    check_crop_for_models,
    parse_crop,
    positive_int,
)
from ..core.paths import REPO_ROOT
from ..core.registry import BACKENDS, MODELS
from ..core.settings import HELP, Settings
from ..core.settings import build_parser as build_settings_parser
from ..data.prepared import load_splits
from ..devices.base import make_backend
from ..models.flops import flops_per_sample
from ..models.unit import predict
from .metrics import ConfusionCounter, ConfusionMatrix
from .peak import describe as describe_peak
from .results import GB
from .run_outputs import RunOutputs
from .trainer import Trainer

PARTS = ("compute_only", "end_to_end")

# The training settings the benchmark takes, each as settings.py defines it. Its own defaults
# where a training run's would not do: the guide's figures are for the fast profile after 15
# warm-up steps with 6 loader workers; without --splits a synthetic dataset is made, without
# --out the end-to-end run goes to a temporary folder. The rest keep the training's defaults.
TRAINING_FLAGS = ("profile", "model", "batch_size", "model_width", "warmup_steps", "trace_steps", "workers",
                  "splits", "out", "compile_mode", "no_peak")
BENCH_DEFAULTS = {"profile": "fast", "warmup_steps": 15, "workers": 6, "splits": None, "out": None}
WHAT_NONE_MEANS = {"splits": "a synthetic dataset at --crop, made in a temporary folder", "out": "a temporary folder"}
OLDER_SPELLINGS = {"warmup_steps": ("--warmup",)}   # what the benchmark called them before
# The fixed-size peak's flags: accepted from older command lines, ignored with a note (the peak
# is bounded by time now, its size chosen to fit: peak.py).
IGNORED_FLAGS = ("--matmul-size", "--matmul-warmup-s")


def _timed(backend, fn, repeats: int) -> float:
    """Seconds per call of ``fn``, synchronised on both sides of the timed block."""
    backend.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    backend.synchronize()  # the clock must see the work finish, not just its launch
    return (time.perf_counter() - t0) / repeats


def compute_only(trainer: Trainer, warmup: int, steps: int) -> dict:
    """(a) The loop's own training step, Trainer.train_step, on device-resident tensors: the
    ceiling for the loop. The units are the trainer's own, built by the very method its run
    calls (Trainer.build_units: HPU graphs before DDP on lazy Gaudi, DDP, compilation), and the
    batch is the dataset's first: real labels, skewed and with ignored pixels."""
    backend, batch = trainer.backend, trainer.s.batch_size
    trainer.build_units()
    trainer.train_model.train()
    x, y = first_batch(trainer)
    cm = ConfusionMatrix(trainer.splits.num_classes, backend.device, trainer.splits.ignore_index)
    trainer.health.epoch_start(1, 0, warmup + steps)   # a loss slot per step

    def step():
        trainer.train_step(x, y, cm)

    warmup_s = _timed(backend, step, warmup) * warmup if warmup else 0.0
    # The peak restarts where the measured steps start, as in the loop (memory_phases.py):
    # warm-up's compilation and autotuning workspaces are not the training's memory.
    backend.synchronize()
    backend.reset_peak_memory()
    step_s = _timed(backend, step, steps)
    peak = backend.memory_bytes()["peak_allocated"]
    metrics_s = metrics_seconds(trainer, y, steps)
    return {"samples_per_s": batch / step_s, "step_ms": step_s * 1e3, "warmup_s": warmup_s,
            "metrics_ms": metrics_s * 1e3, "peak_memory_gb": None if peak is None else peak / GB}


def first_batch(trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
    """The train split's first batch on the device, transformed as the loop transforms it."""
    images, labels = trainer.data["train"].__getitems__(list(range(trainer.s.batch_size)))
    x, y = trainer.transform(images, labels)
    trainer.backend.synchronize()
    return x, y


class _MetricsPart(torch.nn.Module):
    """What the training unit computes for the metrics alone: the argmax and the confusion counts."""

    def __init__(self, counter: torch.nn.Module):
        super().__init__()
        self.counter = counter

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.counter(predict(logits), y)


def metrics_seconds(trainer: Trainer, y: torch.Tensor, steps: int) -> float:
    """Seconds per step of the metrics: the argmax and confusion counts, compiled as the training
    unit is, and their add outside it. On logits whose argmax is mostly the label, as a trained
    model's is: with skewed labels (road, sky, ignored pixels) most pixels then hit the same few
    cells, the index collisions of a real run (uniform random labels spread them and time
    less than a real step pays)."""
    backend, n = trainer.backend, trainer.splits.num_classes
    part = backend.compile_model(_MetricsPart(ConfusionCounter(n, trainer.splits.ignore_index)))
    dtype = torch.bfloat16 if backend.precision == "bf16" else torch.float32
    generator = torch.Generator(device="cpu").manual_seed(0)
    logits = torch.randn(y.shape[0], n, *y.shape[1:], generator=generator).to(backend.device, dtype)
    label = torch.where(y < n, y, torch.zeros_like(y))   # ignored pixels: any prediction
    logits.scatter_(1, label.unsqueeze(1), 4.0)
    logits = logits.contiguous(memory_format=backend.memory_format)
    cm = ConfusionMatrix(n, backend.device, trainer.splits.ignore_index)

    def update():
        cm.add_counts(part(logits, y), y.numel())
        backend.step_boundary()   # lazy Gaudi: the counts are held in cm, so they are computed

    _timed(backend, update, 2)   # compilation (a graph of its own), outside the timed block
    return _timed(backend, update, steps)


def end_to_end(settings: Settings, backend) -> dict:
    """(b) The real training loop for warm-up + traced + measured steps; figures from its own results."""
    outputs = RunOutputs.of(settings, backend.name)
    trainer = Trainer(settings, backend, outputs=outputs)
    outputs.claim()   # the run's one claim, after the trainer's data checks (as launch.py does)
    try:
        trainer.run()
        results = trainer.results("completed")
        software = device_software(backend, results["environment"])
    finally:
        trainer.release()
    t = results["timing"]
    return {"samples_per_s": t["steady_samples_per_s"], "step_ms_p50": t["step_ms"]["p50"],
            "step_ms_p90": t["step_ms"]["p90"], "warmup_s": t["warmup_s"], "eval_warmup_s": t["eval_warmup_s"],
            "data_wait_fraction": t["data_wait_fraction"], "measured_steps": t["measured_steps"],
            "peak_memory_gb": results["memory"]["peak_allocated_gb"], "environment": results["environment"],
            "device_software": software, "energy": results["energy"], "trace": results["trace"],
            "peak": results["peak"]}


def device_software(backend, environment: dict) -> dict:
    """The device's software as the results' environment records it: the text fields the backend
    adds to the environment (Backend.environment()) beyond its device's name and count, where
    they hold a value: driver and library versions, whichever the backend records."""
    own = set(backend.environment()) - {"device_name", "device_count"}
    return {name: value for name, value in environment.items() if name in own and isinstance(value, str)}


def run_settings(args: argparse.Namespace, backend_name: str, compile_cache: str | None) -> Settings:
    """The training settings of both parts: the training flags as given, and one epoch of warm-up,
    traced and measured steps."""
    return Settings(**{name: getattr(args, name) for name in TRAINING_FLAGS}, run_name=f"bench_{backend_name}",
                    epochs=1, max_steps_per_epoch=args.warmup_steps + args.trace_steps + args.steps,
                    log_every=max(1, args.steps), compile_cache=compile_cache)


def make_synthetic_splits(folder: Path, crop: tuple, batch: int, warmup: int, steps: int) -> Path:
    from ..data.prepare.api import default_jobs, prepare_synthetic
    train_needed = batch * (warmup + steps)
    num_images = math.ceil(train_needed / 0.70) + 3
    print(f"preparing {num_images} synthetic {crop[0]}x{crop[1]} images in {folder} ...", flush=True)
    return Path(prepare_synthetic(folder, num_images=num_images, crop=crop, jobs=default_jobs()).splits_file)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m unetbench.bench", description=__doc__.split("\n\n")[0])
    first = next(iter(BACKENDS))
    p.add_argument("--backend", choices=tuple(BACKENDS), default=first, help=f"default: {first}, the registry's first")
    add_training_flags(p)
    p.add_argument("--crop", type=argparse_type(parse_crop, "--crop"), default=(384, 512),
                   help="HxW of the synthetic dataset (default 384x512); both sides multiples of the model's "
                        "input multiple")
    p.add_argument("--steps", type=argparse_type(positive_int, "--steps"), default=100,
                   help="measured steps (default: 100)")
    p.add_argument("--num-classes", type=argparse_type(positive_int, "--num-classes"), default=13,
                   help="ignored: both parts train on the dataset's classes (kept for older command lines)")
    for flag in IGNORED_FLAGS:
        p.add_argument(flag, help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="write the figures to this file")
    # Internal: main() runs each part in a child process of its own (a cold warm-up for each).
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--part-json", type=Path, help=argparse.SUPPRESS)
    return p


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    """TRAINING_FLAGS as the training's parser defines them (type and check, choices, help),
    each with the benchmark's default."""
    training = {action.dest: action for action in build_settings_parser()._actions}
    defaults = Settings()
    for name in TRAINING_FLAGS:
        flag = training[name]
        default = BENCH_DEFAULTS.get(name, getattr(defaults, name))
        shown = WHAT_NONE_MEANS.get(name) if default is None else default
        shown = "" if shown is None else f" (default: {shown})"
        spellings = (*flag.option_strings, *OLDER_SPELLINGS.get(name, ()))
        if isinstance(flag, argparse._StoreTrueAction):   # a switch (--no-peak): no value, no type
            parser.add_argument(*spellings, dest=name, action="store_true", help=HELP[name])
        else:
            parser.add_argument(*spellings, dest=name, type=flag.type, choices=flag.choices, metavar=flag.metavar,
                                default=default, help=HELP[name] + shown)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else map(str, argv))
    args = build_parser().parse_args(argv)
    # Before any device work: a crop the model cannot take would fail deep inside its forward.
    check_crop_for_models(args.crop, "--crop", models=[args.model])
    if args.part:
        return run_part(args)
    for flag in IGNORED_FLAGS:
        if getattr(args, flag[2:].replace("-", "_")) is not None:
            print(f"note: {flag} is ignored: the matmul peak is bounded by time now, its size chosen to fit "
                  "(unetbench/training/peak.py)", file=sys.stderr)
    if args.trace_steps and not args.out:
        raise UserError("--trace-steps writes its trace into the run folder: add --out DIR to keep it")
    with tempfile.TemporaryDirectory(prefix="unetbench_bench_") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "results"
        splits = Path(args.splits) if args.splits else make_synthetic_splits(
            Path(tmp) / "data", args.crop, args.batch_size, args.warmup_steps, args.steps + args.trace_steps)
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
    peak = e2e["peak"]["tflops"]   # the end-to-end run's own measurement, as in its results; None: --no-peak
    flops = flops_per_sample(args.model, *meta.crop, meta.num_classes, base=args.model_width)
    report = {
        "backend": args.backend, "profile": args.profile, "model": args.model,
        "model_title": MODELS[args.model].title, "crop": list(meta.crop), "batch_size": args.batch_size,
        "model_width": args.model_width, "gflop_per_sample": flops / 1e9, "matmul_peak_tflops": peak,
        "compute_only": compute, "end_to_end": e2e,
        "end_to_end_over_compute": (e2e["samples_per_s"] or 0) / compute["samples_per_s"],
        "tflops_compute_only": compute["samples_per_s"] * flops / 1e12,
        "tflops_end_to_end": (e2e["samples_per_s"] or 0) * flops / 1e12,
        "metrics_share": compute["metrics_ms"] / compute["step_ms"],
    }
    report["utilisation_end_to_end"] = report["tflops_end_to_end"] / peak if peak else None
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


def run_part(args: argparse.Namespace) -> int:
    """In the child process: one part's figures into --part-json."""
    backend = make_backend(args.backend, args.profile, compile_mode=args.compile_mode)
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    cold = {"process": os.getpid(), "compile_cache": cache,
            "compile_cache_was_empty": not (cache and any(Path(cache).iterdir()))}
    settings = run_settings(args, backend.name, compile_cache=cache)
    if args.part == "compute_only":
        trainer = Trainer(settings, backend)
        try:
            figures = compute_only(trainer, args.warmup_steps, args.steps)
        finally:
            trainer.release()
    else:
        figures = end_to_end(settings, backend)
    figures["warmup_state"] = cold
    atomic_write_json(args.part_json, figures)
    return 0


def print_report(r: dict) -> None:
    env = r["end_to_end"]["environment"]
    c, e = r["compute_only"], r["end_to_end"]
    software = [f"torch {env['torch']}"] + [f"{name} {value}" for name, value in e["device_software"].items()]
    print(f"\n{env['device_name']} | {', '.join(software)} | {r['backend']}/{r['profile']}: "
          f"{math_label(env['math_mode'])}, math mode {env['math_mode']}")
    print(f"{r['model_title']} width {r['model_width']}, crop {r['crop'][0]}x{r['crop'][1]}, batch {r['batch_size']}, "
          f"{r['gflop_per_sample']:.3g} GFLOP per sample per training step; {describe_peak(e['peak'])}")
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
    share = r["utilisation_end_to_end"]
    print(f"  utilisation vs matmul peak (end to end): {'n/a' if share is None else f'{100 * share:.1f}%'}")
    print(f"  warm-up: each part in a fresh process with an empty compile cache of its own (compute only "
          f"{_warmth(c)}, end to end {_warmth(e)}); evaluation's own warm-up, before training and outside "
          f"every figure above: {e['eval_warmup_s']:.1f} s")
    print(f"  data-wait share (host blocked on the loader, not device idle time): "
          f"{100 * (e['data_wait_fraction'] or 0):.2f}%   "
          f"metrics share (argmax + confusion counts / step): {100 * r['metrics_share']:.2f}%")
    print_energy_and_trace(e.get("energy"), e.get("trace"))


def print_energy_and_trace(energy: dict | None, trace: dict | None, top: int = 5) -> None:
    """The end-to-end run's energy and trace, as its results record them."""
    if energy and energy.get("j_per_sample") is not None:
        steady = energy["steady"]
        print(f"  energy (steady window, {energy['source']}): {energy['j_per_sample']:.4g} J/sample, "
              f"{energy['samples_per_s_per_w']:.4g} samples/s/W, {steady['avg_power_w']:.1f} W average")
    elif energy:
        print(f"  energy: not metered ({energy.get('absent') or 'no steady window'})")
    if trace:
        ops = ", ".join(f"{op['name']} {100 * (op['share'] or 0):.0f}%" for op in trace["top_operations"][:top])
        print(f"  trace: {trace['file']} (self {trace['time_basis']} time; top: {ops})")


def _warmth(part: dict) -> str:
    state = part["warmup_state"]
    return "cold" if state["compile_cache_was_empty"] else f"compile cache warm: {state['compile_cache']}"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    run_cli(main)
