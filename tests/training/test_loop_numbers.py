"""The numbers inside the training step (issue 25): what runs outside the compiled unit, where
the memory peak starts, what a step's high phase measures, and the loop-overhead benchmark.

    PATH="$PWD/.venv/bin:$PATH" CI=1 .venv/bin/python -m pytest -q tests/training/test_loop_numbers.py

Real training steps on the CPU; the CPU "compiles" with torch.compile(backend="aot_eager"),
whose compiled region has the same boundary as inductor's (without its C++ build). Stand-ins
where hardware cannot exist here: a backend whose allocator peak is a number it is told, and
the Gaudi stand-in (tests/devices/standin_habana).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, SMALL_SETTINGS, run_script

from unetbench.core.settings import Settings
from unetbench.devices.cpu.backend import CpuBackend
from unetbench.training.metrics import ConfusionMatrix
from unetbench.training.results import GB
from unetbench.training.trainer import Trainer

STANDIN = REPO / "tests" / "devices" / "standin_habana"


def _settings(splits, out, **overrides) -> Settings:
    return Settings(splits=str(splits), out=str(out), **{**SMALL_SETTINGS, "epochs": 1, "max_steps_per_epoch": 3,
                                                         **overrides})


# -- 11: per step only a handful of ops outside the compiled unit ------------------------------
class AotEagerCpu(CpuBackend):
    """The CPU with torch.compile on (aot_eager: the compiled region as inductor draws it)."""

    def __init__(self):
        super().__init__("parity")
        self.compiled = True

    def compile_model(self, model):
        return torch.compile(model, backend="aot_eager", dynamic=False)


def _outside_ops(profiler) -> list[str]:
    """aten ops called from Python (no aten op above them) in no compiled region, autograd
    node or optimizer step: what the loop itself dispatches around the compiled unit."""
    inside = ("Torch-Compiled Region", "CompiledFunction", "autograd::engine", "Optimizer.")
    names = []
    for event in profiler.events():
        if not event.name.startswith("aten::"):
            continue
        chain, parent = [], event.cpu_parent
        while parent is not None:
            chain.append(parent.name)
            parent = parent.cpu_parent
        if not any(name.startswith("aten::") or name.startswith(inside) for name in chain):
            names.append(event.name)
    return names


@pytest.mark.slow  # tracing the UNet with dynamo
def test_a_compiled_training_step_runs_at_most_five_ops_outside_the_compiled_unit(tiny_splits, tmp_path):
    """Before: argmax's index arithmetic, the confusion update (~14 ops), the loss sum and the
    non-finite check (~15) ran eagerly around the unit: about 30 ops per step, each costing
    host time on Gaudi eager. Now: the counts' add, the loss into its slot and the slot's
    counter, and backward's gradient seed."""
    trainer = Trainer(_settings(tiny_splits, tmp_path), AotEagerCpu())
    trainer.build_units()
    trainer.train_model.train()
    images, labels = trainer.data["train"].__getitems__(list(range(4)))
    x, y = trainer.transform(images, labels)
    cm = ConfusionMatrix(trainer.splits.num_classes, "cpu", trainer.splits.ignore_index)
    trainer.health.epoch_start(1, 0, 4)
    trainer.train_step(x, y, cm)   # compilation
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        trainer.train_step(x, y, cm)
    outside = _outside_ops(profiler)
    assert len(outside) <= 5, outside
    assert "aten::argmax" not in outside and "aten::index_add_" in outside   # the loss slot's index_add_
    trainer.health.check(trainer.dist)
    assert cm.read().sum() == 2 * int((y != 255).sum())   # both steps counted, ignored pixels not


