#!/usr/bin/env python3
"""What the training loop costs beyond a plain PyTorch loop, on the same model, batches and precision.

    python3 bench/loop_overhead.py                                   # CPU: 64x96, batch 4, width 8
    python3 bench/loop_overhead.py --backend cuda --profile fast --crop 384x512 --batch-size 16 --model-width 64
    python3 bench/loop_overhead.py --rounds 1 --block-steps 3        # a smoke run

Two loops train the same model (the same builder, seed and weights at the start, the
backend's optimizer, autocast and compilation) on the same device-resident batches, cycled:
  plain: forward and loss (one compiled unit, as nanoGPT's), zero_grad, backward, step;
  loop:  the benchmark's own training loop, Trainer.train_epoch: the step timer, on-device
         metrics (confusion counts, per-step loss record), health check, memory samples,
         progress, stop checks; its loader yields the same device batches (an identity
         transform), so the data pipeline competes for nothing in either loop.
They run interleaved: --rounds rounds of one block of --block-steps steps each, the order
swapped every round, after a warm-up of each (compilation). Each block is synchronised at both
ends and timed with the host clock; a loop block is one epoch of the trainer, so its time
includes the epoch's start and end (synchronisation, the health check's read, the metrics'
summary), once per block. Prints samples/s of each (median over rounds), the median of the
per-round ratios loop/plain, and the extras' cost as a share of a plain step. Target on the
CPU: at most 3 %. No test asserts a time: the figure is this script's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if __name__ == "__main__":  # before torch loads (and with it, the Gaudi bridge in its mode)
    from unetbench.devices.before_torch import prepare_environment_from_argv
    prepare_environment_from_argv(sys.argv[1:])

import torch  # noqa: E402
from torch import nn  # noqa: E402

from unetbench.core.parsing import argparse_type, parse_crop, positive_int  # noqa: E402
from unetbench.core.registry import BACKENDS, MODELS, PROFILES, resolve  # noqa: E402
from unetbench.core.settings import Settings  # noqa: E402
from unetbench.devices.base import make_backend  # noqa: E402
from unetbench.training.bench import make_synthetic_splits  # noqa: E402
from unetbench.training.metrics import ConfusionMatrix  # noqa: E402
from unetbench.training.trainer import Trainer, seed_everything  # noqa: E402
from unetbench.training.units import criterion  # noqa: E402

DISTINCT_BATCHES = 4   # device batches both loops cycle through


class PlainForward(nn.Module):
    """Model and loss in one module, compiled as one graph: a plain loop's unit."""

    def __init__(self, model: nn.Module, criterion: nn.Module):
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, x, y):
        return self.criterion(self.model(x), y)


