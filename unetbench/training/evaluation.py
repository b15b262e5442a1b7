"""Evaluation of the trainer's model over a split: its own compiled unit, fed like training.

    metrics = trainer.evaluate(loader)          # loss, accuracy, mIoU, ... and eval_s
    trainer.warm_up_evaluation(loaders)         # before training: each evaluation shape compiled

A part of Trainer (train.py), kept apart because evaluation has timing rules of its own: its
time is synchronised at both ends and counted as eval_s (and in the elapsed time to quality),
never in a training window; compiling its shapes is warm-up, before training starts.
"""

from __future__ import annotations

import torch

from ..data.loaders import batch_sizes, feed
from . import checkpoint as ckpt
from .metrics import ConfusionMatrix, summarize


class Evaluation:
    """Mixed into Trainer: uses its backend, dist, eval_model, transform, stream, clock, timer,
    splits, progress and best_path."""

    def eval_step(self, x: torch.Tensor, y: torch.Tensor, cm: ConfusionMatrix, loss_sum: torch.Tensor,
                  count: torch.Tensor) -> None:
        """One evaluation batch through the compiled evaluation unit; sums stay on the device."""
        with self.backend.autocast():
            loss, prediction = self.eval_model(x, y)
        cm.update(prediction, y)
        loss_sum += loss.float() * x.shape[0]
        count += x.shape[0]
        self.backend.step_boundary()  # lazy HPU: one graph per batch

    def _eval_sums(self) -> tuple[ConfusionMatrix, torch.Tensor, torch.Tensor]:
        device = self.backend.device
        return (ConfusionMatrix(self.splits.num_classes, device, self.splits.ignore_index),
                torch.zeros(1, dtype=torch.float32, device=device), torch.zeros(1, dtype=torch.float32, device=device))

    @torch.no_grad()
    def warm_up_evaluation(self, loaders) -> None:
        """Run the evaluation unit once for every batch shape evaluation will see (full batch,
        each split's last partial batch), before training and outside every timed window: its
        compilation and autotuning are reported as eval_warmup_s, not inside the first epoch's
        eval_s and the time to the best epoch. Zeros through a model in eval mode under
        no_grad: nothing it computes is kept, no weight or statistic changes."""
        if not self.backend.compiles_per_shape:
            return
        sizes = sorted({size for loader in loaders for size in batch_sizes(loader)})
        self.eval_model.eval()
        height, width = self.splits.crop
        device = self.backend.device
        sums = self._eval_sums()
        self.backend.synchronize()  # nothing queued earlier may land in this window
        t0 = self.clock()
        self.timer.mark("eval_warmup", t0)  # an energy window (energy_windows.py)
        for size in sizes:
            x = torch.zeros(size, 3, height, width, device=device).contiguous(memory_format=self.backend.memory_format)
            y = torch.zeros(size, height, width, dtype=torch.long, device=device)
            self.eval_step(x, y, *sums)
        self.backend.synchronize()  # the warm-up's kernels have run: all of their time is counted
        t1 = self.clock()
        self.timer.mark(None, t1)
        self.progress.eval_warmup_s += t1 - t0

    @torch.no_grad()
    def evaluate(self, loader) -> dict:
        """Loss and metrics of the model over a whole split, each sample once across ranks."""
        self.dist.broadcast_buffers(self.model)  # one model for every rank's shard
        self.eval_model.eval()
        cm, loss_sum, count = self._eval_sums()
        self.backend.synchronize()  # evaluation time must not include queued training work
        t0 = self.clock()
        self.timer.mark("eval", t0)  # an energy window (energy_windows.py)
        # Fed as training is: the next batch is copied and normalised on the side stream while
        # this one is evaluated (no flips).
        for x, y, _ in feed(iter(loader), range(len(loader)), self.transform, self.stream, self.clock):
            self.eval_step(x, y, cm, loss_sum, count)
        self.dist.all_reduce_sum(loss_sum)
        self.dist.all_reduce_sum(count)
        confusion = cm.total(self.dist.all_reduce_sum)  # synchronises
        metrics = summarize(confusion, self.splits.class_names)
        metrics["loss"] = float(loss_sum.item() / count.item()) if count.item() else None
        metrics["samples"] = int(count.item())
        self.backend.synchronize()
        t1 = self.clock()
        self.timer.mark(None, t1)
        seconds = t1 - t0
        self.progress.eval_s += seconds
        metrics["eval_s"] = seconds
        return metrics

    def _test(self, loader) -> dict:
        self.dist.barrier()  # rank 0 must have finished writing the best checkpoint
        if self.best_path.exists():
            # Test metrics come from the best-validation weights, as the seed reported them.
            # Copied into the model in place (training is over; last_<run>.pth keeps the final
            # weights), so the compiled evaluation unit runs them without recompiling.
            self.model.load_state_dict(ckpt.load_checkpoint(self.best_path)["model"])
        metrics = self.evaluate(loader)
        metrics["checkpoint"] = str(self.best_path) if self.best_path.exists() else None
        metrics.pop("eval_s", None)
        return metrics
