"""The on-device self-check on the CPU (real calls, no stand-in): the checklist in order, the
verdict, a failing call named with the checks that need it skipped, two ranks forming a gloo
process group, and verify_enhanced.sh's flags around it. The stand-in devices (Gaudi, CUDA with
an old driver) are in tests/devices/test_selfcheck_standins.py; the Slurm job in
tests/cluster/test_slurm_selfcheck.py.
"""

from __future__ import annotations

import pytest
from helpers import run_main

from unetbench.cluster import preflight

ORDER = ["software", "device", "environment", "synchronize", "events", "memory", "compile", "training step",
         "evaluation step", "energy", "monitor"]


def _names(lines):
    return [line[7:].split(":", 1)[0] for line in lines if line.startswith("[")]


def test_every_device_call_is_checked_in_order_on_the_cpu_without_a_dataset():
    from unetbench.cluster.selfcheck_calls import run_checks
    from unetbench.training.distributed import DistContext
    lines = []
    assert run_checks("cpu", "fast", DistContext.single(), out=lines.append) == 0
    assert _names(lines) == ORDER
    marks = dict(zip(ORDER, (line[:6] for line in lines)))
    assert {m for n, m in marks.items() if n != "energy"} == {"[ OK ]"}, "\n".join(lines)
    assert marks["energy"] in ("[ OK ]", "[WARN]")      # RAPL may be unreadable here: a warning, not a failure
    assert "torch " in lines[0] and "channels_last" in lines[1]
    assert "pixels counted on the device" in lines[ORDER.index("training step")]
    assert lines[-1].startswith("selfcheck cpu: all 11 checks passed")


def test_the_first_failing_call_is_named_and_the_checks_that_need_it_are_skipped(monkeypatch):
    from unetbench.devices.cpu.backend import CpuBackend
    from unetbench.cluster.selfcheck_calls import run_checks
    from unetbench.training.distributed import DistContext

    def broken(self):
        raise RuntimeError("device lost")
    monkeypatch.setattr(CpuBackend, "synchronize", broken)
    lines = []
    assert run_checks("cpu", "parity", DistContext.single(), out=lines.append) == 1
    by_name = dict(zip(_names(lines), lines))
    assert by_name["synchronize"] == "[FAIL] synchronize: backend.synchronize(): RuntimeError: device lost"
    for needing in ("events", "memory", "compile", "evaluation step", "energy"):
        assert by_name[needing].startswith("[SKIP]"), by_name[needing]
    assert by_name["training step"] == "[SKIP] training step: needs compile"
    assert by_name["monitor"].startswith("[ OK ]")   # needs no device call: still checked
    assert lines[-1] == ("selfcheck cpu: FAILED; first failing call: synchronize: backend.synchronize(): "
                         "RuntimeError: device lost")


@pytest.mark.slow  # two Pythons that import torch
def test_two_local_ranks_form_a_gloo_process_group_and_train_a_ddp_step(tmp_path, capsys):
    # Two real processes on this machine, as --local --devices 2 starts them (torchrun's variables).
    code, out, _ = run_main(preflight.main, ["--backends", "cpu", "--local", "--on-device", "--devices", "2",
                                             "--results-dir", tmp_path], capsys)
    assert code == 0, out
    assert "[ OK ] rank 0/2 process group: gloo: 2 ranks" in out
    assert "[ OK ] rank 0/2 training step: loss" in out
    assert "[ OK ] on-device cpu: all 12 checks passed" in out
    assert "[SKIP] dataset (the self-check needs none" in out
    logs = list(tmp_path.glob("selfcheck-*/unetbench_selfcheck_cpu_local.out"))
    assert len(logs) == 1 and "process group" in logs[0].read_text()


@pytest.mark.slow  # a Python that imports torch
def test_verify_names_the_backend_and_call_that_failed_and_exits_1(tmp_path, capsys):
    # Real, not a stand-in: this machine has no GPU, so the GPU backend's self-check fails at its device.
    code, out, _ = run_main(preflight.main, ["--backends", "cuda", "--local", "--on-device", "--results-dir",
                                             tmp_path, "--profile", "parity"], capsys)
    assert code == 1
    assert "[FAIL] device: make_backend('cuda', 'parity'): no CUDA device" in out
    verdict = [line for line in out.splitlines() if line.startswith("[FAIL] on-device cuda: ")]
    assert len(verdict) == 1 and verdict[0].startswith("[FAIL] on-device cuda: device: make_backend('cuda', 'parity'): ")
    assert "exit status 1" in verdict[0]
    assert out.rstrip().endswith("verify: 1 check(s) failed")


@pytest.mark.parametrize("args, expected", [
    (["--device", "cpu"], "--device was replaced by --on-device"),
    (["--devices", "2"], "--devices and --profile belong to --on-device"),
    (["--on-device", "--devices", "0"], "--devices must be a positive whole number"),
    (["--on-device", "--profile", "turbo"], "--profile must be one of: parity fast, not 'turbo'"),
])
def test_self_check_flags_are_refused_with_the_fix(args, expected, tmp_path, capsys):
    code, _, err = run_main(preflight.main, ["--backends", "cpu", "--local", "--results-dir", tmp_path, *args], capsys)
    assert code == 2 and expected in err
