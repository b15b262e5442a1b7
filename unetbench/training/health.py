"""Training health: a non-finite loss (NaN, inf) stops the run as failed, naming where and what.

    health = LossHealth(device, patience=settings.nonfinite_patience)
    health.epoch_start(epoch, step_in_epoch, steps)   # host: where this epoch (re)starts, its steps
    health.observe(loss_value)                  # each training step: two device ops, no sync
    health.loss_sum()                           # the epoch's summed step losses, on the device
    health.check(dist)                          # epoch end, where the loop synchronises anyway

Why on the device: reading the loss back every step would drain the device queue and slow the
very steps the benchmark times. Each step's loss is written to its slot of a device vector; the
host reads the vector once per epoch, after the epoch's own synchronisation, and finds the
first bad step (its epoch, step and value) there. More than ``patience`` non-finite steps (default 0) fail the run: the
weights are then NaN too and every later figure would be meaningless.
"""

from __future__ import annotations

import torch

from ..core.errors import UserError


class NonFiniteLoss(UserError):
    """The training loss was NaN or infinite for more steps than the patience allows."""


class LossHealth:
    """Each step's loss is written into a slot of a device vector (one op: no test, no branch,
    no host sync per step); the epoch's check reads the vector once, after the epoch's own
    synchronisation. The slot is addressed by a device counter, so every step runs the same
    ops on the same tensors (lazy-mode Gaudi builds one graph for all of them)."""

    SLOTS = 64   # slots of a vector whose epoch length was not given; it grows on the host

    def __init__(self, device: torch.device, patience: int = 0):
        self.patience = patience
        self.device = device
        # int32/float32: what every backend has (Gaudi has no float64); the index is int32,
        # the index type the Gaudi bridge's index_add_ lists.
        self.losses = torch.zeros(self.SLOTS, dtype=torch.float32, device=device)   # slot = step in epoch
        self.position = torch.zeros(1, dtype=torch.int32, device=device)             # the next step's slot
        self.epoch = 0
        self.start = 0           # the epoch's first step in this attempt (a resumed attempt starts later)
        self.observed = 0        # steps observed this epoch (host count)
        self.bad = 0             # non-finite steps of this rank, over the run
        self.first: tuple | None = None   # (epoch, 1-based step, value) of this rank's first bad step

    def epoch_start(self, epoch: int, step_in_epoch: int, steps: int | None = None) -> None:
        """``steps``: the epoch's steps, when known (a slot each)."""
        self.epoch, self.start, self.observed = epoch, step_in_epoch, 0
        self.losses = torch.zeros(max(steps or 0, step_in_epoch + self.SLOTS), dtype=torch.float32,
                                  device=self.device)
        self.position.fill_(step_in_epoch)

    def observe(self, loss_value: torch.Tensor) -> None:
        """This step's loss, detached (a float32 vector of one, as the training unit returns it,
        or a scalar): two device ops."""
        if self.start + self.observed >= len(self.losses):   # host count: a longer epoch than announced
            more = torch.zeros(len(self.losses), dtype=torch.float32, device=self.device)
            self.losses = torch.cat([self.losses, more])
        value = loss_value if loss_value.dim() == 1 else loss_value.reshape(1)   # the unit gives (1,) already
        self.losses.index_add_(0, self.position, value)
        self.position += 1
        self.observed += 1

    def loss_sum(self) -> torch.Tensor:
        """The sum of this epoch's step losses, on the device (no sync)."""
        return self.losses.sum()

    def check(self, dist) -> None:
        """Raise NonFiniteLoss on every rank when, over all ranks, too many steps went bad."""
        values = self.losses[self.start:self.start + self.observed].cpu()   # after the epoch's sync
        bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
        if bad and self.first is None:
            self.first = (self.epoch, self.start + bad[0] + 1, float(values[bad[0]]))
        self.bad += len(bad)
        self.start += self.observed   # a second check in the same epoch counts no step twice
        self.observed = 0
        count = int(dist.all_reduce_sum(torch.tensor([float(self.bad)], device=self.device)).item())
        if count <= self.patience:
            return
        where = (f"first at epoch {self.first[0]} step {self.first[1]} (loss {self.first[2]})" if self.first
                 else "first on another rank")
        raise NonFiniteLoss(
            f"training diverged: the loss was not finite in {count} step(s), {where}; more than "
            f"--nonfinite-patience {self.patience}. The run is marked failed and left out of the comparison: "
            "lower --lr, or check the dataset's images and labels")
