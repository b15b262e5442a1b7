"""Where a training run stands, saved whole in its checkpoint and restored whole on resume.

    progress = RunProgress()                            # a new run
    progress = RunProgress.continued(saved, path)       # the next attempt of a stopped one
    asdict(progress)                                    # what last_<run>.pth holds

The trainer (trainer.py) owns one and updates it every step and epoch; results.py lays it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from ..core.errors import UserError
from .results import utc_now
from .time_to_target import new_state


@dataclass
class RunProgress:
    """Where a run stands: saved whole in last_<run>.pth (``asdict``) and restored whole on
    resume, so an attempt that continues a checkpoint knows all that the stopped one knew."""

    epoch: int = 1                      # the epoch in progress (1-based)
    step_in_epoch: int = 0              # training steps of that epoch already done
    history: list = field(default_factory=list)   # one row per finished epoch
    best: dict = field(default_factory=lambda: {"epoch": None, "val_miou": None, "val_loss": None})
    elapsed_s: float = 0.0              # synchronised training + evaluation time, all attempts
    train_s: float = 0.0
    eval_s: float = 0.0
    eval_warmup_s: float = 0.0          # compiling/autotuning evaluation's shapes, before training
    earlier_wall_s: float = 0.0         # wall time of earlier attempts (before a requeue)
    time_to_best_s: float | None = None
    # [after forward, after optimizer step] GB allocated, every log_every measured steps
    memory_phases_gb: list = field(default_factory=list)
    attempts: int = 1
    started_at: str = field(default_factory=utc_now)
    partial: dict | None = None         # sums over all ranks of an epoch interrupted mid-way
    test: dict | None = None            # test metrics, once the run has completed
    replicas_identical: bool | None = None   # several ranks: checked once, at the end
    quality: dict = field(default_factory=new_state)   # time to target (time_to_target.py)
    overlays: dict | None = None        # predictions on fixed test images (overlays.py)

    @classmethod
    def continued(cls, saved, path: Path) -> "RunProgress":
        """The progress a checkpoint saved, as the next attempt continues it."""
        if not isinstance(saved, dict) or set(saved) != {f.name for f in fields(cls)}:
            raise UserError(f"checkpoint {path} was written by another version of unetbench; "
                            "delete it to start fresh")
        progress = cls(**saved)
        progress.attempts += 1
        return progress
