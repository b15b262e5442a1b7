"""The one training loop, shared by every backend.

    python3 -m unetbench.launch --backend cpu --splits data/dataset_splits.json --epochs 2
    python3 unet_cuda.py --profile fast             # the same loop through an entry point
    code = Trainer(settings, backend).run()         # from Python: the benchmark and tests do this
    Trainer(settings, backend, dist, outputs=claimed, stop=installed).run()   # what launch.py does

Writes OUT/results_<run>.json (assembled by results.py; schema: unetbench/training/schema/results.schema.json),
OUT/best_unet_<run>.pth, a resumable OUT/last_<run>.pth and OUT/overlays_<run>.npz. run() returns
0 when completed and 3 when a stop signal arrived (checkpoint saved: rerun with --auto-resume);
bad input is a UserError (exit 2). launch.py parses the command line, forms the process group,
claims the outputs, hands in the stop request the command installed before importing torch, and
records a failure once the run has started.

The trainer owns the run's data, model, optimiser and progress, and hands each collaborator what
it needs: the step timer and what hangs on its boundaries (timing.py, boundary_hooks.py), the
evaluator (evaluation.py), time to target (time_to_target.py), the overlays (overlays.py), the
outputs (run_outputs.py) and the run's saved state (run_state.py). See docs/training.md.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import EXIT_INTERRUPTED, EXIT_OK, UserError
from ..core.overlay_file import overlays_path
from ..core.parsing import check_crop_for_models
from ..core.progress_bar import Progress
from ..core.registry import MODELS, lookup, resolve
from ..core.settings import Settings
from ..data.array_stamps import verify_changed_arrays
from ..data.loaders import (
    DeviceTransform,
    ResumableSampler,
    ShardSampler,
    SplitArrays,
    feed,
    flip_key,
    make_loader,
)
from ..data.prepared import SPLITS, load_splits
from ..models.flops import flops_per_sample
from ..models.unet import count_parameters
from ..models.weights import load_weights
from . import checkpoint as ckpt
from .boundary_hooks import instrument
from .distributed import DistContext
from .environment import environment
from .epoch_sums import EpochSums
from .evaluation import Evaluator
from .health import LossHealth
from .memory_phases import MemoryPhases
from .metrics import ConfusionMatrix
from .overlays import write_overlays
from .peak import describe as describe_peak
from .peak import run_peak
from .results import build_results
from .run_outputs import RunOutputs
from .run_state import RunProgress
from .stop_signals import (
    StopRequest,
    end_workers_at_exit,
    ignore_stop_signals,
    nothing_to_save,
    stop_signals_held,
)
from .time_to_target import TimeToTarget
from .timing import StepTimer, TimingTotals
from .units import eval_unit, train_unit

STOP_CHECK_EVERY = 10  # steps between collective stop checks when several ranks train


class Interrupted(Exception):
    """Raised inside the loop when a stop signal arrived; the caller saves the state."""


class Trainer:
    def __init__(self, settings: Settings, backend, dist: DistContext | None = None, clock=time.perf_counter, *,
                 outputs: RunOutputs | None = None, stop: StopRequest | None = None):
        """``outputs``: where results go, claimed by the caller (launch.py, the benchmark); by
        default OUT and the run name of ``settings``, unclaimed. ``stop``: the request the
        command installed before importing torch; by default one that no signal sets."""
        self.s = settings
        self.backend = backend
        self.dist = dist or DistContext.single()
        self.clock = clock
        self.wall_t0 = clock()
        self.outputs = outputs or RunOutputs.of(settings, backend.name)
        self.best_path, self.last_path = ckpt.checkpoint_paths(self.outputs.out, self.outputs.run_name)
        self.stop = stop or StopRequest()
        self.progress = RunProgress()   # replaced whole by resume()
        self.time_to_target = TimeToTarget(settings.target_miou, settings.eval_every, settings.stop_at_target,
                                           self.say)

        # The data first: a dataset the model cannot take, or too small for one batch, is
        # refused with one line before anything is built.
        self.splits = load_splits(settings.splits)
        model_spec = lookup(MODELS, settings.model, "model")
        check_crop_for_models(self.splits.crop, f"dataset {self.splits.path} has crops of", models=[settings.model])
        if settings.batch_size < model_spec.min_batch:
            raise UserError(f"the {settings.model} model needs --batch-size {model_spec.min_batch} or more per "
                            "device (BatchNorm over a pooled 1x1 map needs two samples)")
        self.data = {name: SplitArrays(self.splits, name) for name in SPLITS}
        verify_changed_arrays(self.splits)  # sha256 of the arrays changed since last verified
        if len(self.data["train"]) < settings.batch_size * self.dist.world_size:
            raise UserError(f"the train split has {len(self.data['train'])} samples, fewer than one batch of "
                            f"{settings.batch_size} per device; lower --batch-size or prepare more images")
        self._warn_if_nothing_is_measured()

        # Compiled kernels are kept across runs of the suite: the second run's warm-up shrinks.
        # Before the first compile (and before the environment is collected, which records it).
        self.backend.use_compile_cache(settings.compile_cache or self.outputs.out / "compile_cache")

        # Model, optimiser and schedule; seeded, so every backend starts from the same weights.
        seed_everything(settings.seed)
        self.model = self._build_model(model_spec.builder)
        self.model_facts = {  # the results' "model"
            "name": model_spec.title, "key": model_spec.name, "parameters": count_parameters(self.model),
            "width": settings.model_width,
            "bytes": sum(t.numel() * t.element_size() for t in self.model.state_dict().values()),
            "flops_per_sample": flops_per_sample(settings.model, *self.splits.crop, self.splits.num_classes,
                                                 base=settings.model_width)}
        self.optimizer = backend.make_optimizer(self.model.parameters(), settings.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=settings.lr_factor, patience=settings.lr_patience)
        self.train_model: nn.Module = self.model  # the compiled (and DDP) training unit once build_units() ran
        self.eval_model: nn.Module = self.model   # the compiled evaluation unit once build_units() ran

        # Feeding, timing and evaluating the device.
        self.transform = DeviceTransform(backend.device, backend.memory_format, pinned=backend.loader_pinning)
        self.stream = backend.side_stream()
        self.timer = StepTimer(self._aligned_sync, backend.new_event, settings.warmup_steps, clock=clock)
        self.health = LossHealth(backend.device, settings.nonfinite_patience)  # NaN/inf loss, read per epoch
        self.evaluator = Evaluator(backend, self.transform, self.stream, self.timer, self.dist, self.splits.num_classes,
                                   self.splits.ignore_index, self.splits.class_names, clock)
        # Energy per window and the profiler, at the timer's synchronised boundaries.
        self.tracer, self.energy = instrument(self.timer, backend, self.outputs.out, self.outputs.run_name,
                                              settings.trace_steps, self.dist)
        # Device memory: the peak restarts where the first steady window opens; sampled steps'
        # high and low phases (memory_phases.py).
        self.memory = MemoryPhases(backend)
        self.timer.hooks.append(self.memory.hook)
        self.started = False            # True once run() has written results: a failure is then recorded
        self.peak: dict | None = None   # the device's matmul peak, measured by run() (peak.py)
        # Collected once: it runs git and nvidia-smi/hl-smi, and results are written every epoch.
        self.environment = environment(backend)

    def _warn_if_nothing_is_measured(self) -> None:
        """Warm-up and traced steps are in no throughput figure: a run they use up whole trains
        but measures nothing, which is said before it starts, not found in an empty results file."""
        s = self.s
        per_epoch = len(self.data["train"]) // (s.batch_size * self.dist.world_size)
        if s.max_steps_per_epoch:
            per_epoch = min(per_epoch, s.max_steps_per_epoch)
        total = per_epoch * s.epochs
        if s.warmup_steps + s.trace_steps >= total:
            self.say(f"warning: --warmup-steps {s.warmup_steps} and --trace-steps {s.trace_steps} take all "
                     f"{total} training steps of this run: no step is measured, so it gives no throughput, "
                     "step time or energy per sample; lower them or train longer (--epochs, --max-steps-per-epoch)")

    def release(self) -> None:
        """Before the process exits: drop the compiled and DDP wrappers (they hold the process
        group, which must be destroyed while Python is alive) and stop the energy meter's
        polling thread. The plain model stays usable."""
        self.train_model = self.eval_model = self.model
        self.energy.close()

    def _aligned_sync(self) -> None:
        # Timed boundaries wait for this device and then for every rank, so the clocks of all
        # ranks open and close the same window.
        self.backend.synchronize()
        self.dist.barrier()

    def say(self, line: str) -> None:
        if self.dist.is_main:  # one log per run, not one per rank
            print(line, flush=True)

    def wall_s(self) -> float:
        """Wall time of every attempt of this run so far."""
        return self.progress.earlier_wall_s + (self.clock() - self.wall_t0)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> int:
        if self._stop_requested():  # a signal during imports or the build: exit 3, so a job requeues
            self.say(nothing_to_save(self.stop, self.last_path))
            return EXIT_INTERRUPTED
        if self.s.resume or (self.s.auto_resume and self.last_path.exists()):
            self.resume(self.last_path)
        self.build_units()
        # The device's own ceiling, before warm-up and before the memory peaks are reset: its
        # operands are in no memory figure, its seconds in total_wall_s only.
        self.peak = run_peak(self.backend, self.dist, "--no-peak was given" if self.s.no_peak else None)
        self.say(describe_peak(self.peak))
        sampler, train_loader, eval_loaders = self._loaders()
        # After the peak's seconds of matmuls, as Zeus orders it: cool down (--cooldown-s), then
        # read the idle baseline (W), then warm up and measure.
        self.energy.rest(self.s.cooldown_s, self.s.idle_s, self._aligned_sync)
        self.started = True  # from here on a failure is recorded in the results file
        self.write("running")
        self.progress.eval_warmup_s += self.evaluator.warm_up(self.eval_model, eval_loaders.values(),
                                                              self.splits.crop)
        cm = ConfusionMatrix(self.splits.num_classes, self.backend.device, self.splits.ignore_index)
        try:
            while self.progress.epoch <= self.s.epochs:
                cm.reset()
                train = self.train_epoch(sampler, train_loader, eval_loaders["val"], cm)
                val = self._evaluate(eval_loaders["val"])
                if self._end_epoch(train, val):
                    break  # --stop-at-target: the target is reached
                if self._stop_requested():
                    raise Interrupted()
        except Interrupted:
            return self._leave_interrupted()
        if self.dist.world_size > 1:  # before the test loads the best weights into every replica
            self.progress.replicas_identical = self.dist.replicas_identical(self.model)
        self.progress.test = self._test(eval_loaders["test"])
        if self.dist.is_main:  # the best weights are loaded now
            self.progress.overlays = write_overlays(overlays_path(self.outputs.out, self.outputs.run_name),
                                                    self.s.overlay_images, self.data["test"], self.splits,
                                                    self.model, self.backend, self.transform)
        self.write("completed")
        self.say(f"completed: results in {self.outputs.results}")
        return EXIT_OK

    def _leave_interrupted(self) -> int:
        p = self.progress
        self.save_last()
        self.write("interrupted", f"stopped by {self.stop.signal_name or 'signal'} at epoch {p.epoch} "
                                  f"step {p.step_in_epoch}; rerun with --auto-resume to continue")
        self.say(f"interrupted by {self.stop.signal_name}: checkpoint saved to {self.last_path}")
        # Ranks leave together: under srun --kill-on-bad-exit an early exit (code 3) of
        # rank 1 would kill rank 0 while it still writes the checkpoint and results.
        self.dist.barrier()
        return EXIT_INTERRUPTED

    # -- building ---------------------------------------------------------------------------
    def _build_model(self, builder: str) -> nn.Module:
        model = resolve(builder)(3, self.splits.num_classes, self.s.model_width)
        if self.s.weights:   # before the device move: the file is read on the host
            self.say(load_weights(model, self.s.weights, self.s.model, self.splits.num_classes))
        return self.backend.prepare_model(model)

    def build_units(self) -> None:
        """The compiled units over the model: training's (DDP-wrapped with several ranks) and
        evaluation's. After a resume has loaded the weights: DDP copies rank 0's weights to every
        rank when it wraps the model."""
        self.train_model = self._train_forward()
        self.eval_model = self._eval_forward()

    def _train_forward(self) -> nn.Module:
        return train_unit(self.model, self.backend, self.dist, self.splits.num_classes, self.splits.ignore_index)

    def _eval_forward(self) -> nn.Module:
        return eval_unit(self.model, self.backend, self.splits.ignore_index)

    def _loaders(self):
        s, d = self.s, self.dist
        train_sampler = ResumableSampler(self.data["train"], d.world_size, d.rank, shuffle=True,
                                         seed=s.seed, drop_last=True)
        # drop_last on training keeps every step the same shape: no recompilation on HPU or
        # with torch.compile, and the same number of samples on every backend.
        train = self._loader("train", train_sampler, s.workers, drop_last=True)
        evals = {name: self._loader(name, ShardSampler(len(self.data[name]), d.world_size, d.rank),
                                    min(s.workers, 2), drop_last=False)
                 for name in SPLITS if name != "train"}
        return train_sampler, train, evals

    def _loader(self, split: str, sampler, workers: int, drop_last: bool):
        # Workers ignore the stop signals (this process checkpoints first), so they are shut
        # down in order at exit rather than by multiprocessing's SIGTERM (stop_signals.py).
        loader = make_loader(self.data[split], self.s.batch_size, sampler, workers, self.backend.loader_pinning,
                             drop_last=drop_last, seed=self.s.seed, worker_init_fn=ignore_stop_signals,
                             worker_start=stop_signals_held)
        return end_workers_at_exit(loader)

    # -- checkpoint -------------------------------------------------------------------------
    def _identity(self) -> dict:
        """What a checkpoint must share with this run to be continued by it."""
        return {"splits_sha256": self.splits.sha256, "settings": asdict(self.s),
                "backend": self.backend.name, "profile": self.s.profile}

    def _checkpoint(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            # The wall time so far is what the attempt that continues this one comes after.
            "progress": asdict(replace(self.progress, earlier_wall_s=self.wall_s())),
            "timing": self.timer.totals.state_dict(),
            "energy": self.energy.ranks,
            "rng": {"host": ckpt.host_rng_state(), "device": self.backend.rng_state()},
            "identity": self._identity(),
        }

    def save_last(self) -> None:
        if self.dist.is_main:
            ckpt.save_checkpoint(self.last_path, self._checkpoint())

    def resume(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        ckpt.check_identity(state, path, self._identity())
        self.progress = RunProgress.continued(state.get("progress"), path)
        ckpt.restore(self.model, state["model"], path, "model weights")
        ckpt.restore(self.optimizer, state["optimizer"], path, "optimizer state")
        ckpt.restore(self.scheduler, state["scheduler"], path, "learning-rate schedule")
        self.timer.totals = TimingTotals.from_state(state["timing"])
        self.energy.restore(state.get("energy"))
        ckpt.set_host_rng_state(state["rng"]["host"])
        self.backend.set_rng_state(state["rng"]["device"])
        p = self.progress
        self.say(f"resumed from {path}: epoch {p.epoch}, step {p.step_in_epoch} (attempt {p.attempts})")

    # -- one training step, one epoch -------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor, cm: ConfusionMatrix, sample_memory: bool = False) -> None:
        """One optimiser step on a device batch; adds its confusion counts to ``cm`` and its loss
        to the epoch's record (health.py). The benchmark's compute-only part times this very
        method (unetbench/training/bench.py)."""
        self.memory.before_step(sample_memory)   # lazy Gaudi: the step's own peak starts here
        # Forward: loss, its value and the batch's confusion counts from one graph (compiled
        # in the fast profile).
        with self.backend.autocast():
            loss, loss_value, counts = self.train_model(x, y)
        # Memory at the step's high phase, the forward's activations held.
        self.memory.after_forward(sample_memory)

        # Metrics from the same forward pass, kept on the device (no host sync): three small
        # ops outside the compiled graph (the counts' add, the loss into its slot and the
        # slot's counter); the carry of the counts' low part runs only every few hundred steps.
        cm.add_counts(counts, y.numel())
        self.health.observe(loss_value)

        # Backward and update. Lazy HPU cuts its graph after each; other devices do nothing.
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.backend.step_boundary()
        self.optimizer.step()
        self.backend.step_boundary()
        # ... and at its low phase: weights, gradients and optimizer state only.
        phases = self.memory.after_step(sample_memory)
        if phases is not None:
            self.progress.memory_phases_gb.append(phases)

    def train_epoch(self, sampler: ResumableSampler, loader, val_loader, cm: ConfusionMatrix) -> dict:
        """The epoch in progress, from the step an earlier attempt stopped at; its loss and
        metrics over every rank. ``val_loader``: for validations between steps (--eval-every).
        Raises Interrupted, the partial sums kept, on a stop signal."""
        p = self.progress
        sampler.set_epoch(p.epoch)
        total_steps = sampler.num_samples // self.s.batch_size
        if self.s.max_steps_per_epoch:
            total_steps = min(total_steps, self.s.max_steps_per_epoch)
        sampler.skip = p.step_in_epoch * self.s.batch_size  # resume mid-epoch on unseen samples
        sums = EpochSums.continuing(p.partial, cm, self.backend.device, self.dist)
        p.partial = None

        self.train_model.train()
        bar = Progress(total_steps, f"epoch {p.epoch}/{self.s.epochs}", self.s.log_every, enabled=self.dist.is_main)
        epoch, seed, rank = p.epoch, self.s.seed, self.dist.rank
        batches = feed(iter(loader), range(p.step_in_epoch, total_steps), self.transform, self.stream,
                       self.clock, key=lambda step: flip_key(seed, epoch, step, rank))
        self.timer.epoch_start()
        self.health.epoch_start(p.epoch, p.step_in_epoch, total_steps)
        stopped = False
        while p.step_in_epoch < total_steps:
            self.timer.step_start()
            # Data: the next batch, on the device, normalised and flipped (on CUDA it was copied
            # on a side stream while the previous step ran).
            x, y, data_wait_s = next(batches)
            self.timer.add_data_wait(data_wait_s)

            # Memory is sampled on measured steps only: warm-up holds compiler and autotuning
            # workspaces that steady state does not.
            sample_memory = self.timer.measuring and (p.step_in_epoch + 1) % self.s.log_every == 0
            self.train_step(x, y, cm, sample_memory)

            # Bookkeeping: step time, position (what a checkpoint resumes from), progress line.
            self.timer.step_end(x.shape[0])
            p.step_in_epoch += 1
            sums.samples += x.shape[0]
            bar.update(x.shape[0])
            if self.time_to_target.due(p.step_in_epoch, total_steps) and self._validate_between_steps(val_loader):
                break  # target reached with --stop-at-target: the epoch ends here

            # Stop: a signal ends the epoch here, at a step every rank agrees on.
            if self._stop_requested(p.step_in_epoch):
                stopped = True
                break
        bar.close()
        attempt_s = self.timer.epoch_end()
        self.health.check(self.dist)  # after the epoch's synchronisation: no extra wait
        # Every step has the same batch (drop_last): the summed step losses x batch = the loss sum.
        sums.loss_sum += self.health.loss_sum() * self.s.batch_size
        p.train_s += attempt_s
        sums.seconds += attempt_s
        if stopped:
            p.elapsed_s += attempt_s
            p.partial = sums.over_all_ranks()
            raise Interrupted()
        return sums.metrics(self.splits.class_names, attempt_s)

    def _validate_between_steps(self, val_loader) -> bool:
        """--eval-every: validate now, counted in the elapsed time to quality; True when training
        ends here (--stop-at-target, the target reached)."""
        p = self.progress
        # The training window closes around the evaluation: neither the steady-state figures
        # nor the epoch's training seconds include it; the elapsed time does.
        with self.timer.paused() as epoch_train_s:
            val = self._evaluate(val_loader)
            self.train_model.train()
        p.elapsed_s += val["eval_s"]
        elapsed_s = p.elapsed_s + epoch_train_s
        return self.time_to_target.observe(p.quality, val["miou"], elapsed_s, p.epoch, p.step_in_epoch)

    def _stop_requested(self, step: int | None = None) -> bool:
        if self.dist.world_size == 1:
            return self.stop.requested
        # Every rank must stop at the same step, or the others would hang in the next
        # all-reduce. The ranks agree on the host (gloo, CPU tensors): no device tensor, no read
        # back, so the device queue is not drained. Agreeing still makes the host threads wait
        # for each other, so it happens every few steps only (Slurm signals minutes ahead).
        if step is not None and step % STOP_CHECK_EVERY:
            return False
        return self.dist.any_rank(self.stop.requested)

    # -- evaluation and the end of an epoch ---------------------------------------------------
    def _evaluate(self, loader) -> dict:
        """The model over a split (evaluation.py); its synchronised seconds join the run's eval_s."""
        metrics = self.evaluator.evaluate(self.model, self.eval_model, loader)
        self.progress.eval_s += metrics["eval_s"]
        return metrics

    def _end_epoch(self, train: dict, val: dict) -> bool:
        """Record the epoch, keep the best weights, checkpoint; True when training ends here
        (--stop-at-target, the target reached)."""
        p = self.progress
        self.scheduler.step(val["loss"])
        p.elapsed_s += train["attempt_s"] + val["eval_s"]
        target_reached = self.time_to_target.observe(p.quality, val["miou"], p.elapsed_s, p.epoch, p.step_in_epoch)
        p.history.append({
            "epoch": p.epoch,
            "train_loss": train["loss"], "train_accuracy": train["accuracy"],
            "train_miou": train["miou"], "train_f1": train["f1"],
            "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_miou": val["miou"],
            "val_f1": val["f1"], "val_samples": val["samples"], "lr": self.optimizer.param_groups[0]["lr"],
            "epoch_s": train["epoch_s"], "eval_s": val["eval_s"],
            "samples_per_s": train["samples"] / train["epoch_s"] if train["epoch_s"] > 0 else None,
            "elapsed_s": p.elapsed_s})
        if val["miou"] is not None and (p.best["val_miou"] is None or val["miou"] > p.best["val_miou"]):
            self._keep_best(val)
        self.say(f"epoch {p.epoch}/{self.s.epochs}: train loss {train['loss']:.4f} mIoU {_fmt(train['miou'])} | "
                 f"val loss {_fmt(val['loss'])} mIoU {_fmt(val['miou'])} acc {_fmt(val['accuracy'])} | "
                 f"{train['epoch_s']:.1f} s train, {val['eval_s']:.1f} s eval")
        p.epoch += 1
        p.step_in_epoch = 0
        self.save_last()
        self.write("running")
        return target_reached

    def _keep_best(self, val: dict) -> None:
        p = self.progress
        p.best = {"epoch": p.epoch, "val_miou": val["miou"], "val_loss": val["loss"]}
        p.time_to_best_s = p.elapsed_s
        if self.dist.is_main:
            ckpt.save_checkpoint(self.best_path, {"model": self.model.state_dict(), "epoch": p.epoch,
                                                  "val_miou": val["miou"], "num_classes": self.splits.num_classes,
                                                  "class_names": self.splits.class_names})

    def _test(self, loader) -> dict:
        self.dist.barrier()  # rank 0 must have finished writing the best checkpoint
        if self.best_path.exists():
            # Test metrics come from the best-validation weights, as the seed reported them.
            # Copied into the model in place (training is over; last_<run>.pth keeps the final
            # weights), so the compiled evaluation unit runs them without recompiling.
            self.model.load_state_dict(ckpt.load_checkpoint(self.best_path)["model"])
        metrics = self._evaluate(loader)
        metrics["checkpoint"] = str(self.best_path) if self.best_path.exists() else None
        metrics.pop("eval_s", None)
        return metrics

    # -- results ----------------------------------------------------------------------------
    def write(self, status: str, message: str | None = None) -> None:
        if self.dist.is_main:
            self.outputs.write(status, self.results(status, message))

    def results(self, status: str, message: str | None = None) -> dict:
        """The results document as the run stands (laid out by results.build_results)."""
        return build_results(
            status, message, progress=self.progress,
            run={"run_name": self.outputs.run_name, "backend": self.backend.name, "profile": self.s.profile,
                 "environment": self.environment, "settings": asdict(self.s), "dataset": self.splits.identity()},
            model=self.model_facts,
            distributed=self.dist.describe(self.s.batch_size),
            timing=self.timer.summary(samples_scale=self.dist.world_size),
            memory=self.memory.figures(), wall_s=self.wall_s(),
            checkpoints={"best": self.best_path, "last": self.last_path},
            energy=self.energy.ranks, trace=self.tracer.summary, peak=self.peak)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA/HPU device generator


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
