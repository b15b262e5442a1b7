"""The unit that is compiled: a model, its loss and its prediction in one module, for any model.

    loss, prediction = TrainForward(model, nn.CrossEntropyLoss())(x, y)     # training: DDP-wrapped, compiled
    loss, prediction = EvalForward(model, criterion)(x, y)                  # evaluation: compiled apart

Forward, loss and argmax compile as one graph, so the loss fuses with the model's last layer.
The trainer builds both over its model (unetbench/training/trainer.py, ``build_units``).
"""

from __future__ import annotations

import torch
from torch import nn


class TrainForward(nn.Module):
    """Model + loss + prediction in one module: the unit that is compiled (and DDP-wrapped)."""

    def __init__(self, model: nn.Module, criterion: nn.Module):
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        logits = self.model(x)
        return self.criterion(logits, y), logits.detach().argmax(1)


class EvalForward(TrainForward):
    """The same computation for evaluation, with a forward of its own: compiled apart from the
    training unit, its graphs (one per evaluation batch shape) live in the cache of their own
    code object and never count against the training graph's recompile limit."""

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        logits = self.model(x)
        return self.criterion(logits, y), logits.argmax(1)
