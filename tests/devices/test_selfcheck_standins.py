"""CONTRACT TESTS of the on-device self-check (unetbench/cluster/selfcheck_calls.py) against STAND-INS:
no Gaudi card and no NVIDIA GPU exist here.

- Gaudi: the stand-in bridge (tests/devices/standin_habana, tensors on the CPU) and its hl-smi,
  with a STAND-IN HLML (pyhlml) whose energy counter answers when the meter opens and fails
  afterwards, as a card that stops answering does: the self-check names that call and fails.
- CUDA: torch's "no device" with a STAND-IN nvidia-smi reporting a 550 driver, and torch's
  build pretending CUDA 13.0 (as the README's torch 2.14.1 from PyPI is): the message names the
  driver, the CUDA the build needs and the fix.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch
from fakes import fake_tool
from helpers import run_main

from unetbench.training.distributed import DistContext

STANDIN = Path(__file__).parent / "standin_habana"
BRIDGE_ENV = ("PT_HPU_LAZY_MODE", "PT_HPU_AUTOLOAD", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK",
              "LOCAL_RANK", "HLS_MODULE_ID", "HABANA_VISIBLE_MODULES")


def _names(lines):
    return [line[7:].split(":", 1)[0] for line in lines if line.startswith("[")]


class HlmlError(Exception):
    pass


def standin_hlml(answers: int):
    """A STAND-IN pyhlml of one card (module 0) whose energy counter answers ``answers`` times, then raises."""
    calls = {"energy": 0}

    def energy(_handle):
        calls["energy"] += 1
        if calls["energy"] > answers:
            raise HlmlError("HLML_ERROR_UNKNOWN: the device stopped answering")
        return 1000 * calls["energy"]
    return types.SimpleNamespace(
        HLMLError=HlmlError, hlmlInit=lambda: None, hlmlDeviceGetCount=lambda: 1,
        hlmlDeviceGetHandleByIndex=lambda i: f"card{i}", hlmlDeviceGetModuleID=lambda handle: 0,
        hlmlDeviceGetPowerUsage=lambda handle: 300_000, hlmlDeviceGetTotalEnergyConsumption=energy)


@pytest.fixture
def gaudi_standin(monkeypatch):
    """The stand-in bridge loaded in lazy mode, its hl-smi first on PATH, its tensors on the CPU."""
    monkeypatch.syspath_prepend(str(STANDIN))
    for name in BRIDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PT_HPU_LAZY_MODE", "1")
    monkeypatch.setenv("PATH", f"{STANDIN / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for name in [m for m in sys.modules if m.startswith("habana_frameworks")]:
        monkeypatch.delitem(sys.modules, name)
    import habana_frameworks  # noqa: F401  (the stand-in bridge: registers torch.hpu)
    from unetbench.devices.base import backend_class
    monkeypatch.setattr(backend_class("gaudi_lazy"), "device", property(lambda self: torch.device("cpu")))
    yield
    if hasattr(torch, "hpu"):
        del torch.hpu


def test_a_gaudi_whose_energy_counter_fails_is_named_and_fails_the_check_standin(gaudi_standin, monkeypatch, capsys):
    from unetbench.cluster import selfcheck
    # Three answers: two when the meter probes the counter, one when it opens; the self-check's read fails.
    monkeypatch.setitem(sys.modules, "pyhlml", standin_hlml(answers=3))
    monkeypatch.setenv("UNETBENCH_DIST_TIMEOUT", "60")   # the command sets it when unset: undone after the test
    code, out, _ = run_main(selfcheck.main, ["--backend", "gaudi_lazy", "--profile", "parity"], capsys)
    assert code == 1
    lines = out.splitlines()
    by_name = dict(zip(_names(lines), lines))
    assert by_name["energy"] == ("[FAIL] energy: meter.read(): hlml:total_energy_consumption raised mid-run "
                                 "(HLML_ERROR_UNKNOWN: the device stopped answering): power integrated from then on")
    # Every call before it went through the stand-in bridge, and the monitor read the stand-in hl-smi.
    for name in ("device", "synchronize", "events", "memory", "compile", "training step", "evaluation step"):
        assert by_name[name].startswith("[ OK ]"), by_name[name]
    assert "habana_mode lazy" in by_name["environment"]
    assert by_name["monitor"].startswith("[ OK ] monitor: hl-smi: device 0: 0 %, 1000 MiB, 100.5 W")
    assert lines[-1] == ("selfcheck gaudi_lazy: FAILED; first failing call: energy: meter.read(): "
                         "hlml:total_energy_consumption raised mid-run (HLML_ERROR_UNKNOWN: the device stopped answering): "
                         "power integrated from then on")


def test_a_gaudi_whose_energy_counter_works_passes_every_check_standin(gaudi_standin, monkeypatch):
    from unetbench.cluster.selfcheck_calls import run_checks
    monkeypatch.setitem(sys.modules, "pyhlml", standin_hlml(answers=10**6))
    lines = []
    assert run_checks("gaudi_lazy", "parity", DistContext.single(), out=lines.append) == 0, "\n".join(lines)
    energy = dict(zip(_names(lines), lines))["energy"]
    assert energy.startswith("[ OK ] energy: hlml:total_energy_consumption on Gaudi module 0: ")
    assert lines[-1] == "selfcheck gaudi_lazy: all 11 checks passed"


@pytest.fixture
def old_driver(tmp_path, monkeypatch):
    """A node whose driver (a STAND-IN nvidia-smi) is 550.54.15 under a torch built for CUDA 13.0."""
    rows = {"--query-gpu=driver_version": ["550.54.15"],
            "--query-gpu=index,name,driver_version,memory.total": ["0, NVIDIA H100, 550.54.15, 81559 MiB"],
            "--query-gpu=index,utilization.gpu,memory.used,power.draw,temperature.gpu": ["0, 0, 1, 70.5, 33"]}
    fake_tool(tmp_path / "bin", "nvidia-smi", answers=rows)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # what torch says under a too old driver


def test_a_driver_too_old_for_torchs_cuda_is_named_with_the_cuda_needed_and_the_fix_standin(old_driver):
    from unetbench.cluster.selfcheck_calls import run_checks
    lines = []
    assert run_checks("cuda", "fast", DistContext.single(), out=lines.append) == 1
    by_name = dict(zip(_names(lines), lines))
    assert by_name["software"].endswith("cuda 13.0, driver 550.54.15")
    device = by_name["device"]
    assert device.startswith("[FAIL] device: make_backend('cuda', 'fast'): no CUDA device usable")
    assert "the NVIDIA driver on this node is 550.54.15" in device
    assert "built for CUDA 13.0, which needs driver 580 or newer" in device
    assert "install a torch built for CUDA 12.x" in device and "https://download.pytorch.org/whl/cu126" in device
    assert "CUDA_SETUP" in device
    for name in ("environment", "synchronize", "events", "memory", "compile", "training step", "evaluation step",
                 "energy"):
        assert by_name[name].startswith("[SKIP]"), by_name[name]
    assert by_name["monitor"].startswith("[ OK ] monitor: nvidia-smi: device 0:")
    assert lines[-1].startswith("selfcheck cuda: FAILED; first failing call: device: make_backend('cuda', 'fast')")


def test_a_training_run_says_the_same_about_the_driver_standin(old_driver):
    # Not only the self-check: the training's own backend refuses with the same words.
    from unetbench.core.errors import UserError
    from unetbench.devices.base import make_backend
    with pytest.raises(UserError, match=r"driver on this node is 550\.54\.15, but this torch is built for CUDA 13\.0"):
        make_backend("cuda")


@pytest.mark.parametrize("torch_cuda, driver, needs", [
    ("13.0", "580.65.06", None),          # the 13.0 release's own driver
    ("13.0", "595.10", None),             # newer drivers run older builds
    ("12.6", "550.54.15", None),          # minor-version compatibility: any 12.x on a 525+ driver
    ("12.8", "535.183.01", None),
    ("13.0", "570.172.08", "CUDA 12.x"),
    ("12.6", "470.256.02", "CUDA 11.x"),
    ("13.0", "418.67", "install a torch built for the CUDA this driver runs"),
    (None, "550.54.15", None),            # not a CUDA build: nothing to say
    ("13.0", None, None),                 # no nvidia-smi: the driver is unknown
])
def test_which_driver_runs_which_cuda_build(torch_cuda, driver, needs):
    from unetbench.devices.cuda.driver import driver_problem
    problem = driver_problem(torch_cuda, driver)
    assert (problem is None) == (needs is None)
    if needs:
        assert needs in problem
