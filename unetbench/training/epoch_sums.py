"""The running sums of the epoch in progress, and how they survive an interrupted attempt.

    sums = EpochSums.continuing(progress.partial, cm, device, dist)   # zero, or what a stopped attempt saved
    trainer.train_step(x, y, sums.confusion)         # each step counts on the device; loss_sum gets the
    sums.loss_sum += health.loss_sum() * batch       # epoch's step losses at its end (trainer.py)
    sums.samples += len(x); sums.seconds += attempt_s                  # host counts
    progress.partial = sums.over_all_ranks()                           # a stop mid-epoch: into the checkpoint
    metrics = sums.metrics(class_names, attempt_s)                     # the epoch's loss and metrics, all ranks

The loss sum and the confusion matrix stay on the device for the whole epoch (read once, at its
end: no host sync per step). A stop signal may end an attempt mid-epoch; the next attempt
continues the same epoch, so its figures must cover the samples of both attempts exactly once.
"""

from __future__ import annotations

import torch

from .distributed import DistContext
from .metrics import ConfusionMatrix, summarize


class EpochSums:
    def __init__(self, confusion: ConfusionMatrix, device: torch.device, dist: DistContext):
        self.confusion = confusion
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)  # float32: Gaudi has no float64
        self.samples = 0        # this rank's training samples
        self.seconds = 0.0      # the epoch's training seconds, over every attempt
        self.device = device
        self.dist = dist

    @classmethod
    def continuing(cls, partial: dict | None, confusion: ConfusionMatrix, device: torch.device,
                   dist: DistContext) -> "EpochSums":
        """Zero, or the sums an interrupted attempt saved (RunProgress.partial; its confusion
        matrix is added to ``confusion``)."""
        sums = cls(confusion, device, dist)
        if partial:
            sums.seconds = partial["epoch_s"]
            if dist.is_main:  # the saved sums cover every rank: rank 0 alone adds them back
                sums.loss_sum += partial["loss_sum"]
                confusion.add_(partial["confusion"])
                sums.samples = partial["samples"]
        return sums

    def over_all_ranks(self) -> dict:
        """What the checkpoint keeps of an interrupted epoch (RunProgress.partial)."""
        # Only rank 0 saves the checkpoint, so it saves the sums over all ranks; on resume
        # rank 0 alone adds them back and the epoch's all-reduce counts each sample once.
        counts = torch.tensor([float(self.samples)], device=self.device)
        return {"loss_sum": self.dist.all_reduce_sum(self.loss_sum.clone()).cpu(),
                "confusion": torch.from_numpy(self.confusion.total(self.dist.all_reduce_sum)),
                "samples": int(self.dist.all_reduce_sum(counts).item()), "epoch_s": self.seconds}

    def metrics(self, class_names, attempt_s: float) -> dict:
        """The finished epoch's loss and metrics over every rank, its seconds and samples."""
        total_samples = torch.tensor([float(self.samples)], dtype=torch.float32, device=self.device)
        loss_total = self.dist.all_reduce_sum(self.loss_sum.reshape(1))
        total_samples = self.dist.all_reduce_sum(total_samples)
        metrics = summarize(self.confusion.total(self.dist.all_reduce_sum), class_names)
        metrics["loss"] = float(loss_total.item() / max(total_samples.item(), 1.0))
        metrics["epoch_s"] = self.seconds
        metrics["attempt_s"] = attempt_s  # the part of this epoch run by this process
        metrics["samples"] = int(total_samples.item())
        return metrics
