"""Training health: a non-finite loss (NaN, inf) stops the run as failed, naming where and what.

    health = LossHealth(device, patience=settings.nonfinite_patience)
    health.epoch_start(epoch, step_in_epoch)   # host: where this epoch (re)starts
    health.observe(loss)                        # each training step: device ops only, no sync
    health.check(dist)                          # epoch end, where the loop synchronises anyway

Why on the device: reading the loss back every step would drain the device queue and slow the
very steps the benchmark times. The step's loss is tested on the device and the first bad one
(its epoch, step and value) kept there; the host reads them once per epoch, after the epoch's
own synchronisation. More than ``patience`` non-finite steps (default 0) fail the run: the
weights are then NaN too and every later figure would be meaningless.
"""

from __future__ import annotations

import torch

from ..core.errors import UserError


class NonFiniteLoss(UserError):
    """The training loss was NaN or infinite for more steps than the patience allows."""


class LossHealth:
    def __init__(self, device: torch.device, patience: int = 0):
        self.patience = patience
        # int32/float32: what every backend has (Gaudi has no float64).
        self.count = torch.zeros((), dtype=torch.int32, device=device)        # non-finite steps
        self.step = torch.zeros((), dtype=torch.int32, device=device)         # 1-based step in epoch
        self.epoch = torch.zeros((), dtype=torch.int32, device=device)
        self.first = torch.full((3,), -1.0, dtype=torch.float32, device=device)  # epoch, step, value

    def epoch_start(self, epoch: int, step_in_epoch: int) -> None:
        self.epoch.fill_(epoch)
        self.step.fill_(step_in_epoch)

    def observe(self, loss: torch.Tensor) -> None:
        bad = ~torch.isfinite(loss.detach().float())
        self.step += 1
        first_bad = bad & (self.count == 0)
        self.count += bad.to(torch.int32)
        where = torch.stack([self.epoch.float(), self.step.float(), loss.detach().float()])
        self.first = torch.where(first_bad, where, self.first)

    def check(self, dist) -> None:
        """Raise NonFiniteLoss on every rank when, over all ranks, too many steps went bad."""
        count = int(dist.all_reduce_sum(self.count.reshape(1).float()).item())
        if count <= self.patience:
            return
        epoch, step, value = self.first.tolist()
        where = (f"first at epoch {int(epoch)} step {int(step)} (loss {value})" if epoch >= 0
                 else "first on another rank")
        raise NonFiniteLoss(
            f"training diverged: the loss was not finite in {count} step(s), {where}; more than "
            f"--nonfinite-patience {self.patience}. The run is marked failed and left out of the comparison: "
            "lower --lr, or check the dataset's images and labels")