# -- 3: the peak restarts where the steady window opens ----------------------------------------
class AutotuningCpu(CpuBackend):
    """A stand-in allocator: the first call of each shape (compilation, autotuning) takes a
    9 GB trial workspace; steady steps use 1 GB. reset_peak_memory() starts the peak anew."""

    def __init__(self):
        super().__init__("parity")
        self.compiled = True
        self.peak = 1 * GB
        self.seen: set = set()
        self.resets = 0

    compiles_per_shape = True

    def compile_model(self, model):
        backend = self

        class Autotuned(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.module = model

            def forward(self, x, y):
                key = (type(model).__name__, tuple(x.shape))
                if key not in backend.seen:
                    backend.seen.add(key)
                    backend.peak = max(backend.peak, 9 * GB)
                return self.module(x, y)
        return Autotuned()

    def reset_peak_memory(self):
        self.resets += 1
        self.peak = 1 * GB

    def memory_bytes(self):
        return {"allocated": 1 * GB, "reserved": 1 * GB, "peak_allocated": self.peak, "peak_reserved": self.peak,
                "source": "stand-in"}


@pytest.mark.slow  # a short CPU training
def test_the_peak_covers_the_measured_window_not_the_warm_ups_autotuning(tiny_splits, tmp_path):
    backend = AutotuningCpu()
    trainer = Trainer(_settings(tiny_splits, tmp_path, warmup_steps=1), backend)
    assert trainer.run() == 0
    memory = trainer.results("completed")["memory"]
    assert memory["peak_allocated_gb"] == pytest.approx(1.0), "evaluation's and training's warm-ups are outside"
    from unetbench.training.memory_phases import PEAK_WINDOW
    assert memory["peak_window"] == PEAK_WINDOW and backend.resets == 1
    assert memory["step_high_phase"] == "after_forward"


# -- 4: lazy Gaudi's high phase is the step's peak, read once the step ran -------------------
@pytest.fixture
def lazy_gaudi(monkeypatch):
    """The Gaudi stand-in in lazy mode, its tensors on the CPU; undone after the test."""
    monkeypatch.syspath_prepend(str(STANDIN))
    for name in ("PT_HPU_LAZY_MODE", "PT_HPU_AUTOLOAD", "HABANA_STANDIN_STOCK_TORCH"):
        monkeypatch.delenv(name, raising=False)
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        monkeypatch.delitem(sys.modules, name)
    import habana_frameworks
    habana_frameworks.CALLS.clear()
    from unetbench.devices.base import make_backend

    def make(profile="parity"):
        backend = make_backend("gaudi_lazy", profile)
        monkeypatch.setattr(type(backend), "device", property(lambda self: torch.device("cpu")))
        return backend, habana_frameworks.CALLS
    yield make
    if hasattr(torch, "hpu"):
        del torch.hpu


def test_lazy_gaudi_samples_the_steps_peak_after_its_graph_ran_standin(lazy_gaudi, tiny_splits, tmp_path,
                                                                       monkeypatch):
    backend, calls = lazy_gaudi()
    from habana_frameworks.torch import MEMORY_STATS
    trainer = Trainer(_settings(tiny_splits, tmp_path), backend)
    trainer.build_units()
    images, labels = trainer.data["train"].__getitems__(list(range(4)))
    x, y = trainer.transform(images, labels)
    cm = ConfusionMatrix(trainer.splits.num_classes, "cpu", trainer.splits.ignore_index)
    trainer.health.epoch_start(1, 0, 2)
    monkeypatch.setitem(MEMORY_STATS, "MaxInUse", 7 * GB)   # the previous steps' peak: kept for the run
    calls.clear()
    forward = trainer.train_model.forward
    trainer.train_model.forward = lambda *a: calls.append(("forward",)) or forward(*a)
    trainer.train_step(x, y, cm, sample_memory=True)
    names = [c[0] for c in calls]
    assert names.index("reset_peak_memory_stats") < names.index("forward"), "the step's own peak starts before it"
    last_cut = len(names) - 1 - names[::-1].index("mark_step")
    assert "synchronize" in names[last_cut:], "the peak is read once the step's graph has run"
    high, low = trainer.progress.memory_phases_gb[-1]
    assert (high, low) == (MEMORY_STATS["MaxInUse"] / GB, MEMORY_STATS["InUse"] / GB)
    assert backend.memory_high_phase == "step_peak"
    memory = trainer.memory.figures()
    assert memory["peak_allocated"] == 7 * GB, "the per-step reset does not lose the run's peak"


# -- 1: the benchmark's compute-only step runs the loop's own unit ---------------------------
def test_bench_compute_only_runs_the_loops_own_unit_hpu_graphs_included_standin(lazy_gaudi, tiny_splits, tmp_path,
                                                                                monkeypatch):
    from unetbench.training import bench
    backend, calls = lazy_gaudi("fast")
    trainer = Trainer(_settings(tiny_splits, tmp_path, profile="fast"), backend)
    loop_unit = trainer._train_forward
    built = []
    monkeypatch.setattr(trainer, "_train_forward", lambda: built.append(loop_unit()) or built[-1])
    stepped = []
    step = trainer.train_step
    monkeypatch.setattr(trainer, "train_step",
                        lambda *a, **k: stepped.append(trainer.train_model) or step(*a, **k))
    figures = bench.compute_only(trainer, warmup=1, steps=1)
    assert figures["samples_per_s"] > 0
    assert ("ModuleCacher", "TrainForward", 10, True) in calls, "HPU graphs, as the loop's run builds them"
    assert len(built) == 1 and all(unit is built[0] for unit in stepped), "every timed step ran the loop's unit"


# -- 15: the loop-overhead benchmark runs and prints its ratio -------------------------------
@pytest.mark.slow  # trains two small loops on the CPU
def test_loop_overhead_script_prints_both_loops_and_the_ratio():
    proc = run_script([Path("bench") / "loop_overhead.py", "--rounds", "1", "--block-steps", "2",
                       "--warmup-steps", "1", "--crop", "32x48"])
    assert proc.returncode == 0, proc.stderr
    assert "plain loop:" in proc.stdout and "training loop:" in proc.stdout
    assert "ratio training/plain:" in proc.stdout and "% of a plain step" in proc.stdout
