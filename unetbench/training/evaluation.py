"""Evaluation over a split: its own compiled unit, fed like training, timed apart from training.

    evaluator = Evaluator(backend, transform, stream, timer, dist, num_classes, ignore_index, class_names)
    seconds = evaluator.warm_up(unit, loaders, crop)     # before training: each batch shape compiled once
    metrics = evaluator.evaluate(model, unit, loader)    # loss, accuracy, mIoU, ... and eval_s

The trainer (trainer.py) builds one with what evaluation needs for the whole run, and hands it
at each call what changes: the model (whose BatchNorm statistics every rank takes from rank 0)
and ``unit``, the compiled evaluation unit over it (EvalForward: model + loss + argmax). It adds
the seconds returned to the run's progress. A class of its own because evaluation has timing
rules of its own: its time is synchronised at both ends and counted as eval_s (and in the
elapsed time to quality), never in a training window; compiling its shapes is warm-up, before
training starts, in no window at all.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Sequence

import torch

from ..data.loaders import batch_sizes, feed
from .distributed import DistContext
from .metrics import ConfusionMatrix, summarize
from .timing import StepTimer


class Evaluator:
    """Evaluates whatever model and compiled unit it is handed, with the run's device, feeding,
    timer (energy windows) and process group: it reads nothing of the trainer."""

    def __init__(self, backend, transform, stream, timer: StepTimer, dist: DistContext, num_classes: int,
                 ignore_index: int | None, class_names: Sequence[str], clock: Callable[[], float] = time.perf_counter):
        self.backend = backend
        self.transform = transform      # loader batch -> device batch, as training's (no flips)
        self.stream = stream            # where the next batch is copied while this one is evaluated
        self.timer = timer              # its hooks meter energy per window (energy_windows.py)
        self.dist = dist
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = class_names
        self.clock = clock

    @torch.no_grad()
    def warm_up(self, unit: torch.nn.Module, loaders: Iterable, crop: tuple[int, int]) -> float:
        """Run ``unit`` once for every batch shape evaluation will see (full batch, each split's
        last partial batch), before training and outside every timed window: its compilation
        and autotuning are reported as eval_warmup_s (the seconds returned), not inside the first
        epoch's eval_s and the time to the best epoch. Zeros through a model in eval mode under
        no_grad: nothing it computes is kept, no weight or statistic changes. Nothing to do on
        a backend where a new shape costs nothing: 0 seconds."""
        if not self.backend.compiles_per_shape:
            return 0.0
        sizes = sorted({size for loader in loaders for size in batch_sizes(loader)})
        unit.eval()
        height, width = crop
        device = self.backend.device
        sums = self._sums()
        self.backend.synchronize()  # nothing queued earlier may land in this window
        self.timer.mark("eval_warmup")  # an energy window (energy_windows.py); its hooks before t0
        t0 = self.clock()
        for size in sizes:
            x = torch.zeros(size, 3, height, width, device=device).contiguous(memory_format=self.backend.memory_format)
            y = torch.zeros(size, height, width, dtype=torch.long, device=device)
            self._step(unit, x, y, *sums)
        self.backend.synchronize()  # the warm-up's kernels have run: all of their time is counted
        t1 = self.clock()
        self.timer.mark(None, t1)
        return t1 - t0

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, unit: torch.nn.Module, loader) -> dict:
        """Loss and metrics of ``model`` (run through ``unit``) over a whole split, each sample
        once across ranks; ``eval_s``: the synchronised seconds it took."""
        self.dist.broadcast_buffers(model)  # one model for every rank's shard
        unit.eval()
        cm, loss_sum, count = self._sums()
        self.backend.synchronize()  # evaluation time must not include queued training work
        self.timer.mark("eval")  # an energy window (energy_windows.py); its hooks before t0
        t0 = self.clock()
        # Fed as training is: the next batch is copied and normalised on the side stream while
        # this one is evaluated (no flips).
        for x, y, _ in feed(iter(loader), range(len(loader)), self.transform, self.stream, self.clock):
            self._step(unit, x, y, cm, loss_sum, count)
        self.dist.all_reduce_sum(loss_sum)
        self.dist.all_reduce_sum(count)
        confusion = cm.total(self.dist.all_reduce_sum)  # synchronises
        metrics = summarize(confusion, self.class_names)
        metrics["loss"] = float(loss_sum.item() / count.item()) if count.item() else None
        metrics["samples"] = int(count.item())
        self.backend.synchronize()
        t1 = self.clock()
        self.timer.mark(None, t1)
        metrics["eval_s"] = t1 - t0
        return metrics

    def _step(self, unit: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cm: ConfusionMatrix,
              loss_sum: torch.Tensor, count: torch.Tensor) -> None:
        """One evaluation batch through the compiled evaluation unit; sums stay on the device."""
        with self.backend.autocast():
            loss, prediction = unit(x, y)
        cm.update(prediction, y)
        loss_sum += loss.float() * x.shape[0]
        count += x.shape[0]
        self.backend.step_boundary()  # lazy HPU: one graph per batch

    def _sums(self) -> tuple[ConfusionMatrix, torch.Tensor, torch.Tensor]:
        device = self.backend.device
        return (ConfusionMatrix(self.num_classes, device, self.ignore_index),
                torch.zeros(1, dtype=torch.float32, device=device), torch.zeros(1, dtype=torch.float32, device=device))
