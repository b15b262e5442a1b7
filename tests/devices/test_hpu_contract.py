"""CONTRACT TESTS for the Gaudi backends, against a recording stand-in of habana_frameworks.

No Gaudi exists here, so these tests check how the suite drives Intel's API (the order of
calls the documentation prescribes), not that a Gaudi computes correctly. The stand-in lives in
tests/devices/standin_habana and keeps tensors on the CPU.
"""

import sys
from pathlib import Path

import pytest
import torch
from helpers import SMALL_SETTINGS

from unetbench.core.settings import Settings
from unetbench.devices.base import make_backend
from unetbench.training.trainer import Trainer

STANDIN = Path(__file__).parent / "standin_habana"


@pytest.fixture
def habana(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDIN))
    # Undone after the test: the backend sets the mode, the stand-in's import the distributed defaults.
    for var in ("PT_HPU_LAZY_MODE", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "HLS_MODULE_ID"):
        monkeypatch.delenv(var, raising=False)
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        monkeypatch.delitem(sys.modules, name)
    import habana_frameworks
    habana_frameworks.CALLS.clear()
    yield habana_frameworks.CALLS
    if hasattr(torch, "hpu"):
        del torch.hpu  # set by the stand-in's import; not a monkeypatch, so delete by hand


def _train_two_steps(calls, backend, splits, out, monkeypatch, steps=2, **overrides):
    # The stand-in computes on the CPU; device is a read-only property of every backend.
    monkeypatch.setattr(type(backend), "device", property(lambda self: torch.device("cpu")))
    original_backward = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        calls.append(("backward",))
        return original_backward(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    settings = Settings(splits=str(splits), out=str(out), epochs=1, max_steps_per_epoch=steps,
                        **{**SMALL_SETTINGS, **overrides})
    trainer = Trainer(settings, backend)
    step = trainer.optimizer.step

    def optimizer_step(*args, **kwargs):
        calls.append(("optimizer.step",))
        return step(*args, **kwargs)

    trainer.optimizer.step = optimizer_step
    assert trainer.run() == 0
    return trainer


@pytest.mark.slow
def test_lazy_mode_is_set_before_import_and_mark_step_follows_backward_and_step(habana, tiny_splits, tmp_path, monkeypatch):
    backend = make_backend("gaudi_lazy", "parity")
    assert habana[0] == ("import", "1", True), "PT_HPU_LAZY_MODE must be set before habana_frameworks loads"
    _train_two_steps(habana, backend, tiny_splits, tmp_path, monkeypatch)
    names = [c[0] for c in habana]
    first_backward = names.index("backward", names.index("reset_peak_memory_stats"))  # the run's first step
    assert names[first_backward:first_backward + 4] == ["backward", "mark_step", "optimizer.step", "mark_step"]
    assert names.count("optimizer.step") == 2
    # mark_step is never used as a synchronisation: the timer calls torch.hpu.synchronize
    assert all(c == ("mark_step", False) for c in habana if c[0] == "mark_step")


@pytest.mark.slow
def test_eager_mode_sets_mode_zero_and_never_marks_steps(habana, tiny_splits, tmp_path, monkeypatch):
    backend = make_backend("gaudi_eager", "parity")
    assert habana[0] == ("import", "0", False)
    _train_two_steps(habana, backend, tiny_splits, tmp_path, monkeypatch)
    assert "mark_step" not in [c[0] for c in habana]


@pytest.mark.slow
def test_timed_boundaries_synchronise_but_steps_do_not(habana, tiny_splits, tmp_path, monkeypatch):
    backend = make_backend("gaudi_lazy", "parity")
    # No memory sample in these steps: lazy mode synchronises a sampled step (every --log-every
    # steps) to read its peak (tests/training/test_loop_numbers.py).
    _train_two_steps(habana, backend, tiny_splits, tmp_path, monkeypatch, steps=5, log_every=100)
    names = [c[0] for c in habana]
    first_step = names.index("backward")  # the run's first step
    last_step = len(names) - 1 - names[::-1].index("optimizer.step")
    # the epoch clock is read only after the last optimizer step has been synchronised
    assert "synchronize" in names[last_step:names.index("backward", last_step) if "backward" in names[last_step:] else None]
    assert names[names.index("synchronize", last_step) - 1] in ("mark_step", "event.record")
    # inside the loop: one synchronisation where warm-up ends (step 1 of 5), none per step;
    # per-step times come from device events instead
    assert names[first_step:last_step].count("synchronize") == 1
    assert names[first_step:last_step].count("event.record") == 4


def test_fast_profile_uses_bf16_fused_adamw_and_hpu_backend_compile(habana, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, backend=None, **kw: compiled.append(backend) or model)
    eager = make_backend("gaudi_eager", "fast")
    autocast = eager.autocast()
    assert autocast.device == "hpu" and autocast.fast_dtype == torch.bfloat16
    model = torch.nn.Linear(2, 2)
    eager.compile_model(model)
    assert compiled == ["hpu_backend"]
    eager.make_optimizer(model.parameters(), lr=1e-4)
    assert ("FusedAdamW", 1e-4, 0.0, 1e-8) in habana  # AdamW with weight decay 0 is Adam, eps as Adam's

    # A process has one mode, fixed when the bridge loads (the backend refuses the other): a
    # fresh stand-in for the lazy backend, as a lazy-mode run is a process of its own.
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        monkeypatch.delitem(sys.modules, name)
    lazy = make_backend("gaudi_lazy", "fast")
    lazy.compile_model(model)
    assert compiled == ["hpu_backend"], "lazy mode builds its own graphs; no torch.compile"


@pytest.mark.slow
def test_results_record_the_gaudi_environment(habana, tiny_splits, tmp_path, monkeypatch):
    trainer = _train_two_steps(habana, make_backend("gaudi_lazy", "parity"), tiny_splits, tmp_path, monkeypatch)
    results = trainer.results("completed")
    assert results["backend"] == "gaudi_lazy"
    assert results["environment"]["device_name"] == "Stand-in Gaudi"
    assert results["environment"]["habana"] == "1.21.0+standin"   # package metadata, not __version__
    assert results["environment"]["habana_mode"] == "lazy"        # what the bridge reports
    assert results["memory"]["peak_allocated_gb"] == pytest.approx(2e-6)


def test_missing_gaudi_software_is_a_clear_error(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "habana_frameworks", None)  # import fails
    from unetbench.core.errors import UserError
    with pytest.raises(UserError, match="Intel Gaudi software not found"):
        make_backend("gaudi_lazy", "parity")


@pytest.mark.slow
def test_a_finished_run_puts_the_signal_handlers_back(habana, tiny_splits, tmp_path, monkeypatch):
    import signal
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)
    _train_two_steps(habana, make_backend("gaudi_eager", "parity"), tiny_splits, tmp_path, monkeypatch)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)) == before