class PlainLoop:
    def __init__(self, trainer: Trainer, batches: list):
        s, backend = trainer.s, trainer.backend
        seed_everything(s.seed)   # the trainer's model was built after the same seeding
        model = resolve(MODELS[s.model].builder)(3, trainer.splits.num_classes, s.model_width)
        self.model = backend.prepare_model(model)
        self.model.load_state_dict(trainer.model.state_dict())
        self.unit = backend.compile_model(PlainForward(self.model, criterion(trainer.splits.ignore_index)))
        self.optimizer = backend.make_optimizer(self.model.parameters(), s.lr)
        self.backend, self.batches = backend, batches

    def run(self, steps: int) -> None:
        self.unit.train()
        for i in range(steps):
            x, y = self.batches[i % len(self.batches)]
            with self.backend.autocast():
                loss = self.unit(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.backend.step_boundary()
            self.optimizer.step()
            self.backend.step_boundary()


class TrainingLoop:
    """The trainer's epoch loop over the same device batches."""

    def __init__(self, trainer: Trainer, batches: list):
        self.trainer, self.batches = trainer, batches
        trainer.build_units()
        trainer.transform = lambda x, y, flip_key=None: (x, y)   # batches are on the device already
        self.sampler, _, _ = trainer._loaders()
        self.cm = ConfusionMatrix(trainer.splits.num_classes, trainer.backend.device, trainer.splits.ignore_index)

    def run(self, steps: int) -> None:
        t = self.trainer
        t.s.max_steps_per_epoch = steps
        t.progress.step_in_epoch = 0
        self.cm.reset()
        t.train_epoch(self.sampler, iter(self.batches * (steps // len(self.batches) + 1)), None, self.cm)


def timed(backend, run, steps: int) -> float:
    backend.synchronize()   # nothing of the other loop's block may land in this one
    t0 = time.perf_counter()
    run(steps)
    backend.synchronize()   # the block's work has finished, not just its launch
    return time.perf_counter() - t0


def device_batches(trainer: Trainer) -> list:
    train, batch = trainer.data["train"], trainer.s.batch_size
    out = []
    for i in range(DISTINCT_BATCHES):
        rows = [(i * batch + j) % len(train) for j in range(batch)]
        images, labels = train.__getitems__(rows)
        out.append(trainer.transform(images, labels))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=tuple(BACKENDS), default="cpu")
    p.add_argument("--profile", choices=tuple(PROFILES), default="parity")
    p.add_argument("--model", choices=tuple(MODELS), default=Settings.model)
    p.add_argument("--crop", type=argparse_type(parse_crop, "--crop"), default=(64, 96))
    p.add_argument("--batch-size", type=argparse_type(positive_int, "--batch-size"), default=4)
    p.add_argument("--model-width", type=argparse_type(positive_int, "--model-width"), default=8)
    p.add_argument("--rounds", type=argparse_type(positive_int, "--rounds"), default=7)
    p.add_argument("--block-steps", type=argparse_type(positive_int, "--block-steps"), default=40)
    p.add_argument("--warmup-steps", type=argparse_type(positive_int, "--warmup-steps"), default=5)
    p.add_argument("--threads", type=argparse_type(positive_int, "--threads"),
                   help="torch.set_num_threads (default: torch's)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    backend = make_backend(args.backend, args.profile)
    with tempfile.TemporaryDirectory(prefix="loop_overhead_") as tmp:
        splits = make_synthetic_splits(Path(tmp) / "data", args.crop, args.batch_size, 1,
                                       max(args.block_steps, args.warmup_steps))
        settings = Settings(splits=str(splits), out=str(Path(tmp) / "out"), profile=args.profile, model=args.model,
                            batch_size=args.batch_size, model_width=args.model_width, workers=0,
                            warmup_steps=args.warmup_steps, log_every=10**6, epochs=1,
                            run_name="loop_overhead", compile_cache=str(Path(tmp) / "compile_cache"))
        trainer = Trainer(settings, backend)
        try:
            batches = device_batches(trainer)
            plain, loop = PlainLoop(trainer, batches), TrainingLoop(trainer, batches)
            timed(backend, plain.run, args.warmup_steps)   # compilation, allocator, caches
            timed(backend, loop.run, args.warmup_steps)    # the trainer's own warm-up window
            rates = {"plain": [], "loop": []}
            for r in range(args.rounds):
                order = [("plain", plain), ("loop", loop)][::1 if r % 2 == 0 else -1]
                for name, runner in order:
                    rates[name].append(args.block_steps * args.batch_size / timed(backend, runner.run, args.block_steps))
        finally:
            trainer.release()
    ratios = [a / b for a, b in zip(rates["loop"], rates["plain"])]
    ratio = statistics.median(ratios)
    print(f"{args.backend}/{args.profile} {args.model} width {args.model_width}, crop {args.crop[0]}x{args.crop[1]}, "
          f"batch {args.batch_size}, threads {torch.get_num_threads()}: {args.rounds} rounds of "
          f"{args.block_steps} steps each")
    print(f"plain loop:    {statistics.median(rates['plain']):.3f} samples/s (median)")
    print(f"training loop: {statistics.median(rates['loop']):.3f} samples/s (median)")
    print(f"ratio training/plain: {ratio:.3f} (median of rounds; min {min(ratios):.3f}, max {max(ratios):.3f}); "
          f"the loop's extras: {100 * (1 / ratio - 1):+.1f}% of a plain step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
