"""The one training loop, shared by every backend.

    python3 -m unetbench.train --backend cpu --splits data/dataset_splits.json --epochs 2
    python3 unet_cuda.py --profile fast             # the same loop through an entry point

Writes OUT/results_<run>.json (schema: unetbench/schema/results.schema.json),
OUT/best_unet_<run>.pth and a resumable OUT/last_<run>.pth. Exit codes: 0 completed,
2 bad input or missing device, 3 interrupted by SIGUSR1/SIGTERM (checkpoint saved: rerun
with --auto-resume), 1 unexpected failure. See docs/training.md.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt
from .config import Settings
from .data import DeviceTransform, ResumableSampler, ShardSampler, SplitArrays, feed, flip_key, load_splits, make_loader
from .distributed import DistContext
from .errors import EXIT_INTERRUPTED, EXIT_OK, UserError, run_cli
from .interrupt import StopRequest
from .metrics import ConfusionMatrix, summarize
from .model import TrainForward, UNet, count_parameters, flops_per_sample
from .progress import Progress
from .results import environment, results_path, utc_now, write_results
from .timing import StepTimer, TimingTotals

log = logging.getLogger(__name__)
GB = 1e9
STOP_CHECK_EVERY = 10  # steps between collective stop checks when several ranks train


class Interrupted(Exception):
    """Raised inside the loop when a stop signal arrived; the state is already saved."""


class Trainer:
    def __init__(self, settings: Settings, backend, dist: DistContext | None = None, clock=time.perf_counter):
        self.s = settings
        self.backend = backend
        self.dist = dist or DistContext.single()
        self.clock = clock
        self.wall_t0 = clock()
        self.run_name = settings.run_name or backend.name
        self.out = Path(settings.out)
        self.results_file = results_path(self.out, self.run_name)
        self.best_path, self.last_path = ckpt.checkpoint_paths(self.out, self.run_name)
        self.started_at = utc_now()
        self.stop = StopRequest()  # handlers are installed only while run() runs

        self.splits = load_splits(settings.splits)
        self.data = {name: SplitArrays(self.splits, name) for name in ("train", "val", "test")}
        if len(self.data["train"]) < settings.batch_size * self.dist.world_size:
            raise UserError(f"the train split has {len(self.data['train'])} samples, fewer than one batch of "
                            f"{settings.batch_size} per device; lower --batch-size or prepare more images")
        self._seed_everything(settings.seed)
        self.model = backend.prepare_model(UNet(3, self.splits.num_classes, self.s.model_width))
        self.parameters = count_parameters(self.model)
        self.flops_per_sample = flops_per_sample(*self.splits.crop, self.splits.num_classes, base=settings.model_width)
        self.optimizer = backend.make_optimizer(self.model.parameters(), settings.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=settings.lr_factor, patience=settings.lr_patience)
        ignore = self.splits.ignore_index
        self.criterion = nn.CrossEntropyLoss(ignore_index=ignore if ignore is not None else -100)
        self.transform = DeviceTransform(backend.device, backend.memory_format, non_blocking=backend.pin_memory)
        self.stream = backend.side_stream()

        # Progress state: everything below is saved in last_<run>.pth and restored on resume.
        self.epoch = 1                 # the epoch in progress (1-based)
        self.step_in_epoch = 0         # training steps of that epoch already done
        self.history: list[dict] = []
        self.best = {"epoch": None, "val_miou": None, "val_loss": None}
        self.elapsed_s = 0.0           # synchronised training + evaluation time, all attempts
        self.train_s = 0.0
        self.eval_s = 0.0
        self.wall_before_s = 0.0       # wall time of earlier attempts (before a requeue)
        self.time_to_best_s = None
        self.memory_samples: list[float] = []
        self.partial = None            # accumulators of an epoch interrupted mid-way
        self.attempts = 1
        self.timer = StepTimer(self._aligned_sync, backend.new_event, settings.warmup_steps, clock=clock)
        self.train_model = self.model  # replaced by the compiled/DDP wrapper in run()
        self.started = False
        # Collected once: it runs git and nvidia-smi/hl-smi, and results are written every epoch.
        self.environment = environment(backend)

    def _aligned_sync(self) -> None:
        # Timed boundaries wait for this device and then for every rank, so the clocks of all
        # ranks open and close the same window.
        self.backend.synchronize()
        self.dist.barrier()

    def say(self, line: str) -> None:
        if self.dist.is_main:  # one log per run, not one per rank
            print(line, flush=True)

    # -- setup ------------------------------------------------------------------------------
    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # also seeds every CUDA/HPU device generator

    def _loaders(self):
        s, d = self.s, self.dist
        train_sampler = ResumableSampler(self.data["train"], d.world_size, d.rank, shuffle=True,
                                         seed=s.seed, drop_last=True)
        # drop_last on training keeps every step the same shape: no recompilation on HPU or
        # with torch.compile, and the same number of samples on every backend.
        train = make_loader(self.data["train"], s.batch_size, train_sampler, s.workers,
                            self.backend.pin_memory, drop_last=True, seed=s.seed)
        evals = {name: make_loader(self.data[name], s.batch_size,
                                   ShardSampler(len(self.data[name]), d.world_size, d.rank),
                                   min(s.workers, 2), self.backend.pin_memory, drop_last=False, seed=s.seed)
                 for name in ("val", "test")}
        return train_sampler, train, evals

    def steps_per_epoch(self, loader_steps: int) -> int:
        cap = self.s.max_steps_per_epoch
        return min(loader_steps, cap) if cap else loader_steps

    # -- checkpoint -------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "progress": {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "history": self.history,
                         "best": self.best, "elapsed_s": self.elapsed_s, "train_s": self.train_s,
                         "eval_s": self.eval_s, "time_to_best_s": self.time_to_best_s,
                         "wall_s": self.wall_before_s + (self.clock() - self.wall_t0),
                         "memory_samples": self.memory_samples, "attempts": self.attempts,
                         "started_at": self.started_at},
            "partial": self.partial,
            "timing": self.timer.totals.state_dict(),
            "rng": {"host": ckpt.host_rng_state(), "device": self.backend.rng_state()},
            "identity": {"splits_sha256": self.splits.sha256, "settings": asdict(self.s),
                         "backend": self.backend.name, "profile": self.s.profile},
        }

    def save_last(self) -> None:
        if self.dist.is_main:
            ckpt.save_checkpoint(self.last_path, self._state())

    def resume(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path)
        ident = state.get("identity", {})
        if ident.get("splits_sha256") != self.splits.sha256:
            raise UserError(f"checkpoint {path} was trained on a different dataset split file; "
                            "delete it or use another --run-name/--out")
        for key in ("batch_size", "profile", "epochs", "lr", "seed", "model_width"):
            if ident.get("settings", {}).get(key) != getattr(self.s, key):
                raise UserError(f"checkpoint {path} used {key}={ident['settings'].get(key)!r}, this run "
                                f"{getattr(self.s, key)!r}; resume with the same settings or start fresh")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        p = state["progress"]
        self.epoch, self.step_in_epoch = p["epoch"], p["step_in_epoch"]
        self.history, self.best = p["history"], p["best"]
        self.elapsed_s, self.train_s, self.eval_s = p["elapsed_s"], p["train_s"], p["eval_s"]
        self.time_to_best_s, self.wall_before_s = p["time_to_best_s"], p["wall_s"]
        self.memory_samples, self.attempts = p["memory_samples"], p["attempts"] + 1
        self.started_at = p["started_at"]
        self.partial = state["partial"]
        self.timer.totals = TimingTotals.from_state(state["timing"])
        ckpt.set_host_rng_state(state["rng"]["host"])
        self.backend.set_rng_state(state["rng"]["device"])
        self.say(f"resumed from {path}: epoch {self.epoch}, step {self.step_in_epoch} (attempt {self.attempts})")

    # -- one epoch --------------------------------------------------------------------------
    def train_epoch(self, sampler: ResumableSampler, loader, cm: ConfusionMatrix) -> dict:
        sampler.set_epoch(self.epoch)
        total_steps = self.steps_per_epoch(sampler.num_samples // self.s.batch_size)
        sampler.skip = self.step_in_epoch * self.s.batch_size  # resume mid-epoch on unseen samples
        device = self.backend.device
        loss_sum = torch.zeros((), dtype=torch.float32, device=device)  # float32: Gaudi has no float64
        samples = 0
        epoch_s = 0.0
        if self.partial:  # an interrupted epoch: continue its accumulators
            epoch_s = self.partial["epoch_s"]
            if self.dist.is_main:  # the saved sums already cover every rank (see below)
                loss_sum += self.partial["loss_sum"]
                cm.add_(self.partial["confusion"])
                samples = self.partial["samples"]
            self.partial = None

        self.train_model.train()
        progress = Progress(total_steps, f"epoch {self.epoch}/{self.s.epochs}", self.s.log_every,
                            enabled=self.dist.is_main)
        epoch, seed, rank = self.epoch, self.s.seed, self.dist.rank
        device_batches = feed(iter(loader), range(self.step_in_epoch, total_steps), self.transform, self.stream,
                              self.clock, key=lambda step: flip_key(seed, epoch, step, rank))
        self.timer.epoch_start()
        interrupted = False
        while self.step_in_epoch < total_steps:
            self.timer.step_start()
            x, y, data_wait_s = next(device_batches)
            self.timer.add_data_wait(data_wait_s)
            batch = x.shape[0]

            with self.backend.autocast():
                loss, prediction = self.train_model(x, y)
            # Metrics from the same forward pass, accumulated on the device (no host sync).
            cm.update(prediction, y)
            loss_sum += loss.detach().float() * batch
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.backend.step_boundary()   # lazy HPU: cut the graph after backward
            self.optimizer.step()
            self.backend.step_boundary()   # ... and after the optimizer step

            self.timer.step_end(batch)
            self.step_in_epoch += 1
            samples += batch
            progress.update(batch)
            if self.step_in_epoch % self.s.log_every == 0:
                mem = self.backend.memory_bytes()["allocated"]
                if mem is not None:
                    self.memory_samples.append(mem / GB)
            if self._stop_requested(self.step_in_epoch):
                interrupted = True
                break
        progress.close()
        attempt_s = self.timer.epoch_end()
        self.train_s += attempt_s
        epoch_s += attempt_s
        if interrupted:
            self.elapsed_s += attempt_s
            # Only rank 0 saves the checkpoint, so it saves the sums over all ranks; on resume
            # rank 0 alone adds them back and the epoch's all-reduce counts each sample once.
            counts = torch.tensor([float(samples)], device=device)
            self.partial = {"loss_sum": self.dist.all_reduce_sum(loss_sum.clone()).cpu(),
                            "confusion": self.dist.all_reduce_sum(cm.tensor().clone()).cpu(),
                            "samples": int(self.dist.all_reduce_sum(counts).item()), "epoch_s": epoch_s}
            raise Interrupted()
        total_samples = torch.tensor([float(samples)], dtype=torch.float32, device=device)
        loss_total = self.dist.all_reduce_sum(loss_sum.reshape(1))
        total_samples = self.dist.all_reduce_sum(total_samples)
        metrics = summarize(self.dist.all_reduce_sum(cm.tensor().clone()).cpu().numpy(), self.splits.class_names)
        metrics["loss"] = float(loss_total.item() / max(total_samples.item(), 1.0))
        metrics["epoch_s"] = epoch_s
        metrics["attempt_s"] = attempt_s  # the part of this epoch run by this process
        metrics["samples"] = int(total_samples.item())
        return metrics

    def _stop_requested(self, step: int | None = None) -> bool:
        if self.dist.world_size == 1:
            return self.stop.requested
        # Every rank must stop at the same step, or the others would hang in the next
        # all-reduce. Agreeing costs a host sync, so ranks compare notes every few steps only
        # (Slurm signals minutes ahead of the limit).
        if step is not None and step % STOP_CHECK_EVERY:
            return False
        t = torch.tensor([1.0 if self.stop.requested else 0.0], device=self.backend.device)
        return bool(self.dist.all_reduce_sum(t).item() > 0)

    @torch.no_grad()
    def evaluate(self, loader, model: nn.Module | None = None) -> dict:
        """Loss and metrics over a whole split, each sample once across ranks."""
        model = model or self.model
        self.dist.broadcast_buffers(model)  # one model for every rank's shard
        model.eval()
        device = self.backend.device
        cm = ConfusionMatrix(self.splits.num_classes, device, self.splits.ignore_index)
        loss_sum = torch.zeros(1, dtype=torch.float32, device=device)
        count = torch.zeros(1, dtype=torch.float32, device=device)
        self.backend.synchronize()  # evaluation time must not include queued training work
        t0 = self.clock()
        for images, labels in loader:
            x, y = self.transform(images, labels)
            with self.backend.autocast():
                logits = model(x)
                loss = self.criterion(logits, y)
            cm.update(logits.argmax(1), y)
            loss_sum += loss.float() * x.shape[0]
            count += x.shape[0]
            self.backend.step_boundary()
        self.dist.all_reduce_sum(loss_sum)
        self.dist.all_reduce_sum(count)
        confusion = self.dist.all_reduce_sum(cm.tensor().clone()).cpu().numpy()  # synchronises
        metrics = summarize(confusion, self.splits.class_names)
        metrics["loss"] = float(loss_sum.item() / count.item()) if count.item() else None
        metrics["samples"] = int(count.item())
        self.backend.synchronize()
        seconds = self.clock() - t0
        self.eval_s += seconds
        metrics["eval_s"] = seconds
        return metrics

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> int:
        self.stop = StopRequest.install()
        try:
            return self._run()
        finally:
            self.stop.restore()

    def _run(self) -> int:
        if self.s.resume or (self.s.auto_resume and self.last_path.exists()):
            self.resume(self.last_path)
        if self.backend.compiled:
            # Reuse compiled kernels across runs of the suite: the second run's warm-up shrinks.
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(self.s.compile_cache or self.out / "compile_cache")))
        # Forward, loss and argmax compile as one graph, so the loss fuses with the last layer.
        forward = TrainForward(self.model, self.criterion)
        if self.dist.world_size > 1:
            # Gradients are averaged across ranks in backward; BatchNorm stays per device (its
            # running statistics are broadcast from rank 0), as in PyTorch's DDP examples.
            forward = nn.parallel.DistributedDataParallel(forward, **self.backend.ddp_kwargs())
        self.train_model = self.backend.compile_model(forward)
        sampler, train_loader, eval_loaders = self._loaders()
        self.backend.reset_peak_memory()
        self.started = True  # from here on a failure is recorded in the results file
        self.write("running")
        cm = ConfusionMatrix(self.splits.num_classes, self.backend.device, self.splits.ignore_index)
        try:
            while self.epoch <= self.s.epochs:
                cm.reset()
                train = self.train_epoch(sampler, train_loader, cm)
                val = self.evaluate(eval_loaders["val"])
                self._end_epoch(train, val)
                if self._stop_requested():
                    raise Interrupted()
        except Interrupted:
            self.save_last()
            self.write("interrupted", f"stopped by {self.stop.signal_name or 'signal'} at epoch {self.epoch} "
                                      f"step {self.step_in_epoch}; rerun with --auto-resume to continue")
            self.say(f"interrupted by {self.stop.signal_name}: checkpoint saved to {self.last_path}")
            # Ranks leave together: under srun --kill-on-bad-exit an early exit (code 3) of
            # rank 1 would kill rank 0 while it still writes the checkpoint and results.
            self.dist.barrier()
            return EXIT_INTERRUPTED
        self.test = self._test(eval_loaders["test"])
        self.write("completed")
        self.say(f"completed: results in {self.results_file}")
        return EXIT_OK

    def _end_epoch(self, train: dict, val: dict) -> None:
        self.scheduler.step(val["loss"])
        self.elapsed_s += train["attempt_s"] + val["eval_s"]
        row = {"epoch": self.epoch,
               "train_loss": train["loss"], "train_accuracy": train["accuracy"],
               "train_miou": train["miou"], "train_f1": train["f1"],
               "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_miou": val["miou"],
               "val_f1": val["f1"], "val_samples": val["samples"], "lr": self.optimizer.param_groups[0]["lr"],
               "epoch_s": train["epoch_s"], "eval_s": val["eval_s"],
               "samples_per_s": train["samples"] / train["epoch_s"] if train["epoch_s"] > 0 else None,
               "elapsed_s": self.elapsed_s}
        self.history.append(row)
        improved = val["miou"] is not None and (self.best["val_miou"] is None or val["miou"] > self.best["val_miou"])
        if improved:
            self.best = {"epoch": self.epoch, "val_miou": val["miou"], "val_loss": val["loss"]}
            self.time_to_best_s = self.elapsed_s
            if self.dist.is_main:
                ckpt.save_checkpoint(self.best_path, {"model": self.model.state_dict(), "epoch": self.epoch,
                                                      "val_miou": val["miou"], "num_classes": self.splits.num_classes,
                                                      "class_names": self.splits.class_names})
        self.say(f"epoch {self.epoch}/{self.s.epochs}: train loss {train['loss']:.4f} mIoU {_fmt(train['miou'])} | "
              f"val loss {_fmt(val['loss'])} mIoU {_fmt(val['miou'])} acc {_fmt(val['accuracy'])} | "
              f"{train['epoch_s']:.1f} s train, {val['eval_s']:.1f} s eval")
        self.epoch += 1
        self.step_in_epoch = 0
        self.save_last()
        self.write("running")

    def _test(self, loader) -> dict:
        self.dist.barrier()  # rank 0 must have finished writing the best checkpoint
        model = self.model
        if self.best_path.exists():
            # Test metrics come from the best-validation weights, as the seed reported them.
            best = ckpt.load_checkpoint(self.best_path)
            model = self.backend.prepare_model(UNet(3, self.splits.num_classes, self.s.model_width))
            model.load_state_dict(best["model"])
        metrics = self.evaluate(loader, model)
        metrics["checkpoint"] = str(self.best_path) if self.best_path.exists() else None
        if self.dist.world_size > 1:
            self.replicas_identical = self.dist.replicas_identical(self.model)
        metrics.pop("eval_s", None)
        return metrics

    # -- results ----------------------------------------------------------------------------
    def write(self, status: str, message: str | None = None) -> None:
        if self.dist.is_main:
            write_results(self.results_file, self.results(status, message))

    def results(self, status: str, message: str | None = None) -> dict:
        mem = self.backend.memory_bytes()
        model_bytes = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        timing = self.timer.summary(samples_scale=self.dist.world_size)
        timing.update({
            "total_wall_s": self.wall_before_s + (self.clock() - self.wall_t0),
            "train_s": self.train_s, "eval_s": self.eval_s,
            "epoch_s": [row["epoch_s"] for row in self.history],
            "time_to_best_val_miou_s": self.time_to_best_s,
            "attempts": self.attempts,
            "steady_tflops": (timing["steady_samples_per_s"] * self.flops_per_sample / 1e12
                              if timing["steady_samples_per_s"] else None),
        })
        return {
            "schema_version": 1, "status": status, "message": message, "run_name": self.run_name,
            "backend": self.backend.name, "profile": self.s.profile,
            "started_at": self.started_at, "finished_at": utc_now() if status != "running" else None,
            "environment": self.environment,
            "settings": asdict(self.s),
            "dataset": self.splits.identity(),
            "model": {"name": "UNet", "parameters": self.parameters, "size_gb": model_bytes / GB,
                      "width": self.s.model_width, "gflop_per_sample": self.flops_per_sample / 1e9},
            "distributed": {**self.dist.describe(self.s.batch_size),
                            "replicas_identical": getattr(self, "replicas_identical", None)},
            "timing": timing,
            "memory": {"model_gb": model_bytes / GB,
                       "peak_allocated_gb": _gb(mem["peak_allocated"]), "peak_reserved_gb": _gb(mem["peak_reserved"]),
                       "avg_allocated_gb": float(np.mean(self.memory_samples)) if self.memory_samples else _gb(mem["allocated"]),
                       "source": mem["source"]},
            "history": self.history,
            "best": self.best,
            "test": getattr(self, "test", None),
            "energy": None,
            "checkpoints": {"best": str(self.best_path) if self.best_path.exists() else None,
                            "last": str(self.last_path) if self.last_path.exists() else None},
        }


def _gb(value) -> float | None:
    return None if value is None else value / GB


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    from .launch import main
    run_cli(main)
