"""CONTRACT TESTS of the CUDA path, run on the CPU (issue 16).

No GPU exists here, so these tests drive the training loop with recording stand-ins behind the
Backend interface: a CPU backend that "compiles" (the first call of each input shape sleeps, as
a real compile costs time), records which units it compiled and which memory phase it is in;
a side stream that counts the batches it carried; torch.distributed calls that record their
tensors. They check what the loop asks of a device, not how fast a GPU is.
"""

from __future__ import annotations

import os

import pytest
import torch
from helpers import SMALL_SETTINGS
from torch import nn

from unetbench.core.errors import UserError
from unetbench.core.settings import Settings
from unetbench.data.loaders import DeviceTransform, flip_key
from unetbench.devices.base import InlineStream
from unetbench.devices.cpu.backend import CpuBackend
from unetbench.training.distributed import DistContext
from unetbench.training.results import GB
from unetbench.training.trainer import Trainer

COMPILE_S = 1000.0  # virtual seconds the stand-in's "compilation" of a new shape costs (no real wait)


class VirtualClock:
    """The trainer's clock in these tests: a micro-tick per reading, plus what compilations add."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FirstShapeIsSlow(nn.Module):
    """Stand-in for a compiled module: the first call per (shape, mode, grad mode) compiles,
    which advances the virtual clock and is recorded with the window open at that moment."""

    def __init__(self, module: nn.Module, backend: "CompilingCpu"):
        super().__init__()
        self.module = module
        self.backend = backend
        self.seen: set = set()

    def forward(self, x, y):
        key = (tuple(x.shape), self.training, torch.is_grad_enabled())
        if key not in self.seen:
            self.seen.add(key)
            self.backend.clock.advance(COMPILE_S)
            self.backend.compiles.append((type(self.module).__name__, key, self.backend.window))
        return self.module(x, y)


class RecordingStream(InlineStream):
    def __init__(self):
        self.batches = 0

    def run(self, fn):
        self.batches += 1
        return fn()


class CompilingCpu(CpuBackend):
    """The CPU, behaving like a compiling device (torch.compile on CUDA, hpu_backend on Gaudi)."""

    compiles_per_shape = True

    def __init__(self):
        super().__init__("parity")
        self.compiled = True
        self.compiled_units: list[str] = []
        self.clock = VirtualClock()
        self.compiles: list[tuple] = []   # (unit, shape key, window open then)
        self.window: str | None = None    # kept by watch_windows()
        self.stream = RecordingStream()
        self.allocated_gb = 1.0

    def compile_model(self, model):
        self.compiled_units.append(type(model).__name__)
        return FirstShapeIsSlow(model, self)

    def watch_windows(self, timer) -> None:
        """Keep ``window`` as the timed window open now (the timer's and the evaluator's marks)."""
        timer.hooks.append(lambda phase, now: setattr(self, "window", phase))

    def side_stream(self):
        return self.stream

    def memory_bytes(self):
        allocated = self.allocated_gb * GB
        return {"allocated": allocated, "reserved": allocated, "peak_allocated": allocated,
                "peak_reserved": allocated, "source": "stand-in"}


def _settings(splits, out, **overrides) -> Settings:
    return Settings(splits=str(splits), out=str(out), **{**SMALL_SETTINGS, "epochs": 1, "max_steps_per_epoch": 3,
                                                         **overrides})


# -- 2: the compile cache ------------------------------------------------------------------
def test_compile_cache_replaces_the_default_dynamo_filled_in_and_is_recorded(tiny_splits, tmp_path, monkeypatch):
    # What importing torch._dynamo (the first optimizer does) leaves in the environment:
    dynamo_default = tmp_path / "torchinductor_someone"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(dynamo_default))
    monkeypatch.setenv("TRITON_CACHE_DIR", str(dynamo_default / "triton" / "0"))
    trainer = Trainer(_settings(tiny_splits, tmp_path / "out"), CompilingCpu())
    expected = str((tmp_path / "out" / "compile_cache").resolve())
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == expected
    assert "TRITON_CACHE_DIR" not in os.environ  # it followed the old folder; now it follows the new one
    assert trainer.environment["compile_cache"] == expected
    assert trainer.results("running")["environment"]["compile_cache"] == expected

    chosen = tmp_path / "shared_cache"
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "users_triton"))  # set by the user: kept
    trainer = Trainer(_settings(tiny_splits, tmp_path / "out", compile_cache=str(chosen)), CompilingCpu())
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == trainer.environment["compile_cache"] == str(chosen.resolve())
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "users_triton")


def test_a_backend_that_does_not_compile_records_no_cache(tiny_splits, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "elsewhere"))
    trainer = Trainer(_settings(tiny_splits, tmp_path), CpuBackend("parity"))
    assert trainer.environment["compile_cache"] is None
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "elsewhere")


# -- 8: evaluation compiled apart, warmed up outside every timed window, fed like training --
@pytest.mark.slow
def test_evaluation_is_compiled_apart_warmed_up_before_training_and_fed_like_training(tiny_splits, tmp_path):
    backend = CompilingCpu()
    trainer = Trainer(_settings(tiny_splits, tmp_path), backend, clock=backend.clock)
    backend.watch_windows(trainer.timer)
    assert trainer.run() == 0
    assert backend.compiled_units == ["TrainForward", "EvalForward"]

    results = trainer.results("completed")
    t, epoch = results["timing"], results["history"][0]
    counts = results["dataset"]["counts"]
    batch = SMALL_SETTINGS["batch_size"]
    eval_shapes = {size for n in (counts["val"], counts["test"]) for size in ([batch] * (n >= batch) + [n % batch])
                   if size}
    # What was compiled, and in which window: each evaluation shape once, in evaluation's
    # warm-up before training; training's one shape in its warm-up; nothing in a timed window.
    evals = [(key[0][0], window) for unit, key, window in backend.compiles if unit == "EvalForward"]
    assert sorted(size for size, _ in evals) == sorted(eval_shapes)
    assert {window for _, window in evals} == {"eval_warmup"}
    assert [window for unit, _, window in backend.compiles if unit == "TrainForward"] == ["warmup"]
    # The figures follow (virtual seconds: a compilation costs COMPILE_S, anything else a tick):
    # the compilations are reported apart, and no validation time or time to best contains one.
    assert t["eval_warmup_s"] >= COMPILE_S * len(eval_shapes) and t["warmup_s"] >= COMPILE_S
    assert epoch["eval_s"] < COMPILE_S and t["eval_s"] < COMPILE_S
    assert t["time_to_best_val_miou_s"] < t["train_s"] + COMPILE_S

    # Every batch, evaluation's too, went through the side stream (copied ahead of the step).
    eval_batches = sum(-(-counts[split] // batch) for split in ("val", "test"))
    assert backend.stream.batches == t["warmup_steps"] + t["measured_steps"] + eval_batches


# -- 6: memory sampled on measured steps at both phases of a step --------------------------
@pytest.mark.slow
def test_memory_average_covers_both_phases_of_measured_steps_only(tiny_splits, tmp_path):
    backend = CompilingCpu()
    trainer = Trainer(_settings(tiny_splits, tmp_path, max_steps_per_epoch=4), backend)

    def after_forward(*_):  # activations held: the step's high; warm-up holds more still
        backend.allocated_gb = 5.0 if trainer.timer.measuring else 50.0

    trainer.model.register_forward_hook(after_forward)
    step = trainer.optimizer.step

    def optimizer_step(*args, **kwargs):  # activations freed: the step's low
        result = step(*args, **kwargs)
        backend.allocated_gb = 1.0 if trainer.timer.measuring else 10.0
        return result

    trainer.optimizer.step = optimizer_step
    assert trainer.run() == 0
    memory = trainer.results("completed")["memory"]
    assert memory["avg_allocated_gb"] == pytest.approx(3.0)  # it was 3.25: lows only, warm-up's included
    assert memory["step_high_allocated_gb"] == pytest.approx(5.0)
    assert memory["step_low_allocated_gb"] == pytest.approx(1.0)
    assert len(trainer.progress.memory_phases_gb) == 3  # steps 2-4; step 1 is warm-up


# -- 4 and 10: several ranks ----------------------------------------------------------------
def _two_rank_trainer(tiny_splits, tmp_path) -> Trainer:
    # A rank of a world of two, without a process group: only the calls it makes are checked.
    return Trainer(_settings(tiny_splits, tmp_path), CpuBackend("parity"), DistContext(rank=0, world_size=2))


def test_stop_agreement_makes_no_device_round_trip(tiny_splits, tmp_path, monkeypatch):
    trainer = _two_rank_trainer(tiny_splits, tmp_path)
    reduced = []

    def all_reduce(tensor, op=None, group=None):
        reduced.append((tensor.device.type, group))

    monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
    # A device where any tensor made there, or read back from there, fails loudly.
    monkeypatch.setattr(CpuBackend, "device", property(lambda self: torch.device("meta")))
    trainer.dist.host_group = "host group"
    assert trainer._stop_requested(step=3) is False and reduced == []  # not a check step: no collective
    assert trainer._stop_requested(step=10) is False
    trainer.stop.signal_name = "SIGUSR1"
    assert trainer._stop_requested(step=20) is True
    assert trainer._stop_requested() is True  # the check after an epoch
    assert reduced == [("cpu", "host group")] * 3


def test_host_agreements_get_a_gloo_group_beside_the_device_backend(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.distributed, "rendezvous", lambda *a, **kw: iter([("store", 0, 2)]))
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend, **kw: calls.append(("init", backend)))
    monkeypatch.setattr(torch.distributed, "new_group", lambda backend=None, **kw: calls.append(("group", backend))
                        or f"{backend} group")
    monkeypatch.setattr(torch.distributed, "barrier", lambda *a, **kw: None)
    nccl = DistContext(rank=0, world_size=2)
    nccl.init("nccl", timeout_s=5)
    assert calls == [("init", "nccl"), ("group", "gloo")] and nccl.host_group == "gloo group"
    calls.clear()
    gloo = DistContext(rank=0, world_size=2)
    gloo.init("gloo", timeout_s=5)
    assert calls == [("init", "gloo")] and gloo.host_group is None  # the default group is on the host already


def test_joining_is_bounded_short_and_each_collective_long_enough_for_a_cold_compilation(monkeypatch):
    """The first DDP backward waits for the slowest rank's compilation (max-autotune, a cold
    cache: many minutes); a timeout that bounds joining the group must not bound that wait."""
    from unetbench.training import distributed
    timeouts = {}
    monkeypatch.delenv("UNETBENCH_COLLECTIVE_TIMEOUT", raising=False)

    def rendezvous(url, rank, world_size, timeout):   # torch's env:// store: bounded by the joining timeout
        timeouts.update(store=timeout.total_seconds(), at=(url, rank, world_size))
        return iter([("store", rank, world_size)])

    monkeypatch.setattr(torch.distributed, "rendezvous", rendezvous)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend, store, timeout, **kw:
                        timeouts.update(group=timeout.total_seconds(), store_used=store))
    monkeypatch.setattr(torch.distributed, "new_group", lambda backend=None, timeout=None, **kw:
                        timeouts.update(host_group=timeout.total_seconds()))
    monkeypatch.setattr(torch.distributed, "barrier", lambda *a, **kw: None)
    DistContext(rank=1, world_size=2).init("nccl", timeout_s=30)
    assert timeouts == {"store": 30, "at": ("env://", 1, 2), "store_used": "store",
                        "group": distributed.DEFAULT_COLLECTIVE_TIMEOUT_S,
                        "host_group": distributed.DEFAULT_COLLECTIVE_TIMEOUT_S}
    assert distributed.DEFAULT_COLLECTIVE_TIMEOUT_S >= 3600 > distributed.DEFAULT_TIMEOUT_S

    monkeypatch.setenv("UNETBENCH_COLLECTIVE_TIMEOUT", "900")
    DistContext(rank=0, world_size=2).init("gloo", timeout_s=30)
    assert timeouts["group"] == 900 and timeouts["at"][1] == 0
    monkeypatch.setenv("UNETBENCH_COLLECTIVE_TIMEOUT", "soon")
    with pytest.raises(UserError, match="UNETBENCH_COLLECTIVE_TIMEOUT='soon' must be a number of seconds"):
        DistContext(rank=0, world_size=2).init("gloo", timeout_s=30)


def test_ddp_does_not_broadcast_buffers_every_forward(tiny_splits, tmp_path, monkeypatch):
    trainer = _two_rank_trainer(tiny_splits, tmp_path)
    wrapped = {}

    def ddp(module, **kwargs):
        wrapped.update(kwargs)
        return module

    monkeypatch.setattr(nn.parallel, "DistributedDataParallel", ddp)
    trainer._train_forward()
    # evaluate() broadcasts rank 0's BatchNorm statistics once, before it starts
    assert wrapped.get("forward_sync_buffers", wrapped.get("broadcast_buffers")) is False  # per torch version


# -- 9: flips come from pinned memory when the copy is asynchronous --------------------------
@pytest.mark.parametrize("pinned, draws_pinned", [(True, True), (False, False), ("hpu", False)])
def test_flip_draws_are_pinned_for_asynchronous_copies(monkeypatch, pinned, draws_pinned):
    images = torch.arange(4 * 2 * 3 * 3, dtype=torch.uint8).reshape(4, 2, 3, 3)
    labels = torch.arange(4 * 2 * 3, dtype=torch.uint8).reshape(4, 2, 3) % 5
    key = flip_key(42, 1, 7, 0)
    expected = torch.rand(4, generator=torch.Generator().manual_seed(key)) < 0.5  # the flips as they always were
    plain = DeviceTransform(torch.device("cpu"), torch.contiguous_format, pinned=False)(images, labels)

    asked = []
    rand = torch.rand

    def recording_rand(*args, pin_memory=False, **kwargs):
        asked.append(pin_memory)
        return rand(*args, **kwargs)  # the CPU build has no pinned allocator: draw unpinned

    monkeypatch.setattr(torch, "rand", recording_rand)
    transform = DeviceTransform(torch.device("cpu"), torch.contiguous_format, pinned=pinned)
    x, y = transform(images, labels, flip_key=key)
    # torch.rand pins for the default accelerator only: draws for a named device stay pageable
    assert asked == [draws_pinned]
    for i, flipped in enumerate(expected.tolist()):
        assert torch.equal(x[i], plain[0][i].flip(2) if flipped else plain[0][i])
        assert torch.equal(y[i], plain[1][i].flip(1) if flipped else plain[1][i])



# -- 11: the matmul peak: tests/training/test_peak.py (bounded by time since issue 25) ------------
