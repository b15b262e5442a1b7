"""The unit that is compiled: a model, its loss and its metrics' counts in one module, for any model.

    loss, loss_value, counts = TrainForward(model, nn.CrossEntropyLoss(), ConfusionCounter(13, 255))(x, y)
    loss, prediction = EvalForward(model, criterion)(x, y)                  # evaluation: compiled apart

Forward, loss, argmax and the batch's confusion counts compile as one graph (in the fast
profile; parity runs the same math eagerly), so the loss fuses with the model's last layer and
the per-step metrics are one fused kernel instead of a dozen small ops outside the graph (on
Gaudi each eager op costs host time). The trainer builds both over its model
(unetbench/training/trainer.py, ``build_units``).
"""

from __future__ import annotations

import torch
from torch import nn


def predict(logits: torch.Tensor) -> torch.Tensor:
    """Each pixel's class: the index of its largest logit over the channel dimension. torch.max's
    indices, the first maximum as argmax's are, because argmax over the channels of an NCHW
    tensor is slow on a CPU: 4.7 ms against 1.2 ms for 4x13x64x96 on one thread (argmax was the
    loop's largest extra over a plain loop, bench/loop_overhead.py); one reduction on GPUs alike."""
    return logits.max(1).indices


class TrainForward(nn.Module):
    """Model + loss + confusion counts in one module: the unit that is compiled (and DDP-wrapped).

    Returns the loss (for backward), its value detached as a float32 vector of one (what the
    loop records per step: no op outside the graph to detach or convert it) and the batch's
    confusion counts (``counter``: unetbench.training.metrics.ConfusionCounter)."""

    def __init__(self, model: nn.Module, criterion: nn.Module, counter: nn.Module):
        super().__init__()
        self.model = model
        self.criterion = criterion
        self.counter = counter

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        logits = self.model(x)
        loss = self.criterion(logits, y)
        counts = self.counter(predict(logits.detach()), y)
        return loss, loss.detach().float().reshape(1), counts


class EvalForward(nn.Module):
    """Model + loss + prediction for evaluation, with a forward of its own: compiled apart from
    the training unit, its graphs (one per evaluation batch shape) live in the cache of their
    own code object and never count against the training graph's recompile limit."""

    def __init__(self, model: nn.Module, criterion: nn.Module):
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        logits = self.model(x)
        return self.criterion(logits, y), predict(logits)
