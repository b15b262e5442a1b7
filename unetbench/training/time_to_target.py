"""Time to quality: when validation mIoU first reaches --target-miou, MLPerf-style.

    python3 unet_cpu.py --target-miou 0.5 --eval-every 20 --stop-at-target

    quality = TimeToTarget(settings.target_miou, settings.eval_every, settings.stop_at_target, say=print)
    quality.due(step, total_steps)       # after each training step: validate now? (--eval-every)
    stop = quality.observe(progress.quality, val_miou, elapsed_s, epoch, step)   # after each validation

The trainer asks after every training step whether a validation is due (``--eval-every N``
steps, for a finer resolution than one epoch), runs it with the training window paused, and
reports every validation, between steps or at an epoch's end, to ``observe``. The time recorded
is the run's synchronised elapsed time: training windows plus every evaluation, as MLPerf
Training counts it; compilation before training and the evaluation warm-up are not in it.
Every validation is kept as a quality curve (elapsed seconds, validation mIoU). With
``--stop-at-target`` training ends at the first validation that reaches the target, then the
test split is evaluated as usual.

The state is a plain dict, RunProgress.quality (saved with the checkpoint, replaced whole on
resume: so it is handed in at each call, not kept here); ``quality_section`` lays it out for the
results file. This module imports no torch, so results.py can use it.
"""

from __future__ import annotations

from typing import Callable


def new_state() -> dict:
    """The part of RunProgress this module owns."""
    return {"curve": [], "reached": None}


class TimeToTarget:
    def __init__(self, target_miou: float | None, eval_every: int | None, stop_at_target: bool,
                 say: Callable[[str], None] = print):
        self.target_miou = target_miou
        self.eval_every = eval_every
        self.stop_at_target = stop_at_target
        self.say = say

    def due(self, step: int, total_steps: int) -> bool:
        """Whether --eval-every asks for a validation after this training step. Never at an
        epoch's last step: the epoch's own validation follows."""
        return bool(self.eval_every) and step % self.eval_every == 0 and step < total_steps

    def observe(self, state: dict, val_miou: float | None, elapsed_s: float, epoch: int, step: int) -> bool:
        """One validation: a point of the quality curve, and the target when first reached.
        True when training ends here: the target was reached and --stop-at-target asked for it."""
        state["curve"].append({"epoch": epoch, "step": step, "elapsed_s": elapsed_s, "val_miou": val_miou})
        target = self.target_miou
        if target is not None and state["reached"] is None and val_miou is not None and val_miou >= target:
            state["reached"] = {"elapsed_s": elapsed_s, "epoch": epoch, "step": step, "val_miou": val_miou}
            self.say(f"target validation mIoU {target} reached after {elapsed_s:.1f} s "
                     f"(epoch {epoch}, step {step}: {val_miou:.4f})"
                     + ("; stopping (--stop-at-target)" if self.stop_at_target else ""))
        return bool(self.stop_at_target and state["reached"])


def quality_section(state: dict, settings: dict) -> dict:
    """The results file's "quality" object (schema: results.schema.json)."""
    reached = state["reached"]
    return {
        "target_miou": settings.get("target_miou"),
        "eval_every": settings.get("eval_every"),
        "stop_at_target": bool(settings.get("stop_at_target")),
        "reached": reached is not None,
        "time_to_target_s": reached["elapsed_s"] if reached else None,
        "target_epoch": reached["epoch"] if reached else None,
        "target_step": reached["step"] if reached else None,
        "curve": state["curve"],
    }
