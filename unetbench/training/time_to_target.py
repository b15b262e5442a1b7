"""Time to quality: when validation mIoU first reaches --target-miou, MLPerf-style.

    python3 unet_cpu.py --target-miou 0.5 --eval-every 20 --stop-at-target

The trainer asks ``TimeToTarget`` after every training step whether an evaluation is due
(``--eval-every N`` steps, for a finer resolution than one epoch) and reports every validation
to it (``observe``). The time recorded is the run's synchronised elapsed time: training
windows plus every evaluation, as MLPerf Training counts it; compilation before training and
the evaluation warm-up are not in it. Every validation is kept as a quality curve (elapsed
seconds, validation mIoU). With ``--stop-at-target`` training ends at the first validation
that reaches the target, then the test split is evaluated as usual.

The state lives in RunProgress.quality (saved with the checkpoint); ``quality_section`` lays
it out for the results file. This module imports no torch, so results.py can use it.
"""

from __future__ import annotations

from typing import Any


def new_state() -> dict:
    """The part of RunProgress this module owns."""
    return {"curve": [], "reached": None}


class TimeToTarget:
    def __init__(self, trainer: Any):
        self.trainer = trainer
        self.val_loader = None    # set by the trainer once its loaders exist

    @property
    def state(self) -> dict:
        return self.trainer.progress.quality

    @property
    def stop(self) -> bool:
        """Whether training ends here: the target was reached and --stop-at-target asked for it."""
        return bool(self.trainer.s.stop_at_target and self.state["reached"])

    def between_steps(self, step: int, total_steps: int) -> bool:
        """Evaluate on the validation split when --eval-every says so; True to stop training now.
        At an epoch's last step nothing happens: the epoch's own evaluation follows."""
        every = self.trainer.s.eval_every
        if not every or step % every or step >= total_steps:
            return False
        t = self.trainer
        # The training window closes around the evaluation: neither the steady-state figures
        # nor the epoch's training seconds include it; the elapsed time does.
        with t.timer.paused() as epoch_train_s:
            val = t.evaluate(self.val_loader)
            t.train_model.train()
        t.progress.elapsed_s += val["eval_s"]
        self.observe(val["miou"], t.progress.elapsed_s + epoch_train_s, t.progress.epoch, step)
        return self.stop

    def observe(self, val_miou: float | None, elapsed_s: float, epoch: int, step: int) -> None:
        """One validation: a point of the quality curve, and the target when first reached."""
        state = self.state
        state["curve"].append({"epoch": epoch, "step": step, "elapsed_s": elapsed_s, "val_miou": val_miou})
        target = self.trainer.s.target_miou
        if target is None or state["reached"] is not None or val_miou is None or val_miou < target:
            return
        state["reached"] = {"elapsed_s": elapsed_s, "epoch": epoch, "step": step, "val_miou": val_miou}
        self.trainer.say(f"target validation mIoU {target} reached after {elapsed_s:.1f} s "
                         f"(epoch {epoch}, step {step}: {val_miou:.4f})"
                         + ("; stopping (--stop-at-target)" if self.trainer.s.stop_at_target else ""))


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
